/* urlencoded.c -- form bodies and query strings (rules in rt_urlencoded.h).
 *
 * Two layers.  split() walks the raw pairs ('&'-separated, the key up to
 * the first '='); rt_urlencoded_each decodes them to bytes.  The parser
 * counts pairs against max_keys before it allocates anything for a pair,
 * decodes each key (in nested mode: each bracket segment, split on the raw
 * key) and value into one scratch buffer, and builds the strings from it
 * one at a time, every heap value it keeps in a handle of the pair's scope.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/rt_array.h>
#include <tenure/rt_json.h>
#include <tenure/rt_map.h>
#include <tenure/rt_string.h>
#include <tenure/rt_urlencoded.h>

#include "rt_internal.h"

/* qs's default depth; parameterLimit of body-parser. */
#define DEFAULT_MAX_KEYS 1000
#define DEFAULT_MAX_DEPTH 5

void rt_urlencoded_opts_init(rt_urlencoded_opts_t *o) {
  o->max_keys = DEFAULT_MAX_KEYS;
  o->nested = false;
  o->max_depth = DEFAULT_MAX_DEPTH;
}

/* --- Splitting and decoding ------------------------------------------------ */

typedef int (*raw_fn)(void *data, const char *k, size_t kl, const char *v,
                      size_t vl);

/* Calls FN with the raw key and value of each non-empty pair. */
static int split(const char *s, size_t len, raw_fn fn, void *data) {
  size_t i = 0;
  while (i < len) {
    const char *amp = memchr(s + i, '&', len - i);
    size_t end = amp != NULL ? (size_t)(amp - s) : len;
    if (end > i) {
      const char *pair = s + i;
      size_t plen = end - i;
      const char *eq = memchr(pair, '=', plen);
      size_t kl = eq != NULL ? (size_t)(eq - pair) : plen;
      const char *v = eq != NULL ? eq + 1 : pair + plen;
      size_t vl = eq != NULL ? plen - kl - 1 : 0;
      int r = fn(data, pair, kl, v, vl);
      if (r != 0)
        return r;
    }
    i = end + 1;
  }
  return 0;
}

/* Decodes S (N bytes) into OUT (room for N): '+' is a space, a valid %XX
 * its byte, a malformed escape stays as written.  Returns the length. */
static size_t decode(const char *s, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '+') {
      out[o++] = ' ';
    } else if (c == '%' && i + 2 < n && rt__hexval(s[i + 1]) >= 0 &&
               rt__hexval(s[i + 2]) >= 0) {
      out[o++] = (char)(rt__hexval(s[i + 1]) * 16 + rt__hexval(s[i + 2]));
      i += 2;
    } else {
      out[o++] = c;
    }
  }
  return o;
}

/* A growable scratch buffer for decoded bytes. */
typedef struct scratch_s {
  char *p;
  size_t cap;
} scratch_t;

static char *scratch_room(scratch_t *sc, size_t n) {
  if (n > sc->cap) {
    size_t cap = sc->cap < 64 ? 64 : sc->cap;
    while (cap < n)
      cap *= 2;
    char *p = realloc(sc->p, cap);
    if (p == NULL)
      return NULL;
    sc->p = p;
    sc->cap = cap;
  }
  return sc->p;
}

typedef struct each_s {
  rt_urlencoded_fn fn;
  void *data;
  scratch_t sc;
} each_t;

static int each_pair(void *data, const char *k, size_t kl, const char *v,
                     size_t vl) {
  each_t *e = data;
  /* Key and value side by side: decoding never lengthens. */
  char *buf = scratch_room(&e->sc, kl + vl + 1);
  if (buf == NULL)
    return -ENOMEM;
  size_t dk = decode(k, kl, buf);
  size_t dv = decode(v, vl, buf + dk);
  return e->fn(e->data, buf, dk, buf + dk, dv);
}

int rt_urlencoded_each(const char *s, size_t len, rt_urlencoded_fn fn,
                       void *data) {
  each_t e = {fn, data, {NULL, 0}};
  int r = split(s, len, each_pair, &e);
  free(e.sc.p);
  return r;
}

/* --- Parsing into a Map -------------------------------------------------------- */

typedef struct parse_s {
  rt_runtime_t *rt;
  const rt_urlencoded_opts_t *o;
  rt_value_t *map; /* handle: the result */
  size_t pairs;
  const char *why;
  scratch_t sc;
} parse_t;

/* GC point.  The string of S[0..N) decoded (invalid UTF-8 -> U+FFFD). */
static rt_value_t decoded_string(parse_t *p, const char *s, size_t n) {
  char *buf = scratch_room(&p->sc, n + 1);
  if (buf == NULL)
    return RT_NONE;
  size_t d = decode(s, n, buf);
  return rt_string_from_bytes(p->rt, buf, d);
}

/* GC point.  Stores *V under *K in the Map *HOLDER as a repeated key
 * would: absent -> *V (or [*V] when PUSH), a string -> [old, *V], an Array
 * -> appended.  A Map there is a conflict (-EINVAL). */
static int assign(parse_t *p, const rt_value_t *holder, const rt_value_t *k,
                  const rt_value_t *v, bool push) {
  gc_heap_t *h = rt_heap(p->rt);
  rt_value_t old = rt_map_get(*holder, *k);
  if (old == RT_NONE && !push)
    return rt_map_set(p->rt, holder, k, v);
  if (rt_is_array(old)) {
    rt_value_t *a = rt_handle(h, old);
    return rt_array_push(p->rt, a, v);
  }
  if (old != RT_NONE && !rt_is_string(old)) {
    p->why = "a key is used both as a value and as a nested map";
    return -EINVAL;
  }
  rt_value_t *o = rt_handle(h, old);
  rt_value_t *a = rt_handle(h, rt_array_new(p->rt, 2));
  if (*a == RT_NONE)
    return -ENOMEM;
  int err = 0;
  if (*o != RT_NONE)
    err = rt_array_push(p->rt, a, o);
  if (err == 0)
    err = rt_array_push(p->rt, a, v);
  if (err == 0)
    err = rt_map_set(p->rt, holder, k, a);
  return err;
}

/* A bracket segment of a raw key: K[off .. off+len). */
typedef struct seg_s {
  size_t off, len;
} seg_t;

/* The segments of raw key K (N bytes) when it has the nested shape ROOT
 * ("[" SEG "]")+ with no brackets in ROOT or SEGs: stores up to MAX of
 * them in SEG (the root first; an empty root replaced by the first SEG)
 * and returns how many there are (possibly more than MAX: only counted),
 * or 0 when the key is literal. */
static size_t segments(const char *k, size_t n, seg_t *seg, size_t max) {
  const char *lb = memchr(k, '[', n);
  if (lb == NULL)
    return 0;
  size_t root = (size_t)(lb - k);
  if (memchr(k, ']', root) != NULL)
    return 0;
  size_t count = 0;
  if (root > 0) {
    if (max > 0)
      seg[0] = (seg_t){0, root};
    count = 1;
  }
  size_t i = root;
  while (i < n) {
    if (k[i] != '[')
      return 0;
    size_t j = i + 1;
    while (j < n && k[j] != '[' && k[j] != ']')
      j++;
    if (j == n || k[j] != ']')
      return 0;
    if (count == 0 && j == i + 1)
      return 0; /* "[]..." has no root at all: literal */
    if (count < max)
      seg[count] = (seg_t){i + 1, j - i - 1};
    count++;
    i = j + 1;
  }
  return count;
}

/* GC point.  One pair of nested key K (segments SEG[0..N), N >= 2). */
static int put_nested(parse_t *p, const char *k, const seg_t *seg, size_t n,
                      const char *v, size_t vl) {
  gc_heap_t *h = rt_heap(p->rt);
  for (size_t i = 0; i + 1 < n; i++)
    if (seg[i].len == 0) {
      p->why = "'[]' may only be the last segment of a key";
      return -EINVAL;
    }
  bool push = seg[n - 1].len == 0;
  if (push)
    n--;
  rt_value_t *val = rt_handle(h, decoded_string(p, v, vl));
  rt_value_t *key = rt_handle(h, RT_NONE);
  rt_value_t *cur = rt_handle(h, *p->map);
  if (*val == RT_NONE)
    return -ENOMEM;
  for (size_t i = 0; i + 1 < n; i++) {
    *key = decoded_string(p, k + seg[i].off, seg[i].len);
    if (*key == RT_NONE)
      return -ENOMEM;
    rt_value_t child = rt_map_get(*cur, *key);
    if (child == RT_NONE) {
      rt_value_t *m = rt_handle(h, rt_map_new(p->rt, 0));
      if (*m == RT_NONE)
        return -ENOMEM;
      int err = rt_map_set(p->rt, cur, key, m);
      if (err < 0)
        return err;
      child = *m;
    } else if (!rt_is_map(child)) {
      p->why = "a key is used both as a value and as a nested map";
      return -EINVAL;
    }
    *cur = child;
  }
  *key = decoded_string(p, k + seg[n - 1].off, seg[n - 1].len);
  if (*key == RT_NONE)
    return -ENOMEM;
  return assign(p, cur, key, val, push);
}

static int put_pair(void *data, const char *k, size_t kl, const char *v,
                    size_t vl) {
  parse_t *p = data;
  if (++p->pairs > p->o->max_keys) {
    p->why = "too many parameters (more than max_keys)";
    return -E2BIG;
  }
  gc_heap_t *h = rt_heap(p->rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  int err;
  seg_t small[8], *seg = small;
  size_t n = p->o->nested ? segments(k, kl, NULL, 0) : 0;
  if (n > 0 && n - 1 > p->o->max_depth) {
    p->why = "key nested too deeply (more than max_depth)";
    err = -E2BIG;
  } else if (n > 8 && (seg = malloc(n * sizeof *seg)) == NULL) {
    err = -ENOMEM;
  } else if (n >= 2) {
    segments(k, kl, seg, n);
    err = put_nested(p, k, seg, n, v, vl);
  } else {
    /* A flat key (or a nested one with a root only: "a[b" is literal, and
     * "[a]" is a with n == 1). */
    if (n == 1)
      segments(k, kl, seg, 1);
    const char *ks = n == 1 ? k + seg[0].off : k;
    size_t kn = n == 1 ? seg[0].len : kl;
    rt_value_t *key = rt_handle(h, decoded_string(p, ks, kn));
    rt_value_t *val = rt_handle(h, decoded_string(p, v, vl));
    err = *key == RT_NONE || *val == RT_NONE
              ? -ENOMEM
              : assign(p, p->map, key, val, false);
  }
  if (seg != small)
    free(seg);
  gc_scope_close(h, &s);
  return err;
}

int rt_urlencoded_parse(rt_runtime_t *rt, const char *s, size_t len,
                        const rt_urlencoded_opts_t *o, rt_value_t *out,
                        const char **why) {
  rt_urlencoded_opts_t def;
  if (o == NULL) {
    rt_urlencoded_opts_init(&def);
    o = &def;
  }
  if (rt == NULL || out == NULL || (s == NULL && len > 0))
    return -EINVAL;
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  parse_t p = {rt, o, rt_handle(h, rt_map_new(rt, 0)), 0, NULL, {NULL, 0}};
  int err = *p.map == RT_NONE ? -ENOMEM : split(s, len, put_pair, &p);
  if (err == 0)
    *out = *p.map;
  else if (why != NULL)
    *why = p.why != NULL ? p.why : "out of memory";
  free(p.sc.p);
  gc_scope_close(h, &sc);
  return err;
}

/* --- Serializing ------------------------------------------------------------- */

static bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c != 0 && strchr("-_.!~*'()", c));
}

static void encode(rt_strbuf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) {
      rt_strbuf_append(b, &s[i], 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      rt_strbuf_append(b, e, 3);
    }
  }
}

/* The text of scalar V in BUF (64 bytes) as String(v) gives it; NULL when
 * V is not a scalar. */
static const char *scalar_text(rt_value_t v, char *buf, size_t *n) {
  const char *t = NULL;
  if (rt_is_string(v)) {
    *n = rt_string_length(v);
    return rt_string_data(v);
  }
  if (rt_is_int(v)) {
    *n = (size_t)snprintf(buf, 64, "%" PRId64, rt_int_value(v));
    return buf;
  }
  if (rt_typeof(v) == RT_TYPE_DOUBLE) {
    double d = rt_number_value(v);
    if (isnan(d))
      t = "NaN";
    else if (isinf(d))
      t = d > 0 ? "Infinity" : "-Infinity";
    else if (d == 0)
      t = "0";
    else {
      *n = rt_json_format_double(d, buf);
      return buf;
    }
  } else if (v == RT_TRUE) {
    t = "true";
  } else if (v == RT_FALSE) {
    t = "false";
  } else if (v == RT_NULL || v == RT_UNDEFINED) {
    t = "";
  }
  if (t != NULL)
    *n = strlen(t);
  return t;
}

typedef struct ser_s {
  rt_strbuf_t *out;
  rt_strbuf_t key; /* the encoded key path of the current level */
  bool nested;
  bool first;
} ser_t;

static void emit(ser_t *s, const char *suffix, const char *v, size_t n) {
  if (!s->first)
    rt_strbuf_append(s->out, "&", 1);
  s->first = false;
  rt_strbuf_append(s->out, s->key.data, s->key.len);
  rt_strbuf_append_cstr(s->out, suffix);
  rt_strbuf_append(s->out, "=", 1);
  encode(s->out, v, n);
}

static int ser_map(ser_t *s, rt_value_t map, int depth);

/* The value V under the key path in s->key. */
static int ser_value(ser_t *s, rt_value_t v, bool empty_key, int depth) {
  char buf[64];
  size_t n = 0;
  const char *t = scalar_text(v, buf, &n);
  if (t != NULL) {
    emit(s, "", t, n);
    return 0;
  }
  if (rt_is_array(v)) {
    size_t len = rt_array_length(v);
    /* Nested: one element is written "k[]=v" to read back as an Array
     * (unless the key is empty: "[]" would be a literal key). */
    bool one = s->nested && len == 1;
    if (one && (empty_key || depth >= 64))
      return -EINVAL;
    for (size_t i = 0; i < len; i++) {
      t = scalar_text(rt_array_get(v, i), buf, &n);
      if (t == NULL)
        return -EINVAL;
      emit(s, one ? "[]" : "", t, n);
    }
    return 0;
  }
  if (rt_is_map(v) && s->nested && !empty_key)
    return ser_map(s, v, depth + 1);
  return -EINVAL;
}

static int ser_map(ser_t *s, rt_value_t map, int depth) {
  if (depth > 64)
    return -EINVAL; /* deeper than anything worth writing (and a cycle) */
  size_t base = s->key.len, cur = 0;
  rt_value_t k, v;
  while (rt_map_next(map, &cur, &k, &v)) {
    char buf[64];
    size_t n = 0;
    const char *t = rt_is_string(k) || rt_is_int(k) ? scalar_text(k, buf, &n)
                                                      : NULL;
    if (t == NULL)
      return -EINVAL;
    if (depth > 0 && n == 0)
      return -EINVAL; /* "k[]" would append */
    s->key.len = base;
    if (depth > 0)
      rt_strbuf_append(&s->key, "[", 1);
    encode(&s->key, t, n);
    if (depth > 0)
      rt_strbuf_append(&s->key, "]", 1);
    if (s->key.error != 0)
      return s->key.error;
    int err = ser_value(s, v, n == 0, depth);
    if (err < 0)
      return err;
  }
  s->key.len = base;
  return 0;
}

int rt_urlencoded_serialize(rt_value_t map, bool nested, rt_strbuf_t *out) {
  if (!rt_is_map(map) || out == NULL)
    return -EINVAL;
  ser_t s = {.out = out, .nested = nested, .first = true};
  rt_strbuf_init(&s.key);
  int err = ser_map(&s, map, 0);
  rt_strbuf_free(&s.key);
  if (err == 0)
    err = out->error;
  return err;
}
