/* ens-completion.c — completions: acknowledged at once, queued, routed by
 * the active router policy, run on a provider backend with a concurrency
 * limit, streamed as targeted events, settled against the daily budget, and
 * retried on the next-ranked backend when one fails before streaming.
 *
 * Events, delivered only to the requester (and subscribers of
 * "<TOPIC>:<client>"):
 *   COMPLETION_CHUNK  {request_id, chunk, index}
 *   COMPLETION_EVENT  {request_id, type, data}          (tool calls)
 *   COMPLETION_RESULT {request_id, client_id, to, result: {response,
 *                      session_id, model, provider, usage, cost, duration_ms}}
 *                  or {request_id, client_id, to, error, code: "COMPLETION_FAILED", reason}
 */
#include "ens-core.h"

#include <math.h>
#include <string.h>

typedef struct {
  char *name;
  EnsPlugin *plugin;
  JsonObject *info;     /* what backends() said */
  double latency_ms;    /* moving average, starts at the configured value */
  double error_rate;    /* moving average of failures, 0..1 */
  guint consecutive_failures;
  gint64 cooldown_until; /* monotonic us */
  guint running;
  guint max_concurrency;
  guint64 calls, failures, input_tokens, output_tokens;
  double cost;
} EnsBackend;

struct _EnsCompletion {
  gint refs;
  char *request_id;
  EnsMessage *request;    /* as the requester sent it */
  EnsClient *client;      /* requester; NULL once gone (or for sessions) */
  char *client_id;        /* where results go: a client id or agent name */
  JsonNode *params;       /* what the provider gets */
  JsonNode *route;        /* what the router gets */
  GPtrArray *ranking;     /* backend names, fallback order */
  guint attempt;
  EnsBackend *backend;
  GCancellable *cancellable;
  GString *text;
  double reserved;
  gboolean ledger_reserved; /* @reserved is held by the shared ledger */
  gboolean reserving;       /* waiting for the ledger to answer */
  gboolean in_reserve_call; /* inside ledger->reserve() */
  int inline_answer;        /* what the ledger said inside reserve(), -1: nothing yet */
  double estimate_in, estimate_out;
  gint64 queued_us, started_us, first_chunk_us;
  guint timeout_id;
  guint chunks;
  gboolean stream, streamed, timed_out, cancelled, running, finished;
  gboolean over_budget; /* a backend was passed over for the budget */
  char *reasoning;
  char *session_id;       /* echoed in the result (KSI conversation continuity) */
  const EnsCompletionHooks *hooks; /* sessions */
  gpointer hooks_data;
};

typedef struct {
  GHashTable *backends;   /* name -> EnsBackend */
  GPtrArray *routers;     /* EnsPlugin* */
  GQueue queue;           /* EnsCompletion*, waiting */
  GHashTable *active;     /* request_id -> EnsCompletion (queued or running) */
  double spend;           /* today's settled spend */
  double reserved;        /* in flight */
  char *day;              /* "YYYY-MM-DD" of spend */
  guint64 completed, failed, fallbacks;
  /* A budget shared with other daemons (host->budget_ledger_set). */
  const EnsBudgetLedger *ledger;
  gpointer ledger_data;
  EnsPlugin *ledger_plugin;
  double ledger_spent; /* the day's shared spend, as last reported; < 0: unknown */
} EnsCompletions;

static EnsCompletions C;

#define DEFAULT_OUTPUT_TOKENS 512
#define EMA 0.2

/* ---------------------------------------------------------------- budget */

static char *
today (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format (now, "%Y-%m-%d");
}

/* Rolls over at the UTC day boundary: yesterday's spend stays in the store. */
static void
budget_refresh (EnsDaemon *d)
{
  g_autofree char *day = today ();
  g_autofree char *stored = NULL;

  if (C.day && strcmp (C.day, day) == 0)
    return;
  g_free (C.day);
  C.day = g_steal_pointer (&day);
  stored = ens_state_get (d->state, "budget", C.day, NULL);
  C.spend = stored ? g_ascii_strtod (stored, NULL) : 0.0;
}

static double
budget_daily (EnsDaemon *d)
{
  g_autoptr (GVariant) v = ens_config_get (d->config, "daily-budget");
  return v ? g_variant_get_double (v) : 0.0;
}

/* The spend that counts against the budget: the shared one when a ledger
 * keeps it, else this daemon's. */
static double
budget_spent (void)
{
  return C.ledger ? MAX (C.ledger_spent, 0.0) : C.spend;
}

static double
budget_remaining (EnsDaemon *d)
{
  budget_refresh (d);
  return budget_daily (d) - budget_spent () - C.reserved;
}

void
ens_completion_set_ledger (EnsPlugin *self, const EnsBudgetLedger *ledger, gpointer ledger_data)
{
  C.ledger = ledger;
  C.ledger_data = ledger_data;
  C.ledger_plugin = ledger ? self : NULL;
  C.ledger_spent = -1;
}

JsonNode *
ens_completion_budget (EnsDaemon *d)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  double daily = budget_daily (d);

  budget_refresh (d);
  json_object_set_double_member (obj, "daily_budget", daily);
  json_object_set_double_member (obj, "current_spend", budget_spent ());
  json_object_set_double_member (obj, "reserved", C.reserved);
  json_object_set_double_member (obj, "remaining", MAX (0.0, daily - budget_spent () - C.reserved));
  json_object_set_double_member (obj, "utilization_pct",
                                 daily > 0 ? MIN (100.0, 100.0 * budget_spent () / daily) : 0.0);
  json_object_set_string_member (obj, "day", C.day);
  json_object_set_boolean_member (obj, "shared", C.ledger != NULL);
  if (C.ledger)
    {
      /* What this daemon spent itself; current_spend is everyone's. */
      json_object_set_double_member (obj, "node_spend", C.spend);
      json_object_set_string_member (obj, "ledger", ens_plugin_get_desc (C.ledger_plugin)->id);
    }
  return node;
}

static void
budget_settle (EnsDaemon *d, EnsCompletion *c, double actual)
{
  g_autoptr (GError) error = NULL;
  char text[G_ASCII_DTOSTR_BUF_SIZE];

  if (c->ledger_reserved)
    {
      if (C.ledger)
        C.ledger->settle (C.ledger_data, C.day, c->reserved, MAX (actual, 0.0));
      if (actual > 0 && C.ledger_spent >= 0)
        C.ledger_spent += actual; /* until the ledger tells again */
    }
  else
    C.reserved = MAX (0.0, C.reserved - c->reserved);
  c->reserved = 0;
  c->ledger_reserved = FALSE;
  if (actual <= 0)
    return;
  budget_refresh (d);
  C.spend += actual;
  g_ascii_dtostr (text, sizeof text, C.spend);
  if (!ens_state_set (d->state, "budget", C.day, text, &error))
    g_warning ("budget: cannot record spend: %s", error->message);
}

/* ---------------------------------------------------------------- backends */

static double
info_double (JsonObject *info, const char *member, double fallback)
{
  JsonNode *n = info ? json_object_get_member (info, member) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_double (n) : fallback;
}

static void
backend_free (EnsBackend *b)
{
  g_free (b->name);
  json_object_unref (b->info);
  g_free (b);
}

void
ens_completion_add_provider (EnsPlugin *plugin)
{
  const EnsProviderVTable *vt = ens_plugin_get_desc (plugin)->vtable;
  g_autoptr (JsonNode) list = vt->backends (ens_plugin_get_instance (plugin));
  JsonArray *array = list && JSON_NODE_HOLDS_ARRAY (list) ? json_node_get_array (list) : NULL;

  for (guint i = 0; array && i < json_array_get_length (array); i++)
    {
      JsonNode *el = json_array_get_element (array, i);
      JsonObject *info = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      const char *name = info ? ens_json_get_string (info, "name") : NULL;
      EnsBackend *b;

      if (name == NULL || g_hash_table_contains (C.backends, name))
        {
          g_warning ("provider %s: backend %s left out (no name, or the name is taken)",
                     ens_plugin_get_desc (plugin)->id, name ? name : "?");
          continue;
        }
      b = g_new0 (EnsBackend, 1);
      b->name = g_strdup (name);
      b->plugin = plugin;
      b->info = json_object_ref (info);
      b->latency_ms = info_double (info, "latency_ms", 1000);
      b->max_concurrency = (guint) CLAMP (info_double (info, "max_concurrency", 4), 1, 10000);
      g_hash_table_insert (C.backends, b->name, b);
      g_message ("provider backend %s served by %s", b->name, ens_plugin_get_desc (plugin)->id);
    }
}

void
ens_completion_add_router (EnsPlugin *plugin)
{
  g_ptr_array_add (C.routers, plugin);
}

static gboolean
backend_serves (EnsBackend *b, const char *model)
{
  JsonArray *models = json_object_has_member (b->info, "models") ? json_object_get_array_member (b->info, "models") : NULL;

  if (strcmp (b->name, model) == 0)
    return TRUE;
  for (guint i = 0; models && i < json_array_get_length (models); i++)
    if (g_strcmp0 (json_array_get_string_element (models, i), model) == 0)
      return TRUE;
  return FALSE;
}

static JsonNode *
backend_candidate (EnsBackend *b)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;
  double cin = info_double (b->info, "cost_per_1k_input", 0), cout = info_double (b->info, "cost_per_1k_output", 0);

  json_object_iter_init (&iter, b->info);
  while (json_object_iter_next (&iter, &name, &member))
    json_object_set_member (obj, name, json_node_copy (member));
  json_object_set_string_member (obj, "provider", ens_plugin_get_desc (b->plugin)->id);
  json_object_set_double_member (obj, "cost_per_1k", (cin + cout) / 2);
  json_object_set_double_member (obj, "latency_ms", b->latency_ms);
  json_object_set_double_member (obj, "configured_latency_ms", info_double (b->info, "latency_ms", 1000));
  json_object_set_double_member (obj, "error_rate", b->error_rate);
  json_object_set_boolean_member (obj, "cooling_down", b->cooldown_until > g_get_monotonic_time ());
  json_object_set_int_member (obj, "running", b->running);
  return node;
}

JsonNode *
ens_completion_providers (void)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  JsonArray *array = json_array_new ();
  g_autoptr (GList) names = g_list_sort (g_hash_table_get_keys (C.backends), (GCompareFunc) strcmp);

  for (GList *l = names; l; l = l->next)
    {
      EnsBackend *b = g_hash_table_lookup (C.backends, l->data);
      JsonNode *cand = backend_candidate (b);
      JsonObject *co = json_node_get_object (cand);
      json_object_set_int_member (co, "calls", b->calls);
      json_object_set_int_member (co, "failures", b->failures);
      json_object_set_int_member (co, "input_tokens", b->input_tokens);
      json_object_set_int_member (co, "output_tokens", b->output_tokens);
      json_object_set_double_member (co, "cost", b->cost);
      json_array_add_element (array, cand);
    }
  json_object_set_array_member (obj, "providers", array);
  return node;
}

/* ---------------------------------------------------------------- routing */

static EnsPlugin *
active_router (EnsDaemon *d, char **name_out)
{
  g_autofree char *wanted = ens_config_get_path (d->config, "router-policy");

  for (guint i = 0; i < C.routers->len; i++)
    {
      EnsPlugin *p = g_ptr_array_index (C.routers, i);
      if (g_strcmp0 (((const EnsRouterVTable *) ens_plugin_get_desc (p)->vtable)->name, wanted) == 0)
        {
          *name_out = g_steal_pointer (&wanted);
          return p;
        }
    }
  *name_out = g_steal_pointer (&wanted);
  return NULL;
}

/* (transfer full) the router's decision for @route, ranking included; NULL
 * with @code/@message on failure. */
static JsonNode *
decide (EnsDaemon *d, JsonNode *route, const char **code, char **message)
{
  g_autofree char *policy = NULL;
  EnsPlugin *router = active_router (d, &policy);
  g_autoptr (JsonNode) candidates = json_node_new (JSON_NODE_ARRAY);
  JsonArray *array = json_array_new ();
  g_autoptr (GError) error = NULL;
  JsonNode *decision;
  GHashTableIter iter;
  gpointer value;

  json_node_take_array (candidates, array);
  g_hash_table_iter_init (&iter, C.backends);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    json_array_add_element (array, backend_candidate (value));
  if (json_array_get_length (array) == 0)
    {
      *code = "NO_PROVIDER";
      *message = g_strdup ("no provider plugin is loaded");
      return NULL;
    }
  if (router == NULL)
    {
      *code = "NO_ROUTER";
      *message = g_strdup_printf ("the router policy \"%s\" (setting router-policy) is not loaded", policy);
      return NULL;
    }
  json_object_set_double_member (json_node_get_object (route), "budget_remaining", budget_remaining (d));
  decision = ((const EnsRouterVTable *) ens_plugin_get_desc (router)->vtable)
               ->choose (ens_plugin_get_instance (router), route, candidates, &error);
  if (decision == NULL || !JSON_NODE_HOLDS_OBJECT (decision) ||
      ens_json_get_string (json_node_get_object (decision), "provider") == NULL)
    {
      *code = "NO_PROVIDER";
      *message = g_strdup_printf ("no provider fits: %s", error ? error->message : "the router chose none");
      g_clear_pointer (&decision, json_node_unref);
      return NULL;
    }
  json_object_set_string_member (json_node_get_object (decision), "policy", policy);
  return decision;
}

/* ---------------------------------------------------------------- lifecycle */

static EnsCompletion *
completion_ref (EnsCompletion *c)
{
  c->refs++;
  return c;
}

static void
completion_unref (EnsCompletion *c)
{
  if (--c->refs > 0)
    return;
  g_free (c->request_id);
  if (c->request)
    ens_message_unref (c->request);
  g_free (c->client_id);
  json_node_unref (c->params);
  json_node_unref (c->route);
  g_ptr_array_unref (c->ranking);
  g_clear_object (&c->cancellable);
  g_string_free (c->text, TRUE);
  g_free (c->reasoning);
  g_free (c->session_id);
  g_free (c);
}

/* A targeted event to the requester; sessions get theirs through hooks. */
static void
emit (EnsCompletion *c, const char *topic, JsonNode *data)
{
  if (c->client_id)
    ens_dispatch_publish ("ensembled", topic, data, c->client_id);
}

static JsonNode *
event_data (EnsCompletion *c, JsonObject **obj)
{
  JsonNode *node = ens_json_object_node (obj);
  json_object_set_string_member (*obj, "request_id", c->request_id);
  return node;
}

static void pump (EnsDaemon *d);

/* Ends @c for good: result or failure to the requester, then gone. */
static void
conclude (EnsDaemon *d, EnsCompletion *c, JsonNode *result, const char *code, const char *message)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = event_data (c, &obj);

  c->finished = TRUE;
  if (c->timeout_id)
    g_source_remove (c->timeout_id);
  c->timeout_id = 0;
  g_hash_table_remove (C.active, c->request_id);
  if (c->client_id)
    {
      json_object_set_string_member (obj, "client_id", c->client_id);
      json_object_set_string_member (obj, "to", c->client_id);
    }
  if (result)
    {
      C.completed++;
      json_object_set_member (obj, "result", json_node_ref (result));
    }
  else
    {
      C.failed++;
      json_object_set_string_member (obj, "error", message);
      json_object_set_string_member (obj, "code", "COMPLETION_FAILED");
      json_object_set_string_member (obj, "reason", code);
    }
  emit (c, "COMPLETION_RESULT", data);
  if (g_strcmp0 (code, "BUDGET_EXCEEDED") == 0)
    {
      /* Operators watch for this (D-Bus BudgetExceeded). */
      JsonObject *bo;
      g_autoptr (JsonNode) bnode = ens_json_object_node (&bo);
      json_object_set_string_member (bo, "request_id", c->request_id);
      json_object_set_double_member (bo, "remaining", MAX (0.0, budget_remaining (d)));
      ens_dispatch_publish ("ensembled", "ensemble.budget.exceeded", bnode, NULL);
    }
  if (c->hooks && c->hooks->done)
    c->hooks->done (c->hooks_data, c->request_id, result, code, message);
  completion_unref (c);
  pump (d);
}

static gboolean
timeout_cb (gpointer data)
{
  EnsCompletion *c = data;

  c->timeout_id = 0;
  c->timed_out = TRUE;
  g_cancellable_cancel (c->cancellable); /* the provider answers CANCELLED; we say TIMEOUT */
  return G_SOURCE_REMOVE;
}

static double
estimate_cost (EnsBackend *b, EnsCompletion *c)
{
  return c->estimate_in / 1000.0 * info_double (b->info, "cost_per_1k_input", 0) +
         c->estimate_out / 1000.0 * info_double (b->info, "cost_per_1k_output", 0);
}

/* Hands @c to backend @b (its slot already counted in b->running). */
static void
launch (EnsCompletion *c, EnsBackend *b)
{
  c->backend = b;
  b->calls++;
  c->running = TRUE;
  c->started_us = g_get_monotonic_time ();
  g_clear_object (&c->cancellable);
  c->cancellable = g_cancellable_new ();
  json_object_set_string_member (json_node_get_object (c->params), "backend", b->name);
  completion_ref (c); /* the provider's, until finish/fail */
  ((const EnsProviderVTable *) ens_plugin_get_desc (b->plugin)->vtable)
    ->complete (ens_plugin_get_instance (b->plugin), b->name, c->params, c, c->cancellable);
}

/* The ledger answered a reservation made for @c while it was not inside
 * try_start(). */
static void
ledger_answer (EnsCompletion *c, gboolean granted)
{
  EnsBackend *b = c->backend;
  EnsDaemon *d = ens_daemon_get ();

  c->reserving = FALSE;
  c->ledger_reserved = granted;
  if (!granted)
    c->reserved = 0;
  if (c->finished || !granted)
    {
      /* Cancelled while asking, or refused: the slot goes back; a refused
       * one tries the next backend of its ranking. */
      b->running--;
      if (granted)
        budget_settle (d, c, 0);
      if (!c->finished)
        {
          c->over_budget = TRUE;
          c->attempt++;
          g_queue_push_head (&C.queue, c);
        }
      pump (d);
    }
  else
    launch (c, b);
  completion_unref (c); /* the reservation's */
}

static void
ledger_reply (gboolean granted, double spent, gpointer user_data)
{
  EnsCompletion *c = user_data;

  if (spent >= 0)
    C.ledger_spent = spent;
  if (c->in_reserve_call)
    c->inline_answer = granted; /* try_start() goes on with it */
  else
    ledger_answer (c, granted);
}

/* Tries to start @c on its current candidate; FALSE if it must keep waiting. */
static gboolean
try_start (EnsDaemon *d, EnsCompletion *c)
{
  while (c->attempt < c->ranking->len)
    {
      EnsBackend *b = g_hash_table_lookup (C.backends, g_ptr_array_index (c->ranking, c->attempt));
      double cost;

      if (b == NULL || b->cooldown_until > g_get_monotonic_time ())
        {
          c->attempt++;
          continue;
        }
      cost = estimate_cost (b, c);
      if (cost > 0 && C.ledger == NULL && cost > budget_remaining (d))
        {
          c->over_budget = TRUE;
          c->attempt++; /* over budget here: a cheaper one in the ranking may do */
          continue;
        }
      if (b->running >= b->max_concurrency)
        return FALSE;

      b->running++;
      c->reserved = cost;
      if (cost > 0 && C.ledger)
        {
          /* The shared ledger decides, atomically for every daemon. */
          c->backend = b;
          c->inline_answer = -1;
          c->in_reserve_call = TRUE;
          budget_refresh (d);
          C.ledger->reserve (C.ledger_data, C.day, cost, budget_daily (d), ledger_reply, completion_ref (c));
          c->in_reserve_call = FALSE;
          if (c->inline_answer < 0)
            {
              c->reserving = TRUE; /* ledger_answer() takes it from here */
              return TRUE;
            }
          completion_unref (c); /* answered already: the reservation's ref */
          if (!c->inline_answer)
            {
              b->running--;
              c->reserved = 0;
              c->over_budget = TRUE;
              c->attempt++;
              continue;
            }
          c->ledger_reserved = TRUE;
        }
      else
        C.reserved += cost;
      launch (c, b);
      return TRUE;
    }
  return TRUE; /* nothing left: concluded by pump */
}

static void
pump (EnsDaemon *d)
{
  for (GList *l = C.queue.head; l;)
    {
      EnsCompletion *c = l->data;
      GList *next = l->next;

      if (try_start (d, c))
        {
          g_queue_delete_link (&C.queue, l);
          if (!c->running && !c->reserving)
            {
              conclude (d, c, NULL, c->over_budget ? "BUDGET_EXCEEDED" : "NO_PROVIDER",
                        c->over_budget ? "what remains of the daily budget does not cover this request on any "
                                         "provider that fits"
                                       : "every provider that fits has failed or is cooling down");
              return; /* conclude pumped again */
            }
        }
      l = next;
    }
}

/* ---------------------------------------------------------------- provider reports */

void
ens_completion_chunk (EnsCompletion *c, const char *text)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = NULL;

  if (c->finished || !c->running || text == NULL || text[0] == '\0')
    return;
  if (!c->streamed)
    c->first_chunk_us = g_get_monotonic_time ();
  c->streamed = TRUE;
  g_string_append (c->text, text);
  if (c->hooks && c->hooks->chunk)
    c->hooks->chunk (c->hooks_data, c->request_id, text);
  if (!c->stream)
    return;
  data = event_data (c, &obj);
  json_object_set_string_member (obj, "chunk", text);
  json_object_set_int_member (obj, "index", c->chunks++);
  json_object_set_string_member (obj, "provider", c->backend->name);
  emit (c, "COMPLETION_CHUNK", data);
}

void
ens_completion_event (EnsCompletion *c, const char *type, JsonNode *payload)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = NULL;

  if (c->finished || !c->running || type == NULL)
    return;
  if (c->hooks && c->hooks->event)
    c->hooks->event (c->hooks_data, c->request_id, type, payload);
  data = event_data (c, &obj);
  json_object_set_string_member (obj, "type", type);
  json_object_set_member (obj, "data", payload ? json_node_copy (payload) : json_node_new (JSON_NODE_NULL));
  emit (c, "COMPLETION_EVENT", data);
}

static void
backend_observe (EnsDaemon *d, EnsBackend *b, gint64 started_us, gboolean failed)
{
  b->running--;
  if (!failed)
    {
      b->latency_ms = (1 - EMA) * b->latency_ms + EMA * ((g_get_monotonic_time () - started_us) / 1000.0);
      b->error_rate *= (1 - EMA);
      b->consecutive_failures = 0;
      return;
    }
  b->failures++;
  b->error_rate = (1 - EMA) * b->error_rate + EMA;
  if (++b->consecutive_failures >= ens_config_get_uint (d->config, "provider-failure-threshold"))
    {
      guint ms = ens_config_get_uint (d->config, "provider-cooldown-ms");
      b->cooldown_until = g_get_monotonic_time () + (gint64) ms * 1000;
      b->consecutive_failures = 0;
      g_warning ("provider backend %s keeps failing: left out of routing for %u ms", b->name, ms);
    }
}

void
ens_completion_finish (EnsCompletion *c, JsonNode *result)
{
  EnsDaemon *d = ens_daemon_get ();
  EnsBackend *b = c->backend;
  JsonObject *in = result && JSON_NODE_HOLDS_OBJECT (result) ? json_node_get_object (result) : NULL;
  JsonObject *usage = in && json_object_has_member (in, "usage") && JSON_NODE_HOLDS_OBJECT (json_object_get_member (in, "usage"))
                        ? json_object_get_object_member (in, "usage") : NULL;
  double input = info_double (usage, "input_tokens", c->estimate_in);
  double output = info_double (usage, "output_tokens", 0);
  double cost = input / 1000.0 * info_double (b->info, "cost_per_1k_input", 0) +
                output / 1000.0 * info_double (b->info, "cost_per_1k_output", 0);
  JsonObject *obj;
  g_autoptr (JsonNode) out = ens_json_object_node (&obj);
  const char *response = in ? ens_json_get_string (in, "response") : NULL;

  if (c->finished || !c->running)
    return;
  c->running = FALSE;
  backend_observe (d, b, c->started_us, FALSE);
  b->input_tokens += (guint64) input;
  b->output_tokens += (guint64) output;
  b->cost += cost;
  budget_settle (d, c, cost);

  /* The result as the requester sees it: the provider's, plus who and what. */
  if (in)
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      json_object_iter_init (&iter, in);
      while (json_object_iter_next (&iter, &name, &member))
        json_object_set_member (obj, name, json_node_copy (member));
    }
  if (response == NULL)
    json_object_set_string_member (obj, "response", c->text->str);
  json_object_set_string_member (obj, "provider", b->name);
  json_object_set_string_member (obj, "provider_plugin", ens_plugin_get_desc (b->plugin)->id);
  if (!json_object_has_member (obj, "model"))
    json_object_set_string_member (obj, "model", b->name);
  json_object_set_double_member (obj, "cost", cost);
  json_object_set_int_member (obj, "duration_ms", (g_get_monotonic_time () - c->queued_us) / 1000);
  json_object_set_int_member (obj, "attempts", c->attempt + 1);
  {
    /* Where the time went: waiting in the daemon, and in the provider. */
    JsonObject *t = json_object_new ();
    gint64 now = g_get_monotonic_time ();
    json_object_set_double_member (t, "received_to_start_ms", (c->started_us - c->request->received_us) / 1000.0);
    if (c->first_chunk_us)
      json_object_set_double_member (t, "provider_first_chunk_ms", (c->first_chunk_us - c->started_us) / 1000.0);
    json_object_set_double_member (t, "provider_ms", (now - c->started_us) / 1000.0);
    json_object_set_object_member (obj, "timings", t);
  }
  if (c->session_id)
    json_object_set_string_member (obj, "session_id", c->session_id);
  else
    json_object_set_member (obj, "session_id", json_node_new (JSON_NODE_NULL));
  conclude (d, c, out, NULL, NULL);
  completion_unref (c); /* the provider's */
}

static gboolean
falls_back (const char *code)
{
  static const char *const codes[] = { "UPSTREAM_ERROR", "TIMEOUT", "RATE_LIMITED", "AUTH_FAILED",
                                       "NOT_CONFIGURED", NULL };
  return g_strv_contains (codes, code);
}

void
ens_completion_fail (EnsCompletion *c, const char *code, const char *message)
{
  EnsDaemon *d = ens_daemon_get ();
  EnsBackend *b = c->backend;

  if (c->finished || !c->running)
    return;
  c->running = FALSE;
  if (c->timed_out && g_strcmp0 (code, "CANCELLED") == 0)
    {
      code = "TIMEOUT";
      message = "the completion did not finish within completion-timeout-ms";
    }
  backend_observe (d, b, c->started_us, g_strcmp0 (code, "CANCELLED") != 0 && g_strcmp0 (code, "BAD_REQUEST") != 0);
  budget_settle (d, c, 0);
  g_message ("completion %s failed on %s: %s: %s", c->request_id, b->name, code, message ? message : "");

  /* Fall back only while nothing was streamed: the requester must never see
   * two answers spliced together. */
  if (!c->cancelled && !c->streamed && falls_back (code) && c->attempt + 1 < c->ranking->len)
    {
      c->attempt++;
      c->timed_out = FALSE;
      C.fallbacks++;
      g_queue_push_head (&C.queue, c);
      pump (d);
    }
  else
    conclude (d, c, NULL, c->cancelled ? "CANCELLED" : code, message ? message : code);
  completion_unref (c); /* the provider's */
}

/* ---------------------------------------------------------------- requests */

static EnsMessage *
invalid (EnsMessage *request, const char *field, const char *expected)
{
  JsonObject *obj;
  g_autoptr (JsonNode) details = ens_json_object_node (&obj);
  g_autofree char *text = g_strdup_printf ("%s must be %s", field, expected);

  json_object_set_string_member (obj, "field", field);
  json_object_set_string_member (obj, "expected", expected);
  return ens_message_new_error (request, ENS_ERR_INVALID_PARAMETERS, text, details);
}

static gboolean
get_number (JsonObject *p, const char *field, double min, double max, double *out)
{
  JsonNode *n = p ? json_object_get_member (p, field) : NULL;
  GType t;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  t = json_node_get_value_type (n);
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
    return FALSE;
  *out = json_node_get_double (n);
  return isfinite (*out) && *out >= min && *out <= max;
}

/* Reads the routing fields shared by "complete" and "route"; NULL when valid. */
static EnsMessage *
read_route (EnsMessage *request, JsonObject *p, JsonObject *route)
{
  const char *task_type = ens_json_get_string (p, "task_type");
  const char *priority = ens_json_get_string (p, "priority");
  double token_count = -1, max_latency = 0;

  if (p && json_object_has_member (p, "task_type") && task_type == NULL)
    return invalid (request, "task_type", "a string");
  if (p && json_object_has_member (p, "priority") &&
      !(priority && (!strcmp (priority, "high") || !strcmp (priority, "medium") || !strcmp (priority, "low"))))
    return invalid (request, "priority", "\"high\", \"medium\" or \"low\"");
  if (!get_number (p, "token_count", 0, 1e9, &token_count))
    return invalid (request, "token_count", "a number from 0 to 1000000000");
  if (!get_number (p, "max_latency", 0, 3.6e6, &max_latency))
    return invalid (request, "max_latency", "a number of milliseconds from 0 to 3600000");
  json_object_set_string_member (route, "task_type", task_type ? task_type : "reasoning");
  json_object_set_string_member (route, "priority", priority ? priority : "medium");
  json_object_set_double_member (route, "max_latency", max_latency);
  if (token_count >= 0)
    json_object_set_double_member (route, "token_count", token_count);
  return NULL;
}

EnsMessage *
ens_completion_route (EnsDaemon *d, EnsMessage *request, JsonObject *p)
{
  JsonObject *route;
  g_autoptr (JsonNode) route_node = ens_json_object_node (&route);
  g_autoptr (JsonNode) decision = NULL;
  EnsMessage *err = read_route (request, p, route);
  const char *code = NULL;
  g_autofree char *message = NULL;

  if (err)
    return err;
  if (!json_object_has_member (route, "token_count"))
    json_object_set_double_member (route, "token_count", 1000);
  if (ens_json_get_string (p, "model") && strcmp (ens_json_get_string (p, "model"), "auto") != 0)
    json_object_set_string_member (route, "model", ens_json_get_string (p, "model"));
  decision = decide (d, route_node, &code, &message);
  if (decision == NULL)
    return ens_message_new_error (request, code, message, NULL);
  return ens_message_new_reply (request, decision);
}

static gboolean
model_known (const char *model)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, C.backends);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (backend_serves (value, model))
      return TRUE;
  return FALSE;
}

/* messages: given, or made from prompt (+ system). */
static JsonNode *
read_messages (EnsMessage *request, JsonObject *p, EnsMessage **err, gsize *chars)
{
  JsonNode *messages = p ? json_object_get_member (p, "messages") : NULL;
  const char *prompt = ens_json_get_string (p, "prompt");
  const char *system = ens_json_get_string (p, "system");
  JsonArray *array;
  JsonNode *node;

  *chars = 0;
  if (messages)
    {
      JsonArray *in = JSON_NODE_HOLDS_ARRAY (messages) ? json_node_get_array (messages) : NULL;
      if (in == NULL || json_array_get_length (in) == 0)
        {
          *err = invalid (request, "messages", "a non-empty list of {role, content}");
          return NULL;
        }
      for (guint i = 0; i < json_array_get_length (in); i++)
        {
          JsonNode *m = json_array_get_element (in, i);
          JsonObject *mo = JSON_NODE_HOLDS_OBJECT (m) ? json_node_get_object (m) : NULL;
          const char *role = mo ? ens_json_get_string (mo, "role") : NULL;
          const char *content = mo ? ens_json_get_string (mo, "content") : NULL;
          if (role == NULL || content == NULL ||
              (strcmp (role, "system") && strcmp (role, "user") && strcmp (role, "assistant") && strcmp (role, "tool")))
            {
              *err = invalid (request, "messages", "a list of {role: system|user|assistant|tool, content: string}");
              return NULL;
            }
          *chars += strlen (content);
        }
      return json_node_copy (messages);
    }
  if (prompt == NULL || prompt[0] == '\0')
    {
      *err = invalid (request, "prompt", "a non-empty string (or give messages)");
      return NULL;
    }
  array = json_array_new ();
  if (system)
    {
      JsonObject *m = json_object_new ();
      json_object_set_string_member (m, "role", "system");
      json_object_set_string_member (m, "content", system);
      json_array_add_object_element (array, m);
      *chars += strlen (system);
    }
  {
    JsonObject *m = json_object_new ();
    json_object_set_string_member (m, "role", "user");
    json_object_set_string_member (m, "content", prompt);
    json_array_add_object_element (array, m);
    *chars += strlen (prompt);
  }
  node = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (node, array);
  return node;
}

EnsCompletion *
ens_completion_submit (EnsDaemon *d, EnsMessage *request, JsonObject *p, EnsClient *client, const char *client_id,
                       const EnsCompletionHooks *hooks, gpointer hooks_data, EnsMessage **answer)
{
  JsonObject *route, *params;
  g_autoptr (JsonNode) decision = NULL;
  g_autoptr (JsonNode) messages = NULL;
  const char *model = ens_json_get_string (p, "model");
  const char *provider = ens_json_get_string (p, "provider");
  const char *code = NULL;
  g_autofree char *message = NULL;
  double max_tokens = DEFAULT_OUTPUT_TOKENS, temperature = -1, token_count = -1, timeout_ms = 0;
  JsonNode *stream = p ? json_object_get_member (p, "stream") : NULL;
  JsonArray *ranking;
  EnsCompletion *c;
  gsize chars;
  JsonObject *ack;
  g_autoptr (JsonNode) ack_node = NULL;

  *answer = NULL;
  c = g_new0 (EnsCompletion, 1);
  c->refs = 1;
  c->route = ens_json_object_node (&route);
  c->params = ens_json_object_node (&params);
  c->ranking = g_ptr_array_new_with_free_func (g_free);
  c->text = g_string_new (NULL);
  c->request = ens_message_ref (request);

#define REFUSE(msg_expr)          \
  G_STMT_START                    \
  {                               \
    *answer = (msg_expr);         \
    completion_unref (c);         \
    return NULL;                  \
  }                               \
  G_STMT_END

  if (p == NULL)
    REFUSE (invalid (request, "data", "an object with prompt or messages"));
  if ((*answer = read_route (request, p, route)))
    REFUSE (*answer);
  messages = read_messages (request, p, answer, &chars);
  if (messages == NULL)
    REFUSE (*answer);
  if (json_object_has_member (p, "model") && model == NULL)
    REFUSE (invalid (request, "model", "a string"));
  if (json_object_has_member (p, "provider") && provider == NULL)
    REFUSE (invalid (request, "provider", "a string"));
  if (stream && !(JSON_NODE_HOLDS_VALUE (stream) && json_node_get_value_type (stream) == G_TYPE_BOOLEAN))
    REFUSE (invalid (request, "stream", "true or false"));
  if (!get_number (p, "max_tokens", 1, 1e6, &max_tokens))
    REFUSE (invalid (request, "max_tokens", "a number from 1 to 1000000"));
  if (!get_number (p, "temperature", 0, 2, &temperature))
    REFUSE (invalid (request, "temperature", "a number from 0 to 2"));
  if (!get_number (p, "timeout_ms", 1, 3.6e6, &timeout_ms))
    REFUSE (invalid (request, "timeout_ms", "a number of milliseconds from 1 to 3600000"));
  if (json_object_has_member (p, "session_id") && ens_json_get_string (p, "session_id") == NULL)
    REFUSE (invalid (request, "session_id", "a string"));
  if (model && strcmp (model, "auto") == 0)
    model = NULL;
  if (provider)
    model = provider; /* a backend name narrows the choice to it */
  if (model && !model_known (model))
    {
      g_autofree char *text = g_strdup_printf ("no provider serves the model \"%s\"", model);
      JsonObject *det;
      g_autoptr (JsonNode) details = ens_json_object_node (&det);
      json_object_set_string_member (det, "field", provider ? "provider" : "model");
      json_object_set_member (det, "providers", ens_completion_providers ());
      REFUSE (ens_message_new_error (request, "UNKNOWN_MODEL", text, details));
    }
  if (g_queue_get_length (&C.queue) >= ens_config_get_uint (d->config, "max-queued-completions"))
    REFUSE (ens_message_new_error (request, ENS_ERR_OVERLOADED, "the completion queue is full", NULL));

  token_count = info_double (route, "token_count", -1);
  c->estimate_in = token_count >= 0 ? token_count : (double) chars / 4.0 + 1;
  c->estimate_out = max_tokens;
  json_object_set_double_member (route, "token_count", c->estimate_in + c->estimate_out);
  if (model)
    json_object_set_string_member (route, "model", model);
  decision = decide (d, c->route, &code, &message);
  if (decision == NULL)
    REFUSE (ens_message_new_error (request, code, message, NULL));
#undef REFUSE

  ranking = json_object_has_member (json_node_get_object (decision), "ranking")
              ? json_object_get_array_member (json_node_get_object (decision), "ranking") : NULL;
  g_ptr_array_add (c->ranking, g_strdup (ens_json_get_string (json_node_get_object (decision), "provider")));
  for (guint i = 0; ranking && i < json_array_get_length (ranking); i++)
    {
      const char *name = json_array_get_string_element (ranking, i);
      if (name && !g_ptr_array_find_with_equal_func (c->ranking, name, g_str_equal, NULL))
        g_ptr_array_add (c->ranking, g_strdup (name));
    }
  c->reasoning = g_strdup (ens_json_get_string (json_node_get_object (decision), "reasoning"));

  if (ens_json_get_string (p, "model") && strcmp (ens_json_get_string (p, "model"), "auto") != 0)
    json_object_set_string_member (params, "model", ens_json_get_string (p, "model"));
  json_object_set_member (params, "messages", json_node_ref (messages));
  json_object_set_int_member (params, "max_tokens", (gint64) max_tokens);
  if (temperature >= 0)
    json_object_set_double_member (params, "temperature", temperature);
  c->stream = stream ? json_node_get_boolean (stream) : FALSE;
  json_object_set_boolean_member (params, "stream", c->stream || hooks != NULL);
  if (json_object_has_member (p, "tools"))
    json_object_set_member (params, "tools", json_node_copy (json_object_get_member (p, "tools")));

  c->request_id = g_strdup_printf ("req_%08x%04x", g_random_int (), g_random_int_range (0, 0xffff));
  c->client = client;
  c->client_id = g_strdup (client_id);
  c->hooks = hooks;
  c->hooks_data = hooks_data;
  c->queued_us = g_get_monotonic_time ();
  c->session_id = g_strdup (ens_json_get_string (p, "session_id"));
  c->timeout_id = g_timeout_add (timeout_ms > 0 ? (guint) timeout_ms : ens_config_get_uint (d->config, "completion-timeout-ms"),
                                 timeout_cb, c);
  g_hash_table_insert (C.active, c->request_id, c);
  g_queue_push_tail (&C.queue, c);

  ack_node = ens_json_object_node (&ack);
  json_object_set_string_member (ack, "request_id", c->request_id);
  json_object_set_string_member (ack, "status", "queued");
  json_object_set_int_member (ack, "queue_position", g_queue_get_length (&C.queue));
  json_object_set_string_member (ack, "provider", g_ptr_array_index (c->ranking, 0));
  json_object_set_string_member (ack, "reasoning", c->reasoning ? c->reasoning : "");
  json_object_set_member (ack, "estimated_time", json_node_new (JSON_NODE_NULL));
  *answer = ens_message_new_reply (request, ack_node);
  /* Started after the ack is queued for the client, so the ack comes first. */
  g_idle_add_full (G_PRIORITY_HIGH_IDLE, ens_completion_pump_idle, d, NULL);
  return c;
}

gboolean
ens_completion_pump_idle (gpointer data)
{
  pump (data);
  return G_SOURCE_REMOVE;
}

const char *
ens_completion_id (EnsCompletion *c)
{
  return c->request_id;
}

static void
cancel (EnsDaemon *d, EnsCompletion *c)
{
  c->cancelled = TRUE;
  if (c->running)
    g_cancellable_cancel (c->cancellable);
  else
    {
      g_queue_remove (&C.queue, c);
      conclude (d, c, NULL, "CANCELLED", "the completion was cancelled before it started");
    }
}

EnsMessage *
ens_completion_cancel (EnsDaemon *d, EnsMessage *request, JsonObject *p, EnsClient *client, gboolean admin)
{
  const char *id = ens_json_get_string (p, "request_id");
  EnsCompletion *c = id ? g_hash_table_lookup (C.active, id) : NULL;
  JsonObject *obj;
  g_autoptr (JsonNode) data = NULL;

  if (id == NULL)
    return invalid (request, "request_id", "a string");
  if (c == NULL)
    return ens_message_new_error (request, ENS_ERR_NOT_FOUND, "no completion with that request_id is queued or running",
                                  NULL);
  if (c->client != client && !admin)
    return ens_message_new_error (request, ENS_ERR_PERMISSION_DENIED, "only the requester may cancel a completion",
                                  NULL);
  cancel (d, c);
  data = ens_json_object_node (&obj);
  json_object_set_string_member (obj, "request_id", id);
  json_object_set_boolean_member (obj, "cancelled", TRUE);
  return ens_message_new_reply (request, data);
}

void
ens_completion_cancel_id (const char *request_id)
{
  EnsCompletion *c = g_hash_table_lookup (C.active, request_id);
  if (c)
    cancel (ens_daemon_get (), c);
}

/* The requester is gone: its work stops, nobody is left to tell. */
void
ens_completion_client_gone (EnsClient *client)
{
  g_autoptr (GPtrArray) mine = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  if (C.active == NULL)
    return;
  g_hash_table_iter_init (&iter, C.active);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((EnsCompletion *) value)->client == client)
      g_ptr_array_add (mine, value);
  for (guint i = 0; i < mine->len; i++)
    {
      EnsCompletion *c = g_ptr_array_index (mine, i);
      c->client = NULL;
      g_clear_pointer (&c->client_id, g_free);
      cancel (ens_daemon_get (), c);
    }
}

JsonNode *
ens_completion_stats (EnsDaemon *d)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  g_autofree char *policy = ens_config_get_path (d->config, "router-policy");
  guint running = 0;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, C.backends);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    running += ((EnsBackend *) value)->running;
  json_object_set_string_member (obj, "router_policy", policy);
  json_object_set_int_member (obj, "providers", g_hash_table_size (C.backends));
  json_object_set_int_member (obj, "queued", g_queue_get_length (&C.queue));
  json_object_set_int_member (obj, "running", running);
  json_object_set_int_member (obj, "completed", C.completed);
  json_object_set_int_member (obj, "failed", C.failed);
  json_object_set_int_member (obj, "fallbacks", C.fallbacks);
  return node;
}

guint
ens_completion_running (void)
{
  guint n = 0;
  GHashTableIter iter;
  gpointer value;

  if (C.backends == NULL)
    return 0;
  g_hash_table_iter_init (&iter, C.backends);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    n += ((EnsBackend *) value)->running;
  return n;
}

/* A provider plugin stopped: what it was running ends now (it may no longer
 * report), and its backends leave routing. */
void
ens_completion_forget_plugin (EnsPlugin *plugin)
{
  g_autoptr (GPtrArray) orphans = g_ptr_array_new ();
  EnsDaemon *d = ens_daemon_get ();
  GHashTableIter iter;
  gpointer value;

  if (C.backends == NULL)
    return;
  g_ptr_array_remove (C.routers, plugin);
  if (C.ledger_plugin == plugin)
    ens_completion_set_ledger (NULL, NULL, NULL);
  g_hash_table_iter_init (&iter, C.active);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EnsCompletion *c = value;
      if (c->running && c->backend->plugin == plugin)
        g_ptr_array_add (orphans, c);
    }
  for (guint i = 0; i < orphans->len; i++)
    {
      EnsCompletion *c = g_ptr_array_index (orphans, i);
      c->running = FALSE;
      c->backend->running--;
      budget_settle (d, c, 0);
      conclude (d, c, NULL, "PROVIDER_STOPPED", "the provider plugin stopped");
      completion_unref (c); /* the provider's */
    }
  /* Queued ones that would run there: ranking entries just go missing. */
  g_hash_table_iter_init (&iter, C.backends);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((EnsBackend *) value)->plugin == plugin)
      g_hash_table_iter_remove (&iter);
}

void
ens_completion_init (void)
{
  C.backends = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) backend_free);
  C.routers = g_ptr_array_new ();
  C.active = g_hash_table_new (g_str_hash, g_str_equal);
  g_queue_init (&C.queue);
}

/* Before plugins stop: every completion ends, running ones are cancelled and
 * their providers report CANCELLED while they still can. */
void
ens_completion_cancel_all (void)
{
  g_autoptr (GPtrArray) all = NULL;
  GHashTableIter iter;
  gpointer value;

  if (C.active == NULL)
    return;
  all = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, C.active);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (all, value);
  for (guint i = 0; i < all->len; i++)
    cancel (ens_daemon_get (), g_ptr_array_index (all, i));
}

void
ens_completion_shutdown (void)
{
  g_clear_pointer (&C.backends, g_hash_table_unref);
  g_clear_pointer (&C.routers, g_ptr_array_unref);
  g_clear_pointer (&C.active, g_hash_table_unref);
  g_clear_pointer (&C.day, g_free);
}
