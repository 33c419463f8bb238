/* ensemblectl: completions and their routing — complete, route, providers,
 * budget. */
#include "ens-ctl.h"

#include <stdio.h>
#include <unistd.h>

static EnsFollow
ens_on_completion_event (EnsCtl *ctl, JsonObject *event, gpointer user_data)
{
  g_autofree char *topic = ens_json_text (event, "event");
  JsonObject *data = ens_json_object (event, "data");

  (void) user_data;
  if (g_strcmp0 (topic, "COMPLETION_CHUNK") == 0)
    {
      g_autofree char *chunk = ens_json_text (data, "chunk");

      /* --json --stream: each chunk as the object the daemon sent, one per
       * line, as it arrives. */
      if (ctl->opts->stream && ctl->opts->json && data != NULL)
        {
          ens_print_json (json_object_get_member (event, "data"), FALSE);
          fflush (stdout);
        }
      else if (ctl->opts->stream && chunk)
        {
          fputs (chunk, stdout);
          fflush (stdout);
        }
      return ENS_FOLLOW_MORE;
    }
  if (g_strcmp0 (topic, "COMPLETION_RESULT") != 0)
    return ENS_FOLLOW_MORE;
  if (ens_json_object (data, "result") == NULL)
    {
      g_autofree char *reason = ens_json_text (data, "reason");
      g_autofree char *message = ens_json_text (data, "error");
      ens_report (reason ? reason : "COMPLETION_FAILED", message ? message : "the completion failed", ENS_EXIT_ERROR);
      return ENS_FOLLOW_FAILED;
    }
  if (ctl->opts->json)
    ens_print_json (json_object_get_member (data, "result"), FALSE);
  else
    {
      JsonObject *result = ens_json_object (data, "result");
      g_autofree char *response = ens_json_text (result, "response");
      g_autofree char *provider = ens_json_text (result, "provider");
      g_autofree char *model = ens_json_text (result, "model");
      double cost = 0;
      g_autofree char *cost_text = NULL;

      ens_json_number (result, "cost", &cost);
      cost_text = ens_human_number (cost);
      if (!ctl->opts->stream)
        fputs (response ? response : "", stdout);
      printf ("\n");
      if (isatty (STDERR_FILENO))
        fprintf (stderr, "(%s, model %s, cost $%s)\n", provider ? provider : "?", model ? model : "?", cost_text);
    }
  return ENS_FOLLOW_DONE;
}

int
ens_cmd_complete (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(JsonObject) params = json_object_new ();
  g_autoptr(JsonNode) data = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(GPtrArray) requests = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonNode) ack = NULL;
  g_autofree char *prompt = ens_join_args (args, 0);

  json_object_set_string_member (params, "prompt", prompt);
  json_object_set_boolean_member (params, "stream", ctl->opts->stream);
  if (ctl->opts->model)
    json_object_set_string_member (params, "model", ctl->opts->model);
  if (ctl->opts->provider)
    json_object_set_string_member (params, "provider", ctl->opts->provider);
  json_node_set_object (data, params);
  g_ptr_array_add (requests, ens_build_request (NULL, cmd->action, data, 0));

  /* One request on this connection: every completion event on it is ours. */
  return ens_follow (ctl, requests, ens_on_completion_event, NULL, &ack);
}

/* Calls cmd->action with its optional JSON operand (else {}) and shows the
 * reply: @fields of it, or its array @list_member as a table of @cols. */
static int
call_and_show (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args, const char *const *fields,
               const char *list_member, const char *const *cols, guint n_cols)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(JsonNode) reply = NULL;
  g_autofree char *what = g_strdup_printf ("%s request", cmd->name);

  if (args->len > 0 && (payload = ens_json_arg (what, ENS_ARG (args, 0))) == NULL)
    return ENS_EXIT_USAGE;
  reply = ens_call_action (ctl, cmd->action, payload, &error);
  if (reply == NULL)
    return ens_report_error (error);
  ens_print_reply (ctl, reply, fields, list_member, cols, n_cols);
  return ENS_EXIT_OK;
}

int
ens_cmd_route (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  static const char *const fields[] = { "provider", "confidence", "estimated_cost", "policy", "reasoning", "ranking",
                                        NULL };

  return call_and_show (ctl, cmd, args, fields, NULL, NULL, 0);
}

int
ens_cmd_budget (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  static const char *const fields[] = { "day", "daily_budget", "current_spend", "reserved", "remaining",
                                        "utilization_pct", NULL };

  return call_and_show (ctl, cmd, args, fields, NULL, NULL, 0);
}

int
ens_cmd_providers (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  static const char *const cols[] = { "name", "provider", "quality", "latency_ms", "calls", "failures", "cost" };

  return call_and_show (ctl, cmd, args, NULL, "providers", cols, G_N_ELEMENTS (cols));
}
