/* events.c -- the collector's phase events and the listeners on them.
 *
 * The collector proper (heap.c's sequencing, the scavenger, the marker)
 * only collects.  Everything that observes or checks a collection hangs on
 * one of five phase boundaries, as Whippet's gc-event-listener:
 *   start      a GC begins (kind, reason, sizes before);
 *   evacuated  a scavenge's closure is complete and from-space still holds
 *              the forwarding words (what moved where can be read);
 *   marked     a mark is complete, before anything is swept (what died can
 *              be read);
 *   end        the GC is over and the heap consistent (pause known);
 *   safepoint  the mutator entered the allocation slow path, a GC point
 *              where tooling may walk the heap.
 * The listeners, in the order they run:
 *   stats     pause distributions (stats.c);
 *   trace     --trace-gc lines (stats.c);
 *   verify    --verify-heap: variable-size objects checked at start, the
 *             whole heap verified at end (verify.c);
 *   ids       stable object ids follow moves and drop the dead (objid.c);
 *   snapshot  --heapsnapshot-signal snapshots written at a safepoint
 *             (snapshot.c).
 * The list is fixed at build time: a NULL hook costs one test per event,
 * and an event is at most a few per GC.
 */
#include "gc_internal.h"

static const gc__listener_t *const listeners[] = {
    &gc__stats_listener, &gc__trace_listener, &gc__verify_listener,
    &gc__ids_listener, &gc__snapshot_listener,
};

#define NLISTENERS (sizeof listeners / sizeof listeners[0])

void gc__emit_start(gc_heap_t *h, const gc__cycle_t *c) {
  for (size_t i = 0; i < NLISTENERS; i++)
    if (listeners[i]->start != NULL)
      listeners[i]->start(h, c);
}

void gc__emit_evacuated(gc_heap_t *h, uintptr_t from_lo, size_t from_size) {
  for (size_t i = 0; i < NLISTENERS; i++)
    if (listeners[i]->evacuated != NULL)
      listeners[i]->evacuated(h, from_lo, from_size);
}

void gc__emit_marked(gc_heap_t *h) {
  for (size_t i = 0; i < NLISTENERS; i++)
    if (listeners[i]->marked != NULL)
      listeners[i]->marked(h);
}

void gc__emit_end(gc_heap_t *h, const gc__cycle_t *c) {
  for (size_t i = 0; i < NLISTENERS; i++)
    if (listeners[i]->end != NULL)
      listeners[i]->end(h, c);
}

void gc__emit_safepoint(gc_heap_t *h) {
  for (size_t i = 0; i < NLISTENERS; i++)
    if (listeners[i]->safepoint != NULL)
      listeners[i]->safepoint(h);
}
