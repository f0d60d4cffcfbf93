/* bodyparser.c -- body-parser middleware: JSON, urlencoded and text bodies
 * (collected off the heap up to a limit, decoded by their charset, parsed
 * once), and multipart/form-data (streamed into rt_form_t: files to disk
 * as they arrive).
 *
 * Each parser acts only on its Content-Types and only once per request (a
 * body already being read passes on); everything else goes to the next
 * layer untouched.  Failures go to rt_next_error with the status and a
 * message that names the rule or the limit.
 *
 * INV(collect): nothing on the heap is held while a body arrives; the
 * value is made after RT_BODY_END, in the reader's callback (a GC point
 * with the request as a handle).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tenure/rt_encoding.h>
#include <tenure/rt_multipart.h>
#include <tenure/rt_urlencoded.h>

#include "http_internal.h"

#define DEFAULT_LIMIT (100 * 1024) /* body-parser's 100kb */

enum { K_JSON, K_URLENCODED, K_TEXT };

typedef struct parser_s {
  int kind;
  uint64_t limit;
  rt_urlencoded_opts_t uo;
} parser_t;

typedef struct collect_s {
  const parser_t *p;
  rt_strbuf_t buf;
  rt_encoding_t enc;
  bool utf8;
  bool failed;
} collect_t;

/* The media type of the request's Content-Type is one this parser takes. */
static bool takes(const parser_t *p, rt_value_t req) {
  switch (p->kind) {
  case K_JSON: {
    if (rt_req_is(req, "application/json"))
      return true;
    rt_value_t ct = rt_req_header(req, "content-type");
    if (!rt_is_string(ct))
      return false;
    const char *s = rt_string_data(ct);
    const char *semi = strchr(s, ';');
    size_t n = semi != NULL ? (size_t)(semi - s) : strlen(s);
    while (n > 0 && s[n - 1] == ' ')
      n--;
    return n > 5 && strncasecmp(s + n - 5, "+json", 5) == 0 &&
           strncasecmp(s, "application/", 12) == 0;
  }
  case K_URLENCODED:
    return rt_req_is(req, "application/x-www-form-urlencoded");
  default:
    return rt_req_is(req, "text/plain");
  }
}

/* Why reading a body stopped (STATUS < 0, from the server's body
 * callback): -EPROTO is the server's "the request's framing broke after
 * its head" (a bad chunk size or chunk end), which rt_strerror would name
 * by the collector's meaning of the code. */
static const char *body_strerror(int status) {
  if (status == -EPROTO)
    return "malformed framing (chunked encoding)";
  return rt_strerror(status);
}

static void fail(rt_value_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(rt_value_t *req, int status, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rt_next_error(req, status, msg);
}

/* GC point.  Makes the body value of the collected bytes. */
static void finish(rt_value_t *req, collect_t *c) {
  rt_runtime_t *rt = rt_req_runtime(*req);
  if (rt == NULL)
    return;
  gc_heap_t *h = rt_heap(rt);
  /* Text in the declared charset becomes UTF-8 first. */
  rt_strbuf_t utf8;
  rt_strbuf_init(&utf8);
  const char *text = c->buf.data != NULL ? c->buf.data : "";
  size_t len = c->buf.len;
  if (!c->utf8) {
    int err = rt_decode(&c->enc, text, len, &utf8);
    if (err < 0) {
      rt_strbuf_free(&utf8);
      fail(req, 415, "cannot decode the body as %s", c->enc.name);
      return;
    }
    text = utf8.data != NULL ? utf8.data : "";
    len = utf8.len;
  }
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *v = rt_handle(h, RT_UNDEFINED);
  int status = 0;
  char msg[256] = "";
  switch (c->p->kind) {
  case K_JSON: {
    if (len == 0) { /* body-parser: an empty body is an empty object */
      *v = rt_map_new(rt, 0);
      break;
    }
    rt_json_error_t je;
    int err = rt_json_parse(rt, text, len, NULL, v, &je);
    if (err == -ENOMEM) {
      status = 500;
      snprintf(msg, sizeof msg, "out of memory parsing JSON");
    } else if (err < 0) {
      status = 400;
      snprintf(msg, sizeof msg,
               "invalid JSON at offset %zu: expected %s", je.offset,
               je.expected != NULL ? je.expected : "a value");
    }
    break;
  }
  case K_URLENCODED: {
    const char *why = NULL;
    int err = rt_urlencoded_parse(rt, text, len, &c->p->uo, v, &why);
    if (err < 0) {
      status = err == -E2BIG ? 413 : err == -ENOMEM ? 500 : 400;
      snprintf(msg, sizeof msg, "urlencoded body: %s",
               why != NULL ? why : rt_strerror(err));
    }
    break;
  }
  default:
    *v = rt_string_from_bytes(rt, text, len);
    break;
  }
  rt_strbuf_free(&utf8);
  if (status == 0 && *v == RT_NONE) {
    status = 500;
    snprintf(msg, sizeof msg, "out of memory");
  }
  if (status != 0)
    rt_next_error(req, status, msg);
  else if (rt_req_set(req, RT_REQ_BODY, *v) == 0)
    rt_next(req, 0);
  gc_scope_close(h, &sc);
}

static void on_piece(rt_value_t *req, const char *data, size_t len,
                     int status, void *ud) {
  collect_t *c = ud;
  if (status == 0) {
    if (c->failed)
      return;
    if (c->buf.len + len > c->p->limit) {
      c->failed = true;
      fail(req, 413, "request entity too large: over the limit of %" PRIu64
                     " bytes",
           c->p->limit);
      return;
    }
    if (rt_strbuf_append(&c->buf, data, len) < 0) {
      c->failed = true;
      fail(req, 500, "out of memory reading the body");
    }
    return;
  }
  if (status == RT_BODY_END && !c->failed)
    finish(req, c);
  else if (status < 0 && !c->failed)
    fail(req, status == -EMSGSIZE ? 413 : 400, "reading the body: %s",
         body_strerror(status));
  rt_strbuf_free(&c->buf);
  free(c);
}

static void body_mw(rt_value_t *req, void *data) {
  const parser_t *p = data;
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return;
  /* No body framing at all (a GET): nothing to look at. */
  if (!x__has_body_framing(ex) || ex->body_fn != NULL ||
      ex->body_seen > 0 || !takes(p, *req)) {
    rt_next(req, 0);
    return;
  }
  if (ex->content_length > 0 && (uint64_t)ex->content_length > p->limit) {
    fail(req, 413, "request entity too large: Content-Length %" PRId64
                   " is over the limit of %" PRIu64 " bytes",
         ex->content_length, p->limit);
    return;
  }
  collect_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    rt_next(req, -ENOMEM);
    return;
  }
  c->p = p;
  rt_strbuf_init(&c->buf);
  c->utf8 = true;
  rt_value_t ct = rt_req_header(*req, "content-type");
  int err = rt_encoding_from_content_type(rt_string_data(ct),
                                          rt_string_length(ct), &c->enc);
  if (err == -EINVAL) {
    char cs[64] = "";
    rt_req_charset(*req, cs, sizeof cs);
    free(c);
    fail(req, 415, "unsupported charset \"%s\"", cs);
    return;
  }
  if (err == 0)
    c->utf8 = c->enc.kind == RT_ENC_UTF8;
  if (rt_req_read(req, on_piece, c) < 0) {
    rt_strbuf_free(&c->buf);
    free(c);
    rt_next(req, 0);
  }
}

static int add_parser(rt_app_t *app, const char *path, int kind,
                      uint64_t limit, const rt_urlencoded_opts_t *o) {
  parser_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  p->kind = kind;
  p->limit = limit != 0 ? limit : DEFAULT_LIMIT;
  if (o != NULL)
    p->uo = *o;
  else
    rt_urlencoded_opts_init(&p->uo);
  int err = x__app_use_body(app, path, body_mw, p, free);
  if (err < 0)
    free(p);
  return err;
}

int rt_mw_json(rt_app_t *app, const char *path, uint64_t limit) {
  return add_parser(app, path, K_JSON, limit, NULL);
}

int rt_mw_urlencoded(rt_app_t *app, const char *path, uint64_t limit,
                     const rt_urlencoded_opts_t *o) {
  return add_parser(app, path, K_URLENCODED, limit, o);
}

int rt_mw_text(rt_app_t *app, const char *path, uint64_t limit) {
  return add_parser(app, path, K_TEXT, limit, NULL);
}

/* --- multipart/form-data ------------------------------------------------------ */

typedef struct mp_s {
  char *dir;
  rt_multipart_limits_t lim;
} mp_t;

typedef struct upload_s {
  rt_form_t *form;
  bool failed;
} upload_t;

static void form_failed(rt_value_t *req, upload_t *u) {
  const char *msg = NULL;
  int st = rt_form_error(u->form, &msg);
  u->failed = true;
  rt_next_error(req, st != 0 ? st : 400, msg != NULL ? msg : "bad form");
}

static void on_form_piece(rt_value_t *req, const char *data, size_t len,
                          int status, void *ud) {
  upload_t *u = ud;
  if (status == 0) {
    if (!u->failed && rt_form_write(u->form, data, len) < 0)
      form_failed(req, u);
    return;
  }
  if (status == RT_BODY_END && !u->failed) {
    rt_runtime_t *rt = rt_req_runtime(*req);
    gc_heap_t *h = rt_heap(rt);
    gc_scope_t sc;
    gc_scope_open(h, &sc);
    rt_value_t *fields = rt_handle(h, RT_NONE);
    rt_value_t *files = rt_handle(h, RT_NONE);
    if (rt_form_finish(u->form, fields, files) < 0) {
      form_failed(req, u);
    } else {
      rt_req_set(req, RT_REQ_BODY, *fields);
      rt_req_set(req, RT_REQ_FILES, *files);
      rt_next(req, 0);
    }
    gc_scope_close(h, &sc);
  } else if (status < 0 && !u->failed) {
    fail(req, status == -EMSGSIZE ? 413 : 400, "reading the body: %s",
         body_strerror(status));
  }
  rt_form_destroy(u->form); /* deletes the files unless finished */
  free(u);
}

static void multipart_mw(rt_value_t *req, void *data) {
  mp_t *m = data;
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return;
  if (!x__has_body_framing(ex) || ex->body_fn != NULL ||
      ex->body_seen > 0 || !rt_req_is(*req, "multipart/form-data")) {
    rt_next(req, 0);
    return;
  }
  upload_t *u = calloc(1, sizeof *u);
  if (u == NULL) {
    rt_next(req, -ENOMEM);
    return;
  }
  rt_value_t ct = rt_req_header(*req, "content-type");
  int err = rt_form_create(rt_req_runtime(*req), rt_string_data(ct),
                           m->dir, &m->lim, &u->form);
  if (err < 0) {
    if (u->form != NULL) {
      form_failed(req, u);
      rt_form_destroy(u->form);
    } else {
      fail(req, 500, "upload directory: %s", rt_strerror(err));
    }
    free(u);
    return;
  }
  if (rt_req_read(req, on_form_piece, u) < 0) {
    rt_form_destroy(u->form);
    free(u);
    rt_next(req, 0);
  }
}

static void mp_free(void *data) {
  mp_t *m = data;
  free(m->dir);
  free(m);
}

int rt_mw_multipart(rt_app_t *app, const char *path, const char *upload_dir,
                    const rt_multipart_limits_t *limits) {
  if (upload_dir == NULL)
    return -EINVAL;
  mp_t *m = calloc(1, sizeof *m);
  if (m == NULL || (m->dir = strdup(upload_dir)) == NULL) {
    free(m);
    return -ENOMEM;
  }
  if (limits != NULL)
    m->lim = *limits;
  else
    rt_multipart_limits_init(&m->lim);
  int err = x__app_use_body(app, path, multipart_mw, m, mp_free);
  if (err < 0)
    mp_free(m);
  return err;
}
