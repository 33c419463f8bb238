/* ens-dispatch.h — where a message from a connection or a plugin goes
 * (ens-dispatch.c): a bounce straight back, an agent's answer to the request
 * it answers, a request for an agent to that agent, anything else to its
 * verb. */
#pragma once

#include "ens-requests.h"
#include "ens-verbs.h"

G_BEGIN_DECLS

typedef struct _EnsDispatch EnsDispatch;

EnsDispatch *ens_dispatch_new (EnsRequests *requests, EnsVerbs *verbs, EnsCounters *counters);
void ens_dispatch_free (EnsDispatch *dispatch);
/* host->client_submit: @msg (transfer none) from @client; every REQUEST and
 * every bounce is answered exactly once through the client's sink. */
void ens_dispatch_client_submit (EnsDispatch *dispatch, EnsClient *client, EnsMessage *msg);
/* host->request: @func is called exactly once, from the main loop. */
void ens_dispatch_plugin_request (EnsDispatch *dispatch, EnsPlugin *self, const char *agent, const char *action,
                                  JsonNode *data, guint32 timeout_ms, EnsReplyFunc func, gpointer user_data);

G_END_DECLS
