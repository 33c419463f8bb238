/* test-upstream-response.c — the upstream library's HTTP/1.1 answer
 * reader on bytes: framings (Content-Length, chunked, to the end of the
 * connection), every split of the input, interim answers, keep-alive, and
 * answers that are not HTTP. */
#include "ens-upstream-response.h"

#include <gio/gio.h>
#include <string.h>

typedef struct {
  guint heads, ends;
  GString *body;
} Seen;

static void
seen_head (gpointer user_data)
{
  ((Seen *) user_data)->heads++;
}

static void
seen_body (gpointer user_data, const char *data, gsize len)
{
  g_assert_cmpuint (len, >, 0);
  g_string_append_len (((Seen *) user_data)->body, data, (gssize) len);
}

static void
seen_end (gpointer user_data)
{
  ((Seen *) user_data)->ends++;
}

static const EnsUpstreamResponseSink sink = { seen_head, seen_body, seen_end };

/* Feeds @text in pieces of @step bytes; returns the bytes consumed in all,
 * or -1 at the first error (@error set). */
static gssize
feed_split (EnsUpstreamResponse *r, const char *text, gsize step, Seen *seen, GError **error)
{
  gsize len = strlen (text), pos = 0;

  while (pos < len)
    {
      gsize n = MIN (step, len - pos);
      gssize used = ens_upstream_response_feed (r, text + pos, n, &sink, seen, error);

      if (used < 0)
        return -1;
      pos += (gsize) used;
      if ((gsize) used < n)
        break;
    }
  return (gssize) pos;
}

/* @text is one whole answer (optionally followed by @extra bytes that are
 * not part of it): at every split size the same head, body and end. */
static void
check_answer (const char *text, const char *extra, guint status, const char *body, gboolean keep_alive)
{
  g_autofree char *all = g_strconcat (text, extra, NULL);

  for (gsize step = 1; step <= strlen (all); step++)
    {
      g_autoptr (GError) error = NULL;
      EnsUpstreamResponse *r = ens_upstream_response_new (FALSE);
      Seen seen = { 0, 0, g_string_new (NULL) };
      gssize used = feed_split (r, all, step, &seen, &error);

      g_assert_no_error (error);
      g_assert_cmpint (used, ==, (gssize) strlen (text));
      g_assert_cmpuint (seen.heads, ==, 1);
      g_assert_cmpuint (seen.ends, ==, 1);
      g_assert_cmpstr (seen.body->str, ==, body);
      g_assert_true (ens_upstream_response_done (r));
      g_assert_cmpuint (ens_upstream_response_status (r), ==, status);
      g_assert_cmpint (ens_upstream_response_keep_alive (r), ==, keep_alive);
      g_string_free (seen.body, TRUE);
      ens_upstream_response_free (r);
    }
}

static void
test_framings (void)
{
  check_answer ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"bcd\"}", "",
                200, "{\"a\":\"bcd\"}", TRUE);
  /* Chunked, with an extension, a zero-padded size, trailers; bytes after
   * the answer are left unconsumed. */
  check_answer ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5;name=value\r\nhello\r\n001\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: 1\r\n\r\n",
                "HTTP/1.1 200 OK\r\n", 200, "hello world!", TRUE);
  /* Bare line feeds. */
  check_answer ("HTTP/1.1 429 Too Many\nRetry-After: 2\nContent-Length: 2\n\nno", "", 429, "no", TRUE);
  /* Interim answers are skipped. */
  check_answer ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", "", 201, "", TRUE);
  /* No body whatever the headers say. */
  check_answer ("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "", 204, "", TRUE);
  check_answer ("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx", "", 200, "x", FALSE);
  check_answer ("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "", 200, "x", FALSE);
  check_answer ("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", "", 200, "x", TRUE);
}

static void
test_headers (void)
{
  const char *text = "HTTP/1.1 200 OK\r\nContent-Type:  Text/Event-Stream ; charset=utf-8\r\n"
                     "x-empty:\r\nRetry-After-Ms:\t250 \r\n\r\n";
  EnsUpstreamResponse *r = ens_upstream_response_new (FALSE);
  Seen seen = { 0, 0, g_string_new (NULL) };

  g_assert_cmpint (ens_upstream_response_feed (r, text, strlen (text), &sink, &seen, NULL), ==, (gssize) strlen (text));
  g_assert_true (ens_upstream_response_has_head (r));
  g_assert_cmpstr (ens_upstream_response_media_type (r), ==, "text/event-stream");
  g_assert_cmpstr (ens_upstream_response_header (r, "retry-after-ms"), ==, "250");
  g_assert_cmpstr (ens_upstream_response_header (r, "X-EMPTY"), ==, "");
  g_assert_null (ens_upstream_response_header (r, "retry-after"));
  /* Delimited by the end of the connection. */
  g_assert_false (ens_upstream_response_keep_alive (r));
  g_assert_cmpint (ens_upstream_response_feed (r, "data: 1\n\n", 9, &sink, &seen, NULL), ==, 9);
  g_assert_false (ens_upstream_response_done (r));
  g_assert_true (ens_upstream_response_eof (r, &sink, &seen));
  g_assert_cmpuint (seen.ends, ==, 1);
  g_assert_cmpstr (seen.body->str, ==, "data: 1\n\n");

  /* The next answer on the same connection. */
  ens_upstream_response_reset (r);
  g_string_truncate (seen.body, 0);
  g_assert_false (ens_upstream_response_started (r));
  text = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab";
  g_assert_cmpint (ens_upstream_response_feed (r, text, strlen (text), &sink, &seen, NULL), ==, (gssize) strlen (text));
  g_assert_true (ens_upstream_response_started (r));
  /* Cut short: the end of the connection does not complete it. */
  g_assert_false (ens_upstream_response_eof (r, &sink, &seen));
  g_assert_cmpuint (seen.ends, ==, 1);
  g_string_free (seen.body, TRUE);
  ens_upstream_response_free (r);

  /* Nothing at all. */
  r = ens_upstream_response_new (FALSE);
  g_assert_false (ens_upstream_response_eof (r, &sink, &seen));
  ens_upstream_response_free (r);
}

static void
test_bad (void)
{
  static const char *const bad[] = {
    "HTP/1.1 200 OK\r\n\r\n",
    "HTTP/2 200 OK\r\n\r\n",
    "HTTP/1.1 2x0 OK\r\n\r\n",
    "HTTP/1.1 20 OK\r\n\r\n",
    "HTTP/1.1 099 Low\r\n\r\n",
    "HTTP/1.1 200OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
    "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
    "HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
  };

  /* A NUL byte anywhere in the head (the head is read as text). */
  static const char nul[] = "HTTP/1.\0 200 OK\nA: b\0c\n\n";

  for (gsize step = 1; step <= sizeof nul - 1; step++)
    {
      g_autoptr (GError) error = NULL;
      EnsUpstreamResponse *r = ens_upstream_response_new (FALSE);
      Seen seen = { 0, 0, g_string_new (NULL) };
      gsize pos = 0;
      gssize used = 0;

      while (pos < sizeof nul - 1 && used >= 0)
        {
          gsize n = MIN (step, sizeof nul - 1 - pos);
          used = ens_upstream_response_feed (r, nul + pos, n, &sink, &seen, &error);
          pos += n;
        }
      g_assert_cmpint (used, ==, -1);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_assert_cmpuint (seen.heads, ==, 0);
      g_string_free (seen.body, TRUE);
      ens_upstream_response_free (r);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    for (gsize step = 1; step <= strlen (bad[i]); step++)
      {
        g_autoptr (GError) error = NULL;
        EnsUpstreamResponse *r = ens_upstream_response_new (FALSE);
        Seen seen = { 0, 0, g_string_new (NULL) };

        g_assert_cmpint (feed_split (r, bad[i], step, &seen, &error), ==, -1);
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
        g_assert_cmpuint (seen.ends, ==, 0);
        g_string_free (seen.body, TRUE);
        ens_upstream_response_free (r);
      }
}

static void
test_limits (void)
{
  g_autoptr (GError) error = NULL;
  EnsUpstreamResponse *r = ens_upstream_response_new (FALSE);
  Seen seen = { 0, 0, g_string_new (NULL) };
  g_autoptr (GString) big = g_string_new ("HTTP/1.1 200 OK\r\n");
  g_autofree char *line = NULL;

  /* A head that never ends. */
  while (big->len <= ENS_UPSTREAM_RESPONSE_MAX_HEAD)
    g_string_append (big, "X-Filler: 0123456789012345678901234567890123456789\r\n");
  g_assert_cmpint (feed_split (r, big->str, 4096, &seen, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_cmpuint (seen.heads, ==, 0);
  g_clear_error (&error);
  ens_upstream_response_free (r);

  /* A chunk-size line that never ends. */
  r = ens_upstream_response_new (FALSE);
  line = g_strnfill (8192, '0');
  g_assert_cmpint (feed_split (r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 64, &seen, &error), >, 0);
  g_assert_cmpint (feed_split (r, line, 100, &seen, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_string_free (seen.body, TRUE);
  ens_upstream_response_free (r);

  /* HEAD: no body. */
  r = ens_upstream_response_new (TRUE);
  seen.body = g_string_new (NULL);
  g_assert_cmpint (feed_split (r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 7, &seen, NULL), ==, 39);
  g_assert_true (ens_upstream_response_done (r));
  g_string_free (seen.body, TRUE);
  ens_upstream_response_free (r);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/upstream-response/framings", test_framings);
  g_test_add_func ("/upstream-response/headers", test_headers);
  g_test_add_func ("/upstream-response/bad", test_bad);
  g_test_add_func ("/upstream-response/limits", test_limits);
  return g_test_run ();
}
