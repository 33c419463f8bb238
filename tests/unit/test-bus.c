/* Bus semantics: exact topics, Redis-glob patterns, one delivery per
 * subscriber (re-entrant publishes too), targeted delivery, sequence
 * numbers, unsubscribing, and topics forgotten with their last subscriber. */
#include "ens-bus.h"
#include "ens-message-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
  const char *name;
  GPtrArray *seen; /* topics, in order */
  EnsBus *bus;
  EnsSubscriber *self;
  gboolean unsubscribe_on_event;
} Probe;

static void
on_event (EnsMessage *event, gpointer data)
{
  Probe *p = data;

  g_ptr_array_add (p->seen, g_strdup (event->topic));
  if (p->unsubscribe_on_event)
    ens_bus_unsubscribe (p->bus, p->self, "unsub.*");
}

static Probe *
probe_new (EnsBus *bus, const char *name)
{
  Probe *p = g_new0 (Probe, 1);

  p->name = name;
  p->bus = bus;
  p->seen = g_ptr_array_new_with_free_func (g_free);
  p->self = ens_subscriber_new (on_event, p, NULL);
  return p;
}

static void
probe_free (Probe *p)
{
  ens_subscriber_free (p->bus, p->self);
  g_ptr_array_unref (p->seen);
  g_free (p);
}

static EnsMessage *
event_new (const char *topic, const char *to)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);

  init.topic = topic;
  init.to = to;
  init.from = "test";
  return ens_message_new (&init);
}

static guint
publish (EnsBus *bus, const char *topic, const char *to, EnsSubscriber *target)
{
  g_autoptr (EnsMessage) ev = event_new (topic, to);
  return ens_bus_publish (bus, ev, target);
}

static void
test_exact_and_patterns (void)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  Probe *exact = probe_new (bus, "exact");
  Probe *glob = probe_new (bus, "glob");
  Probe *both = probe_new (bus, "both");

  g_assert_true (ens_bus_subscribe (bus, exact->self, "news.tech"));
  g_assert_false (ens_bus_subscribe (bus, exact->self, "news.tech")); /* once */
  g_assert_true (ens_bus_subscribe (bus, glob->self, "news.*"));
  g_assert_true (ens_bus_subscribe (bus, both->self, "news.tech"));
  g_assert_true (ens_bus_subscribe (bus, both->self, "news.*"));
  g_assert_true (ens_bus_subscribe (bus, both->self, "*"));

  g_assert_cmpuint (publish (bus, "news.tech", NULL, NULL), ==, 3); /* both: once, not three times */
  g_assert_cmpuint (publish (bus, "news.sport", NULL, NULL), ==, 2);
  g_assert_cmpuint (publish (bus, "weather", NULL, NULL), ==, 1);
  g_assert_cmpuint (exact->seen->len, ==, 1);
  g_assert_cmpuint (glob->seen->len, ==, 2);
  g_assert_cmpuint (both->seen->len, ==, 3);

  g_assert_true (ens_bus_unsubscribe (bus, glob->self, "news.*"));
  g_assert_false (ens_bus_unsubscribe (bus, glob->self, "news.*"));
  g_assert_cmpuint (publish (bus, "news.sport", NULL, NULL), ==, 1);
  g_assert_cmpuint (glob->seen->len, ==, 2);

  probe_free (exact);
  probe_free (glob);
  probe_free (both);
  g_assert_cmpuint (publish (bus, "news.tech", NULL, NULL), ==, 0);
}

static void
test_targeted (void)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  Probe *target = probe_new (bus, "target");
  Probe *plain = probe_new (bus, "plain");
  Probe *observer = probe_new (bus, "observer");
  Probe *pattern_observer = probe_new (bus, "pattern observer");
  Probe *wildcard = probe_new (bus, "wildcard");

  ens_bus_subscribe (bus, plain->self, "COMPLETION_RESULT");
  ens_bus_subscribe (bus, observer->self, "COMPLETION_RESULT:c7-n1");
  ens_bus_subscribe (bus, pattern_observer->self, "COMPLETION_RESULT:*");
  ens_bus_subscribe (bus, target->self, "COMPLETION_RESULT"); /* subscribed too: still once */
  ens_bus_subscribe (bus, wildcard->self, "*");
  ens_bus_subscribe (bus, wildcard->self, "COMPLETION_*");

  g_assert_cmpuint (publish (bus, "COMPLETION_RESULT", "c7-n1", target->self), ==, 3);
  g_assert_cmpuint (target->seen->len, ==, 1);
  g_assert_cmpuint (plain->seen->len, ==, 0); /* others never see a targeted event */
  g_assert_cmpuint (observer->seen->len, ==, 1);
  g_assert_cmpuint (pattern_observer->seen->len, ==, 1);
  g_assert_cmpuint (wildcard->seen->len, ==, 0); /* "*" does not see private events */
  publish (bus, "COMPLETION_RESULT", NULL, NULL);
  g_assert_cmpuint (wildcard->seen->len, ==, 1);

  probe_free (wildcard);
  probe_free (target);
  probe_free (plain);
  probe_free (observer);
  probe_free (pattern_observer);
}

static void
test_sequence_and_no_interning (void)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  g_autoptr (EnsMessage) a = event_new ("seq.a", NULL);
  g_autoptr (EnsMessage) b = event_new ("seq.b", NULL);

  ens_bus_publish (bus, a, NULL);
  ens_bus_publish (bus, b, NULL);
  g_assert_cmpuint (b->seq, ==, a->seq + 1);
  g_assert_cmpuint (ens_bus_last_seq (bus), ==, b->seq);
  /* Publishing to a topic nobody asked for must not grow the quark table. */
  publish (bus, "never.subscribed.topic.4f1c9a", NULL, NULL);
  g_assert_cmpuint (g_quark_try_string ("never.subscribed.topic.4f1c9a"), ==, 0);
}

static void
test_unsubscribe_during_delivery (void)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  Probe *p = probe_new (bus, "self-removing");
  Probe *q = probe_new (bus, "other");

  p->unsubscribe_on_event = TRUE;
  ens_bus_subscribe (bus, p->self, "unsub.*");
  ens_bus_subscribe (bus, q->self, "unsub.*");
  publish (bus, "unsub.x", NULL, NULL);
  publish (bus, "unsub.y", NULL, NULL);
  g_assert_cmpuint (p->seen->len, ==, 1);
  g_assert_cmpuint (q->seen->len, ==, 2);
  probe_free (p);
  probe_free (q);
}

static void
count_tap (EnsMessage *event, gpointer data)
{
  (void) event;
  (*(guint *) data)++;
}

static void
test_taps (void)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  Probe *target = probe_new (bus, "target");
  guint tapped = 0;
  guint id = ens_bus_tap (bus, count_tap, &tapped, NULL);
  g_autoptr (EnsMessage) remote = event_new ("from.elsewhere", NULL);

  publish (bus, "nobody.listens", NULL, NULL);
  publish (bus, "private", "c9-n", target->self); /* a bridge must see targeted events too */
  g_assert_cmpuint (tapped, ==, 2);
  ens_message_set_remote (remote);
  ens_bus_publish (bus, remote, NULL); /* came from another node: never sent back */
  g_assert_cmpuint (tapped, ==, 2);
  ens_bus_untap (bus, id);
  publish (bus, "after", NULL, NULL);
  g_assert_cmpuint (tapped, ==, 2);
  probe_free (target);
}

/* A subscriber whose callback publishes again, holding an exact and a glob
 * subscription that both match: each event reaches each subscriber once. */
typedef struct {
  EnsBus *bus;
  EnsSubscriber *self;
  GPtrArray *seen;
  const char *republish; /* published from inside the first delivery */
} Echoer;

static void
echoer_event (EnsMessage *event, gpointer data)
{
  Echoer *e = data;

  g_ptr_array_add (e->seen, g_strdup (event->topic));
  if (e->republish)
    {
      const char *topic = e->republish;
      e->republish = NULL;
      g_assert_cmpuint (publish (e->bus, topic, NULL, NULL), ==, 2);
    }
}

static guint
count (GPtrArray *seen, const char *topic)
{
  guint n = 0;

  for (guint i = 0; i < seen->len; i++)
    n += g_strcmp0 (g_ptr_array_index (seen, i), topic) == 0;
  return n;
}

static void
test_reentrant_publish_delivers_once (void)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  Echoer a = { .bus = bus, .seen = g_ptr_array_new_with_free_func (g_free), .republish = "news.inner" };
  Echoer b = { .bus = bus, .seen = g_ptr_array_new_with_free_func (g_free) };

  a.self = ens_subscriber_new (echoer_event, &a, NULL);
  b.self = ens_subscriber_new (echoer_event, &b, NULL);
  /* Both hold an exact and a glob subscription matching "news.outer"; a's
   * callback publishes "news.inner", which both match by the glob. */
  g_assert_true (ens_bus_subscribe (bus, a.self, "news.outer"));
  g_assert_true (ens_bus_subscribe (bus, a.self, "news.*"));
  g_assert_true (ens_bus_subscribe (bus, b.self, "news.outer"));
  g_assert_true (ens_bus_subscribe (bus, b.self, "news.*"));

  g_assert_cmpuint (publish (bus, "news.outer", NULL, NULL), ==, 2);
  g_assert_cmpuint (count (a.seen, "news.outer"), ==, 1);
  g_assert_cmpuint (count (b.seen, "news.outer"), ==, 1);
  g_assert_cmpuint (count (a.seen, "news.inner"), ==, 1);
  g_assert_cmpuint (count (b.seen, "news.inner"), ==, 1);
  g_assert_cmpuint (a.seen->len + b.seen->len, ==, 4);

  ens_subscriber_free (bus, a.self);
  ens_subscriber_free (bus, b.self);
  g_ptr_array_unref (a.seen);
  g_ptr_array_unref (b.seen);
}

/* A subscriber freed by another one's callback, during a publish, is not
 * reached (and nothing of it is touched). */
typedef struct {
  EnsBus *bus;
  EnsSubscriber *victim;
  guint calls;
} Killer;

static void
killer_event (EnsMessage *event, gpointer data)
{
  Killer *k = data;

  (void) event;
  k->calls++;
  if (k->victim)
    ens_subscriber_free (k->bus, g_steal_pointer (&k->victim));
}

static void
never_event (EnsMessage *event, gpointer data)
{
  (void) event;
  (*(guint *) data)++;
}

static void
test_subscriber_freed_during_publish (void)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  Killer k = { .bus = bus };
  guint victim_calls = 0;
  EnsSubscriber *killer = ens_subscriber_new (killer_event, &k, NULL);

  k.victim = ens_subscriber_new (never_event, &victim_calls, NULL);
  ens_bus_subscribe (bus, killer, "x");
  ens_bus_subscribe (bus, k.victim, "x");
  ens_bus_subscribe (bus, k.victim, "x*");
  g_assert_cmpuint (publish (bus, "x", NULL, NULL), ==, 1);
  g_assert_cmpuint (victim_calls, ==, 0);
  g_assert_cmpuint (publish (bus, "x", NULL, NULL), ==, 1);
  g_assert_cmpuint (k.calls, ==, 2);
  ens_subscriber_free (bus, killer);
}

static void
interest_count (const char *pattern, gboolean wanted, gpointer data)
{
  (void) pattern;
  *(gint *) data += wanted ? 1 : -1;
}

static gint64
rss_kb (void)
{
  FILE *f = fopen ("/proc/self/statm", "r");
  long pages = 0, resident = 0;

  g_assert_nonnull (f);
  g_assert_cmpint (fscanf (f, "%ld %ld", &pages, &resident), ==, 2);
  fclose (f);
  return (gint64) resident * sysconf (_SC_PAGESIZE) / 1024;
}

static double
env_scale (const char *name)
{
  const char *v = g_getenv (name);
  return v ? MAX (1.0, g_ascii_strtod (v, NULL)) : 1.0;
}

/* A client cycling through distinct topic names: each is forgotten with its
 * last subscriber (nothing interned), so memory stays where it was.  Under
 * the sanitizers (scales > 1) fewer topics and a bound that only catches
 * gross growth: AddressSanitizer keeps freed memory in quarantine. */
static void
test_distinct_topics_are_forgotten (void)
{
  g_autoptr (EnsBus) bus = ens_bus_new ();
  EnsSubscriber *sub = ens_subscriber_new (never_event, NULL, NULL);
  double scale = env_scale ("ENS_TEST_TIMEOUT_SCALE"), memory_scale = env_scale ("ENS_TEST_MEMORY_SCALE");
  guint n = (guint) (1000000 / (scale * scale));
  gint interest = 0;
  guint id = ens_bus_watch_interest (bus, interest_count, &interest);
  char topic[64];
  gint64 before;

  for (guint i = 0; i < 20000; i++) /* the allocator's steady state */
    {
      g_snprintf (topic, sizeof topic, "warm.%u", i);
      ens_bus_subscribe (bus, sub, topic);
      ens_bus_unsubscribe (bus, sub, topic);
    }
  before = rss_kb ();
  for (guint i = 0; i < n; i++)
    {
      g_snprintf (topic, sizeof topic, "cycling.topic.%u.%x", i, i * 2654435761u);
      g_assert_true (ens_bus_subscribe (bus, sub, topic));
      if (i % 1000 == 999)
        g_assert_cmpint (interest, ==, 1);
      g_assert_true (ens_bus_unsubscribe (bus, sub, topic));
    }
  g_assert_cmpint (interest, ==, 0);
  g_assert_cmpuint (ens_subscriber_count (sub), ==, 0);
  g_assert_cmpuint (g_quark_try_string ("cycling.topic.12345.a12b4869"), ==, 0);
  g_test_message ("%u topics: RSS %" G_GINT64_FORMAT " kB -> %" G_GINT64_FORMAT " kB", n, before, rss_kb ());
  g_assert_cmpint (rss_kb () - before, <, 4096 * memory_scale * memory_scale);
  ens_bus_unwatch_interest (bus, id);
  ens_subscriber_free (bus, sub);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bus/exact-and-patterns", test_exact_and_patterns);
  g_test_add_func ("/bus/targeted", test_targeted);
  g_test_add_func ("/bus/sequence", test_sequence_and_no_interning);
  g_test_add_func ("/bus/unsubscribe-during-delivery", test_unsubscribe_during_delivery);
  g_test_add_func ("/bus/taps", test_taps);
  g_test_add_func ("/bus/reentrant-publish-delivers-once", test_reentrant_publish_delivers_once);
  g_test_add_func ("/bus/subscriber-freed-during-publish", test_subscriber_freed_during_publish);
  g_test_add_func ("/bus/distinct-topics-are-forgotten", test_distinct_topics_are_forgotten);
  return g_test_run ();
}
