/* ens-http-routes-rhetor.c — Rhetor / aish over HTTP: /api/ai/socket/create,
 * /api/ai/specialists, /api/ai/specialists/{id}/message, /api/team-chat.  A
 * Rhetor "AI socket" is a core session whose orchestrator_id is "rhetor" and
 * whose session_type is the specialist's name; its id is the socket id. */
#include "ens-http-seeds.h"

#include <string.h>

#define RHETOR_ORCHESTRATOR "rhetor"
#define TEAM_CHAT_DEFAULT_S 30.0
#define TEAM_CHAT_MAX_S 3600.0

static gboolean
rhetor_socket (JsonObject *rec)
{
  return g_strcmp0 (ens_member_string_or (rec, "orchestrator_id", ""), RHETOR_ORCHESTRATOR) == 0;
}

/* A socket takes messages until it is stopped. */
static gboolean
rhetor_active (JsonObject *rec)
{
  return g_strcmp0 (ens_member_string_or (rec, "status", ""), "stopped") != 0;
}

static char *
rhetor_ws_url (EnsHttpCall *call, const char *id)
{
  const char *base = ens_http_base_url (call);
  g_autofree char *escaped = g_uri_escape_string (id, NULL, FALSE);

  if (g_str_has_prefix (base, "https://"))
    return g_strdup_printf ("wss://%s/ws/socket/%s", base + 8, escaped);
  return g_strdup_printf ("ws://%s/ws/socket/%s", g_str_has_prefix (base, "http://") ? base + 7 : base, escaped);
}

static void
rhetor_created (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;
  g_autofree char *url = NULL;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_rhetor_names);
      return;
    }
  url = rhetor_ws_url (call, ens_member_string (in, "session_id"));
  out = json_object_new ();
  ens_member_copy (out, "socket_id", in, "session_id");
  json_object_set_string_member (out, "websocket_url", url);
  ens_member_copy (out, "name", in, "session_type");
  ens_member_copy (out, "model", in, "model");
  ens_member_copy (out, "provider", in, "provider");
  ens_member_copy (out, "status", in, "status");
  ens_member_copy (out, "created_at", in, "created_at");
  ens_seed_reply_object (call, 200, out);
}

/* POST /api/ai/socket/create {name | specialist?, model?, provider?, system?} */
static void
route_rhetor_create (EnsHttpCall *call)
{
  static const char *const name_fields[] = { "name", "specialist", NULL };
  JsonObject *body = ens_http_body (call), *d;
  const char *name, *model, *provider, *system;
  g_autofree char *default_system = NULL;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL || !ens_seed_get_string_alias (call, body, name_fields, FALSE, &name) ||
      !ens_seed_get_string (call, body, "model", FALSE, &model) || !ens_seed_get_string (call, body, "provider", FALSE, &provider) ||
      !ens_seed_get_string (call, body, "system", FALSE, &system))
    return;
  if (name == NULL)
    name = "assistant";
  if (system == NULL)
    system = default_system = g_strdup_printf ("You are %s, an AI specialist reached through Rhetor.", name);
  d = json_object_new ();
  json_object_set_string_member (d, "orchestrator_id", RHETOR_ORCHESTRATOR);
  json_object_set_string_member (d, "session_type", name);
  json_object_set_string_member (d, "system", system);
  ens_seed_set_string_if (d, "model", model);
  ens_seed_set_string_if (d, "provider", provider);
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "sessions.spawn", data, 0, rhetor_created, NULL);
}

static JsonObject *
rhetor_specialist (EnsHttpCall *call, JsonObject *rec)
{
  JsonObject *out = json_object_new ();
  const char *id = ens_member_string (rec, "session_id");
  g_autofree char *url = rhetor_ws_url (call, id);

  json_object_set_string_member (out, "id", id);
  json_object_set_string_member (out, "socket_id", id);
  ens_member_copy (out, "name", rec, "session_type");
  json_object_set_boolean_member (out, "active", rhetor_active (rec));
  ens_member_copy (out, "status", rec, "status");
  if (json_object_has_member (rec, "model"))
    ens_member_copy (out, "model", rec, "model");
  else
    json_object_set_string_member (out, "model", "auto"); /* the router decides per message */
  ens_member_copy (out, "provider", rec, "provider");
  ens_member_copy (out, "created_at", rec, "created_at");
  ens_member_copy (out, "messages", rec, "messages");
  ens_member_copy (out, "tasks_total", rec, "tasks_total");
  json_object_set_string_member (out, "websocket_url", url);
  return out;
}

static void
rhetor_listed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;
  JsonArray *sessions, *list;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_rhetor_names);
      return;
    }
  sessions = ens_member_array (in, "sessions");
  list = json_array_new ();
  for (guint i = 0; sessions && i < json_array_get_length (sessions); i++)
    {
      JsonObject *rec = ens_array_object (sessions, i);
      if (rhetor_socket (rec))
        json_array_add_object_element (list, rhetor_specialist (call, rec));
    }
  out = json_object_new ();
  json_object_set_int_member (out, "count", json_array_get_length (list));
  json_object_set_array_member (out, "specialists", list);
  ens_seed_reply_object (call, 200, out);
}

/* GET /api/ai/specialists */
static void
route_rhetor_specialists (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "sessions.list", NULL, 0, rhetor_listed, NULL);
}

/* ---- POST /api/ai/specialists/{id}/message {message, temperature?}:
 * watch session.<id>.*, run the message as the session's task, answer with
 * its task_completed (or task_failed). */

typedef struct {
  char *socket_id;
  char *task_id; /* from the execute ack; events of other tasks are not ours */
  JsonNode *execute;
  gboolean done;
} MessageCall;

static void
message_call_free (gpointer data)
{
  MessageCall *mc = data;
  g_free (mc->socket_id);
  g_free (mc->task_id);
  g_clear_pointer (&mc->execute, json_node_unref);
  g_free (mc);
}

static void
message_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  MessageCall *mc = data;
  JsonObject *ev = ens_seed_answer_object (event), *out;
  const char *type;

  if (mc->done || mc->task_id == NULL || ev == NULL ||
      g_strcmp0 (ens_member_string_or (ev, "taskId", ""), mc->task_id) != 0)
    return;
  type = ens_member_string_or (ev, "type", "");
  if (strcmp (type, "task_completed") == 0)
    {
      JsonObject *result = ens_member_object (ev, "result");
      mc->done = TRUE;
      out = json_object_new ();
      json_object_set_string_member (out, "response",
                                     result ? ens_member_string_or (result, "response", "") : "");
      json_object_set_string_member (out, "socket_id", mc->socket_id);
      json_object_set_string_member (out, "task_id", mc->task_id);
      ens_seed_copy_result (out, result);
      ens_http_on_event (call, NULL, NULL);
      ens_seed_reply_object (call, 200, out);
    }
  else if (strcmp (type, "task_failed") == 0)
    {
      mc->done = TRUE;
      ens_http_on_event (call, NULL, NULL);
      ens_seed_reply_task_failed (call, ev, event->data);
    }
}

static void
message_executed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  MessageCall *mc = data;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      mc->done = TRUE;
      ens_seed_error (call, answer, ens_seed_rhetor_names);
      return;
    }
  mc->task_id = g_strdup (ens_member_string (ens_seed_answer_object (answer), "task_id"));
}

static void
message_subscribed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  MessageCall *mc = data;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      mc->done = TRUE;
      ens_seed_error (call, answer, ens_seed_rhetor_names);
      return;
    }
  ens_http_core (call, NULL, "sessions.execute", mc->execute, 0, message_executed, mc);
}

static void
route_rhetor_message (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d, *sub;
  const char *message;
  gboolean has_temp;
  double temperature;
  MessageCall *mc;
  JsonArray *topics;
  g_autoptr (JsonNode) sub_node = NULL;
  g_autofree char *topic = NULL;

  if (body == NULL || !ens_seed_get_string (call, body, "message", TRUE, &message) ||
      !ens_seed_get_number (call, body, "temperature", 0, 2, "a number from 0 to 2", &has_temp, &temperature))
    return;
  mc = g_new0 (MessageCall, 1);
  mc->socket_id = g_strdup (ens_http_param (call, "id"));
  ens_seed_attach_state (call, "ens-rhetor-message", mc, message_call_free);
  d = json_object_new ();
  json_object_set_string_member (d, "session_id", mc->socket_id);
  json_object_set_string_member (d, "task", message);
  if (has_temp)
    json_object_set_double_member (d, "temperature", temperature);
  mc->execute = ens_node_take_object (d);

  topic = g_strdup_printf ("session.%s.*", mc->socket_id);
  sub = json_object_new ();
  topics = json_array_new ();
  json_array_add_string_element (topics, topic);
  json_object_set_array_member (sub, "topics", topics);
  sub_node = ens_node_take_object (sub);
  ens_http_on_event (call, message_event, mc);
  ens_http_core (call, NULL, "subscribe", sub_node, 0, message_subscribed, mc);
}

/* ---- POST /api/team-chat {message, moderation_mode?, timeout?}: the
 * message runs in every active AI socket at once (one task each); the
 * answer gathers what came back before the timeout. */

typedef struct {
  char *id, *name, *task_id;
  gboolean done;
} Member;

typedef struct {
  EnsHttpCall *call;
  char *message;
  char *moderation_mode;
  guint timeout_ms;
  guint timer;
  GPtrArray *members;     /* Member* */
  guint next;             /* the next member to start */
  JsonObject *responses;  /* id -> {content, name, model, ...} */
  JsonObject *errors;     /* id -> {code, error} */
  gboolean replied;
} TeamChat;

static void
member_free (Member *m)
{
  g_free (m->id);
  g_free (m->name);
  g_free (m->task_id);
  g_free (m);
}

static void
team_chat_free (gpointer data)
{
  TeamChat *tc = data;

  if (tc->timer)
    g_source_remove (tc->timer);
  g_free (tc->message);
  g_free (tc->moderation_mode);
  g_clear_pointer (&tc->members, g_ptr_array_unref);
  g_clear_pointer (&tc->responses, json_object_unref);
  g_clear_pointer (&tc->errors, json_object_unref);
  g_free (tc);
}

static void
team_chat_reply (TeamChat *tc)
{
  JsonObject *out;
  JsonArray *timed_out = json_array_new ();

  if (tc->replied)
    {
      json_array_unref (timed_out);
      return;
    }
  tc->replied = TRUE;
  if (tc->timer)
    {
      g_source_remove (tc->timer);
      tc->timer = 0;
    }
  for (guint i = 0; tc->members && i < tc->members->len; i++)
    {
      Member *m = g_ptr_array_index (tc->members, i);
      if (!m->done)
        json_array_add_string_element (timed_out, m->id);
    }
  out = json_object_new ();
  json_object_set_string_member (out, "message", tc->message);
  if (tc->moderation_mode)
    json_object_set_string_member (out, "moderation_mode", tc->moderation_mode);
  json_object_set_int_member (out, "count", tc->members ? tc->members->len : 0);
  json_object_set_object_member (out, "responses", json_object_ref (tc->responses));
  json_object_set_object_member (out, "errors", json_object_ref (tc->errors));
  json_object_set_array_member (out, "timed_out", timed_out);
  ens_http_on_event (tc->call, NULL, NULL);
  ens_seed_reply_object (tc->call, 200, out);
}

static void
team_chat_check (TeamChat *tc)
{
  if (tc->next < tc->members->len)
    return; /* still starting tasks */
  for (guint i = 0; i < tc->members->len; i++)
    if (!((Member *) g_ptr_array_index (tc->members, i))->done)
      return;
  team_chat_reply (tc);
}

static gboolean
team_chat_timeout (gpointer data)
{
  TeamChat *tc = data;

  tc->timer = 0;
  team_chat_reply (tc);
  return G_SOURCE_REMOVE;
}

static void
team_chat_gone (EnsHttpCall *call, gpointer data)
{
  TeamChat *tc = data;

  (void) call;
  tc->replied = TRUE; /* nobody to answer; the tasks finish in their sessions */
  if (tc->timer)
    {
      g_source_remove (tc->timer);
      tc->timer = 0;
    }
}

static void team_chat_start_next (TeamChat *tc);

static void
team_chat_executed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  TeamChat *tc = data;
  Member *m = g_ptr_array_index (tc->members, tc->next);

  (void) call;
  if (tc->replied)
    return;
  tc->next++;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      JsonObject *e = json_object_new ();
      json_object_set_string_member (e, "code", answer->error_code);
      json_object_set_string_member (e, "error", answer->error_message ? answer->error_message : answer->error_code);
      json_object_set_object_member (tc->errors, m->id, e);
      m->done = TRUE;
    }
  else
    m->task_id = g_strdup (ens_member_string (ens_seed_answer_object (answer), "task_id"));
  team_chat_start_next (tc);
}

static void
team_chat_start_next (TeamChat *tc)
{
  Member *m;
  JsonObject *d;
  g_autoptr (JsonNode) data = NULL;

  if (tc->next >= tc->members->len)
    {
      team_chat_check (tc);
      return;
    }
  /* One request at a time per call; each ack is immediate, the tasks then
   * run side by side. */
  m = g_ptr_array_index (tc->members, tc->next);
  d = json_object_new ();
  json_object_set_string_member (d, "session_id", m->id);
  json_object_set_string_member (d, "task", tc->message);
  data = ens_node_take_object (d);
  ens_http_core (tc->call, NULL, "sessions.execute", data, 0, team_chat_executed, tc);
}

static void
team_chat_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  TeamChat *tc = data;
  JsonObject *ev = ens_seed_answer_object (event);
  const char *sid, *type, *task;

  (void) call;
  if (tc->replied || ev == NULL)
    return;
  sid = ens_member_string_or (ev, "sessionId", "");
  type = ens_member_string_or (ev, "type", "");
  task = ens_member_string_or (ev, "taskId", "");
  if (strcmp (type, "task_completed") != 0 && strcmp (type, "task_failed") != 0)
    return;
  for (guint i = 0; i < tc->members->len; i++)
    {
      Member *m = g_ptr_array_index (tc->members, i);
      if (m->done || m->task_id == NULL || strcmp (m->id, sid) != 0 || strcmp (m->task_id, task) != 0)
        continue;
      m->done = TRUE;
      if (strcmp (type, "task_completed") == 0)
        {
          JsonObject *result = ens_member_object (ev, "result");
          JsonObject *r = json_object_new ();
          json_object_set_string_member (r, "content",
                                         result ? ens_member_string_or (result, "response", "") : "");
          json_object_set_string_member (r, "name", m->name);
          json_object_set_string_member (r, "socket_id", m->id);
          ens_seed_copy_result (r, result);
          json_object_set_object_member (tc->responses, m->id, r);
        }
      else
        {
          JsonObject *e = json_object_new ();
          json_object_set_string_member (e, "code", ens_member_string_or (ev, "code", "TASK_FAILED"));
          json_object_set_string_member (e, "error", ens_member_string_or (ev, "error", ""));
          json_object_set_object_member (tc->errors, m->id, e);
        }
      team_chat_check (tc);
      return;
    }
}

static void
team_chat_subscribed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  TeamChat *tc = data;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      tc->replied = TRUE;
      ens_seed_error (call, answer, ens_seed_rhetor_names);
      return;
    }
  tc->timer = g_timeout_add (tc->timeout_ms, team_chat_timeout, tc);
  team_chat_start_next (tc);
}

static void
team_chat_listed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  TeamChat *tc = data;
  JsonArray *sessions, *topics;
  JsonObject *sub;
  g_autoptr (JsonNode) sub_node = NULL;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      tc->replied = TRUE;
      ens_seed_error (call, answer, ens_seed_rhetor_names);
      return;
    }
  sessions = ens_member_array (ens_seed_answer_object (answer), "sessions");
  topics = json_array_new ();
  for (guint i = 0; sessions && i < json_array_get_length (sessions); i++)
    {
      JsonObject *rec = ens_array_object (sessions, i);
      g_autofree char *topic = NULL;
      Member *m;
      if (!rhetor_socket (rec) || !rhetor_active (rec))
        continue;
      m = g_new0 (Member, 1);
      m->id = g_strdup (ens_member_string (rec, "session_id"));
      m->name = g_strdup (ens_member_string_or (rec, "session_type", ""));
      g_ptr_array_add (tc->members, m);
      topic = g_strdup_printf ("session.%s.*", m->id);
      json_array_add_string_element (topics, topic);
    }
  if (tc->members->len == 0)
    {
      json_array_unref (topics);
      team_chat_reply (tc);
      return;
    }
  sub = json_object_new ();
  json_object_set_array_member (sub, "topics", topics);
  sub_node = ens_node_take_object (sub);
  ens_http_on_event (call, team_chat_event, tc);
  ens_http_core (call, NULL, "subscribe", sub_node, 0, team_chat_subscribed, tc);
}

static void
route_team_chat (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  const char *message, *mode;
  gboolean has_timeout;
  double timeout = TEAM_CHAT_DEFAULT_S;
  TeamChat *tc;

  if (body == NULL || !ens_seed_get_string (call, body, "message", TRUE, &message) ||
      !ens_seed_get_string (call, body, "moderation_mode", FALSE, &mode) ||
      !ens_seed_get_number (call, body, "timeout", 0.001, TEAM_CHAT_MAX_S, "a number of seconds from 0.001 to 3600",
                   &has_timeout, &timeout))
    return;
  tc = g_new0 (TeamChat, 1);
  tc->call = call;
  tc->message = g_strdup (message);
  tc->moderation_mode = g_strdup (mode);
  tc->timeout_ms = (guint) (timeout * 1000.0);
  tc->members = g_ptr_array_new_with_free_func ((GDestroyNotify) member_free);
  tc->responses = json_object_new ();
  tc->errors = json_object_new ();
  ens_seed_attach_state (call, "ens-team-chat", tc, team_chat_free);
  ens_http_on_disconnect (call, team_chat_gone, tc);
  ens_http_core (call, NULL, "sessions.list", NULL, 0, team_chat_listed, tc);
}

/* ------------------------------------------------------------------ the table */

const EnsHttpRoute ens_http_routes_rhetor[] = {
  { "POST", "/api/ai/socket/create", route_rhetor_create, "rhetor",
    "Create an AI socket (a session) {name | specialist?, model?, provider?, system?} -> {socket_id, websocket_url}",
    "{\"type\":\"object\",\"properties\":{\"name\":" STR ",\"specialist\":" STR ",\"model\":" STR ",\"provider\":" STR
    ",\"system\":" STR "}}", FALSE },
  { "GET", "/api/ai/specialists", route_rhetor_specialists, "rhetor",
    "AI sockets {count, specialists:[{id, name, active, status, model, ...}]}", NULL, FALSE },
  { "POST", "/api/ai/specialists/{id}/message", route_rhetor_message, "rhetor",
    "Send {message, temperature?} to an AI socket and wait for {response, socket_id, model, usage}",
    "{\"type\":\"object\",\"required\":[\"message\"],\"properties\":{\"message\":" STR
    ",\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2}}}", FALSE },
  { "POST", "/api/team-chat", route_team_chat, "rhetor",
    "Send {message, moderation_mode?, timeout? (s, default 30)} to every active AI socket at once -> "
    "{responses:{<id>:{content, model, ...}}, errors, timed_out}",
    "{\"type\":\"object\",\"required\":[\"message\"],\"properties\":{\"message\":" STR ",\"moderation_mode\":" STR
    ",\"timeout\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":3600}}}", FALSE },
  { NULL },
};
