/* fuzz_request.c -- libFuzzer harness for the HTTP/1.1 server's request
 * path: bytes in -> parser -> router -> handlers and body readers ->
 * responses out.
 *
 * One runtime, loop, application and server live for the whole run.  Each
 * input is one connection: a socketpair whose one end the server adopts
 * (rt_server_adopt); the harness writes the input to the other end in 1-3
 * writes (input byte 0 picks how many, bytes 1-2 where they split, the
 * rest is the client's byte stream), running the loop between writes,
 * shuts down writing and runs the loop (uv_run NOWAIT, bounded in steps
 * and wall time) until the server has closed the connection and nothing
 * the application scheduled is left.  Then, for what the client read:
 *
 *   - every response starts "HTTP/1.1 " and a 3-digit status, its head is
 *     whole (CRLF-terminated header lines of a token name, a colon and a
 *     value without CR/LF), and its body is framed as the head says:
 *     Content-Length (never with Transfer-Encoding, never twice) or
 *     chunked (hex sizes, CRLF after each chunk, a last 0 chunk), none for
 *     1xx, 204, 304 and HEAD, or to the end of the connection; only a
 *     streamed body (chunked or to the end) may be cut, and only the last;
 *   - interim responses are 100 Continue; a response after "Connection:
 *     close" is a bug;
 *   - final responses are no more than the heads the input can hold (an
 *     empty line each) plus one error answer, and no more than the server
 *     dispatched plus one; each dispatched response carries the X-Seq the
 *     root middleware gave it, in order (pipelining answered in order);
 *   - the server's counters agree with the application's: every request it
 *     dispatched ran the root middleware, every on_finish hook ran once per
 *     finished response, every body reader got its last call (the end or
 *     an error) exactly once;
 *   - the connection ends: EOF on the client end, rt_server_stats
 *     connections back to 0, no exchange, no write request, no connection
 *     left on the server's lists and nothing pending on the loop (the
 *     server's own timer aside): no state carries over to the next input.
 *
 * Byte 0's top bit makes a slow client: it shuts down writing only once
 * the server has closed, so the keep-alive, head and body timeouts run.
 * They run on a virtual clock: clock_gettime is interposed, and when
 * nothing moves the harness moves the loop's clock to its next timer.
 *
 * Checks once off while the bugs they found were open, now always on: a
 * connection that ends only by a timeout after the client's EOF, a head
 * ended by "\r\n\r" and any byte, a silent client after a head timeout,
 * a reader paused while its body completes (POST /echo/pause).
 * FUZZ_REQUEST_LAX=1 turns them off; FUZZ_REQUEST_VERBOSE=1 prints what
 * the server wrote.
 *
 * ASan/LSan/UBSan catch the rest.  The heap is small and collects every
 * 50 allocations (TENURE_OPTIONS adds flags: "--stress-gc --verify-heap"),
 * so requests, params and bodies move under the handlers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <tenure/gc.h>
#include <tenure/gc_options.h>
#include <tenure/rt.h>
#include <tenure/rt_http.h>
#include <tenure/rt_loop.h>
#include <tenure/rt_map.h>
#include <tenure/rt_string.h>

#include "http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_SEQ 4096

static rt_runtime_t *rt;
static rt_loop_t *loop;
static rt_app_t *app, *sub;
static rt_server_t *srv;
static FILE *devnull;

/* --- A virtual clock ---------------------------------------------------------
 * The server's timeouts (keep-alive 5 s, head 60 s, body 300 s, linger
 * 2 s) are real: waiting for them would make each input take seconds.  So
 * the monotonic clocks libuv and the server read are interposed, and while
 * the harness runs the loop (this thread, in_loop) they read an offset the
 * harness moves forward to the next timer whenever nothing else is
 * happening.  libFuzzer's own clock reads (other threads, or outside the
 * loop) see the real time. */
static __thread bool in_loop;
static uint64_t clock_skew_ns;
typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

__attribute__((visibility("default"))) int clock_gettime(clockid_t id,
                                                     struct timespec *ts) {
  static clock_gettime_fn real;
  if (real == NULL)
    real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
  int r = real(id, ts);
  if (r == 0 && in_loop &&
      (id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE) &&
      clock_skew_ns != 0) {
    uint64_t ns = (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec +
                  clock_skew_ns;
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
  }
  return r;
}

static void run_nowait(void) {
  in_loop = true;
  uv_run(rt_loop_uv(loop), UV_RUN_NOWAIT);
  in_loop = false;
}

/* Moves the virtual clock to the loop's next timer.  Returns the ms
 * skipped (0: no timer). */
static uint64_t skip_to_next_timer(void) {
  int t = uv_backend_timeout(rt_loop_uv(loop));
  if (t <= 0)
    return 0;
  clock_skew_ns += (uint64_t)t * 1000000u;
  if (getenv("FUZZ_REQUEST_TRACE") != NULL)
    fprintf(stderr, "skip %d ms\n", t);
  return (uint64_t)t;
}


/* What the application saw during one input. */
static struct {
  unsigned mw;            /* root middleware calls (dispatched requests) */
  unsigned finished;      /* on_finish hooks */
  unsigned reads_begun;   /* rt_req_read accepted */
  unsigned reads_ended;   /* last calls (END or an error) */
  unsigned errors;        /* error handler calls */
  bool head[MAX_SEQ];     /* request SEQ was a HEAD */
} app_seen;

#define DIE(...)                                                             \
  do {                                                                       \
    fprintf(stderr, "fuzz_request: " __VA_ARGS__);                           \
    fputc('\n', stderr);                                                     \
    abort();                                                                 \
  } while (0)

/* --- The application ------------------------------------------------------- */

static gc_heap_t *heap(void) { return rt_heap(rt); }

static void on_finish(rt_value_t *req, void *data) {
  (void)req;
  (void)data;
  app_seen.finished++;
}

/* Root middleware: numbers the request (X-Seq), builds the query and the
 * cookies (rt_req_get: GC points) and looks at them, may fail it. */
static void mw_root(rt_value_t *req, void *data) {
  (void)data;
  unsigned seq = app_seen.mw++;
  const char *m = rt_req_method(*req);
  if (m == NULL)
    DIE("rt_req_method is NULL in a live request");
  if (seq < MAX_SEQ)
    app_seen.head[seq] = strcmp(m, "HEAD") == 0;
  char s[16];
  snprintf(s, sizeof s, "%u", seq);
  if (rt_res_set_header(req, "X-Seq", s) != 0)
    DIE("rt_res_set_header X-Seq failed");
  if (rt_res_on_finish(req, on_finish, NULL) != 0)
    DIE("rt_res_on_finish failed");
  rt_value_t q = rt_req_get(req, RT_REQ_QUERY);
  if (!rt_is_map(q))
    DIE("query is not a Map");
  rt_value_t *qh = rt_handle(heap(), q);
  rt_value_t c = rt_req_get(req, RT_REQ_COOKIES);
  if (!rt_is_map(c))
    DIE("cookies is not a Map");
  rt_value_t sid = rt_map_get_cstr(c, "sid");
  if (rt_is_string(sid))
    rt_res_set_header(req, "X-Sid-Len", rt_string_length(sid) > 8 ? "long"
                                                                   : "short");
  rt_value_t f = rt_map_get_cstr(*qh, "fail");
  if (rt_is_string(f)) {
    rt_next(req, atoi(rt_string_data(f)));
    return;
  }
  rt_value_t h = rt_req_header(*req, "x-mark");
  if (rt_is_string(h))
    rt_res_append_header(req, "X-Mark", rt_string_data(h)); /* may refuse */
  rt_next(req, 0);
}

static void h_hello(rt_value_t *req, void *data) {
  (void)data;
  rt_res_send(req, "hello\n", 6);
}

/* GET /users/:id and the sub-app's /items/:id: the param back. */
static void h_param(rt_value_t *req, void *data) {
  rt_value_t v = rt_map_get_cstr(rt_req_get(req, RT_REQ_PARAMS),
                                 (const char *)data);
  if (!rt_is_string(v))
    DIE("param %s missing", (const char *)data);
  rt_value_t *vh = rt_handle(heap(), v);
  rt_res_send_string(req, vh);
}

static void h_json(rt_value_t *req, void *data) {
  rt_value_t v = rt_req_get(req, (rt_req_field_t)(intptr_t)data);
  rt_value_t *vh = rt_handle(heap(), v);
  rt_res_json(req, vh);
}

static void h_subpath(rt_value_t *req, void *data) {
  (void)data;
  size_t n;
  const char *p = rt_req_subpath(*req, &n);
  char out[512];
  int k = snprintf(out, sizeof out, "sub:%.*s", (int)(n > 400 ? 400 : n), p);
  rt_res_send(req, out, (size_t)k);
}

static void mw_sub(rt_value_t *req, void *data) {
  (void)data;
  rt_res_set_header(req, "X-Sub", "1");
  rt_next(req, 0);
}

/* GET /fail/:code: rt_next with that error. */
static void h_fail(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t v = rt_map_get_cstr(rt_req_get(req, RT_REQ_PARAMS), "code");
  rt_next(req, rt_is_string(v) ? atoi(rt_string_data(v)) : 500);
}

static void e_handler(rt_value_t *req, int err, void *data) {
  (void)data;
  app_seen.errors++;
  if (err == 418) { /* passed on: the server's own answer */
    rt_next(req, err);
    return;
  }
  if (err == 419) { /* recovered: dispatch goes on */
    rt_next(req, 0);
    return;
  }
  char out[64];
  int k = snprintf(out, sizeof out, "error %d\n", err);
  rt_res_status(req, err >= 400 && err <= 599 ? err : 500);
  rt_res_send(req, out, (size_t)k);
}

/* An answer from a timer: the request travels as a value. */
static void later_cb(rt_loop_t *l, void *data, rt_value_t *args,
                     size_t nargs) {
  (void)l;
  (void)data;
  if (nargs != 1)
    DIE("later: %zu args", nargs);
  for (int i = 0; i < 200; i++) /* garbage: the request moves */
    rt_string_cstr(rt, "garbage garbage garbage garbage");
  rt_res_send(&args[0], "later\n", 6); /* -EPIPE when the request is over */
}

static void h_later(rt_value_t *req, void *data) {
  (void)data;
  if (rt_set_timeout(loop, 1, later_cb, NULL, req, 1, NULL) != 0)
    rt_res_send_status(req, 500);
}

/* GET /stream?n=K: K chunks now, one more and the end from a timer. */
static void stream_end(rt_loop_t *l, void *data, rt_value_t *args,
                       size_t nargs) {
  (void)l;
  (void)data;
  (void)nargs;
  if (rt_res_write(&args[0], "last chunk\n", 11) >= 0)
    rt_res_end(&args[0]);
}

static void h_stream(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t n = rt_map_get_cstr(rt_req_get(req, RT_REQ_QUERY), "n");
  int k = rt_is_string(n) ? atoi(rt_string_data(n)) : 2;
  if (k < 0 || k > 16)
    k = 2;
  rt_res_set_header(req, "Content-Type", "text/plain");
  for (int i = 0; i < k; i++) {
    char line[32];
    int len = snprintf(line, sizeof line, "chunk %d\n", i);
    if (rt_res_write(req, line, (size_t)len) < 0)
      return;
  }
  if (rt_set_timeout(loop, 1, stream_end, NULL, req, 1, NULL) != 0)
    rt_res_end(req);
}

/* POST /echo/:mode: reads the body, answers its length.  Modes: "now"
 * (answer at the end), "later" (from a timer), "pause" (pause at the first
 * piece, resume from a timer), "early" (answer before reading: the body is
 * then discarded). */
typedef struct body_s {
  size_t n;
  int mode;
  bool paused_once;
  bool ended;
} body_t;

enum { M_NOW, M_LATER, M_PAUSE };

static void resume_cb(rt_loop_t *l, void *data, rt_value_t *args,
                      size_t nargs) {
  (void)l;
  (void)data;
  (void)nargs;
  rt_req_resume(&args[0]);
}

static void answer_len(rt_value_t *req, size_t n) {
  char out[64];
  int k = snprintf(out, sizeof out, "len=%zu\n", n);
  rt_res_send(req, out, (size_t)k);
}

static void later_len_cb(rt_loop_t *l, void *data, rt_value_t *args,
                         size_t nargs) {
  (void)l;
  (void)nargs;
  answer_len(&args[0], (size_t)(uintptr_t)data);
}

static void body_cb(rt_value_t *req, const char *d, size_t n, int st,
                    void *ud) {
  body_t *b = ud;
  if (b->ended)
    DIE("body reader called after its last call (status %d)", st);
  if (st == 0) {
    if (n == 0 || d == NULL)
      DIE("an empty body piece");
    b->n += n;
    if (b->mode == M_PAUSE && !b->paused_once) {
      b->paused_once = true;
      rt_req_pause(req);
      if (rt_set_timeout(loop, 1, resume_cb, NULL, req, 1, NULL) != 0)
        rt_req_resume(req);
    }
    return;
  }
  b->ended = true;
  app_seen.reads_ended++;
  if (st == RT_BODY_END) {
    if (d != NULL)
      DIE("RT_BODY_END with data");
    if (b->mode == M_LATER) {
      if (rt_set_timeout(loop, 1, later_len_cb, (void *)(uintptr_t)b->n, req,
                         1, NULL) != 0)
        answer_len(req, b->n);
    } else {
      answer_len(req, b->n);
    }
  } else if (st != -ETIMEDOUT && st != -ECONNRESET && st != -EMSGSIZE &&
             st != -EPROTO) {
    DIE("body reader: status %d", st);
  }
  /* errors: the server answers (or the connection is gone) */
  free(b);
}

static void h_echo(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t mv = rt_map_get_cstr(rt_req_get(req, RT_REQ_PARAMS), "mode");
  const char *m = rt_is_string(mv) ? rt_string_data(mv) : "now";
  if (strcmp(m, "early") == 0) {
    rt_res_send(req, "early\n", 6);
    return;
  }
  body_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    abort();
  /* "pause": the reader pauses at its first piece, resumes from a timer. */
  b->mode = strcmp(m, "later") == 0 ? M_LATER
            : strcmp(m, "pause") == 0 && getenv("FUZZ_REQUEST_LAX") == NULL
                ? M_PAUSE
                : M_NOW;
  int r = rt_req_read(req, body_cb, b);
  if (r != 0) {
    free(b);
    DIE("rt_req_read: %d in a fresh handler", r);
  }
  app_seen.reads_begun++;
}

/* ALL /any/:a/:b: the params and method as JSON. */
static void h_any(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t p = rt_req_get(req, RT_REQ_PARAMS);
  rt_value_t *ph = rt_handle(heap(), p);
  rt_res_json(req, ph);
}

#ifdef FUZZ_HAVE_BODYPARSER
/* POST /parse: the body a body parser made. */
static void h_parsed(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t v = rt_req_get(req, RT_REQ_BODY);
  rt_value_t *vh = rt_handle(heap(), v);
  if (rt_res_json(req, vh) != 0)
    rt_res_send(req, "unserializable\n", 15);
}
#endif

static void check(int r, const char *what) {
  if (r != 0)
    DIE("setup: %s: %d", what, r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  gc_options_t o;
  gc_options_init(&o);
  o.max_semi_space_size = 256 * 1024;
  o.min_semi_space_size = 64 * 1024;
  o.gc_interval = 50;
  char err[256];
  if (gc_options_parse_string(&o, getenv("TENURE_OPTIONS"), err, sizeof err))
    DIE("bad TENURE_OPTIONS: %s", err);
  gc_heap_t *h = NULL;
  check(gc_heap_create(&o, &h), "heap");
  check(rt_runtime_create(h, &rt), "runtime");
  check(rt_loop_create(rt, &loop), "loop");
  check(rt_app_create(rt, &app), "app");
  check(rt_app_create(rt, &sub), "sub-app");
  check(rt_app_use(app, NULL, mw_root, NULL), "use /");
#ifdef FUZZ_HAVE_BODYPARSER
  check(rt_mw_json(app, "/parse", 2048), "json");
  check(rt_mw_urlencoded(app, "/parse", 2048, NULL), "urlencoded");
  check(rt_mw_text(app, "/parse", 2048), "text");
  check(rt_app_post(app, "/parse", h_parsed, NULL), "post /parse");
#endif
  check(rt_app_get(app, "/", h_hello, NULL), "get /");
  check(rt_app_get(app, "/hello", h_hello, NULL), "get /hello");
  check(rt_app_get(app, "/users/:id", h_param, "id"), "get /users/:id");
  check(rt_app_get(app, "/files/*", h_param, "0"), "get /files/*");
  check(rt_app_get(app, "/query", h_json, (void *)(intptr_t)RT_REQ_QUERY),
        "get /query");
  check(rt_app_get(app, "/cookies", h_json, (void *)(intptr_t)RT_REQ_COOKIES),
        "get /cookies");
  check(rt_app_get(app, "/headers", h_json, (void *)(intptr_t)RT_REQ_HEADERS),
        "get /headers");
  check(rt_app_get(app, "/fail/:code", h_fail, NULL), "get /fail/:code");
  check(rt_app_get(app, "/later", h_later, NULL), "get /later");
  check(rt_app_get(app, "/stream", h_stream, NULL), "get /stream");
  check(rt_app_post(app, "/echo/:mode", h_echo, NULL), "post /echo/:mode");
  check(rt_app_put(app, "/echo/:mode", h_echo, NULL), "put /echo/:mode");
  check(rt_app_route(app, NULL, "/any/:a/:b", h_any, NULL), "all /any");
  check(rt_app_use(sub, "/v1", mw_sub, NULL), "sub use /v1");
  check(rt_app_get(sub, "/v1/items/:id", h_param, "id"), "sub get items");
  check(rt_app_get(sub, "/path/*", h_subpath, NULL), "sub get /path/*");
  check(rt_app_delete(sub, "/v1/items/:id", h_subpath, NULL), "sub delete");
  check(rt_app_mount(app, "/api", sub), "mount /api");
  check(rt_app_use_error(app, NULL, e_handler, NULL), "use_error");

  rt_server_options_t so;
  rt_server_options_init(&so);
  so.limits.max_head_bytes = 2048; /* small: the limits are reachable */
  so.limits.max_url_bytes = 256;
  so.limits.max_headers = 16;
  so.limits.max_body_bytes = 2048;
  devnull = fopen("/dev/null", "w");
  so.log = devnull; /* log lines are formatted, not shown */
  check(rt_server_create(loop, app, &so, &srv), "server");
  return 0;
}

/* --- The client -------------------------------------------------------------- */

typedef struct client_s {
  int fd;
  char *buf;
  size_t len, cap;
  bool eof;
} client_t;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads what is there; true when something came (or EOF). */
static bool client_read(client_t *c) {
  bool got = false;
  while (!c->eof) {
    if (c->cap - c->len < 4096) {
      c->cap = c->cap ? c->cap * 2 : 16384;
      c->buf = realloc(c->buf, c->cap);
      if (c->buf == NULL)
        abort();
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (r > 0) {
      c->len += (size_t)r;
      got = true;
    } else if (r == 0) {
      c->eof = true;
      got = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else if (errno == ECONNRESET) {
      c->eof = true; /* the server closed with unread input: an end too */
      got = true;
    } else {
      DIE("recv: %s", strerror(errno));
    }
  }
  return got;
}

static void pump(client_t *c, int rounds) __attribute__((unused));
static void pump(client_t *c, int rounds) {
  for (int i = 0; i < rounds; i++) {
    run_nowait();
    client_read(c);
  }
}

static void client_write(client_t *c, const char *p, size_t n) {
  double t0 = now_ms();
  while (n > 0) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pump(c, 1);
      if (now_ms() - t0 > 3000)
        DIE("the server stopped reading for 3 s with %zu bytes unsent", n);
    } else {
      return; /* EPIPE/ECONNRESET: the server closed; the rest is moot */
    }
  }
}

/* --- Checking the responses ------------------------------------------------ */

static bool is_tchar(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
         (ch >= 'A' && ch <= 'Z') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static const char *find(const char *p, const char *end, const char *s) {
  size_t n = strlen(s);
  if ((size_t)(end - p) < n)
    return NULL;
  return memmem(p, (size_t)(end - p), s, n);
}

typedef struct counts_s {
  unsigned finals, interims;
} counts_t;

static void dump(const char *p, size_t n) {
  fprintf(stderr, "---- the server wrote %zu bytes:\n", n);
  fwrite(p, 1, n > 4096 ? 4096 : n, stderr);
  fprintf(stderr, "\n----\n");
}

#define BAD(...)                                                             \
  do {                                                                       \
    dump(all, total);                                                        \
    fprintf(stderr, "at offset %zu: ", (size_t)(p - all));                   \
    DIE(__VA_ARGS__);                                                        \
  } while (0)

static counts_t check_responses(const char *all, size_t total) {
  counts_t k = {0, 0};
  const char *p = all, *end = all + total;
  bool closed = false;
  while (p < end) {
    if (closed)
      BAD("bytes after a response with Connection: close");
    const char *eoh = find(p, end, "\r\n\r\n");
    if (eoh == NULL)
      BAD("a response head cut short (or garbage)");
    if (eoh - p < 14 || memcmp(p, "HTTP/1.1 ", 9) != 0 ||
        !(p[9] >= '1' && p[9] <= '9') || !(p[10] >= '0' && p[10] <= '9') ||
        !(p[11] >= '0' && p[11] <= '9') || p[12] != ' ')
      BAD("not a status line");
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *line_end = find(p, eoh + 2, "\r\n");
    for (const char *q = p; q < line_end; q++)
      if (*q == '\n' || *q == '\r' || *q == '\0')
        BAD("a control character in the status line");
    /* Headers. */
    long long cl = -1;
    int ncl = 0;
    bool chunked = false, close = false, has_seq = false;
    long seq = -1;
    const char *h = line_end + 2;
    while (h < eoh + 2) {
      const char *e = find(h, eoh + 2, "\r\n");
      const char *colon = memchr(h, ':', (size_t)(e - h));
      if (colon == NULL || colon == h)
        BAD("a header line without a name and a colon");
      for (const char *q = h; q < colon; q++)
        if (!is_tchar((unsigned char)*q))
          BAD("a header name with a non-token byte");
      for (const char *q = colon + 1; q < e; q++)
        if (*q == '\r' || *q == '\n' || *q == '\0')
          BAD("a control character in a header value");
      size_t nl = (size_t)(colon - h);
      const char *v = colon + 1;
      while (v < e && *v == ' ')
        v++;
      size_t vl = (size_t)(e - v);
      char val[256];
      snprintf(val, sizeof val, "%.*s", (int)(vl < 255 ? vl : 255), v);
      if (nl == 14 && strncasecmp(h, "content-length", 14) == 0) {
        ncl++;
        char *ep;
        cl = strtoll(val, &ep, 10);
        if (*ep != '\0' || cl < 0 || vl == 0)
          BAD("a bad Content-Length");
      } else if (nl == 17 && strncasecmp(h, "transfer-encoding", 17) == 0) {
        if (strcasecmp(val, "chunked") != 0)
          BAD("a Transfer-Encoding other than chunked");
        chunked = true;
      } else if (nl == 10 && strncasecmp(h, "connection", 10) == 0) {
        close = strcasestr(val, "close") != NULL;
      } else if (nl == 5 && strncasecmp(h, "x-seq", 5) == 0) {
        has_seq = true;
        seq = strtol(val, NULL, 10);
      }
      h = e + 2;
    }
    if (ncl > 1)
      BAD("Content-Length twice");
    if (ncl > 0 && chunked)
      BAD("both Content-Length and chunked");
    const char *body = eoh + 4;
    if (status < 200) {
      if (status != 100)
        BAD("an interim response other than 100");
      if (ncl > 0 || chunked)
        BAD("a 100 with a body");
      k.interims++;
      p = body;
      continue;
    }
    unsigned idx = k.finals++;
    if (has_seq && seq != (long)idx)
      BAD("response %u carries X-Seq %ld: out of order", idx, seq);
    /* HEAD: known for the requests the middleware numbered; an answer to a
     * request it never saw (the server's own error) may be either. */
    int head = idx < app_seen.mw && idx < MAX_SEQ ? app_seen.head[idx] : -1;
    bool nobody = status == 204 || status == 304;
    if (nobody && (ncl > 0 || chunked))
      BAD("a %d with body framing", status);
    closed = close;
    if (nobody || head == 1) {
      p = body;
    } else if (cl >= 0) {
      if (head == -1 && !close)
        BAD("an answer to an undispatched request that keeps the "
            "connection");
      if ((size_t)(end - body) < (size_t)cl) {
        if (head == -1 && body == end)
          p = body; /* a HEAD's error */
        else
          BAD("a Content-Length body cut short (%lld, %zu there)", cl,
              (size_t)(end - body));
      } else {
        p = body + cl;
        if (head == -1 && p != end && body != end)
          BAD("bytes after the error answer");
      }
    } else if (chunked) {
      const char *q = body;
      bool last = false;
      while (!last) {
        const char *e = find(q, end, "\r\n");
        if (e == NULL) {
          q = end;
          break; /* cut */
        }
        if (e == q)
          BAD("an empty chunk-size line");
        size_t sz = 0;
        for (const char *d = q; d < e; d++) {
          int x = rt__hexval(*d);
          if (x < 0)
            BAD("a bad chunk size");
          sz = sz * 16 + (size_t)x;
          if (sz > (1u << 30))
            BAD("a huge chunk");
        }
        q = e + 2;
        if (sz == 0) {
          last = true;
          if ((size_t)(end - q) < 2)
            break; /* cut before the final CRLF */
          if (memcmp(q, "\r\n", 2) != 0)
            BAD("trailers or garbage after the last chunk");
          q += 2;
          break;
        }
        if ((size_t)(end - q) < sz + 2) {
          q = end;
          break; /* cut */
        }
        if (memcmp(q + sz, "\r\n", 2) != 0)
          BAD("no CRLF after a chunk");
        q += sz + 2;
      }
      if (!last || q > end)
        closed = true; /* cut: nothing may follow */
      p = q;
      if (!last && p != end)
        BAD("bytes after a cut stream");
    } else {
      if (!close)
        BAD("a body to the end of the connection without Connection: "
            "close");
      p = end;
    }
  }
  return k;
}

/* Heads the input can hold: each has at least two line ends (the request
 * line's and the empty line), and llhttp 8 takes a CR followed by any byte
 * as a line end, so every CR or LF may be one. */
static unsigned max_heads(const uint8_t *d, size_t n) {
  unsigned k = 0;
  for (size_t i = 0; i < n; i++)
    k += d[i] == '\n' || d[i] == '\r';
  return k / 2;
}

/* The strict count: an empty line after a line end, LF or CRLF only. */
static unsigned max_heads_crlf(const uint8_t *d, size_t n) {
  unsigned k = 0;
  for (size_t i = 0; i + 1 < n; i++)
    if (d[i] == '\n' &&
        (d[i + 1] == '\n' || (i + 2 < n && d[i + 1] == '\r' &&
                              d[i + 2] == '\n')))
      k++;
  return k;
}

#define FAIL(...)                                                            \
  do {                                                                       \
    dump(c.buf, c.len);                                                      \
    DIE(__VA_ARGS__);                                                        \
  } while (0)

/* --- One input ---------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return 0;
  bool slow = (data[0] & 0x80) != 0; /* the client waits for the server */
  int writes = 1 + (data[0] & 0x7f) % 3;
  const char *in = (const char *)data + 3;
  size_t n = size - 3;
  size_t cut[4] = {0, 0, 0, n};
  size_t a = (size_t)data[1] * n / 256, b = (size_t)data[2] * n / 256;
  if (a > b) {
    size_t t = a;
    a = b;
    b = t;
  }
  cut[1] = writes >= 2 ? a : n;
  cut[2] = writes >= 3 ? b : n;

  memset(&app_seen, 0, sizeof app_seen);
  rt_server_stats_t before, after;
  rt_server_stats(srv, &before);
  if (before.connections != 0)
    DIE("a connection left from the last input");

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    DIE("socketpair: %s", strerror(errno));
  client_t c = {sv[1], NULL, 0, 0, false};
  fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
  int r = rt_server_adopt(srv, sv[0]);
  if (r != 0)
    DIE("rt_server_adopt: %d", r);

  for (int i = 0; i < 3; i++) {
    if (cut[i + 1] > cut[i])
      client_write(&c, in + cut[i], cut[i + 1] - cut[i]);
    pump(&c, 4);
  }
  /* A fast client shuts down writing now; a slow one once the server has
   * closed (its timeouts: keep-alive, head, body, linger). */
  bool shut = !slow;
  if (shut)
    shutdown(c.fd, SHUT_WR);

  /* Until the server has closed, and the application's timers ran; when
   * nothing moves, the virtual clock goes to the next timer. */
  double t0 = now_ms();
  uint64_t skipped = 0, max_skip = 0;
  int still = 0;
  for (long steps = 0;; steps++) {
    run_nowait();
    bool got = client_read(&c);
    rt_server_stats(srv, &after);
    if (c.eof && !shut) {
      shutdown(c.fd, SHUT_WR);
      shut = true;
      got = true;
    }
    if (c.eof && after.connections == 0 && rt_loop_pending(loop) == 0)
      break;
    if (steps > 100000 || now_ms() - t0 > 3000 || skipped > 1000000) {
      dump(c.buf, c.len);
      DIE("the connection did not end: eof %d, connections %llu, loop "
          "pending %zu, after %ld steps and %llu virtual ms",
          c.eof, (unsigned long long)after.connections,
          rt_loop_pending(loop), steps, (unsigned long long)skipped);
    }
    if (got) {
      still = 0;
    } else if (++still >= 2) {
      uint64_t k = skip_to_next_timer();
      if (k == 0 && !shut && uv_backend_timeout(rt_loop_uv(loop)) < 0) {
        /* The server waits for the client with no timer left (the head
         * timeout's 408 is queued and never flushed, reported with
         * the harness): the slow client gives up, as a real one would. */
        if (getenv("FUZZ_REQUEST_LAX") == NULL) {
          dump(c.buf, c.len);
          DIE("the server waits on a silent client with no timer left");
        }
        shutdown(c.fd, SHUT_WR);
        shut = true;
      }
      skipped += k;
      if (k > max_skip)
        max_skip = k;
      still = 0;
    }
  }
  /* One more round: close callbacks of what the loop just freed. */
  run_nowait();
  close(c.fd);
  if (!slow && after.timeouts != before.timeouts &&
      getenv("FUZZ_REQUEST_LAX") == NULL) {
    dump(c.buf, c.len);
    DIE("the client had sent everything and shut down, yet the connection "
        "ended only by a server timeout (%llu virtual ms skipped)",
        (unsigned long long)skipped);
  }

  /* No state left behind. */
  if (srv->conns != NULL || srv->exchanges != NULL || srv->wreqs != NULL ||
      srv->ready_head != NULL)
    DIE("server state left: conns %p exchanges %p wreqs %p ready %p",
        (void *)srv->conns, (void *)srv->exchanges, (void *)srv->wreqs,
        (void *)srv->ready_head);
  for (int k = X__T_IDLE; k < X__T_NLISTS; k++)
    if (srv->thead[k] != NULL)
      DIE("a connection left on timeout list %d", k);
  if (srv->rbuf_busy)
    DIE("the read buffer is still busy");

  if (getenv("FUZZ_REQUEST_VERBOSE") != NULL)
    dump(c.buf, c.len);
  counts_t k = check_responses(c.buf, c.len);
  unsigned dispatched = (unsigned)(after.requests - before.requests);
  unsigned finished = (unsigned)(after.responses - before.responses);
  if (after.accepted - before.accepted != 1)
    FAIL("accepted %llu connections for one",
        (unsigned long long)(after.accepted - before.accepted));
  if (app_seen.mw != dispatched)
    FAIL("the server dispatched %u requests, the root middleware saw %u",
        dispatched, app_seen.mw);
  /* on_finish runs however a request ends: once per dispatched request. */
  if (app_seen.finished != dispatched)
    FAIL("%u requests dispatched, %u on_finish hooks ran", dispatched,
        app_seen.finished);
  if (app_seen.reads_begun != app_seen.reads_ended)
    FAIL("%u body reads began, %u got their last call", app_seen.reads_begun,
        app_seen.reads_ended);
  unsigned heads = max_heads((const uint8_t *)in, n);
  if (k.finals > heads + 1)
    FAIL("%u responses for at most %u heads (+1 error)", k.finals, heads);
  if (getenv("FUZZ_REQUEST_LAX") == NULL &&
      app_seen.mw > max_heads_crlf((const uint8_t *)in, n))
    FAIL("%u requests dispatched from input with %u CRLF-delimited heads: "
         "a head ended by a bare CR", app_seen.mw,
         max_heads_crlf((const uint8_t *)in, n));
  if (k.finals > dispatched + 1)
    FAIL("%u responses for %u dispatched requests (+1 error)", k.finals,
        dispatched);
  if (finished > k.finals)
    FAIL("%u responses finished, the client read %u", finished, k.finals);
  free(c.buf);
  return 0;
}
