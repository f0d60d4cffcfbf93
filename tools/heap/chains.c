/* chains.c -- linked-list inference.
 *
 * A linked list is a holder object with an edge to a head node H, where H
 * has a property edge (e.g. "next") to another node of H's class (of H's
 * shape when both have one: shapes.c); the entry count is the length of
 * the chain along that edge name, cycles counted once.  The container is
 * the holder (a queue object, or the closure context that holds the
 * variable), because the head changes as the queue drains.  A node of
 * the list's own kind is part of the structure, never its holder.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"

/* Whether a and b are of one kind of object: same class name, and the
 * same shape when both have one. */
static int same_shape(const hs_snapshot_t *s, uint32_t a, uint32_t b)
{
  if (s->node_kind[a] != s->node_kind[b] || s->node_name[a] != s->node_name[b])
    return 0;
  uint32_t sa = hs__shape_of(s, a), sb = hs__shape_of(s, b);
  return sa == UINT32_MAX || sb == UINT32_MAX || sa == sb;
}

/* The edge along which h links to a node of its own class, or
 * UINT32_MAX.  A node of the same shape is preferred: a list node
 * {job, next} of plain objects also points at its job, another
 * "Object". */
static uint32_t link_edge(const hs_snapshot_t *s, uint32_t h)
{
  uint32_t named = UINT32_MAX;
  for (uint32_t e = s->first_edge[h]; e < s->first_edge[h + 1]; e++) {
    uint32_t t = s->edge_to[e];
    if (s->edge_kind[e] == HS_EDGE_PROPERTY && t != h &&
        s->node_kind[t] == s->node_kind[h] &&
        s->node_name[t] == s->node_name[h] &&
        strcmp(hs_str(s, s->edge_name[e]), "__proto__")) {
      if (same_shape(s, h, t))
        return e;
      if (named == UINT32_MAX)
        named = e;
    }
  }
  return named;
}

/* The next link after v along edge name `name`, or UINT32_MAX at the end
 * of the chain (no such edge, or a node of another class). */
static uint32_t next_link(const hs_snapshot_t *s, uint32_t v, uint32_t name,
                          uint32_t h)
{
  for (uint32_t e = s->first_edge[v]; e < s->first_edge[v + 1]; e++) {
    if (s->edge_kind[e] == HS_EDGE_PROPERTY && s->edge_name[e] == name) {
      uint32_t t = s->edge_to[e];
      if (s->node_name[t] != s->node_name[h] ||
          s->node_kind[t] != s->node_kind[h])
        return UINT32_MAX;
      return t;
    }
  }
  return UINT32_MAX;
}

/* Number of distinct nodes on the chain from h along edges named like
 * `via`, through nodes of h's class.  Cycles (a circular list, or a node
 * linking to itself) are measured with Brent's algorithm, so every node
 * counts once and the walk ends; at most limit steps. */
static uint32_t chain_length(const hs_snapshot_t *s, uint32_t h,
                             uint32_t via, uint32_t limit)
{
  uint32_t name = s->edge_name[via];
  uint32_t power = 1, lam = 1, steps = 1;
  uint32_t tortoise = h, hare = next_link(s, h, name, h);
  while (hare != UINT32_MAX && hare != tortoise) {
    if (steps >= limit)
      return limit;
    if (power == lam) {
      tortoise = hare;
      power *= 2;
      lam = 0;
    }
    hare = next_link(s, hare, name, h);
    lam++;
    steps++;
  }
  if (hare == UINT32_MAX)
    return steps; /* a plain list: steps nodes */
  /* A cycle of length lam: find where it starts (mu) to count distinct
   * nodes mu + lam. */
  uint32_t mu = 0;
  tortoise = hare = h;
  for (uint32_t i = 0; i < lam; i++)
    hare = next_link(s, hare, name, h);
  while (tortoise != hare && mu < limit) {
    tortoise = next_link(s, tortoise, name, h);
    hare = next_link(s, hare, name, h);
    mu++;
  }
  return mu + lam;
}

uint32_t hs__holder_chain(const hs_snapshot_t *s, uint32_t n,
                          uint32_t *via_out, uint64_t *budget)
{
  uint32_t limit = s->node_count;
  if (budget && *budget < limit)
    limit = (uint32_t)*budget;
  uint32_t best = 0, best_edge = UINT32_MAX;
  for (uint32_t e = s->first_edge[n]; e < s->first_edge[n + 1]; e++) {
    uint8_t k = s->edge_kind[e];
    if (k != HS_EDGE_PROPERTY && k != HS_EDGE_CONTEXT)
      continue;
    uint32_t h = s->edge_to[e];
    if (!hs__is_candidate(s, h))
      continue;
    uint32_t via = link_edge(s, h);
    if (via == UINT32_MAX)
      continue;
    /* A node of the list's own kind (a link, a tree node) is part of
     * the structure, not its holder. */
    if (same_shape(s, n, h))
      continue;
    uint32_t len = chain_length(s, h, via, limit);
    if (budget)
      *budget = *budget > len ? *budget - len : 0;
    if (len > best) {
      best = len;
      best_edge = e;
    }
  }
  if (via_out)
    *via_out = best_edge;
  return best;
}

uint32_t hs__chain_via(const hs_snapshot_t *s, uint32_t n, uint32_t *via)
{
  return hs__holder_chain(s, n, via, NULL);
}

uint32_t hs__chain_members(const hs_snapshot_t *s, uint32_t n,
                           void (*fn)(void *ctx, uint32_t node), void *ctx)
{
  uint32_t via, count = 0;
  uint32_t len = hs__holder_chain(s, n, &via, NULL);
  if (via == UINT32_MAX)
    return 0;
  /* chain_length counted the distinct nodes, so walking that many steps
   * from the head visits each once, cycles included. */
  uint32_t h = s->edge_to[via], v = h;
  uint32_t name = s->edge_name[link_edge(s, h)];
  for (; v != UINT32_MAX && count < len; count++) {
    fn(ctx, v);
    v = next_link(s, v, name, h);
  }
  return count;
}
