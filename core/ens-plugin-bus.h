/* ens-plugin-bus.h — the bus as plugins use it through the host table
 * (ens-plugin-bus.c): publish, subscriptions, taps and interest watches,
 * each remembered by plugin so that nothing of a stopped plugin stays on
 * the bus. */
#pragma once

#include "ens-events.h"

G_BEGIN_DECLS

typedef struct _EnsPluginBus EnsPluginBus;

EnsPluginBus *ens_plugin_bus_new (EnsBus *bus, EnsEvents *events);
void ens_plugin_bus_free (EnsPluginBus *pbus);

/* The host entries of the same names (see <ensemble/ens-host.h>). */
void ens_plugin_bus_publish (EnsPluginBus *pbus, EnsPlugin *self, const char *topic, JsonNode *data, const char *to);
guint ens_plugin_bus_subscribe (EnsPluginBus *pbus, EnsPlugin *self, const char *pattern, EnsEventFunc func,
                                gpointer user_data, GDestroyNotify notify);
void ens_plugin_bus_unsubscribe (EnsPluginBus *pbus, EnsPlugin *self, guint id);
guint ens_plugin_bus_tap (EnsPluginBus *pbus, EnsPlugin *self, EnsEventFunc func, gpointer user_data,
                          GDestroyNotify notify);
void ens_plugin_bus_untap (EnsPluginBus *pbus, EnsPlugin *self, guint id);
guint ens_plugin_bus_watch_interest (EnsPluginBus *pbus, EnsPlugin *self, EnsInterestFunc func, gpointer user_data);
void ens_plugin_bus_unwatch_interest (EnsPluginBus *pbus, EnsPlugin *self, guint id);

/* Loader plugin-stopped: drops its taps, interest watches and subscriptions. */
void ens_plugin_bus_forget_plugin (EnsPluginBus *pbus, EnsPlugin *plugin);

G_END_DECLS
