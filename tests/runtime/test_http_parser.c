/* test_http_parser.c -- the HTTP/1.1 request parser: heads, bodies,
 * pipelining, every split point, and each framing error and limit with its
 * status, never reading a request queued behind a bad one. */
#include <string.h>

#include "rt_test.h"

#include <tenure/rt_http_parser.h>

/* What the callbacks saw. */
typedef struct seen {
  int heads, completes;
  char method[16];
  char url[256];
  char headers[1024]; /* "name=value;" ... */
  char body[4096];
  size_t body_len;
  int64_t content_length;
  bool chunked, keep_alive, expect_continue;
  int major, minor;
  char urls[100][16]; /* of each completed request, in order */
} seen_t;

static int on_head(void *data, const rt_http_head_t *h) {
  seen_t *s = data;
  s->heads++;
  snprintf(s->method, sizeof s->method, "%s", h->method);
  snprintf(s->url, sizeof s->url, "%.*s", (int)h->url_len, h->url);
  s->headers[0] = '\0';
  for (size_t i = 0; i < h->nheaders; i++) {
    size_t n = strlen(s->headers);
    snprintf(s->headers + n, sizeof s->headers - n, "%.*s=%.*s;",
             (int)h->headers[i].name_len, h->headers[i].name,
             (int)h->headers[i].value_len, h->headers[i].value);
  }
  s->content_length = h->content_length;
  s->chunked = h->chunked;
  s->keep_alive = h->keep_alive;
  s->expect_continue = h->expect_continue;
  s->major = h->major;
  s->minor = h->minor;
  s->body_len = 0;
  return 0;
}

static int on_body(void *data, const char *at, size_t n) {
  seen_t *s = data;
  memcpy(s->body + s->body_len, at, n);
  s->body_len += n;
  s->body[s->body_len] = '\0';
  return 0;
}

static void on_complete(void *data) {
  seen_t *s = data;
  if (s->completes < 100)
    snprintf(s->urls[s->completes], sizeof s->urls[0], "%.15s", s->url);
  s->completes++;
}

static const rt_http_parser_cb_t cb = {on_head, on_body, on_complete};

/* Feeds all of DATA in pieces of at most STEP bytes (0: at once), taking
 * one request per completion as a server would.  Returns the last feed's
 * result. */
static int feed_all(rt_http_parser_t *p, const char *data, size_t len,
                    size_t step) {
  size_t off = 0;
  int r = 0;
  while (off < len) {
    size_t n = step == 0 || len - off < step ? len - off : step;
    size_t used;
    r = rt_http_parser_feed(p, data + off, n, &used);
    if (r < 0)
      return r;
    off += used;
  }
  return r;
}

static rt_http_parser_t *parser(seen_t *s, const rt_http_limits_t *lim) {
  memset(s, 0, sizeof *s);
  rt_http_parser_t *p;
  assert_int_equal(rt_http_parser_create(lim, &cb, s, &p), 0);
  return p;
}

static void test_http_parser_head_and_body(void **state) {
  (void)state;
  seen_t s;
  rt_http_parser_t *p = parser(&s, NULL);
  const char *req = "POST /users/ann?x=1 HTTP/1.1\r\n"
                    "Host: example\r\n"
                    "Content-Type:   text/plain  \r\n"
                    "X-Mixed-CASE: V\r\n"
                    "Content-Length: 5\r\n"
                    "Expect: 100-continue\r\n\r\nhello";
  assert_int_equal(feed_all(p, req, strlen(req), 0), 1);
  assert_int_equal(s.heads, 1);
  assert_int_equal(s.completes, 1);
  assert_string_equal(s.method, "POST");
  assert_string_equal(s.url, "/users/ann?x=1");
  assert_string_equal(s.headers, "host=example;content-type=text/plain;"
                                 "x-mixed-case=V;content-length=5;"
                                 "expect=100-continue;");
  assert_string_equal(s.body, "hello");
  assert_int_equal(s.content_length, 5);
  assert_true(s.keep_alive && s.expect_continue && !s.chunked);
  assert_int_equal(s.major * 10 + s.minor, 11);
  assert_int_equal(rt_http_parser_eof(p), 0);
  rt_http_parser_destroy(p);
}

static void test_http_parser_chunked_and_keep_alive(void **state) {
  (void)state;
  seen_t s;
  rt_http_parser_t *p = parser(&s, NULL);
  const char *req = "PUT /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
                    "\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
  assert_int_equal(feed_all(p, req, strlen(req), 0), 1);
  assert_string_equal(s.body, "hello, world");
  assert_true(s.chunked);
  assert_int_equal(s.content_length, -1);
  rt_http_parser_destroy(p);
  /* HTTP/1.0: close unless keep-alive; 1.1 with Connection: close. */
  const struct {
    const char *req;
    bool keep;
  } ka[] = {
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
  };
  for (size_t i = 0; i < sizeof ka / sizeof ka[0]; i++) {
    p = parser(&s, NULL);
    assert_int_equal(feed_all(p, ka[i].req, strlen(ka[i].req), 0), 1);
    assert_int_equal(s.keep_alive, ka[i].keep);
    rt_http_parser_destroy(p);
  }
}

/* 100 requests in one write: 100 completions in order, one per feed. */
static void test_http_parser_pipelining(void **state) {
  (void)state;
  char buf[100 * 64];
  size_t len = 0;
  for (int i = 0; i < 100; i++)
    len += (size_t)snprintf(buf + len, sizeof buf - len,
                            "GET /r%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
  seen_t s;
  rt_http_parser_t *p = parser(&s, NULL);
  size_t off = 0;
  int completions = 0;
  while (off < len) {
    size_t used;
    int r = rt_http_parser_feed(p, buf + off, len - off, &used);
    assert_int_equal(r, 1); /* exactly one request per feed */
    completions++;
    assert_int_equal(s.completes, completions);
    off += used;
  }
  assert_int_equal(s.completes, 100);
  for (int i = 0; i < 100; i++) {
    char want[16];
    snprintf(want, sizeof want, "/r%d", i);
    assert_string_equal(s.urls[i], want);
  }
  rt_http_parser_destroy(p);
}

/* Two pipelined requests (one with a chunked body) split at every byte
 * position give exactly what one write gives. */
static void test_http_parser_every_split(void **state) {
  (void)state;
  const char *req = "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
                    "\r\nX-Long-Header-Name: a value\r\n\r\n"
                    "3\r\nabc\r\n0\r\n\r\n"
                    "GET /b?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
                    "\r\nxy";
  size_t len = strlen(req);
  for (size_t cut = 1; cut < len; cut++) {
    seen_t s;
    rt_http_parser_t *p = parser(&s, NULL);
    size_t off = 0, used;
    /* First piece: [0, cut); then the rest, taking requests one by one. */
    while (off < cut) {
      int r = rt_http_parser_feed(p, req + off, cut - off, &used);
      assert_true(r >= 0);
      off += used;
      if (r == 0)
        break;
    }
    off = off < cut ? cut : off;
    assert_true(feed_all(p, req + off, len - off, 0) >= 0);
    assert_int_equal(s.completes, 2);
    assert_string_equal(s.urls[0], "/a");
    assert_string_equal(s.urls[1], "/b?q=1");
    assert_string_equal(s.body, "xy");
    rt_http_parser_destroy(p);
  }
  /* And one byte at a time. */
  seen_t s;
  rt_http_parser_t *p = parser(&s, NULL);
  assert_true(feed_all(p, req, len, 1) >= 0);
  assert_int_equal(s.completes, 2);
  rt_http_parser_destroy(p);
}

/* Each bad request gets its status; a valid request pipelined behind it is
 * never read (no second head), and the parser stays failed. */
static void test_http_parser_bad_framing(void **state) {
  (void)state;
#define NUL_REQ "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"
  const struct {
    const char *req;
    int status;
    size_t len; /* 0: strlen */
  } bad[] = {
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
       "Content-Length: 4\r\n\r\nabcd", 400, 0},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1a\r\n\r\nx", 400, 0},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\nx", 400, 0},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "zz\r\nabc\r\n0\r\n\r\n", 400, 0},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "fffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", 400, 0},
      {NUL_REQ, 400, sizeof NUL_REQ - 1},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501, 0},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
       "0\r\n\r\n", 501, 0},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, 0},
      /* RFC 9112 3.2: a Host with an invalid value is a 400 (MUST). */
      {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: user@h\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: h:80x\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: h:80:81\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: h/p\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: h%zz\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400, 0},
      {"GET / HTTP/1.0\r\nHost: a\"b\r\n\r\n", 400, 0},
      {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0},
      {"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400, 0},
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, 0},
      /* Found by fuzz_request: llhttp 8.1 ends a head at CR LF CR and any
       * byte, and does not read "chunked<TAB>" as chunked (the two layers
       * must never disagree on framing). */
      {"GET / HTTP/1.1\r\nHost: h\r\n\rXGET /x HTTP/1.1\r\nHost: h\r\n\r\n",
       400, 0},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\t\r\n\r\n"
       "5\r\nhello\r\n0\r\n\r\n", 400, 0},
  };
  const char *next = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  /* Whole, one byte at a time, and in 7-byte pieces: the verdict must not
   * depend on where the reads split (obs-fold across reads included). */
  const size_t steps[] = {0, 1, 7};
  for (size_t k = 0; k < 3 * (sizeof bad / sizeof bad[0]); k++) {
    size_t i = k / 3, step = steps[k % 3];
    size_t blen = bad[i].len ? bad[i].len : strlen(bad[i].req);
    char buf[512];
    memcpy(buf, bad[i].req, blen);
    memcpy(buf + blen, next, strlen(next));
    size_t len = blen + strlen(next);
    seen_t s;
    rt_http_parser_t *p = parser(&s, NULL);
    int r = feed_all(p, buf, len, step);
    const char *reason = NULL;
    if (r != -EPROTO || rt_http_parser_error(p, &reason) != bad[i].status)
      fail_msg("case %zu step %zu: feed %d, status %d (want %d), %s", i, step, r,
               rt_http_parser_error(p, NULL), bad[i].status,
               reason ? reason : "-");
    assert_non_null(reason);
    assert_int_equal(s.completes, 0);
    assert_true(s.heads <= 1);
    assert_true(strstr(s.url, "next") == NULL);
    size_t used;
    assert_int_equal(rt_http_parser_feed(p, next, strlen(next), &used),
                     -EPROTO);
    rt_http_parser_destroy(p);
  }
}

/* Every form RFC 9112 3.2 allows for Host is read, not refused: a
 * reg-name (with pct-encoding and sub-delims), an IPv4 address, an IPv6 or
 * IPvFuture literal, each with or without a port (an empty port too), and
 * an empty value. */
static void test_http_parser_valid_hosts(void **state) {
  (void)state;
  static const char *const hosts[] = {
      "example.com", "example.com:8080", "127.0.0.1:80", "[::1]",
      "[::1]:7000", "[v1.fe80::a+en1]", "a-b_c~d.e", "x%41y", "h:",
      "!$&'()*+,;=", "", " h ", "H.EXAMPLE"};
  for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
    char req[256];
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost:%s\r\n\r\n",
             hosts[i]);
    seen_t s;
    rt_http_parser_t *p = parser(&s, NULL);
    int r = feed_all(p, req, strlen(req), 0);
    if (r != 1 || s.completes != 1)
      fail_msg("Host '%s': feed %d, status %d", hosts[i], r,
               rt_http_parser_error(p, NULL));
    rt_http_parser_destroy(p);
  }
}

static void test_http_parser_limits(void **state) {
  (void)state;
  rt_http_limits_t lim;
  rt_http_limits_init(&lim);
  lim.max_head_bytes = 256;
  lim.max_url_bytes = 64;
  lim.max_headers = 4;
  lim.max_body_bytes = 10;
  char buf[2048];
  struct {
    int status;
    size_t step;
  } cases[] = {{414, 0}, {431, 0}, {431, 0}, {413, 0}, {413, 3}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t len = 0;
    switch (c) {
    case 0: /* a long URL */
      len = (size_t)snprintf(buf, sizeof buf, "GET /%0100d HTTP/1.1\r\nHost: h"
                             "\r\n\r\n", 7);
      break;
    case 1: /* a long header */
      len = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\n"
                             "X: %0300d\r\n\r\n", 7);
      break;
    case 2: /* too many headers */
      len = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\n"
                             "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
      break;
    case 3: /* Content-Length over the limit: refused before the body */
      len = (size_t)snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: h\r\n"
                             "Content-Length: 11\r\n\r\n");
      break;
    default: /* a chunked body growing past it */
      len = (size_t)snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: h\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n"
                             "6\r\nghijkl\r\n0\r\n\r\n");
    }
    seen_t s;
    rt_http_parser_t *p = parser(&s, &lim);
    assert_int_equal(feed_all(p, buf, len, cases[c].step), -EPROTO);
    assert_int_equal(rt_http_parser_error(p, NULL), cases[c].status);
    assert_int_equal(s.completes, 0);
    if (c == 3)
      assert_int_equal(s.heads, 0); /* refused at the head */
    rt_http_parser_destroy(p);
  }
  /* Exactly at the limits: accepted. */
  seen_t s;
  rt_http_parser_t *p = parser(&s, &lim);
  const char *ok = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"
                   "0123456789";
  assert_int_equal(feed_all(p, ok, strlen(ok), 0), 1);
  rt_http_parser_destroy(p);
}

static void test_http_parser_eof(void **state) {
  (void)state;
  seen_t s;
  rt_http_parser_t *p = parser(&s, NULL);
  const char *part = "GET / HTTP/1.1\r\nHost: h\r\n";
  assert_int_equal(feed_all(p, part, strlen(part), 0), 0);
  assert_true(rt_http_parser_in_request(p));
  assert_int_equal(rt_http_parser_eof(p), -EPROTO);
  assert_int_equal(rt_http_parser_error(p, NULL), 400);
  rt_http_parser_destroy(p);
}

/* on_head's RT_HTTP_PAUSE: feed stops right after the head (returns 2) and
 * the next feed goes on with the body; a request without a body completes
 * on a feed of 0 bytes. */
static int on_head_pause(void *data, const rt_http_head_t *h) {
  on_head(data, h);
  return RT_HTTP_PAUSE;
}
static const rt_http_parser_cb_t cb_pause = {on_head_pause, on_body,
                                             on_complete};

static void test_http_parser_pause_at_head(void **state) {
  (void)state;
  rt_http_parser_t *p;
  seen_t s;
  memset(&s, 0, sizeof s);
  assert_int_equal(rt_http_parser_create(NULL, &cb_pause, &s, &p), 0);
  const char *get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const char *post = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                     "hello";
  char both[256];
  snprintf(both, sizeof both, "%s%s", get, post);
  size_t used;
  assert_int_equal(rt_http_parser_feed(p, both, strlen(both), &used), 2);
  assert_int_equal(used, strlen(get));
  assert_int_equal(s.heads, 1);
  assert_int_equal(s.completes, 0);
  assert_true(rt_http_parser_in_request(p));
  /* No body: completes without reading a byte. */
  assert_int_equal(rt_http_parser_feed(p, both + strlen(get), 0, &used), 1);
  assert_int_equal(used, 0);
  assert_int_equal(s.completes, 1);
  assert_false(rt_http_parser_in_request(p));
  const char *rest = both + strlen(get);
  size_t head2 = strlen(post) - 5;
  assert_int_equal(rt_http_parser_feed(p, rest, strlen(rest), &used), 2);
  assert_int_equal(used, head2);
  assert_string_equal(s.url, "/b");
  assert_int_equal(s.body_len, 0);
  /* The body, in two feeds. */
  assert_int_equal(rt_http_parser_feed(p, rest + head2, 2, &used), 0);
  assert_int_equal(used, 2);
  assert_int_equal(rt_http_parser_feed(p, rest + head2 + 2, 3, &used), 1);
  assert_int_equal(used, 3);
  assert_string_equal(s.body, "hello");
  assert_int_equal(s.completes, 2);
  /* And at every split point of the whole stream, the same requests. */
  for (size_t cut = 1; cut < strlen(both); cut++) {
    rt_http_parser_t *q;
    seen_t t;
    memset(&t, 0, sizeof t);
    assert_int_equal(rt_http_parser_create(NULL, &cb_pause, &t, &q), 0);
    size_t off = 0, len = strlen(both);
    size_t lim = cut;
    int guard = 0;
    while (t.completes < 2 && guard++ < 100) {
      size_t n = (off < lim ? lim : len) - off;
      int r = rt_http_parser_feed(q, both + off, n, &used);
      assert_true(r >= 0);
      off += used;
      if (off == lim)
        lim = len;
    }
    assert_int_equal(t.completes, 2);
    assert_string_equal(t.body, "hello");
    assert_int_equal(off, len);
    rt_http_parser_destroy(q);
  }
  rt_http_parser_destroy(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_http_parser_head_and_body),
      cmocka_unit_test(test_http_parser_chunked_and_keep_alive),
      cmocka_unit_test(test_http_parser_pipelining),
      cmocka_unit_test(test_http_parser_every_split),
      cmocka_unit_test(test_http_parser_bad_framing),
      cmocka_unit_test(test_http_parser_valid_hosts),
      cmocka_unit_test(test_http_parser_limits),
      cmocka_unit_test(test_http_parser_eof),
      cmocka_unit_test(test_http_parser_pause_at_head),
  };
  return cmocka_run_group_tests_name("runtime.http_parser", tests, NULL, NULL);
}
