/* ens-upstream-drain.c — reading the rest of an answer whose completion has
 * ended, so that its keep-alive connection goes back to the pool.
 *
 * After "[DONE]" or "message_stop" an upstream usually has nothing left to
 * send but the end of its chunked body, already in our buffer: one
 * non-blocking read finds the end, the stream is closed and libsoup
 * returns the connection to the pool at once.  Otherwise the drain reads on
 * asynchronously, at most DRAIN_BYTES for at most DRAIN_MS; past either it
 * gives up and the connection is dropped (an upstream that keeps talking
 * after its answer is not worth a pooled connection). */
#include "ens-upstream-private.h"

#define DRAIN_BYTES (64 * 1024)
#define DRAIN_MS 2000
#define DRAIN_CHUNK 4096

typedef struct {
  EnsUpstreamProvider *provider; /* NULL once it stopped the drain */
  GInputStream *input;
  GCancellable *cancel;
  guint timer;
  gsize left;
  char buf[DRAIN_CHUNK];
} Drain;

/* Closes @input (transfer full): at its end the connection is reused;
 * with @cancel cancelled libsoup drops it. */
static void
close_input (GInputStream *input, GCancellable *cancel)
{
  g_input_stream_close_async (input, G_PRIORITY_DEFAULT, cancel, NULL, NULL);
  g_object_unref (input);
}

static void
drop (GInputStream *input)
{
  g_autoptr (GCancellable) cancel = g_cancellable_new ();

  g_cancellable_cancel (cancel);
  close_input (input, cancel);
}

static void
drain_free (Drain *d)
{
  if (d->timer)
    g_source_remove (d->timer);
  if (d->provider)
    g_hash_table_remove (d->provider->drains, d);
  g_object_unref (d->cancel);
  g_free (d);
}

static gboolean
on_drain_timeout (gpointer user_data)
{
  Drain *d = user_data;

  d->timer = 0;
  g_cancellable_cancel (d->cancel); /* the pending read ends; it drops the connection */
  return G_SOURCE_REMOVE;
}

static void drain_next (Drain *d);

static void
on_drain_read (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Drain *d = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, NULL);

  if (n == 0)
    close_input (g_steal_pointer (&d->input), NULL);
  else if (n < 0 || (gsize) n >= d->left || g_cancellable_is_cancelled (d->cancel))
    {
      g_cancellable_cancel (d->cancel);
      close_input (g_steal_pointer (&d->input), d->cancel);
    }
  else
    {
      d->left -= (gsize) n;
      drain_next (d);
      return;
    }
  drain_free (d);
}

static void
drain_next (Drain *d)
{
  g_input_stream_read_async (d->input, d->buf, MIN (d->left, sizeof d->buf), G_PRIORITY_DEFAULT, d->cancel,
                             on_drain_read, d);
}

void
ens_upstream_drain (EnsUpstreamProvider *provider, GInputStream *input)
{
  gsize left = DRAIN_BYTES;
  Drain *d;

  if (g_input_stream_is_closed (input))
    {
      g_object_unref (input);
      return;
    }
  if (G_IS_POLLABLE_INPUT_STREAM (input) && g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (input)))
    {
      char buf[DRAIN_CHUNK];

      for (;;)
        {
          g_autoptr (GError) error = NULL;
          gssize n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (input), buf,
                                                               MIN (left, sizeof buf), NULL, &error);

          if (n == 0)
            {
              close_input (input, NULL); /* the end: the connection goes back to the pool */
              return;
            }
          if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            break;
          if (n < 0 || (gsize) n >= left)
            {
              drop (input);
              return;
            }
          left -= (gsize) n;
        }
    }
  d = g_new0 (Drain, 1);
  d->provider = provider;
  d->input = input;
  d->cancel = g_cancellable_new ();
  d->left = left;
  d->timer = g_timeout_add (DRAIN_MS, on_drain_timeout, d);
  g_hash_table_add (provider->drains, d);
  drain_next (d);
}

void
ens_upstream_drains_stop (EnsUpstreamProvider *provider)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, provider->drains);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      Drain *d = key;

      d->provider = NULL;
      if (d->timer)
        g_source_remove (d->timer);
      d->timer = 0;
      g_cancellable_cancel (d->cancel);
    }
  g_hash_table_remove_all (provider->drains);
}
