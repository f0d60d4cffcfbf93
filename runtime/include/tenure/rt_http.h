/* rt_http.h -- an HTTP/1.1 server on the runtime's event loop: connections,
 * requests and responses, and express-style applications (middleware,
 * routes, mounted sub-applications, error handlers).
 *
 * The request.  Each request is one heap value (type "Request") that also
 * carries its response, as h2o's h2o_req_t does: every handler, middleware
 * and response function takes it by handle (rt_value_t *req).  Its data
 * are runtime values on the heap, created when its head arrives and dying
 * young with it: url, path, query (Map; repeated keys Arrays), headers
 * (Map; lower-case names, repeats joined as node joins them), params (Map),
 * cookies (Map), body, and locals (a Map for middleware: a session lives
 * there).
 *
 * Lifetime and GC safety.  The server keeps the request rooted from its
 * head until its response has finished.  Inside a handler, middleware or
 * server callback, REQ is a handle valid until that callback returns.  To
 * answer later, pass the request to the loop as a value
 * (rt_set_timeout(loop, ms, fn, data, req, 1, NULL)): the loop roots it and
 * hands it back as a handle.  A request whose response has finished, or
 * whose connection has gone, stays a valid value; response functions on it
 * then return -EPIPE and do nothing.
 *
 * Dispatch.  When a head arrives, the application's layers are tried in
 * the order they were added: middleware (rt_app_use) whose path is a prefix
 * of the request path at a '/' boundary, routes (rt_app_route) whose method
 * and pattern match, mounted applications (rt_app_mount) under their prefix
 * (the prefix is stripped while they run, as express's req.baseUrl).  A
 * layer runs its function; the function answers, or calls rt_next (now or
 * from a later callback) to pass the request on; rt_next with an error
 * skips to the next error handler (rt_app_use_error).  When no layer is
 * left: 405 with Allow if a route matched the path with another method, the
 * methods for OPTIONS, else 404; an error nobody handled gives its status
 * (500 for errno codes) and a log line.  HEAD runs GET routes and sends no
 * body.  A request whose response has not begun within the handler timeout
 * gets 500 and a log line.
 *
 * Errors are negative errno codes, or an HTTP status (400..599) where an
 * error is what to answer.  Error-first callbacks take 0 or such a code.
 * Functions whose comment says "GC point" may collect; the rest do not.
 */
#ifndef TENURE_RT_HTTP_H
#define TENURE_RT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <tenure/rt.h>
#include <tenure/rt_http_parser.h>
#include <tenure/rt_loop.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_app_s rt_app_t;
typedef struct rt_server_s rt_server_t;
struct rt_urlencoded_opts_s; /* <tenure/rt_urlencoded.h> */
struct rt_multipart_limits_s; /* <tenure/rt_multipart.h> */

/* --- Applications ------------------------------------------------------- */

/* A layer's function: answer REQ, or call rt_next(REQ, 0 or an error). */
typedef void (*rt_http_fn)(rt_value_t *req, void *data);
/* An error handler: ERR is the error passed to rt_next (an HTTP status or a
 * negative errno).  Answer, or call rt_next(REQ, ERR) to pass it on, or
 * rt_next(REQ, 0) to recover. */
typedef void (*rt_http_error_fn)(rt_value_t *req, int err, void *data);

RT_EXTERN int rt_app_create(rt_runtime_t *rt, rt_app_t **out);
/* Frees APP and its layers (not mounted applications: they are their
 * creators').  Not while a server uses it. */
RT_EXTERN void rt_app_destroy(rt_app_t *app);

/* Middleware for every request whose path is PATH or under PATH/ (PATH NULL
 * or "/": every request).  Returns 0, -EINVAL or -ENOMEM. */
RT_EXTERN int rt_app_use(rt_app_t *app, const char *path, rt_http_fn fn,
                         void *data);
/* rt_app_use for middleware with state of its own: DATA is freed with
 * FREE_DATA when APP is destroyed (on failure it is still the caller's). */
RT_EXTERN int rt_app_use_owned(rt_app_t *app, const char *path,
                               rt_http_fn fn, void *data,
                               void (*free_data)(void *));
RT_EXTERN int rt_app_use_error(rt_app_t *app, const char *path,
                               rt_http_error_fn fn, void *data);
/* A route: METHOD ("GET", ..., or NULL for every method) and PATTERN, whose
 * segments are literals, ":name" (one segment, percent-decoded into
 * params) or a final "*" (the rest of the path, decoded, as param "0").
 * GET routes serve HEAD too.  Returns 0, -EINVAL or -ENOMEM. */
RT_EXTERN int rt_app_route(rt_app_t *app, const char *method,
                           const char *pattern, rt_http_fn fn, void *data);
#define rt_app_get(a, p, f, d) rt_app_route((a), "GET", (p), (f), (d))
#define rt_app_post(a, p, f, d) rt_app_route((a), "POST", (p), (f), (d))
#define rt_app_put(a, p, f, d) rt_app_route((a), "PUT", (p), (f), (d))
#define rt_app_delete(a, p, f, d) rt_app_route((a), "DELETE", (p), (f), (d))
/* Runs SUB for requests under PREFIX, with PREFIX stripped from the path
 * they see; when SUB has nothing left, dispatch goes on in APP. */
RT_EXTERN int rt_app_mount(rt_app_t *app, const char *prefix, rt_app_t *sub);

/* Passes the request to the next layer (ERR 0) or the next error handler.
 * Call it once per layer, now or later.  GC point (the next layer runs).
 * Returns 0, or -EPIPE when the request is over. */
RT_EXTERN int rt_next(rt_value_t *req, int err);
/* rt_next with an error and a message for the answer (copied; shown as the
 * body when no error handler answers, as express's finalhandler shows
 * err.message). */
RT_EXTERN int rt_next_error(rt_value_t *req, int err, const char *message);
/* The message of the error being handled, or NULL. */
RT_EXTERN const char *rt_req_error_message(rt_value_t req);

/* --- The request ---------------------------------------------------------- */

typedef enum rt_req_field_e {
  RT_REQ_URL,     /* string: the request target as sent */
  RT_REQ_PATH,    /* string: the path (without the query), as sent */
  RT_REQ_QUERY,   /* Map from the query string (built on first use) */
  RT_REQ_HEADERS, /* Map: lower-case name -> string (set-cookie: Array) */
  RT_REQ_PARAMS,  /* Map of the matched route's params */
  RT_REQ_COOKIES, /* Map (built on first use) */
  RT_REQ_BODY,    /* set by a body parser; undefined before */
  RT_REQ_FILES,   /* multipart: Array of file metadata Maps */
  RT_REQ_LOCALS,  /* Map for middleware */
  RT_REQ__NFIELDS
} rt_req_field_t;

/* GC point (QUERY and COOKIES are built on first use).  The field of *REQ,
 * raw; RT_NONE when the request is over. */
RT_EXTERN rt_value_t rt_req_get(rt_value_t *req, rt_req_field_t f);
/* Sets a field (BODY, FILES; the others are the server's).  Not a GC
 * point.  Returns 0, -EINVAL or -EPIPE. */
RT_EXTERN int rt_req_set(rt_value_t *req, rt_req_field_t f, rt_value_t v);
/* "GET", ... (static), or NULL when the request is over. */
RT_EXTERN const char *rt_req_method(rt_value_t req);
/* The value of header NAME (lower-case) as a string, or RT_NONE. */
RT_EXTERN rt_value_t rt_req_header(rt_value_t req, const char *name);
/* The path under the current mount point (express's req.path inside a
 * router), NUL-terminated, valid until the next GC point. */
RT_EXTERN const char *rt_req_subpath(rt_value_t req, size_t *len);
/* HTTP minor version (1.0 or 1.1), the peer's address as text. */
RT_EXTERN int rt_req_http_minor(rt_value_t req);
RT_EXTERN const char *rt_req_remote_addr(rt_value_t req);
RT_EXTERN rt_server_t *rt_req_server(rt_value_t req);
RT_EXTERN rt_runtime_t *rt_req_runtime(rt_value_t req);

/* Content negotiation: the index of the entry of TYPES ("text/html",
 * "application/json", ...) the Accept header prefers (q-values, type/
 * wildcards; no Accept header accepts the first), or -1 when none is
 * acceptable (answer 406).  Not a GC point. */
RT_EXTERN int rt_req_accepts(rt_value_t req, const char *const *types,
                             size_t ntypes);
/* True when the request's Content-Type is TYPE (parameters ignored). */
RT_EXTERN bool rt_req_is(rt_value_t req, const char *type);
/* The charset parameter of the Content-Type into BUF, or false. */
RT_EXTERN bool rt_req_charset(rt_value_t req, char *buf, size_t cap);

/* Reading the body.  FN gets pieces as they arrive (STATUS 0), then one
 * call with STATUS RT_BODY_END (DATA NULL), or one with a negative code
 * (-ETIMEDOUT, -ECONNRESET, -EMSGSIZE over the server's body limit,
 * -EPROTO bad framing, -ECANCELED the response ended first) after which nothing more comes.  Pieces are valid
 * during the call only.  With Expect: 100-continue the server sends
 * "100 Continue" when reading starts.  A request whose body nobody reads
 * has it discarded once the response ends.  Returns 0, -EALREADY (read
 * already) or -EPIPE. */
#define RT_BODY_END 1
typedef void (*rt_body_fn)(rt_value_t *req, const char *data, size_t len,
                           int status, void *ud);
RT_EXTERN int rt_req_read(rt_value_t *req, rt_body_fn fn, void *ud);
/* Flow control for a reader that cannot keep up (a disk): no piece is
 * delivered between pause and resume. */
RT_EXTERN void rt_req_pause(rt_value_t *req);
RT_EXTERN void rt_req_resume(rt_value_t *req);

/* --- The response ----------------------------------------------------------- */

/* Not GC points.  Return 0, -EINVAL (CR/LF or a non-token name, a status
 * outside 100..999), -EALREADY (the head was sent) or -EPIPE. */
RT_EXTERN int rt_res_status(rt_value_t *req, int status);
RT_EXTERN int rt_res_set_header(rt_value_t *req, const char *name,
                                const char *value);
RT_EXTERN int rt_res_append_header(rt_value_t *req, const char *name,
                                   const char *value);
RT_EXTERN int rt_res_remove_header(rt_value_t *req, const char *name);
/* The value of response header NAME (first), or NULL. */
RT_EXTERN const char *rt_res_get_header(rt_value_t *req, const char *name);
RT_EXTERN int rt_res_get_status(rt_value_t *req);
RT_EXTERN bool rt_res_headers_sent(rt_value_t *req);

/* Whole responses, with Content-Length; each ends the response.  _send
 * copies bytes, _send_string encodes the string on every call, _send_buffer
 * sends a Buffer's bytes as they are (large ones without a copy, keeping
 * the Buffer alive until written: the pre-encoded case), _json serializes
 * V.  Content-Type is set when not set already (text/plain; charset=utf-8
 * for bytes and strings, application/octet-stream for Buffers,
 * application/json).  Return 0, -EPIPE, -ENOMEM, or -EINVAL. */
RT_EXTERN int rt_res_send(rt_value_t *req, const void *p, size_t n);
RT_EXTERN int rt_res_send_string(rt_value_t *req, const rt_value_t *str);
RT_EXTERN int rt_res_send_buffer(rt_value_t *req, const rt_value_t *buf);
RT_EXTERN int rt_res_json(rt_value_t *req, const rt_value_t *v);
/* TEXT (N bytes), JSON already written (a cached or pre-encoded value), as
 * rt_res_json would send it; not checked. */
RT_EXTERN int rt_res_json_text(rt_value_t *req, const char *text, size_t n);
/* STATUS with its reason phrase as a text body. */
RT_EXTERN int rt_res_send_status(rt_value_t *req, int status);

/* Streaming: a body of unknown length (chunked in HTTP/1.1; in 1.0 the end
 * of the connection ends it).  _write returns 0 (go on), 1 (past the high
 * water mark: wait for the drain callback before writing more) or -EPIPE.
 * _end ends the response.  The drain callback runs once the queued bytes
 * have fallen below the low water mark. */
typedef void (*rt_drain_fn)(rt_value_t *req, void *data);
RT_EXTERN int rt_res_write(rt_value_t *req, const void *p, size_t n);
RT_EXTERN int rt_res_on_drain(rt_value_t *req, rt_drain_fn fn, void *data);
RT_EXTERN int rt_res_end(rt_value_t *req);

/* A file: Content-Length, Last-Modified, a strong ETag from size and mtime
 * (as nginx's), the conditional requests of RFC 9110 13.2.2 in its order
 * (If-Match, compared strongly, else If-Unmodified-Since: 412 when false;
 * If-None-Match, compared weakly, else If-Modified-Since: 304), Range (one
 * range: 206, else 416; If-Range by the tag or the date), Content-Type
 * from the extension unless set; the bytes go with
 * sendfile(2).  Returns 0, or -ENOENT / -EISDIR / -EACCES (nothing sent:
 * the caller answers) or -EPIPE. */
RT_EXTERN int rt_res_send_file(rt_value_t *req, const char *path);
/* The MIME type for a file name's extension (application/octet-stream). */
RT_EXTERN const char *rt_mime_type(const char *name);

/* Hooks: ON_HEAD runs just before the head is written (headers may still be
 * changed: response timing), ON_FINISH once the request is over, however
 * it ended (answered, or its connection gone before: rt_res_headers_sent
 * and the status tell; access logs, freeing per-request state).  At most 4 each per request.  Returns 0, -ENOSPC or -EPIPE. */
RT_EXTERN int rt_res_on_head(rt_value_t *req, rt_drain_fn fn, void *data);
RT_EXTERN int rt_res_on_finish(rt_value_t *req, rt_drain_fn fn, void *data);
/* Holding a response: between rt_res_hold and rt_res_release nothing of
 * this response goes out (its head and body are kept), so a middleware can
 * finish asynchronous work the response depends on first (a session saved
 * before the headers that carry its cookie).  Release with STATUS 0 sends
 * it as it is; a status (503) replaces it with that error and MESSAGE, as
 * nothing of it was sent.  Hold from an on_head hook or before answering.
 * Return 0, -EALREADY (held already), -EINVAL (not held) or -EPIPE. */
RT_EXTERN int rt_res_hold(rt_value_t *req);
RT_EXTERN int rt_res_release(rt_value_t *req, int status,
                             const char *message);
/* Body bytes sent so far, and milliseconds since the request's head. */
RT_EXTERN uint64_t rt_res_bytes(rt_value_t *req);
RT_EXTERN double rt_req_elapsed_ms(rt_value_t *req);

/* --- Servers -------------------------------------------------------------- */

typedef struct rt_server_options_s {
  rt_http_limits_t limits;     /* head, URL, header count, body */
  uint64_t headers_timeout_ms; /* 408 (node: 60 s) */
  uint64_t request_timeout_ms; /* whole request received, 408 (300 s) */
  uint64_t keep_alive_timeout_ms; /* idle connection closed (5 s) */
  uint64_t handler_timeout_ms; /* no response begun: 500 (120 s; 0 off) */
  uint64_t drain_timeout_ms;   /* graceful stop: in-flight bound (10 s) */
  size_t high_water_mark;      /* queued response bytes (64 KB) */
  int backlog;                 /* listen backlog (511, as node's) */
  FILE *log;                   /* error log lines (stderr; NULL: off) */
} rt_server_options_t;

RT_EXTERN void rt_server_options_init(rt_server_options_t *o);

/* A server for APP on LOOP.  O may be NULL (defaults).  Returns 0, -EINVAL
 * or -ENOMEM. */
RT_EXTERN int rt_server_create(rt_loop_t *loop, rt_app_t *app,
                               const rt_server_options_t *o,
                               rt_server_t **out);
/* Binds and listens on HOST:PORT (PORT 0: any free port).  Returns 0 or a
 * negative errno (-EADDRINUSE, ...). */
RT_EXTERN int rt_server_listen(rt_server_t *s, const char *host, int port);
/* Serves FD, a connected stream socket (TCP, or one end of a Unix
 * socketpair: tests and fuzzers), as an accepted connection; the server
 * owns FD from here on, also on failure.  Returns 0 or a negative errno. */
RT_EXTERN int rt_server_adopt(rt_server_t *s, int fd);
/* The port listened on. */
RT_EXTERN int rt_server_port(const rt_server_t *s);
/* Graceful stop: stop accepting, close idle connections now, let requests
 * in flight finish (then close their connections), force-close what is
 * left after the drain timeout, and call DONE (may be NULL) when every
 * connection is closed.  Idempotent. */
typedef void (*rt_server_done_fn)(rt_server_t *s, void *data);
RT_EXTERN void rt_server_close(rt_server_t *s, rt_server_done_fn done,
                               void *data);
/* Stops gracefully on SIGTERM and SIGINT (libuv signal handles), then
 * stops the loop. */
RT_EXTERN int rt_server_handle_signals(rt_server_t *s);
/* Frees S; only after rt_server_close's DONE ran (or it never listened). */
RT_EXTERN void rt_server_destroy(rt_server_t *s);

typedef struct rt_server_stats_s {
  uint64_t connections;   /* open now */
  uint64_t accepted;      /* in total */
  uint64_t requests;      /* heads dispatched */
  uint64_t responses;     /* finished */
  uint64_t errors;        /* 4xx/5xx answered by the server itself */
  uint64_t timeouts;      /* connections cut by a timeout */
} rt_server_stats_t;
RT_EXTERN void rt_server_stats(const rt_server_t *s, rt_server_stats_t *out);

/* --- Built-in middleware ---------------------------------------------------- */

/* Access log in the combined log format, one line per response to OUT. */
RT_EXTERN int rt_mw_access_log(rt_app_t *app, FILE *out);
/* X-Response-Time: "<ms>ms" on every response. */
RT_EXTERN int rt_mw_response_time(rt_app_t *app);
/* Static files from DIR under PREFIX ("/files"): GET and HEAD only, no
 * path outside DIR (.. segments, encoded slashes and NULs refused with
 * 400/403), index.html for directories, MIME types by extension; a missing
 * file passes on (rt_next).  DIR is copied. */
RT_EXTERN int rt_mw_static(rt_app_t *app, const char *prefix,
                           const char *dir);

/* Body parsers, as express's body-parser: each acts on requests whose
 * Content-Type it takes (others pass on untouched), reads the body up to
 * LIMIT bytes (0: 100 KB; a Content-Length over it is refused before
 * reading) and stores the value as the request's body.  The charset
 * parameter is honoured (any charset iconv knows; an unknown one is 415).
 * Errors go to rt_next_error: 400 for malformed input (JSON: the offset
 * and what was expected), 413 over the limit, 415 for a charset.  json
 * takes application/json and *+json; urlencoded takes
 * application/x-www-form-urlencoded (O: keys, nesting; NULL defaults);
 * text takes text/plain (a string). */
RT_EXTERN int rt_mw_json(rt_app_t *app, const char *path, uint64_t limit);
RT_EXTERN int rt_mw_urlencoded(rt_app_t *app, const char *path,
                               uint64_t limit,
                               const struct rt_urlencoded_opts_s *o);
RT_EXTERN int rt_mw_text(rt_app_t *app, const char *path, uint64_t limit);
/* multipart/form-data, streamed: fields become the body (a Map), files go
 * to UPLOAD_DIR as they arrive and their metadata (field, originalName,
 * path, size, type, sha256) to RT_REQ_FILES; LIMITS (NULL: defaults) as
 * rt_multipart.h says.  A request that fails half-way leaves no file. */
RT_EXTERN int rt_mw_multipart(rt_app_t *app, const char *path,
                              const char *upload_dir,
                              const struct rt_multipart_limits_s *limits);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_HTTP_H */
