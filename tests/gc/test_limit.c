/* test_limit.c -- the heap limit: NULL on OOM, the near-heap-limit
 * callback, and (through the heapgrow example, in a child process) the
 * fatal error, its exit status, and peak RSS under --max-old-space-size. */
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static const char *heapgrow_path;

/* GC point.  Allocates a rooted list of 8 KB vectors until NULL; returns
 * how many bytes it got. */
static size_t fill_until_null(gc_heap_t *h) {
  gc_scope_t s;
  gc_scope_open(h, &s);
  vec_t **list = (vec_t **)gc_handle(h, NULL);
  size_t got = 0;
  for (;;) {
    vec_t *v = gc_alloc(h, &vec_type, sizeof(vec_t) + 1000 * sizeof(void *));
    if (v == NULL)
      break;
    v->len = 1000;
    gc_write(h, v, &v->items[0], *list);
    *list = v;
    got += sizeof(vec_t) + 1000 * sizeof(void *);
    assert_true(got < ((size_t)1 << 30));
  }
  gc_scope_close(h, &s);
  return got;
}

static void test_limit_null_on_oom(void **state) {
  (void)state;
  gc_options_t o;
  test_options(&o);
  o.max_old_space_size = 16 << 20;
  o.null_on_oom = true;
  gc_heap_t *h = test_heap_with(&o);
  test_register_zoo(h);
  size_t got = fill_until_null(h);
  assert_true(got > (10u << 20));
  assert_true(got <= (16u << 20));
  gc_heap_stats_t st = test_stats(h);
  assert_true(st.spaces[GC_SPACE_OLD].space_size +
                  st.spaces[GC_SPACE_LARGE].space_size <=
              (16u << 20));
  /* The list died with its scope: the heap works again. */
  gc_collect(h, GC_COLLECT_FULL);
  assert_non_null(test_pair(h, NULL, NULL, 1));
  /* A large object over the limit fails cleanly too. */
  assert_null(gc_alloc(h, &blob_type, 32u << 20));
  gc_heap_destroy(h);
}

static int near_calls;
static size_t raise_once(void *data, size_t current, size_t initial) {
  (void)data;
  near_calls++;
  assert_int_equal(initial, 16u << 20);
  return near_calls == 1 ? current * 2 : current;
}

static void test_limit_near_heap_limit_callback_raises(void **state) {
  (void)state;
  gc_options_t o;
  test_options(&o);
  o.max_old_space_size = 16 << 20;
  o.null_on_oom = true;
  o.near_heap_limit = raise_once;
  near_calls = 0;
  gc_heap_t *h = test_heap_with(&o);
  test_register_zoo(h);
  size_t got = fill_until_null(h);
  assert_int_equal(near_calls, 2); /* raised once, then refused */
  assert_int_equal(gc_heap_limit(h), 32u << 20);
  assert_true(got > (24u << 20));
  assert_true(got <= (32u << 20));
  gc_heap_destroy(h);
}

/* Runs heapgrow with ARGS; returns its exit status, peak RSS in KB and
 * the last "live MB" it printed, and whether stderr named the limit. */
typedef struct run_s {
  int status;
  long rss_kb;
  long live_mb;
  bool fatal_msg;
} run_t;

static run_t run_heapgrow(const char *flag) {
  run_t r = {0, 0, 0, false};
  char out_path[] = "/tmp/tenure-heapgrow-out-XXXXXX";
  char err_path[] = "/tmp/tenure-heapgrow-err-XXXXXX";
  int out = mkstemp(out_path), err = mkstemp(err_path);
  assert_true(out >= 0 && err >= 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(out, 1);
    dup2(err, 2);
    unsetenv("TENURE_OPTIONS");
    execl(heapgrow_path, heapgrow_path, flag, (char *)NULL);
    _exit(127);
  }
  int status;
  struct rusage ru;
  assert_int_equal(wait4(pid, &status, 0, &ru), pid);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.rss_kb = ru.ru_maxrss;
  FILE *f = fopen(out_path, "r");
  char line[256];
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    sscanf(line, "live MB: %ld", &r.live_mb);
  if (f)
    fclose(f);
  f = fopen(err_path, "r");
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strstr(line, "Reached heap limit") && strstr(line, "--max-old-space-size"))
      r.fatal_msg = true;
  if (f)
    fclose(f);
  close(out);
  close(err);
  unlink(out_path);
  unlink(err_path);
  return r;
}

static void test_limit_fatal_error_and_rss(void **state) {
  (void)state;
  run_t a = run_heapgrow("--max-old-space-size=64");
  assert_int_equal(a.status, GC_EXIT_HEAP_LIMIT);
  assert_true(a.fatal_msg);
  assert_true(a.live_mb >= 50 && a.live_mb <= 64);
  /* ASan shadow memory, or valgrind itself before the exec, would count. */
  if (!test_under_sanitizer() && !test_under_valgrind())
    assert_true(a.rss_kb < 128 * 1024);
  run_t b = run_heapgrow("--max-old-space-size=128");
  assert_int_equal(b.status, GC_EXIT_HEAP_LIMIT);
  assert_true(b.fatal_msg);
  /* About twice as far. */
  assert_true(b.live_mb * 10 >= a.live_mb * 18 && b.live_mb * 10 <= a.live_mb * 22);
  fprintf(stderr, "heapgrow: 64 MB limit -> %ld MB live, peak RSS %ld MB; "
                  "128 MB limit -> %ld MB live, peak RSS %ld MB\n",
          a.live_mb, a.rss_kb / 1024, b.live_mb, b.rss_kb / 1024);
}

int main(int argc, char **argv) {
  heapgrow_path = argc > 1 ? argv[1] : "examples/heapgrow";
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_limit_null_on_oom),
      cmocka_unit_test(test_limit_near_heap_limit_callback_raises),
      cmocka_unit_test(test_limit_fatal_error_and_rss),
  };
  return cmocka_run_group_tests_name("gc.limit", tests, NULL, NULL);
}
