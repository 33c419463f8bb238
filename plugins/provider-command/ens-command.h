/* ens-command.h — what the parts of provider-command share (private to the plugin).
 *
 *   ens-provider-command.c   the plugin: one job per completion, its process group, its pipes
 *   ens-command-backends.c   the backends read from the providers setting
 *   ens-command-text.c       the prompt given to a command and the answer read from it
 *
 * Strings returned by the functions below are new (free with g_free); JsonNode
 * results are new references. */
#pragma once

#include <ensemble/ensemble.h>

#include "ens-json-util.h"

#define PROVIDER_SCHEMA "org.ensemble.Provider"
#define READ_SIZE 8192
#define STDERR_KEEP (64 * 1024) /* only the tail of stderr matters */
#define KILL_GRACE_MS 2000      /* SIGTERM, then SIGKILL after this */
#define EXIT_GRACE_MS 1000      /* after exit, how long leftovers may hold the pipes */

/* One configured backend; a snapshot of its settings. */
typedef struct {
  char *name;
  char **command;
  gboolean prompt_argument; /* prompt-mode 'argument' (else 'stdin') */
  gboolean json_output;     /* output-format 'json' (else 'text') */
  char **models;
  GHashTable *model_map;    /* requested name -> upstream name */
  double quality, cost_input, cost_output;
  guint latency_ms, context_window, max_concurrency, timeout_ms;
  char **capabilities;
} Backend;

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  GHashTable *backends; /* name -> Backend */
  GList *jobs;          /* Job *, each holding one reference for the list */
  guint64 started;
} Command;

/* ens-command-backends.c */
void ens_command_backend_free (gpointer data);
void ens_command_load_backends (Command *cmd);
JsonNode * ens_command_backends (gpointer instance);

/* ens-command-text.c */
char * ens_command_flatten_prompt (JsonArray *messages);
char * ens_command_expand_arg (const char *arg, const char *prompt, const char *model);
char * ens_command_take_utf8 (GString *pending, gboolean flush);
char * ens_command_last_line (const char *text);
gint64 ens_command_estimate_tokens (glong chars);
char * ens_command_json_text_member (JsonObject *obj, const char *member);
JsonNode * ens_command_parse_output (const char *text);
gint64 ens_command_usage_member (JsonObject *usage, const char *name, const char *alias, gboolean *found);
double ens_command_json_number (JsonObject *obj, const char *member, double def);
