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
 * Actions: list, status, start, stop, restart, check_dependencies,
 * validate_service_health, restart_with_dependencies. */
#include <ensemble/ensemble.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define DEFAULT_MAX_RESTARTS 5
#define DEFAULT_BACKOFF_BASE_MS 200
#define DEFAULT_BACKOFF_MAX_MS 10000
#define DEFAULT_HEALTH_INTERVAL_MS 5000
#define DEFAULT_HEALTH_TIMEOUT_MS 5000
#define DEFAULT_START_GRACE_MS 500 /* up this long without a health check: running */
#define STARTING_HEALTH_POLL_MS 100 /* health polling until the first pass */
#define STABLE_RUN_US (10 * G_USEC_PER_SEC) /* a run this long resets the failure count */
#define STOP_GRACE_MS 2000                   /* SIGTERM, then SIGKILL after this */
#define READ_SIZE 4096
#define MAX_LINE 8192  /* longer output lines are logged in pieces */
#define MAX_OUTPUT 1024 /* kept of a check's output */

typedef struct _Manager Manager;
typedef struct _Agent Agent;

typedef enum { ST_STOPPED, ST_STARTING, ST_RUNNING, ST_BACKOFF, ST_FAILED } AgentState;
static const char *const state_names[] = { "stopped", "starting", "running", "backoff", "failed" };

typedef enum { RESTART_ALWAYS, RESTART_ON_FAILURE, RESTART_NEVER } RestartPolicy;
static const char *const restart_names[] = { "always", "on-failure", "never" };

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

/* One process of an agent.  Referenced by the agent while current and by
 * each pending GIO operation; @agent is NULL once stop() detached it. */
typedef struct {
  gint ref;
  Agent *agent;
  GSubprocess *proc;
  GCancellable *cancel;
  GString *out, *err; /* partial lines */
} Run;

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

typedef struct _Op Op;

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

/* ------------------------------------------------------------ helpers */

static char *
iso_time (gint64 us)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
  g_autoptr (GDateTime) t2 = t ? g_date_time_add (t, us % G_USEC_PER_SEC) : NULL;

  return t2 ? g_date_time_format_iso8601 (t2) : g_strdup ("");
}

static JsonNode *
object_node (JsonObject **obj)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  *obj = json_object_new ();
  json_node_take_object (node, *obj);
  return node;
}

static JsonArray *
names_array (GPtrArray *agents)
{
  JsonArray *array = json_array_new ();

  for (guint i = 0; agents && i < agents->len; i++)
    json_array_add_string_element (array, ((Agent *) g_ptr_array_index (agents, i))->name);
  return array;
}

static gboolean
group_alive (GPid pgid)
{
  return pgid > 0 && (kill (-pgid, 0) == 0 || errno == EPERM);
}

/* Like group_alive(), but zombies do not count: a member that died after
 * its parent waits for init to reap it, which can take a while (and is no
 * reason to wait at shutdown).  Reads /proc where there is one. */
static gboolean
group_running (GPid pgid)
{
  g_autoptr (GDir) dir = NULL;
  const char *entry;

  if (!group_alive (pgid))
    return FALSE;
  dir = g_dir_open ("/proc", 0, NULL);
  if (dir == NULL)
    return TRUE;
  while ((entry = g_dir_read_name (dir)))
    {
      g_autofree char *path = NULL;
      g_autofree char *stat = NULL;
      const char *rp;
      char state;
      long ppid, pgrp;

      if (!g_ascii_isdigit (entry[0]))
        continue;
      path = g_build_filename ("/proc", entry, "stat", NULL);
      if (!g_file_get_contents (path, &stat, NULL, NULL) || (rp = strrchr (stat, ')')) == NULL)
        continue;
      /* "pid (comm) state ppid pgrp ..." — comm may hold anything, hence the last ')' */
      if (sscanf (rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3 && pgrp == (long) pgid && state != 'Z')
        return TRUE;
    }
  return FALSE;
}

static void
group_signal (GPid pgid, int sig)
{
  if (pgid > 0) /* never kill(0) or kill(-1) */
    kill (-pgid, sig);
}

static gboolean
agent_ready (Agent *a)
{
  return a->state == ST_RUNNING && a->run && !a->stopping && (a->health_check == NULL || a->health_ok);
}

static gboolean
agent_active (Agent *a)
{
  return a->run != NULL || a->state == ST_STARTING || a->state == ST_RUNNING || a->state == ST_BACKOFF;
}

static void schedule_kick (Manager *m);

static void
set_state (Agent *a, AgentState state)
{
  if (a->state == state)
    return;
  a->state = state;
  a->m->dirty = TRUE;
  schedule_kick (a->m);
}

/* Everything that depends on @a, directly or not, in dependency order. */
static GPtrArray *
transitive_dependents (Manager *m, Agent *a)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  GPtrArray *out = g_ptr_array_new ();

  g_hash_table_add (seen, a);
  for (guint i = a->topo + 1; i < m->order->len; i++)
    {
      Agent *x = g_ptr_array_index (m->order, i);
      for (guint j = 0; j < x->deps->len; j++)
        if (g_hash_table_contains (seen, g_ptr_array_index (x->deps, j)))
          {
            g_hash_table_add (seen, x);
            g_ptr_array_add (out, x);
            break;
          }
    }
  return out;
}

/* @a and everything it depends on, directly or not. */
static void
dependency_closure (Agent *a, GHashTable *into)
{
  if (!g_hash_table_add (into, a))
    return;
  for (guint i = 0; i < a->deps->len; i++)
    dependency_closure (g_ptr_array_index (a->deps, i), into);
}

/* ------------------------------------------------------------ check commands */

/* ok: exit 0 within the timeout; status: "healthy", "unhealthy", "timeout"
 * or "error" (could not run); output: what it printed, trimmed. */
typedef void (*CheckFunc) (Manager *m, gpointer data, gboolean ok, const char *status, const char *output);

typedef struct {
  Manager *m; /* NULL once stop() detached it */
  GSubprocess *proc;
  GCancellable *cancel;
  GPid pgid;
  guint timeout_id, idle_id;
  gboolean timed_out;
  char *spawn_error;
  CheckFunc func;
  gpointer data;
  GDestroyNotify data_free;
} Check;

static void
check_free (Check *c)
{
  g_clear_handle_id (&c->timeout_id, g_source_remove);
  g_clear_handle_id (&c->idle_id, g_source_remove);
  if (c->data_free)
    c->data_free (c->data);
  g_clear_object (&c->proc);
  g_clear_object (&c->cancel);
  g_free (c->spawn_error);
  g_free (c);
}

static void
check_finish (Check *c, gboolean ok, const char *status, const char *output)
{
  Manager *m = c->m;

  m->checks = g_list_remove (m->checks, c);
  g_clear_handle_id (&c->timeout_id, g_source_remove);
  c->func (m, c->data, ok, status, output);
  check_free (c);
}

static gboolean
check_timeout (gpointer data)
{
  Check *c = data;

  c->timeout_id = 0;
  c->timed_out = TRUE;
  group_signal (c->pgid, SIGKILL); /* communicate() then sees EOF and the exit */
  return G_SOURCE_REMOVE;
}

static gboolean
check_spawn_failed (gpointer data)
{
  Check *c = data;

  c->idle_id = 0;
  check_finish (c, FALSE, "error", c->spawn_error);
  return G_SOURCE_REMOVE;
}

static char *
trim_output (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text ? text : "", -1);
  char *s = g_strstrip (valid);
  glong len = g_utf8_strlen (s, -1);

  if (len > MAX_OUTPUT)
    return g_strconcat ("…", g_utf8_offset_to_pointer (s, len - MAX_OUTPUT), NULL);
  return g_strdup (s);
}

static void
check_done (GObject *source, GAsyncResult *res, gpointer data)
{
  Check *c = data;
  g_autofree char *out = NULL;
  g_autofree char *trimmed = NULL;
  g_autoptr (GError) error = NULL;
  gboolean finished = g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), res, &out, NULL, &error);
  gboolean ok;
  const char *status;

  if (c->m == NULL)
    {
      check_free (c);
      return;
    }
  if (!finished && out == NULL && error)
    out = g_strdup (error->message);
  trimmed = trim_output (out);
  ok = finished && !c->timed_out && g_subprocess_get_if_exited (c->proc) &&
       g_subprocess_get_exit_status (c->proc) == 0;
  status = ok ? "healthy" : c->timed_out ? "timeout" : "unhealthy";
  check_finish (c, ok, status, trimmed);
}

static void
child_setup (gpointer data)
{
  (void) data;
  setpgid (0, 0); /* a group of its own: one kill() reaches all it starts */
}

/* (transfer full) a launcher with the agent's folder and environment. */
static GSubprocessLauncher *
agent_launcher (Agent *a, GSubprocessFlags flags)
{
  GSubprocessLauncher *l = g_subprocess_launcher_new (flags);

  if (a->cwd)
    g_subprocess_launcher_set_cwd (l, a->cwd);
  for (guint i = 0; a->env && a->env[i]; i++)
    {
      g_auto (GStrv) kv = g_strsplit (a->env[i], "=", 2);
      g_subprocess_launcher_setenv (l, kv[0], kv[1] ? kv[1] : "", TRUE);
    }
  if (a->m->socket_path)
    g_subprocess_launcher_setenv (l, "ENSEMBLE_SOCKET", a->m->socket_path, TRUE);
  g_subprocess_launcher_setenv (l, "ENSEMBLE_AGENT_NAME", a->name, TRUE);
  g_subprocess_launcher_set_child_setup (l, child_setup, NULL, NULL);
  return l;
}

/* Runs @argv in @a's folder and environment; @func is called exactly once,
 * later, on the main loop — unless stop() comes first, in which case only
 * @data_free is. */
static void
check_run (Manager *m, Agent *a, char **argv, guint timeout_ms, CheckFunc func, gpointer data,
           GDestroyNotify data_free)
{
  g_autoptr (GSubprocessLauncher) l = agent_launcher (a, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autoptr (GError) error = NULL;
  Check *c = g_new0 (Check, 1);

  c->m = m;
  c->func = func;
  c->data = data;
  c->data_free = data_free;
  c->cancel = g_cancellable_new ();
  m->checks = g_list_prepend (m->checks, c);
  c->proc = g_subprocess_launcher_spawnv (l, (const char *const *) argv, &error);
  if (c->proc == NULL)
    {
      c->spawn_error = g_strdup (error->message);
      c->idle_id = g_idle_add (check_spawn_failed, c);
      return;
    }
  {
    const char *ident = g_subprocess_get_identifier (c->proc);
    c->pgid = ident ? (GPid) atoi (ident) : 0;
  }
  c->timeout_id = g_timeout_add (MAX (timeout_ms, 1), check_timeout, c);
  g_subprocess_communicate_utf8_async (c->proc, NULL, c->cancel, check_done, c);
}

/* ------------------------------------------------------------ processes */

static Run *
run_ref (Run *r)
{
  g_atomic_int_inc (&r->ref);
  return r;
}

static void
run_unref (Run *r)
{
  if (!g_atomic_int_dec_and_test (&r->ref))
    return;
  g_clear_object (&r->proc);
  g_clear_object (&r->cancel);
  g_string_free (r->out, TRUE);
  g_string_free (r->err, TRUE);
  g_free (r);
}

static void
log_line (Agent *a, const char *line, gsize len)
{
  g_autofree char *text = g_utf8_make_valid (line, (gssize) len);
  gsize n = strlen (text);

  if (n > 0 && text[n - 1] == '\r')
    text[n - 1] = '\0';
  ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: %s", a->name, text);
}

/* Logs the complete lines of @buf (all of it at @eof). */
static void
flush_lines (Agent *a, GString *buf, gboolean eof)
{
  gsize start = 0;

  for (;;)
    {
      const char *nl = memchr (buf->str + start, '\n', buf->len - start);
      gsize end;

      if (nl)
        end = (gsize) (nl - buf->str);
      else if (buf->len - start >= MAX_LINE || (eof && buf->len > start))
        end = buf->len;
      else
        break;
      log_line (a, buf->str + start, end - start);
      start = nl ? end + 1 : end;
    }
  g_string_erase (buf, 0, (gssize) start);
}

static void on_output (GObject *source, GAsyncResult *res, gpointer data);

static void
read_more (Run *r, GInputStream *stream)
{
  g_input_stream_read_bytes_async (stream, READ_SIZE, G_PRIORITY_DEFAULT, r->cancel, on_output, r);
}

static void
on_output (GObject *source, GAsyncResult *res, gpointer data)
{
  Run *r = data;
  g_autoptr (GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), res, NULL);
  GString *buf = (GInputStream *) source == g_subprocess_get_stdout_pipe (r->proc) ? r->out : r->err;
  gsize size = bytes ? g_bytes_get_size (bytes) : 0;

  if (r->agent == NULL)
    {
      run_unref (r);
      return;
    }
  if (size == 0)
    {
      flush_lines (r->agent, buf, TRUE);
      run_unref (r);
      return;
    }
  g_string_append_len (buf, g_bytes_get_data (bytes, NULL), (gssize) size);
  flush_lines (r->agent, buf, FALSE);
  read_more (r, G_INPUT_STREAM (source)); /* keeps the reference */
}

static void spawn_agent (Agent *a);

static gboolean
backoff_done (gpointer data)
{
  Agent *a = data;

  a->backoff_id = 0;
  if (a->want)
    set_state (a, ST_STARTING);
  return G_SOURCE_REMOVE;
}

static gboolean
kill_timer (gpointer data)
{
  Agent *a = data;

  a->kill_id = 0;
  if (group_alive (a->pgid))
    {
      ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: still running %d ms after SIGTERM, killing it",
               a->name, STOP_GRACE_MS);
      group_signal (a->pgid, SIGKILL);
    }
  if (a->run == NULL) /* leftovers of a stopped run: gone now */
    a->pgid = 0;
  return G_SOURCE_REMOVE;
}

static void
give_up (Agent *a)
{
  Manager *m = a->m;
  g_autofree char *exit_text = a->last_exit ? m->host->json_to_string (a->last_exit) : g_strdup ("null");
  JsonObject *obj;
  g_autoptr (JsonNode) ev = object_node (&obj);

  char *why = a->last_error;

  a->want = FALSE;
  a->last_error = g_strdup_printf ("gave up after %u restarts (last failure: %s)", a->restarts,
                                   why ? why : "unknown");
  g_free (why);
  set_state (a, ST_FAILED);
  ENS_LOG (m->host, m->self, G_LOG_LEVEL_WARNING, "%s: gave up after %u restarts (last exit %s)", a->name,
           a->restarts, exit_text);
  json_object_set_string_member (obj, "name", a->name);
  json_object_set_int_member (obj, "restarts", a->restarts);
  json_object_set_member (obj, "last_exit", a->last_exit ? json_node_copy (a->last_exit) : json_node_new (JSON_NODE_NULL));
  m->host->publish (m->self, "ensemble.manager.gave_up", ev, NULL);
}

/* A run ended (or could not start) without being asked to: restart it with
 * backoff if its policy says so, or give up. */
static void
handle_failure (Agent *a, gboolean clean)
{
  gboolean restart = a->want && (a->restart == RESTART_ALWAYS || (a->restart == RESTART_ON_FAILURE && !clean));
  guint delay;

  if (!restart)
    {
      a->want = FALSE;
      if (!clean && !a->last_error)
        a->last_error = g_strdup ("exited with a failure");
      set_state (a, clean ? ST_STOPPED : ST_FAILED);
      return;
    }
  if (a->failures >= a->max_restarts)
    {
      give_up (a);
      return;
    }
  a->failures++;
  a->restarts++;
  delay = a->backoff_base_ms;
  for (guint i = 1; i < a->failures && delay < a->backoff_max_ms; i++)
    delay *= 2;
  delay = MIN (delay, a->backoff_max_ms);
  ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: restarting in %u ms (restart %u of at most %u)",
           a->name, delay, a->failures, a->max_restarts);
  set_state (a, ST_BACKOFF);
  g_clear_handle_id (&a->backoff_id, g_source_remove);
  a->backoff_id = g_timeout_add (delay, backoff_done, a);
}

static void
set_last_exit_error (Agent *a, const char *message)
{
  JsonObject *obj;

  g_clear_pointer (&a->last_exit, json_node_unref);
  a->last_exit = object_node (&obj);
  json_object_set_string_member (obj, "error", message);
  {
    g_autofree char *at = iso_time (g_get_real_time ());
    json_object_set_string_member (obj, "at", at);
  }
}

static void
on_exited (GObject *source, GAsyncResult *res, gpointer data)
{
  Run *r = data;
  Agent *a = r->agent;
  gboolean waited = g_subprocess_wait_finish (G_SUBPROCESS (source), res, NULL);
  GSubprocess *p = r->proc;
  JsonObject *obj;
  gboolean clean;
  gint64 now = g_get_real_time ();
  g_autofree char *at = iso_time (now);
  g_autofree char *desc = NULL;

  if (a == NULL || !waited || a->run != r)
    {
      run_unref (r);
      return;
    }
  g_clear_pointer (&a->last_exit, json_node_unref);
  a->last_exit = object_node (&obj);
  if (g_subprocess_get_if_signaled (p))
    {
      json_object_set_int_member (obj, "signal", g_subprocess_get_term_sig (p));
      desc = g_strdup_printf ("killed by signal %d", g_subprocess_get_term_sig (p));
      clean = FALSE;
    }
  else
    {
      int code = g_subprocess_get_exit_status (p);
      json_object_set_int_member (obj, "code", code);
      desc = g_strdup_printf ("exited with status %d", code);
      clean = code == 0;
    }
  json_object_set_string_member (obj, "at", at);
  json_object_set_int_member (obj, "ran_ms", (now - a->started_at) / 1000);

  a->run = NULL;
  run_unref (r); /* the agent's; the wait's is dropped below */
  g_clear_handle_id (&a->health_id, g_source_remove);
  g_clear_handle_id (&a->grace_id, g_source_remove);
  a->health_known = FALSE;
  if (a->stopping)
    {
      a->stopping = FALSE;
      if (!group_alive (a->pgid))
        {
          g_clear_handle_id (&a->kill_id, g_source_remove);
          a->pgid = 0;
        }
      ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: stopped (%s)", a->name, desc);
      /* restart: wanted again while it was stopping */
      set_state (a, a->want ? ST_STARTING : ST_STOPPED);
      a->m->dirty = TRUE;
      schedule_kick (a->m);
    }
  else
    {
      /* Whatever it started is part of the dead run: no leftovers pile up
       * across restarts. */
      group_signal (a->pgid, SIGKILL);
      a->pgid = 0; /* never signal a group id that may be reused */
      ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: %s", a->name, desc);
      if (now - a->started_at >= STABLE_RUN_US)
        a->failures = 0;
      g_clear_pointer (&a->last_error, g_free);
      if (!clean)
        a->last_error = g_strdup (desc);
      handle_failure (a, clean);
      a->m->dirty = TRUE;
      schedule_kick (a->m);
    }
  run_unref (r);
}

/* ------------------------------------------------------------ health */

static void health_schedule (Agent *a);

static void
record_health (Agent *a, gboolean ok, const char *output)
{
  if (a->health_known && a->health_ok && !ok)
    ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: health check failing: %s", a->name, output);
  a->health_known = TRUE;
  a->health_ok = ok;
  a->health_checked_at = g_get_real_time ();
  g_free (a->health_output);
  a->health_output = g_strdup (output);
  if (ok && a->state == ST_STARTING && a->run && !a->stopping)
    {
      ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: healthy, running", a->name);
      set_state (a, ST_RUNNING);
    }
  a->m->dirty = TRUE;
  schedule_kick (a->m);
}

static void
on_health (Manager *m, gpointer data, gboolean ok, const char *status, const char *output)
{
  Agent *a = data;

  (void) m;
  (void) status;
  a->health_inflight = FALSE;
  if (a->run && a->health_gen == a->gen)
    record_health (a, ok, output);
  if (a->run && a->health_id == 0)
    health_schedule (a);
}

static gboolean
health_tick (gpointer data)
{
  Agent *a = data;

  a->health_id = 0;
  if (a->run == NULL)
    return G_SOURCE_REMOVE;
  if (a->health_inflight)
    {
      health_schedule (a); /* a check of an earlier process is still running */
      return G_SOURCE_REMOVE;
    }
  a->health_inflight = TRUE;
  a->health_gen = a->gen;
  check_run (a->m, a, a->health_check, a->health_timeout_ms, on_health, a, NULL);
  return G_SOURCE_REMOVE;
}

static void
health_schedule (Agent *a)
{
  guint delay = a->state == ST_STARTING ? MIN (a->health_interval_ms, STARTING_HEALTH_POLL_MS) : a->health_interval_ms;

  if (a->health_check == NULL || a->health_id)
    return;
  a->health_id = g_timeout_add (delay, health_tick, a);
}

/* ------------------------------------------------------------ starting */

/* Without a health check, a process that stayed up this long is running. */
static gboolean
grace_done (gpointer data)
{
  Agent *a = data;

  a->grace_id = 0;
  if (a->run && a->state == ST_STARTING && !a->stopping)
    {
      ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: up for %u ms, running", a->name, a->start_grace_ms);
      set_state (a, ST_RUNNING);
    }
  return G_SOURCE_REMOVE;
}

static void
spawn_agent (Agent *a)
{
  Manager *m = a->m;
  g_autoptr (GSubprocessLauncher) l = agent_launcher (a, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GError) error = NULL;
  Run *r;

  a->gen++;
  a->started_at = g_get_real_time ();
  a->health_known = FALSE;
  r = g_new0 (Run, 1);
  r->ref = 1; /* the agent's */
  r->agent = a;
  r->cancel = g_cancellable_new ();
  r->out = g_string_new (NULL);
  r->err = g_string_new (NULL);
  r->proc = g_subprocess_launcher_spawnv (l, (const char *const *) a->command, &error);
  if (r->proc == NULL)
    {
      ENS_LOG (m->host, m->self, G_LOG_LEVEL_WARNING, "%s: cannot start: %s", a->name, error->message);
      run_unref (r);
      g_free (a->last_error);
      a->last_error = g_strdup_printf ("cannot start: %s", error->message);
      set_last_exit_error (a, a->last_error);
      handle_failure (a, FALSE);
      return;
    }
  {
    const char *ident = g_subprocess_get_identifier (r->proc);
    a->pgid = ident ? (GPid) atoi (ident) : 0;
  }
  a->run = r;
  ENS_LOG (m->host, m->self, G_LOG_LEVEL_MESSAGE, "%s: started (pid %d)", a->name, (int) a->pgid);
  read_more (run_ref (r), g_subprocess_get_stdout_pipe (r->proc));
  read_more (run_ref (r), g_subprocess_get_stderr_pipe (r->proc));
  g_subprocess_wait_async (r->proc, r->cancel, on_exited, run_ref (r));
  if (a->health_check)
    {
      set_state (a, ST_STARTING);
      g_clear_handle_id (&a->health_id, g_source_remove);
      a->health_id = g_timeout_add (20, health_tick, a);
    }
  else if (a->start_grace_ms > 0)
    {
      set_state (a, ST_STARTING);
      g_clear_handle_id (&a->grace_id, g_source_remove);
      a->grace_id = g_timeout_add (a->start_grace_ms, grace_done, a);
    }
  else
    set_state (a, ST_RUNNING);
  m->dirty = TRUE;
}

typedef struct {
  Agent *agent;
  guint token;
  Service *service;
} GateCheck;

static void
record_service (Service *s, gboolean ok, const char *status, const char *output)
{
  s->known = TRUE;
  s->ok = ok;
  g_free (s->status);
  s->status = g_strdup (status);
  g_free (s->output);
  s->output = g_strdup (output);
  s->checked_at = g_get_real_time ();
}

static void
on_gate_check (Manager *m, gpointer data, gboolean ok, const char *status, const char *output)
{
  GateCheck *g = data;
  Agent *a = g->agent;

  (void) m;
  record_service (g->service, ok, status, output);
  if (g->token != a->gate_token)
    return;
  if (!ok && !a->gate_failed)
    {
      a->gate_failed = TRUE;
      g_free (a->gate_error);
      a->gate_error = g_strdup_printf ("service \"%s\" is %s%s%s", g->service->name, status,
                                       output && *output ? ": " : "", output ? output : "");
    }
  if (--a->gate_pending > 0)
    return;
  if (!a->want || a->state != ST_STARTING || a->run)
    return;
  if (a->gate_failed)
    {
      ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_WARNING, "%s: not started: %s", a->name, a->gate_error);
      g_free (a->last_error);
      a->last_error = g_strdup (a->gate_error);
      set_last_exit_error (a, a->gate_error);
      handle_failure (a, FALSE);
    }
  else
    spawn_agent (a);
  a->m->dirty = TRUE;
  schedule_kick (a->m);
}

/* Starts @a once its dependencies are ready: its services are checked
 * first, then it is spawned. */
static void
try_start (Agent *a)
{
  for (guint i = 0; i < a->deps->len; i++)
    {
      Agent *d = g_ptr_array_index (a->deps, i);

      if (d->state == ST_FAILED || (d->state == ST_STOPPED && !d->want))
        {
          a->want = FALSE;
          a->failed_dep = d;
          g_free (a->last_error);
          a->last_error = g_strdup_printf ("dependency \"%s\" is %s", d->name, state_names[d->state]);
          ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_WARNING, "%s: not started: %s", a->name, a->last_error);
          set_state (a, ST_FAILED);
          return;
        }
      if (!agent_ready (d))
        return;
    }
  if (a->services->len == 0)
    {
      spawn_agent (a);
      return;
    }
  a->gate_token++;
  a->gate_pending = a->services->len;
  a->gate_failed = FALSE;
  for (guint i = 0; i < a->services->len; i++)
    {
      GateCheck *g = g_new0 (GateCheck, 1);
      Service *s = g_ptr_array_index (a->services, i);

      g->agent = a;
      g->token = a->gate_token;
      g->service = s;
      check_run (a->m, a, s->check, a->health_timeout_ms, on_gate_check, g, g_free);
    }
}

static void
reconcile (Manager *m)
{
  for (guint i = 0; i < m->order->len; i++)
    {
      Agent *a = g_ptr_array_index (m->order, i);

      if (a->want && a->state == ST_STARTING && a->run == NULL && a->gate_pending == 0)
        try_start (a);
    }
}

/* Wants @a and everything it needs; failed or stopped ones get a fresh start. */
static void
want_agent (Agent *a)
{
  g_autoptr (GHashTable) closure = g_hash_table_new (NULL, NULL);
  GHashTableIter iter;
  gpointer key;

  dependency_closure (a, closure);
  g_hash_table_iter_init (&iter, closure);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      Agent *x = key;

      x->want = TRUE;
      if (x->state == ST_STOPPED || x->state == ST_FAILED || x->state == ST_BACKOFF)
        {
          g_clear_handle_id (&x->backoff_id, g_source_remove);
          if (x->state != ST_BACKOFF)
            {
              x->restarts = 0;
              x->failures = 0;
            }
          x->failed_dep = NULL;
          g_clear_pointer (&x->last_error, g_free);
          if (!x->stopping)
            set_state (x, ST_STARTING);
        }
    }
  a->m->dirty = TRUE;
  schedule_kick (a->m);
}

/* Asks @a to stop: SIGTERM to its group now, SIGKILL after the grace. */
static void
stop_agent (Agent *a)
{
  a->want = FALSE;
  a->gate_token++; /* a pending service gate no longer spawns it */
  a->gate_pending = 0;
  g_clear_handle_id (&a->backoff_id, g_source_remove);
  if (a->run)
    {
      if (!a->stopping)
        {
          a->stopping = TRUE;
          ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: stopping (SIGTERM to group %d)", a->name,
                   (int) a->pgid);
          group_signal (a->pgid, SIGTERM);
          g_clear_handle_id (&a->kill_id, g_source_remove);
          a->kill_id = g_timeout_add (STOP_GRACE_MS, kill_timer, a);
        }
    }
  else
    set_state (a, ST_STOPPED);
  a->m->dirty = TRUE;
  schedule_kick (a->m);
}

/* ------------------------------------------------------------ answers */

static JsonNode *
health_node (Agent *a)
{
  JsonObject *obj;
  JsonNode *node = object_node (&obj);

  if (a->health_known)
    {
      g_autofree char *at = iso_time (a->health_checked_at);
      json_object_set_boolean_member (obj, "ok", a->health_ok);
      json_object_set_string_member (obj, "checked_at", at);
      if (a->health_output && *a->health_output)
        json_object_set_string_member (obj, "output", a->health_output);
    }
  else
    {
      json_object_set_null_member (obj, "ok");
      json_object_set_null_member (obj, "checked_at");
    }
  return node;
}

static JsonObject *
entry_brief (Agent *a)
{
  JsonObject *obj = json_object_new ();
  JsonArray *deps = json_array_new ();

  json_object_set_string_member (obj, "name", a->name);
  json_object_set_string_member (obj, "status", state_names[a->state]);
  if (a->run)
    json_object_set_int_member (obj, "pid", a->pgid);
  json_object_set_int_member (obj, "restarts", a->restarts);
  for (guint i = 0; a->depends_on[i]; i++)
    json_array_add_string_element (deps, a->depends_on[i]);
  json_object_set_array_member (obj, "depends_on", deps);
  if (a->health_check && a->run && a->health_known)
    json_object_set_boolean_member (obj, "healthy", a->health_ok);
  return obj;
}

static JsonObject *
entry_full (Agent *a)
{
  JsonObject *obj = entry_brief (a);
  JsonArray *cmd = json_array_new ();
  JsonArray *services = json_array_new ();

  if (a->run)
    {
      g_autofree char *at = iso_time (a->started_at);
      json_object_set_string_member (obj, "started_at", at);
    }
  else
    json_object_set_null_member (obj, "started_at");
  json_object_set_member (obj, "last_exit", a->last_exit ? json_node_copy (a->last_exit) : json_node_new (JSON_NODE_NULL));
  if (a->health_check)
    json_object_set_member (obj, "health", health_node (a));
  if (a->stopping)
    json_object_set_boolean_member (obj, "stopping", TRUE);
  if (a->last_error)
    json_object_set_string_member (obj, "last_error", a->last_error);
  json_object_set_int_member (obj, "consecutive_failures", a->failures);
  json_object_set_int_member (obj, "max_restarts", a->max_restarts);
  json_object_set_string_member (obj, "restart", restart_names[a->restart]);
  json_object_set_boolean_member (obj, "autostart", a->autostart);
  for (guint i = 0; a->command[i]; i++)
    json_array_add_string_element (cmd, a->command[i]);
  json_object_set_array_member (obj, "command", cmd);
  if (a->cwd)
    json_object_set_string_member (obj, "cwd", a->cwd);
  json_object_set_array_member (obj, "dependents", names_array (a->dependents));
  for (guint i = 0; i < a->services->len; i++)
    {
      Service *s = g_ptr_array_index (a->services, i);
      JsonObject *so = json_object_new ();

      json_object_set_string_member (so, "name", s->name);
      if (s->known)
        {
          g_autofree char *at = iso_time (s->checked_at);
          json_object_set_boolean_member (so, "ok", s->ok);
          json_object_set_string_member (so, "status", s->status);
          json_object_set_string_member (so, "checked_at", at);
        }
      else
        json_object_set_null_member (so, "ok");
      json_array_add_object_element (services, so);
    }
  json_object_set_array_member (obj, "services", services);
  return obj;
}

static void
respond_object (Manager *m, EnsResponder *responder, JsonObject *obj)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (node, obj);
  m->host->respond (responder, node);
  json_node_unref (node);
}

static void
respond_error (Manager *m, EnsResponder *responder, const char *code, JsonObject *details, const char *fmt, ...)
  G_GNUC_PRINTF (5, 6);

static void
respond_error (Manager *m, EnsResponder *responder, const char *code, JsonObject *details, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *message = NULL;
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  va_start (ap, fmt);
  message = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  json_node_take_object (node, details ? details : json_object_new ());
  m->host->respond_error (responder, code, message, node);
}

static void
invalid_param (Manager *m, EnsResponder *responder, const char *field, const char *expected)
{
  JsonObject *d = json_object_new ();

  json_object_set_string_member (d, "field", field);
  json_object_set_string_member (d, "expected", expected);
  respond_error (m, responder, ENS_ERR_INVALID_PARAMETERS, d, "invalid parameter \"%s\": expected %s", field, expected);
}

/* ------------------------------------------------------------ pending actions */

typedef enum { OP_START, OP_STOP, OP_RESTART, OP_RESTART_DEPS, OP_CHECK_DEPS, OP_VALIDATE } OpKind;
typedef enum { PHASE_CHECK, PHASE_STOP, PHASE_START, PHASE_DONE } OpPhase;

struct _Op {
  Manager *m;
  guint64 serial; /* checks find their op by it: the op may end first */
  EnsResponder *responder;
  OpKind kind;
  OpPhase phase;
  Agent *target;
  GPtrArray *stop_list; /* Agent*, stopped one after the other */
  guint stop_idx;
  GPtrArray *start_list; /* Agent*, waited for until ready */
  GArray *min_gen;       /* per start_list entry: ready with a newer process */
  GPtrArray *skipped;
  guint checks_pending;
  JsonArray *dep_results; /* check phase: one object per dependency */
  gboolean healthy;       /* validate */
  gboolean dependency_check, force_restart;
  guint timeout_id;
};

static void
op_free (Op *op)
{
  g_clear_handle_id (&op->timeout_id, g_source_remove);
  g_clear_pointer (&op->stop_list, g_ptr_array_unref);
  g_clear_pointer (&op->start_list, g_ptr_array_unref);
  g_clear_pointer (&op->min_gen, g_array_unref);
  g_clear_pointer (&op->skipped, g_ptr_array_unref);
  g_clear_pointer (&op->dep_results, json_array_unref);
  g_free (op);
}

static void
op_end (Op *op)
{
  op->phase = PHASE_DONE;
  op->m->ops = g_list_remove (op->m->ops, op);
  op_free (op);
}

static gboolean
op_timeout (gpointer data)
{
  Op *op = data;
  JsonObject *d = json_object_new ();
  JsonArray *waiting = json_array_new ();

  op->timeout_id = 0;
  for (guint i = 0; op->start_list && i < op->start_list->len; i++)
    json_array_add_object_element (waiting, entry_brief (g_ptr_array_index (op->start_list, i)));
  json_object_set_string_member (d, "agent_name", op->target->name);
  json_object_set_array_member (d, "agents", waiting);
  respond_error (op->m, op->responder, ENS_ERR_TIMEOUT, d, "agent \"%s\" did not reach the state asked for in time (%s)",
                 op->target->name, state_names[op->target->state]);
  op_end (op);
  return G_SOURCE_REMOVE;
}

static Op *
op_new (Manager *m, EnsMessage *request, EnsResponder *responder, OpKind kind, Agent *target)
{
  Op *op = g_new0 (Op, 1);
  guint timeout_ms = request->timeout_ms;

  if (timeout_ms == 0)
    {
      g_autoptr (GVariant) v = m->host->config_get (m->self, "request-timeout-ms");
      timeout_ms = v && g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32 (v) : 30000;
    }
  op->m = m;
  op->serial = ++m->next_op_serial;
  op->responder = responder;
  op->kind = kind;
  op->target = target;
  op->phase = PHASE_CHECK;
  op->skipped = g_ptr_array_new ();
  /* Answer a little before the core's deadline, with the state reached. */
  op->timeout_id = g_timeout_add (timeout_ms > 500 ? timeout_ms - 250 : timeout_ms, op_timeout, op);
  m->ops = g_list_append (m->ops, op);
  return op;
}

static Op *
op_lookup (Manager *m, guint64 serial)
{
  for (GList *l = m->ops; l; l = l->next)
    if (((Op *) l->data)->serial == serial)
      return l->data;
  return NULL;
}

/* The agent that failed first along @a's failed dependencies. */
static Agent *
root_failure (Agent *a)
{
  while (a->failed_dep && a->failed_dep != a)
    a = a->failed_dep;
  return a;
}

static void
op_respond_done (Op *op)
{
  Manager *m = op->m;
  JsonObject *obj;

  switch (op->kind)
    {
    case OP_STOP:
      obj = entry_full (op->target);
      json_object_set_array_member (obj, "stopped", names_array (op->stop_list));
      break;
    case OP_RESTART_DEPS:
      obj = json_object_new ();
      json_object_set_string_member (obj, "agent_name", op->target->name);
      json_object_set_array_member (obj, "restarted", names_array (op->start_list));
      json_object_set_array_member (obj, "skipped", names_array (op->skipped));
      {
        JsonArray *agents = json_array_new ();
        g_autoptr (GPtrArray) all = transitive_dependents (m, op->target);
        g_ptr_array_insert (all, 0, op->target);
        for (guint i = 0; i < all->len; i++)
          json_array_add_object_element (agents, entry_brief (g_ptr_array_index (all, i)));
        json_object_set_array_member (obj, "agents", agents);
      }
      break;
    default:
      obj = entry_full (op->target);
      break;
    }
  respond_object (m, op->responder, obj);
  op_end (op);
}

/* Moves @op on; it ends (answered) or waits for the next change. */
static void
op_advance (Op *op)
{
  if (op->phase == PHASE_STOP)
    {
      while (op->stop_list && op->stop_idx < op->stop_list->len)
        {
          Agent *a = g_ptr_array_index (op->stop_list, op->stop_idx);

          if (a->run)
            {
              if (!a->stopping)
                stop_agent (a);
              return; /* the exit moves it on */
            }
          if (a->want || a->state != ST_STOPPED)
            stop_agent (a);
          op->stop_idx++;
        }
      if (op->start_list == NULL || op->start_list->len == 0)
        {
          op_respond_done (op);
          return;
        }
      op->phase = PHASE_START;
      op->min_gen = g_array_new (FALSE, FALSE, sizeof (guint));
      for (guint i = 0; i < op->start_list->len; i++)
        {
          Agent *a = g_ptr_array_index (op->start_list, i);
          /* a process already on its way counts; otherwise a new one */
          guint min = a->run && !a->stopping ? a->gen - 1 : a->gen;
          g_array_append_val (op->min_gen, min);
          want_agent (a);
        }
      return; /* the next kick starts them */
    }
  if (op->phase == PHASE_START)
    {
      gboolean all = TRUE;

      for (guint i = 0; i < op->start_list->len; i++)
        {
          Agent *a = g_ptr_array_index (op->start_list, i);
          JsonObject *d;

          if (agent_ready (a) && a->gen > g_array_index (op->min_gen, guint, i))
            continue;
          all = FALSE;
          if (a->state == ST_FAILED && a->failed_dep)
            {
              Agent *root = root_failure (a);
              d = json_object_new ();
              json_object_set_string_member (d, "agent_name", a->name);
              json_object_set_string_member (d, "dependency", root->name);
              json_object_set_string_member (d, "status", state_names[root->state]);
              json_object_set_member (d, "last_exit", root->last_exit ? json_node_copy (root->last_exit)
                                                                      : json_node_new (JSON_NODE_NULL));
              respond_error (op->m, op->responder, "DEPENDENCY_FAILED", d,
                             "agent \"%s\" cannot start: its dependency \"%s\" is %s%s%s", a->name, root->name,
                             state_names[root->state], root->last_error ? " — " : "",
                             root->last_error ? root->last_error : "");
              op_end (op);
              return;
            }
          if (a->state == ST_FAILED || (a->state == ST_STOPPED && !a->want && !a->stopping))
            {
              d = json_object_new ();
              json_object_set_string_member (d, "agent_name", a->name);
              json_object_set_string_member (d, "status", state_names[a->state]);
              json_object_set_member (d, "last_exit", a->last_exit ? json_node_copy (a->last_exit)
                                                                   : json_node_new (JSON_NODE_NULL));
              respond_error (op->m, op->responder, "START_FAILED", d, "agent \"%s\" did not start: %s", a->name,
                             a->last_error ? a->last_error : "it stopped before it was ready");
              op_end (op);
              return;
            }
        }
      if (all)
        op_respond_done (op);
    }
}

static void
ops_advance (Manager *m)
{
  GList *copy = g_list_copy (m->ops);

  for (GList *l = copy; l; l = l->next)
    if (g_list_find (m->ops, l->data)) /* an earlier one may not end a later one, but be safe */
      op_advance (l->data);
  g_list_free (copy);
}

static gboolean
kick (gpointer data)
{
  Manager *m = data;

  m->kick_id = 0;
  for (guint i = 0; i < 64; i++)
    {
      m->dirty = FALSE;
      reconcile (m);
      ops_advance (m);
      if (!m->dirty)
        break;
    }
  return G_SOURCE_REMOVE;
}

static void
schedule_kick (Manager *m)
{
  if (m->kick_id == 0 && !m->stopped)
    m->kick_id = g_idle_add (kick, m);
}

/* ------------------------------------------------------------ check-based actions */

typedef struct {
  guint64 serial; /* of the op */
  guint index;    /* in op->dep_results */
  Service *service;
} DepCheck;

static void
begin_restart (Op *op);

static JsonObject *
failing_dependencies (Op *op, gboolean *satisfied)
{
  JsonObject *d = json_object_new ();
  JsonArray *failing = json_array_new ();
  guint n = json_array_get_length (op->dep_results);

  *satisfied = TRUE;
  for (guint i = 0; i < n; i++)
    {
      JsonObject *e = json_array_get_object_element (op->dep_results, i);
      if (!json_object_get_boolean_member (e, "ok"))
        {
          *satisfied = FALSE;
          json_array_add_object_element (failing, json_object_ref (e));
        }
    }
  json_object_set_string_member (d, "agent_name", op->target->name);
  json_object_set_array_member (d, "dependencies", failing);
  return d;
}

static void
dep_checks_done (Op *op)
{
  gboolean satisfied;
  g_autoptr (JsonObject) failing = failing_dependencies (op, &satisfied);

  if (op->kind == OP_CHECK_DEPS)
    {
      JsonObject *obj = json_object_new ();
      json_object_set_string_member (obj, "agent_name", op->target->name);
      json_object_set_boolean_member (obj, "satisfied", satisfied);
      json_object_set_array_member (obj, "dependencies", json_array_ref (op->dep_results));
      respond_object (op->m, op->responder, obj);
      op_end (op);
      return;
    }
  /* restart_with_dependencies with dependency_check */
  if (!satisfied)
    {
      JsonArray *f = json_object_get_array_member (failing, "dependencies");
      JsonObject *first = json_array_get_object_element (f, 0);
      respond_error (op->m, op->responder, "DEPENDENCY_FAILED", json_object_ref (failing),
                     "agent \"%s\" has unsatisfied dependencies: %s \"%s\" is %s", op->target->name,
                     json_object_get_string_member (first, "kind"), json_object_get_string_member (first, "name"),
                     json_object_get_string_member (first, "status"));
      op_end (op);
      return;
    }
  begin_restart (op);
}

static void
on_dep_check (Manager *m, gpointer data, gboolean ok, const char *status, const char *output)
{
  DepCheck *dc = data;
  Op *op = op_lookup (m, dc->serial);
  JsonObject *e;

  record_service (dc->service, ok, status, output);
  if (op == NULL) /* answered already (timeout) */
    return;
  e = json_array_get_object_element (op->dep_results, dc->index);
  json_object_set_boolean_member (e, "ok", ok);
  json_object_set_string_member (e, "status", status);
  if (output && *output)
    json_object_set_string_member (e, "output", output);
  if (--op->checks_pending == 0)
    dep_checks_done (op);
}

/* Fills op->dep_results for the target's direct dependencies, running the
 * service checks; dep_checks_done() follows (now or later). */
static void
check_dependencies_start (Op *op)
{
  Agent *a = op->target;

  op->dep_results = json_array_new ();
  for (guint i = 0; i < a->deps->len; i++)
    {
      Agent *d = g_ptr_array_index (a->deps, i);
      JsonObject *e = json_object_new ();

      json_object_set_string_member (e, "name", d->name);
      json_object_set_string_member (e, "kind", "agent");
      json_object_set_boolean_member (e, "ok", agent_ready (d));
      json_object_set_string_member (e, "status", state_names[d->state]);
      if (d->health_check && d->run && d->health_known)
        json_object_set_boolean_member (e, "healthy", d->health_ok);
      json_array_add_object_element (op->dep_results, e);
    }
  op->checks_pending = a->services->len;
  for (guint i = 0; i < a->services->len; i++)
    {
      Service *s = g_ptr_array_index (a->services, i);
      JsonObject *e = json_object_new ();
      DepCheck *dc = g_new0 (DepCheck, 1);

      json_object_set_string_member (e, "name", s->name);
      json_object_set_string_member (e, "kind", "service");
      json_object_set_boolean_member (e, "ok", FALSE);
      json_object_set_string_member (e, "status", "checking");
      dc->serial = op->serial;
      dc->index = json_array_get_length (op->dep_results);
      dc->service = s;
      json_array_add_object_element (op->dep_results, e);
      check_run (op->m, a, s->check, a->health_timeout_ms, on_dep_check, dc, g_free);
    }
  if (op->checks_pending == 0)
    dep_checks_done (op);
}

static void
validate_done (Op *op)
{
  Agent *a = op->target;
  JsonObject *obj = json_object_new ();
  g_autoptr (GPtrArray) affected = transitive_dependents (op->m, a);

  json_object_set_string_member (obj, "agent_name", a->name);
  json_object_set_boolean_member (obj, "healthy", op->healthy);
  json_object_set_string_member (obj, "status", state_names[a->state]);
  if (a->health_check)
    json_object_set_member (obj, "health", health_node (a));
  json_object_set_array_member (obj, "affected", names_array (affected));
  respond_object (op->m, op->responder, obj);
  op_end (op);
}

static void
on_validate_check (Manager *m, gpointer data, gboolean ok, const char *status, const char *output)
{
  Op *op = op_lookup (m, *(guint64 *) data);
  Agent *a;

  (void) status;
  if (op == NULL)
    return;
  a = op->target;
  if (a->run)
    record_health (a, ok, output);
  op->healthy = ok && a->run != NULL;
  validate_done (op);
}

/* restart_with_dependencies, once its dependencies are known to be fine:
 * the target and its dependents that need it, stopped dependents first,
 * started dependencies first. */
static void
begin_restart (Op *op)
{
  g_autoptr (GPtrArray) all = transitive_dependents (op->m, op->target);

  g_ptr_array_insert (all, 0, op->target);
  op->start_list = g_ptr_array_new ();
  op->stop_list = g_ptr_array_new ();
  for (guint i = 0; i < all->len; i++)
    {
      Agent *a = g_ptr_array_index (all, i);
      if (op->force_restart || !agent_ready (a))
        g_ptr_array_add (op->start_list, a);
      else
        g_ptr_array_add (op->skipped, a);
    }
  for (guint i = op->start_list->len; i > 0; i--)
    g_ptr_array_add (op->stop_list, g_ptr_array_index (op->start_list, i - 1));
  if (op->start_list->len == 0)
    {
      op_respond_done (op);
      return;
    }
  op->phase = PHASE_STOP;
  op->m->dirty = TRUE;
  schedule_kick (op->m);
}

/* ------------------------------------------------------------ handle */

static gboolean
get_bool_param (Manager *m, EnsResponder *responder, JsonObject *params, const char *field, gboolean def,
                gboolean *out)
{
  JsonNode *n = params ? json_object_get_member (params, field) : NULL;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      *out = def;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    {
      invalid_param (m, responder, field, "a boolean");
      return FALSE;
    }
  *out = json_node_get_boolean (n);
  return TRUE;
}

static Agent *
get_agent_param (Manager *m, EnsResponder *responder, JsonObject *params)
{
  JsonNode *n = params ? json_object_get_member (params, "agent_name") : NULL;
  const char *name;
  Agent *a;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING ||
      *(name = json_node_get_string (n)) == '\0')
    {
      invalid_param (m, responder, "agent_name", "the name of an agent of the registry (a non-empty string)");
      return NULL;
    }
  a = g_hash_table_lookup (m->by_name, name);
  if (a == NULL)
    {
      JsonObject *d = json_object_new ();
      json_object_set_string_member (d, "agent_name", name);
      json_object_set_array_member (d, "known", names_array (m->agents));
      respond_error (m, responder, ENS_ERR_NOT_FOUND, d, "no agent \"%s\" in the manager's registry", name);
    }
  return a;
}

static void
manager_handle (gpointer instance, EnsMessage *request, EnsResponder *responder)
{
  Manager *m = instance;
  const char *action = request->action;
  JsonObject *params = NULL;
  Agent *a;
  Op *op;

  if (request->data && JSON_NODE_HOLDS_OBJECT (request->data))
    params = json_node_get_object (request->data);
  else if (request->data && !JSON_NODE_HOLDS_NULL (request->data))
    {
      invalid_param (m, responder, "data", "an object");
      return;
    }

  if (g_strcmp0 (action, "list") == 0)
    {
      JsonObject *obj = json_object_new ();
      JsonArray *agents = json_array_new ();

      for (guint i = 0; i < m->agents->len; i++)
        json_array_add_object_element (agents, entry_brief (g_ptr_array_index (m->agents, i)));
      json_object_set_array_member (obj, "agents", agents);
      respond_object (m, responder, obj);
      return;
    }
  if (g_strcmp0 (action, "status") != 0 && g_strcmp0 (action, "start") != 0 && g_strcmp0 (action, "stop") != 0 &&
      g_strcmp0 (action, "restart") != 0 && g_strcmp0 (action, "check_dependencies") != 0 &&
      g_strcmp0 (action, "validate_service_health") != 0 && g_strcmp0 (action, "restart_with_dependencies") != 0)
    {
      respond_error (m, responder, ENS_ERR_UNKNOWN_ACTION, NULL, "the manager has no action \"%s\"",
                     action ? action : "");
      return;
    }
  if ((a = get_agent_param (m, responder, params)) == NULL)
    return;

  if (g_strcmp0 (action, "status") == 0)
    respond_object (m, responder, entry_full (a));
  else if (g_strcmp0 (action, "start") == 0)
    {
      op = op_new (m, request, responder, OP_START, a);
      op->phase = PHASE_STOP; /* nothing to stop: straight to starting */
      op->start_list = g_ptr_array_new ();
      if (agent_ready (a))
        g_ptr_array_add (op->skipped, a);
      else
        g_ptr_array_add (op->start_list, a);
      if (op->start_list->len == 0)
        op_respond_done (op);
      else
        op_advance (op);
    }
  else if (g_strcmp0 (action, "stop") == 0)
    {
      gboolean force;
      g_autoptr (GPtrArray) deps = transitive_dependents (m, a);
      g_autoptr (GPtrArray) running = g_ptr_array_new ();

      if (!get_bool_param (m, responder, params, "force", FALSE, &force))
        return;
      for (guint i = 0; i < deps->len; i++)
        if (agent_active (g_ptr_array_index (deps, i)))
          g_ptr_array_add (running, g_ptr_array_index (deps, i));
      if (running->len > 0 && !force)
        {
          JsonObject *d = json_object_new ();
          json_object_set_string_member (d, "agent_name", a->name);
          json_object_set_array_member (d, "dependents", names_array (running));
          respond_error (m, responder, "DEPENDENTS_RUNNING", d,
                         "agent \"%s\" has %u running dependent(s) (first: \"%s\"); stop them first or pass force:true",
                         a->name, running->len, ((Agent *) g_ptr_array_index (running, 0))->name);
          return;
        }
      op = op_new (m, request, responder, OP_STOP, a);
      op->phase = PHASE_STOP;
      op->stop_list = g_ptr_array_new ();
      for (guint i = running->len; i > 0; i--) /* dependents first, the last one first */
        g_ptr_array_add (op->stop_list, g_ptr_array_index (running, i - 1));
      g_ptr_array_add (op->stop_list, a);
      op_advance (op);
    }
  else if (g_strcmp0 (action, "restart") == 0)
    {
      op = op_new (m, request, responder, OP_RESTART, a);
      op->phase = PHASE_STOP;
      op->stop_list = g_ptr_array_new ();
      op->start_list = g_ptr_array_new ();
      g_ptr_array_add (op->stop_list, a);
      g_ptr_array_add (op->start_list, a);
      op_advance (op);
    }
  else if (g_strcmp0 (action, "check_dependencies") == 0)
    {
      op = op_new (m, request, responder, OP_CHECK_DEPS, a);
      check_dependencies_start (op);
    }
  else if (g_strcmp0 (action, "validate_service_health") == 0)
    {
      op = op_new (m, request, responder, OP_VALIDATE, a);
      if (a->run && a->health_check)
        check_run (m, a, a->health_check, a->health_timeout_ms, on_validate_check,
                   g_memdup2 (&op->serial, sizeof op->serial), g_free);
      else
        {
          op->healthy = agent_ready (a);
          validate_done (op);
        }
    }
  else /* restart_with_dependencies */
    {
      gboolean dependency_check, force_restart;

      if (!get_bool_param (m, responder, params, "dependency_check", TRUE, &dependency_check) ||
          !get_bool_param (m, responder, params, "force_restart", FALSE, &force_restart))
        return;
      op = op_new (m, request, responder, OP_RESTART_DEPS, a);
      op->dependency_check = dependency_check;
      op->force_restart = force_restart;
      if (dependency_check)
        check_dependencies_start (op);
      else
        begin_restart (op);
    }
}

/* ------------------------------------------------------------ registry */

static void
service_free (Service *s)
{
  g_free (s->name);
  g_strfreev (s->check);
  g_free (s->status);
  g_free (s->output);
  g_free (s);
}

static void
agent_free (Agent *a)
{
  g_free (a->name);
  g_strfreev (a->command);
  g_strfreev (a->env);
  g_free (a->cwd);
  g_strfreev (a->depends_on);
  g_ptr_array_unref (a->services);
  g_strfreev (a->health_check);
  g_ptr_array_unref (a->deps);
  g_ptr_array_unref (a->dependents);
  g_clear_pointer (&a->last_exit, json_node_unref);
  g_free (a->last_error);
  g_free (a->health_output);
  g_free (a->gate_error);
  g_free (a);
}

static gboolean
valid_agent_name (const char *name)
{
  if (*name == '\0' || strlen (name) > 128)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

/* Reads a non-empty array of strings; FALSE with @error naming @what. */
static gboolean
read_argv (JsonNode *n, const char *where, const char *what, gboolean allow_empty, char ***out, GError **error)
{
  JsonArray *arr;
  guint len;

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"%s\" must be an array of strings", where, what);
      return FALSE;
    }
  arr = json_node_get_array (n);
  len = json_array_get_length (arr);
  if (len == 0 && !allow_empty)
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"%s\" must not be empty", where, what);
      return FALSE;
    }
  *out = g_new0 (char *, len + 1);
  for (guint i = 0; i < len; i++)
    {
      JsonNode *e = json_array_get_element (arr, i);
      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING ||
          (!allow_empty && i == 0 && *json_node_get_string (e) == '\0'))
        {
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"%s\"[%u] must be a%s string", where,
                       what, i, i == 0 && !allow_empty ? " non-empty" : "");
          g_clear_pointer (out, g_strfreev);
          return FALSE;
        }
      (*out)[i] = g_strdup (json_node_get_string (e));
    }
  return TRUE;
}

static gboolean
read_uint (JsonObject *o, const char *key, const char *where, guint min, guint max, guint def, guint *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, key);
  gint64 v;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      *out = def;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64 ||
      (v = json_node_get_int (n)) < min || v > max)
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"%s\" must be an integer from %u to %u",
                   where, key, min, max);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

static const char *const known_fields[] = {
  "name", "command", "env", "cwd", "depends_on", "services", "health_check", "health_interval_ms",
  "health_timeout_ms", "restart", "max_restarts", "autostart", "backoff_base_ms", "backoff_max_ms",
  "start_grace_ms", NULL
};

static Agent *
parse_agent (Manager *m, JsonNode *node, guint index, const char *base_dir, GError **error)
{
  g_autofree char *where = g_strdup_printf ("agents[%u]", index);
  g_autoptr (GList) members = NULL;
  JsonObject *o;
  JsonNode *n;
  Agent *a;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: must be an object", where);
      return NULL;
    }
  o = json_node_get_object (node);
  n = json_object_get_member (o, "name");
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING ||
      !valid_agent_name (json_node_get_string (n)))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED,
                   "%s: \"name\" must be a string of letters, digits, '-', '_' or '.' (1 to 128)", where);
      return NULL;
    }
  g_free (where);
  where = g_strdup_printf ("agents[%u] (\"%s\")", index, json_node_get_string (n));
  if (g_hash_table_contains (m->by_name, json_node_get_string (n)))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"name\" is used twice", where);
      return NULL;
    }
  members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next)
    if (!g_strv_contains (known_fields, l->data))
      {
        g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: unknown field \"%s\"", where,
                     (char *) l->data);
        return NULL;
      }

  a = g_new0 (Agent, 1);
  a->m = m;
  a->name = g_strdup (json_node_get_string (n));
  a->services = g_ptr_array_new_with_free_func ((GDestroyNotify) service_free);
  a->deps = g_ptr_array_new ();
  a->dependents = g_ptr_array_new ();
  if (!read_argv (json_object_get_member (o, "command"), where, "command", FALSE, &a->command, error))
    goto fail;

  n = json_object_get_member (o, "env");
  if (n && !JSON_NODE_HOLDS_NULL (n))
    {
      GPtrArray *env = g_ptr_array_new ();
      g_autoptr (GList) keys = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        {
          g_ptr_array_unref (env);
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"env\" must be an object of strings", where);
          goto fail;
        }
      keys = json_object_get_members (json_node_get_object (n));
      for (GList *l = keys; l; l = l->next)
        {
          JsonNode *v = json_object_get_member (json_node_get_object (n), l->data);
          if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING ||
              *(char *) l->data == '\0' || strchr (l->data, '='))
            {
              g_ptr_array_free (env, TRUE);
              g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED,
                           "%s: \"env\".\"%s\" must be a string (and its name have no '=')", where, (char *) l->data);
              goto fail;
            }
          g_ptr_array_add (env, g_strconcat (l->data, "=", json_node_get_string (v), NULL));
        }
      g_ptr_array_add (env, NULL);
      a->env = (char **) g_ptr_array_free (env, FALSE);
    }

  n = json_object_get_member (o, "cwd");
  if (n && !JSON_NODE_HOLDS_NULL (n))
    {
      const char *cwd;
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING ||
          *(cwd = json_node_get_string (n)) == '\0')
        {
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"cwd\" must be a non-empty string", where);
          goto fail;
        }
      /* relative to the registry file's folder */
      a->cwd = g_path_is_absolute (cwd) ? g_strdup (cwd) : g_build_filename (base_dir, cwd, NULL);
      if (!g_file_test (a->cwd, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"cwd\": %s is not a folder", where, a->cwd);
          goto fail;
        }
    }

  n = json_object_get_member (o, "depends_on");
  if (n && !JSON_NODE_HOLDS_NULL (n))
    {
      if (!read_argv (n, where, "depends_on", TRUE, &a->depends_on, error))
        goto fail;
    }
  else
    a->depends_on = g_new0 (char *, 1);

  n = json_object_get_member (o, "services");
  if (n && !JSON_NODE_HOLDS_NULL (n))
    {
      JsonArray *arr;
      if (!JSON_NODE_HOLDS_ARRAY (n))
        {
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"services\" must be an array", where);
          goto fail;
        }
      arr = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (arr); i++)
        {
          JsonNode *e = json_array_get_element (arr, i);
          g_autofree char *swhere = g_strdup_printf ("%s: \"services\"[%u]", where, i);
          JsonNode *sn;
          Service *s;

          if (!JSON_NODE_HOLDS_OBJECT (e))
            {
              g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s must be an object {name, check}", swhere);
              goto fail;
            }
          sn = json_object_get_member (json_node_get_object (e), "name");
          if (sn == NULL || !JSON_NODE_HOLDS_VALUE (sn) || json_node_get_value_type (sn) != G_TYPE_STRING ||
              *json_node_get_string (sn) == '\0')
            {
              g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"name\" must be a non-empty string", swhere);
              goto fail;
            }
          s = g_new0 (Service, 1);
          s->name = g_strdup (json_node_get_string (sn));
          g_ptr_array_add (a->services, s);
          if (!read_argv (json_object_get_member (json_node_get_object (e), "check"), swhere, "check", FALSE, &s->check,
                          error))
            goto fail;
        }
    }

  n = json_object_get_member (o, "health_check");
  if (n && !JSON_NODE_HOLDS_NULL (n) && !read_argv (n, where, "health_check", FALSE, &a->health_check, error))
    goto fail;
  if (!read_uint (o, "health_interval_ms", where, 10, 86400000, DEFAULT_HEALTH_INTERVAL_MS, &a->health_interval_ms, error) ||
      !read_uint (o, "health_timeout_ms", where, 10, 600000, DEFAULT_HEALTH_TIMEOUT_MS, &a->health_timeout_ms, error) ||
      !read_uint (o, "max_restarts", where, 0, 1000000, DEFAULT_MAX_RESTARTS, &a->max_restarts, error) ||
      !read_uint (o, "backoff_base_ms", where, 1, 3600000, DEFAULT_BACKOFF_BASE_MS, &a->backoff_base_ms, error) ||
      !read_uint (o, "backoff_max_ms", where, 1, 3600000, DEFAULT_BACKOFF_MAX_MS, &a->backoff_max_ms, error) ||
      !read_uint (o, "start_grace_ms", where, 0, 600000, DEFAULT_START_GRACE_MS, &a->start_grace_ms, error))
    goto fail;

  a->restart = RESTART_ON_FAILURE;
  n = json_object_get_member (o, "restart");
  if (n && !JSON_NODE_HOLDS_NULL (n))
    {
      const char *r = JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
                        ? json_node_get_string (n) : NULL;
      guint i;
      for (i = 0; i < G_N_ELEMENTS (restart_names); i++)
        if (g_strcmp0 (r, restart_names[i]) == 0)
          break;
      if (i == G_N_ELEMENTS (restart_names))
        {
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED,
                       "%s: \"restart\" must be \"always\", \"on-failure\" or \"never\"", where);
          goto fail;
        }
      a->restart = (RestartPolicy) i;
    }

  a->autostart = TRUE;
  n = json_object_get_member (o, "autostart");
  if (n && !JSON_NODE_HOLDS_NULL (n))
    {
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
        {
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "%s: \"autostart\" must be a boolean", where);
          goto fail;
        }
      a->autostart = json_node_get_boolean (n);
    }
  return a;

fail:
  agent_free (a);
  return NULL;
}

/* Depth-first search for a cycle through @a; fills @path when found. */
static gboolean
find_cycle (Agent *a, GHashTable *color, GPtrArray *path)
{
  gint c = GPOINTER_TO_INT (g_hash_table_lookup (color, a));

  if (c == 2)
    return FALSE;
  g_ptr_array_add (path, a);
  if (c == 1)
    return TRUE;
  g_hash_table_insert (color, a, GINT_TO_POINTER (1));
  for (guint i = 0; i < a->deps->len; i++)
    if (find_cycle (g_ptr_array_index (a->deps, i), color, path))
      return TRUE;
  g_hash_table_insert (color, a, GINT_TO_POINTER (2));
  g_ptr_array_remove_index (path, path->len - 1);
  return FALSE;
}

/* Resolves dependencies and orders the agents (Kahn); FALSE on an unknown
 * dependency or a cycle. */
static gboolean
resolve_registry (Manager *m, GError **error)
{
  g_autoptr (GHashTable) indegree = g_hash_table_new (NULL, NULL);
  GQueue queue = G_QUEUE_INIT;

  for (guint i = 0; i < m->agents->len; i++)
    {
      Agent *a = g_ptr_array_index (m->agents, i);
      for (guint j = 0; a->depends_on[j]; j++)
        {
          Agent *d = g_hash_table_lookup (m->by_name, a->depends_on[j]);
          if (d == NULL || d == a)
            {
              g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED,
                           "agents[%u] (\"%s\"): \"depends_on\": %s \"%s\"", i, a->name,
                           d ? "an agent cannot depend on itself:" : "unknown agent", a->depends_on[j]);
              return FALSE;
            }
          if (g_ptr_array_find (a->deps, d, NULL))
            continue;
          g_ptr_array_add (a->deps, d);
          g_ptr_array_add (d->dependents, a);
        }
      g_hash_table_insert (indegree, a, GUINT_TO_POINTER (a->deps->len));
    }
  for (guint i = 0; i < m->agents->len; i++)
    if (GPOINTER_TO_UINT (g_hash_table_lookup (indegree, g_ptr_array_index (m->agents, i))) == 0)
      g_queue_push_tail (&queue, g_ptr_array_index (m->agents, i));
  while (!g_queue_is_empty (&queue))
    {
      Agent *a = g_queue_pop_head (&queue);
      a->topo = m->order->len;
      g_ptr_array_add (m->order, a);
      for (guint j = 0; j < a->dependents->len; j++)
        {
          Agent *x = g_ptr_array_index (a->dependents, j);
          guint left = GPOINTER_TO_UINT (g_hash_table_lookup (indegree, x)) - 1;
          g_hash_table_insert (indegree, x, GUINT_TO_POINTER (left));
          if (left == 0)
            g_queue_push_tail (&queue, x);
        }
    }
  if (m->order->len < m->agents->len)
    {
      g_autoptr (GHashTable) color = g_hash_table_new (NULL, NULL);
      g_autoptr (GPtrArray) path = g_ptr_array_new ();
      g_autoptr (GString) text = g_string_new (NULL);
      Agent *first = NULL;
      guint index = 0;

      for (guint i = 0; i < m->agents->len && !first; i++)
        {
          g_ptr_array_set_size (path, 0);
          if (find_cycle (g_ptr_array_index (m->agents, i), color, path))
            first = g_ptr_array_index (path, path->len - 1);
        }
      /* print the cycle only, from its first agent back to it */
      for (guint i = 0; first && i < path->len; i++)
        if (g_ptr_array_index (path, i) == first)
          {
            for (guint j = i; j < path->len; j++)
              g_string_append_printf (text, "%s\"%s\"", j > i ? " -> " : "", ((Agent *) g_ptr_array_index (path, j))->name);
            break;
          }
      if (first)
        g_ptr_array_find (m->agents, first, &index);
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED,
                   "agents[%u] (\"%s\"): \"depends_on\": dependency cycle %s", index, first ? first->name : "?",
                   text->str);
      return FALSE;
    }
  return TRUE;
}

static gboolean
load_registry (Manager *m, const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len;
  g_autoptr (GError) local = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *base_dir = g_path_get_dirname (path);
  JsonNode *agents;
  JsonArray *arr;

  if (!g_file_get_contents (path, &text, &len, &local))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "registry %s: %s", path, local->message);
      return FALSE;
    }
  root = m->host->json_parse (text, len, &local);
  if (root == NULL)
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "registry %s: not JSON: %s", path, local->message);
      return FALSE;
    }
  agents = JSON_NODE_HOLDS_OBJECT (root) ? json_object_get_member (json_node_get_object (root), "agents") : NULL;
  if (agents == NULL || !JSON_NODE_HOLDS_ARRAY (agents))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED,
                   "registry %s: expected an object with an \"agents\" array", path);
      return FALSE;
    }
  arr = json_node_get_array (agents);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      Agent *a = parse_agent (m, json_array_get_element (arr, i), i, base_dir, &local);
      if (a == NULL)
        {
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "registry %s: %s", path, local->message);
          return FALSE;
        }
      g_ptr_array_add (m->agents, a);
      g_hash_table_insert (m->by_name, a->name, a);
    }
  if (!resolve_registry (m, &local))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "registry %s: %s", path, local->message);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------ plugin */

static char *
config_string (Manager *m, const char *key)
{
  g_autoptr (GVariant) v = m->host->config_get (m->self, key);

  return v && g_variant_is_of_type (v, G_VARIANT_TYPE_STRING) ? g_variant_dup_string (v, NULL) : NULL;
}

static void manager_free (Manager *m);

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
  m->agents = g_ptr_array_new_with_free_func ((GDestroyNotify) agent_free);
  m->order = g_ptr_array_new ();
  m->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  sock_dir = config_string (m, "socket-dir");
  sock_name = config_string (m, "native-socket");
  if (sock_dir && *sock_dir && sock_name && *sock_name)
    m->socket_path = g_build_filename (sock_dir, sock_name, NULL);
  m->registry_path = config_string (m, "manager-registry-file");
  if (m->registry_path && *m->registry_path)
    {
      if (!load_registry (m, m->registry_path, error))
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
        want_agent (a); /* the first kick starts them, in dependency order */
    }
  return m;
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

static void
manager_stop (gpointer instance)
{
  Manager *m = instance;
  gint64 deadline;
  gboolean alive;

  m->stopped = TRUE;
  g_clear_handle_id (&m->kick_id, g_source_remove);
  /* Pending actions: the host answers their requests (AGENT_GONE). */
  g_list_free_full (g_steal_pointer (&m->ops), (GDestroyNotify) op_free);
  for (GList *l = m->checks; l; l = l->next)
    {
      Check *c = l->data;

      c->m = NULL;
      group_signal (c->pgid, SIGKILL);
      g_cancellable_cancel (c->cancel);
      g_clear_handle_id (&c->timeout_id, g_source_remove);
      if (c->idle_id) /* no GIO operation holds it */
        check_free (c);
      else if (c->data_free) /* the late callback only frees the check */
        {
          c->data_free (c->data);
          c->data_free = NULL;
        }
    }
  g_clear_pointer (&m->checks, g_list_free);

  /* SIGTERM in reverse dependency order, then up to STOP_GRACE_MS for all of
   * them together, then SIGKILL.  GLib reaps the children on its worker
   * thread, so polling the groups needs no main loop. */
  for (guint i = m->order->len; i > 0; i--)
    {
      Agent *a = g_ptr_array_index (m->order, i - 1);

      g_clear_handle_id (&a->backoff_id, g_source_remove);
      g_clear_handle_id (&a->kill_id, g_source_remove);
      g_clear_handle_id (&a->health_id, g_source_remove);
      g_clear_handle_id (&a->grace_id, g_source_remove);
      if ((a->run || a->pgid) && group_alive (a->pgid))
        {
          ENS_LOG (m->host, m->self, G_LOG_LEVEL_MESSAGE, "%s: stopping (SIGTERM to group %d)", a->name, (int) a->pgid);
          group_signal (a->pgid, SIGTERM);
        }
    }
  deadline = g_get_monotonic_time () + STOP_GRACE_MS * 1000;
  do
    {
      alive = FALSE;
      for (guint i = 0; i < m->order->len && !alive; i++)
        alive = group_running (((Agent *) g_ptr_array_index (m->order, i))->pgid);
      if (alive)
        g_usleep (10000);
    }
  while (alive && g_get_monotonic_time () < deadline);
  for (guint i = 0; i < m->order->len; i++)
    {
      Agent *a = g_ptr_array_index (m->order, i);

      if (group_running (a->pgid))
        {
          ENS_LOG (m->host, m->self, G_LOG_LEVEL_MESSAGE, "%s: still running after %d ms, killing it", a->name,
                   STOP_GRACE_MS);
          group_signal (a->pgid, SIGKILL);
        }
      if (a->run)
        {
          a->run->agent = NULL; /* late GIO callbacks only drop their reference */
          g_cancellable_cancel (a->run->cancel);
          g_clear_pointer (&a->run, run_unref);
        }
    }
  manager_free (m);
}

static JsonNode *
manager_describe (gpointer instance)
{
  Manager *m = instance;
  JsonObject *obj;
  JsonNode *node = object_node (&obj);
  guint running = 0;

  for (guint i = 0; i < m->agents->len; i++)
    running += ((Agent *) g_ptr_array_index (m->agents, i))->run != NULL;
  json_object_set_string_member (obj, "registry", m->registry_path ? m->registry_path : "");
  json_object_set_int_member (obj, "agents", m->agents->len);
  json_object_set_int_member (obj, "running", running);
  return node;
}

static const char *const manager_actions[] = {
  "list", "status", "start", "stop", "restart", "check_dependencies", "validate_service_health",
  "restart_with_dependencies", NULL
};

static const EnsAgentVTable manager_vtable = {
  .struct_size = sizeof (EnsAgentVTable),
  .name = "manager",
  .actions = manager_actions,
  .handle = manager_handle,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_AGENT, "agent-manager", "1.0", "Supervises external agent processes",
                   ENS_PLUGIN_FLAG_NONE, manager_init, manager_stop, manager_describe, &manager_vtable)
