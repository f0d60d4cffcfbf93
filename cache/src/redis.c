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

static void redis_stats(cache_store_t *st, cache_stats_t *out) {
  redis_t *r = (redis_t *)st;
  *out = r->s.st;
  out->reconnects = cache__rconn_reconnects(r->conn);
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
  cache__rstore_unref(&r->s);
}

/* --- Opening -------------------------------------------------------------- */

static int redis_open(rt_loop_t *loop, const char *url, cache_store_t **out,
                      char *err, size_t errlen) {
  const char *p = strstr(url, "://");
  p = p != NULL ? p + 3 : url;
  const char *q = strchr(p, '?');
  const char *end = q != NULL ? q : p + strlen(p);
  char *password = NULL;
  uint64_t port = CACHE__REDIS_PORT, db = 0;
  uint64_t timeout = CACHE__REDIS_TIMEOUT_MS;
  char host[256] = "127.0.0.1";
  int e =
      cache__redis_url_userinfo(&p, end, "redis", url, &password, err, errlen);
  if (e < 0)
    return e;
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
  if (colon != NULL && (cache__url_uint(colon + 1, (size_t)(hend - colon - 1),
                                        65535, &port) < 0 ||
                        port == 0))
    goto bad;
  if (slash != NULL && slash + 1 < end &&
      cache__url_uint(slash + 1, (size_t)(end - slash - 1), 1u << 20, &db) < 0)
    goto bad;
  if (q != NULL && (e = cache__redis_url_query(q + 1, "redis", &password,
                                               &timeout, err, errlen)) < 0) {
    free(password);
    return e;
  }
  redis_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    free(password);
    return -ENOMEM;
  }
  cache__rstore_init(&r->s, &cache_redis_type, loop, "redis store");
  r->s.submit = redis_submit;
  r->s.destroy = redis_destroy;
  r->s.op_size = sizeof(cache__rop_t);
  r->s.refs = 1; /* the store's own, until closed */
  r->timeout_ms = timeout;
  cache__rconn_config_t cfg = {.host = host,
                               .port = (int)port,
                               .password = password,
                               .db = (int)db,
                               .timeout_ms = timeout,
                               .name = r->s.name,
                               .error = r->s.base.error,
                               .errlen = sizeof r->s.base.error};
  e = cache__rconn_open(loop, &cfg, &r->conn);
  free(password);
  if (e < 0) {
    free(r);
    return e;
  }
  *out = &r->s.base;
  return 0;
bad:
  free(password);
  snprintf(err, errlen,
           "redis://: expected redis://[:password@]host[:port]"
           "[/db][?password=P&timeout-ms=N]: %s",
           url);
  return -EINVAL;
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
