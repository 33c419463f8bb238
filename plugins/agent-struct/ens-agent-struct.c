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
 * below and by the transports' request size. */
#include <ensemble/ensemble.h>

#include "ens-host-config.h"
#include "ens-json-util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STRUCT_MAX_ENTRIES 10000
#define STRUCT_MAX_DEPTH 32
#define STRUCT_MAX_CONTENT (1024 * 1024)
#define STRUCT_MAX_SEGMENT 255
#define STRUCT_MAX_EXTENSION 10
#define STAGING_PREFIX ".ens-staging-"
#define NAMING_AGENT "naming"
#define NAMING_WINDOW 16 /* validate_name requests in flight per job */
#define NAMING_TIMEOUT_MS 10000

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  char *root;  /* (owned) absolute path of the workspace root */
  GList *jobs; /* Job *, waiting for the naming agent; not owned (freed when done) */
} Struct;

typedef enum {
  OP_CREATE_DIRECTORY,
  OP_CREATE_STRUCTURE,
  OP_VALIDATE_STRUCTURE,
} Op;

/* One tree entry; the tree's own top is a nameless directory. */
typedef struct _Entry Entry;
struct _Entry {
  char *name;         /* (owned) one path segment; NULL for the top */
  char *rel;          /* (owned) path relative to the base folder */
  gboolean is_dir;
  char *content;      /* (owned) file content, NULL: empty file / not checked */
  GPtrArray *children; /* Entry *, owned, in the order of the request */
};

/* An error answer, before it is sent. */
typedef struct {
  const char *code;
  char *message;
  JsonNode *details; /* (owned) may be NULL */
} Fail;

typedef struct {
  Struct *st;                 /* NULL once orphaned (the plugin stopped) */
  EnsResponder *responder;    /* NULL once orphaned */
  Op op;
  char **base;                /* (owned) segments of the base folder */
  char *base_rel;             /* (owned) the base folder, "" for the root */
  Entry *tree;                /* (owned) */
  GPtrArray *names;           /* (owned) char *, unique names for the naming agent, in order */
  GPtrArray *name_where;      /* (owned) char *, the first place each name appears */
  GHashTable *name_index;     /* name -> index + 1, keys borrowed from @names */
  GPtrArray *results;         /* Fail * or NULL per name, once answered */
  guint next;                 /* next name to send */
  guint in_flight;
  gboolean failed;            /* a name failed: send no more */
} Job;

typedef struct {
  Job *job;
  guint index;
} Ticket;

/* ---------------------------------------------------------------- answers */

static void
fail_free (Fail *fail)
{
  if (fail == NULL)
    return;
  g_free (fail->message);
  if (fail->details)
    json_node_unref (fail->details);
  g_free (fail);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Fail, fail_free)

/* Sets *@out (if still unset) to a new failure; takes @details. Returns FALSE. */
static gboolean G_GNUC_PRINTF (4, 5)
fail_set (Fail **out, const char *code, JsonNode *details, const char *format, ...)
{
  va_list args;

  if (*out != NULL)
    {
      if (details)
        json_node_unref (details);
      return FALSE;
    }
  *out = g_new0 (Fail, 1);
  (*out)->code = code;
  va_start (args, format);
  (*out)->message = g_strdup_vprintf (format, args);
  va_end (args);
  (*out)->details = details;
  return FALSE;
}

/* (transfer full) {field, expected?, ...} */
static JsonNode *
details_new (JsonObject **obj, const char *field, const char *expected)
{
  JsonNode *node = ens_node_new_object (obj);

  json_object_set_string_member (*obj, "field", field);
  if (expected)
    json_object_set_string_member (*obj, "expected", expected);
  return node;
}

static gboolean
fail_params (Fail **out, const char *field, const char *expected, const char *why)
{
  EnsInvalid invalid;

  ens_invalid_set (&invalid, field, "%s", expected);
  return fail_set (out, ENS_ERR_INVALID_PARAMETERS, ens_invalid_details (&invalid), "%s: %s", field, why);
}

static gboolean
fail_too_large (Fail **out, const char *field, guint64 limit, const char *what)
{
  JsonObject *obj;
  JsonNode *details = details_new (&obj, field, NULL);

  json_object_set_int_member (obj, "limit", (gint64) limit);
  return fail_set (out, "TOO_LARGE", details, "%s: more than %" G_GUINT64_FORMAT " %s", field, limit, what);
}

/* INVALID_NAME found here (not by the naming agent); field = the name.
 * The reason has the naming agent's shape: {rule, message}. */
static gboolean
fail_name (Fail **out, const char *name, const char *where, const char *rule, const char *reason)
{
  JsonObject *obj, *r = json_object_new ();
  JsonNode *details = details_new (&obj, name, NULL);
  JsonArray *reasons = json_array_new ();

  json_object_set_string_member (obj, "name", name);
  json_object_set_string_member (obj, "path", where);
  json_object_set_string_member (r, "rule", rule);
  json_object_set_string_member (r, "message", reason);
  json_array_add_object_element (reasons, r);
  json_object_set_array_member (obj, "reasons", reasons);
  return fail_set (out, "INVALID_NAME", details, "invalid name \"%s\" at %s: %s", name, where, reason);
}

static gboolean
fail_path (Fail **out, const char *code, const char *field, const char *path, const char *why)
{
  JsonObject *obj;
  JsonNode *details = details_new (&obj, field, NULL);

  json_object_set_string_member (obj, "path", path);
  return fail_set (out, code, details, "%s: %s", path[0] ? path : "(workspace root)", why);
}

static gboolean
fail_errno (Fail **out, const char *field, const char *path, const char *what, int err)
{
  g_autofree char *why = g_strdup_printf ("%s: %s", what, g_strerror (err));

  return fail_path (out, err == EACCES || err == EPERM ? ENS_ERR_PERMISSION_DENIED : "IO_ERROR", field, path, why);
}

static void
respond_fail (Struct *st, EnsResponder *responder, Fail *fail)
{
  st->host->respond_error (responder, fail->code, fail->message, fail->details);
}

/* ---------------------------------------------------------------- names and trees */

static void
entry_free (Entry *entry)
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

static Entry *
entry_new_dir (const char *name, const char *rel)
{
  Entry *entry = g_new0 (Entry, 1);

  entry->name = g_strdup (name);
  entry->rel = g_strdup (rel);
  entry->is_dir = TRUE;
  entry->children = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
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
    return fail_params (fail, field, "no empty path segments", "empty path segment");
  if (strcmp (seg, ".") == 0)
    return fail_params (fail, field, "no \".\" segments", "\".\" segment");
  if (strcmp (seg, "..") == 0)
    return fail_path (fail, "PATH_ESCAPE", field, where, "\"..\" would leave the workspace root");
  if (strlen (seg) > STRUCT_MAX_SEGMENT)
    return fail_name (fail, seg, where, "length", "longer than 255 bytes");
  for (const char *p = seg; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      return fail_name (fail, seg, where, "charset", "contains a control character");
  if (seg[0] == '.')
    return fail_name (fail, seg, where, "start", "hidden names (leading \".\") are not allowed");

  dot = strchr (seg, '.');
  if (is_file && dot)
    {
      g_autofree char *stem = g_strndup (seg, (gsize) (dot - seg));

      if (strchr (dot + 1, '.'))
        return fail_name (fail, seg, where, "extension", "a file name has at most one \".\" (before its extension)");
      if (!is_extension (dot + 1))
        return fail_name (fail, seg, where, "extension", "the extension must be 1 to 10 of [a-z0-9]");
      job_add_name (job, stem, where);
    }
  else
    job_add_name (job, seg, where);
  return TRUE;
}

/* Splits and checks a relative path parameter. */
static gboolean
parse_path (Job *job, const char *path, gboolean required, Fail **fail)
{
  g_auto (GStrv) segs = NULL;
  guint n;

  if (path[0] == '\0')
    {
      if (required)
        return fail_params (fail, "path", "a non-empty relative path", "empty");
      job->base = g_new0 (char *, 1);
      job->base_rel = g_strdup ("");
      return TRUE;
    }
  if (path[0] == '/')
    return fail_path (fail, "PATH_ESCAPE", "path", path,
                      "absolute paths are refused (paths are relative to the workspace root)");
  segs = g_strsplit (path, "/", -1);
  n = g_strv_length (segs);
  if (n > STRUCT_MAX_DEPTH)
    return fail_too_large (fail, "path", STRUCT_MAX_DEPTH, "levels");
  /* ".." anywhere is an escape attempt, whatever else is wrong. */
  for (guint i = 0; i < n; i++)
    if (strcmp (segs[i], "..") == 0)
      return fail_path (fail, "PATH_ESCAPE", "path", path, "\"..\" segments are refused");
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

static char *
rel_join (const char *a, const char *b)
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

static gboolean
is_string_node (JsonNode *node)
{
  return node && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

/* Parses the children object @obj (at @field) into @dir. */
static gboolean
parse_tree (Job *job, JsonObject *obj, Entry *dir, const char *field, guint depth, guint *count, Fail **fail)
{
  g_autoptr (GList) members = json_object_get_members (obj);

  if (members && depth > STRUCT_MAX_DEPTH)
    return fail_too_large (fail, field, STRUCT_MAX_DEPTH, "levels of folders");
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

      where = rel_join (job->base_rel, rel);
      if (++*count > STRUCT_MAX_ENTRIES)
        return fail_too_large (fail, "tree", STRUCT_MAX_ENTRIES, "entries");
      if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
        return fail_params (fail, efield, "an object {\"type\": \"dir\" | \"file\", ...}", "not an object");
      spec = json_node_get_object (node);
      type = json_object_get_member (spec, "type");
      type_name = is_string_node (type) ? json_node_get_string (type) : NULL;
      if (g_strcmp0 (type_name, "dir") != 0 && g_strcmp0 (type_name, "file") != 0)
        {
          g_autofree char *tfield = g_strconcat (efield, "/type", NULL);
          return fail_params (fail, tfield, "\"dir\" or \"file\"", "missing or unknown type");
        }
      /* A name holding "/" is several segments: ".." among them is an escape. */
      if (strchr (name, '/'))
        {
          g_auto (GStrv) parts = g_strsplit (name, "/", -1);
          for (guint i = 0; parts[i]; i++)
            if (strcmp (parts[i], "..") == 0)
              return fail_path (fail, "PATH_ESCAPE", efield, where, "\"..\" would leave the workspace root");
          return fail_name (fail, name, where, "structure", "a tree name is one path segment (no \"/\")");
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
                return fail_params (fail, kfield, "only type, children (dir) and content (file)", "unknown member");
              }
          }
      }

      if (type_name[0] == 'd')
        {
          g_autofree char *cfield = g_strconcat (efield, "/children", NULL);

          if (content && !JSON_NODE_HOLDS_NULL (content))
            {
              g_autofree char *kfield = g_strconcat (efield, "/content", NULL);
              return fail_params (fail, kfield, "no content for a dir", "a dir has no content");
            }
          entry = entry_new_dir (name, rel);
          g_ptr_array_add (dir->children, entry);
          if (children && !JSON_NODE_HOLDS_NULL (children))
            {
              if (!JSON_NODE_HOLDS_OBJECT (children))
                return fail_params (fail, cfield, "an object of entries", "not an object");
              if (!parse_tree (job, json_node_get_object (children), entry, cfield, depth + 1, count, fail))
                return FALSE;
            }
        }
      else
        {
          if (children && !JSON_NODE_HOLDS_NULL (children))
            {
              g_autofree char *kfield = g_strconcat (efield, "/children", NULL);
              return fail_params (fail, kfield, "no children for a file", "a file has no children");
            }
          entry = g_new0 (Entry, 1);
          entry->name = g_strdup (name);
          entry->rel = g_strdup (rel);
          g_ptr_array_add (dir->children, entry);
          if (content && !JSON_NODE_HOLDS_NULL (content))
            {
              g_autofree char *kfield = g_strconcat (efield, "/content", NULL);

              if (!is_string_node (content))
                return fail_params (fail, kfield, "a string", "not a string");
              if (strlen (json_node_get_string (content)) > STRUCT_MAX_CONTENT)
                return fail_too_large (fail, kfield, STRUCT_MAX_CONTENT, "bytes");
              entry->content = g_strdup (json_node_get_string (content));
            }
        }
    }
  return TRUE;
}

/* ---------------------------------------------------------------- the file system */

static int
open_dir_nofollow (int dirfd, const char *name)
{
  return openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Opens the workspace root (creating it 0700 if it went away). */
static int
open_root (Struct *st, Fail **fail)
{
  int fd = open (st->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0 && errno == ENOENT && g_mkdir_with_parents (st->root, 0700) == 0)
    fd = open (st->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    fail_errno (fail, "path", "", "cannot open the workspace root", errno);
  return fd;
}

/* Walks @segs down from @rootfd without following anything.  Returns the
 * fd of the deepest existing folder and its depth in *@n_existing; -1 on a
 * symlink, a non-folder or another error. */
static int
walk (int rootfd, char **segs, guint *n_existing, Fail **fail)
{
  int cur = openat (rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_autoptr (GString) rel = g_string_new (NULL);
  guint i;

  if (cur < 0)
    {
      fail_errno (fail, "path", "", "cannot open the workspace root", errno);
      return -1;
    }
  for (i = 0; segs[i]; i++)
    {
      int fd = open_dir_nofollow (cur, segs[i]);
      int err = errno;
      struct stat sb;

      if (rel->len)
        g_string_append_c (rel, '/');
      g_string_append (rel, segs[i]);
      if (fd >= 0)
        {
          close (cur);
          cur = fd;
          continue;
        }
      if (err == ENOENT)
        break;
      /* Why it failed, for the answer only: the open itself is the check. */
      if (fstatat (cur, segs[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (sb.st_mode))
        fail_path (fail, "PATH_ESCAPE", "path", rel->str, "is a symbolic link; symlinks are never followed");
      else if ((err == ENOTDIR || err == ELOOP) && fstatat (cur, segs[i], &sb, AT_SYMLINK_NOFOLLOW) == 0)
        fail_path (fail, "NOT_A_DIRECTORY", "path", rel->str, "exists and is not a folder");
      else
        fail_errno (fail, "path", rel->str, "cannot open", err);
      close (cur);
      return -1;
    }
  *n_existing = i;
  return cur;
}

/* Removes @name below @dirfd and everything in it, never following a
 * symlink.  Best effort. */
static void
remove_tree_at (int dirfd, const char *name)
{
  int fd = open_dir_nofollow (dirfd, name);
  DIR *dir;
  struct dirent *de;

  if (fd < 0)
    {
      unlinkat (dirfd, name, 0);
      return;
    }
  dir = fdopendir (fd);
  if (dir == NULL)
    {
      close (fd);
      return;
    }
  while ((de = readdir (dir)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (de->d_type == DT_DIR || (de->d_type == DT_UNKNOWN && unlinkat (fd, de->d_name, 0) != 0 && errno == EISDIR))
        remove_tree_at (fd, de->d_name);
      else if (de->d_type != DT_UNKNOWN)
        unlinkat (fd, de->d_name, 0);
    }
  closedir (dir);
  unlinkat (dirfd, name, AT_REMOVEDIR);
}

/* Leftovers of a daemon that died while creating. */
static void
remove_stale_staging (Struct *st)
{
  int fd = open (st->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int lfd;
  DIR *dir;
  struct dirent *de;
  g_autoptr (GPtrArray) stale = g_ptr_array_new_with_free_func (g_free);

  if (fd < 0)
    return;
  lfd = openat (fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  dir = lfd >= 0 ? fdopendir (lfd) : NULL;
  if (dir)
    {
      while ((de = readdir (dir)) != NULL)
        if (g_str_has_prefix (de->d_name, STAGING_PREFIX))
          g_ptr_array_add (stale, g_strdup (de->d_name));
      closedir (dir);
    }
  else if (lfd >= 0)
    close (lfd);
  for (guint i = 0; i < stale->len; i++)
    {
      ENS_LOG (st->host, st->self, G_LOG_LEVEL_MESSAGE, "removing stale staging folder %s", (char *) stale->pdata[i]);
      remove_tree_at (fd, stale->pdata[i]);
    }
  close (fd);
}

/* (transfer full) the name of a new, empty staging folder below @rootfd. */
static char *
make_staging (int rootfd, Fail **fail)
{
  static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

  for (int attempt = 0; attempt < 100; attempt++)
    {
      char suffix[7];
      char *name;

      for (guint i = 0; i < 6; i++)
        suffix[i] = chars[g_random_int_range (0, sizeof chars - 1)];
      suffix[6] = '\0';
      name = g_strconcat (STAGING_PREFIX, suffix, NULL);
      if (mkdirat (rootfd, name, 0700) == 0)
        return name;
      g_free (name);
      if (errno != EEXIST)
        {
          fail_errno (fail, "path", "", "cannot create a staging folder", errno);
          return NULL;
        }
    }
  fail_path (fail, "IO_ERROR", "path", "", "cannot find a free staging folder name");
  return NULL;
}

static gboolean
write_all (int fd, const char *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* Creates @entry below @dirfd (in staging); @prefix: its parent's path
 * relative to the root, for the answer. */
static gboolean
build_entry (int dirfd, Entry *entry, const char *prefix, GPtrArray *created, Fail **fail)
{
  g_autofree char *rel = rel_join (prefix, entry->name);

  if (entry->is_dir)
    {
      int fd;
      gboolean ok = TRUE;

      if (mkdirat (dirfd, entry->name, 0755) != 0)
        return fail_errno (fail, "tree", rel, "cannot create the folder", errno);
      fd = open_dir_nofollow (dirfd, entry->name);
      if (fd < 0)
        return fail_errno (fail, "tree", rel, "cannot open the new folder", errno);
      g_ptr_array_add (created, g_strdup (rel));
      for (guint i = 0; ok && i < entry->children->len; i++)
        ok = build_entry (fd, entry->children->pdata[i], rel, created, fail);
      close (fd);
      return ok;
    }
  else
    {
      int fd = openat (dirfd, entry->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      gboolean ok;

      if (fd < 0)
        return fail_errno (fail, "tree", rel, "cannot create the file", errno);
      ok = write_all (fd, entry->content ? entry->content : "", entry->content ? strlen (entry->content) : 0);
      if (close (fd) != 0)
        ok = FALSE;
      if (!ok)
        return fail_errno (fail, "tree", rel, "cannot write the file", errno);
      g_ptr_array_add (created, g_strdup (rel));
      return TRUE;
    }
}

/* renameat that never replaces: renameat2 (RENAME_NOREPLACE), or, where the
 * file system lacks it, a check just before a plain renameat. */
static int
rename_noreplace (int from_fd, const char *from, int to_fd, const char *to)
{
  struct stat sb;
  int r;

#ifdef SYS_renameat2
  r = (int) syscall (SYS_renameat2, from_fd, from, to_fd, to, RENAME_NOREPLACE);
  if (r == 0 || (errno != ENOSYS && errno != EINVAL))
    return r;
#endif
  if (fstatat (to_fd, to, &sb, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
    {
      errno = EEXIST;
      return -1;
    }
  return renameat (from_fd, from, to_fd, to);
}

/* Builds @top's children in a fresh staging folder below @rootfd, then
 * moves them into @targetfd (path @target_rel); on any failure nothing of
 * them is left anywhere.  @created gets the paths made, in order. */
static gboolean
create_all (Struct *st, int rootfd, int targetfd, const char *target_rel, Entry *top, GPtrArray *created,
            Fail **fail)
{
  g_autofree char *staging = NULL;
  int sfd;
  gboolean ok = TRUE;
  guint placed = 0;
  g_autofree struct stat *ids = NULL;

  /* Checked first so the common failure costs nothing; the rename checks again. */
  for (guint i = 0; i < top->children->len; i++)
    {
      Entry *entry = top->children->pdata[i];
      struct stat sb;

      if (fstatat (targetfd, entry->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
        {
          g_autofree char *rel = rel_join (target_rel, entry->name);
          return fail_path (fail, "PATH_EXISTS", "tree", rel, "already exists");
        }
    }

  staging = make_staging (rootfd, fail);
  if (staging == NULL)
    return FALSE;
  sfd = open_dir_nofollow (rootfd, staging);
  if (sfd < 0)
    {
      fail_errno (fail, "path", "", "cannot open the staging folder", errno);
      remove_tree_at (rootfd, staging);
      return FALSE;
    }

  for (guint i = 0; ok && i < top->children->len; i++)
    ok = build_entry (sfd, top->children->pdata[i], target_rel, created, fail);

  ids = g_new0 (struct stat, top->children->len + 1);
  for (guint i = 0; ok && i < top->children->len; i++)
    {
      Entry *entry = top->children->pdata[i];

      if (fstatat (sfd, entry->name, &ids[i], AT_SYMLINK_NOFOLLOW) != 0 ||
          rename_noreplace (sfd, entry->name, targetfd, entry->name) != 0)
        {
          g_autofree char *rel = rel_join (target_rel, entry->name);
          int err = errno;

          if (err == EEXIST || err == ENOTEMPTY)
            fail_path (fail, "PATH_EXISTS", "tree", rel, "already exists");
          else
            fail_errno (fail, "tree", rel, "cannot move into place", err);
          ok = FALSE;
          break;
        }
      placed++;
    }

  if (!ok)
    {
      /* Take back what was placed, if it is still what we placed. */
      for (guint i = 0; i < placed; i++)
        {
          Entry *entry = top->children->pdata[i];
          struct stat sb;

          if (fstatat (targetfd, entry->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && sb.st_dev == ids[i].st_dev &&
              sb.st_ino == ids[i].st_ino && rename_noreplace (targetfd, entry->name, sfd, entry->name) == 0)
            continue;
          ENS_LOG (st->host, st->self, G_LOG_LEVEL_WARNING, "could not take back %s/%s after a failure",
                   target_rel, entry->name);
        }
      g_ptr_array_set_size (created, 0);
    }
  close (sfd);
  remove_tree_at (rootfd, staging);
  return ok;
}

/* create_directory and create_structure: the base folder (created with the
 * tree if missing), then the tree, all or nothing. */
static void
run_create (Job *job)
{
  Struct *st = job->st;
  g_autoptr (Fail) fail = NULL;
  g_autoptr (GPtrArray) created = g_ptr_array_new_with_free_func (g_free);
  const char *base_rel = job->base_rel;
  g_autofree char *target_rel = NULL;
  guint n_base = g_strv_length (job->base), n_existing = 0;
  int rootfd, basefd = -1;
  gboolean ok = FALSE;
  Entry *top = job->tree;
  Entry *wrapper = NULL;

  rootfd = open_root (st, &fail);
  if (rootfd >= 0)
    basefd = walk (rootfd, job->base, &n_existing, &fail);
  if (basefd >= 0)
    {
      /* The missing part of the base becomes folders around the tree. */
      if (n_existing < n_base)
        {
          Entry *outer = NULL, *inner = NULL;
          for (guint i = n_existing; i < n_base; i++)
            {
              Entry *e = entry_new_dir (job->base[i], "");
              if (inner)
                g_ptr_array_add (inner->children, e);
              else
                outer = e;
              inner = e;
            }
          /* The tree's entries move into the innermost folder. */
          {
            GPtrArray *kids = job->tree->children;
            job->tree->children = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
            g_ptr_array_extend_and_steal (inner->children, kids);
          }
          wrapper = entry_new_dir (NULL, "");
          g_ptr_array_add (wrapper->children, outer);
          top = wrapper;
        }
      {
        /* The deepest existing folder, where the top-level entries go. */
        char *saved = job->base[n_existing];
        job->base[n_existing] = NULL;
        target_rel = g_strjoinv ("/", job->base);
        job->base[n_existing] = saved;
      }
      if (job->op == OP_CREATE_DIRECTORY && n_existing == n_base)
        ok = TRUE; /* already there */
      else
        ok = create_all (st, rootfd, basefd, target_rel, top, created, &fail);
      close (basefd);
    }
  if (rootfd >= 0)
    close (rootfd);
  entry_free (wrapper);

  if (!ok)
    {
      respond_fail (st, job->responder, fail);
      return;
    }
  {
    JsonNode *node = json_node_new (JSON_NODE_OBJECT);
    JsonObject *obj = json_object_new ();

    json_node_take_object (node, obj);
    if (job->op == OP_CREATE_DIRECTORY)
      {
        json_object_set_string_member (obj, "path", base_rel);
        json_object_set_boolean_member (obj, "created", n_existing < n_base);
      }
    else
      {
        JsonArray *arr = json_array_sized_new (created->len);
        for (guint i = 0; i < created->len; i++)
          json_array_add_string_element (arr, created->pdata[i]);
        json_object_set_array_member (obj, "created", arr);
        json_object_set_string_member (obj, "root", st->root);
      }
    st->host->respond (job->responder, node);
    json_node_unref (node);
  }
}

typedef struct {
  JsonArray *missing, *extra, *mismatched;
} Report;

static const char *
kind_of (mode_t mode)
{
  if (S_ISDIR (mode))
    return "dir";
  if (S_ISREG (mode))
    return "file";
  if (S_ISLNK (mode))
    return "symlink";
  return "other";
}

static void
report_missing (Report *report, Entry *entry, const char *prefix)
{
  g_autofree char *rel = rel_join (prefix, entry->name);

  json_array_add_string_element (report->missing, rel);
  if (entry->is_dir)
    for (guint i = 0; i < entry->children->len; i++)
      report_missing (report, entry->children->pdata[i], rel);
}

static void
report_mismatch (Report *report, const char *rel, const char *expected, const char *found, const char *reason)
{
  JsonObject *obj = json_object_new ();

  json_object_set_string_member (obj, "path", rel);
  json_object_set_string_member (obj, "expected", expected);
  json_object_set_string_member (obj, "found", found);
  json_object_set_string_member (obj, "reason", reason);
  json_array_add_object_element (report->mismatched, obj);
}

static gboolean
same_content (int dirfd, const char *name, const char *content)
{
  int fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  gsize len = strlen (content);
  struct stat sb;
  g_autofree char *buf = NULL;
  gsize got = 0;

  if (fd < 0)
    return FALSE;
  if (fstat (fd, &sb) != 0 || !S_ISREG (sb.st_mode) || (gsize) sb.st_size != len)
    {
      close (fd);
      return FALSE;
    }
  buf = g_malloc (len + 1);
  while (got <= len)
    {
      ssize_t n = read (fd, buf + got, len + 1 - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      got += (gsize) n;
    }
  close (fd);
  return got == len && memcmp (buf, content, len) == 0;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Compares folder @dirfd (path @prefix) with @dir's children. */
static void
compare_dir (int dirfd, Entry *dir, const char *prefix, Report *report)
{
  g_autoptr (GHashTable) expected = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) extra = g_ptr_array_new_with_free_func (g_free);
  int lfd;
  DIR *d;
  struct dirent *de;

  for (guint i = 0; i < dir->children->len; i++)
    {
      Entry *entry = dir->children->pdata[i];
      g_autofree char *rel = rel_join (prefix, entry->name);
      struct stat sb;

      g_hash_table_add (expected, entry->name);
      if (fstatat (dirfd, entry->name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        {
          report_missing (report, entry, prefix);
          continue;
        }
      if (entry->is_dir && S_ISDIR (sb.st_mode))
        {
          int fd = open_dir_nofollow (dirfd, entry->name);
          if (fd < 0)
            {
              report_mismatch (report, rel, "dir", "unreadable", "cannot open the folder");
              continue;
            }
          compare_dir (fd, entry, rel, report);
          close (fd);
        }
      else if (!entry->is_dir && S_ISREG (sb.st_mode))
        {
          if (entry->content && !same_content (dirfd, entry->name, entry->content))
            report_mismatch (report, rel, "file", "file", "content differs");
        }
      else
        report_mismatch (report, rel, entry->is_dir ? "dir" : "file", kind_of (sb.st_mode), "type differs");
    }

  lfd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  d = lfd >= 0 ? fdopendir (lfd) : NULL;
  if (d == NULL)
    {
      if (lfd >= 0)
        close (lfd);
      return;
    }
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0 &&
        !g_hash_table_contains (expected, de->d_name))
      g_ptr_array_add (extra, rel_join (prefix, de->d_name));
  closedir (d);
  g_ptr_array_sort (extra, compare_strings);
  for (guint i = 0; i < extra->len; i++)
    json_array_add_string_element (report->extra, extra->pdata[i]);
}

static void
run_validate (Job *job)
{
  Struct *st = job->st;
  g_autoptr (Fail) fail = NULL;
  const char *base_rel = job->base_rel;
  guint n_existing = 0;
  int rootfd, basefd = -1;
  Report report = { json_array_new (), json_array_new (), json_array_new () };
  JsonNode *node;
  JsonObject *obj;

  rootfd = open_root (st, &fail);
  if (rootfd >= 0)
    basefd = walk (rootfd, job->base, &n_existing, &fail);
  if (rootfd >= 0)
    close (rootfd);
  if (basefd < 0)
    {
      json_array_unref (report.missing);
      json_array_unref (report.extra);
      json_array_unref (report.mismatched);
      respond_fail (st, job->responder, fail);
      return;
    }
  if (n_existing < g_strv_length (job->base))
    {
      /* The base folder is missing: so is everything in the tree. */
      for (guint i = 0; i < job->tree->children->len; i++)
        report_missing (&report, job->tree->children->pdata[i], base_rel);
    }
  else
    compare_dir (basefd, job->tree, base_rel, &report);
  close (basefd);

  node = json_node_new (JSON_NODE_OBJECT);
  obj = json_object_new ();
  json_node_take_object (node, obj);
  json_object_set_boolean_member (obj, "valid",
                                  json_array_get_length (report.missing) == 0 &&
                                    json_array_get_length (report.extra) == 0 &&
                                    json_array_get_length (report.mismatched) == 0);
  json_object_set_array_member (obj, "missing", report.missing);
  json_object_set_array_member (obj, "extra", report.extra);
  json_object_set_array_member (obj, "mismatched", report.mismatched);
  st->host->respond (job->responder, node);
  json_node_unref (node);
}

/* ---------------------------------------------------------------- jobs and the naming agent */

static void
job_free (Job *job)
{
  g_strfreev (job->base);
  g_free (job->base_rel);
  entry_free (job->tree);
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
  job->tree = entry_new_dir (NULL, "");
  job->names = g_ptr_array_new_with_free_func (g_free);
  job->name_where = g_ptr_array_new_with_free_func (g_free);
  job->name_index = g_hash_table_new (g_str_hash, g_str_equal);
  job->results = g_ptr_array_new_with_free_func ((GDestroyNotify) fail_free);
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
        fail_name (&fail, name, where, "naming",
                   reply->error_message ? reply->error_message : "refused by the naming agent");
      else
        {
          JsonObject *obj;
          JsonNode *details = details_new (&obj, name, NULL);
          gboolean gone = strcmp (code, ENS_ERR_AGENT_NOT_FOUND) == 0 || strcmp (code, ENS_ERR_AGENT_GONE) == 0 ||
                          strcmp (code, ENS_ERR_AGENT_NOT_CONNECTED) == 0 || strcmp (code, ENS_ERR_TIMEOUT) == 0;

          json_object_set_string_member (obj, "agent", NAMING_AGENT);
          json_object_set_string_member (obj, "cause", code);
          if (reply->error_message)
            json_object_set_string_member (obj, "cause_message", reply->error_message);
          fail_set (&fail, gone ? "NAMING_UNAVAILABLE" : "NAMING_FAILED", details,
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
          JsonNode *details = details_new (&obj, name, NULL);
          json_object_set_string_member (obj, "agent", NAMING_AGENT);
          fail_set (&fail, "NAMING_FAILED", details, "the naming agent answered validate_name without \"valid\"");
        }
      else if (!json_node_get_boolean (valid))
        {
          JsonObject *obj;
          JsonNode *details = details_new (&obj, name, NULL);
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
                  if (is_string_node (m))
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
          fail_set (&fail, "INVALID_NAME", details, "invalid name \"%s\" at %s: %s", name, where,
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
            respond_fail (st, job->responder, job->results->pdata[i]);
            break;
          }
    }
  else if (job->op == OP_VALIDATE_STRUCTURE)
    run_validate (job);
  else
    run_create (job);
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
      fail_params (&fail, "data", "an object", "not an object");
      respond_fail (st, responder, fail);
      return;
    }

  job = job_new (st, responder, op);
  path = params ? json_object_get_member (params, "path") : NULL;
  tree = params ? json_object_get_member (params, "tree") : NULL;
  if (path && !JSON_NODE_HOLDS_NULL (path))
    {
      if (!is_string_node (path))
        fail_params (&fail, "path", "a relative path string", "not a string");
      else
        path_text = json_node_get_string (path);
    }
  else if (op == OP_CREATE_DIRECTORY)
    fail_params (&fail, "path", "a relative path string", "missing");

  if (fail == NULL)
    parse_path (job, path_text, op == OP_CREATE_DIRECTORY, &fail);
  if (fail == NULL && op != OP_CREATE_DIRECTORY)
    {
      if (tree == NULL || JSON_NODE_HOLDS_NULL (tree))
        fail_params (&fail, "tree", "an object of entries", "missing");
      else if (!JSON_NODE_HOLDS_OBJECT (tree))
        fail_params (&fail, "tree", "an object of entries", "not an object");
      else
        parse_tree (job, json_node_get_object (tree), job->tree, "tree", 1, &count, &fail);
    }
  if (fail)
    {
      respond_fail (st, responder, fail);
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
  remove_stale_staging (st);
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
