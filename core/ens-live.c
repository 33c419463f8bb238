/* ens-live.c — settings changed while the daemon runs take effect without a
 * restart: a plugin disabled stops, one enabled starts, a transport whose
 * address or port changed restarts (rebinds) or, if it failed to start,
 * tries again, new plugin folders are scanned; the request deadline and
 * the idle timeout apply at once; budget, router policy and limits are
 * read where they are used (next request, next connection).  A
 * router-policy that names no loaded router is refused and the policy in
 * force kept. */
#include "ens-live.h"

#include <string.h>

/* Keys a plugin reads when it starts: it restarts to take them. */
static const struct {
  const char *key;
  const char *plugins[3];
} restarts[] = {
  { "http-address", { "transport-http" } },
  { "http-port", { "transport-http" } },
  { "http-token-file", { "transport-http", "transport-websocket" } },
  { "http-cors-origins", { "transport-http" } },
  { "http-max-body-bytes", { "transport-http" } },
  { "http-request-timeout-ms", { "transport-http" } },
  { "http-access-log", { "transport-http" } },
  { "ws-address", { "transport-websocket" } },
  { "ws-port", { "transport-websocket" } },
  { "ws-max-message-bytes", { "transport-websocket" } },
  { "ws-status-interval-ms", { "transport-websocket" } },
  { "socket-dir", { "transport-unix" } },
  { "native-socket", { "transport-unix" } },
  { "ksi-sockets", { "transport-unix" } },
  { "centerfire-sockets", { "transport-unix" } },
  { "centerfire-socket-dir", { "transport-unix" } },
  { "providers", { "provider-openai", "provider-anthropic", "provider-command" } },
};

/* Read at start only: say so rather than pretend. */
static const char *const at_restart[] = { "state-dir", "node-id", "dbus-bus", NULL };

static char **
disabled_now (EnsDaemon *d)
{
  return ens_config_get_strv (d->config, "disabled-plugins");
}

static void
apply_disabled (EnsDaemon *d)
{
  g_auto (GStrv) disabled = disabled_now (d);
  g_auto (GStrv) dirs = ens_config_get_strv (d->config, "plugin-dirs");
  g_autoptr (GPtrArray) loaded = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *plugins = ens_loader_plugins (d->loader);

  for (guint i = 0; i < plugins->len; i++)
    g_ptr_array_add (loaded, g_strdup (ens_plugin_get_id (g_ptr_array_index (plugins, i))));
  /* stop what is now disabled */
  for (guint i = 0; i < loaded->len; i++)
    if (g_strv_contains ((const char *const *) disabled, g_ptr_array_index (loaded, i)))
      {
        g_message ("settings: %s disabled", (char *) g_ptr_array_index (loaded, i));
        ens_loader_stop_plugin (d->loader, g_ptr_array_index (loaded, i));
      }
  /* start what was disabled before and is not any more: a rescan loads
   * every plugin found that is neither running nor disabled */
  ens_loader_load_dirs (d->loader, dirs, disabled);
}

static void
on_setting_changed (const char *key, gpointer data)
{
  EnsDaemon *d = data;

  g_message ("settings: %s changed", key);
  if (strcmp (key, "disabled-plugins") == 0 || strcmp (key, "plugin-dirs") == 0)
    {
      apply_disabled (d);
      return;
    }
  if (strcmp (key, "request-timeout-ms") == 0)
    {
      ens_requests_set_default_timeout (d->requests, ens_config_get_uint (d->config, key));
      return;
    }
  if (strcmp (key, "idle-timeout-seconds") == 0)
    {
      ens_clients_set_idle_timeout (d->clients, ens_config_get_uint (d->config, key));
      return;
    }
  if (g_strv_contains (at_restart, key))
    {
      g_message ("settings: %s takes effect when the daemon restarts", key);
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (restarts); i++)
    if (strcmp (restarts[i].key, key) == 0)
      {
        g_auto (GStrv) dirs = ens_config_get_strv (d->config, "plugin-dirs");
        for (guint j = 0; j < G_N_ELEMENTS (restarts[i].plugins) && restarts[i].plugins[j]; j++)
          if (ens_loader_is_running (d->loader, restarts[i].plugins[j]))
            {
              g_message ("settings: restarting %s for %s", restarts[i].plugins[j], key);
              ens_loader_restart (d->loader, dirs, restarts[i].plugins[j]);
            }
          else if (ens_loader_has_failed (d->loader, restarts[i].plugins[j]))
            {
              /* It failed with the old value (a port taken): try the new one. */
              g_message ("settings: starting %s again for %s", restarts[i].plugins[j], key);
              ens_loader_start_id (d->loader, dirs, restarts[i].plugins[j]);
            }
        return;
      }
  /* Everything else (budget, router policy, limits) is read where used. */
}

/* router-policy names a router plugin: one that is not loaded is refused
 * (the policy in force stays), never left to fail every completion. */
static gboolean
check_policy (const char *key, GVariant *value, char **why, gpointer data)
{
  EnsDaemon *d = data;

  (void) key;
  return ens_backends_has_policy (d->backends, g_variant_get_string (value, NULL), why);
}

void
ens_live_start (EnsDaemon *d)
{
  g_autofree char *policy = ens_config_get_path (d->config, "router-policy");
  g_autofree char *why = NULL;

  ens_config_watch (d->config, on_setting_changed, d);
  ens_config_set_check (d->config, "router-policy", check_policy, d);
  if (policy && !ens_backends_has_policy (d->backends, policy, &why))
    {
      const char *instead = ens_backends_some_policy (d->backends, "multifactor");

      if (instead)
        {
          g_warning ("setting router-policy: %s; using %s", why, instead);
          ens_config_keep (d->config, "router-policy", g_variant_new_string (instead));
        }
      else
        g_warning ("setting router-policy: %s", why);
    }
}
