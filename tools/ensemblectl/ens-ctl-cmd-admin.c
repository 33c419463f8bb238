/* ensemblectl: the daemon itself — health, plugins, ping, shutdown. */
#include "ens-ctl.h"

#include <stdio.h>

static void
ens_print_plugins (JsonArray *plugins)
{
  static const char *const headers[] = { "ID", "KIND", "VERSION", "DESCRIPTION" };
  static const char *const members[] = { "id", "kind", "version", "description" };
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  guint n = plugins ? json_array_get_length (plugins) : 0;

  if (n == 0)
    {
      printf ("No plugins loaded.\n");
      return;
    }
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (plugins, i);

      if (JSON_NODE_HOLDS_OBJECT (node))
        g_ptr_array_add (rows, ens_row_from (json_node_get_object (node), members, 4));
    }
  ens_print_table (headers, 4, rows);
}

static void
ens_print_number_field (const char *label, JsonObject *obj, const char *name)
{
  double v;
  g_autofree char *text = NULL;

  if (!ens_json_number (obj, name, &v))
    return;
  text = g_strdup_printf ("%.0f", v);
  ens_print_field (label, text);
}

static void
ens_print_health (JsonObject *data)
{
  JsonObject *counters = ens_json_object (data, "counters");
  JsonArray *plugins = ens_json_array (data, "plugins");
  g_autofree char *status = ens_json_text (data, "status");
  g_autofree char *version = ens_json_text (data, "version");
  g_autofree char *node = ens_json_text (data, "node_id");
  g_autofree char *socket_dir = ens_json_text (data, "socket_dir");
  g_autofree char *state_dir = ens_json_text (data, "state_dir");
  double uptime;

  ens_print_field ("Status:", status);
  ens_print_field ("Version:", version);
  ens_print_field ("Node:", node);
  if (ens_json_number (data, "uptime_s", &uptime))
    {
      g_autofree char *text = ens_format_uptime (uptime);

      ens_print_field ("Uptime:", text);
    }
  ens_print_number_field ("Agents:", data, "agents");
  ens_print_number_field ("Connections:", data, "connections");
  ens_print_number_field ("Subscriptions:", data, "subscriptions");
  if (socket_dir != NULL)
    ens_print_field ("Socket dir:", socket_dir);
  if (state_dir != NULL)
    ens_print_field ("State dir:", state_dir);

  if (counters != NULL)
    {
      g_autoptr(GList) names = json_object_get_members (counters);

      printf ("\nCounters:\n");
      for (GList *l = names; l != NULL; l = l->next)
        {
          g_autofree char *label = g_strdup_printf ("  %s:", (const char *) l->data);
          double v;

          if (ens_json_number (counters, l->data, &v))
            printf ("%-20s%.0f\n", label, v);
        }
    }

  printf ("\nPlugins (%u):\n", plugins ? json_array_get_length (plugins) : 0);
  if (plugins != NULL && json_array_get_length (plugins) > 0)
    ens_print_plugins (plugins);
}

int
ens_cmd_health (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) reply = ens_call_action (ctl, cmd->action, NULL, &error);
  g_autofree char *status = NULL;

  (void) args;
  if (reply == NULL)
    return ens_report_error (error);
  if (ctl->opts->json)
    ens_print_json (reply, FALSE);
  else
    ens_print_health (ens_json_node_object (reply));
  /* Monitors and scripts test the exit status: anything but "healthy"
   * (degraded, stopping...) is a failure, whatever was printed. */
  status = ens_json_text (ens_json_node_object (reply), "status");
  if (g_strcmp0 (status, "healthy") != 0)
    {
      g_autofree char *message = g_strdup_printf ("the daemon reports status '%s'", status ? status : "(none)");

      return ens_report ("UNHEALTHY", message, ENS_EXIT_ERROR);
    }
  return ENS_EXIT_OK;
}

int
ens_cmd_plugins (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) reply = ens_call_action (ctl, cmd->action, NULL, &error);

  (void) args;
  if (reply == NULL)
    return ens_report_error (error);
  if (ctl->opts->json)
    ens_print_json (reply, FALSE);
  else
    ens_print_plugins (ens_json_array (ens_json_node_object (reply), "plugins"));
  return ENS_EXIT_OK;
}

int
ens_cmd_ping (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) reply = NULL;
  gint64 start = g_get_monotonic_time ();

  (void) args;
  reply = ens_call_action (ctl, cmd->action, NULL, &error);
  if (reply == NULL)
    return ens_report_error (error);
  if (ctl->opts->json)
    ens_print_json (reply, FALSE);
  else
    printf ("pong from %s (%.2f ms)\n", ctl->opts->socket_path, (double) (g_get_monotonic_time () - start) / 1000.0);
  return ENS_EXIT_OK;
}

int
ens_cmd_shutdown (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) reply = ens_call_action (ctl, cmd->action, NULL, &error);
  g_autofree char *status = NULL;

  (void) args;
  if (reply == NULL)
    return ens_report_error (error);
  if (ctl->opts->json)
    {
      ens_print_json (reply, FALSE);
      return ENS_EXIT_OK;
    }
  status = ens_json_text (ens_json_node_object (reply), "status");
  printf ("Daemon %s.\n", g_strcmp0 (status, "shutting_down") == 0 ? "is shutting down"
                                                                   : (status ? status : "acknowledged"));
  return ENS_EXIT_OK;
}
