/* ens-bench-bus.c — micro benchmark of the bus (ens-bus.c) against the
 * design it replaced, in the same run: a GObject whose "event" signal is
 * detailed by the topic's quark, glob subscribers in a list scanned per
 * publish, one delivery per subscriber by the last sequence number seen.
 *
 * Three loads, each best of R rounds (the least disturbed by a busy machine):
 *   fan-out      one publish to 16 subscribers of the topic;
 *   fan-out+glob the same, and 16 more through "bench.*" (8 of them holding
 *                both, delivered once);
 *   churn        subscribe and unsubscribe one new topic name, and the
 *                memory that 200,000 of them leave behind.
 * Prints ns per operation and the ratio old/new (> 1: the bus is faster).
 *
 * Usage: ens-bench-bus [--count N] [--rounds R] [--quick]
 * Not part of the test suite; build optimised (build-release).
 */
#include "ens-bench-measure.h"
#include "ens-bus.h"
#include "ens-glob.h"
#include "ens-message-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUBSCRIBERS 16

static guint64 sink_count;

static void
sink (EnsMessage *event, gpointer data)
{
  (void) event;
  (void) data;
  sink_count++;
}


/* ------------------------------------------------------------------ the old design */

typedef struct {
  GObject parent;
  GPtrArray *globs; /* OldEntry* */
  guint64 seq;
} OldBus;

typedef struct {
  GObjectClass parent_class;
} OldBusClass;

typedef struct {
  guint64 last_seq;
} OldSub;

typedef struct {
  OldSub *sub;
  char *pattern;
  gulong handler;
} OldEntry;

static GType old_bus_get_type (void);
G_DEFINE_TYPE (OldBus, old_bus, G_TYPE_OBJECT)
static guint old_signal;

static void
old_bus_finalize (GObject *object)
{
  g_ptr_array_unref (((OldBus *) object)->globs);
  G_OBJECT_CLASS (old_bus_parent_class)->finalize (object);
}

static void
old_bus_class_init (OldBusClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = old_bus_finalize;
  old_signal = g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED, 0, NULL,
                             NULL, g_cclosure_marshal_VOID__POINTER, G_TYPE_NONE, 1, G_TYPE_POINTER);
  g_signal_set_va_marshaller (old_signal, G_TYPE_FROM_CLASS (klass), g_cclosure_marshal_VOID__POINTERv);
}

static void
old_bus_init (OldBus *bus)
{
  bus->globs = g_ptr_array_new ();
}

static void
old_deliver (OldSub *sub, EnsMessage *event)
{
  if (sub->last_seq == event->seq)
    return;
  sub->last_seq = event->seq;
  sink (event, NULL);
}

static void
old_on_event (OldBus *bus, EnsMessage *event, gpointer data)
{
  (void) bus;
  old_deliver (((OldEntry *) data)->sub, event);
}

static void
old_entry_free (gpointer data, GClosure *closure)
{
  (void) closure;
  g_free (((OldEntry *) data)->pattern);
  g_free (data);
}

static OldEntry *
old_subscribe (OldBus *bus, OldSub *sub, const char *pattern)
{
  OldEntry *e = g_new0 (OldEntry, 1);

  e->sub = sub;
  e->pattern = g_strdup (pattern);
  if (ens_glob_is_pattern (pattern))
    g_ptr_array_add (bus->globs, e);
  else
    e->handler = g_signal_connect_closure_by_id (bus, old_signal, g_quark_from_string (pattern),
                                                 g_cclosure_new (G_CALLBACK (old_on_event), e, old_entry_free), FALSE);
  return e;
}

static void
old_unsubscribe (OldBus *bus, OldEntry *e)
{
  if (e->handler)
    g_signal_handler_disconnect (bus, e->handler);
  else
    {
      g_ptr_array_remove (bus->globs, e);
      old_entry_free (e, NULL);
    }
}

static void
old_publish (OldBus *bus, EnsMessage *event)
{
  GQuark quark = g_quark_try_string (event->topic);

  ens_message_set_seq (event, ++bus->seq);
  if (quark)
    g_signal_emit (bus, old_signal, quark, event);
  for (guint i = 0; i < bus->globs->len; i++)
    {
      OldEntry *e = g_ptr_array_index (bus->globs, i);
      if (ens_glob_match (e->pattern, event->topic))
        old_deliver (e->sub, event);
    }
}

/* ------------------------------------------------------------------ loads */

static EnsMessage *
event_new (const char *topic)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);

  init.topic = topic;
  init.from = "bench";
  return ens_message_new (&init);
}

/* ns per publish, best of @rounds, on the old design or the bus. */
static double
fanout (gboolean old, gboolean with_globs, guint count, guint rounds)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  OldBus *obus = g_object_new (old_bus_get_type (), NULL);
  EnsSubscriber *subs[2 * SUBSCRIBERS];
  OldSub osubs[2 * SUBSCRIBERS] = { { 0 } };
  g_autoptr (EnsMessage) event = event_new ("bench.topic");
  double best = G_MAXDOUBLE;

  for (guint i = 0; i < 2 * SUBSCRIBERS; i++)
    {
      gboolean exact = i < SUBSCRIBERS;
      gboolean glob = with_globs && (i >= SUBSCRIBERS || i % 2 == 0);

      subs[i] = ens_subscriber_new (sink, NULL, NULL);
      if (old)
        {
          if (exact)
            old_subscribe (obus, &osubs[i], "bench.topic");
          if (glob)
            old_subscribe (obus, &osubs[i], "bench.*");
        }
      else
        {
          if (exact)
            ens_bus_subscribe (bus, subs[i], "bench.topic");
          if (glob)
            ens_bus_subscribe (bus, subs[i], "bench.*");
        }
    }
  for (guint r = 0; r < rounds; r++)
    {
      double start = (double) ens_bench_now_ns ();
      for (guint i = 0; i < count; i++)
        {
          if (old)
            old_publish (obus, event);
          else
            ens_bus_publish (bus, event, NULL);
        }
      best = MIN (best, ((double) ens_bench_now_ns () - start) / count);
    }
  for (guint i = 0; i < 2 * SUBSCRIBERS; i++)
    ens_subscriber_free (bus, subs[i]);
  while (obus->globs->len > 0)
    old_unsubscribe (obus, g_ptr_array_index (obus->globs, 0));
  g_object_unref (obus);
  return best;
}

/* ns per subscribe + unsubscribe of a new topic name; *kb the memory
 * @count of them left behind (first round). */
static double
churn (gboolean old, guint count, guint rounds, long *kb)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  OldBus *obus = g_object_new (old_bus_get_type (), NULL);
  EnsSubscriber *sub = ens_subscriber_new (sink, NULL, NULL);
  OldSub osub = { 0 };
  double best = G_MAXDOUBLE;
  char topic[64];

  for (guint r = 0; r < rounds; r++)
    {
      long before = ens_bench_rss_kb (0);
      double start = (double) ens_bench_now_ns ();
      for (guint i = 0; i < count; i++)
        {
          g_snprintf (topic, sizeof topic, "churn.%s.%u.%u", old ? "old" : "new", r, i);
          if (old)
            old_unsubscribe (obus, old_subscribe (obus, &osub, topic));
          else
            {
              ens_bus_subscribe (bus, sub, topic);
              ens_bus_unsubscribe (bus, sub, topic);
            }
        }
      best = MIN (best, ((double) ens_bench_now_ns () - start) / count);
      if (r == 0)
        *kb = ens_bench_rss_kb (0) - before;
    }
  ens_subscriber_free (bus, sub);
  g_object_unref (obus);
  return best;
}

int
main (int argc, char **argv)
{
  guint count = 200000, rounds = 7;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--count") == 0 && i + 1 < argc)
        count = (guint) atoi (argv[++i]);
      else if (strcmp (argv[i], "--rounds") == 0 && i + 1 < argc)
        rounds = (guint) atoi (argv[++i]);
      else if (strcmp (argv[i], "--quick") == 0)
        {
          count = 20000;
          rounds = 3;
        }
      else
        {
          fprintf (stderr, "usage: %s [--count N] [--rounds R] [--quick]\n", argv[0]);
          return 2;
        }
    }
  printf ("# %u operations per round, best of %u rounds\n", count, rounds);
  {
    double o = fanout (TRUE, FALSE, count, rounds), n = fanout (FALSE, FALSE, count, rounds);
    printf ("fan-out to %d:             signal bus %7.0f ns/publish  bus %7.0f ns/publish  ratio %.2f\n",
            SUBSCRIBERS, o, n, o / n);
  }
  {
    double o = fanout (TRUE, TRUE, count, rounds), n = fanout (FALSE, TRUE, count, rounds);
    printf ("fan-out to %d, %d by glob:  signal bus %7.0f ns/publish  bus %7.0f ns/publish  ratio %.2f\n",
            2 * SUBSCRIBERS, SUBSCRIBERS + SUBSCRIBERS / 2, o, n, o / n);
  }
  {
    long okb = 0, nkb = 0;
    double o = churn (TRUE, count, rounds, &okb), n = churn (FALSE, count, rounds, &nkb);
    printf ("churn (new topic names):   signal bus %7.0f ns/cycle    bus %7.0f ns/cycle    ratio %.2f\n", o, n,
            o / n);
    printf ("  memory left by %u names: signal bus %ld kB, bus %ld kB\n", count, okb, nkb);
  }
  return sink_count == 0;
}
