/* ens-redis-source.c — a hiredis async context on the GLib main loop.
 *
 * What hiredis' own GLib adapter does, with one difference that matters
 * under load: a command written while the loop is dispatching (an event
 * published by a client, say) goes out before the loop next sleeps, from
 * the source's prepare, instead of costing a wake-up of the loop and a
 * whole iteration of it.  Several commands queued in one dispatch still
 * leave in one write.  Only the plain write happens there; anything that
 * could run a hiredis callback (connecting, a failed write that
 * disconnects) is left to dispatch, as the adapter does.
 *
 * The source is used from the main thread only (hiredis contexts are not
 * thread-safe anyway), so changing what it polls needs no wake-up. */
#include "ens-redis.h"

#include <sys/ioctl.h>

#define READ_ROUNDS 16 /* of 16 KiB, per dispatch */

typedef struct
{
  GSource source;
  redisAsyncContext *ac;
  gpointer tag;         /* the fd's entry in the source */
  gboolean want_read;   /* what hiredis asked for */
  gboolean want_write;
  gboolean poll_write;  /* the write waits for POLLOUT (connecting, or the socket is full) */
  GIOCondition polled;  /* what the source polls for now */
} RedisSource;

/* Changing what a source polls for wakes the loop up once more: only when
 * it changes. */
static void
update (RedisSource *s)
{
  GIOCondition events = (s->want_read ? G_IO_IN : 0) | (s->want_write && s->poll_write ? G_IO_OUT : 0);

  if (events != s->polled && s->tag != NULL)
    {
      s->polled = events;
      g_source_modify_unix_fd ((GSource *) s, s->tag, events);
    }
}

static gboolean
connected (RedisSource *s)
{
  redisContext *c = &s->ac->c;
  return (c->flags & REDIS_CONNECTED) && !(c->flags & (REDIS_DISCONNECTING | REDIS_FREEING)) && !c->err;
}

static void
add_read (void *data)
{
  RedisSource *s = data;
  s->want_read = TRUE;
  update (s);
}

static void
del_read (void *data)
{
  RedisSource *s = data;
  s->want_read = FALSE;
  update (s);
}

static void
add_write (void *data)
{
  RedisSource *s = data;
  s->want_write = TRUE;
  s->poll_write = !connected (s); /* a connect completes on POLLOUT */
  update (s);
  if (!g_main_context_is_owner (g_source_get_context ((GSource *) s)))
    g_main_context_wakeup (g_source_get_context ((GSource *) s)); /* its prepare must run */
}

static void
del_write (void *data)
{
  RedisSource *s = data;
  s->want_write = FALSE;
  s->poll_write = FALSE;
  update (s);
}

/* Before the loop polls: a connected link's pending output is written now.
 * Whatever does not fit waits for POLLOUT; an error is left for dispatch
 * (redisAsyncHandleWrite sees it and disconnects). */
static gboolean
source_prepare (GSource *source, gint *timeout)
{
  RedisSource *s = (RedisSource *) source;
  int done = 0;

  *timeout = -1;
  if (s->ac == NULL || !s->want_write || s->poll_write)
    return FALSE;
  if (!connected (s))
    {
      s->poll_write = TRUE;
      update (s);
      return FALSE;
    }
  if (redisBufferWrite (&s->ac->c, &done) != REDIS_OK)
    return TRUE; /* dispatch handles the error */
  if (done)
    del_write (s);
  else
    {
      s->poll_write = TRUE;
      update (s);
    }
  add_read (s); /* as hiredis does after every write */
  return FALSE;
}

static gboolean
source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  RedisSource *s = (RedisSource *) source;
  GIOCondition revents = s->tag ? g_source_query_unix_fd (source, s->tag) : 0;

  (void) callback;
  (void) user_data;
  if (s->ac == NULL)
    return G_SOURCE_CONTINUE;
  /* writable (or a write error found in prepare: hiredis finds it again
   * and disconnects) */
  if (s->want_write && ((revents & (G_IO_OUT | G_IO_ERR | G_IO_HUP)) || s->ac->c.err))
    {
      s->poll_write = FALSE; /* prepare writes the rest, or asks for POLLOUT again */
      redisAsyncHandleWrite (s->ac);
    }
  /* The write may have freed the context (cleanup set s->ac to NULL).
   * hiredis reads 16 KiB at a time: more is read while more is there (up
   * to READ_ROUNDS), so that a busy link is served in large batches — what
   * the replies bring is then written to each subscriber in one write, not
   * one per 16 KiB — and keeps up with Redis, which drops a subscriber
   * whose backlog grows past its output buffer limit. */
  for (guint round = 0; round < READ_ROUNDS && s->ac != NULL && s->want_read; round++)
    {
      int pending = 0;

      if (round == 0 ? !(revents & (G_IO_IN | G_IO_ERR | G_IO_HUP))
                     : ioctl (s->ac->c.fd, FIONREAD, &pending) != 0 || pending <= 0)
        break;
      redisAsyncHandleRead (s->ac);
    }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs source_funcs = {
  .prepare = source_prepare,
  .dispatch = source_dispatch,
};

static void
source_cleanup (void *data)
{
  RedisSource *s = data;

  s->ac = NULL;
  if (s->tag != NULL)
    {
      g_source_remove_unix_fd ((GSource *) s, s->tag);
      s->tag = NULL;
    }
  g_source_destroy ((GSource *) s);
  g_source_unref ((GSource *) s);
}

void
ens_redis_source_attach (redisAsyncContext *ac)
{
  RedisSource *s = (RedisSource *) g_source_new (&source_funcs, sizeof (RedisSource));

  g_source_set_name ((GSource *) s, "redis");
  /* GLib takes a source's fds out of the poll set while it dispatches,
   * unless it may recurse: each time a wake-up of the loop and one more
   * iteration.  hiredis callbacks never run the loop. */
  g_source_set_can_recurse ((GSource *) s, TRUE);
  s->ac = ac;
  s->tag = g_source_add_unix_fd ((GSource *) s, ac->c.fd, 0);
  ac->ev.data = s;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = source_cleanup; /* hiredis frees the context: the source goes with it */
  g_source_attach ((GSource *) s, NULL);
}
