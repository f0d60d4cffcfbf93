/* tenure_server.c -- tenure-server, the demo application: an HTTP/1.1
 * server written against <tenure/tenure.h> the way an express application
 * is written in JavaScript, showing each feature of the runtime's server.
 *
 *   GET  /                 an HTML index of the routes
 *   GET  /hello            "hello world\n"
 *   GET  /string10k        10,240 x 'a' from a heap string (encoded on
 *                          every response)
 *   GET  /buffer10k        the same bytes from a Buffer made once
 *   GET  /users            every user (JSON)
 *   GET|PUT|DELETE /users/:name   one user, kept in an in-heap Map
 *   POST /echo             the parsed body, query, cookies and files
 *   POST /upload           multipart files stored in --upload-dir
 *   GET  /files/...        static files from --static DIR
 *   GET  /debug/heap       heap statistics and memoryUsage()
 *   POST /login            {"user": ...}: a new session holding the user
 *   GET  /me               the session's user (401 without one)
 *   POST /visit            counts visits in the session (a modified session)
 *   POST /logout           ends the session, clears the cookie
 *   GET  /cached/:key      a slow (20 ms) value through the store,
 *                          computed once however many miss it (X-Cache)
 *   GET  /debug/store      the session store's counters
 *
 * Values that outlive a request (the users, the pre-made string and
 * Buffer) are rooted with gc_root_add; everything a request makes is
 * garbage once it is answered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tenure/cache.h>
#include <tenure/cache_session.h>
#include <tenure/tenure.h>
#include <tenure/rt_http.h>
#include <tenure/rt_multipart.h>
#include <sys/random.h>

typedef struct app_s {
  rt_runtime_t *rt;
  gc_heap_t *h;
  rt_server_t *server;
  rt_value_t users;     /* Map name -> value; a root */
  rt_value_t string10k; /* a root */
  rt_value_t buffer10k; /* a root */
  const char *static_dir;
  const char *upload_dir;
  cache_store_t *store;
} app_t;

static app_t A;

/* --- Routes ------------------------------------------------------------------ */

static const char index_html[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
    "<title>tenure-server</title></head><body>\n"
    "<h1>tenure-server</h1>\n<p>An HTTP/1.1 server on the tenure heap.</p>\n"
    "<ul>\n"
    "<li><a href=\"/hello\">/hello</a> &mdash; hello world</li>\n"
    "<li><a href=\"/string10k\">/string10k</a> &mdash; 10 KB from a string"
    "</li>\n"
    "<li><a href=\"/buffer10k\">/buffer10k</a> &mdash; 10 KB from a Buffer "
    "made once</li>\n"
    "<li><a href=\"/users\">/users</a> &mdash; GET, PUT, DELETE "
    "/users/:name (JSON)</li>\n"
    "<li>POST /echo &mdash; the parsed body, query and cookies</li>\n"
    "<li>POST /upload &mdash; multipart files</li>\n"
    "<li><a href=\"/files/\">/files/</a> &mdash; static files</li>\n"
    "<li><a href=\"/debug/heap\">/debug/heap</a> &mdash; heap statistics"
    "</li>\n"
    "<li>POST /login, <a href=\"/me\">/me</a>, POST /visit, POST /logout "
    "&mdash; sessions (<a href=\"/debug/store\">/debug/store</a>)</li>\n"
    "</ul>\n</body></html>\n";

static void get_index(rt_value_t *req, void *data) {
  (void)data;
  rt_res_set_header(req, "Content-Type", "text/html; charset=utf-8");
  rt_res_send(req, index_html, sizeof index_html - 1);
}

static void get_hello(rt_value_t *req, void *data) {
  (void)data;
  rt_res_send(req, "hello world\n", 12);
}

static void get_string10k(rt_value_t *req, void *data) {
  (void)data;
  rt_res_send_string(req, &A.string10k);
}

static void get_buffer10k(rt_value_t *req, void *data) {
  (void)data;
  rt_res_set_header(req, "Content-Type", "text/plain; charset=utf-8");
  rt_res_send_buffer(req, &A.buffer10k);
}

static void get_users(rt_value_t *req, void *data) {
  (void)data;
  rt_res_json(req, &A.users);
}

/* The :name param as a handle. */
static rt_value_t *param_name(rt_value_t *req) {
  rt_value_t p = rt_req_get(req, RT_REQ_PARAMS);
  return rt_handle(A.h, rt_map_get_cstr(p, "name"));
}

static void get_user(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t *name = param_name(req);
  rt_value_t *u = rt_handle(A.h, rt_map_get(A.users, *name));
  if (*u == RT_NONE) {
    rt_res_status(req, 404);
    rt_res_json(req, rt_handle(A.h, rt_string_cstr(A.rt, "no such user")));
    return;
  }
  rt_res_json(req, u);
}

static void put_user(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t *body = rt_handle(A.h, rt_req_get(req, RT_REQ_BODY));
  if (*body == RT_UNDEFINED || *body == RT_NONE ||
      !rt_req_is(*req, "application/json")) {
    rt_next_error(req, 400, "PUT /users/:name takes a JSON body");
    return;
  }
  rt_value_t *name = param_name(req);
  bool existed = rt_map_has(A.users, *name);
  if (rt_map_set(A.rt, &A.users, name, body) < 0) {
    rt_next(req, -ENOMEM);
    return;
  }
  rt_res_status(req, existed ? 200 : 201);
  rt_res_json(req, body);
}

static void delete_user(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t *name = param_name(req);
  if (rt_map_delete(A.rt, A.users, *name) < 0) {
    rt_res_status(req, 404);
    rt_res_json(req, rt_handle(A.h, rt_string_cstr(A.rt, "no such user")));
    return;
  }
  rt_res_status(req, 204);
  rt_res_end(req);
}

/* Sets KEY of *MAP to *V. */
static void put(rt_value_t *map, const char *key, rt_value_t *v) {
  gc_scope_t sc;
  gc_scope_open(A.h, &sc);
  rt_value_t *k = rt_handle(A.h, rt_string_cstr(A.rt, key));
  rt_map_set(A.rt, map, k, v);
  gc_scope_close(A.h, &sc);
}

static void post_echo(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t *out = rt_handle(A.h, rt_map_new(A.rt, 4));
  rt_value_t *v = rt_handle(A.h, rt_req_get(req, RT_REQ_BODY));
  if (*v == RT_UNDEFINED)
    *v = RT_NULL;
  put(out, "body", v);
  *v = rt_req_get(req, RT_REQ_QUERY);
  put(out, "query", v);
  *v = rt_req_get(req, RT_REQ_COOKIES);
  put(out, "cookies", v);
  *v = rt_req_get(req, RT_REQ_FILES);
  if (*v != RT_UNDEFINED)
    put(out, "files", v);
  rt_res_json(req, out);
}

static void post_upload(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t files = rt_req_get(req, RT_REQ_FILES);
  if (!rt_is_array(files)) {
    rt_next_error(req, 415, "POST /upload takes multipart/form-data");
    return;
  }
  rt_value_t *out = rt_handle(A.h, rt_map_new(A.rt, 2));
  rt_value_t *v = rt_handle(A.h, files);
  put(out, "files", v);
  *v = rt_req_get(req, RT_REQ_BODY);
  put(out, "fields", v);
  rt_res_status(req, 201);
  rt_res_json(req, out);
}

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2)
      res = 0;
    fclose(f);
  }
  return res * sysconf(_SC_PAGESIZE);
}

static void get_debug_heap(rt_value_t *req, void *data) {
  (void)data;
  char *heap = NULL;
  size_t heap_len = 0;
  FILE *m = open_memstream(&heap, &heap_len);
  if (m == NULL) {
    rt_next(req, -ENOMEM);
    return;
  }
  gc_heap_stats_json(A.h, m);
  fclose(m);
  while (heap_len > 0 && (heap[heap_len - 1] == '\n' ||
                          heap[heap_len - 1] == ' '))
    heap_len--;
  rt_memory_usage_t mu;
  rt_memory_usage(A.rt, &mu);
  rt_server_stats_t ss;
  rt_server_stats(A.server, &ss);
  char *out = NULL;
  size_t out_len = 0;
  m = open_memstream(&out, &out_len);
  fprintf(m,
          "{\"heap\":%.*s,\"memoryUsage\":{\"rss\":%ld,\"heapTotal\":%zu,"
          "\"heapUsed\":%zu,\"external\":%zu,\"arrayBuffers\":%zu},"
          "\"server\":{\"connections\":%" PRIu64 ",\"accepted\":%" PRIu64
          ",\"requests\":%" PRIu64 ",\"responses\":%" PRIu64
          ",\"errors\":%" PRIu64 ",\"timeouts\":%" PRIu64 "}}\n",
          (int)heap_len, heap, rss_bytes(), mu.heap_total, mu.heap_used,
          mu.external, mu.array_buffers, ss.connections, ss.accepted,
          ss.requests, ss.responses, ss.errors, ss.timeouts);
  fclose(m);
  rt_res_set_header(req, "Content-Type", "application/json; charset=utf-8");
  rt_res_set_header(req, "Cache-Control", "no-store");
  rt_res_send(req, out, out_len);
  free(out);
  free(heap);
}

/* --- Sessions (cache/) --------------------------------------------------------- */

/* The user of a login body (JSON or urlencoded), as a handle, or NULL. */
static rt_value_t *login_user(rt_value_t *req) {
  rt_value_t body = rt_req_get(req, RT_REQ_BODY);
  rt_value_t u = rt_is_map(body) ? rt_map_get_cstr(body, "user") : RT_NONE;
  if (!rt_is_string(u) || rt_string_length(u) == 0)
    return NULL;
  return rt_handle(A.h, u);
}

static void json_error(rt_value_t *req, int status, const char *msg) {
  rt_value_t *o = rt_handle(A.h, rt_map_new(A.rt, 1));
  rt_value_t *v = rt_handle(A.h, rt_string_cstr(A.rt, msg));
  put(o, "error", v);
  rt_res_status(req, status);
  rt_res_json(req, o);
}

static void post_login(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t *user = login_user(req);
  if (user == NULL) {
    json_error(req, 400, "user required");
    return;
  }
  cache_session_regenerate(req, false); /* no session fixation */
  rt_value_t *sess = rt_handle(A.h, cache_session_data(req));
  put(sess, "user", user);
  rt_value_t *at = rt_handle(A.h, rt_number(A.rt, (double)time(NULL) * 1e3));
  put(sess, "loginAt", at);
  rt_value_t *o = rt_handle(A.h, rt_map_new(A.rt, 1));
  put(o, "user", user);
  rt_res_json(req, o);
}

static void get_me(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t user = RT_NONE;
  if (cache_session_exists(*req)) {
    rt_value_t sess = cache_session_data(req);
    user = rt_map_get_cstr(sess, "user");
  }
  if (!rt_is_string(user)) {
    json_error(req, 401, "not logged in");
    return;
  }
  rt_value_t *u = rt_handle(A.h, user);
  rt_value_t *o = rt_handle(A.h, rt_map_new(A.rt, 1));
  put(o, "user", u);
  rt_res_json(req, o);
}

static void post_visit(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t *sess = rt_handle(A.h, cache_session_data(req));
  rt_value_t n = rt_map_get_cstr(*sess, "visits");
  rt_value_t *v = rt_handle(
      A.h, rt_int((rt_is_int(n) ? rt_int_value(n) : 0) + 1));
  put(sess, "visits", v);
  rt_value_t *o = rt_handle(A.h, rt_map_new(A.rt, 1));
  put(o, "visits", v);
  rt_res_json(req, o);
}

static void post_logout(rt_value_t *req, void *data) {
  (void)data;
  cache_session_destroy(req);
  rt_value_t *o = rt_handle(A.h, rt_map_new(A.rt, 1));
  rt_value_t *t = rt_handle(A.h, RT_TRUE);
  put(o, "ok", t);
  rt_res_json(req, o);
}

static void get_debug_store(rt_value_t *req, void *data) {
  (void)data;
  cache_stats_t st;
  cache_stats(A.store, &st);
  /* entries and bytes: a remote store's are a sample this old (null: none
   * yet; see cache.h). */
  char ago[24] = "null";
  if (st.counted_ms_ago != UINT64_MAX)
    snprintf(ago, sizeof ago, "%llu", (unsigned long long)st.counted_ms_ago);
  char out[768];
  int n = snprintf(out, sizeof out,
                   "{\"type\":\"%s\",\"hits\":%llu,\"misses\":%llu,"
                   "\"sets\":%llu,\"deletes\":%llu,\"evictions\":%llu,"
                   "\"expirations\":%llu,\"errors\":%llu,"
                   "\"reconnects\":%llu,\"nearHits\":%llu,"
                   "\"entries\":%llu,\"bytes\":%llu,\"countedMsAgo\":%s,"
                   "\"maxEntries\":%llu,\"maxBytes\":%llu,"
                   "\"latency\":{\"samples\":%llu,\"p50Ms\":%.3f,"
                   "\"p99Ms\":%.3f}}\n",
                   A.store->type->scheme, (unsigned long long)st.hits,
                   (unsigned long long)st.misses, (unsigned long long)st.sets,
                   (unsigned long long)st.deletes,
                   (unsigned long long)st.evictions,
                   (unsigned long long)st.expirations,
                   (unsigned long long)st.errors,
                   (unsigned long long)st.reconnects,
                   (unsigned long long)st.near_hits,
                   (unsigned long long)st.entries, (unsigned long long)st.bytes,
                   ago, (unsigned long long)st.max_entries,
                   (unsigned long long)st.max_bytes,
                   (unsigned long long)st.latency_samples,
                   st.latency_p50_us / 1000.0, st.latency_p99_us / 1000.0);
  rt_res_set_header(req, "Content-Type", "application/json; charset=utf-8");
  rt_res_send(req, out, (size_t)n);
}

/* --- A cache for application data ----------------------------------------- */

static rt_loop_t *app_loop;

/* The slow computation: a 20 ms timer, then {"key", "computedAt"}. */
static void computed(rt_loop_t *loop, void *data, rt_value_t *args,
                     size_t nargs) {
  (void)loop;
  (void)nargs;
  rt_value_t *o = rt_handle(A.h, rt_map_new(A.rt, 2));
  put(o, "key", &args[0]);
  rt_value_t *t = rt_handle(A.h, rt_number(A.rt, (double)time(NULL) * 1e3));
  put(o, "computedAt", t);
  cache_compute_done(data, 0, o);
}

static void compute_slowly(cache_flight_t *fl, const char *key, size_t klen,
                           void *data) {
  (void)data;
  gc_scope_t sc;
  gc_scope_open(A.h, &sc);
  rt_value_t *k = rt_handle(A.h, rt_string_from_bytes(A.rt, key, klen));
  if (rt_set_timeout(app_loop, 20, computed, fl, k, 1, NULL) < 0)
    cache_compute_done(fl, -ENOMEM, NULL);
  gc_scope_close(A.h, &sc);
}

/* The value's JSON text goes out as it is: a memory:// hit builds no
 * value on the heap (cache_get_or_compute_json). */
static void cached_value(cache_store_t *st, int err, const char *json,
                         size_t len, bool hit, void *data) {
  (void)st;
  gc_persistent_t *p = data;
  gc_scope_t sc;
  gc_scope_open(A.h, &sc);
  rt_value_t *req = rt_handle(A.h, (rt_value_t)gc_persistent_get(p));
  gc_persistent_free(A.h, p);
  if (err < 0 || json == NULL) {
    rt_next_error(req, 503, "cache unavailable");
  } else {
    rt_res_set_header(req, "X-Cache", hit ? "hit" : "miss");
    rt_res_json_text(req, json, len);
  }
  gc_scope_close(A.h, &sc);
}

static void get_cached(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t p = rt_req_get(req, RT_REQ_PARAMS);
  rt_value_t k = rt_map_get_cstr(p, "key");
  char key[7 + 256];
  size_t kl = rt_string_length(k) < 256 ? rt_string_length(k) : 256;
  memcpy(key, "cached:", 7);
  memcpy(key + 7, rt_string_data(k), kl);
  size_t n = 7 + kl;
  gc_persistent_t *keep = gc_persistent_new(A.h, (void *)*req);
  cache_get_or_compute_json(A.store, key, n, 60000, compute_slowly, NULL,
                            cached_value, keep);
}

/* Errors as JSON for API clients, text otherwise (as an express app's
 * error handler would). */
static void on_error(rt_value_t *req, int err, void *data) {
  (void)data;
  int st = err >= 400 && err <= 599 ? err : 500;
  const char *msg = rt_req_error_message(*req);
  if (st >= 500)
    fprintf(stderr, "tenure-server: %d: %s %s: %s\n", st, rt_req_method(*req),
            rt_string_data(rt_req_get(req, RT_REQ_PATH)),
            msg != NULL ? msg : rt_strerror(err));
  static const char *const types[] = {"application/json", "text/plain"};
  rt_res_status(req, st);
  char text[512];
  snprintf(text, sizeof text, "%s", msg != NULL ? msg : "error");
  if (rt_req_accepts(*req, types, 2) == 0) {
    rt_value_t *o = rt_handle(A.h, rt_map_new(A.rt, 2));
    rt_value_t *v = rt_handle(A.h, rt_string_cstr(A.rt, text));
    put(o, "error", v);
    *v = rt_int(st);
    put(o, "status", v);
    rt_res_json(req, o);
  } else {
    size_t n = strlen(text);
    text[n] = '\n';
    rt_res_send(req, text, n + 1);
  }
}

/* --- Setup ------------------------------------------------------------------- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: tenure-server [options] [heap flags]\n"
          "\n"
          "  --listen HOST:PORT         address to serve (127.0.0.1:8080)\n"
          "  --static DIR               serve DIR under /files/\n"
          "  --upload-dir DIR           where POST /upload stores files\n"
          "                             (/tmp/tenure-uploads)\n"
          "  --access-log FILE          combined log format to FILE (- for\n"
          "                             stdout)\n"
          "  --headers-timeout MS       request head must arrive (60000)\n"
          "  --request-timeout MS       whole request must arrive (300000)\n"
          "  --keep-alive-timeout MS    idle connection kept (5000)\n"
          "  --handler-timeout MS       a handler must answer (120000)\n"
          "  --drain-timeout MS         graceful stop bound (10000)\n"
          "  --max-header-size BYTES    request line + headers (16384)\n"
          "  --max-body-size BYTES      any request body (1073741824)\n"
          "  --max-json-size BYTES      JSON/urlencoded/text bodies (102400)\n"
          "  --store URL                session store (memory://; also\n"
          "                             memory://?max-entries=N&max-bytes=M,\n"
          "                             redis://[:password@]host:port/db,\n"
          "                             redis-cluster://host:port,host:port,\n"
          "                             near+redis://host:port (in-heap\n"
          "                             copies in front of Redis),\n"
          "                             memcached://host:port,host:port)\n"
          "  --session-secret S         signs session cookies (also\n"
          "                             TENURE_SESSION_SECRET; else random\n"
          "                             per start, with a warning)\n"
          "  --session-max-age MS       idle lifetime of a session (1200000)\n"
          "  --session-renew-after MS   renew the cookie and the store's TTL\n"
          "                             at most this often (half the max\n"
          "                             age; 0: on every request)\n"
          "  --help                     this text\n"
          "\n%s",
          gc_options_help());
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || s[0] == '\0' || s[0] == '-')
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  gc_options_t go;
  gc_options_init(&go);
  if (gc_options_from_env_and_argv(&go, &argc, argv) < 0)
    return 2;
  rt_server_options_t so;
  rt_server_options_init(&so);
  so.limits.max_body_bytes = 1024ull * 1024 * 1024;
  char host[256] = "127.0.0.1";
  int port = 8080;
  const char *access_log = NULL;
  uint64_t json_limit = 100 * 1024;
  uint64_t session_max_age = 0, session_renew = UINT64_MAX; /* defaults */
  A.upload_dir = "/tmp/tenure-uploads";
  const char *store_url = "memory://";
  const char *secret = getenv("TENURE_SESSION_SECRET");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n = 0;
#define NEED_VALUE()                                                          \
  do {                                                                        \
    if (v == NULL) {                                                          \
      fprintf(stderr, "tenure-server: %s needs a value\n", a);                \
      return 2;                                                               \
    }                                                                         \
    i++;                                                                      \
  } while (0)
#define NUMBER(field)                                                         \
  do {                                                                        \
    NEED_VALUE();                                                             \
    if (parse_u64(v, &n) < 0) {                                               \
      fprintf(stderr, "tenure-server: %s: not a number: %s\n", a, v);         \
      return 2;                                                               \
    }                                                                         \
    field = n;                                                                \
  } while (0)
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--listen") == 0) {
      NEED_VALUE();
      const char *colon = strrchr(v, ':');
      uint64_t p;
      if (colon == NULL || parse_u64(colon + 1, &p) < 0 || p > 65535) {
        fprintf(stderr, "tenure-server: --listen wants HOST:PORT, not %s\n",
                v);
        return 2;
      }
      size_t hl = (size_t)(colon - v);
      if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') { /* [::1]:8080 */
        v++;
        hl -= 2;
      }
      snprintf(host, sizeof host, "%.*s", (int)hl, v);
      port = (int)p;
    } else if (strcmp(a, "--static") == 0) {
      NEED_VALUE();
      A.static_dir = v;
    } else if (strcmp(a, "--upload-dir") == 0) {
      NEED_VALUE();
      A.upload_dir = v;
    } else if (strcmp(a, "--access-log") == 0) {
      NEED_VALUE();
      access_log = v;
    } else if (strcmp(a, "--headers-timeout") == 0) {
      NUMBER(so.headers_timeout_ms);
    } else if (strcmp(a, "--request-timeout") == 0) {
      NUMBER(so.request_timeout_ms);
    } else if (strcmp(a, "--keep-alive-timeout") == 0) {
      NUMBER(so.keep_alive_timeout_ms);
    } else if (strcmp(a, "--handler-timeout") == 0) {
      NUMBER(so.handler_timeout_ms);
    } else if (strcmp(a, "--drain-timeout") == 0) {
      NUMBER(so.drain_timeout_ms);
    } else if (strcmp(a, "--max-header-size") == 0) {
      NUMBER(so.limits.max_head_bytes);
    } else if (strcmp(a, "--max-body-size") == 0) {
      NUMBER(so.limits.max_body_bytes);
    } else if (strcmp(a, "--max-json-size") == 0) {
      NUMBER(json_limit);
    } else if (strcmp(a, "--store") == 0) {
      NEED_VALUE();
      store_url = v;
    } else if (strcmp(a, "--session-secret") == 0) {
      NEED_VALUE();
      secret = v;
    } else if (strcmp(a, "--session-max-age") == 0) {
      NUMBER(session_max_age);
    } else if (strcmp(a, "--session-renew-after") == 0) {
      NUMBER(session_renew);
    } else {
      fprintf(stderr, "tenure-server: unknown option %s (see --help)\n", a);
      return 2;
    }
  }
  if (mkdir(A.upload_dir, 0700) < 0 && errno != EEXIST) {
    fprintf(stderr, "tenure-server: --upload-dir %s: %s\n", A.upload_dir,
            strerror(errno));
    return 1;
  }
  FILE *log = NULL;
  if (access_log != NULL) {
    log = strcmp(access_log, "-") == 0 ? stdout : fopen(access_log, "a");
    if (log == NULL) {
      fprintf(stderr, "tenure-server: --access-log %s: %s\n", access_log,
              strerror(errno));
      return 1;
    }
  }

  gc_heap_t *h;
  int err = gc_heap_create(&go, &h);
  if (err < 0) {
    fprintf(stderr, "tenure-server: heap: %s\n", gc_strerror(err));
    return 1;
  }
  rt_runtime_create(h, &A.rt);
  A.h = h;
  A.users = rt_map_new(A.rt, 16);
  gc_root_add(h, (void **)&A.users, "users");
  char *a10k = malloc(10240);
  memset(a10k, 'a', 10240);
  A.string10k = rt_string_new(A.rt, a10k, 10240);
  gc_root_add(h, (void **)&A.string10k, "string10k");
  A.buffer10k = rt_buffer_from(A.rt, a10k, 10240);
  gc_root_add(h, (void **)&A.buffer10k, "buffer10k");
  free(a10k);

  rt_loop_t *loop;
  rt_app_t *app;
  rt_loop_create(A.rt, &loop);
  rt_app_create(A.rt, &app);
  char why[256];
  if ((err = cache_open(loop, store_url, &A.store, why, sizeof why)) < 0) {
    fprintf(stderr, "tenure-server: --store: %s\n", why);
    return 2;
  }
  char random_secret[33];
  if (secret == NULL || secret[0] == '\0') {
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != sizeof b)
      return 1;
    for (int i = 0; i < 16; i++)
      snprintf(random_secret + 2 * i, 3, "%02x", b[i]);
    secret = random_secret;
    fprintf(stderr, "tenure-server: warning: no --session-secret or "
                    "TENURE_SESSION_SECRET: a random one for this start; "
                    "sessions will not survive a restart or be shared "
                    "between processes\n");
  }
  if (log != NULL)
    rt_mw_access_log(app, log);
  rt_mw_response_time(app);
  rt_mw_json(app, NULL, json_limit);
  rt_mw_urlencoded(app, NULL, json_limit, NULL);
  rt_mw_text(app, NULL, json_limit);
  rt_mw_multipart(app, NULL, A.upload_dir, NULL);
  if (A.static_dir != NULL &&
      (err = rt_mw_static(app, "/files", A.static_dir)) < 0) {
    fprintf(stderr, "tenure-server: --static %s: %s\n", A.static_dir,
            rt_strerror(err));
    return 1;
  }
  rt_app_get(app, "/", get_index, NULL);
  rt_app_get(app, "/hello", get_hello, NULL);
  rt_app_get(app, "/string10k", get_string10k, NULL);
  rt_app_get(app, "/buffer10k", get_buffer10k, NULL);
  rt_app_get(app, "/users", get_users, NULL);
  rt_app_get(app, "/users/:name", get_user, NULL);
  rt_app_put(app, "/users/:name", put_user, NULL);
  rt_app_delete(app, "/users/:name", delete_user, NULL);
  rt_app_post(app, "/echo", post_echo, NULL);
  rt_app_post(app, "/upload", post_upload, NULL);
  rt_app_get(app, "/debug/heap", get_debug_heap, NULL);
  app_loop = loop;
  rt_app_get(app, "/cached/:key", get_cached, NULL);
  /* Sessions after the routes that do not need them: those answer before
   * the session middleware would run (layers go in order). */
  cache_session_opts_t sopt;
  cache_session_opts_init(&sopt);
  const char *secrets[1] = {secret};
  sopt.secrets = secrets;
  sopt.nsecrets = 1;
  if (session_max_age != 0)
    sopt.max_age_ms = session_max_age;
  if (session_renew != UINT64_MAX)
    sopt.renew_after_ms = session_renew;
  if ((err = cache_session(app, A.store, &sopt)) < 0) {
    fprintf(stderr, "tenure-server: sessions: %s%s\n", rt_strerror(err),
            err == -EINVAL ? " (--session-renew-after longer than the "
                             "max age?)"
                           : "");
    return 1;
  }
  rt_app_post(app, "/login", post_login, NULL);
  rt_app_get(app, "/me", get_me, NULL);
  rt_app_post(app, "/visit", post_visit, NULL);
  rt_app_post(app, "/logout", post_logout, NULL);
  rt_app_get(app, "/debug/store", get_debug_store, NULL);
  rt_app_use_error(app, NULL, on_error, NULL);

  err = rt_server_create(loop, app, &so, &A.server);
  if (err == 0)
    err = rt_server_listen(A.server, host, port);
  if (err < 0) {
    fprintf(stderr, "tenure-server: listen %s:%d: %s\n", host, port,
            rt_strerror(err));
    return 1;
  }
  rt_server_handle_signals(A.server);
  printf("tenure-server listening on http://%s%s%s:%d/\n",
         strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
         rt_server_port(A.server));
  fflush(stdout);
  rt_loop_run(loop);
  cache_close(A.store);
  rt_loop_run(loop); /* the store's handles close */
  rt_server_destroy(A.server);
  rt_loop_destroy(loop);
  rt_app_destroy(app);
  rt_runtime_destroy(A.rt);
  if (log != NULL && log != stdout)
    fclose(log);
  return 0;
}
