/* cache_internal.h -- what the backends share and users do not see. */
#ifndef TENURE_CACHE_INTERNAL_H
#define TENURE_CACHE_INTERNAL_H

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

/* Records one operation's latency: from the call (START_US, taken with
 * cache__now_us) to its answer.  Every backend calls it once per operation,
 * just before running the operation's callback, whatever the outcome
 * (errors and timeouts included: they are what users wait for). */
void cache__latency_record(cache_store_t *st, uint64_t start_us);

#endif
