/* ens-upstream-private.h — what the files of the upstream library share
 * among themselves; not for plugins. */
#pragma once

#include "ens-upstream-call.h"

G_BEGIN_DECLS

/* Drops a reference to @call (the provider's set of running calls holds one). */
void ens_upstream_call_unref (EnsUpstreamCall *call);

G_END_DECLS
