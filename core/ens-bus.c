/* ens-bus.c — the event bus.
 *
 * Subscriptions are grouped by pattern: one Topic per distinct topic or
 * glob pattern, holding its subscribers in subscription order.  Exact
 * topics are found with one hash lookup per publish; glob patterns are
 * matched once per distinct pattern, however many subscribe to it.  A
 * targeted event (to = a client) is keyed "<topic>:<client>", so only
 * observers of that key (or of a pattern with a ':') see it, and its
 * target receives it directly.
 *
 * Why not a detailed GObject signal per topic, as the design first had it:
 * a signal detail is a GQuark, and interned quarks are never freed, so a
 * client cycling through distinct topic names would grow the daemon
 * forever; a Topic here is freed with its last subscriber.  Direct calls
 * also cost less than a closure marshalled per handler.
 *
 * One delivery per subscriber and event, even when several of its
 * patterns match and a callback publishes again: for each event the bus
 * first picks its subscribers (no callback runs while it picks, so a mark
 * per pick cannot be overwritten), then delivers to the picked ones.
 * Nothing is freed while a publish runs: an entry removed then is marked
 * dead and skipped, its Topic compacted once the outermost publish ends.
 * The picked lists are kept per nesting depth and reused, so a publish
 * allocates nothing in the steady state; the event is encoded once, by
 * whoever delivers it first (ens_message_encode caches it). */
#include "ens-bus.h"
#include "ens-glob.h"
#include "ens-message-private.h"

#include <string.h>

typedef struct _Topic Topic;

typedef struct {
  EnsSubscriber *sub;
  Topic *topic;
  gboolean dead; /* unsubscribed while a publish ran: freed when it ends */
} SubEntry;

struct _Topic {
  char *pattern;
  GPtrArray *entries; /* SubEntry*, in subscription order */
  guint live;         /* entries not dead: the interest in @pattern */
  guint glob : 1;
  guint has_colon : 1; /* may observe targeted events */
  guint dirty : 1;     /* in bus->dirty: holds dead entries, or is unused */
};

struct _EnsSubscriber {
  EnsSubscriberFunc func;
  gpointer data;
  GDestroyNotify notify;
  guint64 mark;       /* the last pick that took it: one delivery per event */
  GPtrArray *entries; /* SubEntry* */
  GPtrArray *patterns_view;
};

typedef struct {
  guint id;
  EnsSubscriberFunc func;
  gpointer data;
  GDestroyNotify notify;
} Tap;

typedef struct {
  guint id;
  EnsInterestFunc func;
  gpointer data;
} Watcher;

struct _EnsBus {
  GObject parent;
  GHashTable *topics;  /* pattern -> Topic, exact and glob */
  GPtrArray *globs;    /* Topic*, the glob ones */
  GPtrArray *taps;     /* Tap* */
  GPtrArray *watchers; /* Watcher* */
  guint next_tap;
  guint64 seq;
  guint64 published; /* events of this node */
  guint64 delivered;
  guint64 picks;      /* marks handed out */
  guint publishing;   /* depth of nested publishes */
  GPtrArray *picked;  /* per depth: GPtrArray of the SubEntry* picked for one event */
  GPtrArray *dirty;   /* Topic* to compact when publishing ends */
};

G_DEFINE_FINAL_TYPE (EnsBus, ens_bus, G_TYPE_OBJECT)

static void
tap_free (Tap *tap)
{
  if (tap->notify)
    tap->notify (tap->data);
  g_free (tap);
}

static void
topic_destroy (Topic *t)
{
  for (guint i = 0; i < t->entries->len; i++)
    g_free (g_ptr_array_index (t->entries, i));
  g_ptr_array_unref (t->entries);
  g_free (t->pattern);
  g_free (t);
}

static void
ens_bus_finalize (GObject *object)
{
  EnsBus *bus = ENS_BUS (object);

  g_ptr_array_unref (bus->taps);
  g_hash_table_unref (bus->topics);
  g_ptr_array_unref (bus->globs);
  g_ptr_array_unref (bus->watchers);
  g_ptr_array_unref (bus->picked);
  g_ptr_array_unref (bus->dirty);
  G_OBJECT_CLASS (ens_bus_parent_class)->finalize (object);
}

static void
ens_bus_class_init (EnsBusClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ens_bus_finalize;
}

static void
ens_bus_init (EnsBus *bus)
{
  bus->topics = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) topic_destroy);
  bus->globs = g_ptr_array_new ();
  bus->taps = g_ptr_array_new_with_free_func ((GDestroyNotify) tap_free);
  bus->watchers = g_ptr_array_new_with_free_func (g_free);
  bus->picked = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  bus->dirty = g_ptr_array_new ();
}

EnsBus *
ens_bus_new (void)
{
  return g_object_new (ENS_TYPE_BUS, NULL);
}

/* ------------------------------------------------------------------ interest */

/* A pattern gained its first subscriber or lost its last. */
static void
interest_edge (EnsBus *bus, const char *pattern, gboolean wanted)
{
  for (guint i = 0; i < bus->watchers->len; i++)
    {
      Watcher *w = g_ptr_array_index (bus->watchers, i);
      w->func (pattern, wanted, w->data);
    }
}

guint
ens_bus_watch_interest (EnsBus *bus, EnsInterestFunc func, gpointer data)
{
  Watcher *w = g_new0 (Watcher, 1);
  GHashTableIter iter;
  gpointer value;

  w->id = ++bus->next_tap;
  w->func = func;
  w->data = data;
  g_ptr_array_add (bus->watchers, w);
  g_hash_table_iter_init (&iter, bus->topics);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Topic *) value)->live > 0)
      func (((Topic *) value)->pattern, TRUE, data);
  return w->id;
}

void
ens_bus_unwatch_interest (EnsBus *bus, guint id)
{
  for (guint i = 0; i < bus->watchers->len; i++)
    if (((Watcher *) g_ptr_array_index (bus->watchers, i))->id == id)
      {
        g_ptr_array_remove_index (bus->watchers, i);
        return;
      }
}

/* ------------------------------------------------------------------ taps */

guint
ens_bus_tap (EnsBus *bus, EnsSubscriberFunc func, gpointer data, GDestroyNotify notify)
{
  Tap *tap = g_new0 (Tap, 1);

  tap->id = ++bus->next_tap;
  tap->func = func;
  tap->data = data;
  tap->notify = notify;
  g_ptr_array_add (bus->taps, tap);
  return tap->id;
}

void
ens_bus_untap (EnsBus *bus, guint id)
{
  for (guint i = 0; i < bus->taps->len; i++)
    if (((Tap *) g_ptr_array_index (bus->taps, i))->id == id)
      {
        g_ptr_array_remove_index (bus->taps, i);
        return;
      }
}

/* ------------------------------------------------------------------ topics */

static Topic *
topic_get (EnsBus *bus, const char *pattern)
{
  Topic *t = g_hash_table_lookup (bus->topics, pattern);

  if (t)
    return t;
  t = g_new0 (Topic, 1);
  t->pattern = g_strdup (pattern);
  t->entries = g_ptr_array_new ();
  t->glob = ens_glob_is_pattern (pattern);
  t->has_colon = strchr (pattern, ':') != NULL;
  g_hash_table_insert (bus->topics, t->pattern, t);
  if (t->glob)
    g_ptr_array_add (bus->globs, t);
  return t;
}

/* Forgets a Topic nobody holds any more. */
static void
topic_drop (EnsBus *bus, Topic *t)
{
  if (t->glob)
    g_ptr_array_remove (bus->globs, t);
  g_hash_table_remove (bus->topics, t->pattern); /* frees t */
}

/* After the outermost publish: dead entries go, unused Topics too. */
static void
sweep (EnsBus *bus)
{
  for (guint i = 0; i < bus->dirty->len; i++)
    {
      Topic *t = g_ptr_array_index (bus->dirty, i);

      for (guint j = 0; j < t->entries->len;)
        {
          SubEntry *entry = g_ptr_array_index (t->entries, j);
          if (entry->dead)
            {
              g_ptr_array_remove_index (t->entries, j);
              g_free (entry);
            }
          else
            j++;
        }
      t->dirty = FALSE;
      if (t->live == 0)
        topic_drop (bus, t);
    }
  g_ptr_array_set_size (bus->dirty, 0);
}

static void
entry_remove (EnsBus *bus, SubEntry *entry)
{
  Topic *t = entry->topic;

  entry->dead = TRUE;
  if (--t->live == 0)
    interest_edge (bus, t->pattern, FALSE);
  if (bus->publishing)
    {
      if (!t->dirty)
        {
          t->dirty = TRUE;
          g_ptr_array_add (bus->dirty, t);
        }
      return;
    }
  g_ptr_array_remove (t->entries, entry);
  g_free (entry);
  if (t->live == 0 && !t->dirty)
    topic_drop (bus, t);
}

/* ------------------------------------------------------------------ subscribers */

EnsSubscriber *
ens_subscriber_new (EnsSubscriberFunc func, gpointer data, GDestroyNotify notify)
{
  EnsSubscriber *sub = g_new0 (EnsSubscriber, 1);

  sub->func = func;
  sub->data = data;
  sub->notify = notify;
  sub->entries = g_ptr_array_new ();
  return sub;
}

/* (transfer none) the live entry of @sub for @pattern, or NULL: found
 * through the Topic, so a subscriber with many patterns costs no scan. */
static SubEntry *
entry_find (EnsBus *bus, EnsSubscriber *sub, const char *pattern)
{
  Topic *t = g_hash_table_lookup (bus->topics, pattern);

  for (guint i = 0; t && i < t->entries->len; i++)
    {
      SubEntry *entry = g_ptr_array_index (t->entries, i);
      if (!entry->dead && entry->sub == sub)
        return entry;
    }
  return NULL;
}

gboolean
ens_bus_subscribe (EnsBus *bus, EnsSubscriber *sub, const char *pattern)
{
  SubEntry *entry;
  Topic *t;

  if (entry_find (bus, sub, pattern))
    return FALSE;
  t = topic_get (bus, pattern);
  entry = g_new0 (SubEntry, 1);
  entry->sub = sub;
  entry->topic = t;
  g_ptr_array_add (t->entries, entry);
  g_ptr_array_add (sub->entries, entry);
  if (t->live++ == 0)
    interest_edge (bus, t->pattern, TRUE);
  return TRUE;
}

gboolean
ens_bus_unsubscribe (EnsBus *bus, EnsSubscriber *sub, const char *pattern)
{
  SubEntry *entry = entry_find (bus, sub, pattern);

  if (entry == NULL)
    return FALSE;
  g_ptr_array_remove (sub->entries, entry); /* keeps the order patterns were added in */
  entry_remove (bus, entry);
  return TRUE;
}

guint
ens_subscriber_count (EnsSubscriber *sub)
{
  return sub->entries->len;
}

GPtrArray *
ens_subscriber_patterns (EnsSubscriber *sub)
{
  if (sub->patterns_view == NULL)
    sub->patterns_view = g_ptr_array_new ();
  g_ptr_array_set_size (sub->patterns_view, 0);
  for (guint i = 0; i < sub->entries->len; i++)
    g_ptr_array_add (sub->patterns_view, ((SubEntry *) g_ptr_array_index (sub->entries, i))->topic->pattern);
  return sub->patterns_view;
}

void
ens_subscriber_free (EnsBus *bus, EnsSubscriber *sub)
{
  if (sub == NULL)
    return;
  /* Its entries die first: a publish running now skips them, and never
   * reaches @sub once it is freed below. */
  for (guint i = 0; i < sub->entries->len; i++)
    entry_remove (bus, g_ptr_array_index (sub->entries, i));
  g_ptr_array_unref (sub->entries);
  if (sub->patterns_view)
    g_ptr_array_unref (sub->patterns_view);
  if (sub->notify)
    sub->notify (sub->data);
  g_free (sub);
}

/* ------------------------------------------------------------------ publishing */

/* Takes the live subscribers of @t not picked yet for this event. */
static void
pick (GPtrArray *picked, Topic *t, guint64 mark)
{
  for (guint i = 0; i < t->entries->len; i++)
    {
      SubEntry *entry = g_ptr_array_index (t->entries, i);
      if (!entry->dead && entry->sub->mark != mark)
        {
          entry->sub->mark = mark;
          g_ptr_array_add (picked, entry);
        }
    }
}

static void
deliver (EnsBus *bus, EnsSubscriber *sub, EnsMessage *event, guint *n)
{
  bus->delivered++;
  (*n)++;
  sub->func (event, sub->data);
}

guint
ens_bus_publish (EnsBus *bus, EnsMessage *event, EnsSubscriber *target)
{
  char stack_key[256];
  g_autofree char *heap_key = NULL;
  const char *key = event->topic;
  guint n = 0; /* this event's deliveries, not those of events its subscribers publish */
  guint64 mark = ++bus->picks;
  guint depth = bus->publishing++;
  GPtrArray *picked;
  Topic *t;

  ens_message_set_seq (event, ++bus->seq);
  if (!ens_message_is_remote (event))
    bus->published++;
  if (depth == bus->picked->len)
    g_ptr_array_add (bus->picked, g_ptr_array_new ());
  picked = g_ptr_array_index (bus->picked, depth);

  if (event->to)
    {
      if (target)
        target->mark = mark;
      gsize tl = strlen (event->topic), ol = strlen (event->to);

      if (tl + ol + 2 <= sizeof stack_key)
        {
          /* TOPIC:CLIENT, without printf */
          memcpy (stack_key, event->topic, tl);
          stack_key[tl] = ':';
          memcpy (stack_key + tl + 1, event->to, ol + 1);
          key = stack_key;
        }
      else
        key = heap_key = g_strconcat (event->topic, ":", event->to, NULL);
    }

  /* Pick first (no callback runs), deliver after. */
  t = g_hash_table_lookup (bus->topics, key);
  if (t && !t->glob)
    pick (picked, t, mark);
  for (guint i = 0; i < bus->globs->len; i++)
    {
      t = g_ptr_array_index (bus->globs, i);
      /* A targeted event is private: only patterns that name a target
       * (contain ':', such as "COMPLETION_RESULT:*") observe it, not "*". */
      if (t->live > 0 && (event->to == NULL || t->has_colon) && ens_glob_match (t->pattern, key))
        pick (picked, t, mark);
    }

  if (event->to && target)
    deliver (bus, target, event, &n);
  for (guint i = 0; i < picked->len; i++)
    {
      SubEntry *entry = g_ptr_array_index (picked, i);
      if (!entry->dead)
        deliver (bus, entry->sub, event, &n);
    }
  g_ptr_array_set_size (picked, 0);

  if (--bus->publishing == 0 && bus->dirty->len > 0)
    sweep (bus);
  if (!ens_message_is_remote (event))
    for (guint i = 0; i < bus->taps->len; i++)
      {
        Tap *tap = g_ptr_array_index (bus->taps, i);
        tap->func (event, tap->data);
      }
  return n;
}

guint64
ens_bus_last_seq (EnsBus *bus)
{
  return bus->seq;
}

guint64
ens_bus_published (EnsBus *bus)
{
  return bus->published;
}

guint64
ens_bus_delivered (EnsBus *bus)
{
  return bus->delivered;
}
