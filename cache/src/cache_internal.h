/* cache_internal.h -- what the backends share and users do not see. */
#ifndef TENURE_CACHE_INTERNAL_H
#define TENURE_CACHE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <tenure/cache.h>

/* Now, in microseconds of CLOCK_MONOTONIC: what an operation's start time
 * is taken with. */
static inline uint64_t cache__now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A key's 32-bit FNV-1a hash: the memory store's buckets and the near
 * store's invalidation counters. */
static inline uint32_t cache__hash_key(const char *k, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t)k[i];
    h *= 16777619u;
  }
  return h;
}

/* A stats sample's counted_ms_ago (cache.h): UINT64_MAX when none
 * succeeded (SAMPLED false), else the ms since it started (SAMPLED_US, from
 * cache__now_us). */
static inline uint64_t cache__counted_ms_ago(bool sampled,
                                             uint64_t sampled_us) {
  if (!sampled)
    return UINT64_MAX;
  uint64_t now = cache__now_us();
  return now > sampled_us ? (now - sampled_us) / 1000 : 0;
}

/* One operation in CACHE_LATENCY_SAMPLE_EVERY is timed: reading the clock
 * costs a system call on some virtual machines (about 0.5 us, a sixth of
 * a memory-store hit's whole cost), and a sample of the operations gives
 * the same percentiles. */
#define CACHE_LATENCY_SAMPLE_EVERY 8u

/* An operation's start: cache__now_us() when this one is sampled, else 0
 * (not timed).  Call once per operation, at the call. */
static inline uint64_t cache__latency_start(cache_store_t *st) {
  return st->latency_tick++ % CACHE_LATENCY_SAMPLE_EVERY == 0 ? cache__now_us()
                                                              : 0;
}

/* Records one operation's latency: from the call (START_US, from
 * cache__latency_start; 0: not sampled, nothing recorded) to its answer.
 * Every backend calls it once per operation, just before running the
 * operation's callback, whatever the outcome (errors and timeouts
 * included: they are what users wait for). */
void cache__latency_record(cache_store_t *st, uint64_t start_us);

#endif
