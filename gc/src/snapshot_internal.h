/* snapshot_internal.h -- what heap.c needs from snapshot.c: the signal
 * snapshot hooks (--heapsnapshot-signal).
 *
 * INV(signal): gc__snapshot_signals counts the signals received (only the
 * handler writes it); gc__snapshot_seen counts those the owning heap has
 * handled (only gc_snapshot_poll writes it).  They differ exactly when a
 * snapshot is pending.
 */
#ifndef GC_SNAPSHOT_INTERNAL_H
#define GC_SNAPSHOT_INTERNAL_H

#include <signal.h>

#include "gc_internal.h"

extern volatile sig_atomic_t gc__snapshot_signals;
extern sig_atomic_t gc__snapshot_seen;

/* Installs the handler if H's options ask for it (H becomes the owner).
 * Returns 0 or -errno from sigaction. */
int gc__snapshot_signal_start(gc_heap_t *h);
/* Restores the previous disposition if H owns the signal. */
void gc__snapshot_signal_stop(gc_heap_t *h);

/* A cheap test for the allocation slow path. */
static inline bool gc__snapshot_pending(void) {
  return GC_UNLIKELY(gc__snapshot_signals != gc__snapshot_seen);
}

#endif /* GC_SNAPSHOT_INTERNAL_H */
