/* ens-http-openai-result.c — a COMPLETION_RESULT read for a non-streamed
 * chat.completion (ens-http-openai-result.h). */
#include "ens-http-openai-result.h"
#include "ens-json-util.h"

#include <errno.h>
#include <string.h>

gint64
ens_http_chat_token_count (gint64 count)
{
  return CLAMP (count, 0, G_MAXINT64 / 2);
}

const char *
ens_http_chat_finish_reason (const char *r, gboolean has_tools)
{
  if (r == NULL)
    return has_tools ? "tool_calls" : "stop";
  if (!strcmp (r, "length") || !strcmp (r, "max_tokens"))
    return "length";
  if (!strcmp (r, "tool_calls") || !strcmp (r, "tool_use") || !strcmp (r, "function_call"))
    return "tool_calls";
  if (!strcmp (r, "content_filter"))
    return "content_filter";
  return has_tools ? "tool_calls" : "stop";
}

void
ens_http_chat_result_from_tree (JsonObject *result, EnsHttpChatResult *out)
{
  JsonObject *u = ens_member_object (result, "usage");

  out->response = g_strdup (ens_member_string_or (result, "response", ""));
  out->provider = g_strdup (ens_member_string (result, "provider"));
  out->model = g_strdup (ens_member_string (result, "model"));
  out->finish_reason = g_strdup (ens_member_string (result, "finish_reason"));
  out->input_tokens = ens_http_chat_token_count (ens_member_int (u, "input_tokens", 0));
  out->output_tokens = ens_http_chat_token_count (ens_member_int (u, "output_tokens", 0));
}

void
ens_http_chat_result_clear (EnsHttpChatResult *r)
{
  g_clear_pointer (&r->response, g_free);
  g_clear_pointer (&r->provider, g_free);
  g_clear_pointer (&r->model, g_free);
  g_clear_pointer (&r->finish_reason, g_free);
}

/* The result's tool calls ({id, type, name, arguments (any JSON)}) in
 * OpenAI's shape {id, type:"function", function:{name, arguments (JSON
 * text)}}; @with_index for stream deltas.  NULL when there are none. */
JsonArray *
ens_http_chat_tool_calls (const EnsHost *host, JsonObject *result, gboolean with_index)
{
  JsonNode *node = json_object_get_member (result, "tool_calls");
  JsonArray *in, *out;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node) || json_array_get_length (json_node_get_array (node)) == 0)
    return NULL;
  in = json_node_get_array (node);
  out = json_array_new ();
  for (guint i = 0; i < json_array_get_length (in); i++)
    {
      JsonNode *el = json_array_get_element (in, i);
      JsonObject *tc = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      JsonObject *fn_in, *o, *fn;
      JsonNode *args;
      g_autofree char *id = NULL;

      if (tc == NULL)
        continue;
      fn_in = json_object_has_member (tc, "function") && JSON_NODE_HOLDS_OBJECT (json_object_get_member (tc, "function"))
                ? ens_member_object (tc, "function") : tc;
      args = json_object_get_member (fn_in, "arguments");
      if (args == NULL)
        args = json_object_get_member (fn_in, "input");
      o = json_object_new ();
      fn = json_object_new ();
      if (with_index)
        json_object_set_int_member (o, "index", i);
      id = g_strdup (ens_member_string_or (tc, "id", ""));
      if (id[0] == '\0')
        {
          g_free (id);
          id = g_strdup_printf ("call_%u", i);
        }
      json_object_set_string_member (o, "id", id);
      json_object_set_string_member (o, "type", "function");
      json_object_set_string_member (fn, "name", ens_member_string_or (fn_in, "name", ""));
      if (args && JSON_NODE_HOLDS_VALUE (args) && json_node_get_value_type (args) == G_TYPE_STRING)
        json_object_set_string_member (fn, "arguments", json_node_get_string (args));
      else if (args && !JSON_NODE_HOLDS_NULL (args))
        {
          g_autofree char *text = host->json_to_string (args);
          json_object_set_string_member (fn, "arguments", text);
        }
      else
        json_object_set_string_member (fn, "arguments", "{}");
      json_object_set_object_member (o, "function", fn);
      json_array_add_object_element (out, o);
    }
  return out;
}

/* ------------------------------------------------------------ from text */

typedef struct {
  const EnsHost *host;
  EnsHttpChatResult r;
  char *request_id;
  const char *result;     /* the result object's text, within the data's */
  gsize result_len;
  gboolean unusual;       /* something the tree must read */
} Reading;

/* An integer as ens_member_int() takes it, written plainly: digits with an
 * optional minus.  FALSE for anything else (the tree decides). */
static gboolean
plain_integer (const char *v, gsize len, gint64 *out)
{
  char buf[24];
  char *end;

  if (len == 0 || len >= sizeof buf)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isdigit (v[i]) && !(i == 0 && v[i] == '-'))
      return FALSE;
  memcpy (buf, v, len);
  buf[len] = '\0';
  *out = g_ascii_strtoll (buf, &end, 10);
  return *end == '\0' && errno != ERANGE;
}

static void
read_usage (const char *name, const char *value, gsize value_len, const char *string, gpointer data)
{
  Reading *rd = data;
  gint64 *slot = !strcmp (name, "input_tokens") ? &rd->r.input_tokens
                 : !strcmp (name, "output_tokens") ? &rd->r.output_tokens : NULL;
  gint64 v;

  (void) string;
  if (slot == NULL)
    return;
  errno = 0;
  if (plain_integer (value, value_len, &v))
    *slot = ens_http_chat_token_count (v);
  else
    rd->unusual = TRUE; /* a double, a string, null: ens_member_int() rules */
}

/* A string member (a copy, the last one wins), NULL when not a string. */
static void
take_string (char **slot, const char *string)
{
  g_free (*slot);
  *slot = g_strdup (string);
}

static void
read_result (const char *name, const char *value, gsize value_len, const char *string, gpointer data)
{
  Reading *rd = data;

  if (!strcmp (name, "response"))
    take_string (&rd->r.response, string);
  else if (!strcmp (name, "provider"))
    take_string (&rd->r.provider, string);
  else if (!strcmp (name, "model"))
    take_string (&rd->r.model, string);
  else if (!strcmp (name, "finish_reason"))
    take_string (&rd->r.finish_reason, string);
  else if (!strcmp (name, "usage"))
    {
      rd->r.input_tokens = rd->r.output_tokens = 0;
      if (value[0] == '{')
        rd->host->json_scan_checked_members (value, value_len, read_usage, rd);
      else if (!(value_len == 4 && memcmp (value, "null", 4) == 0))
        rd->unusual = TRUE;
    }
  else if (!strcmp (name, "tool_calls"))
    rd->unusual = TRUE; /* made into OpenAI's shape from the tree */
}

static void
read_data (const char *name, const char *value, gsize value_len, const char *string, gpointer data)
{
  Reading *rd = data;

  if (!strcmp (name, "request_id"))
    take_string (&rd->request_id, string);
  else if (!strcmp (name, "result"))
    {
      rd->result = value[0] == '{' ? value : NULL;
      rd->result_len = value_len;
    }
}

gboolean
ens_http_chat_result_from_text (const EnsHost *host, const char *text, gsize len, const char *request_id,
                                EnsHttpChatResult *out)
{
  Reading rd = { .host = host };
  gboolean ok;

  if (!host->json_scan_checked_members (text, len, read_data, &rd) || rd.result == NULL)
    ok = FALSE;
  else if (g_strcmp0 (rd.request_id, request_id) != 0)
    ok = FALSE;
  else
    ok = host->json_scan_checked_members (rd.result, rd.result_len, read_result, &rd) && !rd.unusual;
  g_free (rd.request_id);
  if (!ok)
    {
      ens_http_chat_result_clear (&rd.r);
      return FALSE;
    }
  if (rd.r.response == NULL)
    rd.r.response = g_strdup ("");
  *out = rd.r;
  return TRUE;
}

/* ------------------------------------------------------------ the ack */

typedef struct {
  char **request_id, **provider, **model;
} AckReading;

static void
read_ack (const char *name, const char *value, gsize value_len, const char *string, gpointer data)
{
  AckReading *ar = data;

  (void) value;
  (void) value_len;
  if (!strcmp (name, "request_id"))
    take_string (ar->request_id, string);
  else if (!strcmp (name, "provider"))
    take_string (ar->provider, string);
  else if (!strcmp (name, "model"))
    take_string (ar->model, string);
}

void
ens_http_chat_ack_from_text (const EnsHost *host, const char *text, gsize len, char **request_id, char **provider,
                             char **model)
{
  AckReading ar = { request_id, provider, model };

  host->json_scan_checked_members (text, len, read_ack, &ar);
}
