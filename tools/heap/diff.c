/* diff.c -- DevTools' comparison view between two snapshots.
 *
 * Owns "objects allocated after A and still alive in B": a node of B whose
 * id does not occur in A is new; a node of A whose id does not occur in B
 * was freed.  Rows group by class name (the same names as summary), so a
 * class that exists in only one snapshot still gets one row.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"

static int cmp_diff(const void *a, const void *b)
{
  const hs_diff_row_t *x = a, *y = b;
  if (x->added_self != y->added_self)
    return x->added_self > y->added_self ? -1 : 1;
  if (x->added_count != y->added_count)
    return x->added_count > y->added_count ? -1 : 1;
  if (x->removed_self != y->removed_self)
    return x->removed_self > y->removed_self ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Adds one side: nodes of s whose id is absent from o.  Added nodes count
 * into the class rows; removed ones into cnt[0] ([row*2] count, [row*2+1]
 * bytes), grown to *cap rows. */
static int side(hs__classes_t *c, hs_snapshot_t *s, const hs_snapshot_t *o,
                int added, uint64_t **cnt, int *cap)
{
  int32_t *by_str = malloc(((size_t)s->string_count + 1) * 4);
  int32_t by_kind[HS_NODE_OTHER + 1];
  if (!by_str)
    return -ENOMEM;
  for (uint32_t i = 0; i <= s->string_count; i++)
    by_str[i] = -1;
  for (int k = 0; k <= HS_NODE_OTHER; k++)
    by_kind[k] = -1;
  /* Walk both id-sorted indexes together. */
  uint32_t j = 0;
  for (uint32_t i = 0; i < s->node_count; i++) {
    uint32_t n = s->by_id[i], id = s->node_id[n];
    while (j < o->node_count && o->node_id[o->by_id[j]] < id)
      j++;
    if (j < o->node_count && o->node_id[o->by_id[j]] == id)
      continue;
    if (s->node_kind[n] == HS_NODE_SYNTHETIC)
      continue;
    int r = hs__node_row(c, s, n, by_str, by_kind);
    if (r < 0) {
      free(by_str);
      return -ENOMEM;
    }
    if (r >= *cap) {
      int nc = *cap ? *cap * 2 : 256;
      while (nc <= r)
        nc *= 2;
      uint64_t *a = realloc(cnt[0], sizeof(uint64_t) * (size_t)nc * 2);
      if (!a) {
        free(by_str);
        return -ENOMEM;
      }
      memset(a + (size_t)*cap * 2, 0,
             sizeof(uint64_t) * (size_t)(nc - *cap) * 2);
      cnt[0] = a;
      *cap = nc;
    }
    if (added) {
      c->rows[r].count++;
      c->rows[r].self += s->node_self[n];
    } else {
      cnt[0][(size_t)r * 2] += 1;
      cnt[0][(size_t)r * 2 + 1] += s->node_self[n];
    }
  }
  free(by_str);
  return 0;
}

int hs_diff(hs_snapshot_t *a, hs_snapshot_t *b, hs_diff_row_t **out)
{
  hs__classes_t c = {0};
  uint64_t *removed = NULL; /* [row*2] count, [row*2+1] bytes */
  int cap = 0;
  int rc = -ENOMEM;
  if (hs_id_index(a) < 0 || hs_id_index(b) < 0 || hs__classes_grow(&c) < 0)
    goto done;
  if (side(&c, b, a, 1, &removed, &cap) < 0 ||
      side(&c, a, b, 0, &removed, &cap) < 0)
    goto done;
  hs_diff_row_t *rows = calloc((size_t)c.count + 1, sizeof *rows);
  if (!rows)
    goto done;
  for (int r = 0; r < c.count; r++) {
    rows[r].name = c.rows[r].name;
    c.rows[r].name = NULL;
    rows[r].added_count = c.rows[r].count;
    rows[r].added_self = c.rows[r].self;
    if (r < cap) {
      rows[r].removed_count = removed[(size_t)r * 2];
      rows[r].removed_self = removed[(size_t)r * 2 + 1];
    }
  }
  qsort(rows, (size_t)c.count, sizeof *rows, cmp_diff);
  *out = rows;
  rc = c.count;
done:
  free(removed);
  free(c.tab);
  hs_class_rows_free(c.rows, c.count);
  return rc;
}

void hs_diff_rows_free(hs_diff_row_t *rows, int count)
{
  for (int i = 0; i < count; i++)
    free(rows[i].name);
  free(rows);
}
