/* ens-http-routes-rhetor.c — Rhetor / aish over HTTP: /api/ai/socket/create,
 * /api/ai/specialists, /api/ai/specialists/{id}/message, /api/team-chat.  A
 * Rhetor "AI socket" is a core session whose orchestrator_id is "rhetor" and
 * whose session_type is the specialist's name; its id is the socket id.  The
 * roster of specialists a fresh daemon serves (apollo-ai, athena-ai, ...) and
 * the names each answers to are the dialect's data (ens-dialect-rhetor.c);
 * each is made (sessions.ensure) when a route first needs it. */
#include "ens-http-seeds.h"
#include "ens-dialect.h"
#include "ens-host-config.h"

#include <string.h>

#define RHETOR_ORCHESTRATOR ENS_RHETOR_ORCHESTRATOR
#define RHETOR (&ens_dialect_rhetor)
#define ROUTE_CREATE "POST /api/ai/socket/create"
#define ROUTE_LIST "GET /api/ai/specialists"
#define ROUTE_MESSAGE "POST /api/ai/specialists/{id}/message"
#define ROUTE_TEAM_CHAT "POST /api/team-chat"
#define rhetor_socket ens_dialect_rhetor_is_socket
#define rhetor_active ens_dialect_rhetor_active

#define TEAM_CHAT_DEFAULT_S 30.0

/* (transfer full) the setting rhetor-specialists. */
static char **
rhetor_roster (EnsHttpCall *call)
{
  return ens_host_config_strv (ens_http_host (call), ens_http_self (call), "rhetor-specialists");
}

/* ---- the roster made on demand: sessions.ensure for each name in turn,
 * then @then.  A name that cannot be a session is skipped. */

typedef void (*RosterThen) (EnsHttpCall *call, gpointer data);

typedef struct {
  char **names;
  guint next;
  RosterThen then;
  gpointer data;
} RosterEnsure;

static void
roster_ensure_free (gpointer data)
{
  RosterEnsure *re = data;
  g_strfreev (re->names);
  g_free (re);
}

static void
roster_step (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  RosterEnsure *re = data;
  g_autoptr (JsonNode) ensure = NULL;

  (void) answer; /* an error (an id taken by another kind of session) leaves that name unserved */
  while (re->names[re->next] && !ens_dialect_rhetor_name_valid (re->names[re->next]))
    re->next++;
  if (re->names[re->next] == NULL)
    {
      re->then (call, re->data);
      return;
    }
  ensure = ens_dialect_rhetor_ensure_data (re->names[re->next++]);
  ens_http_core (call, NULL, "sessions.ensure", ensure, 0, roster_step, re);
}

/* Ensures @names (transfer none; NULL or empty: none), then calls @then. */
static void
roster_ensure (EnsHttpCall *call, char **names, RosterThen then, gpointer data)
{
  RosterEnsure *re = g_new0 (RosterEnsure, 1);

  re->names = g_strdupv (names ? names : (char *[]){ NULL });
  re->then = then;
  re->data = data;
  ens_http_attach (call, "ens-rhetor-roster", re, roster_ensure_free);
  roster_step (call, NULL, re);
}

/* A core error in Rhetor's words: an unknown specialist is 404 with
 * FastAPI's {"detail"} beside Ensemble's {"error"}. */
static void
rhetor_error (EnsHttpCall *call, const char *route, EnsMessage *answer, const char *asked)
{
  JsonObject *out, *err;

  if (asked == NULL || g_strcmp0 (answer->error_code, "SESSION_NOT_FOUND") != 0)
    {
      ens_seed_dialect_error (call, ens_dialect_find (RHETOR, route, NULL, NULL), answer);
      return;
    }
  out = json_object_new ();
  err = json_object_new ();
  json_object_set_string_member (err, "code", answer->error_code);
  json_object_set_string_member (err, "message", answer->error_message ? answer->error_message : "no such specialist");
  if (answer->error_details)
    json_object_set_member (err, "details", json_node_copy (answer->error_details));
  else
    json_object_set_null_member (err, "details");
  json_object_set_object_member (out, "error", err);
  {
    g_autofree char *detail = g_strdup_printf ("Specialist %s not found", asked);
    json_object_set_string_member (out, "detail", detail);
  }
  ens_seed_reply_object (call, 404, out);
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
rhetor_created (EnsHttpCall *call, JsonObject *out, JsonObject *answer, gpointer data)
{
  g_autofree char *url = rhetor_ws_url (call, ens_member_string (answer, "session_id"));

  (void) data;
  json_object_set_string_member (out, "websocket_url", url);
}

/* POST /api/ai/socket/create {name | specialist | ai_name?, system | prompt?,
 * model?, provider?, context?} (aish's design names ai_name and prompt) */
static void
route_rhetor_create (EnsHttpCall *call)
{
  ens_seed_run (call, RHETOR, ROUTE_CREATE, rhetor_created, NULL);
}

/* One specialist as Rhetor lists it: a roster member with its roles, an AI
 * socket a client made with its name. */
static JsonObject *
rhetor_specialist (EnsHttpCall *call, JsonObject *rec, const char *const *roster)
{
  g_autoptr (JsonNode) node = ens_dialect_rhetor_out (ROUTE_LIST, rec);
  JsonObject *out = json_object_ref (json_node_get_object (node));
  const char *id = ens_member_string (rec, "session_id");
  const char *component = ens_dialect_rhetor_component (roster, id);
  const char *type = ens_member_string_or (rec, "session_type", "assistant");
  g_autofree char *url = rhetor_ws_url (call, id);

  ens_dialect_rhetor_describe (out, component ? component : type);
  if (component == NULL)
    json_object_set_string_member (out, "name", type); /* a socket is called what its client named it */
  json_object_set_string_member (out, "websocket_url", url);
  return out;
}

typedef struct {
  char **roster;
  gboolean active_only;
} ListCall;

static void
list_call_free (gpointer data)
{
  ListCall *lc = data;
  g_strfreev (lc->roster);
  g_free (lc);
}

static void
rhetor_listed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  ListCall *lc = data;
  JsonObject *in = ens_seed_answer_object (answer), *out;
  JsonArray *sessions, *list;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      rhetor_error (call, ROUTE_TEAM_CHAT, answer, NULL);
      return;
    }
  sessions = ens_member_array (in, "sessions");
  list = json_array_new ();
  /* the roster first, in the setting's order; then the sockets clients made */
  for (guint pass = 0; pass < 2; pass++)
    for (guint r = 0; r < (pass == 0 ? g_strv_length (lc->roster) : 1); r++)
      for (guint i = 0; sessions && i < json_array_get_length (sessions); i++)
        {
          JsonObject *rec = ens_array_object (sessions, i);
          const char *id = ens_member_string_or (rec, "session_id", "");
          const char *component;
          if (!rhetor_socket (rec) || (lc->active_only && !rhetor_active (rec)))
            continue;
          component = ens_dialect_rhetor_component ((const char *const *) lc->roster, id);
          if (pass == 0 ? (component == NULL || strcmp (component, lc->roster[r]) != 0) : component != NULL)
            continue;
          json_array_add_object_element (list, rhetor_specialist (call, rec, (const char *const *) lc->roster));
        }
  out = json_object_new ();
  json_object_set_int_member (out, "count", json_array_get_length (list));
  json_object_set_array_member (out, "specialists", list);
  ens_seed_reply_object (call, 200, out);
}

static void
rhetor_list (EnsHttpCall *call, gpointer data)
{
  ens_http_core (call, NULL, "sessions.list", NULL, 0, rhetor_listed, data);
}

/* GET /api/ai/specialists (?active_only=true) */
static void
route_rhetor_specialists (EnsHttpCall *call)
{
  ListCall *lc = g_new0 (ListCall, 1);
  const char *active_only = ens_http_query (call, "active_only");

  lc->roster = rhetor_roster (call);
  lc->active_only = active_only && (g_ascii_strcasecmp (active_only, "true") == 0 || strcmp (active_only, "1") == 0);
  ens_http_attach (call, "ens-rhetor-list", lc, list_call_free);
  roster_ensure (call, lc->roster, rhetor_list, lc);
}

/* ---- POST /api/ai/specialists/{id}/message {message, temperature?}: the
 * id resolved (a roster id, one of its names, or a socket id), watch
 * session.<id>.*, run the message as the session's task (queued behind a
 * running one), answer with its task_completed (or task_failed). */

typedef struct {
  char *asked;     /* the id as the client gave it */
  char *socket_id; /* the session it resolved to */
  char *component; /* its roster component, or NULL */
  char *task_id;   /* from the execute ack; events of other tasks are not ours */
  JsonNode *execute;
  gboolean done;
} MessageCall;

static void
message_call_free (gpointer data)
{
  MessageCall *mc = data;
  g_free (mc->asked);
  g_free (mc->socket_id);
  g_free (mc->component);
  g_free (mc->task_id);
  g_clear_pointer (&mc->execute, json_node_unref);
  g_free (mc);
}

static void
message_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  MessageCall *mc = data;
  JsonObject *ev = ens_seed_answer_object (event);
  const char *type;

  if (mc->done || mc->task_id == NULL || ev == NULL ||
      g_strcmp0 (ens_member_string_or (ev, "taskId", ""), mc->task_id) != 0)
    return;
  type = ens_member_string_or (ev, "type", "");
  if (strcmp (type, "task_completed") == 0)
    {
      g_autoptr (JsonNode) out = ens_dialect_rhetor_out (ROUTE_MESSAGE, ev);
      mc->done = TRUE;
      ens_http_on_event (call, NULL, NULL);
      ens_http_reply_json (call, 200, out);
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
      rhetor_error (call, ROUTE_MESSAGE, answer, mc->asked);
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
      rhetor_error (call, ROUTE_MESSAGE, answer, NULL);
      return;
    }
  ens_http_core (call, NULL, "sessions.execute", mc->execute, 0, message_executed, mc);
}

static void
message_start (EnsHttpCall *call, gpointer data)
{
  MessageCall *mc = data;
  JsonObject *sub;
  JsonArray *topics;
  g_autoptr (JsonNode) sub_node = NULL;
  g_autofree char *topic = g_strdup_printf ("session.%s.*", mc->socket_id);

  sub = json_object_new ();
  topics = json_array_new ();
  json_array_add_string_element (topics, topic);
  json_object_set_array_member (sub, "topics", topics);
  sub_node = ens_node_take_object (sub);
  ens_http_on_event (call, message_event, mc);
  ens_http_core (call, NULL, "subscribe", sub_node, 0, message_subscribed, mc);
}

static void
route_rhetor_message (EnsHttpCall *call)
{
  g_autoptr (JsonNode) params = NULL;
  MessageCall *mc;
  g_auto (GStrv) roster = NULL;
  char *resolved;

  if (ens_seed_request (call, RHETOR, ROUTE_MESSAGE, &params) == NULL)
    return;
  roster = rhetor_roster (call);
  mc = g_new0 (MessageCall, 1);
  mc->asked = g_strdup (ens_http_param (call, "id"));
  resolved = ens_dialect_rhetor_resolve ((const char *const *) roster, mc->asked);
  mc->socket_id = resolved ? resolved : g_strdup (mc->asked);
  mc->component = g_strdup (ens_dialect_rhetor_component ((const char *const *) roster, mc->socket_id));
  ens_http_attach (call, "ens-rhetor-message", mc, message_call_free);
  json_object_set_string_member (json_node_get_object (params), "session_id", mc->socket_id);
  mc->execute = g_steal_pointer (&params);
  if (mc->component)
    roster_ensure (call, (char *[]){ mc->component, NULL }, message_start, mc);
  else
    message_start (call, mc);
}

/* ---- POST /api/team-chat {message, moderation_mode?, target_sockets?,
 * timeout?}: the message runs in each target at once (one task each; a busy
 * one queues it); the answer gathers what came back before the timeout,
 * keyed by specialist or socket id (aish reads responses["<name>-ai"]).
 * Targets: target_sockets when given; else the one specialist a leading
 * "[To <name>] " names (aish's write through team chat), the prefix
 * dropped; else every active specialist and socket. */

typedef struct {
  char *id, *name, *task_id;
  gboolean done;
} Member;

typedef struct {
  EnsHttpCall *call;
  char **roster;
  char *message;         /* as given */
  char *task;            /* as each member runs it */
  char *moderation_mode;
  char **targets;        /* target_sockets, or NULL */
  char *request_id;
  gint64 started_us;
  guint timeout_ms;
  guint timer;
  GPtrArray *members;     /* Member* */
  guint next;             /* the next member to start */
  JsonObject *responses;  /* id -> {content, specialist_id, socket_id, name, model, ...} */
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
  g_strfreev (tc->roster);
  g_free (tc->message);
  g_free (tc->task);
  g_free (tc->moderation_mode);
  g_strfreev (tc->targets);
  g_free (tc->request_id);
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
  g_autofree char *now = NULL;

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
  now = ens_seed_now_iso ();
  out = json_object_new ();
  json_object_set_string_member (out, "request_id", tc->request_id);
  json_object_set_string_member (out, "message", tc->message);
  json_object_set_string_member (out, "moderation_mode", tc->moderation_mode);
  json_object_set_int_member (out, "count", tc->members ? tc->members->len : 0);
  json_object_set_object_member (out, "responses", json_object_ref (tc->responses));
  json_object_set_null_member (out, "synthesis");
  json_object_set_null_member (out, "consensus");
  json_object_set_string_member (out, "timestamp", now);
  json_object_set_double_member (out, "elapsed_time", (g_get_monotonic_time () - tc->started_us) / 1e6);
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

static void
team_chat_member_error (TeamChat *tc, const char *id, const char *code, const char *message)
{
  JsonObject *e = json_object_new ();
  json_object_set_string_member (e, "code", code);
  json_object_set_string_member (e, "error", message ? message : code);
  json_object_set_object_member (tc->errors, id, e);
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
      team_chat_member_error (tc, m->id, answer->error_code, answer->error_message);
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
  json_object_set_string_member (d, "task", tc->task);
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
          g_autoptr (JsonNode) r = ens_dialect_rhetor_out (ROUTE_TEAM_CHAT, ev);
          json_object_set_string_member (json_node_get_object (r), "name", m->name);
          json_object_set_member (tc->responses, m->id, g_steal_pointer (&r));
        }
      else
        team_chat_member_error (tc, m->id, ens_member_string_or (ev, "code", "TASK_FAILED"),
                                ens_member_string_or (ev, "error", ""));
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
      rhetor_error (call, ROUTE_TEAM_CHAT, answer, NULL);
      return;
    }
  tc->timer = g_timeout_add (tc->timeout_ms, team_chat_timeout, tc);
  team_chat_start_next (tc);
}

/* The Rhetor session of @sessions whose id is @id, or NULL. */
static JsonObject *
team_chat_record (JsonArray *sessions, const char *id)
{
  for (guint i = 0; id && sessions && i < json_array_get_length (sessions); i++)
    {
      JsonObject *rec = ens_array_object (sessions, i);
      if (rhetor_socket (rec) && g_strcmp0 (ens_member_string (rec, "session_id"), id) == 0)
        return rec;
    }
  return NULL;
}

/* (transfer full) the session @name names among @sessions: a roster name
 * resolved, else a socket id as it is; NULL when none. */
static char *
team_chat_resolve (TeamChat *tc, JsonArray *sessions, const char *name)
{
  g_autofree char *id = ens_dialect_rhetor_resolve ((const char *const *) tc->roster, name);

  if (id == NULL)
    id = g_strdup (name);
  return team_chat_record (sessions, id) ? g_steal_pointer (&id) : NULL;
}

static void
team_chat_add (TeamChat *tc, JsonArray *sessions, const char *id)
{
  JsonObject *rec = team_chat_record (sessions, id);
  const char *component = ens_dialect_rhetor_component ((const char *const *) tc->roster, id);
  const EnsRhetorSpecialist *known = component ? ens_dialect_rhetor_specialist (component) : NULL;
  Member *m;

  for (guint i = 0; i < tc->members->len; i++)
    if (strcmp (((Member *) g_ptr_array_index (tc->members, i))->id, id) == 0)
      return;
  m = g_new0 (Member, 1);
  m->id = g_strdup (id);
  m->name = g_strdup (known ? known->title : ens_member_string_or (rec, "session_type", ""));
  g_ptr_array_add (tc->members, m);
}

/* "[To <name>] text": (transfer full) the name, *@rest the text after. */
static char *
team_chat_addressee (const char *message, const char **rest)
{
  const char *end;

  if (!g_str_has_prefix (message, "[To ") || (end = strstr (message, "] ")) == NULL || end == message + 4)
    return NULL;
  *rest = end + 2;
  return g_strndup (message + 4, end - (message + 4));
}

static void
team_chat_listed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  TeamChat *tc = data;
  JsonArray *sessions, *topics;
  JsonObject *sub;
  g_autoptr (JsonNode) sub_node = NULL;
  g_autofree char *addressee = NULL;
  const char *rest = NULL;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      tc->replied = TRUE;
      rhetor_error (call, ROUTE_TEAM_CHAT, answer, NULL);
      return;
    }
  sessions = ens_member_array (ens_seed_answer_object (answer), "sessions");
  tc->task = g_strdup (tc->message);
  if (tc->targets)
    for (guint i = 0; tc->targets[i]; i++)
      {
        g_autofree char *id = team_chat_resolve (tc, sessions, tc->targets[i]);
        if (id)
          team_chat_add (tc, sessions, id);
        else
          {
            g_autofree char *text = g_strdup_printf ("Specialist %s not found", tc->targets[i]);
            team_chat_member_error (tc, tc->targets[i], "SESSION_NOT_FOUND", text);
          }
      }
  else if ((addressee = team_chat_addressee (tc->message, &rest)) != NULL)
    {
      g_autofree char *id = team_chat_resolve (tc, sessions, addressee);
      if (id)
        {
          g_free (tc->task);
          tc->task = g_strdup (rest);
          team_chat_add (tc, sessions, id);
        }
    }
  if (tc->targets == NULL && tc->members->len == 0)
    for (guint i = 0; sessions && i < json_array_get_length (sessions); i++)
      {
        JsonObject *rec = ens_array_object (sessions, i);
        if (rhetor_socket (rec) && rhetor_active (rec))
          team_chat_add (tc, sessions, ens_member_string (rec, "session_id"));
      }
  if (tc->members->len == 0)
    {
      team_chat_reply (tc);
      return;
    }
  topics = json_array_new ();
  for (guint i = 0; i < tc->members->len; i++)
    {
      g_autofree char *topic = g_strdup_printf ("session.%s.*", ((Member *) g_ptr_array_index (tc->members, i))->id);
      json_array_add_string_element (topics, topic);
    }
  sub = json_object_new ();
  json_object_set_array_member (sub, "topics", topics);
  sub_node = ens_node_take_object (sub);
  ens_http_on_event (call, team_chat_event, tc);
  ens_http_core (call, NULL, "subscribe", sub_node, 0, team_chat_subscribed, tc);
}

static void
team_chat_list (EnsHttpCall *call, gpointer data)
{
  ens_http_core (call, NULL, "sessions.list", NULL, 0, team_chat_listed, data);
}

static void
route_team_chat (EnsHttpCall *call)
{
  g_autoptr (JsonNode) params = NULL;
  JsonObject *p;
  JsonArray *targets;
  TeamChat *tc;

  if (ens_seed_request (call, RHETOR, ROUTE_TEAM_CHAT, &params) == NULL)
    return;
  p = json_node_get_object (params);
  tc = g_new0 (TeamChat, 1);
  tc->call = call;
  tc->roster = rhetor_roster (call);
  tc->message = g_strdup (ens_member_string (p, "task"));
  tc->moderation_mode = g_strdup (ens_member_string (p, "moderation_mode"));
  if ((targets = ens_member_array (p, "targets")))
    {
      tc->targets = g_new0 (char *, json_array_get_length (targets) + 1);
      for (guint i = 0; i < json_array_get_length (targets); i++)
        tc->targets[i] = g_strdup (json_array_get_string_element (targets, i));
    }
  tc->request_id = g_strdup_printf ("team-chat-%" G_GINT64_FORMAT, g_get_real_time () / 1000);
  tc->started_us = g_get_monotonic_time ();
  tc->timeout_ms = (guint) (ens_member_double (p, "timeout", TEAM_CHAT_DEFAULT_S) * 1000.0 + 0.5);
  if (tc->timeout_ms == 0)
    tc->timeout_ms = 1;
  tc->members = g_ptr_array_new_with_free_func ((GDestroyNotify) member_free);
  tc->responses = json_object_new ();
  tc->errors = json_object_new ();
  ens_http_attach (call, "ens-team-chat", tc, team_chat_free);
  ens_http_on_disconnect (call, team_chat_gone, tc);
  roster_ensure (call, tc->roster, team_chat_list, tc);
}

/* ------------------------------------------------------------------ the table */

const EnsHttpRoute ens_http_routes_rhetor[] = {
  { "POST", "/api/ai/socket/create", route_rhetor_create, "rhetor",
    "Create an AI socket (a session) {name | specialist | ai_name?, model?, provider?, system | prompt?, context?} -> "
    "{socket_id, websocket_url}",
    "{\"type\":\"object\",\"properties\":{\"name\":" STR ",\"specialist\":" STR ",\"ai_name\":" STR ",\"model\":" STR
    ",\"provider\":" STR ",\"system\":" STR ",\"prompt\":" STR ",\"context\":{\"type\":\"object\"}}}", FALSE },
  { "GET", "/api/ai/specialists", route_rhetor_specialists, "rhetor",
    "The specialists (the roster, then AI sockets) {count, specialists:[{id, name, type, component_id, active, status, "
    "model, capabilities, ...}]}; ?active_only=true", NULL, FALSE },
  { "POST", "/api/ai/specialists/{id}/message", route_rhetor_message, "rhetor",
    "Send {message, temperature?} to a specialist (apollo-ai, apollo, rhetor-orchestrator, a socket id) and wait for "
    "{success, specialist_id, response, socket_id, model, usage}",
    "{\"type\":\"object\",\"required\":[\"message\"],\"properties\":{\"message\":" STR
    ",\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2}}}", FALSE },
  { "POST", "/api/team-chat", route_team_chat, "rhetor",
    "Send {message, moderation_mode?, target_sockets?, timeout? (s, default 30)} to the targets, the one a leading "
    "\"[To <name>] \" names, or every active specialist -> {request_id, responses:{<id>:{content, model, ...}}, errors, "
    "timed_out, elapsed_time}",
    "{\"type\":\"object\",\"required\":[\"message\"],\"properties\":{\"message\":" STR ",\"moderation_mode\":" STR
    ",\"target_sockets\":" STRV ",\"timeout\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":3600}}}", FALSE },
  { NULL },
};
