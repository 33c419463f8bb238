/* ens-glob.h — Redis-style glob matching: '*' any run, '?' one byte,
 * '[abc]' '[^a]' '[a-z]' classes, '\x' a literal x.
 *
 * Used by the daemon's bus (subscription patterns) and by transport-redis
 * (durable-topic patterns, and PSUBSCRIBE patterns it maps bus patterns
 * onto), so that a pattern means the same thing everywhere.
 *
 * Why a static library and not a host-table entry: matching is a pure
 * function with no daemon state, called on the publish path for every
 * pattern; a host entry would cost an indirect call per match and an
 * append-only ABI commitment for a few dozen lines of code.  Linked
 * statically, each binary carries its own copy (hidden in a plugin), one
 * source keeps the semantics identical, and no ABI is involved.
 * GLib only. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when @string matches @pattern; both (transfer none), NUL-terminated.
 * Iterative: no recursion, whatever the pattern. */
gboolean ens_glob_match (const char *pattern, const char *string);
/* TRUE when @s holds a glob character (* ? [ \), i.e. is a pattern rather
 * than a plain topic. */
gboolean ens_glob_is_pattern (const char *s);

G_END_DECLS
