/* ens-session.h — long-running sessions (ens-session.c): a conversation
 * whose tasks run as completions, their progress published for every
 * watcher on "session.<id>.<type>"; the sessions.* verbs. */
#pragma once

#include "ens-completion.h"

G_BEGIN_DECLS

typedef struct _EnsSessions EnsSessions;

/* Reads the sessions kept in @state (one that was running reads
 * "interrupted"). */
EnsSessions *ens_sessions_new (EnsState *state, EnsCompletions *completions, EnsEvents *events);
void ens_sessions_free (EnsSessions *sessions);
/* sessions.spawn, sessions.execute, sessions.status, sessions.stop,
 * sessions.list */
void ens_sessions_add_verbs (EnsSessions *sessions, EnsVerbs *verbs);
guint ens_sessions_count (EnsSessions *sessions, gboolean active_only);
/* (transfer full) {sessions: [...], total}, as sessions.list answers */
JsonNode *ens_sessions_list (EnsSessions *sessions);

G_END_DECLS
