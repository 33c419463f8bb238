/* test-upstream-openai-scan.c — the Chat Completions readers
 * (plugins/common/upstream, ens-upstream-openai.h) with the core's scanner,
 * which reads the common answers without a tree, against the same readers
 * through trees: on every text the same answer or the same refusal.  Each
 * case also says whether the scanner reads it itself (the common shapes)
 * or leaves it to the typed reader (tool calls, odd types, errors,
 * malformed JSON), and the common ones are checked for what they hold. */
#include "ens-json.h"
#include "ens-upstream.h"

#include <string.h>

static const EnsUpstreamScanner scanner = { ens_json_scan_members, ens_json_scan_checked_members };

/* What one reading ended with. */
typedef struct {
  GString *chunks; /* the text reported, as it came */
  GString *events; /* "type json\n" each */
  GError *error;
  gboolean done;
  char *result;    /* the completion result, as text */
  EnsUpstreamAnswer *answer;
} Reading;

static void
sink_chunk (gpointer user_data, const char *text)
{
  Reading *r = user_data;

  g_string_append (r->chunks, text);
  g_string_append_c (r->chunks, '|');
}

static void
sink_event (gpointer user_data, const char *type, JsonNode *data)
{
  Reading *r = user_data;
  g_autofree char *text = ens_json_to_string (data);

  g_string_append_printf (r->events, "%s %s\n", type, text);
}

static const EnsUpstreamSink sink = { sink_chunk, sink_event };

static void
reading_clear (Reading *r)
{
  g_string_free (r->chunks, TRUE);
  g_string_free (r->events, TRUE);
  g_clear_error (&r->error);
  g_free (r->result);
  ens_upstream_answer_free (r->answer);
}

/* Reads @texts (NULL-terminated): a body when @body, else the data of a
 * stream's events, stopping at the first refusal or at [DONE]. */
static void
read_texts (Reading *r, gboolean body, const char *const *texts, gboolean with_scanner)
{
  g_autoptr (JsonNode) result = NULL;

  r->chunks = g_string_new (NULL);
  r->events = g_string_new (NULL);
  r->answer = ens_upstream_answer_new (4, ens_json_parse, &sink, r);
  if (with_scanner)
    ens_upstream_answer_set_scanner (r->answer, &scanner);
  for (guint i = 0; texts[i] && !r->error && !r->done; i++)
    {
      gboolean ok = body ? ens_upstream_openai_read_body (r->answer, texts[i], strlen (texts[i]), &r->error)
                         : ens_upstream_openai_read_chunk (r->answer, texts[i], strlen (texts[i]), &r->done,
                                                           &r->error);
      g_assert_true (ok == (r->error == NULL));
    }
  result = ens_upstream_answer_result (r->answer, NULL, r->answer->stop_reason);
  r->result = ens_json_to_string (result);
}

/* Reads @texts both ways, checks both end alike and returns (transfer
 * full, into @out) the scanner's reading. */
static void
read_both (Reading *out, gboolean body, const char *const *texts)
{
  Reading trees = { 0 };

  read_texts (&trees, body, texts, FALSE);
  read_texts (out, body, texts, TRUE);
  g_test_message ("%s -> %s", texts[0], trees.error ? trees.error->message : trees.result);
  if (trees.error)
    {
      g_assert_nonnull (out->error);
      g_assert_cmpuint (trees.error->domain, ==, out->error->domain);
      g_assert_cmpint (trees.error->code, ==, out->error->code);
      g_assert_cmpstr (trees.error->message, ==, out->error->message);
    }
  else
    g_assert_no_error (out->error);
  g_assert_cmpint (trees.done, ==, out->done);
  g_assert_cmpstr (trees.chunks->str, ==, out->chunks->str);
  g_assert_cmpstr (trees.events->str, ==, out->events->str);
  g_assert_cmpstr (trees.answer->stop_reason, ==, out->answer->stop_reason);
  g_assert_cmpstr (trees.result, ==, out->result);
  reading_clear (&trees);
}

/* Whether the scanner reads @text itself (on a fresh answer). */
static gboolean
scanned (gboolean body, const char *text)
{
  g_autoptr (EnsUpstreamAnswer) a = ens_upstream_answer_new (4, ens_json_parse, NULL, NULL);
  gboolean ok;

  ens_upstream_answer_set_scanner (a, &scanner);
  ok = body ? ens_upstream_openai_scan_body (a, text, strlen (text))
            : ens_upstream_openai_scan_chunk (a, text, strlen (text));
  if (!ok)
    {
      /* nothing read */
      g_assert_cmpuint (a->text->len, ==, 0);
      g_assert_null (a->model);
      g_assert_null (a->stop_reason);
      g_assert_cmpint (a->input_tokens, ==, -1);
      g_assert_cmpint (a->output_tokens, ==, -1);
    }
  return ok;
}

typedef struct {
  const char *text;
  gboolean scanned; /* read by the scanner itself */
  const char *result; /* the completion result; NULL: refused */
  const char *needle; /* in the refusal */
} BodyCase;

#define BENCH_BODY                                                                                               \
  "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"bench-model\","   \
  "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello from the bench upstream.\"}," \
  "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":6,\"total_tokens\":16}}"

static const BodyCase body_cases[] = {
  { BENCH_BODY, TRUE,
    "{\"response\":\"Hello from the bench upstream.\",\"model\":\"bench-model\",\"usage\":{\"input_tokens\":10,"
    "\"output_tokens\":6},\"finish_reason\":\"stop\"}" },
  { "{\"choices\":[{\"message\":{\"content\":\"Hello there\"}}]}", TRUE,
    "{\"response\":\"Hello there\",\"model\":\"\",\"usage\":{\"input_tokens\":0,\"output_tokens\":3,"
    "\"estimated\":true},\"finish_reason\":\"stop\"}" },
  /* escapes: unescaped copies */
  { "{\"choices\":[{\"message\":{\"content\":\"a\\\"b\\\\n\\n\\u00e9\\ud83d\\ude00\"},\"finish_reason\":\"length\"}],"
    "\"model\":\"m\\/x\",\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0}}", TRUE,
    "{\"response\":\"a\\\"b\\\\n\\n\xc3\xa9\xf0\x9f\x98\x80\",\"model\":\"m/x\",\"usage\":{\"input_tokens\":0,"
    "\"output_tokens\":0},\"finish_reason\":\"length\"}" },
  /* what real answers carry besides: nulls and members nobody reads */
  { "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"x\",\"refusal\":null,"
    "\"tool_calls\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":"
    "{\"prompt_tokens\":7,\"completion_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":0}},\"error\":null,"
    "\"system_fingerprint\":null,\"model\":null}", TRUE,
    "{\"response\":\"x\",\"model\":\"\",\"usage\":{\"input_tokens\":7,\"output_tokens\":1},"
    "\"finish_reason\":\"stop\"}" },
  /* a member named twice: the last one, as in the tree */
  { "{\"model\":\"a\",\"model\":\"b\",\"choices\":[{\"message\":{\"content\":\"first\"}}],"
    "\"choices\":[{\"message\":{\"content\":\"second\",\"content\":\"third\"},\"finish_reason\":\"stop\","
    "\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":null,\"completion_tokens\":2}}", TRUE,
    "{\"response\":\"third\",\"model\":\"b\",\"usage\":{\"input_tokens\":0,\"output_tokens\":2,\"estimated\":true},"
    "\"finish_reason\":\"stop\"}" },
  { "{\"choices\":[{\"message\":{\"content\":null}}]}", TRUE,
    "{\"response\":\"\",\"model\":\"\",\"usage\":{\"input_tokens\":0,\"output_tokens\":0,\"estimated\":true},"
    "\"finish_reason\":\"stop\"}" },
  { " { \"choices\" : [ \n { \"message\" : { \"content\" : \"ws\" } } , {\"message\":{\"content\":\"other\"}} ] } ",
    TRUE,
    "{\"response\":\"ws\",\"model\":\"\",\"usage\":{\"input_tokens\":0,\"output_tokens\":1,\"estimated\":true},"
    "\"finish_reason\":\"stop\"}" },
  /* for the typed reader, and read by it */
  { "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
    "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}", FALSE,
    "{\"response\":\"\",\"model\":\"\",\"usage\":{\"input_tokens\":0,\"output_tokens\":16,\"estimated\":true},"
    "\"finish_reason\":\"tool_calls\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"name\":\"f\","
    "\"arguments\":{\"a\":1}}]}" },
  { "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":3.0,\"completion_tokens\":1e1}}",
    FALSE,
    "{\"response\":\"x\",\"model\":\"\",\"usage\":{\"input_tokens\":3,\"output_tokens\":10},"
    "\"finish_reason\":\"stop\"}" },
  /* refused, by the typed reader */
  { "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}", FALSE, NULL, "reported an error: boom" },
  { "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"error\":\"late\"}", FALSE, NULL, "reported an error" },
  { "not json", FALSE, NULL, "malformed JSON" },
  { "[1,2]", FALSE, NULL, "not an object" },
  { "{\"choices\":[{\"message\":{\"content\":\"x\"}}]} {}", FALSE, NULL, "malformed JSON" },
  { "{\"choices\":[{\"message\":{\"content\":\"x\"}}]", FALSE, NULL, "malformed JSON" },
  { "{\"choices\":[{\"message\":{\"content\":5}}]}", FALSE, NULL, "choices[0].message.content is a number" },
  { "{\"choices\":[]}", FALSE, NULL, "without choices[0].message" },
  { "{\"choices\":[null]}", FALSE, NULL, "without choices[0].message" },
  { "{\"choices\":null}", FALSE, NULL, "without choices[0].message" },
  { "{\"choices\":[{\"message\":null}]}", FALSE, NULL, "without choices[0].message" },
  { "{\"choices\":[{\"message\":\"x\"}]}", FALSE, NULL, "choices[0].message is a string" },
  { "{\"choices\":[7]}", FALSE, NULL, "choices[0] is not an object" },
  { "{\"choices\":{\"message\":{}}}", FALSE, NULL, "choices is an object" },
  { "{\"model\":7,\"choices\":[{\"message\":{\"content\":\"x\"}}]}", FALSE, NULL, "model is a number" },
  { "{\"choices\":[{\"finish_reason\":1,\"message\":{\"content\":\"x\"}}]}", FALSE, NULL,
    "choices[0].finish_reason is a number" },
  { "{\"usage\":{\"prompt_tokens\":-1},\"choices\":[{\"message\":{\"content\":\"x\"}}]}", FALSE, NULL,
    "usage.prompt_tokens is negative" },
  { "{\"usage\":{\"completion_tokens\":\"3\"},\"choices\":[{\"message\":{\"content\":\"x\"}}]}", FALSE, NULL,
    "usage.completion_tokens is a string" },
  { "{\"usage\":{\"prompt_tokens\":123456789012345678901234},\"choices\":[{\"message\":{\"content\":\"x\"}}]}",
    FALSE, NULL, "usage.prompt_tokens is a number, not an integer" },
  { "{\"usage\":[],\"choices\":[{\"message\":{\"content\":\"x\"}}]}", FALSE, NULL, "usage is an array" },
  { "{\"choices\":[{\"message\":{\"content\":\"x\",\"tool_calls\":{}}}]}", FALSE, NULL,
    "choices[0].message.tool_calls is an object" },
  { "{\"choices\":[{\"message\":{\"content\":\"\\u0000\"}}]}", FALSE, NULL, "malformed JSON" },
};

static void
test_body (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (body_cases); i++)
    {
      const BodyCase *bc = &body_cases[i];
      const char *texts[] = { bc->text, NULL };
      Reading r = { 0 };

      read_both (&r, TRUE, texts);
      g_assert_cmpint (scanned (TRUE, bc->text), ==, bc->scanned);
      if (bc->result)
        {
          g_assert_no_error (r.error);
          g_assert_cmpstr (r.result, ==, bc->result);
        }
      else
        {
          g_assert_nonnull (r.error);
          g_assert_true (r.error->domain == ENS_UPSTREAM_ERROR);
          g_assert_nonnull (strstr (r.error->message, bc->needle));
        }
      g_assert_cmpstr (r.chunks->str, ==, ""); /* a body is not streamed */
      reading_clear (&r);
    }
}

#define CHUNK(delta, finish) \
  "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":" \
  delta ",\"finish_reason\":" finish "}]}"

typedef struct {
  const char *texts[8];
  gboolean scanned[8]; /* each text, by the scanner itself */
  const char *chunks;  /* reported, '|' after each */
  const char *result;  /* NULL: refused */
  const char *needle;
} StreamCase;

static const StreamCase stream_cases[] = {
  /* the common stream: role, pieces, finish, usage after, [DONE] */
  { { CHUNK ("{\"role\":\"assistant\",\"content\":\"\"}", "null"), CHUNK ("{\"content\":\"Hel\"}", "null"),
      CHUNK ("{\"content\":\"lo \\\"w\\\"\"}", "null"), CHUNK ("{}", "\"stop\""),
      "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}",
      "[DONE]" },
    { TRUE, TRUE, TRUE, TRUE, TRUE, FALSE },
    "Hel|lo \"w\"|",
    "{\"response\":\"Hello \\\"w\\\"\",\"model\":\"bench-model\",\"usage\":{\"input_tokens\":10,\"output_tokens\":2},"
    "\"finish_reason\":\"stop\"}" },
  /* deltas that say nothing, in every way */
  { { "{}", "{\"choices\":null}", "{\"choices\":[{\"delta\":null}]}", "{\"choices\":[{\"delta\":{\"content\":null}}]}",
      "{\"choices\":[ ]}", "{\"choices\":[{\"delta\":{\"content\":\"x\",\"tool_calls\":null}}],\"error\":null}",
      "[DONE]" },
    { TRUE, TRUE, TRUE, TRUE, TRUE, TRUE, FALSE },
    "x|",
    "{\"response\":\"x\",\"model\":\"\",\"usage\":{\"input_tokens\":0,\"output_tokens\":1,\"estimated\":true},"
    "\"finish_reason\":\"stop\"}" },
  /* tool calls: the typed reader, between common chunks */
  { { CHUNK ("{\"content\":\"Let me see. \"}", "null"),
      CHUNK ("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get\","
             "\"arguments\":\"\"}}]}", "null"),
      CHUNK ("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":1}\"}}]}", "null"),
      CHUNK ("{}", "\"tool_calls\""), "[DONE]" },
    { TRUE, FALSE, FALSE, TRUE, FALSE },
    "Let me see. |",
    "{\"response\":\"Let me see. \",\"model\":\"bench-model\",\"usage\":{\"input_tokens\":0,\"output_tokens\":20,"
    "\"estimated\":true},\"finish_reason\":\"tool_calls\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
    "\"name\":\"get\",\"arguments\":{\"q\":1}}]}" },
  /* a [null] first choice reads as none (the typed reader's rule) */
  { { "{\"choices\":[null],\"model\":\"m\"}", "[DONE]" }, { FALSE, FALSE }, "",
    "{\"response\":\"\",\"model\":\"m\",\"usage\":{\"input_tokens\":0,\"output_tokens\":0,\"estimated\":true},"
    "\"finish_reason\":\"stop\"}" },
  /* refused mid-stream: what came before stays reported */
  { { CHUNK ("{\"content\":\"a\"}", "null"), "{\"error\":{\"message\":\"overloaded\"}}",
      CHUNK ("{\"content\":\"b\"}", "null") },
    { TRUE, FALSE, TRUE }, "a|", NULL, "reported an error: overloaded" },
  { { CHUNK ("{\"content\":\"a\"}", "null"), "{\"choices\":[{\"delta\":{\"content\":1}}]}" },
    { TRUE, FALSE }, "a|", NULL, "choices[0].delta.content is a number" },
  { { CHUNK ("{\"content\":\"a\"}", "null"), "{\"choices\":[{\"delta\":[]}]}" },
    { TRUE, FALSE }, "a|", NULL, "choices[0].delta is an array" },
  { { CHUNK ("{\"content\":\"a\"}", "null"), "{\"choices\":[{\"delta\":{\"content\":\"b\"}}" },
    { TRUE, FALSE }, "a|", NULL, "malformed JSON" },
  { { "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":-2}}" }, { FALSE }, "", NULL,
    "usage.completion_tokens is negative" },
  { { "{\"model\":[],\"choices\":[]}" }, { FALSE }, "", NULL, "model is an array" },
  { { "{\"choices\":[{\"finish_reason\":{}}]}" }, { FALSE }, "", NULL, "choices[0].finish_reason is an object" },
  { { "\"text\"" }, { FALSE }, "", NULL, "not an object" },
};

static void
test_stream (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (stream_cases); i++)
    {
      const StreamCase *sc = &stream_cases[i];
      Reading r = { 0 };

      read_both (&r, FALSE, sc->texts);
      for (guint j = 0; sc->texts[j]; j++)
        if (strcmp (sc->texts[j], "[DONE]") != 0)
          g_assert_cmpint (scanned (FALSE, sc->texts[j]), ==, sc->scanned[j]);
      g_assert_cmpstr (r.chunks->str, ==, sc->chunks);
      if (sc->result)
        {
          g_assert_no_error (r.error);
          g_assert_true (r.done);
          g_assert_cmpstr (r.result, ==, sc->result);
        }
      else
        {
          g_assert_nonnull (r.error);
          g_assert_nonnull (strstr (r.error->message, sc->needle));
        }
      reading_clear (&r);
    }
}

/* Without a scanner nothing is read by it: the typed reader reads all. */
static void
test_no_scanner (void)
{
  g_autoptr (EnsUpstreamAnswer) a = ens_upstream_answer_new (4, NULL, NULL, NULL);
  g_autoptr (GError) error = NULL;

  g_assert_false (ens_upstream_openai_scan_body (a, BENCH_BODY, strlen (BENCH_BODY)));
  g_assert_cmpuint (a->text->len, ==, 0);
  g_assert_true (ens_upstream_openai_read_body (a, BENCH_BODY, strlen (BENCH_BODY), &error));
  g_assert_no_error (error);
  g_assert_cmpstr (a->text->str, ==, "Hello from the bench upstream.");
  g_assert_cmpint (a->input_tokens, ==, 10);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/upstream-openai-scan/body", test_body);
  g_test_add_func ("/upstream-openai-scan/stream", test_stream);
  g_test_add_func ("/upstream-openai-scan/no-scanner", test_no_scanner);
  return g_test_run ();
}
