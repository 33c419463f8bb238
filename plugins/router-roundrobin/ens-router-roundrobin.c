/* ens-router-roundrobin — spreads requests over the eligible backends in
 * turn.  Backends are ordered by name so the rotation does not depend on the
 * order the core lists them in; each call starts one further along, and the
 * ranking is the rest of the rotation (the fallback order). */
#include "ens-route.h"

#include <string.h>

typedef struct {
  guint64 turn; /* calls so far; main loop only */
} RoundRobin;

static int
by_name (gconstpointer a, gconstpointer b)
{
  const EnsRouteCandidate *x = *(EnsRouteCandidate *const *) a, *y = *(EnsRouteCandidate *const *) b;
  int c = strcmp (x->name, y->name);

  return c != 0 ? c : (x->index < y->index ? -1 : x->index > y->index);
}

static JsonNode *
roundrobin_choose (gpointer instance, JsonNode *request, JsonNode *candidates, GError **error)
{
  RoundRobin *rr = instance;
  EnsRouteRequest req;
  g_autoptr (GPtrArray) eligible = NULL;
  g_autoptr (GPtrArray) rotation = NULL;
  g_autofree char *reasoning = NULL;
  const EnsRouteCandidate *best;
  guint start;

  ens_route_request_parse (request, &req);
  eligible = ens_route_eligible (&req, candidates, error);
  if (eligible == NULL)
    return NULL;
  g_ptr_array_sort (eligible, by_name);
  start = (guint) (rr->turn++ % eligible->len);
  /* Borrowed pointers: @eligible owns the candidates. */
  rotation = g_ptr_array_sized_new (eligible->len);
  for (guint i = 0; i < eligible->len; i++)
    g_ptr_array_add (rotation, g_ptr_array_index (eligible, (start + i) % eligible->len));
  best = g_ptr_array_index (rotation, 0);
  reasoning = g_strdup_printf ("%s: round-robin turn %u of %u eligible", best->name, start + 1, eligible->len);
  return ens_route_result ("roundrobin", rotation, reasoning, best->quality * (1.0 - best->error_rate), FALSE);
}

static gpointer
roundrobin_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  return g_new0 (RoundRobin, 1);
}

static void
roundrobin_stop (gpointer instance)
{
  g_free (instance);
}

static JsonNode *
roundrobin_describe (gpointer instance)
{
  RoundRobin *rr = instance;
  JsonObject *obj = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_int_member (obj, "turn", (gint64) rr->turn);
  json_node_take_object (node, obj);
  return node;
}

static const EnsRouterVTable roundrobin_vtable = {
  .struct_size = sizeof (EnsRouterVTable),
  .name = "roundrobin",
  .choose = roundrobin_choose,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_ROUTER, "router-roundrobin", "1.0", "Routes to each eligible provider in turn",
                   ENS_PLUGIN_FLAG_NONE, roundrobin_init, roundrobin_stop, roundrobin_describe, &roundrobin_vtable)
