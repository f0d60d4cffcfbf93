/* test_map.c -- insertion-ordered maps (runtime.map). */
#include <string.h>
#include <time.h>

#include "rt_test.h"

/* GC point.  Sets map[KEY] = VAL where KEY is a C string. */
static void set_s(rt_runtime_t *rt, rt_value_t *m, const char *key,
                  rt_value_t val) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *v = rt_handle(h, val);
  rt_value_t *k = rt_handle(h, rt_string_cstr(rt, key));
  assert_int_equal(rt_map_set(rt, m, k, v), 0);
  gc_scope_close(h, &s);
}

static void test_map_basic_and_order(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *m = rt_handle(h, rt_map_new(rt, 0));
  assert_true(rt_is_map(*m));
  set_s(rt, m, "zebra", rt_int(1));
  set_s(rt, m, "apple", rt_int(2));
  rt_value_t k = rt_int(-7), v = RT_TRUE;
  assert_int_equal(rt_map_set(rt, m, &k, &v), 0);
  set_s(rt, m, "mango", rt_int(3));
  set_s(rt, m, "apple", rt_int(20)); /* update keeps the position */
  assert_int_equal(rt_map_size(*m), 4);
  assert_int_equal(rt_int_value(rt_map_get_cstr(*m, "apple")), 20);
  assert_true(rt_map_get(*m, rt_int(-7)) == RT_TRUE);
  assert_true(rt_map_get(*m, rt_int(7)) == RT_NONE);
  assert_true(rt_map_get_cstr(*m, "kiwi") == RT_NONE);
  /* A double is not a key. */
  rt_value_t *dk = rt_handle(h, rt_number(rt, 0.5));
  assert_int_equal(rt_map_set(rt, m, dk, &v), -EINVAL);
  const char *order[] = {"zebra", "apple", NULL, "mango"};
  size_t cur = 0, i = 0;
  rt_value_t key, val;
  while (rt_map_next(*m, &cur, &key, &val)) {
    if (order[i])
      assert_true(rt_string_equal_cstr(key, order[i]));
    else
      assert_int_equal(rt_int_value(key), -7);
    i++;
  }
  assert_int_equal(i, 4);
  /* Lookup by a different string with the same content. */
  rt_value_t *probe = rt_handle(h, rt_string_cstr(rt, "mango"));
  assert_int_equal(rt_int_value(rt_map_get(*m, *probe)), 3);
  assert_int_equal(rt_map_delete(rt, *m, *probe), 0);
  assert_int_equal(rt_map_delete(rt, *m, *probe), -ENOENT);
  assert_int_equal(rt_map_size(*m), 3);
  assert_false(rt_map_has(*m, *probe));
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* Iterate with a cursor while allocating garbage (GCs move the map, the
 * table and every key) and deleting entries ahead of the cursor. */
static void test_map_iteration_survives_gc(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  long n = test_scale(2000, 400);
  rt_value_t *m = rt_handle(h, rt_map_new(rt, (size_t)n));
  char buf[32];
  for (long i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "key%ld", i);
    set_s(rt, m, buf, rt_int(i));
  }
  size_t cur = 0;
  long seen = 0, expect = 0;
  rt_value_t key, val;
  while (rt_map_next(*m, &cur, &key, &val)) {
    assert_int_equal(rt_int_value(val), expect);
    snprintf(buf, sizeof buf, "key%ld", expect);
    assert_true(rt_string_equal_cstr(key, buf));
    /* Delete the next odd entry before the cursor gets there. */
    if (expect % 2 == 0 && expect + 1 < n) {
      rt_value_t dk = rt_map_get_cstr(*m, "key0"); /* keep a value alive */
      (void)dk;
      gc_scope_t in;
      gc_scope_open(h, &in);
      snprintf(buf, sizeof buf, "key%ld", expect + 1);
      rt_value_t *k = rt_handle(h, rt_string_cstr(rt, buf));
      assert_int_equal(rt_map_delete(rt, *m, *k), 0);
      for (int j = 0; j < 20; j++)
        rt_string_cstr(rt, "garbage to trigger collections");
      gc_scope_close(h, &in);
    }
    expect += 2;
    seen++;
  }
  assert_int_equal(seen, (n + 1) / 2);
  assert_int_equal(rt_map_size(*m), (size_t)(n + 1) / 2);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

static void test_map_million_entries(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *m = rt_handle(h, rt_map_new(rt, 0));
  long n = test_scale(1000000, 6000);
  char buf[32];
  double t0 = rt_test_now_ms();
  for (long i = 0; i < n; i++) {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *v = rt_handle(h, rt_int(i));
    rt_value_t *k;
    if (i % 2) {
      k = rt_handle(h, rt_int(i));
    } else {
      int len = snprintf(buf, sizeof buf, "k%ld", i);
      k = rt_handle(h, rt_string_new(rt, buf, (size_t)len));
    }
    assert_int_equal(rt_map_set(rt, m, k, v), 0);
    gc_scope_close(h, &in);
  }
  double ms = rt_test_now_ms() - t0;
  assert_int_equal(rt_map_size(*m), (size_t)n);
  gc_collect(h, GC_COLLECT_FULL);
  for (long i = 0; i < n; i++) {
    rt_value_t v;
    if (i % 2) {
      v = rt_map_get(*m, rt_int(i));
    } else {
      snprintf(buf, sizeof buf, "k%ld", i);
      v = rt_map_get_cstr(*m, buf);
    }
    assert_int_equal(rt_int_value(v), i);
  }
  size_t cur = 0;
  long i = 0;
  rt_value_t key;
  while (rt_map_next(*m, &cur, &key, NULL)) {
    if (i % 2)
      assert_int_equal(rt_int_value(key), i);
    i++;
  }
  assert_int_equal(i, n);
  if (!test_under_valgrind() && !test_under_sanitizer() && !test_under_stress())
    assert_true(ms < 3000);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* A sliding window: insert key i, delete key i - W.  The table must stay
 * within a constant factor of W, not grow with the number of deletes. */
static void test_map_deletes_interleaved_stay_bounded(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *m = rt_handle(h, rt_map_new(rt, 0));
  long n = test_scale(300000, 10000), w = 100;
  size_t maxcap = 0;
  char buf[32];
  for (long i = 0; i < n; i++) {
    gc_scope_t in;
    gc_scope_open(h, &in);
    snprintf(buf, sizeof buf, "item-%ld", i);
    rt_value_t *k = rt_handle(h, rt_string_cstr(rt, buf));
    rt_value_t *v = rt_handle(h, rt_string_cstr(rt, buf));
    assert_int_equal(rt_map_set(rt, m, k, v), 0);
    if (i >= w) {
      snprintf(buf, sizeof buf, "item-%ld", i - w);
      rt_value_t *dk = rt_handle(h, rt_string_cstr(rt, buf));
      assert_int_equal(rt_map_delete(rt, *m, *dk), 0);
    }
    gc_scope_close(h, &in);
    if (rt_map_capacity(*m) > maxcap)
      maxcap = rt_map_capacity(*m);
  }
  assert_int_equal(rt_map_size(*m), (size_t)w);
  assert_true(maxcap <= 4 * (size_t)w + 4);
  /* The survivors are the last W, in order. */
  size_t cur = 0;
  long i = n - w;
  rt_value_t key, val;
  while (rt_map_next(*m, &cur, &key, &val)) {
    snprintf(buf, sizeof buf, "item-%ld", i++);
    assert_true(rt_string_equal_cstr(key, buf));
    assert_true(rt_string_equal_cstr(val, buf));
  }
  assert_int_equal(i, n);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_map_basic_and_order),
      cmocka_unit_test(test_map_iteration_survives_gc),
      cmocka_unit_test(test_map_million_entries),
      cmocka_unit_test(test_map_deletes_interleaved_stay_bounded),
  };
  return cmocka_run_group_tests_name("runtime.map", tests, NULL, NULL);
}
