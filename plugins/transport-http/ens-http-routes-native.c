/* ens-http-routes-native.c — native REST for every core service, the
 * Centerfire routes (/health, /api/request, /api/route-llm).
 * Each handler translates the HTTP request into a core verb and the answer
 * back; no logic of its own. */
#include "ens-http.h"
#include "ens-json-util.h"

#include <string.h>

/* ------------------------------------------------------------------ helpers */


/* The core's INVALID_PARAMETERS becomes 422 naming the field. */
static void
answer_error (EnsHttpCall *call, EnsMessage *answer)
{
  JsonObject *det = answer->error_details && JSON_NODE_HOLDS_OBJECT (answer->error_details)
                      ? json_node_get_object (answer->error_details) : NULL;
  const char *field = ens_member_string (det, "field");

  if (g_strcmp0 (answer->error_code, ENS_ERR_INVALID_PARAMETERS) == 0 && field)
    {
      /* 422 naming the field, keeping whatever else the core or agent said
       * (a naming agent's reasons, say). */
      g_autoptr (JsonNode) details = json_node_copy (answer->error_details);
      JsonObject *d = json_node_get_object (details);
      JsonArray *fields = json_array_new ();
      JsonObject *f = json_object_new ();
      json_object_set_string_member (f, "field", field);
      json_object_set_string_member (f, "expected", ens_member_string_or (det, "expected", "valid"));
      json_array_add_object_element (fields, f);
      json_object_set_array_member (d, "fields", fields);
      ens_http_reply_error (call, 422, "VALIDATION_ERROR", answer->error_message, details);
    }
  else
    ens_http_reply_error (call, ens_http_status_for (answer->error_code), answer->error_code, answer->error_message,
                          answer->error_details);
}

static void
answer_data (EnsHttpCall *call, EnsMessage *answer, gpointer status)
{
  if (answer->kind == ENS_MESSAGE_ERROR)
    answer_error (call, answer);
  else
    ens_http_reply_json (call, status ? GPOINTER_TO_UINT (status) : 200, answer->data);
}

/* Sends @action with the JSON body (plus path parameters) as its data. */
static void
body_to_verb (EnsHttpCall *call, const char *action, const char *const *params)
{
  JsonObject *body = ens_http_body (call);
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL)
    return;
  for (guint i = 0; params && params[i]; i++)
    json_object_set_string_member (body, params[i], ens_http_param (call, params[i]));
  data = ens_node_ref_object (body);
  ens_http_core (call, NULL, action, data, 0, answer_data, NULL);
}

/* @data_obj (transfer full) may be NULL. */
static void
verb_no_body (EnsHttpCall *call, const char *action, JsonObject *data_obj)
{
  JsonObject *obj = data_obj ? data_obj : json_object_new ();
  g_autoptr (JsonNode) data = ens_node_ref_object (obj);

  json_object_unref (obj);
  ens_http_core (call, NULL, action, data, 0, answer_data, NULL);
}

/* ------------------------------------------------------------------ health */

static const char *
interface_name (const char *plugin_id)
{
  static const struct {
    const char *id, *name;
  } names[] = { { "transport-unix", "unix-sockets" }, { "transport-http", "http" },
                { "transport-websocket", "websocket" }, { "transport-redis", "redis" } };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_strcmp0 (names[i].id, plugin_id) == 0)
      return names[i].name;
  return plugin_id;
}

/* Centerfire's health: {status, agents, timestamp, interfaces, llm_router},
 * plus what the native health knows. */
static void
health_answer (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in, *out;
  JsonArray *interfaces, *plugins;
  g_autoptr (JsonNode) node = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *ts = g_date_time_format (now, "%Y-%m-%dT%H:%M:%SZ");
  g_autoptr (GBytes) body = NULL;
  char *text;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      answer_error (call, answer);
      return;
    }
  in = json_node_get_object (answer->data);
  out = json_object_new ();
  json_object_set_string_member (out, "status", ens_member_string_or (in, "status", "healthy"));
  json_object_set_int_member (out, "agents", ens_member_int (in, "agents", 0));
  json_object_set_string_member (out, "timestamp", ts);
  interfaces = json_array_new ();
  plugins = ens_member_array (in, "plugins");
  for (guint i = 0; plugins && i < json_array_get_length (plugins); i++)
    {
      JsonObject *p = ens_array_object (plugins, i);
      if (g_strcmp0 (ens_member_string_or (p, "kind", ""), "transport") == 0 && ens_member_string (p, "id"))
        json_array_add_string_element (interfaces, interface_name (ens_member_string (p, "id")));
    }
  json_object_set_array_member (out, "interfaces", interfaces);
  if (json_object_has_member (in, "llm_router"))
    json_object_set_member (out, "llm_router", json_node_copy (json_object_get_member (in, "llm_router")));
  for (const char *const *k = (const char *const[]){ "version", "node_id", "uptime_s", "connections", "sessions",
                                                     "completions", "counters", "plugins", "failed_plugins", NULL };
       *k; k++)
    if (json_object_has_member (in, *k))
      json_object_set_member (out, *k, json_node_copy (json_object_get_member (in, *k)));
  node = ens_node_ref_object (out);
  json_object_unref (out);
  text = ens_http_host (call)->json_to_string (node);
  body = g_bytes_new_take (text, strlen (text));
  ens_http_cache_put (call, "health", body);
  ens_http_reply_bytes (call, 200, "application/json", body);
}

/* /health is public and may be asked often (monitors, load balancers, a
 * flood): its answer, which describes every plugin, is built at most once
 * in HEALTH_MAX_AGE_US, and again at once after a request through this
 * transport reached the core. */
#define HEALTH_MAX_AGE_US (100 * 1000)

static void
route_health (EnsHttpCall *call)
{
  g_autoptr (JsonNode) data = NULL;
  GBytes *kept = ens_http_cache_get (call, "health", HEALTH_MAX_AGE_US);

  if (kept)
    {
      ens_http_reply_bytes (call, 200, "application/json", kept);
      return;
    }
  data = json_node_new (JSON_NODE_NULL);
  ens_http_core (call, NULL, "health", data, 0, health_answer, NULL);
}

/* ------------------------------------------------------------------ simple verbs */

static void route_plugins (EnsHttpCall *call) { verb_no_body (call, "plugins.list", NULL); }
static void route_agents (EnsHttpCall *call) { verb_no_body (call, "agents.list", NULL); }
static void route_budget (EnsHttpCall *call) { verb_no_body (call, "budget", NULL); }
static void route_providers (EnsHttpCall *call) { verb_no_body (call, "providers.list", NULL); }
static void route_sessions (EnsHttpCall *call) { verb_no_body (call, "sessions.list", NULL); }
static void route_publish (EnsHttpCall *call) { body_to_verb (call, "publish", NULL); }
static void route_route (EnsHttpCall *call) { body_to_verb (call, "route", NULL); }

static void
route_session_spawn (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL)
    return;
  data = ens_node_ref_object (body);
  ens_http_core (call, NULL, "sessions.spawn", data, 0, answer_data, GUINT_TO_POINTER (201));
}

static void
route_session_status (EnsHttpCall *call)
{
  JsonObject *d = json_object_new ();
  json_object_set_string_member (d, "session_id", ens_http_param (call, "id"));
  verb_no_body (call, "sessions.status", d);
}

static void
route_session_stop (EnsHttpCall *call)
{
  JsonObject *d = json_object_new ();
  json_object_set_string_member (d, "session_id", ens_http_param (call, "id"));
  verb_no_body (call, "sessions.stop", d);
}

static void
route_session_execute_id (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL)
    return;
  json_object_set_string_member (body, "session_id", ens_http_param (call, "id"));
  data = ens_node_ref_object (body);
  ens_http_core (call, NULL, "sessions.execute", data, 0, answer_data, GUINT_TO_POINTER (202));
}

/* ------------------------------------------------------------------ kv */

static void
route_kv_list (EnsHttpCall *call)
{
  JsonObject *d = json_object_new ();
  json_object_set_string_member (d, "agent", ens_http_param (call, "agent"));
  if (ens_http_query (call, "prefix"))
    json_object_set_string_member (d, "prefix", ens_http_query (call, "prefix"));
  verb_no_body (call, "kv.list", d);
}

static void
kv_get_answer (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  (void) data;
  if (answer->kind == ENS_MESSAGE_REPLY &&
      !ens_member_bool (json_node_get_object (answer->data), "found", FALSE))
    ens_http_reply_error (call, 404, ENS_ERR_NOT_FOUND, "no value under that key", answer->data);
  else
    answer_data (call, answer, NULL);
}

static void
route_kv_get (EnsHttpCall *call)
{
  JsonObject *d = json_object_new ();
  g_autoptr (JsonNode) data = ens_node_ref_object (d);

  json_object_set_string_member (d, "agent", ens_http_param (call, "agent"));
  json_object_set_string_member (d, "key", ens_http_param (call, "key"));
  json_object_unref (d);
  ens_http_core (call, NULL, "kv.get", data, 0, kv_get_answer, NULL);
}

/* PUT body: {"value": <any JSON>} */
static void
route_kv_put (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL)
    return;
  if (!json_object_has_member (body, "value"))
    {
      ens_http_reply_invalid (call, "value", "present (any JSON value)");
      return;
    }
  json_object_set_string_member (body, "agent", ens_http_param (call, "agent"));
  json_object_set_string_member (body, "key", ens_http_param (call, "key"));
  data = ens_node_ref_object (body);
  ens_http_core (call, NULL, "kv.set", data, 0, answer_data, NULL);
}

static void
route_kv_delete (EnsHttpCall *call)
{
  JsonObject *d = json_object_new ();
  json_object_set_string_member (d, "agent", ens_http_param (call, "agent"));
  json_object_set_string_member (d, "key", ens_http_param (call, "key"));
  verb_no_body (call, "kv.delete", d);
}

/* ------------------------------------------------------------------ agents */

/* POST /api/agents/{agent}/{action}: the body is the request's data. */
static void
route_agent_action (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  g_autoptr (JsonNode) data = NULL;
  const char *timeout = ens_http_query (call, "timeout_ms");
  guint64 ms = 0;

  if (body == NULL)
    return;
  if (timeout && !g_ascii_string_to_unsigned (timeout, 10, 1, 3600000, &ms, NULL))
    {
      ens_http_reply_invalid (call, "timeout_ms", "an integer from 1 to 3600000");
      return;
    }
  data = ens_node_ref_object (body);
  ens_http_core (call, ens_http_param (call, "agent"), ens_http_param (call, "action"), data, (guint32) ms,
                 answer_data, NULL);
}

/* Centerfire POST /api/request {id, interface, agent, action, data}
 * -> {id, status, data | error, timestamp, processing_time_ms}. */
typedef struct {
  char *id;
  gint64 start_us;
} CenterfireCall;

static void
centerfire_answer (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  CenterfireCall *cf = data;
  JsonObject *out = json_object_new ();
  g_autoptr (JsonNode) node = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *ts = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");

  if (cf->id)
    json_object_set_string_member (out, "id", cf->id);
  else
    json_object_set_null_member (out, "id");
  if (answer->kind == ENS_MESSAGE_REPLY)
    {
      json_object_set_string_member (out, "status", "success");
      json_object_set_member (out, "data", answer->data ? json_node_copy (answer->data) : json_node_new (JSON_NODE_NULL));
    }
  else
    {
      JsonObject *err = json_object_new ();
      json_object_set_string_member (out, "status", "error");
      json_object_set_string_member (err, "code", answer->error_code);
      json_object_set_string_member (err, "message", answer->error_message ? answer->error_message : "");
      json_object_set_member (err, "details", answer->error_details ? json_node_copy (answer->error_details)
                                                                    : ens_node_empty_object ());
      json_object_set_object_member (out, "error", err);
    }
  json_object_set_string_member (out, "timestamp", ts);
  json_object_set_double_member (out, "processing_time_ms", (g_get_monotonic_time () - cf->start_us) / 1000.0);
  node = ens_node_ref_object (out);
  json_object_unref (out);
  ens_http_reply_json (call, answer->kind == ENS_MESSAGE_REPLY ? 200 : ens_http_status_for (answer->error_code), node);
  g_free (cf->id);
  g_free (cf);
}

static void
route_centerfire_request (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  JsonObject *data = NULL;
  CenterfireCall *cf;
  const char *agent = NULL, *action = NULL, *id = NULL;
  g_autoptr (JsonNode) data_node = NULL;
  EnsInvalid invalid;

  if (body == NULL)
    return;
  if (!ens_param_string (body, "agent", ENS_PARAM_REQUIRED | ENS_PARAM_NON_EMPTY, 0, &agent, &invalid) ||
      !ens_param_string (body, "action", ENS_PARAM_REQUIRED | ENS_PARAM_NON_EMPTY, 0, &action, &invalid) ||
      !ens_param_string (body, "id", ENS_PARAM_OPTIONAL, 0, &id, &invalid) ||
      !ens_param_object (body, "data", ENS_PARAM_OPTIONAL, &data, &invalid))
    {
      ens_http_reply_invalid (call, invalid.field, invalid.expected);
      return;
    }
  data_node = data ? ens_node_ref_object (data) : NULL;
  cf = g_new0 (CenterfireCall, 1);
  cf->id = g_strdup (id);
  cf->start_us = g_get_monotonic_time ();
  ens_http_core (call, agent, action, data_node, 0, centerfire_answer, cf);
}

/* Centerfire POST /api/route-llm {token_count, task_type, priority, max_latency, interface}
 * -> {provider, reasoning, estimated_cost, confidence}. */
static void
route_llm_answer (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in, *out;
  g_autoptr (JsonNode) node = NULL;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      answer_error (call, answer);
      return;
    }
  in = json_node_get_object (answer->data);
  out = json_object_new ();
  for (const char *const *k = (const char *const[]){ "provider", "reasoning", "estimated_cost", "confidence", NULL }; *k; k++)
    if (json_object_has_member (in, *k))
      json_object_set_member (out, *k, json_node_copy (json_object_get_member (in, *k)));
  node = ens_node_ref_object (out);
  json_object_unref (out);
  ens_http_reply_json (call, 200, node);
}

static void
route_route_llm (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL)
    return;
  json_object_remove_member (body, "interface");
  data = ens_node_ref_object (body);
  ens_http_core (call, NULL, "route", data, 0, route_llm_answer, NULL);
}

/* ------------------------------------------------------------------ completions */

/* POST /api/completions: the complete verb, answered with the result (or,
 * with "stream": true, as Server-Sent Events: chunk events then result). */
typedef struct {
  char *request_id;
  gboolean stream;
} CompletionCall;

static void
completion_free (CompletionCall *cc)
{
  g_free (cc->request_id);
  g_free (cc);
}

/* Nothing more may reach @cc (an event, the peer leaving before the call
 * is finished): it is freed here. */
static void
completion_done (EnsHttpCall *call, CompletionCall *cc)
{
  ens_http_on_event (call, NULL, NULL);
  ens_http_on_disconnect (call, NULL, NULL);
  completion_free (cc);
}

static void
completion_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  CompletionCall *cc = data;
  JsonObject *d = event->data && JSON_NODE_HOLDS_OBJECT (event->data) ? json_node_get_object (event->data) : NULL;
  g_autofree char *text = NULL;

  if (d == NULL || cc->request_id == NULL ||
      g_strcmp0 (ens_member_string_or (d, "request_id", ""), cc->request_id) != 0)
    return;
  if (cc->stream)
    {
      text = ens_http_host (call)->json_to_string (event->data);
      ens_http_sse_send (call, event->topic, text);
      if (g_strcmp0 (event->topic, "COMPLETION_RESULT") == 0)
        {
          ens_http_sse_end (call);
          completion_done (call, cc);
        }
      return;
    }
  if (g_strcmp0 (event->topic, "COMPLETION_RESULT") != 0)
    return;
  if (json_object_has_member (d, "result"))
    ens_http_reply_json (call, 200, event->data);
  else
    {
      const char *reason = ens_member_string_or (d, "reason", "COMPLETION_FAILED");
      ens_http_reply_error (call, ens_http_status_for (reason) == 500 ? 502 : ens_http_status_for (reason), reason,
                            ens_member_string_or (d, "error", ""), event->data);
    }
  completion_done (call, cc);
}

static void
completion_acked (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  CompletionCall *cc = data;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      answer_error (call, answer);
      completion_done (call, cc);
      return;
    }
  cc->request_id = g_strdup (ens_member_string (json_node_get_object (answer->data), "request_id"));
  if (cc->stream)
    {
      g_autofree char *text = ens_http_host (call)->json_to_string (answer->data);
      ens_http_sse_begin (call);
      ens_http_sse_send (call, "ack", text);
    }
}

static void
completion_gone (EnsHttpCall *call, gpointer data)
{
  (void) call;
  completion_free (data); /* the client closes with the call: the core cancels */
}

static void
route_completions (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  g_autoptr (JsonNode) data = NULL;
  CompletionCall *cc;
  JsonNode *stream;

  if (body == NULL)
    return;
  stream = json_object_get_member (body, "stream");
  cc = g_new0 (CompletionCall, 1);
  cc->stream = stream && JSON_NODE_HOLDS_VALUE (stream) && json_node_get_value_type (stream) == G_TYPE_BOOLEAN &&
               json_node_get_boolean (stream);
  json_object_remove_member (body, "client_id"); /* results come back on this request */
  data = ens_node_ref_object (body);
  ens_http_on_event (call, completion_event, cc);
  ens_http_on_disconnect (call, completion_gone, cc);
  ens_http_core (call, NULL, "complete", data, 0, completion_acked, cc);
}

/* ------------------------------------------------------------------ events (SSE) */

/* Encoders get no context; the host table is the same for every plugin. */
static const EnsHost *events_host;

/* An EnsEncodeFunc: the event as one SSE frame, "event: TOPIC\ndata: JSON\n\n"
 * with the native JSON, made once per message for every /api/events stream. */
static GBytes *
events_frame (EnsMessage *msg)
{
  GBytes *line = events_host->message_encode (msg, events_host->encode_native);
  gsize len;
  const char *text = g_bytes_get_data (line, &len);
  GString *out = g_string_sized_new (len + 32);

  g_string_append (out, "event: ");
  g_string_append (out, msg->topic ? msg->topic : "");
  g_string_append (out, "\ndata: ");
  g_string_append_len (out, text, len); /* ends with '\n' */
  g_string_append_c (out, '\n');
  return g_string_free_to_bytes (out);
}

static void
events_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  const EnsHost *host = ens_http_host (call);

  (void) data;
  events_host = host;
  ens_http_sse_send_event (call, host->message_encode (event, events_frame));
}

/* {"event":"ensemble.dropped","data":{"count","total"},...}, as on the Unix socket. */
static GBytes *
events_dropped (guint64 count, guint64 total, gpointer data)
{
  EnsHttpCall *call = data;
  const EnsHost *host = ens_http_host (call);
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  JsonObject *obj;
  g_autoptr (JsonNode) node = ens_node_new_object (&obj);
  EnsMessage *notice;
  GBytes *frame;

  json_object_set_int_member (obj, "count", count);
  json_object_set_int_member (obj, "total", total);
  init.topic = "ensemble.dropped";
  init.from = "ensembled";
  init.to = ens_http_client_id (call);
  init.data = node;
  notice = host->message_new (&init);
  events_host = host;
  frame = g_bytes_ref (host->message_encode (notice, events_frame));
  host->message_unref (notice);
  return frame;
}

static void
events_subscribed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      answer_error (call, answer);
      return;
    }
  ens_http_sse_begin (call);
  ens_http_sse_on_dropped (call, events_dropped, call);
  ens_http_sse_send (call, "subscribed", "{}");
}

/* GET /api/events?topics=a.*,b : the bus as Server-Sent Events. */
static void
route_events (EnsHttpCall *call)
{
  const char *topics = ens_http_query (call, "topics");
  g_auto (GStrv) list = NULL;
  JsonObject *d;
  JsonArray *array;
  g_autoptr (JsonNode) data = NULL;

  if (topics == NULL || topics[0] == '\0')
    {
      ens_http_reply_invalid (call, "topics", "a comma-separated list of topics or patterns (query parameter)");
      return;
    }
  list = g_strsplit (topics, ",", -1);
  d = json_object_new ();
  array = json_array_new ();
  for (guint i = 0; list[i]; i++)
    if (list[i][0])
      json_array_add_string_element (array, list[i]);
  json_object_set_array_member (d, "topics", array);
  data = ens_node_ref_object (d);
  json_object_unref (d);
  ens_http_on_event (call, events_event, NULL);
  ens_http_core (call, NULL, "subscribe", data, 0, events_subscribed, NULL);
}

/* ------------------------------------------------------------------ the table */

#define OBJ "{\"type\":\"object\"}"

const EnsHttpRoute ens_http_routes_native[] = {
  { "GET", "/health", route_health, "centerfire", "Health: status, agents, interfaces, llm_router budget block", NULL, TRUE },
  { "POST", "/api/request", route_centerfire_request, "centerfire",
    "A request to an agent: {id, interface, agent, action, data} -> {id, status, data|error, timestamp, processing_time_ms}",
    "{\"type\":\"object\",\"required\":[\"agent\",\"action\"],\"properties\":{\"id\":{\"type\":\"string\"},\"interface\":{\"type\":\"string\"},"
    "\"agent\":{\"type\":\"string\"},\"action\":{\"type\":\"string\"},\"data\":{\"type\":\"object\"}}}", FALSE },
  { "POST", "/api/route-llm", route_route_llm, "centerfire",
    "Which provider would serve: {token_count, task_type, priority, max_latency} -> {provider, reasoning, estimated_cost, confidence}",
    "{\"type\":\"object\",\"properties\":{\"token_count\":{\"type\":\"integer\",\"minimum\":0},\"task_type\":{\"type\":\"string\"},"
    "\"priority\":{\"enum\":[\"high\",\"medium\",\"low\"]},\"max_latency\":{\"type\":\"integer\",\"minimum\":0}}}", FALSE },
  { "GET", "/api/plugins", route_plugins, "native", "Loaded plugins", NULL, FALSE },
  { "GET", "/api/agents", route_agents, "native", "Registered agents", NULL, FALSE },
  { "POST", "/api/agents/{agent}/{action}", route_agent_action, "native",
    "A request to an agent; the body is its data, ?timeout_ms= its deadline", OBJ, FALSE },
  { "POST", "/api/publish", route_publish, "native", "Publish an event {topic, data?, to?}",
    "{\"type\":\"object\",\"required\":[\"topic\"],\"properties\":{\"topic\":{\"type\":\"string\"},\"to\":{\"type\":\"string\"},\"data\":{}}}", FALSE },
  { "GET", "/api/events", route_events, "native", "Events as Server-Sent Events: ?topics=a.*,b", NULL, FALSE },
  { "GET", "/api/kv/{agent}", route_kv_list, "native", "Keys stored for an agent (?prefix=)", NULL, FALSE },
  { "GET", "/api/kv/{agent}/{key}", route_kv_get, "native", "A stored value (404 when absent)", NULL, FALSE },
  { "PUT", "/api/kv/{agent}/{key}", route_kv_put, "native", "Store {value: any JSON}",
    "{\"type\":\"object\",\"required\":[\"value\"],\"properties\":{\"value\":{}}}", FALSE },
  { "DELETE", "/api/kv/{agent}/{key}", route_kv_delete, "native", "Delete a stored value", NULL, FALSE },
  { "POST", "/api/completions", route_completions, "native",
    "A completion, answered with its result; stream:true answers as Server-Sent Events (ack, COMPLETION_CHUNK..., COMPLETION_RESULT)",
    "{\"type\":\"object\",\"properties\":{\"prompt\":{\"type\":\"string\"},\"messages\":{\"type\":\"array\"},\"model\":{\"type\":\"string\"},"
    "\"provider\":{\"type\":\"string\"},\"stream\":{\"type\":\"boolean\"},\"max_tokens\":{\"type\":\"integer\",\"minimum\":1},"
    "\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2}}}", FALSE },
  { "POST", "/api/route", route_route, "native", "The routing decision, ranking included, without calling a provider", OBJ, FALSE },
  { "GET", "/api/providers", route_providers, "native", "Provider backends with observed latency, errors and spend", NULL, FALSE },
  { "GET", "/api/budget", route_budget, "native", "Today's budget: daily_budget, current_spend, remaining, utilization_pct", NULL, FALSE },
  { "GET", "/api/sessions", route_sessions, "native", "Sessions", NULL, FALSE },
  { "POST", "/api/sessions", route_session_spawn, "native",
    "Start a session {task?, model?, provider?, session_type?, orchestrator_id?, system?} (201)", OBJ, FALSE },
  { "GET", "/api/sessions/{id}", route_session_status, "native", "A session and its conversation", NULL, FALSE },
  { "POST", "/api/sessions/{id}/execute", route_session_execute_id, "native",
    "Run a task {task} in a session (202); progress on session.<id>.*",
    "{\"type\":\"object\",\"required\":[\"task\"],\"properties\":{\"task\":{\"type\":\"string\"}}}", FALSE },
  { "DELETE", "/api/sessions/{id}", route_session_stop, "native", "Stop a session", NULL, FALSE },
  { NULL },
};
