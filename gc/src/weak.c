/* weak.c -- everything weak: weak slots, ephemerons, weak handles and their
 * callbacks, for both collections.
 *
 * A collection (the scavenger or the marker) traces strong references
 * first.  Weak references met on the way are only recorded:
 *   - a weak slot (an edge of kind GC_EDGE_WEAK): (holder, slot) pairs in
 *     h->weak_slots;
 *   - an ephemeron whose key is not yet known to survive (GC_VISIT_EPHEMERON):
 *     (holder, key slot, value slot) triples in h->ephemerons.
 * When the strong closure is complete the collection calls gc__weak_resolve
 * with a gc__tracer_t, its own answer to three questions: does the object in
 * a slot survive (updating the slot if it moved), keep a value alive, and
 * trace everything newly kept.  Then, in this order:
 *   1. Ephemerons, to a fixpoint: a pending pair whose key now survives has
 *      its value kept and traced; tracing may make more keys survive (chains
 *      of pairs) or find more pairs.  When a pass makes no progress, every
 *      pending key is dead: its key and value slots are cleared to NULL.
 *      A value that refers to its own key (or to a key further back in a
 *      cycle) therefore never keeps it alive: values are traced only from
 *      live keys.
 *   2. Weak slots: a slot whose object survived follows it (and its holder
 *      is remembered if it is old and the object young); the others are
 *      cleared to NULL.  Weak slots run after the ephemerons so that an
 *      object kept by an ephemeron value is seen as alive.
 *   3. Weak handles, likewise; a cleared one is queued for its callback.
 * The callbacks run later (gc__weak_callbacks), when the collection is
 * over and the heap is consistent, since they may allocate.
 *
 * INV(weak): outside a GC h->weak_slots and h->ephemerons are empty.
 * Cost: a pass over the pending pairs per round; a chain of N pairs met in
 * the wrong order takes N rounds (O(N^2) in the worst case, as V8's
 * ephemeron fixpoint without its key-to-value table).
 */
#include <string.h>

#include "gc_internal.h"

void gc__weak_slot_defer(gc_heap_t *h, void *holder, void **slot) {
  gc__vec_push(h, &h->weak_slots, holder);
  gc__vec_push(h, &h->weak_slots, slot);
}

void gc__ephemeron_defer(gc_heap_t *h, void *holder, void **key,
                         void **value) {
  gc__vec_push(h, &h->ephemerons, holder);
  gc__vec_push(h, &h->ephemerons, key);
  gc__vec_push(h, &h->ephemerons, value);
}

static void resolve_ephemerons(gc_heap_t *h, gc__tracer_t *t) {
  gc__vec_t *e = &h->ephemerons;
  bool progress = true;
  while (progress && e->len > 0) {
    progress = false;
    size_t n = e->len, keep = 0;
    for (size_t i = 0; i < n; i += 3) {
      void *holder = e->items[i];
      void **key = e->items[i + 1];
      void **value = e->items[i + 2];
      if (t->survives(t, key)) {
        t->keep(t, holder, key, value); /* may grow (and move) e->items */
        progress = true;
      } else {
        e->items[keep++] = holder;
        e->items[keep++] = key;
        e->items[keep++] = value;
      }
    }
    /* Triples appended while keeping follow the first N: close the gap. */
    memmove(&e->items[keep], &e->items[n], (e->len - n) * sizeof(void *));
    e->len = keep + (e->len - n);
    if (progress)
      t->drain(t); /* may find more pairs: the next round sees them */
  }
  for (size_t i = 0; i < e->len; i += 3) {
    *(void **)e->items[i + 1] = NULL;
    *(void **)e->items[i + 2] = NULL;
  }
  e->len = 0;
}

static void resolve_slots(gc_heap_t *h, gc__tracer_t *t) {
  gc__vec_t *w = &h->weak_slots;
  for (size_t i = 0; i < w->len; i += 2) {
    void *holder = w->items[i];
    void **slot = w->items[i + 1];
    if (!t->survives(t, slot)) {
      *slot = NULL;
    } else if (holder != NULL && !gc__not_ptr(*slot) &&
               gc__is_young(&h->fast, *slot) &&
               !gc__is_young(&h->fast, holder)) {
      gc__remember(h, holder);
    }
  }
  w->len = 0;
}

static void resolve_handles(gc_heap_t *h, gc__tracer_t *t) {
  for (gc__pchunk_t *c = h->pchunks; c != NULL; c = c->next) {
    for (int i = 0; i < GC__PCHUNK; i++) {
      gc__pentry_t *e = &c->e[i];
      if (!e->in_use || !e->weak || gc__not_ptr(e->obj))
        continue;
      if (!t->survives(t, &e->obj)) {
        e->obj = NULL;
        e->cleared = 1;
      }
    }
  }
}

void gc__weak_resolve(gc_heap_t *h, gc__tracer_t *t) {
  resolve_ephemerons(h, t);
  resolve_slots(h, t);
  resolve_handles(h, t);
}

/* Runs pending weak callbacks, after the GC finished (they may allocate). */
void gc__weak_callbacks(gc_heap_t *h) {
  for (gc__pchunk_t *c = h->pchunks; c != NULL; c = c->next) {
    for (int i = 0; i < GC__PCHUNK; i++) {
      gc__pentry_t *e = &c->e[i];
      if (e->in_use && e->cleared) {
        e->cleared = 0;
        if (e->cb != NULL)
          e->cb(e->data, (gc_persistent_t *)e);
      }
    }
  }
}
