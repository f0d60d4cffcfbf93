/* oldspace.c -- old space: size-class pages, free lists, lazy sweeping.
 *
 * Old space is a set of 256 KiB pages.  Each page holds cells of one size
 * class (cell size = object size + header, rounded up to the class).  A
 * class allocates first from its free list, then by bumping in its current
 * page, then by sweeping one more of its unswept pages, and only then takes
 * a new page (from a small pool of empty pages, or the system).
 *
 * Sweeping is lazy: after a mark, every page is queued as unswept and is
 * swept when its class needs memory, or all at once before the next mark,
 * a heap walk or verification.  Sweeping a page clears the mark bits of its
 * live cells, runs the finalizers of the dead ones and threads them on the
 * class free list; a page left with no live cell goes back to the pool.
 *
 * INV(pages): every page is on exactly one of its class's lists: `pages`
 * (swept, or new since the last mark) or `unswept`.
 * INV(sweep): a pending sweep covers [cells, sweep_end) of a page; cells
 * allocated after the mark lie elsewhere (free lists only hold cells of
 * swept pages; bumping happens past sweep_end), so they are never swept as
 * dead in the cycle they were born in.
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
static void page_release(gc_heap_t *h, gc__page_t *p) {
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

/* --- Sweeping ---------------------------------------------------------------- */

/* Sweeps P (taken off its class's unswept list by the caller). */
static void sweep_page(gc_heap_t *h, gc__page_t *p) {
  gc__class_t *c = &h->cls[p->cls];
  uint32_t cs = p->cell_size;
  void *head = NULL;
  void **tail = &head;
  uint32_t live = 0;
  for (uintptr_t cell = p->cells; cell < p->sweep_end; cell += cs) {
    uintptr_t *w = (uintptr_t *)cell;
    uintptr_t hdr = w[0];
    if (hdr & X__MARK) {
      w[0] = hdr & ~X__MARK;
      live++;
      continue;
    }
    if (hdr != 0) {
      const gc_type_t *t = gc__type_of_hdr(hdr);
      if (t->finalize != NULL) {
        t->finalize(w + 1);
        h->finalized++;
      }
      w[0] = 0;
      h->old_used -= cs;
    }
    *tail = w;
    tail = (void **)&w[1];
  }
  /* Cells past sweep_end were allocated after the mark: live. */
  for (uintptr_t cell = p->sweep_end; cell < p->bump; cell += cs)
    if (((uintptr_t *)cell)[0] != 0)
      live++;
  *tail = NULL;
  p->unswept = false;
  p->live = live;
  if (live == 0 && p != c->cur) {
    if (c->cur != NULL && c->cur->bump + cs <= c->cur->end) {
      page_release(h, p);
      return;
    }
    /* Reuse the empty page for bumping: the allocation that asked for this
     * sweep is served at once instead of sweeping on through every dead
     * page of the class (which made some scavenges sweep hundreds of MB). */
    p->bump = p->sweep_end = p->cells;
    c->cur = p;
    head = NULL;
  }
  *tail = c->free;
  c->free = head;
  p->next = c->pages;
  c->pages = p;
}

static bool sweep_one(gc_heap_t *h, gc__class_t *c) {
  gc__page_t *p = c->unswept;
  if (p == NULL)
    return false;
  c->unswept = p->next_unswept;
  sweep_page(h, p);
  return true;
}

void gc__old_prepare_sweep(gc_heap_t *h) {
  for (size_t k = 0; k < h->nclasses; k++) {
    gc__class_t *c = &h->cls[k];
    c->free = NULL; /* rebuilt by the sweep */
    gc__page_t *p = c->pages;
    while (p != NULL) {
      gc__page_t *next = p->next;
      p->unswept = true;
      p->sweep_end = p->bump;
      p->next_unswept = c->unswept;
      c->unswept = p;
      p = next;
    }
    c->pages = NULL;
  }
  h->sweep_pending = true;
}

void gc__old_finish_sweep(gc_heap_t *h) {
  if (!h->sweep_pending)
    return;
  for (size_t k = 0; k < h->nclasses; k++)
    while (sweep_one(h, &h->cls[k]))
      ;
  h->sweep_pending = false;
}

/* Sweeps up to N pending pages (round-robin over the classes); the
 * scavenger calls it so that lazy sweeping is mostly done before the next
 * full GC has to finish it inside its pause. */
void gc__old_sweep_some(gc_heap_t *h, size_t n) {
  if (!h->sweep_pending)
    return;
  bool any = false;
  for (size_t k = 0; k < h->nclasses && n > 0; k++)
    while (n > 0 && sweep_one(h, &h->cls[k])) {
      n--;
      any = true;
    }
  if (!any)
    h->sweep_pending = false;
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
    if (sweep_one(h, c))
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
  gc__old_finish_sweep(h);
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
