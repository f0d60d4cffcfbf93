/* request.c -- the Request value: its heap object, the values built from a
 * head (url, path, query, headers), lazily built ones (cookies, params,
 * locals), reading the body, and content negotiation.
 *
 * Headers become a Map as node's IncomingMessage.headers: names lower-case;
 * values decoded as latin1 (node's rule for header bytes); a repeated
 * header joined with ", " (cookie with "; "), set-cookie an Array, and for
 * the headers node keeps once (content-type, host, user-agent, ...) the
 * first wins.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tenure/rt_cookie.h>
#include <tenure/rt_urlencoded.h>

#include "http_internal.h"

static void req_trace(void *obj, gc_visitor_t *v) {
  rt__req_t *r = obj;
  static const char *const names[RT_REQ__NFIELDS] = {
      "url",     "path", "query", "headers", "params",
      "cookies", "body", "files", "locals"};
  for (int i = 0; i < RT_REQ__NFIELDS; i++)
    GC_VISIT(v, &r->f[i], GC_EDGE_PROP(names[i]));
}

const gc_type_t rt__req_type = {
    .name = "Request",
    .size = sizeof(rt__req_t),
    .trace = req_trace,
};

/* --- Building ------------------------------------------------------------- */

/* Headers node keeps once (the first wins). */
static bool single_valued(const char *n, size_t len) {
  static const char *const names[] = {
      "age",      "authorization",     "content-length",
      "content-type", "etag",          "expires",
      "from",     "host",              "if-modified-since",
      "if-unmodified-since", "last-modified", "location",
      "max-forwards", "proxy-authorization", "referer",
      "retry-after", "server",         "user-agent"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i]) == len && memcmp(names[i], n, len) == 0)
      return true;
  return false;
}

/* GC point.  A string of latin1 bytes (as node decodes header values). */
static rt_value_t latin1_string(rt_runtime_t *rt, const char *p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) { /* ASCII, the usual case, 8 bytes a step */
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w & 0x8080808080808080ull)
      break;
  }
  while (i < n && (unsigned char)p[i] < 0x80)
    i++;
  if (i == n)
    return rt_string_new(rt, p, n);
  size_t hi = 0;
  for (; i < n; i++)
    hi += (unsigned char)p[i] >= 0x80;
  char *b = malloc(n + hi);
  if (b == NULL)
    return RT_NONE;
  size_t o = 0;
  for (size_t j = 0; j < n; j++) {
    unsigned char ch = (unsigned char)p[j];
    if (ch < 0x80) {
      b[o++] = (char)ch;
    } else {
      b[o++] = (char)(0xc0 | (ch >> 6));
      b[o++] = (char)(0x80 | (ch & 0x3f));
    }
  }
  rt_value_t s = rt_string_new(rt, b, o);
  free(b);
  return s;
}

static void set_field(gc_heap_t *h, rt_value_t req, int f, rt_value_t v) {
  rt__req_t *r = (rt__req_t *)req;
  gc_write(h, r, (void **)&r->f[f], (void *)v);
}

static int build_headers(rt_runtime_t *rt, rt_value_t *map,
                         const rt_http_head_t *head) {
  gc_heap_t *h = rt_heap(rt);
  for (size_t i = 0; i < head->nheaders; i++) {
    const rt_http_header_t *x = &head->headers[i];
    gc_scope_t sc;
    gc_scope_open(h, &sc);
    rt_value_t *k = rt_handle(h, rt_string_new(rt, x->name, x->name_len));
    rt_value_t *v =
        rt_handle(h, latin1_string(rt, x->value, x->value_len));
    if (*k == RT_NONE || *v == RT_NONE) {
      gc_scope_close(h, &sc);
      return -ENOMEM;
    }
    rt_value_t old = rt_map_get(*map, *k);
    int err = 0;
    bool set_cookie =
        x->name_len == 10 && memcmp(x->name, "set-cookie", 10) == 0;
    if (set_cookie) {
      rt_value_t *arr = rt_handle(h, old);
      if (old == RT_NONE) {
        *arr = rt_array_new(rt, 2);
        if (*arr == RT_NONE || rt_map_set(rt, map, k, arr) < 0)
          err = -ENOMEM;
      }
      if (err == 0 && rt_array_push(rt, arr, v) < 0)
        err = -ENOMEM;
    } else if (old == RT_NONE) {
      err = rt_map_set(rt, map, k, v);
    } else if (!single_valued(x->name, x->name_len)) {
      bool cookie = x->name_len == 6 && memcmp(x->name, "cookie", 6) == 0;
      rt_strbuf_t b;
      rt_strbuf_init(&b);
      rt_strbuf_append_string(&b, old);
      rt_strbuf_append_cstr(&b, cookie ? "; " : ", ");
      rt_strbuf_append_string(&b, *v);
      *v = rt_strbuf_finish(rt, &b);
      rt_strbuf_free(&b);
      err = *v == RT_NONE ? -ENOMEM : rt_map_set(rt, map, k, v);
    }
    gc_scope_close(h, &sc);
    if (err < 0)
      return err;
  }
  return 0;
}

int x__request_build(x__exchange_t *ex, const rt_http_head_t *head) {
  rt_server_t *s = ex->srv;
  rt_runtime_t *rt = s->rt;
  gc_heap_t *h = s->h;
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  int err = -ENOMEM;
  ex->req = (rt_value_t)gc_alloc(h, &rt__req_type, sizeof(rt__req_t));
  if (ex->req == RT_NONE)
    goto out;
  rt__req_t *r = (rt__req_t *)ex->req;
  r->ex = ex;
  for (int i = 0; i < RT_REQ__NFIELDS; i++)
    r->f[i] = RT_UNDEFINED;
  const char *q = memchr(head->url, '?', head->url_len);
  size_t plen = q != NULL ? (size_t)(q - head->url) : head->url_len;
  /* absolute-form (RFC 9112 3.2.2: a server must accept it): the path is
   * what follows the authority. */
  const char *pstart = head->url;
  if (plen > 0 && head->url[0] != '/' && head->url[0] != '*') {
    const char *sep = memmem(head->url, plen, "://", 3);
    if (sep != NULL) {
      const char *slash = memchr(sep + 3, '/', plen - (size_t)(sep + 3 - head->url));
      pstart = slash != NULL ? slash : head->url + plen;
    }
  }
  rt_value_t *v = rt_handle(h, rt_string_from_bytes(rt, head->url,
                                                    head->url_len));
  if (*v == RT_NONE)
    goto out;
  set_field(h, ex->req, RT_REQ_URL, *v);
  if (pstart == head->url + plen)
    *v = rt_string_new(rt, "/", 1);
  else if (pstart != head->url || plen != head->url_len)
    *v = rt_string_from_bytes(rt, pstart, plen - (size_t)(pstart - head->url));
  /* else the path is the whole URL: the same (immutable) string */
  if (*v == RT_NONE)
    goto out;
  set_field(h, ex->req, RT_REQ_PATH, *v);
  *v = rt_map_new(rt, head->nheaders);
  if (*v == RT_NONE || build_headers(rt, v, head) < 0)
    goto out;
  set_field(h, ex->req, RT_REQ_HEADERS, *v);
  if (q != NULL) {
    const char *why = NULL;
    err = rt_urlencoded_parse(rt, q + 1, head->url_len - plen - 1, NULL, v,
                              &why);
    if (err < 0) {
      x__log(s, "tenure-server: 400: query string: %s",
             why != NULL ? why : rt_strerror(err));
      err = err == -ENOMEM ? -ENOMEM : 400;
      goto out;
    }
    set_field(h, ex->req, RT_REQ_QUERY, *v);
  }
  err = 0;
out:
  gc_scope_close(h, &sc);
  return err;
}

const char *x__req_path(x__exchange_t *ex, size_t *len) {
  rt_value_t p = ex->req != RT_NONE ? ((rt__req_t *)ex->req)->f[RT_REQ_PATH]
                                    : RT_NONE;
  if (!rt_is_string(p)) {
    if (len != NULL)
      *len = 0;
    return "";
  }
  if (len != NULL)
    *len = rt_string_length(p);
  return rt_string_data(p);
}

/* --- Accessors ------------------------------------------------------------ */

rt_value_t rt_req_get(rt_value_t *req, rt_req_field_t f) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL || (unsigned)f >= RT_REQ__NFIELDS)
    return RT_NONE;
  rt_runtime_t *rt = ex->srv->rt;
  gc_heap_t *h = ex->srv->h;
  rt_value_t v = ((rt__req_t *)*req)->f[f];
  if (v != RT_UNDEFINED || f == RT_REQ_BODY || f == RT_REQ_FILES)
    return v;
  /* Built on first use. */
  if (f == RT_REQ_COOKIES) {
    rt_value_t c = rt_req_header(*req, "cookie");
    if (rt_is_string(c)) {
      /* The parser allocates as it reads: it reads a copy, not the string
       * (which a GC may move; found by fuzz_request). */
      size_t n = rt_string_length(c);
      char *copy = malloc(n + 1);
      if (copy == NULL)
        return RT_NONE;
      memcpy(copy, rt_string_data(c), n);
      v = rt_cookie_parse(rt, copy, n);
      free(copy);
    } else {
      v = rt_map_new(rt, 0);
    }
  } else {
    v = rt_map_new(rt, 0); /* query, params, locals */
  }
  if (v != RT_NONE && x__exchange_of(req) != NULL)
    set_field(h, *req, f, v);
  return v;
}

int rt_req_set(rt_value_t *req, rt_req_field_t f, rt_value_t v) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return -EPIPE;
  if ((unsigned)f >= RT_REQ__NFIELDS || v == RT_NONE)
    return -EINVAL;
  set_field(ex->srv->h, *req, f, v);
  return 0;
}

const char *rt_req_method(rt_value_t req) {
  x__exchange_t *ex = x__exchange_of(&req);
  return ex != NULL ? ex->method : NULL;
}

rt_value_t rt_req_header(rt_value_t req, const char *name) {
  x__exchange_t *ex = x__exchange_of(&req);
  if (ex == NULL)
    return RT_NONE;
  rt_value_t m = ((rt__req_t *)req)->f[RT_REQ_HEADERS];
  if (!rt_is_map(m))
    return RT_NONE;
  return rt_map_get_cstr(m, name);
}

int rt_req_http_minor(rt_value_t req) {
  x__exchange_t *ex = x__exchange_of(&req);
  return ex != NULL ? ex->minor : -1;
}

const char *rt_req_remote_addr(rt_value_t req) {
  x__exchange_t *ex = x__exchange_of(&req);
  if (ex == NULL)
    return NULL;
  if (ex->peer[0] == '\0') {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&ex->conn->tcp, (struct sockaddr *)&ss, &len) == 0) {
      if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, ex->peer, sizeof ex->peer);
      else
        uv_ip4_name((struct sockaddr_in *)&ss, ex->peer, sizeof ex->peer);
    } else {
      snprintf(ex->peer, sizeof ex->peer, "-");
    }
  }
  return ex->peer;
}

rt_server_t *rt_req_server(rt_value_t req) {
  x__exchange_t *ex = x__exchange_of(&req);
  return ex != NULL ? ex->srv : NULL;
}

rt_runtime_t *rt_req_runtime(rt_value_t req) {
  x__exchange_t *ex = x__exchange_of(&req);
  return ex != NULL ? ex->srv->rt : NULL;
}

double rt_req_elapsed_ms(rt_value_t *req) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return 0;
  return (double)(x__now_ns() - ex->start_ns) / 1e6;
}

/* --- The body --------------------------------------------------------------- */

int rt_req_read(rt_value_t *req, rt_body_fn fn, void *ud) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return -EPIPE;
  if (fn == NULL)
    return -EINVAL;
  if (ex->body_fn != NULL || ex->body_seen > 0 || ex->ended)
    return -EALREADY;
  ex->body_fn = fn;
  ex->body_ud = ud;
  x__conn_t *c = ex->conn;
  if (!ex->body_expected) {
    /* Nothing to read: the end, now. */
    ex->body_fn = NULL;
    fn(req, NULL, 0, RT_BODY_END, ud);
    return 0;
  }
  if (ex->expect_continue && !ex->head_sent) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    x__out(c, cont, sizeof cont - 1);
    if (!c->processing)
      x__conn_flush(c);
  }
  ex->expect_continue = false;
  x__handler_timer_stop(ex); /* waiting on the client now */
  x__want_input(c);
  return 0;
}

void rt_req_pause(rt_value_t *req) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex != NULL)
    ex->body_paused = true;
}

void rt_req_resume(rt_value_t *req) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL || !ex->body_paused)
    return;
  ex->body_paused = false;
  x__want_input(ex->conn);
}

/* --- Content types and negotiation ------------------------------------------ */

/* The media type of a Content-Type or Accept element: P[0..*N) trimmed, up
 * to ';'. */
static const char *media(const char *p, size_t len, size_t *n) {
  while (len > 0 && (*p == ' ' || *p == '\t')) {
    p++;
    len--;
  }
  size_t i = 0;
  while (i < len && p[i] != ';')
    i++;
  while (i > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t'))
    i--;
  *n = i;
  return p;
}

bool rt_req_is(rt_value_t req, const char *type) {
  rt_value_t ct = rt_req_header(req, "content-type");
  if (!rt_is_string(ct))
    return false;
  size_t n;
  const char *m = media(rt_string_data(ct), rt_string_length(ct), &n);
  return n == strlen(type) && strncasecmp(m, type, n) == 0;
}

bool rt_req_charset(rt_value_t req, char *buf, size_t cap) {
  rt_value_t ct = rt_req_header(req, "content-type");
  if (!rt_is_string(ct) || cap == 0)
    return false;
  const char *s = rt_string_data(ct);
  const char *p = strcasestr(s, "charset=");
  if (p == NULL)
    return false;
  p += 8;
  bool quoted = *p == '"';
  if (quoted)
    p++;
  size_t i = 0;
  while (p[i] != '\0' && p[i] != ';' && p[i] != ' ' && p[i] != '"' &&
         i + 1 < cap) {
    buf[i] = p[i];
    i++;
  }
  buf[i] = '\0';
  return i > 0;
}

/* q of an Accept element's parameters (1 when absent; 0..1). */
static double qvalue(const char *p, size_t len) {
  for (size_t i = 0; i + 2 < len; i++)
    if (p[i] == ';') {
      size_t j = i + 1;
      while (j < len && p[j] == ' ')
        j++;
      if (j + 1 < len && (p[j] == 'q' || p[j] == 'Q') && p[j + 1] == '=') {
        double q = strtod(p + j + 2, NULL);
        return q < 0 ? 0 : q > 1 ? 1 : q;
      }
    }
  return 1;
}

/* How specifically RANGE ("type/sub", "type/ *", "* / *") matches TYPE:
 * 3 exact, 2 subtype wildcard, 1 all, 0 no. */
static int specificity(const char *range, size_t n, const char *type) {
  const char *slash = memchr(range, '/', n);
  const char *tslash = strchr(type, '/');
  if (slash == NULL || tslash == NULL)
    return 0;
  size_t rl = (size_t)(slash - range), tl = (size_t)(tslash - type);
  const char *rsub = slash + 1;
  size_t rsl = n - rl - 1;
  if (rl == 1 && range[0] == '*' && rsl == 1 && rsub[0] == '*')
    return 1;
  if (rl != tl || strncasecmp(range, type, rl) != 0)
    return 0;
  if (rsl == 1 && rsub[0] == '*')
    return 2;
  return rsl == strlen(tslash + 1) && strncasecmp(rsub, tslash + 1, rsl) == 0
             ? 3
             : 0;
}

int rt_req_accepts(rt_value_t req, const char *const *types, size_t ntypes) {
  if (ntypes == 0)
    return -1;
  rt_value_t acc = rt_req_header(req, "accept");
  if (!rt_is_string(acc) || rt_string_length(acc) == 0)
    return 0;
  const char *s = rt_string_data(acc);
  size_t len = rt_string_length(acc);
  int best = -1;
  double best_q = 0;
  int best_spec = 0;
  size_t best_order = 0;
  for (size_t t = 0; t < ntypes; t++) {
    /* The q of TYPES[t]: that of the most specific range matching it. */
    double q = -1;
    int spec = 0;
    size_t order = 0, k = 0;
    for (size_t i = 0; i < len;) {
      size_t j = i;
      while (j < len && s[j] != ',')
        j++;
      size_t n;
      const char *m = media(s + i, j - i, &n);
      int sp = specificity(m, n, types[t]);
      if (sp > spec) {
        spec = sp;
        q = qvalue(s + i, j - i);
        order = k;
      }
      k++;
      i = j + 1;
    }
    if (spec == 0 || q <= 0)
      continue;
    if (best < 0 || q > best_q ||
        (q == best_q && (spec > best_spec ||
                         (spec == best_spec && order < best_order)))) {
      best = (int)t;
      best_q = q;
      best_spec = spec;
      best_order = order;
    }
  }
  return best;
}
