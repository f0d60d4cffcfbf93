/* snapshot_internal.h -- what heap.c needs from snapshot.c: the signal
 * snapshot hooks (--heapsnapshot-signal).  The pending test lives in
 * snapshot.c's safepoint listener (events.c).
 */
#ifndef GC_SNAPSHOT_INTERNAL_H
#define GC_SNAPSHOT_INTERNAL_H

#include <signal.h>

#include "gc_internal.h"

/* Installs the handler if H's options ask for it (H becomes the owner).
 * Returns 0 or -errno from sigaction. */
int gc__snapshot_signal_start(gc_heap_t *h);
/* Restores the previous disposition if H owns the signal. */
void gc__snapshot_signal_stop(gc_heap_t *h);

#endif /* GC_SNAPSHOT_INTERNAL_H */
