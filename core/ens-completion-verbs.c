/* ens-completion-verbs.c — the verbs of completions: complete, embed and
 * complete.cancel, on the public face of ens-completion.h. */
#include "ens-completion.h"
#include "ens-json.h"
#include "ens-message-private.h"

#include <string.h>

/* Submits @p for @call: results go to the requester, or to client_id (a
 * client id or agent name, as KSI names it). */
static EnsMessage *
submit_call (EnsCompletions *cs, EnsCall *call, JsonObject *p)
{
  const char *client_id = NULL;
  EnsMessage *answer = NULL;

  if (!ens_call_string (call, "client_id", FALSE, &client_id))
    return ens_call_invalid (call, "client_id", "a client id or agent name");
  if (client_id && call->client && strcmp (client_id, call->client->id) != 0)
    {
      /* Results for someone else (KSI asks on completion.sock, listens on
       * messaging.sock): the asking connection may close at once. */
      ens_completions_submit (cs, call->msg, p, NULL, client_id, NULL, NULL, &answer);
      return answer;
    }
  if (client_id == NULL && call->client)
    client_id = call->client->id;
  ens_completions_submit (cs, call->msg, p, call->client, client_id, NULL, NULL, &answer);
  /* A client's request: it starts once its ack is delivered, without
   * waiting for the main loop to turn. */
  if (call->client)
    {
      call->answered = (void (*) (gpointer)) ens_completions_pump_due;
      call->answered_data = cs;
    }
  return answer;
}

/* complete {prompt | messages, model?, provider?, stream?, max_tokens?,
 * temperature?, task_type?, priority?, max_latency?, token_count?,
 * client_id?}: acknowledged at once; results come as targeted events to the
 * requester, or to client_id. */
static EnsMessage *
verb_complete (EnsCall *call, gpointer data)
{
  if (call->params && json_object_has_member (call->params, "kind"))
    return ens_call_invalid (call, "kind", "absent (embeddings: the embed verb)");
  return submit_call (data, call, call->params);
}

/* embed {input (a string or a list of them), model?, provider?,
 * dimensions?, priority?, max_latency?, timeout_ms?, client_id?}: routed to
 * a backend that makes embeddings, acknowledged at once like complete; the
 * COMPLETION_RESULT's result is {embeddings: [[number...]...] (one per
 * input, in order), model, provider, usage, ...}. */
static EnsMessage *
verb_embed (EnsCall *call, gpointer data)
{
  g_autoptr (JsonNode) copy = NULL;

  if (call->params == NULL)
    return ens_call_invalid (call, "data", "an object with input");
  copy = json_node_copy (call->msg->data);
  json_object_set_string_member (json_node_get_object (copy), "kind", "embeddings");
  return submit_call (data, call, json_node_get_object (copy));
}

static EnsMessage *
verb_cancel (EnsCall *call, gpointer data)
{
  const char *id = ens_json_get_string (call->params, "request_id");
  const char *refused;
  JsonObject *obj;
  g_autoptr (JsonNode) reply = NULL;

  if (id == NULL)
    return ens_call_invalid (call, "request_id", "a string");
  refused = ens_completions_cancel_for (data, id, call->client, ens_call_is_admin (call));
  if (g_strcmp0 (refused, ENS_ERR_NOT_FOUND) == 0)
    return ens_call_error (call, ENS_ERR_NOT_FOUND, "no completion with that request_id is queued or running");
  if (refused)
    return ens_call_error (call, refused, "only the requester may cancel a completion");
  reply = ens_json_object_node (&obj);
  json_object_set_string_member (obj, "request_id", id);
  json_object_set_boolean_member (obj, "cancelled", TRUE);
  return ens_message_new_reply (call->msg, reply);
}

void
ens_completions_add_verbs (EnsCompletions *cs, EnsVerbs *verbs)
{
  ens_verbs_add (verbs, "complete", verb_complete, cs);
  ens_verbs_add (verbs, "embed", verb_embed, cs);
  ens_verbs_add (verbs, "complete.cancel", verb_cancel, cs);
}
