/* ens-router-fastest — picks the backend with the lowest observed latency;
 * among equally fast ones the best quality wins.  The ranking of all
 * eligible backends in that order is the fallback order. */
#include "ens-route.h"

static int
by_latency (gconstpointer a, gconstpointer b)
{
  const EnsRouteCandidate *x = *(EnsRouteCandidate *const *) a, *y = *(EnsRouteCandidate *const *) b;

  if (x->latency_ms != y->latency_ms)
    return x->latency_ms < y->latency_ms ? -1 : 1;
  if (x->quality != y->quality)
    return x->quality > y->quality ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static JsonNode *
fastest_choose (gpointer instance, JsonNode *request, JsonNode *candidates, GError **error)
{
  EnsRouteRequest req;
  g_autoptr (GPtrArray) eligible = NULL;
  g_autofree char *reasoning = NULL;
  const EnsRouteCandidate *best;
  char q[ENS_ROUTE_FMT_BUF];

  ens_route_request_parse (request, &req);
  eligible = ens_route_eligible (&req, candidates, error);
  if (eligible == NULL)
    return NULL;
  g_ptr_array_sort (eligible, by_latency);
  best = g_ptr_array_index (eligible, 0);
  reasoning = g_strdup_printf ("%s: fastest of %u eligible, %.0f ms average latency (quality %s)", best->name,
                               eligible->len, best->latency_ms, ens_route_fmt (q, sizeof q, best->quality));
  return ens_route_result ("fastest", eligible, reasoning, best->quality * (1.0 - best->error_rate), FALSE);
}

static gpointer
fastest_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  /* Stateless; the instance only has to be non-NULL. */
  return g_new0 (char, 1);
}

static void
fastest_stop (gpointer instance)
{
  g_free (instance);
}

static const EnsRouterVTable fastest_vtable = {
  .struct_size = sizeof (EnsRouterVTable),
  .name = "fastest",
  .choose = fastest_choose,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_ROUTER, "router-fastest", "1.0", "Routes to the fastest eligible provider",
                   ENS_PLUGIN_FLAG_NONE, fastest_init, fastest_stop, NULL, &fastest_vtable)
