/* leak_retention.c -- does a collection keep its entries?  The evidence
 * of retention (leaks.c, "The model"): what share of one snapshot's
 * entries another snapshot's collection still holds.
 *
 * Keyed collections (Map, Set, dictionaries) are compared by entry: an
 * entry is kept when any of its members (its key or its value) is still
 * there, strings by their text (a key rebuilt with the same text is the
 * same key), everything else by node id.  Queues (arrays, linked lists)
 * are compared by the node ids of their entries: a queue holds objects,
 * and a rebuilt string is a new job.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"
#include "leak_internal.h"

typedef struct {
  uint32_t group;  /* entry number within the container */
  uint64_t key;    /* identity of one member (key or value) */
} ekey_t;

typedef struct {
  ekey_t *v;
  uint32_t n, cap, groups;
  int err;
} ekeys_t;

uint64_t hs__fnv64(const char *p)
{
  uint64_t h = 1469598103934665603ull;
  while (*p)
    h = (h ^ (unsigned char)*p++) * 1099511628211ull;
  return h;
}

/* Identity of an entry member across snapshots: strings by content (odd
 * keys), so a key rebuilt with the same text is the same key; everything
 * else by node id (even keys). */
static uint64_t member_key(const hs_snapshot_t *s, uint32_t t)
{
  uint8_t k = s->node_kind[t];
  if (k == HS_NODE_STRING || k == HS_NODE_CONCAT_STRING ||
      k == HS_NODE_SLICED_STRING)
    return hs__fnv64(hs_node_name(s, t)) | 1;
  return (uint64_t)s->node_id[t] << 1;
}

static void ek_add(ekeys_t *k, uint32_t group, uint64_t key)
{
  if (k->err)
    return;
  if (k->n == k->cap) {
    uint32_t nc = k->cap ? k->cap * 2 : 64;
    ekey_t *nv = realloc(k->v, sizeof *nv * nc);
    if (!nv) {
      k->err = -ENOMEM;
      return;
    }
    k->v = nv;
    k->cap = nc;
  }
  k->v[k->n].group = group;
  k->v[k->n].key = key;
  k->n++;
}

/* Adds the entries of a hash-table store: numbered edges grouped into
 * entries of `stride` slots; other edges (but "map") one entry each. */
static void ek_store(ekeys_t *k, const hs_snapshot_t *s, uint32_t st,
                     int64_t stride)
{
  int64_t lo = INT64_MAX;
  for (uint32_t e = s->first_edge[st]; e < s->first_edge[st + 1]; e++) {
    int64_t v = s->edge_kind[e] == HS_EDGE_WEAK ? -1 : hs__edge_number(s, e);
    if (v >= 0 && v < lo)
      lo = v;
  }
  int64_t last = -1;
  for (uint32_t e = s->first_edge[st]; e < s->first_edge[st + 1]; e++) {
    if (s->edge_kind[e] == HS_EDGE_WEAK)
      continue;
    int64_t v = hs__edge_number(s, e);
    if (v < 0) {
      if (!strcmp(hs_str(s, s->edge_name[e]), "map"))
        continue;
      ek_add(k, k->groups++, member_key(s, s->edge_to[e]));
      last = -1;
      continue;
    }
    int64_t slot = (v - lo) / stride;
    if (slot != last) {
      k->groups++;
      last = slot;
    }
    ek_add(k, k->groups - 1, member_key(s, s->edge_to[e]));
  }
}

/* The entries of a keyed container as (entry, member identity) pairs.
 * Maps and Sets: the slots of their table.  Dictionaries: property names
 * (by text), element indexes, and the slots of the "properties"
 * dictionary. */
static int entry_keys(const hs_snapshot_t *s, uint32_t n, uint8_t kind,
                      ekeys_t *k)
{
  memset(k, 0, sizeof *k);
  for (uint32_t e = s->first_edge[n]; e < s->first_edge[n + 1]; e++) {
    uint8_t ek = s->edge_kind[e];
    uint32_t t = s->edge_to[e];
    if (kind == HS_CONT_MAP) {
      if (ek == HS_EDGE_INTERNAL &&
          !strcmp(hs_str(s, s->edge_name[e]), "table")) {
        ek_store(k, s, t, hs__table_stride(s, n, t));
      }
      continue;
    }
    if (ek == HS_EDGE_ELEMENT) {
      char buf[24];
      snprintf(buf, sizeof buf, "[%u]", s->edge_name[e]);
      ek_add(k, k->groups++, hs__fnv64(buf) | 1);
    } else if (ek == HS_EDGE_PROPERTY) {
      const char *nm = hs_str(s, s->edge_name[e]);
      if (strcmp(nm, "__proto__") && strcmp(nm, "constructor"))
        ek_add(k, k->groups++, hs__fnv64(nm) | 1);
    } else if (ek == HS_EDGE_INTERNAL && s->node_kind[t] == HS_NODE_ARRAY &&
               !strcmp(hs_str(s, s->edge_name[e]), "properties")) {
      ek_store(k, s, t, 3);
    }
  }
  return k->err;
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Share of a's entries that b still holds: an entry is kept when any of
 * its members (its key, or its value) is in b.  1 when a had none. */
double hs__kept_share(const hs_snapshot_t *sa, uint32_t na,
                      const hs_snapshot_t *sb, uint32_t nb, uint8_t kind)
{
  ekeys_t a, b;
  double r = 1.0;
  entry_keys(sa, na, kind, &a);
  entry_keys(sb, nb, kind, &b);
  uint64_t *set = malloc(sizeof(uint64_t) * ((size_t)b.n + 1));
  if (a.err || b.err || !set)
    goto done;
  for (uint32_t i = 0; i < b.n; i++)
    set[i] = b.v[i].key;
  qsort(set, b.n, sizeof *set, cmp_u64);
  uint32_t kept = 0, groups = 0;
  for (uint32_t i = 0; i < a.n;) {
    uint32_t g = a.v[i].group;
    int hit = 0;
    for (; i < a.n && a.v[i].group == g; i++)
      if (!hit && bsearch(&a.v[i].key, set, b.n, sizeof *set, cmp_u64))
        hit = 1;
    groups++;
    kept += (uint32_t)hit;
  }
  if (groups)
    r = (double)kept / groups;
done:
  free(set);
  free(a.v);
  free(b.v);
  return r;
}

void hs__ids_add(void *ctx, uint32_t node)
{
  hs__ids_t *q = ctx;
  if (q->err)
    return;
  if (q->n == q->cap) {
    uint32_t nc = q->cap ? q->cap * 2 : 64;
    uint32_t *nv = realloc(q->ids, sizeof *nv * nc);
    if (!nv) {
      q->err = -ENOMEM;
      return;
    }
    q->ids = nv;
    q->cap = nc;
  }
  q->ids[q->n++] = q->s->node_id[node];
}

static int cmp_u32(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Share of queue a's entries (by node id: a queue holds objects, and a
 * rebuilt string is a new job) that queue b still holds.  An object held
 * several times counts once, so an array of a few shared values (interned
 * strings, handlers) does not look kept.  0 when a had none or they
 * cannot be told apart (Smis and unboxed numbers have no node). */
double hs__ids_kept(hs__ids_t *a, hs__ids_t *b)
{
  if (a->err || b->err || !a->n || !b->n)
    return 0.0;
  qsort(a->ids, a->n, sizeof *a->ids, cmp_u32);
  qsort(b->ids, b->n, sizeof *b->ids, cmp_u32);
  uint32_t kept = 0;
  for (uint32_t i = 0; i < a->n; i++)
    if ((i == 0 || a->ids[i] != a->ids[i - 1]) &&
        bsearch(&a->ids[i], b->ids, b->n, sizeof *b->ids, cmp_u32))
      kept++;
  return (double)kept / a->n;
}

double hs__queue_kept(const hs_snapshot_t *sa, uint32_t na,
                         const hs_snapshot_t *sb, uint32_t nb, uint8_t kind)
{
  hs__ids_t a = {sa, NULL, 0, 0, 0}, b = {sb, NULL, 0, 0, 0};
  hs__queue_members(sa, na, kind, hs__ids_add, &a);
  hs__queue_members(sb, nb, kind, hs__ids_add, &b);
  double r = hs__ids_kept(&a, &b);
  free(a.ids);
  free(b.ids);
  return r;
}

