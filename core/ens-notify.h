/* ens-notify.h — the systemd service manager's notification protocol
 * (sd_notify), spoken directly: READY, STATUS, STOPPING and WATCHDOG
 * datagrams to $NOTIFY_SOCKET, with no libsystemd. */
#pragma once

#include "ens-daemon.h"

typedef struct _EnsNotify EnsNotify;

/* (transfer full) the notifier for $NOTIFY_SOCKET, or NULL when the
 * daemon was not started by a service manager that asks for it (or the
 * variable is unusable: one warning says why).  Unsets NOTIFY_SOCKET so
 * that processes the daemon spawns do not speak for it. */
EnsNotify *ens_notify_new (void);

/* Sends one notification ("READY=1\nSTATUS=..."); FALSE with @error when
 * the datagram could not be sent. */
gboolean ens_notify_send (EnsNotify *n, const char *state, GError **error);

/* READY=1 with a STATUS describing @d; starts the WATCHDOG=1 keep-alive
 * when $WATCHDOG_USEC asks for one (at half its period), and a STATUS
 * update every time what it says changes. */
void ens_notify_ready (EnsNotify *n, EnsDaemon *d);

/* STOPPING=1, then frees @n (NULL is fine). */
void ens_notify_stopping_and_free (EnsNotify *n);
