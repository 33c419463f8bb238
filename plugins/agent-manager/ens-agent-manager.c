/* agent-manager — supervises external agent processes ("manager" on the bus).
 *
 * The registry (the JSON file named by manager-registry-file) lists the
 * agents to run; it is validated once, at init.  Each agent runs in a process
 * group of its own (so one kill() reaches everything it starts), its output
 * goes to the daemon log line by line, and it is restarted with exponential
 * backoff when it dies, until max_restarts consecutive failures.
 *
 * Everything is driven by one "kick": any change of state schedules an idle
 * that (1) starts the agents that are wanted and whose dependencies are ready,
 * in dependency order, and (2) advances the pending actions (start, stop,
 * restart...), which answer once the processes reached the state they wait
 * for.  Process exits, output and checks arrive through GIO callbacks that
 * hold their own references and see a NULL back pointer after stop().
 *
 * This file is the plugin and the kick; ens-manager.h lists the other parts. */
#include "ens-manager.h"

#define MAX_KICK_ROUNDS 64 /* a kick repeats while a round changed something */

/* ------------------------------------------------------------ the kick */

static gboolean
kick (gpointer data)
{
  Manager *m = data;

  m->kick_id = 0;
  for (guint i = 0; i < MAX_KICK_ROUNDS; i++)
    {
      m->dirty = FALSE;
      ens_manager_reconcile (m);
      ens_manager_ops_advance (m);
      if (!m->dirty)
        break;
    }
  return G_SOURCE_REMOVE;
}

void
ens_manager_schedule_kick (Manager *m)
{
  if (m->kick_id == 0 && !m->stopped)
    m->kick_id = g_idle_add (kick, m);
}

void
ens_manager_changed (Manager *m)
{
  m->dirty = TRUE;
  ens_manager_schedule_kick (m);
}

/* ------------------------------------------------------------ plugin */

static char *
config_string (Manager *m, const char *key)
{
  g_autoptr (GVariant) v = m->host->config_get (m->self, key);

  return v && g_variant_is_of_type (v, G_VARIANT_TYPE_STRING) ? g_variant_dup_string (v, NULL) : NULL;
}

static void
manager_free (Manager *m)
{
  g_ptr_array_unref (m->order);
  g_ptr_array_unref (m->agents);
  g_hash_table_unref (m->by_name);
  g_free (m->registry_path);
  g_free (m->socket_path);
  g_free (m);
}

static gpointer
manager_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  Manager *m;
  g_autofree char *sock_dir = NULL;
  g_autofree char *sock_name = NULL;

  if (!ENS_STRUCT_HAS (host, EnsHost, json_to_string))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old");
      return NULL;
    }
  m = g_new0 (Manager, 1);
  m->host = host;
  m->self = self;
  m->agents = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_manager_agent_free);
  m->order = g_ptr_array_new ();
  m->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  sock_dir = config_string (m, "socket-dir");
  sock_name = config_string (m, "native-socket");
  if (sock_dir && *sock_dir && sock_name && *sock_name)
    m->socket_path = g_build_filename (sock_dir, sock_name, NULL);
  m->registry_path = config_string (m, "manager-registry-file");
  if (m->registry_path && *m->registry_path)
    {
      if (!ens_manager_load_registry (m, m->registry_path, error))
        {
          manager_free (m);
          return NULL;
        }
      ENS_LOG (host, self, G_LOG_LEVEL_MESSAGE, "registry %s: %u agent(s)", m->registry_path, m->agents->len);
    }
  for (guint i = 0; i < m->order->len; i++)
    {
      Agent *a = g_ptr_array_index (m->order, i);
      if (a->autostart)
        ens_manager_want (a); /* the first kick starts them, in dependency order */
    }
  return m;
}

static void
manager_stop (gpointer instance)
{
  Manager *m = instance;

  m->stopped = TRUE;
  g_clear_handle_id (&m->kick_id, g_source_remove);
  /* Pending actions: the host answers their requests (AGENT_GONE). */
  ens_manager_ops_drop (m);
  ens_manager_checks_cancel (m);
  ens_manager_stop_all (m);
  manager_free (m);
}

static JsonNode *
manager_describe (gpointer instance)
{
  Manager *m = instance;
  JsonObject *obj;
  JsonNode *node = ens_manager_object_node (&obj);
  guint running = 0;

  for (guint i = 0; i < m->agents->len; i++)
    running += ((Agent *) g_ptr_array_index (m->agents, i))->run != NULL;
  json_object_set_string_member (obj, "registry", m->registry_path ? m->registry_path : "");
  json_object_set_int_member (obj, "agents", m->agents->len);
  json_object_set_int_member (obj, "running", running);
  return node;
}

static const EnsAgentVTable manager_vtable = {
  .struct_size = sizeof (EnsAgentVTable),
  .name = "manager",
  .actions = ens_manager_actions,
  .handle = ens_manager_handle,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_AGENT, "agent-manager", "1.0", "Supervises external agent processes",
                   ENS_PLUGIN_FLAG_NONE, manager_init, manager_stop, manager_describe, &manager_vtable)
