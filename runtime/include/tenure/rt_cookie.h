/* rt_cookie.h -- HTTP cookies: parsing the Cookie header, serializing
 * Set-Cookie, and signed values (HMAC-SHA256, as express's
 * cookie-signature), with a list of secrets for rotation.
 *
 * Parsing follows the cookie package express uses: pairs split on ';', the
 * name and value trimmed, a value in double quotes unquoted, percent-escapes
 * decoded to bytes (a malformed escape leaves the value as written), a pair without
 * '=' or with an empty name skipped, and the first of several pairs with one
 * name kept.
 */
#ifndef TENURE_RT_COOKIE_H
#define TENURE_RT_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Calls FN for each well-formed pair of the Cookie header HDR (LEN bytes),
 * in order, with the name and the decoded value (valid during the call;
 * the value is not NUL-terminated).  Stops early when FN returns non-zero,
 * and returns that.  Not a GC point unless FN is. */
typedef int (*rt_cookie_fn)(void *data, const char *name, size_t name_len,
                            const char *value, size_t value_len);
RT_EXTERN int rt_cookie_each(const char *hdr, size_t len, rt_cookie_fn fn,
                             void *data);

/* GC point.  The pairs as a Map of strings (the first of duplicate names
 * wins; values that are not UTF-8 are decoded with U+FFFD).  RT_NONE when
 * out of memory. */
RT_EXTERN rt_value_t rt_cookie_parse(rt_runtime_t *rt, const char *hdr,
                                     size_t len);

typedef enum rt_same_site_e {
  RT_SAME_SITE_UNSET = 0,
  RT_SAME_SITE_STRICT,
  RT_SAME_SITE_LAX,
  RT_SAME_SITE_NONE /* forces Secure, as browsers require */
} rt_same_site_t;

typedef struct rt_cookie_opts_s {
  const char *path;   /* NULL: none */
  const char *domain; /* NULL: none */
  int64_t expires;    /* Unix seconds; 0: none (a session cookie) */
  int64_t max_age;    /* seconds; < 0: none; 0 deletes the cookie */
  bool http_only;
  bool secure;
  rt_same_site_t same_site;
} rt_cookie_opts_t;

/* No attributes: max_age -1, everything else off. */
RT_EXTERN void rt_cookie_opts_init(rt_cookie_opts_t *o);

/* Writes a Set-Cookie value "NAME=VALUE; Path=...; ..." to BUF (CAP bytes,
 * NUL-terminated).  VALUE is percent-encoded where RFC 6265's cookie-octet
 * does not allow it.  Returns its length, -EINVAL (a name that is not an
 * RFC 7230 token, or a path or domain with CR, LF, ';' or a control byte),
 * or -ENOSPC when CAP is too small. */
RT_EXTERN int rt_cookie_serialize(char *buf, size_t cap, const char *name,
                                  const char *value, size_t value_len,
                                  const rt_cookie_opts_t *o);

/* The signed form of VALUE: "VALUE.SIG", SIG the HMAC-SHA256 of VALUE under
 * SECRET in base64 without padding (express's cookie-signature).  Writes it
 * to BUF (NUL-terminated); returns its length or -ENOSPC / -EINVAL. */
RT_EXTERN int rt_cookie_sign(char *buf, size_t cap, const char *value,
                             size_t value_len, const char *secret);

/* Checks SIGNED ("VALUE.SIG") against each of the NSECRETS secrets (sign
 * with the first, accept any: rotation), comparing in constant time.
 * Returns the length of VALUE (a prefix of SIGNED) when one matches, or
 * -EACCES. */
RT_EXTERN int rt_cookie_unsign(const char *signed_value, size_t len,
                               const char *const *secrets, size_t nsecrets);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_COOKIE_H */
