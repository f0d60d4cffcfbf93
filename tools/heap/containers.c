/* containers.c -- finding collections in a snapshot and counting entries.
 *
 * Owns the knowledge of how collections are laid out in a V8 (or tenure)
 * heap snapshot, so that the container reported is the object the program
 * names, never an internal store:
 *
 *  - Map, Set, WeakMap, WeakSet: the object has an internal edge "table"
 *    to a hash table.  V8's OrderedHashMap stores [header, buckets,
 *    (key, value, chain)*] and names the edges by slot number; entries are
 *    counted as distinct entry slots (stride 3 for maps, 2 for sets, told
 *    apart by the table's size, see hs__table_stride), so a
 *    key and its value count once.  Primitive (Smi) keys and values have
 *    no edge; an entry whose key and value are both Smis is not seen, and
 *    a table of Smis only is measured by its capacity (a lower bound, see
 *    smi_table_estimate).  A
 *    table whose edges are not numbered slots (tenure's writer) counts its
 *    property edges (one per entry, named by the key) if it has any, else
 *    one entry per edge other than V8's "map" link.
 *  - Arrays ("Array" objects): element edges of the array; else the edges
 *    of its internal "elements" store; else, for a store of unboxed
 *    numbers, its capacity estimated from its size.
 *  - Objects used as dictionaries: property and element edges, except
 *    __proto__ and constructor; or, if more, the entry slots of the
 *    internal "properties" dictionary (whose numbered edges reach the keys
 *    even when the values are Smis).
 *  - Linked lists: inferred in chains.c (a holder, a head, a link edge).
 *
 * INV(kinds): only object and native nodes are containers; hidden, array
 * (V8 internal FixedArray), code and synthetic nodes never are.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"

/* V8 names closure contexts "system / Context": scopes, not collections. */
#define CONTEXT_PREFIX "system /"

int hs__is_context(const hs_snapshot_t *s, uint32_t n)
{
  return !strncmp(hs_node_name(s, n), CONTEXT_PREFIX,
                  sizeof CONTEXT_PREFIX - 1);
}

int hs__is_candidate(const hs_snapshot_t *s, uint32_t n)
{
  uint8_t k = s->node_kind[n];
  return (k == HS_NODE_OBJECT || k == HS_NODE_NATIVE) && !hs__is_context(s, n);
}

int64_t hs__edge_number(const hs_snapshot_t *s, uint32_t e)
{
  uint8_t k = s->edge_kind[e];
  if (k == HS_EDGE_ELEMENT || k == HS_EDGE_HIDDEN)
    return s->edge_name[e];
  const char *p = hs_str(s, s->edge_name[e]);
  if (!*p)
    return -1;
  int64_t v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || v > (INT64_C(1) << 40))
      return -1;
    v = v * 10 + (*p - '0');
  }
  return v;
}

uint32_t hs__find_internal(const hs_snapshot_t *s, uint32_t n,
                              const char *name)
{
  for (uint32_t e = s->first_edge[n]; e < s->first_edge[n + 1]; e++) {
    uint8_t k = s->edge_kind[e];
    if ((k == HS_EDGE_INTERNAL || k == HS_EDGE_PROPERTY) &&
        !strcmp(hs_str(s, s->edge_name[e]), name))
      return s->edge_to[e];
  }
  return UINT32_MAX;
}

/* 7 * 2^k or 5 * 2^k (k >= 1): which OrderedHashTable length this is. */
static int64_t ordered_stride(uint64_t len)
{
  if (len < 3)
    return 0;
  len -= 3;
  for (uint64_t f = 7; f >= 5; f -= 2) {
    if (len % f)
      continue;
    uint64_t b = len / f;
    if (b >= 2 && (b & (b - 1)) == 0)
      return f == 7 ? 3 : 2;
  }
  return 0;
}

int64_t hs__table_stride(const hs_snapshot_t *s, uint32_t n, uint32_t table)
{
  const char *nm = hs_node_name(s, n);
  if (!strcmp(nm, "WeakMap") || !strcmp(nm, "WeakSet"))
    return 2; /* EphemeronHashTable: key, value */
  /* V8's OrderedHashMap has 3 + B + 2B * 3 slots and OrderedHashSet
   * 3 + B + 2B * 2, B a power of two, so the table's size tells them apart
   * whatever the object's class is called (class Cache extends Map).  Try
   * 8-byte slots with a 16-byte header, then pointer compression. */
  uint32_t self = s->node_self[table];
  if (self > 16 && (self - 16) % 8 == 0) {
    int64_t st = ordered_stride((self - 16) / 8);
    if (st)
      return st;
  }
  if (self > 8 && (self - 8) % 4 == 0) {
    int64_t st = ordered_stride((self - 8) / 4);
    if (st)
      return st;
  }
  return strstr(nm, "Map") ? 3 : 2;
}

/* Buckets B of a V8 OrderedHashMap / OrderedHashSet table (3 + 7B or
 * 3 + 5B slots, B a power of two), or 0 when the size says otherwise. */
static uint64_t ordered_buckets(uint32_t self)
{
  uint64_t len = 0;
  if (self > 16 && (self - 16) % 8 == 0 && ordered_stride((self - 16) / 8))
    len = (self - 16) / 8;
  else if (self > 8 && (self - 8) % 4 == 0 && ordered_stride((self - 8) / 4))
    len = (self - 8) / 4;
  if (!len)
    return 0;
  len -= 3;
  return len % 7 == 0 && ((len / 7) & (len / 7 - 1)) == 0 ? len / 7
                                                          : len / 5;
}

/* A V8 Map or Set table whose only edge is its "map" link holds nothing
 * but Smis (or nothing): its entries have no edges.  Its capacity is
 * 2B entries, and V8 keeps between a quarter of that and all of it live
 * (it doubles the table when full and halves it on a delete that leaves
 * less than a quarter), so a quarter of the capacity is a lower bound.
 * 0 for the initial capacity (4), for weak tables, and for tables that
 * are not V8's (tenure's have no "map" edge). */
static uint32_t smi_table_estimate(const hs_snapshot_t *s, uint32_t n,
                                   uint32_t table)
{
  const char *nm = hs_node_name(s, n);
  if (!strcmp(nm, "WeakMap") || !strcmp(nm, "WeakSet"))
    return 0;
  int map_edge = 0;
  for (uint32_t e = s->first_edge[table]; e < s->first_edge[table + 1]; e++)
    if (s->edge_kind[e] == HS_EDGE_INTERNAL &&
        !strcmp(hs_str(s, s->edge_name[e]), "map"))
      map_edge = 1;
  uint64_t b = ordered_buckets(s->node_self[table]);
  if (!map_edge || b <= 2 || b > (UINT64_C(1) << 30))
    return 0;
  return (uint32_t)(2 * b / 4);
}

int hs__entries_estimated(const hs_snapshot_t *s, uint32_t n,
                          hs_cont_kind_t kind)
{
  if (kind != HS_CONT_MAP || n >= s->node_count)
    return 0;
  uint32_t t = hs__find_internal(s, n, "table");
  if (t == UINT32_MAX)
    return 0;
  for (uint32_t e = s->first_edge[t]; e < s->first_edge[t + 1]; e++) {
    uint8_t k = s->edge_kind[e];
    if (k == HS_EDGE_WEAK)
      continue;
    if (k == HS_EDGE_ELEMENT || k == HS_EDGE_HIDDEN ||
        strcmp(hs_str(s, s->edge_name[e]), "map"))
      return 0;
  }
  return smi_table_estimate(s, n, t) > 0;
}

static uint32_t table_entries(const hs_snapshot_t *s, uint32_t n,
                              uint32_t table)
{
  const char *nm = hs_node_name(s, n);
  int64_t stride = hs__table_stride(s, n, table);
  uint32_t edges = 0, numbered = 0, named = 0;
  int64_t lo = INT64_MAX;
  for (uint32_t e = s->first_edge[table]; e < s->first_edge[table + 1];
       e++) {
    if (s->edge_kind[e] == HS_EDGE_WEAK && strcmp(nm, "WeakMap") &&
        strcmp(nm, "WeakSet"))
      continue;
    int64_t v = hs__edge_number(s, e);
    if (v >= 0) {
      numbered++;
      if (v < lo)
        lo = v;
    } else if (strcmp(hs_str(s, s->edge_name[e]), "map")) {
      edges++; /* a named entry edge (not V8's hidden class link) */
      if (s->edge_kind[e] == HS_EDGE_PROPERTY)
        named++;
    }
  }
  /* Tenure's writer names each entry's value edge by its key (a property
   * edge) beside an internal "key" edge: count the entries once. */
  if (numbered == 0 && named > 0)
    return named;
  if (numbered == 0 && edges == 0)
    return smi_table_estimate(s, n, table);
  if (numbered == 0)
    return edges;
  /* Distinct entry slots, anchored on the lowest slot seen.  Edges come
   * in slot order, so a slot equal to the previous one is the same
   * entry. */
  uint32_t count = 0;
  int64_t last = -1;
  for (uint32_t e = s->first_edge[table]; e < s->first_edge[table + 1];
       e++) {
    if (s->edge_kind[e] == HS_EDGE_WEAK && strcmp(nm, "WeakMap") &&
        strcmp(nm, "WeakSet"))
      continue;
    int64_t v = hs__edge_number(s, e);
    if (v < 0)
      continue;
    int64_t slot = (v - lo) / stride;
    if (slot != last) {
      count++;
      last = slot;
    }
  }
  return count;
}

static uint32_t array_entries(const hs_snapshot_t *s, uint32_t n)
{
  uint32_t count = 0;
  for (uint32_t e = s->first_edge[n]; e < s->first_edge[n + 1]; e++)
    if (s->edge_kind[e] == HS_EDGE_ELEMENT)
      count++;
  if (count)
    return count;
  uint32_t store = hs__find_internal(s, n, "elements");
  if (store == UINT32_MAX)
    return 0;
  for (uint32_t e = s->first_edge[store]; e < s->first_edge[store + 1]; e++)
    if (s->edge_kind[e] != HS_EDGE_WEAK &&
        (s->edge_kind[e] == HS_EDGE_ELEMENT ||
         strcmp(hs_str(s, s->edge_name[e]), "map")))
      count++;
  if (count)
    return count;
  /* Unboxed numbers: estimate from the store's size (16-byte header,
   * 8-byte slots). */
  uint32_t self = s->node_self[store];
  return self > 16 ? (self - 16) / 8 : 0;
}

/* Distinct entry slots among the numbered edges of a hash-table store
 * (V8 NameDictionary: key, value, details; stride 3). */
static uint32_t store_slots(const hs_snapshot_t *s, uint32_t store,
                            int64_t stride)
{
  int64_t lo = INT64_MAX;
  for (uint32_t e = s->first_edge[store]; e < s->first_edge[store + 1]; e++) {
    int64_t v = s->edge_kind[e] == HS_EDGE_WEAK ? -1 : hs__edge_number(s, e);
    if (v >= 0 && v < lo)
      lo = v;
  }
  if (lo == INT64_MAX)
    return 0;
  uint32_t count = 0;
  int64_t last = -1;
  for (uint32_t e = s->first_edge[store]; e < s->first_edge[store + 1]; e++) {
    int64_t v = s->edge_kind[e] == HS_EDGE_WEAK ? -1 : hs__edge_number(s, e);
    if (v < 0)
      continue;
    int64_t slot = (v - lo) / stride;
    if (slot != last) {
      count++;
      last = slot;
    }
  }
  return count;
}

static uint32_t dict_entries(const hs_snapshot_t *s, uint32_t n)
{
  uint32_t count = 0;
  for (uint32_t e = s->first_edge[n]; e < s->first_edge[n + 1]; e++) {
    uint8_t k = s->edge_kind[e];
    if (k == HS_EDGE_ELEMENT) {
      count++;
    } else if (k == HS_EDGE_PROPERTY) {
      const char *nm = hs_str(s, s->edge_name[e]);
      if (strcmp(nm, "__proto__") && strcmp(nm, "constructor"))
        count++;
    }
  }
  /* A dictionary-mode object whose values are Smis has no property edges
   * for them, but its "properties" dictionary still holds the keys. */
  uint32_t store = hs__find_internal(s, n, "properties");
  if (store != UINT32_MAX && s->node_kind[store] == HS_NODE_ARRAY) {
    uint32_t slots = store_slots(s, store, 3);
    if (slots > count)
      count = slots;
  }
  return count;
}

uint32_t hs_container_entries(const hs_snapshot_t *s, uint32_t n,
                              hs_cont_kind_t kind)
{
  if (n >= s->node_count)
    return 0;
  switch (kind) {
  case HS_CONT_MAP: {
    if (!hs__is_candidate(s, n))
      return 0;
    uint32_t t = hs__find_internal(s, n, "table");
    return t == UINT32_MAX ? 0 : table_entries(s, n, t);
  }
  case HS_CONT_ARRAY:
    if (!hs__is_candidate(s, n) || strcmp(hs_node_name(s, n), "Array"))
      return 0;
    return array_entries(s, n);
  case HS_CONT_DICT:
    if (!hs__is_candidate(s, n))
      return 0;
    return dict_entries(s, n);
  case HS_CONT_CHAIN:
    if (s->node_kind[n] != HS_NODE_OBJECT && s->node_kind[n] != HS_NODE_NATIVE)
      return 0;
    return hs__holder_chain(s, n, NULL, NULL);
  default:
    return 0;
  }
}

/* The edges that hold a keyed container's entries. */
static uint32_t entry_store(const hs_snapshot_t *s, uint32_t n, uint8_t kind)
{
  if (kind != HS_CONT_MAP)
    return n;
  for (uint32_t e = s->first_edge[n]; e < s->first_edge[n + 1]; e++)
    if (s->edge_kind[e] == HS_EDGE_INTERNAL &&
        !strcmp(hs_str(s, s->edge_name[e]), "table"))
      return s->edge_to[e];
  return UINT32_MAX;
}

static int entry_edge(const hs_snapshot_t *s, uint32_t e, uint8_t kind)
{
  uint8_t k = s->edge_kind[e];
  if (kind == HS_CONT_MAP)
    return k != HS_EDGE_WEAK;
  if (k == HS_EDGE_ELEMENT)
    return 1;
  if (k != HS_EDGE_PROPERTY)
    return 0;
  const char *nm = hs_str(s, s->edge_name[e]);
  return strcmp(nm, "__proto__") && strcmp(nm, "constructor");
}


int hs__is_listener_list(const hs_snapshot_t *s, uint32_t n, uint8_t kind)
{
  uint32_t st = entry_store(s, n, kind == HS_CONT_ARRAY ? HS_CONT_DICT
                                                        : kind);
  if (st == UINT32_MAX)
    return 0;
  uint32_t all = 0, fn = 0;
  for (uint32_t e = s->first_edge[st]; e < s->first_edge[st + 1]; e++) {
    if (!entry_edge(s, e, kind == HS_CONT_ARRAY ? HS_CONT_DICT : kind))
      continue;
    all++;
    if (s->node_kind[s->edge_to[e]] == HS_NODE_CLOSURE)
      fn++;
  }
  return all > 0 && fn * 2 > all;
}

static int push(hs_container_t **v, int *cnt, int *cap, hs_container_t c)
{
  if (*cnt == *cap) {
    int nc = *cap ? *cap * 2 : 256;
    hs_container_t *nv = realloc(*v, sizeof *nv * (size_t)nc);
    if (!nv)
      return -ENOMEM;
    *v = nv;
    *cap = nc;
  }
  (*v)[(*cnt)++] = c;
  return 0;
}

int hs_containers(const hs_snapshot_t *s, uint32_t min_entries,
                  hs_container_t **out)
{
  hs_container_t *v = NULL;
  int cnt = 0, cap = 0;
  if (min_entries == 0)
    min_entries = 1;
  /* Each holder edge into a list walks the list.  Lists are usually held
   * from one place, but objects pointing into the middle of one (sockets
   * holding their timer in node's timer lists) make that quadratic, so
   * the walking is bounded by a budget linear in the graph size. */
  uint64_t budget = 32 * (uint64_t)s->node_count + (1u << 20);
  uint32_t root_end = s->first_edge[1];
  for (uint32_t n = 1; n < s->node_count; n++) {
    uint8_t k = s->node_kind[n];
    if (k != HS_NODE_OBJECT && k != HS_NODE_NATIVE)
      continue;
    /* Global objects hang off the root; they are scopes, not
     * collections. */
    int global = 0;
    for (uint32_t e = s->first_edge[0]; e < root_end; e++)
      if (s->edge_to[e] == n)
        global = 1;
    if (global)
      continue;
    hs_container_t c = {n, UINT32_MAX, 0, 0, s->retained ? s->retained[n]
                                                          : 0};
    if (!hs__is_context(s, n)) {
      uint32_t t = hs__find_internal(s, n, "table");
      if (t != UINT32_MAX) {
        c.kind = HS_CONT_MAP;
        c.entries = table_entries(s, n, t);
      } else if (!strcmp(hs_node_name(s, n), "Array")) {
        c.kind = HS_CONT_ARRAY;
        c.entries = array_entries(s, n);
      } else {
        c.kind = HS_CONT_DICT;
        c.entries = dict_entries(s, n);
      }
      if (c.entries >= min_entries && push(&v, &cnt, &cap, c) < 0)
        goto fail;
    }
    uint32_t via;
    uint32_t len = budget ? hs__holder_chain(s, n, &via, &budget) : 0;
    if (len >= min_entries) {
      hs_container_t ch = {n, via, HS_CONT_CHAIN, len, c.retained};
      if (push(&v, &cnt, &cap, ch) < 0)
        goto fail;
    }
  }
  *out = v;
  return cnt;
fail:
  free(v);
  return -ENOMEM;
}

uint32_t hs__queue_members(const hs_snapshot_t *s, uint32_t n, uint8_t kind,
                           void (*fn)(void *ctx, uint32_t node), void *ctx)
{
  uint32_t count = 0;
  if (kind == HS_CONT_CHAIN)
    return hs__chain_members(s, n, fn, ctx);
  if (kind != HS_CONT_ARRAY)
    return 0;
  for (uint32_t e = s->first_edge[n]; e < s->first_edge[n + 1]; e++)
    if (s->edge_kind[e] == HS_EDGE_ELEMENT) {
      fn(ctx, s->edge_to[e]);
      count++;
    }
  if (count)
    return count;
  uint32_t store = hs__find_internal(s, n, "elements");
  if (store == UINT32_MAX)
    return 0;
  for (uint32_t e = s->first_edge[store]; e < s->first_edge[store + 1]; e++)
    if (s->edge_kind[e] != HS_EDGE_WEAK &&
        (s->edge_kind[e] == HS_EDGE_ELEMENT ||
         strcmp(hs_str(s, s->edge_name[e]), "map"))) {
      fn(ctx, s->edge_to[e]);
      count++;
    }
  return count;
}
