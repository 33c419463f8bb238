/* ens-fake-upstream.h — the scripted fake LLM upstream of the tests, part
 * of the ens-test-support library: an in-process libsoup server speaking the
 * OpenAI-compatible and Anthropic wire formats, whose answers a test scripts.
 *
 * A FakeUpstream answers /v1/chat/completions, /v1/messages, /v1/embeddings
 * and /v1/models from a FakeScript: plain or SSE with N chunks at an
 * interval, at once or after a delay, error statuses, streams cut at chosen
 * points.  GET /fake/stats answers {"requests", "client_aborts",
 * "connections"}.  ens-fake-upstream-server runs one as a process for the
 * integration tests and benchmarks.  The raw answers it is built on, for
 * tests that write a scenario's exact bytes, are in ens-fake-server.h.
 *
 * Everything runs on the thread-default main context of the caller. */
#pragma once

#include "ens-fake-server.h"

G_BEGIN_DECLS

/* --------------------------------------------------------------- scripts */

/* What the fake upstream answers to one request.  The text form (the
 * x-fake-mode header, a path prefix, the server's --mode) is a comma
 * separated list of these words, each overriding the field it names:
 *
 *   stream / plain    force an SSE or a plain JSON answer (default: what the
 *                     request's "stream" asks for)
 *   chunks=N          content chunks of a streamed answer (default 3)
 *   interval=MS       between two chunks (default 0: as fast as possible)
 *   delay=MS          before the answer starts (default 0)
 *   status=CODE       answer CODE with the dialect's error body
 *   retry-after=S     with status: a retry-after header
 *   times=N           status, reset and cut apply to the first N requests
 *                     carrying this same script text only (default: all)
 *   reset             close the connection without an answer
 *   cut=N             close the connection after N content chunks (0: after
 *                     the headers and the stream's preamble, before the first
 *                     chunk)
 *   no-end            end the body without the terminator ([DONE] or
 *                     message_stop)
 *   malformed=N       chunk N (from 0) is replaced by data that is not JSON
 *   gap=N:MS          wait MS instead of the interval before chunk N
 *   dims=N            length of each embedding (default 8)
 *
 * e.g. "stream,chunks=20,interval=10" or "status=429,retry-after=1,times=1". */
typedef enum {
  FAKE_STREAM_ASKED, /* as the request says */
  FAKE_STREAM_ALWAYS,
  FAKE_STREAM_NEVER,
} FakeStreamMode;

typedef struct {
  FakeStreamMode stream;
  guint chunks;
  guint interval_ms;
  guint delay_ms;
  guint status;      /* 0: success */
  guint retry_after; /* seconds, 0: none */
  guint times;       /* 0: every request */
  gboolean reset;
  gint cut;          /* < 0: never */
  gboolean no_end;
  gint malformed;    /* < 0: never */
  gint gap_at;       /* < 0: never */
  guint gap_ms;
  guint dims;
} FakeScript;

/* The defaults listed above. */
void fake_script_init (FakeScript *script);
/* Applies @text (the form above, may be NULL or empty) over @script; FALSE
 * with @error set, @script unchanged, on a word it does not know. */
gboolean fake_script_parse (FakeScript *script, const char *text, GError **error);

/* --------------------------------------------------------------- server */

typedef struct _FakeUpstream FakeUpstream;

/* Starts a fake upstream listening on 127.0.0.1:@port (0: a port the kernel
 * picks, race-free) that answers from @script (copied) unless a request
 * says otherwise, by the x-fake-mode header or by a path of the form
 * /SCRIPT/v1/...  (transfer full) NULL with @error set when it cannot
 * listen. */
FakeUpstream *fake_upstream_new (const FakeScript *script, guint16 port, GError **error);
void fake_upstream_free (FakeUpstream *up);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeUpstream, fake_upstream_free)
guint16 fake_upstream_port (FakeUpstream *up);
/* (transfer none) http://127.0.0.1:PORT, without a trailing '/'. */
const char *fake_upstream_url (FakeUpstream *up);
/* Requests answered or being answered so far. */
guint64 fake_upstream_requests (FakeUpstream *up);
/* Streams whose client went away before the stream ended. */
guint64 fake_upstream_client_aborts (FakeUpstream *up);
/* The connections the upstream holds right now: its sockets on its port
 * in state ESTABLISHED (closed by the peer: not counted), or -1 if its file
 * descriptors cannot be listed. */
gint fake_upstream_connections (FakeUpstream *up);

G_END_DECLS
