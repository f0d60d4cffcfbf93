/* server.c -- the HTTP/1.1 server's connections: accepting, reading into
 * the parser, the exchange of each request from head to finish, output
 * through libuv's write queue, timeouts, and the graceful stop.
 *
 * Input.  Every read lands in one buffer shared by all connections (libuv
 * calls read_cb right after alloc_cb); what the parser cannot take now is
 * copied to the connection's own `in` and reading stops until it can.  The
 * parser stops after each head (RT_HTTP_PAUSE): the exchange is dispatched
 * outside the parser, and its body is fed only when a reader takes it, or
 * discarded once the response has ended.  The next pipelined request is
 * parsed only after the current exchange has finished, so responses go out
 * in request order.
 *
 * Output.  Bytes are appended to the connection's `out` and handed to libuv
 * at the end of the input batch (corking: a pipelined batch becomes one
 * write) or at once outside a batch: uv_try_write when nothing is queued,
 * else a write request that takes over the buffer.  Large Buffers go
 * without a copy, the Buffer rooted by its write request until written.
 *
 * Timeouts.  One libuv timer per server.  A connection waits on at most one
 * list (idle, head, request body, linger) and an exchange on the handler
 * list; each list is kept in deadline order (insertion walks from the tail,
 * where new deadlines almost always go), so the timer looks only at heads.
 *
 * INV(reading): a connection reads from its socket only while it is not
 * closing, has no saved input, and either the parser may take bytes now
 * (can_feed: between requests, or while a body is read and not paused, or
 * discarded after the response) or a request read whole waits for its
 * handler (can_wait).  Reading on while a handler answers later costs
 * nothing when the client sends nothing meanwhile (no epoll change per
 * request), and notices a client that goes away; bytes that do come are
 * saved, which stops reading until they are parsed, so at most one read
 * buffer is held per connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"

#define READ_BUF 65536
#define LINGER_MS 2000 /* after shutdown: how long the peer's bytes drain */
#define DISCARD_MAX 65536 /* an unread body up to this is read and dropped */
#define POOL_MAX 64
#define SCRATCH 65536 /* the shared output buffer */

typedef struct x__wreq_s {
  uv_write_t w;
  struct x__wreq_s *prev, *next; /* the server's write requests (rooted) */
  x__conn_t *c;
  char *owned;     /* malloc'd bytes, or NULL */
  rt_value_t keep; /* a Buffer whose bytes are written, or RT_NONE */
} x__wreq_t;

static void conn_close(x__conn_t *c);
static void conn_end_maybe(x__conn_t *c);
static void conn_process(x__conn_t *c, const char *data, size_t len);
static void conn_update_reading(x__conn_t *c);
static void exchange_finish(x__exchange_t *ex);
static void timer_arm(rt_server_t *s, uint64_t deadline);
static void handle_closed(uv_handle_t *hd);
static void deliver(x__exchange_t *ex, const char *at, size_t n, int status);

/* --- Logging, the date ------------------------------------------------------ */

void x__log(rt_server_t *s, const char *fmt, ...) {
  if (s->o.log == NULL)
    return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(s->o.log, fmt, ap);
  va_end(ap);
  fputc('\n', s->o.log);
  fflush(s->o.log);
}

const char *x__date_header(rt_server_t *s) {
  time_t now = time(NULL);
  if (now != s->date_sec) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s->date, sizeof s->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
             &tm);
    s->date_sec = now;
  }
  return s->date;
}

/* --- Roots ---------------------------------------------------------------- */

static void trace_server(gc_visitor_t *v, void *data) {
  rt_server_t *s = data;
  size_t i = 0;
  for (x__exchange_t *ex = s->exchanges; ex != NULL; ex = ex->next)
    GC_VISIT(v, &ex->req, GC_EDGE_ELEM(i++));
  for (x__wreq_t *w = s->wreqs; w != NULL; w = w->next)
    if (w->keep != RT_NONE)
      GC_VISIT(v, &w->keep, GC_EDGE_ELEM(i++));
}

/* --- Timeout lists --------------------------------------------------------- */

static void tlist_remove(x__conn_t *c) {
  rt_server_t *s = c->srv;
  int k = c->tlist;
  if (k == X__T_NONE)
    return;
  if (c->tprev != NULL)
    c->tprev->tnext = c->tnext;
  else
    s->thead[k] = c->tnext;
  if (c->tnext != NULL)
    c->tnext->tprev = c->tprev;
  else
    s->ttail[k] = c->tprev;
  c->tprev = c->tnext = NULL;
  c->tlist = X__T_NONE;
}

/* Puts C on list K with DEADLINE (ms), in deadline order. */
static void tlist_put(x__conn_t *c, int k, uint64_t deadline) {
  rt_server_t *s = c->srv;
  tlist_remove(c);
  c->deadline = deadline;
  c->tlist = (uint8_t)k;
  x__conn_t *after = s->ttail[k];
  while (after != NULL && after->deadline > deadline)
    after = after->tprev;
  c->tprev = after;
  c->tnext = after != NULL ? after->tnext : s->thead[k];
  if (c->tnext != NULL)
    c->tnext->tprev = c;
  else
    s->ttail[k] = c;
  if (after != NULL)
    after->tnext = c;
  else
    s->thead[k] = c;
  timer_arm(s, deadline);
}

static void handler_list_remove(x__exchange_t *ex) {
  rt_server_t *s = ex->srv;
  if (ex->hdeadline == 0)
    return;
  if (ex->hprev != NULL)
    ex->hprev->hnext = ex->hnext;
  else
    s->hhead = ex->hnext;
  if (ex->hnext != NULL)
    ex->hnext->hprev = ex->hprev;
  else
    s->htail = ex->hprev;
  ex->hprev = ex->hnext = NULL;
  ex->hdeadline = 0;
}

void x__handler_timer_stop(x__exchange_t *ex) { handler_list_remove(ex); }

/* The handler timeout runs from dispatch to the head, except while the
 * handler reads a body (then the request timeout is the client's). */
static void handler_list_put(x__exchange_t *ex) {
  rt_server_t *s = ex->srv;
  if (s->o.handler_timeout_ms == 0 || ex->head_sent || ex->hdeadline != 0)
    return;
  ex->hdeadline = uv_now(s->uv) + s->o.handler_timeout_ms;
  ex->hnext = NULL;
  ex->hprev = s->htail; /* constant timeout: the tail is the latest */
  if (s->htail != NULL)
    s->htail->hnext = ex;
  else
    s->hhead = ex;
  s->htail = ex;
  timer_arm(s, ex->hdeadline);
}

static void on_timer(uv_timer_t *t);

/* Makes the timer fire no later than DEADLINE. */
static void timer_arm(rt_server_t *s, uint64_t deadline) {
  if (s->closed)
    return;
  if (s->timer_on && s->timer_due <= deadline)
    return;
  uint64_t now = uv_now(s->uv);
  s->timer_on = true;
  s->timer_due = deadline;
  uv_timer_start(&s->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

static void timeout_conn(x__conn_t *c) {
  rt_server_t *s = c->srv;
  int k = c->tlist;
  tlist_remove(c);
  s->stats.timeouts++;
  switch (k) {
  case X__T_HEAD:
    if (c->parser == NULL || !rt_http_parser_in_request(c->parser)) {
      conn_close(c); /* not a byte of a request: nobody to answer */
      break;
    }
    x__log(s, "tenure-server: 408: the request head did not arrive within "
              "%llu ms",
           (unsigned long long)s->o.headers_timeout_ms);
    x__conn_error(c, 408, "Request Timeout");
    conn_end_maybe(c); /* write it, shut down, linger */
    break;
  case X__T_REQUEST: {
    x__exchange_t *ex = c->ex;
    x__log(s, "tenure-server: 408: the request body did not arrive within "
              "%llu ms",
           (unsigned long long)s->o.request_timeout_ms);
    if (ex != NULL && ex->body_fn != NULL && !ex->body_done) {
      deliver(ex, NULL, 0, -ETIMEDOUT);
      ex = c->ex;
    }
    c->failed = true; /* the rest of the body is not read */
    if (ex != NULL && ex->head_sent && !ex->ended) {
      conn_close(c); /* a response under way cannot be fixed: cut */
      break;
    }
    if (ex != NULL && !ex->head_sent)
      x__respond_error(ex, 408, "Request Timeout", true);
    ex = c->ex;
    if (ex != NULL && ex->ended) { /* answered; the body will not come */
      ex->close_after = true;
      exchange_finish(ex);
    }
    if (c->ex == NULL)
      conn_end_maybe(c);
    break;
  }
  default: /* idle, linger */
    conn_close(c);
    break;
  }
}

static void timeout_handler(x__exchange_t *ex) {
  handler_list_remove(ex);
  ex->srv->stats.timeouts++;
  if (ex->head_sent)
    return;
  x__log(ex->srv, "tenure-server: 500: %s %s: the handler did not answer "
                  "within %llu ms",
         ex->method, x__req_path(ex, NULL),
         (unsigned long long)ex->srv->o.handler_timeout_ms);
  x__respond_error(ex, 500, "Internal Server Error", false);
}

static void on_timer(uv_timer_t *t) {
  rt_server_t *s = t->data;
  s->timer_on = false;
  uint64_t now = uv_now(s->uv);
  for (int k = X__T_IDLE; k < X__T_NLISTS; k++)
    while (s->thead[k] != NULL && s->thead[k]->deadline <= now)
      timeout_conn(s->thead[k]);
  while (s->hhead != NULL && s->hhead->hdeadline <= now)
    timeout_handler(s->hhead);
  if (s->closing && s->drain_deadline != 0 && s->drain_deadline <= now) {
    s->drain_deadline = 0;
    x__conn_t *c = s->conns;
    while (c != NULL) {
      x__conn_t *next = c->next;
      conn_close(c);
      c = next;
    }
  }
  uint64_t due = UINT64_MAX;
  for (int k = X__T_IDLE; k < X__T_NLISTS; k++)
    if (s->thead[k] != NULL && s->thead[k]->deadline < due)
      due = s->thead[k]->deadline;
  if (s->hhead != NULL && s->hhead->hdeadline < due)
    due = s->hhead->hdeadline;
  if (s->drain_deadline != 0 && s->drain_deadline < due)
    due = s->drain_deadline;
  if (due != UINT64_MAX)
    timer_arm(s, due);
  rt_loop_after_callback(s->loop);
}

/* --- Output ---------------------------------------------------------------- */

/* Output lives in the server's scratch buffer while a connection borrows
 * it (at most one does: the one producing right now), so a response that
 * the socket takes at once is never malloc'd; what it does not take moves
 * to a buffer of the connection's own (INV(idle): none held between
 * requests). */
static void out_drop(x__conn_t *c) {
  if (c->out_borrowed) {
    c->srv->scratch_busy = false;
    c->out_borrowed = false;
  } else {
    free(c->out);
  }
  c->out = NULL;
  c->out_len = c->out_cap = 0;
}

/* The output's bytes as a malloc'd block of the caller's (a write request
 * takes it), leaving the connection without output. */
static char *out_take(x__conn_t *c) {
  char *b = c->out;
  if (c->out_borrowed) {
    b = malloc(c->out_len > 0 ? c->out_len : 1);
    if (b != NULL)
      memcpy(b, c->out, c->out_len);
    c->srv->scratch_busy = false;
    c->out_borrowed = false;
  }
  c->out = NULL;
  c->out_len = c->out_cap = 0;
  return b;
}

int x__out(x__conn_t *c, const void *p, size_t n) {
  rt_server_t *s = c->srv;
  if (c->closing)
    return -EPIPE;
  if (c->out == NULL && !s->scratch_busy && n <= SCRATCH) {
    c->out = s->scratch;
    c->out_cap = SCRATCH;
    c->out_borrowed = true;
    s->scratch_busy = true;
  }
  if (c->out_len + n > c->out_cap) {
    size_t ncap = c->out_cap ? c->out_cap : 1024;
    while (ncap < c->out_len + n)
      ncap *= 2;
    char *b;
    if (c->out_borrowed) {
      b = malloc(ncap);
      if (b != NULL) {
        memcpy(b, c->out, c->out_len);
        s->scratch_busy = false;
        c->out_borrowed = false;
      }
    } else {
      b = realloc(c->out, ncap);
    }
    if (b == NULL)
      return -ENOMEM;
    c->out = b;
    c->out_cap = ncap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  return 0;
}

size_t x__queued(x__conn_t *c) {
  return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + c->out_len;
}

static void wreq_unlink(rt_server_t *s, x__wreq_t *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    s->wreqs = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
}

static void conn_after_write(x__conn_t *c);

static void on_write(uv_write_t *req, int status) {
  x__wreq_t *w = (x__wreq_t *)req;
  x__conn_t *c = w->c;
  rt_server_t *s = c->srv;
  wreq_unlink(s, w);
  free(w->owned);
  free(w);
  if (status < 0) {
    if (status != UV_ECANCELED)
      conn_close(c);
  } else if (!c->closing) {
    conn_after_write(c);
  }
  rt_loop_after_callback(s->loop);
}

/* Queues P[0..N) (owned: freed when written; KEEP: a Buffer to root). */
static int queue_write(x__conn_t *c, char *owned, const char *p, size_t n,
                       rt_value_t keep) {
  rt_server_t *s = c->srv;
  x__wreq_t *w = malloc(sizeof *w);
  if (w == NULL) {
    free(owned);
    return -ENOMEM;
  }
  w->c = c;
  w->owned = owned;
  w->keep = keep;
  w->prev = NULL;
  w->next = s->wreqs;
  if (s->wreqs != NULL)
    s->wreqs->prev = w;
  s->wreqs = w;
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  int r = uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (r < 0) {
    wreq_unlink(s, w);
    free(w->owned);
    free(w);
    return r;
  }
  return 0;
}

void x__conn_flush(x__conn_t *c) {
  if (c->out_len == 0 || c->closing || (c->ex != NULL && c->ex->holding))
    return;
  size_t done = 0;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
    uv_buf_t b = uv_buf_init(c->out, (unsigned)c->out_len);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r >= 0)
      done = (size_t)r;
    else if (r != UV_EAGAIN) {
      conn_close(c);
      return;
    }
  }
  if (done == c->out_len) {
    c->out_len = 0;
    if (c->out_borrowed || c->out_cap > 4 * READ_BUF)
      out_drop(c); /* the scratch back; a large streamed piece let go */
    return;
  }
  /* The write request takes the bytes over. */
  size_t len = c->out_len;
  char *owned = out_take(c);
  if (owned == NULL ||
      queue_write(c, owned, owned + done, len - done, RT_NONE) < 0)
    conn_close(c);
}

/* One writev of the pending output and BUF's bytes when nothing is queued
 * (a head and its body in one syscall, the body never copied); what the
 * socket did not take is queued, the Buffer rooted until written. */
int x__out_buffer(x__conn_t *c, rt_value_t buf, const void *p, size_t n) {
  if (c->closing)
    return -EPIPE;
  if (c->ex != NULL && c->ex->holding) /* kept with the rest until released */
    return x__out(c, p, n);
  size_t head = c->out_len, done = 0;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
    uv_buf_t b[2];
    int nb = 0;
    if (head > 0)
      b[nb++] = uv_buf_init(c->out, (unsigned)head);
    b[nb++] = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_try_write((uv_stream_t *)&c->tcp, b, (unsigned)nb);
    if (r >= 0)
      done = (size_t)r;
    else if (r != UV_EAGAIN) {
      conn_close(c);
      return -EPIPE;
    }
  }
  if (done < head) { /* part of the head is left: it goes first */
    char *owned = out_take(c);
    if (owned == NULL ||
        queue_write(c, owned, owned + done, head - done, RT_NONE) < 0) {
      conn_close(c);
      return -EPIPE;
    }
    done = head;
  }
  c->out_len = 0;
  if (c->out_borrowed)
    out_drop(c);
  size_t boff = done - head;
  if (boff == n)
    return 0;
  int r = queue_write(c, NULL, (const char *)p + boff, n - boff, buf);
  if (r < 0)
    conn_close(c);
  return r;
}

/* The write queue moved: a file goes on, a producer may resume, a
 * connection being ended may shut down. */

static void conn_after_write(x__conn_t *c) {
  rt_server_t *s = c->srv;
  x__exchange_t *ex = c->ex;
  if (ex != NULL && ex->file_fd >= 0 && x__queued(c) == 0)
    x__file_pump(ex);
  ex = c->ex;
  if (ex != NULL && ex->drain_fn != NULL &&
      x__queued(c) <= s->o.high_water_mark / 2) {
    rt_drain_fn fn = ex->drain_fn;
    ex->drain_fn = NULL;
    x__call(ex, fn, ex->drain_data);
  }
  if (c->ex == NULL)
    conn_end_maybe(c);
}

/* --- Connections ------------------------------------------------------------ */

static void parser_release(x__conn_t *c) {
  rt_server_t *s = c->srv;
  if (c->parser == NULL)
    return;
  if (s->npool < POOL_MAX && !c->failed &&
      !rt_http_parser_in_request(c->parser) && !c->need_feed)
    s->pool[s->npool++] = c->parser;
  else
    rt_http_parser_destroy(c->parser);
  c->parser = NULL;
}

static void on_conn_closed(uv_handle_t *hd) {
  x__conn_t *c = (x__conn_t *)hd;
  rt_server_t *s = c->srv;
  free(c);
  s->stats.connections--;
  if (s->closing && s->conns == NULL && !s->listening)
    rt_server_close(s, s->done, s->done_data);
}

static void ready_remove(x__conn_t *c) {
  rt_server_t *s = c->srv;
  if (!c->in_ready)
    return;
  x__conn_t **pp = &s->ready_head, *prev = NULL;
  while (*pp != NULL && *pp != c) {
    prev = *pp;
    pp = &(*pp)->rnext;
  }
  if (*pp == c) {
    *pp = c->rnext;
    if (s->ready_tail == c)
      s->ready_tail = prev;
  }
  c->rnext = NULL;
  c->in_ready = false;
}

static void conn_close(x__conn_t *c) {
  rt_server_t *s = c->srv;
  if (c->closing)
    return;
  c->closing = true;
  if (c->ex != NULL) {
    x__exchange_t *ex = c->ex;
    if (ex->body_fn != NULL && !ex->body_done)
      deliver(ex, NULL, 0, -ECONNRESET);
    if (c->ex != NULL)
      exchange_finish(c->ex);
  }
  tlist_remove(c);
  ready_remove(c);
  if (c->reading)
    uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = false;
  parser_release(c);
  free(c->in);
  c->in = NULL;
  c->in_len = c->in_cap = 0;
  out_drop(c);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  x__conn_t *c = req->data;
  free(req);
  if (status < 0 || c->closing) {
    conn_close(c);
    return;
  }
  /* Drain what the peer still sends, so closing does not reset the
   * connection under the response, until EOF or the linger timeout; input
   * saved for a next request is dropped with it. */
  free(c->in);
  c->in = NULL;
  c->in_len = c->in_cap = 0;
  tlist_put(c, X__T_LINGER, uv_now(c->srv->uv) + LINGER_MS);
  conn_update_reading(c);
}

/* Ends a connection that is done (no keep-alive, an error, the server
 * stopping): once its output is written, shut down writing and linger. */
static void conn_end_maybe(x__conn_t *c) {
  if (c->closing || c->ex != NULL)
    return;
  bool ending = c->shutting || c->failed || c->eof ||
                (c->srv->closing && !(c->parser != NULL &&
                                      rt_http_parser_in_request(c->parser)));
  if (!ending)
    return;
  c->shutting = true;
  x__conn_flush(c);
  if (c->closing || uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0)
    return; /* on_write comes back here */
  if (c->eof) {
    conn_close(c);
    return;
  }
  if (c->tlist == X__T_LINGER)
    return;
  uv_shutdown_t *req = malloc(sizeof *req);
  if (req == NULL) {
    conn_close(c);
    return;
  }
  req->data = c;
  tlist_remove(c);
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    free(req);
    conn_close(c);
    return;
  }
  tlist_put(c, X__T_LINGER, uv_now(c->srv->uv) + LINGER_MS);
}

/* True when the parser may take bytes now (INV(reading)). */
static bool can_feed(x__conn_t *c) {
  if (c->closing)
    return false;
  if (c->tlist == X__T_LINGER)
    return true; /* read and dropped until EOF */
  if (c->failed || c->shutting)
    return false;
  x__exchange_t *ex = c->ex;
  if (ex == NULL)
    return !c->eof;
  if (ex->body_done)
    return false;
  if (ex->ended)
    return true; /* discarding */
  return ex->body_fn != NULL && !ex->body_paused;
}

/* True when a request was read whole (it has no body, or its body is in)
 * and its handler has not answered yet: reading on only saves what comes,
 * the next request's bytes (INV(reading)). */
static bool can_wait(x__conn_t *c) {
  x__exchange_t *ex = c->ex;
  return !c->closing && !c->failed && !c->shutting && ex != NULL &&
         !ex->ended && (ex->body_done || !ex->body_expected);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  x__conn_t *c = (x__conn_t *)hd;
  rt_server_t *s = c->srv;
  (void)suggested;
  if (s->rbuf_busy) { /* never: libuv reads one stream at a time */
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  s->rbuf_busy = true;
  buf->base = s->rbuf;
  buf->len = READ_BUF;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  x__conn_t *c = (x__conn_t *)st;
  rt_server_t *s = c->srv;
  if (buf->base == s->rbuf)
    s->rbuf_busy = false;
  if (nread == 0)
    return;
  if (nread < 0) {
    if (nread == UV_ENOBUFS)
      return;
    c->eof = true;
    if (c->reading)
      uv_read_stop(st);
    c->reading = false;
    if (c->tlist == X__T_LINGER || nread != UV_EOF) {
      conn_close(c);
    } else if (c->ex != NULL) {
      if (!c->ex->body_done && c->ex->body_expected) {
        /* EOF in the middle of a body: the request cannot complete. */
        x__exchange_t *ex = c->ex;
        if (ex->body_fn != NULL)
          deliver(ex, NULL, 0, -ECONNRESET);
        conn_close(c);
      }
      /* else: answer the request, then close (conn_end_maybe) */
    } else if (c->parser != NULL && rt_http_parser_in_request(c->parser)) {
      conn_close(c); /* a partial head: nobody to answer */
    } else {
      conn_end_maybe(c);
      if (!c->closing && c->in_len == 0)
        conn_close(c);
    }
    rt_loop_after_callback(s->loop);
    return;
  }
  if (c->tlist == X__T_LINGER) /* dropped */
    return;
  conn_process(c, buf->base, (size_t)nread);
  rt_loop_after_callback(s->loop);
}

static void conn_update_reading(x__conn_t *c) {
  if (c->closing)
    return;
  bool want = c->in_len == 0 && !c->eof && (can_feed(c) || can_wait(c));
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
      c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

static void on_idle(uv_idle_t *idle) { (void)idle; }

/* Processes saved input later, from the check phase (never inside a user's
 * call: rt_res_end from a timer must not run the next request's handlers
 * under its caller). */
void x__want_input(x__conn_t *c) {
  rt_server_t *s = c->srv;
  if (c->closing || c->in_ready)
    return;
  c->in_ready = true;
  c->rnext = NULL;
  if (s->ready_tail != NULL)
    s->ready_tail->rnext = c;
  else
    s->ready_head = c;
  s->ready_tail = c;
  uv_idle_start(&s->idle, on_idle);
}

static void on_check(uv_check_t *check) {
  rt_server_t *s = check->data;
  /* Only those ready now: one asking again runs in the next iteration. */
  size_t n = 0;
  for (x__conn_t *c = s->ready_head; c != NULL; c = c->rnext)
    n++;
  while (n-- > 0 && s->ready_head != NULL) {
    x__conn_t *c = s->ready_head;
    s->ready_head = c->rnext;
    if (s->ready_head == NULL)
      s->ready_tail = NULL;
    c->rnext = NULL;
    c->in_ready = false;
    if (!c->processing)
      conn_process(c, NULL, 0);
  }
  if (s->ready_head == NULL)
    uv_idle_stop(&s->idle);
  rt_loop_after_callback(s->loop);
}

/* --- Parser callbacks: the exchange's start and its body -------------------- */

static int on_head(void *data, const rt_http_head_t *head) {
  x__conn_t *c = data;
  rt_server_t *s = c->srv;
  x__exchange_t *ex = calloc(1, sizeof *ex);
  if (ex == NULL)
    return 503;
  ex->srv = s;
  ex->conn = c;
  ex->req = RT_NONE;
  ex->start_ns = x__now_ns();
  ex->method = head->method;
  ex->minor = head->minor;
  ex->keep_alive = head->keep_alive;
  ex->expect_continue = head->expect_continue;
  ex->is_head = strcmp(head->method, "HEAD") == 0;
  ex->content_length = head->content_length;
  ex->body_expected = head->chunked || head->content_length > 0;
  ex->status = 200;
  ex->file_fd = -1;
  ex->next = s->exchanges; /* rooted from here on */
  if (s->exchanges != NULL)
    s->exchanges->prev = ex;
  s->exchanges = ex;
  c->ex = ex;
  int err = x__request_build(ex, head);
  if (err != 0)
    return err < 0 ? 503 : err;
  s->stats.requests++;
  return RT_HTTP_PAUSE;
}

/* Gives the body reader a piece (STATUS 0) or its last call (the end or an
 * error: the reader is dropped first, so nothing comes after). */
static void deliver(x__exchange_t *ex, const char *at, size_t n, int status) {
  rt_server_t *s = ex->srv;
  gc_scope_t sc;
  gc_scope_open(s->h, &sc);
  rt_body_fn fn = ex->body_fn;
  if (status != 0)
    ex->body_fn = NULL;
  fn(rt_handle(s->h, ex->req), at, n, status, ex->body_ud);
  gc_scope_close(s->h, &sc);
}

static int hold(x__exchange_t *ex, const char *at, size_t n) {
  if (ex->held_len + n > ex->held_cap) {
    size_t ncap = ex->held_cap ? ex->held_cap * 2 : 4096;
    while (ncap < ex->held_len + n)
      ncap *= 2;
    char *b = realloc(ex->held, ncap);
    if (b == NULL)
      return 503;
    ex->held = b;
    ex->held_cap = ncap;
  }
  memcpy(ex->held + ex->held_len, at, n);
  ex->held_len += n;
  return 0;
}

static int on_body(void *data, const char *at, size_t n) {
  x__conn_t *c = data;
  x__exchange_t *ex = c->ex;
  if (ex == NULL)
    return 0;
  ex->body_seen += n;
  if (ex->ended || ex->body_fn == NULL)
    return 0; /* discarded */
  if (ex->body_paused || ex->held_len > 0)
    return hold(ex, at, n);
  deliver(ex, at, n, 0);
  return 0;
}

static void on_complete(void *data) {
  x__conn_t *c = data;
  x__exchange_t *ex = c->ex;
  if (ex == NULL)
    return;
  ex->body_done = true;
  tlist_remove(c);
  if (ex->body_fn != NULL)
    handler_list_put(ex); /* the body is in: the handler's turn again */
}

static const rt_http_parser_cb_t parser_cb = {on_head, on_body, on_complete};

/* --- The input loop --------------------------------------------------------- */

static int conn_parser(x__conn_t *c) {
  rt_server_t *s = c->srv;
  if (c->parser != NULL)
    return 0;
  if (s->npool > 0) {
    c->parser = s->pool[--s->npool];
    rt_http_parser_reset(c->parser, c);
    return 0;
  }
  return rt_http_parser_create(&s->o.limits, &parser_cb, c, &c->parser);
}

/* The parser failed: answer its status (when nobody has answered yet) and
 * close after the answer. */
static void conn_parse_error(x__conn_t *c) {
  rt_server_t *s = c->srv;
  const char *reason = NULL;
  int st = rt_http_parser_error(c->parser, &reason);
  x__exchange_t *ex = c->ex;
  c->failed = true;
  s->stats.errors++;
  if (ex != NULL) {
    if (ex->body_fn != NULL && !ex->body_done)
      deliver(ex, NULL, 0, st == 413 ? -EMSGSIZE : -EPROTO);
    ex = c->ex;
  }
  if (ex != NULL) {
    if (ex->head_sent && !ex->ended) { /* under way, cannot be fixed: cut */
      conn_close(c);
      return;
    }
    if (!ex->head_sent)
      x__respond_error(ex, st, reason, true); /* finished by conn_process */
    ex->close_after = true;
  } else {
    x__conn_error(c, st, reason);
  }
}

/* Feeds DATA (or the saved input when DATA is NULL) while the parser may
 * take it, dispatching each head and finishing each exchange; saves the
 * rest.  Reentrant calls (a response ended from inside a handler) only ask
 * for another round. */
static void conn_process(x__conn_t *c, const char *data, size_t len) {
  rt_server_t *s = c->srv;
  if (c->processing) {
    c->again = true;
    return;
  }
  c->processing = true;
  bool from_in = data == NULL;
  if (from_in) {
    static const char none[1];
    data = c->in != NULL ? c->in : none;
    len = c->in_len;
  }
  size_t off = 0;
  for (;;) {
    c->again = false;
    if (c->closing)
      break;
    if (c->ex != NULL && c->ex->ended && !c->ex->holding &&
        (c->ex->body_done || c->ex->close_after))
      exchange_finish(c->ex);
    if (c->closing)
      break;
    /* Output that went out at once gives no write callback: move a file
     * or a waiting producer on from here. */
    if (c->ex != NULL && c->out_len == 0 && x__queued(c) == 0 &&
        c->ex->file_fd >= 0 && !c->ex->holding) {
      x__file_pump(c->ex);
      continue;
    }
    if (c->ex != NULL && c->ex->drain_fn != NULL && c->out_len == 0 &&
        x__queued(c) <= s->o.high_water_mark / 2) {
      rt_drain_fn fn = c->ex->drain_fn;
      c->ex->drain_fn = NULL;
      x__call(c->ex, fn, c->ex->drain_data);
      continue;
    }
    if (c->ex != NULL && c->ex->held_len > 0 && !c->ex->body_paused &&
        c->ex->body_fn != NULL) {
      x__exchange_t *ex = c->ex;
      char *h = ex->held;
      size_t hn = ex->held_len;
      ex->held = NULL;
      ex->held_len = ex->held_cap = 0;
      deliver(ex, h, hn, 0);
      free(h);
      continue;
    }
    if (c->ex != NULL && c->ex->body_done && c->ex->body_fn != NULL &&
        c->ex->held_len == 0 && !c->ex->body_paused) {
      deliver(c->ex, NULL, 0, RT_BODY_END); /* also after a resume */
      continue;
    }
    if (!can_feed(c) || (off == len && !c->need_feed))
      break;
    if (c->tlist == X__T_LINGER) {
      off = len;
      break;
    }
    if (c->parser == NULL) {
      if (conn_parser(c) < 0) {
        conn_close(c);
        break;
      }
    }
    if (c->ex == NULL && !rt_http_parser_in_request(c->parser)) {
      c->req_start = uv_now(s->uv);
      tlist_put(c, X__T_HEAD, c->req_start + s->o.headers_timeout_ms);
    }
    size_t used = 0;
    bool was_feed = c->need_feed;
    c->need_feed = false;
    int r = rt_http_parser_feed(c->parser, data + off, len - off, &used);
    off += used;
    if (r == 2) { /* a head: dispatch it */
      c->need_feed = true;
      x__exchange_t *ex = c->ex;
      if (ex->body_expected)
        tlist_put(c, X__T_REQUEST, c->req_start + s->o.request_timeout_ms);
      else
        tlist_remove(c);
      handler_list_put(ex);
      x__dispatch(ex, s->app);
    } else if (r < 0) {
      conn_parse_error(c);
      off = len;
      break;
    } else if (used == 0 && !was_feed) {
      break;
    }
  }
  /* Save what is left. */
  if (!c->closing) {
    size_t rest = len - off;
    if (from_in) {
      if (rest == 0) {
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
      } else if (off > 0) {
        memmove(c->in, c->in + off, rest);
        c->in_len = rest;
      }
    } else if (rest > 0) {
      char *b = malloc(rest);
      if (b == NULL) {
        conn_close(c);
      } else {
        memcpy(b, data + off, rest);
        c->in = b;
        c->in_len = c->in_cap = rest;
      }
    }
  }
  c->processing = false;
  if (!c->closing) {
    x__conn_flush(c);
    x__exchange_t *ex = c->ex;
    if (c->again ||
        (ex != NULL && !c->closing && x__queued(c) == 0 &&
         (ex->file_fd >= 0 || ex->drain_fn != NULL)))
      x__want_input(c);
    if (!c->closing) {
      conn_update_reading(c);
      if (c->ex == NULL && c->in_len == 0 && c->parser != NULL &&
          !rt_http_parser_in_request(c->parser) && !c->need_feed &&
          !c->shutting && !c->failed) {
        parser_release(c); /* INV(idle) */
        if (c->out_len == 0)
          out_drop(c);
        tlist_put(c, X__T_IDLE, uv_now(s->uv) + s->o.keep_alive_timeout_ms);
      }
      conn_end_maybe(c);
    }
  }
}

/* --- The exchange ---------------------------------------------------------- */

x__exchange_t *x__exchange_of(const rt_value_t *req) {
  if (req == NULL || !rt_is_heap(*req) ||
      rt__type_of(*req) != &rt__req_type)
    return NULL;
  return ((rt__req_t *)*req)->ex;
}

void x__call(x__exchange_t *ex, rt_drain_fn fn, void *data) {
  gc_heap_t *h = ex->srv->h;
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  fn(rt_handle(h, ex->req), data);
  gc_scope_close(h, &sc);
}

static void exchange_finish(x__exchange_t *ex) {
  rt_server_t *s = ex->srv;
  x__conn_t *c = ex->conn;
  if (ex->finishing)
    return;
  ex->finishing = true;
  handler_list_remove(ex);
  /* Every reader gets its last call: the response ended before the body
   * was read to its end. */
  if (ex->body_fn != NULL)
    deliver(ex, NULL, 0, -ECANCELED);
  if (ex->ended)
    s->stats.responses++;
  for (int i = 0; i < ex->nfinish; i++) /* however it ended */
    x__call(ex, ex->on_finish[i].fn, ex->on_finish[i].data);
  if (ex->close_after || !ex->ended)
    c->shutting = true;
  x__exchange_free_response(ex);
  free(ex->held);
  free(ex->err_msg);
  rt__req_t *r = (rt__req_t *)ex->req;
  if (r != NULL)
    r->ex = NULL;
  if (ex->prev != NULL)
    ex->prev->next = ex->next;
  else
    s->exchanges = ex->next;
  if (ex->next != NULL)
    ex->next->prev = ex->prev;
  c->ex = NULL;
  free(ex);
  if (!c->closing && !c->processing) {
    if (c->shutting)
      conn_end_maybe(c);
    else
      x__want_input(c);
  } else if (c->processing) {
    c->again = true;
  }
}

void x__response_ended(x__exchange_t *ex) {
  x__conn_t *c = ex->conn;
  ex->ended = true;
  handler_list_remove(ex);
  if (c->processing || ex->holding) { /* a hold's release goes on from here */
    c->again = true;
    return;
  }
  x__conn_flush(c);
  if (c->closing)
    return;
  if (ex->body_done || ex->close_after)
    exchange_finish(ex);
  else
    x__want_input(c); /* read the rest of the body to its end, dropping it */
}

/* --- Accepting ------------------------------------------------------------ */

/* Starts serving C, a connected stream. */
static void conn_start(x__conn_t *c) {
  rt_server_t *s = c->srv;
  s->stats.accepted++;
  s->stats.connections++;
  c->next = s->conns;
  if (s->conns != NULL)
    s->conns->prev = c;
  s->conns = c;
  /* Until its first byte, a new connection waits as long as a head may
   * take (node's headersTimeout), not the keep-alive timeout. */
  tlist_put(c, X__T_HEAD, uv_now(s->uv) + s->o.headers_timeout_ms);
  conn_update_reading(c);
}

static void on_connection(uv_stream_t *server, int status) {
  rt_server_t *s = server->data;
  if (status < 0 || s->closing)
    return;
  x__conn_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  c->srv = s;
  uv_tcp_init(s->uv, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    c->closing = true;
    s->stats.connections++;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  conn_start(c);
}

int rt_server_adopt(rt_server_t *s, int fd) {
  if (s == NULL || fd < 0 || s->closing)
    return -EINVAL;
  x__conn_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return -ENOMEM;
  c->srv = s;
  uv_tcp_init(s->uv, &c->tcp);
  int r = uv_tcp_open(&c->tcp, fd);
  if (r < 0) {
    close(fd);
    c->closing = true;
    s->stats.connections++;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    return r;
  }
  conn_start(c);
  return 0;
}

/* --- The server ------------------------------------------------------------ */

void rt_server_options_init(rt_server_options_t *o) {
  memset(o, 0, sizeof *o);
  rt_http_limits_init(&o->limits);
  o->headers_timeout_ms = 60000;
  o->request_timeout_ms = 300000;
  o->keep_alive_timeout_ms = 5000;
  o->handler_timeout_ms = 120000;
  o->drain_timeout_ms = 10000;
  o->high_water_mark = 64 * 1024;
  o->backlog = 511;
  o->log = stderr;
}

int rt_server_create(rt_loop_t *loop, rt_app_t *app,
                     const rt_server_options_t *o, rt_server_t **out) {
  if (loop == NULL || app == NULL || out == NULL)
    return -EINVAL;
  rt_server_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->rbuf = malloc(READ_BUF);
  s->scratch = malloc(SCRATCH);
  if (s->rbuf == NULL || s->scratch == NULL) {
    free(s->rbuf);
    free(s->scratch);
    free(s);
    return -ENOMEM;
  }
  s->loop = loop;
  s->rt = rt_loop_runtime(loop);
  s->h = rt_heap(s->rt);
  s->uv = rt_loop_uv(loop);
  s->app = app;
  if (o != NULL)
    s->o = *o;
  else
    rt_server_options_init(&s->o);
  if (s->o.high_water_mark == 0)
    s->o.high_water_mark = 64 * 1024;
  if (s->o.keep_alive_timeout_ms == 0)
    s->o.keep_alive_timeout_ms = 5000;
  if (s->o.headers_timeout_ms == 0)
    s->o.headers_timeout_ms = 60000;
  if (s->o.request_timeout_ms == 0)
    s->o.request_timeout_ms = 300000;
  int kn = snprintf(s->keep_alive_line, sizeof s->keep_alive_line,
                    "Connection: keep-alive\r\nKeep-Alive: timeout=%llu\r\n",
                    (unsigned long long)(s->o.keep_alive_timeout_ms / 1000));
  s->keep_alive_len = (size_t)kn;
  int r = gc_type_register(s->h, &rt__req_type);
  if (r == 0)
    r = gc_root_tracer_add(s->h, trace_server, s, "(HTTP server)");
  if (r < 0) {
    free(s->rbuf);
    free(s->scratch);
    free(s);
    return r;
  }
  uv_timer_init(s->uv, &s->timer);
  s->timer.data = s;
  uv_check_init(s->uv, &s->check);
  s->check.data = s;
  uv_idle_init(s->uv, &s->idle);
  s->idle.data = s;
  uv_check_start(&s->check, on_check);
  uv_unref((uv_handle_t *)&s->check);
  s->handles_open = 3;
  *out = s;
  return 0;
}

int rt_server_listen(rt_server_t *s, const char *host, int port) {
  if (s == NULL || host == NULL || port < 0 || port > 65535 || s->closing)
    return -EINVAL;
  if (s->listening)
    return -EALREADY;
  struct sockaddr_storage ss;
  int r = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (r < 0)
    r = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  if (r < 0)
    return r;
  uv_tcp_init(s->uv, &s->listener);
  s->listener.data = s;
  s->handles_open++;
  s->listening = true;
  r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&s->listener, s->o.backlog, on_connection);
  if (r < 0) {
    s->listening = false;
    uv_close((uv_handle_t *)&s->listener, handle_closed);
    return r;
  }
  struct sockaddr_storage got;
  int len = sizeof got;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
  s->port = got.ss_family == AF_INET6
                ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                : ntohs(((struct sockaddr_in *)&got)->sin_port);
  return 0;
}

int rt_server_port(const rt_server_t *s) { return s->port; }

static void handle_closed(uv_handle_t *hd) {
  rt_server_t *s = hd->data;
  s->handles_open--;
  if (s->closing && s->handles_open == 0 && s->conns == NULL) {
    s->closed = true;
    if (s->done != NULL) {
      rt_server_done_fn done = s->done;
      s->done = NULL;
      done(s, s->done_data);
    }
  }
}

static void on_signal(uv_signal_t *sig, int signum) {
  rt_server_t *s = sig->data;
  x__log(s, "tenure-server: %s: stopping (in-flight requests may finish)",
         signum == SIGTERM ? "SIGTERM" : "SIGINT");
  rt_server_close(s, NULL, NULL);
}

int rt_server_handle_signals(rt_server_t *s) {
  if (s->signals || s->closing)
    return s->signals ? 0 : -EINVAL;
  uv_signal_init(s->uv, &s->sigterm);
  uv_signal_init(s->uv, &s->sigint);
  s->sigterm.data = s->sigint.data = s;
  s->handles_open += 2;
  s->signals = true;
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_unref((uv_handle_t *)&s->sigterm);
  uv_unref((uv_handle_t *)&s->sigint);
  return 0;
}

/* Graceful stop.  Called again (from on_conn_closed) once the last
 * connection is gone: then the server's own handles close. */
void rt_server_close(rt_server_t *s, rt_server_done_fn done, void *data) {
  if (done != NULL) {
    s->done = done;
    s->done_data = data;
  }
  if (!s->closing) {
    s->closing = true;
    if (s->listening) {
      s->listening = false;
      uv_close((uv_handle_t *)&s->listener, handle_closed);
    }
    if (s->o.drain_timeout_ms > 0) {
      s->drain_deadline = uv_now(s->uv) + s->o.drain_timeout_ms;
      timer_arm(s, s->drain_deadline);
    }
    /* Idle connections close now; the others when their exchange ends. */
    x__conn_t *c = s->conns;
    while (c != NULL) {
      x__conn_t *next = c->next;
      if (c->ex == NULL &&
          !(c->parser != NULL && rt_http_parser_in_request(c->parser)) &&
          c->in_len == 0)
        conn_close(c);
      c = next;
    }
  }
  if (s->conns != NULL || s->closed)
    return;
  if (uv_is_closing((uv_handle_t *)&s->timer))
    return;
  s->timer_on = false;
  uv_close((uv_handle_t *)&s->timer, handle_closed);
  uv_close((uv_handle_t *)&s->check, handle_closed);
  uv_close((uv_handle_t *)&s->idle, handle_closed);
  if (s->signals) {
    uv_close((uv_handle_t *)&s->sigterm, handle_closed);
    uv_close((uv_handle_t *)&s->sigint, handle_closed);
  }
}

void rt_server_destroy(rt_server_t *s) {
  if (s == NULL)
    return;
  gc_root_tracer_remove(s->h, trace_server, s);
  for (size_t i = 0; i < s->npool; i++)
    rt_http_parser_destroy(s->pool[i]);
  free(s->rbuf);
  free(s->scratch);
  free(s);
}

void rt_server_stats(const rt_server_t *s, rt_server_stats_t *out) {
  *out = s->stats;
}

/* --- Holding a response ------------------------------------------------------- */

int rt_res_hold(rt_value_t *req) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL || ex->conn->closing)
    return -EPIPE;
  if (ex->holding)
    return -EALREADY;
  if (ex->conn->out_len > 0) /* an earlier pipelined answer goes first */
    x__conn_flush(ex->conn);
  ex->holding = true;
  ex->hold_from = ex->conn->out_len;
  return 0;
}

int rt_res_release(rt_value_t *req, int status, const char *message) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return -EPIPE;
  if (!ex->holding)
    return -EINVAL;
  x__conn_t *c = ex->conn;
  ex->holding = false;
  if (status != 0 && !c->closing) {
    /* Nothing of this response went out: replace it with STATUS. */
    if (c->out_len > ex->hold_from)
      c->out_len = ex->hold_from;
    if (ex->file_fd >= 0) {
      close(ex->file_fd);
      ex->file_fd = -1;
    }
    ex->head_sent = ex->ended = false;
    ex->chunked_out = ex->no_body = false;
    ex->bytes_out = 0;
    ex->drain_fn = NULL;
    x__respond_error(ex, status, message, true);
  }
  if (!c->closing && !c->processing) {
    x__conn_flush(c);
    x__want_input(c); /* finish, pump a file, wake a producer */
  }
  return 0;
}
