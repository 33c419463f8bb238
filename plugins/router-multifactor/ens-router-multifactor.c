/* ens-router-multifactor — the Centerfire multi-factor routing score, the
 * default policy:
 *   score = quality × cost factor × latency factor × context factor × (1 − error rate)
 *   quality         the backend's quality; ×1.2 for "high" priority, ×0.9 for "low"
 *   cost factor     1 − estimated_cost/20; 1.0 for free backends; 0.1 when the
 *                   request would exceed the remaining budget; ×0.8 for "high"
 *                   priority (cost matters less), ×1.3 for "low" (more)
 *   latency factor  1 − latency_ms/5000; 0.3 when slower than max_latency
 *   context factor  0.8 when the request needs over half the context window
 * Every factor and the score are clamped to [0,1].  The ranking of all
 * eligible backends, best first, is the fallback order. */
#include "ens-route.h"

#include <string.h>

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
} Multifactor;

typedef struct {
  double quality, cost, latency, context;
  gboolean over_budget, too_slow, large;
} Factors;

static void
score (const EnsRouteRequest *req, EnsRouteCandidate *c, Factors *f)
{
  gboolean high = g_strcmp0 (req->priority, "high") == 0;
  gboolean low = g_strcmp0 (req->priority, "low") == 0;

  memset (f, 0, sizeof *f);
  f->quality = c->quality * (high ? 1.2 : low ? 0.9 : 1.0);

  if (c->cost_per_1k <= 0)
    f->cost = 1.0;
  else if (req->budget_remaining >= 0 && c->estimated_cost > req->budget_remaining)
    {
      f->cost = 0.1;
      f->over_budget = TRUE;
    }
  else
    f->cost = MAX (0.0, 1.0 - c->estimated_cost / 20.0);
  f->cost *= high ? 0.8 : low ? 1.3 : 1.0;

  if (req->max_latency > 0 && c->latency_ms > req->max_latency)
    {
      f->latency = 0.3;
      f->too_slow = TRUE;
    }
  else
    f->latency = MAX (0.0, 1.0 - c->latency_ms / 5000.0);

  f->large = c->context_window > 0 && (double) req->token_count > c->context_window / 2;
  f->context = f->large ? 0.8 : 1.0;

  f->quality = CLAMP (f->quality, 0.0, 1.0);
  f->cost = CLAMP (f->cost, 0.0, 1.0);
  f->latency = CLAMP (f->latency, 0.0, 1.0);
  c->score = CLAMP (f->quality * f->cost * f->latency * f->context * (1.0 - c->error_rate), 0.0, 1.0);
}

static void
append_factor (GString *text, const char *label, double v)
{
  char buf[ENS_ROUTE_FMT_BUF];

  g_string_append (text, label);
  g_string_append (text, ens_route_fmt (buf, sizeof buf, v));
}

/* Appended piece by piece: one printf of it cost more than the score. */
static char *
explain (const EnsRouteRequest *req, const EnsRouteCandidate *c, const Factors *f)
{
  GString *text = g_string_sized_new (128);

  g_string_append (text, c->name);
  append_factor (text, ": score ", c->score);
  append_factor (text, " (quality ", f->quality);
  append_factor (text, ", cost ", f->cost);
  append_factor (text, ", latency ", f->latency);
  append_factor (text, ", context ", f->context);
  g_string_append_c (text, ')');
  if (g_strcmp0 (req->priority, "high") == 0 || g_strcmp0 (req->priority, "low") == 0)
    g_string_append_printf (text, "; %s priority", req->priority);
  if (f->over_budget)
    g_string_append (text, "; over the remaining budget");
  if (f->too_slow)
    g_string_append_printf (text, "; slower than the %.0f ms limit", req->max_latency);
  if (f->large)
    g_string_append (text, "; request needs over half its context window");
  if (c->error_rate > 0)
    append_factor (text, "; error rate ", c->error_rate);
  return g_string_free (text, FALSE);
}

static int
by_score (gconstpointer a, gconstpointer b)
{
  const EnsRouteCandidate *x = *(EnsRouteCandidate *const *) a, *y = *(EnsRouteCandidate *const *) b;

  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  if (x->quality != y->quality)
    return x->quality > y->quality ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static JsonNode *
multifactor_choose (gpointer instance, JsonNode *request, JsonNode *candidates, GError **error)
{
  EnsRouteRequest req;
  g_autoptr (GPtrArray) eligible = NULL;
  g_autofree char *reasoning = NULL;
  EnsRouteCandidate *best;
  Factors f;

  ens_route_request_parse (request, &req);
  eligible = ens_route_eligible (&req, candidates, error);
  if (eligible == NULL)
    return NULL;
  for (guint i = 0; i < eligible->len; i++)
    score (&req, g_ptr_array_index (eligible, i), &f);
  g_ptr_array_sort (eligible, by_score);
  best = g_ptr_array_index (eligible, 0);
  /* Only the winner's reasoning is told: its factors again. */
  score (&req, best, &f);
  reasoning = explain (&req, best, &f);
  return ens_route_result ("multifactor", eligible, reasoning, best->score, TRUE);
}

static gpointer
multifactor_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  Multifactor *m = g_new0 (Multifactor, 1);

  m->host = host;
  m->self = self;
  return m;
}

static void
multifactor_stop (gpointer instance)
{
  g_free (instance);
}

static const EnsRouterVTable multifactor_vtable = {
  .struct_size = sizeof (EnsRouterVTable),
  .name = "multifactor",
  .choose = multifactor_choose,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_ROUTER, "router-multifactor", "1.0",
                   "Routes by quality × cost × latency × context (the Centerfire score)", ENS_PLUGIN_FLAG_NONE,
                   multifactor_init, multifactor_stop, NULL, &multifactor_vtable)
