/* cookie.c -- the Cookie header, Set-Cookie values and signed cookies.
 *
 * Parsing never fails: a pair it cannot read is skipped, a value it cannot
 * decode is kept as written (the cookie package's rules, see rt_cookie.h).
 * Serializing refuses what would split or inject a header (CR, LF, ';' and
 * control bytes in a name, path or domain; values are percent-encoded, so
 * any bytes are safe).  Signatures are HMAC-SHA256 from OpenSSL's libcrypto,
 * checked with CRYPTO_memcmp so the time taken says nothing about how much
 * of a forged signature matched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <tenure/rt_cookie.h>

#include "rt_internal.h"
#include <tenure/rt_map.h>
#include <tenure/rt_string.h>

#define SIG_B64 43 /* 32 bytes of HMAC-SHA256 in unpadded base64 */

/* --- Parsing ------------------------------------------------------------------ */

/* Percent-decodes V (N bytes) into OUT (N bytes of room); returns the
 * decoded length, or -1 when an escape is malformed (decodeURIComponent
 * would throw: the raw value is kept).  The decoded bytes need not be
 * UTF-8: this layer deals in bytes, so that every value serialized reads
 * back as it was (the fuzzer checks it); rt_cookie_parse turns invalid
 * UTF-8 into U+FFFD. */
static long decode(const char *v, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] != '%') {
      out[o++] = v[i];
      continue;
    }
    int a = i + 1 < n ? rt__hexval(v[i + 1]) : -1;
    int b = i + 2 < n ? rt__hexval(v[i + 2]) : -1;
    if (a < 0 || b < 0)
      return -1;
    out[o++] = (char)(a * 16 + b);
    i += 2;
  }
  return (long)o;
}

int rt_cookie_each(const char *hdr, size_t len, rt_cookie_fn fn, void *data) {
  size_t i = 0;
  char small[256];
  while (i < len) {
    size_t end = i;
    while (end < len && hdr[end] != ';')
      end++;
    const char *pair = hdr + i;
    size_t plen = end - i;
    i = end + 1;
    const char *eq = memchr(pair, '=', plen);
    if (eq == NULL)
      continue; /* no '=': skipped */
    const char *name = pair, *value = eq + 1;
    size_t nlen = (size_t)(eq - pair), vlen = plen - nlen - 1;
    rt__trim_ows(&name, &nlen);
    rt__trim_ows(&value, &vlen);
    if (nlen == 0)
      continue;
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
      value++;
      vlen -= 2;
    }
    int r;
    if (memchr(value, '%', vlen) == NULL) {
      r = fn(data, name, nlen, value, vlen);
    } else {
      char *buf = vlen <= sizeof small ? small : malloc(vlen);
      long d = buf != NULL ? decode(value, vlen, buf) : -1;
      r = d >= 0 ? fn(data, name, nlen, buf, (size_t)d)
                 : fn(data, name, nlen, value, vlen);
      if (buf != small)
        free(buf);
    }
    if (r != 0)
      return r;
  }
  return 0;
}

typedef struct to_map_s {
  rt_runtime_t *rt;
  rt_value_t *map;
} to_map_t;

static int put(void *data, const char *name, size_t nlen, const char *value,
               size_t vlen) {
  to_map_t *m = data;
  gc_heap_t *h = rt_heap(m->rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  int err = -ENOMEM;
  rt_value_t *k = rt_handle(h, rt_string_from_bytes(m->rt, name, nlen));
  if (*k != RT_NONE) {
    if (rt_map_has(*m->map, *k)) {
      err = 0; /* the first of duplicate names wins */
    } else {
      rt_value_t *v = rt_handle(h, rt_string_from_bytes(m->rt, value, vlen));
      if (*v != RT_NONE)
        err = rt_map_set(m->rt, m->map, k, v);
    }
  }
  gc_scope_close(h, &s);
  return err;
}

rt_value_t rt_cookie_parse(rt_runtime_t *rt, const char *hdr, size_t len) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *map = rt_handle(h, rt_map_new(rt, 0));
  rt_value_t out = RT_NONE;
  if (*map != RT_NONE) {
    to_map_t m = {rt, map};
    if (rt_cookie_each(hdr, len, put, &m) == 0)
      out = *map;
  }
  gc_scope_close(h, &s);
  return out;
}

/* --- Serializing -------------------------------------------------------------- */

static bool is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c != 0 && strchr("!#$&'*+-.^_`|~", c));
}

/* RFC 6265's cookie-octet, less '%' (kept for the escapes). */
static bool is_cookie_octet(unsigned char c) {
  return c == 0x21 || (c >= 0x23 && c <= 0x2b && c != 0x25) ||
         (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e);
}

static bool attr_ok(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == ';')
      return false;
  return true;
}

typedef struct out_s {
  char *buf;
  size_t cap, len;
  bool full;
} out_t;

static void put_bytes(out_t *o, const char *s, size_t n) {
  if (o->len + n + 1 > o->cap) {
    o->full = true;
    return;
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = '\0';
}

static void put_str(out_t *o, const char *s) { put_bytes(o, s, strlen(s)); }

void rt_cookie_opts_init(rt_cookie_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->max_age = -1;
}

int rt_cookie_serialize(char *buf, size_t cap, const char *name,
                        const char *value, size_t value_len,
                        const rt_cookie_opts_t *opts) {
  rt_cookie_opts_t none;
  if (opts == NULL) {
    rt_cookie_opts_init(&none);
    opts = &none;
  }
  if (buf == NULL || name == NULL || name[0] == '\0' ||
      (value == NULL && value_len > 0))
    return -EINVAL;
  for (const char *p = name; *p; p++)
    if (!is_tchar((unsigned char)*p))
      return -EINVAL;
  if ((opts->path != NULL && !attr_ok(opts->path)) ||
      (opts->domain != NULL && !attr_ok(opts->domain)))
    return -EINVAL;
  out_t o = {buf, cap, 0, false};
  if (cap > 0)
    buf[0] = '\0';
  put_str(&o, name);
  put_str(&o, "=");
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < value_len; i++) {
    unsigned char c = (unsigned char)value[i];
    if (is_cookie_octet(c)) {
      put_bytes(&o, (const char *)&c, 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      put_bytes(&o, e, 3);
    }
  }
  char num[64];
  if (opts->max_age >= 0) {
    snprintf(num, sizeof num, "; Max-Age=%lld", (long long)opts->max_age);
    put_str(&o, num);
  }
  if (opts->domain != NULL) {
    put_str(&o, "; Domain=");
    put_str(&o, opts->domain);
  }
  if (opts->path != NULL) {
    put_str(&o, "; Path=");
    put_str(&o, opts->path);
  }
  if (opts->expires != 0) {
    time_t t = (time_t)opts->expires;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
      return -EINVAL;
    strftime(num, sizeof num, "; Expires=%a, %d %b %Y %H:%M:%S GMT", &tm);
    put_str(&o, num);
  }
  if (opts->http_only)
    put_str(&o, "; HttpOnly");
  /* SameSite=None without Secure is refused by browsers: force it. */
  if (opts->secure || opts->same_site == RT_SAME_SITE_NONE)
    put_str(&o, "; Secure");
  static const char *const ss[] = {NULL, "Strict", "Lax", "None"};
  if (opts->same_site > RT_SAME_SITE_UNSET &&
      opts->same_site <= RT_SAME_SITE_NONE) {
    put_str(&o, "; SameSite=");
    put_str(&o, ss[opts->same_site]);
  }
  return o.full ? -ENOSPC : (int)o.len;
}

/* --- Signatures --------------------------------------------------------------- */

/* SIG (SIG_B64 + 1 bytes): the unpadded base64 HMAC-SHA256 of V. */
static int signature(const char *v, size_t n, const char *secret, char *sig) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (HMAC(EVP_sha256(), secret, (int)strlen(secret),
           (const unsigned char *)v, n, md, &mdlen) == NULL ||
      mdlen != 32)
    return -EINVAL;
  unsigned char b64[64];
  int k = EVP_EncodeBlock(b64, md, (int)mdlen); /* 44 with one '=' */
  while (k > 0 && b64[k - 1] == '=')
    k--;
  memcpy(sig, b64, (size_t)k);
  sig[k] = '\0';
  OPENSSL_cleanse(md, sizeof md);
  return k;
}

int rt_cookie_sign(char *buf, size_t cap, const char *value, size_t value_len,
                   const char *secret) {
  if (buf == NULL || secret == NULL || secret[0] == '\0' ||
      (value == NULL && value_len > 0))
    return -EINVAL;
  char sig[SIG_B64 + 1];
  int k = signature(value, value_len, secret, sig);
  if (k < 0)
    return k;
  if (value_len + 1 + (size_t)k + 1 > cap)
    return -ENOSPC;
  memcpy(buf, value, value_len);
  buf[value_len] = '.';
  memcpy(buf + value_len + 1, sig, (size_t)k + 1);
  return (int)(value_len + 1 + (size_t)k);
}

int rt_cookie_unsign(const char *s, size_t len, const char *const *secrets,
                     size_t nsecrets) {
  if (s == NULL)
    return -EACCES;
  const char *dot = NULL;
  for (size_t i = len; i-- > 0;)
    if (s[i] == '.') {
      dot = s + i;
      break;
    }
  if (dot == NULL)
    return -EACCES;
  size_t vlen = (size_t)(dot - s), glen = len - vlen - 1;
  int ok = 0;
  for (size_t i = 0; i < nsecrets; i++) {
    if (secrets[i] == NULL || secrets[i][0] == '\0')
      continue;
    char sig[SIG_B64 + 1];
    int k = signature(s, vlen, secrets[i], sig);
    /* Every secret is tried and compared in full: the time does not tell
     * which one matched, nor how much of a forgery did. */
    if (k > 0 && (size_t)k == glen && CRYPTO_memcmp(sig, dot + 1, glen) == 0)
      ok = 1;
  }
  return ok ? (int)vlen : -EACCES;
}
