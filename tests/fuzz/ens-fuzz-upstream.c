/* ens-fuzz-upstream.c — what fuzz-sse-openai and fuzz-sse-anthropic share:
 * an upstream's answer (plugins/common/upstream) read from untrusted bytes.
 *
 * Input: one byte, then the answer.  Bit 0 of the byte: a whole body (1) or
 * an event stream (0); the rest sizes the pieces the stream arrives in.
 * Checks: the SSE reader delivers the same events whatever the pieces (one
 * piece, or pieces of 1..128 bytes); reading stops at the first error, or
 * at the stream's end; every chunk reported is the answer's text so far;
 * the completion result is JSON the core's parser accepts; and an answer
 * read with the core's scanner (the common shapes without a tree) ends as
 * the one read through trees: same error, text, chunks and result. */
#include "ens-fuzz-upstream.h"

#include <string.h>

#define MAX_LINE (64 * 1024)
#define MAX_TOOL_CALLS 16

typedef struct {
  const EnsFuzzUpstreamApi *api;
  EnsUpstreamAnswer *answer;
  GPtrArray *events; /* "event\ndata" of each, in order */
  GString *chunks;   /* what the sink got */
  GError *error;
  gboolean done;
} Reading;

static void
sink_chunk (gpointer user_data, const char *text)
{
  Reading *r = user_data;
  g_string_append (r->chunks, text);
}

static void
sink_event (gpointer user_data, const char *type, JsonNode *data)
{
  g_autofree char *text = ens_json_to_string (data);
  g_autoptr (JsonNode) back = ens_json_parse (text, strlen (text), NULL);

  (void) user_data;
  ENS_FUZZ_CHECK (type && type[0], "an event without a type");
  ENS_FUZZ_CHECK (back != NULL, "a %s event that is not JSON: %.300s", type, text);
}

static const EnsUpstreamSink sink = { sink_chunk, sink_event };

static gboolean
on_event (const char *event, const char *data, gsize len, gpointer user_data)
{
  Reading *r = user_data;

  ENS_FUZZ_CHECK (data[len] == '\0', "event data not NUL-terminated");
  g_ptr_array_add (r->events, g_strdup_printf ("%s\n%.*s", event ? event : "(none)", (int) len, data));
  if (r->answer == NULL || r->error || r->done)
    return r->answer == NULL; /* only listening: read on */
  if (!r->api->read_event (r->answer, event, data, len, &r->done, &r->error))
    ENS_FUZZ_CHECK (r->error != NULL, "a reader failed without saying why");
  return r->error == NULL && !r->done;
}

/* Feeds @data in pieces of @piece bytes (0: one piece); the events go to
 * @r; returns FALSE when the reader refused the stream (a line too long). */
static gboolean
feed (Reading *r, const uint8_t *data, gsize size, gsize piece)
{
  g_autoptr (EnsSseReader) reader = ens_sse_reader_new (MAX_LINE, on_event, r);
  g_autoptr (GError) error = NULL;
  gsize at = 0;

  while (at < size)
    {
      gsize n = piece ? MIN (piece, size - at) : size - at;
      if (!ens_sse_reader_feed (reader, (const char *) data + at, n, &error))
        return error == NULL;
      at += n;
    }
  return ens_sse_reader_finish (reader, &error) || error == NULL;
}

static void
check_result (EnsUpstreamAnswer *answer)
{
  g_autoptr (JsonNode) result = ens_upstream_answer_result (answer, NULL, NULL);
  g_autofree char *text = ens_json_to_string (result);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) back = ens_json_parse (text, strlen (text), &error);

  ENS_FUZZ_CHECK (back != NULL, "a result that is not JSON (%s): %.300s", error ? error->message : "", text);
}

static const EnsUpstreamScanner core_scanner = { ens_json_scan_members, ens_json_scan_checked_members };

static void
reading_init (Reading *r, const EnsFuzzUpstreamApi *api, const EnsUpstreamScanner *scanner)
{
  r->api = api;
  r->answer = ens_upstream_answer_new (MAX_TOOL_CALLS, ens_json_parse, &sink, r);
  ens_upstream_answer_set_scanner (r->answer, scanner);
  r->chunks = g_string_new (NULL);
  r->events = g_ptr_array_new_with_free_func (g_free);
}

static void
reading_clear (Reading *r)
{
  g_clear_error (&r->error);
  g_clear_pointer (&r->answer, ens_upstream_answer_free);
  g_clear_pointer (&r->events, g_ptr_array_unref);
  if (r->chunks)
    g_string_free (g_steal_pointer (&r->chunks), TRUE);
}

/* The answer read from @data as the provider reads it: a body, or a stream
 * fed in pieces of @piece bytes. */
static void
read_answer (Reading *r, gboolean body, const uint8_t *data, gsize size, gsize piece)
{
  if (body)
    {
      if (!r->api->read_body (r->answer, (const char *) data, size, &r->error))
        ENS_FUZZ_CHECK (r->error != NULL, "a body refused without saying why");
      return;
    }
  feed (r, data, size, piece);
  ENS_FUZZ_CHECK (strcmp (r->chunks->str, r->answer->text->str) == 0, "chunks \"%.100s\" but text \"%.100s\"",
                  r->chunks->str, r->answer->text->str);
}

static char *
result_text (EnsUpstreamAnswer *answer)
{
  g_autoptr (JsonNode) result = ens_upstream_answer_result (answer, NULL, answer->stop_reason);

  return ens_json_to_string (result);
}

/* @a read through trees and @b with the scanner ended the same way. */
static void
check_same (Reading *a, Reading *b)
{
  g_autofree char *ra = result_text (a->answer);
  g_autofree char *rb = result_text (b->answer);

  ENS_FUZZ_CHECK ((a->error == NULL) == (b->error == NULL), "refused by one reading only: %s",
                  a->error ? a->error->message : b->error->message);
  if (a->error)
    ENS_FUZZ_CHECK (a->error->domain == b->error->domain && a->error->code == b->error->code &&
                    strcmp (a->error->message, b->error->message) == 0,
                    "refused as \"%s\" through trees, \"%s\" with the scanner", a->error->message,
                    b->error->message);
  ENS_FUZZ_CHECK (a->done == b->done, "done %d through trees, %d with the scanner", a->done, b->done);
  ENS_FUZZ_CHECK (strcmp (a->chunks->str, b->chunks->str) == 0, "chunks differ: \"%.100s\" / \"%.100s\"",
                  a->chunks->str, b->chunks->str);
  ENS_FUZZ_CHECK (g_strcmp0 (a->answer->stop_reason, b->answer->stop_reason) == 0, "stop reasons differ");
  ENS_FUZZ_CHECK (strcmp (ra, rb) == 0, "results differ: %.300s / %.300s", ra, rb);
}

int
ens_fuzz_upstream_run (const EnsFuzzUpstreamApi *api, const uint8_t *data, size_t size)
{
  Reading whole = { .api = api }, pieces = { .api = NULL }, scanned = { .api = api };
  gboolean ok_whole, ok_pieces;

  if (size == 0)
    return 0;
  reading_init (&whole, api, NULL);
  reading_init (&scanned, api, &core_scanner);
  if (data[0] & 1)
    {
      read_answer (&whole, TRUE, data + 1, size - 1, 0);
      check_result (whole.answer);
      read_answer (&scanned, TRUE, data + 1, size - 1, 0);
      check_same (&whole, &scanned);
      goto out;
    }

  /* The reader alone, in pieces, must see what it sees in one piece (as
   * long as the reading does not stop it early). */
  pieces.events = g_ptr_array_new_with_free_func (g_free);
  pieces.chunks = g_string_new (NULL);
  ok_pieces = feed (&pieces, data + 1, size - 1, 1 + data[0] / 2);
  {
    Reading listen = { .api = NULL };
    listen.events = g_ptr_array_new_with_free_func (g_free);
    listen.chunks = g_string_new (NULL);
    ok_whole = feed (&listen, data + 1, size - 1, 0);
    ENS_FUZZ_CHECK (ok_whole == ok_pieces, "a line cap reached in pieces only, or whole only");
    if (ok_whole)
      {
        ENS_FUZZ_CHECK (listen.events->len == pieces.events->len, "%u events whole, %u in pieces", listen.events->len,
                        pieces.events->len);
        for (guint i = 0; i < listen.events->len; i++)
          ENS_FUZZ_CHECK (strcmp (listen.events->pdata[i], pieces.events->pdata[i]) == 0, "event %u differs", i);
      }
    g_ptr_array_unref (listen.events);
    g_string_free (listen.chunks, TRUE);
  }

  /* Read as the provider does. */
  read_answer (&whole, FALSE, data + 1, size - 1, 1 + data[0] / 2);
  check_result (whole.answer);
  read_answer (&scanned, FALSE, data + 1, size - 1, 1 + data[0] / 2);
  check_same (&whole, &scanned);

out:
  reading_clear (&whole);
  reading_clear (&scanned);
  if (pieces.events)
    g_ptr_array_unref (pieces.events);
  if (pieces.chunks)
    g_string_free (pieces.chunks, TRUE);
  return 0;
}

size_t
ens_fuzz_upstream_mutate (uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
  /* A body is JSON after the first byte; a stream is lines of JSON: bytes. */
  if (size > 1 && (data[0] & 1))
    return ens_fuzz_mutate_json (data, size, max_size, seed, 1);
  return LLVMFuzzerMutate (data, size, max_size);
}
