/* http_test.h -- a real server on 127.0.0.1 (port 0) in a thread of its own,
 * and a blocking-socket client in the test's thread, for the HTTP server's
 * tests.
 *
 * The runtime is made on the test's thread (test_heap: TENURE_OPTIONS, so
 * the stress label runs the server under --stress-gc --verify-heap) and
 * then used by the server thread only, until it has stopped.
 */
#ifndef HTTP_TEST_H
#define HTTP_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "rt_test.h"

#include <tenure/rt_http.h>

typedef struct ht_server_s ht_server_t;
typedef void (*ht_setup_fn)(ht_server_t *hs, rt_app_t *app);

struct ht_server_s {
  pthread_t th;
  rt_runtime_t *rt;
  rt_loop_t *loop;
  rt_app_t *app;
  rt_server_t *s;
  rt_server_options_t o;
  ht_setup_fn setup;
  void *user;
  int port;
  uv_async_t stop;
  sem_t ready;
  bool done_called;
  int listen_err;
  /* The thread closes the server at once (graceful) when asked. */
};

static void ht__done(rt_server_t *s, void *data) {
  ht_server_t *hs = data;
  (void)s;
  hs->done_called = true;
  uv_close((uv_handle_t *)&hs->stop, NULL);
}

static void ht__stop(uv_async_t *a) {
  ht_server_t *hs = a->data;
  rt_server_close(hs->s, ht__done, hs);
}

static void *ht__main(void *arg) {
  ht_server_t *hs = arg;
  rt_loop_create(hs->rt, &hs->loop);
  rt_app_create(hs->rt, &hs->app);
  hs->setup(hs, hs->app);
  rt_server_create(hs->loop, hs->app, &hs->o, &hs->s);
  hs->listen_err = rt_server_listen(hs->s, "127.0.0.1", 0);
  hs->port = rt_server_port(hs->s);
  uv_async_init(rt_loop_uv(hs->loop), &hs->stop, ht__stop);
  hs->stop.data = hs;
  sem_post(&hs->ready);
  rt_loop_run(hs->loop);
  return NULL;
}

/* Starts a server whose application SETUP builds; O may be NULL. */
static inline ht_server_t *ht_start(ht_setup_fn setup,
                                    const rt_server_options_t *o, void *user) {
  ht_server_t *hs = calloc(1, sizeof *hs);
  assert_non_null(hs);
  hs->rt = rt_test_runtime();
  hs->setup = setup;
  hs->user = user;
  if (o != NULL)
    hs->o = *o;
  else
    rt_server_options_init(&hs->o);
  sem_init(&hs->ready, 0, 0);
  assert_int_equal(pthread_create(&hs->th, NULL, ht__main, hs), 0);
  sem_wait(&hs->ready);
  assert_int_equal(hs->listen_err, 0);
  assert_true(hs->port > 0);
  return hs;
}

/* Stops it gracefully and frees everything; checks the done callback ran
 * and that the loop has nothing left. */
static inline void ht_stop(ht_server_t *hs) {
  uv_async_send(&hs->stop);
  pthread_join(hs->th, NULL);
  assert_true(hs->done_called);
  rt_server_destroy(hs->s);
  assert_int_equal(rt_loop_destroy(hs->loop), 0);
  rt_app_destroy(hs->app);
  rt_runtime_destroy(hs->rt);
  sem_destroy(&hs->ready);
  free(hs);
}

/* --- The client ------------------------------------------------------------- */

typedef struct ht_conn_s {
  int fd;
  char buf[1 << 16];
  size_t len;
} ht_conn_t;

static inline ht_conn_t *ht_connect(int port) {
  ht_conn_t *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(c->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {test_under_valgrind() || test_under_stress() ? 60 : 10,
                       0};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return c;
}

static inline void ht_close(ht_conn_t *c) {
  close(c->fd);
  free(c);
}

static inline void ht_send(ht_conn_t *c, const void *p, size_t n) {
  const char *s = p;
  while (n > 0) {
    ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    assert_true(w > 0);
    s += w;
    n -= (size_t)w;
  }
}

static inline void ht_sends(ht_conn_t *c, const char *s) {
  ht_send(c, s, strlen(s));
}

/* Reads more into the buffer: bytes read, 0 at EOF, -1 on timeout/error. */
static inline ssize_t ht__fill(ht_conn_t *c) {
  if (c->len == sizeof c->buf)
    return -1;
  ssize_t r;
  do
    r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
  while (r < 0 && errno == EINTR);
  if (r > 0)
    c->len += (size_t)r;
  return r;
}

typedef struct ht_resp_s {
  int status;
  char head[8192]; /* the head as received, lower-cased names */
  char *body;      /* malloc'd, NUL-terminated */
  size_t body_len;
  bool close; /* Connection: close */
} ht_resp_t;

static inline void ht_resp_free(ht_resp_t *r) {
  free(r->body);
  r->body = NULL;
}

/* The value of header NAME (lower-case) in R's head, into BUF; NULL when
 * absent. */
static inline const char *ht_header(const ht_resp_t *r, const char *name,
                                    char *buf, size_t cap) {
  char pat[128];
  snprintf(pat, sizeof pat, "\r\n%s:", name);
  const char *p = strcasestr(r->head, pat);
  if (p == NULL)
    return NULL;
  p += strlen(pat);
  while (*p == ' ')
    p++;
  size_t i = 0;
  while (p[i] != '\r' && i + 1 < cap) {
    buf[i] = p[i];
    i++;
  }
  buf[i] = '\0';
  return buf;
}

static inline void ht__consume(ht_conn_t *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* Reads one response (HEAD: NO_BODY).  Returns 0, or -1 when the connection
 * ended (or timed out) before a whole response. */
static inline int ht_read_response(ht_conn_t *c, ht_resp_t *r, bool no_body) {
  memset(r, 0, sizeof *r);
  char *end;
  for (;;) {
    end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
    if (end != NULL)
      break;
    if (ht__fill(c) <= 0)
      return -1;
  }
  size_t hl = (size_t)(end - c->buf) + 4;
  size_t copy = hl < sizeof r->head - 1 ? hl : sizeof r->head - 1;
  memcpy(r->head, c->buf, copy);
  r->head[copy] = '\0';
  if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
    return -1;
  ht__consume(c, hl);
  if (r->status == 100) /* interim: the next head */
    return ht_read_response(c, r, no_body);
  char v[128];
  r->close = ht_header(r, "connection", v, sizeof v) != NULL &&
             strcasecmp(v, "close") == 0;
  bool chunked = ht_header(r, "transfer-encoding", v, sizeof v) != NULL;
  long long cl = ht_header(r, "content-length", v, sizeof v) != NULL
                     ? atoll(v)
                     : -1;
  if (no_body || r->status == 204 || r->status == 304)
    cl = 0, chunked = false;
  size_t cap = 1024, n = 0;
  r->body = malloc(cap);
  if (chunked) {
    for (;;) {
      char *eol;
      while ((eol = memmem(c->buf, c->len, "\r\n", 2)) == NULL)
        if (ht__fill(c) <= 0)
          return -1;
      size_t sz = strtoul(c->buf, NULL, 16);
      ht__consume(c, (size_t)(eol - c->buf) + 2);
      while (c->len < sz + 2)
        if (ht__fill(c) <= 0)
          return -1;
      if (n + sz + 1 > cap) {
        while (n + sz + 1 > cap)
          cap *= 2;
        r->body = realloc(r->body, cap);
      }
      memcpy(r->body + n, c->buf, sz);
      n += sz;
      ht__consume(c, sz + 2);
      if (sz == 0)
        break;
    }
  } else if (cl >= 0) {
    while (c->len < (size_t)cl) {
      size_t take = c->len;
      if (n + take + 1 > cap) {
        while (n + take + 1 > cap)
          cap *= 2;
        r->body = realloc(r->body, cap);
      }
      memcpy(r->body + n, c->buf, take);
      n += take;
      cl -= (long long)take;
      c->len = 0;
      if (ht__fill(c) <= 0)
        return -1;
    }
    if (n + (size_t)cl + 1 > cap) {
      cap = n + (size_t)cl + 1;
      r->body = realloc(r->body, cap);
    }
    memcpy(r->body + n, c->buf, (size_t)cl);
    n += (size_t)cl;
    ht__consume(c, (size_t)cl);
  } else { /* to the end of the connection */
    for (;;) {
      if (n + c->len + 1 > cap) {
        while (n + c->len + 1 > cap)
          cap *= 2;
        r->body = realloc(r->body, cap);
      }
      memcpy(r->body + n, c->buf, c->len);
      n += c->len;
      c->len = 0;
      if (ht__fill(c) <= 0)
        break;
    }
  }
  r->body[n] = '\0';
  r->body_len = n;
  return 0;
}

/* True when the server closed the connection (EOF) within MS ms, nothing
 * else arriving. */
static inline bool ht_closed_within(ht_conn_t *c, int ms) {
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  for (;;) {
    int r = poll(&p, 1, ms);
    if (r <= 0)
      return false;
    char b[4096];
    ssize_t n = recv(c->fd, b, sizeof b, 0);
    if (n == 0)
      return true;
    if (n < 0)
      return errno == ECONNRESET;
    /* data: keep reading until EOF */
  }
}

/* One request on a new connection, its response into R. */
static inline void ht_request(int port, const char *req, ht_resp_t *r) {
  ht_conn_t *c = ht_connect(port);
  ht_sends(c, req);
  assert_int_equal(ht_read_response(c, r, strncmp(req, "HEAD", 4) == 0), 0);
  ht_close(c);
}

#endif /* HTTP_TEST_H */
