/* test_bodyparser.c -- the body-parser middleware over real sockets: JSON
 * (+json types, the error offset in the 400, an empty body), urlencoded
 * (repeated keys, the key limit), text in a declared charset (gbk, latin1;
 * an unknown charset is 415), the limit (413 before reading when
 * Content-Length says so, and while reading a chunked body), multipart
 * fields and files (stored with their sha256; a form failing half-way
 * leaves no file), and content types a parser does not take passing on. */
#define _GNU_SOURCE
#include <dirent.h>
#include <sys/stat.h>

#include "http_test.h"

#include <tenure/rt_multipart.h>
#include <tenure/rt_urlencoded.h>

static char upload_dir[64];

/* Answers the body (and files) as JSON, or "none". */
static void h_show(rt_value_t *req, void *data) {
  (void)data;
  gc_heap_t *h = rt_heap(rt_req_runtime(*req));
  rt_value_t *b = rt_handle(h, rt_req_get(req, RT_REQ_BODY));
  rt_value_t *f = rt_handle(h, rt_req_get(req, RT_REQ_FILES));
  if (*b == RT_UNDEFINED) {
    rt_res_send(req, "none", 4);
    return;
  }
  if (*f != RT_UNDEFINED) {
    rt_runtime_t *rt = rt_req_runtime(*req);
    rt_value_t *o = rt_handle(h, rt_array_new(rt, 2));
    rt_array_push(rt, o, b);
    rt_array_push(rt, o, f);
    rt_res_json(req, o);
    return;
  }
  rt_res_json(req, b);
}

/* The error and its message, as the final answer would show them. */
static void e_show(rt_value_t *req, int err, void *data) {
  (void)data;
  char out[512];
  const char *m = rt_req_error_message(*req);
  snprintf(out, sizeof out, "%d %s", err, m != NULL ? m : "-");
  rt_res_status(req, err >= 400 && err < 600 ? err : 500);
  rt_res_send(req, out, strlen(out));
}

static void setup(ht_server_t *hs, rt_app_t *app) {
  (void)hs;
  assert_int_equal(rt_mw_json(app, NULL, 1000), 0);
  rt_urlencoded_opts_t uo;
  rt_urlencoded_opts_init(&uo);
  uo.max_keys = 5;
  assert_int_equal(rt_mw_urlencoded(app, NULL, 1000, &uo), 0);
  assert_int_equal(rt_mw_text(app, NULL, 1000), 0);
  rt_multipart_limits_t lim;
  rt_multipart_limits_init(&lim);
  lim.max_file_bytes = 200000;
  assert_int_equal(rt_mw_multipart(app, NULL, upload_dir, &lim), 0);
  assert_int_equal(rt_app_post(app, "/show", h_show, NULL), 0);
  assert_int_equal(rt_app_get(app, "/show", h_show, NULL), 0);
  assert_int_equal(rt_app_use_error(app, NULL, e_show, NULL), 0);
}

static void post(int port, const char *ctype, const char *body, size_t len,
                 ht_resp_t *r) {
  char head[512];
  snprintf(head, sizeof head,
           "POST /show HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
           "Content-Length: %zu\r\n\r\n",
           ctype, len);
  ht_conn_t *c = ht_connect(port);
  ht_sends(c, head);
  ht_send(c, body, len);
  assert_int_equal(ht_read_response(c, r, false), 0);
  ht_close(c);
}

static void expect_post(int port, const char *ctype, const char *body,
                        int status, const char *want) {
  ht_resp_t r;
  post(port, ctype, body, strlen(body), &r);
  if (r.status != status || (want != NULL && strcmp(r.body, want) != 0))
    fail_msg("%s [%s] -> %d %s; wanted %d %s", ctype, body, r.status, r.body,
             status, want != NULL ? want : "");
  ht_resp_free(&r);
}

static size_t files_in(const char *dir) {
  DIR *d = opendir(dir);
  size_t n = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  if (d != NULL)
    closedir(d);
  return n;
}

static void clear_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[512];
  while (d != NULL && (e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') {
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
  if (d != NULL)
    closedir(d);
}

static ht_server_t *start(void) {
  snprintf(upload_dir, sizeof upload_dir, "/tmp/tenure-up-XXXXXX");
  assert_non_null(mkdtemp(upload_dir));
  rt_server_options_t o;
  rt_server_options_init(&o);
  o.limits.max_body_bytes = 1 << 20;
  o.log = NULL;
  return ht_start(setup, &o, NULL);
}

static void stop(ht_server_t *hs) {
  ht_stop(hs);
  clear_dir(upload_dir);
  rmdir(upload_dir);
}

static void test_json(void **state) {
  (void)state;
  ht_server_t *hs = start();
  int p = hs->port;
  expect_post(p, "application/json", "{\"a\":[1,2.5,\"x\"],\"b\":null}", 200,
              "{\"a\":[1,2.5,\"x\"],\"b\":null}");
  expect_post(p, "application/vnd.api+json; charset=utf-8", "[true]", 200,
              "[true]");
  expect_post(p, "application/json", "", 200, "{}");
  /* No framing at all: the parsers are stepped over, the body is unset;
   * a GET that does frame a body has it parsed (RFC 9110 9.3.1 leaves
   * its meaning open; body-parser parses it too). */
  {
    ht_resp_t g;
    ht_request(p, "GET /show HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  "application/json\r\n\r\n", &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "none");
    ht_resp_free(&g);
    ht_request(p, "GET /show HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  "application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}", &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "{\"a\":1}");
    ht_resp_free(&g);
    ht_request(p, "GET /show HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "2\r\n[]\r\n0\r\n\r\n", &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "[]");
    ht_resp_free(&g);
  }
  expect_post(p, "application/json", "{\"a\":1,}", 400,
              "400 invalid JSON at offset 7: expected '\"' (a key)");
  expect_post(p, "application/json; charset=utf-8", "[1, 2", 400, NULL);
  /* Over the limit: refused from Content-Length before reading. */
  char big[2000];
  memset(big, ' ', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  big[0] = '[';
  big[sizeof big - 2] = ']';
  ht_resp_t r;
  post(p, "application/json", big, strlen(big), &r);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.body, "limit of 1000 bytes"));
  ht_resp_free(&r);
  /* ... and while reading a chunked body. */
  ht_conn_t *c = ht_connect(p);
  ht_sends(c, "POST /show HTTP/1.1\r\nHost: x\r\nContent-Type: "
              "application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
  char chunk[600];
  memset(chunk, ' ', sizeof chunk);
  for (int i = 0; i < 2; i++) {
    ht_sends(c, "258\r\n");
    ht_send(c, chunk, sizeof chunk);
    ht_sends(c, "\r\n");
  }
  ht_sends(c, "0\r\n\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 413);
  ht_resp_free(&r);
  ht_close(c);
  /* A chunked body whose framing breaks (an overflowing chunk size) is a
   * 400 that says so. */
  c = ht_connect(p);
  ht_sends(c, "POST /show HTTP/1.1\r\nHost: x\r\nContent-Type: "
              "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
              "2\r\n[1\r\nFFFFFFFFFFFFFFFFFFFF\r\n");
  assert_int_equal(ht_read_response(c, &r, false), 0);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body, "malformed framing"));
  ht_resp_free(&r);
  ht_close(c);
  /* Types no parser takes pass on. */
  expect_post(p, "application/octet-stream", "xyz", 200, "none");
  stop(hs);
}

static void test_urlencoded_and_text(void **state) {
  (void)state;
  ht_server_t *hs = start();
  int p = hs->port;
  expect_post(p, "application/x-www-form-urlencoded",
              "a=1&b=two+words&a=3&c=%E4%B8%AD", 200,
              "{\"a\":[\"1\",\"3\"],\"b\":\"two words\",\"c\":\"\xe4\xb8\xad\"}");
  ht_resp_t r;
  post(p, "application/x-www-form-urlencoded", "a=1&b=2&c=3&d=4&e=5&f=6",
       23, &r);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.body, "urlencoded"));
  ht_resp_free(&r);
  /* Text in its declared charset. */
  expect_post(p, "text/plain; charset=gbk", "\xd6\xd0\xce\xc4", 200,
              "\"\xe4\xb8\xad\xe6\x96\x87\"");
  expect_post(p, "text/plain; charset=latin1", "caf\xe9", 200,
              "\"caf\xc3\xa9\"");
  expect_post(p, "text/plain", "plain", 200, "\"plain\"");
  expect_post(p, "text/plain; charset=no-such-charset", "x", 415, NULL);
  stop(hs);
}

static void test_multipart(void **state) {
  (void)state;
  ht_server_t *hs = start();
  int p = hs->port;
  const char *ct = "multipart/form-data; boundary=XyZ";
  const char *body = "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"title\"\r\n\r\n"
                     "hello\r\n"
                     "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"f\"; "
                     "filename=\"a.txt\"\r\n"
                     "Content-Type: text/plain\r\n\r\n"
                     "abc\r\n"
                     "--XyZ--\r\n";
  ht_resp_t r;
  post(p, ct, body, strlen(body), &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "{\"title\":\"hello\"}"));
  /* sha256("abc") */
  assert_non_null(strstr(r.body, "ba7816bf8f01cfea414140de5dae2223b00361a3"
                                 "96177a9cb410ff61f20015ad"));
  assert_non_null(strstr(r.body, "\"originalName\":\"a.txt\""));
  ht_resp_free(&r);
  assert_int_equal(files_in(upload_dir), 1);
  clear_dir(upload_dir);
  /* A file over its limit: 413 naming the limit, nothing left behind. */
  size_t n = 300000;
  char *big = malloc(n + 512);
  size_t off = (size_t)snprintf(big, 512,
                                "--XyZ\r\nContent-Disposition: form-data; "
                                "name=\"f\"; filename=\"big.bin\"\r\n\r\n");
  memset(big + off, 'z', n);
  off += n;
  off += (size_t)snprintf(big + off, 512, "\r\n--XyZ--\r\n");
  post(p, ct, big, off, &r);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.body, "file"));
  ht_resp_free(&r);
  free(big);
  usleep(50000);
  assert_int_equal(files_in(upload_dir), 0);
  /* Malformed: no closing boundary. */
  const char *cut = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
                    "filename=\"a.txt\"\r\n\r\nabc";
  post(p, ct, cut, strlen(cut), &r);
  assert_int_equal(r.status, 400);
  ht_resp_free(&r);
  assert_int_equal(files_in(upload_dir), 0);
  /* A client that goes away half-way leaves no file either. */
  ht_conn_t *c = ht_connect(p);
  ht_sends(c, "POST /show HTTP/1.1\r\nHost: x\r\nContent-Type: "
              "multipart/form-data; boundary=XyZ\r\nContent-Length: 100000"
              "\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
              "filename=\"half.txt\"\r\n\r\nsome bytes");
  usleep(100000);
  ht_close(c);
  usleep(200000);
  assert_int_equal(files_in(upload_dir), 0);
  /* No boundary. */
  expect_post(p, "multipart/form-data", "x", 400, NULL);
  stop(hs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_urlencoded_and_text),
      cmocka_unit_test(test_multipart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
