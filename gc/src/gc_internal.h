/* gc_internal.h -- the heap's private structures, shared by gc/src only.
 *
 * Layout of memory:
 *   new space   one reservation holding [survivor 0 | eden | survivor 1]:
 *               eden (semi_reserve bytes, the first semi_cap in use) is
 *               where the mutator allocates; a scavenge copies what
 *               survives from eden and one survivor space into the other
 *               (each reserves semi_reserve too, see nursery.c).
 *   old space   256 KiB pages, each holding cells of one size class.
 *   large space one mapping per object.
 *
 * The header word of every object (just before its payload):
 *   bits 63..6  the gc_type_t address (descriptors are 64-byte aligned)
 *   bit  0      FWD    in a from-space copy: the word is the forwarding
 *                      address | FWD (bits 1..5 then mean nothing)
 *   bit  1      MARK   live in the current mark phase (old/large only)
 *   bit  2      REMEMBERED  the object is in the remembered set
 *   bits 3..5   AGE    scavenges survived in new space (new only)
 * A free old-space cell has header 0 and its next free cell in word 1.
 *
 * See gc/DESIGN.md for the reasoning behind each mechanism.
 */
#ifndef GC_INTERNAL_H
#define GC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <tenure/gc.h>

#define X__FWD ((uintptr_t)1)        /* 001 */
#define X__MARK ((uintptr_t)2)       /* 010 */
#define X__REMEMBERED ((uintptr_t)4) /* 100 */
#define X__AGE_SHIFT 3
#define X__AGE_MASK ((uintptr_t)7 << X__AGE_SHIFT)
#define X__FLAGS ((uintptr_t)(GC_TYPE_ALIGN - 1))
#define X__MAX_AGE 7

#define GC__PAGE_SIZE ((size_t)256 * 1024)
#define GC__MB ((size_t)1024 * 1024)

#define gc__hdr(obj) (((uintptr_t *)(obj))[-1])
#define gc__type_of_hdr(hdr) ((const gc_type_t *)((hdr) & ~X__FLAGS))
#define gc__round(n) (((n) + GC__ALIGN - 1) & ~(GC__ALIGN - 1))

/* True for NULL and immediates: slot values the collector never follows. */
#define gc__not_ptr(v) ((v) == NULL || ((uintptr_t)(v) & GC_IMMEDIATE_MASK))

#ifndef GC_DEBUG
#define GC_ASSERT(x) ((void)0)
#else
#define GC_ASSERT(x)                                                          \
  ((x) ? (void)0 : gc__fatal(NULL, "assertion failed: %s (%s:%d)", #x,       \
                             __FILE__, __LINE__))
#endif

typedef struct gc__prep_s gc__prep_t; /* pageprep.c */
typedef struct gc__idtab_s {
  struct entry_s *e;
  size_t cap;
  size_t len;
} gc__idtab_t; /* objid.c */

/* --- Growable vectors (malloc-backed, counted in malloced_memory) --- */

typedef struct gc__vec_s {
  void **items;
  size_t len;
  size_t cap;
} gc__vec_t;

/* --- Old space ---------------------------------------------------------- */

/* Size classes: cell sizes (header included) from 16 bytes to
 * GC_MAX_REGULAR_SIZE + 8; see oldspace.c for the table. */
#define GC__NCLASSES 48

typedef struct gc__page_s {
  struct gc__page_s *next; /* in its class's page list or the pool */
  struct gc__page_s *next_unswept;
  uintptr_t cells; /* first cell */
  uintptr_t end;   /* one past the last whole cell */
  uintptr_t bump;  /* INV: cells at or past bump were never allocated since
                    * the page got its class */
  uint32_t cls;
  uint32_t cell_size;
  uintptr_t sweep_end; /* the pending sweep covers [cells, sweep_end):
                        * cells bumped after the mark are not swept */
  uint32_t live; /* cells allocated at the last sweep */
  bool unswept;
} gc__page_t;

typedef struct gc__class_s {
  uint32_t cell_size;
  void *free;        /* free cells of swept pages (header 0, next in word 1) */
  gc__page_t *cur;   /* page we bump-allocate in, or NULL */
  gc__page_t *pages; /* every page of the class */
  gc__page_t *unswept;
} gc__class_t;

typedef struct gc__large_s {
  struct gc__large_s *next;
  struct gc__large_s *prev;
  size_t map_size;
  size_t payload;
  uintptr_t pad;
  uintptr_t header; /* the object header, right before the payload */
} gc__large_t;

/* --- Roots -------------------------------------------------------------- */

#define GC__HANDLE_BLOCK 1020

typedef struct gc__hblock_s {
  struct gc__hblock_s *next;
  struct gc__hblock_s *prev;
  void *slots[GC__HANDLE_BLOCK];
} gc__hblock_t;

typedef struct gc__pentry_s {
  void *obj; /* first: gc_persistent_t is this struct's prefix */
  gc_weak_fn cb;
  void *data;
  struct gc__pentry_s *next_free;
  uint8_t in_use;
  uint8_t weak;
  uint8_t cleared; /* weak handle found dead, callback pending */
} gc__pentry_t;

#define GC__PCHUNK 256
typedef struct gc__pchunk_s {
  struct gc__pchunk_s *next;
  gc__pentry_t e[GC__PCHUNK];
} gc__pchunk_t;

typedef struct gc__root_s {
  void **slot;
  gc_root_trace_fn fn;
  void *data;
  const char *label;
} gc__root_t;

/* --- Pauses ------------------------------------------------------------- */

typedef struct gc__pauses_s {
  double *ms;
  size_t len;
  size_t cap;
  double total;
  double max;
} gc__pauses_t;

/* --- The heap ----------------------------------------------------------- */

struct gc_heap_s {
  gc__fast_t fast; /* first: the inline fast paths cast the heap to it */

  gc_options_t opt;
  size_t limit;         /* old + large committed bytes may not exceed it */
  size_t initial_limit;

  /* New space. */
  uintptr_t eden;      /* start of eden, where the mutator allocates */
  uintptr_t surv[2];   /* start of each survivor space */
  int cur;             /* index of the survivor space holding survivors */
  uintptr_t surv_top;  /* end of the survivors in surv[cur] */
  uintptr_t surv_hw[2]; /* how far each survivor space was ever used */
  bool semi_mode;      /* debug runs: allocate in surv[cur] (nursery.c) */
  size_t semi_cap;     /* what survivors and eden's area hold together */
  size_t semi_min;
  size_t semi_max;      /* what semi_cap may grow to now (policy.c) */
  size_t semi_reserve;  /* eden's reservation: semi_max's bound */
  uintptr_t real_limit; /* end of the allocation area in eden */
  bool force_slow;      /* debug modes: every allocation is slow */
  bool debug_gc;        /* --stress-gc / --gc-interval collect */
  uint64_t alloc_count;
  size_t survived_since_resize;
  double resized_at_ms;        /* gc__now_ms() at the last resize */
  double scavenge_ms_since_resize;
  double cycle_t0;             /* gc__now_ms() when this collection began */
  double full_mark_end_ms;     /* when the last full GC's mark ended */
  double gc_ms_since_full;     /* collection time since then */
  unsigned low_survival_streak;
  bool fast_promotion;
  unsigned tenure_age; /* survivors this old are promoted (policy.c) */
  size_t young_by_age[X__MAX_AGE + 1]; /* survivor-space bytes by age */
  /* The tenuring evidence (policy.c): bytes of each age at risk and of
   * those that survived, over the last scavenges (decaying sums). */
  size_t tenure_seen[X__MAX_AGE + 1];
  size_t tenure_survived[X__MAX_AGE + 1];
  gc__vec_t remset;          /* old objects that may point to new ones */
  gc__vec_t finalizable;     /* new-space objects whose type finalizes */

  /* Old space. */
  gc__class_t cls[GC__NCLASSES];
  uint8_t class_small[33];   /* cell class by (total + 7) / 8 for <= 256 */
  uint8_t class_big[130];    /* cell class by (total + 127) / 128 */
  size_t nclasses;
  gc__page_t *pool;          /* empty pages kept for reuse */
  size_t pool_len;
  size_t pages_in_use;
  gc__prep_t *prep;          /* pages prepared ahead (pageprep.c), or NULL */
  bool sweep_pending;        /* some pages are unswept */
  size_t old_used;           /* bytes in allocated cells (dead ones included
                              * until they are swept) */

  /* Large-object space. */
  gc__large_t *large;
  size_t large_bytes;        /* sum of map_size */
  size_t large_objects;

  /* Policy. */
  size_t next_full_at;       /* old_live + old_since_full that trigger a
                              * full GC */
  size_t old_live;           /* old + large bytes the last mark found live */
  size_t old_since_full;     /* bytes promoted or allocated in old and large
                              * space since the last full GC */
  bool full_requested;
  bool full_cheap;           /* a full GC now would cost little (policy.c) */
  double mark_speed;         /* bytes per ms the last full GC marked */
  bool in_gc;
  int64_t external;
  int64_t external_at_full;

  /* Roots. */
  gc__hblock_t *hfirst;
  gc__pchunk_t *pchunks;
  gc__pentry_t *pfree;
  gc__root_t *roots;
  size_t nroots;
  size_t roots_cap;

  /* Types (types.c): an open-addressing set, NULL for empty cells. */
  const gc_type_t **types;
  bool finalizers; /* some registered type has a finalizer */
  size_t ntypes;
  size_t types_cap; /* a power of two, or 0 */

  /* Marking and weak processing (weak.c). */
  gc__vec_t mark_stack;
  size_t marked_bytes;  /* old + large bytes marked by the last mark */
  gc__vec_t weak_slots; /* pairs: holder, slot */
  gc__vec_t ephemerons; /* triples: holder, key slot, value slot */

  /* --verify-heap: (object, allocated total) of new-space allocations since
   * the last GC (verify.c). */
  gc__vec_t alloc_sizes;

  /* The embedder's (gc_heap_set_user_data). */
  void *user_data;

  /* Signal snapshots (snapshot.c): signals answered, snapshots written. */
  long snap_seen;
  unsigned snap_seq;

  /* Object ids for snapshots (objid.c). */
  gc__idtab_t ids_young;
  gc__idtab_t ids_old;
  uint64_t next_id;

  /* Statistics. */
  uint64_t epoch;
  uint64_t scavenges;
  uint64_t full_gcs;
  uint64_t bytes_allocated; /* up to alloc_base; see gc__bytes_allocated */
  uintptr_t alloc_base;     /* where the current allocation area began */
  uint64_t bytes_promoted;
  uint64_t finalized;
  size_t malloced;
  size_t peak_malloced;
  gc__pauses_t p_scavenge;
  gc__pauses_t p_full;
  double full_ms_per_mb_sum;
  double start_ms;
};

/* --- alloc.c: the collector's own memory --------------------------------- */
void *gc__malloc(gc_heap_t *h, size_t n);
void *gc__calloc(gc_heap_t *h, size_t n);
void *gc__realloc(gc_heap_t *h, void *p, size_t old, size_t n);
void gc__free(gc_heap_t *h, void *p, size_t n);
void *gc__map(size_t n, size_t align);
void gc__unmap(void *p, size_t n);
bool gc__vec_push_slow(gc_heap_t *h, gc__vec_t *v, void *x);
void gc__vec_free(gc_heap_t *h, gc__vec_t *v);
static inline void gc__vec_push(gc_heap_t *h, gc__vec_t *v, void *x) {
  if (GC_UNLIKELY(v->len == v->cap))
    gc__vec_push_slow(h, v, x);
  else
    v->items[v->len++] = x;
}
void gc__fatal(gc_heap_t *h, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
double gc__now_ms(void);

/* --- Collector views for weak processing (weak.c) ------------------------ */

/* What weak.c asks of the collection running (the scavenger or the marker)
 * once its strong closure is complete. */
typedef struct gc__tracer_s {
  /* Does the object in *SLOT survive this collection?  Updates *SLOT if it
   * moved.  NULL and immediates survive. */
  bool (*survives)(struct gc__tracer_s *t, void **slot);
  /* Keeps the value in *VALUE alive, as held by HOLDER (whose KEY slot, if
   * not NULL, survived): copies or marks it, and remembers an old holder. */
  void (*keep)(struct gc__tracer_s *t, void *holder, void **key,
               void **value);
  /* Traces everything reachable from what keep() added. */
  void (*drain)(struct gc__tracer_s *t);
} gc__tracer_t;

/* --- events.c: phase events and their listeners ----------------------------- */

typedef struct gc__cycle_s {
  gc_collect_kind_t kind;
  const char *reason;
  double t0; /* gc__now_ms() at the start */
  size_t used_before;
  size_t committed_before;
  double pause_ms; /* set for the end event */
} gc__cycle_t;

typedef struct gc__listener_s {
  const char *name;
  void (*start)(gc_heap_t *h, const gc__cycle_t *c);
  void (*evacuated)(gc_heap_t *h, uintptr_t from_lo, size_t from_size);
  void (*marked)(gc_heap_t *h);
  void (*end)(gc_heap_t *h, const gc__cycle_t *c);
  void (*safepoint)(gc_heap_t *h);
} gc__listener_t;

void gc__emit_start(gc_heap_t *h, const gc__cycle_t *c);
void gc__emit_evacuated(gc_heap_t *h, uintptr_t from_lo, size_t from_size);
void gc__emit_marked(gc_heap_t *h);
void gc__emit_end(gc_heap_t *h, const gc__cycle_t *c);
void gc__emit_safepoint(gc_heap_t *h);
extern const gc__listener_t gc__stats_listener, gc__trace_listener,
    gc__verify_listener, gc__ids_listener, gc__snapshot_listener;

/* --- nursery.c: new space and the scavenger --------------------------------- */
int gc__nursery_init(gc_heap_t *h);
void gc__nursery_destroy(gc_heap_t *h);
void gc__scavenge(gc_heap_t *h);
size_t gc__young_used(const gc_heap_t *h);
uint64_t gc__bytes_allocated(const gc_heap_t *h);
void gc__young_span(const gc_heap_t *h, uintptr_t *lo, uintptr_t *hi);
void gc__nursery_walk(gc_heap_t *h, gc_object_fn fn, void *data);
size_t gc__obj_total(const void *obj, const gc_type_t *t);

/* --- oldspace.c: pages, size classes, allocation ---------------------------- */
void gc__old_init(gc_heap_t *h);
void gc__old_destroy(gc_heap_t *h);
void *gc__old_alloc(gc_heap_t *h, size_t total);
void gc__page_release(gc_heap_t *h, gc__page_t *p);
void gc__old_walk(gc_heap_t *h, gc_object_fn fn, void *data);
size_t gc__old_committed(const gc_heap_t *h);
typedef void (*gc__page_fn)(gc__page_t *p, void *data);
void gc__old_for_each_page(gc_heap_t *h, gc__page_fn fn, void *data);

/* --- sweeper.c ---------------------------------------------------------------- */
void gc__sweep_prepare(gc_heap_t *h);
bool gc__sweep_one(gc_heap_t *h, gc__class_t *c);
void gc__sweep_some(gc_heap_t *h, size_t n);
void gc__sweep_finish(gc_heap_t *h);
void gc__large_sweep(gc_heap_t *h);

/* --- pageprep.c --------------------------------------------------------- */
void gc__prep_request(gc_heap_t *h, size_t bytes);
gc__page_t *gc__prep_take(gc_heap_t *h);
void gc__prep_destroy(gc_heap_t *h);

/* The size class of a cell of TOTAL bytes (header included). */
static inline unsigned gc__class_of(const gc_heap_t *h, size_t total) {
  if (total <= 256)
    return h->class_small[(total + 7) >> 3];
  unsigned k = h->class_big[(total + 127) >> 7];
  /* The table entry is the first class reaching the 128-byte bucket's top;
   * step back while a smaller class still fits. */
  while (k > 0 && h->cls[k - 1].cell_size >= total)
    k--;
  return k;
}

/* A cell of class C from its free list, else by bumping in its current
 * page, or NULL: the fast paths of gc__old_alloc, shared with the
 * scavenger's inline promotion path. */
static inline void *gc__old_take(gc_heap_t *h, gc__class_t *c) {
  uintptr_t *cell = c->free;
  if (GC_LIKELY(cell != NULL)) {
    c->free = (void *)cell[1];
  } else if (c->cur != NULL && c->cur->bump + c->cell_size <= c->cur->end) {
    cell = (uintptr_t *)c->cur->bump;
    c->cur->bump += c->cell_size;
  } else {
    return NULL;
  }
  h->old_used += c->cell_size;
  h->old_since_full += c->cell_size;
  return cell;
}

/* gc__old_alloc, with its fast paths inline for the scavenger. */
static inline void *gc__old_alloc_inline(gc_heap_t *h, size_t total) {
  void *cell = gc__old_take(h, &h->cls[gc__class_of(h, total)]);
  return GC_LIKELY(cell != NULL) ? cell : gc__old_alloc(h, total);
}

/* --- large.c ------------------------------------------------------------ */
void *gc__large_alloc(gc_heap_t *h, const gc_type_t *t, size_t size);
void gc__large_free(gc_heap_t *h, gc__large_t *l);
void gc__large_destroy(gc_heap_t *h);
void gc__large_walk(gc_heap_t *h, gc_object_fn fn, void *data);

/* --- marker.c ----------------------------------------------------------- */
void gc__mark(gc_heap_t *h);

/* --- barrier.c: the write barrier and the remembered set -------------------- */
void gc__remember(gc_heap_t *h, void *obj);
gc__vec_t gc__remset_take(gc_heap_t *h);
void gc__remset_drop_dead(gc_heap_t *h);

/* --- weak.c --------------------------------------------------------------- */
void gc__weak_slot_defer(gc_heap_t *h, void *holder, void **slot);
void gc__ephemeron_defer(gc_heap_t *h, void *holder, void **key,
                         void **value);
void gc__weak_resolve(gc_heap_t *h, gc__tracer_t *t);
void gc__weak_callbacks(gc_heap_t *h);

/* --- handles.c ---------------------------------------------------------- */
int gc__handles_init(gc_heap_t *h);
void gc__handles_destroy(gc_heap_t *h);
/* Visits every strong root slot. */
void gc__trace_roots(gc_heap_t *h, gc_visitor_t *v);

/* --- policy.c: heap sizing ------------------------------------------------ */
int gc__policy_defaults(gc_options_t *opt, size_t *semi_reserve);
void gc__policy_init(gc_heap_t *h);
size_t gc__policy_semi_after_scavenge(gc_heap_t *h, size_t used,
                                      size_t survived, size_t from_roots);
void gc__policy_tenure(gc_heap_t *h, const size_t *survived_by_age,
                       const size_t *copied_to_age);
bool gc__policy_full_due(const gc_heap_t *h, size_t more);
void gc__policy_after_full(gc_heap_t *h);
void gc__policy_limit_raised(gc_heap_t *h);
void gc__policy_external(gc_heap_t *h);
size_t gc__policy_sweep_quota(const gc_heap_t *h);

/* --- types.c ------------------------------------------------------------ */
bool gc__type_known(const gc_heap_t *h, const gc_type_t *t);
void gc__type_check(gc_heap_t *h, const gc_type_t *t);
void gc__types_destroy(gc_heap_t *h);

/* --- stats.c ------------------------------------------------------------ */
void gc__pause_record(gc_heap_t *h, gc__pauses_t *p, double ms);
void gc__pauses_free(gc_heap_t *h, gc__pauses_t *p);
size_t gc__used_bytes(const gc_heap_t *h);
size_t gc__committed_bytes(const gc_heap_t *h);

/* --- objid.c ----------------------------------------------------------- */
void gc__ids_destroy(gc_heap_t *h);

/* --- verify.c ----------------------------------------------------------- */
void gc__verify_record_size(gc_heap_t *h, void *obj, size_t total);

#endif /* GC_INTERNAL_H */
