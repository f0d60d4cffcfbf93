/* redis.c -- redis://host:port/db, a Redis server through hiredis's
 * asynchronous API on the loop's libuv.
 *
 *   redis://[:password@]host[:port][/db][?password=P&timeout-ms=N]
 *
 * One connection; commands are pipelined on it.  After each connect, AUTH
 * (when a password is given) and SELECT (when db is not 0) go first;
 * commands made meanwhile wait in the store's own queue and are sent once
 * both have succeeded, so none runs unauthenticated or in the wrong db.
 *
 * INV(once): every command is answered exactly once: by its reply, by its
 * deadline (-ETIMEDOUT: the late reply is ignored), by the connection
 * dropping (-ECONNRESET, sent; -ENOTCONN, not yet sent), or by close
 * (-ECANCELED).  A command's state (cmd_t) lives until it is answered and,
 * once sent, until hiredis has run its callback (which it does on a reply
 * or when the context is freed): `answered` says which of the two came
 * first.
 * INV(order): the unanswered commands form one list in the order they were
 * made; they all have the same timeout, so it is also deadline order and
 * the timer only looks at its head.
 *
 * While disconnected a command fails at once (-ENOTCONN, from the loop), so
 * nothing is queued forever; reconnects back off from 100 ms, doubling to
 * 5 s, with jitter.  The hiredis poll handle and the reconnect timer are
 * unref'd: an idle store never keeps the loop alive; the deadline timer
 * runs (ref'd) only while commands are unanswered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <tenure/cache.h>

#include "cache_internal.h"

#define DEFAULT_PORT 6379
#define DEFAULT_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum { C_GET, C_SET, C_DEL, C_TOUCH, C_PERSIST };
enum { S_DISCONNECTED, S_CONNECTING, S_READY };

typedef struct redis_s redis_t;

typedef struct cmd_s {
  struct cmd_s *prev, *next; /* the unanswered list */
  redis_t *r;
  int kind;
  bool answered, sent;
  uint64_t deadline; /* uv_now ms */
  uint64_t t0;       /* cache__now_us() at the call */
  uint64_t ttl_ms;
  cache_get_fn get;
  cache_done_fn done;
  void *data;
  char *buf; /* key, then the JSON text (until sent) */
  size_t klen, jlen;
} cmd_t;

struct redis_s {
  cache_store_t base;
  rt_runtime_t *rt;
  gc_heap_t *h;
  uv_loop_t *uv;
  char host[256];
  int port, db;
  char *password;
  uint64_t timeout_ms;
  redisAsyncContext *ac;
  int state;
  bool closing, ever_ready, hs_failed;
  int hs_left;           /* handshake replies still awaited */
  uint64_t backoff_ms;   /* the next retry's base: 100 ms doubling to 5 s */
  uint64_t rng;          /* the jitter's state */
  cmd_t *head, *tail;    /* unanswered commands */
  uv_timer_t deadline;   /* armed while commands are unanswered */
  uv_timer_t reconnect;  /* unref'd */
  size_t refs;           /* open timers, the context, queued answers */
  cache_stats_t st;
  char last[96];         /* why the connection is down */
};

static void connect_now(redis_t *r);

/* --- Lifetime ------------------------------------------------------------- */

static void unref_store(redis_t *r) {
  if (--r->refs == 0 && r->closing) {
    free(r->password);
    free(r);
  }
}

static void on_timer_closed(uv_handle_t *hd) { unref_store(hd->data); }

static void seterr(redis_t *r, const char *fmt, const char *a,
                   const char *b) {
  snprintf(r->base.error, sizeof r->base.error, fmt, a, b);
}

/* --- Answers -------------------------------------------------------------- */

static void unlink_cmd(redis_t *r, cmd_t *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    r->head = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  else
    r->tail = c->prev;
  c->prev = c->next = NULL;
  if (r->head == NULL)
    uv_timer_stop(&r->deadline); /* nothing to wait for: let the loop end */
}

static void free_cmd(cmd_t *c) {
  free(c->buf);
  free(c);
}

typedef struct later_s {
  redis_t *r;
  int err;
  cache_get_fn get;
  cache_done_fn done;
  void *data;
  uint64_t t0;
} later_t;

static void run_later(rt_loop_t *loop, void *data, rt_value_t *args,
                      size_t nargs) {
  later_t *l = data;
  (void)loop;
  (void)args;
  (void)nargs;
  cache__latency_record(&l->r->base, l->t0);
  if (l->get != NULL)
    l->get(&l->r->base, l->err, NULL, l->data);
  else if (l->done != NULL)
    l->done(&l->r->base, l->err, l->data);
  redis_t *r = l->r;
  free(l);
  unref_store(r);
}

/* An error answered from the loop (a call must never answer inside). */
static void answer_later(redis_t *r, int err, cache_get_fn get,
                         cache_done_fn done, void *data) {
  r->st.errors++;
  later_t *l = malloc(sizeof *l);
  if (l != NULL) {
    *l = (later_t){r, err, get, done, data, cache__now_us()};
    if (rt_next_tick(r->base.loop, run_later, l, NULL, 0) == 0) {
      r->refs++;
      return;
    }
    free(l);
  }
  /* Out of memory for the answer itself: answer now rather than never. */
  if (get != NULL)
    get(&r->base, -ENOMEM, NULL, data);
  else if (done != NULL)
    done(&r->base, -ENOMEM, data);
}

/* Answers C now (from a loop callback) with an error, and marks it. */
static void answer_err(redis_t *r, cmd_t *c, int err) {
  c->answered = true;
  unlink_cmd(r, c);
  r->st.errors++;
  cache__latency_record(&r->base, c->t0);
  if (c->get != NULL)
    c->get(&r->base, err, NULL, c->data);
  else if (c->done != NULL)
    c->done(&r->base, err, c->data);
}

/* --- The deadline timer --------------------------------------------------- */

static void on_deadline(uv_timer_t *t);

static void arm(redis_t *r) {
  if (r->closing)
    return;
  if (r->head == NULL) {
    uv_timer_stop(&r->deadline);
    return;
  }
  uint64_t now = uv_now(r->uv);
  uint64_t d = r->head->deadline > now ? r->head->deadline - now : 0;
  uv_timer_start(&r->deadline, on_deadline, d, 0);
}

static void on_deadline(uv_timer_t *t) {
  redis_t *r = t->data;
  uint64_t now = uv_now(r->uv);
  bool any = false;
  while (!r->closing && r->head != NULL && r->head->deadline <= now) {
    cmd_t *c = r->head;
    snprintf(r->base.error, sizeof r->base.error,
             "redis store: no answer from %.60s:%d within %llu ms", r->host,
             r->port, (unsigned long long)r->timeout_ms);
    answer_err(r, c, -ETIMEDOUT);
    any = true;
    if (!c->sent)
      free_cmd(c); /* hiredis never had it */
  }
  arm(r);
  if (any)
    rt_loop_after_callback(r->base.loop);
}

/* --- Replies -------------------------------------------------------------- */

static int reply_error(redis_t *r, const redisReply *rep) {
  snprintf(r->base.error, sizeof r->base.error, "redis store: %.*s",
           (int)rep->len, rep->str);
  if (strncmp(rep->str, "NOAUTH", 6) == 0 ||
      strncmp(rep->str, "WRONGPASS", 9) == 0)
    return -EACCES;
  return -EIO;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
  cmd_t *c = priv;
  redis_t *r = c->r;
  redisReply *rep = reply;
  if (c->answered) { /* timed out or cancelled: the late reply is ignored */
    free_cmd(c);
    return;
  }
  c->answered = true;
  unlink_cmd(r, c);
  int err = 0;
  if (rep == NULL) {
    if (!r->closing) { /* the context is going: new commands fail at once */
      r->state = S_DISCONNECTED;
      snprintf(r->last, sizeof r->last, "connection lost: %s",
               ac->errstr[0] ? ac->errstr : "closed");
    }
    snprintf(r->base.error, sizeof r->base.error,
             "redis store: connection to %.40s:%d lost (%.40s)", r->host,
             r->port, ac->errstr[0] ? ac->errstr : "closed");
    err = -ECONNRESET;
  } else if (rep->type == REDIS_REPLY_ERROR) {
    err = reply_error(r, rep);
  }
  if (err < 0)
    r->st.errors++;
  cache__latency_record(&r->base, c->t0);
  if (c->kind == C_GET) {
    gc_scope_t sc;
    gc_scope_open(r->h, &sc);
    rt_value_t *v = NULL;
    if (err == 0 && rep->type == REDIS_REPLY_STRING) {
      /* Copy the text off hiredis's buffer first. */
      char *text = malloc(rep->len + 1);
      if (text == NULL) {
        err = -ENOMEM;
      } else {
        memcpy(text, rep->str, rep->len);
        text[rep->len] = '\0';
        v = rt_handle(r->h, RT_NONE);
        rt_json_error_t je;
        err = rt_json_parse(r->rt, text, rep->len, NULL, v, &je);
        free(text);
        if (err < 0) {
          snprintf(r->base.error, sizeof r->base.error,
                   "redis store: a stored value does not parse");
          r->st.errors++;
          v = NULL;
        } else {
          r->st.hits++;
        }
      }
    } else if (err == 0 && rep->type == REDIS_REPLY_NIL) {
      r->st.misses++;
    } else if (err == 0) {
      snprintf(r->base.error, sizeof r->base.error,
               "redis store: GET: an unexpected reply (type %d)", rep->type);
      err = -EIO;
      r->st.errors++;
    }
    c->get(&r->base, err, v, c->data);
    gc_scope_close(r->h, &sc);
  } else {
    if (err == 0 && c->kind == C_SET)
      r->st.sets++;
    else if (err == 0 && c->kind == C_DEL && rep->type == REDIS_REPLY_INTEGER &&
             rep->integer > 0)
      r->st.deletes++;
    else if (err == 0 && (c->kind == C_TOUCH || c->kind == C_PERSIST))
      err = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 ? 0
                                                                 : -ENOENT;
    if (c->done != NULL)
      c->done(&r->base, err, c->data);
  }
  free_cmd(c);
  rt_loop_after_callback(r->base.loop);
}

/* --- Sending -------------------------------------------------------------- */

static int send_cmd(redis_t *r, cmd_t *c) {
  const char *argv[5];
  size_t len[5];
  int argc = 0;
  char ttl[24];
  const char *key = c->buf, *json = c->buf + c->klen;
#define ARG(s, n) (argv[argc] = (s), len[argc] = (n), argc++)
  switch (c->kind) {
  case C_GET:
    ARG("GET", 3);
    ARG(key, c->klen);
    break;
  case C_SET:
    ARG("SET", 3);
    ARG(key, c->klen);
    ARG(json, c->jlen);
    if (c->ttl_ms != 0) {
      ARG("PX", 2);
      ARG(ttl, (size_t)snprintf(ttl, sizeof ttl, "%llu",
                                (unsigned long long)c->ttl_ms));
    }
    break;
  case C_DEL:
    ARG("DEL", 3);
    ARG(key, c->klen);
    break;
  case C_TOUCH:
    ARG("PEXPIRE", 7);
    ARG(key, c->klen);
    ARG(ttl, (size_t)snprintf(ttl, sizeof ttl, "%llu",
                              (unsigned long long)c->ttl_ms));
    break;
  case C_PERSIST: {
    /* No expiry: PERSIST, then EXISTS answers whether the key is there
     * (PERSIST's own 0 cannot tell "absent" from "had no TTL"). */
    const char *pv[2] = {"PERSIST", key};
    size_t pl[2] = {7, c->klen};
    if (redisAsyncCommandArgv(r->ac, NULL, NULL, 2, pv, pl) != REDIS_OK)
      return -EIO;
    ARG("EXISTS", 6);
    ARG(key, c->klen);
    break;
  }
  }
#undef ARG
  if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, len) != REDIS_OK)
    return -EIO;
  c->sent = true;
  free(c->buf); /* hiredis has its own copy in its output buffer */
  c->buf = NULL;
  return 0;
}

/* Sends every command made while the handshake was under way. */
static void flush(redis_t *r) {
  cmd_t *c = r->head;
  while (c != NULL) {
    cmd_t *next = c->next;
    if (!c->sent && send_cmd(r, c) < 0) {
      snprintf(r->base.error, sizeof r->base.error,
               "redis store: could not send a command");
      answer_err(r, c, -EIO);
      free_cmd(c);
    }
    c = next;
  }
}

/* Fails the commands not yet sent (the connection they waited for is not
 * coming). */
static void fail_unsent(redis_t *r, int err) {
  cmd_t *c = r->head;
  bool any = false;
  while (c != NULL) {
    cmd_t *next = c->next;
    if (!c->sent) {
      answer_err(r, c, err);
      free_cmd(c);
      any = true;
    }
    c = next;
  }
  if (any)
    rt_loop_after_callback(r->base.loop);
}

/* --- The connection ------------------------------------------------------- */

static void on_reconnect(uv_timer_t *t) { connect_now(t->data); }

static void schedule_reconnect(redis_t *r) {
  if (r->closing)
    return;
  r->state = S_DISCONNECTED;
  uint64_t base = r->backoff_ms;
  r->rng ^= r->rng << 13; /* xorshift64: jitter differs between processes */
  r->rng ^= r->rng >> 7;
  r->rng ^= r->rng << 17;
  uint64_t delay = base / 2 + r->rng % (base / 2 + 1);
  r->backoff_ms = base * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : base * 2;
  uv_timer_start(&r->reconnect, on_reconnect, delay, 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  redis_t *r = ac->data;
  (void)status;
  if (ac != r->ac)
    return;
  r->ac = NULL;
  if (!r->closing && !r->hs_failed) {
    snprintf(r->last, sizeof r->last, "connection lost: %s",
             ac->errstr[0] ? ac->errstr : "closed");
  }
  if (!r->closing) {
    fail_unsent(r, -ENOTCONN);
    schedule_reconnect(r);
  }
  unref_store(r);
}

static void ready(redis_t *r) {
  r->state = S_READY;
  r->backoff_ms = BACKOFF_MIN_MS;
  if (r->ever_ready)
    r->st.reconnects++;
  r->ever_ready = true;
  r->last[0] = '\0';
  flush(r);
}

static void on_handshake(redisAsyncContext *ac, void *reply, void *priv) {
  redis_t *r = ac->data;
  redisReply *rep = reply;
  const char *what = priv;
  if (rep == NULL || r->closing || r->hs_failed || ac != r->ac)
    return; /* the connection went: on_disconnect deals with it */
  if (rep->type == REDIS_REPLY_ERROR) {
    r->hs_failed = true;
    r->state = S_DISCONNECTED; /* new commands fail at once from now */
    snprintf(r->last, sizeof r->last, "%s failed: %.*s", what,
             (int)(rep->len > 60 ? 60 : rep->len), rep->str);
    seterr(r, "redis store: %s", r->last, NULL);
    fail_unsent(r, what[0] == 'A' ? -EACCES : -EINVAL);
    seterr(r, "redis store: %s", r->last, NULL);
    redisAsyncDisconnect(ac); /* then on_disconnect, and a retry later */
    return;
  }
  if (--r->hs_left == 0)
    ready(r);
}

static void on_connect(const redisAsyncContext *cac, int status) {
  redis_t *r = cac->data;
  redisAsyncContext *ac = (redisAsyncContext *)cac;
  if (ac != r->ac)
    return;
  if (status != REDIS_OK) {
    /* hiredis frees the context after this returns; no on_disconnect. */
    r->ac = NULL;
    snprintf(r->last, sizeof r->last, "connecting: %s", ac->errstr);
    if (!r->closing) {
      seterr(r, "redis store: %s", r->last, NULL);
      fail_unsent(r, -ENOTCONN);
      schedule_reconnect(r);
    }
    unref_store(r);
    return;
  }
  r->hs_failed = false;
  r->hs_left = 0;
  if (r->password != NULL) {
    const char *argv[2] = {"AUTH", r->password};
    size_t len[2] = {4, strlen(r->password)};
    if (redisAsyncCommandArgv(ac, on_handshake, (void *)"AUTH", 2, argv,
                              len) == REDIS_OK)
      r->hs_left++;
  }
  if (r->db != 0) {
    char db[16];
    const char *argv[2] = {"SELECT", db};
    size_t len[2] = {6, (size_t)snprintf(db, sizeof db, "%d", r->db)};
    if (redisAsyncCommandArgv(ac, on_handshake, (void *)"SELECT", 2, argv,
                              len) == REDIS_OK)
      r->hs_left++;
  }
  if (r->hs_left == 0)
    ready(r);
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

static void connect_now(redis_t *r) {
  if (r->closing || r->ac != NULL)
    return;
  r->state = S_CONNECTING;
  redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
  if (ac == NULL || ac->err) {
    snprintf(r->last, sizeof r->last, "connecting: %s",
             ac != NULL ? ac->errstr : "out of memory");
    if (ac != NULL)
      redisAsyncFree(ac);
    fail_unsent(r, -ENOTCONN);
    schedule_reconnect(r);
    return;
  }
  if (redisLibuvAttach(ac, r->uv) != REDIS_OK) {
    snprintf(r->last, sizeof r->last, "connecting: cannot watch the socket");
    redisAsyncFree(ac);
    fail_unsent(r, -ENOTCONN);
    schedule_reconnect(r);
    return;
  }
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  /* Never keep the loop alive for the socket alone. */
  uv_unref((uv_handle_t *)&((redisLibuvEvents *)ac->ev.data)->handle);
  ac->data = r;
  r->ac = ac;
  r->refs++;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  /* hiredis learns that the connect finished from the first writable
   * event, and watches for one only once a command is queued; ours wait
   * for the handshake, so watch now. */
  ac->ev.addWrite(ac->ev.data);
}

/* --- Operations ----------------------------------------------------------- */

/* A new command (KEY, then JSON's text), sent now or after the handshake, or
 * failed at once while disconnected. */
static void submit(redis_t *r, int kind, const char *key, size_t klen,
                   const char *json, size_t jlen, uint64_t ttl_ms,
                   cache_get_fn get, cache_done_fn done, void *data) {
  if (r->closing) {
    seterr(r, "redis store: closed", NULL, NULL);
    answer_later(r, -ECANCELED, get, done, data);
    return;
  }
  if (r->state == S_DISCONNECTED) {
    snprintf(r->base.error, sizeof r->base.error,
             "redis store: not connected to %.40s:%d (%.40s)", r->host, r->port,
             r->last[0] ? r->last : "reconnecting");
    answer_later(r, -ENOTCONN, get, done, data);
    return;
  }
  cmd_t *c = calloc(1, sizeof *c);
  char *buf = malloc(klen + jlen + 1);
  if (c == NULL || buf == NULL) {
    free(c);
    free(buf);
    answer_later(r, -ENOMEM, get, done, data);
    return;
  }
  memcpy(buf, key, klen);
  if (jlen != 0)
    memcpy(buf + klen, json, jlen);
  *c = (cmd_t){.r = r, .kind = kind, .deadline = uv_now(r->uv) + r->timeout_ms,
               .ttl_ms = ttl_ms, .get = get, .done = done, .data = data,
               .buf = buf, .klen = klen, .jlen = jlen, .t0 = cache__now_us()};
  c->prev = r->tail;
  if (r->tail != NULL)
    r->tail->next = c;
  else
    r->head = c;
  r->tail = c;
  if (r->state == S_READY && send_cmd(r, c) < 0) {
    unlink_cmd(r, c);
    free_cmd(c);
    seterr(r, "redis store: could not send a command", NULL, NULL);
    answer_later(r, -EIO, get, done, data);
    return;
  }
  if (r->head == c)
    arm(r);
}

static void redis_get(cache_store_t *st, const char *key, size_t klen,
                      cache_get_fn fn, void *data) {
  submit((redis_t *)st, C_GET, key, klen, NULL, 0, 0, fn, NULL, data);
}

static void redis_set(cache_store_t *st, const char *key, size_t klen,
                      const rt_value_t *value, uint64_t ttl_ms,
                      cache_done_fn fn, void *data) {
  redis_t *r = (redis_t *)st;
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  int err = value != NULL ? rt_json_stringify(r->rt, *value, NULL, &b)
                          : -EINVAL;
  if (err < 0) {
    rt_strbuf_free(&b);
    seterr(r, "redis store: the value has no JSON form", NULL, NULL);
    answer_later(r, err, NULL, fn, data);
    return;
  }
  submit(r, C_SET, key, klen, b.data, b.len, ttl_ms, NULL, fn, data);
  rt_strbuf_free(&b);
}

static void redis_del(cache_store_t *st, const char *key, size_t klen,
                      cache_done_fn fn, void *data) {
  submit((redis_t *)st, C_DEL, key, klen, NULL, 0, 0, NULL, fn, data);
}

static void redis_touch(cache_store_t *st, const char *key, size_t klen,
                        uint64_t ttl_ms, cache_done_fn fn, void *data) {
  submit((redis_t *)st, ttl_ms != 0 ? C_TOUCH : C_PERSIST, key, klen, NULL, 0,
         ttl_ms, NULL, fn, data);
}

static void redis_stats(cache_store_t *st, cache_stats_t *out) {
  *out = ((redis_t *)st)->st;
}

static void redis_close(cache_store_t *st) {
  redis_t *r = (redis_t *)st;
  if (r->closing)
    return;
  r->closing = true;
  snprintf(r->base.error, sizeof r->base.error, "redis store: closed");
  /* Every unanswered command gets -ECANCELED from the loop; those hiredis
   * holds are freed when it runs their callbacks (in redisAsyncFree). */
  while (r->head != NULL) {
    cmd_t *c = r->head;
    c->answered = true;
    unlink_cmd(r, c);
    answer_later(r, -ECANCELED, c->get, c->done, c->data);
    if (!c->sent)
      free_cmd(c);
  }
  r->refs++; /* held across the frees below */
  uv_close((uv_handle_t *)&r->deadline, on_timer_closed);
  uv_close((uv_handle_t *)&r->reconnect, on_timer_closed);
  redisAsyncContext *ac = r->ac;
  if (ac != NULL) {
    bool deferred = (ac->c.flags & REDIS_IN_CALLBACK) != 0;
    bool connected = (ac->c.flags & REDIS_CONNECTED) != 0;
    redisAsyncFree(ac); /* on_disconnect drops its reference, if connected */
    if (!deferred && !connected && r->ac == ac) {
      r->ac = NULL;
      r->refs--; /* the context's; ours keeps it above 0 */
    }
  }
  unref_store(r);
}

/* --- Opening -------------------------------------------------------------- */

static int hexval(char ch) {
  return ch >= '0' && ch <= '9'   ? ch - '0'
         : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                  : -1;
}

/* A percent-decoded copy of S (N bytes), or NULL. */
static char *decode(const char *s, size_t n) {
  char *out = malloc(n + 1), *o = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      *o++ = s[i];
    }
  }
  *o = '\0';
  return out;
}

static int parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  if (n == 0)
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > max)
      return -EINVAL;
  }
  *out = v;
  return 0;
}

static int redis_open(rt_loop_t *loop, const char *url, cache_store_t **out,
                      char *err, size_t errlen) {
  const char *p = strstr(url, "://");
  p = p != NULL ? p + 3 : url;
  const char *q = strchr(p, '?');
  const char *end = q != NULL ? q : p + strlen(p);
  char *password = NULL;
  uint64_t port = DEFAULT_PORT, db = 0, timeout = DEFAULT_TIMEOUT_MS;
  char host[256] = "127.0.0.1";
  /* [user][:password]@ */
  const char *at = memchr(p, '@', (size_t)(end - p));
  if (at != NULL) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon == NULL || colon + 1 == at) {
      snprintf(err, errlen, "redis://: give the password as "
                            "redis://:password@host (%s)", url);
      return -EINVAL;
    }
    password = decode(colon + 1, (size_t)(at - colon - 1));
    if (password == NULL)
      return -ENOMEM;
    p = at + 1;
  }
  const char *slash = memchr(p, '/', (size_t)(end - p));
  const char *hend = slash != NULL ? slash : end;
  const char *colon = memchr(p, ':', (size_t)(hend - p));
  size_t hl = (size_t)((colon != NULL ? colon : hend) - p);
  if (hl >= sizeof host)
    goto bad;
  if (hl > 0) {
    memcpy(host, p, hl);
    host[hl] = '\0';
  }
  if (colon != NULL &&
      (parse_uint(colon + 1, (size_t)(hend - colon - 1), 65535, &port) < 0 ||
       port == 0))
    goto bad;
  if (slash != NULL && slash + 1 < end &&
      parse_uint(slash + 1, (size_t)(end - slash - 1), 1u << 20, &db) < 0)
    goto bad;
  for (const char *a = q != NULL ? q + 1 : NULL; a != NULL && *a;) {
    const char *amp = strchr(a, '&');
    size_t n = amp != NULL ? (size_t)(amp - a) : strlen(a);
    const char *eq = memchr(a, '=', n);
    if (eq == NULL) {
      snprintf(err, errlen, "redis://: %.*s has no value", (int)n, a);
      free(password);
      return -EINVAL;
    }
    size_t kl = (size_t)(eq - a), vl = n - kl - 1;
    if (kl == 8 && memcmp(a, "password", 8) == 0) {
      free(password);
      password = decode(eq + 1, vl);
      if (password == NULL)
        return -ENOMEM;
    } else if (kl == 10 && memcmp(a, "timeout-ms", 10) == 0) {
      if (parse_uint(eq + 1, vl, 86400000, &timeout) < 0 || timeout == 0) {
        snprintf(err, errlen, "redis://: %.*s is not a timeout in ms",
                 (int)n, a);
        free(password);
        return -EINVAL;
      }
    } else {
      snprintf(err, errlen, "redis://: unknown parameter %.*s", (int)kl, a);
      free(password);
      return -EINVAL;
    }
    a = amp != NULL ? amp + 1 : NULL;
  }
  redis_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    free(password);
    return -ENOMEM;
  }
  r->base.type = &cache_redis_type;
  r->base.loop = loop;
  r->rt = rt_loop_runtime(loop);
  r->h = rt_heap(r->rt);
  r->uv = rt_loop_uv(loop);
  snprintf(r->host, sizeof r->host, "%s", host);
  r->port = (int)port;
  r->db = (int)db;
  r->password = password;
  r->timeout_ms = timeout;
  r->backoff_ms = BACKOFF_MIN_MS;
  r->rng = (uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)r) | 1;
  uv_timer_init(r->uv, &r->deadline);
  r->deadline.data = r;
  uv_timer_init(r->uv, &r->reconnect);
  r->reconnect.data = r;
  uv_unref((uv_handle_t *)&r->reconnect);
  r->refs = 2; /* the two timers */
  connect_now(r);
  *out = &r->base;
  return 0;
bad:
  free(password);
  snprintf(err, errlen, "redis://: expected redis://[:password@]host[:port]"
                        "[/db][?password=P&timeout-ms=N]: %s", url);
  return -EINVAL;
}

const cache_store_type_t cache_redis_type = {
    .scheme = "redis",
    .open = redis_open,
    .get = redis_get,
    .set = redis_set,
    .del = redis_del,
    .touch = redis_touch,
    .stats = redis_stats,
    .close = redis_close,
};
