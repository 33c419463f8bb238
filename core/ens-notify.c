/* ens-notify.c — ensembled tells systemd how it is (Type=notify): the
 * sd_notify protocol is one datagram of "KEY=VALUE" lines sent to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name
 * written with a leading '@').  Spoken here over a GSocket.
 *
 *   READY=1      once the plugins are loaded and the transports listen
 *   STATUS=...   what the daemon serves, refreshed when it changes
 *   WATCHDOG=1   every WATCHDOG_USEC / 2 when the unit sets WatchdogSec=,
 *                from the main loop: a stuck loop stops the keep-alive
 *   STOPPING=1   when shutting down */
#include "ens-notify.h"

#include <gio/gunixsocketaddress.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENS_NOTIFY_STATUS_PERIOD_S 2

struct _EnsNotify
{
  GSocket *socket;
  GSocketAddress *address;
  char *path;
  EnsDaemon *d;
  guint watchdog_id;
  guint status_id;
  char *status;        /* the last STATUS sent */
};

EnsNotify *
ens_notify_new (void)
{
  const char *env = g_getenv ("NOTIFY_SOCKET");
  g_autoptr (GError) error = NULL;
  EnsNotify *n;

  if (env == NULL || env[0] == '\0')
    return NULL;
  n = g_new0 (EnsNotify, 1);
  n->path = g_strdup (env);
  g_unsetenv ("NOTIFY_SOCKET");
  if (n->path[0] == '@')
    n->address = g_unix_socket_address_new_with_type (n->path + 1, -1, G_UNIX_SOCKET_ADDRESS_ABSTRACT);
  else if (n->path[0] == '/')
    n->address = g_unix_socket_address_new (n->path);
  else
    {
      g_warning ("systemd: NOTIFY_SOCKET=%s is neither a path nor an abstract name; not notifying", n->path);
      ens_notify_stopping_and_free (n);
      return NULL;
    }
  n->socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_DEFAULT, &error);
  if (n->socket == NULL)
    {
      g_warning ("systemd: cannot open a socket to notify %s: %s", n->path, error->message);
      ens_notify_stopping_and_free (n);
      return NULL;
    }
  g_socket_set_blocking (n->socket, FALSE);
  return n;
}

gboolean
ens_notify_send (EnsNotify *n, const char *state, GError **error)
{
  gssize sent;

  g_return_val_if_fail (n != NULL, FALSE);
  sent = g_socket_send_to (n->socket, n->address, state, strlen (state), NULL, error);
  if (sent < 0)
    {
      g_prefix_error (error, "cannot notify %s: ", n->path);
      return FALSE;
    }
  g_debug ("systemd: notified %s", state);
  return TRUE;
}

static void
send_or_warn (EnsNotify *n, const char *state)
{
  g_autoptr (GError) error = NULL;

  if (!ens_notify_send (n, state, &error))
    g_warning ("systemd: %s", error->message);
}

static char *
describe (EnsDaemon *d)
{
  guint connections = ens_clients_count (d->clients);
  guint agents = ens_agents_count (d->agents);
  guint plugins = ens_loader_plugins (d->loader)->len;

  return g_strdup_printf ("Serving %u connection%s, %u agent%s, %u plugin%s", connections,
                          connections == 1 ? "" : "s", agents, agents == 1 ? "" : "s", plugins,
                          plugins == 1 ? "" : "s");
}

/* STATUS=, only when it says something new. */
static gboolean
refresh_status (gpointer data)
{
  EnsNotify *n = data;
  g_autofree char *status = describe (n->d);

  if (g_strcmp0 (status, n->status) != 0)
    {
      g_autofree char *state = g_strconcat ("STATUS=", status, NULL);

      send_or_warn (n, state);
      g_free (n->status);
      n->status = g_steal_pointer (&status);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
keep_alive (gpointer data)
{
  send_or_warn (data, "WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

/* The keep-alive period asked for, in µs; 0 for none.  WATCHDOG_PID, when
 * set, must name this process. */
static guint64
watchdog_usec (void)
{
  const char *usec = g_getenv ("WATCHDOG_USEC");
  const char *pid = g_getenv ("WATCHDOG_PID");
  guint64 value = 0;

  if (usec == NULL)
    return 0;
  if (pid != NULL && g_ascii_strtoull (pid, NULL, 10) != (guint64) getpid ())
    return 0;
  if (!g_ascii_string_to_unsigned (usec, 10, 1, G_MAXUINT64, &value, NULL))
    {
      g_warning ("systemd: WATCHDOG_USEC=%s is not a number of microseconds; no keep-alive", usec);
      return 0;
    }
  return value;
}

void
ens_notify_ready (EnsNotify *n, EnsDaemon *d)
{
  g_autofree char *state = NULL;
  guint64 usec = watchdog_usec ();

  if (n == NULL)
    return;
  n->d = d;
  n->status = describe (d);
  state = g_strdup_printf ("READY=1\nSTATUS=%s\nMAINPID=%d", n->status, (int) getpid ());
  send_or_warn (n, state);
  n->status_id = g_timeout_add_seconds (ENS_NOTIFY_STATUS_PERIOD_S, refresh_status, n);
  if (usec > 0)
    {
      guint interval_ms = (guint) MAX (MIN (usec / 2 / 1000, (guint64) G_MAXUINT), 1);

      keep_alive (n);
      n->watchdog_id = g_timeout_add (interval_ms, keep_alive, n);
      g_message ("systemd: watchdog keep-alive every %u ms", interval_ms);
    }
}

void
ens_notify_stopping_and_free (EnsNotify *n)
{
  if (n == NULL)
    return;
  if (n->socket)
    send_or_warn (n, "STOPPING=1\nSTATUS=Stopping");
  if (n->watchdog_id)
    g_source_remove (n->watchdog_id);
  if (n->status_id)
    g_source_remove (n->status_id);
  g_clear_object (&n->socket);
  g_clear_object (&n->address);
  g_free (n->status);
  g_free (n->path);
  g_free (n);
}
