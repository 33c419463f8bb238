/* ens-config.c — GSettings (org.ensemble.Daemon) plus the command-line
 * overrides of one run.  Runs uninstalled: when the schema is not installed
 * it is read from the build tree, where meson compiled it. */
#include "ens-core.h"
#include "ens-paths.h"

#define G_SETTINGS_ENABLE_BACKEND
#include <gio/gsettingsbackend.h>
#include <string.h>
#include <unistd.h>

#define ENS_SCHEMA_ID "org.ensemble.Daemon"

struct _EnsConfig {
  GSettings *settings;
  GSettingsSchema *schema;
  GSettingsSchemaSource *source; /* where the schema was found */
  GSettingsBackend *backend;     /* NULL: the default one */
  GHashTable *overrides;         /* key -> GVariant */
};

gboolean
ens_running_uninstalled (void)
{
  static int uninstalled = -1;

  if (uninstalled < 0)
    {
      g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
      uninstalled = exe != NULL && g_str_has_prefix (exe, ENS_BUILD_ROOT "/");
    }
  return uninstalled;
}

/* Finds the daemon's schema; *out_source is where, so that the plugins'
 * child schemas are looked up in the same place. */
static GSettingsSchema *
find_schema (GSettingsSchemaSource **out_source, GError **error)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  GSettingsSchema *schema = source ? g_settings_schema_source_lookup (source, ENS_SCHEMA_ID, TRUE) : NULL;
  const char *dirs[] = { ENS_BUILD_ROOT "/data", ENS_SCHEMA_DIR };

  if (schema)
    *out_source = g_settings_schema_source_ref (source);
  for (guint i = 0; schema == NULL && i < G_N_ELEMENTS (dirs); i++)
    {
      g_autoptr (GSettingsSchemaSource) dir_source = NULL;

      if (i == 0 && !ens_running_uninstalled ())
        continue;
      dir_source = g_settings_schema_source_new_from_directory (dirs[i], source, FALSE, NULL);
      if (dir_source)
        schema = g_settings_schema_source_lookup (dir_source, ENS_SCHEMA_ID, FALSE);
      if (schema)
        *out_source = g_settings_schema_source_ref (dir_source);
    }
  if (schema == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 "settings schema %s is not installed (looked in the default schema folders and %s)",
                 ENS_SCHEMA_ID, ENS_SCHEMA_DIR);
  return schema;
}

EnsConfig *
ens_config_new (const char *keyfile, GError **error)
{
  GSettingsSchemaSource *source = NULL;
  EnsConfig *config;
  GSettingsSchema *schema = find_schema (&source, error);

  if (schema == NULL)
    return NULL;
  config = g_new0 (EnsConfig, 1);
  if (keyfile)
    config->backend = g_keyfile_settings_backend_new (keyfile, "/org/ensemble/daemon/", "daemon");
  config->schema = schema;
  config->source = source;
  config->settings = g_settings_new_full (schema, config->backend, NULL);
  config->overrides = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);
  return config;
}

void
ens_config_free (EnsConfig *config)
{
  if (config == NULL)
    return;
  g_object_unref (config->settings);
  g_settings_schema_unref (config->schema);
  g_settings_schema_source_unref (config->source);
  g_clear_object (&config->backend);
  g_hash_table_unref (config->overrides);
  g_free (config);
}

void
ens_config_override (EnsConfig *config, const char *key, GVariant *value)
{
  g_hash_table_replace (config->overrides, g_strdup (key), g_variant_ref_sink (value));
}

/* Paths left empty in the settings mean "the XDG default". */
static GVariant *
resolve_default_path (const char *key, GVariant *value)
{
  if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING) || g_variant_get_string (value, NULL)[0] != '\0')
    return value;
  if (strcmp (key, "socket-dir") == 0)
    {
      g_variant_unref (value);
      return g_variant_ref_sink (g_variant_new_take_string (g_build_filename (g_get_user_runtime_dir (), "ensemble", NULL)));
    }
  if (strcmp (key, "state-dir") == 0)
    {
      g_variant_unref (value);
      return g_variant_ref_sink (g_variant_new_take_string (g_build_filename (g_get_user_state_dir (), "ensemble", NULL)));
    }
  return value;
}

GVariant *
ens_config_get (EnsConfig *config, const char *key)
{
  GVariant *value = g_hash_table_lookup (config->overrides, key);

  if (value)
    return g_variant_ref (value);
  if (!g_settings_schema_has_key (config->schema, key))
    return NULL;
  value = g_settings_get_value (config->settings, key);
  if (strcmp (key, "plugin-dirs") == 0 && g_variant_n_children (value) == 0)
    {
      const char *dir = ens_running_uninstalled () ? ENS_BUILD_ROOT "/plugins" : ENS_PLUGIN_DIR;
      g_variant_unref (value);
      return g_variant_ref_sink (g_variant_new_strv (&dir, 1));
    }
  return resolve_default_path (key, value);
}

guint
ens_config_get_uint (EnsConfig *config, const char *key)
{
  g_autoptr (GVariant) value = ens_config_get (config, key);
  return value && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32 (value) : 0;
}

char *
ens_config_get_path (EnsConfig *config, const char *key)
{
  g_autoptr (GVariant) value = ens_config_get (config, key);
  return value && g_variant_is_of_type (value, G_VARIANT_TYPE_STRING) ? g_variant_dup_string (value, NULL) : NULL;
}

char **
ens_config_get_strv (EnsConfig *config, const char *key)
{
  g_autoptr (GVariant) value = ens_config_get (config, key);
  return value && g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY) ? g_variant_dup_strv (value, NULL) : NULL;
}

GSettings *
ens_config_settings (EnsConfig *config)
{
  return config->settings;
}

GSettings *
ens_config_settings_new (EnsConfig *config, const char *schema_id, const char *path)
{
  g_autoptr (GSettingsSchema) schema = g_settings_schema_source_lookup (config->source, schema_id, TRUE);

  if (schema == NULL)
    return NULL;
  if (path == NULL && g_settings_schema_get_path (schema) == NULL)
    return NULL; /* relocatable: needs a path */
  if (path && (path[0] != '/' || !g_str_has_suffix (path, "/") || strstr (path, "//")))
    return NULL; /* GSettings would abort on it */
  return g_settings_new_full (schema, config->backend, path);
}
