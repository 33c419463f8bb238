/* ens-dialect-ksi.c — the KSI multi-socket dialect, as a translation only:
 * {"command","version":"2.0","parameters"} becomes a core request (the KSI
 * command travels in the message tag), and the core's answer becomes
 * {"status":"success","command","metadata":{"timestamp"},"result"} or the
 * KSI error shape.  Events go out flat: {"id","type","from","timestamp",
 * ...payload}.  Any command works on any of the five sockets, as in KSI. */
#include "ens-unix.h"
#include "ens-json-util.h"

#include <string.h>
#include <time.h>

typedef struct {
  const char *command;
  const char *action; /* core verb */
} KsiCommand;

static const KsiCommand commands[] = {
  { "HEALTH_CHECK", "health" },
  { "GET_PROCESSES", "processes.list" },
  { "SHUTDOWN", "shutdown" },
  { "REGISTER_AGENT", "agents.register" },
  { "SPAWN_AGENT", "processes.spawn" },
  { "GET_AGENTS", "agents.list" },
  { "SUBSCRIBE", "subscribe" },
  { "PUBLISH", "publish" },
  { "AGENT_CONNECTION", NULL }, /* connect / disconnect: chosen by parameters.action */
  { "SET_AGENT_KV", "kv.set" },
  { "GET_AGENT_KV", "kv.get" },
  { "COMPLETION", "complete" },
};

/* ------------------------------------------------------------------ output */

/* KSI's timestamps: ISO 8601 UTC with microseconds and a Z. */
static void
append_timestamp (GString *out, gint64 unix_us)
{
  time_t t = (time_t) (unix_us / G_USEC_PER_SEC);
  struct tm tm;
  char date[32];

  gmtime_r (&t, &tm);
  strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  g_string_append_printf (out, "\"%s.%06dZ\"", date, (int) (unix_us % G_USEC_PER_SEC));
}

static void
append_timestamp_now (GString *out)
{
  append_timestamp (out, g_get_real_time ());
}

/* The encoder has no context argument; the host is the same for every
 * connection of the one transport instance. */
static const EnsHost *ksi_host;

void
ens_ksi_set_host (const EnsHost *host)
{
  ksi_host = host;
}

static void
append_json (GString *out, JsonNode *node)
{
  g_autofree char *text = NULL;

  if (node == NULL)
    {
      g_string_append (out, "null");
      return;
    }
  text = ksi_host->json_to_string (node);
  g_string_append (out, text);
}

static void
append_string (GString *out, const char *s)
{
  JsonNode *node = json_node_init_string (json_node_alloc (), s ? s : "");
  append_json (out, node);
  json_node_unref (node);
}

/* The dispatcher's error shape, for lines that never became a command. */
static GBytes *
dispatcher_error (const char *code, const char *message)
{
  GString *out = g_string_new ("{\"status\":\"error\",\"error\":{\"code\":");
  append_string (out, code);
  g_string_append (out, ",\"message\":");
  append_string (out, message);
  g_string_append (out, ",\"timestamp\":");
  append_timestamp_now (out);
  g_string_append (out, "}}\n");
  return g_string_free_to_bytes (out);
}

static JsonObject *
data_object (EnsMessage *msg)
{
  return msg->data && JSON_NODE_HOLDS_OBJECT (msg->data) ? json_node_get_object (msg->data) : NULL;
}

static JsonNode *
member_or_null (JsonObject *obj, const char *name)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;
  return node ? json_node_copy (node) : json_node_new (JSON_NODE_NULL);
}

static JsonObject *
manager (JsonObject *parent, const char *name)
{
  JsonObject *m = json_object_new ();
  json_object_set_string_member (m, "status", "active");
  json_object_set_object_member (parent, name, m);
  return m;
}

/* The core's answer, reshaped as the KSI command's result. */
static JsonNode *
ksi_result (const char *command, EnsMessage *msg)
{
  JsonObject *in = data_object (msg);
  JsonObject *out;
  JsonNode *node = ens_node_new_object (&out);

  if (strcmp (command, "HEALTH_CHECK") == 0)
    {
      JsonObject *managers = json_object_new ();
      JsonObject *counters = ens_member_object (in, "counters");
      json_object_set_string_member (out, "status", "healthy");
      json_object_set_member (out, "uptime", member_or_null (in, "uptime_s"));
      json_object_set_member (out, "version", member_or_null (in, "version"));
      json_object_set_member (out, "node_id", member_or_null (in, "node_id"));
      json_object_set_object_member (out, "managers", managers);
      json_object_set_int_member (manager (managers, "state"), "sessions", ens_member_int (in, "sessions", 0));
      json_object_set_int_member (manager (managers, "process"), "processes", ens_member_int (in, "processes", 0));
      json_object_set_int_member (manager (managers, "agent"), "agents", ens_member_int (in, "agents", 0));
      {
        JsonObject *bus = manager (managers, "message_bus");
        json_object_set_int_member (bus, "subscribers", ens_member_int (in, "subscriptions", 0));
        json_object_set_int_member (bus, "connections", ens_member_int (in, "connections", 0));
        json_object_set_int_member (bus, "events_published", ens_member_int (counters, "events_published", 0));
      }
    }
  else if (strcmp (command, "SHUTDOWN") == 0)
    {
      json_object_set_string_member (out, "status", "shutting_down");
      json_object_set_string_member (out, "message", "SHUTTING DOWN");
      json_object_set_string_member (out, "details", "Daemon shutdown initiated");
    }
  else if (strcmp (command, "REGISTER_AGENT") == 0)
    {
      json_object_set_string_member (out, "status", "registered");
      json_object_set_member (out, "agent_id", member_or_null (in, "name"));
      json_object_set_member (out, "role", member_or_null (in, "description"));
      json_object_set_member (out, "capabilities", member_or_null (in, "actions"));
    }
  else if (strcmp (command, "GET_AGENTS") == 0)
    {
      JsonObject *agents = json_object_new ();
      JsonArray *list = ens_member_array (in, "agents");
      for (guint i = 0; list && i < json_array_get_length (list); i++)
        {
          JsonObject *a = ens_array_object (list, i);
          const char *name = ens_member_string (a, "name");
          JsonObject *entry;
          if (name == NULL)
            continue;
          entry = json_object_new ();
          json_object_set_member (entry, "role", member_or_null (a, "description"));
          json_object_set_string_member (entry, "status", ens_member_bool (a, "connected", FALSE) ? "active" : "registered");
          json_object_set_member (entry, "capabilities", member_or_null (a, "actions"));
          json_object_set_member (entry, "kind", member_or_null (a, "kind"));
          json_object_set_object_member (agents, name, entry);
        }
      json_object_set_object_member (out, "agents", agents);
    }
  else if (strcmp (command, "AGENT_CONNECTION") == 0)
    {
      gboolean connect = msg->action && strcmp (msg->action, "agents.register") == 0;
      json_object_set_string_member (out, "status", connect ? "connected" : "disconnected");
      json_object_set_member (out, "agent_id", member_or_null (in, "name"));
      json_object_set_string_member (out, "action", connect ? "connect" : "disconnect");
    }
  else if (strcmp (command, "SUBSCRIBE") == 0)
    {
      JsonObject *sub = json_object_new ();
      JsonObject *bus = json_object_new ();
      json_object_set_member (sub, "subscribed_to", member_or_null (in, "subscribed"));
      json_object_set_member (sub, "all_subscriptions", member_or_null (in, "topics"));
      json_object_set_string_member (sub, "status", "active");
      json_object_set_object_member (out, "subscription", sub);
      json_object_set_member (bus, "total_subscriptions", member_or_null (in, "total"));
      json_object_set_object_member (out, "message_bus", bus);
    }
  else if (strcmp (command, "PUBLISH") == 0)
    {
      JsonObject *delivery = json_object_new ();
      json_object_set_string_member (delivery, "status", "published");
      json_object_set_member (delivery, "delivered", member_or_null (in, "delivered"));
      json_object_set_member (delivery, "seq", member_or_null (in, "seq"));
      if (ens_member (in, "target_found"))
        json_object_set_string_member (delivery, "to_status",
                                       ens_member_bool (in, "target_found", FALSE) ? "delivered" : "not_connected");
      json_object_set_object_member (out, "delivery", delivery);
    }
  else if (strcmp (command, "SPAWN_AGENT") == 0)
    {
      JsonObject *agent = json_object_new ();
      JsonObject *selection = json_object_new ();
      const char *profile = ens_member_string (in, "profile");
      const char *composition = profile ? profile : "default";

      json_object_set_member (agent, "id", member_or_null (in, "agent_id"));
      json_object_set_member (agent, "process_id", member_or_null (in, "process_id"));
      json_object_set_member (agent, "pid", member_or_null (in, "pid"));
      json_object_set_string_member (agent, "composition", composition);
      json_object_set_member (agent, "role", member_or_null (in, "role"));
      json_object_set_array_member (agent, "capabilities", json_array_new ());
      json_object_set_string_member (agent, "status", "active");
      json_object_set_member (agent, "task", member_or_null (in, "task"));
      json_object_set_member (agent, "model", member_or_null (in, "model"));
      json_object_set_object_member (out, "agent", agent);
      json_object_set_string_member (selection, "composition_used", composition);
      json_object_set_boolean_member (selection, "fallback_used", profile == NULL);
      json_object_set_double_member (selection, "score", 1.0);
      json_object_set_object_member (out, "selection", selection);
    }
  else if (strcmp (command, "GET_PROCESSES") == 0)
    {
      json_object_set_member (out, "processes", member_or_null (in, "processes"));
      json_object_set_member (out, "total", member_or_null (in, "total"));
    }
  else if (strcmp (command, "SET_AGENT_KV") == 0)
    {
      json_object_set_member (out, "key", member_or_null (in, "key"));
      json_object_set_string_member (out, "status", "set");
    }
  else if (strcmp (command, "GET_AGENT_KV") == 0)
    {
      json_object_set_member (out, "key", member_or_null (in, "key"));
      json_object_set_member (out, "value", member_or_null (in, "value"));
      /* As in KSI: a stored null reads as not found. */
      json_object_set_boolean_member (out, "found", ens_member (in, "value") != NULL);
    }
  else
    {
      json_node_unref (node);
      return msg->data ? json_node_copy (msg->data) : ens_node_empty_object ();
    }
  return node;
}

static const char *
ksi_error_code (const char *code)
{
  if (code && strcmp (code, ENS_ERR_AGENT_NOT_FOUND) == 0)
    return "AGENT_NOT_CONNECTED";
  return code ? code : ENS_ERR_INTERNAL;
}

/* EnsEncodeFunc for KSI connections: replies, errors and events. */
GBytes *
ens_ksi_encode (EnsMessage *msg)
{
  GString *out = g_string_sized_new (256);

  if (msg->kind == ENS_MESSAGE_EVENT)
    {
      JsonObject *payload = data_object (msg);
      g_string_append_printf (out, "{\"id\":\"%" G_GUINT64_FORMAT "\",\"type\":", msg->seq);
      append_string (out, msg->topic);
      g_string_append (out, ",\"from\":");
      append_string (out, msg->from);
      g_string_append (out, ",\"timestamp\":");
      append_timestamp (out, msg->timestamp_us);
      if (msg->to)
        {
          g_string_append (out, ",\"to\":");
          append_string (out, msg->to);
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
                  strcmp (name, "timestamp") == 0)
                continue;
              g_string_append_c (out, ',');
              append_string (out, name);
              g_string_append_c (out, ':');
              append_json (out, member);
            }
        }
      else if (msg->data)
        {
          g_string_append (out, ",\"data\":");
          append_json (out, msg->data);
        }
      g_string_append (out, "}\n");
      return g_string_free_to_bytes (out);
    }

  if (msg->tag == NULL || msg->tag[0] == '\0')
    {
      /* An error about a line that never became a command. */
      g_string_free (out, TRUE);
      return dispatcher_error (ksi_error_code (msg->error_code), msg->error_message ? msg->error_message : "");
    }

  g_string_append_printf (out, "{\"status\":\"%s\",\"command\":", msg->kind == ENS_MESSAGE_REPLY ? "success" : "error");
  append_string (out, msg->tag);
  g_string_append (out, ",\"metadata\":{\"timestamp\":");
  append_timestamp_now (out);
  g_string_append (out, "}");
  if (msg->kind == ENS_MESSAGE_REPLY)
    {
      g_autoptr (JsonNode) result = ksi_result (msg->tag, msg);
      g_string_append (out, ",\"result\":");
      append_json (out, result);
    }
  else
    {
      g_string_append (out, ",\"error\":{\"code\":");
      append_string (out, ksi_error_code (msg->error_code));
      g_string_append (out, ",\"message\":");
      append_string (out, msg->error_message);
      g_string_append (out, ",\"timestamp\":");
      append_timestamp_now (out);
      g_string_append (out, ",\"details\":");
      append_json (out, msg->error_details);
      g_string_append (out, "},\"result\":null");
    }
  g_string_append (out, "}\n");
  return g_string_free_to_bytes (out);
}

/* ------------------------------------------------------------------ input */

static void
send_dispatcher_error (EnsUnixConn *conn, const char *code, const char *message)
{
  g_autoptr (GBytes) bytes = dispatcher_error (code, message);
  ens_unix_send (conn, bytes);
}

/* A handler-level error for @command (KSI's full error shape); @details
 * (transfer none) may be NULL. */
static void
send_command_error (EnsUnixConn *conn, const char *command, const char *code, const char *message, JsonNode *details)
{
  const EnsHost *host = ens_unix_host (conn);
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_ERROR);
  g_autoptr (JsonNode) empty = details ? NULL : ens_node_empty_object ();
  EnsMessage *err;

  init.tag = command;
  init.error_code = code;
  init.error_message = message;
  init.error_details = details ? details : empty;
  err = host->message_new (&init);
  ens_unix_send (conn, host->message_encode (err, ens_ksi_encode));
  host->message_unref (err);
}

/* @code (INVALID_PARAMETERS, INVALID_ACTION) for the parameter @invalid
 * names: "COMMAND: parameters.FIELD must be EXPECTED", details {field,
 * expected, fields}. */
static void
send_invalid (EnsUnixConn *conn, const char *command, const char *code, const EnsInvalid *invalid)
{
  g_autofree char *text = g_strdup_printf ("%s: parameters.%s must be %s", command, invalid->field, invalid->expected);
  g_autoptr (JsonNode) details = ens_invalid_details (invalid);

  send_command_error (conn, command, code, text, details);
}

static gboolean
require_string (EnsUnixConn *conn, const char *command, JsonObject *params, const char *field, const char **out)
{
  EnsInvalid invalid;

  if (ens_param_string (params, field, ENS_PARAM_REQUIRED | ENS_PARAM_NON_EMPTY, 0, out, &invalid))
    return TRUE;
  send_invalid (conn, command, "INVALID_PARAMETERS", &invalid);
  return FALSE;
}

static const char *
optional_string (JsonObject *params, const char *field, const char *fallback)
{
  const char *s = ens_member_string (params, field);

  return s ? s : fallback;
}

/* KSI accepts capabilities as a list or a comma-separated string. */
static JsonNode *
capabilities_node (JsonObject *params)
{
  JsonArray *in = ens_member_array (params, "capabilities");
  const char *text = ens_member_string (params, "capabilities");
  JsonArray *array = json_array_new ();
  JsonNode *result = json_node_new (JSON_NODE_ARRAY);

  if (in)
    {
      for (guint i = 0; i < json_array_get_length (in); i++)
        if (ens_array_string (in, i))
          json_array_add_string_element (array, ens_array_string (in, i));
    }
  else if (text)
    {
      g_auto (GStrv) parts = g_strsplit (text, ",", -1);
      for (guint i = 0; parts[i]; i++)
        {
          g_strstrip (parts[i]);
          if (parts[i][0])
            json_array_add_string_element (array, parts[i]);
        }
    }
  json_node_take_array (result, array);
  return result;
}

static void
submit (EnsUnixConn *conn, const char *command, const char *action, JsonObject *data, guint32 timeout_ms)
{
  const EnsHost *host = ens_unix_host (conn);
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  EnsMessage *msg;

  json_node_take_object (node, data);
  init.action = action;
  init.tag = command;
  init.data = node;
  init.timeout_ms = timeout_ms;
  msg = host->message_new (&init);
  host->client_submit (ens_unix_client (conn), msg);
  host->message_unref (msg);
  json_node_unref (node);
}

/* Translates parameters for one command; FALSE after answering an error. */
static void
translate (EnsUnixConn *conn, const KsiCommand *cmd, JsonObject *p)
{
  const char *command = cmd->command;
  JsonObject *d = json_object_new ();
  const char *s = NULL, *agent = NULL;
  EnsInvalid invalid;

  if (strcmp (command, "REGISTER_AGENT") == 0)
    {
      if (!require_string (conn, command, p, "agent_id", &agent) || !require_string (conn, command, p, "role", &s))
        goto invalid;
      json_object_set_string_member (d, "name", agent);
      json_object_set_string_member (d, "description", s);
      json_object_set_member (d, "actions", capabilities_node (p));
      json_object_set_boolean_member (d, "persistent", TRUE);
    }
  else if (strcmp (command, "AGENT_CONNECTION") == 0)
    {
      if (!require_string (conn, command, p, "action", &s) || !require_string (conn, command, p, "agent_id", &agent))
        goto invalid;
      if (strcmp (s, "connect") != 0 && strcmp (s, "disconnect") != 0)
        {
          ens_invalid_set (&invalid, "action", "\"connect\" or \"disconnect\"");
          send_invalid (conn, command, "INVALID_ACTION", &invalid);
          goto invalid;
        }
      json_object_set_string_member (d, "name", agent);
      if (strcmp (s, "connect") == 0)
        {
          /* This connection now stays open and receives the agent's events. */
          ens_unix_keep_open (conn);
          submit (conn, command, "agents.register", d, 0);
        }
      else
        submit (conn, command, "agents.unregister", d, 0);
      return;
    }
  else if (strcmp (command, "SUBSCRIBE") == 0)
    {
      JsonArray *types = NULL;
      if (!require_string (conn, command, p, "agent_id", &agent))
        goto invalid;
      if (!ens_param_strings (p, "event_types", ENS_PARAM_REQUIRED | ENS_PARAM_NON_EMPTY, &types, &invalid))
        {
          send_invalid (conn, command, "INVALID_PARAMETERS", &invalid);
          goto invalid;
        }
      json_object_set_string_member (d, "agent", agent);
      json_object_set_array_member (d, "topics", json_array_ref (types));
    }
  else if (strcmp (command, "PUBLISH") == 0)
    {
      JsonObject *payload = NULL;
      if (!require_string (conn, command, p, "from_agent", &agent) ||
          !require_string (conn, command, p, "event_type", &s))
        goto invalid;
      if (!ens_param_object (p, "payload", ENS_PARAM_REQUIRED, &payload, &invalid))
        {
          send_invalid (conn, command, "INVALID_PARAMETERS", &invalid);
          goto invalid;
        }
      json_object_set_string_member (d, "topic", s);
      json_object_set_string_member (d, "from_agent", agent);
      json_object_set_object_member (d, "data", json_object_ref (payload));
      /* DIRECT_MESSAGE and TASK_ASSIGNMENT name their recipient in the payload. */
      s = optional_string (payload, "to", NULL);
      if (s)
        json_object_set_string_member (d, "to", s);
    }
  else if (strcmp (command, "SET_AGENT_KV") == 0)
    {
      JsonNode *value = p ? json_object_get_member (p, "value") : NULL;
      if (!require_string (conn, command, p, "key", &s))
        goto invalid;
      if (value == NULL) /* JSON null is a value to store */
        {
          ens_invalid_set (&invalid, "value", "given (any JSON value)");
          send_invalid (conn, command, "INVALID_PARAMETERS", &invalid);
          goto invalid;
        }
      json_object_set_string_member (d, "agent", optional_string (p, "owner_agent_id", "system"));
      json_object_set_string_member (d, "key", s);
      json_object_set_member (d, "value", json_node_copy (value));
    }
  else if (strcmp (command, "GET_AGENT_KV") == 0)
    {
      if (!require_string (conn, command, p, "key", &s))
        goto invalid;
      json_object_set_string_member (d, "agent",
                                     optional_string (p, "owner_agent_id", optional_string (p, "agent_id", "system")));
      json_object_set_string_member (d, "key", s);
    }
  else if (strcmp (command, "COMPLETION") == 0)
    {
      gint64 timeout = 300;
      if (!require_string (conn, command, p, "prompt", &s) || !require_string (conn, command, p, "client_id", &agent))
        goto invalid;
      if (!ens_param_int (p, "timeout", ENS_PARAM_OPTIONAL, 1, 600, &timeout, &invalid))
        {
          send_invalid (conn, command, "INVALID_PARAMETERS", &invalid);
          goto invalid;
        }
      json_object_set_string_member (d, "prompt", s);
      json_object_set_string_member (d, "client_id", agent); /* COMPLETION_RESULT goes to it */
      if (optional_string (p, "model", NULL))
        json_object_set_string_member (d, "model", optional_string (p, "model", NULL));
      if (optional_string (p, "session_id", NULL))
        json_object_set_string_member (d, "session_id", optional_string (p, "session_id", NULL));
      json_object_set_int_member (d, "timeout_ms", timeout * 1000);
    }
  else if (p)
    {
      /* Commands whose parameters the core takes as they are. */
      json_object_unref (d);
      d = json_object_ref (p);
    }
  submit (conn, command, cmd->action, d, 0);
  return;

invalid:
  json_object_unref (d);
}

void
ens_ksi_handle_line (EnsUnixConn *conn, const char *line, gsize len)
{
  const EnsHost *host = ens_unix_host (conn);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *obj, *params = NULL;
  EnsInvalid invalid;
  const char *command;
  const KsiCommand *cmd = NULL;

  root = host->json_parse (line, len, &error);
  if (root == NULL)
    {
      g_autofree char *text = g_strdup_printf ("All commands must be valid JSON: %s", error->message);
      send_dispatcher_error (conn, "INVALID_JSON", text);
      return;
    }
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      send_dispatcher_error (conn, "INVALID_COMMAND", "Validation failed: a command is a JSON object");
      return;
    }
  obj = json_node_get_object (root);
  if (json_object_has_member (obj, "reply_to"))
    {
      /* An agent connected over KSI answering a request pushed to it. */
      EnsMessage *msg = host->parse_native (line, len);
      host->client_submit (ens_unix_client (conn), msg);
      host->message_unref (msg);
      return;
    }
  command = optional_string (obj, "command", NULL);
  if (command == NULL || command[0] == '\0')
    {
      send_dispatcher_error (conn, "INVALID_COMMAND", "Validation failed: command: field required (a string)");
      return;
    }
  if (json_object_get_member (obj, "version") && g_strcmp0 (optional_string (obj, "version", NULL), "2.0") != 0)
    {
      send_dispatcher_error (conn, "INVALID_COMMAND", "Validation failed: version: must be \"2.0\"");
      return;
    }
  if (!ens_param_object (obj, "parameters", ENS_PARAM_OPTIONAL, &params, &invalid))
    {
      send_dispatcher_error (conn, "INVALID_COMMAND", "Validation failed: parameters: must be an object");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].command, command) == 0)
      cmd = &commands[i];
  if (cmd == NULL)
    {
      g_autofree char *text = g_strdup_printf ("Command '%s' not recognized", command);
      send_dispatcher_error (conn, "UNKNOWN_COMMAND", text);
      return;
    }
  translate (conn, cmd, params);
}
