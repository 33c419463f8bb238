/* ens-plugin-private.h — EnsPlugin, the host's handle on one loaded plugin
 * (opaque in <ensemble/ens-plugin.h>): the module, its checked descriptor
 * and its instance (ens-plugin.c).  Finding plugins and starting them in
 * order is the loader's job (ens-plugin-loader.h). */
#pragma once

#include <ensemble/ens-host.h>

G_BEGIN_DECLS

#define ENS_TYPE_PLUGIN (ens_plugin_get_type ())
G_DECLARE_FINAL_TYPE (EnsPlugin, ens_plugin, ENS, PLUGIN, GObject)

/* (transfer full) the plugin in @path, checked (file ownership and mode,
 * dlopen, the query symbol, ABI and struct sizes) but not started; NULL
 * with @error (ENS_PLUGIN_ERROR) naming the reason. */
EnsPlugin *ens_plugin_open (const char *path, GError **error);
/* Calls init() with @host; FALSE with @error when it fails. */
gboolean ens_plugin_start (EnsPlugin *plugin, const EnsHost *host, GError **error);
/* Calls stop() if the plugin was started. */
void ens_plugin_stop (EnsPlugin *plugin);

const EnsPluginDesc *ens_plugin_get_desc (EnsPlugin *plugin);
/* The plugin declared ENS_PLUGIN_FLAG_LAZY_DATA (ABI 1.4 or later): it may
 * be handed messages whose data is still text. */
gboolean ens_plugin_reads_data_lazily (EnsPlugin *plugin);
/* (transfer none) desc->id */
const char *ens_plugin_get_id (EnsPlugin *plugin);
const char *ens_plugin_get_file (EnsPlugin *plugin);
/* What init() returned; NULL unless started. */
gpointer ens_plugin_get_instance (EnsPlugin *plugin);
/* (transfer full) {id, kind, version, description, file, info?} */
JsonNode *ens_plugin_describe (EnsPlugin *plugin);
const char *ens_plugin_kind_name (EnsPluginKind kind);

G_END_DECLS
