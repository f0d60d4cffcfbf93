/* runtime.c -- the runtime object, value kinds, numbers and hashing.
 *
 * Owns rt_runtime_t (one per heap: the heap, the intern table root and the
 * buffer byte counter), the registration of every value type with the heap,
 * boxed doubles ("heap number"), and the content hash shared by strings,
 * the intern table and maps.  See runtime/DESIGN.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "rt_internal.h"

/* --- Types --------------------------------------------------------------- */

const gc_type_t rt__number_type = {
    .name = "HeapNumber", .size = sizeof(rt__number_t)};

int rt__types_register(gc_heap_t *h) {
  static const gc_type_t *const all[] = {
      &rt__number_type, &rt__string_type, &rt__array_type,
      &rt__elements_type, &rt__map_type, &rt__table_type,
      &rt__buffer_type, &rt__intern_type};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    int err = gc_type_register(h, all[i]);
    if (err < 0)
      return err;
  }
  return 0;
}

/* --- Runtime ------------------------------------------------------------- */

static uint64_t hash_seed;

int rt_runtime_create(gc_heap_t *h, rt_runtime_t **out) {
  if (h == NULL || out == NULL)
    return -EINVAL;
  if (__atomic_load_n(&hash_seed, __ATOMIC_RELAXED) == 0) {
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
      s = (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15u;
    __atomic_store_n(&hash_seed, s | 1, __ATOMIC_RELAXED);
  }
  rt_runtime_t *rt = calloc(1, sizeof *rt);
  if (rt == NULL)
    return -ENOMEM;
  rt->heap = h;
  int err = rt__types_register(h);
  if (err == 0)
    err = rt__intern_init(rt);
  if (err < 0) {
    free(rt);
    return err;
  }
  *out = rt;
  return 0;
}

void rt_runtime_destroy(rt_runtime_t *rt) {
  if (rt == NULL)
    return;
  gc_heap_destroy(rt->heap); /* buffer finalizers read rt */
  free(rt);
}

gc_heap_t *rt_heap(const rt_runtime_t *rt) { return rt->heap; }

void rt_memory_usage(rt_runtime_t *rt, rt_memory_usage_t *out) {
  gc_heap_stats_t s;
  memset(out, 0, sizeof *out);
  if (gc_heap_stats(rt->heap, &s, sizeof s) == 0) {
    out->external = s.external_memory;
    out->heap_used = s.used_heap_size;
    out->heap_total = s.total_heap_size;
  }
  out->array_buffers = (size_t)rt->array_buffers;
}

/* The collector's words for its codes, else the C library's (static,
 * thread-safe) description of the errno code. */
const char *rt_strerror(int err) {
  const char *s = gc_strerror(err);
  if (strcmp(s, "unknown error") == 0 && err < 0) {
    const char *d = strerrordesc_np(-err);
    if (d != NULL)
      return d;
  }
  return s;
}

/* --- Kinds --------------------------------------------------------------- */

rt_type_t rt_typeof(rt_value_t v) {
  if (v & 1)
    return RT_TYPE_INT;
  switch (v) {
  case RT_NONE:
    return RT_TYPE_NONE;
  case RT_UNDEFINED:
    return RT_TYPE_UNDEFINED;
  case RT_NULL:
    return RT_TYPE_NULL;
  case RT_TRUE:
  case RT_FALSE:
    return RT_TYPE_BOOLEAN;
  default:
    break;
  }
  if (!rt_is_heap(v))
    return RT_TYPE_OTHER;
  const gc_type_t *t = rt__type_of(v);
  if (t == &rt__string_type)
    return RT_TYPE_STRING;
  if (t == &rt__number_type)
    return RT_TYPE_DOUBLE;
  if (t == &rt__array_type)
    return RT_TYPE_ARRAY;
  if (t == &rt__map_type)
    return RT_TYPE_MAP;
  if (t == &rt__buffer_type)
    return RT_TYPE_BUFFER;
  return RT_TYPE_OTHER;
}

const char *rt_type_name(rt_type_t t) {
  switch (t) {
#define RT__TYPE_NAME(name, str)                                              \
  case RT_TYPE_##name:                                                        \
    return str;
    RT_VALUE_TYPE_MAP(RT__TYPE_NAME)
#undef RT__TYPE_NAME
  }
  return "unknown";
}

/* --- Numbers ------------------------------------------------------------- */

rt_value_t rt_double_new(rt_runtime_t *rt, double d) {
  rt__number_t *n = gc_alloc(rt->heap, &rt__number_type, sizeof *n);
  if (n == NULL)
    return RT_NONE;
  n->d = d;
  return (rt_value_t)n;
}

rt_value_t rt_number(rt_runtime_t *rt, double d) {
  /* 2^62 is exact; the range check comes first so the cast is defined. */
  if (d >= -4611686018427387904.0 && d < 4611686018427387904.0) {
    int64_t i = (int64_t)d;
    if ((double)i == d && !(i == 0 && signbit(d)))
      return rt_int(i);
  }
  return rt_double_new(rt, d);
}

bool rt_is_number(rt_value_t v) {
  return rt_is_int(v) || rt__type(v) == &rt__number_type;
}

double rt_number_value(rt_value_t v) {
  if (rt_is_int(v))
    return (double)rt_int_value(v);
  if (rt__type(v) == &rt__number_type)
    return ((rt__number_t *)v)->d;
  return 0;
}

/* --- Hashing ------------------------------------------------------------- */

static inline uint64_t mix(uint64_t h) {
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93u;
  h ^= h >> 32;
  return h;
}

/* A multiply-xorshift hash over 8-byte words, seeded per process so that
 * keys cannot be chosen in advance to collide. */
uint32_t rt__hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = hash_seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15u);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdu;
    h ^= h >> 29;
    s += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
  }
  return (uint32_t)mix(h) | 1;
}

uint32_t rt__key_hash(rt_value_t k) {
  if (rt_is_int(k))
    return (uint32_t)mix((uint64_t)k ^ hash_seed) | 1;
  return rt_string_hash(k);
}

bool rt__key_equal(rt_value_t a, rt_value_t b) {
  if (a == b)
    return true;
  if (!rt_is_heap(a) || !rt_is_heap(b))
    return false;
  const rt__string_t *x = (const rt__string_t *)a;
  const rt__string_t *y = (const rt__string_t *)b;
  if (x->interned && y->interned)
    return false;
  return x->len == y->len && (x->hash == 0 || y->hash == 0 ||
                              x->hash == y->hash) &&
         memcmp(x->data, y->data, x->len) == 0;
}
