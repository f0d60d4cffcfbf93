/* map.c -- insertion-ordered hash maps ("Map") and their tables.
 *
 * A map object holds only its table (internal edge "table"), as V8's JSMap
 * and its OrderedHashMap.  The table ("(map table)") keeps entries in
 * insertion order in one array and a separate power-of-two array of bucket
 * heads probed linearly (the compact layout of CPython's dict), so
 * iteration is a scan by position and survives GCs.  INV(table) is in
 * rt_internal.h.
 *
 * Keys are strings (compared by content, hashed by their cached content
 * hash) or small integers; never by address, since objects move.  A delete
 * turns the entry into a tombstone (RT__HOLE); the table is rebuilt when
 * its entry array is full, to 2 * (live + 1) entries, which both drops the
 * tombstones and shrinks a mostly-deleted table: the table stays within a
 * constant factor of the live size and every rebuild is paid for by as many
 * inserts as there are live entries (amortized O(1)).
 *
 * In heap snapshots an entry appears as the value's edge from the table,
 * named by its key (a property edge for a string key, an element edge for
 * an integer key), plus an internal edge "key" to the key string.
 */
#include <errno.h>

#include "rt_internal.h"

/* --- Types --------------------------------------------------------------- */

static void map_trace(void *obj, gc_visitor_t *v) {
  rt__map_t *m = obj;
  GC_VISIT(v, &m->table, GC_EDGE_INTERNAL("table"));
}

const gc_type_t rt__map_type = {
    .name = "Map", .size = sizeof(rt__map_t), .trace = map_trace};

static size_t table_bytes(size_t cap, size_t nbuckets) {
  return sizeof(rt__table_t) + cap * 2 * sizeof(rt_value_t) +
         nbuckets * sizeof(uint32_t);
}

static size_t table_size(const void *obj) {
  const rt__table_t *t = obj;
  return table_bytes(t->cap, t->nbuckets);
}

static void table_trace(void *obj, gc_visitor_t *v) {
  rt__table_t *t = obj;
  for (uint32_t i = 0; i < t->used; i++) {
    rt_value_t *e = &t->e[2 * (size_t)i];
    if (e[0] == RT__HOLE)
      continue;
    if (rt_is_int(e[0])) {
      GC_VISIT(v, &e[1], GC_EDGE_ELEM(rt_int_value(e[0])));
    } else {
      GC_VISIT(v, &e[0], GC_EDGE_INTERNAL("key"));
      /* The name points into the key string (no read: the scavenger may
       * have just moved it; the name is used only when nothing moves). */
      GC_VISIT(v, &e[1], GC_EDGE_PROP(((rt__string_t *)e[0])->data));
    }
  }
}

const gc_type_t rt__table_type = {
    .name = "(map table)", .size_of = table_size, .trace = table_trace};

/* --- Tables -------------------------------------------------------------- */

rt__table_t *rt__table_alloc(rt_runtime_t *rt, size_t cap) {
  if (cap < 1)
    cap = 1;
  if (cap > UINT32_MAX / 4)
    return NULL;
  size_t nb = 2;
  while (nb < 2 * cap)
    nb *= 2;
  rt__table_t *t = gc_alloc(rt->heap, &rt__table_type, table_bytes(cap, nb));
  if (t != NULL) {
    t->cap = (uint32_t)cap;
    t->nbuckets = (uint32_t)nb;
  }
  return t;
}

/* The entry index of KEY, or -1. */
static inline int64_t find(rt__table_t *t, rt_value_t key, uint32_t hash) {
  uint32_t mask = t->nbuckets - 1, *b = rt__table_buckets(t);
  for (uint32_t i = hash & mask; b[i] != 0; i = (i + 1) & mask) {
    uint32_t x = b[i] - 1;
    if (rt__key_equal(t->e[2 * (size_t)x], key))
      return x;
  }
  return -1;
}

/* Appends an entry for a key known to be absent; T has room. */
static inline void append(gc_heap_t *h, rt__table_t *t, rt_value_t k,
                          rt_value_t v, uint32_t hash) {
  uint32_t mask = t->nbuckets - 1, *b = rt__table_buckets(t);
  uint32_t i = hash & mask;
  while (b[i] != 0)
    i = (i + 1) & mask;
  uint32_t x = t->used++;
  b[i] = x + 1;
  gc_write(h, t, &t->e[2 * (size_t)x], (void *)k);
  gc_write(h, t, &t->e[2 * (size_t)x + 1], (void *)v);
  t->live++;
}

void rt__table_put(gc_heap_t *h, rt__table_t *t, rt_value_t k, rt_value_t v) {
  uint32_t hash = rt__key_hash(k);
  int64_t x = find(t, k, hash);
  if (x >= 0)
    gc_write(h, t, &t->e[2 * (size_t)x + 1], (void *)v);
  else
    append(h, t, k, v, hash);
}

/* --- Maps ---------------------------------------------------------------- */

rt_value_t rt_map_new(rt_runtime_t *rt, size_t capacity) {
  gc_heap_t *h = rt->heap;
  rt__map_t *m = gc_alloc(h, &rt__map_type, sizeof *m);
  if (m == NULL || capacity == 0)
    return (rt_value_t)m;
  gc_scope_t scope;
  gc_scope_open(h, &scope);
  rt__map_t **hm = GC_HANDLE(h, m);
  rt__table_t *t = rt__table_alloc(rt, capacity);
  m = *hm;
  gc_scope_close(h, &scope);
  if (t == NULL)
    return RT_NONE;
  GC_WRITE(h, m, table, t);
  return (rt_value_t)m;
}

bool rt_is_map(rt_value_t v) { return rt__type(v) == &rt__map_type; }

size_t rt_map_size(rt_value_t map) {
  const rt__table_t *t = ((const rt__map_t *)map)->table;
  return t ? t->live : 0;
}

size_t rt_map_capacity(rt_value_t map) {
  const rt__table_t *t = ((const rt__map_t *)map)->table;
  return t ? t->cap : 0;
}

static inline bool key_ok(rt_value_t k) {
  return rt_is_int(k) || rt__type(k) == &rt__string_type;
}

rt_value_t rt_map_get(rt_value_t map, rt_value_t key) {
  rt__table_t *t = ((rt__map_t *)map)->table;
  if (t == NULL || !key_ok(key))
    return RT_NONE;
  int64_t x = find(t, key, rt__key_hash(key));
  return x < 0 ? RT_NONE : t->e[2 * (size_t)x + 1];
}

rt_value_t rt_map_get_cstr(rt_value_t map, const char *key) {
  rt__table_t *t = ((rt__map_t *)map)->table;
  if (t == NULL)
    return RT_NONE;
  size_t n = strlen(key);
  uint32_t hash = rt__hash_bytes(key, n);
  uint32_t mask = t->nbuckets - 1, *b = rt__table_buckets(t);
  for (uint32_t i = hash & mask; b[i] != 0; i = (i + 1) & mask) {
    rt_value_t k = t->e[2 * (size_t)(b[i] - 1)];
    if (rt_is_heap(k) && k != RT__HOLE && rt_string_hash(k) == hash &&
        rt_string_length(k) == n && memcmp(rt_string_data(k), key, n) == 0)
      return t->e[2 * (size_t)(b[i] - 1) + 1];
  }
  return RT_NONE;
}

bool rt_map_has(rt_value_t map, rt_value_t key) {
  return rt_map_get(map, key) != RT_NONE;
}

int rt_map_set(rt_runtime_t *rt, const rt_value_t *map, const rt_value_t *key,
               const rt_value_t *v) {
  if (!rt_is_map(*map) || !key_ok(*key))
    return -EINVAL;
  gc_heap_t *h = rt->heap;
  uint32_t hash = rt__key_hash(*key);
  rt__table_t *t = ((rt__map_t *)*map)->table;
  if (t != NULL) {
    int64_t x = find(t, *key, hash);
    if (x >= 0) {
      gc_write(h, t, &t->e[2 * (size_t)x + 1], (void *)*v);
      return 0;
    }
  }
  if (t == NULL || t->used == t->cap) {
    size_t live = t ? t->live : 0;
    rt__table_t *n = rt__table_alloc(rt, 2 * (live + 1));
    if (n == NULL)
      return -ENOMEM;
    rt__map_t *m = (rt__map_t *)*map;
    t = m->table;
    if (t != NULL)
      for (uint32_t i = 0; i < t->used; i++) {
        rt_value_t k = t->e[2 * (size_t)i];
        if (k != RT__HOLE)
          append(h, n, k, t->e[2 * (size_t)i + 1], rt__key_hash(k));
      }
    GC_WRITE(h, m, table, n);
    t = n;
  }
  append(h, t, *key, *v, hash);
  return 0;
}

int rt_map_delete(rt_runtime_t *rt, rt_value_t map, rt_value_t key) {
  rt__table_t *t = ((rt__map_t *)map)->table;
  if (t == NULL || !key_ok(key))
    return -ENOENT;
  int64_t x = find(t, key, rt__key_hash(key));
  if (x < 0)
    return -ENOENT;
  t->e[2 * (size_t)x] = RT__HOLE;
  t->e[2 * (size_t)x + 1] = 0;
  t->live--;
  return 0;
}

bool rt_map_next(rt_value_t map, size_t *cursor, rt_value_t *key,
                 rt_value_t *v) {
  const rt__table_t *t = ((const rt__map_t *)map)->table;
  if (t == NULL)
    return false;
  for (size_t i = *cursor; i < t->used; i++) {
    if (t->e[2 * i] == RT__HOLE)
      continue;
    if (key)
      *key = t->e[2 * i];
    if (v)
      *v = t->e[2 * i + 1];
    *cursor = i + 1;
    return true;
  }
  *cursor = t->used;
  return false;
}
