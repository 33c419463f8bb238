/* ens-state.h — durable state in SQLite (ens-state.c): values by scope and
 * key, and counters that never go back. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _EnsState EnsState;

EnsState *ens_state_open (const char *dir, GError **error);
void ens_state_close (EnsState *state);
gboolean ens_state_set (EnsState *state, const char *scope, const char *key, const char *value, GError **error);
/* (transfer full) the value, or NULL (without @error when absent). */
char *ens_state_get (EnsState *state, const char *scope, const char *key, GError **error);
gboolean ens_state_delete (EnsState *state, const char *scope, const char *key, gboolean *existed, GError **error);
/* (transfer full) keys of @scope starting with @prefix, sorted, at most @limit */
GPtrArray *ens_state_list (EnsState *state, const char *scope, const char *prefix, guint limit, GError **error);
gint64 ens_state_next_sequence (EnsState *state, const char *name, GError **error);

G_END_DECLS
