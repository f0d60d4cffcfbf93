/* test_session.c -- the session middleware over real sockets, on every
 * store (store_test.h's fixtures: memory://, and each remote store against
 * real servers the test starts): no session for a visitor who stores nothing;
 * login regenerates the id; the cookie's attributes; a tampered or unknown
 * cookie is no session; a modified session is saved before the head goes out
 * (the next request, sent the moment the head arrives, sees it); rolling
 * expiry; two concurrent requests changing different keys both keep their
 * change; logout clears the cookie and the store; secret rotation (on a remote
 * store, sessions also outlive the server process).  Remote stores also:
 * the store stopped or paused gives 503 and a log line within the
 * timeout, never a hang or a request without its session, while routes
 * that touch no session answer; the store back, sessions work again. */
#define _GNU_SOURCE
#include <errno.h>

#include "http_test.h"
#include "store_test.h"

#include <tenure/cache.h>
#include <tenure/cache_session.h>

static cache_store_t *the_store;
static FILE *session_log; /* the middleware's log lines */
static rt_loop_t *loop_of_app;
static const char *secrets_now[2] = {"second-secret", "first-secret"};
static size_t nsecrets = 1;
static uint64_t max_age_ms = 60000;
static uint64_t renew_after_ms = CACHE_SESSION_RENEW_HALF;

static void put_cstr(rt_runtime_t *rt, rt_value_t *map, const char *k,
                     rt_value_t v) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *vh = rt_handle(h, v);
  rt_value_t *kh = rt_handle(h, rt_string_cstr(rt, k));
  rt_map_set(rt, map, kh, vh);
  gc_scope_close(h, &sc);
}

/* POST /login/:user */
static void h_login(rt_value_t *req, void *data) {
  (void)data;
  rt_runtime_t *rt = rt_req_runtime(*req);
  gc_heap_t *h = rt_heap(rt);
  rt_value_t *user =
      rt_handle(h, rt_map_get_cstr(rt_req_get(req, RT_REQ_PARAMS), "user"));
  cache_session_regenerate(req, false);
  rt_value_t *s = rt_handle(h, cache_session_data(req));
  put_cstr(rt, s, "user", *user);
  rt_res_send_string(req, user);
}

/* GET /me: the user, or 401. */
static void h_me(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t u = RT_NONE;
  if (cache_session_exists(*req))
    u = rt_map_get_cstr(cache_session_data(req), "user");
  if (!rt_is_string(u)) {
    rt_res_send_status(req, 401);
    return;
  }
  rt_value_t *uh = rt_handle(rt_heap(rt_req_runtime(*req)), u);
  rt_res_send_string(req, uh);
}

/* GET /get/:key: the session's KEY as JSON ("null" when absent). */
static void h_get(rt_value_t *req, void *data) {
  (void)data;
  gc_heap_t *h = rt_heap(rt_req_runtime(*req));
  rt_value_t *k =
      rt_handle(h, rt_map_get_cstr(rt_req_get(req, RT_REQ_PARAMS), "key"));
  rt_value_t *s = rt_handle(h, cache_session_data(req));
  rt_value_t *v = rt_handle(h, rt_map_get(*s, *k));
  if (*v == RT_NONE)
    *v = RT_NULL;
  rt_res_json(req, v);
}

/* POST /set/:key/:value?delay=MS: sets KEY after DELAY ms (the session was
 * loaded before the wait: two such requests interleave). */
static void set_later(rt_loop_t *loop, void *data, rt_value_t *args,
                      size_t nargs) {
  (void)loop;
  (void)data;
  (void)nargs;
  rt_value_t *req = &args[0];
  rt_runtime_t *rt = rt_req_runtime(*req);
  gc_heap_t *h = rt_heap(rt);
  rt_value_t p = rt_req_get(req, RT_REQ_PARAMS);
  rt_value_t *k = rt_handle(h, rt_map_get_cstr(p, "key"));
  rt_value_t *v = rt_handle(h, rt_map_get_cstr(p, "value"));
  rt_value_t *s = rt_handle(h, cache_session_data(req));
  rt_map_set(rt, s, k, v);
  rt_res_send(req, "ok", 2);
}

static void h_set(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t d = rt_map_get_cstr(rt_req_get(req, RT_REQ_QUERY), "delay");
  int ms = rt_is_string(d) ? atoi(rt_string_data(d)) : 0;
  rt_set_timeout(loop_of_app, (uint64_t)ms, set_later, NULL, req, 1, NULL);
}

static void h_logout(rt_value_t *req, void *data) {
  (void)data;
  cache_session_destroy(req);
  rt_res_send(req, "bye", 3);
}

/* GET /plain: touches no session (mounted before the middleware). */
static void h_plain(rt_value_t *req, void *data) {
  (void)data;
  rt_res_send(req, "plain", 5);
}

static void setup(ht_server_t *hs, rt_app_t *app) {
  loop_of_app = hs->loop;
  char err[128];
  if (cache_open(hs->loop, fx->url, &the_store, err, sizeof err) != 0)
    fail_msg("%s: %s", fx->url, err);
  cache_session_opts_t o;
  cache_session_opts_init(&o);
  o.secrets = secrets_now;
  o.nsecrets = nsecrets;
  o.max_age_ms = max_age_ms;
  o.renew_after_ms = renew_after_ms;
  o.log = session_log;
  assert_int_equal(rt_app_get(app, "/plain", h_plain, NULL), 0);
  assert_int_equal(cache_session(app, the_store, &o), 0);
  assert_int_equal(rt_app_post(app, "/login/:user", h_login, NULL), 0);
  assert_int_equal(rt_app_get(app, "/me", h_me, NULL), 0);
  assert_int_equal(rt_app_get(app, "/get/:key", h_get, NULL), 0);
  assert_int_equal(rt_app_post(app, "/set/:key/:value", h_set, NULL), 0);
  assert_int_equal(rt_app_post(app, "/logout", h_logout, NULL), 0);
}

static void stop_app(ht_server_t *hs) {
  /* The store closes on the server's thread: after the loop stopped. */
  uv_async_send(&hs->stop);
  pthread_join(hs->th, NULL);
  cache_close(the_store);
  rt_loop_run(hs->loop);
  rt_server_destroy(hs->s);
  assert_int_equal(rt_loop_destroy(hs->loop), 0);
  rt_app_destroy(hs->app);
  rt_runtime_destroy(hs->rt);
  free(hs);
}

/* The "sid=..." of a response's Set-Cookie into COOKIE (for a Cookie
 * header), and its attributes into ATTRS; false when there is none. */
static bool sid_of(const ht_resp_t *r, char *cookie, size_t cap, char *attrs,
                   size_t acap) {
  char v[512];
  if (ht_header(r, "set-cookie", v, sizeof v) == NULL)
    return false;
  char *semi = strchr(v, ';');
  size_t n = semi != NULL ? (size_t)(semi - v) : strlen(v);
  snprintf(cookie, cap, "%.*s", (int)n, v);
  snprintf(attrs, acap, "%s", semi != NULL ? semi : "");
  return true;
}

static void req_with(int port, const char *method, const char *path,
                     const char *cookie, ht_resp_t *r) {
  char buf[1024];
  snprintf(buf, sizeof buf,
           "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n%s%s%s\r\n",
           method, path, cookie != NULL ? "Cookie: " : "",
           cookie != NULL ? cookie : "", cookie != NULL ? "\r\n" : "");
  ht_request(port, buf, r);
}

static void test_session_flow(void **state) {
  (void)state;
  nsecrets = 1;
  ht_server_t *hs = ht_start(setup, NULL, NULL);
  int p = hs->port;
  ht_resp_t r;
  char cookie[256], attrs[256], v[128];
  /* A visitor who stores nothing gets no cookie and no entry. */
  req_with(p, "GET", "/me", NULL, &r);
  assert_int_equal(r.status, 401);
  assert_null(ht_header(&r, "set-cookie", v, sizeof v));
  ht_resp_free(&r);
  /* Login: a session, its cookie with the default attributes. */
  req_with(p, "POST", "/login/ada", NULL, &r);
  assert_int_equal(r.status, 200);
  assert_true(sid_of(&r, cookie, sizeof cookie, attrs, sizeof attrs));
  assert_true(strncmp(cookie, "sid=", 4) == 0);
  assert_non_null(strstr(attrs, "HttpOnly"));
  assert_non_null(strstr(attrs, "SameSite=Lax"));
  assert_non_null(strstr(attrs, "Max-Age=60"));
  assert_null(strstr(attrs, "Secure"));
  ht_resp_free(&r);
  req_with(p, "GET", "/me", cookie, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "ada");
  /* Within its first half-life a read sends no cookie (test_session_renewal
   * has the renewals). */
  assert_null(ht_header(&r, "set-cookie", v, sizeof v));
  ht_resp_free(&r);
  /* A tampered cookie, an unknown id: no session. */
  char bad[256];
  snprintf(bad, sizeof bad, "%s", cookie);
  bad[6] = bad[6] == 'A' ? 'B' : 'A';
  req_with(p, "GET", "/me", bad, &r);
  assert_int_equal(r.status, 401);
  ht_resp_free(&r);
  /* Login again from that session: a new id (no fixation), the old one
   * is gone from the store. */
  req_with(p, "POST", "/login/bob", cookie, &r);
  char cookie2[256];
  assert_true(sid_of(&r, cookie2, sizeof cookie2, attrs, sizeof attrs));
  assert_string_not_equal(cookie, cookie2);
  ht_resp_free(&r);
  req_with(p, "GET", "/me", cookie, &r);
  assert_int_equal(r.status, 401);
  ht_resp_free(&r);
  req_with(p, "GET", "/me", cookie2, &r);
  assert_string_equal(r.body, "bob");
  ht_resp_free(&r);
  /* Saved before the head: the next request, sent as soon as the answer
   * arrives, on the same connection, sees the change. */
  ht_conn_t *c = ht_connect(p);
  for (int i = 0; i < 20; i++) {
    char rq[1024];
    snprintf(rq, sizeof rq,
             "POST /set/n/%d HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n"
             "Content-Length: 0\r\n\r\n"
             "GET /get/n HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n",
             i, cookie2, cookie2);
    ht_sends(c, rq);
    assert_int_equal(ht_read_response(c, &r, false), 0);
    ht_resp_free(&r);
    assert_int_equal(ht_read_response(c, &r, false), 0);
    char want[16];
    snprintf(want, sizeof want, "\"%d\"", i);
    assert_string_equal(r.body, want);
    ht_resp_free(&r);
  }
  ht_close(c);
  /* Two concurrent requests changing different keys: both kept. */
  ht_conn_t *a = ht_connect(p), *b = ht_connect(p);
  char rq[1024];
  snprintf(rq, sizeof rq,
           "POST /set/a/1?delay=80 HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n"
           "Content-Length: 0\r\n\r\n",
           cookie2);
  ht_sends(a, rq);
  usleep(20000);
  snprintf(rq, sizeof rq,
           "POST /set/b/2?delay=0 HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n"
           "Content-Length: 0\r\n\r\n",
           cookie2);
  ht_sends(b, rq);
  assert_int_equal(ht_read_response(b, &r, false), 0);
  ht_resp_free(&r);
  assert_int_equal(ht_read_response(a, &r, false), 0);
  ht_resp_free(&r);
  ht_close(a);
  ht_close(b);
  req_with(p, "GET", "/get/a", cookie2, &r);
  assert_string_equal(r.body, "\"1\"");
  ht_resp_free(&r);
  req_with(p, "GET", "/get/b", cookie2, &r);
  assert_string_equal(r.body, "\"2\"");
  ht_resp_free(&r);
  req_with(p, "GET", "/me", cookie2, &r);
  assert_string_equal(r.body, "bob");
  ht_resp_free(&r);
  /* Logout: cookie cleared, the session gone. */
  req_with(p, "POST", "/logout", cookie2, &r);
  assert_int_equal(r.status, 200);
  assert_true(sid_of(&r, cookie, sizeof cookie, attrs, sizeof attrs));
  assert_string_equal(cookie, "sid=");
  assert_non_null(strstr(attrs, "Max-Age=0"));
  ht_resp_free(&r);
  req_with(p, "GET", "/me", cookie2, &r);
  assert_int_equal(r.status, 401);
  ht_resp_free(&r);
  if (!fx->remote) {
    cache_stats_t st;
    cache_stats(the_store, &st);
    assert_int_equal(st.entries, 0);
  }
  stop_app(hs);
}

/* Rotation: a cookie signed with the old secret is accepted by a server
 * that signs with a new one first. */
static void test_session_rotation(void **state) {
  (void)state;
  secrets_now[0] = "first-secret";
  nsecrets = 1;
  ht_server_t *hs = ht_start(setup, NULL, NULL);
  ht_resp_t r;
  char cookie[256], attrs[256];
  req_with(hs->port, "POST", "/login/eve", NULL, &r);
  assert_true(sid_of(&r, cookie, sizeof cookie, attrs, sizeof attrs));
  ht_resp_free(&r);
  req_with(hs->port, "GET", "/me", cookie, &r);
  assert_string_equal(r.body, "eve");
  ht_resp_free(&r);
  stop_app(hs);
  /* A new server signing with a new secret first: the old cookie's
   * signature checks under either secret. */
  secrets_now[0] = "second-secret";
  secrets_now[1] = "first-secret";
  if (fx->remote) {
    /* On a remote store the session itself outlives the process. */
    nsecrets = 2;
    hs = ht_start(setup, NULL, NULL);
    req_with(hs->port, "GET", "/me", cookie, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "eve");
    ht_resp_free(&r);
    stop_app(hs);
    nsecrets = 1;
    hs = ht_start(setup, NULL, NULL); /* the new secret alone */
    req_with(hs->port, "GET", "/me", cookie, &r);
    assert_int_equal(r.status, 401);
    ht_resp_free(&r);
    stop_app(hs);
  }
  char value[200];
  int n = rt_cookie_unsign(cookie + 4, strlen(cookie + 4),
                           (const char *const *)secrets_now, 2);
  assert_int_equal(n, 22);
  n = rt_cookie_unsign(cookie + 4, strlen(cookie + 4),
                       (const char *const *)secrets_now, 1);
  assert_int_equal(n, -EACCES);
  (void)value;
}

/* Renewal: on every request (renew_after_ms 0, express's rolling: true);
 * else once the renewal period has passed, recorded in the store so the
 * next read sends no cookie again; an idle session expires with its TTL;
 * a renewal period past max_age is refused. */
static void test_session_renewal(void **state) {
  (void)state;
  nsecrets = 1;
  ht_resp_t r;
  char cookie[256], attrs[256], v[256];
  /* Every request. */
  renew_after_ms = 0;
  ht_server_t *hs = ht_start(setup, NULL, NULL);
  req_with(hs->port, "POST", "/login/kim", NULL, &r);
  assert_true(sid_of(&r, cookie, sizeof cookie, attrs, sizeof attrs));
  ht_resp_free(&r);
  for (int i = 0; i < 3; i++) {
    req_with(hs->port, "GET", "/me", cookie, &r);
    assert_string_equal(r.body, "kim");
    assert_true(sid_of(&r, v, sizeof v, attrs, sizeof attrs));
    assert_string_equal(v, cookie); /* the same id, renewed */
    assert_non_null(strstr(attrs, "Max-Age=60"));
    ht_resp_free(&r);
  }
  stop_app(hs);
  /* After a period. */
  const int period = scale_ms(300);
  renew_after_ms = (uint64_t)period;
  hs = ht_start(setup, NULL, NULL);
  req_with(hs->port, "POST", "/login/lee", NULL, &r);
  assert_true(sid_of(&r, cookie, sizeof cookie, attrs, sizeof attrs));
  ht_resp_free(&r);
  req_with(hs->port, "GET", "/me", cookie, &r);
  assert_string_equal(r.body, "lee");
  assert_null(ht_header(&r, "set-cookie", v, sizeof v));
  ht_resp_free(&r);
  usleep((useconds_t)(period + period / 2) * 1000);
  req_with(hs->port, "GET", "/me", cookie, &r);
  assert_string_equal(r.body, "lee");
  assert_true(sid_of(&r, v, sizeof v, attrs, sizeof attrs));
  assert_string_equal(v, cookie);
  assert_non_null(strstr(attrs, "Max-Age=60"));
  ht_resp_free(&r);
  req_with(hs->port, "GET", "/me", cookie, &r); /* just renewed: none */
  assert_string_equal(r.body, "lee");
  assert_null(ht_header(&r, "set-cookie", v, sizeof v));
  ht_resp_free(&r);
  stop_app(hs);
  /* Idle: gone with its TTL (1 s; memcached counts whole seconds). */
  max_age_ms = 1000;
  renew_after_ms = CACHE_SESSION_RENEW_HALF;
  hs = ht_start(setup, NULL, NULL);
  req_with(hs->port, "POST", "/login/max", NULL, &r);
  assert_true(sid_of(&r, cookie, sizeof cookie, attrs, sizeof attrs));
  assert_non_null(strstr(attrs, "Max-Age=1"));
  ht_resp_free(&r);
  usleep(2500 * 1000);
  req_with(hs->port, "GET", "/me", cookie, &r);
  assert_int_equal(r.status, 401);
  ht_resp_free(&r);
  stop_app(hs);
  max_age_ms = 60000;
  /* A period longer than the lifetime. */
  rt_runtime_t *rt = rt_test_runtime();
  rt_loop_t *loop;
  assert_int_equal(rt_loop_create(rt, &loop), 0);
  cache_store_t *mem;
  assert_int_equal(cache_open(loop, "memory://", &mem, NULL, 0), 0);
  rt_app_t *app;
  assert_int_equal(rt_app_create(rt, &app), 0);
  cache_session_opts_t o;
  cache_session_opts_init(&o);
  o.secrets = secrets_now;
  o.nsecrets = 1;
  o.max_age_ms = 1000;
  o.renew_after_ms = 2000;
  assert_int_equal(cache_session(app, mem, &o), -EINVAL);
  o.renew_after_ms = 1000;
  assert_int_equal(cache_session(app, mem, &o), 0);
  rt_app_destroy(app);
  cache_close(mem);
  rt_loop_run(loop);
  assert_int_equal(rt_loop_destroy(loop), 0);
  rt_runtime_destroy(rt);
}

/* How many times the session log holds NEEDLE (written by the server's
 * thread, flushed per line: read through the descriptor). */
static int log_count(const char *needle) {
  static char buf[1 << 16];
  ssize_t n = pread(fileno(session_log), buf, sizeof buf - 1, 0);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  int k = 0;
  for (const char *q = buf; (q = strstr(q, needle)) != NULL; q++)
    k++;
  return k;
}

static long ms_since(uint64_t t0) {
  return (long)((uv_hrtime() - t0) / 1000000u);
}

/* The store stopped, then paused, then back, under a server that stays up:
 * requests that need the store get 503 (and a log line) within the store's
 * timeout, never a hang or a request run without its session; requests
 * that need no store answer; once it is back, sessions work again. */
static void test_session_store_faults(void **state) {
  (void)state;
  if (!fx->remote) {
    print_message("%s: no server to stop\n", fx->name);
    skip();
  }
  nsecrets = 1;
  ht_server_t *hs = ht_start(setup, NULL, NULL);
  int p = hs->port;
  ht_resp_t r;
  char cookie[256], attrs[256];
  req_with(p, "POST", "/login/ann", NULL, &r);
  assert_int_equal(r.status, 200);
  assert_true(sid_of(&r, cookie, sizeof cookie, attrs, sizeof attrs));
  ht_resp_free(&r);
  const long bound = scale_ms(6000);
  int lines0 = log_count("503: session store: ");
  for (int phase = 0; phase < 2; phase++) {
    if (phase == 1 && fx->near_copies) {
      /* The session read until it is answered from a near copy (the
       * subscriber is back from phase 0's restart). */
      bool near = false;
      for (int i = 0; i < 500 && !near; i++) {
        cache_stats_t a, b;
        cache_stats(the_store, &a);
        req_with(p, "GET", "/me", cookie, &r);
        assert_int_equal(r.status, 200);
        ht_resp_free(&r);
        cache_stats(the_store, &b);
        near = b.near_hits > a.near_hits;
        if (!near)
          usleep(10 * 1000);
      }
      assert_true(near);
    }
    if (phase == 0)
      fixture_stop_servers(fx);
    else
      fixture_pause(fx, true);
    uint64_t t0 = uv_hrtime();
    req_with(p, "GET", "/me", cookie, &r);
    /* A paused Redis changes nothing, and its invalidation connection
     * stands: near+redis:// answers a session it read from its near copy.
     * A stopped one drops the connection, and with it every copy. */
    assert_int_equal(r.status, phase == 1 && fx->near_copies ? 200 : 503);
    assert_true(ms_since(t0) < bound);
    ht_resp_free(&r);
    t0 = uv_hrtime();
    req_with(p, "POST", "/login/zed", NULL, &r);
    assert_int_equal(r.status, 503);
    assert_true(ms_since(t0) < bound);
    ht_resp_free(&r);
    req_with(p, "GET", "/plain", NULL, &r);
    assert_int_equal(r.status, 200);
    ht_resp_free(&r);
    req_with(p, "GET", "/plain", cookie, &r); /* no session needed */
    assert_int_equal(r.status, 200);
    ht_resp_free(&r);
    req_with(p, "GET", "/me", NULL, &r); /* no cookie: no store asked */
    assert_int_equal(r.status, 401);
    ht_resp_free(&r);
    if (phase == 0)
      fx->restart(fx);
    else
      fixture_pause(fx, false);
    /* Back: a login works again (after a restart the old session is gone
     * with the server's memory; after a pause it is still there). */
    bool back = false;
    for (int i = 0; i < 100 && !back; i++) {
      req_with(p, "POST", "/login/ann", NULL, &r);
      back = r.status == 200;
      if (back)
        assert_true(sid_of(&r, cookie, sizeof cookie, attrs, sizeof attrs));
      ht_resp_free(&r);
      if (!back)
        usleep(100 * 1000);
    }
    assert_true(back);
    req_with(p, "GET", "/me", cookie, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ann");
    ht_resp_free(&r);
  }
  stop_app(hs);
  /* One line per failed request: two in each phase (one in the paused
   * phase of near+redis://). */
  assert_true(log_count("503: session store: ") >=
              lines0 + (fx->near_copies ? 3 : 4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_session_flow),
      cmocka_unit_test(test_session_rotation),
      cmocka_unit_test(test_session_renewal),
      cmocka_unit_test(test_session_store_faults),
  };
  session_log = tmpfile();
  int failed = run_on_every_store(tests, sizeof tests / sizeof tests[0]);
  fclose(session_log);
  return failed;
}
