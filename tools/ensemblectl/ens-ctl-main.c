/* ensemblectl — command-line client for the Ensemble daemon (ensembled).
 *
 * This file reads the command line, finds the command in the table
 * (ens-ctl-table.c) and runs it; ens-ctl.h lists the other parts. */
#include "ens-ctl.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

static void
ens_ctl_options_clear (EnsCtlOptions *opts)
{
  g_clear_pointer (&opts->socket_path, g_free);
  g_clear_pointer (&opts->to, g_free);
  g_clear_pointer (&opts->model, g_free);
  g_clear_pointer (&opts->tools, g_free);
  g_clear_pointer (&opts->provider, g_free);
  g_clear_pointer (&opts->args, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (EnsCtlOptions, ens_ctl_options_clear)

char *
ens_ctl_default_socket_path (void)
{
  const char *env = g_getenv ("ENSEMBLE_SOCKET");

  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  return g_build_filename (g_get_user_runtime_dir (), "ensemble", "ensemble.sock", NULL);
}

char *
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

/* ------------------------------------------------------------------ */
/* The command line                                                     */

/* The option @arg names ("--name" or "--name=VALUE"), or NULL. */
static const EnsCtlOption *
ens_find_option (const char *arg)
{
  guint n;
  const EnsCtlOption *options = ens_ctl_options (&n);

  for (guint i = 0; i < n; i++)
    {
      gsize len = strlen (options[i].name);

      if (strncmp (arg, options[i].name, len) == 0 &&
          (arg[len] == '\0' || (arg[len] == '=' && options[i].arg != NULL)))
        return &options[i];
    }
  return NULL;
}

static gboolean
ens_is_help (const char *arg)
{
  return strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0;
}

typedef enum
{
  ENS_PARSE_OK,
  ENS_PARSE_HELP,
  ENS_PARSE_VERSION,
  ENS_PARSE_USAGE,   /* message already printed */
} EnsParseResult;

/* --help/--version win over anything else on the line, like most tools.
 * The first two ordinary arguments, if any, name the command whose help
 * is wanted (@words, pointing into @argv). */
static EnsParseResult
ens_scan_help (int argc, char **argv, const char **words)
{
  EnsParseResult result = ENS_PARSE_OK;
  guint n_words = 0;

  for (int i = 1; i < argc && strcmp (argv[i], "--") != 0; i++)
    {
      const char *arg = argv[i];
      const EnsCtlOption *opt;

      if (ens_is_help (arg) || strcmp (arg, "--version") == 0)
        {
          if (result == ENS_PARSE_OK)
            result = ens_is_help (arg) ? ENS_PARSE_HELP : ENS_PARSE_VERSION;
          continue;
        }
      if (strncmp (arg, "--", 2) != 0)
        {
          if (n_words < 2)
            words[n_words++] = arg;
          continue;
        }
      /* skip an option's separate value, unless it is --help itself */
      opt = ens_find_option (arg);
      if (opt != NULL && opt->arg != NULL && strchr (arg, '=') == NULL && i + 1 < argc &&
          !ens_is_help (argv[i + 1]) && strcmp (argv[i + 1], "--version") != 0)
        i++;
    }
  return result;
}

static EnsParseResult
ens_parse_args (int argc, char **argv, EnsCtlOptions *opts)
{
  const char *socket_opt = NULL;
  const char *socket_dir = NULL;
  gboolean only_positional = FALSE;

  opts->args = g_ptr_array_new_with_free_func (g_free);
  opts->timeout_ms = ENS_CTL_DEFAULT_TIMEOUT_MS;
  opts->interval_ms = ENS_CTL_DEFAULT_INTERVAL_MS;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];
      const EnsCtlOption *opt;
      const char *name;
      const char *value;

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
      opt = ens_find_option (arg);
      if (opt == NULL)
        {
          ens_usage_error ("unknown option '%s'", arg);
          return ENS_PARSE_USAGE;
        }
      name = opt->name;
      if (opt->arg == NULL)
        {
          if (strcmp (name, "--json") == 0)
            opts->json = TRUE;
          else if (strcmp (name, "--once") == 0)
            {
              opts->iterations = 1;
              opts->top_set = TRUE;
            }
          else /* --stream */
            opts->stream = TRUE;
          continue;
        }

      /* "--name VALUE" or "--name=VALUE" */
      if (arg[strlen (name)] == '=')
        value = arg + strlen (name) + 1;
      else if (i + 1 < argc)
        value = argv[++i];
      else
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
      else if (strcmp (name, "--tools") == 0)
        {
          g_free (opts->tools);
          opts->tools = g_strdup (value);
        }
      else if (strcmp (name, "--provider") == 0)
        {
          g_free (opts->provider);
          opts->provider = g_strdup (value);
        }
      else if (strcmp (name, "--interval") == 0 || strcmp (name, "--iterations") == 0)
        {
          gboolean interval = strcmp (name, "--interval") == 0;
          guint64 v = 0;

          if (!g_ascii_string_to_unsigned (value, 10, interval ? 10 : 0, interval ? 3600000 : G_MAXINT, &v, NULL))
            {
              if (interval)
                ens_usage_error ("invalid --interval value '%s': expected milliseconds from 10 to 3600000", value);
              else
                ens_usage_error ("invalid --iterations value '%s': expected a count (0 = until interrupted)", value);
              return ENS_PARSE_USAGE;
            }
          if (interval)
            opts->interval_ms = (guint) v;
          else
            opts->iterations = (guint) v;
          opts->top_set = TRUE;
        }
      else /* --timeout */
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
    opts->socket_path = ens_ctl_default_socket_path ();

  return ENS_PARSE_OK;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                             */

/* Options only some commands take, given to @cmd. */
static int
ens_check_options (EnsCtlOptions *opts, const EnsCtlCommand *cmd)
{
  const char *name = NULL;
  guint flag = 0;
  g_autofree char *valid = NULL;

  if (opts->to != NULL && !(cmd->flags & ENS_CTL_OPT_TO))
    {
      name = "--to";
      flag = ENS_CTL_OPT_TO;
    }
  else if (!(cmd->flags & ENS_CTL_OPT_MODEL) && (opts->model || opts->provider))
    {
      name = opts->model ? "--model" : "--provider";
      flag = ENS_CTL_OPT_MODEL;
    }
  else if (!(cmd->flags & ENS_CTL_OPT_STREAM) && opts->stream)
    {
      name = "--stream";
      flag = ENS_CTL_OPT_STREAM;
    }
  else if (!(cmd->flags & ENS_CTL_OPT_TOP) && opts->top_set)
    {
      name = "--interval, --iterations and --once";
      flag = ENS_CTL_OPT_TOP;
    }
  else if (opts->tools != NULL && !(cmd->flags & ENS_CTL_OPT_TOOLS))
    {
      name = "--tools";
      flag = ENS_CTL_OPT_TOOLS;
    }
  if (name == NULL)
    return ENS_EXIT_OK;
  valid = ens_ctl_commands_taking (flag);
  return ens_usage_error ("%s %s only valid with %s", name, flag == ENS_CTL_OPT_TOP ? "are" : "is", valid);
}

static int
ens_run (EnsCtl *ctl)
{
  GPtrArray *args = ctl->opts->args;
  const EnsCtlCommand *cmd;
  g_autoptr(GPtrArray) operands = NULL;
  guint n_words;
  int status;

  if (args->len == 0)
    return ens_usage_error ("no command given (see ensemblectl --help)");
  if ((status = ens_ctl_lookup (args, &cmd, &n_words)) != ENS_EXIT_OK ||
      (status = ens_check_options (ctl->opts, cmd)) != ENS_EXIT_OK)
    return status;
  operands = g_ptr_array_new ();
  for (guint i = n_words; i < args->len; i++)
    g_ptr_array_add (operands, g_ptr_array_index (args, i));
  if (operands->len < cmd->min_args || operands->len > cmd->max_args)
    {
      g_autofree char *words = ens_ctl_command_words (cmd);

      return ens_usage_error ("%s: expected %s", words, *cmd->synopsis ? cmd->synopsis : "no arguments");
    }
  return cmd->handler (ctl, cmd, operands);
}

int
main (int argc, char **argv)
{
  g_auto(EnsCtlOptions) opts = { 0 };
  EnsCtl ctl = { 0 };
  const char *help_words[2] = { NULL, NULL };
  int status;

  setlocale (LC_ALL, "");

  switch (ens_scan_help (argc, argv, help_words))
    {
    case ENS_PARSE_HELP:
      if (help_words[0] != NULL)
        return ens_ctl_print_command_help (help_words[0], help_words[1]);
      ens_ctl_print_help ();
      return ENS_EXIT_OK;
    case ENS_PARSE_VERSION:
      printf ("ensemblectl " ENS_CTL_VERSION "\n");
      return ENS_EXIT_OK;
    case ENS_PARSE_OK:
    case ENS_PARSE_USAGE:
    default:
      break;
    }
  if (ens_parse_args (argc, argv, &opts) != ENS_PARSE_OK)
    return ENS_EXIT_USAGE;

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
