/* ens-plugin-loader.c — finds plugin files, starts them, stops them, and
 * says so with signals (see ens-plugin-loader.h).
 *
 * A plugin is refused, with one log line naming the file and the reason,
 * for what ens_plugin_open() checks, when its id is taken, when init fails,
 * or when a part of the daemon cannot take it in (plugin-started).
 * Refusal is never fatal: the daemon carries on with what did load, and
 * remembers what failed so that health can tell. */
#include "ens-plugin-loader.h"

#include <string.h>

struct _EnsLoader {
  GObject parent;
  const EnsHost *host;
  GPtrArray *plugins;  /* started, in start order */
  GHashTable *ids;     /* id -> EnsPlugin (started) */
  GPtrArray *failures; /* EnsPluginFailure* */
  guint refused;
};

G_DEFINE_FINAL_TYPE (EnsLoader, ens_loader, G_TYPE_OBJECT)

enum { SIGNAL_STARTED, SIGNAL_LOADED, SIGNAL_STOPPED, SIGNAL_FAILED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
failure_free (EnsPluginFailure *f)
{
  g_free (f->id);
  g_free (f->file);
  g_free (f->reason);
  g_free (f);
}

static void
ens_loader_finalize (GObject *object)
{
  EnsLoader *loader = ENS_LOADER (object);

  g_hash_table_unref (loader->ids);
  g_ptr_array_unref (loader->plugins);
  g_ptr_array_unref (loader->failures);
  G_OBJECT_CLASS (ens_loader_parent_class)->finalize (object);
}

static void
ens_loader_class_init (EnsLoaderClass *klass)
{
  GType type = G_TYPE_FROM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = ens_loader_finalize;
  signals[SIGNAL_STARTED] = g_signal_new ("plugin-started", type, G_SIGNAL_RUN_LAST, 0,
                                          g_signal_accumulator_true_handled, NULL, NULL, G_TYPE_BOOLEAN, 2,
                                          ENS_TYPE_PLUGIN, G_TYPE_POINTER);
  signals[SIGNAL_LOADED] = g_signal_new ("plugin-loaded", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 1, ENS_TYPE_PLUGIN);
  signals[SIGNAL_STOPPED] = g_signal_new ("plugin-stopped", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 1, ENS_TYPE_PLUGIN);
  signals[SIGNAL_FAILED] = g_signal_new ("plugin-failed", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
}

static void
ens_loader_init (EnsLoader *loader)
{
  loader->plugins = g_ptr_array_new_with_free_func (g_object_unref);
  loader->ids = g_hash_table_new (g_str_hash, g_str_equal);
  loader->failures = g_ptr_array_new_with_free_func ((GDestroyNotify) failure_free);
}

EnsLoader *
ens_loader_new (const EnsHost *host)
{
  EnsLoader *loader = g_object_new (ENS_TYPE_LOADER, NULL);

  loader->host = host;
  return loader;
}

void
ens_loader_free (EnsLoader *loader)
{
  if (loader == NULL)
    return;
  ens_loader_stop_all (loader);
  g_object_unref (loader);
}

/* ------------------------------------------------------------------ failures */

/* Forgets what failed under @id or in @file (either may be NULL). */
static void
forget_failure (EnsLoader *loader, const char *id, const char *file)
{
  for (guint i = 0; i < loader->failures->len;)
    {
      EnsPluginFailure *f = g_ptr_array_index (loader->failures, i);
      if ((id && g_strcmp0 (f->id, id) == 0) || (file && strcmp (f->file, file) == 0))
        g_ptr_array_remove_index (loader->failures, i);
      else
        i++;
    }
}

static void
remember_failure (EnsLoader *loader, const char *id, const char *file, const char *reason)
{
  EnsPluginFailure *f = g_new0 (EnsPluginFailure, 1);

  forget_failure (loader, id, file);
  f->id = g_strdup (id);
  f->file = g_strdup (file);
  f->reason = g_strdup (reason);
  g_ptr_array_add (loader->failures, f);
}

GPtrArray *
ens_loader_failures (EnsLoader *loader)
{
  return loader->failures;
}

gboolean
ens_loader_has_failed (EnsLoader *loader, const char *id)
{
  for (guint i = 0; i < loader->failures->len; i++)
    if (g_strcmp0 (((EnsPluginFailure *) g_ptr_array_index (loader->failures, i))->id, id) == 0)
      return TRUE;
  return FALSE;
}

/* ------------------------------------------------------------------ starting */

static gboolean
refuse (GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static gboolean
refuse (GError **error, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_set_error_literal (error, ENS_PLUGIN_ERROR, code, "");
  g_free ((*error)->message);
  (*error)->message = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return FALSE;
}

static gboolean
id_taken (EnsLoader *loader, EnsPlugin *plugin, GError **error)
{
  EnsPlugin *other = g_hash_table_lookup (loader->ids, ens_plugin_get_id (plugin));

  if (other == NULL)
    return FALSE;
  refuse (error, ENS_PLUGIN_ERROR_DUPLICATE, "id \"%s\" is already taken by %s", ens_plugin_get_id (plugin),
          ens_plugin_get_file (other));
  return TRUE;
}

/* Opens and checks a file; the plugin is not started. */
static EnsPlugin *
open_plugin (EnsLoader *loader, const char *path, GError **error)
{
  g_autoptr (EnsPlugin) plugin = ens_plugin_open (path, error);

  if (plugin == NULL || id_taken (loader, plugin, error))
    return NULL;
  return g_steal_pointer (&plugin);
}

static gboolean
start_plugin (EnsLoader *loader, EnsPlugin *plugin, GError **error)
{
  g_autoptr (GError) local = NULL;
  gboolean refused = FALSE;

  if (id_taken (loader, plugin, error) || !ens_plugin_start (plugin, loader->host, error))
    return FALSE;
  g_signal_emit (loader, signals[SIGNAL_STARTED], 0, plugin, &local, &refused);
  if (refused)
    {
      ens_plugin_stop (plugin);
      g_signal_emit (loader, signals[SIGNAL_STOPPED], 0, plugin);
      /* The part that refused it says why (a taken agent name, malformed tools). */
      return refuse (error, local && local->domain == ENS_PLUGIN_ERROR ? local->code : ENS_PLUGIN_ERROR_DUPLICATE,
                     "%s", local ? local->message : "refused");
    }
  g_hash_table_insert (loader->ids, (gpointer) ens_plugin_get_id (plugin), plugin);
  g_ptr_array_add (loader->plugins, g_object_ref (plugin));
  return TRUE;
}

static gboolean
is_disabled (EnsPlugin *plugin, char **disabled)
{
  return disabled && g_strv_contains ((const char *const *) disabled, ens_plugin_get_id (plugin));
}

EnsPlugin *
ens_loader_load_file (EnsLoader *loader, const char *path, char **disabled, GError **error)
{
  g_autoptr (EnsPlugin) plugin = open_plugin (loader, path, error);

  if (plugin == NULL)
    return NULL;
  if (is_disabled (plugin, disabled))
    {
      refuse (error, ENS_PLUGIN_ERROR_DISABLED, "disabled by the disabled-plugins setting");
      return NULL;
    }
  if (!start_plugin (loader, plugin, error))
    return NULL;
  return plugin;
}

static int
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
collect (GPtrArray *files, const char *dir, int depth)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  /* Sorted, so that load order, and which of two duplicates wins, does not
   * depend on the file system. */
  g_ptr_array_sort (names, by_name);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, g_ptr_array_index (names, i), NULL);
      if (g_str_has_suffix (path, ".so") && !g_file_test (path, G_FILE_TEST_IS_DIR))
        g_ptr_array_add (files, g_steal_pointer (&path));
      else if (depth == 0 && g_file_test (path, G_FILE_TEST_IS_DIR))
        collect (files, path, depth + 1);
    }
}

static gboolean
already_started_file (EnsLoader *loader, const char *path)
{
  for (guint i = 0; i < loader->plugins->len; i++)
    if (strcmp (ens_plugin_get_file (g_ptr_array_index (loader->plugins, i)), path) == 0)
      return TRUE;
  return FALSE;
}

static int
start_rank (EnsPlugin *plugin)
{
  /* Providers and routers first, agents next, transports last: a
   * transport starts listening only when everything it exposes is there. */
  switch (ens_plugin_get_desc (plugin)->kind)
    {
    case ENS_PLUGIN_KIND_PROVIDER: return 0;
    case ENS_PLUGIN_KIND_ROUTER: return 1;
    case ENS_PLUGIN_KIND_AGENT: return 2;
    default: return 3;
    }
}

static int
by_rank (gconstpointer a, gconstpointer b)
{
  return start_rank (*(EnsPlugin **) a) - start_rank (*(EnsPlugin **) b);
}

/* One line in the log, and for a real refusal a signal.  A refused plugin
 * is remembered as @failed unless the refusal is only that its id runs
 * from another file: then nothing is missing. */
static void
log_refusal (EnsLoader *loader, const char *path, const char *id, GError *error, gboolean failed)
{
  if (g_error_matches (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_DISABLED))
    {
      g_message ("plugin skipped: %s: %s", path, error->message);
      forget_failure (loader, id, path); /* not running, as asked */
      return;
    }
  loader->refused++;
  g_warning ("plugin refused: %s: %s", path, error->message);
  if (failed)
    remember_failure (loader, id, path, error->message);
  g_signal_emit (loader, signals[SIGNAL_FAILED], 0, path, error->message);
}

static void
announce_loaded (EnsLoader *loader, EnsPlugin *plugin)
{
  const EnsPluginDesc *desc = ens_plugin_get_desc (plugin);

  g_message ("plugin loaded: %s (%s %s) from %s", desc->id, ens_plugin_kind_name (desc->kind), desc->version,
             ens_plugin_get_file (plugin));
  forget_failure (loader, desc->id, ens_plugin_get_file (plugin));
  g_signal_emit (loader, signals[SIGNAL_LOADED], 0, plugin);
}

/* Records of files no longer in the plugin folders go. */
static void
forget_vanished (EnsLoader *loader, GPtrArray *files)
{
  for (guint i = 0; i < loader->failures->len;)
    {
      EnsPluginFailure *f = g_ptr_array_index (loader->failures, i);
      if (!g_ptr_array_find_with_equal_func (files, f->file, g_str_equal, NULL))
        g_ptr_array_remove_index (loader->failures, i);
      else
        i++;
    }
}

void
ens_loader_load_dirs (EnsLoader *loader, char **dirs, char **disabled)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) opened = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; dirs && dirs[i]; i++)
    collect (files, dirs[i], 0);
  forget_vanished (loader, files);

  for (guint i = 0; i < files->len; i++)
    {
      const char *path = g_ptr_array_index (files, i);
      g_autoptr (GError) error = NULL;
      g_autofree char *id = NULL;
      EnsPlugin *plugin;

      if (already_started_file (loader, path))
        continue; /* a rescan while running: it is there already */
      plugin = open_plugin (loader, path, &error);
      /* open_plugin checks ids against the running plugins: at start-up
       * there are none, so this only skips a rescan's known plugins. */
      if (plugin == NULL && g_error_matches (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_DUPLICATE) &&
          loader->plugins->len > 0)
        continue;

      for (guint j = 0; plugin && j < opened->len; j++)
        {
          EnsPlugin *other = g_ptr_array_index (opened, j);
          if (strcmp (ens_plugin_get_id (other), ens_plugin_get_id (plugin)) == 0)
            {
              refuse (&error, ENS_PLUGIN_ERROR_DUPLICATE, "id \"%s\" is already taken by %s",
                      ens_plugin_get_id (plugin), ens_plugin_get_file (other));
              g_clear_object (&plugin);
            }
        }
      if (plugin && is_disabled (plugin, disabled))
        {
          refuse (&error, ENS_PLUGIN_ERROR_DISABLED, "%s is disabled by the disabled-plugins setting",
                  ens_plugin_get_id (plugin));
          id = g_strdup (ens_plugin_get_id (plugin));
          g_clear_object (&plugin);
        }
      if (plugin == NULL)
        {
          /* A duplicate id here is one that runs, or will: not a failure. */
          log_refusal (loader, path, id, error, !g_error_matches (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_DUPLICATE));
          continue;
        }
      g_ptr_array_add (opened, plugin);
    }

  g_ptr_array_sort (opened, by_rank); /* stable: keeps file order within a kind */
  for (guint i = 0; i < opened->len; i++)
    {
      EnsPlugin *plugin = g_ptr_array_index (opened, i);
      g_autoptr (GError) error = NULL;

      if (start_plugin (loader, plugin, &error))
        announce_loaded (loader, plugin);
      else
        log_refusal (loader, ens_plugin_get_file (plugin), ens_plugin_get_id (plugin), error, TRUE);
    }
}

/* ------------------------------------------------------------------ stopping */

static void
stop_index (EnsLoader *loader, guint index)
{
  EnsPlugin *plugin = g_object_ref (g_ptr_array_index (loader->plugins, index));

  g_hash_table_remove (loader->ids, ens_plugin_get_id (plugin));
  ens_plugin_stop (plugin);
  g_signal_emit (loader, signals[SIGNAL_STOPPED], 0, plugin);
  g_message ("plugin stopped: %s", ens_plugin_get_id (plugin));
  g_ptr_array_remove_index (loader->plugins, index);
  g_object_unref (plugin);
}

void
ens_loader_stop_all (EnsLoader *loader)
{
  /* Reverse start order: transports stop taking requests before the
   * agents and providers behind them go away. */
  while (loader->plugins->len > 0)
    stop_index (loader, loader->plugins->len - 1);
}

gboolean
ens_loader_stop_plugin (EnsLoader *loader, const char *id)
{
  for (guint i = 0; i < loader->plugins->len; i++)
    if (strcmp (ens_plugin_get_id (g_ptr_array_index (loader->plugins, i)), id) == 0)
      {
        stop_index (loader, i);
        return TRUE;
      }
  return FALSE;
}

/* Loads and starts the plugin with @id from @dirs, if it is there and not
 * running; refusals are logged (and signalled) like at start-up. */
gboolean
ens_loader_start_id (EnsLoader *loader, char **dirs, const char *id)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);

  if (g_hash_table_contains (loader->ids, id))
    return TRUE;
  for (guint i = 0; dirs && dirs[i]; i++)
    collect (files, dirs[i], 0);
  for (guint i = 0; i < files->len; i++)
    {
      const char *path = g_ptr_array_index (files, i);
      g_autoptr (GError) error = NULL;
      g_autoptr (EnsPlugin) plugin = open_plugin (loader, path, &error);

      if (plugin == NULL || strcmp (ens_plugin_get_id (plugin), id) != 0)
        continue;
      if (start_plugin (loader, plugin, &error))
        {
          announce_loaded (loader, plugin);
          return TRUE;
        }
      log_refusal (loader, path, id, error, TRUE);
      return FALSE;
    }
  g_warning ("plugin %s: not found in the plugin folders", id);
  return FALSE;
}

/* Stop and start again: how a plugin takes new settings it reads at init. */
gboolean
ens_loader_restart (EnsLoader *loader, char **dirs, const char *id)
{
  if (!ens_loader_stop_plugin (loader, id))
    return FALSE;
  return ens_loader_start_id (loader, dirs, id);
}

GPtrArray *
ens_loader_plugins (EnsLoader *loader)
{
  return loader->plugins;
}

gboolean
ens_loader_is_running (EnsLoader *loader, const char *id)
{
  return g_hash_table_contains (loader->ids, id);
}

guint
ens_loader_refused_count (EnsLoader *loader)
{
  return loader->refused;
}
