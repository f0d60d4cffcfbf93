/* redis.c -- redis://host:port/db, a Redis server through one connection
 * (redis_conn.h: hiredis's asynchronous API on the loop's libuv).
 *
 *   redis://[:password@]host[:port][/db][?password=P&timeout-ms=N]
 *
 * Commands are pipelined on the one connection, which sends AUTH (when a
 * password is given) and SELECT (when db is not 0) first after each
 * connect.  Every operation carries a deadline timeout-ms (default 1000)
 * after its call.
 *
 * entries and bytes are a sample (cache.h): DBSIZE and INFO memory on the
 * same connection, quietly, after the first connect and at the sample
 * timer's tick after a stats read (redis_op.h, INV(sample)).
 *
 * INV(once): every operation is answered exactly once (redis_op.h): by its
 * request's answer (redis_conn.h: the reply, -ETIMEDOUT, -ECONNRESET,
 * -ENOTCONN, -EACCES, -EINVAL), from the next tick when the connection
 * refuses it at once (down: -ENOTCONN), or from the next tick at close
 * (-ECANCELED).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/cache.h>

#include "redis_conn.h"
#include "redis_op.h"

typedef struct redis_s {
  cache__rstore_t s;
  cache__rconn_t *conn;
  uint64_t timeout_ms;
} redis_t;

/* --- Operations ----------------------------------------------------------- */

static void on_answer(void *data, int err, const redisReply *reply) {
  cache__rop_t *op = data;
  if (op->s->closing) /* from inside cache_close */
    cache__rop_answer_later(op, err);
  else
    cache__rop_answer(op, err, reply);
}

static void redis_submit(cache__rstore_t *s, cache__rop_t *op, const char *key,
                         size_t klen) {
  redis_t *r = (redis_t *)s;
  (void)key;
  (void)klen;
  int err = cache__rconn_send(r->conn, &op->cmd, false,
                              uv_now(s->uv) + r->timeout_ms, on_answer, op);
  if (err < 0) {
    cache__rop_answer_later(op, err); /* the connection said why */
    return;
  }
  cache__rcmd_free(&op->cmd); /* sent or copied: never needed again */
}

/* --- Entries and bytes --------------------------------------------------- */

static void redis_sample(cache__rstore_t *s) {
  redis_t *r = (redis_t *)s;
  if (cache__rconn_state(r->conn) == CACHE__RCONN_DOWN)
    return; /* the wish stays: asked again once connected */
  cache__rsample_t *sm = cache__rsample_begin(s);
  if (sm == NULL)
    return;
  cache__rsample_send(sm, r->conn, uv_now(s->uv) + r->timeout_ms);
  cache__rsample_end(sm);
}

/* The handshake succeeded: the first sample goes ahead of what waited. */
static void on_ready(cache__rconn_t *c, void *data) {
  (void)c;
  redis_t *r = data;
  if (!r->s.sample_tried || r->s.sample_wanted)
    redis_sample(&r->s);
}

static void redis_stats(cache_store_t *st, cache_stats_t *out) {
  redis_t *r = (redis_t *)st;
  *out = r->s.st;
  out->reconnects = cache__rconn_reconnects(r->conn);
  cache__rsample_stats(&r->s, out);
}

static void redis_destroy(cache__rstore_t *s) {
  free(s);
}

static void redis_close(cache_store_t *st) {
  redis_t *r = (redis_t *)st;
  if (r->s.closing)
    return;
  r->s.closing = true;
  cache__rstore_error(&r->s, "closed");
  /* Every unanswered operation gets -ECANCELED from the loop (on_answer,
   * called inside this). */
  cache__rconn_close(r->conn);
  cache__rsample_close(&r->s);
  cache__rstore_unref(&r->s);
}

/* --- Opening -------------------------------------------------------------- */

static int redis_open(rt_loop_t *loop, const char *url, cache_store_t **out,
                      char *err, size_t errlen) {
  cache__redis_url_t u;
  int e = cache__redis_url_parse(url, &u, err, errlen);
  if (e < 0)
    return e;
  redis_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    free(u.password);
    return -ENOMEM;
  }
  cache__rstore_init(&r->s, &cache_redis_type, loop, "redis store");
  r->s.submit = redis_submit;
  r->s.destroy = redis_destroy;
  r->s.op_size = sizeof(cache__rop_t);
  r->s.sample = redis_sample;
  r->s.refs = 2; /* the store's own, until closed, and the sample timer */
  r->timeout_ms = u.timeout_ms;
  cache__rconn_config_t cfg = {.host = u.host,
                               .port = u.port,
                               .password = u.password,
                               .db = u.db,
                               .timeout_ms = u.timeout_ms,
                               .name = r->s.name,
                               .error = r->s.base.error,
                               .errlen = sizeof r->s.base.error,
                               .on_ready = on_ready,
                               .data = r};
  e = cache__rconn_open(loop, &cfg, &r->conn);
  free(u.password);
  if (e < 0) {
    free(r);
    return e;
  }
  if (cache__rsample_init(&r->s) < 0) {
    cache__rconn_close(r->conn); /* no callback of its runs again */
    free(r);
    return -ENOMEM;
  }
  *out = &r->s.base;
  return 0;
}

const cache_store_type_t cache_redis_type = {
    .scheme = "redis",
    .open = redis_open,
    .get = cache__rstore_get,
    .set = cache__rstore_set,
    .del = cache__rstore_del,
    .touch = cache__rstore_touch,
    .stats = redis_stats,
    .close = redis_close,
};
