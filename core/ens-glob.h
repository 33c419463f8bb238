/* ens-glob.h — Redis-style glob matching (ens-glob.c): the daemon's bus
 * patterns, also compiled into transport-redis so a durable-topic pattern
 * means what a subscription pattern means.  GLib only. */
#pragma once

#include <glib.h>

gboolean ens_glob_match (const char *pattern, const char *string);
gboolean ens_glob_is_pattern (const char *s);
