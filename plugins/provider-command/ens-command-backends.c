/* ens-command-backends.c — provider-command's backends: the entries of the
 * providers setting that name this plugin, checked and kept as snapshots. */
#include "ens-command.h"

#include <string.h>


/* ---- backends ---- */

void
ens_command_backend_free (gpointer data)
{
  Backend *b = data;

  g_free (b->name);
  g_strfreev (b->command);
  g_strfreev (b->models);
  g_hash_table_unref (b->model_map);
  g_strfreev (b->capabilities);
  g_free (b);
}

static gboolean
valid_name (const char *name)
{
  if (name == NULL || *name == '\0')
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

/* Re-reads the providers setting; keeps the old table when nothing is there
 * to read from. */
void
ens_command_load_backends (Command *cmd)
{
  const char *id = cmd->host->plugin_id (cmd->self);
  g_autoptr (GVariant) names = cmd->host->config_get (cmd->self, "providers");
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, ens_command_backend_free);
  g_autofree const char **list = NULL;

  if (names && g_variant_is_of_type (names, G_VARIANT_TYPE_STRING_ARRAY))
    list = g_variant_get_strv (names, NULL);
  for (guint i = 0; list && list[i]; i++)
    {
      g_autofree char *path = NULL;
      g_autoptr (GSettings) s = NULL;
      g_autofree char *plugin = NULL;
      g_autoptr (GVariant) map = NULL;
      g_autofree char *mode = NULL, *format = NULL;
      GVariantIter iter;
      const char *from, *to;
      Backend *b;

      if (!valid_name (list[i]))
        {
          ENS_LOG (cmd->host, cmd->self, G_LOG_LEVEL_WARNING, "provider name \"%s\" is not valid; skipped", list[i]);
          continue;
        }
      if (g_hash_table_contains (table, list[i]))
        continue;
      path = g_strdup_printf ("/org/ensemble/daemon/providers/%s/", list[i]);
      s = cmd->host->settings_new (cmd->self, PROVIDER_SCHEMA, path);
      if (s == NULL)
        continue;
      plugin = g_settings_get_string (s, "plugin");
      if (g_strcmp0 (plugin, id) != 0)
        continue;

      b = g_new0 (Backend, 1);
      b->name = g_strdup (list[i]);
      b->command = g_settings_get_strv (s, "command");
      mode = g_settings_get_string (s, "prompt-mode");
      b->prompt_argument = g_strcmp0 (mode, "argument") == 0;
      format = g_settings_get_string (s, "output-format");
      b->json_output = g_strcmp0 (format, "json") == 0;
      b->models = g_settings_get_strv (s, "models");
      b->model_map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      map = g_settings_get_value (s, "model-map");
      g_variant_iter_init (&iter, map);
      while (g_variant_iter_next (&iter, "{&s&s}", &from, &to))
        g_hash_table_insert (b->model_map, g_strdup (from), g_strdup (to));
      b->quality = g_settings_get_double (s, "quality");
      b->cost_input = g_settings_get_double (s, "cost-input-per-1k");
      b->cost_output = g_settings_get_double (s, "cost-output-per-1k");
      b->latency_ms = g_settings_get_uint (s, "latency-ms");
      b->context_window = g_settings_get_uint (s, "context-window");
      b->capabilities = g_settings_get_strv (s, "capabilities");
      b->max_concurrency = g_settings_get_uint (s, "max-concurrency");
      b->timeout_ms = g_settings_get_uint (s, "timeout-ms");
      if (b->command[0] == NULL)
        ENS_LOG (cmd->host, cmd->self, G_LOG_LEVEL_WARNING, "provider \"%s\" has no command", b->name);
      g_hash_table_insert (table, b->name, b);
    }
  g_hash_table_unref (cmd->backends);
  cmd->backends = table;
}

static void
add_strv (JsonBuilder *b, const char *member, char **strv)
{
  json_builder_set_member_name (b, member);
  json_builder_begin_array (b);
  for (guint i = 0; strv && strv[i]; i++)
    json_builder_add_string_value (b, strv[i]);
  json_builder_end_array (b);
}

static int
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (((const Backend *) *(void *const *) a)->name, ((const Backend *) *(void *const *) b)->name);
}

JsonNode *
ens_command_backends (gpointer instance)
{
  Command *cmd = instance;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  ens_command_load_backends (cmd);
  g_hash_table_iter_init (&iter, cmd->backends);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (sorted, value);
  g_ptr_array_sort (sorted, by_name);
  json_builder_begin_array (b);
  for (guint i = 0; i < sorted->len; i++)
    {
      const Backend *be = g_ptr_array_index (sorted, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, be->name);
      json_builder_set_member_name (b, "provider");
      json_builder_add_string_value (b, cmd->host->plugin_id (cmd->self));
      add_strv (b, "models", be->models);
      json_builder_set_member_name (b, "model_map");
      json_builder_begin_object (b);
      {
        GHashTableIter mi;
        gpointer from, to;
        g_hash_table_iter_init (&mi, be->model_map);
        while (g_hash_table_iter_next (&mi, &from, &to))
          {
            json_builder_set_member_name (b, from);
            json_builder_add_string_value (b, to);
          }
      }
      json_builder_end_object (b);
      json_builder_set_member_name (b, "quality");
      json_builder_add_double_value (b, be->quality);
      json_builder_set_member_name (b, "cost_per_1k_input");
      json_builder_add_double_value (b, be->cost_input);
      json_builder_set_member_name (b, "cost_per_1k_output");
      json_builder_add_double_value (b, be->cost_output);
      json_builder_set_member_name (b, "latency_ms");
      json_builder_add_int_value (b, be->latency_ms);
      json_builder_set_member_name (b, "context_window");
      json_builder_add_int_value (b, be->context_window);
      add_strv (b, "capabilities", be->capabilities);
      json_builder_set_member_name (b, "max_concurrency");
      json_builder_add_int_value (b, be->max_concurrency);
      json_builder_set_member_name (b, "local");
      json_builder_add_boolean_value (b, FALSE);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  return json_builder_get_root (b);
}

