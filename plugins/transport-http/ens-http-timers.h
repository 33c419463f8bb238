/* ens-http-timers.h — private to transport-http: slow clients.  The whole
 * request (headers and body) must arrive within a time; a request that
 * does not has its connection cut. */
#pragma once

#include <libsoup/soup.h>

typedef struct _EnsHttpTimers EnsHttpTimers;

/* Timers of @timeout_ms; each one that fires adds one to *@timed_out
 * (which must outlive the timers). */
EnsHttpTimers *ens_http_timers_new (guint timeout_ms, guint64 *timed_out);
/* Starts @msg's timer (its request just began); the timer holds a
 * reference to @msg until it is cleared or fires. */
void ens_http_timers_start (EnsHttpTimers *timers, SoupServerMessage *msg);
/* Stops @msg's timer, if any (its request was read, ended, or is not the
 * server's any more). */
void ens_http_timers_clear (EnsHttpTimers *timers, SoupServerMessage *msg);
/* Stops every timer. */
void ens_http_timers_free (EnsHttpTimers *timers);
