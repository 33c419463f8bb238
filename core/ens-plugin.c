/* ens-plugin.c — one plugin file: checked before any of its code runs
 * beyond the query function, wrapped in a GObject while it is loaded.
 *
 * A plugin is refused, with a reason naming what is wrong, when its file is
 * writable by others or foreign-owned, it will not dlopen, it lacks the
 * query symbol, its ABI major differs or its minor is newer, or its structs
 * are shorter than their ABI minor defines. */
#include "ens-plugin-private.h"
#include "ens-json.h"

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

gboolean
ens_plugin_reads_data_lazily (EnsPlugin *plugin)
{
  const EnsPluginDesc *desc = plugin->desc;

  return desc && desc->abi_minor >= 4 && (desc->flags & ENS_PLUGIN_FLAG_LAZY_DATA) != 0;
}

const char *
ens_plugin_get_id (EnsPlugin *plugin)
{
  return plugin->desc->id;
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

/* ------------------------------------------------------------------ checks */

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

/* ------------------------------------------------------------------ life */

EnsPlugin *
ens_plugin_open (const char *path, GError **error)
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
  return g_steal_pointer (&plugin);
}

gboolean
ens_plugin_start (EnsPlugin *plugin, const EnsHost *host, GError **error)
{
  g_autoptr (GError) local = NULL;

  plugin->instance = plugin->desc->init (host, plugin, &local);
  if (plugin->instance == NULL)
    return refuse (error, ENS_PLUGIN_ERROR_INIT, "init failed: %s",
                   local ? local->message : "(the plugin gave no reason)");
  plugin->started = TRUE;
  return TRUE;
}

void
ens_plugin_stop (EnsPlugin *plugin)
{
  if (!plugin->started)
    return;
  plugin->desc->stop (plugin->instance);
  plugin->instance = NULL;
  plugin->started = FALSE;
}
