/* ensemblectl: sessions — list them; spawn one, run a task in it (streaming
 * its output), show it, stop it. */
#include "ens-ctl.h"

#include <stdio.h>
#include <string.h>

/* spawn and stop show a few fields, status the whole session (pretty). */
static void
show_session (EnsCtl *ctl, const EnsCtlCommand *cmd, JsonNode *reply)
{
  static const char *const fields[] = { "session_id", "status", "task_id", "request_id", "watch", NULL };
  JsonObject *robj = ens_json_node_object (reply);

  if (ctl->opts->json || robj == NULL || g_strcmp0 (cmd->sub, "status") == 0)
    ens_print_json (reply, !ctl->opts->json);
  else
    ens_print_fields (robj, fields);
}

int
ens_cmd_sessions (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  static const char *const cols[] = { "session_id", "status", "session_type", "tasks_total", "created_at" };
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) reply = ens_call_action (ctl, cmd->action, NULL, &error);

  (void) args;
  if (reply == NULL)
    return ens_report_error (error);
  ens_print_reply (ctl, reply, NULL, "sessions", cols, G_N_ELEMENTS (cols));
  return ENS_EXIT_OK;
}

int
ens_cmd_session_spawn (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(JsonNode) reply = NULL;

  if (args->len > 0 && (payload = ens_json_arg ("session", ENS_ARG (args, 0))) == NULL)
    return ENS_EXIT_USAGE;
  reply = ens_call_action (ctl, cmd->action, payload, &error);
  if (reply == NULL)
    return ens_report_error (error);
  show_session (ctl, cmd, reply);
  return ENS_EXIT_OK;
}

/* session status and session stop. */
int
ens_cmd_session_id (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) data = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonNode) reply = NULL;
  JsonObject *params = json_object_new ();

  json_node_take_object (data, params);
  json_object_set_string_member (params, "session_id", ENS_ARG (args, 0));
  reply = ens_call_action (ctl, cmd->action, data, &error);
  if (reply == NULL)
    return ens_report_error (error);
  show_session (ctl, cmd, reply);
  return ENS_EXIT_OK;
}

/* session exec: watch the session's events, then run the task. */
static EnsFollow
ens_on_session_event (EnsCtl *ctl, JsonObject *event, gpointer user_data)
{
  JsonObject *data = ens_json_object (event, "data");
  g_autofree char *type = ens_json_text (data, "type");

  (void) user_data;
  if (ctl->opts->json)
    {
      ens_print_json (json_object_get_member (event, "data"), FALSE);
      fflush (stdout);
    }
  if (g_strcmp0 (type, "stream_chunk") == 0 && !ctl->opts->json)
    {
      g_autofree char *chunk = ens_json_text (data, "chunk");
      fputs (chunk ? chunk : "", stdout);
      fflush (stdout);
    }
  else if ((g_strcmp0 (type, "tool_call_start") == 0 || g_strcmp0 (type, "tool_call_result") == 0) &&
           !ctl->opts->json)
    {
      /* The tool loop's steps, as they happen: {type, data: {tool,
       * arguments, result | error, is_error, duration_ms}}. */
      JsonObject *step = ens_json_object (data, "data") ? ens_json_object (data, "data") : data;
      gboolean start = strcmp (type, "tool_call_start") == 0;
      gboolean failed = ens_json_bool (step, "is_error");
      g_autofree char *name = ens_json_text (step, "tool");
      g_autofree char *what = ens_json_text (step, start ? "arguments" : failed ? "error" : "result");
      double ms = 0;
      g_autofree char *cell = ens_cell (what);

      if (name == NULL)
        name = ens_json_text (step, "name");
      if (start)
        printf ("-> %s %s\n", name ? name : "?", cell);
      else if (ens_json_number (step, "duration_ms", &ms))
        printf ("<- %s%s %s (%.0f ms)\n", name ? name : "?", failed ? " ERROR" : "", cell, ms);
      else
        printf ("<- %s%s %s\n", name ? name : "?", failed ? " ERROR" : "", cell);
      fflush (stdout);
    }
  else if (g_strcmp0 (type, "task_completed") == 0)
    {
      if (!ctl->opts->json)
        printf ("\n");
      return ENS_FOLLOW_DONE;
    }
  else if (g_strcmp0 (type, "task_failed") == 0)
    {
      g_autofree char *code = ens_json_text (data, "code");
      g_autofree char *message = ens_json_text (data, "error");
      ens_report (code ? code : "TASK_FAILED", message ? message : "the task failed", ENS_EXIT_ERROR);
      return ENS_FOLLOW_FAILED;
    }
  return ENS_FOLLOW_MORE;
}

int
ens_cmd_session_exec (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  const char *session_id = ENS_ARG (args, 0);
  g_autofree char *task = ens_join_args (args, 1);
  g_autoptr(GPtrArray) requests = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonObject) sub = json_object_new ();
  g_autoptr(JsonObject) exec = json_object_new ();
  g_autoptr(JsonNode) sub_node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonNode) exec_node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonArray) topics = json_array_new ();
  g_autofree char *pattern = g_strdup_printf ("session.%s.*", session_id);

  json_array_add_string_element (topics, pattern);
  json_object_set_array_member (sub, "topics", json_array_ref (topics));
  json_node_set_object (sub_node, sub);
  json_object_set_string_member (exec, "session_id", session_id);
  json_object_set_string_member (exec, "task", task);
  if (ctl->opts->tools)
    {
      g_auto (GStrv) names = g_strsplit (ctl->opts->tools, ",", -1);
      JsonArray *tools = json_array_new ();
      for (guint i = 0; names[i]; i++)
        if (*g_strstrip (names[i]))
          json_array_add_string_element (tools, names[i]);
      json_object_set_array_member (exec, "tools", tools);
    }
  json_node_set_object (exec_node, exec);
  g_ptr_array_add (requests, ens_build_request (NULL, "subscribe", sub_node, 0));
  g_ptr_array_add (requests, ens_build_request (NULL, cmd->action, exec_node, 0));
  return ens_follow (ctl, requests, ens_on_session_event, NULL, NULL);
}
