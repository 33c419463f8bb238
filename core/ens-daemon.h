/* ens-daemon.h — the daemon object (ens-daemon.c): it owns every part of
 * the running daemon, builds them in dependency order, wires the signals
 * between them, loads the plugins, reports health and takes it all down
 * again.  The parts know only what they are handed, never the daemon. */
#pragma once

#include "ens-heap.h"
#include "ens-host-private.h"
#include "ens-kv.h"
#include "ens-plugin-loader.h"
#include "ens-process.h"
#include "ens-session.h"
#include "ens-stats.h"

G_BEGIN_DECLS

typedef struct {
  EnsConfig *config;
  EnsState *state;
  char *node_id;
  GMainLoop *loop;
  gint64 started_us; /* monotonic */
  gint64 started_real_us;
  gboolean shutting_down;
  EnsCounters counters;

  EnsBus *bus;
  EnsClients *clients;
  EnsVerbs *verbs;
  EnsAgents *agents;
  EnsRequests *requests;
  EnsDispatch *dispatch;
  EnsEvents *events;
  EnsKv kv;
  EnsPluginBus *plugin_bus;
  EnsProcesses *processes;
  EnsBudget *budget;
  EnsBackends *backends;
  EnsCompletions *completions;
  EnsSessions *sessions;
  EnsStats *stats;
  EnsHeap *heap;
  EnsLoader *loader;
} EnsDaemon;

/* Takes @config and @state (transfer full); @node_id is copied.  Nothing
 * runs until plugins are loaded. */
EnsDaemon *ens_daemon_new (EnsConfig *config, EnsState *state, const char *node_id);
/* Loads and starts the plugins of @dirs but those @disabled (see
 * ens_loader_load_dirs). */
void ens_daemon_load_plugins (EnsDaemon *d, char **dirs, char **disabled);
/* TRUE when at least one transport runs (else nothing could reach it). */
gboolean ens_daemon_has_transport (EnsDaemon *d);
/* (transfer full) the health object: status "healthy", "degraded" (a
 * plugin that should run does not: failed_plugins names it, {id, file,
 * reason}) or "stopping". */
JsonNode *ens_daemon_health (EnsDaemon *d);
/* Ends the main loop (shutdown verb, signals, D-Bus Shutdown). */
void ens_daemon_quit (EnsDaemon *d);
/* Before freeing: processes get SIGTERM, completions are cancelled (and
 * get a moment to say so), plugins stop in reverse order. */
void ens_daemon_stop (EnsDaemon *d);
void ens_daemon_free (EnsDaemon *d);

G_END_DECLS
