/* ensemblectl: the connection — one Unix stream socket per invocation:
 * connect, write the request line(s), read lines until the reply carrying
 * our id arrives, or keep reading events until told to stop.  Every wait
 * goes through poll() so --timeout covers a daemon that stops reading as
 * well as one that never answers, and a signal wakes it through a pipe. */
#include "ens-ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>


/* ------------------------------------------------------------------ */
/* Connection                                                           */

struct _EnsConn
{
  int fd;
  char *path;
  GString *buf;   /* received bytes not yet returned as lines */
  gboolean eof;
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsConn, ens_conn_free)

void
ens_conn_free (EnsConn *conn)
{
  if (conn == NULL)
    return;
  if (conn->fd >= 0)
    close (conn->fd);
  g_free (conn->path);
  g_string_free (conn->buf, TRUE);
  g_free (conn);
}

static EnsConn *
ens_conn_open (const char *path, EnsCtlError **error)
{
  struct sockaddr_un addr;
  g_autoptr(EnsConn) conn = NULL;
  int saved;

  memset (&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen (path) >= sizeof addr.sun_path)
    {
      ens_ctl_set_error (error, "NOT_RUNNING", "cannot connect to %s: %s", path,
                         g_strerror (ENAMETOOLONG));
      return NULL;
    }
  memcpy (addr.sun_path, path, strlen (path));

  conn = g_new0 (EnsConn, 1);
  conn->path = g_strdup (path);
  conn->buf = g_string_new (NULL);
  conn->fd = socket (AF_UNIX, SOCK_STREAM, 0);
  if (conn->fd < 0)
    {
      saved = errno;
      ens_ctl_set_error (error, "NOT_RUNNING", "cannot connect to %s: %s", path,
                         g_strerror (saved));
      return NULL;
    }

  /* Blocking connect: on a Unix socket it completes or fails at once
   * (barring a full listen backlog). */
  while (connect (conn->fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      saved = errno;
      if (saved == EINTR)
        continue;
      ens_ctl_set_error (error, "NOT_RUNNING", "cannot connect to %s: %s", path,
                         g_strerror (saved));
      return NULL;
    }

  /* From here on every wait goes through poll() so --timeout covers a
   * daemon that stops reading as well as one that never answers. */
  if (fcntl (conn->fd, F_SETFD, FD_CLOEXEC) < 0 ||
      fcntl (conn->fd, F_SETFL, fcntl (conn->fd, F_GETFL) | O_NONBLOCK) < 0)
    {
      saved = errno;
      ens_ctl_set_error (error, "IO_ERROR", "cannot configure socket %s: %s", path,
                         g_strerror (saved));
      return NULL;
    }

  return g_steal_pointer (&conn);
}

typedef enum
{
  ENS_WAIT_READY,
  ENS_WAIT_TIMEOUT,
  ENS_WAIT_STOPPED,   /* a signal arrived on the wake pipe */
  ENS_WAIT_FAILED,
} EnsWaitResult;

/* Waits for @events on @fd until @deadline (monotonic µs, 0 = never),
 * also watching @wake_fd (-1 = none). */
static EnsWaitResult
ens_wait_fd (int fd, short events, gint64 deadline, int wake_fd)
{
  for (;;)
    {
      struct pollfd pfd[2] = {
        { .fd = fd, .events = events },
        { .fd = wake_fd, .events = POLLIN },
      };
      int timeout = -1;
      int r;

      if (deadline > 0)
        {
          gint64 left = deadline - g_get_monotonic_time ();

          if (left <= 0)
            return ENS_WAIT_TIMEOUT;
          /* Round up so we never spin on a sub-millisecond remainder. */
          timeout = (int) MIN ((left + 999) / 1000, (gint64) G_MAXINT);
        }

      r = poll (pfd, wake_fd >= 0 ? 2 : 1, timeout);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return ENS_WAIT_FAILED;
        }
      if (wake_fd >= 0 && (pfd[1].revents & POLLIN))
        return ENS_WAIT_STOPPED;
      if (pfd[0].revents != 0)
        return ENS_WAIT_READY;
    }
}

static gboolean
ens_timeout_error (EnsConn *conn, guint timeout_ms, EnsCtlError **error)
{
  ens_ctl_set_error (error, "TIMEOUT", "no answer from %s within %u ms", conn->path, timeout_ms);
  return FALSE;
}

gboolean
ens_conn_write_line (EnsConn *conn, const char *line, gint64 deadline, guint timeout_ms,
                     EnsCtlError **error)
{
  g_autofree char *data = g_strconcat (line, "\n", NULL);
  gsize len = strlen (data);
  gsize done = 0;

  while (done < len)
    {
      /* MSG_NOSIGNAL: a vanished daemon is an error to report, not a
       * reason to die; SIGPIPE stays default for stdout (`| head`). */
      ssize_t n = send (conn->fd, data + done, len - done, MSG_NOSIGNAL);

      if (n >= 0)
        {
          done += (gsize) n;
          continue;
        }
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        {
          EnsWaitResult w = ens_wait_fd (conn->fd, POLLOUT, deadline, -1);

          if (w == ENS_WAIT_TIMEOUT)
            return ens_timeout_error (conn, timeout_ms, error);
          if (w == ENS_WAIT_FAILED)
            break;
          continue;
        }
      if (errno == EPIPE || errno == ECONNRESET)
        {
          ens_ctl_set_error (error, "DISCONNECTED", "%s closed the connection", conn->path);
          return FALSE;
        }
      break;
    }

  if (done < len)
    {
      int saved = errno;

      ens_ctl_set_error (error, "IO_ERROR", "cannot write to %s: %s", conn->path,
                         g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

EnsReadResult
ens_conn_read_line (EnsConn *conn, gint64 deadline, guint timeout_ms, int wake_fd,
                    char **line_out, EnsCtlError **error)
{
  for (;;)
    {
      char *nl = memchr (conn->buf->str, '\n', conn->buf->len);
      char chunk[65536];
      ssize_t n;

      if (nl != NULL)
        {
          gsize len = (gsize) (nl - conn->buf->str);
          char *line = g_strndup (conn->buf->str, len);

          g_string_erase (conn->buf, 0, (gssize) len + 1);
          if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = '\0';
          if (line[0] == '\0')
            {
              g_free (line);
              continue;
            }
          *line_out = line;
          return ENS_READ_LINE;
        }
      if (conn->eof)
        return ENS_READ_EOF;   /* a trailing partial line is not a message */
      if (conn->buf->len > ENS_CTL_MAX_LINE)
        {
          ens_ctl_set_error (error, "PROTOCOL_ERROR", "line from %s longer than %u bytes",
                             conn->path, ENS_CTL_MAX_LINE);
          return ENS_READ_FAILED;
        }

      n = read (conn->fd, chunk, sizeof chunk);
      if (n > 0)
        {
          g_string_append_len (conn->buf, chunk, n);
          continue;
        }
      if (n == 0)
        {
          conn->eof = TRUE;
          continue;
        }
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        {
          switch (ens_wait_fd (conn->fd, POLLIN, deadline, wake_fd))
            {
            case ENS_WAIT_READY:
              continue;
            case ENS_WAIT_STOPPED:
              return ENS_READ_STOPPED;
            case ENS_WAIT_TIMEOUT:
              ens_timeout_error (conn, timeout_ms, error);
              return ENS_READ_FAILED;
            case ENS_WAIT_FAILED:
            default:
              break;
            }
        }
      if (errno == ECONNRESET)
        {
          conn->eof = TRUE;
          continue;
        }
      {
        int saved = errno;

        ens_ctl_set_error (error, "IO_ERROR", "cannot read from %s: %s", conn->path,
                           g_strerror (saved));
      }
      return ENS_READ_FAILED;
    }
}

/* ------------------------------------------------------------------ */
/* Request / reply                                                      */

char *
ens_build_request (const char *agent, const char *action, JsonNode *data, guint agent_timeout_ms)
{
  g_autoptr(JsonObject) obj = json_object_new ();
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (obj, "id", ENS_CTL_REQUEST_ID);
  if (agent != NULL)
    json_object_set_string_member (obj, "agent", agent);
  json_object_set_string_member (obj, "action", action);
  json_object_set_member (obj, "data", data != NULL ? json_node_ref (data)
                                                     : json_node_new (JSON_NODE_NULL));
  if (agent_timeout_ms > 0)
    json_object_set_int_member (obj, "timeout_ms", agent_timeout_ms);
  json_node_set_object (root, obj);
  return ens_json_to_string (root, FALSE);
}

EnsLineKind
ens_classify_line (EnsConn *conn, const char *line, JsonNode **root_out, EnsCtlError **error)
{
  g_autoptr(GError) parse_error = NULL;
  g_autoptr(JsonNode) root = ens_json_parse (line, &parse_error);
  JsonObject *obj;
  JsonNode *id;
  EnsLineKind kind = ENS_LINE_OTHER;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      ens_ctl_set_error (error, "PROTOCOL_ERROR", "unreadable line from %s: %s", conn->path,
                         parse_error ? parse_error->message : "not a JSON object");
      return ENS_LINE_BAD;
    }
  obj = json_node_get_object (root);

  if (json_object_has_member (obj, "event"))
    kind = ENS_LINE_EVENT;
  else if (json_object_has_member (obj, "status"))
    {
      id = json_object_get_member (obj, "id");
      if (id != NULL && JSON_NODE_HOLDS_VALUE (id) &&
          json_node_get_value_type (id) == G_TYPE_STRING &&
          g_strcmp0 (json_node_get_string (id), ENS_CTL_REQUEST_ID) == 0)
        kind = ENS_LINE_REPLY;
      /* The daemon answers with a null id when it could not read ours;
       * with one request per connection that answer is necessarily ours. */
      else if ((id == NULL || JSON_NODE_HOLDS_NULL (id)) &&
               g_strcmp0 (json_object_get_string_member_with_default (obj, "status", ""),
                          "error") == 0)
        kind = ENS_LINE_REPLY;
    }

  *root_out = g_steal_pointer (&root);
  return kind;
}

JsonNode *
ens_reply_data (EnsConn *conn, JsonNode *reply, EnsCtlError **error)
{
  JsonObject *obj = json_node_get_object (reply);
  g_autofree char *status = ens_json_text (obj, "status");
  JsonNode *data;

  if (g_strcmp0 (status, "success") == 0)
    {
      data = json_object_get_member (obj, "data");
      return data != NULL ? json_node_copy (data) : json_node_new (JSON_NODE_NULL);
    }
  if (g_strcmp0 (status, "error") == 0)
    {
      JsonObject *err = ens_json_object (obj, "error");
      g_autofree char *code = ens_json_text (err, "code");
      g_autofree char *message = ens_json_text (err, "message");

      ens_ctl_set_error (error, code && code[0] ? code : "ERROR", "%s",
                         message && message[0] ? message : "(no message)");
      return NULL;
    }
  ens_ctl_set_error (error, "PROTOCOL_ERROR", "reply from %s has unknown status '%s'",
                     conn->path, status ? status : "(none)");
  return NULL;
}

gboolean
ens_ctl_connect (EnsCtl *ctl, guint extra_ms, EnsCtlError **error)
{
  guint timeout_ms = ctl->opts->timeout_ms;

  ctl->deadline = timeout_ms > 0
                    ? g_get_monotonic_time () + ((gint64) timeout_ms + extra_ms) * G_TIME_SPAN_MILLISECOND
                    : 0;
  ctl->conn = ens_conn_open (ctl->opts->socket_path, error);
  return ctl->conn != NULL;
}

/* Reads until the reply to our request; its data, or NULL with @error. */
static JsonNode *
ens_await_reply (EnsCtl *ctl, guint timeout_ms, EnsCtlError **error)
{
  for (;;)
    {
      g_autofree char *line = NULL;
      g_autoptr(JsonNode) root = NULL;

      switch (ens_conn_read_line (ctl->conn, ctl->deadline, timeout_ms, -1, &line, error))
        {
        case ENS_READ_LINE:
          break;
        case ENS_READ_EOF:
          ens_ctl_set_error (error, "DISCONNECTED", "%s closed the connection before replying",
                             ctl->conn->path);
          return NULL;
        case ENS_READ_STOPPED:
        case ENS_READ_FAILED:
        default:
          return NULL;
        }

      switch (ens_classify_line (ctl->conn, line, &root, error))
        {
        case ENS_LINE_REPLY:
          return ens_reply_data (ctl->conn, root, error);
        case ENS_LINE_BAD:
          return NULL;
        case ENS_LINE_EVENT:
        case ENS_LINE_OTHER:
        default:
          continue;   /* not ours: keep waiting */
        }
    }
}

JsonNode *
ens_call (EnsCtl *ctl, const char *agent, const char *action, JsonNode *data,
          guint agent_timeout_ms, EnsCtlError **error)
{
  g_autofree char *request = ens_build_request (agent, action, data, agent_timeout_ms);
  /* Give the daemon's own agent TIMEOUT (more precise) a moment to arrive
   * before ours fires. */
  guint grace_ms = agent_timeout_ms > 0 ? ENS_CTL_AGENT_GRACE_MS : 0;
  guint timeout_ms = ctl->opts->timeout_ms + grace_ms;

  g_clear_pointer (&ctl->conn, ens_conn_free);
  if (!ens_ctl_connect (ctl, grace_ms, error))
    return NULL;
  if (!ens_conn_write_line (ctl->conn, request, ctl->deadline, timeout_ms, error))
    return NULL;
  return ens_await_reply (ctl, timeout_ms, error);
}

JsonNode *
ens_call_again (EnsCtl *ctl, const char *agent, const char *action, JsonNode *data, EnsCtlError **error)
{
  g_autofree char *request = NULL;
  g_autoptr(JsonNode) empty = NULL;
  guint timeout_ms = ctl->opts->timeout_ms;

  if (data == NULL)
    {
      empty = json_node_new (JSON_NODE_OBJECT);
      json_node_take_object (empty, json_object_new ());
    }
  request = ens_build_request (agent, action, data ? data : empty, 0);
  if (ctl->conn == NULL)
    {
      if (!ens_ctl_connect (ctl, 0, error))
        return NULL;
    }
  else
    ctl->deadline = timeout_ms > 0 ? g_get_monotonic_time () + (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND : 0;
  if (!ens_conn_write_line (ctl->conn, request, ctl->deadline, timeout_ms, error))
    return NULL;
  return ens_await_reply (ctl, timeout_ms, error);
}

JsonNode *
ens_call_action (EnsCtl *ctl, const char *action, JsonNode *data, EnsCtlError **error)
{
  g_autoptr(JsonNode) empty = NULL;

  if (data == NULL)
    {
      empty = json_node_new (JSON_NODE_OBJECT);
      json_node_take_object (empty, json_object_new ());
    }
  return ens_call (ctl, NULL, action, data ? data : empty, 0, error);
}

/* ------------------------------------------------------------------ */
/* Stopping on a signal                                                 */

static volatile sig_atomic_t ens_stop_signal;
static int ens_wake_pipe[2] = { -1, -1 };

/* Self-pipe: poll() then notices the signal without races. */
static void
ens_on_signal (int signo)
{
  int saved = errno;
  char c = 1;
  ssize_t r;

  ens_stop_signal = signo;
  r = write (ens_wake_pipe[1], &c, 1);
  (void) r;
  errno = saved;
}

gboolean
ens_install_stop_handlers (EnsCtlError **error)
{
  g_autoptr(GError) gerror = NULL;
  struct sigaction sa;

  if (!g_unix_open_pipe (ens_wake_pipe, FD_CLOEXEC, &gerror) ||
      !g_unix_set_fd_nonblocking (ens_wake_pipe[1], TRUE, &gerror))
    {
      ens_ctl_set_error (error, "IO_ERROR", "cannot set up signal handling: %s", gerror->message);
      return FALSE;
    }
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = ens_on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  return TRUE;
}

int
ens_stop_fd (void)
{
  return ens_wake_pipe[0];
}

gboolean
ens_ctl_sleep (guint ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * G_TIME_SPAN_MILLISECOND;

  for (;;)
    {
      struct pollfd pfd = { .fd = ens_wake_pipe[0], .events = POLLIN };
      gint64 left = deadline - g_get_monotonic_time ();
      int r;

      if (left <= 0)
        return TRUE;
      r = poll (&pfd, ens_wake_pipe[0] >= 0 ? 1 : 0, (int) MIN ((left + 999) / 1000, (gint64) G_MAXINT));
      if (r > 0)
        return FALSE;
      if (r < 0 && errno != EINTR)
        return TRUE;
    }
}

/* ------------------------------------------------------------------ */
/* A request, then events until the end                                 */

int
ens_follow (EnsCtl *ctl, GPtrArray *requests, EnsEventFunc func, gpointer user_data, JsonNode **ack)
{
  g_autoptr(EnsCtlError) error = NULL;
  guint replies = 0;

  if (!ens_install_stop_handlers (&error))
    return ens_report_error (error);
  if (!ens_ctl_connect (ctl, 0, &error))
    return ens_report_error (error);
  for (guint i = 0; i < requests->len; i++)
    if (!ens_conn_write_line (ctl->conn, g_ptr_array_index (requests, i), ctl->deadline, ctl->opts->timeout_ms,
                              &error))
      return ens_report_error (error);

  for (;;)
    {
      g_autofree char *line = NULL;
      g_autoptr(JsonNode) root = NULL;

      switch (ens_conn_read_line (ctl->conn, ctl->deadline, ctl->opts->timeout_ms, ens_wake_pipe[0], &line, &error))
        {
        case ENS_READ_LINE:
          break;
        case ENS_READ_STOPPED:
          return ENS_EXIT_OK;
        case ENS_READ_EOF:
          return ens_report ("DISCONNECTED", "connection closed by the daemon", ENS_EXIT_ERROR);
        case ENS_READ_FAILED:
        default:
          return ens_report_error (error);
        }
      switch (ens_classify_line (ctl->conn, line, &root, &error))
        {
        case ENS_LINE_REPLY:
          {
            g_autoptr(JsonNode) data = ens_reply_data (ctl->conn, root, &error);
            if (data == NULL)
              return ens_report_error (error);
            if (++replies == requests->len && ack)
              *ack = g_steal_pointer (&data);
          }
          break;
        case ENS_LINE_EVENT:
          if (replies < requests->len)
            break; /* not ours yet */
          switch (func (ctl, json_node_get_object (root), user_data))
            {
            case ENS_FOLLOW_DONE:
              return ENS_EXIT_OK;
            case ENS_FOLLOW_FAILED:
              return ENS_EXIT_ERROR;
            case ENS_FOLLOW_MORE:
            default:
              break;
            }
          break;
        case ENS_LINE_BAD:
          return ens_report_error (error);
        case ENS_LINE_OTHER:
        default:
          break;
        }
    }
}
