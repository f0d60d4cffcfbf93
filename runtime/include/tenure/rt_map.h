/* rt_map.h -- insertion-ordered hash maps ("Map") keyed by strings or
 * small integers.
 *
 * A map is a small object whose internal edge "table" leads to its hash
 * table ("(map table)"), as V8's JSMap and OrderedHashMap.  Entries are kept
 * in insertion order; a delete leaves a tombstone that the next rehash
 * compacts away, and the table shrinks when it is mostly empty, so a map
 * with interleaved inserts and deletes stays within a constant factor of
 * its live size.  Keys hash by content (never by address: objects move).
 *
 * Iteration is by position (rt_map_next with a size_t cursor), so it stays
 * valid across GCs; entries deleted meanwhile are skipped.  An insert that
 * rehashes the table during an iteration compacts positions: the iteration
 * may then see entries again or miss some (as with most C hash maps; JS
 * Map's stronger guarantee is not provided).
 */
#ifndef TENURE_RT_MAP_H
#define TENURE_RT_MAP_H

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GC point.  An empty map with room for CAPACITY entries. */
RT_EXTERN rt_value_t rt_map_new(rt_runtime_t *rt, size_t capacity);

RT_EXTERN bool rt_is_map(rt_value_t v);
RT_EXTERN size_t rt_map_size(rt_value_t map);
/* The value for KEY, or RT_NONE.  Not a GC point. */
RT_EXTERN rt_value_t rt_map_get(rt_value_t map, rt_value_t key);
RT_EXTERN rt_value_t rt_map_get_cstr(rt_value_t map, const char *key);
RT_EXTERN bool rt_map_has(rt_value_t map, rt_value_t key);
/* GC point.  Sets *KEY to *V (keys: strings or small integers).  Returns
 * 0, -EINVAL (bad key or not a map) or -ENOMEM. */
RT_EXTERN int rt_map_set(rt_runtime_t *rt, const rt_value_t *map,
                         const rt_value_t *key, const rt_value_t *v);
/* Removes KEY.  Returns 0, or -ENOENT if absent.  Not a GC point. */
RT_EXTERN int rt_map_delete(rt_runtime_t *rt, rt_value_t map, rt_value_t key);
/* The next live entry at or after *CURSOR (start at 0): stores it in *KEY
 * and *V (either may be NULL), advances *CURSOR and returns true; false at
 * the end.  Not a GC point. */
RT_EXTERN bool rt_map_next(rt_value_t map, size_t *cursor, rt_value_t *key,
                           rt_value_t *v);
/* Entry slots in the table (live + tombstones + free), for tests. */
RT_EXTERN size_t rt_map_capacity(rt_value_t map);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_MAP_H */
