/* agent-manager: check commands — an agent's health check, the checks of
 * the services it needs — run in the agent's folder and environment, each
 * in a process group of its own and killed at its timeout; and the process
 * groups themselves. */
#include "ens-manager.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define STARTING_HEALTH_POLL_MS 100 /* health polling until the first pass */
#define FIRST_HEALTH_CHECK_MS 20    /* after a spawn */
#define MAX_OUTPUT 1024             /* kept of a check's output */

/* ------------------------------------------------------------ process groups */

gboolean
ens_manager_group_alive (GPid pgid)
{
  return pgid > 0 && (kill (-pgid, 0) == 0 || errno == EPERM);
}

/* Zombies do not count: a member that died after its parent waits for init
 * to reap it, which can take a while (and is no reason to wait at
 * shutdown).  Reads /proc where there is one. */
gboolean
ens_manager_group_running (GPid pgid)
{
  g_autoptr (GDir) dir = NULL;
  const char *entry;

  if (!ens_manager_group_alive (pgid))
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

void
ens_manager_group_signal (GPid pgid, int sig)
{
  if (pgid > 0) /* never kill(0) or kill(-1) */
    kill (-pgid, sig);
}

/* The child's pid, which child_setup() made its process group id. */
GPid
ens_manager_pgid (GSubprocess *proc)
{
  const char *ident = g_subprocess_get_identifier (proc);

  return ident ? (GPid) atoi (ident) : 0;
}

/* ------------------------------------------------------------ check commands */

struct _Check {
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
};

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
  ens_manager_group_signal (c->pgid, SIGKILL); /* communicate() then sees EOF and the exit */
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

GSubprocessLauncher *
ens_manager_launcher (Agent *a, GSubprocessFlags flags)
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

void
ens_manager_check_run (Manager *m, Agent *a, char **argv, guint timeout_ms, CheckFunc func, gpointer data,
                       GDestroyNotify data_free)
{
  g_autoptr (GSubprocessLauncher) l =
    ens_manager_launcher (a, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
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
  c->pgid = ens_manager_pgid (c->proc);
  c->timeout_id = g_timeout_add (MAX (timeout_ms, 1), check_timeout, c);
  g_subprocess_communicate_utf8_async (c->proc, NULL, c->cancel, check_done, c);
}

void
ens_manager_checks_cancel (Manager *m)
{
  for (GList *l = m->checks; l; l = l->next)
    {
      Check *c = l->data;

      c->m = NULL;
      ens_manager_group_signal (c->pgid, SIGKILL);
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
}

/* ------------------------------------------------------------ health */

static void health_schedule (Agent *a);

void
ens_manager_record_health (Agent *a, gboolean ok, const char *output)
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
      ens_manager_set_state (a, ST_RUNNING);
    }
  ens_manager_changed (a->m);
}

static void
on_health (Manager *m, gpointer data, gboolean ok, const char *status, const char *output)
{
  Agent *a = data;

  (void) m;
  (void) status;
  a->health_inflight = FALSE;
  if (a->run && a->health_gen == a->gen)
    ens_manager_record_health (a, ok, output);
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
  ens_manager_check_run (a->m, a, a->health_check, a->health_timeout_ms, on_health, a, NULL);
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

void
ens_manager_health_begin (Agent *a)
{
  g_clear_handle_id (&a->health_id, g_source_remove);
  a->health_id = g_timeout_add (FIRST_HEALTH_CHECK_MS, health_tick, a);
}

/* ------------------------------------------------------------ services */

void
ens_manager_record_service (Service *s, gboolean ok, const char *status, const char *output)
{
  s->known = TRUE;
  s->ok = ok;
  g_free (s->status);
  s->status = g_strdup (status);
  g_free (s->output);
  s->output = g_strdup (output);
  s->checked_at = g_get_real_time ();
}

