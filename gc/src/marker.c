/* marker.c -- marking for the full GC.
 *
 * Every reachable object is marked, new-space objects included: marking
 * them (rather than treating every survivor as a root) means a young object
 * reachable only through a dead old object, or only as the value of an
 * ephemeron whose key died, keeps nothing alive, and weak processing sees
 * which young objects died.  The scavenge that follows the mark in the same
 * full GC (heap.c) moves the marked young objects and leaves the others in
 * from-space.  Marking sets MARK in the header and pushes objects that have
 * a trace callback on an explicit mark stack (a growable array), so the
 * depth of the object graph never reaches the C stack: a ten-million-long
 * linked list needs one stack entry at a time.
 *
 * INV(mark): an object is on the mark stack at most once per mark, since it
 * is pushed only when its MARK bit goes from 0 to 1.
 * INV(young-mark): a new-space object carries MARK only between the mark
 * and the scavenge that ends the same full GC (a copy's header is written
 * afresh, without it).  Old and large objects keep MARK until the sweeper
 * reaches them.  h->marked_bytes counts old and large objects only (the old
 * generation's live size, for policy.c).
 *
 * Weak slots and ephemerons met while tracing are decided after the
 * closure by weak.c, through this file's gc__tracer_t: an object survives
 * if it is marked.  Dead remembered objects leave the remembered set here,
 * before the scavenge would scan them.
 */
#include <stddef.h>

#include "gc_internal.h"

typedef struct marker_s {
  gc_visitor_t v;
  gc__tracer_t t;
  gc_heap_t *h;
  void *holder;
} marker_t;

static inline void mark(marker_t *m, void *o) {
  uintptr_t hdr = gc__hdr(o);
  if (hdr & X__MARK)
    return;
  gc__hdr(o) = hdr | X__MARK;
  const gc_type_t *t = gc__type_of_hdr(hdr);
  if (!gc__is_young(&m->h->fast, o))
    m->h->marked_bytes += gc__obj_total(o, t);
  if (t->trace != NULL)
    gc__vec_push(m->h, &m->h->mark_stack, o);
}

static void visit(gc_visitor_t *v, void **slot, gc_edge_t edge) {
  marker_t *m = (marker_t *)v;
  void *o = *slot;
  if (gc__not_ptr(o))
    return;
  if (GC_UNLIKELY(edge.kind == GC_EDGE_WEAK)) {
    gc__weak_slot_defer(m->h, m->holder, slot);
    return;
  }
  mark(m, o);
}

static void visit_ephemeron(gc_visitor_t *v, void **key, void **value,
                            gc_edge_t edge) {
  marker_t *m = (marker_t *)v;
  (void)edge;
  void *k = *key;
  if (k == NULL) {
    *value = NULL; /* no key: the pair is empty */
    return;
  }
  if (!gc__not_ptr(k) && !(gc__hdr(k) & X__MARK)) {
    gc__ephemeron_defer(m->h, m->holder, key, value);
    return;
  }
  if (!gc__not_ptr(*value))
    mark(m, *value);
}

static void drain(marker_t *m) {
  gc__vec_t *st = &m->h->mark_stack;
  while (st->len > 0) {
    void *obj = st->items[--st->len];
    m->holder = obj;
    gc__type_of_hdr(gc__hdr(obj))->trace(obj, &m->v);
  }
}

/* --- What weak.c asks of a mark --------------------------------------------- */

static marker_t *of_tracer(gc__tracer_t *t) {
  return (marker_t *)((char *)t - offsetof(marker_t, t));
}

static bool tr_survives(gc__tracer_t *t, void **slot) {
  (void)t;
  void *o = *slot;
  return gc__not_ptr(o) || (gc__hdr(o) & X__MARK) != 0;
}

static void tr_keep(gc__tracer_t *t, void *holder, void **key, void **value) {
  (void)holder;
  (void)key;
  if (!gc__not_ptr(*value))
    mark(of_tracer(t), *value);
}

static void tr_drain(gc__tracer_t *t) { drain(of_tracer(t)); }

void gc__mark(gc_heap_t *h) {
  /* GC_VISIT passes every slot value but NULL (pass_lo 1, span all). */
  marker_t m = {{visit, visit_ephemeron, 1, 0},
                {tr_survives, tr_keep, tr_drain},
                h,
                NULL};
  gc__vec_t *st = &h->mark_stack;
  h->marked_bytes = 0;
  gc__trace_roots(h, &m.v);
  m.holder = NULL;
  drain(&m);
  gc__weak_resolve(h, &m.t);
  gc__remset_drop_dead(h);
  gc__emit_marked(h);
  /* The stack can be large after marking a wide graph; give it back. */
  if (st->cap > 65536)
    gc__vec_free(h, st);
}
