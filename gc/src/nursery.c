/* nursery.c -- new space: two semispaces and a Cheney scavenger.
 *
 * The mutator bump-allocates in semispace `cur` between its start and
 * real_limit (start + semi_cap).  A scavenge copies the objects reachable
 * from the roots and from the remembered set into the other semispace,
 * breadth first (Cheney: the copied objects themselves are the queue), or
 * promotes them into old space once they have survived promotion_age
 * scavenges.  Promoted objects are scanned from a work list.
 *
 * INV(semi): outside a scavenge every new-space object lies in
 * [semi[cur], fast.top) and none is forwarded; the other semispace is
 * poisoned (ASan and valgrind report any access to it).
 * INV(remset): after a scavenge an old object that holds a new-space
 * reference has REMEMBERED set and is in h->remset.
 *
 * Ephemerons (a key/value pair whose value lives only while its key does)
 * and weak slots met during the scan are decided after the closure, by
 * weak.c, through this file's gc__tracer_t: a key in from-space survives if
 * the scan forwarded it; anything outside from-space survives a scavenge.
 *
 * The scavenger only collects: sizing (policy.c), object ids and other
 * tooling (through the evacuated event, events.c) are not its business.
 *
 * See gc/DESIGN.md, section Scavenge.
 */
#include <string.h>
#include <sys/mman.h>

#include "gc_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#include <valgrind/memcheck.h>

/* --- Sizes ---------------------------------------------------------------- */

size_t gc__obj_total(const void *obj, const gc_type_t *t) {
  size_t size = t->size_of != NULL ? t->size_of(obj) : t->size;
  return gc__round(size + GC__HDR);
}

size_t gc__young_used(const gc_heap_t *h) {
  return h->fast.top - h->semi[h->cur];
}

/* --- Set-up --------------------------------------------------------------- */

int gc__nursery_init(gc_heap_t *h) {
  void *m = gc__map(2 * h->semi_reserve, GC__PAGE_SIZE);
  if (m == NULL)
    return -ENOMEM;
  h->semi[0] = (uintptr_t)m;
  h->semi[1] = (uintptr_t)m + h->semi_reserve;
  h->cur = 0;
  h->semi_cap = h->semi_min;
  h->fast.young_lo = (uintptr_t)m;
  h->fast.young_size = 2 * h->semi_reserve;
  h->fast.top = h->semi[0];
  h->real_limit = h->semi[0] + h->semi_cap;
  h->fast.limit = h->force_slow ? h->fast.top : h->real_limit;
  POISON((void *)h->semi[1], h->semi_reserve);
  VALGRIND_MAKE_MEM_NOACCESS((void *)h->semi[1], h->semi_reserve);
  return 0;
}

void gc__nursery_destroy(gc_heap_t *h) {
  if (h->semi[0] == 0)
    return;
  UNPOISON((void *)h->semi[0], 2 * h->semi_reserve);
  VALGRIND_MAKE_MEM_UNDEFINED((void *)h->semi[0], 2 * h->semi_reserve);
  gc__unmap((void *)h->semi[0], 2 * h->semi_reserve);
  h->semi[0] = h->semi[1] = 0;
}

/* --- The scavenger ---------------------------------------------------------- */

typedef struct scav_s {
  gc_visitor_t v;
  gc__tracer_t t; /* weak.c's view of this scavenge */
  gc_heap_t *h;
  uintptr_t from_lo; /* the semispace being evacuated */
  uintptr_t from_size;
  uintptr_t to_top; /* next free byte in to-space */
  unsigned max_age; /* objects of this age or older are promoted */
  void *holder;     /* the object being scanned (NULL for roots) */
  void *old_holder; /* holder if it is old (to remember), else NULL */
  size_t copied;
  size_t promoted;
  gc__vec_t work; /* promoted objects still to scan */
  uintptr_t scan; /* Cheney's scan pointer in to-space */
} scav_t;

/* Copies an object; most are a few words, where a call to memcpy costs
 * more than the copy. */
static inline void copy_words(uintptr_t *dst, const uintptr_t *src,
                              size_t total) {
  if (total <= 64) {
    for (size_t i = 0; i < total / sizeof(uintptr_t); i++)
      dst[i] = src[i];
  } else {
    memcpy(dst, src, total);
  }
}

/* Is slot value P an object in from-space?  Immediates (any of the low
 * GC_IMMEDIATE_MASK bits set) never are, whatever address their bits
 * spell: a tagged integer can equal a from-space address plus its tag. */
static inline bool in_from(const scav_t *s, const void *p) {
  return ((uintptr_t)p & GC_IMMEDIATE_MASK) == 0 &&
         (uintptr_t)p - s->from_lo < s->from_size;
}

/* Moves the object at *SLOT (in from-space) and updates the slot. */
static inline void evacuate(scav_t *s, void **slot) {
  void *o = *slot;
  uintptr_t hdr = gc__hdr(o);
  if (hdr & X__FWD) {
    *slot = (void *)(hdr & ~X__FWD);
    return;
  }
  const gc_type_t *t = gc__type_of_hdr(hdr);
  size_t total = gc__obj_total(o, t);
  unsigned age = (unsigned)((hdr & X__AGE_MASK) >> X__AGE_SHIFT);
  uintptr_t *dst = NULL;
  /* Old space may refuse (the heap limit): then the object stays young;
   * to-space always has room, since everything copied came from a
   * semispace of the same size. */
  if (age >= s->max_age && (dst = gc__old_alloc_inline(s->h, total)) != NULL) {
    copy_words(dst, (uintptr_t *)o - 1, total);
    dst[0] = (uintptr_t)t;
    s->promoted += total;
    if (t->trace != NULL)
      gc__vec_push(s->h, &s->work, dst + 1);
  } else {
    dst = (uintptr_t *)s->to_top;
    s->to_top += total;
    copy_words(dst, (uintptr_t *)o - 1, total);
    if (age < X__MAX_AGE)
      age++;
    dst[0] = (uintptr_t)t | ((uintptr_t)age << X__AGE_SHIFT);
    s->copied += total;
  }
  gc__hdr(o) = (uintptr_t)(dst + 1) | X__FWD;
  *slot = dst + 1;
}

/* Evacuates *SLOT, a field of OLD_HOLDER (NULL unless an old object), and
 * keeps INV(remset): an old holder left pointing into new space is
 * remembered. */
static inline void evacuate_from(scav_t *s, void **slot, void *old_holder) {
  evacuate(s, slot);
  if (old_holder != NULL && gc__is_young(&s->h->fast, *slot))
    gc__remember(s->h, old_holder);
}

/* Remembers OLD_HOLDER (NULL unless an old object) if V, a slot value
 * already settled by this scavenge, points into new space. */
static inline void remember_if_young(scav_t *s, void *old_holder, void *v) {
  if (old_holder != NULL && !gc__not_ptr(v) && gc__is_young(&s->h->fast, v))
    gc__remember(s->h, old_holder);
}

static void visit(gc_visitor_t *v, void **slot, gc_edge_t edge) {
  scav_t *s = (scav_t *)v;
  void *o = *slot;
  if (!in_from(s, o))
    return;
  if (GC_UNLIKELY(edge.kind == GC_EDGE_WEAK)) {
    gc__weak_slot_defer(s->h, s->holder, slot); /* decided after the closure */
    return;
  }
  evacuate_from(s, slot, s->old_holder);
}

/* An ephemeron: the value is traced only once the key is known to survive.
 * A key outside from-space (old, immediate) survives any scavenge. */
static void visit_ephemeron(gc_visitor_t *v, void **key, void **value,
                            gc_edge_t edge) {
  scav_t *s = (scav_t *)v;
  (void)edge;
  void *k = *key;
  if (k == NULL) {
    *value = NULL; /* no key: the pair is empty */
    return;
  }
  if (in_from(s, k)) {
    uintptr_t hdr = gc__hdr(k);
    if (!(hdr & X__FWD)) {
      gc__ephemeron_defer(s->h, s->holder, key, value);
      return;
    }
    *key = (void *)(hdr & ~X__FWD);
    remember_if_young(s, s->old_holder, *key);
  }
  if (in_from(s, *value))
    evacuate_from(s, value, s->old_holder);
}

/* Scans an old object (remembered or just promoted); it is remembered
 * again if it still points into new space (evacuate_from). */
static void scan_old(scav_t *s, void *obj) {
  const gc_type_t *t = gc__type_of_hdr(gc__hdr(obj));
  if (t->trace == NULL)
    return;
  s->holder = obj;
  s->old_holder = obj;
  t->trace(obj, &s->v);
}

/* Scans to-space from the scan pointer to the copy frontier and drains the
 * promoted work list, until both are empty.  (Prefetching the headers of
 * the objects to copy, through a ring of slots in flight, was tried and
 * measured: no gain on binary-trees 21, so it is not done.) */
static void closure(scav_t *s) {
  for (;;) {
    s->old_holder = NULL;
    while (s->scan < s->to_top) {
      void *obj = (uintptr_t *)s->scan + 1;
      const gc_type_t *t = gc__type_of_hdr(gc__hdr(obj));
      s->scan += gc__obj_total(obj, t);
      if (t->trace != NULL) {
        s->holder = obj;
        t->trace(obj, &s->v);
      }
    }
    if (s->work.len == 0)
      break;
    scan_old(s, s->work.items[--s->work.len]);
  }
}

/* --- What weak.c asks of a scavenge ----------------------------------------- */

static bool tr_survives(gc__tracer_t *t, void **slot) {
  scav_t *s = (scav_t *)((char *)t - offsetof(scav_t, t));
  void *o = *slot;
  if (!in_from(s, o))
    return true; /* not collected by a scavenge */
  uintptr_t hdr = gc__hdr(o);
  if (!(hdr & X__FWD))
    return false;
  *slot = (void *)(hdr & ~X__FWD);
  return true;
}

static void tr_keep(gc__tracer_t *t, void *holder, void **key, void **value) {
  scav_t *s = (scav_t *)((char *)t - offsetof(scav_t, t));
  void *old_holder =
      holder != NULL && !gc__is_young(&s->h->fast, holder) ? holder : NULL;
  if (key != NULL)
    remember_if_young(s, old_holder, *key);
  if (in_from(s, *value))
    evacuate_from(s, value, old_holder);
  else
    remember_if_young(s, old_holder, *value);
}

static void tr_drain(gc__tracer_t *t) {
  closure((scav_t *)((char *)t - offsetof(scav_t, t)));
}

/* Finalizers of new-space objects that died; survivors are kept (or left
 * to the sweeper once promoted). */
static void finalize_young(scav_t *s) {
  gc_heap_t *h = s->h;
  size_t keep = 0;
  for (size_t i = 0; i < h->finalizable.len; i++) {
    void *o = h->finalizable.items[i];
    uintptr_t hdr = gc__hdr(o);
    if (hdr & X__FWD) {
      void *n = (void *)(hdr & ~X__FWD);
      if (gc__is_young(&h->fast, n))
        h->finalizable.items[keep++] = n;
    } else {
      gc__type_of_hdr(hdr)->finalize(h, o);
      h->finalized++;
    }
  }
  h->finalizable.len = keep;
}

/* Applies the semispace capacity policy.c chose; a smaller one gives the
 * unused tails back to the system. */
static void set_capacity(gc_heap_t *h, size_t cap) {
  size_t old = h->semi_cap;
  h->semi_cap = cap;
  if (cap >= old)
    return;
  for (int i = 0; i < 2; i++) {
    void *tail = (void *)(h->semi[i] + cap);
    UNPOISON(tail, old - cap);
    madvise(tail, old - cap, MADV_DONTNEED);
    POISON(tail, old - cap);
  }
}

void gc__scavenge(gc_heap_t *h) {
  scav_t s;
  memset(&s, 0, sizeof s);
  s.v.visit = visit;
  s.v.ephemeron = visit_ephemeron;
  s.t.survives = tr_survives;
  s.t.keep = tr_keep;
  s.t.drain = tr_drain;
  s.h = h;
  s.from_lo = h->semi[h->cur];
  s.from_size = h->semi_reserve;
  int to = 1 - h->cur;
  uintptr_t to_lo = h->semi[to];
  UNPOISON((void *)to_lo, h->semi_reserve);
  VALGRIND_MAKE_MEM_UNDEFINED((void *)to_lo, h->semi_reserve);
  s.to_top = to_lo;
  s.scan = to_lo;
  s.max_age = h->fast_promotion ? 0 : (unsigned)h->opt.promotion_age;
  size_t used = gc__young_used(h);

  /* Roots: handles, frames, persistent handles, embedder roots. */
  s.holder = s.old_holder = NULL;
  gc__trace_roots(h, &s.v);
  /* The remembered set: re-scan each old object; scan_old re-adds those
   * that still point into new space. */
  gc__vec_t rs = gc__remset_take(h);
  for (size_t i = 0; i < rs.len; i++)
    scan_old(&s, rs.items[i]);
  gc__vec_free(h, &rs);
  closure(&s);

  /* Ephemerons, weak slots and weak handles, now that the survivors are
   * known; then tooling that follows moved objects, then finalizers. */
  gc__weak_resolve(h, &s.t);
  gc__emit_evacuated(h, s.from_lo, s.from_size);
  finalize_young(&s);

  /* Flip. */
  uintptr_t from = h->semi[h->cur];
  h->cur = to;
  h->fast.top = s.to_top;
  gc__vec_free(h, &s.work);
  h->bytes_promoted += s.promoted;
  size_t cap = gc__policy_semi_after_scavenge(h, used, s.copied + s.promoted);
  /* Shrinking never cuts live objects: keep the capacity that holds them. */
  if (cap < h->fast.top - to_lo)
    cap = gc__round(h->fast.top - to_lo);
  set_capacity(h, cap);
  h->real_limit = to_lo + h->semi_cap;
  h->fast.limit = h->force_slow ? h->fast.top : h->real_limit;
  POISON((void *)from, h->semi_reserve);
  VALGRIND_MAKE_MEM_NOACCESS((void *)from, h->semi_reserve);
  h->epoch++;
}

/* --- Walking ---------------------------------------------------------------- */

void gc__nursery_walk(gc_heap_t *h, gc_object_fn fn, void *data) {
  uintptr_t p = h->semi[h->cur];
  while (p < h->fast.top) {
    void *obj = (uintptr_t *)p + 1;
    const gc_type_t *t = gc__type_of_hdr(gc__hdr(obj));
    size_t total = gc__obj_total(obj, t);
    fn(obj, t, total - GC__HDR, data);
    p += total;
  }
}
