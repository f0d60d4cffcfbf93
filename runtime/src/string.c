/* string.c -- immutable UTF-8 strings and the string builder.
 *
 * A string ("string" in heap snapshots, named by its content) is one leaf
 * object: length, cached hash, interned flag, bytes and a NUL.  The hash is
 * computed on first use and cached (INV(string) in rt_internal.h); writing
 * it is not a reference store, so it needs no barrier.  The builder keeps
 * its bytes off the heap and doubles its capacity, so n appends cost O(n).
 */
#include <errno.h>

#include "rt_internal.h"

/* --- Type ---------------------------------------------------------------- */

static size_t string_size(const void *obj) {
  return sizeof(rt__string_t) + ((const rt__string_t *)obj)->len + 1;
}

/* The content, cut at a character boundary to fit CAP bytes. */
static const char *string_describe(const void *obj, char *buf, size_t cap) {
  const rt__string_t *s = obj;
  if (cap == 0)
    return "";
  size_t n = s->len < cap - 1 ? s->len : cap - 1;
  while (n > 0 && n < s->len && ((unsigned char)s->data[n] & 0xc0) == 0x80)
    n--;
  memcpy(buf, s->data, n);
  buf[n] = 0;
  return buf;
}

const gc_type_t rt__string_type = {.name = "string",
                                   .size_of = string_size,
                                   .describe = string_describe};

/* --- Construction -------------------------------------------------------- */

rt__string_t *rt__string_alloc(rt_runtime_t *rt, size_t len) {
  if (len > RT_STRING_MAX)
    return NULL;
  rt__string_t *s =
      gc_alloc(rt->heap, &rt__string_type, sizeof(rt__string_t) + len + 1);
  if (s != NULL)
    s->len = (uint32_t)len;
  return s;
}

rt_value_t rt_string_new(rt_runtime_t *rt, const char *p, size_t len) {
  rt__string_t *s = rt__string_alloc(rt, len);
  if (s == NULL)
    return RT_NONE;
  memcpy(s->data, p, len);
  return (rt_value_t)s;
}

rt_value_t rt_string_cstr(rt_runtime_t *rt, const char *p) {
  return rt_string_new(rt, p, strlen(p));
}

rt_value_t rt_string_from_bytes(rt_runtime_t *rt, const void *p, size_t len) {
  if (rt_utf8_valid_prefix(p, len) == len)
    return rt_string_new(rt, p, len);
  rt_strbuf_t b;
  rt_utf8_decoder_t d;
  rt_strbuf_init(&b);
  rt_utf8_decoder_init(&d);
  rt_value_t v = RT_NONE;
  if (rt_utf8_decode(&d, p, len, true, &b) == 0)
    v = rt_strbuf_finish(rt, &b);
  rt_strbuf_free(&b);
  return v;
}

rt_value_t rt_string_concat(rt_runtime_t *rt, const rt_value_t *a,
                            const rt_value_t *b) {
  size_t la = rt_string_length(*a), lb = rt_string_length(*b);
  if (la + lb > RT_STRING_MAX)
    return RT_NONE;
  rt__string_t *s = rt__string_alloc(rt, la + lb);
  if (s == NULL)
    return RT_NONE;
  /* Read *a and *b only now: the allocation may have moved them. */
  memcpy(s->data, ((rt__string_t *)*a)->data, la);
  memcpy(s->data + la, ((rt__string_t *)*b)->data, lb);
  return (rt_value_t)s;
}

/* --- Accessors ----------------------------------------------------------- */

bool rt_is_string(rt_value_t v) { return rt__type(v) == &rt__string_type; }

const char *rt_string_data(rt_value_t v) {
  return ((const rt__string_t *)v)->data;
}

size_t rt_string_length(rt_value_t v) {
  return ((const rt__string_t *)v)->len;
}

uint32_t rt_string_hash(rt_value_t v) {
  rt__string_t *s = (rt__string_t *)v;
  if (s->hash == 0)
    s->hash = rt__hash_bytes(s->data, s->len);
  return s->hash;
}

bool rt_string_is_interned(rt_value_t v) {
  return ((const rt__string_t *)v)->interned != 0;
}

bool rt_string_equal(rt_value_t a, rt_value_t b) {
  if (a == b)
    return true;
  const rt__string_t *x = (const rt__string_t *)a;
  const rt__string_t *y = (const rt__string_t *)b;
  return x->len == y->len && memcmp(x->data, y->data, x->len) == 0;
}

bool rt_string_equal_cstr(rt_value_t a, const char *s) {
  const rt__string_t *x = (const rt__string_t *)a;
  size_t n = strlen(s);
  return x->len == n && memcmp(x->data, s, n) == 0;
}

/* --- Builder ------------------------------------------------------------- */

void rt_strbuf_init(rt_strbuf_t *b) { memset(b, 0, sizeof *b); }

void rt_strbuf_free(rt_strbuf_t *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

int rt_strbuf_reserve(rt_strbuf_t *b, size_t n) {
  if (b->error)
    return b->error;
  if (b->cap - b->len >= n)
    return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) {
      b->error = -ENOMEM;
      return b->error;
    }
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (p == NULL) {
    b->error = -ENOMEM;
    return b->error;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

int rt_strbuf_append(rt_strbuf_t *b, const void *p, size_t n) {
  if (RT__UNLIKELY(b->cap - b->len < n) && rt_strbuf_reserve(b, n) < 0)
    return b->error;
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int rt_strbuf_append_cstr(rt_strbuf_t *b, const char *s) {
  return rt_strbuf_append(b, s, strlen(s));
}

int rt_strbuf_append_string(rt_strbuf_t *b, rt_value_t str) {
  const rt__string_t *s = (const rt__string_t *)str;
  return rt_strbuf_append(b, s->data, s->len);
}

rt_value_t rt_strbuf_finish(rt_runtime_t *rt, rt_strbuf_t *b) {
  if (b->error)
    return RT_NONE;
  return rt_string_new(rt, b->data ? b->data : "", b->len);
}
