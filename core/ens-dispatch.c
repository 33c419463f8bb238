/* ens-dispatch.c — what a message does.  Every transport hands its
 * connections' messages here (through host->client_submit), plugins their
 * requests (host->request).  Which verbs exist, and what waits for an
 * agent, belong to ens-verbs.c and ens-requests.c. */
#include "ens-dispatch.h"
#include "ens-message-private.h"

struct _EnsDispatch {
  EnsRequests *requests;
  EnsVerbs *verbs;
  EnsCounters *counters;
};

EnsDispatch *
ens_dispatch_new (EnsRequests *requests, EnsVerbs *verbs, EnsCounters *counters)
{
  EnsDispatch *dispatch = g_new0 (EnsDispatch, 1);

  dispatch->requests = requests;
  dispatch->verbs = verbs;
  dispatch->counters = counters;
  return dispatch;
}

void
ens_dispatch_free (EnsDispatch *dispatch)
{
  g_free (dispatch);
}

/* Whether debug lines of the core are shown, asked once: the request path
 * does not pay for the environment lookup of every g_debug(). */
static gboolean
ens_dispatch_debug (void)
{
  static int enabled = -1;

  if (enabled < 0)
    enabled = !g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN);
  return enabled;
}

void
ens_dispatch_client_submit (EnsDispatch *dispatch, EnsClient *client, EnsMessage *msg)
{
  EnsCall call = { .client = client, .msg = msg };
  g_autoptr (EnsMessage) answer = NULL;

  client->active = TRUE;
  if (ens_message_is_bounce (msg))
    {
      dispatch->counters->errors++;
      ens_client_deliver (client, msg);
      return;
    }
  if (msg->kind == ENS_MESSAGE_REPLY || msg->kind == ENS_MESSAGE_ERROR)
    {
      ens_requests_answer (dispatch->requests, client, msg);
      return;
    }
  dispatch->counters->requests++;
  if (G_UNLIKELY (ens_dispatch_debug ()))
    g_debug ("request %s: %s%s%s from %s", msg->id ? msg->id : "(no id)", msg->agent ? msg->agent : "",
             msg->agent ? "." : "", msg->action ? msg->action : "?", client->id);
  /* Stamp the sender before anything keeps the message: replies and
   * forwarded requests name it. */
  if (g_strcmp0 (msg->from, client->id) != 0)
    ens_message_set_from (msg, client->id);
  if (msg->agent)
    {
      ens_requests_forward (dispatch->requests, msg, client, NULL, NULL, NULL);
      return;
    }
  answer = ens_verbs_run (dispatch->verbs, &call);
  if (answer->kind == ENS_MESSAGE_ERROR)
    dispatch->counters->errors++;
  ens_client_deliver (client, answer);
  if (call.answered)
    call.answered (call.answered_data);
}

void
ens_dispatch_plugin_request (EnsDispatch *dispatch, EnsPlugin *self, const char *agent, const char *action,
                             JsonNode *data, guint32 timeout_ms, EnsReplyFunc func, gpointer user_data)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  g_autoptr (EnsMessage) msg = NULL;

  init.action = action;
  init.agent = agent;
  init.from = ens_plugin_get_id (self);
  init.data = data;
  init.timeout_ms = timeout_ms;
  msg = ens_message_new (&init);
  if (agent)
    ens_requests_forward (dispatch->requests, msg, NULL, self, func, user_data);
  else
    {
      EnsCall call = { .plugin = self, .msg = msg };
      g_autoptr (EnsMessage) answer = ens_verbs_run (dispatch->verbs, &call);
      ens_requests_reply_later (dispatch->requests, self, func, user_data, answer);
    }
}
