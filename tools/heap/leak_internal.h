/* leak_internal.h -- what the leak analysis's files share (leaks.c: the
 * model and the decision; leak_retention.c, leak_groups.c: evidence;
 * leak_names.c: naming a finding).  Not installed. */
#ifndef TENURE_LEAK_INTERNAL_H
#define TENURE_LEAK_INTERNAL_H

#include "heapsnap.h"

uint64_t hs__fnv64(const char *p);

/* --- Retention (leak_retention.c) --- */

/* Share of keyed collection na's entries (of snapshot sa) that nb (of sb)
 * still holds: an entry is kept when any of its members (its key, or its
 * value) is in nb.  1 when na had none. */
double hs__kept_share(const hs_snapshot_t *sa, uint32_t na,
                      const hs_snapshot_t *sb, uint32_t nb, uint8_t kind);

/* The node ids of a queue's entries (collected with hs__ids_add, as a
 * hs__queue_members callback). */
typedef struct {
  const hs_snapshot_t *s;
  uint32_t *ids;
  uint32_t n, cap;
  int err;
} hs__ids_t;

void hs__ids_add(void *ctx, uint32_t node);
/* Share of a's entries that b still holds, an object held several times
 * counted once.  0 when a had none or they cannot be told apart (Smis and
 * unboxed numbers have no node).  Sorts both. */
double hs__ids_kept(hs__ids_t *a, hs__ids_t *b);
/* hs__ids_kept of two queues (arrays or linked lists). */
double hs__queue_kept(const hs_snapshot_t *sa, uint32_t na,
                      const hs_snapshot_t *sb, uint32_t nb, uint8_t kind);

/* --- Groups (leak_groups.c) --- */

/* What makes containers alike: the same edge (by name; any numbered slot
 * or index counts as one name) from holders of one shape (hidden class,
 * matched across snapshots by its node id; by class name when the writer
 * gives no shapes), to a container of one type and class.  Per-connection
 * outboxes, per-room member sets and per-user carts each form a group. */
typedef struct {
  uint32_t shape_id;     /* holder's hidden class node id, 0 if none */
  const char *holder;    /* holder's class name when there is no shape */
  uint8_t ekind;
  const char *ename;     /* NULL: a numbered slot or index */
  uint8_t ckind;
  const char *cname;
  uint8_t kind;          /* hs_cont_kind_t of the finding */
} hs__group_key_t;

/* A group of like containers in the last snapshot, judged whole. */
typedef struct {
  hs__group_key_t key;
  uint32_t members;
  uint64_t total;
  uint32_t rep;          /* the member with the most entries */
  uint32_t rep_entries;
} hs__group_cand_t;


/* The group key of container c (of kind KIND) in s: 0 when c has no
 * holder to group by. */
int hs__group_key(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t c,
                  uint8_t kind, hs__group_key_t *k);
int hs__same_group(const hs__group_key_t *a, const hs__group_key_t *b);
/* Whether x of snapshot s (with BFS b) belongs to group k. */
int hs__in_group(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t x,
                 const hs__group_key_t *k);
/* Members of group k in s; their entries in all into *total, their
 * retained sizes into *ret (when not NULL), and the node ids of their
 * entries into ids (an hs__ids_t, when not NULL; arrays). */
uint32_t hs__group_measure(const hs_snapshot_t *s, const hs_bfs_t *b,
                           const hs__group_key_t *k, uint64_t *total,
                           uint64_t *ret, void *ids);
/* Groups of at least MIN_MEMBERS arrays or Map-likes of s, with at least
 * MIN_ENTRIES entries among them, the largest first, at most MAX.
 * Returns the count (groups in *out, to free) or -ENOMEM. */
int hs__group_candidates(const hs_snapshot_t *s, const hs_bfs_t *b,
                         uint32_t min_members, uint32_t min_entries, int max,
                         hs__group_cand_t **out);

/* --- Naming (leak_names.c) --- */

/* Fills l's name, class, type and path from snapshot s (its BFS b), for
 * container n of kind KIND.  0 or -ENOMEM. */
int hs__leak_describe(hs_leak_t *l, const hs_snapshot_t *s, const hs_bfs_t *b,
                      uint32_t n, uint8_t kind);

#endif /* TENURE_LEAK_INTERNAL_H */
