/* redis_op.c -- a Redis store's operations above the connection: their
 * commands (get is GET, set is SET key json [PX ttl], del is DEL, touch is
 * PEXPIRE, or PERSIST then EXISTS for no expiry), their answers from a
 * reply (a value parsed from the reply's copied bytes, the counters), the
 * answers that must come from the next tick, the entries/bytes sample
 * (DBSIZE and INFO memory), and the URL pieces redis:// and
 * redis-cluster:// share.  See redis_op.h for INV(answer) and
 * INV(sample). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_op.h"

/* --- The store header ----------------------------------------------------- */

void cache__rstore_init(cache__rstore_t *s, const cache_store_type_t *type,
                        rt_loop_t *loop, const char *name) {
  s->base.type = type;
  s->base.loop = loop;
  s->rt = rt_loop_runtime(loop);
  s->h = rt_heap(s->rt);
  s->uv = rt_loop_uv(loop);
  s->name = name;
}

void cache__rstore_unref(cache__rstore_t *s) {
  if (--s->refs == 0 && s->closing)
    s->destroy(s);
}

void cache__rstore_error(cache__rstore_t *s, const char *fmt, ...) {
  char *e = s->base.error;
  size_t n = sizeof s->base.error;
  int w = snprintf(e, n, "%s: ", s->name);
  if (w < 0 || (size_t)w >= n)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e + w, n - (size_t)w, fmt, ap);
  va_end(ap);
}

/* --- Answers -------------------------------------------------------------- */

static void call_user(cache__rstore_t *s, cache_get_fn get, cache_done_fn done,
                      void *data, int err) {
  if (get != NULL)
    get(&s->base, err, NULL, data);
  else if (done != NULL)
    done(&s->base, err, data);
}

static void free_op(cache__rop_t *op) {
  cache__rcmd_free(&op->cmd);
  free(op);
}

static int reply_error(cache__rstore_t *s, const redisReply *rep) {
  cache__rstore_error(s, "%.*s", (int)rep->len, rep->str);
  if (strncmp(rep->str, "NOAUTH", 6) == 0 ||
      strncmp(rep->str, "WRONGPASS", 9) == 0)
    return -EACCES;
  return -EIO;
}

/* A GET's answer: the value parsed from a copy of the reply's bytes, in a
 * scope of the store's for the callback's duration. */
static void answer_get(cache__rop_t *op, int err, const redisReply *rep) {
  cache__rstore_t *s = op->s;
  if (err == 0 && op->kind == CACHE__ROP_GET_TTL) {
    /* {value or nil, PTTL} */
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_INTEGER) {
      *op->pttl = rep->element[1]->integer;
      rep = rep->element[0];
    } else {
      rep = NULL;
    }
    if (rep == NULL) {
      cache__rstore_error(s, "GET: an unexpected script reply");
      err = -EIO;
      s->st.errors++;
    }
  }
  gc_scope_t sc;
  gc_scope_open(s->h, &sc);
  rt_value_t *v = NULL;
  if (err == 0 && rep->type == REDIS_REPLY_STRING) {
    /* Copy the text off hiredis's buffer first. */
    char *text = malloc(rep->len + 1);
    if (text == NULL) {
      err = -ENOMEM;
    } else {
      memcpy(text, rep->str, rep->len);
      text[rep->len] = '\0';
      v = rt_handle(s->h, RT_NONE);
      rt_json_error_t je;
      err = rt_json_parse(s->rt, text, rep->len, NULL, v, &je);
      free(text);
      if (err < 0) {
        cache__rstore_error(s, "a stored value does not parse");
        s->st.errors++;
        v = NULL;
      } else {
        s->st.hits++;
      }
    }
  } else if (err == 0 && rep->type == REDIS_REPLY_NIL) {
    s->st.misses++;
  } else if (err == 0) {
    cache__rstore_error(s, "GET: an unexpected reply (type %d)", rep->type);
    err = -EIO;
    s->st.errors++;
  }
  op->get(&s->base, err, v, op->data);
  gc_scope_close(s->h, &sc);
}

void cache__rop_answer(cache__rop_t *op, int err, const redisReply *rep) {
  cache__rstore_t *s = op->s;
  s->refs++; /* the callback may close the store: it stays until we return */
  if (err == 0 && rep->type == REDIS_REPLY_ERROR)
    err = reply_error(s, rep);
  if (err < 0)
    s->st.errors++;
  cache__latency_record(&s->base, op->t0);
  if (op->kind == CACHE__ROP_GET || op->kind == CACHE__ROP_GET_TTL) {
    answer_get(op, err, rep);
  } else {
    if (err == 0 && op->kind == CACHE__ROP_SET)
      s->st.sets++;
    else if (err == 0 && op->kind == CACHE__ROP_DEL &&
             rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
      s->st.deletes++;
    else if (err == 0 &&
             (op->kind == CACHE__ROP_TOUCH || op->kind == CACHE__ROP_PERSIST))
      err = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 ? 0 : -ENOENT;
    if (op->done != NULL)
      op->done(&s->base, err, op->data);
  }
  free_op(op);
  cache__rstore_unref(s);
}

/* An answer queued for the next tick: an operation's, or one for a call
 * that made none (OP NULL). */
typedef struct later_s {
  cache__rstore_t *s;
  cache__rop_t *op;
  int err;
  cache_get_fn get;
  cache_done_fn done;
  void *data;
  uint64_t t0;
} later_t;

static void run_later(rt_loop_t *loop, void *data, rt_value_t *args,
                      size_t nargs) {
  later_t *l = data;
  cache__rstore_t *s = l->s;
  (void)loop;
  (void)args;
  (void)nargs;
  cache__latency_record(&s->base, l->t0);
  call_user(s, l->get, l->done, l->data, l->err);
  if (l->op != NULL)
    free_op(l->op);
  free(l);
  cache__rstore_unref(s);
}

static void later(cache__rstore_t *s, cache__rop_t *op, int err,
                  cache_get_fn get, cache_done_fn done, void *data,
                  uint64_t t0) {
  s->st.errors++;
  later_t *l = malloc(sizeof *l);
  if (l != NULL) {
    *l = (later_t){s, op, err, get, done, data, t0};
    if (rt_next_tick(s->base.loop, run_later, l, NULL, 0) == 0) {
      s->refs++;
      return;
    }
    free(l);
  }
  /* Out of memory for the answer itself: answer now rather than never. */
  cache__latency_record(&s->base, t0);
  call_user(s, get, done, data, -ENOMEM);
  if (op != NULL)
    free_op(op);
}

void cache__rop_answer_later(cache__rop_t *op, int err) {
  later(op->s, op, err, op->get, op->done, op->data, op->t0);
}

/* --- Operations ----------------------------------------------------------- */

/* One round trip for a value and its remaining TTL (Lua's false for a
 * missing key comes back as nil). */
static const char GET_TTL_SCRIPT[] =
    "return {redis.call('GET',KEYS[1]),redis.call('PTTL',KEYS[1])}";

static int format(cache__rop_t *op, const char *key, size_t klen,
                  const char *json, size_t jlen, uint64_t ttl_ms) {
  const char *argv[5];
  size_t len[5];
  int argc = 0;
  char ttl[24];
  size_t tl =
      (size_t)snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)ttl_ms);
#define ARG(s, n) (argv[argc] = (s), len[argc] = (n), argc++)
  switch (op->kind) {
  case CACHE__ROP_GET:
    ARG("GET", 3);
    ARG(key, klen);
    break;
  case CACHE__ROP_GET_TTL:
    ARG("EVAL", 4);
    ARG(GET_TTL_SCRIPT, sizeof GET_TTL_SCRIPT - 1);
    ARG("1", 1);
    ARG(key, klen);
    break;
  case CACHE__ROP_SET:
    ARG("SET", 3);
    ARG(key, klen);
    ARG(json, jlen);
    if (ttl_ms != 0) {
      ARG("PX", 2);
      ARG(ttl, tl);
    }
    break;
  case CACHE__ROP_DEL:
    ARG("DEL", 3);
    ARG(key, klen);
    break;
  case CACHE__ROP_TOUCH:
    ARG("PEXPIRE", 7);
    ARG(key, klen);
    ARG(ttl, tl);
    break;
  case CACHE__ROP_PERSIST: {
    /* No expiry: PERSIST, then EXISTS answers whether the key is there
     * (PERSIST's own 0 cannot tell "absent" from "had no TTL"). */
    const char *pv[2] = {"PERSIST", key};
    size_t pl[2] = {7, klen};
    int err = cache__rcmd_add(&op->cmd, 2, pv, pl);
    if (err < 0)
      return err;
    ARG("EXISTS", 6);
    ARG(key, klen);
    break;
  }
  }
#undef ARG
  return cache__rcmd_add(&op->cmd, argc, argv, len);
}

/* A new operation handed to the backend, or an answer from the next tick
 * (closed, out of memory). */
static void start(cache_store_t *st, int kind, const char *key, size_t klen,
                  const char *json, size_t jlen, uint64_t ttl_ms,
                  cache_get_fn get, cache_done_fn done, void *data,
                  int64_t *pttl) {
  cache__rstore_t *s = (cache__rstore_t *)st;
  uint64_t t0 = cache__latency_start(&s->base);
  /* A deadline counts from the call, not from when the loop last looked
   * at the clock (a call made after a long callback, or before the loop
   * runs, would otherwise start late). */
  uv_update_time(s->uv);
  if (s->closing) {
    cache__rstore_error(s, "closed");
    later(s, NULL, -ECANCELED, get, done, data, t0);
    return;
  }
  cache__rop_t *op = calloc(1, s->op_size);
  if (op == NULL) {
    later(s, NULL, -ENOMEM, get, done, data, t0);
    return;
  }
  *op = (cache__rop_t){
      .s = s, .kind = kind, .t0 = t0, .get = get, .done = done, .data = data,
      .pttl = pttl};
  if (format(op, key, klen, json, jlen, ttl_ms) < 0) {
    free_op(op);
    later(s, NULL, -ENOMEM, get, done, data, t0);
    return;
  }
  s->submit(s, op, key, klen);
}

void cache__rstore_get(cache_store_t *st, const char *key, size_t klen,
                       cache_get_fn fn, void *data) {
  start(st, CACHE__ROP_GET, key, klen, NULL, 0, 0, fn, NULL, data, NULL);
}

void cache__rstore_get_ttl(cache_store_t *st, const char *key, size_t klen,
                           int64_t *pttl, cache_get_fn fn, void *data) {
  start(st, CACHE__ROP_GET_TTL, key, klen, NULL, 0, 0, fn, NULL, data, pttl);
}

void cache__rstore_set(cache_store_t *st, const char *key, size_t klen,
                       const rt_value_t *value, uint64_t ttl_ms,
                       cache_done_fn fn, void *data) {
  cache__rstore_t *s = (cache__rstore_t *)st;
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  int err =
      value != NULL ? rt_json_stringify(s->rt, *value, NULL, &b) : -EINVAL;
  if (err < 0) {
    rt_strbuf_free(&b);
    cache__rstore_error(s, "the value has no JSON form");
    later(s, NULL, err, NULL, fn, data, cache__latency_start(&s->base));
    return;
  }
  start(st, CACHE__ROP_SET, key, klen, b.data, b.len, ttl_ms, NULL, fn, data,
        NULL);
  rt_strbuf_free(&b);
}

void cache__rstore_del(cache_store_t *st, const char *key, size_t klen,
                       cache_done_fn fn, void *data) {
  start(st, CACHE__ROP_DEL, key, klen, NULL, 0, 0, NULL, fn, data, NULL);
}

void cache__rstore_touch(cache_store_t *st, const char *key, size_t klen,
                         uint64_t ttl_ms, cache_done_fn fn, void *data) {
  start(st, ttl_ms != 0 ? CACHE__ROP_TOUCH : CACHE__ROP_PERSIST, key, klen,
        NULL, 0, ttl_ms, NULL, fn, data, NULL);
}

/* --- Entries and bytes, sampled ------------------------------------------- */

struct cache__rsample_s {
  cache__rstore_t *s;
  uint64_t started_us; /* cache__now_us() when it began */
  uint64_t entries, bytes;
  size_t pending; /* requests unanswered, and one for the sender until end */
  size_t asked;   /* servers asked */
  bool failed;
};

static void on_sample_tick(uv_timer_t *t) {
  cache__rstore_t *s = t->data;
  if (s->sample_wanted && !s->sampling && !s->closing)
    s->sample(s);
}

static void on_sample_timer_closed(uv_handle_t *hd) {
  cache__rstore_unref(hd->data);
}

int cache__rsample_init(cache__rstore_t *s) {
  static const char *const dbsize[] = {"DBSIZE"};
  static const size_t dbsize_len[] = {6};
  static const char *const info[] = {"INFO", "memory"};
  static const size_t info_len[] = {4, 6};
  if (cache__rcmd_add(&s->sample_cmd[0], 1, dbsize, dbsize_len) < 0 ||
      cache__rcmd_add(&s->sample_cmd[1], 2, info, info_len) < 0) {
    cache__rcmd_free(&s->sample_cmd[0]);
    cache__rcmd_free(&s->sample_cmd[1]);
    return -ENOMEM;
  }
  uv_timer_init(s->uv, &s->sample_timer);
  s->sample_timer.data = s;
  uv_unref((uv_handle_t *)&s->sample_timer);
  uv_timer_start(&s->sample_timer, on_sample_tick, CACHE_SAMPLE_MS,
                 CACHE_SAMPLE_MS);
  return 0;
}

void cache__rsample_close(cache__rstore_t *s) {
  cache__rcmd_free(&s->sample_cmd[0]);
  cache__rcmd_free(&s->sample_cmd[1]);
  uv_close((uv_handle_t *)&s->sample_timer, on_sample_timer_closed);
}

void cache__rsample_first(cache__rstore_t *s) {
  if (!s->sample_tried && !s->sampling && !s->closing)
    s->sample(s);
}

cache__rsample_t *cache__rsample_begin(cache__rstore_t *s) {
  if (s->sampling || s->closing)
    return NULL;
  cache__rsample_t *sm = calloc(1, sizeof *sm);
  if (sm == NULL)
    return NULL; /* the wish stays: tried again at the next tick */
  sm->s = s;
  sm->started_us = cache__now_us();
  sm->pending = 1;
  s->sampling = true;
  s->sample_tried = true;
  s->sample_wanted = false;
  s->refs++;
  return sm;
}

/* used_memory's value in INFO's text (N bytes at P), or -1. */
static int64_t used_memory(const char *p, size_t n) {
  static const char key[] = "used_memory:";
  const size_t kl = sizeof key - 1;
  for (size_t i = 0; i + kl <= n; i++) {
    if ((i == 0 || p[i - 1] == '\n') && memcmp(p + i, key, kl) == 0) {
      int64_t v = 0;
      size_t j = i + kl;
      if (j == n || p[j] < '0' || p[j] > '9')
        return -1;
      for (; j < n && p[j] >= '0' && p[j] <= '9'; j++)
        v = v * 10 + (p[j] - '0');
      return v;
    }
  }
  return -1;
}

static void sample_drop(cache__rsample_t *sm) {
  if (--sm->pending != 0)
    return;
  cache__rstore_t *s = sm->s;
  s->sampling = false;
  if (!sm->failed && sm->asked > 0 && !s->closing) {
    s->sample_entries = sm->entries;
    s->sample_bytes = sm->bytes;
    s->sampled_us = sm->started_us;
    s->sampled = true;
  }
  free(sm);
  cache__rstore_unref(s);
}

/* DBSIZE's reply is an integer, INFO's a text: each adds to its sum. */
static void on_sample(void *data, int err, const redisReply *rep) {
  cache__rsample_t *sm = data;
  int64_t v = -1;
  if (err == 0 && rep->type == REDIS_REPLY_INTEGER)
    v = rep->integer;
  else if (err == 0 && rep->type == REDIS_REPLY_STRING)
    v = used_memory(rep->str, rep->len);
  if (v < 0)
    sm->failed = true; /* an error reply, or none: not an operation's */
  else if (rep->type == REDIS_REPLY_INTEGER)
    sm->entries += (uint64_t)v;
  else
    sm->bytes += (uint64_t)v;
  sample_drop(sm);
}

void cache__rsample_send(cache__rsample_t *sm, cache__rconn_t *c,
                         uint64_t deadline) {
  cache__rstore_t *s = sm->s;
  sm->asked++;
  /* Down: refused at once, and the refusal would write a message. */
  if (c == NULL || cache__rconn_state(c) == CACHE__RCONN_DOWN) {
    sm->failed = true;
    return;
  }
  for (int i = 0; i < 2; i++) {
    if (cache__rconn_send_quiet(c, &s->sample_cmd[i], deadline, on_sample,
                                sm) == 0)
      sm->pending++;
    else
      sm->failed = true;
  }
}

void cache__rsample_end(cache__rsample_t *sm) {
  sample_drop(sm);
}

void cache__rsample_stats(cache__rstore_t *s, cache_stats_t *out) {
  s->sample_wanted = true;
  out->entries = s->sample_entries;
  out->bytes = s->sample_bytes;
  out->counted_ms_ago = cache__counted_ms_ago(s->sampled, s->sampled_us);
}

/* --- URLs ----------------------------------------------------------------- */

static int hexval(char ch) {
  return ch >= '0' && ch <= '9'   ? ch - '0'
         : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                  : -1;
}

char *cache__url_decode(const char *s, size_t n) {
  char *out = malloc(n + 1), *o = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      *o++ = s[i];
    }
  }
  *o = '\0';
  return out;
}

int cache__url_uint(const char *s, size_t n, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  if (n == 0)
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > max)
      return -EINVAL;
  }
  *out = v;
  return 0;
}

int cache__redis_url_userinfo(const char **p, const char *end,
                              const char *scheme, const char *url,
                              char **password, char *err, size_t errlen) {
  const char *at = memchr(*p, '@', (size_t)(end - *p));
  if (at == NULL)
    return 0;
  const char *colon = memchr(*p, ':', (size_t)(at - *p));
  if (colon == NULL || colon + 1 == at) {
    snprintf(err, errlen,
             "%s://: give the password as "
             "%s://:password@host (%s)",
             scheme, scheme, url);
    return -EINVAL;
  }
  char *pw = cache__url_decode(colon + 1, (size_t)(at - colon - 1));
  if (pw == NULL)
    return -ENOMEM;
  free(*password);
  *password = pw;
  *p = at + 1;
  return 0;
}

int cache__redis_url_query(const char *q, const char *scheme, char **password,
                           uint64_t *timeout_ms, uint64_t *refresh_ms,
                           char *err, size_t errlen) {
  for (const char *a = q; a != NULL && *a;) {
    const char *amp = strchr(a, '&');
    size_t n = amp != NULL ? (size_t)(amp - a) : strlen(a);
    const char *eq = memchr(a, '=', n);
    if (eq == NULL) {
      snprintf(err, errlen, "%s://: %.*s has no value", scheme, (int)n, a);
      return -EINVAL;
    }
    size_t kl = (size_t)(eq - a), vl = n - kl - 1;
    if (kl == 8 && memcmp(a, "password", 8) == 0) {
      char *pw = cache__url_decode(eq + 1, vl);
      if (pw == NULL)
        return -ENOMEM;
      free(*password);
      *password = pw;
    } else if (kl == 10 && memcmp(a, "timeout-ms", 10) == 0) {
      if (cache__url_uint(eq + 1, vl, CACHE__REDIS_TIMEOUT_MAX, timeout_ms) <
              0 ||
          *timeout_ms == 0) {
        snprintf(err, errlen, "%s://: %.*s is not a timeout in ms", scheme,
                 (int)n, a);
        return -EINVAL;
      }
    } else if (refresh_ms != NULL && kl == 10 &&
               memcmp(a, "refresh-ms", 10) == 0) {
      if (cache__url_uint(eq + 1, vl, CACHE__REDIS_TIMEOUT_MAX, refresh_ms) <
          0) {
        snprintf(err, errlen, "%s://: %.*s is not an interval in ms", scheme,
                 (int)n, a);
        return -EINVAL;
      }
    } else {
      snprintf(err, errlen, "%s://: unknown parameter %.*s", scheme, (int)kl,
               a);
      return -EINVAL;
    }
    a = amp != NULL ? amp + 1 : NULL;
  }
  return 0;
}

int cache__redis_url_parse(const char *url, cache__redis_url_t *out, char *err,
                           size_t errlen) {
  const char *p = strstr(url, "://");
  p = p != NULL ? p + 3 : url;
  const char *q = strchr(p, '?');
  const char *end = q != NULL ? q : p + strlen(p);
  char *password = NULL;
  uint64_t port = CACHE__REDIS_PORT, db = 0;
  uint64_t timeout = CACHE__REDIS_TIMEOUT_MS;
  *out = (cache__redis_url_t){.host = "127.0.0.1"};
  int e =
      cache__redis_url_userinfo(&p, end, "redis", url, &password, err, errlen);
  if (e < 0)
    return e;
  const char *slash = memchr(p, '/', (size_t)(end - p));
  const char *hend = slash != NULL ? slash : end;
  const char *colon = memchr(p, ':', (size_t)(hend - p));
  size_t hl = (size_t)((colon != NULL ? colon : hend) - p);
  if (hl >= sizeof out->host)
    goto bad;
  if (hl > 0) {
    memcpy(out->host, p, hl);
    out->host[hl] = '\0';
  }
  if (colon != NULL && (cache__url_uint(colon + 1, (size_t)(hend - colon - 1),
                                        65535, &port) < 0 ||
                        port == 0))
    goto bad;
  if (slash != NULL && slash + 1 < end &&
      cache__url_uint(slash + 1, (size_t)(end - slash - 1), 1u << 20, &db) < 0)
    goto bad;
  if (q != NULL && (e = cache__redis_url_query(q + 1, "redis", &password,
                                               &timeout, NULL, err, errlen)) <
                       0) {
    free(password);
    return e;
  }
  out->port = (int)port;
  out->db = (int)db;
  out->timeout_ms = timeout;
  out->password = password;
  return 0;
bad:
  free(password);
  snprintf(err, errlen,
           "redis://: expected redis://[:password@]host[:port]"
           "[/db][?password=P&timeout-ms=N]: %s",
           url);
  return -EINVAL;
}
