/* rt_loop.h -- the event loop: one libuv loop per runtime, with node's
 * timers, immediates and next-tick queue.
 *
 * Ordering, as node's:
 *   - next-tick callbacks run after the callback that queued them returns,
 *     before the loop runs anything else (after every timer, immediate and
 *     I/O callback, and before the loop starts);
 *   - immediates run in the check phase, after the I/O poll: an immediate
 *     queued from a timer or I/O callback runs before a timer queued there
 *     with a 0 ms delay; one queued from an immediate runs in the next
 *     iteration;
 *   - timers fire in order of deadline, then of scheduling.
 *
 * GC safety is the loop's job: a scheduled callback takes the heap values
 * it needs (ARGS, copied), and the loop keeps them rooted until the callback
 * has run (for intervals: until cleared) or was cancelled.  Inside the
 * callback they are handles in a scope the loop opened, valid until it
 * returns; no raw heap pointer crosses a return to the loop.
 *
 * Errors are negative errno codes (-EINVAL, -ENOMEM).  A function that
 * returns an error never calls its callback.
 */
#ifndef TENURE_RT_LOOP_H
#define TENURE_RT_LOOP_H

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_loop_s rt_loop_t;
struct uv_loop_s;

/* A callback scheduled on the loop.  ARGS are the values given when it was
 * scheduled, as rooted slots (handles) valid until it returns; NARGS of
 * them.  The callback may allocate, schedule and cancel, and call
 * rt_loop_stop. */
typedef void (*rt_task_fn)(rt_loop_t *loop, void *data, rt_value_t *args,
                           size_t nargs);

/* An id for a timer or an immediate: never reused by the loop, so
 * cancelling one that already ran (or was cancelled) is a harmless no-op,
 * as clearTimeout is.  0 is never an id. */
typedef uint64_t rt_task_id;

/* At most this many values per callback. */
#define RT_TASK_MAX_ARGS 16

/* Creates the loop of RT (its own uv_loop_t).  Returns 0, -ENOMEM, or a
 * libuv error; *OUT is set only on success. */
RT_EXTERN int rt_loop_create(rt_runtime_t *rt, rt_loop_t **out);

/* Cancels what is still scheduled (releasing its values), closes the libuv
 * handles and the uv loop, frees LOOP.  Must not be called from a
 * callback.  Returns 0, or -EBUSY (and frees nothing) if the embedder left
 * handles of its own open on the uv loop. */
RT_EXTERN int rt_loop_destroy(rt_loop_t *loop);

RT_EXTERN rt_runtime_t *rt_loop_runtime(const rt_loop_t *loop);

/* The libuv loop, for I/O handles of the embedder's: callbacks of its own
 * should call rt_loop_after_callback when they return, so next-tick
 * callbacks run at the right time. */
RT_EXTERN struct uv_loop_s *rt_loop_uv(rt_loop_t *loop);

/* Runs queued next-tick callbacks, then the loop until nothing is
 * scheduled or rt_loop_stop is called.  GC point.  Returns 0, or a
 * negative code if called from inside a callback (-EBUSY). */
RT_EXTERN int rt_loop_run(rt_loop_t *loop);

/* Makes rt_loop_run return after the current callback. */
RT_EXTERN void rt_loop_stop(rt_loop_t *loop);

/* Runs the next-tick queue until it is empty (callbacks queued by
 * next-tick callbacks included).  GC point.  The loop calls it after each of
 * its callbacks; I/O callbacks of the embedder's call it too. */
RT_EXTERN void rt_loop_after_callback(rt_loop_t *loop);

/* setTimeout / setInterval: FN(DATA, ARGS) after MS milliseconds (under 1
 * means 1, as node's); an
 * interval then again every MS milliseconds (counted from when its callback
 * returned, as node's) until cleared.  ARGS (NARGS values, may be NULL when
 * NARGS is 0) are read before the call returns.  Not a GC point.  Returns
 * 0 and the id in *ID (ID may be NULL), -EINVAL, or -ENOMEM. */
RT_EXTERN int rt_set_timeout(rt_loop_t *loop, uint64_t ms, rt_task_fn fn,
                             void *data, const rt_value_t *args, size_t nargs,
                             rt_task_id *id);
RT_EXTERN int rt_set_interval(rt_loop_t *loop, uint64_t ms, rt_task_fn fn,
                              void *data, const rt_value_t *args,
                              size_t nargs, rt_task_id *id);

/* setImmediate: FN in the check phase of this or the next iteration. */
RT_EXTERN int rt_set_immediate(rt_loop_t *loop, rt_task_fn fn, void *data,
                               const rt_value_t *args, size_t nargs,
                               rt_task_id *id);

/* process.nextTick: FN after the current callback (see the ordering). */
RT_EXTERN int rt_next_tick(rt_loop_t *loop, rt_task_fn fn, void *data,
                           const rt_value_t *args, size_t nargs);

/* clearTimeout / clearInterval / clearImmediate: the callback will not run
 * (again) and its values are released.  Returns 0, or -ENOENT when ID is
 * not scheduled (ran already, was cancelled, or was never an id). */
RT_EXTERN int rt_clear(rt_loop_t *loop, rt_task_id id);

/* Callbacks scheduled and not yet run or cancelled (intervals count until
 * cleared), for tests and diagnostics. */
RT_EXTERN size_t rt_loop_pending(const rt_loop_t *loop);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_LOOP_H */
