/* ens-counters.h — what the daemon counts for health, kept by the parts
 * that see it happen (the daemon owns the one instance). */
#pragma once

#include <glib.h>

typedef struct {
  guint64 requests;       /* requests from clients */
  guint64 errors;         /* errors answered */
  guint64 agent_requests; /* requests forwarded to agents */
  guint64 agent_timeouts;
} EnsCounters;
