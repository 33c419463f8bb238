/* ens-timers.c — EnsDeadlines and EnsSoon (see the header). */
#include "ens-timers.h"

/* ---------------------------------------------------------------- deadlines */

struct _EnsDeadlines {
  GSource source;
  GPtrArray *heap; /* EnsDeadline*, the earliest first */
  EnsDeadlineFunc func;
  gpointer data;
};

static inline EnsDeadline *
at (EnsDeadlines *d, guint i)
{
  return g_ptr_array_index (d->heap, i);
}

static inline void
place (EnsDeadlines *d, guint i, EnsDeadline *dl)
{
  d->heap->pdata[i] = dl;
  dl->slot = i + 1;
}

static void
sift_up (EnsDeadlines *d, guint i)
{
  EnsDeadline *dl = at (d, i);

  while (i > 0)
    {
      guint parent = (i - 1) / 2;
      if (at (d, parent)->due_us <= dl->due_us)
        break;
      place (d, i, at (d, parent));
      i = parent;
    }
  place (d, i, dl);
}

static void
sift_down (EnsDeadlines *d, guint i)
{
  EnsDeadline *dl = at (d, i);
  guint n = d->heap->len;

  for (;;)
    {
      guint child = 2 * i + 1;
      if (child >= n)
        break;
      if (child + 1 < n && at (d, child + 1)->due_us < at (d, child)->due_us)
        child++;
      if (dl->due_us <= at (d, child)->due_us)
        break;
      place (d, i, at (d, child));
      i = child;
    }
  place (d, i, dl);
}

/* Takes the entry at @i out of the heap. */
static void
take (EnsDeadlines *d, guint i)
{
  EnsDeadline *gone = at (d, i);
  EnsDeadline *last = g_ptr_array_steal_index_fast (d->heap, d->heap->len - 1);

  gone->slot = 0;
  if (last == gone)
    return;
  place (d, i, last);
  if (i > 0 && at (d, (i - 1) / 2)->due_us > last->due_us)
    sift_up (d, i);
  else
    sift_down (d, i);
}

/* The source wakes for the earliest deadline.  It is set earlier when an
 * earlier one comes, and left as it is when the earliest goes (setting a
 * ready time wakes the loop): it then wakes once for nothing and sets
 * itself for what is left. */
static void
arm (EnsDeadlines *d, gboolean exact)
{
  gint64 want = d->heap->len ? at (d, 0)->due_us : -1;
  gint64 now = g_source_get_ready_time (&d->source);

  if (exact ? want != now : (want >= 0 && (now < 0 || want < now)))
    g_source_set_ready_time (&d->source, want);
}

static gboolean
deadlines_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  EnsDeadlines *d = (EnsDeadlines *) source;
  gint64 now = g_get_monotonic_time ();

  (void) callback;
  (void) user_data;
  while (d->heap->len > 0 && at (d, 0)->due_us <= now)
    {
      EnsDeadline *due = at (d, 0);
      take (d, 0);
      d->func (due, d->data);
    }
  arm (d, TRUE);
  return G_SOURCE_CONTINUE;
}

static void
deadlines_finalize (GSource *source)
{
  EnsDeadlines *d = (EnsDeadlines *) source;

  for (guint i = 0; i < d->heap->len; i++)
    at (d, i)->slot = 0;
  g_ptr_array_unref (d->heap);
}

static GSourceFuncs deadlines_funcs = {
  .dispatch = deadlines_dispatch,
  .finalize = deadlines_finalize,
};

EnsDeadlines *
ens_deadlines_new (EnsDeadlineFunc func, gpointer data)
{
  GSource *source = g_source_new (&deadlines_funcs, sizeof (EnsDeadlines));
  EnsDeadlines *d = (EnsDeadlines *) source;

  d->heap = g_ptr_array_new ();
  d->func = func;
  d->data = data;
  g_source_set_static_name (source, "ens-deadlines");
  g_source_attach (source, NULL);
  return d;
}

void
ens_deadlines_free (EnsDeadlines *d)
{
  if (d == NULL)
    return;
  g_source_destroy (&d->source);
  g_source_unref (&d->source);
}

void
ens_deadlines_add (EnsDeadlines *d, EnsDeadline *dl, gint64 due_us)
{
  g_return_if_fail (dl->slot == 0);
  dl->due_us = due_us;
  g_ptr_array_add (d->heap, dl);
  sift_up (d, d->heap->len - 1);
  if (dl->slot == 1)
    arm (d, FALSE);
}

void
ens_deadlines_remove (EnsDeadlines *d, EnsDeadline *dl)
{
  if (dl->slot == 0)
    return;
  g_return_if_fail (dl->slot <= d->heap->len && at (d, dl->slot - 1) == dl);
  take (d, dl->slot - 1);
}

guint
ens_deadlines_pending (EnsDeadlines *d)
{
  return d->heap->len;
}

/* ---------------------------------------------------------------- soon */

struct _EnsSoon {
  GSource source;
  gboolean asked;
  void (*func) (gpointer data);
  gpointer data;
};

static gboolean
soon_prepare (GSource *source, gint *timeout)
{
  *timeout = -1;
  return ((EnsSoon *) source)->asked;
}

static gboolean
soon_check (GSource *source)
{
  return ((EnsSoon *) source)->asked;
}

static gboolean
soon_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  EnsSoon *soon = (EnsSoon *) source;

  (void) callback;
  (void) user_data;
  if (soon->asked)
    {
      soon->asked = FALSE;
      soon->func (soon->data);
    }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs soon_funcs = {
  .prepare = soon_prepare,
  .check = soon_check,
  .dispatch = soon_dispatch,
};

EnsSoon *
ens_soon_new (int priority, void (*func) (gpointer data), gpointer data)
{
  GSource *source = g_source_new (&soon_funcs, sizeof (EnsSoon));
  EnsSoon *soon = (EnsSoon *) source;

  soon->func = func;
  soon->data = data;
  g_source_set_priority (source, priority);
  g_source_set_static_name (source, "ens-soon");
  g_source_attach (source, NULL);
  return soon;
}

void
ens_soon_free (EnsSoon *soon)
{
  if (soon == NULL)
    return;
  g_source_destroy (&soon->source);
  g_source_unref (&soon->source);
}

void
ens_soon_ask (EnsSoon *soon)
{
  /* Asked from the loop's own thread (inside a dispatch or before the loop
   * runs): the next prepare sees it, no wake-up needed. */
  soon->asked = TRUE;
}

gboolean
ens_soon_cancel (EnsSoon *soon)
{
  gboolean was = soon->asked;

  soon->asked = FALSE;
  return was;
}
