/* redis_cluster.c -- redis-cluster://host:port,host:port: a Redis Cluster,
 * through one connection per node (redis_conn.h), opened as the slot map
 * names the nodes.
 *
 *   redis-cluster://[:password@]host[:port][,host[:port]...]
 *                   [?password=P&timeout-ms=N&refresh-ms=N]
 *
 * The listed nodes are seeds: the slot map (CLUSTER SLOTS: which master
 * serves each of the 16384 slots) is asked of them first, then of the other
 * known nodes.  A key goes to the master of its slot (redis_slot.h: CRC16,
 * hash tags), on that node's connection, pipelined with the others there.
 *
 * Redirections and retries (each counts one of MAX_REDIRECTS re-sends):
 *   - MOVED slot host:port: the slot's entry is changed at once, the
 *     operation re-sent there, and a refresh of the whole map requested;
 *   - ASK slot host:port: re-sent once to that node, behind ASKING, the map
 *     left as it is (the slot is being migrated);
 *   - TRYAGAIN, CLUSTERDOWN: re-sent after RETRY_DELAY_MS (CLUSTERDOWN also
 *     requests a refresh), else answered -EAGAIN with the server's words;
 *   - the node's connection down (refused at once, or lost with the
 *     operation unanswered: the commands are idempotent, so re-sending one
 *     that may have run is safe), or no node known for the slot: the
 *     operation waits for the next refresh, once, then is re-sent where the
 *     map says, or answered -ENOTCONN (-ECONNRESET for one that was lost)
 *     with a message naming the node.
 * More than MAX_REDIRECTS re-sends answer -ELOOP.
 *
 * INV(once): an operation is in exactly one place until it is answered: a
 * node connection's request (answered once by it, redis_conn.h), or this
 * store's waiting list (answered or re-sent from its timer or a refresh's
 * end).  It keeps the deadline set at its call (timeout-ms) through every
 * re-send: connections time out a request at that deadline, and the
 * waiting list's timer fires for the earliest deadline or retry.
 *
 * Refresh policy: on MOVED, on CLUSTERDOWN, when a mapped node's connection
 * is lost or refused, when a node lets an operation time out (a master
 * that stopped answering without dropping its connection, paused or cut
 * off, is failed over by the cluster, and only the map says so), when an
 * operation finds no usable node, and every refresh-ms (default
 * PERIODIC_REFRESH_MS, as ioredis's slotsRefreshInterval; 0: never), so
 * that a topology changed with no traffic (a failover, a reshard) is known
 * before an operation meets it; at most one per REFRESH_INTERVAL_MS, never
 * two at once (one asked for during a refresh runs after it).  A refresh runs from its timer, never inside a
 * call.  It asks one node at a time, in order: seeds, then the others
 * (skipping those whose connection is down), until one answers.  After it,
 * connections to nodes no longer in the map that have nothing pending are
 * closed.
 *
 * entries and bytes are a sample (cache.h): DBSIZE and INFO memory on
 * every master of the slot map, quietly, summed; it fails (the figures
 * stay) when one of them is down or does not answer.  The first is taken
 * once the first map has come (redis_op.h, INV(sample)).
 *
 * The refresh and sample timers are unref'd; the waiting list's timer runs
 * (ref'd) only while operations wait: an idle store never keeps the loop
 * alive.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <tenure/cache.h>

#include "redis_conn.h"
#include "redis_op.h"
#include "redis_slot.h"

#define MAX_REDIRECTS 5         /* re-sends of one operation, then -ELOOP */
#define REFRESH_INTERVAL_MS 100 /* at most one slot-map refresh per this */
#define PERIODIC_REFRESH_MS 5000 /* refresh-ms's default */
#define RETRY_DELAY_MS 50       /* after TRYAGAIN or CLUSTERDOWN */
#define NO_NODE UINT16_MAX      /* a slot no known master serves */
#define MAX_NODES 4096          /* node indexes stay below NO_NODE */

typedef struct cluster_s cluster_t;

typedef struct node_s {
  cluster_t *cl;
  char host[256];
  int port;
  bool seed;   /* listed in the URL: kept, and asked for the map first */
  bool mapped; /* serves slots in the map */
  cache__rconn_t *conn; /* opened when first needed */
} node_t;

typedef struct op_s {
  cache__rop_t rop;         /* first: the shared operation */
  struct op_s *prev, *next; /* the waiting list */
  uint64_t deadline;        /* uv_now ms, from the call */
  uint64_t retry_at;        /* waiting: when to re-send; 0: a refresh */
  unsigned slot;
  uint16_t node;     /* where the last attempt went */
  uint16_t ask_node; /* the next attempt's ASK target, or NO_NODE */
  uint8_t redirects; /* re-sends so far */
  bool refreshed;    /* it waited for a refresh already */
} op_t;

struct cluster_s {
  cache__rstore_t s;
  char *password;
  uint64_t timeout_ms;
  node_t **nodes; /* seeds first; NULL entries are free */
  size_t nnodes, cap, nseeds;
  uint16_t slots[CACHE__REDIS_SLOTS]; /* node index per slot, or NO_NODE */
  bool have_map;
  op_t *wait_head, *wait_tail; /* waiting operations */
  uv_timer_t wake;             /* the waiting list's earliest deadline/retry */
  uint64_t wake_at;            /* when it is armed for */
  uv_timer_t refresh;          /* unref'd */
  uv_timer_t periodic;         /* unref'd; every refresh_ms, if not 0 */
  uint64_t refresh_ms;
  bool refreshing, refresh_again, ever_refreshed;
  size_t refresh_next;      /* the next node to ask */
  uint64_t refresh_started; /* uv_now ms */
  cache__rcmd_t slots_cmd;  /* CLUSTER SLOTS */
  uint64_t old_reconnects;  /* of connections since closed */
  char why[160];            /* why the last refresh found no map */
  int why_err;              /* and its code: -EACCES, or -ENOTCONN */
};

static void dispatch(cluster_t *cl, op_t *op, bool in_call);
static void request_refresh(cluster_t *cl);
static void on_answer(void *data, int err, const redisReply *rep);

/* --- Nodes ---------------------------------------------------------------- */

static uint16_t node_find(const cluster_t *cl, const char *host, size_t hl,
                          int port) {
  for (size_t i = 0; i < cl->nnodes; i++) {
    const node_t *n = cl->nodes[i];
    if (n != NULL && n->port == port && strlen(n->host) == hl &&
        memcmp(n->host, host, hl) == 0)
      return (uint16_t)i;
  }
  return NO_NODE;
}

/* The index of HOST (HL bytes):PORT, added if new; NO_NODE when out of
 * memory or room. */
static uint16_t node_get(cluster_t *cl, const char *host, size_t hl, int port) {
  uint16_t i = node_find(cl, host, hl, port);
  if (i != NO_NODE)
    return i;
  if (hl >= sizeof cl->nodes[0]->host)
    return NO_NODE;
  size_t at = cl->nnodes;
  for (size_t j = cl->nseeds; j < cl->nnodes; j++)
    if (cl->nodes[j] == NULL) {
      at = j;
      break;
    }
  if (at == cl->nnodes) {
    if (cl->nnodes == MAX_NODES)
      return NO_NODE;
    if (cl->nnodes == cl->cap) {
      size_t cap = cl->cap != 0 ? cl->cap * 2 : 8;
      node_t **nodes = realloc(cl->nodes, cap * sizeof *nodes);
      if (nodes == NULL)
        return NO_NODE;
      cl->nodes = nodes;
      cl->cap = cap;
    }
    cl->nodes[cl->nnodes++] = NULL;
  }
  node_t *n = calloc(1, sizeof *n);
  if (n == NULL)
    return NO_NODE;
  n->cl = cl;
  memcpy(n->host, host, hl);
  n->host[hl] = '\0';
  n->port = port;
  cl->nodes[at] = n;
  return (uint16_t)at;
}

static void on_node_down(cache__rconn_t *c, void *data) {
  node_t *n = data;
  (void)c;
  if (n->mapped)
    request_refresh(n->cl); /* a failover may have moved its slots */
}

/* N's connection, opened when first needed; NULL when out of memory. */
static cache__rconn_t *node_conn(cluster_t *cl, node_t *n) {
  if (n->conn == NULL) {
    cache__rconn_config_t cfg = {.host = n->host,
                                 .port = n->port,
                                 .password = cl->password,
                                 .timeout_ms = cl->timeout_ms,
                                 .name = cl->s.name,
                                 .error = cl->s.base.error,
                                 .errlen = sizeof cl->s.base.error,
                                 .on_down = on_node_down,
                                 .data = n};
    if (cache__rconn_open(cl->s.base.loop, &cfg, &n->conn) < 0)
      n->conn = NULL;
  }
  return n->conn;
}

static void node_close_conn(cluster_t *cl, node_t *n) {
  if (n->conn != NULL) {
    cache__rconn_t *c = n->conn;
    n->conn = NULL;
    cl->old_reconnects += cache__rconn_reconnects(c);
    cache__rconn_close(c);
  }
}

/* --- Answers -------------------------------------------------------------- */

/* Answers OP with ERR < 0: from the next tick inside a call (IN_CALL), at
 * once from a loop callback. */
static void finish(op_t *op, int err, bool in_call) {
  if (in_call)
    cache__rop_answer_later(&op->rop, err);
  else
    cache__rop_answer(&op->rop, err, NULL);
}

static void timed_out(cluster_t *cl, op_t *op, bool in_call,
                      const char *while_) {
  cache__rstore_error(&cl->s, "no answer for slot %u within %llu ms (%s)",
                      op->slot, (unsigned long long)cl->timeout_ms, while_);
  finish(op, -ETIMEDOUT, in_call);
}

/* --- The waiting list ----------------------------------------------------- */

static void on_wake(uv_timer_t *t);

static uint64_t due(const op_t *op) {
  return op->retry_at != 0 ? op->retry_at : op->deadline;
}

static void wake_at(cluster_t *cl, uint64_t when) {
  if (cl->s.closing)
    return;
  uint64_t now = uv_now(cl->s.uv);
  cl->wake_at = when;
  uv_timer_start(&cl->wake, on_wake, when > now ? when - now : 0, 0);
}

static void unlink_waiting(cluster_t *cl, op_t *op) {
  if (op->prev != NULL)
    op->prev->next = op->next;
  else
    cl->wait_head = op->next;
  if (op->next != NULL)
    op->next->prev = op->prev;
  else
    cl->wait_tail = op->prev;
  op->prev = op->next = NULL;
}

static void link_waiting(cluster_t *cl, op_t *op) {
  op->prev = cl->wait_tail;
  op->next = NULL;
  if (cl->wait_tail != NULL)
    cl->wait_tail->next = op;
  else
    cl->wait_head = op;
  cl->wait_tail = op;
  if (!uv_is_active((uv_handle_t *)&cl->wake) || due(op) < cl->wake_at)
    wake_at(cl, due(op));
}

/* Re-arms the timer for the earliest of the waiting, or stops it. */
static void rearm_wake(cluster_t *cl) {
  uint64_t first = UINT64_MAX;
  for (op_t *op = cl->wait_head; op != NULL; op = op->next)
    if (due(op) < first)
      first = due(op);
  if (first == UINT64_MAX)
    uv_timer_stop(&cl->wake); /* nothing waits: let the loop end */
  else
    wake_at(cl, first);
}

static void wait_refresh(cluster_t *cl, op_t *op) {
  op->retry_at = 0;
  op->ask_node = NO_NODE; /* the node may be gone when it resumes */
  link_waiting(cl, op);
  request_refresh(cl);
}

static void on_wake(uv_timer_t *t) {
  cluster_t *cl = t->data;
  uint64_t now = uv_now(cl->s.uv);
  cl->s.refs++; /* callbacks below may close the store */
  /* Those due leave the list first: what runs below may add others. */
  op_t *due_head = NULL, **tail = &due_head;
  for (op_t *op = cl->wait_head, *next; op != NULL; op = next) {
    next = op->next;
    if (due(op) <= now || op->deadline <= now) {
      unlink_waiting(cl, op);
      *tail = op;
      tail = &op->next;
    }
  }
  while (due_head != NULL) {
    op_t *op = due_head;
    due_head = op->next;
    op->next = NULL;
    if (op->deadline <= now && !cl->s.closing) {
      timed_out(cl, op, false,
                op->retry_at != 0 ? "retrying" : "waiting for the slot map");
    } else {
      op->retry_at = 0;
      dispatch(cl, op, false);
    }
  }
  if (!cl->s.closing)
    rearm_wake(cl);
  rt_loop_after_callback(cl->s.base.loop);
  cache__rstore_unref(&cl->s);
}

/* --- The slot map --------------------------------------------------------- */

typedef struct range_s {
  unsigned start, end;
  const char *host; /* into the reply, or the asked node's */
  size_t hl;
  int port;
} range_t;

/* One entry of CLUSTER SLOTS: [start, end, [ip, port, id, ...], replicas].
 * Returns 1 with R filled, 0 for a range with no usable endpoint, -1 when
 * the entry is malformed. */
static int parse_range(const redisReply *e, const node_t *asked, range_t *r) {
  if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
      e->element[0]->type != REDIS_REPLY_INTEGER ||
      e->element[1]->type != REDIS_REPLY_INTEGER ||
      e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
    return -1;
  long long start = e->element[0]->integer, end = e->element[1]->integer;
  const redisReply *ip = e->element[2]->element[0];
  const redisReply *port = e->element[2]->element[1];
  if (start < 0 || end < start || end >= (long long)CACHE__REDIS_SLOTS ||
      ip->type != REDIS_REPLY_STRING || port->type != REDIS_REPLY_INTEGER ||
      port->integer < 0 || port->integer > 65535)
    return -1;
  r->start = (unsigned)start;
  r->end = (unsigned)end;
  r->port = (int)port->integer;
  if (ip->len == 0) { /* the node does not know its address: the asked's */
    r->host = asked->host;
    r->hl = strlen(asked->host);
  } else {
    r->host = ip->str;
    r->hl = ip->len;
  }
  /* "?": an endpoint the node does not know (cluster-preferred-endpoint). */
  return !(ip->len == 1 && ip->str[0] == '?') && r->port != 0;
}

/* Replaces the map with REP's (from ASKED).  Returns 0, or -1 with the
 * reason in WHY when REP is no slot map. */
static int apply_map(cluster_t *cl, const redisReply *rep,
                     const node_t *asked) {
  if (rep->type == REDIS_REPLY_ERROR &&
      (strncmp(rep->str, "NOAUTH", 6) == 0 ||
       strncmp(rep->str, "WRONGPASS", 9) == 0))
    cl->why_err = -EACCES;
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
    snprintf(cl->why, sizeof cl->why, "%.40s:%d has no slot map (%.60s)",
             asked->host, asked->port,
             rep->type == REDIS_REPLY_ERROR ? rep->str : "no slots assigned");
    return -1;
  }
  for (size_t i = 0; i < rep->elements; i++) {
    range_t r;
    if (parse_range(rep->element[i], asked, &r) < 0) {
      snprintf(cl->why, sizeof cl->why,
               "%.40s:%d: an unexpected CLUSTER SLOTS reply", asked->host,
               asked->port);
      return -1;
    }
  }
  for (size_t i = 0; i < cl->nnodes; i++)
    if (cl->nodes[i] != NULL)
      cl->nodes[i]->mapped = false;
  for (unsigned s = 0; s < CACHE__REDIS_SLOTS; s++)
    cl->slots[s] = NO_NODE;
  for (size_t i = 0; i < rep->elements; i++) {
    range_t r;
    if (parse_range(rep->element[i], asked, &r) != 1)
      continue;
    uint16_t ni = node_get(cl, r.host, r.hl, r.port);
    if (ni == NO_NODE)
      continue; /* out of memory: those slots wait for the next refresh */
    cl->nodes[ni]->mapped = true;
    for (unsigned s = r.start; s <= r.end; s++)
      cl->slots[s] = ni;
  }
  cl->have_map = true;
  cl->why[0] = '\0';
  /* Connections the map no longer needs go, once nothing is pending. */
  for (size_t i = cl->nseeds; i < cl->nnodes; i++) {
    node_t *n = cl->nodes[i];
    if (n != NULL && !n->mapped &&
        (n->conn == NULL || cache__rconn_pending(n->conn) == 0)) {
      node_close_conn(cl, n);
      free(n);
      cl->nodes[i] = NULL;
    }
  }
  return 0;
}

static void refresh_step(cluster_t *cl);

/* The refresh is over, with a new map or not: the operations waiting for
 * it are re-sent, or answered. */
static void refresh_end(cluster_t *cl) {
  cl->refreshing = false;
  cl->s.refs++; /* callbacks below may close the store */
  op_t *resume = NULL, **tail = &resume;
  for (op_t *op = cl->wait_head, *next; op != NULL; op = next) {
    next = op->next;
    if (op->retry_at == 0) {
      unlink_waiting(cl, op);
      *tail = op;
      tail = &op->next;
    }
  }
  while (resume != NULL) {
    op_t *op = resume;
    resume = op->next;
    op->next = NULL;
    op->refreshed = true;
    dispatch(cl, op, false);
  }
  if (!cl->s.closing) {
    rearm_wake(cl);
    if (cl->refresh_again) {
      cl->refresh_again = false;
      request_refresh(cl);
    }
    if (cl->have_map)
      cache__rsample_first(&cl->s);
  }
  cache__rstore_unref(&cl->s);
}

static void on_slots(void *data, int err, const redisReply *rep) {
  node_t *n = data;
  cluster_t *cl = n->cl;
  if (cl->s.closing)
    return;
  if (err == 0 && apply_map(cl, rep, n) == 0) {
    refresh_end(cl);
    return;
  }
  if (err == -EACCES)
    cl->why_err = -EACCES; /* AUTH refused */
  if (err < 0)
    snprintf(cl->why, sizeof cl->why, "%.40s:%d: %.90s", n->host, n->port,
             err == -ETIMEDOUT ? "no answer" : cache__rconn_why(n->conn));
  refresh_step(cl); /* the next node */
}

/* Asks the next node that may answer, or ends the refresh. */
static void refresh_step(cluster_t *cl) {
  while (cl->refresh_next < cl->nnodes) {
    node_t *n = cl->nodes[cl->refresh_next++];
    if (n == NULL)
      continue;
    cache__rconn_t *c = node_conn(cl, n);
    if (c == NULL || cache__rconn_state(c) == CACHE__RCONN_DOWN)
      continue;
    /* Quiet: a refresh keeps no loop alive by itself; the operations
     * waiting for it do, through the waiting list's timer. */
    if (cache__rconn_send_quiet(c, &cl->slots_cmd,
                                uv_now(cl->s.uv) + cl->timeout_ms, on_slots,
                                n) == 0)
      return;
  }
  if (cl->why[0] == '\0')
    snprintf(cl->why, sizeof cl->why, "no node reachable");
  refresh_end(cl);
}

static void on_refresh(uv_timer_t *t) {
  cluster_t *cl = t->data;
  cl->refreshing = true;
  cl->ever_refreshed = true;
  cl->refresh_started = uv_now(cl->s.uv);
  cl->refresh_next = 0;
  cl->why[0] = '\0';
  cl->why_err = -ENOTCONN;
  cl->s.refs++;
  refresh_step(cl);
  rt_loop_after_callback(cl->s.base.loop);
  cache__rstore_unref(&cl->s);
}

static void on_periodic(uv_timer_t *t) {
  request_refresh(t->data);
}

/* Schedules a refresh: now, or REFRESH_INTERVAL_MS after the last one
 * started; after the one under way if there is one. */
static void request_refresh(cluster_t *cl) {
  if (cl->s.closing)
    return;
  if (cl->refreshing) {
    cl->refresh_again = true;
    return;
  }
  if (uv_is_active((uv_handle_t *)&cl->refresh))
    return;
  uint64_t now = uv_now(cl->s.uv), next = now;
  if (cl->ever_refreshed && cl->refresh_started + REFRESH_INTERVAL_MS > now)
    next = cl->refresh_started + REFRESH_INTERVAL_MS;
  uv_timer_start(&cl->refresh, on_refresh, next - now, 0);
}

/* --- Routing -------------------------------------------------------------- */

/* Sends OP where its slot (or an ASK) says, or makes it wait, or answers
 * it. */
static void dispatch(cluster_t *cl, op_t *op, bool in_call) {
  if (cl->s.closing) {
    cache__rop_answer_later(&op->rop, -ECANCELED);
    return;
  }
  if (op->deadline <= uv_now(cl->s.uv)) {
    timed_out(cl, op, in_call, "retrying");
    return;
  }
  bool asking = op->ask_node != NO_NODE;
  uint16_t ni = asking ? op->ask_node : cl->slots[op->slot];
  op->ask_node = NO_NODE;
  if (ni == NO_NODE) {
    if (!op->refreshed) {
      wait_refresh(cl, op);
      return;
    }
    if (cl->have_map) {
      cache__rstore_error(&cl->s, "no node serves slot %u", op->slot);
      finish(op, -ENOTCONN, in_call);
    } else {
      cache__rstore_error(&cl->s, "no slot map (%s)", cl->why);
      finish(op, cl->why_err, in_call);
    }
    return;
  }
  node_t *n = cl->nodes[ni];
  cache__rconn_t *c = node_conn(cl, n);
  if (c == NULL) {
    finish(op, -ENOMEM, in_call);
    return;
  }
  op->node = ni;
  int err =
      cache__rconn_send(c, &op->rop.cmd, asking, op->deadline, on_answer, op);
  if (err == 0)
    return;
  if (err == -ENOTCONN && !op->refreshed) {
    wait_refresh(cl, op); /* a failover may have moved the slot */
    return;
  }
  if (err == -ENOTCONN)
    cache__rstore_error(&cl->s, "slot %u: node %.40s:%d unreachable (%.60s)",
                        op->slot, n->host, n->port, cache__rconn_why(c));
  finish(op, err, in_call);
}

/* MOVED or ASK (REP): re-sent where it says. */
static void redirect(cluster_t *cl, op_t *op, const redisReply *rep, bool ask) {
  /* "MOVED 3999 127.0.0.1:6381"; the host may be empty (the same node's). */
  const char *p = memchr(rep->str, ' ', rep->len);
  const char *end = rep->str + rep->len;
  const char *sp = p != NULL ? memchr(p + 1, ' ', (size_t)(end - p - 1)) : NULL;
  const char *colon = NULL;
  for (const char *q = end; sp != NULL && q > sp; q--)
    if (q[-1] == ':') {
      colon = q - 1;
      break;
    }
  uint64_t slot, port;
  if (colon == NULL ||
      cache__url_uint(p + 1, (size_t)(sp - p - 1), CACHE__REDIS_SLOTS - 1,
                      &slot) < 0 ||
      cache__url_uint(colon + 1, (size_t)(end - colon - 1), 65535, &port) < 0 ||
      port == 0) {
    cache__rstore_error(&cl->s, "an unexpected redirection: %.60s", rep->str);
    cache__rop_answer(&op->rop, -EIO, NULL);
    return;
  }
  if (++op->redirects > MAX_REDIRECTS) {
    cache__rstore_error(&cl->s,
                        "slot %u: more than %d redirections (last: "
                        "%.50s)",
                        op->slot, MAX_REDIRECTS, rep->str);
    cache__rop_answer(&op->rop, -ELOOP, NULL);
    return;
  }
  const char *host = sp + 1;
  size_t hl = (size_t)(colon - host);
  if (hl == 0) {
    host = cl->nodes[op->node]->host;
    hl = strlen(host);
  }
  uint16_t ni = node_get(cl, host, hl, (int)port);
  if (ni == NO_NODE) {
    cache__rstore_error(&cl->s, "out of memory for node %.*s", (int)hl, host);
    cache__rop_answer(&op->rop, -ENOMEM, NULL);
    return;
  }
  if (ask) {
    op->ask_node = ni;
  } else {
    cl->slots[slot] = ni;
    cl->nodes[ni]->mapped = true;
    request_refresh(cl); /* other slots have likely moved too */
  }
  dispatch(cl, op, false);
}

static bool starts(const redisReply *rep, const char *word) {
  size_t n = strlen(word);
  return rep->len >= n && memcmp(rep->str, word, n) == 0 &&
         (rep->len == n || rep->str[n] == ' ');
}

/* A request's answer (redis_conn.h), from a node's connection. */
static void on_answer(void *data, int err, const redisReply *rep) {
  op_t *op = data;
  cluster_t *cl = (cluster_t *)op->rop.s;
  if (cl->s.closing) { /* from inside cache_close */
    cache__rop_answer_later(&op->rop, err);
    return;
  }
  if (err == -ETIMEDOUT)
    request_refresh(cl); /* a failover may be under way (above) */
  if (err == -ECONNRESET || err == -ENOTCONN) {
    if (!op->refreshed && op->redirects < MAX_REDIRECTS) {
      op->redirects++;
      wait_refresh(cl, op);
      return;
    }
    node_t *n = cl->nodes[op->node];
    cache__rstore_error(&cl->s, "slot %u: node %.40s:%d unreachable (%.60s)",
                        op->slot, n->host, n->port,
                        n->conn != NULL ? cache__rconn_why(n->conn) : "");
  }
  if (err == 0 && rep->type == REDIS_REPLY_ERROR) {
    if (starts(rep, "MOVED") || starts(rep, "ASK")) {
      redirect(cl, op, rep, rep->str[0] == 'A');
      return;
    }
    bool down = starts(rep, "CLUSTERDOWN");
    if (down || starts(rep, "TRYAGAIN")) {
      uint64_t at = uv_now(cl->s.uv) + RETRY_DELAY_MS;
      if (down)
        request_refresh(cl);
      if (++op->redirects > MAX_REDIRECTS || at >= op->deadline) {
        cache__rstore_error(&cl->s, "slot %u: %.80s", op->slot, rep->str);
        cache__rop_answer(&op->rop, -EAGAIN, NULL);
        return;
      }
      op->retry_at = at;
      link_waiting(cl, op);
      return;
    }
  }
  cache__rop_answer(&op->rop, err, rep);
}

static void cluster_submit(cache__rstore_t *s, cache__rop_t *rop,
                           const char *key, size_t klen) {
  cluster_t *cl = (cluster_t *)s;
  op_t *op = (op_t *)rop;
  op->slot = cache__redis_slot(key, klen);
  op->deadline = uv_now(s->uv) + cl->timeout_ms;
  op->ask_node = NO_NODE;
  op->node = NO_NODE;
  dispatch(cl, op, true);
}

/* --- The store ------------------------------------------------------------ */

/* A sample over the masters of the map (none yet: the wish stays). */
static void cluster_sample(cache__rstore_t *s) {
  cluster_t *cl = (cluster_t *)s;
  if (!cl->have_map)
    return;
  cache__rsample_t *sm = cache__rsample_begin(s);
  if (sm == NULL)
    return;
  uint64_t deadline = uv_now(s->uv) + cl->timeout_ms;
  for (size_t i = 0; i < cl->nnodes; i++) {
    node_t *n = cl->nodes[i];
    if (n == NULL || !n->mapped)
      continue;
    cache__rsample_send(sm, node_conn(cl, n), deadline);
  }
  cache__rsample_end(sm);
}

static void cluster_stats(cache_store_t *st, cache_stats_t *out) {
  cluster_t *cl = (cluster_t *)st;
  *out = cl->s.st;
  out->reconnects = cl->old_reconnects;
  for (size_t i = 0; i < cl->nnodes; i++)
    if (cl->nodes[i] != NULL && cl->nodes[i]->conn != NULL)
      out->reconnects += cache__rconn_reconnects(cl->nodes[i]->conn);
  cache__rsample_stats(&cl->s, out);
}

static void cluster_destroy(cache__rstore_t *s) {
  cluster_t *cl = (cluster_t *)s;
  for (size_t i = 0; i < cl->nnodes; i++)
    free(cl->nodes[i]);
  free(cl->nodes);
  free(cl->password);
  cache__rcmd_free(&cl->slots_cmd);
  cache__rcmd_free(&cl->s.sample_cmd[0]);
  cache__rcmd_free(&cl->s.sample_cmd[1]);
  free(cl);
}

static void on_timer_closed(uv_handle_t *hd) {
  cache__rstore_unref(hd->data);
}

static void cluster_close(cache_store_t *st) {
  cluster_t *cl = (cluster_t *)st;
  if (cl->s.closing)
    return;
  cl->s.closing = true;
  cache__rstore_error(&cl->s, "closed");
  /* Every unanswered operation gets -ECANCELED from the loop: those in a
   * connection through on_answer (called inside its close), the waiting
   * ones here. */
  for (size_t i = 0; i < cl->nnodes; i++)
    if (cl->nodes[i] != NULL)
      node_close_conn(cl, cl->nodes[i]);
  while (cl->wait_head != NULL) {
    op_t *op = cl->wait_head;
    unlink_waiting(cl, op);
    cache__rop_answer_later(&op->rop, -ECANCELED);
  }
  uv_close((uv_handle_t *)&cl->wake, on_timer_closed);
  uv_close((uv_handle_t *)&cl->refresh, on_timer_closed);
  uv_close((uv_handle_t *)&cl->periodic, on_timer_closed);
  cache__rsample_close(&cl->s);
  cache__rstore_unref(&cl->s);
}

/* --- Opening -------------------------------------------------------------- */

#define USAGE                                                                  \
  "redis-cluster://[:password@]host[:port][,host[:port]...]"                   \
  "[?password=P&timeout-ms=N&refresh-ms=N]"

/* Adds the seeds listed in [P, END). */
static int parse_seeds(cluster_t *cl, const char *p, const char *end,
                       const char *url, char *err, size_t errlen) {
  while (p <= end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *send = comma != NULL ? comma : end;
    size_t rem = (size_t)(send - p);
    const char *host = p, *hend, *colon;
    if (rem > 0 && *p == '[') { /* [v6 address] */
      host = p + 1;
      hend = memchr(host, ']', rem - 1);
      if (hend == NULL)
        goto bad;
      colon = hend + 1 < send ? hend + 1 : NULL;
      if (colon != NULL && *colon != ':')
        goto bad;
    } else {
      colon = memchr(p, ':', rem);
      hend = colon != NULL ? colon : send;
    }
    uint64_t port = CACHE__REDIS_PORT;
    if (hend == host || (colon != NULL &&
                         (cache__url_uint(colon + 1, (size_t)(send - colon - 1),
                                          65535, &port) < 0 ||
                          port == 0)))
      goto bad;
    uint16_t ni = node_get(cl, host, (size_t)(hend - host), (int)port);
    if (ni == NO_NODE) {
      snprintf(err, errlen,
               "redis-cluster://: out of memory, or a host "
               "name too long: %s",
               url);
      return -EINVAL;
    }
    cl->nodes[ni]->seed = true;
    cl->nseeds = cl->nnodes; /* seeds come first: all added so far */
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  return 0;
bad:
  snprintf(err, errlen, "redis-cluster://: expected " USAGE ": %s", url);
  return -EINVAL;
}

static int cluster_open(rt_loop_t *loop, const char *url, cache_store_t **out,
                        char *err, size_t errlen) {
  const char *p = strstr(url, "://");
  p = p != NULL ? p + 3 : url;
  const char *q = strchr(p, '?');
  const char *end = q != NULL ? q : p + strlen(p);
  cluster_t *cl = calloc(1, sizeof *cl);
  if (cl == NULL)
    return -ENOMEM;
  uint64_t timeout = CACHE__REDIS_TIMEOUT_MS, refresh = PERIODIC_REFRESH_MS;
  int e = cache__redis_url_userinfo(&p, end, "redis-cluster", url,
                                    &cl->password, err, errlen);
  if (e == 0 && end > p && end[-1] == '/')
    end--; /* a bare trailing slash */
  if (e == 0 && memchr(p, '/', (size_t)(end - p)) != NULL) {
    snprintf(err, errlen,
             "redis-cluster://: a cluster has only db 0, so no "
             "/db: %s",
             url);
    e = -EINVAL;
  }
  if (e == 0)
    e = parse_seeds(cl, p, end, url, err, errlen);
  if (e == 0 && q != NULL)
    e = cache__redis_url_query(q + 1, "redis-cluster", &cl->password, &timeout,
                               &refresh, err, errlen);
  const char *argv[2] = {"CLUSTER", "SLOTS"};
  size_t len[2] = {7, 5};
  if (e == 0 && cache__rcmd_add(&cl->slots_cmd, 2, argv, len) < 0)
    e = -ENOMEM;
  if (e < 0) {
    cluster_destroy(&cl->s);
    return e;
  }
  cache__rstore_init(&cl->s, &cache_redis_cluster_type, loop,
                     "redis-cluster store");
  cl->s.sample = cluster_sample;
  if (cache__rsample_init(&cl->s) < 0) {
    cluster_destroy(&cl->s);
    return -ENOMEM;
  }
  cl->s.submit = cluster_submit;
  cl->s.destroy = cluster_destroy;
  cl->s.op_size = sizeof(op_t);
  cl->timeout_ms = timeout;
  cl->why_err = -ENOTCONN;
  for (unsigned s = 0; s < CACHE__REDIS_SLOTS; s++)
    cl->slots[s] = NO_NODE;
  uv_timer_init(cl->s.uv, &cl->wake);
  cl->wake.data = cl;
  uv_timer_init(cl->s.uv, &cl->refresh);
  cl->refresh.data = cl;
  uv_unref((uv_handle_t *)&cl->refresh);
  uv_timer_init(cl->s.uv, &cl->periodic);
  cl->periodic.data = cl;
  uv_unref((uv_handle_t *)&cl->periodic);
  cl->refresh_ms = refresh;
  if (refresh > 0)
    uv_timer_start(&cl->periodic, on_periodic, refresh, refresh);
  cl->s.refs = 5; /* the store's own until closed, and the four timers */
  request_refresh(cl); /* the map, as soon as the loop runs */
  *out = &cl->s.base;
  return 0;
}

const cache_store_type_t cache_redis_cluster_type = {
    .scheme = "redis-cluster",
    .open = cluster_open,
    .get = cache__rstore_get,
    .set = cache__rstore_set,
    .del = cache__rstore_del,
    .touch = cache__rstore_touch,
    .stats = cluster_stats,
    .close = cluster_close,
};
