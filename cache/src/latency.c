/* latency.c -- each store's latency histogram, and cache_stats.
 *
 * The model: a latency is recorded in microseconds into a log-linear
 * histogram, values below 8 us exactly, above that 8 buckets per power of
 * two, so a percentile read off it is the upper edge of its bucket, at
 * most 1/8 above the truth, whatever the scale (a memory store answers in
 * microseconds, a remote store across a datacentre in milliseconds, a
 * timeout in seconds).  To follow the load as it is now rather than since
 * the start, every CACHE_LATENCY_WINDOW records all counts are halved: an
 * operation's weight halves with every window that passes after it.
 */
#include <string.h>

#include "cache_internal.h"

#define SUB_BITS 3u               /* 8 buckets per power of two */
#define SUB (1u << SUB_BITS)

static unsigned bucket_of(uint64_t us) {
  if (us < SUB)
    return (unsigned)us;
  unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= SUB_BITS */
  unsigned sub = (unsigned)(us >> (e - SUB_BITS)) & (SUB - 1);
  unsigned b = SUB + (e - SUB_BITS) * SUB + sub;
  return b < CACHE_LATENCY_BUCKETS ? b : CACHE_LATENCY_BUCKETS - 1;
}

/* The largest value bucket B holds. */
static uint64_t bucket_top(unsigned b) {
  if (b < SUB)
    return b;
  unsigned e = (b - SUB) / SUB + SUB_BITS, sub = (b - SUB) % SUB;
  return ((uint64_t)(SUB + sub + 1) << (e - SUB_BITS)) - 1;
}

void cache__latency_record(cache_store_t *st, uint64_t start_us) {
  if (start_us == 0)
    return; /* not sampled */
  uint64_t now = cache__now_us();
  uint64_t us = now > start_us ? now - start_us : 0;
  st->latency[bucket_of(us)]++;
  if (++st->latency_n >= 2 * CACHE_LATENCY_WINDOW) {
    uint32_t n = 0;
    for (unsigned i = 0; i < CACHE_LATENCY_BUCKETS; i++)
      n += st->latency[i] >>= 1;
    st->latency_n = n;
  }
}

/* The value below which a fraction NUM/DEN of the recorded weight lies. */
static uint64_t percentile(const cache_store_t *st, uint64_t num,
                           uint64_t den) {
  uint64_t want = ((uint64_t)st->latency_n * num + den - 1) / den, seen = 0;
  if (want == 0)
    want = 1;
  for (unsigned i = 0; i < CACHE_LATENCY_BUCKETS; i++) {
    seen += st->latency[i];
    if (seen >= want)
      return bucket_top(i);
  }
  return 0;
}

void cache_stats(cache_store_t *st, cache_stats_t *out) {
  memset(out, 0, sizeof *out);
  st->type->stats(st, out);
  out->latency_samples = st->latency_n;
  if (st->latency_n > 0) {
    out->latency_p50_us = percentile(st, 50, 100);
    out->latency_p99_us = percentile(st, 99, 100);
  }
}
