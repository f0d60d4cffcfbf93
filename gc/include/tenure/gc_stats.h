/* gc_stats.h -- heap statistics in V8's vocabulary.
 *
 * gc_heap_stats fills the fields of v8.getHeapStatistics() and
 * v8.getHeapSpaceStatistics(), plus the collector's own counters and pause
 * distributions.  The struct can grow: callers pass sizeof, and fields past
 * what an older caller knows are not written.
 */
#ifndef TENURE_GC_STATS_H
#define TENURE_GC_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <tenure/gc_type.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gc_heap_s gc_heap_t;

enum { GC_SPACE_NEW = 0, GC_SPACE_OLD = 1, GC_SPACE_LARGE = 2, GC_SPACE_COUNT };

typedef struct gc_space_stats_s {
  const char *space_name; /* "new_space", "old_space", "large_object_space" */
  size_t space_size;      /* committed bytes */
  size_t space_used_size;
  size_t space_available_size;
  size_t physical_space_size; /* bytes backed by memory */
} gc_space_stats_t;

typedef struct gc_pause_stats_s {
  uint64_t count;
  double total_ms;
  double p50_ms; /* nearest-rank percentiles over every pause of the kind */
  double p99_ms;
  double max_ms;
} gc_pause_stats_t;

typedef struct gc_heap_stats_s {
  /* v8.getHeapStatistics() */
  size_t total_heap_size;
  size_t total_physical_size;
  size_t total_available_size;
  size_t used_heap_size;
  size_t heap_size_limit;
  size_t malloced_memory;
  size_t peak_malloced_memory;
  size_t external_memory;
  /* v8.getHeapSpaceStatistics() */
  gc_space_stats_t spaces[GC_SPACE_COUNT];
  /* Collector counters. */
  uint64_t scavenges;
  uint64_t full_gcs;
  uint64_t bytes_allocated; /* into new space and large-object space */
  uint64_t bytes_promoted;
  uint64_t bytes_finalized_objects; /* objects whose finalizer ran */
  gc_pause_stats_t scavenge;
  gc_pause_stats_t full;
  double total_pause_ms;
  double max_pause_ms;
  /* Full-GC pause per MB live after it (the mean over all full GCs). */
  double full_ms_per_live_mb;
  size_t semi_space_size;     /* new space's capacity (V8: one semispace) */
  size_t max_semi_space_size;
} gc_heap_stats_t;

/* Fills up to SIZE bytes of OUT.  Returns 0 or -EINVAL. */
GC_EXTERN int gc_heap_stats(gc_heap_t *h, gc_heap_stats_t *out, size_t size);

/* Writes the statistics as one JSON object (getHeapStatistics field names
 * at the top level, "spaces" and "gc" objects below). */
GC_EXTERN int gc_heap_stats_json(gc_heap_t *h, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_GC_STATS_H */
