/* ens-config.h — the daemon's settings (ens-config.c): GSettings
 * org.ensemble.Daemon, or a keyfile, plus command-line overrides. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _EnsConfig EnsConfig;
typedef void (*EnsConfigChanged) (const char *key, gpointer data);

/* TRUE when this binary runs from the build tree (plugins and schema there). */
gboolean ens_running_uninstalled (void);
/* (transfer full) an install-time path, relocated if this binary runs from
 * a moved installation tree. */
char *ens_installed_path (const char *configured);
/* @keyfile: NULL for the default GSettings backend. */
EnsConfig *ens_config_new (const char *keyfile, GError **error);
void ens_config_free (EnsConfig *config);
/* A command-line override for this run; @value is (transfer floating/full). */
void ens_config_override (EnsConfig *config, const char *key, GVariant *value);
/* (transfer full) effective value; NULL for an unknown key. */
GVariant *ens_config_get (EnsConfig *config, const char *key);
guint ens_config_get_uint (EnsConfig *config, const char *key);
char *ens_config_get_path (EnsConfig *config, const char *key);
char **ens_config_get_strv (EnsConfig *config, const char *key);
/* Calls @func for each key whose value in force changes while the daemon
 * runs (not for keys the command line overrides, not for invalid edits). */
void ens_config_watch (EnsConfig *config, EnsConfigChanged func, gpointer data);
/* Says whether @value (transfer none) may be taken for @key; FALSE with
 * *@why (transfer full) set when not. */
typedef gboolean (*EnsConfigCheck) (const char *key, GVariant *value, char **why, gpointer data);
/* A value of @key that @check refuses while the daemon runs is reported and
 * the value in force kept, as for a value the schema refuses.  One check a
 * key; @data is borrowed for the config's life. */
void ens_config_set_check (EnsConfig *config, const char *key, EnsConfigCheck check, gpointer data);
/* Keeps @value (transfer none) in force for @key instead of the stored one,
 * until the stored one changes to a value that is taken. */
void ens_config_keep (EnsConfig *config, const char *key, GVariant *value);
/* (transfer full) settings of another schema on the same backend; NULL if
 * the schema is unknown or @path is not "/.../" */
GSettings *ens_config_settings_new (EnsConfig *config, const char *schema_id, const char *path);

G_END_DECLS
