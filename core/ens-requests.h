/* ens-requests.h — requests on their way to an agent (ens-requests.c):
 * forwarded with a deadline, answered when the agent replies, times out or
 * goes away; and answers on their way back to plugins, which always come
 * from the main loop. */
#pragma once

#include "ens-agents.h"
#include "ens-config.h"
#include "ens-counters.h"

G_BEGIN_DECLS

typedef struct _EnsRequests EnsRequests;

EnsRequests *ens_requests_new (EnsAgents *agents, EnsConfig *config, EnsCounters *counters);
void ens_requests_free (EnsRequests *requests);
/* The deadline of a request that names none (request-timeout-ms). */
void ens_requests_set_default_timeout (EnsRequests *requests, guint32 timeout_ms);

/* Forwards @msg (transfer none) to msg->agent.  The requester is a client
 * (@requester) or a plugin (@req_plugin, answered through @func once, from
 * the main loop). */
void ens_requests_forward (EnsRequests *requests, EnsMessage *msg, EnsClient *requester, EnsPlugin *req_plugin,
                           EnsReplyFunc func, gpointer user_data);
/* An external agent's answer from @client: a REPLY or ERROR whose id is the
 * id the agent was given.  Unknown ids are answered UNKNOWN_REQUEST. */
void ens_requests_answer (EnsRequests *requests, EnsClient *client, EnsMessage *answer);
/* Hands @answer (transfer none) to a plugin's @func from the main loop;
 * dropped if the plugin stops first. */
void ens_requests_reply_later (EnsRequests *requests, EnsPlugin *plugin, EnsReplyFunc func, gpointer user_data,
                               EnsMessage *answer);
/* Requests waiting for an agent. */
guint ens_requests_count (EnsRequests *requests);

/* host->respond / host->respond_error: an agent plugin's answer. */
void ens_responder_respond (EnsResponder *responder, JsonNode *data);
void ens_responder_respond_error (EnsResponder *responder, const char *code, const char *message, JsonNode *details);

/* Clients client-closed: nobody waits for its requests any more; those it
 * was serving as an agent are answered AGENT_GONE. */
void ens_requests_client_closed (EnsRequests *requests, EnsClient *client);
/* Loader plugin-stopped: the same for a plugin, and its undelivered answers
 * are dropped. */
void ens_requests_forget_plugin (EnsRequests *requests, EnsPlugin *plugin);

G_END_DECLS
