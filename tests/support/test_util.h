/* test_util.h -- shared helpers for tenure's cmocka tests.
 *
 * test_heap() makes a heap with a small new space (so GCs happen often)
 * and the flags in TENURE_OPTIONS applied on top: the `stress` ctest label
 * runs every heap test again with "--stress-gc --verify-heap".
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <tenure/gc.h>

static inline bool test_under_stress(void) {
  return getenv("TENURE_TEST_STRESS") != NULL;
}
static inline bool test_under_valgrind(void) {
  return getenv("TENURE_TEST_VALGRIND") != NULL;
}
static inline bool test_under_sanitizer(void) {
  return getenv("TENURE_TEST_SANITIZE") != NULL;
}
/* Runs FN(ARG) in a child with stderr captured; returns what it printed
 * and whether it aborted (a fatal error). */
typedef void (*test_child_fn)(int arg);
static inline bool test_run_child(test_child_fn fn, int arg, char *out,
                                  size_t cap) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 2);
    close(p[0]);
    fn(arg);
    _exit(0);
  }
  close(p[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0)
    n += (size_t)r;
  out[n] = '\0';
  close(p[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

/* Scale a workload down where each allocation is much slower. */
static inline long test_scale(long n, long slow_n) {
  return (test_under_stress() || test_under_valgrind()) ? slow_n : n;
}

static inline void test_options(gc_options_t *o) {
  gc_options_init(o);
  o->max_semi_space_size = 256 * 1024;
  o->min_semi_space_size = 64 * 1024;
  char err[256];
  if (gc_options_parse_string(o, getenv("TENURE_OPTIONS"), err, sizeof err)) {
    fprintf(stderr, "bad TENURE_OPTIONS: %s\n", err);
    abort();
  }
}

static inline gc_heap_t *test_heap_with(const gc_options_t *o) {
  gc_heap_t *h = NULL;
  assert_int_equal(gc_heap_create(o, &h), 0);
  assert_non_null(h);
  return h;
}

static inline gc_heap_t *test_heap(void) {
  gc_options_t o;
  test_options(&o);
  return test_heap_with(&o);
}

static inline gc_heap_stats_t test_stats(gc_heap_t *h) {
  gc_heap_stats_t s;
  assert_int_equal(gc_heap_stats(h, &s, sizeof s), 0);
  return s;
}

/* --- A small zoo of types shared by the tests ----------------------------- */

/* A pair: two references and a number. */
typedef struct pair {
  void *car;
  void *cdr;
  long value;
} pair_t;

static void pair_trace(void *obj, gc_visitor_t *v) {
  pair_t *p = obj;
  GC_VISIT(v, &p->car, GC_EDGE_PROP("car"));
  GC_VISIT(v, &p->cdr, GC_EDGE_PROP("cdr"));
}

static const gc_type_t pair_type = {
    .name = "Pair", .size = sizeof(pair_t), .trace = pair_trace};

/* A vector: a length and that many references (variable size). */
typedef struct vec {
  size_t len;
  void *items[];
} vec_t;

static size_t vec_size(const void *obj) {
  return sizeof(vec_t) + ((const vec_t *)obj)->len * sizeof(void *);
}

static void vec_trace(void *obj, gc_visitor_t *v) {
  vec_t *x = obj;
  for (size_t i = 0; i < x->len; i++)
    GC_VISIT(v, &x->items[i], GC_EDGE_ELEM(i));
}

static const gc_type_t vec_type = {
    .name = "Vector", .size_of = vec_size, .trace = vec_trace};

/* A blob: bytes and no references. */
typedef struct blob {
  size_t len;
  unsigned char bytes[];
} blob_t;

static size_t blob_size(const void *obj) {
  return sizeof(blob_t) + ((const blob_t *)obj)->len;
}

static const gc_type_t blob_type = {.name = "Blob", .size_of = blob_size};

static inline void test_register_zoo(gc_heap_t *h) {
  assert_int_equal(gc_type_register(h, &pair_type), 0);
  assert_int_equal(gc_type_register(h, &vec_type), 0);
  assert_int_equal(gc_type_register(h, &blob_type), 0);
}

/* GC point. */
static inline pair_t *test_pair(gc_heap_t *h, void *car, void *cdr, long v) {
  gc_scope_t s;
  gc_scope_open(h, &s);
  void **a = gc_handle(h, car);
  void **d = gc_handle(h, cdr);
  pair_t *p = gc_alloc(h, &pair_type, sizeof(pair_t));
  assert_non_null(p);
  gc_write(h, p, &p->car, *a);
  gc_write(h, p, &p->cdr, *d);
  p->value = v;
  gc_scope_close(h, &s);
  return p;
}

/* GC point. A vector of LEN NULLs. */
static inline vec_t *test_vec(gc_heap_t *h, size_t len) {
  vec_t *x = gc_alloc(h, &vec_type, sizeof(vec_t) + len * sizeof(void *));
  assert_non_null(x);
  x->len = len;
  return x;
}

/* GC point. */
static inline blob_t *test_blob(gc_heap_t *h, size_t len, unsigned char fill) {
  blob_t *b = gc_alloc(h, &blob_type, sizeof(blob_t) + len);
  assert_non_null(b);
  b->len = len;
  for (size_t i = 0; i < len; i++)
    b->bytes[i] = fill;
  return b;
}

#endif /* TEST_UTIL_H */
