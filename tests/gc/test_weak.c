/* test_weak.c -- weak handles and weak edges clear when their object dies,
 * and keep it while something else does. */
#include "test_util.h"

static int cb_calls;
static void *cb_data;
static void on_dead(void *data, gc_persistent_t *p) {
  cb_calls++;
  cb_data = data;
  assert_null(gc_persistent_get(p));
}

static void test_weak_handle_clears_young_and_old(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  cb_calls = 0;
  gc_persistent_t *strong = gc_persistent_new(h, test_pair(h, NULL, NULL, 1));
  gc_persistent_t *w1 =
      gc_weak_new(h, gc_persistent_get(strong), on_dead, (void *)0x1);
  gc_persistent_t *w2 =
      gc_weak_new(h, test_pair(h, NULL, NULL, 2), on_dead, (void *)0x2);
  gc_collect(h, GC_COLLECT_MINOR);
  /* w1's object is strongly held and moved: the weak handle follows it. */
  assert_ptr_equal(gc_persistent_get(w1), gc_persistent_get(strong));
  /* w2's died young. */
  assert_null(gc_persistent_get(w2));
  assert_int_equal(cb_calls, 1);
  assert_ptr_equal(cb_data, (void *)0x2);
  /* Promote w1's object, drop the strong handle: a full GC clears it. */
  gc_collect(h, GC_COLLECT_MINOR);
  gc_collect(h, GC_COLLECT_MINOR);
  gc_persistent_free(h, strong);
  gc_collect(h, GC_COLLECT_MINOR);
  assert_non_null(gc_persistent_get(w1)); /* old: only a full GC knows */
  gc_collect(h, GC_COLLECT_FULL);
  assert_null(gc_persistent_get(w1));
  assert_int_equal(cb_calls, 2);
  gc_persistent_free(h, w1);
  gc_persistent_free(h, w2);
  gc_heap_destroy(h);
}

/* A weak cell: one weak reference. */
typedef struct wcell {
  void *target;
} wcell_t;
static void wcell_trace(void *obj, gc_visitor_t *v) {
  GC_VISIT(v, &((wcell_t *)obj)->target, GC_EDGE_WEAK("target"));
}
static const gc_type_t wcell_type = {
    .name = "WeakCell", .size = sizeof(wcell_t), .trace = wcell_trace};

static void test_weak_edge_in_object(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  assert_int_equal(gc_type_register(h, &wcell_type), 0);
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **kept = (pair_t **)gc_handle(h, test_pair(h, NULL, NULL, 10));
  wcell_t **a = (wcell_t **)gc_handle(h, gc_alloc(h, &wcell_type, sizeof(wcell_t)));
  gc_write(h, *a, &(*a)->target, *kept);
  wcell_t **b = (wcell_t **)gc_handle(h, gc_alloc(h, &wcell_type, sizeof(wcell_t)));
  gc_write(h, *b, &(*b)->target, test_pair(h, NULL, NULL, 11));
  gc_collect(h, GC_COLLECT_MINOR);
  assert_ptr_equal((*a)->target, *kept);
  assert_null((*b)->target);
  /* Old holder, young target reachable only weakly. */
  for (int i = 0; i < 3; i++)
    gc_collect(h, GC_COLLECT_MINOR);
  gc_write(h, *b, &(*b)->target, test_pair(h, NULL, NULL, 12));
  gc_collect(h, GC_COLLECT_MINOR);
  assert_null((*b)->target);
  /* Old holder, old target: a full GC clears when the target dies. */
  *kept = NULL;
  gc_collect(h, GC_COLLECT_FULL);
  assert_null((*a)->target);
  assert_int_equal(gc_verify(h), 0);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_weak_handle_clears_young_and_old),
      cmocka_unit_test(test_weak_edge_in_object),
  };
  return cmocka_run_group_tests_name("gc.weak", tests, NULL, NULL);
}
