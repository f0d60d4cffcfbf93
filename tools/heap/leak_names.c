/* leak_names.c -- naming a finding: its name, class, type and retainer
 * path in the last snapshot, as the program would name it (a property, a
 * variable or an index), never an internal slot or a handle. */
#include "heapsnap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"
#include "leak_internal.h"

static char *dup_or_empty(const char *p)
{
  return strdup(p ? p : "");
}

/* Whether e, from h, is a place the program names: a property, a
 * variable or an index of a real object. */
static int named_place(const hs_snapshot_t *s, uint32_t h, uint32_t e)
{
  uint8_t k = s->edge_kind[e];
  return (k == HS_EDGE_PROPERTY || k == HS_EDGE_CONTEXT ||
          k == HS_EDGE_ELEMENT) &&
         s->node_kind[h] != HS_NODE_SYNTHETIC;
}

/* When the shortest path reaches n straight from a root list (a handle
 * or stack slot that held it while the snapshot was written), the
 * nearest retainer through a named place instead: *holder and *edge, or
 * UINT32_MAX. */
static void named_retainer(const hs_snapshot_t *s, const hs_bfs_t *b,
                           uint32_t n, uint32_t *holder, uint32_t *edge)
{
  *holder = *edge = UINT32_MAX;
  uint32_t best = UINT32_MAX;
  for (uint32_t h = 1; h < s->node_count; h++) {
    if (b->dist[h] == UINT32_MAX || b->dist[h] >= best || h == n)
      continue;
    for (uint32_t e = s->first_edge[h]; e < s->first_edge[h + 1]; e++)
      if (s->edge_to[e] == n && named_place(s, h, e)) {
        best = b->dist[h];
        *holder = h;
        *edge = e;
        break;
      }
  }
}

int hs__leak_describe(hs_leak_t *l, const hs_snapshot_t *s, const hs_bfs_t *b,
                    uint32_t n, uint8_t kind)
{
  char buf[64], lbuf[32];
  char *path = NULL;
  int rc = hs_path_string(s, b, n, &path);
  if (rc < 0)
    return rc;
  const char *name = "";
  if (b->prev_edge[n] != UINT32_MAX)
    name = hs_edge_label(s, b->prev_edge[n], lbuf, sizeof lbuf);
  if (b->prev_edge[n] != UINT32_MAX &&
      !named_place(s, b->prev_node[n], b->prev_edge[n])) {
    uint32_t h, e;
    named_retainer(s, b, n, &h, &e);
    char *hp = NULL;
    if (h != UINT32_MAX && hs_path_string(s, b, h, &hp) == 0 && hp) {
      char cbuf[64];
      const char *vl = hs_edge_label(s, e, lbuf, sizeof lbuf);
      const char *nc = hs_node_class(s, n, cbuf, sizeof cbuf);
      size_t need = strlen(hp) + strlen(vl) + strlen(nc) + 16;
      char *np = malloc(need);
      if (np) {
        snprintf(np, need, "%s -> %s (%s)", hp, vl, nc);
        free(path);
        path = np;
        name = vl;
      }
    }
    free(hp);
  }
  l->ctor = dup_or_empty(hs_node_class(s, n, buf, sizeof buf));
  l->type = hs_node_kind_name((hs_node_kind_t)s->node_kind[n]);
  if (kind == HS_CONT_CHAIN) {
    uint32_t via;
    hs__chain_via(s, n, &via);
    if (via != UINT32_MAX) {
      char cbuf[64];
      const char *vl = hs_edge_label(s, via, lbuf, sizeof lbuf);
      const char *hc = hs_node_class(s, s->edge_to[via], cbuf, sizeof cbuf);
      size_t need = (path ? strlen(path) : 10) + strlen(vl) + strlen(hc) + 16;
      char *np = malloc(need);
      if (np) {
        snprintf(np, need, "%s -> %s (%s)", path ? path : "(GC roots)", vl,
                 hc);
        free(path);
        path = np;
      }
      /* A list held by a closure variable is named by the variable. */
      if (hs__is_context(s, n)) {
        name = vl;
        free(l->ctor);
        l->ctor = dup_or_empty(hc);
        l->type = hs_node_kind_name(
            (hs_node_kind_t)s->node_kind[s->edge_to[via]]);
      }
    }
  }
  l->name = dup_or_empty(name);
  l->path = path ? path : strdup("(unreachable)");
  if (!l->name || !l->ctor || !l->path)
    return -ENOMEM;
  return 0;
}

