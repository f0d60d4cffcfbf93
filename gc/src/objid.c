/* objid.c -- stable object ids for heap snapshots.
 *
 * An object gets an id the first time somebody asks (gc_object_id); the
 * heap then keeps an address -> id table and rewrites it at every GC: a
 * moved object keeps its id under its new address, a dead one loses its
 * entry.  Heaps that never ask pay nothing (the table is empty).
 * Ids are odd and increase, as V8's heap-object ids do, so a series of
 * snapshots of one heap can be compared by id.  They start at
 * GC_SNAPSHOT_FIRST_OBJECT_ID: the ids below are the snapshot's synthetic
 * nodes' (root, "(GC roots)", sub-roots; see gc_snapshot.h).
 *
 * INV(ids): every key of the table is the address of a live object.
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

static void put(entry_t *t, size_t mask, uintptr_t a, uint64_t id) {
  size_t i = slot_of(a, mask);
  while (t[i].addr != 0 && t[i].addr != a)
    i = (i + 1) & mask;
  t[i].addr = a;
  t[i].id = id;
}

/* Rebuilds the table with room for N entries. */
static bool rebuild(gc_heap_t *h, size_t n, entry_t *from, size_t from_cap) {
  size_t cap = 64;
  while (cap < n * 2)
    cap *= 2;
  entry_t *t = gc__calloc(h, cap * sizeof *t);
  if (t == NULL)
    return false;
  for (size_t i = 0; i < from_cap; i++)
    if (from[i].addr != 0)
      put(t, cap - 1, from[i].addr, from[i].id);
  gc__free(h, h->ids, h->ids_cap * sizeof(entry_t));
  h->ids = t;
  h->ids_cap = cap;
  return true;
}

/* Keys of OLD changed in place (N live entries left): rehash them into a
 * fresh table and free OLD.  Out of memory, the ids are forgotten rather
 * than kept under stale keys. */
static void rehash(gc_heap_t *h, entry_t *old, size_t cap, size_t n) {
  h->ids = NULL;
  h->ids_cap = 0;
  h->ids_len = n;
  if (!rebuild(h, n, old, cap))
    h->ids_len = 0;
  gc__free(h, old, cap * sizeof(entry_t));
}

uint64_t gc_object_id(gc_heap_t *h, const void *obj) {
  if (h == NULL || gc__not_ptr(obj))
    return 0;
  uintptr_t a = (uintptr_t)obj;
  entry_t *t = h->ids;
  if (t != NULL) {
    size_t mask = h->ids_cap - 1;
    for (size_t i = slot_of(a, mask); t[i].addr != 0; i = (i + 1) & mask)
      if (t[i].addr == a)
        return t[i].id;
  }
  if ((h->ids_len + 1) * 2 > h->ids_cap &&
      !rebuild(h, h->ids_len + 1, h->ids, h->ids_cap))
    return 0;
  if (h->next_id == 0)
    h->next_id = GC_SNAPSHOT_FIRST_OBJECT_ID;
  uint64_t id = h->next_id;
  h->next_id += 2;
  put(h->ids, h->ids_cap - 1, a, id);
  h->ids_len++;
  return id;
}

/* After a scavenge's closure, before the flip: objects in the evacuated
 * semispace [lo, lo + size) moved (FWD) or died. */
void gc__ids_after_scavenge(gc_heap_t *h, uintptr_t lo, size_t size) {
  if (h->ids_len == 0)
    return;
  entry_t *old = h->ids;
  size_t cap = h->ids_cap, n = 0;
  bool moved = false;
  for (size_t i = 0; i < cap; i++) {
    uintptr_t a = old[i].addr;
    if (a == 0)
      continue;
    if (a - lo < size) {
      uintptr_t hdr = gc__hdr(a);
      moved = true;
      if (hdr & X__FWD) {
        old[i].addr = hdr & ~X__FWD;
        n++;
      } else {
        old[i].addr = 0;
      }
    } else {
      n++;
    }
  }
  if (moved)
    rehash(h, old, cap, n);
}

/* After a mark: old and large objects that are not marked died.  Objects
 * still in new space are live. */
void gc__ids_after_mark(gc_heap_t *h) {
  if (h->ids_len == 0)
    return;
  entry_t *old = h->ids;
  size_t cap = h->ids_cap, n = 0;
  bool dropped = false;
  for (size_t i = 0; i < cap; i++) {
    uintptr_t a = old[i].addr;
    if (a == 0)
      continue;
    if (gc__is_young(&h->fast, (void *)a) || (gc__hdr(a) & X__MARK)) {
      n++;
    } else {
      old[i].addr = 0;
      dropped = true;
    }
  }
  if (dropped)
    rehash(h, old, cap, n);
}

void gc__ids_destroy(gc_heap_t *h) {
  gc__free(h, h->ids, h->ids_cap * sizeof(entry_t));
  h->ids = NULL;
  h->ids_cap = h->ids_len = 0;
}
