/* ens-bench-upstream — a fast fake OpenAI-compatible upstream for the
 * gateway benchmark: one thread, epoll, no HTTP library, so that it is
 * never the bottleneck of the path it stands at the end of (a few µs of
 * CPU per answer, where a libsoup server spends ~30).
 *
 *   ens-bench-upstream [--port N] [--delay MS] [--chunks N] [--interval MS]
 *
 * Listens on 127.0.0.1 (port 0: one the kernel picks), prints the port
 * alone on the first line of stdout, and serves until SIGTERM/SIGINT.
 * Every POST (any path) gets a chat completion: plain JSON, or, when the
 * request's body asks for "stream": true, an SSE stream of N content
 * chunks, a finishing chunk with usage and `data: [DONE]`.  The answer (or
 * the first chunk) leaves after --delay ms, the following chunks --interval
 * ms apart.  GET (any path) answers a small JSON document at once.
 * HTTP/1.1 keep-alive, requests in order; not a general HTTP server.
 *
 * Delay and interval are fixed for the process, so every timer it sets
 * expires in the order it was set: two FIFO queues stand for a timer heap. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ens-bench-measure.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define IN_CAP (64 * 1024)

typedef struct Conn Conn;
struct Conn {
  int fd;
  char in[IN_CAP];
  size_t in_len;
  char *out;            /* unsent bytes (malloc'd) */
  size_t out_len, out_cap;
  int busy;             /* an answer is pending or streaming: later requests wait */
  int stream;           /* the pending answer is a stream */
  unsigned sent_chunks; /* content chunks sent so far */
  int queued;           /* in a timer queue (freed there once closed) */
  int closed;
  int64_t due;
  Conn *next;
};

typedef struct {
  Conn *head, *tail;
} Queue;

static unsigned opt_delay_ms, opt_chunks = 20, opt_interval_ms;
static int epfd;
static Queue q_delay, q_interval;
static Conn *graveyard; /* closed, freed after the current round of events */
static volatile sig_atomic_t stop;

static int64_t
now_ms (void)
{
  return ens_bench_now_ns () / 1000000;
}

static void
queue_push (Queue *q, Conn *c, int64_t due)
{
  c->due = due;
  c->queued = 1;
  c->next = NULL;
  if (q->tail)
    q->tail->next = c;
  else
    q->head = c;
  q->tail = c;
}

static Conn *
queue_pop_due (Queue *q, int64_t now)
{
  Conn *c = q->head;
  if (c == NULL || c->due > now)
    return NULL;
  q->head = c->next;
  if (q->head == NULL)
    q->tail = NULL;
  c->queued = 0;
  return c;
}

static void
conn_free (Conn *c)
{
  free (c->out);
  free (c);
}

static void
conn_close (Conn *c)
{
  if (c->closed)
    return;
  c->closed = 1;
  epoll_ctl (epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close (c->fd);
  if (!c->queued)
    {
      c->next = graveyard;
      graveyard = c;
    }
}

static void
set_epollout (Conn *c, int on)
{
  struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
  epoll_ctl (epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is buffered; returns -1 when the connection was closed. */
static int
conn_flush (Conn *c)
{
  size_t off = 0;
  while (off < c->out_len)
    {
      ssize_t n = send (c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n <= 0)
        {
          conn_close (c);
          return -1;
        }
      off += (size_t) n;
    }
  memmove (c->out, c->out + off, c->out_len - off);
  c->out_len -= off;
  set_epollout (c, c->out_len > 0);
  return 0;
}

static void
out_append (Conn *c, const char *s, size_t n)
{
  if (c->out_len + n > c->out_cap)
    {
      c->out_cap = (c->out_len + n) * 2;
      c->out = realloc (c->out, c->out_cap);
      if (c->out == NULL)
        abort ();
    }
  memcpy (c->out + c->out_len, s, n);
  c->out_len += n;
}

/* One HTTP chunk holding @s. */
static void
out_chunk (Conn *c, const char *s, size_t n)
{
  char head[32];
  int k = snprintf (head, sizeof head, "%zx\r\n", n);
  out_append (c, head, (size_t) k);
  out_append (c, s, n);
  out_append (c, "\r\n", 2);
}

static const char plain_body[] =
  "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"bench-model\","
  "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello from the bench upstream.\"},"
  "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":6,\"total_tokens\":16}}";

static void
answer_plain (Conn *c)
{
  char head[160];
  int k = snprintf (head, sizeof head,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                    sizeof plain_body - 1);
  out_append (c, head, (size_t) k);
  out_append (c, plain_body, sizeof plain_body - 1);
}

/* The next event of a stream: a content chunk, or (after the last) the
 * finishing chunk, [DONE] and the end of the body.  Returns 1 when the
 * stream is over. */
static int
stream_step (Conn *c)
{
  char ev[512];
  int k;

  if (c->sent_chunks == 0)
    {
      static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                 "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
      out_append (c, head, sizeof head - 1);
    }
  if (c->sent_chunks < opt_chunks)
    {
      k = snprintf (ev, sizeof ev,
                    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                    "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":\"w%u \"},"
                    "\"finish_reason\":null}]}\n\n",
                    c->sent_chunks == 0 ? "\"role\":\"assistant\"," : "", c->sent_chunks);
      out_chunk (c, ev, (size_t) k);
      c->sent_chunks++;
      if (c->sent_chunks < opt_chunks)
        return 0;
    }
  k = snprintf (ev, sizeof ev,
                "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
                "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":%u,\"total_tokens\":%u}}\n\n"
                "data: [DONE]\n\n",
                opt_chunks, opt_chunks + 10);
  out_chunk (c, ev, (size_t) k);
  out_append (c, "0\r\n\r\n", 5);
  return 1;
}

static void handle_input (Conn *c);

/* The pending answer (or its next chunk) is due now. */
static void
answer_due (Conn *c)
{
  if (c->stream)
    {
      if (!stream_step (c))
        queue_push (&q_interval, c, now_ms () + opt_interval_ms);
      else
        c->busy = 0;
    }
  else
    {
      answer_plain (c);
      c->busy = 0;
    }
  if (conn_flush (c) < 0)
    return;
  if (!c->busy)
    handle_input (c);
}

static int
body_asks_stream (const char *body, size_t len)
{
  const char *p = memmem (body, len, "\"stream\"", 8);
  if (p == NULL)
    return 0;
  p += 8;
  while (p < body + len && (*p == ' ' || *p == ':' || *p == '\t'))
    p++;
  return (size_t) (body + len - p) >= 4 && memcmp (p, "true", 4) == 0;
}

/* Serves the complete requests buffered, in order, until one must wait. */
static void
handle_input (Conn *c)
{
  while (!c->busy && !c->closed)
    {
      char *end = memmem (c->in, c->in_len, "\r\n\r\n", 4);
      size_t head_len, clen = 0, total;
      const char *p;

      if (end == NULL)
        {
          if (c->in_len == IN_CAP)
            conn_close (c);
          return;
        }
      head_len = (size_t) (end - c->in) + 4;
      for (p = c->in; p && p < end; p = memchr (p, '\n', (size_t) (end - p)), p = p ? p + 1 : p)
        if (strncasecmp (p, "content-length:", 15) == 0)
          clen = strtoul (p + 15, NULL, 10);
      total = head_len + clen;
      if (total > IN_CAP)
        {
          conn_close (c);
          return;
        }
      if (c->in_len < total)
        return;
      if (strncmp (c->in, "POST ", 5) == 0)
        {
          c->busy = 1;
          c->stream = body_asks_stream (c->in + head_len, clen);
          c->sent_chunks = 0;
        }
      else
        {
          static const char health[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                       "Content-Length: 15\r\n\r\n{\"status\":\"ok\"}";
          out_append (c, health, sizeof health - 1);
        }
      memmove (c->in, c->in + total, c->in_len - total);
      c->in_len -= total;
      if (c->busy)
        {
          if (opt_delay_ms == 0)
            {
              answer_due (c);
              return; /* answer_due serves what follows */
            }
          queue_push (&q_delay, c, now_ms () + opt_delay_ms);
        }
    }
  if (!c->closed && c->out_len)
    conn_flush (c);
}

static void
conn_readable (Conn *c)
{
  for (;;)
    {
      ssize_t n;
      if (c->in_len == IN_CAP)
        break; /* busy with a full buffer: read on once it is served */
      n = recv (c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n <= 0)
        {
          conn_close (c);
          return;
        }
      c->in_len += (size_t) n;
    }
  handle_input (c);
}

static void
run_queue (Queue *q, int64_t now)
{
  Conn *c;
  while ((c = queue_pop_due (q, now)))
    {
      if (c->closed)
        conn_free (c);
      else
        answer_due (c);
    }
}

static int
next_timeout (int64_t now)
{
  int64_t due = -1;
  if (q_delay.head)
    due = q_delay.head->due;
  if (q_interval.head && (due < 0 || q_interval.head->due < due))
    due = q_interval.head->due;
  if (due < 0)
    return 1000;
  return due <= now ? 0 : (int) (due - now);
}

static void
on_signal (int sig)
{
  (void) sig;
  stop = 1;
}

int
main (int argc, char **argv)
{
  int port = 0, lfd, one = 1;
  struct sockaddr_in addr = { .sin_family = AF_INET };
  socklen_t alen = sizeof addr;
  struct epoll_event ev, events[256];

  for (int i = 1; i < argc; i += 2) /* an option and its value */
    {
      const char *v = i + 1 < argc ? argv[i + 1] : NULL;
      if (v && strcmp (argv[i], "--port") == 0)
        port = atoi (v);
      else if (v && strcmp (argv[i], "--delay") == 0)
        opt_delay_ms = (unsigned) atoi (v);
      else if (v && strcmp (argv[i], "--chunks") == 0)
        opt_chunks = (unsigned) atoi (v);
      else if (v && strcmp (argv[i], "--interval") == 0)
        opt_interval_ms = (unsigned) atoi (v);
      else
        {
          fprintf (stderr, "usage: %s [--port N] [--delay MS] [--chunks N] [--interval MS]\n", argv[0]);
          return 2;
        }
    }
  if (opt_chunks < 1)
    opt_chunks = 1;
  signal (SIGPIPE, SIG_IGN);
  signal (SIGTERM, on_signal);
  signal (SIGINT, on_signal);

  lfd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  addr.sin_port = htons ((uint16_t) port);
  if (lfd < 0 || bind (lfd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (lfd, 4096) < 0 ||
      getsockname (lfd, (struct sockaddr *) &addr, &alen) < 0)
    {
      perror ("ens-bench-upstream: listen");
      return 1;
    }
  printf ("%u\n", ntohs (addr.sin_port));
  fflush (stdout);

  epfd = epoll_create1 (EPOLL_CLOEXEC);
  ev.events = EPOLLIN;
  ev.data.ptr = NULL;
  epoll_ctl (epfd, EPOLL_CTL_ADD, lfd, &ev);
  while (!stop)
    {
      int n = epoll_wait (epfd, events, 256, next_timeout (now_ms ()));
      int64_t now;
      if (n < 0 && errno != EINTR)
        {
          perror ("ens-bench-upstream: epoll_wait");
          return 1;
        }
      for (int i = 0; i < n; i++)
        {
          Conn *c = events[i].data.ptr;
          if (c == NULL)
            {
              int fd;
              while ((fd = accept4 (lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                {
                  Conn *nc = calloc (1, sizeof *nc);
                  if (nc == NULL)
                    abort ();
                  nc->fd = fd;
                  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                  ev.events = EPOLLIN;
                  ev.data.ptr = nc;
                  epoll_ctl (epfd, EPOLL_CTL_ADD, fd, &ev);
                }
              continue;
            }
          if (events[i].events & EPOLLOUT)
            {
              if (conn_flush (c) < 0)
                continue;
              if (!c->busy)
                handle_input (c);
            }
          if (!c->closed && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
            conn_readable (c);
        }
      now = now_ms ();
      run_queue (&q_delay, now);
      run_queue (&q_interval, now);
      while (graveyard)
        {
          Conn *c = graveyard;
          graveyard = c->next;
          conn_free (c);
        }
    }
  return 0;
}
