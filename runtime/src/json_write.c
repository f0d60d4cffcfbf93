/* json_write.c -- the JSON serializer: runtime values to text.
 *
 * Iterative, with an explicit stack of open containers bounded by
 * max_depth (a cyclic structure hits the bound: -ELOOP).  It never
 * allocates on the heap, so raw values stay valid throughout; the text goes
 * to an off-heap rt_strbuf_t.
 *
 * Doubles are written as JSON.stringify writes them: integral values below
 * 2^53 as integers, others in the shortest form that reads back to the same
 * double (Grisu2, dtoa.c, checked against a few decimals where Grisu2 is
 * not shortest), in ECMAScript's notation.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "rt_internal.h"

/* --- Numbers ------------------------------------------------------------- */

static const char digits2[201] =
    "0001020304050607080910111213141516171819"
    "2021222324252627282930313233343536373839"
    "4041424344454647484950515253545556575859"
    "6061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Writes the decimal digits of X at the end of [.., END); returns the
 * first digit's position. */
static inline char *u64_digits(uint64_t x, char *end) {
  char *p = end;
  while (x >= 100) {
    unsigned r = (unsigned)(x % 100);
    x /= 100;
    p -= 2;
    memcpy(p, digits2 + 2 * r, 2);
  }
  if (x >= 10) {
    p -= 2;
    memcpy(p, digits2 + 2 * x, 2);
  } else {
    *--p = (char)('0' + x);
  }
  return p;
}

static inline size_t format_i64(int64_t v, char *buf) {
  char tmp[24], *e = tmp + sizeof tmp;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  char *p = u64_digits(u, e);
  if (v < 0)
    *--p = '-';
  size_t n = (size_t)(e - p);
  memcpy(buf, p, n);
  return n;
}

static const double pow10_tab[18] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                                     1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17};

/* A (0 < A < 2^53) with the fewest decimals k <= 15 such that
 * round(A * 10^k) / 10^k == A: exact, because both operands of the division
 * are exact doubles and IEEE division rounds correctly, as strtod does.
 * Writes it to P and returns its length, or 0 if no such k. */
static size_t fixed_decimals(double a, char *p) {
  const double two53 = 9007199254740992.0;
  for (int k = 1; k <= 15; k++) {
    double s = a * pow10_tab[k];
    if (s >= two53)
      break;
    uint64_t m = (uint64_t)(s + 0.5);
    if ((double)m / pow10_tab[k] != a)
      continue;
    char tmp[24], *e = tmp + sizeof tmp;
    char *q = u64_digits(m, e);
    while (e - q <= k)
      *--q = '0';
    size_t nd = (size_t)(e - q), ip = nd - (size_t)k;
    memcpy(p, q, ip);
    p[ip] = '.';
    memcpy(p + ip + 1, q + ip, (size_t)k);
    p[nd + 1] = 0;
    return nd + 1;
  }
  return 0;
}

size_t rt_json_format_double(double d, char *buf) {
  if (!isfinite(d)) {
    memcpy(buf, "null", 5);
    return 4;
  }
  if (d == 0) { /* JSON.stringify(-0) is "0" */
    buf[0] = '0';
    buf[1] = 0;
    return 1;
  }
  double a = d < 0 ? -d : d;
  if (a < 9007199254740992.0 && a == (double)(uint64_t)a) {
    size_t n = format_i64((int64_t)d, buf);
    buf[n] = 0;
    return n;
  }
  size_t n = rt__dtoa(d, buf);
  /* Grisu2 misses the shortest form for ~0.1% of doubles, giving 16-17
   * digits for a value such as 79.810454; short decimals are common in
   * JSON, so check long outputs against a few decimals. */
  if (n >= 17 && a >= 1e-7 && a < 9007199254740992.0) {
    char *p = buf + (d < 0);
    size_t m = fixed_decimals(a, p);
    if (m > 0 && m + (size_t)(d < 0) < n)
      n = m + (size_t)(d < 0);
  }
  return n;
}

/* --- Strings ------------------------------------------------------------- */

#define ONES 0x0101010101010101u
#define HIGHS 0x8080808080808080u

/* Nonzero if a byte of W is '"', '\\' or below 0x20. */
static inline uint64_t escape8(uint64_t w) {
  uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
  return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w)) &
         HIGHS;
}

static const char hexd[] = "0123456789abcdef";

static int write_string(rt_strbuf_t *o, const char *s, size_t n) {
  if (rt_strbuf_reserve(o, n + 2) < 0)
    return o->error;
  char *d = o->data + o->len;
  *d++ = '"';
  const char *e = s + n;
  for (;;) {
    const char *run = s;
    while (e - s >= 8) {
      uint64_t w;
      memcpy(&w, s, 8);
      if (escape8(w))
        break;
      s += 8;
    }
    while (s < e) {
      unsigned char c = (unsigned char)*s;
      if (c < 0x20 || c == '"' || c == '\\')
        break;
      s++;
      if (((uintptr_t)s & 7) == 0 && e - s >= 8)
        break;
    }
    if (s > run) {
      memcpy(d, run, (size_t)(s - run));
      d += s - run;
    }
    if (s == e)
      break;
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    /* An escape: up to 6 bytes for 1 (room reserved for the rest + 2). */
    o->len = (size_t)(d - o->data);
    if (rt_strbuf_reserve(o, (size_t)(e - s) + 8) < 0)
      return o->error;
    d = o->data + o->len;
    *d++ = '\\';
    switch (c) {
    case '"':
      *d++ = '"';
      break;
    case '\\':
      *d++ = '\\';
      break;
    case '\b':
      *d++ = 'b';
      break;
    case '\f':
      *d++ = 'f';
      break;
    case '\n':
      *d++ = 'n';
      break;
    case '\r':
      *d++ = 'r';
      break;
    case '\t':
      *d++ = 't';
      break;
    default:
      memcpy(d, "u00", 3);
      d[3] = hexd[c >> 4];
      d[4] = hexd[c & 15];
      d += 5;
    }
    s++;
  }
  *d++ = '"';
  o->len = (size_t)(d - o->data);
  return 0;
}

/* --- Values -------------------------------------------------------------- */

typedef struct wframe_s {
  rt_value_t v;
  size_t i; /* next element / map cursor */
  bool map;
  bool first;
} wframe_t;

static inline int put(rt_strbuf_t *o, const char *s, size_t n) {
  return rt_strbuf_append(o, s, n);
}

static int write_scalar(rt_strbuf_t *o, rt_value_t v, bool *container) {
  *container = false;
  if (rt_is_int(v)) {
    if (rt_strbuf_reserve(o, 24) < 0)
      return o->error;
    o->len += format_i64(rt_int_value(v), o->data + o->len);
    return 0;
  }
  switch (v) {
  case RT_NULL:
    return put(o, "null", 4);
  case RT_TRUE:
    return put(o, "true", 4);
  case RT_FALSE:
    return put(o, "false", 5);
  case RT_UNDEFINED:
  case RT_NONE:
    return put(o, "null", 4);
  default:
    break;
  }
  const gc_type_t *t = rt__type(v);
  if (t == &rt__string_type) {
    const rt__string_t *s = (const rt__string_t *)v;
    return write_string(o, s->data, s->len);
  }
  if (t == &rt__number_type) {
    if (rt_strbuf_reserve(o, 40) < 0)
      return o->error;
    o->len += rt_json_format_double(((rt__number_t *)v)->d, o->data + o->len);
    return 0;
  }
  if (t == &rt__array_type || t == &rt__map_type) {
    *container = true;
    return 0;
  }
  if (t == &rt__buffer_type) {
    const rt__buffer_t *b = (const rt__buffer_t *)v;
    if (put(o, "{\"type\":\"Buffer\",\"data\":[", 25) < 0 ||
        rt_strbuf_reserve(o, b->len * 4 + 2) < 0)
      return o->error;
    char *d = o->data + o->len;
    for (size_t i = 0; i < b->len; i++) {
      if (i)
        *d++ = ',';
      char tmp[4], *e = tmp + 4, *q = u64_digits(b->data[i], e);
      memcpy(d, q, (size_t)(e - q));
      d += e - q;
    }
    memcpy(d, "]}", 2);
    o->len = (size_t)(d + 2 - o->data);
    return 0;
  }
  return put(o, "null", 4);
}

int rt_json_stringify(rt_runtime_t *rt, rt_value_t v,
                      const rt_json_options_t *opt, rt_strbuf_t *o) {
  if (v == RT_UNDEFINED || v == RT_NONE)
    return -EINVAL;
  unsigned max_depth =
      opt && opt->max_depth ? opt->max_depth : RT_JSON_DEFAULT_DEPTH;
  wframe_t *st = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  size_t len0 = o->len;
  bool container;

emit:
  rc = write_scalar(o, v, &container);
  if (rc < 0)
    goto out;
  if (container) {
    if (n >= max_depth) {
      rc = -ELOOP;
      goto out;
    }
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 32;
      wframe_t *s = realloc(st, ncap * sizeof *s);
      if (s == NULL) {
        rc = -ENOMEM;
        goto out;
      }
      st = s;
      cap = ncap;
    }
    bool map = rt__type(v) == &rt__map_type;
    st[n++] = (wframe_t){v, 0, map, true};
    if ((rc = put(o, map ? "{" : "[", 1)) < 0)
      goto out;
  }

  while (n > 0) {
    wframe_t *f = &st[n - 1];
    if (!f->map) {
      const rt__elements_t *e = ((const rt__array_t *)f->v)->store;
      if (e != NULL && f->i < e->len) {
        if (f->i > 0 && (rc = put(o, ",", 1)) < 0)
          goto out;
        size_t j = e->start + f->i++;
        v = e->v[j >= e->cap ? j - e->cap : j];
        goto emit;
      }
      n--;
      if ((rc = put(o, "]", 1)) < 0)
        goto out;
      continue;
    }
    /* The next live entry whose value is not undefined. */
    const rt__table_t *t = ((const rt__map_t *)f->v)->table;
    rt_value_t k = RT__HOLE, x = RT_UNDEFINED;
    while (t != NULL && f->i < t->used) {
      k = t->e[2 * f->i];
      x = t->e[2 * f->i + 1];
      f->i++;
      if (k != RT__HOLE && x != RT_UNDEFINED)
        break;
      k = RT__HOLE;
    }
    if (k == RT__HOLE) {
      n--;
      if ((rc = put(o, "}", 1)) < 0)
        goto out;
      continue;
    }
    if (!f->first && (rc = put(o, ",", 1)) < 0)
      goto out;
    f->first = false;
    if (rt_is_int(k)) {
      char tmp[32];
      tmp[0] = '"';
      size_t kl = format_i64(rt_int_value(k), tmp + 1);
      memcpy(tmp + 1 + kl, "\":", 2);
      rc = put(o, tmp, kl + 3);
    } else {
      const rt__string_t *s = (const rt__string_t *)k;
      rc = write_string(o, s->data, s->len);
      if (rc == 0)
        rc = put(o, ":", 1);
    }
    if (rc < 0)
      goto out;
    v = x;
    goto emit;
  }

out:
  free(st);
  if (rc < 0)
    o->len = len0 < o->len ? len0 : o->len;
  return rc;
}
