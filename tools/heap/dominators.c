/* dominators.c -- dominator tree and retained sizes.
 *
 * Owns s->idom and s->retained.  The algorithm is Cooper, Harvey and
 * Kennedy's "A Simple, Fast Dominance Algorithm" (the one DevTools uses):
 * number the nodes reachable from the root in DFS postorder, then iterate
 * idom(b) = intersect over processed predecessors in reverse postorder
 * until nothing changes.  Everything is a flat uint32 array indexed by
 * postorder number; predecessors are a CSR built once.
 *
 * Edges follow DevTools' isEssentialEdge: weak edges never count, shortcut
 * edges count only from the root (V8 uses them to mark the user global
 * objects under the root).
 *
 * INV(postorder): a node's immediate dominator has a larger postorder
 * number than the node (it is a DFS-tree ancestor), so one pass in
 * increasing postorder sums retained sizes bottom-up.
 *
 * Peak extra memory is 4 * node_count + reachable_edges uint32 words, then
 * 8 bytes per node for retained sizes after the temporaries are freed.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define UNSEEN UINT32_MAX
#define ONSTACK (UINT32_MAX - 1)

/* DFS from the root; fills post[0..count) and poi[node]. The DFS stack
 * lives at the top of post[]: a node is either finished (in the bottom
 * part) or on the stack, never both, so the two never meet.  cursor[]
 * holds each stacked node's next edge. */
static uint32_t postorder(const hs_snapshot_t *s, uint32_t *post,
                          uint32_t *poi, uint32_t *cursor)
{
  uint32_t n = s->node_count;
  uint32_t done = 0, top = n; /* stack is post[top..n) */
  for (uint32_t i = 0; i < n; i++)
    poi[i] = UNSEEN;
  post[--top] = 0;
  poi[0] = ONSTACK;
  cursor[0] = s->first_edge[0];
  while (top < n) {
    uint32_t v = post[top];
    uint32_t e = cursor[v], end = s->first_edge[v + 1];
    for (; e < end; e++) {
      uint32_t w = s->edge_to[e];
      if (poi[w] == UNSEEN && hs_edge_essential(s, v, e))
        break;
    }
    if (e < end) {
      uint32_t w = s->edge_to[e];
      cursor[v] = e + 1;
      poi[w] = ONSTACK;
      cursor[w] = s->first_edge[w];
      post[--top] = w;
    } else {
      top++;
      poi[v] = done;
      post[done++] = v;
    }
  }
  return done;
}

int hs_dominators(hs_snapshot_t *s)
{
  uint32_t n = s->node_count;
  free(s->idom);
  free(s->retained);
  s->idom = NULL;
  s->retained = NULL;
  uint32_t *post = malloc((size_t)n * 4);
  uint32_t *poi = malloc((size_t)n * 4);
  uint32_t *idom = malloc((size_t)n * 4);
  uint32_t *pfirst = NULL, *preds = NULL;
  if (!post || !poi || !idom)
    goto fail;
  uint32_t count = postorder(s, post, poi, idom);
  uint32_t root = count - 1; /* the root finishes last */

  /* Predecessors in postorder numbering, essential edges only. */
  pfirst = calloc((size_t)count + 1, 4);
  if (!pfirst)
    goto fail;
  size_t m = 0;
  for (uint32_t p = 0; p < count; p++) {
    uint32_t v = post[p];
    for (uint32_t e = s->first_edge[v]; e < s->first_edge[v + 1]; e++) {
      uint32_t w = s->edge_to[e];
      if (poi[w] < count && hs_edge_essential(s, v, e)) {
        pfirst[poi[w] + 1]++;
        m++;
      }
    }
  }
  for (uint32_t p = 0; p < count; p++)
    pfirst[p + 1] += pfirst[p];
  preds = malloc(m * 4 + 4);
  if (!preds)
    goto fail;
  /* Fill with a moving cursor per target: reuse idom[] as the cursor. */
  for (uint32_t p = 0; p < count; p++)
    idom[p] = pfirst[p];
  for (uint32_t p = 0; p < count; p++) {
    uint32_t v = post[p];
    for (uint32_t e = s->first_edge[v]; e < s->first_edge[v + 1]; e++) {
      uint32_t w = s->edge_to[e];
      if (poi[w] < count && hs_edge_essential(s, v, e))
        preds[idom[poi[w]]++] = p;
    }
  }

  /* poi is no longer needed: reuse it as dom[] in postorder numbers. */
  uint32_t *dom = poi;
  for (uint32_t p = 0; p < count; p++)
    dom[p] = UNSEEN;
  dom[root] = root;
  int changed = 1;
  while (changed) {
    changed = 0;
    for (uint32_t b = root; b-- > 0;) {
      uint32_t nd = UNSEEN;
      for (uint32_t i = pfirst[b]; i < pfirst[b + 1]; i++) {
        uint32_t p = preds[i];
        if (dom[p] == UNSEEN)
          continue;
        if (nd == UNSEEN) {
          nd = p;
          continue;
        }
        uint32_t f1 = p, f2 = nd;
        while (f1 != f2) {
          while (f1 < f2)
            f1 = dom[f1];
          while (f2 < f1)
            f2 = dom[f2];
        }
        nd = f1;
      }
      if (nd != UNSEEN && dom[b] != nd) {
        dom[b] = nd;
        changed = 1;
      }
    }
  }
  free(preds);
  free(pfirst);
  preds = pfirst = NULL;

  /* Back to node ordinals.  Unreachable nodes hang off the root. */
  for (uint32_t i = 0; i < n; i++)
    idom[i] = 0;
  for (uint32_t p = 0; p < count; p++)
    idom[post[p]] = post[dom[p]];
  uint64_t *ret = malloc((size_t)n * 8 + 8);
  if (!ret)
    goto fail;
  for (uint32_t i = 0; i < n; i++)
    ret[i] = s->node_self[i];
  for (uint32_t p = 0; p < root; p++)
    ret[post[dom[p]]] += ret[post[p]];
  free(post);
  free(poi);
  s->idom = idom;
  s->retained = ret;
  s->reachable = count;
  return 0;

fail:
  free(post);
  free(poi);
  free(idom);
  free(pfirst);
  free(preds);
  return -ENOMEM;
}
