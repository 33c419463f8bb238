/* ens-http-sse.h — private to transport-http: the output of one
 * Server-Sent Events stream, through an outbox (plugins/common/outbox).
 *
 * libsoup writes whatever is appended to a response body and, by default,
 * keeps every chunk until the response ends; a stream instead hands libsoup
 * at most about 64 KiB at a time (more only for one bigger frame), lets it
 * drop what it wrote, and keeps the rest in its outbox, where the
 * slow-consumer policy applies: the oldest events make room, the client is
 * told by the stream's notice, frames that are not events are never
 * dropped, and a client that lets twice the limits of them pile up is cut
 * off.  Main loop only. */
#pragma once

#include <libsoup/soup.h>

typedef struct _EnsHttpSse EnsHttpSse;

/* Makes the drop notice, (transfer full) one whole SSE frame ("event: ...\n
 * data: ...\n\n"), for @count events dropped since the last one, @total
 * ever. */
typedef GBytes *(*EnsHttpSseNoticeFunc) (guint64 count, guint64 total, gpointer data);

/* (transfer full) a stream writing into @msg's response body (transfer
 * none; it must outlive the stream), limits in messages and bytes. */
EnsHttpSse *ens_http_sse_stream_new (SoupServerMessage *msg, guint max_messages, gsize max_bytes);
/* Stops writing and releases what is queued; @msg is left as it is. */
void ens_http_sse_stream_free (EnsHttpSse *sse);
/* The notice for drops; @notice_data (transfer none) must outlive @sse. */
void ens_http_sse_stream_set_notice (EnsHttpSse *sse, EnsHttpSseNoticeFunc notice, gpointer notice_data);
/* Queues one frame (transfer none, shared: never copied; never empty);
 * @droppable: an event.  Returns how many events this dropped. */
guint ens_http_sse_stream_push (EnsHttpSse *sse, GBytes *frame, gboolean droppable);
/* Ends the response once everything queued is written. */
void ens_http_sse_stream_end (EnsHttpSse *sse);
/* Events dropped, ever. */
guint64 ens_http_sse_stream_dropped (EnsHttpSse *sse);
