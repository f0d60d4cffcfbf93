/* sweeper.c -- sweeping: old-space pages lazily, large objects at once.
 *
 * After a mark, every old page is queued as unswept (gc__sweep_prepare).  A
 * page is swept when its class needs memory (oldspace.c calls
 * gc__sweep_one), a few after every scavenge (gc__sweep_some, so little is
 * left for the next full GC's pause), and whatever remains before the next
 * mark, a heap walk or verification (gc__sweep_finish).  Sweeping a page
 * clears the mark bits of its live cells, runs the finalizers of the dead
 * ones and threads them on the class free list; a page left with no live
 * cell goes back to the pool or becomes the class's bump page.
 * Large objects are swept eagerly right after the mark (gc__large_sweep):
 * dead ones are finalized and unmapped at once.
 *
 * INV(sweep): a pending sweep covers [cells, sweep_end) of a page; cells
 * allocated after the mark lie elsewhere (free lists only hold cells of
 * swept pages; bumping happens past sweep_end), so they are never swept as
 * dead in the cycle they were born in.
 *
 * See gc/DESIGN.md, section Old space.
 */
#include "gc_internal.h"

/* --- Old-space pages ------------------------------------------------------ */

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
        t->finalize(h, w + 1);
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
      gc__page_release(h, p);
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

bool gc__sweep_one(gc_heap_t *h, gc__class_t *c) {
  gc__page_t *p = c->unswept;
  if (p == NULL)
    return false;
  c->unswept = p->next_unswept;
  sweep_page(h, p);
  return true;
}

void gc__sweep_prepare(gc_heap_t *h) {
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

void gc__sweep_finish(gc_heap_t *h) {
  if (!h->sweep_pending)
    return;
  for (size_t k = 0; k < h->nclasses; k++)
    while (gc__sweep_one(h, &h->cls[k]))
      ;
  h->sweep_pending = false;
}

/* Sweeps up to N pending pages (round-robin over the classes); the
 * scavenger calls it so that lazy sweeping is mostly done before the next
 * full GC has to finish it inside its pause. */
void gc__sweep_some(gc_heap_t *h, size_t n) {
  if (!h->sweep_pending)
    return;
  bool any = false;
  for (size_t k = 0; k < h->nclasses && n > 0; k++)
    while (n > 0 && gc__sweep_one(h, &h->cls[k])) {
      n--;
      any = true;
    }
  if (!any)
    h->sweep_pending = false;
}

/* --- Large objects -------------------------------------------------------- */

void gc__large_sweep(gc_heap_t *h) {
  gc__large_t *l = h->large;
  while (l != NULL) {
    gc__large_t *next = l->next;
    if (l->header & X__MARK) {
      l->header &= ~X__MARK;
    } else {
      const gc_type_t *t = gc__type_of_hdr(l->header);
      if (t->finalize != NULL) {
        t->finalize(h, &l->header + 1);
        h->finalized++;
      }
      gc__large_free(h, l);
    }
    l = next;
  }
}
