/* handles.c -- precise roots: handle scopes, persistent and weak handles,
 * embedder root slots and root tracers.
 *
 * Handles live in a chain of blocks of GC__HANDLE_BLOCK slots.  The fast
 * path (gc_handle in gc.h) stores into the current block; when it is full,
 * gc__handle_slow moves to the next block, allocating it the first time.
 * Closing a scope only resets the top, so blocks are reused, never freed
 * until the heap dies.
 * INV(handles): the blocks before the one holding hs_limit are full; the
 * live handles are those blocks plus [block start, hs_top) of the current.
 *
 * Persistent and weak handles are entries in chunks of GC__PCHUNK with a free
 * list; a gc_persistent_t * is the entry's address and never moves.  Weak
 * handles are decided after each collection by weak.c.
 *
 * Root frames (GC_FRAME, gc.h) are linked through the fast-path state; each
 * frame is followed by the addresses of the variables it registers.
 * INV(frames): h->fast.frame is the innermost linked frame; frames link in
 * LIFO order, and gc_scope_unwind restores the frame saved at a scope's
 * open.
 */
#include <stdlib.h>
#include <string.h>

#include "gc_internal.h"

/* --- Handle blocks ----------------------------------------------------------- */

int gc__handles_init(gc_heap_t *h) {
  gc__hblock_t *b = gc__calloc(h, sizeof *b);
  if (b == NULL)
    return -ENOMEM;
  h->hfirst = b;
  h->fast.hs_top = b->slots;
  h->fast.hs_limit = b->slots + GC__HANDLE_BLOCK;
  return 0;
}

static gc__hblock_t *block_of_limit(gc_heap_t *h, void **limit) {
  for (gc__hblock_t *b = h->hfirst; b != NULL; b = b->next)
    if (b->slots + GC__HANDLE_BLOCK == limit)
      return b;
  return NULL;
}

void **gc__handle_slow(gc_heap_t *h, void *obj) {
  gc__hblock_t *b = block_of_limit(h, h->fast.hs_limit);
  if (b->next == NULL) {
    gc__hblock_t *n = gc__calloc(h, sizeof *n);
    if (n == NULL)
      gc__fatal(h, "out of memory for a handle block");
    n->prev = b;
    b->next = n;
  }
  b = b->next;
  h->fast.hs_top = b->slots;
  h->fast.hs_limit = b->slots + GC__HANDLE_BLOCK;
  *h->fast.hs_top = obj;
  return h->fast.hs_top++;
}

void gc__scope_mismatch(gc_heap_t *h, gc_scope_t *s) {
  gc__fatal(h,
            "handle scope %p closed out of order (the innermost open scope is "
            "%p): scopes must close in LIFO order",
            (void *)s, (void *)h->fast.scope);
}

static void trace_handles(gc_heap_t *h, gc_visitor_t *v) {
  gc_edge_t e = GC_EDGE_INTERNAL("(Handle scope)");
  for (gc__hblock_t *b = h->hfirst; b != NULL; b = b->next) {
    bool last = b->slots + GC__HANDLE_BLOCK == h->fast.hs_limit;
    void **end = last ? h->fast.hs_top : b->slots + GC__HANDLE_BLOCK;
    for (void **s = b->slots; s < end; s++)
      if (!gc__not_ptr(*s))
        v->visit(v, s, e);
    if (last)
      break;
  }
}

void gc_scope_unwind(gc_heap_t *h, gc_scope_t *s) {
  /* Only S is read: the scopes and frames inside it may live in C frames
   * that a longjmp already popped. */
  gc__fast_t *f = &h->fast;
  f->hs_top = s->top;
  f->hs_limit = s->limit;
  f->frame = s->frame;
  f->scope = s->prev;
}

/* --- Root frames ------------------------------------------------------------ */

void gc__frame_mismatch(gc_heap_t *h, gc_frame_t *fr) {
  gc__fatal(h,
            "root frame %p closed out of order (the innermost linked frame "
            "is %p): frames must close in LIFO order",
            (void *)fr, (void *)h->fast.frame);
}

static void trace_frames(gc_heap_t *h, gc_visitor_t *v) {
  gc_edge_t e = GC_EDGE_INTERNAL("(Stack roots)");
  for (gc_frame_t *fr = h->fast.frame; fr != NULL; fr = fr->prev) {
    void **addr = (void **)(fr + 1); /* the addresses follow the frame */
    for (size_t i = 0; i < fr->n; i++) {
      void **slot = addr[i];
      if (!gc__not_ptr(*slot))
        v->visit(v, slot, e);
    }
  }
}

/* --- Persistent and weak handles ------------------------------------------- */

static gc__pentry_t *pentry_new(gc_heap_t *h) {
  if (h->pfree == NULL) {
    gc__pchunk_t *c = gc__calloc(h, sizeof *c);
    if (c == NULL)
      return NULL;
    c->next = h->pchunks;
    h->pchunks = c;
    for (int i = GC__PCHUNK - 1; i >= 0; i--) {
      c->e[i].next_free = h->pfree;
      h->pfree = &c->e[i];
    }
  }
  gc__pentry_t *e = h->pfree;
  h->pfree = e->next_free;
  memset(e, 0, sizeof *e);
  e->in_use = 1;
  return e;
}

gc_persistent_t *gc_persistent_new(gc_heap_t *h, void *obj) {
  gc__pentry_t *e = pentry_new(h);
  if (e == NULL)
    return NULL;
  e->obj = obj;
  return (gc_persistent_t *)e;
}

gc_persistent_t *gc_weak_new(gc_heap_t *h, void *obj, gc_weak_fn cb,
                             void *data) {
  gc__pentry_t *e = pentry_new(h);
  if (e == NULL)
    return NULL;
  e->obj = obj;
  e->weak = 1;
  e->cb = cb;
  e->data = data;
  return (gc_persistent_t *)e;
}

void gc_persistent_set(gc_heap_t *h, gc_persistent_t *p, void *obj) {
  (void)h;
  ((gc__pentry_t *)p)->obj = obj;
  ((gc__pentry_t *)p)->cleared = 0;
}

void gc_persistent_free(gc_heap_t *h, gc_persistent_t *p) {
  gc__pentry_t *e = (gc__pentry_t *)p;
  if (e == NULL)
    return;
  e->in_use = 0;
  e->obj = NULL;
  e->next_free = h->pfree;
  h->pfree = e;
}

static void trace_persistent(gc_heap_t *h, gc_visitor_t *v, bool weak) {
  gc_edge_t e = weak ? GC_EDGE_WEAK("(Weak handles)")
                     : GC_EDGE_INTERNAL("(Persistent handles)");
  for (gc__pchunk_t *c = h->pchunks; c != NULL; c = c->next)
    for (int i = 0; i < GC__PCHUNK; i++)
      if (c->e[i].in_use && c->e[i].weak == weak && !gc__not_ptr(c->e[i].obj))
        v->visit(v, &c->e[i].obj, e);
}

/* --- Embedder roots --------------------------------------------------------- */

static int root_push(gc_heap_t *h, gc__root_t r) {
  if (h->nroots == h->roots_cap) {
    size_t ncap = h->roots_cap ? h->roots_cap * 2 : 16;
    gc__root_t *n = gc__realloc(h, h->roots, h->roots_cap * sizeof *n,
                                ncap * sizeof *n);
    if (n == NULL)
      return -ENOMEM;
    h->roots = n;
    h->roots_cap = ncap;
  }
  h->roots[h->nroots++] = r;
  return 0;
}

static void root_delete(gc_heap_t *h, size_t i) {
  memmove(&h->roots[i], &h->roots[i + 1],
          (h->nroots - i - 1) * sizeof h->roots[0]);
  h->nroots--;
}

int gc_root_add(gc_heap_t *h, void **slot, const char *label) {
  if (h == NULL || slot == NULL)
    return -EINVAL;
  return root_push(h, (gc__root_t){slot, NULL, NULL, label});
}

int gc_root_remove(gc_heap_t *h, void **slot) {
  for (size_t i = h->nroots; i-- > 0;) {
    if (h->roots[i].slot == slot && h->roots[i].fn == NULL) {
      root_delete(h, i);
      return 0;
    }
  }
  return -ENOENT;
}

int gc_root_tracer_add(gc_heap_t *h, gc_root_trace_fn fn, void *data,
                       const char *label) {
  if (h == NULL || fn == NULL)
    return -EINVAL;
  return root_push(h, (gc__root_t){NULL, fn, data, label});
}

int gc_root_tracer_remove(gc_heap_t *h, gc_root_trace_fn fn, void *data) {
  for (size_t i = h->nroots; i-- > 0;) {
    if (h->roots[i].fn == fn && h->roots[i].data == data) {
      root_delete(h, i);
      return 0;
    }
  }
  return -ENOENT;
}

void gc__trace_roots(gc_heap_t *h, gc_visitor_t *v) {
  trace_handles(h, v);
  trace_frames(h, v);
  trace_persistent(h, v, false);
  for (size_t i = 0; i < h->nroots; i++) {
    gc__root_t *r = &h->roots[i];
    if (r->fn != NULL)
      r->fn(v, r->data);
    else if (!gc__not_ptr(*r->slot))
      v->visit(v, r->slot,
               GC_EDGE_INTERNAL(r->label != NULL ? r->label : "(Embedder root)"));
  }
}

void gc_walk_roots(gc_heap_t *h, gc_visitor_t *v) {
  gc__trace_roots(h, v);
  trace_persistent(h, v, true);
}

void gc__handles_destroy(gc_heap_t *h) {
  gc__hblock_t *b = h->hfirst;
  while (b != NULL) {
    gc__hblock_t *n = b->next;
    gc__free(h, b, sizeof *b);
    b = n;
  }
  h->hfirst = NULL;
  gc__pchunk_t *c = h->pchunks;
  while (c != NULL) {
    gc__pchunk_t *n = c->next;
    gc__free(h, c, sizeof *c);
    c = n;
  }
  h->pchunks = NULL;
  h->pfree = NULL;
  gc__free(h, h->roots, h->roots_cap * sizeof h->roots[0]);
  h->roots = NULL;
  h->nroots = h->roots_cap = 0;
}
