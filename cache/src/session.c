/* session.c -- the session middleware (see cache_session.h for what it
 * promises).
 *
 * Per request, a sess_t (off the heap) holds the id, what was loaded (the
 * data's JSON text: the snapshot a save diffs against) and the request's
 * Request value as a persistent handle while store calls are in flight.
 * The data Map itself lives in the request's locals under "session", so it
 * is a runtime value for as long as the request runs.
 *
 * INV(refs): a sess_t is freed when its count drops to 0: one reference
 * for the request (dropped by the on_finish hook, which runs however the
 * request ends) and one per store call in flight, so a store answering
 * after the connection went away finds it still there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <tenure/cache_session.h>

#define ID_BYTES 16
#define ID_CHARS 22 /* base64url of 16 bytes, no padding */
#define LOCALS_KEY "session"
#define STATE_KEY "\x01session-state"

typedef struct mw_s {
  cache_store_t *store;
  cache_session_opts_t o;
  char *name, *prefix;
  char **secrets;
  size_t nsecrets;
} mw_t;

typedef struct sess_s {
  mw_t *mw;
  gc_heap_t *h;
  int refs;
  gc_persistent_t *req; /* while store calls are in flight */
  char id[ID_CHARS + 1];
  char old_id[ID_CHARS + 1]; /* regenerate/destroy: to delete */
  bool existed, regenerated, destroyed, loading;
  int64_t created; /* ms since the epoch */
  int64_t renewed; /* when the cookie and the TTL were last renewed */
  char *snapshot;  /* the data's JSON as loaded ("{}" when new) */
  char *pending;   /* the record being saved (JSON), during a save */
} sess_t;

static void unref(sess_t *s) {
  if (--s->refs > 0)
    return;
  if (s->req != NULL)
    gc_persistent_free(s->h, s->req);
  free(s->snapshot);
  free(s->pending);
  free(s);
}

static gc_heap_t *heap_of(rt_value_t req) {
  return rt_heap(rt_req_runtime(req));
}

static void log_line(mw_t *m, const char *what, cache_store_t *st) {
  if (m->o.log != NULL) {
    fprintf(m->o.log, "tenure-server: 503: session store: %s: %s\n", what,
            cache_store_error(st)[0] ? cache_store_error(st) : "failed");
    fflush(m->o.log);
  }
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int new_id(char out[ID_CHARS + 1]) {
  static const char a[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint8_t b[ID_BYTES + 2] = {0};
  if (getrandom(b, ID_BYTES, 0) != ID_BYTES)
    return -EIO;
  size_t o = 0;
  for (size_t i = 0; i < ID_BYTES; i += 3) {
    uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
    for (int k = 3; k >= 0 && o < ID_CHARS; k--)
      out[o++] = a[(v >> (6 * k)) & 63];
  }
  out[ID_CHARS] = '\0';
  return 0;
}

static size_t key_of(const mw_t *m, const char *id, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "%s%s", m->prefix, id);
  return n < 0 ? 0 : (size_t)n;
}

/* The request's sess_t (from its locals), or NULL. */
static sess_t *state_of(rt_value_t *req) {
  rt_value_t locals = rt_req_get(req, RT_REQ_LOCALS);
  if (!rt_is_map(locals))
    return NULL;
  rt_value_t v = rt_map_get_cstr(locals, STATE_KEY);
  return rt_is_int(v) ? (sess_t *)(uintptr_t)rt_int_value(v) : NULL;
}

/* GC point.  Sets locals[KEY] = *V. */
static int set_local(rt_value_t *req, const char *key, rt_value_t v) {
  rt_runtime_t *rt = rt_req_runtime(*req);
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *vh = rt_handle(h, v);
  rt_value_t *locals = rt_handle(h, rt_req_get(req, RT_REQ_LOCALS));
  rt_value_t *k = rt_handle(h, rt_string_cstr(rt, key));
  int err = *locals == RT_NONE || *k == RT_NONE ? -ENOMEM
                                                : rt_map_set(rt, locals, k, vh);
  gc_scope_close(h, &sc);
  return err;
}

/* The data's JSON text into OUT (malloc'd), "{}" when there is none. */
static char *data_json(rt_value_t *req) {
  rt_value_t locals = rt_req_get(req, RT_REQ_LOCALS);
  rt_value_t d =
      rt_is_map(locals) ? rt_map_get_cstr(locals, LOCALS_KEY) : RT_NONE;
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  if (d == RT_NONE || rt_json_stringify(rt_req_runtime(*req), d, NULL, &b) < 0)
    rt_strbuf_append_cstr(&b, "{}");
  rt_strbuf_append(&b, "", 1); /* NUL */
  if (b.error != 0) {
    rt_strbuf_free(&b);
    return NULL;
  }
  return b.data;
}

/* --- The cookie ------------------------------------------------------------
 */

static bool request_secure(const mw_t *m, rt_value_t req) {
  if (m->o.secure)
    return true;
  if (!m->o.trust_proxy)
    return false;
  rt_value_t p = rt_req_header(req, "x-forwarded-proto");
  return rt_is_string(p) && strncasecmp(rt_string_data(p), "https", 5) == 0;
}

static void set_cookie(sess_t *s, rt_value_t *req, bool clear) {
  mw_t *m = s->mw;
  char signed_id[160];
  int n = clear ? 0
                : rt_cookie_sign(signed_id, sizeof signed_id, s->id, ID_CHARS,
                                 m->secrets[0]);
  if (n < 0)
    return;
  rt_cookie_opts_t co;
  rt_cookie_opts_init(&co);
  co.path = "/";
  co.http_only = true;
  co.secure = request_secure(m, *req);
  co.same_site = m->o.same_site;
  co.max_age = clear ? 0 : (int64_t)(m->o.max_age_ms / 1000);
  char line[512];
  if (rt_cookie_serialize(line, sizeof line, m->name, clear ? "" : signed_id,
                          (size_t)n, &co) > 0)
    rt_res_append_header(req, "Set-Cookie", line);
}

/* --- Loading ----------------------------------------------------------------
 */

static void on_loaded(cache_store_t *st, int err, rt_value_t *rec, void *data) {
  sess_t *s = data;
  gc_heap_t *h = rt_heap(rt_loop_runtime(st->loop));
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *req = rt_handle(h, (rt_value_t)gc_persistent_get(s->req));
  /* Let go of the persistent first: rt_next runs the handler now, and its
   * on_head may take a new one for a save. */
  gc_persistent_free(s->h, s->req);
  s->req = NULL;
  s->loading = false;
  if (err < 0) {
    log_line(s->mw, "loading a session", st);
    rt_next_error(req, 503, "session store unavailable");
  } else {
    rt_value_t d = rec != NULL && rt_is_map(*rec)
                       ? rt_map_get_cstr(*rec, "data")
                       : RT_NONE;
    rt_value_t c = rec != NULL && rt_is_map(*rec)
                       ? rt_map_get_cstr(*rec, "created")
                       : RT_NONE;
    int64_t created = rt_is_number(c) ? (int64_t)rt_number_value(c) : 0;
    rt_value_t rn = rec != NULL && rt_is_map(*rec)
                        ? rt_map_get_cstr(*rec, "renewed")
                        : RT_NONE;
    s->renewed = rt_is_number(rn) ? (int64_t)rt_number_value(rn) : created;
    bool alive =
        rt_is_map(d) && (s->mw->o.absolute_ms == 0 ||
                         now_ms() - created < (int64_t)s->mw->o.absolute_ms);
    if (alive) {
      s->existed = true;
      s->created = created;
      set_local(req, LOCALS_KEY, d);
      free(s->snapshot);
      s->snapshot = data_json(req);
    } else if (rec != NULL) {
      /* Past its absolute lifetime: a new session, the old id deleted. */
      memcpy(s->old_id, s->id, sizeof s->id);
      s->regenerated = true;
      new_id(s->id);
    }
    rt_next(req, 0);
  }
  gc_scope_close(h, &sc);
  unref(s);
}

/* --- Saving (before the head) ----------------------------------------------
 */

static void after_save(cache_store_t *st, int err, void *data) {
  sess_t *s = data;
  gc_heap_t *h = rt_heap(rt_loop_runtime(st->loop));
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *req = rt_handle(h, (rt_value_t)gc_persistent_get(s->req));
  if (err < 0) {
    log_line(s->mw, "saving a session", st);
    rt_res_release(req, 503, "session store unavailable");
  } else {
    rt_res_release(req, 0, NULL);
  }
  gc_scope_close(h, &sc);
  gc_persistent_free(s->h, s->req);
  s->req = NULL;
  unref(s);
}

/* GC point.  The record {"data": DATA, "created": ms} of *DATA. */
static rt_value_t record(rt_runtime_t *rt, const rt_value_t *data,
                         int64_t created, int64_t renewed) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *r = rt_handle(h, rt_map_new(rt, 3));
  rt_value_t *k = rt_handle(h, rt_string_cstr(rt, "data"));
  rt_map_set(rt, r, k, data);
  *k = rt_string_cstr(rt, "created");
  rt_value_t *v = rt_handle(h, rt_number(rt, (double)created));
  rt_map_set(rt, r, k, v);
  *k = rt_string_cstr(rt, "renewed");
  *v = rt_number(rt, (double)renewed);
  rt_map_set(rt, r, k, v);
  rt_value_t out = *r;
  gc_scope_close(h, &sc);
  return out;
}

/* GC point.  Applies to *BASE (a Map) the keys the request changed: those
 * of *NOW whose JSON differs from *WAS's, and those of *WAS gone from
 * *NOW. */
static void merge(rt_runtime_t *rt, rt_value_t *base, rt_value_t *now,
                  rt_value_t *was) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *k = rt_handle(h, RT_NONE), *v = rt_handle(h, RT_NONE);
  size_t cur = 0;
  while (rt_map_next(*now, &cur, k, v)) {
    rt_value_t old = rt_map_get(*was, *k);
    bool same = false;
    if (old != RT_NONE) {
      rt_strbuf_t a, b;
      rt_strbuf_init(&a);
      rt_strbuf_init(&b);
      rt_json_stringify(rt, *v, NULL, &a);
      rt_json_stringify(rt, old, NULL, &b);
      same = a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
      rt_strbuf_free(&a);
      rt_strbuf_free(&b);
    }
    if (!same)
      rt_map_set(rt, base, k, v);
  }
  cur = 0;
  while (rt_map_next(*was, &cur, k, NULL))
    if (!rt_map_has(*now, *k))
      rt_map_delete(rt, *base, *k);
  gc_scope_close(h, &sc);
}

/* The store's current record came: merge this request's changes into it
 * and save. */
static void on_current(cache_store_t *st, int err, rt_value_t *rec,
                       void *data) {
  sess_t *s = data;
  mw_t *m = s->mw;
  rt_runtime_t *rt = rt_loop_runtime(st->loop);
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *req = rt_handle(h, (rt_value_t)gc_persistent_get(s->req));
  if (err < 0) {
    log_line(m, "reading a session to save it", st);
    rt_res_release(req, 503, "session store unavailable");
    gc_scope_close(h, &sc);
    gc_persistent_free(s->h, s->req);
    s->req = NULL;
    unref(s);
    return;
  }
  rt_value_t *base = rt_handle(h, RT_NONE);
  if (rec != NULL && rt_is_map(*rec))
    *base = rt_map_get_cstr(*rec, "data");
  rt_value_t *now = rt_handle(h, RT_NONE);
  rt_value_t locals = rt_req_get(req, RT_REQ_LOCALS);
  if (rt_is_map(locals))
    *now = rt_map_get_cstr(locals, LOCALS_KEY);
  if (!rt_is_map(*now))
    *now = rt_map_new(rt, 0);
  if (rt_is_map(*base)) {
    rt_value_t *was = rt_handle(h, RT_NONE);
    if (rt_json_parse(rt, s->snapshot, strlen(s->snapshot), NULL, was, NULL) <
            0 ||
        !rt_is_map(*was))
      *was = rt_map_new(rt, 0);
    merge(rt, base, now, was);
  } else {
    *base = *now; /* nothing stored (new, regenerated, or expired there) */
  }
  rt_value_t *r = rt_handle(h, record(rt, base, s->created, s->renewed));
  char key[128];
  size_t kl = key_of(m, s->id, key, sizeof key);
  cache_set(m->store, key, kl, r, m->o.max_age_ms, after_save, s);
  gc_scope_close(h, &sc); /* s keeps its reference for after_save */
}

static void after_aside(cache_store_t *st, int err, void *data) {
  (void)st;
  (void)err; /* a touch or the old id's delete: best effort */
  unref(data);
}

/* Just before the head: decide what the response does with the session. */
static void on_head(rt_value_t *req, void *data) {
  sess_t *s = data;
  mw_t *m = s->mw;
  char key[128];
  if (s->loading)
    return; /* answered (a timeout) before the session was even loaded */
  if (s->regenerated || s->destroyed) {
    if (s->old_id[0] != '\0') {
      size_t kl = key_of(m, s->old_id, key, sizeof key);
      s->refs++;
      cache_del(m->store, key, kl, after_aside, s);
    }
  }
  if (s->destroyed) {
    set_cookie(s, req, true);
    return;
  }
  char *now = data_json(req);
  if (now == NULL)
    return;
  bool empty = strcmp(now, "{}") == 0;
  bool changed = strcmp(now, s->snapshot) != 0;
  int64_t t = now_ms();
  /* Renewal in halves (renew_after_ms > 0): an unchanged session is
   * renewed, cookie and TTL together, through a save that records when. */
  bool renew = s->existed && m->o.renew_after_ms > 0 &&
               t - s->renewed >= (int64_t)m->o.renew_after_ms;
  if ((changed || s->regenerated || renew) && !(empty && !s->existed)) {
    /* Save before the head goes out: hold the response. */
    if (!s->existed || s->regenerated)
      s->created = t;
    s->renewed = t;
    set_cookie(s, req, false);
    if (rt_res_hold(req) == 0) {
      s->refs++;
      s->req = gc_persistent_new(heap_of(*req), (void *)*req);
      size_t kl = key_of(m, s->id, key, sizeof key);
      if (s->existed && !s->regenerated)
        cache_get(m->store, key, kl, on_current, s); /* merge */
      else
        on_current(m->store, 0, NULL, s); /* nothing to merge with */
    }
  } else if (s->existed && m->o.renew_after_ms == 0) {
    /* Rolling on every request: renew the cookie and the store's TTL. */
    set_cookie(s, req, false);
    size_t kl = key_of(m, s->id, key, sizeof key);
    s->refs++;
    cache_touch(m->store, key, kl, m->o.max_age_ms, after_aside, s);
  }
  free(now);
}

static void on_finish(rt_value_t *req, void *data) {
  (void)req;
  unref(data);
}

/* --- The middleware
 * ------------------------------------------------------------ */

static void session_mw(rt_value_t *req, void *data) {
  mw_t *m = data;
  sess_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    rt_next(req, -ENOMEM);
    return;
  }
  s->mw = m;
  s->h = heap_of(*req);
  s->refs = 1;
  s->snapshot = strdup("{}");
  if (s->snapshot == NULL || rt_res_on_finish(req, on_finish, s) < 0) {
    free(s->snapshot);
    free(s);
    rt_next(req, -ENOMEM);
    return;
  }
  rt_res_on_head(req, on_head, s);
  set_local(req, STATE_KEY, rt_int((int64_t)(uintptr_t)s));
  /* The cookie: a signed id, else a new id (used only if data is stored). */
  rt_value_t cookies = rt_req_get(req, RT_REQ_COOKIES);
  rt_value_t c =
      rt_is_map(cookies) ? rt_map_get_cstr(cookies, m->name) : RT_NONE;
  int idl = -1;
  if (rt_is_string(c)) {
    char buf[256];
    size_t n = rt_string_length(c);
    if (n < sizeof buf) {
      memcpy(buf, rt_string_data(c), n);
      idl = rt_cookie_unsign(buf, n, (const char *const *)m->secrets,
                             m->nsecrets);
      if (idl == ID_CHARS) {
        memcpy(s->id, buf, ID_CHARS);
        s->id[ID_CHARS] = '\0';
      } else {
        idl = -1;
      }
    }
  }
  if (idl < 0) {
    if (new_id(s->id) < 0) {
      rt_next(req, -EIO);
      return;
    }
    rt_next(req, 0);
    return;
  }
  char key[128];
  size_t kl = key_of(m, s->id, key, sizeof key);
  s->refs++;
  s->loading = true;
  s->req = gc_persistent_new(heap_of(*req), (void *)*req);
  cache_get(m->store, key, kl, on_loaded, s);
}

void cache_session_opts_init(cache_session_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->name = "sid";
  o->max_age_ms = 20 * 60 * 1000;
  o->absolute_ms = 24 * 3600 * 1000;
  o->renew_after_ms = CACHE_SESSION_RENEW_HALF;
  o->same_site = RT_SAME_SITE_LAX;
  o->prefix = "sess:";
  o->log = stderr;
}

static void mw_free(void *data) {
  mw_t *m = data;
  for (size_t i = 0; i < m->nsecrets; i++)
    free(m->secrets[i]);
  free(m->secrets);
  free(m->name);
  free(m->prefix);
  free(m);
}

int cache_session(rt_app_t *app, cache_store_t *store,
                  const cache_session_opts_t *o) {
  if (app == NULL || store == NULL || o == NULL || o->nsecrets == 0 ||
      o->secrets == NULL || o->name == NULL ||
      (o->renew_after_ms != CACHE_SESSION_RENEW_HALF &&
       o->renew_after_ms > o->max_age_ms))
    return -EINVAL;
  mw_t *m = calloc(1, sizeof *m);
  if (m == NULL)
    return -ENOMEM;
  m->store = store;
  m->o = *o;
  if (m->o.renew_after_ms == CACHE_SESSION_RENEW_HALF)
    m->o.renew_after_ms = m->o.max_age_ms / 2;
  m->name = strdup(o->name);
  m->prefix = strdup(o->prefix != NULL ? o->prefix : "sess:");
  m->secrets = calloc(o->nsecrets, sizeof *m->secrets);
  bool ok = m->name != NULL && m->prefix != NULL && m->secrets != NULL;
  for (size_t i = 0; ok && i < o->nsecrets; i++) {
    m->secrets[i] = strdup(o->secrets[i]);
    ok = m->secrets[i] != NULL;
    m->nsecrets = i + 1;
  }
  int err = ok ? rt_app_use_owned(app, NULL, session_mw, m, mw_free) : -ENOMEM;
  if (err < 0)
    mw_free(m);
  return err;
}

/* --- For handlers
 * ----------------------------------------------------------------- */

rt_value_t cache_session_data(rt_value_t *req) {
  if (state_of(req) == NULL)
    return RT_NONE;
  rt_value_t locals = rt_req_get(req, RT_REQ_LOCALS);
  rt_value_t d = rt_map_get_cstr(locals, LOCALS_KEY);
  if (rt_is_map(d))
    return d;
  d = rt_map_new(rt_req_runtime(*req), 4);
  if (d == RT_NONE || set_local(req, LOCALS_KEY, d) < 0)
    return RT_NONE;
  return rt_map_get_cstr(rt_req_get(req, RT_REQ_LOCALS), LOCALS_KEY);
}

bool cache_session_exists(rt_value_t req) {
  rt_value_t *h = rt_handle(heap_of(req), req);
  sess_t *s = state_of(h);
  return s != NULL && s->existed && !s->destroyed;
}

int cache_session_regenerate(rt_value_t *req, bool keep) {
  sess_t *s = state_of(req);
  if (s == NULL)
    return -EINVAL;
  if (s->existed && s->old_id[0] == '\0')
    memcpy(s->old_id, s->id, sizeof s->id);
  if (new_id(s->id) < 0)
    return -EIO;
  s->regenerated = true;
  s->destroyed = false;
  if (!keep)
    return set_local(req, LOCALS_KEY, rt_map_new(rt_req_runtime(*req), 4));
  return 0;
}

int cache_session_destroy(rt_value_t *req) {
  sess_t *s = state_of(req);
  if (s == NULL)
    return -EINVAL;
  if (s->existed && s->old_id[0] == '\0')
    memcpy(s->old_id, s->id, sizeof s->id);
  s->destroyed = true;
  return set_local(req, LOCALS_KEY, rt_map_new(rt_req_runtime(*req), 0));
}
