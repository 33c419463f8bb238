/* ens-redis-codec.c — the bridge's wire, written and read (see
 * ens-redis-codec.h); no connection, no state. */
#include "ens-redis-codec.h"
#include "ens-json-util.h"
#include "ens-json-write.h"

#include <string.h>

/* ---- events between nodes ---- */

char *
ens_redis_envelope_prefix (const char *node_id)
{
  GString *own = g_string_new ("{\"node\":");

  ens_json_write_string (own, node_id);
  return g_string_free (own, FALSE);
}

/* The envelope is written by hand, "node" first: a node skips its own
 * echoes by that prefix without parsing them.  "data" comes last: a node
 * that reads it takes the data as the text it is (decode_envelope_text). */
static void
append_event (GString *payload, const char *envelope_prefix, EnsMessage *event, const char *data_json)
{
  g_string_append (payload, envelope_prefix);
  g_string_append (payload, ",\"topic\":");
  ens_json_write_string (payload, event->topic);
  if (event->from)
    {
      g_string_append (payload, ",\"from\":");
      ens_json_write_string (payload, event->from);
    }
  if (event->to)
    {
      g_string_append (payload, ",\"to\":");
      ens_json_write_string (payload, event->to);
    }
  g_string_append (payload, ",\"seq\":");
  ens_json_write_uint (payload, event->seq);
  g_string_append (payload, ",\"data\":");
  g_string_append (payload, data_json);
  g_string_append_c (payload, '}');
}

char *
ens_redis_encode_event (const char *envelope_prefix, EnsMessage *event, const char *data_json)
{
  GString *payload = g_string_sized_new (strlen (envelope_prefix) + strlen (data_json) + 128);

  append_event (payload, envelope_prefix, event, data_json);
  return g_string_free (payload, FALSE);
}

/* "$<len>\r\n" at @out; returns its length. */
static gsize
bulk_header (char *out, gsize len)
{
  char digits[20];
  gsize n = 0, k = 0;

  do
    digits[n++] = (char) ('0' + len % 10);
  while ((len /= 10) != 0);
  out[k++] = '$';
  while (n > 0)
    out[k++] = digits[--n];
  out[k++] = '\r';
  out[k++] = '\n';
  return k;
}

char *
ens_redis_encode_publish (const char *prefix, const char *envelope_prefix, EnsMessage *event, const char *data_json,
                          gsize *len)
{
  static const char head[] = "*3\r\n$7\r\nPUBLISH\r\n";
  gsize prefix_len = strlen (prefix), topic_len = strlen (event->topic), to_len = event->to ? strlen (event->to) : 0;
  gsize channel_len = prefix_len + topic_len + (event->to ? 1 + to_len : 0);
  GString *payload = g_string_sized_new (strlen (envelope_prefix) + strlen (data_json) + 128);
  char *cmd, *p;

  append_event (payload, envelope_prefix, event, data_json);
  p = cmd = g_malloc (sizeof head - 1 + 2 * 24 + channel_len + payload->len + 4);
  p = mempcpy (p, head, sizeof head - 1);
  p += bulk_header (p, channel_len);
  p = mempcpy (p, prefix, prefix_len);
  p = mempcpy (p, event->topic, topic_len);
  if (event->to)
    {
      *p++ = ':';
      p = mempcpy (p, event->to, to_len);
    }
  *p++ = '\r';
  *p++ = '\n';
  p += bulk_header (p, payload->len);
  p = mempcpy (p, payload->str, payload->len);
  *p++ = '\r';
  *p++ = '\n';
  g_string_free (payload, TRUE);
  *len = (gsize) (p - cmd);
  return cmd;
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
/* A string of the head, as our encoder writes them: no escapes, no control
 * characters, UTF-8.  Copied NUL-terminated to *@cursor (within @end).
 * NULL when it is anything else. */
static const char *
head_string (const char **p, const char *stop, char **cursor, const char *end)
{
  const char *s = *p + 1, *q = s;
  gsize n;
  char *out;

  while (q < stop && *q != '"')
    {
      if (*q == '\\' || (guchar) *q < 0x20)
        return NULL;
      q++;
    }
  n = (gsize) (q - s);
  if (q >= stop || (gsize) (end - *cursor) < n + 1 || !g_utf8_validate_len (s, n, NULL))
    return NULL;
  out = memcpy (*cursor, s, n);
  out[n] = '\0';
  *cursor += n + 1;
  *p = q + 1;
  return out;
}

/* The members before "data" in the form our encoder writes them (strings
 * without escapes, an unsigned seq), read without building a tree into
 * in->head.  FALSE for any other form: the caller parses it. */
static gboolean
scan_head (const char *head, const char *stop, const char **node, const char **topic, EnsRedisIn *in)
{
  const char *p = head + 1; /* after '{' */
  char *cursor = in->head, *end = in->head + sizeof in->head;

  *node = NULL;
  while (p < stop)
    {
      const char *name, *value = NULL;

      if (*p != '"' || (name = head_string (&p, stop, &cursor, end)) == NULL || p >= stop || *p++ != ':' || p >= stop)
        return FALSE;
      if (*p == '"')
        {
          if ((value = head_string (&p, stop, &cursor, end)) == NULL)
            return FALSE;
        }
      else if (g_ascii_isdigit (*p))
        while (p < stop && g_ascii_isdigit (*p))
          p++;
      else
        return FALSE;
      if (strcmp (name, "node") == 0)
        *node = value;
      else if (strcmp (name, "topic") == 0)
        *topic = value;
      else if (strcmp (name, "from") == 0)
        in->event.from = value;
      else if (strcmp (name, "to") == 0)
        in->event.to = value;
      if (p < stop && *p++ != ',')
        return FALSE;
    }
  return *node != NULL && *topic != NULL && in->event.from != NULL;
}

/* A node's envelope with "data" last ({"node",...,"seq":N,"data":DATA}):
 * the members before "data" are read (a handful of short strings), the
 * data is only checked and goes on as the text it is (data_text), parsed
 * only if someone on this node reads it.  The first ',"data":' of the text
 * is the member's: inside a string a quote is always escaped.  FALSE when
 * the payload is not of that shape (an older node's envelope has "data"
 * before the other members): it is then parsed whole. */
static gboolean
decode_envelope_text (const EnsHost *host, const char *payload, gsize len, const char **topic, EnsRedisIn *in,
                      EnsRedisInVerdict *verdict)
{
  const char *at, *data, *node, *channel_topic = *topic;
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
  if (!scan_head (payload, at, &node, topic, in))
    {
      /* another form of the same members: parsed */
      *topic = channel_topic;
      in->event.from = in->event.to = NULL;
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
      node = ens_member_string_or (obj, "node", "");
      *topic = ens_member_string_or (obj, "topic", *topic);
      in->event.from = ens_member_string_or (obj, "from", "redis");
      in->event.to = ens_member_string (obj, "to");
    }
  if (g_str_equal (node, host->node_id ()))
    {
      *verdict = ENS_REDIS_IN_OWN;
      return TRUE;
    }
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
