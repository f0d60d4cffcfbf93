/* test_immediates.c -- immediates are never followed, whatever address their
 * bits spell (gc_type.h: a slot value with any of the GC_IMMEDIATE_MASK bits
 * set is an immediate).
 *
 * Until 84a95b2 the scavenger's in_from only asked "is the value inside
 * from-space?", so a tagged integer equal to a from-space address plus its
 * tag was evacuated as an object (SIGSEGV) and a weak slot holding one was
 * cleared to NULL.
 *
 * Every case is one cmocka test on a heap of its own, named
 * "<slot kind>/<collection kind>/<location>":
 *   slot kinds   an object field, a weak object field, a field of an old
 *                remembered object, a handle, a persistent handle, a weak
 *                handle, an embedder root slot, a root tracer's slot (strong
 *                and weak edge), and a root frame variable (where GC_FRAME
 *                exists);
 *   collections  gc_collect MINOR, gc_collect FULL, and a stress run (a heap
 *                with stress_gc and verify_heap, then a few thousand
 *                allocations, each a GC);
 *   locations    the immediate is the address of a live object |tag, that
 *                object lying in from-space (tags 1, 2 and 4), in to-space
 *                (its address before a scavenge moved it), in an old page,
 *                or in a large object.
 * After the collection the slot holds exactly the same immediate, a weak
 * slot or handle was not cleared and no weak callback ran, gc_verify passes
 * and the objects that lent their addresses (and the slot's holder) are
 * intact.
 *
 * Run one case or a glob of them: test_gc_immediates 'weak-field/minor/from*'. */
#include <string.h>

#include "gc_internal.h"
#include "test_util.h"

/* --- A weak cell: one weak reference ------------------------------------- */

typedef struct wcell {
  void *target;
  long value;
} wcell_t;

static void wcell_trace(void *obj, gc_visitor_t *v) {
  GC_VISIT(v, &((wcell_t *)obj)->target, GC_EDGE_WEAK("target"));
}

static const gc_type_t wcell_type = {
    .name = "WeakCell", .size = sizeof(wcell_t), .trace = wcell_trace};

/* --- The table ------------------------------------------------------------- */

typedef enum slot_kind {
  S_FIELD,       /* car of a young pair */
  S_WEAK_FIELD,  /* the weak target of a young WeakCell */
  S_REMEMBERED,  /* car of an old pair whose cdr is young (remembered set) */
  S_HANDLE,      /* a handle in the open scope */
  S_PERSISTENT,  /* gc_persistent_new */
  S_WEAK_HANDLE, /* gc_weak_new, with a callback */
  S_ROOT,        /* gc_root_add */
  S_TRACER,      /* a slot reported by a gc_root_tracer_add callback */
  S_WEAK_TRACER, /* ... reported as a GC_EDGE_WEAK edge */
  S_FRAME,       /* a variable in a GC_FRAME (skipped where there is none) */
  N_SLOTS
} slot_kind_t;

static const char *const slot_names[N_SLOTS] = {
    "field", "weak-field", "remembered-field", "handle", "persistent",
    "weak-handle", "root", "root-tracer", "weak-root-tracer", "frame"};

typedef enum coll_kind { C_MINOR, C_FULL, C_STRESS, N_COLLS } coll_kind_t;

static const char *const coll_names[N_COLLS] = {"minor", "full", "stress"};

typedef enum loc {
  L_FROM1, /* a young object's address |1: in from-space at the next GC */
  L_FROM2, /* ... |2 */
  L_FROM4, /* ... |4 */
  L_TO,    /* a young object's address before a scavenge moved it, |1 */
  L_OLD,   /* a promoted object's address |1 */
  L_LARGE, /* a large object's address |1 */
  N_LOCS
} loc_t;

static const char *const loc_names[N_LOCS] = {"from|1", "from|2", "from|4",
                                              "to|1",   "old|1",  "large|1"};
static const uintptr_t loc_tags[N_LOCS] = {1, 2, 4, 1, 1, 1};

typedef struct imm_case {
  slot_kind_t slot;
  coll_kind_t coll;
  loc_t loc;
  char name[64];
} imm_case_t;

#define N_CASES (N_SLOTS * N_COLLS * N_LOCS)

#define HOLDER_VALUE 0x686f6cL /* "hol" */
#define LENDER_VALUE 0x6c656eL /* "len": the object that lends its address */
#define YOUNG_VALUE 0x796f75L  /* "you" */
#define LARGE_LEN (GC_MAX_REGULAR_SIZE + 1000)
#define LARGE_FILL 0xa5

/* --- Where things are (test premises only) -------------------------------- */

/* The collector's fast-path state is private; the test reads it only to
 * check that each address really lies where the case says it does. */
static bool young(gc_heap_t *h, uintptr_t a) {
  return gc__is_young(gc__fast(h), (const void *)a);
}

/* Whether A lies in the next scavenge's from-space (eden and the survivor
 * space in use), or in its to-space (the other survivor space): the
 * collector's private layout (gc_internal.h, nursery.c). */
static bool in_from(gc_heap_t *h, uintptr_t a) {
  uintptr_t lo = h->cur == 0 ? h->surv[0] : h->eden;
  return a - lo < 2 * h->semi_reserve;
}

static bool in_to(gc_heap_t *h, uintptr_t a) {
  return a - h->surv[1 - h->cur] < h->semi_reserve;
}

/* GC point.  Runs scavenges until *OBJ is old. */
static void promote(gc_heap_t *h, void **obj) {
  for (int i = 0; i < 16 && young(h, (uintptr_t)*obj); i++)
    gc_collect(h, GC_COLLECT_MINOR);
  assert_false(young(h, (uintptr_t)*obj));
}

/* --- Roots ------------------------------------------------------------------ */

static int weak_calls;
static void on_weak(void *data, gc_persistent_t *p) {
  (void)data;
  (void)p;
  weak_calls++;
}

static void *root_slot;
static void *tracer_slot;

static void trace_strong(gc_visitor_t *v, void *data) {
  GC_VISIT(v, (void **)data, GC_EDGE_INTERNAL("immediate"));
}
static void trace_weak(gc_visitor_t *v, void *data) {
  GC_VISIT(v, (void **)data, GC_EDGE_WEAK("immediate"));
}

/* --- One case ----------------------------------------------------------------- */

typedef struct slots {
  pair_t **holder;   /* S_FIELD, S_REMEMBERED */
  wcell_t **cell;    /* S_WEAK_FIELD */
  void **handle;     /* S_HANDLE */
  gc_persistent_t *p; /* S_PERSISTENT, S_WEAK_HANDLE */
  void **frame_var;  /* S_FRAME */
} slots_t;

static uintptr_t read_slot(const imm_case_t *c, const slots_t *s) {
  switch (c->slot) {
  case S_FIELD:
  case S_REMEMBERED:
    return (uintptr_t)(*s->holder)->car;
  case S_WEAK_FIELD:
    return (uintptr_t)(*s->cell)->target;
  case S_HANDLE:
    return (uintptr_t)*s->handle;
  case S_PERSISTENT:
  case S_WEAK_HANDLE:
    return (uintptr_t)gc_persistent_get(s->p);
  case S_ROOT:
    return (uintptr_t)root_slot;
  case S_TRACER:
  case S_WEAK_TRACER:
    return (uintptr_t)tracer_slot;
  case S_FRAME:
    return (uintptr_t)*s->frame_var;
  default:
    fail();
  }
  return 0;
}

/* The object that lent its address is intact. */
static void check_lender(const imm_case_t *c, void *obj) {
  if (c->loc == L_LARGE) {
    const blob_t *b = obj;
    assert_ptr_equal(gc_object_type(b), &blob_type);
    assert_int_equal(b->len, LARGE_LEN);
    for (size_t i = 0; i < b->len; i++)
      if (b->bytes[i] != LARGE_FILL)
        fail_msg("large object byte %zu is 0x%02x", i, b->bytes[i]);
  } else {
    const pair_t *p = obj;
    assert_ptr_equal(gc_object_type(p), &pair_type);
    assert_int_equal(p->value, LENDER_VALUE);
    assert_null(p->car);
    assert_null(p->cdr);
  }
}

static void check_holder(const imm_case_t *c, const slots_t *s,
                         void *const *young_obj) {
  switch (c->slot) {
  case S_FIELD:
    assert_ptr_equal(gc_object_type(*s->holder), &pair_type);
    assert_int_equal((*s->holder)->value, HOLDER_VALUE);
    assert_null((*s->holder)->cdr);
    break;
  case S_REMEMBERED:
    assert_ptr_equal(gc_object_type(*s->holder), &pair_type);
    assert_int_equal((*s->holder)->value, HOLDER_VALUE);
    /* The real young reference beside the immediate was followed. */
    assert_ptr_equal((*s->holder)->cdr, *young_obj);
    assert_ptr_equal(gc_object_type(*young_obj), &pair_type);
    break;
  case S_WEAK_FIELD:
    assert_ptr_equal(gc_object_type(*s->cell), &wcell_type);
    assert_int_equal((*s->cell)->value, HOLDER_VALUE);
    break;
  default:
    break;
  }
}

/* GC point.  Each step allocates, so each is a GC; every fourth pair is
 * kept on a short list, so the GCs copy, promote and sweep. */
static void stress_run(gc_heap_t *h, const imm_case_t *c, const slots_t *s,
                       uintptr_t imm) {
  long n = test_scale(3000, 400);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  pair_t **list = (pair_t **)gc_handle(h, NULL);
  uint64_t e0 = gc_heap_epoch(h);
  for (long i = 0; i < n; i++) {
    pair_t *p = test_pair(h, (i % 64) ? *list : NULL, NULL, i);
    if (i % 4 == 0)
      *list = p;
    if (read_slot(c, s) != imm)
      fail_msg("after %ld stress allocations the slot holds %#lx, not %#lx",
               i + 1, (unsigned long)read_slot(c, s), (unsigned long)imm);
    if (!gc_heap_options(h)->verify_heap && i % 16 == 0)
      assert_int_equal(gc_verify(h), 0);
  }
  /* Every allocation of a stress heap runs a GC (every eighth a full one). */
  assert_true(gc_heap_epoch(h) - e0 >= (uint64_t)n);
  gc_scope_close(h, &sc);
}

static void run_case(void **state) {
  const imm_case_t *c = *state;
#ifndef GC_FRAME_MAX
  if (c->slot == S_FRAME)
    skip(); /* no root frames in this tree */
#endif
  gc_options_t o;
  test_options(&o);
  if (c->coll == C_STRESS) {
    o.stress_gc = true;
    /* Not under the sanitizers: there gc_verify is fatal on a heap that has
     * no old page yet (verify.c calls qsort and bsearch on its NULL page
     * array: undefined behaviour, and UBSan does not recover), and the
     * first GC of a stress heap has none.  The stress run verifies
     * explicitly instead, once the ballast below holds a page. */
    o.verify_heap = !test_under_sanitizer();
  }
  gc_heap_t *h = test_heap_with(&o);
  test_register_zoo(h);
  assert_int_equal(gc_type_register(h, &wcell_type), 0);
  weak_calls = 0;
  root_slot = NULL;
  tracer_slot = NULL;
  slots_t s;
  memset(&s, 0, sizeof s);

  gc_scope_t scope;
  gc_scope_open(h, &scope);
  void *frame_var = NULL;
#ifdef GC_FRAME_MAX
  GC_FRAME(h, fr, &frame_var);
#endif
  s.frame_var = &frame_var;
  /* An old object for the whole case, so gc_verify always sees an old page
   * (see above). */
  void **ballast = gc_handle(h, test_pair(h, NULL, NULL, HOLDER_VALUE));
  promote(h, ballast);

  /* 1. The heap object holding the slot, if any.  Under TENURE_OPTIONS'
   * --stress-gc every allocation below is a GC as well, so what must be
   * young at the end is allocated last. */
  if (c->slot == S_FIELD || c->slot == S_REMEMBERED)
    s.holder = (pair_t **)gc_handle(h, test_pair(h, NULL, NULL, HOLDER_VALUE));
  if (c->slot == S_REMEMBERED)
    promote(h, (void **)s.holder);
  if (c->slot == S_WEAK_FIELD) {
    s.cell = (wcell_t **)gc_handle(h, gc_alloc(h, &wcell_type, sizeof(wcell_t)));
    assert_non_null(*s.cell);
    (*s.cell)->value = HOLDER_VALUE;
  }

  /* 2. The object that lends its address, and a young object for the
   * remembered field's real young reference. */
  void **lender, **young_obj = NULL;
  uintptr_t addr;
  switch (c->loc) {
  case L_FROM1:
  case L_FROM2:
  case L_FROM4:
    lender = gc_handle(h, test_pair(h, NULL, NULL, LENDER_VALUE));
    addr = (uintptr_t)*lender;
    young_obj = lender;
    break;
  case L_TO: {
    /* An object's address in a survivor space, once a scavenge has taken
     * it out of there: that space is to-space at the next one.  (Under
     * --stress-gc allocating the lender is that scavenge.) */
    void **moved = gc_handle(h, test_pair(h, NULL, NULL, LENDER_VALUE));
    gc_collect(h, GC_COLLECT_MINOR);
    addr = (uintptr_t)*moved;
    assert_true(young(h, addr));
    lender = gc_handle(h, test_pair(h, NULL, NULL, LENDER_VALUE));
    if (!in_to(h, addr))
      gc_collect(h, GC_COLLECT_MINOR);
    young_obj = lender;
    break;
  }
  case L_OLD:
    lender = gc_handle(h, test_pair(h, NULL, NULL, LENDER_VALUE));
    promote(h, lender);
    addr = (uintptr_t)*lender;
    break;
  case L_LARGE:
  default:
    lender = gc_handle(h, test_blob(h, LARGE_LEN, LARGE_FILL));
    addr = (uintptr_t)*lender;
    assert_true(gc_object_size(*lender) > GC_MAX_REGULAR_SIZE);
    break;
  }
  if (young_obj == NULL && c->slot == S_REMEMBERED)
    young_obj = gc_handle(h, test_pair(h, NULL, NULL, YOUNG_VALUE));

  /* No GC point from here to the collection.  The premises: */
  switch (c->loc) {
  case L_FROM1:
  case L_FROM2:
  case L_FROM4:
    assert_true(young(h, addr));
    assert_true(in_from(h, addr));
    break;
  case L_TO:
    assert_true(young(h, addr));
    assert_true(in_to(h, addr));
    break;
  default:
    assert_false(young(h, addr));
    break;
  }
  if (c->slot == S_REMEMBERED) {
    assert_false(young(h, (uintptr_t)*s.holder));
    assert_true(young(h, (uintptr_t)*young_obj));
  }

  /* 3. The immediate goes into the slot. */
  const uintptr_t imm = addr | loc_tags[c->loc];
  assert_true((imm & GC_IMMEDIATE_MASK) != 0);
  switch (c->slot) {
  case S_FIELD:
    gc_write(h, *s.holder, &(*s.holder)->car, (void *)imm);
    break;
  case S_REMEMBERED:
    gc_write(h, *s.holder, &(*s.holder)->cdr, *young_obj); /* remembered */
    gc_write(h, *s.holder, &(*s.holder)->car, (void *)imm);
    break;
  case S_WEAK_FIELD:
    gc_write(h, *s.cell, &(*s.cell)->target, (void *)imm);
    break;
  case S_HANDLE:
    s.handle = gc_handle(h, (void *)imm);
    break;
  case S_PERSISTENT:
    s.p = gc_persistent_new(h, (void *)imm);
    assert_non_null(s.p);
    break;
  case S_WEAK_HANDLE:
    s.p = gc_weak_new(h, (void *)imm, on_weak, NULL);
    assert_non_null(s.p);
    break;
  case S_ROOT:
    root_slot = (void *)imm;
    assert_int_equal(gc_root_add(h, &root_slot, "immediate"), 0);
    break;
  case S_TRACER:
  case S_WEAK_TRACER:
    tracer_slot = (void *)imm;
    assert_int_equal(gc_root_tracer_add(h, c->slot == S_TRACER ? trace_strong
                                                               : trace_weak,
                                        &tracer_slot, "immediate"),
                     0);
    break;
  case S_FRAME:
  default:
    frame_var = (void *)imm;
    break;
  }
  assert_int_equal(read_slot(c, &s), imm);

  /* 4. The collection. */
  uint64_t e0 = gc_heap_epoch(h);
  switch (c->coll) {
  case C_MINOR:
    gc_collect(h, GC_COLLECT_MINOR);
    break;
  case C_FULL:
    gc_collect(h, GC_COLLECT_FULL);
    break;
  case C_STRESS:
  default:
    stress_run(h, c, &s, imm);
    break;
  }
  assert_true(gc_heap_epoch(h) > e0);

  /* 5. The same immediate, nothing cleared, everything intact. */
  assert_int_equal(read_slot(c, &s), imm);
  assert_int_equal(weak_calls, 0);
  assert_int_equal(gc_verify(h), 0);
  check_lender(c, *lender);
  check_holder(c, &s, young_obj);
  /* And still after one more full GC (for the stress heap: several). */
  gc_collect(h, GC_COLLECT_FULL);
  assert_int_equal(read_slot(c, &s), imm);
  assert_int_equal(weak_calls, 0);
  check_lender(c, *lender);
  check_holder(c, &s, young_obj);
  assert_int_equal(((pair_t *)*ballast)->value, HOLDER_VALUE);

  if (c->slot == S_ROOT)
    assert_int_equal(gc_root_remove(h, &root_slot), 0);
  if (c->slot == S_TRACER)
    assert_int_equal(gc_root_tracer_remove(h, trace_strong, &tracer_slot), 0);
  if (c->slot == S_WEAK_TRACER)
    assert_int_equal(gc_root_tracer_remove(h, trace_weak, &tracer_slot), 0);
  if (s.p != NULL)
    gc_persistent_free(h, s.p);
#ifdef GC_FRAME_MAX
  GC_FRAME_CLOSE(h, fr);
#endif
  gc_scope_close(h, &scope);
  gc_heap_destroy(h);
}

int main(int argc, char **argv) {
  static imm_case_t cases[N_CASES];
  static struct CMUnitTest tests[N_CASES];
  size_t n = 0;
  for (int sk = 0; sk < N_SLOTS; sk++)
    for (int ck = 0; ck < N_COLLS; ck++)
      for (int lk = 0; lk < N_LOCS; lk++) {
        imm_case_t *c = &cases[n];
        c->slot = (slot_kind_t)sk;
        c->coll = (coll_kind_t)ck;
        c->loc = (loc_t)lk;
        snprintf(c->name, sizeof c->name, "%s/%s/%s", slot_names[sk],
                 coll_names[ck], loc_names[lk]);
        tests[n] = (struct CMUnitTest){c->name, run_case, NULL, NULL, c};
        n++;
      }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests_name("gc.immediates", tests, NULL, NULL);
}
