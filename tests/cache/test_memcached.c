/* test_memcached.c -- memcached:// against real memcached processes the
 * test starts on free ports: get/set/del/touch answered from the loop,
 * values copied, keys memcached cannot take (long, spaces, control bytes)
 * hashed and kept apart, TTLs in whole seconds (rounded up, 0 for none,
 * over 30 days as a Unix time), two servers sharing the keys (the same way
 * whatever order the URL lists them in), a server killed mid-load (every
 * operation answered, the other server keeps its keys and takes the dead
 * one's), then restarted (back in the ring), a single server killed and
 * restarted, a paused server among two (out of the ring after two work
 * items timed out on it, back after retry-s), a paused server alone
 * (-ETIMEDOUT within timeout-ms, the late
 * result dropped, the connection not reused out of step), close with
 * operations in flight (-ECANCELED), no server at all, bad URLs; entries
 * and bytes sampled (the sums over both servers, after deletes, a killed
 * server leaving the figures, close with a sample in flight).  Skipped
 * when memcached is not installed. */
#include <libmemcached/memcached.h>
#include <sys/prctl.h>
#include <openssl/evp.h>

#include "store_test.h"

#define SKIP_WITHOUT_MEMCACHED()                                               \
  do {                                                                         \
    if (!have_program("memcached")) {                                          \
      print_message("memcached is not installed (tools/deps.sh test)\n");      \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* --- Talking to one server directly (the test's own view) ----------------- */

/* Sends REQ to the memcached on PORT and reads the reply up to "END\r\n"
 * into OUT (blocking: the server is not paused when this is used). */
static void raw(int port, const char *req, char *out, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  size_t rl = strlen(req);
  assert_int_equal(write(fd, req, rl), (ssize_t)rl);
  size_t n = 0;
  out[0] = '\0';
  while (n + 1 < cap && strstr(out, "END\r\n") == NULL) {
    ssize_t r = read(fd, out + n, cap - 1 - n);
    assert_true(r > 0);
    n += (size_t)r;
    out[n] = '\0';
  }
  close(fd);
}

/* Whether the memcached on PORT holds KEY (a key sent as it is). */
static bool holds(int port, const char *key) {
  char req[512], out[4096];
  snprintf(req, sizeof req, "get %s\r\n", key);
  raw(port, req, out, sizeof out);
  return strncmp(out, "VALUE ", 6) == 0;
}

static long curr_items(int port) {
  char out[8192];
  raw(port, "stats\r\n", out, sizeof out);
  const char *p = strstr(out, "STAT curr_items ");
  assert_non_null(p);
  return strtol(p + 16, NULL, 10);
}

static void del(env_t *e, const char *key) {
  seen_t d = {0};
  cache_del(e->st, key, strlen(key), on_done, &d);
  assert_int_equal(d.calls, 0);
  rt_loop_run(e->loop);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.err, 0);
}

/* A store on the servers at PORTS (N of them) with QUERY. */
static cache_store_t *pool(env_t *e, const int *ports, int n,
                           const char *query) {
  char url[512], err[256];
  int k = snprintf(url, sizeof url, "memcached://");
  for (int i = 0; i < n; i++)
    k += snprintf(url + k, sizeof url - (size_t)k, "%s127.0.0.1:%d",
                  i ? "," : "", ports[i]);
  snprintf(url + k, sizeof url - (size_t)k, "%s", query);
  cache_store_t *st = NULL;
  if (cache_open(e->loop, url, &st, err, sizeof err) != 0)
    fail_msg("%s: %s", url, err);
  return st;
}

static bool clear_error(const cache_store_t *st) {
  return strncmp(cache_store_error(st), "memcached store: ", 17) == 0 &&
         strlen(cache_store_error(st)) > 20;
}

/* --- Tests ---------------------------------------------------------------- */

static void test_memcached_basics(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int port = free_port();
  pid_t pid = start_memcached(port);
  env_t e;
  env_init(&e);
  e.st = store(&e, "memcached://127.0.0.1:%d", port);
  seen_t s;
  get(&e, "a", &s);
  assert_int_equal(s.err, 0);
  assert_false(s.hit);
  set(&e, "a", "{\"user\":\"ada\",\"n\":[1,2.5,null]}", 0, 0);
  get(&e, "a", &s);
  assert_true(s.hit);
  assert_string_equal(s.json, "{\"user\":\"ada\",\"n\":[1,2.5,null]}");
  assert_true(holds(port, "a")); /* a plain key goes as it is */
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
  /* Replace, delete (also what is not there), touch. */
  set(&e, "a", "[true]", 0, 0);
  get(&e, "a", &s);
  assert_string_equal(s.json, "[true]");
  del(&e, "a");
  get(&e, "a", &s);
  assert_false(s.hit);
  del(&e, "a");
  assert_int_equal(touch(&e, "a", 1000), -ENOENT);
  assert_int_equal(touch(&e, "a", 0), -ENOENT);
  assert_int_equal(touch(&e, "b", 60000), 0);
  assert_int_equal(touch(&e, "b", 0), 0);
  /* Keys memcached cannot take as they are: hashed, each its own. */
  static char longkey[400];
  memset(longkey, 'x', sizeof longkey - 1);
  static const char *const odd[] = {"with space",   "tab\there", "new\r\nline",
                                    "caf\xc3\xa9",  "",          longkey,
                                    "~h:not-a-hash"};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    char v[16];
    snprintf(v, sizeof v, "%zu", i);
    set(&e, odd[i], v, 0, 0);
  }
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    char v[16];
    snprintf(v, sizeof v, "%zu", i);
    get(&e, odd[i], &s);
    assert_int_equal(s.err, 0);
    assert_string_equal(s.json, v);
  }
  longkey[250] = '\0'; /* 250 bytes: still a plain key */
  set(&e, longkey, "\"250\"", 0, 0);
  assert_true(holds(port, longkey));
  /* The hashed form of "with space", given as a key itself, is hashed
   * again: it does not reach the other's value. */
  unsigned char md[32];
  unsigned int ml = 0;
  assert_int_equal(EVP_Digest("with space", 10, md, &ml, EVP_sha256(), NULL),
                   1);
  char hashed[80] = "~h:";
  for (unsigned i = 0; i < ml; i++)
    snprintf(hashed + 3 + 2 * i, 3, "%02x", md[i]);
  assert_true(holds(port, hashed));
  get(&e, hashed, &s);
  assert_false(s.hit);
  /* Values with no JSON form are refused (from the loop). */
  gc_scope_open(e.h, &sc);
  memset(&d, 0, sizeof d);
  rt_value_t *u = rt_handle(e.h, RT_UNDEFINED);
  cache_set(e.st, "u", 1, u, 0, on_done, &d);
  gc_scope_close(e.h, &sc);
  assert_int_equal(d.calls, 0);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, -EINVAL);
  assert_true(clear_error(e.st));
  /* A value above memcached's item size (1 MB): -E2BIG, said. */
  size_t big = 2u << 20;
  char *text = malloc(big + 3);
  text[0] = '"';
  memset(text + 1, 'y', big);
  text[big + 1] = '"';
  text[big + 2] = '\0';
  gc_scope_open(e.h, &sc);
  memset(&d, 0, sizeof d);
  cache_set(e.st, "big", 3, json(&e, text), 0, on_done, &d);
  gc_scope_close(e.h, &sc);
  free(text);
  rt_loop_run(e.loop);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.err, -E2BIG);
  assert_true(clear_error(e.st));
  /* Many operations at once (more than the pool's clients), all answered,
   * and the store still in step afterwards. */
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
  assert_int_equal(st.hits, 3 + 7 + 1);
  assert_int_equal(st.misses, 3);
  assert_int_equal(st.deletes, 1);
  assert_int_equal(st.sets, 3 + 7 + 1 + N);
  assert_int_equal(st.errors, 2);
  assert_int_equal(st.reconnects, 0);
  assert_true(st.latency_samples > 0);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

static void test_memcached_ttl(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int port = free_port();
  pid_t pid = start_memcached(port);
  env_t e;
  env_init(&e);
  e.st = store(&e, "memcached://127.0.0.1:%d", port);
  /* 1500 ms is 2 s for memcached, whose clock ticks in whole seconds: the
   * entry lives between 1 and 2 s. */
  set(&e, "short", "1", 1500, 0);
  set(&e, "long", "2", 60000, 0);
  set(&e, "touched", "3", 1500, 0);
  assert_int_equal(touch(&e, "touched", 60000), 0);
  set(&e, "kept", "4", 1500, 0);
  assert_int_equal(touch(&e, "kept", 0), 0); /* no expiry */
  /* 40 days: above memcached's 30, so sent as a Unix time (a relative 40
   * days would be read as a time in 1970: gone at once). */
  set(&e, "far", "5", 40ull * 24 * 3600 * 1000, 0);
  seen_t s;
  get(&e, "short", &s);
  assert_true(s.hit);
  get(&e, "far", &s);
  assert_true(s.hit);
  usleep(2500000);
  get(&e, "short", &s); /* expired by the server */
  assert_false(s.hit);
  static const char *const stay[] = {"long", "touched", "kept", "far"};
  for (size_t i = 0; i < sizeof stay / sizeof stay[0]; i++) {
    get(&e, stay[i], &s);
    assert_true(s.hit);
  }
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

enum { NKEYS = 200 };

static void key_of(int i, char *key, size_t cap) {
  snprintf(key, cap, "sess:%04d", i);
}

static void test_memcached_two_servers(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int ports[2] = {free_port(), 0};
  pid_t a = start_memcached(ports[0]);
  ports[1] = free_port();
  pid_t b = start_memcached(ports[1]);
  env_t e;
  env_init(&e);
  e.st = pool(&e, ports, 2, "");
  for (int i = 0; i < NKEYS; i++) {
    char key[16], v[16];
    key_of(i, key, sizeof key);
    snprintf(v, sizeof v, "%d", i);
    set(&e, key, v, 0, 0);
  }
  /* Both hold keys, each key on one of them. */
  long na = curr_items(ports[0]), nb = curr_items(ports[1]);
  print_message("keys: %ld on A, %ld on B\n", na, nb);
  assert_true(na > NKEYS / 5 && nb > NKEYS / 5);
  assert_int_equal(na + nb, NKEYS);
  for (int i = 0; i < NKEYS; i++) {
    char key[16];
    key_of(i, key, sizeof key);
    assert_true(holds(ports[0], key) != holds(ports[1], key));
  }
  /* The servers listed the other way round: the same ring, every key
   * found (what lets two processes share sessions). */
  int swapped[2] = {ports[1], ports[0]};
  cache_store_t *other = pool(&e, swapped, 2, "");
  for (int i = 0; i < NKEYS; i++) {
    char key[16], v[16];
    key_of(i, key, sizeof key);
    snprintf(v, sizeof v, "%d", i);
    seen_t s;
    get_in(&e, other, key, &s);
    assert_int_equal(s.err, 0);
    assert_string_equal(s.json, v);
  }
  cache_close(other);
  cache_close(e.st);
  env_done(&e);
  stop_server(a);
  stop_server(b);
}

/* Polls until PRED's key lands on PORT again (the server back in the
 * ring): sets KEY and looks.  Returns whether it did within MS. */
static bool lands_on(env_t *e, int port, const char *key, int ms) {
  double t0 = rt_test_now_ms();
  while (rt_test_now_ms() - t0 < ms) {
    if (set_in(e, e->st, key, "\"back\"", 0) == 0 && holds(port, key))
      return true;
    pump(e, 50);
  }
  return false;
}

static void test_memcached_kill_and_restart(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int ports[2] = {free_port(), 0};
  pid_t a = start_memcached(ports[0]);
  ports[1] = free_port();
  pid_t b = start_memcached(ports[1]);
  env_t e;
  env_init(&e);
  char q[64];
  snprintf(q, sizeof q, "?timeout-ms=%d&retry-s=1", scale_ms(2000));
  e.st = pool(&e, ports, 2, q);
  static bool on_b[NKEYS];
  for (int i = 0; i < NKEYS; i++) {
    char key[16], v[16];
    key_of(i, key, sizeof key);
    snprintf(v, sizeof v, "%d", i);
    set(&e, key, v, 0, 0);
  }
  int first_a = -1;
  for (int i = 0; i < NKEYS; i++) {
    char key[16];
    key_of(i, key, sizeof key);
    on_b[i] = holds(ports[1], key);
    if (!on_b[i] && first_a < 0)
      first_a = i;
  }
  assert_true(first_a >= 0);
  /* Mid-load: reads and writes of every key under way when A dies. */
  enum { N = 3 * NKEYS };
  static seen_t load[N];
  gc_scope_t sc;
  gc_scope_open(e.h, &sc);
  rt_value_t *v = json(&e, "\"during\"");
  for (int i = 0; i < N; i++) {
    char key[16];
    key_of(i % NKEYS, key, sizeof key);
    memset(&load[i], 0, sizeof load[i]);
    if (i % 3 == 2)
      cache_set(e.st, key, strlen(key), v, 0, on_done, &load[i]);
    else
      cache_get(e.st, key, strlen(key), on_get, &load[i]);
  }
  gc_scope_close(e.h, &sc);
  pump(&e, 5);
  kill(a, SIGKILL);
  waitpid(a, NULL, 0);
  double t0 = rt_test_now_ms();
  rt_loop_run(e.loop); /* no hang: every one is answered */
  assert_true(rt_test_now_ms() - t0 < scale_ms(5000));
  int failed = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(load[i].calls, 1);
    if (load[i].err != 0) {
      failed++;
      assert_true(load[i].err == -ECONNREFUSED || load[i].err == -ECONNRESET ||
                  load[i].err == -ENOTCONN);
    }
  }
  print_message("%d of %d operations failed while A died (%s)\n", failed, N,
                cache_store_error(e.st));
  if (failed > 0)
    assert_true(clear_error(e.st));
  /* The ring without A: B's keys still there, A's keys now misses served
   * by B, no errors. */
  for (int i = 0; i < NKEYS; i++) {
    char key[16];
    key_of(i, key, sizeof key);
    seen_t s;
    get(&e, key, &s);
    assert_int_equal(s.err, 0);
    if (on_b[i])
      assert_true(s.hit);
  }
  char key[16];
  key_of(first_a, key, sizeof key);
  set(&e, key, "\"moved\"", 0, 0);
  assert_true(holds(ports[1], key));
  /* A back on its port: after retry-s it is in the ring again and gets its
   * keys back. */
  a = start_memcached(ports[0]);
  assert_true(lands_on(&e, ports[0], key, scale_ms(6000)));
  seen_t s;
  get(&e, key, &s);
  assert_string_equal(s.json, "\"back\"");
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_true(st.reconnects >= 1);
  cache_close(e.st);
  env_done(&e);
  stop_server(a);
  stop_server(b);
}

/* A paused server (connects work, replies never come) leaves the ring
 * after two work items in a row timed out on it, batched gets included:
 * its keys then go to the other server, which answers at once; resumed,
 * it is back after retry-s.  The server that answered never leaves. */
static void test_memcached_paused_leaves_ring(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int ports[2] = {free_port(), 0};
  pid_t a = start_memcached(ports[0]);
  ports[1] = free_port();
  pid_t b = start_memcached(ports[1]);
  env_t e;
  env_init(&e);
  int tmo = scale_ms(250);
  char q[64];
  snprintf(q, sizeof q, "?timeout-ms=%d&retry-s=1", tmo);
  e.st = pool(&e, ports, 2, q);
  for (int i = 0; i < NKEYS; i++) {
    char key[16], v[16];
    key_of(i, key, sizeof key);
    snprintf(v, sizeof v, "%d", i);
    set(&e, key, v, 0, 0);
  }
  int on_a = -1, on_b = -1;
  for (int i = 0; i < NKEYS && (on_a < 0 || on_b < 0); i++) {
    char key[16];
    key_of(i, key, sizeof key);
    if (holds(ports[1], key))
      on_b = on_b < 0 ? i : on_b;
    else
      on_a = on_a < 0 ? i : on_a;
  }
  assert_true(on_a >= 0 && on_b >= 0);
  char ka[16], kb[16];
  key_of(on_a, ka, sizeof ka);
  key_of(on_b, kb, sizeof kb);
  pause_server(b);
  /* Bursts of gets of both keys (batched into one mget a client): each
   * burst answers by its deadline; once B is out, all at once, B's key a
   * miss served by A. */
  int bursts = 0;
  for (;; bursts++) {
    assert_true(bursts < 4);
    enum { N = 8 };
    seen_t g[N];
    memset(g, 0, sizeof g);
    double t0 = rt_test_now_ms();
    for (int i = 0; i < N; i++)
      cache_get(e.st, i % 2 ? kb : ka, strlen(ka), on_get, &g[i]);
    rt_loop_run(e.loop);
    double took = rt_test_now_ms() - t0;
    assert_true(took <= 2 * tmo + scale_ms(300));
    int timed_out = 0;
    for (int i = 0; i < N; i++) {
      assert_int_equal(g[i].calls, 1);
      if (g[i].err == -ETIMEDOUT)
        timed_out++;
      else
        assert_int_equal(g[i].err, 0);
    }
    print_message("burst %d: %d of %d timed out in %.0f ms\n", bursts,
                  timed_out, N, took);
    if (timed_out == 0) {
      assert_true(took < tmo);
      break;
    }
  }
  assert_true(bursts >= 1); /* B's first burst waited for it */
  /* Writes of B's key land on A meanwhile. */
  double t0 = rt_test_now_ms();
  set(&e, kb, "\"moved\"", 0, 0);
  seen_t s;
  get(&e, kb, &s);
  assert_true(rt_test_now_ms() - t0 < tmo);
  assert_string_equal(s.json, "\"moved\"");
  assert_true(holds(ports[0], kb));
  get(&e, ka, &s);
  assert_int_equal(s.err, 0);
  assert_true(s.hit);
  /* Resumed: after retry-s it is in the ring again and gets its key. */
  kill(b, SIGCONT);
  assert_true(lands_on(&e, ports[1], kb, scale_ms(6000)));
  cache_close(e.st);
  env_done(&e);
  stop_server(a);
  stop_server(b);
}

/* One server only: while it is down every operation fails at once with a
 * clear error, and once it is back it serves again. */
static void test_memcached_single_down(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int port = free_port();
  pid_t pid = start_memcached(port);
  env_t e;
  env_init(&e);
  char fmt[96];
  snprintf(fmt, sizeof fmt, "memcached://127.0.0.1:%%d?timeout-ms=%d&retry-s=1",
           scale_ms(2000));
  e.st = store(&e, fmt, port);
  set(&e, "a", "1", 0, 0);
  stop_server(pid);
  seen_t s;
  for (int i = 0; i < 5; i++) {
    double t0 = rt_test_now_ms();
    get(&e, "a", &s);
    assert_true(s.err == -ECONNREFUSED || s.err == -ECONNRESET ||
                s.err == -ENOTCONN);
    assert_true(clear_error(e.st));
    assert_true(rt_test_now_ms() - t0 < scale_ms(200));
  }
  print_message("down: %s\n", cache_store_error(e.st));
  assert_int_equal(set_in(&e, e.st, "b", "2", 0) < 0, 1);
  pid = start_memcached(port);
  bool back = false;
  for (int i = 0; i < 200 && !back; i++) {
    pump(&e, 50);
    get(&e, "a", &s);
    back = s.err == 0;
  }
  assert_true(back);
  assert_false(s.hit); /* a fresh server */
  set(&e, "a", "\"again\"", 0, 0);
  get(&e, "a", &s);
  assert_string_equal(s.json, "\"again\"");
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_true(st.reconnects >= 1);
  assert_true(st.errors >= 6);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

static void test_memcached_timeout(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int port = free_port();
  pid_t pid = start_memcached(port);
  env_t e;
  env_init(&e);
  int tmo = scale_ms(300);
  char fmt[64];
  snprintf(fmt, sizeof fmt, "memcached://127.0.0.1:%%d?timeout-ms=%d", tmo);
  e.st = store(&e, fmt, port);
  set(&e, "a", "1", 0, 0);
  pause_server(pid);
  seen_t s;
  double t0 = rt_test_now_ms();
  get(&e, "a", &s);
  double took = rt_test_now_ms() - t0;
  assert_int_equal(s.err, -ETIMEDOUT);
  assert_non_null(strstr(cache_store_error(e.st), "within"));
  assert_true(took >= tmo - 5);
  assert_true(took <= tmo + scale_ms(300));
  /* More than the pool's two clients at once: every one -ETIMEDOUT, the
   * ones waiting for a client too, none later than its deadline. */
  enum { N = 6 };
  seen_t many[N];
  memset(many, 0, sizeof many);
  t0 = rt_test_now_ms();
  for (int i = 0; i < N; i++)
    cache_get(e.st, "a", 1, on_get, &many[i]);
  rt_loop_run(e.loop);
  took = rt_test_now_ms() - t0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(many[i].calls, 1);
    assert_int_equal(many[i].err, -ETIMEDOUT);
  }
  assert_true(took <= 2 * tmo + scale_ms(300));
  kill(pid, SIGCONT);
  /* The late results are dropped: still one answer each; and the
   * connections that owed replies are not reused out of step. */
  pump(&e, 200);
  assert_int_equal(s.calls, 1);
  set(&e, "a", "\"fresh\"", 0, 0);
  get(&e, "a", &s);
  assert_int_equal(s.err, 0);
  assert_string_equal(s.json, "\"fresh\"");
  set(&e, "b", "\"bee\"", 0, 0);
  get(&e, "a", &s);
  assert_string_equal(s.json, "\"fresh\"");
  get(&e, "b", &s);
  assert_string_equal(s.json, "\"bee\"");
  /* Close with operations in flight: -ECANCELED, from the loop; the store
   * is freed once the worker stuck on the paused server is back. */
  pause_server(pid);
  seen_t c1, c2 = {0}, c3 = {0};
  memset(&c1, 0, sizeof c1);
  cache_get(e.st, "a", 1, on_get, &c1);
  pump(&e, 20);
  cache_del(e.st, "a", 1, on_done, &c2);
  cache_touch(e.st, "b", 1, 1000, on_done, &c3);
  cache_close(e.st);
  assert_int_equal(c1.calls + c2.calls + c3.calls, 0);
  env_done(&e);
  assert_int_equal(c1.calls, 1);
  assert_int_equal(c1.err, -ECANCELED);
  assert_int_equal(c2.calls, 1);
  assert_int_equal(c2.err, -ECANCELED);
  assert_int_equal(c3.calls, 1);
  assert_int_equal(c3.err, -ECANCELED);
  stop_server(pid);
}

/* No server at all: operations fail at once (never hang), close is
 * clean. */
static void test_memcached_no_server(void **state) {
  (void)state;
  env_t e;
  env_init(&e);
  int port = free_port();
  e.st = store(&e, "memcached://127.0.0.1:%d?timeout-ms=500", port);
  seen_t s;
  double t0 = rt_test_now_ms();
  get(&e, "a", &s); /* refused: not the timeout */
  assert_true(s.err == -ECONNREFUSED || s.err == -ENOTCONN);
  assert_true(rt_test_now_ms() - t0 < scale_ms(400));
  assert_true(clear_error(e.st));
  print_message("no server: %s\n", cache_store_error(e.st));
  assert_true(set_in(&e, e.st, "a", "1", 0) < 0);
  cache_close(e.st);
  env_done(&e);
}

static void test_memcached_urls(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  rt_loop_t *loop;
  assert_int_equal(rt_loop_create(rt, &loop), 0);
  static const char *const bad[] = {"memcached://",
                                    "memcached://?timeout-ms=5",
                                    "memcached://:11211",
                                    "memcached://host:port",
                                    "memcached://host:0",
                                    "memcached://host:99999",
                                    "memcached://host:",
                                    "memcached://a:1,,b:2",
                                    "memcached://a:1,",
                                    "memcached://,a:1",
                                    "memcached://a:1,a:1",
                                    "memcached://a,a:11211",
                                    "memcached://host/db",
                                    "memcached://user@host",
                                    "memcached://::1:11211",
                                    "memcached://[::1",
                                    "memcached://[]:11211",
                                    "memcached://[::1]x",
                                    "memcached://host?timeout-ms=0",
                                    "memcached://host?timeout-ms=x",
                                    "memcached://host?timeout-ms",
                                    "memcached://host?retry-s=0",
                                    "memcached://host?clients=4",
                                    "memcached://host?colour=blue"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cache_store_t *st = NULL;
    char err[256] = "";
    int r = cache_open(loop, bad[i], &st, err, sizeof err);
    if (r != -EINVAL)
      fail_msg("%s: %d", bad[i], r);
    assert_null(st);
    assert_true(strlen(err) > 0);
  }
  /* Good ones open without connecting (and close at once). */
  static const char *const good[] = {
      "memcached://127.0.0.1", "memcached://localhost:11211",
      "memcached://[::1]:11211",
      "memcached://a,b:11212,c.example.org?timeout-ms=5&retry-s=3",
      "memcached://a?"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    cache_store_t *st = NULL;
    char err[256] = "";
    if (cache_open(loop, good[i], &st, err, sizeof err) != 0)
      fail_msg("%s: %s", good[i], err);
    cache_close(st);
  }
  rt_loop_run(loop);
  assert_int_equal(rt_loop_destroy(loop), 0);
  rt_runtime_destroy(rt);
}

/* --- Entries and bytes (sampled) ------------------------------------------ */

static long long stat_of(int port, const char *name) {
  char out[8192], key[64];
  raw(port, "stats\r\n", out, sizeof out);
  snprintf(key, sizeof key, "\nSTAT %s ", name);
  const char *p = strstr(out, key);
  assert_non_null(p);
  return strtoll(p + strlen(key), NULL, 10);
}

/* entries and bytes: the sums of curr_items and bytes over the pool. */
static void test_memcached_entries_bytes(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int ports[2] = {free_port(), 0};
  pid_t a = start_memcached(ports[0]);
  ports[1] = free_port();
  pid_t b = start_memcached(ports[1]);
  env_t e;
  env_init(&e);
  e.st = pool(&e, ports, 2, "");
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_int_equal(st.counted_ms_ago, UINT64_MAX); /* none yet */
  assert_int_equal(st.entries, 0);
  enum { N = 150, GONE = 60 };
  for (int i = 0; i < N; i++) {
    char key[16];
    key_of(i, key, sizeof key);
    set(&e, key, "{\"n\":1}", 0, 0);
  }
  double t = rt_test_now_ms();
  assert_true(stats_sampled_after(&e, e.st, t, scale_ms(5000), &st));
  long na = curr_items(ports[0]), nb = curr_items(ports[1]);
  assert_true(na > 0 && nb > 0); /* both servers hold some */
  assert_int_equal(st.entries, N);
  assert_int_equal(st.entries, (uint64_t)(na + nb));
  assert_int_equal(st.bytes,
                   (uint64_t)(stat_of(ports[0], "bytes") +
                              stat_of(ports[1], "bytes")));
  assert_true(st.bytes > 0);
  for (int i = 0; i < GONE; i++) {
    char key[16];
    key_of(i, key, sizeof key);
    del(&e, key);
  }
  t = rt_test_now_ms();
  assert_true(stats_sampled_after(&e, e.st, t, scale_ms(5000), &st));
  assert_int_equal(st.entries, N - GONE);
  /* Samples are no operations. */
  assert_int_equal(st.errors, 0);
  assert_int_equal(st.sets, N);
  assert_int_equal(st.deletes, GONE);
  cache_close(e.st);
  env_done(&e);
  stop_server(a);
  stop_server(b);
}

/* A sample against a server killed leaves the figures and counts no error,
 * without a hang; the server back (empty), the next says so; close with a
 * sample in flight (the server paused) is clean. */
static void test_memcached_sample_faults(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int port = free_port();
  pid_t pid = start_memcached(port);
  env_t e;
  env_init(&e);
  char fmt[96];
  snprintf(fmt, sizeof fmt,
           "memcached://127.0.0.1:%%d?timeout-ms=%d&retry-s=1",
           scale_ms(2000));
  e.st = store(&e, fmt, port);
  enum { N = 40 };
  for (int i = 0; i < N; i++) {
    char key[16];
    key_of(i, key, sizeof key);
    set(&e, key, "1", 0, 0);
  }
  cache_stats_t st;
  double t = rt_test_now_ms();
  assert_true(stats_sampled_after(&e, e.st, t, scale_ms(5000), &st));
  assert_int_equal(st.entries, N);
  uint64_t bytes = st.bytes;
  stop_server(pid);
  for (int i = 0; i < 25; i++) {
    pump(&e, 100);
    cache_stats(e.st, &st);
    assert_int_equal(st.entries, N);
    assert_int_equal(st.bytes, bytes);
  }
  double t0 = rt_test_now_ms();
  rt_loop_run(e.loop); /* no hang: a sample refused comes back at once */
  assert_true(rt_test_now_ms() - t0 < scale_ms(500));
  assert_true(st.counted_ms_ago >= 2 * CACHE_SAMPLE_MS);
  assert_int_equal(st.errors, 0);
  pid = start_memcached(port);
  t = rt_test_now_ms();
  assert_true(stats_sampled_after(&e, e.st, t, scale_ms(8000), &st));
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.errors, 0);
  /* Paused: the sample's worker waits within timeout-ms; closed meanwhile,
   * the store goes once it is back. */
  pause_server(pid);
  cache_stats(e.st, &st);
  pump(&e, CACHE_SAMPLE_MS + 100);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}


/* --- The wire: pipelining, the ring, servers that are not memcached ------ */

typedef struct big_s {
  int calls, err;
  size_t len;
  bool all_z;
} big_t;

static void on_get_big(cache_store_t *st, int err, rt_value_t *v, void *data) {
  big_t *b = data;
  b->calls++;
  b->err = err;
  if (v == NULL)
    return;
  (void)st;
  size_t n = rt_string_length(*v);
  const char *p = rt_string_data(*v);
  b->len = n;
  b->all_z = p != NULL;
  for (size_t i = 0; p != NULL && i < n; i++)
    b->all_z = b->all_z && p[i] == 'z';
}

/* Replies split across reads (a value of 900 KB), ops on one key made in
 * one callback answered in their order, a thousand gets in one burst. */
static void test_memcached_pipeline(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int port = free_port();
  pid_t pid = start_memcached(port);
  env_t e;
  env_init(&e);
  e.st = store(&e, "memcached://127.0.0.1:%d", port);
  size_t big = 900u << 10;
  char *text = malloc(big + 3);
  text[0] = '"';
  memset(text + 1, 'z', big);
  text[big + 1] = '"';
  text[big + 2] = '\0';
  gc_scope_t sc;
  gc_scope_open(e.h, &sc);
  seen_t d = {0};
  cache_set(e.st, "big", 3, json(&e, text), 0, on_done, &d);
  gc_scope_close(e.h, &sc);
  free(text);
  big_t b[3];
  memset(b, 0, sizeof b);
  for (int i = 0; i < 3; i++) /* behind the set, on one connection */
    cache_get(e.st, "big", 3, on_get_big, &b[i]);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(b[i].calls, 1);
    assert_int_equal(b[i].err, 0);
    assert_int_equal(b[i].len, big);
    assert_true(b[i].all_z);
  }
  /* set 1, get, set 2, get, del, get, touch: in the order made. */
  seen_t r[7];
  memset(r, 0, sizeof r);
  gc_scope_open(e.h, &sc);
  cache_set(e.st, "k", 1, json(&e, "1"), 0, on_done, &r[0]);
  cache_get(e.st, "k", 1, on_get, &r[1]);
  cache_set(e.st, "k", 1, json(&e, "2"), 0, on_done, &r[2]);
  cache_get(e.st, "k", 1, on_get, &r[3]);
  cache_del(e.st, "k", 1, on_done, &r[4]);
  cache_get(e.st, "k", 1, on_get, &r[5]);
  cache_touch(e.st, "k", 1, 1000, on_done, &r[6]);
  gc_scope_close(e.h, &sc);
  rt_loop_run(e.loop);
  for (int i = 0; i < 7; i++)
    assert_int_equal(r[i].calls, 1);
  assert_string_equal(r[1].json, "1");
  assert_string_equal(r[3].json, "2");
  assert_int_equal(r[4].err, 0);
  assert_false(r[5].hit);
  assert_int_equal(r[5].err, 0);
  assert_int_equal(r[6].err, -ENOENT);
  /* A burst: every get answered, hits and misses as stored. */
  enum { N = 1000 };
  static seen_t many[N];
  for (int i = 0; i < N; i += 2) {
    char key[16];
    key_of(i, key, sizeof key);
    set(&e, key, "true", 0, 0);
  }
  double t0 = rt_test_now_ms();
  for (int i = 0; i < N; i++) {
    char key[16];
    key_of(i, key, sizeof key);
    memset(&many[i], 0, sizeof many[i]);
    cache_get(e.st, key, strlen(key), on_get, &many[i]);
  }
  rt_loop_run(e.loop);
  print_message("%d gets in %.1f ms\n", N, rt_test_now_ms() - t0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(many[i].calls, 1);
    assert_int_equal(many[i].err, 0);
    assert_int_equal(many[i].hit, i % 2 == 0);
  }
  cache_stats_t st;
  cache_stats(e.st, &st);
  assert_int_equal(st.errors, 0);
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

/* Every key is on the server libmemcached itself (KETAMA_WEIGHTED) picks:
 * other libmemcached clients of the same pool find tenure's entries. */
static void test_memcached_ring_is_libmemcached(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  enum { NS = 3 };
  int ports[NS];
  pid_t pids[NS];
  for (int i = 0; i < NS; i++) {
    ports[i] = free_port();
    pids[i] = start_memcached(ports[i]);
  }
  env_t e;
  env_init(&e);
  e.st = pool(&e, ports, NS, "");
  memcached_st *lm = memcached_create(NULL);
  assert_non_null(lm);
  assert_int_equal(
      memcached_behavior_set(lm, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
      MEMCACHED_SUCCESS);
  for (int i = NS - 1; i >= 0; i--) /* listed the other way round */
    assert_int_equal(memcached_server_add(lm, "127.0.0.1", (in_port_t)ports[i]),
                     MEMCACHED_SUCCESS);
  int per[NS] = {0};
  for (int i = 0; i < NKEYS; i++) {
    char key[16];
    key_of(i, key, sizeof key);
    set(&e, key, "1", 0, 0);
    memcached_return_t rc;
    const memcached_instance_st *in =
        memcached_server_by_key(lm, key, strlen(key), &rc);
    assert_non_null(in);
    int want = memcached_server_port(in);
    for (int s = 0; s < NS; s++) {
      assert_int_equal(holds(ports[s], key), ports[s] == want);
      per[s] += ports[s] == want;
    }
    /* And libmemcached reads what tenure wrote. */
    size_t vl = 0;
    uint32_t flags = 0;
    char *v = memcached_get(lm, key, strlen(key), &vl, &flags, &rc);
    assert_int_equal(rc, MEMCACHED_SUCCESS);
    assert_int_equal(vl, 1);
    assert_int_equal(v[0], '1');
    free(v);
  }
  for (int s = 0; s < NS; s++)
    assert_true(per[s] > NKEYS / 10);
  memcached_free(lm);
  cache_close(e.st);
  env_done(&e);
  for (int i = 0; i < NS; i++)
    stop_server(pids[i]);
}

/* A server on PORT that answers every request line with REPLY (NULL:
 * closes each connection at once), in a child process. */
static pid_t start_impostor(int port, const char *reply) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 16), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid > 0) {
    close(fd);
    return pid;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed test */
  for (;;) {
    int c = accept(fd, NULL, NULL);
    if (c < 0)
      continue;
    char buf[4096];
    ssize_t n;
    while (reply != NULL && (n = read(c, buf, sizeof buf)) > 0)
      for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n' && write(c, reply, strlen(reply)) < 0)
          break;
    close(c);
  }
}

static void expect_fails(env_t *e, int want, const char *says) {
  seen_t s;
  double t0 = rt_test_now_ms();
  get(e, "a", &s);
  if (s.err != want)
    fail_msg("got %d (%s), want %d", s.err, cache_store_error(e->st), want);
  assert_true(rt_test_now_ms() - t0 < scale_ms(1500));
  assert_true(clear_error(e->st));
  if (says != NULL && strstr(cache_store_error(e->st), says) == NULL)
    fail_msg("%s: no \"%s\"", cache_store_error(e->st), says);
  print_message("%s\n", cache_store_error(e->st));
  assert_true(set_in(e, e->st, "a", "1", 0) < 0);
}

/* Servers that are not memcached 1.6: each op fails at once with a clear
 * error, none hangs or crashes, and the store closes cleanly. */
static void test_memcached_impostors(void **state) {
  (void)state;
  static const struct {
    const char *reply;
    int err;
    const char *says;
  } cases[] = {
      {"ERROR\r\n", -EPROTO, "no meta protocol"}, /* memcached before 1.6 */
      {"+PONG\r\n", -EPROTO, "not understood"}, /* something else */
      {"VA 99999999999999999999\r\n", -EPROTO, "not understood"},
      {"CLIENT_ERROR bad command line format\r\n", -EPROTO, NULL},
      {"no line end, ever", -ETIMEDOUT, "within"},
      {NULL, -ECONNRESET, NULL}, /* closes at once */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int port = free_port();
    pid_t pid = start_impostor(port, cases[i].reply);
    env_t e;
    env_init(&e);
    e.st = store(&e, "memcached://127.0.0.1:%d?timeout-ms=500", port);
    expect_fails(&e, cases[i].err, cases[i].says);
    cache_close(e.st);
    env_done(&e);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
}

/* A host name is resolved (off the loop) and connected to; one that does
 * not resolve fails the op with a clear error. */
static void test_memcached_host_names(void **state) {
  (void)state;
  SKIP_WITHOUT_MEMCACHED();
  int port = free_port();
  pid_t pid = start_memcached(port);
  env_t e;
  env_init(&e);
  e.st = store(&e, "memcached://localhost:%d", port);
  set(&e, "a", "\"by name\"", 0, 0);
  seen_t s;
  get(&e, "a", &s);
  assert_string_equal(s.json, "\"by name\"");
  cache_close(e.st);
  e.st = store(&e, "memcached://no-such-host.invalid:%d?timeout-ms=3000", port);
  get(&e, "a", &s);
  print_message("%s\n", cache_store_error(e.st));
  assert_true(s.err == -EHOSTUNREACH || s.err == -ETIMEDOUT);
  assert_true(clear_error(e.st));
  cache_close(e.st);
  env_done(&e);
  stop_server(pid);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memcached_basics),
      cmocka_unit_test(test_memcached_ttl),
      cmocka_unit_test(test_memcached_two_servers),
      cmocka_unit_test(test_memcached_kill_and_restart),
      cmocka_unit_test(test_memcached_paused_leaves_ring),
      cmocka_unit_test(test_memcached_single_down),
      cmocka_unit_test(test_memcached_timeout),
      cmocka_unit_test(test_memcached_no_server),
      cmocka_unit_test(test_memcached_urls),
      cmocka_unit_test(test_memcached_entries_bytes),
      cmocka_unit_test(test_memcached_sample_faults),
      cmocka_unit_test(test_memcached_pipeline),
      cmocka_unit_test(test_memcached_ring_is_libmemcached),
      cmocka_unit_test(test_memcached_impostors),
      cmocka_unit_test(test_memcached_host_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
