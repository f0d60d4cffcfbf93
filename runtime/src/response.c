/* response.c -- responses: status and headers, the head, whole bodies
 * (bytes, strings encoded on each send, Buffers sent as they are, JSON),
 * streamed bodies (chunked, with a high water mark), files (sendfile, with
 * validators, conditional requests and ranges), and the server's own error
 * answers.
 *
 * Connection persistence is decided once, when the head is written: the
 * request allows keep-alive, the server is not stopping, the peer has not
 * ended, the body length is known or chunked can carry it, and a request
 * body nobody read is small enough to read and drop (DISCARD_MAX) and was
 * not held back by Expect: 100-continue.  Otherwise the head says
 * "Connection: close" and the connection ends after the response.
 *
 * INV(head): once head_sent, status and headers no longer change; ended
 * implies head_sent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"

#define DISCARD_MAX 65536  /* an unread request body up to this is dropped */
#define COPY_MAX 4096      /* Buffers up to this are copied into the output */
#define FILE_CHUNK 65536   /* read through the write queue when sendfile waits */

const char *x__status_text(int st) {
  switch (st) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return st < 200 ? "Informational" : st < 300 ? "OK"
                : st < 400 ? "Redirect" : st < 500 ? "Client Error"
                : "Server Error";
  }
}

/* --- Headers ---------------------------------------------------------------- */

/* The length of a valid field name N, or 0 (empty, NULL, not a token). */
static size_t name_length(const char *n) {
  if (n == NULL)
    return 0;
  size_t i = 0;
  for (; n[i]; i++)
    if (!rt__is_tchar((unsigned char)n[i]))
      return 0;
  return i;
}

/* Field values: no CR, LF or NUL (response splitting), no other controls
 * but HTAB.  The length of V, or -1 when it is not valid. */
static ssize_t value_length(const char *v) {
  if (v == NULL)
    return -1;
  size_t i = 0;
  for (; v[i]; i++) {
    unsigned char c = (unsigned char)v[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return -1;
  }
  return (ssize_t)i;
}

static x__exchange_t *open_ex(rt_value_t *req, int *err) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL || ex->conn->closing) {
    *err = -EPIPE;
    return NULL;
  }
  if (ex->head_sent) {
    *err = -EALREADY;
    return NULL;
  }
  *err = 0;
  return ex;
}

int rt_res_status(rt_value_t *req, int status) {
  int err;
  x__exchange_t *ex = open_ex(req, &err);
  if (ex == NULL)
    return err;
  if (status < 100 || status > 999)
    return -EINVAL;
  ex->status = status;
  return 0;
}

int rt_res_get_status(rt_value_t *req) {
  x__exchange_t *ex = x__exchange_of(req);
  return ex != NULL ? ex->status : -EPIPE;
}

bool rt_res_headers_sent(rt_value_t *req) {
  x__exchange_t *ex = x__exchange_of(req);
  return ex == NULL || ex->head_sent;
}

static ssize_t find_header(x__exchange_t *ex, const char *name, size_t from) {
  for (size_t i = from; i < ex->nhdr; i++)
    if (strcasecmp(ex->hdr[i], name) == 0)
      return (ssize_t)i;
  return -1;
}

static bool hdr_in_text(const x__exchange_t *ex, const char *e) {
  return e >= ex->hdr_text && e < ex->hdr_text + sizeof ex->hdr_text;
}

static void hdr_entry_free(x__exchange_t *ex, char *e) {
  if (!hdr_in_text(ex, e))
    free(e);
}

/* Drops every header (INV(hdr) holds after, with none). */
static void hdr_clear(x__exchange_t *ex) {
  for (size_t i = 0; i < ex->nhdr; i++)
    hdr_entry_free(ex, ex->hdr[i]);
  ex->nhdr = 0;
  ex->hdr_text_len = 0;
}

/* Removes every header named NAME (checked by the caller).  Bytes of a
 * removed entry in hdr_text stay used until the response ends. */
static void remove_named(x__exchange_t *ex, const char *name) {
  ssize_t i;
  while ((i = find_header(ex, name, 0)) >= 0) {
    hdr_entry_free(ex, ex->hdr[i]);
    memmove(ex->hdr + i, ex->hdr + i + 1,
            (ex->nhdr - (size_t)i - 1) * sizeof *ex->hdr);
    ex->nhdr--;
  }
}

/* Appends a checked header NAME: VALUE. */
static int append_named(x__exchange_t *ex, const char *name, size_t nl,
                        const char *value, size_t vl) {
  if (ex->hdr == NULL) {
    ex->hdr = ex->hdr_inline;
    ex->hdr_cap = X__HDR_INLINE;
  }
  if (ex->nhdr == ex->hdr_cap) {
    size_t ncap = ex->hdr_cap * 2;
    bool inl = ex->hdr == ex->hdr_inline;
    char **n = realloc(inl ? NULL : ex->hdr, ncap * sizeof *n);
    if (n == NULL)
      return -ENOMEM;
    if (inl)
      memcpy(n, ex->hdr_inline, sizeof ex->hdr_inline);
    ex->hdr = n;
    ex->hdr_cap = ncap;
  }
  size_t need = nl + vl + 2;
  char *e;
  if (need <= sizeof ex->hdr_text - ex->hdr_text_len) {
    e = ex->hdr_text + ex->hdr_text_len;
    ex->hdr_text_len += need;
  } else if ((e = malloc(need)) == NULL) {
    return -ENOMEM;
  }
  memcpy(e, name, nl + 1);
  memcpy(e + nl + 1, value, vl + 1);
  ex->hdr[ex->nhdr++] = e;
  return 0;
}

int rt_res_remove_header(rt_value_t *req, const char *name) {
  int err;
  x__exchange_t *ex = open_ex(req, &err);
  if (ex == NULL)
    return err;
  if (name_length(name) == 0)
    return -EINVAL;
  remove_named(ex, name);
  return 0;
}

int rt_res_append_header(rt_value_t *req, const char *name,
                         const char *value) {
  int err;
  x__exchange_t *ex = open_ex(req, &err);
  if (ex == NULL)
    return err;
  size_t nl = name_length(name);
  ssize_t vl = value_length(value);
  if (nl == 0 || vl < 0)
    return -EINVAL;
  return append_named(ex, name, nl, value, (size_t)vl);
}


int rt_res_set_header(rt_value_t *req, const char *name, const char *value) {
  int err;
  x__exchange_t *ex = open_ex(req, &err);
  if (ex == NULL)
    return err;
  size_t nl = name_length(name);
  ssize_t vl = value_length(value);
  if (nl == 0 || vl < 0)
    return -EINVAL;
  remove_named(ex, name);
  return append_named(ex, name, nl, value, (size_t)vl);
}

const char *rt_res_get_header(rt_value_t *req, const char *name) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return NULL;
  ssize_t i = find_header(ex, name, 0);
  return i < 0 ? NULL : ex->hdr[i] + strlen(ex->hdr[i]) + 1;
}

void x__exchange_free_response(x__exchange_t *ex) {
  hdr_clear(ex);
  if (ex->hdr != ex->hdr_inline)
    free(ex->hdr);
  ex->hdr = NULL;
  ex->hdr_cap = 0;
  if (ex->file_fd >= 0)
    close(ex->file_fd);
  ex->file_fd = -1;
}

/* --- The head ------------------------------------------------------------- */

static bool no_body_status(int st) {
  return st < 200 || st == 204 || st == 304;
}

/* Decimal digits of V into B (at least 20 bytes); returns their count. */
static size_t fmt_u64(char *b, uint64_t v) {
  char t[20];
  size_t n = 0;
  do {
    t[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++)
    b[i] = t[n - 1 - i];
  return n;
}

/* Writes the head for a body of LENGTH bytes (-1: streamed), with TYPE as
 * Content-Type unless the application set one (NULL: none).  Runs the
 * on_head hooks first.  Returns 0 or -EPIPE / -ENOMEM.  On the path of
 * every response: one pass over the headers, no printf. */
/* A response head being assembled: BUF holds what is not yet handed to
 * x__out; ERR is x__out's first error (later pieces are dropped). */
#define HEAD_BUF 1024
typedef struct head_s {
  x__conn_t *c;
  size_t n;
  int err;
  char buf[HEAD_BUF];
} head_t;

static void head_flush(head_t *hd) {
  if (hd->n > 0 && hd->err == 0)
    hd->err = x__out(hd->c, hd->buf, hd->n);
  hd->n = 0;
}

static inline void head_put(head_t *hd, const char *p, size_t n) {
  if (GC_UNLIKELY(n > HEAD_BUF - hd->n)) {
    head_flush(hd);
    if (n > HEAD_BUF) { /* a long header value goes as it is */
      if (hd->err == 0)
        hd->err = x__out(hd->c, p, n);
      return;
    }
  }
  memcpy(hd->buf + hd->n, p, n);
  hd->n += n;
}

static int head_end(head_t *hd) {
  head_flush(hd);
  return hd->err;
}

static int res_begin_typed(x__exchange_t *ex, int64_t length,
                           const char *type) {
  x__conn_t *c = ex->conn;
  rt_server_t *s = ex->srv;
  for (int i = 0; i < ex->nhead; i++) {
    x__call(ex, ex->on_head[i].fn, ex->on_head[i].data);
    if (ex->conn->closing || ex->head_sent)
      return -EPIPE;
  }
  x__handler_timer_stop(ex);
  bool keep = ex->keep_alive && !s->closing && !c->eof && !c->failed;
  if (ex->body_expected && !ex->body_done && ex->body_fn == NULL) {
    bool small = ex->content_length >= 0 &&
                 (uint64_t)ex->content_length - ex->body_seen <= DISCARD_MAX;
    if (ex->expect_continue || !small)
      keep = false;
  }
  bool nobody = no_body_status(ex->status);
  if (length < 0 && !nobody && ex->minor == 0)
    keep = false; /* HTTP/1.0: the end of the connection ends the body */
  ex->no_body = nobody || ex->is_head;

  /* The head is assembled on the stack and handed to x__out in one piece
   * (or a few, for a head larger than the buffer): a dozen small appends
   * each paid x__out's checks. */
  head_t hd; /* not "= {...}": that would zero the whole buffer */
  hd.c = c;
  hd.n = 0;
  hd.err = 0;
  char num[24];
  head_put(&hd, "HTTP/1.1 ", 9);
  head_put(&hd, num, fmt_u64(num, (uint64_t)ex->status));
  head_put(&hd, " ", 1);
  const char *st = x__status_text(ex->status);
  head_put(&hd, st, strlen(st));
  head_put(&hd, "\r\n", 2);
  bool typed = false;
  for (size_t i = 0; i < ex->nhdr; i++) {
    const char *name = ex->hdr[i];
    size_t nl = strlen(name);
    const char *val = name + nl + 1;
    switch (nl) {
    case 10: /* the application may ask to close, never to keep */
      if (strcasecmp(name, "connection") == 0) {
        if (strcasestr(val, "close") != NULL)
          keep = false;
        continue;
      }
      break;
    case 12:
      typed = typed || strcasecmp(name, "content-type") == 0;
      break;
    case 14:
    case 17: /* the server frames the body */
      if (strcasecmp(name, "content-length") == 0 ||
          strcasecmp(name, "transfer-encoding") == 0)
        continue;
      break;
    }
    head_put(&hd, name, nl);
    head_put(&hd, ": ", 2);
    head_put(&hd, val, strlen(val));
    head_put(&hd, "\r\n", 2);
  }
  if (!typed && type != NULL && !nobody) {
    head_put(&hd, "Content-Type: ", 14);
    head_put(&hd, type, strlen(type));
    head_put(&hd, "\r\n", 2);
  }
  ex->close_after = !keep;
  ex->chunked_out = length < 0 && !nobody && ex->minor >= 1;
  const char *date = x__date_header(s);
  head_put(&hd, date, strlen(date));
  if (keep)
    head_put(&hd, s->keep_alive_line, s->keep_alive_len);
  else
    head_put(&hd, "Connection: close\r\n", 19);
  if (!nobody) {
    if (length >= 0) {
      head_put(&hd, "Content-Length: ", 16);
      head_put(&hd, num, fmt_u64(num, (uint64_t)length));
      head_put(&hd, "\r\n", 2);
    } else if (ex->chunked_out) {
      head_put(&hd, "Transfer-Encoding: chunked\r\n", 28);
    }
  }
  head_put(&hd, "\r\n", 2);
  int err = head_end(&hd);
  ex->head_sent = true;
  ex->expect_continue = false;
  return err;
}

static int res_begin(x__exchange_t *ex, int64_t length) {
  return res_begin_typed(ex, length, NULL);
}

static void default_type(rt_value_t *req, const char *type) {
  if (rt_res_get_header(req, "content-type") == NULL)
    rt_res_set_header(req, "Content-Type", type);
}

/* Ends a response whose bytes are all with the connection. */
static int res_done(x__exchange_t *ex) {
  x__response_ended(ex);
  return 0;
}

/* --- Whole bodies ------------------------------------------------------------ */

/* STR, when not NULL, is the handle of the string whose bytes P are: they
 * are read again after the head's hooks ran (user code: a GC point). */
static int send_bytes_of(rt_value_t *req, const void *p, size_t n,
                         const char *type, const rt_value_t *str) {
  int err;
  x__exchange_t *ex = open_ex(req, &err);
  if (ex == NULL)
    return err;
  err = res_begin_typed(ex, (int64_t)n, type);
  if (err < 0)
    return err;
  if (str != NULL)
    p = rt_string_data(*str);
  if (!ex->no_body) {
    err = x__out(ex->conn, p, n);
    ex->bytes_out += n;
  }
  res_done(ex);
  return err;
}

static int send_bytes(rt_value_t *req, const void *p, size_t n,
                      const char *type) {
  return send_bytes_of(req, p, n, type, NULL);
}

int rt_res_send(rt_value_t *req, const void *p, size_t n) {
  return send_bytes(req, p, n, "text/plain; charset=utf-8");
}

int rt_res_send_string(rt_value_t *req, const rt_value_t *str) {
  if (str == NULL || !rt_is_string(*str))
    return -EINVAL;
  return send_bytes_of(req, rt_string_data(*str), rt_string_length(*str),
                       "text/plain; charset=utf-8", str);
}

int rt_res_send_buffer(rt_value_t *req, const rt_value_t *buf) {
  if (buf == NULL || !rt_is_buffer(*buf))
    return -EINVAL;
  size_t n = rt_buffer_length(*buf);
  if (n <= COPY_MAX)
    return send_bytes(req, rt_buffer_data(*buf), n,
                      "application/octet-stream");
  int err;
  x__exchange_t *ex = open_ex(req, &err);
  if (ex == NULL)
    return err;
  err = res_begin_typed(ex, (int64_t)n, "application/octet-stream");
  if (err == 0 && !ex->no_body) {
    err = x__out_buffer(ex->conn, *buf, rt_buffer_data(*buf), n);
    ex->bytes_out += n;
  }
  if (x__exchange_of(req) == ex)
    res_done(ex);
  return err;
}

int rt_res_json(rt_value_t *req, const rt_value_t *v) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return -EPIPE;
  if (v == NULL)
    return -EINVAL;
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  int err = rt_json_stringify(ex->srv->rt, *v, NULL, &b);
  if (err == 0)
    err = rt_res_json_text(req, b.data, b.len);
  rt_strbuf_free(&b);
  return err;
}

int rt_res_json_text(rt_value_t *req, const char *text, size_t n) {
  if (text == NULL)
    return -EINVAL;
  return send_bytes(req, text, n, "application/json; charset=utf-8");
}

int rt_res_send_status(rt_value_t *req, int status) {
  int err = rt_res_status(req, status);
  if (err < 0)
    return err;
  char text[64];
  int n = snprintf(text, sizeof text, "%s\n", x__status_text(status));
  return rt_res_send(req, text, (size_t)n);
}

/* --- Streaming ------------------------------------------------------------- */

int rt_res_write(rt_value_t *req, const void *p, size_t n) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL || ex->conn->closing || ex->ended)
    return -EPIPE;
  x__conn_t *c = ex->conn;
  int err = 0;
  if (!ex->head_sent && (err = res_begin(ex, -1)) < 0)
    return err;
  if (n > 0 && !ex->no_body) {
    if (ex->chunked_out) {
      char sz[24];
      int k = snprintf(sz, sizeof sz, "%zx\r\n", n);
      x__out(c, sz, (size_t)k);
      x__out(c, p, n);
      err = x__out(c, "\r\n", 2);
    } else {
      err = x__out(c, p, n);
    }
    ex->bytes_out += n;
  }
  if (err < 0)
    return err;
  if (!c->processing)
    x__conn_flush(c);
  if (c->closing)
    return -EPIPE;
  return x__queued(c) >= ex->srv->o.high_water_mark ? 1 : 0;
}

int rt_res_on_drain(rt_value_t *req, rt_drain_fn fn, void *data) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL || ex->conn->closing)
    return -EPIPE;
  ex->drain_fn = fn;
  ex->drain_data = data;
  return 0;
}

int rt_res_end(rt_value_t *req) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL || ex->conn->closing || ex->ended)
    return -EPIPE;
  if (!ex->head_sent) {
    int err = res_begin(ex, 0);
    if (err < 0)
      return err;
  } else if (ex->chunked_out && !ex->no_body) {
    x__out(ex->conn, "0\r\n\r\n", 5);
  }
  return res_done(ex);
}

/* --- Hooks ------------------------------------------------------------- */

static int add_hook(rt_value_t *req, bool head, rt_drain_fn fn, void *data) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return -EPIPE;
  if (fn == NULL)
    return -EINVAL;
  int *n = head ? &ex->nhead : &ex->nfinish;
  x__hook_t *hs = head ? ex->on_head : ex->on_finish;
  if (*n == X__HOOKS)
    return -ENOSPC;
  hs[*n].fn = fn;
  hs[*n].data = data;
  (*n)++;
  return 0;
}

int rt_res_on_head(rt_value_t *req, rt_drain_fn fn, void *data) {
  return add_hook(req, true, fn, data);
}

int rt_res_on_finish(rt_value_t *req, rt_drain_fn fn, void *data) {
  return add_hook(req, false, fn, data);
}

uint64_t rt_res_bytes(rt_value_t *req) {
  x__exchange_t *ex = x__exchange_of(req);
  return ex != NULL ? ex->bytes_out : 0;
}

/* --- The server's own answers -------------------------------------------------- */

void x__respond_error(x__exchange_t *ex, int status, const char *text,
                      bool close) {
  if (ex->head_sent || ex->conn->closing)
    return;
  gc_heap_t *h = ex->srv->h;
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *req = rt_handle(h, ex->req);
  /* The application's headers are not for an error it did not write. */
  hdr_clear(ex);
  ex->status = status;
  ex->nhead = 0;
  if (close)
    rt_res_set_header(req, "Connection", "close");
  char body[512];
  int n = snprintf(body, sizeof body, "%s\n",
                   text != NULL ? text : x__status_text(status));
  if (n < 0 || (size_t)n >= sizeof body)
    n = (int)sizeof body - 1;
  send_bytes(req, body, (size_t)n, "text/plain; charset=utf-8");
  gc_scope_close(h, &sc);
}

void x__conn_error(x__conn_t *c, int status, const char *reason) {
  char buf[512];
  char date[64];
  snprintf(date, sizeof date, "%s", x__date_header(c->srv));
  int blen = (int)strlen(reason != NULL ? reason : x__status_text(status)) + 1;
  int n = snprintf(buf, sizeof buf,
                   "HTTP/1.1 %d %s\r\n%sConnection: close\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: %d\r\n\r\n%s\n",
                   status, x__status_text(status), date, blen,
                   reason != NULL ? reason : x__status_text(status));
  c->failed = true;
  if (n > 0 && (size_t)n < sizeof buf)
    x__out(c, buf, (size_t)n);
}

/* --- Files ------------------------------------------------------------------ */

const char *rt_mime_type(const char *name) {
  static const char *const map[][2] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json; charset=utf-8"},
      {"txt", "text/plain; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
      {"csv", "text/csv; charset=utf-8"},
      {"xml", "application/xml"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"avif", "image/avif"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"pdf", "application/pdf"},
      {"zip", "application/zip"},
      {"gz", "application/gzip"},
      {"tar", "application/x-tar"},
      {"wasm", "application/wasm"},
      {"mp4", "video/mp4"},
      {"webm", "video/webm"},
      {"mp3", "audio/mpeg"},
      {"ogg", "audio/ogg"},
      {"wav", "audio/wav"},
      {"heapsnapshot", "application/json"},
  };
  const char *dot = name != NULL ? strrchr(name, '.') : NULL;
  const char *slash = name != NULL ? strrchr(name, '/') : NULL;
  if (dot != NULL && (slash == NULL || dot > slash))
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
      if (strcasecmp(dot + 1, map[i][0]) == 0)
        return map[i][1];
  return "application/octet-stream";
}

/* Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range of a SIZE-byte
 * file: 1 with [*from, *to] (inclusive), 0 to ignore the header (malformed
 * or several ranges: the whole file is sent, as RFC 9110 allows), -1 when
 * unsatisfiable (416). */
static int parse_range(const char *r, int64_t size, int64_t *from,
                       int64_t *to) {
  if (strncasecmp(r, "bytes=", 6) != 0)
    return 0;
  r += 6;
  while (*r == ' ')
    r++;
  if (strchr(r, ',') != NULL)
    return 0;
  char *end;
  if (*r == '-') {
    if (r[1] < '0' || r[1] > '9')
      return 0;
    long long n = strtoll(r + 1, &end, 10);
    if (*end != '\0' || n <= 0)
      return n == 0 && *end == '\0' ? -1 : 0;
    if (size == 0)
      return -1;
    *from = n >= size ? 0 : size - n;
    *to = size - 1;
    return 1;
  }
  if (*r < '0' || *r > '9')
    return 0;
  long long a = strtoll(r, &end, 10);
  if (*end != '-')
    return 0;
  const char *b = end + 1;
  long long bv = size - 1;
  if (*b != '\0') {
    if (*b < '0' || *b > '9')
      return 0;
    bv = strtoll(b, &end, 10);
    if (*end != '\0' || bv < a)
      return 0;
  }
  if (a >= size)
    return -1;
  *from = a;
  *to = bv >= size ? size - 1 : bv;
  return 1;
}

/* True when the list of entity tags LIST (an If-Match or If-None-Match
 * value) is "*" or names ETAG: by the weak comparison (RFC 9110 8.8.3.2:
 * the opaque tags are equal, either may be weak), or the strong one when
 * STRONG (both must be strong). */
static bool etag_matches(const char *list, const char *etag, bool strong) {
  const char *l = list;
  while (*l == ' ')
    l++;
  if (l[0] == '*')
    return true;
  bool etag_weak = etag[0] == 'W' && etag[1] == '/';
  if (strong && etag_weak)
    return false;
  const char *e = etag_weak ? etag + 2 : etag;
  size_t el = strlen(e);
  for (const char *p = l; *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    bool weak = p[0] == 'W' && p[1] == '/';
    if (weak)
      p += 2;
    if ((!strong || !weak) && strncmp(p, e, el) == 0 &&
        (p[el] == '\0' || p[el] == ',' || p[el] == ' '))
      return true;
    while (*p && *p != ',')
      p++;
  }
  return false;
}

static time_t parse_http_date(const char *s) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == NULL)
    return (time_t)-1;
  return timegm(&tm);
}

/* Ends a file response that sends no file (a failed precondition, not
 * modified): STATUS, the validators already set, no Content-Type. */
static int file_answer_empty(rt_value_t *req, x__exchange_t *ex, int fd,
                             int status) {
  close(fd);
  rt_res_remove_header(req, "Content-Type");
  ex->status = status;
  res_begin(ex, 0);
  return res_done(ex);
}

int rt_res_send_file(rt_value_t *req, const char *path) {
  int err;
  x__exchange_t *ex = open_ex(req, &err);
  if (ex == NULL)
    return err;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    err = -errno;
    close(fd);
    return err;
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return -EISDIR;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return -EACCES;
  }
  /* A strong validator, as nginx's: the size and the modification time in
   * ms change with the file's bytes (If-Match and If-Range compare
   * strongly: a weak tag would never match them). */
  char etag[64], lm[64];
  snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
           (unsigned long long)st.st_mtim.tv_sec * 1000 +
               (unsigned long long)st.st_mtim.tv_nsec / 1000000);
  struct tm tm;
  gmtime_r(&st.st_mtim.tv_sec, &tm);
  strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  rt_res_set_header(req, "ETag", etag);
  rt_res_set_header(req, "Last-Modified", lm);
  rt_res_set_header(req, "Accept-Ranges", "bytes");
  default_type(req, rt_mime_type(path));
  /* Conditional requests, in RFC 9110 13.2.2's order: If-Match (strong),
   * else If-Unmodified-Since (a valid date), each a 412 when false; then
   * If-None-Match (weak), else If-Modified-Since, each a 304 when the
   * file has not changed. */
  rt_value_t im = rt_req_header(*req, "if-match");
  rt_value_t ius = rt_req_header(*req, "if-unmodified-since");
  bool failed = false;
  if (rt_is_string(im)) {
    failed = !etag_matches(rt_string_data(im), etag, true);
  } else if (rt_is_string(ius)) {
    time_t t = parse_http_date(rt_string_data(ius));
    failed = t != (time_t)-1 && st.st_mtim.tv_sec > t;
  }
  if (failed)
    return file_answer_empty(req, ex, fd, 412);
  rt_value_t inm = rt_req_header(*req, "if-none-match");
  rt_value_t ims = rt_req_header(*req, "if-modified-since");
  bool not_modified = false;
  if (rt_is_string(inm))
    not_modified = etag_matches(rt_string_data(inm), etag, false);
  else if (rt_is_string(ims)) {
    time_t t = parse_http_date(rt_string_data(ims));
    not_modified = t != (time_t)-1 && st.st_mtim.tv_sec <= t;
  }
  if (not_modified)
    return file_answer_empty(req, ex, fd, 304);
  int64_t size = st.st_size, from = 0, to = size - 1;
  rt_value_t range = rt_req_header(*req, "range");
  rt_value_t if_range = rt_req_header(*req, "if-range");
  bool use_range = rt_is_string(range) &&
                   (!rt_is_string(if_range) ||
                    strcmp(rt_string_data(if_range), etag) == 0 ||
                    strcmp(rt_string_data(if_range), lm) == 0);
  if (use_range) {
    int r = parse_range(rt_string_data(range), size, &from, &to);
    if (r < 0) {
      close(fd);
      char cr[64];
      snprintf(cr, sizeof cr, "bytes */%lld", (long long)size);
      rt_res_set_header(req, "Content-Range", cr);
      ex->status = 416;
      res_begin(ex, 0);
      return res_done(ex);
    }
    if (r > 0) {
      char cr[96];
      snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)from,
               (long long)to, (long long)size);
      rt_res_set_header(req, "Content-Range", cr);
      ex->status = 206;
    }
  }
  int64_t len = size == 0 ? 0 : to - from + 1;
  err = res_begin(ex, len);
  if (err < 0 || ex->no_body || len == 0) {
    close(fd);
    res_done(ex);
    return err;
  }
  ex->file_fd = fd;
  ex->file_off = from;
  ex->file_end = from + len;
  ex->bytes_out += (uint64_t)len;
  x__conn_t *c = ex->conn;
  if (!c->processing)
    x__conn_flush(c);
  if (x__queued(c) == 0)
    x__file_pump(ex);
  return 0;
}

/* Sends the file on: sendfile(2) straight into the socket while it takes
 * bytes; when it would block, one chunk is read and queued through libuv,
 * whose completion (conn_after_write) calls this again.  The file ends the
 * response. */
void x__file_pump(x__exchange_t *ex) {
  x__conn_t *c = ex->conn;
  if (c->closing || ex->file_fd < 0)
    return;
  int sock;
  if (uv_fileno((uv_handle_t *)&c->tcp, &sock) < 0)
    sock = -1;
  while (ex->file_off < ex->file_end && sock >= 0) {
    off_t off = (off_t)ex->file_off;
    size_t want = (size_t)(ex->file_end - ex->file_off);
    if (want > (1u << 30))
      want = 1u << 30;
    ssize_t n = sendfile(sock, ex->file_fd, &off, want);
    if (n > 0) {
      ex->file_off = off;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno != EAGAIN) {
      x__log(ex->srv, "tenure-server: sendfile: %s", strerror(errno));
      x__exchange_free_response(ex);
      ex->close_after = true;
      /* The head promised a length: the connection cannot go on. */
      x__response_ended(ex);
      return;
    }
    if (n == 0) /* the file shrank */
      break;
    /* The socket is full: one chunk through the write queue. */
    size_t k = want < FILE_CHUNK ? want : FILE_CHUNK;
    char *b = malloc(k);
    ssize_t got = b != NULL ? pread(ex->file_fd, b, k, (off_t)ex->file_off)
                            : -1;
    if (got <= 0) {
      free(b);
      break;
    }
    ex->file_off += got;
    x__out(c, b, (size_t)got);
    free(b);
    x__conn_flush(c);
    if (ex->file_off < ex->file_end && x__queued(c) > 0)
      return; /* conn_after_write pumps again */
  }
  if (ex->file_off < ex->file_end) /* short file: the length was a lie */
    ex->close_after = true;
  close(ex->file_fd);
  ex->file_fd = -1;
  x__response_ended(ex);
}
