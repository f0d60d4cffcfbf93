/* rt_internal.h -- object layouts and internal functions of the runtime.
 *
 * Every heap value starts at the pointer gc_alloc returned; its gc_type_t
 * (one of the rt__*_type descriptors below) says which layout it has.
 *
 * INV(value): a heap slot holding an rt_value_t holds an immediate or a
 * pointer to a live object; every store of a heap value into a heap object
 * goes through gc_write.
 */
#ifndef RT_INTERNAL_H
#define RT_INTERNAL_H

#include <stdlib.h>
#include <string.h>

#include <tenure/rt.h>

/* Internal immediates (never handed out). */
#define RT__HOLE ((rt_value_t)0x22) /* a deleted map entry */

#define RT__LIKELY GC_LIKELY
#define RT__UNLIKELY GC_UNLIKELY

/* --- Text helpers shared by the parsers ----------------------------------- */

/* The value of hex digit C, or -1. */
static inline int rt__hexval(int c) {
  c &= 0xff;
  if (c >= '0' && c <= '9')
    return c - '0';
  c |= 0x20;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* HTTP's optional whitespace (RFC 9110 5.6.3). */
static inline bool rt__is_ows(int c) { return c == ' ' || c == '\t'; }

/* Drops OWS around *S (*N bytes). */
static inline void rt__trim_ows(const char **s, size_t *n) {
  while (*n > 0 && rt__is_ows(**s)) {
    (*s)++;
    (*n)--;
  }
  while (*n > 0 && rt__is_ows((*s)[*n - 1]))
    (*n)--;
}

/* RFC 9110's tchar: the characters of a token (header names, methods,
 * parameter names). */
static inline bool rt__is_tchar(unsigned char c) {
  /* One bit per character: a table, since headers are checked on every
   * response (a strchr per character cost ~40 instructions each). */
  static const uint32_t tchar[8] = {
      0x00000000u, /* 0x00-0x1f: controls */
      0x03ff6cfau, /* 0x20-0x3f: ! # $ % & ' * + - . 0-9 */
      0xc7fffffeu, /* 0x40-0x5f: A-Z ^ _ */
      0x57ffffffu, /* 0x60-0x7f: ` a-z | ~ */
      0, 0, 0, 0};
  return (tchar[c >> 5] >> (c & 31)) & 1u;
}

/* --- Layouts ------------------------------------------------------------ */

typedef struct rt__number_s {
  double d;
} rt__number_t;

/* INV(string): data[len] == 0; hash is 0 or the content hash | 1. */
typedef struct rt__string_s {
  uint32_t len;
  uint32_t hash;
  uint8_t interned;
  char data[];
} rt__string_t;

/* The ring buffer behind an array: element i is v[(start + i) % cap].
 * INV(elements): start < cap (or cap == 0), len <= cap; slots outside the
 * live range hold 0. */
typedef struct rt__elements_s {
  uint32_t cap;
  uint32_t start;
  uint32_t len;
  uint32_t pad_;
  rt_value_t v[];
} rt__elements_t;

typedef struct rt__array_s {
  rt__elements_t *store; /* NULL while the array has never had room */
} rt__array_t;

/* The hash table behind a map: entries (key, value) in insertion order in
 * e[0 .. 2*used), then nbuckets uint32 bucket heads (entry index + 1, 0 for
 * empty) probed linearly.  INV(table): live <= used <= cap; deleted entries
 * have key RT__HOLE and value 0; nbuckets is a power of two >= 2 * cap. */
typedef struct rt__table_s {
  uint32_t cap;
  uint32_t used;
  uint32_t live;
  uint32_t nbuckets;
  rt_value_t e[];
} rt__table_t;

static inline uint32_t *rt__table_buckets(rt__table_t *t) {
  return (uint32_t *)(t->e + 2 * (size_t)t->cap);
}

typedef struct rt__map_s {
  rt__table_t *table; /* NULL while empty and never sized */
} rt__map_t;

typedef struct rt__buffer_s {
  uint8_t *data;
  size_t len;
  struct rt__buffer_s *backing; /* slices: the buffer that owns the bytes */
  void *alloc;                  /* owner: the malloc'd block, else NULL */
  size_t alloc_size;
  rt_runtime_t *rt;
} rt__buffer_t;

struct rt_runtime_s {
  gc_heap_t *heap;
  void *intern; /* root "(Internalized strings)": the intern table object */
  int64_t array_buffers;
  rt_buffer_free_hook_fn free_hook;
};

extern const gc_type_t rt__number_type;
extern const gc_type_t rt__string_type;
extern const gc_type_t rt__array_type;
extern const gc_type_t rt__elements_type;
extern const gc_type_t rt__map_type;
extern const gc_type_t rt__table_type;
extern const gc_type_t rt__buffer_type;
extern const gc_type_t rt__intern_type;

/* The type of a heap value (gc_object_type reads the header inline);
 * valid outside GCs, as any raw access. */
static inline const gc_type_t *rt__type_of(rt_value_t v) {
  return gc_object_type((const void *)v);
}

static inline const gc_type_t *rt__type(rt_value_t v) {
  return rt_is_heap(v) ? rt__type_of(v) : NULL;
}

/* --- Internal functions --------------------------------------------------- */

/* The content hash of bytes (never 0). */
uint32_t rt__hash_bytes(const void *p, size_t n);
/* The hash of a map key (string or small integer). */
uint32_t rt__key_hash(rt_value_t k);
bool rt__key_equal(rt_value_t a, rt_value_t b);

/* GC point.  An uninitialized string of LEN bytes (data[len] = 0). */
rt__string_t *rt__string_alloc(rt_runtime_t *rt, size_t len);
/* GC point.  The interned string of S[0..LEN) whose hash is HASH. */
rt_value_t rt__intern(rt_runtime_t *rt, const char *s, size_t len,
                      uint32_t hash);

/* Raw table operations used by the JSON parser: a table for CAP entries
 * (GC point), and an insert that must have room (not a GC point). */
rt__table_t *rt__table_alloc(rt_runtime_t *rt, size_t cap);
void rt__table_put(gc_heap_t *h, rt__table_t *t, rt_value_t k, rt_value_t v);

/* Writes the shortest round-trip text of finite V != 0 (ECMAScript
 * notation) and a NUL to OUT (32 bytes); returns the length. */
size_t rt__dtoa(double v, char *out);

int rt__types_register(gc_heap_t *h);
int rt__intern_init(rt_runtime_t *rt);

#endif /* RT_INTERNAL_H */
