/* ens-http-access-log.h — private to transport-http: one log line per HTTP
 * request when the setting http-access-log is on. */
#pragma once

#include <ensemble/ensemble.h>
#include <libsoup/soup.h>

/* Logs every request @server finishes, through @host's log (the plugin's
 * domain), until ens_http_access_log_detach(). */
void ens_http_access_log_attach (SoupServer *server, const EnsHost *host, EnsPlugin *self);
/* Stops logging; nothing of the access log is left on @server. */
void ens_http_access_log_detach (SoupServer *server);
/* The line itself, for a request served without libsoup too: @peer its
 * IP address, @start_us when its first byte came (monotonic), @outcome ""
 * or " (client went away)". */
void ens_http_access_log_line (const EnsHost *host, EnsPlugin *self, const char *peer, const char *method,
                               const char *path, guint status, gint64 body_bytes, gint64 start_us,
                               const char *outcome);
