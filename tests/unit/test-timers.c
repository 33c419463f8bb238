/* test-timers.c — EnsDeadlines: every pending deadline runs once, not
 * before it is due, in the order of the dues; removed ones never run;
 * deadlines added or removed from inside a run are honoured; freeing drops
 * what is pending.  EnsSoon: asked twice it runs once, cancelled it does
 * not run, asked from its own run it runs again at the next turn. */
#include "ens-timers.h"

typedef struct {
  EnsDeadline deadline;
  guint id;
  guint runs;
  gint64 ran_us;
  gboolean removed;
} Item;

typedef struct {
  EnsDeadlines *deadlines;
  Item *items;
  guint n_items;
  GArray *order; /* ids, in the order they ran */
  guint left;
  GMainLoop *loop;
  Item *extra; /* added from inside a run */
} Run;

static void
item_due (EnsDeadline *deadline, gpointer data)
{
  Run *run = data;
  Item *item = (Item *) ((char *) deadline - G_STRUCT_OFFSET (Item, deadline));

  g_assert_cmpuint (deadline->slot, ==, 0); /* no longer pending */
  item->runs++;
  item->ran_us = g_get_monotonic_time ();
  g_array_append_val (run->order, item->id);
  /* The first to run removes one still pending and adds one. */
  if (run->order->len == 1)
    {
      for (guint i = run->n_items; i-- > 0;)
        if (run->items[i].deadline.slot != 0 && !run->items[i].removed)
          {
            ens_deadlines_remove (run->deadlines, &run->items[i].deadline);
            run->items[i].removed = TRUE;
            run->left--;
            break;
          }
      ens_deadlines_add (run->deadlines, &run->extra->deadline, g_get_monotonic_time () + 5000);
      run->left++;
    }
  if (--run->left == 0)
    g_main_loop_quit (run->loop);
}

static void
test_deadlines (void)
{
  enum { N = 300 };
  Run run = { 0 };
  Item items[N] = { { { 0 } } }, extra = { .id = N };
  GRand *rand = g_rand_new_with_seed (42);
  gint64 start = g_get_monotonic_time ();

  run.deadlines = ens_deadlines_new (item_due, &run);
  run.items = items;
  run.n_items = N;
  run.order = g_array_new (FALSE, FALSE, sizeof (guint));
  run.loop = g_main_loop_new (NULL, FALSE);
  run.extra = &extra;
  for (guint i = 0; i < N; i++)
    {
      items[i].id = i;
      ens_deadlines_add (run.deadlines, &items[i].deadline, start + 1000 * g_rand_int_range (rand, 1, 120));
    }
  run.left = N;
  /* A third removed before the loop runs. */
  for (guint i = 0; i < N; i += 3)
    {
      ens_deadlines_remove (run.deadlines, &items[i].deadline);
      ens_deadlines_remove (run.deadlines, &items[i].deadline); /* twice: nothing */
      items[i].removed = TRUE;
      run.left--;
    }
  g_assert_cmpuint (ens_deadlines_pending (run.deadlines), ==, run.left);
  g_main_loop_run (run.loop);

  g_assert_cmpuint (ens_deadlines_pending (run.deadlines), ==, 0);
  for (guint i = 0; i < N; i++)
    {
      if (items[i].removed)
        g_assert_cmpuint (items[i].runs, ==, 0);
      else
        {
          g_assert_cmpuint (items[i].runs, ==, 1);
          g_assert_cmpint (items[i].ran_us, >=, items[i].deadline.due_us);
        }
    }
  g_assert_cmpuint (extra.runs, ==, 1);
  /* In the order of their dues. */
  for (guint i = 1; i < run.order->len; i++)
    {
      guint a = g_array_index (run.order, guint, i - 1), b = g_array_index (run.order, guint, i);
      Item *x = a == N ? &extra : &items[a], *y = b == N ? &extra : &items[b];
      g_assert_cmpint (x->deadline.due_us, <=, y->deadline.due_us);
    }

  /* Freed with deadlines pending: none runs, each is left not pending. */
  guint runs_before[10];
  for (guint i = 0; i < 10; i++)
    {
      runs_before[i] = items[i].runs;
      ens_deadlines_add (run.deadlines, &items[i].deadline, g_get_monotonic_time () + 1000);
    }
  ens_deadlines_free (run.deadlines);
  for (guint i = 0; i < 10; i++)
    g_assert_cmpuint (items[i].deadline.slot, ==, 0);
  g_usleep (3000);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  for (guint i = 0; i < 10; i++)
    g_assert_cmpuint (items[i].runs, ==, runs_before[i]);

  g_array_unref (run.order);
  g_main_loop_unref (run.loop);
  g_rand_free (rand);
}

typedef struct {
  EnsSoon *soon;
  guint runs;
  guint again; /* asks itself again this many times */
} Soon;

static void
soon_run (gpointer data)
{
  Soon *s = data;

  s->runs++;
  if (s->again > 0)
    {
      s->again--;
      ens_soon_ask (s->soon);
    }
}

static void
spin (void)
{
  for (int i = 0; i < 5; i++)
    g_main_context_iteration (NULL, FALSE);
}

static void
test_soon (void)
{
  Soon s = { 0 };

  s.soon = ens_soon_new (G_PRIORITY_HIGH_IDLE, soon_run, &s);
  spin ();
  g_assert_cmpuint (s.runs, ==, 0); /* not asked: never runs */
  ens_soon_ask (s.soon);
  ens_soon_ask (s.soon);
  g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (s.runs, ==, 1);
  spin ();
  g_assert_cmpuint (s.runs, ==, 1);

  ens_soon_ask (s.soon);
  g_assert_true (ens_soon_cancel (s.soon));
  g_assert_false (ens_soon_cancel (s.soon));
  spin ();
  g_assert_cmpuint (s.runs, ==, 1);

  s.again = 2;
  ens_soon_ask (s.soon);
  g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (s.runs, ==, 2); /* once a turn */
  spin ();
  g_assert_cmpuint (s.runs, ==, 4);
  ens_soon_free (s.soon);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/timers/deadlines", test_deadlines);
  g_test_add_func ("/timers/soon", test_soon);
  return g_test_run ();
}
