/* ens-dialect-ksi.c — the KSI multi-socket dialect (durapensa/ksi, the
 * ksi_client of its multi-socket days).
 *
 * In:  one line {"command", "version":"2.0", "parameters"} on any of
 *      admin.sock agents.sock messaging.sock state.sock completion.sock;
 *      one command per connection, except that AGENT_CONNECTION connect
 *      keeps it open for the agent's events.
 * Out: {"status":"success","command","metadata":{"timestamp"},"result"}, or
 *      {"status":"error","command","metadata","error":{"code","message",
 *      "timestamp","details"},"result":null}; a line that never became a
 *      command gets the dispatcher's {"status":"error","error":{"code",
 *      "message","timestamp"}}.  Events are flat: {"id","type","from",
 *      "timestamp", ...payload}, "to" once.
 *
 * The table below is the dialect; the functions after it only read lines
 * and write KSI's shapes. */
#include "ens-dialect.h"

#include <string.h>

/* ------------------------------------------------------------------ the table */

static const EnsField health_out[] = {
  ENS_SET ("status", "\"healthy\""),
  ENS_MAP_OR ("uptime_s", "uptime", ANY, "null"),
  ENS_MAP_OR ("version", "version", ANY, "null"),
  ENS_MAP_OR ("node_id", "node_id", ANY, "null"),
  ENS_SET ("managers.state.status", "\"active\""),
  ENS_MAP_OR ("sessions", "managers.state.sessions", ANY, "0"),
  ENS_SET ("managers.process.status", "\"active\""),
  ENS_MAP_OR ("processes", "managers.process.processes", ANY, "0"),
  ENS_SET ("managers.agent.status", "\"active\""),
  ENS_MAP_OR ("agents", "managers.agent.agents", ANY, "0"),
  ENS_SET ("managers.message_bus.status", "\"active\""),
  ENS_MAP_OR ("subscriptions", "managers.message_bus.subscribers", ANY, "0"),
  ENS_MAP_OR ("connections", "managers.message_bus.connections", ANY, "0"),
  ENS_MAP_OR ("counters.events_published", "managers.message_bus.events_published", ANY, "0"),
  ENS_FIELDS_END,
};

static const EnsField processes_out[] = {
  ENS_MAP_OR ("processes", "processes", ANY, "[]"),
  ENS_MAP_OR ("total", "total", ANY, "0"),
  ENS_FIELDS_END,
};

static const EnsField shutdown_out[] = {
  ENS_SET ("status", "\"shutting_down\""),
  ENS_SET ("message", "\"SHUTTING DOWN\""),
  ENS_SET ("details", "\"Daemon shutdown initiated\""),
  ENS_FIELDS_END,
};

static const EnsField bus_stats_out[] = {
  ENS_MAP_OR ("connected_agents", "connected_agents", ANY, "[]"),
  ENS_MAP_OR ("subscriptions", "subscriptions", ANY, "{}"),
  ENS_SET ("offline_queues", "{}"), /* nothing is queued for an agent that is away */
  ENS_MAP_OR ("events_published", "history_size", ANY, "0"),
  ENS_FIELDS_END,
};

static const EnsField register_in[] = {
  ENS_MAP ("agent_id", "name", STRING, REQUIRED),
  ENS_MAP ("role", "description", STRING, REQUIRED),
  ENS_MAP_OR ("capabilities", "actions", WORDS, "[]"),
  ENS_SET ("persistent", "true"),
  ENS_FIELDS_END,
};

static const EnsField register_out[] = {
  ENS_SET ("status", "\"registered\""),
  ENS_MAP_OR ("name", "agent_id", ANY, "null"),
  ENS_MAP_OR ("description", "role", ANY, "null"),
  ENS_MAP_OR ("actions", "capabilities", ANY, "[]"),
  ENS_FIELDS_END,
};

static const EnsField each_agent_out[] = {
  ENS_MAP_OR ("description", "role", ANY, "null"),
  ENS_CHOOSE ("connected", "status", "\"active\"", "\"registered\"", "\"registered\""),
  ENS_MAP_OR ("actions", "capabilities", ANY, "[]"),
  ENS_MAP ("kind", "kind", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField agents_out[] = {
  ENS_KEYED ("agents", "agents", "name", each_agent_out),
  ENS_FIELDS_END,
};

/* ksi_client's spawn_agent sends {agent_type, config}; KSI's own server
 * {task, ...}: both work. */
static const EnsField spawn_in[] = {
  ENS_CHECK ("config", OBJECT),
  ENS_MAP ("task|config.task|config.prompt|agent_type", "task", STRING, REQUIRED),
  ENS_MAP ("agent_id", "agent_id", STRING, OPTIONAL),
  ENS_MAP ("model|config.model", "model", STRING, OPTIONAL),
  ENS_MAP ("role|config.role", "role", STRING, OPTIONAL),
  ENS_MAP ("profile_name|config.profile_name", "profile_name", STRING, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField spawn_out[] = {
  ENS_MAP_OR ("agent_id", "agent.id", ANY, "null"),
  ENS_MAP_OR ("process_id", "agent.process_id", ANY, "null"),
  ENS_MAP_OR ("pid", "agent.pid", ANY, "null"),
  ENS_MAP_OR ("profile", "agent.composition", ANY, "\"default\""),
  ENS_MAP_OR ("role", "agent.role", ANY, "null"),
  ENS_SET ("agent.capabilities", "[]"),
  ENS_SET ("agent.status", "\"active\""),
  ENS_MAP_OR ("task", "agent.task", ANY, "null"),
  ENS_MAP_OR ("model", "agent.model", ANY, "null"),
  ENS_MAP_OR ("profile", "selection.composition_used", ANY, "\"default\""),
  ENS_PRESENT ("profile", "selection.fallback_used", NOT),
  ENS_SET ("selection.score", "1.0"),
  ENS_MAP_OR ("process_id", "process_id", ANY, "null"), /* where ksi_client reads it */
  ENS_FIELDS_END,
};

/* The last connection of a name wins, as in KSI (a client reconnecting
 * with its fixed id takes the name from its old connection). */
static const EnsField connect_in[] = {
  ENS_MAP ("agent_id", "name", STRING, REQUIRED),
  ENS_SET ("replace", "true"),
  ENS_FIELDS_END,
};

static const EnsField disconnect_in[] = {
  ENS_MAP ("agent_id", "name", STRING, REQUIRED),
  ENS_FIELDS_END,
};

static const EnsField connect_out[] = {
  ENS_SET ("status", "\"connected\""),
  ENS_MAP_OR ("name", "agent_id", ANY, "null"),
  ENS_SET ("action", "\"connect\""),
  ENS_FIELDS_END,
};

static const EnsField disconnect_out[] = {
  ENS_SET ("status", "\"disconnected\""),
  ENS_MAP_OR ("name", "agent_id", ANY, "null"),
  ENS_SET ("action", "\"disconnect\""),
  ENS_FIELDS_END,
};

static const EnsField subscribe_in[] = {
  ENS_MAP ("agent_id", "agent", STRING, REQUIRED),
  ENS_MAP ("event_types", "topics", STRINGS, REQUIRED),
  ENS_FIELDS_END,
};

static const EnsField subscribe_out[] = {
  ENS_MAP_OR ("subscribed", "subscription.subscribed_to", ANY, "[]"),
  ENS_MAP_OR ("topics", "subscription.all_subscriptions", ANY, "[]"),
  ENS_SET ("subscription.status", "\"active\""),
  ENS_MAP_OR ("total", "message_bus.total_subscriptions", ANY, "0"),
  ENS_FIELDS_END,
};

static const EnsField publish_in[] = {
  ENS_MAP ("from_agent", "from_agent", STRING, REQUIRED),
  ENS_MAP ("event_type", "topic", STRING, REQUIRED),
  ENS_MAP ("payload", "data", OBJECT, REQUIRED),
  ENS_MAP ("payload.to", "to", STRING, OPTIONAL), /* DIRECT_MESSAGE, TASK_ASSIGNMENT */
  ENS_FIELDS_END,
};

static const EnsField publish_out[] = {
  ENS_SET ("delivery.status", "\"published\""),
  ENS_MAP_OR ("delivered", "delivery.delivered", ANY, "0"),
  ENS_MAP_OR ("seq", "delivery.seq", ANY, "null"),
  ENS_CHOOSE ("target_found", "delivery.to_status", "\"delivered\"", "\"not_connected\"", NULL),
  ENS_FIELDS_END,
};

static const EnsField send_message_in[] = {
  ENS_MAP ("from_agent", "from_agent", STRING, REQUIRED),
  ENS_MAP ("to_agent", "to", STRING, OPTIONAL),
  ENS_MAP_OR ("message_type", "topic", STRING, "\"MESSAGE\""),
  ENS_MAP ("content", "data.content", ANY, REQUIRED),
  ENS_MAP ("metadata", "data", SPREAD, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField send_message_out[] = {
  ENS_CHOOSE ("target_found", "delivery", "\"direct\"", "\"direct\"", "\"broadcast\""),
  ENS_CHOOSE ("target_found", "status", "\"delivered\"", "\"not_connected\"", "\"broadcast\""),
  ENS_MAP ("from", "from", ANY, OPTIONAL),
  ENS_MAP ("to", "to", ANY, OPTIONAL),
  ENS_MAP ("topic", "type", ANY, OPTIONAL),
  ENS_MAP ("seq", "seq", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

/* One key space keyed by the key alone, as in KSI: the owner
 * (owner_agent_id, default "system") is the client's metadata, and
 * agent_id names no space (ksi_client sends it to both SET and GET). */
static const EnsField kv_set_in[] = {
  ENS_SET ("agent", "\"system\""),
  ENS_MAP ("key", "key", STRING, REQUIRED),
  ENS_MAP ("value", "value", ANY, REQUIRED),
  ENS_FIELDS_END,
};

static const EnsField kv_set_out[] = {
  ENS_MAP_OR ("key", "key", ANY, "null"),
  ENS_SET ("status", "\"set\""),
  ENS_FIELDS_END,
};

static const EnsField kv_get_in[] = {
  ENS_SET ("agent", "\"system\""),
  ENS_MAP ("key", "key", STRING, REQUIRED),
  ENS_FIELDS_END,
};

static const EnsField kv_get_out[] = {
  ENS_MAP_OR ("key", "key", ANY, "null"),
  ENS_MAP_OR ("value", "value", ANY, "null"),
  ENS_PRESENT ("value", "found", OPTIONAL), /* as in KSI: a stored null reads as not found */
  ENS_FIELDS_END,
};

/* agent_id (KSI: answer through that agent) and metadata are accepted and
 * not used: the daemon's router picks the provider. */
static const EnsField completion_in[] = {
  ENS_MAP ("prompt", "prompt", STRING, REQUIRED),
  ENS_MAP ("client_id", "client_id", STRING, REQUIRED), /* COMPLETION_RESULT goes to it */
  ENS_MAP ("model", "model", STRING, OPTIONAL),
  ENS_MAP ("session_id", "session_id", STRING, OPTIONAL),
  ENS_INT ("timeout", "timeout_ms", OPTIONAL, 1, 600, 1000),
  ENS_FIELDS_END,
};

static const EnsDialectEntry commands[] = {
  { "HEALTH_CHECK", "health", .out = health_out },
  { "GET_PROCESSES", "processes.list", .out = processes_out },
  { "SHUTDOWN", "shutdown", .out = shutdown_out },
  { "MESSAGE_BUS_STATS", "bus.stats", .out = bus_stats_out },
  { "REGISTER_AGENT", "agents.register", .in = register_in, .out = register_out },
  { "GET_AGENTS", "agents.list", .out = agents_out },
  { "SPAWN_AGENT", "processes.spawn", .in = spawn_in, .out = spawn_out },
  { "AGENT_CONNECTION", "agents.register", "action", "connect", connect_in, connect_out,
    .flags = ENS_DIALECT_KEEP_OPEN },
  { "AGENT_CONNECTION", "agents.unregister", "action", "disconnect", disconnect_in, disconnect_out },
  { "SUBSCRIBE", "subscribe", .in = subscribe_in, .out = subscribe_out },
  { "PUBLISH", "publish", .in = publish_in, .out = publish_out },
  { "SEND_MESSAGE", "publish", .in = send_message_in, .out = send_message_out },
  { "SET_AGENT_KV", "kv.set", .in = kv_set_in, .out = kv_set_out },
  { "GET_AGENT_KV", "kv.get", .in = kv_get_in, .out = kv_get_out },
  { "COMPLETION", "complete", .in = completion_in, .flags = ENS_DIALECT_HOLD_RESULTS },
  { NULL },
};

/* A failed completion as KSI's: {..., "result": {"error", "code",
 * "details", "partial"?}} (ksi_client raises when result has "error"). */
static const EnsField completion_result_event[] = {
  ENS_MAP ("error", "result.error", ANY, OPTIONAL),
  ENS_MAP ("code", "result.code", ANY, OPTIONAL),
  ENS_MAP ("reason", "result.details", ANY, OPTIONAL),
  ENS_MAP ("partial", "result.partial", ANY, OPTIONAL), /* {response, usage} so far, when cut mid-stream */
  ENS_FIELDS_END,
};

static const EnsDialectEntry events[] = {
  { "COMPLETION_RESULT", .out = completion_result_event, .flags = ENS_DIALECT_KEEP_REST },
  { NULL },
};

static const EnsDialectCode codes[] = {
  { ENS_ERR_AGENT_NOT_FOUND, "AGENT_NOT_CONNECTED" },
  { NULL },
};

/* ------------------------------------------------------------------ writing */

/* The dispatcher's error shape, for lines that never became a command. */
static GBytes *
dispatcher_error (const char *code, const char *message)
{
  GString *out = g_string_new ("{\"status\":\"error\",\"error\":{\"code\":");

  ens_dialect_append_string (out, code);
  g_string_append (out, ",\"message\":");
  ens_dialect_append_string (out, message);
  g_string_append (out, ",\"timestamp\":");
  ens_dialect_append_timestamp (out, g_get_real_time ());
  g_string_append (out, "}}\n");
  return g_string_free_to_bytes (out);
}

static void
append_event (GString *out, EnsMessage *msg)
{
  const EnsDialectEntry *row = ens_dialect_find_event (&ens_dialect_ksi, msg->topic);
  g_autoptr (JsonNode) shaped = row ? ens_dialect_reshape (row->out, row->flags, msg->data) : NULL;
  JsonNode *data = shaped ? shaped : msg->data;
  JsonObject *payload = data && JSON_NODE_HOLDS_OBJECT (data) ? json_node_get_object (data) : NULL;
  const char *to = ens_member_string (payload, "to");

  g_string_append_printf (out, "{\"id\":\"%" G_GUINT64_FORMAT "\",\"type\":", msg->seq);
  ens_dialect_append_string (out, msg->topic);
  g_string_append (out, ",\"from\":");
  ens_dialect_append_string (out, msg->from);
  g_string_append (out, ",\"timestamp\":");
  ens_dialect_append_timestamp (out, msg->timestamp_us);
  if (msg->to && to == NULL)
    {
      /* "to" once: the payload's own when it has one. */
      g_string_append (out, ",\"to\":");
      ens_dialect_append_string (out, msg->to);
    }
  if (payload)
    {
      /* Flat, as KSI sends it: the payload's members join the event. */
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;

      json_object_iter_init_ordered (&iter, payload);
      while (json_object_iter_next_ordered (&iter, &name, &member))
        {
          if (strcmp (name, "id") == 0 || strcmp (name, "type") == 0 || strcmp (name, "from") == 0 ||
              strcmp (name, "timestamp") == 0 || (strcmp (name, "to") == 0 && !JSON_NODE_HOLDS_VALUE (member)))
            continue;
          g_string_append_c (out, ',');
          ens_dialect_append_string (out, name);
          g_string_append_c (out, ':');
          ens_dialect_append_json (out, member);
        }
    }
  else if (data)
    {
      g_string_append (out, ",\"data\":");
      ens_dialect_append_json (out, data);
    }
  g_string_append (out, "}\n");
}

/* A reply or error; @from_core: its parameter errors name the core's
 * fields, said back in the client's words. */
static GBytes *
encode_answer (EnsMessage *msg, gboolean from_core)
{
  GString *out;
  const EnsDialectEntry *row;

  if (msg->tag == NULL || msg->tag[0] == '\0')
    return dispatcher_error (ens_dialect_code (&ens_dialect_ksi, msg->error_code),
                             msg->error_message ? msg->error_message : "");

  out = g_string_sized_new (256);
  g_string_append_printf (out, "{\"status\":\"%s\",\"command\":", msg->kind == ENS_MESSAGE_REPLY ? "success" : "error");
  ens_dialect_append_string (out, msg->tag);
  g_string_append (out, ",\"metadata\":{\"timestamp\":");
  ens_dialect_append_timestamp (out, g_get_real_time ());
  g_string_append (out, "}");
  if (msg->kind == ENS_MESSAGE_REPLY)
    {
      g_autoptr (JsonNode) result = NULL;

      row = ens_dialect_find_answered (&ens_dialect_ksi, msg);
      result = ens_dialect_reshape (row ? row->out : NULL, row ? row->flags : 0, msg->data);
      g_string_append (out, ",\"result\":");
      ens_dialect_append_json (out, result);
    }
  else
    {
      /* The core's parameter errors name the core's fields: say the
       * client's, as the table renames them. */
      EnsInvalid invalid;
      gboolean renamed = from_core && ens_dialect_core_invalid (ens_dialect_find_answered (&ens_dialect_ksi, msg),
                                                                msg->error_details, &invalid);
      g_autofree char *text = renamed ? g_strdup_printf ("%s: parameters.%s must be %s", msg->tag, invalid.field,
                                                         invalid.expected)
                                      : NULL;
      g_autoptr (JsonNode) details = renamed ? ens_invalid_details (&invalid) : NULL;

      g_string_append (out, ",\"error\":{\"code\":");
      ens_dialect_append_string (out, ens_dialect_code (&ens_dialect_ksi, msg->error_code));
      g_string_append (out, ",\"message\":");
      ens_dialect_append_string (out, renamed ? text : msg->error_message);
      g_string_append (out, ",\"timestamp\":");
      ens_dialect_append_timestamp (out, g_get_real_time ());
      g_string_append (out, ",\"details\":");
      if (details || msg->error_details)
        ens_dialect_append_json (out, details ? details : msg->error_details);
      else
        g_string_append (out, "{}");
      g_string_append (out, "},\"result\":null");
    }
  g_string_append (out, "}\n");
  return g_string_free_to_bytes (out);
}

/* EnsEncodeFunc: replies, errors and events on KSI connections. */
static GBytes *
ksi_encode (EnsMessage *msg)
{
  GString *out;

  if (msg->kind != ENS_MESSAGE_EVENT)
    return encode_answer (msg, TRUE);
  out = g_string_sized_new (256);
  append_event (out, msg);
  return g_string_free_to_bytes (out);
}

/* ------------------------------------------------------------------ reading */

/* A handler-level error for @command: KSI's full error shape, details
 * {field, expected, fields}. */
static void
command_error (EnsDialectFrame *frame, const char *command, const char *code, const EnsInvalid *invalid)
{
  const EnsHost *host = frame->host;
  g_autofree char *text = g_strdup_printf ("%s: parameters.%s must be %s", command, invalid->field, invalid->expected);
  g_autoptr (JsonNode) details = ens_invalid_details (invalid);
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_ERROR);
  EnsMessage *err;

  init.tag = command;
  init.error_code = code;
  init.error_message = text;
  init.error_details = details;
  err = host->message_new (&init);
  ens_dialect_frame_reply (frame, encode_answer (err, FALSE));
  host->message_unref (err);
}

/* One line, parsed once. */
static void
ksi_decode (EnsDialectFrame *frame, const char *line, gsize len)
{
  const EnsHost *host = frame->host;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = host->json_parse (line, len, &error);
  JsonObject *obj, *params = NULL;
  const char *command, *version;
  const EnsDialectEntry *row;
  EnsInvalid invalid;
  gboolean known = FALSE;

  if (root == NULL)
    {
      g_autofree char *text = g_strdup_printf ("All commands must be valid JSON: %s", error->message);
      ens_dialect_frame_reply (frame, dispatcher_error (ENS_ERR_INVALID_JSON, text));
      return;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      ens_dialect_frame_reply (frame, dispatcher_error ("INVALID_COMMAND", "Validation failed: a command is a JSON object"));
      return;
    }
  obj = json_node_get_object (root);
  if (json_object_has_member (obj, "reply_to"))
    {
      /* An agent connected over KSI answering a request pushed to it. */
      frame->submit = host->message_from_native (root);
      return;
    }
  command = ens_member_string (obj, "command");
  if (command == NULL || command[0] == '\0')
    {
      ens_dialect_frame_reply (frame,
                               dispatcher_error ("INVALID_COMMAND", "Validation failed: command: field required (a string)"));
      return;
    }
  version = ens_member_string (obj, "version");
  if (json_object_get_member (obj, "version") && g_strcmp0 (version, "2.0") != 0)
    {
      ens_dialect_frame_reply (frame, dispatcher_error ("INVALID_COMMAND", "Validation failed: version: must be \"2.0\""));
      return;
    }
  if (!ens_param_object (obj, "parameters", ENS_PARAM_OPTIONAL, &params, &invalid))
    {
      ens_dialect_frame_reply (frame,
                               dispatcher_error ("INVALID_COMMAND", "Validation failed: parameters: must be an object"));
      return;
    }
  row = ens_dialect_find (&ens_dialect_ksi, command, params, &known);
  if (row == NULL && known)
    {
      /* AGENT_CONNECTION with an action that is neither. */
      char expected[sizeof invalid.expected];
      ens_dialect_variants (&ens_dialect_ksi, command, expected, sizeof expected);
      ens_invalid_set (&invalid, "action", "%s", expected);
      command_error (frame, command, ens_member_string (params, "action") ? "INVALID_ACTION" : ENS_ERR_INVALID_PARAMETERS,
                     &invalid);
      return;
    }
  if (row == NULL)
    {
      g_autofree char *text = g_strdup_printf ("Command '%s' not recognized", command);
      ens_dialect_frame_reply (frame, dispatcher_error ("UNKNOWN_COMMAND", text));
      return;
    }
  frame->submit = ens_dialect_request (host, row, NULL, params, &invalid);
  if (frame->submit == NULL)
    {
      command_error (frame, command, ENS_ERR_INVALID_PARAMETERS, &invalid);
      return;
    }
  frame->entry = row;
  frame->flags = row->flags;
}

const EnsDialect ens_dialect_ksi = {
  .name = "ksi",
  .entries = commands,
  .events = events,
  .codes = codes,
  .flags = ENS_DIALECT_ONE_SHOT,
  .framing = ENS_DIALECT_FRAMING_LINES,
  .decode = ksi_decode,
  .encode = ksi_encode,
};

/* ================================================================== KSI's HTTP plan (/api/v1/...) */

/* KSI's planned HTTP face: each route a row (transport-http runs it: the
 * body through @in, the answer through @out, @answer the HTTP status).
 * KSI's agents are persistent agent records; a spawned task's outcome is
 * published on results:<session_id>. */

static JsonNode *
result_topic (JsonNode *v, JsonObject *from)
{
  const char *sid = v && JSON_NODE_HOLDS_VALUE (v) && json_node_get_value_type (v) == G_TYPE_STRING
                      ? json_node_get_string (v) : NULL;
  g_autofree char *topic = NULL;

  (void) from;
  if (sid == NULL)
    return NULL;
  topic = g_strconcat ("results:", sid, NULL);
  return json_node_init_string (json_node_alloc (), topic);
}

static JsonNode *
whole (JsonNode *v, JsonObject *from)
{
  (void) v;
  return from ? json_node_init_object (json_node_alloc (), from) : NULL;
}

static JsonNode *
count_of (JsonNode *v, JsonObject *from)
{
  (void) from;
  return json_node_init_int (json_node_alloc (), v && JSON_NODE_HOLDS_ARRAY (v) ? json_array_get_length (json_node_get_array (v)) : 0);
}

static const EnsField http_spawn_in[] = {
  ENS_MAP ("task", "task", STRING, REQUIRED),
  ENS_MAP ("model", "model", STRING, OPTIONAL),
  ENS_MAP ("provider", "provider", STRING, OPTIONAL),
  ENS_MAP ("session_type", "session_type", STRING, OPTIONAL),
  ENS_MAP ("agent_id", "orchestrator_id", STRING, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField http_spawn_out[] = {
  ENS_SET ("status", "\"accepted\""),
  ENS_MAP ("session_id", "session_id", ANY, OPTIONAL),
  ENS_MAP ("task_id", "task_id", ANY, OPTIONAL),
  ENS_MAP ("request_id", "request_id", ANY, OPTIONAL),
  ENS_MAP ("watch", "watch", ANY, OPTIONAL),
  ENS_FUNC ("session_id", "result_topic", OPTIONAL, result_topic),
  ENS_FIELDS_END,
};

static const EnsField http_register_in[] = {
  ENS_MAP ("agent_id", "name", STRING, REQUIRED),
  ENS_SET ("persistent", "true"),
  ENS_MAP ("role", "description", STRING, OPTIONAL),
  ENS_MAP ("capabilities", "actions", STRINGS, NONEMPTY),
  ENS_FIELDS_END,
};

static const EnsField http_register_out[] = {
  ENS_SET ("status", "\"registered\""),
  ENS_MAP ("name", "agent_id", ANY, OPTIONAL),
  ENS_MAP ("description", "role", ANY, OPTIONAL),
  ENS_MAP ("actions", "capabilities", ANY, OPTIONAL),
  ENS_MAP ("registered_at", "registered_at", ANY, OPTIONAL),
  ENS_FUNC (NULL, "agent", OPTIONAL, whole),
  ENS_FIELDS_END,
};

static const EnsField http_agents_out[] = {
  ENS_MAP_OR ("agents", "agents", ANY, "[]"),
  ENS_FUNC ("agents", "count", OPTIONAL, count_of),
  ENS_FIELDS_END,
};

static const EnsField http_status_out[] = {
  ENS_MAP ("status", "status", ANY, OPTIONAL),
  ENS_MAP ("uptime_s", "uptime", ANY, OPTIONAL),
  ENS_MAP ("agents", "agents", ANY, OPTIONAL),
  ENS_MAP ("sessions", "sessions", ANY, OPTIONAL),
  ENS_MAP ("active_sessions", "active_sessions", ANY, OPTIONAL),
  ENS_MAP ("connections", "connections", ANY, OPTIONAL),
  ENS_MAP ("version", "version", ANY, OPTIONAL),
  ENS_MAP ("node_id", "node_id", ANY, OPTIONAL),
  ENS_MAP ("started_at", "started_at", ANY, OPTIONAL),
  ENS_MAP ("completions", "completions", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsDialectEntry http_routes[] = {
  { "POST /api/v1/spawn", "sessions.spawn", NULL, NULL, http_spawn_in, http_spawn_out, "202", 0 },
  { "POST /api/v1/agents/register", "agents.register", NULL, NULL, http_register_in, http_register_out, "201", 0 },
  { "GET /api/v1/agents", "agents.list", NULL, NULL, NULL, http_agents_out, "200", 0 },
  { "GET /api/v1/status", "health", NULL, NULL, NULL, http_status_out, "200", 0 },
  { NULL },
};

const EnsDialect ens_dialect_ksi_http = {
  .name = "ksi-http",
  .entries = http_routes,
  .framing = ENS_DIALECT_FRAMING_MESSAGE,
};
