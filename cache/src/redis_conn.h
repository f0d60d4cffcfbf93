/* redis_conn.h -- one connection to one Redis server, on hiredis's
 * asynchronous API attached to the loop's libuv: what redis:// (one
 * connection) and redis-cluster:// (one per node) are built on.  Internal to
 * cache/.
 *
 * A connection starts connecting when opened and again after each loss,
 * backing off from 100 ms, doubling to 5 s, with jitter.  After each
 * connect, AUTH (a password) and SELECT (a db other than 0) go first;
 * requests made meanwhile wait in the connection's queue and are sent once
 * both succeeded, so none runs unauthenticated or in the wrong db.
 * Requests are pipelined.
 *
 * INV(once): a request accepted by cache__rconn_send is answered exactly
 * once through its callback, always from a loop callback (never inside
 * cache__rconn_send): by its reply, by its deadline (-ETIMEDOUT; a late
 * reply is dropped), by the connection dropping (-ECONNRESET once sent,
 * -ENOTCONN before), by a refused handshake (-EACCES for AUTH, -EINVAL for
 * SELECT), or by cache__rconn_close (-ECANCELED, inside that call).
 *
 * The socket's poll handle and the reconnect timer are unref'd: an idle
 * connection never keeps the loop alive; the deadline timer runs (ref'd)
 * only while requests are unanswered (quiet ones aside: see
 * cache__rconn_send_quiet).  See cache/DESIGN.md, redis://.
 */
#ifndef TENURE_CACHE_REDIS_CONN_H
#define TENURE_CACHE_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include <tenure/rt_loop.h>

/* --- Commands ------------------------------------------------------------- */

/* The most commands one request sends back to back (PERSIST then EXISTS). */
#define CACHE__RCMD_MAX_PARTS 2

/* A request's commands, formatted in RESP one after the other in BUF (with
 * a NUL after them, not counted in LEN: redis_conn.c's INV(nul)).  Only
 * the last one's reply answers the request; those before it are sent with
 * no callback and their replies dropped. */
typedef struct cache__rcmd_s {
  char *buf;
  size_t len, cap;
  size_t end[CACHE__RCMD_MAX_PARTS]; /* where each command ends in BUF */
  int nparts;
} cache__rcmd_t;

/* Appends one command (ARGC arguments ARGV of LEN bytes each) to M, which
 * starts zeroed.  Returns 0, -E2BIG (more than CACHE__RCMD_MAX_PARTS) or
 * -ENOMEM (M unchanged). */
int cache__rcmd_add(cache__rcmd_t *m, int argc, const char *const *argv,
                    const size_t *len);
void cache__rcmd_free(cache__rcmd_t *m);

/* --- Connections ---------------------------------------------------------- */

typedef struct cache__rconn_s cache__rconn_t;

enum {
  CACHE__RCONN_DOWN,       /* lost or refused; a reconnect is scheduled */
  CACHE__RCONN_CONNECTING, /* connecting, or the handshake is under way */
  CACHE__RCONN_READY       /* requests go out as they are made */
};

/* A request's answer: ERR 0 and the server's REPLY (an error reply too;
 * valid only during the call), or ERR < 0 (see INV(once)) and REPLY NULL.
 * On ERR < 0 a message is in the connection's error buffer. */
typedef void (*cache__rconn_fn)(void *data, int err, const redisReply *reply);

typedef struct cache__rconn_config_s {
  const char *host; /* copied */
  int port;
  const char *password; /* AUTH after each connect; NULL: none (copied) */
  int db;               /* SELECT after each connect; 0: none */
  uint64_t timeout_ms;  /* what a timeout's message says was waited */
  const char *name;     /* messages start with it ("redis store"; kept) */
  char *error;          /* where messages go (a store's error; kept) */
  size_t errlen;
  /* Optional: a connect failed or the connection was lost (from a loop
   * callback, after the requests it failed were answered; it must not
   * close the connection). */
  void (*on_down)(cache__rconn_t *c, void *data);
  /* Optional: the handshake after a connect succeeded (from a loop
   * callback, before the requests that waited for it are sent, so the
   * requests it sends go first; it must not close the connection). */
  void (*on_ready)(cache__rconn_t *c, void *data);
  void *data;
} cache__rconn_config_t;

/* Opens a connection on LOOP and starts connecting (the attempt's outcome
 * comes later, from the loop).  Returns 0, or -ENOMEM. */
int cache__rconn_open(rt_loop_t *loop, const cache__rconn_config_t *cfg,
                      cache__rconn_t **out);

/* Sends CMD (copied when it has to wait for the handshake), each of its
 * commands preceded by ASKING when ASKING is set (a Redis Cluster ASK
 * redirection), to be answered by DEADLINE (the loop's uv_now, ms).
 * Returns 0: FN(DATA, ...) will be called exactly once, later.  Or it
 * returns an error and FN is never called: -ENOTCONN (the connection is
 * down, a message says why), -ECANCELED (closed), -ENOMEM, or -EIO
 * (hiredis refused it). */
int cache__rconn_send(cache__rconn_t *c, const cache__rcmd_t *cmd, bool asking,
                      uint64_t deadline, cache__rconn_fn fn, void *data);
/* As cache__rconn_send (no ASKING), for a request nobody waits for (a
 * stats sample): while only such requests are unanswered, the deadline
 * timer is unref'd and does not keep the loop alive.  It is still answered
 * exactly once (INV(once)), -ECANCELED at close included. */
int cache__rconn_send_quiet(cache__rconn_t *c, const cache__rcmd_t *cmd,
                            uint64_t deadline, cache__rconn_fn fn, void *data);

/* Subscribe mode (a connection that does nothing else).  Sends SUBSCRIBE
 * CHANNEL on the ready connection C; FN(DATA, REPLY) then gets every push of
 * this connection: the subscribe confirmation (["subscribe", channel, n])
 * and each message (["message", channel, payload]), from a loop callback,
 * REPLY valid only during the call.  It stops when the connection is lost
 * (on_down says so) and is not renewed by a reconnect: subscribe again from
 * on_ready.  Returns 0, -ENOTCONN (not ready), -ECANCELED or -EIO. */
typedef void (*cache__rconn_push_fn)(void *data, const redisReply *reply);
int cache__rconn_subscribe(cache__rconn_t *c, const char *channel,
                           cache__rconn_push_fn fn, void *data);

/* Closes C: every unanswered request is answered -ECANCELED inside this
 * call, then no callback of C's runs again.  Its memory goes once hiredis
 * and libuv have let go of it. */
void cache__rconn_close(cache__rconn_t *c);

int cache__rconn_state(const cache__rconn_t *c);
/* Requests accepted and not yet answered. */
size_t cache__rconn_pending(const cache__rconn_t *c);
/* Connects that succeeded after the first one. */
uint64_t cache__rconn_reconnects(const cache__rconn_t *c);
const char *cache__rconn_host(const cache__rconn_t *c);
int cache__rconn_port(const cache__rconn_t *c);
/* Why the connection is down ("" when it is not). */
const char *cache__rconn_why(const cache__rconn_t *c);

#endif
