/* marker.c -- marking of old and large objects for the full GC.
 *
 * Runs after a scavenge that promoted every new-space survivor, so new
 * space is empty and every reachable object is old or large.  Marking sets
 * MARK in the header and pushes objects that have a trace callback on an
 * explicit mark stack (a growable array), so the depth of the object graph
 * never reaches the C stack: a ten-million-long linked list needs one stack
 * entry at a time.
 *
 * INV(mark): an object is on the mark stack at most once per mark, since it
 * is pushed only when its MARK bit goes from 0 to 1.
 * Weak slots met while tracing are recorded and cleared afterwards if their
 * object was not marked.
 */
#include "gc_internal.h"

typedef struct marker_s {
  gc_visitor_t v;
  gc_heap_t *h;
  void *holder;
} marker_t;

static void visit(gc_visitor_t *v, void **slot, gc_edge_t edge) {
  marker_t *m = (marker_t *)v;
  void *o = *slot;
  if (gc__not_ptr(o))
    return;
  if (GC_UNLIKELY(edge.kind == GC_EDGE_WEAK)) {
    gc__vec_push(m->h, &m->h->weak_slots, m->holder);
    gc__vec_push(m->h, &m->h->weak_slots, slot);
    return;
  }
  uintptr_t hdr = gc__hdr(o);
  if (hdr & X__MARK)
    return;
  gc__hdr(o) = hdr | X__MARK;
  const gc_type_t *t = gc__type_of_hdr(hdr);
  m->h->marked_bytes += gc__obj_total(o, t);
  if (t->trace != NULL)
    gc__vec_push(m->h, &m->h->mark_stack, o);
}

static void clear_weak_slots(gc_heap_t *h) {
  gc__vec_t *w = &h->weak_slots;
  for (size_t i = 0; i < w->len; i += 2) {
    void **slot = w->items[i + 1];
    void *o = *slot;
    if (!gc__not_ptr(o) && !(gc__hdr(o) & X__MARK))
      *slot = NULL;
  }
  w->len = 0;
}

void gc__mark(gc_heap_t *h) {
  marker_t m = {{visit}, h, NULL};
  gc__vec_t *st = &h->mark_stack;
  h->marked_bytes = 0;
  gc__trace_roots(h, &m.v);
  while (st->len > 0) {
    void *obj = st->items[--st->len];
    m.holder = obj;
    gc__type_of_hdr(gc__hdr(obj))->trace(obj, &m.v);
  }
  clear_weak_slots(h);
  gc__weak_handles_update(h, false);
  /* The stack can be large after marking a wide graph; give it back. */
  if (st->cap > 65536)
    gc__vec_free(h, st);
}
