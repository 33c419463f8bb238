/* ensemblectl: the command table — every command's name, group, operands,
 * help and handler, and every option; `ensemblectl --help`, `COMMAND
 * --help`, `help [COMMAND]` and the usage errors are all made from it. */
#include "ens-ctl.h"

#include <stdio.h>
#include <string.h>

#define ENS_CTL_HELP_COLUMN 29

/* Groups, in the order help lists them. */
#define GROUP_DAEMON "Daemon"
#define GROUP_EVENTS "Events"
#define GROUP_AGENTS "Agents"
#define GROUP_STATE "Agent state"
#define GROUP_LLM "Completions"
#define GROUP_SESSIONS "Sessions"
#define GROUP_MCP "MCP"
#define GROUP_CHAT "Chat and pipelines"
#define GROUP_HELP "Help"

static int ens_cmd_help (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args);

static const EnsCtlCommand commands[] = {
  { "health", NULL, NULL, GROUP_DAEMON, "", 0, 0, "Show daemon status, counters and plugins",
    "Exits with status 1 (error UNHEALTHY) when the daemon reports any status\n"
    "but \"healthy\", after printing what it reported.",
    ens_cmd_health, "health", 0 },
  { "plugins", NULL, NULL, GROUP_DAEMON, "", 0, 0, "List loaded plugins", NULL, ens_cmd_plugins, "plugins.list", 0 },
  { "ping", NULL, NULL, GROUP_DAEMON, "", 0, 0, "Check that the daemon answers", NULL, ens_cmd_ping, "ping", 0 },
  { "shutdown", NULL, NULL, GROUP_DAEMON, "", 0, 0, "Ask the daemon to exit (admin only)", NULL, ens_cmd_shutdown,
    "shutdown", 0 },
  { "top", NULL, NULL, GROUP_DAEMON, "", 0, 0, "Live view of connections, rates, completions and backends",
    "Refreshes every --interval (1000 ms) until interrupted, or --iterations\n"
    "times (--once: one view).  Rates are per second over the last interval.\n"
    "On a terminal the screen is redrawn; otherwise the views follow each\n"
    "other, separated by a blank line.  With --json, one object per view,\n"
    "numbers in full precision.",
    ens_cmd_top, "health", ENS_CTL_OPT_TOP },

  { "publish", NULL, NULL, GROUP_EVENTS, "TOPIC [DATA]", 1, 2, "Publish an event (data defaults to null)",
    "DATA is parsed as JSON; anything that is not valid JSON is published as a\n"
    "string (ensemblectl publish chat.room hello).  With --to CLIENT only that\n"
    "client receives it.",
    ens_cmd_publish, "publish", ENS_CTL_OPT_TO },
  { "subscribe", NULL, NULL, GROUP_EVENTS, "PATTERN...", 1, ENS_CTL_ANY, "Print matching events until interrupted",
    "Patterns are globs (* ? [...]).  With --json, one event object per line,\n"
    "exactly as the daemon sent it.  --timeout bounds only the wait for the\n"
    "subscription to be confirmed.",
    ens_cmd_subscribe, "subscribe", 0 },

  { "agents", NULL, NULL, GROUP_AGENTS, "", 0, 0, "List registered agents", NULL, ens_cmd_agents, "agents.list", 0 },
  { "request", NULL, NULL, GROUP_AGENTS, "AGENT ACTION [JSON]", 2, 3, "Send a request to an agent, print the reply",
    "Prints the reply data (JSON defaults to {}).  An explicit --timeout is also\n"
    "passed to the daemon as the agent's deadline.",
    ens_cmd_request, NULL, 0 },

  { "kv", "get", NULL, GROUP_STATE, "AGENT KEY", 2, 2, "Print a stored value (exit 1 if missing)", NULL,
    ens_cmd_kv_get, "kv.get", 0 },
  { "kv", "set", NULL, GROUP_STATE, "AGENT KEY VALUE", 3, 3, "Store VALUE under KEY for AGENT",
    "VALUE is parsed as JSON; anything that is not valid JSON is stored as a\n"
    "string.",
    ens_cmd_kv_set, "kv.set", 0 },
  { "kv", "del", "delete", GROUP_STATE, "AGENT KEY", 2, 2, "Delete a stored value",
    "Deleting a key that does not exist is not an error.  Also: kv delete.", ens_cmd_kv_del, "kv.delete", 0 },
  { "kv", "list", NULL, GROUP_STATE, "AGENT [PREFIX]", 1, 2, "List stored keys", NULL, ens_cmd_kv_list, "kv.list", 0 },

  { "complete", NULL, NULL, GROUP_LLM, "PROMPT...", 1, ENS_CTL_ANY, "Ask for a completion; prints the answer",
    "The words of PROMPT are joined by spaces.  --stream prints tokens as they\n"
    "arrive; --model and --provider choose the model or the backend.  With\n"
    "--json, the result object; with --json --stream, one object per chunk as\n"
    "it arrives, then the result object.",
    ens_cmd_complete, "complete", ENS_CTL_OPT_MODEL | ENS_CTL_OPT_STREAM },
  { "route", NULL, NULL, GROUP_LLM, "[JSON]", 0, 1, "Show which provider the router would pick",
    "For example: ensemblectl route '{\"token_count\":2000,\"task_type\":\"coding\"}'", ens_cmd_route, "route", 0 },
  { "providers", NULL, NULL, GROUP_LLM, "", 0, 0, "List provider backends and their statistics", NULL,
    ens_cmd_providers, "providers.list", 0 },
  { "budget", NULL, NULL, GROUP_LLM, "", 0, 0, "Show today's budget and spend", NULL, ens_cmd_budget, "budget", 0 },

  { "sessions", NULL, NULL, GROUP_SESSIONS, "", 0, 0, "List sessions", NULL, ens_cmd_sessions, "sessions.list", 0 },
  { "session", "spawn", NULL, GROUP_SESSIONS, "[JSON]", 0, 1, "Start a session",
    "JSON: {task?, model?, provider?, session_type?, orchestrator_id?, system?}", ens_cmd_session_spawn,
    "sessions.spawn", 0 },
  { "session", "exec", NULL, GROUP_SESSIONS, "ID TASK...", 2, ENS_CTL_ANY, "Run a task in a session, streaming its output",
    "The words of TASK are joined by spaces.  --tools AGENT.ACTION,... runs the\n"
    "tool loop with those agents' actions (MCP servers' tools included); each\n"
    "call and its answer is shown as it happens (\"-> tool\", \"<- tool\").",
    ens_cmd_session_exec, "sessions.execute", ENS_CTL_OPT_TOOLS },
  { "session", "status", NULL, GROUP_SESSIONS, "ID", 1, 1, "Show a session and its conversation", NULL,
    ens_cmd_session_id, "sessions.status", 0 },
  { "session", "stop", NULL, GROUP_SESSIONS, "ID", 1, 1, "Stop a session", NULL, ens_cmd_session_id, "sessions.stop",
    0 },

  { "mcp", NULL, NULL, GROUP_MCP, "", 0, 0, "Serve the daemon as an MCP server on stdin/stdout",
    "For desktop MCP clients that launch a command: each line is one JSON-RPC\n"
    "message, passed to and from the daemon's mcp.sock (next to ensemble.sock).\n"
    "Tools are the agents' actions and \"complete\"; resources are agent state\n"
    "and sessions.  The same server speaks Streamable HTTP at /mcp.",
    ens_cmd_mcp, NULL, 0 },
  { "chat", NULL, NULL, GROUP_CHAT, "[SESSION_ID]", 0, 1, "Talk with a model: each line read is a turn",
    "Starts a chat session (or goes on with SESSION_ID) and sends each line of\n"
    "standard input as a task, streaming the answer; the conversation is kept.\n"
    "Ends at end of input (Ctrl-D).  --model and --provider choose who answers.\n"
    "With --json, every event of the session as a JSON line.",
    ens_cmd_chat, "sessions.execute", ENS_CTL_OPT_MODEL },
  { "pipe", NULL, NULL, GROUP_CHAT, "STAGE...", 1, ENS_CTL_ANY, "Pass standard input through agents in turn",
    "echo text | ensemblectl pipe STAGE...: each stage gets what the one before\n"
    "answered.  A STAGE is AGENT:ACTION, AGENT (its action when it has only\n"
    "one), or @MODEL (a completion; @ alone lets the router choose).  Text goes\n"
    "to an agent as {\"text\": ...}, a JSON object as itself; an agent's\n"
    "object answer goes on as it is, and to a model as its text, response or\n"
    "content member (else as JSON).  Prints the last answer.",
    ens_cmd_pipe, NULL, 0 },

  { "help", NULL, NULL, GROUP_HELP, "[COMMAND [SUBCOMMAND]]", 0, 2, "Show this help, or a command's", NULL,
    ens_cmd_help, NULL, 0 },
};

static const EnsCtlOption options[] = {
  { "--socket", "PATH", "Connect to PATH", 0 },
  { "--socket-dir", "DIR", "Connect to DIR/ensemble.sock", 0 },
  { "--json", NULL, "Print the raw reply data as JSON", 0 },
  { "--timeout", "MS",
    "Give up after MS milliseconds (default " G_STRINGIFY (ENS_CTL_DEFAULT_TIMEOUT_MS) ",\n"
    "0 = wait forever)", 0 },
  { "--to", "CLIENT", "Deliver only to client CLIENT", ENS_CTL_OPT_TO },
  { "--model", "M", "The model to ask for", ENS_CTL_OPT_MODEL },
  { "--provider", "P", "The provider backend to ask", ENS_CTL_OPT_MODEL },
  { "--stream", NULL, "Print tokens as they arrive", ENS_CTL_OPT_STREAM },
  { "--interval", "MS", "Refresh every MS milliseconds (default " G_STRINGIFY (ENS_CTL_DEFAULT_INTERVAL_MS) ")",
    ENS_CTL_OPT_TOP },
  { "--iterations", "N", "Stop after N views (default 0: until interrupted)", ENS_CTL_OPT_TOP },
  { "--once", NULL, "One view, then exit (--iterations 1)", ENS_CTL_OPT_TOP },
  { "--tools", "LIST", "Tools the task may call: AGENT.ACTION,...", ENS_CTL_OPT_TOOLS },
};

const EnsCtlOption *
ens_ctl_options (guint *n)
{
  *n = G_N_ELEMENTS (options);
  return options;
}

/* ------------------------------------------------------------------ */
/* Looking commands up                                                  */

static gboolean
sub_matches (const EnsCtlCommand *cmd, const char *word)
{
  return g_strcmp0 (cmd->sub, word) == 0 || (cmd->alias != NULL && g_strcmp0 (cmd->alias, word) == 0);
}

/* "get, set, del or list": the subcommands of @name. */
static char *
subcommand_list (const char *name)
{
  g_autoptr(GPtrArray) subs = g_ptr_array_new ();
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0 && commands[i].sub != NULL)
      g_ptr_array_add (subs, (gpointer) commands[i].sub);
  for (guint i = 0; i < subs->len; i++)
    g_string_append_printf (text, "%s%s", i == 0 ? "" : i + 1 == subs->len ? " or " : ", ",
                            (const char *) g_ptr_array_index (subs, i));
  return g_string_free (text, FALSE);
}

static const EnsCtlCommand *
find_name (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

/* The entry for @name @sub (@sub ignored for a command without
 * subcommands), or NULL. */
static const EnsCtlCommand *
find_command (const char *name, const char *sub)
{
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0 && (commands[i].sub == NULL || sub_matches (&commands[i], sub)))
      return &commands[i];
  return NULL;
}

int
ens_ctl_lookup (GPtrArray *args, const EnsCtlCommand **out, guint *n_words)
{
  const char *name = g_ptr_array_index (args, 0);
  const char *sub = args->len > 1 ? g_ptr_array_index (args, 1) : NULL;
  const EnsCtlCommand *first = find_name (name);
  const EnsCtlCommand *cmd;

  if (first == NULL)
    return ens_usage_error ("unknown command '%s' (see ensemblectl --help)", name);
  if (first->sub == NULL)
    {
      *out = first;
      *n_words = 1;
      return ENS_EXIT_OK;
    }
  cmd = sub ? find_command (name, sub) : NULL;
  if (cmd == NULL)
    {
      g_autofree char *expected = subcommand_list (name);

      if (sub == NULL)
        return ens_usage_error ("%s: expected %s", name, expected);
      return ens_usage_error ("%s: unknown subcommand '%s' (expected %s)", name, sub, expected);
    }
  *out = cmd;
  *n_words = 2;
  return ENS_EXIT_OK;
}

char *
ens_ctl_command_words (const EnsCtlCommand *cmd)
{
  return cmd->sub ? g_strconcat (cmd->name, " ", cmd->sub, NULL) : g_strdup (cmd->name);
}

/* "publish" or "complete": the commands that take an option of @flags. */
char *
ens_ctl_commands_taking (guint flags)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (commands[i].flags & flags)
      {
        g_autofree char *words = ens_ctl_command_words (&commands[i]);

        g_string_append_printf (text, "%s%s", text->len ? ", " : "", words);
      }
  return g_string_free (text, FALSE);
}

/* ------------------------------------------------------------------ */
/* Help                                                                 */

/* "  LEFT    TEXT", the text's further lines under its first. */
static void
print_entry (const char *left, const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  if (g_utf8_strlen (left, -1) + 2 > ENS_CTL_HELP_COLUMN)
    printf ("  %s\n%*s%s\n", left, ENS_CTL_HELP_COLUMN + 2, "", lines[0]);
  else
    printf ("  %-*s%s\n", ENS_CTL_HELP_COLUMN, left, lines[0]);
  for (guint i = 1; lines[i]; i++)
    printf ("%*s%s\n", ENS_CTL_HELP_COLUMN + 2, "", lines[i]);
}

static void
print_command_line (const EnsCtlCommand *cmd)
{
  g_autofree char *words = ens_ctl_command_words (cmd);
  g_autofree char *left = *cmd->synopsis ? g_strconcat (words, " ", cmd->synopsis, NULL) : g_strdup (words);

  print_entry (left, cmd->help);
}

/* The options a command with @flags takes (all of them for ~0). */
static void
print_options (guint flags)
{
  printf ("\nOptions:\n");
  for (guint i = 0; i < G_N_ELEMENTS (options); i++)
    if (options[i].only_with == 0 || (options[i].only_with & flags))
      {
        g_autofree char *left =
          options[i].arg ? g_strconcat (options[i].name, " ", options[i].arg, NULL) : g_strdup (options[i].name);

        print_entry (left, options[i].help);
      }
}

void
ens_ctl_print_help (void)
{
  const char *group = NULL;
  g_autofree char *socket = ens_ctl_default_socket_path ();

  printf ("Usage: ensemblectl [OPTION...] COMMAND [ARG...]\n"
          "\n"
          "Command-line client for the Ensemble daemon (ensembled).\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (g_strcmp0 (group, commands[i].group) != 0)
        {
          group = commands[i].group;
          printf ("\n%s:\n", group);
        }
      print_command_line (&commands[i]);
    }
  print_options (~0u);
  print_entry ("-h, --help", "Show this help (after a COMMAND: its help)");
  print_entry ("--version", "Show the version and exit");
  printf ("\n"
          "Without --socket/--socket-dir the socket is $ENSEMBLE_SOCKET, else\n"
          "$XDG_RUNTIME_DIR/ensemble/ensemble.sock (currently %s).\n"
          "\n"
          "Errors are reported as one line \"ensemblectl: CODE: message\" on stderr.\n"
          "Exit status: 0 success, 1 error, 2 usage error.\n",
          socket);
}

int
ens_ctl_print_command_help (const char *name, const char *sub)
{
  const EnsCtlCommand *first = find_name (name);
  const EnsCtlCommand *cmd;
  guint flags = 0;

  if (first == NULL)
    return ens_usage_error ("unknown command '%s' (see ensemblectl --help)", name);
  cmd = first->sub == NULL ? first : sub ? find_command (name, sub) : NULL;
  if (cmd != NULL)
    {
      g_autofree char *words = ens_ctl_command_words (cmd);

      printf ("Usage: ensemblectl [OPTION...] %s%s%s\n\n%s.\n", words, *cmd->synopsis ? " " : "", cmd->synopsis,
              cmd->help);
      if (cmd->details)
        printf ("\n%s\n", cmd->details);
      flags = cmd->flags;
    }
  else
    {
      printf ("Usage: ensemblectl [OPTION...] %s SUBCOMMAND [ARG...]\n\nSubcommands:\n", name);
      for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
        if (strcmp (commands[i].name, name) == 0)
          {
            print_command_line (&commands[i]);
            flags |= commands[i].flags;
          }
    }
  print_options (flags);
  printf ("\nSee ensemblectl --help for every command.\n");
  return ENS_EXIT_OK;
}

static int
ens_cmd_help (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  (void) ctl;
  (void) cmd;
  if (args->len == 0)
    {
      ens_ctl_print_help ();
      return ENS_EXIT_OK;
    }
  return ens_ctl_print_command_help (ENS_ARG (args, 0), args->len > 1 ? ENS_ARG (args, 1) : NULL);
}
