/* memcached.c -- memcached://host:port,host:port, a pool of memcached
 * servers spoken to from the event loop: one pipelined connection per
 * server (libuv), memcached's meta protocol, libmemcached's ketama ring.
 *
 *   memcached://host[:port][,host[:port]...][?timeout-ms=N&retry-s=N]
 *
 * Keys go to servers by consistent hashing: libmemcached's KETAMA_WEIGHTED
 * continuum (libketama's: MD5, 160 points per server, all weights 1), asked
 * through memcached_generate_hash on a memcached_st that never connects, so
 * every process given the same servers, in any order, puts a key on the
 * same one, and so does any other libmemcached client with ketama.
 *
 * Why not libmemcached's own I/O (it was, through 2026-12-03): its calls
 * wait for their reply inside the call, so they ran on libuv's thread
 * pool, and the hop (queue, wake a worker, wake the loop back) cost the
 * session flow 28-41 us of server CPU per request against 16-18 for the
 * Redis store on hiredis's loop adapter, and put its p99 at 0.1x
 * express-session's instead of under it.  The wire protocol is a few lines
 * (mg, ms, md, stats); the ring, the part worth sharing with other
 * clients, stays libmemcached's.  cache/DESIGN.md has the measurements.
 *
 * Connections.  A server's connection is made at the next tick after an op
 * is queued on it while none is up (IDLE -> RESOLVING for a host name ->
 * CONNECTING -> UP), so no call answers from inside itself;
 * a failure closes it (CLOSING -> IDLE) and, while ops are queued, the next
 * attempt makes a new one.
 * INV(queue): every unanswered op is in exactly one server's queue, in the
 * order its request was appended to that server's output; the server's
 * replies come in that order, so the queue's head is the op the next reply
 * answers.  An op leaves its queue only when its reply has come or its
 * connection is closed, and is freed only then (an op answered by its
 * deadline or by close stays queued until then: the reply it is owed must
 * still be read past).
 * INV(order): the unanswered ops also form one list in the order they were
 * made; all have the same timeout, so the list is in deadline order and the
 * deadline timer only looks at its head.
 * INV(once): every op is answered exactly once, from the loop: by its
 * reply, by its deadline (-ETIMEDOUT), by failure after its attempts, or by
 * close (-ECANCELED).
 *
 * The ring.  A server whose connect fails (refused, unreachable, its host
 * does not resolve) is out of the ring for retry-s, even the last one (then
 * every op fails at once: nothing is there).  A server that accepts and
 * does not answer (paused, wedged) is out after TIMEOUT_LIMIT deadlines in
 * a row on its connection, unless it is the last server in the ring.  Each
 * deadline closes the connection, which may still owe replies; the ops
 * queued behind the overdue ones are tried again (they go to the key's
 * owner, which is another server once this one is out).  A server out for
 * retry-s is back in the ring at the first op after that.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
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
#define MAX_SERVERS 64
#define HOST_MAX 255
#define MAX_ADDRS 4 /* a host name's addresses tried in turn */
/* memcached's key limit (KEY_MAX_LENGTH). */
#define KEY_MAX 250
/* A key memcached cannot take as it is is sent as this prefix and the
 * SHA-256 of the key in hex. */
#define HASHED_PREFIX "~h:"
#define HASHED_PREFIX_LEN 3
#define SHA256_HEX 64
/* memcached reads an expiration above 30 days as a Unix time. */
#define MAX_RELATIVE_S (30u * 24 * 3600)
/* memcached parses expirations as a signed 32-bit number. */
#define MAX_EXPIRATION 2147483647
/* Deadlines in a row on a server's connection before it leaves the ring
 * (a connect that works and replies that never come). */
#define TIMEOUT_LIMIT 2
/* Attempts per op.  When a server dies under load an op can see its
 * connection reset (1), the reconnect refused (2: the server leaves the
 * ring), the key's new owner (3); the rest to spare.  Only connection
 * failures are tried again, never a reply. */
#define MAX_ATTEMPTS 6
/* A reply line longer than this (without its data) is not memcached's. */
#define LINE_MAX_BYTES 4096
#define READ_CHUNK 65536
/* Buffers above this are given back once empty (a big value passed). */
#define KEEP_BUFFER (4 * READ_CHUNK)
/* memcached's largest item (-I at most 1 GB): a longer VA is not its. */
#define MAX_VALUE (1u << 30)

enum { OP_GET, OP_SET, OP_DEL, OP_TOUCH, OP_STATS };
static const char *const op_names[] = {"get", "set", "del", "touch", "stats"};

enum { S_IDLE, S_RESOLVING, S_CONNECTING, S_UP, S_CLOSING };

typedef struct mc_s mc_t;
typedef struct server_s server_t;

typedef struct sample_s {
  unsigned pending; /* stats ops not answered yet */
  bool failed;
  uint64_t entries, bytes, started_us;
} sample_t;

typedef struct op_s {
  struct op_s *prev, *next; /* the unanswered list, while unanswered */
  struct op_s *qnext;       /* its server's queue, INV(queue) */
  mc_t *m;
  int kind;
  bool answered;
  int server;        /* the server it is queued on, INV(queue) */
  unsigned attempts;
  int last_err;      /* the last failed attempt's code, or 0 */
  int last_server;   /* and its server, or -1 */
  uint64_t t0;       /* cache__latency_start() at the call (0: not timed) */
  uint64_t deadline; /* uv_now ms */
  cache_get_fn get;
  cache_done_fn done;
  void *data;
  long long expiration;
  char *json; /* set's text */
  size_t jlen, klen;
  char key[KEY_MAX + 1];
} op_t;

struct server_s {
  char host[HOST_MAX + 1];
  int port;
  mc_t *m;
  int idx;
  int state;
  bool handle_open; /* tcp initialised and not yet closed */
  bool writing;     /* wreq in flight */
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_getaddrinfo_t gai;
  uv_write_t wreq;
  struct sockaddr_storage addr[MAX_ADDRS];
  unsigned naddrs, next_addr;
  bool numeric;  /* host is an address: no resolving */
  bool gai_busy; /* gai in flight (its callback may come after a cancel) */
  bool trying;   /* connecting to the resolved addresses in turn */
  op_t *qhead, *qtail;
  char *out, *wbuf; /* requests not yet written; those being written */
  size_t olen, ocap, wlen, wcap;
  char *in; /* replies read and not yet parsed */
  size_t ilen, icap;
  unsigned timeouts;  /* deadlines in a row on its connection */
  uint64_t out_until; /* uv_now ms it is out of the ring until, or 0 */
  bool down;          /* the last attempt on it could not reach it */
  bool timed_out;     /* on_deadline: an op queued on it is overdue */
};

struct mc_s {
  cache_store_t base;
  rt_runtime_t *rt;
  gc_heap_t *h;
  uv_loop_t *uv;
  server_t *servers;
  size_t nservers;
  uint64_t timeout_ms, retry_s;
  /* The ring: a never-connected libmemcached client on the servers in it,
   * and which of ours each of its positions is. */
  memcached_st *ring;
  int ring_pos[MAX_SERVERS];
  uint32_t ring_n;
  uint64_t next_back; /* the earliest out_until, or 0 */
  op_t *head, *tail;  /* unanswered ops, INV(order) */
  size_t refs;        /* timers, open handles, resolves, queued callbacks */
  bool closing;
  bool flush_queued;
  uv_timer_t deadline; /* armed while ops are unanswered */
  cache_stats_t st;
  /* Entries and bytes, sampled.  INV(sample): at most one sample is in
   * flight (`sampling`). */
  sample_t sample;
  uint64_t sample_entries, sample_bytes, sampled_us;
  bool sampled, sample_tried, sample_wanted, sampling;
  uv_timer_t sample_timer; /* unref'd, every CACHE_SAMPLE_MS */
};

static void dispatch(mc_t *m, op_t *op);
static void try_connect(server_t *sv);
static void server_fail(server_t *sv, int err, bool retry);
static void flush_server(server_t *sv);
static void sample_start(mc_t *m);

/* --- Lifetime ------------------------------------------------------------- */

static void free_op(op_t *op) {
  free(op->json);
  free(op);
}

static void free_store(mc_t *m) {
  for (size_t i = 0; i < m->nservers; i++) {
    server_t *sv = &m->servers[i];
    for (op_t *op = sv->qhead, *next; op != NULL; op = next) {
      next = op->qnext;
      free_op(op);
    }
    free(sv->out);
    free(sv->wbuf);
    free(sv->in);
  }
  memcached_free(m->ring);
  free(m->servers);
  free(m);
}

static void unref_store(mc_t *m) {
  if (--m->refs == 0 && m->closing)
    free_store(m);
}

static void on_timer_closed(uv_handle_t *hd) {
  unref_store(hd->data);
}

/* --- The unanswered list and answers -------------------------------------- */

static void unlink_op(mc_t *m, op_t *op) {
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

static const char *what_of(int err, char *buf, size_t cap) {
  switch (err) {
  case -E2BIG:
    return "value above the server's item size";
  case -ENOSPC:
    return "server out of memory";
  case -EHOSTUNREACH:
    return "host not found";
  default:
    return strerror_r(-err, buf, cap);
  }
}

/* Sets the store's message for OP failing with ERR on server SV (NULL:
 * none) and, for a server down, when it is tried again. */
static void op_error(mc_t *m, const op_t *op, const server_t *sv, int err,
                     const char *detail) {
  char where[HOST_MAX + 16] = "", buf[64], retry[48] = "";
  if (sv != NULL)
    snprintf(where, sizeof where, " on %s:%d", sv->host, sv->port);
  if (sv != NULL && sv->out_until != 0)
    snprintf(retry, sizeof retry, " (down, retried every %" PRIu64 " s)",
             m->retry_s);
  const char *what = detail != NULL ? detail : what_of(err, buf, sizeof buf);
  /* Without a server there is no "on host:port" nor retry to make room for. */
  int what_max = sv != NULL ? 45 : 100;
  snprintf(m->base.error, sizeof m->base.error,
           "memcached store: %s%.30s: %.*s%.28s", op_names[op->kind], where,
           what_max, what, retry);
}

static void sample_part(mc_t *m, bool ok, uint64_t entries, uint64_t bytes);

/* Answers OP (unanswered) with ERR and, for a hit, the JSON text VAL (VLEN
 * bytes, off the heap).  Counts it.  May run any callback: the caller
 * holds a reference to the store. */
static void finish(mc_t *m, op_t *op, const server_t *sv, int err,
                   const char *detail, const char *val, size_t vlen,
                   bool hit) {
  op->answered = true;
  unlink_op(m, op);
  if (op->kind == OP_STATS) { /* a sample part: no one told, nothing counted */
    sample_part(m, false, 0, 0);
    return;
  }
  if (op->kind == OP_GET) {
    gc_scope_t sc;
    gc_scope_open(m->h, &sc);
    rt_value_t *v = NULL;
    if (err == 0 && hit) {
      v = rt_handle(m->h, RT_NONE);
      rt_json_error_t je;
      if (rt_json_parse(m->rt, val, vlen, NULL, v, &je) < 0) {
        snprintf(m->base.error, sizeof m->base.error,
                 "memcached store: a stored value does not parse");
        m->st.errors++;
        err = -EPROTO;
        v = NULL;
      } else {
        m->st.hits++;
      }
    } else if (err == 0) {
      m->st.misses++;
    } else {
      op_error(m, op, sv, err, detail);
      m->st.errors++;
    }
    cache__latency_record(&m->base, op->t0);
    op->get(&m->base, err, v, op->data);
    gc_scope_close(m->h, &sc);
    return;
  }
  if (err == 0 && op->kind == OP_SET)
    m->st.sets++;
  else if (err == 0 && op->kind == OP_DEL && hit)
    m->st.deletes++;
  else if (err < 0 && err != -ENOENT) {
    op_error(m, op, sv, err, detail);
    m->st.errors++;
  }
  cache__latency_record(&m->base, op->t0);
  if (op->done != NULL)
    op->done(&m->base, err, op->data);
}

/* --- The ring ------------------------------------------------------------- */

static size_t in_ring(const mc_t *m) {
  size_t n = 0;
  for (size_t i = 0; i < m->nservers; i++)
    n += m->servers[i].out_until == 0;
  return n;
}

/* A never-connected client on the servers in the ring; 0, or -ENOMEM (the
 * old ring stays). */
static int build_ring(mc_t *m) {
  memcached_st *mc = memcached_create(NULL);
  if (mc == NULL)
    return -ENOMEM;
  if (memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1) !=
      MEMCACHED_SUCCESS) {
    memcached_free(mc);
    return -ENOMEM;
  }
  for (size_t i = 0; i < m->nservers; i++) {
    const server_t *sv = &m->servers[i];
    if (sv->out_until != 0)
      continue;
    if (memcached_server_add(mc, sv->host, (in_port_t)sv->port) !=
        MEMCACHED_SUCCESS) {
      memcached_free(mc);
      return -ENOMEM;
    }
  }
  uint32_t n = memcached_server_count(mc);
  for (uint32_t p = 0; p < n; p++) {
    const memcached_instance_st *in =
        memcached_server_instance_by_position(mc, p);
    const char *name = memcached_server_name(in);
    int port = memcached_server_port(in);
    m->ring_pos[p] = -1;
    for (size_t i = 0; i < m->nservers; i++)
      if (m->servers[i].port == port && name != NULL &&
          strcmp(m->servers[i].host, name) == 0)
        m->ring_pos[p] = (int)i;
  }
  memcached_free(m->ring);
  m->ring = mc;
  m->ring_n = n;
  return 0;
}

static void note_out(mc_t *m, server_t *sv) {
  sv->out_until = uv_now(m->uv) + m->retry_s * 1000;
  sv->down = true; /* its next answer counts as a reconnect */
  if (m->next_back == 0 || sv->out_until < m->next_back)
    m->next_back = sv->out_until;
  build_ring(m);
}

/* Servers whose time out is up are back in the ring, one deadline from
 * leaving it again. */
static void ring_refresh(mc_t *m) {
  if (m->next_back == 0 || uv_now(m->uv) < m->next_back)
    return;
  uint64_t now = uv_now(m->uv);
  m->next_back = 0;
  for (size_t i = 0; i < m->nservers; i++) {
    server_t *sv = &m->servers[i];
    if (sv->out_until == 0)
      continue;
    if (now >= sv->out_until) {
      sv->out_until = 0;
      sv->timeouts = TIMEOUT_LIMIT - 1;
    } else if (m->next_back == 0 || sv->out_until < m->next_back) {
      m->next_back = sv->out_until;
    }
  }
  build_ring(m);
}

/* The server OP's key belongs to, or NULL when the ring is empty. */
static server_t *owner(mc_t *m, const op_t *op) {
  ring_refresh(m);
  if (m->ring_n == 0)
    return NULL;
  uint32_t p =
      m->ring_n == 1 ? 0 : memcached_generate_hash(m->ring, op->key, op->klen);
  int i = p < m->ring_n ? m->ring_pos[p] : -1;
  return i >= 0 ? &m->servers[i] : NULL;
}

/* --- Output --------------------------------------------------------------- */

static int reserve(char **buf, size_t *cap, size_t need) {
  if (need <= *cap)
    return 0;
  size_t c = *cap ? *cap : 512;
  while (c < need)
    c *= 2;
  char *p = realloc(*buf, c);
  if (p == NULL)
    return -ENOMEM;
  *buf = p;
  *cap = c;
  return 0;
}

/* Appends OP's request to SV's output. */
static int encode(server_t *sv, const op_t *op) {
  char line[KEY_MAX + 64];
  int n;
  switch (op->kind) {
  case OP_GET:
    n = snprintf(line, sizeof line, "mg %s v\r\n", op->key);
    break;
  case OP_SET:
    n = snprintf(line, sizeof line, "ms %s %zu T%lld\r\n", op->key, op->jlen,
                 op->expiration);
    break;
  case OP_DEL:
    n = snprintf(line, sizeof line, "md %s\r\n", op->key);
    break;
  case OP_TOUCH:
    n = snprintf(line, sizeof line, "mg %s T%lld\r\n", op->key,
                 op->expiration);
    break;
  default:
    n = snprintf(line, sizeof line, "stats\r\n");
  }
  size_t extra = op->kind == OP_SET ? op->jlen + 2 : 0;
  if (reserve(&sv->out, &sv->ocap, sv->olen + (size_t)n + extra) < 0)
    return -ENOMEM;
  memcpy(sv->out + sv->olen, line, (size_t)n);
  sv->olen += (size_t)n;
  if (op->kind == OP_SET) {
    memcpy(sv->out + sv->olen, op->json, op->jlen);
    memcpy(sv->out + sv->olen + op->jlen, "\r\n", 2);
    sv->olen += extra;
  }
  return 0;
}

static void run_flush(rt_loop_t *loop, void *data, rt_value_t *args,
                      size_t nargs) {
  mc_t *m = data;
  (void)loop;
  (void)args;
  (void)nargs;
  m->flush_queued = false;
  for (size_t i = 0; i < m->nservers && !m->closing; i++) {
    server_t *sv = &m->servers[i];
    if (sv->state == S_UP)
      flush_server(sv);
    else if (sv->state == S_IDLE && sv->qhead != NULL)
      try_connect(sv); /* a failure here answers from the loop: fine */
  }
  unref_store(m);
}

/* Requests go out after the callback that made them (a next tick): the
 * requests of one callback in one write. */
static void schedule_flush(mc_t *m) {
  if (m->flush_queued)
    return;
  if (rt_next_tick(m->base.loop, run_flush, m, NULL, 0) == 0) {
    m->flush_queued = true;
    m->refs++;
  }
  /* else no memory for the tick: the ops' deadlines answer them */
}

static void on_written(uv_write_t *req, int status) {
  server_t *sv = req->data;
  mc_t *m = sv->m;
  sv->writing = false;
  sv->wlen = 0;
  if (sv->wcap > KEEP_BUFFER) {
    free(sv->wbuf);
    sv->wbuf = NULL;
    sv->wcap = 0;
  }
  if (status == UV_ECANCELED || m->closing || sv->state != S_UP)
    return; /* closed meanwhile: the close has dealt with its ops */
  m->refs++;
  if (status < 0)
    server_fail(sv, status, true);
  else
    flush_server(sv);
  unref_store(m);
  rt_loop_after_callback(m->base.loop);
}

static void flush_server(server_t *sv) {
  if (sv->writing || sv->olen == 0 || sv->state != S_UP)
    return;
  /* Swap: the output becomes the buffer being written. */
  char *b = sv->wbuf;
  size_t c = sv->wcap;
  sv->wbuf = sv->out;
  sv->wcap = sv->ocap;
  sv->wlen = sv->olen;
  sv->out = b;
  sv->ocap = c;
  sv->olen = 0;
  uv_buf_t buf = uv_buf_init(sv->wbuf, (unsigned)sv->wlen);
  sv->wreq.data = sv;
  int r = uv_write(&sv->wreq, (uv_stream_t *)&sv->tcp, &buf, 1, on_written);
  if (r < 0) {
    sv->wlen = 0;
    server_fail(sv, r, true);
    return;
  }
  sv->writing = true;
}

/* --- Connections ---------------------------------------------------------- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf);
static void try_connect(server_t *sv);

static void set_ref(server_t *sv) {
  if (!sv->handle_open || sv->state == S_CLOSING)
    return;
  if (sv->qhead != NULL)
    uv_ref((uv_handle_t *)&sv->tcp);
  else
    uv_unref((uv_handle_t *)&sv->tcp); /* an idle store keeps nothing alive */
}

static void on_closed(uv_handle_t *hd) {
  server_t *sv = hd->data;
  mc_t *m = sv->m;
  sv->handle_open = false;
  sv->state = S_IDLE;
  sv->ilen = 0;
  if (!m->closing && sv->qhead != NULL) { /* ops queued while it closed */
    try_connect(sv);
    rt_loop_after_callback(m->base.loop);
  }
  unref_store(m); /* the handle's, held across the above */
}

static void close_conn(server_t *sv) {
  sv->olen = 0;
  sv->ilen = 0;
  if (sv->state == S_RESOLVING) {
    if (sv->gai_busy)
      uv_cancel((uv_req_t *)&sv->gai); /* its callback sees the state */
    sv->state = S_IDLE;
    return;
  }
  if (!sv->handle_open) {
    sv->state = S_IDLE;
    return;
  }
  if (sv->state != S_CLOSING) {
    sv->state = S_CLOSING;
    uv_close((uv_handle_t *)&sv->tcp, on_closed);
  }
}

/* SV's connection failed with ERR (a libuv code): closes it; the ops
 * queued on it are tried again (RETRY, while attempts are left) or
 * answered ERR.  The caller holds a reference to the store. */
static void server_fail(server_t *sv, int err, bool retry) {
  mc_t *m = sv->m;
  op_t *list = sv->qhead;
  sv->qhead = sv->qtail = NULL;
  close_conn(sv);
  for (op_t *op = list, *next; op != NULL; op = next) {
    next = op->qnext;
    op->qnext = NULL;
    if (op->answered) {
      free_op(op);
      continue;
    }
    op->attempts++;
    op->last_err = err;
    op->last_server = sv->idx;
    if (m->closing) {
      free_op(op); /* close answered it: cannot be, but never leak */
    } else if (retry && op->attempts < MAX_ATTEMPTS &&
               op->kind != OP_STATS) {
      dispatch(m, op);
    } else {
      finish(m, op, sv, err, NULL, NULL, 0, false);
      free_op(op);
    }
  }
}

/* A connect that failed: the next address, or the server is out. */
static void connect_failed(server_t *sv, int err) {
  mc_t *m = sv->m;
  if (sv->trying && sv->next_addr < sv->naddrs && sv->qhead != NULL) {
    close_conn(sv); /* on_closed connects to the next */
    return;
  }
  sv->trying = false;
  note_out(m, sv);
  server_fail(sv, err, true);
}

static void on_connect(uv_connect_t *req, int status) {
  server_t *sv = req->data;
  mc_t *m = sv->m;
  if (status == UV_ECANCELED || m->closing || sv->state != S_CONNECTING)
    return;
  m->refs++;
  if (status < 0) {
    connect_failed(sv, status);
  } else {
    sv->state = S_UP;
    sv->trying = false;
    uv_tcp_nodelay(&sv->tcp, 1);
    int r = uv_read_start((uv_stream_t *)&sv->tcp, on_alloc, on_read);
    if (r < 0)
      server_fail(sv, r, true);
    else
      flush_server(sv);
  }
  unref_store(m);
  rt_loop_after_callback(m->base.loop);
}

static void connect_addr(server_t *sv, unsigned i) {
  mc_t *m = sv->m;
  const struct sockaddr *a = (const struct sockaddr *)&sv->addr[i];
  sv->next_addr = i + 1;
  if (uv_tcp_init(m->uv, &sv->tcp) != 0) {
    note_out(m, sv);
    server_fail(sv, UV_ENOMEM, true);
    return;
  }
  sv->tcp.data = sv;
  sv->handle_open = true;
  m->refs++;
  sv->state = S_CONNECTING;
  sv->creq.data = sv;
  int r = uv_tcp_connect(&sv->creq, &sv->tcp, a, on_connect);
  if (r < 0) {
    sv->next_addr = sv->naddrs; /* the others would fail alike */
    connect_failed(sv, r);
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  server_t *sv = req->data;
  mc_t *m = sv->m;
  sv->gai_busy = false;
  bool wanted = sv->state == S_RESOLVING && !m->closing;
  if (wanted && status == UV_EAI_CANCELED) {
    /* Cancelled by a failure, then wanted again: a new lookup. */
    sv->state = S_IDLE;
    wanted = false;
  }
  if (wanted) {
    sv->naddrs = 0;
    for (struct addrinfo *ai = res; status == 0 && ai != NULL &&
                                    sv->naddrs < MAX_ADDRS;
         ai = ai->ai_next)
      if (ai->ai_addrlen <= sizeof sv->addr[0] &&
          (ai->ai_family == AF_INET || ai->ai_family == AF_INET6))
        memcpy(&sv->addr[sv->naddrs++], ai->ai_addr, ai->ai_addrlen);
  }
  uv_freeaddrinfo(res);
  m->refs++;
  if (wanted) {
    sv->state = S_IDLE;
    if (sv->naddrs == 0) {
      note_out(m, sv);
      server_fail(sv, UV_EHOSTUNREACH, true);
    } else if (sv->qhead != NULL) {
      sv->trying = true;
      connect_addr(sv, 0);
    }
  } else if (!m->closing && sv->state == S_IDLE && sv->qhead != NULL) {
    try_connect(sv); /* cancelled by a failure, then queued again */
  }
  unref_store(m);
  rt_loop_after_callback(m->base.loop);
  unref_store(m); /* the resolve's */
}

/* Makes SV's connection (it is IDLE and has ops queued): to its address,
 * to the next of its host's addresses, or after resolving its host. */
static void try_connect(server_t *sv) {
  mc_t *m = sv->m;
  if (sv->state != S_IDLE || sv->qhead == NULL)
    return;
  if (sv->numeric) {
    connect_addr(sv, 0);
    return;
  }
  if (sv->trying && sv->next_addr < sv->naddrs) {
    connect_addr(sv, sv->next_addr);
    return;
  }
  sv->state = S_RESOLVING;
  if (sv->gai_busy)
    return; /* the one in flight will do */
  char port[8];
  snprintf(port, sizeof port, "%d", sv->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  sv->gai.data = sv;
  if (uv_getaddrinfo(m->uv, &sv->gai, on_resolved, sv->host, port, &hints) !=
      0) {
    sv->state = S_IDLE;
    note_out(m, sv);
    server_fail(sv, UV_EHOSTUNREACH, true);
    return;
  }
  sv->gai_busy = true;
  m->refs++;
}

/* Queues OP on SV (INV(queue)); its connection is made, or its request
 * written, at the next tick (so never inside a call).  0, or -ENOMEM. */
static int enqueue(server_t *sv, op_t *op) {
  if (encode(sv, op) < 0)
    return -ENOMEM;
  op->server = sv->idx;
  op->qnext = NULL;
  if (sv->qtail != NULL)
    sv->qtail->qnext = op;
  else
    sv->qhead = op;
  sv->qtail = op;
  set_ref(sv);
  if (sv->state == S_IDLE || sv->state == S_UP)
    schedule_flush(sv->m);
  return 0;
}

/* What an op is told when the ring is empty. */
static const char *all_down(const mc_t *m, char *buf, size_t cap) {
  snprintf(buf, cap, "every server is down (tried again every %" PRIu64 " s)",
           m->retry_s);
  return buf;
}

/* OP (unanswered, in no queue) to its key's server; with the ring empty it
 * fails with what its last attempt met.  The caller holds a reference. */
static void dispatch(mc_t *m, op_t *op) {
  server_t *sv = owner(m, op);
  if (sv != NULL && enqueue(sv, op) == 0)
    return;
  if (sv != NULL) {
    finish(m, op, sv, -ENOMEM, NULL, NULL, 0, false);
  } else if (op->last_err != 0) {
    finish(m, op, &m->servers[op->last_server], op->last_err, NULL, NULL, 0,
           false);
  } else {
    char why[64];
    finish(m, op, NULL, -ENOTCONN, all_down(m, why, sizeof why), NULL, 0,
           false);
  }
  free_op(op);
}

/* --- Replies -------------------------------------------------------------- */

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  server_t *sv = hd->data;
  (void)suggested;
  if (sv->icap - sv->ilen < READ_CHUNK / 4 &&
      reserve(&sv->in, &sv->icap, sv->ilen + READ_CHUNK) < 0) {
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
    return;
  }
  *buf = uv_buf_init(sv->in + sv->ilen, (unsigned)(sv->icap - sv->ilen));
}

static bool starts(const char *line, size_t n, const char *word) {
  size_t w = strlen(word);
  return n >= w && memcmp(line, word, w) == 0 &&
         (n == w || line[w] == ' ');
}

/* The code for a SERVER_ERROR line's text. */
static int server_error_code(const char *line, size_t n) {
  if (memmem(line, n, "too large", 9) != NULL)
    return -E2BIG;
  if (memmem(line, n, "out of memory", 13) != NULL)
    return -ENOSPC;
  return -EIO;
}

/* SV answered: it is not down (a reconnect if it was) nor timing out. */
static void answered_by(server_t *sv) {
  sv->timeouts = 0;
  if (sv->down) {
    sv->down = false;
    sv->m->st.reconnects++;
  }
}

/* One reply for the queue's head, parsed from SV's input at *POS: 1 if it
 * was whole (answered, *POS past it), 0 if more input is needed, or a
 * negative code if it is not a reply to that op (out of step). */
static int parse_reply(server_t *sv, size_t *pos) {
  mc_t *m = sv->m;
  op_t *op = sv->qhead;
  const char *p = sv->in + *pos;
  size_t avail = sv->ilen - *pos;
  const char *nl = memchr(p, '\n', avail);
  if (nl == NULL)
    return avail > LINE_MAX_BYTES ? -EPROTO : 0;
  if (nl == p || nl[-1] != '\r')
    return -EPROTO;
  size_t n = (size_t)(nl - p) - 1, used = n + 2;
  if (op == NULL)
    return -EPROTO; /* nothing was asked */
  int err = 0;
  bool hit = false;
  const char *val = NULL;
  size_t vlen = 0;
  if (op->kind == OP_STATS) {
    /* STAT lines up to END, summed as they come (the op keeps them). */
    size_t at = *pos;
    uint64_t items = 0, bytes = 0;
    for (;;) {
      const char *l = sv->in + at;
      const char *e = memchr(l, '\n', sv->ilen - at);
      if (e == NULL)
        return sv->ilen - at > LINE_MAX_BYTES ? -EPROTO : 0;
      size_t ln = (size_t)(e - l);
      if (ln == 0 || l[ln - 1] != '\r')
        return -EPROTO;
      ln--;
      at += ln + 2;
      if (starts(l, ln, "END"))
        break;
      if (starts(l, ln, "STAT curr_items"))
        items = strtoull(l + 16, NULL, 10);
      else if (starts(l, ln, "STAT bytes"))
        bytes = strtoull(l + 11, NULL, 10);
      else if (!starts(l, ln, "STAT"))
        return -EPROTO;
    }
    *pos = at;
    sv->qhead = op->qnext;
    if (sv->qhead == NULL)
      sv->qtail = NULL;
    answered_by(sv);
    if (!op->answered) {
      op->answered = true;
      unlink_op(m, op);
      sample_part(m, true, items, bytes);
    }
    free_op(op);
    return 1;
  }
  if (starts(p, n, "VA") && op->kind == OP_GET) {
    char *end;
    unsigned long long len = strtoull(p + 3, &end, 10);
    if (end == p + 3 || len > MAX_VALUE)
      return -EPROTO;
    if (avail < used + len + 2) {
      /* Room for the whole value, read by the next reads. */
      if (reserve(&sv->in, &sv->icap, *pos + used + len + 2 + READ_CHUNK) < 0)
        return -ENOMEM;
      return 0;
    }
    p = sv->in + *pos; /* reserve may have moved it */
    if (memcmp(p + used + len, "\r\n", 2) != 0)
      return -EPROTO;
    val = p + used;
    vlen = (size_t)len;
    used += (size_t)len + 2;
    hit = true;
  } else if (starts(p, n, "EN") &&
             (op->kind == OP_GET || op->kind == OP_TOUCH)) {
    err = op->kind == OP_TOUCH ? -ENOENT : 0;
  } else if ((starts(p, n, "HD") || starts(p, n, "OK")) &&
             op->kind != OP_GET) {
    hit = true; /* del: one was there */
  } else if (starts(p, n, "NF") && op->kind == OP_DEL) {
    err = 0; /* deleting what is not there is not an error */
  } else if (starts(p, n, "NS") && op->kind == OP_SET) {
    err = -EIO;
  } else if (starts(p, n, "SERVER_ERROR")) {
    err = server_error_code(p, n);
  } else if (starts(p, n, "ERROR")) {
    return -ENOSYS; /* a command the server does not know */
  } else {
    return -EPROTO; /* CLIENT_ERROR, or not a reply to this op */
  }
  sv->qhead = op->qnext;
  if (sv->qhead == NULL)
    sv->qtail = NULL;
  answered_by(sv);
  if (!op->answered)
    finish(m, op, sv, err, err == -EIO ? "the server did not store it" : NULL,
           val, vlen, hit);
  free_op(op);
  *pos += used;
  return 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  server_t *sv = s->data;
  mc_t *m = sv->m;
  (void)buf;
  if (nread == 0 || m->closing || sv->state != S_UP)
    return;
  m->refs++;
  if (nread < 0) {
    if (sv->qhead != NULL)
      sv->down = true; /* ops it owed replies: its next one is a reconnect */
    server_fail(sv, nread == UV_EOF ? UV_ECONNRESET : (int)nread, true);
  } else {
    sv->ilen += (size_t)nread;
    size_t pos = 0;
    int r;
    while (!m->closing && sv->state == S_UP &&
           (r = parse_reply(sv, &pos)) > 0)
      ;
    if (m->closing || sv->state != S_UP) {
      /* closed from a callback: its input goes with it */
    } else if (r < 0) {
      /* Out of step: the head is answered with the error and the
       * connection closed; the ops behind it are tried again on a new one
       * (unless the server does not speak the meta protocol at all). */
      op_t *op = sv->qhead;
      const char *why =
          r == -ENOSYS ? "no meta protocol (not memcached 1.6+)"
          : r == -ENOMEM ? NULL
                         : "a reply not understood";
      if (op != NULL) {
        sv->qhead = op->qnext;
        if (sv->qhead == NULL)
          sv->qtail = NULL;
        if (!op->answered)
          finish(m, op, sv, r == -ENOMEM ? -ENOMEM : -EPROTO, why, NULL, 0,
                 false);
        free_op(op);
      }
      if (!m->closing)
        server_fail(sv, r == -ENOMEM ? UV_ENOMEM : UV_EPROTO, r != -ENOSYS);
    } else {
      memmove(sv->in, sv->in + pos, sv->ilen - pos);
      sv->ilen -= pos;
      if (sv->ilen == 0 && sv->icap > KEEP_BUFFER) {
        free(sv->in);
        sv->in = NULL;
        sv->icap = 0;
      }
      set_ref(sv);
      if (!m->sample_tried)
        sample_start(m); /* the first, once the store has been to a server */
    }
  }
  unref_store(m);
  rt_loop_after_callback(m->base.loop);
}

/* --- Deadlines ------------------------------------------------------------ */

static void on_deadline(uv_timer_t *t);

static void arm(mc_t *m) {
  if (m->closing || m->head == NULL)
    return;
  uint64_t now = uv_now(m->uv);
  uint64_t d = m->head->deadline > now ? m->head->deadline - now : 0;
  uv_timer_start(&m->deadline, on_deadline, d, 0);
}

/* Overdue ops are answered -ETIMEDOUT.  The connection they were queued on
 * may owe their replies: it is closed and the ops behind them are tried
 * again; TIMEOUT_LIMIT deadlines in a row take its server out of the ring
 * (not the last one in it). */
static void on_deadline(uv_timer_t *t) {
  mc_t *m = t->data;
  uint64_t now = uv_now(m->uv);
  m->refs++; /* a callback may close the store */
  char why[48];
  snprintf(why, sizeof why, "no answer within %" PRIu64 " ms", m->timeout_ms);
  while (!m->closing && m->head != NULL && m->head->deadline <= now) {
    op_t *op = m->head;
    server_t *sv = &m->servers[op->server];
    sv->timed_out = true;
    finish(m, op, sv, -ETIMEDOUT, why, NULL, 0, false);
  }
  for (size_t i = 0; i < m->nservers && !m->closing; i++) {
    server_t *sv = &m->servers[i];
    if (!sv->timed_out)
      continue;
    sv->timed_out = false;
    if (++sv->timeouts >= TIMEOUT_LIMIT && sv->out_until == 0 &&
        in_ring(m) > 1)
      note_out(m, sv);
    server_fail(sv, UV_ETIMEDOUT, true);
  }
  arm(m);
  unref_store(m);
  rt_loop_after_callback(m->base.loop);
}

static void link_op(mc_t *m, op_t *op) {
  uv_update_time(m->uv); /* the deadline counts from the call */
  op->deadline = uv_now(m->uv) + m->timeout_ms;
  op->prev = m->tail;
  if (m->tail != NULL)
    m->tail->next = op;
  else
    m->head = op;
  m->tail = op;
  if (m->head == op)
    arm(m);
}

/* --- Entries and bytes ---------------------------------------------------- */

/* A sample (cache.h): `stats` on every server in the ring, curr_items and
 * bytes summed.  Its parts are ops like the others (queued, timed out,
 * cancelled alike) that answer no one and count in no counter; any part
 * failing fails the sample (the previous figures stay), and so does an
 * empty ring. */
static void sample_start(mc_t *m) {
  if (m->closing || m->sampling)
    return;
  m->sample_tried = true;
  m->sample_wanted = false;
  ring_refresh(m);
  m->sample = (sample_t){.started_us = cache__now_us()};
  m->sampling = true;
  m->sample.pending = 1; /* held while the parts are queued */
  for (size_t i = 0; i < m->nservers; i++) {
    server_t *sv = &m->servers[i];
    if (sv->out_until != 0)
      continue;
    op_t *op = calloc(1, sizeof *op);
    if (op == NULL) {
      m->sample.failed = true;
      break;
    }
    op->m = m;
    op->kind = OP_STATS;
    op->last_server = -1;
    link_op(m, op);
    m->sample.pending++;
    if (enqueue(sv, op) < 0) {
      finish(m, op, sv, -ENOMEM, NULL, NULL, 0, false);
      free_op(op);
    }
  }
  sample_part(m, m->sample.pending > 1, 0, 0);
}

static void sample_part(mc_t *m, bool ok, uint64_t entries, uint64_t bytes) {
  sample_t *s = &m->sample;
  if (!ok)
    s->failed = true;
  s->entries += entries;
  s->bytes += bytes;
  if (--s->pending != 0)
    return;
  m->sampling = false;
  if (s->failed)
    return;
  m->sample_entries = s->entries;
  m->sample_bytes = s->bytes;
  m->sampled_us = s->started_us;
  m->sampled = true;
}

static void on_sample_tick(uv_timer_t *t) {
  mc_t *m = t->data;
  if (m->sample_wanted && !m->sampling && !m->closing) {
    m->refs++;
    sample_start(m);
    unref_store(m);
    rt_loop_after_callback(m->base.loop);
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
static long long expiration(uint64_t ttl_ms) {
  if (ttl_ms == 0)
    return 0;
  uint64_t s = ttl_ms / 1000 + (ttl_ms % 1000 != 0);
  if (s <= MAX_RELATIVE_S)
    return (long long)s;
  uint64_t now = (uint64_t)time(NULL);
  return s > (uint64_t)MAX_EXPIRATION - now ? (long long)MAX_EXPIRATION
                                            : (long long)(now + s);
}


/* A new op: queued on its key's server, sent at the next tick. */
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
  op->get = get;
  op->done = done;
  op->data = data;
  op->json = json;
  op->jlen = jlen;
  op->expiration = expiration(ttl_ms);
  op->last_server = -1;
  server_t *sv = owner(m, op);
  int err = sv == NULL ? -ENOTCONN : 0;
  if (sv != NULL) {
    link_op(m, op);
    if ((err = enqueue(sv, op)) == 0)
      return;
    unlink_op(m, op);
  }
  if (sv == NULL) {
    char why[64];
    op_error(m, op, NULL, err, all_down(m, why, sizeof why));
  }
  free_op(op);
  answer_later(m, err, get, done, data, t0);
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

/* Every unanswered op gets -ECANCELED from the loop; the connections are
 * closed and the store freed when the last handle, resolve and queued
 * answer is done.  The queued ops are freed with it (INV(queue)). */
static void mc_close(cache_store_t *st) {
  mc_t *m = (mc_t *)st;
  if (m->closing)
    return;
  m->closing = true;
  m->refs++;
  while (m->head != NULL) {
    op_t *op = m->head;
    op->answered = true;
    unlink_op(m, op);
    if (op->kind != OP_STATS) /* a sample answers no one */
      answer_later(m, -ECANCELED, op->get, op->done, op->data, op->t0);
  }
  m->sampling = false;
  for (size_t i = 0; i < m->nservers; i++)
    close_conn(&m->servers[i]);
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

#define URL_FORM "memcached://host[:port][,host[:port]...][?timeout-ms=N&retry-s=N]"

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
                     uint64_t *timeout, uint64_t *retry,
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
    if (dst == NULL) {
      snprintf(err, errlen,
               "memcached://: unknown parameter %.*s (known: "
               "timeout-ms, retry-s)",
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


static int mc_open(rt_loop_t *loop, const char *url, cache_store_t **out,
                   char *err, size_t errlen) {
  server_t *servers = calloc(MAX_SERVERS, sizeof *servers);
  if (servers == NULL)
    return -ENOMEM;
  size_t n = 0;
  uint64_t timeout = DEFAULT_TIMEOUT_MS, retry = DEFAULT_RETRY_S;
  int r = parse_url(url, servers, &n, &timeout, &retry, err, errlen);
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
  for (size_t i = 0; i < n; i++) {
    server_t *sv = &servers[i];
    sv->m = m;
    sv->idx = (int)i;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(sv->host, sv->port, &a4) == 0) {
      memcpy(&sv->addr[0], &a4, sizeof a4);
      sv->numeric = true;
      sv->naddrs = 1;
    } else if (uv_ip6_addr(sv->host, sv->port, &a6) == 0) {
      memcpy(&sv->addr[0], &a6, sizeof a6);
      sv->numeric = true;
      sv->naddrs = 1;
    }
  }
  if (build_ring(m) < 0) {
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
