/* agent-manager: the registry — the JSON file named by manager-registry-file,
 * read and validated once at init into agents, and their dependency order. */
#include "ens-manager.h"

#include <stdarg.h>
#include <string.h>

#define DEFAULT_MAX_RESTARTS 5
#define DEFAULT_BACKOFF_BASE_MS 200
#define DEFAULT_BACKOFF_MAX_MS 10000
#define DEFAULT_HEALTH_INTERVAL_MS 5000
#define DEFAULT_HEALTH_TIMEOUT_MS 5000
#define DEFAULT_START_GRACE_MS 500 /* up this long without a health check: running */

static void set_invalid (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* Every registry error is ENS_PLUGIN_ERROR_FAILED: the plugin refuses to start. */
static void
set_invalid (GError **error, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  g_propagate_error (error, g_error_new_valist (ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, fmt, ap));
  va_end (ap);
}

/* The string @n holds, or NULL when it is absent or not a string. */
static const char *
node_string (JsonNode *n)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n)
                                                                                          : NULL;
}

static void
service_free (Service *s)
{
  g_free (s->name);
  g_strfreev (s->check);
  g_free (s->status);
  g_free (s->output);
  g_free (s);
}

void
ens_manager_agent_free (Agent *a)
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

/* Reads an array of strings (non-empty, and its first one too, unless
 * @allow_empty); FALSE with @error naming @what. */
static gboolean
read_argv (JsonNode *n, const char *where, const char *what, gboolean allow_empty, char ***out, GError **error)
{
  JsonArray *arr;
  guint len;

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    {
      set_invalid (error, "%s: \"%s\" must be an array of strings", where, what);
      return FALSE;
    }
  arr = json_node_get_array (n);
  len = json_array_get_length (arr);
  if (len == 0 && !allow_empty)
    {
      set_invalid (error, "%s: \"%s\" must not be empty", where, what);
      return FALSE;
    }
  *out = g_new0 (char *, len + 1);
  for (guint i = 0; i < len; i++)
    {
      const char *e = node_string (json_array_get_element (arr, i));

      if (e == NULL || (!allow_empty && i == 0 && *e == '\0'))
        {
          set_invalid (error, "%s: \"%s\"[%u] must be a%s string", where, what, i,
                       i == 0 && !allow_empty ? " non-empty" : "");
          g_clear_pointer (out, g_strfreev);
          return FALSE;
        }
      (*out)[i] = g_strdup (e);
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
      set_invalid (error, "%s: \"%s\" must be an integer from %u to %u", where, key, min, max);
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
  const char *name;
  Agent *a;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      set_invalid (error, "%s: must be an object", where);
      return NULL;
    }
  o = json_node_get_object (node);
  name = node_string (json_object_get_member (o, "name"));
  if (name == NULL || !valid_agent_name (name))
    {
      set_invalid (error, "%s: \"name\" must be a string of letters, digits, '-', '_' or '.' (1 to 128)", where);
      return NULL;
    }
  g_free (where);
  where = g_strdup_printf ("agents[%u] (\"%s\")", index, name);
  if (g_hash_table_contains (m->by_name, name))
    {
      set_invalid (error, "%s: \"name\" is used twice", where);
      return NULL;
    }
  members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next)
    if (!g_strv_contains (known_fields, l->data))
      {
        set_invalid (error, "%s: unknown field \"%s\"", where, (char *) l->data);
        return NULL;
      }

  a = g_new0 (Agent, 1);
  a->m = m;
  a->name = g_strdup (name);
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
          set_invalid (error, "%s: \"env\" must be an object of strings", where);
          goto fail;
        }
      keys = json_object_get_members (json_node_get_object (n));
      for (GList *l = keys; l; l = l->next)
        {
          const char *v = node_string (json_object_get_member (json_node_get_object (n), l->data));

          if (v == NULL || *(char *) l->data == '\0' || strchr (l->data, '='))
            {
              g_ptr_array_free (env, TRUE);
              set_invalid (error, "%s: \"env\".\"%s\" must be a string (and its name have no '=')", where,
                           (char *) l->data);
              goto fail;
            }
          g_ptr_array_add (env, g_strconcat (l->data, "=", v, NULL));
        }
      g_ptr_array_add (env, NULL);
      a->env = (char **) g_ptr_array_free (env, FALSE);
    }

  n = json_object_get_member (o, "cwd");
  if (n && !JSON_NODE_HOLDS_NULL (n))
    {
      const char *cwd = node_string (n);

      if (cwd == NULL || *cwd == '\0')
        {
          set_invalid (error, "%s: \"cwd\" must be a non-empty string", where);
          goto fail;
        }
      /* relative to the registry file's folder */
      a->cwd = g_path_is_absolute (cwd) ? g_strdup (cwd) : g_build_filename (base_dir, cwd, NULL);
      if (!g_file_test (a->cwd, G_FILE_TEST_IS_DIR))
        {
          set_invalid (error, "%s: \"cwd\": %s is not a folder", where, a->cwd);
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
          set_invalid (error, "%s: \"services\" must be an array", where);
          goto fail;
        }
      arr = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (arr); i++)
        {
          JsonNode *e = json_array_get_element (arr, i);
          g_autofree char *swhere = g_strdup_printf ("%s: \"services\"[%u]", where, i);
          const char *sname;
          Service *s;

          if (!JSON_NODE_HOLDS_OBJECT (e))
            {
              set_invalid (error, "%s must be an object {name, check}", swhere);
              goto fail;
            }
          sname = node_string (json_object_get_member (json_node_get_object (e), "name"));
          if (sname == NULL || *sname == '\0')
            {
              set_invalid (error, "%s: \"name\" must be a non-empty string", swhere);
              goto fail;
            }
          s = g_new0 (Service, 1);
          s->name = g_strdup (sname);
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
      const char *r = node_string (n);
      guint i;

      for (i = 0; i < RESTART_N; i++)
        if (g_strcmp0 (r, ens_manager_restart_name ((RestartPolicy) i)) == 0)
          break;
      if (i == RESTART_N)
        {
          set_invalid (error, "%s: \"restart\" must be \"always\", \"on-failure\" or \"never\"", where);
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
          set_invalid (error, "%s: \"autostart\" must be a boolean", where);
          goto fail;
        }
      a->autostart = json_node_get_boolean (n);
    }
  return a;

fail:
  ens_manager_agent_free (a);
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
              set_invalid (error, "agents[%u] (\"%s\"): \"depends_on\": %s \"%s\"", i, a->name,
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
      set_invalid (error, "agents[%u] (\"%s\"): \"depends_on\": dependency cycle %s", index,
                   first ? first->name : "?", text->str);
      return FALSE;
    }
  return TRUE;
}

gboolean
ens_manager_load_registry (Manager *m, const char *path, GError **error)
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
      set_invalid (error, "registry %s: %s", path, local->message);
      return FALSE;
    }
  root = m->host->json_parse (text, len, &local);
  if (root == NULL)
    {
      set_invalid (error, "registry %s: not JSON: %s", path, local->message);
      return FALSE;
    }
  agents = JSON_NODE_HOLDS_OBJECT (root) ? json_object_get_member (json_node_get_object (root), "agents") : NULL;
  if (agents == NULL || !JSON_NODE_HOLDS_ARRAY (agents))
    {
      set_invalid (error, "registry %s: expected an object with an \"agents\" array", path);
      return FALSE;
    }
  arr = json_node_get_array (agents);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      Agent *a = parse_agent (m, json_array_get_element (arr, i), i, base_dir, &local);
      if (a == NULL)
        {
          set_invalid (error, "registry %s: %s", path, local->message);
          return FALSE;
        }
      g_ptr_array_add (m->agents, a);
      g_hash_table_insert (m->by_name, a->name, a);
    }
  if (!resolve_registry (m, &local))
    {
      set_invalid (error, "registry %s: %s", path, local->message);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------ the dependency graph */

GPtrArray *
ens_manager_dependents (Manager *m, Agent *a)
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

void
ens_manager_dependency_closure (Agent *a, GHashTable *into)
{
  if (!g_hash_table_add (into, a))
    return;
  for (guint i = 0; i < a->deps->len; i++)
    ens_manager_dependency_closure (g_ptr_array_index (a->deps, i), into);
}
