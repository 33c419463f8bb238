/* ens-unix-hold.c — events held back until the connection that asked for
 * them has closed (see ens-unix-hold.h). */
#include "ens-unix-hold.h"

typedef struct {
  gpointer target;
  GBytes *bytes;
} Held;

typedef struct {
  EnsUnixHolds *owner;
  char *key;
  gpointer asker;
  guint timer;
  GQueue held; /* Held*, in order */
} Hold;

struct _EnsUnixHolds {
  GHashTable *by_key; /* key -> Hold* (owned) */
  EnsUnixReleaseFunc release;
  EnsUnixExpiredFunc expired;
  gpointer user_data;
};

static void
held_free (Held *h)
{
  g_bytes_unref (h->bytes);
  g_free (h);
}

static void
hold_free (Hold *hold)
{
  if (hold->timer)
    g_source_remove (hold->timer);
  g_queue_clear_full (&hold->held, (GDestroyNotify) held_free);
  g_free (hold->key);
  g_free (hold);
}

EnsUnixHolds *
ens_unix_holds_new (EnsUnixReleaseFunc release, EnsUnixExpiredFunc expired, gpointer user_data)
{
  EnsUnixHolds *holds = g_new0 (EnsUnixHolds, 1);

  holds->by_key = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) hold_free);
  holds->release = release;
  holds->expired = expired;
  holds->user_data = user_data;
  return holds;
}

void
ens_unix_holds_free (EnsUnixHolds *holds)
{
  if (holds == NULL)
    return;
  g_hash_table_unref (holds->by_key);
  g_free (holds);
}

static gboolean
hold_expired (gpointer data)
{
  Hold *hold = data;

  hold->timer = 0;
  hold->owner->expired (hold->asker, hold->owner->user_data);
  return G_SOURCE_REMOVE;
}

void
ens_unix_holds_begin (EnsUnixHolds *holds, const char *key, gpointer asker, guint ms)
{
  Hold *hold;

  if (key == NULL || g_hash_table_contains (holds->by_key, key))
    return;
  hold = g_new0 (Hold, 1);
  hold->owner = holds;
  hold->key = g_strdup (key);
  hold->asker = asker;
  g_queue_init (&hold->held);
  hold->timer = g_timeout_add (ms, hold_expired, hold);
  g_hash_table_insert (holds->by_key, hold->key, hold);
}

gboolean
ens_unix_holds_take (EnsUnixHolds *holds, const char *key, gpointer target, GBytes *bytes)
{
  Hold *hold = key ? g_hash_table_lookup (holds->by_key, key) : NULL;
  Held *h;

  if (hold == NULL)
    return FALSE;
  h = g_new0 (Held, 1);
  h->target = target;
  h->bytes = g_bytes_ref (bytes);
  g_queue_push_tail (&hold->held, h);
  return TRUE;
}

void
ens_unix_holds_end (EnsUnixHolds *holds, gpointer asker)
{
  GHashTableIter iter;
  gpointer value;
  GPtrArray *ended = NULL;

  g_hash_table_iter_init (&iter, holds->by_key);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Hold *) value)->asker == asker)
      {
        if (ended == NULL)
          ended = g_ptr_array_new ();
        g_ptr_array_add (ended, value);
        g_hash_table_iter_steal (&iter);
      }
  for (guint i = 0; ended && i < ended->len; i++)
    {
      Hold *hold = g_ptr_array_index (ended, i);
      Held *h;

      while ((h = g_queue_pop_head (&hold->held)))
        {
          holds->release (h->target, h->bytes, holds->user_data);
          held_free (h);
        }
      hold_free (hold);
    }
  if (ended)
    g_ptr_array_unref (ended);
}

void
ens_unix_holds_forget_target (EnsUnixHolds *holds, gpointer target)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, holds->by_key);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Hold *hold = value;
      for (GList *l = hold->held.head; l;)
        {
          GList *next = l->next;
          if (((Held *) l->data)->target == target)
            {
              held_free (l->data);
              g_queue_delete_link (&hold->held, l);
            }
          l = next;
        }
    }
}

gboolean
ens_unix_holds_any (EnsUnixHolds *holds)
{
  return g_hash_table_size (holds->by_key) > 0;
}
