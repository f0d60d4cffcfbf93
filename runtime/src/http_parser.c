/* http_parser.c -- HTTP/1.1 request parsing on llhttp (strict), with RFC
 * 9112's framing checks and a server's size limits.
 *
 * The parser copies the URL and the header lines into one buffer of its own
 * (names lower-cased) as llhttp reports their pieces, so a head split across
 * reads is whole when on_headers_complete runs; the buffer never grows past
 * max_head_bytes, which is the 431 limit.  on_message_complete pauses
 * llhttp, so one feed never runs past the end of a request: pipelined
 * requests are taken one at a time, in order.
 *
 * INV(head): between on_message_begin and on_headers_complete,
 * head_bytes counts the bytes of the request line and header lines seen so
 * far (each header line counted with its ": " and CRLF); it is never more
 * than max_head_bytes, or the parser has failed with 431.
 * INV(fail): once status != 0 the parser has failed; every later feed
 * returns -EPROTO (llhttp keeps its error, so the stream stays refused).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>
#include <tenure/rt_http_parser.h>

#include "rt_internal.h"

#define LINE_OVERHEAD 4 /* ": " and CRLF of a header line */
#define REQLINE_OVERHEAD 12 /* spaces, "HTTP/1.1", CRLF */

typedef struct hdr_s {
  uint32_t name, name_len, value, value_len; /* offsets into buf */
} hdr_t;

struct rt_http_parser_s {
  llhttp_t ll;
  rt_http_limits_t lim;
  const rt_http_parser_cb_t *cb;
  void *data;
  char *buf; /* the URL, then name/value pairs */
  size_t len, cap;
  size_t url_len;
  hdr_t *hdr;
  size_t nhdr, hdr_cap;
  bool value_open;  /* the last piece was a value: a field starts a header */
  /* obs-fold detection: where the current header's last value piece was */
  bool value_seen;   /* some piece of this header's value arrived */
  uint64_t value_seq; /* the feed it arrived in */
  bool value_at_end; /* it ended at the end of that feed's bytes */
  uint64_t feed_seq; /* counts feeds */
  const char *feed_lo, *feed_hi; /* this feed's bytes */
  size_t head_bytes;
  uint64_t body_bytes;
  bool in_request;
  bool paused;  /* stopped after a complete request */
  bool head_paused; /* stopped after a head (on_head's RT_HTTP_PAUSE) */
  bool head_stop;   /* llhttp paused at a head not yet handed to on_head */
  char tail[4];     /* the last bytes consumed: CRLF CRLF ends a head */
  bool upgrade; /* ... and llhttp saw an Upgrade: resume differently */
  int status;   /* after a failure: the HTTP status to answer */
  const char *reason;
};

void rt_http_limits_init(rt_http_limits_t *lim) {
  lim->max_head_bytes = 16 * 1024;
  lim->max_url_bytes = 8 * 1024;
  lim->max_headers = 100;
  lim->max_body_bytes = 1024 * 1024;
}

static rt_http_parser_t *of(llhttp_t *ll) { return ll->data; }

static int fail(rt_http_parser_t *p, int status, const char *reason) {
  if (p->status == 0) {
    p->status = status;
    p->reason = reason;
  }
  return HPE_USER;
}

/* Appends N bytes of a piece of the head (lower-cased when LOWER). */
static int append(rt_http_parser_t *p, const char *at, size_t n, bool lower) {
  p->head_bytes += n;
  if (p->head_bytes > p->lim.max_head_bytes)
    return fail(p, 431, "request header fields too large");
  if (p->len + n > p->cap) {
    size_t ncap = p->cap ? p->cap : 512;
    while (ncap < p->len + n)
      ncap *= 2;
    char *b = realloc(p->buf, ncap);
    if (b == NULL)
      return fail(p, 503, "out of memory");
    p->buf = b;
    p->cap = ncap;
  }
  char *dst = p->buf + p->len;
  if (!lower) {
    memcpy(dst, at, n);
  } else {
    for (size_t i = 0; i < n; i++) { /* ASCII letters only: no branch */
      unsigned char c = (unsigned char)at[i];
      dst[i] = (char)(c | (unsigned char)(((unsigned)(c - 'A') < 26u) << 5));
    }
  }
  p->len += n;
  return 0;
}

static int on_message_begin(llhttp_t *ll) {
  rt_http_parser_t *p = of(ll);
  p->len = p->url_len = p->nhdr = 0;
  p->value_open = false;
  p->head_bytes = REQLINE_OVERHEAD;
  p->body_bytes = 0;
  p->in_request = true;
  return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t n) {
  rt_http_parser_t *p = of(ll);
  if (p->url_len + n > p->lim.max_url_bytes)
    return fail(p, 414, "URI too long");
  int err = append(p, at, n, false);
  p->url_len += n;
  return err;
}

static int on_method(llhttp_t *ll, const char *at, size_t n) {
  rt_http_parser_t *p = of(ll);
  (void)at;
  p->head_bytes += n;
  return p->head_bytes > p->lim.max_head_bytes
             ? fail(p, 431, "request header fields too large")
             : 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t n) {
  rt_http_parser_t *p = of(ll);
  if (p->nhdr == 0 || p->value_open) { /* a new header line */
    if (p->nhdr == p->lim.max_headers)
      return fail(p, 431, "too many header fields");
    if (p->nhdr == p->hdr_cap) {
      size_t ncap = p->hdr_cap ? p->hdr_cap * 2 : 16;
      hdr_t *h = realloc(p->hdr, ncap * sizeof *h);
      if (h == NULL)
        return fail(p, 503, "out of memory");
      p->hdr = h;
      p->hdr_cap = ncap;
    }
    p->hdr[p->nhdr++] = (hdr_t){(uint32_t)p->len, 0, (uint32_t)p->len, 0};
    p->value_open = false;
    p->value_seen = false;
    p->head_bytes += LINE_OVERHEAD;
  }
  int err = append(p, at, n, true);
  p->hdr[p->nhdr - 1].name_len += (uint32_t)n;
  p->hdr[p->nhdr - 1].value = (uint32_t)p->len;
  return err;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t n) {
  rt_http_parser_t *p = of(ll);
  if (p->nhdr == 0)
    return fail(p, 400, "header value without a name");
  /* llhttp 8.1 accepts obs-fold (a line continued by one that starts with
   * SP or HTAB) and reports the continuation as another piece of the value.
   * RFC 9112 5.2 lets a server refuse it, and a proxy in front might read
   * the fold differently.  llhttp splits a value only at the end of the
   * bytes of a feed, or at a fold: a second piece is a fold unless the first
   * ended at the last byte of the feed just before this one and this one
   * starts at this feed's first byte (nothing came between them). */
  if (p->value_seen && (p->value_seq + 1 != p->feed_seq || !p->value_at_end ||
                        at != p->feed_lo))
    return fail(p, 400, "obs-fold in a header value");
  p->value_seen = true;
  p->value_seq = p->feed_seq;
  p->value_at_end = at + n == p->feed_hi;
  p->value_open = true;
  int err = append(p, at, n, false);
  p->hdr[p->nhdr - 1].value_len += (uint32_t)n;
  return err;
}

static bool ieq(const char *a, size_t n, const char *lit) {
  size_t m = strlen(lit);
  if (n != m)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c + 32);
    if (c != lit[i])
      return false;
  }
  return true;
}

/* Is C allowed in a reg-name (RFC 3986 3.2.2: unreserved / sub-delims;
 * pct-encoded is checked apart)? */
static bool reg_name_char(char c) {
  /* One bit per character, as rt__is_tchar: every request's Host goes
   * through here (a strchr per character cost ~25 instructions). */
  static const uint32_t reg[8] = {
      0x00000000u, /* 0x00-0x1f: controls */
      0x2bff7fd2u, /* 0x20-0x3f: ! $ & ' ( ) * + , - . 0-9 ; = */
      0x87fffffeu, /* 0x40-0x5f: A-Z _ */
      0x47fffffeu, /* 0x60-0x7f: a-z ~ */
      0, 0, 0, 0};
  unsigned char u = (unsigned char)c;
  return (reg[u >> 5] >> (u & 31)) & 1u;
}

/* Is V (VL bytes) a valid Host field value (RFC 9112 3.2: uri-host
 * [ ":" port ], where uri-host is an IP-literal in brackets, an IPv4
 * address or a reg-name, and port is digits; empty when the target has no
 * authority)?  An IP-literal's inside is checked only for its alphabet
 * (hex digits, ':', '.', and IPvFuture's "v" unreserved / sub-delims). */
static bool host_valid(const char *v, size_t vl) {
  size_t i = 0;
  if (vl > 0 && v[0] == '[') {
    for (i = 1; i < vl && v[i] != ']'; i++)
      if (!reg_name_char(v[i]) && v[i] != ':')
        return false;
    if (i == vl || i == 1)
      return false; /* no ']', or "[]" */
    i++;
  } else {
    while (i < vl && v[i] != ':') {
      if (v[i] == '%') {
        if (i + 2 >= vl || rt__hexval(v[i + 1]) < 0 || rt__hexval(v[i + 2]) < 0)
          return false;
        i += 3;
        continue;
      }
      if (!reg_name_char(v[i]))
        return false;
      i++;
    }
  }
  if (i == vl)
    return true;
  if (v[i] != ':')
    return false;
  for (i++; i < vl; i++)
    if (v[i] < '0' || v[i] > '9')
      return false;
  return true;
}

/* The framing checks llhttp leaves to us.  The head is handed to on_head
 * only from feed, after the bytes that ended it were checked (head_end):
 * on_headers_complete pauses llhttp every time. */
static int on_headers_complete(llhttp_t *ll) {
  rt_http_parser_t *p = of(ll);
  size_t hosts = 0, tes = 0;
  bool te_chunked_only = true, host_ok = true;
  for (size_t i = 0; i < p->nhdr; i++) {
    const char *name = p->buf + p->hdr[i].name;
    size_t nl = p->hdr[i].name_len;
    const char *v = p->buf + p->hdr[i].value;
    size_t vl = p->hdr[i].value_len;
    rt__trim_ows(&v, &vl);
    if (nl == 0) /* field-name is a token: one byte at least (llhttp 8.1
                    takes ": v") */
      return fail(p, 400, "an empty header name");
    if (ieq(name, nl, "host")) {
      hosts++;
      host_ok = host_ok && host_valid(v, vl);
    }
    else if (ieq(name, nl, "transfer-encoding")) {
      tes++;
      if (!ieq(v, vl, "chunked"))
        te_chunked_only = false;
    }
  }
  if (ll->http_major != 1)
    return fail(p, 505, "HTTP version not supported");
  if (tes > 0 && ll->http_minor == 0)
    return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
  if (tes > 0 && (ll->flags & F_CONTENT_LENGTH))
    return fail(p, 400, "Content-Length with Transfer-Encoding");
  if (tes > 1 || !te_chunked_only)
    return fail(p, 501, "Transfer-Encoding other than chunked");
  /* Never disagree with llhttp on the framing: a value we read as
   * "chunked" that llhttp did not ("chunked\t") is refused. */
  if (tes > 0 && !(ll->flags & F_CHUNKED))
    return fail(p, 400, "malformed Transfer-Encoding");
  if (ll->http_minor >= 1 && hosts != 1)
    return fail(p, 400, hosts == 0 ? "missing Host" : "repeated Host");
  /* RFC 9112 3.2: a Host with an invalid value is a 400, in any version
   * (a request in absolute-form too: its Host is ignored, not its
   * syntax). */
  if (!host_ok)
    return fail(p, 400, "invalid Host");
  /* RFC 9112 3.2.4: the asterisk-form is only for a server-wide OPTIONS. */
  if (p->url_len == 1 && p->buf[0] == '*' && ll->method != HTTP_OPTIONS)
    return fail(p, 400, "'*' as the target of a method other than OPTIONS");
  if ((ll->flags & F_CONTENT_LENGTH) && ll->content_length > 0 &&
      ll->content_length > p->lim.max_body_bytes)
    return fail(p, 413, "payload too large");
  p->head_stop = true;
  return HPE_PAUSED;
}

/* The head is whole and its last bytes were CRLF CRLF: hands it to on_head.
 * Returns 0 (go on), 2 (on_head paused) or -EPROTO. */
static int deliver_head(rt_http_parser_t *p) {
  llhttp_t *ll = &p->ll;
  rt_http_header_t hs[p->nhdr > 0 ? p->nhdr : 1];
  rt_http_head_t h;
  memset(&h, 0, sizeof h);
  for (size_t i = 0; i < p->nhdr; i++) {
    rt_http_header_t *x = &hs[i];
    x->name = p->buf + p->hdr[i].name;
    x->name_len = p->hdr[i].name_len;
    x->value = p->buf + p->hdr[i].value;
    x->value_len = p->hdr[i].value_len;
    rt__trim_ows(&x->value, &x->value_len);
    if (ieq(x->name, x->name_len, "expect") &&
        ieq(x->value, x->value_len, "100-continue"))
      h.expect_continue = true;
  }
  h.major = ll->http_major;
  h.minor = ll->http_minor;
  h.method = llhttp_method_name((llhttp_method_t)ll->method);
  h.url = p->buf;
  h.url_len = p->url_len;
  h.headers = hs;
  h.nheaders = p->nhdr;
  h.chunked = (ll->flags & F_CHUNKED) != 0;
  h.content_length =
      (ll->flags & F_CONTENT_LENGTH) ? (int64_t)ll->content_length : -1;
  h.keep_alive = llhttp_should_keep_alive(ll) != 0;
  if (p->cb == NULL || p->cb->on_head == NULL)
    return 0;
  int st = p->cb->on_head(p->data, &h);
  if (st == RT_HTTP_PAUSE) {
    p->head_paused = true;
    return 2;
  }
  if (st != 0) {
    fail(p, st, "refused by the server");
    return -EPROTO;
  }
  return 0;
}

/* Remembers the last four bytes llhttp consumed (across feeds). */
static void track(rt_http_parser_t *p, const char *d, size_t n) {
  if (n >= 4) {
    memcpy(p->tail, d + n - 4, 4);
  } else {
    memmove(p->tail, p->tail + n, 4 - n);
    memcpy(p->tail + 4 - n, d, n);
  }
}

static int on_body(llhttp_t *ll, const char *at, size_t n) {
  rt_http_parser_t *p = of(ll);
  p->body_bytes += n;
  if (p->body_bytes > p->lim.max_body_bytes)
    return fail(p, 413, "payload too large");
  if (p->cb != NULL && p->cb->on_body != NULL) {
    int st = p->cb->on_body(p->data, at, n);
    if (st != 0)
      return fail(p, st, "refused by the server");
  }
  return 0;
}

static int on_message_complete(llhttp_t *ll) {
  rt_http_parser_t *p = of(ll);
  p->in_request = false;
  p->paused = true;
  if (p->cb != NULL && p->cb->on_complete != NULL)
    p->cb->on_complete(p->data);
  return HPE_PAUSED; /* one request per feed */
}

/* Every other callback stays NULL (llhttp_settings_init only clears). */
static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_method = on_method,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int rt_http_parser_create(const rt_http_limits_t *lim,
                          const rt_http_parser_cb_t *cb, void *data,
                          rt_http_parser_t **out) {
  if (out == NULL)
    return -EINVAL;
  rt_http_parser_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  if (lim != NULL)
    p->lim = *lim;
  else
    rt_http_limits_init(&p->lim);
  p->cb = cb;
  p->data = data;
  llhttp_init(&p->ll, HTTP_REQUEST, &settings);
  p->ll.data = p;
  *out = p;
  return 0;
}

void rt_http_parser_destroy(rt_http_parser_t *p) {
  if (p == NULL)
    return;
  free(p->buf);
  free(p->hdr);
  free(p);
}

void rt_http_parser_reset(rt_http_parser_t *p, void *data) {
  rt_http_limits_t lim = p->lim;
  const rt_http_parser_cb_t *cb = p->cb;
  char *buf = p->buf;
  size_t cap = p->cap;
  hdr_t *hdr = p->hdr;
  size_t hdr_cap = p->hdr_cap;
  memset(p, 0, sizeof *p);
  p->lim = lim;
  p->cb = cb;
  p->data = data;
  p->buf = buf;
  p->cap = cap;
  p->hdr = hdr;
  p->hdr_cap = hdr_cap;
  llhttp_init(&p->ll, HTTP_REQUEST, &settings);
  p->ll.data = p;
}

int rt_http_parser_feed(rt_http_parser_t *p, const char *data, size_t len,
                        size_t *used) {
  size_t dummy;
  if (used == NULL)
    used = &dummy;
  *used = 0;
  if (p->status != 0)
    return -EPROTO;
  bool after_head = p->head_paused;
  if (p->head_paused) {
    /* Resumes after the head: a request without a body completes in this
     * feed without reading a byte, so a feed of 0 bytes runs. */
    p->head_paused = false;
    llhttp_resume(&p->ll);
  } else if (p->paused) {
    p->paused = false;
    if (p->upgrade) {
      p->upgrade = false;
      llhttp_resume_after_upgrade(&p->ll);
    } else {
      llhttp_resume(&p->ll);
    }
  }
  if (len == 0 && !after_head)
    return 0;
  static const char none[1] = {0};
  if (len == 0)
    data = none;
  for (;;) {
    p->feed_seq++;
    p->feed_lo = data;
    p->feed_hi = data + len;
    llhttp_errno_t err = llhttp_execute(&p->ll, data, len);
    size_t pos = llhttp_get_error_pos(&p->ll) != NULL
                     ? (size_t)(llhttp_get_error_pos(&p->ll) - data)
                     : len;
    switch (err) {
    case HPE_OK:
      track(p, data, len);
      *used += len;
      return 0;
    case HPE_PAUSED:
      track(p, data, pos);
      *used += pos;
      if (p->head_stop) {
        p->head_stop = false;
        /* llhttp 8.1 ends a head at CR LF CR and any byte: refuse all but
         * CR LF CR LF (RFC 9112 2.2: bare CR is invalid). */
        if (memcmp(p->tail, "\r\n\r\n", 4) != 0) {
          fail(p, 400, "a head not ended by CRLF CRLF");
          return -EPROTO;
        }
        int r = deliver_head(p);
        if (r != 0)
          return r;
        llhttp_resume(&p->ll);
        data += pos;
        len -= pos;
        continue; /* a request without a body completes with 0 bytes */
      }
      p->paused = true;
      p->in_request = false;
      return 1;
    case HPE_PAUSED_UPGRADE:
      /* Upgrade is not offered: the request is served as a plain one. */
      track(p, data, pos);
      p->upgrade = true;
      p->paused = true;
      p->in_request = false;
      *used += pos;
      return 1;
    default:
      if (p->status == 0) {
        p->status = 400;
        p->reason = "bad request";
      }
      *used += pos;
      return -EPROTO;
    }
  }
}

int rt_http_parser_eof(rt_http_parser_t *p) {
  if (p->status != 0)
    return -EPROTO;
  if (!p->in_request)
    return 0;
  p->status = 400;
  p->reason = "connection closed in the middle of a request";
  return -EPROTO;
}

bool rt_http_parser_in_request(const rt_http_parser_t *p) {
  return p->in_request;
}

int rt_http_parser_error(const rt_http_parser_t *p, const char **reason) {
  if (reason != NULL)
    *reason = p->reason;
  return p->status;
}
