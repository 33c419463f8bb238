/* ens-http-timers.c — slow clients (ens-http-timers.h).
 *
 * Every request has the same time to arrive, so deadlines come in the order
 * requests start: one queue, oldest first, and one source for all of them,
 * due at the oldest deadline.  A request that arrives in time leaves the
 * queue (found by message); the source, once due, cuts what expired and is
 * due again at the next deadline (or one period later when none is left,
 * so that starting a request never has to move it: moving an attached
 * source wakes the main loop).  Nothing is connected to or set on each
 * message here: the server's own signals, followed by the plugin, say when
 * a request was read or ended. */
#include "ens-http-timers.h"
#include "ens-listener.h"

typedef struct {
  SoupServerMessage *msg; /* (owned) */
  gint64 deadline_us;
} Pending;

struct _EnsHttpTimers {
  GQueue queue;        /* Pending*, oldest first (owned) */
  GHashTable *pending; /* SoupServerMessage* -> its GList link in @queue */
  GSource *source;
  gint64 timeout_us;
  guint64 *timed_out;
};

typedef struct {
  GSource source;
  EnsHttpTimers *timers;
} TimersSource;

static void
pending_free (Pending *p)
{
  g_object_unref (p->msg);
  g_free (p);
}

static gboolean
timers_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  EnsHttpTimers *timers = ((TimersSource *) source)->timers;
  gint64 now = g_source_get_time (source);
  Pending *head;

  (void) callback;
  (void) data;
  while ((head = g_queue_peek_head (&timers->queue)) != NULL && head->deadline_us <= now)
    {
      g_queue_pop_head (&timers->queue);
      g_hash_table_remove (timers->pending, head->msg);
      /* A connection closed before its request's headers were in is
       * no slow client. */
      if (ens_listener_is_open (head->msg))
        {
          (*timers->timed_out)++;
          ens_listener_cut (head->msg); /* the server then ends the request */
        }
      pending_free (head);
    }
  g_source_set_ready_time (source, head ? head->deadline_us : now + timers->timeout_us);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs timers_funcs = {
  .dispatch = timers_dispatch,
};

EnsHttpTimers *
ens_http_timers_new (guint timeout_ms, guint64 *timed_out)
{
  EnsHttpTimers *timers = g_new0 (EnsHttpTimers, 1);

  g_queue_init (&timers->queue);
  timers->pending = g_hash_table_new (g_direct_hash, g_direct_equal);
  timers->timeout_us = (gint64) timeout_ms * 1000;
  timers->timed_out = timed_out;
  timers->source = g_source_new (&timers_funcs, sizeof (TimersSource));
  ((TimersSource *) timers->source)->timers = timers;
  /* Set before the source is attached: no wake-up of the loop. */
  g_source_set_ready_time (timers->source, g_get_monotonic_time () + timers->timeout_us);
  g_source_attach (timers->source, NULL);
  return timers;
}

void
ens_http_timers_start (EnsHttpTimers *timers, SoupServerMessage *msg)
{
  Pending *p = g_new (Pending, 1);

  ens_http_timers_clear (timers, msg);
  p->msg = g_object_ref (msg);
  /* Never earlier than the source is due: it is due at the oldest
   * deadline, or at most one period from now. */
  p->deadline_us = g_get_monotonic_time () + timers->timeout_us;
  g_queue_push_tail (&timers->queue, p);
  g_hash_table_insert (timers->pending, msg, g_queue_peek_tail_link (&timers->queue));
}

void
ens_http_timers_clear (EnsHttpTimers *timers, SoupServerMessage *msg)
{
  GList *link = g_hash_table_lookup (timers->pending, msg);

  if (link == NULL)
    return;
  g_hash_table_remove (timers->pending, msg);
  pending_free (link->data);
  g_queue_delete_link (&timers->queue, link);
}

void
ens_http_timers_free (EnsHttpTimers *timers)
{
  g_source_destroy (timers->source);
  g_source_unref (timers->source);
  g_hash_table_unref (timers->pending);
  g_queue_clear_full (&timers->queue, (GDestroyNotify) pending_free);
  g_free (timers);
}
