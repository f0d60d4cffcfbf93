/* intern.c -- the weak intern table of strings.
 *
 * One heap object ("(internalized strings)"), rooted from the runtime as
 * "(Internalized strings)" like V8's string table, with open addressing:
 * str[cap] then hash[cap].  Its string slots are weak edges, so an interned
 * string that nothing else references dies and its slot reads NULL after
 * the GC.  INV(intern): hash[i] == 0 marks a never-used slot and ends a
 * probe; a slot with hash[i] != 0 and str[i] == NULL is a tombstone (a dead
 * string) and does not; every live string in the table is unique by
 * content and has its interned flag set.  used counts non-free slots and
 * stays under 3/4 of cap; a rebuild drops the tombstones.
 */
#include <errno.h>

#include "rt_internal.h"

typedef struct intern_table_s {
  uint32_t cap; /* a power of two */
  uint32_t used;
  uint64_t pad_;
  rt__string_t *str[];
  /* uint32_t hash[cap] follows str[cap] */
} intern_table_t;

static inline uint32_t *hashes(intern_table_t *t) {
  return (uint32_t *)(t->str + t->cap);
}

static size_t table_size(const void *obj) {
  const intern_table_t *t = obj;
  return sizeof *t + (size_t)t->cap * (sizeof(void *) + sizeof(uint32_t));
}

static void table_trace(void *obj, gc_visitor_t *v) {
  intern_table_t *t = obj;
  for (uint32_t i = 0; i < t->cap; i++)
    if (t->str[i] != NULL)
      GC_VISIT(v, &t->str[i], GC_EDGE_WEAK("string"));
}

const gc_type_t rt__intern_type = {.name = "(internalized strings)",
                                   .size_of = table_size,
                                   .trace = table_trace};

/* GC point. */
static intern_table_t *table_alloc(rt_runtime_t *rt, uint32_t cap) {
  size_t size = sizeof(intern_table_t) +
                (size_t)cap * (sizeof(void *) + sizeof(uint32_t));
  intern_table_t *t = gc_alloc(rt->heap, &rt__intern_type, size);
  if (t != NULL)
    t->cap = cap;
  return t;
}

int rt__intern_init(rt_runtime_t *rt) {
  intern_table_t *t = table_alloc(rt, 64);
  if (t == NULL)
    return -ENOMEM;
  rt->intern = t;
  return gc_root_add(rt->heap, &rt->intern, "(Internalized strings)");
}

/* Not a GC point: T must have a free slot. */
static void put(gc_heap_t *h, intern_table_t *t, rt__string_t *s,
                uint32_t hash) {
  uint32_t mask = t->cap - 1, *hs = hashes(t);
  for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
    if (hs[i] == 0 || t->str[i] == NULL) {
      if (hs[i] == 0)
        t->used++;
      hs[i] = hash;
      gc_write(h, t, &t->str[i], s);
      return;
    }
  }
}

/* GC point.  Replaces the table with one sized for its live strings. */
static int rebuild(rt_runtime_t *rt) {
  intern_table_t *old = rt->intern;
  uint32_t live = 0;
  for (uint32_t i = 0; i < old->cap; i++)
    live += old->str[i] != NULL;
  uint32_t cap = 64;
  while (cap < 4 * ((size_t)live + 1) / 2 + 16)
    cap *= 2;
  intern_table_t *t = table_alloc(rt, cap);
  if (t == NULL)
    return -ENOMEM;
  old = rt->intern; /* it may have moved, and lost strings */
  uint32_t *hs = hashes(old);
  for (uint32_t i = 0; i < old->cap; i++)
    if (old->str[i] != NULL)
      put(rt->heap, t, old->str[i], hs[i]);
  rt->intern = t;
  return 0;
}

/* Not a GC point. */
static rt__string_t *lookup(rt_runtime_t *rt, const char *s, size_t len,
                            uint32_t hash) {
  intern_table_t *t = rt->intern;
  uint32_t mask = t->cap - 1, *hs = hashes(t);
  for (uint32_t i = hash & mask; hs[i] != 0; i = (i + 1) & mask) {
    rt__string_t *x = t->str[i];
    if (hs[i] == hash && x != NULL && x->len == len &&
        memcmp(x->data, s, len) == 0)
      return x;
  }
  return NULL;
}

rt_value_t rt__intern(rt_runtime_t *rt, const char *s, size_t len,
                      uint32_t hash) {
  rt__string_t *x = lookup(rt, s, len, hash);
  if (x != NULL)
    return (rt_value_t)x;
  x = rt__string_alloc(rt, len);
  if (x == NULL)
    return RT_NONE;
  memcpy(x->data, s, len);
  x->hash = hash;
  x->interned = 1;
  intern_table_t *t = rt->intern;
  if ((size_t)t->used + 1 > (size_t)t->cap / 4 * 3) {
    gc_scope_t scope;
    gc_scope_open(rt->heap, &scope);
    rt__string_t **hx = GC_HANDLE(rt->heap, x);
    int err = rebuild(rt);
    x = *hx;
    gc_scope_close(rt->heap, &scope);
    if (err < 0)
      return RT_NONE;
  }
  put(rt->heap, rt->intern, x, hash);
  return (rt_value_t)x;
}

rt_value_t rt_string_intern(rt_runtime_t *rt, const char *s, size_t len) {
  if (len > RT_STRING_MAX)
    return RT_NONE;
  return rt__intern(rt, s, len, rt__hash_bytes(s, len));
}

size_t rt_intern_count(rt_runtime_t *rt) {
  intern_table_t *t = rt->intern;
  size_t n = 0;
  for (uint32_t i = 0; i < t->cap; i++)
    n += t->str[i] != NULL;
  return n;
}
