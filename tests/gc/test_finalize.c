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
static gc_heap_t *fin_heap_seen;
static void fobj_finalize(gc_heap_t *h, void *obj) {
  fobj_t *f = obj;
  fin_heap_seen = h;
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
static void fbig_finalize(gc_heap_t *h, void *obj) {
  fobj_finalize(h, obj);
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

/* A finalizer gets its heap, so it can report freed off-heap memory with
 * gc_external_adjust and reach the embedder's context through
 * gc_heap_user_data, without storing either in every object. */
typedef struct ext_ctx {
  long freed_bytes;
  long calls;
} ext_ctx_t;

typedef struct extobj {
  void *block;
  size_t len;
} extobj_t;

static void extobj_finalize(gc_heap_t *h, void *obj) {
  extobj_t *e = obj;
  ext_ctx_t *ctx = gc_heap_user_data(h);
  free(e->block);
  gc_external_adjust(h, -(int64_t)e->len);
  ctx->freed_bytes += (long)e->len;
  ctx->calls++;
}

static const gc_type_t extobj_type = {
    .name = "External", .size = sizeof(extobj_t), .finalize = extobj_finalize};

static void test_finalizer_gets_heap_and_user_data(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  ext_ctx_t ctx = {0, 0};
  assert_null(gc_heap_user_data(h));
  gc_heap_set_user_data(h, &ctx);
  assert_ptr_equal(gc_heap_user_data(h), &ctx);
  assert_int_equal(gc_type_register(h, &extobj_type), 0);
  long n = test_scale(5000, 500);
  for (long i = 0; i < n; i++) {
    extobj_t *e = gc_alloc(h, &extobj_type, sizeof *e);
    e->len = 1000;
    e->block = malloc(e->len);
    gc_external_adjust(h, (int64_t)e->len);
  }
  gc_collect(h, GC_COLLECT_FULL);
  /* Every object died: each finalizer freed its block and reported it. */
  assert_int_equal(ctx.calls, n);
  assert_int_equal(ctx.freed_bytes, n * 1000);
  assert_int_equal(gc_external_adjust(h, 0), 0);
  gc_heap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_finalize_exactly_once),
      cmocka_unit_test(test_finalize_after_promotion),
      cmocka_unit_test(test_finalizer_gets_heap_and_user_data),
  };
  (void)fin_heap_seen;
  return cmocka_run_group_tests_name("gc.finalize", tests, NULL, NULL);
}
