/* oldspace.c -- old space: size-class pages, free lists, allocation.
 *
 * Old space is a set of 256 KiB pages.  Each page holds cells of one size
 * class (cell size = object size + header, rounded up to the class).  A
 * class allocates first from its free list, then by bumping in its current
 * page, then by sweeping one more of its unswept pages (sweeper.c), and
 * only then takes a new page (from a pool of empty pages, from the page
 * preparer's ready list, or from the system).
 *
 * INV(pages): every page is on exactly one of its class's lists: `pages`
 * (swept, or new since the last mark) or `unswept`.
 * INV(bump): cells at or past a page's bump pointer were never allocated
 * since the page got its class; cells below it are allocated (header != 0)
 * or free (header 0, on the class free list or about to be).
 *
 * See gc/DESIGN.md, section Old space.
 */
#include <string.h>

#include "gc_internal.h"

#define PAGE_HEADER ((uintptr_t)64)
#define POOL_MIN_PAGES 64

/* --- Size classes ------------------------------------------------------------ */

static void add_class(gc_heap_t *h, uint32_t cell) {
  h->cls[h->nclasses].cell_size = cell;
  h->nclasses++;
}

void gc__old_init(gc_heap_t *h) {
  h->nclasses = 0;
  for (uint32_t c = 16; c <= 128; c += 8)
    add_class(h, c);
  for (uint32_t c = 144; c <= 256; c += 16)
    add_class(h, c);
  for (uint32_t base = 256; base < 8192; base *= 2)
    for (uint32_t k = 5; k <= 8; k++)
      add_class(h, base * k / 4);
  add_class(h, 10240);
  add_class(h, 12288);
  add_class(h, 14336);
  add_class(h, (uint32_t)(GC_MAX_REGULAR_SIZE + GC__HDR));
  GC_ASSERT(h->nclasses <= GC__NCLASSES);
  size_t k = 0;
  for (size_t i = 0; i <= 32; i++) {
    while (h->cls[k].cell_size < i * 8)
      k++;
    h->class_small[i] = (uint8_t)k;
  }
  k = 0;
  for (size_t i = 0; i < sizeof h->class_big; i++) {
    while (k + 1 < h->nclasses && h->cls[k].cell_size < i * 128)
      k++;
    h->class_big[i] = (uint8_t)k;
  }
}

/* --- Pages ------------------------------------------------------------------- */

static gc__page_t *page_new(gc_heap_t *h, unsigned cls) {
  if (gc__old_committed(h) + GC__PAGE_SIZE > h->limit)
    return NULL;
  gc__page_t *p;
  if (h->pool != NULL) {
    p = h->pool;
    h->pool = p->next;
    h->pool_len--;
  } else if ((p = gc__prep_take(h)) == NULL) {
    p = gc__map(GC__PAGE_SIZE, GC__PAGE_SIZE);
    if (p == NULL)
      gc__fatal(h, "cannot map a %zu KB old-space page", GC__PAGE_SIZE / 1024);
  }
  uint32_t cs = h->cls[cls].cell_size;
  memset(p, 0, sizeof *p);
  p->cls = cls;
  p->cell_size = cs;
  p->cells = (uintptr_t)p + PAGE_HEADER;
  p->end = p->cells + ((GC__PAGE_SIZE - PAGE_HEADER) / cs) * cs;
  p->bump = p->cells;
  p->sweep_end = p->cells;
  p->next = h->cls[cls].pages;
  h->cls[cls].pages = p;
  h->pages_in_use++;
  return p;
}

/* Empty pages stay mapped and resident in the pool, up to the larger of
 * POOL_MIN_PAGES and what the last mark found live: touching fresh memory
 * costs ~10x copying into resident memory (page faults), and a pool
 * never raises peak RSS, since a page enters it only by leaving use.
 * Beyond that, pages go back to the system. */
void gc__page_release(gc_heap_t *h, gc__page_t *p) {
  h->pages_in_use--;
  size_t cap = h->old_live / GC__PAGE_SIZE;
  if (cap < POOL_MIN_PAGES)
    cap = POOL_MIN_PAGES;
  if (h->pool_len < cap) {
    p->next = h->pool;
    h->pool = p;
    h->pool_len++;
  } else {
    gc__unmap(p, GC__PAGE_SIZE);
  }
}

size_t gc__old_committed(const gc_heap_t *h) {
  return h->pages_in_use * GC__PAGE_SIZE + h->large_bytes;
}

/* --- Allocation -------------------------------------------------------------- */

/* Returns a cell of at least TOTAL bytes (header included); its contents
 * are undefined.  Returns NULL if it would need a new page and that page
 * would take old + large space over the limit. */
void *gc__old_alloc(gc_heap_t *h, size_t total) {
  gc__class_t *c = &h->cls[gc__class_of(h, total)];
  for (;;) {
    void *cell = gc__old_take(h, c);
    if (cell != NULL)
      return cell;
    if (gc__sweep_one(h, c))
      continue;
    gc__page_t *p = page_new(h, (unsigned)(c - h->cls));
    if (p == NULL)
      return NULL;
    c->cur = p;
  }
}

/* --- Walking and teardown ---------------------------------------------------- */

void gc__old_for_each_page(gc_heap_t *h, gc__page_fn fn, void *data) {
  for (size_t k = 0; k < h->nclasses; k++) {
    for (gc__page_t *p = h->cls[k].pages; p != NULL; p = p->next)
      fn(p, data);
    for (gc__page_t *p = h->cls[k].unswept; p != NULL; p = p->next_unswept)
      fn(p, data);
  }
}

void gc__old_walk(gc_heap_t *h, gc_object_fn fn, void *data) {
  gc__sweep_finish(h);
  for (size_t k = 0; k < h->nclasses; k++) {
    for (gc__page_t *p = h->cls[k].pages; p != NULL; p = p->next) {
      for (uintptr_t cell = p->cells; cell < p->bump; cell += p->cell_size) {
        uintptr_t hdr = ((uintptr_t *)cell)[0];
        if (hdr == 0)
          continue;
        void *obj = (uintptr_t *)cell + 1;
        const gc_type_t *t = gc__type_of_hdr(hdr);
        fn(obj, t, gc__obj_total(obj, t) - GC__HDR, data);
      }
    }
  }
}

void gc__old_destroy(gc_heap_t *h) {
  for (size_t k = 0; k < h->nclasses; k++) {
    gc__class_t *c = &h->cls[k];
    gc__page_t *p = c->pages;
    while (p != NULL) {
      gc__page_t *n = p->next;
      gc__unmap(p, GC__PAGE_SIZE);
      p = n;
    }
    p = c->unswept;
    while (p != NULL) {
      gc__page_t *n = p->next_unswept;
      gc__unmap(p, GC__PAGE_SIZE);
      p = n;
    }
    c->pages = c->unswept = c->cur = NULL;
    c->free = NULL;
  }
  gc__prep_destroy(h);
  while (h->pool != NULL) {
    gc__page_t *n = h->pool->next;
    gc__unmap(h->pool, GC__PAGE_SIZE);
    h->pool = n;
  }
  h->pool_len = 0;
  h->pages_in_use = 0;
}
