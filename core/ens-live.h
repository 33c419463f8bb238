/* ens-live.h — settings changed while the daemon runs take effect without a
 * restart (ens-live.c). */
#pragma once

#include "ens-daemon.h"

G_BEGIN_DECLS

void ens_live_start (EnsDaemon *d);

G_END_DECLS
