/* middleware.c -- the built-in middleware: the access log (combined log
 * format), X-Response-Time, and static files.
 *
 * Static files refuse any path that could leave DIR before touching the
 * file system: a ".." segment (also percent-encoded), an encoded '/' or
 * '\\', a NUL, or a malformed escape.  What remains is joined under DIR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "http_internal.h"

/* --- Access log ------------------------------------------------------------ */

static void log_line(rt_value_t *req, void *data) {
  FILE *out = data;
  x__exchange_t *ex = x__exchange_of(req);
  if (ex == NULL)
    return;
  char when[64];
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S %z", &tm);
  rt_value_t url = ((rt__req_t *)*req)->f[RT_REQ_URL];
  rt_value_t ref = rt_req_header(*req, "referer");
  rt_value_t ua = rt_req_header(*req, "user-agent");
  char bytes[32];
  if (ex->bytes_out > 0)
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)ex->bytes_out);
  else
    snprintf(bytes, sizeof bytes, "-");
  fprintf(out, "%s - - [%s] \"%s %s HTTP/1.%d\" %d %s \"%s\" \"%s\"\n",
          rt_req_remote_addr(*req), when, ex->method,
          rt_is_string(url) ? rt_string_data(url) : "-", ex->minor,
          ex->head_sent ? ex->status : 499 /* nginx's: the client left */,
          bytes, rt_is_string(ref) ? rt_string_data(ref) : "-",
          rt_is_string(ua) ? rt_string_data(ua) : "-");
  fflush(out);
}

static void access_log(rt_value_t *req, void *data) {
  rt_res_on_finish(req, log_line, data);
  rt_next(req, 0);
}

int rt_mw_access_log(rt_app_t *app, FILE *out) {
  if (out == NULL)
    return -EINVAL;
  return rt_app_use(app, NULL, access_log, out);
}

/* --- Response time ------------------------------------------------------------ */

static void set_time(rt_value_t *req, void *data) {
  (void)data;
  /* "%.3fms" without printf (on every response). */
  uint64_t us = (uint64_t)(rt_req_elapsed_ms(req) * 1000.0 + 0.5);
  char v[32], t[24];
  size_t n = 0, k = 0;
  uint64_t ms = us / 1000;
  do {
    t[k++] = (char)('0' + ms % 10);
    ms /= 10;
  } while (ms != 0);
  while (k > 0)
    v[n++] = t[--k];
  v[n++] = '.';
  v[n++] = (char)('0' + us / 100 % 10);
  v[n++] = (char)('0' + us / 10 % 10);
  v[n++] = (char)('0' + us % 10);
  memcpy(v + n, "ms", 3);
  rt_res_set_header(req, "X-Response-Time", v);
}

static void response_time(rt_value_t *req, void *data) {
  (void)data;
  rt_res_on_head(req, set_time, NULL);
  rt_next(req, 0);
}

int rt_mw_response_time(rt_app_t *app) {
  return rt_app_use(app, NULL, response_time, NULL);
}

/* --- Static files -------------------------------------------------------------- */

typedef struct static_s {
  char *dir;
  size_t dir_len;
} static_t;

/* Decodes the URL path P (N bytes) into OUT (N + 1 bytes) and checks it:
 * 0, 400 (a malformed escape, a NUL) or 403 (a way out of the directory). */
static int safe_path(const char *p, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c == '%') {
      int a = i + 2 < n ? rt__hexval(p[i + 1]) : -1;
      int b = i + 2 < n ? rt__hexval(p[i + 2]) : -1;
      if (a < 0 || b < 0)
        return 400;
      c = (char)(a * 16 + b);
      i += 2;
      if (c == '/' || c == '\\')
        return 403; /* an encoded separator */
    }
    if (c == '\0')
      return 400;
    if (c == '\\')
      return 403;
    out[o++] = c;
  }
  out[o] = '\0';
  /* No "." or ".." segment. */
  for (size_t i = 0; i < o;) {
    size_t j = i;
    while (j < o && out[j] != '/')
      j++;
    size_t len = j - i;
    if ((len == 2 && out[i] == '.' && out[i + 1] == '.') ||
        (len == 1 && out[i] == '.'))
      return 403;
    i = j + 1;
  }
  return 0;
}

static void serve_static(rt_value_t *req, void *data) {
  static_t *st = data;
  const char *m = rt_req_method(*req);
  if (m == NULL || (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0)) {
    rt_next(req, 0);
    return;
  }
  size_t n;
  const char *sub = rt_req_subpath(*req, &n);
  char *dec = malloc(n + 1);
  char *full = malloc(st->dir_len + n + 16);
  if (dec == NULL || full == NULL) {
    free(dec);
    free(full);
    rt_next(req, -ENOMEM);
    return;
  }
  int bad = safe_path(sub, n, dec);
  if (bad != 0) {
    free(dec);
    free(full);
    rt_res_send_status(req, bad);
    return;
  }
  snprintf(full, st->dir_len + n + 16, "%s%s%s", st->dir,
           dec[0] == '/' ? "" : "/", dec);
  struct stat sb;
  if (stat(full, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    size_t fl = strlen(full);
    snprintf(full + fl, st->dir_len + n + 16 - fl, "%sindex.html",
             fl > 0 && full[fl - 1] == '/' ? "" : "/");
  }
  free(dec);
  int err = rt_res_send_file(req, full);
  free(full);
  if (err == -ENOENT || err == -EISDIR || err == -ENOTDIR)
    rt_next(req, 0);
  else if (err == -EACCES)
    rt_res_send_status(req, 403);
  else if (err < 0 && err != -EPIPE)
    rt_next(req, err);
}

static void static_free(void *data) {
  static_t *st = data;
  free(st->dir);
  free(st);
}

int rt_mw_static(rt_app_t *app, const char *prefix, const char *dir) {
  if (dir == NULL)
    return -EINVAL;
  static_t *st = malloc(sizeof *st);
  if (st == NULL)
    return -ENOMEM;
  char *real = realpath(dir, NULL);
  st->dir = real != NULL ? real : strdup(dir);
  if (st->dir == NULL) {
    free(st);
    return -ENOMEM;
  }
  st->dir_len = strlen(st->dir);
  int err = rt_app_use_owned(app, prefix, serve_static, st, static_free);
  if (err < 0)
    static_free(st);
  return err;
}
