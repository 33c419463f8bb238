/* ens-http-sse.c — one Server-Sent Events stream's output (see ens-http-sse.h). */
#include "ens-http-sse.h"
#include "ens-listener.h"
#include "ens-outbox.h"

/* What libsoup may hold unwritten: it grows no queue of its own past this
 * (or past one bigger frame). */
#define IN_FLIGHT_BYTES (64 * 1024)

struct _EnsHttpSse {
  SoupServerMessage *msg;
  EnsOutbox *out;
  GQueue in_flight; /* sizes (GSIZE_TO_POINTER) of the chunks libsoup has, oldest first */
  gsize in_flight_bytes;
  EnsHttpSseNoticeFunc notice;
  gpointer notice_data;
  gulong wrote_chunk_id;
  gboolean ending, cut;
};

static void
hand_to_soup (EnsHttpSse *sse, GBytes *frame)
{
  gsize size = g_bytes_get_size (frame);

  soup_message_body_append_bytes (soup_server_message_get_response_body (sse->msg), frame);
  g_queue_push_tail (&sse->in_flight, GSIZE_TO_POINTER (size));
  sse->in_flight_bytes += size;
}

/* Hands libsoup what it may hold, and the notice once drops were made and
 * the queue drained. */
static void
pump (EnsHttpSse *sse)
{
  gboolean handed = FALSE;
  guint64 count, total;

  if (sse->cut)
    return;
  while (!ens_outbox_is_empty (sse->out) && (sse->in_flight_bytes < IN_FLIGHT_BYTES || sse->ending))
    {
      g_autoptr (GBytes) frame = ens_outbox_pop (sse->out);
      hand_to_soup (sse, frame);
      handed = TRUE;
      if (sse->notice && ens_outbox_take_dropped (sse->out, &count, &total))
        {
          g_autoptr (GBytes) notice = sse->notice (count, total, sse->notice_data);
          ens_outbox_push (sse->out, notice, FALSE);
        }
    }
  if (sse->ending && ens_outbox_is_empty (sse->out))
    {
      soup_message_body_complete (soup_server_message_get_response_body (sse->msg));
      handed = TRUE;
    }
  if (handed)
    soup_server_message_unpause (sse->msg); /* libsoup pauses a stream it has written out */
}

static void
on_wrote_chunk (SoupServerMessage *msg, EnsHttpSse *sse)
{
  (void) msg;
  if (sse->in_flight.length > 0)
    sse->in_flight_bytes -= GPOINTER_TO_SIZE (g_queue_pop_head (&sse->in_flight));
  pump (sse);
}

EnsHttpSse *
ens_http_sse_stream_new (SoupServerMessage *msg, guint max_messages, gsize max_bytes)
{
  EnsHttpSse *sse = g_new0 (EnsHttpSse, 1);

  sse->msg = msg;
  sse->out = ens_outbox_new (max_messages, max_bytes);
  g_queue_init (&sse->in_flight);
  /* Let libsoup forget each chunk once written, not keep the whole stream. */
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
  sse->wrote_chunk_id = g_signal_connect (msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), sse);
  return sse;
}

void
ens_http_sse_stream_free (EnsHttpSse *sse)
{
  if (sse == NULL)
    return;
  g_signal_handler_disconnect (sse->msg, sse->wrote_chunk_id);
  ens_outbox_free (sse->out);
  g_queue_clear (&sse->in_flight);
  g_free (sse);
}

void
ens_http_sse_stream_set_notice (EnsHttpSse *sse, EnsHttpSseNoticeFunc notice, gpointer notice_data)
{
  sse->notice = notice;
  sse->notice_data = notice_data;
}

guint
ens_http_sse_stream_push (EnsHttpSse *sse, GBytes *frame, gboolean droppable)
{
  guint dropped;

  if (sse->cut || sse->ending || g_bytes_get_size (frame) == 0)
    return 0;
  if (!droppable && ens_outbox_over (sse->out, 2))
    {
      /* Twice the limits of frames that may not be dropped: the client does
       * not read.  Cut the connection; libsoup then ends the call. */
      sse->cut = TRUE;
      ens_outbox_clear (sse->out);
      ens_listener_cut (sse->msg);
      return 0;
    }
  dropped = ens_outbox_push (sse->out, frame, droppable);
  pump (sse);
  return dropped;
}

void
ens_http_sse_stream_end (EnsHttpSse *sse)
{
  if (sse->ending || sse->cut)
    return;
  sse->ending = TRUE;
  pump (sse);
}

guint64
ens_http_sse_stream_dropped (EnsHttpSse *sse)
{
  return ens_outbox_dropped_total (sse->out);
}
