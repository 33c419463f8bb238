/* ens-kv.c — kv.*: per-agent state, scope "agent:<name>" in the state store;
 * values are JSON, stored as their text. */
#include "ens-kv.h"
#include "ens-json.h"
#include "ens-message-private.h"

#include <string.h>

static EnsMessage *
kv_params (EnsCall *call, const char **agent, const char **key, char **scope)
{
  if (!ens_call_string (call, "agent", TRUE, agent) || !ens_name_valid (*agent))
    return ens_call_invalid (call, "agent", "an agent name of 1-64 characters from [A-Za-z0-9._-]");
  if (key && (!ens_call_string (call, "key", TRUE, key) || strlen (*key) > 1024))
    return ens_call_invalid (call, "key", "a non-empty string of at most 1024 bytes");
  *scope = g_strconcat ("agent:", *agent, NULL);
  return NULL;
}

static EnsMessage *
state_error (EnsCall *call, GError *error)
{
  g_warning ("state store: %s", error->message);
  return ens_call_error (call, ENS_ERR_STATE, error->message);
}

/* ensemble.kv.<agent> {agent, key, op}: a key changed. */
static void
changed (EnsKv *kv, const char *agent, const char *key, const char *op)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);
  g_autofree char *topic = g_strconcat ("ensemble.kv.", agent, NULL);

  json_object_set_string_member (obj, "agent", agent);
  json_object_set_string_member (obj, "key", key);
  json_object_set_string_member (obj, "op", op);
  ens_events_publish (kv->events, "ensembled", topic, data, NULL);
}

static EnsMessage *
verb_kv (EnsCall *call, gpointer user_data)
{
  EnsKv *kv = user_data;
  EnsState *state = kv->state;
  const char *action = call->msg->action + 3; /* after "kv." */
  const char *agent, *key = NULL;
  g_autofree char *scope = NULL;
  g_autoptr (GError) error = NULL;
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);
  EnsMessage *err = kv_params (call, &agent, strcmp (action, "list") == 0 ? NULL : &key, &scope);

  if (err)
    return err;
  json_object_set_string_member (obj, "agent", agent);
  if (key)
    json_object_set_string_member (obj, "key", key);

  if (strcmp (action, "set") == 0)
    {
      JsonNode *value = json_object_get_member (call->params, "value");
      g_autofree char *text = NULL;

      if (value == NULL)
        return ens_call_invalid (call, "value", "present (any JSON value)");
      text = ens_json_to_string (value);
      if (!ens_state_set (state, scope, key, text, &error))
        return state_error (call, error);
      json_object_set_boolean_member (obj, "stored", TRUE);
      changed (kv, agent, key, "set");
    }
  else if (strcmp (action, "get") == 0)
    {
      g_autofree char *text = ens_state_get (state, scope, key, &error);
      g_autoptr (JsonNode) value = NULL;

      if (error)
        return state_error (call, error);
      if (text)
        value = json_from_string (text, NULL);
      json_object_set_member (obj, "value", value ? json_node_ref (value) : json_node_new (JSON_NODE_NULL));
      json_object_set_boolean_member (obj, "found", text != NULL);
    }
  else if (strcmp (action, "delete") == 0)
    {
      gboolean existed = FALSE;
      if (!ens_state_delete (state, scope, key, &existed, &error))
        return state_error (call, error);
      json_object_set_boolean_member (obj, "deleted", existed);
      if (existed)
        changed (kv, agent, key, "delete");
    }
  else /* list */
    {
      const char *prefix;
      g_autoptr (GPtrArray) keys = NULL;

      if (!ens_call_string (call, "prefix", FALSE, &prefix) &&
          !(ens_json_get_string (call->params, "prefix") && !*ens_json_get_string (call->params, "prefix")))
        return ens_call_invalid (call, "prefix", "a string");
      keys = ens_state_list (state, scope, prefix, 10000, &error);
      if (keys == NULL)
        return state_error (call, error);
      json_object_set_member (obj, "keys", ens_json_strv_node ((const char *const *) keys->pdata, keys->len));
    }
  return ens_message_new_reply (call->msg, data);
}

void
ens_kv_add_verbs (EnsVerbs *verbs, EnsKv *kv)
{
  ens_verbs_add (verbs, "kv.set", verb_kv, kv);
  ens_verbs_add (verbs, "kv.get", verb_kv, kv);
  ens_verbs_add (verbs, "kv.delete", verb_kv, kv);
  ens_verbs_add (verbs, "kv.list", verb_kv, kv);
}
