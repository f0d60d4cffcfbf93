/* heap.c -- the heap: creation, the allocation slow path, GC policy and
 * the heap limit.
 *
 * Policy, in the order the slow path applies it:
 *   1. debug modes (--stress-gc, --gc-interval) force a GC first;
 *   2. a pending request (external memory pressure) runs a full GC;
 *   3. when new space is full: a scavenge, or a full GC when old + large
 *      space reached next_full_at (live size after the last full GC times
 *      GROWTH, at least MIN_FULL_AT, at most the limit);
 *   4. after any GC that left old + large space over the limit: a full GC,
 *      then the near-heap-limit callback, then failure.
 *
 * INV(limit): outside a GC, old + large committed bytes stay at or under
 * h->limit, except transiently between a scavenge's promotion and the full
 * GC that follows it in the same slow path.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gc_internal.h"
#include "snapshot_internal.h"

#define GROWTH 2
#define MIN_FULL_AT ((size_t)32 * GC__MB)
#define DEFAULT_OLD_MB 4096
#define STRESS_FULL_EVERY 8
#define SWEEP_PER_SCAVENGE 8

/* --- Types ------------------------------------------------------------------- */

bool gc__type_known(const gc_heap_t *h, const gc_type_t *t) {
  for (size_t i = 0; i < h->ntypes; i++)
    if (h->types[i] == t)
      return true;
  return false;
}

int gc_type_register(gc_heap_t *h, const gc_type_t *t) {
  if (h == NULL || t == NULL || ((uintptr_t)t & X__FLAGS) != 0 ||
      t->name == NULL || (t->size == 0 && t->size_of == NULL))
    return -EINVAL;
  if (gc__type_known(h, t))
    return 0;
  if (h->ntypes == h->types_cap) {
    size_t ncap = h->types_cap ? h->types_cap * 2 : 16;
    const gc_type_t **n = gc__realloc(h, (void *)h->types,
                                      h->types_cap * sizeof *n,
                                      ncap * sizeof *n);
    if (n == NULL)
      return -ENOMEM;
    h->types = n;
    h->types_cap = ncap;
  }
  h->types[h->ntypes++] = t;
  if (t->finalize != NULL)
    h->finalizers = true;
  return 0;
}

/* --- Creation ---------------------------------------------------------------- */

static size_t clamp(size_t v, size_t lo, size_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

static size_t pow2_floor(size_t v) {
  size_t p = 1;
  while (p * 2 <= v)
    p *= 2;
  return p;
}

int gc_heap_create(const gc_options_t *o, gc_heap_t **out) {
  if (out == NULL)
    return -EINVAL;
  gc_options_t opt;
  if (o != NULL)
    opt = *o;
  else
    gc_options_init(&opt);
  if (opt.promotion_age < 0)
    opt.promotion_age = 1;
  if (opt.promotion_age > X__MAX_AGE)
    return -EINVAL;
  if (opt.max_old_space_size == 0)
    opt.max_old_space_size = (size_t)DEFAULT_OLD_MB * GC__MB;
  /* Like V8, a smaller old generation gets a smaller new space. */
  if (opt.max_semi_space_size == 0)
    opt.max_semi_space_size =
        clamp(pow2_floor(opt.max_old_space_size / 16), GC__MB, 16 * GC__MB);
  opt.max_semi_space_size = clamp(opt.max_semi_space_size, 64 * 1024,
                                  (size_t)1024 * GC__MB);
  /* A semispace is a whole number of pages. */
  opt.max_semi_space_size = (opt.max_semi_space_size + GC__PAGE_SIZE - 1) &
                            ~(GC__PAGE_SIZE - 1);
  if (opt.min_semi_space_size == 0)
    opt.min_semi_space_size = GC__MB;
  if (opt.min_semi_space_size > opt.max_semi_space_size)
    opt.min_semi_space_size = opt.max_semi_space_size;
  opt.min_semi_space_size = gc__round(opt.min_semi_space_size);

  gc_heap_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return -ENOMEM;
  h->malloced = h->peak_malloced = sizeof *h;
  h->opt = opt;
  h->limit = h->initial_limit = opt.max_old_space_size;
  h->semi_min = opt.min_semi_space_size;
  h->semi_max = opt.max_semi_space_size;
  h->force_slow = opt.stress_gc || opt.gc_interval > 0;
  h->next_full_at = MIN_FULL_AT < h->limit ? MIN_FULL_AT : h->limit;
  h->start_ms = gc__now_ms();
  gc__old_init(h);
  int err = gc__nursery_init(h);
  if (err < 0)
    goto fail_nursery;
  err = gc__handles_init(h);
  if (err < 0)
    goto fail_handles;
  err = gc__snapshot_signal_start(h); /* --heapsnapshot-signal */
  if (err < 0)
    goto fail_signal;
  *out = h;
  return 0;

fail_signal:
  gc__handles_destroy(h);
fail_handles:
  gc__nursery_destroy(h);
fail_nursery:
  free(h);
  return err;
}

static void finalize_all(void *obj, const gc_type_t *t, size_t size,
                         void *data) {
  (void)size;
  if (t->finalize != NULL) {
    t->finalize(obj);
    ((gc_heap_t *)data)->finalized++;
  }
}

void gc_heap_destroy(gc_heap_t *h) {
  if (h == NULL)
    return;
  gc__snapshot_signal_stop(h);
  /* Every object still here dies now: finalize each exactly once (a heap
   * whose types have no finalizers skips the walk). */
  if (h->finalizers) {
    gc__old_finish_sweep(h);
    gc__nursery_walk(h, finalize_all, h);
    gc__old_walk(h, finalize_all, h);
    gc__large_walk(h, finalize_all, h);
  }
  gc__large_destroy(h);
  gc__old_destroy(h);
  gc__nursery_destroy(h);
  gc__handles_destroy(h);
  gc__ids_destroy(h);
  gc__vec_free(h, &h->remset);
  gc__vec_free(h, &h->finalizable);
  gc__vec_free(h, &h->mark_stack);
  gc__vec_free(h, &h->weak_slots);
  gc__pauses_free(h, &h->p_scavenge);
  gc__pauses_free(h, &h->p_full);
  gc__free(h, (void *)h->types, h->types_cap * sizeof h->types[0]);
  free(h);
}

/* --- Collections ----------------------------------------------------------- */

static void after_gc(gc_heap_t *h, const char *what) {
  if (h->opt.verify_heap)
    gc__verify_or_die(h, what);
}

static void minor_gc(gc_heap_t *h, const char *reason) {
  size_t before = gc__used_bytes(h), before_c = gc__committed_bytes(h);
  double t0 = gc__now_ms();
  h->in_gc = true;
  gc__scavenge(h);
  gc__old_sweep_some(h, SWEEP_PER_SCAVENGE);
  h->in_gc = false;
  h->scavenges++;
  double ms = gc__now_ms() - t0;
  gc__pause_record(h, &h->p_scavenge, ms);
  if (h->opt.trace_gc)
    gc__trace_line(h, "Scavenge", t0 - h->start_ms, before, before_c,
                   gc__used_bytes(h), gc__committed_bytes(h), ms, reason);
  after_gc(h, "scavenge");
  gc__weak_callbacks(h);
}

void gc__full_gc(gc_heap_t *h, const char *reason, bool eager_sweep) {
  size_t before = gc__used_bytes(h), before_c = gc__committed_bytes(h);
  double t0 = gc__now_ms();
  h->in_gc = true;
  gc__old_finish_sweep(h);
  gc__scavenge(h); /* survivors left young are roots of the mark */
  gc__mark(h);
  gc__large_sweep(h);
  gc__old_prepare_sweep(h);
  if (eager_sweep || h->opt.verify_heap)
    gc__old_finish_sweep(h);
  h->in_gc = false;
  h->full_gcs++;
  h->epoch++;
  h->external_at_full = h->external;

  /* The next full GC comes when the old generation has grown to GROWTH
   * times what the mark found live (sweeping is lazy, so old_used still
   * counts dead cells here). */
  size_t live = h->marked_bytes;
  h->old_live = live;
  h->old_since_full = 0;
  size_t next = live * GROWTH;
  if (next < MIN_FULL_AT)
    next = MIN_FULL_AT;
  h->next_full_at = next < h->limit ? next : h->limit;

  double ms = gc__now_ms() - t0;
  gc__pause_record(h, &h->p_full, ms);
  double live_mb = (double)live / (double)GC__MB;
  h->full_ms_per_mb_sum += ms / (live_mb > 0.1 ? live_mb : 0.1);
  if (h->opt.trace_gc)
    gc__trace_line(h, "Mark-Sweep", t0 - h->start_ms, before, before_c,
                   gc__used_bytes(h), gc__committed_bytes(h), ms, reason);
  after_gc(h, "full GC");
  gc__weak_callbacks(h);
}

void gc_collect(gc_heap_t *h, gc_collect_kind_t kind) {
  if (h == NULL || h->in_gc)
    return;
  if (kind == GC_COLLECT_FULL)
    gc__full_gc(h, "requested", true);
  else
    minor_gc(h, "requested");
}

/* --- The heap limit ---------------------------------------------------------- */

__attribute__((noreturn)) static void heap_limit_fatal(gc_heap_t *h) {
  fflush(stdout);
  fprintf(stderr,
          "\n<--- Last GCs --->\n[%d:%p] %u scavenges, %u full GCs; old + large "
          "space %.1f MB committed, %.1f MB used\n\n"
          "FATAL ERROR: Reached heap limit Allocation failed - tenure heap out "
          "of memory (heap limit %zu MB; raise it with --max-old-space-size=MB "
          "or TENURE_OPTIONS)\n",
          (int)getpid(), (void *)h, (unsigned)h->scavenges,
          (unsigned)h->full_gcs, (double)gc__old_committed(h) / GC__MB,
          (double)(h->old_used + h->large_bytes) / GC__MB, h->limit / GC__MB);
  fflush(stderr);
  exit(GC_EXIT_HEAP_LIMIT);
}

/* After a full GC: is the old generation (plus NEED more bytes) over the
 * limit even after asking the near-heap-limit callback?  Fatal unless the
 * heap returns NULL on OOM. */
static bool limit_holds(gc_heap_t *h, size_t need) {
  gc__old_finish_sweep(h);
  if (gc__old_committed(h) + need <= h->limit)
    return false;
  if (h->opt.near_heap_limit != NULL) {
    size_t n = h->opt.near_heap_limit(h->opt.near_heap_limit_data, h->limit,
                                      h->initial_limit);
    if (n > h->limit) {
      h->limit = n;
      if (h->next_full_at < n)
        h->next_full_at = n;
    }
    if (gc__old_committed(h) + need <= h->limit)
      return false;
  }
  if (h->opt.null_on_oom)
    return true;
  heap_limit_fatal(h);
}


/* --- The allocation slow path ----------------------------------------------- */

static void *bump(gc_heap_t *h, const gc_type_t *t, size_t total) {
  uintptr_t *o = (uintptr_t *)h->fast.top;
  h->fast.top += total;
  h->fast.limit = h->force_slow ? h->fast.top : h->real_limit;
  o[0] = (uintptr_t)t;
  memset(o + 1, 0, total - GC__HDR);
  if (t->finalize != NULL)
    gc__register_finalizable(h, o + 1);
  return o + 1;
}

/* The old generation's size for the full-GC trigger: what the last mark
 * found live plus what was promoted or allocated there since.  (Committed
 * bytes would count dead objects that the lazy sweeper has not freed yet.) */
static size_t old_size(const gc_heap_t *h) {
  return h->old_live + h->old_since_full;
}

/* A GC because new space is full or a debug mode asked: a scavenge, or a
 * full GC when asked or when the old generation reached its trigger. */
static void collect_for_allocation(gc_heap_t *h, bool full, const char *why) {
  if (full || h->full_requested || old_size(h) >= h->next_full_at) {
    h->full_requested = false;
    gc__full_gc(h, full ? why : "allocation failure (old generation)", false);
  } else {
    minor_gc(h, why);
  }
}

static void *large_slow(gc_heap_t *h, const gc_type_t *t, size_t size) {
  if (h->full_requested || old_size(h) + size > h->next_full_at) {
    h->full_requested = false;
    gc__full_gc(h, "allocation failure (large object)", false);
  }
  void *p = gc__large_alloc(h, t, size);
  for (int attempt = 0; p == NULL && attempt < 3; attempt++) {
    /* Over the limit: a full GC, then the near-heap-limit callback. */
    gc__full_gc(h, "allocation failure (large object)", true);
    p = gc__large_alloc(h, t, size);
    if (p == NULL && limit_holds(h, size + sizeof(gc__large_t)))
      return NULL;
  }
  if (p == NULL) {
    if (h->opt.null_on_oom)
      return NULL;
    heap_limit_fatal(h);
  }
  h->bytes_allocated += size;
  return p;
}

void *gc__alloc_slow(gc_heap_t *h, const gc_type_t *t, size_t size) {
  if (gc__snapshot_pending())
    gc_snapshot_poll(h); /* a --heapsnapshot-signal arrived */
  if (h->force_slow) {
    h->alloc_count++;
    unsigned every = h->opt.stress_gc ? 1 : h->opt.gc_interval;
    if (h->alloc_count % every == 0)
      collect_for_allocation(
          h, (h->alloc_count / every) % STRESS_FULL_EVERY == 0, "stress");
  }
  if (size > GC_MAX_REGULAR_SIZE)
    return large_slow(h, t, size);
  if (h->full_requested)
    collect_for_allocation(h, true, "external memory pressure");

  /* Usually one scavenge makes room.  If everything survived (objects not
   * yet old enough to promote), a second one promotes them, and a full GC
   * promotes all that old space takes.  If new space is still full, old
   * space is at the limit: the near-heap-limit callback may raise it. */
  size_t total = gc__round(size + GC__HDR);
  for (int attempt = 0; total > h->real_limit - h->fast.top; attempt++) {
    if (attempt < 3) {
      collect_for_allocation(h, attempt == 2, "allocation failure");
    } else if (attempt < 6 && !limit_holds(h, GC__PAGE_SIZE)) {
      gc__full_gc(h, "heap limit raised", false);
    } else {
      if (h->opt.null_on_oom)
        return NULL;
      heap_limit_fatal(h);
    }
  }
  h->bytes_allocated += total;
  return bump(h, t, total);
}

void gc__register_finalizable(gc_heap_t *h, void *obj) {
  gc__vec_push(h, &h->finalizable, obj);
}

void gc__barrier_slow(gc_heap_t *h, void *obj) {
  uintptr_t *hp = &gc__hdr(obj);
  if (*hp & X__REMEMBERED)
    return;
  *hp |= X__REMEMBERED;
  gc__vec_push(h, &h->remset, obj);
}

/* --- Small accessors ----------------------------------------------------------- */

int64_t gc_external_adjust(gc_heap_t *h, int64_t delta) {
  h->external += delta;
  if (h->external < 0)
    h->external = 0;
  /* Ask for a full GC when external memory grew by more than the larger of
   * 64 MB and the old generation's live size since the last one. */
  int64_t grown = h->external - h->external_at_full;
  int64_t threshold = (int64_t)(h->old_used + h->large_bytes);
  if (threshold < (int64_t)(64 * GC__MB))
    threshold = (int64_t)(64 * GC__MB);
  if (grown > threshold && !h->in_gc) {
    h->full_requested = true;
    h->fast.limit = h->fast.top; /* take the slow path next time */
  }
  return h->external;
}

void gc_heap_set_near_heap_limit(gc_heap_t *h, gc_near_heap_limit_fn fn,
                                 void *data) {
  h->opt.near_heap_limit = fn;
  h->opt.near_heap_limit_data = data;
}

size_t gc_heap_limit(const gc_heap_t *h) { return h->limit; }
uint64_t gc_heap_epoch(const gc_heap_t *h) { return h->epoch; }
const gc_options_t *gc_heap_options(const gc_heap_t *h) { return &h->opt; }

size_t gc_object_size(const void *obj) {
  const gc_type_t *t = gc_object_type(obj);
  return t->size_of != NULL ? t->size_of(obj) : t->size;
}

void gc_walk_objects(gc_heap_t *h, gc_object_fn fn, void *data) {
  gc__old_finish_sweep(h);
  gc__nursery_walk(h, fn, data);
  gc__old_walk(h, fn, data);
  gc__large_walk(h, fn, data);
}

const char *gc_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
  case -EINVAL:
    return "invalid argument";
  case -ENOMEM:
    return "out of memory";
  case -ENOENT:
    return "no such entry";
  case -EPROTO:
    return "heap verification failed";
  case -EBUSY:
    return "resource busy";
  default:
    return "unknown error";
  }
}
