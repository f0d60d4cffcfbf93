/* test_loop.c -- the event loop: node's ordering of next ticks, immediates
 * and timers, cancellation, and heap values kept rooted across the loop. */
#include <string.h>

#include "rt_test.h"

#include <tenure/rt_loop.h>

/* --- A log of what ran, in order ------------------------------------------- */

static char order[512];

static void note(const char *what) {
  if (order[0] != '\0')
    strcat(order, " ");
  strcat(order, what);
}

static void log_cb(rt_loop_t *l, void *data, rt_value_t *args, size_t n) {
  (void)l;
  (void)args;
  (void)n;
  note(data);
}

typedef struct fixture {
  rt_runtime_t *rt;
  rt_loop_t *loop;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->rt = rt_test_runtime();
  assert_int_equal(rt_loop_create(f->rt, &f->loop), 0);
  order[0] = '\0';
  *state = f;
  return 0;
}

/* Teardown checks nothing is left: the loop closes cleanly (libuv's
 * MAKE_VALGRIND_HAPPY) and no scope is open. */
static int teardown(void **state) {
  fixture_t *f = *state;
  assert_int_equal(rt_loop_pending(f->loop), 0);
  assert_int_equal(rt_loop_destroy(f->loop), 0);
  assert_null(gc__fast(rt_heap(f->rt))->scope);
  rt_runtime_destroy(f->rt);
  free(f);
  return 0;
}

/* --- Ordering ---------------------------------------------------------------- */

/* From the main program: next ticks first (in order), then the timers by
 * deadline and then scheduling order; a 0 ms timeout scheduled before an
 * immediate may run before or after it in node, so it is not pinned. */
static void test_loop_ticks_first_timers_by_deadline(void **state) {
  fixture_t *f = *state;
  rt_loop_t *l = f->loop;
  assert_int_equal(rt_set_timeout(l, 20, log_cb, "t20", NULL, 0, NULL), 0);
  assert_int_equal(rt_set_timeout(l, 10, log_cb, "t10a", NULL, 0, NULL), 0);
  assert_int_equal(rt_set_timeout(l, 10, log_cb, "t10b", NULL, 0, NULL), 0);
  assert_int_equal(rt_set_timeout(l, 5, log_cb, "t5", NULL, 0, NULL), 0);
  assert_int_equal(rt_next_tick(l, log_cb, "tick1", NULL, 0), 0);
  assert_int_equal(rt_next_tick(l, log_cb, "tick2", NULL, 0), 0);
  assert_int_equal(rt_loop_run(l), 0);
  assert_string_equal(order, "tick1 tick2 t5 t10a t10b t20");
}

static rt_loop_t *cur;

/* Inside a timer callback: an immediate runs before a 0 ms timeout (check
 * phase before the next timers phase), and a next tick before both. */
static void from_timer(rt_loop_t *l, void *data, rt_value_t *args, size_t n) {
  (void)data;
  (void)args;
  (void)n;
  note("timer");
  rt_set_timeout(l, 0, log_cb, "timeout0", NULL, 0, NULL);
  rt_set_immediate(l, log_cb, "immediate", NULL, 0, NULL);
  rt_next_tick(l, log_cb, "tick", NULL, 0);
}

static void test_loop_immediate_before_timeout_from_callback(void **state) {
  fixture_t *f = *state;
  assert_int_equal(rt_set_timeout(f->loop, 1, from_timer, NULL, NULL, 0, NULL),
                   0);
  assert_int_equal(rt_loop_run(f->loop), 0);
  assert_string_equal(order, "timer tick immediate timeout0");
}

/* Next ticks run after each callback, before the next one, even when two
 * timers are due in the same iteration; ticks queued by ticks run too. */
static void tick_in_tick(rt_loop_t *l, void *data, rt_value_t *a, size_t n) {
  (void)a;
  (void)n;
  note(data);
  rt_next_tick(l, log_cb, "inner-tick", NULL, 0);
}

static void timer_with_tick(rt_loop_t *l, void *data, rt_value_t *a,
                            size_t n) {
  (void)a;
  (void)n;
  note(data);
  rt_next_tick(l, tick_in_tick, "tick", NULL, 0);
}

static void test_loop_ticks_between_timers(void **state) {
  fixture_t *f = *state;
  rt_set_timeout(f->loop, 5, timer_with_tick, "A", NULL, 0, NULL);
  rt_set_timeout(f->loop, 5, log_cb, "B", NULL, 0, NULL);
  assert_int_equal(rt_loop_run(f->loop), 0);
  assert_string_equal(order, "A tick inner-tick B");
}

/* An immediate queued by an immediate runs in the next iteration: after
 * the other immediates already queued, and after a timer that came due. */
static void imm_chain(rt_loop_t *l, void *data, rt_value_t *a, size_t n) {
  (void)a;
  (void)n;
  note(data);
  rt_set_immediate(l, log_cb, "I3", NULL, 0, NULL);
}

static void test_loop_immediate_from_immediate_waits(void **state) {
  fixture_t *f = *state;
  rt_set_immediate(f->loop, imm_chain, "I1", NULL, 0, NULL);
  rt_set_immediate(f->loop, log_cb, "I2", NULL, 0, NULL);
  assert_int_equal(rt_loop_run(f->loop), 0);
  assert_string_equal(order, "I1 I2 I3");
}

/* --- Cancellation ------------------------------------------------------------ */

static int interval_runs;
static rt_task_id interval_id;

static void interval_cb(rt_loop_t *l, void *data, rt_value_t *a, size_t n) {
  (void)data;
  (void)a;
  (void)n;
  if (++interval_runs == 3)
    assert_int_equal(rt_clear(l, interval_id), 0); /* clears itself */
}

static void test_loop_clear(void **state) {
  fixture_t *f = *state;
  rt_loop_t *l = f->loop;
  rt_task_id t, i;
  assert_int_equal(rt_set_timeout(l, 1, log_cb, "never-t", NULL, 0, &t), 0);
  assert_int_equal(rt_set_immediate(l, log_cb, "never-i", NULL, 0, &i), 0);
  assert_int_equal(rt_set_timeout(l, 2, log_cb, "ran", NULL, 0, NULL), 0);
  assert_int_equal(rt_loop_pending(l), 3);
  assert_int_equal(rt_clear(l, t), 0);
  assert_int_equal(rt_clear(l, i), 0);
  assert_int_equal(rt_clear(l, t), -ENOENT); /* twice: harmless */
  assert_int_equal(rt_clear(l, 0), -ENOENT);
  interval_runs = 0;
  assert_int_equal(rt_set_interval(l, 1, interval_cb, NULL, NULL, 0,
                                   &interval_id), 0);
  assert_int_equal(rt_loop_run(l), 0);
  assert_string_equal(order, "ran");
  assert_int_equal(interval_runs, 3);
  assert_int_equal(rt_clear(l, interval_id), -ENOENT);
  /* Bad arguments: an error, and the callback never runs. */
  assert_int_equal(rt_set_timeout(l, 1, NULL, NULL, NULL, 0, NULL), -EINVAL);
  assert_int_equal(rt_next_tick(l, log_cb, "x", NULL, 1), -EINVAL);
  rt_value_t many[RT_TASK_MAX_ARGS + 1] = {0};
  assert_int_equal(rt_set_immediate(l, log_cb, "x", many,
                                    RT_TASK_MAX_ARGS + 1, NULL), -EINVAL);
  assert_int_equal(rt_loop_run(l), 0);
  assert_string_equal(order, "ran");
}

/* rt_loop_stop returns from rt_loop_run; what is left runs at the next. */
static void stopper(rt_loop_t *l, void *data, rt_value_t *a, size_t n) {
  (void)a;
  (void)n;
  note(data);
  rt_loop_stop(l);
}

static void test_loop_stop(void **state) {
  fixture_t *f = *state;
  rt_set_timeout(f->loop, 1, stopper, "stop", NULL, 0, NULL);
  rt_set_timeout(f->loop, 30, log_cb, "later", NULL, 0, NULL);
  assert_int_equal(rt_loop_run(f->loop), 0);
  assert_string_equal(order, "stop");
  assert_int_equal(rt_loop_pending(f->loop), 1);
  assert_int_equal(rt_loop_run(f->loop), 0);
  assert_string_equal(order, "stop later");
}

/* --- Heap values across the loop ------------------------------------------- */

/* Each callback checks the values it was scheduled with, after the
 * program dropped every reference of its own and collected (and under
 * --stress-gc, after many collections in between), then allocates. */
static long checked;

static void check_values(rt_loop_t *l, void *data, rt_value_t *args,
                         size_t n) {
  rt_runtime_t *rt = rt_loop_runtime(l);
  long k = (long)(intptr_t)data;
  assert_int_equal(n, 3);
  assert_true(rt_string_equal_cstr(args[0], "first"));
  assert_int_equal(rt_array_length(args[1]), 3);
  assert_int_equal(rt_int_value(rt_array_get(args[1], 2)), k);
  assert_int_equal(rt_int_value(args[2]), k * 10);
  /* Allocation inside the callback may move the values: args follow. */
  for (int i = 0; i < 200; i++)
    rt_string_cstr(rt, "garbage made inside a callback");
  gc_collect(rt_heap(rt), GC_COLLECT_MINOR);
  assert_true(rt_string_equal_cstr(args[0], "first"));
  assert_int_equal(rt_int_value(rt_array_get(args[1], 2)), k);
  checked++;
}

static void test_loop_values_stay_rooted(void **state) {
  fixture_t *f = *state;
  rt_runtime_t *rt = f->rt;
  gc_heap_t *h = rt_heap(rt);
  checked = 0;
  const long n = 60;
  for (long k = 0; k < n; k++) {
    gc_scope_t s;
    gc_scope_open(h, &s);
    rt_value_t *str = rt_handle(h, rt_string_cstr(rt, "first"));
    rt_value_t *arr = rt_handle(h, rt_array_new(rt, 3));
    for (int i = 0; i < 3; i++) {
      rt_value_t v = rt_int(i == 2 ? k : i);
      assert_int_equal(rt_array_push(rt, arr, &v), 0);
    }
    rt_value_t args[3] = {*str, *arr, rt_int(k * 10)};
    int err;
    switch (k % 4) {
    case 0:
      err = rt_set_timeout(f->loop, (uint64_t)(k % 7), check_values,
                           (void *)(intptr_t)k, args, 3, NULL);
      break;
    case 1:
      err = rt_set_immediate(f->loop, check_values, (void *)(intptr_t)k,
                             args, 3, NULL);
      break;
    case 2:
      err = rt_next_tick(f->loop, check_values, (void *)(intptr_t)k, args, 3);
      break;
    default: {
      /* An interval that clears itself is checked below. */
      err = rt_set_timeout(f->loop, 3, check_values, (void *)(intptr_t)k,
                           args, 3, NULL);
    }
    }
    assert_int_equal(err, 0);
    gc_scope_close(h, &s); /* the program's own references are gone */
    gc_collect(h, k % 8 == 0 ? GC_COLLECT_FULL : GC_COLLECT_MINOR);
  }
  assert_int_equal(gc_verify(h), 0);
  assert_int_equal(rt_loop_run(f->loop), 0);
  assert_int_equal(checked, n);
  assert_int_equal(gc_verify(h), 0);
}

/* A cancelled task's values are released: the only reference to an object
 * was the cancelled timer's, and a full GC clears a weak handle on it. */
static void test_loop_cancel_releases_values(void **state) {
  fixture_t *f = *state;
  rt_runtime_t *rt = f->rt;
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *v = rt_handle(h, rt_array_new(rt, 4));
  gc_persistent_t *w = gc_weak_new(h, (void *)*v, NULL, NULL);
  rt_task_id t, i;
  assert_int_equal(rt_set_timeout(f->loop, 50, log_cb, "x", v, 1, &t), 0);
  assert_int_equal(rt_set_immediate(f->loop, log_cb, "x", v, 1, &i), 0);
  gc_scope_close(h, &s);
  gc_collect(h, GC_COLLECT_FULL);
  assert_non_null(gc_persistent_get(w)); /* held by both tasks */
  assert_int_equal(rt_clear(f->loop, t), 0);
  gc_collect(h, GC_COLLECT_FULL);
  assert_non_null(gc_persistent_get(w)); /* still the immediate's */
  assert_int_equal(rt_clear(f->loop, i), 0);
  gc_collect(h, GC_COLLECT_FULL);
  assert_null(gc_persistent_get(w));
  gc_persistent_free(h, w);
  assert_int_equal(rt_loop_run(f->loop), 0);
  assert_string_equal(order, "");
}

/* Destroying a loop with work still scheduled cancels it cleanly. */
static void test_loop_destroy_with_pending(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  rt_loop_t *l;
  assert_int_equal(rt_loop_create(rt, &l), 0);
  rt_value_t v = rt_string_cstr(rt, "pending");
  rt_task_id imm;
  rt_set_timeout(l, 1000, log_cb, "x", &v, 1, NULL);
  rt_set_interval(l, 1000, log_cb, "x", &v, 1, NULL);
  rt_set_immediate(l, log_cb, "x", &v, 1, &imm);
  rt_set_immediate(l, log_cb, "x", &v, 1, NULL);
  rt_clear(l, imm);
  rt_next_tick(l, log_cb, "x", &v, 1);
  assert_int_equal(rt_loop_destroy(l), 0);
  rt_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_loop_ticks_first_timers_by_deadline,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_loop_immediate_before_timeout_from_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_loop_ticks_between_timers, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_loop_immediate_from_immediate_waits,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_loop_clear, setup, teardown),
      cmocka_unit_test_setup_teardown(test_loop_stop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_loop_values_stay_rooted, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_loop_cancel_releases_values, setup,
                                      teardown),
      cmocka_unit_test(test_loop_destroy_with_pending),
  };
  (void)cur;
  return cmocka_run_group_tests_name("runtime.loop", tests, NULL, NULL);
}
