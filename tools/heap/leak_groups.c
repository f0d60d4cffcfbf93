/* leak_groups.c -- groups of like containers: the evidence of membership
 * (leaks.c, "The model").
 *
 * Containers are alike when they are reached by the same edge (by name;
 * any numbered slot or index counts as one name) from holders of one
 * shape (hidden class, matched across snapshots by its node id; by class
 * name when the writer gives no shapes), and are of one type and class:
 * per-connection outboxes, per-room member sets, per-user carts.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"
#include "leak_internal.h"

static int numbered_edge(const hs_snapshot_t *s, uint32_t e)
{
  return hs__edge_number(s, e) >= 0;
}

int hs__group_key(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t c,
                     uint8_t kind, hs__group_key_t *k)
{
  uint32_t h = b->prev_node[c], pe = b->prev_edge[c];
  if (h == UINT32_MAX || h == 0 || pe == UINT32_MAX)
    return 0;
  uint32_t sh = hs__shape_of(s, h);
  k->shape_id = sh == UINT32_MAX ? 0 : s->node_id[sh];
  k->holder = hs_node_name(s, h);
  k->ekind = s->edge_kind[pe];
  k->ename = numbered_edge(s, pe) ? NULL : hs_str(s, s->edge_name[pe]);
  k->ckind = s->node_kind[c];
  k->cname = hs_node_name(s, c);
  k->kind = kind;
  return 1;
}

int hs__same_group(const hs__group_key_t *a, const hs__group_key_t *b)
{
  return a->shape_id == b->shape_id && a->ekind == b->ekind &&
         a->ckind == b->ckind && a->kind == b->kind &&
         (a->shape_id || !strcmp(a->holder, b->holder)) &&
         ((!a->ename && !b->ename) ||
          (a->ename && b->ename && !strcmp(a->ename, b->ename))) &&
         !strcmp(a->cname, b->cname);
}

/* Whether x of snapshot s (with BFS b) belongs to group k. */
int hs__in_group(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t x,
                    const hs__group_key_t *k)
{
  if (s->node_kind[x] != k->ckind)
    return 0;
  uint32_t h = b->prev_node[x], pe = b->prev_edge[x];
  if (h == UINT32_MAX || h == 0 || pe == UINT32_MAX ||
      s->edge_kind[pe] != k->ekind)
    return 0;
  if (k->ename ? (numbered_edge(s, pe) ||
                  strcmp(hs_str(s, s->edge_name[pe]), k->ename))
               : !numbered_edge(s, pe))
    return 0;
  if (strcmp(hs_node_name(s, x), k->cname))
    return 0;
  if (k->shape_id) {
    uint32_t sh = hs__shape_of(s, h);
    return sh != UINT32_MAX && s->node_id[sh] == k->shape_id;
  }
  return !strcmp(hs_node_name(s, h), k->holder);
}

/* Members of group k in s, their entries and retained sizes in total
 * (ret may be NULL), and the node ids of their entries when ids is set
 * (arrays). */
uint32_t hs__group_measure(const hs_snapshot_t *s, const hs_bfs_t *b,
                                  const hs__group_key_t *k, uint64_t *total,
                                  uint64_t *ret, void *ids)
{
  uint32_t count = 0;
  *total = 0;
  if (ret)
    *ret = 0;
  for (uint32_t x = 1; x < s->node_count; x++)
    if (hs__in_group(s, b, x, k)) {
      count++;
      *total += hs_container_entries(s, x, (hs_cont_kind_t)k->kind);
      if (ret)
        *ret += s->retained[x];
      if (ids)
        hs__queue_members(s, x, HS_CONT_ARRAY, hs__ids_add, ids);
    }
  return count;
}

static uint64_t key_hash(const hs__group_key_t *k)
{
  uint64_t h = hs__fnv64(k->cname) ^ (hs__fnv64(k->ename ? k->ename : "#") * 31);
  h ^= ((uint64_t)k->shape_id << 20) ^ ((uint64_t)k->ekind << 8) ^
       ((uint64_t)k->ckind << 4) ^ k->kind;
  if (!k->shape_id)
    h ^= hs__fnv64(k->holder) * 7;
  return h * 0x9e3779b97f4a7c15ull;
}

static int cmp_gcand(const void *a, const void *b)
{
  const hs__group_cand_t *x = a, *y = b;
  return x->total > y->total ? -1 : x->total < y->total;
}

/* Groups of at least min_members arrays or Map-likes of the last
 * snapshot, with at least min_entries entries among them, the largest
 * first, at most max.  Returns the count or -ENOMEM. */
int hs__group_candidates(const hs_snapshot_t *s, const hs_bfs_t *b,
                            uint32_t min_members, uint32_t min_entries,
                            int max, hs__group_cand_t **out)
{
  size_t tsize = 1024;
  while (tsize < (size_t)s->node_count / 4)
    tsize *= 2;
  hs__group_cand_t *tab = calloc(tsize, sizeof *tab);
  if (!tab)
    return -ENOMEM;
  size_t used = 0;
  for (uint32_t x = 1; x < s->node_count; x++) {
    uint8_t nk = s->node_kind[x];
    if (nk != HS_NODE_OBJECT && nk != HS_NODE_NATIVE)
      continue;
    uint8_t kind = HS_CONT_ARRAY;
    uint32_t e;
    if (!strcmp(hs_node_name(s, x), "Array"))
      e = hs_container_entries(s, x, HS_CONT_ARRAY);
    else if ((e = hs_container_entries(s, x, HS_CONT_MAP)) > 0)
      kind = HS_CONT_MAP;
    else
      continue;
    hs__group_key_t k;
    if (!hs__group_key(s, b, x, kind, &k))
      continue;
    size_t i = key_hash(&k) & (tsize - 1);
    while (tab[i].members && !hs__same_group(&tab[i].key, &k))
      i = (i + 1) & (tsize - 1);
    if (!tab[i].members) {
      if (2 * (used + 1) > tsize)
        continue; /* full enough: rare kinds of container are left out */
      tab[i].key = k;
      used++;
    }
    tab[i].members++;
    tab[i].total += e;
    if (tab[i].members == 1 || e > tab[i].rep_entries) {
      tab[i].rep = x;
      tab[i].rep_entries = e;
    }
  }
  size_t w = 0;
  for (size_t i = 0; i < tsize; i++)
    if (tab[i].members >= min_members && tab[i].total >= min_entries)
      tab[w++] = tab[i];
  qsort(tab, w, sizeof *tab, cmp_gcand);
  if (w > (size_t)max)
    w = (size_t)max;
  *out = tab;
  return (int)w;
}

