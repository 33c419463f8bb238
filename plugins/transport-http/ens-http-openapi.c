/* ens-http-openapi.c — GET /openapi.json and GET /docs, both made from the
 * route tables (so neither can drift from what is served) and from the
 * response descriptions below.
 *
 * Each operation gets:
 *   - an operationId a code generator can use: camelCase of the method and
 *     the path, a {name} segment read as "By<Name>" (GET /api/kv/{agent}/{key}
 *     is getApiKvByAgentByKey, GET / is getRoot); unique, as method and path
 *     are;
 *   - its success response with status, media type and JSON Schema, from
 *     the table below (a route missing there is described by its tag: JSON
 *     object, or OpenAI's shapes under /v1), and its error responses: the
 *     daemon's {error:{code,message,details}} (OpenAI's {error:{message,
 *     type,param,code}} under /v1), 401 where a token or the peer check
 *     applies, 422 where a body is read.
 *
 * The schemas are written with ' for " to be readable here; nothing in them
 * needs a real apostrophe. */
#include "ens-http.h"
#include "ens-json-write.h"
#include "ens-json-util.h"

#include <string.h>

/* ------------------------------------------------------------ schemas */

static const struct {
  const char *name, *schema;
} components[] = {
  { "Error", "{'type':'object','required':['error'],'properties':{'error':{'type':'object','required':['code','message'],"
             "'properties':{'code':{'type':'string','description':'machine-readable, e.g. AGENT_NOT_FOUND'},"
             "'message':{'type':'string'},'details':{'description':'what failed, e.g. {fields:[{field,expected}]}'}}}}}" },
  { "OpenAIError", "{'type':'object','required':['error'],'properties':{'error':{'type':'object','required':['message','type'],"
                   "'properties':{'message':{'type':'string'},'type':{'type':'string'},'param':{'type':['string','null']},"
                   "'code':{'type':['string','null']}}}}}" },
  { "Budget", "{'type':'object','properties':{'daily_budget':{'type':'number','description':'USD'},"
              "'current_spend':{'type':'number'},'reserved':{'type':'number'},'remaining':{'type':'number'},"
              "'utilization_pct':{'type':'number'},'day':{'type':'string','format':'date'},'shared':{'type':'boolean'}}}" },
  { "Counters", "{'type':'object','additionalProperties':{'type':'integer'},'properties':{'requests':{'type':'integer'},"
                "'errors':{'type':'integer'},'events_published':{'type':'integer'},'events_delivered':{'type':'integer'},"
                "'agent_requests':{'type':'integer'},'agent_timeouts':{'type':'integer'}}}" },
  { "CompletionStats", "{'type':'object','properties':{'router_policy':{'type':'string'},'providers':{'type':'integer'},"
                       "'queued':{'type':'integer'},'running':{'type':'integer'},'completed':{'type':'integer'},"
                       "'failed':{'type':'integer'},'fallbacks':{'type':'integer'},'input_tokens':{'type':'integer'},"
                       "'output_tokens':{'type':'integer'}}}" },
  { "Health", "{'type':'object','required':['status'],'properties':{'status':{'enum':['healthy','degraded']},"
              "'agents':{'type':'integer'},'timestamp':{'type':'string','format':'date-time'},"
              "'interfaces':{'type':'array','items':{'type':'string'}},'llm_router':{'$ref':'#/components/schemas/Budget'},"
              "'version':{'type':'string'},'node_id':{'type':'string'},'uptime_s':{'type':'number'},"
              "'connections':{'type':'integer'},'sessions':{'type':'integer'},"
              "'completions':{'$ref':'#/components/schemas/CompletionStats'},'counters':{'$ref':'#/components/schemas/Counters'},"
              "'plugins':{'type':'array','items':{'$ref':'#/components/schemas/Plugin'}}}}" },
  { "Plugin", "{'type':'object','properties':{'id':{'type':'string'},'kind':{'type':'string'},'version':{'type':'string'},"
              "'description':{'type':'string'},'file':{'type':'string'},'state':{'type':'string'},"
              "'error':{'type':'string','description':'why it was refused or failed'},'info':{'type':'object'}}}" },
  { "Agent", "{'type':'object','required':['name'],'properties':{'name':{'type':'string'},"
             "'actions':{'type':'array','items':{'type':'string'}},'description':{'type':'string'},"
             "'kind':{'enum':['plugin','client']},'owner':{'type':['string','null']},'connected':{'type':'boolean'},"
             "'persistent':{'type':'boolean'},'registered_at':{'type':'string','format':'date-time'}}}" },
  { "Provider", "{'type':'object','required':['name','provider'],'properties':{'name':{'type':'string'},"
                "'provider':{'type':'string','description':'the plugin'},'models':{'type':'array','items':{'type':'string'}},"
                "'quality':{'type':'number'},'latency_ms':{'type':'number'},'configured_latency_ms':{'type':'number'},"
                "'error_rate':{'type':'number'},'cooling_down':{'type':'boolean'},'cooldown_remaining_ms':{'type':'integer'},"
                "'running':{'type':'integer'},'calls':{'type':'integer'},'failures':{'type':'integer'},"
                "'input_tokens':{'type':'integer'},'output_tokens':{'type':'integer'},'cost':{'type':'number'},"
                "'cost_per_1k_input':{'type':'number'},'cost_per_1k_output':{'type':'number'},"
                "'capabilities':{'type':'array','items':{'type':'string'}},'context_window':{'type':'integer'}}}" },
  { "RouteDecision", "{'type':'object','required':['provider'],'properties':{'provider':{'type':'string'},"
                     "'model':{'type':'string'},'reasoning':{'type':'string'},'estimated_cost':{'type':'number'},"
                     "'confidence':{'type':'number'},'policy':{'type':'string'},"
                     "'ranking':{'type':'array','items':{'type':'string'}},"
                     "'scores':{'type':'object','additionalProperties':{'type':'number'}}}}" },
  { "CompletionResult", "{'type':'object','properties':{'response':{'type':'string'},'provider':{'type':'string'},"
                        "'provider_plugin':{'type':'string'},'model':{'type':'string'},'local':{'type':'boolean'},"
                        "'finish_reason':{'type':'string'},'usage':{'type':'object','properties':{"
                        "'input_tokens':{'type':'integer'},'output_tokens':{'type':'integer'}}},'cost':{'type':'number'},"
                        "'duration_ms':{'type':'number'},'attempts':{'type':'integer'},'timings':{'type':'object'},"
                        "'tool_calls':{'type':'array'}}}" },
  { "Completion", "{'type':'object','required':['request_id'],'properties':{'request_id':{'type':'string'},"
                  "'client_id':{'type':'string'},'to':{'type':'string'},"
                  "'result':{'$ref':'#/components/schemas/CompletionResult'}}}" },
  { "Session", "{'type':'object','required':['session_id','status'],'properties':{'session_id':{'type':'string'},"
               "'id':{'type':'string'},'status':{'type':'string'},'session_type':{'type':'string'},'model':{'type':'string'},"
               "'provider':{'type':'string'},'orchestrator_id':{'type':'string'},"
               "'created_at':{'type':'string','format':'date-time'},'updated_at':{'type':'string','format':'date-time'},"
               "'tasks_total':{'type':'integer'},'queued_tasks':{'type':'integer'},'messages':{'type':'integer'},"
               "'metrics':{'type':'object'},'task':{'type':['object','null']},'history':{'type':'array','items':{"
               "'type':'object','properties':{'role':{'type':'string'},'content':{'type':'string'}}}},"
               "'recent_tasks':{'type':'array','items':{'type':'object'}}}}" },
  { "StatsHistory", "{'type':'object','properties':{'interval_ms':{'type':'integer'},'capacity':{'type':'integer'},"
                    "'count':{'type':'integer'},'t':{'type':'array','items':{'type':'integer'},'description':'ms since the epoch'},"
                    "'requests_per_s':{'type':'array','items':{'type':'number'}},"
                    "'deliveries_per_s':{'type':'array','items':{'type':'number'}},"
                    "'published_per_s':{'type':'array','items':{'type':'number'}},"
                    "'errors_per_s':{'type':'array','items':{'type':'number'}},"
                    "'completions_per_s':{'type':'array','items':{'type':'number'}},"
                    "'completion_latency_ms':{'type':'array','items':{'type':['number','null']}},"
                    "'connections':{'type':'array','items':{'type':'integer'}},"
                    "'completions_running':{'type':'array','items':{'type':'integer'}}}}" },
  { "NeolithSession", "{'type':'object','properties':{'id':{'type':'string'},'orchestratorId':{'type':'string'},"
                      "'type':{'type':'string'},'status':{'type':'string'},'task':{'type':['object','null']},"
                      "'startedAt':{'type':'string'},'endedAt':{'type':['string','null']},'memoryContext':{'type':'object'},"
                      "'metrics':{'type':'object'}}}" },
  { "ChatCompletion", "{'type':'object','required':['id','object','choices'],'properties':{'id':{'type':'string'},"
                      "'object':{'const':'chat.completion'},'created':{'type':'integer'},'model':{'type':'string'},"
                      "'choices':{'type':'array','items':{'type':'object','properties':{'index':{'type':'integer'},"
                      "'message':{'type':'object','properties':{'role':{'type':'string'},'content':{'type':['string','null']},"
                      "'tool_calls':{'type':'array'}}},'finish_reason':{'type':['string','null']}}}},"
                      "'usage':{'type':'object','properties':{'prompt_tokens':{'type':'integer'},"
                      "'completion_tokens':{'type':'integer'},'total_tokens':{'type':'integer'}}}}}" },
  { "Model", "{'type':'object','required':['id','object'],'properties':{'id':{'type':'string'},'object':{'const':'model'},"
             "'created':{'type':'integer'},'owned_by':{'type':'string'}}}" },
};

#define REF(x) "{'$ref':'#/components/schemas/" x "'}"
#define LIST(key, item) "{'type':'object','required':['" key "'],'properties':{'" key "':{'type':'array','items':" item "}}}"
#define OBJECT_WITH(props) "{'type':'object','properties':{" props "}}"
#define STR "{'type':'string'}"
#define INT "{'type':'integer'}"
#define BOOL "{'type':'boolean'}"
#define SSE "text/event-stream"
#define SSE_SCHEMA "{'type':'string','description':'Server-Sent Events: event: NAME, data: one JSON object per event'}"

/* The success answer of each route: status, media type, schema.  A second
 * media type (SSE) where the same route streams when asked. */
static const struct {
  const char *route; /* "METHOD path" */
  const char *status;
  const char *type, *schema;
  const char *alt_type, *alt_schema;
} success[] = {
  /* native and Centerfire */
  { "GET /health", "200", NULL, REF ("Health") },
  { "POST /api/request", "200", NULL,
    OBJECT_WITH ("'id':{},'status':{'enum':['success','error']},'data':{},'error':{'type':'object'},'timestamp':" STR
                 ",'processing_time_ms':{'type':'number'}") },
  { "POST /api/route-llm", "200", NULL, REF ("RouteDecision") },
  { "GET /api/plugins", "200", NULL, LIST ("plugins", REF ("Plugin")) },
  { "GET /api/agents", "200", NULL, LIST ("agents", REF ("Agent")) },
  { "POST /api/agents/{agent}/{action}", "200", NULL, "{'description':'the agent answer data, as it sent it'}" },
  { "POST /api/publish", "200", NULL,
    OBJECT_WITH ("'topic':" STR ",'from':" STR ",'to':" STR ",'seq':" INT ",'delivered':" INT) },
  { "GET /api/events", "200", SSE, SSE_SCHEMA },
  { "GET /api/kv/{agent}", "200", NULL, OBJECT_WITH ("'agent':" STR ",'keys':{'type':'array','items':" STR "}") },
  { "GET /api/kv/{agent}/{key}", "200", NULL,
    OBJECT_WITH ("'agent':" STR ",'key':" STR ",'value':{},'found':" BOOL) },
  { "PUT /api/kv/{agent}/{key}", "200", NULL, OBJECT_WITH ("'agent':" STR ",'key':" STR ",'stored':" BOOL) },
  { "DELETE /api/kv/{agent}/{key}", "200", NULL, OBJECT_WITH ("'agent':" STR ",'key':" STR ",'deleted':" BOOL) },
  { "POST /api/completions", "200", NULL, REF ("Completion"), SSE, SSE_SCHEMA },
  { "POST /api/route", "200", NULL, REF ("RouteDecision") },
  { "GET /api/providers", "200", NULL,
    OBJECT_WITH ("'providers':{'type':'array','items':" REF ("Provider") "},'aliases':{'type':'array','items':"
                 OBJECT_WITH ("'alias':" STR ",'model':" STR ",'provider':" STR) "}") },
  { "GET /api/budget", "200", NULL, REF ("Budget") },
  { "GET /api/sessions", "200", NULL, OBJECT_WITH ("'sessions':{'type':'array','items':" REF ("Session") "},'total':" INT) },
  { "POST /api/sessions", "201", NULL, REF ("Session") },
  { "GET /api/sessions/{id}", "200", NULL, REF ("Session") },
  { "POST /api/sessions/{id}/execute", "202", NULL,
    OBJECT_WITH ("'session_id':" STR ",'task_id':" STR ",'request_id':" STR ",'status':" STR) },
  { "DELETE /api/sessions/{id}", "200", NULL, REF ("Session") },
  { "GET /api/stats/history", "200", NULL, REF ("StatsHistory") },
  /* KSI HTTP plan */
  { "POST /api/v1/spawn", "202", NULL,
    OBJECT_WITH ("'status':{'const':'accepted'},'session_id':" STR ",'task_id':" STR ",'request_id':" STR ",'watch':" STR
                 ",'result_topic':" STR) },
  { "POST /api/v1/agents/register", "201", NULL,
    OBJECT_WITH ("'status':{'const':'registered'},'agent_id':" STR ",'role':" STR
                 ",'capabilities':{'type':'array','items':" STR "},'registered_at':" STR ",'agent':" REF ("Agent")) },
  { "GET /api/v1/agents", "200", NULL, OBJECT_WITH ("'agents':{'type':'array','items':" REF ("Agent") "},'count':" INT) },
  { "GET /api/v1/status", "200", NULL,
    OBJECT_WITH ("'status':" STR ",'uptime':{'type':'number'},'agents':" INT ",'sessions':" INT ",'active_sessions':" INT
                 ",'connections':" INT ",'version':" STR ",'node_id':" STR ",'started_at':" STR
                 ",'completions':" REF ("CompletionStats")) },
  /* Neolith */
  { "GET /api/daemon", "200", NULL,
    OBJECT_WITH ("'status':" STR ",'health':" STR ",'uptime':{'type':'number'},'activeSessions':" INT
                 ",'totalSessions':" INT ",'queuedTasks':" INT ",'runningTasks':" INT ",'agents':" INT
                 ",'connections':" INT ",'version':" STR ",'nodeId':" STR ",'startedAt':" STR ",'timestamp':" STR) },
  { "POST /api/daemon", "201", NULL,
    OBJECT_WITH ("'success':" BOOL ",'registered':" BOOL ",'orchestratorId':" STR
                 ",'capabilities':{'type':'array','items':" STR "},'registeredAt':" STR) },
  { "DELETE /api/daemon", "200", NULL, OBJECT_WITH ("'success':" BOOL) },
  { "POST /api/daemon/sessions", "201", NULL, REF ("NeolithSession") },
  { "GET /api/daemon/sessions", "200", NULL,
    OBJECT_WITH ("'sessions':{'type':'array','items':" REF ("NeolithSession") "},'total':" INT) },
  { "PATCH /api/daemon/sessions", "200", NULL, REF ("NeolithSession") },
  { "DELETE /api/daemon/sessions", "200", NULL, REF ("NeolithSession") },
  { "GET /api/daemon/heartbeat", "200", NULL, OBJECT_WITH ("'status':{'const':'ok'},'timestamp':" STR) },
  { "POST /api/daemon/heartbeat", "200", NULL, OBJECT_WITH ("'status':{'const':'ok'},'timestamp':" STR) },
  { "GET /api/daemon/events", "200", SSE, SSE_SCHEMA },
  /* Rhetor / aish */
  { "POST /api/ai/socket/create", "200", NULL,
    OBJECT_WITH ("'socket_id':" STR ",'websocket_url':" STR ",'name':" STR ",'status':" STR ",'created_at':" STR) },
  { "GET /api/ai/specialists", "200", NULL,
    OBJECT_WITH ("'count':" INT ",'specialists':{'type':'array','items':" OBJECT_WITH (
      "'id':" STR ",'socket_id':" STR ",'name':" STR ",'type':" STR ",'component_id':" STR
      ",'capabilities':{'type':'array','items':" STR "},'active':" BOOL ",'status':" STR ",'model':" STR
      ",'websocket_url':" STR) "}") },
  { "POST /api/ai/specialists/{id}/message", "200", NULL,
    OBJECT_WITH ("'success':" BOOL ",'specialist_id':" STR ",'response':" STR ",'socket_id':" STR ",'task_id':" STR
                 ",'model':" STR ",'provider':" STR ",'usage':{'type':'object'},'finish_reason':" STR
                 ",'cost':{'type':'number'},'duration_ms':{'type':'number'}") },
  { "POST /api/team-chat", "200", NULL,
    OBJECT_WITH ("'request_id':" STR ",'message':" STR ",'moderation_mode':" STR ",'count':" INT
                 ",'responses':{'type':'object','description':'by specialist id','additionalProperties':" OBJECT_WITH (
                   "'content':" STR ",'specialist_id':" STR ",'socket_id':" STR ",'name':" STR ",'model':" STR
                   ",'provider':" STR ",'usage':{'type':'object'},'cost':{'type':'number'},'duration_ms':{'type':'number'}")
                 "},'errors':{'type':'object'},'timed_out':{'type':'array','items':" STR "}") },
  /* OpenAI */
  { "POST /v1/chat/completions", "200", NULL, REF ("ChatCompletion"), SSE,
    "{'type':'string','description':'data: chat.completion.chunk objects, then data: [DONE]'}" },
  { "GET /v1/models", "200", NULL,
    "{'type':'object','properties':{'object':{'const':'list'},'data':{'type':'array','items':" REF ("Model") "}}}" },
  { "GET /v1/models/{model}", "200", NULL, REF ("Model") },
  /* the console and these pages */
  { "GET /", "200", "text/html", "{'type':'string'}" },
  { "GET /console/{file}", "200", "text/javascript", "{'type':'string'}", "text/css", "{'type':'string'}" },
  { "GET /metrics", "200", "text/plain", "{'type':'string','description':'Prometheus text format 0.0.4'}" },
  { "GET /openapi.json", "200", NULL, "{'type':'object','description':'this document'}" },
  { "GET /docs", "200", "text/html", "{'type':'string'}" },
};

/* (transfer full) the JSON of @text written with ' for ". */
static JsonNode *
schema_node (const char *text)
{
  g_autofree char *json = g_strdup (text);
  JsonNode *node;

  g_strdelimit (json, "'", '"');
  node = json_from_string (json, NULL);
  g_return_val_if_fail (node != NULL, ens_node_empty_object ()); /* a typo above: caught by every test run */
  return node;
}

/* getApiKvByAgentByKey */
static char *
operation_id (const EnsHttpRoute *route)
{
  GString *id = g_string_new (NULL);
  gboolean upper = FALSE;

  for (const char *m = route->method; *m; m++)
    g_string_append_c (id, g_ascii_tolower (*m));
  if (strcmp (route->path, "/") == 0)
    g_string_append (id, "Root");
  for (const char *p = route->path; *p; p++)
    {
      if (*p == '{')
        {
          g_string_append (id, "By");
          upper = TRUE;
        }
      else if (!g_ascii_isalnum (*p))
        upper = TRUE;
      else
        {
          g_string_append_c (id, upper ? g_ascii_toupper (*p) : *p);
          upper = FALSE;
        }
    }
  return g_string_free (id, FALSE);
}

static JsonObject *
media (const char *type, const char *schema)
{
  JsonObject *content = json_object_new ();
  JsonObject *m = json_object_new ();

  json_object_set_member (m, "schema", schema_node (schema));
  json_object_set_object_member (content, type ? type : "application/json", m);
  return content;
}

static JsonObject *
response (const char *description, JsonObject *content)
{
  JsonObject *r = json_object_new ();

  json_object_set_string_member (r, "description", description);
  if (content)
    json_object_set_object_member (r, "content", content);
  return r;
}

static void
add_responses (JsonObject *op, const EnsHttpRoute *route, gboolean secured)
{
  g_autofree char *key = g_strdup_printf ("%s %s", route->method, route->path);
  gboolean openai = g_strcmp0 (route->tag, "openai") == 0;
  const char *error_schema = openai ? REF ("OpenAIError") : REF ("Error");
  JsonObject *responses = json_object_new ();
  JsonObject *content = NULL;
  const char *status = "200";

  for (guint i = 0; i < G_N_ELEMENTS (success); i++)
    if (strcmp (success[i].route, key) == 0)
      {
        status = success[i].status;
        content = media (success[i].type, success[i].schema);
        if (success[i].alt_type)
          {
            g_autoptr (JsonObject) alt = media (success[i].alt_type, success[i].alt_schema);
            json_object_set_member (content, success[i].alt_type, json_object_dup_member (alt, success[i].alt_type));
          }
        break;
      }
  if (content == NULL) /* a route this file does not describe yet */
    content = media (NULL, "{'type':'object'}");
  json_object_set_object_member (responses, status, response ("success", content));
  if (route->body_schema)
    json_object_set_object_member (responses, openai ? "400" : "422",
                                   response ("the body is not what the schema says; the failing fields in details",
                                             media (NULL, error_schema)));
  if (!route->public)
    json_object_set_object_member (responses, "401",
                                   response (secured ? "no valid bearer token"
                                                     : "not the daemon's own user (loopback without a token)",
                                             media (NULL, error_schema)));
  json_object_set_object_member (responses, "default", response ("an error", media (NULL, error_schema)));
  json_object_set_object_member (op, "responses", responses);
}

static void
add_operation (JsonObject *paths, const EnsHttpRoute *route, gboolean secured)
{
  JsonObject *item = json_object_has_member (paths, route->path) ? ens_member_object (paths, route->path) : NULL;
  JsonObject *op = json_object_new ();
  JsonArray *tags = json_array_new ();
  JsonArray *params = json_array_new ();
  g_auto (GStrv) segments = g_strsplit (route->path, "/", -1);
  g_autofree char *method = g_ascii_strdown (route->method, -1);
  g_autofree char *op_id = operation_id (route);

  if (item == NULL)
    {
      item = json_object_new ();
      json_object_set_object_member (paths, route->path, item);
    }
  json_array_add_string_element (tags, route->tag);
  json_object_set_array_member (op, "tags", tags);
  json_object_set_string_member (op, "summary", route->summary);
  json_object_set_string_member (op, "operationId", op_id);
  for (guint i = 0; segments[i]; i++)
    if (segments[i][0] == '{')
      {
        JsonObject *p = json_object_new ();
        g_autofree char *pname = g_strndup (segments[i] + 1, strlen (segments[i]) - 2);
        json_object_set_string_member (p, "name", pname);
        json_object_set_string_member (p, "in", "path");
        json_object_set_boolean_member (p, "required", TRUE);
        json_object_set_member (p, "schema", schema_node (STR));
        json_array_add_object_element (params, p);
      }
  if (json_array_get_length (params))
    json_object_set_array_member (op, "parameters", params);
  else
    json_array_unref (params);
  if (route->body_schema)
    {
      JsonObject *rb = json_object_new ();
      JsonObject *content = json_object_new ();
      JsonObject *m = json_object_new ();
      JsonNode *schema = json_from_string (route->body_schema, NULL);
      json_object_set_member (m, "schema", schema ? schema : ens_node_empty_object ());
      json_object_set_object_member (content, "application/json", m);
      json_object_set_object_member (rb, "content", content);
      json_object_set_boolean_member (rb, "required", TRUE);
      json_object_set_object_member (op, "requestBody", rb);
    }
  add_responses (op, route, secured);
  if (route->public || !secured)
    json_object_set_array_member (op, "security", json_array_new ());
  json_object_set_object_member (item, method, op);
}

/* ------------------------------------------------------------ /openapi.json */

/* (transfer full) the whole document. */
static JsonNode *
openapi_document (EnsHttp *http, const char *base_url)
{
  const GPtrArray *routes = ens_http_routes (http);
  gboolean secured = ens_http_token_required (http);
  JsonObject *doc = json_object_new (), *info = json_object_new (), *paths = json_object_new ();
  JsonObject *comp = json_object_new (), *schemas = json_object_new (), *schemes = json_object_new ();
  JsonObject *bearer = json_object_new (), *server = json_object_new (), *req = json_object_new ();
  JsonArray *servers = json_array_new (), *security = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (doc, "openapi", "3.1.0");
  json_object_set_string_member (info, "title", "Ensemble");
  json_object_set_string_member (info, "version", ENS_HTTP_VERSION);
  json_object_set_string_member (info, "description",
                                 "The Ensemble daemon over HTTP: native REST, the Centerfire, KSI, Neolith and Rhetor "
                                 "dialects, an OpenAI-compatible API, the web console and metrics. Errors: "
                                 "{error:{code,message,details}} (OpenAI's own shape under /v1).");
  json_object_set_object_member (doc, "info", info);
  json_object_set_string_member (server, "url", base_url);
  json_array_add_object_element (servers, server);
  json_object_set_array_member (doc, "servers", servers);
  for (guint i = 0; i < routes->len; i++)
    add_operation (paths, g_ptr_array_index (routes, i), secured);
  json_object_set_object_member (doc, "paths", paths);
  for (guint i = 0; i < G_N_ELEMENTS (components); i++)
    json_object_set_member (schemas, components[i].name, schema_node (components[i].schema));
  json_object_set_object_member (comp, "schemas", schemas);
  json_object_set_string_member (bearer, "type", "http");
  json_object_set_string_member (bearer, "scheme", "bearer");
  json_object_set_object_member (schemes, "bearer", bearer);
  json_object_set_object_member (comp, "securitySchemes", schemes);
  json_object_set_object_member (doc, "components", comp);
  json_object_set_array_member (req, "bearer", json_array_new ());
  json_array_add_object_element (security, req);
  json_object_set_array_member (doc, "security", security);
  json_node_take_object (node, doc);
  return node;
}

static void
route_openapi (EnsHttpCall *call)
{
  g_autoptr (JsonNode) doc = openapi_document (ens_http_instance (call), ens_http_base_url (call));

  ens_http_reply_json (call, 200, doc);
}

/* ------------------------------------------------------------ /docs */

static void
append_escaped (GString *out, const char *text)
{
  g_autofree char *escaped = g_markup_escape_text (text ? text : "", -1);

  g_string_append (out, escaped);
}

/* A schema, pretty-printed, in a <pre>. */
static void
append_schema (GString *out, JsonNode *schema)
{
  g_autofree char *text = ens_json_write_to_string (schema, TRUE);

  g_autofree char *escaped = g_markup_escape_text (text, -1);
  g_autoptr (GRegex) ref = g_regex_new ("&quot;#/components/schemas/(\\w+)&quot;", 0, 0, NULL);
  g_autofree char *linked = g_regex_replace (ref, escaped, -1, 0,
                                             "<a href=\"#schema-\\1\">\"#/components/schemas/\\1\"</a>", 0, NULL);

  /* a reference to a shared schema links to it */
  g_string_append (out, "<pre>");
  g_string_append (out, linked ? linked : escaped);
  g_string_append (out, "</pre>\n");
}

static void
docs_operation (GString *out, const char *path, const char *method, JsonObject *op)
{
  JsonObject *body = ens_member_object (op, "requestBody");
  JsonObject *responses = ens_member_object (op, "responses");
  JsonArray *security = ens_member_array (op, "security");
  g_autofree char *upper = g_ascii_strup (method, -1);
  g_autoptr (GList) codes = responses ? json_object_get_members (responses) : NULL;

  g_string_append_printf (out, "<section class=\"op\" id=\"%s\">\n<h3><span class=\"m m-%s\">%s</span> <code>",
                          ens_member_string_or (op, "operationId", ""), method, upper);
  append_escaped (out, path);
  g_string_append (out, "</code></h3>\n<p>");
  append_escaped (out, ens_member_string (op, "summary"));
  g_string_append (out, "</p>\n<p class=\"meta\">operationId <code>");
  append_escaped (out, ens_member_string (op, "operationId"));
  g_string_append_printf (out, "</code> · %s</p>\n",
                          !json_object_has_member (responses, "401") ? "public: no token needed"
                          : security && json_array_get_length (security) == 0
                            ? "served to the daemon's own user on loopback (no token is set)"
                            : "needs the bearer token");
  if (body)
    {
      JsonObject *content = ens_member_object (body, "content");
      JsonObject *m = content ? ens_member_object (content, "application/json") : NULL;
      g_string_append (out, "<details><summary>Request body (application/json)</summary>\n");
      if (m && json_object_has_member (m, "schema"))
        append_schema (out, json_object_get_member (m, "schema"));
      g_string_append (out, "</details>\n");
    }
  g_string_append (out, "<table class=\"responses\">\n");
  for (GList *l = codes; l; l = l->next)
    {
      JsonObject *r = ens_member_object (responses, l->data);
      JsonObject *content = ens_member_object (r, "content");
      g_autoptr (GList) types = content ? json_object_get_members (content) : NULL;

      g_string_append (out, "<tr><td><code>");
      append_escaped (out, l->data);
      g_string_append (out, "</code></td><td>");
      append_escaped (out, ens_member_string (r, "description"));
      for (GList *t = types; t; t = t->next)
        {
          JsonObject *m = ens_member_object (content, t->data);
          g_string_append (out, "<details><summary>");
          append_escaped (out, t->data);
          g_string_append (out, "</summary>\n");
          if (m && json_object_has_member (m, "schema"))
            append_schema (out, json_object_get_member (m, "schema"));
          g_string_append (out, "</details>");
        }
      g_string_append (out, "</td></tr>\n");
    }
  g_string_append (out, "</table>\n</section>\n");
}

static void
route_docs (EnsHttpCall *call)
{
  EnsHttp *http = ens_http_instance (call);
  g_autoptr (JsonNode) node = openapi_document (http, ens_http_base_url (call));
  JsonObject *doc = json_node_get_object (node);
  JsonObject *paths = ens_member_object (doc, "paths");
  JsonObject *schemas = ens_member_object (ens_member_object (doc, "components"), "schemas");
  const GPtrArray *routes = ens_http_routes (http);
  GString *out = g_string_new (NULL);
  const char *tag = NULL;

  g_string_append (out,
                   "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<title>Ensemble HTTP API</title>\n<style>\n"
                   "body{font:15px/1.5 system-ui,sans-serif;max-width:64em;margin:2em auto;padding:0 1em;color:#1f2937}\n"
                   "code,pre{font:13px ui-monospace,monospace;background:#f3f4f6;border-radius:4px}\n"
                   "code{padding:0 .3em}pre{padding:.6em;overflow:auto;max-height:30em}\n"
                   "h2{margin-top:2em;border-bottom:1px solid #e5e7eb;text-transform:capitalize}\n"
                   ".op{border:1px solid #e5e7eb;border-radius:8px;padding:.2em 1em;margin:1em 0}\n"
                   ".op h3{font-size:1em;margin:.6em 0 .2em}.meta{color:#6b7280;font-size:13px;margin:.2em 0}\n"
                   ".m{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;color:#fff;font-size:12px;"
                   "padding:.1em .3em;margin-right:.4em}\n"
                   ".m-get{background:#2563eb}.m-post{background:#16a34a}.m-put{background:#d97706}"
                   ".m-delete{background:#dc2626}.m-patch{background:#7c3aed}\n"
                   "table{border-collapse:collapse;width:100%}td{padding:.2em .6em;vertical-align:top;"
                   "border-top:1px solid #f3f4f6}summary{cursor:pointer;color:#4b5563}\n"
                   "nav a{margin-right:1em;text-transform:capitalize}\n</style>\n</head>\n<body>\n"
                   "<h1>Ensemble HTTP API</h1>\n"
                   "<p>Every route the daemon serves, from the table that serves them. Machine-readable: "
                   "<a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1, with response schemas and operationIds "
                   "for code generators). The web console is at <a href=\"/\">/</a>. Errors are "
                   "<code>{\"error\":{\"code\",\"message\",\"details\"}}</code>; under <code>/v1</code>, OpenAI's "
                   "<code>{\"error\":{\"message\",\"type\",\"param\",\"code\"}}</code>.");
  g_string_append (out, ens_http_token_required (http)
                          ? " Every route but the public ones needs <code>Authorization: Bearer TOKEN</code>.</p>\n"
                          : " Without a token configured, loopback clients of the daemon's own user (and root) are "
                            "served; anyone else gets 401.</p>\n");
  g_string_append (out, "<nav>");
  for (guint i = 0; i < routes->len; i++)
    {
      const EnsHttpRoute *r = g_ptr_array_index (routes, i);
      if (g_strcmp0 (tag, r->tag) != 0 && !strstr (out->str, r->tag))
        g_string_append_printf (out, "<a href=\"#tag-%s\">%s</a>", r->tag, r->tag);
      tag = r->tag;
    }
  g_string_append (out, "<a href=\"#schemas\">schemas</a></nav>\n");
  tag = NULL;
  for (guint i = 0; i < routes->len; i++)
    {
      const EnsHttpRoute *r = g_ptr_array_index (routes, i);
      g_autofree char *method = g_ascii_strdown (r->method, -1);
      JsonObject *op = ens_member_object (ens_member_object (paths, r->path), method);

      if (g_strcmp0 (tag, r->tag) != 0)
        {
          tag = r->tag;
          g_string_append_printf (out, "<h2 id=\"tag-%s\">%s</h2>\n", tag, tag);
        }
      if (op)
        docs_operation (out, r->path, method, op);
    }
  g_string_append (out, "<h2 id=\"schemas\">Schemas</h2>\n");
  for (guint i = 0; i < G_N_ELEMENTS (components); i++)
    {
      g_string_append_printf (out, "<h3 id=\"schema-%s\">%s</h3>\n", components[i].name, components[i].name);
      append_schema (out, json_object_get_member (schemas, components[i].name));
    }
  g_string_append (out, "</body>\n</html>\n");
  ens_http_reply_text (call, 200, "text/html; charset=utf-8", out->str);
  g_string_free (out, TRUE);
}

const EnsHttpRoute ens_http_routes_meta[] = {
  { "GET", "/openapi.json", route_openapi, "meta",
    "This API as an OpenAPI 3.1 document: every operation with its operationId, parameters, body and responses", NULL,
    FALSE },
  { "GET", "/docs", route_docs, "meta", "This API as a page to read", NULL, FALSE },
  { NULL },
};
