/* store.c -- choosing a store by URL: the scheme names the backend; and
 * what the interface adds on top of a backend's operations. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/cache.h>
#include <tenure/rt_json.h>
#include <tenure/rt_string.h>

static const cache_store_type_t *const backends[] = {
    &cache_memory_type, &cache_redis_type, &cache_memcached_type,
    &cache_redis_cluster_type, &cache_near_type};

int cache_open(rt_loop_t *loop, const char *url, cache_store_t **out,
               char *err, size_t errlen) {
  char dummy[8];
  if (err == NULL) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  if (loop == NULL || out == NULL) {
    snprintf(err, errlen, "cache_open: no loop or no result pointer");
    return -EINVAL;
  }
  if (url == NULL || url[0] == '\0')
    url = "memory://";
  const char *sep = strstr(url, "://");
  if (sep == NULL) {
    snprintf(err, errlen, "%s: not a store URL (scheme://...)", url);
    return -EINVAL;
  }
  size_t n = (size_t)(sep - url);
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
    if (strlen(backends[i]->scheme) == n &&
        strncmp(backends[i]->scheme, url, n) == 0)
      return backends[i]->open(loop, url, out, err, errlen);
  snprintf(err, errlen, "%s: unknown store scheme %.*s:// (memory:// is "
                        "built in)", url, (int)n, url);
  return -EINVAL;
}

void cache_close(cache_store_t *st) {
  if (st != NULL)
    st->type->close(st);
}

/* --- A get as JSON text --------------------------------------------------- */

typedef struct jget_s {
  cache_get_json_fn fn;
  void *data;
} jget_t;

/* A backend without get_json: its value, written as JSON. */
static void on_value(cache_store_t *st, int err, rt_value_t *v, void *data) {
  jget_t j = *(jget_t *)data;
  free(data);
  if (err != 0 || v == NULL) {
    j.fn(st, err, NULL, 0, j.data);
    return;
  }
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  err = rt_json_stringify(rt_loop_runtime(st->loop), *v, NULL, &b);
  j.fn(st, err, err == 0 ? b.data : NULL, err == 0 ? b.len : 0, j.data);
  rt_strbuf_free(&b);
}

void cache_get_json(cache_store_t *st, const char *key, size_t klen,
                    cache_get_json_fn fn, void *data) {
  if (st->type->get_json != NULL) {
    st->type->get_json(st, key, klen, fn, data);
    return;
  }
  jget_t *j = malloc(sizeof *j);
  if (j == NULL) {
    fn(st, -ENOMEM, NULL, 0, data);
    return;
  }
  *j = (jget_t){fn, data};
  cache_get(st, key, klen, on_value, j);
}
