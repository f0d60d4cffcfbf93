/* heap.c -- the heap: creation and teardown, the sequence of a collection,
 * the allocation slow path and the heap limit.
 *
 * A collection, minor or full, runs one sequence (collect): the start
 * event, the work (a scavenge and a few pages of lazy sweeping; or finish
 * the sweep, mark, sweep large objects, queue old pages, scavenge), the
 * sizing policy's update, the end event (statistics, --trace-gc,
 * --verify-heap: events.c), then the weak callbacks, which may allocate.
 *
 * The allocation slow path, in order:
 *   1. the safepoint event (a pending signal snapshot is written);
 *   2. debug modes (--stress-gc, --gc-interval) force a GC first, and under
 *      them and --verify-heap every allocation comes here (types are
 *      checked, sizes recorded for the verifier);
 *   3. a type never registered is a fatal error naming it (types.c);
 *   4. when new space is full: a scavenge, or a full GC when policy.c says
 *      the old generation is due;
 *   5. after any GC that left old + large space over the limit: a full GC,
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

#define STRESS_FULL_EVERY 8 /* under --stress-gc, every 8th GC is full */

/* --- Creation ---------------------------------------------------------------- */

int gc_heap_create(const gc_options_t *o, gc_heap_t **out) {
  if (out == NULL)
    return -EINVAL;
  gc_options_t opt;
  if (o != NULL)
    opt = *o;
  else
    gc_options_init(&opt);
  size_t semi_reserve;
  if (gc__policy_defaults(&opt, &semi_reserve) < 0)
    return -EINVAL;

  gc_heap_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return -ENOMEM;
  h->malloced = h->peak_malloced = sizeof *h;
  h->opt = opt;
  h->limit = h->initial_limit = opt.max_old_space_size;
  h->semi_min = opt.min_semi_space_size;
  h->semi_max = opt.max_semi_space_size;
  h->semi_reserve = semi_reserve;
  h->debug_gc = opt.stress_gc || opt.gc_interval > 0;
  h->force_slow = h->debug_gc || opt.verify_heap;
  h->start_ms = gc__now_ms();
  h->resized_at_ms = h->start_ms;
  gc__policy_init(h);
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
    gc_heap_t *h = data;
    t->finalize(h, obj);
    h->finalized++;
  }
}

void gc_heap_destroy(gc_heap_t *h) {
  if (h == NULL)
    return;
  gc__snapshot_signal_stop(h);
  /* Every object still here dies now: finalize each exactly once (a heap
   * whose types have no finalizers skips the walk). */
  if (h->finalizers) {
    h->in_gc = true; /* finalizers' gc_external_adjust must not ask a GC */
    gc__sweep_finish(h);
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
  gc__vec_free(h, &h->ephemerons);
  gc__vec_free(h, &h->alloc_sizes);
  gc__pauses_free(h, &h->p_scavenge);
  gc__pauses_free(h, &h->p_full);
  gc__types_destroy(h);
  free(h);
}

/* --- Collections ----------------------------------------------------------- */

static void collect(gc_heap_t *h, gc_collect_kind_t kind, const char *reason,
                    bool eager_sweep) {
  gc__cycle_t c = {kind, reason, gc__now_ms(), gc__used_bytes(h),
                   gc__committed_bytes(h), 0};
  h->in_gc = true;
  h->cycle_t0 = c.t0;
  gc__emit_start(h, &c);
  if (kind == GC_COLLECT_MINOR) {
    gc__scavenge(h);
    gc__sweep_some(h, gc__policy_sweep_quota(h));
  } else {
    /* Mark everything reachable, new space included, and decide the weak
     * references; queue old pages for sweeping; then a scavenge moves the
     * marked new-space objects out of from-space, so the dead ones (held
     * only by dead old objects, or by ephemerons whose keys died) are
     * gone with it.  Objects it promotes are allocated after the mark, so
     * the sweep never frees them (INV(sweep)). */
    gc__sweep_finish(h);
    gc__mark(h);
    gc__large_sweep(h);
    gc__sweep_prepare(h);
    gc__policy_after_full(h);
    gc__scavenge(h);
    if (eager_sweep || h->opt.verify_heap)
      gc__sweep_finish(h);
    h->epoch++;
  }
  h->in_gc = false;
  c.pause_ms = gc__now_ms() - c.t0;
  gc__emit_end(h, &c);
  gc__weak_callbacks(h);
}

void gc_collect(gc_heap_t *h, gc_collect_kind_t kind) {
  if (h == NULL || h->in_gc)
    return;
  collect(h, kind, "requested", kind == GC_COLLECT_FULL);
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
  gc__sweep_finish(h);
  if (gc__old_committed(h) + need <= h->limit)
    return false;
  if (h->opt.near_heap_limit != NULL) {
    size_t n = h->opt.near_heap_limit(h->opt.near_heap_limit_data, h->limit,
                                      h->initial_limit);
    if (n > h->limit) {
      h->limit = n;
      gc__policy_limit_raised(h);
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
  if (h->opt.verify_heap)
    gc__verify_record_size(h, o + 1, total);
  return o + 1;
}

/* A GC because new space is full or a debug mode asked: a scavenge, or a
 * full GC when asked or when the old generation is due. */
static void collect_for_allocation(gc_heap_t *h, bool full, const char *why) {
  if (full)
    collect(h, GC_COLLECT_FULL, why, false);
  else if (gc__policy_full_due(h, 0))
    collect(h, GC_COLLECT_FULL,
            h->full_requested ? "external memory pressure"
            : h->full_cheap   ? "old generation (cheap now)"
                              : "allocation failure (old generation)",
            false);
  else
    collect(h, GC_COLLECT_MINOR, why, false);
}

static void *large_slow(gc_heap_t *h, const gc_type_t *t, size_t size) {
  if (gc__policy_full_due(h, size))
    collect(h, GC_COLLECT_FULL, "allocation failure (large object)", false);
  void *p = gc__large_alloc(h, t, size);
  for (int attempt = 0; p == NULL && attempt < 3; attempt++) {
    /* Over the limit: a full GC, then the near-heap-limit callback. */
    collect(h, GC_COLLECT_FULL, "allocation failure (large object)", true);
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
  gc__emit_safepoint(h);
  gc__type_check(h, t);
  if (h->debug_gc) {
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
      collect(h, GC_COLLECT_FULL, "heap limit raised", false);
    } else {
      if (h->opt.null_on_oom)
        return NULL;
      heap_limit_fatal(h);
    }
  }
  return bump(h, t, total); /* counted by gc__bytes_allocated */
}

void gc__register_finalizable(gc_heap_t *h, void *obj) {
  gc__vec_push(h, &h->finalizable, obj);
}

/* --- Small accessors ----------------------------------------------------------- */

int64_t gc_external_adjust(gc_heap_t *h, int64_t delta) {
  h->external += delta;
  if (h->external < 0)
    h->external = 0;
  gc__policy_external(h);
  return h->external;
}

void gc_heap_set_near_heap_limit(gc_heap_t *h, gc_near_heap_limit_fn fn,
                                 void *data) {
  h->opt.near_heap_limit = fn;
  h->opt.near_heap_limit_data = data;
}

void gc_heap_set_user_data(gc_heap_t *h, void *data) { h->user_data = data; }
void *gc_heap_user_data(const gc_heap_t *h) { return h->user_data; }
size_t gc_heap_limit(const gc_heap_t *h) { return h->limit; }
uint64_t gc_heap_epoch(const gc_heap_t *h) { return h->epoch; }
const gc_options_t *gc_heap_options(const gc_heap_t *h) { return &h->opt; }

size_t gc_object_size(const void *obj) {
  const gc_type_t *t = gc_object_type(obj);
  return t->size_of != NULL ? t->size_of(obj) : t->size;
}

void gc_walk_objects(gc_heap_t *h, gc_object_fn fn, void *data) {
  gc__sweep_finish(h);
  gc__nursery_walk(h, fn, data);
  gc__old_walk(h, fn, data);
  gc__large_walk(h, fn, data);
}
