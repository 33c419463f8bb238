/* ensemblectl: per-agent key/value state — kv get, set, del, list. */
#include "ens-ctl.h"

#include <stdio.h>

/* (transfer full) {agent, key?}; *@params is its object (transfer none). */
static JsonNode *
kv_params (const char *agent, const char *key, JsonObject **params)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  *params = json_object_new ();
  json_node_take_object (node, *params);
  json_object_set_string_member (*params, "agent", agent);
  if (key != NULL)
    json_object_set_string_member (*params, "key", key);
  return node;
}

int
ens_cmd_kv_get (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  JsonObject *params;
  g_autoptr(JsonNode) data = kv_params (ENS_ARG (args, 0), ENS_ARG (args, 1), &params);
  g_autoptr(JsonNode) reply = ens_call_action (ctl, cmd->action, data, &error);
  JsonObject *robj;

  if (reply == NULL)
    return ens_report_error (error);
  robj = ens_json_node_object (reply);
  if (ctl->opts->json)
    ens_print_json (reply, FALSE);
  /* A missing key is a failure for scripts in either mode. */
  if (!ens_json_bool (robj, "found"))
    {
      g_autofree char *msg = g_strdup_printf ("no key '%s' for agent '%s'", ENS_ARG (args, 1), ENS_ARG (args, 0));

      return ens_report ("NOT_FOUND", msg, ENS_EXIT_ERROR);
    }
  if (!ctl->opts->json)
    ens_print_json (json_object_get_member (robj, "value"), TRUE);
  return ENS_EXIT_OK;
}

int
ens_cmd_kv_set (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(GError) parse_error = NULL;
  JsonObject *params;
  g_autoptr(JsonNode) data = kv_params (ENS_ARG (args, 0), ENS_ARG (args, 1), &params);
  g_autoptr(JsonNode) value = NULL;
  g_autoptr(JsonNode) reply = NULL;

  /* `kv set a k hello` should just work: non-JSON is a string. */
  value = ens_json_parse (ENS_ARG (args, 2), &parse_error);
  if (value == NULL)
    {
      value = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (value, ENS_ARG (args, 2));
    }
  json_object_set_member (params, "value", json_node_ref (value));
  reply = ens_call_action (ctl, cmd->action, data, &error);
  if (reply == NULL)
    return ens_report_error (error);
  if (ctl->opts->json)
    ens_print_json (reply, FALSE);
  else
    printf ("Stored key '%s' for agent '%s'\n", ENS_ARG (args, 1), ENS_ARG (args, 0));
  return ENS_EXIT_OK;
}

int
ens_cmd_kv_del (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  JsonObject *params;
  g_autoptr(JsonNode) data = kv_params (ENS_ARG (args, 0), ENS_ARG (args, 1), &params);
  g_autoptr(JsonNode) reply = ens_call_action (ctl, cmd->action, data, &error);

  if (reply == NULL)
    return ens_report_error (error);
  if (ctl->opts->json)
    ens_print_json (reply, FALSE);
  else
    printf (ens_json_bool (ens_json_node_object (reply), "deleted") ? "Deleted key '%s' for agent '%s'\n"
                                                                    : "No key '%s' for agent '%s'\n",
            ENS_ARG (args, 1), ENS_ARG (args, 0));
  return ENS_EXIT_OK;
}

int
ens_cmd_kv_list (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  JsonObject *params;
  g_autoptr(JsonNode) data = kv_params (ENS_ARG (args, 0), NULL, &params);
  g_autoptr(JsonNode) reply = NULL;
  JsonArray *keys;

  if (args->len > 1)
    json_object_set_string_member (params, "prefix", ENS_ARG (args, 1));
  reply = ens_call_action (ctl, cmd->action, data, &error);
  if (reply == NULL)
    return ens_report_error (error);
  if (ctl->opts->json)
    {
      ens_print_json (reply, FALSE);
      return ENS_EXIT_OK;
    }
  keys = ens_json_array (ens_json_node_object (reply), "keys");
  for (guint i = 0; keys != NULL && i < json_array_get_length (keys); i++)
    {
      g_autofree char *key = ens_json_node_text (json_array_get_element (keys, i));

      printf ("%s\n", key);
    }
  return ENS_EXIT_OK;
}
