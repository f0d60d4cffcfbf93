/* gc_snapshot.h -- heap snapshots in V8's .heapsnapshot format.
 *
 * gc_snapshot_write streams a heap as the JSON document that
 * v8.writeHeapSnapshot() produces (node 20's meta: node fields type, name,
 * id, self_size, edge_count, trace_node_id, detachedness), so Chrome
 * DevTools, memlab and tenure-heap load it.  The document is streamed: only
 * per-node arrays (address, edge count), an address -> node index table and
 * the string table are kept in memory, never the text.
 *
 * What the graph holds (as V8 lays it out):
 *   node 0       synthetic ""  (id 1), with an element edge to
 *   "(GC roots)" synthetic     (id 3), with element edges to the sub-roots
 *                "(Handle scope)", "(Persistent handles)", "(Weak handles)"
 *                and one per embedder root label (gc_root_add,
 *                gc_root_tracer_add; ids 5, 7, 9, ...).  A sub-root's edges
 *                to objects are internal edges named "1", "2", ... (weak for
 *                weak handles), as V8's; a root tracer's edges keep the kind
 *                and name the tracer reports.
 *   objects      every object reachable from the roots (through strong or
 *                weak edges), as V8's snapshots hold only reachable objects
 *                (node collects garbage first; we skip the unreachable ones
 *                instead, so writing is not a GC point).  Id: gc_object_id,
 *                stable across snapshots while the object lives; self size:
 *                header + payload, as allocated.
 *   edges        one per non-NULL, non-immediate slot the trace callback
 *                reports: GC_EDGE_PROPERTY -> "property" (name),
 *                GC_EDGE_ELEMENT -> "element" (index), GC_EDGE_INTERNAL ->
 *                "internal" (name), GC_EDGE_WEAK -> "weak" (name).
 *   external     an object whose type has external_size() returning N > 0
 *                gets an internal "backing_store" edge to a native node
 *                "system / JSArrayBufferData" of self size N (V8's layout for
 *                an ArrayBuffer's bytes); its id is the object's id + 1.
 *
 * Node types come from the type's registered name:
 *   "string"                       string (name: describe() output,
 *                                  truncated to 1024 characters as V8 does)
 *   "concatenated string",
 *   "sliced string", "symbol",
 *   "bigint", "closure", "regexp"  the V8 node type of that name
 *   "number", "HeapNumber"         number, named "heap number"
 *   "(...)" e.g. "(object elements)" array: V8's internal arrays (an
 *                                  Array's elements, a Map's table)
 *   "system / ..."                 hidden (V8's internal objects)
 *   anything else                  object
 * The node's name is describe(obj) when the type provides it, else the
 * type's name.  Strings are written as UTF-8; invalid bytes become U+FFFD.
 *
 * Ids: synthetic nodes use odd ids below GC_SNAPSHOT_FIRST_OBJECT_ID, object
 * ids start there (objid.c), native (external) nodes get even ids.
 * Embedder root labels beyond the reserved range share one sub-root,
 * "(Other embedder roots)".
 *
 * Cost: a heap of 1 million objects (records, strings, small arrays; 39 MB
 * of JSON) is written in 0.35-0.5 s on a 2-core VM, ids included
 * (tools/bench/snapshot_bench.sh).  Memory while writing: a few tens of bytes
 * per object and 4 per edge, plus the string table.  Every object written gets an id
 * (gc_object_id), which the heap then keeps up to date at each GC.
 *
 * Signal snapshots (node's --heapsnapshot-signal): a heap created with
 * options.heapsnapshot_signal installs a handler (sigaction) that only
 * counts the signal.  The snapshot is written at the next safe point: a
 * call to gc_snapshot_poll (event-loop programs call it from an idle or
 * check hook) or the allocation slow path, as
 * <diagnostic_dir>/Heap.YYYYMMDD.HHMMSS.<pid>.0.<seq>.heapsnapshot (node's
 * name: date and local time, pid, thread 0, a sequence from 001).  One heap
 * per process owns the signal: the last heap created with the flag;
 * destroying it restores the previous disposition.
 */
#ifndef TENURE_GC_SNAPSHOT_H
#define TENURE_GC_SNAPSHOT_H

#include <stdio.h>

#include <tenure/gc_type.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gc_heap_s gc_heap_t;

/* Object ids start here; ids below are synthetic nodes'. */
#define GC_SNAPSHOT_FIRST_OBJECT_ID 10001

/* Writes a snapshot of H to F (which stays open; the caller closes it).
 * Not a GC point: nothing moves and nothing is allocated on the heap
 * (memory for the index and the strings is malloc'ed and freed).  Returns
 * 0, -EINVAL, -ENOMEM, or -EIO when writing failed. */
GC_EXTERN int gc_snapshot_write(gc_heap_t *h, FILE *f);

/* Writes a snapshot to PATH: to PATH.tmp first, renamed over PATH once
 * complete, so PATH never holds half a snapshot.  Returns 0, -errno when the
 * file cannot be created (-EACCES, -ENOENT, ...), -ENOMEM, or -EIO when
 * writing failed (the temporary file is removed). */
GC_EXTERN int gc_snapshot_write_path(gc_heap_t *h, const char *path);

/* Writes the snapshot a --heapsnapshot-signal asked for, if any, and if H
 * owns the signal.  Not a GC point; cheap when nothing is pending (two
 * loads), so an event loop may call it every iteration.  Returns 0 when
 * nothing was pending, 1 when a snapshot was written, or a negative errno
 * from writing it (the request is dropped either way).  Signals that arrive
 * before a poll are coalesced into one snapshot.  gc_snapshot_poll_path also
 * copies the file's path to OUT_PATH (at most CAP bytes, NUL-terminated)
 * when it is not NULL. */
GC_EXTERN int gc_snapshot_poll(gc_heap_t *h);
GC_EXTERN int gc_snapshot_poll_path(gc_heap_t *h, char *out_path, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_GC_SNAPSHOT_H */
