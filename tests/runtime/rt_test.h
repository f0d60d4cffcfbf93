/* rt_test.h -- shared setup for the runtime tests: a test heap (small new
 * space, TENURE_OPTIONS applied, see test_util.h) wrapped in a runtime. */
#ifndef RT_TEST_H
#define RT_TEST_H

#include <time.h>

#include "test_util.h"

#include <tenure/rt.h>

static inline rt_runtime_t *rt_test_runtime(void) {
  gc_heap_t *h = test_heap();
  rt_runtime_t *rt = NULL;
  assert_int_equal(rt_runtime_create(h, &rt), 0);
  return rt;
}

static inline double rt_test_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif /* RT_TEST_H */
