/* ens-backends.c — provider backends and router policies.  A router ranks
 * every backend as a candidate {name, provider, models, quality,
 * cost_per_1k, latency_ms (observed), error_rate, ...}; the one named by
 * the router-policy setting decides. */
#include "ens-backends.h"
#include "ens-completion-params.h"
#include "ens-json.h"
#include "ens-message-private.h"

#include <string.h>

#define EMA 0.2

struct _EnsBackends {
  EnsConfig *config;
  EnsBudget *budget;
  GHashTable *table; /* name -> EnsBackend */
  GPtrArray *routers; /* EnsPlugin* */
};

double
ens_info_double (JsonObject *info, const char *member, double fallback)
{
  JsonNode *n = info ? json_object_get_member (info, member) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_double (n) : fallback;
}

double
ens_backend_cost (EnsBackend *b, double input, double output)
{
  return input / 1000.0 * b->cost_in + output / 1000.0 * b->cost_out;
}

static void
backend_free (EnsBackend *b)
{
  g_free (b->name);
  json_object_unref (b->info);
  g_clear_pointer (&b->candidate, json_node_unref);
  g_free (b);
}

EnsBackends *
ens_backends_new (EnsConfig *config, EnsBudget *budget)
{
  EnsBackends *backends = g_new0 (EnsBackends, 1);

  backends->config = config;
  backends->budget = budget;
  backends->table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) backend_free);
  backends->routers = g_ptr_array_new ();
  return backends;
}

void
ens_backends_free (EnsBackends *backends)
{
  if (backends == NULL)
    return;
  g_hash_table_unref (backends->table);
  g_ptr_array_unref (backends->routers);
  g_free (backends);
}

static void
add_provider (EnsBackends *backends, EnsPlugin *plugin)
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

      if (name == NULL || g_hash_table_contains (backends->table, name))
        {
          g_warning ("provider %s: backend %s left out (no name, or the name is taken)", ens_plugin_get_id (plugin),
                     name ? name : "?");
          continue;
        }
      b = g_new0 (EnsBackend, 1);
      b->name = g_strdup (name);
      b->plugin = plugin;
      b->info = json_object_ref (info);
      b->latency_ms = ens_info_double (info, "latency_ms", 1000);
      b->cost_in = ens_info_double (info, "cost_per_1k_input", 0);
      b->cost_out = ens_info_double (info, "cost_per_1k_output", 0);
      {
        JsonNode *n = json_object_get_member (info, "local");
        b->local = n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN &&
                   json_node_get_boolean (n);
        n = json_object_get_member (info, "models");
        b->models = n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
        n = json_object_get_member (info, "model_map");
        b->model_map = n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
      }
      b->max_concurrency = (guint) CLAMP (ens_info_double (info, "max_concurrency", 4), 1, 10000);
      g_hash_table_insert (backends->table, b->name, b);
      g_message ("provider backend %s served by %s", b->name, ens_plugin_get_id (plugin));
    }
}

void
ens_backends_add_plugin (EnsBackends *backends, EnsPlugin *plugin)
{
  EnsPluginKind kind = ens_plugin_get_desc (plugin)->kind;

  if (kind == ENS_PLUGIN_KIND_PROVIDER)
    add_provider (backends, plugin);
  else if (kind == ENS_PLUGIN_KIND_ROUTER)
    g_ptr_array_add (backends->routers, plugin);
}

void
ens_backends_forget_plugin (EnsBackends *backends, EnsPlugin *plugin)
{
  GHashTableIter iter;
  gpointer value;

  g_ptr_array_remove (backends->routers, plugin);
  g_hash_table_iter_init (&iter, backends->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((EnsBackend *) value)->plugin == plugin)
      g_hash_table_iter_remove (&iter);
}

EnsBackend *
ens_backends_lookup (EnsBackends *backends, const char *name)
{
  return g_hash_table_lookup (backends->table, name);
}

guint
ens_backends_count (EnsBackends *backends)
{
  return g_hash_table_size (backends->table);
}

guint
ens_backends_running (EnsBackends *backends)
{
  guint n = 0;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, backends->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    n += ((EnsBackend *) value)->running;
  return n;
}

gboolean
ens_backend_lists_model (EnsBackend *b, const char *model)
{
  JsonArray *models = b->models;

  for (guint i = 0; models && i < json_array_get_length (models); i++)
    {
      JsonNode *m = json_array_get_element (models, i);
      if (JSON_NODE_HOLDS_VALUE (m) && json_node_get_value_type (m) == G_TYPE_STRING &&
          g_strcmp0 (json_node_get_string (m), model) == 0)
        return TRUE;
    }
  return FALSE;
}

const char *
ens_backend_model (EnsBackend *b, const char *model)
{
  JsonArray *models = b->models;
  JsonObject *map = b->model_map;
  const char *mapped;

  if (model == NULL && models && json_array_get_length (models) > 0 &&
      JSON_NODE_HOLDS_VALUE (json_array_get_element (models, 0)) &&
      json_node_get_value_type (json_array_get_element (models, 0)) == G_TYPE_STRING)
    model = json_array_get_string_element (models, 0);
  if (model == NULL)
    return b->name;
  mapped = map ? ens_json_get_string (map, model) : NULL;
  return mapped && mapped[0] ? mapped : model;
}

static gboolean
backend_serves (EnsBackend *b, const char *model)
{
  return strcmp (b->name, model) == 0 || ens_backend_lists_model (b, model);
}

gboolean
ens_backends_serve_model (EnsBackends *backends, const char *model)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, backends->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (backend_serves (value, model))
      return TRUE;
  return FALSE;
}

/* (transfer none) @b's embedding models, or NULL when it has none. */
static JsonArray *
embedding_models (EnsBackend *b)
{
  JsonNode *node = json_object_get_member (b->info, "embedding_models");
  JsonArray *models = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;

  return models && json_array_get_length (models) > 0 ? models : NULL;
}

static gboolean
array_has_string (JsonArray *array, const char *value)
{
  for (guint i = 0; array && i < json_array_get_length (array); i++)
    {
      JsonNode *m = json_array_get_element (array, i);
      if (JSON_NODE_HOLDS_VALUE (m) && json_node_get_value_type (m) == G_TYPE_STRING &&
          g_strcmp0 (json_node_get_string (m), value) == 0)
        return TRUE;
    }
  return FALSE;
}

gboolean
ens_backend_can_embed (EnsBackend *b)
{
  return embedding_models (b) != NULL;
}

const char *
ens_backend_embedding_model (EnsBackend *b, const char *model)
{
  JsonArray *models = embedding_models (b);
  JsonNode *first = models ? json_array_get_element (models, 0) : NULL;

  if (models == NULL)
    return NULL;
  if (model && array_has_string (models, model))
    return model;
  return JSON_NODE_HOLDS_VALUE (first) && json_node_get_value_type (first) == G_TYPE_STRING
           ? json_node_get_string (first) : NULL;
}

static gboolean
backend_embeds (EnsBackend *b, const char *model)
{
  return ens_backend_can_embed (b) && (strcmp (b->name, model) == 0 || array_has_string (embedding_models (b), model));
}

gboolean
ens_backends_serve_embedding (EnsBackends *backends, const char *model)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, backends->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (backend_embeds (value, model))
      return TRUE;
  return FALSE;
}

gboolean
ens_backend_is_local (EnsBackend *b)
{
  return b->local;
}

gboolean
ens_backends_offline_only (EnsBackends *backends)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, backends->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (!ens_backend_is_local (value))
      return FALSE;
  return TRUE;
}

/* The backends in name order, so that what is picked among several does
 * not depend on a hash table's order. (transfer container) */
static GPtrArray *
sorted_backends (EnsBackends *backends)
{
  GPtrArray *out = g_ptr_array_new ();
  g_autoptr (GList) names = g_list_sort (g_hash_table_get_keys (backends->table), (GCompareFunc) strcmp);

  for (GList *l = names; l; l = l->next)
    g_ptr_array_add (out, g_hash_table_lookup (backends->table, l->data));
  return out;
}

/* (transfer none) a model of a real backend whose name contains @word
 * (ASCII case ignored), the backends in name order; NULL when none. */
static const char *
served_model_containing (EnsBackends *backends, const char *word)
{
  g_autoptr (GPtrArray) sorted = sorted_backends (backends);
  g_autofree char *needle = g_ascii_strdown (word, -1);

  for (guint i = 0; i < sorted->len; i++)
    {
      EnsBackend *b = g_ptr_array_index (sorted, i);
      JsonArray *models = b->models;

      if (ens_backend_is_local (b))
        continue;
      for (guint j = 0; models && j < json_array_get_length (models); j++)
        {
          JsonNode *m = json_array_get_element (models, j);
          g_autofree char *lower = NULL;

          if (!JSON_NODE_HOLDS_VALUE (m) || json_node_get_value_type (m) != G_TYPE_STRING)
            continue;
          lower = g_ascii_strdown (json_node_get_string (m), -1);
          if (strstr (lower, needle))
            return json_node_get_string (m);
        }
    }
  return NULL;
}

char *
ens_backends_alias (EnsBackends *backends, const char *name)
{
  g_autoptr (GVariant) aliases = ens_config_get (backends->config, "model-aliases");
  const char *target = NULL;

  if (name == NULL || aliases == NULL || !g_variant_is_of_type (aliases, G_VARIANT_TYPE ("a{ss}")) ||
      !g_variant_lookup (aliases, name, "&s", &target) || target[0] == '\0')
    return NULL;
  return g_strdup (target);
}

char *
ens_backends_resolve_model (EnsBackends *backends, const char *requested)
{
  g_autofree char *target = NULL;
  const char *found;

  if (requested == NULL || ens_backends_serve_model (backends, requested))
    return g_strdup (requested);
  target = ens_backends_alias (backends, requested);
  if (target == NULL)
    return g_strdup (requested);
  if (ens_backends_serve_model (backends, target))
    return g_steal_pointer (&target);
  /* The model it names is not configured: a served one of the same family
   * ("sonnet" -> "claude-3-7-sonnet-latest"), else the name as it came. */
  found = served_model_containing (backends, requested);
  return g_strdup (found ? found : requested);
}

static int
by_string (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* (transfer full) [{alias, model, provider}] for each alias that resolves
 * to a model a real backend serves, in alias order. */
static JsonNode *
aliases_describe (EnsBackends *backends)
{
  g_autoptr (GVariant) aliases = ens_config_get (backends->config, "model-aliases");
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  g_autoptr (GPtrArray) sorted = sorted_backends (backends);
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);
  GVariantIter iter;
  const char *alias, *target;

  json_node_take_array (node, array);
  if (aliases == NULL || !g_variant_is_of_type (aliases, G_VARIANT_TYPE ("a{ss}")))
    return node;
  g_variant_iter_init (&iter, aliases);
  while (g_variant_iter_next (&iter, "{&s&s}", &alias, &target))
    g_ptr_array_add (names, (gpointer) alias);
  g_ptr_array_sort (names, by_string);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      g_autofree char *model = NULL;
      JsonObject *o;

      if (ens_backends_serve_model (backends, name))
        continue; /* a backend's own name or model wins over the alias */
      model = ens_backends_resolve_model (backends, name);
      for (guint j = 0; j < sorted->len; j++)
        {
          EnsBackend *b = g_ptr_array_index (sorted, j);
          if (strcmp (model, name) == 0 || ens_backend_is_local (b) || !backend_serves (b, model))
            continue;
          o = json_object_new ();
          json_object_set_string_member (o, "alias", name);
          json_object_set_string_member (o, "model", model);
          json_object_set_string_member (o, "provider", b->name);
          json_array_add_object_element (array, o);
          break;
        }
    }
  return node;
}

/* A value member of a candidate: a new node when @fresh, else the one
 * there, updated in place.  Only nodes made here may be updated: a copy of
 * a member of the backend's info shares its value with the info. */
static void
set_number (JsonObject *obj, const char *name, GType type, double value, gboolean fresh)
{
  JsonNode *n = fresh ? NULL : json_object_get_member (obj, name);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n))
    {
      n = json_node_new (JSON_NODE_VALUE);
      json_object_set_member (obj, name, n);
    }
  if (type == G_TYPE_BOOLEAN)
    json_node_set_boolean (n, value != 0);
  else if (type == G_TYPE_INT64)
    json_node_set_int (n, (gint64) value);
  else
    json_node_set_double (n, value);
}

/* The members of @b's candidate that change as completions run (@fresh:
 * set for the first time, see set_number()). */
static void
candidate_observe (JsonObject *obj, EnsBackend *b, gboolean fresh)
{
  gint64 now = g_get_monotonic_time ();

  set_number (obj, "latency_ms", G_TYPE_DOUBLE, b->latency_ms, fresh);
  set_number (obj, "error_rate", G_TYPE_DOUBLE, b->error_rate, fresh);
  set_number (obj, "cooling_down", G_TYPE_BOOLEAN, b->cooldown_until > now, fresh);
  set_number (obj, "cooldown_remaining_ms", G_TYPE_INT64, (double) (MAX (b->cooldown_until - now, 0) / 1000), fresh);
  set_number (obj, "running", G_TYPE_INT64, b->running, fresh);
}

static JsonNode *
backend_candidate (EnsBackend *b)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;
  double cin = ens_info_double (b->info, "cost_per_1k_input", 0);
  double cout = ens_info_double (b->info, "cost_per_1k_output", 0);

  json_object_iter_init (&iter, b->info);
  while (json_object_iter_next (&iter, &name, &member))
    json_object_set_member (obj, name, json_node_copy (member));
  json_object_set_string_member (obj, "provider", ens_plugin_get_id (b->plugin));
  json_object_set_double_member (obj, "cost_per_1k", (cin + cout) / 2);
  candidate_observe (obj, b, TRUE);
  json_object_set_double_member (obj, "configured_latency_ms", ens_info_double (b->info, "latency_ms", 1000));
  return node;
}

/* (transfer full) @b as a router's candidate for one decision: the node
 * built once, its observed members set afresh (a new object copying every
 * member of the backend's info cost ~110,000 instructions a decision with
 * three backends).  Routers only read their candidates. */
static JsonNode *
backend_candidate_now (EnsBackend *b)
{
  if (b->candidate == NULL)
    b->candidate = backend_candidate (b);
  else
    candidate_observe (json_node_get_object (b->candidate), b, FALSE);
  return json_node_ref (b->candidate);
}

JsonNode *
ens_backends_describe (EnsBackends *backends)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  JsonArray *array = json_array_new ();
  g_autoptr (GList) names = g_list_sort (g_hash_table_get_keys (backends->table), (GCompareFunc) strcmp);

  for (GList *l = names; l; l = l->next)
    {
      EnsBackend *b = g_hash_table_lookup (backends->table, l->data);
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
  json_object_set_member (obj, "aliases", aliases_describe (backends));
  return node;
}

static EnsPlugin *
active_router (EnsBackends *backends, char **name_out)
{
  g_autofree char *wanted = ens_config_get_path (backends->config, "router-policy");

  for (guint i = 0; i < backends->routers->len; i++)
    {
      EnsPlugin *p = g_ptr_array_index (backends->routers, i);
      if (g_strcmp0 (((const EnsRouterVTable *) ens_plugin_get_desc (p)->vtable)->name, wanted) == 0)
        {
          *name_out = g_steal_pointer (&wanted);
          return p;
        }
    }
  *name_out = g_steal_pointer (&wanted);
  return NULL;
}

gboolean
ens_backends_has_policy (EnsBackends *backends, const char *policy, char **why)
{
  g_autoptr (GString) names = g_string_new (NULL);

  for (guint i = 0; i < backends->routers->len; i++)
    {
      const char *name = ((const EnsRouterVTable *) ens_plugin_get_desc (g_ptr_array_index (backends->routers, i))->vtable)->name;

      if (g_strcmp0 (name, policy) == 0)
        return TRUE;
      g_string_append_printf (names, "%s%s", names->len ? ", " : "", name);
    }
  *why = g_strdup_printf ("no router plugin loaded is called \"%s\"; the policies are: %s", policy,
                          names->len ? names->str : "none");
  return FALSE;
}

const char *
ens_backends_some_policy (EnsBackends *backends, const char *preferred)
{
  g_autofree char *why = NULL;

  if (preferred && ens_backends_has_policy (backends, preferred, &why))
    return preferred;
  return backends->routers->len
           ? ((const EnsRouterVTable *) ens_plugin_get_desc (g_ptr_array_index (backends->routers, 0))->vtable)->name
           : NULL;
}

JsonNode *
ens_backends_decide (EnsBackends *backends, JsonNode *route, const char **code, char **message)
{
  g_autofree char *policy = NULL;
  EnsPlugin *router = active_router (backends, &policy);
  g_autoptr (JsonNode) candidates = json_node_new (JSON_NODE_ARRAY);
  JsonArray *array = json_array_new ();
  g_autoptr (GError) error = NULL;
  JsonNode *decision;
  GHashTableIter iter;
  gpointer value;
  const char *model = ens_json_get_string (json_node_get_object (route), "model");
  gboolean embed = g_strcmp0 (ens_json_get_string (json_node_get_object (route), "kind"), "embeddings") == 0;
  gboolean offline_only = ens_backends_offline_only (backends);

  json_node_take_array (candidates, array);
  g_hash_table_iter_init (&iter, backends->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      /* The offline provider is no real LLM: a candidate only when nothing
       * else is configured, or when asked for by its name or model. */
      JsonNode *candidate;

      if (ens_backend_is_local (value) && !offline_only &&
          !(model && (embed ? backend_embeds (value, model) : backend_serves (value, model))))
        continue;
      if (embed && !ens_backend_can_embed (value))
        continue;
      if (!embed)
        {
          json_array_add_element (array, backend_candidate_now (value));
          continue;
        }
      /* Ranked as what it embeds with, for any task (a copy: the cached
       * candidate is the chat one). */
      candidate = backend_candidate (value);
      json_object_set_array_member (json_node_get_object (candidate), "models",
                                    json_array_ref (embedding_models (value)));
      json_object_remove_member (json_node_get_object (candidate), "capabilities");
      json_array_add_element (array, candidate);
    }
  if (json_array_get_length (array) == 0)
    {
      *code = ENS_COMPLETION_ERR_NO_PROVIDER;
      *message = g_strdup (embed ? "no provider backend makes embeddings (setting embedding-models)"
                                 : "no provider plugin is loaded");
      return NULL;
    }
  if (router == NULL)
    {
      *code = ENS_COMPLETION_ERR_NO_ROUTER;
      *message = g_strdup_printf ("the router policy \"%s\" (setting router-policy) is not loaded", policy);
      return NULL;
    }
  ens_json_put_double (json_node_get_object (route), "budget_remaining", ens_budget_remaining (backends->budget));
  decision = ((const EnsRouterVTable *) ens_plugin_get_desc (router)->vtable)
               ->choose (ens_plugin_get_instance (router), route, candidates, &error);
  if (decision == NULL || !JSON_NODE_HOLDS_OBJECT (decision) ||
      ens_json_get_string (json_node_get_object (decision), "provider") == NULL)
    {
      *code = ENS_COMPLETION_ERR_NO_PROVIDER;
      *message = g_strdup_printf ("no provider fits: %s", error ? error->message : "the router chose none");
      g_clear_pointer (&decision, json_node_unref);
      return NULL;
    }
  /* The policy as configured (routers name themselves so already). */
  if (g_strcmp0 (ens_json_get_string (json_node_get_object (decision), "policy"), policy) != 0)
    json_object_set_string_member (json_node_get_object (decision), "policy", policy);
  return decision;
}

void
ens_backends_observe (EnsBackends *backends, EnsBackend *b, gint64 started_us, gboolean failed)
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
  if (++b->consecutive_failures >= ens_config_get_uint (backends->config, "provider-failure-threshold"))
    {
      guint ms = ens_config_get_uint (backends->config, "provider-cooldown-ms");
      b->cooldown_until = g_get_monotonic_time () + (gint64) ms * 1000;
      b->consecutive_failures = 0;
      g_warning ("provider backend %s keeps failing: left out of routing for %u ms", b->name, ms);
    }
}

/* ---------------------------------------------------------------- verbs */

/* (transfer full) UNKNOWN_MODEL for @asked in @field (naming what its alias
 * stands for), listing what is served. */
EnsMessage *
ens_backends_unknown_model (EnsBackends *backends, EnsMessage *request, const char *field, const char *asked)
{
  g_autofree char *text = NULL;
  g_autofree char *target = strcmp (field, "model") == 0 ? ens_backends_alias (backends, asked) : NULL;
  JsonObject *det;
  g_autoptr (JsonNode) details = ens_json_object_node (&det);

  if (target)
    text = g_strdup_printf ("no provider serves the model \"%s\" (alias of \"%s\")", target, asked);
  else
    text = g_strdup_printf ("no provider serves the %s \"%s\"", field, asked);
  json_object_set_string_member (det, "field", field);
  json_object_set_member (det, "providers", ens_backends_describe (backends));
  return ens_message_new_error (request, ENS_COMPLETION_ERR_UNKNOWN_MODEL, text, details);
}

static EnsMessage *
verb_route (EnsCall *call, gpointer data)
{
  EnsBackends *backends = data;
  JsonObject *p = call->params, *route;
  g_autoptr (JsonNode) route_node = ens_json_object_node (&route);
  g_autoptr (JsonNode) decision = NULL;
  EnsMessage *err = ens_completion_read_route (call->msg, p, route);
  const char *code = NULL, *model = NULL;
  g_autofree char *message = NULL;
  g_autofree char *resolved = NULL;

  if (err)
    return err;
  if (!json_object_has_member (route, "token_count"))
    json_object_set_double_member (route, "token_count", 1000);
  model = ens_json_get_string (p, "model");
  if (p && json_object_has_member (p, "model") && model == NULL &&
      !JSON_NODE_HOLDS_NULL (json_object_get_member (p, "model")))
    return ens_call_invalid (call, "model", "a string");
  if (model && model[0] && strcmp (model, "auto") != 0)
    {
      resolved = ens_backends_resolve_model (backends, model);
      if (ens_backends_serve_model (backends, resolved))
        json_object_set_string_member (route, "model", resolved);
      else if (!ens_backends_offline_only (backends))
        return ens_backends_unknown_model (backends, call->msg, "model", model);
    }
  decision = ens_backends_decide (backends, route_node, &code, &message);
  if (decision == NULL)
    return ens_message_new_error (call->msg, code, message, NULL);
  if (resolved)
    json_object_set_string_member (json_node_get_object (decision), "model", resolved);
  return ens_message_new_reply (call->msg, decision);
}

static EnsMessage *
verb_providers (EnsCall *call, gpointer data)
{
  g_autoptr (JsonNode) reply = ens_backends_describe ((EnsBackends *) data);
  return ens_message_new_reply (call->msg, reply);
}

static EnsMessage *
verb_budget (EnsCall *call, gpointer data)
{
  g_autoptr (JsonNode) reply = ens_budget_describe (((EnsBackends *) data)->budget);
  return ens_message_new_reply (call->msg, reply);
}

void
ens_backends_add_verbs (EnsBackends *backends, EnsVerbs *verbs)
{
  ens_verbs_add (verbs, "route", verb_route, backends);
  ens_verbs_add (verbs, "providers.list", verb_providers, backends);
  ens_verbs_add (verbs, "budget", verb_budget, backends);
}
