/* verify.c -- the heap verifier behind --verify-heap and gc_verify.
 *
 * Checks, over every object and every root:
 *   - the header names a registered type and carries no stale GC bits
 *     (no forwarding, no mark outside a GC; ages only in new space);
 *   - every reference is NULL, an immediate, or the start of a live object:
 *     in new space an object start below the allocation top, in old space
 *     an allocated cell of a page we own, or a large object we own;
 *     never the evacuated semispace;
 *   - INV(remset): an old object that references a new one is REMEMBERED
 *     and in the remembered set, and every remembered object is in it once;
 *   - an object's size (size_of) fits the cell or mapping it lives in.
 *
 * Variable-size objects: size_of reads the object's own fields, so a
 * length written after the next GC point makes a scavenge copy the object
 * at the wrong size and overwrite its neighbour, and the damage shows far
 * from the cause.  Under --verify-heap every allocation takes the slow
 * path, which records (object, size) for new-space objects; at the start of
 * each GC, before anything moves, each is checked against its size_of, and
 * a mismatch is a fatal error naming the type and both sizes.
 *
 * Both checks hang on the GC's events (events.c): the size check on start,
 * the whole-heap verification on end.
 */
#include <stdlib.h>
#include <string.h>

#include "gc_internal.h"

typedef struct ver_s {
  gc_visitor_t v;
  gc_heap_t *h;
  uintptr_t young_lo, young_hi; /* gc__young_span: all of new space's objects */
  uint8_t *starts;              /* object-start bitmap of new space */
  uintptr_t *pages;
  size_t npages, pages_cap;
  uintptr_t *large;
  size_t nlarge;
  const void *holder; /* NULL for roots */
  const gc_type_t *holder_type;
  bool holder_old;
  size_t errors;
  size_t remembered;
} ver_t;

static int cmp_uptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* bsearch and qsort with a NULL array are undefined even for 0 elements. */
static bool find(const uintptr_t *v, size_t n, uintptr_t key) {
  return n > 0 && bsearch(&key, v, n, sizeof key, cmp_uptr) != NULL;
}

static void sort(uintptr_t *v, size_t n) {
  if (n > 1)
    qsort(v, n, sizeof *v, cmp_uptr);
}

static void collect_page(gc__page_t *p, void *data) {
  ver_t *vr = data;
  if (vr->npages == vr->pages_cap) {
    vr->pages_cap = vr->pages_cap ? vr->pages_cap * 2 : 64;
    vr->pages = realloc(vr->pages, vr->pages_cap * sizeof *vr->pages);
    if (vr->pages == NULL)
      gc__fatal(vr->h, "verify: out of memory");
  }
  vr->pages[vr->npages++] = (uintptr_t)p;
}

static void report(ver_t *vr, const char *what, const void *target,
                   gc_edge_t e) {
  if (vr->errors++ >= 20)
    return;
  char edge[64];
  if (e.kind == GC_EDGE_ELEMENT)
    snprintf(edge, sizeof edge, "[%u]", e.index);
  else
    snprintf(edge, sizeof edge, "%s", e.name != NULL ? e.name : "?");
  fprintf(stderr, "tenure: verify-heap: %s: %s %p .%s -> %p\n", what,
          vr->holder_type != NULL ? vr->holder_type->name : "(root)",
          vr->holder, edge, target);
}

/* Is O the payload of a live object?  Returns 'y'oung, 'o'ld, 'l'arge or 0. */
static char classify(ver_t *vr, const void *o) {
  uintptr_t a = (uintptr_t)o;
  gc_heap_t *h = vr->h;
  if (gc__is_young(&h->fast, o)) {
    if (a < vr->young_lo + GC__HDR || a >= vr->young_hi)
      return 0;
    size_t bit = (a - GC__HDR - vr->young_lo) / GC__ALIGN;
    return (vr->starts[bit / 8] >> (bit % 8)) & 1 ? 'y' : 0;
  }
  uintptr_t page = a & ~(uintptr_t)(GC__PAGE_SIZE - 1);
  if (find(vr->pages, vr->npages, page)) {
    gc__page_t *p = (gc__page_t *)page;
    uintptr_t cell = a - GC__HDR;
    if (cell < p->cells || cell >= p->bump || (cell - p->cells) % p->cell_size)
      return 0;
    return ((uintptr_t *)cell)[0] != 0 ? 'o' : 0;
  }
  if (find(vr->large, vr->nlarge, a))
    return 'l';
  return 0;
}

static void check_ref(gc_visitor_t *v, void **slot, gc_edge_t e) {
  ver_t *vr = (ver_t *)v;
  void *o = *slot;
  if (gc__not_ptr(o))
    return;
  char c = classify(vr, o);
  if (c == 0) {
    report(vr, "reference to no live object", o, e);
    return;
  }
  uintptr_t hdr = gc__hdr(o);
  if ((hdr & X__FWD) || !gc__type_known(vr->h, gc__type_of_hdr(hdr))) {
    report(vr, "reference to an object with a bad header", o, e);
    return;
  }
  if (c == 'y' && vr->holder_old &&
      !(gc__hdr(vr->holder) & X__REMEMBERED))
    report(vr, "old-to-new reference not in the remembered set", o, e);
}

static void check_object(void *obj, const gc_type_t *t, size_t size,
                         void *data) {
  ver_t *vr = data;
  (void)size;
  uintptr_t hdr = gc__hdr(obj);
  vr->holder = obj;
  vr->holder_type = NULL;
  if (!gc__type_known(vr->h, t)) {
    report(vr, "object of an unregistered type", obj, GC_EDGE_PROP("header"));
    return;
  }
  vr->holder_type = t;
  bool young = gc__is_young(&vr->h->fast, obj);
  vr->holder_old = !young;
  if (hdr & (X__FWD | X__MARK))
    report(vr, "stale forwarding or mark bit", obj, GC_EDGE_PROP("header"));
  if (!young && (hdr & X__AGE_MASK))
    report(vr, "age bits on an old object", obj, GC_EDGE_PROP("header"));
  if (hdr & X__REMEMBERED)
    vr->remembered++;
  size_t total = gc__obj_total(obj, t);
  uintptr_t page = (uintptr_t)obj & ~(uintptr_t)(GC__PAGE_SIZE - 1);
  if (!young && find(vr->pages, vr->npages, page) &&
      total > ((gc__page_t *)page)->cell_size)
    report(vr, "size_of exceeds the object's cell", obj,
           GC_EDGE_PROP("size_of"));
  if (t->trace != NULL)
    t->trace(obj, &vr->v);
}

static void mark_start(void *obj, const gc_type_t *t, size_t size, void *data) {
  ver_t *vr = data;
  (void)t;
  (void)size;
  size_t bit = ((uintptr_t)obj - GC__HDR - vr->young_lo) / GC__ALIGN;
  vr->starts[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

int gc_verify(gc_heap_t *h) {
  ver_t vr;
  memset(&vr, 0, sizeof vr);
  vr.v.visit = check_ref;
  vr.h = h;
  gc__sweep_finish(h);
  gc__young_span(h, &vr.young_lo, &vr.young_hi);
  vr.starts = calloc((vr.young_hi - vr.young_lo) / GC__ALIGN / 8 + 1, 1);
  vr.large = malloc((h->large_objects + 1) * sizeof *vr.large);
  if (vr.starts == NULL || vr.large == NULL)
    gc__fatal(h, "verify: out of memory");
  gc__nursery_walk(h, mark_start, &vr);
  gc__old_for_each_page(h, collect_page, &vr);
  sort(vr.pages, vr.npages);
  for (gc__large_t *l = h->large; l != NULL; l = l->next)
    vr.large[vr.nlarge++] = (uintptr_t)(&l->header + 1);
  sort(vr.large, vr.nlarge);

  gc__nursery_walk(h, check_object, &vr);
  gc__old_walk(h, check_object, &vr);
  gc__large_walk(h, check_object, &vr);

  vr.holder = NULL;
  vr.holder_type = NULL;
  vr.holder_old = false;
  gc_walk_roots(h, &vr.v);

  /* The remembered set holds exactly the REMEMBERED objects, once each. */
  if (vr.remembered != h->remset.len) {
    fprintf(stderr,
            "tenure: verify-heap: %zu objects have REMEMBERED set but the "
            "remembered set has %zu entries\n",
            vr.remembered, h->remset.len);
    vr.errors++;
  }
  for (size_t i = 0; i < h->remset.len; i++) {
    void *o = h->remset.items[i];
    if (!(gc__hdr(o) & X__REMEMBERED) || gc__is_young(&h->fast, o)) {
      fprintf(stderr, "tenure: verify-heap: remembered-set entry %p is %s\n",
              o, gc__is_young(&h->fast, o) ? "a new object" : "not marked REMEMBERED");
      vr.errors++;
    }
  }
  free(vr.starts);
  free(vr.pages);
  free(vr.large);
  if (vr.errors > 20)
    fprintf(stderr, "tenure: verify-heap: ... %zu errors in all\n", vr.errors);
  return vr.errors ? -EPROTO : 0;
}

/* --- Listener -------------------------------------------------------------- */

void gc__verify_record_size(gc_heap_t *h, void *obj, size_t total) {
  gc__vec_push(h, &h->alloc_sizes, obj);
  gc__vec_push(h, &h->alloc_sizes, (void *)total);
}

/* Before anything moves: every new-space object allocated since the last
 * scavenge still has the size it was allocated with. */
static void verify_start(gc_heap_t *h, const gc__cycle_t *c) {
  (void)c;
  gc__vec_t *v = &h->alloc_sizes;
  for (size_t i = 0; i < v->len; i += 2) {
    void *obj = v->items[i];
    size_t want = (size_t)v->items[i + 1];
    const gc_type_t *t = gc__type_of_hdr(gc__hdr(obj));
    size_t got = gc__obj_total(obj, t);
    if (got != want)
      gc__fatal(h,
                "verify-heap: a '%s' object at %p was allocated with %zu "
                "payload bytes but its size_of now says %zu: write the "
                "length field size_of reads before the next GC point (right "
                "after gc_alloc), and never change it",
                t->name, obj, want - GC__HDR, got - GC__HDR);
  }
  v->len = 0;
}

static void verify_end(gc_heap_t *h, const gc__cycle_t *c) {
  if (h->opt.verify_heap && gc_verify(h) < 0)
    gc__fatal(h, "heap verification failed after a %s",
              c->kind == GC_COLLECT_MINOR ? "scavenge" : "full GC");
}

const gc__listener_t gc__verify_listener = {
    .name = "verify", .start = verify_start, .end = verify_end};
