/* ens-fake-host.h — test support for the plugin unit tests (never part of a
 * plugin): a fake EnsHost that records what a provider reports, settings on
 * the in-memory backend with the build tree's compiled schemas, and loading
 * a built plugin module by the path in an environment variable. */
#pragma once

#include <ensemble/ensemble.h>

G_BEGIN_DECLS

/* What one completion reported; handed to complete() as the EnsCompletion. */
typedef struct {
  GPtrArray *chunks;     /* char *, in order */
  GString *text;         /* the chunks joined */
  GPtrArray *events;     /* char *, event types */
  JsonNode *result;      /* completion_finish's result (a copy), or NULL */
  char *fail_code;       /* completion_fail's code, or NULL */
  char *fail_message;
  guint ends;            /* finish + fail calls: must end up exactly 1 */
  gboolean late_report;  /* something arrived after the end */
} FakeCompletion;

#define FAKE_PLUGIN_SELF ((EnsPlugin *) GINT_TO_POINTER (0x1))

FakeCompletion *fake_completion_new (void);
void fake_completion_free (FakeCompletion *fc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeCompletion, fake_completion_free)
/* Runs the default main context until @fc ended or @timeout_ms passed;
 * TRUE if it ended. */
gboolean fake_completion_wait (FakeCompletion *fc, guint timeout_ms);
/* Runs the default main context for @ms milliseconds. */
void fake_run_for (guint ms);

/* The host table; call fake_host_setup() first, before any GSettings use. */
void fake_host_setup (const char *plugin_id);
const EnsHost *fake_host (void);
/* config_get(@key) will return @value (sunk, owned by the fake host). */
void fake_host_set_config (const char *key, GVariant *value);
/* (transfer full) the org.ensemble.Provider settings of backend @name, for
 * the test to fill in. */
GSettings *fake_host_provider_settings (const char *name);

/* dlopen()s the module named by environment variable @env_var and returns
 * its descriptor; aborts the test on failure. */
const EnsPluginDesc *fake_load_plugin (const char *env_var);

/* (transfer full) @json parsed; aborts on malformed input. */
JsonNode *fake_json (const char *json);
/* (transfer full) @node as compact JSON text. */
char *fake_json_text (JsonNode *node);

G_END_DECLS
