/* memory.c -- memory://, the embedded default store: an LRU bounded by
 * entry count and by bytes, with per-entry TTLs expired lazily (a read of
 * an expired entry is a miss) and periodically (a timer sweeps part of the
 * table every second).
 *
 * Entries hold their value as JSON text off the heap, counted as the
 * heap's external memory (gc_external_adjust, as Buffers are): a stored
 * value is never an alias of a live one, costs the collector nothing at a
 * scavenge (no roots, no remembered slots however many entries there
 * are), and its size is exact.  A read parses the text into new values.
 *
 * INV(bounds): after every set, entries <= max_entries and bytes <=
 * max_bytes (least recently used entries go first); an entry larger than
 * max_bytes by itself is refused (-E2BIG).
 * INV(lru): every entry is in its hash chain and in the LRU list, most
 * recently used at the head.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <tenure/cache.h>

#include "cache_internal.h"

#define DEFAULT_MAX_ENTRIES 100000
#define DEFAULT_MAX_BYTES (64u << 20)
#define ENTRY_OVERHEAD 64     /* counted per entry beside key and text */
#define SWEEP_MS 1000         /* the expiry sweep's period */
#define SWEEP_BUCKETS 4096    /* buckets looked at per sweep */

typedef struct entry_s {
  struct entry_s *hnext;
  struct entry_s *prev, *next; /* LRU */
  uint64_t expires;            /* uv_now ms; 0: never */
  char *json;
  size_t json_len;
  uint32_t hash, klen;
  char key[];
} entry_t;

typedef struct mem_s {
  cache_store_t base;
  rt_runtime_t *rt;
  gc_heap_t *h;
  uv_loop_t *uv;
  entry_t **buckets;
  size_t nbuckets, n;
  entry_t *head, *tail;
  uint64_t bytes, max_entries, max_bytes;
  cache_stats_t st;
  uv_timer_t sweep;
  size_t sweep_at;
  size_t pending; /* callbacks queued, not yet run */
  bool closing;
} mem_t;

/* --- Table and LRU ----------------------------------------------------------- */

static size_t entry_bytes(const entry_t *e) {
  return ENTRY_OVERHEAD + e->klen + e->json_len;
}

static void lru_unlink(mem_t *m, entry_t *e) {
  if (e->prev != NULL)
    e->prev->next = e->next;
  else
    m->head = e->next;
  if (e->next != NULL)
    e->next->prev = e->prev;
  else
    m->tail = e->prev;
  e->prev = e->next = NULL;
}

static void lru_push(mem_t *m, entry_t *e) {
  e->prev = NULL;
  e->next = m->head;
  if (m->head != NULL)
    m->head->prev = e;
  else
    m->tail = e;
  m->head = e;
}

static entry_t **find(mem_t *m, const char *key, size_t klen, uint32_t h) {
  entry_t **pp = &m->buckets[h & (m->nbuckets - 1)];
  while (*pp != NULL && !((*pp)->hash == h && (*pp)->klen == klen &&
                          memcmp((*pp)->key, key, klen) == 0))
    pp = &(*pp)->hnext;
  return pp;
}

/* Unlinks and frees *PP's entry. */
static void remove_at(mem_t *m, entry_t **pp) {
  entry_t *e = *pp;
  *pp = e->hnext;
  lru_unlink(m, e);
  size_t b = entry_bytes(e);
  m->bytes -= b;
  m->n--;
  gc_external_adjust(m->h, -(int64_t)b);
  free(e->json);
  free(e);
}

static void remove_entry(mem_t *m, entry_t *e) {
  remove_at(m, find(m, e->key, e->klen, e->hash));
}

static int grow(mem_t *m) {
  size_t nb = m->nbuckets * 2;
  entry_t **b = calloc(nb, sizeof *b);
  if (b == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < m->nbuckets; i++) {
    entry_t *e = m->buckets[i];
    while (e != NULL) {
      entry_t *next = e->hnext;
      e->hnext = b[e->hash & (nb - 1)];
      b[e->hash & (nb - 1)] = e;
      e = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->nbuckets = nb;
  return 0;
}

static bool expired(mem_t *m, const entry_t *e) {
  return e->expires != 0 && e->expires <= uv_now(m->uv);
}

/* --- Answers, always from the loop ---------------------------------------------- */

enum { OP_GET, OP_DONE, OP_GET_JSON };

typedef struct op_s {
  mem_t *m;
  int kind, err;
  cache_get_fn get;
  cache_done_fn done;
  void *data;
  uint64_t t0; /* cache__latency_start() at the call (0: not timed) */
  cache_get_json_fn jget; /* OP_GET_JSON: */
  bool found;             /* a hit: text[0 .. tlen) is its copy */
  size_t tlen;
  char text[];
} op_t;

static void free_store(mem_t *m) {
  for (size_t i = 0; i < m->nbuckets; i++) {
    entry_t *e = m->buckets[i];
    while (e != NULL) {
      entry_t *next = e->hnext;
      gc_external_adjust(m->h, -(int64_t)entry_bytes(e));
      free(e->json);
      free(e);
      e = next;
    }
  }
  free(m->buckets);
  free(m);
}

static void on_sweep_closed(uv_handle_t *hd) {
  mem_t *m = hd->data;
  if (m->pending == 0)
    free_store(m);
  else
    m->sweep.data = NULL; /* the last answer frees it */
}

static void run_op(rt_loop_t *loop, void *data, rt_value_t *args,
                   size_t nargs) {
  op_t *op = data;
  mem_t *m = op->m;
  (void)loop;
  int err = m->closing && op->err == 0 ? -ECANCELED : op->err;
  cache__latency_record(&m->base, op->t0);
  if (op->kind == OP_GET_JSON)
    op->jget(&m->base, err, err == 0 && op->found ? op->text : NULL,
             err == 0 && op->found ? op->tlen : 0, op->data);
  else if (op->kind == OP_GET)
    op->get(&m->base, err, err == 0 && nargs > 0 && args[0] != RT_NONE
                               ? &args[0]
                               : NULL,
            op->data);
  else if (op->done != NULL)
    op->done(&m->base, err, op->data);
  free(op);
  if (--m->pending == 0 && m->closing && m->sweep.data == NULL)
    free_store(m);
}

/* Runs OP's answer from the loop (ARGS rooted until then); -ENOMEM, with
 * OP freed, when it cannot be queued. */
static int queue(mem_t *m, op_t *op, rt_value_t *args, size_t nargs) {
  if (rt_next_tick(m->base.loop, run_op, op, args, nargs) < 0) {
    free(op);
    return -ENOMEM;
  }
  m->pending++;
  return 0;
}

/* Queues the answer (VALUE: a value for a get, or RT_NONE). */
static void answer(mem_t *m, int kind, int err, cache_get_fn get,
                   cache_done_fn done, void *data, rt_value_t value) {
  op_t *op = malloc(sizeof *op);
  if (op == NULL) {
    /* Out of memory for the answer itself: answer now rather than never. */
    if (kind == OP_GET)
      get(&m->base, -ENOMEM, NULL, data);
    else if (done != NULL)
      done(&m->base, -ENOMEM, data);
    return;
  }
  *op = (op_t){.m = m, .kind = kind, .err = err, .get = get, .done = done,
               .data = data, .t0 = cache__latency_start(&m->base)};
  rt_value_t args[1] = {value};
  if (queue(m, op, args, 1) < 0) {
    if (kind == OP_GET)
      get(&m->base, -ENOMEM, NULL, data);
    else if (done != NULL)
      done(&m->base, -ENOMEM, data);
  }
}

static void fail(mem_t *m, int err, const char *msg) {
  snprintf(m->base.error, sizeof m->base.error, "memory store: %s", msg);
  (void)err;
  m->st.errors++;
}

/* --- Operations ------------------------------------------------------------------- */

/* A read of KEY: its live entry, made the most recently used, or NULL
 * (an expired entry is removed); counted as a hit or a miss. */
static entry_t *lookup(mem_t *m, const char *key, size_t klen) {
  uint32_t h = cache__hash_key(key, klen);
  entry_t **pp = find(m, key, klen, h);
  if (*pp != NULL && expired(m, *pp)) {
    remove_at(m, pp);
    m->st.expirations++;
  }
  entry_t *e = *pp;
  if (e == NULL) {
    m->st.misses++;
    return NULL;
  }
  m->st.hits++;
  lru_unlink(m, e);
  lru_push(m, e);
  return e;
}

static void mem_get(cache_store_t *st, const char *key, size_t klen,
                    cache_get_fn fn, void *data) {
  mem_t *m = (mem_t *)st;
  entry_t *e = lookup(m, key, klen);
  if (e == NULL) {
    answer(m, OP_GET, 0, fn, NULL, data, RT_NONE);
    return;
  }
  /* GC point: the text is off the heap, so parsing cannot move it. */
  gc_scope_t sc;
  gc_scope_open(m->h, &sc);
  rt_value_t *v = rt_handle(m->h, RT_NONE);
  rt_json_error_t je;
  int err = rt_json_parse(m->rt, e->json, e->json_len, NULL, v, &je);
  if (err < 0)
    fail(m, err, "a stored value does not parse");
  answer(m, OP_GET, err, fn, NULL, data, err == 0 ? *v : RT_NONE);
  gc_scope_close(m->h, &sc);
}

/* The stored text itself (valid JSON: the store wrote it), copied into
 * the answer so that a set or an eviction before it runs changes
 * nothing. */
static void mem_get_json(cache_store_t *st, const char *key, size_t klen,
                         cache_get_json_fn fn, void *data) {
  mem_t *m = (mem_t *)st;
  entry_t *e = lookup(m, key, klen);
  size_t tlen = e != NULL ? e->json_len : 0;
  op_t *op = malloc(sizeof *op + tlen);
  if (op == NULL) {
    fn(st, -ENOMEM, NULL, 0, data); /* as answer(): now rather than never */
    return;
  }
  *op = (op_t){.m = m, .kind = OP_GET_JSON, .jget = fn, .data = data,
               .t0 = cache__latency_start(&m->base), .found = e != NULL,
               .tlen = tlen};
  if (e != NULL)
    memcpy(op->text, e->json, tlen);
  if (queue(m, op, NULL, 0) < 0)
    fn(st, -ENOMEM, NULL, 0, data);
}

static void evict(mem_t *m) {
  while (m->tail != NULL &&
         ((m->max_entries != 0 && m->n > m->max_entries) ||
          (m->max_bytes != 0 && m->bytes > m->max_bytes))) {
    remove_entry(m, m->tail);
    m->st.evictions++;
  }
}

static void mem_set(cache_store_t *st, const char *key, size_t klen,
                    const rt_value_t *value, uint64_t ttl_ms,
                    cache_done_fn fn, void *data) {
  mem_t *m = (mem_t *)st;
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  int err = value != NULL ? rt_json_stringify(m->rt, *value, NULL, &b)
                          : -EINVAL;
  if (err < 0) {
    rt_strbuf_free(&b);
    fail(m, err, "the value has no JSON form");
    answer(m, OP_DONE, err, NULL, fn, data, RT_NONE);
    return;
  }
  if (klen > UINT32_MAX ||
      (m->max_bytes != 0 && ENTRY_OVERHEAD + klen + b.len > m->max_bytes)) {
    rt_strbuf_free(&b);
    fail(m, -E2BIG, "an entry larger than max-bytes");
    answer(m, OP_DONE, -E2BIG, NULL, fn, data, RT_NONE);
    return;
  }
  uint32_t h = cache__hash_key(key, klen);
  entry_t **pp = find(m, key, klen, h);
  if (*pp != NULL)
    remove_at(m, pp);
  entry_t *e = malloc(sizeof *e + klen);
  if (e == NULL) {
    rt_strbuf_free(&b);
    answer(m, OP_DONE, -ENOMEM, NULL, fn, data, RT_NONE);
    return;
  }
  memcpy(e->key, key, klen);
  e->klen = (uint32_t)klen;
  e->hash = h;
  e->json = b.data; /* the entry takes the text */
  e->json_len = b.len;
  e->expires = ttl_ms != 0 ? uv_now(m->uv) + ttl_ms : 0;
  pp = &m->buckets[h & (m->nbuckets - 1)];
  e->hnext = *pp;
  *pp = e;
  lru_push(m, e);
  m->n++;
  m->bytes += entry_bytes(e);
  gc_external_adjust(m->h, (int64_t)entry_bytes(e));
  m->st.sets++;
  evict(m);
  if (m->n > m->nbuckets)
    grow(m); /* a failure leaves longer chains, nothing worse */
  answer(m, OP_DONE, 0, NULL, fn, data, RT_NONE);
}

static void mem_del(cache_store_t *st, const char *key, size_t klen,
                    cache_done_fn fn, void *data) {
  mem_t *m = (mem_t *)st;
  entry_t **pp = find(m, key, klen, cache__hash_key(key, klen));
  if (*pp != NULL) {
    remove_at(m, pp);
    m->st.deletes++;
  }
  answer(m, OP_DONE, 0, NULL, fn, data, RT_NONE);
}

static void mem_touch(cache_store_t *st, const char *key, size_t klen,
                      uint64_t ttl_ms, cache_done_fn fn, void *data) {
  mem_t *m = (mem_t *)st;
  entry_t **pp = find(m, key, klen, cache__hash_key(key, klen));
  if (*pp != NULL && expired(m, *pp)) {
    remove_at(m, pp);
    m->st.expirations++;
  }
  int err = -ENOENT;
  if (*pp != NULL) {
    (*pp)->expires = ttl_ms != 0 ? uv_now(m->uv) + ttl_ms : 0;
    lru_unlink(m, *pp);
    lru_push(m, *pp);
    err = 0;
  }
  answer(m, OP_DONE, err, NULL, fn, data, RT_NONE);
}

static void mem_stats(cache_store_t *st, cache_stats_t *out) {
  mem_t *m = (mem_t *)st;
  *out = m->st;
  out->entries = m->n;
  out->bytes = m->bytes;
  out->max_entries = m->max_entries;
  out->max_bytes = m->max_bytes;
}

/* The periodic part of expiry: SWEEP_BUCKETS buckets a second, round robin,
 * so a store nobody reads still lets its expired entries go. */
static void on_sweep(uv_timer_t *t) {
  mem_t *m = t->data;
  uint64_t now = uv_now(m->uv);
  for (size_t k = 0; k < SWEEP_BUCKETS && k < m->nbuckets; k++) {
    size_t i = (m->sweep_at + k) & (m->nbuckets - 1);
    entry_t **pp = &m->buckets[i];
    while (*pp != NULL) {
      if ((*pp)->expires != 0 && (*pp)->expires <= now) {
        remove_at(m, pp);
        m->st.expirations++;
      } else {
        pp = &(*pp)->hnext;
      }
    }
  }
  m->sweep_at = (m->sweep_at + SWEEP_BUCKETS) & (m->nbuckets - 1);
}

static void mem_close(cache_store_t *st) {
  mem_t *m = (mem_t *)st;
  if (m->closing)
    return;
  m->closing = true;
  uv_close((uv_handle_t *)&m->sweep, on_sweep_closed);
}

/* --- Opening ----------------------------------------------------------------------- */

/* "123", "64k", "64kb", "16m", "1g" (powers of 1024). */
static int parse_size(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  size_t i = 0;
  if (n == 0)
    return -EINVAL;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    if (v > UINT64_MAX / 10 - 9)
      return -EINVAL;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (i == 0)
    return -EINVAL;
  uint64_t mul = 1;
  if (i < n) {
    char u = (char)(s[i] | 0x20);
    mul = u == 'k' ? 1u << 10 : u == 'm' ? 1u << 20 : u == 'g' ? 1u << 30 : 0;
    i++;
    if (i < n && (s[i] | 0x20) == 'b')
      i++;
    if (mul == 0 || i != n)
      return -EINVAL;
  }
  if (v > UINT64_MAX / mul)
    return -EINVAL;
  *out = v * mul;
  return 0;
}

static int mem_open(rt_loop_t *loop, const char *url, cache_store_t **out,
                    char *err, size_t errlen) {
  uint64_t max_entries = DEFAULT_MAX_ENTRIES, max_bytes = DEFAULT_MAX_BYTES;
  const char *q = strchr(url, '?');
  const char *rest = strstr(url, "://");
  rest = rest != NULL ? rest + 3 : url;
  if ((q != NULL ? (size_t)(q - rest) : strlen(rest)) != 0) {
    snprintf(err, errlen, "memory:// takes no host or path: %s", url);
    return -EINVAL;
  }
  for (const char *p = q != NULL ? q + 1 : NULL; p != NULL && *p;) {
    const char *amp = strchr(p, '&');
    size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    if (eq == NULL) {
      snprintf(err, errlen, "memory://: %.*s has no value", (int)n, p);
      return -EINVAL;
    }
    size_t kl = (size_t)(eq - p), vl = n - kl - 1;
    uint64_t v;
    if (parse_size(eq + 1, vl, &v) < 0) {
      snprintf(err, errlen, "memory://: %.*s is not a size", (int)n, p);
      return -EINVAL;
    }
    if (kl == 11 && memcmp(p, "max-entries", 11) == 0)
      max_entries = v;
    else if (kl == 9 && memcmp(p, "max-bytes", 9) == 0)
      max_bytes = v;
    else {
      snprintf(err, errlen, "memory://: unknown parameter %.*s", (int)kl, p);
      return -EINVAL;
    }
    p = amp != NULL ? amp + 1 : NULL;
  }
  if (max_entries == 0 || max_bytes == 0) {
    snprintf(err, errlen, "memory://: the bounds must not be 0 (a store "
                          "without a bound is a leak)");
    return -EINVAL;
  }
  mem_t *m = calloc(1, sizeof *m);
  if (m == NULL)
    return -ENOMEM;
  m->nbuckets = 1024;
  m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
  if (m->buckets == NULL) {
    free(m);
    return -ENOMEM;
  }
  m->base.type = &cache_memory_type;
  m->base.loop = loop;
  m->rt = rt_loop_runtime(loop);
  m->h = rt_heap(m->rt);
  m->uv = rt_loop_uv(loop);
  m->max_entries = max_entries;
  m->max_bytes = max_bytes;
  uv_timer_init(m->uv, &m->sweep);
  m->sweep.data = m;
  uv_timer_start(&m->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  uv_unref((uv_handle_t *)&m->sweep); /* never keeps the loop alive */
  *out = &m->base;
  return 0;
}

const cache_store_type_t cache_memory_type = {
    .scheme = "memory",
    .open = mem_open,
    .get = mem_get,
    .set = mem_set,
    .del = mem_del,
    .touch = mem_touch,
    .stats = mem_stats,
    .close = mem_close,
    .get_json = mem_get_json,
};
