/* paths.c -- shortest retainer paths from the GC roots.
 *
 * Owns the BFS over essential edges (no weak edges; shortcut edges only
 * from the root, as for dominators) and the printing of a path the way the
 * program names things: "(GC roots) -> global -> cache (Map) -> table".
 * The first hop from the synthetic root is shown by the target's name
 * (the "(GC roots)" node itself is folded into the prefix); every later hop
 * by its edge label, followed by the class in parentheses for objects,
 * closures and native nodes.
 *
 * INV(bfs): dist[root] == 0 and for every reached n != root,
 * dist[n] == dist[prev_node[n]] + 1 and prev_edge[n] is an essential edge
 * from prev_node[n] to n.  The stack and handle-scope root lists are
 * expanded after everything else is reached, so paths are shortest among
 * those through long-lived roots, and go through the stack only when they
 * must.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int hs_bfs(const hs_snapshot_t *s, hs_bfs_t *b)
{
  uint32_t n = s->node_count;
  memset(b, 0, sizeof *b);
  b->prev_edge = malloc((size_t)n * 4);
  b->prev_node = malloc((size_t)n * 4);
  b->dist = malloc((size_t)n * 4);
  uint32_t *queue = malloc((size_t)n * 4);
  if (!b->prev_edge || !b->prev_node || !b->dist || !queue) {
    free(queue);
    hs_bfs_free(b);
    return -ENOMEM;
  }
  for (uint32_t i = 0; i < n; i++) {
    b->prev_edge[i] = UINT32_MAX;
    b->prev_node[i] = UINT32_MAX;
    b->dist[i] = UINT32_MAX;
  }
  /* Root lists that only exist for the moment of the snapshot (the
   * stack, open handle scopes) are entered last, so a path goes through
   * them only when nothing longer-lived holds the object. */
  uint32_t deferred[8], ndef = 0;
  uint32_t head = 0, tail = 0;
  queue[tail++] = 0;
  b->dist[0] = 0;
  for (;;) {
    while (head < tail) {
      uint32_t v = queue[head++];
      for (uint32_t e = s->first_edge[v]; e < s->first_edge[v + 1]; e++) {
        uint32_t w = s->edge_to[e];
        if (b->dist[w] != UINT32_MAX || !hs_edge_essential(s, v, e))
          continue;
        b->dist[w] = b->dist[v] + 1;
        b->prev_edge[w] = e;
        b->prev_node[w] = v;
        if (ndef < 8 && s->node_kind[w] == HS_NODE_SYNTHETIC &&
            (!strcmp(hs_node_name(s, w), "(Stack roots)") ||
             !strcmp(hs_node_name(s, w), "(Handle scope)")))
          deferred[ndef++] = w;
        else
          queue[tail++] = w;
      }
    }
    if (ndef == 0)
      break;
    for (uint32_t i = 0; i < ndef; i++)
      queue[tail++] = deferred[i];
    ndef = 0;
  }
  free(queue);
  return 0;
}

void hs_bfs_free(hs_bfs_t *b)
{
  free(b->prev_edge);
  free(b->prev_node);
  free(b->dist);
  memset(b, 0, sizeof *b);
}

typedef struct {
  char *p;
  size_t len, cap;
  int err;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *str)
{
  size_t k = strlen(str);
  if (b->err)
    return;
  if (b->len + k + 1 > b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 128;
    while (nc < b->len + k + 1)
      nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->err = -ENOMEM;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->len, str, k + 1);
  b->len += k;
}

/* Appends one hop (edge e from `from` to `to`). */
static void add_hop(sbuf_t *sb, const hs_snapshot_t *s, uint32_t from,
                    uint32_t e, uint32_t to)
{
  char lbuf[32], cbuf[64];
  if (from == 0) {
    const char *nm = hs_node_name(s, to);
    if (!strcmp(nm, "(GC roots)"))
      return;
    sb_add(sb, " -> ");
    sb_add(sb, *nm ? nm : hs_node_class(s, to, cbuf, sizeof cbuf));
    return;
  }
  sb_add(sb, " -> ");
  if (s->node_kind[from] == HS_NODE_SYNTHETIC &&
      s->node_kind[to] == HS_NODE_SYNTHETIC) {
    sb_add(sb, hs_node_name(s, to));
    return;
  }
  sb_add(sb, hs_edge_label(s, e, lbuf, sizeof lbuf));
  uint8_t k = s->node_kind[to];
  if (k == HS_NODE_OBJECT || k == HS_NODE_NATIVE || k == HS_NODE_CLOSURE) {
    const char *cls = hs_node_class(s, to, cbuf, sizeof cbuf);
    if (k == HS_NODE_CLOSURE)
      cls = "closure";
    if (*cls) {
      sb_add(sb, " (");
      sb_add(sb, cls);
      sb_add(sb, ")");
    }
  }
}

/* Path to n along BFS parents, plus an optional final hop. */
static int build(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t n,
                 uint32_t last_from, uint32_t last_edge, char **out)
{
  *out = NULL;
  if (b->dist[n] == UINT32_MAX)
    return 0;
  uint32_t d = b->dist[n];
  uint32_t *chain = malloc(((size_t)d + 1) * 4);
  if (!chain)
    return -ENOMEM;
  uint32_t k = 0;
  for (uint32_t v = n; v != 0 && v != UINT32_MAX; v = b->prev_node[v])
    chain[k++] = v;
  sbuf_t sb = {0};
  sb_add(&sb, "(GC roots)");
  for (uint32_t i = k; i-- > 0;) {
    uint32_t v = chain[i];
    add_hop(&sb, s, b->prev_node[v], b->prev_edge[v], v);
  }
  if (last_edge != UINT32_MAX)
    add_hop(&sb, s, last_from, last_edge, s->edge_to[last_edge]);
  free(chain);
  if (sb.err) {
    free(sb.p);
    return sb.err;
  }
  *out = sb.p;
  return 0;
}

int hs_path_string(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t n,
                   char **out)
{
  return build(s, b, n, 0, UINT32_MAX, out);
}

int hs_paths_to(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t n,
                char **paths, int max)
{
  if (max <= 0)
    return 0;
  if (n == 0 || b->dist[n] == UINT32_MAX) {
    if (n == 0) {
      paths[0] = strdup("(GC roots)");
      return paths[0] ? 1 : -ENOMEM;
    }
    return 0;
  }
  /* Retainers of n: scan once, keep the max shallowest by dist. */
  uint32_t *from = malloc((size_t)max * 4), *edge = malloc((size_t)max * 4);
  if (!from || !edge) {
    free(from);
    free(edge);
    return -ENOMEM;
  }
  int cnt = 0;
  for (uint32_t v = 0; v < s->node_count; v++) {
    if (b->dist[v] == UINT32_MAX)
      continue;
    for (uint32_t e = s->first_edge[v]; e < s->first_edge[v + 1]; e++) {
      if (s->edge_to[e] != n || !hs_edge_essential(s, v, e))
        continue;
      /* Insert sorted by dist, BFS edge first on ties. */
      int pos = cnt;
      while (pos > 0 && (b->dist[from[pos - 1]] > b->dist[v] ||
                         (b->dist[from[pos - 1]] == b->dist[v] &&
                          e == b->prev_edge[n])))
        pos--;
      if (pos >= max)
        continue;
      int last = cnt < max ? cnt : max - 1;
      for (int i = last; i > pos; i--) {
        from[i] = from[i - 1];
        edge[i] = edge[i - 1];
      }
      from[pos] = v;
      edge[pos] = e;
      if (cnt < max)
        cnt++;
    }
  }
  int rc = 0;
  for (int i = 0; i < cnt; i++) {
    rc = build(s, b, from[i], from[i], edge[i], &paths[i]);
    if (rc < 0) {
      for (int j = 0; j < i; j++)
        free(paths[j]);
      cnt = rc;
      break;
    }
    if (!paths[i]) {
      paths[i] = strdup("(GC roots)");
    }
  }
  free(from);
  free(edge);
  return cnt;
}
