/* ens-struct-fs.c — agent-struct's file-system work: every step relative to
 * dirfds opened with O_NOFOLLOW below the root, a structure built in a
 * staging folder and moved into place whole (see ens-agent-struct.c). */
#include "ens-struct.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

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
    ens_struct_fail_errno (fail, "path", "", "cannot open the workspace root", errno);
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
      ens_struct_fail_errno (fail, "path", "", "cannot open the workspace root", errno);
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
        ens_struct_fail_path (fail, "PATH_ESCAPE", "path", rel->str, "is a symbolic link; symlinks are never followed");
      else if ((err == ENOTDIR || err == ELOOP) && fstatat (cur, segs[i], &sb, AT_SYMLINK_NOFOLLOW) == 0)
        ens_struct_fail_path (fail, "NOT_A_DIRECTORY", "path", rel->str, "exists and is not a folder");
      else
        ens_struct_fail_errno (fail, "path", rel->str, "cannot open", err);
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
void
ens_struct_remove_stale_staging (Struct *st)
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
          ens_struct_fail_errno (fail, "path", "", "cannot create a staging folder", errno);
          return NULL;
        }
    }
  ens_struct_fail_path (fail, "IO_ERROR", "path", "", "cannot find a free staging folder name");
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
  g_autofree char *rel = ens_struct_rel_join (prefix, entry->name);

  if (entry->is_dir)
    {
      int fd;
      gboolean ok = TRUE;

      if (mkdirat (dirfd, entry->name, 0755) != 0)
        return ens_struct_fail_errno (fail, "tree", rel, "cannot create the folder", errno);
      fd = open_dir_nofollow (dirfd, entry->name);
      if (fd < 0)
        return ens_struct_fail_errno (fail, "tree", rel, "cannot open the new folder", errno);
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
        return ens_struct_fail_errno (fail, "tree", rel, "cannot create the file", errno);
      ok = write_all (fd, entry->content ? entry->content : "", entry->content ? strlen (entry->content) : 0);
      if (close (fd) != 0)
        ok = FALSE;
      if (!ok)
        return ens_struct_fail_errno (fail, "tree", rel, "cannot write the file", errno);
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
          g_autofree char *rel = ens_struct_rel_join (target_rel, entry->name);
          return ens_struct_fail_path (fail, "PATH_EXISTS", "tree", rel, "already exists");
        }
    }

  staging = make_staging (rootfd, fail);
  if (staging == NULL)
    return FALSE;
  sfd = open_dir_nofollow (rootfd, staging);
  if (sfd < 0)
    {
      ens_struct_fail_errno (fail, "path", "", "cannot open the staging folder", errno);
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
          g_autofree char *rel = ens_struct_rel_join (target_rel, entry->name);
          int err = errno;

          if (err == EEXIST || err == ENOTEMPTY)
            ens_struct_fail_path (fail, "PATH_EXISTS", "tree", rel, "already exists");
          else
            ens_struct_fail_errno (fail, "tree", rel, "cannot move into place", err);
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
void
ens_struct_run_create (Job *job)
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
              Entry *e = ens_struct_entry_new_dir (job->base[i], "");
              if (inner)
                g_ptr_array_add (inner->children, e);
              else
                outer = e;
              inner = e;
            }
          /* The tree's entries move into the innermost folder. */
          {
            GPtrArray *kids = job->tree->children;
            job->tree->children = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_struct_entry_free);
            g_ptr_array_extend_and_steal (inner->children, kids);
          }
          wrapper = ens_struct_entry_new_dir (NULL, "");
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
  ens_struct_entry_free (wrapper);

  if (!ok)
    {
      ens_struct_respond_fail (st, job->responder, fail);
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
  g_autofree char *rel = ens_struct_rel_join (prefix, entry->name);

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
      g_autofree char *rel = ens_struct_rel_join (prefix, entry->name);
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
      g_ptr_array_add (extra, ens_struct_rel_join (prefix, de->d_name));
  closedir (d);
  g_ptr_array_sort (extra, compare_strings);
  for (guint i = 0; i < extra->len; i++)
    json_array_add_string_element (report->extra, extra->pdata[i]);
}

void
ens_struct_run_validate (Job *job)
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
      ens_struct_respond_fail (st, job->responder, fail);
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

