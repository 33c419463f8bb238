/* ens-upstream-pool.h — a backend's keep-alive HTTP/1.1 connections to
 * its upstream, and the exchanges (one request, its answer) sent on them.
 *
 * One pool per host:port (and scheme: https goes through TLS, the
 * server's certificate checked against the system's trust).  Whether the
 * host is reached through a proxy is asked once, when the pool is made;
 * connections opened before the answer ask for themselves.  At most
 * @max_conns connections; an exchange that finds none idle and the pool
 * full waits for one.  A connection unused for @idle_timeout_s is closed,
 * as is one the upstream closes while idle.  An exchange whose reused
 * connection fails before any byte of an answer came (the upstream's
 * keep-alive ran out as the request went) is sent once more, on a new
 * connection.
 *
 * The request is prebuilt bytes, written at once; the answer is read with
 * one watch per connection and reported to the exchange's sink as it
 * comes: head, body pieces (de-chunked), end — or one failure.
 *
 * Everything runs on the main loop of the thread that made the pool. */
#pragma once

#include "ens-upstream-response.h"

G_BEGIN_DECLS

typedef struct _EnsUpstreamPool EnsUpstreamPool;
typedef struct _EnsUpstreamExchange EnsUpstreamExchange;

/* Each callback may release the exchange (and so end what it reports). */
typedef struct {
  /* The answer's head: read it with ens_upstream_exchange_response(). */
  void (*head) (gpointer user_data);
  /* @len bytes of the body (transfer none). */
  void (*body) (gpointer user_data, const char *data, gsize len);
  /* The body is complete. */
  void (*end) (gpointer user_data);
  /* The exchange failed: no connection, or it broke (@error, transfer
   * none); nothing more is reported. */
  void (*fail) (gpointer user_data, const GError *error);
} EnsUpstreamExchangeSink;

/* (transfer full) a pool for @scheme ("http" or "https") @host @port. */
EnsUpstreamPool *ens_upstream_pool_new (const char *scheme, const char *host, guint16 port, guint max_conns,
                                        guint idle_timeout_s);
/* Closes every connection; exchanges not yet released report nothing
 * more.  Called from inside one of the pool's reports (a call ending
 * there drops its backend), it takes effect once that report returns. */
void ens_upstream_pool_free (EnsUpstreamPool *pool);
/* Connections open (busy, idle or finishing an answer), for describe(). */
guint ens_upstream_pool_connections (EnsUpstreamPool *pool);
/* Connections reading the rest of an answer nobody waits for. */
guint ens_upstream_pool_draining (EnsUpstreamPool *pool);

/* (transfer none: valid until released) sends @request (transfer none:
 * the whole request, head and body) and reports to @sink with @user_data.
 * Nothing is reported from inside this call. */
EnsUpstreamExchange *ens_upstream_pool_send (EnsUpstreamPool *pool, GBytes *request,
                                             const EnsUpstreamExchangeSink *sink, gpointer user_data);
/* Ends the exchange: nothing more is reported.  @graceful: the answer is
 * complete as far as the caller cares; the rest of its body is read
 * (at most 64 KiB, for at most 2 s) and the connection reused.  Else the
 * connection is closed (the upstream sees it and stops). */
void ens_upstream_exchange_release (EnsUpstreamExchange *exchange, gboolean graceful);
/* (transfer none) the answer once its head was reported. */
EnsUpstreamResponse *ens_upstream_exchange_response (EnsUpstreamExchange *exchange);

G_END_DECLS
