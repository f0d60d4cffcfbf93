/* classes.c -- a string-keyed table of class rows.
 *
 * Owns the open-addressing hash from a class name to its row index, shared
 * by summary and diff.  Rows are hs_class_row_t; diff reuses the table
 * with its own parallel arrays indexed by row.
 *
 * INV(load): the table is at most half full; hs__class_of returns -2 when
 * an insert would break that and the caller grows the table first.
 */
#include "heapsnap.h"

#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"

static uint64_t fnv(const char *p)
{
  uint64_t h = 1469598103934665603ull;
  while (*p)
    h = (h ^ (unsigned char)*p++) * 1099511628211ull;
  return h;
}

int hs__class_of(hs__classes_t *c, const char *name)
{
  uint64_t h = fnv(name);
  size_t mask = c->tabsize - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (c->tab[i].row < 0) {
      if ((size_t)c->count * 2 >= c->tabsize)
        return -2; /* caller grows */
      if (c->count == c->cap) {
        int nc = c->cap ? c->cap * 2 : 256;
        hs_class_row_t *nr = realloc(c->rows, sizeof *nr * (size_t)nc);
        if (!nr)
          return -1;
        c->rows = nr;
        c->cap = nc;
      }
      char *nm = strdup(name);
      if (!nm)
        return -1;
      hs_class_row_t *r = &c->rows[c->count];
      memset(r, 0, sizeof *r);
      r->name = nm;
      c->tab[i].hash = h;
      c->tab[i].row = c->count;
      return c->count++;
    }
    if (c->tab[i].hash == h && !strcmp(c->rows[c->tab[i].row].name, name))
      return c->tab[i].row;
  }
}

int hs__classes_grow(hs__classes_t *c)
{
  size_t ns = c->tabsize ? c->tabsize * 2 : 1024;
  hs__slot_t *nt = malloc(ns * sizeof *nt);
  if (!nt)
    return -1;
  for (size_t i = 0; i < ns; i++)
    nt[i].row = -1;
  for (int r = 0; r < c->count; r++) {
    uint64_t h = fnv(c->rows[r].name);
    size_t i = h & (ns - 1);
    while (nt[i].row >= 0)
      i = (i + 1) & (ns - 1);
    nt[i].hash = h;
    nt[i].row = r;
  }
  free(c->tab);
  c->tab = nt;
  c->tabsize = ns;
  return 0;
}

int hs__node_row(hs__classes_t *c, const hs_snapshot_t *s, uint32_t n,
                 int32_t *by_str, int32_t *by_kind)
{
  uint8_t k = s->node_kind[n];
  int32_t *cache = (k == HS_NODE_OBJECT || k == HS_NODE_NATIVE)
                       ? &by_str[s->node_name[n]] : &by_kind[k];
  if (*cache >= 0)
    return *cache;
  char buf[64];
  const char *nm = hs_node_class(s, n, buf, sizeof buf);
  int r;
  while ((r = hs__class_of(c, nm)) == -2)
    if (hs__classes_grow(c) < 0)
      return -1;
  if (r < 0)
    return -1;
  *cache = r;
  return r;
}
