/* ens-completion.c — completions: acknowledged at once, queued, routed by
 * the active router policy (ens-backends.c), run on a provider backend with
 * a concurrency limit, streamed as targeted events, settled against the
 * daily budget (ens-budget.c), and retried on the next-ranked backend when
 * one fails before streaming.
 *
 * Events, delivered only to the requester (and subscribers of
 * "<TOPIC>:<client>"):
 *   COMPLETION_CHUNK  {request_id, chunk, index, provider, model}
 *   COMPLETION_EVENT  {request_id, type, data}          (tool calls)
 * Embeddings (the embed verb) are completions of kind "embeddings": the
 * same queue, routing (among the backends that embed), fallback, budget
 * and counts; their result holds embeddings instead of a response.
 *
 *   COMPLETION_RESULT {request_id, client_id, to, result: {response,
 *                      session_id, model, provider, usage, cost, duration_ms}}
 *                  or {request_id, client_id, to, error, code: "COMPLETION_FAILED", reason,
 *                      partial?: {response, usage, provider, model}}
 *                     (partial: when it failed after its first chunk)
 *
 * The ack and the result, as trees or as text for a connection that reads
 * data as text: ens-completion-answer.c.  The verbs complete, embed and
 * complete.cancel: ens-completion-verbs.c.
 */
#include "ens-completion.h"
#include "ens-completion-answer.h"
#include "ens-completion-params.h"
#include "ens-json.h"
#include "ens-message-private.h"
#include "ens-timers.h"

#include <string.h>

struct _EnsCompletion {
  EnsCompletions *owner;
  gint refs;
  char *request_id;
  EnsMessage *request;    /* as the requester sent it */
  EnsClient *client;      /* requester; NULL once gone (or for sessions) */
  char *client_id;        /* where results go: a client id or agent name */
  JsonNode *params;       /* what the provider gets */
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
  EnsDeadline deadline; /* completion-timeout-ms, or the request's timeout_ms */
  guint chunks;
  gboolean stream, streamed, timed_out, cancelled, running, finished;
  gboolean over_budget; /* a backend was passed over for the budget */
  gboolean embed;       /* embeddings (the embed verb), not a chat completion */
  char *reasoning;
  char *session_id;       /* echoed in the result (KSI conversation continuity) */
  char *model;            /* the model asked for, aliases resolved; NULL: each backend's default */
  char *model_used;       /* what the current backend runs (its upstream name) */
  const EnsCompletionHooks *hooks; /* sessions */
  gpointer hooks_data;
};

struct _EnsCompletions {
  EnsConfig *config;
  EnsBackends *backends;
  EnsBudget *budget;
  EnsEvents *events;
  GQueue queue;       /* EnsCompletion*, waiting */
  GHashTable *active; /* request_id -> EnsCompletion (queued or running) */
  guint64 completed, failed, fallbacks;
  guint64 input_tokens, output_tokens; /* over every completion */
  double completed_ms; /* summed durations (queued to result) of the completed */
  EnsSoon *pump;       /* the queue is pumped at the next turn, or sooner (ens_completions_pump_due) */
  EnsDeadlines *deadlines;
  JsonNode *route;     /* what the router is shown of a chat completion: one object, set afresh for each */
};

static void pump_soon (gpointer data);
static void timed_out (EnsDeadline *deadline, gpointer data);

/* What an answer is assumed to cost when the request sets no max_tokens:
 * for routing and the budget's reservation only, never sent upstream. */
#define ESTIMATED_OUTPUT_TOKENS 512

EnsCompletions *
ens_completions_new (EnsConfig *config, EnsBackends *backends, EnsBudget *budget, EnsEvents *events)
{
  EnsCompletions *cs = g_new0 (EnsCompletions, 1);

  cs->config = config;
  cs->backends = backends;
  cs->budget = budget;
  cs->events = events;
  cs->active = g_hash_table_new (g_str_hash, g_str_equal);
  g_queue_init (&cs->queue);
  cs->pump = ens_soon_new (G_PRIORITY_HIGH_IDLE, pump_soon, cs);
  cs->deadlines = ens_deadlines_new (timed_out, cs);
  cs->route = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (cs->route, json_object_new ());
  return cs;
}

void
ens_completions_free (EnsCompletions *cs)
{
  if (cs == NULL)
    return;
  ens_soon_free (cs->pump);
  ens_deadlines_free (cs->deadlines);
  json_node_unref (cs->route);
  g_hash_table_unref (cs->active);
  g_queue_clear (&cs->queue);
  g_free (cs);
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
  g_ptr_array_unref (c->ranking);
  g_clear_object (&c->cancellable);
  g_string_free (c->text, TRUE);
  g_free (c->reasoning);
  g_free (c->session_id);
  g_free (c->model);
  g_free (c->model_used);
  g_free (c);
}

/* The requesting connection lets go of it (it waits no more). */
static void
release_client (EnsCompletion *c)
{
  if (c->client)
    c->client->holds--;
  c->client = NULL;
}

/* A targeted event to the requester; sessions get theirs through hooks. */
static void
emit (EnsCompletion *c, const char *topic, JsonNode *data)
{
  if (c->client_id)
    ens_events_publish (c->owner->events, "ensembled", topic, data, c->client_id);
}

/* Whether the requester's connection takes its ack and result as text (its
 * transport reads message data lazily): they are written straight then,
 * with no tree built, written and freed.  Results for another client or
 * for hooks are trees. */
static gboolean
answers_in_text (EnsCompletion *c)
{
  return c->client && c->client->lazy_data && c->hooks == NULL && c->client_id &&
         strcmp (c->client_id, c->client->id) == 0;
}

static JsonNode *
event_data (EnsCompletion *c, JsonObject **obj)
{
  JsonNode *node = ens_json_object_node (obj);
  json_object_set_string_member (*obj, "request_id", c->request_id);
  return node;
}

static void budget_settle (EnsCompletion *c, double actual);
static void pump (EnsCompletions *cs);

/* COMPLETION_RESULT {request_id, client_id, to, result} with @result_text
 * (its JSON) to the requester. */
static void
emit_result_text (EnsCompletion *c, const GString *result_text)
{
  g_autoptr (GString) text = g_string_sized_new (result_text->len + 128);

  g_string_append (text, "{\"request_id\":");
  ens_json_write_string (text, c->request_id);
  g_string_append (text, ",\"client_id\":");
  ens_json_write_string (text, c->client_id);
  g_string_append (text, ",\"to\":");
  ens_json_write_string (text, c->client_id);
  g_string_append (text, ",\"result\":");
  g_string_append_len (text, result_text->str, (gssize) result_text->len);
  g_string_append_c (text, '}');
  ens_events_publish_text (c->owner->events, "ensembled", "COMPLETION_RESULT", text->str, text->len, c->client_id);
}

/* Ends @c for good: its result (@result, or its text @result_text when
 * answers_in_text()) or failure to the requester, then gone. */
static void
conclude (EnsCompletion *c, JsonNode *result, const GString *result_text, const char *code, const char *message)
{
  EnsCompletions *cs = c->owner;

  c->finished = TRUE;
  ens_deadlines_remove (cs->deadlines, &c->deadline);
  g_hash_table_remove (cs->active, c->request_id);
  release_client (c);
  if (result || result_text)
    {
      cs->completed++;
      cs->completed_ms += (double) (g_get_monotonic_time () - c->queued_us) / 1000.0;
    }
  else
    cs->failed++;
  if (result_text)
    emit_result_text (c, result_text);
  else
    {
      JsonObject *obj;
      g_autoptr (JsonNode) data = event_data (c, &obj);

      if (c->client_id)
        {
          json_object_set_string_member (obj, "client_id", c->client_id);
          json_object_set_string_member (obj, "to", c->client_id);
        }
      if (result)
        json_object_set_member (obj, "result", json_node_ref (result));
      else
        {
          json_object_set_string_member (obj, "error", message);
          json_object_set_string_member (obj, "code", ENS_COMPLETION_FAILED);
          json_object_set_string_member (obj, "reason", code);
          if (c->streamed)
            json_object_set_member (obj, "partial",
                                    ens_completion_partial_node (c->text->str, c->text->len, c->estimate_in,
                                                                 c->backend ? c->backend->name : NULL,
                                                                 c->model_used));
        }
      emit (c, "COMPLETION_RESULT", data);
    }
  if (g_strcmp0 (code, ENS_COMPLETION_ERR_BUDGET_EXCEEDED) == 0)
    {
      /* Operators watch for this (D-Bus BudgetExceeded). */
      JsonObject *bo;
      g_autoptr (JsonNode) bnode = ens_json_object_node (&bo);
      json_object_set_string_member (bo, "request_id", c->request_id);
      json_object_set_double_member (bo, "remaining", MAX (0.0, ens_budget_remaining (cs->budget)));
      ens_events_publish (cs->events, "ensembled", "ensemble.budget.exceeded", bnode, NULL);
    }
  if (c->hooks && c->hooks->done)
    c->hooks->done (c->hooks_data, c->request_id, result, code, message);
  completion_unref (c);
  pump (cs);
}

static void
timed_out (EnsDeadline *deadline, gpointer data)
{
  EnsCompletion *c = (EnsCompletion *) ((char *) deadline - G_STRUCT_OFFSET (EnsCompletion, deadline));

  (void) data;
  c->timed_out = TRUE;
  g_cancellable_cancel (c->cancellable); /* the provider answers CANCELLED; we say TIMEOUT */
}

static void
budget_settle (EnsCompletion *c, double actual)
{
  ens_budget_settle (c->owner->budget, c->reserved, c->ledger_reserved, actual);
  c->reserved = 0;
  c->ledger_reserved = FALSE;
}

/* A backend asked for by its name (or the offline one answering any model)
 * runs its own default model. */
static gboolean
sends_model (EnsCompletion *c, EnsBackend *b)
{
  return c->model && (ens_backend_lists_model (b, c->model) || strcmp (c->model, b->name) != 0) &&
         !ens_backend_is_local (b);
}

/* (transfer none) the model @c runs on @b, as the upstream is asked for it
 * (embeddings: always named, the one asked for when @b lists it). */
static const char *
model_on (EnsCompletion *c, EnsBackend *b)
{
  if (c->embed)
    return ens_backend_embedding_model (b, c->model);
  return ens_backend_model (b, sends_model (c, b) ? c->model : NULL);
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
  if (c->embed)
    json_object_set_string_member (json_node_get_object (c->params), "model", model_on (c, b));
  else if (sends_model (c, b))
    json_object_set_string_member (json_node_get_object (c->params), "model", c->model);
  else
    json_object_remove_member (json_node_get_object (c->params), "model");
  g_free (c->model_used);
  c->model_used = g_strdup (model_on (c, b));
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
        budget_settle (c, 0);
      if (!c->finished)
        {
          c->over_budget = TRUE;
          c->attempt++;
          g_queue_push_head (&c->owner->queue, c);
        }
      pump (c->owner);
    }
  else
    launch (c, b);
  completion_unref (c); /* the reservation's */
}

static void
ledger_reply (gboolean granted, double spent, gpointer user_data)
{
  EnsCompletion *c = user_data;

  ens_budget_note_shared_spend (c->owner->budget, spent);
  if (c->in_reserve_call)
    c->inline_answer = granted; /* try_start() goes on with it */
  else
    ledger_answer (c, granted);
}

/* Tries to start @c on its current candidate; FALSE if it must keep waiting. */
static gboolean
try_start (EnsCompletion *c)
{
  EnsCompletions *cs = c->owner;

  while (c->attempt < c->ranking->len)
    {
      EnsBackend *b = ens_backends_lookup (cs->backends, g_ptr_array_index (c->ranking, c->attempt));
      gboolean shared = ens_budget_is_shared (cs->budget);
      double cost;

      if (b == NULL || b->cooldown_until > g_get_monotonic_time ())
        {
          c->attempt++;
          continue;
        }
      cost = ens_backend_cost (b, c->estimate_in, c->estimate_out);
      if (cost > 0 && !shared && cost > ens_budget_remaining (cs->budget))
        {
          c->over_budget = TRUE;
          c->attempt++; /* over budget here: a cheaper one in the ranking may do */
          continue;
        }
      if (b->running >= b->max_concurrency)
        return FALSE;

      b->running++;
      c->reserved = cost;
      if (cost > 0 && shared)
        {
          /* The shared ledger decides, atomically for every daemon. */
          c->backend = b;
          c->inline_answer = -1;
          c->in_reserve_call = TRUE;
          ens_budget_reserve_shared (cs->budget, cost, ledger_reply, completion_ref (c));
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
        ens_budget_reserve_local (cs->budget, cost);
      launch (c, b);
      return TRUE;
    }
  return TRUE; /* nothing left: concluded by pump */
}

static void
pump (EnsCompletions *cs)
{
  for (GList *l = cs->queue.head; l;)
    {
      EnsCompletion *c = l->data;
      GList *next = l->next;

      if (try_start (c))
        {
          g_queue_delete_link (&cs->queue, l);
          if (!c->running && !c->reserving)
            {
              conclude (c, NULL, NULL,
                        c->over_budget ? ENS_COMPLETION_ERR_BUDGET_EXCEEDED : ENS_COMPLETION_ERR_NO_PROVIDER,
                        c->over_budget ? "what remains of the daily budget does not cover this request on any "
                                         "provider that fits"
                                       : "every provider that fits has failed or is cooling down");
              return; /* conclude pumped again */
            }
        }
      l = next;
    }
}

static void
pump_soon (gpointer data)
{
  pump (data);
}

void
ens_completions_pump_due (EnsCompletions *cs)
{
  if (ens_soon_cancel (cs->pump))
    pump (cs);
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
  json_object_set_string_member (obj, "model", c->model_used);
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

void
ens_completion_finish (EnsCompletion *c, JsonNode *result)
{
  EnsBackend *b = c->backend;
  JsonObject *in = result && JSON_NODE_HOLDS_OBJECT (result) ? json_node_get_object (result) : NULL;
  JsonObject *usage = in && json_object_has_member (in, "usage") && JSON_NODE_HOLDS_OBJECT (json_object_get_member (in, "usage"))
                        ? json_object_get_object_member (in, "usage") : NULL;
  double input = ens_info_double (usage, "input_tokens", c->estimate_in);
  double output = ens_info_double (usage, "output_tokens", 0);
  double cost = ens_backend_cost (b, input, output);
  gint64 now;

  if (c->finished || !c->running)
    return;
  c->running = FALSE;
  ens_backends_observe (c->owner->backends, b, c->started_us, FALSE);
  b->input_tokens += (guint64) input;
  b->output_tokens += (guint64) output;
  c->owner->input_tokens += (guint64) input;
  c->owner->output_tokens += (guint64) output;
  b->cost += cost;
  budget_settle (c, cost);

  /* The result as the requester sees it: the provider's, plus who and what,
   * and where the time went (waiting in the daemon, and in the provider). */
  now = g_get_monotonic_time ();
  {
    EnsCompletionResult r = {
      .response = (in == NULL || ens_json_get_string (in, "response") == NULL) && !c->embed ? c->text->str : NULL,
      .provider = b->name,
      .provider_plugin = ens_plugin_get_id (b->plugin),
      .model = c->model_used,
      .cost = cost,
      .duration_ms = (now - c->queued_us) / 1000,
      .attempts = c->attempt + 1,
      .received_to_start_ms = (c->started_us - c->request->received_us) / 1000.0,
      .has_first_chunk = c->first_chunk_us != 0,
      .provider_first_chunk_ms = (c->first_chunk_us - c->started_us) / 1000.0,
      .provider_ms = (now - c->started_us) / 1000.0,
      .session_id = c->session_id,
    };

    if (answers_in_text (c))
      {
        g_autoptr (GString) text = g_string_sized_new (512);
        ens_completion_result_write (text, in, &r);
        conclude (c, NULL, text, NULL, NULL);
      }
    else
      {
        g_autoptr (JsonNode) out = ens_completion_result_node (in, &r);
        conclude (c, out, NULL, NULL, NULL);
      }
  }
  completion_unref (c); /* the provider's */
}

static gboolean
falls_back (const char *code)
{
  static const char *const codes[] = { ENS_COMPLETION_ERR_UPSTREAM, ENS_COMPLETION_ERR_TIMEOUT,
                                       ENS_COMPLETION_ERR_RATE_LIMITED, ENS_COMPLETION_ERR_AUTH_FAILED,
                                       ENS_COMPLETION_ERR_NOT_CONFIGURED, NULL };
  return g_strv_contains (codes, code);
}

void
ens_completion_fail (EnsCompletion *c, const char *code, const char *message)
{
  EnsCompletions *cs = c->owner;
  EnsBackend *b = c->backend;

  if (c->finished || !c->running)
    return;
  c->running = FALSE;
  if (c->timed_out && g_strcmp0 (code, ENS_COMPLETION_ERR_CANCELLED) == 0)
    {
      code = ENS_COMPLETION_ERR_TIMEOUT;
      message = "the completion did not finish within completion-timeout-ms";
    }
  ens_backends_observe (cs->backends, b, c->started_us,
                        g_strcmp0 (code, ENS_COMPLETION_ERR_CANCELLED) != 0 &&
                          g_strcmp0 (code, ENS_COMPLETION_ERR_BAD_REQUEST) != 0);
  if (c->streamed)
    {
      /* What was streamed was generated, and is paid for: estimated. */
      double output = (double) ((g_utf8_strlen (c->text->str, (gssize) c->text->len) + 3) / 4);
      double cost = ens_backend_cost (b, c->estimate_in, output);

      b->input_tokens += (guint64) c->estimate_in;
      b->output_tokens += (guint64) output;
      cs->input_tokens += (guint64) c->estimate_in;
      cs->output_tokens += (guint64) output;
      b->cost += cost;
      budget_settle (c, cost);
    }
  else
    budget_settle (c, 0);
  g_message ("completion %s failed on %s: %s: %s", c->request_id, b->name, code, message ? message : "");

  /* Fall back only while nothing was streamed: the requester must never see
   * two answers spliced together. */
  if (!c->cancelled && !c->streamed && falls_back (code) && c->attempt + 1 < c->ranking->len)
    {
      c->attempt++;
      c->timed_out = FALSE;
      cs->fallbacks++;
      g_queue_push_head (&cs->queue, c);
      pump (cs);
    }
  else
    conclude (c, NULL, NULL, c->cancelled ? ENS_COMPLETION_ERR_CANCELLED : code, message ? message : code);
  completion_unref (c); /* the provider's */
}

/* ---------------------------------------------------------------- requests */

/* (transfer full) "req_" and 12 random hex digits, without printf. */
static char *
request_id_new (void)
{
  static const char hex[] = "0123456789abcdef";
  guint64 bits = ((guint64) g_random_int () << 16) | (guint64) g_random_int_range (0, 0xffff);
  char *id = g_malloc (4 + 12 + 1);

  memcpy (id, "req_", 4);
  for (int i = 15; i >= 4; i--, bits >>= 4)
    id[i] = hex[bits & 15];
  id[16] = '\0';
  return id;
}

EnsCompletion *
ens_completions_submit (EnsCompletions *cs, EnsMessage *request, JsonObject *p, EnsClient *client,
                        const char *client_id, const EnsCompletionHooks *hooks, gpointer hooks_data,
                        EnsMessage **answer)
{
  JsonObject *route, *params;
  JsonNode *route_node;
  g_autoptr (JsonNode) embed_route = NULL;
  EnsCompletionRoute rf;
  g_autoptr (JsonNode) decision = NULL;
  g_autoptr (JsonNode) messages = NULL;
  const char *model = ens_json_get_string (p, "model");
  const char *provider = ens_json_get_string (p, "provider");
  const char *route_model;
  g_autofree char *resolved = NULL;
  const char *code = NULL;
  g_autofree char *message = NULL;
  double max_tokens = -1, temperature = -1, token_count = -1, timeout_ms = 0;
  JsonNode *stream = p ? json_object_get_member (p, "stream") : NULL;
  JsonArray *ranking;
  EnsCompletion *c;
  gsize chars = 0;
  gboolean embed = g_strcmp0 (ens_json_get_string (p, "kind"), "embeddings") == 0;

  *answer = NULL;
  c = g_new0 (EnsCompletion, 1);
  c->owner = cs;
  c->refs = 1;
  c->params = ens_json_object_node (&params);
  c->ranking = g_ptr_array_new_with_free_func (g_free);
  c->text = g_string_new (NULL);
  c->request = ens_message_ref (request);
  c->embed = embed;

#define REFUSE(msg_expr)          \
  G_STMT_START                    \
  {                               \
    *answer = (msg_expr);         \
    completion_unref (c);         \
    return NULL;                  \
  }                               \
  G_STMT_END

  if (p == NULL)
    REFUSE (ens_message_new_invalid (request, "data", "an object with prompt or messages"));
  if ((*answer = ens_completion_read_route_fields (request, p, &rf)))
    REFUSE (*answer);
  if (embed)
    {
      if ((*answer = ens_completion_read_input (request, p, params, &chars)))
        REFUSE (*answer);
    }
  else if ((messages = ens_completion_read_messages (request, p, answer, &chars)) == NULL)
    REFUSE (*answer);
  if (json_object_has_member (p, "model") && model == NULL)
    REFUSE (ens_message_new_invalid (request, "model", "a string"));
  if (json_object_has_member (p, "provider") && provider == NULL)
    REFUSE (ens_message_new_invalid (request, "provider", "a string"));
  if (stream && !(JSON_NODE_HOLDS_VALUE (stream) && json_node_get_value_type (stream) == G_TYPE_BOOLEAN))
    REFUSE (ens_message_new_invalid (request, "stream", "true or false"));
  if (!ens_completion_read_number (p, "max_tokens", 1, 1e6, &max_tokens))
    REFUSE (ens_message_new_invalid (request, "max_tokens", "a number from 1 to 1000000"));
  if (!ens_completion_read_number (p, "temperature", 0, 2, &temperature))
    REFUSE (ens_message_new_invalid (request, "temperature", "a number from 0 to 2"));
  if (!ens_completion_read_number (p, "timeout_ms", 1, 3.6e6, &timeout_ms))
    REFUSE (ens_message_new_invalid (request, "timeout_ms", "a number of milliseconds from 1 to 3600000"));
  if (json_object_has_member (p, "session_id") && ens_json_get_string (p, "session_id") == NULL)
    REFUSE (ens_message_new_invalid (request, "session_id", "a string"));
  if (model && strcmp (model, "auto") == 0)
    model = NULL;
  resolved = embed ? g_strdup (model) : ens_backends_resolve_model (cs->backends, model);
  route_model = provider ? provider : resolved; /* a backend name narrows the choice to it */
  if (route_model && !(embed ? ens_backends_serve_embedding (cs->backends, route_model)
                             : ens_backends_serve_model (cs->backends, route_model)))
    {
      if (provider == NULL && ens_backends_offline_only (cs->backends))
        route_model = NULL; /* no real provider: the offline one answers whatever is asked */
      else if (embed ? ens_backends_serve_model (cs->backends, route_model)
                     : ens_backends_serve_embedding (cs->backends, route_model))
        REFUSE (ens_completion_unsuited_model (request, provider ? "provider" : "model", route_model, embed));
      else
        REFUSE (ens_backends_unknown_model (cs->backends, request, provider ? "provider" : "model", provider ? provider : model));
    }
  if (g_queue_get_length (&cs->queue) >= ens_config_get_uint (cs->config, "max-queued-completions"))
    REFUSE (ens_message_new_error (request, ENS_ERR_OVERLOADED, "the completion queue is full", NULL));

  token_count = rf.token_count;
  c->estimate_in = token_count >= 0 ? token_count : (double) chars / 4.0 + 1;
  c->estimate_out = embed ? 0 : max_tokens > 0 ? max_tokens : ESTIMATED_OUTPUT_TOKENS;
  if (embed)
    {
      /* Any backend that embeds: no task type. */
      route_node = embed_route = ens_json_object_node (&route);
      json_object_set_string_member (route, "priority", rf.priority);
      json_object_set_double_member (route, "max_latency", rf.max_latency);
      json_object_set_string_member (route, "kind", "embeddings");
    }
  else
    {
      /* The chat route's object is made once and its values set in place
       * for each request: routers only read it, during the decision. */
      route_node = cs->route;
      route = json_node_get_object (route_node);
      ens_json_put_string (route, "task_type", rf.task_type);
      ens_json_put_string (route, "priority", rf.priority);
      ens_json_put_double (route, "max_latency", rf.max_latency);
    }
  ens_json_put_double (route, "token_count", c->estimate_in + c->estimate_out);
  if (route_model)
    ens_json_put_string (route, "model", route_model);
  else if (json_object_has_member (route, "model"))
    json_object_remove_member (route, "model");
  decision = ens_backends_decide (cs->backends, route_node, &code, &message);
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

  c->model = g_steal_pointer (&resolved);
  if (!embed)
    {
      json_object_set_member (params, "messages", json_node_ref (messages));
      if (max_tokens > 0) /* no hidden cap: the upstream's own limit applies */
        json_object_set_int_member (params, "max_tokens", (gint64) max_tokens);
      if (temperature >= 0)
        json_object_set_double_member (params, "temperature", temperature);
      c->stream = stream ? json_node_get_boolean (stream) : FALSE;
      json_object_set_boolean_member (params, "stream", c->stream || hooks != NULL);
      if (json_object_has_member (p, "tools"))
        json_object_set_member (params, "tools", json_node_copy (json_object_get_member (p, "tools")));
    }

  c->request_id = request_id_new ();
  c->client = client;
  if (client)
    client->holds++;
  c->client_id = g_strdup (client_id);
  c->hooks = hooks;
  c->hooks_data = hooks_data;
  c->queued_us = g_get_monotonic_time ();
  c->session_id = g_strdup (ens_json_get_string (p, "session_id"));
  ens_deadlines_add (cs->deadlines, &c->deadline,
                     c->queued_us + 1000 * (gint64) (timeout_ms > 0 ? (guint) timeout_ms
                                                                    : ens_config_get_uint (cs->config,
                                                                                           "completion-timeout-ms")));
  g_hash_table_insert (cs->active, c->request_id, c);
  g_queue_push_tail (&cs->queue, c);

  {
    EnsBackend *first = ens_backends_lookup (cs->backends, g_ptr_array_index (c->ranking, 0));
    EnsCompletionAck ack = {
      .request_id = c->request_id,
      .queue_position = g_queue_get_length (&cs->queue),
      .provider = g_ptr_array_index (c->ranking, 0),
      .model = first ? model_on (c, first) : NULL,
      .reasoning = c->reasoning,
      .decision = json_node_get_object (decision),
    };

    if (answers_in_text (c))
      {
        /* Its connection reads data as text: no tree to build, write, free. */
        g_autoptr (GString) text = g_string_sized_new (512);
        ens_completion_ack_write (text, &ack);
        *answer = ens_message_new_reply_text (request, text->str, text->len);
      }
    else
      {
        g_autoptr (JsonNode) ack_node = ens_completion_ack_node (&ack);
        *answer = ens_message_new_reply (request, ack_node);
      }
  }
  /* Started after the ack is queued for the client, so the ack comes first:
   * at the next turn of the main loop, or as soon as the ack is delivered
   * (ens_completions_pump_due, from the dispatch of a client's request). */
  ens_soon_ask (cs->pump);
  return c;
}

const char *
ens_completion_id (EnsCompletion *c)
{
  return c->request_id;
}

/* ---------------------------------------------------------------- ending early */

static void
cancel (EnsCompletion *c)
{
  c->cancelled = TRUE;
  if (c->running)
    g_cancellable_cancel (c->cancellable);
  else
    {
      g_queue_remove (&c->owner->queue, c);
      conclude (c, NULL, NULL, ENS_COMPLETION_ERR_CANCELLED, "the completion was cancelled before it started");
    }
}

void
ens_completions_cancel_id (EnsCompletions *cs, const char *request_id)
{
  EnsCompletion *c = g_hash_table_lookup (cs->active, request_id);
  if (c)
    cancel (c);
}

const char *
ens_completions_cancel_for (EnsCompletions *cs, const char *request_id, EnsClient *asker, gboolean admin)
{
  EnsCompletion *c = g_hash_table_lookup (cs->active, request_id);

  if (c == NULL)
    return ENS_ERR_NOT_FOUND;
  if (c->client != asker && !admin)
    return ENS_ERR_PERMISSION_DENIED;
  cancel (c);
  return NULL;
}

/* The requester is gone: its work stops, nobody is left to tell. */
void
ens_completions_client_closed (EnsCompletions *cs, EnsClient *client)
{
  g_autoptr (GPtrArray) mine = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, cs->active);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((EnsCompletion *) value)->client == client)
      g_ptr_array_add (mine, value);
  for (guint i = 0; i < mine->len; i++)
    {
      EnsCompletion *c = g_ptr_array_index (mine, i);
      release_client (c);
      g_clear_pointer (&c->client_id, g_free);
      cancel (c);
    }
}

/* A plugin stopped: what it was running ends now (it may no longer report),
 * its backends leave routing, its ledger no longer keeps the budget. */
void
ens_completions_forget_plugin (EnsCompletions *cs, EnsPlugin *plugin)
{
  g_autoptr (GPtrArray) orphans = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  ens_budget_forget_plugin (cs->budget, plugin);
  g_hash_table_iter_init (&iter, cs->active);
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
      budget_settle (c, 0);
      conclude (c, NULL, NULL, ENS_COMPLETION_ERR_PROVIDER_STOPPED, "the provider plugin stopped");
      completion_unref (c); /* the provider's */
    }
  /* Queued ones that would run there: ranking entries just go missing. */
  ens_backends_forget_plugin (cs->backends, plugin);
}

void
ens_completions_cancel_all (EnsCompletions *cs)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, cs->active);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (all, value);
  for (guint i = 0; i < all->len; i++)
    cancel (g_ptr_array_index (all, i));
}

guint
ens_completions_running (EnsCompletions *cs)
{
  return ens_backends_running (cs->backends);
}

void
ens_completions_totals (EnsCompletions *cs, guint64 *completed, guint64 *failed, double *completed_ms)
{
  *completed = cs->completed;
  *failed = cs->failed;
  *completed_ms = cs->completed_ms;
}

JsonNode *
ens_completions_stats (EnsCompletions *cs)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  g_autofree char *policy = ens_config_get_path (cs->config, "router-policy");

  json_object_set_string_member (obj, "router_policy", policy);
  json_object_set_int_member (obj, "providers", ens_backends_count (cs->backends));
  json_object_set_int_member (obj, "queued", g_queue_get_length (&cs->queue));
  json_object_set_int_member (obj, "running", ens_backends_running (cs->backends));
  json_object_set_int_member (obj, "completed", cs->completed);
  json_object_set_int_member (obj, "failed", cs->failed);
  json_object_set_int_member (obj, "fallbacks", cs->fallbacks);
  json_object_set_int_member (obj, "input_tokens", cs->input_tokens);
  json_object_set_int_member (obj, "output_tokens", cs->output_tokens);
  return node;
}
