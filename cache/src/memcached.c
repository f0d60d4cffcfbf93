/* memcached.c -- memcached://host:port,host:port, a pool of memcached
 * servers through libmemcached, whose calls run on libuv's thread pool.
 *
 *   memcached://host[:port][,host[:port]...][?timeout-ms=N&retry-s=N
 *                                             &clients=N]
 *
 * Keys go to servers by consistent hashing (libketama's: MD5, 160 points
 * per server), so every process given the same servers, in any order, puts
 * a key on the same one.  The text protocol: libmemcached 1.1 speaks text
 * and binary, which measured the same, and memcached 1.6 deprecates binary
 * (see cache/DESIGN.md).
 *
 * Threads.  libmemcached's calls wait for the reply inside the call (its
 * NO_BLOCK behaviour only sets SO_LINGER; the call still polls), so each
 * operation runs in uv_queue_work on one of `clients` memcached_st clients,
 * clones of one template, handed out by the loop thread.  (Not
 * libmemcachedutil's memcached_pool: it allocates with C++ new, which the
 * jemalloc that libtenure links interposes, and frees with glibc's free.)
 * Everything that touches the heap or the
 * store's state happens on the loop thread: a value is serialized before
 * its operation is queued, and a reply is parsed, counted and answered in
 * the after-work callback.  A worker reads its op's input, writes its op's
 * output and uses its client; of the store it reads only what open wrote
 * and nothing changes after (the server list).
 *
 * INV(slots): at most `clients` work items are started (queued to libuv
 * and not yet back through the after-work callback), each holding one
 * client (its slot), so the store never holds more of libuv's thread pool
 * than that.  The other ops wait in the store's own queue.
 * INV(order): the unanswered ops form one list in the order they were made.
 * Ops are started in that order, so the ones not started yet are a suffix
 * of it, beginning at `waiting`.  All have the same timeout: the list is in
 * deadline order too, and the timer only looks at its head.
 * INV(key order): an op is not started while a started one on the same key
 * is still running, unless both are gets; so ops on a key take effect in
 * the order they were made, as on one connection.  (The queue stays FIFO:
 * ops behind a held one wait too.)
 *
 * Ops start after the callback that made them (a next tick), and gets next
 * to each other in the queue go out together: one work item, one
 * memcached_mget (up to BATCH_MAX keys), so a burst of reads costs a round
 * trip per server, not per key.
 * INV(once): every op is answered exactly once, from the loop: by its
 * worker's result, by its deadline (-ETIMEDOUT; a later result is dropped)
 * or by close (-ECANCELED).  A started op's memory lives until its
 * after-work callback has run, whichever of these came first.
 *
 * A server that is down leaves the ring: libmemcached's REMOVE_FAILED_SERVERS
 * with a failure limit of 1 takes it out after one refused (or timed out)
 * connect, and RETRY_TIMEOUT and DEAD_TIMEOUT (retry-s) bring it back to be
 * tried again.  Each client keeps its own ring, so each learns
 * on its own.  A server that accepts connections but does not answer
 * (paused, swapping, wedged) never fails a connect, so the store takes it
 * out itself: after TIMEOUT_LIMIT work items in a row in which it timed out,
 * for retry-s, unless it is the last server in the ring (out_until, on the
 * loop).  Each work item carries the set of servers out (out_mask) and its
 * worker rebuilds its client's ring when that set changed (INV(ring): a
 * client's ring is ring_out[slot]'s complement, touched only by the worker
 * that holds the slot).  Back in, one more timeout takes it out again.  An attempt that failed only because the ring was about to
 * change is retried (see work()), so once the ring has moved, the key's
 * new owner answers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <libmemcached/memcached.h>
#include <openssl/evp.h>

#include <tenure/cache.h>

#include "cache_internal.h"

#define DEFAULT_PORT 11211
#define DEFAULT_TIMEOUT_MS 1000
#define MAX_TIMEOUT_MS 86400000u
#define DEFAULT_RETRY_S 2 /* a server out of the ring is tried again after */
#define MAX_RETRY_S 86400u
/* Without clients=N, half of libuv's thread pool (UV_THREADPOOL_SIZE, read
 * as libuv reads it: 4 when unset or 0, at most 1024), so that a paused
 * server, which holds a client per work item for the whole timeout, leaves
 * the other half to the process's file system and DNS work. */
#define UV_POOL_DEFAULT 4
#define UV_POOL_MAX 1024
#define MAX_CLIENTS 64
#define MAX_SERVERS 64 /* one bit each in an op's `failed` */
#define HOST_MAX 255
/* memcached's key limit (KEY_MAX_LENGTH). */
#define KEY_MAX 250
/* A key memcached cannot take as it is is sent as this prefix and the
 * SHA-256 of the key in hex. */
#define HASHED_PREFIX "~h:"
#define HASHED_PREFIX_LEN 3
#define SHA256_HEX 64
/* memcached reads an expiration above 30 days as a Unix time. */
#define MAX_RELATIVE_S (30u * 24 * 3600)
/* The text protocol parses expirations as a signed 32-bit number. */
#define MAX_EXPIRATION 2147483647
/* Connect failures before a server leaves the ring (libmemcached's
 * SERVER_FAILURE_LIMIT; it counts only connect failures over TCP). */
#define FAILURE_LIMIT 1
/* Work items in a row in which a server timed out before the store takes
 * it out of the ring (a connect that works and replies that never come). */
#define TIMEOUT_LIMIT 2
/* Attempts per operation.  When a server dies under load an op can see:
 * its connection reset, then closed (1, 2), the reconnect refused (3), the
 * ring rebuilt without that server (4), the key's new owner (5); one to
 * spare.  Only failures that come at once are retried, never a timeout. */
#define MAX_ATTEMPTS 6
/* Gets sent in one memcached_mget, at most. */
#define BATCH_MAX 256

/* OP_STATS: a sample of entries and bytes (cache.h), queued and run as an
 * op that answers no one (see "Entries and bytes" below). */
enum { OP_GET, OP_SET, OP_DEL, OP_TOUCH, OP_STATS };
static const char *const op_names[] = {"get", "set", "del", "touch", "stats"};

typedef struct mc_s mc_t;

typedef struct server_s {
  char host[HOST_MAX + 1];
  int port;
} server_t;

typedef struct op_s {
  uv_work_t req; /* the work item's, in its first op; req.data is the op */
  struct op_s *prev, *next; /* the unanswered list, while unanswered */
  struct op_s *lead;        /* the first op of its work item, once started */
  struct op_s *batch;       /* the next op of the same work item, or NULL */
  unsigned slot;            /* the work item's client (in its first op) */
  mc_t *m;
  int kind;
  bool started;      /* handed to uv_queue_work */
  bool answered;     /* by the deadline or close: the result is dropped */
  uint64_t t0;       /* cache__latency_start() at the call (0: not timed) */
  uint64_t deadline; /* uv_now ms */
  cache_get_fn get;
  cache_done_fn done;
  void *data;
  /* The worker's input (written before the op starts). */
  memcached_st *mc; /* the work item's client */
  time_t expiration;
  char *json; /* set's text */
  size_t jlen, klen;
  char key[KEY_MAX + 1];
  /* The worker's output (read after it is back). */
  memcached_return_t rc;
  int sys_errno;   /* libmemcached's errno for RC, or 0 */
  int server;      /* the last attempt's server (an index), or -1 */
  uint64_t failed; /* servers an attempt could not reach, a bit each */
  uint64_t out_mask; /* (lead) servers out of the ring for this item */
  bool timed_out;    /* the timeout was the server's: it is op->server's */
  char *value;     /* get's text, from libmemcached's malloc */
  size_t vlen;
  uint64_t entries, bytes; /* stats: the sums */
  uint64_t sampled_us;     /* stats: cache__now_us() when it began */
} op_t;

struct mc_s {
  cache_store_t base;
  rt_runtime_t *rt;
  gc_heap_t *h;
  uv_loop_t *uv;
  /* Written by open, then only read, by the workers too. */
  server_t *servers;
  size_t nservers;
  uint64_t timeout_ms, retry_s;
  unsigned clients;
  /* The loop thread's alone. */
  memcached_st *master; /* the clients' template, never connected */
  memcached_st *client[MAX_CLIENTS];
  op_t *running[MAX_CLIENTS]; /* the work item each client is on, or NULL */
  op_t *head, *tail;          /* unanswered ops, INV(order) */
  op_t *waiting;              /* the first of them not started */
  unsigned started;           /* work items, INV(slots): <= clients */
  size_t refs;                /* the timer, work items, queued callbacks */
  bool closing;
  bool start_queued;      /* run_start is queued (a next tick) */
  bool down[MAX_SERVERS]; /* the last attempt on it could not reach it */
  unsigned timeouts[MAX_SERVERS]; /* work items in a row it timed out in */
  uint64_t out_until[MAX_SERVERS]; /* uv_now ms it is out until, or 0 */
  uint64_t ring_out[MAX_CLIENTS];  /* each client's servers out, INV(ring) */
  uv_timer_t deadline;    /* armed while ops are unanswered */
  uv_work_t destroy;      /* frees the clients off the loop */
  cache_stats_t st;
  /* Entries and bytes, sampled.  The stats call reads them and sets
   * sample_wanted; all else is the loop's.  INV(sample): at most one
   * OP_STATS op exists (`sampling`, cleared when it is freed). */
  uint64_t sample_entries, sample_bytes, sampled_us;
  bool sampled, sample_tried, sample_wanted, sampling;
  uv_timer_t sample_timer; /* unref'd, every CACHE_SAMPLE_MS */
};

static void start_waiting(mc_t *m);
static void sample_start(mc_t *m);
static int make_client(const mc_t *m, uint64_t out, memcached_st **res,
                       char *err, size_t errlen);

/* --- Lifetime ------------------------------------------------------------- */

static void free_store(mc_t *m) {
  free(m->servers);
  free(m);
}

/* Freeing the clients closes their sockets (a "quit" is written first),
 * so it is done off the loop too. */
static void destroy_work(uv_work_t *req) {
  mc_t *m = req->data;
  for (unsigned i = 0; i < m->clients; i++)
    memcached_free(m->client[i]); /* NULL: nothing */
  memcached_free(m->master);
}

static void destroy_done(uv_work_t *req, int status) {
  (void)status;
  free_store(req->data);
}

static void unref_store(mc_t *m) {
  if (--m->refs != 0 || !m->closing)
    return;
  m->destroy.data = m;
  if (uv_queue_work(m->uv, &m->destroy, destroy_work, destroy_done) != 0) {
    destroy_work(&m->destroy);
    free_store(m);
  }
}

static void on_timer_closed(uv_handle_t *hd) {
  unref_store(hd->data);
}

static void free_op(op_t *op) {
  if (op->kind == OP_STATS)
    op->m->sampling = false; /* INV(sample) */
  free(op->json);
  free(op->value);
  free(op);
}

/* --- Answers -------------------------------------------------------------- */

static void unlink_op(mc_t *m, op_t *op) {
  if (m->waiting == op)
    m->waiting = op->next;
  if (op->prev != NULL)
    op->prev->next = op->next;
  else
    m->head = op->next;
  if (op->next != NULL)
    op->next->prev = op->prev;
  else
    m->tail = op->prev;
  op->prev = op->next = NULL;
  if (m->head == NULL)
    uv_timer_stop(&m->deadline); /* nothing to wait for: let the loop end */
}

static void call(mc_t *m, cache_get_fn get, cache_done_fn done, void *data,
                 int err) {
  if (get != NULL)
    get(&m->base, err, NULL, data);
  else if (done != NULL)
    done(&m->base, err, data);
}

typedef struct later_s {
  mc_t *m;
  int err;
  cache_get_fn get;
  cache_done_fn done;
  void *data;
  uint64_t t0;
} later_t;

static void run_later(rt_loop_t *loop, void *data, rt_value_t *args,
                      size_t nargs) {
  later_t *l = data;
  mc_t *m = l->m;
  (void)loop;
  (void)args;
  (void)nargs;
  cache__latency_record(&m->base, l->t0);
  call(m, l->get, l->done, l->data, l->err);
  free(l);
  unref_store(m);
}

/* An error answered from the loop (never from inside the call). */
static void answer_later(mc_t *m, int err, cache_get_fn get, cache_done_fn done,
                         void *data, uint64_t t0) {
  m->st.errors++;
  later_t *l = malloc(sizeof *l);
  if (l != NULL) {
    *l = (later_t){m, err, get, done, data, t0};
    if (rt_next_tick(m->base.loop, run_later, l, NULL, 0) == 0) {
      m->refs++;
      return;
    }
    free(l);
  }
  /* Out of memory for the answer itself: answer now rather than never. */
  call(m, get, done, data, -ENOMEM);
}

/* --- The deadline timer --------------------------------------------------- */

static void on_deadline(uv_timer_t *t);

static void arm(mc_t *m) {
  if (m->closing || m->head == NULL)
    return;
  uint64_t now = uv_now(m->uv);
  uint64_t d = m->head->deadline > now ? m->head->deadline - now : 0;
  uv_timer_start(&m->deadline, on_deadline, d, 0);
}

static void on_deadline(uv_timer_t *t) {
  mc_t *m = t->data;
  rt_loop_t *loop = m->base.loop;
  uint64_t now = uv_now(m->uv);
  bool any = false;
  m->refs++; /* a callback may close the store */
  while (!m->closing && m->head != NULL && m->head->deadline <= now) {
    op_t *op = m->head;
    op->answered = true;
    unlink_op(m, op);
    if (op->kind == OP_STATS) { /* a failed sample: no error, no one told */
      if (!op->started)
        free_op(op);
      continue;
    }
    m->st.errors++;
    snprintf(m->base.error, sizeof m->base.error,
             "memcached store: %s: no answer within %llu ms%s",
             op_names[op->kind], (unsigned long long)m->timeout_ms,
             op->started ? "" : " (waiting for a free client)");
    cache__latency_record(&m->base, op->t0);
    call(m, op->get, op->done, op->data, -ETIMEDOUT);
    if (!op->started)
      free_op(op); /* else its after-work callback frees it */
    any = true;
  }
  arm(m);
  unref_store(m);
  if (any)
    rt_loop_after_callback(loop);
}

/* --- Workers -------------------------------------------------------------- */

/* Results that say the server could not be reached or did not answer. */
static bool unreachable(memcached_return_t rc) {
  switch (rc) {
  case MEMCACHED_CONNECTION_FAILURE:
  case MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE:
  case MEMCACHED_HOST_LOOKUP_FAILURE:
  case MEMCACHED_WRITE_FAILURE:
  case MEMCACHED_READ_FAILURE:
  case MEMCACHED_UNKNOWN_READ_FAILURE:
  case MEMCACHED_SERVER_MARKED_DEAD:
  case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
  case MEMCACHED_TIMEOUT:
  case MEMCACHED_ERRNO:
    return true;
  default:
    return false;
  }
}

/* Results after which another attempt can reach a server that works: the
 * connection was found closed (a restarted server: the retry reconnects),
 * the reconnect was refused (libmemcached has counted the failure), or the
 * server was just taken out of the ring (the key has a new owner).  A
 * timeout is not retried: it would double the wait. */
static bool worth_retrying(memcached_return_t rc) {
  switch (rc) {
  case MEMCACHED_CONNECTION_FAILURE:
  case MEMCACHED_WRITE_FAILURE:
  case MEMCACHED_READ_FAILURE:
  case MEMCACHED_UNKNOWN_READ_FAILURE:
  case MEMCACHED_SERVER_MARKED_DEAD:
    return true;
  default:
    return false;
  }
}

static int server_index(const mc_t *m, const memcached_instance_st *in) {
  const char *name = memcached_server_name(in);
  int port = memcached_server_port(in);
  for (size_t i = 0; i < m->nservers; i++)
    if (m->servers[i].port == port && name != NULL &&
        strcmp(m->servers[i].host, name) == 0)
      return (int)i;
  return -1;
}

static const memcached_instance_st *server_of(memcached_st *mc,
                                              const op_t *op) {
  memcached_return_t krc;
  return memcached_server_by_key(mc, op->key, op->klen, &krc);
}

static memcached_return_t attempt(memcached_st *mc, op_t *op) {
  memcached_return_t rc = MEMCACHED_SUCCESS;
  uint32_t flags;
  switch (op->kind) {
  case OP_GET:
    free(op->value);
    op->value = memcached_get(mc, op->key, op->klen, &op->vlen, &flags, &rc);
    return rc;
  case OP_SET:
    return memcached_set(mc, op->key, op->klen, op->json, op->jlen,
                         op->expiration, 0);
  case OP_DEL:
    return memcached_delete(mc, op->key, op->klen, 0);
  default:
    return memcached_touch(mc, op->key, op->klen, op->expiration);
  }
}

/* After a timeout (or a reply not understood) a connection may still owe
 * replies, which the client's next operation would read as its own: the
 * client's connections are dropped. */
static void drop_if_out_of_step(memcached_st *mc, memcached_return_t rc) {
  if (rc == MEMCACHED_TIMEOUT || rc == MEMCACHED_PROTOCOL_ERROR ||
      rc == MEMCACHED_UNKNOWN_READ_FAILURE)
    memcached_quit(mc);
}

/* One op, retried as worth_retrying says. */
static void run_one(memcached_st *mc, op_t *op) {
  memcached_return_t rc = MEMCACHED_SUCCESS;
  for (int i = 0; i < MAX_ATTEMPTS; i++) {
    /* The ring as the attempt will see it (a server whose retry time has
     * come goes back in first), to know which server it goes to. */
    memcached_autoeject(mc);
    const memcached_instance_st *in = server_of(mc, op);
    op->server = in != NULL ? server_index(op->m, in) : -1;
    rc = attempt(mc, op);
    op->sys_errno = memcached_last_error_errno(mc);
    if (unreachable(rc) && op->server >= 0)
      op->failed |= (uint64_t)1 << op->server;
    if (!worth_retrying(rc))
      break;
  }
  op->timed_out = rc == MEMCACHED_TIMEOUT && op->server >= 0;
  drop_if_out_of_step(mc, rc);
  op->rc = rc;
}

/* The gets of a work item (LEAD and its batch) in one memcached_mget.  A
 * key mget does not bring back is a miss only if nothing failed: mget
 * skips a server it cannot reach without saying so in its result, but the
 * failure is in the client's last error.  Then (or after a read that
 * failed) the gets not answered run one by one, with their retries; after a
 * timeout they time out. */
static void run_batch(memcached_st *mc, op_t *lead) {
  const char *keys[BATCH_MAX];
  size_t lens[BATCH_MAX];
  size_t n = 0;
  memcached_autoeject(mc);
  for (op_t *op = lead; op != NULL; op = op->batch) {
    keys[n] = op->key;
    lens[n++] = op->klen;
    const memcached_instance_st *in = server_of(mc, op);
    op->server = in != NULL ? server_index(op->m, in) : -1;
  }
  memcached_return_t rc = memcached_mget(mc, keys, lens, n);
  if (rc == MEMCACHED_SUCCESS)
    rc = memcached_last_error(mc);
  /* Not one of libmemcached's allocating (the last fetch would free it):
   * ours, freed below. */
  memcached_result_st buf, *res = NULL;
  if (rc == MEMCACHED_SUCCESS &&
      (res = memcached_result_create(mc, &buf)) == NULL)
    rc = MEMCACHED_MEMORY_ALLOCATION_FAILURE;
  while (rc == MEMCACHED_SUCCESS && memcached_fetch_result(mc, res, &rc)) {
    const char *k = memcached_result_key_value(res);
    size_t kl = memcached_result_key_length(res);
    /* The first op on that key still without a value (a key asked twice
     * comes back twice). */
    op_t *op = lead;
    while (op != NULL && !(op->value == NULL && op->rc == MEMCACHED_SUCCESS &&
                           op->klen == kl && memcmp(op->key, k, kl) == 0))
      op = op->batch;
    if (op == NULL)
      continue;
    size_t vl = memcached_result_length(res);
    if ((op->value = malloc(vl + 1)) == NULL) {
      op->rc = MEMCACHED_MEMORY_ALLOCATION_FAILURE;
      continue;
    }
    memcpy(op->value, memcached_result_value(res), vl);
    op->value[vl] = '\0';
    op->vlen = vl;
    op->rc = MEMCACHED_SUCCESS;
  }
  if (res != NULL)
    memcached_result_free(res);
  bool complete = rc == MEMCACHED_END || rc == MEMCACHED_NOTFOUND;
  if (rc == MEMCACHED_TIMEOUT)
    /* Whose: the servers whose own last error is the timeout (the others
     * answered their part). */
    for (op_t *op = lead; op != NULL; op = op->batch) {
      const memcached_instance_st *in = server_of(mc, op);
      op->timed_out = op->server >= 0 && in != NULL &&
                      memcached_server_error_return(in) == MEMCACHED_TIMEOUT;
    }
  if (!complete)
    memcached_quit(mc); /* servers sent to may still owe replies */
  for (op_t *op = lead; op != NULL; op = op->batch) {
    if (op->value != NULL || op->rc == MEMCACHED_MEMORY_ALLOCATION_FAILURE)
      continue;
    if (complete) {
      op->rc = MEMCACHED_NOTFOUND;
    } else if (rc == MEMCACHED_TIMEOUT) {
      op->rc = MEMCACHED_TIMEOUT;
    } else {
      /* A server that failed inside the mget may have left the ring there
       * (REMOVE_FAILED_SERVERS), so the get's own attempts go to the key's
       * new owner and never see the failure: it is noted here, or the
       * server's return would not count as a reconnect (note_servers). */
      int before = op->server;
      run_one(mc, op);
      if (before >= 0 && op->server != before && unreachable(rc))
        op->failed |= (uint64_t)1 << before;
    }
  }
}

/* A sample: `stats` on each server of the client's ring (the store's
 * servers out left out: INV(ring)), curr_items and bytes summed.  A server
 * libmemcached has taken out (down: SERVER_MARKED_DEAD or
 * TEMPORARILY_DISABLED) is left out too; any other that does not answer
 * (a refused connect, a timeout, ...) fails the sample, as does no server
 * answering at all.  memcached_stat asks the servers one after the other,
 * each within the client's timeouts. */
static void run_stats(memcached_st *mc, op_t *op) {
  op->sampled_us = cache__now_us();
  memcached_return_t rc = MEMCACHED_SUCCESS;
  memcached_stat_st *sv = memcached_stat(mc, NULL, &rc);
  if (sv == NULL) {
    op->rc = rc != MEMCACHED_SUCCESS ? rc : MEMCACHED_FAILURE;
    return;
  }
  uint32_t n = memcached_server_count(mc), answered = 0;
  op->rc = MEMCACHED_SUCCESS;
  for (uint32_t i = 0; i < n; i++) {
    if (sv[i].pid != -1) { /* memcached_stat's mark of a server that failed */
      op->entries += sv[i].curr_items;
      op->bytes += sv[i].bytes;
      answered++;
      continue;
    }
    const memcached_instance_st *in =
        memcached_server_instance_by_position(mc, i);
    memcached_return_t src =
        in != NULL ? memcached_server_error_return(in) : MEMCACHED_FAILURE;
    if (src == MEMCACHED_SERVER_MARKED_DEAD ||
        src == MEMCACHED_SERVER_TEMPORARILY_DISABLED)
      continue; /* out of libmemcached's ring */
    op->rc = src != MEMCACHED_SUCCESS ? src : MEMCACHED_FAILURE;
    drop_if_out_of_step(mc, src);
  }
  memcached_stat_free(mc, sv);
  if (op->rc == MEMCACHED_SUCCESS && answered == 0)
    op->rc = MEMCACHED_NO_SERVERS;
}

/* On a worker thread: no heap, no store state but the server list and its
 * slot's client and ring (INV(ring)). */
static void work(uv_work_t *req) {
  op_t *lead = req->data;
  mc_t *m = lead->m;
  if (m->ring_out[lead->slot] != lead->out_mask) {
    memcached_st *mc;
    char err[128];
    if (make_client(m, lead->out_mask, &mc, err, sizeof err) == 0) {
      memcached_free(m->client[lead->slot]);
      m->client[lead->slot] = lead->mc = mc;
      m->ring_out[lead->slot] = lead->out_mask;
    } /* else the old ring, tried again by the next item */
  }
  if (lead->kind == OP_STATS)
    run_stats(lead->mc, lead);
  else if (lead->batch == NULL)
    run_one(lead->mc, lead);
  else
    run_batch(lead->mc, lead);
}

/* --- Results, on the loop ------------------------------------------------- */

static int errno_of(memcached_return_t rc, int sys_errno) {
  switch (rc) {
  case MEMCACHED_SUCCESS:
    return 0;
  case MEMCACHED_NOTFOUND:
    return -ENOENT;
  case MEMCACHED_TIMEOUT:
    return -ETIMEDOUT;
  case MEMCACHED_CONNECTION_FAILURE:
    return sys_errno == ECONNREFUSED ? -ECONNREFUSED : -ECONNRESET;
  case MEMCACHED_WRITE_FAILURE:
  case MEMCACHED_READ_FAILURE:
  case MEMCACHED_UNKNOWN_READ_FAILURE:
    return -ECONNRESET;
  case MEMCACHED_SERVER_MARKED_DEAD:
  case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
  case MEMCACHED_NO_SERVERS:
  case MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE:
    return -ENOTCONN;
  case MEMCACHED_HOST_LOOKUP_FAILURE:
    return -EHOSTUNREACH;
  case MEMCACHED_PROTOCOL_ERROR:
    return -EPROTO;
  case MEMCACHED_E2BIG:
    return -E2BIG;
  case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
    return -ENOMEM;
  case MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE:
    return -ENOSPC;
  case MEMCACHED_ERRNO:
    return sys_errno > 0 ? -sys_errno : -EIO;
  default:
    return -EIO;
  }
}

/* The message for an operation that failed with its RC. */
static void result_error(mc_t *m, const op_t *op) {
  char where[HOST_MAX + 16] = "";
  if (op->server >= 0)
    snprintf(where, sizeof where, " on %s:%d", m->servers[op->server].host,
             m->servers[op->server].port);
  char what[64];
  switch (op->rc) {
  case MEMCACHED_TIMEOUT:
    snprintf(what, sizeof what, "no answer within %llu ms",
             (unsigned long long)m->timeout_ms);
    break;
  case MEMCACHED_SERVER_MARKED_DEAD:
  case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
    snprintf(what, sizeof what, "server down (tried again every %llu s)",
             (unsigned long long)m->retry_s);
    break;
  case MEMCACHED_E2BIG:
    snprintf(what, sizeof what, "value above the server's item size");
    break;
  case MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE:
    snprintf(what, sizeof what, "server out of memory");
    break;
  default:
    snprintf(what, sizeof what, "%s", memcached_strerror(m->master, op->rc));
    for (char *c = what; *c; c++)
      if (*c >= 'A' && *c <= 'Z')
        *c = (char)(*c - 'A' + 'a');
  }
  char sys[64] = "";
  if (op->sys_errno > 0 && op->rc != MEMCACHED_TIMEOUT) {
    char buf[48];
    snprintf(sys, sizeof sys, " (%s)",
             strerror_r(op->sys_errno, buf, sizeof buf));
  }
  /* At most 17 + 5 + 40 + 2 + 40 + 23 bytes: the message fits. */
  snprintf(m->base.error, sizeof m->base.error,
           "memcached store: %s%.40s: %.40s%.23s", op_names[op->kind], where,
           what, sys);
}

/* What the attempts learnt about the servers: one that could not be reached
 * is down; one that answered after that is back (a reconnect). */
static void note_servers(mc_t *m, const op_t *op) {
  for (size_t i = 0; i < m->nservers; i++)
    if (op->failed & ((uint64_t)1 << i))
      m->down[i] = true;
  if (op->server >= 0 && !unreachable(op->rc) && m->down[op->server]) {
    m->down[op->server] = false;
    m->st.reconnects++;
  }
}

static void answer_result(mc_t *m, op_t *op) {
  note_servers(m, op);
  memcached_return_t rc = op->rc;
  int err = errno_of(rc, op->sys_errno);
  if (op->kind == OP_GET) {
    gc_scope_t sc;
    gc_scope_open(m->h, &sc);
    rt_value_t *v = NULL;
    if (rc == MEMCACHED_SUCCESS) {
      /* libmemcached ends the text with a NUL; it is off the heap, so
       * parsing cannot move it. */
      v = rt_handle(m->h, RT_NONE);
      rt_json_error_t je;
      err = op->value != NULL
                ? rt_json_parse(m->rt, op->value, op->vlen, NULL, v, &je)
                : -EIO;
      if (err < 0) {
        snprintf(m->base.error, sizeof m->base.error,
                 "memcached store: a stored value does not parse");
        m->st.errors++;
        v = NULL;
      } else {
        m->st.hits++;
      }
    } else if (rc == MEMCACHED_NOTFOUND) {
      m->st.misses++;
      err = 0;
    } else {
      result_error(m, op);
      m->st.errors++;
    }
    cache__latency_record(&m->base, op->t0);
    op->get(&m->base, err, v, op->data);
    gc_scope_close(m->h, &sc);
    return;
  }
  if (rc == MEMCACHED_SUCCESS) {
    if (op->kind == OP_SET)
      m->st.sets++;
    else if (op->kind == OP_DEL)
      m->st.deletes++;
  } else if (rc == MEMCACHED_NOTFOUND && op->kind == OP_DEL) {
    err = 0; /* deleting what is not there is not an error */
  } else if (rc != MEMCACHED_NOTFOUND) {
    result_error(m, op);
    m->st.errors++;
  }
  cache__latency_record(&m->base, op->t0);
  if (op->done != NULL)
    op->done(&m->base, err, op->data);
}

static size_t in_ring(const mc_t *m) {
  size_t n = 0;
  for (size_t i = 0; i < m->nservers; i++)
    n += m->out_until[i] == 0;
  return n;
}

/* The servers that timed out in the work item LEAD, and those that
 * answered: TIMEOUT_LIMIT items in a row take a server out of the ring
 * for retry-s, unless it is the last one in it. */
static void note_timeouts(mc_t *m, const op_t *lead) {
  uint64_t timed = 0, answered = 0;
  for (const op_t *op = lead; op != NULL; op = op->batch)
    if (op->timed_out)
      timed |= (uint64_t)1 << op->server;
    else if (op->server >= 0 && !unreachable(op->rc))
      answered |= (uint64_t)1 << op->server;
  for (size_t i = 0; i < m->nservers; i++) {
    uint64_t bit = (uint64_t)1 << i;
    if (timed & bit) {
      if (++m->timeouts[i] >= TIMEOUT_LIMIT && m->out_until[i] == 0 &&
          in_ring(m) > 1) {
        m->out_until[i] = uv_now(m->uv) + m->retry_s * 1000;
        m->down[i] = true; /* its next answer counts as a reconnect */
      }
    } else if (answered & bit) {
      m->timeouts[i] = 0;
    }
  }
}

/* The servers out of the ring now; one whose time is up is back, one more
 * timeout from taking it out again. */
static uint64_t ring_out_now(mc_t *m) {
  uint64_t now = uv_now(m->uv), out = 0;
  for (size_t i = 0; i < m->nservers; i++) {
    if (m->out_until[i] == 0)
      continue;
    if (now >= m->out_until[i]) {
      m->out_until[i] = 0;
      m->timeouts[i] = TIMEOUT_LIMIT - 1;
    } else {
      out |= (uint64_t)1 << i;
    }
  }
  return out;
}

/* A sample's result: the figures, unless it failed (then the previous
 * ones stay; a sample is no operation, so nothing is counted). */
static void sample_result(mc_t *m, const op_t *op) {
  if (op->rc != MEMCACHED_SUCCESS)
    return;
  m->sample_entries = op->entries;
  m->sample_bytes = op->bytes;
  m->sampled_us = op->sampled_us;
  m->sampled = true;
}

static void after_work(uv_work_t *req, int status) {
  op_t *lead = req->data;
  mc_t *m = lead->m;
  rt_loop_t *loop = m->base.loop;
  m->running[lead->slot] = NULL;
  m->started--;
  if (status == 0)
    note_timeouts(m, lead);
  if (!m->closing)
    start_waiting(m); /* the client just freed goes to the next ops */
  for (op_t *op = lead; op != NULL; op = op->batch)
    if (!op->answered && status == 0) {
      unlink_op(m, op);
      op->answered = true;
      if (op->kind == OP_STATS)
        sample_result(m, op);
      else
        answer_result(m, op); /* may close the store: our reference holds */
    }
  if (!m->closing && !m->sample_tried)
    sample_start(m); /* the first, once the store has been to its servers */
  for (op_t *op = lead, *next; op != NULL; op = next) {
    next = op->batch;
    free_op(op);
  }
  unref_store(m);
  rt_loop_after_callback(loop);
}

static bool same_key(const op_t *a, const op_t *b) {
  return a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0;
}

/* Whether OP must wait for a running op on its key (INV(key order)). */
static bool held(const mc_t *m, const op_t *op) {
  for (unsigned i = 0; i < m->clients; i++)
    for (const op_t *r = m->running[i]; r != NULL; r = r->batch)
      if ((r->kind != OP_GET || op->kind != OP_GET) && same_key(r, op))
        return true;
  return false;
}

/* Starts waiting ops, in order, while clients are free (INV(slots)): a
 * get takes the gets right behind it along (BATCH_MAX in all). */
static void start_waiting(mc_t *m) {
  while (m->waiting != NULL && m->started < m->clients &&
         !held(m, m->waiting)) {
    unsigned slot = 0;
    while (m->running[slot] != NULL) /* INV(slots): one is free */
      slot++;
    op_t *lead = m->waiting, *last = lead;
    size_t n = 1;
    if (lead->kind == OP_GET)
      while (n < BATCH_MAX && last->next != NULL &&
             last->next->kind == OP_GET && !held(m, last->next)) {
        last->batch = last->next;
        last = last->next;
        n++;
      }
    lead->slot = slot;
    lead->mc = m->client[slot];
    lead->out_mask = ring_out_now(m);
    lead->req.data = lead;
    if (uv_queue_work(m->uv, &lead->req, work, after_work) != 0) {
      for (op_t *op = lead, *next; op != NULL; op = next) {
        next = op->batch;
        op->batch = NULL;
      }
      return; /* their deadlines answer them */
    }
    for (op_t *op = lead; op != NULL; op = op->batch) {
      op->started = true;
      op->lead = lead;
    }
    m->running[slot] = lead;
    m->started++;
    m->refs++;
    m->waiting = last->next;
  }
}

static void run_start(rt_loop_t *loop, void *data, rt_value_t *args,
                      size_t nargs) {
  mc_t *m = data;
  (void)loop;
  (void)args;
  (void)nargs;
  m->start_queued = false;
  if (!m->closing)
    start_waiting(m);
  unref_store(m);
}

/* New ops start after the current callback, not inside the call: the ops
 * a callback makes go out together (the gets in one batch) rather than the
 * first alone. */
static void schedule_start(mc_t *m) {
  if (m->start_queued || m->started == m->clients)
    return; /* an answer's after-work callback starts them */
  if (rt_next_tick(m->base.loop, run_start, m, NULL, 0) == 0) {
    m->start_queued = true;
    m->refs++;
  } else {
    start_waiting(m);
  }
}

/* --- Operations ----------------------------------------------------------- */

/* The key memcached sees for KEY: KEY itself when the text protocol takes
 * it as it is (1 to KEY_MAX bytes of printable ASCII but space) and it does
 * not start with HASHED_PREFIX; else HASHED_PREFIX and the SHA-256 of KEY
 * in hex.  INV(keys): the mapping is one to one (SHA-256 collisions
 * aside), since no key sent as it is starts with the prefix.  Writes OUT
 * (KEY_MAX + 1 bytes) and returns its length, or 0 if hashing failed. */
static size_t wire_key(const char *key, size_t klen, char *out) {
  bool plain = klen >= 1 && klen <= KEY_MAX &&
               !(klen >= HASHED_PREFIX_LEN &&
                 memcmp(key, HASHED_PREFIX, HASHED_PREFIX_LEN) == 0);
  for (size_t i = 0; plain && i < klen; i++)
    plain = key[i] > ' ' && key[i] < 0x7f;
  if (plain) {
    memcpy(out, key, klen);
    out[klen] = '\0';
    return klen;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_Digest(key, klen, md, &mdlen, EVP_sha256(), NULL) != 1 ||
      mdlen * 2 != SHA256_HEX)
    return 0;
  static const char hex[] = "0123456789abcdef";
  memcpy(out, HASHED_PREFIX, HASHED_PREFIX_LEN);
  for (unsigned i = 0; i < mdlen; i++) {
    out[HASHED_PREFIX_LEN + 2 * i] = hex[md[i] >> 4];
    out[HASHED_PREFIX_LEN + 2 * i + 1] = hex[md[i] & 15];
  }
  out[HASHED_PREFIX_LEN + SHA256_HEX] = '\0';
  return HASHED_PREFIX_LEN + SHA256_HEX;
}

/* memcached's expiration for TTL_MS: whole seconds rounded up, 0 for none;
 * above 30 days a Unix time (memcached's rule), at most 2^31 - 1. */
static time_t expiration(uint64_t ttl_ms) {
  if (ttl_ms == 0)
    return 0;
  uint64_t s = ttl_ms / 1000 + (ttl_ms % 1000 != 0);
  if (s <= MAX_RELATIVE_S)
    return (time_t)s;
  uint64_t now = (uint64_t)time(NULL);
  return s > (uint64_t)MAX_EXPIRATION - now ? (time_t)MAX_EXPIRATION
                                            : (time_t)(now + s);
}

/* A new op: queued, and started at once if a client is free. */
static void submit(mc_t *m, int kind, const char *key, size_t klen, char *json,
                   size_t jlen, uint64_t ttl_ms, cache_get_fn get,
                   cache_done_fn done, void *data) {
  uint64_t t0 = cache__latency_start(&m->base);
  if (m->closing) {
    free(json);
    snprintf(m->base.error, sizeof m->base.error, "memcached store: closed");
    answer_later(m, -ECANCELED, get, done, data, t0);
    return;
  }
  op_t *op = calloc(1, sizeof *op);
  if (op == NULL) {
    free(json);
    answer_later(m, -ENOMEM, get, done, data, t0);
    return;
  }
  op->klen = wire_key(key, klen, op->key);
  if (op->klen == 0) {
    free(json);
    free(op);
    snprintf(m->base.error, sizeof m->base.error,
             "memcached store: could not hash a key");
    answer_later(m, -EIO, get, done, data, t0);
    return;
  }
  op->m = m;
  op->kind = kind;
  op->t0 = t0;
  uv_update_time(m->uv); /* the deadline counts from the call */
  op->deadline = uv_now(m->uv) + m->timeout_ms;
  op->get = get;
  op->done = done;
  op->data = data;
  op->json = json;
  op->jlen = jlen;
  op->expiration = expiration(ttl_ms);
  op->server = -1;
  op->prev = m->tail;
  if (m->tail != NULL)
    m->tail->next = op;
  else
    m->head = op;
  m->tail = op;
  if (m->waiting == NULL)
    m->waiting = op;
  if (m->head == op)
    arm(m);
  schedule_start(m);
}

/* --- Entries and bytes ---------------------------------------------------- */

/* A sample (cache.h): an OP_STATS op, queued like the others, so it takes a
 * client like them (INV(slots)) and is answered, timed out and cancelled
 * like them, except that it answers no one and counts in no counter.  It
 * keeps the deadline timer armed and holds its work item like any op, so
 * the loop runs until it is back (or cancelled at close). */
static void sample_start(mc_t *m) {
  if (m->closing || m->sampling)
    return;
  op_t *op = calloc(1, sizeof *op);
  if (op == NULL)
    return; /* the wish stays: tried again at the next tick */
  m->sampling = true;
  m->sample_tried = true;
  m->sample_wanted = false;
  op->m = m;
  op->kind = OP_STATS;
  uv_update_time(m->uv);
  op->deadline = uv_now(m->uv) + m->timeout_ms; /* INV(order) */
  op->server = -1;
  op->prev = m->tail;
  if (m->tail != NULL)
    m->tail->next = op;
  else
    m->head = op;
  m->tail = op;
  if (m->waiting == NULL)
    m->waiting = op;
  if (m->head == op)
    arm(m);
  schedule_start(m);
}

static void on_sample_tick(uv_timer_t *t) {
  mc_t *m = t->data;
  if (m->sample_wanted && !m->sampling && !m->closing) {
    sample_start(m);
    rt_loop_after_callback(m->base.loop); /* the start is a next tick */
  }
}

static void mc_get(cache_store_t *st, const char *key, size_t klen,
                   cache_get_fn fn, void *data) {
  submit((mc_t *)st, OP_GET, key, klen, NULL, 0, 0, fn, NULL, data);
}

static void mc_set(cache_store_t *st, const char *key, size_t klen,
                   const rt_value_t *value, uint64_t ttl_ms, cache_done_fn fn,
                   void *data) {
  mc_t *m = (mc_t *)st;
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  int err =
      value != NULL ? rt_json_stringify(m->rt, *value, NULL, &b) : -EINVAL;
  if (err < 0) {
    rt_strbuf_free(&b);
    snprintf(m->base.error, sizeof m->base.error,
             "memcached store: the value has no JSON form");
    answer_later(m, err, NULL, fn, data, cache__latency_start(&m->base));
    return;
  }
  /* The op takes the text: the worker reads it off the heap. */
  submit(m, OP_SET, key, klen, b.data, b.len, ttl_ms, NULL, fn, data);
}

static void mc_del(cache_store_t *st, const char *key, size_t klen,
                   cache_done_fn fn, void *data) {
  submit((mc_t *)st, OP_DEL, key, klen, NULL, 0, 0, NULL, fn, data);
}

static void mc_touch(cache_store_t *st, const char *key, size_t klen,
                     uint64_t ttl_ms, cache_done_fn fn, void *data) {
  submit((mc_t *)st, OP_TOUCH, key, klen, NULL, 0, ttl_ms, NULL, fn, data);
}

static void mc_stats(cache_store_t *st, cache_stats_t *out) {
  mc_t *m = (mc_t *)st;
  *out = m->st;
  m->sample_wanted = true;
  out->entries = m->sample_entries;
  out->bytes = m->sample_bytes;
  out->counted_ms_ago = cache__counted_ms_ago(m->sampled, m->sampled_us);
}

static void mc_close(cache_store_t *st) {
  mc_t *m = (mc_t *)st;
  if (m->closing)
    return;
  m->closing = true;
  m->refs++; /* held across the answers below */
  /* Every unanswered op gets -ECANCELED from the loop.  A started one that
   * libuv has not begun is cancelled (its after-work callback then frees
   * it); one that runs comes back within its timeouts. */
  while (m->head != NULL) {
    op_t *op = m->head;
    op->answered = true;
    unlink_op(m, op);
    if (op->kind != OP_STATS) /* a sample answers no one */
      answer_later(m, -ECANCELED, op->get, op->done, op->data, op->t0);
    if (!op->started)
      free_op(op);
    else if (op->lead == op)
      uv_cancel((uv_req_t *)&op->req);
  }
  snprintf(m->base.error, sizeof m->base.error, "memcached store: closed");
  uv_close((uv_handle_t *)&m->deadline, on_timer_closed);
  uv_close((uv_handle_t *)&m->sample_timer, on_timer_closed);
  unref_store(m);
}

/* --- Opening -------------------------------------------------------------- */

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

static bool host_char(char c, bool bracketed) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
         (bracketed && (c == ':' || c == '%'));
}

#define URL_FORM                                                               \
  "memcached://host[:port][,host[:port]...][?timeout-ms=N&retry-s=N"           \
  "&clients=N]"

/* One server of the list: host[:port] or [v6]:port (N bytes at S). */
static int parse_server(const char *s, size_t n, server_t *out, char *err,
                        size_t errlen) {
  const char *host = s, *rest;
  size_t hl;
  bool br = n > 0 && s[0] == '[';
  if (br) {
    const char *close = memchr(s, ']', n);
    if (close == NULL) {
      snprintf(err, errlen, "memcached://: %.*s: no ] after an IPv6 address",
               (int)n, s);
      return -EINVAL;
    }
    host = s + 1;
    hl = (size_t)(close - host);
    rest = close + 1;
  } else {
    rest = memchr(s, ':', n);
    if (rest == NULL)
      rest = s + n;
    hl = (size_t)(rest - s);
  }
  size_t rl = (size_t)(s + n - rest);
  if (hl == 0) {
    snprintf(err, errlen,
             "memcached://: a server with no host (%.*s); "
             "expected " URL_FORM,
             (int)n, s);
    return -EINVAL;
  }
  if (hl > HOST_MAX) {
    snprintf(err, errlen, "memcached://: a host name longer than %d bytes",
             HOST_MAX);
    return -EINVAL;
  }
  for (size_t i = 0; i < hl; i++)
    if (!host_char(host[i], br)) {
      snprintf(err, errlen, "memcached://: %.*s is not a host%s", (int)n, s,
               host[i] == ':' ? " (put an IPv6 address in [ ])" : "");
      return -EINVAL;
    }
  uint64_t port = DEFAULT_PORT;
  if (rl > 0 && (rest[0] != ':' ||
                 parse_uint(rest + 1, rl - 1, 65535, &port) < 0 || port == 0)) {
    snprintf(err, errlen,
             "memcached://: %.*s: the port is not a number "
             "from 1 to 65535",
             (int)n, s);
    return -EINVAL;
  }
  memcpy(out->host, host, hl);
  out->host[hl] = '\0';
  out->port = (int)port;
  return 0;
}

static int parse_url(const char *url, server_t *servers, size_t *nservers,
                     uint64_t *timeout, uint64_t *retry, uint64_t *clients,
                     char *err, size_t errlen) {
  const char *p = strstr(url, "://");
  p = p != NULL ? p + 3 : url;
  const char *q = strchr(p, '?');
  const char *end = q != NULL ? q : p + strlen(p);
  *nservers = 0;
  if (p == end) {
    snprintf(err, errlen, "memcached://: no server; expected " URL_FORM);
    return -EINVAL;
  }
  for (const char *s = p; s <= end;) {
    const char *comma = memchr(s, ',', (size_t)(end - s));
    const char *e = comma != NULL ? comma : end;
    if (*nservers == MAX_SERVERS) {
      snprintf(err, errlen, "memcached://: more than %d servers", MAX_SERVERS);
      return -EINVAL;
    }
    server_t *sv = &servers[*nservers];
    int r = parse_server(s, (size_t)(e - s), sv, err, errlen);
    if (r < 0)
      return r;
    for (size_t i = 0; i < *nservers; i++)
      if (servers[i].port == sv->port &&
          strcmp(servers[i].host, sv->host) == 0) {
        snprintf(err, errlen, "memcached://: %s:%d is listed twice", sv->host,
                 sv->port);
        return -EINVAL;
      }
    (*nservers)++;
    s = e + 1;
  }
  for (const char *a = q != NULL ? q + 1 : NULL; a != NULL && *a;) {
    const char *amp = strchr(a, '&');
    size_t n = amp != NULL ? (size_t)(amp - a) : strlen(a);
    const char *eq = memchr(a, '=', n);
    if (eq == NULL) {
      snprintf(err, errlen, "memcached://: %.*s has no value", (int)n, a);
      return -EINVAL;
    }
    size_t kl = (size_t)(eq - a), vl = n - kl - 1;
    uint64_t *dst = NULL, max = 0;
    if (kl == 10 && memcmp(a, "timeout-ms", 10) == 0)
      dst = timeout, max = MAX_TIMEOUT_MS;
    else if (kl == 7 && memcmp(a, "retry-s", 7) == 0)
      dst = retry, max = MAX_RETRY_S;
    else if (kl == 7 && memcmp(a, "clients", 7) == 0)
      dst = clients, max = MAX_CLIENTS;
    if (dst == NULL) {
      snprintf(err, errlen,
               "memcached://: unknown parameter %.*s (known: "
               "timeout-ms, retry-s, clients)",
               (int)kl, a);
      return -EINVAL;
    }
    if (parse_uint(eq + 1, vl, max, dst) < 0 || *dst == 0) {
      snprintf(err, errlen,
               "memcached://: %.*s: expected a number from 1 to "
               "%llu",
               (int)n, a, (unsigned long long)max);
      return -EINVAL;
    }
    a = amp != NULL ? amp + 1 : NULL;
  }
  return 0;
}

/* A client on the servers not in OUT (the template every client is cloned
 * from has OUT 0). */
static int make_client(const mc_t *m, uint64_t out, memcached_st **res,
                       char *err, size_t errlen) {
  uint64_t retry_s = m->retry_s;
  memcached_st *mc = memcached_create(NULL);
  if (mc == NULL)
    return -ENOMEM;
  uint64_t tmo = m->timeout_ms;
  /* RCV and SND take microseconds as an int32_t. */
  uint64_t tmo_us = tmo * 1000 > INT32_MAX ? INT32_MAX : tmo * 1000;
  const struct {
    memcached_behavior_t b;
    uint64_t v;
  } bs[] = {
      {MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 0},
      {MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1},
      {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
      {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, tmo},
      {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, tmo},
      {MEMCACHED_BEHAVIOR_RCV_TIMEOUT, tmo_us},
      {MEMCACHED_BEHAVIOR_SND_TIMEOUT, tmo_us},
      {MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1},
      {MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, FAILURE_LIMIT},
      {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, retry_s},
      {MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, retry_s},
  };
  for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++)
    if (memcached_behavior_set(mc, bs[i].b, bs[i].v) != MEMCACHED_SUCCESS) {
      snprintf(err, errlen,
               "memcached://: libmemcached refused a setting: "
               "%s",
               memcached_last_error_message(mc));
      memcached_free(mc);
      return -EINVAL;
    }
  for (size_t i = 0; i < m->nservers; i++) {
    if (out & ((uint64_t)1 << i))
      continue;
    memcached_return_t rc = memcached_server_add(mc, m->servers[i].host,
                                                 (in_port_t)m->servers[i].port);
    if (rc != MEMCACHED_SUCCESS) {
      snprintf(err, errlen, "memcached://: %s:%d: %s", m->servers[i].host,
               m->servers[i].port, memcached_strerror(mc, rc));
      memcached_free(mc);
      return rc == MEMCACHED_MEMORY_ALLOCATION_FAILURE ? -ENOMEM : -EINVAL;
    }
  }
  *res = mc;
  return 0;
}

static uint64_t default_clients(void) {
  const char *v = getenv("UV_THREADPOOL_SIZE");
  unsigned long pool = v != NULL ? strtoul(v, NULL, 10) : 0;
  if (pool == 0)
    pool = UV_POOL_DEFAULT;
  if (pool > UV_POOL_MAX)
    pool = UV_POOL_MAX;
  uint64_t c = pool / 2 > 0 ? pool / 2 : 1;
  return c < MAX_CLIENTS ? c : MAX_CLIENTS;
}

static int mc_open(rt_loop_t *loop, const char *url, cache_store_t **out,
                   char *err, size_t errlen) {
  server_t *servers = calloc(MAX_SERVERS, sizeof *servers);
  if (servers == NULL)
    return -ENOMEM;
  size_t n = 0;
  uint64_t timeout = DEFAULT_TIMEOUT_MS, retry = DEFAULT_RETRY_S,
           clients = default_clients();
  int r = parse_url(url, servers, &n, &timeout, &retry, &clients, err, errlen);
  mc_t *m = r == 0 ? calloc(1, sizeof *m) : NULL;
  if (m == NULL) {
    free(servers);
    return r < 0 ? r : -ENOMEM;
  }
  m->base.type = &cache_memcached_type;
  m->base.loop = loop;
  m->rt = rt_loop_runtime(loop);
  m->h = rt_heap(m->rt);
  m->uv = rt_loop_uv(loop);
  m->servers = servers;
  m->nservers = n;
  m->timeout_ms = timeout;
  m->retry_s = retry;
  m->clients = (unsigned)clients;
  if ((r = make_client(m, 0, &m->master, err, errlen)) < 0) {
    free_store(m);
    return r;
  }
  /* The clients, cloned now (no connection yet: each connects on its
   * first operation, on a worker). */
  for (unsigned i = 0; i < m->clients; i++)
    if ((m->client[i] = memcached_clone(NULL, m->master)) == NULL) {
      destroy_work(&(uv_work_t){.data = m});
      free_store(m);
      return -ENOMEM;
    }
  uv_timer_init(m->uv, &m->deadline);
  m->deadline.data = m;
  uv_timer_init(m->uv, &m->sample_timer);
  m->sample_timer.data = m;
  uv_unref((uv_handle_t *)&m->sample_timer);
  uv_timer_start(&m->sample_timer, on_sample_tick, CACHE_SAMPLE_MS,
                 CACHE_SAMPLE_MS);
  m->refs = 2; /* the timers */
  *out = &m->base;
  return 0;
}

const cache_store_type_t cache_memcached_type = {
    .scheme = "memcached",
    .open = mc_open,
    .get = mc_get,
    .set = mc_set,
    .del = mc_del,
    .touch = mc_touch,
    .stats = mc_stats,
    .close = mc_close,
};
