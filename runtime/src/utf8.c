/* utf8.c -- UTF-8 validation and the streaming decoder.
 *
 * Well-formed UTF-8 is Unicode's table 3-7: no overlong forms, no
 * surrogates (ED A0..BF), nothing above U+10FFFF.  The decoder replaces each
 * maximal subpart of an ill-formed sequence with U+FFFD (Unicode's
 * recommended practice, which WHATWG's decoder and Node follow), and keeps
 * the leading bytes of a character that a chunk boundary splits
 * (INV(decoder): pending holds a proper prefix of a well-formed sequence,
 * at most 3 bytes) until the next chunk completes or breaks it.
 */
#include <errno.h>

#include "rt_internal.h"

/* The length of the sequence a lead byte starts (0: not a lead byte). */
static inline int seq_len(uint8_t c) {
  if (c < 0x80)
    return 1;
  if (c < 0xc2)
    return 0;
  if (c < 0xe0)
    return 2;
  if (c < 0xf0)
    return 3;
  if (c < 0xf5)
    return 4;
  return 0;
}

/* The valid range of the byte after lead byte C (table 3-7). */
static inline bool second_ok(uint8_t c, uint8_t b) {
  switch (c) {
  case 0xe0:
    return b >= 0xa0 && b <= 0xbf;
  case 0xed:
    return b >= 0x80 && b <= 0x9f;
  case 0xf0:
    return b >= 0x90 && b <= 0xbf;
  case 0xf4:
    return b >= 0x80 && b <= 0x8f;
  default:
    return (b & 0xc0) == 0x80;
  }
}

/* How many bytes of P[0..N) (N >= 1) form a valid prefix of one character
 * starting at P[0]: returns the full length if complete and valid, -k if
 * the first k bytes are a valid but incomplete prefix (the input ended), or
 * 0 if P[0..) is ill-formed: then *BAD is the length of the maximal subpart
 * to replace. */
static int check_seq(const uint8_t *p, size_t n, size_t *bad) {
  int len = seq_len(p[0]);
  if (len == 0) {
    *bad = 1;
    return 0;
  }
  if (len == 1)
    return 1;
  for (int i = 1; i < len; i++) {
    if ((size_t)i >= n)
      return -i;
    bool ok = i == 1 ? second_ok(p[0], p[1]) : (p[i] & 0xc0) == 0x80;
    if (!ok) {
      *bad = (size_t)i;
      return 0;
    }
  }
  return len;
}

size_t rt_utf8_valid_prefix(const void *ptr, size_t n) {
  const uint8_t *p = ptr, *s = p, *e = p + n;
  while (p < e) {
    if (*p < 0x80) {
      /* Skip ASCII a word at a time. */
      while (e - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (w & 0x8080808080808080u)
          break;
        p += 8;
      }
      while (p < e && *p < 0x80)
        p++;
      continue;
    }
    size_t bad;
    int k = check_seq(p, (size_t)(e - p), &bad);
    if (k <= 0)
      break;
    p += k;
  }
  return (size_t)(p - s);
}

static const char replacement[3] = {(char)0xef, (char)0xbf, (char)0xbd};

void rt_utf8_decoder_init(rt_utf8_decoder_t *d) { memset(d, 0, sizeof *d); }

int rt_utf8_decode(rt_utf8_decoder_t *d, const void *ptr, size_t n,
                   bool final, rt_strbuf_t *out) {
  const uint8_t *p = ptr, *e = p + n;
  /* Finish a character split by the previous chunk, one byte at a time. */
  while (d->npending > 0 && p < e) {
    uint8_t tmp[4];
    memcpy(tmp, d->pending, d->npending);
    tmp[d->npending] = *p;
    size_t bad;
    int k = check_seq(tmp, (size_t)d->npending + 1, &bad);
    if (k > 0) {
      if (rt_strbuf_append(out, tmp, (size_t)k) < 0)
        return out->error;
      d->npending = 0;
      p++;
    } else if (k < 0) {
      d->pending[d->npending++] = *p++;
    } else {
      /* The pending bytes are a maximal subpart: replace them, and let
       * the byte that broke them start afresh. */
      if (rt_strbuf_append(out, replacement, 3) < 0)
        return out->error;
      d->npending = 0;
    }
  }
  while (p < e) {
    size_t ok = rt_utf8_valid_prefix(p, (size_t)(e - p));
    if (rt_strbuf_append(out, p, ok) < 0)
      return out->error;
    p += ok;
    if (p == e)
      break;
    size_t bad;
    int k = check_seq(p, (size_t)(e - p), &bad);
    if (k < 0) {
      /* A valid prefix cut off by the end of the chunk. */
      memcpy(d->pending, p, (size_t)-k);
      d->npending = (uint8_t)-k;
      p = e;
    } else {
      if (rt_strbuf_append(out, replacement, 3) < 0)
        return out->error;
      p += bad;
    }
  }
  if (final && d->npending > 0) {
    d->npending = 0;
    if (rt_strbuf_append(out, replacement, 3) < 0)
      return out->error;
  }
  return 0;
}
