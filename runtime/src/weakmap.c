/* weakmap.c -- weak maps ("WeakMap") on the collector's ephemerons.
 *
 * Design.  As V8's JSWeakMap and its EphemeronHashTable: a WeakMap object
 * holds only its table (internal edge "table"), so a rebuild replaces the
 * table while the map keeps its identity; the table ("(weakmap table)") is
 * one open-addressing array of entries {id, key, value}, linear probing,
 * power-of-two capacity.
 *
 *   - Keys are compared by identity and hashed by gc_object_id(key): a
 *     stable id that survives moves (an address is no hash in a moving
 *     heap).  The id sits in a plain uint64_t field that the trace callback
 *     never reports, so the collector does not see it.
 *   - The trace callback reports each entry with a key as an ephemeron,
 *     GC_VISIT_EPHEMERON(&key, &value): the collector keeps and traces the
 *     value only once the key is known to be alive through other
 *     references, to a fixpoint, so values that lead back to their own key
 *     or to other keys (chains, cycles) keep none of them alive; a key found
 *     dead has both slots set to NULL by that GC.
 *   - An entry is empty (id 0: never used), live (key != NULL) or a
 *     tombstone (id != 0, key NULL: deleted, or its key died and the GC
 *     cleared it).  The id stays in a tombstone, so probe chains never
 *     break, whichever entries the GC clears.  A lookup probes from the id's
 *     slot to the first empty entry, matching on id among live entries (ids
 *     are never reused, so a stale tombstone id matches nothing live).
 *
 * INV(wmtable): cap is a power of two >= WM_MIN_CAP; used counts the
 * entries with id != 0 (live and tombstones) and used < cap, so every probe
 * ends at an empty entry; at most one live entry has a given id; key ==
 * NULL implies value == NULL (delete clears both, the GC clears both); every
 * live entry's id is gc_object_id(key).  The GC never changes used: it only
 * turns live entries into tombstones.
 *
 * Insertion probes the whole chain for a live entry with the key's id
 * (update in place), else takes the first tombstone on the chain, or the
 * empty entry that ends it while used + 1 <= 3/4 cap.  Otherwise the table
 * is rebuilt for its live entries: the smallest power of two >= 2 * (live +
 * 1), which drops every tombstone and also shrinks a table whose keys
 * mostly died.  After a rebuild the table is at most half full, so the
 * next one comes at least cap / 4 inserts later: amortized O(1).  The live
 * count is taken before the new table is allocated (a GC point: entries may
 * die meanwhile, never appear), and the old table is re-read from the map
 * after it.
 *
 * Write barrier: keys and values are stored with gc_write, so an old table
 * (promoted, or a large object: over GC_MAX_REGULAR_SIZE, about 680
 * entries, the table is allocated in large-object space, which is old) that
 * receives a young key or value is remembered.  Clearing stores NULL, which
 * needs no barrier.
 *
 * Types: the runtime registers its core types at rt_runtime_create
 * (runtime.c); these two are registered by rt_weakmap_new (registering
 * twice is harmless), which every table allocation follows.
 *
 * In heap snapshots a table entry appears as a weak edge "key" and an
 * internal edge "value" from the table (the snapshot writer visits
 * ephemerons that way).
 */
#include <errno.h>

#include "rt_internal.h"

#define WM_MIN_CAP ((uint32_t)8)
#define WM_MAX_CAP ((uint32_t)1 << 30)

typedef struct wm_entry_s {
  uint64_t id;      /* 0: empty; else gc_object_id of the (maybe dead) key */
  void *key;        /* NULL: empty or tombstone */
  rt_value_t value; /* NULL when key is */
} wm_entry_t;

/* INV(wmtable) above. */
typedef struct wm_table_s {
  uint32_t cap;
  uint32_t used;
  wm_entry_t e[];
} wm_table_t;

typedef struct weakmap_s {
  wm_table_t *table; /* NULL while empty and never sized */
} weakmap_t;

/* --- Types --------------------------------------------------------------- */

static void weakmap_trace(void *obj, gc_visitor_t *v) {
  weakmap_t *m = obj;
  GC_VISIT(v, &m->table, GC_EDGE_INTERNAL("table"));
}

static const gc_type_t weakmap_type = {
    .name = "WeakMap", .size = sizeof(weakmap_t), .trace = weakmap_trace};

static size_t table_bytes(uint32_t cap) {
  return sizeof(wm_table_t) + (size_t)cap * sizeof(wm_entry_t);
}

static size_t table_size(const void *obj) {
  return table_bytes(((const wm_table_t *)obj)->cap);
}

static void table_trace(void *obj, gc_visitor_t *v) {
  wm_table_t *t = obj;
  for (uint32_t i = 0; i < t->cap; i++) {
    wm_entry_t *e = &t->e[i];
    if (e->key != NULL)
      GC_VISIT_EPHEMERON(v, &e->key, &e->value, GC_EDGE_INTERNAL("value"));
  }
}

static const gc_type_t table_type = {.name = "(weakmap table)",
                                     .size_of = table_size,
                                     .trace = table_trace};

/* --- Tables -------------------------------------------------------------- */

/* Fibonacci hashing of the id: consecutive ids (they step by 2) spread. */
static inline uint32_t slot_of(uint64_t id, uint32_t mask) {
  return (uint32_t)((id * 0x9e3779b97f4a7c15u) >> 32) & mask;
}

/* The capacity for N entries (at most half full), or 0 if too large. */
static uint32_t cap_for(size_t n) {
  if (n > WM_MAX_CAP / 2)
    return 0;
  uint32_t cap = WM_MIN_CAP;
  while ((size_t)cap < 2 * n)
    cap *= 2;
  return cap;
}

/* GC point. */
static wm_table_t *table_alloc(rt_runtime_t *rt, uint32_t cap) {
  wm_table_t *t = gc_alloc(rt->heap, &table_type, table_bytes(cap));
  if (t != NULL)
    t->cap = cap; /* before any GC point: size_of reads it */
  return t;
}

/* The live entry for ID, or NULL. */
static wm_entry_t *find(wm_table_t *t, uint64_t id) {
  uint32_t mask = t->cap - 1;
  for (uint32_t i = slot_of(id, mask);; i = (i + 1) & mask) {
    wm_entry_t *e = &t->e[i];
    if (e->id == 0)
      return NULL;
    if (e->id == id && e->key != NULL)
      return e;
  }
}

static inline void store(gc_heap_t *h, wm_table_t *t, wm_entry_t *e,
                         uint64_t id, void *key, rt_value_t v) {
  e->id = id;
  gc_write(h, t, &e->key, key);
  gc_write(h, t, &e->value, (void *)v);
}

/* Inserts into a table that holds no tombstone, no entry for ID, and has
 * room.  Not a GC point. */
static void insert_fresh(gc_heap_t *h, wm_table_t *t, uint64_t id, void *key,
                         rt_value_t v) {
  uint32_t mask = t->cap - 1, i = slot_of(id, mask);
  while (t->e[i].id != 0)
    i = (i + 1) & mask;
  t->used++;
  store(h, t, &t->e[i], id, key, v);
}

static size_t count_live(const wm_table_t *t) {
  size_t n = 0;
  for (uint32_t i = 0; i < t->cap; i++)
    n += t->e[i].key != NULL;
  return n;
}

/* --- Weak maps ----------------------------------------------------------- */

static inline bool key_ok(rt_value_t k) {
  return rt_is_heap(k) && rt__type_of(k) != &rt__number_type;
}

rt_value_t rt_weakmap_new(rt_runtime_t *rt, size_t capacity) {
  gc_heap_t *h = rt->heap;
  if (gc_type_register(h, &weakmap_type) < 0 ||
      gc_type_register(h, &table_type) < 0)
    return RT_NONE;
  uint32_t cap = 0;
  if (capacity > 0 && (cap = cap_for(capacity)) == 0)
    return RT_NONE;
  weakmap_t *m = gc_alloc(h, &weakmap_type, sizeof *m);
  if (m == NULL || cap == 0)
    return (rt_value_t)m;
  gc_scope_t scope;
  gc_scope_open(h, &scope);
  weakmap_t **hm = GC_HANDLE(h, m);
  wm_table_t *t = table_alloc(rt, cap);
  m = *hm;
  gc_scope_close(h, &scope);
  if (t == NULL)
    return RT_NONE;
  GC_WRITE(h, m, table, t);
  return (rt_value_t)m;
}

bool rt_is_weakmap(rt_value_t v) { return rt__type(v) == &weakmap_type; }

/* The live entry for KEY in WM, or NULL.  A key that has no id was never
 * set in any WeakMap: a miss, and it gets no id (gc_object_id_peek). */
static wm_entry_t *lookup(rt_runtime_t *rt, rt_value_t wm, rt_value_t key) {
  if (!rt_is_weakmap(wm) || !key_ok(key))
    return NULL;
  wm_table_t *t = ((weakmap_t *)wm)->table;
  if (t == NULL || t->used == 0)
    return NULL;
  uint64_t id = gc_object_id_peek(rt->heap, (const void *)key);
  return id == 0 ? NULL : find(t, id);
}

rt_value_t rt_weakmap_get(rt_runtime_t *rt, rt_value_t wm, rt_value_t key) {
  wm_entry_t *e = lookup(rt, wm, key);
  return e != NULL ? e->value : RT_NONE;
}

bool rt_weakmap_has(rt_runtime_t *rt, rt_value_t wm, rt_value_t key) {
  return lookup(rt, wm, key) != NULL;
}

int rt_weakmap_set(rt_runtime_t *rt, const rt_value_t *wm,
                   const rt_value_t *key, const rt_value_t *v) {
  if (!rt_is_weakmap(*wm) || !key_ok(*key) || *v == RT_NONE)
    return -EINVAL;
  gc_heap_t *h = rt->heap;
  uint64_t id = gc_object_id(h, (const void *)*key);
  if (id == 0)
    return -ENOMEM;
  wm_table_t *t = ((weakmap_t *)*wm)->table;
  if (t != NULL) {
    uint32_t mask = t->cap - 1;
    wm_entry_t *slot = NULL; /* the first tombstone, else the empty end */
    for (uint32_t i = slot_of(id, mask);; i = (i + 1) & mask) {
      wm_entry_t *e = &t->e[i];
      if (e->id == 0) {
        if (slot == NULL)
          slot = e;
        break;
      }
      if (e->key == NULL) {
        if (slot == NULL)
          slot = e;
      } else if (e->id == id) {
        gc_write(h, t, &e->value, (void *)*v);
        return 0;
      }
    }
    if (slot->id != 0) { /* a tombstone: reuse it */
      store(h, t, slot, id, (void *)*key, *v);
      return 0;
    }
    if (((size_t)t->used + 1) * 4 <= (size_t)t->cap * 3) {
      t->used++;
      store(h, t, slot, id, (void *)*key, *v);
      return 0;
    }
  }
  /* Rebuild for the live entries and this one. */
  uint32_t cap = cap_for((t != NULL ? count_live(t) : 0) + 1);
  if (cap == 0)
    return -ENOMEM;
  wm_table_t *n = table_alloc(rt, cap); /* GC point */
  if (n == NULL)
    return -ENOMEM;
  weakmap_t *m = (weakmap_t *)*wm;
  t = m->table;
  if (t != NULL)
    for (uint32_t i = 0; i < t->cap; i++) {
      wm_entry_t *e = &t->e[i];
      if (e->key != NULL)
        insert_fresh(h, n, e->id, e->key, e->value);
    }
  GC_WRITE(h, m, table, n);
  insert_fresh(h, n, id, (void *)*key, *v);
  return 0;
}

int rt_weakmap_delete(rt_runtime_t *rt, rt_value_t wm, rt_value_t key) {
  if (!rt_is_weakmap(wm))
    return -EINVAL;
  wm_entry_t *e = lookup(rt, wm, key);
  if (e == NULL)
    return -ENOENT;
  e->key = NULL; /* a tombstone: the id stays */
  e->value = 0;
  return 0;
}

size_t rt_weakmap_size(rt_value_t wm) {
  if (!rt_is_weakmap(wm))
    return 0;
  const wm_table_t *t = ((const weakmap_t *)wm)->table;
  return t != NULL ? count_live(t) : 0;
}

size_t rt_weakmap_capacity(rt_value_t wm) {
  if (!rt_is_weakmap(wm))
    return 0;
  const wm_table_t *t = ((const weakmap_t *)wm)->table;
  return t != NULL ? t->cap : 0;
}

size_t rt_weakmap_tombstones(rt_value_t wm) {
  if (!rt_is_weakmap(wm))
    return 0;
  const wm_table_t *t = ((const weakmap_t *)wm)->table;
  return t != NULL ? t->used - count_live(t) : 0;
}
