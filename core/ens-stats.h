/* ens-stats.h — the daemon's last minutes (ens-stats.c): its counters
 * sampled once a second into a fixed ring of ten minutes, so a console
 * opened now draws them at once; connections that watch get each new point
 * as it is taken.
 *
 * A point: {t (ms since the epoch), requests_per_s, deliveries_per_s,
 * published_per_s, errors_per_s, completions_per_s, completion_latency_ms
 * (the mean of the completions that finished in that second, null when
 * none did), connections, completions_running}.
 *
 * Verbs:
 *   stats.history {seconds?: 1-600} -> {interval_ms, capacity, count,
 *       t: [...], requests_per_s: [...], ...} (one array per field, oldest
 *       first)
 *   stats.watch   the caller gets an "ensemble.stats" event after every
 *       sample: the point, plus the running totals; delivered to it alone,
 *       outside the bus (so neither counted as a delivery nor seen by
 *       pattern subscribers or other nodes; its seq is 0)
 *   stats.unwatch stops that (so does closing the connection) */
#pragma once

#include "ens-completion.h"
#include "ens-counters.h"

G_BEGIN_DECLS

typedef struct _EnsStats EnsStats;

/* Starts sampling at once; every argument (transfer none) must outlive it. */
EnsStats *ens_stats_new (const EnsCounters *counters, EnsBus *bus, EnsClients *clients,
                         EnsCompletions *completions);
void ens_stats_free (EnsStats *stats);
void ens_stats_add_verbs (EnsStats *stats, EnsVerbs *verbs);
/* Takes a sample now: the timer calls it once a second with the clocks;
 * tests call it with clocks of their own. */
void ens_stats_sample_at (EnsStats *stats, gint64 mono_us, gint64 real_ms);
/* (transfer full) the newest @seconds points (fewer if fewer are held), one
 * array per field, as stats.history answers. */
JsonNode *ens_stats_history (EnsStats *stats, guint seconds);
/* Clients client-closed: it watches no more. */
void ens_stats_client_closed (EnsStats *stats, EnsClient *client);

G_END_DECLS
