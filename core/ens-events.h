/* ens-events.h — events published by the daemon and its connections
 * (ens-events.c): targeted delivery (an event "to" a client id or an
 * agent's name reaches only that connection), and the subscribe,
 * unsubscribe and publish verbs. */
#pragma once

#include "ens-agents.h"
#include "ens-config.h"

G_BEGIN_DECLS

typedef struct _EnsEvents EnsEvents;

EnsEvents *ens_events_new (EnsBus *bus, EnsClients *clients, EnsAgents *agents, EnsConfig *config);
void ens_events_free (EnsEvents *events);
/* subscribe, unsubscribe, publish, bus.stats */
void ens_events_add_verbs (EnsEvents *events, EnsVerbs *verbs);
/* Publishes an event from @from; @data (transfer none) may be NULL; @to,
 * when not NULL, resolves like publish's.  Returns the deliveries. */
guint ens_events_publish (EnsEvents *events, const char *from, const char *topic, JsonNode *data, const char *to);
/* The same with the data as JSON text the core wrote (one value, no line
 * break), copied; it is parsed only for those who read it as a tree. */
guint ens_events_publish_text (EnsEvents *events, const char *from, const char *topic, const char *data_text,
                               gsize len, const char *to);
/* An event another node published (host->publish_remote); taps do not see it. */
void ens_events_publish_remote (EnsEvents *events, const EnsMessageInit *init);

G_END_DECLS
