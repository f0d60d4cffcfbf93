/* buffer.c -- byte buffers off the heap ("Buffer").
 *
 * The owning buffer object holds a malloc'd block (alloc, alloc_size) and
 * frees it in its finalizer, which the collector runs exactly once; the
 * bytes are reported with gc_external_adjust (+ when allocated, - when
 * freed) and counted in rt->array_buffers.  A slice references the owner
 * (internal edge "buffer", always the owner itself, never another
 * slice, so chains of slices stay one hop long) and has alloc == NULL.
 * INV(buffer): data lies within the owner's block; the block is freed only
 * by the owner's finalizer.  The bytes never move, so rt_buffer_data stays
 * valid across GCs while the buffer lives.
 */
#include <errno.h>

#include "rt_internal.h"

/* --- Type ---------------------------------------------------------------- */

static void buffer_trace(void *obj, gc_visitor_t *v) {
  rt__buffer_t *b = obj;
  GC_VISIT(v, &b->backing, GC_EDGE_INTERNAL("buffer"));
}

static void buffer_finalize(gc_heap_t *h, void *obj) {
  (void)h;
  rt__buffer_t *b = obj;
  if (b->alloc == NULL)
    return;
  rt_runtime_t *rt = b->rt;
  if (rt->free_hook)
    rt->free_hook(b->alloc, b->alloc_size);
  free(b->alloc);
  b->alloc = NULL;
  gc_external_adjust(rt->heap, -(int64_t)b->alloc_size);
  rt->array_buffers -= (int64_t)b->alloc_size;
}

static size_t buffer_external(const void *obj) {
  const rt__buffer_t *b = obj;
  return b->alloc ? b->alloc_size : 0;
}

const gc_type_t rt__buffer_type = {.name = "Buffer",
                                   .size = sizeof(rt__buffer_t),
                                   .trace = buffer_trace,
                                   .finalize = buffer_finalize,
                                   .external_size = buffer_external};

/* --- Construction -------------------------------------------------------- */

/* GC point.  An owner of a fresh block of LEN bytes (uninitialized unless
 * ZERO). */
static rt__buffer_t *owner_new(rt_runtime_t *rt, size_t len, bool zero) {
  /* Allocate the object first: if that fails nothing leaks, and the block
   * is attached before the next GC point. */
  rt__buffer_t *b = gc_alloc(rt->heap, &rt__buffer_type, sizeof *b);
  if (b == NULL)
    return NULL;
  void *p = zero ? calloc(1, len ? len : 1) : malloc(len ? len : 1);
  if (p == NULL)
    return NULL; /* the object dies empty */
  b->rt = rt;
  b->data = p;
  b->len = len;
  b->alloc = p;
  b->alloc_size = len;
  gc_external_adjust(rt->heap, (int64_t)len);
  rt->array_buffers += (int64_t)len;
  return b;
}

rt_value_t rt_buffer_new(rt_runtime_t *rt, size_t len) {
  return (rt_value_t)owner_new(rt, len, true);
}

rt_value_t rt_buffer_from(rt_runtime_t *rt, const void *p, size_t len) {
  rt__buffer_t *b = owner_new(rt, len, false);
  if (b != NULL && len > 0)
    memcpy(b->data, p, len);
  return (rt_value_t)b;
}

rt_value_t rt_buffer_slice(rt_runtime_t *rt, const rt_value_t *buf,
                           size_t start, size_t end) {
  if (!rt_is_buffer(*buf))
    return RT_NONE;
  rt__buffer_t *s = gc_alloc(rt->heap, &rt__buffer_type, sizeof *s);
  if (s == NULL)
    return RT_NONE;
  rt__buffer_t *b = (rt__buffer_t *)*buf; /* read after the GC point */
  if (end > b->len)
    end = b->len;
  if (start > end)
    start = end;
  s->rt = rt;
  s->data = b->data + start;
  s->len = end - start;
  GC_WRITE(rt->heap, s, backing, b->backing ? b->backing : b);
  return (rt_value_t)s;
}

rt_value_t rt_buffer_from_string(rt_runtime_t *rt, const rt_value_t *str) {
  size_t len = rt_string_length(*str);
  rt__buffer_t *b = owner_new(rt, len, false);
  if (b != NULL && len > 0)
    memcpy(b->data, rt_string_data(*str), len);
  return (rt_value_t)b;
}

rt_value_t rt_buffer_to_string(rt_runtime_t *rt, const rt_value_t *buf) {
  /* The bytes do not move, so the pointer survives the allocation; the
   * handle keeps their owner alive meanwhile. */
  const rt__buffer_t *b = (const rt__buffer_t *)*buf;
  return rt_string_from_bytes(rt, b->data, b->len);
}

/* --- Access -------------------------------------------------------------- */

bool rt_is_buffer(rt_value_t v) { return rt__type(v) == &rt__buffer_type; }

uint8_t *rt_buffer_data(rt_value_t buf) {
  return ((rt__buffer_t *)buf)->data;
}

size_t rt_buffer_length(rt_value_t buf) {
  return ((const rt__buffer_t *)buf)->len;
}

void rt_buffer_set_free_hook(rt_runtime_t *rt, rt_buffer_free_hook_fn fn) {
  rt->free_hook = fn;
}
