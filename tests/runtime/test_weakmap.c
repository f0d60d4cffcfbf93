/* test_weakmap.c -- weak maps on the collector's ephemerons
 * (runtime.weakmap): get/set/has/delete by identity, entries that live
 * exactly as long as their keys (through minor and full GCs, moves,
 * chains and cycles of values), tombstones and rebuilds, immediate keys
 * refused, old tables with young keys and values.  gc_verify runs after
 * every explicit collection. */
#include <string.h>

#include "rt_test.h"

/* --- Helpers ------------------------------------------------------------- */

/* GC point.  A collection, then the whole-heap check (remembered set,
 * references to live objects only). */
static void collect(gc_heap_t *h, gc_collect_kind_t kind) {
  gc_collect(h, kind);
  assert_int_equal(gc_verify(h), 0);
}

/* GC point.  Enough scavenges to promote whatever survives them (also
 * with --promotion-age=7, young_runtime's). */
static void promote(gc_heap_t *h) {
  for (int i = 0; i < 8; i++)
    collect(h, GC_COLLECT_MINOR);
}

/* Test premise only: the collector's private fast-path state says where
 * new space is. */
static bool young(gc_heap_t *h, rt_value_t v) {
  return gc__is_young(gc__fast(h), (const void *)v);
}

/* A runtime whose objects stay young through 7 scavenges, so a test can
 * drop a young key and see a minor GC remove its entry even under
 * --stress-gc (which collects at every allocation). */
static rt_runtime_t *young_runtime(void) {
  gc_options_t o;
  test_options(&o);
  o.promotion_age = 7;
  rt_runtime_t *rt = NULL;
  assert_int_equal(rt_runtime_create(test_heap_with(&o), &rt), 0);
  return rt;
}

/* GC point.  A fresh object to use as a key: an empty Array. */
static rt_value_t obj(rt_runtime_t *rt) {
  rt_value_t a = rt_array_new(rt, 0);
  assert_true(rt_is_array(a));
  return a;
}

/* GC point.  An Array holding X: a value that refers to X. */
static rt_value_t box(rt_runtime_t *rt, rt_value_t x) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *hx = rt_handle(h, x);
  rt_value_t *a = rt_handle(h, rt_array_new(rt, 1));
  assert_int_equal(rt_array_push(rt, a, hx), 0);
  rt_value_t r = *a;
  gc_scope_close(h, &s);
  return r;
}

/* GC point.  WM[KEY] = VAL. */
static void wset(rt_runtime_t *rt, const rt_value_t *wm, rt_value_t key,
                 rt_value_t val) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *k = rt_handle(h, key);
  rt_value_t *v = rt_handle(h, val);
  assert_int_equal(rt_weakmap_set(rt, wm, k, v), 0);
  gc_scope_close(h, &s);
}

static gc_persistent_t *weak(gc_heap_t *h, rt_value_t v) {
  gc_persistent_t *p = gc_weak_new(h, (void *)v, NULL, NULL);
  assert_non_null(p);
  return p;
}

static bool gone(const gc_persistent_t *p) {
  return gc_persistent_get(p) == NULL;
}

/* --- Tests ----------------------------------------------------------------- */

static void test_weakmap_set_get_has_delete(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 0));
  assert_true(rt_is_weakmap(*wm));
  assert_false(rt_is_map(*wm));
  assert_false(rt_is_weakmap(RT_NULL));
  assert_int_equal(rt_typeof(*wm), RT_TYPE_OTHER);
  rt_value_t *k1 = rt_handle(h, obj(rt));
  rt_value_t *k2 = rt_handle(h, rt_string_cstr(rt, "k2"));
  rt_value_t *k3 = rt_handle(h, rt_map_new(rt, 0));
  assert_true(rt_weakmap_get(rt, *wm, *k1) == RT_NONE);
  assert_false(rt_weakmap_has(rt, *wm, *k1));
  assert_int_equal(rt_weakmap_delete(rt, *wm, *k1), -ENOENT);
  assert_int_equal(rt_weakmap_size(*wm), 0);

  wset(rt, wm, *k1, rt_int(1));
  rt_value_t two = rt_string_cstr(rt, "two"); /* before *k2 is read */
  wset(rt, wm, *k2, two);
  wset(rt, wm, *k3, RT_TRUE);
  assert_int_equal(rt_weakmap_size(*wm), 3);
  assert_true(rt_weakmap_get(rt, *wm, *k1) == rt_int(1));
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *k2), "two"));
  assert_true(rt_weakmap_has(rt, *wm, *k3));
  assert_true(rt_weakmap_get(rt, *wm, *k3) == RT_TRUE);

  /* An update replaces the value in place. */
  wset(rt, wm, *k1, rt_int(10));
  assert_int_equal(rt_weakmap_size(*wm), 3);
  assert_true(rt_weakmap_get(rt, *wm, *k1) == rt_int(10));

  /* Keys are identities, not contents. */
  rt_value_t *k2b = rt_handle(h, rt_string_cstr(rt, "k2"));
  assert_true(rt_string_equal(*k2, *k2b));
  assert_false(rt_weakmap_has(rt, *wm, *k2b));
  assert_true(rt_weakmap_get(rt, *wm, *k2b) == RT_NONE);

  /* Delete leaves a tombstone; setting the key again reuses it. */
  assert_int_equal(rt_weakmap_delete(rt, *wm, *k1), 0);
  assert_int_equal(rt_weakmap_delete(rt, *wm, *k1), -ENOENT);
  assert_false(rt_weakmap_has(rt, *wm, *k1));
  assert_true(rt_weakmap_get(rt, *wm, *k1) == RT_NONE);
  assert_int_equal(rt_weakmap_size(*wm), 2);
  assert_int_equal(rt_weakmap_tombstones(*wm), 1);
  size_t cap = rt_weakmap_capacity(*wm);
  wset(rt, wm, *k1, rt_int(11));
  assert_int_equal(rt_weakmap_tombstones(*wm), 0);
  assert_int_equal(rt_weakmap_capacity(*wm), cap);
  assert_true(rt_weakmap_get(rt, *wm, *k1) == rt_int(11));

  /* A weak map may be a key, also of itself; a key may be in two maps. */
  wset(rt, wm, *wm, rt_int(5));
  assert_true(rt_weakmap_get(rt, *wm, *wm) == rt_int(5));
  rt_value_t *wm2 = rt_handle(h, rt_weakmap_new(rt, 4));
  wset(rt, wm2, *k1, rt_int(99));
  assert_true(rt_weakmap_get(rt, *wm2, *k1) == rt_int(99));
  assert_true(rt_weakmap_get(rt, *wm, *k1) == rt_int(11));
  assert_false(rt_weakmap_has(rt, *wm2, *k2));

  /* A large object (a 20 KiB string) as a key. */
  char *big = malloc(20001);
  assert_non_null(big);
  memset(big, 'x', 20000);
  big[20000] = 0;
  rt_value_t *kb = rt_handle(h, rt_string_cstr(rt, big));
  free(big);
  wset(rt, wm, *kb, rt_int(20000));

  /* Everything survives collections that move keys, values and tables. */
  collect(h, GC_COLLECT_MINOR);
  collect(h, GC_COLLECT_FULL);
  promote(h);
  collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_weakmap_size(*wm), 5);
  assert_true(rt_weakmap_get(rt, *wm, *k1) == rt_int(11));
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *k2), "two"));
  assert_true(rt_weakmap_get(rt, *wm, *k3) == RT_TRUE);
  assert_true(rt_weakmap_get(rt, *wm, *wm) == rt_int(5));
  assert_true(rt_weakmap_get(rt, *wm, *kb) == rt_int(20000));
  assert_true(rt_weakmap_get(rt, *wm2, *k1) == rt_int(99));
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

static void test_weakmap_rejects_immediate_keys(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 0));
  rt_value_t *dbl = rt_handle(h, rt_number(rt, 0.5)); /* a boxed double */
  assert_int_equal(rt_typeof(*dbl), RT_TYPE_DOUBLE);
  rt_value_t bad[] = {rt_int(3), rt_int(0), RT_TRUE, RT_FALSE, RT_NULL,
                      RT_UNDEFINED, RT_NONE, *dbl};
  rt_value_t *v = rt_handle(h, rt_int(1));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rt_value_t *k = rt_handle(h, bad[i]);
    assert_int_equal(rt_weakmap_set(rt, wm, k, v), -EINVAL);
    assert_true(rt_weakmap_get(rt, *wm, *k) == RT_NONE);
    assert_false(rt_weakmap_has(rt, *wm, *k));
    assert_int_equal(rt_weakmap_delete(rt, *wm, *k), -ENOENT);
  }
  assert_int_equal(rt_weakmap_size(*wm), 0);
  assert_int_equal(rt_weakmap_capacity(*wm), 0); /* nothing was allocated */
  /* RT_NONE is no value. */
  rt_value_t *key = rt_handle(h, obj(rt));
  rt_value_t *none = rt_handle(h, RT_NONE);
  assert_int_equal(rt_weakmap_set(rt, wm, key, none), -EINVAL);
  /* Not a weak map: a Map, an immediate. */
  rt_value_t *m = rt_handle(h, rt_map_new(rt, 0));
  rt_value_t *i = rt_handle(h, rt_int(7));
  assert_int_equal(rt_weakmap_set(rt, m, key, v), -EINVAL);
  assert_int_equal(rt_weakmap_set(rt, i, key, v), -EINVAL);
  assert_true(rt_weakmap_get(rt, *m, *key) == RT_NONE);
  assert_false(rt_weakmap_has(rt, *i, *key));
  assert_int_equal(rt_weakmap_delete(rt, *m, *key), -EINVAL);
  assert_int_equal(rt_weakmap_size(*m), 0);
  assert_int_equal(rt_map_size(*m), 0);
  /* The good key still works. */
  assert_int_equal(rt_weakmap_set(rt, wm, key, v), 0);
  assert_true(rt_weakmap_get(rt, *wm, *key) == rt_int(1));
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* A key held elsewhere keeps its value through scavenges and full GCs,
 * while the key moves from new space to old space. */
static void test_weakmap_live_key_keeps_value(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 8));
  rt_value_t *key = rt_handle(h, obj(rt));
  rt_value_t val = rt_string_cstr(rt, "payload"); /* held only by wm */
  gc_persistent_t *wv = weak(h, val);
  wset(rt, wm, *key, val);
  uintptr_t addr0 = *key;
  assert_true(young(h, *key));
  collect(h, GC_COLLECT_MINOR);
  assert_true(rt_weakmap_has(rt, *wm, *key));
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *key), "payload"));
  promote(h);
  assert_false(young(h, *key));
  assert_true(*key != addr0);
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *key), "payload"));
  collect(h, GC_COLLECT_FULL);
  collect(h, GC_COLLECT_FULL);
  assert_false(gone(wv));
  assert_true(rt_weakmap_get(rt, *wm, *key) ==
              (rt_value_t)gc_persistent_get(wv));
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *key), "payload"));
  assert_int_equal(rt_weakmap_size(*wm), 1);
  gc_persistent_free(h, wv);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* Dropping the only outside reference to an old key removes its entry at
 * the next full GC, and its value dies with it. */
static void test_weakmap_dead_key_full_gc(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 0));
  rt_value_t *keep = rt_handle(h, obj(rt));
  rt_value_t kept = rt_string_cstr(rt, "kept");
  wset(rt, wm, *keep, kept);
  gc_persistent_t *wk, *wv;
  {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *key = rt_handle(h, obj(rt));
    rt_value_t val = box(rt, rt_string_cstr(rt, "dies"));
    wk = weak(h, *key);
    wv = weak(h, val);
    wset(rt, wm, *key, val);
    promote(h);
    collect(h, GC_COLLECT_FULL);
    assert_false(young(h, *key));
    assert_false(young(h, *wm));
    assert_true(rt_weakmap_has(rt, *wm, *key));
    assert_int_equal(rt_weakmap_size(*wm), 2);
    gc_scope_close(h, &in);
  }
  collect(h, GC_COLLECT_MINOR); /* an old key does not die in a scavenge */
  assert_false(gone(wk));
  assert_int_equal(rt_weakmap_size(*wm), 2);
  collect(h, GC_COLLECT_FULL);
  assert_true(gone(wk));
  assert_true(gone(wv));
  assert_int_equal(rt_weakmap_size(*wm), 1);
  assert_int_equal(rt_weakmap_tombstones(*wm), 1);
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *keep), "kept"));
  gc_persistent_free(h, wk);
  gc_persistent_free(h, wv);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* A young key dropped from a young table: the next scavenge removes the
 * entry and the value. */
static void test_weakmap_dead_key_minor_gc(void **state) {
  (void)state;
  rt_runtime_t *rt = young_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 4));
  gc_persistent_t *wk, *wv;
  {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *key = rt_handle(h, obj(rt));
    rt_value_t val = rt_string_cstr(rt, "young value");
    wk = weak(h, *key);
    wv = weak(h, val);
    wset(rt, wm, *key, val);
    assert_true(young(h, *wm) && young(h, *key) && young(h, val));
    assert_int_equal(rt_weakmap_size(*wm), 1);
    gc_scope_close(h, &in);
  }
  collect(h, GC_COLLECT_MINOR);
  assert_true(young(h, *wm)); /* the table was scanned as a young object */
  assert_true(gone(wk));
  assert_true(gone(wv));
  assert_int_equal(rt_weakmap_size(*wm), 0);
  assert_int_equal(rt_weakmap_tombstones(*wm), 1);
  gc_persistent_free(h, wk);
  gc_persistent_free(h, wv);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* A value that refers back to its key does not keep it, in a scavenge and
 * in a full GC. */
static void test_weakmap_value_refers_to_key(void **state) {
  (void)state;
  rt_runtime_t *rt = young_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_collect_kind_t kinds[] = {GC_COLLECT_MINOR, GC_COLLECT_FULL};
  for (int round = 0; round < 2; round++) {
    gc_scope_t s;
    gc_scope_open(h, &s);
    rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 4));
    gc_persistent_t *wk, *wv;
    {
      gc_scope_t in;
      gc_scope_open(h, &in);
      rt_value_t *key = rt_handle(h, obj(rt));
      rt_value_t val = box(rt, *key);
      wk = weak(h, *key);
      wv = weak(h, val);
      wset(rt, wm, *key, val);
      collect(h, kinds[round]); /* held: kept, and the value sees the key */
      rt_value_t got = rt_weakmap_get(rt, *wm, *key);
      assert_true(rt_is_array(got));
      assert_true(rt_array_get(got, 0) == *key);
      if (round == 0)
        assert_true(young(h, *key));
      gc_scope_close(h, &in);
    }
    collect(h, kinds[round]);
    assert_true(gone(wk));
    assert_true(gone(wv));
    assert_int_equal(rt_weakmap_size(*wm), 0);
    gc_persistent_free(h, wk);
    gc_persistent_free(h, wv);
    gc_scope_close(h, &s);
  }
  rt_runtime_destroy(rt);
}

/* key_i's value holds key_{i+1}; only key_0 is held from outside.  All
 * entries live while key_0 does; all go, values included, once it is
 * dropped. */
static void test_weakmap_chain(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  const size_t n = 1000;
  gc_persistent_t **wv = calloc(n, sizeof *wv);
  assert_non_null(wv);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 0));
  rt_value_t *k0;
  {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *keys = rt_handle(h, rt_array_new(rt, n));
    for (size_t i = 0; i < n; i++) {
      gc_scope_t in2;
      gc_scope_open(h, &in2);
      rt_value_t *k = rt_handle(h, obj(rt));
      assert_int_equal(rt_array_push(rt, keys, k), 0);
      gc_scope_close(h, &in2);
    }
    for (size_t i = 0; i < n; i++) {
      rt_value_t val = i + 1 < n ? box(rt, rt_array_get(*keys, i + 1))
                                 : rt_string_cstr(rt, "end");
      wv[i] = weak(h, val);
      wset(rt, wm, rt_array_get(*keys, i), val);
    }
    k0 = (rt_value_t *)gc_scope_close_escape(
        h, &in, (void *)rt_array_get(*keys, 0));
  }
  collect(h, GC_COLLECT_MINOR);
  collect(h, GC_COLLECT_FULL);
  promote(h);
  collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_weakmap_size(*wm), n);
  rt_value_t k = *k0;
  for (size_t i = 0; i < n; i++) {
    rt_value_t v = rt_weakmap_get(rt, *wm, k);
    assert_true(v == (rt_value_t)gc_persistent_get(wv[i]));
    if (i + 1 < n) {
      assert_true(rt_is_array(v));
      k = rt_array_get(v, 0);
    } else {
      assert_true(rt_string_equal_cstr(v, "end"));
    }
  }
  *k0 = RT_UNDEFINED;
  collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_weakmap_size(*wm), 0);
  assert_int_equal(rt_weakmap_tombstones(*wm), n);
  for (size_t i = 0; i < n; i++) {
    assert_true(gone(wv[i]));
    gc_persistent_free(h, wv[i]);
  }
  free(wv);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* k1 -> v1 holds k2, k2 -> v2 holds k1: with k1 held both live; with no
 * outside reference the cycle is collected, by a scavenge while young and
 * by a full GC once old. */
static void test_weakmap_cycle_through_values(void **state) {
  (void)state;
  rt_runtime_t *rt = young_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_collect_kind_t kinds[] = {GC_COLLECT_MINOR, GC_COLLECT_FULL};
  for (int round = 0; round < 2; round++) {
    gc_scope_t s;
    gc_scope_open(h, &s);
    rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 8));
    rt_value_t *k1 = rt_handle(h, obj(rt));
    rt_value_t *k2 = rt_handle(h, obj(rt));
    rt_value_t *v1 = rt_handle(h, box(rt, *k2));
    rt_value_t *v2 = rt_handle(h, box(rt, *k1));
    wset(rt, wm, *k1, *v1);
    wset(rt, wm, *k2, *v2);
    gc_persistent_t *w[4] = {weak(h, *k1), weak(h, *k2), weak(h, *v1),
                             weak(h, *v2)};
    if (round == 1) { /* make it all old */
      promote(h);
      collect(h, GC_COLLECT_FULL);
      assert_false(young(h, *k1) || young(h, *k2));
    }
    *k2 = *v1 = *v2 = RT_UNDEFINED;
    collect(h, kinds[round]); /* k1 holds the cycle */
    assert_int_equal(rt_weakmap_size(*wm), 2);
    rt_value_t k2now = rt_array_get(rt_weakmap_get(rt, *wm, *k1), 0);
    assert_true(rt_array_get(rt_weakmap_get(rt, *wm, k2now), 0) == *k1);
    for (int i = 0; i < 4; i++)
      assert_false(gone(w[i]));
    if (round == 0)
      assert_true(young(h, *k1) && young(h, k2now));
    *k1 = RT_UNDEFINED;
    collect(h, kinds[round]);
    assert_int_equal(rt_weakmap_size(*wm), 0);
    for (int i = 0; i < 4; i++) {
      assert_true(gone(w[i]));
      gc_persistent_free(h, w[i]);
    }
    gc_scope_close(h, &s);
  }
  rt_runtime_destroy(rt);
}

/* Many entries; half the keys dropped: the survivors are all found, the
 * dropped ones are gone, and inserts afterwards reuse the tombstones. */
static void test_weakmap_many_entries_half_dropped(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  const size_t n = (size_t)test_scale(100000, 10000);
  const size_t every = 97; /* values with a weak handle: one in EVERY */
  size_t nw = n / every + 1, iw = 0;
  gc_persistent_t **wv = calloc(nw, sizeof *wv);
  assert_non_null(wv);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 0));
  rt_value_t *keys = rt_handle(h, rt_array_new(rt, n));
  double t0 = rt_test_now_ms();
  for (size_t i = 0; i < n; i++) {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *k = rt_handle(h, obj(rt));
    assert_int_equal(rt_array_push(rt, keys, k), 0);
    if (i % every == 0) {
      rt_value_t v = box(rt, rt_int((int64_t)i));
      wv[iw++] = weak(h, v);
      wset(rt, wm, *k, v);
    } else {
      wset(rt, wm, *k, rt_int((int64_t)i));
    }
    gc_scope_close(h, &in);
  }
  double ms_insert = rt_test_now_ms() - t0;
  assert_int_equal(rt_weakmap_size(*wm), n);
  assert_int_equal(rt_weakmap_tombstones(*wm), 0);
  for (size_t i = 1; i < n; i += 2)
    assert_int_equal(rt_array_set(rt, *keys, i, RT_UNDEFINED), 0);
  collect(h, GC_COLLECT_FULL);
  size_t kept = (n + 1) / 2, dropped = n / 2;
  assert_int_equal(rt_weakmap_size(*wm), kept);
  assert_int_equal(rt_weakmap_tombstones(*wm), dropped);
  t0 = rt_test_now_ms();
  for (size_t i = 0; i < n; i += 2) {
    rt_value_t v = rt_weakmap_get(rt, *wm, rt_array_get(*keys, i));
    if (i % every == 0)
      v = rt_array_get(v, 0);
    assert_true(v == rt_int((int64_t)i));
  }
  double ms_get = rt_test_now_ms() - t0;
  for (size_t j = 0; j < iw; j++) {
    size_t i = j * every;
    assert_true(gone(wv[j]) == (i % 2 == 1));
  }
  /* Refill the dropped half with new keys: no growth (used stays under
   * 3/4 of the capacity for these N), and some inserts land on
   * tombstones. */
  size_t cap = rt_weakmap_capacity(*wm);
  for (size_t i = 1; i < n; i += 2) {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *k = rt_handle(h, obj(rt));
    assert_int_equal(rt_array_set(rt, *keys, i, *k), 0);
    wset(rt, wm, *k, rt_int((int64_t)(n + i)));
    gc_scope_close(h, &in);
  }
  assert_int_equal(rt_weakmap_size(*wm), n);
  assert_int_equal(rt_weakmap_capacity(*wm), cap);
  assert_true(rt_weakmap_tombstones(*wm) < dropped);
  collect(h, GC_COLLECT_MINOR);
  collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_weakmap_size(*wm), n);
  for (size_t i = 0; i < n; i++) {
    rt_value_t v = rt_weakmap_get(rt, *wm, rt_array_get(*keys, i));
    if (i % 2 == 1)
      assert_true(v == rt_int((int64_t)(n + i)));
    else if (i % every == 0)
      assert_true(rt_array_get(v, 0) == rt_int((int64_t)i));
    else
      assert_true(v == rt_int((int64_t)i));
  }
  fprintf(stderr, "# %zu entries: insert %.1f ms, %zu gets %.1f ms\n", n,
          ms_insert, kept, ms_get);
  for (size_t j = 0; j < iw; j++)
    gc_persistent_free(h, wv[j]);
  free(wv);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* A sliding window: insert key i, hold only the last W keys.  Dead keys'
 * tombstones are reused or rebuilt away, so the table stays within a
 * constant factor of W instead of growing with the number of inserts. */
static void test_weakmap_sliding_window_stays_bounded(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  const size_t w = 64, n = (size_t)test_scale(50000, 3000);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 0));
  rt_value_t *ring = rt_handle(h, rt_array_new(rt, w));
  rt_value_t *u = rt_handle(h, RT_UNDEFINED);
  for (size_t i = 0; i < w; i++)
    assert_int_equal(rt_array_push(rt, ring, u), 0);
  size_t maxcap = 0;
  for (size_t i = 0; i < n; i++) {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *k = rt_handle(h, obj(rt));
    assert_int_equal(rt_array_set(rt, *ring, i % w, *k), 0);
    wset(rt, wm, *k, rt_int((int64_t)i));
    gc_scope_close(h, &in);
    if (i % w == w - 1)
      gc_collect(h, GC_COLLECT_MINOR);
    if (rt_weakmap_capacity(*wm) > maxcap)
      maxcap = rt_weakmap_capacity(*wm);
  }
  collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_weakmap_size(*wm), w);
  assert_true(maxcap <= 8 * w);
  for (size_t i = n - w; i < n; i++)
    assert_true(rt_weakmap_get(rt, *wm, rt_array_get(*ring, i % w)) ==
                rt_int((int64_t)i));
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* Old tables with young keys and values: the write barrier must remember
 * the table (gc_verify checks the remembered set after every GC), and the
 * scavenger must follow the entries of remembered tables. */
static void test_weakmap_old_table_young_entries(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 16));
  rt_value_t *kold = rt_handle(h, obj(rt));
  wset(rt, wm, *kold, rt_int(0));
  promote(h);
  collect(h, GC_COLLECT_FULL);
  assert_false(young(h, *wm));
  assert_false(young(h, *kold));

  /* An old key gets a young value; a young key with a young value; a young
   * key dropped at once. */
  rt_value_t v = rt_string_cstr(rt, "v1"); /* before *kold is read */
  wset(rt, wm, *kold, v);
  /* One allocation each (strings, empty arrays), so under --stress-gc they
   * are still young here. */
  rt_value_t *vy = rt_handle(h, rt_string_cstr(rt, "v2"));
  rt_value_t *ky = rt_handle(h, obj(rt)); /* the last GC point: both young */
  assert_true(young(h, *ky) && young(h, *vy));
  wset(rt, wm, *ky, *vy);
  *vy = RT_UNDEFINED;
  gc_persistent_t *wd, *wdv;
  bool kd_young;
  {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *vdh = rt_handle(h, rt_string_cstr(rt, "v3"));
    rt_value_t *kd = rt_handle(h, obj(rt));
    rt_value_t vd = *vdh;
    wd = weak(h, *kd);
    wdv = weak(h, vd);
    wset(rt, wm, *kd, vd);
    kd_young = young(h, *kd) && young(h, vd);
    gc_scope_close(h, &in);
  }
  assert_true(kd_young);
  assert_int_equal(gc_verify(h), 0);
  collect(h, GC_COLLECT_MINOR);
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *kold), "v1"));
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *ky), "v2"));
  /* A young key held only by the old table dies in the scavenge. */
  assert_true(gone(wd));
  assert_true(gone(wdv));
  collect(h, GC_COLLECT_FULL);
  assert_true(gone(wd));
  assert_true(gone(wdv));
  assert_int_equal(rt_weakmap_size(*wm), 2);
  promote(h);
  collect(h, GC_COLLECT_FULL);
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *kold), "v1"));
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *ky), "v2"));

  /* A large table (over GC_MAX_REGULAR_SIZE: allocated old) filled with
   * young keys and values; half of the keys dropped. */
  const size_t n = 1000;
  rt_value_t *big = rt_handle(h, rt_weakmap_new(rt, n));
  assert_true(rt_weakmap_capacity(*big) * 24 > GC_MAX_REGULAR_SIZE);
  rt_value_t *keys = rt_handle(h, rt_array_new(rt, n));
  for (size_t i = 0; i < n; i++) {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *k = rt_handle(h, obj(rt));
    assert_int_equal(rt_array_push(rt, keys, k), 0);
    rt_value_t bv = box(rt, rt_int((int64_t)i));
    wset(rt, big, *k, bv);
    gc_scope_close(h, &in);
    if (i % 100 == 99)
      collect(h, GC_COLLECT_MINOR);
  }
  size_t cap = rt_weakmap_capacity(*big);
  collect(h, GC_COLLECT_MINOR);
  for (size_t i = 0; i < n; i++)
    assert_true(rt_array_get(rt_weakmap_get(rt, *big, rt_array_get(*keys, i)),
                             0) == rt_int((int64_t)i));
  for (size_t i = 0; i < n; i += 2)
    assert_int_equal(rt_array_set(rt, *keys, i, RT_UNDEFINED), 0);
  collect(h, GC_COLLECT_MINOR);
  assert_true(rt_weakmap_size(*big) >= n / 2);
  collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_weakmap_size(*big), n / 2);
  assert_int_equal(rt_weakmap_capacity(*big), cap);
  for (size_t i = 1; i < n; i += 2)
    assert_true(rt_array_get(rt_weakmap_get(rt, *big, rt_array_get(*keys, i)),
                             0) == rt_int((int64_t)i));
  /* Young values stored over old ones in the (old) large table. */
  for (size_t i = 1; i < n; i += 2) {
    rt_value_t bv = box(rt, rt_int(-(int64_t)i));
    wset(rt, big, rt_array_get(*keys, i), bv);
  }
  collect(h, GC_COLLECT_MINOR);
  collect(h, GC_COLLECT_MINOR);
  for (size_t i = 1; i < n; i += 2)
    assert_true(rt_array_get(rt_weakmap_get(rt, *big, rt_array_get(*keys, i)),
                             0) == rt_int(-(int64_t)i));
  collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_weakmap_size(*big), n / 2);
  gc_persistent_free(h, wd);
  gc_persistent_free(h, wdv);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

static uint32_t lcg(uint32_t *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return *seed >> 16;
}

/* Tombstones must not cut probe chains.  Keys get consecutive ids, which
 * a multiplicative hash spreads without collisions; so each round gives
 * ids to 16 fresh objects and keys an 8-slot table (no rebuild: at most 6
 * entries) with 6 of them at random, which nearly always collide.  Half of
 * the keys die (GC tombstones), the others are deleted one by one
 * (tombstones of delete): every remaining key is found after each step. */
static void test_weakmap_tombstones_keep_probe_chains(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  enum { ROUNDS = 60, POOL = 16, M = 6 };
  uint32_t seed = 12345;
  for (int round = 0; round < ROUNDS; round++) {
    gc_scope_t s;
    gc_scope_open(h, &s);
    rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 3));
    assert_int_equal(rt_weakmap_capacity(*wm), 8);
    rt_value_t *pool = rt_handle(h, rt_array_new(rt, POOL));
    for (int i = 0; i < POOL; i++) {
      gc_scope_t in;
      gc_scope_open(h, &in);
      rt_value_t *k = rt_handle(h, obj(rt));
      assert_int_equal(rt_array_push(rt, pool, k), 0);
      gc_scope_close(h, &in);
    }
    for (int i = 0; i < POOL; i++)
      assert_true(gc_object_id(h, (void *)rt_array_get(*pool, i)) != 0);
    bool used[POOL] = {false};
    rt_value_t *keys = rt_handle(h, rt_array_new(rt, M));
    for (int j = 0; j < M; j++) {
      int i;
      do
        i = (int)(lcg(&seed) % POOL);
      while (used[i]);
      used[i] = true;
      gc_scope_t in;
      gc_scope_open(h, &in);
      rt_value_t *k = rt_handle(h, rt_array_get(*pool, (size_t)i));
      assert_int_equal(rt_array_push(rt, keys, k), 0);
      gc_scope_close(h, &in);
    }
    *pool = RT_UNDEFINED;
    for (int j = 0; j < M; j++)
      wset(rt, wm, rt_array_get(*keys, (size_t)j), rt_int(j));
    assert_int_equal(rt_weakmap_capacity(*wm), 8);
    assert_int_equal(rt_weakmap_size(*wm), M);
    /* The even keys die: their entries become tombstones in the GC. */
    for (int j = 0; j < M; j += 2)
      assert_int_equal(rt_array_set(rt, *keys, (size_t)j, RT_UNDEFINED), 0);
    collect(h, GC_COLLECT_FULL);
    assert_int_equal(rt_weakmap_size(*wm), M / 2);
    assert_int_equal(rt_weakmap_tombstones(*wm), M / 2);
    for (int j = 1; j < M; j += 2)
      assert_true(rt_weakmap_get(rt, *wm, rt_array_get(*keys, (size_t)j)) ==
                  rt_int(j));
    /* Delete the odd ones one by one; the later ones stay reachable. */
    for (int j = 1; j < M; j += 2) {
      rt_value_t k = rt_array_get(*keys, (size_t)j);
      assert_int_equal(rt_weakmap_delete(rt, *wm, k), 0);
      assert_false(rt_weakmap_has(rt, *wm, k));
      for (int l = j + 2; l < M; l += 2)
        assert_true(rt_weakmap_get(rt, *wm, rt_array_get(*keys, (size_t)l)) ==
                    rt_int(l));
    }
    assert_int_equal(rt_weakmap_size(*wm), 0);
    assert_int_equal(rt_weakmap_tombstones(*wm), M);
    /* Insert them again: tombstones are reused or rebuilt away. */
    for (int j = 1; j < M; j += 2)
      wset(rt, wm, rt_array_get(*keys, (size_t)j), rt_int(100 + j));
    for (int j = 1; j < M; j += 2)
      assert_true(rt_weakmap_get(rt, *wm, rt_array_get(*keys, (size_t)j)) ==
                  rt_int(100 + j));
    assert_int_equal(rt_weakmap_size(*wm), M / 2);
    assert_int_equal(rt_weakmap_capacity(*wm), 8);
    gc_scope_close(h, &s);
  }
  rt_runtime_destroy(rt);
}

/* A rebuild whose own allocation collects (--stress-gc on this heap in
 * every variant): the old table is young, so it moves, and the keys that
 * nothing else holds die during the allocation; set must copy from where
 * the table is after the GC and only the entries still live. */
static void test_weakmap_rebuild_while_collecting(void **state) {
  (void)state;
  gc_options_t o;
  test_options(&o);
  o.stress_gc = true;
  o.verify_heap = true;
  o.promotion_age = 7;
  rt_runtime_t *rt = NULL;
  assert_int_equal(rt_runtime_create(test_heap_with(&o), &rt), 0);
  gc_heap_t *h = rt_heap(rt);
  const size_t n = 200;
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 0));
  rt_value_t *held = rt_handle(h, rt_array_new(rt, n));
  for (size_t i = 0; i < n; i++) {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *k = rt_handle(h, obj(rt));
    if (i % 2 == 0)
      assert_int_equal(rt_array_push(rt, held, k), 0);
    wset(rt, wm, *k, rt_int((int64_t)i));
    gc_scope_close(h, &in);
    for (size_t j = 0; j <= i; j += 2)
      assert_true(rt_weakmap_get(rt, *wm, rt_array_get(*held, j / 2)) ==
                  rt_int((int64_t)j));
  }
  collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_weakmap_size(*wm), n / 2);
  for (size_t j = 0; j < n / 2; j++)
    assert_true(rt_weakmap_get(rt, *wm, rt_array_get(*held, j)) ==
                rt_int((int64_t)(2 * j)));
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* A heap snapshot walks tables through the visitor's fallback (key as a
 * weak edge, value as an internal one): it names both types. */
static void test_weakmap_in_heap_snapshot(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *wm = rt_handle(h, rt_weakmap_new(rt, 0));
  rt_value_t *key = rt_handle(h, obj(rt));
  rt_value_t v = rt_string_cstr(rt, "snapshot value");
  wset(rt, wm, *key, v);
  {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t dead = obj(rt);
    wset(rt, wm, dead, rt_int(1));
    gc_scope_close(h, &in);
  }
  collect(h, GC_COLLECT_FULL); /* one live entry, one tombstone */
  FILE *f = tmpfile();
  assert_non_null(f);
  assert_int_equal(gc_snapshot_write(h, f), 0);
  long len = ftell(f);
  assert_true(len > 0);
  char *buf = malloc((size_t)len + 1);
  assert_non_null(buf);
  rewind(f);
  assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
  buf[len] = 0;
  fclose(f);
  assert_non_null(strstr(buf, "\"WeakMap\""));
  assert_non_null(strstr(buf, "\"(weakmap table)\""));
  assert_non_null(strstr(buf, "snapshot value"));
  free(buf);
  assert_true(rt_string_equal_cstr(rt_weakmap_get(rt, *wm, *key),
                                   "snapshot value"));
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_weakmap_set_get_has_delete),
      cmocka_unit_test(test_weakmap_rejects_immediate_keys),
      cmocka_unit_test(test_weakmap_live_key_keeps_value),
      cmocka_unit_test(test_weakmap_dead_key_full_gc),
      cmocka_unit_test(test_weakmap_dead_key_minor_gc),
      cmocka_unit_test(test_weakmap_value_refers_to_key),
      cmocka_unit_test(test_weakmap_chain),
      cmocka_unit_test(test_weakmap_cycle_through_values),
      cmocka_unit_test(test_weakmap_many_entries_half_dropped),
      cmocka_unit_test(test_weakmap_tombstones_keep_probe_chains),
      cmocka_unit_test(test_weakmap_rebuild_while_collecting),
      cmocka_unit_test(test_weakmap_sliding_window_stays_bounded),
      cmocka_unit_test(test_weakmap_old_table_young_entries),
      cmocka_unit_test(test_weakmap_in_heap_snapshot),
  };
  return cmocka_run_group_tests_name("runtime.weakmap", tests, NULL, NULL);
}
