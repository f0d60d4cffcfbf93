/* test_server.c -- the HTTP/1.1 server over real sockets: keep-alive,
 * pipelining in order, every split point, routing (404, 405 + Allow,
 * OPTIONS, HEAD, params, mounts), middleware and error handlers, answers
 * from later callbacks, request bodies (Content-Length, chunked, Expect:
 * 100-continue), framing errors and limits with their statuses, each
 * timeout, streaming with backpressure, and the graceful stop. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>

#include "http_test.h"

#include <tenure/rt_loop.h>

/* --- The application under test -------------------------------------------- */

static void h_hello(rt_value_t *req, void *data) {
  (void)data;
  rt_res_send(req, "hello world\n", 12);
}

/* /n/:i answers "i" (pipelining order). */
static void h_num(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t params = rt_req_get(req, RT_REQ_PARAMS);
  rt_value_t i = rt_map_get_cstr(params, "i");
  if (!rt_is_string(i)) {
    rt_res_send_status(req, 500);
    return;
  }
  rt_value_t *ih = rt_handle(rt_heap(rt_req_runtime(*req)), i);
  rt_res_send_string(req, ih);
}

static void h_user(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t params = rt_req_get(req, RT_REQ_PARAMS);
  rt_value_t n = rt_map_get_cstr(params, "name");
  char out[256];
  snprintf(out, sizeof out, "user=%s", rt_string_data(n));
  rt_res_send(req, out, strlen(out));
}

static void h_rest(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t n = rt_map_get_cstr(rt_req_get(req, RT_REQ_PARAMS), "0");
  char out[256];
  snprintf(out, sizeof out, "rest=%s", rt_string_data(n));
  rt_res_send(req, out, strlen(out));
}

static void h_post_user(rt_value_t *req, void *data) {
  (void)data;
  rt_res_status(req, 201);
  rt_res_send(req, "created", 7);
}

/* Middleware: counts, sets a header, passes on. */
static int mw_calls;
static void mw_mark(rt_value_t *req, void *data) {
  (void)data;
  mw_calls++;
  rt_res_set_header(req, "X-Mark", "1");
  rt_next(req, 0);
}

static void h_fail(rt_value_t *req, void *data) {
  (void)data;
  rt_next(req, 409);
}

static void h_fail_errno(rt_value_t *req, void *data) {
  (void)data;
  rt_next(req, -EIO);
}

static void e_handler(rt_value_t *req, int err, void *data) {
  (void)data;
  char out[64];
  snprintf(out, sizeof out, "handled %d", err);
  rt_res_status(req, err > 0 ? err : 500);
  rt_res_send(req, out, strlen(out));
}

/* Answers after a timer: the request travels as a value the loop roots. */
static void later_cb(rt_loop_t *loop, void *data, rt_value_t *args,
                     size_t nargs) {
  (void)loop;
  (void)data;
  assert_int_equal(nargs, 1);
  gc_heap_t *h = rt_heap(rt_loop_runtime(loop));
  /* Garbage between scheduling and answering moves the request. */
  for (int i = 0; i < 2000; i++)
    rt_string_cstr(rt_loop_runtime(loop), "garbage garbage garbage");
  (void)h;
  rt_res_send(&args[0], "later", 5);
}

static rt_loop_t *app_loop;
static void h_later(rt_value_t *req, void *data) {
  (void)data;
  if (rt_set_timeout(app_loop, 20, later_cb, NULL, req, 1, NULL) != 0)
    rt_res_send_status(req, 500);
}

static void h_never(rt_value_t *req, void *data) {
  (void)req;
  (void)data; /* never answers: the handler timeout does */
}

/* Body echo: collects the body, answers its length and bytes. */
typedef struct body_s {
  char *p;
  size_t n;
} body_t;

static void body_cb(rt_value_t *req, const char *d, size_t n, int st,
                    void *ud) {
  body_t *b = ud;
  if (st == 0) {
    b->p = realloc(b->p, b->n + n + 1);
    memcpy(b->p + b->n, d, n);
    b->n += n;
    return;
  }
  if (st == RT_BODY_END) {
    char head[64];
    snprintf(head, sizeof head, "%zu:", b->n);
    size_t hl = strlen(head);
    char *out = malloc(hl + b->n + 1);
    memcpy(out, head, hl);
    if (b->n > 0)
      memcpy(out + hl, b->p, b->n);
    rt_res_send(req, out, hl + b->n);
    free(out);
  }
  free(b->p);
  free(b);
}

static void h_echo_body(rt_value_t *req, void *data) {
  (void)data;
  body_t *b = calloc(1, sizeof *b);
  if (rt_req_read(req, body_cb, b) != 0)
    rt_res_send_status(req, 500);
}

/* Headers and query as the handler sees them. */
static void h_headers(rt_value_t *req, void *data) {
  (void)data;
  /* rt_req_get builds the query on first use (a GC point): before reading
   * raw values. */
  rt_value_t q = rt_req_get(req, RT_REQ_QUERY);
  rt_value_t *hs = rt_handle(rt_heap(rt_req_runtime(*req)),
                             rt_req_get(req, RT_REQ_HEADERS));
  rt_value_t x = rt_map_get_cstr(*hs, "x-multi");
  rt_value_t ua = rt_map_get_cstr(*hs, "user-agent");
  rt_value_t a = rt_map_get_cstr(q, "a");
  char out[512];
  snprintf(out, sizeof out, "multi=%s ua=%s a=%s%s",
           rt_is_string(x) ? rt_string_data(x) : "-",
           rt_is_string(rt_map_get_cstr(*hs, "user-agent"))
               ? rt_string_data(ua)
               : "-",
           rt_is_array(a) ? "array:" : "",
           rt_is_array(a) ? rt_string_data(rt_array_get(a, 1))
           : rt_is_string(a) ? rt_string_data(a)
                             : "-");
  rt_res_send(req, out, strlen(out));
}

/* A streamed response of N KB from the query (?kb=N), with backpressure. */
typedef struct stream_s {
  uint64_t left, written;
  int waits;
} stream_t;
static stream_t *last_stream;
static void stream_more(rt_value_t *req, void *data) {
  stream_t *s = data;
  static char chunk[16384];
  memset(chunk, 'x', sizeof chunk);
  while (s->left > 0) {
    size_t n = s->left < sizeof chunk ? s->left : sizeof chunk;
    int r = rt_res_write(req, chunk, n);
    if (r < 0)
      return; /* the connection went away */
    s->left -= n;
    s->written += n;
    if (r == 1) {
      s->waits++;
      rt_res_on_drain(req, stream_more, s);
      return;
    }
  }
  rt_res_end(req);
}

static void h_stream(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t kb = rt_map_get_cstr(rt_req_get(req, RT_REQ_QUERY), "kb");
  stream_t *s = calloc(1, sizeof *s);
  s->left = (uint64_t)atoll(rt_string_data(kb)) * 1024;
  free(last_stream);
  last_stream = s;
  stream_more(req, s);
}

static rt_app_t *sub_app;
static void h_sub(rt_value_t *req, void *data) {
  (void)data;
  size_t n;
  const char *p = rt_req_subpath(*req, &n);
  char out[128];
  snprintf(out, sizeof out, "sub:%.*s", (int)n, p);
  rt_res_send(req, out, strlen(out));
}

static char file_dir[64];
static void h_file(rt_value_t *req, void *data) {
  (void)data;
  char path[128];
  snprintf(path, sizeof path, "%s/f.txt", file_dir);
  if (rt_res_send_file(req, path) != 0)
    rt_res_send_status(req, 500);
}

/* The response API's refusals, reported as text. */
static void h_resp_api(rt_value_t *req, void *data) {
  (void)data;
  int r[6]; /* in order: argument evaluation order is unspecified */
  r[0] = rt_res_set_header(req, "X-Bad", "a\r\nSet-Cookie: evil=1");
  r[1] = rt_res_set_header(req, "X Bad", "v");
  r[2] = rt_res_set_header(req, "X-Nul", "a\nb");
  r[3] = rt_res_status(req, 99);
  r[4] = rt_res_append_header(req, "X-Two", "1");
  r[5] = rt_res_append_header(req, "X-Two", "2");
  char out[256];
  snprintf(out, sizeof out, "%d %d %d %d %d %d", r[0], r[1], r[2], r[3], r[4],
           r[5]);
  rt_res_remove_header(req, "x-none");
  rt_res_set_header(req, "X-Gone", "1");
  rt_res_remove_header(req, "x-gone");
  rt_res_send(req, out, strlen(out));
  /* After the response: refused, nothing sent. */
  if (rt_res_set_header(req, "X-Late", "1") >= 0 ||
      rt_res_send(req, "again", 5) >= 0)
    fprintf(stderr, "late calls were not refused\n");
}

/* Content negotiation: 406 when nothing fits. */
static void h_negotiate(rt_value_t *req, void *data) {
  (void)data;
  static const char *const types[] = {"application/json", "text/html"};
  int i = rt_req_accepts(*req, types, 2);
  if (i < 0) {
    rt_res_send_status(req, 406);
    return;
  }
  rt_res_send(req, types[i], strlen(types[i]));
}

/* A reader that pauses at its first piece and resumes from a timer (the
 * body completes while it is paused). */
typedef struct pausing_s {
  size_t n;
  bool paused_once;
} pausing_t;
static void resume_cb(rt_loop_t *loop, void *data, rt_value_t *args,
                      size_t nargs) {
  (void)loop;
  (void)data;
  (void)nargs;
  rt_req_resume(&args[0]);
}
static void pausing_cb(rt_value_t *req, const char *d, size_t n, int st,
                       void *ud) {
  pausing_t *p = ud;
  (void)d;
  if (st == 0) {
    p->n += n;
    if (!p->paused_once) {
      p->paused_once = true;
      rt_req_pause(req);
      rt_set_timeout(app_loop, 30, resume_cb, NULL, req, 1, NULL);
    }
    return;
  }
  char out[32];
  snprintf(out, sizeof out, "%d:%zu", st, p->n);
  rt_res_send(req, out, strlen(out));
  free(p);
}
static void h_pausing(rt_value_t *req, void *data) {
  (void)data;
  pausing_t *p = calloc(1, sizeof *p);
  if (rt_req_read(req, pausing_cb, p) != 0) {
    free(p);
    rt_res_send_status(req, 500);
  }
}

/* /big-head: a head larger than the server's head buffer, in pieces of
 * every size around it (a 2000-byte value, then 600-byte ones). */
static void h_big_head(rt_value_t *req, void *data) {
  (void)data;
  static const size_t sizes[] = {600, 2000, 600, 600, 1000};
  char name[16], val[2001];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    memset(val, 'a' + (int)i, sizes[i]);
    val[sizes[i]] = '\0';
    snprintf(name, sizeof name, "X-Big-%zu", i);
    rt_res_set_header(req, name, val);
  }
  rt_res_send(req, "big", 3);
}

/* /many-headers: more headers than the exchange keeps inline (8 entries,
 * 384 bytes of text), some replaced, removed and repeated on the way, so
 * entries live in both places when the head is written. */
static void h_many_headers(rt_value_t *req, void *data) {
  (void)data;
  char name[16], val[64];
  for (int i = 0; i < 20; i++) {
    snprintf(name, sizeof name, "X-H-%d", i);
    snprintf(val, sizeof val, "value-%d-%.*s", i, i * 2,
             "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
    assert_int_equal(rt_res_set_header(req, name, val), 0);
  }
  assert_int_equal(rt_res_set_header(req, "x-h-3", "replaced"), 0);
  assert_int_equal(rt_res_remove_header(req, "X-H-5"), 0);
  assert_int_equal(rt_res_append_header(req, "X-H-7", "again"), 0);
  assert_int_equal(rt_res_remove_header(req, "X-H-0"), 0);
  assert_string_equal(rt_res_get_header(req, "x-h-19"),
                      "value-19-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
  rt_res_send(req, "many", 4);
}

static void setup_app(ht_server_t *hs, rt_app_t *app) {
  app_loop = hs->loop;
  assert_int_equal(rt_app_use(app, "/mw", mw_mark, NULL), 0);
  assert_int_equal(rt_app_get(app, "/hello", h_hello, NULL), 0);
  assert_int_equal(rt_app_get(app, "/mw/x", h_hello, NULL), 0);
  assert_int_equal(rt_app_get(app, "/n/:i", h_num, NULL), 0);
  assert_int_equal(rt_app_get(app, "/users/:name", h_user, NULL), 0);
  assert_int_equal(rt_app_put(app, "/users/:name", h_post_user, NULL), 0);
  assert_int_equal(rt_app_get(app, "/rest/*", h_rest, NULL), 0);
  assert_int_equal(rt_app_get(app, "/fail", h_fail, NULL), 0);
  assert_int_equal(rt_app_get(app, "/fail-errno", h_fail_errno, NULL), 0);
  assert_int_equal(rt_app_get(app, "/later", h_later, NULL), 0);
  assert_int_equal(rt_app_get(app, "/never", h_never, NULL), 0);
  assert_int_equal(rt_app_post(app, "/echo", h_echo_body, NULL), 0);
  assert_int_equal(rt_app_post(app, "/pausing", h_pausing, NULL), 0);
  assert_int_equal(rt_app_get(app, "/headers", h_headers, NULL), 0);
  assert_int_equal(rt_app_get(app, "/stream", h_stream, NULL), 0);
  assert_int_equal(rt_app_get(app, "/file", h_file, NULL), 0);
  assert_int_equal(rt_app_get(app, "/resp-api", h_resp_api, NULL), 0);
  assert_int_equal(rt_app_get(app, "/negotiate", h_negotiate, NULL), 0);
  assert_int_equal(rt_app_get(app, "/@at", h_hello, NULL), 0);
  assert_int_equal(rt_app_get(app, "/big-head", h_big_head, NULL), 0);
  assert_int_equal(rt_app_get(app, "/many-headers", h_many_headers, NULL), 0);
  assert_int_equal(rt_app_create(hs->rt, &sub_app), 0);
  assert_int_equal(rt_app_get(sub_app, "/inner", h_sub, NULL), 0);
  assert_int_equal(rt_app_mount(app, "/api/v1", sub_app), 0);
  assert_int_equal(rt_app_use_error(app, "/fail", e_handler, NULL), 0);
  assert_int_equal(rt_app_route(app, "PATCH", "/bad", NULL, NULL), -EINVAL);
  assert_int_equal(rt_app_route(app, "BREW", "/bad", h_hello, NULL),
                   -EINVAL);
  assert_int_equal(rt_app_route(app, "GET", "/a/*/b", h_hello, NULL),
                   -EINVAL);
}

static ht_server_t *start(const rt_server_options_t *o) {
  return ht_start(setup_app, o, NULL);
}

static void stop(ht_server_t *hs) {
  ht_stop(hs);
  rt_app_destroy(sub_app);
  sub_app = NULL;
  free(last_stream);
  last_stream = NULL;
}

/* --- Tests ------------------------------------------------------------------ */

static void test_server_keep_alive(void **state) {
  (void)state;
  ht_server_t *hs = start(NULL);
  ht_conn_t *c = ht_connect(hs->port);
  for (int i = 0; i < 3; i++) {
    ht_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ht_resp_t r;
    assert_int_equal(ht_read_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world\n");
    assert_false(r.close);
    char v[128];
    assert_non_null(ht_header(&r, "content-type", v, sizeof v));
    assert_string_equal(v, "text/plain; charset=utf-8");
    assert_non_null(ht_header(&r, "date", v, sizeof v));
    ht_resp_free(&r);
  }
  /* HTTP/1.0: closes unless asked to keep alive. */
  ht_sends(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ht_resp_t r;
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_false(r.close);
  ht_resp_free(&r);
  ht_sends(c, "GET /hello HTTP/1.0\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_true(r.close);
  ht_resp_free(&r);
  assert_true(ht_closed_within(c, 3000));
  ht_close(c);
  /* Connection: close from the client. */
  c = ht_connect(hs->port);
  ht_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_true(r.close);
  ht_resp_free(&r);
  assert_true(ht_closed_within(c, 3000));
  ht_close(c);
  stop(hs);
}

static void test_server_pipelining(void **state) {
  (void)state;
  ht_server_t *hs = start(NULL);
  ht_conn_t *c = ht_connect(hs->port);
  static char all[100 * 64];
  size_t n = 0;
  for (int i = 0; i < 100; i++)
    n += (size_t)snprintf(all + n, sizeof all - n,
                          "GET /n/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
  ht_send(c, all, n); /* one write */
  for (int i = 0; i < 100; i++) {
    ht_resp_t r;
    assert_int_equal(ht_read_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    char want[16];
    snprintf(want, sizeof want, "%d", i);
    assert_string_equal(r.body, want);
    ht_resp_free(&r);
  }
  /* Pipelined behind a response answered later: still in order. */
  ht_sends(c, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /n/7 HTTP/1.1\r\nHost: x\r\n\r\n");
  ht_resp_t r;
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_string_equal(r.body, "later");
  ht_resp_free(&r);
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_string_equal(r.body, "7");
  ht_resp_free(&r);
  ht_close(c);
  stop(hs);
}

static void test_server_split_everywhere(void **state) {
  (void)state;
  ht_server_t *hs = start(NULL);
  const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                    "\r\nhello"
                    "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t len = strlen(req);
  size_t step = test_under_valgrind() || test_under_stress() ? 7 : 1;
  for (size_t cut = 1; cut < len; cut += step) {
    ht_conn_t *c = ht_connect(hs->port);
    ht_send(c, req, cut);
    usleep(2000);
    ht_send(c, req + cut, len - cut);
    ht_resp_t r;
    assert_int_equal(ht_read_response(c, &r, false), 0);
    assert_string_equal(r.body, "5:hello");
    ht_resp_free(&r);
    assert_int_equal(ht_read_response(c, &r, false), 0);
    assert_string_equal(r.body, "hello world\n");
    ht_resp_free(&r);
    ht_close(c);
  }
  stop(hs);
}

static void expect(int port, const char *req, int status, const char *body) {
  ht_resp_t r;
  ht_request(port, req, &r);
  if (r.status != status)
    fail_msg("%s -> %d, wanted %d (%s)", req, r.status, status, r.body);
  if (body != NULL)
    assert_string_equal(r.body, body);
  ht_resp_free(&r);
}

static void test_server_routing(void **state) {
  (void)state;
  ht_server_t *hs = start(NULL);
  int p = hs->port;
  expect(p, "GET /users/ada%20lovelace HTTP/1.1\r\nHost: x\r\n\r\n", 200,
         "user=ada lovelace");
  expect(p, "GET /USERS/bob/ HTTP/1.1\r\nHost: x\r\n\r\n", 200, "user=bob");
  expect(p, "GET /users/%E4%B8%AD HTTP/1.1\r\nHost: x\r\n\r\n", 200,
         "user=\xe4\xb8\xad");
  {
    ht_resp_t bad;
    ht_request(p, "GET /users/%zz HTTP/1.1\r\nHost: x\r\n\r\n", &bad);
    assert_int_equal(bad.status, 400);
    assert_non_null(strstr(bad.body, "%-escape")); /* says why */
    ht_resp_free(&bad);
  }
  expect(p, "GET /users/a/b HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  expect(p, "PUT /users/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
         201, "created");
  expect(p, "GET /rest/a/b%2Fc HTTP/1.1\r\nHost: x\r\n\r\n", 200,
         "rest=a/b/c");
  expect(p, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404, "Not Found\n");
  /* The router's first-segment test before matching: case-insensitive
   * for letters only ('@' and '`' differ by the case bit too), a
   * trailing slash ignored, a segment that only starts alike refused. */
  expect(p, "GET /HeLLo/ HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello world\n");
  expect(p, "GET /@AT HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello world\n");
  expect(p, "GET /`at HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  expect(p, "GET /hellox HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  expect(p, "GET /hell HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  expect(p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  /* absolute-form targets route by their path. */
  expect(p, "GET http://x:80/users/abs?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
         200, "user=abs");
  expect(p, "GET http://x HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  expect(p, "GET /api/v1/inner?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200,
         "sub:/inner");
  expect(p, "GET /api/v1/other HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  /* 405 with Allow; OPTIONS; HEAD by GET routes without a body. */
  ht_resp_t r;
  char v[128];
  ht_request(p, "DELETE /users/x HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  assert_int_equal(r.status, 405);
  assert_non_null(ht_header(&r, "allow", v, sizeof v));
  assert_string_equal(v, "GET, HEAD, PUT");
  ht_resp_free(&r);
  ht_request(p, "OPTIONS /users/x HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(ht_header(&r, "allow", v, sizeof v));
  assert_string_equal(v, "GET, HEAD, PUT, OPTIONS");
  ht_resp_free(&r);
  /* OPTIONS * is about the server (RFC 9110 9.3.7); '*' is no target for
   * any other method (RFC 9112 3.2.4). */
  ht_request(p, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  assert_int_equal(r.status, 204);
  assert_non_null(ht_header(&r, "allow", v, sizeof v));
  assert_non_null(strstr(v, "GET"));
  assert_non_null(strstr(v, "OPTIONS"));
  ht_resp_free(&r);
  expect(p, "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, NULL);
  ht_conn_t *c = ht_connect(p);
  ht_sends(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, true), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(ht_header(&r, "content-length", v, sizeof v));
  assert_string_equal(v, "12");
  ht_resp_free(&r);
  /* The next response starts right where the HEAD's head ended. */
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_string_equal(r.body, "hello world\n");
  ht_resp_free(&r);
  ht_close(c);
  stop(hs);
}

/* --- Many routes: the router's step over routes by first-segment key ------ */

#define MANY 40
static int many_mw_calls;
static void mw_count(rt_value_t *req, void *data) {
  (void)data;
  many_mw_calls++;
  rt_next(req, 0);
}
/* /rI/:x answers "rI:x"; /:a/tail answers "tail:a". */
static void h_many(rt_value_t *req, void *data) {
  rt_value_t params = rt_req_get(req, RT_REQ_PARAMS);
  rt_value_t x = rt_map_get_cstr(params, data == NULL ? "a" : "x");
  char out[512];
  if (data == NULL)
    snprintf(out, sizeof out, "tail:%s", rt_string_data(x));
  else
    snprintf(out, sizeof out, "r%d:%s", (int)(intptr_t)data - 1,
             rt_string_data(x));
  rt_res_send(req, out, strlen(out));
}

static void setup_many(ht_server_t *hs, rt_app_t *app) {
  (void)hs;
  for (int i = 0; i < MANY; i++) {
    char pat[32];
    if (i % 10 == 5) /* a middleware among the routes runs for any path */
      assert_int_equal(rt_app_use(app, NULL, mw_count, NULL), 0);
    snprintf(pat, sizeof pat, "/r%d/:x", i);
    assert_int_equal(rt_app_get(app, pat, h_many, (void *)(intptr_t)(i + 1)),
                     0);
  }
  assert_int_equal(rt_app_get(app, "/:a/tail", h_many, NULL), 0);
}

static void test_server_many_routes(void **state) {
  (void)state;
  ht_server_t *hs = ht_start(setup_many, NULL, NULL);
  int p = hs->port;
  char req[512], want[512];
  for (int i = 0; i < MANY; i++) {
    snprintf(req, sizeof req, "GET /r%d/v%d HTTP/1.1\r\nHost: x\r\n\r\n", i,
             i);
    snprintf(want, sizeof want, "r%d:v%d", i, i);
    many_mw_calls = 0;
    expect(p, req, 200, want);
    /* the middlewares before route i ran, those after it did not */
    assert_int_equal(many_mw_calls, (i + 5) / 10);
  }
  /* Letters compare in either case; the key folds nothing else. */
  expect(p, "GET /R23/Zed HTTP/1.1\r\nHost: x\r\n\r\n", 200, "r23:Zed");
  expect(p, "GET /r23 HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  expect(p, "GET /r2 HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  expect(p, "GET /%7223/x HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  /* A route whose first segment is a param, after all the literal ones. */
  expect(p, "GET /zz/tail HTTP/1.1\r\nHost: x\r\n\r\n", 200, "tail:zz");
  expect(p, "GET /r7/tail HTTP/1.1\r\nHost: x\r\n\r\n", 200, "r7:tail");
  /* 405 names only the routes that match the path. */
  ht_resp_t r;
  char v[128];
  ht_request(p, "POST /r5/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
             &r);
  assert_int_equal(r.status, 405);
  assert_non_null(ht_header(&r, "allow", v, sizeof v));
  assert_string_equal(v, "GET, HEAD");
  ht_resp_free(&r);
  /* A param too long for the decoder's stack buffer. */
  char longv[301];
  memset(longv, 'b', 300);
  longv[300] = '\0';
  snprintf(req, sizeof req, "GET /r1/%s HTTP/1.1\r\nHost: x\r\n\r\n", longv);
  snprintf(want, sizeof want, "r1:%s", longv);
  expect(p, req, 200, want);
  ht_stop(hs);
}

static void test_server_middleware_errors(void **state) {
  (void)state;
  ht_server_t *hs = start(NULL);
  int p = hs->port;
  mw_calls = 0;
  ht_resp_t r;
  char v[32];
  ht_request(p, "GET /mw/x HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(ht_header(&r, "x-mark", v, sizeof v));
  ht_resp_free(&r);
  ht_request(p, "GET /mwx HTTP/1.1\r\nHost: x\r\n\r\n", &r); /* no boundary */
  assert_int_equal(r.status, 404);
  assert_null(ht_header(&r, "x-mark", v, sizeof v));
  ht_resp_free(&r);
  assert_int_equal(mw_calls, 1);
  /* next(err) reaches the error handler; an unhandled errno gives 500. */
  expect(p, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n", 409, "handled 409");
  expect(p, "GET /fail-errno HTTP/1.1\r\nHost: x\r\n\r\n", 500, NULL);
  /* An answer from a timer callback. */
  expect(p, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n", 200, "later");
  /* Headers and the query as values. */
  expect(p,
         "GET /headers?a=1&a=two HTTP/1.1\r\nHost: x\r\nX-Multi: a\r\n"
         "User-Agent: first\r\nX-Multi: b\r\nUser-Agent: second\r\n\r\n",
         200, "multi=a, b ua=first a=array:two");
  expect(p, "GET /headers HTTP/1.1\r\nHost: x\r\nX-Multi: caf\xe9\r\n\r\n",
         200, "multi=caf\xc3\xa9 ua=- a=-");
  /* latin1 past the first 8 bytes (read a word at a time), and in it. */
  expect(p, "GET /headers HTTP/1.1\r\nHost: x\r\nX-Multi: "
            "abcdefghijklmnop\xe9q\xff\r\n\r\n",
         200, "multi=abcdefghijklmnop\xc3\xa9q\xc3\xbf ua=- a=-");
  expect(p, "GET /headers HTTP/1.1\r\nHost: x\r\nX-Multi: "
            "ab\xe0" "cdefghijkl\r\n\r\n",
         200, "multi=ab\xc3\xa0" "cdefghijkl ua=- a=-");
  stop(hs);
}

static void test_server_bodies(void **state) {
  (void)state;
  ht_server_t *hs = start(NULL);
  int p = hs->port;
  expect(p, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
         200, "3:abc");
  expect(p,
         "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
         200, "5:abcde");
  expect(p, "POST /echo HTTP/1.1\r\nHost: x\r\n\r\n", 200, "0:");
  /* Expect: 100-continue: the interim response comes when reading starts. */
  ht_conn_t *c = ht_connect(p);
  ht_sends(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
              "Expect: 100-continue\r\n\r\n");
  char buf[64] = "";
  ssize_t n = recv(c->fd, buf, sizeof buf - 1, 0);
  assert_true(n > 0);
  assert_true(strncmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
  ht_sends(c, "wxyz");
  ht_resp_t r;
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_string_equal(r.body, "4:wxyz");
  ht_resp_free(&r);
  ht_close(c);
  /* A body that completes while its reader is paused: the end comes after
   * the resume (found by fuzz_request). */
  expect(p, "POST /pausing HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
            "helloworld", 200, "1:10");
  /* A body nobody reads is dropped and the connection goes on. */
  c = ht_connect(p);
  ht_sends(c, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
              "xxxxxGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 405); /* POST /hello: GET only */
  ht_resp_free(&r);
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 200);
  ht_resp_free(&r);
  ht_close(c);
  /* A large body in many pieces. */
  size_t big = 300000;
  char *hdr = malloc(128);
  snprintf(hdr, 128, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu"
                     "\r\n\r\n", big);
  c = ht_connect(p);
  ht_sends(c, hdr);
  char *payload = malloc(big);
  for (size_t i = 0; i < big; i++)
    payload[i] = (char)('a' + i % 26);
  ht_send(c, payload, big);
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 200);
  assert_true(strncmp(r.body, "300000:", 7) == 0);
  assert_memory_equal(r.body + 7, payload, big);
  ht_resp_free(&r);
  ht_close(c);
  free(payload);
  free(hdr);
  stop(hs);
}

/* A bad request gets its status and a close; what is pipelined behind it is
 * never read as a request. */
static void refused(int port, const char *req, int status) {
  ht_conn_t *c = ht_connect(port);
  ht_sends(c, req);
  ht_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  ht_resp_t r;
  int got = ht_read_response(c, &r, false);
  if (got != 0 || r.status != status)
    fail_msg("%.60s... -> %d, wanted %d", req, got == 0 ? r.status : -1,
             status);
  assert_true(r.close);
  ht_resp_free(&r);
  /* Nothing more: the pipelined GET is not answered. */
  assert_true(ht_closed_within(c, 5000));
  ht_close(c);
}

static void test_server_smuggling_and_limits(void **state) {
  (void)state;
  rt_server_options_t o;
  rt_server_options_init(&o);
  o.limits.max_body_bytes = 1000;
  o.limits.max_url_bytes = 100;
  o.limits.max_head_bytes = 2000;
  o.limits.max_headers = 20;
  o.log = NULL;
  ht_server_t *hs = start(&o);
  int p = hs->port;
  refused(p, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
  refused(p, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
             "Content-Length: 4\r\n\r\nabcd", 400);
  refused(p, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n"
             "abc", 400);
  refused(p, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
             "\r\n\r\nzz\r\n", 400);
  refused(p, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
             "\r\n\r\nffffffffffffffffff\r\n", 400);
  refused(p, "GET /hello HTTP/1.1\rHost: x\r\n\r\n", 400);
  refused(p, "GET /hello HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400);
  refused(p, "GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400);
  refused(p, "GET /hello HTTP/1.1\r\nHo(st: x\r\n\r\n", 400);
  refused(p, "GET /hello HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", 400);
  refused(p, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
             "\r\n", 501);
  refused(p, "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
             "0\r\n\r\n", 400);
  refused(p, "GET /hello HTTP/1.1\r\n\r\n", 400);
  refused(p, "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
  refused(p, "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505);
  /* Limits. */
  char big[4096];
  snprintf(big, sizeof big, "GET /%0200d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
  refused(p, big, 414);
  snprintf(big, sizeof big, "GET /hello HTTP/1.1\r\nHost: x\r\nX: %03000d"
                            "\r\n\r\n", 0);
  refused(p, big, 431);
  size_t off = (size_t)snprintf(big, sizeof big,
                                "GET /hello HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < 25; i++)
    off += (size_t)snprintf(big + off, sizeof big - off, "X%d: y\r\n", i);
  snprintf(big + off, sizeof big - off, "\r\n");
  refused(p, big, 431);
  /* 413 before the body is read, when Content-Length says so. */
  refused(p, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
          413);
  /* ... and when a chunked body grows past the limit. */
  ht_conn_t *c = ht_connect(p);
  ht_sends(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
              "\r\n\r\n");
  char chunk[700];
  memset(chunk, 'a', sizeof chunk);
  ht_sends(c, "2bc\r\n");
  ht_send(c, chunk, sizeof chunk);
  ht_sends(c, "\r\n2bc\r\n");
  ht_send(c, chunk, sizeof chunk);
  ht_sends(c, "\r\n");
  ht_resp_t r;
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 413);
  ht_resp_free(&r);
  ht_close(c);
  /* The server is still fine. */
  expect(p, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello world\n");
  stop(hs);
}

static void test_server_timeouts(void **state) {
  (void)state;
  rt_server_options_t o;
  rt_server_options_init(&o);
  bool slow = test_under_valgrind() || test_under_stress();
  uint64_t unit = slow ? 600 : 200;
  o.headers_timeout_ms = 2 * unit;
  o.keep_alive_timeout_ms = unit;
  o.request_timeout_ms = 3 * unit;
  o.handler_timeout_ms = unit;
  o.log = NULL;
  ht_server_t *hs = start(&o);
  int p = hs->port;
  /* Idle keep-alive connection: closed after keep_alive_timeout. */
  ht_conn_t *c = ht_connect(p);
  ht_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  ht_resp_t r;
  assert_int_equal(ht_read_response(c, &r, false), 0);
  ht_resp_free(&r);
  double t0 = rt_test_now_ms();
  assert_true(ht_closed_within(c, (int)(10 * unit)));
  double dt = rt_test_now_ms() - t0;
  assert_true(dt >= unit * 0.8);
  ht_close(c);
  /* Slowloris: a byte at a time is cut at the header timeout with 408. */
  c = ht_connect(p);
  const char *head = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaa";
  t0 = rt_test_now_ms();
  size_t i = 0;
  int status = 0;
  while (rt_test_now_ms() - t0 < 10.0 * unit) {
    char b = i < strlen(head) ? head[i] : 'a';
    if (send(c->fd, &b, 1, MSG_NOSIGNAL) < 0)
      break;
    i++;
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    if (poll(&pf, 1, (int)(unit / 8)) > 0) {
      if (ht_read_response(c, &r, false) == 0) {
        status = r.status;
        ht_resp_free(&r);
      }
      break;
    }
  }
  dt = rt_test_now_ms() - t0;
  assert_int_equal(status, 408);
  assert_true(dt >= 2 * unit * 0.8 && dt < 6.0 * unit);
  ht_close(c);
  /* Part of a head, then silence: 408 at the header timeout, then the
   * close (found by fuzz_request: the 408 was never written). */
  c = ht_connect(p);
  ht_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Half: ");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 408);
  assert_true(r.close);
  ht_resp_free(&r);
  assert_true(ht_closed_within(c, (int)(10 * unit)));
  ht_close(c);
  /* After a refused request the server reads the peer's EOF at once
   * instead of waiting out its linger. */
  c = ht_connect(p);
  ht_sends(c, "GARBAGE\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 400);
  ht_resp_free(&r);
  shutdown(c->fd, SHUT_WR);
  t0 = rt_test_now_ms();
  assert_true(ht_closed_within(c, 5000));
  assert_true(rt_test_now_ms() - t0 < 1000);
  ht_close(c);
  /* A body that stops arriving: 408 at the request timeout. */
  c = ht_connect(p);
  ht_sends(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
              "abc");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 408);
  ht_resp_free(&r);
  ht_close(c);
  /* A handler that never answers: 500, and the connection goes on. */
  c = ht_connect(p);
  ht_sends(c, "GET /never HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 500);
  ht_resp_free(&r);
  ht_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 200);
  ht_resp_free(&r);
  ht_close(c);
  rt_server_stats_t st;
  rt_server_stats(hs->s, &st);
  assert_true(st.timeouts >= 4);
  stop(hs);
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2)
      res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_server_streaming_backpressure(void **state) {
  (void)state;
  ht_server_t *hs = start(NULL);
  int p = hs->port;
  /* A streamed (chunked) response read whole. */
  ht_resp_t r;
  ht_request(p, "GET /stream?kb=1000 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 1000 * 1024);
  char v[32];
  assert_non_null(ht_header(&r, "transfer-encoding", v, sizeof v));
  ht_resp_free(&r);
  /* HEAD of a streamed response: the head only, then the next response. */
  ht_conn_t *hc = ht_connect(p);
  ht_sends(hc, "HEAD /stream?kb=1 HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(ht_read_response(hc, &r, true), 0);
  assert_int_equal(r.status, 200);
  ht_resp_free(&r);
  assert_int_equal(ht_read_response(hc, &r, false), 0);
  assert_string_equal(r.body, "hello world\n");
  ht_resp_free(&r);
  ht_close(hc);
  /* HTTP/1.0: no chunked; the end of the connection ends the body. */
  ht_request(p, "GET /stream?kb=100 HTTP/1.0\r\n\r\n", &r);
  assert_int_equal(r.body_len, 100 * 1024);
  ht_resp_free(&r);
  /* A reader that never reads a 1 GB response: the producer waits, the
   * server does not buffer it. */
  long before = rss_kb();
  ht_conn_t *c = ht_connect(p);
  int small = 4096;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ht_sends(c, "GET /stream?kb=1048576 HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(test_under_valgrind() ? 3000000 : 1000000);
  long after = rss_kb();
  assert_non_null(last_stream);
  uint64_t written = last_stream->written;
  assert_true(last_stream->waits >= 1);
  assert_true(written < 32u * 1024 * 1024); /* socket buffers + high water */
  if (!test_under_valgrind() && !test_under_sanitizer())
    assert_true(after - before < 32 * 1024);
  ht_close(c);
  /* The server sees the close and carries on. */
  usleep(100000);
  expect(p, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello world\n");
  stop(hs);
}

static void test_server_files(void **state) {
  (void)state;
  snprintf(file_dir, sizeof file_dir, "/tmp/tenure-files-XXXXXX");
  assert_non_null(mkdtemp(file_dir));
  char path[128];
  snprintf(path, sizeof path, "%s/f.txt", file_dir);
  FILE *f = fopen(path, "w");
  for (int i = 0; i < 100000; i++)
    fputc('0' + i % 10, f);
  fclose(f);
  ht_server_t *hs = start(NULL);
  int p = hs->port;
  ht_resp_t r;
  char etag[128], lm[128], v[128];
  ht_request(p, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 100000);
  assert_int_equal(r.body[99999], '9');
  assert_non_null(ht_header(&r, "etag", etag, sizeof etag));
  assert_non_null(ht_header(&r, "last-modified", lm, sizeof lm));
  assert_non_null(ht_header(&r, "content-type", v, sizeof v));
  assert_string_equal(v, "text/plain; charset=utf-8");
  ht_resp_free(&r);
  char req[512];
  snprintf(req, sizeof req,
           "GET /file HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n", etag);
  expect(p, req, 304, "");
  snprintf(req, sizeof req,
           "GET /file HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: %s\r\n\r\n",
           lm);
  expect(p, req, 304, "");
  /* RFC 9110 13.2.2: If-Match (strong comparison) and If-Unmodified-Since
   * first, a 412 when false; If-None-Match compares weakly. */
  assert_true(etag[0] == '"'); /* a strong validator */
  static const struct {
    const char *fmt; /* one %s: the ETag or the Last-Modified date */
    bool use_lm;
    int status;
  } conds[] = {
      {"If-Match: %s", false, 200},
      {"If-Match: \"nope\", %s", false, 200},
      {"If-Match: *", false, 200},
      {"If-Match: \"nope\"", false, 412},
      {"If-Match: W/%s", false, 412}, /* weak never matches strongly */
      {"If-Unmodified-Since: %s", true, 200},
      {"If-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT", false, 412},
      {"If-Unmodified-Since: not a date", false, 200},
      {"If-Match: %s\r\nIf-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT",
       false, 200}, /* If-Match decides alone */
      {"If-None-Match: W/%s", false, 304},
      {"If-None-Match: \"a\", %s", false, 304},
      {"If-None-Match: \"nope\"", false, 200},
      {"If-None-Match: \"nope\"\r\nIf-Modified-Since: %s", true, 200},
      {"If-Match: \"nope\"\r\nIf-None-Match: *", false, 412},
  };
  for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++) {
    char hdr[256];
    snprintf(hdr, sizeof hdr, conds[i].fmt, conds[i].use_lm ? lm : etag);
    snprintf(req, sizeof req, "GET /file HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n",
             hdr);
    expect(p, req, conds[i].status, NULL);
  }
  /* If-Range: the Range only while the tag (strong) or date still holds. */
  snprintf(req, sizeof req,
           "GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=10-14\r\n"
           "If-Range: %s\r\n\r\n",
           etag);
  expect(p, req, 206, "01234");
  expect(p,
         "GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=10-14\r\n"
         "If-Range: \"old\"\r\n\r\n",
         200, NULL);
  expect(p, "GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=10-14\r\n\r\n",
         206, "01234");
  expect(p, "GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=-3\r\n\r\n", 206,
         "789");
  ht_request(p, "GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=200000-\r\n\r\n",
             &r);
  assert_int_equal(r.status, 416);
  assert_non_null(ht_header(&r, "content-range", v, sizeof v));
  assert_string_equal(v, "bytes */100000");
  ht_resp_free(&r);
  ht_request(p, "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(ht_header(&r, "content-length", v, sizeof v));
  assert_string_equal(v, "100000");
  ht_resp_free(&r);
  stop(hs);
  unlink(path);
  rmdir(file_dir);
}

/* Graceful stop: an idle connection is closed at once, a request in flight
 * finishes (with Connection: close), then the server is done. */
static void test_server_graceful_stop(void **state) {
  (void)state;
  ht_server_t *hs = start(NULL);
  int p = hs->port;
  ht_conn_t *idle = ht_connect(p);
  ht_sends(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  ht_resp_t r;
  assert_int_equal(ht_read_response(idle, &r, false), 0);
  ht_resp_free(&r);
  ht_conn_t *busy = ht_connect(p);
  ht_sends(busy, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(5000);
  uv_async_send(&hs->stop); /* rt_server_close */
  assert_true(ht_closed_within(idle, 3000));
  assert_int_equal(ht_read_response(busy, &r, false), 0);
  assert_string_equal(r.body, "later");
  assert_true(r.close);
  ht_resp_free(&r);
  assert_true(ht_closed_within(busy, 3000));
  ht_close(idle);
  ht_close(busy);
  pthread_join(hs->th, NULL);
  assert_true(hs->done_called);
  /* No longer accepting. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_true(connect(fd, (struct sockaddr *)&a, sizeof a) < 0);
  close(fd);
  rt_server_destroy(hs->s);
  assert_int_equal(rt_loop_destroy(hs->loop), 0);
  rt_app_destroy(hs->app);
  rt_app_destroy(sub_app);
  sub_app = NULL;
  rt_runtime_destroy(hs->rt);
  free(hs);
}

static void test_server_response_api(void **state) {
  (void)state;
  ht_server_t *hs = start(NULL);
  int p = hs->port;
  ht_resp_t r;
  char v[64];
  /* A second send after the response must not put bytes on the wire: the
   * pipelined request's answer comes right after. */
  ht_conn_t *c = ht_connect(p);
  ht_sends(c, "GET /resp-api HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  ht_resp_free(&r);
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_string_equal(r.body, "hello world\n");
  ht_resp_free(&r);
  ht_close(c);
  ht_request(p, "GET /resp-api HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "-22 -22 -22 -22 0 0");
  assert_null(strstr(r.head, "evil"));
  assert_null(ht_header(&r, "x-gone", v, sizeof v));
  assert_non_null(strstr(r.head, "X-Two: 1\r\nX-Two: 2\r\n"));
  ht_resp_free(&r);
  /* A head over the server's 1 KB head buffer arrives whole and in order
   * (pipelined with a request behind it). */
  c = ht_connect(p);
  ht_sends(c, "GET /big-head HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "big");
  {
    static const size_t sizes[] = {600, 2000, 600, 600, 1000};
    const char *at = r.head;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      char want[2100];
      int k = snprintf(want, sizeof want, "X-Big-%zu: ", i);
      memset(want + k, 'a' + (int)i, sizes[i]);
      memcpy(want + k + sizes[i], "\r\n", 3);
      const char *f = strstr(at, want);
      assert_non_null(f); /* whole, and after the one before */
      at = f + strlen(want);
    }
    assert_non_null(strstr(at, "Content-Length: 3\r\n"));
  }
  ht_resp_free(&r);
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_string_equal(r.body, "hello world\n");
  ht_resp_free(&r);
  ht_close(c);
  /* Twice on one connection: the second response starts from nothing. */
  c = ht_connect(p);
  ht_sends(c, "GET /many-headers HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /many-headers HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int k = 0; k < 2; k++) {
    assert_int_equal(ht_read_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "many");
    assert_null(ht_header(&r, "x-h-0", v, sizeof v));
    assert_null(ht_header(&r, "x-h-5", v, sizeof v));
    assert_non_null(ht_header(&r, "x-h-3", v, sizeof v));
    assert_string_equal(v, "replaced");
    assert_null(strstr(r.head, "value-3-"));
    assert_non_null(strstr(r.head, "X-H-7: value-7-zzzzzzzzzzzzzz\r\n"));
    assert_non_null(strstr(r.head, "X-H-7: again\r\n"));
    for (int i = 1; i < 20; i++) {
      char want[96];
      if (i == 3 || i == 5)
        continue;
      snprintf(want, sizeof want, "X-H-%d: value-%d-%.*s\r\n", i, i, i * 2,
               "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
      assert_non_null(strstr(r.head, want));
    }
    ht_resp_free(&r);
  }
  ht_close(c);
  expect(p, "GET /negotiate HTTP/1.1\r\nHost: x\r\n\r\n", 200,
         "application/json");
  expect(p, "GET /negotiate HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n",
         200, "text/html");
  expect(p,
         "GET /negotiate HTTP/1.1\r\nHost: x\r\nAccept: application/json;"
         "q=0.5, text/*;q=0.9\r\n\r\n",
         200, "text/html");
  expect(p,
         "GET /negotiate HTTP/1.1\r\nHost: x\r\nAccept: */*;q=0.1, "
         "application/json\r\n\r\n",
         200, "application/json");
  expect(p, "GET /negotiate HTTP/1.1\r\nHost: x\r\nAccept: image/png\r\n\r\n",
         406, NULL);
  expect(p,
         "GET /negotiate HTTP/1.1\r\nHost: x\r\nAccept: text/html;q=0\r\n\r\n",
         406, NULL);
  stop(hs);
}

/* Built-in middleware: the access log's combined format, X-Response-Time,
 * static files with traversal refused. */
static char static_dir[64];
static FILE *access_file;

#define SLOW_MS 600
static void h_slow(rt_value_t *req, void *data) {
  (void)data;
  if (rt_set_timeout(app_loop, SLOW_MS, later_cb, NULL, req, 1, NULL) != 0)
    rt_res_send_status(req, 500);
}

static void setup_builtin(ht_server_t *hs, rt_app_t *app) {
  (void)hs;
  assert_int_equal(rt_mw_access_log(app, access_file), 0);
  assert_int_equal(rt_mw_response_time(app), 0);
  assert_int_equal(rt_mw_static(app, "/static", static_dir), 0);
  assert_int_equal(rt_app_get(app, "/hello", h_hello, NULL), 0);
  app_loop = hs->loop;
  assert_int_equal(rt_app_get(app, "/slow", h_slow, NULL), 0);
}

/* Whether the access log (written by the server's thread, flushed per
 * line) holds NEEDLE yet: read through its descriptor, not its FILE. */
static bool log_has(const char *needle) {
  char buf[8192];
  ssize_t n = pread(fileno(access_file), buf, sizeof buf - 1, 0);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  return strstr(buf, needle) != NULL;
}

/* A client that resets its connection while the handler has not answered
 * yet is noticed then, not when the handler answers: the request finishes
 * at once (its hooks run: the access log says 499) and the late answer
 * goes nowhere (INV(reading): a request read whole still reads on). */
static void check_client_left(int port) {
  ht_conn_t *c = ht_connect(port);
  ht_sends(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(50 * 1000);
  struct linger lg = {1, 0};
  assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg),
                   0);
  ht_close(c); /* RST */
  int waited = 0;
  while (!log_has("\"GET /slow HTTP/1.1\" 499") && waited < SLOW_MS / 2) {
    usleep(10 * 1000);
    waited += 10;
  }
  assert_true(log_has("\"GET /slow HTTP/1.1\" 499"));
  usleep((SLOW_MS - waited + 100) * 1000); /* the late answer: no crash */
  /* A client that only half-closes (sends FIN after its request) still
   * gets the answer, then the close. */
  c = ht_connect(port);
  ht_sends(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
  ht_resp_t r;
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "later");
  ht_resp_free(&r);
  assert_true(ht_closed_within(c, 2000));
  ht_close(c);
}

static void test_server_builtin_middleware(void **state) {
  (void)state;
  snprintf(static_dir, sizeof static_dir, "/tmp/tenure-static-XXXXXX");
  assert_non_null(mkdtemp(static_dir));
  char path[128];
  snprintf(path, sizeof path, "%s/sub", static_dir);
  assert_int_equal(mkdir(path, 0755), 0);
  snprintf(path, sizeof path, "%s/sub/index.html", static_dir);
  FILE *f = fopen(path, "w");
  fputs("<p>index</p>", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/a.css", static_dir);
  f = fopen(path, "w");
  fputs("p{}", f);
  fclose(f);
  access_file = tmpfile();
  ht_server_t *hs = ht_start(setup_builtin, NULL, NULL);
  int p = hs->port;
  ht_resp_t r;
  char v[128];
  ht_request(p, "GET /static/a.css HTTP/1.1\r\nHost: x\r\nReferer: http://r/"
                "\r\nUser-Agent: t/1\r\n\r\n",
             &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "p{}");
  assert_non_null(ht_header(&r, "content-type", v, sizeof v));
  assert_string_equal(v, "text/css; charset=utf-8");
  assert_non_null(ht_header(&r, "x-response-time", v, sizeof v));
  assert_non_null(strstr(v, "ms"));
  ht_resp_free(&r);
  expect(p, "GET /static/sub/ HTTP/1.1\r\nHost: x\r\n\r\n", 200,
         "<p>index</p>");
  expect(p, "GET /static/sub HTTP/1.1\r\nHost: x\r\n\r\n", 200,
         "<p>index</p>");
  expect(p, "GET /static/../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 403,
         NULL);
  expect(p, "GET /static/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
         403, NULL);
  expect(p, "GET /static/sub%2f..%2f..%2fx HTTP/1.1\r\nHost: x\r\n\r\n", 403,
         NULL);
  expect(p, "GET /static/a%00.css HTTP/1.1\r\nHost: x\r\n\r\n", 400, NULL);
  expect(p, "GET /static/none.txt HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
  expect(p, "POST /static/a.css HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
            "\r\n", 404, NULL);
  check_client_left(p);
  expect(p, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, NULL);
  ht_stop(hs);
  /* Combined log format: host ident user [time] "request" status bytes
   * "referer" "user-agent". */
  rewind(access_file);
  char line[512];
  assert_non_null(fgets(line, sizeof line, access_file));
  char when[64], req[128], ref[64], ua[64];
  int status = 0;
  long bytes = 0;
  int n = sscanf(line, "127.0.0.1 - - [%63[^]]] \"%127[^\"]\" %d %ld \"%63[^\"]\" "
                       "\"%63[^\"]\"",
                 when, req, &status, &bytes, ref, ua);
  assert_int_equal(n, 6);
  assert_string_equal(req, "GET /static/a.css HTTP/1.1");
  assert_int_equal(status, 200);
  assert_int_equal(bytes, 3);
  assert_string_equal(ref, "http://r/");
  assert_string_equal(ua, "t/1");
  int lines = 1;
  while (fgets(line, sizeof line, access_file) != NULL)
    lines++;
  assert_int_equal(lines, 12);
  fclose(access_file);
  snprintf(path, sizeof path, "%s/sub/index.html", static_dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/sub", static_dir);
  rmdir(path);
  snprintf(path, sizeof path, "%s/a.css", static_dir);
  unlink(path);
  rmdir(static_dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_server_keep_alive),
      cmocka_unit_test(test_server_pipelining),
      cmocka_unit_test(test_server_split_everywhere),
      cmocka_unit_test(test_server_routing),
      cmocka_unit_test(test_server_many_routes),
      cmocka_unit_test(test_server_middleware_errors),
      cmocka_unit_test(test_server_bodies),
      cmocka_unit_test(test_server_smuggling_and_limits),
      cmocka_unit_test(test_server_timeouts),
      cmocka_unit_test(test_server_streaming_backpressure),
      cmocka_unit_test(test_server_files),
      cmocka_unit_test(test_server_graceful_stop),
      cmocka_unit_test(test_server_response_api),
      cmocka_unit_test(test_server_builtin_middleware),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
