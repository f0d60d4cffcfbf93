/* rt_array.h -- growable arrays ("Array") with a separate backing store.
 *
 * An array is a small object whose internal edge "elements" leads to its
 * backing store ("(array elements)"), as V8's JSArray.  The store is a ring
 * buffer, so push, pop, shift and unshift are amortized O(1) and an array
 * used as a queue does not pay O(n) per shift.
 */
#ifndef TENURE_RT_ARRAY_H
#define TENURE_RT_ARRAY_H

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GC point.  An empty array with room for CAPACITY elements. */
RT_EXTERN rt_value_t rt_array_new(rt_runtime_t *rt, size_t capacity);

RT_EXTERN bool rt_is_array(rt_value_t v);
RT_EXTERN size_t rt_array_length(rt_value_t arr);
/* Element I, or RT_UNDEFINED when I >= length. */
RT_EXTERN rt_value_t rt_array_get(rt_value_t arr, size_t i);
/* Stores element I < length (with the write barrier).  Returns 0 or
 * -ERANGE.  Not a GC point. */
RT_EXTERN int rt_array_set(rt_runtime_t *rt, rt_value_t arr, size_t i,
                           rt_value_t v);
/* GC point.  Appends *V.  Returns 0, -ENOMEM or -EINVAL (not an array). */
RT_EXTERN int rt_array_push(rt_runtime_t *rt, const rt_value_t *arr,
                            const rt_value_t *v);
/* GC point.  Prepends *V. */
RT_EXTERN int rt_array_unshift(rt_runtime_t *rt, const rt_value_t *arr,
                               const rt_value_t *v);
/* Removes and returns the last / first element, RT_UNDEFINED if empty.
 * Not GC points (the store does not shrink). */
RT_EXTERN rt_value_t rt_array_pop(rt_runtime_t *rt, rt_value_t arr);
RT_EXTERN rt_value_t rt_array_shift(rt_runtime_t *rt, rt_value_t arr);
/* The capacity of the backing store (for tests). */
RT_EXTERN size_t rt_array_capacity(rt_value_t arr);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_ARRAY_H */
