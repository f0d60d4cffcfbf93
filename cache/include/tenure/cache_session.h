/* cache_session.h -- sessions, as express-session does them, on any store
 * of cache.h, plugged into an application as middleware.
 *
 * The cookie (name "sid" by default) carries a 128-bit id from getrandom in
 * base64url, signed with HMAC-SHA256 under the first secret (any secret of
 * the list is accepted: rotation); HttpOnly and SameSite=Lax by default,
 * Secure when asked or, behind a trusted proxy, when X-Forwarded-Proto says
 * https.  Expiry is rolling and never past the absolute lifetime.  The
 * cookie's Max-Age and the store's TTL are renewed together: on every
 * request when renew_after_ms is 0 (express-session's rolling: true), else
 * on the first request at least renew_after_ms after the last renewal
 * (default: half of max_age), through a save that records when.  So an
 * active session never expires, an idle one ends between max_age -
 * renew_after_ms and max_age after its last request, and a session read
 * within its half-life costs one store read and sends no cookie (as
 * express-session with rolling: false answers).
 *
 * Saving.  The session's data is a Map (cache_session_data).  A session
 * is created only when something is stored in it, saved only when its data
 * changed, and otherwise touched.  A changed session is saved before the
 * response's head goes out (the response is held until the store answers),
 * so a redirect never races its save.  A save merges per key: the keys this
 * request changed (or removed) are applied to what the store holds now, so
 * two concurrent requests of one session changing different keys both
 * keep their change.  A store that fails or times out turns the answer
 * into a 503 with a log line.
 */
#ifndef TENURE_CACHE_SESSION_H
#define TENURE_CACHE_SESSION_H

#include <tenure/cache.h>
#include <tenure/rt_cookie.h>
#include <tenure/rt_http.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cache_session_opts_s {
  const char *name;             /* the cookie ("sid") */
  const char *const *secrets;   /* at least one; sign with the first */
  size_t nsecrets;
  uint64_t max_age_ms;          /* idle lifetime (20 min) */
  uint64_t absolute_ms;         /* whatever the activity (24 h; 0: none) */
  uint64_t renew_after_ms;      /* renewal period (HALF; 0: always) */
  bool secure;                  /* always Secure */
  bool trust_proxy;             /* X-Forwarded-Proto: https makes it Secure */
  rt_same_site_t same_site;     /* RT_SAME_SITE_LAX */
  const char *prefix;           /* store keys: prefix + id ("sess:") */
  FILE *log;                    /* store failures (stderr) */
} cache_session_opts_t;

/* renew_after_ms: half of max_age, whatever max_age is set to. */
#define CACHE_SESSION_RENEW_HALF UINT64_MAX

CACHE_EXTERN void cache_session_opts_init(cache_session_opts_t *o);

/* Adds the session middleware to APP (for every path).  The options and
 * the secrets are copied.  Returns 0, -EINVAL (no secret, or a renewal
 * period longer than max_age) or -ENOMEM. */
CACHE_EXTERN int cache_session(rt_app_t *app, cache_store_t *store,
                               const cache_session_opts_t *o);

/* GC point.  The session's data (a Map), created empty when the request
 * has none: storing into it makes a session.  RT_NONE outside the
 * middleware. */
CACHE_EXTERN rt_value_t cache_session_data(rt_value_t *req);
/* True when the request came with a live session. */
CACHE_EXTERN bool cache_session_exists(rt_value_t req);
/* A new id for the session (login): the old one is destroyed in the store
 * when the response is saved; KEEP keeps the data, else it is cleared. */
CACHE_EXTERN int cache_session_regenerate(rt_value_t *req, bool keep);
/* Ends the session (logout): removed from the store, cookie cleared. */
CACHE_EXTERN int cache_session_destroy(rt_value_t *req);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_CACHE_SESSION_H */
