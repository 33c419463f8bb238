/* ensemblectl: events — publish, subscribe. */
#include "ens-ctl.h"

#include <stdio.h>
#include <unistd.h>

int
ens_cmd_publish (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(JsonNode) data = NULL;
  g_autoptr(JsonNode) reply = NULL;
  JsonObject *params;

  /* `publish chat.room hello` should just work, as `kv set` does: what is
   * not JSON is a string. */
  if (args->len > 1 && (payload = ens_json_parse (ENS_ARG (args, 1), NULL)) == NULL)
    {
      payload = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (payload, ENS_ARG (args, 1));
    }
  data = json_node_new (JSON_NODE_OBJECT);
  params = json_object_new ();
  json_node_take_object (data, params);
  json_object_set_string_member (params, "topic", ENS_ARG (args, 0));
  json_object_set_member (params, "data", payload ? json_node_ref (payload) : json_node_new (JSON_NODE_NULL));
  if (ctl->opts->to != NULL)
    json_object_set_string_member (params, "to", ctl->opts->to);

  reply = ens_call_action (ctl, cmd->action, data, &error);
  if (reply == NULL)
    return ens_report_error (error);
  if (ctl->opts->json)
    ens_print_json (reply, FALSE);
  else
    {
      JsonObject *robj = ens_json_node_object (reply);
      g_autofree char *seq = ens_json_text (robj, "seq");
      g_autofree char *delivered = ens_json_text (robj, "delivered");

      printf ("Published '%s' (seq %s, delivered to %s)\n", ENS_ARG (args, 0), seq ? seq : "-",
              delivered ? delivered : "-");
    }
  return ENS_EXIT_OK;
}

static void
ens_print_event (EnsCtl *ctl, const char *line, JsonNode *root)
{
  JsonObject *obj = json_node_get_object (root);
  g_autofree char *topic = NULL, *from = NULL, *seq = NULL, *data = NULL;

  if (ctl->opts->json)
    {
      /* The event exactly as the daemon sent it. */
      printf ("%s\n", line);
    }
  else
    {
      topic = ens_json_text (obj, "event");
      from = ens_json_text (obj, "from");
      seq = ens_json_text (obj, "seq");
      data = ens_json_to_string (json_object_get_member (obj, "data"), FALSE);
      printf ("[%s] %s %s: %s\n", seq ? seq : "-", topic ? topic : "-", from ? from : "-", data);
    }
  /* Subscribers are usually piped into something that wants events now. */
  fflush (stdout);
}

int
ens_cmd_subscribe (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonArray) topics = json_array_new ();
  g_autoptr(JsonObject) obj = json_object_new ();
  g_autoptr(JsonNode) data = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *request = NULL;
  gboolean subscribed = FALSE;
  guint timeout_ms = ctl->opts->timeout_ms;

  for (guint i = 0; i < args->len; i++)
    json_array_add_string_element (topics, g_ptr_array_index (args, i));
  json_object_set_array_member (obj, "topics", json_array_ref (topics));
  json_node_set_object (data, obj);
  request = ens_build_request (NULL, cmd->action, data, 0);

  if (!ens_install_stop_handlers (&error))
    return ens_report_error (error);
  if (!ens_ctl_connect (ctl, 0, &error) ||
      !ens_conn_write_line (ctl->conn, request, ctl->deadline, timeout_ms, &error))
    return ens_report_error (error);

  for (;;)
    {
      g_autofree char *line = NULL;
      g_autoptr(JsonNode) root = NULL;
      /* --timeout bounds only the wait for the subscribe reply. */
      gint64 deadline = subscribed ? 0 : ctl->deadline;

      switch (ens_conn_read_line (ctl->conn, deadline, timeout_ms, ens_stop_fd (), &line, &error))
        {
        case ENS_READ_LINE:
          break;
        case ENS_READ_STOPPED:
          return ENS_EXIT_OK;
        case ENS_READ_EOF:
          return ens_report ("DISCONNECTED",
                             subscribed ? "connection closed by the daemon"
                                        : "connection closed by the daemon before replying",
                             ENS_EXIT_ERROR);
        case ENS_READ_FAILED:
        default:
          return ens_report_error (error);
        }

      switch (ens_classify_line (ctl->conn, line, &root, &error))
        {
        case ENS_LINE_EVENT:
          ens_print_event (ctl, line, root);
          break;
        case ENS_LINE_REPLY:
          {
            g_autoptr(JsonNode) reply = ens_reply_data (ctl->conn, root, &error);

            if (reply == NULL)
              return ens_report_error (error);
            subscribed = TRUE;
            /* Tell an interactive user it is live, without polluting stdout. */
            if (!ctl->opts->json && isatty (STDERR_FILENO))
              fprintf (stderr, "Subscribed; waiting for events (Ctrl-C to stop)...\n");
          }
          break;
        case ENS_LINE_BAD:
          return ens_report_error (error);
        case ENS_LINE_OTHER:
        default:
          break;
        }
    }
}

