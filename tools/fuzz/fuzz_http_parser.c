/* fuzz_http_parser.c -- libFuzzer harness for the HTTP/1.1 request parser.
 *
 * The first byte of an input picks a read size (1 to 64, or all at once);
 * the rest is a byte stream from a client.  It is parsed twice: in one
 * feed, and in reads of that size, taking one request per completion as a
 * server does.  The two runs must agree exactly on the requests read
 * (method, URL, headers, body) and on the verdict (refused or not), since
 * where a client's bytes split must never change what a server reads (a
 * request smuggled through a read boundary would).  The status of a
 * refusal may differ when a request breaks two rules (a URL both too long
 * and malformed is 414 when its bytes come one by one, 400 when llhttp sees
 * the bad byte before the URL ends); each must be one the parser
 * documents.  A failed parser must stay failed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/rt_http_parser.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A digest of everything the callbacks saw, in order. */
typedef struct trace {
  uint64_t h;
  unsigned heads, completes;
} trace_t;

static void mix(trace_t *t, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    t->h = (t->h ^ b[i]) * 0x100000001b3ULL;
}

static int on_head(void *data, const rt_http_head_t *h) {
  trace_t *t = data;
  t->heads++;
  mix(t, "H", 1);
  mix(t, h->method, strlen(h->method));
  mix(t, h->url, h->url_len);
  for (size_t i = 0; i < h->nheaders; i++) {
    mix(t, h->headers[i].name, h->headers[i].name_len);
    mix(t, ":", 1);
    mix(t, h->headers[i].value, h->headers[i].value_len);
  }
  int64_t flags[] = {h->content_length, h->chunked, h->keep_alive,
                     h->expect_continue, h->major, h->minor};
  mix(t, flags, sizeof flags);
  return 0;
}

static int on_body(void *data, const char *at, size_t n) {
  mix(data, at, n); /* the decoded bytes, whatever the pieces */
  return 0;
}

static void on_complete(void *data) {
  trace_t *t = data;
  t->completes++;
  mix(t, "C", 1);
}

static const rt_http_parser_cb_t cb = {on_head, on_body, on_complete};

static int run(const char *p, size_t n, size_t step, trace_t *t,
               int *status) {
  rt_http_limits_t lim;
  rt_http_limits_init(&lim);
  lim.max_head_bytes = 2048; /* small, so the fuzzer reaches the limits */
  lim.max_url_bytes = 256;
  lim.max_headers = 16;
  lim.max_body_bytes = 4096;
  rt_http_parser_t *hp;
  if (rt_http_parser_create(&lim, &cb, t, &hp) != 0)
    abort();
  size_t off = 0;
  int r = 0;
  while (off < n) {
    size_t k = step == 0 || n - off < step ? n - off : step;
    size_t used = 0;
    r = rt_http_parser_feed(hp, p + off, k, &used);
    if (r < 0)
      break;
    if (used > k)
      abort(); /* used more than it was given */
    off += used;
  }
  if (r >= 0)
    r = rt_http_parser_eof(hp) < 0 ? -EPROTO : r > 0 ? 0 : r;
  *status = rt_http_parser_error(hp, NULL);
  if (r == -EPROTO) {
    int st = *status;
    if (st != 400 && st != 413 && st != 414 && st != 431 && st != 501 &&
        st != 505)
      abort();
    size_t used;
    if (rt_http_parser_feed(hp, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 27,
                            &used) != -EPROTO)
      abort(); /* a failed parser must stay failed */
  }
  rt_http_parser_destroy(hp);
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t step = data[0] % 65; /* 0: one feed */
  const char *p = (const char *)data + 1;
  size_t n = size - 1;
  trace_t a = {0xcbf29ce484222325ULL, 0, 0}, b = a;
  int sa, sb;
  int ra = run(p, n, 0, &a, &sa);
  int rb = run(p, n, step ? step : 1, &b, &sb);
  if (ra != rb || (sa == 0) != (sb == 0) || a.h != b.h || a.heads != b.heads ||
      a.completes != b.completes) {
    fprintf(stderr,
            "split changed the parse: step %zu: result %d/%d status %d/%d "
            "heads %u/%u completes %u/%u\n",
            step ? step : 1, ra, rb, sa, sb, a.heads, b.heads, a.completes,
            b.completes);
    abort();
  }
  return 0;
}
