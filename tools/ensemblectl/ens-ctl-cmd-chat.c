/* ensemblectl: conversations and pipelines — chat (a session fed line by
 * line from standard input, its answers streamed) and pipe (standard input
 * through agents and models in turn, as aish pipelines do). */
#include "ens-ctl.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Reading events on the kept connection                                */

typedef enum
{
  ENS_NEXT_EVENT,
  ENS_NEXT_STOPPED,
  ENS_NEXT_FAILED,
} EnsNext;

/* The next event on ctl->conn before @deadline (0: none); replies and
 * other lines are passed over. */
static EnsNext
next_event (EnsCtl *ctl, gint64 deadline, JsonNode **event_out, EnsCtlError **error)
{
  for (;;)
    {
      g_autofree char *line = NULL;
      g_autoptr(JsonNode) root = NULL;

      switch (ens_conn_read_line (ctl->conn, deadline, ctl->opts->timeout_ms, ens_stop_fd (), &line, error))
        {
        case ENS_READ_LINE:
          break;
        case ENS_READ_STOPPED:
          return ENS_NEXT_STOPPED;
        case ENS_READ_EOF:
          ens_ctl_set_error (error, "DISCONNECTED", "connection closed by the daemon");
          return ENS_NEXT_FAILED;
        case ENS_READ_FAILED:
        default:
          return ENS_NEXT_FAILED;
        }
      switch (ens_classify_line (ctl->conn, line, &root, error))
        {
        case ENS_LINE_EVENT:
          *event_out = g_steal_pointer (&root);
          return ENS_NEXT_EVENT;
        case ENS_LINE_BAD:
          return ENS_NEXT_FAILED;
        case ENS_LINE_REPLY:
        case ENS_LINE_OTHER:
        default:
          break;
        }
    }
}

static gint64
turn_deadline (EnsCtl *ctl)
{
  return ctl->opts->timeout_ms > 0
           ? g_get_monotonic_time () + (gint64) ctl->opts->timeout_ms * G_TIME_SPAN_MILLISECOND
           : 0;
}

/* (transfer full) {} with @key set to @value */
static JsonNode *
object_with (const char *key, const char *value, JsonObject **obj_out)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  JsonObject *obj = json_object_new ();

  json_node_take_object (node, obj);
  if (key != NULL)
    json_object_set_string_member (obj, key, value);
  if (obj_out)
    *obj_out = obj;
  return node;
}

/* ------------------------------------------------------------------ */
/* chat                                                                 */

typedef enum
{
  ENS_TURN_DONE,
  ENS_TURN_FAILED,   /* reported; the chat goes on */
  ENS_TURN_STOPPED,
  ENS_TURN_BROKEN,   /* reported; the chat ends */
} EnsTurn;

/* One turn: the task, then the session's events until it ends. */
static EnsTurn
chat_turn (EnsCtl *ctl, const char *session_id, const char *text)
{
  g_autoptr(EnsCtlError) error = NULL;
  JsonObject *params;
  g_autoptr(JsonNode) data = object_with ("session_id", session_id, &params);
  g_autoptr(JsonNode) ack = NULL;
  gint64 deadline;

  json_object_set_string_member (params, "task", text);
  ack = ens_call_again (ctl, NULL, "sessions.execute", data, &error);
  if (ack == NULL)
    {
      ens_report_error (error);
      return g_strcmp0 (error->code, "DISCONNECTED") == 0 || g_strcmp0 (error->code, "TIMEOUT") == 0
               ? ENS_TURN_BROKEN : ENS_TURN_FAILED;
    }
  deadline = turn_deadline (ctl);
  for (;;)
    {
      g_autoptr(JsonNode) event = NULL;
      JsonObject *ev, *ev_data;
      g_autofree char *type = NULL;

      switch (next_event (ctl, deadline, &event, &error))
        {
        case ENS_NEXT_EVENT:
          break;
        case ENS_NEXT_STOPPED:
          return ENS_TURN_STOPPED;
        case ENS_NEXT_FAILED:
        default:
          ens_report_error (error);
          return ENS_TURN_BROKEN;
        }
      ev = json_node_get_object (event);
      ev_data = ens_json_object (ev, "data");
      type = ens_json_text (ev_data, "type");
      if (ctl->opts->json && ev_data != NULL)
        {
          ens_print_json (json_object_get_member (ev, "data"), FALSE);
          fflush (stdout);
        }
      if (g_strcmp0 (type, "stream_chunk") == 0 && !ctl->opts->json)
        {
          g_autofree char *chunk = ens_json_text (ev_data, "chunk");

          fputs (chunk ? chunk : "", stdout);
          fflush (stdout);
        }
      else if (g_strcmp0 (type, "task_completed") == 0)
        {
          if (!ctl->opts->json)
            printf ("\n");
          fflush (stdout);
          return ENS_TURN_DONE;
        }
      else if (g_strcmp0 (type, "task_failed") == 0)
        {
          g_autofree char *code = ens_json_text (ev_data, "code");
          g_autofree char *message = ens_json_text (ev_data, "error");

          if (!ctl->opts->json)
            printf ("\n");
          ens_report (code ? code : "TASK_FAILED", message ? message : "the task failed", ENS_EXIT_ERROR);
          return ENS_TURN_FAILED;
        }
    }
}

int
ens_cmd_chat (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autofree char *session_id = NULL;
  g_autofree char *pattern = NULL;
  g_autoptr(JsonNode) sub = NULL;
  g_autoptr(JsonNode) reply = NULL;
  g_autoptr(JsonArray) topics = json_array_new ();
  gboolean interactive = isatty (STDIN_FILENO) && !ctl->opts->json;
  char *line = NULL;
  size_t cap = 0;
  int status = ENS_EXIT_OK;

  (void) cmd;
  if (!ens_install_stop_handlers (&error))
    return ens_report_error (error);
  if (args->len > 0)
    session_id = g_strdup (ENS_ARG (args, 0));
  else
    {
      JsonObject *params;
      g_autoptr(JsonNode) data = object_with ("session_type", "chat", &params);
      g_autoptr(JsonNode) spawned = NULL;

      if (ctl->opts->model)
        json_object_set_string_member (params, "model", ctl->opts->model);
      if (ctl->opts->provider)
        json_object_set_string_member (params, "provider", ctl->opts->provider);
      spawned = ens_call_again (ctl, NULL, "sessions.spawn", data, &error);
      if (spawned == NULL)
        return ens_report_error (error);
      session_id = ens_json_text (ens_json_node_object (spawned), "session_id");
      if (session_id == NULL)
        return ens_report ("PROTOCOL_ERROR", "sessions.spawn answered no session_id", ENS_EXIT_ERROR);
    }
  /* A session that does not exist is said now, not at the first line. */
  {
    g_autoptr(JsonNode) data = object_with ("session_id", session_id, NULL);

    reply = ens_call_again (ctl, NULL, "sessions.status", data, &error);
    if (reply == NULL)
      {
        g_autofree char *message = g_strdup_printf ("session %s: %s", session_id, error->message);

        return ens_report (error->code, message, ENS_EXIT_ERROR);
      }
  }
  pattern = g_strdup_printf ("session.%s.*", session_id);
  json_array_add_string_element (topics, pattern);
  {
    JsonObject *params;

    sub = object_with (NULL, NULL, &params);
    json_object_set_array_member (params, "topics", json_array_ref (topics));
  }
  g_clear_pointer (&reply, json_node_unref);
  reply = ens_call_again (ctl, NULL, "subscribe", sub, &error);
  if (reply == NULL)
    return ens_report_error (error);
  if (interactive)
    fprintf (stderr, "Chat session %s (one line per turn; Ctrl-D ends, `ensemblectl chat %s` goes on)\n",
             session_id, session_id);

  for (;;)
    {
      ssize_t n;
      EnsTurn turn;

      if (interactive)
        {
          fprintf (stderr, "> ");
          fflush (stderr);
        }
      n = getline (&line, &cap, stdin);
      if (n < 0)
        break;
      g_strstrip (line);
      if (line[0] == '\0')
        continue;
      turn = chat_turn (ctl, session_id, line);
      if (turn == ENS_TURN_FAILED)
        status = ENS_EXIT_ERROR;
      else if (turn == ENS_TURN_STOPPED)
        break;
      else if (turn == ENS_TURN_BROKEN)
        {
          status = ENS_EXIT_ERROR;
          break;
        }
    }
  if (interactive)
    fprintf (stderr, "\n");
  free (line);
  return status;
}

/* ------------------------------------------------------------------ */
/* pipe                                                                 */

/* What a model is given of @value: a string as-is; of an object its text,
 * response or content member; else its JSON. */
static char *
text_of (JsonNode *value)
{
  static const char *const members[] = { "text", "response", "content", "output", "result" };
  JsonObject *obj = ens_json_node_object (value);
  const char *s = ens_json_node_string (value);

  if (s != NULL)
    return g_strdup (s);
  for (guint i = 0; obj != NULL && i < G_N_ELEMENTS (members); i++)
    {
      const char *m = ens_json_node_string (json_object_get_member (obj, members[i]));

      if (m != NULL)
        return g_strdup (m);
    }
  return ens_json_to_string (value, FALSE);
}

/* A completion of @prompt; its response, or NULL with @error. */
static char *
complete_text (EnsCtl *ctl, const char *prompt, const char *model, EnsCtlError **error)
{
  JsonObject *params;
  g_autoptr(JsonNode) data = object_with ("prompt", prompt, &params);
  g_autoptr(JsonNode) ack = NULL;
  gint64 deadline;

  if (model != NULL && model[0] != '\0')
    json_object_set_string_member (params, "model", model);
  /* A connection of its own: every completion event on it is this one's. */
  g_clear_pointer (&ctl->conn, ens_conn_free);
  ack = ens_call_again (ctl, NULL, "complete", data, error);
  if (ack == NULL)
    return NULL;
  deadline = turn_deadline (ctl);
  for (;;)
    {
      g_autoptr(JsonNode) event = NULL;
      JsonObject *ev, *ev_data, *result;
      g_autofree char *topic = NULL;

      switch (next_event (ctl, deadline, &event, error))
        {
        case ENS_NEXT_EVENT:
          break;
        case ENS_NEXT_STOPPED:
          ens_ctl_set_error (error, "INTERRUPTED", "interrupted");
          return NULL;
        case ENS_NEXT_FAILED:
        default:
          return NULL;
        }
      ev = json_node_get_object (event);
      topic = ens_json_text (ev, "event");
      if (g_strcmp0 (topic, "COMPLETION_RESULT") != 0)
        continue;
      ev_data = ens_json_object (ev, "data");
      result = ens_json_object (ev_data, "result");
      if (result == NULL)
        {
          g_autofree char *code = ens_json_text (ev_data, "reason");
          g_autofree char *message = ens_json_text (ev_data, "error");

          ens_ctl_set_error (error, code ? code : "COMPLETION_FAILED", "%s", message ? message : "the completion failed");
          return NULL;
        }
      return ens_json_text (result, "response");
    }
}

/* The action of a stage that named only its agent: the agent's only one. */
static char *
sole_action (EnsCtl *ctl, const char *agent, EnsCtlError **error)
{
  g_autoptr(JsonNode) list = ens_call_again (ctl, NULL, "agents.list", NULL, error);
  JsonArray *agents = list ? ens_json_array (ens_json_node_object (list), "agents") : NULL;

  if (list == NULL)
    return NULL;
  for (guint i = 0; agents != NULL && i < json_array_get_length (agents); i++)
    {
      JsonObject *a = ens_json_node_object (json_array_get_element (agents, i));
      g_autofree char *name = ens_json_text (a, "name");
      JsonArray *actions = ens_json_array (a, "actions");
      g_autofree char *joined = NULL;

      if (g_strcmp0 (name, agent) != 0)
        continue;
      if (actions != NULL && json_array_get_length (actions) == 1)
        return ens_json_node_text (json_array_get_element (actions, 0));
      {
        GString *names = g_string_new (NULL);

        for (guint k = 0; actions != NULL && k < json_array_get_length (actions); k++)
          {
            g_autofree char *one = ens_json_node_text (json_array_get_element (actions, k));

            g_string_append_printf (names, "%s%s", k ? ", " : "", one);
          }
        joined = g_string_free (names, FALSE);
      }
      ens_ctl_set_error (error, "USAGE", "agent '%s' has several actions (%s): name one, as %s:ACTION", agent,
                         joined, agent);
      return NULL;
    }
  ens_ctl_set_error (error, "AGENT_NOT_FOUND", "no agent '%s' (see ensemblectl agents)", agent);
  return NULL;
}

/* Standard input, without its last newline; NULL after reporting. */
static char *
read_stdin (void)
{
  GString *in = g_string_new (NULL);
  char buf[65536];
  size_t n;

  while ((n = fread (buf, 1, sizeof buf, stdin)) > 0)
    g_string_append_len (in, buf, (gssize) n);
  if (ferror (stdin))
    {
      g_string_free (in, TRUE);
      ens_report ("IO_ERROR", "cannot read standard input", ENS_EXIT_ERROR);
      return NULL;
    }
  if (in->len > 0 && in->str[in->len - 1] == '\n')
    g_string_truncate (in, in->len - 1);
  return g_string_free (in, FALSE);
}

int
ens_cmd_pipe (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autofree char *input = NULL;
  g_autoptr(JsonNode) current = NULL;

  (void) cmd;
  /* Every stage is checked before anything is sent. */
  for (guint i = 0; i < args->len; i++)
    {
      const char *stage = ENS_ARG (args, i);
      const char *colon = strchr (stage, ':');

      if (stage[0] == '@')
        continue;
      if (stage[0] == '\0' || colon == stage || (colon != NULL && colon[1] == '\0') ||
          (colon != NULL && strchr (colon + 1, ':') != NULL))
        return ens_usage_error ("pipe: invalid stage '%s' (expected AGENT, AGENT:ACTION or @MODEL)", stage);
    }
  if (!ens_install_stop_handlers (&error))
    return ens_report_error (error);
  if ((input = read_stdin ()) == NULL)
    return ENS_EXIT_ERROR;
  if (input[0] == '\0')
    return ens_usage_error ("pipe: nothing on standard input (echo TEXT | ensemblectl pipe STAGE...)");
  current = ens_json_parse (input, NULL);
  if (current == NULL || !JSON_NODE_HOLDS_OBJECT (current))
    {
      g_clear_pointer (&current, json_node_unref);
      current = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (current, input);
    }

  for (guint i = 0; i < args->len; i++)
    {
      const char *stage = ENS_ARG (args, i);
      g_autoptr(JsonNode) next = NULL;

      if (stage[0] == '@')
        {
          g_autofree char *prompt = text_of (current);
          g_autofree char *response = complete_text (ctl, prompt, stage + 1, &error);

          if (response != NULL)
            {
              next = json_node_new (JSON_NODE_VALUE);
              json_node_set_string (next, response);
            }
        }
      else
        {
          const char *colon = strchr (stage, ':');
          g_autofree char *agent = colon ? g_strndup (stage, (gsize) (colon - stage)) : g_strdup (stage);
          g_autofree char *action = colon ? g_strdup (colon + 1) : sole_action (ctl, agent, &error);
          g_autoptr(JsonNode) data = NULL;

          if (action != NULL)
            {
              if (JSON_NODE_HOLDS_OBJECT (current))
                data = json_node_ref (current);
              else
                {
                  g_autofree char *text = text_of (current);

                  data = object_with ("text", text, NULL);
                }
              next = ens_call (ctl, agent, action, data, 0, &error);
            }
        }
      if (next == NULL)
        {
          g_autofree char *message = g_strdup_printf ("stage %u (%s): %s", i + 1, stage, error->message);

          return ens_report (error->code, message, g_strcmp0 (error->code, "USAGE") == 0 ? ENS_EXIT_USAGE
                                                                                          : ENS_EXIT_ERROR);
        }
      g_clear_pointer (&current, json_node_unref);
      current = g_steal_pointer (&next);
    }

  if (ctl->opts->json)
    ens_print_json (current, FALSE);
  else if (ens_json_node_string (current) != NULL)
    printf ("%s\n", ens_json_node_string (current));
  else
    ens_print_json (current, TRUE);
  return ENS_EXIT_OK;
}
