/* fuzz-http-answer.c — an upstream's HTTP/1.1 answer (status line, headers,
 * a body by Content-Length, chunked or to the end of the connection), read
 * by plugins/common/upstream's answer reader.  The first byte of the input
 * picks the size of the pieces the rest is fed in; the same answer must
 * read the same in pieces as in one piece (head, body, end, bytes used,
 * error), the head at most once and before any body, nothing after the
 * end, and never more body than input. */
#include "ens-fuzz.h"
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
  Seen *s = user_data;

  g_assert (s->heads == 0 && s->ends == 0 && s->body->len == 0);
  s->heads++;
}

static void
seen_body (gpointer user_data, const char *data, gsize len)
{
  Seen *s = user_data;

  g_assert (s->heads == 1 && s->ends == 0 && len > 0);
  g_string_append_len (s->body, data, (gssize) len);
}

static void
seen_end (gpointer user_data)
{
  Seen *s = user_data;

  g_assert (s->heads == 1 && s->ends == 0);
  s->ends++;
}

static const EnsUpstreamResponseSink sink = { seen_head, seen_body, seen_end };

/* Feeds @data in pieces of @step; returns the bytes used, -1 on error. */
static gssize
read_answer (const char *data, gsize size, gsize step, Seen *seen, gboolean *eof_ok)
{
  EnsUpstreamResponse *r = ens_upstream_response_new (FALSE);
  gsize pos = 0;
  gssize result;

  seen->body = g_string_new (NULL);
  while (pos < size)
    {
      g_autoptr (GError) error = NULL;
      gsize n = MIN (step, size - pos);
      gssize used = ens_upstream_response_feed (r, data + pos, n, &sink, seen, &error);

      if (used < 0)
        {
          g_assert (error && error->domain == G_IO_ERROR && error->code == G_IO_ERROR_INVALID_DATA);
          ens_upstream_response_free (r);
          return -1;
        }
      g_assert ((gsize) used <= n);
      pos += (gsize) used;
      if ((gsize) used < n)
        {
          g_assert (ens_upstream_response_done (r));
          break;
        }
    }
  result = (gssize) pos;
  *eof_ok = ens_upstream_response_eof (r, &sink, seen);
  g_assert (!*eof_ok || seen->ends == 1);
  g_assert (seen->body->len <= size);
  ens_upstream_response_free (r);
  return result;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  ens_fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  Seen whole = { 0 }, pieces = { 0 };
  gboolean eof_whole, eof_pieces;
  gssize a, b;
  gsize step;

  if (size < 1)
    return 0;
  step = data[0] ? data[0] : size;
  a = read_answer ((const char *) data + 1, size - 1, size, &whole, &eof_whole);
  b = read_answer ((const char *) data + 1, size - 1, step, &pieces, &eof_pieces);
  g_assert (a == b);
  if (a >= 0)
    {
      g_assert (whole.heads == pieces.heads && whole.ends == pieces.ends && eof_whole == eof_pieces);
      g_assert (whole.body->len == pieces.body->len && memcmp (whole.body->str, pieces.body->str, whole.body->len) == 0);
    }
  g_string_free (whole.body, TRUE);
  g_string_free (pieces.body, TRUE);
  return 0;
}
