/* test_store_contract.c -- one suite, every backend: what cache.h promises
 * of any store, run against each of store_test.h's fixtures (memory://,
 * and each remote store against real servers the test starts; a backend
 * whose server is not installed is skipped).
 *
 * The contract: every call is answered exactly once, from the loop, never
 * inside the call; a value read back is a copy; a miss is ERR 0 and no
 * value; TTLs expire and touch moves them (touch of an absent key is
 * -ENOENT); overwrite and delete; values of any JSON shape and up to
 * 100 KB come back equal; a thousand pipelined operations all answered in
 * full; the counters and the latency percentiles follow; close answers
 * what is in flight; cache_get_or_compute computes once for a thousand
 * simultaneous misses and caches no error.  Remote stores also: the
 * server stopped (clear errors, no hang past the timeout), back
 * (recovery), paused (-ETIMEDOUT). */
#include <stdint.h>
#include <time.h>

#include "store_test.h"

/* A fresh loop and a store on the fixture's URL. */
static void open_env(env_t *e) {
  env_init(e);
  char err[256];
  int r = cache_open(e->loop, fx->url, &e->st, err, sizeof err);
  if (r != 0)
    fail_msg("%s: %s", fx->url, err);
}

static void close_env(env_t *e) {
  cache_close(e->st);
  env_done(e);
}

/* Each key of a test is unique to the run (remote stores keep keys
 * between tests and between runs). */
static void key_of(char *out, size_t cap, const char *what, int i) {
  static unsigned run;
  if (run == 0)
    run = (unsigned)getpid() ^ (unsigned)time(NULL);
  snprintf(out, cap, "contract:%u:%s:%d", run, what, i);
}

static int del_key(env_t *e, const char *key) {
  seen_t d = {0};
  cache_del(e->st, key, strlen(key), on_done, &d);
  assert_int_equal(d.calls, 0);
  rt_loop_run(e->loop);
  assert_int_equal(d.calls, 1);
  return d.err;
}

/* --- The interface -------------------------------------------------------- */

static void test_contract_basics(void **state) {
  (void)state;
  env_t e;
  open_env(&e);
  char k[128];
  key_of(k, sizeof k, "basics", 0);
  seen_t s;
  get(&e, k, &s);
  assert_int_equal(s.err, 0);
  assert_false(s.hit);
  set(&e, k, "{\"a\":1,\"b\":[true,null,\"x\"]}", 0, 0);
  get(&e, k, &s);
  assert_int_equal(s.err, 0);
  assert_true(s.hit);
  assert_string_equal(s.json, "{\"a\":1,\"b\":[true,null,\"x\"]}");
  /* Overwrite. */
  set(&e, k, "\"second\"", 0, 0);
  get(&e, k, &s);
  assert_string_equal(s.json, "\"second\"");
  /* A value changed after set is not changed in the store. */
  gc_scope_t sc;
  gc_scope_open(e.h, &sc);
  rt_value_t *v = json(&e, "{\"n\":1}");
  seen_t d = {0};
  cache_set(e.st, k, strlen(k), v, 0, on_done, &d);
  rt_value_t *kk = rt_handle(e.h, rt_string_cstr(e.rt, "n"));
  rt_value_t *two = rt_handle(e.h, rt_number(e.rt, 2));
  rt_map_set(e.rt, v, kk, two);
  gc_scope_close(e.h, &sc);
  rt_loop_run(e.loop);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.err, 0);
  get(&e, k, &s);
  assert_string_equal(s.json, "{\"n\":1}");
  /* Delete, and delete again (absent: no error). */
  assert_int_equal(del_key(&e, k), 0);
  get(&e, k, &s);
  assert_false(s.hit);
  assert_int_equal(del_key(&e, k), 0);
  /* Values of every shape. */
  static const char *const shapes[] = {
      "0",
      "-1.5",
      "1e+300",
      "true",
      "false",
      "null",
      "\"\"",
      "\"caf\\u00e9 \\u2603 \\ud83d\\ude00 tab\\t nl\\n quote\\\" bs\\\\\"",
      "[]",
      "{}",
      "[[[[1]]],{\"\":{\"x\":[]}}]"};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    key_of(k, sizeof k, "shape", (int)i);
    set(&e, k, shapes[i], 0, 0);
    get(&e, k, &s);
    assert_true(s.hit);
    /* Compare as this runtime writes them. */
    gc_scope_open(e.h, &sc);
    rt_strbuf_t b;
    rt_strbuf_init(&b);
    rt_json_stringify(e.rt, *json(&e, shapes[i]), NULL, &b);
    assert_int_equal(strlen(s.json), b.len);
    assert_memory_equal(s.json, b.data, b.len);
    rt_strbuf_free(&b);
    gc_scope_close(e.h, &sc);
  }
  close_env(&e);
}

/* A get whose value is compared whole with WANT. */
typedef struct big_s {
  int calls, err;
  bool same;
  const char *want;
} big_t;

static void on_big(cache_store_t *st, int err, rt_value_t *v, void *data) {
  big_t *b = data;
  b->calls++;
  b->err = err;
  if (v != NULL) {
    rt_strbuf_t sb;
    rt_strbuf_init(&sb);
    rt_json_stringify(rt_loop_runtime(st->loop), *v, NULL, &sb);
    b->same =
        sb.len == strlen(b->want) && memcmp(sb.data, b->want, sb.len) == 0;
    rt_strbuf_free(&sb);
  }
}

static void test_contract_large_value(void **state) {
  (void)state;
  env_t e;
  open_env(&e);
  enum { N = 100 * 1024 };
  char *text = malloc(N + 3);
  text[0] = '"';
  for (int i = 0; i < N; i++)
    text[i + 1] = (char)('a' + i % 26);
  text[N + 1] = '"';
  text[N + 2] = '\0';
  char k[128];
  key_of(k, sizeof k, "large", 0);
  set(&e, k, text, 0, 0);
  big_t b = {.want = text};
  cache_get(e.st, k, strlen(k), on_big, &b);
  rt_loop_run(e.loop);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.err, 0);
  assert_true(b.same);
  free(text);
  close_env(&e);
}

static void test_contract_ttl_and_touch(void **state) {
  (void)state;
  env_t e;
  open_env(&e);
  /* Remote stores count TTLs on their own clocks (memcached in whole
   * seconds): the test's times leave room for that. */
  const int unit = scale_ms(1200);
  char a[128], b[128], c[128];
  key_of(a, sizeof a, "ttl", 0);
  key_of(b, sizeof b, "ttl", 1);
  key_of(c, sizeof c, "ttl", 2);
  set(&e, a, "1", (uint64_t)unit, 0);
  set(&e, b, "2", (uint64_t)unit, 0);
  set(&e, c, "3", 0, 0);
  seen_t s;
  get(&e, a, &s);
  assert_true(s.hit);
  /* Touch b far ahead, c (no TTL yet) to a short one. */
  seen_t d = {0};
  cache_touch(e.st, b, strlen(b), (uint64_t)unit * 6, on_done, &d);
  assert_int_equal(d.calls, 0);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, 0);
  memset(&d, 0, sizeof d);
  cache_touch(e.st, c, strlen(c), (uint64_t)unit, on_done, &d);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, 0);
  pump(&e, (uint64_t)unit * 2 + 500);
  get(&e, a, &s);
  assert_int_equal(s.err, 0);
  assert_false(s.hit); /* expired */
  get(&e, c, &s);
  assert_false(s.hit); /* expired after its touch */
  get(&e, b, &s);
  assert_true(s.hit); /* its touch moved it */
  assert_string_equal(s.json, "2");
  /* Touch of an absent key. */
  memset(&d, 0, sizeof d);
  cache_touch(e.st, a, strlen(a), (uint64_t)unit, on_done, &d);
  rt_loop_run(e.loop);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.err, -ENOENT);
  close_env(&e);
}

/* A thousand operations made at once, before any answer: each answered
 * once, with its own value. */
enum { MANY = 1000 };
typedef struct many_s {
  int calls[MANY];
  int bad;
} many_t;

static many_t many;

static void on_many_set(cache_store_t *st, int err, void *data) {
  (void)st;
  int i = (int)(intptr_t)data;
  many.calls[i]++;
  if (err != 0)
    many.bad++;
}

static void on_many_get(cache_store_t *st, int err, rt_value_t *v, void *data) {
  (void)st;
  int i = (int)(intptr_t)data;
  many.calls[i]++;
  if (err != 0 || v == NULL || !rt_is_number(*v) ||
      rt_number_value(*v) != (double)i)
    many.bad++;
}

static void test_contract_many_at_once(void **state) {
  (void)state;
  env_t e;
  open_env(&e);
  cache_stats_t before;
  cache_stats(e.st, &before);
  memset(&many, 0, sizeof many);
  char k[128];
  for (int i = 0; i < MANY; i++) {
    gc_scope_t sc;
    gc_scope_open(e.h, &sc);
    rt_value_t *v = rt_handle(e.h, rt_number(e.rt, i));
    key_of(k, sizeof k, "many", i);
    cache_set(e.st, k, strlen(k), v, 0, on_many_set, (void *)(intptr_t)i);
    gc_scope_close(e.h, &sc);
  }
  rt_loop_run(e.loop);
  for (int i = 0; i < MANY; i++)
    assert_int_equal(many.calls[i], 1);
  assert_int_equal(many.bad, 0);
  memset(&many, 0, sizeof many);
  for (int i = 0; i < MANY; i++) {
    key_of(k, sizeof k, "many", i);
    cache_get(e.st, k, strlen(k), on_many_get, (void *)(intptr_t)i);
  }
  rt_loop_run(e.loop);
  for (int i = 0; i < MANY; i++)
    assert_int_equal(many.calls[i], 1);
  assert_int_equal(many.bad, 0);
  /* The counters followed, and so did the latency histogram. */
  cache_stats_t after;
  cache_stats(e.st, &after);
  assert_true(after.sets >= before.sets + MANY);
  assert_true(after.hits >= before.hits + MANY);
  /* One operation in CACHE_LATENCY_SAMPLE_EVERY is timed. */
  assert_true(after.latency_samples >=
              before.latency_samples + 2 * MANY / 8 - 1);
  assert_true(after.latency_p99_us >= after.latency_p50_us);
  assert_true(after.latency_p99_us < 60u * 1000 * 1000);
  close_env(&e);
}

/* Close with operations in flight: each answered exactly once (an answer
 * that was already on its way, or -ECANCELED). */
static void test_contract_close_in_flight(void **state) {
  (void)state;
  env_t e;
  open_env(&e);
  memset(&many, 0, sizeof many);
  char k[128];
  for (int i = 0; i < 100; i++) {
    key_of(k, sizeof k, "closing", i);
    cache_get(e.st, k, strlen(k), on_many_get, (void *)(intptr_t)i);
  }
  cache_close(e.st);
  env_done(&e);
  for (int i = 0; i < 100; i++)
    assert_int_equal(many.calls[i], 1);
}

/* --- cache_get_or_compute --------------------------------------------------
 */

typedef struct flight_env_s {
  env_t *e;
  int computes, answers, hits, errors, wrong;
  int fail_with; /* the compute's error, or 0 */
} flight_env_t;

static flight_env_t fe;

static void compute_later(rt_loop_t *loop, void *data, rt_value_t *args,
                          size_t nargs) {
  (void)loop;
  (void)args;
  (void)nargs;
  cache_flight_t *fl = data;
  if (fe.fail_with != 0) {
    cache_compute_done(fl, fe.fail_with, NULL);
    return;
  }
  gc_scope_t sc;
  gc_scope_open(fe.e->h, &sc);
  rt_value_t *v = rt_handle(fe.e->h, rt_number(fe.e->rt, 42));
  cache_compute_done(fl, 0, v);
  gc_scope_close(fe.e->h, &sc);
}

static void compute(cache_flight_t *fl, const char *key, size_t klen,
                    void *data) {
  (void)key;
  (void)klen;
  (void)data;
  fe.computes++;
  assert_int_equal(
      rt_set_timeout(fe.e->loop, 30, compute_later, fl, NULL, 0, NULL), 0);
}

/* A compute that answers at once, with the error fe.fail_with. */
static void compute_now(cache_flight_t *fl, const char *key, size_t klen,
                        void *data) {
  (void)key;
  (void)klen;
  (void)data;
  fe.computes++;
  cache_compute_done(fl, fe.fail_with, NULL);
}

static void on_value(cache_store_t *st, int err, rt_value_t *v, bool hit,
                     void *data) {
  (void)st;
  (void)data;
  fe.answers++;
  if (err != 0) {
    fe.errors++;
    return;
  }
  if (hit)
    fe.hits++;
  if (v == NULL || !rt_is_number(*v) || rt_number_value(*v) != 42)
    fe.wrong++;
}

static void test_contract_single_flight(void **state) {
  (void)state;
  env_t e;
  open_env(&e);
  char k[128];
  /* Callers that come together share one flight from the first of them,
   * store lookup included: a compute that fails at once still runs once,
   * however the store spreads its answers to their gets (it used to run
   * again for each miss answered after the flight had ended). */
  key_of(k, sizeof k, "flight-now", 0);
  fe = (flight_env_t){.e = &e, .fail_with = -EIO};
  for (int i = 0; i < MANY; i++)
    cache_get_or_compute(e.st, k, strlen(k), 60000, compute_now, NULL,
                         on_value, NULL);
  rt_loop_run(e.loop);
  assert_int_equal(fe.computes, 1);
  assert_int_equal(fe.answers, MANY);
  assert_int_equal(fe.errors, MANY);
  key_of(k, sizeof k, "flight", 0);
  /* An error first: passed to every waiter and not stored. */
  fe = (flight_env_t){.e = &e, .fail_with = -EIO};
  for (int i = 0; i < MANY; i++)
    cache_get_or_compute(e.st, k, strlen(k), 60000, compute, NULL, on_value,
                         NULL);
  rt_loop_run(e.loop);
  assert_int_equal(fe.computes, 1);
  assert_int_equal(fe.answers, MANY);
  assert_int_equal(fe.errors, MANY);
  /* Then a value: computed once more (the error was not cached), once for
   * all thousand. */
  fe = (flight_env_t){.e = &e};
  for (int i = 0; i < MANY; i++)
    cache_get_or_compute(e.st, k, strlen(k), 60000, compute, NULL, on_value,
                         NULL);
  rt_loop_run(e.loop);
  assert_int_equal(fe.computes, 1);
  assert_int_equal(fe.answers, MANY);
  assert_int_equal(fe.errors, 0);
  assert_int_equal(fe.wrong, 0);
  assert_int_equal(fe.hits, 0);
  /* Now stored: hits, no compute. */
  fe = (flight_env_t){.e = &e};
  for (int i = 0; i < 10; i++)
    cache_get_or_compute(e.st, k, strlen(k), 60000, compute, NULL, on_value,
                         NULL);
  rt_loop_run(e.loop);
  assert_int_equal(fe.computes, 0);
  assert_int_equal(fe.hits, 10);
  close_env(&e);
}

/* --- As JSON text ----------------------------------------------------------
 */

typedef struct jseen_s {
  int calls, err;
  bool found, hit;
  char json[256];
} jseen_t;

static void on_json(cache_store_t *st, int err, const char *json, size_t len,
                    void *data) {
  (void)st;
  jseen_t *j = data;
  j->calls++;
  j->err = err;
  j->found = json != NULL;
  snprintf(j->json, sizeof j->json, "%.*s", (int)len, json ? json : "");
}

static void get_json(env_t *e, const char *key, jseen_t *j) {
  memset(j, 0, sizeof *j);
  cache_get_json(e->st, key, strlen(key), on_json, j);
  assert_int_equal(j->calls, 0); /* never from inside the call */
  rt_loop_run(e->loop);
  assert_int_equal(j->calls, 1);
}

/* cache_get_json answers what cache_get's value writes, for every shape:
 * natively (memory://) or through the value. */
static void test_contract_get_json(void **state) {
  (void)state;
  env_t e;
  open_env(&e);
  char k[128];
  key_of(k, sizeof k, "json", 0);
  jseen_t j;
  get_json(&e, k, &j);
  assert_int_equal(j.err, 0);
  assert_false(j.found);
  static const char *const shapes[] = {
      "0", "-1.5", "true", "null", "\"\"", "\"caf\u00e9 \\n \\\"q\\\"\"",
      "[]", "{}", "{\"a\":1,\"b\":[true,null,\"x\"]}", "[[[[1]]],{\"\":{}}]"};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    key_of(k, sizeof k, "json-shape", (int)i);
    set(&e, k, shapes[i], 0, 0);
    /* Text first (near+redis://: from Redis, making the near copy), then
     * the value, then the text again (near+redis://: the copy's text). */
    jseen_t j0;
    get_json(&e, k, &j0);
    assert_int_equal(j0.err, 0);
    assert_true(j0.found);
    seen_t s;
    get(&e, k, &s);
    assert_true(s.hit);
    get_json(&e, k, &j);
    assert_int_equal(j.err, 0);
    assert_true(j.found);
    assert_string_equal(j.json, s.json);
    assert_string_equal(j0.json, s.json);
  }
  assert_int_equal(del_key(&e, k), 0);
  get_json(&e, k, &j);
  assert_int_equal(j.err, 0);
  assert_false(j.found);
  /* Close with text gets in flight: each answered exactly once. */
  jseen_t js[20];
  memset(js, 0, sizeof js);
  for (int i = 0; i < 20; i++) {
    key_of(k, sizeof k, "json-shape", i % 8);
    cache_get_json(e.st, k, strlen(k), on_json, &js[i]);
  }
  cache_close(e.st);
  env_done(&e);
  for (int i = 0; i < 20; i++)
    assert_int_equal(js[i].calls, 1);
}

typedef struct mixed_s {
  int values, texts, hits, wrong;
} mixed_t;

static mixed_t mx;

static void on_mixed_value(cache_store_t *st, int err, rt_value_t *v,
                           bool hit, void *data) {
  (void)st;
  (void)data;
  mx.values++;
  mx.hits += hit;
  if (err != 0 || v == NULL || !rt_is_number(*v) || rt_number_value(*v) != 42)
    mx.wrong++;
}

static void on_mixed_text(cache_store_t *st, int err, const char *json,
                          size_t len, bool hit, void *data) {
  (void)st;
  (void)data;
  mx.texts++;
  mx.hits += hit;
  if (err != 0 || json == NULL || len != 2 || memcmp(json, "42", 2) != 0)
    mx.wrong++;
}

/* Callers of both forms share one flight, whichever form came first: one
 * compute, each answered in its own form; then hits in both forms. */
static void test_contract_single_flight_json(void **state) {
  (void)state;
  env_t e;
  open_env(&e);
  for (int first_text = 0; first_text < 2; first_text++) {
    char k[128];
    key_of(k, sizeof k, "flight-json", first_text);
    fe = (flight_env_t){.e = &e};
    mx = (mixed_t){0};
    for (int i = 0; i < MANY; i++) {
      if ((i % 2 == 0) == (first_text == 1))
        cache_get_or_compute_json(e.st, k, strlen(k), 60000, compute, NULL,
                                  on_mixed_text, NULL);
      else
        cache_get_or_compute(e.st, k, strlen(k), 60000, compute, NULL,
                             on_mixed_value, NULL);
    }
    rt_loop_run(e.loop);
    assert_int_equal(fe.computes, 1);
    assert_int_equal(mx.values, MANY / 2);
    assert_int_equal(mx.texts, MANY / 2);
    assert_int_equal(mx.hits, 0);
    assert_int_equal(mx.wrong, 0);
    /* Stored: hits in both forms, in one flight again. */
    mx = (mixed_t){0};
    for (int i = 0; i < 10; i++) {
      if ((i % 2 == 0) == (first_text == 1))
        cache_get_or_compute_json(e.st, k, strlen(k), 60000, compute, NULL,
                                  on_mixed_text, NULL);
      else
        cache_get_or_compute(e.st, k, strlen(k), 60000, compute, NULL,
                             on_mixed_value, NULL);
    }
    rt_loop_run(e.loop);
    assert_int_equal(fe.computes, 1);
    assert_int_equal(mx.hits, 10);
    assert_int_equal(mx.wrong, 0);
  }
  close_env(&e);
}

/* --- Faults (remote stores) ------------------------------------------------
 */

#define SKIP_UNLESS_REMOTE()                                                   \
  do {                                                                         \
    if (!fx->remote) {                                                         \
      print_message("%s: no server to stop\n", fx->name);                      \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* Runs the loop until every one of N operations has been answered, and
 * returns how long that took (ms). */
static uint64_t run_timed(env_t *e) {
  uint64_t t0 = uv_hrtime();
  rt_loop_run(e->loop);
  return (uv_hrtime() - t0) / 1000000u;
}

static void test_contract_server_stopped_and_back(void **state) {
  (void)state;
  SKIP_UNLESS_REMOTE();
  env_t e;
  open_env(&e);
  char k[128];
  key_of(k, sizeof k, "fault", 0);
  set(&e, k, "\"kept\"", 0, 0);
  fixture_stop_servers(fx);
  /* In flight and new: every operation answered with an error, none
   * hanging past the timeout. */
  memset(&many, 0, sizeof many);
  for (int i = 0; i < 50; i++)
    cache_get(e.st, k, strlen(k), on_many_get, (void *)(intptr_t)i);
  uint64_t ms = run_timed(&e);
  for (int i = 0; i < 50; i++)
    assert_int_equal(many.calls[i], 1);
  assert_int_equal(many.bad, 50);
  assert_true(ms < (uint64_t)scale_ms(5000));
  seen_t s;
  get(&e, k, &s);
  assert_true(s.err < 0);
  assert_false(s.hit);
  assert_true(cache_store_error(e.st)[0] != '\0');
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_true(st.errors >= 51);
  /* Back: the store reconnects and serves again (what it held is gone:
   * the servers keep no data here, so only availability is checked). */
  fx->restart(fx);
  bool back = false;
  for (int i = 0; i < 100 && !back; i++) {
    pump(&e, 100);
    set_in(&e, e.st, k, "\"again\"", 0);
    get(&e, k, &s);
    back = s.err == 0 && s.hit && strcmp(s.json, "\"again\"") == 0;
  }
  assert_true(back);
  close_env(&e);
}

static void test_contract_server_paused(void **state) {
  (void)state;
  SKIP_UNLESS_REMOTE();
  env_t e;
  open_env(&e);
  char k[128];
  key_of(k, sizeof k, "paused", 0);
  set(&e, k, "1", 0, 0);
  fixture_pause(fx, true);
  seen_t s;
  uint64_t t0 = uv_hrtime();
  get(&e, k, &s);
  uint64_t ms = (uv_hrtime() - t0) / 1000000u;
  fixture_pause(fx, false);
  assert_int_equal(s.err, -ETIMEDOUT);
  assert_true(ms < (uint64_t)scale_ms(5000));
  assert_non_null(strstr(cache_store_error(e.st), "store"));
  /* Resumed: answers again. */
  bool back = false;
  for (int i = 0; i < 50 && !back; i++) {
    get(&e, k, &s);
    back = s.err == 0 && s.hit;
    if (!back)
      pump(&e, 100);
  }
  assert_true(back);
  close_env(&e);
}

/* --- Groups: one per backend ------------------------------------------------
 */

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_contract_basics),
      cmocka_unit_test(test_contract_large_value),
      cmocka_unit_test(test_contract_ttl_and_touch),
      cmocka_unit_test(test_contract_many_at_once),
      cmocka_unit_test(test_contract_close_in_flight),
      cmocka_unit_test(test_contract_single_flight),
      cmocka_unit_test(test_contract_get_json),
      cmocka_unit_test(test_contract_single_flight_json),
      cmocka_unit_test(test_contract_server_stopped_and_back),
      cmocka_unit_test(test_contract_server_paused),
  };
  int failed = run_on_every_store(tests, sizeof tests / sizeof tests[0]);
  return failed;
}
