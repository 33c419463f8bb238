/* ens-transport-unix.c — newline-delimited JSON over Unix stream sockets.
 *
 * Sockets: ensemble.sock (native protocol), the five KSI sockets, and one
 * orchestrator-<agent>.sock per registered agent (Centerfire), all 0600 in a
 * 0700 folder.  All of them share max-connections, except that admin.sock
 * has admin-connections more: when other clients fill max-connections, an
 * administrator can still get in (HEALTH_CHECK, SHUTDOWN, ...).
 *
 * I/O: each readable wake-up reads up to 256 KiB, splits lines itself, hands
 * every request to the core, and writes all the replies of that batch with
 * one sendmsg().  Events are queued as the shared bytes the core encoded
 * once, and written before the main loop next sleeps (POLLOUT only when the
 * socket is full).  The listening sockets are ens-unix-listen.c's; events
 * held for a KSI client, ens-unix-hold.c's.
 *
 * Slow consumers: a connection's outbound queue (plugins/common/outbox)
 * holds at most max-queue-messages messages and max-queue-bytes bytes.
 * When full, the oldest queued *events* make room for a new one, and once
 * the queue has drained the client gets
 * {"event":"ensemble.dropped","data":{"count":N,"total":T}}.  Replies are
 * never dropped; instead a connection whose queue is full stops being read,
 * so a client that does not read its replies stops being served, and
 * nobody else notices. */
#include "ens-dialect.h"
#include "ens-host-config.h"
#include "ens-json-util.h"
#include "ens-outbox.h"
#include "ens-unix-hold.h"
#include "ens-unix-listen.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define READ_BUDGET (256 * 1024) /* per wake-up, so one client cannot starve the rest */
#define IOV_BATCH 64
/* Queued replies past this are written before more requests are served, so
 * a peer that went away is noticed early (health replies are kilobytes). */
#define FLUSH_BYTES (64 * 1024)

static const char *const ksi_sockets[] = { "admin.sock", "agents.sock", "messaging.sock", "state.sock",
                                            "completion.sock" };
#define ADMIN_SOCKET "admin.sock" /* the one with room beyond max-connections */

typedef struct _EnsUnixTransport EnsUnixTransport;

typedef struct _EnsUnixConn EnsUnixConn;

struct _EnsUnixConn {
  EnsUnixTransport *t;
  guint max_line; /* the setting when it connected */
  const EnsDialect *dialect; /* NULL: native */
  char *agent;
  int fd;
  GSource *source;
  gpointer fd_tag;
  EnsClient *client;
  GByteArray *in;
  gboolean discarding; /* inside an over-long line */
  EnsOutbox *out;      /* limits: the settings when it connected */
  guint awaiting;      /* requests handed to the core, not yet answered */
  GIOCondition events;  /* what the source polls for now */
  gboolean write_blocked; /* the socket took less than there was: wait for POLLOUT */
  gboolean paused, peer_closed, close_when_flushed, keep_open, answered;
  gboolean in_answer; /* inside client_submit() of an agent's answer (ens-transport.h) */
  gboolean broken; /* a write failed: the peer is gone, stop serving it */
  gboolean served;      /* a ONE_SHOT dialect's one request is in: the rest is ignored */
  gboolean hold_wanted; /* its request holds the events of its answer (ENS_DIALECT_HOLD_RESULTS) */
  gboolean holding;     /* ... and the hold is open: it waits for the peer to close */
  gboolean write_shut;  /* shutdown (SHUT_WR) done: the peer saw EOF */
};

struct _EnsUnixTransport {
  const EnsHost *host;
  EnsPlugin *self;
  char *dir;
  GPtrArray *listeners;  /* EnsUnixListener* */
  GHashTable *conns;     /* EnsUnixConn* set */
  GHashTable *agent_listeners; /* agent name -> EnsUnixListener* */
  char *agent_dir;       /* where the Centerfire sockets are (centerfire-socket-dir, or dir) */
  EnsUnixHolds *holds;   /* events waiting for the connection that asked to close */
  guint sub_registered, sub_unregistered;
  guint64 accepted, refused, dropped;
  gboolean stopping;
};

static const EnsClientSink conn_sink;

/* ------------------------------------------------------------- output */

static void conn_update_events (EnsUnixConn *conn);

/* Queued output leaves before the main loop next sleeps (conn_prepare),
 * in one write for everything queued meanwhile; POLLOUT is asked for only
 * when the socket is full.  (Changing what a source polls for wakes the
 * loop up once more: avoided on this path.) */
static void
enqueue (EnsUnixConn *conn, GBytes *bytes, gboolean droppable)
{
  if (conn->fd < 0 || conn->close_when_flushed)
    return;
  conn->t->dropped += ens_outbox_push (conn->out, bytes, droppable);
  if (ens_outbox_full (conn->out))
    conn_update_events (conn); /* stop reading */
  if (!g_main_context_is_owner (g_source_get_context (conn->source)))
    g_main_context_wakeup (g_source_get_context (conn->source)); /* its prepare must run */
}

static void
answered (EnsUnixConn *conn)
{
  conn->answered = TRUE;
  if (conn->awaiting > 0)
    conn->awaiting--;
}

static GBytes *
encode_for (EnsUnixConn *conn, EnsMessage *msg)
{
  const EnsHost *host = conn->t->host;

  if (conn->dialect)
    host->message_data (msg); /* dialect code reads msg->data: parse it if it is text */
  if (conn->dialect && msg->kind != ENS_MESSAGE_REQUEST)
    return host->message_encode (msg, conn->dialect->encode);
  return host->message_encode (msg, host->encode_native);
}

static gboolean
one_shot (EnsUnixConn *conn)
{
  return conn->dialect && (conn->dialect->flags & ENS_DIALECT_ONE_SHOT) && !conn->keep_open;
}

static void
report_dropped (EnsUnixConn *conn, guint64 count, guint64 total)
{
  const EnsHost *host = conn->t->host;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_node_new_object (&obj);
  EnsMessage *notice;

  json_object_set_int_member (obj, "count", count);
  json_object_set_int_member (obj, "total", total);
  init.topic = "ensemble.dropped";
  init.from = "ensembled";
  init.to = host->client_id (conn->client);
  init.data = data;
  notice = host->message_new (&init);
  enqueue (conn, encode_for (conn, notice), FALSE);
  host->message_unref (notice);
}

/* Writes as much as the socket takes.  FALSE: the peer is gone. */
static gboolean
flush (EnsUnixConn *conn)
{
  while (!ens_outbox_is_empty (conn->out))
    {
      struct iovec iov[IOV_BATCH];
      struct msghdr mh = { 0 };
      ssize_t written;
      guint64 count, total;

      mh.msg_iov = iov;
      mh.msg_iovlen = ens_outbox_peek (conn->out, iov, IOV_BATCH);
      written = sendmsg (conn->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (written < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            {
              conn->write_blocked = TRUE;
              break;
            }
          return FALSE;
        }
      conn->write_blocked = FALSE;
      ens_outbox_consume (conn->out, (gsize) written);
      if (ens_outbox_take_dropped (conn->out, &count, &total))
        report_dropped (conn, count, total);
    }
  return TRUE;
}

/* ------------------------------------------------------------- lifecycle */

static void
conn_free (EnsUnixConn *conn)
{
  if (conn->t->holds && ens_unix_holds_any (conn->t->holds))
    {
      ens_unix_holds_forget_target (conn->t->holds, conn);
      if (conn->holding)
        ens_unix_holds_end (conn->t->holds, conn); /* the peer closed: what it held goes out */
    }
  if (conn->client)
    conn->t->host->client_close (conn->client);
  if (conn->source)
    {
      g_source_destroy (conn->source);
      g_source_unref (conn->source);
    }
  if (conn->fd >= 0)
    close (conn->fd);
  ens_outbox_free (conn->out);
  g_byte_array_unref (conn->in);
  g_free (conn->agent);
  g_free (conn);
}

static void
conn_close (EnsUnixConn *conn)
{
  g_hash_table_remove (conn->t->conns, conn); /* frees */
}

static void
conn_update_events (EnsUnixConn *conn)
{
  GIOCondition events = 0;

  /* Stop reading at a full queue, resume when half drained. */
  if (ens_outbox_full (conn->out))
    conn->paused = TRUE;
  else if (ens_outbox_low (conn->out))
    conn->paused = FALSE;
  if (!conn->paused && !conn->peer_closed && !conn->close_when_flushed)
    events |= G_IO_IN;
  if (conn->write_blocked && !ens_outbox_is_empty (conn->out))
    events |= G_IO_OUT;
  if (events != conn->events)
    {
      conn->events = events;
      g_source_modify_unix_fd (conn->source, conn->fd_tag, events);
    }
}

static void
reply_line_too_long (EnsUnixConn *conn)
{
  g_autofree char *text = g_strdup_printf ("line longer than %u bytes (max-line-bytes); it was discarded",
                                           conn->max_line);
  const EnsHost *host = conn->t->host;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_ERROR);
  EnsMessage *err;

  init.error_code = ENS_ERR_LINE_TOO_LONG;
  init.error_message = text;
  err = host->message_new (&init);
  enqueue (conn, encode_for (conn, err), FALSE);
  host->message_unref (err);
  answered (conn);
}

/* Hands @msg (transfer none) to the core. */
static void
submit (EnsUnixConn *conn, EnsMessage *msg)
{
  const EnsHost *host = conn->t->host;

  /* An agent's answer, REPLY or ERROR (not a bounce): nothing is due for
   * it, but the UNKNOWN_REQUEST that refuses it, which comes inside the
   * submit and answers nothing else. */
  conn->in_answer = msg->kind != ENS_MESSAGE_REQUEST && !host->message_is_bounce (msg);
  if (conn->in_answer && conn->awaiting > 0)
    conn->awaiting--;
  host->client_submit (conn->client, msg);
  conn->in_answer = FALSE;
}

/* One frame (a line, or a Centerfire JSON value); FALSE when it was only
 * white space. */
static gboolean
handle_frame (EnsUnixConn *conn, const char *line, gsize len)
{
  const EnsHost *host = conn->t->host;

  while (len > 0 && g_ascii_isspace (line[len - 1]))
    len--;
  while (len > 0 && g_ascii_isspace (line[0]))
    line++, len--;
  if (len == 0)
    return FALSE;
  conn->awaiting++; /* every frame gets one answer, but an agent's answer (ens-transport.h) */
  if (len > conn->max_line)
    {
      reply_line_too_long (conn);
      return TRUE;
    }
  if (conn->dialect)
    {
      EnsDialectFrame frame = { .host = host, .agent = conn->agent };

      conn->dialect->decode (&frame, line, len);
      if (frame.flags & ENS_DIALECT_KEEP_OPEN)
        conn->keep_open = TRUE;
      if (frame.flags & ENS_DIALECT_HOLD_RESULTS)
        conn->hold_wanted = TRUE;
      if (frame.reply)
        {
          answered (conn);
          enqueue (conn, frame.reply, FALSE);
        }
      if (frame.submit)
        submit (conn, frame.submit);
      ens_dialect_frame_clear (&frame);
    }
  else
    {
      EnsMessage *msg = host->parse_native (line, len);
      submit (conn, msg);
      host->message_unref (msg);
    }
  return TRUE;
}

/* Over-long input without its end: answered once, then skipped up to the
 * next '\n'. */
static void
too_long (EnsUnixConn *conn)
{
  reply_line_too_long (conn);
  conn->discarding = TRUE;
  if (one_shot (conn))
    conn->served = TRUE;
}

/* Splits complete frames out of the input buffer. */
static void
process_input (EnsUnixConn *conn, gboolean at_eof)
{
  GByteArray *in = conn->in;
  gboolean values = conn->dialect && conn->dialect->framing == ENS_DIALECT_FRAMING_VALUE;
  gsize start = 0;

  while (start < in->len && conn->fd >= 0 && !conn->served)
    {
      const char *data = (const char *) in->data + start;
      gsize avail = in->len - start, end;
      gboolean handled;

      /* A full outbound queue: the rest waits in the input buffer until the
       * client reads its replies (one read can hold thousands of requests). */
      if (ens_outbox_full (conn->out))
        break;
      /* Write as replies pile up: a peer that went away is noticed before
       * its whole pipeline is served for nobody. */
      if ((ens_outbox_length (conn->out) >= 1024 || ens_outbox_bytes (conn->out) >= FLUSH_BYTES) && !flush (conn))
        {
          conn->broken = TRUE;
          break;
        }
      end = values && !conn->discarding ? ens_dialect_scan_value (data, avail, at_eof) : 0;
      if (end > 0 && memchr (data, '\n', end) == NULL)
        {
          /* A complete JSON value before any '\n' is the request: a
           * Centerfire client writes one object and waits.  (A '\n' first
           * ends the frame as a line, as it always did.) */
          handled = handle_frame (conn, data, end);
          start += end;
        }
      else
        {
          const char *nl = memchr (data, '\n', avail);

          if (nl == NULL)
            {
              if (conn->discarding)
                start = in->len; /* still inside the long line */
              else if (avail > conn->max_line)
                {
                  too_long (conn);
                  start = in->len;
                }
              else if (at_eof)
                {
                  /* A last request without '\n'. */
                  handle_frame (conn, data, avail);
                  if (one_shot (conn))
                    conn->served = TRUE;
                  start = in->len;
                }
              break;
            }
          end = nl - data;
          handled = FALSE;
          if (conn->discarding)
            conn->discarding = FALSE;
          else
            handled = handle_frame (conn, data, end);
          start += end + 1;
        }
      /* KSI and Centerfire: one request per connection unless kept open. */
      if (handled && one_shot (conn))
        conn->served = TRUE;
    }
  if (conn->served)
    start = in->len; /* what follows the one request is not read */
  g_byte_array_remove_range (in, 0, MIN (start, in->len));
}

static gboolean
read_input (EnsUnixConn *conn)
{
  gsize budget = READ_BUDGET;

  while (budget > 0 && conn->in->len < READ_BUDGET + conn->max_line)
    {
      gsize old = conn->in->len;
      ssize_t n;

      g_byte_array_set_size (conn->in, old + READ_CHUNK);
      n = recv (conn->fd, conn->in->data + old, READ_CHUNK, MSG_DONTWAIT);
      g_byte_array_set_size (conn->in, old + (n > 0 ? (gsize) n : 0));
      if (n > 0)
        {
          budget = (gsize) n >= budget ? 0 : budget - (gsize) n;
          if (n < READ_CHUNK)
            break; /* drained: the next recv would say EAGAIN (poll says when there is more) */
          continue;
        }
      if (n == 0)
        {
          conn->peer_closed = TRUE;
          break;
        }
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      return FALSE;
    }
  process_input (conn, conn->peer_closed);
  return TRUE;
}

/* Whether a whole request waits in the input buffer. */
static gboolean
has_frame (EnsUnixConn *conn)
{
  GByteArray *in = conn->in;

  if (in->len == 0 || conn->served)
    return FALSE;
  if (memchr (in->data, '\n', in->len) != NULL)
    return TRUE;
  return conn->dialect && conn->dialect->framing == ENS_DIALECT_FRAMING_VALUE && !conn->discarding &&
         ens_dialect_scan_value ((const char *) in->data, in->len, conn->peer_closed) > 0;
}

typedef struct {
  GSource source;
  EnsUnixConn *conn;
} ConnSource;

/* Before the loop sleeps: what was queued goes out.  Dispatch follows at
 * once when that changed more than the queue (the peer is gone, the
 * connection closes once flushed, requests wait for room). */
static gboolean
conn_prepare (GSource *source, gint *timeout)
{
  EnsUnixConn *conn = ((ConnSource *) source)->conn;

  *timeout = -1;
  if (conn->fd < 0 || ens_outbox_is_empty (conn->out) || conn->write_blocked)
    return FALSE;
  if (!flush (conn))
    {
      conn->broken = TRUE;
      return TRUE;
    }
  if (conn->write_blocked || conn->close_when_flushed || conn->peer_closed || conn->paused || one_shot (conn))
    return TRUE;
  return FALSE;
}

static gboolean
conn_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  EnsUnixConn *conn = user_data;
  GIOCondition revents = g_source_query_unix_fd (source, conn->fd_tag);

  (void) callback;
  if (conn->broken)
    {
      conn_close (conn);
      return G_SOURCE_CONTINUE;
    }
  if ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) && !conn->paused && !conn->peer_closed)
    if (!read_input (conn) || conn->broken)
      {
        conn_close (conn);
        return G_SOURCE_CONTINUE;
      }
  if (conn->fd >= 0 && !flush (conn))
    {
      conn_close (conn);
      return G_SOURCE_CONTINUE;
    }
  /* Requests left waiting for queue room: serve them as room appears. */
  while (conn->fd >= 0 && ens_outbox_low (conn->out) && has_frame (conn))
    {
      process_input (conn, conn->peer_closed);
      if (conn->broken || !flush (conn))
        {
          conn_close (conn);
          return G_SOURCE_CONTINUE;
        }
    }
  if (one_shot (conn) && conn->answered)
    {
      if (!conn->holding)
        conn->close_when_flushed = TRUE;
      else if (ens_outbox_is_empty (conn->out) && !conn->write_shut)
        {
          /* Its answer is out and the peer sees EOF as ever, but the
           * events it held wait for the peer to close its side (KSI's
           * client records its request only then). */
          shutdown (conn->fd, SHUT_WR);
          conn->write_shut = TRUE;
        }
    }
  /* A peer that only shut down its sending side (nc -N) still reads: it
   * gets the answers to what it sent before the connection closes. */
  if (ens_outbox_is_empty (conn->out) && (conn->close_when_flushed || (conn->peer_closed && conn->awaiting == 0)))
    {
      conn_close (conn);
      return G_SOURCE_CONTINUE;
    }
  if ((revents & G_IO_ERR) || ((revents & G_IO_HUP) && (conn->peer_closed || !(revents & G_IO_IN))))
    {
      conn_close (conn); /* gone both ways: nothing can be delivered */
      return G_SOURCE_CONTINUE;
    }
  conn_update_events (conn);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs conn_source_funcs = { conn_prepare, NULL, conn_dispatch, NULL, NULL, NULL };

/* ------------------------------------------------------------- the sink */

/* ENS_DIALECT_HOLD_RESULTS: the answer to a request that holds its events
 * opens the hold (for <dialect>-result-hold-ms, 0: no hold). */
static void
hold_begin (EnsUnixConn *conn, EnsMessage *reply)
{
  EnsUnixTransport *t = conn->t;
  g_autofree char *key = g_strdup_printf ("%s-result-hold-ms", conn->dialect->name);
  guint ms = ens_host_config_uint (t->host, t->self, key, 5000);
  const char *id = ens_dialect_hold_key (reply);

  conn->hold_wanted = FALSE;
  if (ms == 0 || id == NULL || !one_shot (conn))
    return;
  ens_unix_holds_begin (t->holds, id, conn, ms);
  conn->holding = TRUE;
}

static void
sink_deliver (gpointer sink_data, EnsMessage *msg)
{
  EnsUnixConn *conn = sink_data;
  GBytes *bytes;

  if ((msg->kind == ENS_MESSAGE_REPLY || msg->kind == ENS_MESSAGE_ERROR) && !conn->in_answer)
    {
      if (conn->hold_wanted && msg->kind == ENS_MESSAGE_REPLY)
        hold_begin (conn, msg);
      answered (conn);
    }
  bytes = encode_for (conn, msg);
  if (msg->kind == ENS_MESSAGE_EVENT && conn->dialect && conn->t->holds && ens_unix_holds_any (conn->t->holds) &&
      ens_unix_holds_take (conn->t->holds, ens_dialect_hold_key (msg), conn, bytes))
    return;
  enqueue (conn, bytes, msg->kind == ENS_MESSAGE_EVENT);
}

static void
hold_release (gpointer target, GBytes *bytes, gpointer user_data)
{
  (void) user_data;
  enqueue (target, bytes, TRUE);
}

static void
hold_expired (gpointer asker, gpointer user_data)
{
  (void) user_data;
  conn_close (asker); /* which releases what it held */
}

static void
sink_disconnect (gpointer sink_data, const char *reason)
{
  EnsUnixConn *conn = sink_data;

  (void) reason;
  conn->close_when_flushed = TRUE;
  conn_update_events (conn);
  /* Nothing left to write (an idle connection): no fd event would come to
   * close it, so the source dispatches now and closes it. */
  if (ens_outbox_is_empty (conn->out))
    g_source_set_ready_time (conn->source, 0);
}

static const EnsClientSink conn_sink = {
  .struct_size = sizeof (EnsClientSink),
  .deliver = sink_deliver,
  .disconnect = sink_disconnect,
};

/* ------------------------------------------------------------- accept */

static void
on_accept (EnsUnixListener *l, int fd, guint32 flags, const char *peer, gpointer user_data)
{
  EnsUnixTransport *t = user_data;
  /* Limits are read per accept: a changed setting applies to new
   * connections, and live ones keep what they started with. */
  guint max_connections = ens_host_config_uint (t->host, t->self, "max-connections", 1024);
  guint room = l->admin ? ens_host_config_uint (t->host, t->self, "admin-connections", 8) : 0;
  EnsUnixConn *conn;

  if (g_hash_table_size (t->conns) >= (guint64) max_connections + room)
    {
      static const char busy[] = "{\"id\":null,\"status\":\"error\",\"error\":{\"code\":\"OVERLOADED\","
                                 "\"message\":\"too many connections (max-connections)\",\"details\":{}}}\n";
      ssize_t ignored = send (fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      (void) ignored;
      close (fd);
      t->refused++;
      return;
    }
  t->accepted++;
  conn = g_new0 (EnsUnixConn, 1);
  conn->t = t;
  conn->max_line = ens_host_config_uint (t->host, t->self, "max-line-bytes", 1048576);
  conn->fd = fd;
  conn->dialect = l->dialect;
  conn->agent = g_strdup (l->agent);
  conn->in = g_byte_array_sized_new (READ_CHUNK);
  conn->out = ens_outbox_new (ens_host_config_uint (t->host, t->self, "max-queue-messages", 4096),
                              ens_host_config_uint (t->host, t->self, "max-queue-bytes", 4194304));
  conn->client = t->host->client_new (t->self, &conn_sink, conn, flags, peer);
  ENS_LOG (t->host, t->self, G_LOG_LEVEL_DEBUG, "connection accepted on %s (%s)", l->path, peer);
  conn->source = g_source_new (&conn_source_funcs, sizeof (ConnSource));
  ((ConnSource *) conn->source)->conn = conn;
  g_source_set_callback (conn->source, NULL, conn, NULL);
  g_source_set_static_name (conn->source, "ensemble unix connection");
  /* GLib takes a source's fds out of the poll set while it dispatches,
   * unless it may recurse: each time a wake-up of the loop and one more
   * iteration.  Nothing here runs the loop from a dispatch. */
  g_source_set_can_recurse (conn->source, TRUE);
  conn->events = G_IO_IN;
  conn->fd_tag = g_source_add_unix_fd (conn->source, fd, G_IO_IN);
  g_source_attach (conn->source, NULL);
  g_hash_table_add (t->conns, conn);
}

static EnsUnixListener *
listener_new (EnsUnixTransport *t, const char *dir, const char *name, const EnsDialect *dialect, const char *agent,
              GError **error)
{
  return ens_unix_listener_new (dir, name, dialect, agent, dialect == &ens_dialect_ksi && strcmp (name, ADMIN_SOCKET) == 0,
                                on_accept, t, error);
}

/* ------------------------------------------------------------- Centerfire sockets */

static void
agent_socket_add (EnsUnixTransport *t, const char *agent)
{
  g_autofree char *name = NULL;
  g_autoptr (GError) error = NULL;
  EnsUnixListener *l;

  if (t->stopping || agent == NULL || g_hash_table_contains (t->agent_listeners, agent))
    return;
  name = g_strdup_printf ("orchestrator-%s.sock", agent);
  l = listener_new (t, t->agent_dir, name, &ens_dialect_centerfire, agent, &error);
  if (l == NULL)
    {
      ENS_LOG (t->host, t->self, G_LOG_LEVEL_WARNING, "no Centerfire socket for agent %s: %s", agent, error->message);
      return;
    }
  g_hash_table_insert (t->agent_listeners, l->agent, l);
}

static JsonObject *
data_object (const EnsHost *host, EnsMessage *msg)
{
  JsonNode *data = host->message_data (msg);
  return data && JSON_NODE_HOLDS_OBJECT (data) ? json_node_get_object (data) : NULL;
}

static void
on_agent_registered (EnsMessage *event, gpointer user_data)
{
  EnsUnixTransport *t = user_data;

  agent_socket_add (t, ens_member_string (data_object (t->host, event), "name"));
}

static void
on_agent_unregistered (EnsMessage *event, gpointer user_data)
{
  EnsUnixTransport *t = user_data;
  const char *name = ens_member_string (data_object (t->host, event), "name");

  if (name)
    g_hash_table_remove (t->agent_listeners, name);
}

static void
on_agents_listed (EnsMessage *reply, gpointer user_data)
{
  EnsUnixTransport *t = user_data;
  JsonArray *agents = reply->kind == ENS_MESSAGE_REPLY ? ens_member_array (data_object (t->host, reply), "agents") : NULL;

  for (guint i = 0; agents && i < json_array_get_length (agents); i++)
    agent_socket_add (t, ens_member_string (ens_array_object (agents, i), "name"));
}

/* ------------------------------------------------------------- plugin */

static void unix_stop (gpointer instance);

static gpointer
unix_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  EnsUnixTransport *t;
  g_autofree char *native = NULL;
  EnsUnixListener *l;

  if (!ENS_STRUCT_HAS (host, EnsHost, message_from_native))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "the host table lacks message_from_native (ABI 1.2)");
      return NULL;
    }
  t = g_new0 (EnsUnixTransport, 1);
  native = ens_host_config_string (host, self, "native-socket", "ensemble.sock");
  t->host = host;
  t->self = self;
  ens_dialect_init (host);
  t->dir = ens_host_config_string (host, self, "socket-dir", "");
  t->agent_dir = ens_host_config_string (host, self, "centerfire-socket-dir", "");
  if (t->agent_dir[0] == '\0')
    {
      g_free (t->agent_dir);
      t->agent_dir = g_strdup (t->dir);
    }
  t->holds = ens_unix_holds_new (hold_release, hold_expired, t);
  t->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_unix_listener_free);
  t->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) conn_free, NULL);
  t->agent_listeners = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) ens_unix_listener_free);

  if (!ens_unix_prepare_dir (t->dir, error))
    goto fail;
  /* A folder of the operator's choosing (such as /tmp, where Centerfire's
   * clients look): made if missing, never made private or taken over. */
  if (strcmp (t->agent_dir, t->dir) != 0 && g_mkdir_with_parents (t->agent_dir, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "cannot create centerfire-socket-dir %s: %s",
                   t->agent_dir, g_strerror (saved));
      goto fail;
    }
  l = listener_new (t, t->dir, native, NULL, NULL, error);
  if (l == NULL)
    goto fail;
  g_ptr_array_add (t->listeners, l);
  if (ens_host_config_bool (host, self, "ksi-sockets", TRUE))
    for (guint i = 0; i < G_N_ELEMENTS (ksi_sockets); i++)
      {
        l = listener_new (t, t->dir, ksi_sockets[i], &ens_dialect_ksi, NULL, error);
        if (l == NULL)
          goto fail;
        g_ptr_array_add (t->listeners, l);
      }
  if (ens_host_config_bool (host, self, "centerfire-sockets", TRUE))
    {
      t->sub_registered = host->subscribe (self, "ensemble.agent.registered", on_agent_registered, t, NULL);
      t->sub_unregistered = host->subscribe (self, "ensemble.agent.unregistered", on_agent_unregistered, t, NULL);
      host->request (self, NULL, "agents.list", NULL, 0, on_agents_listed, t);
    }
  ENS_LOG (host, self, G_LOG_LEVEL_MESSAGE, "listening in %s", t->dir);
  return t;

fail:
  unix_stop (t);
  return NULL;
}

static void
unix_stop (gpointer instance)
{
  EnsUnixTransport *t = instance;
  GHashTableIter iter;
  gpointer key;

  t->stopping = TRUE;
  if (t->sub_registered)
    t->host->unsubscribe (t->self, t->sub_registered);
  if (t->sub_unregistered)
    t->host->unsubscribe (t->self, t->sub_unregistered);
  /* Held events stay unsent: their connections close now. */
  g_clear_pointer (&t->holds, ens_unix_holds_free);
  /* Last words: whatever the socket takes now (a shutdown reply). */
  g_hash_table_iter_init (&iter, t->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    flush (key);
  g_hash_table_unref (t->conns);
  g_hash_table_unref (t->agent_listeners);
  g_ptr_array_unref (t->listeners);
  g_free (t->agent_dir);
  g_free (t->dir);
  g_free (t);
}

static JsonNode *
unix_describe (gpointer instance)
{
  EnsUnixTransport *t = instance;
  JsonObject *obj;
  JsonNode *node = ens_node_new_object (&obj);
  JsonArray *sockets = json_array_new ();
  GHashTableIter iter;
  gpointer value;

  for (guint i = 0; i < t->listeners->len; i++)
    json_array_add_string_element (sockets, ((EnsUnixListener *) g_ptr_array_index (t->listeners, i))->path);
  g_hash_table_iter_init (&iter, t->agent_listeners);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    json_array_add_string_element (sockets, ((EnsUnixListener *) value)->path);
  json_object_set_string_member (obj, "socket_dir", t->dir);
  json_object_set_array_member (obj, "sockets", sockets);
  json_object_set_int_member (obj, "connections", g_hash_table_size (t->conns));
  json_object_set_int_member (obj, "accepted", t->accepted);
  json_object_set_int_member (obj, "refused", t->refused);
  json_object_set_int_member (obj, "events_dropped", t->dropped);
  return node;
}

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_TRANSPORT, "transport-unix", "0.1.0",
                   "Unix sockets: native protocol, KSI multi-socket and Centerfire per-agent dialects",
                   ENS_PLUGIN_FLAG_LAZY_DATA, unix_init, unix_stop, unix_describe, NULL)
