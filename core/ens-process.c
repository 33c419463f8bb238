/* ens-process.c — agent processes started on request (KSI SPAWN_AGENT,
 * processes.spawn): the configured spawn-command with the request's values
 * filled in, watched until it exits, terminated at shutdown. */
#include "ens-process.h"
#include "ens-json.h"
#include "ens-message-private.h"

#include <signal.h>
#include <string.h>

typedef struct {
  gint refs;             /* the list's, and the exit watch's while it runs */
  EnsProcesses *owner;   /* NULL once the owner is gone */
  char *id;
  char *agent_id;
  char *task;
  char *model;
  char *role;
  char *profile;
  char **argv;
  GSubprocess *process;
  char *pid;
  gint64 started_real_us;
  gboolean running;
  int exit_status;
} EnsProcess;

struct _EnsProcesses {
  EnsConfig *config;
  EnsBus *bus;
  GPtrArray *list; /* EnsProcess*, in start order */
  guint64 next_process;
};

#define KEEP_EXITED 256 /* exited processes listed before the oldest are forgotten */

static EnsProcess *
process_ref (EnsProcess *p)
{
  p->refs++;
  return p;
}

static void
process_unref (EnsProcess *p)
{
  if (--p->refs > 0)
    return;
  g_free (p->id);
  g_free (p->agent_id);
  g_free (p->task);
  g_free (p->model);
  g_free (p->role);
  g_free (p->profile);
  g_strfreev (p->argv);
  g_clear_object (&p->process);
  g_free (p->pid);
  g_free (p);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsProcess, process_unref)

static JsonNode *
process_describe (EnsProcess *p)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  JsonArray *argv = json_array_new ();

  json_object_set_string_member (obj, "process_id", p->id);
  json_object_set_string_member (obj, "pid", p->pid ? p->pid : "");
  json_object_set_string_member (obj, "agent_id", p->agent_id);
  json_object_set_string_member (obj, "task", p->task);
  json_object_set_string_member (obj, "model", p->model);
  if (p->role)
    json_object_set_string_member (obj, "role", p->role);
  if (p->profile)
    json_object_set_string_member (obj, "profile", p->profile);
  for (guint i = 0; p->argv[i]; i++)
    json_array_add_string_element (argv, p->argv[i]);
  json_object_set_array_member (obj, "command", argv);
  json_object_set_string_member (obj, "status", p->running ? "running" : "completed");
  if (!p->running)
    json_object_set_int_member (obj, "return_code", p->exit_status);
  ens_json_set_timestamp (obj, "started_at", p->started_real_us);
  return node;
}

static void
on_exited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (EnsProcess) p = user_data; /* the watch's reference */
  GSubprocess *sp = G_SUBPROCESS (source);
  g_autoptr (JsonNode) info = NULL;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;

  g_subprocess_wait_finish (sp, result, NULL);
  p->running = FALSE;
  p->exit_status = g_subprocess_get_if_exited (sp) ? g_subprocess_get_exit_status (sp)
                                                     : -g_subprocess_get_term_sig (sp);
  g_message ("process %s (agent %s, pid %s) exited with %d", p->id, p->agent_id, p->pid, p->exit_status);
  if (p->owner == NULL)
    return;
  info = process_describe (p);
  init.topic = "ensemble.process.exited";
  init.from = "ensembled";
  init.data = info;
  event = ens_message_new (&init);
  ens_bus_publish (p->owner->bus, event, NULL);
}

guint
ens_processes_running (EnsProcesses *processes)
{
  guint n = 0;

  for (guint i = 0; i < processes->list->len; i++)
    n += ((EnsProcess *) g_ptr_array_index (processes->list, i))->running;
  return n;
}

static void
forget_exited (EnsProcesses *processes)
{
  guint exited = processes->list->len - ens_processes_running (processes);

  for (guint i = 0; i < processes->list->len && exited > KEEP_EXITED;)
    {
      EnsProcess *p = g_ptr_array_index (processes->list, i);
      if (!p->running)
        {
          g_ptr_array_remove_index (processes->list, i);
          exited--;
        }
      else
        i++;
    }
}

static char *
fill (const char *template, EnsProcess *p)
{
  GString *out = g_string_new (template);
  const struct {
    const char *key;
    const char *value;
  } vars[] = { { "{agent_id}", p->agent_id }, { "{task}", p->task }, { "{model}", p->model },
               { "{role}", p->role ? p->role : "" }, { "{profile}", p->profile ? p->profile : "" } };

  for (guint i = 0; i < G_N_ELEMENTS (vars); i++)
    g_string_replace (out, vars[i].key, vars[i].value, 0);
  return g_string_free (out, FALSE);
}

static const char *
opt_string (JsonObject *params, const char *field, gboolean *bad)
{
  JsonNode *node = params ? json_object_get_member (params, field) : NULL;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      *bad = TRUE;
      return NULL;
    }
  return json_node_get_string (node);
}

static EnsMessage *
verb_spawn (EnsCall *call, gpointer user_data)
{
  EnsProcesses *processes = user_data;
  EnsMessage *request = call->msg;
  JsonObject *params = call->params;
  g_auto (GStrv) template = ens_config_get_strv (processes->config, "spawn-command");
  g_autofree char *socket_dir = ens_config_get_path (processes->config, "socket-dir");
  g_autofree char *native = ens_config_get_path (processes->config, "native-socket");
  g_autofree char *socket_path = g_build_filename (socket_dir, native, NULL);
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) data = NULL;
  gboolean bad = FALSE;
  const char *task = opt_string (params, "task", &bad);
  const char *agent_id = opt_string (params, "agent_id", &bad);
  const char *model = opt_string (params, "model", &bad);
  const char *role = opt_string (params, "role", &bad);
  const char *profile = opt_string (params, "profile_name", &bad);
  guint max = ens_config_get_uint (processes->config, "max-processes");
  EnsProcess *p;

  if (bad)
    return ens_message_new_invalid (request, "task, agent_id, model, role, profile_name", "strings");
  if (task == NULL || task[0] == '\0')
    return ens_message_new_invalid (request, "task", "a non-empty string");
  if (template == NULL || template[0] == NULL)
    return ens_message_new_error (request, "SPAWN_FAILED",
                                  "no spawn-command is configured; set the spawn-command setting to the agent program",
                                  NULL);
  if (ens_processes_running (processes) >= max)
    return ens_message_new_error (request, "SPAWN_FAILED", "too many spawned processes are running (max-processes)",
                                  NULL);

  p = g_new0 (EnsProcess, 1);
  p->refs = 1;
  p->id = g_strdup_printf ("proc-%" G_GUINT64_FORMAT, ++processes->next_process);
  p->agent_id = agent_id ? g_strdup (agent_id) : g_strdup_printf ("agent-%" G_GUINT64_FORMAT, processes->next_process);
  p->task = g_strdup (task);
  p->model = g_strdup (model ? model : "default");
  p->role = g_strdup (role);
  p->profile = g_strdup (profile);
  p->argv = g_new0 (char *, g_strv_length (template) + 1);
  for (guint i = 0; template[i]; i++)
    p->argv[i] = fill (template[i], p);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_INHERIT);
  g_subprocess_launcher_setenv (launcher, "ENSEMBLE_SOCKET", socket_path, TRUE);
  g_subprocess_launcher_setenv (launcher, "ENSEMBLE_AGENT_ID", p->agent_id, TRUE);
  g_subprocess_launcher_setenv (launcher, "ENSEMBLE_TASK", p->task, TRUE);
  g_subprocess_launcher_setenv (launcher, "ENSEMBLE_MODEL", p->model, TRUE);
  p->process = g_subprocess_launcher_spawnv (launcher, (const char *const *) p->argv, &error);
  if (p->process == NULL)
    {
      g_autofree char *text = g_strdup_printf ("cannot start %s: %s", p->argv[0], error->message);
      process_unref (p);
      return ens_message_new_error (request, "SPAWN_FAILED", text, NULL);
    }
  p->pid = g_strdup (g_subprocess_get_identifier (p->process));
  p->running = TRUE;
  p->started_real_us = g_get_real_time ();
  p->owner = processes;
  forget_exited (processes);
  g_ptr_array_add (processes->list, p);
  g_subprocess_wait_async (p->process, NULL, on_exited, process_ref (p));
  g_message ("process %s started for agent %s: pid %s", p->id, p->agent_id, p->pid);

  data = process_describe (p);
  return ens_message_new_reply (request, data);
}

static EnsMessage *
verb_list (EnsCall *call, gpointer data)
{
  EnsProcesses *processes = data;
  JsonObject *obj;
  g_autoptr (JsonNode) reply = ens_json_object_node (&obj);
  JsonArray *array = json_array_new ();

  for (guint i = 0; i < processes->list->len; i++)
    json_array_add_element (array, process_describe (g_ptr_array_index (processes->list, i)));
  json_object_set_array_member (obj, "processes", array);
  json_object_set_int_member (obj, "total", processes->list->len);
  json_object_set_int_member (obj, "running", ens_processes_running (processes));
  return ens_message_new_reply (call->msg, reply);
}

void
ens_processes_add_verbs (EnsProcesses *processes, EnsVerbs *verbs)
{
  ens_verbs_add (verbs, "processes.spawn", verb_spawn, processes);
  ens_verbs_add (verbs, "processes.list", verb_list, processes);
}

EnsProcesses *
ens_processes_new (EnsConfig *config, EnsBus *bus)
{
  EnsProcesses *processes = g_new0 (EnsProcesses, 1);

  processes->config = config;
  processes->bus = bus;
  processes->list = g_ptr_array_new_with_free_func ((GDestroyNotify) process_unref);
  return processes;
}

void
ens_processes_stop_all (EnsProcesses *processes)
{
  for (guint i = 0; i < processes->list->len; i++)
    {
      EnsProcess *p = g_ptr_array_index (processes->list, i);
      if (p->running)
        g_subprocess_send_signal (p->process, SIGTERM);
    }
}

void
ens_processes_free (EnsProcesses *processes)
{
  if (processes == NULL)
    return;
  /* A process still running keeps its record through its exit watch. */
  for (guint i = 0; i < processes->list->len; i++)
    ((EnsProcess *) g_ptr_array_index (processes->list, i))->owner = NULL;
  g_ptr_array_unref (processes->list);
  g_free (processes);
}
