/* ens-bus.h — the event bus (ens-bus.c): exact topics and Redis-style glob
 * patterns, one delivery per subscriber, targeted events, taps and interest
 * watches for bridges. */
#pragma once

#include <ensemble/ens-host.h>

G_BEGIN_DECLS

#define ENS_TYPE_BUS (ens_bus_get_type ())
G_DECLARE_FINAL_TYPE (EnsBus, ens_bus, ENS, BUS, GObject)

/* Who receives events: a client or a plugin callback. */
typedef struct _EnsSubscriber EnsSubscriber;
typedef void (*EnsSubscriberFunc) (EnsMessage *event, gpointer data);

EnsBus *ens_bus_new (void);
EnsSubscriber *ens_subscriber_new (EnsSubscriberFunc func, gpointer data, GDestroyNotify notify);
/* Drops every subscription of @sub and frees it. */
void ens_subscriber_free (EnsBus *bus, EnsSubscriber *sub);
/* Returns FALSE if @sub already has @pattern. */
gboolean ens_bus_subscribe (EnsBus *bus, EnsSubscriber *sub, const char *pattern);
gboolean ens_bus_unsubscribe (EnsBus *bus, EnsSubscriber *sub, const char *pattern);
guint ens_subscriber_count (EnsSubscriber *sub);
/* (transfer none) patterns of @sub */
GPtrArray *ens_subscriber_patterns (EnsSubscriber *sub);
/* Assigns the sequence number and delivers @event (transfer none) to every
 * matching subscriber once; @target, when not NULL, also receives it
 * directly (targeted delivery).  Returns the number of deliveries. */
guint ens_bus_publish (EnsBus *bus, EnsMessage *event, EnsSubscriber *target);
guint64 ens_bus_last_seq (EnsBus *bus);
/* Events published on this node (not those from other nodes), and
 * deliveries of every event, since the bus was made. */
guint64 ens_bus_published (EnsBus *bus);
guint64 ens_bus_delivered (EnsBus *bus);
/* Interest: which topics and patterns have subscribers (bridges). */
guint ens_bus_watch_interest (EnsBus *bus, EnsInterestFunc func, gpointer data);
void ens_bus_unwatch_interest (EnsBus *bus, guint id);
/* Taps: see every locally originated event after delivery (bridges). */
guint ens_bus_tap (EnsBus *bus, EnsSubscriberFunc func, gpointer data, GDestroyNotify notify);
void ens_bus_untap (EnsBus *bus, guint id);

G_END_DECLS
