/* ens-fake-host.h — a fake EnsHost and a scripted HTTP server for the
 * provider plugin tests (provider-openai, provider-anthropic).
 *
 * The host keeps settings in a memory GSettings backend, answers
 * config_get("providers") from fake_host_set_providers(), and records what
 * a plugin reports for each FakeCompletion.  The server helpers write
 * scripted response bodies piece by piece from the main loop. */
#pragma once

#include <ensemble/ensemble.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

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

/* Loads the schemas from $ENS_SCHEMA_DIR and sets up the host table. */
void fake_host_init (void);
const EnsHost *fake_host (void);
EnsPlugin *fake_plugin_self (void);
void fake_host_set_providers (const char *const *names);
/* (transfer full) settings of provider instance @name, to fill in. */
GSettings *fake_host_provider_settings (const char *name);

/* Loads the module named by environment variable @env_var. */
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

/* A scripted response body: @pieces written one every @interval_ms (the
 * first at once), then the body ends, unless @hang (the message stays open)
 * or @repeat (the last piece is written again and again).  *@closed (may be
 * NULL) becomes TRUE when the server sees the connection go away or the
 * message finish. */
void fake_server_stream (SoupServerMessage *msg, const char *content_type, const char *const *pieces,
                         guint interval_ms, gboolean hang, gboolean repeat, gboolean *closed);
/* Never answers @msg (until the server goes away). */
void fake_server_hang (SoupServerMessage *msg);
/* Answers @msg at once. */
void fake_server_reply (SoupServerMessage *msg, guint status, const char *content_type, const char *body);
/* (transfer full) the request body of @msg parsed, or NULL. */
JsonNode *fake_server_request_json (SoupServerMessage *msg);
/* Starts an HTTP server on 127.0.0.1 with @callback for every path;
 * returns its base URL without a trailing '/' (transfer full). */
char *fake_server_start (SoupServer **server, SoupServerCallback callback, gpointer user_data);

/* A file holding @key; (transfer full) its path.  Removed at exit. */
char *fake_key_file (const char *key);

G_END_DECLS
