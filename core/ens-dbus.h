/* ens-dbus.h — ensembled on D-Bus (ens-dbus.c): org.ensemble.Daemon1 with
 * an object per plugin, agent and live session. */
#pragma once

#include "ens-daemon.h"

G_BEGIN_DECLS

typedef struct _EnsDBus EnsDBus;

/* (transfer full) the daemon on @bus_type, or NULL (after one warning) when
 * no bus is reachable: the daemon runs on without it.  Call before plugins
 * load, so every plugin gets its object. */
EnsDBus *ens_dbus_start (EnsDaemon *d, GBusType bus_type);
/* After the plugins stopped, before the daemon is freed. */
void ens_dbus_stop (EnsDBus *dbus);

G_END_DECLS
