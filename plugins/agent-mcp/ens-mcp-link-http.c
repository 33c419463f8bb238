/* ens-mcp-link-http.c — an MCP server at a Streamable HTTP URL (MCP
 * 2025-11-25): each message is POSTed; a request's answer comes back as
 * JSON or as a Server-Sent Events stream (which may carry notifications
 * first); the Mcp-Session-Id given with the answer to initialize goes with
 * every later message; after initialized, a GET stream carries the
 * server's own notifications (a 405 means it offers none).  A server that
 * cannot be reached, or forgets the session (404), closes the link; the
 * client starts over. */
#include "ens-mcp-link.h"
#include "ens-jsonrpc.h"
#include "ens-sse-reader.h"

#include <libsoup/soup.h>
#include <string.h>

typedef struct {
  EnsMcpLink link;
  SoupSession *soup;
  char *url, *token, *session_id;
  GCancellable *cancel;
  guint refs;
  gboolean closed, freed, stream_open;
} HttpLink;

typedef struct {
  HttpLink *l;
  SoupMessage *msg;
  GInputStream *body;
  EnsSseReader *sse;
  GByteArray *json; /* a JSON answer, as it arrives */
  char buf[16384];
  gboolean initialize, stream;
} Exchange;

static HttpLink *
link_ref (HttpLink *l)
{
  l->refs++;
  return l;
}

static void
link_unref (HttpLink *l)
{
  if (--l->refs > 0)
    return;
  g_object_unref (l->soup);
  g_object_unref (l->cancel);
  g_free (l->url);
  g_free (l->token);
  g_free (l->session_id);
  g_free (l);
}

static void
closed (HttpLink *l, const char *why)
{
  if (l->closed || l->freed)
    return;
  l->closed = TRUE;
  g_cancellable_cancel (l->cancel);
  l->link.on_closed (why, l->link.user_data);
}

static void
exchange_free (Exchange *x)
{
  g_clear_object (&x->msg);
  g_clear_object (&x->body);
  g_clear_pointer (&x->sse, ens_sse_reader_free);
  g_clear_pointer (&x->json, g_byte_array_unref);
  link_unref (x->l);
  g_free (x);
}

/* @text need not end in NUL: @len says where it ends. */
static void
deliver (HttpLink *l, const char *text, gsize len)
{
  g_autoptr (JsonNode) msg = l->link.parse (text, len, NULL);

  if (msg && !l->closed && !l->freed)
    l->link.on_message (msg, l->link.user_data);
}

static gboolean
sse_event (const char *event, const char *data, gsize len, gpointer user_data)
{
  Exchange *x = user_data;

  if ((event == NULL || strcmp (event, "message") == 0) && len > 0)
    deliver (x->l, data, len);
  return !x->l->closed && !x->l->freed;
}

static void read_more (Exchange *x);

static void
read_done (GObject *source, GAsyncResult *res, gpointer data)
{
  Exchange *x = data;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, &error);

  if (x->l->freed || x->l->closed)
    ;
  else if (n < 0)
    {
      if (!x->stream)
        closed (x->l, error->message);
    }
  else if (n == 0)
    {
      if (x->json && x->json->len > 0)
        deliver (x->l, (const char *) x->json->data, x->json->len);
      if (x->sse)
        ens_sse_reader_finish (x->sse, NULL);
      if (x->stream)
        x->l->stream_open = FALSE;
    }
  else if (x->json && x->json->len + (gsize) n > x->l->link.max_message)
    closed (x->l, "it sent a message over the size limit");
  else
    {
      if (x->json)
        g_byte_array_append (x->json, (const guint8 *) x->buf, n);
      else if (!ens_sse_reader_feed (x->sse, x->buf, n, &error) && error)
        {
          closed (x->l, error->message);
          exchange_free (x);
          return;
        }
      read_more (x);
      return;
    }
  exchange_free (x);
}

static void
read_more (Exchange *x)
{
  if (x->json)
    g_byte_array_set_size (x->json, x->json->len); /* keeps what is read */
  g_input_stream_read_async (x->body, x->buf, sizeof x->buf, G_PRIORITY_DEFAULT, x->l->cancel, read_done, x);
}

static void
sent (GObject *source, GAsyncResult *res, gpointer data)
{
  Exchange *x = data;
  HttpLink *l = x->l;
  g_autoptr (GError) error = NULL;
  guint status;
  const char *type, *sid;

  x->body = soup_session_send_finish (SOUP_SESSION (source), res, &error);
  if (l->freed || l->closed)
    {
      exchange_free (x);
      return;
    }
  if (x->body == NULL)
    {
      g_autofree char *why = g_strdup_printf ("cannot reach %s: %s", l->url, error->message);
      if (!x->stream)
        closed (l, why);
      exchange_free (x);
      return;
    }
  status = soup_message_get_status (x->msg);
  sid = soup_message_headers_get_one (soup_message_get_response_headers (x->msg), "Mcp-Session-Id");
  if (x->initialize && sid)
    {
      g_free (l->session_id);
      l->session_id = g_strdup (sid);
    }
  if (x->stream && status == 405)
    {
      exchange_free (x); /* no stream of its own: fine */
      return;
    }
  if (status == 404 && l->session_id)
    {
      closed (l, "it forgot the session (404)");
      exchange_free (x);
      return;
    }
  if (status == 202 || status == 204)
    {
      exchange_free (x);
      return;
    }
  if (status >= 300 && !x->stream)
    {
      /* A JSON-RPC error in the body still answers the request. */
      type = soup_message_headers_get_content_type (soup_message_get_response_headers (x->msg), NULL);
      if (type == NULL || strcmp (type, "application/json") != 0)
        {
          g_autofree char *why = g_strdup_printf ("%s answered HTTP %u", l->url, status);
          closed (l, why);
          exchange_free (x);
          return;
        }
    }
  type = soup_message_headers_get_content_type (soup_message_get_response_headers (x->msg), NULL);
  if (g_strcmp0 (type, "text/event-stream") == 0)
    x->sse = ens_sse_reader_new (l->link.max_message, sse_event, x);
  else
    x->json = g_byte_array_new ();
  if (x->stream)
    l->stream_open = TRUE;
  read_more (x);
}

static void
exchange (HttpLink *l, const char *method, const char *body, gboolean initialize)
{
  Exchange *x = g_new0 (Exchange, 1);
  SoupMessageHeaders *h;

  x->l = link_ref (l);
  x->initialize = initialize;
  x->stream = body == NULL;
  x->msg = soup_message_new (method, l->url);
  h = soup_message_get_request_headers (x->msg);
  soup_message_headers_replace (h, "Accept", x->stream ? "text/event-stream" : "application/json, text/event-stream");
  soup_message_headers_replace (h, "MCP-Protocol-Version", ENS_MCP_PROTOCOL_VERSION);
  if (l->session_id)
    soup_message_headers_replace (h, "Mcp-Session-Id", l->session_id);
  if (l->token)
    {
      g_autofree char *auth = g_strconcat ("Bearer ", l->token, NULL);
      soup_message_headers_replace (h, "Authorization", auth);
    }
  if (body)
    {
      g_autoptr (GBytes) bytes = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (x->msg, "application/json", bytes);
    }
  soup_session_send_async (l->soup, x->msg, G_PRIORITY_DEFAULT, l->cancel, sent, x);
}

static void
http_send (EnsMcpLink *link, JsonNode *msg)
{
  HttpLink *l = (HttpLink *) link;
  g_autofree char *text = NULL;
  const char *method = NULL;

  if (l->closed || l->freed)
    return;
  text = ens_jsonrpc_to_string (msg);
  ens_jsonrpc_classify (msg, NULL, &method, NULL, NULL);
  exchange (l, "POST", text, g_strcmp0 (method, "initialize") == 0);
  if (g_strcmp0 (method, "notifications/initialized") == 0 && !l->stream_open)
    exchange (l, "GET", NULL, FALSE);
}

static void
http_free (EnsMcpLink *link)
{
  HttpLink *l = (HttpLink *) link;

  l->freed = TRUE;
  l->closed = TRUE;
  g_cancellable_cancel (l->cancel);
  link_unref (l);
}

static const EnsMcpLinkClass http_class = { .send = http_send, .free = http_free };

EnsMcpLink *
ens_mcp_link_http_new (const char *url, const char *token, gsize max_message, EnsMcpLinkMessageFunc on_message,
                       EnsMcpLinkClosedFunc on_closed, gpointer user_data, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, error);
  HttpLink *l;

  if (uri == NULL)
    return NULL;
  l = g_new0 (HttpLink, 1);
  l->link.klass = &http_class;
  l->link.on_message = on_message;
  l->link.on_closed = on_closed;
  l->link.user_data = user_data;
  l->link.max_message = max_message;
  l->refs = 1;
  l->url = g_strdup (url);
  l->token = g_strdup (token);
  l->cancel = g_cancellable_new ();
  l->soup = soup_session_new_with_options ("timeout", 0, "idle-timeout", 60, NULL);
  return &l->link;
}
