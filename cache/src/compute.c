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
 * INV(flight): a flight is on the list from its start until it is answered
 * (by the store's hit, or by cache_compute_done); every waiter on it is
 * answered exactly once.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/cache.h>

typedef struct waiter_s {
  cache_value_fn fn;
  void *data;
} waiter_t;

struct cache_flight_s {
  cache_flight_t *next;
  cache_store_t *st;
  uint64_t ttl_ms;
  cache_compute_fn compute; /* the first caller's */
  void *cdata;
  waiter_t *w;
  size_t nw, cap;
  size_t klen;
  char key[];
};

static cache_flight_t *find(cache_store_t *st, const char *key, size_t klen) {
  for (cache_flight_t *f = st->flights; f != NULL; f = f->next)
    if (f->st == st && f->klen == klen && memcmp(f->key, key, klen) == 0)
      return f;
  return NULL;
}

static int join(cache_flight_t *f, cache_value_fn fn, void *data) {
  if (f->nw == f->cap) {
    size_t nc = f->cap ? f->cap * 2 : 4;
    waiter_t *w = realloc(f->w, nc * sizeof *w);
    if (w == NULL)
      return -ENOMEM;
    f->w = w;
    f->cap = nc;
  }
  f->w[f->nw++] = (waiter_t){fn, data};
  return 0;
}

static void unlist(cache_flight_t *f) {
  for (cache_flight_t **pp = &f->st->flights; *pp != NULL; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
}

static void answer_all(cache_flight_t *f, int err, rt_value_t *v, bool hit) {
  for (size_t i = 0; i < f->nw; i++)
    f->w[i].fn(f->st, err, err == 0 ? v : NULL, hit, f->w[i].data);
  free(f->w);
  free(f);
}

static void on_get(cache_store_t *st, int err, rt_value_t *v, void *data) {
  cache_flight_t *f = data;
  (void)st;
  if (err == 0 && v != NULL) {
    unlist(f);
    answer_all(f, 0, v, true);
    return;
  }
  f->compute(f, f->key, f->klen, f->cdata);
}

void cache_get_or_compute(cache_store_t *st, const char *key, size_t klen,
                          uint64_t ttl_ms, cache_compute_fn compute,
                          void *cdata, cache_value_fn fn, void *data) {
  cache_flight_t *f = find(st, key, klen);
  if (f != NULL) {
    if (join(f, fn, data) < 0)
      fn(st, -ENOMEM, NULL, false, data);
    return;
  }
  f = calloc(1, sizeof *f + klen);
  if (f == NULL || join(f, fn, data) < 0) {
    free(f);
    fn(st, -ENOMEM, NULL, false, data);
    return;
  }
  f->st = st;
  f->ttl_ms = ttl_ms;
  f->compute = compute;
  f->cdata = cdata;
  f->klen = klen;
  memcpy(f->key, key, klen);
  f->next = st->flights;
  st->flights = f;
  cache_get(st, f->key, klen, on_get, f);
}

void cache_compute_done(cache_flight_t *f, int err, const rt_value_t *value) {
  unlist(f);
  if (err == 0 && value != NULL)
    cache_set(f->st, f->key, f->klen, value, f->ttl_ms, NULL, NULL);
  answer_all(f, err, (rt_value_t *)value, false);
}
