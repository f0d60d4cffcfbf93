/* test_ephemeron.c -- ephemerons: the value lives only while the key does,
 * in scavenges and full GCs, through chains and cycles of values. */
#include "test_util.h"

/* An ephemeron cell: one key/value pair. */
typedef struct eph {
  void *key;
  void *value;
} eph_t;

static void eph_trace(void *obj, gc_visitor_t *v) {
  eph_t *e = obj;
  GC_VISIT_EPHEMERON(v, &e->key, &e->value, GC_EDGE_INTERNAL("value"));
}

static const gc_type_t eph_type = {
    .name = "Ephemeron", .size = sizeof(eph_t), .trace = eph_trace};

static gc_heap_t *heap(void) {
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  assert_int_equal(gc_type_register(h, &eph_type), 0);
  return h;
}

/* GC point. */
static eph_t *eph_new(gc_heap_t *h, void *key, void *value) {
  gc_scope_t s;
  gc_scope_open(h, &s);
  void **k = gc_handle(h, key), **v = gc_handle(h, value);
  eph_t *e = gc_alloc(h, &eph_type, sizeof *e);
  gc_write(h, e, &e->key, *k);
  gc_write(h, e, &e->value, *v);
  gc_scope_close(h, &s);
  return e;
}

static void promote(gc_heap_t *h) {
  for (int i = 0; i < 3; i++)
    gc_collect(h, GC_COLLECT_MINOR);
}

static void test_ephemeron_live_key_keeps_value(void **state) {
  (void)state;
  gc_heap_t *h = heap();
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **key = GC_HANDLE(h, test_pair(h, NULL, NULL, 1));
  pair_t *v = test_pair(h, NULL, NULL, 2);
  eph_t **e = GC_HANDLE(h, eph_new(h, *key, v));
  gc_collect(h, GC_COLLECT_MINOR); /* key and value move */
  assert_ptr_equal((*e)->key, *key);
  assert_int_equal(((pair_t *)(*e)->value)->value, 2);
  promote(h);
  gc_collect(h, GC_COLLECT_FULL);
  assert_ptr_equal((*e)->key, *key);
  assert_int_equal(((pair_t *)(*e)->value)->value, 2);
  /* An old table, a young key and value stored into it. */
  *key = test_pair(h, NULL, NULL, 3);
  GC_WRITE(h, *e, key, *key);
  GC_WRITE(h, *e, value, test_pair(h, NULL, NULL, 4));
  gc_collect(h, GC_COLLECT_MINOR);
  assert_int_equal(gc_verify(h), 0);
  assert_ptr_equal((*e)->key, *key);
  assert_int_equal(((pair_t *)(*e)->value)->value, 4);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

static int value_died;
static void on_value_dead(void *data, gc_persistent_t *p) {
  (void)data;
  (void)p;
  value_died++;
}

static void test_ephemeron_dead_key_clears_both(void **state) {
  (void)state;
  for (int full = 0; full < 2; full++) {
    gc_heap_t *h = heap();
    gc_scope_t s;
    gc_scope_open(h, &s);
    eph_t **e = GC_HANDLE(h, eph_new(h, NULL, NULL));
    if (full)
      promote(h); /* an old holder: the key and value are found by a mark */
    pair_t **key = GC_HANDLE(h, test_pair(h, NULL, NULL, 1));
    GC_WRITE(h, *e, key, *key);
    pair_t *val = test_pair(h, NULL, NULL, 2);
    GC_WRITE(h, *e, value, val);
    value_died = 0;
    gc_persistent_t *w = gc_weak_new(h, val, on_value_dead, NULL);
    if (full) {
      promote(h); /* key and value old too (the handle holds the key) */
      *key = NULL;
      gc_collect(h, GC_COLLECT_MINOR);
      assert_non_null((*e)->key); /* minor GCs keep old keys */
      gc_collect(h, GC_COLLECT_FULL);
    } else {
      *key = NULL;
      gc_collect(h, GC_COLLECT_MINOR);
    }
    assert_null((*e)->key);
    assert_null((*e)->value);
    assert_null(gc_persistent_get(w));
    assert_int_equal(value_died, 1);
    assert_int_equal(gc_verify(h), 0);
    gc_persistent_free(h, w);
    gc_scope_close(h, &s);
    gc_heap_destroy(h);
  }
}

/* A value that refers back to its own key does not keep it. */
static void test_ephemeron_value_referring_to_key(void **state) {
  (void)state;
  for (int full = 0; full < 2; full++) {
    gc_heap_t *h = heap();
    gc_scope_t s;
    gc_scope_open(h, &s);
    eph_t **e = GC_HANDLE(h, eph_new(h, NULL, NULL));
    pair_t **key = GC_HANDLE(h, test_pair(h, NULL, NULL, 1));
    GC_WRITE(h, *e, key, *key);
    GC_WRITE(h, *e, value, test_pair(h, (*e)->key, NULL, 2));
    if (full) {
      promote(h);
      *key = NULL;
      gc_collect(h, GC_COLLECT_MINOR);
      assert_non_null((*e)->key); /* minor GCs keep old keys */
      gc_collect(h, GC_COLLECT_FULL);
    } else {
      *key = NULL;
      gc_collect(h, GC_COLLECT_MINOR);
    }
    assert_null((*e)->key);
    assert_null((*e)->value);
    gc_scope_close(h, &s);
    gc_heap_destroy(h);
  }
}

/* N cells: cell i's value holds key i+1; only key 0 is held from outside.
 * The cells are created in reverse, so each round of the fixpoint resolves
 * one link. */
static void test_ephemeron_chain(void **state) {
  (void)state;
  const int n = (int)test_scale(1000, 100);
  for (int full = 0; full < 2; full++) {
    /* A new space that holds the whole chain, so the minor case can be
     * all young (under --stress-gc parts are old anyway: see below). */
    gc_options_t o;
    test_options(&o);
    o.min_semi_space_size = o.max_semi_space_size = 4u << 20;
    gc_heap_t *h = test_heap_with(&o);
    test_register_zoo(h);
    assert_int_equal(gc_type_register(h, &eph_type), 0);
    gc_scope_t s;
    gc_scope_open(h, &s);
    vec_t **cells = GC_HANDLE(h, test_vec(h, (size_t)n));
    vec_t **keys = GC_HANDLE(h, test_vec(h, (size_t)n));
    for (int i = 0; i < n; i++)
      GC_WRITE(h, *keys, items[i], test_pair(h, NULL, NULL, i));
    for (int i = n - 1; i >= 0; i--) {
      void *next = i + 1 < n ? (*keys)->items[i + 1] : NULL;
      pair_t *val = test_pair(h, next, NULL, 1000 + i);
      GC_WRITE(h, *cells, items[i], eph_new(h, (*keys)->items[i], val));
    }
    pair_t **key0 = GC_HANDLE(h, (pair_t *)(*keys)->items[0]);
    *keys = NULL; /* now only the chain holds keys 1..n-1 */
    if (full)
      promote(h);
    gc_collect(h, full ? GC_COLLECT_FULL : GC_COLLECT_MINOR);
    for (int i = 0; i < n; i++) {
      eph_t *c = (*cells)->items[i];
      assert_non_null(c->key);
      assert_int_equal(((pair_t *)c->key)->value, i);
      assert_int_equal(((pair_t *)c->value)->value, 1000 + i);
    }
    /* A scavenge treats old keys as live, so it can only clear a chain
     * that is all young; a full GC clears it whatever its age. */
    bool young = true;
    for (int i = 0; i < n; i++) {
      eph_t *c = (*cells)->items[i];
      young = young && gc__is_young(gc__fast(h), c->key);
    }
    *key0 = NULL;
    gc_collect(h, full || !young ? GC_COLLECT_FULL : GC_COLLECT_MINOR);
    for (int i = 0; i < n; i++) {
      eph_t *c = (*cells)->items[i];
      assert_null(c->key);
      assert_null(c->value);
    }
    if (!full && !test_under_stress())
      assert_true(young); /* the minor case was really tested */
    assert_int_equal(gc_verify(h), 0);
    gc_scope_close(h, &s);
    gc_heap_destroy(h);
  }
}

/* k1 -> v1 holds k2, k2 -> v2 holds k1, nothing else: both go. */
static void test_ephemeron_cycle_through_values(void **state) {
  (void)state;
  for (int full = 0; full < 2; full++) {
    gc_heap_t *h = heap();
    gc_scope_t s;
    gc_scope_open(h, &s);
    pair_t **k1 = GC_HANDLE(h, test_pair(h, NULL, NULL, 1));
    pair_t **k2 = GC_HANDLE(h, test_pair(h, NULL, NULL, 2));
    /* Each GC point's result is taken before the next raw read. */
    pair_t *v1 = test_pair(h, *k2, NULL, 11);
    eph_t **a = GC_HANDLE(h, eph_new(h, *k1, v1));
    pair_t *v2 = test_pair(h, *k1, NULL, 12);
    eph_t **b = GC_HANDLE(h, eph_new(h, *k2, v2));
    /* Under --stress-gc they may be old already: then only a full GC can
     * decide (a scavenge treats old keys as live). */
    bool young = gc__is_young(gc__fast(h), *k1) &&
                 gc__is_young(gc__fast(h), *k2);
    *k1 = *k2 = NULL;
    if (full) {
      promote(h);
      gc_collect(h, GC_COLLECT_FULL);
    } else {
      gc_collect(h, young ? GC_COLLECT_MINOR : GC_COLLECT_FULL);
    }
    assert_null((*a)->key);
    assert_null((*a)->value);
    assert_null((*b)->key);
    assert_null((*b)->value);
    gc_scope_close(h, &s);
    gc_heap_destroy(h);
  }
}

/* An immediate key never dies; a NULL key clears its value. */
static void test_ephemeron_immediate_and_null_keys(void **state) {
  (void)state;
  gc_heap_t *h = heap();
  gc_scope_t s;
  gc_scope_open(h, &s);
  void *imm = (void *)(uintptr_t)0x12345;
  pair_t *v = test_pair(h, NULL, NULL, 5);
  eph_t **a = GC_HANDLE(h, eph_new(h, imm, v));
  v = test_pair(h, NULL, NULL, 6);
  eph_t **b = GC_HANDLE(h, eph_new(h, NULL, v));
  gc_collect(h, GC_COLLECT_MINOR);
  gc_collect(h, GC_COLLECT_FULL);
  assert_ptr_equal((*a)->key, imm);
  assert_int_equal(((pair_t *)(*a)->value)->value, 5);
  assert_null((*b)->value);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

/* A strong reference to the value from elsewhere keeps the value, not the
 * key; an object reachable only through a live value stays. */
static void test_ephemeron_value_keeps_its_graph(void **state) {
  (void)state;
  gc_heap_t *h = heap();
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **key = GC_HANDLE(h, test_pair(h, NULL, NULL, 1));
  pair_t *mid = test_pair(h, test_pair(h, NULL, NULL, 42), NULL, 41);
  eph_t **e = GC_HANDLE(h, eph_new(h, *key, mid));
  promote(h);
  gc_collect(h, GC_COLLECT_FULL);
  pair_t *m = (*e)->value;
  assert_int_equal(m->value, 41);
  assert_int_equal(((pair_t *)m->car)->value, 42);
  /* Hold the value, drop the key: the pair is cleared, the value lives. */
  pair_t **held = GC_HANDLE(h, (pair_t *)(*e)->value);
  *key = NULL;
  gc_collect(h, GC_COLLECT_FULL);
  assert_null((*e)->key);
  assert_null((*e)->value);
  assert_int_equal((*held)->value, 41);
  assert_int_equal(((pair_t *)(*held)->car)->value, 42);
  assert_int_equal(gc_verify(h), 0);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ephemeron_live_key_keeps_value),
      cmocka_unit_test(test_ephemeron_dead_key_clears_both),
      cmocka_unit_test(test_ephemeron_value_referring_to_key),
      cmocka_unit_test(test_ephemeron_chain),
      cmocka_unit_test(test_ephemeron_cycle_through_values),
      cmocka_unit_test(test_ephemeron_immediate_and_null_keys),
      cmocka_unit_test(test_ephemeron_value_keeps_its_graph),
  };
  return cmocka_run_group_tests_name("gc.ephemeron", tests, NULL, NULL);
}
