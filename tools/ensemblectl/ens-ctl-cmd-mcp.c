/* ensemblectl: mcp — the daemon as an MCP server on stdin/stdout, for
 * desktop MCP clients that launch a command: the bytes go both ways
 * between stdio and the daemon's mcp.sock (beside ensemble.sock), where
 * each line is one JSON-RPC message (MCP's stdio framing).  Ends when the
 * daemon closes the connection, or once stdin ends and the daemon has
 * answered and closed. */
#include "ens-ctl.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static gboolean
write_all (int fd, const char *buf, gsize len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      buf += n;
      len -= n;
    }
  return TRUE;
}

int
ens_cmd_mcp (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autofree char *dir = g_path_get_dirname (ctl->opts->socket_path);
  g_autofree char *path = g_build_filename (dir, "mcp.sock", NULL);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct pollfd fds[2];
  char buf[65536];
  gboolean stdin_open = TRUE;
  int fd;

  (void) cmd;
  (void) args;
  if (strlen (path) >= sizeof addr.sun_path)
    return ens_report ("NOT_RUNNING", "the socket path is too long", ENS_EXIT_ERROR);
  memcpy (addr.sun_path, path, strlen (path));
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      g_autofree char *text = g_strdup_printf ("cannot connect to %s: %s (is ensembled running with transport-mcp?)",
                                               path, g_strerror (errno));
      if (fd >= 0)
        close (fd);
      return ens_report ("NOT_RUNNING", text, ENS_EXIT_ERROR);
    }
  fds[0].fd = STDIN_FILENO;
  fds[1].fd = fd;
  for (;;)
    {
      ssize_t n;

      fds[0].events = stdin_open ? POLLIN : 0;
      fds[1].events = POLLIN;
      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (fds[1].revents & (POLLIN | POLLHUP | POLLERR))
        {
          n = read (fd, buf, sizeof buf);
          if (n <= 0)
            break; /* the daemon closed: done */
          if (!write_all (STDOUT_FILENO, buf, n))
            break;
        }
      if (stdin_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
        {
          n = read (STDIN_FILENO, buf, sizeof buf);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              /* The client is done: the daemon answers what it has, then closes. */
              stdin_open = FALSE;
              shutdown (fd, SHUT_WR);
              continue;
            }
          if (!write_all (fd, buf, n))
            break;
        }
    }
  close (fd);
  return ENS_EXIT_OK;
}
