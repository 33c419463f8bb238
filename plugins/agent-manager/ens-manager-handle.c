/* agent-manager: requests — the actions' parameters, and the JSON views of
 * agents every answer is made of.
 *
 * Actions: list, status, start, stop, restart, check_dependencies,
 * validate_service_health, restart_with_dependencies. */
#include "ens-manager.h"

#include <stdarg.h>

/* ------------------------------------------------------------ JSON views */

char *
ens_manager_iso_time (gint64 us)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
  g_autoptr (GDateTime) t2 = t ? g_date_time_add (t, us % G_USEC_PER_SEC) : NULL;

  return t2 ? g_date_time_format_iso8601 (t2) : g_strdup ("");
}

JsonNode *
ens_manager_object_node (JsonObject **obj)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  *obj = json_object_new ();
  json_node_take_object (node, *obj);
  return node;
}

JsonArray *
ens_manager_names (GPtrArray *agents)
{
  JsonArray *array = json_array_new ();

  for (guint i = 0; agents && i < agents->len; i++)
    json_array_add_string_element (array, ((Agent *) g_ptr_array_index (agents, i))->name);
  return array;
}

static JsonArray *
strv_array (char **strv)
{
  JsonArray *array = json_array_new ();

  for (guint i = 0; strv && strv[i]; i++)
    json_array_add_string_element (array, strv[i]);
  return array;
}

JsonNode *
ens_manager_last_exit (Agent *a)
{
  return a->last_exit ? json_node_copy (a->last_exit) : json_node_new (JSON_NODE_NULL);
}

JsonNode *
ens_manager_health_node (Agent *a)
{
  JsonObject *obj;
  JsonNode *node = ens_manager_object_node (&obj);

  if (a->health_known)
    {
      g_autofree char *at = ens_manager_iso_time (a->health_checked_at);
      json_object_set_boolean_member (obj, "ok", a->health_ok);
      json_object_set_string_member (obj, "checked_at", at);
      if (a->health_output && *a->health_output)
        json_object_set_string_member (obj, "output", a->health_output);
    }
  else
    {
      json_object_set_null_member (obj, "ok");
      json_object_set_null_member (obj, "checked_at");
    }
  return node;
}

JsonObject *
ens_manager_entry_brief (Agent *a)
{
  JsonObject *obj = json_object_new ();

  json_object_set_string_member (obj, "name", a->name);
  json_object_set_string_member (obj, "status", ens_manager_state_name (a->state));
  if (a->run)
    json_object_set_int_member (obj, "pid", a->pgid);
  json_object_set_int_member (obj, "restarts", a->restarts);
  json_object_set_array_member (obj, "depends_on", strv_array (a->depends_on));
  if (a->health_check && a->run && a->health_known)
    json_object_set_boolean_member (obj, "healthy", a->health_ok);
  return obj;
}

JsonObject *
ens_manager_entry_full (Agent *a)
{
  JsonObject *obj = ens_manager_entry_brief (a);
  JsonArray *services = json_array_new ();

  if (a->run)
    {
      g_autofree char *at = ens_manager_iso_time (a->started_at);
      json_object_set_string_member (obj, "started_at", at);
    }
  else
    json_object_set_null_member (obj, "started_at");
  json_object_set_member (obj, "last_exit", ens_manager_last_exit (a));
  if (a->health_check)
    json_object_set_member (obj, "health", ens_manager_health_node (a));
  if (a->stopping)
    json_object_set_boolean_member (obj, "stopping", TRUE);
  if (a->last_error)
    json_object_set_string_member (obj, "last_error", a->last_error);
  json_object_set_int_member (obj, "consecutive_failures", a->failures);
  json_object_set_int_member (obj, "max_restarts", a->max_restarts);
  json_object_set_string_member (obj, "restart", ens_manager_restart_name (a->restart));
  json_object_set_boolean_member (obj, "autostart", a->autostart);
  json_object_set_array_member (obj, "command", strv_array (a->command));
  if (a->cwd)
    json_object_set_string_member (obj, "cwd", a->cwd);
  json_object_set_array_member (obj, "dependents", ens_manager_names (a->dependents));
  for (guint i = 0; i < a->services->len; i++)
    {
      Service *s = g_ptr_array_index (a->services, i);
      JsonObject *so = json_object_new ();

      json_object_set_string_member (so, "name", s->name);
      if (s->known)
        {
          g_autofree char *at = ens_manager_iso_time (s->checked_at);
          json_object_set_boolean_member (so, "ok", s->ok);
          json_object_set_string_member (so, "status", s->status);
          json_object_set_string_member (so, "checked_at", at);
        }
      else
        json_object_set_null_member (so, "ok");
      json_array_add_object_element (services, so);
    }
  json_object_set_array_member (obj, "services", services);
  return obj;
}

/* ------------------------------------------------------------ answers */

void
ens_manager_respond_object (Manager *m, EnsResponder *responder, JsonObject *obj)
{
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (node, obj);
  m->host->respond (responder, node);
}

void
ens_manager_respond_error (Manager *m, EnsResponder *responder, const char *code, JsonObject *details, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *message = NULL;
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  va_start (ap, fmt);
  message = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  json_node_take_object (node, details ? details : json_object_new ());
  m->host->respond_error (responder, code, message, node);
}

static void
invalid_param (Manager *m, EnsResponder *responder, const char *field, const char *expected)
{
  JsonObject *d = json_object_new ();

  json_object_set_string_member (d, "field", field);
  json_object_set_string_member (d, "expected", expected);
  ens_manager_respond_error (m, responder, ENS_ERR_INVALID_PARAMETERS, d, "invalid parameter \"%s\": expected %s",
                             field, expected);
}

/* ------------------------------------------------------------ parameters */

static gboolean
get_bool_param (Manager *m, EnsResponder *responder, JsonObject *params, const char *field, gboolean def,
                gboolean *out)
{
  JsonNode *n = params ? json_object_get_member (params, field) : NULL;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      *out = def;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    {
      invalid_param (m, responder, field, "a boolean");
      return FALSE;
    }
  *out = json_node_get_boolean (n);
  return TRUE;
}

static Agent *
get_agent_param (Manager *m, EnsResponder *responder, JsonObject *params)
{
  JsonNode *n = params ? json_object_get_member (params, "agent_name") : NULL;
  const char *name;
  Agent *a;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING ||
      *(name = json_node_get_string (n)) == '\0')
    {
      invalid_param (m, responder, "agent_name", "the name of an agent of the registry (a non-empty string)");
      return NULL;
    }
  a = g_hash_table_lookup (m->by_name, name);
  if (a == NULL)
    {
      JsonObject *d = json_object_new ();
      json_object_set_string_member (d, "agent_name", name);
      json_object_set_array_member (d, "known", ens_manager_names (m->agents));
      ens_manager_respond_error (m, responder, ENS_ERR_NOT_FOUND, d, "no agent \"%s\" in the manager's registry", name);
    }
  return a;
}

/* ------------------------------------------------------------ actions */

/* Every action but list names an agent of the registry (@a); each answers
 * @responder, now or once its operation completes. */
typedef void (*ActionFunc) (Manager *m, EnsMessage *request, EnsResponder *responder, JsonObject *params, Agent *a);

static void
action_list (Manager *m, EnsMessage *request, EnsResponder *responder, JsonObject *params, Agent *a)
{
  JsonObject *obj = json_object_new ();
  JsonArray *agents = json_array_new ();

  (void) request;
  (void) params;
  (void) a;
  for (guint i = 0; i < m->agents->len; i++)
    json_array_add_object_element (agents, ens_manager_entry_brief (g_ptr_array_index (m->agents, i)));
  json_object_set_array_member (obj, "agents", agents);
  ens_manager_respond_object (m, responder, obj);
}

static void
action_status (Manager *m, EnsMessage *request, EnsResponder *responder, JsonObject *params, Agent *a)
{
  (void) request;
  (void) params;
  ens_manager_respond_object (m, responder, ens_manager_entry_full (a));
}

static void
action_start (Manager *m, EnsMessage *request, EnsResponder *responder, JsonObject *params, Agent *a)
{
  (void) params;
  ens_manager_op_start (m, request, responder, a);
}

static void
action_stop (Manager *m, EnsMessage *request, EnsResponder *responder, JsonObject *params, Agent *a)
{
  gboolean force;
  g_autoptr (GPtrArray) deps = ens_manager_dependents (m, a);
  g_autoptr (GPtrArray) running = g_ptr_array_new ();

  if (!get_bool_param (m, responder, params, "force", FALSE, &force))
    return;
  for (guint i = 0; i < deps->len; i++)
    if (ens_manager_agent_active (g_ptr_array_index (deps, i)))
      g_ptr_array_add (running, g_ptr_array_index (deps, i));
  if (running->len > 0 && !force)
    {
      JsonObject *d = json_object_new ();
      json_object_set_string_member (d, "agent_name", a->name);
      json_object_set_array_member (d, "dependents", ens_manager_names (running));
      ens_manager_respond_error (m, responder, "DEPENDENTS_RUNNING", d,
                                 "agent \"%s\" has %u running dependent(s) (first: \"%s\"); stop them first or pass "
                                 "force:true",
                                 a->name, running->len, ((Agent *) g_ptr_array_index (running, 0))->name);
      return;
    }
  ens_manager_op_stop (m, request, responder, a, running);
}

static void
action_restart (Manager *m, EnsMessage *request, EnsResponder *responder, JsonObject *params, Agent *a)
{
  (void) params;
  ens_manager_op_restart (m, request, responder, a);
}

static void
action_check_dependencies (Manager *m, EnsMessage *request, EnsResponder *responder, JsonObject *params, Agent *a)
{
  (void) params;
  ens_manager_op_check_dependencies (m, request, responder, a);
}

static void
action_validate (Manager *m, EnsMessage *request, EnsResponder *responder, JsonObject *params, Agent *a)
{
  (void) params;
  ens_manager_op_validate (m, request, responder, a);
}

static void
action_restart_with_dependencies (Manager *m, EnsMessage *request, EnsResponder *responder, JsonObject *params,
                                  Agent *a)
{
  gboolean dependency_check, force_restart;

  if (!get_bool_param (m, responder, params, "dependency_check", TRUE, &dependency_check) ||
      !get_bool_param (m, responder, params, "force_restart", FALSE, &force_restart))
    return;
  ens_manager_op_restart_with_dependencies (m, request, responder, a, dependency_check, force_restart);
}

/* The names, in the order of action_funcs. */
const char *const ens_manager_actions[] = {
  "list", "status", "start", "stop", "restart", "check_dependencies", "validate_service_health",
  "restart_with_dependencies", NULL
};

static const ActionFunc action_funcs[] = {
  action_list, action_status, action_start, action_stop, action_restart, action_check_dependencies,
  action_validate, action_restart_with_dependencies,
};

G_STATIC_ASSERT (G_N_ELEMENTS (action_funcs) + 1 == G_N_ELEMENTS (ens_manager_actions));

void
ens_manager_handle (gpointer instance, EnsMessage *request, EnsResponder *responder)
{
  Manager *m = instance;
  const char *action = request->action;
  JsonObject *params = NULL;
  Agent *a = NULL;
  guint i;

  if (request->data && JSON_NODE_HOLDS_OBJECT (request->data))
    params = json_node_get_object (request->data);
  else if (request->data && !JSON_NODE_HOLDS_NULL (request->data))
    {
      invalid_param (m, responder, "data", "an object");
      return;
    }
  for (i = 0; i < G_N_ELEMENTS (action_funcs); i++)
    if (g_strcmp0 (action, ens_manager_actions[i]) == 0)
      break;
  if (i == G_N_ELEMENTS (action_funcs))
    {
      ens_manager_respond_error (m, responder, ENS_ERR_UNKNOWN_ACTION, NULL, "the manager has no action \"%s\"",
                                 action ? action : "");
      return;
    }
  if (action_funcs[i] != action_list && (a = get_agent_param (m, responder, params)) == NULL)
    return;
  action_funcs[i] (m, request, responder, params, a);
}
