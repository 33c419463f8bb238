/* ens-http-access-log.c — transport-http's access log: with http-access-log
 * on, one line per request once it is answered (or its client went away):
 *
 *   access: 127.0.0.1 "GET /health" 200 57 bytes 0.41 ms
 *
 * The peer, method and path (never the query string: a browser may carry
 * ?token= there), status, response body bytes and time from the first byte
 * of the request.  Lines go through the host's log, in transport-http's
 * domain, so they land wherever the daemon's log goes (the journal). */
#include "ens-http-access-log.h"

#define ENS_ACCESS_LOG_KEY "ens-access-log"
#define ENS_ACCESS_START_KEY "ens-access-start"

typedef struct
{
  const EnsHost *host;
  EnsPlugin *self;
} AccessLog;

static void
on_started (SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  gint64 *start = g_new (gint64, 1);

  (void) server;
  (void) data;
  *start = g_get_monotonic_time ();
  g_object_set_data_full (G_OBJECT (msg), ENS_ACCESS_START_KEY, start, g_free);
}

void
ens_http_access_log_line (const EnsHost *host, EnsPlugin *self, const char *peer, const char *method,
                          const char *path, guint status, gint64 body_bytes, gint64 start_us, const char *outcome)
{
  double ms = start_us ? (double) (g_get_monotonic_time () - start_us) / 1000.0 : 0;

  ENS_LOG (host, self, G_LOG_LEVEL_MESSAGE, "access: %s \"%s %s\" %u %" G_GINT64_FORMAT " bytes %.2f ms%s",
           peer ? peer : "-", method, path ? path : "-", status, body_bytes, ms, outcome);
}

static void
log_request (AccessLog *log, SoupServerMessage *msg, const char *outcome)
{
  const gint64 *start = g_object_get_data (G_OBJECT (msg), ENS_ACCESS_START_KEY);
  GUri *uri = soup_server_message_get_uri (msg);
  SoupMessageBody *body = soup_server_message_get_response_body (msg);

  ens_http_access_log_line (log->host, log->self, soup_server_message_get_remote_host (msg),
                            soup_server_message_get_method (msg), uri ? g_uri_get_path (uri) : NULL,
                            soup_server_message_get_status (msg), body ? (gint64) body->length : 0,
                            start ? *start : 0, outcome);
}

static void
on_finished (SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  (void) server;
  log_request (data, msg, "");
}

static void
on_aborted (SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  (void) server;
  log_request (data, msg, " (client went away)");
}

void
ens_http_access_log_attach (SoupServer *server, const EnsHost *host, EnsPlugin *self)
{
  AccessLog *log = g_new0 (AccessLog, 1);

  log->host = host;
  log->self = self;
  g_object_set_data_full (G_OBJECT (server), ENS_ACCESS_LOG_KEY, log, g_free);
  g_signal_connect (server, "request-started", G_CALLBACK (on_started), log);
  g_signal_connect (server, "request-finished", G_CALLBACK (on_finished), log);
  g_signal_connect (server, "request-aborted", G_CALLBACK (on_aborted), log);
}

void
ens_http_access_log_detach (SoupServer *server)
{
  AccessLog *log = g_object_get_data (G_OBJECT (server), ENS_ACCESS_LOG_KEY);

  if (log == NULL)
    return;
  g_signal_handlers_disconnect_by_data (server, log);
  g_object_set_data (G_OBJECT (server), ENS_ACCESS_LOG_KEY, NULL);
}
