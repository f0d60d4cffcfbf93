/* leaks.c -- unbounded caches and queues over a series of snapshots: the
 * model of a leak, and the decision that follows it.  (The one
 * description of the analysis: tools/heap/README.md links here.)
 *
 * THE MODEL.  A collection leaks when the program adds to it for as long
 * as it runs and keeps what it added: nothing bounds it.  A series of
 * snapshots shows a bounded collection that looks like a leak in five
 * ways, and each kind of evidence below rules out one of them.  The
 * candidates are the collections of the last snapshot (containers.c,
 * chains.c) with at least min_entries entries.
 *
 *  1. Identity (follow): it is the same collection throughout, found by
 *     node id (V8's ids are stable for live objects), or, where the
 *     program replaced it (queue = queue.filter(...), new Map(old)), by
 *     its place: the same named edge from the same holder, to an object
 *     of its type and class.  It is there in at least MIN_PRESENT
 *     snapshots and in every one after it first appears (before: empty;
 *     an EventEmitter's listener array appears with its second listener).
 *     Without it two different objects would be compared.
 *  2. Growth (grows, grew_enough): its entries grow in every interval
 *     and its retained size never shrinks; over the series the size grows
 *     by min_growth_bytes, a KEYED_GROWTH_DIVISOR-th of that for keyed
 *     collections and listener lists (retention, or content, is evidence
 *     of their own).  A collection that ever shrank is bounded by
 *     something.  (Retained size is not required to grow in every
 *     interval: a dictionary of interned keys and Smi values retains only
 *     its backing store, which doubles.)
 *  3. Steadiness (steady): its growth in the last interval is at least a
 *     STEADY_SHARE of its largest growth in one interval.  A cache filling
 *     a bounded key space, an LRU short of its cap, slow down as they
 *     fill; a leak's growth follows the traffic and stays of one order.
 *  4. Retention (keeps_entries, queue_evidence): a leak keeps what it
 *     had.  Keyed collections (Map, Set, dictionaries) keep min_retention
 *     of the previous snapshot's entries in every interval, and
 *     SPAN_RETENTION_SHARE of that share of the first snapshot's entries
 *     to the last: a fluctuating or churning map replaces its entries, a
 *     TTL cache or an LRU loses its oldest ones even while it grows.  A
 *     queue that leaks still drains from its head, so for queues (arrays
 *     that are not listener lists, linked lists) retention is not
 *     required but counts as evidence: without it only the length
 *     speaks, and a length that fluctuates at random grows in both
 *     intervals of a 3-snapshot series one time in six.  Such a queue
 *     needs QUEUE_GROWING_INTERVALS growing intervals, or min_retention
 *     of its entries kept over the last interval.  A Map or Set of Smis
 *     is measured by its capacity and has no entry identity at all
 *     (capacity_evidence): its entries must never shrink and grow
 *     SMI_GROWTH_FACTOR times from first to last.
 *  5. Membership (group_evidence, whole_groups): a collection that is one
 *     of at least GROUP_MIN_MEMBERS like containers (the same edge of
 *     holders of one shape: per-connection buffers, leak_groups.c) leaks
 *     only if its group's entries per member grow in every interval too:
 *     more connections, each with a bounded buffer, is not a leak of the
 *     buffers.  The group is listed once.  And a group of at least
 *     WHOLE_GROUP_MIN_MEMBERS like containers, none flagged alone (each
 *     customer's history grows by a few entries; a suspect member, one
 *     history drained as a queue, does not count), is judged as one
 *     collection: its totals must show growth, steadiness and, for
 *     arrays, retention as above, and its persisting members (in the
 *     first snapshot and the last) must carry PERSISTING_SHARE of its
 *     growth: a table of orders whose new rows have longer item lists
 *     grows as a group while no list grows.
 *
 * THE DECISION (judge).  A candidate that fails identity, growth,
 * steadiness or keyed retention is fine.  One whose only evidence is a
 * length (a queue short of both growing intervals and retention, a table
 * measured by capacity, a member of a group whose members do not grow) is
 * a suspect, returned after the flagged findings only when o->suspects
 * asks.  Any other is a leak.  Findings nested in another finding
 * (dominated by its node in the last snapshot) are dropped, so a leaking
 * table of sessions is reported once and not again for each session.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hs_internal.h"
#include "leak_internal.h"

/* The model's constants (see above). */
#define MIN_PRESENT 3              /* snapshots a collection must be in */
#define KEYED_GROWTH_DIVISOR 4     /* keyed and listeners: need / 4 bytes */
#define STEADY_SHARE_DIVISOR 4     /* last growth >= largest / 4 */
#define QUEUE_GROWING_INTERVALS 3  /* a length alone: three growing intervals */
#define SMI_GROWTH_FACTOR 4        /* capacity-measured: 4x first to last */
#define SPAN_RETENTION_SHARE 0.5   /* first-to-last: half of min_retention */
#define GROUP_MIN_MEMBERS 4        /* a finding judged with its group */
#define WHOLE_GROUP_MIN_MEMBERS 8  /* a group judged as one collection */
#define WHOLE_GROUP_MAX 64         /* largest groups looked at */
#define PERSISTING_SHARE_DIVISOR 2 /* persisting members: >= half the growth */

typedef enum { V_FINE, V_SUSPECT, V_LEAK } verdict_t;

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

/* --- Measuring and following a container ----------------------------------- */

/* Retained size that measures a container in snapshot s. Lists held by
 * a closure context are measured by their head (the context holds other
 * variables too); every other container by its own node. */
static uint64_t measure(const hs_snapshot_t *s, uint32_t n, uint8_t kind)
{
  if (kind == HS_CONT_CHAIN &&
      hs__is_context(s, n)) {
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

/* --- Identity ------------------------------------------------------------ */

/* One candidate across the series. */
typedef struct {
  int n;           /* snapshots */
  int first;       /* the first it is present in, or -1 */
  uint32_t *node;  /* per snapshot: its node, UINT32_MAX when absent */
  uint32_t *ent;   /* entries (0 when absent) */
  uint64_t *ret;   /* retained size (0 when absent) */
  uint8_t *est;    /* 1: entries estimated from a capacity there */
} series_t;

/* Evidence 1: finds container k (of the last snapshot) in every snapshot
 * and measures it there.  False when it is missing after it first
 * appeared, or present in fewer than MIN_PRESENT snapshots. */
static bool follow(hs_snapshot_t **snaps, const hs_bfs_t *last_bfs,
                   const hs_container_t *k, series_t *sr)
{
  int n = sr->n;
  hs_snapshot_t *last = snaps[n - 1];
  uint32_t id = last->node_id[k->node];
  sr->first = -1;
  for (int j = 0; j < n; j++) {
    hs_snapshot_t *s = snaps[j];
    uint32_t x = j == n - 1 ? k->node : hs_find_id(s, id);
    if (x == UINT32_MAX && k->kind != HS_CONT_CHAIN)
      x = find_by_holder(last, last_bfs, k->node, s);
    sr->node[j] = x;
    sr->est[j] = 0;
    if (x == UINT32_MAX) {
      if (sr->first >= 0)
        return false;
      sr->ent[j] = 0;
      sr->ret[j] = 0;
      continue;
    }
    if (sr->first < 0)
      sr->first = j;
    sr->ent[j] = j == n - 1 ? k->entries
                            : hs_container_entries(s, x,
                                                   (hs_cont_kind_t)k->kind);
    sr->ret[j] = measure(s, x, k->kind);
    sr->est[j] = (uint8_t)hs__entries_estimated(s, x, (hs_cont_kind_t)k->kind);
  }
  return sr->first >= 0 && n - sr->first >= MIN_PRESENT;
}

/* Whether entries were estimated from a capacity in any snapshot up to
 * and including J. */
static bool estimated_by(const series_t *sr, int j)
{
  for (int i = 0; i <= j; i++)
    if (sr->est[i])
      return true;
  return false;
}

/* --- Growth and steadiness -------------------------------------------------- */

/* Evidence 2, per interval from its first appearance (from empty, when
 * that is not the first snapshot): entries and retained size never
 * shrink, and entries strictly grow (counted from a capacity they may stay
 * level). */
static bool grows(const series_t *sr)
{
  for (int j = sr->first > 0 ? sr->first : 1; j < sr->n; j++) {
    if (sr->ent[j] < sr->ent[j - 1] || sr->ret[j] < sr->ret[j - 1])
      return false;
    if (sr->ent[j] == sr->ent[j - 1] && !estimated_by(sr, j))
      return false;
  }
  return true;
}

/* Evidence 2, over the series: the retained size grew by NEED bytes. */
static bool grew_enough(const uint64_t *ret, int first, int n, uint64_t need)
{
  return ret[n - 1] - ret[first] >= need;
}

/* Bytes of growth a collection must show: keyed collections and listener
 * lists carry other evidence, so a KEYED_GROWTH_DIVISOR-th. */
static uint64_t growth_needed(const hs_leak_options_t *o, uint8_t kind,
                              bool listeners)
{
  if (listeners || kind == HS_CONT_MAP || kind == HS_CONT_DICT)
    return o->min_growth_bytes / KEYED_GROWTH_DIVISOR;
  return o->min_growth_bytes;
}

/* Evidence 3: the last interval's growth is at least a
 * STEADY_SHARE_DIVISOR-th of the largest one's. */
static bool steady(const uint64_t *v, int first, int n)
{
  uint64_t top = 0;
  for (int j = first + 1; j < n; j++)
    if (v[j] - v[j - 1] > top)
      top = v[j] - v[j - 1];
  return STEADY_SHARE_DIVISOR * (v[n - 1] - v[n - 2]) >= top;
}

static bool steady_entries(const series_t *sr)
{
  uint64_t v[16];
  uint64_t *w = sr->n <= 16 ? v : malloc(sizeof *w * (size_t)sr->n);
  if (!w)
    return false;
  for (int j = 0; j < sr->n; j++)
    w[j] = sr->ent[j];
  bool r = steady(w, sr->first, sr->n);
  if (w != v)
    free(w);
  return r;
}

/* --- Retention ---------------------------------------------------------------- */

/* Evidence 4 for keyed collections: the least share of entries kept over
 * an interval (*share), and whether it and the first-to-last share are
 * enough. */
static bool keeps_entries(hs_snapshot_t **snaps, const series_t *sr,
                          uint8_t kind, const hs_leak_options_t *o,
                          double *share)
{
  int n = sr->n, first = sr->first;
  double r = 1.0;
  for (int j = first; j + 1 < n; j++) {
    double k = hs__kept_share(snaps[j], sr->node[j], snaps[j + 1],
                              sr->node[j + 1], kind);
    if (k < r)
      r = k;
  }
  *share = r;
  if (r < o->min_retention)
    return false;
  double span = hs__kept_share(snaps[first], sr->node[first], snaps[n - 1],
                               sr->node[n - 1], kind);
  return span >= o->min_retention * SPAN_RETENTION_SHARE;
}

/* Evidence 4 for queues: a leak when it grew in QUEUE_GROWING_INTERVALS
 * intervals or kept min_retention of its entries over the last one (a
 * stalled or append-only queue; a fluctuating one drains between
 * snapshots); else its length is its only evidence. */
static verdict_t queue_evidence(int growing_intervals, double kept,
                                const hs_leak_options_t *o)
{
  if (growing_intervals < QUEUE_GROWING_INTERVALS && kept < o->min_retention)
    return V_SUSPECT;
  return V_LEAK;
}

/* Evidence 4 for a table of Smis measured by its capacity: a suspect when
 * its live entries went from at most the first capacity to at least a
 * SMI_GROWTH_FACTOR-th of the last (the capacity quadrupled) and never
 * shrank; nothing tells whether they grew in every interval, or whether a
 * fluctuating map merely reached a new peak. */
static verdict_t capacity_evidence(const series_t *sr)
{
  uint32_t a = sr->ent[sr->first], z = sr->ent[sr->n - 1];
  if (a == z || (uint64_t)z < SMI_GROWTH_FACTOR * (uint64_t)a)
    return V_FINE;
  return V_SUSPECT;
}

/* --- The decision --------------------------------------------------------------- */

/* Judges candidate k over the series (evidence 1 to 4; membership comes
 * after, over all findings).  *kind_out, *retention: what a finding
 * reports. */
static verdict_t judge(hs_snapshot_t **snaps, const hs_bfs_t *last_bfs,
                       const hs_container_t *k, const hs_leak_options_t *o,
                       series_t *sr, bool *listeners, double *retention)
{
  int n = sr->n;
  *retention = -1.0;
  if (!follow(snaps, last_bfs, k, sr) || !grows(sr))
    return V_FINE;
  bool est = estimated_by(sr, n - 1);
  verdict_t v = V_LEAK;
  if (est) {
    v = capacity_evidence(sr);
    if (v == V_FINE)
      return V_FINE;
  } else if (!steady_entries(sr)) {
    return V_FINE;
  }
  *listeners = k->kind != HS_CONT_CHAIN &&
               hs__is_listener_list(snaps[n - 1], k->node, k->kind);
  if (!grew_enough(sr->ret, sr->first, n,
                   growth_needed(o, k->kind, *listeners)))
    return V_FINE;
  bool queue = (k->kind == HS_CONT_ARRAY && !*listeners) ||
               k->kind == HS_CONT_CHAIN;
  if (queue && !est) {
    *retention = hs__queue_kept(snaps[n - 2], sr->node[n - 2], snaps[n - 1],
                                k->node, k->kind);
    v = queue_evidence(n - 1 - sr->first, *retention, o);
  } /* estimated entries: capacity_evidence decided */
  if (!est && (k->kind == HS_CONT_MAP || k->kind == HS_CONT_DICT) &&
      !keeps_entries(snaps, sr, k->kind, o, retention))
    return V_FINE;
  return v;
}

static hs_leak_kind_t leak_kind(uint8_t kind, bool listeners)
{
  if (kind == HS_CONT_CHAIN)
    return HS_LEAK_QUEUE;
  if (listeners)
    return HS_LEAK_LISTENERS;
  return kind == HS_CONT_ARRAY ? HS_LEAK_QUEUE : HS_LEAK_CACHE;
}

/* --- Findings ------------------------------------------------------------------ */

/* A finding while the analysis runs: what it reports, and where. */
typedef struct {
  hs_leak_t l;
  uint32_t node;
  uint8_t kind;
  verdict_t v;
  bool folded; /* listed with another member of its group instead */
} finding_t;

typedef struct {
  finding_t *v;
  int n, cap;
} findings_t;

static void finding_free(finding_t *f)
{
  free(f->l.entries);
  free(f->l.retained);
  free(f->l.group_entries);
  free(f->l.group_members);
  free(f->l.name);
  free(f->l.ctor);
  free(f->l.path);
}

/* Appends a finding on NODE with entries and retained arrays for N
 * snapshots.  NULL on out of memory. */
static finding_t *add_finding(findings_t *fs, uint32_t node, uint8_t kind,
                              int n)
{
  if (fs->n == fs->cap) {
    int nc = fs->cap ? fs->cap * 2 : 16;
    finding_t *nv = realloc(fs->v, sizeof *nv * (size_t)nc);
    if (!nv)
      return NULL;
    fs->v = nv;
    fs->cap = nc;
  }
  finding_t *f = &fs->v[fs->n++];
  memset(f, 0, sizeof *f);
  f->node = node;
  f->kind = kind;
  f->l.entries = malloc(sizeof(uint32_t) * (size_t)n);
  f->l.retained = malloc(sizeof(uint64_t) * (size_t)n);
  return f->l.entries && f->l.retained ? f : NULL;
}

/* BFS of snapshot j, built the first time a group needs it. */
static const hs_bfs_t *bfs_at(hs_snapshot_t **snaps, hs_bfs_t *bfs_of, int j)
{
  if (!bfs_of[j].prev_edge && hs_bfs(snaps[j], &bfs_of[j]) < 0)
    return NULL;
  return &bfs_of[j];
}

/* Evidence 5, for findings: each that is one of GROUP_MIN_MEMBERS like
 * containers is judged with its group, whose entries per member must grow
 * in every interval, else it is a suspect; the group's other findings are
 * folded into the first looked at (leaks before suspects).  0 or
 * -ENOMEM. */
static int group_evidence(hs_snapshot_t **snaps, int n, hs_bfs_t *bfs_of,
                          findings_t *fs)
{
  hs_snapshot_t *last = snaps[n - 1];
  const hs_bfs_t *lb = &bfs_of[n - 1];
  hs__group_key_t *keys = calloc((size_t)fs->n, sizeof *keys);
  uint8_t *open = calloc((size_t)fs->n, 1);
  int err = 0;
  if (!keys || !open) {
    err = -ENOMEM;
    goto done;
  }
  for (int i = 0; i < fs->n; i++)
    open[i] = !fs->v[i].l.estimated &&
              hs__group_key(last, lb, fs->v[i].node, fs->v[i].kind, &keys[i]);
  static const verdict_t order[] = {V_LEAK, V_SUSPECT};
  for (int pass = 0; pass < 2 && !err; pass++)
    for (int i = 0; i < fs->n && !err; i++) {
      finding_t *f = &fs->v[i];
      if (!open[i] || f->v != order[pass])
        continue;
      open[i] = 0;
      for (int j = 0; j < fs->n; j++)
        if (open[j] && hs__same_group(&keys[i], &keys[j])) {
          open[j] = 0;
          fs->v[j].folded = true;
        }
      uint64_t tot;
      uint32_t members = hs__group_measure(last, lb, &keys[i], &tot, NULL,
                                           NULL);
      if (members < GROUP_MIN_MEMBERS)
        continue;
      uint64_t *ge = calloc((size_t)n, sizeof *ge);
      uint32_t *gm = calloc((size_t)n, sizeof *gm);
      f->l.group_entries = ge;
      f->l.group_members = gm;
      if (!ge || !gm) {
        err = -ENOMEM;
        break;
      }
      ge[n - 1] = tot;
      gm[n - 1] = members;
      for (int j = 0; j < n - 1; j++) {
        const hs_bfs_t *b = bfs_at(snaps, bfs_of, j);
        if (!b) {
          err = -ENOMEM;
          break;
        }
        gm[j] = hs__group_measure(snaps[j], b, &keys[i], &ge[j], NULL, NULL);
      }
      f->l.siblings = members - 1;
      bool per_member_grows = true;
      for (int j = 1; j < n; j++)
        if (!gm[j] || !gm[j - 1] || ge[j] * gm[j - 1] <= ge[j - 1] * gm[j])
          per_member_grows = false;
      if (!per_member_grows)
        f->v = V_SUSPECT;
    }
done:
  free(keys);
  free(open);
  return err;
}

/* The share of a group's entry growth that its persisting members (those
 * in the first snapshot and the last, by id) carry, as a test: at least a
 * PERSISTING_SHARE_DIVISOR-th. */
static bool persisting_members_grow(hs_snapshot_t **snaps, int n,
                                    const hs_bfs_t *lb,
                                    const hs__group_key_t *k,
                                    uint64_t group_growth)
{
  hs_snapshot_t *last = snaps[n - 1];
  int64_t kept_growth = 0;
  for (uint32_t x = 1; x < last->node_count; x++) {
    if (!hs__in_group(last, lb, x, k))
      continue;
    uint32_t f = hs_find_id(snaps[0], last->node_id[x]);
    if (f == UINT32_MAX)
      continue;
    kept_growth +=
        (int64_t)hs_container_entries(last, x, (hs_cont_kind_t)k->kind) -
        (int64_t)hs_container_entries(snaps[0], f, (hs_cont_kind_t)k->kind);
  }
  return PERSISTING_SHARE_DIVISOR * kept_growth >= (int64_t)group_growth;
}

/* Evidence 5, for groups no member of which is a finding: each group of
 * WHOLE_GROUP_MIN_MEMBERS like containers is judged as one collection
 * (its members' total entries and retained sizes), and added to FS when it
 * leaks (or is a suspect, when asked).  0 or -ENOMEM. */
static int whole_groups(hs_snapshot_t **snaps, int n, hs_bfs_t *bfs_of,
                        const hs_leak_options_t *o, findings_t *fs)
{
  hs_snapshot_t *last = snaps[n - 1];
  const hs_bfs_t *lb = &bfs_of[n - 1];
  hs__group_cand_t *gc = NULL;
  int ng = hs__group_candidates(last, lb, WHOLE_GROUP_MIN_MEMBERS,
                                o->min_entries, WHOLE_GROUP_MAX, &gc);
  if (ng < 0)
    return ng;
  uint64_t *ge = malloc(sizeof *ge * (size_t)n);
  uint64_t *gr = malloc(sizeof *gr * (size_t)n);
  uint32_t *gm = malloc(sizeof *gm * (size_t)n);
  hs__ids_t qa = {snaps[n - 2], NULL, 0, 0, 0}, qb = {last, NULL, 0, 0, 0};
  int err = !ge || !gr || !gm ? -ENOMEM : 0;
  int nfound = fs->n; /* the findings of single collections */
  /* Their groups, once (fkeys[i] valid when fkey_ok[i]). */
  hs__group_key_t *fkeys = malloc(sizeof *fkeys * (size_t)(nfound + 1));
  bool *fkey_ok = malloc(sizeof *fkey_ok * (size_t)(nfound + 1));
  if (!fkeys || !fkey_ok)
    err = -ENOMEM;
  for (int i = 0; i < nfound && !err; i++)
    fkey_ok[i] =
        hs__group_key(last, lb, fs->v[i].node, fs->v[i].kind, &fkeys[i]);
  for (int g = 0; g < ng && !err; g++) {
    hs__group_key_t *k = &gc[g].key;
    /* A member flagged alone makes the group's own judgement moot; a
     * suspect member does not (suspects are in FS only when asked for, and
     * what is flagged must not depend on that). */
    bool has_finding = false;
    for (int i = 0; i < nfound && !has_finding; i++)
      has_finding = fs->v[i].v == V_LEAK && fkey_ok[i] &&
                    hs__same_group(&fkeys[i], k);
    if (has_finding)
      continue;
    /* Identity and growth of the group as a whole: GROUP_MIN_MEMBERS in
     * every snapshot, entries growing in all and per member, retained
     * never shrinking. */
    bool ok = true;
    qa.n = qb.n = 0;
    for (int j = n - 1; j >= 0 && ok; j--) {
      const hs_bfs_t *bj = bfs_at(snaps, bfs_of, j);
      if (!bj) {
        err = -ENOMEM;
        break;
      }
      hs__ids_t *ids = k->kind != HS_CONT_ARRAY ? NULL
                       : j == n - 1              ? &qb
                       : j == n - 2              ? &qa
                                                 : NULL;
      gm[j] = hs__group_measure(snaps[j], bj, k, &ge[j], &gr[j], ids);
      if (gm[j] < GROUP_MIN_MEMBERS ||
          (j < n - 1 && (ge[j] >= ge[j + 1] || gr[j] > gr[j + 1] ||
                         ge[j] * gm[j + 1] >= ge[j + 1] * gm[j])))
        ok = false;
    }
    if (err)
      break;
    if (!ok || !grew_enough(gr, 0, n, o->min_growth_bytes) ||
        !persisting_members_grow(snaps, n, lb, k, ge[n - 1] - ge[0]) ||
        !steady(ge, 0, n))
      continue;
    double retention = -1.0;
    if (k->kind == HS_CONT_ARRAY) {
      if (qa.err || qb.err) {
        err = -ENOMEM;
        break;
      }
      retention = hs__ids_kept(&qa, &qb);
    }
    verdict_t v = queue_evidence(n - 1, retention, o);
    if (v == V_SUSPECT && !o->suspects)
      continue;
    finding_t *f = add_finding(fs, gc[g].rep, k->kind, n);
    if (f) {
      f->l.group_entries = malloc(sizeof(uint64_t) * (size_t)n);
      f->l.group_members = malloc(sizeof(uint32_t) * (size_t)n);
    }
    if (!f || !f->l.group_entries || !f->l.group_members) {
      err = -ENOMEM;
      break;
    }
    for (int j = 0; j < n; j++) {
      f->l.entries[j] = ge[j] > UINT32_MAX ? UINT32_MAX : (uint32_t)ge[j];
      f->l.retained[j] = gr[j];
      f->l.group_entries[j] = ge[j];
      f->l.group_members[j] = gm[j];
    }
    f->v = v;
    f->l.id = last->node_id[gc[g].rep];
    f->l.siblings = gm[n - 1] - 1;
    f->l.growth_bytes = (int64_t)(gr[n - 1] - gr[0]);
    f->l.retention = retention;
    f->l.whole_group = 1;
    f->l.kind = k->kind == HS_CONT_MAP
                    ? HS_LEAK_CACHE
                    : leak_kind(k->kind, hs__is_listener_list(last, gc[g].rep,
                                                              k->kind));
    /* The group is listed once: a member's own suspect finding goes into
     * it (it may be the group's representative node). */
    for (int i = 0; i < nfound; i++)
      if (fs->v[i].v == V_SUSPECT && fkey_ok[i] &&
          hs__same_group(&fkeys[i], k))
        fs->v[i].folded = true;
  }
  free(fkeys);
  free(fkey_ok);
  free(qa.ids);
  free(qb.ids);
  free(ge);
  free(gr);
  free(gm);
  free(gc);
  return err;
}

int hs_leaks(hs_snapshot_t **snaps, int n, const hs_leak_options_t *o,
             hs_leak_t **out)
{
  hs_leak_options_t def;
  if (!o) {
    hs_leak_options_default(&def);
    o = &def;
  }
  if (n < MIN_PRESENT || !snaps || !out)
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
  series_t sr = {n, -1, malloc(sizeof(uint32_t) * (size_t)n),
                 malloc(sizeof(uint32_t) * (size_t)n),
                 malloc(sizeof(uint64_t) * (size_t)n), malloc((size_t)n)};
  findings_t fs = {NULL, 0, 0};
  hs_bfs_t *bfs_of = calloc((size_t)n, sizeof *bfs_of); /* last: [n - 1] */
  hs_leak_t *res = NULL;
  int rc = -ENOMEM;
  if (!sr.node || !sr.ent || !sr.ret || !sr.est || !bfs_of)
    goto done;
  if (hs_bfs(last, &bfs_of[n - 1]) < 0)
    goto done;
  for (int c = 0; c < nc; c++) {
    hs_container_t *k = &cands[c];
    bool listeners = false;
    double retention;
    verdict_t v = judge(snaps, &bfs_of[n - 1], k, o, &sr, &listeners,
                        &retention);
    if (v == V_FINE || (v == V_SUSPECT && !o->suspects))
      continue;
    finding_t *f = add_finding(&fs, k->node, k->kind, n);
    if (!f)
      goto done;
    memcpy(f->l.entries, sr.ent, sizeof(uint32_t) * (size_t)n);
    memcpy(f->l.retained, sr.ret, sizeof(uint64_t) * (size_t)n);
    f->v = v;
    f->l.id = last->node_id[k->node];
    f->l.growth_bytes = (int64_t)(sr.ret[n - 1] - sr.ret[0]);
    f->l.retention = estimated_by(&sr, n - 1) ? -1.0 : retention;
    f->l.estimated = estimated_by(&sr, n - 1);
    f->l.kind = leak_kind(k->kind, listeners);
  }
  if (fs.n > 0 && group_evidence(snaps, n, bfs_of, &fs) < 0)
    goto done;
  if (whole_groups(snaps, n, bfs_of, o, &fs) < 0)
    goto done;
  /* Keep what is listed: not folded into its group, a suspect only when
   * asked, not nested in another finding (a suspect may nest in a leak,
   * not the other way round), and one finding per node. */
  int w = 0;
  for (int i = 0; i < fs.n; i++) {
    finding_t *f = &fs.v[i];
    bool drop = f->folded || (f->v == V_SUSPECT && !o->suspects);
    for (int j = 0; j < fs.n && !drop; j++) {
      finding_t *g = &fs.v[j];
      bool listed = !g->folded && (g->v == V_LEAK || o->suspects);
      if (j != i && listed && (g->v == V_LEAK || f->v == V_SUSPECT))
        drop = is_nested(last, f->node, &g->node, 1);
    }
    for (int j = 0; j < w && !drop; j++) /* the ones kept so far */
      if (fs.v[j].node == f->node)
        drop = true;
    if (drop) {
      finding_free(f);
      continue;
    }
    fs.v[w++] = *f;
  }
  fs.n = w;
  res = calloc((size_t)fs.n + 1, sizeof *res);
  if (!res)
    goto done;
  for (int i = 0; i < fs.n; i++) {
    finding_t *f = &fs.v[i];
    f->l.suspect = f->v == V_SUSPECT;
    if (hs__leak_describe(&f->l, last, &bfs_of[n - 1], f->node, f->kind) < 0)
      goto done;
  }
  for (int i = 0; i < fs.n; i++) {
    res[i] = fs.v[i].l;
    memset(&fs.v[i].l, 0, sizeof fs.v[i].l);
  }
  qsort(res, (size_t)fs.n, sizeof *res, cmp_leak);
  *out = res;
  res = NULL;
  rc = fs.n;
done:
  free(res);
  for (int i = 0; i < fs.n; i++)
    finding_free(&fs.v[i]);
  free(fs.v);
  if (bfs_of)
    for (int j = 0; j < n; j++)
      hs_bfs_free(&bfs_of[j]);
  free(bfs_of);
  free(sr.node);
  free(sr.ent);
  free(sr.ret);
  free(sr.est);
  free(cands);
  return rc;
}
