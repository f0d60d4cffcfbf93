/* store_test.h -- what the cache/ tests share: starting real servers
 * (redis-server, memcached, ...) on free loopback ports as children that
 * die with the test, and driving a store's asynchronous calls to their
 * answer on a loop.  Header-only: each test is one executable. */
#ifndef TENURE_STORE_TEST_H
#define TENURE_STORE_TEST_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "rt_test.h"

#include <tenure/cache.h>
#include <tenure/rt_loop.h>

/* --- Server processes ----------------------------------------------------- */

/* Whether PROG is an executable on PATH. */
static inline bool have_program(const char *prog) {
  const char *path = getenv("PATH");
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path != NULL ? path : "/usr/bin:/bin");
  for (char *save = NULL, *d = strtok_r(buf, ":", &save); d != NULL;
       d = strtok_r(NULL, ":", &save)) {
    char f[4200];
    snprintf(f, sizeof f, "%s/%s", d, prog);
    if (access(f, X_OK) == 0)
      return true;
  }
  return false;
}

static inline int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static inline bool accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

/* Runs ARGV (NULL-terminated; argv[0] looked up on PATH) with its output
 * thrown away, and waits until something accepts on PORT.  The child dies
 * with the test (PR_SET_PDEATHSIG). */
static inline pid_t spawn_server(char *const argv[], int port) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    execvp(argv[0], argv);
    _exit(127);
  }
  for (int i = 0; i < 1000 && !accepts(port); i++)
    usleep(10000);
  if (!accepts(port)) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("%s on port %d does not accept", argv[0], port);
  }
  return pid;
}

/* Pauses a server (SIGSTOP) and waits until it is stopped: a request sent
 * after this returns is not answered before SIGCONT. */
static inline void pause_server(pid_t pid) {
  int status;
  kill(pid, SIGSTOP);
  waitpid(pid, &status, WUNTRACED);
}

/* Kills a server (also a paused one) and reaps it. */
static inline void stop_server(pid_t pid) {
  kill(pid, SIGCONT);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* Starts redis-server on PORT (PASSWORD: --requirepass) and waits until it
 * accepts. */
static inline pid_t start_redis(int port, const char *password) {
  char p[16];
  snprintf(p, sizeof p, "%d", port);
  char *argv[] = {"redis-server",
                  "--port",
                  p,
                  "--bind",
                  "127.0.0.1",
                  "--save",
                  "",
                  "--appendonly",
                  "no",
                  "--daemonize",
                  "no",
                  password != NULL ? "--requirepass" : NULL,
                  (char *)password,
                  NULL};
  return spawn_server(argv, port);
}

/* Starts memcached on PORT (64 MB, no UDP) and waits until it accepts.
 * Run as root, memcached wants to be told to stay root (-u root). */
static inline pid_t start_memcached(int port) {
  char p[16];
  snprintf(p, sizeof p, "%d", port);
  char *argv[] = {
      "memcached", "-l", "127.0.0.1", "-p", p,
      "-U",        "0",  "-m",        "64", getuid() == 0 ? "-u" : NULL,
      "root",      NULL};
  return spawn_server(argv, port);
}

/* --- The store under test ------------------------------------------------- */

typedef struct env_s {
  rt_runtime_t *rt;
  gc_heap_t *h;
  rt_loop_t *loop;
  cache_store_t *st;
} env_t;

static inline void env_init(env_t *e) {
  e->rt = rt_test_runtime();
  e->h = rt_heap(e->rt);
  assert_int_equal(rt_loop_create(e->rt, &e->loop), 0);
  e->st = NULL;
}

static inline cache_store_t *store(env_t *e, const char *fmt, int port) {
  char url[256], err[256];
  snprintf(url, sizeof url, fmt, port);
  cache_store_t *st = NULL;
  int r = cache_open(e->loop, url, &st, err, sizeof err);
  if (r != 0)
    fail_msg("%s: %s", url, err);
  return st;
}

static inline void env_done(env_t *e) {
  rt_loop_run(e->loop); /* the store's handles close */
  assert_int_equal(rt_loop_destroy(e->loop), 0);
  rt_runtime_destroy(e->rt);
}

typedef struct seen_s {
  int calls, err;
  bool hit;
  char json[256];
} seen_t;

static inline void on_get(cache_store_t *st, int err, rt_value_t *v,
                          void *data) {
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

static inline void on_done(cache_store_t *st, int err, void *data) {
  seen_t *s = data;
  (void)st;
  s->calls++;
  s->err = err;
}

static inline rt_value_t *json(env_t *e, const char *text) {
  rt_value_t *v = rt_handle(e->h, RT_NONE);
  assert_int_equal(rt_json_parse(e->rt, text, strlen(text), NULL, v, NULL), 0);
  return v;
}

static inline void get_in(env_t *e, cache_store_t *st, const char *key,
                          seen_t *s) {
  memset(s, 0, sizeof *s);
  cache_get(st, key, strlen(key), on_get, s);
  assert_int_equal(s->calls, 0); /* never from inside the call */
  rt_loop_run(e->loop);
  assert_int_equal(s->calls, 1);
}

static inline void get(env_t *e, const char *key, seen_t *s) {
  get_in(e, e->st, key, s);
}

static inline int set_in(env_t *e, cache_store_t *st, const char *key,
                         const char *text, uint64_t ttl) {
  seen_t s = {0};
  gc_scope_t sc;
  gc_scope_open(e->h, &sc);
  cache_set(st, key, strlen(key), json(e, text), ttl, on_done, &s);
  gc_scope_close(e->h, &sc);
  assert_int_equal(s.calls, 0);
  rt_loop_run(e->loop);
  assert_int_equal(s.calls, 1);
  return s.err;
}

static inline void set(env_t *e, const char *key, const char *text,
                       uint64_t ttl, int want) {
  assert_int_equal(set_in(e, e->st, key, text, ttl), want);
}

static inline int touch(env_t *e, const char *key, uint64_t ttl) {
  seen_t d = {0};
  cache_touch(e->st, key, strlen(key), ttl, on_done, &d);
  assert_int_equal(d.calls, 0);
  rt_loop_run(e->loop);
  assert_int_equal(d.calls, 1);
  return d.err;
}

static inline void stop(rt_loop_t *loop, void *data, rt_value_t *args,
                        size_t nargs) {
  rt_loop_stop(loop);
  (void)data;
  (void)args;
  (void)nargs;
}

/* Runs the loop for MS (an idle store keeps nothing alive; commands
 * waiting for an answer would keep it running past MS). */
static inline void pump(env_t *e, uint64_t ms) {
  assert_int_equal(rt_set_timeout(e->loop, ms, stop, NULL, NULL, 0, NULL), 0);
  rt_loop_run(e->loop);
}

static inline int scale_ms(int ms) {
  return test_under_valgrind() ? ms * 8 : ms;
}

/* Reads ST's stats into *OUT, running the loop meanwhile, until they come
 * from a sample that started after SINCE_MS (rt_test_now_ms) or BOUND_MS
 * have passed.  Returns whether such a sample came.  (counted_ms_ago is
 * whole ms, rounded down, read after `now`: counted + 1 <= now - SINCE
 * means the sample started after SINCE.) */
static inline bool stats_sampled_after(env_t *e, cache_store_t *st,
                                       double since_ms, int bound_ms,
                                       cache_stats_t *out) {
  double end = rt_test_now_ms() + bound_ms;
  for (;;) {
    double now = rt_test_now_ms();
    cache_stats(st, out);
    if (out->counted_ms_ago != UINT64_MAX &&
        (double)out->counted_ms_ago + 1 <= now - since_ms)
      return true;
    if (now > end)
      return false;
    pump(e, 50);
  }
}

/* --- Store fixtures: one per backend ------------------------------------- */

/* A backend under test: what it needs installed, how to start its servers
 * (filling URL), and how to stop, pause and restart them for the fault
 * tests.  A suite that runs "for every backend" loops over
 * store_fixtures[], skipping those whose program is missing. */
typedef struct store_fixture_s store_fixture_t;
struct store_fixture_s {
  const char *name;  /* "memory", "redis", ... */
  const char *needs; /* a program that must be on PATH, or NULL */
  bool remote;       /* its servers can be stopped (the fault tests) */
  bool near_copies;  /* reads it made may be answered in-process while its
                      * server is paused (near+redis://) */
  void (*start)(store_fixture_t *f);   /* starts the servers, sets url */
  void (*restart)(store_fixture_t *f); /* after stop_servers, same ports */
  char url[512];
  pid_t pid[8];
  int port[8];
  int n;
};

static inline void fx_memory_start(store_fixture_t *f) {
  snprintf(f->url, sizeof f->url, "memory://?max-entries=100000");
  f->n = 0;
}

static inline void fx_redis_restart(store_fixture_t *f) {
  f->pid[0] = start_redis(f->port[0], NULL);
}

static inline void fx_redis_start(store_fixture_t *f) {
  f->n = 1;
  f->port[0] = free_port();
  fx_redis_restart(f);
  snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d?timeout-ms=%d",
           f->port[0], test_under_valgrind() ? 4000 : 1000);
}

/* near+redis://: near copies in front of one redis-server. */
static inline void fx_near_start(store_fixture_t *f) {
  fx_redis_start(f);
  snprintf(f->url, sizeof f->url, "near+redis://127.0.0.1:%d?timeout-ms=%d",
           f->port[0], test_under_valgrind() ? 4000 : 1000);
}

/* memcached://: a pool of two servers, keys spread over both. */
static inline void fx_memcached_restart(store_fixture_t *f) {
  for (int i = 0; i < f->n; i++)
    f->pid[i] = start_memcached(f->port[i]);
}

static inline void fx_memcached_start(store_fixture_t *f) {
  f->n = 2;
  f->port[0] = free_port();
  f->pid[0] = start_memcached(f->port[0]);
  f->port[1] = free_port();
  f->pid[1] = start_memcached(f->port[1]);
  snprintf(f->url, sizeof f->url,
           "memcached://127.0.0.1:%d,127.0.0.1:%d?timeout-ms=%d&retry-s=1",
           f->port[0], f->port[1], test_under_valgrind() ? 4000 : 1000);
}

#include "store_cluster.h" /* redis-cluster://'s fixture */

/* Unused by the tests that start their own servers. */
__attribute__((unused)) static store_fixture_t store_fixtures[] = {
    {.name = "memory", .start = fx_memory_start},
    {.name = "redis",
     .needs = "redis-server",
     .remote = true,
     .start = fx_redis_start,
     .restart = fx_redis_restart},
    {.name = "near+redis",
     .needs = "redis-server",
     .remote = true,
     .near_copies = true,
     .start = fx_near_start,
     .restart = fx_redis_restart},
    {.name = "memcached",
     .needs = "memcached",
     .remote = true,
     .start = fx_memcached_start,
     .restart = fx_memcached_restart},
    {.name = "redis-cluster",
     .needs = "redis-cli",
     .remote = true,
     .start = fx_cluster_start,
     .restart = fx_cluster_restart},
};
#define N_STORE_FIXTURES (sizeof store_fixtures / sizeof store_fixtures[0])

static inline bool fixture_available(const store_fixture_t *f) {
  return f->needs == NULL || have_program(f->needs);
}

/* Stops (SIGKILL) every server of F. */
static inline void fixture_stop_servers(store_fixture_t *f) {
  for (int i = 0; i < f->n; i++)
    if (f->pid[i] > 0) {
      stop_server(f->pid[i]);
      f->pid[i] = 0;
    }
}

/* Pauses (SIGSTOP) or resumes (SIGCONT) every server of F. */
static inline void fixture_pause(store_fixture_t *f, bool pause) {
  for (int i = 0; i < f->n; i++)
    if (f->pid[i] > 0 && pause)
      pause_server(f->pid[i]);
    else if (f->pid[i] > 0)
      kill(f->pid[i], SIGCONT);
}
/* The fixture of the group running, for tests run on every store. */
__attribute__((unused)) static store_fixture_t *fx;

static inline int fx_group_setup(void **state) {
  (void)state; /* fx: set before the group runs */
  fx->start(fx);
  return 0;
}

static inline int fx_group_teardown(void **state) {
  (void)state;
  fixture_stop_servers(fx);
  return 0;
}

/* Runs TESTS as one cmocka group per installed store, fx set to it; a
 * store whose server is not installed is skipped.  Returns the failures. */
static inline int run_on_every_store(const struct CMUnitTest *tests, size_t n) {
  int failed = 0;
  for (size_t i = 0; i < N_STORE_FIXTURES; i++) {
    fx = &store_fixtures[i];
    if (!fixture_available(fx)) {
      printf("[ SKIPPED  ] %s: %s is not installed (tools/deps.sh test)\n",
             fx->name, fx->needs);
      continue;
    }
    failed += _cmocka_run_group_tests(fx->name, tests, n, fx_group_setup,
                                      fx_group_teardown);
  }
  return failed;
}
#endif
