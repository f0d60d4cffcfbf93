/* large.c -- the large-object space.
 *
 * Objects whose payload is over GC_MAX_REGULAR_SIZE bytes get a mapping of
 * their own, with a gc__large_t record in front of the header word.  They
 * never move, are old from birth (stores into them go through the
 * barrier), are marked through their header like old objects, and are
 * swept eagerly right after each mark (sweeper.c): dead ones are finalized
 * and unmapped at once, so their memory goes back to the system.
 *
 * INV(large): h->large_bytes is the sum of map_size over h->large and
 * counts toward the heap limit.
 */
#include <string.h>

#include "gc_internal.h"

void *gc__large_alloc(gc_heap_t *h, const gc_type_t *t, size_t size) {
  size_t map = (sizeof(gc__large_t) + size + 4095) & ~(size_t)4095;
  if (map < size) /* overflow */
    return NULL;
  if (gc__old_committed(h) + map > h->limit)
    return NULL;
  gc__large_t *l = gc__map(map, 4096);
  if (l == NULL)
    return NULL;
  l->map_size = map;
  l->payload = size;
  l->header = (uintptr_t)t;
  l->prev = NULL;
  l->next = h->large;
  if (h->large != NULL)
    h->large->prev = l;
  h->large = l;
  h->large_bytes += map;
  h->old_since_full += map;
  h->large_objects++;
  return &l->header + 1; /* mappings start zeroed */
}

void gc__large_free(gc_heap_t *h, gc__large_t *l) {
  if (l->prev != NULL)
    l->prev->next = l->next;
  else
    h->large = l->next;
  if (l->next != NULL)
    l->next->prev = l->prev;
  h->large_bytes -= l->map_size;
  h->large_objects--;
  gc__unmap(l, l->map_size);
}

void gc__large_walk(gc_heap_t *h, gc_object_fn fn, void *data) {
  for (gc__large_t *l = h->large; l != NULL; l = l->next)
    fn(&l->header + 1, gc__type_of_hdr(l->header), l->payload, data);
}

void gc__large_destroy(gc_heap_t *h) {
  while (h->large != NULL)
    gc__large_free(h, h->large);
}
