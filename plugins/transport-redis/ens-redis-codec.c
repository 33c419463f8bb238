/* ens-redis-codec.c — the bridge's wire, written and read (see
 * ens-redis-codec.h); no connection, no state. */
#include "ens-redis-codec.h"
#include "ens-json-util.h"

#include <string.h>

static void
append_json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (; *s; s++)
    {
      unsigned char ch = (unsigned char) *s;
      if (ch == '"' || ch == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, (char) ch);
        }
      else if (ch < 0x20)
        g_string_append_printf (out, "\\u%04x", ch);
      else
        g_string_append_c (out, (char) ch);
    }
  g_string_append_c (out, '"');
}

/* ---- events between nodes ---- */

char *
ens_redis_envelope_prefix (const char *node_id)
{
  GString *own = g_string_new ("{\"node\":");

  append_json_string (own, node_id);
  return g_string_free (own, FALSE);
}

/* The envelope is written by hand, "node" first: a node skips its own
 * echoes by that prefix without parsing them.  "data" comes last: a node
 * that reads it takes the data as the text it is (decode_envelope_text). */
char *
ens_redis_encode_event (const char *envelope_prefix, EnsMessage *event, const char *data_json)
{
  GString *payload = g_string_sized_new (strlen (envelope_prefix) + strlen (data_json) + 128);

  g_string_append (payload, envelope_prefix);
  g_string_append (payload, ",\"topic\":");
  append_json_string (payload, event->topic);
  if (event->from)
    {
      g_string_append (payload, ",\"from\":");
      append_json_string (payload, event->from);
    }
  if (event->to)
    {
      g_string_append (payload, ",\"to\":");
      append_json_string (payload, event->to);
    }
  g_string_append_printf (payload, ",\"seq\":%" G_GUINT64_FORMAT ",\"data\":", event->seq);
  g_string_append (payload, data_json);
  g_string_append_c (payload, '}');
  return g_string_free (payload, FALSE);
}

/* A channel name is any bytes; a topic on the bus is UTF-8 text, as every
 * other way in (JSON) guarantees. */
static gboolean
is_concrete_topic (const char *t)
{
  return t[0] != '\0' && strpbrk (t, "*?[") == NULL && g_utf8_validate (t, -1, NULL);
}

#define DATA_MEMBER ",\"data\":"

/* A node's envelope with "data" last ({"node",...,"seq":N,"data":DATA}):
 * the members before "data" are parsed (a handful of short strings), the
 * data is only checked and goes on as the text it is (data_text), parsed
 * only if someone on this node reads it.  The first ',"data":' of the text
 * is the member's: inside a string a quote is always escaped.  FALSE when
 * the payload is not of that shape (an older node's envelope has "data"
 * before the other members): it is then parsed whole. */
static gboolean
decode_envelope_text (const EnsHost *host, const char *payload, gsize len, const char **topic, EnsRedisIn *in,
                      EnsRedisInVerdict *verdict)
{
  const char *at, *data;
  gsize data_len;
  g_autoptr (GString) head = NULL;
  JsonNode *root;
  JsonObject *obj;

  if (len < sizeof "{\"node\":" || payload[len - 1] != '}' || memcmp (payload, "{\"node\":", 8) != 0)
    return FALSE;
  at = memmem (payload, len, DATA_MEMBER, sizeof DATA_MEMBER - 1);
  if (at == NULL)
    return FALSE;
  data = at + sizeof DATA_MEMBER - 1;
  data_len = (gsize) (payload + len - 1 - data);
  if (!ENS_STRUCT_HAS (host, EnsHost, json_check) || !host->json_check (data, data_len, NULL))
    return FALSE;
  head = g_string_new_len (payload, at - payload);
  g_string_append_c (head, '}');
  root = host->json_parse (head->str, head->len, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_clear_pointer (&root, json_node_unref);
      return FALSE;
    }
  in->root = root;
  obj = json_node_get_object (root);
  if (g_str_equal (ens_member_string_or (obj, "node", ""), host->node_id ()))
    {
      *verdict = ENS_REDIS_IN_OWN;
      return TRUE;
    }
  *topic = ens_member_string_or (obj, "topic", *topic);
  in->event.from = ens_member_string_or (obj, "from", "redis");
  in->event.to = ens_member_string (obj, "to");
  in->event.data_text = data;
  in->event.data_text_len = (gssize) data_len;
  *verdict = ENS_REDIS_IN_DELIVER;
  return TRUE;
}

EnsRedisInVerdict
ens_redis_decode_event (const EnsHost *host, const char *prefix, const char *envelope_prefix, const char *channel,
                        const char *payload, gsize len, EnsRedisIn *in)
{
  gsize own_len = strlen (envelope_prefix);
  const char *topic;
  JsonObject *obj;

  in->event = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  in->root = in->text = NULL;
  if (!g_str_has_prefix (channel, prefix))
    return ENS_REDIS_IN_FOREIGN;
  if (len > own_len && memcmp (payload, envelope_prefix, own_len) == 0 && payload[own_len] == ',')
    return ENS_REDIS_IN_OWN;
  topic = channel + strlen (prefix);
  {
    EnsRedisInVerdict verdict;
    if (decode_envelope_text (host, payload, len, &topic, in, &verdict))
      {
        if (verdict != ENS_REDIS_IN_DELIVER)
          return verdict;
        if (!is_concrete_topic (topic))
          return ENS_REDIS_IN_REJECTED;
        in->event.topic = topic;
        return ENS_REDIS_IN_DELIVER;
      }
  }
  in->root = host->json_parse (payload, len, NULL); /* refuses invalid UTF-8 */
  in->event.from = "redis";
  if (in->root == NULL)
    {
      g_autofree char *text = NULL;
      if (!g_utf8_validate (payload, len, NULL) || memchr (payload, '\0', len))
        return ENS_REDIS_IN_REJECTED;
      text = g_strndup (payload, len);
      in->text = json_node_init_string (json_node_alloc (), text);
      in->event.data = in->text;
    }
  else if (JSON_NODE_HOLDS_OBJECT (in->root) && (obj = json_node_get_object (in->root))
           && json_object_has_member (obj, "node"))
    {
      const char *node = ens_member_string_or (obj, "node", "");
      if (g_str_equal (node, host->node_id ()))
        return ENS_REDIS_IN_OWN;
      /* A node's envelope names the topic (the channel of a targeted
       * event also carries its target). */
      topic = ens_member_string_or (obj, "topic", topic);
      in->event.data = json_object_get_member (obj, "data");
      in->event.from = ens_member_string_or (obj, "from", "redis");
      in->event.to = ens_member_string (obj, "to");
    }
  else
    in->event.data = in->root;
  if (!is_concrete_topic (topic))
    return ENS_REDIS_IN_REJECTED;
  in->event.topic = topic;
  return ENS_REDIS_IN_DELIVER;
}

void
ens_redis_in_clear (EnsRedisIn *in)
{
  g_clear_pointer (&in->root, json_node_unref);
  g_clear_pointer (&in->text, json_node_unref);
}

/* ---- agents across nodes ---- */

void
ens_redis_decode_request (const EnsHost *host, const char *payload, gsize len, EnsRedisRequest *req)
{
  JsonObject *obj;

  memset (req, 0, sizeof *req);
  req->root = host->json_parse (payload, len, NULL);
  obj = req->root && JSON_NODE_HOLDS_OBJECT (req->root) ? json_node_get_object (req->root) : NULL;
  if (obj == NULL)
    return;
  req->id = ens_member_string (obj, "id");
  req->action = ens_member_string (obj, "action");
  req->reply_to = ens_member_string (obj, "reply_to");
  if (req->reply_to && req->reply_to[0] == '\0')
    req->reply_to = NULL;
  req->timeout_ms = (guint32) CLAMP (ens_member_int (obj, "timeout_ms", 0), 0, 24 * 3600 * 1000);
  req->data = json_object_get_member (obj, "data");
}

void
ens_redis_request_clear (EnsRedisRequest *req)
{
  g_clear_pointer (&req->root, json_node_unref);
}

void
ens_redis_decode_response (const EnsHost *host, const char *payload, gsize len, EnsRedisResponse *resp)
{
  JsonObject *obj;
  const char *status;
  JsonNode *err;

  memset (resp, 0, sizeof *resp);
  resp->root = host->json_parse (payload, len, NULL);
  obj = resp->root && JSON_NODE_HOLDS_OBJECT (resp->root) ? json_node_get_object (resp->root) : NULL;
  resp->id = ens_member_string (obj, "id");
  if (resp->id == NULL)
    return;
  status = ens_member_string_or (obj, "status", "success");
  err = json_object_get_member (obj, "error");
  if (g_strcmp0 (status, "error") == 0 || (err && JSON_NODE_HOLDS_OBJECT (err)))
    {
      JsonObject *eo = err && JSON_NODE_HOLDS_OBJECT (err) ? json_node_get_object (err) : NULL;
      resp->failed = TRUE;
      resp->code = ens_member_string (eo, "code");
      resp->message = ens_member_string (eo, "message");
      resp->details = eo ? json_object_get_member (eo, "details") : NULL;
      if (resp->message == NULL)
        resp->message = ens_member_string (obj, "error");
      if (resp->code == NULL)
        resp->code = "AGENT_ERROR";
      if (resp->message == NULL)
        resp->message = "the agent failed";
      return;
    }
  resp->data = json_object_get_member (obj, "data");
  if (resp->data == NULL)
    resp->data = json_object_get_member (obj, "result");
}

void
ens_redis_response_clear (EnsRedisResponse *resp)
{
  g_clear_pointer (&resp->root, json_node_unref);
}

JsonNode *
ens_redis_error_response (const char *id, const char *code, const char *message, JsonNode *details)
{
  JsonObject *obj, *eo;
  JsonNode *node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "id", id);
  json_object_set_string_member (obj, "status", "error");
  eo = json_object_new ();
  json_object_set_string_member (eo, "code", code);
  json_object_set_string_member (eo, "message", message);
  if (details)
    json_object_set_member (eo, "details", json_node_copy (details));
  json_object_set_object_member (obj, "error", eo);
  return node;
}
