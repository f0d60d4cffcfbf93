/* gc.h -- tenure's precise generational garbage collector: the public API.
 *
 * A heap (gc_heap_t) is an independent collector, like a V8 isolate: one per
 * thread, no state shared between heaps.  The one process-wide thing is a
 * signal: --heapsnapshot-signal installs a handler (a signal's disposition
 * belongs to the process), owned by the last heap created with the flag;
 * everything else is per heap.
 *
 * Young objects are bump-allocated in a new space (an eden and two
 * survivor spaces) and collected by a copying scavenge; survivors are
 * promoted to an old space of size-segregated pages collected by
 * mark-sweep (swept lazily); objects over GC_MAX_REGULAR_SIZE bytes live in
 * a large-object space.
 *
 * GC points: collection happens only inside gc_alloc, gc_collect and the
 * functions whose comment says "GC point".  An object can move at a GC
 * point, so a raw pointer is valid only until the next one; keep objects in
 * handles (gc_handle) or persistent handles across GC points.
 *
 * Stores of a reference into a heap object go through gc_write, the write
 * barrier, which records old-to-new pointers.
 */
#ifndef TENURE_GC_H
#define TENURE_GC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tenure/gc_options.h>
#include <tenure/gc_stats.h>
#include <tenure/gc_type.h>
#include <tenure/gc_snapshot.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Payloads over this size go to the large-object space. */
#define GC_MAX_REGULAR_SIZE ((size_t)16 * 1024)

/* --- Heap ------------------------------------------------------------- */

/* Creates a heap.  O may be NULL for defaults.  Returns 0, -EINVAL for bad
 * options, or -ENOMEM; *OUT is set only on success. */
GC_EXTERN int gc_heap_create(const gc_options_t *o, gc_heap_t **out);

/* Runs the finalizers of every remaining object and releases all memory.
 * Handles and persistent handles die with the heap. */
GC_EXTERN void gc_heap_destroy(gc_heap_t *h);

/* Registers a type.  Every type must be registered before its first
 * allocation (the heap verifier and snapshots rely on it).  Returns 0,
 * -EINVAL (misaligned descriptor, neither size nor size_of, no name) or
 * -ENOMEM.  Registering a type twice is harmless.  Allocating a type never
 * registered is a fatal error naming it, reported by the allocation slow
 * path: at once under --stress-gc, --gc-interval and --verify-heap (every
 * allocation takes it), for large objects, and otherwise at the latest when
 * the allocation area is refilled (the inline fast path does not look). */
GC_EXTERN int gc_type_register(gc_heap_t *h, const gc_type_t *t);

typedef enum gc_collect_kind_e {
  GC_COLLECT_MINOR = 0, /* a scavenge of new space */
  GC_COLLECT_FULL = 1   /* everything; sweeps eagerly and runs finalizers */
} gc_collect_kind_t;

/* GC point.  Collects now. */
GC_EXTERN void gc_collect(gc_heap_t *h, gc_collect_kind_t kind);

/* Reports bytes held off the heap on behalf of heap objects (V8's
 * AdjustAmountOfExternalAllocatedMemory): DELTA > 0 when they are
 * allocated, < 0 when freed.  They count toward GC pressure and statistics.
 * Returns the new total.  Not a GC point (a GC it asks for happens at the
 * next allocation). */
GC_EXTERN int64_t gc_external_adjust(gc_heap_t *h, int64_t delta);

/* Replaces the near-heap-limit callback (see gc_options_t). */
GC_EXTERN void gc_heap_set_near_heap_limit(gc_heap_t *h,
                                           gc_near_heap_limit_fn fn,
                                           void *data);

/* The embedder's own pointer for this heap (NULL until set), for callbacks
 * that receive only the heap: finalizers, weak callbacks, root tracers.  A
 * layer that owns the heap (the runtime) may claim it; see its header. */
GC_EXTERN void gc_heap_set_user_data(gc_heap_t *h, void *data);
GC_EXTERN void *gc_heap_user_data(const gc_heap_t *h);

/* The current limit of old + large-object space, in bytes. */
GC_EXTERN size_t gc_heap_limit(const gc_heap_t *h);

/* Counts GCs; a raw pointer read before is stale if this changed. */
GC_EXTERN uint64_t gc_heap_epoch(const gc_heap_t *h);

/* The options the heap runs with (after defaults were applied). */
GC_EXTERN const gc_options_t *gc_heap_options(const gc_heap_t *h);

/* The payload size of an object. */
GC_EXTERN size_t gc_object_size(const void *obj);

/* A message for a negative error code from any gc_ function. */
GC_EXTERN const char *gc_strerror(int err);

/* --- Private fast-path state (do not touch; layout may change) -------- */

struct gc_scope_s;
typedef struct gc__fast_s {
  /* The fields the inline paths copy into a gc_scope_t (hs_top, hs_limit,
   * scope, frame) are never adjacent: adjacent, the compiler loads two at
   * once with one 16-byte load, which stalls on the two 8-byte stores that
   * just wrote them (no store-to-load forwarding); measured on binary-trees
   * as a quarter of the mutator's time. */
  uintptr_t top;            /* next free byte of the allocation area */
  void **hs_top;            /* next free handle slot */
  uintptr_t limit;          /* its end; lowered to force the slow path */
  void **hs_limit;          /* end of the current handle block */
  uintptr_t young_lo;       /* INV: every new-space object lies in */
  struct gc_scope_s *scope; /* innermost open scope */
  uintptr_t young_size;     /* [young_lo, young_lo + young_size) */
  struct gc_frame_s *frame; /* innermost linked root frame */
} gc__fast_t;

#define gc__fast(h) ((gc__fast_t *)(void *)(h))
#define GC__ALIGN ((size_t)8)
#define GC__HDR ((size_t)8)

GC_EXTERN void *gc__alloc_slow(gc_heap_t *h, const gc_type_t *t,
                               size_t size);
GC_EXTERN void gc__register_finalizable(gc_heap_t *h, void *obj);
GC_EXTERN void gc__barrier_slow(gc_heap_t *h, void *obj);
GC_EXTERN void gc__init_not_young(gc_heap_t *h, void *obj);
GC_EXTERN void **gc__handle_slow(gc_heap_t *h, void *obj);
GC_EXTERN void gc__scope_mismatch(gc_heap_t *h, struct gc_scope_s *s);
GC_EXTERN void gc__frame_mismatch(gc_heap_t *h, struct gc_frame_s *fr);

/* The type of an object: its header word (just before OBJ) is the
 * descriptor's address with flag bits in the low GC_TYPE_ALIGN_BITS.
 * Inline, since value layers ask on every operation.  Not a GC point. */
static inline const gc_type_t *gc_object_type(const void *obj) {
  uintptr_t hdr = ((const uintptr_t *)obj)[-1];
  return (const gc_type_t *)(hdr & ~(uintptr_t)(GC_TYPE_ALIGN - 1));
}

static inline bool gc__is_young(const gc__fast_t *f, const void *p) {
  return (uintptr_t)p - f->young_lo < f->young_size;
}

/* --- Allocation --------------------------------------------------------- */

/* Clears N words.  Small objects are cleared with inline stores: with a
 * size known only at run time memset is a libc call, which costs more than
 * the few stores it does (an interpreter's environment frames spent 17% of
 * a run there).  A switch, not a loop: GCC turns a clearing loop back into
 * a memset call. */
#if defined(__GNUC__) && __GNUC__ >= 7 || defined(__clang__)
#define GC__FALLTHROUGH __attribute__((fallthrough))
#else
#define GC__FALLTHROUGH ((void)0)
#endif
static inline void gc__zero(uintptr_t *w, size_t n) {
  switch (n) {
  case 8: w[7] = 0; GC__FALLTHROUGH;
  case 7: w[6] = 0; GC__FALLTHROUGH;
  case 6: w[5] = 0; GC__FALLTHROUGH;
  case 5: w[4] = 0; GC__FALLTHROUGH;
  case 4: w[3] = 0; GC__FALLTHROUGH;
  case 3: w[2] = 0; GC__FALLTHROUGH;
  case 2: w[1] = 0; GC__FALLTHROUGH;
  case 1: w[0] = 0; GC__FALLTHROUGH;
  case 0: break;
  default: memset(w, 0, n * sizeof(uintptr_t));
  }
}

/* GC point.  Allocates an object of type T with SIZE payload bytes, zeroed.
 * Returns NULL only when the heap limit holds and the heap was created with
 * null_on_oom; otherwise a heap-limit failure ends the process with a fatal
 * error naming the limit and the flag. */
static inline void *gc_alloc(gc_heap_t *h, const gc_type_t *t, size_t size) {
  gc__fast_t *f = gc__fast(h);
  size_t total = (size + GC__HDR + GC__ALIGN - 1) & ~(GC__ALIGN - 1);
  uintptr_t p = f->top;
  if (GC_LIKELY(size <= GC_MAX_REGULAR_SIZE && total <= f->limit - p)) {
    uintptr_t *o = (uintptr_t *)p;
    f->top = p + total;
    o[0] = (uintptr_t)t;
    gc__zero(o + 1, (total - GC__HDR) / sizeof(uintptr_t));
    if (GC_UNLIKELY(t->finalize != NULL))
      gc__register_finalizable(h, o + 1);
    return o + 1;
  }
  return gc__alloc_slow(h, t, size);
}

/* --- Write barrier ------------------------------------------------------ */

/* Stores VAL into SLOT, a field of heap object OBJ, and records the store
 * if it makes an old object point to a new one.  Not a GC point.
 * INV(remset): every old object holding a new-space reference is in the
 * remembered set; gc_write keeps it so. */
static inline void gc_write(gc_heap_t *h, void *obj, void *slot, void *val) {
  gc__fast_t *f = gc__fast(h);
  *(void **)slot = val;
  /* The holder first: most stores go into young objects (just allocated),
   * and then one range check decides. */
  if (GC_UNLIKELY(!gc__is_young(f, obj) && gc__is_young(f, val)))
    gc__barrier_slow(h, obj);
}

/* Type-checked form: GC_WRITE(h, node, left, child) stores node->left,
 * and GC_WRITE(h, vec, items[i], x) an array element.  VAL is evaluated
 * before OBJ, so VAL may be a GC point (an allocation) while OBJ is read
 * from a handle: GC_WRITE(h, *vh, items[i], make(h)) stores into where the
 * vector is after make's GC, not where it was before. */
#define GC_WRITE(h, obj, field, val)                                          \
  do {                                                                        \
    void *gc__v = (val);                                                      \
    __typeof__(obj) gc__o = (obj);                                            \
    gc_write((h), gc__o, &gc__o->field, gc__v);                               \
  } while (0)

/* Initialising store, without the barrier: VAL into a field of OBJ, an
 * object that gc_alloc returned for at most GC_MAX_REGULAR_SIZE payload
 * bytes, with no GC point since.  Such an object is young (regular objects
 * are allocated in new space only), and a store into a young object needs
 * no record (V8 skips the barrier for the same stores).  Anywhere else use
 * GC_WRITE: a GC point in between may have promoted OBJ, and a missed
 * record loses VAL at the next scavenge (--verify-heap reports "old-to-new
 * reference not in the remembered set").  Without NDEBUG, OBJ's youth is
 * checked (a fatal error otherwise). */
#ifdef NDEBUG
#define GC_INIT_FIELD(h, obj, field, val)                                     \
  ((void)(h), (void)((obj)->field = (val)))
#else
#define GC_INIT_FIELD(h, obj, field, val)                                     \
  do {                                                                        \
    __typeof__(obj) gc__io = (obj);                                           \
    if (GC_UNLIKELY(!gc__is_young(gc__fast(h), gc__io)))                      \
      gc__init_not_young((h), gc__io);                                        \
    gc__io->field = (val);                                                    \
  } while (0)
#endif

/* --- Handles and scopes ------------------------------------------------- */

/* A handle scope, allocated by the caller on the C stack.  Handles created
 * while it is the innermost open scope die when it closes.  Scopes nest and
 * must close in LIFO order (a mismatch is a fatal error).  Cost: a few
 * stores, like V8's HandleScope. */
typedef struct gc_scope_s {
  /* private; top and limit are kept apart on purpose: adjacent, the
   * compiler copies them with one 16-byte load, which stalls on the two
   * 8-byte stores that just wrote them (no store-to-load forwarding). */
  void **top;
  struct gc_scope_s *prev;
  void **limit;
  struct gc_frame_s *frame; /* the innermost root frame at open */
} gc_scope_t;

static inline void gc_scope_open(gc_heap_t *h, gc_scope_t *s) {
  gc__fast_t *f = gc__fast(h);
  s->top = f->hs_top;
  s->limit = f->hs_limit;
  s->prev = f->scope;
  s->frame = f->frame;
  f->scope = s;
}

static inline void gc_scope_close(gc_heap_t *h, gc_scope_t *s) {
  gc__fast_t *f = gc__fast(h);
  if (GC_UNLIKELY(f->scope != s))
    gc__scope_mismatch(h, s);
  f->hs_top = s->top;
  f->hs_limit = s->limit;
  f->scope = s->prev;
}

/* Closes S and every scope opened inside it, drops their handles, and
 * unlinks every root frame linked since S was opened: the state is as just
 * before gc_scope_open(h, S).  For error paths that longjmp out of nested
 * calls (as interpreters do): the handler unwinds to the scope it opened
 * before its setjmp, whatever the abandoned calls left open.  Only S is
 * read (the inner scopes may be in popped C frames), so S must still be
 * open; passing a closed scope corrupts the handle stack.  Not a GC point. */
GC_EXTERN void gc_scope_unwind(gc_heap_t *h, gc_scope_t *s);

/* Roots OBJ in the innermost scope; returns the handle (a slot the
 * collector updates when OBJ moves).  Read it as *handle.  Not a GC point;
 * aborts with a fatal error only if memory for a new handle block cannot be
 * had. */
static inline void **gc_handle(gc_heap_t *h, void *obj) {
  gc__fast_t *f = gc__fast(h);
  if (GC_UNLIKELY(f->hs_top == f->hs_limit))
    return gc__handle_slow(h, obj);
  *f->hs_top = obj;
  return f->hs_top++;
}

/* Typed form: struct node **n = GC_HANDLE(h, make_node(h)); */
#define GC_HANDLE(h, obj) ((__typeof__(obj) *)gc_handle((h), (obj)))

/* Closes S and roots OBJ in the enclosing scope (V8's Escape). */
static inline void **gc_scope_close_escape(gc_heap_t *h, gc_scope_t *s,
                                           void *obj) {
  gc_scope_close(h, s);
  return gc_handle(h, obj);
}

/* --- Root frames: precise roots at the cost of a few stores ------------- *
 *
 * For hot code (an interpreter's eval loop, a recursive builder) a handle
 * per value costs more than the work.  A root frame, like OCaml's
 * CAMLlocal, registers the addresses of the function's own local
 * variables: the collector reads and rewrites them in place, so the code
 * uses them as plain variables, with no indirection.
 *
 *   node_t *left = NULL, *right = NULL;      // initialised before linking
 *   GC_FRAME(h, fr, &left, &right);         // links frame fr (a few stores)
 *   left = make(h, d - 1);                  // a GC point: left is a root
 *   right = make(h, d - 1);                 // left is updated if it moved
 *   node_t *n = gc_alloc(h, &node_type, sizeof *n);
 *   GC_WRITE(h, n, left, left); ...
 *   GC_FRAME_CLOSE(h, fr);                  // one compare, one store
 *   return n;
 *
 * Rules: every registered variable holds NULL, an immediate or a heap
 * object whenever a GC point runs (initialise it first); frames close in
 * LIFO order, also relative to handle scopes (a frame linked inside a scope
 * closes before the scope; a mismatch is a fatal error); a function that
 * returns or longjmps past its frame without closing it leaves dangling
 * roots: gc_scope_unwind unlinks the frames of the scopes it closes.
 * At most GC_FRAME_MAX variables per frame; link a second frame for more,
 * or report a whole array through a root tracer. */
typedef struct gc_frame_s {
  struct gc_frame_s *prev; /* private */
  size_t n;                /* private: addresses that follow the frame */
} gc_frame_t;

#define GC_FRAME_MAX 16
#define GC__FRAME_N(...) (sizeof((void *[]){__VA_ARGS__}) / sizeof(void *))

/* Declares the root frame NAME over the variables whose addresses follow,
 * and links it.  Not a GC point. */
#define GC_FRAME(h, name, ...)                                                \
  struct {                                                                    \
    gc_frame_t f;                                                             \
    void *a[GC__FRAME_N(__VA_ARGS__)];                                        \
  } name = {{gc__fast(h)->frame, GC__FRAME_N(__VA_ARGS__)}, {__VA_ARGS__}};   \
  _Static_assert(GC__FRAME_N(__VA_ARGS__) <= GC_FRAME_MAX,                    \
                 "GC_FRAME: at most GC_FRAME_MAX variables");                 \
  gc__fast(h)->frame = &name.f

/* Unlinks frame FR, which must be the innermost.  Not a GC point. */
static inline void gc_frame_close(gc_heap_t *h, gc_frame_t *fr) {
  gc__fast_t *f = gc__fast(h);
  if (GC_UNLIKELY(f->frame != fr))
    gc__frame_mismatch(h, fr);
  f->frame = fr->prev;
}

#define GC_FRAME_CLOSE(h, name) gc_frame_close((h), &(name).f)

/* --- Persistent and weak handles ---------------------------------------- */

/* A persistent handle roots an object until it is freed; a weak one does
 * not keep its object alive: when the object dies the handle reads NULL and
 * its callback (if any) runs once, after the GC that found it dead. */
typedef struct gc_persistent_s {
  void *obj; /* read-only: use gc_persistent_get */
} gc_persistent_t;

typedef void (*gc_weak_fn)(void *data, gc_persistent_t *p);

/* Return NULL when out of memory.  Not GC points. */
GC_EXTERN gc_persistent_t *gc_persistent_new(gc_heap_t *h, void *obj);
GC_EXTERN gc_persistent_t *gc_weak_new(gc_heap_t *h, void *obj, gc_weak_fn cb,
                                       void *data);
GC_EXTERN void gc_persistent_set(gc_heap_t *h, gc_persistent_t *p, void *obj);
GC_EXTERN void gc_persistent_free(gc_heap_t *h, gc_persistent_t *p);

static inline void *gc_persistent_get(const gc_persistent_t *p) {
  return p->obj;
}

/* --- Embedder roots ----------------------------------------------------- */

/* Adds SLOT, a pointer-sized field outside the heap, as a root.  LABEL names
 * it in heap snapshots and retainer paths.  Returns 0 or -ENOMEM. */
GC_EXTERN int gc_root_add(gc_heap_t *h, void **slot, const char *label);
/* Returns 0 or -ENOENT. */
GC_EXTERN int gc_root_remove(gc_heap_t *h, void **slot);

/* A callback that reports the embedder's own roots with GC_VISIT, at every
 * GC (MPS root scanning).  Like a trace callback it must be pure. */
typedef void (*gc_root_trace_fn)(gc_visitor_t *v, void *data);
GC_EXTERN int gc_root_tracer_add(gc_heap_t *h, gc_root_trace_fn fn,
                                 void *data, const char *label);
GC_EXTERN int gc_root_tracer_remove(gc_heap_t *h, gc_root_trace_fn fn,
                                    void *data);

/* --- Walking (for tools: snapshots, debugging) -------------------------- */

/* Calls FN for every object in the heap (live ones, and after a full GC
 * only live ones).  Finishes any pending sweep first.  FN must not
 * allocate.  Not a GC point. */
typedef void (*gc_object_fn)(void *obj, const gc_type_t *t, size_t size,
                             void *data);
GC_EXTERN void gc_walk_objects(gc_heap_t *h, gc_object_fn fn, void *data);

/* Reports every root slot to V with edge names that say where it lives:
 * kind GC_EDGE_INTERNAL with name "(Handle scope)", "(Stack roots)" (root
 * frames), "(Persistent handles)", "(Weak handles)" (kind GC_EDGE_WEAK) or
 * the root's label. */
GC_EXTERN void gc_walk_roots(gc_heap_t *h, gc_visitor_t *v);

/* A stable id for OBJ (odd, increasing in order of first request), the same
 * across GCs while the object lives, also after it moves, and never reused
 * for another object: heap snapshots use it so a series of snapshots can be
 * compared, and it is the identity hash of a moving heap (an address is
 * not: objects move).  Cost: the first call for an object inserts it in a
 * table (16 bytes per object with an id), later calls are a lookup; a young
 * object's entry is rehashed at every scavenge it survives, an old one's
 * only at full GCs.  Code that hashes many short-lived objects by identity
 * does better to store a hash in the object when it creates it.  0 for
 * NULL/immediates or when out of memory.  Not a GC point. */
GC_EXTERN uint64_t gc_object_id(gc_heap_t *h, const void *obj);

/* OBJ's id if it has been given one, else 0; never gives one (so a lookup
 * by identity for an object that was never a key costs no table entry).
 * Not a GC point. */
GC_EXTERN uint64_t gc_object_id_peek(gc_heap_t *h, const void *obj);

/* Checks the whole heap now; returns 0, or -EPROTO after printing each
 * problem to stderr.  --verify-heap runs it after every GC (and aborts on a
 * failure). */
GC_EXTERN int gc_verify(gc_heap_t *h);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_GC_H */
