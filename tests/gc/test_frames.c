/* test_frames.c -- root frames (GC_FRAME) and gc_scope_unwind. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

/* Builds a tree of depth D with its locals in a root frame. */
static pair_t *build(gc_heap_t *h, int d) {
  if (d == 0)
    return test_pair(h, NULL, NULL, 1);
  pair_t *l = NULL, *r = NULL;
  GC_FRAME(h, fr, &l, &r);
  l = build(h, d - 1);
  r = build(h, d - 1); /* a GC point: l is a root and follows its object */
  pair_t *n = gc_alloc(h, &pair_type, sizeof *n);
  GC_WRITE(h, n, car, l);
  GC_WRITE(h, n, cdr, r);
  n->value = l->value + r->value + 1;
  GC_FRAME_CLOSE(h, fr);
  return n;
}

static long count(const pair_t *p) {
  return p == NULL ? 0 : 1 + count(p->car) + count(p->cdr);
}

static void test_frame_locals_survive_and_move(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  pair_t *a = NULL, *b = NULL;
  void *imm = (void *)(uintptr_t)0x2a1; /* an immediate: left alone */
  GC_FRAME(h, fr, &a, &b, &imm);
  a = build(h, 10);
  pair_t *before = a;
  gc_collect(h, GC_COLLECT_MINOR);
  assert_ptr_not_equal(a, before); /* it moved, and the variable followed */
  b = build(h, 8);
  gc_collect(h, GC_COLLECT_FULL);
  assert_int_equal(count(a), 2047);
  assert_int_equal(a->value, 2047);
  assert_int_equal(count(b), 511);
  assert_ptr_equal(imm, (void *)(uintptr_t)0x2a1);
  assert_int_equal(gc_verify(h), 0);
  GC_FRAME_CLOSE(h, fr);
  /* Unlinked: nothing holds the trees now. */
  gc_collect(h, GC_COLLECT_FULL);
  gc_heap_stats_t st = test_stats(h);
  assert_true(st.used_heap_size < 2047 * sizeof(pair_t));
  gc_heap_destroy(h);
}

/* Closing frames out of order is a fatal error, not silent corruption. */
static void test_frame_close_out_of_order_is_fatal(void **state) {
  (void)state;
  if (test_under_valgrind())
    skip();
  pid_t pid = fork();
  if (pid == 0) {
    close(2);
    gc_heap_t *h;
    if (gc_heap_create(NULL, &h) != 0)
      _exit(1);
    void *x = NULL, *y = NULL;
    GC_FRAME(h, f1, &x);
    GC_FRAME(h, f2, &y);
    GC_FRAME_CLOSE(h, f1); /* f2 is innermost */
    (void)f2;
    _exit(0);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}

static jmp_buf jb;
static void deep(gc_heap_t *h, int depth);
/* Called through a pointer: GCC cannot see that the recursion ends in a
 * longjmp and warns of infinite recursion. */
static void (*volatile deep_call)(gc_heap_t *, int) = deep;

/* Opens scopes and frames, allocates, then fails with a longjmp. */
static void deep(gc_heap_t *h, int depth) {
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t *p = test_pair(h, NULL, NULL, depth);
  GC_FRAME(h, fr, &p);
  gc_handle(h, test_pair(h, p, NULL, depth));
  if (depth > 0)
    deep_call(h, depth - 1);
  else
    longjmp(jb, 1);
  GC_FRAME_CLOSE(h, fr);
  gc_scope_close(h, &s);
}

static void test_scope_unwind_after_longjmp(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t outer;
  gc_scope_open(h, &outer);
  pair_t **kept = GC_HANDLE(h, test_pair(h, NULL, NULL, 77));
  void *local = NULL;
  GC_FRAME(h, fr, &local);
  local = test_pair(h, NULL, NULL, 78);
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **mine = GC_HANDLE(h, test_pair(h, NULL, NULL, 79));
  if (setjmp(jb) == 0) {
    deep(h, 20);
    fail();
  }
  /* Twenty scopes and frames were left open by the longjmp: unwinding S
   * closes them and S, and unlinks the frames of the dead calls (a GC
   * would otherwise write into their dead stack slots). */
  (void)mine;
  gc_scope_unwind(h, &s);
  gc_collect(h, GC_COLLECT_MINOR);
  gc_collect(h, GC_COLLECT_FULL);
  /* What was rooted before S survives: the outer scope's handle and the
   * frame linked before S. */
  assert_int_equal(((pair_t *)local)->value, 78);
  assert_int_equal((*kept)->value, 77);
  /* S's handle is gone: the outer scope is the innermost again. */
  gc_scope_t again;
  gc_scope_open(h, &again);
  pair_t **fresh = GC_HANDLE(h, test_pair(h, NULL, NULL, 80));
  assert_ptr_equal((void *)fresh, (void *)mine); /* S's slot, reused */
  gc_collect(h, GC_COLLECT_MINOR);
  assert_int_equal((*fresh)->value, 80);
  gc_scope_close(h, &again);
  GC_FRAME_CLOSE(h, fr); /* no mismatch: fr is innermost again */
  gc_scope_close(h, &outer);
  assert_int_equal(gc_verify(h), 0);
  gc_heap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_locals_survive_and_move),
      cmocka_unit_test(test_frame_close_out_of_order_is_fatal),
      cmocka_unit_test(test_scope_unwind_after_longjmp),
  };
  return cmocka_run_group_tests_name("gc.frames", tests, NULL, NULL);
}
