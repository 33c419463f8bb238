/* test-outbox.c — plugins/common/outbox: the slow-consumer policy (oldest
 * events dropped, never a reply, never a partly written message), both
 * limits, the drop report, shared bytes, and a random walk against a plain
 * list model of the same policy. */
#include "ens-outbox.h"

#include <string.h>

static GBytes *
msg (const char *tag, gsize size)
{
  char *data = g_malloc (size);

  memset (data, '.', size);
  memcpy (data, tag, MIN (strlen (tag), size));
  return g_bytes_new_take (data, size);
}

/* The tag at the start of the next popped message, or "" when empty. */
static char *
pop_tag (EnsOutbox *ob)
{
  g_autoptr (GBytes) b = ens_outbox_pop (ob);
  const char *data;
  gsize len;

  if (b == NULL)
    return g_strdup ("");
  data = g_bytes_get_data (b, &len);
  {
    const char *dot = memchr (data, '.', len); /* the bytes have no terminating NUL */
    return g_strndup (data, dot ? (gsize) (dot - data) : len);
  }
}

#define ASSERT_POP(ob, tag)                 \
  G_STMT_START                              \
  {                                         \
    g_autofree char *t_ = pop_tag (ob);     \
    g_assert_cmpstr (t_, ==, tag);          \
  }                                         \
  G_STMT_END

static void
push (EnsOutbox *ob, const char *tag, gsize size, gboolean droppable, guint expect_dropped)
{
  g_autoptr (GBytes) b = msg (tag, size);
  g_assert_cmpuint (ens_outbox_push (ob, b, droppable), ==, expect_dropped);
}

static void
test_message_limit (void)
{
  g_autoptr (EnsOutbox) ob = ens_outbox_new (4, 1 << 20);
  guint64 count = 0, total = 0;

  push (ob, "r1", 10, FALSE, 0);
  push (ob, "e1", 10, TRUE, 0);
  push (ob, "e2", 10, TRUE, 0);
  push (ob, "r2", 10, FALSE, 0);
  g_assert_true (ens_outbox_full (ob));
  /* Full: each event makes room by dropping the oldest event. */
  push (ob, "e3", 10, TRUE, 1);
  push (ob, "e4", 10, TRUE, 1);
  g_assert_cmpuint (ens_outbox_length (ob), ==, 4);
  push (ob, "e5", 10, TRUE, 1);
  /* Replies always go in, past the limit. */
  push (ob, "r3", 10, FALSE, 0);
  push (ob, "r4", 10, FALSE, 0);
  g_assert_cmpuint (ens_outbox_length (ob), ==, 6);
  g_assert_true (ens_outbox_over (ob, 1));
  g_assert_false (ens_outbox_over (ob, 2));
  /* Replies alone fill it: every event goes, the new one too. */
  push (ob, "e6", 10, TRUE, 3);
  g_assert_cmpuint (ens_outbox_dropped_total (ob), ==, 6);
  g_assert_false (ens_outbox_take_dropped (ob, &count, &total)); /* not low yet */

  ASSERT_POP (ob, "r1");
  ASSERT_POP (ob, "r2");
  ASSERT_POP (ob, "r3");
  g_assert_cmpuint (ens_outbox_length (ob), ==, 1);
  g_assert_true (ens_outbox_low (ob));
  g_assert_true (ens_outbox_take_dropped (ob, &count, &total));
  g_assert_cmpuint (count, ==, 6);
  g_assert_cmpuint (total, ==, 6);
  g_assert_false (ens_outbox_take_dropped (ob, &count, &total)); /* reported once */
  ASSERT_POP (ob, "r4");
  ASSERT_POP (ob, "");
  g_assert_true (ens_outbox_is_empty (ob));
  g_assert_cmpuint (ens_outbox_bytes (ob), ==, 0);
}

static void
test_byte_limit (void)
{
  g_autoptr (EnsOutbox) ob = ens_outbox_new (1000, 300);
  guint dropped = 0;

  for (int i = 0; i < 10; i++)
    {
      g_autofree char *tag = g_strdup_printf ("e%d", i);
      g_autoptr (GBytes) b = msg (tag, 100);
      dropped += ens_outbox_push (ob, b, TRUE);
    }
  g_assert_cmpuint (dropped, ==, 7);
  g_assert_cmpuint (ens_outbox_length (ob), ==, 3);
  g_assert_cmpuint (ens_outbox_bytes (ob), ==, 300);
  g_assert_true (ens_outbox_full (ob));
  /* A bigger event drops as many older ones as it needs. */
  push (ob, "big", 250, TRUE, 3);
  g_assert_cmpuint (ens_outbox_length (ob), ==, 1);
  /* Bigger than the whole limit: passes only into an otherwise empty queue. */
  push (ob, "huge", 1000, TRUE, 1); /* "big" makes way, then "huge" is alone */
  g_assert_cmpuint (ens_outbox_bytes (ob), ==, 1000);
  push (ob, "r", 10, FALSE, 0);
  push (ob, "huge2", 1000, TRUE, 2); /* huge makes way; r stays; huge2 does not fit */
  ASSERT_POP (ob, "r");
  ASSERT_POP (ob, "");
}

static void
test_partly_written_head (void)
{
  g_autoptr (EnsOutbox) ob = ens_outbox_new (2, 1 << 20);
  struct iovec iov[8];
  guint n;

  push (ob, "e1", 10, TRUE, 0);
  push (ob, "e2", 10, TRUE, 0);
  n = ens_outbox_peek (ob, iov, 8);
  g_assert_cmpuint (n, ==, 2);
  ens_outbox_consume (ob, 4); /* e1 is on the wire, partly */
  push (ob, "e3", 10, TRUE, 1);   /* e2 goes, not e1 */
  n = ens_outbox_peek (ob, iov, 8);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpuint (iov[0].iov_len, ==, 6);
  g_assert_cmpint (memcmp ((char *) iov[0].iov_base - 4, "e1", 2), ==, 0);
  g_assert_cmpint (memcmp (iov[1].iov_base, "e3", 2), ==, 0);
  /* A write that ends inside the second message. */
  ens_outbox_consume (ob, 6 + 3);
  g_assert_cmpuint (ens_outbox_length (ob), ==, 1);
  n = ens_outbox_peek (ob, iov, 8);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpuint (iov[0].iov_len, ==, 7);
  ens_outbox_consume (ob, 7);
  g_assert_true (ens_outbox_is_empty (ob));
  g_assert_cmpuint (ens_outbox_peek (ob, iov, 8), ==, 0);
}

static void
test_shared_bytes (void)
{
  g_autoptr (EnsOutbox) a = ens_outbox_new (8, 1024);
  g_autoptr (EnsOutbox) b = ens_outbox_new (8, 1024);
  g_autoptr (GBytes) event = msg ("ev", 64);
  g_autoptr (GBytes) from_a = NULL;
  g_autoptr (GBytes) from_b = NULL;

  ens_outbox_push (a, event, TRUE);
  ens_outbox_push (b, event, TRUE);
  from_a = ens_outbox_pop (a);
  from_b = ens_outbox_pop (b);
  /* The very bytes, by reference: no copy per subscriber. */
  g_assert_true (from_a == event);
  g_assert_true (from_b == event);
}

/* A head reply nobody writes, and a flood of events: the holes the drops
 * leave are compacted, and the order survives. */
#define FLOOD 20000
static void
test_flood_behind_stuck_reply (void)
{
  g_autoptr (EnsOutbox) ob = ens_outbox_new (8, 1 << 20);
  guint dropped = 0;

  push (ob, "r", 10, FALSE, 0);
  for (int i = 0; i < FLOOD; i++)
    {
      char tag[16];
      g_autoptr (GBytes) b = NULL;
      g_snprintf (tag, sizeof tag, "e%d", i);
      b = g_bytes_new (tag, strlen (tag));
      dropped += ens_outbox_push (ob, b, TRUE);
    }
  g_assert_cmpuint (dropped, ==, FLOOD - 7);
  g_assert_cmpuint (ens_outbox_length (ob), ==, 8);
  ASSERT_POP (ob, "r");
  for (int i = FLOOD - 7; i < FLOOD; i++)
    {
      g_autofree char *tag = g_strdup_printf ("e%d", i);
      ASSERT_POP (ob, tag);
    }
  ASSERT_POP (ob, "");
}

/* ---- the model: the documented policy on a plain list ---- */

typedef struct {
  GBytes *bytes;
  gboolean droppable;
} Item;

typedef struct {
  GQueue q; /* Item* */
  gsize bytes, offset;
  guint max_messages;
  gsize max_bytes;
  guint64 dropped;
} Model;

static gboolean
model_fits (Model *m, gsize size)
{
  return m->q.length + 1 <= m->max_messages && m->bytes + size <= m->max_bytes;
}

static guint
model_push (Model *m, GBytes *bytes, gboolean droppable)
{
  gsize size = g_bytes_get_size (bytes);
  guint dropped = 0;

  if (droppable)
    while (m->q.length > 0 && !model_fits (m, size))
      {
        GList *l = m->q.head;
        if (m->offset > 0)
          l = l->next;
        while (l && !((Item *) l->data)->droppable)
          l = l->next;
        if (l == NULL)
          {
            m->dropped++;
            return dropped + 1;
          }
        m->bytes -= g_bytes_get_size (((Item *) l->data)->bytes);
        g_bytes_unref (((Item *) l->data)->bytes);
        g_free (l->data);
        g_queue_delete_link (&m->q, l);
        m->dropped++;
        dropped++;
      }
  {
    Item *it = g_new (Item, 1);
    it->bytes = g_bytes_ref (bytes);
    it->droppable = droppable;
    g_queue_push_tail (&m->q, it);
    m->bytes += size;
  }
  return dropped;
}

static void
model_consume (Model *m, gsize n)
{
  m->offset += n;
  while (m->q.length > 0)
    {
      Item *it = g_queue_peek_head (&m->q);
      gsize size = g_bytes_get_size (it->bytes);
      if (m->offset < size)
        break;
      m->offset -= size;
      m->bytes -= size;
      g_bytes_unref (it->bytes);
      g_free (g_queue_pop_head (&m->q));
    }
}

static void
item_free (Item *it)
{
  g_bytes_unref (it->bytes);
  g_free (it);
}

static void
test_random_walk (void)
{
  GRand *rand = g_rand_new_with_seed (g_test_rand_int ());

  for (int round = 0; round < 20; round++)
    {
      guint max_messages = g_rand_int_range (rand, 1, 40);
      gsize max_bytes = g_rand_int_range (rand, 1, 4000);
      g_autoptr (EnsOutbox) ob = ens_outbox_new (max_messages, max_bytes);
      Model m = { G_QUEUE_INIT, 0, 0, max_messages, max_bytes, 0 };
      guint serial = 0;

      for (int step = 0; step < 2000; step++)
        {
          guint op = g_rand_int_range (rand, 0, 10);
          if (op < 6)
            {
              g_autofree char *tag = g_strdup_printf ("m%u", serial++);
              g_autoptr (GBytes) b = msg (tag, g_rand_int_range (rand, 8, 300));
              gboolean droppable = op < 5;
              g_assert_cmpuint (ens_outbox_push (ob, b, droppable), ==, model_push (&m, b, droppable));
            }
          else if (op < 9)
            {
              struct iovec iov[4];
              guint n = ens_outbox_peek (ob, iov, G_N_ELEMENTS (iov));
              gsize avail = 0, take;
              GList *l = m.q.head;
              /* What it shows is the model's head, from the same offset. */
              for (guint i = 0; i < n; i++, l = l->next)
                {
                  const guint8 *data = g_bytes_get_data (((Item *) l->data)->bytes, NULL);
                  g_assert_true ((guint8 *) iov[i].iov_base == data + (i == 0 ? m.offset : 0));
                  avail += iov[i].iov_len;
                }
              g_assert_cmpuint (n, ==, MIN (m.q.length, G_N_ELEMENTS (iov)));
              take = avail ? g_rand_int_range (rand, 0, avail + 1) : 0;
              ens_outbox_consume (ob, take);
              model_consume (&m, take);
            }
          else if (m.offset == 0)
            {
              g_autoptr (GBytes) b = ens_outbox_pop (ob);
              Item *it = g_queue_pop_head (&m.q);
              g_assert_true (b == (it ? it->bytes : NULL));
              if (it)
                {
                  m.bytes -= g_bytes_get_size (it->bytes);
                  item_free (it);
                }
            }
          g_assert_cmpuint (ens_outbox_length (ob), ==, m.q.length);
          g_assert_cmpuint (ens_outbox_bytes (ob), ==, m.bytes);
          g_assert_cmpuint (ens_outbox_dropped_total (ob), ==, m.dropped);
        }
      g_queue_clear_full (&m.q, (GDestroyNotify) item_free);
    }
  g_rand_free (rand);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/outbox/message-limit", test_message_limit);
  g_test_add_func ("/outbox/byte-limit", test_byte_limit);
  g_test_add_func ("/outbox/partly-written-head", test_partly_written_head);
  g_test_add_func ("/outbox/shared-bytes", test_shared_bytes);
  g_test_add_func ("/outbox/flood-behind-stuck-reply", test_flood_behind_stuck_reply);
  g_test_add_func ("/outbox/random-walk", test_random_walk);
  return g_test_run ();
}
