/* redis_op.h -- what redis:// and redis-cluster:// share above the
 * connection (redis_conn.h): the store header both start with, a store
 * operation's commands and its answer from a reply, answers from the loop,
 * and the pieces of their URLs.  Internal to cache/.
 *
 * INV(answer): an operation (cache__rop_t) is answered exactly once, by
 * cache__rop_answer (from a loop callback) or cache__rop_answer_later
 * (from the next tick: inside a user's call, or at close), each of which
 * records its latency just before the callback and frees it.
 *
 * INV(sample): at most one stats sample (cache__rsample_t) is in flight
 * (`sampling`); it holds one reference on the store and lives until the
 * last of its requests is answered (redis_conn.h's INV(once), -ECANCELED
 * at close included), then sets the figures only if every request
 * succeeded and the store is not closing.
 */
#ifndef TENURE_CACHE_REDIS_OP_H
#define TENURE_CACHE_REDIS_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <hiredis/hiredis.h>

#include <tenure/cache.h>

#include "cache_internal.h"
#include "redis_conn.h"

#define CACHE__REDIS_PORT 6379
#define CACHE__REDIS_TIMEOUT_MS 1000      /* timeout-ms's default */
#define CACHE__REDIS_TIMEOUT_MAX 86400000 /* timeout-ms's largest */

typedef struct cache__rstore_s cache__rstore_t;
typedef struct cache__rop_s cache__rop_t;

/* The header of a Redis store (it starts with cache_store_t). */
struct cache__rstore_s {
  cache_store_t base;
  rt_runtime_t *rt;
  gc_heap_t *h;
  uv_loop_t *uv;
  const char *name; /* messages start with it: "redis store" */
  cache_stats_t st;
  bool closing;
  /* What keeps the memory: the backend's own references (handles not yet
   * closed), and one per answer queued for the next tick. */
  size_t refs;
  /* The backend's: a new operation made inside the user's call, for KEY
   * (KLEN bytes; only valid during the call).  It sends it, or answers it
   * through cache__rop_answer_later: never cache__rop_answer. */
  void (*submit)(cache__rstore_t *s, cache__rop_t *op, const char *key,
                 size_t klen);
  void (*destroy)(cache__rstore_t *s); /* frees it once REFS is 0 */
  size_t op_size; /* the backend's operation, which starts with rop_t */
  /* Entries and bytes, sampled (cache.h; cache__rsample_*).  The stats
   * call reads them and sets sample_wanted; all else is the loop's. */
  uint64_t sample_entries, sample_bytes; /* the last sample's */
  uint64_t sampled_us;  /* cache__now_us() when it started */
  bool sampled;         /* a sample ever succeeded */
  bool sample_tried;    /* one was ever started */
  bool sample_wanted;   /* the stats were read since one last started */
  bool sampling;        /* one is in flight, INV(sample) */
  uv_timer_t sample_timer; /* unref'd, every CACHE_SAMPLE_MS: a reference */
  cache__rcmd_t sample_cmd[2]; /* DBSIZE, INFO memory */
  /* The backend's: starts a sample (cache__rsample_begin, then
   * cache__rsample_send to each server it asks, then cache__rsample_end),
   * or returns having started none (no server known yet; the wish stays). */
  void (*sample)(cache__rstore_t *s);
};

enum {
  CACHE__ROP_GET,    /* GET key */
  CACHE__ROP_SET,    /* SET key json [PX ttl] */
  CACHE__ROP_DEL,    /* DEL key */
  CACHE__ROP_TOUCH,  /* PEXPIRE key ttl */
  CACHE__ROP_PERSIST, /* PERSIST key, then EXISTS key (the answer) */
  CACHE__ROP_GET_TTL  /* GET and PTTL in one script (near+redis://) */
};

struct cache__rop_s {
  cache__rstore_t *s;
  int kind;
  uint64_t t0; /* cache__now_us() at the call */
  cache_get_fn get;
  cache_done_fn done;
  void *data;
  int64_t *pttl; /* GET_TTL: where the remaining TTL goes */
  cache__rcmd_t cmd; /* what goes on the wire; the backend may free it */
};

/* Fills S's header for TYPE on LOOP. */
void cache__rstore_init(cache__rstore_t *s, const cache_store_type_t *type,
                        rt_loop_t *loop, const char *name);
/* Drops one of S's references (it is destroyed at 0 once closing). */
void cache__rstore_unref(cache__rstore_t *s);
/* A message in S's error, after its name. */
void cache__rstore_error(cache__rstore_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The store type's get/set/del/touch for every Redis backend: each makes an
 * operation and hands it to S's submit. */
void cache__rstore_get(cache_store_t *st, const char *key, size_t klen,
                       cache_get_fn fn, void *data);
/* A get that also learns the entry's remaining TTL: *PTTL is set, before
 * FN runs, to it in ms (-1: no expiry, -2: absent) when the reply carried
 * it, and left as it is otherwise (an error). */
void cache__rstore_get_ttl(cache_store_t *st, const char *key, size_t klen,
                           int64_t *pttl, cache_get_fn fn, void *data);
void cache__rstore_set(cache_store_t *st, const char *key, size_t klen,
                       const rt_value_t *value, uint64_t ttl_ms,
                       cache_done_fn fn, void *data);
void cache__rstore_del(cache_store_t *st, const char *key, size_t klen,
                       cache_done_fn fn, void *data);
void cache__rstore_touch(cache_store_t *st, const char *key, size_t klen,
                         uint64_t ttl_ms, cache_done_fn fn, void *data);

/* Answers OP now, from a loop callback: ERR < 0 (a message is in the
 * store's error), or ERR 0 and the server's REPLY, which is read (an error
 * reply is -EACCES for NOAUTH/WRONGPASS, -EIO otherwise).  GC point (a GET
 * parses its value).  Frees OP. */
void cache__rop_answer(cache__rop_t *op, int err, const redisReply *reply);
/* Answers OP with ERR < 0 from the next tick.  Frees OP then. */
void cache__rop_answer_later(cache__rop_t *op, int err);

/* --- Entries and bytes, sampled -------------------------------------------- */

typedef struct cache__rsample_s cache__rsample_t;

/* Formats S's sample commands and starts its sample timer (S's sample set;
 * the caller counts the timer in REFS).  Returns 0, or -ENOMEM with
 * nothing to undo. */
int cache__rsample_init(cache__rstore_t *s);
/* At close: frees the commands and closes the timer (it drops its
 * reference once closed).  A sample in flight is answered by the
 * connections' close. */
void cache__rsample_close(cache__rstore_t *s);
/* Starts the first sample if none was ever started (when the store first
 * connects). */
void cache__rsample_first(cache__rstore_t *s);
/* A new sample, or NULL (one in flight, closing, out of memory). */
cache__rsample_t *cache__rsample_begin(cache__rstore_t *s);
/* Sends DBSIZE and INFO memory on C (quietly: cache__rconn_send_quiet), to
 * be answered by DEADLINE (uv_now ms).  C NULL (out of memory) or down, or
 * a send refused, fails the sample, without a message (the store's error
 * is left as it is; a request sent may still time out or be lost, and then
 * the connection writes its message as for any request). */
void cache__rsample_send(cache__rsample_t *sm, cache__rconn_t *c,
                         uint64_t deadline);
/* Every server was asked: the sample ends when the last answer comes (or
 * now, if none is awaited).  Not a GC point, and no user callback runs. */
void cache__rsample_end(cache__rsample_t *sm);
/* The stats call's part: entries, bytes and counted_ms_ago into OUT, and a
 * sample wanted at the next tick. */
void cache__rsample_stats(cache__rstore_t *s, cache_stats_t *out);

/* --- URLs ----------------------------------------------------------------- */

/* A percent-decoded, NUL-terminated copy of S (N bytes), or NULL. */
char *cache__url_decode(const char *s, size_t n);
/* S (N digits) as a number at most MAX.  Returns 0 or -EINVAL. */
int cache__url_uint(const char *s, size_t n, uint64_t max, uint64_t *out);
/* Reads "[:password]@" at the start of [*P, END) if there is an '@',
 * advancing *P past it and replacing *PASSWORD.  Returns 0, -EINVAL (with a
 * message for SCHEME in ERR) or -ENOMEM. */
int cache__redis_url_userinfo(const char **p, const char *end,
                              const char *scheme, const char *url,
                              char **password, char *err, size_t errlen);
/* Reads a query (after '?', up to its NUL): password=P replaces *PASSWORD,
 * timeout-ms=N sets *TIMEOUT_MS, and refresh-ms=N (0 or more) sets
 * *REFRESH_MS where REFRESH_MS is not NULL (redis-cluster://; elsewhere it
 * is an unknown parameter).  Returns 0, -EINVAL (with a message for SCHEME
 * in ERR) or -ENOMEM. */
int cache__redis_url_query(const char *q, const char *scheme, char **password,
                           uint64_t *timeout_ms, uint64_t *refresh_ms,
                           char *err, size_t errlen);

/* A redis:// URL, read: redis://[:password@]host[:port][/db][?password=P
 * &timeout-ms=N] (the scheme before "://" is not checked). */
typedef struct cache__redis_url_s {
  char host[256];
  int port, db;
  uint64_t timeout_ms;
  char *password; /* or NULL; the caller frees it */
} cache__redis_url_t;
/* Returns 0, -EINVAL (with a message in ERR) or -ENOMEM. */
int cache__redis_url_parse(const char *url, cache__redis_url_t *out, char *err,
                           size_t errlen);

#endif
