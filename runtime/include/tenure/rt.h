/* rt.h -- tenure's runtime layer: values on the tenure heap.
 *
 * A runtime (rt_runtime_t) owns one gc heap and the state the value types
 * need on it: their registered gc_type_t descriptors, the weak intern table
 * of strings, and the off-heap byte counters of buffers.
 *
 * A value is one word, rt_value_t:
 *
 *   ...xxxxxxx1   small integer (63 bits, two's complement, shifted left 1)
 *   ...00000010   undefined   (0x02)
 *   ...00001010   null        (0x0a)
 *   ...00010010   false       (0x12)
 *   ...00011010   true        (0x1a)
 *   ...xxxxx000   a heap object: string, heap number (a boxed double),
 *                 Array, Map, Buffer
 *   0             RT_NONE: "no value"; returned by allocating functions
 *                 only when the heap was created with null_on_oom, and by
 *                 lookups that found nothing
 *
 * Every immediate has one of its low three bits set, so the collector never
 * follows it (GC_IMMEDIATE_MASK); a value can be stored in any gc slot.
 *
 * GC points.  Every function whose comment says "GC point" may collect and
 * move objects.  Heap values it must keep using are passed by handle
 * (rt_value_t *, a slot from rt_handle or any other root); values it returns
 * are raw and valid until the next GC point: root them (rt_handle) first.
 * Functions that are not GC points take and return raw values.
 *
 * Errors are negative errno codes (rt_strerror names them).
 * See runtime/DESIGN.md.
 */
#ifndef TENURE_RT_H
#define TENURE_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tenure/gc.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RT_EXTERN GC_EXTERN

typedef uintptr_t rt_value_t;
typedef struct rt_runtime_s rt_runtime_t;

#define RT_NONE ((rt_value_t)0)
#define RT_UNDEFINED ((rt_value_t)0x02)
#define RT_NULL ((rt_value_t)0x0a)
#define RT_FALSE ((rt_value_t)0x12)
#define RT_TRUE ((rt_value_t)0x1a)

/* The range of small integers (63-bit). */
#define RT_INT_MAX ((int64_t)(INT64_MAX >> 1))
#define RT_INT_MIN ((int64_t)(INT64_MIN >> 1))

/* The kinds of values (X-macro: enum, rt_type_name). */
#define RT_VALUE_TYPE_MAP(XX)                                                 \
  XX(NONE, "none")                                                            \
  XX(UNDEFINED, "undefined")                                                  \
  XX(NULL, "null")                                                            \
  XX(BOOLEAN, "boolean")                                                      \
  XX(INT, "int")                                                              \
  XX(DOUBLE, "double")                                                        \
  XX(STRING, "string")                                                        \
  XX(ARRAY, "Array")                                                          \
  XX(MAP, "Map")                                                              \
  XX(BUFFER, "Buffer")                                                        \
  XX(OTHER, "other")

typedef enum rt_type_e {
#define RT__TYPE_ENUM(name, str) RT_TYPE_##name,
  RT_VALUE_TYPE_MAP(RT__TYPE_ENUM)
#undef RT__TYPE_ENUM
} rt_type_t;

/* --- Runtime ---------------------------------------------------------- */

/* Creates a runtime on heap H and registers the value types with it.  The
 * runtime takes ownership of H: rt_runtime_destroy destroys it (its
 * finalizers still need the runtime).  Returns 0, -EINVAL or -ENOMEM;
 * *OUT is set only on success (on failure H is still the caller's). */
RT_EXTERN int rt_runtime_create(gc_heap_t *h, rt_runtime_t **out);

/* Destroys the heap (running every finalizer: buffers free their bytes)
 * and then the runtime. */
RT_EXTERN void rt_runtime_destroy(rt_runtime_t *rt);

RT_EXTERN gc_heap_t *rt_heap(const rt_runtime_t *rt);

/* Roots V in the innermost gc scope of the runtime's heap (gc_handle). */
static inline rt_value_t *rt_handle(gc_heap_t *h, rt_value_t v) {
  return (rt_value_t *)gc_handle(h, (void *)v);
}

/* Node's process.memoryUsage() external and arrayBuffers: bytes held off
 * the heap (all of gc_external_adjust) and by buffers (this runtime). */
typedef struct rt_memory_usage_s {
  size_t external;
  size_t array_buffers;
  size_t heap_used;
  size_t heap_total;
} rt_memory_usage_t;
RT_EXTERN void rt_memory_usage(rt_runtime_t *rt, rt_memory_usage_t *out);

RT_EXTERN const char *rt_strerror(int err);

/* --- Immediates and numbers ------------------------------------------- */

static inline bool rt_is_int(rt_value_t v) { return (v & 1) != 0; }
static inline bool rt_is_heap(rt_value_t v) {
  return v != 0 && (v & GC_IMMEDIATE_MASK) == 0;
}
static inline bool rt_int_fits(int64_t i) {
  return i >= RT_INT_MIN && i <= RT_INT_MAX;
}
/* I must satisfy rt_int_fits. */
static inline rt_value_t rt_int(int64_t i) {
  return ((rt_value_t)i << 1) | 1;
}
static inline int64_t rt_int_value(rt_value_t v) { return (int64_t)v >> 1; }
static inline rt_value_t rt_bool(bool b) { return b ? RT_TRUE : RT_FALSE; }

/* The kind of V (reads the object's type for heap values). */
RT_EXTERN rt_type_t rt_typeof(rt_value_t v);
RT_EXTERN const char *rt_type_name(rt_type_t t);

/* GC point.  A number: a small integer when D is integral, not -0 and in
 * range, else a boxed double. */
RT_EXTERN rt_value_t rt_number(rt_runtime_t *rt, double d);
/* GC point.  Always a boxed double. */
RT_EXTERN rt_value_t rt_double_new(rt_runtime_t *rt, double d);
/* True for small integers and doubles. */
RT_EXTERN bool rt_is_number(rt_value_t v);
/* The value of a number (0 for anything else). */
RT_EXTERN double rt_number_value(rt_value_t v);

#ifdef __cplusplus
}
#endif

#include <tenure/rt_string.h>
#include <tenure/rt_array.h>
#include <tenure/rt_map.h>
#include <tenure/rt_buffer.h>
#include <tenure/rt_json.h>
#include <tenure/rt_weakmap.h>
#include <tenure/rt_encoding.h>

#endif /* TENURE_RT_H */
