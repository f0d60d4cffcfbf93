/* gc_type.h -- object types: descriptors, trace callbacks and edges.
 *
 * Every heap object has a one-word header, hidden just before the pointer
 * that gc_alloc returns.  The header holds the address of the object's
 * gc_type_t, whose low GC_TYPE_ALIGN_BITS bits the collector uses for its
 * flags; that is why descriptors are over-aligned (GC_TYPE_ALIGN).
 *
 * A slot (a field that may hold a reference) contains one of:
 *   - NULL;
 *   - a pointer returned by gc_alloc (8-byte aligned);
 *   - an immediate: any value with one of its low three bits set.  The
 *     collector ignores immediates, so a layer above can tag small integers,
 *     booleans and the like in the slot word itself.
 */
#ifndef TENURE_GC_TYPE_H
#define TENURE_GC_TYPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GC_EXTERN __attribute__((visibility("default")))
#define GC_LIKELY(x) __builtin_expect(!!(x), 1)
#define GC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define GC_EXTERN
#define GC_LIKELY(x) (x)
#define GC_UNLIKELY(x) (x)
#endif

/* Descriptors are 64-byte aligned so the header has six flag bits. */
#define GC_TYPE_ALIGN 64
#define GC_TYPE_ALIGN_BITS 6

/* Mask of the low bits that mark a slot value as an immediate. */
#define GC_IMMEDIATE_MASK ((uintptr_t)7)

/* What kind of reference an edge is.  The collector treats every kind but
 * GC_EDGE_WEAK as strong; heap snapshots record the kind and the name. */
typedef enum gc_edge_kind_e {
  GC_EDGE_PROPERTY = 0, /* a named field: "left", "next" */
  GC_EDGE_ELEMENT = 1,  /* an indexed element: [index] */
  GC_EDGE_INTERNAL = 2, /* implementation detail: "table", "elements" */
  GC_EDGE_WEAK = 3      /* does not keep the target alive; cleared to NULL
                         * when the target dies */
} gc_edge_kind_t;

/* An edge names one reference reported by a trace callback.  It is two
 * words, so it travels in registers. */
typedef struct gc_edge_s {
  const char *name; /* property/internal/weak edge name, or NULL */
  uint32_t kind;    /* gc_edge_kind_t */
  uint32_t index;   /* element index */
} gc_edge_t;

#define GC_EDGE_PROP(n) ((gc_edge_t){(n), GC_EDGE_PROPERTY, 0})
#define GC_EDGE_ELEM(i) ((gc_edge_t){NULL, GC_EDGE_ELEMENT, (uint32_t)(i)})
#define GC_EDGE_INTERNAL(n) ((gc_edge_t){(n), GC_EDGE_INTERNAL, 0})
#define GC_EDGE_WEAK(n) ((gc_edge_t){(n), GC_EDGE_WEAK, 0})

typedef struct gc_visitor_s gc_visitor_t;
typedef struct gc_heap_s gc_heap_t;

/* A visitor receives the address of each slot, so a moving collector can
 * rewrite it in place.  The scavenger, the marker, the heap verifier and
 * the snapshot writer are all visitors.  A visitor of the embedder's own
 * (for gc_walk_roots, or to walk objects through their trace callbacks)
 * may leave `ephemeron` NULL: GC_VISIT_EPHEMERON then reports the key as a
 * weak edge and the value as EDGE. */
struct gc_visitor_s {
  void (*visit)(gc_visitor_t *v, void **slot, gc_edge_t edge);
  void (*ephemeron)(gc_visitor_t *v, void **key, void **value,
                    gc_edge_t edge);
  /* GC_VISIT's filter, so that a trace callback skips the call for a slot
   * the visitor would ignore: visit is called only for a slot value P with
   * P - pass_lo < ~pass_nspan (unsigned), i.e. P in [pass_lo, pass_lo +
   * span).  Zero (a visitor of the embedder's own, left unset) passes
   * every value.  The scavenger passes only from-space; the marker, the
   * verifier and the snapshot writer everything but NULL. */
  uintptr_t pass_lo;
  uintptr_t pass_nspan; /* ~span */
};

/* Report one slot.  SLOT is the address of a pointer-sized field.  (The
 * slot's value is read here, for the filter, and again by the visitor.) */
#define GC_VISIT(v, slot, edge)                                               \
  do {                                                                        \
    gc_visitor_t *gc__vv = (v);                                               \
    void **gc__vs = (void **)(slot);                                          \
    if ((uintptr_t)*gc__vs - gc__vv->pass_lo < ~gc__vv->pass_nspan)           \
      gc__vv->visit(gc__vv, gc__vs, (edge));                                  \
  } while (0)

/* Report an ephemeron: a key slot and a value slot of the same object,
 * where the value is kept alive only while the key is alive through other
 * references (V8's EphemeronHashTable, behind JavaScript's WeakMap).  The
 * value's references to the key, or to other keys, do not keep them
 * alive.  When the key dies both slots read NULL after that GC; a NULL key
 * clears its value.  An immediate key never dies.  EDGE names the value. */
#define GC_VISIT_EPHEMERON(v, key, value, edge)                               \
  ((v)->ephemeron != NULL                                                     \
       ? (v)->ephemeron((v), (void **)(key), (void **)(value), (edge))        \
       : ((v)->visit((v), (void **)(key), GC_EDGE_WEAK("key")),               \
          (v)->visit((v), (void **)(value), (edge))))

typedef struct gc_type_s gc_type_t;

/* The type descriptor, one per kind of object, usually a static const.
 *
 * trace: reports every slot of OBJ through GC_VISIT; NULL for objects that
 *   hold no references (strings, doubles: the collector never scans them).
 *   It must be pure: no allocation, no barrier, no I/O, no GC point.
 * size / size_of: the payload size in bytes (without the header).  Fixed-
 *   size types set size; variable-size types set size_of, computed from the
 *   object's own fields (e.g. a length).  size_of must return the size the
 *   object was allocated with from its first GC point on: write the length
 *   right after gc_alloc and never change it (--verify-heap checks this at
 *   every GC and names the type when it does not hold).
 * finalize: runs exactly once after OBJ became unreachable (or when the heap
 *   is destroyed), before its memory is reused, with the heap it lived in
 *   (for gc_external_adjust, and gc_heap_user_data for the embedder's own
 *   context).  It may free off-heap memory and call gc_external_adjust; it
 *   must not allocate on the heap nor read other heap objects (they may be
 *   gone already).
 * name: shown in heap snapshots, statistics and error messages. */
struct gc_type_s {
  _Alignas(GC_TYPE_ALIGN) const char *name;
  size_t size;
  size_t (*size_of)(const void *obj);
  void (*trace)(void *obj, gc_visitor_t *v);
  void (*finalize)(gc_heap_t *h, void *obj);
  /* A second, optional callback for heap snapshots: a display name for one
   * object (e.g. a string's content).  NULL uses name.  Writes at most CAP
   * bytes including the NUL to BUF, returns BUF or a static string. */
  const char *(*describe)(const void *obj, char *buf, size_t cap);
  /* Off-heap bytes this object holds (for snapshots), or NULL. */
  size_t (*external_size)(const void *obj);
};

#ifdef __cplusplus
}
#endif
#endif /* TENURE_GC_TYPE_H */
