/* ens-unix-listen.c — the listening sockets of transport-unix (see
 * ens-unix-listen.h). */
#include "ens-unix-listen.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static gboolean
set_error_errno (GError **error, int saved, const char *what, const char *path)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s %s: %s", what, path, g_strerror (saved));
  return FALSE;
}

gboolean
ens_unix_prepare_dir (const char *dir, GError **error)
{
  struct stat st;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    return set_error_errno (error, errno, "cannot create socket folder", dir);
  if (lstat (dir, &st) != 0)
    return set_error_errno (error, errno, "cannot stat socket folder", dir);
  if (!S_ISDIR (st.st_mode))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY, "socket folder %s is not a folder (or is a symlink)", dir);
      return FALSE;
    }
  if (st.st_uid != getuid ())
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "socket folder %s belongs to uid %u, not to us",
                   dir, (unsigned) st.st_uid);
      return FALSE;
    }
  if ((st.st_mode & 0777) != 0700 && chmod (dir, 0700) != 0)
    return set_error_errno (error, errno, "cannot make private the socket folder", dir);
  return TRUE;
}

static gboolean
fill_addr (struct sockaddr_un *addr, const char *path, GError **error)
{
  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (strlen (path) >= sizeof addr->sun_path)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG, "socket path %s is longer than %zu bytes", path,
                   sizeof addr->sun_path - 1);
      return FALSE;
    }
  strcpy (addr->sun_path, path);
  return TRUE;
}

/* Binds @path, replacing a stale socket file only when nothing answers on it. */
static int
listen_at (const char *path, GError **error)
{
  struct sockaddr_un addr;
  struct stat st;
  int fd;

  if (!fill_addr (&addr, path, error))
    return -1;
  if (lstat (path, &st) == 0)
    {
      int probe;

      if (!S_ISSOCK (st.st_mode))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "%s exists and is not a socket; not replacing it", path);
          return -1;
        }
      probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (probe >= 0 && connect (probe, (struct sockaddr *) &addr, sizeof addr) == 0)
        {
          close (probe);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                       "%s is served by another running daemon; stop it or use another --socket-dir", path);
          return -1;
        }
      if (probe >= 0)
        close (probe);
      unlink (path); /* stale: its daemon is gone */
    }

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      set_error_errno (error, errno, "socket() for", path);
      return -1;
    }
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0 || chmod (path, 0600) != 0 || listen (fd, 512) != 0)
    {
      set_error_errno (error, errno, "cannot listen on", path);
      close (fd);
      return -1;
    }
  return fd;
}

static guint32
peer_flags (int fd, char **peer)
{
  struct ucred cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    {
      *peer = g_strdup ("unix:unknown");
      return 0;
    }
  *peer = g_strdup_printf ("unix:pid=%d,uid=%u", (int) cred.pid, (unsigned) cred.uid);
  return cred.uid == getuid () || cred.uid == 0 ? ENS_CLIENT_FLAG_ADMIN : 0;
}

static gboolean
listener_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  EnsUnixListener *l = user_data;

  (void) source;
  (void) callback;
  for (int i = 0; i < 64; i++)
    {
      int fd = accept4 (l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      g_autofree char *peer = NULL;
      guint32 flags;

      if (fd < 0)
        break;
      flags = peer_flags (fd, &peer);
      l->accept (l, fd, flags, peer, l->user_data);
    }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs listener_source_funcs = { NULL, NULL, listener_dispatch, NULL, NULL, NULL };

void
ens_unix_listener_free (EnsUnixListener *l)
{
  if (l->source)
    {
      g_source_destroy (l->source);
      g_source_unref (l->source);
    }
  if (l->fd >= 0)
    {
      close (l->fd);
      unlink (l->path);
    }
  g_free (l->path);
  g_free (l->agent);
  g_free (l);
}

EnsUnixListener *
ens_unix_listener_new (const char *dir, const char *name, const EnsDialect *dialect, const char *agent,
                       gboolean admin, EnsUnixAcceptFunc accept, gpointer user_data, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  int fd = listen_at (path, error);
  EnsUnixListener *l;

  if (fd < 0)
    return NULL;
  l = g_new0 (EnsUnixListener, 1);
  l->fd = fd;
  l->dialect = dialect;
  l->path = g_steal_pointer (&path);
  l->admin = admin;
  l->agent = g_strdup (agent);
  l->accept = accept;
  l->user_data = user_data;
  l->source = g_source_new (&listener_source_funcs, sizeof (GSource));
  g_source_set_callback (l->source, NULL, l, NULL);
  g_source_set_static_name (l->source, "ensemble unix listener");
  g_source_add_unix_fd (l->source, fd, G_IO_IN);
  g_source_attach (l->source, NULL);
  return l;
}
