/* ensemblectl — command-line client for the Ensemble daemon (ensembled).
 *
 * Speaks the native protocol: newline-delimited JSON over a Unix stream
 * socket.  It is deliberately self-contained (no code shared with the
 * daemon) so that it keeps working against older or newer daemons and can
 * be built on its own.
 *
 * One connection per invocation: connect, write one request line, read
 * lines until the reply carrying our id arrives (or, for `subscribe`, keep
 * printing events until interrupted).
 */

/* -std=c11 hides POSIX; we need sigaction, MSG_NOSIGNAL and friends.
 * (The project build already passes -D_GNU_SOURCE, which covers it.) */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>

#define ENS_CTL_VERSION "0.1.0"
#define ENS_CTL_DEFAULT_TIMEOUT_MS 35000
/* Agent requests: let the daemon's own TIMEOUT reply win the race. */
#define ENS_CTL_AGENT_GRACE_MS 1000
#define ENS_CTL_MAX_AGENT_TIMEOUT_MS 3600000
/* We send exactly one request per connection, so a fixed id is enough. */
#define ENS_CTL_REQUEST_ID "ctl-1"
/* A guard against a runaway peer; real replies are far smaller. */
#define ENS_CTL_MAX_LINE (64u * 1024u * 1024u)

enum
{
  ENS_EXIT_OK = 0,
  ENS_EXIT_ERROR = 1,
  ENS_EXIT_USAGE = 2,
};

/* An error as shown to the user: a protocol-style CODE plus a message.
 * Remote errors carry the daemon's code verbatim, so GError's integer codes
 * would not fit. */
typedef struct
{
  char *code;
  char *message;
} EnsCtlError;

static void
ens_ctl_error_free (EnsCtlError *error)
{
  if (error == NULL)
    return;
  g_free (error->code);
  g_free (error->message);
  g_free (error);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsCtlError, ens_ctl_error_free)

G_GNUC_PRINTF (3, 4)
static void
ens_ctl_set_error (EnsCtlError **error, const char *code, const char *format, ...)
{
  va_list args;
  EnsCtlError *e;

  if (error == NULL)
    return;
  g_return_if_fail (*error == NULL);

  e = g_new0 (EnsCtlError, 1);
  e->code = g_strdup (code);
  va_start (args, format);
  e->message = g_strdup_vprintf (format, args);
  va_end (args);
  *error = e;
}

/* Control characters (say, a newline in a daemon's error message) would
 * break the one-line contract of ens_report(). */
static char *
ens_one_line (const char *text)
{
  char *line = g_strdup (text);

  for (char *p = line; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      *p = ' ';
  return line;
}

/* The single line every failure ends with; keeps stderr parseable. */
static int
ens_report (const char *code, const char *message, int status)
{
  g_autofree char *safe_code = ens_one_line (code);
  g_autofree char *safe_message = ens_one_line (message);

  fflush (stdout);
  fprintf (stderr, "ensemblectl: %s: %s\n", safe_code, safe_message);
  return status;
}

static int
ens_report_error (const EnsCtlError *error)
{
  return ens_report (error->code, error->message, ENS_EXIT_ERROR);
}

G_GNUC_PRINTF (1, 2)
static int
ens_usage_error (const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  return ens_report ("USAGE", message, ENS_EXIT_USAGE);
}

/* ------------------------------------------------------------------ */
/* Options                                                              */

typedef struct
{
  char *socket_path;   /* resolved */
  gboolean json;
  guint timeout_ms;    /* 0 = wait forever */
  gboolean timeout_set;
  char *to;            /* publish --to */
  char *model;         /* complete --model */
  char *provider;      /* complete --provider */
  gboolean stream;     /* complete --stream */
  GPtrArray *args;     /* positional (char *, owned); [0] is the command */
} EnsCtlOptions;

static void
ens_ctl_options_clear (EnsCtlOptions *opts)
{
  g_clear_pointer (&opts->socket_path, g_free);
  g_clear_pointer (&opts->to, g_free);
  g_clear_pointer (&opts->model, g_free);
  g_clear_pointer (&opts->provider, g_free);
  g_clear_pointer (&opts->args, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (EnsCtlOptions, ens_ctl_options_clear)

static char *
ens_default_socket_path (void)
{
  const char *env = g_getenv ("ENSEMBLE_SOCKET");

  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  return g_build_filename (g_get_user_runtime_dir (), "ensemble", "ensemble.sock", NULL);
}

static void
ens_print_help (void)
{
  g_autofree char *def = ens_default_socket_path ();

  printf ("Usage: ensemblectl [OPTION...] COMMAND [ARG...]\n"
          "\n"
          "Command-line client for the Ensemble daemon (ensembled).\n"
          "\n"
          "Commands:\n"
          "  health                       Show daemon status, counters and plugins\n"
          "  plugins                      List loaded plugins\n"
          "  agents                       List registered agents\n"
          "  ping                         Check that the daemon answers\n"
          "  publish TOPIC [JSON]         Publish an event (data defaults to null)\n"
          "  subscribe PATTERN...         Print matching events until interrupted\n"
          "                               (globs: * ? [...])\n"
          "  request AGENT ACTION [JSON]  Send a request to an agent and print the\n"
          "                               reply data (JSON defaults to {})\n"
          "  kv get AGENT KEY             Print a stored value (exit 1 if missing)\n"
          "  kv set AGENT KEY VALUE       Store VALUE (parsed as JSON; anything that\n"
          "                               is not valid JSON is stored as a string)\n"
          "  kv del AGENT KEY             Delete a stored value\n"
          "  kv list AGENT [PREFIX]       List stored keys\n"
          "  complete PROMPT...           Ask for a completion; prints the answer\n"
          "                               (--stream: tokens as they arrive;\n"
          "                               --model M, --provider P to choose)\n"
          "  route [JSON]                 Show which provider the router would pick,\n"
          "                               e.g. '{\"token_count\":2000,\"task_type\":\"coding\"}'\n"
          "  providers                    List provider backends and their statistics\n"
          "  budget                       Show today's budget and spend\n"
          "  sessions                     List sessions\n"
          "  session spawn [JSON]         Start a session ({task?, model?, provider?,\n"
          "                               session_type?, orchestrator_id?, system?})\n"
          "  session exec ID TASK...      Run a task in a session, streaming its output\n"
          "  session status ID            Show a session and its conversation\n"
          "  session stop ID              Stop a session\n"
          "  shutdown                     Ask the daemon to exit (admin only)\n"
          "\n"
          "Options:\n"
          "  --socket PATH                Connect to PATH\n"
          "  --socket-dir DIR             Connect to DIR/ensemble.sock\n"
          "  --json                       Print the raw reply data as JSON (subscribe:\n"
          "                               one event object per line)\n"
          "  --timeout MS                 Give up after MS milliseconds (default %d,\n"
          "                               0 = wait forever); for `request` it is also\n"
          "                               passed to the daemon as the agent deadline\n"
          "  --to CLIENT                  publish: deliver only to client CLIENT\n"
          "  --model M, --provider P      complete: the model or provider backend\n"
          "  --stream                     complete: print tokens as they arrive\n"
          "  -h, --help                   Show this help and exit\n"
          "  --version                    Show the version and exit\n"
          "\n"
          "Without --socket/--socket-dir the socket is $ENSEMBLE_SOCKET, else\n"
          "$XDG_RUNTIME_DIR/ensemble/ensemble.sock (currently %s).\n"
          "\n"
          "Errors are reported as one line \"ensemblectl: CODE: message\" on stderr.\n"
          "Exit status: 0 success, 1 error, 2 usage error.\n",
          ENS_CTL_DEFAULT_TIMEOUT_MS, def);
}

/* Matches "--name VALUE" and "--name=VALUE".  Returns 1 and sets @value on
 * a match, 0 if @argv[*i] is a different option, -1 on a missing value. */
static int
ens_match_opt (int argc, char **argv, int *i, const char *name, const char **value)
{
  const char *arg = argv[*i];
  gsize len = strlen (name);

  if (strncmp (arg, name, len) != 0)
    return 0;
  if (arg[len] == '=')
    {
      *value = arg + len + 1;
      return 1;
    }
  if (arg[len] != '\0')
    return 0;
  if (*i + 1 >= argc)
    return -1;
  *i += 1;
  *value = argv[*i];
  return 1;
}

typedef enum
{
  ENS_PARSE_OK,
  ENS_PARSE_HELP,
  ENS_PARSE_VERSION,
  ENS_PARSE_USAGE,   /* message already printed */
} EnsParseResult;

static EnsParseResult
ens_parse_args (int argc, char **argv, EnsCtlOptions *opts)
{
  static const char *const valued[] = { "--socket", "--socket-dir", "--timeout", "--to", "--model", "--provider" };
  const char *socket_opt = NULL;
  const char *socket_dir = NULL;
  gboolean only_positional = FALSE;

  /* --help/--version win over anything else on the line, like most tools. */
  for (int i = 1; i < argc && strcmp (argv[i], "--") != 0; i++)
    {
      if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
        return ENS_PARSE_HELP;
      if (strcmp (argv[i], "--version") == 0)
        return ENS_PARSE_VERSION;
    }

  opts->args = g_ptr_array_new_with_free_func (g_free);
  opts->timeout_ms = ENS_CTL_DEFAULT_TIMEOUT_MS;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];
      const char *name = NULL;
      const char *value = NULL;
      int m = 0;

      /* Only "--long" is an option: a lone "-" or "-5" (a JSON number) is
       * an ordinary argument, so options may appear anywhere. */
      if (only_positional || strncmp (arg, "--", 2) != 0)
        {
          g_ptr_array_add (opts->args, g_strdup (arg));
          continue;
        }
      if (strcmp (arg, "--") == 0)
        {
          only_positional = TRUE;
          continue;
        }
      if (strcmp (arg, "--json") == 0)
        {
          opts->json = TRUE;
          continue;
        }
      if (strcmp (arg, "--stream") == 0)
        {
          opts->stream = TRUE;
          continue;
        }

      for (gsize k = 0; k < G_N_ELEMENTS (valued) && name == NULL; k++)
        if ((m = ens_match_opt (argc, argv, &i, valued[k], &value)) != 0)
          name = valued[k];
      if (name == NULL)
        {
          ens_usage_error ("unknown option '%s'", arg);
          return ENS_PARSE_USAGE;
        }
      if (m < 0)
        {
          ens_usage_error ("option %s needs a value", name);
          return ENS_PARSE_USAGE;
        }
      if (value[0] == '\0')
        {
          ens_usage_error ("option %s needs a non-empty value", name);
          return ENS_PARSE_USAGE;
        }

      if (strcmp (name, "--socket") == 0)
        socket_opt = value;
      else if (strcmp (name, "--socket-dir") == 0)
        socket_dir = value;
      else if (strcmp (name, "--to") == 0)
        {
          g_free (opts->to);
          opts->to = g_strdup (value);
        }
      else if (strcmp (name, "--model") == 0)
        {
          g_free (opts->model);
          opts->model = g_strdup (value);
        }
      else if (strcmp (name, "--provider") == 0)
        {
          g_free (opts->provider);
          opts->provider = g_strdup (value);
        }
      else
        {
          guint64 v = 0;

          if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXINT, &v, NULL))
            {
              ens_usage_error ("invalid --timeout value '%s': expected milliseconds "
                               "from 0 to %d", value, G_MAXINT);
              return ENS_PARSE_USAGE;
            }
          opts->timeout_ms = (guint) v;
          opts->timeout_set = TRUE;
        }
    }

  if (socket_opt != NULL && socket_dir != NULL)
    {
      ens_usage_error ("--socket and --socket-dir are mutually exclusive");
      return ENS_PARSE_USAGE;
    }
  if (socket_opt != NULL)
    opts->socket_path = g_strdup (socket_opt);
  else if (socket_dir != NULL)
    opts->socket_path = g_build_filename (socket_dir, "ensemble.sock", NULL);
  else
    opts->socket_path = ens_default_socket_path ();

  return ENS_PARSE_OK;
}

/* ------------------------------------------------------------------ */
/* JSON helpers                                                         */

static JsonNode *
ens_json_parse (const char *text, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  JsonNode *root;

  if (!json_parser_load_from_data (parser, text, -1, error))
    return NULL;
  root = json_parser_steal_root (parser);
  if (root == NULL)
    g_set_error_literal (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE, "empty document");
  return root;
}

static void ens_json_write (GString *out, JsonNode *node, gboolean pretty, guint depth);

static void
ens_json_write_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    {
      switch (*p)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        default:
          if (*p < 0x20)
            g_string_append_printf (out, "\\u%04x", *p);
          else
            g_string_append_c (out, (char) *p);
        }
    }
  g_string_append_c (out, '"');
}

/* json-glib 1.6 prints doubles with %.17g (0.1 -> 0.10000000000000001);
 * use the shortest form that reads back as the same value instead. */
static void
ens_json_write_double (GString *out, double d)
{
  static const char *const formats[] = { "%.15g", "%.16g", "%.17g" };
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (d))
    {
      g_string_append (out, "null");
      return;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      g_ascii_formatd (buf, sizeof buf, formats[i], d);
      if (g_ascii_strtod (buf, NULL) == d)
        break;
    }
  g_string_append (out, buf);
  /* Keep it a double for whoever parses our output. */
  if (strpbrk (buf, ".eE") == NULL)
    g_string_append (out, ".0");
}

static void
ens_json_newline (GString *out, gboolean pretty, guint depth)
{
  if (!pretty)
    return;
  g_string_append_c (out, '\n');
  for (guint i = 0; i < depth; i++)
    g_string_append (out, "  ");
}

static void
ens_json_write (GString *out, JsonNode *node, gboolean pretty, guint depth)
{
  switch (node != NULL ? json_node_get_node_type (node) : JSON_NODE_NULL)
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *obj = json_node_get_object (node);
        g_autoptr(GList) names = json_object_get_members (obj);

        if (names == NULL)
          {
            g_string_append (out, "{}");
            break;
          }
        g_string_append_c (out, '{');
        for (GList *l = names; l != NULL; l = l->next)
          {
            ens_json_newline (out, pretty, depth + 1);
            ens_json_write_string (out, l->data);
            g_string_append (out, pretty ? ": " : ":");
            ens_json_write (out, json_object_get_member (obj, l->data), pretty, depth + 1);
            if (l->next != NULL)
              g_string_append_c (out, ',');
          }
        ens_json_newline (out, pretty, depth);
        g_string_append_c (out, '}');
      }
      break;

    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        if (n == 0)
          {
            g_string_append (out, "[]");
            break;
          }
        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            ens_json_newline (out, pretty, depth + 1);
            ens_json_write (out, json_array_get_element (array, i), pretty, depth + 1);
            if (i + 1 < n)
              g_string_append_c (out, ',');
          }
        ens_json_newline (out, pretty, depth);
        g_string_append_c (out, ']');
      }
      break;

    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          break;
        case G_TYPE_DOUBLE:
          ens_json_write_double (out, json_node_get_double (node));
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          break;
        case G_TYPE_STRING:
          ens_json_write_string (out, json_node_get_string (node));
          break;
        default:
          g_string_append (out, "null");
          break;
        }
      break;

    case JSON_NODE_NULL:
    default:
      g_string_append (out, "null");
      break;
    }
}

/* Compact output never contains a raw newline, so it is one protocol line. */
static char *
ens_json_to_string (JsonNode *node, gboolean pretty)
{
  GString *out = g_string_new (NULL);

  ens_json_write (out, node, pretty, 0);
  return g_string_free (out, FALSE);
}

/* A member as display text: strings as-is, other JSON compactly,
 * NULL when absent or null. */
static char *
ens_json_text (JsonObject *obj, const char *name)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (node));
  return ens_json_to_string (node, FALSE);
}

static gboolean
ens_json_number (JsonObject *obj, const char *name, double *out)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    *out = (double) json_node_get_int (node);
  else if (type == G_TYPE_DOUBLE)
    *out = json_node_get_double (node);
  else
    return FALSE;
  return TRUE;
}

static JsonObject *
ens_json_object (JsonObject *obj, const char *name)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static JsonArray *
ens_json_array (JsonObject *obj, const char *name)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static gboolean
ens_json_bool (JsonObject *obj, const char *name)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         json_node_get_value_type (node) == G_TYPE_BOOLEAN && json_node_get_boolean (node);
}

/* ------------------------------------------------------------------ */
/* Connection                                                           */

typedef struct
{
  int fd;
  char *path;
  GString *buf;   /* received bytes not yet returned as lines */
  gboolean eof;
} EnsConn;

static void
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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsConn, ens_conn_free)

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

static gboolean
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

typedef enum
{
  ENS_READ_LINE,
  ENS_READ_EOF,
  ENS_READ_STOPPED,
  ENS_READ_FAILED,   /* @error set (including TIMEOUT) */
} EnsReadResult;

/* Returns the next non-empty line (without "\n" or "\r\n") in @line_out. */
static EnsReadResult
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

typedef struct
{
  EnsCtlOptions *opts;
  EnsConn *conn;
  gint64 deadline;     /* monotonic µs, 0 = none */
} EnsCtl;

static char *
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

typedef enum
{
  ENS_LINE_OTHER,   /* an event or something not addressed to us */
  ENS_LINE_EVENT,
  ENS_LINE_REPLY,
  ENS_LINE_BAD,     /* @error set */
} EnsLineKind;

/* Classifies one received line; for our reply, *@reply_obj holds it. */
static EnsLineKind
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

/* Turns a reply into its data (new ref; a null node if absent) or an error. */
static JsonNode *
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

static gboolean
ens_ctl_connect (EnsCtl *ctl, guint extra_ms, EnsCtlError **error)
{
  guint timeout_ms = ctl->opts->timeout_ms;

  ctl->deadline = timeout_ms > 0
                    ? g_get_monotonic_time () + ((gint64) timeout_ms + extra_ms) * G_TIME_SPAN_MILLISECOND
                    : 0;
  ctl->conn = ens_conn_open (ctl->opts->socket_path, error);
  return ctl->conn != NULL;
}

/* Sends one request and waits for its reply; returns the reply data. */
static JsonNode *
ens_call (EnsCtl *ctl, const char *agent, const char *action, JsonNode *data,
          guint agent_timeout_ms, EnsCtlError **error)
{
  g_autofree char *request = ens_build_request (agent, action, data, agent_timeout_ms);
  /* Give the daemon's own agent TIMEOUT (more precise) a moment to arrive
   * before ours fires. */
  guint grace_ms = agent_timeout_ms > 0 ? ENS_CTL_AGENT_GRACE_MS : 0;
  guint timeout_ms = ctl->opts->timeout_ms + grace_ms;

  if (!ens_ctl_connect (ctl, grace_ms, error))
    return NULL;
  if (!ens_conn_write_line (ctl->conn, request, ctl->deadline, timeout_ms, error))
    return NULL;

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

/* ------------------------------------------------------------------ */
/* Human-readable output                                                */

/* Table cells must stay on one line whatever a plugin put in them. */
static char *
ens_cell (const char *text)
{
  g_autofree char *valid = NULL;

  if (text == NULL || text[0] == '\0')
    return g_strdup ("-");
  valid = g_utf8_make_valid (text, -1);
  return ens_one_line (valid);
}

/* @rows holds GStrv rows of @n_cols cells each. */
static void
ens_print_table (const char *const *headers, guint n_cols, GPtrArray *rows)
{
  g_autofree gsize *widths = g_new0 (gsize, n_cols);

  for (guint c = 0; c < n_cols; c++)
    widths[c] = (gsize) g_utf8_strlen (headers[c], -1);
  for (guint r = 0; r < rows->len; r++)
    {
      char **row = g_ptr_array_index (rows, r);

      for (guint c = 0; c < n_cols; c++)
        widths[c] = MAX (widths[c], (gsize) g_utf8_strlen (row[c], -1));
    }

  for (guint r = 0; r <= rows->len; r++)
    {
      const char *const *row = r == 0 ? headers : (const char *const *) g_ptr_array_index (rows, r - 1);
      g_autoptr(GString) out = g_string_new (NULL);

      for (guint c = 0; c < n_cols; c++)
        {
          g_string_append (out, row[c]);
          /* No padding after the last column: no trailing blanks. */
          if (c + 1 < n_cols)
            for (gsize pad = (gsize) g_utf8_strlen (row[c], -1); pad < widths[c] + 2; pad++)
              g_string_append_c (out, ' ');
        }
      printf ("%s\n", out->str);
    }
}

static GStrv
ens_row_from (JsonObject *obj, const char *const *members, guint n)
{
  GStrv row = g_new0 (char *, n + 1);

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *text = ens_json_text (obj, members[i]);

      row[i] = ens_cell (text);
    }
  return row;
}

static void
ens_print_plugins (JsonArray *plugins)
{
  static const char *const headers[] = { "ID", "KIND", "VERSION", "DESCRIPTION" };
  static const char *const members[] = { "id", "kind", "version", "description" };
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  guint n = plugins ? json_array_get_length (plugins) : 0;

  if (n == 0)
    {
      printf ("No plugins loaded.\n");
      return;
    }
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (plugins, i);

      if (JSON_NODE_HOLDS_OBJECT (node))
        g_ptr_array_add (rows, ens_row_from (json_node_get_object (node), members, 4));
    }
  ens_print_table (headers, 4, rows);
}

static char *
ens_format_uptime (double seconds)
{
  guint64 s = seconds > 0 ? (guint64) seconds : 0;
  guint64 d = s / 86400, h = (s / 3600) % 24, m = (s / 60) % 60;

  s %= 60;
  if (d > 0)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "d %" G_GUINT64_FORMAT "h %" G_GUINT64_FORMAT
                            "m %" G_GUINT64_FORMAT "s", d, h, m, s);
  if (h > 0)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "h %" G_GUINT64_FORMAT "m %" G_GUINT64_FORMAT
                            "s", h, m, s);
  if (m > 0)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "m %" G_GUINT64_FORMAT "s", m, s);
  return g_strdup_printf ("%" G_GUINT64_FORMAT "s", s);
}

static void
ens_print_field (const char *label, const char *value)
{
  g_autofree char *cell = ens_cell (value);

  printf ("%-16s%s\n", label, cell);
}

static void
ens_print_number_field (const char *label, JsonObject *obj, const char *name)
{
  double v;
  g_autofree char *text = NULL;

  if (!ens_json_number (obj, name, &v))
    return;
  text = g_strdup_printf ("%.0f", v);
  ens_print_field (label, text);
}

static void
ens_print_health (JsonObject *data)
{
  JsonObject *counters = ens_json_object (data, "counters");
  JsonArray *plugins = ens_json_array (data, "plugins");
  g_autofree char *status = ens_json_text (data, "status");
  g_autofree char *version = ens_json_text (data, "version");
  g_autofree char *node = ens_json_text (data, "node_id");
  g_autofree char *socket_dir = ens_json_text (data, "socket_dir");
  g_autofree char *state_dir = ens_json_text (data, "state_dir");
  double uptime;

  ens_print_field ("Status:", status);
  ens_print_field ("Version:", version);
  ens_print_field ("Node:", node);
  if (ens_json_number (data, "uptime_s", &uptime))
    {
      g_autofree char *text = ens_format_uptime (uptime);

      ens_print_field ("Uptime:", text);
    }
  ens_print_number_field ("Agents:", data, "agents");
  ens_print_number_field ("Connections:", data, "connections");
  ens_print_number_field ("Subscriptions:", data, "subscriptions");
  if (socket_dir != NULL)
    ens_print_field ("Socket dir:", socket_dir);
  if (state_dir != NULL)
    ens_print_field ("State dir:", state_dir);

  if (counters != NULL)
    {
      g_autoptr(GList) names = json_object_get_members (counters);

      printf ("\nCounters:\n");
      for (GList *l = names; l != NULL; l = l->next)
        {
          g_autofree char *label = g_strdup_printf ("  %s:", (const char *) l->data);
          double v;

          if (ens_json_number (counters, l->data, &v))
            printf ("%-20s%.0f\n", label, v);
        }
    }

  printf ("\nPlugins (%u):\n", plugins ? json_array_get_length (plugins) : 0);
  if (plugins != NULL && json_array_get_length (plugins) > 0)
    ens_print_plugins (plugins);
}

static void
ens_print_agents (JsonArray *agents)
{
  static const char *const headers[] = { "NAME", "KIND", "ACTIONS", "OWNER" };
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  guint n = agents ? json_array_get_length (agents) : 0;

  if (n == 0)
    {
      printf ("No agents registered.\n");
      return;
    }
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (agents, i);
      JsonObject *agent;
      JsonArray *actions;
      g_autoptr(GString) joined = g_string_new (NULL);
      g_autofree char *name = NULL, *kind = NULL, *owner = NULL;
      GStrv row;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      agent = json_node_get_object (node);
      actions = ens_json_array (agent, "actions");
      for (guint a = 0; actions != NULL && a < json_array_get_length (actions); a++)
        {
          JsonNode *action = json_array_get_element (actions, a);

          if (joined->len > 0)
            g_string_append_c (joined, ',');
          if (JSON_NODE_HOLDS_VALUE (action) && json_node_get_value_type (action) == G_TYPE_STRING)
            g_string_append (joined, json_node_get_string (action));
          else
            {
              g_autofree char *text = ens_json_to_string (action, FALSE);

              g_string_append (joined, text);
            }
        }
      name = ens_json_text (agent, "name");
      kind = ens_json_text (agent, "kind");
      owner = ens_json_text (agent, "owner");

      row = g_new0 (char *, 5);
      row[0] = ens_cell (name);
      row[1] = ens_cell (kind);
      row[2] = ens_cell (joined->str);
      row[3] = ens_cell (owner);
      g_ptr_array_add (rows, row);
    }
  ens_print_table (headers, 4, rows);
}

static void
ens_print_json (JsonNode *node, gboolean pretty)
{
  g_autofree char *text = ens_json_to_string (node, pretty);

  printf ("%s\n", text);
}

/* ------------------------------------------------------------------ */
/* Commands                                                             */

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

static gboolean
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

static void
ens_print_event (EnsCtl *ctl, const char *line, JsonNode *root)
{
  JsonObject *obj = json_node_get_object (root);
  g_autofree char *topic = NULL, *from = NULL, *seq = NULL, *data = NULL;

  if (ctl->opts->json)
    {
      /* The event exactly as the daemon sent it. */
      printf ("%s\n", line);
    }
  else
    {
      topic = ens_json_text (obj, "event");
      from = ens_json_text (obj, "from");
      seq = ens_json_text (obj, "seq");
      data = ens_json_to_string (json_object_get_member (obj, "data"), FALSE);
      printf ("[%s] %s %s: %s\n", seq ? seq : "-", topic ? topic : "-", from ? from : "-", data);
    }
  /* Subscribers are usually piped into something that wants events now. */
  fflush (stdout);
}

static int
ens_cmd_subscribe (EnsCtl *ctl, GPtrArray *patterns)
{
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonArray) topics = json_array_new ();
  g_autoptr(JsonObject) obj = json_object_new ();
  g_autoptr(JsonNode) data = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *request = NULL;
  gboolean subscribed = FALSE;
  guint timeout_ms = ctl->opts->timeout_ms;

  for (guint i = 0; i < patterns->len; i++)
    json_array_add_string_element (topics, g_ptr_array_index (patterns, i));
  json_object_set_array_member (obj, "topics", json_array_ref (topics));
  json_node_set_object (data, obj);
  request = ens_build_request (NULL, "subscribe", data, 0);

  if (!ens_install_stop_handlers (&error))
    return ens_report_error (error);
  if (!ens_ctl_connect (ctl, 0, &error) ||
      !ens_conn_write_line (ctl->conn, request, ctl->deadline, timeout_ms, &error))
    return ens_report_error (error);

  for (;;)
    {
      g_autofree char *line = NULL;
      g_autoptr(JsonNode) root = NULL;
      /* --timeout bounds only the wait for the subscribe reply. */
      gint64 deadline = subscribed ? 0 : ctl->deadline;

      switch (ens_conn_read_line (ctl->conn, deadline, timeout_ms, ens_wake_pipe[0], &line, &error))
        {
        case ENS_READ_LINE:
          break;
        case ENS_READ_STOPPED:
          return ENS_EXIT_OK;
        case ENS_READ_EOF:
          return ens_report ("DISCONNECTED",
                             subscribed ? "connection closed by the daemon"
                                        : "connection closed by the daemon before replying",
                             ENS_EXIT_ERROR);
        case ENS_READ_FAILED:
        default:
          return ens_report_error (error);
        }

      switch (ens_classify_line (ctl->conn, line, &root, &error))
        {
        case ENS_LINE_EVENT:
          ens_print_event (ctl, line, root);
          break;
        case ENS_LINE_REPLY:
          {
            g_autoptr(JsonNode) reply = ens_reply_data (ctl->conn, root, &error);

            if (reply == NULL)
              return ens_report_error (error);
            subscribed = TRUE;
            /* Tell an interactive user it is live, without polluting stdout. */
            if (!ctl->opts->json && isatty (STDERR_FILENO))
              fprintf (stderr, "Subscribed; waiting for events (Ctrl-C to stop)...\n");
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

/* Parses a JSON command-line argument; on failure prints a usage error. */
/* ------------------------------------------------------------------ */
/* Completions and sessions: a request, then events until the end       */

typedef enum
{
  ENS_FOLLOW_MORE,
  ENS_FOLLOW_DONE,
  ENS_FOLLOW_FAILED, /* the callback reported it */
} EnsFollow;

typedef EnsFollow (*EnsEventFunc) (EnsCtl *ctl, JsonObject *event, gpointer user_data);

/* Sends @requests (one per line, each answered in turn) on one connection,
 * then hands every event to @func until it says done.  The last reply's
 * data goes to *@ack. */
static int
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

static char *
ens_join_args (GPtrArray *args, guint first)
{
  GString *text = g_string_new (NULL);

  for (guint i = first; i < args->len; i++)
    {
      if (text->len)
        g_string_append_c (text, ' ');
      g_string_append (text, g_ptr_array_index (args, i));
    }
  return g_string_free (text, FALSE);
}

static EnsFollow
ens_on_completion_event (EnsCtl *ctl, JsonObject *event, gpointer user_data)
{
  g_autofree char *topic = ens_json_text (event, "event");
  JsonObject *data = ens_json_object (event, "data");

  (void) user_data;
  if (g_strcmp0 (topic, "COMPLETION_CHUNK") == 0)
    {
      g_autofree char *chunk = ens_json_text (data, "chunk");
      if (ctl->opts->stream && !ctl->opts->json && chunk)
        {
          fputs (chunk, stdout);
          fflush (stdout);
        }
      return ENS_FOLLOW_MORE;
    }
  if (g_strcmp0 (topic, "COMPLETION_RESULT") != 0)
    return ENS_FOLLOW_MORE;
  if (ens_json_object (data, "result") == NULL)
    {
      g_autofree char *reason = ens_json_text (data, "reason");
      g_autofree char *message = ens_json_text (data, "error");
      ens_report (reason ? reason : "COMPLETION_FAILED", message ? message : "the completion failed", ENS_EXIT_ERROR);
      return ENS_FOLLOW_FAILED;
    }
  if (ctl->opts->json)
    ens_print_json (json_object_get_member (data, "result"), FALSE);
  else
    {
      JsonObject *result = ens_json_object (data, "result");
      g_autofree char *response = ens_json_text (result, "response");
      g_autofree char *provider = ens_json_text (result, "provider");
      g_autofree char *model = ens_json_text (result, "model");
      double cost = 0;

      ens_json_number (result, "cost", &cost);
      if (!ctl->opts->stream)
        fputs (response ? response : "", stdout);
      printf ("\n");
      if (isatty (STDERR_FILENO))
        fprintf (stderr, "(%s, model %s, cost $%.6f)\n", provider ? provider : "?", model ? model : "?", cost);
    }
  return ENS_FOLLOW_DONE;
}

static int
ens_cmd_complete (EnsCtl *ctl, GPtrArray *args)
{
  g_autoptr(JsonObject) params = json_object_new ();
  g_autoptr(JsonNode) data = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(GPtrArray) requests = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonNode) ack = NULL;
  g_autofree char *prompt = NULL;

  if (args->len < 2)
    return ens_usage_error ("complete: expected PROMPT...");
  prompt = ens_join_args (args, 1);
  json_object_set_string_member (params, "prompt", prompt);
  json_object_set_boolean_member (params, "stream", ctl->opts->stream);
  if (ctl->opts->model)
    json_object_set_string_member (params, "model", ctl->opts->model);
  if (ctl->opts->provider)
    json_object_set_string_member (params, "provider", ctl->opts->provider);
  json_node_set_object (data, params);
  g_ptr_array_add (requests, ens_build_request (NULL, "complete", data, 0));

  /* One request on this connection: every completion event on it is ours. */
  return ens_follow (ctl, requests, ens_on_completion_event, NULL, &ack);
}

/* session exec: watch the session's events, then run the task. */
static EnsFollow
ens_on_session_event (EnsCtl *ctl, JsonObject *event, gpointer user_data)
{
  JsonObject *data = ens_json_object (event, "data");
  g_autofree char *type = ens_json_text (data, "type");

  (void) user_data;
  if (ctl->opts->json)
    {
      ens_print_json (json_object_get_member (event, "data"), FALSE);
      fflush (stdout);
    }
  if (g_strcmp0 (type, "stream_chunk") == 0 && !ctl->opts->json)
    {
      g_autofree char *chunk = ens_json_text (data, "chunk");
      fputs (chunk ? chunk : "", stdout);
      fflush (stdout);
    }
  else if (g_strcmp0 (type, "task_completed") == 0)
    {
      if (!ctl->opts->json)
        printf ("\n");
      return ENS_FOLLOW_DONE;
    }
  else if (g_strcmp0 (type, "task_failed") == 0)
    {
      g_autofree char *code = ens_json_text (data, "code");
      g_autofree char *message = ens_json_text (data, "error");
      ens_report (code ? code : "TASK_FAILED", message ? message : "the task failed", ENS_EXIT_ERROR);
      return ENS_FOLLOW_FAILED;
    }
  return ENS_FOLLOW_MORE;
}

static int
ens_cmd_session_exec (EnsCtl *ctl, const char *session_id, const char *task)
{
  g_autoptr(GPtrArray) requests = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonObject) sub = json_object_new ();
  g_autoptr(JsonObject) exec = json_object_new ();
  g_autoptr(JsonNode) sub_node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonNode) exec_node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonArray) topics = json_array_new ();
  g_autofree char *pattern = g_strdup_printf ("session.%s.*", session_id);

  json_array_add_string_element (topics, pattern);
  json_object_set_array_member (sub, "topics", json_array_ref (topics));
  json_node_set_object (sub_node, sub);
  json_object_set_string_member (exec, "session_id", session_id);
  json_object_set_string_member (exec, "task", task);
  json_node_set_object (exec_node, exec);
  g_ptr_array_add (requests, ens_build_request (NULL, "subscribe", sub_node, 0));
  g_ptr_array_add (requests, ens_build_request (NULL, "sessions.execute", exec_node, 0));
  return ens_follow (ctl, requests, ens_on_session_event, NULL, NULL);
}

static void
ens_print_fields (JsonObject *obj, const char *const *members)
{
  for (guint i = 0; members[i]; i++)
    {
      JsonNode *n = json_object_get_member (obj, members[i]);
      g_autofree char *text = NULL;
      if (n == NULL)
        continue;
      text = JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
               ? g_strdup (json_node_get_string (n)) : ens_json_to_string (n, FALSE);
      printf ("%-16s%s\n", members[i], text);
    }
}

static JsonNode *
ens_json_arg (const char *what, const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = ens_json_parse (text, &error);

  if (node == NULL)
    ens_usage_error ("invalid JSON for %s '%s': %s", what, text, error->message);
  return node;
}

static int
ens_check_args (GPtrArray *args, guint first, guint min, guint max, const char *synopsis)
{
  guint n = args->len - first;

  if (n < min || n > max)
    return ens_usage_error ("%s: expected %s", (const char *) g_ptr_array_index (args, 0),
                            synopsis);
  return ENS_EXIT_OK;
}

#define ENS_ARG(i) ((const char *) g_ptr_array_index (args, (i)))

static int
ens_run (EnsCtl *ctl)
{
  EnsCtlOptions *opts = ctl->opts;
  GPtrArray *args = opts->args;
  g_autoptr(EnsCtlError) error = NULL;
  g_autoptr(JsonNode) reply = NULL;
  g_autoptr(JsonNode) data = NULL;
  g_autoptr(JsonObject) params = json_object_new ();
  const char *cmd;
  JsonObject *robj;

  if (args->len == 0)
    return ens_usage_error ("no command given (see ensemblectl --help)");
  cmd = ENS_ARG (0);

  if (opts->to != NULL && strcmp (cmd, "publish") != 0)
    return ens_usage_error ("--to is only valid with publish");

  data = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (data, params);

  if (strcmp (cmd, "health") == 0 || strcmp (cmd, "plugins") == 0 ||
      strcmp (cmd, "agents") == 0 || strcmp (cmd, "ping") == 0 ||
      strcmp (cmd, "shutdown") == 0)
    {
      const char *action = strcmp (cmd, "plugins") == 0  ? "plugins.list"
                           : strcmp (cmd, "agents") == 0 ? "agents.list"
                                                         : cmd;
      gint64 start;

      if (ens_check_args (args, 1, 0, 0, "no arguments") != ENS_EXIT_OK)
        return ENS_EXIT_USAGE;
      start = g_get_monotonic_time ();
      reply = ens_call (ctl, NULL, action, data, 0, &error);
      if (reply == NULL)
        return ens_report_error (error);
      if (opts->json)
        {
          ens_print_json (reply, FALSE);
          return ENS_EXIT_OK;
        }

      robj = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
      if (strcmp (cmd, "health") == 0)
        ens_print_health (robj);
      else if (strcmp (cmd, "plugins") == 0)
        ens_print_plugins (ens_json_array (robj, "plugins"));
      else if (strcmp (cmd, "agents") == 0)
        ens_print_agents (ens_json_array (robj, "agents"));
      else if (strcmp (cmd, "ping") == 0)
        printf ("pong from %s (%.2f ms)\n", opts->socket_path,
                (double) (g_get_monotonic_time () - start) / 1000.0);
      else
        {
          g_autofree char *status = ens_json_text (robj, "status");

          printf ("Daemon %s.\n", g_strcmp0 (status, "shutting_down") == 0
                                    ? "is shutting down" : (status ? status : "acknowledged"));
        }
      return ENS_EXIT_OK;
    }

  if (strcmp (cmd, "publish") == 0)
    {
      g_autoptr(JsonNode) payload = NULL;

      if (ens_check_args (args, 1, 1, 2, "TOPIC [JSON]") != ENS_EXIT_OK)
        return ENS_EXIT_USAGE;
      if (args->len > 2 && (payload = ens_json_arg ("publish data", ENS_ARG (2))) == NULL)
        return ENS_EXIT_USAGE;
      json_object_set_string_member (params, "topic", ENS_ARG (1));
      json_object_set_member (params, "data",
                              payload ? json_node_ref (payload) : json_node_new (JSON_NODE_NULL));
      if (opts->to != NULL)
        json_object_set_string_member (params, "to", opts->to);

      reply = ens_call (ctl, NULL, "publish", data, 0, &error);
      if (reply == NULL)
        return ens_report_error (error);
      if (opts->json)
        ens_print_json (reply, FALSE);
      else
        {
          robj = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
          g_autofree char *seq = ens_json_text (robj, "seq");
          g_autofree char *delivered = ens_json_text (robj, "delivered");

          printf ("Published '%s' (seq %s, delivered to %s)\n", ENS_ARG (1),
                  seq ? seq : "-", delivered ? delivered : "-");
        }
      return ENS_EXIT_OK;
    }

  if (strcmp (cmd, "subscribe") == 0)
    {
      g_autoptr(GPtrArray) patterns = g_ptr_array_new ();

      if (args->len < 2)
        return ens_usage_error ("subscribe: expected PATTERN...");
      for (guint i = 1; i < args->len; i++)
        g_ptr_array_add (patterns, g_ptr_array_index (args, i));
      return ens_cmd_subscribe (ctl, patterns);
    }

  if (strcmp (cmd, "request") == 0)
    {
      g_autoptr(JsonNode) payload = NULL;
      guint agent_timeout = 0;

      if (ens_check_args (args, 1, 2, 3, "AGENT ACTION [JSON]") != ENS_EXIT_OK)
        return ENS_EXIT_USAGE;
      if (args->len > 3 && (payload = ens_json_arg ("request data", ENS_ARG (3))) == NULL)
        return ENS_EXIT_USAGE;
      /* An explicit --timeout also becomes the daemon-side deadline. */
      if (opts->timeout_set && opts->timeout_ms > 0)
        agent_timeout = MIN (opts->timeout_ms, ENS_CTL_MAX_AGENT_TIMEOUT_MS);

      reply = ens_call (ctl, ENS_ARG (1), ENS_ARG (2), payload ? payload : data, agent_timeout,
                        &error);
      if (reply == NULL)
        return ens_report_error (error);
      ens_print_json (reply, !opts->json);
      return ENS_EXIT_OK;
    }

  if (strcmp (cmd, "kv") == 0)
    {
      const char *sub = args->len > 1 ? ENS_ARG (1) : NULL;

      if (sub == NULL)
        return ens_usage_error ("kv: expected get, set, del or list");

      if (strcmp (sub, "get") == 0)
        {
          if (ens_check_args (args, 2, 2, 2, "AGENT KEY") != ENS_EXIT_OK)
            return ENS_EXIT_USAGE;
          json_object_set_string_member (params, "agent", ENS_ARG (2));
          json_object_set_string_member (params, "key", ENS_ARG (3));
          reply = ens_call (ctl, NULL, "kv.get", data, 0, &error);
          if (reply == NULL)
            return ens_report_error (error);
          robj = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
          if (opts->json)
            ens_print_json (reply, FALSE);
          /* A missing key is a failure for scripts in either mode. */
          if (!ens_json_bool (robj, "found"))
            {
              g_autofree char *msg = g_strdup_printf ("no key '%s' for agent '%s'", ENS_ARG (3),
                                                      ENS_ARG (2));

              return ens_report ("NOT_FOUND", msg, ENS_EXIT_ERROR);
            }
          if (!opts->json)
            ens_print_json (json_object_get_member (robj, "value"), TRUE);
          return ENS_EXIT_OK;
        }

      if (strcmp (sub, "set") == 0)
        {
          g_autoptr(GError) parse_error = NULL;
          g_autoptr(JsonNode) value = NULL;

          if (ens_check_args (args, 2, 3, 3, "AGENT KEY VALUE") != ENS_EXIT_OK)
            return ENS_EXIT_USAGE;
          /* `kv set a k hello` should just work: non-JSON is a string. */
          value = ens_json_parse (ENS_ARG (4), &parse_error);
          if (value == NULL)
            {
              value = json_node_new (JSON_NODE_VALUE);
              json_node_set_string (value, ENS_ARG (4));
            }
          json_object_set_string_member (params, "agent", ENS_ARG (2));
          json_object_set_string_member (params, "key", ENS_ARG (3));
          json_object_set_member (params, "value", json_node_ref (value));
          reply = ens_call (ctl, NULL, "kv.set", data, 0, &error);
          if (reply == NULL)
            return ens_report_error (error);
          if (opts->json)
            ens_print_json (reply, FALSE);
          else
            printf ("Stored key '%s' for agent '%s'\n", ENS_ARG (3), ENS_ARG (2));
          return ENS_EXIT_OK;
        }

      if (strcmp (sub, "del") == 0 || strcmp (sub, "delete") == 0)
        {
          if (ens_check_args (args, 2, 2, 2, "AGENT KEY") != ENS_EXIT_OK)
            return ENS_EXIT_USAGE;
          json_object_set_string_member (params, "agent", ENS_ARG (2));
          json_object_set_string_member (params, "key", ENS_ARG (3));
          reply = ens_call (ctl, NULL, "kv.delete", data, 0, &error);
          if (reply == NULL)
            return ens_report_error (error);
          if (opts->json)
            ens_print_json (reply, FALSE);
          else
            {
              robj = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
              printf (ens_json_bool (robj, "deleted") ? "Deleted key '%s' for agent '%s'\n"
                                                      : "No key '%s' for agent '%s'\n",
                      ENS_ARG (3), ENS_ARG (2));
            }
          return ENS_EXIT_OK;
        }

      if (strcmp (sub, "list") == 0)
        {
          JsonArray *keys;

          if (ens_check_args (args, 2, 1, 2, "AGENT [PREFIX]") != ENS_EXIT_OK)
            return ENS_EXIT_USAGE;
          json_object_set_string_member (params, "agent", ENS_ARG (2));
          if (args->len > 3)
            json_object_set_string_member (params, "prefix", ENS_ARG (3));
          reply = ens_call (ctl, NULL, "kv.list", data, 0, &error);
          if (reply == NULL)
            return ens_report_error (error);
          if (opts->json)
            {
              ens_print_json (reply, FALSE);
              return ENS_EXIT_OK;
            }
          robj = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
          keys = ens_json_array (robj, "keys");
          for (guint i = 0; keys != NULL && i < json_array_get_length (keys); i++)
            {
              JsonNode *key = json_array_get_element (keys, i);

              if (JSON_NODE_HOLDS_VALUE (key) && json_node_get_value_type (key) == G_TYPE_STRING)
                printf ("%s\n", json_node_get_string (key));
              else
                ens_print_json (key, FALSE);
            }
          return ENS_EXIT_OK;
        }

      return ens_usage_error ("kv: unknown subcommand '%s' (expected get, set, del or list)", sub);
    }

  if (strcmp (cmd, "complete") == 0)
    return ens_cmd_complete (ctl, args);

  if (strcmp (cmd, "route") == 0 || strcmp (cmd, "budget") == 0 || strcmp (cmd, "providers") == 0 ||
      strcmp (cmd, "sessions") == 0)
    {
      g_autoptr(JsonNode) payload = NULL;
      const char *action = strcmp (cmd, "providers") == 0  ? "providers.list"
                           : strcmp (cmd, "sessions") == 0 ? "sessions.list"
                                                           : cmd;

      if (ens_check_args (args, 1, 0, strcmp (cmd, "route") == 0 ? 1 : 0, "[JSON] for route, else nothing") != ENS_EXIT_OK)
        return ENS_EXIT_USAGE;
      if (args->len > 1 && (payload = ens_json_arg ("route request", ENS_ARG (1))) == NULL)
        return ENS_EXIT_USAGE;
      reply = ens_call (ctl, NULL, action, payload ? payload : data, 0, &error);
      if (reply == NULL)
        return ens_report_error (error);
      robj = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
      if (opts->json || robj == NULL)
        ens_print_json (reply, FALSE);
      else if (strcmp (cmd, "route") == 0)
        ens_print_fields (robj, (const char *const[]){ "provider", "confidence", "estimated_cost", "policy",
                                                       "reasoning", "ranking", NULL });
      else if (strcmp (cmd, "budget") == 0)
        ens_print_fields (robj, (const char *const[]){ "day", "daily_budget", "current_spend", "reserved",
                                                       "remaining", "utilization_pct", NULL });
      else
        {
          static const char *const provider_cols[] = { "name", "provider", "quality", "latency_ms", "calls", "failures", "cost" };
          static const char *const session_cols[] = { "session_id", "status", "session_type", "tasks_total", "created_at" };
          gboolean providers = strcmp (cmd, "providers") == 0;
          const char *const *cols = providers ? provider_cols : session_cols;
          guint n = providers ? G_N_ELEMENTS (provider_cols) : G_N_ELEMENTS (session_cols);
          JsonArray *list = ens_json_array (robj, providers ? "providers" : "sessions");
          g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);

          for (guint i = 0; list && i < json_array_get_length (list); i++)
            g_ptr_array_add (rows, ens_row_from (json_array_get_object_element (list, i), cols, n));
          ens_print_table (cols, n, rows);
        }
      return ENS_EXIT_OK;
    }

  if (strcmp (cmd, "session") == 0)
    {
      const char *sub = args->len > 1 ? ENS_ARG (1) : "";
      g_autoptr(JsonNode) payload = NULL;
      g_autofree char *task = NULL;

      if (strcmp (sub, "exec") == 0)
        {
          if (args->len < 4)
            return ens_usage_error ("session exec: expected ID TASK...");
          task = ens_join_args (args, 3);
          return ens_cmd_session_exec (ctl, ENS_ARG (2), task);
        }
      if (strcmp (sub, "spawn") == 0)
        {
          if (ens_check_args (args, 2, 0, 1, "[JSON]") != ENS_EXIT_OK)
            return ENS_EXIT_USAGE;
          if (args->len > 2 && (payload = ens_json_arg ("session", ENS_ARG (2))) == NULL)
            return ENS_EXIT_USAGE;
          reply = ens_call (ctl, NULL, "sessions.spawn", payload ? payload : data, 0, &error);
        }
      else if (strcmp (sub, "status") == 0 || strcmp (sub, "stop") == 0)
        {
          if (ens_check_args (args, 2, 1, 1, "ID") != ENS_EXIT_OK)
            return ENS_EXIT_USAGE;
          json_object_set_string_member (params, "session_id", ENS_ARG (2));
          reply = ens_call (ctl, NULL, strcmp (sub, "stop") == 0 ? "sessions.stop" : "sessions.status", data, 0,
                            &error);
        }
      else
        return ens_usage_error ("session: expected spawn, exec, status or stop");
      if (reply == NULL)
        return ens_report_error (error);
      robj = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
      if (opts->json || robj == NULL || strcmp (sub, "status") == 0)
        ens_print_json (reply, !opts->json);
      else
        ens_print_fields (robj, (const char *const[]){ "session_id", "status", "task_id", "request_id", "watch", NULL });
      return ENS_EXIT_OK;
    }

  if (strcmp (cmd, "help") == 0)
    {
      ens_print_help ();
      return ENS_EXIT_OK;
    }

  return ens_usage_error ("unknown command '%s' (see ensemblectl --help)", cmd);
}

#undef ENS_ARG

int
main (int argc, char **argv)
{
  g_auto(EnsCtlOptions) opts = { 0 };
  EnsCtl ctl = { 0 };
  int status;

  setlocale (LC_ALL, "");

  switch (ens_parse_args (argc, argv, &opts))
    {
    case ENS_PARSE_HELP:
      ens_print_help ();
      return ENS_EXIT_OK;
    case ENS_PARSE_VERSION:
      printf ("ensemblectl " ENS_CTL_VERSION "\n");
      return ENS_EXIT_OK;
    case ENS_PARSE_USAGE:
      return ENS_EXIT_USAGE;
    case ENS_PARSE_OK:
    default:
      break;
    }

  ctl.opts = &opts;
  status = ens_run (&ctl);
  g_clear_pointer (&ctl.conn, ens_conn_free);

  /* Output may be buffered into a pipe; a failed flush is a failure. */
  if (fflush (stdout) != 0 && status == ENS_EXIT_OK)
    {
      int saved = errno;

      return ens_report ("IO_ERROR", g_strerror (saved), ENS_EXIT_ERROR);
    }
  return status;
}
