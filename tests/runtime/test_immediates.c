/* test_immediates.c -- small integers whose value words spell new-space
 * addresses survive GCs unchanged in arrays and maps (runtime.immediates).
 *
 * A small integer I is the word (I << 1) | 1 (rt.h), so for any 8-aligned
 * address A the integer A >> 1 is the word A | 1: an immediate that, as a
 * raw word, lies inside new space.  The 63-bit range reaches every
 * user-space address, so the whole new-space range is covered natively
 * (under valgrind new space sits near 0x5e00000: integers around 5e7).
 * Only the tag 1 can be had this way: the runtime's other immediates are
 * fixed constants.
 *
 * Until 84a95b2 the scavenger evacuated such an integer as an object when
 * its word lay in from-space (it crashed, or moved garbage).  Here the range
 * is taken from the addresses of young objects where they are allocated
 * and in both survivor spaces, stepped over in strides (thousands of distinct values), plus
 * the exact current addresses of live objects |1; the values go into Arrays
 * (a large backing store and many small young ones), and into Maps as keys
 * and as values; minor and full GCs run, the containers are promoted and
 * written again through the barrier, and every integer reads back
 * unchanged. */
#include <stdlib.h>
#include <string.h>

#include "rt_test.h"

#define SMALL 8 /* values per small array */

typedef struct world {
  rt_runtime_t *rt;
  gc_heap_t *h;
  size_t n;             /* stepped values */
  uintptr_t *words;     /* the map's keys, in insertion order */
  uintptr_t *big_exp;   /* expected elements of big */
  uintptr_t *small_exp; /* expected elements of the small arrays, in order */
  uintptr_t *map_exp;   /* expected value of key words[i] */
  size_t m;             /* exact addresses */
  uintptr_t *exact;
  long lenders;
  rt_value_t *keepers;   /* Array of the strings that lent their addresses */
  rt_value_t *big;       /* Array of n values */
  rt_value_t *smalls;    /* Array of n / SMALL Arrays of SMALL values */
  rt_value_t *map;       /* Map words[i] -> map_exp[i] */
  rt_value_t *exact_arr; /* Array of the exact values */
  rt_value_t *exact_map; /* Map exact[i] -> exact[m - 1 - i] */
} world_t;

/* The small integer whose word is W (odd). */
static rt_value_t int_with_word(uintptr_t w) {
  assert_true(w & 1);
  int64_t i = (int64_t)(w >> 1);
  assert_true(rt_int_fits(i));
  rt_value_t v = rt_int(i);
  assert_int_equal(v, w);
  assert_true(rt_is_int(v) && !rt_is_heap(v));
  return v;
}

/* Test premises only: the collector's private fast-path state says where
 * new space is. */
static bool is_young(gc_heap_t *h, uintptr_t a) {
  return gc__is_young(gc__fast(h), (const void *)a);
}
/* Which third of new space's reservation A lies in: 0 and 2 are the
 * survivor spaces, 1 is eden (nursery.c: [survivor 0 | eden | survivor 1],
 * each semi_reserve bytes). */
static int part_of(gc_heap_t *h, uintptr_t a) {
  const gc__fast_t *f = gc__fast(h);
  return (int)((a - f->young_lo) / (f->young_size / 3));
}

/* Counts the young addresses of keepers' strings toward SEEN, LO, HI. */
static void see(world_t *w, bool seen[3], uintptr_t a, uintptr_t *lo,
                uintptr_t *hi) {
  if (!is_young(w->h, a))
    return;
  seen[part_of(w->h, a)] = true;
  if (a < *lo)
    *lo = a;
  if (a + rt_string_length(a) + 1 > *hi)
    *hi = a + rt_string_length(a) + 1;
}

static void lender_name(char *buf, size_t cap, long i) {
  snprintf(buf, cap, "lender %ld", i);
}

/* GC point.  Appends a fresh string to keepers; returns its address. */
static uintptr_t new_lender(world_t *w, rt_value_t *tmp) {
  char buf[32];
  lender_name(buf, sizeof buf, w->lenders);
  *tmp = rt_string_cstr(w->rt, buf);
  uintptr_t a = *tmp;
  assert_true(is_young(w->h, a));
  /* keepers has room: the push does not allocate. */
  assert_true(rt_array_length(*w->keepers) < rt_array_capacity(*w->keepers));
  assert_int_equal(rt_array_push(w->rt, w->keepers, tmp), 0);
  w->lenders++;
  return a;
}

/* GC point.  Allocates strings and keeps them across minor GCs, so that
 * they are seen where they are allocated and where they survive (eden, when
 * it is used, and both survivor spaces); returns the lowest and highest
 * young addresses seen, which then span all of new space. */
static void lend(world_t *w, long per_round, uintptr_t *lo, uintptr_t *hi) {
  gc_heap_t *h = w->h;
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *tmp = rt_handle(h, RT_UNDEFINED);
  *lo = UINTPTR_MAX;
  *hi = 0;
  bool seen[3] = {false, false, false};
  for (int round = 0; round < 2; round++) {
    for (long i = 0; i < per_round; i++) {
      see(w, seen, new_lender(w, tmp), lo, hi);
      /* Garbage beside them, so that few survive: a scavenge that finds
       * nearly everything alive promotes the next survivors at once (fast
       * promotion), and they would never reach the other survivor space. */
      for (int k = 0; k < 3; k++)
        *tmp = rt_string_cstr(w->rt, "garbage");
    }
    /* Where the survivors are before and after (allocation may have
     * scavenged already): the minor GC moves them to the other space. */
    for (int pass = 0; pass < 2; pass++) {
      if (pass == 1)
        gc_collect(h, GC_COLLECT_MINOR);
      for (size_t i = 0; i < rt_array_length(*w->keepers); i++)
        see(w, seen, rt_array_get(*w->keepers, i), lo, hi);
    }
  }
  assert_true(seen[0] && seen[2]);
  gc_scope_close(h, &s);
}

/* GC point. */
static void build(world_t *w) {
  rt_runtime_t *rt = w->rt;
  gc_heap_t *h = w->h;
  long per_round = test_scale(300, 60), fresh = test_scale(200, 40);
  *w->keepers = rt_array_new(rt, (size_t)(2 * per_round + fresh));
  uintptr_t lo, hi;
  lend(w, per_round, &lo, &hi);
  w->n = (size_t)test_scale(6000, 1200);
  uintptr_t stride = ((hi - lo) / w->n) & ~(uintptr_t)7;
  if (stride < 8)
    stride = 8;
  w->words = calloc(w->n, sizeof *w->words);
  w->big_exp = calloc(w->n, sizeof *w->big_exp);
  w->small_exp = calloc(w->n, sizeof *w->small_exp);
  w->map_exp = calloc(w->n, sizeof *w->map_exp);
  assert_non_null(w->words);
  assert_non_null(w->big_exp);
  assert_non_null(w->small_exp);
  assert_non_null(w->map_exp);
  /* Odd offsets too: the word of a small integer is any odd number; every
   * fourth one is an object-aligned address |1. */
  for (size_t i = 0; i < w->n; i++) {
    uintptr_t a = (lo & ~(uintptr_t)7) + i * stride;
    w->words[i] = (a | 1) + (i % 4 == 0 ? 0 : 2 * (i % 4));
    assert_true(is_young(h, w->words[i] & ~(uintptr_t)7));
  }
  for (size_t i = 0; i < w->n; i++) {
    w->big_exp[i] = w->words[i];
    w->small_exp[i] = w->words[(i + 1) % w->n];
    w->map_exp[i] = w->words[w->n - 1 - i];
  }

  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *v = rt_handle(h, RT_UNDEFINED);
  rt_value_t *k = rt_handle(h, RT_UNDEFINED);
  rt_value_t *inner = rt_handle(h, RT_UNDEFINED);
  for (size_t i = 0; i < w->n; i++) {
    *v = int_with_word(w->big_exp[i]);
    assert_int_equal(rt_array_push(rt, w->big, v), 0);
  }
  for (size_t i = 0; i < w->n; i++) {
    if (i % SMALL == 0) {
      *inner = rt_array_new(rt, SMALL);
      assert_int_equal(rt_array_push(rt, w->smalls, inner), 0);
    }
    *v = int_with_word(w->small_exp[i]);
    assert_int_equal(rt_array_push(rt, inner, v), 0);
  }
  for (size_t i = 0; i < w->n; i++) {
    *k = int_with_word(w->words[i]);
    *v = int_with_word(w->map_exp[i]);
    assert_int_equal(rt_map_set(rt, w->map, k, v), 0);
  }

  /* The exact addresses of live objects |1: fresh strings (young) and the
   * containers, taken with no GC point between them and the next
   * collection: the containers have room, so these pushes and sets do not
   * allocate. */
  w->m = (size_t)fresh + 4;
  w->exact = calloc(w->m, sizeof *w->exact);
  assert_non_null(w->exact);
  *w->exact_arr = rt_array_new(rt, w->m);
  *w->exact_map = rt_map_new(rt, w->m);
  for (long i = 0; i < fresh; i++)
    new_lender(w, v);
  for (size_t i = 0; i < (size_t)fresh; i++)
    w->exact[i] = rt_array_get(*w->keepers, (size_t)w->lenders - fresh + i) | 1;
  w->exact[fresh] = *w->big | 1;
  w->exact[fresh + 1] = *w->smalls | 1;
  w->exact[fresh + 2] = rt_array_get(*w->smalls, 0) | 1;
  w->exact[fresh + 3] = *w->map | 1;
  uint64_t epoch = gc_heap_epoch(h);
  for (size_t i = 0; i < w->m; i++) {
    *v = int_with_word(w->exact[i]);
    assert_int_equal(rt_array_push(rt, w->exact_arr, v), 0);
  }
  for (size_t i = 0; i < w->m; i++) {
    *k = int_with_word(w->exact[i]);
    *v = int_with_word(w->exact[w->m - 1 - i]);
    assert_int_equal(rt_map_set(rt, w->exact_map, k, v), 0);
  }
  assert_int_equal(gc_heap_epoch(h), epoch); /* no GC since they were read */
  size_t young_exact = 0;
  for (size_t i = 0; i < w->m; i++)
    young_exact += is_young(h, w->exact[i] & ~(uintptr_t)7);
  /* Without --stress-gc most fresh strings are still young (in from-space
   * at the next scavenge); with it, all but the last are promoted. */
  assert_true(young_exact >= (test_under_stress() ? 1 : (size_t)fresh / 2));
  gc_scope_close(h, &s);
}

static void check(world_t *w, const char *when) {
  gc_heap_t *h = w->h;
  rt_value_t big = *w->big, smalls = *w->smalls, map = *w->map;
  assert_true(rt_is_array(big));
  assert_int_equal(rt_array_length(big), w->n);
  for (size_t i = 0; i < w->n; i++)
    if (rt_array_get(big, i) != w->big_exp[i])
      fail_msg("%s: big[%zu] is %#lx, not %#lx", when, i,
               (unsigned long)rt_array_get(big, i),
               (unsigned long)w->big_exp[i]);
  assert_true(rt_is_array(smalls));
  assert_int_equal(rt_array_length(smalls), (w->n + SMALL - 1) / SMALL);
  for (size_t i = 0; i < w->n; i++) {
    rt_value_t inner = rt_array_get(smalls, i / SMALL);
    assert_true(rt_is_array(inner));
    if (rt_array_get(inner, i % SMALL) != w->small_exp[i])
      fail_msg("%s: smalls[%zu][%zu] is %#lx, not %#lx", when, i / SMALL,
               i % SMALL, (unsigned long)rt_array_get(inner, i % SMALL),
               (unsigned long)w->small_exp[i]);
  }
  assert_true(rt_is_map(map));
  assert_int_equal(rt_map_size(map), w->n);
  for (size_t i = 0; i < w->n; i++)
    if (rt_map_get(map, w->words[i]) != w->map_exp[i])
      fail_msg("%s: map[%#lx] is %#lx, not %#lx", when,
               (unsigned long)w->words[i],
               (unsigned long)rt_map_get(map, w->words[i]),
               (unsigned long)w->map_exp[i]);
  /* The keys themselves, in insertion order. */
  size_t cur = 0, i = 0;
  rt_value_t key, val;
  while (rt_map_next(map, &cur, &key, &val)) {
    assert_true(i < w->n);
    assert_int_equal(key, w->words[i]);
    assert_int_equal(val, w->map_exp[i]);
    i++;
  }
  assert_int_equal(i, w->n);

  rt_value_t ea = *w->exact_arr, em = *w->exact_map;
  assert_int_equal(rt_array_length(ea), w->m);
  assert_int_equal(rt_map_size(em), w->m);
  for (size_t j = 0; j < w->m; j++) {
    assert_int_equal(rt_array_get(ea, j), w->exact[j]);
    assert_int_equal(rt_map_get(em, w->exact[j]), w->exact[w->m - 1 - j]);
  }
  cur = 0;
  i = 0;
  while (rt_map_next(em, &cur, &key, NULL))
    assert_int_equal(key, w->exact[i++]);
  assert_int_equal(i, w->m);

  /* The objects that lent their addresses. */
  char buf[32];
  assert_int_equal(rt_array_length(*w->keepers), (size_t)w->lenders);
  for (long j = 0; j < w->lenders; j++) {
    rt_value_t str = rt_array_get(*w->keepers, (size_t)j);
    assert_true(rt_is_string(str));
    lender_name(buf, sizeof buf, j);
    assert_string_equal(rt_string_data(str), buf);
  }
  assert_int_equal(gc_verify(h), 0);
}

/* Not a GC point: new values through the barrier into (by now) old
 * containers: the stores of young-range integers remember them. */
static void rewrite(world_t *w) {
  rt_runtime_t *rt = w->rt;
  for (size_t i = 0; i < w->n; i++) {
    w->big_exp[i] = w->words[(i + 7) % w->n];
    assert_int_equal(rt_array_set(rt, *w->big, i, w->big_exp[i]), 0);
    w->small_exp[i] = w->words[(i + 3) % w->n];
    rt_value_t inner = rt_array_get(*w->smalls, i / SMALL);
    assert_int_equal(rt_array_set(rt, inner, i % SMALL, w->small_exp[i]), 0);
  }
}

/* GC point.  Existing keys: rt_map_set only overwrites (the barrier). */
static void rewrite_map(world_t *w) {
  gc_heap_t *h = w->h;
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *k = rt_handle(h, RT_UNDEFINED);
  rt_value_t *v = rt_handle(h, RT_UNDEFINED);
  for (size_t i = 0; i < w->n; i++) {
    w->map_exp[i] = w->words[(i * 5 + 1) % w->n];
    *k = w->words[i];
    *v = w->map_exp[i];
    assert_int_equal(rt_map_set(w->rt, w->map, k, v), 0);
  }
  gc_scope_close(h, &s);
}

static void test_young_range_integers_survive(void **state) {
  (void)state;
  world_t w;
  memset(&w, 0, sizeof w);
  w.rt = rt_test_runtime();
  w.h = rt_heap(w.rt);
  gc_heap_t *h = w.h;
  gc_scope_t s;
  gc_scope_open(h, &s);
  w.keepers = rt_handle(h, RT_UNDEFINED);
  w.big = rt_handle(h, rt_array_new(w.rt, 0));
  w.smalls = rt_handle(h, rt_array_new(w.rt, 0));
  w.map = rt_handle(h, rt_map_new(w.rt, 0));
  w.exact_arr = rt_handle(h, RT_UNDEFINED);
  w.exact_map = rt_handle(h, RT_UNDEFINED);
  build(&w);
  check(&w, "built");
  /* The exact addresses are in from-space at the first scavenge, in
   * to-space at the second. */
  gc_collect(h, GC_COLLECT_MINOR);
  check(&w, "minor");
  gc_collect(h, GC_COLLECT_MINOR);
  check(&w, "second minor");
  gc_collect(h, GC_COLLECT_FULL);
  check(&w, "full");
  /* Everything is old by now; store again: old containers holding
   * young-range integers, in the remembered set. */
  for (int i = 0; i < 3; i++)
    gc_collect(h, GC_COLLECT_MINOR);
  rewrite(&w);
  check(&w, "rewritten");
  gc_collect(h, GC_COLLECT_MINOR);
  check(&w, "rewritten, minor");
  rewrite_map(&w);
  gc_collect(h, GC_COLLECT_MINOR);
  check(&w, "map rewritten, minor");
  gc_collect(h, GC_COLLECT_FULL);
  check(&w, "map rewritten, full");
  /* Garbage while they are held: GCs the allocator asks for. */
  long garbage = test_scale(20000, 500);
  for (long i = 0; i < garbage; i++)
    rt_array_new(w.rt, 4);
  check(&w, "after garbage");
  gc_scope_close(h, &s);
  rt_runtime_destroy(w.rt);
  free(w.words);
  free(w.big_exp);
  free(w.small_exp);
  free(w.map_exp);
  free(w.exact);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_young_range_integers_survive),
  };
  return cmocka_run_group_tests_name("runtime.immediates", tests, NULL, NULL);
}
