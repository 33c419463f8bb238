/* ens-process.c — agent processes started on request (KSI SPAWN_AGENT,
 * processes.spawn): the configured spawn-command with the request's values
 * filled in, watched until it exits, terminated at shutdown. */
#include "ens-core.h"

#include <signal.h>
#include <string.h>

typedef struct {
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

static GPtrArray *processes; /* EnsProcess*, in start order */
static guint64 next_process;
#define KEEP_EXITED 256 /* exited processes listed before the oldest are forgotten */

static void
process_free (EnsProcess *p)
{
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
  EnsProcess *p = user_data;
  EnsDaemon *d = ens_daemon_get ();
  GSubprocess *sp = G_SUBPROCESS (source);
  g_autoptr (JsonNode) info = NULL;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;

  g_subprocess_wait_finish (sp, result, NULL);
  p->running = FALSE;
  p->exit_status = g_subprocess_get_if_exited (sp) ? g_subprocess_get_exit_status (sp)
                                                     : -g_subprocess_get_term_sig (sp);
  g_message ("process %s (agent %s, pid %s) exited with %d", p->id, p->agent_id, p->pid, p->exit_status);
  if (d == NULL || d->bus == NULL)
    return;
  info = process_describe (p);
  init.topic = "ensemble.process.exited";
  init.from = "ensembled";
  init.data = info;
  event = ens_message_new (&init);
  d->counters.events_published++;
  d->counters.events_delivered += ens_bus_publish (d->bus, event, NULL);
}

static guint
running_count (void)
{
  guint n = 0;

  for (guint i = 0; processes && i < processes->len; i++)
    n += ((EnsProcess *) g_ptr_array_index (processes, i))->running;
  return n;
}

static void
forget_exited (void)
{
  guint exited = processes->len - running_count ();

  for (guint i = 0; i < processes->len && exited > KEEP_EXITED;)
    {
      EnsProcess *p = g_ptr_array_index (processes, i);
      if (!p->running)
        {
          g_ptr_array_remove_index (processes, i);
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
invalid_field (EnsMessage *request, const char *field, const char *expected)
{
  JsonObject *obj;
  g_autoptr (JsonNode) details = ens_json_object_node (&obj);
  g_autofree char *text = g_strdup_printf ("%s must be %s", field, expected);

  json_object_set_string_member (obj, "field", field);
  json_object_set_string_member (obj, "expected", expected);
  return ens_message_new_error (request, ENS_ERR_INVALID_PARAMETERS, text, details);
}

EnsMessage *
ens_process_spawn (EnsDaemon *d, EnsMessage *request, JsonObject *params)
{
  g_auto (GStrv) template = ens_config_get_strv (d->config, "spawn-command");
  g_autofree char *socket_dir = ens_config_get_path (d->config, "socket-dir");
  g_autofree char *native = ens_config_get_path (d->config, "native-socket");
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
  guint max = ens_config_get_uint (d->config, "max-processes");
  EnsProcess *p;

  if (bad)
    return invalid_field (request, "task, agent_id, model, role, profile_name", "strings");
  if (task == NULL || task[0] == '\0')
    return invalid_field (request, "task", "a non-empty string");
  if (template == NULL || template[0] == NULL)
    return ens_message_new_error (request, "SPAWN_FAILED",
                                  "no spawn-command is configured; set the spawn-command setting to the agent program",
                                  NULL);
  if (running_count () >= max)
    return ens_message_new_error (request, "SPAWN_FAILED", "too many spawned processes are running (max-processes)",
                                  NULL);

  p = g_new0 (EnsProcess, 1);
  p->id = g_strdup_printf ("proc-%" G_GUINT64_FORMAT, ++next_process);
  p->agent_id = agent_id ? g_strdup (agent_id) : g_strdup_printf ("agent-%" G_GUINT64_FORMAT, next_process);
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
      process_free (p);
      return ens_message_new_error (request, "SPAWN_FAILED", text, NULL);
    }
  p->pid = g_strdup (g_subprocess_get_identifier (p->process));
  p->running = TRUE;
  p->started_real_us = g_get_real_time ();
  if (processes == NULL)
    processes = g_ptr_array_new_with_free_func ((GDestroyNotify) process_free);
  forget_exited ();
  g_ptr_array_add (processes, p);
  g_subprocess_wait_async (p->process, NULL, on_exited, p);
  g_message ("process %s started for agent %s: pid %s", p->id, p->agent_id, p->pid);

  data = process_describe (p);
  return ens_message_new_reply (request, data);
}

EnsMessage *
ens_process_list (EnsMessage *request)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);
  JsonArray *array = json_array_new ();

  for (guint i = 0; processes && i < processes->len; i++)
    json_array_add_element (array, process_describe (g_ptr_array_index (processes, i)));
  json_object_set_array_member (obj, "processes", array);
  json_object_set_int_member (obj, "total", processes ? processes->len : 0);
  json_object_set_int_member (obj, "running", running_count ());
  return ens_message_new_reply (request, data);
}

guint
ens_process_running (void)
{
  return running_count ();
}

void
ens_process_stop_all (void)
{
  /* SIGTERM now; a process that ignores it is not waited for. The wait
   * callbacks hold the records, so they are freed with the array only
   * once nothing runs. */
  for (guint i = 0; processes && i < processes->len; i++)
    {
      EnsProcess *p = g_ptr_array_index (processes, i);
      if (p->running)
        g_subprocess_send_signal (p->process, SIGTERM);
    }
  if (processes && running_count () == 0)
    g_clear_pointer (&processes, g_ptr_array_unref);
}
