/* heapsnap.h -- the tenure_heapsnap library: read V8-format heap snapshots
 * into flat arrays and analyse them (dominators, retained sizes, diff,
 * retainer paths, leak detection over a series).
 *
 * A snapshot is read once by a streaming parser (reader.c) into a
 * hs_snapshot_t that owns a handful of flat arrays: one entry per node and
 * one per edge, edges stored contiguously per node (CSR), no allocation per
 * node or edge.  Node indexes ("ordinals") are 0..node_count-1; node 0 is
 * the synthetic root, as in V8 and DevTools.
 *
 * Errors are negative errno values.  A parse error also fills a message
 * that names the byte offset where the input went wrong.
 *
 * See tools/heap/README.md for the design and the JSON schemas.
 */
#ifndef TENURE_HEAPSNAP_H
#define TENURE_HEAPSNAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Edge kinds, resolved from snapshot.meta.edge_types by name.  Edge types
 * the reader does not know map to HS_EDGE_OTHER. */
typedef enum {
  HS_EDGE_CONTEXT = 0,
  HS_EDGE_ELEMENT,
  HS_EDGE_PROPERTY,
  HS_EDGE_INTERNAL,
  HS_EDGE_HIDDEN,
  HS_EDGE_SHORTCUT,
  HS_EDGE_WEAK,
  HS_EDGE_OTHER
} hs_edge_kind_t;

/* Node kinds we reason about, resolved from meta.node_types by name. */
typedef enum {
  HS_NODE_HIDDEN = 0,
  HS_NODE_ARRAY,
  HS_NODE_STRING,
  HS_NODE_OBJECT,
  HS_NODE_CODE,
  HS_NODE_CLOSURE,
  HS_NODE_REGEXP,
  HS_NODE_NUMBER,
  HS_NODE_NATIVE,
  HS_NODE_SYNTHETIC,
  HS_NODE_CONCAT_STRING,
  HS_NODE_SLICED_STRING,
  HS_NODE_SYMBOL,
  HS_NODE_BIGINT,
  HS_NODE_SHAPE,
  HS_NODE_OTHER
} hs_node_kind_t;

#define HS_ERRMSG_MAX 256

typedef struct hs_snapshot_s {
  /* public, read-only */
  uint32_t node_count;
  uint32_t edge_count;
  uint32_t string_count;
  uint8_t *node_kind;   /* hs_node_kind_t per node */
  uint32_t *node_name;  /* string index */
  uint32_t *node_id;    /* V8 object id (stable across snapshots) */
  uint32_t *node_self;  /* shallow size in bytes */
  uint32_t *first_edge; /* node_count + 1 entries: edges of n are
                           [first_edge[n], first_edge[n + 1]) */
  uint8_t *edge_kind;   /* hs_edge_kind_t per edge */
  uint32_t *edge_name;  /* string index, or element/hidden index; NULL
                           when read with skip_edge_names */
  uint32_t *edge_to;    /* target node ordinal */
  char *str_pool;       /* all strings, each NUL-terminated */
  uint32_t *str_off;    /* string i starts at str_pool + str_off[i] */
  uint64_t total_self;  /* sum of node_self */
  uint64_t file_size;
  /* Filled by hs_dominators(); NULL before. */
  uint32_t *idom;       /* immediate dominator ordinal; root's is itself */
  uint64_t *retained;   /* retained size in bytes */
  uint32_t reachable;   /* nodes reachable from the root */
  /* Filled lazily by hs_id_index(); NULL before. */
  uint32_t *by_id;      /* node ordinals sorted by id */
  /* Filled lazily by the leak analysis; NULL before. */
  uint32_t *shape;      /* per node: its hidden class (target of its
                           internal "map" edge), UINT32_MAX if none */
} hs_snapshot_t;

typedef struct {
  int progress;          /* draw a progress bar on stderr */
  const char *label;     /* shown in the progress bar */
  int skip_edge_names;   /* do not keep edge names (edge_name stays NULL):
                            saves 4 bytes per edge when only dominators,
                            summary and diff are needed */
} hs_read_options_t;

/* --- reader.c --- */

/* Reads the snapshot at path.  On success returns 0 and stores a new
 * snapshot in *out.  On failure returns a negative errno (-ENOENT, -ENOMEM,
 * -EPROTO for malformed input, ...), writes a one-line message naming the
 * byte offset into errmsg, and leaves *out untouched. */
int hs_snapshot_read(const char *path, const hs_read_options_t *opts,
                     hs_snapshot_t **out, char errmsg[HS_ERRMSG_MAX]);

/* The same from memory (used by the fuzzer and the tests). */
int hs_snapshot_read_mem(const char *data, size_t len, hs_snapshot_t **out,
                         char errmsg[HS_ERRMSG_MAX]);

void hs_snapshot_destroy(hs_snapshot_t *s);

/* --- graph.c --- */

static inline const char *hs_str(const hs_snapshot_t *s, uint32_t i)
{
  return i < s->string_count ? s->str_pool + s->str_off[i] : "";
}

static inline const char *hs_node_name(const hs_snapshot_t *s, uint32_t n)
{
  return hs_str(s, s->node_name[n]);
}

/* DevTools' class name: the constructor name for objects and native
 * nodes, "(system)" for hidden, "(type)" for the rest. */
const char *hs_node_class(const hs_snapshot_t *s, uint32_t n, char *buf,
                          size_t bufsize);
const char *hs_node_kind_name(hs_node_kind_t k);
const char *hs_edge_kind_name(hs_edge_kind_t k);

/* Formats an edge the way the program names it: a property name,
 * "[3]" for an element, the variable name for a context slot. */
const char *hs_edge_label(const hs_snapshot_t *s, uint32_t e, char *buf,
                          size_t bufsize);

/* Builds s->by_id (once).  Returns 0 or -ENOMEM. */
int hs_id_index(hs_snapshot_t *s);

/* Returns the ordinal of the node with this id, or UINT32_MAX.  Needs
 * hs_id_index(). */
uint32_t hs_find_id(const hs_snapshot_t *s, uint32_t id);

/* Whether an edge counts for dominators and retainer paths: weak edges
 * never do; shortcut edges only from the root (DevTools' isEssentialEdge). */
static inline int hs_edge_essential(const hs_snapshot_t *s, uint32_t from,
                                    uint32_t e)
{
  uint8_t k = s->edge_kind[e];
  return k != HS_EDGE_WEAK && (k != HS_EDGE_SHORTCUT || from == 0);
}

/* --- dominators.c --- */

/* Computes s->idom and s->retained over essential edges from the root
 * (node 0).  Unreachable nodes get the root as dominator and their own
 * size as retained size.  Returns 0 or -ENOMEM. */
int hs_dominators(hs_snapshot_t *s);

/* --- paths.c --- */

typedef struct {
  uint32_t *prev_edge;  /* per node: edge index by which BFS reached it,
                           UINT32_MAX for the root and unreached nodes */
  uint32_t *prev_node;  /* per node: its BFS parent */
  uint32_t *dist;       /* per node: distance from the root, UINT32_MAX if
                           unreachable */
} hs_bfs_t;

/* BFS from the root over essential edges. Returns 0 or -ENOMEM. */
int hs_bfs(const hs_snapshot_t *s, hs_bfs_t *out);
void hs_bfs_free(hs_bfs_t *b);

/* Writes the path to n as "(GC roots) -> global -> cache (Map) -> ..."
 * into a malloc'd string (*out), NULL if n is unreachable. Returns 0 or
 * -ENOMEM. */
int hs_path_string(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t n,
                   char **out);

/* Up to max distinct shortest retainer paths to n: each ends with a
 * different last retainer edge of n, the rest follows BFS parents.
 * Stores malloc'd strings in paths[] and returns their count, or a
 * negative errno. */
int hs_paths_to(const hs_snapshot_t *s, const hs_bfs_t *b, uint32_t n,
                char **paths, int max);

/* --- json.c --- */

/* Writes str as a JSON string literal (with quotes). */
void hs_json_str(FILE *f, const char *str);

/* --- summary.c --- */

typedef struct {
  char *name;           /* class name */
  uint64_t count;
  uint64_t self;
  uint64_t retained;    /* sum of retained sizes of the class's objects
                           not dominated by another object of the class */
} hs_class_row_t;

/* Groups nodes by class.  Needs hs_dominators().  Rows are sorted by
 * retained size, descending.  Returns the row count or a negative errno;
 * free with hs_class_rows_free. */
int hs_class_rows(const hs_snapshot_t *s, hs_class_row_t **rows);
void hs_class_rows_free(hs_class_row_t *rows, int count);

/* Top k nodes by retained size (excluding the root and synthetic nodes).
 * Returns count stored in out[]. */
int hs_top_retained(const hs_snapshot_t *s, uint32_t *out, int k);

/* --- diff.c --- */

typedef struct {
  char *name;
  uint64_t added_count, added_self;     /* in B, id absent from A */
  uint64_t removed_count, removed_self; /* in A, id absent from B */
} hs_diff_row_t;

/* DevTools' comparison: by class, objects of B whose id is not in A, and
 * objects of A whose id is not in B.  Rows sorted by added_self desc.
 * Returns the row count or a negative errno. */
int hs_diff(hs_snapshot_t *a, hs_snapshot_t *b, hs_diff_row_t **rows);
void hs_diff_rows_free(hs_diff_row_t *rows, int count);

/* --- containers.c --- */

typedef enum {
  HS_CONT_MAP = 0,      /* Map / Set / WeakMap (entries in a hash table) */
  HS_CONT_ARRAY,        /* array: element edges */
  HS_CONT_DICT,         /* object used as a dictionary: property edges */
  HS_CONT_CHAIN,        /* head of a linked list held by (holder, edge) */
  HS_CONT_COUNT
} hs_cont_kind_t;

typedef struct {
  uint32_t node;        /* the container (for chains: the holder) */
  uint32_t edge;        /* for chains: the holder's edge to the head;
                           otherwise UINT32_MAX */
  uint8_t kind;         /* hs_cont_kind_t */
  uint32_t entries;
  uint64_t retained;
} hs_container_t;

/* Finds every collection-like node with at least min_entries entries.
 * Needs hs_dominators().  Returns the count (malloc'd array in *out) or a
 * negative errno. */
int hs_containers(const hs_snapshot_t *s, uint32_t min_entries,
                  hs_container_t **out);

/* Entry count of a node seen as a container of the given kind (0 if it is
 * not one). */
uint32_t hs_container_entries(const hs_snapshot_t *s, uint32_t n,
                              hs_cont_kind_t kind);

/* --- leaks.c --- */

typedef enum {
  HS_LEAK_CACHE = 0,
  HS_LEAK_QUEUE,
  HS_LEAK_LISTENERS,
  HS_LEAK_OTHER
} hs_leak_kind_t;

typedef struct {
  hs_leak_kind_t kind;
  uint32_t id;            /* node id of the container (holder for chains) */
  char *name;             /* the program's name: the last path edge */
  char *ctor;             /* constructor / class of the container */
  const char *type;       /* node type name */
  char *path;             /* retainer path in the last snapshot */
  uint32_t *entries;      /* one per snapshot */
  uint64_t *retained;     /* one per snapshot */
  int64_t growth_bytes;   /* last - first retained */
  double retention;       /* keyed collections: min share of entries kept
                             between snapshots; queues: share kept over
                             the last interval; -1 when not measured */
  int suspect;            /* 1: a queue that grew in every interval but
                             with too little evidence to flag (see
                             hs_leak_options_t.suspects) */
  int estimated;          /* 1: entries are a lower bound from the
                             capacity of a table of Smis (always a
                             suspect) */
  uint32_t siblings;      /* like containers in the last snapshot: the
                             same edge of holders of one shape (per-
                             connection buffers, per-room member sets),
                             this one not counted; 0 when fewer than 3 */
  uint64_t *group_entries; /* when siblings: entries of the whole group,
                             one per snapshot; else NULL */
  uint32_t *group_members; /* when siblings: members of the group, one per
                             snapshot; else NULL */
  int whole_group;        /* 1: the finding is the group itself (rule 9):
                             entries and retained are its totals, id and
                             path are its largest member's */
} hs_leak_t;

typedef struct {
  uint32_t min_entries;      /* ignore smaller containers in the last
                                snapshot (default 8) */
  uint64_t min_growth_bytes; /* minimum total retained growth for arrays
                                and lists (default 4096); keyed
                                collections and listeners need 1/4 */
  double min_retention;      /* keyed collections must keep this share of
                                their entries per interval (default 0.5);
                                a queue flagged from fewer than three
                                growing intervals must keep it over the
                                last one */
  int suspects;              /* also return the suspects, after the
                                flagged findings (default 0) */
} hs_leak_options_t;

void hs_leak_options_default(hs_leak_options_t *o);

/* Analyses a time-ordered series of n >= 3 snapshots (dominators must be
 * computed) and returns the findings ranked by growth in bytes (flagged
 * ones first, then suspects when o->suspects is set).  Returns the
 * count or a negative errno; free with hs_leaks_free. */
int hs_leaks(hs_snapshot_t **snaps, int n, const hs_leak_options_t *o,
             hs_leak_t **out);
void hs_leaks_free(hs_leak_t *l, int count, int nsnap);
const char *hs_leak_kind_name(hs_leak_kind_t k);
const char *hs_leak_remedy(hs_leak_kind_t k);

/* --- timings.c --- */

/* Per-stage timings (process-wide, off by default): after hs_timings(f),
 * each stage of the reader and of the analyses writes one line "tenure-
 * heap: timing: STAGE +S.SSS s (T.TTT s) rss R MB peak P MB" to f: the
 * stage's own wall time, the time since hs_timings(), the resident set
 * now and its peak so far.  hs_timings(NULL) turns them off.  Not
 * thread-safe. */
void hs_timings(FILE *out);
/* Whether hs_timings() is on (to skip work done only for the lines). */
int hs_timings_on(void);
/* Ends a stage: writes its line when timings are on (printf format). */
void hs_timing(const char *fmt, ...)
  __attribute__((format(printf, 1, 2)));

#endif /* TENURE_HEAPSNAP_H */
