/* ens-timers.h — timers on the main loop for what comes and goes by the
 * thousand (ens-timers.c), each on one GSource made once, instead of a
 * GSource added and removed for every use (~2,000 instructions each, and
 * every GSource attached is looked at on every turn of the loop):
 *   EnsDeadlines  many deadlines: a min-heap of entries the caller embeds
 *                 (no allocation to add or remove one); the source wakes
 *                 for the earliest only.
 *   EnsSoon       a function run once at the next turn of the loop, each
 *                 time it is asked (an idle that is never removed). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _EnsDeadlines EnsDeadlines;

/* Embedded in what has the deadline; zero-filled it is not pending. */
typedef struct {
  gint64 due_us; /* monotonic */
  guint slot;    /* its place in the heap + 1; 0: not pending */
} EnsDeadline;

/* @deadline is due: it is no longer pending when this runs (it may be
 * added again, and others added or removed). */
typedef void (*EnsDeadlineFunc) (EnsDeadline *deadline, gpointer data);

/* On the default main context (as g_timeout_add()). */
EnsDeadlines *ens_deadlines_new (EnsDeadlineFunc func, gpointer data);
/* Pending deadlines are dropped (none runs). */
void ens_deadlines_free (EnsDeadlines *deadlines);
/* @deadline (not pending) runs at @due_us (g_get_monotonic_time()), or as
 * soon as the loop turns if that has passed. */
void ens_deadlines_add (EnsDeadlines *deadlines, EnsDeadline *deadline, gint64 due_us);
/* @deadline will not run; nothing when it is not pending. */
void ens_deadlines_remove (EnsDeadlines *deadlines, EnsDeadline *deadline);
guint ens_deadlines_pending (EnsDeadlines *deadlines);

typedef struct _EnsSoon EnsSoon;

/* @func runs at @priority (G_PRIORITY_HIGH_IDLE: after what is ready of
 * higher priority, as an idle of that priority would) once asked. */
EnsSoon *ens_soon_new (int priority, void (*func) (gpointer data), gpointer data);
void ens_soon_free (EnsSoon *soon);
/* Runs the function at the next turn of the loop; asked again before that,
 * it still runs once. */
void ens_soon_ask (EnsSoon *soon);
/* Takes the request back: TRUE when it had been asked (and had not run). */
gboolean ens_soon_cancel (EnsSoon *soon);

G_END_DECLS
