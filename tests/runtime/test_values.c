/* test_values.c -- immediates, numbers, strings, the weak intern table, the
 * string builder and arrays (runtime.values). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "rt_test.h"

static void test_immediates_are_tagged(void **state) {
  assert_true(rt_is_int(rt_int(0)));
  assert_int_equal(rt_int_value(rt_int(-5)), -5);
  assert_int_equal(rt_int_value(rt_int(RT_INT_MAX)), RT_INT_MAX);
  assert_int_equal(rt_int_value(rt_int(RT_INT_MIN)), RT_INT_MIN);
  assert_int_equal(rt_typeof(RT_NULL), RT_TYPE_NULL);
  assert_int_equal(rt_typeof(RT_UNDEFINED), RT_TYPE_UNDEFINED);
  assert_int_equal(rt_typeof(RT_TRUE), RT_TYPE_BOOLEAN);
  assert_int_equal(rt_typeof(RT_FALSE), RT_TYPE_BOOLEAN);
  assert_int_equal(rt_typeof(rt_int(7)), RT_TYPE_INT);
  /* Every immediate has a low bit set: the collector ignores it. */
  rt_value_t imm[] = {RT_NULL, RT_UNDEFINED, RT_TRUE, RT_FALSE, rt_int(0),
                      rt_int(-1)};
  for (size_t i = 0; i < sizeof imm / sizeof imm[0]; i++)
    assert_true(imm[i] & GC_IMMEDIATE_MASK);
  assert_string_equal(rt_type_name(RT_TYPE_MAP), "Map");
}

static void test_numbers_box_only_when_needed(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  assert_true(rt_is_int(rt_number(rt, 42.0)));
  assert_true(rt_is_int(rt_number(rt, -1e15)));
  rt_value_t *d = rt_handle(h, rt_number(rt, 0.5));
  rt_value_t *z = rt_handle(h, rt_number(rt, -0.0));
  rt_value_t *big = rt_handle(h, rt_number(rt, 1e300));
  gc_collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_typeof(*d), RT_TYPE_DOUBLE);
  assert_true(rt_number_value(*d) == 0.5);
  assert_int_equal(rt_typeof(*z), RT_TYPE_DOUBLE);
  assert_true(signbit(rt_number_value(*z)));
  assert_true(rt_number_value(*big) == 1e300);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

static void test_strings_survive_gc(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *a = rt_handle(h, rt_string_cstr(rt, "héllo"));
  rt_value_t *b = rt_handle(h, rt_string_cstr(rt, ", wörld"));
  rt_value_t *c = rt_handle(h, rt_string_concat(rt, a, b));
  for (int i = 0; i < 1000; i++)
    rt_string_cstr(rt, "garbage garbage garbage");
  gc_collect(h, GC_COLLECT_FULL);
  assert_string_equal(rt_string_data(*c), "héllo, wörld");
  assert_int_equal(rt_string_length(*c), strlen("héllo, wörld"));
  assert_true(rt_is_string(*c));
  rt_value_t *d = rt_handle(h, rt_string_cstr(rt, "héllo, wörld"));
  assert_true(rt_string_equal(*c, *d));
  assert_int_equal(rt_string_hash(*c), rt_string_hash(*d));
  assert_true(rt_string_equal_cstr(*a, "héllo"));
  /* Invalid bytes are replaced when decoding. */
  rt_value_t *e = rt_handle(h, rt_string_from_bytes(rt, "a\xff" "b", 3));
  assert_string_equal(rt_string_data(*e), "a\xef\xbf\xbd" "b");
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

static void test_intern_is_unique_and_weak(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  size_t base = rt_intern_count(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *keep = rt_handle(h, rt_string_intern(rt, "kept", 4));
  rt_value_t *again = rt_handle(h, rt_string_intern(rt, "kept", 4));
  assert_true(*keep == *again);
  assert_true(rt_string_is_interned(*keep));
  /* Many interned strings that nobody references. */
  long n = test_scale(20000, 2000);
  char buf[32];
  for (long i = 0; i < n; i++) {
    int len = snprintf(buf, sizeof buf, "dead-%ld", i);
    assert_true(rt_string_intern(rt, buf, (size_t)len) != RT_NONE);
  }
  assert_true(rt_intern_count(rt) >= base + 1);
  gc_collect(h, GC_COLLECT_FULL);
  gc_collect(h, GC_COLLECT_FULL);
  /* Only "kept" is left; it is still the same string, still found. */
  assert_int_equal(rt_intern_count(rt), base + 1);
  rt_value_t again2 = rt_string_intern(rt, "kept", 4);
  assert_true(again2 == *keep);
  assert_string_equal(rt_string_data(*keep), "kept");
  /* Re-interning a dead name makes a fresh string. */
  rt_value_t *x = rt_handle(h, rt_string_intern(rt, "dead-1", 6));
  assert_true(rt_string_equal_cstr(*x, "dead-1"));
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

static void test_builder_is_linear(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *piece = rt_handle(h, rt_string_cstr(rt, "abc"));
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  long n = test_scale(1000000, 20000);
  double t0 = rt_test_now_ms();
  for (long i = 0; i < n; i++)
    assert_int_equal(rt_strbuf_append_string(&b, *piece), 0);
  rt_value_t *r = rt_handle(h, rt_strbuf_finish(rt, &b));
  double ms = rt_test_now_ms() - t0;
  rt_strbuf_free(&b);
  assert_int_equal(rt_string_length(*r), 3 * (size_t)n);
  assert_memory_equal(rt_string_data(*r) + 3 * (n - 1), "abc", 3);
  if (!test_under_valgrind() && !test_under_sanitizer() && !test_under_stress())
    assert_true(ms < 500); /* 3 MB: linear, not quadratic */
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

static void test_array_push_pop_shift(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *a = rt_handle(h, rt_array_new(rt, 0));
  assert_true(rt_is_array(*a));
  long n = test_scale(10000, 1500);
  for (long i = 0; i < n; i++) {
    gc_scope_t in;
    gc_scope_open(h, &in);
    char buf[32];
    snprintf(buf, sizeof buf, "s%ld", i);
    rt_value_t *v = rt_handle(h, i % 2 ? rt_int(i) : rt_string_cstr(rt, buf));
    assert_int_equal(rt_array_push(rt, a, v), 0);
    gc_scope_close(h, &in);
  }
  assert_int_equal(rt_array_length(*a), n);
  gc_collect(h, GC_COLLECT_FULL);
  for (long i = 0; i < n; i++) {
    rt_value_t v = rt_array_get(*a, (size_t)i);
    if (i % 2) {
      assert_int_equal(rt_int_value(v), i);
    } else {
      char buf[32];
      snprintf(buf, sizeof buf, "s%ld", i);
      assert_true(rt_string_equal_cstr(v, buf));
    }
  }
  assert_true(rt_array_get(*a, (size_t)n) == RT_UNDEFINED);
  assert_true(rt_string_equal_cstr(rt_array_shift(rt, *a), "s0"));
  assert_int_equal(rt_int_value(rt_array_pop(rt, *a)), n - 1);
  assert_int_equal(rt_array_length(*a), n - 2);
  rt_value_t *u = rt_handle(h, rt_string_cstr(rt, "front"));
  assert_int_equal(rt_array_unshift(rt, a, u), 0);
  assert_true(rt_string_equal_cstr(rt_array_get(*a, 0), "front"));
  assert_int_equal(rt_int_value(rt_array_get(*a, 1)), 1);
  assert_int_equal(rt_array_set(rt, *a, 1, rt_int(99)), 0);
  assert_int_equal(rt_array_set(rt, *a, (size_t)n, rt_int(99)), -ERANGE);
  gc_collect(h, GC_COLLECT_MINOR);
  assert_int_equal(rt_int_value(rt_array_get(*a, 1)), 99);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* A queue: push one, shift one, a million times.  With an O(n) shift this
 * would be ~10^11 element moves; the ring buffer keeps the store small and
 * the whole run linear. */
static void test_array_queue_shift_is_constant_time(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *q = rt_handle(h, rt_array_new(rt, 0));
  long n = test_scale(1000000, 20000);
  long backlog = 1000;
  for (long i = 0; i < backlog; i++) {
    rt_value_t *v = rt_handle(h, rt_int(i));
    assert_int_equal(rt_array_push(rt, q, v), 0);
  }
  double t0 = rt_test_now_ms();
  for (long i = 0; i < n; i++) {
    rt_value_t v = rt_int(backlog + i);
    assert_int_equal(rt_array_push(rt, q, &v), 0);
    assert_int_equal(rt_int_value(rt_array_shift(rt, *q)), i);
  }
  double ms = rt_test_now_ms() - t0;
  assert_int_equal(rt_array_length(*q), backlog);
  assert_true(rt_array_capacity(*q) <= 2048);
  if (!test_under_valgrind() && !test_under_sanitizer() && !test_under_stress())
    assert_true(ms < 1000);
  /* Also with a live boxed value in every slot, across GCs. */
  long m = test_scale(50000, 500);
  for (long i = 0; i < m; i++) {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *v = rt_handle(h, rt_number(rt, i + 0.5));
    assert_int_equal(rt_array_push(rt, q, v), 0);
    rt_value_t old = rt_array_shift(rt, *q);
    if (i >= backlog)
      assert_true(rt_number_value(old) == (double)(i - backlog) + 0.5);
    gc_scope_close(h, &in);
  }
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_immediates_are_tagged),
      cmocka_unit_test(test_numbers_box_only_when_needed),
      cmocka_unit_test(test_strings_survive_gc),
      cmocka_unit_test(test_intern_is_unique_and_weak),
      cmocka_unit_test(test_builder_is_linear),
      cmocka_unit_test(test_array_push_pop_shift),
      cmocka_unit_test(test_array_queue_shift_is_constant_time),
  };
  return cmocka_run_group_tests_name("runtime.values", tests, NULL, NULL);
}
