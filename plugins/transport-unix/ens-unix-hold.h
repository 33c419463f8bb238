/* ens-unix-hold.h — private to transport-unix: events held back for a
 * peer that is not ready yet (a dialect entry's ENS_DIALECT_HOLD_RESULTS).
 *
 * A connection that asked (the "asker": KSI's completion.sock connection)
 * opens a hold on a key (its reply's request_id).  Until the asker is gone
 * or the time is up, the bytes of every event carrying that key, for
 * whichever connection ("target"), wait here in order; then they go out
 * through the release function.  Connections are opaque pointers here. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _EnsUnixHolds EnsUnixHolds;

/* Writes @bytes (transfer none) to @target, still open. */
typedef void (*EnsUnixReleaseFunc) (gpointer target, GBytes *bytes, gpointer user_data);
/* The time of @asker's hold is up: close it (which ends its holds). */
typedef void (*EnsUnixExpiredFunc) (gpointer asker, gpointer user_data);

EnsUnixHolds *ens_unix_holds_new (EnsUnixReleaseFunc release, EnsUnixExpiredFunc expired, gpointer user_data);
/* Drops what is held without releasing it (the transport stops). */
void ens_unix_holds_free (EnsUnixHolds *holds);
/* Opens a hold of @key (transfer none) for @asker, for at most @ms. */
void ens_unix_holds_begin (EnsUnixHolds *holds, const char *key, gpointer asker, guint ms);
/* TRUE when @key is held: @bytes (transfer none) for @target wait. */
gboolean ens_unix_holds_take (EnsUnixHolds *holds, const char *key, gpointer target, GBytes *bytes);
/* @asker is gone (or its time is up): what it held goes out, in order. */
void ens_unix_holds_end (EnsUnixHolds *holds, gpointer asker);
/* @target is gone: what waited for it is dropped. */
void ens_unix_holds_forget_target (EnsUnixHolds *holds, gpointer target);
/* Whether anything is held at all (the cheap test before looking keys up). */
gboolean ens_unix_holds_any (EnsUnixHolds *holds);

G_END_DECLS
