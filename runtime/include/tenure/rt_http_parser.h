/* rt_http_parser.h -- a streaming HTTP/1.1 request parser: node's llhttp,
 * strict (never its lenient flags), plus the checks RFC 9112 asks for that
 * llhttp leaves to its user, and the size limits of a server.
 *
 * Bytes go in as they arrive, split anywhere.  The parser stops after each
 * complete request (rt_http_parser_feed returns 1 and how much it used), so
 * a server answers pipelined requests in order and reads the next one only
 * when it is ready.  A request that breaks the framing rules or a limit is
 * an error with the HTTP status to answer and a reason; after an error the
 * connection must be closed (the stream is out of step).
 *
 * Checks beyond llhttp's: obs-fold (400: llhttp 8.1 accepts it), a
 * Transfer-Encoding other than exactly "chunked"
 * (501), Transfer-Encoding in an HTTP/1.0 request (400), Content-Length with
 * Transfer-Encoding (400), a missing or repeated Host in HTTP/1.1 (400), a
 * major version other than 1 (505).  llhttp itself refuses, with 400: bad
 * or overflowing chunk sizes, several differing Content-Lengths, a
 * Content-Length that is not 1*DIGIT, bare CR, whitespace before
 * the colon, non-token header names, NUL bytes.
 */
#ifndef TENURE_RT_HTTP_PARSER_H
#define TENURE_RT_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_http_limits_s {
  size_t max_head_bytes; /* request line + headers; 431 (node: 16 KB) */
  size_t max_url_bytes;  /* 414 */
  size_t max_headers;    /* 431 */
  uint64_t max_body_bytes; /* 413, before reading when Content-Length says */
} rt_http_limits_t;

/* Node's defaults: 16 KB of head, 8 KB of URL, 100 headers, 1 MB of body. */
RT_EXTERN void rt_http_limits_init(rt_http_limits_t *lim);

typedef struct rt_http_header_s {
  const char *name; /* lower-cased */
  size_t name_len;
  const char *value; /* surrounding whitespace removed */
  size_t value_len;
} rt_http_header_t;

/* One request's head, valid during the on_head callback only. */
typedef struct rt_http_head_s {
  const char *method; /* "GET", ... (NUL-terminated, static) */
  const char *url;
  size_t url_len;
  int major, minor;
  const rt_http_header_t *headers;
  size_t nheaders;
  int64_t content_length; /* -1 when absent */
  bool chunked;
  bool keep_alive;      /* HTTP/1.1 default, 1.0 with keep-alive, no close */
  bool expect_continue; /* Expect: 100-continue */
} rt_http_head_t;

typedef struct rt_http_parser_cb_s {
  /* The head is complete.  Return 0, RT_HTTP_PAUSE (feed stops after the
   * head and returns 2: the body is parsed by the next feed), or an HTTP
   * status (4xx/5xx) to refuse the request: the parser then fails with
   * it. */
  int (*on_head)(void *data, const rt_http_head_t *head);
  /* A piece of the body (chunked bodies already decoded).  Return 0 or a
   * status, as on_head. */
  int (*on_body)(void *data, const char *at, size_t len);
  /* The request is complete. */
  void (*on_complete)(void *data);
} rt_http_parser_cb_t;

#define RT_HTTP_PAUSE (-1)

typedef struct rt_http_parser_s rt_http_parser_t;

/* LIM may be NULL for the defaults.  Returns 0, -EINVAL or -ENOMEM. */
RT_EXTERN int rt_http_parser_create(const rt_http_limits_t *lim,
                                    const rt_http_parser_cb_t *cb, void *data,
                                    rt_http_parser_t **out);
RT_EXTERN void rt_http_parser_destroy(rt_http_parser_t *p);
/* Makes P as new (limits kept, its buffers reused) with callback data
 * DATA: a server pools parsers between requests. */
RT_EXTERN void rt_http_parser_reset(rt_http_parser_t *p, void *data);

/* Parses up to LEN bytes.  Returns 0 (all used, the request goes on), 1 (a
 * request completed after *USED bytes: feed the rest when ready for the
 * next one), 2 (on_head asked to pause: its head ended after *USED bytes;
 * feed again, with 0 bytes if need be, to go on with its body), or -EPROTO (a bad request: rt_http_parser_error says what to
 * answer; close the connection after answering).  Not a GC point unless a
 * callback is one. */
RT_EXTERN int rt_http_parser_feed(rt_http_parser_t *p, const char *data,
                                  size_t len, size_t *used);

/* The connection ended (EOF): 0 when it ended between requests, -EPROTO
 * when in the middle of one (status 400). */
RT_EXTERN int rt_http_parser_eof(rt_http_parser_t *p);

/* True between the first byte of a request and its completion. */
RT_EXTERN bool rt_http_parser_in_request(const rt_http_parser_t *p);

/* After -EPROTO: the status to answer (400, 413, 414, 431, 501, 505) and a
 * short reason (static). */
RT_EXTERN int rt_http_parser_error(const rt_http_parser_t *p,
                                   const char **reason);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_HTTP_PARSER_H */
