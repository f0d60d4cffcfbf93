/* test_near.c -- near+redis:// against a real redis-server the test starts:
 * reads answered from the near copy once made; a copy dropped when another
 * store writes the key, when a plain client (hiredis, as redis-cli would)
 * writes it, when its TTL passes in Redis, on FLUSHALL; the subscriber
 * connection killed (copies dropped, reads go to Redis, nothing stale, near
 * hits again once it is back); Redis stopped (clear errors, no copy served)
 * and restarted; bad URLs.  The contract suite (test_store_contract.c) runs
 * on it too.  Skipped when redis-server is not installed. */
#include <hiredis/hiredis.h>

#include <dirent.h>
#include <netinet/tcp.h>

#include "store_test.h"

#define SKIP_WITHOUT_REDIS()                                                   \
  do {                                                                         \
    if (!have_program("redis-server")) {                                       \
      print_message("redis-server is not installed (tools/deps.sh test)\n");   \
      skip();                                                                  \
    }                                                                          \
  } while (0)

#define URL "near+redis://127.0.0.1:%d?timeout-ms=2000"

static uint64_t near_hits(cache_store_t *st) {
  cache_stats_t s;
  cache_stats(st, &s);
  return s.near_hits;
}

/* Reads KEY from ST until the answer is a near hit (the subscription is
 * live and the copy made), at most 5 s.  Returns the last answer. */
static seen_t read_until_near(env_t *e, cache_store_t *st, const char *key) {
  seen_t s;
  for (int i = 0; i < 500; i++) {
    uint64_t before = near_hits(st);
    get_in(e, st, key, &s);
    if (near_hits(st) > before)
      return s;
    pump(e, 10);
  }
  fail_msg("%s never became a near hit", key);
  return s;
}

/* Reads KEY from ST until its JSON is WANT (an empty WANT: a miss), at most
 * MS.  Returns the ms it took. */
static int read_until(env_t *e, cache_store_t *st, const char *key,
                      const char *want, int ms) {
  seen_t s;
  for (int t = 0; t <= ms; t += 5) {
    get_in(e, st, key, &s);
    assert_int_equal(s.err, 0);
    if ((want[0] == '\0' && !s.hit) ||
        (s.hit && strcmp(s.json, want) == 0))
      return t;
    pump(e, 5);
  }
  fail_msg("%s: still %s after %d ms, not %s", key, s.hit ? s.json : "a miss",
           ms, want[0] ? want : "a miss");
  return -1;
}

static void redis_cmd(int port, const char *cmd) {
  redisContext *c = redisConnect("127.0.0.1", port);
  assert_non_null(c);
  assert_int_equal(c->err, 0);
  redisReply *r = redisCommand(c, cmd);
  assert_non_null(r);
  assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
  freeReplyObject(r);
  redisFree(c);
}

/* --- Tests ---------------------------------------------------------------- */

static void test_near_hits_and_writes_elsewhere(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  cache_store_t *a = store(&e, URL, port);
  cache_store_t *b = store(&e, URL, port);
  e.st = a;
  assert_int_equal(set_in(&e, a, "k", "{\"v\":1}", 0), 0);
  /* b reads it from Redis, then from its near copy. */
  seen_t s = read_until_near(&e, b, "k");
  assert_true(s.hit);
  assert_string_equal(s.json, "{\"v\":1}");
  uint64_t h = near_hits(b);
  get_in(&e, b, "k", &s);
  assert_string_equal(s.json, "{\"v\":1}");
  assert_int_equal(near_hits(b), h + 1);
  /* Another store writes: b's copy goes, b reads the new value. */
  assert_int_equal(set_in(&e, a, "k", "{\"v\":2}", 0), 0);
  int took = read_until(&e, b, "k", "{\"v\":2}", scale_ms(1000));
  print_message("another store's write seen after %d ms\n", took);
  /* A plain client writes (not a tenure store at all). */
  read_until_near(&e, b, "k");
  redis_cmd(port, "SET k {\"v\":3}");
  read_until(&e, b, "k", "{\"v\":3}", scale_ms(1000));
  /* A delete elsewhere. */
  read_until_near(&e, b, "k");
  seen_t d = {0};
  cache_del(a, "k", 1, on_done, &d);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, 0);
  read_until(&e, b, "k", "", scale_ms(1000));
  /* Its own write: the next read gives the new value at once. */
  assert_int_equal(set_in(&e, b, "own", "[1]", 0), 0);
  read_until_near(&e, b, "own");
  assert_int_equal(set_in(&e, b, "own", "[2]", 0), 0);
  get_in(&e, b, "own", &s);
  assert_string_equal(s.json, "[2]");
  /* FLUSHALL drops every copy. */
  read_until_near(&e, b, "own");
  redis_cmd(port, "FLUSHALL");
  read_until(&e, b, "own", "", scale_ms(1000));
  cache_stats_t st;
  cache_stats(b, &st);
  assert_true(st.hits >= st.near_hits);
  assert_true(st.max_entries > 0); /* the near level's bound */
  cache_close(a);
  cache_close(b);
  env_done(&e);
  stop_server(pid);
}

static void test_near_ttl(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  cache_store_t *a = store(&e, URL, port);
  e.st = a;
  /* A copy expires with Redis's entry, not at near-ttl-ms. */
  int ttl = scale_ms(400);
  assert_int_equal(set_in(&e, a, "t", "\"short\"", (uint64_t)ttl), 0);
  read_until_near(&e, a, "t");
  pump(&e, (uint64_t)ttl + 50);
  seen_t s;
  get_in(&e, a, "t", &s);
  assert_false(s.hit);
  /* near-ttl-ms bounds a copy of an entry with no expiry. */
  cache_store_t *c = store(&e, URL "&near-ttl-ms=200", port);
  assert_int_equal(set_in(&e, c, "forever", "1", 0), 0);
  read_until_near(&e, c, "forever");
  pump(&e, 250);
  uint64_t h = near_hits(c);
  get_in(&e, c, "forever", &s);
  assert_true(s.hit);
  assert_int_equal(near_hits(c), h); /* from Redis again */
  /* A touch drops the copy (it carries the old expiry). */
  read_until_near(&e, c, "forever");
  seen_t d = {0};
  cache_touch(c, "forever", 7, 60000, on_done, &d);
  rt_loop_run(e.loop);
  assert_int_equal(d.err, 0);
  h = near_hits(c);
  get_in(&e, c, "forever", &s);
  assert_int_equal(near_hits(c), h);
  cache_close(a);
  cache_close(c);
  env_done(&e);
  stop_server(pid);
}

/* This process's TCP sockets connected to PORT: how many, and how many
 * have keepalive on with an idle time of at most IDLE_MAX seconds. */
static void sockets_to(int port, int idle_max, int *total, int *alive) {
  *total = *alive = 0;
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  for (struct dirent *de; (de = readdir(d)) != NULL;) {
    int fd = atoi(de->d_name);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    if (de->d_name[0] == '.' || fd == dirfd(d) ||
        getpeername(fd, (struct sockaddr *)&a, &al) != 0 ||
        a.sin_family != AF_INET || ntohs(a.sin_port) != port)
      continue;
    (*total)++;
    int on = 0, idle = 0;
    socklen_t l1 = sizeof on, l2 = sizeof idle;
    if (getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &l1) == 0 && on &&
        getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &l2) == 0 &&
        idle <= idle_max)
      (*alive)++;
  }
  closedir(d);
}

static void test_near_subscriber_lost(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  cache_store_t *b = store(&e, URL, port);
  e.st = b;
  assert_int_equal(set_in(&e, b, "k", "\"old\"", 0), 0);
  read_until_near(&e, b, "k");
  /* Both connections (commands and the subscriber, which only waits) have
   * TCP keepalive on, so a peer gone without a word is noticed. */
  int total, alive;
  sockets_to(port, 15, &total, &alive);
  assert_int_equal(total, 2);
  assert_int_equal(alive, 2);
  /* The subscriber goes: its copies go with it, and a write made while it
   * is away (no message can tell of it) is seen at once. */
  redis_cmd(port, "CLIENT KILL TYPE pubsub");
  redis_cmd(port, "SET k \"new\"");
  pump(&e, 20);
  seen_t s;
  uint64_t h = near_hits(b);
  get_in(&e, b, "k", &s);
  assert_string_equal(s.json, "\"new\"");
  assert_int_equal(near_hits(b), h);
  /* It comes back (backoff from 100 ms): near hits again, and messages
   * again. */
  s = read_until_near(&e, b, "k");
  assert_string_equal(s.json, "\"new\"");
  redis_cmd(port, "SET k \"newer\"");
  read_until(&e, b, "k", "\"newer\"", scale_ms(1000));
  cache_stats_t st;
  cache_stats(b, &st);
  assert_true(st.reconnects >= 1);
  cache_close(b);
  env_done(&e);
  stop_server(pid);
}

static void test_near_redis_down(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  cache_store_t *b = store(&e, URL, port);
  e.st = b;
  assert_int_equal(set_in(&e, b, "k", "\"v\"", 0), 0);
  read_until_near(&e, b, "k");
  stop_server(pid);
  pump(&e, 50);
  /* No copy is served while Redis is gone: a clear error. */
  seen_t s;
  get_in(&e, b, "k", &s);
  assert_true(s.err == -ENOTCONN || s.err == -ECONNRESET);
  assert_false(s.hit);
  assert_true(strlen(cache_store_error(b)) > 0);
  assert_int_not_equal(set_in(&e, b, "k", "\"w\"", 0), 0);
  /* Back (empty: no persistence): misses, then near hits again. */
  pid = start_redis(port, NULL);
  int ok = 0;
  for (int i = 0; i < 600 && !ok; i++) {
    pump(&e, 10);
    ok = set_in(&e, b, "k", "\"back\"", 0) == 0;
  }
  assert_true(ok);
  s = read_until_near(&e, b, "k");
  assert_string_equal(s.json, "\"back\"");
  cache_close(b);
  env_done(&e);
  stop_server(pid);
}

static void test_near_close_in_flight(void **state) {
  (void)state;
  SKIP_WITHOUT_REDIS();
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  env_t e;
  env_init(&e);
  cache_store_t *b = store(&e, URL, port);
  e.st = b;
  assert_int_equal(set_in(&e, b, "k", "1", 0), 0);
  read_until_near(&e, b, "k");
  enum { N = 50 };
  static seen_t s[N];
  memset(s, 0, sizeof s);
  for (int i = 0; i < N; i++)
    cache_get(b, i % 2 ? "k" : "other", i % 2 ? 1 : 5, on_get, &s[i]);
  cache_close(b); /* every one answered once, from the loop */
  for (int i = 0; i < N; i++)
    assert_int_equal(s[i].calls, 0);
  rt_loop_run(e.loop);
  for (int i = 0; i < N; i++) {
    assert_int_equal(s[i].calls, 1);
    assert_int_equal(s[i].err, -ECANCELED);
  }
  env_done(&e);
  stop_server(pid);
}

static void test_near_bad_urls(void **state) {
  (void)state;
  env_t e;
  env_init(&e);
  const char *bad[] = {
      "near+redis://127.0.0.1:1?near-entries=0",
      "near+redis://127.0.0.1:1?near-entries=x",
      "near+redis://127.0.0.1:1?near-ttl-ms=-1",
      "near+redis://127.0.0.1:1?near-colour=blue",
      "near+redis://127.0.0.1:99999",
      "near+redis://127.0.0.1:1?timeout-ms=0",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cache_store_t *st = NULL;
    char err[256] = "";
    assert_int_equal(cache_open(e.loop, bad[i], &st, err, sizeof err),
                     -EINVAL);
    assert_null(st);
    assert_true(strlen(err) > 0);
  }
  /* A good one with every parameter (nothing listens: it opens, and
   * answers errors). */
  cache_store_t *st = NULL;
  char err[256] = "";
  assert_int_equal(
      cache_open(e.loop,
                 "near+redis://127.0.0.1:1/2?timeout-ms=100&near-entries=5"
                 "&near-bytes=64k&near-ttl-ms=10&near-prefix=app%3A",
                 &st, err, sizeof err),
      0);
  seen_t s;
  get_in(&e, st, "k", &s);
  assert_true(s.err < 0);
  cache_close(st);
  env_done(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_near_hits_and_writes_elsewhere),
      cmocka_unit_test(test_near_ttl),
      cmocka_unit_test(test_near_subscriber_lost),
      cmocka_unit_test(test_near_redis_down),
      cmocka_unit_test(test_near_close_in_flight),
      cmocka_unit_test(test_near_bad_urls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
