/* marker.c -- marking of old and large objects for the full GC.
 *
 * Runs right after a scavenge that promoted every new-space survivor old
 * space would take, so every object still in new space is live: new-space
 * objects are not marked, but they are traced as roots (they may be the
 * only holders of old objects), and references to them are skipped.  Marking sets
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
  if (gc__is_young(&m->h->fast, o))
    return;
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
    if (!gc__not_ptr(o) && !gc__is_young(&h->fast, o) &&
        !(gc__hdr(o) & X__MARK))
      *slot = NULL;
  }
  w->len = 0;
}

static void drain(marker_t *m) {
  gc__vec_t *st = &m->h->mark_stack;
  while (st->len > 0) {
    void *obj = st->items[--st->len];
    m->holder = obj;
    gc__type_of_hdr(gc__hdr(obj))->trace(obj, &m->v);
  }
}

static void trace_young(void *obj, const gc_type_t *t, size_t size,
                        void *data) {
  marker_t *m = data;
  (void)size;
  if (t->trace != NULL) {
    m->holder = obj;
    t->trace(obj, &m->v);
    drain(m);
  }
}

/* Drops remembered objects that died: the sweeper is about to free them. */
static void filter_remset(gc_heap_t *h) {
  size_t keep = 0;
  for (size_t i = 0; i < h->remset.len; i++) {
    void *o = h->remset.items[i];
    if (gc__hdr(o) & X__MARK)
      h->remset.items[keep++] = o;
  }
  h->remset.len = keep;
}

void gc__mark(gc_heap_t *h) {
  marker_t m = {{visit}, h, NULL};
  gc__vec_t *st = &h->mark_stack;
  h->marked_bytes = 0;
  gc__trace_roots(h, &m.v);
  drain(&m);
  gc__nursery_walk(h, trace_young, &m);
  clear_weak_slots(h);
  filter_remset(h);
  gc__ids_after_mark(h);
  gc__weak_handles_update(h, false);
  /* The stack can be large after marking a wide graph; give it back. */
  if (st->cap > 65536)
    gc__vec_free(h, st);
}
