/* Bus semantics: exact topics, Redis-glob patterns, one delivery per
 * subscriber, targeted delivery, sequence numbers, unsubscribing. */
#include "ens-bus.h"
#include "ens-message-private.h"

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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bus/exact-and-patterns", test_exact_and_patterns);
  g_test_add_func ("/bus/targeted", test_targeted);
  g_test_add_func ("/bus/sequence", test_sequence_and_no_interning);
  g_test_add_func ("/bus/unsubscribe-during-delivery", test_unsubscribe_during_delivery);
  g_test_add_func ("/bus/taps", test_taps);
  return g_test_run ();
}
