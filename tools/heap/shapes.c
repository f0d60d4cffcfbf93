/* shapes.c -- the hidden-class index: each node's shape (V8's "map").
 *
 * V8 gives every heap object an internal "map" edge to its hidden class;
 * two objects with one shape were built alike.  Container inference uses
 * it to tell a queue {head, tail} from its nodes {job, next} (chains.c),
 * and the leak analysis to group like containers by their holders' shape
 * (leak_groups.c).  tenure's writer gives no shapes: every lookup then
 * answers UINT32_MAX and callers fall back to class names.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"

/* The hidden class of n: the target of its internal "map" edge (V8 gives
 * every heap object one), or UINT32_MAX (tenure's writer has none).  Two
 * plain objects are both "Object" by name; their shapes tell a queue
 * {head, tail} from its nodes {job, next}. */
static uint32_t scan_shape(const hs_snapshot_t *s, uint32_t n)
{
  for (uint32_t e = s->first_edge[n]; e < s->first_edge[n + 1]; e++)
    if (s->edge_kind[e] == HS_EDGE_INTERNAL &&
        !strcmp(hs_str(s, s->edge_name[e]), "map"))
      return s->edge_to[e];
  return UINT32_MAX;
}

uint32_t hs__shape_of(const hs_snapshot_t *s, uint32_t n)
{
  return s->shape ? s->shape[n] : scan_shape(s, n);
}

int hs__shapes(hs_snapshot_t *s)
{
  if (s->shape)
    return 0;
  uint32_t *v = malloc(sizeof *v * ((size_t)s->node_count + 1));
  if (!v)
    return -ENOMEM;
  for (uint32_t n = 0; n < s->node_count; n++)
    v[n] = scan_shape(s, n);
  s->shape = v;
  return 0;
}

