/* agent-manager: pending actions — start, stop, restart, check_dependencies,
 * validate_service_health and restart_with_dependencies answer once the
 * agents reached the state they wait for (or failed to, or the request's
 * deadline is near).  Each kick moves every pending action on. */
#include "ens-manager.h"

typedef enum { OP_START, OP_STOP, OP_RESTART, OP_RESTART_DEPS, OP_CHECK_DEPS, OP_VALIDATE } OpKind;
typedef enum { PHASE_CHECK, PHASE_STOP, PHASE_START, PHASE_DONE } OpPhase;

struct _Op {
  Manager *m;
  guint64 serial; /* checks find their op by it: the op may end first */
  EnsResponder *responder;
  OpKind kind;
  OpPhase phase;
  Agent *target;
  GPtrArray *stop_list; /* Agent*, stopped one after the other */
  guint stop_idx;
  GPtrArray *start_list; /* Agent*, waited for until ready */
  GArray *min_gen;       /* per start_list entry: ready with a newer process */
  GPtrArray *skipped;
  guint checks_pending;
  JsonArray *dep_results; /* check phase: one object per dependency */
  gboolean healthy;       /* validate */
  gboolean dependency_check, force_restart;
  guint timeout_id;
};

static void
op_free (Op *op)
{
  g_clear_handle_id (&op->timeout_id, g_source_remove);
  g_clear_pointer (&op->stop_list, g_ptr_array_unref);
  g_clear_pointer (&op->start_list, g_ptr_array_unref);
  g_clear_pointer (&op->min_gen, g_array_unref);
  g_clear_pointer (&op->skipped, g_ptr_array_unref);
  g_clear_pointer (&op->dep_results, json_array_unref);
  g_free (op);
}

static void
op_end (Op *op)
{
  op->phase = PHASE_DONE;
  op->m->ops = g_list_remove (op->m->ops, op);
  op_free (op);
}

static gboolean
op_timeout (gpointer data)
{
  Op *op = data;
  JsonObject *d = json_object_new ();
  JsonArray *waiting = json_array_new ();

  op->timeout_id = 0;
  for (guint i = 0; op->start_list && i < op->start_list->len; i++)
    json_array_add_object_element (waiting, ens_manager_entry_brief (g_ptr_array_index (op->start_list, i)));
  json_object_set_string_member (d, "agent_name", op->target->name);
  json_object_set_array_member (d, "agents", waiting);
  ens_manager_respond_error (op->m, op->responder, ENS_ERR_TIMEOUT, d,
                             "agent \"%s\" did not reach the state asked for in time (%s)", op->target->name,
                             ens_manager_state_name (op->target->state));
  op_end (op);
  return G_SOURCE_REMOVE;
}

static Op *
op_new (Manager *m, EnsMessage *request, EnsResponder *responder, OpKind kind, Agent *target)
{
  Op *op = g_new0 (Op, 1);
  guint timeout_ms = request->timeout_ms;

  if (timeout_ms == 0)
    {
      g_autoptr (GVariant) v = m->host->config_get (m->self, "request-timeout-ms");
      timeout_ms = v && g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32 (v) : 30000;
    }
  op->m = m;
  op->serial = ++m->next_op_serial;
  op->responder = responder;
  op->kind = kind;
  op->target = target;
  op->phase = PHASE_CHECK;
  op->skipped = g_ptr_array_new ();
  /* Answer a little before the core's deadline, with the state reached. */
  op->timeout_id = g_timeout_add (timeout_ms > 500 ? timeout_ms - 250 : timeout_ms, op_timeout, op);
  m->ops = g_list_append (m->ops, op);
  return op;
}

static Op *
op_lookup (Manager *m, guint64 serial)
{
  for (GList *l = m->ops; l; l = l->next)
    if (((Op *) l->data)->serial == serial)
      return l->data;
  return NULL;
}

/* (transfer container) the target and everything that depends on it. */
static GPtrArray *
target_and_dependents (Op *op)
{
  GPtrArray *all = ens_manager_dependents (op->m, op->target);

  g_ptr_array_insert (all, 0, op->target);
  return all;
}

/* (transfer full) the details of a failed start: @a, and the state of
 * @dependency when it failed because of it (else @a's). */
static JsonObject *
start_failure (Agent *a, Agent *dependency)
{
  JsonObject *d = json_object_new ();
  Agent *root = dependency ? dependency : a;

  json_object_set_string_member (d, "agent_name", a->name);
  if (dependency)
    json_object_set_string_member (d, "dependency", dependency->name);
  json_object_set_string_member (d, "status", ens_manager_state_name (root->state));
  json_object_set_member (d, "last_exit", ens_manager_last_exit (root));
  return d;
}

/* The agent that failed first along @a's failed dependencies. */
static Agent *
root_failure (Agent *a)
{
  while (a->failed_dep && a->failed_dep != a)
    a = a->failed_dep;
  return a;
}

static void
op_respond_done (Op *op)
{
  Manager *m = op->m;
  JsonObject *obj;

  switch (op->kind)
    {
    case OP_STOP:
      obj = ens_manager_entry_full (op->target);
      json_object_set_array_member (obj, "stopped", ens_manager_names (op->stop_list));
      break;
    case OP_RESTART_DEPS:
      obj = json_object_new ();
      json_object_set_string_member (obj, "agent_name", op->target->name);
      json_object_set_array_member (obj, "restarted", ens_manager_names (op->start_list));
      json_object_set_array_member (obj, "skipped", ens_manager_names (op->skipped));
      {
        JsonArray *agents = json_array_new ();
        g_autoptr (GPtrArray) all = target_and_dependents (op);

        for (guint i = 0; i < all->len; i++)
          json_array_add_object_element (agents, ens_manager_entry_brief (g_ptr_array_index (all, i)));
        json_object_set_array_member (obj, "agents", agents);
      }
      break;
    default:
      obj = ens_manager_entry_full (op->target);
      break;
    }
  ens_manager_respond_object (m, op->responder, obj);
  op_end (op);
}

/* Moves @op on; it ends (answered) or waits for the next change. */
static void
op_advance (Op *op)
{
  if (op->phase == PHASE_STOP)
    {
      while (op->stop_list && op->stop_idx < op->stop_list->len)
        {
          Agent *a = g_ptr_array_index (op->stop_list, op->stop_idx);

          if (a->run)
            {
              if (!a->stopping)
                ens_manager_stop_agent (a);
              return; /* the exit moves it on */
            }
          if (a->want || a->state != ST_STOPPED)
            ens_manager_stop_agent (a);
          op->stop_idx++;
        }
      if (op->start_list == NULL || op->start_list->len == 0)
        {
          op_respond_done (op);
          return;
        }
      op->phase = PHASE_START;
      op->min_gen = g_array_new (FALSE, FALSE, sizeof (guint));
      for (guint i = 0; i < op->start_list->len; i++)
        {
          Agent *a = g_ptr_array_index (op->start_list, i);
          /* a process already on its way counts; otherwise a new one */
          guint min = a->run && !a->stopping ? a->gen - 1 : a->gen;
          g_array_append_val (op->min_gen, min);
          ens_manager_want (a);
        }
      return; /* the next kick starts them */
    }
  if (op->phase == PHASE_START)
    {
      gboolean all = TRUE;

      for (guint i = 0; i < op->start_list->len; i++)
        {
          Agent *a = g_ptr_array_index (op->start_list, i);

          if (ens_manager_agent_ready (a) && a->gen > g_array_index (op->min_gen, guint, i))
            continue;
          all = FALSE;
          if (a->state == ST_FAILED && a->failed_dep)
            {
              Agent *root = root_failure (a);

              ens_manager_respond_error (op->m, op->responder, "DEPENDENCY_FAILED", start_failure (a, root),
                                         "agent \"%s\" cannot start: its dependency \"%s\" is %s%s%s", a->name,
                                         root->name, ens_manager_state_name (root->state),
                                         root->last_error ? " — " : "", root->last_error ? root->last_error : "");
              op_end (op);
              return;
            }
          if (a->state == ST_FAILED || (a->state == ST_STOPPED && !a->want && !a->stopping))
            {
              ens_manager_respond_error (op->m, op->responder, "START_FAILED", start_failure (a, NULL),
                                         "agent \"%s\" did not start: %s", a->name,
                                         a->last_error ? a->last_error : "it stopped before it was ready");
              op_end (op);
              return;
            }
        }
      if (all)
        op_respond_done (op);
    }
}

void
ens_manager_ops_advance (Manager *m)
{
  GList *copy = g_list_copy (m->ops);

  for (GList *l = copy; l; l = l->next)
    if (g_list_find (m->ops, l->data)) /* an earlier one may not end a later one, but be safe */
      op_advance (l->data);
  g_list_free (copy);
}

void
ens_manager_ops_drop (Manager *m)
{
  g_list_free_full (g_steal_pointer (&m->ops), (GDestroyNotify) op_free);
}

/* ------------------------------------------------------------ check-based actions */

typedef struct {
  guint64 serial; /* of the op */
  guint index;    /* in op->dep_results */
  Service *service;
} DepCheck;

static void begin_restart (Op *op);

static JsonObject *
failing_dependencies (Op *op, gboolean *satisfied)
{
  JsonObject *d = json_object_new ();
  JsonArray *failing = json_array_new ();
  guint n = json_array_get_length (op->dep_results);

  *satisfied = TRUE;
  for (guint i = 0; i < n; i++)
    {
      JsonObject *e = json_array_get_object_element (op->dep_results, i);
      if (!json_object_get_boolean_member (e, "ok"))
        {
          *satisfied = FALSE;
          json_array_add_object_element (failing, json_object_ref (e));
        }
    }
  json_object_set_string_member (d, "agent_name", op->target->name);
  json_object_set_array_member (d, "dependencies", failing);
  return d;
}

static void
dep_checks_done (Op *op)
{
  gboolean satisfied;
  g_autoptr (JsonObject) failing = failing_dependencies (op, &satisfied);

  if (op->kind == OP_CHECK_DEPS)
    {
      JsonObject *obj = json_object_new ();
      json_object_set_string_member (obj, "agent_name", op->target->name);
      json_object_set_boolean_member (obj, "satisfied", satisfied);
      json_object_set_array_member (obj, "dependencies", json_array_ref (op->dep_results));
      ens_manager_respond_object (op->m, op->responder, obj);
      op_end (op);
      return;
    }
  /* restart_with_dependencies with dependency_check */
  if (!satisfied)
    {
      JsonArray *f = json_object_get_array_member (failing, "dependencies");
      JsonObject *first = json_array_get_object_element (f, 0);
      ens_manager_respond_error (op->m, op->responder, "DEPENDENCY_FAILED", json_object_ref (failing),
                                 "agent \"%s\" has unsatisfied dependencies: %s \"%s\" is %s", op->target->name,
                                 json_object_get_string_member (first, "kind"),
                                 json_object_get_string_member (first, "name"),
                                 json_object_get_string_member (first, "status"));
      op_end (op);
      return;
    }
  begin_restart (op);
}

static void
on_dep_check (Manager *m, gpointer data, gboolean ok, const char *status, const char *output)
{
  DepCheck *dc = data;
  Op *op = op_lookup (m, dc->serial);
  JsonObject *e;

  ens_manager_record_service (dc->service, ok, status, output);
  if (op == NULL) /* answered already (timeout) */
    return;
  e = json_array_get_object_element (op->dep_results, dc->index);
  json_object_set_boolean_member (e, "ok", ok);
  json_object_set_string_member (e, "status", status);
  if (output && *output)
    json_object_set_string_member (e, "output", output);
  if (--op->checks_pending == 0)
    dep_checks_done (op);
}

/* Fills op->dep_results for the target's direct dependencies, running the
 * service checks; dep_checks_done() follows (now or later). */
static void
check_dependencies_start (Op *op)
{
  Agent *a = op->target;

  op->dep_results = json_array_new ();
  for (guint i = 0; i < a->deps->len; i++)
    {
      Agent *d = g_ptr_array_index (a->deps, i);
      JsonObject *e = json_object_new ();

      json_object_set_string_member (e, "name", d->name);
      json_object_set_string_member (e, "kind", "agent");
      json_object_set_boolean_member (e, "ok", ens_manager_agent_ready (d));
      json_object_set_string_member (e, "status", ens_manager_state_name (d->state));
      if (d->health_check && d->run && d->health_known)
        json_object_set_boolean_member (e, "healthy", d->health_ok);
      json_array_add_object_element (op->dep_results, e);
    }
  op->checks_pending = a->services->len;
  for (guint i = 0; i < a->services->len; i++)
    {
      Service *s = g_ptr_array_index (a->services, i);
      JsonObject *e = json_object_new ();
      DepCheck *dc = g_new0 (DepCheck, 1);

      json_object_set_string_member (e, "name", s->name);
      json_object_set_string_member (e, "kind", "service");
      json_object_set_boolean_member (e, "ok", FALSE);
      json_object_set_string_member (e, "status", "checking");
      dc->serial = op->serial;
      dc->index = json_array_get_length (op->dep_results);
      dc->service = s;
      json_array_add_object_element (op->dep_results, e);
      ens_manager_check_run (op->m, a, s->check, a->health_timeout_ms, on_dep_check, dc, g_free);
    }
  if (op->checks_pending == 0)
    dep_checks_done (op);
}

static void
validate_done (Op *op)
{
  Agent *a = op->target;
  JsonObject *obj = json_object_new ();
  g_autoptr (GPtrArray) affected = ens_manager_dependents (op->m, a);

  json_object_set_string_member (obj, "agent_name", a->name);
  json_object_set_boolean_member (obj, "healthy", op->healthy);
  json_object_set_string_member (obj, "status", ens_manager_state_name (a->state));
  if (a->health_check)
    json_object_set_member (obj, "health", ens_manager_health_node (a));
  json_object_set_array_member (obj, "affected", ens_manager_names (affected));
  ens_manager_respond_object (op->m, op->responder, obj);
  op_end (op);
}

static void
on_validate_check (Manager *m, gpointer data, gboolean ok, const char *status, const char *output)
{
  Op *op = op_lookup (m, *(guint64 *) data);
  Agent *a;

  (void) status;
  if (op == NULL)
    return;
  a = op->target;
  if (a->run)
    ens_manager_record_health (a, ok, output);
  op->healthy = ok && a->run != NULL;
  validate_done (op);
}

/* restart_with_dependencies, once its dependencies are known to be fine:
 * the target and its dependents that need it, stopped dependents first,
 * started dependencies first. */
static void
begin_restart (Op *op)
{
  g_autoptr (GPtrArray) all = target_and_dependents (op);

  op->start_list = g_ptr_array_new ();
  op->stop_list = g_ptr_array_new ();
  for (guint i = 0; i < all->len; i++)
    {
      Agent *a = g_ptr_array_index (all, i);
      if (op->force_restart || !ens_manager_agent_ready (a))
        g_ptr_array_add (op->start_list, a);
      else
        g_ptr_array_add (op->skipped, a);
    }
  for (guint i = op->start_list->len; i > 0; i--)
    g_ptr_array_add (op->stop_list, g_ptr_array_index (op->start_list, i - 1));
  if (op->start_list->len == 0)
    {
      op_respond_done (op);
      return;
    }
  op->phase = PHASE_STOP;
  ens_manager_changed (op->m);
}

/* ------------------------------------------------------------ the actions */

void
ens_manager_op_start (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a)
{
  Op *op = op_new (m, request, responder, OP_START, a);

  op->phase = PHASE_STOP; /* nothing to stop: straight to starting */
  op->start_list = g_ptr_array_new ();
  if (ens_manager_agent_ready (a))
    g_ptr_array_add (op->skipped, a);
  else
    g_ptr_array_add (op->start_list, a);
  if (op->start_list->len == 0)
    op_respond_done (op);
  else
    op_advance (op);
}

void
ens_manager_op_stop (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a, GPtrArray *dependents)
{
  Op *op = op_new (m, request, responder, OP_STOP, a);

  op->phase = PHASE_STOP;
  op->stop_list = g_ptr_array_new ();
  for (guint i = dependents->len; i > 0; i--) /* dependents first, the last one first */
    g_ptr_array_add (op->stop_list, g_ptr_array_index (dependents, i - 1));
  g_ptr_array_add (op->stop_list, a);
  op_advance (op);
}

void
ens_manager_op_restart (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a)
{
  Op *op = op_new (m, request, responder, OP_RESTART, a);

  op->phase = PHASE_STOP;
  op->stop_list = g_ptr_array_new ();
  op->start_list = g_ptr_array_new ();
  g_ptr_array_add (op->stop_list, a);
  g_ptr_array_add (op->start_list, a);
  op_advance (op);
}

void
ens_manager_op_check_dependencies (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a)
{
  check_dependencies_start (op_new (m, request, responder, OP_CHECK_DEPS, a));
}

void
ens_manager_op_validate (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a)
{
  Op *op = op_new (m, request, responder, OP_VALIDATE, a);

  if (a->run && a->health_check)
    ens_manager_check_run (m, a, a->health_check, a->health_timeout_ms, on_validate_check,
                           g_memdup2 (&op->serial, sizeof op->serial), g_free);
  else
    {
      op->healthy = ens_manager_agent_ready (a);
      validate_done (op);
    }
}

void
ens_manager_op_restart_with_dependencies (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a,
                                          gboolean dependency_check, gboolean force_restart)
{
  Op *op = op_new (m, request, responder, OP_RESTART_DEPS, a);

  op->dependency_check = dependency_check;
  op->force_restart = force_restart;
  if (dependency_check)
    check_dependencies_start (op);
  else
    begin_restart (op);
}

