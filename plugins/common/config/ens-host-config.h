/* ens-host-config.h — typed reads of the daemon's settings through the host
 * table (the static library plugins/common/config).
 *
 * Each getter asks host->config_get() afresh, so a setting changed while the
 * daemon runs is seen by the next read; a key the daemon does not know, or
 * one of another type than asked for, gives @fallback. */
#pragma once

#include <ensemble/ensemble.h>

G_BEGIN_DECLS

guint ens_host_config_uint (const EnsHost *host, EnsPlugin *self, const char *key, guint fallback);
gint ens_host_config_int (const EnsHost *host, EnsPlugin *self, const char *key, gint fallback);
gboolean ens_host_config_bool (const EnsHost *host, EnsPlugin *self, const char *key, gboolean fallback);
double ens_host_config_double (const EnsHost *host, EnsPlugin *self, const char *key, double fallback);
/* (transfer full) the string setting, or a copy of @fallback (may be NULL). */
char *ens_host_config_string (const EnsHost *host, EnsPlugin *self, const char *key, const char *fallback);
/* (transfer full) the string-list setting; an empty list, never NULL, when
 * the key is unknown or no list. */
char **ens_host_config_strv (const EnsHost *host, EnsPlugin *self, const char *key);

/* Reads the bearer token named by the setting @key (a path such as
 * http-token-file): the file's first line, white space trimmed.  An empty
 * path means no token: TRUE with *@token NULL.  A file that cannot be read
 * or holds no token is an error naming @key.  *@token is (transfer full). */
gboolean ens_host_config_token (const EnsHost *host, EnsPlugin *self, const char *key, char **token, GError **error);

G_END_DECLS
