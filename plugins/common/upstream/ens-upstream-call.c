/* ens-upstream-call.c — see ens-upstream-call.h.
 *
 * Lifetime: a call is referenced by the provider's set of running calls
 * until it ends.  Its exchange reports to it until the call releases it,
 * which ending the call always does; each report, timer and idle callback
 * takes a reference for its own duration only; ending a call removes them.
 *
 * The connection: the request (head and body, built once) goes to the
 * backend's pool (ens-upstream-pool.c), which sends it on an idle
 * keep-alive connection when there is one.  A complete answer (or one
 * complete as far as the provider cares: the pool reads the rest, bounded)
 * releases its connection gracefully, back to the pool; an aborted or
 * failed one closes it (the upstream sees it close and stops generating). */
#include "ens-upstream-call.h"

#include "ens-json-write.h"
#include "ens-sse-reader.h"
#include "ens-upstream-private.h"

#include <libsoup/soup.h>
#include <string.h>

#define MAX_ERROR_BYTES (64 * 1024) /* of an error body, enough for its message */
#define MAX_RETRY_AFTER_MS 60000    /* a longer retry-after is capped */

struct _EnsUpstreamCall {
  gint ref;
  EnsUpstreamProvider *provider; /* NULL once ended */
  EnsUpstreamBackend *backend;   /* ref; NULL for a call that only fails */
  EnsCompletion *completion;     /* NULL once ended */
  GCancellable *cancellable;     /* the host's, ref */
  gulong cancel_id;
  const EnsUpstreamCallClass *klass;
  gpointer data;
  GDestroyNotify free_data;
  gboolean ended;    /* finished or failed */
  gboolean streamed; /* a chunk reached the host: no retry after that */
  gboolean stream;   /* an event stream was asked for */
  gboolean reading_error; /* the body of a non-2xx answer */

  GBytes *request;         /* head and body, sent as they are */
  GUri *uri;               /* where it goes, ref */
  guint attempt;

  EnsUpstreamExchange *x;  /* the current attempt's, until released */
  GByteArray *buf;         /* a plain or error body */
  gsize limit;             /* of @buf */
  gsize received;          /* bytes of this attempt's body */
  guint status;
  EnsSseReader *sse;       /* once the answer is an event stream (its last attempt: no
                            * retry after a 2xx); may be inside a feed when the call ends */

  guint timeout_id, retry_id, idle_id;
  gint64 deadline;         /* monotonic; a stream pushes it on with each piece */
  char *later_code, *later_message;
};

static EnsUpstreamCall *
call_ref (EnsUpstreamCall *call)
{
  call->ref++;
  return call;
}

void
ens_upstream_call_unref (EnsUpstreamCall *call)
{
  if (--call->ref > 0)
    return;
  g_assert (call->ended && !call->x);
  if (call->free_data)
    call->free_data (call->data);
  ens_upstream_backend_unref (call->backend);
  g_clear_object (&call->cancellable);
  g_clear_pointer (&call->request, g_bytes_unref);
  g_clear_pointer (&call->uri, g_uri_unref);
  g_clear_pointer (&call->buf, g_byte_array_unref);
  g_clear_pointer (&call->sse, ens_sse_reader_free);
  g_free (call->later_code);
  g_free (call->later_message);
  g_free (call);
}

gpointer
ens_upstream_call_get_data (EnsUpstreamCall *call)
{
  return call->data;
}

EnsUpstreamBackend *
ens_upstream_call_get_backend (EnsUpstreamCall *call)
{
  return call->backend;
}

EnsUpstreamProvider *
ens_upstream_call_get_provider (EnsUpstreamCall *call)
{
  return call->provider;
}

gboolean
ens_upstream_call_is_running (EnsUpstreamCall *call)
{
  return !call->ended;
}

static void
remove_source (guint *id)
{
  if (*id)
    g_source_remove (*id);
  *id = 0;
}

/* Lets go of the attempt's exchange.  @graceful: the answer is complete,
 * its connection may be reused (the pool reads what is left of it). */
static void
release_io (EnsUpstreamCall *call, gboolean graceful)
{
  if (call->x)
    ens_upstream_exchange_release (g_steal_pointer (&call->x), graceful && call->provider);
}

/* Marks the call ended: no more host calls, sources removed, I/O let go. */
static void
call_end (EnsUpstreamCall *call, gboolean graceful)
{
  EnsUpstreamProvider *provider = call->provider;

  if (call->ended)
    return;
  call->ended = TRUE;
  call->completion = NULL;
  if (call->cancel_id)
    g_cancellable_disconnect (call->cancellable, call->cancel_id);
  call->cancel_id = 0;
  remove_source (&call->timeout_id);
  remove_source (&call->retry_id);
  remove_source (&call->idle_id);
  release_io (call, graceful);
  call->provider = NULL;
  if (provider)
    g_hash_table_remove (provider->calls, call); /* drops the set's reference */
}

void
ens_upstream_call_chunk (EnsUpstreamCall *call, const char *text)
{
  if (call->ended || !text || !*text)
    return;
  call->streamed = TRUE;
  call->provider->host->completion_chunk (call->completion, text);
}

void
ens_upstream_call_event (EnsUpstreamCall *call, const char *type, JsonNode *data)
{
  if (call->ended)
    return;
  call->provider->host->completion_event (call->completion, type, data);
}

void
ens_upstream_call_finish (EnsUpstreamCall *call, JsonNode *result)
{
  if (call->ended)
    return;
  call_ref (call);
  call->provider->host->completion_finish (call->completion, result);
  call_end (call, TRUE);
  ens_upstream_call_unref (call);
}

void
ens_upstream_call_fail (EnsUpstreamCall *call, const char *code, const char *message)
{
  if (call->ended)
    return;
  call_ref (call);
  call->provider->host->completion_fail (call->completion, code, message);
  call_end (call, FALSE);
  ens_upstream_call_unref (call);
}

void
ens_upstream_call_fail_error (EnsUpstreamCall *call, const GError *error)
{
  g_autofree char *text = g_strdup_printf ("%s: %s", call->backend ? call->backend->name : "upstream",
                                           error->message);

  ens_upstream_call_fail (call, ens_upstream_error_completion_code (error), text);
}

static void
sink_chunk (gpointer call, const char *text)
{
  ens_upstream_call_chunk (call, text);
}

static void
sink_event (gpointer call, const char *type, JsonNode *data)
{
  ens_upstream_call_event (call, type, data);
}

const EnsUpstreamSink *
ens_upstream_call_sink (void)
{
  static const EnsUpstreamSink sink = { sink_chunk, sink_event };
  return &sink;
}

static gboolean
on_idle (gpointer user_data)
{
  EnsUpstreamCall *call = call_ref (user_data);

  call->idle_id = 0;
  if (call->later_code)
    ens_upstream_call_fail (call, call->later_code, call->later_message);
  else
    ens_upstream_call_fail (call, ENS_COMPLETION_ERR_CANCELLED, "cancelled by the requester");
  ens_upstream_call_unref (call);
  return G_SOURCE_REMOVE;
}

/* The host's cancellable fired.  Reports from an idle callback: a
 * "cancelled" handler may not disconnect itself; and the attempt is
 * cancelled there, through call_end, so that no I/O callback sees it
 * cancelled first and reports the wrong error. */
static void
on_cancelled (GCancellable *cancellable, gpointer user_data)
{
  EnsUpstreamCall *call = user_data;

  if (!call->idle_id)
    call->idle_id = g_idle_add_full (G_PRIORITY_HIGH, on_idle, call, NULL);
}

EnsUpstreamCall *
ens_upstream_call_new (EnsUpstreamProvider *provider, EnsUpstreamBackend *backend, EnsCompletion *completion,
                       GCancellable *cancellable, const EnsUpstreamCallClass *klass, gpointer data,
                       GDestroyNotify free_data)
{
  EnsUpstreamCall *call = g_new0 (EnsUpstreamCall, 1);

  call->ref = 1; /* the provider's set */
  call->provider = provider;
  call->backend = backend ? ens_upstream_backend_ref (backend) : NULL;
  call->completion = completion;
  call->klass = klass;
  call->data = data;
  call->free_data = free_data;
  g_hash_table_add (provider->calls, call);
  if (cancellable)
    {
      call->cancellable = g_object_ref (cancellable);
      call->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled), call, NULL);
    }
  return call;
}

void
ens_upstream_call_fail_later (EnsUpstreamCall *call, const char *code, const char *message)
{
  if (call->ended || call->later_code)
    return;
  call->later_code = g_strdup (code);
  call->later_message = g_strdup (message);
  if (!call->idle_id)
    call->idle_id = g_idle_add_full (G_PRIORITY_HIGH, on_idle, call, NULL);
}

/* --------------------------------------------------------------- the timer */

static gboolean on_timeout (gpointer user_data);

static void
arm_timeout (EnsUpstreamCall *call, guint ms)
{
  remove_source (&call->timeout_id);
  call->timeout_id = g_timeout_add (ms, on_timeout, call);
}

static gboolean
on_timeout (gpointer user_data)
{
  EnsUpstreamCall *call = call_ref (user_data);
  gint64 left_us = call->deadline - g_get_monotonic_time ();

  call->timeout_id = 0;
  if (left_us > 0)
    arm_timeout (call, (guint) ((left_us + 999) / 1000)); /* a stream moved it on */
  else
    {
      g_autofree char *text = g_strdup_printf ("%s did not answer within %u ms", call->backend->name,
                                               call->backend->timeout_ms);
      ens_upstream_call_fail (call, ENS_COMPLETION_ERR_TIMEOUT, text);
    }
  ens_upstream_call_unref (call);
  return G_SOURCE_REMOVE;
}

/* A piece of a stream arrived: the stall timer starts again.  One clock
 * read; the timer itself is only re-armed when it fires. */
static void
note_progress (EnsUpstreamCall *call)
{
  call->deadline = g_get_monotonic_time () + (gint64) call->backend->timeout_ms * 1000;
}

/* ------------------------------------------------------------ HTTP errors */

const char *
ens_upstream_error_code_for_status (guint status)
{
  if (status == 401 || status == 403)
    return ENS_COMPLETION_ERR_AUTH_FAILED;
  if (status == 429 || status == 529) /* 529: Anthropic's "overloaded" */
    return ENS_COMPLETION_ERR_RATE_LIMITED;
  if (status >= 400 && status < 500)
    return ENS_COMPLETION_ERR_BAD_REQUEST;
  return ENS_COMPLETION_ERR_UPSTREAM;
}

/* Delay before retry number @attempt (0-based): 500 ms doubling, at most 8 s. */
static guint
backoff_ms (guint attempt)
{
  return attempt >= 4 ? 8000 : 500u << attempt;
}

/* The wait a retry-after-ms / retry-after header asks for, in ms, or -1. */
static gint64
retry_after_ms (EnsUpstreamResponse *response)
{
  g_autofree char *ms = g_strdup (ens_upstream_response_header (response, "retry-after-ms"));
  g_autofree char *s = g_strdup (ens_upstream_response_header (response, "retry-after"));
  guint64 n;

  if (ms && g_ascii_string_to_unsigned (g_strstrip (ms), 10, 0, G_MAXINT32, &n, NULL))
    return (gint64) n;
  if (!s)
    return -1;
  if (g_ascii_string_to_unsigned (g_strstrip (s), 10, 0, G_MAXINT32, &n, NULL))
    return (gint64) n * 1000;
  else
    {
      g_autoptr (GDateTime) when = soup_date_time_new_from_http_string (s);
      g_autoptr (GDateTime) now = g_date_time_new_now_utc ();

      if (when)
        return MAX (g_date_time_difference (when, now) / 1000, 0);
    }
  return -1;
}

static void attempt_start (EnsUpstreamCall *call);

static gboolean
on_retry (gpointer user_data)
{
  EnsUpstreamCall *call = call_ref (user_data);

  call->retry_id = 0;
  attempt_start (call);
  ens_upstream_call_unref (call);
  return G_SOURCE_REMOVE;
}

/* A non-2xx answer, its body read (@complete: to its end, so its connection
 * can be reused; else enough of it for the message): retry or fail. */
static void
handle_http_error (EnsUpstreamCall *call, gboolean complete)
{
  guint status = call->status;
  EnsUpstreamBackend *be = call->backend;
  g_autofree char *detail = ens_upstream_error_message ((const char *) call->buf->data, call->buf->len);
  g_autofree char *text = g_strdup_printf ("%s answered HTTP %u: %s", be->name, status, detail);
  gboolean retryable = status == 429 || status >= 500;

  remove_source (&call->timeout_id);
  if (retryable && call->attempt < be->max_retries && !call->streamed)
    {
      gint64 after = retry_after_ms (ens_upstream_exchange_response (call->x));
      guint delay = after >= 0 ? (guint) MIN (after, MAX_RETRY_AFTER_MS) : backoff_ms (call->attempt);

      ENS_LOG (call->provider->host, call->provider->self, G_LOG_LEVEL_INFO, "%s; retry %u of %u in %u ms", text,
               call->attempt + 1, be->max_retries, delay);
      release_io (call, TRUE);
      call->attempt++;
      call->retry_id = g_timeout_add (delay, on_retry, call);
      return;
    }
  if (complete)
    release_io (call, TRUE);
  ens_upstream_call_fail (call, ens_upstream_error_code_for_status (status), text);
}

/* ---------------------------------------------------------- reading bodies */

static gboolean
on_sse_event (const char *event, const char *data, gsize len, gpointer user_data)
{
  EnsUpstreamCall *call = user_data;

  call->klass->sse_event (call, event, data, len);
  return !call->ended;
}

static void
fail_limit (EnsUpstreamCall *call, const char *what, gsize limit, const char *setting)
{
  g_autofree char *text = g_strdup_printf ("%s: %s larger than %" G_GSIZE_FORMAT " bytes (%s)",
                                           call->backend->name, what, limit, setting);
  ens_upstream_call_fail (call, ENS_COMPLETION_ERR_UPSTREAM, text);
}

/* @n bytes of an event stream. */
static void
stream_bytes (EnsUpstreamCall *call, const char *data, gsize n)
{
  g_autoptr (GError) error = NULL;

  call->received += n;
  if (call->received > call->backend->max_answer_bytes)
    {
      fail_limit (call, "a streamed answer", call->backend->max_answer_bytes, "max-answer-bytes");
      return;
    }
  note_progress (call);
  if (!ens_sse_reader_feed (call->sse, data, n, &error) && error)
    {
      g_autofree char *text = g_strdup_printf ("%s (max-line-bytes)", error->message);
      g_autoptr (GError) limit = g_error_new_literal (error->domain, error->code, text);
      ens_upstream_call_fail_error (call, limit);
    }
}

/* The end of an event stream. */
static void
stream_end (EnsUpstreamCall *call)
{
  g_autoptr (GError) error = NULL;

  if (!ens_sse_reader_finish (call->sse, &error) && error)
    {
      ens_upstream_call_fail_error (call, error);
      return;
    }
  if (call->ended)
    return;
  remove_source (&call->timeout_id);
  release_io (call, TRUE);
  call->klass->sse_eof (call);
  if (!call->ended)
    {
      g_autofree char *text = g_strdup_printf ("%s: the stream ended before the answer was complete",
                                               call->backend->name);
      ens_upstream_call_fail (call, ENS_COMPLETION_ERR_UPSTREAM, text);
    }
}

/* @n bytes of a plain or error body. */
static void
plain_bytes (EnsUpstreamCall *call, const char *data, gsize n)
{
  if (call->buf->len + n > call->limit)
    {
      if (!call->reading_error)
        {
          fail_limit (call, "an answer", call->limit, "max-answer-bytes");
          return;
        }
      /* Enough of an error body for its message. */
      g_byte_array_append (call->buf, (const guint8 *) data, (guint) (call->limit - call->buf->len));
      handle_http_error (call, FALSE);
      return;
    }
  g_byte_array_append (call->buf, (const guint8 *) data, (guint) n);
}

/* The end of a plain or error body. */
static void
plain_end (EnsUpstreamCall *call)
{
  if (call->reading_error)
    {
      handle_http_error (call, TRUE);
      return;
    }
  remove_source (&call->timeout_id);
  release_io (call, TRUE);
  g_byte_array_append (call->buf, (const guint8 *) "", 1); /* a NUL for parsers, not counted */
  call->klass->plain_body (call, (const char *) call->buf->data, call->buf->len - 1);
  if (!call->ended)
    ens_upstream_call_fail (call, ENS_COMPLETION_ERR_UPSTREAM, "the provider did not end the call"); /* a bug */
}

/* ------------------------------------------------- the exchange's reports */

/* What to make room for at first: the Content-Length and its NUL when it
 * says one within @limit and 64 KiB (a small answer's buffer comes from
 * malloc's fast path), else 4 KiB; the buffer grows as the body comes. */
static guint
body_size_hint (EnsUpstreamResponse *response, gsize limit)
{
  const char *length = ens_upstream_response_header (response, "content-length");
  guint64 n;

  if (length && g_ascii_string_to_unsigned (length, 10, 0, MIN (limit, 64 * 1024), &n, NULL))
    return (guint) n + 1;
  return 4096;
}

static void
on_head (gpointer user_data)
{
  EnsUpstreamCall *call = call_ref (user_data);
  EnsUpstreamResponse *response = ens_upstream_exchange_response (call->x);
  const char *type = ens_upstream_response_media_type (response);

  call->status = ens_upstream_response_status (response);
  call->received = 0;
  if (SOUP_STATUS_IS_SUCCESSFUL (call->status) && call->stream && g_strcmp0 (type, "text/event-stream") == 0)
    {
      call->reading_error = FALSE;
      call->sse = ens_sse_reader_new (call->backend->max_line_bytes, on_sse_event, call);
      note_progress (call);
    }
  else
    {
      call->reading_error = !SOUP_STATUS_IS_SUCCESSFUL (call->status);
      call->limit = call->reading_error ? MAX_ERROR_BYTES : call->backend->max_answer_bytes;
      if (call->buf)
        g_byte_array_set_size (call->buf, 0);
      else
        call->buf = g_byte_array_sized_new (body_size_hint (response, call->limit));
    }
  ens_upstream_call_unref (call);
}

static void
on_body (gpointer user_data, const char *data, gsize len)
{
  EnsUpstreamCall *call = call_ref (user_data);

  if (call->ended)
    ;
  else if (call->sse)
    stream_bytes (call, data, len);
  else
    plain_bytes (call, data, len);
  ens_upstream_call_unref (call);
}

static void
on_end (gpointer user_data)
{
  EnsUpstreamCall *call = call_ref (user_data);

  if (call->ended)
    ;
  else if (call->sse)
    stream_end (call);
  else
    plain_end (call);
  ens_upstream_call_unref (call);
}

static void
on_fail (gpointer user_data, const GError *error)
{
  EnsUpstreamCall *call = call_ref (user_data);
  EnsUpstreamResponse *response = ens_upstream_exchange_response (call->x);
  g_autofree char *text = NULL;

  if (call->sse && !call->ended && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
    {
      /* The upstream hung up mid-stream: the end of the stream, which the
       * provider judges (an answer without its last event fails). */
      stream_end (call);
      ens_upstream_call_unref (call);
      return;
    }
  release_io (call, FALSE);
  if (!response || !ens_upstream_response_has_head (response))
    text = g_strdup_printf ("cannot reach %s at %s: %s", call->backend->name, call->backend->url, error->message);
  else
    text = g_strdup_printf ("%s: %s: %s", call->backend->name,
                            call->sse ? "the stream broke" : "reading the answer failed", error->message);
  ens_upstream_call_fail (call, ENS_COMPLETION_ERR_UPSTREAM, text);
  ens_upstream_call_unref (call);
}

static const EnsUpstreamExchangeSink exchange_sink = { on_head, on_body, on_end, on_fail };

/* ------------------------------------------------------------- requesting */

static void
attempt_start (EnsUpstreamCall *call)
{
  EnsUpstreamBackend *be = call->backend;

  g_clear_pointer (&call->sse, ens_sse_reader_free);
  call->deadline = g_get_monotonic_time () + (gint64) be->timeout_ms * 1000;
  arm_timeout (call, be->timeout_ms);
  call->x = ens_upstream_pool_send (ens_upstream_backend_pool (be, call->uri), call->request, &exchange_sink, call);
}

/* (transfer full) the whole request: head and @body. */
static GBytes *
build_request (EnsUpstreamCall *call, GUri *uri, GBytes *body)
{
  gsize len;
  const char *data = g_bytes_get_data (body, &len);
  GString *r = g_string_sized_new (512 + len);

  ens_upstream_backend_append_head (call->backend, uri, call->stream, r);
  g_string_append (r, "Content-Type: application/json\r\nContent-Length: ");
  ens_json_write_uint (r, len);
  g_string_append (r, "\r\n\r\n");
  g_string_append_len (r, data, (gssize) len);
  return g_string_free_to_bytes (r);
}

void
ens_upstream_call_send (EnsUpstreamCall *call, GBytes *body, gboolean stream)
{
  ens_upstream_call_send_to (call, call->backend->uri, body, stream);
}

void
ens_upstream_call_send_to (EnsUpstreamCall *call, GUri *uri, GBytes *body, gboolean stream)
{
  if (call->ended)
    return;
  call->stream = stream;
  if (!uri)
    {
      g_autofree char *text = g_strdup_printf ("backend %s: base-url \"%s\" is not an http(s) URL",
                                               call->backend->name, call->backend->base_url);
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_NOT_CONFIGURED, text);
      return;
    }
  call->uri = g_uri_ref (uri);
  call->request = build_request (call, uri, body);
  /* Cancelled before it started: the idle callback reports it. */
  if (call->cancellable && g_cancellable_is_cancelled (call->cancellable))
    return;
  attempt_start (call);
}
