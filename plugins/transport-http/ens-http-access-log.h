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
