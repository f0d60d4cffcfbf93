/* summary.c -- per-class aggregation and top retainers.
 *
 * Owns the "summary" numbers: for each class (DevTools' className), the
 * object count, shallow size and retained size.  A class's retained size
 * is the sum of retained sizes of its objects that are not dominated by
 * another object of the same class (so nested objects are not counted
 * twice), which is what DevTools' Summary view shows.
 *
 * Classes are grouped by string index for objects and native nodes and by
 * type for the rest; a hash on the class string merges equal names that
 * V8 stored twice.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"

static int add_retained(const hs_snapshot_t *s, const int32_t *row_of,
                        hs__classes_t *c)
{
  uint32_t n = s->node_count;
  uint32_t *cfirst = calloc((size_t)n + 2, 4);
  uint32_t *kids = malloc((size_t)n * 4 + 4);
  uint32_t *onpath = calloc((size_t)c->count + 1, 4);
  size_t cap = 4096, top = 0;
  uint32_t *stack = malloc(cap * 2 * 4); /* (node, next child) pairs */
  if (!cfirst || !kids || !stack || !onpath)
    goto fail;
  for (uint32_t i = 1; i < n; i++)
    cfirst[s->idom[i] + 2]++;
  for (uint32_t i = 0; i < n; i++)
    cfirst[i + 2] += cfirst[i + 1];
  for (uint32_t i = 1; i < n; i++)
    kids[cfirst[s->idom[i] + 1]++] = i;
  /* Now the children of v are kids[cfirst[v] .. cfirst[v + 1]).  The
   * stack holds the current dominator-tree path only. */
  stack[0] = 0;
  stack[1] = cfirst[0];
  top = 1;
  onpath[row_of[0]]++;
  while (top) {
    uint32_t *fr = &stack[(top - 1) * 2];
    uint32_t v = fr[0];
    if (fr[1] == cfirst[v + 1]) {
      onpath[row_of[v]]--;
      top--;
      continue;
    }
    uint32_t w = kids[fr[1]++];
    int32_t r = row_of[w];
    if (onpath[r] == 0)
      c->rows[r].retained += s->retained[w];
    onpath[r]++;
    if (top == cap) {
      uint32_t *ns = realloc(stack, cap * 4 * 4);
      if (!ns)
        goto fail;
      stack = ns;
      cap *= 2;
    }
    stack[top * 2] = w;
    stack[top * 2 + 1] = cfirst[w];
    top++;
  }
  free(cfirst);
  free(kids);
  free(stack);
  free(onpath);
  return 0;
fail:
  free(cfirst);
  free(kids);
  free(stack);
  free(onpath);
  return -1;
}

static int cmp_rows(const void *a, const void *b)
{
  const hs_class_row_t *x = a, *y = b;
  if (x->retained != y->retained)
    return x->retained > y->retained ? -1 : 1;
  if (x->self != y->self)
    return x->self > y->self ? -1 : 1;
  return strcmp(x->name, y->name);
}

int hs_class_rows(const hs_snapshot_t *s, hs_class_row_t **out)
{
  uint32_t n = s->node_count;
  hs__classes_t c = {0};
  /* Per-node class row; also a per-string cache for object names. */
  int32_t *row_of = malloc((size_t)n * 4);
  int32_t *by_str = malloc(((size_t)s->string_count + 1) * 4);
  int32_t by_kind[HS_NODE_OTHER + 1];
  if (!row_of || !by_str || hs__classes_grow(&c) < 0)
    goto fail;
  for (uint32_t i = 0; i <= s->string_count; i++)
    by_str[i] = -1;
  for (int k = 0; k <= HS_NODE_OTHER; k++)
    by_kind[k] = -1;
  for (uint32_t i = 0; i < n; i++) {
    int r = hs__node_row(&c, s, i, by_str, by_kind);
    if (r < 0)
      goto fail;
    row_of[i] = r;
    c.rows[r].count++;
    c.rows[r].self += s->node_self[i];
  }
  hs_timing("classes: rows");
  /* Retained: add a node's retained size unless an ancestor in the
   * dominator tree has the same class.  One DFS over the dominator tree
   * (children in CSR) with a per-class count of classes on the path. */
  if (s->retained && add_retained(s, row_of, &c) < 0)
    goto fail;
  hs_timing("classes: retained");
  free(row_of);
  free(by_str);
  free(c.tab);
  qsort(c.rows, (size_t)c.count, sizeof *c.rows, cmp_rows);
  *out = c.rows;
  return c.count;
fail:
  free(row_of);
  free(by_str);
  free(c.tab);
  hs_class_rows_free(c.rows, c.count);
  return -ENOMEM;
}

void hs_class_rows_free(hs_class_row_t *rows, int count)
{
  for (int i = 0; i < count; i++)
    free(rows[i].name);
  free(rows);
}

int hs_top_retained(const hs_snapshot_t *s, uint32_t *out, int k)
{
  int cnt = 0;
  if (!s->retained || k <= 0)
    return 0;
  for (uint32_t i = 1; i < s->node_count; i++) {
    uint8_t kind = s->node_kind[i];
    if (kind == HS_NODE_SYNTHETIC || kind == HS_NODE_HIDDEN ||
        kind == HS_NODE_CODE || kind == HS_NODE_SHAPE)
      continue;
    uint64_t r = s->retained[i];
    if (cnt == k && r <= s->retained[out[cnt - 1]])
      continue;
    int pos = cnt < k ? cnt : k - 1;
    while (pos > 0 && s->retained[out[pos - 1]] < r) {
      out[pos] = out[pos - 1];
      pos--;
    }
    out[pos] = i;
    if (cnt < k)
      cnt++;
  }
  return cnt;
}
