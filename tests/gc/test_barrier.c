/* test_barrier.c -- old-to-new stores through the write barrier survive
 * scavenges; the remembered set shrinks when the pointers go away.
 * GC_INIT_FIELD, the store that skips the barrier, is checked here too: this
 * file is built without NDEBUG, so GC_INIT_FIELD checks the holder's youth. */
#undef NDEBUG
#include <string.h>

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

/* GC_INIT_FIELD into a fresh object needs no record: the stored young objects
 * survive the scavenges that then promote their holder (a scavenge finds
 * them through the young holder, and copies them with it). */
static void test_init_store_into_fresh_object(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **kid = GC_HANDLE(h, test_pair(h, NULL, NULL, 7));
  pair_t *p = gc_alloc(h, &pair_type, sizeof(pair_t));
  GC_INIT_FIELD(h, p, car, *kid);
  GC_INIT_FIELD(h, p, cdr, (void *)(uintptr_t)0x11); /* an immediate */
  pair_t **ph = GC_HANDLE(h, p);
  *kid = NULL;
  promote(h);
  assert_int_equal(((pair_t *)(*ph)->car)->value, 7);
  assert_ptr_equal((*ph)->cdr, (void *)(uintptr_t)0x11);
  assert_int_equal(gc_verify(h), 0);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

/* ARG 0: GC_INIT_FIELD after a GC point promoted the holder; 1: into a large
 * object (allocated old). */
static void init_into_old(int arg) {
  gc_heap_t *h;
  if (gc_heap_create(NULL, &h) != 0)
    _exit(1);
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  if (arg == 0) {
    pair_t **p = GC_HANDLE(h, test_pair(h, NULL, NULL, 1));
    promote(h); /* the mistake: GC points between allocation and store */
    GC_INIT_FIELD(h, *p, car, test_pair(h, NULL, NULL, 2));
  } else {
    vec_t *v = test_vec(h, GC_MAX_REGULAR_SIZE / sizeof(void *) + 1);
    GC_INIT_FIELD(h, v, items[0], NULL);
  }
  _exit(0); /* not reached */
}

static void test_init_store_into_old_object_is_fatal(void **state) {
  (void)state;
  if (test_under_valgrind() || test_under_sanitizer())
    skip(); /* the abort is the point */
  const char *type[2] = {"Pair", "Vector"};
  for (int arg = 0; arg < 2; arg++) {
    char out[2048];
    assert_true(test_run_child(init_into_old, arg, out, sizeof out));
    assert_non_null(strstr(out, "GC_INIT_FIELD into an old"));
    assert_non_null(strstr(out, type[arg]));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_barrier_old_to_new_survives),
      cmocka_unit_test(test_barrier_deep_young_chain_under_old),
      cmocka_unit_test(test_barrier_large_object_holds_young),
      cmocka_unit_test(test_init_store_into_fresh_object),
      cmocka_unit_test(test_init_store_into_old_object_is_fatal),
  };
  return cmocka_run_group_tests_name("gc.barrier", tests, NULL, NULL);
}
