/* types.c -- the registry of type descriptors.
 *
 * Every type must be registered before its first allocation: the verifier
 * checks that each header names a registered type, and snapshots and
 * statistics list types by name.  The registry is an open-addressing set of
 * descriptor addresses (power-of-two capacity, at most half full), so a
 * lookup is one hash and, nearly always, one probe.
 *
 * gc_alloc's inline fast path does not look types up (it is a bump and a
 * few stores); every slow-path allocation does: large objects, the first
 * allocation in each new allocation area, and every allocation under
 * --stress-gc, --gc-interval or --verify-heap, which take the slow path
 * each time.  An unregistered type is refused there with a fatal error
 * naming it; under the debug flags that is its first allocation.
 *
 * INV(types): h->types holds each registered descriptor once; h->ntypes
 * counts them; empty cells are NULL.
 */
#include "gc_internal.h"

static size_t cell_of(const gc_type_t *t, size_t mask) {
  /* Descriptors are GC_TYPE_ALIGN-aligned: drop the always-zero bits. */
  uint64_t x = ((uint64_t)(uintptr_t)t >> GC_TYPE_ALIGN_BITS) *
               0x9e3779b97f4a7c15ULL;
  return (size_t)(x >> 32) & mask;
}

bool gc__type_known(const gc_heap_t *h, const gc_type_t *t) {
  if (h->types_cap == 0)
    return false;
  size_t mask = h->types_cap - 1;
  for (size_t i = cell_of(t, mask); h->types[i] != NULL; i = (i + 1) & mask)
    if (h->types[i] == t)
      return true;
  return false;
}

static void insert(const gc_type_t **cells, size_t cap, const gc_type_t *t) {
  size_t mask = cap - 1, i = cell_of(t, mask);
  while (cells[i] != NULL)
    i = (i + 1) & mask;
  cells[i] = t;
}

int gc_type_register(gc_heap_t *h, const gc_type_t *t) {
  if (h == NULL || t == NULL || ((uintptr_t)t & X__FLAGS) != 0 ||
      t->name == NULL || (t->size == 0 && t->size_of == NULL))
    return -EINVAL;
  if (gc__type_known(h, t))
    return 0;
  if ((h->ntypes + 1) * 2 > h->types_cap) {
    size_t ncap = h->types_cap ? h->types_cap * 2 : 32;
    const gc_type_t **n = gc__calloc(h, ncap * sizeof *n);
    if (n == NULL)
      return -ENOMEM;
    for (size_t i = 0; i < h->types_cap; i++)
      if (h->types[i] != NULL)
        insert(n, ncap, h->types[i]);
    gc__free(h, (void *)h->types, h->types_cap * sizeof *n);
    h->types = n;
    h->types_cap = ncap;
  }
  insert(h->types, h->types_cap, t);
  h->ntypes++;
  if (t->finalize != NULL)
    h->finalizers = true;
  return 0;
}

void gc__type_check(gc_heap_t *h, const gc_type_t *t) {
  if (GC_LIKELY(t != NULL && gc__type_known(h, t)))
    return;
  if (t == NULL)
    gc__fatal(h, "gc_alloc: NULL type");
  /* The name is read only now that the descriptor is suspect. */
  gc__fatal(h,
            "gc_alloc: type '%s' (descriptor %p) was never registered: call "
            "gc_type_register(heap, &type) before its first allocation",
            t->name != NULL ? t->name : "(no name)", (const void *)t);
}

void gc__types_destroy(gc_heap_t *h) {
  gc__free(h, (void *)h->types, h->types_cap * sizeof h->types[0]);
  h->types = NULL;
  h->types_cap = h->ntypes = 0;
}
