/* ens-router-cheapest — picks the backend with the lowest estimated cost of
 * the request; among equally cheap ones the best quality wins.  The ranking
 * of all eligible backends in that order is the fallback order. */
#include "ens-route.h"

static int
by_cost (gconstpointer a, gconstpointer b)
{
  const EnsRouteCandidate *x = *(EnsRouteCandidate *const *) a, *y = *(EnsRouteCandidate *const *) b;

  /* The per-1k price decides when token_count is 0 and all estimates are 0. */
  if (x->estimated_cost != y->estimated_cost)
    return x->estimated_cost < y->estimated_cost ? -1 : 1;
  if (x->cost_per_1k != y->cost_per_1k)
    return x->cost_per_1k < y->cost_per_1k ? -1 : 1;
  if (x->quality != y->quality)
    return x->quality > y->quality ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static JsonNode *
cheapest_choose (gpointer instance, JsonNode *request, JsonNode *candidates, GError **error)
{
  EnsRouteRequest req;
  g_autoptr (GPtrArray) eligible = NULL;
  g_autofree char *reasoning = NULL;
  const EnsRouteCandidate *best;
  char cost[G_ASCII_DTOSTR_BUF_SIZE], price[G_ASCII_DTOSTR_BUF_SIZE], q[ENS_ROUTE_FMT_BUF];

  ens_route_request_parse (request, &req);
  eligible = ens_route_eligible (&req, candidates, error);
  if (eligible == NULL)
    return NULL;
  g_ptr_array_sort (eligible, by_cost);
  best = g_ptr_array_index (eligible, 0);
  reasoning = g_strdup_printf ("%s: cheapest of %u eligible, estimated $%s for %" G_GINT64_FORMAT
                               " tokens ($%s per 1k, quality %s)",
                               best->name, eligible->len, g_ascii_formatd (cost, sizeof cost, "%.4f", best->estimated_cost),
                               req.token_count, g_ascii_formatd (price, sizeof price, "%.4f", best->cost_per_1k),
                               ens_route_fmt (q, sizeof q, best->quality));
  return ens_route_result ("cheapest", eligible, reasoning, best->quality * (1.0 - best->error_rate), FALSE);
}

static gpointer
cheapest_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  /* Stateless; the instance only has to be non-NULL. */
  return g_new0 (char, 1);
}

static void
cheapest_stop (gpointer instance)
{
  g_free (instance);
}

static const EnsRouterVTable cheapest_vtable = {
  .struct_size = sizeof (EnsRouterVTable),
  .name = "cheapest",
  .choose = cheapest_choose,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_ROUTER, "router-cheapest", "1.0", "Routes to the cheapest eligible provider",
                   ENS_PLUGIN_FLAG_NONE, cheapest_init, cheapest_stop, NULL, &cheapest_vtable)
