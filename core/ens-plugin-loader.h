/* ens-plugin-loader.h — finds plugin files in the plugin folders, starts
 * them in kind order and stops them in reverse (ens-plugin-loader.c).
 *
 * The loader calls no other part of the daemon: it announces each step
 * with a signal, and the parts that care connect to it.
 *
 *   plugin-started (EnsPlugin *plugin, GError **error) -> gboolean
 *       init() succeeded; the parts of the daemon take the plugin in (its
 *       agent, its backends).  A handler that cannot (an agent name already
 *       taken) sets @error and returns TRUE: the plugin is stopped again
 *       (plugin-stopped) and refused.
 *   plugin-loaded (EnsPlugin *plugin)
 *       the plugin runs.
 *   plugin-stopped (EnsPlugin *plugin)
 *       stop() returned (or a started plugin was refused): nothing of the
 *       plugin may stay reachable.  Handlers run in the order connected.
 *   plugin-failed (const char *file, const char *reason)
 *       a plugin file was refused (not merely disabled).
 */
#pragma once

#include "ens-plugin-private.h"

G_BEGIN_DECLS

#define ENS_TYPE_LOADER (ens_loader_get_type ())
G_DECLARE_FINAL_TYPE (EnsLoader, ens_loader, ENS, LOADER, GObject)

/* A plugin found in the plugin folders, not disabled, that does not run. */
typedef struct {
  char *id;   /* NULL when its descriptor could not be read */
  char *file;
  char *reason;
} EnsPluginFailure;

/* @host (transfer none) is handed to every plugin's init(). */
EnsLoader *ens_loader_new (const EnsHost *host);
/* Stops every plugin (in reverse start order) and unrefs @loader. */
void ens_loader_free (EnsLoader *loader);
/* Loads and starts one file.  Returns (transfer none) the started plugin or
 * NULL with @error naming the reason; the caller logs it. */
EnsPlugin *ens_loader_load_file (EnsLoader *loader, const char *path, char **disabled, GError **error);
/* Scans folders (and their immediate subfolders), loads and starts every
 * plugin in kind order; refusals are logged, never fatal. */
void ens_loader_load_dirs (EnsLoader *loader, char **dirs, char **disabled);
/* Stops every plugin in reverse start order. */
void ens_loader_stop_all (EnsLoader *loader);
/* One plugin, while the daemon runs (live settings). */
gboolean ens_loader_stop_plugin (EnsLoader *loader, const char *id);
gboolean ens_loader_start_id (EnsLoader *loader, char **dirs, const char *id);
gboolean ens_loader_restart (EnsLoader *loader, char **dirs, const char *id);
GPtrArray *ens_loader_plugins (EnsLoader *loader); /* (transfer none) of EnsPlugin */
gboolean ens_loader_is_running (EnsLoader *loader, const char *id);
guint ens_loader_refused_count (EnsLoader *loader);
/* (transfer none) of EnsPluginFailure, oldest first */
GPtrArray *ens_loader_failures (EnsLoader *loader);
/* TRUE when the plugin @id is recorded as failed. */
gboolean ens_loader_has_failed (EnsLoader *loader, const char *id);

G_END_DECLS
