/* ens-host-config.c — typed reads of the daemon's settings (see ens-host-config.h). */
#include "ens-host-config.h"

#include <string.h>

/* (transfer full) the setting if it is of @type, else NULL. */
static GVariant *
get_typed (const EnsHost *host, EnsPlugin *self, const char *key, const GVariantType *type)
{
  GVariant *v = host->config_get (self, key);

  if (v && !g_variant_is_of_type (v, type))
    g_clear_pointer (&v, g_variant_unref);
  return v;
}

guint
ens_host_config_uint (const EnsHost *host, EnsPlugin *self, const char *key, guint fallback)
{
  g_autoptr (GVariant) v = get_typed (host, self, key, G_VARIANT_TYPE_UINT32);

  return v ? g_variant_get_uint32 (v) : fallback;
}

gint
ens_host_config_int (const EnsHost *host, EnsPlugin *self, const char *key, gint fallback)
{
  g_autoptr (GVariant) v = get_typed (host, self, key, G_VARIANT_TYPE_INT32);

  return v ? g_variant_get_int32 (v) : fallback;
}

gboolean
ens_host_config_bool (const EnsHost *host, EnsPlugin *self, const char *key, gboolean fallback)
{
  g_autoptr (GVariant) v = get_typed (host, self, key, G_VARIANT_TYPE_BOOLEAN);

  return v ? g_variant_get_boolean (v) : fallback;
}

double
ens_host_config_double (const EnsHost *host, EnsPlugin *self, const char *key, double fallback)
{
  g_autoptr (GVariant) v = get_typed (host, self, key, G_VARIANT_TYPE_DOUBLE);

  return v ? g_variant_get_double (v) : fallback;
}

char *
ens_host_config_string (const EnsHost *host, EnsPlugin *self, const char *key, const char *fallback)
{
  g_autoptr (GVariant) v = get_typed (host, self, key, G_VARIANT_TYPE_STRING);

  return v ? g_variant_dup_string (v, NULL) : g_strdup (fallback);
}

char **
ens_host_config_strv (const EnsHost *host, EnsPlugin *self, const char *key)
{
  g_autoptr (GVariant) v = get_typed (host, self, key, G_VARIANT_TYPE_STRING_ARRAY);

  return v ? g_variant_dup_strv (v, NULL) : g_new0 (char *, 1);
}

gboolean
ens_host_config_token (const EnsHost *host, EnsPlugin *self, const char *key, char **token, GError **error)
{
  g_autofree char *path = ens_host_config_string (host, self, key, "");
  g_autofree char *contents = NULL;

  *token = NULL;
  if (path[0] == '\0')
    return TRUE;
  if (!g_file_get_contents (path, &contents, NULL, error))
    return FALSE;
  g_strstrip (contents);
  if (contents[0] == '\0')
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s %s is empty", key, path);
      return FALSE;
    }
  *token = g_strstrip (g_strndup (contents, strcspn (contents, "\r\n")));
  return TRUE;
}
