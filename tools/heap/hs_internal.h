/* hs_internal.h -- internals shared by the tenure_heapsnap sources.
 *
 * Not installed; nothing here is part of the heapsnap.h API.
 */
#ifndef TENURE_HS_INTERNAL_H
#define TENURE_HS_INTERNAL_H

#include "heapsnap.h"

typedef struct {
  uint64_t hash;
  int row;
} hs__slot_t;

typedef struct {
  hs_class_row_t *rows;
  int count, cap;
  hs__slot_t *tab;
  size_t tabsize;
} hs__classes_t;

/* Row of name, inserted if new.  Returns the row, -1 on out of memory,
 * -2 when the table must grow first (hs__classes_grow). */
int hs__class_of(hs__classes_t *c, const char *name);
int hs__classes_grow(hs__classes_t *c);

/* Row for node n of s, through per-string / per-kind caches sized
 * string_count + 1 and HS_NODE_OTHER + 1 (-1 = unknown yet).  Returns the
 * row or -1 on out of memory. */
int hs__node_row(hs__classes_t *c, const hs_snapshot_t *s, uint32_t n,
                 int32_t *by_str, int32_t *by_kind);

/* --- Containers (containers.c) --- */

/* Whether n is a closure context ("system / Context"): a scope. */
int hs__is_context(const hs_snapshot_t *s, uint32_t n);
/* Whether n can be a container: an object or native node, not a
 * context (INV(kinds) in containers.c). */
int hs__is_candidate(const hs_snapshot_t *s, uint32_t n);
/* The target of n's internal or property edge NAME, or UINT32_MAX. */
uint32_t hs__find_internal(const hs_snapshot_t *s, uint32_t n,
                           const char *name);
/* Whether most entries of container n (of kind KIND) are functions: a
 * listener list. */
int hs__is_listener_list(const hs_snapshot_t *s, uint32_t n, uint8_t kind);

/* --- Linked lists (chains.c) --- */

/* Longest linked list held by holder n through one of its edges: returns
 * its length and stores the holder's edge to the head in *via (UINT32_MAX
 * if none).  BUDGET (or NULL): steps the walks may take, decreased. */
uint32_t hs__holder_chain(const hs_snapshot_t *s, uint32_t n, uint32_t *via,
                          uint64_t *budget);
/* hs__holder_chain without a budget. */
uint32_t hs__chain_via(const hs_snapshot_t *s, uint32_t n, uint32_t *via);
/* Calls fn for each link of n's longest list, each once; returns how
 * many. */
uint32_t hs__chain_members(const hs_snapshot_t *s, uint32_t n,
                           void (*fn)(void *ctx, uint32_t node), void *ctx);

/* Calls fn for each entry node of queue n (kind HS_CONT_ARRAY: the
 * element targets; HS_CONT_CHAIN: the links of its longest list) and
 * returns how many; 0 for other kinds. */
uint32_t hs__queue_members(const hs_snapshot_t *s, uint32_t n, uint8_t kind,
                           void (*fn)(void *ctx, uint32_t node), void *ctx);

/* 1 when the entry count of Map/Set n is estimated from its table's
 * capacity (a table of Smis only, which has no entry edges). */
int hs__entries_estimated(const hs_snapshot_t *s, uint32_t n,
                          hs_cont_kind_t kind);

/* Slots per entry in the hash table `table` of Map/Set-like object n:
 * 3 for V8 OrderedHashMap, 2 for OrderedHashSet and weak collections. */
int64_t hs__table_stride(const hs_snapshot_t *s, uint32_t n, uint32_t table);

/* The number of edge e: its index for element and hidden edges, else its
 * name parsed as a decimal (V8 names hash-table slots "67"); -1 when the
 * name is not a number. */
int64_t hs__edge_number(const hs_snapshot_t *s, uint32_t e);

/* --- Hidden classes (shapes.c) --- */

/* Hidden class of n: the target of its internal "map" edge, or
 * UINT32_MAX when the writer gives none (tenure's). */
uint32_t hs__shape_of(const hs_snapshot_t *s, uint32_t n);

/* Builds s->shape (one word per node), so hs__shape_of is a load.
 * Returns 0 or -ENOMEM (then hs__shape_of scans the edges). */
int hs__shapes(hs_snapshot_t *s);

#endif /* TENURE_HS_INTERNAL_H */
