/* agent-manager: supervision — each agent runs in a process group of its
 * own (so one kill() reaches everything it starts), its output goes to the
 * daemon log line by line, and it is restarted with exponential backoff when
 * it dies, until max_restarts consecutive failures.  An agent starts once
 * its dependencies are ready and its services pass their checks.  Process
 * exits and output arrive through GIO callbacks that hold their own
 * references and see a NULL back pointer after stop(). */
#include "ens-manager.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>

#define STABLE_RUN_US (10 * G_USEC_PER_SEC) /* a run this long resets the failure count */
#define STOP_GRACE_MS 2000                   /* SIGTERM, then SIGKILL after this */
#define READ_SIZE 4096
#define MAX_LINE 8192 /* longer output lines are logged in pieces */

/* One process of an agent.  Referenced by the agent while current and by
 * each pending GIO operation; @agent is NULL once stop() detached it. */
struct _Run {
  gint ref;
  Agent *agent;
  GSubprocess *proc;
  GCancellable *cancel;
  GString *out, *err; /* partial lines */
};

/* ------------------------------------------------------------ states */

gboolean
ens_manager_agent_ready (Agent *a)
{
  return a->state == ST_RUNNING && a->run && !a->stopping && (a->health_check == NULL || a->health_ok);
}

gboolean
ens_manager_agent_active (Agent *a)
{
  return a->run != NULL || a->state == ST_STARTING || a->state == ST_RUNNING || a->state == ST_BACKOFF;
}

void
ens_manager_set_state (Agent *a, AgentState state)
{
  if (a->state == state)
    return;
  a->state = state;
  ens_manager_changed (a->m);
}

static void set_last_error (Agent *a, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* Replaces @a's last error; the arguments may name the old one. */
static void
set_last_error (Agent *a, const char *fmt, ...)
{
  va_list ap;
  char *text;

  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_free (a->last_error);
  a->last_error = text;
}

/* SIGTERM to @a's group, logged. */
static void
terminate_group (Agent *a)
{
  ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: stopping (SIGTERM to group %d)", a->name, (int) a->pgid);
  ens_manager_group_signal (a->pgid, SIGTERM);
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

static gboolean
backoff_done (gpointer data)
{
  Agent *a = data;

  a->backoff_id = 0;
  if (a->want)
    ens_manager_set_state (a, ST_STARTING);
  return G_SOURCE_REMOVE;
}

static gboolean
kill_timer (gpointer data)
{
  Agent *a = data;

  a->kill_id = 0;
  if (ens_manager_group_alive (a->pgid))
    {
      ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: still running %d ms after SIGTERM, killing it",
               a->name, STOP_GRACE_MS);
      ens_manager_group_signal (a->pgid, SIGKILL);
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
  g_autoptr (JsonNode) ev = ens_manager_object_node (&obj);

  a->want = FALSE;
  set_last_error (a, "gave up after %u restarts (last failure: %s)", a->restarts,
                  a->last_error ? a->last_error : "unknown");
  ens_manager_set_state (a, ST_FAILED);
  ENS_LOG (m->host, m->self, G_LOG_LEVEL_WARNING, "%s: gave up after %u restarts (last exit %s)", a->name,
           a->restarts, exit_text);
  json_object_set_string_member (obj, "name", a->name);
  json_object_set_int_member (obj, "restarts", a->restarts);
  json_object_set_member (obj, "last_exit", ens_manager_last_exit (a));
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
      ens_manager_set_state (a, clean ? ST_STOPPED : ST_FAILED);
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
  ens_manager_set_state (a, ST_BACKOFF);
  g_clear_handle_id (&a->backoff_id, g_source_remove);
  a->backoff_id = g_timeout_add (delay, backoff_done, a);
}

/* @a could not be started: @message is its last error and its last exit. */
static void
fail_to_start (Agent *a, const char *message)
{
  g_autofree char *at = ens_manager_iso_time (g_get_real_time ());
  JsonObject *obj;

  set_last_error (a, "%s", message);
  g_clear_pointer (&a->last_exit, json_node_unref);
  a->last_exit = ens_manager_object_node (&obj);
  json_object_set_string_member (obj, "error", message);
  json_object_set_string_member (obj, "at", at);
  handle_failure (a, FALSE);
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
  g_autofree char *at = ens_manager_iso_time (now);
  g_autofree char *desc = NULL;

  if (a == NULL || !waited || a->run != r)
    {
      run_unref (r);
      return;
    }
  g_clear_pointer (&a->last_exit, json_node_unref);
  a->last_exit = ens_manager_object_node (&obj);
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
      if (!ens_manager_group_alive (a->pgid))
        {
          g_clear_handle_id (&a->kill_id, g_source_remove);
          a->pgid = 0;
        }
      ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: stopped (%s)", a->name, desc);
      /* restart: wanted again while it was stopping */
      ens_manager_set_state (a, a->want ? ST_STARTING : ST_STOPPED);
      ens_manager_changed (a->m);
    }
  else
    {
      /* Whatever it started is part of the dead run: no leftovers pile up
       * across restarts. */
      ens_manager_group_signal (a->pgid, SIGKILL);
      a->pgid = 0; /* never signal a group id that may be reused */
      ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_MESSAGE, "%s: %s", a->name, desc);
      if (now - a->started_at >= STABLE_RUN_US)
        a->failures = 0;
      g_clear_pointer (&a->last_error, g_free);
      if (!clean)
        set_last_error (a, "%s", desc);
      handle_failure (a, clean);
      ens_manager_changed (a->m);
    }
  run_unref (r);
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
      ens_manager_set_state (a, ST_RUNNING);
    }
  return G_SOURCE_REMOVE;
}

static void
spawn_agent (Agent *a)
{
  Manager *m = a->m;
  g_autoptr (GSubprocessLauncher) l =
    ens_manager_launcher (a, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
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
      g_autofree char *message = g_strdup_printf ("cannot start: %s", error->message);

      ENS_LOG (m->host, m->self, G_LOG_LEVEL_WARNING, "%s: %s", a->name, message);
      run_unref (r);
      fail_to_start (a, message);
      return;
    }
  a->pgid = ens_manager_pgid (r->proc);
  a->run = r;
  ENS_LOG (m->host, m->self, G_LOG_LEVEL_MESSAGE, "%s: started (pid %d)", a->name, (int) a->pgid);
  read_more (run_ref (r), g_subprocess_get_stdout_pipe (r->proc));
  read_more (run_ref (r), g_subprocess_get_stderr_pipe (r->proc));
  g_subprocess_wait_async (r->proc, r->cancel, on_exited, run_ref (r));
  if (a->health_check)
    {
      ens_manager_set_state (a, ST_STARTING);
      ens_manager_health_begin (a);
    }
  else if (a->start_grace_ms > 0)
    {
      ens_manager_set_state (a, ST_STARTING);
      g_clear_handle_id (&a->grace_id, g_source_remove);
      a->grace_id = g_timeout_add (a->start_grace_ms, grace_done, a);
    }
  else
    ens_manager_set_state (a, ST_RUNNING);
  m->dirty = TRUE;
}

typedef struct {
  Agent *agent;
  guint token;
  Service *service;
} GateCheck;

static void
on_gate_check (Manager *m, gpointer data, gboolean ok, const char *status, const char *output)
{
  GateCheck *g = data;
  Agent *a = g->agent;

  (void) m;
  ens_manager_record_service (g->service, ok, status, output);
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
      fail_to_start (a, a->gate_error);
    }
  else
    spawn_agent (a);
  ens_manager_changed (a->m);
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
          set_last_error (a, "dependency \"%s\" is %s", d->name, ens_manager_state_name (d->state));
          ENS_LOG (a->m->host, a->m->self, G_LOG_LEVEL_WARNING, "%s: not started: %s", a->name, a->last_error);
          ens_manager_set_state (a, ST_FAILED);
          return;
        }
      if (!ens_manager_agent_ready (d))
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
      ens_manager_check_run (a->m, a, s->check, a->health_timeout_ms, on_gate_check, g, g_free);
    }
}

void
ens_manager_reconcile (Manager *m)
{
  for (guint i = 0; i < m->order->len; i++)
    {
      Agent *a = g_ptr_array_index (m->order, i);

      if (a->want && a->state == ST_STARTING && a->run == NULL && a->gate_pending == 0)
        try_start (a);
    }
}

void
ens_manager_want (Agent *a)
{
  g_autoptr (GHashTable) closure = g_hash_table_new (NULL, NULL);
  GHashTableIter iter;
  gpointer key;

  ens_manager_dependency_closure (a, closure);
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
            ens_manager_set_state (x, ST_STARTING);
        }
    }
  ens_manager_changed (a->m);
}

void
ens_manager_stop_agent (Agent *a)
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
          terminate_group (a);
          g_clear_handle_id (&a->kill_id, g_source_remove);
          a->kill_id = g_timeout_add (STOP_GRACE_MS, kill_timer, a);
        }
    }
  else
    ens_manager_set_state (a, ST_STOPPED);
  ens_manager_changed (a->m);
}

/* ------------------------------------------------------------ shutdown */

void
ens_manager_stop_all (Manager *m)
{
  gint64 deadline;
  gboolean alive;

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
      if ((a->run || a->pgid) && ens_manager_group_alive (a->pgid))
        terminate_group (a);
    }
  deadline = g_get_monotonic_time () + STOP_GRACE_MS * 1000;
  do
    {
      alive = FALSE;
      for (guint i = 0; i < m->order->len && !alive; i++)
        alive = ens_manager_group_running (((Agent *) g_ptr_array_index (m->order, i))->pgid);
      if (alive)
        g_usleep (10000);
    }
  while (alive && g_get_monotonic_time () < deadline);
  for (guint i = 0; i < m->order->len; i++)
    {
      Agent *a = g_ptr_array_index (m->order, i);

      if (ens_manager_group_running (a->pgid))
        {
          ENS_LOG (m->host, m->self, G_LOG_LEVEL_MESSAGE, "%s: still running after %d ms, killing it", a->name,
                   STOP_GRACE_MS);
          ens_manager_group_signal (a->pgid, SIGKILL);
        }
      if (a->run)
        {
          a->run->agent = NULL; /* late GIO callbacks only drop their reference */
          g_cancellable_cancel (a->run->cancel);
          g_clear_pointer (&a->run, run_unref);
        }
    }
}
