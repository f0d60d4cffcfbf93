/* router.c -- applications as express builds them: a list of layers
 * (middleware, error handlers, routes, mounted applications) tried in the
 * order they were added, with next() and next(err), and the final answer
 * when none is left (404, 405 with Allow, OPTIONS, the unhandled error).
 *
 * Matching, as express's defaults: case-insensitive, a trailing slash
 * ignored; a middleware or mount path matches itself and what lies under
 * it at a '/' boundary; a route pattern matches the whole path, segment by
 * segment (":name" one non-empty segment, a final "*" the rest).  Params
 * are percent-decoded; a malformed escape is a 400, as express's "Failed
 * to decode param".
 *
 * INV(dispatch): ex->stack[0 .. depth) are the applications being walked,
 * innermost last, each with the index of its next layer; a layer function
 * runs with the stack as it was when it matched, and rt_next resumes from
 * there.  Dispatch ends once: the final answer runs when the stack empties.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

enum { L_USE, L_ERROR, L_ROUTE, L_MOUNT };

/* Methods known to Allow, one bit each. */
static const char *const methods[] = {"GET",   "HEAD",    "POST",
                                      "PUT",   "DELETE",  "PATCH",
                                      "OPTIONS", "CONNECT", "TRACE"};
#define NMETHODS (sizeof methods / sizeof methods[0])
#define ALL_METHODS ((1u << NMETHODS) - 1)
/* What OPTIONS * lists: all but CONNECT and TRACE (the last two). */
#define SERVER_METHODS (ALL_METHODS & ~(3u << (NMETHODS - 2)))

static unsigned method_bit(const char *m) {
  for (size_t i = 0; i < NMETHODS; i++)
    if (strcmp(m, methods[i]) == 0)
      return 1u << i;
  return 0;
}

typedef struct seg_s {
  char *text; /* literal, or the param's name */
  size_t len;
  bool param;
} seg_t;

typedef struct layer_s {
  int kind;
  char *path; /* use/mount prefix without a trailing '/'; "" for all */
  size_t path_len;
  const char *method; /* static name, or NULL for every method */
  unsigned mbits;
  seg_t *segs;
  size_t nsegs;
  bool wildcard; /* the pattern ends in "*" */
  /* A route's first segment, for the test before route_match: any
   * (none, or a param), else its length and first byte in lower case. */
  bool seg0_any;
  unsigned char seg0_c;
  size_t seg0_len;
  rt_http_fn fn;
  rt_http_error_fn efn;
  void *data;
  rt_app_t *sub;
  void (*free_data)(void *); /* built-in middleware's own state */
  bool body_only; /* a body parser: not called without body framing */
} layer_t;

/* INV(keys): keys[i] is 0 unless layers[i] is a route whose first segment
 * is a literal, and then seg_key of that literal (never 0): a path whose
 * first segment has another key cannot match the route, so advance steps
 * over such layers reading this dense array alone (an application with
 * many routes walks 4 bytes per route, not a layer_t). */
struct rt_app_s {
  rt_runtime_t *rt;
  layer_t *layers;
  uint32_t *keys;
  size_t n, cap;
};

/* A segment's key: FNV-1a over its bytes with ASCII letters folded to
 * lower case (as strncasecmp compares in route_match), never 0. */
static uint32_t seg_key(const char *p, size_t n) {
  uint32_t k = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    k = (k ^ (c >= 'A' && c <= 'Z' ? c + 32u : c)) * 16777619u;
  }
  return k != 0 ? k : 1;
}

int rt_app_create(rt_runtime_t *rt, rt_app_t **out) {
  if (rt == NULL || out == NULL)
    return -EINVAL;
  rt_app_t *a = calloc(1, sizeof *a);
  if (a == NULL)
    return -ENOMEM;
  a->rt = rt;
  *out = a;
  return 0;
}

void rt_app_destroy(rt_app_t *a) {
  if (a == NULL)
    return;
  for (size_t i = 0; i < a->n; i++) {
    layer_t *l = &a->layers[i];
    free(l->path);
    for (size_t j = 0; j < l->nsegs; j++)
      free(l->segs[j].text);
    free(l->segs);
    if (l->free_data != NULL)
      l->free_data(l->data);
  }
  free(a->layers);
  free(a->keys);
  free(a);
}

static layer_t *add_layer(rt_app_t *a) {
  if (a->n == a->cap) {
    size_t ncap = a->cap ? a->cap * 2 : 8;
    layer_t *n = realloc(a->layers, ncap * sizeof *n);
    if (n == NULL)
      return NULL;
    a->layers = n;
    uint32_t *k = realloc(a->keys, ncap * sizeof *k);
    if (k == NULL)
      return NULL; /* the larger layers array is kept: cap stays */
    a->keys = k;
    a->cap = ncap;
  }
  layer_t *l = &a->layers[a->n];
  memset(l, 0, sizeof *l);
  a->keys[a->n] = 0;
  return l;
}

/* A prefix as stored: starts with '/', no trailing '/', "" for the root. */
static char *norm_prefix(const char *p, size_t *len) {
  if (p == NULL)
    p = "";
  if (*p != '\0' && *p != '/')
    return NULL;
  size_t n = strlen(p);
  while (n > 0 && p[n - 1] == '/')
    n--;
  char *s = strndup(p, n);
  *len = n;
  return s;
}

static int add_use(rt_app_t *a, int kind, const char *path, rt_http_fn fn,
                   rt_http_error_fn efn, rt_app_t *sub, void *data) {
  size_t len;
  char *p = norm_prefix(path, &len);
  if (p == NULL)
    return path != NULL ? -EINVAL : -ENOMEM;
  layer_t *l = add_layer(a);
  if (l == NULL) {
    free(p);
    return -ENOMEM;
  }
  l->kind = kind;
  l->path = p;
  l->path_len = len;
  l->fn = fn;
  l->efn = efn;
  l->sub = sub;
  l->data = data;
  a->n++;
  return 0;
}

int rt_app_use(rt_app_t *a, const char *path, rt_http_fn fn, void *data) {
  if (a == NULL || fn == NULL)
    return -EINVAL;
  return add_use(a, L_USE, path, fn, NULL, NULL, data);
}

int rt_app_use_owned(rt_app_t *a, const char *path, rt_http_fn fn,
                     void *data, void (*free_data)(void *)) {
  int err = rt_app_use(a, path, fn, data);
  if (err == 0)
    a->layers[a->n - 1].free_data = free_data;
  return err;
}

int x__app_use_body(rt_app_t *a, const char *path, rt_http_fn fn, void *data,
                    void (*free_data)(void *)) {
  int err = rt_app_use_owned(a, path, fn, data, free_data);
  if (err == 0)
    a->layers[a->n - 1].body_only = true;
  return err;
}

int rt_app_use_error(rt_app_t *a, const char *path, rt_http_error_fn fn,
                     void *data) {
  if (a == NULL || fn == NULL)
    return -EINVAL;
  return add_use(a, L_ERROR, path, NULL, fn, NULL, data);
}

int rt_app_mount(rt_app_t *a, const char *prefix, rt_app_t *sub) {
  if (a == NULL || sub == NULL || sub == a)
    return -EINVAL;
  return add_use(a, L_MOUNT, prefix, NULL, NULL, sub, NULL);
}

int rt_app_route(rt_app_t *a, const char *method, const char *pattern,
                 rt_http_fn fn, void *data) {
  if (a == NULL || fn == NULL || pattern == NULL || pattern[0] != '/')
    return -EINVAL;
  const char *mname = NULL;
  unsigned mbits = ALL_METHODS;
  if (method != NULL) {
    for (size_t i = 0; i < NMETHODS && mname == NULL; i++)
      if (strcasecmp(method, methods[i]) == 0)
        mname = methods[i];
    if (mname == NULL)
      return -EINVAL;
    mbits = method_bit(mname);
    if (mbits == method_bit("GET"))
      mbits |= method_bit("HEAD");
  }
  /* Segments. */
  size_t cap = 1;
  for (const char *p = pattern; *p; p++)
    cap += *p == '/';
  seg_t *segs = calloc(cap, sizeof *segs);
  if (segs == NULL)
    return -ENOMEM;
  size_t n = 0;
  bool wildcard = false;
  int err = 0;
  for (const char *p = pattern + 1; *p != '\0' && err == 0;) {
    const char *e = strchr(p, '/');
    size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
    if (wildcard) {
      err = -EINVAL; /* "*" must be last */
      break;
    }
    if (len == 1 && p[0] == '*') {
      wildcard = true;
    } else if (len > 0) {
      bool param = p[0] == ':';
      if (param && len == 1) {
        err = -EINVAL;
        break;
      }
      segs[n].param = param;
      segs[n].text = strndup(param ? p + 1 : p, param ? len - 1 : len);
      segs[n].len = param ? len - 1 : len;
      if (segs[n].text == NULL)
        err = -ENOMEM;
      n++;
    }
    p += len;
    if (*p == '/')
      p++;
  }
  layer_t *l = err == 0 ? add_layer(a) : NULL;
  if (l == NULL) {
    for (size_t i = 0; i < n; i++)
      free(segs[i].text);
    free(segs);
    return err != 0 ? err : -ENOMEM;
  }
  l->kind = L_ROUTE;
  l->method = mname;
  l->mbits = mbits;
  l->segs = segs;
  l->nsegs = n;
  l->wildcard = wildcard;
  l->seg0_any = n == 0 || segs[0].param;
  l->seg0_len = l->seg0_any ? 0 : segs[0].len;
  l->seg0_c = l->seg0_any ? 0 : (unsigned char)(segs[0].text[0] | 0x20);
  a->keys[a->n] = l->seg0_any ? 0 : seg_key(segs[0].text, segs[0].len);
  l->fn = fn;
  l->data = data;
  a->n++;
  return 0;
}

/* --- Matching ----------------------------------------------------------------- */

/* PREFIX (normalized) matches PATH at a '/' boundary. */
static bool prefix_match(const layer_t *l, const char *path, size_t len) {
  if (l->path_len == 0)
    return true;
  if (len < l->path_len || strncasecmp(path, l->path, l->path_len) != 0)
    return false;
  return len == l->path_len || path[l->path_len] == '/';
}

typedef struct span_s {
  size_t off, len;
} span_t;

/* Matches PATH against the route's segments; fills the param spans
 * (SPANS[i] for the i-th param, then the wildcard's). */
static bool route_match(const layer_t *l, const char *path, size_t len,
                        span_t *spans, size_t *nspans) {
  size_t i = 0, k = 0;
  if (len > 0 && path[0] == '/')
    i = 1;
  for (size_t s = 0; s < l->nsegs; s++) {
    if (i >= len)
      return false;
    size_t j = i;
    while (j < len && path[j] != '/')
      j++;
    size_t sl = j - i;
    const seg_t *g = &l->segs[s];
    if (g->param) {
      if (sl == 0)
        return false;
      spans[k++] = (span_t){i, sl};
    } else if (sl != g->len || strncasecmp(path + i, g->text, sl) != 0) {
      return false;
    }
    i = j < len ? j + 1 : len;
  }
  if (l->wildcard) {
    spans[k++] = (span_t){i, len > i ? len - i : 0};
    *nspans = k;
    return true;
  }
  *nspans = k;
  /* Only a trailing slash may be left. */
  return i >= len || (i + 1 == len && path[i] == '/');
}

/* decodeURIComponent into OUT (room for N): length, or -1 when malformed. */
static ssize_t pct_decode(const char *p, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '%') {
      out[o++] = p[i];
      continue;
    }
    if (i + 2 >= n)
      return -1;
    int a = rt__hexval(p[i + 1]), b = rt__hexval(p[i + 2]);
    if (a < 0 || b < 0)
      return -1;
    out[o++] = (char)(a * 16 + b);
    i += 2;
  }
  if (rt_utf8_valid_prefix(out, o) != o)
    return -1;
  return (ssize_t)o;
}

/* GC point.  The params Map of a matched route.  Returns 0, 400 or
 * -ENOMEM. */
static int set_params(x__exchange_t *ex, const layer_t *l, const char *path,
                      const span_t *spans, size_t nspans) {
  rt_runtime_t *rt = ex->srv->rt;
  gc_heap_t *h = ex->srv->h;
  size_t total = 0;
  for (size_t i = 0; i < nspans; i++)
    total += spans[i].len;
  char small[256]; /* most paths' params fit: no malloc per request */
  char *tmp = total < sizeof small ? small : malloc(total + 1);
  if (tmp == NULL)
    return -ENOMEM;
  /* Decode everything before the first GC point (PATH is raw). */
  ssize_t dl[64];
  size_t off = 0;
  int err = 0;
  for (size_t i = 0; i < nspans && err == 0; i++) {
    dl[i] = pct_decode(path + spans[i].off, spans[i].len, tmp + off);
    if (dl[i] < 0)
      err = 400;
    else
      off += (size_t)dl[i];
  }
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *m = rt_handle(h, err == 0 ? rt_map_new(rt, nspans) : RT_NONE);
  if (err == 0 && *m == RT_NONE)
    err = -ENOMEM;
  off = 0;
  size_t p = 0;
  for (size_t i = 0; i < nspans && err == 0; i++) {
    rt_value_t *k, *v;
    while (p < l->nsegs && !l->segs[p].param)
      p++;
    bool is_wild = l->wildcard && i == nspans - 1;
    k = rt_handle(h, is_wild ? rt_string_cstr(rt, "0")
                             : rt_string_new(rt, l->segs[p].text,
                                             l->segs[p].len));
    if (!is_wild)
      p++;
    v = rt_handle(h, rt_string_new(rt, tmp + off, (size_t)dl[i]));
    off += (size_t)dl[i];
    if (*k == RT_NONE || *v == RT_NONE || rt_map_set(rt, m, k, v) < 0)
      err = -ENOMEM;
  }
  if (err == 0)
    rt_req_set(&ex->req, RT_REQ_PARAMS, *m);
  gc_scope_close(h, &sc);
  if (tmp != small)
    free(tmp);
  return err;
}

/* --- Dispatch ------------------------------------------------------------------ */

static void final_answer(x__exchange_t *ex);

static void call_layer(x__exchange_t *ex, const layer_t *l, size_t base) {
  gc_heap_t *h = ex->srv->h;
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *req = rt_handle(h, ex->req);
  ex->layer_base = base; /* for rt_req_subpath */
  if (l->kind == L_ERROR)
    l->efn(req, ex->err, l->data);
  else
    l->fn(req, l->data);
  gc_scope_close(h, &sc);
}

/* Whether a route's first literal segment can be that of SUB, whose first
 * segment is FIRST_LEN long: a cheap test before route_match (the case of
 * letters aside, as route_match compares). */
static bool first_segment_fits(const layer_t *l, const char *sub,
                               size_t first_len) {
  /* A literal segment is never empty: equal lengths mean sub[1] is in it. */
  return l->seg0_any || (l->seg0_len == first_len &&
                         ((unsigned char)sub[1] | 0x20) == l->seg0_c);
}

/* What of the path (PLEN bytes at PATH) a frame at BASE matches: "/" for
 * nothing left. */
static const char *frame_sub(const char *path, size_t plen, size_t base,
                             size_t *slen) {
  *slen = plen - base;
  if (*slen == 0) {
    *slen = 1;
    return "/";
  }
  return path + base;
}

/* The length of SUB's first segment (after its leading '/'). */
static size_t first_segment(const char *sub, size_t slen) {
  size_t j = sub[0] == '/' ? 1 : 0;
  while (j < slen && sub[j] != '/')
    j++;
  return sub[0] == '/' ? j - 1 : j;
}

/* Runs the next layer that matches.  INV(quiet): between two layers that
 * are called nothing runs but matching (no callback, no allocation on the
 * heap but set_params', after which the path is read again), so whether
 * the exchange has ended is looked at once, on entry, the path once, and
 * its first segment once per frame, at its first route. */
static void advance(x__exchange_t *ex) {
  if (ex->ended || ex->conn->closing || ex->finishing)
    return;
  size_t plen;
  const char *path = x__req_path(ex, &plen);
  while (ex->depth > 0) {
    x__frame_t *f = &ex->stack[ex->depth - 1];
    const layer_t *layers = f->app->layers;
    size_t n = f->app->n;
    size_t slen;
    const char *sub = frame_sub(path, plen, f->base, &slen);
    const uint32_t *keys = f->app->keys;
    size_t first_len = SIZE_MAX; /* measured at the first route */
    uint32_t want = 0; /* the first segment's key, once measured */
    bool pushed = false;
    while (f->idx < n && !pushed) {
      if (want != 0) { /* INV(keys): other keys cannot match */
        size_t i = f->idx;
        while (i < n && keys[i] != 0 && keys[i] != want)
          i++;
        f->idx = i;
        if (i == n)
          break;
      }
      const layer_t *l = &layers[f->idx++];
      switch (l->kind) {
      case L_USE:
        if (ex->err != 0 || (l->body_only && !x__has_body_framing(ex)) ||
            !prefix_match(l, sub, slen))
          continue;
        call_layer(ex, l, f->base + l->path_len);
        return;
      case L_ERROR:
        if (ex->err == 0 || !prefix_match(l, sub, slen))
          continue;
        call_layer(ex, l, f->base + l->path_len);
        return;
      case L_MOUNT:
        if (!prefix_match(l, sub, slen))
          continue;
        if (ex->depth == X__MOUNT_DEPTH) {
          ex->err = -ELOOP;
          continue;
        }
        ex->stack[ex->depth++] =
            (x__frame_t){l->sub, 0, f->base + l->path_len};
        pushed = true; /* the sub-app's frame is matched next */
        continue;
      case L_ROUTE: {
        if (ex->err != 0)
          continue;
        if (first_len == SIZE_MAX) {
          first_len = first_segment(sub, slen);
          if (sub[0] == '/')
            want = seg_key(sub + 1, first_len);
        }
        if (sub[0] == '/' && !first_segment_fits(l, sub, first_len))
          continue;
        span_t spans[64];
        size_t ns = 0;
        if (l->nsegs + 1 > 64 || !route_match(l, sub, slen, spans, &ns))
          continue;
        unsigned mb = method_bit(ex->method);
        if (l->method != NULL && (l->mbits & mb) == 0) {
          ex->allow |= l->mbits;
          continue;
        }
        size_t base = f->base;
        if (ns > 0) { /* spans are offsets into SUB */
          int err = set_params(ex, l, sub, spans, ns);
          if (err != 0) {
            /* set_params may have run a GC point: the path may have
             * moved. */
            path = x__req_path(ex, &plen);
            sub = frame_sub(path, plen, f->base, &slen);
            ex->err = err;
            free(ex->err_msg);
            ex->err_msg = strdup(err == 400
                                     ? "failed to decode a parameter: a "
                                       "malformed %-escape in the path"
                                     : rt_strerror(err));
            continue;
          }
        }
        call_layer(ex, l, base);
        return;
      }
      }
    }
    if (!pushed)
      ex->depth--; /* this frame is done */
  }
  final_answer(ex);
}

void x__dispatch(x__exchange_t *ex, rt_app_t *app) {
  ex->stack[0] = (x__frame_t){app, 0, 0};
  ex->depth = 1;
  ex->dispatching = true;
  advance(ex);
}

int rt_next(rt_value_t *req, int err) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return -EPIPE;
  if (ex->ended || !ex->dispatching)
    return 0;
  ex->err = err;
  if (err == 0) {
    free(ex->err_msg);
    ex->err_msg = NULL;
  }
  advance(ex);
  return 0;
}

int rt_next_error(rt_value_t *req, int err, const char *message) {
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return -EPIPE;
  if (err == 0)
    return -EINVAL;
  free(ex->err_msg);
  ex->err_msg = message != NULL ? strdup(message) : NULL;
  return rt_next(req, err);
}

const char *rt_req_error_message(rt_value_t req) {
  x__exchange_t *ex = x__exchange_of(&req);
  return ex != NULL ? ex->err_msg : NULL;
}

const char *rt_req_subpath(rt_value_t req, size_t *len) {
  x__exchange_t *ex = x__exchange_of(&req);
  size_t plen;
  const char *p = ex != NULL ? x__req_path(ex, &plen) : "";
  if (ex == NULL)
    plen = 0;
  size_t b = ex != NULL ? ex->layer_base : 0;
  if (b >= plen) {
    if (len != NULL)
      *len = 1;
    return "/";
  }
  if (len != NULL)
    *len = plen - b;
  return p + b;
}

/* --- The end of the stack ---------------------------------------------------- */

/* The methods of MASK, as an Allow value, into OUT (128 bytes). */
static void allow_list(unsigned mask, char *out) {
  out[0] = '\0';
  for (size_t i = 0; i < NMETHODS; i++)
    if (mask & (1u << i)) {
      if (out[0] != '\0')
        strcat(out, ", ");
      strcat(out, methods[i]);
    }
}

/* Is the request's target the asterisk-form ("*")? */
static bool asterisk(x__exchange_t *ex) {
  size_t n;
  const char *p = x__req_path(ex, &n);
  return p != NULL && n == 1 && p[0] == '*';
}

static void final_answer(x__exchange_t *ex) {
  rt_server_t *s = ex->srv;
  ex->dispatching = false;
  if (ex->head_sent)
    return; /* a streamed response: its producer ends it */
  gc_heap_t *h = s->h;
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *req = rt_handle(h, ex->req);
  if (ex->err != 0) {
    int st = ex->err >= 400 && ex->err <= 599 ? ex->err : 500;
    if (st >= 500)
      x__log(s, "tenure-server: %d: %s %s: %s", st, ex->method,
             x__req_path(ex, NULL),
             ex->err_msg != NULL ? ex->err_msg
             : ex->err < 0       ? rt_strerror(ex->err)
                                 : x__status_text(st));
    x__respond_error(ex, st, ex->err_msg, false);
  } else if (ex->allow != 0) {
    char allow[128];
    allow_list(ex->allow, allow);
    if (strcmp(ex->method, "OPTIONS") == 0) {
      if (strstr(allow, "OPTIONS") == NULL)
        strcat(allow, ", OPTIONS");
      rt_res_set_header(req, "Allow", allow);
      rt_res_send(req, allow, strlen(allow));
    } else {
      rt_res_status(req, 405);
      rt_res_set_header(req, "Allow", allow);
      rt_res_send(req, "Method Not Allowed\n", 19);
    }
  } else if (strcmp(ex->method, "OPTIONS") == 0 && asterisk(ex)) {
    /* OPTIONS * asks about the server in general (RFC 9110 9.3.7): the
     * methods its router routes, unless a handler answered it. */
    char all[128];
    allow_list(SERVER_METHODS, all);
    rt_res_set_header(req, "Allow", all);
    rt_res_status(req, 204);
    rt_res_end(req);
  } else {
    rt_res_status(req, 404);
    rt_res_send(req, "Not Found\n", 10);
  }
  gc_scope_close(h, &sc);
}
