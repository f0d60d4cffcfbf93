/* compute.c -- cache_get_or_compute: a miss computes once (single-flight).
 *
 * Flights are kept per store (in its header) in a small list keyed by the
 * key (they are few: one per key being looked up or computed right now).
 * A flight starts with the first caller for its key: it asks the store
 * once for everyone; callers who come while it asks or computes join it.
 * A hit answers every waiter with the value; a miss (or a store error:
 * computing still answers) runs the first caller's compute, once, and
 * cache_compute_done answers them all.  So 1,000 callers who miss at once
 * compute once however the store's answers to them would have been spread
 * out (a remote store answers a burst of gets in several rounds).
 *
 * Waiters want the value (cache_get_or_compute) or its JSON text
 * (cache_get_or_compute_json).  The flight asks the store in the first
 * caller's form; a hit in one form is converted once for the waiters of
 * the other, and a computed value is written once for the text waiters.
 *
 * INV(flight): a flight is on the list from its start until it is answered
 * (by the store's hit, or by cache_compute_done); every waiter on it is
 * answered exactly once.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/cache.h>
#include <tenure/rt_json.h>
#include <tenure/rt_string.h>

typedef struct waiter_s {
  cache_value_fn fn; /* one of the two is set */
  cache_json_fn jfn;
  void *data;
} waiter_t;

struct cache_flight_s {
  cache_flight_t *next;
  cache_store_t *st;
  uint64_t ttl_ms;
  cache_compute_fn compute; /* the first caller's */
  void *cdata;
  waiter_t *w; /* &first until a second waiter joins */
  size_t nw, cap;
  waiter_t first; /* a hit usually has one waiter: no array to allocate */
  size_t klen;
  char key[];
};

static cache_flight_t *find(cache_store_t *st, const char *key, size_t klen) {
  for (cache_flight_t *f = st->flights; f != NULL; f = f->next)
    if (f->st == st && f->klen == klen && memcmp(f->key, key, klen) == 0)
      return f;
  return NULL;
}

static int join(cache_flight_t *f, cache_value_fn fn, cache_json_fn jfn,
                void *data) {
  if (f->nw == f->cap) {
    size_t nc = f->cap * 2 > 4 ? f->cap * 2 : 4;
    bool inline_w = f->w == &f->first;
    waiter_t *w = realloc(inline_w ? NULL : f->w, nc * sizeof *w);
    if (w == NULL)
      return -ENOMEM;
    if (inline_w)
      w[0] = f->first;
    f->w = w;
    f->cap = nc;
  }
  f->w[f->nw++] = (waiter_t){fn, jfn, data};
  return 0;
}

static void unlist(cache_flight_t *f) {
  for (cache_flight_t **pp = &f->st->flights; *pp != NULL; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
}

static void answer_error(cache_flight_t *f, int err) {
  for (size_t i = 0; i < f->nw; i++)
    if (f->w[i].fn != NULL)
      f->w[i].fn(f->st, err, NULL, false, f->w[i].data);
    else
      f->w[i].jfn(f->st, err, NULL, 0, false, f->w[i].data);
}

static void done(cache_flight_t *f) {
  if (f->w != &f->first)
    free(f->w);
  free(f);
}

/* Answers every waiter with the value *V (V NULL: none, not an error);
 * the text waiters with it written once. */
static void answer_value(cache_flight_t *f, rt_value_t *v, bool hit) {
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  int terr = 1; /* not written yet */
  for (size_t i = 0; i < f->nw; i++) {
    if (f->w[i].fn != NULL) {
      f->w[i].fn(f->st, 0, v, hit, f->w[i].data);
      continue;
    }
    if (terr == 1)
      terr = v == NULL ? 0
                       : rt_json_stringify(rt_loop_runtime(f->st->loop), *v,
                                           NULL, &b);
    bool text = terr == 0 && v != NULL;
    f->w[i].jfn(f->st, terr, text ? b.data : NULL, text ? b.len : 0, hit,
                f->w[i].data);
  }
  rt_strbuf_free(&b);
  done(f);
}

/* Answers every waiter with the text JSON; the value waiters with it
 * parsed once. */
static void answer_text(cache_flight_t *f, const char *json, size_t len) {
  rt_runtime_t *rt = rt_loop_runtime(f->st->loop);
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *v = NULL;
  int verr = 1; /* not parsed yet */
  for (size_t i = 0; i < f->nw; i++) {
    if (f->w[i].jfn != NULL) {
      f->w[i].jfn(f->st, 0, json, len, true, f->w[i].data);
      continue;
    }
    if (verr == 1) {
      v = rt_handle(h, RT_NONE);
      verr = rt_json_parse(rt, json, len, NULL, v, NULL);
    }
    f->w[i].fn(f->st, verr, verr == 0 ? v : NULL, true, f->w[i].data);
  }
  gc_scope_close(h, &sc);
  done(f);
}

static void on_get(cache_store_t *st, int err, rt_value_t *v, void *data) {
  cache_flight_t *f = data;
  (void)st;
  if (err == 0 && v != NULL) {
    unlist(f);
    answer_value(f, v, true);
    return;
  }
  f->compute(f, f->key, f->klen, f->cdata);
}

static void on_get_json(cache_store_t *st, int err, const char *json,
                        size_t len, void *data) {
  cache_flight_t *f = data;
  (void)st;
  if (err == 0 && json != NULL) {
    unlist(f);
    answer_text(f, json, len);
    return;
  }
  f->compute(f, f->key, f->klen, f->cdata);
}

/* Starts a flight for KEY with its first waiter, and asks the store in
 * that waiter's form; NULL when out of memory. */
static cache_flight_t *start(cache_store_t *st, const char *key, size_t klen,
                             uint64_t ttl_ms, cache_compute_fn compute,
                             void *cdata, cache_value_fn fn,
                             cache_json_fn jfn, void *data) {
  cache_flight_t *f = malloc(sizeof *f + klen);
  if (f == NULL)
    return NULL;
  f->first = (waiter_t){fn, jfn, data};
  f->w = &f->first;
  f->nw = f->cap = 1;
  f->st = st;
  f->ttl_ms = ttl_ms;
  f->compute = compute;
  f->cdata = cdata;
  f->klen = klen;
  memcpy(f->key, key, klen);
  f->next = st->flights;
  st->flights = f;
  if (fn != NULL)
    cache_get(st, f->key, klen, on_get, f);
  else
    cache_get_json(st, f->key, klen, on_get_json, f);
  return f;
}

static void get_or_compute(cache_store_t *st, const char *key, size_t klen,
                           uint64_t ttl_ms, cache_compute_fn compute,
                           void *cdata, cache_value_fn fn, cache_json_fn jfn,
                           void *data) {
  cache_flight_t *f = find(st, key, klen);
  if (f != NULL ? join(f, fn, jfn, data) == 0
                : start(st, key, klen, ttl_ms, compute, cdata, fn, jfn,
                        data) != NULL)
    return;
  if (fn != NULL)
    fn(st, -ENOMEM, NULL, false, data);
  else
    jfn(st, -ENOMEM, NULL, 0, false, data);
}

void cache_get_or_compute(cache_store_t *st, const char *key, size_t klen,
                          uint64_t ttl_ms, cache_compute_fn compute,
                          void *cdata, cache_value_fn fn, void *data) {
  get_or_compute(st, key, klen, ttl_ms, compute, cdata, fn, NULL, data);
}

void cache_get_or_compute_json(cache_store_t *st, const char *key,
                               size_t klen, uint64_t ttl_ms,
                               cache_compute_fn compute, void *cdata,
                               cache_json_fn fn, void *data) {
  get_or_compute(st, key, klen, ttl_ms, compute, cdata, NULL, fn, data);
}

void cache_compute_done(cache_flight_t *f, int err, const rt_value_t *value) {
  unlist(f);
  if (err != 0) {
    answer_error(f, err);
    done(f);
    return;
  }
  if (value != NULL)
    cache_set(f->st, f->key, f->klen, value, f->ttl_ms, NULL, NULL);
  answer_value(f, (rt_value_t *)value, false);
}
