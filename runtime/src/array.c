/* array.c -- arrays ("Array") and their ring-buffer backing stores.
 *
 * An array object holds only its store (internal edge "elements"); the
 * store ("(array elements)") is a ring buffer of values whose element edges
 * are numbered by array index, not by slot.  Growth doubles the store and
 * unrolls the ring, so push and unshift are amortized O(1); pop and shift
 * move an end of the ring and clear the vacated slot (INV(elements) in
 * rt_internal.h), so they are O(1) and never allocate.
 */
#include <errno.h>

#include "rt_internal.h"

/* --- Types --------------------------------------------------------------- */

static void array_trace(void *obj, gc_visitor_t *v) {
  rt__array_t *a = obj;
  GC_VISIT(v, &a->store, GC_EDGE_INTERNAL("elements"));
}

const gc_type_t rt__array_type = {
    .name = "Array", .size = sizeof(rt__array_t), .trace = array_trace};

static size_t elements_size(const void *obj) {
  return sizeof(rt__elements_t) +
         (size_t)((const rt__elements_t *)obj)->cap * sizeof(rt_value_t);
}

static void elements_trace(void *obj, gc_visitor_t *v) {
  rt__elements_t *s = obj;
  uint32_t j = s->start;
  for (uint32_t i = 0; i < s->len; i++) {
    GC_VISIT(v, &s->v[j], GC_EDGE_ELEM(i));
    if (++j == s->cap)
      j = 0;
  }
}

const gc_type_t rt__elements_type = {.name = "(array elements)",
                                     .size_of = elements_size,
                                     .trace = elements_trace};

/* --- Construction -------------------------------------------------------- */

/* GC point. */
static rt__elements_t *store_alloc(rt_runtime_t *rt, size_t cap) {
  if (cap > UINT32_MAX)
    return NULL;
  rt__elements_t *s = gc_alloc(rt->heap, &rt__elements_type,
                               sizeof(rt__elements_t) + cap * sizeof(rt_value_t));
  if (s != NULL)
    s->cap = (uint32_t)cap;
  return s;
}

rt_value_t rt_array_new(rt_runtime_t *rt, size_t capacity) {
  gc_heap_t *h = rt->heap;
  rt__array_t *a = gc_alloc(h, &rt__array_type, sizeof *a);
  if (a == NULL || capacity == 0)
    return (rt_value_t)a;
  gc_scope_t scope;
  gc_scope_open(h, &scope);
  rt__array_t **ha = GC_HANDLE(h, a);
  rt__elements_t *s = store_alloc(rt, capacity);
  a = *ha;
  gc_scope_close(h, &scope);
  if (s == NULL)
    return RT_NONE;
  GC_WRITE(h, a, store, s);
  return (rt_value_t)a;
}

/* --- Access -------------------------------------------------------------- */

bool rt_is_array(rt_value_t v) { return rt__type(v) == &rt__array_type; }

size_t rt_array_length(rt_value_t arr) {
  const rt__elements_t *s = ((const rt__array_t *)arr)->store;
  return s ? s->len : 0;
}

size_t rt_array_capacity(rt_value_t arr) {
  const rt__elements_t *s = ((const rt__array_t *)arr)->store;
  return s ? s->cap : 0;
}

static inline size_t slot(const rt__elements_t *s, size_t i) {
  size_t j = s->start + i;
  return j >= s->cap ? j - s->cap : j;
}

rt_value_t rt_array_get(rt_value_t arr, size_t i) {
  const rt__elements_t *s = ((const rt__array_t *)arr)->store;
  if (s == NULL || i >= s->len)
    return RT_UNDEFINED;
  return s->v[slot(s, i)];
}

int rt_array_set(rt_runtime_t *rt, rt_value_t arr, size_t i, rt_value_t v) {
  rt__elements_t *s = ((rt__array_t *)arr)->store;
  if (s == NULL || i >= s->len)
    return -ERANGE;
  gc_write(rt->heap, s, &s->v[slot(s, i)], (void *)v);
  return 0;
}

/* GC point.  Makes room for one more element in *ARR's store. */
static int grow(rt_runtime_t *rt, const rt_value_t *arr) {
  rt__elements_t *old = ((rt__array_t *)*arr)->store;
  size_t len = old ? old->len : 0, cap = old ? old->cap : 0;
  if (len < cap)
    return 0;
  size_t ncap = cap < 4 ? 4 : cap * 2;
  rt__elements_t *s = store_alloc(rt, ncap);
  if (s == NULL)
    return -ENOMEM;
  rt__array_t *a = (rt__array_t *)*arr;
  old = a->store;
  gc_heap_t *h = rt->heap;
  if (old != NULL) {
    for (size_t i = 0; i < len; i++)
      gc_write(h, s, &s->v[i], (void *)old->v[slot(old, i)]);
    s->len = (uint32_t)len;
  }
  GC_WRITE(h, a, store, s);
  return 0;
}

int rt_array_push(rt_runtime_t *rt, const rt_value_t *arr,
                  const rt_value_t *v) {
  if (!rt_is_array(*arr))
    return -EINVAL;
  int err = grow(rt, arr);
  if (err < 0)
    return err;
  rt__elements_t *s = ((rt__array_t *)*arr)->store;
  gc_write(rt->heap, s, &s->v[slot(s, s->len)], (void *)*v);
  s->len++;
  return 0;
}

int rt_array_unshift(rt_runtime_t *rt, const rt_value_t *arr,
                     const rt_value_t *v) {
  if (!rt_is_array(*arr))
    return -EINVAL;
  int err = grow(rt, arr);
  if (err < 0)
    return err;
  rt__elements_t *s = ((rt__array_t *)*arr)->store;
  s->start = s->start == 0 ? s->cap - 1 : s->start - 1;
  s->len++;
  gc_write(rt->heap, s, &s->v[s->start], (void *)*v);
  return 0;
}

rt_value_t rt_array_pop(rt_runtime_t *rt, rt_value_t arr) {
  rt__elements_t *s = ((rt__array_t *)arr)->store;
  if (s == NULL || s->len == 0)
    return RT_UNDEFINED;
  size_t j = slot(s, s->len - 1);
  rt_value_t v = s->v[j];
  s->v[j] = 0;
  s->len--;
  return v;
}

rt_value_t rt_array_shift(rt_runtime_t *rt, rt_value_t arr) {
  rt__elements_t *s = ((rt__array_t *)arr)->store;
  if (s == NULL || s->len == 0)
    return RT_UNDEFINED;
  rt_value_t v = s->v[s->start];
  s->v[s->start] = 0;
  s->start = s->start + 1 == s->cap ? 0 : s->start + 1;
  s->len--;
  if (s->len == 0)
    s->start = 0;
  return v;
}
