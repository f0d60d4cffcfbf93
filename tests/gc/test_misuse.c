/* test_misuse.c -- embedder mistakes are reported at once, by name: an
 * unregistered type at allocation, a variable-size object whose size_of
 * does not match what was allocated. */
#include <string.h>

#include "test_util.h"

static const gc_type_t stray_type = {.name = "StrayType",
                                     .size = sizeof(pair_t),
                                     .trace = pair_trace};

/* ARG 0: a small object under --verify-heap (every allocation is checked);
 * 1: a large object, in a heap without debug flags. */
static void alloc_unregistered(int arg) {
  gc_options_t o;
  gc_options_init(&o);
  o.verify_heap = arg == 0;
  gc_heap_t *h;
  if (gc_heap_create(&o, &h) != 0)
    _exit(1);
  test_register_zoo(h);
  if (arg == 0)
    gc_alloc(h, &stray_type, sizeof(pair_t));
  else
    gc_alloc(h, &stray_type, GC_MAX_REGULAR_SIZE + 1);
  _exit(0); /* not reached */
}

static void test_misuse_unregistered_type_is_named(void **state) {
  (void)state;
  if (test_under_valgrind() || test_under_sanitizer())
    skip(); /* the abort is the point; the tools would report it */
  for (int arg = 0; arg < 2; arg++) {
    char out[2048];
    assert_true(test_run_child(alloc_unregistered, arg, out, sizeof out));
    assert_non_null(strstr(out, "'StrayType'"));
    assert_non_null(strstr(out, "never registered"));
  }
}

/* A vector whose length is written only after a GC point: the classic
 * variable-size mistake.  --verify-heap stops at the next GC and names the
 * type and both sizes, before the scavenger copies it at the wrong size. */
static void length_written_late(int arg) {
  (void)arg;
  gc_options_t o;
  gc_options_init(&o);
  o.verify_heap = true;
  o.max_semi_space_size = o.min_semi_space_size = 256 * 1024;
  gc_heap_t *h;
  if (gc_heap_create(&o, &h) != 0)
    _exit(1);
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  vec_t **v = GC_HANDLE(h, (vec_t *)gc_alloc(h, &vec_type,
                                            sizeof(vec_t) + 10 * sizeof(void *)));
  /* The mistake: a GC point before the length is set. */
  gc_collect(h, GC_COLLECT_MINOR);
  (*v)->len = 10;
  _exit(0);
}

static void test_misuse_size_of_mismatch_is_named(void **state) {
  (void)state;
  if (test_under_valgrind() || test_under_sanitizer())
    skip();
  char out[2048];
  assert_true(test_run_child(length_written_late, 0, out, sizeof out));
  assert_non_null(strstr(out, "'Vector'"));
  assert_non_null(strstr(out, "allocated with 88 payload bytes"));
  assert_non_null(strstr(out, "size_of now says 8"));
}

/* The full GC marks new-space objects instead of treating every survivor
 * as a root: a young object held only by a dead old one dies in that full
 * GC (its weak handle clears), and so does an old object it held. */
static void test_full_gc_does_not_keep_young_garbage(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **holder = GC_HANDLE(h, test_pair(h, NULL, NULL, 1));
  pair_t **old_target = GC_HANDLE(h, test_pair(h, NULL, NULL, 3));
  for (int i = 0; i < 3; i++)
    gc_collect(h, GC_COLLECT_MINOR); /* holder and old_target are old */
  pair_t *young = test_pair(h, *old_target, NULL, 2);
  GC_WRITE(h, *holder, car, young);
  gc_persistent_t *wy = gc_weak_new(h, young, NULL, NULL);
  gc_persistent_t *wo = gc_weak_new(h, *old_target, NULL, NULL);
  *old_target = NULL;
  /* The old holder dies.  The full GC's scavenge still copies the young
   * object (the holder is remembered, and a scavenge cannot know it is
   * dead) but keeps it young (age 1); the mark must then find it dead. */
  *holder = NULL;
  gc_collect(h, GC_COLLECT_FULL);
  assert_null(gc_persistent_get(wy));
  assert_null(gc_persistent_get(wo));
  assert_int_equal(gc_verify(h), 0);
  gc_persistent_free(h, wy);
  gc_persistent_free(h, wo);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_misuse_unregistered_type_is_named),
      cmocka_unit_test(test_misuse_size_of_mismatch_is_named),
      cmocka_unit_test(test_full_gc_does_not_keep_young_garbage),
  };
  return cmocka_run_group_tests_name("gc.misuse", tests, NULL, NULL);
}
