/* ens-upstream-provider.c — see ens-upstream-provider.h. */
#include "ens-upstream-provider.h"

#include "ens-upstream-private.h"

#include <string.h>

static gboolean
valid_instance_name (const char *name)
{
  if (!name || !*name)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

static GPtrArray *
backends_load (EnsUpstreamProvider *provider)
{
  GPtrArray *backends = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_upstream_backend_unref);
  g_autoptr (GVariant) names = provider->host->config_get (provider->self, "providers");
  const char *own_id = provider->host->plugin_id (provider->self);
  GVariantIter iter;
  const char *name;

  if (!names || !g_variant_is_of_type (names, G_VARIANT_TYPE_STRING_ARRAY))
    return backends;
  g_variant_iter_init (&iter, names);
  while (g_variant_iter_next (&iter, "&s", &name))
    {
      g_autofree char *path = NULL;
      g_autofree char *plugin = NULL;
      g_autoptr (GSettings) s = NULL;
      EnsUpstreamBackend *be;

      if (!valid_instance_name (name))
        {
          ENS_LOG (provider->host, provider->self, G_LOG_LEVEL_WARNING,
                   "provider name \"%s\" skipped: only letters, digits, '-', '_' and '.' are allowed", name);
          continue;
        }
      path = g_strdup_printf ("/org/ensemble/daemon/providers/%s/", name);
      s = provider->host->settings_new (provider->self, "org.ensemble.Provider", path);
      if (!s)
        {
          ENS_LOG (provider->host, provider->self, G_LOG_LEVEL_WARNING,
                   "schema org.ensemble.Provider is not installed; no backends");
          break;
        }
      plugin = g_settings_get_string (s, "plugin");
      if (g_strcmp0 (plugin, provider->api->id) != 0 && g_strcmp0 (plugin, own_id) != 0)
        continue;
      be = ens_upstream_backend_load (provider->host, provider->self, name, s);
      provider->api->setup (provider->host, provider->self, be);
      g_ptr_array_add (backends, be);
    }
  return backends;
}

EnsUpstreamProvider *
ens_upstream_provider_new (const EnsHost *host, EnsPlugin *self, const EnsUpstreamApi *api)
{
  EnsUpstreamProvider *provider = g_new0 (EnsUpstreamProvider, 1);

  provider->host = host;
  provider->self = self;
  provider->api = api;
  /* The core's parser is faster than json-glib's and bounds nesting. */
  provider->parse = ENS_STRUCT_HAS (host, EnsHost, json_parse) && host->json_parse ? host->json_parse
                                                                                 : ens_upstream_json_parse;
  /* Its scanner, when it reads the same JSON: the parser is the host's too. */
  if (ENS_STRUCT_HAS (host, EnsHost, json_scan_checked_members) && provider->parse == host->json_parse &&
      host->json_scan_members && host->json_scan_checked_members)
    {
      provider->scanner.members = host->json_scan_members;
      provider->scanner.checked_members = host->json_scan_checked_members;
    }
  provider->calls = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) ens_upstream_call_unref,
                                           NULL);
  provider->backends = backends_load (provider);
  return provider;
}

void
ens_upstream_provider_free (EnsUpstreamProvider *provider)
{
  GHashTableIter iter;
  gpointer key;

  /* Ending a call removes it from the set, so take them one at a time. */
  while (g_hash_table_size (provider->calls) > 0)
    {
      g_hash_table_iter_init (&iter, provider->calls);
      g_hash_table_iter_next (&iter, &key, NULL);
      ens_upstream_call_fail (key, ENS_COMPLETION_ERR_CANCELLED, "the provider plugin is stopping");
    }
  g_hash_table_unref (provider->calls);
  g_ptr_array_unref (provider->backends);
  g_free (provider);
}

static void
add_strv (JsonObject *obj, const char *member, char **values)
{
  JsonArray *array = json_array_new ();

  for (char **v = values; v && *v; v++)
    json_array_add_string_element (array, *v);
  json_object_set_array_member (obj, member, array);
}

/* (transfer full) {requested: upstream name} */
static JsonObject *
map_object (GHashTable *map)
{
  JsonObject *obj = json_object_new ();
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, map);
  while (g_hash_table_iter_next (&iter, &key, &value))
    json_object_set_string_member (obj, key, value);
  return obj;
}

JsonNode *
ens_upstream_provider_backends (EnsUpstreamProvider *provider)
{
  const char *own_id = provider->host->plugin_id (provider->self);
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  /* Running calls keep their own backend references. */
  g_ptr_array_unref (provider->backends);
  provider->backends = backends_load (provider);

  for (guint i = 0; i < provider->backends->len; i++)
    {
      EnsUpstreamBackend *be = g_ptr_array_index (provider->backends, i);
      JsonObject *obj = json_object_new ();

      json_object_set_string_member (obj, "name", be->name);
      json_object_set_string_member (obj, "provider", own_id ? own_id : provider->api->id);
      add_strv (obj, "models", be->models);
      json_object_set_object_member (obj, "model_map", map_object (be->model_map));
      json_object_set_double_member (obj, "quality", be->quality);
      json_object_set_double_member (obj, "cost_per_1k_input", be->cost_input);
      json_object_set_double_member (obj, "cost_per_1k_output", be->cost_output);
      json_object_set_int_member (obj, "latency_ms", be->latency_ms);
      json_object_set_int_member (obj, "context_window", be->context_window);
      add_strv (obj, "capabilities", be->capabilities);
      json_object_set_int_member (obj, "max_concurrency", be->max_concurrency);
      json_object_set_boolean_member (obj, "local", FALSE);
      if (be->embedding_models && be->embedding_models[0])
        add_strv (obj, "embedding_models", be->embedding_models);
      json_array_add_object_element (array, obj);
    }
  json_node_take_array (node, array);
  return node;
}

EnsUpstreamBackend *
ens_upstream_provider_find (EnsUpstreamProvider *provider, const char *name)
{
  for (guint i = 0; name && i < provider->backends->len; i++)
    {
      EnsUpstreamBackend *be = g_ptr_array_index (provider->backends, i);
      if (strcmp (be->name, name) == 0)
        return be;
    }
  return NULL;
}

JsonNode *
ens_upstream_provider_describe (EnsUpstreamProvider *provider)
{
  JsonObject *obj = json_object_new ();
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  guint draining = 0;

  for (guint i = 0; i < provider->backends->len; i++)
    {
      EnsUpstreamBackend *be = g_ptr_array_index (provider->backends, i);
      JsonObject *b = json_object_new ();

      json_object_set_string_member (b, "name", be->name);
      json_object_set_string_member (b, "base_url", be->base_url);
      json_object_set_boolean_member (b, "has_key", be->api_key != NULL);
      json_object_set_int_member (b, "max_connections", be->max_concurrency);
      json_object_set_int_member (b, "idle_timeout_s", be->idle_timeout_s);
      json_array_add_object_element (array, b);
      draining += ens_upstream_backend_draining (be);
    }
  json_object_set_array_member (obj, "backends", array);
  json_object_set_int_member (obj, "running", g_hash_table_size (provider->calls));
  json_object_set_int_member (obj, "draining", draining);
  json_node_take_object (node, obj);
  return node;
}
