/* ens-bus.c — the event bus.  Exact-topic subscribers are handlers of the
 * detailed signal "event::<topic>", so GObject finds them by quark; glob
 * subscribers live in a pattern index scanned per publish.  A targeted event
 * (to = a client) is keyed "<topic>:<client>" so only observers of that key
 * see it, and its target receives it directly. */
#include "ens-bus.h"
#include "ens-glob.h"
#include "ens-message-private.h"

#include <string.h>

typedef struct {
  EnsSubscriber *sub;
  char *pattern;
  gulong handler_id; /* exact topics: the signal handler */
  gboolean has_colon; /* may observe targeted events */
  gboolean dead;     /* removed while a publish was running */
} SubEntry;

struct _EnsSubscriber {
  EnsSubscriberFunc func;
  gpointer data;
  GDestroyNotify notify;
  guint64 last_seq; /* delivers an event once even when several patterns match */
  GPtrArray *entries;
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
  GPtrArray *taps; /* Tap* */
  guint next_tap;
  GHashTable *interest; /* pattern -> guint*: how many subscribers */
  GPtrArray *watchers;  /* Watcher* */
  guint64 seq;
  guint64 published; /* events of this node */
  guint64 delivered;
  guint publishing; /* depth of nested publishes */
  GPtrArray *patterns; /* SubEntry*, glob subscriptions */
  gboolean patterns_dirty;
};

G_DEFINE_FINAL_TYPE (EnsBus, ens_bus, G_TYPE_OBJECT)

enum { SIGNAL_EVENT, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
tap_free (Tap *tap)
{
  if (tap->notify)
    tap->notify (tap->data);
  g_free (tap);
}

static void
ens_bus_finalize (GObject *object)
{
  EnsBus *bus = ENS_BUS (object);
  g_ptr_array_unref (bus->taps);
  g_ptr_array_unref (bus->patterns);
  g_hash_table_unref (bus->interest);
  g_ptr_array_unref (bus->watchers);
  G_OBJECT_CLASS (ens_bus_parent_class)->finalize (object);
}

static void
ens_bus_class_init (EnsBusClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ens_bus_finalize;
  /* EnsBus::event: an event was published; the detail is its topic (or
   * "<topic>:<client>" for a targeted event).  The argument is the
   * EnsMessage, (transfer none). */
  signals[SIGNAL_EVENT] = g_signal_new ("event", G_TYPE_FROM_CLASS (klass),
                                        G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED,
                                        0, NULL, NULL, g_cclosure_marshal_VOID__POINTER, G_TYPE_NONE, 1,
                                        G_TYPE_POINTER);
  g_signal_set_va_marshaller (signals[SIGNAL_EVENT], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__POINTERv);
}

static void
ens_bus_init (EnsBus *bus)
{
  bus->patterns = g_ptr_array_new ();
  bus->taps = g_ptr_array_new_with_free_func ((GDestroyNotify) tap_free);
  bus->interest = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  bus->watchers = g_ptr_array_new_with_free_func (g_free);
}

/* Counts subscribers per pattern; watchers hear of the first and the last. */
static void
interest_change (EnsBus *bus, const char *pattern, gboolean more)
{
  guint *n = g_hash_table_lookup (bus->interest, pattern);
  gboolean edge = more ? n == NULL : n != NULL && *n == 1;

  if (n == NULL && more)
    {
      n = g_new0 (guint, 1);
      g_hash_table_insert (bus->interest, g_strdup (pattern), n);
    }
  if (n == NULL)
    return;
  if (more)
    (*n)++;
  else if (--(*n) == 0)
    g_hash_table_remove (bus->interest, pattern);
  if (edge)
    for (guint i = 0; i < bus->watchers->len; i++)
      {
        Watcher *w = g_ptr_array_index (bus->watchers, i);
        w->func (pattern, more, w->data);
      }
}

guint
ens_bus_watch_interest (EnsBus *bus, EnsInterestFunc func, gpointer data)
{
  Watcher *w = g_new0 (Watcher, 1);
  GHashTableIter iter;
  gpointer key;

  w->id = ++bus->next_tap;
  w->func = func;
  w->data = data;
  g_ptr_array_add (bus->watchers, w);
  g_hash_table_iter_init (&iter, bus->interest);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    func (key, TRUE, data);
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

EnsBus *
ens_bus_new (void)
{
  return g_object_new (ENS_TYPE_BUS, NULL);
}

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

static void
deliver (EnsBus *bus, EnsSubscriber *sub, EnsMessage *event)
{
  if (sub->last_seq == event->seq)
    return;
  sub->last_seq = event->seq;
  bus->delivered++;
  sub->func (event, sub->data);
}

static void
on_event (EnsBus *bus, EnsMessage *event, gpointer user_data)
{
  SubEntry *entry = user_data;

  if (!entry->dead)
    deliver (bus, entry->sub, event);
}

static void
entry_free (SubEntry *entry)
{
  g_free (entry->pattern);
  g_free (entry);
}

/* The closure owns an exact entry: a handler disconnected during an
 * emission is still invoked-checked after, so the entry must outlive it. */
static void
entry_closure_notify (gpointer data, GClosure *closure)
{
  (void) closure;
  entry_free (data);
}

static void
compact_patterns (EnsBus *bus)
{
  for (guint i = 0; i < bus->patterns->len;)
    {
      SubEntry *entry = g_ptr_array_index (bus->patterns, i);
      if (entry->dead)
        {
          g_ptr_array_remove_index_fast (bus->patterns, i);
          entry_free (entry);
        }
      else
        i++;
    }
  bus->patterns_dirty = FALSE;
}

static void
entry_remove (EnsBus *bus, SubEntry *entry)
{
  interest_change (bus, entry->pattern, FALSE);
  entry->dead = TRUE;
  if (entry->handler_id)
    {
      g_signal_handler_disconnect (bus, entry->handler_id); /* frees entry via the closure */
      return;
    }
  if (bus->publishing)
    bus->patterns_dirty = TRUE;
  else
    compact_patterns (bus);
}

gboolean
ens_bus_subscribe (EnsBus *bus, EnsSubscriber *sub, const char *pattern)
{
  SubEntry *entry;

  for (guint i = 0; i < sub->entries->len; i++)
    if (strcmp (((SubEntry *) g_ptr_array_index (sub->entries, i))->pattern, pattern) == 0)
      return FALSE;

  entry = g_new0 (SubEntry, 1);
  entry->sub = sub;
  entry->pattern = g_strdup (pattern);
  entry->has_colon = strchr (pattern, ':') != NULL;
  if (ens_glob_is_pattern (pattern))
    g_ptr_array_add (bus->patterns, entry);
  else
    entry->handler_id = g_signal_connect_closure_by_id (bus, signals[SIGNAL_EVENT],
                                                        g_quark_from_string (pattern),
                                                        g_cclosure_new (G_CALLBACK (on_event), entry, entry_closure_notify),
                                                        FALSE);
  g_ptr_array_add (sub->entries, entry);
  interest_change (bus, pattern, TRUE);
  return TRUE;
}

gboolean
ens_bus_unsubscribe (EnsBus *bus, EnsSubscriber *sub, const char *pattern)
{
  for (guint i = 0; i < sub->entries->len; i++)
    {
      SubEntry *entry = g_ptr_array_index (sub->entries, i);
      if (strcmp (entry->pattern, pattern) == 0)
        {
          g_ptr_array_remove_index (sub->entries, i);
          entry_remove (bus, entry);
          return TRUE;
        }
    }
  return FALSE;
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
    g_ptr_array_add (sub->patterns_view, ((SubEntry *) g_ptr_array_index (sub->entries, i))->pattern);
  return sub->patterns_view;
}

void
ens_subscriber_free (EnsBus *bus, EnsSubscriber *sub)
{
  if (sub == NULL)
    return;
  for (guint i = 0; i < sub->entries->len; i++)
    entry_remove (bus, g_ptr_array_index (sub->entries, i));
  g_ptr_array_unref (sub->entries);
  if (sub->patterns_view)
    g_ptr_array_unref (sub->patterns_view);
  if (sub->notify)
    sub->notify (sub->data);
  g_free (sub);
}

guint
ens_bus_publish (EnsBus *bus, EnsMessage *event, EnsSubscriber *target)
{
  char stack_key[256];
  g_autofree char *heap_key = NULL;
  const char *key = event->topic;
  guint64 before = bus->delivered;
  GQuark quark;

  ens_message_set_seq (event, ++bus->seq);
  if (!ens_message_is_remote (event))
    bus->published++;
  bus->publishing++;

  if (event->to)
    {
      if (target)
        deliver (bus, target, event);
      if (strlen (event->topic) + strlen (event->to) + 2 <= sizeof stack_key)
        {
          g_snprintf (stack_key, sizeof stack_key, "%s:%s", event->topic, event->to);
          key = stack_key;
        }
      else
        key = heap_key = g_strconcat (event->topic, ":", event->to, NULL);
    }

  /* try_string: a topic nobody subscribed to exactly has no quark, and
   * publishing must not intern every topic a client makes up. */
  quark = g_quark_try_string (key);
  if (quark)
    g_signal_emit (bus, signals[SIGNAL_EVENT], quark, event);

  for (guint i = 0; i < bus->patterns->len; i++)
    {
      SubEntry *entry = g_ptr_array_index (bus->patterns, i);
      /* A targeted event is private: only patterns that name a target
       * (contain ':', such as "COMPLETION_RESULT:*") observe it, not "*". */
      if (!entry->dead && (event->to == NULL || entry->has_colon) && ens_glob_match (entry->pattern, key))
        deliver (bus, entry->sub, event);
    }

  if (--bus->publishing == 0 && bus->patterns_dirty)
    compact_patterns (bus);
  if (!ens_message_is_remote (event))
    for (guint i = 0; i < bus->taps->len; i++)
      {
        Tap *tap = g_ptr_array_index (bus->taps, i);
        tap->func (event, tap->data);
      }
  return (guint) (bus->delivered - before);
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
