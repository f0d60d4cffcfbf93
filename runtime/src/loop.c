/* loop.c -- the event loop: timers, immediates and the next-tick queue on
 * one libuv loop per runtime.
 *
 * Every scheduled callback is a task, malloc'd off the heap (libuv links
 * its handles into its own queues, so nothing libuv holds may move).  A
 * task carries a copy of the heap values it was given; the loop's root
 * tracer reports them, so they stay rooted, and are updated in place when
 * objects move, from scheduling until the task is released.  The callback
 * gets a pointer to that array: the slots are roots for as long as it
 * runs.
 *
 * Kinds:
 *   timer      its own uv_timer_t (libuv orders timers by deadline, then by
 *              start order: node's guarantee); one-shot or interval;
 *   immediate  a FIFO run by a uv_check_t; an idle handle keeps the poll
 *              phase from blocking while immediates wait, as node does;
 *   tick       a FIFO drained after every callback (rt_loop_after_callback).
 *
 * INV(tasks): a task is on `all` (its values rooted) exactly while it is
 * scheduled or running; timers and immediates are in the id table exactly
 * while they may still run; a running task is released only by the code
 * that ran it, after the callback returns (a callback that cancels itself
 * only marks it), so its values stay rooted until then.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <tenure/rt_loop.h>

#include "rt_internal.h"

enum { K_TIMER, K_IMMEDIATE, K_TICK };

typedef struct task_s {
  struct task_s *prev, *next; /* on loop->all while rooted */
  struct task_s *qnext;       /* in the immediate or tick FIFO */
  struct task_s *hnext;       /* in the id table's chain */
  rt_loop_t *loop;
  uv_timer_t timer; /* K_TIMER only */
  rt_task_fn fn;
  void *data;
  rt_task_id id;
  uint64_t repeat; /* ms; 0: one-shot */
  int kind;
  bool cancelled; /* no longer runs; released at the next safe point */
  bool running;
  bool closing; /* its uv handle is closing: freed in the close callback */
  size_t nargs;
  rt_value_t args[]; /* rooted by trace_tasks */
} task_t;

typedef struct fifo_s {
  task_t *head, *tail;
} fifo_t;

struct rt_loop_s {
  rt_runtime_t *rt;
  gc_heap_t *h;
  uv_loop_t uv;
  uv_check_t check;
  uv_idle_t idle;
  task_t *all;
  task_t **ids; /* chained hash by id, a power of two of buckets */
  size_t ids_cap, ids_len;
  fifo_t immediates, ticks;
  rt_task_id next_id;
  size_t pending;
  size_t our_handles; /* check, idle and timers not yet closed */
  int depth;          /* callbacks running (nested through nothing else) */
  bool stopping;
};

/* --- Roots ------------------------------------------------------------------ */

static void trace_tasks(gc_visitor_t *v, void *data) {
  rt_loop_t *l = data;
  for (task_t *t = l->all; t != NULL; t = t->next)
    for (size_t i = 0; i < t->nargs; i++)
      GC_VISIT(v, &t->args[i], GC_EDGE_ELEM(i));
}

static void link_task(rt_loop_t *l, task_t *t) {
  t->prev = NULL;
  t->next = l->all;
  if (l->all != NULL)
    l->all->prev = t;
  l->all = t;
}

static void unlink_task(rt_loop_t *l, task_t *t) {
  if (t->prev != NULL)
    t->prev->next = t->next;
  else if (l->all == t)
    l->all = t->next;
  if (t->next != NULL)
    t->next->prev = t->prev;
  t->prev = t->next = NULL;
}

/* --- The id table ----------------------------------------------------------- */

static size_t bucket(const rt_loop_t *l, rt_task_id id) {
  return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 32) & (l->ids_cap - 1);
}

static int ids_put(rt_loop_t *l, task_t *t) {
  if (l->ids_len + 1 > l->ids_cap) {
    size_t ncap = l->ids_cap ? l->ids_cap * 2 : 64;
    task_t **n = calloc(ncap, sizeof *n);
    if (n == NULL)
      return -ENOMEM;
    task_t **old = l->ids;
    size_t ocap = l->ids_cap;
    l->ids = n;
    l->ids_cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
      task_t *c = old[i];
      while (c != NULL) {
        task_t *next = c->hnext;
        size_t b = bucket(l, c->id);
        c->hnext = n[b];
        n[b] = c;
        c = next;
      }
    }
    free(old);
  }
  size_t b = bucket(l, t->id);
  t->hnext = l->ids[b];
  l->ids[b] = t;
  l->ids_len++;
  return 0;
}

/* Removes and returns the task with ID, or NULL. */
static task_t *ids_take(rt_loop_t *l, rt_task_id id) {
  if (l->ids_cap == 0 || id == 0)
    return NULL;
  for (task_t **p = &l->ids[bucket(l, id)]; *p != NULL; p = &(*p)->hnext) {
    if ((*p)->id == id) {
      task_t *t = *p;
      *p = t->hnext;
      t->hnext = NULL;
      l->ids_len--;
      return t;
    }
  }
  return NULL;
}

/* --- Tasks ------------------------------------------------------------------ */

static void fifo_push(fifo_t *q, task_t *t) {
  t->qnext = NULL;
  if (q->tail != NULL)
    q->tail->qnext = t;
  else
    q->head = t;
  q->tail = t;
}

static void on_timer_closed(uv_handle_t *hd) {
  task_t *t = hd->data;
  t->loop->our_handles--;
  free(t);
}

/* Releases T: its values are no longer roots; its memory goes now or, for a
 * timer, when libuv has closed its handle. */
static void release(rt_loop_t *l, task_t *t) {
  unlink_task(l, t);
  if (t->kind == K_TIMER) {
    if (!t->closing) {
      t->closing = true;
      uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    }
  } else {
    free(t);
  }
}

/* A new task of KIND holding a copy of ARGS, linked (its values rooted)
 * and, for timers and immediates, given an id.  Returns 0 and the task in
 * *OUT, -EINVAL or -ENOMEM (then nothing is scheduled). */
static int task_new(rt_loop_t *l, int kind, rt_task_fn fn, void *data,
                    const rt_value_t *args, size_t nargs, task_t **out) {
  if (l == NULL || fn == NULL || nargs > RT_TASK_MAX_ARGS ||
      (nargs > 0 && args == NULL))
    return -EINVAL;
  task_t *t = calloc(1, sizeof *t + nargs * sizeof(rt_value_t));
  if (t == NULL)
    return -ENOMEM;
  t->loop = l;
  t->kind = kind;
  t->fn = fn;
  t->data = data;
  t->nargs = nargs;
  if (nargs > 0)
    memcpy(t->args, args, nargs * sizeof(rt_value_t));
  if (kind != K_TICK) {
    t->id = ++l->next_id;
    int err = ids_put(l, t);
    if (err < 0) {
      free(t);
      return err;
    }
  }
  link_task(l, t);
  l->pending++;
  *out = t;
  return 0;
}

/* Runs T's callback with its values, then the next-tick queue. */
static void run(rt_loop_t *l, task_t *t) {
  t->running = true;
  l->depth++;
  t->fn(l, t->data, t->args, t->nargs);
  l->depth--;
  t->running = false;
}

void rt_loop_after_callback(rt_loop_t *l) {
  task_t *t;
  while ((t = l->ticks.head) != NULL) {
    l->ticks.head = t->qnext;
    if (l->ticks.head == NULL)
      l->ticks.tail = NULL;
    l->pending--;
    run(l, t);
    release(l, t);
  }
}

/* --- Timers ----------------------------------------------------------------- */

static void on_timer(uv_timer_t *timer) {
  task_t *t = timer->data;
  rt_loop_t *l = t->loop;
  if (t->repeat == 0) {
    ids_take(l, t->id); /* it ran: clearing it now is a no-op */
    l->pending--;
  }
  run(l, t);
  if (t->cancelled || t->repeat == 0) {
    release(l, t); /* a one-shot, or an interval cleared in its callback */
  } else {
    uv_timer_start(&t->timer, on_timer, t->repeat, 0);
  }
  rt_loop_after_callback(l);
  if (l->stopping)
    uv_stop(&l->uv);
}

static int schedule_timer(rt_loop_t *l, uint64_t ms, uint64_t repeat,
                          rt_task_fn fn, void *data, const rt_value_t *args,
                          size_t nargs, rt_task_id *id) {
  task_t *t;
  int err = task_new(l, K_TIMER, fn, data, args, nargs, &t);
  if (err < 0)
    return err;
  t->repeat = repeat;
  uv_timer_init(&l->uv, &t->timer);
  t->timer.data = t;
  l->our_handles++;
  uv_timer_start(&t->timer, on_timer, ms, 0);
  if (id != NULL)
    *id = t->id;
  return 0;
}

/* As node: a delay under 1 ms is 1 ms.  (With libuv 1.44 a 0 ms timer
 * started from a timer callback would also run in that same timers phase,
 * before the immediates queued with it.) */
int rt_set_timeout(rt_loop_t *l, uint64_t ms, rt_task_fn fn, void *data,
                   const rt_value_t *args, size_t nargs, rt_task_id *id) {
  return schedule_timer(l, ms > 0 ? ms : 1, 0, fn, data, args, nargs, id);
}

int rt_set_interval(rt_loop_t *l, uint64_t ms, rt_task_fn fn, void *data,
                    const rt_value_t *args, size_t nargs, rt_task_id *id) {
  ms = ms > 0 ? ms : 1;
  return schedule_timer(l, ms, ms, fn, data, args, nargs, id);
}

/* --- Immediates and ticks ------------------------------------------------- */

static void on_idle(uv_idle_t *idle) { (void)idle; }

static void on_check(uv_check_t *check) {
  rt_loop_t *l = check->data;
  /* This iteration runs the immediates queued before it began; those they
   * queue run in the next one. */
  task_t *batch = l->immediates.head;
  l->immediates.head = l->immediates.tail = NULL;
  while (batch != NULL) {
    task_t *t = batch;
    batch = t->qnext;
    if (t->cancelled) {
      free(t); /* already released from the roots and the id table */
      continue;
    }
    ids_take(l, t->id);
    l->pending--;
    run(l, t);
    release(l, t);
    rt_loop_after_callback(l);
    if (l->stopping && batch != NULL) {
      /* Put the rest back, first, for the next run. */
      task_t *last = batch;
      while (last->qnext != NULL)
        last = last->qnext;
      last->qnext = l->immediates.head;
      if (l->immediates.head == NULL)
        l->immediates.tail = last;
      l->immediates.head = batch;
      break;
    }
  }
  if (l->immediates.head == NULL) {
    uv_idle_stop(&l->idle);
    uv_check_stop(&l->check);
  }
  if (l->stopping)
    uv_stop(&l->uv);
}

int rt_set_immediate(rt_loop_t *l, rt_task_fn fn, void *data,
                     const rt_value_t *args, size_t nargs, rt_task_id *id) {
  task_t *t;
  int err = task_new(l, K_IMMEDIATE, fn, data, args, nargs, &t);
  if (err < 0)
    return err;
  fifo_push(&l->immediates, t);
  uv_check_start(&l->check, on_check);
  uv_idle_start(&l->idle, on_idle);
  if (id != NULL)
    *id = t->id;
  return 0;
}

int rt_next_tick(rt_loop_t *l, rt_task_fn fn, void *data,
                 const rt_value_t *args, size_t nargs) {
  task_t *t;
  int err = task_new(l, K_TICK, fn, data, args, nargs, &t);
  if (err < 0)
    return err;
  fifo_push(&l->ticks, t);
  return 0;
}

int rt_clear(rt_loop_t *l, rt_task_id id) {
  if (l == NULL)
    return -EINVAL;
  task_t *t = ids_take(l, id);
  if (t == NULL) {
    /* An interval clearing itself from its own callback is not in the
     * table only if it was cleared already. */
    return -ENOENT;
  }
  t->cancelled = true;
  l->pending--;
  if (t->kind == K_TIMER) {
    uv_timer_stop(&t->timer);
    if (!t->running)
      release(l, t); /* else on_timer releases it after the callback */
  } else {
    /* An immediate stays in the FIFO until the check phase frees it; its
     * values are released now. */
    unlink_task(l, t);
  }
  return 0;
}

/* --- The loop ---------------------------------------------------------------- */

int rt_loop_create(rt_runtime_t *rt, rt_loop_t **out) {
  if (rt == NULL || out == NULL)
    return -EINVAL;
  rt_loop_t *l = calloc(1, sizeof *l);
  if (l == NULL)
    return -ENOMEM;
  l->rt = rt;
  l->h = rt_heap(rt);
  int err = uv_loop_init(&l->uv);
  if (err < 0)
    goto fail_uv;
  uv_check_init(&l->uv, &l->check);
  uv_idle_init(&l->uv, &l->idle);
  l->check.data = l->idle.data = l;
  l->our_handles = 2;
  err = gc_root_tracer_add(l->h, trace_tasks, l, "(Event loop)");
  if (err < 0)
    goto fail_tracer;
  l->uv.data = l;
  *out = l;
  return 0;

fail_tracer:
  uv_close((uv_handle_t *)&l->check, NULL);
  uv_close((uv_handle_t *)&l->idle, NULL);
  uv_run(&l->uv, UV_RUN_DEFAULT);
  uv_loop_close(&l->uv);
fail_uv:
  free(l);
  return err;
}

static void count_handle(uv_handle_t *hd, void *arg) {
  (void)hd;
  ++*(size_t *)arg;
}

int rt_loop_destroy(rt_loop_t *l) {
  if (l == NULL)
    return 0;
  if (l->depth > 0)
    return -EBUSY;
  size_t n = 0;
  uv_walk(&l->uv, count_handle, &n);
  if (n > l->our_handles)
    return -EBUSY; /* the embedder's handles: close them first */
  /* Cancel everything still scheduled: cancelled immediates are only in
   * the FIFO (free them first, before the FIFO's other nodes are freed by
   * release), everything else is on `all`. */
  for (task_t *t = l->immediates.head, *next; t != NULL; t = next) {
    next = t->qnext;
    if (t->cancelled)
      free(t);
  }
  l->immediates.head = l->immediates.tail = NULL;
  while (l->all != NULL)
    release(l, l->all);
  l->ticks.head = l->ticks.tail = NULL;
  uv_close((uv_handle_t *)&l->check, NULL);
  uv_close((uv_handle_t *)&l->idle, NULL);
  uv_run(&l->uv, UV_RUN_DEFAULT); /* runs the close callbacks */
  int err = uv_loop_close(&l->uv);
  gc_root_tracer_remove(l->h, trace_tasks, l);
  free(l->ids);
  free(l);
  return err;
}

rt_runtime_t *rt_loop_runtime(const rt_loop_t *l) { return l->rt; }
struct uv_loop_s *rt_loop_uv(rt_loop_t *l) { return &l->uv; }
size_t rt_loop_pending(const rt_loop_t *l) { return l->pending; }

void rt_loop_stop(rt_loop_t *l) {
  l->stopping = true;
  uv_stop(&l->uv);
}

int rt_loop_run(rt_loop_t *l) {
  if (l == NULL)
    return -EINVAL;
  if (l->depth > 0)
    return -EBUSY;
  l->stopping = false;
  rt_loop_after_callback(l); /* ticks queued before the loop starts */
  while (!l->stopping && uv_run(&l->uv, UV_RUN_DEFAULT) != 0 &&
         !l->stopping)
    ;
  l->stopping = false;
  return 0;
}
