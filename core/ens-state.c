/* ens-state.c — durable state in SQLite (WAL).  A write returns only after
 * its transaction committed to the WAL, so an acknowledged value survives
 * kill -9 of the daemon (synchronous=NORMAL: durable against process death,
 * not against power loss, which would cost an fsync per write). */
#include "ens-state.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

struct _EnsState {
  sqlite3 *db;
  sqlite3_stmt *set, *get, *del, *list, *seq_bump, *seq_read;
};

#define ENS_STATE_ERROR (g_quark_from_static_string ("ens-state-error"))

static gboolean
fail (EnsState *state, GError **error, const char *what)
{
  g_set_error (error, ENS_STATE_ERROR, 1, "%s: %s", what, sqlite3_errmsg (state->db));
  return FALSE;
}

static gboolean
prepare (EnsState *state, const char *sql, sqlite3_stmt **stmt, GError **error)
{
  if (sqlite3_prepare_v3 (state->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) != SQLITE_OK)
    return fail (state, error, "prepare");
  return TRUE;
}

/* The database and its -wal and -shm files are the owner's alone, whatever
 * the folder's mode or the umask.  SQLite gives -wal and -shm the mode of
 * the database file, so that one is made 0600 before SQLite opens it; files
 * an older version left readable are made private again. */
static gboolean
make_private (const char *path, GError **error)
{
  static const char *const companions[] = { "-wal", "-shm", "-journal" };
  int fd = g_open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

  if (fd < 0 || fchmod (fd, 0600) != 0)
    {
      int saved = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "cannot make %s private: %s", path,
                   g_strerror (saved));
      return FALSE;
    }
  close (fd);
  for (guint i = 0; i < G_N_ELEMENTS (companions); i++)
    {
      g_autofree char *companion = g_strconcat (path, companions[i], NULL);
      if (g_chmod (companion, 0600) != 0 && errno != ENOENT)
        {
          int saved = errno;
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "cannot make %s private: %s",
                       companion, g_strerror (saved));
          return FALSE;
        }
    }
  return TRUE;
}

EnsState *
ens_state_open (const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename (dir, "ensemble.db", NULL);
  EnsState *state = g_new0 (EnsState, 1);
  char *errmsg = NULL;
  static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA busy_timeout=2000;"
    "CREATE TABLE IF NOT EXISTS kv (scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  updated_us INTEGER NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;";

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "cannot create state folder %s: %s",
                   dir, g_strerror (saved));
      g_free (state);
      return NULL;
    }
  if (!make_private (path, error))
    {
      g_free (state);
      return NULL;
    }
  if (sqlite3_open_v2 (path, &state->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                       NULL) != SQLITE_OK)
    {
      g_set_error (error, ENS_STATE_ERROR, 1, "cannot open %s: %s", path, sqlite3_errmsg (state->db));
      ens_state_close (state);
      return NULL;
    }
  if (sqlite3_exec (state->db, schema, NULL, NULL, &errmsg) != SQLITE_OK)
    {
      g_set_error (error, ENS_STATE_ERROR, 1, "cannot set up %s: %s", path, errmsg);
      sqlite3_free (errmsg);
      ens_state_close (state);
      return NULL;
    }
  if (!prepare (state, "INSERT INTO kv (scope, key, value, updated_us) VALUES (?1, ?2, ?3, ?4)"
                       " ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated_us = excluded.updated_us",
                &state->set, error) ||
      !prepare (state, "SELECT value FROM kv WHERE scope = ?1 AND key = ?2", &state->get, error) ||
      !prepare (state, "DELETE FROM kv WHERE scope = ?1 AND key = ?2", &state->del, error) ||
      !prepare (state, "SELECT key FROM kv WHERE scope = ?1 AND substr (key, 1, length (?2)) = ?2"
                       " ORDER BY key LIMIT ?3", &state->list, error) ||
      !prepare (state, "INSERT INTO sequences (name, value) VALUES (?1, 1)"
                       " ON CONFLICT (name) DO UPDATE SET value = value + 1", &state->seq_bump, error) ||
      !prepare (state, "SELECT value FROM sequences WHERE name = ?1", &state->seq_read, error))
    {
      ens_state_close (state);
      return NULL;
    }
  return state;
}

void
ens_state_close (EnsState *state)
{
  if (state == NULL)
    return;
  sqlite3_finalize (state->set);
  sqlite3_finalize (state->get);
  sqlite3_finalize (state->del);
  sqlite3_finalize (state->list);
  sqlite3_finalize (state->seq_bump);
  sqlite3_finalize (state->seq_read);
  sqlite3_close (state->db);
  g_free (state);
}

static gboolean
step_done (EnsState *state, sqlite3_stmt *stmt, GError **error)
{
  int rc = sqlite3_step (stmt);
  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE)
    return fail (state, error, "write");
  return TRUE;
}

gboolean
ens_state_set (EnsState *state, const char *scope, const char *key, const char *value, GError **error)
{
  sqlite3_bind_text (state->set, 1, scope, -1, SQLITE_STATIC);
  sqlite3_bind_text (state->set, 2, key, -1, SQLITE_STATIC);
  sqlite3_bind_text (state->set, 3, value, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (state->set, 4, g_get_real_time ());
  return step_done (state, state->set, error);
}

char *
ens_state_get (EnsState *state, const char *scope, const char *key, GError **error)
{
  char *value = NULL;
  int rc;

  sqlite3_bind_text (state->get, 1, scope, -1, SQLITE_STATIC);
  sqlite3_bind_text (state->get, 2, key, -1, SQLITE_STATIC);
  rc = sqlite3_step (state->get);
  if (rc == SQLITE_ROW)
    value = g_strdup ((const char *) sqlite3_column_text (state->get, 0));
  else if (rc != SQLITE_DONE)
    fail (state, error, "read");
  sqlite3_reset (state->get);
  return value;
}

gboolean
ens_state_delete (EnsState *state, const char *scope, const char *key, gboolean *existed, GError **error)
{
  gboolean ok;

  sqlite3_bind_text (state->del, 1, scope, -1, SQLITE_STATIC);
  sqlite3_bind_text (state->del, 2, key, -1, SQLITE_STATIC);
  ok = step_done (state, state->del, error);
  if (existed)
    *existed = ok && sqlite3_changes (state->db) > 0;
  return ok;
}

GPtrArray *
ens_state_list (EnsState *state, const char *scope, const char *prefix, guint limit, GError **error)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func (g_free);
  int rc;

  sqlite3_bind_text (state->list, 1, scope, -1, SQLITE_STATIC);
  sqlite3_bind_text (state->list, 2, prefix ? prefix : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64 (state->list, 3, limit);
  while ((rc = sqlite3_step (state->list)) == SQLITE_ROW)
    g_ptr_array_add (keys, g_strdup ((const char *) sqlite3_column_text (state->list, 0)));
  sqlite3_reset (state->list);
  if (rc != SQLITE_DONE)
    {
      fail (state, error, "list");
      g_ptr_array_unref (keys);
      return NULL;
    }
  return keys;
}

gint64
ens_state_next_sequence (EnsState *state, const char *name, GError **error)
{
  gint64 value = -1;

  sqlite3_bind_text (state->seq_bump, 1, name, -1, SQLITE_STATIC);
  if (!step_done (state, state->seq_bump, error))
    return -1;
  sqlite3_bind_text (state->seq_read, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step (state->seq_read) == SQLITE_ROW)
    value = sqlite3_column_int64 (state->seq_read, 0);
  else
    fail (state, error, "sequence");
  sqlite3_reset (state->seq_read);
  return value;
}
