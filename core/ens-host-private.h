/* ens-host-private.h — the EnsHost table handed to every plugin
 * (ens-host.c), bound to the parts of the daemon its entries reach. */
#pragma once

#include "ens-completion.h"
#include "ens-dispatch.h"
#include "ens-plugin-bus.h"

G_BEGIN_DECLS

/* What the host table's entries forward to; all (transfer none), valid
 * until every plugin stopped. */
typedef struct {
  EnsConfig *config;
  EnsState *state;
  const char *node_id;
  EnsClients *clients;
  EnsDispatch *dispatch;
  EnsAgents *agents;
  EnsPluginBus *plugin_bus;
  EnsEvents *events;
  EnsBudget *budget;
} EnsHostServices;

/* (transfer none) the one host table, its entries bound to @services
 * (copied).  The table is a plain C vtable whose entries have no context
 * argument, so the binding is process-wide: one daemon per process. */
const EnsHost *ens_host_table (const EnsHostServices *services);

G_END_DECLS
