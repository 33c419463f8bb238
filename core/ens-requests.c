/* ens-requests.c — requests for agents.  Each waits in a table under an id
 * of ours (so two requesters that used the same id cannot be confused) with
 * a deadline; the answer, a timeout or the agent going away finishes it.
 * For an agent plugin the pending request is also the EnsResponder, which
 * must outlive a timeout until the plugin answers. */
#include "ens-requests.h"
#include "ens-message-private.h"
#include "ens-json.h"

typedef struct {
  EnsRequests *owner;
  char *qid;
  EnsMessage *request;  /* as the requester sent it */
  EnsClient *requester; /* NULL once gone, or for a plugin requester */
  EnsReplyFunc func;    /* plugin requester */
  gpointer user_data;
  EnsPlugin *requesting_plugin;
  char *agent;
  EnsClient *agent_client;
  EnsPlugin *agent_plugin;
  guint timeout_id;
  gboolean finished; /* answered or timed out; a plugin responder still holds it */
} EnsPending;

typedef struct {
  EnsRequests *owner;
  EnsPlugin *plugin;
  EnsReplyFunc func;
  gpointer user_data;
  EnsMessage *answer;
  guint source_id;
} DeferredReply;

struct _EnsRequests {
  EnsAgents *agents;
  EnsConfig *config;
  EnsCounters *counters;
  guint32 default_timeout_ms;
  guint64 next_request;
  GHashTable *pending; /* qid -> EnsPending */
  /* Requests already answered (timed out) whose agent plugin still holds
   * the responder: freed when it answers, or when it stops. */
  GHashTable *held_responders;
  /* Answers on their way to plugins: dropped if the plugin stops first. */
  GHashTable *deferred_replies;
};

static void
pending_free (EnsPending *p)
{
  if (p->timeout_id)
    g_source_remove (p->timeout_id);
  ens_message_unref (p->request);
  g_free (p->agent);
  g_free (p->qid);
  g_free (p);
}

static void
deferred_reply_free (DeferredReply *dr)
{
  if (dr->source_id)
    g_source_remove (dr->source_id);
  ens_message_unref (dr->answer);
  g_free (dr);
}

EnsRequests *
ens_requests_new (EnsAgents *agents, EnsConfig *config, EnsCounters *counters)
{
  EnsRequests *requests = g_new0 (EnsRequests, 1);

  requests->agents = agents;
  requests->config = config;
  requests->counters = counters;
  requests->default_timeout_ms = ens_config_get_uint (config, "request-timeout-ms");
  requests->pending = g_hash_table_new (g_str_hash, g_str_equal);
  requests->held_responders = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) pending_free,
                                                     NULL);
  requests->deferred_replies = g_hash_table_new_full (g_direct_hash, g_direct_equal,
                                                      (GDestroyNotify) deferred_reply_free, NULL);
  return requests;
}

void
ens_requests_free (EnsRequests *requests)
{
  GHashTableIter iter;
  gpointer value;

  if (requests == NULL)
    return;
  g_hash_table_iter_init (&iter, requests->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      g_hash_table_iter_steal (&iter);
      pending_free (value);
    }
  g_hash_table_unref (requests->pending);
  g_hash_table_unref (requests->held_responders);
  g_hash_table_unref (requests->deferred_replies);
  g_free (requests);
}

void
ens_requests_set_default_timeout (EnsRequests *requests, guint32 timeout_ms)
{
  requests->default_timeout_ms = timeout_ms;
}

guint
ens_requests_count (EnsRequests *requests)
{
  return g_hash_table_size (requests->pending);
}

/* ------------------------------------------------------------------ answers to plugins */

static gboolean
deferred_reply_cb (gpointer data)
{
  DeferredReply *dr = data;

  dr->source_id = 0;
  g_hash_table_steal (dr->owner->deferred_replies, dr);
  dr->func (dr->answer, dr->user_data);
  deferred_reply_free (dr);
  return G_SOURCE_REMOVE;
}

void
ens_requests_reply_later (EnsRequests *requests, EnsPlugin *plugin, EnsReplyFunc func, gpointer user_data,
                          EnsMessage *answer)
{
  DeferredReply *dr = g_new0 (DeferredReply, 1);

  dr->owner = requests;
  dr->plugin = plugin;
  dr->func = func;
  dr->user_data = user_data;
  dr->answer = ens_message_ref (answer);
  dr->source_id = g_idle_add_full (G_PRIORITY_DEFAULT, deferred_reply_cb, dr, NULL);
  g_hash_table_add (requests->deferred_replies, dr);
}

/* ------------------------------------------------------------------ pending */

static void
pending_finish (EnsRequests *requests, EnsPending *p, EnsMessage *answer)
{
  if (answer->kind == ENS_MESSAGE_ERROR)
    requests->counters->errors++;
  if (p->requester)
    {
      p->requester->pending--;
      p->requester->holds--;
      ens_client_deliver (p->requester, answer);
    }
  else if (p->func)
    ens_requests_reply_later (requests, p->requesting_plugin, p->func, p->user_data, answer);

  p->finished = TRUE;
  if (p->timeout_id)
    {
      g_source_remove (p->timeout_id);
      p->timeout_id = 0;
    }
  /* An agent plugin still holds the responder: freed when it answers. */
  g_hash_table_steal (requests->pending, p->qid);
  if (p->agent_plugin == NULL)
    pending_free (p);
  else
    g_hash_table_add (requests->held_responders, p);
}

static gboolean
pending_timeout_cb (gpointer data)
{
  EnsPending *p = data;
  EnsRequests *requests = p->owner;
  g_autofree char *text = NULL;
  g_autoptr (EnsMessage) err = NULL;

  p->timeout_id = 0;
  requests->counters->agent_timeouts++;
  text = g_strdup_printf ("agent %s did not answer %s within %u ms", p->agent, p->request->action,
                          p->request->timeout_ms ? p->request->timeout_ms : requests->default_timeout_ms);
  err = ens_message_new_error (p->request, ENS_ERR_TIMEOUT, text, NULL);
  pending_finish (requests, p, err);
  return G_SOURCE_REMOVE;
}

/* An answer made here, before anything waits. */
static void
answer_now (EnsRequests *requests, EnsClient *requester, EnsPlugin *req_plugin, EnsReplyFunc func,
            gpointer user_data, EnsMessage *err)
{
  requests->counters->errors++;
  if (requester)
    ens_client_deliver (requester, err);
  else
    ens_requests_reply_later (requests, req_plugin, func, user_data, err);
}

void
ens_requests_forward (EnsRequests *requests, EnsMessage *msg, EnsClient *requester, EnsPlugin *req_plugin,
                      EnsReplyFunc func, gpointer user_data)
{
  EnsAgent *agent = ens_agents_lookup (requests->agents, msg->agent);
  EnsPending *p;
  guint32 timeout_ms = msg->timeout_ms ? msg->timeout_ms : requests->default_timeout_ms;

  requests->counters->agent_requests++;
  if (agent == NULL)
    {
      g_autofree char *text = g_strdup_printf ("no agent named %s is registered", msg->agent);
      g_autoptr (JsonNode) details = NULL;
      g_autoptr (EnsMessage) err = NULL;
      JsonObject *obj;

      details = ens_json_object_node (&obj);
      json_object_set_string_member (obj, "agent", msg->agent);
      err = ens_message_new_error (msg, ENS_ERR_AGENT_NOT_FOUND, text, details);
      answer_now (requests, requester, req_plugin, func, user_data, err);
      return;
    }

  if (agent->client == NULL && agent->plugin == NULL)
    {
      g_autofree char *text = g_strdup_printf ("agent %s is registered but not connected", msg->agent);
      g_autoptr (EnsMessage) err = ens_message_new_error (msg, ENS_ERR_AGENT_NOT_CONNECTED, text, NULL);
      answer_now (requests, requester, req_plugin, func, user_data, err);
      return;
    }

  {
    /* The action's input schema, checked before the agent sees anything. */
    g_autofree char *field = NULL, *expected = NULL;
    if (!ens_agent_tools_check (agent->actions, msg->action, msg->data, &field, &expected))
      {
        g_autoptr (EnsMessage) err = ens_message_new_invalid (msg, field, expected);
        answer_now (requests, requester, req_plugin, func, user_data, err);
        return;
      }
  }

  if (requester && requester->pending >= ens_config_get_uint (requests->config, "max-pending-requests"))
    {
      g_autoptr (EnsMessage) err = ens_message_new_error (
        msg, ENS_ERR_OVERLOADED, "too many requests of this connection are waiting for agents (max-pending-requests)",
        NULL);
      requests->counters->errors++;
      ens_client_deliver (requester, err);
      return;
    }

  p = g_new0 (EnsPending, 1);
  p->owner = requests;
  p->qid = g_strdup_printf ("q%" G_GUINT64_FORMAT, ++requests->next_request);
  p->request = ens_message_ref (msg);
  p->requester = requester;
  if (requester)
    {
      requester->pending++;
      requester->holds++;
    }
  p->requesting_plugin = req_plugin;
  p->func = func;
  p->user_data = user_data;
  p->agent = g_strdup (agent->name);
  p->agent_client = agent->client;
  p->agent_plugin = agent->plugin;
  p->timeout_id = g_timeout_add (timeout_ms, pending_timeout_cb, p);
  g_hash_table_insert (requests->pending, p->qid, p);

  if (agent->client)
    {
      /* The agent sees the request under our id, so answers from two
       * requesters that used the same id cannot be confused. */
      EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
      g_autoptr (EnsMessage) fwd = NULL;

      init.id = p->qid;
      init.action = msg->action;
      init.agent = agent->name;
      init.from = msg->from;
      init.data = msg->data;
      init.timeout_ms = timeout_ms;
      init.received_us = msg->received_us;
      fwd = ens_message_new (&init);
      ens_client_deliver (agent->client, fwd);
    }
  else if (agent->handle)
    agent->handle (agent->handle_data, msg, (EnsResponder *) p);
  else
    ((const EnsAgentVTable *) ens_plugin_get_desc (agent->plugin)->vtable)
      ->handle (ens_plugin_get_instance (agent->plugin), msg, (EnsResponder *) p);
}

void
ens_requests_answer (EnsRequests *requests, EnsClient *client, EnsMessage *answer)
{
  EnsPending *p = g_hash_table_lookup (requests->pending, answer->id);
  g_autoptr (EnsMessage) reply = NULL;

  if (p == NULL || p->agent_client != client)
    {
      g_autofree char *text = g_strdup_printf ("no request %s is waiting for an answer from this connection "
                                               "(answered already, timed out, or never sent)", answer->id);
      g_autoptr (EnsMessage) err = ens_message_new_error (answer, ENS_ERR_UNKNOWN_REQUEST, text, NULL);
      requests->counters->errors++;
      ens_client_deliver (client, err);
      return;
    }
  if (answer->kind == ENS_MESSAGE_ERROR)
    reply = ens_message_new_error (p->request, answer->error_code, answer->error_message, answer->error_details);
  else
    reply = ens_message_new_reply (p->request, answer->data);
  pending_finish (requests, p, reply);
}

static void
responder_answer (EnsResponder *responder, EnsMessage *reply)
{
  EnsPending *p = (EnsPending *) responder;
  EnsRequests *requests = p->owner;

  if (!p->finished)
    pending_finish (requests, p, reply);
  g_hash_table_steal (requests->held_responders, p);
  pending_free (p);
}

void
ens_responder_respond (EnsResponder *responder, JsonNode *data)
{
  EnsPending *p = (EnsPending *) responder;
  g_autoptr (EnsMessage) reply = ens_message_new_reply (p->request, data);

  responder_answer (responder, reply);
}

void
ens_responder_respond_error (EnsResponder *responder, const char *code, const char *message, JsonNode *details)
{
  EnsPending *p = (EnsPending *) responder;
  g_autoptr (EnsMessage) err = ens_message_new_error (p->request, code ? code : ENS_ERR_INTERNAL,
                                                      message ? message : "the agent reported an error", details);

  responder_answer (responder, err);
}

/* ------------------------------------------------------------------ owners gone */

void
ens_requests_client_closed (EnsRequests *requests, EnsClient *client)
{
  GHashTableIter iter;
  gpointer value;
  g_autoptr (GPtrArray) orphaned = g_ptr_array_new ();

  /* Requests it asked: nobody to answer any more.  Requests it was serving
   * as an agent: their requesters get AGENT_GONE now, not a timeout later. */
  g_hash_table_iter_init (&iter, requests->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EnsPending *p = value;
      if (p->requester == client)
        {
          p->requester = NULL;
          client->pending--;
          client->holds--;
        }
      if (p->agent_client == client)
        g_ptr_array_add (orphaned, p);
    }
  for (guint i = 0; i < orphaned->len; i++)
    {
      EnsPending *p = g_ptr_array_index (orphaned, i);
      g_autofree char *text = g_strdup_printf ("agent %s disconnected before answering", p->agent);
      g_autoptr (EnsMessage) err = ens_message_new_error (p->request, ENS_ERR_AGENT_GONE, text, NULL);
      pending_finish (requests, p, err);
    }
}

void
ens_requests_forget_plugin (EnsRequests *requests, EnsPlugin *plugin)
{
  GHashTableIter iter;
  gpointer value;
  g_autoptr (GPtrArray) served = g_ptr_array_new ();

  g_hash_table_iter_init (&iter, requests->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EnsPending *p = value;
      if (p->requesting_plugin == plugin)
        p->func = NULL;
      if (p->agent_plugin == plugin)
        g_ptr_array_add (served, p);
    }
  for (guint i = 0; i < served->len; i++)
    {
      EnsPending *p = g_ptr_array_index (served, i);
      g_autoptr (EnsMessage) err = ens_message_new_error (p->request, ENS_ERR_AGENT_GONE, "the agent plugin stopped",
                                                          NULL);
      p->agent_plugin = NULL; /* the plugin can no longer answer: free it here */
      pending_finish (requests, p, err);
    }
  g_hash_table_iter_init (&iter, requests->deferred_replies);
  while (g_hash_table_iter_next (&iter, &value, NULL))
    if (((DeferredReply *) value)->plugin == plugin)
      g_hash_table_iter_remove (&iter);
  g_hash_table_iter_init (&iter, requests->held_responders);
  while (g_hash_table_iter_next (&iter, &value, NULL))
    if (((EnsPending *) value)->agent_plugin == plugin)
      {
        g_hash_table_iter_steal (&iter);
        pending_free (value);
      }
}
