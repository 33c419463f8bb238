/* ens-manager.h — what the parts of agent-manager share (internal).
 *
 *   ens-agent-manager.c     the plugin: init, stop, describe; the kick that drives the rest
 *   ens-manager-registry.c  the registry file: agents, their settings, the dependency order
 *   ens-manager-supervise.c processes: start (after their dependencies and services), output,
 *                           exit, restart with backoff, stop
 *   ens-manager-checks.c    check commands: health checks, service checks; process groups
 *   ens-manager-ops.c       pending actions (start, stop, restart...), answered once reached
 *   ens-manager-handle.c    requests: parameters, actions, the JSON views of agents
 *
 * Ownership: everything here belongs to the Manager and lives until
 * manager_stop(); functions take their arguments (transfer none) unless
 * they say otherwise. */
#pragma once

#include <ensemble/ensemble.h>

typedef struct _Manager Manager;
typedef struct _Agent Agent;
typedef struct _Run Run;
typedef struct _Op Op;
typedef struct _Check Check;

typedef enum { ST_STOPPED, ST_STARTING, ST_RUNNING, ST_BACKOFF, ST_FAILED } AgentState;

typedef enum { RESTART_ALWAYS, RESTART_ON_FAILURE, RESTART_NEVER, RESTART_N } RestartPolicy;

/* A service an agent needs that the manager does not run (a database...):
 * known only through its check command. */
typedef struct {
  char *name;
  char **check;
  gboolean known, ok;
  char *status; /* "healthy", "unhealthy", "timeout", "error" */
  char *output;
  gint64 checked_at;
} Service;

struct _Agent {
  Manager *m;
  /* from the registry */
  char *name;
  char **command;
  char **env; /* KEY=VALUE, (transfer full) */
  char *cwd;
  char **depends_on;
  GPtrArray *services; /* Service* */
  char **health_check; /* NULL: none */
  guint health_interval_ms, health_timeout_ms;
  RestartPolicy restart;
  guint max_restarts;
  gboolean autostart;
  guint backoff_base_ms, backoff_max_ms;
  guint start_grace_ms;
  /* resolved */
  GPtrArray *deps;       /* Agent*, direct dependencies */
  GPtrArray *dependents; /* Agent*, direct dependents */
  guint topo;            /* position in dependency order */

  /* runtime */
  AgentState state;
  gboolean want;     /* should be running */
  gboolean stopping; /* SIGTERM sent, waiting for the exit */
  Run *run;          /* the current process, or NULL */
  GPid pgid;         /* of the current or last process; 0: none */
  guint gen;         /* processes spawned so far */
  gint64 started_at; /* real time, us */
  guint restarts;    /* automatic restarts since the last start by hand */
  guint failures;    /* consecutive failed runs */
  JsonNode *last_exit;
  char *last_error;
  Agent *failed_dep; /* set when it failed because a dependency did */
  guint backoff_id, kill_id, health_id, grace_id;
  gboolean health_inflight;
  guint health_gen;
  gboolean health_known, health_ok;
  gint64 health_checked_at;
  char *health_output;
  guint gate_token;   /* invalidates a pending service gate */
  guint gate_pending; /* service checks still running before a spawn */
  gboolean gate_failed;
  char *gate_error;
};

struct _Manager {
  const EnsHost *host;
  EnsPlugin *self;
  char *registry_path;
  char *socket_path; /* ENSEMBLE_SOCKET of the children */
  GPtrArray *agents; /* Agent*, in registry order */
  GPtrArray *order;  /* Agent*, in dependency order */
  GHashTable *by_name;
  GList *ops;    /* Op*, pending actions */
  guint64 next_op_serial;
  GList *checks; /* Check*, running check commands */
  guint kick_id;
  gboolean dirty;
  gboolean stopped;
};

static inline const char *
ens_manager_state_name (AgentState state)
{
  static const char *const names[] = { "stopped", "starting", "running", "backoff", "failed" };

  return names[state];
}

static inline const char *
ens_manager_restart_name (RestartPolicy policy)
{
  static const char *const names[] = { "always", "on-failure", "never" };

  return names[policy];
}

/* ---- the plugin (ens-agent-manager.c) */

/* Something changed: the next kick starts what can start and moves the
 * pending actions on. */
void ens_manager_changed (Manager *m);
/* Schedules a kick without marking a change (one is already marked). */
void ens_manager_schedule_kick (Manager *m);

/* ---- the registry (ens-manager-registry.c) */

/* Reads, validates and orders the registry at @path into @m. */
gboolean ens_manager_load_registry (Manager *m, const char *path, GError **error);
void ens_manager_agent_free (Agent *a);
/* (transfer container) everything that depends on @a, directly or not, in
 * dependency order. */
GPtrArray *ens_manager_dependents (Manager *m, Agent *a);
/* Adds @a and everything it depends on, directly or not, to the set @into. */
void ens_manager_dependency_closure (Agent *a, GHashTable *into);

/* ---- processes (ens-manager-supervise.c) */

void ens_manager_set_state (Agent *a, AgentState state);
/* Running, not stopping, and healthy if it has a health check. */
gboolean ens_manager_agent_ready (Agent *a);
/* A process, or on its way to one. */
gboolean ens_manager_agent_active (Agent *a);
/* Wants @a and everything it needs; failed or stopped ones get a fresh start. */
void ens_manager_want (Agent *a);
/* Asks @a to stop: SIGTERM to its group now, SIGKILL after the grace. */
void ens_manager_stop_agent (Agent *a);
/* Starts the wanted agents whose dependencies are ready, in order. */
void ens_manager_reconcile (Manager *m);
/* At shutdown: every process group stopped (SIGTERM, then SIGKILL after
 * the grace), late GIO callbacks detached. */
void ens_manager_stop_all (Manager *m);

/* ---- check commands (ens-manager-checks.c) */

/* ok: exit 0 within the timeout; status: "healthy", "unhealthy", "timeout"
 * or "error" (could not run); output: what it printed, trimmed. */
typedef void (*CheckFunc) (Manager *m, gpointer data, gboolean ok, const char *status, const char *output);

/* Runs @argv in @a's folder and environment; @func is called exactly once,
 * later, on the main loop — unless stop() comes first, in which case only
 * @data_free is.  Takes @data. */
void ens_manager_check_run (Manager *m, Agent *a, char **argv, guint timeout_ms, CheckFunc func, gpointer data,
                            GDestroyNotify data_free);
/* At shutdown: every running check killed, its data freed now. */
void ens_manager_checks_cancel (Manager *m);
/* (transfer full) a launcher with @a's folder and environment, each child
 * in a process group of its own. */
GSubprocessLauncher *ens_manager_launcher (Agent *a, GSubprocessFlags flags);
/* The process group of a child started by ens_manager_launcher(). */
GPid ens_manager_pgid (GSubprocess *proc);
gboolean ens_manager_group_alive (GPid pgid);
/* Like ens_manager_group_alive(), but zombies do not count. */
gboolean ens_manager_group_running (GPid pgid);
void ens_manager_group_signal (GPid pgid, int sig);
/* Health checks of a new process: the first one soon, then polled. */
void ens_manager_health_begin (Agent *a);
/* A health check's outcome, whoever ran it. */
void ens_manager_record_health (Agent *a, gboolean ok, const char *output);
void ens_manager_record_service (Service *s, gboolean ok, const char *status, const char *output);

/* ---- pending actions (ens-manager-ops.c) */

/* Each answers @responder once the agents reached the state asked for (or
 * failed to, or the request's deadline is near). */
void ens_manager_op_start (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a);
/* @dependents: the running dependents to stop first (force). */
void ens_manager_op_stop (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a, GPtrArray *dependents);
void ens_manager_op_restart (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a);
void ens_manager_op_check_dependencies (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a);
void ens_manager_op_validate (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a);
void ens_manager_op_restart_with_dependencies (Manager *m, EnsMessage *request, EnsResponder *responder, Agent *a,
                                               gboolean dependency_check, gboolean force_restart);
void ens_manager_ops_advance (Manager *m);
/* At shutdown: the pending actions dropped (the host answers them). */
void ens_manager_ops_drop (Manager *m);

/* ---- requests and answers (ens-manager-handle.c) */

void ens_manager_handle (gpointer instance, EnsMessage *request, EnsResponder *responder);
extern const char *const ens_manager_actions[];
/* (transfer full) */
JsonObject *ens_manager_entry_brief (Agent *a);
JsonObject *ens_manager_entry_full (Agent *a);
JsonNode *ens_manager_health_node (Agent *a);
JsonArray *ens_manager_names (GPtrArray *agents);
/* (transfer full) @a's last exit, or a null node */
JsonNode *ens_manager_last_exit (Agent *a);
/* (transfer full) a new object node; *@obj is its object (transfer none). */
JsonNode *ens_manager_object_node (JsonObject **obj);
/* (transfer full) @us (real time) in ISO 8601 */
char *ens_manager_iso_time (gint64 us);
/* Both take @obj / @details (transfer full). */
void ens_manager_respond_object (Manager *m, EnsResponder *responder, JsonObject *obj);
void ens_manager_respond_error (Manager *m, EnsResponder *responder, const char *code, JsonObject *details,
                                const char *fmt, ...) G_GNUC_PRINTF (5, 6);
