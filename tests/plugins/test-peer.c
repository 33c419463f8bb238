/* test-peer.c — plugins/common/peer: the uid behind a loopback TCP
 * connection, from the kernel's socket table. */
#include "ens-peer.h"

#include <unistd.h>

typedef struct {
  GSocket *listener, *client, *server;
  GSocketAddress *server_local, *server_remote; /* as the accepting side sees them */
} Pair;

static gboolean
pair_open (Pair *p, const char *address)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (address);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (inet, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  p->listener = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  if (!g_socket_bind (p->listener, any, TRUE, NULL))
    {
      g_clear_object (&p->listener);
      return FALSE; /* no such loopback here (IPv6 off) */
    }
  g_assert_true (g_socket_listen (p->listener, &error));
  bound = g_socket_get_local_address (p->listener, &error);
  p->client = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_true (g_socket_connect (p->client, bound, NULL, &error));
  p->server = g_socket_accept (p->listener, NULL, &error);
  g_assert_no_error (error);
  p->server_local = g_socket_get_local_address (p->server, &error);
  p->server_remote = g_socket_get_remote_address (p->server, &error);
  g_assert_no_error (error);
  return TRUE;
}

static void
pair_close (Pair *p)
{
  g_clear_object (&p->server_local);
  g_clear_object (&p->server_remote);
  g_clear_object (&p->server);
  g_clear_object (&p->client);
  g_clear_object (&p->listener);
}

static void
check_own_uid (const char *address)
{
  Pair p = { 0 };
  g_autoptr (GError) error = NULL;
  guint32 uid = G_MAXUINT32;

  if (!pair_open (&p, address))
    {
      g_test_skip ("cannot listen on this loopback address");
      return;
    }
  g_assert_true (ens_peer_tcp_uid (p.server_local, p.server_remote, &uid, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (uid, ==, geteuid ());
  g_assert_true (ens_peer_uid_is_trusted (uid));
  pair_close (&p);
}

static void
test_own_uid_ipv4 (void)
{
  check_own_uid ("127.0.0.1");
}

static void
test_own_uid_ipv6 (void)
{
  check_own_uid ("::1");
}

/* The client closed its socket: no owner any more, so no uid (the kernel
 * would say 0, root, for an orphaned socket). */
static void
test_closed_peer_is_not_found (void)
{
  Pair p = { 0 };
  g_autoptr (GError) error = NULL;
  guint32 uid = 4242;

  g_assert_true (pair_open (&p, "127.0.0.1"));
  g_socket_close (p.client, NULL);
  g_assert_false (ens_peer_tcp_uid (p.server_local, p.server_remote, &uid, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpuint (uid, ==, 4242);
  pair_close (&p);
}

/* A 4-tuple no socket has. */
static void
test_unknown_connection_is_not_found (void)
{
  Pair p = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) elsewhere = NULL;
  guint32 uid;

  g_assert_true (pair_open (&p, "127.0.0.1"));
  elsewhere = g_inet_socket_address_new (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (p.server_remote)),
                                         1); /* nobody connects from port 1 */
  g_assert_false (ens_peer_tcp_uid (p.server_local, elsewhere, &uid, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  pair_close (&p);
}

static void
test_not_ip (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) unix_addr = g_unix_socket_address_new ("/nonexistent");
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) ip = g_inet_socket_address_new (lo, 80);
  guint32 uid;

  g_assert_false (ens_peer_tcp_uid (ip, unix_addr, &uid, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
}

static void
test_trusted (void)
{
  g_assert_true (ens_peer_uid_is_trusted (0));
  g_assert_true (ens_peer_uid_is_trusted (geteuid ()));
  if (geteuid () != 65533)
    g_assert_false (ens_peer_uid_is_trusted (65533));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/peer/own-uid/ipv4", test_own_uid_ipv4);
  g_test_add_func ("/peer/own-uid/ipv6", test_own_uid_ipv6);
  g_test_add_func ("/peer/closed-peer", test_closed_peer_is_not_found);
  g_test_add_func ("/peer/unknown-connection", test_unknown_connection_is_not_found);
  g_test_add_func ("/peer/not-ip", test_not_ip);
  g_test_add_func ("/peer/trusted", test_trusted);
  return g_test_run ();
}
