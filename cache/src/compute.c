/* compute.c -- cache_get_or_compute: a miss computes once (single-flight).
 *
 * Flights in progress are kept per store (in its header) in a small list
 * keyed by the key (they are few: one per key being computed right now).  A caller first
 * joins a flight for its key if there is one, then asks the store, and on a
 * miss joins or starts one, so callers whose misses arrive while a flight
 * runs never compute again.
 *
 * INV(flight): a flight is on the list from its start until
 * cache_compute_done; every waiter on it is answered exactly once.
 */
#include <errno.h>
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

typedef struct ask_s {
  cache_compute_fn compute;
  void *cdata;
  cache_value_fn fn;
  void *data;
  uint64_t ttl_ms;
  size_t klen;
  char key[];
} ask_t;

static void on_get(cache_store_t *st, int err, rt_value_t *v, void *data) {
  ask_t *a = data;
  if (err == 0 && v != NULL) {
    a->fn(st, 0, v, true, a->data);
    free(a);
    return;
  }
  /* A miss (or a store error: computing still answers). */
  cache_flight_t *f = find(st, a->key, a->klen);
  if (f != NULL) {
    if (join(f, a->fn, a->data) < 0)
      a->fn(st, -ENOMEM, NULL, false, a->data);
    free(a);
    return;
  }
  f = calloc(1, sizeof *f + a->klen);
  if (f == NULL || join(f, a->fn, a->data) < 0) {
    free(f);
    a->fn(st, -ENOMEM, NULL, false, a->data);
    free(a);
    return;
  }
  f->st = st;
  f->ttl_ms = a->ttl_ms;
  f->klen = a->klen;
  memcpy(f->key, a->key, a->klen);
  f->next = st->flights;
  st->flights = f;
  cache_compute_fn compute = a->compute;
  void *cdata = a->cdata;
  free(a);
  compute(f, f->key, f->klen, cdata);
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
  ask_t *a = malloc(sizeof *a + klen);
  if (a == NULL) {
    fn(st, -ENOMEM, NULL, false, data);
    return;
  }
  *a = (ask_t){compute, cdata, fn, data, ttl_ms, klen};
  memcpy(a->key, key, klen);
  cache_get(st, key, klen, on_get, a);
}

void cache_compute_done(cache_flight_t *f, int err, const rt_value_t *value) {
  for (cache_flight_t **pp = &f->st->flights; *pp != NULL;
       pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  if (err == 0 && value != NULL)
    cache_set(f->st, f->key, f->klen, value, f->ttl_ms, NULL, NULL);
  for (size_t i = 0; i < f->nw; i++)
    f->w[i].fn(f->st, err, err == 0 ? (rt_value_t *)value : NULL, false,
               f->w[i].data);
  free(f->w);
  free(f);
}
