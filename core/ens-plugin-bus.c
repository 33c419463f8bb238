/* ens-plugin-bus.c — what each plugin holds on the bus, by owner. */
#include "ens-plugin-bus.h"
#include "ens-message-private.h"
#include "ens-plugin-private.h"

struct _EnsPluginBus {
  EnsBus *bus;
  EnsEvents *events;
  GHashTable *subs;    /* id -> PluginSub */
  GHashTable *taps;    /* tap id -> EnsPlugin* */
  GHashTable *watches; /* watch id -> EnsPlugin* */
  guint next_sub;
};

typedef struct {
  guint id;
  EnsPlugin *plugin;
  EnsSubscriber *subscriber;
  EnsEventFunc func;
  gpointer user_data;
  GDestroyNotify notify;
  gboolean lazy_data;
} PluginSub;

typedef struct {
  EnsEventFunc func;
  gpointer user_data;
  GDestroyNotify notify;
  gboolean lazy_data;
} PluginTap;

EnsPluginBus *
ens_plugin_bus_new (EnsBus *bus, EnsEvents *events)
{
  EnsPluginBus *pbus = g_new0 (EnsPluginBus, 1);

  pbus->bus = bus;
  pbus->events = events;
  pbus->subs = g_hash_table_new (g_direct_hash, g_direct_equal);
  pbus->taps = g_hash_table_new (g_direct_hash, g_direct_equal);
  pbus->watches = g_hash_table_new (g_direct_hash, g_direct_equal);
  return pbus;
}

void
ens_plugin_bus_free (EnsPluginBus *pbus)
{
  if (pbus == NULL)
    return;
  g_hash_table_unref (pbus->subs);
  g_hash_table_unref (pbus->taps);
  g_hash_table_unref (pbus->watches);
  g_free (pbus);
}

void
ens_plugin_bus_publish (EnsPluginBus *pbus, EnsPlugin *self, const char *topic, JsonNode *data, const char *to)
{
  ens_events_publish (pbus->events, ens_plugin_get_id (self), topic, data, to);
}

/* ------------------------------------------------------------------ subscriptions */

static void
plugin_sub_event (EnsMessage *event, gpointer data)
{
  PluginSub *ps = data;

  if (!ps->lazy_data)
    ens_message_get_data (event); /* the plugin may read event->data */
  ps->func (event, ps->user_data);
}

static void
plugin_sub_free (gpointer data)
{
  PluginSub *ps = data;

  if (ps->notify)
    ps->notify (ps->user_data);
  g_free (ps);
}

guint
ens_plugin_bus_subscribe (EnsPluginBus *pbus, EnsPlugin *self, const char *pattern, EnsEventFunc func,
                          gpointer user_data, GDestroyNotify notify)
{
  PluginSub *ps = g_new0 (PluginSub, 1);

  ps->id = ++pbus->next_sub;
  ps->plugin = self;
  ps->func = func;
  ps->user_data = user_data;
  ps->notify = notify;
  ps->lazy_data = ens_plugin_reads_data_lazily (self);
  ps->subscriber = ens_subscriber_new (plugin_sub_event, ps, plugin_sub_free);
  ens_bus_subscribe (pbus->bus, ps->subscriber, pattern);
  g_hash_table_insert (pbus->subs, GUINT_TO_POINTER (ps->id), ps);
  return ps->id;
}

void
ens_plugin_bus_unsubscribe (EnsPluginBus *pbus, EnsPlugin *self, guint id)
{
  PluginSub *ps = g_hash_table_lookup (pbus->subs, GUINT_TO_POINTER (id));

  if (ps == NULL || ps->plugin != self)
    return;
  g_hash_table_remove (pbus->subs, GUINT_TO_POINTER (id));
  ens_subscriber_free (pbus->bus, ps->subscriber); /* frees ps */
}

/* ------------------------------------------------------------------ taps */

static void
plugin_tap_event (EnsMessage *event, gpointer data)
{
  PluginTap *pt = data;

  if (!pt->lazy_data)
    ens_message_get_data (event);
  pt->func (event, pt->user_data);
}

static void
plugin_tap_free (gpointer data)
{
  PluginTap *pt = data;

  if (pt->notify)
    pt->notify (pt->user_data);
  g_free (pt);
}

guint
ens_plugin_bus_tap (EnsPluginBus *pbus, EnsPlugin *self, EnsEventFunc func, gpointer user_data,
                    GDestroyNotify notify)
{
  PluginTap *pt = g_new0 (PluginTap, 1);
  guint id;

  pt->func = func;
  pt->user_data = user_data;
  pt->notify = notify;
  pt->lazy_data = ens_plugin_reads_data_lazily (self);
  id = ens_bus_tap (pbus->bus, plugin_tap_event, pt, plugin_tap_free);
  g_hash_table_insert (pbus->taps, GUINT_TO_POINTER (id), self);
  return id;
}

void
ens_plugin_bus_untap (EnsPluginBus *pbus, EnsPlugin *self, guint id)
{
  if (g_hash_table_lookup (pbus->taps, GUINT_TO_POINTER (id)) != self)
    return;
  g_hash_table_remove (pbus->taps, GUINT_TO_POINTER (id));
  ens_bus_untap (pbus->bus, id);
}

/* ------------------------------------------------------------------ interest */

guint
ens_plugin_bus_watch_interest (EnsPluginBus *pbus, EnsPlugin *self, EnsInterestFunc func, gpointer user_data)
{
  guint id = ens_bus_watch_interest (pbus->bus, func, user_data);

  g_hash_table_insert (pbus->watches, GUINT_TO_POINTER (id), self);
  return id;
}

void
ens_plugin_bus_unwatch_interest (EnsPluginBus *pbus, EnsPlugin *self, guint id)
{
  if (g_hash_table_lookup (pbus->watches, GUINT_TO_POINTER (id)) != self)
    return;
  g_hash_table_remove (pbus->watches, GUINT_TO_POINTER (id));
  ens_bus_unwatch_interest (pbus->bus, id);
}

/* ------------------------------------------------------------------ a plugin stopped */

void
ens_plugin_bus_forget_plugin (EnsPluginBus *pbus, EnsPlugin *plugin)
{
  g_autoptr (GPtrArray) subs = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, pbus->taps);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (value == plugin)
      {
        ens_bus_untap (pbus->bus, GPOINTER_TO_UINT (key));
        g_hash_table_iter_remove (&iter);
      }
  g_hash_table_iter_init (&iter, pbus->watches);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (value == plugin)
      {
        ens_bus_unwatch_interest (pbus->bus, GPOINTER_TO_UINT (key));
        g_hash_table_iter_remove (&iter);
      }
  g_hash_table_iter_init (&iter, pbus->subs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((PluginSub *) value)->plugin == plugin)
      g_ptr_array_add (subs, value);
  for (guint i = 0; i < subs->len; i++)
    ens_plugin_bus_unsubscribe (pbus, plugin, ((PluginSub *) g_ptr_array_index (subs, i))->id);
}
