/* ens-main.c — ensembled: options, start-up, the main loop, clean shutdown. */
#include "ens-dbus.h"
#include "ens-live.h"
#include "ens-notify.h"
#include "ens-paths.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#include <sys/file.h>
#include <unistd.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gboolean
on_signal (gpointer data)
{
  EnsDaemon *d = data;

  g_message ("signal received, shutting down");
  ens_daemon_quit (d);
  return G_SOURCE_CONTINUE;
}

/* One daemon per socket folder: an advisory lock held for the daemon's
 * life (the kernel drops it even on kill -9), taken before any plugin
 * could touch a socket of the daemon already there.  Returns the fd, or -1
 * after printing why. */
static int
lock_socket_dir (const char *dir, char **lock_path)
{
  g_autofree char *path = g_build_filename (dir, "ensembled.lock", NULL);
  char pid[32];
  int fd;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_printerr ("ensembled: cannot create socket folder %s: %s\n", dir, g_strerror (errno));
      return -1;
    }
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      g_printerr ("ensembled: cannot open %s: %s\n", path, g_strerror (errno));
      return -1;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      ssize_t n = read (fd, pid, sizeof pid - 1);
      pid[n > 0 ? n : 0] = '\0';
      g_strchomp (pid);
      g_printerr ("ensembled: another running daemon (pid %s) serves the socket folder %s; "
                  "stop it or use another --socket-dir\n", pid[0] ? pid : "?", dir);
      close (fd);
      return -1;
    }
  g_snprintf (pid, sizeof pid, "%d\n", (int) getpid ());
  if (ftruncate (fd, 0) != 0 || write (fd, pid, strlen (pid)) < 0)
    g_warning ("cannot record the pid in %s", path);
  *lock_path = g_steal_pointer (&path);
  return fd;
}

typedef struct
{
  EnsDaemon *d;
  EnsNotify *notify;
} Ready;

static gboolean
log_ready (gpointer data)
{
  Ready *ready = data;

  g_message ("ready");
  ens_notify_ready (ready->notify, ready->d);
  return G_SOURCE_REMOVE;
}

/* --debug[=DOMAIN,...]: debug messages of every log domain, or of those
 * named (the core's is "ensembled", each plugin's is its id), added to
 * those G_MESSAGES_DEBUG already names. */
static gboolean
on_debug_option (const char *name, const char *value, gpointer data, GError **error)
{
  const char *env = g_getenv ("G_MESSAGES_DEBUG");
  g_auto (GStrv) domains = NULL;
  g_autoptr (GString) all = g_string_new (env ? env : "");

  (void) name;
  (void) data;
  if (value == NULL || value[0] == '\0')
    {
      g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);
      return TRUE;
    }
  domains = g_strsplit_set (value, ", ", -1);
  for (guint i = 0; domains[i]; i++)
    {
      if (domains[i][0] == '\0')
        continue;
      if (!g_regex_match_simple ("^[A-Za-z0-9_.-]+$", domains[i], 0, 0))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--debug: '%s' is not a log domain (the core's is ensembled, a plugin's is its id)",
                       domains[i]);
          return FALSE;
        }
      g_string_append_printf (all, "%s%s", all->len ? " " : "", domains[i]);
    }
  g_setenv ("G_MESSAGES_DEBUG", all->str, TRUE);
  return TRUE;
}

static char *
random_node_id (void)
{
  return g_strdup_printf ("%06x", g_random_int () & 0xffffff);
}

int
main (int argc, char **argv)
{
  g_autofree char *socket_dir = NULL, *state_dir = NULL, *config_file = NULL, *node_id = NULL;
  g_auto (GStrv) plugin_dirs = NULL, disabled = NULL;
  gboolean version = FALSE, system_bus = FALSE;
  GOptionEntry entries[] = {
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { "plugin-dir", 'p', 0, G_OPTION_ARG_FILENAME_ARRAY, &plugin_dirs, "Load plugins from DIR (repeatable; replaces plugin-dirs)", "DIR" },
    { "disable-plugin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &disabled, "Do not start plugin ID (repeatable)", "ID" },
    { "socket-dir", 's', 0, G_OPTION_ARG_FILENAME, &socket_dir, "Put the Unix sockets in DIR", "DIR" },
    { "state-dir", 'd', 0, G_OPTION_ARG_FILENAME, &state_dir, "Keep the state database in DIR", "DIR" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file, "Read settings from the keyfile FILE instead of dconf", "FILE" },
    { "node-id", 0, 0, G_OPTION_ARG_STRING, &node_id, "Name this daemon on a shared bus", "ID" },
    { "system", 0, 0, G_OPTION_ARG_NONE, &system_bus, "Serve D-Bus on the system bus (as a system service)", NULL },
    { "debug", 0, G_OPTION_FLAG_OPTIONAL_ARG, G_OPTION_ARG_CALLBACK, (gpointer) on_debug_option,
      "Log debug messages of every domain, or of the DOMAINs named (ensembled, a plugin id, ...)", "DOMAIN,..." },
    { NULL },
  };
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *state_path = NULL;
  g_auto (GStrv) dirs = NULL, disabled_all = NULL;
  g_autofree char *lock_path = NULL, *node = NULL;
  int lock_fd = -1;
  EnsConfig *config;
  EnsState *state;
  EnsDaemon *d;
  EnsDBus *dbus = NULL;
  EnsNotify *notify;
  Ready ready;
  guint sigint, sigterm;

  setlocale (LC_ALL, "");
  context = g_option_context_new ("- the Ensemble agent orchestration daemon");
  g_option_context_set_summary (context,
                                "Loads transport, agent, router and provider plugins and joins them on one bus.\n"
                                "Settings: gsettings list-recursively org.ensemble.Daemon");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "ensembled: %s (try --help)\n", error->message);
      return 2;
    }
  if (version)
    {
      printf ("ensembled %s (plugin ABI %d.%d)\n", ENS_VERSION, ENS_ABI_MAJOR, ENS_ABI_MINOR);
      return 0;
    }

  /* A keyfile that is not there would be read as every default, and a
   * typo in a unit file would go unnoticed. */
  if (config_file && !g_file_test (config_file, G_FILE_TEST_IS_REGULAR))
    {
      fprintf (stderr, "ensembled: --config %s: %s\n", config_file,
               g_file_test (config_file, G_FILE_TEST_EXISTS) ? "not a regular file" : "no such file");
      return 1;
    }
  if (config_file && access (config_file, R_OK) != 0)
    {
      int saved = errno;

      fprintf (stderr, "ensembled: --config %s: %s\n", config_file, g_strerror (saved));
      return 1;
    }
  notify = ens_notify_new ();
  config = ens_config_new (config_file, &error);
  if (config == NULL)
    {
      fprintf (stderr, "ensembled: %s\n", error->message);
      ens_notify_stopping_and_free (notify);
      return 1;
    }
  if (plugin_dirs)
    ens_config_override (config, "plugin-dirs", g_variant_new_strv ((const char *const *) plugin_dirs, -1));
  if (socket_dir)
    ens_config_override (config, "socket-dir", g_variant_new_string (socket_dir));
  if (state_dir)
    ens_config_override (config, "state-dir", g_variant_new_string (state_dir));
  if (node_id)
    ens_config_override (config, "node-id", g_variant_new_string (node_id));
  if (system_bus)
    ens_config_override (config, "dbus-bus", g_variant_new_string ("system"));

  node = ens_config_get_path (config, "node-id");
  if (node == NULL || node[0] == '\0')
    {
      g_free (node);
      node = random_node_id ();
    }

  {
    g_autofree char *socket_dir_path = ens_config_get_path (config, "socket-dir");
    lock_fd = lock_socket_dir (socket_dir_path, &lock_path);
    if (lock_fd < 0)
      {
        ens_config_free (config);
        ens_notify_stopping_and_free (notify);
        return 1;
      }
  }

  state_path = ens_config_get_path (config, "state-dir");
  state = ens_state_open (state_path, &error);
  if (state == NULL)
    {
      fprintf (stderr, "ensembled: state: %s\n", error->message);
      ens_config_free (config);
      ens_notify_stopping_and_free (notify);
      close (lock_fd);
      return 1;
    }

  /* Writes to a vanished peer must fail with EPIPE, not kill the daemon. */
  signal (SIGPIPE, SIG_IGN);

  d = ens_daemon_new (config, state, node);

  dirs = ens_config_get_strv (config, "plugin-dirs");
  {
    g_auto (GStrv) from_settings = ens_config_get_strv (config, "disabled-plugins");
    g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
    g_strv_builder_addv (b, (const char **) from_settings);
    if (disabled)
      g_strv_builder_addv (b, (const char **) disabled);
    disabled_all = g_strv_builder_end (b);
  }
  g_message ("ensembled %s starting: node %s, state %s", ENS_VERSION, d->node_id, state_path);
  {
    g_autofree char *bus = ens_config_get_path (config, "dbus-bus");
    if (g_strcmp0 (bus, "none") != 0)
      dbus = ens_dbus_start (d, g_strcmp0 (bus, "system") == 0 ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION);
  }
  ens_daemon_load_plugins (d, dirs, disabled_all);

  int status = 0;
  if (!ens_daemon_has_transport (d))
    {
      g_autofree char *joined = g_strjoinv (", ", dirs);
      g_printerr ("ensembled: no transport plugin started (plugin folders: %s); nothing could reach this daemon\n",
                  joined);
      status = 1;
    }
  else
    {
      ens_live_start (d);
      sigint = g_unix_signal_add (SIGINT, on_signal, d);
      sigterm = g_unix_signal_add (SIGTERM, on_signal, d);
      /* "ready" once what plugins deferred at start (such as the sockets of
       * agents already registered) has run. */
      ready.d = d;
      ready.notify = notify;
      g_idle_add_full (G_PRIORITY_LOW, log_ready, &ready, NULL);
      g_main_loop_run (d->loop);
      g_source_remove (sigint);
      g_source_remove (sigterm);
    }

  ens_notify_stopping_and_free (notify);
  ens_daemon_stop (d); /* stops every plugin, in reverse order */
  ens_dbus_stop (dbus);
  ens_daemon_free (d);
  g_unlink (lock_path);
  close (lock_fd);
  if (status == 0)
    g_message ("stopped");
  return status;
}
