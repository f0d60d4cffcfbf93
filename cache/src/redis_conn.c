/* redis_conn.c -- one connection to one Redis server through hiredis's
 * asynchronous API on the loop's libuv (see redis_conn.h for the contract).
 *
 * INV(deadline): the unanswered requests form one list sorted by deadline
 * (a request is inserted walking back from the tail, which is where it
 * lands unless it is a retry carrying an older deadline), so the deadline
 * timer only looks at its head and is armed only while the list is not
 * empty.
 * INV(req): a request's state (req_t) lives until it is answered and, once
 * sent, until hiredis has run its callback (on a reply, or with NULL when
 * the context goes); `answered` says which of the two came first.
 *
 * INV(quiet): the deadline timer is ref'd exactly while `loud` (unanswered
 * requests made by cache__rconn_send, not cache__rconn_send_quiet) is not
 * 0, so requests nobody waits for never keep the loop alive.
 *
 * INV(nul): a command buffer (cache__rcmd_t, and a waiting request's copy)
 * has a NUL after its LEN bytes.  hiredis 0.14's redisAsyncFormattedCommand
 * peeks at the byte after a command's first argument (`hasnext`, to spot
 * SUBSCRIBE's channels), which for a one-argument command (DBSIZE) is past
 * the command: the NUL makes that byte ours and defined.
 *
 * While the connection is down a request is refused at once (-ENOTCONN from
 * cache__rconn_send), so nothing is queued forever.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "redis_conn.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* ASKING in RESP: sent before each command of a request that follows an ASK
 * redirection (its +OK is dropped). */
static const char ASKING_CMD[] = "*1\r\n$6\r\nASKING\r\n";

typedef struct req_s {
  struct req_s *prev, *next; /* the unanswered list */
  cache__rconn_t *c;
  bool answered, sent, asking;
  bool quiet;        /* cache__rconn_send_quiet's: keeps no loop alive */
  uint64_t deadline; /* uv_now ms */
  cache__rconn_fn fn;
  void *data;
  cache__rcmd_t cmd; /* a copy, while waiting for the handshake */
} req_t;

struct cache__rconn_s {
  rt_loop_t *loop;
  uv_loop_t *uv;
  char host[256];
  int port, db;
  char *password;
  uint64_t timeout_ms;
  const char *name;
  char *error;
  size_t errlen;
  void (*on_down)(cache__rconn_t *c, void *data);
  void (*on_ready)(cache__rconn_t *c, void *data);
  void *data;
  cache__rconn_push_fn push; /* subscribe mode: the pushes' receiver */
  void *push_data;
  redisAsyncContext *push_ac; /* the context it was subscribed on */
  redisAsyncContext *ac;
  int state;
  bool closing, ever_ready, hs_failed;
  int hs_left;          /* handshake replies still awaited */
  uint64_t backoff_ms;  /* the next retry's base: 100 ms doubling to 5 s */
  uint64_t rng;         /* the jitter's state */
  req_t *head, *tail;   /* unanswered requests, INV(deadline) */
  size_t pending;       /* their number */
  size_t loud;          /* those of them not quiet, INV(quiet) */
  uv_timer_t deadline;  /* armed while requests are unanswered */
  uv_timer_t reconnect; /* unref'd */
  size_t refs;          /* open timers, the context */
  uint64_t reconnects;
  char last[96]; /* why the connection is down */
};

static void connect_now(cache__rconn_t *c, bool from_loop);

/* --- Commands ------------------------------------------------------------- */

static int rcmd_reserve(cache__rcmd_t *m, size_t more) {
  if (m->len + more <= m->cap)
    return 0;
  size_t cap = m->cap != 0 ? m->cap : 64;
  while (cap < m->len + more)
    cap *= 2;
  char *b = realloc(m->buf, cap);
  if (b == NULL)
    return -ENOMEM;
  m->buf = b;
  m->cap = cap;
  return 0;
}

int cache__rcmd_add(cache__rcmd_t *m, int argc, const char *const *argv,
                    const size_t *len) {
  if (m->nparts == CACHE__RCMD_MAX_PARTS)
    return -E2BIG;
  /* "*argc\r\n", then "$len\r\n" arg "\r\n" per argument, then a NUL
   * (INV(nul)). */
  size_t need = 16 + 1;
  for (int i = 0; i < argc; i++)
    need += 24 + len[i] + 2;
  if (rcmd_reserve(m, need) < 0)
    return -ENOMEM;
  char *o = m->buf + m->len;
  o += sprintf(o, "*%d\r\n", argc);
  for (int i = 0; i < argc; i++) {
    o += sprintf(o, "$%zu\r\n", len[i]);
    memcpy(o, argv[i], len[i]);
    o += len[i];
    *o++ = '\r';
    *o++ = '\n';
  }
  *o = '\0'; /* INV(nul): not counted in LEN */
  m->len = (size_t)(o - m->buf);
  m->end[m->nparts++] = m->len;
  return 0;
}

void cache__rcmd_free(cache__rcmd_t *m) {
  free(m->buf);
  *m = (cache__rcmd_t){0};
}

/* --- Lifetime and messages ------------------------------------------------ */

static void unref_conn(cache__rconn_t *c) {
  if (--c->refs == 0 && c->closing) {
    free(c->password);
    free(c);
  }
}

static void on_timer_closed(uv_handle_t *hd) {
  unref_conn(hd->data);
}

/* A message in the owner's error buffer, after the connection's name.
 * Nothing is written once the connection is closing: the buffer may be
 * gone. */
static void seterr(cache__rconn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void seterr(cache__rconn_t *c, const char *fmt, ...) {
  if (c->closing || c->errlen == 0)
    return;
  int n = snprintf(c->error, c->errlen, "%s: ", c->name);
  if (n < 0 || (size_t)n >= c->errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->error + n, c->errlen - (size_t)n, fmt, ap);
  va_end(ap);
}

static void notify_down(cache__rconn_t *c) {
  if (!c->closing && c->on_down != NULL)
    c->on_down(c, c->data);
}

/* --- The request list ----------------------------------------------------- */

/* INV(quiet). */
static void ref_deadline(cache__rconn_t *c) {
  if (c->closing)
    return;
  if (c->loud > 0)
    uv_ref((uv_handle_t *)&c->deadline);
  else
    uv_unref((uv_handle_t *)&c->deadline);
}

static void unlink_req(cache__rconn_t *c, req_t *r) {
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    c->head = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  else
    c->tail = r->prev;
  r->prev = r->next = NULL;
  c->pending--;
  if (!r->quiet)
    c->loud--;
  ref_deadline(c);
  if (c->head == NULL)
    uv_timer_stop(&c->deadline); /* nothing to wait for: let the loop end */
}

/* Inserts R keeping INV(deadline). */
static void link_req(cache__rconn_t *c, req_t *r) {
  req_t *at = c->tail;
  while (at != NULL && at->deadline > r->deadline)
    at = at->prev;
  r->prev = at;
  r->next = at != NULL ? at->next : c->head;
  if (r->next != NULL)
    r->next->prev = r;
  else
    c->tail = r;
  if (at != NULL)
    at->next = r;
  else
    c->head = r;
  c->pending++;
  if (!r->quiet)
    c->loud++;
  ref_deadline(c);
}

static void free_req(req_t *r) {
  cache__rcmd_free(&r->cmd);
  free(r);
}

/* Answers R now (from a loop callback) with an error, and marks it. */
static void answer_err(cache__rconn_t *c, req_t *r, int err) {
  r->answered = true;
  unlink_req(c, r);
  r->fn(r->data, err, NULL);
}

/* --- The deadline timer --------------------------------------------------- */

static void on_deadline(uv_timer_t *t);

static void arm(cache__rconn_t *c) {
  if (c->closing)
    return;
  if (c->head == NULL) {
    uv_timer_stop(&c->deadline);
    return;
  }
  uint64_t now = uv_now(c->uv);
  uint64_t d = c->head->deadline > now ? c->head->deadline - now : 0;
  uv_timer_start(&c->deadline, on_deadline, d, 0);
}

static void on_deadline(uv_timer_t *t) {
  cache__rconn_t *c = t->data;
  uint64_t now = uv_now(c->uv);
  bool any = false;
  while (!c->closing && c->head != NULL && c->head->deadline <= now) {
    req_t *r = c->head;
    seterr(c, "no answer from %.60s:%d within %llu ms", c->host, c->port,
           (unsigned long long)c->timeout_ms);
    bool sent = r->sent;
    answer_err(c, r, -ETIMEDOUT);
    any = true;
    if (!sent)
      free_req(r); /* hiredis never had it */
  }
  arm(c);
  if (any)
    rt_loop_after_callback(c->loop);
}

/* --- Replies -------------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
  req_t *r = priv;
  cache__rconn_t *c = r->c;
  if (r->answered) { /* timed out or cancelled: the late reply is dropped */
    free_req(r);
    return;
  }
  r->answered = true;
  unlink_req(c, r);
  int err = 0;
  if (reply == NULL) {
    /* The context is going: from now on new requests are refused. */
    const char *why = ac->errstr[0] ? ac->errstr : "closed";
    c->state = CACHE__RCONN_DOWN;
    snprintf(c->last, sizeof c->last, "connection lost: %s", why);
    seterr(c, "connection to %.40s:%d lost (%.40s)", c->host, c->port, why);
    err = -ECONNRESET;
  }
  r->fn(r->data, err, reply);
  free_req(r);
  rt_loop_after_callback(c->loop);
}

/* --- Sending -------------------------------------------------------------- */

static int send_now(cache__rconn_t *c, req_t *r, const cache__rcmd_t *cmd) {
  size_t start = 0;
  for (int i = 0; i < cmd->nparts; i++) {
    bool last = i == cmd->nparts - 1;
    if (r->asking &&
        redisAsyncFormattedCommand(c->ac, NULL, NULL, ASKING_CMD,
                                   sizeof ASKING_CMD - 1) != REDIS_OK)
      return -EIO;
    if (redisAsyncFormattedCommand(c->ac, last ? on_reply : NULL,
                                   last ? r : NULL, cmd->buf + start,
                                   cmd->end[i] - start) != REDIS_OK)
      return -EIO;
    start = cmd->end[i];
  }
  r->sent = true;
  return 0;
}

/* Sends every request made while the handshake was under way. */
static void flush(cache__rconn_t *c) {
  bool any = false;
  for (req_t *r = c->head, *next; r != NULL; r = next) {
    next = r->next;
    if (r->sent)
      continue;
    if (send_now(c, r, &r->cmd) < 0) {
      seterr(c, "could not send a command");
      answer_err(c, r, -EIO);
      any = true;
      if (!r->sent)
        free_req(r);
      continue;
    }
    cache__rcmd_free(&r->cmd); /* hiredis has its own copy */
  }
  if (any)
    rt_loop_after_callback(c->loop);
}

/* Fails the requests not yet sent (the connection they waited for is not
 * coming). */
static void fail_unsent(cache__rconn_t *c, int err) {
  bool any = false;
  for (req_t *r = c->head, *next; r != NULL; r = next) {
    next = r->next;
    if (!r->sent) {
      answer_err(c, r, err);
      free_req(r);
      any = true;
    }
  }
  if (any)
    rt_loop_after_callback(c->loop);
}

static int send_req(cache__rconn_t *c, const cache__rcmd_t *cmd, bool asking,
                    bool quiet, uint64_t deadline, cache__rconn_fn fn,
                    void *data) {
  if (c->closing)
    return -ECANCELED;
  if (c->state == CACHE__RCONN_DOWN) {
    seterr(c, "not connected to %.40s:%d (%.40s)", c->host, c->port,
           c->last[0] ? c->last : "reconnecting");
    return -ENOTCONN;
  }
  req_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return -ENOMEM;
  *r = (req_t){.c = c,
               .asking = asking,
               .quiet = quiet,
               .deadline = deadline,
               .fn = fn,
               .data = data};
  if (c->state == CACHE__RCONN_READY) {
    if (send_now(c, r, cmd) < 0) {
      /* Only while the context is going (hiredis refuses then): parts
       * already queued are answered to no one. */
      free_req(r);
      seterr(c, "could not send a command");
      return -EIO;
    }
  } else {
    cache__rcmd_t copy = {0};
    copy.buf = malloc(cmd->len + 1);
    if (copy.buf == NULL) {
      free(r);
      return -ENOMEM;
    }
    memcpy(copy.buf, cmd->buf, cmd->len);
    copy.buf[cmd->len] = '\0'; /* INV(nul) */
    copy.len = cmd->len;
    copy.cap = cmd->len + 1;
    copy.nparts = cmd->nparts;
    memcpy(copy.end, cmd->end, sizeof copy.end);
    r->cmd = copy;
  }
  link_req(c, r);
  if (c->head == r)
    arm(c);
  return 0;
}

int cache__rconn_send(cache__rconn_t *c, const cache__rcmd_t *cmd, bool asking,
                      uint64_t deadline, cache__rconn_fn fn, void *data) {
  return send_req(c, cmd, asking, false, deadline, fn, data);
}

int cache__rconn_send_quiet(cache__rconn_t *c, const cache__rcmd_t *cmd,
                            uint64_t deadline, cache__rconn_fn fn, void *data) {
  return send_req(c, cmd, false, true, deadline, fn, data);
}

/* --- The connection ------------------------------------------------------- */

static void on_reconnect(uv_timer_t *t) {
  connect_now(t->data, true);
}

static void schedule_reconnect(cache__rconn_t *c) {
  if (c->closing)
    return;
  c->state = CACHE__RCONN_DOWN;
  uint64_t base = c->backoff_ms;
  c->rng ^= c->rng << 13; /* xorshift64: jitter differs between processes */
  c->rng ^= c->rng >> 7;
  c->rng ^= c->rng << 17;
  uint64_t delay = base / 2 + c->rng % (base / 2 + 1);
  c->backoff_ms = base * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : base * 2;
  uv_timer_start(&c->reconnect, on_reconnect, delay, 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  cache__rconn_t *c = ac->data;
  (void)status;
  if (ac != c->ac)
    return;
  c->ac = NULL;
  if (!c->closing && !c->hs_failed)
    snprintf(c->last, sizeof c->last, "connection lost: %s",
             ac->errstr[0] ? ac->errstr : "closed");
  if (!c->closing) {
    fail_unsent(c, -ENOTCONN);
    schedule_reconnect(c);
    notify_down(c);
  }
  unref_conn(c);
}

static void ready(cache__rconn_t *c) {
  c->state = CACHE__RCONN_READY;
  c->backoff_ms = BACKOFF_MIN_MS;
  if (c->ever_ready)
    c->reconnects++;
  c->ever_ready = true;
  c->last[0] = '\0';
  if (c->on_ready != NULL)
    c->on_ready(c, c->data);
  if (!c->closing && c->state == CACHE__RCONN_READY)
    flush(c);
}

static void on_handshake(redisAsyncContext *ac, void *reply, void *priv) {
  cache__rconn_t *c = ac->data;
  redisReply *rep = reply;
  const char *what = priv;
  if (rep == NULL || c->closing || c->hs_failed || ac != c->ac)
    return; /* the connection went: on_disconnect deals with it */
  if (rep->type == REDIS_REPLY_ERROR) {
    c->hs_failed = true;
    c->state = CACHE__RCONN_DOWN; /* new requests are refused from now */
    snprintf(c->last, sizeof c->last, "%s failed: %.*s", what,
             (int)(rep->len > 60 ? 60 : rep->len), rep->str);
    seterr(c, "%s", c->last);
    fail_unsent(c, what[0] == 'A' ? -EACCES : -EINVAL);
    seterr(c, "%s", c->last);
    redisAsyncDisconnect(ac); /* then on_disconnect, and a retry later */
    return;
  }
  if (--c->hs_left == 0)
    ready(c);
}

static void on_connect(const redisAsyncContext *cac, int status) {
  cache__rconn_t *c = cac->data;
  redisAsyncContext *ac = (redisAsyncContext *)cac;
  if (ac != c->ac)
    return;
  if (status != REDIS_OK) {
    /* hiredis frees the context after this returns; no on_disconnect. */
    c->ac = NULL;
    snprintf(c->last, sizeof c->last, "connecting: %s", ac->errstr);
    if (!c->closing) {
      seterr(c, "%s", c->last);
      fail_unsent(c, -ENOTCONN);
      schedule_reconnect(c);
      notify_down(c);
    }
    unref_conn(c);
    return;
  }
  c->hs_failed = false;
  c->hs_left = 0;
  if (c->password != NULL) {
    const char *argv[2] = {"AUTH", c->password};
    size_t len[2] = {4, strlen(c->password)};
    if (redisAsyncCommandArgv(ac, on_handshake, (void *)"AUTH", 2, argv, len) ==
        REDIS_OK)
      c->hs_left++;
  }
  if (c->db != 0) {
    char db[16];
    const char *argv[2] = {"SELECT", db};
    size_t len[2] = {6, (size_t)snprintf(db, sizeof db, "%d", c->db)};
    if (redisAsyncCommandArgv(ac, on_handshake, (void *)"SELECT", 2, argv,
                              len) == REDIS_OK)
      c->hs_left++;
  }
  if (c->hs_left == 0)
    ready(c);
}

/* The libuv adapter of hiredis 0.14 drops a poll error (a reset or a
 * refused connect comes as POLLERR, which libuv reports as a status, and
 * stops the handle): the context would never learn that the connection is
 * gone.  Its hooks are wrapped so that an error is handed to hiredis, which
 * then reads (or finishes connecting), sees the error and disconnects. */
static void poll_cb(uv_poll_t *h, int status, int events) {
  redisLibuvEvents *p = h->data;
  if (status != 0 && p->context != NULL) {
    if (p->context->c.flags & REDIS_CONNECTED)
      redisAsyncHandleRead(p->context);
    else
      redisAsyncHandleWrite(p->context);
    return;
  }
  redisLibuvPoll(h, status, events);
}

static void rewatch(void *pd) {
  redisLibuvEvents *p = pd;
  if (p->events)
    uv_poll_start(&p->handle, p->events, poll_cb);
}
static void add_read(void *pd) {
  redisLibuvAddRead(pd);
  rewatch(pd);
}
static void del_read(void *pd) {
  redisLibuvDelRead(pd);
  rewatch(pd);
}
static void add_write(void *pd) {
  redisLibuvAddWrite(pd);
  rewatch(pd);
}
static void del_write(void *pd) {
  redisLibuvDelWrite(pd);
  rewatch(pd);
}

/* Connects.  FROM_LOOP: called from a loop callback (the reconnect timer),
 * so the owner may be told of a failure; from cache__rconn_open it is not
 * (nothing can be waiting yet). */
static void connect_now(cache__rconn_t *c, bool from_loop) {
  if (c->closing || c->ac != NULL)
    return;
  c->state = CACHE__RCONN_CONNECTING;
  redisAsyncContext *ac = redisAsyncConnect(c->host, c->port);
  if (ac == NULL || ac->err || redisLibuvAttach(ac, c->uv) != REDIS_OK) {
    snprintf(c->last, sizeof c->last, "connecting: %s",
             ac == NULL ? "out of memory"
             : ac->err  ? ac->errstr
                        : "cannot watch the socket");
    if (ac != NULL && ac->ev.data == NULL)
      ac->ev.cleanup = NULL; /* the adapter's cleanup needs its state */
    if (ac != NULL)
      redisAsyncFree(ac);
    fail_unsent(c, -ENOTCONN);
    schedule_reconnect(c);
    if (from_loop)
      notify_down(c);
    return;
  }
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  /* Never keep the loop alive for the socket alone. */
  uv_unref((uv_handle_t *)&((redisLibuvEvents *)ac->ev.data)->handle);
  ac->data = c;
  c->ac = ac;
  c->refs++;
  /* TCP keepalive (hiredis: idle 15 s, then 3 probes 5 s apart): a peer
   * gone without a word (a partition, a host that died) is noticed in
   * about 30 s even on a connection that only waits, as the subscriber
   * does, and then it reconnects like any other drop. */
  redisEnableKeepAlive(&ac->c);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  /* hiredis learns that the connect finished from the first writable
   * event, and watches for one only once a command is queued; ours wait
   * for the handshake, so watch now. */
  ac->ev.addWrite(ac->ev.data);
}

/* --- Subscribe mode ------------------------------------------------------- */

static void on_push(redisAsyncContext *ac, void *reply, void *priv) {
  cache__rconn_t *c = priv;
  /* NULL: the context is going (hiredis runs every subscription's callback
   * then); a push of a context already replaced is dropped. */
  if (reply == NULL || c->closing || ac != c->ac || ac != c->push_ac ||
      c->push == NULL)
    return;
  c->push(c->push_data, reply);
  rt_loop_after_callback(c->loop);
}

int cache__rconn_subscribe(cache__rconn_t *c, const char *channel,
                           cache__rconn_push_fn fn, void *data) {
  if (c->closing)
    return -ECANCELED;
  if (c->state != CACHE__RCONN_READY || c->ac == NULL)
    return -ENOTCONN;
  c->push = fn;
  c->push_data = data;
  c->push_ac = c->ac;
  const char *argv[2] = {"SUBSCRIBE", channel};
  size_t len[2] = {9, strlen(channel)};
  if (redisAsyncCommandArgv(c->ac, on_push, c, 2, argv, len) != REDIS_OK)
    return -EIO;
  return 0;
}

/* --- Opening and closing -------------------------------------------------- */

int cache__rconn_open(rt_loop_t *loop, const cache__rconn_config_t *cfg,
                      cache__rconn_t **out) {
  cache__rconn_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return -ENOMEM;
  if (cfg->password != NULL) {
    c->password = strdup(cfg->password);
    if (c->password == NULL) {
      free(c);
      return -ENOMEM;
    }
  }
  c->loop = loop;
  c->uv = rt_loop_uv(loop);
  snprintf(c->host, sizeof c->host, "%s", cfg->host);
  c->port = cfg->port;
  c->db = cfg->db;
  c->timeout_ms = cfg->timeout_ms;
  c->name = cfg->name;
  c->error = cfg->error;
  c->errlen = cfg->errlen;
  c->on_down = cfg->on_down;
  c->on_ready = cfg->on_ready;
  c->data = cfg->data;
  c->backoff_ms = BACKOFF_MIN_MS;
  c->rng = (uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c) | 1;
  uv_timer_init(c->uv, &c->deadline);
  c->deadline.data = c;
  uv_timer_init(c->uv, &c->reconnect);
  c->reconnect.data = c;
  uv_unref((uv_handle_t *)&c->reconnect);
  c->refs = 2; /* the two timers */
  connect_now(c, false);
  *out = c;
  return 0;
}

void cache__rconn_close(cache__rconn_t *c) {
  if (c->closing)
    return;
  c->closing = true; /* a request made from a callback below is refused */
  /* Every unanswered request is answered now; those hiredis holds are freed
   * when it runs their callbacks (in redisAsyncFree). */
  while (c->head != NULL) {
    req_t *r = c->head;
    bool sent = r->sent;
    answer_err(c, r, -ECANCELED);
    if (!sent)
      free_req(r);
  }
  c->refs++; /* held across the frees below */
  uv_close((uv_handle_t *)&c->deadline, on_timer_closed);
  uv_close((uv_handle_t *)&c->reconnect, on_timer_closed);
  redisAsyncContext *ac = c->ac;
  if (ac != NULL) {
    bool deferred = (ac->c.flags & REDIS_IN_CALLBACK) != 0;
    bool connected = (ac->c.flags & REDIS_CONNECTED) != 0;
    redisAsyncFree(ac); /* on_disconnect drops its reference, if connected */
    if (!deferred && !connected && c->ac == ac) {
      c->ac = NULL;
      c->refs--; /* the context's; ours keeps it above 0 */
    }
  }
  unref_conn(c);
}

/* --- Accessors ------------------------------------------------------------ */

int cache__rconn_state(const cache__rconn_t *c) {
  return c->state;
}
size_t cache__rconn_pending(const cache__rconn_t *c) {
  return c->pending;
}
uint64_t cache__rconn_reconnects(const cache__rconn_t *c) {
  return c->reconnects;
}
const char *cache__rconn_host(const cache__rconn_t *c) {
  return c->host;
}
int cache__rconn_port(const cache__rconn_t *c) {
  return c->port;
}
const char *cache__rconn_why(const cache__rconn_t *c) {
  return c->last;
}
