/* nursery.c -- new space: eden, two survivor spaces and a Cheney scavenger.
 *
 * The mutator bump-allocates in eden, between its start and real_limit.  A
 * scavenge copies the objects reachable from the roots and from the
 * remembered set, out of eden and the survivor space in use, into the other
 * survivor space, breadth first (Cheney: the copied objects themselves are
 * the queue), or promotes them into old space once they have survived
 * the tenuring age (policy.c) in scavenges.
 * Promoted objects are scanned from a work list.
 *
 * Why eden and survivor spaces (HotSpot's layout) rather than two
 * semispaces (V8's): with semispaces the mutator allocates in each in
 * turn, so both are touched whole, and new space costs twice its capacity
 * in RSS whatever survives; here allocation touches eden only, and each
 * survivor space is touched as far as survivors ever reached: a program
 * whose objects die young pays for eden and little more (the Lisp's
 * deriv: 3.4 MB peak RSS with semispaces, 2.6 MB with eden).
 *
 * Debug runs (--stress-gc, --gc-interval, --verify-heap, valgrind, ASan)
 * use the survivor spaces as semispaces instead (semi_mode: the mutator
 * allocates in surv[cur] after the survivors, eden stays empty), so that
 * every object leaves its address at every scavenge and a pointer kept
 * across one lands in poisoned memory, as with V8's semispaces; eden would
 * hand the same addresses out again at once.
 *
 * The layout is [survivor 0 | eden | survivor 1] in one reservation, so
 * that eden and either survivor space form one range (from-space is tested
 * with one compare) and "is it young?" is one range test.
 *
 * INV(room): outside a scavenge, the survivors and eden's allocation area
 * together hold at most semi_cap bytes (the survivors' bytes come off
 * eden's area), as one semispace would.  So what a scavenge copies always
 * fits a survivor space (semi_reserve), and a scavenge happens after the
 * same allocation, and promotes the same objects, as with semispaces:
 * sizing (policy.c) sees the same heap.
 * INV(semi): outside a scavenge every new-space object lies in
 * [surv[cur], surv_top) or [eden, fast.top) and none is forwarded; the
 * other survivor space and the rest of this one are poisoned (ASan and
 * valgrind report any access to them) as far as they were ever used.
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
#define X__ASAN 1
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define X__ASAN 0
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#include <valgrind/memcheck.h>

/* --- Sizes ---------------------------------------------------------------- */

size_t gc__obj_total(const void *obj, const gc_type_t *t) {
  size_t size = t->size_of != NULL ? t->size_of(obj) : t->size;
  return gc__round(size + GC__HDR);
}

/* Bytes allocated so far: what earlier allocation areas took, plus the
 * current one's bump (the inline fast path counts nothing; a new-space
 * object is counted once its area is left, large objects when made). */
uint64_t gc__bytes_allocated(const gc_heap_t *h) {
  return h->bytes_allocated + (h->fast.top - h->alloc_base);
}

size_t gc__young_used(const gc_heap_t *h) {
  if (h->semi_mode)
    return h->fast.top - h->surv[h->cur];
  return (h->fast.top - h->eden) + (h->surv_top - h->surv[h->cur]);
}

/* The one range holding every new-space object: surv[cur] and eden. */
void gc__young_span(const gc_heap_t *h, uintptr_t *lo, uintptr_t *hi) {
  if (h->semi_mode || h->cur == 0) { /* surv[cur] below eden's top */
    *lo = h->surv[h->cur];
    *hi = h->fast.top;
  } else {
    *lo = h->eden;
    *hi = h->surv_top;
  }
}

/* Eden and each survivor space reserve semi_reserve (INV(room)). */
static size_t young_reserve(const gc_heap_t *h) {
  return 3 * h->semi_reserve;
}

/* Poisons survivor space I from START to as far as it was ever used. */
static void poison_surv(gc_heap_t *h, int i, uintptr_t start) {
  if (h->surv_hw[i] > start) {
    POISON((void *)start, h->surv_hw[i] - start);
    VALGRIND_MAKE_MEM_NOACCESS((void *)start, h->surv_hw[i] - start);
  }
}

/* --- Set-up --------------------------------------------------------------- */

int gc__nursery_init(gc_heap_t *h) {
  void *m = gc__map(young_reserve(h), GC__PAGE_SIZE);
  if (m == NULL)
    return -ENOMEM;
  h->surv[0] = (uintptr_t)m;
  h->eden = h->surv[0] + h->semi_reserve;
  h->surv[1] = h->eden + h->semi_reserve;
  h->cur = 0;
  h->surv_top = h->surv[0];
  h->semi_mode = h->force_slow || RUNNING_ON_VALGRIND || X__ASAN;
  /* A semispace is allocated in up to semi_reserve: count it used. */
  uintptr_t used = h->semi_mode ? h->semi_reserve : 0;
  h->surv_hw[0] = h->surv[0] + used;
  h->surv_hw[1] = h->surv[1] + used;
  h->semi_cap = h->semi_min;
  h->fast.young_lo = (uintptr_t)m;
  h->fast.young_size = young_reserve(h);
  h->fast.top = h->semi_mode ? h->surv[0] : h->eden;
  h->alloc_base = h->fast.top;
  h->real_limit = h->fast.top + h->semi_cap;
  h->fast.limit = h->force_slow ? h->fast.top : h->real_limit;
  poison_surv(h, 1, h->surv[1]);
  return 0;
}

void gc__nursery_destroy(gc_heap_t *h) {
  if (h->surv[0] == 0)
    return;
  for (int i = 0; i < 2; i++) {
    UNPOISON((void *)h->surv[i], h->surv_hw[i] - h->surv[i]);
    VALGRIND_MAKE_MEM_UNDEFINED((void *)h->surv[i], h->surv_hw[i] - h->surv[i]);
  }
  gc__unmap((void *)h->surv[0], young_reserve(h));
  h->surv[0] = h->surv[1] = h->eden = 0;
}

/* --- The scavenger ---------------------------------------------------------- */

typedef struct scav_s {
  gc_visitor_t v;
  gc__tracer_t t; /* weak.c's view of this scavenge */
  gc_heap_t *h;
  uintptr_t from_lo; /* eden and the survivor space being evacuated */
  uintptr_t from_size;
  uintptr_t to_top; /* next free byte in to-space */
  unsigned max_age; /* objects of this age or older are promoted */
  void *holder;     /* the object being scanned (NULL for roots) */
  void *old_holder; /* holder if it is old (to remember), else NULL */
  size_t copied;
  size_t promoted;
  size_t survived_by_age[X__MAX_AGE + 1]; /* by age before this scavenge */
  size_t copied_to_age[X__MAX_AGE + 1];   /* by age after it */
  gc__vec_t work;                         /* promoted objects still to scan */
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
  s->survived_by_age[age] += total;
  /* Old space may refuse (the heap limit): then the object stays young;
   * to-space always has room (INV(room)). */
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
    s->copied_to_age[age] += total;
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

/* Applies the capacity policy.c chose; a smaller one gives eden's unused
 * tail and the survivor spaces' beyond what they hold back to the system. */
static void set_capacity(gc_heap_t *h, size_t cap) {
  size_t old = h->semi_cap;
  h->semi_cap = cap;
  if (cap >= old)
    return;
  madvise((void *)(h->eden + cap), old - cap, MADV_DONTNEED);
  for (int i = 0; i < 2; i++) {
    uintptr_t keep = h->surv[i] + cap;
    if (i == h->cur && h->surv_top > keep)
      keep = (h->surv_top + 4095) & ~(uintptr_t)4095;
    if (h->surv_hw[i] > keep) {
      UNPOISON((void *)keep, h->surv_hw[i] - keep);
      madvise((void *)keep, h->surv_hw[i] - keep, MADV_DONTNEED);
      POISON((void *)keep, h->surv_hw[i] - keep);
      VALGRIND_MAKE_MEM_NOACCESS((void *)keep, h->surv_hw[i] - keep);
    }
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
  s.from_lo = h->cur == 0 ? h->surv[0] : h->eden;
  s.from_size = 2 * h->semi_reserve;
  s.v.pass_lo = s.from_lo; /* GC_VISIT calls visit for from-space only */
  s.v.pass_nspan = ~s.from_size;
  int to = 1 - h->cur;
  uintptr_t to_lo = h->surv[to];
  UNPOISON((void *)to_lo, h->surv_hw[to] - to_lo);
  VALGRIND_MAKE_MEM_UNDEFINED((void *)to_lo, h->surv_hw[to] - to_lo);
  s.to_top = to_lo;
  s.scan = to_lo;
  s.max_age = h->fast_promotion ? 0 : h->tenure_age;
  size_t used = gc__young_used(h);
  h->bytes_allocated += h->fast.top - h->alloc_base;

  /* The remembered set is taken first, so that what this scavenge
   * promotes and remembers goes into the next one's.  The roots and their
   * closure come before its scan: what survives through the roots is then
   * known apart from what survives only through remembered old objects,
   * which may be dead (nepotism, policy.c). */
  gc__vec_t rs = gc__remset_take(h);
  s.holder = s.old_holder = NULL;
  gc__trace_roots(h, &s.v);
  closure(&s);
  size_t from_roots = s.copied + s.promoted;
  /* Re-scan each remembered object; scan_old re-adds those that still
   * point into new space. */
  for (size_t i = 0; i < rs.len; i++)
    scan_old(&s, rs.items[i]);
  gc__vec_free(h, &rs);
  closure(&s);

  /* Ephemerons, weak slots and weak handles, now that the survivors are
   * known; then tooling that follows moved objects, then finalizers. */
  gc__weak_resolve(h, &s.t);
  gc__emit_evacuated(h, s.from_lo, s.from_size);
  finalize_young(&s);

  /* Flip: eden is empty, the survivors are in surv[to]. */
  int from = h->cur;
  h->cur = to;
  h->surv_top = s.to_top;
  if (h->surv_hw[to] < s.to_top)
    h->surv_hw[to] = s.to_top;
  h->fast.top = h->semi_mode ? s.to_top : h->eden;
  h->alloc_base = h->fast.top;
  gc__vec_free(h, &s.work);
  h->bytes_promoted += s.promoted;
  gc__policy_tenure(h, s.survived_by_age, s.copied_to_age);
  size_t cap = gc__policy_semi_after_scavenge(h, used, s.copied + s.promoted,
                                              from_roots);
  /* Shrinking never cuts live objects: keep the capacity that holds them. */
  size_t held = s.to_top - to_lo;
  if (cap < held)
    cap = gc__round(held);
  set_capacity(h, cap);
  if (h->semi_mode) {
    h->real_limit = to_lo + h->semi_cap;
  } else {
    /* INV(room): the survivors' bytes come off eden's area. */
    h->real_limit = h->eden + (h->semi_cap - held);
    poison_surv(h, to, s.to_top);
  }
  h->fast.limit = h->force_slow ? h->fast.top : h->real_limit;
  poison_surv(h, from, h->surv[from]);
  h->epoch++;
}

/* --- Walking ---------------------------------------------------------------- */

static void walk_range(uintptr_t p, uintptr_t end, gc_object_fn fn,
                       void *data) {
  while (p < end) {
    void *obj = (uintptr_t *)p + 1;
    const gc_type_t *t = gc__type_of_hdr(gc__hdr(obj));
    size_t total = gc__obj_total(obj, t);
    fn(obj, t, total - GC__HDR, data);
    p += total;
  }
}

/* Survivors first, then eden: older objects first. */
void gc__nursery_walk(gc_heap_t *h, gc_object_fn fn, void *data) {
  if (h->semi_mode) {
    walk_range(h->surv[h->cur], h->fast.top, fn, data);
    return;
  }
  walk_range(h->surv[h->cur], h->surv_top, fn, data);
  walk_range(h->eden, h->fast.top, fn, data);
}
