/* ens-session-record.h — what is kept of a session (ens-session-record.c):
 * its record, the JSON object stored and shown, with its conversation, its
 * current or last task, its counters and its last tasks' outcomes; and
 * what a task says of itself (task_meta).  Every function takes the record
 * (transfer none) and changes it in place. */
#pragma once

#include "ens-message-private.h"

G_BEGIN_DECLS

/* (transfer full) a new record {id, orchestrator_id, session_type, model?,
 * provider?, status:"idle", created_at, history, tasks_total, metrics,
 * recent_tasks}; @system (may be NULL) starts the history. */
JsonObject *ens_session_record_new (const char *id, const char *orchestrator, const char *type, const char *model,
                                    const char *provider, const char *system, gint64 created_us);
/* (transfer none) metrics {tokens_used, duration_ms, tasks_completed,
 * tasks_failed, avg_response_ms}, made if missing (a record kept by an
 * older daemon). */
JsonObject *ens_session_record_metrics (JsonObject *record);
/* The conversation, bounded: the oldest messages go first. */
void ens_session_record_history_add (JsonObject *record, const char *role, const char *content);
/* ended_at = @when (real time, µs), or none when 0. */
void ens_session_record_set_ended (JsonObject *record, gint64 when);
/* (transfer none) the current or last task, or NULL. */
JsonObject *ens_session_record_task (JsonObject *record);
/* The task becomes {id, description, type ("general"), priority
 * ("medium"), status:"running", created_at, updated_at, metadata?,
 * assigned_to?}, from @meta (task_meta, may be NULL). */
void ens_session_record_task_begin (JsonObject *record, const char *id, const char *description, JsonObject *meta);
void ens_session_record_task_set_status (JsonObject *record, const char *status);
/* The task ended with @status ("completed", "failed", "cancelled"): its
 * status, the counters (a cancelled task counts its tokens only), and its
 * outcome among recent_tasks (the last 20; @response cut to 4096
 * characters).  @response and @error may be NULL. */
void ens_session_record_task_end (JsonObject *record, const char *status, const char *response, const char *error,
                                  gint64 tokens, gint64 ms);

/* task_meta {type?, priority?, metadata?, assigned_to?} of @p: NULL and
 * *out (transfer full, NULL when absent), or (transfer full) the
 * INVALID_PARAMETERS answering @request. */
EnsMessage *ens_session_read_task_meta (EnsMessage *request, JsonObject *p, JsonObject **out);

G_END_DECLS
