/* ens-fake-server.c — raw scripted answers on a SoupServerMessage (see the
 * header). */
#include "ens-fake-server.h"

#include <string.h>

/* (transfer full) a timeout (or, for 0 ms, an idle) source on the
 * thread-default main context, where libsoup serves the message. */
static GSource *
add_source (guint ms, GSourceFunc func, gpointer data)
{
  GSource *source = ms ? g_timeout_source_new (ms) : g_idle_source_new ();

  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, g_main_context_get_thread_default ());
  return source;
}

static void
clear_source (GSource **source)
{
  if (*source)
    {
      g_source_destroy (*source);
      g_source_unref (*source);
      *source = NULL;
    }
}

typedef struct {
  SoupServerMessage *msg; /* ref */
  GPtrArray *pieces;      /* char * */
  FakeBodyPlan plan;
  guint next;             /* pieces appended */
  GQueue chunk_pieces;    /* pieces in each appended chunk not yet written (GUINT_TO_POINTER) */
  guint written;          /* pieces the server wrote to the socket */
  GSource *timer;
  gboolean headers_out;
  gboolean ended;         /* the body is complete or cut: the client has all it gets */
  gboolean finished;      /* the message is gone */
  gulong finished_id, disconnected_id, wrote_chunk_id, wrote_headers_id;
} Body;

static void
body_free (Body *b)
{
  clear_source (&b->timer);
  g_signal_handler_disconnect (b->msg, b->finished_id);
  g_signal_handler_disconnect (b->msg, b->disconnected_id);
  g_signal_handler_disconnect (b->msg, b->wrote_chunk_id);
  g_signal_handler_disconnect (b->msg, b->wrote_headers_id);
  g_object_unref (b->msg);
  g_ptr_array_unref (b->pieces);
  g_queue_clear (&b->chunk_pieces);
  g_free (b);
}

static gboolean
body_free_idle (gpointer data)
{
  body_free (data);
  return G_SOURCE_REMOVE;
}

static void
on_body_gone (SoupServerMessage *msg, gpointer data)
{
  Body *b = data;

  if (b->plan.closed)
    *b->plan.closed = TRUE;
  if (b->finished)
    return;
  b->finished = TRUE;
  if (!b->ended && b->plan.aborts)
    (*b->plan.aborts)++;
  clear_source (&b->timer);
  /* Not from inside the signal emission. */
  g_source_unref (add_source (0, body_free_idle, b));
}

/* FAKE_BODY_CUT: once every piece is on the socket, shut it down; the
 * client sees the connection end in the middle of the chunked body. */
static void
maybe_cut (Body *b)
{
  GSocket *socket;

  if (b->plan.end != FAKE_BODY_CUT || b->ended || !b->headers_out || b->written < b->pieces->len)
    return;
  b->ended = TRUE;
  socket = soup_server_message_get_socket (b->msg);
  if (socket)
    g_socket_shutdown (socket, TRUE, TRUE, NULL);
}

static void
on_wrote_headers (SoupServerMessage *msg, gpointer data)
{
  Body *b = data;

  b->headers_out = TRUE;
  maybe_cut (b);
}

static void
on_wrote_chunk (SoupServerMessage *msg, gpointer data)
{
  Body *b = data;

  b->written += GPOINTER_TO_UINT (g_queue_pop_head (&b->chunk_pieces));
  maybe_cut (b);
}

static gboolean body_step (gpointer data);

/* The pause before piece @index. */
static guint
delay_before (Body *b, guint index)
{
  return (b->plan.gap_at >= 0 && index == (guint) b->plan.gap_at) ? b->plan.gap_ms : b->plan.interval_ms;
}

static gboolean
body_step (gpointer data)
{
  Body *b = data;
  SoupMessageBody *body = soup_server_message_get_response_body (b->msg);
  guint n = b->pieces->len;

  g_clear_pointer (&b->timer, g_source_unref); /* being dispatched: removed when it returns */
  if (b->finished)
    return G_SOURCE_REMOVE;
  if (b->next < n)
    {
      /* Pieces due at the same time go out as one HTTP chunk, in one write. */
      GString *chunk = g_string_new (NULL);
      g_autoptr (GBytes) bytes = NULL;
      guint count = 0;

      do
        {
          g_string_append (chunk, g_ptr_array_index (b->pieces, b->next++));
          count++;
        }
      while (b->next < n && delay_before (b, b->next) == 0);
      g_queue_push_tail (&b->chunk_pieces, GUINT_TO_POINTER (count));
      bytes = g_string_free_to_bytes (chunk);
      soup_message_body_append_bytes (body, bytes);
    }
  else if (b->plan.end == FAKE_BODY_REPEAT && n > 0)
    {
      const char *p = g_ptr_array_index (b->pieces, n - 1);

      g_queue_push_tail (&b->chunk_pieces, GUINT_TO_POINTER (1));
      soup_message_body_append (body, SOUP_MEMORY_COPY, p, strlen (p));
    }
  if (b->next >= n && b->plan.end == FAKE_BODY_COMPLETE)
    {
      b->ended = TRUE;
      soup_message_body_complete (body);
      soup_server_message_unpause (b->msg);
      return G_SOURCE_REMOVE; /* freed when the message finishes */
    }
  soup_server_message_unpause (b->msg);
  if (b->next < n || b->plan.end == FAKE_BODY_REPEAT)
    b->timer = add_source (b->next < n ? delay_before (b, b->next) : b->plan.interval_ms, body_step, b);
  return G_SOURCE_REMOVE;
}

/* The first step: headers and the first piece go out together. */
static gboolean
body_start (gpointer data)
{
  Body *b = data;

  g_clear_pointer (&b->timer, g_source_unref); /* being dispatched: removed when it returns */
  if (b->pieces->len == 0 && b->plan.end != FAKE_BODY_COMPLETE)
    {
      /* Only the headers: wrote-headers fires once they are out. */
      soup_server_message_unpause (b->msg);
      return G_SOURCE_REMOVE;
    }
  return body_step (b);
}

void
fake_server_write (SoupServerMessage *msg, guint status, const char *content_type, GPtrArray *pieces,
                   const FakeBodyPlan *plan)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  Body *b;

  soup_server_message_set_status (msg, status, NULL);
  soup_message_headers_set_content_type (h, content_type, NULL);
  if (plan->end == FAKE_BODY_COMPLETE)
    {
      goffset total = 0;

      for (guint i = 0; i < pieces->len; i++)
        total += (goffset) strlen (g_ptr_array_index (pieces, i));
      soup_message_headers_set_content_length (h, total);
    }
  else
    soup_message_headers_set_encoding (h, SOUP_ENCODING_CHUNKED);
  if (plan->first_ms == 0 && plan->interval_ms == 0 && (plan->gap_at < 0 || plan->gap_ms == 0) &&
      plan->end == FAKE_BODY_COMPLETE && plan->closed == NULL)
    {
      /* Nothing to wait for: the whole body at once (the fast path of the
       * benchmarks' instant upstream). */
      GString *all = g_string_new (NULL);
      SoupMessageBody *body = soup_server_message_get_response_body (msg);
      g_autoptr (GBytes) bytes = NULL;

      for (guint i = 0; i < pieces->len; i++)
        g_string_append (all, g_ptr_array_index (pieces, i));
      g_ptr_array_unref (pieces);
      bytes = g_string_free_to_bytes (all);
      soup_message_body_append_bytes (body, bytes);
      soup_message_body_complete (body);
      return;
    }
  b = g_new0 (Body, 1);
  b->msg = g_object_ref (msg);
  b->pieces = pieces;
  b->plan = *plan;
  b->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_body_gone), b);
  b->disconnected_id = g_signal_connect (msg, "disconnected", G_CALLBACK (on_body_gone), b);
  b->wrote_headers_id = g_signal_connect (msg, "wrote-headers", G_CALLBACK (on_wrote_headers), b);
  b->wrote_chunk_id = g_signal_connect (msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), b);
  soup_server_message_pause (msg);
  b->timer = add_source (plan->first_ms, body_start, b);
}

void
fake_server_stream (SoupServerMessage *msg, const char *content_type, const char *const *pieces,
                    guint interval_ms, gboolean hang, gboolean repeat, gboolean *closed)
{
  GPtrArray *copy = g_ptr_array_new_with_free_func (g_free);
  FakeBodyPlan plan = {
    .interval_ms = interval_ms,
    .gap_at = -1,
    .end = repeat ? FAKE_BODY_REPEAT : hang ? FAKE_BODY_HANG : FAKE_BODY_COMPLETE,
    .closed = closed,
  };

  for (guint i = 0; pieces[i]; i++)
    g_ptr_array_add (copy, g_strdup (pieces[i]));
  fake_server_write (msg, 200, content_type, copy, &plan);
}

void
fake_server_hang (SoupServerMessage *msg)
{
  soup_server_message_pause (msg);
}

void
fake_server_reply (SoupServerMessage *msg, guint status, const char *content_type, const char *body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_COPY, body, strlen (body));
}

typedef struct {
  SoupServerMessage *msg; /* ref */
  guint status;
  char *content_type, *body;
  GSource *timer;
  gulong finished_id, disconnected_id;
} Later;

static void
later_free (Later *l)
{
  clear_source (&l->timer);
  g_signal_handler_disconnect (l->msg, l->finished_id);
  g_signal_handler_disconnect (l->msg, l->disconnected_id);
  g_object_unref (l->msg);
  g_free (l->content_type);
  g_free (l->body);
  g_free (l);
}

static gboolean
later_fire (gpointer data)
{
  Later *l = data;
  gsize len = strlen (l->body);

  g_clear_pointer (&l->timer, g_source_unref); /* being dispatched */
  soup_server_message_set_status (l->msg, l->status, NULL);
  soup_server_message_set_response (l->msg, l->content_type, SOUP_MEMORY_TAKE, g_steal_pointer (&l->body), len);
  soup_server_message_unpause (l->msg);
  later_free (l);
  return G_SOURCE_REMOVE;
}

/* The client went away while the answer waited: drop it. */
static void
on_later_gone (SoupServerMessage *msg, gpointer data)
{
  later_free (data);
}

void
fake_server_reply_later (SoupServerMessage *msg, guint status, const char *content_type, char *body, guint delay_ms)
{
  Later *l;

  if (delay_ms == 0)
    {
      soup_server_message_set_status (msg, status, NULL);
      soup_server_message_set_response (msg, content_type, SOUP_MEMORY_TAKE, body, strlen (body));
      return;
    }
  l = g_new0 (Later, 1);
  l->msg = g_object_ref (msg);
  l->status = status;
  l->content_type = g_strdup (content_type);
  l->body = body;
  l->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_later_gone), l);
  l->disconnected_id = g_signal_connect (msg, "disconnected", G_CALLBACK (on_later_gone), l);
  soup_server_message_pause (msg);
  l->timer = add_source (delay_ms, later_fire, l);
}

void
fake_server_reset (SoupServerMessage *msg)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  /* The server's attempt to answer fails on the shut socket and it drops
   * the connection; the client reads end-of-file where the answer was due. */
  soup_server_message_set_status (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
  if (socket)
    g_socket_shutdown (socket, TRUE, TRUE, NULL);
}

JsonNode *
fake_server_request_json (SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  if (!json_parser_load_from_data (parser, data, (gssize) len, NULL) || !json_parser_get_root (parser))
    return NULL;
  return json_node_copy (json_parser_get_root (parser));
}

char *
fake_server_start (SoupServer **server, SoupServerCallback callback, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  GSList *uris;
  char *url;
  gsize len;

  *server = soup_server_new (NULL, NULL);
  soup_server_add_handler (*server, NULL, callback, user_data, NULL);
  soup_server_listen (*server, addr, 0, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (*server);
  g_assert_nonnull (uris);
  url = g_uri_to_string (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  len = strlen (url);
  while (len > 0 && url[len - 1] == '/')
    url[--len] = '\0';
  return url;
}
