/* ens-fake-host.c — the fake EnsHost of the plugin unit tests (see header). */
#include "ens-fake-host.h"

#include <dlfcn.h>

static EnsHost fake_table;
static GHashTable *fake_config;         /* key -> GVariant */
static char *fake_id;
static GSettingsSchemaSource *fake_schemas;

FakeCompletion *
fake_completion_new (void)
{
  FakeCompletion *fc = g_new0 (FakeCompletion, 1);

  fc->chunks = g_ptr_array_new_with_free_func (g_free);
  fc->events = g_ptr_array_new_with_free_func (g_free);
  fc->text = g_string_new (NULL);
  return fc;
}

void
fake_completion_free (FakeCompletion *fc)
{
  g_ptr_array_unref (fc->chunks);
  g_ptr_array_unref (fc->events);
  g_string_free (fc->text, TRUE);
  g_clear_pointer (&fc->result, json_node_unref);
  g_free (fc->fail_code);
  g_free (fc->fail_message);
  g_free (fc);
}

static gboolean
on_deadline (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
fake_completion_wait (FakeCompletion *fc, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (timeout_ms, on_deadline, &expired);

  while (fc->ends == 0 && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return fc->ends > 0;
}

void
fake_run_for (guint ms)
{
  gboolean expired = FALSE;

  g_timeout_add (ms, on_deadline, &expired);
  while (!expired)
    g_main_context_iteration (NULL, TRUE);
}

static void
fake_log (EnsPlugin *self, GLogLevelFlags level, const char *message)
{
  g_test_message ("plugin log: %s", message);
}

static GVariant *
fake_config_get (EnsPlugin *self, const char *key)
{
  GVariant *v = g_hash_table_lookup (fake_config, key);

  return v ? g_variant_ref (v) : NULL;
}

static const char *
fake_plugin_id (EnsPlugin *self)
{
  return fake_id;
}

static GSettings *
fake_settings_new (EnsPlugin *self, const char *schema_id, const char *path)
{
  g_autoptr (GSettingsSchema) schema = g_settings_schema_source_lookup (fake_schemas, schema_id, FALSE);

  if (schema == NULL)
    return NULL;
  return g_settings_new_full (schema, NULL, path);
}

static void
fake_chunk (EnsCompletion *completion, const char *text)
{
  FakeCompletion *fc = (FakeCompletion *) completion;

  if (fc->ends)
    fc->late_report = TRUE;
  g_assert_true (g_utf8_validate (text, -1, NULL));
  g_ptr_array_add (fc->chunks, g_strdup (text));
  g_string_append (fc->text, text);
}

static void
fake_event (EnsCompletion *completion, const char *type, JsonNode *data)
{
  FakeCompletion *fc = (FakeCompletion *) completion;

  if (fc->ends)
    fc->late_report = TRUE;
  g_ptr_array_add (fc->events, g_strdup (type));
}

static void
fake_finish (EnsCompletion *completion, JsonNode *result)
{
  FakeCompletion *fc = (FakeCompletion *) completion;

  fc->ends++;
  if (fc->result == NULL)
    fc->result = json_node_copy (result);
}

static void
fake_fail (EnsCompletion *completion, const char *code, const char *message)
{
  FakeCompletion *fc = (FakeCompletion *) completion;

  fc->ends++;
  if (fc->fail_code == NULL)
    {
      fc->fail_code = g_strdup (code);
      fc->fail_message = g_strdup (message);
    }
}

void
fake_host_setup (const char *plugin_id)
{
  const char *dir = g_getenv ("ENS_SCHEMA_DIR");
  g_autoptr (GError) error = NULL;

  /* Every GSettings of the process, the test's and the plugin's, shares the
   * one in-memory backend. */
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_assert_nonnull (dir);
  fake_schemas = g_settings_schema_source_new_from_directory (dir, NULL, FALSE, &error);
  g_assert_no_error (error);
  fake_config = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);
  fake_id = g_strdup (plugin_id);

  fake_table.struct_size = sizeof (EnsHost);
  fake_table.abi_major = ENS_ABI_MAJOR;
  fake_table.abi_minor = ENS_ABI_MINOR;
  fake_table.log = fake_log;
  fake_table.config_get = fake_config_get;
  fake_table.plugin_id = fake_plugin_id;
  fake_table.settings_new = fake_settings_new;
  fake_table.completion_chunk = fake_chunk;
  fake_table.completion_event = fake_event;
  fake_table.completion_finish = fake_finish;
  fake_table.completion_fail = fake_fail;
  /* Everything else stays NULL: a provider or router calling it crashes the test. */
}

const EnsHost *
fake_host (void)
{
  return &fake_table;
}

void
fake_host_set_config (const char *key, GVariant *value)
{
  g_hash_table_insert (fake_config, g_strdup (key), g_variant_ref_sink (value));
}

GSettings *
fake_host_provider_settings (const char *name)
{
  g_autofree char *path = g_strdup_printf ("/org/ensemble/daemon/providers/%s/", name);

  return fake_settings_new (FAKE_PLUGIN_SELF, "org.ensemble.Provider", path);
}

const EnsPluginDesc *
fake_load_plugin (const char *env_var)
{
  const char *path = g_getenv (env_var);
  void *module;
  EnsPluginQueryFunc query;

  g_assert_nonnull (path);
  module = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (module == NULL)
    g_error ("dlopen %s: %s", path, dlerror ());
  query = (EnsPluginQueryFunc) dlsym (module, ENS_PLUGIN_QUERY_SYMBOL);
  g_assert_nonnull (query);
  return query ();
}

JsonNode *
fake_json (const char *json)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (json, &error);

  g_assert_no_error (error);
  return node;
}

char *
fake_json_text (JsonNode *node)
{
  return json_to_string (node, FALSE);
}
