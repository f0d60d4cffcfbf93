/* encoding.c -- node's Buffer encodings, iconv charsets, the streaming
 * decoder.
 *
 * Encoders read valid UTF-8 (rt_encode first decodes invalid input with
 * replacement), as code points or, where node's semantics are UTF-16's, as
 * UTF-16 code units (units_t).  Decoders write whole characters of valid
 * UTF-8 into a strbuf; the built-in ones reserve their bound first and
 * write in place.
 *
 * The iconv decoder keeps back, between chunks, the tail iconv did not
 * convert for want of bytes: EINVAL (an incomplete character), and also
 * EILSEQ within the last RT_DECODER_HOLD bytes, so that the result does
 * not depend on every converter telling a cut character from an invalid
 * one (those of glibc 2.36 tested here do).  INV(decoder): pending holds at
 * most RT_DECODER_HOLD bytes not converted yet, and iconv's shift state is the
 * state before them; with more input they are converted again followed by
 * it.  So each error iconv reports before the true end of the input has
 * been seen with more than RT_DECODER_HOLD bytes after it (more than the
 * longest character of any charset) or is held: a chunked decode makes the
 * decisions the one-piece decode makes, wherever the cuts fall.  On an
 * error one U+FFFD replaces one byte and decoding resumes at the next,
 * which always makes progress.
 */
#include <errno.h>
#include <iconv.h>

#include "rt_internal.h"

#include <tenure/rt_encoding.h>

/* --- Names ------------------------------------------------------------- */

static const char *const canonical[] = {
    "utf8", "utf16le", "latin1", "ascii", "base64", "base64url", "hex"};

static const struct {
  const char *name;
  rt_encoding_kind_t kind;
} aliases[] = {
    {"utf8", RT_ENC_UTF8},           {"utf-8", RT_ENC_UTF8},
    {"ucs2", RT_ENC_UTF16LE},        {"ucs-2", RT_ENC_UTF16LE},
    {"utf16le", RT_ENC_UTF16LE},     {"utf-16le", RT_ENC_UTF16LE},
    {"latin1", RT_ENC_LATIN1},       {"binary", RT_ENC_LATIN1},
    {"ascii", RT_ENC_ASCII},         {"base64", RT_ENC_BASE64},
    {"base64url", RT_ENC_BASE64URL}, {"hex", RT_ENC_HEX},
};

/* S[0..N) equals LOWER (lowercase, NUL-terminated) ignoring ASCII case. */
static bool name_is(const char *s, size_t n, const char *lower) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c + ('a' - 'A'));
    if (lower[i] == '\0' || c != lower[i]) /* S is longer, or differs */
      return false;
  }
  return lower[n] == '\0';
}

/* The characters of glibc's charset names and aliases; never '/' or ','
 * (iconv's "//TRANSLIT,IGNORE" suffixes). */
static bool charset_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
         c == ':' || c == '(' || c == ')';
}

/* The error of a failed iconv_open: an unknown conversion is -EINVAL. */
static int open_error(void) {
  int e = errno;
  return e == ENOMEM || e == EMFILE || e == ENFILE ? -e : -EINVAL;
}

int rt_encoding_builtin(rt_encoding_kind_t kind, rt_encoding_t *out) {
  if ((unsigned)kind >= RT_ENC_ICONV)
    return -EINVAL;
  memset(out, 0, sizeof *out);
  out->kind = kind;
  strcpy(out->name, canonical[kind]);
  return 0;
}

int rt_encoding_lookup(const char *name, size_t len, rt_encoding_t *out) {
  if (name == NULL || len == 0 || len > RT_ENCODING_NAME_MAX)
    return -EINVAL;
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (name_is(name, len, aliases[i].name))
      return rt_encoding_builtin(aliases[i].kind, out);
  for (size_t i = 0; i < len; i++)
    if (!charset_char(name[i]))
      return -EINVAL;
  rt_encoding_t e;
  memset(&e, 0, sizeof e);
  e.kind = RT_ENC_ICONV;
  memcpy(e.name, name, len);
  iconv_t cd = iconv_open("UTF-8", e.name);
  if (cd == (iconv_t)-1)
    return open_error();
  iconv_close(cd);
  *out = e;
  return 0;
}

int rt_encoding_from_content_type(const char *v, size_t len,
                                  rt_encoding_t *out) {
  const char *e = v + len, *p = memchr(v, ';', len);
  if (p == NULL)
    return -ENOENT;
  /* INV: p is at a ';' that starts a parameter, or at e. */
  while (p < e) {
    p++;
    while (p < e && rt__is_ows(*p))
      p++;
    const char *name = p;
    while (p < e && *p != '=' && *p != ';')
      p++;
    size_t nl = (size_t)(p - name);
    while (nl > 0 && rt__is_ows(name[nl - 1]))
      nl--;
    if (p == e || *p == ';')
      continue; /* no value */
    p++;
    /* The value, unquoted; one byte too many says it is too long. */
    char val[RT_ENCODING_NAME_MAX + 1];
    size_t vl = 0;
    while (p < e && rt__is_ows(*p))
      p++;
    if (p < e && *p == '"') {
      for (p++; p < e && *p != '"'; p++) {
        if (*p == '\\' && p + 1 < e)
          p++;
        if (vl < sizeof val)
          val[vl++] = *p;
      }
    } else {
      const char *s = p;
      while (p < e && *p != ';')
        p++;
      size_t n = (size_t)(p - s);
      while (n > 0 && rt__is_ows(s[n - 1]))
        n--;
      vl = n < sizeof val ? n : sizeof val;
      memcpy(val, s, vl);
    }
    while (p < e && *p != ';')
      p++;
    if (nl == 7 && name_is(name, nl, "charset"))
      return rt_encoding_lookup(val, vl, out); /* too long: -EINVAL */
  }
  return -ENOENT;
}

/* --- UTF-8 and UTF-16 code units ---------------------------------------- */

/* The length of the (valid) UTF-8 sequence lead byte C starts. */
static inline size_t lead_len(uint8_t c) {
  return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* The code point at *PP (valid UTF-8), advancing *PP past it. */
static inline uint32_t utf8_next(const uint8_t **pp) {
  const uint8_t *p = *pp;
  uint32_t c = p[0];
  *pp = p + lead_len(p[0]);
  if (c < 0x80)
    return c;
  if (c < 0xe0)
    return (c & 0x1f) << 6 | (p[1] & 0x3fu);
  if (c < 0xf0)
    return (c & 0x0f) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
  return (c & 0x07) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 |
         (p[3] & 0x3fu);
}

/* Writes CP (a scalar value) as UTF-8 at O; returns the end. */
static inline uint8_t *put_cp(uint8_t *o, uint32_t cp) {
  if (cp < 0x80) {
    *o++ = (uint8_t)cp;
  } else if (cp < 0x800) {
    *o++ = (uint8_t)(0xc0 | cp >> 6);
    *o++ = (uint8_t)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *o++ = (uint8_t)(0xe0 | cp >> 12);
    *o++ = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    *o++ = (uint8_t)(0x80 | (cp & 0x3f));
  } else {
    *o++ = (uint8_t)(0xf0 | cp >> 18);
    *o++ = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    *o++ = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    *o++ = (uint8_t)(0x80 | (cp & 0x3f));
  }
  return o;
}

/* Valid UTF-8 read as the UTF-16 code units of a JS string. */
typedef struct units_s {
  const uint8_t *p, *e;
  uint16_t low; /* the low surrogate of the last code point read, or 0 */
} units_t;

/* The next code unit, or -1 at the end. */
static inline int unit_next(units_t *u) {
  if (u->low != 0) {
    int c = u->low;
    u->low = 0;
    return c;
  }
  if (u->p == u->e)
    return -1;
  uint32_t cp = utf8_next(&u->p);
  if (cp < 0x10000)
    return (int)cp;
  cp -= 0x10000;
  u->low = (uint16_t)(0xdc00 | (cp & 0x3ff));
  return (int)(0xd800 | cp >> 10);
}

/* --- Encoding: text to bytes --------------------------------------------- */

/* Both alphabets: '+' and '-' are 62, '/' and '_' 63. */
static inline int sextet(int c) {
  unsigned u = (unsigned)c & 0xff;
  if (u - 'A' < 26)
    return (int)(u - 'A');
  if (u - 'a' < 26)
    return (int)(u - 'a' + 26);
  if (u - '0' < 10)
    return (int)(u - '0' + 52);
  if (u == '+' || u == '-')
    return 62;
  if (u == '/' || u == '_')
    return 63;
  return -1;
}

/* Runs iconv on *IN[0..*LEFT) into OUT, growing it, until the input is
 * consumed (*ERR = 0) or iconv stops before a character (*ERR = EILSEQ or
 * EINVAL, *IN at it).  IN NULL writes the return to the initial shift
 * state.  Returns 0 or -ENOMEM. */
static int iconv_run(iconv_t cd, const uint8_t **in, size_t *left,
                     rt_strbuf_t *out, int *err) {
  size_t want = left && *left < SIZE_MAX / 2 ? *left + 16 : 16;
  for (;;) {
    if (rt_strbuf_reserve(out, want) < 0)
      return out->error;
    char *ip = in ? (char *)*in : NULL;
    char *o = out->data + out->len;
    size_t room = out->cap - out->len;
    size_t r = iconv(cd, in ? &ip : NULL, left, &o, &room);
    int e = errno;
    out->len = (size_t)(o - out->data);
    if (in)
      *in = (const uint8_t *)ip;
    if (r != (size_t)-1) {
      *err = 0;
      return 0;
    }
    if (e != E2BIG) {
      *err = e == EINVAL ? EINVAL : EILSEQ;
      return 0;
    }
    want = out->cap - out->len + 64; /* reserve at least doubles cap */
  }
}

static int iconv_encode(const char *charset, const uint8_t *p, size_t n,
                        rt_strbuf_t *out) {
  iconv_t cd = iconv_open(charset, "UTF-8");
  if (cd == (iconv_t)-1)
    return open_error();
  int rc = 0, err;
  while (n > 0) {
    if ((rc = iconv_run(cd, &p, &n, out, &err)) < 0 || err == 0)
      break;
    /* A character the charset lacks (the input is whole valid UTF-8, so
     * never a cut one): the charset's '?' through the same descriptor, so
     * a stateful charset shifts as it must. */
    const uint8_t *q = (const uint8_t *)"?";
    size_t ql = 1;
    if ((rc = iconv_run(cd, &q, &ql, out, &err)) < 0)
      break;
    size_t k = (*p & 0xc0) == 0x80 ? 1 : lead_len(*p);
    k = k < n ? k : n;
    p += k;
    n -= k;
  }
  if (rc == 0)
    rc = iconv_run(cd, NULL, NULL, out, &err);
  iconv_close(cd);
  return rc;
}

/* Encodes valid UTF-8 P[0..N). */
static int encode_valid(const rt_encoding_t *enc, const uint8_t *p, size_t n,
                        rt_strbuf_t *out) {
  if (enc->kind == RT_ENC_UTF8)
    return rt_strbuf_append(out, p, n);
  if (enc->kind == RT_ENC_ICONV) {
    if (memchr(enc->name, '\0', sizeof enc->name) == NULL)
      return -EINVAL;
    return iconv_encode(enc->name, p, n, out);
  }
  if ((unsigned)enc->kind > RT_ENC_ICONV)
    return -EINVAL;
  /* Every byte of UTF-8 gives at most two (UTF-16's worst case). */
  if (n > SIZE_MAX / 2 - 8 || rt_strbuf_reserve(out, 2 * n + 8) < 0)
    return out->error ? out->error : -ENOMEM;
  uint8_t *o = (uint8_t *)out->data + out->len;
  units_t u = {p, p + n, 0};
  int c;
  switch (enc->kind) {
  case RT_ENC_UTF16LE:
    while ((c = unit_next(&u)) >= 0) {
      *o++ = (uint8_t)c;
      *o++ = (uint8_t)(c >> 8);
    }
    break;
  case RT_ENC_LATIN1:
  case RT_ENC_ASCII:
    while ((c = unit_next(&u)) >= 0)
      *o++ = (uint8_t)c;
    break;
  case RT_ENC_HEX:
    for (;;) {
      int a = unit_next(&u), b = a < 0 ? -1 : unit_next(&u);
      if (b < 0 || rt__hexval(a) < 0 || rt__hexval(b) < 0)
        break;
      *o++ = (uint8_t)(rt__hexval(a) << 4 | rt__hexval(b));
    }
    break;
  default: { /* base64, base64url */
    uint32_t acc = 0;
    int k = 0; /* sextets in acc */
    while ((c = unit_next(&u)) >= 0) {
      int s = sextet(c);
      if (s < 0) {
        if ((c & 0xff) == '=')
          break;
        continue;
      }
      acc = acc << 6 | (uint32_t)s;
      if (++k == 4) {
        *o++ = (uint8_t)(acc >> 16);
        *o++ = (uint8_t)(acc >> 8);
        *o++ = (uint8_t)acc;
        acc = 0;
        k = 0;
      }
    }
    if (k == 2) {
      *o++ = (uint8_t)(acc >> 4);
    } else if (k == 3) {
      *o++ = (uint8_t)(acc >> 10);
      *o++ = (uint8_t)(acc >> 2);
    }
    break;
  }
  }
  out->len = (size_t)(o - (uint8_t *)out->data);
  return 0;
}

int rt_encode(const rt_encoding_t *enc, const void *text, size_t len,
              rt_strbuf_t *out) {
  if (out->error)
    return out->error;
  const uint8_t *p = text;
  rt_strbuf_t clean;
  rt_strbuf_init(&clean);
  if (rt_utf8_valid_prefix(p, len) != len) {
    rt_utf8_decoder_t d;
    rt_utf8_decoder_init(&d);
    if (rt_utf8_decode(&d, p, len, true, &clean) < 0) {
      rt_strbuf_free(&clean);
      return -ENOMEM;
    }
    p = (const uint8_t *)clean.data;
    len = clean.len;
  }
  int rc = encode_valid(enc, p, len, out);
  rt_strbuf_free(&clean);
  return rc;
}

/* --- Decoding: bytes to text ---------------------------------------------- */

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Writes the base64 of Q[0..N) (1 <= N <= 3) at O; returns the end. */
static uint8_t *b64_quantum(uint8_t *o, const uint8_t *q, size_t n, bool url) {
  const char *a = url ? b64_url : b64_std;
  uint32_t v = (uint32_t)q[0] << 16 | (n > 1 ? (uint32_t)q[1] << 8 : 0) |
               (n > 2 ? q[2] : 0);
  *o++ = (uint8_t)a[v >> 18];
  *o++ = (uint8_t)a[v >> 12 & 63];
  if (n > 1)
    *o++ = (uint8_t)a[v >> 6 & 63];
  else if (!url)
    *o++ = '=';
  if (n > 2)
    *o++ = (uint8_t)a[v & 63];
  else if (!url)
    *o++ = '=';
  return o;
}

/* The UTF-8 of UTF-16 code unit U, pairing surrogates through D->high. */
static uint8_t *put_unit(rt_decoder_t *d, uint8_t *o, uint32_t u) {
  if (d->high != 0) {
    uint32_t hi = d->high;
    d->high = 0;
    if (u >= 0xdc00 && u <= 0xdfff)
      return put_cp(o, 0x10000 + ((hi - 0xd800) << 10) + (u - 0xdc00));
    o = put_cp(o, 0xfffd);
  }
  if (u >= 0xd800 && u <= 0xdbff) {
    d->high = (uint16_t)u;
    return o;
  }
  return put_cp(o, u >= 0xdc00 && u <= 0xdfff ? 0xfffd : u);
}

/* The decoders with a bound on their output: at most 2 N + 16 bytes
 * (utf16le 3 per 2 bytes and two U+FFFD, latin1 and hex 2 per byte,
 * base64 4 per 3 and a quantum). */
static int decode_bounded(rt_decoder_t *d, const uint8_t *p, size_t n,
                          bool final, rt_strbuf_t *out) {
  if (n > SIZE_MAX / 2 - 16 || rt_strbuf_reserve(out, 2 * n + 16) < 0)
    return out->error ? out->error : -ENOMEM;
  uint8_t *o = (uint8_t *)out->data + out->len;
  const uint8_t *e = p + n;
  static const char digits[] = "0123456789abcdef";
  switch (d->kind) {
  case RT_ENC_UTF16LE:
    if (d->npending == 1 && p < e) {
      o = put_unit(d, o, d->pending[0] | (uint32_t)*p++ << 8);
      d->npending = 0;
    }
    for (; e - p >= 2; p += 2)
      o = put_unit(d, o, p[0] | (uint32_t)p[1] << 8);
    if (p < e)
      d->pending[d->npending++] = *p;
    if (final) {
      d->npending = 0; /* an odd last byte is dropped, as node does */
      if (d->high != 0) {
        d->high = 0;
        o = put_cp(o, 0xfffd);
      }
    }
    break;
  case RT_ENC_LATIN1:
    for (; p < e; p++)
      o = put_cp(o, *p);
    break;
  case RT_ENC_ASCII:
    for (; p < e; p++)
      *o++ = *p & 0x7f;
    break;
  case RT_ENC_HEX:
    for (; p < e; p++) {
      *o++ = (uint8_t)digits[*p >> 4];
      *o++ = (uint8_t)digits[*p & 15];
    }
    break;
  default: { /* base64, base64url: INV: npending < 3 */
    bool url = d->kind == RT_ENC_BASE64URL;
    while (d->npending > 0 && d->npending < 3 && p < e)
      d->pending[d->npending++] = *p++;
    if (d->npending == 3) {
      o = b64_quantum(o, d->pending, 3, url);
      d->npending = 0;
    }
    for (; e - p >= 3; p += 3)
      o = b64_quantum(o, p, 3, url);
    while (p < e)
      d->pending[d->npending++] = *p++;
    if (final && d->npending > 0) {
      o = b64_quantum(o, d->pending, d->npending, url);
      d->npending = 0;
    }
    break;
  }
  }
  out->len = (size_t)(o - (uint8_t *)out->data);
  return 0;
}

static const uint8_t replacement[3] = {0xef, 0xbf, 0xbd};

/* Replaces what iconv wrote to OUT from START on by valid UTF-8: glibc
 * writes code points beyond U+10FFFF (from UCS-4, say) as 4- to 6-byte
 * forms, each of which becomes one U+FFFD. */
static int keep_valid(rt_strbuf_t *out, size_t start) {
  size_t n = out->len - start;
  if (rt_utf8_valid_prefix(out->data + start, n) == n)
    return 0;
  uint8_t *copy = malloc(n);
  if (copy == NULL)
    return -ENOMEM;
  memcpy(copy, out->data + start, n);
  out->len = start;
  const uint8_t *p = copy, *e = copy + n;
  int rc = 0;
  while (p < e) {
    size_t ok = rt_utf8_valid_prefix(p, (size_t)(e - p));
    if ((rc = rt_strbuf_append(out, p, ok)) < 0)
      break;
    p += ok;
    if (p == e)
      break;
    size_t k = *p >= 0xfc ? 6 : *p >= 0xf8 ? 5 : *p >= 0xf0 ? 4 : 1, i = 1;
    while (i < k && p + i < e && (p[i] & 0xc0) == 0x80)
      i++;
    p += i;
    if ((rc = rt_strbuf_append(out, replacement, 3)) < 0)
      break;
  }
  free(copy);
  return rc;
}

/* Converts P[0..N), U+FFFD for each byte iconv refuses.  With HOLD (more
 * input follows) a refused tail of at most RT_DECODER_HOLD bytes is left
 * unconverted: *HELD is its length. */
static int iconv_feed(rt_decoder_t *d, const uint8_t *p, size_t n, bool hold,
                      size_t *held, rt_strbuf_t *out) {
  size_t start = out->len;
  int rc = 0, err;
  *held = 0;
  while (n > 0) {
    if ((rc = iconv_run(d->cd, &p, &n, out, &err)) < 0 || err == 0)
      break;
    if (hold && n <= RT_DECODER_HOLD) {
      *held = n;
      break;
    }
    if ((rc = rt_strbuf_append(out, replacement, 3)) < 0)
      break;
    p++;
    n--;
  }
  return rc < 0 ? rc : keep_valid(out, start);
}

static int iconv_decode(rt_decoder_t *d, const uint8_t *p, size_t n, bool final,
                        rt_strbuf_t *out) {
  size_t held;
  int rc;
  /* The pending bytes followed by as much of P as fits in TMP. */
  while (d->npending > 0 && (n > 0 || final)) {
    uint8_t tmp[4 * RT_DECODER_HOLD];
    size_t k = d->npending, m = sizeof tmp - k < n ? sizeof tmp - k : n;
    memcpy(tmp, d->pending, k);
    memcpy(tmp + k, p, m);
    if ((rc = iconv_feed(d, tmp, k + m, !(final && m == n), &held, out)) < 0)
      return rc;
    size_t used = k + m - held;
    if (m == n) {
      /* All of P was in TMP: what is held is the new pending. */
      memmove(d->pending, tmp + used, held);
      d->npending = (uint8_t)held;
      p += n;
      n = 0;
      break;
    }
    /* held <= RT_DECODER_HOLD < m: the held tail starts within P, where
     * the loop below converts it again with the bytes after it. */
    d->npending = 0;
    p += used - k;
    n -= used - k;
  }
  if (n > 0) {
    if ((rc = iconv_feed(d, p, n, !final, &held, out)) < 0)
      return rc;
    memcpy(d->pending, p + n - held, held);
    d->npending = (uint8_t)held;
  }
  if (final) {
    int err;
    d->npending = 0;
    size_t start = out->len;
    if ((rc = iconv_run(d->cd, NULL, NULL, out, &err)) < 0 ||
        (rc = keep_valid(out, start)) < 0)
      return rc;
    iconv(d->cd, NULL, NULL, NULL, NULL); /* the initial state again */
  }
  return 0;
}

int rt_decoder_init(rt_decoder_t *d, const rt_encoding_t *enc) {
  memset(d, 0, sizeof *d);
  if ((unsigned)enc->kind > RT_ENC_ICONV)
    return -EINVAL;
  d->kind = enc->kind;
  rt_utf8_decoder_init(&d->utf8);
  if (enc->kind == RT_ENC_ICONV) {
    if (memchr(enc->name, '\0', sizeof enc->name) == NULL)
      return -EINVAL;
    iconv_t cd = iconv_open("UTF-8", enc->name);
    if (cd == (iconv_t)-1)
      return open_error();
    d->cd = cd;
  }
  return 0;
}

int rt_decoder_write(rt_decoder_t *d, const void *p, size_t n, bool final,
                     rt_strbuf_t *out) {
  if (out->error)
    return out->error;
  switch (d->kind) {
  case RT_ENC_UTF8:
    return rt_utf8_decode(&d->utf8, p, n, final, out);
  case RT_ENC_ICONV:
    return iconv_decode(d, p, n, final, out);
  default:
    return decode_bounded(d, p, n, final, out);
  }
}

void rt_decoder_free(rt_decoder_t *d) {
  if (d->cd != NULL)
    iconv_close((iconv_t)d->cd);
  d->cd = NULL;
}

int rt_decode(const rt_encoding_t *enc, const void *p, size_t n,
              rt_strbuf_t *out) {
  rt_decoder_t d;
  int rc = rt_decoder_init(&d, enc);
  if (rc == 0)
    rc = rt_decoder_write(&d, p, n, true, out);
  rt_decoder_free(&d);
  return rc;
}

/* --- Heap values ------------------------------------------------------- */

rt_value_t rt_buffer_from_string_enc(rt_runtime_t *rt, const rt_value_t *str,
                                     const rt_encoding_t *enc) {
  if (!rt_is_string(*str))
    return RT_NONE;
  if (enc->kind == RT_ENC_UTF8 &&
      rt_utf8_valid_prefix(rt_string_data(*str), rt_string_length(*str)) ==
          rt_string_length(*str))
    return rt_buffer_from_string(rt, str);
  /* Encoded off the heap first: the string is read before the GC point. */
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  rt_value_t v = RT_NONE;
  if (rt_encode(enc, rt_string_data(*str), rt_string_length(*str), &b) == 0)
    v = rt_buffer_from(rt, b.data, b.len);
  rt_strbuf_free(&b);
  return v;
}

rt_value_t rt_string_from_bytes_enc(rt_runtime_t *rt, const void *p, size_t len,
                                    const rt_encoding_t *enc) {
  if (enc->kind == RT_ENC_UTF8)
    return rt_string_from_bytes(rt, p, len);
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  rt_value_t v = RT_NONE;
  if (rt_decode(enc, p, len, &b) == 0)
    v = rt_strbuf_finish(rt, &b);
  rt_strbuf_free(&b);
  return v;
}

rt_value_t rt_buffer_to_string_enc(rt_runtime_t *rt, const rt_value_t *buf,
                                   const rt_encoding_t *enc) {
  if (!rt_is_buffer(*buf))
    return RT_NONE;
  /* A buffer's bytes never move. */
  return rt_string_from_bytes_enc(rt, rt_buffer_data(*buf),
                                  rt_buffer_length(*buf), enc);
}
