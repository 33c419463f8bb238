/* ens-provider-local — the offline default provider.  It serves one backend,
 * "local", with no configuration, so a fresh machine with no network and no
 * keys still gets answers.  No model runs: the reply is derived
 * deterministically from the last user message and every result says so
 * (the text starts with a label, and the result has "local": true).
 * Streaming requests get the reply a few words at a time on a short timer;
 * everything is reported from the main loop, never inside complete().
 *
 * Tools, deterministically, so a tool loop can be driven without a network.
 * Given a request with tools, the last user message is read for lines
 *     call TOOL {json arguments}      (called once, on the first turn)
 *     loop TOOL {json arguments}      (called on every turn: never ends)
 * TOOL is a tool's name as given, or the same with any character outside
 * [A-Za-z0-9_-] written '_' ("echo.say" for a tool named "echo_say"); the
 * arguments are optional ({}), and text that is not a JSON object is
 * passed on as a string.  The turn after the last user message calls
 * every call and loop line's tool, all at once, in their order (ids
 * call_1_0, call_1_1, ...); each later turn calls the loop lines' tools
 * (call_2_0, ...), or, when there are none, answers "Tool results: " and
 * each tool message since the user's as "NAME: CONTENT", joined by "; ".
 * A tool named in a line but not in the request is called all the same
 * (its caller says it does not exist).  Without such lines the tools are
 * ignored.
 *
 * It makes embeddings too (model "local-embedding"): no model runs either,
 * each text's words and their character 3-grams are hashed (FNV-1a) into
 * signed dimensions (256 unless the request asks for others) and the vector
 * made unit length, so texts that share words are close. */
#include <ensemble/ensemble.h>

#include "ens-json-util.h"

#include <math.h>
#include <string.h>

#define LOCAL_BACKEND "local"
#define LOCAL_LABEL "[ensemble local provider \xe2\x80\x94 no LLM is configured] "
#define ECHO_CHARS 400
#define SUMMARY_CHARS 120
#define WORDS_PER_CHUNK 3
#define CHUNK_INTERVAL_MS 2
#define EMBEDDING_MODEL "local-embedding"
#define EMBEDDING_DIMS 256
#define EMBEDDING_MAX_DIMS 4096

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  GList *jobs;   /* Job *, running completions, owned */
  guint64 served;
} Local;

typedef struct {
  Local *local;
  EnsCompletion *completion;
  GCancellable *cancellable; /* (owned) may be NULL */
  GSource *cancel_source;    /* (owned) fires when @cancellable is cancelled */
  guint timer_id;            /* chunk timer or the idle that finishes */
  JsonNode *result;          /* (owned) what finish reports */
  char **pieces;             /* (owned) the streamed chunks, NULL without streaming */
  guint next;                /* next piece to send */
  const char *fail_code;     /* set: the job fails with it */
  char *fail_message;
} Job;

/* ---- text helpers ---- */

/* (transfer full) the text of a message content: a string, or the "text"
 * members of an array of parts, a line each; valid UTF-8. */
static char *
content_text (JsonNode *content)
{
  char *text = ens_content_text (content, "\n");

  if (!g_utf8_validate (text, -1, NULL))
    {
      char *valid = g_utf8_make_valid (text, -1);
      g_free (text);
      return valid;
    }
  return text;
}

static guint
count_words (const char *text)
{
  guint n = 0;
  gboolean in_word = FALSE;

  for (const char *p = text; *p; p = g_utf8_next_char (p))
    {
      gboolean space = g_unichar_isspace (g_utf8_get_char (p));
      if (!space && !in_word)
        n++;
      in_word = !space;
    }
  return n;
}

/* (transfer full) at most @max characters of @text, with an ellipsis when cut. */
static char *
truncate_chars (const char *text, glong max)
{
  if (g_utf8_strlen (text, -1) <= max)
    return g_strdup (text);
  {
    GString *cut = g_string_new_len (text, g_utf8_offset_to_pointer (text, max) - text);
    g_string_append (cut, "\xe2\x80\xa6");
    return g_string_free (cut, FALSE);
  }
}

/* (transfer full) the first sentence or line of @text, whitespace squeezed. */
static char *
first_sentence (const char *text)
{
  GString *out = g_string_new (NULL);
  gboolean space = FALSE;

  for (const char *p = text; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c == '\n' && out->len > 0)
        break;
      if (g_unichar_isspace (c))
        {
          space = out->len > 0;
          continue;
        }
      if (space)
        g_string_append_c (out, ' ');
      space = FALSE;
      g_string_append_unichar (out, c);
      if ((c == '.' || c == '?' || c == '!') && g_unichar_isspace (g_utf8_get_char (g_utf8_next_char (p))))
        break;
    }
  {
    char *cut = truncate_chars (out->str, SUMMARY_CHARS);
    g_string_free (out, TRUE);
    return cut;
  }
}

/* The reply and usage for @request; pure, so the same request always gets
 * the same answer. (transfer full) */
static JsonNode *build_tool_turn (JsonObject *req, JsonArray *messages);

static JsonNode *
build_result (JsonNode *request)
{
  JsonObject *req = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;
  JsonNode *msgs = req ? json_object_get_member (req, "messages") : NULL;
  JsonArray *messages = msgs && JSON_NODE_HOLDS_ARRAY (msgs) ? json_node_get_array (msgs) : NULL;
  JsonNode *tool_turn = req ? build_tool_turn (req, messages) : NULL;
  g_autofree char *last_user = NULL;
  guint input_words = 0, turns = 0, system_words = 0;
  g_autoptr (GString) reply = g_string_new (LOCAL_LABEL);
  g_autoptr (JsonBuilder) b = json_builder_new ();

  if (tool_turn)
    return tool_turn;
  for (guint i = 0; messages && i < json_array_get_length (messages); i++)
    {
      JsonNode *m = json_array_get_element (messages, i);
      JsonObject *obj = JSON_NODE_HOLDS_OBJECT (m) ? json_node_get_object (m) : NULL;
      const char *role = obj ? json_object_get_string_member_with_default (obj, "role", "") : "";
      g_autofree char *text = content_text (obj ? json_object_get_member (obj, "content") : NULL);
      guint words = count_words (text);

      input_words += words;
      if (g_strcmp0 (role, "system") == 0)
        system_words += words;
      else if (g_strcmp0 (role, "user") == 0)
        {
          turns++;
          g_free (last_user);
          last_user = g_steal_pointer (&text);
        }
    }

  if (last_user == NULL || count_words (last_user) == 0)
    g_string_append (reply, "The request has no user message, so there is nothing to answer. "
                            "Configure a provider in the 'providers' setting for real answers.");
  else
    {
      g_autofree char *summary = first_sentence (last_user);
      g_autofree char *echo = truncate_chars (last_user, ECHO_CHARS);

      g_string_append_printf (reply, "You asked: \"%s\" (%u words, %ld characters; user turn %u",
                              summary, count_words (last_user), g_utf8_strlen (last_user, -1), turns);
      if (system_words)
        g_string_append_printf (reply, ", after a %u-word system prompt", system_words);
      g_string_append (reply, "). No language model ran: this is Ensemble's built-in offline provider. "
                              "Configure a provider in the 'providers' setting for real answers.\n\n"
                              "Your message, echoed: ");
      g_string_append (reply, echo);
    }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "response");
  json_builder_add_string_value (b, reply->str);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, LOCAL_BACKEND);
  json_builder_set_member_name (b, "usage");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "input_tokens");
  json_builder_add_int_value (b, input_words);
  json_builder_set_member_name (b, "output_tokens");
  json_builder_add_int_value (b, count_words (reply->str));
  json_builder_end_object (b);
  json_builder_set_member_name (b, "finish_reason");
  json_builder_add_string_value (b, "stop");
  json_builder_set_member_name (b, "local");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* ---- tools ---- */

static char *
tool_key (const char *name, gsize len)
{
  GString *key = g_string_new (NULL);

  for (gsize i = 0; i < len && name[i]; i++)
    g_string_append_c (key, g_ascii_isalnum (name[i]) || name[i] == '_' || name[i] == '-' ? name[i] : '_');
  return g_string_free (key, FALSE);
}

/* The name of the tool of @tools that @word names (see the header), or
 * @word made a tool name when none does. (transfer full) */
static char *
tool_named (JsonArray *tools, const char *word, gsize len)
{
  g_autofree char *key = tool_key (word, len);

  for (guint i = 0; tools && i < json_array_get_length (tools); i++)
    {
      JsonNode *el = json_array_get_element (tools, i);
      JsonObject *t = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      JsonNode *fn = t ? json_object_get_member (t, "function") : NULL;
      const char *name;

      if (fn && JSON_NODE_HOLDS_OBJECT (fn))
        t = json_node_get_object (fn);
      name = t ? json_object_get_string_member_with_default (t, "name", NULL) : NULL;
      if (name && (g_str_equal (name, key) || (strlen (name) == len && strncmp (name, word, len) == 0)))
        return g_strdup (name);
    }
  return g_steal_pointer (&key);
}

/* Adds to @calls the tool calls of the lines of @text starting with one
 * of @verbs ("call", "loop"). */
static void
add_calls (JsonArray *calls, JsonArray *tools, const char *text, const char *const *verbs, guint turn)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    {
      const char *l = lines[i], *name, *end;
      gboolean wanted = FALSE;

      while (*l == ' ' || *l == '\t')
        l++;
      for (guint v = 0; verbs[v] && !wanted; v++)
        wanted = g_str_has_prefix (l, verbs[v]) && (l[4] == ' ' || l[4] == '\t');
      if (!wanted)
        continue;
      name = l + 5;
      while (*name == ' ' || *name == '\t')
        name++;
      for (end = name; *end && *end != ' ' && *end != '\t' && *end != '\r'; end++)
        ;
      if (end == name)
        continue;
      {
        JsonObject *call = json_object_new ();
        g_autofree char *tool = tool_named (tools, name, (gsize) (end - name));
        g_autofree char *id = g_strdup_printf ("call_%u_%u", turn, json_array_get_length (calls));
        g_autofree char *args = g_strstrip (g_strdup (end));
        JsonNode *parsed = *args ? json_from_string (args, NULL) : NULL;

        json_object_set_string_member (call, "id", id);
        json_object_set_string_member (call, "type", "function");
        json_object_set_string_member (call, "name", tool);
        if (*args == '\0')
          json_object_set_object_member (call, "arguments", json_object_new ());
        else if (parsed && JSON_NODE_HOLDS_OBJECT (parsed))
          json_object_set_member (call, "arguments", g_steal_pointer (&parsed));
        else
          json_object_set_string_member (call, "arguments", args);
        g_clear_pointer (&parsed, json_node_unref);
        json_array_add_object_element (calls, call);
      }
    }
}

/* The result of a turn of a request with tools, or NULL when the tools
 * play no part (the usual answer then). (transfer full) */
static JsonNode *
build_tool_turn (JsonObject *req, JsonArray *messages)
{
  JsonNode *tn = json_object_get_member (req, "tools");
  JsonArray *tools = tn && JSON_NODE_HOLDS_ARRAY (tn) ? json_node_get_array (tn) : NULL;
  g_autofree char *task = NULL;
  guint user_at = 0, turn = 1, n;
  g_autoptr (JsonArray) calls = json_array_new ();
  g_autoptr (GString) results = g_string_new (NULL);
  JsonObject *r;
  JsonNode *node;

  if (tools == NULL || json_array_get_length (tools) == 0 || messages == NULL)
    return NULL;
  n = json_array_get_length (messages);
  for (guint i = 0; i < n; i++)
    {
      JsonObject *m = json_array_get_object_element (messages, i);
      if (m && g_strcmp0 (json_object_get_string_member_with_default (m, "role", ""), "user") == 0)
        user_at = i + 1;
    }
  if (user_at == 0)
    return NULL;
  task = content_text (json_object_get_member (json_array_get_object_element (messages, user_at - 1), "content"));
  for (guint i = user_at; i < n; i++)
    {
      JsonObject *m = json_array_get_object_element (messages, i);
      const char *role = m ? json_object_get_string_member_with_default (m, "role", "") : "";
      if (g_str_equal (role, "assistant"))
        turn++;
      else if (g_str_equal (role, "tool"))
        {
          g_autofree char *content = content_text (json_object_get_member (m, "content"));
          g_string_append_printf (results, "%s%s: %s", results->len ? "; " : "",
                                  json_object_get_string_member_with_default (m, "name", "tool"), content);
        }
    }
  add_calls (calls, tools, task, turn == 1 ? (const char *const[]){ "call", "loop", NULL } : (const char *const[]){ "loop", NULL },
             turn);
  if (json_array_get_length (calls) == 0 && turn == 1)
    return NULL; /* no directive: the usual answer */

  node = json_node_new (JSON_NODE_OBJECT);
  r = json_object_new ();
  json_node_take_object (node, r);
  if (json_array_get_length (calls))
    {
      json_object_set_string_member (r, "response", "");
      json_object_set_string_member (r, "finish_reason", "tool_calls");
      json_object_set_array_member (r, "tool_calls", json_array_ref (calls));
    }
  else
    {
      g_autofree char *text = g_strconcat ("Tool results: ", results->str, NULL);
      json_object_set_string_member (r, "response", text);
      json_object_set_string_member (r, "finish_reason", "stop");
    }
  json_object_set_string_member (r, "model", LOCAL_BACKEND);
  {
    JsonObject *usage = json_object_new ();
    json_object_set_int_member (usage, "input_tokens", count_words (task));
    json_object_set_int_member (usage, "output_tokens", count_words (json_object_get_string_member (r, "response")) + json_array_get_length (calls));
    json_object_set_object_member (r, "usage", usage);
  }
  json_object_set_boolean_member (r, "local", TRUE);
  return node;
}

/* ---- embeddings ---- */

static guint32
fnv1a (guint32 h, const char *bytes, gsize len)
{
  for (gsize i = 0; i < len; i++)
    h = (h ^ (guchar) bytes[i]) * 16777619u;
  return h;
}

static void
add_feature (float *v, guint dims, const char *bytes, gsize len, float weight)
{
  guint32 h = fnv1a (2166136261u, bytes, len);

  v[h % dims] += (h & 0x80000000u) ? -weight : weight;
}

/* @text's embedding into @v (@dims floats, zeroed); returns its words. */
static guint
embed_text (const char *text, float *v, guint dims)
{
  g_autofree char *lower = g_utf8_strdown (text, -1);
  guint words = 0;
  double norm = 0;
  const char *p = lower;

  while (*p)
    {
      const char *start;
      gunichar ch = g_utf8_get_char (p);

      if (!g_unichar_isalnum (ch))
        {
          p = g_utf8_next_char (p);
          continue;
        }
      start = p;
      while (*p && g_unichar_isalnum (g_utf8_get_char (p)))
        p = g_utf8_next_char (p);
      words++;
      add_feature (v, dims, start, (gsize) (p - start), 1.0f);
      /* character 3-grams catch inflections (mat, mats) */
      for (const char *a = start; a < p; a = g_utf8_next_char (a))
        {
          const char *b = a;
          int n = 0;

          /* Never a step past the word's end: its last character may end the string. */
          for (; n < 3 && b < p; n++)
            b = g_utf8_next_char (b);
          if (n < 3 || b > p)
            break;
          add_feature (v, dims, a, (gsize) (b - a), 0.35f);
        }
    }
  if (words == 0)
    add_feature (v, dims, lower, strlen (lower), 1.0f); /* punctuation only: still itself */
  for (guint i = 0; i < dims; i++)
    norm += (double) v[i] * v[i];
  norm = sqrt (norm);
  for (guint i = 0; norm > 0 && i < dims; i++)
    v[i] = (float) (v[i] / norm);
  return words;
}

/* (transfer full) {embeddings, model, dims, usage, local} for a request of
 * kind "embeddings", or NULL with *@why set (transfer none). */
static JsonNode *
build_embeddings (JsonObject *req, const char **why)
{
  JsonNode *input = json_object_get_member (req, "input");
  JsonArray *texts = input && JSON_NODE_HOLDS_ARRAY (input) ? json_node_get_array (input) : NULL;
  JsonNode *dn = json_object_get_member (req, "dimensions");
  guint dims = EMBEDDING_DIMS, words = 0;
  JsonObject *out, *usage;
  JsonArray *embeddings;
  JsonNode *node;
  g_autofree float *v = NULL;

  if (texts == NULL || json_array_get_length (texts) == 0)
    return (*why = "the request has no input"), NULL;
  if (dn && JSON_NODE_HOLDS_VALUE (dn) && json_node_get_value_type (dn) == G_TYPE_INT64)
    {
      if (json_node_get_int (dn) < 1 || json_node_get_int (dn) > EMBEDDING_MAX_DIMS)
        return (*why = "the local provider makes embeddings of 1 to 4096 dimensions"), NULL;
      dims = (guint) json_node_get_int (dn);
    }
  v = g_new (float, dims);
  embeddings = json_array_new ();
  for (guint i = 0; i < json_array_get_length (texts); i++)
    {
      JsonNode *t = json_array_get_element (texts, i);
      JsonArray *vector = json_array_sized_new (dims);

      memset (v, 0, sizeof (float) * dims);
      if (JSON_NODE_HOLDS_VALUE (t) && json_node_get_value_type (t) == G_TYPE_STRING)
        words += embed_text (json_node_get_string (t), v, dims);
      for (guint j = 0; j < dims; j++)
        json_array_add_double_element (vector, v[j]);
      json_array_add_array_element (embeddings, vector);
    }
  out = json_object_new ();
  json_object_set_array_member (out, "embeddings", embeddings);
  json_object_set_string_member (out, "model", EMBEDDING_MODEL);
  json_object_set_int_member (out, "dims", dims);
  usage = json_object_new ();
  json_object_set_int_member (usage, "input_tokens", words);
  json_object_set_int_member (usage, "output_tokens", 0);
  json_object_set_object_member (out, "usage", usage);
  json_object_set_boolean_member (out, "local", TRUE);
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, out);
  return node;
}

/* (transfer full) @text cut into pieces of WORDS_PER_CHUNK words, each with
 * the whitespace after it, so the pieces join back to @text. */
static char **
split_chunks (const char *text)
{
  GPtrArray *pieces = g_ptr_array_new ();
  const char *start = text;
  guint words = 0;
  gboolean in_word = FALSE;

  for (const char *p = text; *p; p = g_utf8_next_char (p))
    {
      gboolean space = g_unichar_isspace (g_utf8_get_char (p));
      if (!space && !in_word)
        {
          if (words > 0 && words % WORDS_PER_CHUNK == 0)
            {
              g_ptr_array_add (pieces, g_strndup (start, (gsize) (p - start)));
              start = p;
            }
          words++;
        }
      in_word = !space;
    }
  if (*start)
    g_ptr_array_add (pieces, g_strdup (start));
  g_ptr_array_add (pieces, NULL);
  return (char **) g_ptr_array_free (pieces, FALSE);
}

/* ---- jobs ---- */

static void
job_free (Job *job)
{
  g_clear_handle_id (&job->timer_id, g_source_remove);
  if (job->cancel_source)
    {
      g_source_destroy (job->cancel_source);
      g_source_unref (job->cancel_source);
    }
  g_clear_object (&job->cancellable);
  g_clear_pointer (&job->result, json_node_unref);
  g_strfreev (job->pieces);
  g_free (job->fail_message);
  g_free (job);
}

/* Reports the end (exactly once) and drops the job. */
static void
job_end (Job *job, const char *fail_code, const char *fail_message)
{
  Local *local = job->local;

  local->jobs = g_list_remove (local->jobs, job);
  if (fail_code)
    local->host->completion_fail (job->completion, fail_code, fail_message);
  else
    {
      local->served++;
      local->host->completion_finish (job->completion, job->result);
    }
  job_free (job);
}

static gboolean
job_step (gpointer data)
{
  Job *job = data;

  if (job->fail_code)
    {
      job->timer_id = 0;
      job_end (job, job->fail_code, job->fail_message);
      return G_SOURCE_REMOVE;
    }
  if (job->pieces && job->pieces[job->next])
    {
      job->local->host->completion_chunk (job->completion, job->pieces[job->next++]);
      if (job->pieces[job->next])
        return G_SOURCE_CONTINUE;
    }
  job->timer_id = 0;
  job_end (job, NULL, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
job_cancelled (GCancellable *cancellable, gpointer data)
{
  Job *job = data;

  job_end (job, "CANCELLED", "the request was cancelled");
  return G_SOURCE_REMOVE;
}

static void
local_complete (gpointer instance, const char *backend, JsonNode *request, EnsCompletion *completion,
                GCancellable *cancellable)
{
  Local *local = instance;
  Job *job = g_new0 (Job, 1);
  JsonObject *req = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;

  job->local = local;
  job->completion = completion;
  local->jobs = g_list_prepend (local->jobs, job);

  if (g_strcmp0 (backend, LOCAL_BACKEND) != 0)
    {
      job->fail_code = "NOT_CONFIGURED";
      job->fail_message = g_strdup_printf ("the local provider has no backend \"%s\"", backend);
    }
  else if (req == NULL)
    {
      job->fail_code = "BAD_REQUEST";
      job->fail_message = g_strdup ("the request is not a JSON object");
    }
  else if (g_strcmp0 (json_object_get_string_member_with_default (req, "kind", ""), "embeddings") == 0)
    {
      const char *why = NULL;

      if ((job->result = build_embeddings (req, &why)) == NULL)
        {
          job->fail_code = "BAD_REQUEST";
          job->fail_message = g_strdup (why);
        }
    }
  else
    {
      job->result = build_result (request);
      if (json_object_get_boolean_member_with_default (req, "stream", FALSE))
        job->pieces = split_chunks (json_object_get_string_member (json_node_get_object (job->result), "response"));
    }

  if (cancellable && job->fail_code == NULL)
    {
      job->cancellable = g_object_ref (cancellable);
      job->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (job->cancel_source, G_SOURCE_FUNC (job_cancelled), job, NULL);
      g_source_attach (job->cancel_source, g_main_context_get_thread_default ());
    }
  /* Never report from inside complete(): the caller may not expect it. */
  if (job->pieces)
    job->timer_id = g_timeout_add (CHUNK_INTERVAL_MS, job_step, job);
  else
    job->timer_id = g_idle_add (job_step, job);
}

static JsonNode *
local_backends (gpointer instance)
{
  Local *local = instance;
  static const char *const caps[] = { "reasoning", "coding", "chat", "summarization", "analysis" };
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, LOCAL_BACKEND);
  json_builder_set_member_name (b, "provider");
  json_builder_add_string_value (b, local->host->plugin_id (local->self));
  json_builder_set_member_name (b, "models");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, LOCAL_BACKEND);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "quality");
  json_builder_add_double_value (b, 0.3);
  json_builder_set_member_name (b, "cost_per_1k_input");
  json_builder_add_double_value (b, 0.0);
  json_builder_set_member_name (b, "cost_per_1k_output");
  json_builder_add_double_value (b, 0.0);
  json_builder_set_member_name (b, "latency_ms");
  json_builder_add_int_value (b, 5);
  json_builder_set_member_name (b, "context_window");
  json_builder_add_int_value (b, 32768);
  json_builder_set_member_name (b, "capabilities");
  json_builder_begin_array (b);
  for (guint i = 0; i < G_N_ELEMENTS (caps); i++)
    json_builder_add_string_value (b, caps[i]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "max_concurrency");
  json_builder_add_int_value (b, 64);
  json_builder_set_member_name (b, "local");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_set_member_name (b, "embedding_models");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, EMBEDDING_MODEL);
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_array (b);
  return json_builder_get_root (b);
}

static JsonNode *
local_describe (gpointer instance)
{
  Local *local = instance;
  JsonObject *obj = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (obj, "backend", LOCAL_BACKEND);
  json_object_set_int_member (obj, "running", g_list_length (local->jobs));
  json_object_set_int_member (obj, "served", (gint64) local->served);
  json_node_take_object (node, obj);
  return node;
}

static gpointer
local_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  Local *local;

  if (!ENS_STRUCT_HAS (host, EnsHost, completion_fail))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old for providers");
      return NULL;
    }
  local = g_new0 (Local, 1);
  local->host = host;
  local->self = self;
  return local;
}

static void
local_stop (gpointer instance)
{
  Local *local = instance;

  /* The host has ended (or is ending) any completion still running; only
   * the sources and memory are ours to drop, without reporting. */
  g_list_free_full (local->jobs, (GDestroyNotify) job_free);
  g_free (local);
}

static const EnsProviderVTable local_vtable = {
  .struct_size = sizeof (EnsProviderVTable),
  .backends = local_backends,
  .complete = local_complete,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_PROVIDER, "provider-local", "1.0",
                   "Offline provider: deterministic, clearly labelled answers without any LLM", ENS_PLUGIN_FLAG_NONE,
                   local_init, local_stop, local_describe, &local_vtable)
