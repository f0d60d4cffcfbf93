/* multipart.c -- the streaming multipart/form-data parser and the form
 * that stores its files (rules in rt_multipart.h).
 *
 * The parser is a state machine over the bytes as they come.  Searching
 * for the delimiter "\r\n--" BOUNDARY needs no buffer: the boundary holds
 * no CR, so CR occurs in the delimiter only as its first byte, and when a
 * partial match fails no other match can have begun inside it.  The state
 * then is just how many delimiter bytes matched (MATCHED); if the match
 * fails, those bytes were data, and they are delivered from the delimiter
 * string itself.  Before the first boundary, the parser acts as if a CRLF
 * had just been read, so "--B" at the very start is found.
 *
 * INV(parser): in S_PREAMBLE and S_BODY, the last MATCHED bytes read are
 * delim[0..MATCHED) and not yet delivered; every earlier byte of the part
 * has been delivered (or, in the preamble, ignored).  part_bytes counts
 * delivered bytes and never exceeds the part's limit.
 *
 * The form keeps everything off the heap while the body streams in: field
 * values in malloc'd buffers, files on disk; the values are made in
 * rt_form_finish only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <tenure/rt_array.h>
#include <tenure/rt_map.h>
#include <tenure/rt_multipart.h>

#include "rt_internal.h"
#include <tenure/rt_string.h>

#define BOUNDARY_MAX 70 /* RFC 2046 */

void rt_multipart_limits_init(rt_multipart_limits_t *lim) {
  lim->max_header_bytes = 16 * 1024;
  lim->max_fields = 1000;
  lim->max_files = 100;
  lim->max_field_bytes = 1024 * 1024;
  lim->max_file_bytes = 200ull * 1024 * 1024;
  lim->max_total_bytes = 256ull * 1024 * 1024;
}

/* --- Lexical helpers ------------------------------------------------------- */

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static bool eq_ci(const char *s, size_t n, const char *lit) {
  size_t m = strlen(lit);
  if (n != m)
    return false;
  for (size_t i = 0; i < n; i++)
    if (lower((unsigned char)s[i]) != lit[i])
      return false;
  return true;
}

/* Reads the parameter ";name=value" at S[*I..N) of a header value (after
 * its type).  The value, unquoted, goes to OUT (CAP bytes).  Returns 1 (a
 * parameter), 0 (the end), -1 (malformed) or -2 (the value is longer than
 * CAP). */
static int next_param(const char *s, size_t n, size_t *i, const char **name,
                      size_t *name_len, char *out, size_t cap,
                      size_t *out_len) {
  size_t k = *i;
  while (k < n && rt__is_ows(s[k]))
    k++;
  if (k == n)
    return 0;
  if (s[k] != ';')
    return -1;
  k++;
  while (k < n && rt__is_ows(s[k]))
    k++;
  if (k == n) {
    *i = k;
    return 0; /* a trailing ';' */
  }
  size_t ns = k;
  while (k < n && rt__is_tchar((unsigned char)s[k]))
    k++;
  if (k == ns)
    return -1;
  *name = s + ns;
  *name_len = k - ns;
  while (k < n && rt__is_ows(s[k]))
    k++;
  if (k == n || s[k] != '=')
    return -1;
  k++;
  while (k < n && rt__is_ows(s[k]))
    k++;
  size_t o = 0;
  if (k < n && s[k] == '"') {
    k++;
    for (;;) {
      if (k == n)
        return -1; /* no closing quote */
      char c = s[k++];
      if (c == '"')
        break;
      /* A backslash escapes '"' and '\' only: browsers do not escape,
       * and a Windows path keeps its backslashes. */
      if (c == '\\' && k < n && (s[k] == '"' || s[k] == '\\'))
        c = s[k++];
      if (o == cap)
        return -2;
      out[o++] = c;
    }
  } else {
    size_t vs = k;
    while (k < n && s[k] != ';')
      k++;
    size_t ve = k;
    while (ve > vs && rt__is_ows(s[ve - 1]))
      ve--;
    if (ve == vs)
      return -1;
    for (size_t j = vs; j < ve; j++) {
      if (s[j] == '"')
        return -1;
      if (o == cap)
        return -2;
      out[o++] = s[j];
    }
  }
  *out_len = o;
  *i = k;
  return 1;
}

/* The media type of header value S[0..N) (up to ';', trimmed), and the
 * offset where its parameters start in *REST. */
static void media_type(const char *s, size_t n, const char **t, size_t *tl,
                       size_t *rest) {
  const char *semi = memchr(s, ';', n);
  size_t e = semi != NULL ? (size_t)(semi - s) : n;
  *t = s;
  *tl = e;
  rt__trim_ows(t, tl);
  *rest = e;
}

static bool is_bchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c != 0 && strchr("'()+_,-./:=? ", c));
}

int rt_multipart_boundary(const char *ct, size_t len, char *buf,
                          const char **why) {
  const char *w = NULL;
  const char *t;
  size_t tl, i, found = 0;
  if (ct == NULL) {
    w = "no Content-Type";
    goto fail;
  }
  media_type(ct, len, &t, &tl, &i);
  if (!eq_ci(t, tl, "multipart/form-data")) {
    w = "Content-Type is not multipart/form-data";
    goto fail;
  }
  for (;;) {
    const char *pn;
    size_t pl, vl;
    char v[BOUNDARY_MAX + 1];
    int r = next_param(ct, len, &i, &pn, &pl, v, sizeof v, &vl);
    if (r == 0)
      break;
    if (r == -1) {
      w = "malformed Content-Type parameters";
      goto fail;
    }
    if (!eq_ci(pn, pl, "boundary"))
      continue; /* -2 for a long value of another parameter: see below */
    if (r == -2 || vl == 0 || vl > BOUNDARY_MAX) {
      w = "the multipart boundary must have 1 to 70 characters";
      goto fail;
    }
    if (found++ > 0) {
      w = "the multipart boundary is given twice";
      goto fail;
    }
    for (size_t k = 0; k < vl; k++)
      if (!is_bchar((unsigned char)v[k]) || (k == vl - 1 && v[k] == ' ')) {
        w = "invalid character in the multipart boundary";
        goto fail;
      }
    memcpy(buf, v, vl);
    buf[vl] = '\0';
  }
  if (found == 0) {
    w = "no boundary parameter in the multipart Content-Type";
    goto fail;
  }
  return (int)strlen(buf);
fail:
  if (why != NULL)
    *why = w;
  return -EINVAL;
}

/* --- The parser -------------------------------------------------------------- */

enum state {
  S_PREAMBLE, /* looking for the first delimiter */
  S_AFTER,    /* after a delimiter: padding, then CRLF or "--" */
  S_HEADERS,  /* a part's header block */
  S_BODY,     /* a part's data, looking for the next delimiter */
  S_EPILOGUE, /* after the closing delimiter: ignored */
  S_ERROR
};

enum after { A_START, A_PAD, A_DASH, A_CR };

struct rt_multipart_s {
  rt_multipart_limits_t lim;
  rt_multipart_cb_t cb;
  void *data;
  char delim[4 + BOUNDARY_MAX + 1]; /* "\r\n--" boundary */
  size_t dlen;
  enum state state;
  enum after after;
  size_t matched; /* delimiter bytes matched and held back */
  char *hbuf;     /* the header block so far */
  size_t hlen, hcap, line_start;
  char *scratch; /* unquoted parameter values of the current part */
  bool is_file;
  uint64_t part_bytes;
  size_t nfields, nfiles;
  uint64_t total;
  int err, status;
  char msg[192];
};

static int fail(rt_multipart_t *p, int err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(rt_multipart_t *p, int err, int status, const char *fmt,
                ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->msg, sizeof p->msg, fmt, ap);
  va_end(ap);
  p->state = S_ERROR;
  p->err = err;
  p->status = status;
  return err;
}

static int malformed(rt_multipart_t *p, const char *what) {
  return fail(p, -EPROTO, 400, "malformed multipart body: %s", what);
}

static int callback_failed(rt_multipart_t *p, int r, const char *which) {
  return fail(p, r < 0 ? r : -EIO, 500, "multipart %s callback failed: %s",
              which, rt_strerror(r < 0 ? r : -EIO));
}

int rt_multipart_create(const char *ct, const rt_multipart_limits_t *lim,
                        const rt_multipart_cb_t *cb, void *data,
                        rt_multipart_t **out, const char **why) {
  char b[BOUNDARY_MAX + 1];
  int n = rt_multipart_boundary(ct, ct != NULL ? strlen(ct) : 0, b, why);
  if (n < 0)
    return n;
  rt_multipart_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  if (lim != NULL)
    p->lim = *lim;
  else
    rt_multipart_limits_init(&p->lim);
  if (cb != NULL)
    p->cb = *cb;
  p->data = data;
  memcpy(p->delim, "\r\n--", 4);
  memcpy(p->delim + 4, b, (size_t)n);
  p->dlen = 4 + (size_t)n;
  p->state = S_PREAMBLE;
  p->matched = 2; /* as if a CRLF came first: "--B" may open the body */
  *out = p;
  return 0;
}

void rt_multipart_destroy(rt_multipart_t *p) {
  if (p == NULL)
    return;
  free(p->hbuf);
  free(p->scratch);
  free(p);
}

int rt_multipart_error(const rt_multipart_t *p, const char **msg) {
  if (msg != NULL)
    *msg = p->state == S_ERROR ? p->msg : "";
  return p->state == S_ERROR ? p->status : 0;
}

/* Delivers data bytes of the current part (ignored in the preamble). */
static int deliver(rt_multipart_t *p, const char *at, size_t n) {
  if (p->state != S_BODY || n == 0)
    return 0;
  uint64_t max = p->is_file ? p->lim.max_file_bytes : p->lim.max_field_bytes;
  if (n > max - p->part_bytes) {
    /* What fits is delivered, so that the data seen before the error does
     * not depend on how the body was split. */
    size_t fits = (size_t)(max - p->part_bytes);
    if (fits > 0 && p->cb.on_part_data != NULL) {
      int r = p->cb.on_part_data(p->data, at, fits);
      if (r != 0)
        return callback_failed(p, r, "part data");
    }
    p->part_bytes = max;
    return p->is_file
               ? fail(p, -E2BIG, 413, "file too large (max_file_bytes %" PRIu64
                      ")", max)
               : fail(p, -E2BIG, 413,
                      "field value too large (max_field_bytes %" PRIu64 ")",
                      max);
  }
  p->part_bytes += n;
  if (p->cb.on_part_data != NULL) {
    int r = p->cb.on_part_data(p->data, at, n);
    if (r != 0)
      return callback_failed(p, r, "part data");
  }
  return 0;
}

static int delimiter_found(rt_multipart_t *p) {
  if (p->state == S_BODY && p->cb.on_part_end != NULL) {
    int r = p->cb.on_part_end(p->data);
    if (r != 0)
      return callback_failed(p, r, "part end");
  }
  p->state = S_AFTER;
  p->after = A_START;
  return 0;
}

/* Scans S[0..N) for the delimiter in S_PREAMBLE or S_BODY; returns how
 * many bytes it used (it stops after a delimiter), or an error. */
static long scan(rt_multipart_t *p, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (p->matched > 0) {
      while (i < n && p->matched < p->dlen && s[i] == p->delim[p->matched]) {
        i++;
        p->matched++;
      }
      if (p->matched == p->dlen) {
        p->matched = 0;
        int r = delimiter_found(p);
        return r < 0 ? r : (long)i;
      }
      if (i == n)
        break; /* still matching: the next chunk decides */
      /* A mismatch: what matched was data.  S[i] is looked at again: it
       * may be the CR of a delimiter (no other delimiter byte is a CR). */
      size_t m = p->matched;
      p->matched = 0;
      int r = deliver(p, p->delim, m);
      if (r < 0)
        return r;
    } else {
      const char *cr = memchr(s + i, '\r', n - i);
      size_t e = cr != NULL ? (size_t)(cr - s) : n;
      int r = deliver(p, s + i, e - i);
      if (r < 0)
        return r;
      i = e;
      if (cr != NULL) {
        i++;
        p->matched = 1;
      }
    }
  }
  return (long)n;
}

/* What follows a delimiter: one byte. */
static int after_byte(rt_multipart_t *p, char c) {
  switch (p->after) {
  case A_START:
  case A_PAD:
    if (c == ' ' || c == '\t') {
      p->after = A_PAD;
      return 0;
    }
    if (c == '\r') {
      p->after = A_CR;
      return 0;
    }
    if (c == '-' && p->after == A_START) {
      p->after = A_DASH;
      return 0;
    }
    break;
  case A_DASH:
    if (c == '-') {
      p->state = S_EPILOGUE;
      return 0;
    }
    break;
  case A_CR:
    if (c == '\n') {
      p->state = S_HEADERS;
      p->hlen = p->line_start = 0;
      return 0;
    }
    break;
  }
  return malformed(p, "a boundary is followed by something other than CRLF "
                      "or \"--\"");
}

/* Parses the Content-Disposition value V[0..N) into PART (strings in
 * p->scratch, which has room for 3 N bytes). */
static int disposition(rt_multipart_t *p, const char *v, size_t n,
                       rt_multipart_part_t *part) {
  const char *t;
  size_t tl, i;
  media_type(v, n, &t, &tl, &i);
  if (!eq_ci(t, tl, "form-data"))
    return malformed(p, "the Content-Disposition of a part is not form-data");
  char *out = p->scratch;
  size_t used = 0;
  bool have_name = false, have_fn = false, have_fnx = false;
  const char *fnx = NULL;
  size_t fnx_len = 0;
  for (;;) {
    const char *pn;
    size_t pl, vl;
    int r = next_param(v, n, &i, &pn, &pl, out + used, n, &vl);
    if (r == 0)
      break;
    if (r < 0)
      return malformed(p, "bad Content-Disposition parameters");
    bool *seen = eq_ci(pn, pl, "name")        ? &have_name
                 : eq_ci(pn, pl, "filename")  ? &have_fn
                 : eq_ci(pn, pl, "filename*") ? &have_fnx
                                              : NULL;
    if (seen == NULL)
      continue; /* another parameter: ignored (value not kept) */
    if (*seen)
      return malformed(p, "a Content-Disposition parameter is given twice");
    *seen = true;
    if (seen == &have_name) {
      part->name = out + used;
      part->name_len = vl;
    } else if (seen == &have_fn) {
      part->filename = out + used;
      part->filename_len = vl;
    } else {
      fnx = out + used;
      fnx_len = vl;
    }
    used += vl;
  }
  if (!have_name)
    return malformed(p, "a part has no name in its Content-Disposition");
  if (have_fnx) {
    /* RFC 5987 ext-value: charset "'" [language] "'" %-encoded bytes. */
    const char *q1 = memchr(fnx, '\'', fnx_len);
    const char *q2 =
        q1 != NULL ? memchr(q1 + 1, '\'', fnx_len - (size_t)(q1 + 1 - fnx))
                   : NULL;
    if (q2 == NULL)
      return malformed(p, "filename* is not charset'language'value");
    size_t cl = (size_t)(q1 - fnx);
    bool latin1 = eq_ci(fnx, cl, "iso-8859-1");
    if (!latin1 && !eq_ci(fnx, cl, "utf-8"))
      return malformed(p, "filename* has a charset other than UTF-8 or "
                          "ISO-8859-1");
    char *d = out + used;
    size_t o = 0;
    for (const char *s = q2 + 1; s < fnx + fnx_len; s++) {
      unsigned c = (unsigned char)*s;
      if (c == '%') {
        if (s + 2 >= fnx + fnx_len || rt__hexval(s[1]) < 0 || rt__hexval(s[2]) < 0)
          return malformed(p, "a bad %-escape in filename*");
        c = (unsigned)(rt__hexval(s[1]) * 16 + rt__hexval(s[2]));
        s += 2;
      }
      if (latin1 && c >= 0x80) {
        d[o++] = (char)(0xc0 | (c >> 6));
        d[o++] = (char)(0x80 | (c & 0x3f));
      } else {
        d[o++] = (char)c;
      }
    }
    part->filename = d;
    part->filename_len = o;
  }
  part->is_file = part->filename != NULL;
  return 0;
}

/* The header block hbuf[0..hlen) is complete: parse it and begin the part. */
static int headers_done(rt_multipart_t *p) {
  const char *cd = NULL, *ct = NULL;
  size_t cdl = 0, ctl = 0;
  size_t i = 0;
  while (i < p->hlen) {
    const char *line = p->hbuf + i;
    const char *lf = memchr(line, '\n', p->hlen - i);
    size_t ll = (size_t)(lf - line) - 1; /* without CRLF (checked) */
    i += ll + 2;
    if (ll == 0)
      break; /* the empty line: the last */
    if (memchr(line, '\r', ll) != NULL)
      return malformed(p, "a bare CR in part headers");
    if (rt__is_ows(line[0]))
      return malformed(p, "a folded part header line");
    const char *colon = memchr(line, ':', ll);
    size_t nl = colon != NULL ? (size_t)(colon - line) : 0;
    for (size_t k = 0; k < nl; k++)
      if (!rt__is_tchar((unsigned char)line[k]))
        nl = 0;
    if (nl == 0)
      return malformed(p, "a part header line is not \"Name: value\"");
    const char *v = colon + 1;
    size_t vl = ll - nl - 1;
    rt__trim_ows(&v, &vl);
    if (eq_ci(line, nl, "content-disposition")) {
      if (cd != NULL)
        return malformed(p, "a part has two Content-Disposition headers");
      cd = v;
      cdl = vl;
    } else if (eq_ci(line, nl, "content-type")) {
      if (ct != NULL)
        return malformed(p, "a part has two Content-Type headers");
      ct = v;
      ctl = vl;
    }
  }
  if (cd == NULL)
    return malformed(p, "a part has no Content-Disposition");
  free(p->scratch);
  /* Room for name, filename and filename* (2 bytes per latin1 byte), and
   * the charset. */
  p->scratch = malloc(3 * cdl + ctl + 1);
  if (p->scratch == NULL)
    return fail(p, -ENOMEM, 500, "out of memory");
  rt_multipart_part_t part = {0};
  int r = disposition(p, cd, cdl, &part);
  if (r < 0)
    return r;
  if (ct != NULL) {
    const char *t;
    size_t tl, k;
    media_type(ct, ctl, &t, &tl, &k);
    part.content_type = ct;
    part.content_type_len = ctl;
    char *cs = p->scratch + 3 * cdl;
    for (;;) {
      const char *pn;
      size_t pl, vl;
      int q = next_param(ct, ctl, &k, &pn, &pl, cs, ctl, &vl);
      if (q == 0)
        break;
      if (q < 0)
        return malformed(p, "bad Content-Type parameters in a part");
      if (eq_ci(pn, pl, "charset") && part.charset == NULL) {
        part.charset = cs;
        part.charset_len = vl;
      }
    }
  }
  if (part.is_file && ++p->nfiles > p->lim.max_files)
    return fail(p, -E2BIG, 413, "too many files (max_files %zu)",
                p->lim.max_files);
  if (!part.is_file && ++p->nfields > p->lim.max_fields)
    return fail(p, -E2BIG, 413, "too many fields (max_fields %zu)",
                p->lim.max_fields);
  p->state = S_BODY;
  p->matched = 0;
  p->part_bytes = 0;
  p->is_file = part.is_file;
  if (p->cb.on_part_begin != NULL) {
    r = p->cb.on_part_begin(p->data, &part);
    if (r != 0)
      return callback_failed(p, r, "part begin");
  }
  return 0;
}

/* Header bytes S[0..N): returns how many were used (up to the end of the
 * block) or an error. */
static long header_bytes(rt_multipart_t *p, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    const char *lf = memchr(s + i, '\n', n - i);
    size_t take = lf != NULL ? (size_t)(lf - (s + i)) + 1 : n - i;
    if (take > p->lim.max_header_bytes - p->hlen)
      return fail(p, -E2BIG, 413,
                  "part headers too large (max_header_bytes %zu)",
                  p->lim.max_header_bytes);
    if (p->hlen + take > p->hcap) {
      size_t cap = p->hcap < 256 ? 256 : p->hcap;
      while (cap < p->hlen + take)
        cap *= 2;
      char *b = realloc(p->hbuf, cap);
      if (b == NULL)
        return fail(p, -ENOMEM, 500, "out of memory");
      p->hbuf = b;
      p->hcap = cap;
    }
    memcpy(p->hbuf + p->hlen, s + i, take);
    p->hlen += take;
    i += take;
    if (lf == NULL)
      break;
    /* A line is complete: it must end in CRLF. */
    size_t ll = p->hlen - p->line_start;
    if (ll < 2 || p->hbuf[p->hlen - 2] != '\r')
      return malformed(p, "a bare LF in part headers");
    if (ll == 2) {
      int r = headers_done(p);
      return r < 0 ? r : (long)i;
    }
    p->line_start = p->hlen;
  }
  return (long)n;
}

static int feed(rt_multipart_t *p, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    long used = 0;
    switch (p->state) {
    case S_PREAMBLE:
    case S_BODY:
      used = scan(p, s + i, n - i);
      break;
    case S_AFTER:
      used = after_byte(p, s[i]);
      if (used == 0)
        used = 1;
      break;
    case S_HEADERS:
      used = header_bytes(p, s + i, n - i);
      break;
    case S_EPILOGUE:
      return 0;
    case S_ERROR:
      return p->err;
    }
    if (used < 0)
      return (int)used;
    i += (size_t)used;
  }
  return 0;
}

int rt_multipart_write(rt_multipart_t *p, const char *data, size_t len) {
  if (p->state == S_ERROR)
    return p->err;
  if (data == NULL && len > 0)
    return -EINVAL;
  uint64_t room = p->lim.max_total_bytes - p->total;
  size_t n = len > room ? (size_t)room : len;
  p->total += n;
  int r = feed(p, data, n);
  if (r < 0)
    return r;
  if (n < len)
    return fail(p, -E2BIG, 413, "body too large (max_total_bytes %" PRIu64
                ")", p->lim.max_total_bytes);
  return 0;
}

int rt_multipart_end(rt_multipart_t *p) {
  switch (p->state) {
  case S_ERROR:
    return p->err;
  case S_EPILOGUE:
    break;
  case S_PREAMBLE:
    return malformed(p, "the body ended before the first boundary");
  case S_HEADERS:
    return malformed(p, "the body ended in part headers");
  case S_BODY:
    return malformed(p, "the body ended in a part (no closing boundary)");
  case S_AFTER:
    return malformed(p, "the body ended after a boundary");
  }
  if (p->cb.on_finish != NULL) {
    int r = p->cb.on_finish(p->data);
    if (r != 0)
      return callback_failed(p, r, "finish");
  }
  return 0;
}

/* --- Forms ------------------------------------------------------------------- */

typedef struct field_s {
  char *name;
  size_t name_len;
  char charset[32]; /* lower-cased; "" when the part gave none */
  rt_strbuf_t value;
} field_t;

typedef struct file_s {
  char *field, *orig, *type;
  size_t field_len, orig_len, type_len;
  char stored[64]; /* the name in the upload directory */
  bool created;    /* stored exists: delete it unless the form finishes */
  int fd;          /* while the part is being written, else -1 */
  uint64_t size;
  EVP_MD_CTX *md;
  char sha256[65];
} file_t;

struct rt_form_s {
  rt_runtime_t *rt;
  rt_multipart_t *mp;
  int dirfd;
  char *dir;
  field_t **fields;
  size_t nfields, cfields;
  file_t **files;
  size_t nfiles, cfiles;
  field_t *cur_field; /* the part being read, one of the two or neither */
  file_t *cur_file;
  bool finished; /* rt_form_finish succeeded: the files are the caller's */
  int err, status;
  char msg[192];
};

static int form_fail(rt_form_t *f, int err, int status, const char *what) {
  if (f->err == 0) {
    f->err = err;
    f->status = status;
    snprintf(f->msg, sizeof f->msg, "%s: %s", what, rt_strerror(err));
  }
  return err;
}

static char *dup_bytes(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d != NULL) {
    if (n > 0)
      memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static bool grow(void ***v, size_t *cap, size_t n) {
  if (n < *cap)
    return true;
  size_t c = *cap < 8 ? 8 : *cap * 2;
  void **nv = realloc(*v, c * sizeof **v);
  if (nv == NULL)
    return false;
  *v = nv;
  *cap = c;
  return true;
}

/* Closes and deletes every stored file (a form that did not finish). */
static void remove_files(rt_form_t *f) {
  for (size_t i = 0; i < f->nfiles; i++) {
    file_t *x = f->files[i];
    if (x->fd >= 0) {
      close(x->fd);
      x->fd = -1;
    }
    if (x->created && f->dirfd >= 0)
      unlinkat(f->dirfd, x->stored, 0);
    x->created = false;
  }
}

/* The stored name: "upload-" 32 random hex digits, and ".ext" when the
 * original name's extension is 1-16 letters and digits. */
static int stored_name(const char *orig, size_t n, char *out) {
  unsigned char r[16];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
    return -errno;
  static const char hex[] = "0123456789abcdef";
  char *o = out + sprintf(out, "upload-");
  for (size_t i = 0; i < sizeof r; i++) {
    *o++ = hex[r[i] >> 4];
    *o++ = hex[r[i] & 15];
  }
  size_t dot = n;
  while (dot > 0 && orig[dot - 1] != '.' && orig[dot - 1] != '/' &&
         orig[dot - 1] != '\\')
    dot--;
  size_t el = n - dot;
  bool ok = dot > 1 && orig[dot - 1] == '.' && el >= 1 && el <= 16;
  for (size_t i = dot; ok && i < n; i++) {
    unsigned char c = (unsigned char)orig[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
  }
  if (ok) {
    *o++ = '.';
    memcpy(o, orig + dot, el);
    o += el;
  }
  *o = '\0';
  return 0;
}

static int on_begin(void *data, const rt_multipart_part_t *part) {
  rt_form_t *f = data;
  if (!part->is_file) {
    field_t *x = calloc(1, sizeof *x);
    if (x == NULL || !grow((void ***)&f->fields, &f->cfields, f->nfields)) {
      free(x);
      return form_fail(f, -ENOMEM, 500, "storing a field");
    }
    x->name = dup_bytes(part->name, part->name_len);
    x->name_len = part->name_len;
    rt_strbuf_init(&x->value);
    f->fields[f->nfields++] = x;
    if (x->name == NULL)
      return form_fail(f, -ENOMEM, 500, "storing a field");
    for (size_t i = 0; i < part->charset_len && i + 1 < sizeof x->charset;
         i++)
      x->charset[i] = (char)lower((unsigned char)part->charset[i]);
    f->cur_field = x;
    return 0;
  }
  file_t *x = calloc(1, sizeof *x);
  if (x == NULL || !grow((void ***)&f->files, &f->cfiles, f->nfiles)) {
    free(x);
    return form_fail(f, -ENOMEM, 500, "storing a file");
  }
  x->fd = -1;
  f->files[f->nfiles++] = x;
  x->field = dup_bytes(part->name, part->name_len);
  x->field_len = part->name_len;
  x->orig = dup_bytes(part->filename, part->filename_len);
  x->orig_len = part->filename_len;
  if (part->content_type != NULL) {
    x->type = dup_bytes(part->content_type, part->content_type_len);
    x->type_len = part->content_type_len;
  } else {
    x->type = dup_bytes("application/octet-stream", 24);
    x->type_len = 24;
  }
  x->md = EVP_MD_CTX_new();
  if (x->field == NULL || x->orig == NULL || x->type == NULL ||
      x->md == NULL || EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1)
    return form_fail(f, -ENOMEM, 500, "storing a file");
  for (int tries = 0;; tries++) {
    int r = stored_name(x->orig, x->orig_len, x->stored);
    if (r < 0)
      return form_fail(f, r, 500, "naming an uploaded file");
    x->fd = openat(f->dirfd, x->stored,
                   O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                   0600);
    if (x->fd >= 0)
      break;
    if (errno != EEXIST || tries == 8)
      return form_fail(f, -errno, 500, "creating an uploaded file");
  }
  x->created = true;
  f->cur_file = x;
  return 0;
}

static int on_data(void *data, const char *at, size_t n) {
  rt_form_t *f = data;
  if (f->cur_field != NULL) {
    if (rt_strbuf_append(&f->cur_field->value, at, n) < 0)
      return form_fail(f, -ENOMEM, 500, "storing a field");
    return 0;
  }
  file_t *x = f->cur_file;
  if (x == NULL)
    return 0;
  if (EVP_DigestUpdate(x->md, at, n) != 1)
    return form_fail(f, -ENOMEM, 500, "hashing an uploaded file");
  x->size += n;
  while (n > 0) {
    ssize_t w = write(x->fd, at, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return form_fail(f, -errno, 500, "writing an uploaded file");
    at += w;
    n -= (size_t)w;
  }
  return 0;
}

static int on_end(void *data) {
  rt_form_t *f = data;
  file_t *x = f->cur_file;
  f->cur_field = NULL;
  f->cur_file = NULL;
  if (x == NULL)
    return 0;
  int fd = x->fd;
  x->fd = -1;
  if (close(fd) != 0)
    return form_fail(f, -errno, 500, "writing an uploaded file");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_DigestFinal_ex(x->md, md, &len) != 1 || len != 32)
    return form_fail(f, -ENOMEM, 500, "hashing an uploaded file");
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < len; i++) {
    x->sha256[2 * i] = hex[md[i] >> 4];
    x->sha256[2 * i + 1] = hex[md[i] & 15];
  }
  x->sha256[64] = '\0';
  return 0;
}

static const rt_multipart_cb_t form_cb = {on_begin, on_data, on_end, NULL};

int rt_form_create(rt_runtime_t *rt, const char *content_type,
                   const char *upload_dir, const rt_multipart_limits_t *limits,
                   rt_form_t **out) {
  if (rt == NULL || upload_dir == NULL || out == NULL)
    return -EINVAL;
  *out = NULL;
  rt_form_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -ENOMEM;
  f->rt = rt;
  f->dirfd = -1;
  const char *why = NULL;
  int r = rt_multipart_create(content_type, limits, &form_cb, f, &f->mp, &why);
  if (r == -EINVAL) {
    f->err = r;
    f->status = 400;
    snprintf(f->msg, sizeof f->msg, "%s", why);
    *out = f;
    return r;
  }
  size_t dl = strlen(upload_dir);
  while (dl > 1 && upload_dir[dl - 1] == '/')
    dl--;
  f->dir = r == 0 ? dup_bytes(upload_dir, dl) : NULL;
  if (r == 0 && f->dir == NULL)
    r = -ENOMEM;
  if (r == 0) {
    f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dirfd < 0)
      r = -errno;
  }
  if (r < 0) {
    rt_form_destroy(f);
    return r;
  }
  *out = f;
  return 0;
}

int rt_form_error(const rt_form_t *f, const char **msg) {
  if (f->err != 0) {
    if (msg != NULL)
      *msg = f->msg;
    return f->status;
  }
  if (msg != NULL)
    *msg = "";
  return 0;
}

/* After the parser failed: the form takes its error (unless a callback
 * failed first with its own) and deletes its files. */
static int form_failed(rt_form_t *f, int r) {
  const char *m;
  int status = rt_multipart_error(f->mp, &m);
  if (f->err == 0) {
    f->err = r;
    f->status = status != 0 ? status : 500;
    snprintf(f->msg, sizeof f->msg, "%s", m);
  }
  remove_files(f);
  return f->err;
}

int rt_form_write(rt_form_t *f, const char *data, size_t len) {
  if (f->err != 0)
    return f->err;
  int r = rt_multipart_write(f->mp, data, len);
  return r < 0 ? form_failed(f, r) : 0;
}

/* The text of field X: its charset, else DEF (the _charset_ field's),
 * else UTF-8.  GC point. */
static rt_value_t field_string(rt_runtime_t *rt, const field_t *x,
                               const char *def) {
  const char *cs = x->charset[0] != '\0' ? x->charset : def;
  const unsigned char *s = (const unsigned char *)x->value.data;
  size_t n = x->value.len;
  bool latin1 = cs != NULL && (strcmp(cs, "iso-8859-1") == 0 ||
                               strcmp(cs, "latin1") == 0 ||
                               strcmp(cs, "us-ascii") == 0);
  if (!latin1)
    return rt_string_from_bytes(rt, s, n);
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  for (size_t i = 0; i < n; i++) {
    char u[2] = {(char)(0xc0 | (s[i] >> 6)), (char)(0x80 | (s[i] & 0x3f))};
    if (s[i] < 0x80)
      rt_strbuf_append(&b, s + i, 1);
    else
      rt_strbuf_append(&b, u, 2);
  }
  rt_value_t v = b.error == 0 ? rt_string_new(rt, b.data, b.len) : RT_NONE;
  rt_strbuf_free(&b);
  return v;
}

/* GC point.  Sets *K to *V in *MAP, a repeated key making an Array. */
static int put_repeated(rt_runtime_t *rt, const rt_value_t *map,
                        const rt_value_t *k, const rt_value_t *v) {
  gc_heap_t *h = rt_heap(rt);
  rt_value_t old = rt_map_get(*map, *k);
  if (old == RT_NONE)
    return rt_map_set(rt, map, k, v);
  if (rt_is_array(old))
    return rt_array_push(rt, rt_handle(h, old), v);
  rt_value_t *o = rt_handle(h, old);
  rt_value_t *a = rt_handle(h, rt_array_new(rt, 2));
  if (*a == RT_NONE)
    return -ENOMEM;
  int err = rt_array_push(rt, a, o);
  if (err == 0)
    err = rt_array_push(rt, a, v);
  return err == 0 ? rt_map_set(rt, map, k, a) : err;
}

/* GC point.  Sets *M[KEY] to V (rooted here). */
static int set_prop(rt_runtime_t *rt, const rt_value_t *m, const char *key,
                    rt_value_t v) {
  gc_heap_t *h = rt_heap(rt);
  rt_value_t *vh = rt_handle(h, v);
  rt_value_t *kh = rt_handle(h, rt_string_intern(rt, key, strlen(key)));
  if (*vh == RT_NONE || *kh == RT_NONE)
    return -ENOMEM;
  return rt_map_set(rt, m, kh, vh);
}

/* GC point.  The values of a form whose body was read in full. */
static int build(rt_form_t *f, rt_value_t *fields_out, rt_value_t *files_out) {
  rt_runtime_t *rt = f->rt;
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  int err = 0;
  char def[32] = "";
  for (size_t i = 0; i < f->nfields; i++) {
    field_t *x = f->fields[i];
    if (strcmp(x->name, "_charset_") == 0 && x->name_len == 9) {
      for (size_t k = 0; k < x->value.len && k + 1 < sizeof def; k++)
        def[k] = (char)lower((unsigned char)x->value.data[k]);
      break;
    }
  }
  rt_value_t *fields = rt_handle(h, rt_map_new(rt, f->nfields));
  rt_value_t *files = rt_handle(h, rt_array_new(rt, f->nfiles));
  rt_value_t *k = rt_handle(h, RT_NONE), *v = rt_handle(h, RT_NONE);
  rt_value_t *m = rt_handle(h, RT_NONE);
  if (*fields == RT_NONE || *files == RT_NONE)
    err = -ENOMEM;
  for (size_t i = 0; err == 0 && i < f->nfields; i++) {
    field_t *x = f->fields[i];
    *k = rt_string_from_bytes(rt, x->name, x->name_len);
    *v = field_string(rt, x, def[0] != '\0' ? def : NULL);
    err = *k == RT_NONE || *v == RT_NONE ? -ENOMEM
                                         : put_repeated(rt, fields, k, v);
  }
  for (size_t i = 0; err == 0 && i < f->nfiles; i++) {
    file_t *x = f->files[i];
    *m = rt_map_new(rt, 6);
    if (*m == RT_NONE) {
      err = -ENOMEM;
      break;
    }
    char *path = malloc(strlen(f->dir) + 1 + sizeof x->stored);
    if (path == NULL) {
      err = -ENOMEM;
      break;
    }
    sprintf(path, "%s/%s", f->dir, x->stored);
    if (err == 0)
      err = set_prop(rt, m, "field",
                     rt_string_from_bytes(rt, x->field, x->field_len));
    if (err == 0)
      err = set_prop(rt, m, "originalName",
                     rt_string_from_bytes(rt, x->orig, x->orig_len));
    if (err == 0)
      err = set_prop(rt, m, "path", rt_string_from_bytes(rt, path,
                                                         strlen(path)));
    free(path);
    if (err == 0)
      err = set_prop(rt, m, "size", rt_int((int64_t)x->size));
    if (err == 0)
      err = set_prop(rt, m, "type",
                     rt_string_from_bytes(rt, x->type, x->type_len));
    if (err == 0)
      err = set_prop(rt, m, "sha256", rt_string_new(rt, x->sha256, 64));
    if (err == 0)
      err = rt_array_push(rt, files, m);
  }
  if (err == 0) {
    *fields_out = *fields;
    *files_out = *files;
  }
  gc_scope_close(h, &s);
  return err;
}

int rt_form_finish(rt_form_t *f, rt_value_t *fields_out,
                   rt_value_t *files_out) {
  if (f->err != 0)
    return f->err;
  if (fields_out == NULL || files_out == NULL)
    return -EINVAL;
  int r = rt_multipart_end(f->mp);
  if (r < 0)
    return form_failed(f, r);
  r = build(f, fields_out, files_out);
  if (r < 0) {
    form_fail(f, r, 500, "making the form's values");
    remove_files(f);
    return r;
  }
  f->finished = true;
  return 0;
}

void rt_form_destroy(rt_form_t *f) {
  if (f == NULL)
    return;
  if (!f->finished)
    remove_files(f);
  for (size_t i = 0; i < f->nfields; i++) {
    rt_strbuf_free(&f->fields[i]->value);
    free(f->fields[i]->name);
    free(f->fields[i]);
  }
  for (size_t i = 0; i < f->nfiles; i++) {
    file_t *x = f->files[i];
    if (x->fd >= 0)
      close(x->fd);
    EVP_MD_CTX_free(x->md);
    free(x->field);
    free(x->orig);
    free(x->type);
    free(x);
  }
  free(f->fields);
  free(f->files);
  if (f->dirfd >= 0)
    close(f->dirfd);
  free(f->dir);
  rt_multipart_destroy(f->mp);
  free(f);
}
