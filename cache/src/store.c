/* store.c -- choosing a store by URL: the scheme names the backend. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <tenure/cache.h>

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
