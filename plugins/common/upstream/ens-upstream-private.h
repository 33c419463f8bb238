/* ens-upstream-private.h — what the files of the upstream library share
 * among themselves; not for plugins. */
#pragma once

#include "ens-upstream-call.h"

G_BEGIN_DECLS

/* Drops a reference to @call (the provider's set of running calls holds one). */
void ens_upstream_call_unref (EnsUpstreamCall *call);

/* Reads the rest of an ended answer's body @input (transfer full) so that
 * its connection goes back to the pool; gives up (and drops the connection)
 * past 64 KiB or 2 s.  @provider tracks it until it is done. */
void ens_upstream_drain (EnsUpstreamProvider *provider, GInputStream *input);
/* Stops every drain of @provider (their connections are dropped). */
void ens_upstream_drains_stop (EnsUpstreamProvider *provider);

G_END_DECLS
