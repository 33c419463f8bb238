/* ens-config.c — GSettings (org.ensemble.Daemon) plus the command-line
 * overrides of one run.  Runs uninstalled: when the schema is not installed
 * it is read from the build tree, where meson compiled it. */
#include "ens-config.h"
#include "ens-paths.h"

#define G_SETTINGS_ENABLE_BACKEND
#include <gio/gsettingsbackend.h>
#include <string.h>
#include <unistd.h>

#define ENS_SCHEMA_ID "org.ensemble.Daemon"

struct _EnsConfig {
  char *keyfile;                 /* --config FILE, or NULL */
  GHashTable *applied;           /* key -> GVariant: the values in force */
  GHashTable *kept;              /* key -> GVariant: kept over an invalid edit */
  EnsConfigChanged changed_func;
  gpointer changed_data;
  GHashTable *pending;           /* keys changed, applied when the edits settle */
  guint settle_id;
  GSettings *settings;
  GSettingsSchema *schema;
  GSettingsSchemaSource *source; /* where the schema was found */
  GSettingsBackend *backend;     /* NULL: the default one */
  GHashTable *overrides;         /* key -> GVariant */
  GHashTable *resolved;          /* key -> GVariant: what ens_config_get() answered, once watched;
                                  * emptied whenever a value in force may change */
  GHashTable *checks;            /* key -> EnsConfigCheck, data in check_data */
  GHashTable *check_data;        /* key -> gpointer */
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
/* An installed tree moved elsewhere (a --destdir install, a relocated
 * prefix): the configured path under the prefix this binary really runs
 * from, if that exists, else the path as configured. */
char *
ens_installed_path (const char *configured)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *bindir = exe ? g_path_get_dirname (exe) : NULL;
  g_autofree char *prefix = bindir ? g_path_get_dirname (bindir) : NULL;
  gsize plen = strlen (ENS_PREFIX);

  if (prefix && g_str_has_prefix (configured, ENS_PREFIX) && strcmp (prefix, ENS_PREFIX) != 0)
    {
      g_autofree char *moved = g_strconcat (prefix, configured + plen, NULL);
      if (g_file_test (moved, G_FILE_TEST_IS_DIR))
        return g_steal_pointer (&moved);
    }
  return g_strdup (configured);
}

#define ENS_CONFIG_SETTLE_MS 150

static int
by_key (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static gboolean keyfile_value_valid (EnsConfig *config, const char *key, char **why);

/* A value the schema refuses, found at start, is reported (and the
 * default used), never taken silently. */
static void
check_keyfile_at_start (EnsConfig *config)
{
  g_auto (GStrv) keys = g_settings_schema_list_keys (config->schema);

  for (guint i = 0; config->keyfile && keys[i]; i++)
    {
      g_autofree char *why = NULL;
      if (!keyfile_value_valid (config, keys[i], &why))
        g_warning ("setting %s: invalid value in %s (%s); using the default", keys[i], config->keyfile, why);
    }
}

static GSettingsSchema *
find_schema (GSettingsSchemaSource **out_source, GError **error)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  GSettingsSchema *schema = source ? g_settings_schema_source_lookup (source, ENS_SCHEMA_ID, TRUE) : NULL;
  g_autofree char *installed = ens_installed_path (ENS_SCHEMA_DIR);
  g_autofree char *private = ens_installed_path (ENS_PRIVATE_SCHEMA_DIR);
  const char *dirs[] = { ENS_BUILD_ROOT "/data", installed, private };

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
  config->applied = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);
  config->kept = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);
  config->resolved = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);
  config->keyfile = g_strdup (keyfile);
  config->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  config->checks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  config->check_data = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  check_keyfile_at_start (config);
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
  if (config->settle_id)
    g_source_remove (config->settle_id);
  g_hash_table_unref (config->pending);
  g_hash_table_unref (config->applied);
  g_hash_table_unref (config->kept);
  g_hash_table_unref (config->resolved);
  g_hash_table_unref (config->checks);
  g_hash_table_unref (config->check_data);
  g_free (config->keyfile);
  g_hash_table_unref (config->overrides);
  g_free (config);
}

/* A value in force may have changed: what was answered is asked again. */
static void
forget_resolved (EnsConfig *config)
{
  g_hash_table_remove_all (config->resolved);
}

void
ens_config_override (EnsConfig *config, const char *key, GVariant *value)
{
  g_hash_table_replace (config->overrides, g_strdup (key), g_variant_ref_sink (value));
  forget_resolved (config);
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

/* Empty plugin folders and paths mean "the default" (transfer full in/out):
 * the build tree's or source tree's when run uninstalled, else the
 * installed ones. */
static GVariant *
resolve_defaults (const char *key, GVariant *value)
{
  if (strcmp (key, "plugin-dirs") == 0 && g_variant_n_children (value) == 0)
    {
      g_autofree char *dir = ens_running_uninstalled () ? g_strdup (ENS_BUILD_ROOT "/plugins")
                                                        : ens_installed_path (ENS_PLUGIN_DIR);
      const char *dirs[] = { dir, NULL };
      g_variant_unref (value);
      return g_variant_ref_sink (g_variant_new_strv (dirs, 1));
    }
  if (strcmp (key, "http-console-dir") == 0 && g_variant_get_string (value, NULL)[0] == '\0')
    {
      g_autofree char *dir = ens_running_uninstalled () ? g_strdup (ENS_SOURCE_ROOT "/data/console")
                                                        : ens_installed_path (ENS_CONSOLE_DIR);
      g_variant_unref (value);
      return g_variant_ref_sink (g_variant_new_string (dir));
    }
  return resolve_default_path (key, value);
}

/* The value in force of @key, resolved (transfer full). */
static GVariant *
config_lookup (EnsConfig *config, const char *key)
{
  GVariant *value = g_hash_table_lookup (config->overrides, key);

  if (value)
    return g_variant_ref (value);
  value = g_hash_table_lookup (config->kept, key);
  /* Once watched, the values in force are the applied ones: a file seen
   * half-written must not leak defaults into a request. */
  if (value == NULL && config->changed_func)
    value = g_hash_table_lookup (config->applied, key);
  if (value)
    value = g_variant_ref (value);
  else if (g_settings_schema_has_key (config->schema, key))
    value = g_settings_get_value (config->settings, key);
  else
    return NULL;
  return resolve_defaults (key, value);
}

GVariant *
ens_config_get (EnsConfig *config, const char *key)
{
  GVariant *value;

  /* Watched, a value changes only through this file (forget_resolved()):
   * what was answered is answered again, without resolving it anew (this
   * runs several times for every completion). */
  if (config->changed_func && (value = g_hash_table_lookup (config->resolved, key)) != NULL)
    return g_variant_ref (value);
  value = config_lookup (config, key);
  if (value && config->changed_func)
    g_hash_table_replace (config->resolved, g_strdup (key), g_variant_ref (value));
  return value;
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

/* GSettings quietly reads an invalid keyfile value as the default; that
 * must not silently replace what runs.  Checks the text in the file. */
static gboolean
keyfile_value_valid (EnsConfig *config, const char *key, char **why)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GSettingsSchemaKey) skey = g_settings_schema_get_key (config->schema, key);
  g_autofree char *text = NULL;
  g_autoptr (GVariant) value = NULL;
  g_autoptr (GError) error = NULL;

  if (config->keyfile == NULL || !g_key_file_load_from_file (file, config->keyfile, G_KEY_FILE_NONE, NULL))
    return TRUE;
  text = g_key_file_get_value (file, "daemon", key, NULL);
  if (text == NULL)
    return TRUE; /* removed: back to the default, as meant */
  value = g_variant_parse (g_settings_schema_key_get_value_type (skey), text, NULL, NULL, &error);
  if (value == NULL)
    {
      *why = g_strdup_printf ("%s is not a %s: %s", text, g_variant_type_peek_string (g_settings_schema_key_get_value_type (skey)),
                              error->message);
      return FALSE;
    }
  if (!g_settings_schema_key_range_check (skey, value))
    {
      *why = g_strdup_printf ("%s is out of the key's range", text);
      return FALSE;
    }
  return TRUE;
}

static void
apply_key (EnsConfig *config, const char *key)
{
  g_autoptr (GVariant) now = g_settings_get_value (config->settings, key);
  GVariant *before = g_hash_table_lookup (config->applied, key);
  g_autofree char *why = NULL;

  if (!keyfile_value_valid (config, key, &why))
    {
      g_autofree char *old = before ? g_variant_print (before, FALSE) : g_strdup ("?");
      g_warning ("setting %s: invalid value in %s (%s); keeping %s", key, config->keyfile, why, old);
      if (before)
        g_hash_table_replace (config->kept, g_strdup (key), g_variant_ref (before));
      forget_resolved (config);
      return;
    }
  {
    EnsConfigCheck check = (EnsConfigCheck) g_hash_table_lookup (config->checks, key);

    if (check && !check (key, now, &why, g_hash_table_lookup (config->check_data, key)))
      {
        GVariant *in_force = g_hash_table_lookup (config->kept, key);
        g_autofree char *text = g_variant_print (now, FALSE);
        g_autofree char *old = NULL;

        if (in_force == NULL)
          in_force = before;
        old = in_force ? g_variant_print (in_force, FALSE) : g_strdup ("?");
        g_warning ("setting %s: %s refused (%s); keeping %s", key, text, why ? why : "not a valid value", old);
        if (in_force && !g_hash_table_contains (config->kept, key))
          g_hash_table_replace (config->kept, g_strdup (key), g_variant_ref (in_force));
        forget_resolved (config);
        return;
      }
  }
  g_hash_table_remove (config->kept, key);
  forget_resolved (config);
  if (before && g_variant_equal (before, now))
    return;
  g_hash_table_replace (config->applied, g_strdup (key), g_variant_ref (now));
  forget_resolved (config);
  if (g_hash_table_contains (config->overrides, key))
    {
      g_message ("setting %s changed, but the command line sets it for this run", key);
      return;
    }
  if (config->changed_func)
    config->changed_func (key, config->changed_data);
}

/* Edits settle before they apply: an editor (or `cat >`) truncates, then
 * writes, and the backend may read the file in between. */
static gboolean
settle_cb (gpointer data)
{
  EnsConfig *config = data;
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  config->settle_id = 0;
  g_hash_table_iter_init (&iter, config->pending);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, g_strdup (key));
  g_hash_table_remove_all (config->pending);
  g_ptr_array_sort (keys, by_key);
  for (guint i = 0; i < keys->len; i++)
    apply_key (config, g_ptr_array_index (keys, i));
  return G_SOURCE_REMOVE;
}

static void
on_changed (GSettings *settings, const char *key, gpointer data)
{
  EnsConfig *config = data;

  (void) settings;
  g_hash_table_add (config->pending, g_strdup (key));
  if (config->settle_id)
    g_source_remove (config->settle_id);
  config->settle_id = g_timeout_add (ENS_CONFIG_SETTLE_MS, settle_cb, config);
}

void
ens_config_watch (EnsConfig *config, EnsConfigChanged func, gpointer data)
{
  g_auto (GStrv) keys = g_settings_schema_list_keys (config->schema);

  for (guint i = 0; keys[i]; i++)
    g_hash_table_replace (config->applied, g_strdup (keys[i]), g_settings_get_value (config->settings, keys[i]));
  forget_resolved (config);
  config->changed_func = func;
  config->changed_data = data;
  g_signal_connect (config->settings, "changed", G_CALLBACK (on_changed), config);
}

void
ens_config_set_check (EnsConfig *config, const char *key, EnsConfigCheck check, gpointer data)
{
  g_hash_table_replace (config->checks, g_strdup (key), (gpointer) check);
  g_hash_table_replace (config->check_data, g_strdup (key), data);
}

void
ens_config_keep (EnsConfig *config, const char *key, GVariant *value)
{
  g_hash_table_replace (config->kept, g_strdup (key), g_variant_ref_sink (value));
  forget_resolved (config);
}
