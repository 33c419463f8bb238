/* ens-dialect-centerfire.c — Centerfire's per-agent sockets
 * (CenterfireDigital/centerfire-intelligence, orchestrator-go).
 *
 * In:  on orchestrator-<agent>.sock, one JSON object {id, interface, agent,
 *      action, data} — with or without a newline, the client's side left
 *      open or not (its test client writes the object and waits; its agent
 *      proxy and `nc -U` end it with a newline): the first complete JSON
 *      value is the request.  One request per connection.
 * Out: one line, {"id","status":"success","success":true,"data",
 *      "timestamp","processing_time_ms"} or {"id","status":"error",
 *      "success":false,"error":{"code","message","details"},"timestamp",
 *      "processing_time_ms"}; "request_id" echoed when the request had one.
 *      "id" is the request's id, else its request_id, else "".
 *
 * Every action goes to the socket's agent, except ping, which the socket
 * answers itself (the agent proxy's health check).  The request's tag
 * carries its request_id to the reply. */
#include "ens-dialect.h"

#include <string.h>

/* ------------------------------------------------------------------ the table */

static const EnsField envelope_in[] = {
  ENS_MAP ("id|request_id", "id", STRING, OPTIONAL),
  ENS_MAP ("request_id", "request_id", STRING, OPTIONAL),
  ENS_MAP ("action", "action", STRING, REQUIRED),
  ENS_MAP ("agent", "agent", STRING, OPTIONAL),
  ENS_MAP ("data", "data", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

/* Members of the envelope: without "data", the others are the data. */
static const char *const envelope[] = { "id", "request_id", "interface", "agent", "action", NULL };

static const EnsField ping_out[] = {
  ENS_MAP ("agent", "agent", STRING, OPTIONAL),
  ENS_SET ("pong", "true"),
  ENS_FIELDS_END,
};

static const EnsDialectEntry actions[] = {
  { "ping", NULL, .out = ping_out, .flags = ENS_DIALECT_ANSWERED_HERE },
  { NULL },
};

/* ------------------------------------------------------------------ writing */

/* EnsEncodeFunc: replies and errors on a Centerfire socket (anything else,
 * which nobody sends there, goes native). */
static GBytes *
centerfire_encode (EnsMessage *msg)
{
  GString *out;
  double ms = (g_get_monotonic_time () - msg->received_us) / 1000.0;
  gboolean ok = msg->kind == ENS_MESSAGE_REPLY;

  if (msg->kind != ENS_MESSAGE_REPLY && msg->kind != ENS_MESSAGE_ERROR)
    return ens_dialect_host ()->encode_native (msg);
  out = g_string_sized_new (256);
  g_string_append (out, "{\"id\":");
  ens_dialect_append_string (out, msg->id);
  if (msg->tag && msg->tag[0])
    {
      g_string_append (out, ",\"request_id\":");
      ens_dialect_append_string (out, msg->tag);
    }
  g_string_append_printf (out, ",\"status\":\"%s\",\"success\":%s", ok ? "success" : "error", ok ? "true" : "false");
  if (ok)
    {
      g_string_append (out, ",\"data\":");
      ens_dialect_append_json (out, msg->data);
    }
  else
    {
      g_string_append (out, ",\"error\":{\"code\":");
      ens_dialect_append_string (out, ens_dialect_code (&ens_dialect_centerfire, msg->error_code));
      g_string_append (out, ",\"message\":");
      ens_dialect_append_string (out, msg->error_message);
      g_string_append (out, ",\"details\":");
      if (msg->error_details)
        ens_dialect_append_json (out, msg->error_details);
      else
        g_string_append (out, "{}");
      g_string_append (out, "}");
    }
  g_string_append (out, ",\"timestamp\":");
  ens_dialect_append_timestamp (out, msg->timestamp_us);
  g_string_append_printf (out, ",\"processing_time_ms\":%.3f}\n", ms < 0 ? 0.0 : ms);
  return g_string_free_to_bytes (out);
}

/* ------------------------------------------------------------------ reading */

/* An answer given here: @data (transfer none) for a REPLY, else an error. */
static void
answer (EnsDialectFrame *frame, const char *id, const char *request_id, JsonNode *data, const char *code,
        const char *message, JsonNode *details)
{
  const EnsHost *host = frame->host;
  EnsMessageInit init = ENS_MESSAGE_INIT (code ? ENS_MESSAGE_ERROR : ENS_MESSAGE_REPLY);
  EnsMessage *msg;

  init.id = id;
  init.tag = request_id;
  init.data = data;
  init.error_code = code;
  init.error_message = message;
  init.error_details = details;
  msg = host->message_new (&init);
  ens_dialect_frame_reply (frame, g_bytes_ref (host->message_encode (msg, centerfire_encode)));
  host->message_unref (msg);
}

static void
refuse (EnsDialectFrame *frame, const char *id, const char *request_id, const char *code, const char *message,
        const EnsInvalid *invalid)
{
  g_autoptr (JsonNode) details = invalid ? ens_invalid_details (invalid) : NULL;

  answer (frame, id, request_id, NULL, code, message, details);
}

/* One request: the first JSON value on the connection, parsed once. */
static void
centerfire_decode (EnsDialectFrame *frame, const char *bytes, gsize len)
{
  const EnsHost *host = frame->host;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = host->json_parse (bytes, len, &error);
  g_autoptr (JsonNode) request = NULL;
  g_autoptr (JsonNode) rest = NULL;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  JsonObject *obj, *req;
  const EnsDialectEntry *row;
  const char *id, *request_id, *agent;
  EnsInvalid invalid;

  if (root == NULL)
    {
      g_autofree char *text = g_strdup_printf ("malformed JSON: %s", error->message);
      refuse (frame, NULL, NULL, ENS_ERR_INVALID_JSON, text, NULL);
      return;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      refuse (frame, NULL, NULL, ENS_ERR_INVALID_REQUEST,
              "a request is a JSON object {id, interface, agent, action, data}", NULL);
      return;
    }
  obj = json_node_get_object (root);
  request = ens_node_new_object (&req);
  if (!ens_dialect_map (envelope_in, obj, req, &invalid))
    {
      g_autofree char *text = ens_invalid_message (&invalid);
      /* What of the id could be read is echoed. */
      refuse (frame, ens_member_string (req, "id"), ens_member_string (req, "request_id"), ENS_ERR_INVALID_REQUEST,
              text, &invalid);
      return;
    }
  id = ens_member_string (req, "id");
  request_id = ens_member_string (req, "request_id");
  agent = ens_member_string (req, "agent");
  if (agent && g_strcmp0 (agent, frame->agent) != 0)
    {
      g_autofree char *text = g_strdup_printf ("this socket serves agent %s, not %s", frame->agent, agent);
      refuse (frame, id, request_id, ENS_ERR_INVALID_REQUEST, text, NULL);
      return;
    }
  init.action = ens_member_string (req, "action");
  row = ens_dialect_find (&ens_dialect_centerfire, init.action, NULL, NULL);
  if (row && (row->flags & ENS_DIALECT_ANSWERED_HERE))
    {
      JsonObject *context;
      g_autoptr (JsonNode) context_node = ens_node_new_object (&context);
      g_autoptr (JsonNode) data = NULL;

      json_object_set_string_member (context, "agent", frame->agent);
      data = ens_dialect_reshape (row->out, row->flags, context_node);
      answer (frame, id, request_id, data, NULL, NULL, NULL);
      frame->entry = row;
      return;
    }
  init.data = ens_member (req, "data");
  if (init.data == NULL && !json_object_has_member (obj, "data"))
    {
      /* {"action", "client_id", "request_id"} (the agent proxy): the
       * members beside the envelope are the data. */
      JsonObject *data;
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;

      rest = ens_node_new_object (&data);
      json_object_iter_init_ordered (&iter, obj);
      while (json_object_iter_next_ordered (&iter, &name, &member))
        if (!g_strv_contains (envelope, name))
          json_object_set_member (data, name, json_node_copy (member));
      init.data = rest;
    }
  init.id = id;
  init.tag = request_id;
  init.agent = frame->agent;
  frame->submit = host->message_new (&init);
}

const EnsDialect ens_dialect_centerfire = {
  .name = "centerfire",
  .entries = actions,
  .flags = ENS_DIALECT_ONE_SHOT,
  .framing = ENS_DIALECT_FRAMING_VALUE,
  .decode = centerfire_decode,
  .encode = centerfire_encode,
};
