/* json_parse.c -- the JSON parser: text to runtime values.
 *
 * A hand-written scanner driven by an explicit stack, never by recursion:
 * a document nested a million deep costs heap memory for two small stacks
 * up to max_depth, and then an error, never the C stack.
 *
 * Values under construction live on the value stack (vals), which is a GC
 * root while the parser runs (the root tracer "(JSON parser)"); a container
 * is built when it closes, from the values above its frame's base, with
 * exactly the room it needs.  INV(parser): vals[0 .. nvals) are the only
 * heap references the parser holds across an allocation; frames[i].base is
 * where the values of the i-th open container start.
 *
 * Speed: strings without escapes are copied straight from the input (found
 * by a scan that tests 8 bytes at a time for '"', '\\', control bytes and
 * non-ASCII bytes); object keys are interned, so the keys of a thousand
 * records are one string each; integers are accumulated in a word and
 * doubles with at most 19 significant digits and a small exponent are
 * computed exactly with one multiplication or division (Clinger's fast
 * path); anything else goes to strtod (correctly rounded in glibc).
 */
#define _GNU_SOURCE /* strtod_l, uselocale */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>

#include "rt_internal.h"

typedef struct frame_s {
  size_t base;  /* first value of this container on the value stack */
  uint32_t kind; /* '[' or '{' */
} frame_t;

typedef struct parser_s {
  rt_runtime_t *rt;
  gc_heap_t *h;
  rt_value_t *vals;
  size_t nvals, capvals;
  frame_t *frames;
  size_t nframes, capframes;
  char *scratch; /* unescaped string bytes */
  size_t scap;
  const uint8_t *start;
  rt_json_error_t *err;
} parser_t;

static void trace_vals(gc_visitor_t *v, void *data) {
  parser_t *P = data;
  for (size_t i = 0; i < P->nvals; i++)
    GC_VISIT(v, &P->vals[i], GC_EDGE_ELEM(i));
}

static int fail(parser_t *P, const uint8_t *at, const char *expected,
                int code) {
  if (P->err) {
    P->err->offset = (size_t)(at - P->start);
    P->err->expected = expected;
  }
  return code;
}

#define FAIL(at, what) return fail(P, (at), (what), -EINVAL)

static __attribute__((noinline)) int grow_vals(parser_t *P) {
  size_t cap = P->capvals ? P->capvals * 2 : 256;
  rt_value_t *v = realloc(P->vals, cap * sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  P->vals = v;
  P->capvals = cap;
  return 0;
}

static inline int push(parser_t *P, rt_value_t v) {
  if (RT__UNLIKELY(P->nvals == P->capvals) && grow_vals(P) < 0)
    return -ENOMEM;
  P->vals[P->nvals++] = v;
  return 0;
}

/* --- Strings ------------------------------------------------------------- */

#define ONES 0x0101010101010101u
#define HIGHS 0x8080808080808080u

/* Nonzero if a byte of W is '"', '\\', below 0x20 or above 0x7f. */
static inline uint64_t special8(uint64_t w) {
  uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
  return (((q - ONES) & ~q) | ((b - ONES) & ~b) | (w - ONES * 0x20) | w) &
         HIGHS;
}

/* The length of the well-formed UTF-8 sequence at P (P[0] >= 0x80), or 0. */
static inline int utf8_seq(const uint8_t *p, const uint8_t *end) {
  uint8_t c = p[0];
  ptrdiff_t left = end - p;
  if (c >= 0xc2 && c <= 0xdf) {
    if (left >= 2 && (p[1] & 0xc0) == 0x80)
      return 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    if (left >= 3 && (p[2] & 0xc0) == 0x80) {
      uint8_t d = p[1];
      if (c == 0xe0 ? (d >= 0xa0 && d <= 0xbf)
                    : c == 0xed ? (d >= 0x80 && d <= 0x9f)
                                : (d & 0xc0) == 0x80)
        return 3;
    }
  } else if (c >= 0xf0 && c <= 0xf4) {
    if (left >= 4 && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80) {
      uint8_t d = p[1];
      if (c == 0xf0 ? (d >= 0x90 && d <= 0xbf)
                    : c == 0xf4 ? (d >= 0x80 && d <= 0x8f)
                                : (d & 0xc0) == 0x80)
        return 4;
    }
  }
  return 0;
}

static __attribute__((noinline)) int scratch_grow(parser_t *P, size_t need) {
  size_t cap = P->scap ? P->scap : 256;
  while (cap < need)
    cap *= 2;
  char *s = realloc(P->scratch, cap);
  if (s == NULL)
    return -ENOMEM;
  P->scratch = s;
  P->scap = cap;
  return 0;
}

/* Reads the 4 hex digits after "\u" at P (P points at 'u'). */
static int read_u(parser_t *P, const uint8_t *p, const uint8_t *end,
                  uint32_t *cp) {
  uint32_t x = 0;
  for (int i = 1; i <= 4; i++) {
    if (p + i >= end)
      FAIL(end, "a hex digit");
    int d = rt__hexval(p[i]);
    if (d < 0)
      FAIL(p + i, "a hex digit");
    x = x << 4 | (uint32_t)d;
  }
  *cp = x;
  return 0;
}

static inline size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* GC point.  Makes the string (interned if KEY) and pushes it. */
static inline int make_string(parser_t *P, const char *s, size_t n,
                              bool key) {
  rt_value_t v;
  if (key) {
    v = rt__intern(P->rt, s, n, rt__hash_bytes(s, n));
  } else {
    rt__string_t *x = rt__string_alloc(P->rt, n);
    if (x != NULL)
      memcpy(x->data, s, n);
    v = (rt_value_t)x;
  }
  if (v == RT_NONE)
    return -ENOMEM;
  return push(P, v);
}

/* The rest of a string that has escapes: [START, P) is plain and P points
 * at the first backslash. */
static __attribute__((noinline)) int string_slow(parser_t *P,
                                                  const uint8_t **pp,
                                                  const uint8_t *start,
                                                  const uint8_t *end,
                                                  bool key) {
  const uint8_t *p = *pp;
  size_t n = (size_t)(p - start);
  if (n + 16 > P->scap && scratch_grow(P, n + 16) < 0)
    return -ENOMEM;
  memcpy(P->scratch, start, n);
  for (;;) {
    /* Room for the longest step: 4 bytes of a character or a pair. */
    if (RT__UNLIKELY(n + 8 > P->scap) && scratch_grow(P, n + 8) < 0)
      return -ENOMEM;
    if (p == end)
      FAIL(end, "'\"'");
    uint8_t c = *p;
    if (c == '"')
      break;
    if (c == '\\') {
      if (++p == end)
        FAIL(end, "an escape character");
      char e;
      switch (*p) {
      case '"':
        e = '"';
        break;
      case '\\':
        e = '\\';
        break;
      case '/':
        e = '/';
        break;
      case 'b':
        e = '\b';
        break;
      case 'f':
        e = '\f';
        break;
      case 'n':
        e = '\n';
        break;
      case 'r':
        e = '\r';
        break;
      case 't':
        e = '\t';
        break;
      case 'u': {
        uint32_t cp;
        int rc = read_u(P, p, end, &cp);
        if (rc < 0)
          return rc;
        p += 5;
        if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' &&
            p[1] == 'u') {
          uint32_t lo;
          rc = read_u(P, p + 1, end, &lo);
          if (rc < 0)
            return rc;
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
          }
        }
        if (cp >= 0xd800 && cp <= 0xdfff)
          cp = 0xfffd; /* a lone surrogate: UTF-8 cannot hold it */
        n += put_utf8(P->scratch + n, cp);
        continue;
      }
      default:
        FAIL(p, "an escape character (one of \"\\/bfnrtu)");
      }
      P->scratch[n++] = e;
      p++;
      continue;
    }
    if (c < 0x20)
      FAIL(p, "'\"' or a character (control characters must be escaped)");
    if (c >= 0x80) {
      int k = utf8_seq(p, end);
      if (k == 0)
        FAIL(p, "valid UTF-8");
      memcpy(P->scratch + n, p, (size_t)k);
      n += (size_t)k;
      p += k;
      continue;
    }
    P->scratch[n++] = (char)c;
    p++;
  }
  *pp = p + 1;
  return make_string(P, P->scratch, n, key);
}

/* GC point.  P points just after the opening quote. */
static inline int parse_string(parser_t *P, const uint8_t **pp,
                               const uint8_t *end, bool key) {
  const uint8_t *p = *pp, *start = p;
  for (;;) {
    while (end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      if (special8(w))
        break;
      p += 8;
    }
    if (p == end)
      FAIL(end, "'\"'");
    uint8_t c = *p;
    if (c == '"')
      break;
    if (c == '\\') {
      *pp = p;
      return string_slow(P, pp, start, end, key);
    }
    if (c < 0x20)
      FAIL(p, "'\"' or a character (control characters must be escaped)");
    if (c >= 0x80) {
      int k = utf8_seq(p, end);
      if (k == 0)
        FAIL(p, "valid UTF-8");
      p += k;
    } else {
      p++;
    }
  }
  *pp = p + 1;
  return make_string(P, (const char *)start, (size_t)(p - start), key);
}

/* --- Numbers ------------------------------------------------------------- */

static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static locale_t c_locale(void) {
  static locale_t loc;
  locale_t l = __atomic_load_n(&loc, __ATOMIC_ACQUIRE);
  if (l == (locale_t)0) {
    l = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    locale_t expect = (locale_t)0;
    if (!__atomic_compare_exchange_n(&loc, &expect, l, false,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      freelocale(l);
      l = expect;
    }
  }
  return l;
}

/* Correctly rounded conversion of the number text [S, E). */
static double slow_strtod(const uint8_t *s, const uint8_t *e) {
  char small[64];
  size_t n = (size_t)(e - s);
  char *buf = n < sizeof small ? small : malloc(n + 1);
  if (buf == NULL)
    return NAN;
  memcpy(buf, s, n);
  buf[n] = 0;
  double d = strtod_l(buf, NULL, c_locale());
  if (buf != small)
    free(buf);
  return d;
}

static inline bool is_digit(uint8_t c) { return (uint8_t)(c - '0') < 10; }

/* GC point.  P points at '-' or a digit. */
static int parse_number(parser_t *P, const uint8_t **pp, const uint8_t *end) {
  const uint8_t *p = *pp, *s = p;
  bool neg = false, is_int = true, many = false;
  uint64_t mant = 0;
  int nd = 0;    /* significant digits in mant */
  int64_t e10 = 0; /* value = mant * 10^e10 (when !many) */
  if (*p == '-') {
    neg = true;
    p++;
  }
  if (p == end || !is_digit(*p))
    FAIL(p, "a digit");
  if (*p == '0') {
    p++;
  } else {
    while (p < end && is_digit(*p)) {
      if (nd < 19) {
        mant = mant * 10 + (uint64_t)(*p - '0');
        nd++;
      } else {
        many = true;
      }
      p++;
    }
  }
  if (p < end && *p == '.') {
    is_int = false;
    p++;
    if (p == end || !is_digit(*p))
      FAIL(p, "a digit");
    while (p < end && is_digit(*p)) {
      if (nd < 19) {
        mant = mant * 10 + (uint64_t)(*p - '0');
        if (mant != 0)
          nd++;
        e10--;
      } else {
        many = true;
      }
      p++;
    }
  }
  if (p < end && (*p | 0x20) == 'e') {
    is_int = false;
    p++;
    bool eneg = false;
    if (p < end && (*p == '+' || *p == '-'))
      eneg = *p++ == '-';
    if (p == end || !is_digit(*p))
      FAIL(p, "a digit");
    int64_t x = 0;
    while (p < end && is_digit(*p)) {
      if (x < 100000000)
        x = x * 10 + (*p - '0');
      p++;
    }
    e10 += eneg ? -x : x;
  }
  *pp = p;
  if (is_int && !many && mant <= (uint64_t)RT_INT_MAX && !(neg && mant == 0))
    return push(P, rt_int(neg ? -(int64_t)mant : (int64_t)mant));
  double d;
  if (!many && mant <= ((uint64_t)1 << 53) && e10 >= -22 && e10 <= 22) {
    d = (double)mant;
    d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
    if (neg)
      d = -d;
  } else {
    d = slow_strtod(s, p);
  }
  rt__number_t *n = gc_alloc(P->h, &rt__number_type, sizeof *n);
  if (n == NULL)
    return -ENOMEM;
  n->d = d;
  return push(P, (rt_value_t)n);
}

/* --- Containers ---------------------------------------------------------- */

/* GC point.  Replaces the values above BASE with an array of them. */
static int close_array(parser_t *P, size_t base) {
  gc_heap_t *h = P->h;
  size_t n = P->nvals - base;
  rt__array_t *a = gc_alloc(h, &rt__array_type, sizeof *a);
  if (a == NULL || push(P, (rt_value_t)a) < 0)
    return -ENOMEM;
  if (n > 0) {
    if (n > UINT32_MAX)
      return -ENOMEM;
    rt__elements_t *s = gc_alloc(h, &rt__elements_type,
                                 sizeof *s + n * sizeof(rt_value_t));
    if (s == NULL)
      return -ENOMEM;
    s->cap = s->len = (uint32_t)n;
    const rt_value_t *v = P->vals + base;
    for (size_t i = 0; i < n; i++)
      gc_write(h, s, &s->v[i], (void *)v[i]);
    a = (rt__array_t *)P->vals[P->nvals - 1];
    GC_WRITE(h, a, store, s);
  }
  P->vals[base] = (rt_value_t)a;
  P->nvals = base + 1;
  return 0;
}

/* GC point.  Replaces the key/value pairs above BASE with a map. */
static int close_object(parser_t *P, size_t base) {
  gc_heap_t *h = P->h;
  size_t n = (P->nvals - base) / 2;
  rt__map_t *m = gc_alloc(h, &rt__map_type, sizeof *m);
  if (m == NULL || push(P, (rt_value_t)m) < 0)
    return -ENOMEM;
  if (n > 0) {
    rt__table_t *t = rt__table_alloc(P->rt, n);
    if (t == NULL)
      return -ENOMEM;
    const rt_value_t *v = P->vals + base;
    for (size_t i = 0; i < n; i++)
      rt__table_put(h, t, v[2 * i], v[2 * i + 1]);
    m = (rt__map_t *)P->vals[P->nvals - 1];
    GC_WRITE(h, m, table, t);
  }
  P->vals[base] = (rt_value_t)m;
  P->nvals = base + 1;
  return 0;
}

static int open_frame(parser_t *P, const uint8_t *at, uint32_t kind,
                      unsigned max_depth) {
  if (P->nframes >= max_depth)
    return fail(P, at, "less nesting (the depth limit)", -E2BIG);
  if (P->nframes == P->capframes) {
    size_t cap = P->capframes ? P->capframes * 2 : 64;
    frame_t *f = realloc(P->frames, cap * sizeof *f);
    if (f == NULL)
      return -ENOMEM;
    P->frames = f;
    P->capframes = cap;
  }
  P->frames[P->nframes].base = P->nvals;
  P->frames[P->nframes].kind = kind;
  P->nframes++;
  return 0;
}

/* --- The parser ------------------------------------------------------------ */

#define SKIP_WS()                                                             \
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))    \
  p++

#define CHECK(expr)                                                           \
  do {                                                                        \
    int rc_ = (expr);                                                         \
    if (rc_ < 0)                                                              \
      return rc_;                                                             \
  } while (0)

static int literal(parser_t *P, const uint8_t **pp, const uint8_t *end,
                   const char *word, size_t n, rt_value_t v) {
  const uint8_t *p = *pp;
  for (size_t i = 0; i < n; i++)
    if (p + i == end || p[i] != (uint8_t)word[i])
      FAIL(p + i, i == 0 ? "a value" : word);
  *pp = p + n;
  return push(P, v);
}

static int parse(parser_t *P, const uint8_t *p, const uint8_t *end,
                 unsigned max_depth) {
value:
  SKIP_WS();
  if (p == end)
    FAIL(p, "a value");
  switch (*p) {
  case '"':
    p++;
    CHECK(parse_string(P, &p, end, false));
    goto next;
  case '{':
    CHECK(open_frame(P, p, '{', max_depth));
    p++;
    SKIP_WS();
    if (p < end && *p == '}') {
      p++;
      CHECK(close_object(P, P->frames[--P->nframes].base));
      goto next;
    }
    if (p == end || *p != '"')
      FAIL(p, "'\"' (a key) or '}'");
    goto key;
  case '[':
    CHECK(open_frame(P, p, '[', max_depth));
    p++;
    SKIP_WS();
    if (p < end && *p == ']') {
      p++;
      CHECK(close_array(P, P->frames[--P->nframes].base));
      goto next;
    }
    goto value;
  case 't':
    CHECK(literal(P, &p, end, "true", 4, RT_TRUE));
    goto next;
  case 'f':
    CHECK(literal(P, &p, end, "false", 5, RT_FALSE));
    goto next;
  case 'n':
    CHECK(literal(P, &p, end, "null", 4, RT_NULL));
    goto next;
  default:
    if (*p == '-' || is_digit(*p)) {
      CHECK(parse_number(P, &p, end));
      goto next;
    }
    FAIL(p, "a value");
  }

key: /* p points at the key's opening quote */
  p++;
  CHECK(parse_string(P, &p, end, true));
  SKIP_WS();
  if (p == end || *p != ':')
    FAIL(p, "':'");
  p++;
  goto value;

next:
  if (P->nframes == 0) {
    SKIP_WS();
    if (p != end)
      FAIL(p, "end of input");
    return 0;
  }
  SKIP_WS();
  if (P->frames[P->nframes - 1].kind == '[') {
    if (p < end && *p == ',') {
      p++;
      goto value;
    }
    if (p < end && *p == ']') {
      p++;
      CHECK(close_array(P, P->frames[--P->nframes].base));
      goto next;
    }
    FAIL(p, "',' or ']'");
  }
  if (p < end && *p == ',') {
    p++;
    SKIP_WS();
    if (p == end || *p != '"')
      FAIL(p, "'\"' (a key)");
    goto key;
  }
  if (p < end && *p == '}') {
    p++;
    CHECK(close_object(P, P->frames[--P->nframes].base));
    goto next;
  }
  FAIL(p, "',' or '}'");
}

int rt_json_parse(rt_runtime_t *rt, const char *text, size_t len,
                  const rt_json_options_t *o, rt_value_t *out,
                  rt_json_error_t *err) {
  if (rt == NULL || (text == NULL && len > 0) || out == NULL)
    return -EINVAL;
  unsigned max_depth = o && o->max_depth ? o->max_depth : RT_JSON_DEFAULT_DEPTH;
  parser_t P;
  memset(&P, 0, sizeof P);
  P.rt = rt;
  P.h = rt->heap;
  P.start = (const uint8_t *)text;
  P.err = err;
  int rc = gc_root_tracer_add(P.h, trace_vals, &P, "(JSON parser)");
  if (rc < 0)
    return rc;
  rc = parse(&P, P.start, P.start + len, max_depth);
  if (rc == -ENOMEM && err) {
    err->offset = 0;
    err->expected = "memory";
  }
  gc_root_tracer_remove(P.h, trace_vals, &P);
  if (rc == 0)
    *out = P.vals[0];
  free(P.vals);
  free(P.frames);
  free(P.scratch);
  return rc;
}
