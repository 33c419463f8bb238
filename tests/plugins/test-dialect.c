/* test-dialect.c — plugins/common/dialect: the engine that reads a
 * dialect's table (fields renamed, checked and reshaped; rows found; error
 * codes; JSON values found in a byte stream), and the tables themselves
 * (every row of every dialect well formed).  Whole frames through a real
 * host are the integration tests' and the fuzz targets' business. */
#include "ens-dialect.h"

#include <string.h>

static JsonObject *
object (const char *json, JsonNode **keep)
{
  *keep = json_from_string (json, NULL);
  g_assert_nonnull (*keep);
  return json_node_get_object (*keep);
}

static char *
text (JsonNode *node)
{
  return json_to_string (node, FALSE);
}

/* @fields over @in: the written object as compact JSON, or NULL with
 * @invalid filled. */
static char *
map (const EnsField *fields, const char *in, EnsInvalid *invalid)
{
  g_autoptr (JsonNode) keep = NULL;
  JsonObject *from = object (in, &keep);
  JsonObject *to;
  g_autoptr (JsonNode) out = ens_node_new_object (&to);

  if (!ens_dialect_map (fields, from, to, invalid))
    return NULL;
  return text (out);
}

#define ASSERT_MAPS(fields, in, want)                          \
  G_STMT_START                                                 \
  {                                                            \
    EnsInvalid inv_;                                           \
    g_autofree char *got_ = map (fields, in, &inv_);           \
    if (got_ == NULL)                                          \
      g_error ("%s refused: %s %s", in, inv_.field, inv_.expected); \
    g_assert_cmpstr (got_, ==, want);                          \
  }                                                            \
  G_STMT_END

#define ASSERT_REFUSES(fields, in, field_, part_)                      \
  G_STMT_START                                                         \
  {                                                                    \
    EnsInvalid inv_;                                                   \
    g_autofree char *got_ = map (fields, in, &inv_);                   \
    if (got_ != NULL)                                                  \
      g_error ("%s accepted as %s", in, got_);                         \
    g_assert_cmpstr (inv_.field, ==, field_);                          \
    g_assert_nonnull (strstr (inv_.expected, part_));                  \
  }                                                                    \
  G_STMT_END

static const EnsField request_in[] = {
  ENS_CHECK ("config", OBJECT),
  ENS_MAP ("agent_id", "name", STRING, REQUIRED),
  ENS_MAP ("task|config.task|kind", "task", STRING, REQUIRED),
  ENS_MAP ("note", "meta.note", STRING, OPTIONAL),
  ENS_MAP_OR ("topic", "topic", STRING, "\"MESSAGE\""),
  ENS_MAP ("value", "value", ANY, OPTIONAL),
  ENS_INT ("timeout", "timeout_ms", OPTIONAL, 1, 600, 1000),
  ENS_MAP ("flag", "flag", BOOL, OPTIONAL),
  ENS_MAP_OR ("caps", "actions", WORDS, "[]"),
  ENS_MAP ("extra", "meta", SPREAD, OPTIONAL),
  ENS_SET ("persistent", "true"),
  ENS_FIELDS_END,
};

static void
test_map_in (void)
{
  ASSERT_MAPS (request_in, "{\"agent_id\":\"a\",\"task\":\"t\"}",
               "{\"name\":\"a\",\"task\":\"t\",\"topic\":\"MESSAGE\",\"actions\":[],\"persistent\":true}");
  /* Alternatives, nested targets, scale, words, spread, null as a value. */
  ASSERT_MAPS (request_in,
               "{\"agent_id\":\"a\",\"config\":{\"task\":\"from config\"},\"note\":\"n\",\"value\":null,"
               "\"timeout\":2,\"flag\":false,\"caps\":\" x, y ,,z\",\"extra\":{\"k\":1}}",
               "{\"name\":\"a\",\"task\":\"from config\",\"meta\":{\"note\":\"n\",\"k\":1},\"topic\":\"MESSAGE\","
               "\"value\":null,\"timeout_ms\":2000,\"flag\":false,\"actions\":[\"x\",\"y\",\"z\"],\"persistent\":true}");
  ASSERT_MAPS (request_in, "{\"agent_id\":\"a\",\"kind\":\"k\",\"caps\":[\"p\"],\"timeout\":600.0}",
               "{\"name\":\"a\",\"task\":\"k\",\"topic\":\"MESSAGE\",\"timeout_ms\":600000,\"actions\":[\"p\"],"
               "\"persistent\":true}");
  /* Each refusal names the field as the dialect spells it. */
  ASSERT_REFUSES (request_in, "{\"task\":\"t\"}", "agent_id", "non-empty string");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"\",\"task\":\"t\"}", "agent_id", "non-empty string");
  ASSERT_REFUSES (request_in, "{\"agent_id\":null,\"task\":\"t\"}", "agent_id", "non-empty string");
  ASSERT_REFUSES (request_in, "{\"agent_id\":7,\"task\":\"t\"}", "agent_id", "string");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\"}", "task", "non-empty string");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"config\":[],\"task\":\"t\"}", "config", "an object");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"task\":\"t\",\"note\":{}}", "note", "a string");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"task\":\"t\",\"timeout\":0}", "timeout", "from 1 to 600");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"task\":\"t\",\"timeout\":1.5}", "timeout", "integer");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"task\":\"t\",\"timeout\":\"9\"}", "timeout", "integer");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"task\":\"t\",\"flag\":1}", "flag", "true or false");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"task\":\"t\",\"caps\":[1]}", "caps", "list of strings");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"task\":\"t\",\"extra\":\"x\"}", "extra", "an object");
  /* An alternative that was sent and fails is named as sent. */
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"config\":{\"task\":5}}", "config.task", "string");
  ASSERT_REFUSES (request_in, "{\"agent_id\":\"a\",\"kind\":[]}", "kind", "string");
}

/* FUNC: a small function named in a row (here: the length of a string, or
 * nothing for anything else). */
static JsonNode *
length_of (JsonNode *v, JsonObject *from)
{
  (void) from;
  if (v == NULL || !JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING)
    return NULL;
  return json_node_init_int (json_node_alloc (), (gint64) strlen (json_node_get_string (v)));
}

static const EnsField shared_in[] = {
  ENS_MAP ("name", "name", STRING, NONEMPTY),
  ENS_FIELDS_END,
};

static const EnsField typed_in[] = {
  ENS_INCLUDE (shared_in),
  ENS_MAP ("tags", "tags", STRINGS, NONEMPTY),
  ENS_NUMBER ("temperature", "temperature", 0, 0, 2),
  ENS_NUMBER ("timeout", "timeout", ENS_FIELD_ABOVE_MIN, 0, 3600),
  ENS_FUNC ("word", "length", OPTIONAL, length_of),
  ENS_FUNC_CHECK ("must", length_of, "a string"),
  ENS_FIELDS_END,
};

static void
test_map_types_and_functions (void)
{
  ASSERT_MAPS (typed_in, "{\"must\":\"x\"}", "{}");
  ASSERT_MAPS (typed_in, "{\"name\":\"n\",\"tags\":[\"a\"],\"temperature\":2,\"timeout\":0.5,\"word\":\"four\",\"must\":\"\"}",
               "{\"name\":\"n\",\"tags\":[\"a\"],\"temperature\":2,\"timeout\":0.5,\"length\":4}");
  ASSERT_MAPS (typed_in, "{\"word\":7,\"must\":\"x\"}", "{}"); /* the function wrote nothing */
  ASSERT_REFUSES (typed_in, "{\"name\":\"\",\"must\":\"x\"}", "name", "non-empty string");
  ASSERT_REFUSES (typed_in, "{\"tags\":[\"\"],\"must\":\"x\"}", "tags", "non-empty strings");
  ASSERT_REFUSES (typed_in, "{\"temperature\":2.5,\"must\":\"x\"}", "temperature", "from 0 to 2");
  ASSERT_REFUSES (typed_in, "{\"temperature\":\"hot\",\"must\":\"x\"}", "temperature", "number");
  ASSERT_REFUSES (typed_in, "{\"timeout\":0,\"must\":\"x\"}", "timeout", "above 0");
  ASSERT_REFUSES (typed_in, "{\"timeout\":4000,\"must\":\"x\"}", "timeout", "to 3600");
  ASSERT_REFUSES (typed_in, "{\"must\":1}", "must", "a string");
  ASSERT_REFUSES (typed_in, "{}", "must", "a string");
}

static const EnsField required_in[] = {
  ENS_MAP ("value", "value", ANY, REQUIRED),
  ENS_MAP ("topics", "topics", STRINGS, REQUIRED),
  ENS_FIELDS_END,
};

static const EnsField each_in[] = {
  ENS_MAP ("sessionId", "session_id", STRING, REQUIRED),
  ENS_FIELDS_END,
};

static const EnsField nested_in[] = {
  ENS_NESTED (MAP, "session", "session", each_in),
  ENS_NESTED (EACH, "tasks", "tasks", each_in),
  ENS_FIELDS_END,
};

static void
test_map_required_and_nested (void)
{
  ASSERT_MAPS (required_in, "{\"value\":null,\"topics\":[\"a\"]}", "{\"value\":null,\"topics\":[\"a\"]}");
  ASSERT_REFUSES (required_in, "{\"topics\":[\"a\"]}", "value", "any JSON value");
  ASSERT_REFUSES (required_in, "{\"value\":1,\"topics\":[]}", "topics", "non-empty list");
  ASSERT_REFUSES (required_in, "{\"value\":1,\"topics\":[\"\"]}", "topics", "non-empty list");
  ASSERT_REFUSES (required_in, "{\"value\":1,\"topics\":\"a\"}", "topics", "list");

  ASSERT_MAPS (nested_in, "{\"session\":{\"sessionId\":\"s1\",\"x\":1},\"tasks\":[{\"sessionId\":\"s2\"}]}",
               "{\"session\":{\"session_id\":\"s1\"},\"tasks\":[{\"session_id\":\"s2\"}]}");
  /* The field at fault inside, and the container of the wrong type. */
  ASSERT_REFUSES (nested_in, "{\"session\":{\"sessionId\":5}}", "sessionId", "string");
  ASSERT_REFUSES (nested_in, "{\"tasks\":[{\"sessionId\":\"s\"},{}]}", "sessionId", "non-empty string");
  ASSERT_REFUSES (nested_in, "{\"tasks\":[\"s\"]}", "tasks", "list of objects");
  ASSERT_REFUSES (nested_in, "{\"session\":[]}", "session", "an object");
}

static const EnsField agent_out[] = {
  ENS_MAP_OR ("description", "role", ANY, "null"),
  ENS_CHOOSE ("connected", "status", "\"active\"", "\"registered\"", "\"unknown\""),
  ENS_FIELDS_END,
};

static const EnsField answer_out[] = {
  ENS_KEYED ("agents", "agents", "name", agent_out),
  ENS_NESTED (EACH, "agents", "list", agent_out),
  ENS_PRESENT ("value", "found", OPTIONAL),
  ENS_PRESENT ("profile", "fallback_used", NOT),
  ENS_CHOOSE ("target_found", "to_status", "\"delivered\"", "\"not_connected\"", NULL),
  ENS_MAP_OR ("counters.n", "bus.n", ANY, "0"),
  ENS_SET ("score", "1.5"),
  ENS_SET ("text", "\"a \\\"quoted\\\" word\""),
  ENS_FIELDS_END,
};

static char *
reshape (const EnsField *fields, guint flags, const char *in)
{
  g_autoptr (JsonNode) data = in ? json_from_string (in, NULL) : NULL;
  g_autoptr (JsonNode) out = ens_dialect_reshape (fields, flags, data);

  return text (out);
}

static void
test_reshape_out (void)
{
  g_autofree char *a = reshape (answer_out, 0,
                                "{\"agents\":[{\"name\":\"x\",\"description\":\"d\",\"connected\":true},"
                                "{\"description\":\"nameless\"},{\"name\":\"y\",\"connected\":false},7],"
                                "\"value\":null,\"counters\":{\"n\":3},\"extra\":1}");
  g_autofree char *b = reshape (answer_out, 0, "{\"value\":1,\"profile\":\"p\",\"target_found\":false}");
  g_autofree char *c = reshape (answer_out, 0, NULL);
  g_autofree char *d = reshape (NULL, 0, "{\"as\":\"it is\"}");
  g_autofree char *e = reshape (NULL, 0, NULL);

  /* Elements that do not fit an answer are left out, never an error. */
  g_assert_cmpstr (a, ==,
                   "{\"agents\":{\"x\":{\"role\":\"d\",\"status\":\"active\"},\"y\":{\"role\":null,\"status\":"
                   "\"registered\"}},\"list\":[{\"role\":\"d\",\"status\":\"active\"},{\"role\":\"nameless\","
                   "\"status\":\"unknown\"},{\"role\":null,\"status\":\"registered\"}],\"found\":false,"
                   "\"fallback_used\":true,\"bus\":{\"n\":3},\"score\":1.5,\"text\":\"a \\\"quoted\\\" word\"}");
  g_assert_cmpstr (b, ==,
                   "{\"found\":true,\"fallback_used\":false,\"to_status\":\"not_connected\",\"bus\":{\"n\":0},"
                   "\"score\":1.5,\"text\":\"a \\\"quoted\\\" word\"}");
  g_assert_cmpstr (c, ==, "{\"found\":false,\"fallback_used\":true,\"bus\":{\"n\":0},\"score\":1.5,"
                          "\"text\":\"a \\\"quoted\\\" word\"}");
  g_assert_cmpstr (d, ==, "{\"as\":\"it is\"}");
  g_assert_cmpstr (e, ==, "{}");
}

static const EnsField failure_event[] = {
  ENS_MAP ("error", "result.error", ANY, OPTIONAL),
  ENS_MAP ("reason", "result.details", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static void
test_reshape_keeps_the_rest (void)
{
  g_autofree char *failed = reshape (failure_event, ENS_DIALECT_KEEP_REST,
                                     "{\"request_id\":\"r\",\"to\":\"c\",\"error\":\"boom\",\"reason\":\"X\"}");
  g_autofree char *ok = reshape (failure_event, ENS_DIALECT_KEEP_REST,
                                 "{\"request_id\":\"r\",\"result\":{\"response\":\"hi\"}}");

  g_assert_cmpstr (failed, ==, "{\"request_id\":\"r\",\"to\":\"c\",\"result\":{\"error\":\"boom\",\"details\":\"X\"}}");
  g_assert_cmpstr (ok, ==, "{\"request_id\":\"r\",\"result\":{\"response\":\"hi\"}}");
}

static const EnsDialectEntry rows[] = {
  { "CONNECTION", "agents.register", "action", "connect" },
  { "CONNECTION", "agents.unregister", "action", "disconnect" },
  { "PLAIN", "health" },
  { NULL },
};

static const EnsDialectCode codes[] = {
  { ENS_ERR_AGENT_NOT_FOUND, "AGENT_NOT_CONNECTED" },
  { NULL },
};

static const EnsDialect toy = { .name = "toy", .entries = rows, .codes = codes };

static void
test_rows_and_codes (void)
{
  g_autoptr (JsonNode) k1 = NULL, k2 = NULL, k3 = NULL;
  JsonObject *connect = object ("{\"action\":\"connect\"}", &k1);
  JsonObject *dance = object ("{\"action\":\"dance\"}", &k2);
  JsonObject *number = object ("{\"action\":5}", &k3);
  gboolean known = FALSE;
  char expected[64];

  g_assert_true (ens_dialect_find (&toy, "CONNECTION", connect, &known) == &rows[0]);
  g_assert_null (ens_dialect_find (&toy, "CONNECTION", dance, &known));
  g_assert_true (known);
  g_assert_null (ens_dialect_find (&toy, "CONNECTION", number, &known));
  g_assert_true (known);
  g_assert_null (ens_dialect_find (&toy, "CONNECTION", NULL, &known));
  g_assert_true (known);
  g_assert_null (ens_dialect_find (&toy, "NOPE", NULL, &known));
  g_assert_false (known);
  g_assert_true (ens_dialect_find (&toy, "PLAIN", NULL, NULL) == &rows[2]);
  g_assert_null (ens_dialect_find (&toy, NULL, NULL, NULL));
  ens_dialect_variants (&toy, "CONNECTION", expected, sizeof expected);
  g_assert_cmpstr (expected, ==, "\"connect\" or \"disconnect\"");

  g_assert_cmpstr (ens_dialect_code (&toy, ENS_ERR_AGENT_NOT_FOUND), ==, "AGENT_NOT_CONNECTED");
  g_assert_cmpstr (ens_dialect_code (&toy, ENS_ERR_TIMEOUT), ==, ENS_ERR_TIMEOUT);
  g_assert_cmpstr (ens_dialect_code (&toy, NULL), ==, ENS_ERR_INTERNAL);
}

static void
test_core_errors_in_the_dialects_words (void)
{
  static const EnsDialectEntry row = { "SUBMIT", "publish", .in = request_in };
  g_autoptr (JsonNode) k1 = json_from_string ("{\"field\":\"task\",\"expected\":\"short\"}", NULL);
  g_autoptr (JsonNode) k2 = json_from_string ("{\"field\":\"timeout_ms\",\"expected\":\"less\"}", NULL);
  g_autoptr (JsonNode) k3 = json_from_string ("{\"field\":\"persistent\",\"expected\":\"x\"}", NULL);
  g_autoptr (JsonNode) k4 = json_from_string ("{\"field\":\"nowhere\",\"expected\":\"x\"}", NULL);
  g_autoptr (JsonNode) k5 = json_from_string ("{\"field\":\"task\"}", NULL);
  EnsInvalid invalid;

  g_assert_true (ens_dialect_core_invalid (&row, k1, &invalid));
  g_assert_cmpstr (invalid.field, ==, "task"); /* the first alternative */
  g_assert_cmpstr (invalid.expected, ==, "short");
  g_assert_true (ens_dialect_core_invalid (&row, k2, &invalid));
  g_assert_cmpstr (invalid.field, ==, "timeout");
  g_assert_false (ens_dialect_core_invalid (&row, k3, &invalid)); /* a constant: no client field */
  g_assert_false (ens_dialect_core_invalid (&row, k4, &invalid));
  g_assert_false (ens_dialect_core_invalid (&row, k5, &invalid));
  g_assert_false (ens_dialect_core_invalid (&row, NULL, &invalid));
  g_assert_false (ens_dialect_core_invalid (NULL, k1, &invalid));
}

static void
test_scan_value (void)
{
  static const struct {
    const char *in;
    gboolean at_eof;
    gsize end;
  } cases[] = {
    { "{\"a\":1}", FALSE, 7 },
    { "{\"a\":1}{\"b\":2}", FALSE, 7 },
    { "  \r\n {\"a\":[1,{\"b\":[]}]}  ", FALSE, 23 },
    { "{\"s\":\"}{\\\"\\\\\"}", FALSE, 14 },
    { "{\"s\":\"}{\\\"\\\\\"", FALSE, 0 },
    { "{\"s\":\"\\\"}\"}", FALSE, 11 },
    { "[1,[2]]", FALSE, 7 },
    { "\"a}b\"", FALSE, 5 },
    { "\"a\\\"", FALSE, 0 },
    { "{\"a\":", FALSE, 0 },
    { "{\"a\":", TRUE, 0 },
    { "42", FALSE, 0 },
    { "42", TRUE, 2 },
    { "true\n", FALSE, 4 },
    { "   ", TRUE, 0 },
    { "", TRUE, 0 },
    { "]", FALSE, 0 },
    { "}{}", FALSE, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize end = ens_dialect_scan_value (cases[i].in, strlen (cases[i].in), cases[i].at_eof);
      if (end != cases[i].end)
        g_error ("scan of %s (eof %d): %zu, expected %zu", cases[i].in, cases[i].at_eof, end, cases[i].end);
    }
}

/* Every dialect's table: rows named, with a verb unless answered here or
 * decided by decode, (name, is) once, and each field list ends. */
static void
check_table (const EnsDialect *dialect)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_assert_nonnull (dialect->name);
  /* decode: for the bytes a transport does not frame; encode: for events */
  g_assert_true (dialect->decode != NULL || dialect->framing == ENS_DIALECT_FRAMING_MESSAGE);
  g_assert_true (dialect->encode != NULL || dialect->events == NULL);
  for (const EnsDialectEntry *e = dialect->entries; e->name; e++)
    {
      g_autofree char *key = g_strdup_printf ("%s/%s", e->name, e->is ? e->is : "");
      g_autoptr (JsonNode) shaped = ens_dialect_reshape (e->out, e->flags, NULL);

      g_assert_false (g_hash_table_contains (seen, key));
      g_hash_table_add (seen, g_steal_pointer (&key));
      g_assert_true ((e->when == NULL) == (e->is == NULL));
      if (e->in)
        {
          g_autoptr (JsonObject) to = json_object_new ();
          EnsInvalid invalid;
          /* Nothing given: either accepted or refused with a field named. */
          if (!ens_dialect_map (e->in, NULL, to, &invalid))
            g_assert_true (invalid.field != NULL && invalid.field[0] && invalid.expected[0]);
        }
      g_assert_true (JSON_NODE_HOLDS_OBJECT (shaped));
    }
  for (const EnsDialectEntry *e = dialect->events; e && e->name; e++)
    {
      g_autoptr (JsonNode) shaped = ens_dialect_reshape (e->out, e->flags, NULL);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (shaped));
    }
}

static void
test_tables (void)
{
  const EnsDialect *dialects[] = { &ens_dialect_ksi, &ens_dialect_ksi_http, &ens_dialect_centerfire, &ens_dialect_neolith,
                                   &ens_dialect_neolith_rest, &ens_dialect_rhetor };

  for (guint i = 0; i < G_N_ELEMENTS (dialects); i++)
    check_table (dialects[i]);
  g_assert_true (ens_dialect_ksi.flags & ENS_DIALECT_ONE_SHOT);
  g_assert_true (ens_dialect_find (&ens_dialect_ksi, "COMPLETION", NULL, NULL)->flags & ENS_DIALECT_HOLD_RESULTS);
  g_assert_cmpint (ens_dialect_centerfire.framing, ==, ENS_DIALECT_FRAMING_VALUE);
  /* One route, two verbs: PATCH stops with status "stopped", else runs a task. */
  {
    g_autoptr (JsonNode) stop = json_from_string ("{\"status\":\"stopped\"}", NULL);
    g_assert_cmpstr (ens_dialect_find (&ens_dialect_neolith_rest, "PATCH /api/daemon/sessions",
                                       json_node_get_object (stop), NULL)->verb, ==, "sessions.stop");
    g_assert_cmpstr (ens_dialect_find (&ens_dialect_neolith_rest, "PATCH /api/daemon/sessions", NULL, NULL)->verb, ==,
                     "sessions.execute");
  }
}

/* Neolith: a core session record as wundr's Session, field by field; a
 * message in as its verb's data; an event without its record has none. */
static void
test_neolith_shapes (void)
{
  g_autoptr (JsonNode) rec = json_from_string (
    "{\"session_id\":\"s1\",\"orchestrator_id\":\"\",\"session_type\":\"default\",\"status\":\"idle\","
    "\"created_at\":\"2026-01-02T03:04:05.678901Z\",\"ended_at\":\"2026-01-02T03:04:06.000001Z\","
    "\"task\":{\"id\":\"task_1\",\"description\":\"d\",\"status\":\"completed\",\"assigned_to\":\"a7\","
    "\"created_at\":\"2026-01-02T03:04:05.678901Z\",\"updated_at\":\"2026-01-02T03:04:06.000001Z\"},"
    "\"metrics\":{\"tokens_used\":12,\"tasks_completed\":1},"
    "\"recent_tasks\":[{\"id\":\"task_1\",\"description\":\"d\",\"status\":\"completed\",\"response\":\"r\","
    "\"ended_at\":\"2026-01-02T03:04:06.000001Z\",\"tokens_used\":12}]}", NULL);
  g_autoptr (JsonNode) msg = NULL, event = NULL, none = NULL, in = NULL, params_node = NULL;
  g_autofree char *text = NULL;
  JsonObject *params;
  const EnsDialectEntry *entry;
  const char *error;

  msg = ens_dialect_neolith_answer (ens_dialect_find (&ens_dialect_neolith, "session_status", NULL, NULL), rec);
  text = json_to_string (msg, FALSE);
  g_assert_cmpstr (text, ==,
                   "{\"type\":\"session_status_update\",\"session\":{\"id\":\"s1\",\"orchestratorId\":\"default\","
                   "\"task\":{\"id\":\"task_1\",\"type\":\"general\",\"description\":\"d\",\"priority\":\"medium\","
                   "\"assignedTo\":\"a7\",\"status\":\"completed\",\"createdAt\":\"2026-01-02T03:04:05.678Z\","
                   "\"updatedAt\":\"2026-01-02T03:04:06.000Z\"},\"type\":\"claude-code\",\"status\":\"completed\","
                   "\"startedAt\":\"2026-01-02T03:04:05.678Z\",\"endedAt\":\"2026-01-02T03:04:06.000Z\","
                   "\"memoryContext\":{\"scratchpad\":{},\"episodic\":[{\"id\":\"memory_task_1\","
                   "\"content\":\"Task: d\\nResult: r\",\"timestamp\":\"2026-01-02T03:04:06.000Z\",\"type\":\"interaction\","
                   "\"metadata\":{\"taskId\":\"task_1\",\"tokensUsed\":12,\"toolCallsMade\":0,\"success\":true}}],"
                   "\"semantic\":[]},\"metrics\":{\"tokensUsed\":12,\"duration\":0,\"tasksCompleted\":1,"
                   "\"errorsEncountered\":0,\"averageResponseTime\":0}},\"sessionId\":\"s1\"}");

  event = json_from_string ("{\"type\":\"session_status_update\",\"sessionId\":\"s1\"}", NULL);
  none = ens_dialect_neolith_event (json_node_get_object (event));
  g_assert_null (none);
  g_clear_pointer (&event, json_node_unref);
  event = json_from_string ("{\"type\":\"task_queued\",\"sessionId\":\"s1\"}", NULL);
  g_assert_null (ens_dialect_neolith_event (json_node_get_object (event)));

  in = json_from_string ("{\"type\":\"execute_task\",\"payload\":{\"sessionId\":\"s1\",\"task\":{\"description\":\"go\"},"
                         "\"context\":{\"k\":1}}}", NULL);
  params_node = ens_node_new_object (&params);
  entry = ens_dialect_neolith_decode (json_node_get_object (in), params, &error);
  g_assert_nonnull (entry);
  g_assert_cmpstr (entry->verb, ==, "sessions.execute");
  g_clear_pointer (&text, g_free);
  text = json_to_string (params_node, FALSE);
  g_assert_cmpstr (text, ==, "{\"session_id\":\"s1\",\"task\":\"go\",\"task_meta\":{\"metadata\":{\"executionContext\":{\"k\":1}}}}");
  g_clear_pointer (&in, json_node_unref);
  in = json_from_string ("{\"type\":\"pong\"}", NULL);
  g_assert_null (ens_dialect_neolith_decode (json_node_get_object (in), params, &error));
  g_assert_cmpstr (error, ==, "Unknown message type");
  g_clear_pointer (&in, json_node_unref);
  in = json_from_string ("{\"type\":\"stop_session\",\"payload\":{\"sessionId\":7}}", NULL);
  g_assert_null (ens_dialect_neolith_decode (json_node_get_object (in), params, &error));
  g_assert_cmpstr (error, ==, "Invalid message format");
}

/* Rhetor: every name of a roster specialist resolves to its id. */
static void
test_rhetor_names (void)
{
  const char *const roster[] = { "apollo", "rhetor", "penia", NULL };
  const char *const names[][2] = {
    { "apollo", "apollo-ai" },   { "Apollo-AI", "apollo-ai" },          { "apollo-assistant", "apollo-ai" },
    { "rhetor-orchestrator", "rhetor-ai" }, { "budget-assistant", "penia-ai" }, { "athena", NULL },
    { "athena-ai", NULL },       { "sess_1234", NULL },                 { "-ai", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *id = ens_dialect_rhetor_resolve (roster, names[i][0]);
      g_assert_cmpstr (id, ==, names[i][1]);
    }
  g_assert_cmpstr (ens_dialect_rhetor_component (roster, "penia-ai"), ==, "penia");
  g_assert_null (ens_dialect_rhetor_component (roster, "sess_1"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dialect/map-in", test_map_in);
  g_test_add_func ("/dialect/map-required-and-nested", test_map_required_and_nested);
  g_test_add_func ("/dialect/map-types-and-functions", test_map_types_and_functions);
  g_test_add_func ("/dialect/reshape-out", test_reshape_out);
  g_test_add_func ("/dialect/reshape-keeps-the-rest", test_reshape_keeps_the_rest);
  g_test_add_func ("/dialect/rows-and-codes", test_rows_and_codes);
  g_test_add_func ("/dialect/core-errors", test_core_errors_in_the_dialects_words);
  g_test_add_func ("/dialect/scan-value", test_scan_value);
  g_test_add_func ("/dialect/tables", test_tables);
  g_test_add_func ("/dialect/neolith-shapes", test_neolith_shapes);
  g_test_add_func ("/dialect/rhetor-names", test_rhetor_names);
  return g_test_run ();
}
