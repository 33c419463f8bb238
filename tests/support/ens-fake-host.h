/* ens-fake-host.h — the fake EnsHost every plugin unit test hands its
 * plugin (tests/plugins/), part of the ens-test-support library.
 *
 * The host keeps settings in a memory GSettings backend with the build
 * tree's compiled schemas, answers config_get("providers") from
 * fake_host_set_providers(), and records what a plugin reports for each
 * FakeCompletion.  Entries a test plugin has no business calling stay NULL,
 * so calling one crashes the test.  The fake upstream the HTTP providers
 * talk to is in ens-fake-upstream.h. */
#pragma once

#include <ensemble/ensemble.h>

G_BEGIN_DECLS

/* What one completion reported; handed to complete() as the EnsCompletion. */
typedef struct {
  GPtrArray *chunks;    /* char*, as received */
  GPtrArray *events;    /* char*: "type json" */
  JsonNode *result;     /* completion_finish's, copied */
  char *fail_code;
  char *fail_message;
  guint ends;           /* finish + fail calls; must end at 1 */
  guint after_end;      /* any call after the end: a bug */
  gint64 ended_us;      /* g_get_monotonic_time () at the end */
  char *text;           /* fake_completion_text's */
} FakeCompletion;

/* Loads the schemas from $ENS_SCHEMA_DIR and sets up the host table for a
 * plugin whose id is @plugin_id (what plugin_id() answers).  Call it first,
 * before any GSettings use. */
void fake_host_init (const char *plugin_id);
/* (transfer none) the host table. */
const EnsHost *fake_host (void);
/* The EnsPlugin handle to pass to init(); never dereferenced. */
EnsPlugin *fake_plugin_self (void);
/* config_get("providers") answers @names (copied). */
void fake_host_set_providers (const char *const *names);
/* config_get(@key) answers @value (sunk, kept by the host) from now on;
 * NULL: @key is unknown again. */
void fake_host_set_config (const char *key, GVariant *value);
/* From now on the host's JSON reading is @parse, @scan_members and
 * @scan_checked_members (the core's, for a test that links it: the HTTP
 * providers then read the common answers without a tree, as in the
 * daemon); all NULL (the default): the host has none, plugins use their
 * own.  Call it before the plugin's init. */
void fake_host_set_json (JsonNode *(*parse) (const char *text, gsize len, GError **error),
                         gboolean (*scan_members) (const char *text, gsize len, EnsJsonScanFunc func,
                                                   gpointer user_data, GError **error),
                         gboolean (*scan_checked_members) (const char *text, gsize len, EnsJsonScanFunc func,
                                                           gpointer user_data));
/* (transfer full) settings of provider instance @name, to fill in. */
GSettings *fake_host_provider_settings (const char *name);

/* Loads the module named by environment variable @env_var and returns its
 * descriptor (transfer none; the module stays resident); aborts the test on
 * failure. */
const EnsPluginDesc *fake_plugin_load (const char *env_var);

FakeCompletion *fake_completion_new (void);
void fake_completion_free (FakeCompletion *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeCompletion, fake_completion_free)
/* Runs the main loop until @c ended or @timeout_ms passed; TRUE if ended. */
gboolean fake_completion_wait (FakeCompletion *c, guint timeout_ms);
/* Runs the main loop for @ms. */
void fake_run_for (guint ms);
/* Runs the main loop until *@flag or @timeout_ms passed. */
gboolean fake_run_until (const gboolean *flag, guint timeout_ms);
/* (transfer none) all chunks joined. */
const char *fake_completion_text (FakeCompletion *c);
/* (transfer none) the result object, NULL if the completion failed. */
JsonObject *fake_completion_result (FakeCompletion *c);

/* (transfer full) @json parsed; aborts the test on malformed input. */
JsonNode *fake_json (const char *json);
/* (transfer full) @node as compact JSON text. */
char *fake_json_text (JsonNode *node);

/* A file holding @key; (transfer full) its path.  Removed at exit. */
char *fake_key_file (const char *key);

G_END_DECLS
