/* ens-heap.h — gives the heap's free memory back to the system once the
 * daemon is quiet (ens-heap.c).
 *
 * After a burst (a thousand streams, a few hundred completions at once) the
 * C library keeps the memory they freed: the daemon's RSS stays tens of MB
 * above what it holds.  Every few seconds, when no completion runs and more
 * than a few MB of the heap are free, that memory goes back (malloc_trim).
 * Under load nothing is done: the memory is about to be used again. */
#pragma once

#include "ens-completion.h"

G_BEGIN_DECLS

typedef struct _EnsHeap EnsHeap;

/* Starts watching; @completions (transfer none) must outlive it. */
EnsHeap *ens_heap_new (EnsCompletions *completions);
/* Stops the timer and frees @heap (NULL is fine). */
void ens_heap_free (EnsHeap *heap);

G_END_DECLS
