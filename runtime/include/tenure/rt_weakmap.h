/* rt_weakmap.h -- weak maps ("WeakMap") keyed by object identity, on the
 * collector's ephemerons.
 *
 * JavaScript's WeakMap (V8's JSWeakMap over an EphemeronHashTable): a key
 * is a heap object, compared by identity (never by content), and its entry
 * lives only as long as the key is reachable from somewhere other than
 * weak-map values.  A value is kept alive by its entry while the key lives;
 * a value that refers back to its key, to a key of another entry (chains
 * key1 -> value1 -> key2 -> value2 -> ...), or to keys in a cycle through
 * values, keeps no key alive.  After the GC that finds a key unreachable
 * its entry is gone and its value can die with it.
 *
 * Keys: any heap value (strings, Arrays, Maps, Buffers, WeakMaps, objects of
 * the embedder's own gc types).  Immediates (small integers, booleans,
 * null, undefined), RT_NONE and boxed doubles are not keys: a number has no
 * identity (rt_number(0.5) twice gives two boxes, rt_number(1.0) none at
 * all); set rejects them with -EINVAL, as JS's TypeError.  Strings are keys
 * by identity: two strings with the same content are two keys (an interned
 * string is one object, so it is one key), and a string key dies when no
 * one else references it, like any object.
 *
 * Values: any value but RT_NONE (which get returns for "no entry").
 *
 * There is no iteration, as in JS.  rt_weakmap_size exists for tests and
 * statistics (JS has none): it counts the entries whose key was alive at
 * the last GC, or inserted since; a key that became unreachable since the
 * last GC still counts until a GC finds it dead.
 *
 * Identity hashing uses gc_object_id (objects move; an address is no hash):
 * the first get/set/has/delete with an object gives it an id (a 16-byte
 * table entry in the collector, dropped when the object dies).  See
 * runtime/DESIGN.md, section WeakMap.
 */
#ifndef TENURE_RT_WEAKMAP_H
#define TENURE_RT_WEAKMAP_H

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GC point.  An empty weak map with room for CAPACITY entries before its
 * first rebuild (0: the table is allocated at the first set).  Returns
 * RT_NONE when out of memory.  rt_typeof gives RT_TYPE_OTHER for it. */
RT_EXTERN rt_value_t rt_weakmap_new(rt_runtime_t *rt, size_t capacity);

RT_EXTERN bool rt_is_weakmap(rt_value_t v);

/* The value for KEY, or RT_NONE (also when KEY cannot be a key, or WM is
 * not a weak map).  Not a GC point. */
RT_EXTERN rt_value_t rt_weakmap_get(rt_runtime_t *rt, rt_value_t wm,
                                    rt_value_t key);
RT_EXTERN bool rt_weakmap_has(rt_runtime_t *rt, rt_value_t wm,
                              rt_value_t key);

/* GC point.  Sets the entry for *KEY to *V (with the write barrier).
 * Returns 0, -EINVAL (WM not a weak map, KEY not a heap object or a boxed
 * double, V is RT_NONE) or -ENOMEM. */
RT_EXTERN int rt_weakmap_set(rt_runtime_t *rt, const rt_value_t *wm,
                             const rt_value_t *key, const rt_value_t *v);

/* Removes the entry for KEY.  Returns 0, -ENOENT if there is none (also
 * for a value that cannot be a key), -EINVAL if WM is not a weak map.  Not
 * a GC point. */
RT_EXTERN int rt_weakmap_delete(rt_runtime_t *rt, rt_value_t wm,
                                rt_value_t key);

/* Entries whose key was alive at the last GC or was set since (see above).
 * O(capacity).  Not a GC point. */
RT_EXTERN size_t rt_weakmap_size(rt_value_t wm);

/* For tests and tuning: entry slots in the table, and the tombstones among
 * them (entries deleted or whose key died, not yet reused or rebuilt away).
 * Not GC points. */
RT_EXTERN size_t rt_weakmap_capacity(rt_value_t wm);
RT_EXTERN size_t rt_weakmap_tombstones(rt_value_t wm);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_WEAKMAP_H */
