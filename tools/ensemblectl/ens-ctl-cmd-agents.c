/* ensemblectl: agents — list them, send one a request. */
#include "ens-ctl.h"

#include <stdio.h>

static void
ens_print_agents (JsonArray *agents)
{
  static const char *const headers[] = { "NAME", "KIND", "ACTIONS", "OWNER" };
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  guint n = agents ? json_array_get_length (agents) : 0;

  if (n == 0)
    {
      printf ("No agents registered.\n");
      return;
    }
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (agents, i);
      JsonObject *agent;
      JsonArray *actions;
      g_autoptr(GString) joined = g_string_new (NULL);
      g_autofree char *name = NULL, *kind = NULL, *owner = NULL;
      GStrv row;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      agent = json_node_get_object (node);
      actions = ens_json_array (agent, "actions");
      for (guint a = 0; actions != NULL && a < json_array_get_length (actions); a++)
        {
          g_autofree char *text = ens_json_node_text (json_array_get_element (actions, a));

          if (joined->len > 0)
            g_string_append_c (joined, ',');
          g_string_append (joined, text);
        }
      name = ens_json_text (agent, "name");
      kind = ens_json_text (agent, "kind");
      owner = ens_json_text (agent, "owner");

      row = g_new0 (char *, 5);
      row[0] = ens_cell (name);
      row[1] = ens_cell (kind);
      row[2] = ens_cell (joined->str);
      row[3] = ens_cell (owner);
      g_ptr_array_add (rows, row);
    }
  ens_print_table (headers, 4, rows);
}

int
ens_cmd_agents (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) reply = ens_call_action (ctl, cmd->action, NULL, &error);

  (void) args;
  if (reply == NULL)
    return ens_report_error (error);
  if (ctl->opts->json)
    ens_print_json (reply, FALSE);
  else
    ens_print_agents (ens_json_array (ens_json_node_object (reply), "agents"));
  return ENS_EXIT_OK;
}

int
ens_cmd_request (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(JsonNode) reply = NULL;
  guint agent_timeout = 0;

  (void) cmd;
  if (args->len > 2 && (payload = ens_json_arg ("request data", ENS_ARG (args, 2))) == NULL)
    return ENS_EXIT_USAGE;
  if (payload == NULL)
    {
      payload = json_node_new (JSON_NODE_OBJECT); /* data defaults to {} */
      json_node_take_object (payload, json_object_new ());
    }
  /* An explicit --timeout also becomes the daemon-side deadline. */
  if (ctl->opts->timeout_set && ctl->opts->timeout_ms > 0)
    agent_timeout = MIN (ctl->opts->timeout_ms, ENS_CTL_MAX_AGENT_TIMEOUT_MS);

  reply = ens_call (ctl, ENS_ARG (args, 0), ENS_ARG (args, 1), payload, agent_timeout, &error);
  if (reply == NULL)
    return ens_report_error (error);
  ens_print_json (reply, !ctl->opts->json);
  return ENS_EXIT_OK;
}
