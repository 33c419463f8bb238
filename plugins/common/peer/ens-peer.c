/* ens-peer.c — the uid behind a loopback TCP connection, from the kernel's
 * socket table (NETLINK_SOCK_DIAG, inet_diag). */
#include "ens-peer.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>

/* One endpoint as inet_diag wants it: address bytes and port, network order. */
typedef struct {
  int family;
  guint8 addr[16];
  gsize addr_len;
  guint16 port_be;
} Endpoint;

static gboolean
endpoint_from (GSocketAddress *address, Endpoint *ep, GError **error)
{
  GInetAddress *inet;

  if (!G_IS_INET_SOCKET_ADDRESS (address))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "not an IP connection");
      return FALSE;
    }
  inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));
  ep->family = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
  ep->addr_len = g_inet_address_get_native_size (inet);
  memcpy (ep->addr, g_inet_address_to_bytes (inet), ep->addr_len);
  ep->port_be = g_htons (g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address)));
  return TRUE;
}

static gboolean
set_errno_error (GError **error, int saved, const char *what)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s", what, g_strerror (saved));
  return FALSE;
}

gboolean
ens_peer_tcp_uid (GSocketAddress *local, GSocketAddress *remote, guint32 *uid, GError **error)
{
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } request;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  struct timeval timeout = { .tv_sec = 1 };
  union {
    struct nlmsghdr nlh;
    char bytes[8192];
  } reply;
  Endpoint ours, theirs;
  ssize_t n;
  int fd, saved;
  guint len; /* unsigned, as nlmsg_len: NLMSG_OK compares the two */

  if (!endpoint_from (local, &ours, error) || !endpoint_from (remote, &theirs, error))
    return FALSE;
  if (ours.family != theirs.family)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "the two ends are of different families");
      return FALSE;
    }

  /* The peer's socket: its local end is our remote one and the other way
   * round (as `ss` shows it from its side). */
  memset (&request, 0, sizeof request);
  request.nlh.nlmsg_len = sizeof request;
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST;
  request.nlh.nlmsg_seq = 1;
  request.req.sdiag_family = theirs.family;
  request.req.sdiag_protocol = IPPROTO_TCP;
  request.req.idiag_states = ~0u;
  request.req.id.idiag_sport = theirs.port_be;
  request.req.id.idiag_dport = ours.port_be;
  memcpy (request.req.id.idiag_src, theirs.addr, theirs.addr_len);
  memcpy (request.req.id.idiag_dst, ours.addr, ours.addr_len);
  request.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  request.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  fd = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return set_errno_error (error, errno, "cannot open a sock_diag netlink socket");
  /* The kernel answers within the send; the timeout only guards a kernel
   * that never does. */
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (sendto (fd, &request, sizeof request, 0, (struct sockaddr *) &kernel, sizeof kernel) < 0)
    {
      saved = errno;
      close (fd);
      return set_errno_error (error, saved, "sock_diag request");
    }
  do
    n = recv (fd, &reply, sizeof reply, 0);
  while (n < 0 && errno == EINTR);
  saved = errno;
  close (fd);
  if (n < 0)
    return set_errno_error (error, saved, "sock_diag reply");

  len = (guint) n;
  for (struct nlmsghdr *h = &reply.nlh; NLMSG_OK (h, len); h = NLMSG_NEXT (h, len))
    {
      if (h->nlmsg_type == NLMSG_ERROR)
        {
          const struct nlmsgerr *err = NLMSG_DATA (h);
          int code = h->nlmsg_len >= NLMSG_LENGTH (sizeof *err) ? -err->error : EPROTO;

          if (code == ENOENT)
            {
              g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                   "the peer's socket is not in this machine's socket table");
              return FALSE;
            }
          return set_errno_error (error, code, "sock_diag");
        }
      if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && h->nlmsg_len >= NLMSG_LENGTH (sizeof (struct inet_diag_msg)))
        {
          const struct inet_diag_msg *m = NLMSG_DATA (h);

          if (m->id.idiag_sport != theirs.port_be || m->id.idiag_dport != ours.port_be ||
              memcmp (m->id.idiag_src, theirs.addr, theirs.addr_len) != 0 ||
              memcmp (m->id.idiag_dst, ours.addr, ours.addr_len) != 0)
            continue;
          /* No inode: a socket its owner closed (orphaned, TIME_WAIT) or a
           * half-open one; its uid field says 0, which is no one. */
          if (m->idiag_inode == 0)
            {
              g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "the peer has closed its socket");
              return FALSE;
            }
          *uid = m->idiag_uid;
          return TRUE;
        }
    }
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no answer from sock_diag for the peer's socket");
  return FALSE;
}

gboolean
ens_peer_uid_is_trusted (guint32 uid)
{
  return uid == 0 || uid == (guint32) geteuid ();
}
