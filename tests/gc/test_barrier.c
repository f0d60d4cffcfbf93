/* test_barrier.c -- old-to-new stores through the write barrier survive
 * scavenges; the remembered set shrinks when the pointers go away. */
#include "test_util.h"

static void promote(gc_heap_t *h) {
  for (int i = 0; i < 3; i++)
    gc_collect(h, GC_COLLECT_MINOR);
}

static void test_barrier_old_to_new_survives(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  vec_t **old = (vec_t **)gc_handle(h, test_vec(h, 64));
  promote(h);
  size_t old_used = test_stats(h).spaces[GC_SPACE_OLD].space_used_size;
  assert_true(old_used > 0);
  /* The vector is old now; fill it with young pairs reachable only from it. */
  for (long i = 0; i < 64; i++) {
    pair_t *p = test_pair(h, NULL, NULL, i);
    gc_write(h, *old, &(*old)->items[i], p);
  }
  for (int round = 0; round < 5; round++) {
    /* Garbage to force scavenges while the only path is old -> new. */
    for (int k = 0; k < 3000; k++)
      test_pair(h, NULL, NULL, -1);
    gc_collect(h, GC_COLLECT_MINOR);
    for (long i = 0; i < 64; i++)
      assert_int_equal(((pair_t *)(*old)->items[i])->value, i);
  }
  assert_int_equal(gc_verify(h), 0);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

static void test_barrier_deep_young_chain_under_old(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **root = (pair_t **)gc_handle(h, test_pair(h, NULL, NULL, -1));
  promote(h);
  /* A young list hanging off an old pair, built by repeated stores. */
  for (long i = 0; i < 20000; i++) {
    pair_t *p = test_pair(h, NULL, (*root)->cdr, i);
    gc_write(h, *root, &(*root)->cdr, p);
  }
  gc_collect(h, GC_COLLECT_MINOR);
  gc_collect(h, GC_COLLECT_MINOR);
  long expect = 19999;
  for (pair_t *p = (*root)->cdr; p != NULL; p = p->cdr)
    assert_int_equal(p->value, expect--);
  assert_int_equal(expect, -1);
  gc_collect(h, GC_COLLECT_FULL);
  expect = 19999;
  for (pair_t *p = (*root)->cdr; p != NULL; p = p->cdr)
    assert_int_equal(p->value, expect--);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

static void test_barrier_large_object_holds_young(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  /* Over GC_MAX_REGULAR_SIZE: born in large-object space, old at once. */
  vec_t **big = (vec_t **)gc_handle(h, test_vec(h, 4096));
  assert_true(test_stats(h).spaces[GC_SPACE_LARGE].space_used_size > 0);
  for (long i = 0; i < 4096; i += 7)
    gc_write(h, *big, &(*big)->items[i], test_pair(h, NULL, NULL, i));
  gc_collect(h, GC_COLLECT_MINOR);
  gc_collect(h, GC_COLLECT_MINOR);
  for (long i = 0; i < 4096; i++) {
    pair_t *p = (*big)->items[i];
    if (i % 7)
      assert_null(p);
    else
      assert_int_equal(p->value, i);
  }
  assert_int_equal(gc_verify(h), 0);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_barrier_old_to_new_survives),
      cmocka_unit_test(test_barrier_deep_young_chain_under_old),
      cmocka_unit_test(test_barrier_large_object_holds_young),
  };
  return cmocka_run_group_tests_name("gc.barrier", tests, NULL, NULL);
}
