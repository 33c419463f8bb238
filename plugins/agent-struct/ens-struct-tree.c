/* ens-struct-tree.c — paths and trees read from a request, each name noted for
 * the naming agent. */
#include "ens-struct.h"

#include <string.h>

/* ---------------------------------------------------------------- names and trees */

void
ens_struct_entry_free (Entry *entry)
{
  if (entry == NULL)
    return;
  g_free (entry->name);
  g_free (entry->rel);
  g_free (entry->content);
  if (entry->children)
    g_ptr_array_unref (entry->children);
  g_free (entry);
}

Entry *
ens_struct_entry_new_dir (const char *name, const char *rel)
{
  Entry *entry = g_new0 (Entry, 1);

  entry->name = g_strdup (name);
  entry->rel = g_strdup (rel);
  entry->is_dir = TRUE;
  entry->children = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_struct_entry_free);
  return entry;
}

/* A name queued for the naming agent (once per request). */
static void
job_add_name (Job *job, const char *name, const char *where)
{
  if (g_hash_table_contains (job->name_index, name))
    return;
  g_ptr_array_add (job->names, g_strdup (name));
  g_ptr_array_add (job->name_where, g_strdup (where));
  g_hash_table_insert (job->name_index, g_ptr_array_index (job->names, job->names->len - 1),
                       GUINT_TO_POINTER (job->names->len));
}

static gboolean
is_extension (const char *ext)
{
  gsize len = strlen (ext);

  if (len == 0 || len > STRUCT_MAX_EXTENSION)
    return FALSE;
  for (const char *p = ext; *p; p++)
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p))
      return FALSE;
  return TRUE;
}

/* Checks one segment here and queues what the naming agent must see.
 * @field: the request parameter it came from; @where: its path. */
static gboolean
check_segment (Job *job, const char *seg, gboolean is_file, const char *field, const char *where, Fail **fail)
{
  const char *dot;

  if (seg[0] == '\0')
    return ens_struct_fail_params (fail, field, "no empty path segments", "empty path segment");
  if (strcmp (seg, ".") == 0)
    return ens_struct_fail_params (fail, field, "no \".\" segments", "\".\" segment");
  if (strcmp (seg, "..") == 0)
    return ens_struct_fail_path (fail, "PATH_ESCAPE", field, where, "\"..\" would leave the workspace root");
  if (strlen (seg) > STRUCT_MAX_SEGMENT)
    return ens_struct_fail_name (fail, seg, where, "length", "longer than 255 bytes");
  for (const char *p = seg; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      return ens_struct_fail_name (fail, seg, where, "charset", "contains a control character");
  if (seg[0] == '.')
    return ens_struct_fail_name (fail, seg, where, "start", "hidden names (leading \".\") are not allowed");

  dot = strchr (seg, '.');
  if (is_file && dot)
    {
      g_autofree char *stem = g_strndup (seg, (gsize) (dot - seg));

      if (strchr (dot + 1, '.'))
        return ens_struct_fail_name (fail, seg, where, "extension", "a file name has at most one \".\" (before its extension)");
      if (!is_extension (dot + 1))
        return ens_struct_fail_name (fail, seg, where, "extension", "the extension must be 1 to 10 of [a-z0-9]");
      job_add_name (job, stem, where);
    }
  else
    job_add_name (job, seg, where);
  return TRUE;
}

/* Splits and checks a relative path parameter. */
gboolean
ens_struct_parse_path (Job *job, const char *path, gboolean required, Fail **fail)
{
  g_auto (GStrv) segs = NULL;
  guint n;

  if (path[0] == '\0')
    {
      if (required)
        return ens_struct_fail_params (fail, "path", "a non-empty relative path", "empty");
      job->base = g_new0 (char *, 1);
      job->base_rel = g_strdup ("");
      return TRUE;
    }
  if (path[0] == '/')
    return ens_struct_fail_path (fail, "PATH_ESCAPE", "path", path,
                      "absolute paths are refused (paths are relative to the workspace root)");
  segs = g_strsplit (path, "/", -1);
  n = g_strv_length (segs);
  if (n > STRUCT_MAX_DEPTH)
    return ens_struct_fail_too_large (fail, "path", STRUCT_MAX_DEPTH, "levels");
  /* ".." anywhere is an escape attempt, whatever else is wrong. */
  for (guint i = 0; i < n; i++)
    if (strcmp (segs[i], "..") == 0)
      return ens_struct_fail_path (fail, "PATH_ESCAPE", "path", path, "\"..\" segments are refused");
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *saved = segs[i + 1];
      g_autofree char *where = NULL;

      /* @where: the path up to this segment. */
      segs[i + 1] = NULL;
      where = g_strjoinv ("/", segs);
      segs[i + 1] = g_steal_pointer (&saved);
      if (!check_segment (job, segs[i], FALSE, "path", where, fail))
        return FALSE;
    }
  job->base = g_steal_pointer (&segs);
  job->base_rel = g_strdup (path);
  return TRUE;
}

char *
ens_struct_rel_join (const char *a, const char *b)
{
  return a[0] ? g_strconcat (a, "/", b, NULL) : g_strdup (b);
}

/* JSON-pointer-like field name of a tree member: tree/a/children/b/content */
static char *
field_join (const char *parent, const char *name)
{
  GString *s = g_string_new (parent);

  g_string_append_c (s, '/');
  for (const char *p = name; *p; p++)
    {
      if (*p == '~')
        g_string_append (s, "~0");
      else if (*p == '/')
        g_string_append (s, "~1");
      else
        g_string_append_c (s, *p);
    }
  return g_string_free (s, FALSE);
}

gboolean
ens_struct_is_string_node (JsonNode *node)
{
  return node && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

/* Parses the children object @obj (at @field) into @dir. */
gboolean
ens_struct_parse_tree (Job *job, JsonObject *obj, Entry *dir, const char *field, guint depth, guint *count, Fail **fail)
{
  g_autoptr (GList) members = json_object_get_members (obj);

  if (members && depth > STRUCT_MAX_DEPTH)
    return ens_struct_fail_too_large (fail, field, STRUCT_MAX_DEPTH, "levels of folders");
  for (GList *l = members; l; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (obj, name);
      g_autofree char *efield = field_join (field, name);
      g_autofree char *rel = dir->rel[0] ? g_strconcat (dir->rel, "/", name, NULL) : g_strdup (name);
      g_autofree char *where = NULL;
      JsonObject *spec;
      JsonNode *type, *children, *content;
      const char *type_name;
      Entry *entry;

      where = ens_struct_rel_join (job->base_rel, rel);
      if (++*count > STRUCT_MAX_ENTRIES)
        return ens_struct_fail_too_large (fail, "tree", STRUCT_MAX_ENTRIES, "entries");
      if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
        return ens_struct_fail_params (fail, efield, "an object {\"type\": \"dir\" | \"file\", ...}", "not an object");
      spec = json_node_get_object (node);
      type = json_object_get_member (spec, "type");
      type_name = ens_struct_is_string_node (type) ? json_node_get_string (type) : NULL;
      if (g_strcmp0 (type_name, "dir") != 0 && g_strcmp0 (type_name, "file") != 0)
        {
          g_autofree char *tfield = g_strconcat (efield, "/type", NULL);
          return ens_struct_fail_params (fail, tfield, "\"dir\" or \"file\"", "missing or unknown type");
        }
      /* A name holding "/" is several segments: ".." among them is an escape. */
      if (strchr (name, '/'))
        {
          g_auto (GStrv) parts = g_strsplit (name, "/", -1);
          for (guint i = 0; parts[i]; i++)
            if (strcmp (parts[i], "..") == 0)
              return ens_struct_fail_path (fail, "PATH_ESCAPE", efield, where, "\"..\" would leave the workspace root");
          return ens_struct_fail_name (fail, name, where, "structure", "a tree name is one path segment (no \"/\")");
        }
      if (!check_segment (job, name, type_name[0] == 'f', efield, where, fail))
        return FALSE;

      children = json_object_get_member (spec, "children");
      content = json_object_get_member (spec, "content");
      {
        g_autoptr (GList) keys = json_object_get_members (spec);
        for (GList *m = keys; m; m = m->next)
          {
            const char *key = m->data;
            if (strcmp (key, "type") != 0 && strcmp (key, "children") != 0 && strcmp (key, "content") != 0)
              {
                g_autofree char *kfield = field_join (efield, key);
                return ens_struct_fail_params (fail, kfield, "only type, children (dir) and content (file)", "unknown member");
              }
          }
      }

      if (type_name[0] == 'd')
        {
          g_autofree char *cfield = g_strconcat (efield, "/children", NULL);

          if (content && !JSON_NODE_HOLDS_NULL (content))
            {
              g_autofree char *kfield = g_strconcat (efield, "/content", NULL);
              return ens_struct_fail_params (fail, kfield, "no content for a dir", "a dir has no content");
            }
          entry = ens_struct_entry_new_dir (name, rel);
          g_ptr_array_add (dir->children, entry);
          if (children && !JSON_NODE_HOLDS_NULL (children))
            {
              if (!JSON_NODE_HOLDS_OBJECT (children))
                return ens_struct_fail_params (fail, cfield, "an object of entries", "not an object");
              if (!ens_struct_parse_tree (job, json_node_get_object (children), entry, cfield, depth + 1, count, fail))
                return FALSE;
            }
        }
      else
        {
          if (children && !JSON_NODE_HOLDS_NULL (children))
            {
              g_autofree char *kfield = g_strconcat (efield, "/children", NULL);
              return ens_struct_fail_params (fail, kfield, "no children for a file", "a file has no children");
            }
          entry = g_new0 (Entry, 1);
          entry->name = g_strdup (name);
          entry->rel = g_strdup (rel);
          g_ptr_array_add (dir->children, entry);
          if (content && !JSON_NODE_HOLDS_NULL (content))
            {
              g_autofree char *kfield = g_strconcat (efield, "/content", NULL);

              if (!ens_struct_is_string_node (content))
                return ens_struct_fail_params (fail, kfield, "a string", "not a string");
              if (strlen (json_node_get_string (content)) > STRUCT_MAX_CONTENT)
                return ens_struct_fail_too_large (fail, kfield, STRUCT_MAX_CONTENT, "bytes");
              entry->content = g_strdup (json_node_get_string (content));
            }
        }
    }
  return TRUE;
}

