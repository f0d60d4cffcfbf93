/* leaks.c -- unbounded caches and queues over a series of snapshots.
 *
 * Owns the decision "this collection leaks".  Candidates are the
 * collections of the last snapshot (containers.c) with at least
 * min_entries entries; each is matched in every earlier snapshot by node
 * id (V8 ids are stable for live objects) and measured there the same
 * way.  A candidate is flagged only when all of these hold:
 *
 *  1. it exists in every snapshot, or in at least three and all
 *     snapshots after its first appearance (absent means empty); it is
 *     found by id, or else in the same place (find_by_holder), so a
 *     container the program replaces with a new object is followed;
 *  2. its entry count grows strictly in every interval (see 6);
 *  3. its retained size never shrinks and grows by at least
 *     min_growth_bytes in total (a quarter of that for keyed collections
 *     and listener lists, which rule 4 or their content already
 *     mark).  (Not strictly in every interval: a
 *     dictionary of interned keys and Smi values retains only its backing
 *     store, which grows by doubling, so it can stay flat for an interval
 *     while entries are added.);
 *  4. keyed collections (Map, Set, dictionary objects) keep at least
 *     min_retention of the entries (child object ids) they held in the
 *     previous snapshot: a cache that leaks keeps what it had, while a
 *     fluctuating map or a churning one replaces its entries.  They
 *     must also keep half that share of the first snapshot's entries
 *     to the last: a map whose entries expire loses them all over the
 *     series even when it grows with the traffic.  Queues are exempt: a
 *     queue that leaks still drains from its head;
 *  5. queues (arrays that are not listener lists, and linked lists) grew
 *     in at least three intervals, or kept at least min_retention of
 *     their entries (by node id) over the last interval.  Otherwise
 *     their length is the only evidence, and a length that fluctuates at
 *     random grows in both intervals of a 3-snapshot series one time in
 *     six: such a queue is a suspect, returned (after the flagged
 *     findings, with suspect set) only when o->suspects asks for it;
 *  6. a Map or Set of Smis only, measured by its capacity, is a suspect
 *     at best: entries never shrink and quadruple from first to last;
 *  7. it is not levelling off: its entries grew in the last interval by
 *     at least a quarter of their largest growth in one interval (a
 *     cache filling a bounded key space slows down as it fills);
 *  8. when it is one of at least 4 like containers (the same edge of
 *     holders of one hidden class: per-connection buffers), the group's
 *     entries per member grow in every interval too; else it is a
 *     suspect.  The group is listed once.
 *
 * Findings nested in another finding (dominated by its node in the last
 * snapshot) are dropped, so a leaking table of sessions is reported once
 * and not again for each growing session inside it.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"

void hs_leak_options_default(hs_leak_options_t *o)
{
  o->min_entries = 8;
  o->min_growth_bytes = 4096;
  o->min_retention = 0.5;
  o->suspects = 0;
}

const char *hs_leak_kind_name(hs_leak_kind_t k)
{
  switch (k) {
  case HS_LEAK_CACHE: return "cache";
  case HS_LEAK_QUEUE: return "queue";
  case HS_LEAK_LISTENERS: return "listeners";
  default: return "other";
  }
}

const char *hs_leak_remedy(hs_leak_kind_t k)
{
  switch (k) {
  case HS_LEAK_CACHE:
    return "bound it with a max size and a TTL (an LRU), or move it to "
           "Redis or memcached";
  case HS_LEAK_QUEUE:
    return "bound the queue (drop or reject when full, apply backpressure) "
           "or drain it faster than it fills";
  case HS_LEAK_LISTENERS:
    return "remove listeners when done (off/removeListener, once), or "
           "register one listener instead of one per request";
  default:
    return "bound the collection or release its entries";
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

/* --- Retention: does a collection keep its entries? --- */

typedef struct {
  uint32_t group;  /* entry number within the container */
  uint64_t key;    /* identity of one member (key or value) */
} ekey_t;

static uint64_t fnv64(const char *p)
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
    return fnv64(hs_node_name(s, t)) | 1;
  return (uint64_t)s->node_id[t] << 1;
}

typedef struct {
  ekey_t *v;
  uint32_t n, cap, groups;
  int err;
} ekeys_t;

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
      ek_add(k, k->groups++, fnv64(buf) | 1);
    } else if (ek == HS_EDGE_PROPERTY) {
      const char *nm = hs_str(s, s->edge_name[e]);
      if (strcmp(nm, "__proto__") && strcmp(nm, "constructor"))
        ek_add(k, k->groups++, fnv64(nm) | 1);
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
static double kept_share(const hs_snapshot_t *sa, uint32_t na,
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

/* --- Queues: did the entries outlive an interval? --- */

typedef struct {
  const hs_snapshot_t *s;
  uint32_t *ids;
  uint32_t n, cap;
  int err;
} qids_t;

static void q_add(void *ctx, uint32_t node)
{
  qids_t *q = ctx;
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
static double ids_kept(qids_t *a, qids_t *b)
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

static double queue_kept(const hs_snapshot_t *sa, uint32_t na,
                         const hs_snapshot_t *sb, uint32_t nb, uint8_t kind)
{
  qids_t a = {sa, NULL, 0, 0, 0}, b = {sb, NULL, 0, 0, 0};
  hs__queue_members(sa, na, kind, q_add, &a);
  hs__queue_members(sb, nb, kind, q_add, &b);
  double r = ids_kept(&a, &b);
  free(a.ids);
  free(b.ids);
  return r;
}

/* Whether most entries are functions: a listener list. */
static int mostly_closures(const hs_snapshot_t *s, uint32_t n, uint8_t kind)
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

/* Retained size that measures a container in snapshot s. Lists held by
 * a closure context are measured by their head (the context holds other
 * variables too); every other container by its own node. */
static uint64_t measure(const hs_snapshot_t *s, uint32_t n, uint8_t kind)
{
  if (kind == HS_CONT_CHAIN &&
      !strncmp(hs_node_name(s, n), "system /", 8)) {
    uint32_t via;
    hs__chain_via(s, n, &via);
    if (via != UINT32_MAX)
      return s->retained[s->edge_to[via]];
  }
  return s->retained[n];
}

/* Same edge in two snapshots: same kind and same name (by text) or
 * index. */
static int same_edge(const hs_snapshot_t *a, uint32_t ea,
                     const hs_snapshot_t *b, uint32_t eb)
{
  uint8_t k = a->edge_kind[ea];
  if (b->edge_kind[eb] != k)
    return 0;
  if (k == HS_EDGE_ELEMENT || k == HS_EDGE_HIDDEN)
    return a->edge_name[ea] == b->edge_name[eb];
  return !strcmp(hs_str(a, a->edge_name[ea]), hs_str(b, b->edge_name[eb]));
}

/* The node that held the place of `n` (of the last snapshot) in snapshot
 * s: the target of the same edge from the same holder (n's BFS parent,
 * found by id), if it has n's type and class.  This follows a container
 * the program replaces (queue = queue.filter(...), cache = new
 * Map(cache)), which gets a new id.  UINT32_MAX when there is none. */
static uint32_t find_by_holder(const hs_snapshot_t *last, const hs_bfs_t *b,
                               uint32_t n, const hs_snapshot_t *s)
{
  uint32_t pe = b->prev_edge[n], h = b->prev_node[n];
  if (pe == UINT32_MAX || h == UINT32_MAX || h == 0)
    return UINT32_MAX;
  /* Only places the program names: a property, a variable, an index.  A
   * slot of a hash table holds another entry after a rehash. */
  uint8_t k = last->edge_kind[pe];
  if (k != HS_EDGE_PROPERTY && k != HS_EDGE_CONTEXT && k != HS_EDGE_ELEMENT)
    return UINT32_MAX;
  uint32_t sh = hs_find_id(s, last->node_id[h]);
  if (sh == UINT32_MAX)
    return UINT32_MAX;
  char b1[64], b2[64];
  for (uint32_t e = s->first_edge[sh]; e < s->first_edge[sh + 1]; e++) {
    if (!same_edge(last, pe, s, e))
      continue;
    uint32_t t = s->edge_to[e];
    if (s->node_kind[t] == last->node_kind[n] &&
        !strcmp(hs_node_class(s, t, b1, sizeof b1),
                hs_node_class(last, n, b2, sizeof b2)))
      return t;
    return UINT32_MAX;
  }
  return UINT32_MAX;
}

/* --- Groups: one of many like containers --- */

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
} group_key_t;

static int numbered_edge(const hs_snapshot_t *s, uint32_t e)
{
  return hs__edge_number(s, e) >= 0;
}

static int group_key(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t c,
                     uint8_t kind, group_key_t *k)
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

static int same_key(const group_key_t *a, const group_key_t *b)
{
  return a->shape_id == b->shape_id && a->ekind == b->ekind &&
         a->ckind == b->ckind && a->kind == b->kind &&
         (a->shape_id || !strcmp(a->holder, b->holder)) &&
         ((!a->ename && !b->ename) ||
          (a->ename && b->ename && !strcmp(a->ename, b->ename))) &&
         !strcmp(a->cname, b->cname);
}

/* Whether x of snapshot s (with BFS b) belongs to group k. */
static int in_group(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t x,
                    const group_key_t *k)
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
static uint32_t group_measure_all(const hs_snapshot_t *s, const hs_bfs_t *b,
                                  const group_key_t *k, uint64_t *total,
                                  uint64_t *ret, void *ids)
{
  uint32_t count = 0;
  *total = 0;
  if (ret)
    *ret = 0;
  for (uint32_t x = 1; x < s->node_count; x++)
    if (in_group(s, b, x, k)) {
      count++;
      *total += hs_container_entries(s, x, (hs_cont_kind_t)k->kind);
      if (ret)
        *ret += s->retained[x];
      if (ids)
        hs__queue_members(s, x, HS_CONT_ARRAY, q_add, ids);
    }
  return count;
}

static uint32_t group_measure(const hs_snapshot_t *s, const hs_bfs_t *b,
                              const group_key_t *k, uint64_t *total)
{
  return group_measure_all(s, b, k, total, NULL, NULL);
}

static uint64_t key_hash(const group_key_t *k)
{
  uint64_t h = fnv64(k->cname) ^ (fnv64(k->ename ? k->ename : "#") * 31);
  h ^= ((uint64_t)k->shape_id << 20) ^ ((uint64_t)k->ekind << 8) ^
       ((uint64_t)k->ckind << 4) ^ k->kind;
  if (!k->shape_id)
    h ^= fnv64(k->holder) * 7;
  return h * 0x9e3779b97f4a7c15ull;
}

/* A group of like containers in the last snapshot (rule 9). */
typedef struct {
  group_key_t key;
  uint32_t members;
  uint64_t total;
  uint32_t rep;          /* the member with the most entries */
  uint32_t rep_entries;
} gcand_t;

static int cmp_gcand(const void *a, const void *b)
{
  const gcand_t *x = a, *y = b;
  return x->total > y->total ? -1 : x->total < y->total;
}

/* Groups of at least min_members arrays or Map-likes of the last
 * snapshot, with at least min_entries entries among them, the largest
 * first, at most max.  Returns the count or -ENOMEM. */
static int group_candidates(const hs_snapshot_t *s, const hs_bfs_t *b,
                            uint32_t min_members, uint32_t min_entries,
                            int max, gcand_t **out)
{
  size_t tsize = 1024;
  while (tsize < (size_t)s->node_count / 4)
    tsize *= 2;
  gcand_t *tab = calloc(tsize, sizeof *tab);
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
    group_key_t k;
    if (!group_key(s, b, x, kind, &k))
      continue;
    size_t i = key_hash(&k) & (tsize - 1);
    while (tab[i].members && !same_key(&tab[i].key, &k))
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

static int is_nested(const hs_snapshot_t *s, uint32_t n, const uint32_t *set,
                     int cnt)
{
  for (uint32_t d = s->idom[n], steps = 0; d != 0 && steps < s->node_count;
       d = s->idom[d], steps++)
    for (int i = 0; i < cnt; i++)
      if (set[i] == d)
        return 1;
  return 0;
}

static int cmp_leak(const void *a, const void *b)
{
  const hs_leak_t *x = a, *y = b;
  if (x->suspect != y->suspect)
    return x->suspect - y->suspect;
  if (x->growth_bytes != y->growth_bytes)
    return x->growth_bytes > y->growth_bytes ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

void hs_leaks_free(hs_leak_t *l, int count, int nsnap)
{
  (void)nsnap;
  if (!l)
    return;
  for (int i = 0; i < count; i++) {
    free(l[i].name);
    free(l[i].ctor);
    free(l[i].path);
    free(l[i].entries);
    free(l[i].retained);
    free(l[i].group_entries);
    free(l[i].group_members);
  }
  free(l);
}

static char *dup_or_empty(const char *p)
{
  return strdup(p ? p : "");
}

/* Fills names and the path of finding l from the last snapshot. */
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

static int describe(hs_leak_t *l, const hs_snapshot_t *s, const hs_bfs_t *b,
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
      if (!strncmp(hs_node_name(s, n), "system /", 8)) {
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

/* Appends a zeroed finding on `node` with entries and retained arrays of
 * n, growing the three parallel arrays.  NULL on out of memory (a
 * finding whose arrays failed is still counted, so it is freed). */
static hs_leak_t *add_finding(hs_leak_t **found, uint32_t **fnode,
                              uint8_t **fkind, int *nfound, int *cap,
                              uint32_t node, uint8_t kind, int n)
{
  if (*nfound == *cap) {
    int ncap = *cap ? *cap * 2 : 16;
    hs_leak_t *nf = realloc(*found, sizeof *nf * (size_t)ncap);
    if (!nf)
      return NULL;
    *found = nf;
    uint32_t *nn = realloc(*fnode, sizeof *nn * (size_t)ncap);
    if (!nn)
      return NULL;
    *fnode = nn;
    uint8_t *nk = realloc(*fkind, (size_t)ncap);
    if (!nk)
      return NULL;
    *fkind = nk;
    *cap = ncap;
  }
  hs_leak_t *l = &(*found)[*nfound];
  memset(l, 0, sizeof *l);
  (*fnode)[*nfound] = node;
  (*fkind)[*nfound] = kind;
  (*nfound)++;
  l->entries = malloc(sizeof(uint32_t) * (size_t)n);
  l->retained = malloc(sizeof(uint64_t) * (size_t)n);
  return l->entries && l->retained ? l : NULL;
}

int hs_leaks(hs_snapshot_t **snaps, int n, const hs_leak_options_t *o,
             hs_leak_t **out)
{
  hs_leak_options_t def;
  if (!o) {
    hs_leak_options_default(&def);
    o = &def;
  }
  if (n < 3 || !snaps || !out)
    return -EINVAL;
  for (int j = 0; j < n; j++) {
    if (!snaps[j]->retained && hs_dominators(snaps[j]) < 0)
      return -ENOMEM;
    if (hs_id_index(snaps[j]) < 0 || hs__shapes(snaps[j]) < 0)
      return -ENOMEM;
  }
  hs_snapshot_t *last = snaps[n - 1];
  hs_container_t *cands = NULL;
  int nc = hs_containers(last, o->min_entries, &cands);
  if (nc < 0)
    return nc;
  uint32_t *nodes = malloc(sizeof(uint32_t) * (size_t)n);
  uint32_t *ent = malloc(sizeof(uint32_t) * (size_t)n);
  uint64_t *ret = malloc(sizeof(uint64_t) * (size_t)n);
  hs_leak_t *found = NULL;
  uint32_t *found_node = NULL;
  uint8_t *found_kind = NULL;
  int nfound = 0, cap = 0, rc = -ENOMEM;
  hs_bfs_t bfs = {0};
  /* BFS of every snapshot, built when a group needs it; the last one's
   * is bfs. */
  hs_bfs_t *bfs_of = calloc((size_t)n, sizeof *bfs_of);
  gcand_t *gc = NULL;
  if (!nodes || !ent || !ret || !bfs_of)
    goto done;
  if (hs_bfs(last, &bfs) < 0)
    goto done;
  for (int c = 0; c < nc; c++) {
    hs_container_t *k = &cands[c];
    uint32_t id = last->node_id[k->node];
    /* Measure in every snapshot.  A container may be missing from the
     * leading snapshots (created later: an EventEmitter's listener array
     * appears with the second listener) if it is present in at least three;
     * there it counts as empty. */
    int ok = 1, first = -1, est = 0;
    for (int j = 0; j < n && ok; j++) {
      hs_snapshot_t *s = snaps[j];
      nodes[j] = j == n - 1 ? k->node : hs_find_id(s, id);
      if (nodes[j] == UINT32_MAX && k->kind != HS_CONT_CHAIN)
        nodes[j] = find_by_holder(last, &bfs, k->node, s);
      if (nodes[j] == UINT32_MAX) {
        if (first >= 0) {
          ok = 0;
          break;
        }
        ent[j] = 0;
        ret[j] = 0;
        continue;
      }
      if (first < 0)
        first = j;
      ent[j] = j == n - 1 ? k->entries
                          : hs_container_entries(s, nodes[j],
                                                 (hs_cont_kind_t)k->kind);
      ret[j] = measure(s, nodes[j], k->kind);
      if (!est)
        est = hs__entries_estimated(s, nodes[j], (hs_cont_kind_t)k->kind);
      if (j > 0 && (ent[j] < ent[j - 1] || ret[j] < ret[j - 1]))
        ok = 0;
      if (j > 0 && ent[j] == ent[j - 1] && !est)
        ok = 0;
    }
    if (!ok || first < 0 || n - first < 3)
      continue;
    /* A table of Smis is measured by its capacity, which doubles: its
     * entries grew when the capacity quadrupled (the live entries went
     * from at most the first capacity to at least a quarter of the
     * last) and never shrank.  Nothing tells whether they grew in every
     * interval, or whether a fluctuating map merely reached a new peak,
     * so it is a suspect at best. */
    if (est && (ent[first] == ent[n - 1] ||
                (uint64_t)ent[n - 1] < 4 * (uint64_t)ent[first] ||
                !o->suspects))
      continue;
    /* A collection that is levelling off (a cache filling a bounded key
     * space, an LRU short of its cap) grows less and less: it grew in
     * the last interval by under a quarter of its largest growth.  A
     * leak's growth follows the traffic and stays of one order. */
    if (!est) {
      uint32_t top = 0;
      for (int j = first + 1; j < n; j++)
        if (ent[j] - ent[j - 1] > top)
          top = ent[j] - ent[j - 1];
      if (4 * (uint64_t)(ent[n - 1] - ent[n - 2]) < top)
        continue;
    }
    /* Arrays and lists carry no retention evidence (a leaking queue still
     * turns its entries over), so they need the full byte threshold; keyed
     * collections and listener lists need a quarter of it. */
    int listeners = k->kind != HS_CONT_CHAIN &&
                    mostly_closures(last, k->node, k->kind);
    uint64_t need = o->min_growth_bytes;
    if (listeners || k->kind == HS_CONT_MAP || k->kind == HS_CONT_DICT)
      need /= 4;
    if (ret[n - 1] - ret[first] < need)
      continue;
    double retention = -1.0;
    int suspect = 0;
    if ((k->kind == HS_CONT_ARRAY && !listeners) ||
        k->kind == HS_CONT_CHAIN) {
      /* A queue has only its length as evidence unless its entries
       * outlive an interval.  Growth in two intervals is what a length
       * that fluctuates at random shows one time in six, so it takes
       * three growing intervals, or a queue that kept at least
       * min_retention of its entries over the last one (a stalled or
       * append-only queue: a fluctuating one drains between snapshots). */
      retention = queue_kept(snaps[n - 2], nodes[n - 2], last, k->node,
                             k->kind);
      if (n - 1 - first < 3 && retention < o->min_retention)
        suspect = 1;
      if (suspect && !o->suspects)
        continue;
    }
    if (est) {
      suspect = 1;
      retention = -1.0; /* no entry identity to compare */
    }
    if ((k->kind == HS_CONT_MAP || k->kind == HS_CONT_DICT) && !est) {
      retention = 1.0;
      for (int j = first; j + 1 < n; j++) {
        double r = kept_share(snaps[j], nodes[j], snaps[j + 1], nodes[j + 1],
                              k->kind);
        if (r < retention)
          retention = r;
      }
      if (retention < o->min_retention)
        continue;
      /* A leak keeps its oldest entries; a map that expires or evicts
       * them (a TTL cache, sessions, an LRU whose traffic fluctuates)
       * loses the first snapshot's entries over the series even when it
       * keeps most of them over each interval. */
      double span = kept_share(snaps[first], nodes[first], last, k->node,
                               k->kind);
      if (span < o->min_retention / 2)
        continue;
    }
    hs_leak_t *l = add_finding(&found, &found_node, &found_kind, &nfound,
                               &cap, k->node, k->kind, n);
    if (!l)
      goto done;
    memcpy(l->entries, ent, sizeof(uint32_t) * (size_t)n);
    memcpy(l->retained, ret, sizeof(uint64_t) * (size_t)n);
    l->id = id;
    l->growth_bytes = (int64_t)(ret[n - 1] - ret[0]);
    l->retention = retention;
    l->suspect = suspect;
    l->estimated = est;
    if (k->kind == HS_CONT_CHAIN)
      l->kind = HS_LEAK_QUEUE;
    else if (listeners)
      l->kind = HS_LEAK_LISTENERS;
    else if (k->kind == HS_CONT_ARRAY)
      l->kind = HS_LEAK_QUEUE;
    else
      l->kind = HS_LEAK_CACHE;
  }
  /* A finding that is one of many like containers (rule 8) is judged
   * with its group: the group's entries per member must grow in every
   * interval too, else it is a suspect (one of many fluctuating
   * per-connection buffers that went up by chance).  Either way the
   * group is listed once: its other findings are folded into the first
   * (flagged ones are looked at before suspects). */
  if (nfound > 0) {
    group_key_t *keys = calloc((size_t)nfound, sizeof *keys);
    uint8_t *has = calloc((size_t)nfound, 1);
    if (!keys || !has) {
      free(keys);
      free(has);
      goto done;
    }
    for (int i = 0; i < nfound; i++)
      has[i] = !found[i].estimated &&
               group_key(last, &bfs, found_node[i], found_kind[i], &keys[i]);
    int err = 0;
    for (int pass = 0; pass < 2 && !err; pass++)
      for (int i = 0; i < nfound && !err; i++) {
        if (!has[i] || found[i].suspect != pass)
          continue;
        has[i] = 0;
        for (int j = 0; j < nfound; j++)
          if (has[j] && same_key(&keys[i], &keys[j])) {
            has[j] = 0;
            found[j].suspect = 2; /* folded into i, dropped below */
          }
        uint64_t tot;
        uint32_t members = group_measure(last, &bfs, &keys[i], &tot);
        if (members < 4)
          continue;
        uint64_t *ge = calloc((size_t)n, sizeof *ge);
        uint32_t *gm = calloc((size_t)n, sizeof *gm);
        found[i].group_entries = ge;
        found[i].group_members = gm;
        if (!ge || !gm) {
          err = 1;
          break;
        }
        ge[n - 1] = tot;
        gm[n - 1] = members;
        for (int j = 0; j < n - 1; j++) {
          if (!bfs_of[j].prev_edge && hs_bfs(snaps[j], &bfs_of[j]) < 0) {
            err = 1;
            break;
          }
          gm[j] = group_measure(snaps[j], &bfs_of[j], &keys[i], &ge[j]);
        }
        found[i].siblings = members - 1;
        /* Entries per member: more connections, each with a bounded
         * buffer, is not a leak of the buffers (a leak of connections
         * shows in the collection that holds them). */
        int grows = 1;
        for (int j = 1; j < n; j++)
          if (!gm[j] || !gm[j - 1] ||
              ge[j] * gm[j - 1] <= ge[j - 1] * gm[j])
            grows = 0;
        if (!grows)
          found[i].suspect = 1;
      }
    free(keys);
    free(has);
    if (err)
      goto done;
  }
  /* Rule 9: a group of like containers that leaks as a whole, when no
   * member is a finding on its own (every customer's history grows by a
   * few entries an interval).  The group is measured as one collection:
   * its total entries and retained sizes over its members. */
  {
    int ng = group_candidates(last, &bfs, 8, o->min_entries, 64, &gc);
    if (ng < 0)
      goto done;
    uint64_t *ge = malloc(sizeof *ge * (size_t)n);
    uint64_t *gr = malloc(sizeof *gr * (size_t)n);
    uint32_t *gm = malloc(sizeof *gm * (size_t)n);
    qids_t qa = {snaps[n - 2], NULL, 0, 0, 0}, qb = {last, NULL, 0, 0, 0};
    int err = !ge || !gr || !gm;
    for (int g = 0; g < ng && !err; g++) {
      group_key_t *k = &gc[g].key;
      int dup = 0;
      for (int i = 0; i < nfound && !dup; i++) {
        group_key_t fk;
        dup = group_key(last, &bfs, found_node[i], found_kind[i], &fk) &&
              same_key(&fk, k);
      }
      if (dup)
        continue;
      int ok = 1;
      qa.n = qb.n = 0;
      for (int j = n - 1; j >= 0 && ok; j--) {
        if (j < n - 1 && !bfs_of[j].prev_edge &&
            hs_bfs(snaps[j], &bfs_of[j]) < 0) {
          err = 1;
          break;
        }
        const hs_bfs_t *bj = j == n - 1 ? &bfs : &bfs_of[j];
        qids_t *ids = k->kind != HS_CONT_ARRAY ? NULL
                      : j == n - 1                ? &qb
                      : j == n - 2                ? &qa
                                                  : NULL;
        gm[j] = group_measure_all(snaps[j], bj, k, &ge[j], &gr[j], ids);
        if (gm[j] < 4 ||
            (j < n - 1 && (ge[j] >= ge[j + 1] || gr[j] > gr[j + 1] ||
                           ge[j] * gm[j + 1] >= ge[j + 1] * gm[j])))
          ok = 0;
      }
      if (!ok || gr[n - 1] - gr[0] < o->min_growth_bytes)
        continue;
      /* The members themselves grow: those in the first snapshot and the
       * last (by id) account for at least half the group's growth.  A
       * table of orders whose new rows have longer item lists grows as a
       * group while no list ever grows. */
      int64_t kept_growth = 0;
      for (uint32_t x = 1; x < last->node_count; x++) {
        if (!in_group(last, &bfs, x, k))
          continue;
        uint32_t f = hs_find_id(snaps[0], last->node_id[x]);
        if (f == UINT32_MAX)
          continue;
        kept_growth +=
            (int64_t)hs_container_entries(last, x, (hs_cont_kind_t)k->kind) -
            (int64_t)hs_container_entries(snaps[0], f, (hs_cont_kind_t)k->kind);
      }
      if (2 * kept_growth < (int64_t)(ge[n - 1] - ge[0]))
        continue;
      uint64_t top = 0;
      for (int j = 1; j < n; j++)
        if (ge[j] - ge[j - 1] > top)
          top = ge[j] - ge[j - 1];
      if (4 * (ge[n - 1] - ge[n - 2]) < top)
        continue;
      /* Evidence beyond the totals, as for a queue (rule 5): three
       * growing intervals, or arrays that kept half their entries over
       * the last one. */
      double retention = -1.0;
      int suspect = 0;
      if (k->kind == HS_CONT_ARRAY) {
        if (qa.err || qb.err) {
          err = 1;
          break;
        }
        retention = ids_kept(&qa, &qb);
      }
      if (n - 1 < 3 && retention < o->min_retention)
        suspect = 1;
      if (suspect && !o->suspects)
        continue;
      hs_leak_t *l = add_finding(&found, &found_node, &found_kind, &nfound,
                                 &cap, gc[g].rep, k->kind, n);
      if (l) {
        l->group_entries = malloc(sizeof(uint64_t) * (size_t)n);
        l->group_members = malloc(sizeof(uint32_t) * (size_t)n);
      }
      if (!l || !l->group_entries || !l->group_members) {
        err = 1;
        break;
      }
      for (int j = 0; j < n; j++) {
        l->entries[j] = ge[j] > UINT32_MAX ? UINT32_MAX : (uint32_t)ge[j];
        l->retained[j] = gr[j];
        l->group_entries[j] = ge[j];
        l->group_members[j] = gm[j];
      }
      l->id = last->node_id[gc[g].rep];
      l->siblings = gm[n - 1] - 1;
      l->growth_bytes = (int64_t)(gr[n - 1] - gr[0]);
      l->retention = retention;
      l->suspect = suspect;
      l->whole_group = 1;
      if (k->kind == HS_CONT_MAP)
        l->kind = HS_LEAK_CACHE;
      else if (mostly_closures(last, gc[g].rep, k->kind))
        l->kind = HS_LEAK_LISTENERS;
      else
        l->kind = HS_LEAK_QUEUE;
    }
    free(qa.ids);
    free(qb.ids);
    free(ge);
    free(gr);
    free(gm);
    if (err)
      goto done;
  }
  if (!o->suspects)
    for (int i = 0; i < nfound; i++)
      if (found[i].suspect == 1)
        found[i].suspect = 2;
  /* Drop findings nested in other findings, and the second finding on a
   * node (a dictionary that also holds a list). */
  int w = 0;
  for (int i = 0; i < nfound; i++) {
    int drop = found[i].suspect == 2;
    for (int j = 0; j < nfound && !drop; j++)
      if (j != i && found[j].suspect != 2 &&
          (!found[j].suspect || found[i].suspect))
        drop = is_nested(last, found_node[i], &found_node[j], 1);
    for (int j = 0; j < i && !drop; j++)
      if (found_node[j] == found_node[i])
        drop = 1;
    if (drop) {
      free(found[i].entries);
      free(found[i].retained);
      free(found[i].group_entries);
      free(found[i].group_members);
      continue;
    }
    found[w] = found[i];
    found_node[w] = found_node[i];
    found_kind[w] = found_kind[i];
    w++;
  }
  nfound = w;
  if (nfound > 0) {
    for (int i = 0; i < nfound; i++)
      if (describe(&found[i], last, &bfs, found_node[i], found_kind[i]) < 0)
        goto done;
    /* Sort findings and their side arrays together by growth. */
    qsort(found, (size_t)nfound, sizeof *found, cmp_leak);
  }
  *out = found;
  found = NULL;
  rc = nfound;
done:
  if (found)
    hs_leaks_free(found, nfound, n);
  if (bfs_of)
    for (int j = 0; j < n - 1; j++)
      hs_bfs_free(&bfs_of[j]);
  free(bfs_of);
  free(gc);
  hs_bfs_free(&bfs);
  free(found_node);
  free(found_kind);
  free(nodes);
  free(ent);
  free(ret);
  free(cands);
  return rc;
}
