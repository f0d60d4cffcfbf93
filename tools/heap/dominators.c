/* dominators.c -- dominator tree and retained sizes.
 *
 * Owns s->idom and s->retained.  The algorithm is Semi-NCA (Georgiadis;
 * the one LLVM uses): number the nodes reachable from the root in DFS
 * preorder, compute each node's semidominator in one pass in decreasing
 * preorder (Lengauer and Tarjan's eval with path compression over the
 * DFS tree), then each immediate dominator in one pass in increasing
 * preorder as the nearest ancestor, in the dominator tree built so far,
 * of the node's DFS parent that is not below its semidominator.  Two
 * passes over the predecessors' graph in all, where Cooper, Harvey and
 * Kennedy's iteration (DevTools', and ours before) took five on a
 * service's heap.  Everything is a flat uint32 array indexed by preorder
 * number; predecessors are a CSR built once.
 *
 * Edges follow DevTools' isEssentialEdge: weak edges never count, shortcut
 * edges count only from the root (V8 uses them to mark the user global
 * objects under the root).
 *
 * INV(preorder): a node's DFS parent, semidominator and immediate
 * dominator all have smaller preorder numbers than the node (they are
 * DFS-tree ancestors), so one pass in decreasing preorder sums retained
 * sizes bottom-up.
 * INV(linked): while node w is processed, the nodes linked into the
 * eval forest are exactly those numbered above w, and anc[] (the DFS
 * parents, compressed) is only followed through them.
 *
 * Peak extra memory is 6 * node_count + reachable_edges uint32 words,
 * then 8 bytes per node for retained sizes after the temporaries are
 * freed.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define UNSEEN UINT32_MAX

/* The edge scans below read pre[] at random targets but the edges in
 * order: fetch the target's entry PREFETCH_AHEAD edges early. */
#define PREFETCH_AHEAD 24
#define PREFETCH_TARGET(s, arr, e, last)                                     \
  __builtin_prefetch(                                                        \
    &(arr)[(s)->edge_to[(e) + PREFETCH_AHEAD < (last) ? (e) + PREFETCH_AHEAD \
                                                      : (last)]])

/* DFS from the root over essential edges: pre[node] (UNSEEN when not
 * reached), vert[preorder] = node, parent[preorder] = the DFS parent's
 * preorder (the root's is itself), and indeg[node] += the node's
 * essential in-edges from reached nodes: the cursor scans every edge of
 * a reached node exactly once, so the predecessors need no counting pass
 * of their own.  stack and cursor are scratch of n words.  Returns the
 * number of reached nodes. */
static uint32_t preorder(const hs_snapshot_t *s, uint32_t *pre, uint32_t *vert,
                         uint32_t *parent, uint32_t *stack, uint32_t *cursor,
                         uint32_t *indeg)
{
  uint32_t n = s->node_count;
  for (uint32_t i = 0; i < n; i++)
    pre[i] = UNSEEN;
  uint32_t count = 1, top = 1;
  pre[0] = 0;
  vert[0] = 0;
  parent[0] = 0;
  cursor[0] = s->first_edge[0];
  stack[0] = 0;
  while (top) {
    uint32_t x = stack[top - 1], v = vert[x];
    uint32_t e = cursor[x], end = s->first_edge[v + 1];
    for (; e < end; e++) {
      if (!hs_edge_essential(s, v, e))
        continue;
      uint32_t w = s->edge_to[e];
      indeg[w]++;
      if (pre[w] == UNSEEN)
        break;
    }
    if (e == end) {
      top--;
      continue;
    }
    cursor[x] = e + 1;
    uint32_t w = s->edge_to[e], y = count++;
    pre[w] = y;
    vert[y] = w;
    parent[y] = x;
    cursor[y] = s->first_edge[w];
    stack[top++] = y;
  }
  return count;
}

/* Lengauer and Tarjan's eval(v) for v linked (v > w, INV(linked)): the
 * node of least semidominator on the forest path from v up to, not
 * including, its forest root, compressing the path on the way.  stk is
 * a growable scratch stack.  Returns UNSEEN on out of memory. */
static uint32_t eval(uint32_t v, uint32_t w, uint32_t *anc, uint32_t *label,
                     const uint32_t *semi, uint32_t **stk, size_t *cap)
{
  size_t top = 0;
  uint32_t x = v;
  while (anc[x] > w) {
    if (top == *cap) {
      uint32_t *ns = realloc(*stk, *cap * 2 * sizeof *ns);
      if (!ns)
        return UNSEEN;
      *stk = ns;
      *cap *= 2;
    }
    (*stk)[top++] = x;
    x = anc[x];
  }
  /* Back down: each node takes the better label of its ancestor, whose
   * own path is compressed already, and skips over it. */
  while (top) {
    uint32_t y = (*stk)[--top], a = anc[y];
    if (semi[label[a]] < semi[label[y]])
      label[y] = label[a];
    anc[y] = anc[a];
  }
  return label[v];
}

int hs_dominators(hs_snapshot_t *s)
{
  uint32_t n = s->node_count;
  free(s->idom);
  free(s->retained);
  s->idom = NULL;
  s->retained = NULL;
  uint32_t *pre = malloc((size_t)n * 4);    /* then semi[] */
  uint32_t *vert = malloc((size_t)n * 4);
  uint32_t *anc = malloc((size_t)n * 4);    /* DFS stack, then anc[] */
  uint32_t *idm = malloc((size_t)n * 4);    /* parents, then idoms */
  uint32_t *label = malloc((size_t)n * 4);  /* DFS cursor, then label[] */
  uint32_t *pfirst = NULL, *preds = NULL, *stk = NULL;
  uint64_t *ret = NULL;
  size_t stkcap = 4096;
  pfirst = calloc((size_t)n + 1, 4);       /* in-degrees, by node */
  if (!pre || !vert || !anc || !idm || !label || !pfirst)
    goto fail;
  uint32_t count = preorder(s, pre, vert, idm, anc, label, pfirst);
  hs_timing("dominators: preorder");

  /* Predecessors in preorder numbering, essential edges only (only edges
   * between reached nodes: a reached node's essential successors are all
   * reached).  pfirst becomes the CSR offsets in preorder, in place, from
   * a copy of the in-degrees in label[].  The sources are scanned in
   * ordinal order (the edges are stored in it, so the scan is
   * sequential). */
  for (uint32_t p = 0; p < count; p++)
    label[p] = pfirst[vert[p]];
  pfirst[0] = 0;
  for (uint32_t p = 0; p < count; p++)
    pfirst[p + 1] = pfirst[p] + label[p];
  size_t m = pfirst[count];
  const uint32_t last = s->edge_count ? s->edge_count - 1 : 0;
  preds = malloc(m * 4 + 4);
  if (!preds)
    goto fail;
  /* Fill with a moving cursor per target: reuse label[] as the cursor. */
  for (uint32_t p = 0; p < count; p++)
    label[p] = pfirst[p];
  for (uint32_t v = 0; v < n; v++) {
    uint32_t p = pre[v];
    if (p == UNSEEN)
      continue;
    for (uint32_t e = s->first_edge[v]; e < s->first_edge[v + 1]; e++) {
      PREFETCH_TARGET(s, pre, e, last);
      if (hs_edge_essential(s, v, e))
        preds[label[pre[s->edge_to[e]]]++] = p;
    }
  }
  hs_timing("dominators: predecessors");

  /* Semidominators, in decreasing preorder.  A predecessor p <= w is not
   * linked yet and counts as itself (semi[p] == p); a linked one through
   * eval.  Then w is linked: anc[w] = its parent. */
  uint32_t *semi = pre;
  stk = malloc(stkcap * sizeof *stk);
  if (!stk)
    goto fail;
  for (uint32_t p = 0; p < count; p++) {
    semi[p] = p;
    label[p] = p;
    anc[p] = idm[p];
  }
  for (uint32_t w = count; w-- > 1;) {
    uint32_t sw = w;
    for (uint32_t i = pfirst[w]; i < pfirst[w + 1]; i++) {
      uint32_t p = preds[i];
      uint32_t u = p;
      if (p > w && (u = eval(p, w, anc, label, semi, &stk, &stkcap)) ==
                       UNSEEN)
        goto fail;
      if (semi[u] < sw)
        sw = semi[u];
    }
    semi[w] = sw;
  }
  free(stk);
  free(preds);
  free(pfirst);
  free(anc);
  stk = preds = pfirst = anc = NULL;

  /* Immediate dominators, in increasing preorder: idm[w] starts as w's
   * parent and climbs the dominator tree (final below w, INV(preorder))
   * while it is below w's semidominator. */
  for (uint32_t w = 1; w < count; w++) {
    uint32_t t = idm[w];
    while (t > semi[w])
      t = idm[t];
    idm[w] = t;
  }
  hs_timing("dominators: semi-NCA");

  /* Back to node ordinals in label[].  Unreachable nodes hang off the
   * root. */
  uint32_t *idom = label;
  label = NULL;
  for (uint32_t i = 0; i < n; i++)
    idom[i] = 0;
  for (uint32_t p = 0; p < count; p++)
    idom[vert[p]] = vert[idm[p]];
  ret = malloc((size_t)n * 8 + 8);
  if (!ret) {
    free(idom);
    goto fail;
  }
  for (uint32_t i = 0; i < n; i++)
    ret[i] = s->node_self[i];
  for (uint32_t p = count; p-- > 1;)
    ret[vert[idm[p]]] += ret[vert[p]];
  free(pre);
  free(vert);
  free(idm);
  s->idom = idom;
  s->retained = ret;
  s->reachable = count;
  hs_timing("retained sizes");
  return 0;

fail:
  free(pre);
  free(vert);
  free(anc);
  free(idm);
  free(label);
  free(pfirst);
  free(preds);
  free(stk);
  return -ENOMEM;
}
