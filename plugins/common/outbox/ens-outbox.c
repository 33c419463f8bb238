/* ens-outbox.c — one connection's outbound queue (see ens-outbox.h).
 *
 * A ring of slots, oldest first.  A dropped event leaves a hole (a slot
 * without bytes) that writers skip and that leaves the ring when it reaches
 * the head, or when holes outnumber messages and the ring is compacted, so
 * a queue that keeps dropping stays as small as its limits.  The head is
 * never a hole.  `kept` counts the slots at the head known to hold nothing
 * droppable (replies, holes, the partly written head), so finding the
 * oldest droppable event does not rescan them: pushing and dropping cost
 * O(1) amortised. */
#include "ens-outbox.h"

#define MIN_CAPACITY 16

typedef struct {
  GBytes *bytes; /* NULL: a hole, an event dropped in place */
  gsize size;
  gboolean droppable;
} Slot;

struct _EnsOutbox {
  Slot *ring;
  guint capacity; /* a power of two */
  guint head;     /* the oldest slot */
  guint slots;    /* slots in use, holes included */
  guint length;   /* messages */
  gsize bytes;    /* bytes of the messages */
  gsize offset;   /* bytes of the head already written */
  guint kept;     /* slots from the head holding nothing droppable */
  guint max_messages;
  gsize max_bytes;
  guint64 dropped, dropped_total;
};

static inline Slot *
slot_at (EnsOutbox *ob, guint i)
{
  return &ob->ring[(ob->head + i) & (ob->capacity - 1)];
}

EnsOutbox *
ens_outbox_new (guint max_messages, gsize max_bytes)
{
  EnsOutbox *ob = g_new0 (EnsOutbox, 1);

  ob->capacity = MIN_CAPACITY;
  ob->ring = g_new (Slot, ob->capacity);
  ens_outbox_set_limits (ob, max_messages, max_bytes);
  return ob;
}

void
ens_outbox_free (EnsOutbox *ob)
{
  if (ob == NULL)
    return;
  ens_outbox_clear (ob);
  g_free (ob->ring);
  g_free (ob);
}

void
ens_outbox_clear (EnsOutbox *ob)
{
  for (guint i = 0; i < ob->slots; i++)
    if (slot_at (ob, i)->bytes)
      g_bytes_unref (slot_at (ob, i)->bytes);
  ob->head = ob->slots = ob->length = ob->kept = 0;
  ob->bytes = ob->offset = 0;
}

void
ens_outbox_set_limits (EnsOutbox *ob, guint max_messages, gsize max_bytes)
{
  ob->max_messages = MAX (max_messages, 1);
  ob->max_bytes = MAX (max_bytes, 1);
}

/* Moves the live slots to a new ring of @capacity, holes left out. */
static void
relocate (EnsOutbox *ob, guint capacity)
{
  Slot *ring = g_new (Slot, capacity);
  guint n = 0, kept = 0;

  for (guint i = 0; i < ob->slots; i++)
    {
      Slot *s = slot_at (ob, i);
      if (s->bytes == NULL)
        continue;
      if (i < ob->kept)
        kept++;
      ring[n++] = *s;
    }
  g_free (ob->ring);
  ob->ring = ring;
  ob->capacity = capacity;
  ob->head = 0;
  ob->slots = n;
  ob->kept = kept;
}

/* Removes the head slot (its bytes already taken or released), then any
 * holes behind it. */
static void
remove_head (EnsOutbox *ob)
{
  do
    {
      ob->head = (ob->head + 1) & (ob->capacity - 1);
      ob->slots--;
      if (ob->kept > 0)
        ob->kept--;
    }
  while (ob->slots > 0 && ob->ring[ob->head].bytes == NULL);
  if (ob->slots == 0)
    ob->head = 0;
}

/* Drops the oldest droppable event not partly written; FALSE if none. */
static gboolean
drop_oldest (EnsOutbox *ob)
{
  guint i = MAX (ob->kept, ob->offset > 0 ? 1u : 0u);

  for (; i < ob->slots; i++)
    {
      Slot *s = slot_at (ob, i);
      if (s->bytes == NULL || !s->droppable)
        continue;
      g_bytes_unref (s->bytes);
      s->bytes = NULL;
      ob->length--;
      ob->bytes -= s->size;
      ob->dropped++;
      ob->dropped_total++;
      ob->kept = i + 1;
      if (i == 0)
        {
          ob->kept = 0;
          remove_head (ob);
        }
      /* Holes outnumber messages: compact, so they cannot pile up behind
       * a head that does not move. */
      if (ob->slots - ob->length > MAX (ob->length, (guint) MIN_CAPACITY))
        relocate (ob, ob->capacity);
      return TRUE;
    }
  ob->kept = ob->slots;
  return FALSE;
}

static gboolean
fits (EnsOutbox *ob, gsize size)
{
  return ob->length + 1 <= ob->max_messages && ob->bytes + size <= ob->max_bytes;
}

guint
ens_outbox_push (EnsOutbox *ob, GBytes *bytes, gboolean droppable)
{
  gsize size = g_bytes_get_size (bytes);
  guint64 before = ob->dropped_total;
  Slot *s;

  if (droppable)
    {
      while (ob->length > 0 && !fits (ob, size) && drop_oldest (ob))
        ;
      if (ob->length > 0 && !fits (ob, size))
        {
          /* Only replies (or a partly written event) left: the new one goes. */
          ob->dropped++;
          ob->dropped_total++;
          return (guint) (ob->dropped_total - before);
        }
    }
  if (ob->slots == ob->capacity)
    relocate (ob, ob->capacity * 2);
  s = slot_at (ob, ob->slots++);
  s->bytes = g_bytes_ref (bytes);
  s->size = size;
  s->droppable = droppable;
  ob->length++;
  ob->bytes += size;
  return (guint) (ob->dropped_total - before);
}

guint
ens_outbox_length (EnsOutbox *ob)
{
  return ob->length;
}

gsize
ens_outbox_bytes (EnsOutbox *ob)
{
  return ob->bytes;
}

gboolean
ens_outbox_is_empty (EnsOutbox *ob)
{
  return ob->length == 0;
}

gboolean
ens_outbox_full (EnsOutbox *ob)
{
  return ob->length >= ob->max_messages || ob->bytes >= ob->max_bytes;
}

gboolean
ens_outbox_low (EnsOutbox *ob)
{
  return ob->length <= ob->max_messages / 2 && ob->bytes <= ob->max_bytes / 2;
}

gboolean
ens_outbox_over (EnsOutbox *ob, guint factor)
{
  return ob->length >= (guint64) factor * ob->max_messages || ob->bytes >= (guint64) factor * ob->max_bytes;
}

guint
ens_outbox_peek (EnsOutbox *ob, struct iovec *iov, guint max)
{
  guint n = 0;

  for (guint i = 0; i < ob->slots && n < max; i++)
    {
      Slot *s = slot_at (ob, i);
      gsize skip = n == 0 ? ob->offset : 0;
      if (s->bytes == NULL)
        continue;
      iov[n].iov_base = (guint8 *) g_bytes_get_data (s->bytes, NULL) + skip;
      iov[n].iov_len = s->size - skip;
      n++;
    }
  return n;
}

void
ens_outbox_consume (EnsOutbox *ob, gsize written)
{
  ob->offset += written;
  while (ob->slots > 0)
    {
      Slot *s = &ob->ring[ob->head];
      if (ob->offset < s->size)
        break;
      ob->offset -= s->size;
      ob->length--;
      ob->bytes -= s->size;
      g_bytes_unref (s->bytes);
      remove_head (ob);
    }
  g_warn_if_fail (ob->slots > 0 || ob->offset == 0);
}

GBytes *
ens_outbox_pop (EnsOutbox *ob)
{
  Slot *s;
  GBytes *bytes;

  if (ob->slots == 0)
    return NULL;
  g_return_val_if_fail (ob->offset == 0, NULL);
  s = &ob->ring[ob->head];
  bytes = s->bytes;
  ob->length--;
  ob->bytes -= s->size;
  remove_head (ob);
  return bytes;
}

gboolean
ens_outbox_take_dropped (EnsOutbox *ob, guint64 *count, guint64 *total)
{
  if (ob->dropped == 0 || !ens_outbox_low (ob))
    return FALSE;
  *count = ob->dropped;
  *total = ob->dropped_total;
  ob->dropped = 0;
  return TRUE;
}

guint64
ens_outbox_dropped_total (EnsOutbox *ob)
{
  return ob->dropped_total;
}
