/* rt_buffer.h -- byte buffers held off the heap ("Buffer").
 *
 * A buffer's bytes are malloc'd (jemalloc when the process links it) and
 * owned by a small heap object whose finalizer frees them; they are counted
 * with gc_external_adjust (external memory, as Node's
 * memoryUsage().external and arrayBuffers).  A slice shares the bytes of
 * its parent and references the owning buffer (internal edge
 * "buffer"), so the bytes live as long as any slice does.
 */
#ifndef TENURE_RT_BUFFER_H
#define TENURE_RT_BUFFER_H

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GC point.  A zero-filled buffer of LEN bytes. */
RT_EXTERN rt_value_t rt_buffer_new(rt_runtime_t *rt, size_t len);
/* GC point.  A buffer holding a copy of P[0..LEN). */
RT_EXTERN rt_value_t rt_buffer_from(rt_runtime_t *rt, const void *p,
                                    size_t len);
/* GC point.  A view of (*BUF)[START..END) sharing its bytes; the bounds are
 * clamped to the buffer (Node's buf.subarray). */
RT_EXTERN rt_value_t rt_buffer_slice(rt_runtime_t *rt, const rt_value_t *buf,
                                     size_t start, size_t end);
/* GC point.  The UTF-8 bytes of string *STR. */
RT_EXTERN rt_value_t rt_buffer_from_string(rt_runtime_t *rt,
                                           const rt_value_t *str);
/* GC point.  The bytes of *BUF decoded as UTF-8 (invalid: U+FFFD). */
RT_EXTERN rt_value_t rt_buffer_to_string(rt_runtime_t *rt,
                                         const rt_value_t *buf);

RT_EXTERN bool rt_is_buffer(rt_value_t v);
/* The bytes (they never move; valid while the buffer lives). */
RT_EXTERN uint8_t *rt_buffer_data(rt_value_t buf);
RT_EXTERN size_t rt_buffer_length(rt_value_t buf);

/* Called once for each block of buffer bytes freed (tests count frees). */
typedef void (*rt_buffer_free_hook_fn)(void *data, size_t size);
RT_EXTERN void rt_buffer_set_free_hook(rt_runtime_t *rt,
                                       rt_buffer_free_hook_fn fn);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_BUFFER_H */
