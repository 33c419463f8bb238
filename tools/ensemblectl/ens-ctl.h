/* ens-ctl.h — what the parts of ensemblectl share (internal).
 *
 *   ens-ctl-main.c         the command line, dispatch, main()
 *   ens-ctl-table.c        the command table and the options; help and usage from them
 *   ens-ctl-json.c         JSON: parsing, printing, reading members
 *   ens-ctl-output.c       what the user sees: error lines, tables, fields
 *   ens-ctl-conn.c         the connection: one request and its reply, or a
 *                          stream of events until interrupted
 *   ens-ctl-cmd-admin.c    health, plugins, ping, shutdown
 *   ens-ctl-cmd-events.c   publish, subscribe
 *   ens-ctl-cmd-agents.c   agents, request
 *   ens-ctl-cmd-kv.c       kv get, set, del, list
 *   ens-ctl-cmd-llm.c      complete, route, providers, budget
 *   ens-ctl-cmd-sessions.c sessions, session spawn, exec, status, stop
 *   ens-ctl-cmd-mcp.c      mcp: stdio bridged to the daemon's MCP socket
 *   ens-ctl-cmd-top.c      top: a live view of the daemon
 *   ens-ctl-cmd-chat.c     chat and pipe: conversations and agent pipelines
 *
 * ensemblectl speaks the native protocol: newline-delimited JSON over a
 * Unix stream socket.  It is deliberately self-contained (no code shared
 * with the daemon) so that it keeps working against older or newer daemons
 * and can be built on its own.  One connection per invocation.
 *
 * Ownership: functions take their arguments (transfer none) and return
 * (transfer full) unless they say otherwise. */
#pragma once

/* -std=c11 hides POSIX; we need sigaction, MSG_NOSIGNAL and friends.
 * (The project build already passes -D_GNU_SOURCE, which covers it.) */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <glib.h>
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

/* ------------------------------------------------------------------ */
/* Errors (ens-ctl-output.c)                                            */

/* An error as shown to the user: a protocol-style CODE plus a message.
 * Remote errors carry the daemon's code verbatim, so GError's integer codes
 * would not fit. */
typedef struct
{
  char *code;
  char *message;
} EnsCtlError;

void ens_ctl_error_free (EnsCtlError *error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsCtlError, ens_ctl_error_free)

void ens_ctl_set_error (EnsCtlError **error, const char *code, const char *format, ...) G_GNUC_PRINTF (3, 4);
/* Prints the single line every failure ends with ("ensemblectl: CODE:
 * message" on stderr, after flushing stdout); returns @status. */
int ens_report (const char *code, const char *message, int status);
int ens_report_error (const EnsCtlError *error);
/* A USAGE error: exit status 2. */
int ens_usage_error (const char *format, ...) G_GNUC_PRINTF (1, 2);

/* ------------------------------------------------------------------ */
/* JSON (ens-ctl-json.c)                                                */

JsonNode *ens_json_parse (const char *text, GError **error);
/* Compact output never contains a raw newline, so it is one protocol line. */
char *ens_json_to_string (JsonNode *node, gboolean pretty);
/* A member as display text: strings as-is, other JSON compactly, NULL
 * when absent or null. */
char *ens_json_text (JsonObject *obj, const char *name);
gboolean ens_json_number (JsonObject *obj, const char *name, double *out);
/* (transfer none) the member if it is of that type, else NULL / FALSE */
JsonObject *ens_json_object (JsonObject *obj, const char *name);
JsonArray *ens_json_array (JsonObject *obj, const char *name);
gboolean ens_json_bool (JsonObject *obj, const char *name);
/* (transfer none) the object / string @node holds, or NULL */
JsonObject *ens_json_node_object (JsonNode *node);
const char *ens_json_node_string (JsonNode *node);
/* @node as display text: a string as-is, other JSON compactly. */
char *ens_json_node_text (JsonNode *node);
/* A JSON command-line argument; NULL after printing a usage error. */
JsonNode *ens_json_arg (const char *what, const char *text);

/* ------------------------------------------------------------------ */
/* Output (ens-ctl-output.c)                                            */

/* A number for people: integers whole, others to about three significant
 * digits (0.000123, 1.23, 12.35, 1235); --json keeps full precision. */
char *ens_human_number (double v);
/* @node for people: a string as-is, a number rounded, other JSON compactly
 * with its numbers rounded. */
char *ens_display_text (JsonNode *node);
/* Compact JSON with every floating-point number rounded for people. */
char *ens_json_to_human_string (JsonNode *node);

/* "3d 4h 5m 6s", "5m 6s", "6s" */
char *ens_format_uptime (double seconds);

/* @text made fit for one table cell or one line ("-" when empty). */
char *ens_cell (const char *text);
/* @rows holds GStrv rows of @n_cols cells each. */
void ens_print_table (const char *const *headers, guint n_cols, GPtrArray *rows);
/* (transfer full) a row of cells from @obj's @members */
GStrv ens_row_from (JsonObject *obj, const char *const *members, guint n);
/* A table of the objects in @list, one column per member in @cols. */
void ens_print_object_table (JsonArray *list, const char *const *cols, guint n_cols);
/* "label           value" */
void ens_print_field (const char *label, const char *value);
/* Each present member of @obj (NULL-terminated @members) as a field. */
void ens_print_fields (JsonObject *obj, const char *const *members);
void ens_print_json (JsonNode *node, gboolean pretty);

/* ------------------------------------------------------------------ */
/* Options, commands, the table (ens-ctl-main.c, ens-ctl-table.c)       */

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
  guint interval_ms;   /* top --interval */
  guint iterations;    /* top --iterations (--once: 1); 0 = until interrupted */
  gboolean top_set;    /* one of those was given */
  char *tools;         /* session exec --tools A.B,C.D */
  GPtrArray *args;     /* positional (char *, owned); [0] is the command */
} EnsCtlOptions;

typedef struct _EnsConn EnsConn;

typedef struct
{
  EnsCtlOptions *opts;
  EnsConn *conn;
  gint64 deadline;     /* monotonic µs, 0 = none */
} EnsCtl;

typedef struct _EnsCtlCommand EnsCtlCommand;

/* Runs @cmd with its operands @args (after the command words; their count
 * already checked against the table).  Returns the exit status. */
typedef int (*EnsCtlHandler) (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

/* What a command takes beyond the options every command takes; an option
 * given to a command that does not take it is a usage error. */
typedef enum
{
  ENS_CTL_OPT_TO = 1 << 0,     /* --to */
  ENS_CTL_OPT_MODEL = 1 << 1,  /* --model, --provider */
  ENS_CTL_OPT_STREAM = 1 << 2, /* --stream */
  ENS_CTL_OPT_TOP = 1 << 3,    /* --interval, --iterations, --once */
  ENS_CTL_OPT_TOOLS = 1 << 4,  /* --tools */
} EnsCtlFlags;

#define ENS_CTL_DEFAULT_INTERVAL_MS 1000

#define ENS_CTL_ANY G_MAXUINT /* as max_args: any number */

struct _EnsCtlCommand
{
  const char *name;     /* "kv" */
  const char *sub;      /* "get", or NULL */
  const char *alias;    /* another name for @sub ("delete"), or NULL */
  const char *group;    /* the heading it is listed under */
  const char *synopsis; /* its operands, "" for none */
  guint min_args, max_args;
  const char *help;     /* one line */
  const char *details;  /* more, for `COMMAND --help`, or NULL */
  EnsCtlHandler handler;
  const char *action;   /* the daemon action it sends (or its main one) */
  guint flags;          /* EnsCtlFlags */
};

/* An option: "--socket" "PATH"; @help may have more lines. */
typedef struct
{
  const char *name;
  const char *arg;   /* NULL: a switch */
  const char *help;
  guint only_with;   /* 0: every command takes it; else the EnsCtlFlags of those that do */
} EnsCtlOption;

/* ens-ctl-table.c */
const EnsCtlOption *ens_ctl_options (guint *n);
/* Finds the command @args (the positional arguments) names; *@n_words:
 * how many of them name it.  A usage error (reported) when none does. */
int ens_ctl_lookup (GPtrArray *args, const EnsCtlCommand **out, guint *n_words);
/* "kv get" */
char *ens_ctl_command_words (const EnsCtlCommand *cmd);
/* "publish": the commands that take an option of @flags, for errors. */
char *ens_ctl_commands_taking (guint flags);
void ens_ctl_print_help (void);
/* `COMMAND [SUBCOMMAND] --help`; a usage error for an unknown command. */
int ens_ctl_print_command_help (const char *name, const char *sub);

/* ens-ctl-main.c */
char *ens_ctl_default_socket_path (void);
/* @args from @first on, joined by spaces. */
char *ens_join_args (GPtrArray *args, guint first);

/* ens-ctl-output.c: shows a reply: with --json, or when it is no object, as compact JSON;
 * else its @fields (NULL-terminated), or its array @list_member as a table
 * of @cols. */
void ens_print_reply (EnsCtl *ctl, JsonNode *reply, const char *const *fields, const char *list_member,
                      const char *const *cols, guint n_cols);

/* ------------------------------------------------------------------ */
/* The connection (ens-ctl-conn.c)                                      */

void ens_conn_free (EnsConn *conn);

/* The request line for @action (agent: NULL for the daemon's own). */
char *ens_build_request (const char *agent, const char *action, JsonNode *data, guint agent_timeout_ms);

/* Opens the connection; the deadline is --timeout (plus @extra_ms) from now. */
gboolean ens_ctl_connect (EnsCtl *ctl, guint extra_ms, EnsCtlError **error);
gboolean ens_conn_write_line (EnsConn *conn, const char *line, gint64 deadline, guint timeout_ms,
                              EnsCtlError **error);

typedef enum
{
  ENS_READ_LINE,
  ENS_READ_EOF,
  ENS_READ_STOPPED,  /* a signal arrived on @wake_fd */
  ENS_READ_FAILED,   /* @error set (including TIMEOUT) */
} EnsReadResult;

/* The next non-empty line (without "\n" or "\r\n") in @line_out; waits
 * until @deadline (monotonic µs, 0 = never), also watching @wake_fd (-1 =
 * none). */
EnsReadResult ens_conn_read_line (EnsConn *conn, gint64 deadline, guint timeout_ms, int wake_fd, char **line_out,
                                  EnsCtlError **error);

typedef enum
{
  ENS_LINE_OTHER,   /* not addressed to us */
  ENS_LINE_EVENT,
  ENS_LINE_REPLY,
  ENS_LINE_BAD,     /* @error set */
} EnsLineKind;

/* Classifies one received line; *@root_out holds it parsed. */
EnsLineKind ens_classify_line (EnsConn *conn, const char *line, JsonNode **root_out, EnsCtlError **error);
/* A reply's data (a null node if absent), or NULL with @error set from the
 * daemon's error. */
JsonNode *ens_reply_data (EnsConn *conn, JsonNode *reply, EnsCtlError **error);

/* Connects, sends one request and waits for its reply; returns the reply
 * data or NULL with @error set. */
JsonNode *ens_call (EnsCtl *ctl, const char *agent, const char *action, JsonNode *data, guint agent_timeout_ms,
                    EnsCtlError **error);

/* ens_call() of one of the daemon's own actions; @data NULL means {}. */
JsonNode *ens_call_action (EnsCtl *ctl, const char *action, JsonNode *data, EnsCtlError **error);

/* One request and its reply on the connection kept in @ctl (opened on
 * first use): for commands that ask again and again.  Events arriving
 * meanwhile are passed over. */
JsonNode *ens_call_again (EnsCtl *ctl, const char *agent, const char *action, JsonNode *data, EnsCtlError **error);

/* Waits up to @ms milliseconds; FALSE when a signal stopped the wait
 * (ens_install_stop_handlers() first). */
gboolean ens_ctl_sleep (guint ms);

/* SIGINT and SIGTERM then wake ens_stop_fd() instead of killing us. */
gboolean ens_install_stop_handlers (EnsCtlError **error);
int ens_stop_fd (void);

typedef enum
{
  ENS_FOLLOW_MORE,
  ENS_FOLLOW_DONE,
  ENS_FOLLOW_FAILED, /* the callback reported it */
} EnsFollow;

typedef EnsFollow (*EnsEventFunc) (EnsCtl *ctl, JsonObject *event, gpointer user_data);

/* Sends @requests (lines, each answered in turn) on one connection, then
 * hands every event to @func until it says done, or a signal stops it
 * (exit 0).  The last reply's data goes to *@ack when given.  Returns the
 * exit status, any failure reported. */
int ens_follow (EnsCtl *ctl, GPtrArray *requests, EnsEventFunc func, gpointer user_data, JsonNode **ack);

/* ------------------------------------------------------------------ */
/* Command handlers (ens-ctl-cmd-*.c)                                   */

int ens_cmd_health (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_plugins (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_ping (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_shutdown (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

int ens_cmd_publish (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_subscribe (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

int ens_cmd_agents (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_request (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

int ens_cmd_kv_get (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_kv_set (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_kv_del (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_kv_list (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

int ens_cmd_complete (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_route (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_providers (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_budget (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

int ens_cmd_sessions (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_session_spawn (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_session_exec (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
/* session status and session stop: cmd->action */
int ens_cmd_session_id (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

int ens_cmd_mcp (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

int ens_cmd_top (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

int ens_cmd_chat (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);
int ens_cmd_pipe (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

#define ENS_ARG(args, i) ((const char *) g_ptr_array_index ((args), (i)))
