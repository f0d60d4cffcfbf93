/* http_internal.h -- the structures shared by the HTTP server's files:
 * server.c (connections, input, output, timeouts, the exchange's life),
 * request.c (the Request value), response.c (heads, bodies, files),
 * router.c (applications and dispatch), middleware.c (built-ins).
 *
 * Ownership.  A connection (x__conn_t, malloc'd, its uv_tcp_t first) owns
 * at most one exchange (x__exchange_t): the request being served.  The
 * exchange owns the Request heap value through a root slot (the server's
 * root tracer reports every live exchange), and the Request points back at
 * the exchange (rt__req_t.ex, not traced).
 *
 * INV(exchange): ex->conn != NULL for as long as the exchange exists; when
 * the connection closes its exchange is finished first, so an exchange
 * never outlives its connection.  When an exchange is freed, its Request's
 * ex is set to NULL: functions on the Request then return -EPIPE.
 *
 * INV(idle): a connection between requests with no unparsed input holds no
 * parser, no input and no output buffer (the per-connection memory target:
 * a uv_tcp_t and this struct).
 */
#ifndef RT_HTTP_INTERNAL_H
#define RT_HTTP_INTERNAL_H

#include <stdio.h>
#include <uv.h>

#include <tenure/rt_http.h>

#include "rt_internal.h"

/* The heap object of a request. */
typedef struct rt__req_s {
  struct x__exchange_s *ex; /* off-heap; NULL once the request is over */
  rt_value_t f[RT_REQ__NFIELDS];
} rt__req_t;

extern const gc_type_t rt__req_type;

/* Timeout lists, one per kind of wait; a connection is on at most one. */
enum {
  X__T_NONE,
  X__T_IDLE,    /* between requests: keep_alive_timeout */
  X__T_HEAD,    /* a head is arriving: headers_timeout */
  X__T_REQUEST, /* a body is arriving: request_timeout from the start */
  X__T_LINGER,  /* shut down for writing, draining the peer's bytes */
  X__T_NLISTS
};

typedef struct x__conn_s x__conn_t;
typedef struct x__exchange_s x__exchange_t;

typedef struct x__hook_s {
  rt_drain_fn fn;
  void *data;
} x__hook_t;

#define X__HOOKS 4
#define X__MOUNT_DEPTH 8

typedef struct x__frame_s {
  rt_app_t *app;
  size_t idx;  /* the next layer to try */
  size_t base; /* bytes of the path under the mounts above */
} x__frame_t;

/* Response headers kept in the exchange itself (INV(hdr)): /hello's
 * Content-Type and X-Response-Time, a session's Set-Cookie. */
#define X__HDR_INLINE 8
#define X__HDR_TEXT 384

struct x__exchange_s {
  x__exchange_t *prev, *next;   /* the server's live exchanges (rooted) */
  x__exchange_t *hprev, *hnext; /* the handler-timeout list */
  uint64_t hdeadline;
  x__conn_t *conn;
  rt_server_t *srv;
  rt_value_t req; /* the Request: a root */
  uint64_t start_ns;
  const char *method;
  int minor;
  bool keep_alive;      /* the request allows it; the server may still close */
  bool expect_continue; /* ... and "100 Continue" not sent yet */
  bool is_head;
  bool body_expected; /* Content-Length > 0 or chunked */
  bool body_done;     /* the request has been read to its end */
  int64_t content_length;
  uint64_t body_seen;
  /* Dispatch. */
  x__frame_t stack[X__MOUNT_DEPTH];
  int depth;
  int err;           /* the error being passed to error handlers, or 0 */
  char *err_msg;     /* its message (rt_next_error), malloc'd, or NULL */
  unsigned allow;    /* methods of routes that matched the path */
  size_t layer_base; /* path bytes above the running layer (subpath) */
  bool dispatching;  /* the final handler has not run */
  /* The body reader. */
  rt_body_fn body_fn;
  void *body_ud;
  bool body_paused;
  char *held; /* pieces that came while paused */
  size_t held_len, held_cap;
  /* The response. */
  int status;
  /* INV(hdr): hdr[0 .. nhdr) are "Name\0value" strings, each either in
   * hdr_text[0 .. hdr_text_len) or malloc'd; hdr is hdr_inline or a
   * malloc'd array (NULL before the first header).  A response's usual
   * few headers cost no allocation. */
  char **hdr;
  size_t nhdr, hdr_cap, hdr_text_len;
  char *hdr_inline[X__HDR_INLINE];
  char hdr_text[X__HDR_TEXT];
  bool head_sent, ended, chunked_out, no_body, close_after;
  bool finishing;
  bool holding;       /* rt_res_hold: nothing goes out until released */
  size_t hold_from;   /* the connection's out_len when the hold began */
  uint64_t bytes_out;
  rt_drain_fn drain_fn;
  void *drain_data;
  x__hook_t on_head[X__HOOKS], on_finish[X__HOOKS];
  int nhead, nfinish;
  int file_fd; /* a file being sent, or -1 */
  int64_t file_off, file_end;
  char peer[64];
};

/* Whether the request frames a body: Content-Length (0 counts: a body
 * parser still sees an empty body) or Transfer-Encoding.  Without it a
 * body parser has nothing to read (body-parser's hasBody). */
static inline bool x__has_body_framing(const x__exchange_t *ex) {
  return ex->body_expected || ex->content_length >= 0;
}

struct x__conn_s {
  uv_tcp_t tcp; /* first: the handle's address is the connection's */
  rt_server_t *srv;
  x__conn_t *prev, *next;   /* all connections */
  x__conn_t *tprev, *tnext; /* the timeout list of kind `tlist` */
  uint64_t deadline;        /* ms, uv_now's clock */
  uint64_t req_start;       /* ms: the first byte of the request */
  x__conn_t *rnext;         /* the ready list */
  rt_http_parser_t *parser; /* NULL while idle */
  char *in;                 /* unparsed input, NULL when none */
  size_t in_len, in_cap;
  char *out; /* output not yet handed to libuv (corked) */
  size_t out_len, out_cap;
  x__exchange_t *ex;
  uint8_t tlist;
  bool reading, closing, shutting, eof, processing, again, in_ready;
  bool need_feed; /* the parser stopped after a head: feed it again */
  bool failed;    /* a protocol error was answered: close after output */
  bool out_borrowed; /* out is the server's scratch buffer */
};

struct rt_app_s;

struct rt_server_s {
  rt_loop_t *loop;
  rt_runtime_t *rt;
  gc_heap_t *h;
  uv_loop_t *uv;
  rt_app_t *app;
  rt_server_options_t o;
  uv_tcp_t listener;
  uv_timer_t timer;
  uv_check_t check;
  uv_idle_t idle;
  uv_signal_t sigterm, sigint;
  bool listening, timer_on, signals, closing, closed;
  int handles_open; /* libuv handles not yet closed */
  uint64_t timer_due;
  uint64_t drain_deadline;
  rt_server_done_fn done;
  void *done_data;
  int port;
  x__conn_t *conns;
  x__conn_t *thead[X__T_NLISTS], *ttail[X__T_NLISTS];
  x__exchange_t *exchanges;
  x__exchange_t *hhead, *htail;
  struct x__wreq_s *wreqs;
  x__conn_t *ready_head, *ready_tail;
  rt_http_parser_t *pool[64];
  size_t npool;
  char *rbuf; /* the shared read buffer */
  bool rbuf_busy;
  char *scratch; /* the shared output buffer (a connection borrows it) */
  bool scratch_busy;
  rt_server_stats_t stats;
  time_t date_sec;
  char date[40]; /* "Date: ...\r\n" of date_sec */
  char keep_alive_line[80]; /* "Connection: keep-alive\r\nKeep-Alive: ..." */
  size_t keep_alive_len;
};

/* --- server.c -------------------------------------------------------------- */

/* The exchange of request handle REQ, or NULL when it is over. */
x__exchange_t *x__exchange_of(const rt_value_t *req);
/* Appends to the connection's output (flushed at the end of the current
 * input batch, or by x__conn_flush).  Returns 0 or -ENOMEM. */
int x__out(x__conn_t *c, const void *p, size_t n);
void x__conn_flush(x__conn_t *c);
/* Queues BUF's bytes P[0..N) without a copy, BUF kept alive until written. */
int x__out_buffer(x__conn_t *c, rt_value_t buf, const void *p, size_t n);
size_t x__queued(x__conn_t *c);
/* The response has ended (all its bytes handed to the connection). */
void x__response_ended(x__exchange_t *ex);
/* The body reader may take more (rt_req_read, resume). */
void x__want_input(x__conn_t *c);
/* Runs FN(handle of the request, DATA) in a scope of its own. */
void x__call(x__exchange_t *ex, rt_drain_fn fn, void *data);
void x__log(rt_server_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *x__date_header(rt_server_t *s);
void x__handler_timer_stop(x__exchange_t *ex);

/* --- router.c ------------------------------------------------------------ */

/* rt_app_use_owned for a body parser: the router steps over the layer,
 * without calling it, for a request with no body framing at all (neither
 * Content-Length nor Transfer-Encoding), where a body parser would only
 * call rt_next (as body-parser's hasBody test). */
int x__app_use_body(rt_app_t *a, const char *path, rt_http_fn fn, void *data,
                    void (*free_data)(void *));

/* --- request.c ----------------------------------------------------------- */

/* GC point.  Builds the Request of HEAD into ex->req.  Returns 0 or
 * -ENOMEM. */
int x__request_build(x__exchange_t *ex, const rt_http_head_t *head);
/* The path bytes of the request (before '?'), NUL-terminated, from the
 * Request's path string: valid until the next GC point. */
const char *x__req_path(x__exchange_t *ex, size_t *len);

/* --- response.c ----------------------------------------------------------- */

/* Answers STATUS with a text body (the server's own errors: 400, 404, 408,
 * ...); CLOSE forces Connection: close. */
void x__respond_error(x__exchange_t *ex, int status, const char *text,
                      bool close);
/* Writes a whole error response on a connection without an exchange (a
 * request that failed before its head was complete). */
void x__conn_error(x__conn_t *c, int status, const char *reason);
/* Moves a file being sent on: sendfile while the socket takes it, then a
 * read chunk through the write queue.  Called when the queue is empty. */
void x__file_pump(x__exchange_t *ex);
void x__exchange_free_response(x__exchange_t *ex);
const char *x__status_text(int status);

/* --- router.c -------------------------------------------------------------- */

/* Starts dispatch of a new exchange through APP. */
void x__dispatch(x__exchange_t *ex, rt_app_t *app);


static inline uint64_t x__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* RT_HTTP_INTERNAL_H */
