/* ens-outbox.h — one connection's outbound queue and its slow-consumer
 * policy (the static library plugins/common/outbox), shared by the Unix
 * sockets, WebSocket and HTTP Server-Sent Events.
 *
 * An outbox holds messages as GBytes, by reference: the bytes the core
 * encoded once for an event are the same for every subscriber, and no
 * outbox copies them.  It is bounded twice, in messages (max-queue-messages)
 * and in bytes (max-queue-bytes):
 *
 *   - an event that does not fit makes room by dropping the oldest queued
 *     events (never one already partly written); if only replies are queued
 *     the new event itself is dropped.  An event bigger than the byte limit
 *     still passes when the queue is otherwise empty;
 *   - replies are never dropped: they are queued past the limits, and the
 *     transport stops reading the connection while ens_outbox_full() (or,
 *     where it cannot stop reading, closes it once ens_outbox_over());
 *   - drops are counted, and once the queue has drained to half of both
 *     limits ens_outbox_take_dropped() hands the count to the transport,
 *     which queues its dialect's notice.
 *
 * Main loop only; no locking. */
#pragma once

#include <glib.h>
#include <sys/uio.h>

G_BEGIN_DECLS

typedef struct _EnsOutbox EnsOutbox;

/* (transfer full) an empty outbox; limits of 0 mean 1. */
EnsOutbox *ens_outbox_new (guint max_messages, gsize max_bytes);
/* Frees @outbox and releases every queued message. */
void ens_outbox_free (EnsOutbox *outbox);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsOutbox, ens_outbox_free)

/* Releases every queued message (the connection is gone); the drop counts
 * stay. */
void ens_outbox_clear (EnsOutbox *outbox);

/* New limits; queued messages stay, later pushes follow the new limits. */
void ens_outbox_set_limits (EnsOutbox *outbox, guint max_messages, gsize max_bytes);

/* Queues @bytes, (transfer none): the outbox takes its own reference.
 * @droppable: an event, which the policy may drop; FALSE for a reply.
 * Returns how many events the push dropped to make room, the new one
 * included when it could not be queued. */
guint ens_outbox_push (EnsOutbox *outbox, GBytes *bytes, gboolean droppable);

/* Messages queued, and the bytes they hold (a partly written head counts
 * whole: its memory is still held). */
guint ens_outbox_length (EnsOutbox *outbox);
gsize ens_outbox_bytes (EnsOutbox *outbox);
gboolean ens_outbox_is_empty (EnsOutbox *outbox);
/* At either limit: stop reading requests. */
gboolean ens_outbox_full (EnsOutbox *outbox);
/* At or under half of both limits: reading may resume. */
gboolean ens_outbox_low (EnsOutbox *outbox);
/* Past @factor times either limit (replies alone get there): for a
 * transport that cannot stop reading, time to close the connection. */
gboolean ens_outbox_over (EnsOutbox *outbox, guint factor);

/* ---- writing to a byte stream (a socket) ---- */

/* Points up to @max entries of @iov at the queued bytes, the head from
 * where writing stopped; returns how many.  Valid until the next call
 * that changes the outbox. */
guint ens_outbox_peek (EnsOutbox *outbox, struct iovec *iov, guint max);
/* @written bytes of what ens_outbox_peek() showed went out. */
void ens_outbox_consume (EnsOutbox *outbox, gsize written);

/* ---- writing message by message (frames, chunks) ---- */

/* (transfer full) the oldest message, removed; NULL when empty.  Not for
 * an outbox whose head was partly consumed. */
GBytes *ens_outbox_pop (EnsOutbox *outbox);

/* ---- drops ---- */

/* TRUE when events were dropped since the last report and the queue is
 * now low: *@count (since the last report) and *@total (ever) are set and
 * the count starts again.  The caller queues its notice (not droppable). */
gboolean ens_outbox_take_dropped (EnsOutbox *outbox, guint64 *count, guint64 *total);
/* Events this outbox dropped, ever. */
guint64 ens_outbox_dropped_total (EnsOutbox *outbox);

G_END_DECLS
