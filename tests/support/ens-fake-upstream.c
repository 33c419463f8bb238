/* ens-fake-upstream.c — the scripted fake LLM upstream (see the header). */
#include "ens-fake-upstream.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define JSON_TYPE "application/json"
#define SSE_TYPE "text/event-stream"
#define CREATED "1700000000"
#define PROMPT_TOKENS 10

struct _FakeUpstream {
  SoupServer *server;
  FakeScript script;
  guint16 port;
  char *url;
  guint64 requests;
  guint64 client_aborts;
  GHashTable *seen; /* script text -> requests that carried it (GUINT_TO_POINTER) */
  JsonParser *parser;
};

typedef enum {
  DIALECT_OPENAI,
  DIALECT_ANTHROPIC,
} Dialect;

/* ---------------------------------------------------------------- scripts */

void
fake_script_init (FakeScript *script)
{
  memset (script, 0, sizeof *script);
  script->stream = FAKE_STREAM_ASKED;
  script->chunks = 3;
  script->cut = -1;
  script->malformed = -1;
  script->gap_at = -1;
  script->dims = 8;
}

static gboolean
parse_uint (const char *value, guint min, guint max, guint *out)
{
  guint64 v;

  if (value == NULL || !g_ascii_string_to_unsigned (value, 10, min, max, &v, NULL))
    return FALSE;
  *out = (guint) v;
  return TRUE;
}

gboolean
fake_script_parse (FakeScript *script, const char *text, GError **error)
{
  FakeScript s = *script;
  g_auto (GStrv) words = NULL;

  if (text == NULL || *text == '\0')
    return TRUE;
  words = g_strsplit (text, ",", -1);
  for (guint i = 0; words[i]; i++)
    {
      char *word = g_strstrip (words[i]);
      char *value = strchr (word, '=');
      guint n = 0, ms = 0;
      gboolean ok = TRUE;

      if (*word == '\0')
        continue;
      if (value)
        *value++ = '\0';
      if (strcmp (word, "stream") == 0 && !value)
        s.stream = FAKE_STREAM_ALWAYS;
      else if (strcmp (word, "plain") == 0 && !value)
        s.stream = FAKE_STREAM_NEVER;
      else if (strcmp (word, "reset") == 0 && !value)
        s.reset = TRUE;
      else if (strcmp (word, "no-end") == 0 && !value)
        s.no_end = TRUE;
      else if (strcmp (word, "chunks") == 0)
        ok = parse_uint (value, 0, 1000000, &s.chunks);
      else if (strcmp (word, "interval") == 0)
        ok = parse_uint (value, 0, 3600000, &s.interval_ms);
      else if (strcmp (word, "delay") == 0)
        ok = parse_uint (value, 0, 3600000, &s.delay_ms);
      else if (strcmp (word, "status") == 0)
        ok = parse_uint (value, 200, 599, &s.status);
      else if (strcmp (word, "retry-after") == 0)
        ok = parse_uint (value, 0, 86400, &s.retry_after);
      else if (strcmp (word, "times") == 0)
        ok = parse_uint (value, 1, G_MAXUINT, &s.times);
      else if (strcmp (word, "dims") == 0)
        ok = parse_uint (value, 1, 65536, &s.dims);
      else if (strcmp (word, "cut") == 0)
        {
          ok = parse_uint (value, 0, 1000000, &n);
          s.cut = (gint) n;
        }
      else if (strcmp (word, "malformed") == 0)
        {
          ok = parse_uint (value, 0, 1000000, &n);
          s.malformed = (gint) n;
        }
      else if (strcmp (word, "gap") == 0)
        {
          char *colon = value ? strchr (value, ':') : NULL;

          if (colon)
            *colon = '\0';
          ok = colon && parse_uint (value, 0, 1000000, &n) && parse_uint (colon + 1, 0, 3600000, &ms);
          s.gap_at = (gint) n;
          s.gap_ms = ms;
        }
      else
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "unknown fake upstream mode '%s'", word);
          return FALSE;
        }
      if (!ok)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad value for fake upstream mode '%s'",
                       word);
          return FALSE;
        }
    }
  *script = s;
  return TRUE;
}

/* --------------------------------------------------------------- answers */

static void
append_json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (; *s; s++)
    {
      guchar c = (guchar) *s;

      if (c == '"' || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, (char) c);
        }
      else if (c < 0x20)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, (char) c);
    }
  g_string_append_c (out, '"');
}

static const char *
error_type (Dialect dialect, guint status)
{
  switch (status)
    {
    case 400:
    case 422:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
    default:
      return dialect == DIALECT_ANTHROPIC ? "api_error" : "server_error";
    }
}

/* The dialect's error body, with a retry-after header when asked. */
static void
answer_error (SoupServerMessage *msg, Dialect dialect, guint status, const char *message, guint retry_after,
              guint delay_ms)
{
  GString *body = g_string_new (NULL);

  if (dialect == DIALECT_ANTHROPIC)
    {
      g_string_append_printf (body, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":",
                              error_type (dialect, status));
      append_json_string (body, message);
      g_string_append (body, "}}");
    }
  else
    {
      g_string_append (body, "{\"error\":{\"message\":");
      append_json_string (body, message);
      g_string_append_printf (body, ",\"type\":\"%s\",\"param\":null,\"code\":null}}", error_type (dialect, status));
    }
  if (retry_after)
    {
      char value[16];

      g_snprintf (value, sizeof value, "%u", retry_after);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "retry-after", value);
    }
  fake_server_reply_later (msg, status, JSON_TYPE, g_string_free (body, FALSE), delay_ms);
}

static void
answer_scripted_error (SoupServerMessage *msg, Dialect dialect, const FakeScript *script)
{
  g_autofree char *message = g_strdup_printf ("fake upstream: HTTP %u", script->status);

  answer_error (msg, dialect, script->status, message, script->retry_after, script->delay_ms);
}

/* What a completion request asked for. */
typedef struct {
  const char *model; /* borrowed from the parsed request */
  gboolean stream;
  gboolean include_usage;
} Asked;

static gboolean
read_request (FakeUpstream *up, SoupServerMessage *msg, Dialect dialect, Asked *asked)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr (GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  JsonNode *root;
  JsonObject *o, *options;

  memset (asked, 0, sizeof *asked);
  asked->model = "fake-model";
  if (!json_parser_load_from_data (up->parser, data, (gssize) len, &error) ||
      !(root = json_parser_get_root (up->parser)) || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_autofree char *message =
        g_strdup_printf ("the request body is not a JSON object: %s", error ? error->message : "empty");
      answer_error (msg, dialect, 400, message, 0, 0);
      return FALSE;
    }
  o = json_node_get_object (root);
  if (json_object_has_member (o, "model") && JSON_NODE_HOLDS_VALUE (json_object_get_member (o, "model")) &&
      json_object_get_string_member (o, "model"))
    asked->model = json_object_get_string_member (o, "model");
  if (json_object_has_member (o, "stream") && JSON_NODE_HOLDS_VALUE (json_object_get_member (o, "stream")))
    asked->stream = json_object_get_boolean_member (o, "stream");
  options = json_object_has_member (o, "stream_options") &&
                JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "stream_options"))
              ? json_object_get_object_member (o, "stream_options")
              : NULL;
  if (options && json_object_has_member (options, "include_usage") &&
      JSON_NODE_HOLDS_VALUE (json_object_get_member (options, "include_usage")))
    asked->include_usage = json_object_get_boolean_member (options, "include_usage");
  return TRUE;
}

static gboolean
streams (const FakeScript *script, const Asked *asked)
{
  return script->stream == FAKE_STREAM_ALWAYS || (script->stream == FAKE_STREAM_ASKED && asked->stream);
}

static char *
chunk_text (guint i)
{
  return g_strdup_printf ("w%u ", i);
}

static char *
whole_text (guint chunks)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < chunks; i++)
    g_string_append_printf (s, "w%u ", i);
  return g_string_free (s, FALSE);
}

/* A plain (non-streamed) answer: the whole body, or with cut/malformed a
 * body that stops halfway or is not JSON. */
static void
answer_plain (FakeUpstream *up, SoupServerMessage *msg, const FakeScript *script, char *body)
{
  gsize len = strlen (body);

  if (script->malformed >= 0)
    body[len / 2] = '\0';
  if (script->cut >= 0)
    {
      GPtrArray *pieces = g_ptr_array_new_with_free_func (g_free);
      FakeBodyPlan plan = { .first_ms = script->delay_ms, .gap_at = -1, .end = FAKE_BODY_CUT,
                            .aborts = &up->client_aborts };

      g_ptr_array_add (pieces, g_strndup (body, len / 2));
      g_free (body);
      fake_server_write (msg, 200, JSON_TYPE, pieces, &plan);
      return;
    }
  fake_server_reply_later (msg, 200, JSON_TYPE, body, script->delay_ms);
}

/* A streamed answer: @preamble pieces, then the script's content chunks
 * (each from @content), then @post pieces, then @terminator unless no-end;
 * cut, malformed and gap as the script says. */
static void
answer_stream (FakeUpstream *up, SoupServerMessage *msg, const FakeScript *script, GPtrArray *preamble,
               char *(*content) (const char *model, guint i, gboolean malformed), const char *model,
               GPtrArray *post, const char *terminator)
{
  GPtrArray *pieces = g_ptr_array_new_with_free_func (g_free);
  FakeBodyPlan plan = {
    .first_ms = script->delay_ms,
    .interval_ms = script->interval_ms,
    .gap_at = script->gap_at >= 0 ? (gint) preamble->len + script->gap_at : -1,
    .gap_ms = script->gap_ms,
    .end = FAKE_BODY_COMPLETE,
    .aborts = &up->client_aborts,
  };
  guint chunks = script->chunks;

  for (guint i = 0; i < preamble->len; i++)
    g_ptr_array_add (pieces, g_strdup (g_ptr_array_index (preamble, i)));
  if (script->cut >= 0)
    {
      chunks = MIN (chunks, (guint) script->cut);
      plan.end = FAKE_BODY_CUT;
    }
  for (guint i = 0; i < chunks; i++)
    g_ptr_array_add (pieces, content (model, i, script->malformed >= 0 && (guint) script->malformed == i));
  if (script->cut < 0)
    {
      for (guint i = 0; i < post->len; i++)
        g_ptr_array_add (pieces, g_strdup (g_ptr_array_index (post, i)));
      if (!script->no_end)
        g_ptr_array_add (pieces, g_strdup (terminator));
    }
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "cache-control", "no-cache");
  fake_server_write (msg, 200, SSE_TYPE, pieces, &plan);
}

/* -------------------------------------------------------- OpenAI-compatible */

static void
openai_envelope (GString *s, const char *model)
{
  g_string_append (s, "{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":" CREATED
                      ",\"model\":");
  append_json_string (s, model);
}

static char *
openai_chunk (const char *model, guint i, gboolean malformed)
{
  GString *s = g_string_new ("data: ");
  g_autofree char *text = chunk_text (i);

  openai_envelope (s, model);
  g_string_append (s, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
  append_json_string (s, text);
  if (malformed)
    return g_string_free (g_string_append (s, "\n\n"), FALSE); /* cut off inside the object */
  g_string_append (s, "},\"finish_reason\":null}]}\n\n");
  return g_string_free (s, FALSE);
}

static void
answer_openai (FakeUpstream *up, SoupServerMessage *msg, const FakeScript *script)
{
  Asked asked;
  GString *s;

  if (!read_request (up, msg, DIALECT_OPENAI, &asked))
    return;
  if (streams (script, &asked))
    {
      g_autoptr (GPtrArray) preamble = g_ptr_array_new_with_free_func (g_free);
      g_autoptr (GPtrArray) post = g_ptr_array_new_with_free_func (g_free);

      s = g_string_new ("data: ");
      openai_envelope (s, asked.model);
      g_string_append (s, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                          "\"finish_reason\":null}]}\n\n");
      g_ptr_array_add (preamble, g_string_free (s, FALSE));
      s = g_string_new ("data: ");
      openai_envelope (s, asked.model);
      g_string_append (s, ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
      g_ptr_array_add (post, g_string_free (s, FALSE));
      if (asked.include_usage)
        {
          s = g_string_new ("data: ");
          openai_envelope (s, asked.model);
          g_string_append_printf (s, ",\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%u,"
                                     "\"total_tokens\":%u}}\n\n",
                                  PROMPT_TOKENS, script->chunks, PROMPT_TOKENS + script->chunks);
          g_ptr_array_add (post, g_string_free (s, FALSE));
        }
      answer_stream (up, msg, script, preamble, openai_chunk, asked.model, post, "data: [DONE]\n\n");
      return;
    }
  {
    g_autofree char *text = whole_text (script->chunks);

    s = g_string_new ("{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion\",\"created\":" CREATED ",\"model\":");
    append_json_string (s, asked.model);
    g_string_append (s, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    append_json_string (s, text);
    g_string_append_printf (s, "},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%d,"
                               "\"completion_tokens\":%u,\"total_tokens\":%u}}",
                            PROMPT_TOKENS, script->chunks, PROMPT_TOKENS + script->chunks);
    answer_plain (up, msg, script, g_string_free (s, FALSE));
  }
}

/* ------------------------------------------------------------- Anthropic */

static char *
anthropic_chunk (const char *model, guint i, gboolean malformed)
{
  GString *s = g_string_new ("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                             "\"delta\":{\"type\":\"text_delta\",\"text\":");
  g_autofree char *text = chunk_text (i);

  append_json_string (s, text);
  if (malformed)
    return g_string_free (g_string_append (s, "\n\n"), FALSE);
  g_string_append (s, "}}\n\n");
  return g_string_free (s, FALSE);
}

static void
answer_anthropic (FakeUpstream *up, SoupServerMessage *msg, const FakeScript *script)
{
  Asked asked;
  GString *s;

  if (!read_request (up, msg, DIALECT_ANTHROPIC, &asked))
    return;
  if (streams (script, &asked))
    {
      g_autoptr (GPtrArray) preamble = g_ptr_array_new_with_free_func (g_free);
      g_autoptr (GPtrArray) post = g_ptr_array_new_with_free_func (g_free);

      s = g_string_new ("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_fake\","
                        "\"type\":\"message\",\"role\":\"assistant\",\"model\":");
      append_json_string (s, asked.model);
      g_string_append_printf (s, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                                 "\"usage\":{\"input_tokens\":%d,\"output_tokens\":1}}}\n\n",
                              PROMPT_TOKENS);
      g_ptr_array_add (preamble, g_string_free (s, FALSE));
      g_ptr_array_add (preamble, g_strdup ("event: content_block_start\ndata: {\"type\":\"content_block_start\","
                                           "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"));
      g_ptr_array_add (post, g_strdup ("event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                                       "\"index\":0}\n\n"));
      g_ptr_array_add (post, g_strdup_printf ("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
                                              "{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
                                              "\"usage\":{\"output_tokens\":%u}}\n\n",
                                              script->chunks));
      answer_stream (up, msg, script, preamble, anthropic_chunk, asked.model, post,
                     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
      return;
    }
  {
    g_autofree char *text = whole_text (script->chunks);

    s = g_string_new ("{\"id\":\"msg_fake\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    append_json_string (s, asked.model);
    g_string_append (s, ",\"content\":[{\"type\":\"text\",\"text\":");
    append_json_string (s, text);
    g_string_append_printf (s, "}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
                               "\"usage\":{\"input_tokens\":%d,\"output_tokens\":%u}}",
                            PROMPT_TOKENS, script->chunks);
    answer_plain (up, msg, script, g_string_free (s, FALSE));
  }
}

/* ------------------------------------------------- embeddings and models */

/* A unit vector of @dims numbers that depends only on @text. */
static void
append_embedding (GString *s, const char *text, guint dims)
{
  guint32 state = g_str_hash (text) | 1;
  g_autofree double *v = g_new (double, dims);
  double norm = 0;

  for (guint i = 0; i < dims; i++)
    {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      v[i] = (double) state / G_MAXUINT32 * 2.0 - 1.0;
      norm += v[i] * v[i];
    }
  norm = norm > 0 ? 1.0 / sqrt (norm) : 0;
  g_string_append_c (s, '[');
  for (guint i = 0; i < dims; i++)
    {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];

      if (i)
        g_string_append_c (s, ',');
      g_string_append (s, g_ascii_formatd (buf, sizeof buf, "%.6f", v[i] * norm));
    }
  g_string_append_c (s, ']');
}

static void
answer_embeddings (FakeUpstream *up, SoupServerMessage *msg, const FakeScript *script)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  g_autoptr (GPtrArray) inputs = g_ptr_array_new ();
  JsonNode *root, *input;
  GString *s;
  guint tokens = 0;

  if (!json_parser_load_from_data (up->parser, data, (gssize) len, NULL) ||
      !(root = json_parser_get_root (up->parser)) || !JSON_NODE_HOLDS_OBJECT (root) ||
      !(input = json_object_get_member (json_node_get_object (root), "input")))
    {
      answer_error (msg, DIALECT_OPENAI, 400, "expected a JSON object with \"input\"", 0, 0);
      return;
    }
  if (JSON_NODE_HOLDS_VALUE (input) && json_node_get_string (input))
    g_ptr_array_add (inputs, (gpointer) json_node_get_string (input));
  else if (JSON_NODE_HOLDS_ARRAY (input))
    {
      JsonArray *array = json_node_get_array (input);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *e = json_array_get_element (array, i);

          if (!JSON_NODE_HOLDS_VALUE (e) || !json_node_get_string (e))
            {
              answer_error (msg, DIALECT_OPENAI, 400, "\"input\" must be a string or an array of strings", 0, 0);
              return;
            }
          g_ptr_array_add (inputs, (gpointer) json_node_get_string (e));
        }
    }
  if (inputs->len == 0)
    {
      answer_error (msg, DIALECT_OPENAI, 400, "\"input\" must be a string or an array of strings", 0, 0);
      return;
    }
  s = g_string_new ("{\"object\":\"list\",\"data\":[");
  for (guint i = 0; i < inputs->len; i++)
    {
      const char *text = g_ptr_array_index (inputs, i);

      g_string_append_printf (s, "%s{\"object\":\"embedding\",\"index\":%u,\"embedding\":", i ? "," : "", i);
      append_embedding (s, text, script->dims);
      g_string_append_c (s, '}');
      tokens += (guint) strlen (text) / 4 + 1;
    }
  g_string_append_printf (s, "],\"model\":\"fake-embedding\",\"usage\":{\"prompt_tokens\":%u,\"total_tokens\":%u}}",
                          tokens, tokens);
  fake_server_reply_later (msg, 200, JSON_TYPE, g_string_free (s, FALSE), script->delay_ms);
}

static void
answer_models (SoupServerMessage *msg, const FakeScript *script)
{
  fake_server_reply_later (msg, 200, JSON_TYPE,
                           g_strdup ("{\"object\":\"list\",\"data\":["
                                     "{\"id\":\"fake-model\",\"object\":\"model\",\"created\":" CREATED
                                     ",\"owned_by\":\"fake-upstream\"},"
                                     "{\"id\":\"fake-embedding\",\"object\":\"model\",\"created\":" CREATED
                                     ",\"owned_by\":\"fake-upstream\"}]}"),
                           script->delay_ms);
}

/* ---------------------------------------------------------------- server */

static void
answer_stats (FakeUpstream *up, SoupServerMessage *msg)
{
  g_autofree char *body =
    g_strdup_printf ("{\"requests\":%" G_GUINT64_FORMAT ",\"client_aborts\":%" G_GUINT64_FORMAT
                     ",\"connections\":%d}",
                     up->requests, up->client_aborts, fake_upstream_connections (up));

  fake_server_reply (msg, 200, JSON_TYPE, body);
}

/* With times=N, the failure words of a script hold for the first N
 * requests that carried the same script text. */
static void
apply_times (FakeUpstream *up, FakeScript *script, const char *prefix, const char *header)
{
  g_autofree char *key = NULL;
  guint seen;

  if (script->times == 0)
    return;
  key = g_strconcat (prefix ? prefix : "", "\n", header ? header : "", NULL);
  seen = GPOINTER_TO_UINT (g_hash_table_lookup (up->seen, key)) + 1;
  g_hash_table_insert (up->seen, g_steal_pointer (&key), GUINT_TO_POINTER (seen));
  if (seen <= script->times)
    return;
  script->status = 0;
  script->retry_after = 0;
  script->reset = FALSE;
  script->cut = -1;
  script->no_end = FALSE;
  script->malformed = -1;
  script->gap_at = -1;
}

static void
upstream_cb (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  FakeUpstream *up = data;
  const char *method = soup_server_message_get_method (msg);
  const char *header =
    soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "x-fake-mode");
  const char *v1 = strstr (path, "/v1/");
  g_autofree char *prefix = NULL;
  g_autoptr (GError) error = NULL;
  FakeScript script = up->script;
  const char *endpoint;
  Dialect dialect;

  if (strcmp (path, "/fake/stats") == 0)
    {
      answer_stats (up, msg);
      return;
    }
  up->requests++;
  endpoint = v1 ? v1 + 3 : path;
  dialect = strcmp (endpoint, "/messages") == 0 ? DIALECT_ANTHROPIC : DIALECT_OPENAI;
  if (v1 && v1 > path)
    prefix = g_uri_unescape_segment (path + 1, v1, NULL);
  if (!fake_script_parse (&script, prefix, &error) || !fake_script_parse (&script, header, &error))
    {
      answer_error (msg, dialect, 400, error->message, 0, 0);
      return;
    }
  apply_times (up, &script, prefix, header);
  if (script.reset)
    {
      fake_server_reset (msg);
      return;
    }
  if (!v1)
    answer_error (msg, dialect, 404, "no such route", 0, 0);
  else if (script.status && script.status != 200)
    answer_scripted_error (msg, dialect, &script);
  else if (strcmp (endpoint, "/chat/completions") == 0 && strcmp (method, "POST") == 0)
    answer_openai (up, msg, &script);
  else if (strcmp (endpoint, "/messages") == 0 && strcmp (method, "POST") == 0)
    answer_anthropic (up, msg, &script);
  else if (strcmp (endpoint, "/embeddings") == 0 && strcmp (method, "POST") == 0)
    answer_embeddings (up, msg, &script);
  else if (strcmp (endpoint, "/models") == 0 && strcmp (method, "GET") == 0)
    answer_models (msg, &script);
  else
    answer_error (msg, dialect, 404, "no such route", 0, 0);
}

FakeUpstream *
fake_upstream_new (const FakeScript *script, guint16 port, GError **error)
{
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, port);
  g_autoptr (FakeUpstream) up = g_new0 (FakeUpstream, 1);
  g_autoptr (GSocketAddress) local = NULL;
  g_autoptr (GSocket) socket = NULL;

  up->script = *script;
  up->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  up->parser = json_parser_new_immutable ();
  up->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (up->server, NULL, upstream_cb, up, NULL);
  /* Our own listening socket: libsoup's has a backlog of 10, and a
   * benchmark opening hundreds of connections at once would see SYN
   * retries (a second each) instead of the upstream. */
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL || !g_socket_bind (socket, addr, TRUE, error))
    return NULL;
  g_socket_set_listen_backlog (socket, 4096);
  if (!g_socket_listen (socket, error) || !soup_server_listen_socket (up->server, socket, 0, error))
    return NULL;
  local = g_socket_get_local_address (socket, error);
  if (local == NULL)
    return NULL;
  up->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  up->url = g_strdup_printf ("http://127.0.0.1:%u", up->port);
  return g_steal_pointer (&up);
}

void
fake_upstream_free (FakeUpstream *up)
{
  if (up->server)
    {
      soup_server_disconnect (up->server);
      g_object_unref (up->server);
    }
  g_clear_object (&up->parser);
  g_hash_table_unref (up->seen);
  g_free (up->url);
  g_free (up);
}

guint16
fake_upstream_port (FakeUpstream *up)
{
  return up->port;
}

const char *
fake_upstream_url (FakeUpstream *up)
{
  return up->url;
}

guint64
fake_upstream_requests (FakeUpstream *up)
{
  return up->requests;
}

guint64
fake_upstream_client_aborts (FakeUpstream *up)
{
  return up->client_aborts;
}

/* The upstream's own sockets on its port in state ESTABLISHED: its
 * accepted connections, whatever else the machine runs (/proc/net/tcp lists
 * every socket of the network namespace, and takes tens of milliseconds to
 * read on a busy machine). */
gint
fake_upstream_connections (FakeUpstream *up)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;
  gint n = 0;

  if (dir == NULL)
    return -1;
  while ((name = g_dir_read_name (dir)))
    {
      int fd = atoi (name);
      struct sockaddr_storage addr;
      socklen_t len = sizeof addr;
      struct tcp_info info;
      socklen_t info_len = sizeof info;
      guint16 port;

      if (getsockname (fd, (struct sockaddr *) &addr, &len) < 0)
        continue; /* not a socket */
      if (addr.ss_family == AF_INET)
        port = ntohs (((struct sockaddr_in *) &addr)->sin_port);
      else if (addr.ss_family == AF_INET6)
        port = ntohs (((struct sockaddr_in6 *) &addr)->sin6_port);
      else
        continue;
      if (port == up->port && getsockopt (fd, IPPROTO_TCP, TCP_INFO, &info, &info_len) == 0 &&
          info.tcpi_state == TCP_ESTABLISHED)
        n++;
    }
  return n;
}
