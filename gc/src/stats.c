/* stats.c -- heap statistics, pause distributions and --trace-gc lines.
 *
 * Every pause is kept (8 bytes each), so percentiles are exact
 * nearest-rank values over the whole run, not estimates.  Pauses are
 * recorded, and trace lines printed, by two listeners on the GC's end
 * event (events.c).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gc_internal.h"

void gc__pause_record(gc_heap_t *h, gc__pauses_t *p, double ms) {
  if (p->len == p->cap) {
    size_t ncap = p->cap ? p->cap * 2 : 64;
    double *n = gc__realloc(h, p->ms, p->cap * sizeof *n, ncap * sizeof *n);
    if (n == NULL)
      return; /* statistics only: lose the sample, not the process */
    p->ms = n;
    p->cap = ncap;
  }
  p->ms[p->len++] = ms;
  p->total += ms;
  if (ms > p->max)
    p->max = ms;
}

void gc__pauses_free(gc_heap_t *h, gc__pauses_t *p) {
  gc__free(h, p->ms, p->cap * sizeof *p->ms);
  memset(p, 0, sizeof *p);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least P% of samples <= it. */
static double rank(const double *sorted, size_t n, double pct) {
  if (n == 0)
    return 0;
  size_t k = (size_t)((pct / 100.0) * (double)n + 0.999999);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  return sorted[k - 1];
}

static void summarize(const gc__pauses_t *p, gc_pause_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->count = p->len;
  out->total_ms = p->total;
  out->max_ms = p->max;
  if (p->len == 0)
    return;
  double *s = malloc(p->len * sizeof *s);
  if (s == NULL)
    return;
  memcpy(s, p->ms, p->len * sizeof *s);
  qsort(s, p->len, sizeof *s, cmp_double);
  out->p50_ms = rank(s, p->len, 50);
  out->p99_ms = rank(s, p->len, 99);
  free(s);
}

size_t gc__used_bytes(const gc_heap_t *h) {
  return gc__young_used(h) + h->old_used + h->large_bytes;
}

size_t gc__committed_bytes(const gc_heap_t *h) {
  return 2 * h->semi_cap + gc__old_committed(h);
}

int gc_heap_stats(gc_heap_t *h, gc_heap_stats_t *out, size_t size) {
  if (h == NULL || out == NULL || size == 0)
    return -EINVAL;
  gc_heap_stats_t s;
  memset(&s, 0, sizeof s);
  size_t young_used = gc__young_used(h);
  size_t old_pages = h->pages_in_use * GC__PAGE_SIZE;

  gc_space_stats_t *ns = &s.spaces[GC_SPACE_NEW];
  ns->space_name = "new_space";
  ns->space_size = 2 * h->semi_cap;
  ns->space_used_size = young_used;
  ns->space_available_size = h->semi_cap - young_used;
  ns->physical_space_size = h->semi_cap + young_used;

  gc_space_stats_t *os = &s.spaces[GC_SPACE_OLD];
  os->space_name = "old_space";
  os->space_size = old_pages;
  os->space_used_size = h->old_used;
  os->space_available_size = old_pages - h->old_used;
  os->physical_space_size = old_pages;

  gc_space_stats_t *ls = &s.spaces[GC_SPACE_LARGE];
  ls->space_name = "large_object_space";
  ls->space_size = h->large_bytes;
  ls->space_used_size = h->large_bytes;
  ls->space_available_size = 0;
  ls->physical_space_size = h->large_bytes;

  s.total_heap_size = ns->space_size + os->space_size + ls->space_size;
  s.total_physical_size = ns->physical_space_size + os->physical_space_size +
                          ls->physical_space_size;
  s.used_heap_size = young_used + h->old_used + h->large_bytes;
  /* V8 counts the new space in its limit; we report the same sum. */
  s.heap_size_limit = h->limit + 2 * h->semi_max;
  s.total_available_size = s.heap_size_limit > s.used_heap_size
                               ? s.heap_size_limit - s.used_heap_size
                               : 0;
  s.malloced_memory = h->malloced;
  s.peak_malloced_memory = h->peak_malloced;
  s.external_memory = (size_t)h->external;

  s.scavenges = h->scavenges;
  s.full_gcs = h->full_gcs;
  s.bytes_allocated = gc__bytes_allocated(h);
  s.bytes_promoted = h->bytes_promoted;
  s.bytes_finalized_objects = h->finalized;
  summarize(&h->p_scavenge, &s.scavenge);
  summarize(&h->p_full, &s.full);
  s.total_pause_ms = s.scavenge.total_ms + s.full.total_ms;
  s.max_pause_ms = s.scavenge.max_ms > s.full.max_ms ? s.scavenge.max_ms
                                                      : s.full.max_ms;
  s.full_ms_per_live_mb =
      h->full_gcs ? h->full_ms_per_mb_sum / (double)h->full_gcs : 0;
  s.semi_space_size = h->semi_cap;
  s.max_semi_space_size = h->semi_max;
  memcpy(out, &s, size < sizeof s ? size : sizeof s);
  return 0;
}

static void pause_json(FILE *f, const char *name, const gc_pause_stats_t *p,
                       const char *sep) {
  fprintf(f,
          "\"%s\":{\"count\":%llu,\"total_ms\":%.3f,\"p50_ms\":%.4f,"
          "\"p99_ms\":%.4f,\"max_ms\":%.4f}%s",
          name, (unsigned long long)p->count, p->total_ms, p->p50_ms,
          p->p99_ms, p->max_ms, sep);
}

int gc_heap_stats_json(gc_heap_t *h, FILE *f) {
  gc_heap_stats_t s;
  int r = gc_heap_stats(h, &s, sizeof s);
  if (r < 0)
    return r;
  fprintf(f,
          "{\"total_heap_size\":%zu,\"total_physical_size\":%zu,"
          "\"total_available_size\":%zu,\"used_heap_size\":%zu,"
          "\"heap_size_limit\":%zu,\"malloced_memory\":%zu,"
          "\"peak_malloced_memory\":%zu,\"external_memory\":%zu,\"spaces\":[",
          s.total_heap_size, s.total_physical_size, s.total_available_size,
          s.used_heap_size, s.heap_size_limit, s.malloced_memory,
          s.peak_malloced_memory, s.external_memory);
  for (int i = 0; i < GC_SPACE_COUNT; i++) {
    const gc_space_stats_t *sp = &s.spaces[i];
    fprintf(f,
            "{\"space_name\":\"%s\",\"space_size\":%zu,\"space_used_size\":%zu,"
            "\"space_available_size\":%zu,\"physical_space_size\":%zu}%s",
            sp->space_name, sp->space_size, sp->space_used_size,
            sp->space_available_size, sp->physical_space_size,
            i + 1 < GC_SPACE_COUNT ? "," : "");
  }
  fprintf(f,
          "],\"gc\":{\"scavenges\":%llu,\"full_gcs\":%llu,"
          "\"bytes_allocated\":%llu,\"bytes_promoted\":%llu,",
          (unsigned long long)s.scavenges, (unsigned long long)s.full_gcs,
          (unsigned long long)s.bytes_allocated,
          (unsigned long long)s.bytes_promoted);
  pause_json(f, "scavenge", &s.scavenge, ",");
  pause_json(f, "full", &s.full, ",");
  fprintf(f,
          "\"total_pause_ms\":%.3f,\"max_pause_ms\":%.3f,"
          "\"full_ms_per_live_mb\":%.4f,\"semi_space_size\":%zu}}\n",
          s.total_pause_ms, s.max_pause_ms, s.full_ms_per_live_mb,
          s.semi_space_size);
  return 0;
}

/* --- Listeners ------------------------------------------------------------ */

static void stats_end(gc_heap_t *h, const gc__cycle_t *c) {
  if (c->kind == GC_COLLECT_MINOR) {
    h->scavenges++;
    gc__pause_record(h, &h->p_scavenge, c->pause_ms);
    return;
  }
  h->full_gcs++;
  gc__pause_record(h, &h->p_full, c->pause_ms);
  double live_mb = (double)h->old_live / (double)GC__MB;
  h->full_ms_per_mb_sum += c->pause_ms / (live_mb > 0.1 ? live_mb : 0.1);
}

const gc__listener_t gc__stats_listener = {.name = "stats", .end = stats_end};

/* One line per GC, in the shape of V8's --trace-gc:
 * [pid:heap]   120 ms: Scavenge 3.1 (4.0) -> 1.2 (4.0) MB, 0.40 / 0.00 ms  (reason)
 * (node prints it on stdout; stderr, or the trace_file option, keeps a
 * program's output diffable). */
static void trace_end(gc_heap_t *h, const gc__cycle_t *c) {
  if (!h->opt.trace_gc)
    return;
  FILE *f = h->opt.trace_file != NULL ? h->opt.trace_file : stderr;
  const double mb = (double)GC__MB;
  fprintf(f,
          "[%d:%p] %8.0f ms: %s %.1f (%.1f) -> %.1f (%.1f) MB, %.2f / 0.00 "
          "ms  (%s)\n",
          (int)getpid(), (void *)h, c->t0 - h->start_ms,
          c->kind == GC_COLLECT_MINOR ? "Scavenge" : "Mark-Sweep",
          (double)c->used_before / mb, (double)c->committed_before / mb,
          (double)gc__used_bytes(h) / mb,
          (double)gc__committed_bytes(h) / mb, c->pause_ms, c->reason);
}

const gc__listener_t gc__trace_listener = {.name = "trace", .end = trace_end};
