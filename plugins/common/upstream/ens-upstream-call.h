/* ens-upstream-call.h — one completion's HTTP exchange with its upstream.
 *
 * POST the body on the backend's pool, retry 429/5xx answers with
 * exponential backoff (or what retry-after asks), then either read the
 * whole body (at most max-answer-bytes) or read a server-sent event stream
 * through an EnsSseReader (lines of at most max-line-bytes, the stream at
 * most max-answer-bytes).  Each request has a timer (timeout-ms, restarted
 * by every piece of a stream); the host's cancellable, the timer and the
 * end of the call abort it.
 *
 * A call that ends after a complete answer hands its connection back to
 * the pool (the rest of the body is read first); one that is aborted or
 * fails mid-answer closes it.
 *
 * Everything runs on the main loop. */
#pragma once

#include "ens-upstream-answer.h"
#include "ens-upstream-provider.h"

G_BEGIN_DECLS

typedef struct _EnsUpstreamCall EnsUpstreamCall;

/* What a provider plugs into a call.  Each callback runs on the main loop
 * while the call is running; it may end the call (finish or fail). */
typedef struct {
  /* One server-sent event of a streamed answer; @event is NULL when the
   * upstream sent no "event:" line (OpenAI does not); @data (transfer none)
   * is NUL-terminated, @len bytes long. */
  void (*sse_event) (EnsUpstreamCall *call, const char *event, const char *data, gsize len);
  /* The stream ended and the provider had not ended the call: it may finish
   * it now; if it does not, the call fails (the answer was cut short). */
  void (*sse_eof) (EnsUpstreamCall *call);
  /* A whole 2xx body (of a non-streamed answer, or of a stream request the
   * upstream answered in one piece), NUL-terminated.  Must end the call. */
  void (*plain_body) (EnsUpstreamCall *call, const char *body, gsize len);
} EnsUpstreamCallClass;

/* (transfer none: the call lives until it has ended and its I/O is done) a
 * new call reporting to @completion.  @backend (transfer none) may be NULL
 * for a call that only fails (ens_upstream_call_fail_later).  @cancellable
 * (transfer none, may be NULL) is the host's.  @data (transfer full) is the
 * provider's per-call state, freed with @free_data. */
EnsUpstreamCall *ens_upstream_call_new (EnsUpstreamProvider *provider, EnsUpstreamBackend *backend,
                                        EnsCompletion *completion, GCancellable *cancellable,
                                        const EnsUpstreamCallClass *klass, gpointer data, GDestroyNotify free_data);
/* POSTs @body (transfer none, JSON) to the backend's endpoint with its
 * headers.  @stream: ask for an event stream. */
void ens_upstream_call_send (EnsUpstreamCall *call, GBytes *body, gboolean stream);
/* The same to @uri (transfer none; NULL: the backend has no such endpoint,
 * the call fails NOT_CONFIGURED), e.g. the backend's embeddings_uri. */
void ens_upstream_call_send_to (EnsUpstreamCall *call, GUri *uri, GBytes *body, gboolean stream);
/* Ends the call with @code from an idle callback: for errors found before
 * anything was sent, so complete() never reports from inside itself. */
void ens_upstream_call_fail_later (EnsUpstreamCall *call, const char *code, const char *message);

/* (transfer none) */
gpointer ens_upstream_call_get_data (EnsUpstreamCall *call);
/* (transfer none) */
EnsUpstreamBackend *ens_upstream_call_get_backend (EnsUpstreamCall *call);
/* (transfer none) */
EnsUpstreamProvider *ens_upstream_call_get_provider (EnsUpstreamCall *call);
/* TRUE until the call has been finished or failed. */
gboolean ens_upstream_call_is_running (EnsUpstreamCall *call);

/* Progress and the end, forwarded to the host.  After finish/fail the call
 * no longer touches the completion. */
void ens_upstream_call_chunk (EnsUpstreamCall *call, const char *text);
void ens_upstream_call_event (EnsUpstreamCall *call, const char *type, JsonNode *data);
/* @result (transfer none) */
void ens_upstream_call_finish (EnsUpstreamCall *call, JsonNode *result);
void ens_upstream_call_fail (EnsUpstreamCall *call, const char *code, const char *message);
/* Fails the call for an ENS_UPSTREAM_ERROR (or any) @error: its code from
 * ens_upstream_error_completion_code(), the message naming the backend. */
void ens_upstream_call_fail_error (EnsUpstreamCall *call, const GError *error);

/* (transfer none) a sink reporting an answer's progress to the call given
 * as its data (ens_upstream_answer_new (..., ens_upstream_call_sink (), call)). */
const EnsUpstreamSink *ens_upstream_call_sink (void);

/* Status code -> completion error code: 401/403 AUTH_FAILED, 429 and 529
 * RATE_LIMITED, other 4xx BAD_REQUEST, anything else UPSTREAM_ERROR. */
const char *ens_upstream_error_code_for_status (guint status);

G_END_DECLS
