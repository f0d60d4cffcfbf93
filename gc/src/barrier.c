/* barrier.c -- the write barrier's slow path and the remembered set.
 *
 * The remembered set holds the old objects that may point into new space:
 * they are extra roots of every scavenge.  It has object granularity and is
 * deduplicated by the REMEMBERED header bit (as Lua's luaC_barrierback), so
 * an object is in it at most once however often it is written.
 *
 * INV(remset): outside a GC, an old or large object that holds a new-space
 * reference has REMEMBERED set and is in h->remset, exactly once; every
 * entry of h->remset is an old or large object with REMEMBERED set.
 *
 * Who keeps it: gc_write's inline fast path (gc.h) calls gc__barrier_slow
 * when it stores a young reference into an old object; the scavenger takes
 * the whole set at its start (gc__remset_take) and re-adds the objects that
 * still point into new space after the scan (gc__remember); weak processing
 * re-adds a holder whose weak slot now points to a survivor; a full GC drops
 * the entries that died (gc__remset_drop_dead) before the sweeper frees them.
 * verify.c checks the invariant.
 */
#include "gc_internal.h"

void gc__remember(gc_heap_t *h, void *obj) {
  uintptr_t *hp = &gc__hdr(obj);
  if (*hp & X__REMEMBERED)
    return;
  *hp |= X__REMEMBERED;
  gc__vec_push(h, &h->remset, obj);
}

/* Out of line, behind gc_write's range checks.  An immediate whose bits
 * spell a new-space address passes them too; remembering its holder once
 * is harmless (the next scavenge scans it and drops it). */
void gc__barrier_slow(gc_heap_t *h, void *obj) { gc__remember(h, obj); }

gc__vec_t gc__remset_take(gc_heap_t *h) {
  gc__vec_t rs = h->remset;
  h->remset = (gc__vec_t){NULL, 0, 0};
  for (size_t i = 0; i < rs.len; i++)
    gc__hdr(rs.items[i]) &= ~X__REMEMBERED;
  return rs;
}

/* After a mark: an unmarked remembered object is dead, and the sweeper is
 * about to free it. */
void gc__remset_drop_dead(gc_heap_t *h) {
  size_t keep = 0;
  for (size_t i = 0; i < h->remset.len; i++) {
    void *o = h->remset.items[i];
    if (gc__hdr(o) & X__MARK)
      h->remset.items[keep++] = o;
  }
  h->remset.len = keep;
}

/* GC_INIT_FIELD's check (gc.h, builds without NDEBUG): an initialising store
 * skips the barrier, which is sound only for an object still young. */
void gc__init_not_young(gc_heap_t *h, void *obj) {
  gc__fatal(h,
            "GC_INIT_FIELD into an old %s object at %p: it was promoted by a "
            "GC point after its allocation, or is large; use GC_WRITE",
            gc__type_of_hdr(gc__hdr(obj))->name, obj);
}
