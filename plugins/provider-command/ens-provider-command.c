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
#include <ensemble/ensemble.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define PROVIDER_SCHEMA "org.ensemble.Provider"
#define READ_SIZE 8192
#define STDERR_KEEP (64 * 1024) /* only the tail of stderr matters */
#define KILL_GRACE_MS 2000      /* SIGTERM, then SIGKILL after this */
#define EXIT_GRACE_MS 1000      /* after exit, how long leftovers may hold the pipes */

/* One configured backend; a snapshot of its settings. */
typedef struct {
  char *name;
  char **command;
  gboolean prompt_argument; /* prompt-mode 'argument' (else 'stdin') */
  gboolean json_output;     /* output-format 'json' (else 'text') */
  char **models;
  GHashTable *model_map;    /* requested name -> upstream name */
  double quality, cost_input, cost_output;
  guint latency_ms, context_window, max_concurrency, timeout_ms;
  char **capabilities;
} Backend;

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  GHashTable *backends; /* name -> Backend */
  GList *jobs;          /* Job *, each holding one reference for the list */
  guint64 started;
} Command;

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

/* ---- backends ---- */

static void
backend_free (gpointer data)
{
  Backend *b = data;

  g_free (b->name);
  g_strfreev (b->command);
  g_strfreev (b->models);
  g_hash_table_unref (b->model_map);
  g_strfreev (b->capabilities);
  g_free (b);
}

static gboolean
valid_name (const char *name)
{
  if (name == NULL || *name == '\0')
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

/* Re-reads the providers setting; keeps the old table when nothing is there
 * to read from. */
static void
load_backends (Command *cmd)
{
  const char *id = cmd->host->plugin_id (cmd->self);
  g_autoptr (GVariant) names = cmd->host->config_get (cmd->self, "providers");
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, backend_free);
  g_autofree const char **list = NULL;

  if (names && g_variant_is_of_type (names, G_VARIANT_TYPE_STRING_ARRAY))
    list = g_variant_get_strv (names, NULL);
  for (guint i = 0; list && list[i]; i++)
    {
      g_autofree char *path = NULL;
      g_autoptr (GSettings) s = NULL;
      g_autofree char *plugin = NULL;
      g_autoptr (GVariant) map = NULL;
      g_autofree char *mode = NULL, *format = NULL;
      GVariantIter iter;
      const char *from, *to;
      Backend *b;

      if (!valid_name (list[i]))
        {
          ENS_LOG (cmd->host, cmd->self, G_LOG_LEVEL_WARNING, "provider name \"%s\" is not valid; skipped", list[i]);
          continue;
        }
      if (g_hash_table_contains (table, list[i]))
        continue;
      path = g_strdup_printf ("/org/ensemble/daemon/providers/%s/", list[i]);
      s = cmd->host->settings_new (cmd->self, PROVIDER_SCHEMA, path);
      if (s == NULL)
        continue;
      plugin = g_settings_get_string (s, "plugin");
      if (g_strcmp0 (plugin, id) != 0)
        continue;

      b = g_new0 (Backend, 1);
      b->name = g_strdup (list[i]);
      b->command = g_settings_get_strv (s, "command");
      mode = g_settings_get_string (s, "prompt-mode");
      b->prompt_argument = g_strcmp0 (mode, "argument") == 0;
      format = g_settings_get_string (s, "output-format");
      b->json_output = g_strcmp0 (format, "json") == 0;
      b->models = g_settings_get_strv (s, "models");
      b->model_map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      map = g_settings_get_value (s, "model-map");
      g_variant_iter_init (&iter, map);
      while (g_variant_iter_next (&iter, "{&s&s}", &from, &to))
        g_hash_table_insert (b->model_map, g_strdup (from), g_strdup (to));
      b->quality = g_settings_get_double (s, "quality");
      b->cost_input = g_settings_get_double (s, "cost-input-per-1k");
      b->cost_output = g_settings_get_double (s, "cost-output-per-1k");
      b->latency_ms = g_settings_get_uint (s, "latency-ms");
      b->context_window = g_settings_get_uint (s, "context-window");
      b->capabilities = g_settings_get_strv (s, "capabilities");
      b->max_concurrency = g_settings_get_uint (s, "max-concurrency");
      b->timeout_ms = g_settings_get_uint (s, "timeout-ms");
      if (b->command[0] == NULL)
        ENS_LOG (cmd->host, cmd->self, G_LOG_LEVEL_WARNING, "provider \"%s\" has no command", b->name);
      g_hash_table_insert (table, b->name, b);
    }
  g_hash_table_unref (cmd->backends);
  cmd->backends = table;
}

static void
add_strv (JsonBuilder *b, const char *member, char **strv)
{
  json_builder_set_member_name (b, member);
  json_builder_begin_array (b);
  for (guint i = 0; strv && strv[i]; i++)
    json_builder_add_string_value (b, strv[i]);
  json_builder_end_array (b);
}

static int
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (((const Backend *) *(void *const *) a)->name, ((const Backend *) *(void *const *) b)->name);
}

static JsonNode *
command_backends (gpointer instance)
{
  Command *cmd = instance;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  load_backends (cmd);
  g_hash_table_iter_init (&iter, cmd->backends);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (sorted, value);
  g_ptr_array_sort (sorted, by_name);
  json_builder_begin_array (b);
  for (guint i = 0; i < sorted->len; i++)
    {
      const Backend *be = g_ptr_array_index (sorted, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, be->name);
      json_builder_set_member_name (b, "provider");
      json_builder_add_string_value (b, cmd->host->plugin_id (cmd->self));
      add_strv (b, "models", be->models);
      json_builder_set_member_name (b, "model_map");
      json_builder_begin_object (b);
      {
        GHashTableIter mi;
        gpointer from, to;
        g_hash_table_iter_init (&mi, be->model_map);
        while (g_hash_table_iter_next (&mi, &from, &to))
          {
            json_builder_set_member_name (b, from);
            json_builder_add_string_value (b, to);
          }
      }
      json_builder_end_object (b);
      json_builder_set_member_name (b, "quality");
      json_builder_add_double_value (b, be->quality);
      json_builder_set_member_name (b, "cost_per_1k_input");
      json_builder_add_double_value (b, be->cost_input);
      json_builder_set_member_name (b, "cost_per_1k_output");
      json_builder_add_double_value (b, be->cost_output);
      json_builder_set_member_name (b, "latency_ms");
      json_builder_add_int_value (b, be->latency_ms);
      json_builder_set_member_name (b, "context_window");
      json_builder_add_int_value (b, be->context_window);
      add_strv (b, "capabilities", be->capabilities);
      json_builder_set_member_name (b, "max_concurrency");
      json_builder_add_int_value (b, be->max_concurrency);
      json_builder_set_member_name (b, "local");
      json_builder_add_boolean_value (b, FALSE);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  return json_builder_get_root (b);
}

/* ---- text helpers ---- */

/* (transfer full) the text of a message content: a string, or the "text"
 * members of an array of parts. */
static char *
content_text (JsonNode *content)
{
  GString *text = g_string_new (NULL);

  if (content && JSON_NODE_HOLDS_VALUE (content) && json_node_get_value_type (content) == G_TYPE_STRING)
    g_string_append (text, json_node_get_string (content));
  else if (content && JSON_NODE_HOLDS_ARRAY (content))
    {
      JsonArray *parts = json_node_get_array (content);
      for (guint i = 0; i < json_array_get_length (parts); i++)
        {
          JsonNode *part = json_array_get_element (parts, i);
          JsonObject *obj = JSON_NODE_HOLDS_OBJECT (part) ? json_node_get_object (part) : NULL;
          JsonNode *t = obj ? json_object_get_member (obj, "text") : NULL;
          if (t && JSON_NODE_HOLDS_VALUE (t) && json_node_get_value_type (t) == G_TYPE_STRING)
            g_string_append (text, json_node_get_string (t));
        }
    }
  return g_string_free (text, FALSE);
}

/* (transfer full) the conversation as one text: the system prompt first,
 * then the turns.  A lone user message is passed as it is; a longer
 * conversation labels each turn so the program sees who said what. */
static char *
flatten_prompt (JsonArray *messages)
{
  GString *system = g_string_new (NULL);
  g_autoptr (GPtrArray) turns = g_ptr_array_new_with_free_func (g_free);
  guint users = 0, assistants = 0;
  GString *out;

  for (guint i = 0; messages && i < json_array_get_length (messages); i++)
    {
      JsonNode *m = json_array_get_element (messages, i);
      JsonObject *obj = JSON_NODE_HOLDS_OBJECT (m) ? json_node_get_object (m) : NULL;
      const char *role = obj ? json_object_get_string_member_with_default (obj, "role", "user") : "user";
      g_autofree char *text = content_text (obj ? json_object_get_member (obj, "content") : NULL);

      if (g_strcmp0 (role, "system") == 0)
        {
          if (system->len)
            g_string_append (system, "\n\n");
          g_string_append (system, text);
        }
      else
        {
          gboolean assistant = g_strcmp0 (role, "assistant") == 0;
          assistants += assistant;
          users += !assistant;
          g_ptr_array_add (turns, g_strconcat (assistant ? "Assistant: " : "User: ", text, NULL));
        }
    }

  out = g_string_new (system->str);
  if (users == 1 && assistants == 0)
    {
      /* Drop the "User: " label of the only turn. */
      if (out->len)
        g_string_append (out, "\n\n");
      g_string_append (out, (char *) g_ptr_array_index (turns, 0) + strlen ("User: "));
    }
  else
    for (guint i = 0; i < turns->len; i++)
      {
        if (out->len)
          g_string_append (out, "\n\n");
        g_string_append (out, g_ptr_array_index (turns, i));
      }
  g_string_free (system, TRUE);
  return g_string_free (out, FALSE);
}

/* (transfer full) @arg with every {prompt} and {model} replaced. */
static char *
expand_arg (const char *arg, const char *prompt, const char *model)
{
  GString *out = g_string_new (arg);

  g_string_replace (out, "{model}", model, 0);
  g_string_replace (out, "{prompt}", prompt, 0);
  return g_string_free (out, FALSE);
}

/* (transfer full) the longest valid UTF-8 prefix of @pending, which it
 * removes; an incomplete character at the end waits for the next read
 * unless @flush. */
static char *
take_utf8 (GString *pending, gboolean flush)
{
  const char *end;
  gsize keep = 0, n;
  char *text;

  if (!flush && !g_utf8_validate_len (pending->str, pending->len, &end))
    {
      gsize rest = pending->len - (gsize) (end - pending->str);
      if (rest < 4 && g_utf8_get_char_validated (end, (gssize) rest) == (gunichar) -2)
        keep = rest;
    }
  n = pending->len - keep;
  text = g_utf8_make_valid (pending->str, (gssize) n);
  g_string_erase (pending, 0, (gssize) n);
  return text;
}

/* (transfer full) the last non-empty line of @text, or NULL. */
static char *
last_line (const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = g_strv_length (lines); i > 0; i--)
    {
      g_autofree char *line = g_utf8_make_valid (lines[i - 1], -1);
      g_strstrip (line);
      if (*line)
        return g_steal_pointer (&line);
    }
  return NULL;
}

static gint64
estimate_tokens (glong chars)
{
  return (chars + 3) / 4;
}

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

/* (transfer full) the text of a "content" member: a string or an array of
 * {type: "text", text} blocks (the Anthropic shape); NULL otherwise. */
static char *
json_text_member (JsonObject *obj, const char *member)
{
  JsonNode *node = json_object_get_member (obj, member);

  if (node == NULL)
    return NULL;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (node));
  if (JSON_NODE_HOLDS_ARRAY (node))
    return content_text (node);
  return NULL;
}

/* (transfer full) the JSON object the command printed: the whole output, or
 * failing that its last line (programs that log before the result). */
static JsonNode *
parse_output (const char *text)
{
  g_autoptr (JsonNode) root = json_from_string (text, NULL);
  g_autofree char *line = NULL;

  if (root && JSON_NODE_HOLDS_OBJECT (root))
    return g_steal_pointer (&root);
  line = last_line (text);
  g_clear_pointer (&root, json_node_unref);
  if (line)
    root = json_from_string (line, NULL);
  if (root && JSON_NODE_HOLDS_OBJECT (root))
    return g_steal_pointer (&root);
  return NULL;
}

static gint64
usage_member (JsonObject *usage, const char *name, const char *alias, gboolean *found)
{
  const char *names[] = { name, alias };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      JsonNode *n = usage && names[i] ? json_object_get_member (usage, names[i]) : NULL;
      if (n && JSON_NODE_HOLDS_VALUE (n) &&
          (json_node_get_value_type (n) == G_TYPE_INT64 || json_node_get_value_type (n) == G_TYPE_DOUBLE))
        {
          *found = TRUE;
          return json_node_get_int (n);
        }
    }
  return 0;
}

/* A number member of @obj, or @def. */
static double
json_number (JsonObject *obj, const char *member, double def)
{
  JsonNode *n = json_object_get_member (obj, member);

  if (n && JSON_NODE_HOLDS_VALUE (n) &&
      (json_node_get_value_type (n) == G_TYPE_INT64 || json_node_get_value_type (n) == G_TYPE_DOUBLE))
    return json_node_get_double (n);
  return def;
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
      g_autofree char *line = last_line (job->err->str);
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
      parsed = parse_output (job->out->str);
      if (parsed == NULL)
        {
          job_fail (job, "UPSTREAM_ERROR", "the command did not print a JSON object");
          return;
        }
      root = json_node_get_object (parsed);
      if (json_object_get_boolean_member_with_default (root, "is_error", FALSE))
        {
          g_autofree char *what = json_text_member (root, "result");
          g_autofree char *message = g_strdup_printf ("the command reported an error: %s", what ? what : "(no message)");
          job_fail (job, "UPSTREAM_ERROR", message);
          return;
        }
      response = json_text_member (root, "result");
      if (response == NULL)
        response = json_text_member (root, "response");
      if (response == NULL)
        response = json_text_member (root, "content");
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
      cost = json_number (root, "total_cost_usd", json_number (root, "cost_usd", -1));
      /* A JSON program does not stream: its whole answer is one chunk. */
      if (*response)
        host->completion_chunk (job->completion, response);
    }
  else
    response = g_utf8_make_valid (job->out->str, (gssize) job->out->len);

  input_tokens = usage_member (usage, "input_tokens", "prompt_tokens", &found_in);
  output_tokens = usage_member (usage, "output_tokens", "completion_tokens", &found_out);
  estimated = !found_in || !found_out;
  if (!found_in)
    input_tokens = estimate_tokens (job->prompt_chars);
  if (!found_out)
    output_tokens = estimate_tokens (g_utf8_strlen (response, -1));

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
        if (json_number (usage, extra[i], -1) >= 0)
          {
            json_builder_set_member_name (b, extra[i]);
            json_builder_add_int_value (b, (gint64) json_number (usage, extra[i], 0));
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
  text = take_utf8 (job->pending, all);
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
  g_autofree char *prompt = flatten_prompt (msgs && JSON_NODE_HOLDS_ARRAY (msgs) ? json_node_get_array (msgs) : NULL);
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
    g_ptr_array_add (argv, expand_arg (be->command[i], prompt, upstream));
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
      load_backends (cmd);
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
  cmd->backends = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, backend_free);
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
  .backends = command_backends,
  .complete = command_complete,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_PROVIDER, "provider-command", "1.0",
                   "Completions from a command line program such as claude -p", ENS_PLUGIN_FLAG_NONE, command_init,
                   command_stop, command_describe, &command_vtable)
