/* ens-plugin-loader.c — finds plugin files, checks them, starts them.
 *
 * A plugin is refused, with one log line naming the file and the reason,
 * when its file is writable by others, it will not dlopen, it lacks the
 * query symbol, its ABI major differs or its minor is newer, its structs are
 * shorter than their ABI minor defines, its id is taken, or init fails.
 * Refusal is never fatal: the daemon carries on with what did load. */
#include "ens-core.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sizes of the structs as ABI 1.0 defined them; a plugin may be larger
 * (newer minor), never smaller. */
#define ENS_DESC_SIZE_1_0 (G_STRUCT_OFFSET (EnsPluginDesc, vtable) + sizeof (gpointer))
#define ENS_AGENT_VTABLE_SIZE_1_0 (G_STRUCT_OFFSET (EnsAgentVTable, handle) + sizeof (gpointer))
#define ENS_ROUTER_VTABLE_SIZE_1_0 (G_STRUCT_OFFSET (EnsRouterVTable, choose) + sizeof (gpointer))
#define ENS_PROVIDER_VTABLE_SIZE_1_0 (G_STRUCT_OFFSET (EnsProviderVTable, complete) + sizeof (gpointer))

struct _EnsPlugin {
  GObject parent;
  char *file;
  void *module;
  const EnsPluginDesc *desc;
  gpointer instance;
  gboolean started;
};

G_DEFINE_FINAL_TYPE (EnsPlugin, ens_plugin, G_TYPE_OBJECT)

static void
ens_plugin_finalize (GObject *object)
{
  EnsPlugin *plugin = ENS_PLUGIN (object);

  /* Modules stay resident unless the plugin says it can be unloaded: a
   * GType or a thread-local it registered would outlive dlclose(). */
  if (plugin->module && (plugin->desc == NULL || (plugin->desc->flags & ENS_PLUGIN_FLAG_UNLOADABLE)))
    dlclose (plugin->module);
  g_free (plugin->file);
  G_OBJECT_CLASS (ens_plugin_parent_class)->finalize (object);
}

static void
ens_plugin_class_init (EnsPluginClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ens_plugin_finalize;
}

static void
ens_plugin_init (EnsPlugin *plugin)
{
  (void) plugin;
}

const EnsPluginDesc *
ens_plugin_get_desc (EnsPlugin *plugin)
{
  return plugin->desc;
}

const char *
ens_plugin_get_file (EnsPlugin *plugin)
{
  return plugin->file;
}

gpointer
ens_plugin_get_instance (EnsPlugin *plugin)
{
  return plugin->instance;
}

const char *
ens_plugin_kind_name (EnsPluginKind kind)
{
  switch (kind)
    {
    case ENS_PLUGIN_KIND_TRANSPORT: return "transport";
    case ENS_PLUGIN_KIND_AGENT: return "agent";
    case ENS_PLUGIN_KIND_ROUTER: return "router";
    case ENS_PLUGIN_KIND_PROVIDER: return "provider";
    default: return "unknown";
    }
}

JsonNode *
ens_plugin_describe (EnsPlugin *plugin)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);

  json_object_set_string_member (obj, "id", plugin->desc->id);
  json_object_set_string_member (obj, "kind", ens_plugin_kind_name (plugin->desc->kind));
  json_object_set_string_member (obj, "version", plugin->desc->version ? plugin->desc->version : "");
  json_object_set_string_member (obj, "description", plugin->desc->description ? plugin->desc->description : "");
  json_object_set_string_member (obj, "file", plugin->file);
  if (plugin->desc->describe && plugin->instance)
    {
      JsonNode *info = plugin->desc->describe (plugin->instance);
      if (info)
        json_object_set_member (obj, "info", info);
    }
  return node;
}

/* ------------------------------------------------------------------ loader */

struct _EnsLoader {
  const EnsHost *host;
  GPtrArray *plugins; /* started, in start order */
  GHashTable *ids;    /* id -> EnsPlugin (started) */
  guint refused;
};

EnsLoader *
ens_loader_new (const EnsHost *host)
{
  EnsLoader *loader = g_new0 (EnsLoader, 1);

  loader->host = host;
  loader->plugins = g_ptr_array_new_with_free_func (g_object_unref);
  loader->ids = g_hash_table_new (g_str_hash, g_str_equal);
  return loader;
}

void
ens_loader_free (EnsLoader *loader)
{
  if (loader == NULL)
    return;
  ens_loader_stop_all (loader);
  g_hash_table_unref (loader->ids);
  g_ptr_array_unref (loader->plugins);
  g_free (loader);
}

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
check_file (const char *path, GError **error)
{
  struct stat st;

  if (stat (path, &st) != 0)
    return refuse (error, ENS_PLUGIN_ERROR_FAILED, "cannot stat: %s", g_strerror (errno));
  if (!S_ISREG (st.st_mode))
    return refuse (error, ENS_PLUGIN_ERROR_UNSAFE_FILE, "not a regular file");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return refuse (error, ENS_PLUGIN_ERROR_UNSAFE_FILE,
                   "file is group- or world-writable (mode %04o); anyone could replace the code the daemon runs",
                   (unsigned) (st.st_mode & 07777));
  if (st.st_uid != 0 && st.st_uid != getuid ())
    return refuse (error, ENS_PLUGIN_ERROR_UNSAFE_FILE, "file is owned by uid %u, neither root nor the daemon's user",
                   (unsigned) st.st_uid);
  return TRUE;
}

static gboolean
check_desc (const EnsPluginDesc *desc, GError **error)
{
  gsize vt_min = 0;
  const char *vt_name = NULL;

  if (desc == NULL)
    return refuse (error, ENS_PLUGIN_ERROR_ABI, "%s() returned NULL", ENS_PLUGIN_QUERY_SYMBOL);
  if (desc->abi_major != ENS_ABI_MAJOR)
    return refuse (error, ENS_PLUGIN_ERROR_ABI, "built for ABI %u.%u, this daemon speaks major %u", desc->abi_major,
                   desc->abi_minor, ENS_ABI_MAJOR);
  if (desc->abi_minor > ENS_ABI_MINOR)
    return refuse (error, ENS_PLUGIN_ERROR_ABI, "built for ABI %u.%u, newer than this daemon's %u.%u",
                   desc->abi_major, desc->abi_minor, ENS_ABI_MAJOR, ENS_ABI_MINOR);
  if (desc->struct_size < ENS_DESC_SIZE_1_0)
    return refuse (error, ENS_PLUGIN_ERROR_ABI, "descriptor is %u bytes, ABI %u.%u needs at least %u",
                   desc->struct_size, desc->abi_major, desc->abi_minor, (unsigned) ENS_DESC_SIZE_1_0);
  if (desc->id == NULL || desc->id[0] == '\0' || strlen (desc->id) > 64)
    return refuse (error, ENS_PLUGIN_ERROR_ABI, "descriptor has no id (or one over 64 bytes)");
  for (const char *p = desc->id; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return refuse (error, ENS_PLUGIN_ERROR_ABI, "id \"%s\" has characters other than [A-Za-z0-9._-]", desc->id);
  if (desc->init == NULL || desc->stop == NULL)
    return refuse (error, ENS_PLUGIN_ERROR_ABI, "descriptor lacks init() or stop()");

  switch (desc->kind)
    {
    case ENS_PLUGIN_KIND_TRANSPORT:
      return TRUE;
    case ENS_PLUGIN_KIND_AGENT:
      vt_min = ENS_AGENT_VTABLE_SIZE_1_0;
      vt_name = "EnsAgentVTable";
      break;
    case ENS_PLUGIN_KIND_ROUTER:
      vt_min = ENS_ROUTER_VTABLE_SIZE_1_0;
      vt_name = "EnsRouterVTable";
      break;
    case ENS_PLUGIN_KIND_PROVIDER:
      vt_min = ENS_PROVIDER_VTABLE_SIZE_1_0;
      vt_name = "EnsProviderVTable";
      break;
    default:
      return refuse (error, ENS_PLUGIN_ERROR_ABI, "unknown plugin kind %d", (int) desc->kind);
    }
  if (desc->vtable == NULL)
    return refuse (error, ENS_PLUGIN_ERROR_ABI, "%s plugin has no %s", ens_plugin_kind_name (desc->kind), vt_name);
  if (*(const guint32 *) desc->vtable < vt_min)
    return refuse (error, ENS_PLUGIN_ERROR_ABI, "%s is %u bytes, ABI 1.0 needs at least %u", vt_name,
                   *(const guint32 *) desc->vtable, (unsigned) vt_min);
  if (desc->kind == ENS_PLUGIN_KIND_AGENT)
    {
      const EnsAgentVTable *vt = desc->vtable;
      if (vt->name == NULL || vt->handle == NULL)
        return refuse (error, ENS_PLUGIN_ERROR_ABI, "agent vtable lacks name or handle()");
    }
  if (desc->kind == ENS_PLUGIN_KIND_ROUTER)
    {
      const EnsRouterVTable *vt = desc->vtable;
      if (vt->name == NULL || vt->choose == NULL)
        return refuse (error, ENS_PLUGIN_ERROR_ABI, "router vtable lacks name or choose()");
    }
  if (desc->kind == ENS_PLUGIN_KIND_PROVIDER)
    {
      const EnsProviderVTable *vt = desc->vtable;
      if (vt->backends == NULL || vt->complete == NULL)
        return refuse (error, ENS_PLUGIN_ERROR_ABI, "provider vtable lacks backends() or complete()");
    }
  return TRUE;
}

/* Opens and checks a file; the plugin is not started. */
static EnsPlugin *
open_plugin (EnsLoader *loader, const char *path, GError **error)
{
  g_autoptr (EnsPlugin) plugin = NULL;
  EnsPluginQueryFunc query;

  if (!check_file (path, error))
    return NULL;
  plugin = g_object_new (ENS_TYPE_PLUGIN, NULL);
  plugin->file = g_strdup (path);
  /* RTLD_LOCAL: one plugin's symbols never satisfy another's. */
  plugin->module = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (plugin->module == NULL)
    {
      refuse (error, ENS_PLUGIN_ERROR_FAILED, "dlopen failed: %s", dlerror ());
      return NULL;
    }
  query = (EnsPluginQueryFunc) dlsym (plugin->module, ENS_PLUGIN_QUERY_SYMBOL);
  if (query == NULL)
    {
      refuse (error, ENS_PLUGIN_ERROR_NO_SYMBOL, "no %s symbol: not an Ensemble plugin", ENS_PLUGIN_QUERY_SYMBOL);
      return NULL;
    }
  if (!check_desc (query (), error))
    return NULL;
  plugin->desc = query ();
  if (g_hash_table_contains (loader->ids, plugin->desc->id))
    {
      EnsPlugin *other = g_hash_table_lookup (loader->ids, plugin->desc->id);
      refuse (error, ENS_PLUGIN_ERROR_DUPLICATE, "id \"%s\" is already taken by %s", plugin->desc->id, other->file);
      return NULL;
    }
  return g_steal_pointer (&plugin);
}

static gboolean
start_plugin (EnsLoader *loader, EnsPlugin *plugin, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (g_hash_table_contains (loader->ids, plugin->desc->id))
    {
      EnsPlugin *other = g_hash_table_lookup (loader->ids, plugin->desc->id);
      return refuse (error, ENS_PLUGIN_ERROR_DUPLICATE, "id \"%s\" is already taken by %s", plugin->desc->id,
                     other->file);
    }
  plugin->instance = plugin->desc->init (loader->host, plugin, &local);
  if (plugin->instance == NULL)
    return refuse (error, ENS_PLUGIN_ERROR_INIT, "init failed: %s",
                   local ? local->message : "(the plugin gave no reason)");
  plugin->started = TRUE;
  if (plugin->desc->kind == ENS_PLUGIN_KIND_AGENT && !ens_dispatch_register_plugin_agent (plugin, &local))
    {
      plugin->desc->stop (plugin->instance);
      plugin->instance = NULL;
      plugin->started = FALSE;
      ens_dispatch_plugin_forget (plugin);
      return refuse (error, ENS_PLUGIN_ERROR_DUPLICATE, "%s", local->message);
    }
  if (plugin->desc->kind == ENS_PLUGIN_KIND_PROVIDER)
    ens_completion_add_provider (plugin);
  else if (plugin->desc->kind == ENS_PLUGIN_KIND_ROUTER)
    ens_completion_add_router (plugin);
  g_hash_table_insert (loader->ids, (gpointer) plugin->desc->id, plugin);
  g_ptr_array_add (loader->plugins, g_object_ref (plugin));
  return TRUE;
}

static gboolean
is_disabled (const EnsPluginDesc *desc, char **disabled)
{
  return disabled && g_strv_contains ((const char *const *) disabled, desc->id);
}

EnsPlugin *
ens_loader_load_file (EnsLoader *loader, const char *path, char **disabled, GError **error)
{
  g_autoptr (EnsPlugin) plugin = open_plugin (loader, path, error);

  if (plugin == NULL)
    return NULL;
  if (is_disabled (plugin->desc, disabled))
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
    if (strcmp (((EnsPlugin *) g_ptr_array_index (loader->plugins, i))->file, path) == 0)
      return TRUE;
  return FALSE;
}

static int
start_rank (EnsPlugin *plugin)
{
  /* Providers and routers first, agents next, transports last: a
   * transport starts listening only when everything it exposes is there. */
  switch (plugin->desc->kind)
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

static void
log_refusal (const char *path, GError *error)
{
  if (g_error_matches (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_DISABLED))
    g_message ("plugin skipped: %s: %s", path, error->message);
  else
    {
      g_warning ("plugin refused: %s: %s", path, error->message);
      ens_dbus_plugin_failed (path, error->message);
    }
}

void
ens_loader_load_dirs (EnsLoader *loader, char **dirs, char **disabled)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) opened = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; dirs && dirs[i]; i++)
    collect (files, dirs[i], 0);

  for (guint i = 0; i < files->len; i++)
    {
      const char *path = g_ptr_array_index (files, i);
      g_autoptr (GError) error = NULL;
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
          if (strcmp (other->desc->id, plugin->desc->id) == 0)
            {
              refuse (&error, ENS_PLUGIN_ERROR_DUPLICATE, "id \"%s\" is already taken by %s", plugin->desc->id,
                      other->file);
              g_clear_object (&plugin);
            }
        }
      if (plugin && is_disabled (plugin->desc, disabled))
        {
          refuse (&error, ENS_PLUGIN_ERROR_DISABLED, "%s is disabled by the disabled-plugins setting",
                  plugin->desc->id);
          g_clear_object (&plugin);
        }
      if (plugin == NULL)
        {
          loader->refused += !g_error_matches (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_DISABLED);
          log_refusal (path, error);
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
        {
          g_message ("plugin loaded: %s (%s %s) from %s", plugin->desc->id, ens_plugin_kind_name (plugin->desc->kind),
                     plugin->desc->version, plugin->file);
          ens_dbus_plugin_loaded (plugin);
        }
      else
        {
          loader->refused++;
          log_refusal (plugin->file, error);
        }
    }
}

static void
stop_index (EnsLoader *loader, guint index)
{
  EnsPlugin *plugin = g_ptr_array_index (loader->plugins, index);

  g_hash_table_remove (loader->ids, plugin->desc->id);
  if (plugin->started)
    {
      plugin->desc->stop (plugin->instance);
      plugin->instance = NULL;
      plugin->started = FALSE;
    }
  ens_dispatch_plugin_forget (plugin);
  ens_dbus_plugin_stopped (plugin);
  g_message ("plugin stopped: %s", plugin->desc->id);
  g_ptr_array_remove_index (loader->plugins, index);
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
    if (strcmp (((EnsPlugin *) g_ptr_array_index (loader->plugins, i))->desc->id, id) == 0)
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

      if (plugin == NULL || strcmp (plugin->desc->id, id) != 0)
        continue;
      if (start_plugin (loader, plugin, &error))
        {
          g_message ("plugin loaded: %s (%s %s) from %s", id, ens_plugin_kind_name (plugin->desc->kind),
                     plugin->desc->version, plugin->file);
          ens_dbus_plugin_loaded (plugin);
          return TRUE;
        }
      loader->refused++;
      log_refusal (path, error);
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

guint
ens_loader_refused_count (EnsLoader *loader)
{
  return loader->refused;
}
