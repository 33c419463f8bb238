/* ens-fake-host.c — the fake EnsHost of the plugin unit tests (see the header). */
#include "ens-fake-host.h"
#include "ens-json-write.h"

#define G_SETTINGS_ENABLE_BACKEND
#include <gio/gsettingsbackend.h>
#include <glib/gstdio.h>
#include <gmodule.h>
#include <string.h>
#include <unistd.h>

static GSettingsSchemaSource *schemas;
static GSettingsBackend *backend;
static GStrv providers;
static GHashTable *config; /* key -> GVariant, fake_host_set_config () */
static EnsHost host;
static GPtrArray *temp_files;
static char *plugin_id;

static void
fake_log (EnsPlugin *self, GLogLevelFlags level, const char *message)
{
  g_printerr ("# [plugin] %s\n", message);
}

static GVariant *
fake_config_get (EnsPlugin *self, const char *key)
{
  GVariant *value = config ? g_hash_table_lookup (config, key) : NULL;

  if (value)
    return g_variant_ref (value);
  if (strcmp (key, "providers") == 0)
    return g_variant_ref_sink (g_variant_new_strv ((const char *const *) providers, -1));
  return NULL;
}

static const char *
fake_plugin_id (EnsPlugin *self)
{
  return plugin_id;
}

static GSettings *
fake_settings_new (EnsPlugin *self, const char *schema_id, const char *path)
{
  g_autoptr (GSettingsSchema) schema = g_settings_schema_source_lookup (schemas, schema_id, FALSE);

  if (!schema)
    return NULL;
  return g_settings_new_full (schema, backend, path);
}

static FakeCompletion *
check_open (EnsCompletion *completion)
{
  FakeCompletion *c = (FakeCompletion *) completion;

  if (c->ends > 0)
    c->after_end++;
  return c;
}

static void
fake_chunk (EnsCompletion *completion, const char *text)
{
  FakeCompletion *c = check_open (completion);

  g_assert_true (g_utf8_validate (text, -1, NULL));
  g_ptr_array_add (c->chunks, g_strdup (text));
}

static void
fake_event (EnsCompletion *completion, const char *type, JsonNode *data)
{
  FakeCompletion *c = check_open (completion);
  g_autofree char *json = data ? ens_json_write_to_string (data, FALSE) : g_strdup ("null");
  g_ptr_array_add (c->events, g_strdup_printf ("%s %s", type, json));
}

static void
fake_finish (EnsCompletion *completion, JsonNode *result)
{
  FakeCompletion *c = check_open (completion);

  c->ends++;
  c->ended_us = g_get_monotonic_time ();
  if (!c->result && !c->fail_code)
    c->result = json_node_copy (result);
}

static void
fake_fail (EnsCompletion *completion, const char *code, const char *message)
{
  FakeCompletion *c = check_open (completion);

  c->ends++;
  c->ended_us = g_get_monotonic_time ();
  if (!c->result && !c->fail_code)
    {
      c->fail_code = g_strdup (code);
      c->fail_message = g_strdup (message);
    }
  g_printerr ("# completion failed: %s: %s\n", code, message);
}

static void
remove_temp_files (void)
{
  for (guint i = 0; temp_files && i < temp_files->len; i++)
    g_unlink (g_ptr_array_index (temp_files, i));
}

void
fake_host_init (const char *id)
{
  g_autoptr (GError) error = NULL;
  const char *dir = g_getenv ("ENS_SCHEMA_DIR");

  /* The tests talk to 127.0.0.1; a proxy from the environment must not. */
  g_unsetenv ("http_proxy");
  g_unsetenv ("HTTP_PROXY");
  g_unsetenv ("https_proxy");
  g_unsetenv ("HTTPS_PROXY");
  g_unsetenv ("all_proxy");
  g_unsetenv ("ALL_PROXY");
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);

  g_assert_nonnull (dir);
  schemas = g_settings_schema_source_new_from_directory (dir, g_settings_schema_source_get_default (), FALSE,
                                                         &error);
  g_assert_no_error (error);
  backend = g_memory_settings_backend_new ();
  providers = g_new0 (char *, 1);
  plugin_id = g_strdup (id);
  temp_files = g_ptr_array_new_with_free_func (g_free);
  atexit (remove_temp_files);

  host.struct_size = sizeof (EnsHost);
  host.abi_major = ENS_ABI_MAJOR;
  host.abi_minor = ENS_ABI_MINOR;
  host.log = fake_log;
  host.config_get = fake_config_get;
  host.plugin_id = fake_plugin_id;
  host.settings_new = fake_settings_new;
  host.completion_chunk = fake_chunk;
  host.completion_event = fake_event;
  host.completion_finish = fake_finish;
  host.completion_fail = fake_fail;
}

void
fake_host_set_config (const char *key, GVariant *value)
{
  if (config == NULL)
    config = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);
  if (value)
    g_hash_table_replace (config, g_strdup (key), g_variant_ref_sink (value));
  else
    g_hash_table_remove (config, key);
}

void
fake_host_set_json (JsonNode *(*parse) (const char *text, gsize len, GError **error),
                    gboolean (*scan_members) (const char *text, gsize len, EnsJsonScanFunc func, gpointer user_data,
                                              GError **error),
                    gboolean (*scan_checked_members) (const char *text, gsize len, EnsJsonScanFunc func,
                                                      gpointer user_data))
{
  host.json_parse = parse;
  host.json_scan_members = scan_members;
  host.json_scan_checked_members = scan_checked_members;
}

const EnsHost *
fake_host (void)
{
  return &host;
}

EnsPlugin *
fake_plugin_self (void)
{
  static int token;
  return (EnsPlugin *) &token; /* never dereferenced */
}

void
fake_host_set_providers (const char *const *names)
{
  g_strfreev (providers);
  providers = g_strdupv ((char **) names);
}

GSettings *
fake_host_provider_settings (const char *name)
{
  g_autofree char *path = g_strdup_printf ("/org/ensemble/daemon/providers/%s/", name);
  return fake_settings_new (NULL, "org.ensemble.Provider", path);
}

const EnsPluginDesc *
fake_plugin_load (const char *env_var)
{
  const char *path = g_getenv (env_var);
  GModule *module;
  EnsPluginQueryFunc query = NULL;

  g_assert_nonnull (path);
  module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (!module)
    g_error ("cannot load %s: %s", path, g_module_error ());
  g_assert_true (g_module_symbol (module, ENS_PLUGIN_QUERY_SYMBOL, (gpointer *) &query));
  g_module_make_resident (module);
  return query ();
}

FakeCompletion *
fake_completion_new (void)
{
  FakeCompletion *c = g_new0 (FakeCompletion, 1);

  c->chunks = g_ptr_array_new_with_free_func (g_free);
  c->events = g_ptr_array_new_with_free_func (g_free);
  return c;
}

void
fake_completion_free (FakeCompletion *c)
{
  g_ptr_array_unref (c->chunks);
  g_ptr_array_unref (c->events);
  if (c->result)
    json_node_unref (c->result);
  g_free (c->fail_code);
  g_free (c->fail_message);
  g_free (c->text);
  g_free (c);
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
fake_run_until (const gboolean *flag, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (timeout_ms, set_flag, &expired);

  while (!*flag && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return *flag;
}

void
fake_run_for (guint ms)
{
  gboolean never = FALSE;
  fake_run_until (&never, ms);
}

gboolean
fake_completion_wait (FakeCompletion *c, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (timeout_ms, set_flag, &expired);

  while (c->ends == 0 && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return c->ends > 0;
}

const char *
fake_completion_text (FakeCompletion *c)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < c->chunks->len; i++)
    g_string_append (s, g_ptr_array_index (c->chunks, i));
  g_free (c->text);
  c->text = g_string_free (s, FALSE);
  return c->text;
}

JsonObject *
fake_completion_result (FakeCompletion *c)
{
  return c->result && JSON_NODE_HOLDS_OBJECT (c->result) ? json_node_get_object (c->result) : NULL;
}

JsonNode *
fake_json (const char *json)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (json, &error);

  g_assert_no_error (error);
  g_assert_nonnull (node);
  return node;
}

char *
fake_json_text (JsonNode *node)
{
  return ens_json_write_to_string (node, FALSE);
}

char *
fake_key_file (const char *key)
{
  g_autoptr (GError) error = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp ("ens-key-XXXXXX", &path, &error);
  g_autofree char *text = g_strdup_printf ("%s\nsecond line ignored\n", key);

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  close (fd);
  g_ptr_array_add (temp_files, g_strdup (path));
  return path;
}
