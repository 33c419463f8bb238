/* test-fake-upstream.c — the scripted fake upstream, seen from the wire: a
 * blocking HTTP/1.1 client written here reads every answer byte by byte
 * (status, headers, each chunk and when it came, whether the body ended as
 * its framing says).  The upstream runs in a thread of its own, on its own
 * main context, and ens-fake-upstream-server is started as a process. */
#include "ens-fake-upstream.h"

#include <signal.h>
#include <string.h>

typedef struct {
  guint status;             /* 0: no answer at all */
  GHashTable *headers;      /* lower-case name -> value */
  GString *body;            /* de-chunked */
  GPtrArray *chunks;        /* char *, each HTTP chunk (or read, without chunked encoding) */
  GArray *chunk_ms;         /* gint64, when each arrived, since the request */
  gint64 headers_ms;        /* when the status line arrived */
  gboolean complete;        /* the body ended as its framing says */
  gboolean timed_out;       /* a read waited for longer than the socket timeout */
} Reply;

static void
reply_free (Reply *r)
{
  g_hash_table_unref (r->headers);
  g_string_free (r->body, TRUE);
  g_ptr_array_unref (r->chunks);
  g_array_unref (r->chunk_ms);
  g_free (r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

static guint16 port;        /* the in-process upstream's */
static guint16 server_port; /* ens-fake-upstream-server's */
/* ENS_TEST_TIMEOUT_SCALE (> 1 under sanitizers): the waits below are only
 * there to turn a hang into a failure, and must not fail a slow machine. */
static guint scale = 1;

static GSocketConnection *
connect_to (guint16 to)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GError) error = NULL;
  GSocketConnection *conn = g_socket_client_connect_to_host (client, "127.0.0.1", to, NULL, &error);

  g_assert_no_error (error);
  /* A read that waits this long fails the test instead of hanging it. */
  g_socket_set_timeout (g_socket_connection_get_socket (conn), 10 * scale);
  return conn;
}

static void
send_request (GSocketConnection *conn, const char *method, const char *path, const char *headers,
              const char *body)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_strdup_printf ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\n"
                                           "Content-Length: %zu\r\n\r\n%s",
                                           method, path, headers ? headers : "", body ? strlen (body) : 0,
                                           body ? body : "");

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), text, strlen (text), NULL, NULL,
                             &error);
  g_assert_no_error (error);
}

static char *
read_line (GDataInputStream *in, Reply *r)
{
  g_autoptr (GError) error = NULL;
  char *line = g_data_input_stream_read_line (in, NULL, NULL, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    r->timed_out = TRUE;
  return line;
}

static gboolean
read_all (GDataInputStream *in, Reply *r, char *data, gsize size)
{
  g_autoptr (GError) error = NULL;
  gsize got = 0;

  if (g_input_stream_read_all (G_INPUT_STREAM (in), data, size, &got, NULL, &error) && got == size)
    return TRUE;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    r->timed_out = TRUE;
  return FALSE;
}

/* Reads one answer from @in; stops at the end of the body, at end-of-file
 * or at an error. */
static Reply *
read_reply (GDataInputStream *in, gint64 sent_us)
{
  Reply *r = g_new0 (Reply, 1);
  g_autofree char *line = NULL;
  const char *encoding, *length;

  r->headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  r->body = g_string_new (NULL);
  r->chunks = g_ptr_array_new_with_free_func (g_free);
  r->chunk_ms = g_array_new (FALSE, FALSE, sizeof (gint64));
  line = read_line (in, r);
  if (line == NULL)
    return r;
  r->headers_ms = (g_get_monotonic_time () - sent_us) / 1000;
  g_assert_true (g_str_has_prefix (line, "HTTP/1.1 "));
  r->status = (guint) g_ascii_strtoull (line + 9, NULL, 10);
  for (;;)
    {
      g_autofree char *h = read_line (in, r);
      char *colon;

      if (h == NULL)
        return r;
      g_strchomp (h);
      if (*h == '\0')
        break;
      colon = strchr (h, ':');
      g_assert_nonnull (colon);
      *colon = '\0';
      g_hash_table_insert (r->headers, g_ascii_strdown (h, -1), g_strdup (g_strstrip (colon + 1)));
    }
  encoding = g_hash_table_lookup (r->headers, "transfer-encoding");
  length = g_hash_table_lookup (r->headers, "content-length");
  if (encoding && g_ascii_strcasecmp (encoding, "chunked") == 0)
    for (;;)
      {
        g_autofree char *size_line = read_line (in, r);
        g_autofree char *data = NULL;
        gsize size;
        gint64 at;

        if (size_line == NULL)
          return r;
        size = (gsize) g_ascii_strtoull (size_line, NULL, 16);
        data = g_malloc (size + 2);
        if (!read_all (in, r, data, size + 2))
          return r;
        if (size == 0)
          {
            r->complete = TRUE;
            return r;
          }
        at = (g_get_monotonic_time () - sent_us) / 1000;
        g_string_append_len (r->body, data, (gssize) size);
        g_ptr_array_add (r->chunks, g_strndup (data, size));
        g_array_append_val (r->chunk_ms, at);
      }
  else if (length)
    {
      /* Read as it comes: each read is one arrival, as a chunk is. */
      gsize left = (gsize) g_ascii_strtoull (length, NULL, 10);

      while (left > 0)
        {
          g_autoptr (GError) error = NULL;
          char data[65536];
          /* What is buffered already, alone: a buffered read for more would
           * wait for the next arrival and merge the two. */
          gsize buffered = g_buffered_input_stream_get_available (G_BUFFERED_INPUT_STREAM (in));
          gsize want = MIN (left, buffered > 0 ? MIN (buffered, sizeof data) : sizeof data);
          gssize got = g_input_stream_read (G_INPUT_STREAM (in), data, want, NULL, &error);
          gint64 at = (g_get_monotonic_time () - sent_us) / 1000;

          if (got <= 0)
            {
              r->timed_out = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
              return r;
            }
          g_string_append_len (r->body, data, got);
          g_ptr_array_add (r->chunks, g_strndup (data, (gsize) got));
          g_array_append_val (r->chunk_ms, at);
          left -= (gsize) got;
        }
      r->complete = TRUE;
    }
  return r;
}

/* One request on a new connection to @to, its answer read to the end. */
static Reply *
http_to (guint16 to, const char *method, const char *path, const char *headers, const char *body)
{
  g_autoptr (GSocketConnection) conn = connect_to (to);
  g_autoptr (GDataInputStream) in =
    g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  gint64 sent;
  Reply *r;

  g_data_input_stream_set_newline_type (in, G_DATA_STREAM_NEWLINE_TYPE_CR_LF);
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
  sent = g_get_monotonic_time ();
  send_request (conn, method, path, headers, body);
  r = read_reply (in, sent);
  /* Every answer, whole or cut, ends by itself. */
  g_assert_false (r->timed_out);
  return r;
}

static Reply *
http (const char *method, const char *path, const char *headers, const char *body)
{
  return http_to (port, method, path, headers, body);
}

static JsonObject *
json_of (Reply *r, JsonNode **keep)
{
  g_autoptr (GError) error = NULL;

  *keep = json_from_string (r->body->str, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (*keep));
  return json_node_get_object (*keep);
}

/* The data: lines of an SSE body, in order. */
static GPtrArray *
sse_data (Reply *r)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) lines = g_strsplit (r->body->str, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "data: "))
      g_ptr_array_add (out, g_strdup (lines[i] + 6));
  return out;
}

static gboolean
is_json (const char *text)
{
  g_autoptr (JsonNode) node = json_from_string (text, NULL);
  return node != NULL;
}

static JsonObject *
stats (JsonNode **keep)
{
  g_autoptr (Reply) r = http ("GET", "/fake/stats", NULL, NULL);

  g_assert_cmpuint (r->status, ==, 200);
  return json_of (r, keep);
}

#define CHAT "{\"model\":\"m-1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
#define CHAT_STREAM \
  "{\"model\":\"m-1\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[]}"
#define MESSAGES "{\"model\":\"claude-x\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
#define MESSAGES_STREAM "{\"model\":\"claude-x\",\"stream\":true,\"max_tokens\":10,\"messages\":[]}"

/* ------------------------------------------------------------------ tests */

static void
test_script_parse (void)
{
  FakeScript s;
  g_autoptr (GError) error = NULL;

  fake_script_init (&s);
  g_assert_cmpuint (s.chunks, ==, 3);
  g_assert_cmpint (s.cut, <, 0);
  g_assert_true (fake_script_parse (&s, NULL, &error));
  g_assert_true (fake_script_parse (&s, " stream , chunks=20,interval=10,delay=5,gap=2:300,cut=4,no-end,"
                                        "malformed=1,status=429,retry-after=2,times=3,reset,dims=16", &error));
  g_assert_no_error (error);
  g_assert_cmpint (s.stream, ==, FAKE_STREAM_ALWAYS);
  g_assert_cmpuint (s.chunks, ==, 20);
  g_assert_cmpuint (s.interval_ms, ==, 10);
  g_assert_cmpuint (s.delay_ms, ==, 5);
  g_assert_cmpint (s.gap_at, ==, 2);
  g_assert_cmpuint (s.gap_ms, ==, 300);
  g_assert_cmpint (s.cut, ==, 4);
  g_assert_true (s.no_end);
  g_assert_cmpint (s.malformed, ==, 1);
  g_assert_cmpuint (s.status, ==, 429);
  g_assert_cmpuint (s.retry_after, ==, 2);
  g_assert_cmpuint (s.times, ==, 3);
  g_assert_true (s.reset);
  g_assert_cmpuint (s.dims, ==, 16);

  /* Bad words and values: an error naming the word, the script unchanged. */
  {
    static const char *const bad[] = { "chunks", "chunks=x", "chunks=-1", "status=99", "status=600", "gap=3",
                                       "gap=a:1", "stream=1", "times=0", "dims=0", "cut=", "bogus", "plain,nope" };
    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        FakeScript before = s;

        g_clear_error (&error);
        g_assert_false (fake_script_parse (&s, bad[i], &error));
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        g_assert_true (memcmp (&before, &s, sizeof s) == 0);
      }
    g_assert_nonnull (strstr (error->message, "nope"));
  }
}

static void
test_openai_plain (void)
{
  g_autoptr (Reply) r = http ("POST", "/v1/chat/completions", NULL, CHAT);
  g_autoptr (JsonNode) keep = NULL;
  JsonObject *o, *message, *usage;

  g_assert_cmpuint (r->status, ==, 200);
  g_assert_true (r->complete);
  g_assert_cmpstr (g_hash_table_lookup (r->headers, "content-type"), ==, "application/json");
  o = json_of (r, &keep);
  g_assert_cmpstr (json_object_get_string_member (o, "object"), ==, "chat.completion");
  g_assert_cmpstr (json_object_get_string_member (o, "model"), ==, "m-1");
  message = json_object_get_object_member (
    json_array_get_object_element (json_object_get_array_member (o, "choices"), 0), "message");
  g_assert_cmpstr (json_object_get_string_member (message, "content"), ==, "w0 w1 w2 ");
  usage = json_object_get_object_member (o, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "completion_tokens"), ==, 3);
}

static void
test_openai_stream (void)
{
  g_autoptr (Reply) r = http ("POST", "/v1/chat/completions", "x-fake-mode: chunks=5\r\n", CHAT_STREAM);
  g_autoptr (GPtrArray) data = sse_data (r);
  GString *text = g_string_new (NULL);
  g_autofree char *joined = NULL;

  g_assert_cmpuint (r->status, ==, 200);
  g_assert_true (r->complete);
  g_assert_true (g_str_has_prefix (g_hash_table_lookup (r->headers, "content-type"), "text/event-stream"));
  /* role, 5 contents, finish, usage, [DONE] */
  g_assert_cmpuint (data->len, ==, 9);
  for (guint i = 0; i + 1 < data->len; i++)
    {
      g_autoptr (JsonNode) node = json_from_string (g_ptr_array_index (data, i), NULL);
      JsonObject *o = json_node_get_object (node);
      JsonArray *choices = json_object_get_array_member (o, "choices");

      g_assert_cmpstr (json_object_get_string_member (o, "model"), ==, "m-1");
      if (json_array_get_length (choices) > 0)
        {
          JsonObject *delta = json_object_get_object_member (json_array_get_object_element (choices, 0), "delta");
          if (json_object_has_member (delta, "content"))
            g_string_append (text, json_object_get_string_member (delta, "content"));
        }
      else
        g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o, "usage"),
                                                     "completion_tokens"), ==, 5);
    }
  joined = g_string_free (text, FALSE);
  g_assert_cmpstr (joined, ==, "w0 w1 w2 w3 w4 ");
  g_assert_cmpstr (g_ptr_array_index (data, data->len - 1), ==, "[DONE]");
  g_assert_nonnull (strstr (g_ptr_array_index (data, 7), "\"usage\""));
}

/* Without stream_options.include_usage no usage chunk; "plain" wins over
 * the request's stream. */
static void
test_openai_stream_choices (void)
{
  g_autoptr (Reply) r = http ("POST", "/v1/chat/completions", NULL, "{\"stream\":true,\"messages\":[]}");
  g_autoptr (GPtrArray) data = sse_data (r);
  g_autoptr (Reply) p = http ("POST", "/plain/v1/chat/completions", NULL, "{\"stream\":true,\"messages\":[]}");
  g_autoptr (Reply) s = http ("POST", "/stream/v1/chat/completions", NULL, CHAT);

  g_assert_cmpuint (data->len, ==, 1 + 3 + 1 + 1);
  for (guint i = 0; i < data->len; i++)
    g_assert_null (strstr (g_ptr_array_index (data, i), "usage"));
  g_assert_nonnull (strstr (g_ptr_array_index (data, 0), "\"model\":\"fake-model\""));
  g_assert_cmpstr (g_hash_table_lookup (p->headers, "content-type"), ==, "application/json");
  g_assert_true (g_str_has_prefix (g_hash_table_lookup (s->headers, "content-type"), "text/event-stream"));
}

static void
test_interval_and_delay (void)
{
  g_autoptr (Reply) r = http ("POST", "/v1/chat/completions", "x-fake-mode: chunks=4,interval=60,delay=150\r\n",
                              CHAT_STREAM);
  gint64 first, last;

  g_assert_true (r->complete);
  g_assert_cmpint (r->headers_ms, >=, 150);
  first = g_array_index (r->chunk_ms, gint64, 0);
  last = g_array_index (r->chunk_ms, gint64, r->chunk_ms->len - 1);
  /* role+w0 at once after the delay, then w1..w3 and the tail 60 ms apart */
  g_assert_cmpint (first, >=, 150);
  /* Only bounds from the request's start hold on a loaded machine: a chunk
   * read late shortens the gap measured after it. */
  g_assert_cmpint (last, >=, 150 + (gint64) (r->chunk_ms->len - 1) * 60);
}

static void
test_plain_delay (void)
{
  g_autoptr (Reply) r = http ("POST", "/delay=200/v1/chat/completions", NULL, CHAT);

  g_assert_cmpuint (r->status, ==, 200);
  g_assert_cmpint (r->headers_ms, >=, 200);
  g_assert_true (r->complete);
}

static void
test_gap (void)
{
  g_autoptr (Reply) r = http ("POST", "/v1/chat/completions", "x-fake-mode: chunks=4,gap=2:300\r\n", CHAT_STREAM);
  gint64 before, after;
  guint at = 0;

  g_assert_true (r->complete);
  /* The chunk carrying w2 comes 300 ms after the one before it. */
  for (guint i = 0; i < r->chunks->len; i++)
    if (strstr (g_ptr_array_index (r->chunks, i), "\"w2 \""))
      at = i;
  g_assert_cmpuint (at, >, 0);
  before = g_array_index (r->chunk_ms, gint64, at - 1);
  after = g_array_index (r->chunk_ms, gint64, at);
  /* w2 cannot leave the server before 300 ms have passed since the request;
   * the gap seen here is shorter when the chunk before it was read late. */
  g_assert_cmpint (after, >=, 300);
  g_assert_cmpint (after, >, before);
}

static void
test_error_status (void)
{
  g_autoptr (Reply) r = http ("POST", "/v1/chat/completions", "x-fake-mode: status=429,retry-after=2\r\n", CHAT);
  g_autoptr (Reply) a = http ("POST", "/status=529/v1/messages", NULL, MESSAGES);
  g_autoptr (JsonNode) keep = NULL, keep_a = NULL;
  JsonObject *o = json_of (r, &keep), *oa = json_of (a, &keep_a);

  g_assert_cmpuint (r->status, ==, 429);
  g_assert_cmpstr (g_hash_table_lookup (r->headers, "retry-after"), ==, "2");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "error"), "type"), ==,
                   "rate_limit_error");
  g_assert_nonnull (strstr (json_object_get_string_member (json_object_get_object_member (o, "error"), "message"),
                            "429"));
  g_assert_cmpuint (a->status, ==, 529);
  g_assert_cmpstr (json_object_get_string_member (oa, "type"), ==, "error");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (oa, "error"), "type"), ==,
                   "overloaded_error");
  g_assert_null (g_hash_table_lookup (a->headers, "retry-after"));
}

/* times=N: the failure holds for the first N requests with that script. */
static void
test_times (void)
{
  g_autoptr (Reply) r1 = http ("POST", "/v1/chat/completions", "x-fake-mode: status=500,times=2,chunks=1\r\n", CHAT);
  g_autoptr (Reply) r2 = http ("POST", "/v1/chat/completions", "x-fake-mode: status=500,times=2,chunks=1\r\n", CHAT);
  g_autoptr (Reply) r3 = http ("POST", "/v1/chat/completions", "x-fake-mode: status=500,times=2,chunks=1\r\n", CHAT);
  g_autoptr (Reply) other = http ("POST", "/v1/chat/completions", "x-fake-mode: status=500,times=2,chunks=2\r\n", CHAT);

  g_assert_cmpuint (r1->status, ==, 500);
  g_assert_cmpuint (r2->status, ==, 500);
  g_assert_cmpuint (r3->status, ==, 200);
  g_assert_nonnull (strstr (r3->body->str, "\"w0 \""));
  g_assert_cmpuint (other->status, ==, 500); /* another script text: its own count */
}

static void
test_reset (void)
{
  g_autoptr (Reply) r = http ("POST", "/v1/chat/completions", "x-fake-mode: reset\r\n", CHAT);

  g_assert_cmpuint (r->status, ==, 0);
  g_assert_false (r->complete);
}

static void
test_cut (void)
{
  g_autoptr (Reply) mid = http ("POST", "/v1/chat/completions", "x-fake-mode: chunks=6,cut=2\r\n", CHAT_STREAM);
  g_autoptr (Reply) before = http ("POST", "/v1/chat/completions", "x-fake-mode: cut=0\r\n", CHAT_STREAM);
  g_autoptr (Reply) slow = http ("POST", "/v1/chat/completions", "x-fake-mode: chunks=6,cut=3,interval=20\r\n",
                                 CHAT_STREAM);
  g_autoptr (Reply) plain = http ("POST", "/v1/chat/completions", "x-fake-mode: cut=1\r\n", CHAT);
  g_autoptr (GPtrArray) mid_data = sse_data (mid);
  g_autoptr (GPtrArray) slow_data = sse_data (slow);

  /* Cut inside the chunked body: no terminal chunk, after exactly what was asked. */
  g_assert_cmpuint (mid->status, ==, 200);
  g_assert_false (mid->complete);
  g_assert_cmpuint (mid_data->len, ==, 3); /* role, w0, w1 */
  g_assert_nonnull (strstr (g_ptr_array_index (mid_data, 2), "\"w1 \""));
  g_assert_cmpuint (slow_data->len, ==, 4);
  g_assert_false (slow->complete);
  g_assert_cmpuint (before->status, ==, 200);
  g_assert_false (before->complete);
  g_assert_null (strstr (before->body->str, "\"w0 \""));
  g_assert_cmpuint (plain->status, ==, 200);
  g_assert_false (plain->complete);
  g_assert_false (is_json (plain->body->str));
}

static void
test_no_end_and_malformed (void)
{
  g_autoptr (Reply) r = http ("POST", "/v1/chat/completions", "x-fake-mode: no-end\r\n", CHAT_STREAM);
  g_autoptr (Reply) m = http ("POST", "/v1/chat/completions", "x-fake-mode: malformed=1\r\n", CHAT_STREAM);
  g_autoptr (Reply) p = http ("POST", "/malformed=0/v1/chat/completions", NULL, CHAT);
  g_autoptr (GPtrArray) data = sse_data (r);
  g_autoptr (GPtrArray) mdata = sse_data (m);

  g_assert_true (r->complete); /* the body ends cleanly... */
  for (guint i = 0; i < data->len; i++)
    {
      g_assert_cmpstr (g_ptr_array_index (data, i), !=, "[DONE]"); /* ...without the terminator */
      g_assert_true (is_json (g_ptr_array_index (data, i)));
    }
  g_assert_nonnull (strstr (g_ptr_array_index (data, data->len - 1), "\"usage\""));
  g_assert_true (m->complete);
  g_assert_cmpstr (g_ptr_array_index (mdata, mdata->len - 1), ==, "[DONE]");
  for (guint i = 0; i + 1 < mdata->len; i++)
    g_assert_true (is_json (g_ptr_array_index (mdata, i)) == (i != 2)); /* role, w0, [w1 broken], ... */
  g_assert_cmpuint (p->status, ==, 200);
  g_assert_false (is_json (p->body->str));
}

static void
test_anthropic (void)
{
  g_autoptr (Reply) r = http ("POST", "/v1/messages", NULL, MESSAGES);
  g_autoptr (Reply) s = http ("POST", "/v1/messages", "x-fake-mode: chunks=2\r\n", MESSAGES_STREAM);
  g_autoptr (Reply) n = http ("POST", "/v1/messages", "x-fake-mode: no-end\r\n", MESSAGES_STREAM);
  g_autoptr (Reply) c = http ("POST", "/v1/messages", "x-fake-mode: cut=1\r\n", MESSAGES_STREAM);
  g_autoptr (JsonNode) keep = NULL;
  JsonObject *o = json_of (r, &keep);
  g_autoptr (GPtrArray) data = sse_data (s);
  static const char *const types[] = { "message_start", "content_block_start", "content_block_delta",
                                       "content_block_delta", "content_block_stop", "message_delta", "message_stop" };

  g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, "message");
  g_assert_cmpstr (json_object_get_string_member (o, "model"), ==, "claude-x");
  g_assert_cmpstr (json_object_get_string_member (
                     json_array_get_object_element (json_object_get_array_member (o, "content"), 0), "text"),
                   ==, "w0 w1 w2 ");
  g_assert_cmpstr (json_object_get_string_member (o, "stop_reason"), ==, "end_turn");
  g_assert_cmpuint (data->len, ==, G_N_ELEMENTS (types));
  for (guint i = 0; i < data->len; i++)
    {
      g_autoptr (JsonNode) node = json_from_string (g_ptr_array_index (data, i), NULL);
      g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "type"), ==, types[i]);
    }
  g_assert_nonnull (strstr (s->body->str, "event: message_stop\n"));
  g_assert_true (n->complete);
  g_assert_null (strstr (n->body->str, "message_stop"));
  g_assert_nonnull (strstr (n->body->str, "message_delta"));
  g_assert_false (c->complete);
  g_assert_nonnull (strstr (c->body->str, "\"w0 \""));
  g_assert_null (strstr (c->body->str, "\"w1 \""));
}

static void
test_embeddings_and_models (void)
{
  g_autoptr (Reply) e = http ("POST", "/dims=4/v1/embeddings", NULL, "{\"model\":\"e\",\"input\":[\"a cat\",\"a dog\"]}");
  g_autoptr (Reply) e2 = http ("POST", "/dims=4/v1/embeddings", NULL, "{\"input\":\"a dog\"}");
  g_autoptr (Reply) m = http ("GET", "/v1/models", NULL, NULL);
  g_autoptr (JsonNode) keep = NULL, keep2 = NULL, keep_m = NULL;
  JsonObject *o = json_of (e, &keep), *o2 = json_of (e2, &keep2), *om = json_of (m, &keep_m);
  JsonArray *data = json_object_get_array_member (o, "data");
  JsonArray *dog = json_object_get_array_member (json_array_get_object_element (data, 1), "embedding");
  JsonArray *dog2 = json_object_get_array_member (
    json_array_get_object_element (json_object_get_array_member (o2, "data"), 0), "embedding");
  double norm = 0;

  g_assert_cmpuint (json_array_get_length (data), ==, 2);
  g_assert_cmpuint (json_array_get_length (dog), ==, 4);
  for (guint i = 0; i < 4; i++)
    {
      double v = json_array_get_double_element (dog, i);
      norm += v * v;
      g_assert_cmpfloat (v, ==, json_array_get_double_element (dog2, i)); /* same text, same vector */
    }
  g_assert_cmpfloat_with_epsilon (norm, 1.0, 1e-4);
  g_assert_cmpfloat (json_array_get_double_element (dog, 0), !=,
                     json_array_get_double_element (
                       json_object_get_array_member (json_array_get_object_element (data, 0), "embedding"), 0));
  g_assert_cmpstr (json_object_get_string_member (om, "object"), ==, "list");
  g_assert_cmpstr (json_object_get_string_member (
                     json_array_get_object_element (json_object_get_array_member (om, "data"), 0), "id"),
                   ==, "fake-model");
}

/* Bad input gets the dialect's error answer, not silence. */
static void
test_bad_input (void)
{
  g_autoptr (Reply) body = http ("POST", "/v1/chat/completions", NULL, "{not json");
  g_autoptr (Reply) abody = http ("POST", "/v1/messages", NULL, "[]");
  g_autoptr (Reply) mode = http ("POST", "/v1/chat/completions", "x-fake-mode: chunks=lots\r\n", CHAT);
  g_autoptr (Reply) path = http ("POST", "/nonsense/v1/chat/completions", NULL, CHAT);
  g_autoptr (Reply) route = http ("GET", "/v2/whatever", NULL, NULL);
  g_autoptr (Reply) method = http ("GET", "/v1/chat/completions", NULL, NULL);
  g_autoptr (Reply) emb = http ("POST", "/v1/embeddings", NULL, "{\"input\":[1,2]}");
  g_autoptr (JsonNode) keep = NULL, keep_a = NULL, keep_m = NULL;

  g_assert_cmpuint (body->status, ==, 400);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (json_of (body, &keep), "error"),
                                                  "type"), ==, "invalid_request_error");
  g_assert_cmpuint (abody->status, ==, 400);
  g_assert_cmpstr (json_object_get_string_member (json_of (abody, &keep_a), "type"), ==, "error");
  g_assert_cmpuint (mode->status, ==, 400);
  g_assert_nonnull (strstr (json_object_get_string_member (
                              json_object_get_object_member (json_of (mode, &keep_m), "error"), "message"),
                            "chunks"));
  g_assert_cmpuint (path->status, ==, 400);
  g_assert_cmpuint (route->status, ==, 404);
  g_assert_cmpuint (method->status, ==, 404);
  g_assert_cmpuint (emb->status, ==, 400);
}

/* Stats: requests counted; established connections as the kernel sees
 * them; a client that leaves mid-stream counted. */
static void
test_stats (void)
{
  g_autoptr (JsonNode) k1 = NULL, k2 = NULL, k3 = NULL;
  JsonObject *s1 = stats (&k1), *s2, *s3;
  g_autoptr (GSocketConnection) held = connect_to (port);
  g_autoptr (GSocketConnection) streaming = connect_to (port);
  g_autoptr (GDataInputStream) in =
    g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (streaming)));
  gint64 deadline;
  char buf[256];

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
  s2 = stats (&k2);
  g_assert_cmpint (json_object_get_int_member (s2, "requests"), ==, json_object_get_int_member (s1, "requests"));
  /* held, streaming, and the stats request's own */
  g_assert_cmpint (json_object_get_int_member (s2, "connections"), >=, 3);

  send_request (streaming, "POST", "/v1/chat/completions", "x-fake-mode: chunks=1000,interval=10\r\n", CHAT_STREAM);
  g_assert_cmpint (g_input_stream_read (G_INPUT_STREAM (in), buf, sizeof buf, NULL, NULL), >, 0);
  g_io_stream_close (G_IO_STREAM (streaming), NULL, NULL);
  g_io_stream_close (G_IO_STREAM (held), NULL, NULL);
  deadline = g_get_monotonic_time () + 10 * scale * G_USEC_PER_SEC;
  for (;;)
    {
      g_clear_pointer (&k3, json_node_unref);
      s3 = stats (&k3);
      g_assert_cmpint (json_object_get_int_member (s3, "requests"), ==, json_object_get_int_member (s1, "requests") + 1);
      if (json_object_get_int_member (s3, "client_aborts") == json_object_get_int_member (s1, "client_aborts") + 1 &&
          json_object_get_int_member (s3, "connections") <= json_object_get_int_member (s2, "connections") - 2)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (20000);
    }
}

/* ens-fake-upstream-server: the port on stdout, the options as its default
 * script, per-request scripts on top, a clean exit on SIGTERM. */
static void
test_server_process (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  const char *exe = g_getenv ("ENS_FAKE_UPSTREAM_SERVER");
  guint64 p;

  g_assert_nonnull (exe);
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, exe, "--mode", "stream", "--chunks", "2",
                           "--delay", "20", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_ascii_string_to_unsigned (line, 10, 1, 65535, &p, NULL));
  server_port = (guint16) p;
  {
    g_autoptr (Reply) r = http_to (server_port, "POST", "/v1/chat/completions", NULL, CHAT);
    g_autoptr (GPtrArray) data = sse_data (r);
    g_autoptr (Reply) e = http_to (server_port, "POST", "/v1/chat/completions", "x-fake-mode: status=503\r\n", CHAT);
    g_autoptr (Reply) m = http_to (server_port, "POST", "/v1/messages", "x-fake-mode: plain\r\n", MESSAGES);

    g_assert_cmpuint (r->status, ==, 200);
    g_assert_cmpint (r->headers_ms, >=, 20);
    g_assert_cmpuint (data->len, ==, 1 + 2 + 1 + 1); /* stream although not asked; 2 chunks */
    g_assert_cmpuint (e->status, ==, 503);
    g_assert_cmpuint (m->status, ==, 200);
    g_assert_nonnull (strstr (m->body->str, "\"w0 w1 \""));
  }
  g_subprocess_send_signal (proc, SIGTERM);
  g_assert_true (g_subprocess_wait (proc, NULL, &error));
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 0);

  /* Bad options: refused with a message, exit status 2. */
  {
    g_autoptr (GSubprocess) bad = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                                    &error, exe, "--mode", "chunks=many", NULL);
    g_autofree char *err = NULL;

    g_assert_no_error (error);
    g_assert_true (g_subprocess_communicate_utf8 (bad, NULL, NULL, NULL, &err, &error));
    g_assert_cmpint (g_subprocess_get_exit_status (bad), ==, 2);
    g_assert_nonnull (strstr (err, "chunks"));
  }
}

/* ---------------------------------------------------------------- main */

typedef struct {
  GMutex lock;
  GCond cond;
  guint16 port;
  GMainLoop *loop;
} Thread;

static gpointer
upstream_thread (gpointer data)
{
  Thread *t = data;
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (FakeUpstream) up = NULL;
  FakeScript script;

  g_main_context_push_thread_default (context);
  fake_script_init (&script);
  up = fake_upstream_new (&script, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fake_upstream_port (up), >, 0);
  g_assert_true (g_str_has_prefix (fake_upstream_url (up), "http://127.0.0.1:"));
  t->loop = g_main_loop_new (context, FALSE);
  g_mutex_lock (&t->lock);
  t->port = fake_upstream_port (up);
  g_cond_signal (&t->cond);
  g_mutex_unlock (&t->lock);
  g_main_loop_run (t->loop);
  g_clear_pointer (&up, fake_upstream_free);
  /* let the closed connections be freed */
  while (g_main_context_iteration (context, FALSE))
    ;
  g_main_context_pop_thread_default (context);
  return NULL;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  Thread t = { 0 };
  GThread *thread;
  int ret;

  g_test_init (&argc, &argv, NULL);
  signal (SIGPIPE, SIG_IGN);
  if (g_getenv ("ENS_TEST_TIMEOUT_SCALE"))
    scale = (guint) CLAMP (g_ascii_strtoull (g_getenv ("ENS_TEST_TIMEOUT_SCALE"), NULL, 10), 1, 100);
  g_unsetenv ("http_proxy");
  g_mutex_init (&t.lock);
  g_cond_init (&t.cond);
  thread = g_thread_new ("upstream", upstream_thread, &t);
  g_mutex_lock (&t.lock);
  while (t.port == 0)
    g_cond_wait (&t.cond, &t.lock);
  g_mutex_unlock (&t.lock);
  port = t.port;

  g_test_add_func ("/fake-upstream/script-parse", test_script_parse);
  g_test_add_func ("/fake-upstream/openai-plain", test_openai_plain);
  g_test_add_func ("/fake-upstream/openai-stream", test_openai_stream);
  g_test_add_func ("/fake-upstream/openai-stream-choices", test_openai_stream_choices);
  g_test_add_func ("/fake-upstream/interval-and-delay", test_interval_and_delay);
  g_test_add_func ("/fake-upstream/plain-delay", test_plain_delay);
  g_test_add_func ("/fake-upstream/gap", test_gap);
  g_test_add_func ("/fake-upstream/error-status", test_error_status);
  g_test_add_func ("/fake-upstream/times", test_times);
  g_test_add_func ("/fake-upstream/reset", test_reset);
  g_test_add_func ("/fake-upstream/cut", test_cut);
  g_test_add_func ("/fake-upstream/no-end-and-malformed", test_no_end_and_malformed);
  g_test_add_func ("/fake-upstream/anthropic", test_anthropic);
  g_test_add_func ("/fake-upstream/embeddings-and-models", test_embeddings_and_models);
  g_test_add_func ("/fake-upstream/bad-input", test_bad_input);
  g_test_add_func ("/fake-upstream/stats", test_stats);
  g_test_add_func ("/fake-upstream/server-process", test_server_process);
  ret = g_test_run ();

  g_main_context_invoke (g_main_loop_get_context (t.loop), quit_loop, t.loop);
  g_thread_join (thread);
  g_main_loop_unref (t.loop);
  return ret;
}
