/* test_memory.c -- memory://: get/set/del/touch answered from the loop
 * (never inside the call), values copied (no alias), TTL expiry lazy and
 * by the sweep, LRU eviction by entries and by bytes, counters, bad URLs,
 * and millions of distinct keys staying within the bound. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "rt_test.h"

#include <tenure/cache.h>
#include <tenure/rt_loop.h>

typedef struct env_s {
  rt_runtime_t *rt;
  gc_heap_t *h;
  rt_loop_t *loop;
  cache_store_t *st;
} env_t;

static void env_open(env_t *e, const char *url) {
  e->rt = rt_test_runtime();
  e->h = rt_heap(e->rt);
  assert_int_equal(rt_loop_create(e->rt, &e->loop), 0);
  char err[256];
  int r = cache_open(e->loop, url, &e->st, err, sizeof err);
  if (r != 0)
    fail_msg("%s: %s", url, err);
}

static void env_close(env_t *e) {
  cache_close(e->st);
  rt_loop_run(e->loop); /* the store's timer closes */
  assert_int_equal(rt_loop_destroy(e->loop), 0);
  rt_runtime_destroy(e->rt);
}

/* What the callbacks saw. */
typedef struct seen_s {
  int calls, err;
  bool hit;
  char json[256];
} seen_t;

static void on_get(cache_store_t *st, int err, rt_value_t *v, void *data) {
  seen_t *s = data;
  s->calls++;
  s->err = err;
  s->hit = v != NULL;
  s->json[0] = '\0';
  if (v != NULL) {
    rt_strbuf_t b;
    rt_strbuf_init(&b);
    rt_json_stringify(rt_loop_runtime(st->loop), *v, NULL, &b);
    snprintf(s->json, sizeof s->json, "%.*s", (int)b.len, b.data);
    rt_strbuf_free(&b);
  }
}

static void on_done(cache_store_t *st, int err, void *data) {
  seen_t *s = data;
  (void)st;
  s->calls++;
  s->err = err;
}

static rt_value_t *json(env_t *e, const char *text) {
  rt_value_t *v = rt_handle(e->h, RT_NONE);
  assert_int_equal(rt_json_parse(e->rt, text, strlen(text), NULL, v, NULL),
                   0);
  return v;
}

static void get(env_t *e, const char *key, seen_t *s) {
  memset(s, 0, sizeof *s);
  cache_get(e->st, key, strlen(key), on_get, s);
  assert_int_equal(s->calls, 0); /* never from inside the call */
  rt_loop_run(e->loop);
  assert_int_equal(s->calls, 1);
}

static void set(env_t *e, const char *key, const char *text, uint64_t ttl,
                int want) {
  seen_t s = {0};
  gc_scope_t sc;
  gc_scope_open(e->h, &sc);
  cache_set(e->st, key, strlen(key), json(e, text), ttl, on_done, &s);
  gc_scope_close(e->h, &sc);
  assert_int_equal(s.calls, 0);
  rt_loop_run(e->loop);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.err, want);
}

static void test_memory_basics(void **state) {
  (void)state;
  env_t e;
  env_open(&e, "memory://");
  seen_t s;
  get(&e, "a", &s);
  assert_false(s.hit);
  assert_int_equal(s.err, 0);
  set(&e, "a", "{\"user\":\"ada\",\"n\":[1,2.5,null]}", 0, 0);
  get(&e, "a", &s);
  assert_true(s.hit);
  assert_string_equal(s.json, "{\"user\":\"ada\",\"n\":[1,2.5,null]}");
  /* A copy: changing what was stored does not change the store. */
  gc_scope_t sc;
  gc_scope_open(e.h, &sc);
  rt_value_t *m = json(&e, "{\"k\":1}");
  seen_t d = {0};
  cache_set(e.st, "b", 1, m, 0, on_done, &d);
  rt_value_t *k = rt_handle(e.h, rt_string_cstr(e.rt, "k"));
  rt_value_t *two = rt_handle(e.h, rt_int(2));
  rt_map_set(e.rt, m, k, two);
  gc_scope_close(e.h, &sc);
  rt_loop_run(e.loop);
  get(&e, "b", &s);
  assert_string_equal(s.json, "{\"k\":1}");
  /* Replace, delete, touch. */
  set(&e, "a", "[true]", 0, 0);
  get(&e, "a", &s);
  assert_string_equal(s.json, "[true]");
  memset(&d, 0, sizeof d);
  cache_del(e.st, "a", 1, on_done, &d);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, 0);
  get(&e, "a", &s);
  assert_false(s.hit);
  memset(&d, 0, sizeof d);
  cache_touch(e.st, "a", 1, 1000, on_done, &d);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, -ENOENT);
  /* Values with no JSON form are refused. */
  gc_scope_open(e.h, &sc);
  memset(&d, 0, sizeof d);
  rt_value_t *u = rt_handle(e.h, RT_UNDEFINED);
  cache_set(e.st, "u", 1, u, 0, on_done, &d);
  gc_scope_close(e.h, &sc);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, -EINVAL);
  assert_true(strlen(cache_store_error(e.st)) > 0);
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_int_equal(st.entries, 1);
  assert_int_equal(st.hits, 3);
  assert_int_equal(st.misses, 2);
  assert_int_equal(st.deletes, 1);
  assert_true(st.errors >= 1);
  env_close(&e);
}

static void noop(rt_loop_t *loop, void *data, rt_value_t *args,
                 size_t nargs) {
  (void)loop;
  (void)data;
  (void)args;
  (void)nargs;
}

static void test_memory_ttl(void **state) {
  (void)state;
  env_t e;
  env_open(&e, "memory://");
  set(&e, "short", "1", 30, 0);
  set(&e, "long", "2", 60000, 0);
  set(&e, "swept", "3", 30, 0);
  set(&e, "touched", "4", 30, 0);
  seen_t d = {0};
  cache_touch(e.st, "touched", 7, 60000, on_done, &d);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, 0);
  seen_t s;
  get(&e, "short", &s);
  assert_true(s.hit);
  usleep(60000);
  uv_update_time(rt_loop_uv(e.loop));
  get(&e, "short", &s); /* lazily expired */
  assert_false(s.hit);
  get(&e, "long", &s);
  assert_true(s.hit);
  get(&e, "touched", &s);
  assert_true(s.hit);
  /* The sweep drops "swept" though nobody reads it. */
  usleep(1100000);
  /* Run the loop until the sweep (unref'd) has run once: keep it alive
   * with a timer. */
  assert_int_equal(rt_set_timeout(e.loop, 100, noop, NULL, NULL, 0, NULL), 0);
  rt_loop_run(e.loop);
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_true(st.expirations >= 2); /* short (lazily), swept (the sweep) */
  assert_int_equal(st.entries, 2);
  env_close(&e);
}

static void test_memory_bounds(void **state) {
  (void)state;
  env_t e;
  env_open(&e, "memory://?max-entries=3&max-bytes=1m");
  set(&e, "a", "1", 0, 0);
  set(&e, "b", "2", 0, 0);
  set(&e, "c", "3", 0, 0);
  seen_t s;
  get(&e, "a", &s); /* a is now the most recent */
  set(&e, "d", "4", 0, 0); /* evicts b, the least recently used */
  get(&e, "b", &s);
  assert_false(s.hit);
  get(&e, "a", &s);
  assert_true(s.hit);
  get(&e, "c", &s);
  assert_true(s.hit);
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_int_equal(st.entries, 3);
  assert_int_equal(st.evictions, 1);
  env_close(&e);
  /* By bytes: each entry counts its key, its text and 64 bytes. */
  env_open(&e, "memory://?max-bytes=1000");
  char text[400];
  memset(text, 'x', sizeof text);
  text[0] = '"';
  text[298] = '"';
  text[299] = '\0';
  set(&e, "k1", text, 0, 0);
  set(&e, "k2", text, 0, 0);
  set(&e, "k3", text, 0, 0); /* 3 * 365 > 1000: k1 goes */
  get(&e, "k1", &s);
  assert_false(s.hit);
  cache_stats(e.st, &st);
  assert_true(st.bytes <= 1000);
  assert_int_equal(st.entries, 2);
  /* One entry larger than the bound is refused, not stored. */
  char big[1200];
  memset(big, 'y', sizeof big);
  big[0] = '"';
  big[sizeof big - 2] = '"';
  big[sizeof big - 1] = '\0';
  set(&e, "big", big, 0, -E2BIG);
  env_close(&e);
}

static void test_memory_bad_urls(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  rt_loop_t *loop;
  assert_int_equal(rt_loop_create(rt, &loop), 0);
  static const char *const bad[] = {
      "memory://host",          "memory://?max-entries=x",
      "memory://?max-entries",  "memory://?max-bytes=12q",
      "memory://?colour=blue",  "memory://?max-entries=0",
      "nosuch://x",             "plain-text",
      "memory://?max-bytes=99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cache_store_t *st = NULL;
    char err[256] = "";
    assert_int_equal(cache_open(loop, bad[i], &st, err, sizeof err), -EINVAL);
    assert_null(st);
    assert_true(strlen(err) > 0);
  }
  assert_int_equal(rt_loop_destroy(loop), 0);
  rt_runtime_destroy(rt);
}

/* Millions of distinct keys: the store stays at its bound and the heap does
 * not grow with it (the texts are off the heap, counted as external). */
static void test_memory_many_keys(void **state) {
  (void)state;
  env_t e;
  env_open(&e, "memory://?max-entries=10000&max-bytes=4m");
  long n = test_scale(10000000, 50000);
  size_t peak_heap = 0;
  gc_scope_t sc;
  gc_scope_open(e.h, &sc);
  rt_value_t *v = json(&e, "{\"user\":\"someone\",\"visits\":12}");
  for (long i = 0; i < n; i++) {
    char key[32];
    int kl = snprintf(key, sizeof key, "sess:%ld", i);
    cache_set(e.st, key, (size_t)kl, v, 0, NULL, NULL);
    if (i % 1000 == 999) {
      rt_loop_run(e.loop);
      gc_heap_stats_t hs = test_stats(e.h);
      if (hs.used_heap_size > peak_heap)
        peak_heap = hs.used_heap_size;
    }
  }
  gc_scope_close(e.h, &sc);
  rt_loop_run(e.loop);
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_true(st.entries <= 10000);
  assert_true(st.bytes <= 4u << 20);
  assert_int_equal(st.evictions, (uint64_t)n - st.entries);
  gc_heap_stats_t hs = test_stats(e.h);
  assert_true(hs.external_memory <= (4u << 20) + 4096);
  assert_true(peak_heap < 8u << 20);
  /* The newest keys are there, the oldest gone. */
  char key[32];
  snprintf(key, sizeof key, "sess:%ld", n - 1);
  seen_t s;
  get(&e, key, &s);
  assert_true(s.hit);
  get(&e, "sess:0", &s);
  assert_false(s.hit);
  env_close(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memory_basics),
      cmocka_unit_test(test_memory_ttl),
      cmocka_unit_test(test_memory_bounds),
      cmocka_unit_test(test_memory_bad_urls),
      cmocka_unit_test(test_memory_many_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
