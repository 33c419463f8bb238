/* ens-upstream-call.c — see ens-upstream-call.h.
 *
 * Lifetime: a call is referenced by the provider's set of running calls
 * until it ends, and by each pending libsoup operation (which always
 * completes, cancelled or not).  Timer and idle callbacks take a reference
 * for their own duration only; ending a call removes them.
 *
 * The connection: messages are flagged SOUP_MESSAGE_IDEMPOTENT so libsoup
 * sends them on an idle pooled connection (see ens-upstream-backend.c).  A
 * body that was read to its end is closed at once and its connection goes
 * back to the pool; the rest of a body whose answer is complete is read by
 * a drain (ens-upstream-drain.c); an aborted body is closed with its
 * attempt's cancellable cancelled, which makes libsoup drop the connection
 * (the upstream sees it close and stops generating).  libsoup 3 detail: a
 * body stream dropped unclosed would be closed synchronously, reading the
 * rest of the body on the main loop, so every one is closed here. */
#include "ens-upstream-call.h"

#include "ens-sse-reader.h"
#include "ens-upstream-private.h"

#include <string.h>

#define MAX_ERROR_BYTES (64 * 1024) /* of an error body, enough for its message */
#define MAX_RETRY_AFTER_MS 60000    /* a longer retry-after is capped */
#define READ_CHUNK 16384

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
  gboolean io_pending;
  gboolean reading_error; /* the body of a non-2xx answer */
  gboolean fresh;         /* this attempt opened a new connection */
  gboolean resent;        /* sent again after a pooled connection was found closed */

  GBytes *body;
  GUri *uri;               /* where it goes, ref */
  guint attempt;

  GCancellable *io_cancel; /* the current attempt's */
  SoupMessage *msg;
  GInputStream *input;     /* libsoup's body stream */
  char *chunk;             /* READ_CHUNK bytes read into */
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
  g_assert (call->ended && !call->input && !call->io_pending);
  if (call->free_data)
    call->free_data (call->data);
  ens_upstream_backend_unref (call->backend);
  g_clear_object (&call->cancellable);
  g_clear_object (&call->io_cancel);
  g_clear_object (&call->msg);
  g_clear_pointer (&call->body, g_bytes_unref);
  g_clear_pointer (&call->uri, g_uri_unref);
  g_clear_pointer (&call->buf, g_byte_array_unref);
  g_clear_pointer (&call->sse, ens_sse_reader_free);
  g_free (call->chunk);
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

static void
drop_message (EnsUpstreamCall *call)
{
  if (!call->msg)
    return;
  g_signal_handlers_disconnect_by_data (call->msg, call);
  g_clear_object (&call->msg);
}

/* Lets go of the attempt's message and body stream; only when no operation
 * is pending on them.  @graceful: the answer is complete, its connection
 * may be reused. */
static void
release_io (EnsUpstreamCall *call, gboolean graceful)
{
  g_assert (!call->io_pending);
  if (call->input)
    {
      GInputStream *input = g_steal_pointer (&call->input);

      if (graceful && call->provider)
        ens_upstream_drain (call->provider, input);
      else
        {
          g_cancellable_cancel (call->io_cancel);
          g_input_stream_close_async (input, G_PRIORITY_DEFAULT, call->io_cancel, NULL, NULL);
          g_object_unref (input);
        }
    }
  drop_message (call);
}

/* Marks the call ended: no more host calls, sources removed, I/O let go
 * (or cancelled, for the pending operation's callback to let go). */
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
  if (call->io_pending)
    g_cancellable_cancel (call->io_cancel);
  else
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
retry_after_ms (SoupMessageHeaders *headers)
{
  g_autofree char *ms = g_strdup (soup_message_headers_get_one (headers, "retry-after-ms"));
  g_autofree char *s = g_strdup (soup_message_headers_get_one (headers, "retry-after"));
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
      gint64 after = retry_after_ms (soup_message_get_response_headers (call->msg));
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

static void read_next (EnsUpstreamCall *call);

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
stream_bytes (EnsUpstreamCall *call, gsize n)
{
  g_autoptr (GError) error = NULL;

  if (n == 0)
    {
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
      return;
    }
  call->received += n;
  if (call->received > call->backend->max_answer_bytes)
    {
      fail_limit (call, "a streamed answer", call->backend->max_answer_bytes, "max-answer-bytes");
      return;
    }
  note_progress (call);
  if (!ens_sse_reader_feed (call->sse, call->chunk, n, &error) && error)
    {
      g_autofree char *text = g_strdup_printf ("%s (max-line-bytes)", error->message);
      g_autoptr (GError) limit = g_error_new_literal (error->domain, error->code, text);
      ens_upstream_call_fail_error (call, limit);
    }
  else if (!call->ended)
    read_next (call);
}

/* @n bytes of a plain or error body. */
static void
plain_bytes (EnsUpstreamCall *call, gsize n)
{
  if (n > 0 && call->buf->len + n > call->limit)
    {
      if (!call->reading_error)
        {
          fail_limit (call, "an answer", call->limit, "max-answer-bytes");
          return;
        }
      /* Enough of an error body for its message. */
      g_byte_array_append (call->buf, (const guint8 *) call->chunk, (guint) (call->limit - call->buf->len));
      handle_http_error (call, FALSE);
      return;
    }
  if (n > 0)
    {
      g_byte_array_append (call->buf, (const guint8 *) call->chunk, (guint) n);
      read_next (call);
      return;
    }
  if (call->reading_error)
    {
      handle_http_error (call, TRUE);
      return;
    }
  /* At the end of the body: closing is immediate, the connection is reused. */
  remove_source (&call->timeout_id);
  release_io (call, TRUE);
  g_byte_array_append (call->buf, (const guint8 *) "", 1); /* a NUL for parsers, not counted */
  call->klass->plain_body (call, (const char *) call->buf->data, call->buf->len - 1);
  if (!call->ended)
    ens_upstream_call_fail (call, ENS_COMPLETION_ERR_UPSTREAM, "the provider did not end the call"); /* a bug */
}

static void
on_read (GObject *source, GAsyncResult *res, gpointer user_data)
{
  EnsUpstreamCall *call = user_data;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, &error);

  call->io_pending = FALSE;
  if (call->ended)
    release_io (call, FALSE);
  else if (n < 0)
    {
      g_autofree char *text = g_strdup_printf ("%s: %s: %s", call->backend->name,
                                               call->sse ? "the stream broke" : "reading the answer failed",
                                               error->message);
      ens_upstream_call_fail (call, ENS_COMPLETION_ERR_UPSTREAM, text);
    }
  else if (call->sse)
    stream_bytes (call, (gsize) n);
  else
    plain_bytes (call, (gsize) n);
  ens_upstream_call_unref (call);
}

static void
read_next (EnsUpstreamCall *call)
{
  call->io_pending = TRUE;
  g_input_stream_read_async (call->input, call->chunk, READ_CHUNK, G_PRIORITY_DEFAULT, call->io_cancel, on_read,
                             call_ref (call));
}

static gboolean
is_event_stream (SoupMessage *msg)
{
  const char *type = soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL);
  return type && g_ascii_strcasecmp (type, "text/event-stream") == 0;
}

/* ------------------------------------------------------------- requesting */

/* A pooled connection closed by the upstream just as it was reused (its
 * keep-alive ran out): the request never reached it, or was refused
 * unread.  Sent again once, on a new connection. */
static gboolean
closed_under_us (EnsUpstreamCall *call, const GError *error)
{
  return !call->fresh && !call->resent &&
         (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT) ||
          g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
          g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED));
}

static void
on_sent (GObject *source, GAsyncResult *res, gpointer user_data)
{
  EnsUpstreamCall *call = user_data;
  g_autoptr (GError) error = NULL;
  GInputStream *input = soup_session_send_finish (SOUP_SESSION (source), res, &error);

  call->io_pending = FALSE;
  call->input = input;
  if (call->ended)
    release_io (call, FALSE);
  else if (!input && closed_under_us (call, error))
    {
      call->resent = TRUE;
      drop_message (call);
      attempt_start (call);
    }
  else if (!input)
    {
      g_autofree char *text = g_strdup_printf ("cannot reach %s at %s: %s", call->backend->name, call->backend->url,
                                               error->message);
      ens_upstream_call_fail (call, ENS_COMPLETION_ERR_UPSTREAM, text);
    }
  else
    {
      call->status = soup_message_get_status (call->msg);
      call->received = 0;
      if (!call->chunk)
        call->chunk = g_malloc (READ_CHUNK);
      if (SOUP_STATUS_IS_SUCCESSFUL (call->status) && call->stream && is_event_stream (call->msg))
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
            call->buf = g_byte_array_new ();
        }
      read_next (call);
    }
  ens_upstream_call_unref (call);
}

static void
on_network_event (SoupMessage *msg, GSocketClientEvent event, GIOStream *connection, gpointer user_data)
{
  EnsUpstreamCall *call = user_data;

  if (event == G_SOCKET_CLIENT_RESOLVING || event == G_SOCKET_CLIENT_CONNECTING)
    call->fresh = TRUE;
}

static void
attempt_start (EnsUpstreamCall *call)
{
  EnsUpstreamBackend *be = call->backend;
  SoupMessageHeaders *h;

  if (!call->io_cancel || g_cancellable_is_cancelled (call->io_cancel))
    {
      g_clear_object (&call->io_cancel);
      call->io_cancel = g_cancellable_new ();
    }
  drop_message (call);
  call->msg = soup_message_new_from_uri (SOUP_METHOD_POST, call->uri);
  /* Safe to send on a pooled connection: see ens-upstream-backend.c. */
  soup_message_add_flags (call->msg, SOUP_MESSAGE_IDEMPOTENT | (call->resent ? SOUP_MESSAGE_NEW_CONNECTION : 0));
  call->fresh = FALSE;
  if (!call->resent)
    g_signal_connect (call->msg, "network-event", G_CALLBACK (on_network_event), call);
  h = soup_message_get_request_headers (call->msg);
  for (guint i = 0; i + 1 < be->headers->len; i += 2)
    {
      const char *value = g_ptr_array_index (be->headers, i + 1);
      if (*value)
        soup_message_headers_replace (h, g_ptr_array_index (be->headers, i), value);
    }
  soup_message_headers_replace (h, "Accept", call->stream ? "text/event-stream" : "application/json");
  soup_message_set_request_body_from_bytes (call->msg, "application/json", call->body);
  call->deadline = g_get_monotonic_time () + (gint64) be->timeout_ms * 1000;
  arm_timeout (call, be->timeout_ms);
  call->io_pending = TRUE;
  soup_session_send_async (be->session, call->msg, G_PRIORITY_DEFAULT, call->io_cancel, on_sent, call_ref (call));
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
  call->body = g_bytes_ref (body);
  call->stream = stream;
  if (!uri)
    {
      g_autofree char *text = g_strdup_printf ("backend %s: base-url \"%s\" is not an http(s) URL",
                                               call->backend->name, call->backend->base_url);
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_NOT_CONFIGURED, text);
      return;
    }
  call->uri = g_uri_ref (uri);
  /* Cancelled before it started: the idle callback reports it. */
  if (call->cancellable && g_cancellable_is_cancelled (call->cancellable))
    return;
  attempt_start (call);
}
