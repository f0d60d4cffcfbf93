/* test_options.c -- heap flags from argv and TENURE_OPTIONS. */
#include <string.h>

#include "test_util.h"

static void test_options_argv_removes_ours(void **state) {
  (void)state;
  gc_options_t o;
  gc_options_init(&o);
  char *argv[] = {"prog", "--max-old-space-size=64", "input.json",
                  "--trace-gc", "--max_semi_space_size", "2", "--port=80",
                  "--stress-gc", "--verify-heap", "--gc-interval=100",
                  "--promotion-age=2", "--", "--trace-gc", NULL};
  int argc = 13;
  char err[128];
  assert_int_equal(gc_options_parse_argv(&o, &argc, argv, err, sizeof err), 0);
  assert_int_equal(argc, 5);
  assert_string_equal(argv[0], "prog");
  assert_string_equal(argv[1], "input.json");
  assert_string_equal(argv[2], "--port=80");
  assert_string_equal(argv[3], "--");
  assert_string_equal(argv[4], "--trace-gc"); /* after "--": the host's */
  assert_null(argv[5]);
  assert_int_equal(o.max_old_space_size, 64u << 20);
  assert_int_equal(o.max_semi_space_size, 2u << 20);
  assert_true(o.trace_gc && o.stress_gc && o.verify_heap);
  assert_int_equal(o.gc_interval, 100);
  assert_int_equal(o.promotion_age, 2);
}

static void test_options_new_space_kb(void **state) {
  (void)state;
  gc_options_t o;
  gc_options_init(&o);
  assert_int_equal(gc_options_parse_string(&o, "--max-new-space-size=4096",
                                           NULL, 0), 0);
  assert_int_equal(o.max_semi_space_size, 2u << 20); /* half of 4 MB */
}

/* --gc-interval=0 means off, as gc_options.h says: accepted, and a heap
 * with it runs no debug GCs (an earlier --gc-interval is turned off). */
static void test_options_gc_interval_zero_is_off(void **state) {
  (void)state;
  gc_options_t o;
  gc_options_init(&o);
  char err[128] = "";
  assert_int_equal(gc_options_parse_string(&o, "--gc-interval=50 --gc-interval=0",
                                           err, sizeof err), 0);
  assert_int_equal(o.gc_interval, 0);
  o.max_semi_space_size = 4u << 20;
  gc_heap_t *h = test_heap_with(&o);
  test_register_zoo(h);
  for (int i = 0; i < 1000; i++)
    test_pair(h, NULL, NULL, i);
  gc_heap_stats_t st = test_stats(h);
  assert_int_equal(st.scavenges + st.full_gcs, 0);
  gc_heap_destroy(h);
}

static void test_options_bad_values(void **state) {
  (void)state;
  const char *bad[] = {"--max-old-space-size=abc", "--max-old-space-size=0",
                       "--max-old-space-size=-5", "--max-old-space-size=",
                       "--max-semi-space-size=99999", "--promotion-age=9",
                       "--gc-interval=x", "--trace-gc=maybe",
                       "--max-new-space-size=12", "--max-old-space-size"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gc_options_t o;
    gc_options_init(&o);
    o.max_old_space_size = 77;
    char *argv[] = {"prog", (char *)bad[i], NULL};
    int argc = 2;
    char err[256] = "";
    assert_int_equal(gc_options_parse_argv(&o, &argc, argv, err, sizeof err),
                     -EINVAL);
    /* The message names the flag, and nothing changed. */
    const char *name = bad[i] + 2;
    size_t n = strcspn(name, "=");
    char flag[64];
    snprintf(flag, sizeof flag, "%.*s", (int)n, name);
    assert_non_null(strstr(err, flag));
    assert_int_equal(o.max_old_space_size, 77);
    assert_int_equal(argc, 2);
  }
}

static void test_options_env_string(void **state) {
  (void)state;
  gc_options_t o;
  gc_options_init(&o);
  char err[256];
  assert_int_equal(gc_options_parse_string(&o, "  --trace-gc   --max-old-space-size=128 ",
                                           err, sizeof err), 0);
  assert_true(o.trace_gc);
  assert_int_equal(o.max_old_space_size, 128u << 20);
  assert_int_equal(gc_options_parse_string(&o, "--no-trace-gc", err, sizeof err), 0);
  assert_false(o.trace_gc);
  /* Unknown flags in the variable are errors (node does the same). */
  assert_int_equal(gc_options_parse_string(&o, "--frobnicate", err, sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, "--frobnicate"));
  assert_int_equal(o.max_old_space_size, 128u << 20);
}

static void test_options_env_then_argv(void **state) {
  (void)state;
  setenv("TENURE_OPTIONS", "--max-old-space-size=32 --trace-gc", 1);
  gc_options_t o;
  gc_options_init(&o);
  char *argv[] = {"prog", "--max-old-space-size=48", "x", NULL};
  int argc = 3;
  assert_int_equal(gc_options_from_env_and_argv(&o, &argc, argv), 0);
  assert_int_equal(o.max_old_space_size, 48u << 20); /* argv wins */
  assert_true(o.trace_gc);
  assert_int_equal(argc, 2);
  setenv("TENURE_OPTIONS", "--max-old-space-size=lots", 1);
  gc_options_init(&o);
  argc = 3;
  char *argv2[] = {"prog", "x", NULL};
  argc = 2;
  assert_int_equal(gc_options_from_env_and_argv(&o, &argc, argv2), -EINVAL);
  unsetenv("TENURE_OPTIONS");
}

static void test_options_applied_to_heap(void **state) {
  (void)state;
  gc_options_t o;
  gc_options_init(&o);
  o.max_old_space_size = 64u << 20;
  gc_heap_t *h = test_heap_with(&o);
  gc_heap_stats_t st = test_stats(h);
  assert_int_equal(gc_heap_limit(h), 64u << 20);
  /* Like V8, a small old space gets a small new space. */
  assert_int_equal(st.max_semi_space_size, 4u << 20);
  assert_int_equal(st.heap_size_limit, (64u << 20) + 2 * (4u << 20));
  gc_heap_destroy(h);
  gc_options_init(&o);
  o.promotion_age = 9;
  gc_heap_t *bad = NULL;
  assert_int_equal(gc_heap_create(&o, &bad), -EINVAL);
  assert_null(bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options_argv_removes_ours),
      cmocka_unit_test(test_options_new_space_kb),
      cmocka_unit_test(test_options_bad_values),
      cmocka_unit_test(test_options_gc_interval_zero_is_off),
      cmocka_unit_test(test_options_env_string),
      cmocka_unit_test(test_options_env_then_argv),
      cmocka_unit_test(test_options_applied_to_heap),
  };
  return cmocka_run_group_tests_name("gc.options", tests, NULL, NULL);
}
