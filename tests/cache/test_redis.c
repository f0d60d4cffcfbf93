/* test_redis.c -- redis:// against real redis-server processes the test
 * starts on free ports: get/set/del/touch answered from the loop, values
 * copied, TTL expiry (PX), AUTH and SELECT from the URL (a wrong password
 * fails clearly), the server killed mid-load (pending commands
 * -ECONNRESET, new ones -ENOTCONN at once, then a reconnect once it is
 * back), a paused server (-ETIMEDOUT within timeout-ms, the late reply
 * ignored), close with commands in flight (-ECANCELED), bad URLs; entries
 * and bytes sampled (DBSIZE of the db, used_memory; after deletes; a
 * paused or killed server leaves the figures; close with a sample in
 * flight).  Skipped when redis-server is not installed. */
#include "store_test.h"

#define SKIP_WITHOUT_REDIS()                                                   \
  do {                                                                         \
    if (!have_program("redis-server")) {                                       \
      print_message("redis-server is not installed (tools/deps.sh test)\n");   \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* --- Tests ---------------------------------------------------------------- */

static void test_redis_basics(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  e.st = store(&e, "redis://127.0.0.1:%d", port);
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
  assert_int_equal(d.err, 0);
  get(&e, "b", &s);
  assert_string_equal(s.json, "{\"k\":1}");
  /* Replace, delete, touch. */
  set(&e, "a", "[true]", 0, 0);
  get(&e, "a", &s);
  assert_string_equal(s.json, "[true]");
  memset(&d, 0, sizeof d);
  cache_del(e.st, "a", 1, on_done, &d);
  assert_int_equal(d.calls, 0);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, 0);
  get(&e, "a", &s);
  assert_false(s.hit);
  assert_int_equal(touch(&e, "a", 1000), -ENOENT);
  assert_int_equal(touch(&e, "a", 0), -ENOENT);
  assert_int_equal(touch(&e, "b", 60000), 0);
  assert_int_equal(touch(&e, "b", 0), 0);
  /* Values with no JSON form are refused (from the loop). */
  gc_scope_open(e.h, &sc);
  memset(&d, 0, sizeof d);
  rt_value_t *u = rt_handle(e.h, RT_UNDEFINED);
  cache_set(e.st, "u", 1, u, 0, on_done, &d);
  gc_scope_close(e.h, &sc);
  assert_int_equal(d.calls, 0);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, -EINVAL);
  assert_true(strlen(cache_store_error(e.st)) > 0);
  /* Many commands pipelined at once, answered in order. */
  enum { N = 200 };
  static seen_t many[N];
  gc_scope_open(e.h, &sc);
  rt_value_t *v = json(&e, "{\"x\":[1,2,3]}");
  for (int i = 0; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    memset(&many[i], 0, sizeof many[i]);
    cache_set(e.st, key, strlen(key), v, 60000, on_done, &many[i]);
  }
  gc_scope_close(e.h, &sc);
  rt_loop_run(e.loop);
  for (int i = 0; i < N; i++) {
    assert_int_equal(many[i].calls, 1);
    assert_int_equal(many[i].err, 0);
  }
  get(&e, "k199", &s);
  assert_string_equal(s.json, "{\"x\":[1,2,3]}");
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_int_equal(st.hits, 4);
  assert_int_equal(st.misses, 2);
  assert_int_equal(st.deletes, 1);
  assert_int_equal(st.sets, 3 + N);
  assert_true(st.errors >= 1);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

static void test_redis_ttl(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  e.st = store(&e, "redis://127.0.0.1:%d/0", port);
  set(&e, "short", "1", 80, 0);
  set(&e, "long", "2", 60000, 0);
  set(&e, "touched", "4", 80, 0);
  assert_int_equal(touch(&e, "touched", 60000), 0);
  seen_t s;
  get(&e, "short", &s);
  assert_true(s.hit);
  usleep(200000);
  get(&e, "short", &s); /* expired by the server (PX) */
  assert_false(s.hit);
  get(&e, "long", &s);
  assert_true(s.hit);
  get(&e, "touched", &s);
  assert_true(s.hit);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

static void test_redis_auth_select(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, "s3cret");
  env_t e;
  env_init(&e);
  e.st = store(&e, "redis://:s3cret@127.0.0.1:%d/3", port);
  set(&e, "x", "\"in db 3\"", 0, 0);
  seen_t s;
  get(&e, "x", &s);
  assert_int_equal(s.err, 0);
  assert_string_equal(s.json, "\"in db 3\"");
  /* The same server, db 0, the password as a parameter: not there. */
  cache_store_t *db0 = store(&e, "redis://127.0.0.1:%d?password=s3cret", port);
  get_in(&e, db0, "x", &s);
  assert_int_equal(s.err, 0);
  assert_false(s.hit);
  cache_close(db0);
  /* A wrong password fails with a clear error, never silently. */
  cache_store_t *bad = store(&e, "redis://:wrong@127.0.0.1:%d/3", port);
  get_in(&e, bad, "x", &s);
  assert_int_equal(s.err, -EACCES);
  assert_non_null(strstr(cache_store_error(bad), "AUTH"));
  int r = set_in(&e, bad, "y", "1", 0); /* not connected, or AUTH again */
  assert_true(r == -ENOTCONN || r == -EACCES);
  assert_non_null(strstr(cache_store_error(bad), "AUTH failed"));
  cache_stats_t st;
  cache_stats(bad, &st);
  assert_true(st.errors >= 2);
  cache_close(bad);
  /* No password at all: the server says so. */
  cache_store_t *none = store(&e, "redis://127.0.0.1:%d", port);
  get_in(&e, none, "x", &s);
  assert_int_equal(s.err, -EACCES);
  assert_non_null(strstr(cache_store_error(none), "NOAUTH"));
  cache_close(none);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

static void test_redis_kill_and_reconnect(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  char fmt[64];
  snprintf(fmt, sizeof fmt, "redis://127.0.0.1:%%d?timeout-ms=%d",
           scale_ms(5000));
  e.st = store(&e, fmt, port);
  set(&e, "a", "1", 0, 0);
  /* Mid-load: a stream of commands, the server killed while they are in
   * flight (stopped first so that none of them can be answered). */
  enum { N = 300 };
  static seen_t load[N];
  kill(pid, SIGSTOP);
  gc_scope_t sc;
  gc_scope_open(e.h, &sc);
  rt_value_t *v = json(&e, "{\"some\":\"value\"}");
  for (int i = 0; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "L%d", i);
    memset(&load[i], 0, sizeof load[i]);
    if (i % 2)
      cache_set(e.st, key, strlen(key), v, 0, on_done, &load[i]);
    else
      cache_get(e.st, key, strlen(key), on_get, &load[i]);
  }
  gc_scope_close(e.h, &sc);
  pump(&e, 50); /* they go out */
  for (int i = 0; i < N; i++) {
    if (load[i].calls != 0)
      print_message("%d: %d %s\n", i, load[i].err, cache_store_error(e.st));
    assert_int_equal(load[i].calls, 0);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  double t0 = rt_test_now_ms();
  rt_loop_run(e.loop); /* no hang: every one is answered */
  assert_true(rt_test_now_ms() - t0 < scale_ms(2000));
  for (int i = 0; i < N; i++) {
    assert_int_equal(load[i].calls, 1);
    assert_int_equal(load[i].err, -ECONNRESET);
  }
  /* New commands fail at once while disconnected. */
  seen_t s;
  t0 = rt_test_now_ms();
  get(&e, "a", &s);
  assert_int_equal(s.err, -ENOTCONN);
  assert_non_null(strstr(cache_store_error(e.st), "not connected"));
  assert_true(rt_test_now_ms() - t0 < scale_ms(200));
  assert_int_equal(set_in(&e, e.st, "b", "2", 0), -ENOTCONN);
  /* A few failed attempts, then the server is back on the same port. */
  pump(&e, 300);
  pid = start_redis(port, NULL);
  bool back = false;
  for (int i = 0; i < 400 && !back; i++) {
    pump(&e, 25);
    get(&e, "a", &s);
    back = s.err == 0;
  }
  assert_true(back);
  assert_false(s.hit); /* a fresh server: nothing saved */
  set(&e, "a", "\"again\"", 0, 0);
  get(&e, "a", &s);
  assert_string_equal(s.json, "\"again\"");
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_true(st.reconnects > 0);
  assert_true(st.errors >= N);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

static void test_redis_timeout(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  int tmo = scale_ms(300);
  char fmt[64];
  snprintf(fmt, sizeof fmt, "redis://127.0.0.1:%%d?timeout-ms=%d", tmo);
  e.st = store(&e, fmt, port);
  set(&e, "a", "1", 0, 0);
  kill(pid, SIGSTOP);
  seen_t s;
  double t0 = rt_test_now_ms();
  get(&e, "a", &s);
  double took = rt_test_now_ms() - t0;
  assert_int_equal(s.err, -ETIMEDOUT);
  assert_non_null(strstr(cache_store_error(e.st), "within"));
  assert_true(took >= tmo - 5);
  assert_true(took <= tmo + scale_ms(300));
  kill(pid, SIGCONT);
  /* The late reply comes and is ignored: still one answer. */
  pump(&e, 200);
  assert_int_equal(s.calls, 1);
  get(&e, "a", &s);
  assert_int_equal(s.err, 0);
  assert_string_equal(s.json, "1");
  /* Close with commands in flight: -ECANCELED, from the loop. */
  kill(pid, SIGSTOP);
  seen_t c1, c2 = {0};
  memset(&c1, 0, sizeof c1);
  cache_get(e.st, "a", 1, on_get, &c1);
  pump(&e, 20);
  cache_del(e.st, "a", 1, on_done, &c2);
  cache_close(e.st);
  assert_int_equal(c1.calls + c2.calls, 0);
  env_done(&e);
  assert_int_equal(c1.calls, 1);
  assert_int_equal(c1.err, -ECANCELED);
  assert_int_equal(c2.calls, 1);
  assert_int_equal(c2.err, -ECANCELED);
  stop_server(pid);
}

/* No server at all: commands fail (never hang), close is clean. */
static void test_redis_no_server(void **state) {
  (void)state;
  env_t e;
  env_init(&e);
  int port = free_port();
  e.st = store(&e, "redis://127.0.0.1:%d?timeout-ms=500", port);
  seen_t s;
  double t0 = rt_test_now_ms();
  get(&e, "a", &s); /* refused: not the timeout */
  assert_int_equal(s.err, -ENOTCONN);
  assert_true(rt_test_now_ms() - t0 < scale_ms(400));
  assert_true(strlen(cache_store_error(e.st)) > 0);
  cache_close(e.st);
  env_done(&e);
}

static void test_redis_bad_urls(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  rt_loop_t *loop;
  assert_int_equal(rt_loop_create(rt, &loop), 0);
  static const char *const bad[] = {"redis://host:port",
                                    "redis://host:0",
                                    "redis://host:99999",
                                    "redis://host/db",
                                    "redis://host?timeout-ms=0",
                                    "redis://host?timeout-ms=x",
                                    "redis://host?colour=blue",
                                    "redis://host?password",
                                    "redis://:@host",
                                    "redis://user@host"};
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

/* --- Entries and bytes (sampled) ------------------------------------------ */

static void set_many(env_t *e, cache_store_t *st, const char *prefix, int from,
                     int to) {
  for (int i = from; i < to; i++) {
    char key[32];
    snprintf(key, sizeof key, "%s%d", prefix, i);
    assert_int_equal(set_in(e, st, key, "{\"n\":1}", 0), 0);
  }
}

static void del_many(env_t *e, const char *prefix, int from, int to) {
  for (int i = from; i < to; i++) {
    char key[32];
    snprintf(key, sizeof key, "%s%d", prefix, i);
    seen_t d = {0};
    cache_del(e->st, key, strlen(key), on_done, &d);
    rt_loop_run(e->loop);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.err, 0);
  }
}

/* entries is DBSIZE of the URL's db, bytes the server's used_memory: a
 * sample taken once connected (no stats read needed), then after reads
 * once CACHE_SAMPLE_MS has passed. */
static void test_redis_entries_bytes(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  e.st = store(&e, "redis://127.0.0.1:%d/2", port);
  /* The first sample, once connected, with no read asking for it. */
  pump(&e, scale_ms(300));
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_true(st.counted_ms_ago != UINT64_MAX);
  assert_true(st.counted_ms_ago <= (uint64_t)scale_ms(300) + 50);
  assert_int_equal(st.entries, 0);
  assert_true(st.bytes > 0);
  /* Keys in db 2, and some in db 0 that db 2's count does not see. */
  enum { N = 120, GONE = 45 };
  set_many(&e, e.st, "eb:", 0, N);
  cache_store_t *db0 = store(&e, "redis://127.0.0.1:%d", port);
  set_many(&e, db0, "other:", 0, 7);
  double t = rt_test_now_ms();
  assert_true(stats_sampled_after(&e, e.st, t, scale_ms(5000), &st));
  assert_int_equal(st.entries, N);
  assert_true(st.bytes > 0);
  cache_stats_t s0;
  t = rt_test_now_ms();
  assert_true(stats_sampled_after(&e, db0, t, scale_ms(5000), &s0));
  assert_int_equal(s0.entries, 7);
  assert_true(s0.bytes > 0);
  cache_close(db0);
  /* Deleted: the count drops. */
  del_many(&e, "eb:", 0, GONE);
  t = rt_test_now_ms();
  assert_true(stats_sampled_after(&e, e.st, t, scale_ms(5000), &st));
  assert_int_equal(st.entries, N - GONE);
  /* Samples are no operations. */
  assert_int_equal(st.errors, 0);
  assert_int_equal(st.sets, N);
  assert_int_equal(st.deletes, GONE);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

/* A sample that fails (the server paused past timeout-ms, then killed)
 * leaves the figures, counts no error, keeps no loop alive; close with one
 * in flight is clean. */
static void test_redis_sample_faults(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  char fmt[64];
  snprintf(fmt, sizeof fmt, "redis://127.0.0.1:%%d?timeout-ms=%d",
           scale_ms(3000));
  e.st = store(&e, fmt, port);
  enum { N = 30 };
  set_many(&e, e.st, "f:", 0, N);
  cache_stats_t st;
  double t = rt_test_now_ms();
  assert_true(stats_sampled_after(&e, e.st, t, scale_ms(5000), &st));
  assert_int_equal(st.entries, N);
  uint64_t bytes = st.bytes;
  /* Paused: the next sample goes out at the tick and waits, quietly. */
  pause_server(pid);
  cache_stats(e.st, &st);
  pump(&e, CACHE_SAMPLE_MS + 300);
  double t0 = rt_test_now_ms();
  rt_loop_run(e.loop); /* nothing but the sample: returns at once */
  assert_true(rt_test_now_ms() - t0 < scale_ms(200));
  cache_stats(e.st, &st);
  assert_int_equal(st.entries, N);
  assert_int_equal(st.bytes, bytes);
  assert_true(st.counted_ms_ago >= CACHE_SAMPLE_MS);
  /* Killed with it in flight (no SIGCONT first: the reply would go out):
   * lost, the figures stay, no error. */
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  for (int i = 0; i < 25; i++) {
    pump(&e, 100);
    cache_stats(e.st, &st);
    assert_int_equal(st.entries, N);
    assert_int_equal(st.bytes, bytes);
  }
  assert_true(st.counted_ms_ago >= 2 * CACHE_SAMPLE_MS);
  assert_int_equal(st.errors, 0);
  /* Back (empty): the next sample says so. */
  pid = start_redis(port, NULL);
  t = rt_test_now_ms();
  assert_true(stats_sampled_after(&e, e.st, t, scale_ms(8000), &st));
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.errors, 0);
  /* Close with a sample in flight (paused): -ECANCELED to no one, the
   * memory freed (valgrind and ASan check). */
  pause_server(pid);
  cache_stats(e.st, &st);
  pump(&e, CACHE_SAMPLE_MS + 100);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_redis_basics),
      cmocka_unit_test(test_redis_ttl),
      cmocka_unit_test(test_redis_auth_select),
      cmocka_unit_test(test_redis_kill_and_reconnect),
      cmocka_unit_test(test_redis_timeout),
      cmocka_unit_test(test_redis_no_server),
      cmocka_unit_test(test_redis_bad_urls),
      cmocka_unit_test(test_redis_entries_bytes),
      cmocka_unit_test(test_redis_sample_faults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
