/* ens-heap.c — gives the heap's free memory back (see ens-heap.h). */
#include "ens-heap.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define CHECK_INTERVAL_S 2
#define FREE_BYTES_MIN (4 * 1024 * 1024)

struct _EnsHeap {
  EnsCompletions *completions;
  guint timer;
};

static gboolean
check (gpointer data)
{
  EnsHeap *heap = data;

  if (ens_completions_running (heap->completions) > 0)
    return G_SOURCE_CONTINUE;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  {
    struct mallinfo2 info = mallinfo2 ();

    /* fordblks: free bytes inside the heap (not yet given back). */
    if (info.fordblks >= FREE_BYTES_MIN)
      malloc_trim (0);
  }
#endif
  return G_SOURCE_CONTINUE;
}

EnsHeap *
ens_heap_new (EnsCompletions *completions)
{
  EnsHeap *heap = g_new0 (EnsHeap, 1);

  heap->completions = completions;
  heap->timer = g_timeout_add_seconds (CHECK_INTERVAL_S, check, heap);
  return heap;
}

void
ens_heap_free (EnsHeap *heap)
{
  if (heap == NULL)
    return;
  g_source_remove (heap->timer);
  g_free (heap);
}
