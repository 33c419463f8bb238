/* ens-http-timers.c — slow clients (ens-http-timers.h).  One timer a
 * request, kept by message until the server says the request was read or
 * ended (server-wide signals, followed by the plugin): nothing is connected
 * to or set on each message here. */
#include "ens-http-timers.h"
#include "ens-listener.h"

struct _EnsHttpTimers {
  GHashTable *pending; /* SoupServerMessage* -> RequestTimer (a GSource, owned) */
  guint timeout_ms;
  guint64 *timed_out;
};

typedef struct {
  GSource source;
  EnsHttpTimers *timers;
  SoupServerMessage *msg; /* (owned) */
} RequestTimer;

static gboolean
request_timer_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  RequestTimer *timer = (RequestTimer *) source;
  EnsHttpTimers *timers = timer->timers;
  SoupServerMessage *msg = g_object_ref (timer->msg);

  (void) callback;
  (void) data;
  g_hash_table_remove (timers->pending, msg); /* destroys this source */
  (*timers->timed_out)++;
  ens_listener_cut (msg); /* the server then ends the request */
  g_object_unref (msg);
  return G_SOURCE_REMOVE;
}

static void
request_timer_finalize (GSource *source)
{
  g_clear_object (&((RequestTimer *) source)->msg);
}

static GSourceFuncs request_timer_funcs = {
  .dispatch = request_timer_dispatch,
  .finalize = request_timer_finalize,
};

static void
request_timer_free (gpointer data)
{
  GSource *source = data;

  g_source_destroy (source);
  g_source_unref (source);
}

EnsHttpTimers *
ens_http_timers_new (guint timeout_ms, guint64 *timed_out)
{
  EnsHttpTimers *timers = g_new0 (EnsHttpTimers, 1);

  timers->pending = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, request_timer_free);
  timers->timeout_ms = timeout_ms;
  timers->timed_out = timed_out;
  return timers;
}

void
ens_http_timers_start (EnsHttpTimers *timers, SoupServerMessage *msg)
{
  GSource *source = g_source_new (&request_timer_funcs, sizeof (RequestTimer));
  RequestTimer *timer = (RequestTimer *) source;

  timer->timers = timers;
  timer->msg = g_object_ref (msg);
  /* Set before the source is attached: no wake-up of the loop. */
  g_source_set_ready_time (source, g_get_monotonic_time () + (gint64) timers->timeout_ms * 1000);
  g_source_attach (source, NULL);
  g_hash_table_replace (timers->pending, msg, source);
}

void
ens_http_timers_clear (EnsHttpTimers *timers, SoupServerMessage *msg)
{
  g_hash_table_remove (timers->pending, msg);
}

void
ens_http_timers_free (EnsHttpTimers *timers)
{
  g_hash_table_unref (timers->pending);
  g_free (timers);
}
