/* test_finalize.c -- finalizers run exactly once, for young, old and large
 * objects, and at heap destruction for what is left. */
#include <string.h>

#include "test_util.h"

/* Each finalizable object carries an id; the finalizer counts per id. */
#define MAXID 20000
static unsigned char fin_count[MAXID];
static long fin_total;

typedef struct fobj {
  long id;
  void *ref;
  unsigned char pad[];
} fobj_t;

static void fobj_trace(void *obj, gc_visitor_t *v) {
  GC_VISIT(v, &((fobj_t *)obj)->ref, GC_EDGE_PROP("ref"));
}
static void fobj_finalize(void *obj) {
  fobj_t *f = obj;
  assert_true(f->id >= 0 && f->id < MAXID);
  fin_count[f->id]++;
  fin_total++;
}
static const gc_type_t fobj_type = {.name = "Finalizable",
                                    .size = sizeof(fobj_t),
                                    .trace = fobj_trace,
                                    .finalize = fobj_finalize};

typedef struct fbig {
  long id;
  unsigned char bytes[64 * 1024];
} fbig_t;
static void fbig_finalize(void *obj) {
  fobj_finalize(obj);
}
static const gc_type_t fbig_type = {
    .name = "BigFinalizable", .size = sizeof(fbig_t), .finalize = fbig_finalize};

static void reset(void) {
  memset(fin_count, 0, sizeof fin_count);
  fin_total = 0;
}

static void test_finalize_exactly_once(void **state) {
  (void)state;
  reset();
  gc_heap_t *h = test_heap();
  assert_int_equal(gc_type_register(h, &fobj_type), 0);
  assert_int_equal(gc_type_register(h, &fbig_type), 0);
  long n = test_scale(MAXID, 2000);
  gc_scope_t s;
  gc_scope_open(h, &s);
  /* Keep every third object alive through a chain; drop the rest. */
  fobj_t **chain = (fobj_t **)gc_handle(h, NULL);
  for (long i = 0; i < n; i++) {
    if (i % 1000 == 999) {
      fbig_t *b = gc_alloc(h, &fbig_type, sizeof(fbig_t));
      b->id = i;
      continue;
    }
    fobj_t *f = gc_alloc(h, &fobj_type, sizeof(fobj_t));
    f->id = i;
    if (i % 3 == 0) {
      gc_write(h, f, &f->ref, *chain);
      *chain = f;
    }
    if (i % 4000 == 0)
      gc_collect(h, GC_COLLECT_MINOR);
  }
  gc_collect(h, GC_COLLECT_FULL);
  gc_collect(h, GC_COLLECT_FULL);
  for (long i = 0; i < n; i++)
    assert_int_equal(fin_count[i], (i % 3 == 0 && i % 1000 != 999) ? 0 : 1);
  /* The survivors are finalized when the heap dies, once. */
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
  for (long i = 0; i < n; i++)
    assert_int_equal(fin_count[i], 1);
  assert_int_equal(fin_total, n);
}

static void test_finalize_after_promotion(void **state) {
  (void)state;
  reset();
  gc_heap_t *h = test_heap();
  assert_int_equal(gc_type_register(h, &fobj_type), 0);
  gc_persistent_t *p = gc_persistent_new(h, NULL);
  fobj_t *f = gc_alloc(h, &fobj_type, sizeof(fobj_t));
  f->id = 5;
  gc_persistent_set(h, p, f);
  for (int i = 0; i < 4; i++)
    gc_collect(h, GC_COLLECT_MINOR); /* promoted now */
  assert_int_equal(fin_count[5], 0);
  gc_persistent_set(h, p, NULL);
  gc_collect(h, GC_COLLECT_MINOR);
  assert_int_equal(fin_count[5], 0); /* old: a scavenge does not free it */
  gc_collect(h, GC_COLLECT_FULL);
  assert_int_equal(fin_count[5], 1);
  gc_persistent_free(h, p);
  gc_heap_destroy(h);
  assert_int_equal(fin_count[5], 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_finalize_exactly_once),
      cmocka_unit_test(test_finalize_after_promotion),
  };
  return cmocka_run_group_tests_name("gc.finalize", tests, NULL, NULL);
}
