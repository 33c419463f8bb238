/* ens-session.h — long-running sessions (ens-session.c): a conversation
 * whose tasks run as completions one after another (a busy session queues
 * them), their progress published for every watcher on
 * "session.<id>.<type>"; the sessions.* verbs. */
#pragma once

#include "ens-completion.h"
#include "ens-requests.h"

G_BEGIN_DECLS

typedef struct _EnsSessions EnsSessions;

/* Reads the sessions kept in @state (one that was running reads
 * "interrupted").  @config: session-queue-length, read on each use. */
EnsSessions *ens_sessions_new (EnsConfig *config, EnsState *state, EnsCompletions *completions, EnsEvents *events,
                               EnsRequests *requests, EnsAgents *agents);
void ens_sessions_free (EnsSessions *sessions);
/* sessions.spawn, sessions.ensure, sessions.execute, sessions.status,
 * sessions.stop, sessions.list */
void ens_sessions_add_verbs (EnsSessions *sessions, EnsVerbs *verbs);
guint ens_sessions_count (EnsSessions *sessions, gboolean active_only);
/* (transfer full) {sessions: [...], total}, as sessions.list answers */
JsonNode *ens_sessions_list (EnsSessions *sessions);
/* (transfer full) the daemon's session counters, for health: {spawned,
 * tasks_completed, tasks_failed, tasks_queued, tokens_used, ended,
 * avg_session_ms} */
JsonNode *ens_sessions_stats (EnsSessions *sessions);

G_END_DECLS
