/* objid.c -- stable object ids for heap snapshots.
 *
 * An object gets an id the first time somebody asks (gc_object_id); the
 * heap then keeps address -> id tables and rewrites them at GCs: a moved
 * object keeps its id under its new address, a dead one loses its entry.
 * There are two tables, for new-space and for old/large objects, so a
 * scavenge touches only the young one: after one snapshot of a big heap,
 * every object has an id, and scanning them all at every scavenge would
 * cost more than the scavenge.  Heaps that never ask pay nothing.
 * Ids are odd and increase, as V8's heap-object ids do, so a series of
 * snapshots of one heap can be compared by id.  They start at
 * GC_SNAPSHOT_FIRST_OBJECT_ID: the ids below are the snapshot's synthetic
 * nodes' (root, "(GC roots)", sub-roots; see gc_snapshot.h).
 *
 * INV(ids): every key is the address of a live object, in the young table
 * if and only if the object is in new space.  The tables follow the heap
 * through a listener on the evacuated and marked events (events.c).
 *
 * Identity hashes: objects move, so an address is no hash.  gc_object_id is
 * the identity-hash route: the first call for an object costs a table
 * insert (16 bytes of table per object with an id, at most half full), a
 * later one a lookup; while an object is young its entry is rehashed at
 * every scavenge it survives, once old only at full GCs.  A program that
 * hashes very many short-lived objects by identity does better to store a
 * hash in the object itself when it creates it.
 */
#include <stdlib.h>
#include <string.h>

#include "gc_internal.h"

typedef struct entry_s {
  uintptr_t addr; /* 0: empty */
  uint64_t id;
} entry_t;

static size_t slot_of(uintptr_t a, size_t mask) {
  uint64_t x = (uint64_t)a * 0x9e3779b97f4a7c15ULL;
  return (size_t)(x >> 17) & mask;
}

static void put_raw(entry_t *e, size_t mask, uintptr_t a, uint64_t id) {
  size_t i = slot_of(a, mask);
  while (e[i].addr != 0 && e[i].addr != a)
    i = (i + 1) & mask;
  e[i].addr = a;
  e[i].id = id;
}

static bool tab_init(gc_heap_t *h, gc__idtab_t *t, size_t n) {
  size_t cap = 64;
  while (cap < n * 2)
    cap *= 2;
  t->e = gc__calloc(h, cap * sizeof *t->e);
  if (t->e == NULL)
    return false;
  t->cap = cap;
  t->len = 0;
  return true;
}

static void tab_free(gc_heap_t *h, gc__idtab_t *t) {
  gc__free(h, t->e, t->cap * sizeof *t->e);
  t->e = NULL;
  t->cap = t->len = 0;
}

/* Adds A -> ID (A not yet in T).  Returns false when out of memory. */
static bool tab_put(gc_heap_t *h, gc__idtab_t *t, uintptr_t a, uint64_t id) {
  if ((t->len + 1) * 2 > t->cap) {
    gc__idtab_t n;
    if (!tab_init(h, &n, t->len + 1))
      return false;
    for (size_t i = 0; i < t->cap; i++)
      if (t->e[i].addr != 0)
        put_raw(n.e, n.cap - 1, t->e[i].addr, t->e[i].id);
    n.len = t->len;
    tab_free(h, t);
    *t = n;
  }
  put_raw(t->e, t->cap - 1, a, id);
  t->len++;
  return true;
}

static uint64_t tab_get(const gc__idtab_t *t, uintptr_t a) {
  if (t->cap == 0)
    return 0;
  size_t mask = t->cap - 1;
  for (size_t i = slot_of(a, mask); t->e[i].addr != 0; i = (i + 1) & mask)
    if (t->e[i].addr == a)
      return t->e[i].id;
  return 0;
}

static gc__idtab_t *tab_for(gc_heap_t *h, const void *obj) {
  return gc__is_young(&h->fast, obj) ? &h->ids_young : &h->ids_old;
}

uint64_t gc_object_id_peek(gc_heap_t *h, const void *obj) {
  if (h == NULL || gc__not_ptr(obj))
    return 0;
  return tab_get(tab_for(h, obj), (uintptr_t)obj);
}

uint64_t gc_object_id(gc_heap_t *h, const void *obj) {
  if (h == NULL || gc__not_ptr(obj))
    return 0;
  gc__idtab_t *t = tab_for(h, obj);
  uint64_t id = tab_get(t, (uintptr_t)obj);
  if (id != 0)
    return id;
  if (h->next_id == 0)
    h->next_id = GC_SNAPSHOT_FIRST_OBJECT_ID;
  id = h->next_id;
  if (!tab_put(h, t, (uintptr_t)obj, id))
    return 0;
  h->next_id += 2;
  return id;
}

/* After a scavenge's closure, before the flip: every young entry moved
 * (FWD: to new space or, promoted, to old space) or died. */
static void ids_after_scavenge(gc_heap_t *h, uintptr_t lo, size_t size) {
  gc__idtab_t old = h->ids_young;
  if (old.len == 0)
    return;
  h->ids_young = (gc__idtab_t){NULL, 0, 0};
  for (size_t i = 0; i < old.cap; i++) {
    uintptr_t a = old.e[i].addr;
    if (a == 0 || a - lo >= size)
      continue;
    uintptr_t hdr = gc__hdr(a);
    if (!(hdr & X__FWD))
      continue; /* died */
    void *n = (void *)(hdr & ~X__FWD);
    /* Out of memory the id is forgotten, never left under a stale key. */
    tab_put(h, tab_for(h, n), (uintptr_t)n, old.e[i].id);
  }
  tab_free(h, &old);
}

/* After a mark: old and large objects that are not marked died (new-space
 * objects are all live then). */
static void ids_after_mark(gc_heap_t *h) {
  gc__idtab_t old = h->ids_old;
  if (old.len == 0)
    return;
  size_t live = 0;
  for (size_t i = 0; i < old.cap; i++)
    if (old.e[i].addr != 0 && (gc__hdr(old.e[i].addr) & X__MARK))
      live++;
  if (live == old.len)
    return;
  gc__idtab_t n;
  if (!tab_init(h, &n, live)) {
    tab_free(h, &h->ids_old);
    return;
  }
  for (size_t i = 0; i < old.cap; i++)
    if (old.e[i].addr != 0 && (gc__hdr(old.e[i].addr) & X__MARK))
      put_raw(n.e, n.cap - 1, old.e[i].addr, old.e[i].id);
  n.len = live;
  tab_free(h, &h->ids_old);
  h->ids_old = n;
}

void gc__ids_destroy(gc_heap_t *h) {
  tab_free(h, &h->ids_young);
  tab_free(h, &h->ids_old);
}

const gc__listener_t gc__ids_listener = {
    .name = "ids", .evacuated = ids_after_scavenge, .marked = ids_after_mark};
