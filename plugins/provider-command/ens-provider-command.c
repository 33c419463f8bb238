/* ens-provider-command — completions answered by a command line program,
 * such as `claude -p --output-format json`.
 *
 * Backends are the entries of the providers setting whose plugin key names
 * this plugin.  Each completion runs the backend's command argv ({prompt}
 * and {model} replaced) in a process group of its own, so cancelling or
 * timing out kills everything it started: SIGTERM to the group, SIGKILL two
 * seconds later.  The prompt (the conversation flattened to text) goes to
 * standard input or, with prompt-mode 'argument', only into {prompt}.
 * output-format 'text' streams standard output as chunks as it is printed;
 * 'json' parses it at exit ({"result"|"response"|"content", "usage"}).
 * Everything runs on the main loop; nothing is reported inside complete(). */
#include "ens-command.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* One completion.  Reference-counted: the job list holds one reference and
 * every pending asynchronous operation another, so late GIO callbacks (after
 * stop() or after the end was reported) find valid memory. */
typedef struct {
  gint ref;
  Command *cmd;              /* NULL once the plugin stopped */
  EnsCompletion *completion; /* NULL once the end was reported */
  char *backend;
  char *model;               /* the name reported in the result */
  gboolean json_output;
  guint timeout_ms;
  GSubprocess *proc;
  GPid pgid;                 /* the command's process group (= its pid) */
  GCancellable *io_cancel;   /* (owned) ours: stops reads, writes and the wait */
  GCancellable *cancellable; /* (owned) the requester's, may be NULL */
  GSource *cancel_source;    /* (owned) fires when @cancellable is cancelled */
  guint timeout_id, kill_id, exit_grace_id, idle_id;
  GBytes *stdin_data;
  GString *out, *err, *pending; /* stdout, stderr tail, stdout not yet chunked */
  glong prompt_chars;
  gboolean out_eof, err_eof, exited;
  gboolean killed;           /* we signalled the group */
  gboolean retired;          /* left the job list */
  const char *fail_code;     /* a failure found before the process ran */
  char *fail_message;
} Job;


/* ---- jobs ---- */

static Job *
job_ref (Job *job)
{
  job->ref++;
  return job;
}

static void
job_unref (Job *job)
{
  if (--job->ref > 0)
    return;
  g_assert (job->timeout_id == 0 && job->kill_id == 0 && job->exit_grace_id == 0 && job->idle_id == 0);
  g_assert (job->cancel_source == NULL);
  g_clear_object (&job->proc);
  g_clear_object (&job->io_cancel);
  g_clear_object (&job->cancellable);
  g_clear_pointer (&job->stdin_data, g_bytes_unref);
  g_string_free (job->out, TRUE);
  g_string_free (job->err, TRUE);
  g_string_free (job->pending, TRUE);
  g_free (job->backend);
  g_free (job->model);
  g_free (job->fail_message);
  g_free (job);
}

static void
job_clear_sources (Job *job)
{
  g_clear_handle_id (&job->timeout_id, g_source_remove);
  g_clear_handle_id (&job->kill_id, g_source_remove);
  g_clear_handle_id (&job->exit_grace_id, g_source_remove);
  g_clear_handle_id (&job->idle_id, g_source_remove);
  if (job->cancel_source)
    {
      g_source_destroy (job->cancel_source);
      g_clear_pointer (&job->cancel_source, g_source_unref);
    }
}

/* TRUE while any process of the job's group is alive (or a zombie). */
static gboolean
group_alive (Job *job)
{
  return job->pgid > 0 && (kill (-job->pgid, 0) == 0 || errno != ESRCH);
}

static void
job_fail (Job *job, const char *code, const char *message)
{
  EnsCompletion *completion = job->completion;

  if (completion == NULL || job->cmd == NULL)
    return;
  job->completion = NULL;
  job->cmd->host->completion_fail (completion, code, message);
}

/* Drops the job from the list once nothing of it is left running. */
static void
job_maybe_retire (Job *job)
{
  Command *cmd = job->cmd;

  if (cmd == NULL || job->retired || !job->exited || !job->out_eof || !job->err_eof || job->kill_id != 0)
    return;
  job->retired = TRUE;
  /* Should the end not have been reported yet, something is wrong: say so. */
  job_fail (job, "UPSTREAM_ERROR", "the command ended without a result");
  job_clear_sources (job);
  cmd->jobs = g_list_remove (cmd->jobs, job);
  job_unref (job);
}

static gboolean
on_kill_grace (gpointer data)
{
  Job *job = data;

  job->kill_id = 0;
  if (job->pgid > 0)
    kill (-job->pgid, SIGKILL);
  job_maybe_retire (job);
  return G_SOURCE_REMOVE;
}

/* SIGTERM to the whole group now, SIGKILL to what is left after the grace. */
static void
job_kill (Job *job)
{
  if (job->killed || job->pgid <= 0)
    return;
  job->killed = TRUE;
  if (job->exited && !group_alive (job))
    return;
  kill (-job->pgid, SIGTERM);
  job->kill_id = g_timeout_add (KILL_GRACE_MS, on_kill_grace, job);
}

/* Fails the completion at once and kills the command; the job lingers until
 * the process is gone. */
static void
job_abort (Job *job, const char *code, const char *message)
{
  g_clear_handle_id (&job->timeout_id, g_source_remove);
  if (job->cancel_source)
    {
      g_source_destroy (job->cancel_source);
      g_clear_pointer (&job->cancel_source, g_source_unref);
    }
  job_kill (job);
  job_fail (job, code, message);
}

static gboolean
on_timeout (gpointer data)
{
  Job *job = data;
  g_autofree char *message = g_strdup_printf ("the command did not finish within %u ms", job->timeout_ms);

  job->timeout_id = 0;
  job_abort (job, "TIMEOUT", message);
  return G_SOURCE_REMOVE;
}

static gboolean
on_cancelled (GCancellable *cancellable, gpointer data)
{
  Job *job = data;

  job_abort (job, "CANCELLED", "the request was cancelled");
  return G_SOURCE_REMOVE;
}

/* The process is gone and its output read: report the result. */
static void
job_conclude (Job *job)
{
  const EnsHost *host = job->cmd->host;
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonNode) result = NULL;
  g_autoptr (JsonNode) parsed = NULL;
  g_autofree char *response = NULL;
  g_autofree char *model = g_strdup (job->model);
  JsonObject *usage = NULL, *root = NULL;
  gint64 input_tokens, output_tokens;
  gboolean estimated, found_in = FALSE, found_out = FALSE;
  double cost = -1;
  EnsCompletion *completion;

  if (job->completion == NULL)
    return;
  if (!g_subprocess_get_if_exited (job->proc) || g_subprocess_get_exit_status (job->proc) != 0)
    {
      g_autofree char *line = ens_command_last_line (job->err->str);
      g_autofree char *message = NULL;

      if (g_subprocess_get_if_signaled (job->proc))
        message = g_strdup_printf ("the command was killed by signal %d%s%s", g_subprocess_get_term_sig (job->proc),
                                   line ? ": " : "", line ? line : "");
      else
        message = g_strdup_printf ("the command exited with status %d%s%s", g_subprocess_get_exit_status (job->proc),
                                   line ? ": " : "", line ? line : "");
      job_fail (job, "UPSTREAM_ERROR", message);
      return;
    }

  if (job->json_output)
    {
      parsed = ens_command_parse_output (job->out->str);
      if (parsed == NULL)
        {
          job_fail (job, "UPSTREAM_ERROR", "the command did not print a JSON object");
          return;
        }
      root = json_node_get_object (parsed);
      if (json_object_get_boolean_member_with_default (root, "is_error", FALSE))
        {
          g_autofree char *what = ens_command_json_text_member (root, "result");
          g_autofree char *message = g_strdup_printf ("the command reported an error: %s", what ? what : "(no message)");
          job_fail (job, "UPSTREAM_ERROR", message);
          return;
        }
      response = ens_command_json_text_member (root, "result");
      if (response == NULL)
        response = ens_command_json_text_member (root, "response");
      if (response == NULL)
        response = ens_command_json_text_member (root, "content");
      if (response == NULL)
        {
          job_fail (job, "UPSTREAM_ERROR", "the command's JSON has no \"result\", \"response\" or \"content\"");
          return;
        }
      if (!g_utf8_validate (response, -1, NULL))
        {
          char *valid = g_utf8_make_valid (response, -1);
          g_free (response);
          response = valid;
        }
      if (json_object_has_member (root, "model") && JSON_NODE_HOLDS_VALUE (json_object_get_member (root, "model")) &&
          json_node_get_value_type (json_object_get_member (root, "model")) == G_TYPE_STRING)
        {
          g_free (model);
          model = g_strdup (json_object_get_string_member (root, "model"));
        }
      if (json_object_has_member (root, "usage") && JSON_NODE_HOLDS_OBJECT (json_object_get_member (root, "usage")))
        usage = json_object_get_object_member (root, "usage");
      cost = ens_command_json_number (root, "total_cost_usd", ens_command_json_number (root, "cost_usd", -1));
      /* A JSON program does not stream: its whole answer is one chunk. */
      if (*response)
        host->completion_chunk (job->completion, response);
    }
  else
    response = g_utf8_make_valid (job->out->str, (gssize) job->out->len);

  input_tokens = ens_command_usage_member (usage, "input_tokens", "prompt_tokens", &found_in);
  output_tokens = ens_command_usage_member (usage, "output_tokens", "completion_tokens", &found_out);
  estimated = !found_in || !found_out;
  if (!found_in)
    input_tokens = ens_command_estimate_tokens (job->prompt_chars);
  if (!found_out)
    output_tokens = ens_command_estimate_tokens (g_utf8_strlen (response, -1));

  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "response");
  json_builder_add_string_value (b, response);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, model);
  json_builder_set_member_name (b, "usage");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "input_tokens");
  json_builder_add_int_value (b, input_tokens);
  json_builder_set_member_name (b, "output_tokens");
  json_builder_add_int_value (b, output_tokens);
  if (usage)
    {
      /* Prompt-cache counts (claude) are passed on, not added in. */
      static const char *const extra[] = { "cache_creation_input_tokens", "cache_read_input_tokens" };
      for (guint i = 0; i < G_N_ELEMENTS (extra); i++)
        if (ens_command_json_number (usage, extra[i], -1) >= 0)
          {
            json_builder_set_member_name (b, extra[i]);
            json_builder_add_int_value (b, (gint64) ens_command_json_number (usage, extra[i], 0));
          }
    }
  if (estimated)
    {
      json_builder_set_member_name (b, "estimated");
      json_builder_add_boolean_value (b, TRUE);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "finish_reason");
  json_builder_add_string_value (b, "stop");
  if (cost >= 0 && isfinite (cost))
    {
      json_builder_set_member_name (b, "cost_usd");
      json_builder_add_double_value (b, cost);
    }
  json_builder_end_object (b);
  result = json_builder_get_root (b);

  completion = job->completion;
  job->completion = NULL;
  host->completion_finish (completion, result);
}

static void
job_maybe_done (Job *job)
{
  if (job->cmd == NULL || !job->exited || !job->out_eof || !job->err_eof)
    return;
  g_clear_handle_id (&job->timeout_id, g_source_remove);
  g_clear_handle_id (&job->exit_grace_id, g_source_remove);
  if (job->cancel_source)
    {
      g_source_destroy (job->cancel_source);
      g_clear_pointer (&job->cancel_source, g_source_unref);
    }
  job_conclude (job);
  job_maybe_retire (job);
}

static void
flush_pending (Job *job, gboolean all)
{
  g_autofree char *text = NULL;

  if (job->json_output || job->pending->len == 0)
    return;
  text = ens_command_take_utf8 (job->pending, all);
  if (*text && job->completion && job->cmd)
    job->cmd->host->completion_chunk (job->completion, text);
}

static void on_stdout (GObject *source, GAsyncResult *res, gpointer data);
static void on_stderr (GObject *source, GAsyncResult *res, gpointer data);

static void
on_stdout (GObject *source, GAsyncResult *res, gpointer data)
{
  Job *job = data;
  g_autoptr (GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), res, NULL);
  gsize size = bytes ? g_bytes_get_size (bytes) : 0;

  if (job->cmd == NULL)
    {
      job_unref (job);
      return;
    }
  if (size == 0)
    {
      /* End of file, or an error (including our own cancel): done reading. */
      job->out_eof = TRUE;
      flush_pending (job, TRUE);
      job_maybe_done (job);
      job_unref (job);
      return;
    }
  g_string_append_len (job->out, g_bytes_get_data (bytes, NULL), (gssize) size);
  if (!job->json_output && job->completion)
    {
      g_string_append_len (job->pending, g_bytes_get_data (bytes, NULL), (gssize) size);
      flush_pending (job, FALSE);
    }
  /* The reference passes on to the next read. */
  g_input_stream_read_bytes_async (G_INPUT_STREAM (source), READ_SIZE, G_PRIORITY_DEFAULT, job->io_cancel,
                                   on_stdout, job);
}

static void
on_stderr (GObject *source, GAsyncResult *res, gpointer data)
{
  Job *job = data;
  g_autoptr (GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), res, NULL);
  gsize size = bytes ? g_bytes_get_size (bytes) : 0;

  if (job->cmd == NULL)
    {
      job_unref (job);
      return;
    }
  if (size == 0)
    {
      job->err_eof = TRUE;
      job_maybe_done (job);
      job_unref (job);
      return;
    }
  g_string_append_len (job->err, g_bytes_get_data (bytes, NULL), (gssize) size);
  if (job->err->len > STDERR_KEEP)
    g_string_erase (job->err, 0, (gssize) (job->err->len - STDERR_KEEP));
  g_input_stream_read_bytes_async (G_INPUT_STREAM (source), READ_SIZE, G_PRIORITY_DEFAULT, job->io_cancel,
                                   on_stderr, job);
}

static gboolean
on_exit_grace (gpointer data)
{
  Job *job = data;

  /* The command exited but something it started still holds its output
   * open: kill the rest of its group and stop reading. */
  job->exit_grace_id = 0;
  if (job->pgid > 0)
    kill (-job->pgid, SIGKILL);
  g_cancellable_cancel (job->io_cancel);
  return G_SOURCE_REMOVE;
}

static void
on_exited (GObject *source, GAsyncResult *res, gpointer data)
{
  Job *job = data;
  gboolean ok = g_subprocess_wait_finish (G_SUBPROCESS (source), res, NULL);

  if (job->cmd == NULL || !ok)
    {
      job_unref (job);
      return;
    }
  job->exited = TRUE;
  if (job->kill_id && !group_alive (job))
    g_clear_handle_id (&job->kill_id, g_source_remove);
  if (!job->out_eof || !job->err_eof)
    job->exit_grace_id = g_timeout_add (EXIT_GRACE_MS, on_exit_grace, job);
  job_maybe_done (job);
  job_maybe_retire (job);
  job_unref (job);
}

static void
on_stdin_written (GObject *source, GAsyncResult *res, gpointer data)
{
  Job *job = data;

  /* A command that does not read its input makes this fail (EPIPE); that
   * is its business, so the error is ignored. */
  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), res, NULL, NULL);
  g_output_stream_close (G_OUTPUT_STREAM (source), NULL, NULL);
  job_unref (job);
}

static gboolean
on_fail_idle (gpointer data)
{
  Job *job = data;

  job->idle_id = 0;
  job_fail (job, job->fail_code, job->fail_message);
  job_maybe_retire (job);
  return G_SOURCE_REMOVE;
}

/* Runs in the child between fork and exec: a process group of its own, so
 * one kill() reaches everything the command starts. */
static void
child_setup (gpointer data)
{
  setpgid (0, 0);
}

/* Resolves @program like execvp would; FALSE when it cannot be run. */
static gboolean
program_exists (const char *program)
{
  g_autofree char *found = NULL;

  if (strchr (program, '/'))
    return g_file_test (program, G_FILE_TEST_IS_REGULAR) && access (program, X_OK) == 0;
  found = g_find_program_in_path (program);
  return found != NULL;
}

static gboolean
job_spawn (Job *job, const Backend *be, JsonObject *req, GError **error, const char **code)
{
  JsonNode *msgs = json_object_get_member (req, "messages");
  g_autofree char *prompt = ens_command_flatten_prompt (msgs && JSON_NODE_HOLDS_ARRAY (msgs) ? json_node_get_array (msgs) : NULL);
  const char *requested = json_object_get_string_member_with_default (req, "model", NULL);
  const char *upstream;
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  GOutputStream *in;

  if (requested == NULL || *requested == '\0')
    requested = be->models[0] ? be->models[0] : be->name;
  upstream = g_hash_table_lookup (be->model_map, requested);
  if (upstream == NULL)
    upstream = requested;
  job->model = g_strdup (upstream); /* the result names the model that ran */
  job->prompt_chars = g_utf8_strlen (prompt, -1);

  *code = "NOT_CONFIGURED";
  if (be->command[0] == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "provider \"%s\" has no command", be->name);
      return FALSE;
    }
  for (guint i = 0; be->command[i]; i++)
    g_ptr_array_add (argv, ens_command_expand_arg (be->command[i], prompt, upstream));
  g_ptr_array_add (argv, NULL);
  if (!program_exists (g_ptr_array_index (argv, 0)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "command \"%s\" not found",
                   (char *) g_ptr_array_index (argv, 0));
      return FALSE;
    }

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  job->proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, error);
  if (job->proc == NULL)
    {
      if (!g_error_matches (*error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT) &&
          !g_error_matches (*error, G_SPAWN_ERROR, G_SPAWN_ERROR_ACCES))
        *code = "UPSTREAM_ERROR";
      return FALSE;
    }
  /* No identifier once the command has already exited (and been reaped):
   * then there is no group left to signal. pgid 0 must never reach kill(). */
  {
    const char *ident = g_subprocess_get_identifier (job->proc);
    job->pgid = ident ? (GPid) atoi (ident) : 0;
  }

  in = g_subprocess_get_stdin_pipe (job->proc);
  if (be->prompt_argument)
    g_output_stream_close (in, NULL, NULL);
  else
    {
      gsize len = strlen (prompt);
      job->stdin_data = g_bytes_new_take (g_steal_pointer (&prompt), len);
      g_output_stream_write_all_async (in, g_bytes_get_data (job->stdin_data, NULL),
                                       g_bytes_get_size (job->stdin_data), G_PRIORITY_DEFAULT, job->io_cancel,
                                       on_stdin_written, job_ref (job));
    }
  g_input_stream_read_bytes_async (g_subprocess_get_stdout_pipe (job->proc), READ_SIZE, G_PRIORITY_DEFAULT,
                                   job->io_cancel, on_stdout, job_ref (job));
  g_input_stream_read_bytes_async (g_subprocess_get_stderr_pipe (job->proc), READ_SIZE, G_PRIORITY_DEFAULT,
                                   job->io_cancel, on_stderr, job_ref (job));
  g_subprocess_wait_async (job->proc, job->io_cancel, on_exited, job_ref (job));
  return TRUE;
}

static void
command_complete (gpointer instance, const char *backend, JsonNode *request, EnsCompletion *completion,
                  GCancellable *cancellable)
{
  Command *cmd = instance;
  Job *job = g_new0 (Job, 1);
  JsonObject *req = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;
  const Backend *be;
  g_autoptr (GError) error = NULL;
  const char *code = NULL;

  job->ref = 1; /* the list's */
  job->cmd = cmd;
  job->completion = completion;
  job->backend = g_strdup (backend);
  job->io_cancel = g_cancellable_new ();
  job->out = g_string_new (NULL);
  job->err = g_string_new (NULL);
  job->pending = g_string_new (NULL);
  cmd->jobs = g_list_prepend (cmd->jobs, job);

  be = g_hash_table_lookup (cmd->backends, backend);
  if (be == NULL)
    {
      /* The configuration may have changed since backends() was called. */
      ens_command_load_backends (cmd);
      be = g_hash_table_lookup (cmd->backends, backend);
    }
  if (be == NULL)
    {
      code = "NOT_CONFIGURED";
      job->fail_message = g_strdup_printf ("no command provider is configured as \"%s\"", backend);
    }
  else if (req == NULL)
    {
      code = "BAD_REQUEST";
      job->fail_message = g_strdup ("the request is not a JSON object");
    }
  else if (g_cancellable_is_cancelled (cancellable))
    {
      code = "CANCELLED";
      job->fail_message = g_strdup ("the request was cancelled");
    }
  else if (!job_spawn (job, be, req, &error, &code))
    job->fail_message = g_strdup (error->message);

  if (job->proc == NULL)
    {
      /* Never report from inside complete(). */
      job->fail_code = code;
      job->exited = job->out_eof = job->err_eof = TRUE;
      job->idle_id = g_idle_add (on_fail_idle, job);
      return;
    }

  cmd->started++;
  job->json_output = be->json_output;
  job->timeout_ms = be->timeout_ms;
  job->timeout_id = g_timeout_add (be->timeout_ms, on_timeout, job);
  if (cancellable)
    {
      job->cancellable = g_object_ref (cancellable);
      job->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (job->cancel_source, G_SOURCE_FUNC (on_cancelled), job, NULL);
      g_source_attach (job->cancel_source, g_main_context_get_thread_default ());
    }
}

static JsonNode *
command_describe (gpointer instance)
{
  Command *cmd = instance;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  GHashTableIter iter;
  gpointer key;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "backends");
  json_builder_begin_array (b);
  g_hash_table_iter_init (&iter, cmd->backends);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    json_builder_add_string_value (b, key);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "started");
  json_builder_add_int_value (b, (gint64) cmd->started);
  json_builder_set_member_name (b, "running");
  json_builder_begin_array (b);
  for (GList *l = cmd->jobs; l; l = l->next)
    {
      Job *job = l->data;
      if (job->proc == NULL)
        continue;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "backend");
      json_builder_add_string_value (b, job->backend);
      json_builder_set_member_name (b, "pid");
      json_builder_add_int_value (b, job->pgid);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static gpointer
command_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  Command *cmd;

  if (!ENS_STRUCT_HAS (host, EnsHost, completion_fail))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old for providers");
      return NULL;
    }
  cmd = g_new0 (Command, 1);
  cmd->host = host;
  cmd->self = self;
  cmd->backends = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, ens_command_backend_free);
  return cmd;
}

static void
command_stop (gpointer instance)
{
  Command *cmd = instance;

  /* Running commands are killed outright (no grace: no timer may outlive
   * stop()); GSubprocess still reaps them.  Late GIO callbacks only drop
   * their job reference.  The host ends the completions themselves. */
  for (GList *l = cmd->jobs; l; l = l->next)
    {
      Job *job = l->data;

      job->cmd = NULL;
      job->completion = NULL;
      if (job->proc && job->pgid > 0 && (!job->exited || group_alive (job)))
        kill (-job->pgid, SIGKILL);
      g_cancellable_cancel (job->io_cancel);
      job_clear_sources (job);
      job_unref (job);
    }
  g_list_free (cmd->jobs);
  g_hash_table_unref (cmd->backends);
  g_free (cmd);
}

static const EnsProviderVTable command_vtable = {
  .struct_size = sizeof (EnsProviderVTable),
  .backends = ens_command_backends,
  .complete = command_complete,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_PROVIDER, "provider-command", "1.0",
                   "Completions from a command line program such as claude -p", ENS_PLUGIN_FLAG_NONE, command_init,
                   command_stop, command_describe, &command_vtable)

