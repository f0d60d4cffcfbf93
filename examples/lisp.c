/* lisp.c -- a small Scheme-like Lisp whose every value lives on the heap:
 * an embedder-style benchmark of the collector (the programs in examples/lisp/).
 *
 * usage: lisp [heap flags] [--stats] FILE.scm...
 *   Runs the files in order in one global environment; prints what
 *   (display ...), (write ...) and (newline) print.  Heap flags come from
 *   argv and TENURE_OPTIONS (gc_options.h); --stats (or TENURE_STATS=1)
 *   prints the heap statistics as JSON on stderr at the end.
 * Exit status: 0 when every top-level form ran; 1 when at least one reader
 *   or evaluation error was reported (each error prints
 *   "FILE:LINE: error: MESSAGE" on stderr, LINE being the line where the
 *   failing top-level form starts, and the next top-level form runs); 2 for
 *   a usage error or a file that cannot be read.
 *
 * One source, two collectors: built plainly it runs on tenure; built with
 * -DLISP_BOEHM (target lisp_boehm) it runs on Boehm GC 8.2.  The shim right
 * below is the only code that differs: allocation, the write barrier, the
 * root frames and the handle scope (which compile away for Boehm, whose
 * conservative scan of the C stack finds the same locals), and heap set-up.
 * Object layouts are the same in both builds: every object starts with a
 * header word holding its type descriptor (tenure's own header; for Boehm
 * the shim allocates one word more and stores it there).
 *
 * Values: a value_t is NULL (the empty list), an immediate (a fixnum, tagged
 * with low bit 1; #t, #f and the unspecified value, tagged with bit 1, see
 * gc_type.h) or a heap object: pair, symbol, string, closure, environment
 * frame, primitive, vector, code node.
 *
 * Evaluation: each top-level form is read, compiled into a tree of code
 * nodes (heap objects too) with variables resolved to (depth, slot) of the
 * environment frames, and the tree is interpreted by eval.  A closure is
 * its lambda node and its environment; a call allocates the callee's frame
 * and evaluates the arguments straight into it.
 *
 * Roots (tenure build):
 *  - eval's locals (the node, the environment, the procedure being applied
 *    and the frame being filled) are in one root frame (GC_FRAME) per eval
 *    call; tail calls loop inside it, so a loop links no frame at all, and
 *    constants, variables and primitive calls on them are evaluated without
 *    an eval call.  Every other function that holds a heap pointer across
 *    an allocation links a frame too (reader, compiler, cons, intern).
 *  - primitive arguments that must survive an allocation are pushed on a
 *    value stack (a malloc'd array reported by a root tracer,
 *    gc_root_tracer_add), so primitives read them in place after they
 *    allocate.
 *  - the global environment is the symbol table: a heap vector of buckets
 *    of symbols, each symbol holding its global value; the C variable
 *    pointing to it is an embedder root (gc_root_add).
 *  - each top-level form runs inside a handle scope opened before its
 *    setjmp; an error longjmps back there and gc_scope_unwind drops every
 *    frame and scope the abandoned evaluation left linked.
 *
 * The language: integers (fixnums, no overflow check), #t/#f, strings,
 * symbols, lists; special forms quote ('x), if, define (top level only),
 * set!, lambda (fixed, dotted and variadic parameters), let (also named
 * let), let*, letrec, begin, cond (with else), and, or, when, unless.
 * Special-form names cannot be rebound.  Primitives: see the prims table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <tenure/gc_type.h> /* type descriptors: both builds use them */

typedef void *value_t;
static void fatal_oom(void);

/* ===================================================================== */
/* The shim: the only code that differs between the two builds.          */
/* ===================================================================== */
#ifdef LISP_BOEHM
#include <gc.h>

#define LISP_COLLECTOR "boehm"
/* One header word before the object, holding the descriptor, as tenure
 * has (Boehm recognises the interior pointer: GC_all_interior_pointers is
 * on by default).  Objects without references are allocated atomic. */
static inline void *heap_alloc(const gc_type_t *t, size_t size) {
  uintptr_t *p = t->trace == NULL ? GC_MALLOC_ATOMIC(size + sizeof(void *))
                                  : GC_MALLOC(size + sizeof(void *));
  if (GC_UNLIKELY(p == NULL))
    fatal_oom();
  p[0] = (uintptr_t)t;
  return p + 1;
}
static inline const gc_type_t *obj_type(const void *o) {
  return (const gc_type_t *)((const uintptr_t *)o)[-1];
}
#define WRITE(obj, field, val) ((obj)->field = (val))
#define INIT(obj, field, val) ((obj)->field = (val))
#define INIT_MAX_BYTES SIZE_MAX
#define FRAME(name, ...) ((void)0)
#define FRAME_CLOSE(name) ((void)0)
typedef char scope_t;
#define SCOPE_OPEN(s) ((void)(s))
#define SCOPE_CLOSE(s) ((void)(s))
#define SCOPE_UNWIND(s) ((void)(s))
/* The value stack is a heap object reached from a static variable. */
static value_t *vstack_resize(value_t *old, size_t n) {
  return GC_REALLOC(old, n * sizeof(value_t));
}
static int heap_init(int *argc, char **argv);
static void heap_stats(void) {
  fprintf(stderr, "boehm: %lu collections, heap %lu KiB\n",
          (unsigned long)GC_get_gc_no(),
          (unsigned long)(GC_get_heap_size() / 1024));
}
static void heap_destroy(void) {}

#else /* tenure */
#include <tenure/gc.h>

#define LISP_COLLECTOR "tenure"
static gc_heap_t *H;
static inline void *heap_alloc(const gc_type_t *t, size_t size) {
  void *p = gc_alloc(H, t, size);
  if (GC_UNLIKELY(p == NULL))
    fatal_oom();
  return p;
}
#define obj_type(o) gc_object_type(o)
#define WRITE(obj, field, val) GC_WRITE(H, obj, field, val)
/* A store into an object allocated since the last GC point (so young):
 * no barrier (GC_INIT_FIELD). */
#define INIT(obj, field, val) GC_INIT_FIELD(H, obj, field, val)
#define INIT_MAX_BYTES GC_MAX_REGULAR_SIZE /* larger objects start old */
#define FRAME(name, ...) GC_FRAME(H, name, __VA_ARGS__)
#define FRAME_CLOSE(name) GC_FRAME_CLOSE(H, name)
typedef gc_scope_t scope_t;
#define SCOPE_OPEN(s) gc_scope_open(H, (s))
#define SCOPE_CLOSE(s) gc_scope_close(H, (s))
#define SCOPE_UNWIND(s) gc_scope_unwind(H, (s))
/* The value stack is malloc'd and reported by a root tracer. */
static value_t *vstack_resize(value_t *old, size_t n) {
  return realloc(old, n * sizeof(value_t));
}
static int heap_init(int *argc, char **argv);
static void heap_stats(void) { gc_heap_stats_json(H, stderr); }
static void heap_destroy(void) { gc_heap_destroy(H); }
#endif

/* ===================================================================== */
/* Values                                                                */
/* ===================================================================== */
#define NIL ((value_t)0)
#define FALSE_V ((value_t)(uintptr_t)2)
#define TRUE_V ((value_t)(uintptr_t)6)
#define UNSPEC ((value_t)(uintptr_t)10)
#define UNBOUND ((value_t)(uintptr_t)14)

#define is_fix(v) (((uintptr_t)(v)&1) != 0)
#define mkfix(n) ((value_t)(((uintptr_t)(intptr_t)(n) << 1) | 1))
#define fixval(v) ((intptr_t)(uintptr_t)(v) >> 1)
#define is_ptr(v) ((v) != NIL && ((uintptr_t)(v)&GC_IMMEDIATE_MASK) == 0)
#define BOOL(c) ((c) ? TRUE_V : FALSE_V)

typedef struct pair {
  value_t car, cdr;
} pair_t;

typedef struct string {
  size_t len;
  char s[]; /* NUL-terminated */
} string_t;

typedef struct symbol {
  string_t *name;
  value_t value;       /* the global value, or UNBOUND */
  struct symbol *next; /* the next symbol of the bucket */
  uint32_t form;       /* special-form code, 0 for none */
  uint32_t pad;
} symbol_t;

/* How a compile-time scope names its slots: a proper parameter list
 * (a b c), a dotted one (a b . rest) or a lone symbol (the last slot holds
 * the rest), or a let's bindings ((a 1) (b 2)). */
enum { ENV_LIST = 0, ENV_DOTTED = 1, ENV_BINDINGS = 2 };

typedef struct env {
  struct env *parent;
  uint32_t n, pad;
  value_t vals[];
} env_t;

/* Code: see the compiler. */
typedef struct node {
  uint32_t op, n; /* opcode; number of kids */
  uint32_t i, j;  /* operands */
  value_t k[];    /* kids: nodes, constants, symbols */
} node_t;

typedef struct closure {
  node_t *code; /* an N_LAMBDA node */
  env_t *env;
} closure_t;

typedef value_t (*prim_fn)(int argc, value_t *argv);
typedef struct prim {
  prim_fn fn;
  const char *name;
  int32_t min, max; /* max < 0: variadic */
  uint32_t pure;    /* 1: never allocates (no GC point) */
  uint32_t pad;
} prim_t;

typedef struct vector {
  size_t n;
  value_t items[];
} vector_t;

#define PAIR(v) ((pair_t *)(v))
#define SYM(v) ((symbol_t *)(v))
#define STR(v) ((string_t *)(v))
#define CLO(v) ((closure_t *)(v))
#define ENV(v) ((env_t *)(v))
#define PRIM(v) ((prim_t *)(v))
#define CAR(v) (PAIR(v)->car)
#define CDR(v) (PAIR(v)->cdr)

/* --- type descriptors ------------------------------------------------- */
static void pair_trace(void *o, gc_visitor_t *v) {
  pair_t *p = o;
  GC_VISIT(v, &p->car, GC_EDGE_PROP("car"));
  GC_VISIT(v, &p->cdr, GC_EDGE_PROP("cdr"));
}
static void symbol_trace(void *o, gc_visitor_t *v) {
  symbol_t *s = o;
  GC_VISIT(v, &s->name, GC_EDGE_PROP("name"));
  GC_VISIT(v, &s->value, GC_EDGE_PROP("value"));
  GC_VISIT(v, &s->next, GC_EDGE_INTERNAL("next"));
}
static const char *symbol_describe(const void *o, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", ((const symbol_t *)o)->name->s);
  return buf;
}
static size_t string_size(const void *o) {
  return offsetof(string_t, s) + ((const string_t *)o)->len + 1;
}
static const char *string_describe(const void *o, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", ((const string_t *)o)->s);
  return buf;
}
static void closure_trace(void *o, gc_visitor_t *v) {
  closure_t *c = o;
  GC_VISIT(v, &c->code, GC_EDGE_PROP("code"));
  GC_VISIT(v, &c->env, GC_EDGE_PROP("env"));
}
static size_t node_size(const void *o) {
  return offsetof(node_t, k) + ((const node_t *)o)->n * sizeof(value_t);
}
static void node_trace(void *o, gc_visitor_t *v) {
  node_t *x = o;
  for (uint32_t i = 0; i < x->n; i++)
    GC_VISIT(v, &x->k[i], GC_EDGE_ELEM(i));
}
static size_t env_size(const void *o) {
  return offsetof(env_t, vals) + ((const env_t *)o)->n * sizeof(value_t);
}
static void env_trace(void *o, gc_visitor_t *v) {
  env_t *e = o;
  GC_VISIT(v, &e->parent, GC_EDGE_PROP("parent"));
  for (uint32_t i = 0; i < e->n; i++)
    GC_VISIT(v, &e->vals[i], GC_EDGE_ELEM(i));
}
static size_t vector_size(const void *o) {
  return offsetof(vector_t, items) + ((const vector_t *)o)->n * sizeof(value_t);
}
static void vector_trace(void *o, gc_visitor_t *v) {
  vector_t *w = o;
  for (size_t i = 0; i < w->n; i++)
    GC_VISIT(v, &w->items[i], GC_EDGE_ELEM(i));
}

static const gc_type_t T_PAIR = {
    .name = "Pair", .size = sizeof(pair_t), .trace = pair_trace};
static const gc_type_t T_SYMBOL = {.name = "Symbol",
                                   .size = sizeof(symbol_t),
                                   .trace = symbol_trace,
                                   .describe = symbol_describe};
static const gc_type_t T_STRING = {
    .name = "String", .size_of = string_size, .describe = string_describe};
static const gc_type_t T_CLOSURE = {
    .name = "Closure", .size = sizeof(closure_t), .trace = closure_trace};
static const gc_type_t T_ENV = {
    .name = "Environment", .size_of = env_size, .trace = env_trace};
static const gc_type_t T_NODE = {
    .name = "Code", .size_of = node_size, .trace = node_trace};
static const gc_type_t T_PRIM = {.name = "Primitive", .size = sizeof(prim_t)};
static const gc_type_t T_VECTOR = {
    .name = "Vector", .size_of = vector_size, .trace = vector_trace};

static inline bool has_type(value_t v, const gc_type_t *t) {
  return is_ptr(v) && obj_type(v) == t;
}
#define is_pair(v) has_type((v), &T_PAIR)
#define is_symbol(v) has_type((v), &T_SYMBOL)
#define is_string(v) has_type((v), &T_STRING)

/* ===================================================================== */
/* Errors                                                                */
/* ===================================================================== */
enum { ERR_EVAL = 1, ERR_READ = 2 };
static jmp_buf toplevel;
static const char *cur_file = "?";
static int form_line; /* where the current top-level form starts */
static int error_count;

static void print(FILE *f, value_t v, bool write);

static void fatal_oom(void) {
  fflush(stdout);
  fputs("lisp: out of memory\n", stderr);
  exit(1);
}

/* Prints "FILE:LINE: error: MESSAGE[: VALUE]" and returns to the top level. */
static _Noreturn void verror(int kind, int line, value_t irritant,
                             bool has_irritant, const char *fmt, va_list ap) {
  fflush(stdout);
  fprintf(stderr, "%s:%d: error: ", cur_file, line);
  vfprintf(stderr, fmt, ap);
  if (has_irritant) {
    fputs(": ", stderr);
    print(stderr, irritant, true);
  }
  fputc('\n', stderr);
  longjmp(toplevel, kind);
}

static _Noreturn __attribute__((format(printf, 1, 2))) void
lerror(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror(ERR_EVAL, form_line, NIL, false, fmt, ap);
}

/* MESSAGE: VALUE */
static _Noreturn __attribute__((format(printf, 2, 3))) void
lerror_v(value_t v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror(ERR_EVAL, form_line, v, true, fmt, ap);
}

/* --- C stack depth ---------------------------------------------------- */
static uintptr_t stack_base;
static size_t stack_max;

static inline void check_stack(void) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  if (GC_UNLIKELY(stack_base - sp > stack_max))
    lerror("stack overflow (recursion deeper than %zu MB of C stack)",
          stack_max >> 20);
}

/* ===================================================================== */
/* Allocation helpers                                                    */
/* ===================================================================== */
/* GC point. */
static value_t cons(value_t a, value_t d) {
  FRAME(fr, &a, &d);
  pair_t *p = heap_alloc(&T_PAIR, sizeof *p);
  FRAME_CLOSE(fr);
  INIT(p, car, a);
  INIT(p, cdr, d);
  return p;
}

/* GC point.  S must not point into the heap. */
static string_t *make_string(const char *s, size_t len) {
  string_t *str = heap_alloc(&T_STRING, offsetof(string_t, s) + len + 1);
  str->len = len;
  memcpy(str->s, s, len);
  str->s[len] = '\0';
  return str;
}

/* GC point: a frame of N slots (NIL); the caller sets parent.  The
 * common sizes are constants, so tenure's inline gc_alloc clears them with
 * a few stores instead of a call to memset (Boehm: no difference). */
#define ENV_BYTES(n) (offsetof(env_t, vals) + (n) * sizeof(value_t))
static inline env_t *env_alloc(uint32_t n) {
  env_t *e;
  switch (n) {
  case 1:
    e = heap_alloc(&T_ENV, ENV_BYTES(1));
    break;
  case 2:
    e = heap_alloc(&T_ENV, ENV_BYTES(2));
    break;
  case 3:
    e = heap_alloc(&T_ENV, ENV_BYTES(3));
    break;
  case 4:
    e = heap_alloc(&T_ENV, ENV_BYTES(4));
    break;
  default:
    e = heap_alloc(&T_ENV, ENV_BYTES(n));
    break;
  }
  e->n = n;
  return e;
}

/* Sets the parent of E, allocated by env_alloc with no GC point since
 * (a frame too large to be young takes the barrier). */
static inline void env_init_parent(env_t *e, env_t *parent) {
  if (GC_LIKELY(ENV_BYTES(e->n) <= INIT_MAX_BYTES))
    INIT(e, parent, parent);
  else
    WRITE(e, parent, parent);
}

/* --- the value stack (primitive arguments) ---------------------------- */
#define VSTACK_MAX ((size_t)1 << 24)
static value_t *vstack;
static size_t vsp, vcap;

static void vgrow(void) {
  size_t n = vcap ? 2 * vcap : 1024;
  if (n > VSTACK_MAX)
    lerror("value stack overflow (%zu values)", vcap);
  value_t *s = vstack_resize(vstack, n);
  if (s == NULL)
    fatal_oom();
  vstack = s;
  vcap = n;
}
static inline void vpush(value_t v) {
  if (GC_UNLIKELY(vsp == vcap))
    vgrow();
  vstack[vsp++] = v;
}
/* Pops to BASE.  The slots above are not cleared: tenure's tracer reads
 * only [0, vsp); Boehm scans the whole array, where a stale slot holds its
 * value only until the next push over it. */
static inline void vpop(size_t base) { vsp = base; }

/* Empties the stack (after an error), clearing every slot. */
static void vreset(void) {
  memset(vstack, 0, vcap * sizeof(value_t));
  vsp = 0;
}

/* GC point: the list of ARGV[0..ARGC), ARGV being on the value stack. */
static value_t list_from(int argc, value_t *argv) {
  value_t r = NIL;
  FRAME(fr, &r);
  for (int i = argc; i-- > 0;) {
    pair_t *p = heap_alloc(&T_PAIR, sizeof *p);
    INIT(p, car, argv[i]);
    INIT(p, cdr, r);
    r = p;
  }
  FRAME_CLOSE(fr);
  return r;
}

/* ===================================================================== */
/* Symbols                                                               */
/* ===================================================================== */
#define NBUCKETS 1024
static vector_t *symtab; /* the global environment */

enum {
  F_NONE,
  F_QUOTE,
  F_IF,
  F_DEFINE,
  F_SET,
  F_LAMBDA,
  F_LET,
  F_LETSTAR,
  F_LETREC,
  F_BEGIN,
  F_COND,
  F_AND,
  F_OR,
  F_WHEN,
  F_UNLESS,
  F_NFORMS,
  K_ELSE = 100 /* a keyword, not a form */
};

static uint32_t hash_name(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* GC point.  NAME must not point into the heap. */
static value_t intern(const char *name, size_t len) {
  size_t b = hash_name(name, len) & (NBUCKETS - 1);
  for (symbol_t *s = symtab->items[b]; s != NULL; s = s->next)
    if (s->name->len == len && memcmp(s->name->s, name, len) == 0)
      return s;
  value_t str = make_string(name, len);
  FRAME(fr, &str);
  symbol_t *s = heap_alloc(&T_SYMBOL, sizeof *s);
  FRAME_CLOSE(fr);
  WRITE(s, name, str);
  s->value = UNBOUND;
  s->form = F_NONE;
  WRITE(s, next, symtab->items[b]);
  WRITE(symtab, items[b], s);
  return s;
}

static value_t intern_c(const char *name) { return intern(name, strlen(name)); }

/* ===================================================================== */
/* Printer                                                               */
/* ===================================================================== */
static void print(FILE *f, value_t v, bool write) {
  if (v == NIL) {
    fputs("()", f);
    return;
  }
  if (is_fix(v)) {
    fprintf(f, "%ld", (long)fixval(v));
    return;
  }
  if (!is_ptr(v)) {
    fputs(v == TRUE_V    ? "#t"
          : v == FALSE_V ? "#f"
          : v == UNSPEC  ? "#<unspecified>"
                         : "#<unbound>",
          f);
    return;
  }
  const gc_type_t *t = obj_type(v);
  if (t == &T_PAIR) {
    fputc('(', f);
    for (;;) {
      print(f, CAR(v), write);
      v = CDR(v);
      if (v == NIL)
        break;
      if (!is_pair(v)) {
        fputs(" . ", f);
        print(f, v, write);
        break;
      }
      fputc(' ', f);
    }
    fputc(')', f);
  } else if (t == &T_SYMBOL) {
    fwrite(SYM(v)->name->s, 1, SYM(v)->name->len, f);
  } else if (t == &T_STRING) {
    if (!write) {
      fwrite(STR(v)->s, 1, STR(v)->len, f);
      return;
    }
    fputc('"', f);
    for (size_t i = 0; i < STR(v)->len; i++) {
      char c = STR(v)->s[i];
      if (c == '"' || c == '\\')
        fputc('\\', f);
      if (c == '\n')
        fputs("\\n", f);
      else
        fputc(c, f);
    }
    fputc('"', f);
  } else if (t == &T_CLOSURE) {
    fputs("#<procedure", f);
    if (CLO(v)->code->k[1] != NIL) {
      fputc(' ', f);
      print(f, CLO(v)->code->k[1], false);
    }
    fputc('>', f);
  } else if (t == &T_PRIM) {
    fprintf(f, "#<primitive %s>", PRIM(v)->name);
  } else if (t == &T_ENV) {
    fputs("#<environment>", f);
  } else if (t == &T_NODE) {
    fputs("#<code>", f);
  } else {
    fputs("#<vector>", f);
  }
}

/* ===================================================================== */
/* Reader                                                                */
/* ===================================================================== */
static struct {
  const char *src;
  size_t pos;
  int line;
} R;

static _Noreturn __attribute__((format(printf, 1, 2))) void
read_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror(ERR_READ, R.line, NIL, false, fmt, ap);
}

static inline int peekc(void) { return (unsigned char)R.src[R.pos]; }
static inline int nextc(void) {
  int c = (unsigned char)R.src[R.pos];
  if (c != 0) {
    R.pos++;
    if (c == '\n')
      R.line++;
  }
  return c;
}

static void skip_ws(void) {
  for (;;) {
    int c = peekc();
    if (c == ';') {
      while (peekc() != 0 && peekc() != '\n')
        nextc();
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
      nextc();
    } else {
      return;
    }
  }
}

/* After a read error: on to the next line that starts with '('. */
static void resync(void) {
  for (;;) {
    int c = nextc();
    if (c == 0)
      return;
    if (c == '\n' && peekc() == '(')
      return;
  }
}

static bool delimiter(int c) {
  return c == 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
         c == '\f' || c == '(' || c == ')' || c == '"' || c == ';' ||
         c == '\'';
}

static value_t read_datum(void);

/* GC point. */
static value_t read_list(void) {
  value_t head = NIL, tail = NIL, item = NIL;
  FRAME(fr, &head, &tail, &item);
  int open_line = R.line;
  nextc(); /* ( */
  for (;;) {
    skip_ws();
    int c = peekc();
    if (c == 0)
      read_error("unexpected end of file (the '(' of line %d is not closed)",
                 open_line);
    if (c == ')') {
      nextc();
      break;
    }
    if (c == '.' && delimiter((unsigned char)R.src[R.pos + 1])) {
      nextc();
      if (head == NIL)
        read_error("unexpected '.'");
      item = read_datum();
      WRITE(PAIR(tail), cdr, item);
      skip_ws();
      if (peekc() != ')')
        read_error("expected ')' after the tail of a dotted list");
      nextc();
      break;
    }
    item = read_datum();
    value_t cell = cons(item, NIL);
    if (head == NIL)
      head = cell;
    else
      WRITE(PAIR(tail), cdr, cell);
    tail = cell;
  }
  FRAME_CLOSE(fr);
  return head;
}

/* GC point. */
static value_t read_string(void) {
  int open_line = R.line;
  nextc(); /* " */
  size_t cap = 64, n = 0;
  char *buf = malloc(cap);
  if (buf == NULL)
    fatal_oom();
  for (;;) {
    int c = nextc();
    if (c == 0) {
      free(buf);
      read_error("unexpected end of file (the string of line %d is not "
                 "closed)",
                 open_line);
    }
    if (c == '"')
      break;
    if (c == '\\') {
      c = nextc();
      c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
    }
    if (n == cap) {
      char *nb = realloc(buf, cap *= 2);
      if (nb == NULL)
        fatal_oom();
      buf = nb;
    }
    buf[n++] = (char)c;
  }
  value_t s = make_string(buf, n);
  free(buf);
  return s;
}

/* GC point. */
static value_t read_atom(void) {
  size_t start = R.pos;
  while (!delimiter(peekc()))
    nextc();
  const char *tok = R.src + start;
  size_t len = R.pos - start;
  size_t i = (tok[0] == '-' || tok[0] == '+') && len > 1 ? 1 : 0;
  bool num = i < len;
  for (size_t k = i; k < len; k++)
    num = num && tok[k] >= '0' && tok[k] <= '9';
  if (num) {
    if (len - i > 18)
      read_error("number too large: %.*s", (int)len, tok);
    intptr_t v = 0;
    for (size_t k = i; k < len; k++)
      v = v * 10 + (tok[k] - '0');
    return mkfix(tok[0] == '-' ? -v : v);
  }
  if (tok[0] == '#') {
    if ((len == 2 && tok[1] == 't') || (len == 5 && !memcmp(tok, "#true", 5)))
      return TRUE_V;
    if ((len == 2 && tok[1] == 'f') ||
        (len == 6 && !memcmp(tok, "#false", 6)))
      return FALSE_V;
    read_error("bad syntax '%.*s'", (int)len, tok);
  }
  return intern(tok, len);
}

/* GC point.  Reads one datum (the caller skipped nothing). */
static value_t read_datum(void) {
  check_stack();
  skip_ws();
  int c = peekc();
  switch (c) {
  case 0:
    read_error("unexpected end of file");
  case '(':
    return read_list();
  case ')':
    nextc();
    read_error("unexpected ')'");
  case '"':
    return read_string();
  case '\'': {
    nextc();
    value_t l = cons(read_datum(), NIL);
    FRAME(fr, &l);
    value_t q = intern_c("quote"); /* a GC point: l is rooted */
    l = cons(q, l);
    FRAME_CLOSE(fr);
    return l;
  }
  default:
    return read_atom();
  }
}

/* ===================================================================== */
/* Compiler: a top-level form becomes a tree of code nodes               */
/* ===================================================================== */
/* Node layouts (k: the kids; i, j: operands):
 *   N_CONST     k0 = the value
 *   N_LOCAL     slot i of the frame j levels up; k0 = the name (messages)
 *   N_GLOBAL    k0 = the symbol
 *   N_SETLOCAL  slot i, depth j; k0 = value node
 *   N_SETGLOBAL k0 = symbol, k1 = value node
 *   N_DEFINE    k0 = symbol, k1 = value node
 *   N_IF        k0 test, k1 then, k2 else
 *   N_LAMBDA    i = fixed parameters, j = 1 with a rest parameter;
 *               k0 = body, k1 = name (symbol or NIL)
 *   N_SEQ       k0..kn-1, the last one a tail
 *   N_LET       a frame of i slots from inits k0..ki-1 (evaluated outside);
 *               ki = body
 *   N_LETREC    the same, the inits evaluated inside the new frame
 *   N_AND/N_OR  k0..kn-1
 *   N_CALL      k0 = procedure node, k1.. = arguments; j = 1 when every
 *               argument is a constant or a variable (no GC point), 2 when
 *               every argument is that or an N_CALLG with j = 1
 *   N_CALLG     the same with k0 = the symbol of a global procedure
 * A frame exists at run time exactly when a scope has a slot: a lambda
 * without parameters and a let without bindings add no frame, and no
 * compile-time scope either, so (depth, slot) addresses match. */
enum {
  N_CONST,
  N_LOCAL,
  N_GLOBAL, /* N_CONST..N_GLOBAL: simple nodes, evaluated without a call */
  N_SETLOCAL,
  N_SETGLOBAL,
  N_DEFINE,
  N_IF,
  N_LAMBDA,
  N_SEQ,
  N_LET,
  N_LETREC,
  N_AND,
  N_OR,
  N_CALL,
  N_CALLG
};

/* A compile-time scope, on the C stack.  NAMES is a heap value: whoever
 * links a scope roots &scope.names in its frame. */
typedef struct cscope {
  value_t names;
  uint32_t kind, n;
  const struct cscope *up;
} cscope_t;

static int c_nested; /* > 0 inside a lambda or let body: no define there */

static int scope_index(const cscope_t *s, value_t sym) {
  value_t n = s->names;
  if (s->kind == ENV_BINDINGS) {
    for (uint32_t i = 0; i < s->n; i++, n = CDR(n))
      if (CAR(CAR(n)) == sym)
        return (int)i;
    return -1;
  }
  uint32_t last = s->kind == ENV_DOTTED ? s->n - 1 : s->n;
  for (uint32_t i = 0; i < last; i++, n = CDR(n))
    if (CAR(n) == sym)
      return (int)i;
  return s->kind == ENV_DOTTED && n == sym ? (int)last : -1;
}

/* The slot of SYM and its depth, or -1 for a global. */
static int resolve(value_t sym, const cscope_t *sc, uint32_t *depth) {
  for (uint32_t d = 0; sc != NULL; sc = sc->up, d++) {
    int i = scope_index(sc, sym);
    if (i >= 0) {
      *depth = d;
      return i;
    }
  }
  return -1;
}

static int list_length(value_t l) {
  int n = 0;
  for (; l != NIL; l = CDR(l), n++)
    if (!is_pair(l))
      return -1;
  return n;
}

static _Noreturn void syntax_error(value_t x, const char *form) {
  lerror_v(x, "%s: bad syntax", form);
}

/* GC point: a node with N kids, all NIL. */
static node_t *node_new(uint32_t op, uint32_t n, uint32_t i, uint32_t j) {
  node_t *x = heap_alloc(&T_NODE, offsetof(node_t, k) + n * sizeof(value_t));
  x->op = op;
  x->n = n;
  x->i = i;
  x->j = j;
  return x;
}

/* GC point: a node of one kid V. */
static node_t *node1(uint32_t op, value_t v, uint32_t i, uint32_t j) {
  FRAME(fr, &v);
  node_t *x = node_new(op, 1, i, j);
  FRAME_CLOSE(fr);
  WRITE(x, k[0], v);
  return x;
}

/* Checks a parameter list; returns the number of fixed parameters and sets
 * *REST to 1 with a rest parameter. */
static uint32_t scan_params(value_t params, uint32_t *rest) {
  uint32_t n = 0;
  value_t p = params;
  for (; is_pair(p); p = CDR(p), n++)
    if (!is_symbol(CAR(p)))
      lerror_v(CAR(p), "lambda: a parameter is not a symbol");
  *rest = 0;
  if (p != NIL) {
    if (!is_symbol(p))
      lerror_v(params, "lambda: bad parameter list");
    *rest = 1;
  }
  return n;
}

/* Checks let bindings ((name init) ...); returns their number. */
static uint32_t scan_bindings(value_t b, const char *form) {
  uint32_t n = 0;
  for (; b != NIL; b = CDR(b), n++)
    if (!is_pair(b) || !is_pair(CAR(b)) || !is_symbol(CAR(CAR(b))) ||
        !is_pair(CDR(CAR(b))) || CDR(CDR(CAR(b))) != NIL)
      lerror_v(b, "%s: bad binding list", form);
  return n;
}

static node_t *compile(value_t x, const cscope_t *sc);

/* Names an anonymous lambda after the variable it is bound to. */
static void name_lambda(node_t *c, value_t name) {
  if (c->op == N_LAMBDA && c->k[1] == NIL)
    WRITE(c, k[1], name);
}

/* GC point: a body (a list of forms). */
static node_t *compile_body(value_t body, const cscope_t *sc) {
  int n = list_length(body);
  if (n < 0)
    syntax_error(body, "body");
  if (n == 0)
    return node1(N_CONST, UNSPEC, 0, 0);
  if (n == 1)
    return compile(CAR(body), sc);
  node_t *x = NULL;
  FRAME(fr, &body, &x);
  x = node_new(N_SEQ, (uint32_t)n, 0, 0);
  for (int i = 0; i < n; i++, body = CDR(body)) {
    node_t *c = compile(CAR(body), sc);
    WRITE(x, k[i], c);
  }
  FRAME_CLOSE(fr);
  return x;
}

/* GC point: a lambda whose frame has the slots NAMES (as KIND) names. */
static node_t *compile_lambda(value_t names, uint32_t kind, uint32_t nfixed,
                              uint32_t rest, value_t body, const cscope_t *sc,
                              value_t name) {
  cscope_t s = {names, kind, nfixed + rest, sc};
  node_t *l = NULL;
  FRAME(fr, &s.names, &body, &name, &l);
  l = node_new(N_LAMBDA, 2, nfixed, rest);
  WRITE(l, k[1], name);
  c_nested++;
  node_t *b = compile_body(body, s.n > 0 ? &s : sc);
  c_nested--;
  WRITE(l, k[0], b);
  FRAME_CLOSE(fr);
  return l;
}

/* GC point: (lambda params body...). */
static node_t *compile_lambda_form(value_t params, value_t body,
                                   const cscope_t *sc, value_t name) {
  uint32_t rest;
  uint32_t nf = scan_params(params, &rest);
  return compile_lambda(params, rest ? ENV_DOTTED : ENV_LIST, nf, rest, body,
                        sc, name);
}

/* GC point: (f arg...); F is NIL when CAR(x) is the symbol of a global. */
static node_t *compile_call(value_t x, const cscope_t *sc) {
  int argc = list_length(CDR(x));
  if (argc < 0)
    syntax_error(x, "application");
  uint32_t d;
  bool global = is_symbol(CAR(x)) && resolve(CAR(x), sc, &d) < 0;
  node_t *c = NULL;
  FRAME(fr, &x, &c);
  c = node_new(global ? N_CALLG : N_CALL, (uint32_t)argc + 1, 0, 0);
  if (global) {
    WRITE(c, k[0], CAR(x));
  } else {
    node_t *f = compile(CAR(x), sc);
    WRITE(c, k[0], f);
  }
  uint32_t simple = 1;
  x = CDR(x); /* x is the argument cursor from here */
  for (int i = 0; i < argc; i++, x = CDR(x)) {
    node_t *a = compile(CAR(x), sc);
    if (a->op == N_CALLG && a->j == 1 && simple)
      simple = 2;
    else if (a->op > N_GLOBAL)
      simple = 0;
    WRITE(c, k[1 + i], a);
  }
  c->j = simple;
  FRAME_CLOSE(fr);
  return c;
}

/* GC point: (let ((v init)...) body...) and (let name (...) body...). */
static node_t *compile_let(value_t x, const cscope_t *sc) {
  value_t a = CDR(x);
  if (!is_pair(a))
    syntax_error(x, "let");
  node_t *l = NULL;
  if (is_symbol(CAR(a))) { /* named let */
    if (!is_pair(CDR(a)) || CDR(CDR(a)) == NIL)
      syntax_error(x, "let");
    uint32_t n = scan_bindings(CAR(CDR(a)), "let");
    /* ((letrec ((name (lambda vars body...))) name) inits...) */
    cscope_t s1 = {CAR(a), ENV_DOTTED, 1, sc};
    node_t *r = NULL;
    FRAME(fr, &x, &s1.names, &l, &r);
    r = node_new(N_LETREC, 2, 1, 0);
    a = CDR(CDR(x));
    l = compile_lambda(CAR(a), ENV_BINDINGS, n, 0, CDR(a), &s1, s1.names);
    WRITE(r, k[0], l);
    l = node1(N_LOCAL, s1.names, 0, 0);
    WRITE(r, k[1], l);
    l = node_new(N_CALL, n + 1, 0, 0);
    WRITE(l, k[0], r);
    bool simple = true;
    x = CAR(CDR(CDR(x))); /* the bindings */
    for (uint32_t i = 0; i < n; i++, x = CDR(x)) {
      node_t *c = compile(CAR(CDR(CAR(x))), sc);
      simple = simple && c->op <= N_GLOBAL;
      WRITE(l, k[1 + i], c);
    }
    l->j = simple;
    FRAME_CLOSE(fr);
    return l;
  }
  if (CDR(a) == NIL)
    syntax_error(x, "let");
  uint32_t n = scan_bindings(CAR(a), "let");
  if (n == 0) {
    c_nested++;
    l = compile_body(CDR(a), sc);
    c_nested--;
    return l;
  }
  cscope_t s = {CAR(a), ENV_BINDINGS, n, sc};
  value_t b = NIL;
  FRAME(fr, &x, &s.names, &l, &b);
  l = node_new(N_LET, n + 1, n, 0);
  b = s.names;
  for (uint32_t i = 0; i < n; i++, b = CDR(b)) {
    node_t *c = compile(CAR(CDR(CAR(b))), sc);
    name_lambda(c, CAR(CAR(b)));
    WRITE(l, k[i], c);
  }
  c_nested++;
  node_t *body = compile_body(CDR(CDR(x)), &s);
  c_nested--;
  WRITE(l, k[n], body);
  FRAME_CLOSE(fr);
  return l;
}

/* GC point: the rest B of let* bindings, then BODY. */
static node_t *compile_letstar(value_t b, value_t body, const cscope_t *sc) {
  if (b == NIL) {
    c_nested++;
    node_t *r = compile_body(body, sc);
    c_nested--;
    return r;
  }
  cscope_t s = {b, ENV_BINDINGS, 1, sc};
  node_t *l = NULL;
  FRAME(fr, &s.names, &body, &l);
  l = node_new(N_LET, 2, 1, 0);
  node_t *c = compile(CAR(CDR(CAR(s.names))), sc);
  name_lambda(c, CAR(CAR(s.names)));
  WRITE(l, k[0], c);
  c = compile_letstar(CDR(s.names), body, &s);
  WRITE(l, k[1], c);
  FRAME_CLOSE(fr);
  return l;
}

/* GC point: (letrec ((v init)...) body...). */
static node_t *compile_letrec(value_t x, const cscope_t *sc) {
  value_t a = CDR(x);
  if (!is_pair(a) || CDR(a) == NIL)
    syntax_error(x, "letrec");
  uint32_t n = scan_bindings(CAR(a), "letrec");
  node_t *l = NULL;
  if (n == 0) {
    c_nested++;
    l = compile_body(CDR(a), sc);
    c_nested--;
    return l;
  }
  cscope_t s = {CAR(a), ENV_BINDINGS, n, sc};
  value_t b = NIL;
  FRAME(fr, &x, &s.names, &l, &b);
  l = node_new(N_LETREC, n + 1, n, 0);
  b = s.names;
  c_nested++;
  for (uint32_t i = 0; i < n; i++, b = CDR(b)) {
    node_t *c = compile(CAR(CDR(CAR(b))), &s);
    name_lambda(c, CAR(CAR(b)));
    WRITE(l, k[i], c);
  }
  node_t *body = compile_body(CDR(CDR(x)), &s);
  c_nested--;
  WRITE(l, k[n], body);
  FRAME_CLOSE(fr);
  return l;
}

/* GC point: cond clauses. */
static node_t *compile_cond(value_t cl, const cscope_t *sc, value_t whole) {
  if (cl == NIL)
    return node1(N_CONST, UNSPEC, 0, 0);
  if (!is_pair(cl) || !is_pair(CAR(cl)) || list_length(CAR(cl)) < 0)
    syntax_error(whole, "cond");
  value_t test = CAR(CAR(cl));
  if (is_symbol(test) && SYM(test)->form == K_ELSE)
    return compile_body(CDR(CAR(cl)), sc);
  node_t *l = NULL;
  FRAME(fr, &cl, &whole, &l);
  bool bare = CDR(CAR(cl)) == NIL; /* (test): the test's value */
  l = node_new(bare ? N_OR : N_IF, bare ? 2 : 3, 0, 0);
  node_t *c = compile(CAR(CAR(cl)), sc);
  WRITE(l, k[0], c);
  if (!bare) {
    c = compile_body(CDR(CAR(cl)), sc);
    WRITE(l, k[1], c);
  }
  c = compile_cond(CDR(cl), sc, whole);
  WRITE(l, k[bare ? 1 : 2], c);
  FRAME_CLOSE(fr);
  return l;
}

/* GC point: a special form. */
static node_t *compile_form(uint32_t form, value_t x, const cscope_t *sc) {
  value_t a = CDR(x);
  int len = list_length(a);
  node_t *l = NULL, *c;
  uint32_t d;
  int i;
  switch (form) {
  case F_QUOTE:
    if (len != 1)
      syntax_error(x, "quote");
    return node1(N_CONST, CAR(a), 0, 0);

  case F_IF: {
    if (len != 2 && len != 3)
      syntax_error(x, "if");
    FRAME(fr, &a, &l);
    l = node_new(N_IF, 3, 0, 0);
    for (i = 0; i < 3; i++) {
      if (i < len) {
        c = compile(CAR(a), sc);
        a = CDR(a);
      } else {
        c = node1(N_CONST, UNSPEC, 0, 0);
      }
      WRITE(l, k[i], c);
    }
    FRAME_CLOSE(fr);
    return l;
  }

  case F_DEFINE: {
    if (c_nested > 0)
      lerror_v(x, "define: only at top level (use let or letrec)");
    if (len < 2)
      syntax_error(x, "define");
    value_t target = CAR(a);
    if (is_pair(target) ? !is_symbol(CAR(target))
                        : !is_symbol(target) || len != 2)
      syntax_error(x, "define");
    FRAME(fr, &x, &l);
    l = node_new(N_DEFINE, 2, 0, 0);
    a = CAR(CDR(x));
    if (is_pair(a)) { /* (define (name . params) body...) */
      WRITE(l, k[0], CAR(a));
      c = compile_lambda_form(CDR(a), CDR(CDR(x)), sc, CAR(a));
    } else {
      WRITE(l, k[0], a);
      c = compile(CAR(CDR(CDR(x))), sc);
      name_lambda(c, l->k[0]);
    }
    WRITE(l, k[1], c);
    FRAME_CLOSE(fr);
    return l;
  }

  case F_SET: {
    if (len != 2 || !is_symbol(CAR(a)))
      syntax_error(x, "set!");
    FRAME(fr, &x, &l);
    i = resolve(CAR(a), sc, &d);
    if (i >= 0) {
      l = node_new(N_SETLOCAL, 1, (uint32_t)i, d);
      c = compile(CAR(CDR(CDR(x))), sc);
      WRITE(l, k[0], c);
    } else {
      l = node_new(N_SETGLOBAL, 2, 0, 0);
      WRITE(l, k[0], CAR(CDR(x)));
      c = compile(CAR(CDR(CDR(x))), sc);
      WRITE(l, k[1], c);
    }
    FRAME_CLOSE(fr);
    return l;
  }

  case F_LAMBDA:
    if (len < 2)
      syntax_error(x, "lambda");
    return compile_lambda_form(CAR(a), CDR(a), sc, NIL);

  case F_LET:
    return compile_let(x, sc);

  case F_LETSTAR:
    if (len < 2)
      syntax_error(x, "let*");
    scan_bindings(CAR(a), "let*");
    return compile_letstar(CAR(a), CDR(a), sc);

  case F_LETREC:
    return compile_letrec(x, sc);

  case F_BEGIN:
    if (len < 0)
      syntax_error(x, "begin");
    return compile_body(a, sc);

  case F_COND:
    return compile_cond(a, sc, x);

  case F_AND:
  case F_OR: {
    if (len < 0)
      syntax_error(x, form == F_AND ? "and" : "or");
    if (len == 0)
      return node1(N_CONST, BOOL(form == F_AND), 0, 0);
    if (len == 1)
      return compile(CAR(a), sc);
    FRAME(fr, &a, &l);
    l = node_new(form == F_AND ? N_AND : N_OR, (uint32_t)len, 0, 0);
    for (i = 0; i < len; i++, a = CDR(a)) {
      c = compile(CAR(a), sc);
      WRITE(l, k[i], c);
    }
    FRAME_CLOSE(fr);
    return l;
  }

  case F_WHEN:
  case F_UNLESS: {
    if (len < 1)
      syntax_error(x, form == F_WHEN ? "when" : "unless");
    FRAME(fr, &x, &l);
    l = node_new(N_IF, 3, 0, 0);
    c = compile(CAR(CDR(x)), sc);
    WRITE(l, k[0], c);
    c = compile_body(CDR(CDR(x)), sc);
    WRITE(l, k[form == F_WHEN ? 1 : 2], c);
    c = node1(N_CONST, UNSPEC, 0, 0);
    WRITE(l, k[form == F_WHEN ? 2 : 1], c);
    FRAME_CLOSE(fr);
    return l;
  }
  }
  return compile_call(x, sc);
}

/* GC point: X compiled in scope SC. */
static node_t *compile(value_t x, const cscope_t *sc) {
  check_stack();
  if (is_symbol(x)) {
    uint32_t d;
    int i = resolve(x, sc, &d);
    return i >= 0 ? node1(N_LOCAL, x, (uint32_t)i, d) : node1(N_GLOBAL, x, 0, 0);
  }
  if (!is_pair(x))
    return node1(N_CONST, x, 0, 0);
  value_t op = CAR(x);
  if (is_symbol(op) && SYM(op)->form != F_NONE && SYM(op)->form < F_NFORMS)
    return compile_form(SYM(op)->form, x, sc);
  return compile_call(x, sc);
}

/* ===================================================================== */
/* Eval                                                                  */
/* ===================================================================== */
#define NODE(v) ((node_t *)(v))

static value_t eval(node_t *x, env_t *env);

static inline value_t local_ref(const node_t *x, env_t *e) {
  for (uint32_t d = x->j; d > 0; d--)
    e = e->parent;
  value_t v = e->vals[x->i];
  if (GC_UNLIKELY(v == UNBOUND))
    lerror_v(x->k[0], "variable used before its letrec initialisation");
  return v;
}

static inline value_t global_ref(const node_t *x) {
  value_t v = SYM(x->k[0])->value;
  if (GC_UNLIKELY(v == UNBOUND))
    lerror_v(x->k[0], "unbound variable");
  return v;
}

static inline value_t eval_simple(const node_t *x, env_t *env) {
  return x->op == N_CONST   ? x->k[0]
         : x->op == N_LOCAL ? local_ref(x, env)
                            : global_ref(x);
}

static _Noreturn void prim_arity_error(const prim_t *p, uint32_t argc) {
  lerror("%s: wrong number of arguments: expected %s%d, got %u", p->name,
         p->max < 0 ? "at least " : p->min == p->max ? "" : "at most ",
         p->max < 0 || p->min == p->max ? p->min : p->max, argc);
}

static inline void prim_arity(const prim_t *p, uint32_t argc) {
  if (GC_UNLIKELY((int)argc < p->min || (p->max >= 0 && (int)argc > p->max)))
    prim_arity_error(p, argc);
}

/* GC point (only in the primitive, after the last use of X): a primitive
 * applied to simple arguments, without an eval call or its frame.  A pure
 * primitive (no GC point) takes them from a local array; one that
 * allocates reads them after it allocated, from the (rooted) value
 * stack. */
static inline value_t call_prim_simple(const node_t *x, prim_t *p,
                                       env_t *env) {
  uint32_t argc = x->n - 1;
  prim_arity(p, argc);
  if (p->pure && argc <= 3) {
    value_t args[3];
    for (uint32_t i = 0; i < argc; i++)
      args[i] = eval_simple(NODE(x->k[1 + i]), env);
    return p->fn((int)argc, args);
  }
  size_t base = vsp;
  for (uint32_t i = 0; i < argc; i++)
    vpush(eval_simple(NODE(x->k[1 + i]), env));
  value_t v = p->fn((int)argc, vstack + base);
  vpop(base);
  return v;
}

/* Whether every N_CALLG argument of X (an N_CALLG with j = 2) calls a
 * primitive that cannot reach a GC point. */
static inline bool nested_pure(const node_t *x) {
  for (uint32_t i = 1; i < x->n; i++) {
    const node_t *a = NODE(x->k[i]);
    if (a->op == N_CALLG) {
      value_t g = SYM(a->k[0])->value;
      if (!has_type(g, &T_PRIM) || !PRIM(g)->pure)
        return false;
    }
  }
  return true;
}

/* GC point (only in P, after the last use of X): P applied to simple
 * arguments and to calls of pure primitives on simple arguments. */
static inline value_t call_prim_nested(const node_t *x, prim_t *p,
                                       env_t *env) {
  uint32_t argc = x->n - 1;
  prim_arity(p, argc);
  size_t base = vsp;
  for (uint32_t i = 0; i < argc; i++) {
    const node_t *a = NODE(x->k[1 + i]);
    vpush(a->op == N_CALLG ? call_prim_simple(a, SYM(a->k[0])->value, env)
                           : eval_simple(a, env));
  }
  value_t v = p->fn((int)argc, vstack + base);
  vpop(base);
  return v;
}

/* GC point: evaluates X, without a call for the simple cases. */
static inline __attribute__((always_inline)) value_t eval_arg(node_t *x,
                                                             env_t *env) {
  switch (x->op) {
  case N_CONST:
    return x->k[0];
  case N_LOCAL:
    return local_ref(x, env);
  case N_GLOBAL:
    return global_ref(x);
  case N_CALLG:
    if (x->j) {
      value_t f = SYM(x->k[0])->value;
      if (has_type(f, &T_PRIM)) {
        if (x->j == 1)
          return call_prim_simple(x, f, env);
        if (nested_pure(x))
          return call_prim_nested(x, f, env);
      }
    }
    break;
  }
  return eval(x, env);
}

static value_t eval(node_t *x, env_t *env) {
  /* Rooted: the node, the environment, the procedure being applied and
   * the frame being filled, all live across GC points.  V (a value just
   * computed) is always stored before the next GC point. */
  value_t fn = NIL, v;
  env_t *ne = NULL;
  FRAME(fr, &x, &env, &fn, &ne);
#define RETURN(val)                                                           \
  do {                                                                        \
    value_t r__ = (val);                                                      \
    FRAME_CLOSE(fr);                                                          \
    return r__;                                                               \
  } while (0)
  check_stack();
  for (;;) {
    switch (x->op) {
    case N_CONST:
      RETURN(x->k[0]);
    case N_LOCAL:
      RETURN(local_ref(x, env));
    case N_GLOBAL:
      RETURN(global_ref(x));

    case N_SETLOCAL: {
      v = eval_arg(NODE(x->k[0]), env);
      env_t *e = env;
      for (uint32_t d = x->j; d > 0; d--)
        e = e->parent;
      WRITE(e, vals[x->i], v);
      RETURN(UNSPEC);
    }
    case N_SETGLOBAL:
      v = eval_arg(NODE(x->k[1]), env);
      if (SYM(x->k[0])->value == UNBOUND)
        lerror_v(x->k[0], "set!: unbound variable");
      WRITE(SYM(x->k[0]), value, v);
      RETURN(UNSPEC);
    case N_DEFINE:
      v = eval_arg(NODE(x->k[1]), env);
      WRITE(SYM(x->k[0]), value, v);
      RETURN(UNSPEC);

    case N_IF:
      v = eval_arg(NODE(x->k[0]), env);
      x = NODE(x->k[v != FALSE_V ? 1 : 2]);
      continue;

    case N_LAMBDA: {
      closure_t *c = heap_alloc(&T_CLOSURE, sizeof *c);
      INIT(c, code, x);
      INIT(c, env, env);
      RETURN(c);
    }

    case N_SEQ: {
      uint32_t last = x->n - 1;
      for (uint32_t i = 0; i < last; i++)
        eval_arg(NODE(x->k[i]), env);
      x = NODE(x->k[last]);
      continue;
    }

    case N_LET: {
      uint32_t n = x->i;
      ne = env_alloc(n);
      env_init_parent(ne, env);
      for (uint32_t i = 0; i < n; i++) {
        v = eval_arg(NODE(x->k[i]), env);
        WRITE(ne, vals[i], v);
      }
      env = ne;
      x = NODE(x->k[n]);
      continue;
    }

    case N_LETREC: {
      uint32_t n = x->i;
      ne = env_alloc(n);
      for (uint32_t i = 0; i < n; i++)
        ne->vals[i] = UNBOUND;
      env_init_parent(ne, env);
      env = ne;
      for (uint32_t i = 0; i < n; i++) {
        v = eval_arg(NODE(x->k[i]), env);
        WRITE(env, vals[i], v);
      }
      x = NODE(x->k[n]);
      continue;
    }

    case N_AND:
    case N_OR: {
      bool is_and = x->op == N_AND;
      uint32_t last = x->n - 1;
      for (uint32_t i = 0; i < last; i++) {
        v = eval_arg(NODE(x->k[i]), env);
        if (is_and ? v == FALSE_V : v != FALSE_V)
          RETURN(v);
      }
      x = NODE(x->k[last]);
      continue;
    }

    case N_CALLG:
      fn = SYM(x->k[0])->value;
      if (GC_UNLIKELY(fn == UNBOUND))
        lerror_v(x->k[0], "unbound variable");
      goto apply;
    case N_CALL:
      fn = eval_arg(NODE(x->k[0]), env);
    apply: {
      uint32_t argc = x->n - 1;
      if (has_type(fn, &T_CLOSURE)) {
        node_t *l = CLO(fn)->code;
        uint32_t nf = l->i, rest = l->j;
        if (GC_UNLIKELY(argc < nf || (argc > nf && !rest)))
          lerror("%s: wrong number of arguments: expected %s%u, got %u",
                 l->k[1] != NIL ? SYM(l->k[1])->name->s : "#<procedure>",
                 rest ? "at least " : "", nf, argc);
        if (nf + rest == 0) { /* no frame */
          env = CLO(fn)->env;
          x = NODE(l->k[0]);
          continue;
        }
        ne = env_alloc(nf + rest);
        env_init_parent(ne, CLO(fn)->env);
        for (uint32_t i = 0; i < nf; i++) {
          v = eval_arg(NODE(x->k[1 + i]), env);
          WRITE(ne, vals[i], v);
        }
        if (rest) {
          size_t base = vsp;
          for (uint32_t i = nf; i < argc; i++) {
            v = eval_arg(NODE(x->k[1 + i]), env);
            vpush(v);
          }
          v = list_from((int)(argc - nf), vstack + base);
          vpop(base);
          WRITE(ne, vals[nf], v);
        }
        env = ne;
        x = NODE(CLO(fn)->code->k[0]);
        continue;
      }
      if (has_type(fn, &T_PRIM)) {
        prim_arity(fn, argc);
        size_t base = vsp;
        for (uint32_t i = 0; i < argc; i++) {
          v = eval_arg(NODE(x->k[1 + i]), env);
          vpush(v);
        }
        v = PRIM(fn)->fn((int)argc, vstack + base);
        vpop(base);
        RETURN(v);
      }
      lerror_v(fn, "not a procedure");
    }
    }
  }
#undef RETURN
}

/* ===================================================================== */
/* Primitives                                                            */
/* ===================================================================== */
static inline intptr_t num(const char *who, value_t v) {
  if (GC_UNLIKELY(!is_fix(v)))
    lerror_v(v, "%s: not a number", who);
  return fixval(v);
}
static inline value_t pair_arg(const char *who, value_t v) {
  if (GC_UNLIKELY(!is_pair(v)))
    lerror_v(v, "%s: not a pair", who);
  return v;
}

static value_t p_cons(int argc, value_t *argv) {
  pair_t *p = heap_alloc(&T_PAIR, sizeof *p);
  INIT(p, car, argv[0]); /* argv is on the value stack: still current */
  INIT(p, cdr, argv[1]);
  return p;
}
static value_t p_car(int argc, value_t *argv) {
  return CAR(pair_arg("car", argv[0]));
}
static value_t p_cdr(int argc, value_t *argv) {
  return CDR(pair_arg("cdr", argv[0]));
}
static value_t p_set_car(int argc, value_t *argv) {
  WRITE(PAIR(pair_arg("set-car!", argv[0])), car, argv[1]);
  return UNSPEC;
}
static value_t p_set_cdr(int argc, value_t *argv) {
  WRITE(PAIR(pair_arg("set-cdr!", argv[0])), cdr, argv[1]);
  return UNSPEC;
}
static value_t p_list(int argc, value_t *argv) { return list_from(argc, argv); }
static value_t p_length(int argc, value_t *argv) {
  int n = list_length(argv[0]);
  if (n < 0)
    lerror_v(argv[0], "length: not a proper list");
  return mkfix(n);
}
static value_t p_add(int argc, value_t *argv) {
  intptr_t r = 0;
  for (int i = 0; i < argc; i++)
    r += num("+", argv[i]);
  return mkfix(r);
}
static value_t p_mul(int argc, value_t *argv) {
  intptr_t r = 1;
  for (int i = 0; i < argc; i++)
    r *= num("*", argv[i]);
  return mkfix(r);
}
static value_t p_sub(int argc, value_t *argv) {
  intptr_t r = num("-", argv[0]);
  if (argc == 1)
    return mkfix(-r);
  for (int i = 1; i < argc; i++)
    r -= num("-", argv[i]);
  return mkfix(r);
}
static intptr_t divisor(const char *who, value_t v) {
  intptr_t d = num(who, v);
  if (d == 0)
    lerror("%s: division by zero", who);
  return d;
}
static value_t p_quotient(int argc, value_t *argv) {
  intptr_t a = num("quotient", argv[0]);
  return mkfix(a / divisor("quotient", argv[1]));
}
static value_t p_remainder(int argc, value_t *argv) {
  intptr_t a = num("remainder", argv[0]);
  return mkfix(a % divisor("remainder", argv[1]));
}
static value_t p_modulo(int argc, value_t *argv) {
  intptr_t a = num("modulo", argv[0]), b = divisor("modulo", argv[1]);
  intptr_t m = a % b;
  return mkfix(m != 0 && (m < 0) != (b < 0) ? m + b : m);
}
#define COMPARE(fname, op, who)                                               \
  static value_t fname(int argc, value_t *argv) {                             \
    for (int i = 0; i + 1 < argc; i++)                                        \
      if (!(num(who, argv[i]) op num(who, argv[i + 1])))                      \
        return FALSE_V;                                                       \
    if (argc == 1)                                                            \
      num(who, argv[0]);                                                      \
    return TRUE_V;                                                            \
  }
COMPARE(p_lt, <, "<")
COMPARE(p_gt, >, ">")
COMPARE(p_le, <=, "<=")
COMPARE(p_ge, >=, ">=")
COMPARE(p_numeq, ==, "=")

static value_t p_eq(int argc, value_t *argv) {
  return BOOL(argv[0] == argv[1]);
}
static bool equal(value_t a, value_t b) {
  for (;;) {
    if (a == b)
      return true;
    if (is_pair(a) && is_pair(b)) {
      if (!equal(CAR(a), CAR(b)))
        return false;
      a = CDR(a);
      b = CDR(b);
      continue;
    }
    return is_string(a) && is_string(b) && STR(a)->len == STR(b)->len &&
           memcmp(STR(a)->s, STR(b)->s, STR(a)->len) == 0;
  }
}
static value_t p_equal(int argc, value_t *argv) {
  return BOOL(equal(argv[0], argv[1]));
}
static value_t p_not(int argc, value_t *argv) {
  return BOOL(argv[0] == FALSE_V);
}
static value_t p_nullp(int argc, value_t *argv) {
  return BOOL(argv[0] == NIL);
}
static value_t p_pairp(int argc, value_t *argv) {
  return BOOL(is_pair(argv[0]));
}
static value_t p_numberp(int argc, value_t *argv) {
  return BOOL(is_fix(argv[0]));
}
static value_t p_symbolp(int argc, value_t *argv) {
  return BOOL(is_symbol(argv[0]));
}
static value_t p_stringp(int argc, value_t *argv) {
  return BOOL(is_string(argv[0]));
}
static value_t p_procedurep(int argc, value_t *argv) {
  return BOOL(has_type(argv[0], &T_CLOSURE) || has_type(argv[0], &T_PRIM));
}
static value_t p_zerop(int argc, value_t *argv) {
  return BOOL(num("zero?", argv[0]) == 0);
}
static value_t p_evenp(int argc, value_t *argv) {
  return BOOL(num("even?", argv[0]) % 2 == 0);
}
static value_t p_oddp(int argc, value_t *argv) {
  return BOOL(num("odd?", argv[0]) % 2 != 0);
}
static value_t p_display(int argc, value_t *argv) {
  print(stdout, argv[0], false);
  return UNSPEC;
}
static value_t p_write(int argc, value_t *argv) {
  print(stdout, argv[0], true);
  return UNSPEC;
}
static value_t p_newline(int argc, value_t *argv) {
  putchar('\n');
  return UNSPEC;
}
/* (error "message" irritant...) */
static value_t p_error(int argc, value_t *argv) {
  fflush(stdout);
  fprintf(stderr, "%s:%d: error: ", cur_file, form_line);
  print(stderr, argv[0], false);
  for (int i = 1; i < argc; i++) {
    fputc(' ', stderr);
    print(stderr, argv[i], true);
  }
  fputc('\n', stderr);
  longjmp(toplevel, ERR_EVAL);
}

static const struct {
  const char *name;
  prim_fn fn;
  int min, max;
} prims[] = {
    {"cons", p_cons, 2, 2},
    {"car", p_car, 1, 1},
    {"cdr", p_cdr, 1, 1},
    {"set-car!", p_set_car, 2, 2},
    {"set-cdr!", p_set_cdr, 2, 2},
    {"list", p_list, 0, -1},
    {"length", p_length, 1, 1},
    {"+", p_add, 0, -1},
    {"-", p_sub, 1, -1},
    {"*", p_mul, 0, -1},
    {"quotient", p_quotient, 2, 2},
    {"remainder", p_remainder, 2, 2},
    {"modulo", p_modulo, 2, 2},
    {"<", p_lt, 1, -1},
    {">", p_gt, 1, -1},
    {"<=", p_le, 1, -1},
    {">=", p_ge, 1, -1},
    {"=", p_numeq, 1, -1},
    {"eq?", p_eq, 2, 2},
    {"equal?", p_equal, 2, 2},
    {"not", p_not, 1, 1},
    {"null?", p_nullp, 1, 1},
    {"pair?", p_pairp, 1, 1},
    {"number?", p_numberp, 1, 1},
    {"symbol?", p_symbolp, 1, 1},
    {"string?", p_stringp, 1, 1},
    {"procedure?", p_procedurep, 1, 1},
    {"zero?", p_zerop, 1, 1},
    {"even?", p_evenp, 1, 1},
    {"odd?", p_oddp, 1, 1},
    {"display", p_display, 1, 1},
    {"write", p_write, 1, 1},
    {"newline", p_newline, 0, 0},
    {"error", p_error, 1, -1},
};

static const struct {
  const char *name;
  uint32_t code;
} forms[] = {
    {"quote", F_QUOTE},   {"if", F_IF},         {"define", F_DEFINE},
    {"set!", F_SET},      {"lambda", F_LAMBDA}, {"let", F_LET},
    {"let*", F_LETSTAR},  {"letrec", F_LETREC}, {"begin", F_BEGIN},
    {"cond", F_COND},     {"and", F_AND},       {"or", F_OR},
    {"when", F_WHEN},     {"unless", F_UNLESS}, {"else", K_ELSE},
};

/* GC points. */
static void init_globals(void) {
  vector_t *st =
      heap_alloc(&T_VECTOR, offsetof(vector_t, items) + NBUCKETS * sizeof(value_t));
  st->n = NBUCKETS;
  symtab = st; /* a root from here on */
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
    SYM(intern_c(forms[i].name))->form = forms[i].code;
  for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++) {
    prim_t *p = heap_alloc(&T_PRIM, sizeof *p);
    p->fn = prims[i].fn;
    p->name = prims[i].name;
    p->min = prims[i].min;
    p->max = prims[i].max;
    p->pure = prims[i].fn != p_cons && prims[i].fn != p_list;
    p->pad = 0;
    value_t pv = p;
    FRAME(fr, &pv);
    value_t s = intern_c(prims[i].name);
    FRAME_CLOSE(fr);
    WRITE(SYM(s), value, pv);
  }
}

/* ===================================================================== */
/* Top level                                                             */
/* ===================================================================== */
/* Reads and evaluates one top-level form; returns false at the end. */
static bool toplevel_form(void) {
  value_t form = NIL;
  node_t *code = NULL;
  FRAME(fr, &form, &code);
  skip_ws();
  if (peekc() == 0) {
    FRAME_CLOSE(fr);
    return false;
  }
  form_line = R.line;
  c_nested = 0;
  form = read_datum();
  code = compile(form, NULL);
  eval(code, NULL);
  FRAME_CLOSE(fr);
  return true;
}

/* Runs the source SRC (NUL-terminated) named NAME. */
static void run_source(const char *name, const char *src) {
  cur_file = name;
  R.src = src;
  R.pos = 0;
  R.line = 1;
  for (;;) {
    scope_t s;
    SCOPE_OPEN(&s);
    switch (setjmp(toplevel)) {
    case 0:
      if (!toplevel_form()) {
        SCOPE_CLOSE(&s);
        return;
      }
      SCOPE_CLOSE(&s);
      break;
    case ERR_READ: /* drop what the abandoned reader left; skip its text */
      SCOPE_UNWIND(&s);
      vreset();
      error_count++;
      resync();
      break;
    default: /* drop what the abandoned evaluation left */
      SCOPE_UNWIND(&s);
      vreset();
      error_count++;
      break;
    }
  }
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf != NULL) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1)
      break;
    char *nb = realloc(buf, cap *= 2);
    if (nb == NULL)
      free(buf);
    buf = nb;
  }
  bool bad = ferror(f) || buf == NULL;
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* A deeper C stack for deep recursion: the soft limit is raised (the main
 * thread's stack grows on demand up to it) and eval checks against it. */
static void setup_stack(void) {
  stack_base = (uintptr_t)__builtin_frame_address(0);
  struct rlimit rl;
  /* at most 64 MB: the kernel keeps at least 128 MB free below the stack
   * whatever the limit was at exec, so the stack can grow this far */
  size_t want = (size_t)64 << 20;
  size_t have = 8 << 20;
  if (getrlimit(RLIMIT_STACK, &rl) == 0) {
    have = rl.rlim_cur == RLIM_INFINITY ? want : rl.rlim_cur;
    if (have < want) {
      rlim_t to = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
                      ? (rlim_t)want
                      : rl.rlim_max;
      rl.rlim_cur = to;
      if (setrlimit(RLIMIT_STACK, &rl) == 0)
        have = to;
    }
  }
  if (have > want)
    have = want;
  stack_max = have - ((size_t)1 << 20); /* a margin for the callees */
}

#ifdef LISP_BOEHM
static int heap_init(int *argc, char **argv) {
  GC_INIT();
  for (int i = 1; i < *argc; i++)
    if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i], "--stats") != 0) {
      fprintf(stderr, "%s: %s: heap flags are for the tenure build\n",
              argv[0], argv[i]);
      return -1;
    }
  return 0;
}
#else
static void vstack_trace(gc_visitor_t *v, void *data) {
  for (size_t i = 0; i < vsp; i++)
    if (is_ptr(vstack[i]))
      GC_VISIT(v, &vstack[i], GC_EDGE_ELEM(i));
}

static int heap_init(int *argc, char **argv) {
  gc_options_t opt;
  gc_options_init(&opt);
  if (gc_options_from_env_and_argv(&opt, argc, argv) < 0)
    return -1;
  int rc = gc_heap_create(&opt, &H);
  if (rc < 0) {
    fprintf(stderr, "%s: cannot create the heap: %s\n", argv[0],
            gc_strerror(rc));
    return -1;
  }
  const gc_type_t *types[] = {&T_PAIR, &T_SYMBOL, &T_STRING, &T_CLOSURE,
                              &T_ENV,  &T_NODE,   &T_PRIM,   &T_VECTOR};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (gc_type_register(H, types[i]) < 0)
      return -1;
  if (gc_root_add(H, (void **)&symtab, "symbol table") < 0 ||
      gc_root_tracer_add(H, vstack_trace, NULL, "value stack") < 0)
    return -1;
  return 0;
}
#endif

int main(int argc, char **argv) {
  setup_stack();
  if (heap_init(&argc, argv) < 0)
    return 2;
  bool stats = getenv("TENURE_STATS") != NULL;
  int nfiles = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--stats") == 0)
      stats = true;
    else
      argv[1 + nfiles++] = argv[i];
  }
  if (nfiles == 0) {
    fprintf(stderr,
            "usage: %s [heap flags] [--stats] FILE.scm...   (" LISP_COLLECTOR
            " build)\n",
            argv[0]);
    return 2;
  }
  vgrow();
  init_globals();
  int status = 0;
  for (int i = 1; i <= nfiles; i++) {
    char *src = read_file(argv[i]);
    if (src == NULL) {
      fflush(stdout);
      fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[i]);
      status = 2;
      break;
    }
    run_source(argv[i], src);
    free(src);
  }
  fflush(stdout);
  if (status == 0 && error_count > 0)
    status = 1;
  if (stats)
    heap_stats();
  heap_destroy();
  return status;
}
