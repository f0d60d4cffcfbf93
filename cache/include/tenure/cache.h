/* cache.h -- tenure's cache layer: one asynchronous store interface with
 * backends chosen by URL.
 *
 *   memory://?max-entries=N&max-bytes=M   a bounded in-heap LRU (default)
 *   redis://[:password@]host[:port][/db][?password=P&timeout-ms=N]
 *                                         a Redis server (hiredis, async)
 *   redis-cluster://[:password@]host[:port][,host[:port]...]
 *                   [?password=P&timeout-ms=N&refresh-ms=N]
 *                                         a Redis Cluster (hiredis, a
 *                                         connection per master, MOVED
 *                                         and ASK followed, the slot map
 *                                         asked again every refresh-ms,
 *                                         default 5000, 0 never)
 *   near+redis://[:password@]host[:port][/db][?password=P&timeout-ms=N
 *                &near-entries=N&near-bytes=M&near-ttl-ms=T&near-prefix=P]
 *                                         two levels: an in-heap LRU of
 *                                         near copies in front of Redis,
 *                                         dropped by Redis's invalidation
 *                                         messages (CLIENT TRACKING BCAST
 *                                         over pub/sub; Redis 6 or later)
 *   memcached://host[:port][,host[:port]...][?timeout-ms=N&retry-s=N]
 *                                         a pool of memcached servers
 *                                         (libmemcached's ketama ring;
 *                                         one pipelined connection per
 *                                         server on the loop, memcached's
 *                                         meta protocol, 1.6 or later)
 *
 * A store is a table of callbacks (cache_store_type_t, as Redis's dictType
 * is) behind a common header.  Every operation answers through an
 * error-first callback run from the event loop, never from inside the call
 * (as node's stores defer theirs): ERR is 0 or a negative errno code, and
 * cache_store_error gives a message.  Values are runtime values; the store
 * keeps its own copy (the memory store a JSON text on the heap, remote
 * stores the same text on the wire), so a value read back is a new value,
 * never an alias of one a request is changing.
 *
 * GC safety: a value passed to cache_set is read (serialized) before the
 * call returns; a value handed to a callback is a handle valid until the
 * callback returns.
 */
#ifndef TENURE_CACHE_H
#define TENURE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tenure/rt.h>
#include <tenure/rt_loop.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CACHE_EXTERN RT_EXTERN

typedef struct cache_store_s cache_store_t;

/* GET's answer: VALUE is a handle to the value, or NULL on a miss (ERR 0)
 * or an error. */
typedef void (*cache_get_fn)(cache_store_t *st, int err, rt_value_t *value,
                             void *data);
typedef void (*cache_done_fn)(cache_store_t *st, int err, void *data);
/* A get's answer as JSON text (what the store holds, as rt_json_stringify
 * writes it): JSON (LEN bytes, not NUL-terminated) is valid for the call
 * only; NULL on a miss (ERR 0) or an error. */
typedef void (*cache_get_json_fn)(cache_store_t *st, int err,
                                  const char *json, size_t len, void *data);

typedef struct cache_stats_s {
  uint64_t hits, misses, sets, deletes;
  uint64_t evictions;   /* entries dropped to stay within the bounds */
  uint64_t expirations; /* entries dropped because their TTL passed */
  uint64_t errors, reconnects;
  /* What the store holds, as it counts it (see "Entries and bytes" below):
   * counted now for memory:// (and near+redis://'s near level); the last
   * sample, counted_ms_ago old, for the remote stores. */
  uint64_t entries;
  uint64_t bytes;
  uint64_t max_entries, max_bytes; /* bounds; 0 none */
  /* Latency from an operation's call to its answer, errors included, of
   * one operation in 8, over about the last CACHE_LATENCY_WINDOW of those (the counts are halved
   * each time that many more have been recorded).  Percentiles are the
   * upper edge of a log-linear bucket: at most 1/8 above the true value.
   * 0 when no operation was recorded. */
  uint64_t latency_samples;
  uint64_t latency_p50_us, latency_p99_us;
  /* near+redis://: the hits answered from this process's near copies
   * (counted in hits too); 0 for other stores. */
  uint64_t near_hits;
  /* How old entries and bytes are, in ms: 0 when counted now
   * (memory://), the age of the last sample that succeeded for the remote
   * stores, UINT64_MAX when none has (both are then 0).  0 for
   * near+redis://, whose entries and bytes are its near level's, counted
   * now (see below).  Appended last, so the struct only grows. */
  uint64_t counted_ms_ago;
} cache_stats_t;

/* Entries and bytes.  memory:// counts them as they change.  A remote
 * store cannot count them inside the (synchronous) stats call, so it
 * reports a sample: the figures the servers gave when last asked.
 *
 *   redis://          entries: DBSIZE of the URL's db; bytes: used_memory
 *                     from INFO memory, the whole server's memory as Redis
 *                     counts it (all dbs, overhead included, shared with
 *                     every other client of that server), not this
 *                     store's alone.
 *   redis-cluster://  the sums of DBSIZE and used_memory over the masters
 *                     of the slot map.
 *   memcached://      the sums of curr_items and bytes (the `stats`
 *                     command) over the pool's servers in the ring: a
 *                     server out of it (taken out as down) is left out;
 *                     one in it that does not answer fails the sample.
 *   near+redis://     its near level's, counted now (what this process
 *                     holds), not Redis's; counted_ms_ago 0.
 *
 * When: a sample is taken once the store first connects; after that,
 * reading the stats asks for one, and the store starts it from the loop at
 * its next CACHE_SAMPLE_MS tick (an unref'd timer) unless one is in flight;
 * its figures serve the reads after it.  So a store read now and then
 * shows figures at most about 2 * CACHE_SAMPLE_MS old, and one never read
 * sends nothing after its first sample.  A sample's age is counted from
 * when it started (its figures are no older).  A sample that fails (a
 * server down, no answer within timeout-ms, an error reply) leaves the
 * previous figures and their age, and is not an operation: it counts in
 * no counter (errors included) and answers no one.  A Redis sample never
 * keeps the loop alive (its requests are quiet); a memcached one holds it
 * while its work item runs, as an operation does (within timeout-ms per
 * server).  Close cancels one in flight like any unanswered operation.
 * The stats call itself only reads (and notes the wish): it starts no I/O. */
#define CACHE_SAMPLE_MS 1000u

#define CACHE_LATENCY_WINDOW 65536u
/* The histogram's buckets: 8 per power of two of microseconds, from 0 to
 * 2^40 us. */
#define CACHE_LATENCY_BUCKETS 312u

/* A backend.  Every function pointer is set but get_json. */
typedef struct cache_store_type_s {
  const char *scheme; /* "memory", ... */
  /* Opens a store for URL on LOOP.  Returns 0 or a negative code with a
   * message in ERR (ERRLEN bytes). */
  int (*open)(rt_loop_t *loop, const char *url, cache_store_t **out,
              char *err, size_t errlen);
  void (*get)(cache_store_t *st, const char *key, size_t klen,
              cache_get_fn fn, void *data);
  /* TTL_MS 0: no expiry. */
  void (*set)(cache_store_t *st, const char *key, size_t klen,
              const rt_value_t *value, uint64_t ttl_ms, cache_done_fn fn,
              void *data);
  void (*del)(cache_store_t *st, const char *key, size_t klen,
              cache_done_fn fn, void *data);
  /* Sets a new TTL on an entry (-ENOENT when absent). */
  void (*touch)(cache_store_t *st, const char *key, size_t klen,
                uint64_t ttl_ms, cache_done_fn fn, void *data);
  void (*stats)(cache_store_t *st, cache_stats_t *out);
  /* Frees the store; operations still pending get -ECANCELED first. */
  void (*close)(cache_store_t *st);
  /* Optional (NULL: cache_get_json gets the value and writes it): a get
   * answered with the stored text itself, for a store whose text is valid
   * JSON by construction (memory:// holds only what it wrote; near+redis://
   * answers its near copies with it). */
  void (*get_json)(cache_store_t *st, const char *key, size_t klen,
                   cache_get_json_fn fn, void *data);
} cache_store_type_t;

/* The header every store starts with. */
struct cache_store_s {
  const cache_store_type_t *type; /* read-only */
  rt_loop_t *loop;                /* read-only */
  char error[128];                /* the last error's message */
  struct cache_flight_s *flights; /* private: cache_get_or_compute's */
  uint32_t latency[CACHE_LATENCY_BUCKETS]; /* private: the histogram */
  uint32_t latency_n;                      /* private: its total */
  uint32_t latency_tick;                   /* private: operations started */
};

/* Opens the store URL names (NULL or "" is memory://).  Returns 0, -EINVAL
 * (a bad URL or an unknown scheme, said in ERR), or the backend's error. */
CACHE_EXTERN int cache_open(rt_loop_t *loop, const char *url,
                            cache_store_t **out, char *err, size_t errlen);
CACHE_EXTERN void cache_close(cache_store_t *st);

static inline void cache_get(cache_store_t *st, const char *key, size_t klen,
                             cache_get_fn fn, void *data) {
  st->type->get(st, key, klen, fn, data);
}
static inline void cache_set(cache_store_t *st, const char *key, size_t klen,
                             const rt_value_t *value, uint64_t ttl_ms,
                             cache_done_fn fn, void *data) {
  st->type->set(st, key, klen, value, ttl_ms, fn, data);
}
static inline void cache_del(cache_store_t *st, const char *key, size_t klen,
                             cache_done_fn fn, void *data) {
  st->type->del(st, key, klen, fn, data);
}
static inline void cache_touch(cache_store_t *st, const char *key,
                               size_t klen, uint64_t ttl_ms, cache_done_fn fn,
                               void *data) {
  st->type->touch(st, key, klen, ttl_ms, fn, data);
}
/* GC point.  KEY's value as JSON text, for a caller that sends it on as
 * it is (a response body): no value is built on the heap when the store
 * answers with its text (get_json), else the value is got and written. */
CACHE_EXTERN void cache_get_json(cache_store_t *st, const char *key,
                                 size_t klen, cache_get_json_fn fn,
                                 void *data);
/* The backend's counters, with the latency percentiles filled in. */
CACHE_EXTERN void cache_stats(cache_store_t *st, cache_stats_t *out);
/* The message of the last error (empty when none). */
static inline const char *cache_store_error(const cache_store_t *st) {
  return st->error;
}

/* --- Computing on a miss, once (single-flight) ------------------------------ */

/* What a compute function answers through: call cache_compute_done once,
 * now or from a later callback, with 0 and the value or an error. */
typedef struct cache_flight_s cache_flight_t;
typedef void (*cache_compute_fn)(cache_flight_t *fl, const char *key,
                                 size_t klen, void *data);
/* HIT: the value came from the store (else it was computed, or waited
 * for). */
typedef void (*cache_value_fn)(cache_store_t *st, int err, rt_value_t *value,
                               bool hit, void *data);

/* GC point.  The value of KEY: from the store, or computed by COMPUTE
 * (CDATA) and stored with TTL_MS.  Callers for the same key that come
 * while one is looked up or computed share it: the store is asked once,
 * COMPUTE (the first caller's) runs at most once, and all of them get its
 * result; an error is passed to all of them and not stored.  FN is called
 * from the loop. */
CACHE_EXTERN void cache_get_or_compute(cache_store_t *st, const char *key,
                                       size_t klen, uint64_t ttl_ms,
                                       cache_compute_fn compute, void *cdata,
                                       cache_value_fn fn, void *data);
/* cache_get_or_compute's answer as JSON text (valid for the call only). */
typedef void (*cache_json_fn)(cache_store_t *st, int err, const char *json,
                              size_t len, bool hit, void *data);
/* GC point.  cache_get_or_compute, answered as JSON text: a hit from a
 * store with get_json builds no value; a computed value is written once
 * for every such waiter.  Callers of both forms for one key share the
 * flight. */
CACHE_EXTERN void cache_get_or_compute_json(cache_store_t *st,
                                            const char *key, size_t klen,
                                            uint64_t ttl_ms,
                                            cache_compute_fn compute,
                                            void *cdata, cache_json_fn fn,
                                            void *data);
/* Ends a computation: ERR 0 and *VALUE (a handle), or an error.  GC
 * point (the waiting callers run). */
CACHE_EXTERN void cache_compute_done(cache_flight_t *fl, int err,
                                     const rt_value_t *value);

/* The memory backend (memory://). */
CACHE_EXTERN extern const cache_store_type_t cache_memory_type;
/* The Redis backend (redis://, hiredis on the loop's libuv). */
CACHE_EXTERN extern const cache_store_type_t cache_redis_type;
/* The Redis Cluster backend (redis-cluster://, the same connections, one
 * per node). */
CACHE_EXTERN extern const cache_store_type_t cache_redis_cluster_type;
/* The two-level backend (near+redis://: memory:// in front of redis://). */
CACHE_EXTERN extern const cache_store_type_t cache_near_type;
/* The memcached backend (memcached://: meta protocol on the loop,
 * libmemcached's ketama ring). */
CACHE_EXTERN extern const cache_store_type_t cache_memcached_type;

#ifdef __cplusplus
}
#endif
#endif /* TENURE_CACHE_H */
