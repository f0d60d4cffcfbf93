/* near.c -- near+redis://: a two-level store, an in-heap LRU (memory://) of
 * near copies in front of a Redis server (redis://), kept coherent by
 * Redis's own invalidation messages.
 *
 *   near+redis://[:password@]host[:port][/db][?password=P&timeout-ms=N
 *                &near-entries=N&near-bytes=M&near-ttl-ms=T&near-prefix=P]
 *
 * The model.  Redis is the truth; a near copy is a value read from it that
 * no write has touched since.  A subscriber connection of our own asks
 * Redis for broadcast tracking (CLIENT TRACKING on REDIRECT <itself> BCAST,
 * Redis 6+) and subscribes to __redis__:invalidate, so Redis tells every
 * server of each key that any client changed, expired, evicted or deleted
 * (and of FLUSHALL/FLUSHDB, with a nil): another server's write, a
 * redis-cli SET, a TTL passing.  A message drops the near copies it names.
 *
 * INV(live): near copies are served and made only while the subscription
 * stands (the confirmation came, and the connection has not dropped since).
 * When it drops every near copy is dropped (the near store is closed and
 * opened anew: `epoch` counts that), and until it stands again every get
 * goes to Redis; a missed message can therefore never leave a stale copy.
 *
 * INV(fill): a value read from Redis becomes a near copy only if no
 * invalidation that could concern its key arrived while the read was in
 * flight: the read notes its key's bucket counter (inval[], by key hash) and
 * the epoch when it is sent, and the copy is made only if both are
 * unchanged at the reply.  A write that Redis ordered after the read sends a
 * message that either arrived before the reply (no copy is made) or after
 * it (the copy is dropped then).  Our own set and delete drop the near copy
 * and bump the bucket before going to Redis; they make no copy (Redis's
 * message for them arrives later and would drop it anyway).
 *
 * A read from Redis also brings the entry's remaining TTL (GET and PTTL in
 * one script), and a near copy expires with it or after near-ttl-ms
 * (default NEAR_TTL_MS), whichever is first: it never outlives Redis's
 * entry waiting for the expiry's message, and near-ttl-ms bounds staleness
 * should messages stop in a way the connection does not notice (a network
 * partition before TCP gives up; a paused Redis, which changes nothing).
 * So a read of a copy needs no round trip, and keeps answering while Redis
 * is paused; a Redis that went away drops the subscriber, and every copy.
 *
 * What users see: the interface of every store; stats count hits from
 * either level (near_hits says how many were near), entries and bytes and
 * their bounds are the near level's (what this process holds), errors and
 * reconnects are Redis's plus the subscriber's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/cache.h>
#include <tenure/rt_json.h>

#include "cache_internal.h"
#include "redis_conn.h"
#include "redis_op.h"

#define NEAR_TTL_MS ((uint64_t)5000)
#define NEAR_ENTRIES_DEFAULT 10000u
#define NEAR_BUCKETS 1024u /* invalidation counters, by key hash */
#define NEAR_CHANNEL "__redis__:invalidate"

typedef struct near_s {
  cache_store_t base;
  cache_store_t *remote; /* redis:// */
  cache_store_t *near;   /* memory://, or NULL when it could not reopen */
  cache__rconn_t *sub;   /* the subscriber */
  char near_url[96];
  char *prefix; /* BCAST PREFIX, or NULL */
  uint64_t near_ttl_ms, timeout_ms;
  bool live;      /* INV(live) */
  bool closing;
  uint64_t epoch; /* near stores opened after the first */
  uint32_t inval[NEAR_BUCKETS];
  uint64_t near_hits, sub_errors;
  size_t pending; /* our operations not yet answered */
} near_t;

enum { NOP_GET, NOP_GET_JSON, NOP_DONE };

typedef struct nop_s {
  near_t *n;
  int kind;
  cache_get_fn get;
  cache_get_json_fn jget; /* NOP_GET_JSON */
  cache_done_fn done;
  void *data;
  uint64_t t0;
  uint64_t ttl_ms;
  uint64_t epoch;  /* INV(fill): at the read's send */
  uint32_t inval;
  bool fill;       /* the read may make a near copy */
  int64_t pttl;    /* the read's: Redis's remaining TTL (-1 none, -2 unknown) */
  size_t klen;
  char key[];
} nop_t;

static uint32_t bucket_of(const char *key, size_t klen) {
  return cache__hash_key(key, klen) & (NEAR_BUCKETS - 1);
}

static void seterr(near_t *n, const char *msg) {
  snprintf(n->base.error, sizeof n->base.error, "%s", msg);
}

/* --- Answers -------------------------------------------------------------- */

static void free_near(near_t *n) {
  free(n->prefix);
  free(n);
}

/* Frees an answered OP (the store with it once closed and idle). */
static void release(nop_t *op) {
  near_t *n = op->n;
  free(op);
  if (--n->pending == 0 && n->closing)
    free_near(n);
}

/* Answers a NOP_GET_JSON op with the text JSON (NULL: a miss). */
static void answer_text(nop_t *op, int err, const char *json, size_t len) {
  cache__latency_record(&op->n->base, op->t0);
  op->jget(&op->n->base, err, err == 0 ? json : NULL, err == 0 ? len : 0,
           op->data);
  release(op);
}

/* Answers OP (always from a loop callback: the levels answer from the loop)
 * and frees it. */
static void answer(nop_t *op, int err, rt_value_t *value, const char *msg) {
  near_t *n = op->n;
  if (err < 0 && msg != NULL && msg[0])
    seterr(n, msg);
  if (op->kind == NOP_GET_JSON) { /* a value from Redis, written once */
    rt_strbuf_t b;
    rt_strbuf_init(&b);
    if (err == 0 && value != NULL)
      err = rt_json_stringify(rt_loop_runtime(n->base.loop), *value, NULL, &b);
    answer_text(op, err, err == 0 && value != NULL ? b.data : NULL, b.len);
    rt_strbuf_free(&b);
    return;
  }
  cache__latency_record(&n->base, op->t0);
  if (op->kind == NOP_GET)
    op->get(&n->base, err, err == 0 ? value : NULL, op->data);
  else if (op->done != NULL)
    op->done(&n->base, err, op->data);
  release(op);
}

static nop_t *new_op(near_t *n, int kind, const char *key, size_t klen,
                     cache_get_fn get, cache_done_fn done, void *data) {
  nop_t *op = malloc(sizeof *op + klen + 1);
  if (op == NULL)
    return NULL;
  *op = (nop_t){.n = n, .kind = kind, .get = get, .done = done, .data = data,
                .t0 = cache__latency_start(&n->base), .klen = klen};
  memcpy(op->key, key, klen);
  op->key[klen] = '\0';
  n->pending++;
  return op;
}

/* --- The near level ------------------------------------------------------- */

/* Drops every near copy: the near store is replaced by an empty one (its
 * pending gets are answered -ECANCELED, which sends them to Redis). */
static void drop_all(near_t *n) {
  n->epoch++;
  if (n->near != NULL)
    cache_close(n->near);
  n->near = NULL;
  if (n->closing)
    return;
  char err[128];
  if (cache_open(n->base.loop, n->near_url, &n->near, err, sizeof err) < 0) {
    n->near = NULL; /* every get goes to Redis until the next drop */
    seterr(n, "near store: cannot reopen the near level");
  }
}

static void drop_key(near_t *n, const char *key, size_t klen) {
  n->inval[bucket_of(key, klen)]++;
  if (n->near != NULL)
    cache_del(n->near, key, klen, NULL, NULL);
}

/* --- Operations ----------------------------------------------------------- */

static void on_remote_get(cache_store_t *st, int err, rt_value_t *value,
                          void *data) {
  nop_t *op = data;
  near_t *n = op->n;
  /* A copy expires with Redis's entry, or after near-ttl-ms. */
  uint64_t ttl = op->pttl == -1                                  ? n->near_ttl_ms
                 : op->pttl > 0 && (uint64_t)op->pttl < n->near_ttl_ms
                     ? (uint64_t)op->pttl
                     : op->pttl > 0 ? n->near_ttl_ms : 0;
  if (err == 0 && value != NULL && ttl > 0 && op->fill && n->live &&
      !n->closing && n->near != NULL && n->epoch == op->epoch &&
      n->inval[bucket_of(op->key, op->klen)] == op->inval)
    cache_set(n->near, op->key, op->klen, value, ttl, NULL, NULL);
  answer(op, err, value, cache_store_error(st));
}

static void remote_get(nop_t *op) {
  near_t *n = op->n;
  op->fill = n->live && n->near != NULL;
  op->epoch = n->epoch;
  op->inval = n->inval[bucket_of(op->key, op->klen)];
  op->pttl = -2;
  cache__rstore_get_ttl(n->remote, op->key, op->klen, &op->pttl, on_remote_get,
                        op);
}

static void on_near_get(cache_store_t *st, int err, rt_value_t *value,
                        void *data) {
  nop_t *op = data;
  near_t *n = op->n;
  (void)st;
  if (n->closing) {
    answer(op, -ECANCELED, NULL, "near store: closed");
    return;
  }
  if (err == 0 && value != NULL && n->live) {
    n->near_hits++;
    answer(op, 0, value, NULL);
    return;
  }
  remote_get(op); /* a miss, a dropped level, or the subscription went */
}

static void near_get(cache_store_t *st, const char *key, size_t klen,
                     cache_get_fn fn, void *data) {
  near_t *n = (near_t *)st;
  nop_t *op = new_op(n, NOP_GET, key, klen, fn, NULL, data);
  if (op == NULL) { /* answer now rather than never, as memory:// does */
    seterr(n, "near store: out of memory");
    fn(st, -ENOMEM, NULL, data);
    return;
  }
  if (n->live && n->near != NULL)
    cache_get(n->near, key, klen, on_near_get, op);
  else
    remote_get(op);
}

/* The near copy's text as it is (memory:// keeps JSON text): a near hit
 * builds no value on the heap; a miss goes to Redis as near_get does. */
static void on_near_get_json(cache_store_t *st, int err, const char *json,
                             size_t len, void *data) {
  nop_t *op = data;
  near_t *n = op->n;
  (void)st;
  if (n->closing) {
    seterr(n, "near store: closed");
    answer_text(op, -ECANCELED, NULL, 0);
    return;
  }
  if (err == 0 && json != NULL && n->live) {
    n->near_hits++;
    answer_text(op, 0, json, len);
    return;
  }
  remote_get(op);
}

static void near_get_json(cache_store_t *st, const char *key, size_t klen,
                          cache_get_json_fn fn, void *data) {
  near_t *n = (near_t *)st;
  nop_t *op = new_op(n, NOP_GET_JSON, key, klen, NULL, NULL, data);
  if (op == NULL) {
    seterr(n, "near store: out of memory");
    fn(st, -ENOMEM, NULL, 0, data);
    return;
  }
  op->jget = fn;
  if (n->live && n->near != NULL)
    cache_get_json(n->near, key, klen, on_near_get_json, op);
  else
    remote_get(op);
}

static void on_remote_done(cache_store_t *st, int err, void *data) {
  nop_t *op = data;
  answer(op, err, NULL, cache_store_error(st));
}

/* A set, delete or touch: the near copy goes first (our writes make none,
 * INV(fill)), then the operation that Redis answers; NULL when there is no
 * memory for it (answered -ENOMEM now rather than never, as memory://). */
static nop_t *write_op(near_t *n, const char *key, size_t klen,
                       cache_done_fn fn, void *data) {
  drop_key(n, key, klen);
  nop_t *op = new_op(n, NOP_DONE, key, klen, NULL, fn, data);
  if (op == NULL) {
    seterr(n, "near store: out of memory");
    if (fn != NULL)
      fn(&n->base, -ENOMEM, data);
  }
  return op;
}

static void near_set(cache_store_t *st, const char *key, size_t klen,
                     const rt_value_t *value, uint64_t ttl_ms,
                     cache_done_fn fn, void *data) {
  near_t *n = (near_t *)st;
  nop_t *op = write_op(n, key, klen, fn, data);
  if (op != NULL)
    cache_set(n->remote, key, klen, value, ttl_ms, on_remote_done, op);
}

static void near_del(cache_store_t *st, const char *key, size_t klen,
                     cache_done_fn fn, void *data) {
  near_t *n = (near_t *)st;
  nop_t *op = write_op(n, key, klen, fn, data);
  if (op != NULL)
    cache_del(n->remote, key, klen, on_remote_done, op);
}

/* A copy carries the expiry it was read with: a touch changes Redis's, so
 * the copy goes (Redis's message for the PEXPIRE would drop it too). */
static void near_touch(cache_store_t *st, const char *key, size_t klen,
                       uint64_t ttl_ms, cache_done_fn fn, void *data) {
  near_t *n = (near_t *)st;
  nop_t *op = write_op(n, key, klen, fn, data);
  if (op != NULL)
    cache_touch(n->remote, key, klen, ttl_ms, on_remote_done, op);
}

static void near_stats(cache_store_t *st, cache_stats_t *out) {
  near_t *n = (near_t *)st;
  cache_stats_t r, l = {0};
  cache_stats(n->remote, &r);
  if (n->near != NULL)
    cache_stats(n->near, &l);
  *out = r;
  out->hits = r.hits + n->near_hits;
  out->near_hits = n->near_hits;
  out->entries = l.entries;
  out->bytes = l.bytes;
  out->max_entries = l.max_entries;
  out->max_bytes = l.max_bytes;
  out->evictions = l.evictions;
  out->expirations = l.expirations;
  out->counted_ms_ago = 0; /* the near level's: counted now */
  out->errors = r.errors + n->sub_errors;
  out->reconnects = r.reconnects + cache__rconn_reconnects(n->sub);
}

/* --- The subscription ----------------------------------------------------- */

static void sub_error(near_t *n, const char *what, const redisReply *rep) {
  n->sub_errors++;
  char msg[128];
  snprintf(msg, sizeof msg, "near store: %s%s%.*s; near copies are off", what,
           rep != NULL && rep->type == REDIS_REPLY_ERROR ? ": " : "",
           rep != NULL && rep->type == REDIS_REPLY_ERROR
               ? (int)(rep->len > 60 ? 60 : rep->len)
               : 0,
           rep != NULL && rep->type == REDIS_REPLY_ERROR ? rep->str : "");
  seterr(n, msg);
  fprintf(stderr, "tenure: %s\n", msg);
}

static void on_push(void *data, const redisReply *rep) {
  near_t *n = data;
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
      rep->element[0]->type != REDIS_REPLY_STRING)
    return;
  const char *kind = rep->element[0]->str;
  if (strcmp(kind, "subscribe") == 0) {
    n->live = true; /* INV(live): from now on every change is told */
    return;
  }
  if (strcmp(kind, "message") != 0)
    return;
  const redisReply *keys = rep->element[2];
  if (keys->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < keys->elements; i++)
      if (keys->element[i]->type == REDIS_REPLY_STRING)
        drop_key(n, keys->element[i]->str, keys->element[i]->len);
  } else if (keys->type == REDIS_REPLY_STRING) {
    drop_key(n, keys->str, keys->len);
  } else {
    drop_all(n); /* nil: FLUSHALL or FLUSHDB */
  }
}

static void on_tracking(void *data, int err, const redisReply *rep) {
  near_t *n = data;
  if (n->closing || err < 0)
    return; /* the connection went: sub_down deals with it */
  if (rep->type == REDIS_REPLY_ERROR) {
    sub_error(n, "CLIENT TRACKING refused (Redis 6 or later is needed)", rep);
    return;
  }
  if (cache__rconn_subscribe(n->sub, NEAR_CHANNEL, on_push, n) < 0)
    sub_error(n, "cannot subscribe to " NEAR_CHANNEL, NULL);
}

static void send_cmd(near_t *n, int argc, const char *const *argv,
                     cache__rconn_fn fn) {
  size_t len[8];
  for (int i = 0; i < argc; i++)
    len[i] = strlen(argv[i]);
  cache__rcmd_t cmd = {0};
  if (cache__rcmd_add(&cmd, argc, argv, len) < 0 ||
      cache__rconn_send(n->sub, &cmd, false,
                        uv_now(rt_loop_uv(n->base.loop)) + n->timeout_ms, fn,
                        n) < 0)
    sub_error(n, "cannot send to the subscriber connection", NULL);
  cache__rcmd_free(&cmd);
}

static void on_client_id(void *data, int err, const redisReply *rep) {
  near_t *n = data;
  if (n->closing || err < 0)
    return;
  if (rep->type != REDIS_REPLY_INTEGER) {
    sub_error(n, "CLIENT ID refused", rep);
    return;
  }
  char id[32];
  snprintf(id, sizeof id, "%lld", rep->integer);
  const char *argv[8] = {"CLIENT", "TRACKING", "on", "REDIRECT", id, "BCAST"};
  int argc = 6;
  if (n->prefix != NULL) {
    argv[argc++] = "PREFIX";
    argv[argc++] = n->prefix;
  }
  send_cmd(n, argc, argv, on_tracking);
}

/* After each connect of the subscriber: its id, tracking redirected to
 * itself, then the subscription (whose confirmation makes the store live). */
static void sub_ready(cache__rconn_t *c, void *data) {
  near_t *n = data;
  (void)c;
  const char *argv[2] = {"CLIENT", "ID"};
  send_cmd(n, 2, argv, on_client_id);
}

static void sub_down(cache__rconn_t *c, void *data) {
  near_t *n = data;
  (void)c;
  bool was = n->live;
  n->live = false;
  if (was)
    drop_all(n); /* INV(live) */
}

/* --- Opening and closing -------------------------------------------------- */

static void near_close(cache_store_t *st) {
  near_t *n = (near_t *)st;
  if (n->closing)
    return;
  n->closing = true;
  n->live = false;
  cache__rconn_close(n->sub);
  if (n->near != NULL)
    cache_close(n->near);
  n->near = NULL;
  cache_close(n->remote); /* its pending answers reach us from the loop */
  if (n->pending == 0)
    free_near(n);
}

/* Takes the near-* parameters out of the query of URL (after "near+"),
 * leaving the rest in REDIS (a redis:// URL, NUL-terminated). */
static int split_url(const char *url, char *redis, size_t rlen, near_t *n,
                     char *entries, char *bytes, char *err, size_t errlen) {
  const char *rest = url + strlen("near+");
  const char *q = strchr(rest, '?');
  size_t base = q != NULL ? (size_t)(q - rest) : strlen(rest);
  if (base + 1 > rlen)
    goto too_long;
  memcpy(redis, rest, base);
  size_t o = base;
  bool first = true;
  for (const char *a = q != NULL ? q + 1 : NULL; a != NULL && *a;) {
    const char *amp = strchr(a, '&');
    size_t len = amp != NULL ? (size_t)(amp - a) : strlen(a);
    const char *eq = memchr(a, '=', len);
    size_t kl = eq != NULL ? (size_t)(eq - a) : len;
    const char *v = eq != NULL ? eq + 1 : a + len;
    size_t vl = (size_t)(a + len - v);
    if (kl > 5 && memcmp(a, "near-", 5) == 0) {
      uint64_t x = 0;
      /* The near level's bounds go to memory:// as they are (its sizes:
       * 64k, 16m, ...), which checks them. */
      if (kl == 12 && memcmp(a, "near-entries", 12) == 0) {
        if (vl == 0 || vl >= 24)
          goto bad;
        snprintf(entries, 24, "%.*s", (int)vl, v);
      } else if (kl == 10 && memcmp(a, "near-bytes", 10) == 0) {
        if (vl == 0 || vl >= 24)
          goto bad;
        snprintf(bytes, 24, "%.*s", (int)vl, v);
      } else if (kl == 11 && memcmp(a, "near-ttl-ms", 11) == 0) {
        if (cache__url_uint(v, vl, CACHE__REDIS_TIMEOUT_MAX, &x) < 0 ||
            x == 0)
          goto bad;
        n->near_ttl_ms = x;
      } else if (kl == 11 && memcmp(a, "near-prefix", 11) == 0) {
        free(n->prefix);
        n->prefix = cache__url_decode(v, vl);
        if (n->prefix == NULL)
          return -ENOMEM;
      } else {
        snprintf(err, errlen, "near+redis://: unknown parameter %.*s",
                 (int)kl, a);
        return -EINVAL;
      }
    } else {
      if (o + len + 2 > rlen)
        goto too_long;
      redis[o++] = first ? '?' : '&';
      memcpy(redis + o, a, len);
      o += len;
      first = false;
    }
    a = amp != NULL ? amp + 1 : NULL;
    continue;
  bad:
    snprintf(err, errlen, "near+redis://: %.*s is not a positive number",
             (int)len, a);
    return -EINVAL;
  }
  redis[o] = '\0';
  return 0;
too_long:
  snprintf(err, errlen, "near+redis://: URL too long");
  return -EINVAL;
}

static int near_open(rt_loop_t *loop, const char *url, cache_store_t **out,
                     char *err, size_t errlen) {
  near_t *n = calloc(1, sizeof *n);
  if (n == NULL)
    return -ENOMEM;
  n->base.type = &cache_near_type;
  n->base.loop = loop;
  n->near_ttl_ms = NEAR_TTL_MS;
  char entries[24], bytes[24] = "";
  snprintf(entries, sizeof entries, "%u", NEAR_ENTRIES_DEFAULT);
  char redis[1024];
  int e = split_url(url, redis, sizeof redis, n, entries, bytes, err, errlen);
  cache__redis_url_t u = {0};
  if (e == 0)
    e = cache__redis_url_parse(redis, &u, err, errlen);
  if (e < 0) {
    free_near(n);
    return e;
  }
  n->timeout_ms = u.timeout_ms;
  snprintf(n->near_url, sizeof n->near_url, "memory://?max-entries=%s%s%s",
           entries, bytes[0] ? "&max-bytes=" : "", bytes);
  e = cache_open(loop, n->near_url, &n->near, err, errlen);
  if (e == 0 && (e = cache_open(loop, redis, &n->remote, err, errlen)) < 0)
    cache_close(n->near);
  if (e < 0) {
    free(u.password);
    free_near(n);
    return e;
  }
  cache__rconn_config_t cfg = {.host = u.host,
                               .port = u.port,
                               .password = u.password,
                               .timeout_ms = u.timeout_ms,
                               .name = "near store subscriber",
                               .error = n->base.error,
                               .errlen = sizeof n->base.error,
                               .on_down = sub_down,
                               .on_ready = sub_ready,
                               .data = n};
  e = cache__rconn_open(loop, &cfg, &n->sub);
  free(u.password);
  if (e < 0) {
    cache_close(n->near);
    cache_close(n->remote);
    free_near(n);
    return e;
  }
  *out = &n->base;
  return 0;
}

const cache_store_type_t cache_near_type = {
    .scheme = "near+redis",
    .open = near_open,
    .get = near_get,
    .get_json = near_get_json,
    .set = near_set,
    .del = near_del,
    .touch = near_touch,
    .stats = near_stats,
    .close = near_close,
};
