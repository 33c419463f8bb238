/* ens-agent-struct — creates and checks directory structures inside one
 * workspace root (setting struct-workspace-root; empty: STATE-DIR/workspace).
 *
 *   create_directory   {path}              -> {path, created}
 *   create_structure   {path?, tree}       -> {created: [paths], root}
 *   validate_structure {path?, tree}       -> {valid, missing, extra, mismatched}
 *
 * A tree is {"name": {"type": "dir", "children"?: {...}} |
 *                    {"type": "file", "content"?: "text"}}.
 * Every path in an answer is relative to the workspace root.
 *
 * Names: every path segment and tree name is checked by the naming agent
 * through the bus (validate_name); a file name may carry one extension,
 * checked here ([a-z0-9]{1,10}), its stem going to the naming agent.
 *
 * Confinement: nothing is ever resolved by path.  Each request opens the root
 * and walks down with openat (O_NOFOLLOW | O_DIRECTORY), so a symlink anywhere
 * is refused (PATH_ESCAPE) and a component swapped for a symlink between two
 * steps cannot redirect us; everything is created relative to those dirfds
 * with O_EXCL / mkdirat and never followed.
 *
 * All-or-nothing: a structure is built in a fresh hidden staging folder in
 * the root, then its top-level entries are moved into place with
 * renameat2 (RENAME_NOREPLACE); any failure removes the staging tree (and
 * moves back what was already placed), so no partial tree is left.
 *
 * The file-system work runs on the main loop: it is bounded by the limits
 * below and by the transports' request size.
 *
 * The parts: see ens-struct.h. */
#include "ens-struct.h"

#include "ens-host-config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- jobs and the naming agent */

static void
job_free (Job *job)
{
  g_strfreev (job->base);
  g_free (job->base_rel);
  ens_struct_entry_free (job->tree);
  g_ptr_array_unref (job->names);
  g_ptr_array_unref (job->name_where);
  g_hash_table_unref (job->name_index);
  g_ptr_array_unref (job->results);
  g_free (job);
}

static Job *
job_new (Struct *st, EnsResponder *responder, Op op)
{
  Job *job = g_new0 (Job, 1);

  job->st = st;
  job->responder = responder;
  job->op = op;
  job->tree = ens_struct_entry_new_dir (NULL, "");
  job->names = g_ptr_array_new_with_free_func (g_free);
  job->name_where = g_ptr_array_new_with_free_func (g_free);
  job->name_index = g_hash_table_new (g_str_hash, g_str_equal);
  job->results = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_struct_fail_free);
  return job;
}

static void job_pump (Job *job);

/* The naming agent's verdict on one name. */
static void
on_validate_name (EnsMessage *reply, gpointer user_data)
{
  Ticket *ticket = user_data;
  Job *job = ticket->job;
  guint index = ticket->index;
  const char *name = job->names->pdata[index];
  const char *where = job->name_where->pdata[index];
  Fail *fail = NULL;

  g_free (ticket);
  job->in_flight--;
  if (reply->kind == ENS_MESSAGE_ERROR)
    {
      const char *code = reply->error_code ? reply->error_code : "";

      if (strcmp (code, ENS_ERR_INVALID_PARAMETERS) == 0)
        ens_struct_fail_name (&fail, name, where, "naming",
                   reply->error_message ? reply->error_message : "refused by the naming agent");
      else
        {
          JsonObject *obj;
          JsonNode *details = ens_struct_details_new (&obj, name, NULL);
          gboolean gone = strcmp (code, ENS_ERR_AGENT_NOT_FOUND) == 0 || strcmp (code, ENS_ERR_AGENT_GONE) == 0 ||
                          strcmp (code, ENS_ERR_AGENT_NOT_CONNECTED) == 0 || strcmp (code, ENS_ERR_TIMEOUT) == 0;

          json_object_set_string_member (obj, "agent", NAMING_AGENT);
          json_object_set_string_member (obj, "cause", code);
          if (reply->error_message)
            json_object_set_string_member (obj, "cause_message", reply->error_message);
          ens_struct_fail_set (&fail, gone ? "NAMING_UNAVAILABLE" : "NAMING_FAILED", details,
                    gone ? "the naming agent is not available (%s); names cannot be checked"
                         : "the naming agent could not check a name (%s)",
                    code);
        }
    }
  else
    {
      JsonObject *data =
        reply->data && JSON_NODE_HOLDS_OBJECT (reply->data) ? json_node_get_object (reply->data) : NULL;
      JsonNode *valid = ens_member (data, "valid");

      if (valid == NULL || !JSON_NODE_HOLDS_VALUE (valid) || json_node_get_value_type (valid) != G_TYPE_BOOLEAN)
        {
          JsonObject *obj;
          JsonNode *details = ens_struct_details_new (&obj, name, NULL);
          json_object_set_string_member (obj, "agent", NAMING_AGENT);
          ens_struct_fail_set (&fail, "NAMING_FAILED", details, "the naming agent answered validate_name without \"valid\"");
        }
      else if (!json_node_get_boolean (valid))
        {
          JsonObject *obj;
          JsonNode *details = ens_struct_details_new (&obj, name, NULL);
          JsonNode *reasons = json_object_get_member (data, "reasons");
          g_autoptr (GString) text = g_string_new (NULL);

          json_object_set_string_member (obj, "name", name);
          json_object_set_string_member (obj, "path", where);
          if (reasons && JSON_NODE_HOLDS_ARRAY (reasons) && json_array_get_length (json_node_get_array (reasons)) > 0)
            {
              JsonArray *arr = json_node_get_array (reasons);
              for (guint i = 0; i < json_array_get_length (arr); i++)
                {
                  JsonNode *r = json_array_get_element (arr, i);
                  JsonNode *m =
                    r && JSON_NODE_HOLDS_OBJECT (r) ? json_object_get_member (json_node_get_object (r), "message") : r;

                  /* Reasons are {rule, message, ...} objects, or plain strings. */
                  if (ens_struct_is_string_node (m))
                    g_string_append_printf (text, "%s%s", text->len ? "; " : "", json_node_get_string (m));
                }
              json_object_set_member (obj, "reasons", json_node_copy (reasons));
            }
          else
            {
              JsonArray *arr = json_array_new ();
              json_array_add_string_element (arr, "refused by the naming agent");
              json_object_set_array_member (obj, "reasons", arr);
            }
          json_object_set_string_member (obj, "source", NAMING_AGENT);
          ens_struct_fail_set (&fail, "INVALID_NAME", details, "invalid name \"%s\" at %s: %s", name, where,
                    text->len ? text->str : "refused by the naming agent");
        }
    }
  if (fail)
    {
      job->failed = TRUE;
      g_ptr_array_index (job->results, index) = fail;
    }
  job_pump (job);
}

/* Sends more names, or, when all are answered, runs the job.  Frees @job
 * when it is done. */
static void
job_pump (Job *job)
{
  Struct *st = job->st;

  if (st == NULL)
    {
      /* Orphaned by stop(): the host has answered the request already. */
      if (job->in_flight == 0)
        job_free (job);
      return;
    }
  while (!job->failed && job->next < job->names->len && job->in_flight < NAMING_WINDOW)
    {
      Ticket *ticket = g_new0 (Ticket, 1);
      JsonNode *data = json_node_new (JSON_NODE_OBJECT);
      JsonObject *obj = json_object_new ();

      json_node_take_object (data, obj);
      json_object_set_string_member (obj, "name", job->names->pdata[job->next]);
      /* Each name we ask about is one path segment (a file's stem). */
      json_object_set_string_member (obj, "kind", "segment");
      ticket->job = job;
      ticket->index = job->next++;
      job->in_flight++;
      st->host->request (st->self, NAMING_AGENT, "validate_name", data, NAMING_TIMEOUT_MS, on_validate_name, ticket);
      json_node_unref (data);
    }
  if (job->in_flight > 0 || (!job->failed && job->next < job->names->len))
    return;

  st->jobs = g_list_remove (st->jobs, job);
  if (job->failed)
    {
      /* Every name before the last one sent has its answer: report the
       * first failure in request order. */
      for (guint i = 0; i < job->results->len; i++)
        if (job->results->pdata[i])
          {
            ens_struct_respond_fail (st, job->responder, job->results->pdata[i]);
            break;
          }
    }
  else if (job->op == OP_VALIDATE_STRUCTURE)
    ens_struct_run_validate (job);
  else
    ens_struct_run_create (job);
  job_free (job);
}

/* ---------------------------------------------------------------- the agent */

static void
struct_handle (gpointer instance, EnsMessage *request, EnsResponder *responder)
{
  Struct *st = instance;
  JsonObject *params = NULL;
  g_autoptr (Fail) fail = NULL;
  Job *job;
  Op op;
  JsonNode *path, *tree;
  const char *path_text = "";
  guint count = 0;

  if (g_strcmp0 (request->action, "create_directory") == 0)
    op = OP_CREATE_DIRECTORY;
  else if (g_strcmp0 (request->action, "create_structure") == 0)
    op = OP_CREATE_STRUCTURE;
  else if (g_strcmp0 (request->action, "validate_structure") == 0)
    op = OP_VALIDATE_STRUCTURE;
  else
    {
      g_autofree char *text = g_strdup_printf ("struct has no action \"%s\"", request->action);
      st->host->respond_error (responder, ENS_ERR_UNKNOWN_ACTION, text, NULL);
      return;
    }

  if (request->data && JSON_NODE_HOLDS_OBJECT (request->data))
    params = json_node_get_object (request->data);
  else if (request->data && !JSON_NODE_HOLDS_NULL (request->data))
    {
      ens_struct_fail_params (&fail, "data", "an object", "not an object");
      ens_struct_respond_fail (st, responder, fail);
      return;
    }

  job = job_new (st, responder, op);
  path = params ? json_object_get_member (params, "path") : NULL;
  tree = params ? json_object_get_member (params, "tree") : NULL;
  if (path && !JSON_NODE_HOLDS_NULL (path))
    {
      if (!ens_struct_is_string_node (path))
        ens_struct_fail_params (&fail, "path", "a relative path string", "not a string");
      else
        path_text = json_node_get_string (path);
    }
  else if (op == OP_CREATE_DIRECTORY)
    ens_struct_fail_params (&fail, "path", "a relative path string", "missing");

  if (fail == NULL)
    ens_struct_parse_path (job, path_text, op == OP_CREATE_DIRECTORY, &fail);
  if (fail == NULL && op != OP_CREATE_DIRECTORY)
    {
      if (tree == NULL || JSON_NODE_HOLDS_NULL (tree))
        ens_struct_fail_params (&fail, "tree", "an object of entries", "missing");
      else if (!JSON_NODE_HOLDS_OBJECT (tree))
        ens_struct_fail_params (&fail, "tree", "an object of entries", "not an object");
      else
        ens_struct_parse_tree (job, json_node_get_object (tree), job->tree, "tree", 1, &count, &fail);
    }
  if (fail)
    {
      ens_struct_respond_fail (st, responder, fail);
      job_free (job);
      return;
    }
  g_ptr_array_set_size (job->results, job->names->len);
  st->jobs = g_list_prepend (st->jobs, job);
  job_pump (job);
}

static char *
resolve_root (Struct *st)
{
  g_autofree char *text = ens_host_config_string (st->host, st->self, "struct-workspace-root", "");
  g_autofree char *path = NULL;

  if (text[0] == '\0')
    {
      g_autofree char *state = ens_host_config_string (st->host, st->self, "state-dir", ".");
      path = g_build_filename (state, "workspace", NULL);
    }
  else
    path = g_steal_pointer (&text);
  if (!g_path_is_absolute (path))
    {
      g_autofree char *cwd = g_get_current_dir ();
      char *abs = g_build_filename (cwd, path, NULL);
      g_free (path);
      path = abs;
    }
  return g_canonicalize_filename (path, NULL);
}

static gpointer
struct_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  Struct *st;
  struct stat sb;

  if (host->struct_size < sizeof (EnsHost))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old");
      return NULL;
    }
  st = g_new0 (Struct, 1);
  st->host = host;
  st->self = self;
  st->root = resolve_root (st);
  if (g_mkdir_with_parents (st->root, 0700) != 0 || stat (st->root, &sb) != 0 || !S_ISDIR (sb.st_mode))
    {
      int err = errno;
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_INIT, "cannot create the workspace root %s: %s",
                   st->root, g_strerror (err));
      g_free (st->root);
      g_free (st);
      return NULL;
    }
  ens_struct_remove_stale_staging (st);
  ENS_LOG (host, self, G_LOG_LEVEL_INFO, "workspace root %s", st->root);
  return st;
}

static void
struct_stop (gpointer instance)
{
  Struct *st = instance;

  /* Jobs still waiting for the naming agent: the host answered their
   * requests (AGENT_GONE) and forgets their bus requests, or still calls
   * back; either way they must not reach @st again. */
  for (GList *l = st->jobs; l; l = l->next)
    {
      Job *job = l->data;
      job->st = NULL;
      job->responder = NULL;
    }
  g_list_free (st->jobs);
  g_free (st->root);
  g_free (st);
}

static JsonNode *
struct_describe (gpointer instance)
{
  Struct *st = instance;
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  JsonObject *obj = json_object_new ();

  json_node_take_object (node, obj);
  json_object_set_string_member (obj, "root", st->root);
  json_object_set_int_member (obj, "pending", g_list_length (st->jobs));
  return node;
}

static const char *const struct_actions[] = { "create_directory", "create_structure", "validate_structure", NULL };

static const EnsAgentVTable struct_vtable = {
  .struct_size = sizeof (EnsAgentVTable),
  .name = "struct",
  .actions = struct_actions,
  .handle = struct_handle,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_AGENT, "agent-struct", "1.0",
                   "Creates and checks directory structures inside the workspace root", ENS_PLUGIN_FLAG_NONE,
                   struct_init, struct_stop, struct_describe, &struct_vtable)
