/* test_scavenge.c -- objects reachable from handles survive and move
 * correctly; unreachable ones are reclaimed; promotion by age. */
#include "test_util.h"

static void test_scavenge_handles_keep_and_move(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  /* A list of 1000 pairs, rooted by one handle. */
  pair_t **list = (pair_t **)gc_handle(h, NULL);
  for (long i = 0; i < 1000; i++)
    *list = test_pair(h, NULL, *list, i);
  void *before = *list;
  gc_collect(h, GC_COLLECT_MINOR);
  assert_ptr_not_equal(*list, before); /* it moved ... */
  long expect = 999;
  for (pair_t *p = *list; p != NULL; p = p->cdr)
    assert_int_equal(p->value, expect--); /* ... and is intact */
  assert_int_equal(expect, -1);
  gc_collect(h, GC_COLLECT_FULL);
  expect = 999;
  for (pair_t *p = *list; p != NULL; p = p->cdr)
    assert_int_equal(p->value, expect--);
  assert_int_equal(expect, -1);
  gc_scope_close(h, &s);
  assert_int_equal(gc_verify(h), 0);
  gc_heap_destroy(h);
}

static void test_scavenge_reclaims_garbage(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  for (long i = 0; i < test_scale(200000, 20000); i++)
    test_pair(h, NULL, NULL, i);
  gc_collect(h, GC_COLLECT_FULL);
  gc_heap_stats_t st = test_stats(h);
  /* 200000 pairs are ~6 MB; none is reachable. */
  assert_true(st.used_heap_size < 64 * 1024);
  assert_true(st.scavenges > 0 || test_under_stress());
  gc_heap_destroy(h);
}

static void test_scavenge_shared_structure(void **state) {
  /* Two handles and two fields reach one object: it is copied once and
   * every reference sees the same copy. */
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **shared = (pair_t **)gc_handle(h, test_pair(h, NULL, NULL, 42));
  pair_t **a = (pair_t **)gc_handle(h, test_pair(h, *shared, *shared, 1));
  pair_t **b = (pair_t **)gc_handle(h, *shared);
  gc_collect(h, GC_COLLECT_MINOR);
  assert_ptr_equal((*a)->car, *shared);
  assert_ptr_equal((*a)->cdr, *shared);
  assert_ptr_equal(*b, *shared);
  (*shared)->value = 7;
  assert_int_equal(((pair_t *)(*a)->car)->value, 7);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

static void test_scavenge_cycles(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **a = (pair_t **)gc_handle(h, test_pair(h, NULL, NULL, 1));
  pair_t *b = test_pair(h, *a, NULL, 2);
  gc_write(h, *a, &(*a)->car, b); /* a <-> b */
  for (int i = 0; i < 4; i++) {
    gc_collect(h, i % 2 ? GC_COLLECT_FULL : GC_COLLECT_MINOR);
    pair_t *bb = (*a)->car;
    assert_int_equal(bb->value, 2);
    assert_ptr_equal(bb->car, *a);
  }
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

/* Options for a test that counts the scavenges itself: no stress or
 * interval collections (TENURE_OPTIONS may ask for them). */
static void counting_options(gc_options_t *o) {
  test_options(o);
  o->stress_gc = false;
  o->gc_interval = 0;
}

static void test_scavenge_promotion_by_age(void **state) {
  (void)state;
  for (int age = 0; age <= 3; age++) {
    gc_options_t o;
    counting_options(&o);
    o.promotion_age = age;
    gc_heap_t *h = test_heap_with(&o);
    test_register_zoo(h);
    gc_scope_t s;
    gc_scope_open(h, &s);
    pair_t **p = (pair_t **)gc_handle(h, test_pair(h, NULL, NULL, 5));
    gc_heap_stats_t st0 = test_stats(h);
    int survived = 0;
    /* It stays in new space for AGE scavenges, and is promoted by the next. */
    while (test_stats(h).spaces[GC_SPACE_OLD].space_used_size ==
           st0.spaces[GC_SPACE_OLD].space_used_size) {
      gc_collect(h, GC_COLLECT_MINOR);
      survived++;
      assert_true(survived <= 8);
    }
    assert_int_equal(survived, age + 1);
    assert_int_equal((*p)->value, 5);
    gc_scope_close(h, &s);
    gc_heap_destroy(h);
  }
}

/* Fast promotion (policy.c) turns on when nearly all of new space survived
 * through the roots; what survives only through a remembered old object,
 * which may be dead, does not count (nepotism).  New space is filled with a
 * list hanging off an old pair; in one case the list is also rooted, in the
 * other the old pair's handle is dropped.  After that scavenge, a young
 * object is promoted by the next one only if fast promotion is on. */
static void test_scavenge_fast_promotion_counts_root_survivors(void **state) {
  (void)state;
  for (int rooted = 0; rooted <= 1; rooted++) {
    gc_options_t o;
    counting_options(&o);
    gc_heap_t *h = test_heap_with(&o);
    test_register_zoo(h);
    gc_scope_t s;
    gc_scope_open(h, &s);
    pair_t **anchor = (pair_t **)gc_handle(h, test_pair(h, NULL, NULL, 0));
    for (int i = 0; i < 3 && gc__is_young(gc__fast(h), *anchor); i++)
      gc_collect(h, GC_COLLECT_MINOR);
    assert_false(gc__is_young(gc__fast(h), *anchor));
    size_t cap = test_stats(h).semi_space_size;
    uint64_t scavenges = test_stats(h).scavenges;
    /* Fill 90% of new space with a list under the old pair (each store is
     * an old-to-new edge: the pair is remembered). */
    long n = 0;
    while (test_stats(h).spaces[GC_SPACE_NEW].space_used_size < cap / 10 * 9)
      for (int k = 0; k < 256; k++, n++)
        gc_write(h, *anchor, &(*anchor)->cdr,
                 test_pair(h, NULL, (*anchor)->cdr, n));
    assert_int_equal(test_stats(h).scavenges, scavenges);
    pair_t **list = (pair_t **)gc_handle(h, rooted ? (*anchor)->cdr : NULL);
    if (!rooted)
      *anchor = NULL; /* dead, but still remembered */
    gc_collect(h, GC_COLLECT_MINOR); /* everything survives */
    pair_t **y = (pair_t **)gc_handle(h, test_pair(h, NULL, NULL, 7));
    gc_collect(h, GC_COLLECT_MINOR);
    /* promotion_age 1: Y, age 0, is promoted only by fast promotion */
    assert_int_equal(!gc__is_young(gc__fast(h), *y), rooted);
    assert_int_equal((*y)->value, 7);
    if (rooted)
      assert_int_equal(((pair_t *)*list)->value, n - 1);
    gc_scope_close(h, &s);
    assert_int_equal(gc_verify(h), 0);
    gc_heap_destroy(h);
  }
}

/* Builds a list of N pairs in a new handle. */
static pair_t **young_list(gc_heap_t *h, long n) {
  pair_t **l = (pair_t **)gc_handle(h, NULL);
  for (long i = 0; i < n; i++)
    *l = test_pair(h, NULL, *l, i);
  return l;
}

/* Adaptive tenuring (policy.c): without --promotion-age, survivors are
 * promoted at the first age from which most of them survive the next
 * scavenge.  Each round, 90% of what is allocated (A) dies after one
 * scavenge and 10% (B) after two, and a few pairs (C, under the policy's
 * sample size) after four: with promotion at age 1, B and C are promoted
 * every round; adaptively, once the heap has seen that ages 1 and 2
 * mostly die (and that what is left after them is too thin to judge),
 * nothing is. */
static void test_scavenge_adaptive_tenuring(void **state) {
  (void)state;
  for (int given = 0; given <= 1; given++) {
    gc_options_t o;
    counting_options(&o);
    o.promotion_age = given ? 1 : -1;
    /* Room for a round: the only scavenges are the test's. */
    o.min_semi_space_size = o.max_semi_space_size = 1024 * 1024;
    gc_heap_t *h = test_heap_with(&o);
    test_register_zoo(h);
    gc_scope_t s;
    gc_scope_open(h, &s);
    pair_t **prev_b = (pair_t **)gc_handle(h, NULL);
    pair_t **c[4];
    for (int k = 0; k < 4; k++)
      c[k] = (pair_t **)gc_handle(h, NULL);
    size_t promoted_at_10 = 0;
    long b_pairs = 256; /* about 10 KB: above the policy's sample size */
    for (int round = 0; round < 20; round++) {
      gc_scope_t r;
      gc_scope_open(h, &r);
      pair_t **a = young_list(h, 9 * b_pairs);
      pair_t **b = young_list(h, b_pairs);
      *c[round % 4] = *young_list(h, 16); /* replaces the one of 4 rounds ago */
      gc_collect(h, GC_COLLECT_MINOR);
      *a = NULL;    /* dies after one scavenge */
      *prev_b = *b; /* the last round's B dies after two */
      gc_scope_close(h, &r);
      if (round == 9)
        promoted_at_10 = test_stats(h).bytes_promoted;
    }
    assert_int_equal(test_stats(h).scavenges, 20);
    size_t promoted = test_stats(h).bytes_promoted - promoted_at_10;
    size_t b_bytes = (size_t)b_pairs * sizeof(pair_t);
    size_t c_bytes = 16 * sizeof(pair_t);
    if (given)
      assert_true(promoted >= 5 * b_bytes); /* B promoted every round */
    else
      assert_true(promoted < c_bytes);
    assert_int_equal(((pair_t *)*prev_b)->value, b_pairs - 1);
    gc_scope_close(h, &s);
    assert_int_equal(gc_verify(h), 0);
    gc_heap_destroy(h);
  }
}

/* Adaptive tenuring under a constant hazard, as a server replacing values
 * at a steady rate: each round (one scavenge) replaces each of VALUES
 * values (lists of VALUE_PAIRS pairs) with probability 5/8, so every age
 * mostly dies and nothing should be promoted but the tail that outlives
 * the oldest age: (3/8)^8 of the values, 0.4 a round, 60 over the last
 * 150 rounds.  Judged on one scavenge at a time, an age of a few dozen
 * values reads as "mostly survived" by chance now and then, and it is
 * promoted with every age above it: 386 values were (commit 3acbf25);
 * judged over the policy's window, 88. */
static void test_scavenge_tenuring_constant_hazard(void **state) {
  (void)state;
  enum { VALUES = 1000, VALUE_PAIRS = 10, ROUNDS = 200, SETTLED = 50 };
  gc_options_t o;
  counting_options(&o);
  o.promotion_age = -1;
  o.min_semi_space_size = o.max_semi_space_size = 1024 * 1024;
  gc_heap_t *h = test_heap_with(&o);
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **slot[VALUES];
  for (int i = 0; i < VALUES; i++)
    slot[i] = (pair_t **)gc_handle(h, NULL);
  uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64: the same run every time */
  size_t promoted_settled = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < VALUES; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      if (*slot[i] == NULL || (x >> 61) < 5) { /* 5 in 8 */
        gc_scope_t r;
        gc_scope_open(h, &r);
        *slot[i] = *young_list(h, VALUE_PAIRS);
        gc_scope_close(h, &r);
      }
    }
    gc_collect(h, GC_COLLECT_MINOR);
    if (round == SETTLED - 1)
      promoted_settled = test_stats(h).bytes_promoted;
  }
  assert_int_equal(test_stats(h).scavenges, ROUNDS);
  size_t promoted = test_stats(h).bytes_promoted - promoted_settled;
  size_t value_bytes = VALUE_PAIRS * (sizeof(pair_t) + sizeof(void *));
  /* The tail, 60 values; allow twice that. */
  print_message("promoted over the last %d rounds: %zu bytes (%zu values)\n",
                ROUNDS - SETTLED, promoted, promoted / value_bytes);
  assert_true(promoted <= 120 * value_bytes);
  gc_scope_close(h, &s);
  assert_int_equal(gc_verify(h), 0);
  gc_heap_destroy(h);
}

static void test_scavenge_nested_scopes_and_escape(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t outer;
  gc_scope_open(h, &outer);
  pair_t **kept = NULL;
  {
    gc_scope_t inner;
    gc_scope_open(h, &inner);
    /* Enough handles to need several handle blocks. */
    for (int i = 0; i < 5000; i++)
      gc_handle(h, test_pair(h, NULL, NULL, i));
    pair_t *last = test_pair(h, NULL, NULL, 77);
    kept = (pair_t **)gc_scope_close_escape(h, &inner, last);
  }
  gc_collect(h, GC_COLLECT_FULL);
  assert_int_equal((*kept)->value, 77);
  gc_heap_stats_t st = test_stats(h);
  /* Only the escaped pair is alive (plus nothing else). */
  assert_true(st.used_heap_size <= 64);
  gc_scope_close(h, &outer);
  gc_heap_destroy(h);
}

static void test_scavenge_immediates_ignored(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  test_register_zoo(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  pair_t **p = (pair_t **)gc_handle(h, test_pair(h, NULL, NULL, 0));
  /* Tagged small integers in slots and handles are left alone. */
  gc_write(h, *p, &(*p)->car, (void *)(uintptr_t)((12345 << 1) | 1));
  void **imm = gc_handle(h, (void *)(uintptr_t)0x7);
  gc_collect(h, GC_COLLECT_MINOR);
  gc_collect(h, GC_COLLECT_FULL);
  assert_int_equal((uintptr_t)(*p)->car, (12345 << 1) | 1);
  assert_int_equal((uintptr_t)*imm, 0x7);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scavenge_handles_keep_and_move),
      cmocka_unit_test(test_scavenge_reclaims_garbage),
      cmocka_unit_test(test_scavenge_shared_structure),
      cmocka_unit_test(test_scavenge_cycles),
      cmocka_unit_test(test_scavenge_promotion_by_age),
      cmocka_unit_test(test_scavenge_fast_promotion_counts_root_survivors),
      cmocka_unit_test(test_scavenge_adaptive_tenuring),
      cmocka_unit_test(test_scavenge_tenuring_constant_hazard),
      cmocka_unit_test(test_scavenge_nested_scopes_and_escape),
      cmocka_unit_test(test_scavenge_immediates_ignored),
  };
  return cmocka_run_group_tests_name("gc.scavenge", tests, NULL, NULL);
}
