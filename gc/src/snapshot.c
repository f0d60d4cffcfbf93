/* snapshot.c -- heap snapshots in V8's .heapsnapshot JSON format, and the
 * --heapsnapshot-signal machinery.
 *
 * This file owns the snapshot writer: it turns the object graph (roots from
 * gc_walk_roots and the embedder root table, edges from the types' trace
 * callbacks) into the document v8.writeHeapSnapshot() writes; gc_snapshot.h
 * says what the graph holds.  Writing happens in four steps, none of which
 * allocates on the heap or moves an object:
 *   1. roots: every root slot is collected, grouped under its sub-root;
 *   2. discovery: a breadth-first walk from the roots numbers every
 *      reachable object (address -> index table), counts its edges and
 *      records each edge's target index, so the header's node_count and
 *      edge_count are known before any node is written;
 *   3. nodes, then edges (a second trace of each object for the edge names,
 *      targets read from step 2's record), streamed through one 1 MB buffer
 *      with hand-written integer formatting;
 *   4. the string table, each string escaped as V8 escapes it (\uXXXX for
 *      anything but printable ASCII).
 *
 * INV(index): nodes 0 .. nsyn-1 are synthetic (root, "(GC roots)", the
 * sub-roots); every later node is an object (addr[i] its address) or the
 * native node of the object just before it (addr[i] = that address | 1).
 * INV(edges): ecount[i] is the number of edges node i gets in the "edges"
 * section; trace callbacks are pure, so the second trace reports the same
 * slots as the first (checked: a mismatch fails with -EPROTO).
 *
 * Signal snapshots: the handler only increments a counter
 * (async-signal-safe); gc_snapshot_poll, and a listener on the allocation
 * slow path's safepoint event (events.c), write the file when the counter
 * moved.  Process-wide by nature: the signal's disposition, the counter the
 * handler bumps and which heap owns the signal (the last created with
 * --heapsnapshot-signal).  Per heap: how many signals it has answered and
 * how many snapshots it has written (h->snap_seen, h->snap_seq).
 * INV(signal): the owner has a snapshot pending exactly when
 * gc__snapshot_signals != owner->snap_seen.
 *
 * See gc/DESIGN.md and gc/include/tenure/gc_snapshot.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gc_internal.h"
#include "snapshot_internal.h"

#define OUT_CAP ((size_t)1 << 20)
#define NODE_FIELDS 7
#define EDGE_FIELDS 3
#define NAME_MAX_CHARS 1024 /* V8's --heap-snapshot-string-limit */
#define DESCRIBE_CAP (NAME_MAX_CHARS * 4 + 1)
#define MAX_SUBROOTS 4990   /* ids 5 .. GC_SNAPSHOT_FIRST_OBJECT_ID - 2 */
#define NATIVE_TAG ((uintptr_t)1)

/* V8's node and edge types, in node 20's meta order. */
enum {
  NT_HIDDEN = 0, NT_ARRAY = 1, NT_STRING = 2, NT_OBJECT = 3, NT_CODE = 4,
  NT_CLOSURE = 5, NT_REGEXP = 6, NT_NUMBER = 7, NT_NATIVE = 8,
  NT_SYNTHETIC = 9, NT_CONS_STRING = 10, NT_SLICED_STRING = 11,
  NT_SYMBOL = 12, NT_BIGINT = 13
};
enum { ET_ELEMENT = 1, ET_PROPERTY = 2, ET_INTERNAL = 3, ET_WEAK = 6 };

/* --- Output buffer ---------------------------------------------------------- */

typedef struct out_s {
  FILE *f;
  char *buf;
  size_t len;
  int err;
} out_t;

static void out_flush(out_t *o) {
  if (o->len > 0 && o->err == 0 && fwrite(o->buf, 1, o->len, o->f) != o->len)
    o->err = -EIO;
  o->len = 0;
}

static inline void out_room(out_t *o, size_t n) {
  if (GC_UNLIKELY(o->len + n > OUT_CAP))
    out_flush(o);
}

static void out_mem(out_t *o, const char *s, size_t n) {
  while (n > 0) {
    out_room(o, n < OUT_CAP ? n : OUT_CAP);
    size_t k = OUT_CAP - o->len < n ? OUT_CAP - o->len : n;
    memcpy(o->buf + o->len, s, k);
    o->len += k;
    s += k;
    n -= k;
  }
}

static void out_str(out_t *o, const char *s) { out_mem(o, s, strlen(s)); }

static inline void out_ch(out_t *o, char c) {
  out_room(o, 1);
  o->buf[o->len++] = c;
}

/* Appends V in decimal; the caller made room for 20 bytes. */
static inline void put_u64(out_t *o, uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  char *d = o->buf + o->len;
  for (int i = 0; i < n; i++)
    d[i] = tmp[n - 1 - i];
  o->len += (size_t)n;
}

static void out_u64(out_t *o, uint64_t v) {
  out_room(o, 20);
  put_u64(o, v);
}

/* --- Strings ------------------------------------------------------------------ */

/* The string table: each distinct string once, in order of first use. */
typedef struct strtab_s {
  char *data;
  size_t len, cap;
  size_t *off;     /* off[i] .. off[i + 1] is string i */
  uint32_t *hash;  /* of each string */
  uint32_t n, ncap;
  uint32_t *tab;   /* open addressing: index + 1, 0 empty */
  size_t tcap;
  struct {         /* by name pointer, verified by content */
    const char *p;
    uint32_t idx;
  } cache[256];
} strtab_t;

static uint32_t hash_bytes(const char *s, size_t n) {
  uint64_t x = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++)
    x = (x ^ (unsigned char)s[i]) * 0x100000001b3ULL;
  return (uint32_t)(x ^ (x >> 32));
}

static bool str_eq(const strtab_t *t, uint32_t i, const char *s, size_t n) {
  return t->off[i + 1] - t->off[i] == n && memcmp(t->data + t->off[i], s, n) == 0;
}

static bool strtab_grow_tab(strtab_t *t) {
  size_t cap = t->tcap ? t->tcap * 2 : 1024;
  uint32_t *nt = calloc(cap, sizeof *nt);
  if (nt == NULL)
    return false;
  for (uint32_t i = 0; i < t->n; i++) {
    size_t j = t->hash[i] & (cap - 1);
    while (nt[j] != 0)
      j = (j + 1) & (cap - 1);
    nt[j] = i + 1;
  }
  free(t->tab);
  t->tab = nt;
  t->tcap = cap;
  return true;
}

/* Returns the index of S[0..N) in the table, adding it; UINT32_MAX when
 * out of memory. */
static uint32_t intern_n(strtab_t *t, const char *s, size_t n) {
  uint32_t h = hash_bytes(s, n);
  if (t->tcap != 0) {
    for (size_t j = h & (t->tcap - 1); t->tab[j] != 0; j = (j + 1) & (t->tcap - 1)) {
      uint32_t i = t->tab[j] - 1;
      if (t->hash[i] == h && str_eq(t, i, s, n))
        return i;
    }
  }
  if (((size_t)t->n + 1) * 2 > t->tcap && !strtab_grow_tab(t))
    return UINT32_MAX;
  if (t->n + 1 >= t->ncap) {
    uint32_t nc = t->ncap ? t->ncap * 2 : 1024;
    size_t *no = realloc(t->off, ((size_t)nc + 1) * sizeof *no);
    if (no == NULL)
      return UINT32_MAX;
    t->off = no;
    uint32_t *nh = realloc(t->hash, (size_t)nc * sizeof *nh);
    if (nh == NULL)
      return UINT32_MAX;
    t->hash = nh;
    t->ncap = nc;
  }
  if (t->len + n > t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 64 * 1024;
    while (nc < t->len + n)
      nc *= 2;
    char *nd = realloc(t->data, nc);
    if (nd == NULL)
      return UINT32_MAX;
    t->data = nd;
    t->cap = nc;
  }
  memcpy(t->data + t->len, s, n);
  uint32_t i = t->n++;
  t->off[i] = t->len;
  t->len += n;
  t->off[i + 1] = t->len;
  t->hash[i] = h;
  size_t j = h & (t->tcap - 1);
  while (t->tab[j] != 0)
    j = (j + 1) & (t->tcap - 1);
  t->tab[j] = i + 1;
  return i;
}

/* Interns a NUL-terminated name, remembering it by address: most names are
 * static strings seen millions of times. */
static uint32_t intern(strtab_t *t, const char *s) {
  if (s == NULL)
    s = "";
  size_t c = ((uintptr_t)s >> 3) & 255;
  if (t->cache[c].p == s) {
    uint32_t i = t->cache[c].idx;
    size_t n = t->off[i + 1] - t->off[i];
    if (strncmp(t->data + t->off[i], s, n) == 0 && s[n] == '\0')
      return i;
  }
  uint32_t i = intern_n(t, s, strlen(s));
  if (i != UINT32_MAX) {
    t->cache[c].p = s;
    t->cache[c].idx = i;
  }
  return i;
}

static void strtab_free(strtab_t *t) {
  free(t->data);
  free(t->off);
  free(t->hash);
  free(t->tab);
}

/* Decodes one UTF-8 character at S (N bytes left); returns its length, or 0
 * for an invalid sequence. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    len = 2, v = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3, v = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
    return 0;
  *cp = v;
  return len;
}

/* Cuts S (N bytes) after NAME_MAX_CHARS characters; returns the new length. */
static size_t truncate_chars(const char *s, size_t n) {
  size_t i = 0, chars = 0;
  while (i < n && chars < NAME_MAX_CHARS) {
    uint32_t cp;
    size_t k = utf8_decode((const unsigned char *)s + i, n - i, &cp);
    i += k ? k : 1;
    chars++;
  }
  return i;
}

static void put_u4(out_t *o, uint32_t u) {
  static const char hex[] = "0123456789abcdef";
  char *d = o->buf + o->len;
  d[0] = '\\';
  d[1] = 'u';
  d[2] = hex[(u >> 12) & 15];
  d[3] = hex[(u >> 8) & 15];
  d[4] = hex[(u >> 4) & 15];
  d[5] = hex[u & 15];
  o->len += 6;
}

/* Writes S as a JSON string: printable ASCII as is, the rest escaped;
 * invalid UTF-8 becomes U+FFFD. */
static void out_json_str(out_t *o, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  out_ch(o, '"');
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    out_room(o, 12);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      o->buf[o->len++] = (char)c;
      i++;
      continue;
    }
    if (c < 0x80) {
      const char *e = c == '"'    ? "\\\""
                      : c == '\\' ? "\\\\"
                      : c == '\n' ? "\\n"
                      : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t"
                      : c == '\b' ? "\\b"
                      : c == '\f' ? "\\f"
                                  : NULL;
      if (e != NULL) {
        o->buf[o->len++] = e[0];
        o->buf[o->len++] = e[1];
      } else {
        put_u4(o, c);
      }
      i++;
      continue;
    }
    uint32_t cp;
    size_t k = utf8_decode(p + i, n - i, &cp);
    if (k == 0) {
      put_u4(o, 0xfffd);
      i++;
    } else if (cp >= 0x10000) {
      cp -= 0x10000;
      put_u4(o, 0xd800 + (cp >> 10));
      put_u4(o, 0xdc00 + (cp & 0x3ff));
      i += k;
    } else {
      put_u4(o, cp);
      i += k;
    }
  }
  out_ch(o, '"');
}

/* --- Address -> node index ------------------------------------------------- */

typedef struct imap_slot_s {
  uintptr_t key; /* 0: empty */
  uint32_t val;
} imap_slot_t;

typedef struct imap_s {
  imap_slot_t *s;
  size_t cap, len;
} imap_t;

static inline size_t imap_hash(uintptr_t a, size_t mask) {
  return (size_t)(((uint64_t)a * 0x9e3779b97f4a7c15ULL) >> 24) & mask;
}

static bool imap_grow(imap_t *m) {
  size_t cap = m->cap ? m->cap * 2 : 4096;
  imap_slot_t *n = calloc(cap, sizeof *n);
  if (n == NULL)
    return false;
  for (size_t i = 0; i < m->cap; i++) {
    if (m->s[i].key == 0)
      continue;
    size_t j = imap_hash(m->s[i].key, cap - 1);
    while (n[j].key != 0)
      j = (j + 1) & (cap - 1);
    n[j] = m->s[i];
  }
  free(m->s);
  m->s = n;
  m->cap = cap;
  return true;
}

/* --- The writer's state ----------------------------------------------------- */

typedef struct subroot_s {
  const char *label;
  uint32_t name; /* string index */
  uint32_t count;
  uint32_t next_name; /* for "1", "2", ... edge names */
} subroot_t;

typedef struct rootedge_s {
  uintptr_t target;
  uint32_t to; /* its node index, once discovered */
  uint32_t sub;
  uint32_t type; /* ET_* */
  uint32_t name_or_index;
} rootedge_t;

typedef struct tinfo_s {
  const gc_type_t *t;
  uint32_t ntype;
  uint32_t name;
} tinfo_t;

typedef struct snap_s {
  gc_visitor_t v; /* first: visitors cast back to the writer */
  gc_heap_t *h;
  int err;
  strtab_t str;
  imap_t map;
  uintptr_t *addr; /* INV(index) */
  uint32_t *ecount;
  uint32_t n, ncap;
  uint32_t nsyn;
  uint64_t edges_total;
  subroot_t *subs;
  uint32_t nsubs, subs_cap;
  rootedge_t *roots;
  size_t nroots, roots_cap;
  uint32_t cur_sub; /* root collection: the sub-root of a tracer's slots */
  uint32_t cur_node; /* discovery / edges: the node being traced */
  uint32_t *targets; /* to_node of each object edge, in edges order */
  size_t ntargets, targets_cap, tpos;
  uint32_t *num_names; /* string index of "k", by k (0: not yet) */
  uint32_t num_cap;
  tinfo_t *types;
  size_t types_cap;
  out_t out;
  uint32_t edges_written;
  char describe[DESCRIBE_CAP];
} snap_t;

static void set_err(snap_t *s, int err) {
  if (s->err == 0)
    s->err = err;
}

static uint32_t intern_s(snap_t *s, const char *name) {
  uint32_t i = intern(&s->str, name);
  if (i == UINT32_MAX) {
    set_err(s, -ENOMEM);
    return 0;
  }
  return i;
}

/* The string index of the decimal K. */
static uint32_t num_name(snap_t *s, uint32_t k) {
  if (k < s->num_cap && s->num_names[k] != 0)
    return s->num_names[k];
  char buf[16];
  int n = snprintf(buf, sizeof buf, "%u", (unsigned)k);
  uint32_t i = intern_n(&s->str, buf, (size_t)n);
  if (i == UINT32_MAX) {
    set_err(s, -ENOMEM);
    return 0;
  }
  if (k >= s->num_cap && k < (1u << 24)) {
    uint32_t nc = s->num_cap ? s->num_cap : 256;
    while (nc <= k)
      nc *= 2;
    uint32_t *nn = realloc(s->num_names, (size_t)nc * sizeof *nn);
    if (nn == NULL)
      return i;
    memset(nn + s->num_cap, 0, (size_t)(nc - s->num_cap) * sizeof *nn);
    s->num_names = nn;
    s->num_cap = nc;
  }
  if (k < s->num_cap)
    s->num_names[k] = i;
  return i;
}

/* --- Node types ---------------------------------------------------------------- */

static uint32_t node_type_of(const char *name) {
  static const struct {
    const char *name;
    uint32_t type;
  } map[] = {
      {"string", NT_STRING},         {"concatenated string", NT_CONS_STRING},
      {"sliced string", NT_SLICED_STRING}, {"symbol", NT_SYMBOL},
      {"bigint", NT_BIGINT},         {"closure", NT_CLOSURE},
      {"regexp", NT_REGEXP},         {"number", NT_NUMBER},
      {"HeapNumber", NT_NUMBER},     {"code", NT_CODE},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(name, map[i].name) == 0)
      return map[i].type;
  if (name[0] == '(')
    return NT_ARRAY;
  if (strncmp(name, "system / ", 9) == 0)
    return NT_HIDDEN;
  return NT_OBJECT;
}

static tinfo_t *type_info(snap_t *s, const gc_type_t *t) {
  size_t mask = s->types_cap - 1;
  size_t j = ((uintptr_t)t >> GC_TYPE_ALIGN_BITS) & mask;
  for (; s->types[j].t != NULL; j = (j + 1) & mask)
    if (s->types[j].t == t)
      return &s->types[j];
  tinfo_t *ti = &s->types[j];
  ti->t = t;
  ti->ntype = node_type_of(t->name);
  ti->name = intern_s(s, ti->ntype == NT_NUMBER ? "heap number" : t->name);
  return ti;
}

/* --- Step 1: roots ----------------------------------------------------------- */

static uint32_t subroot(snap_t *s, const char *label) {
  for (uint32_t i = s->nsubs; i-- > 0;)
    if (s->subs[i].label == label || strcmp(s->subs[i].label, label) == 0)
      return i;
  static const char other[] = "(Other embedder roots)";
  if (s->nsubs >= MAX_SUBROOTS && strcmp(label, other) != 0)
    return subroot(s, other);
  if (s->nsubs == s->subs_cap) {
    uint32_t nc = s->subs_cap ? s->subs_cap * 2 : 16;
    subroot_t *ns = realloc(s->subs, (size_t)nc * sizeof *ns);
    if (ns == NULL) {
      set_err(s, -ENOMEM);
      return 0;
    }
    s->subs = ns;
    s->subs_cap = nc;
  }
  subroot_t *r = &s->subs[s->nsubs];
  r->label = label;
  r->name = intern_s(s, label);
  r->count = 0;
  r->next_name = 1;
  return s->nsubs++;
}

static void add_root(snap_t *s, uint32_t sub, void *target, uint32_t type,
                     uint32_t name_or_index) {
  if (s->nroots == s->roots_cap) {
    size_t nc = s->roots_cap ? s->roots_cap * 2 : 1024;
    rootedge_t *nr = realloc(s->roots, nc * sizeof *nr);
    if (nr == NULL) {
      set_err(s, -ENOMEM);
      return;
    }
    s->roots = nr;
    s->roots_cap = nc;
  }
  s->roots[s->nroots++] =
      (rootedge_t){(uintptr_t)target, 0, sub, type, name_or_index};
  s->subs[sub].count++;
}

/* A numbered edge from sub-root SUB, as V8 names handle-scope entries. */
static void add_numbered_root(snap_t *s, uint32_t sub, void *target,
                              uint32_t type) {
  add_root(s, sub, target, type, num_name(s, s->subs[sub].next_name++));
}

/* gc_walk_roots: handles, persistent and weak handles.  Embedder roots are
 * collected from the root table instead, where their labels are. */
static void visit_walk_root(gc_visitor_t *v, void **slot, gc_edge_t e) {
  snap_t *s = (snap_t *)v;
  if (gc__not_ptr(*slot) || e.name == NULL)
    return;
  if (strcmp(e.name, "(Handle scope)") == 0)
    add_numbered_root(s, 0, *slot, ET_INTERNAL);
  else if (strcmp(e.name, "(Persistent handles)") == 0)
    add_numbered_root(s, 1, *slot, ET_INTERNAL);
  else if (strcmp(e.name, "(Weak handles)") == 0)
    add_numbered_root(s, 2, *slot, ET_WEAK);
  else if (strcmp(e.name, "(Stack roots)") == 0)
    add_numbered_root(s, 3, *slot, ET_INTERNAL);
}

static uint32_t edge_type(uint32_t kind) {
  switch (kind) {
  case GC_EDGE_PROPERTY:
    return ET_PROPERTY;
  case GC_EDGE_ELEMENT:
    return ET_ELEMENT;
  case GC_EDGE_WEAK:
    return ET_WEAK;
  default:
    return ET_INTERNAL;
  }
}

/* A root tracer's slots, under the tracer's label, named as it names them. */
static void visit_tracer_root(gc_visitor_t *v, void **slot, gc_edge_t e) {
  snap_t *s = (snap_t *)v;
  if (gc__not_ptr(*slot))
    return;
  uint32_t type = edge_type(e.kind);
  if (type == ET_ELEMENT)
    add_root(s, s->cur_sub, *slot, type, e.index);
  else if (e.name == NULL)
    add_numbered_root(s, s->cur_sub, *slot, type);
  else
    add_root(s, s->cur_sub, *slot, type, intern_s(s, e.name));
}

static void collect_roots(snap_t *s) {
  subroot(s, "(Handle scope)");
  subroot(s, "(Persistent handles)");
  subroot(s, "(Weak handles)");
  subroot(s, "(Stack roots)");
  s->v.visit = visit_walk_root;
  gc_walk_roots(s->h, &s->v);
  s->v.visit = visit_tracer_root;
  gc_heap_t *h = s->h;
  for (size_t i = 0; i < h->nroots && s->err == 0; i++) {
    gc__root_t *r = &h->roots[i];
    const char *label = r->label != NULL ? r->label : "(Embedder roots)";
    if (r->fn != NULL) {
      s->cur_sub = subroot(s, label);
      r->fn(&s->v, r->data);
    } else if (!gc__not_ptr(*r->slot)) {
      add_numbered_root(s, subroot(s, label), *r->slot, ET_INTERNAL);
    }
  }
  /* Group the root edges by sub-root (stable), as they are written. */
  if (s->err != 0 || s->nroots == 0)
    return;
  rootedge_t *sorted = malloc(s->nroots * sizeof *sorted);
  size_t *start = calloc((size_t)s->nsubs + 1, sizeof *start);
  if (sorted == NULL || start == NULL) {
    free(sorted);
    free(start);
    set_err(s, -ENOMEM);
    return;
  }
  for (uint32_t i = 0; i < s->nsubs; i++)
    start[i + 1] = start[i] + s->subs[i].count;
  for (size_t i = 0; i < s->nroots; i++)
    sorted[start[s->roots[i].sub]++] = s->roots[i];
  free(start);
  free(s->roots);
  s->roots = sorted;
  s->roots_cap = s->nroots;
}

/* --- Step 2: discovery ------------------------------------------------------- */

static bool push_node(snap_t *s, uintptr_t a, uint32_t ecount) {
  if (s->n == s->ncap) {
    if (s->ncap >= UINT32_MAX / 2 / NODE_FIELDS) {
      set_err(s, -ENOMEM);
      return false;
    }
    uint32_t nc = s->ncap ? s->ncap * 2 : 4096;
    uintptr_t *na = realloc(s->addr, (size_t)nc * sizeof *na);
    if (na == NULL) {
      set_err(s, -ENOMEM);
      return false;
    }
    s->addr = na;
    uint32_t *ne = realloc(s->ecount, (size_t)nc * sizeof *ne);
    if (ne == NULL) {
      set_err(s, -ENOMEM);
      return false;
    }
    s->ecount = ne;
    s->ncap = nc;
  }
  s->addr[s->n] = a;
  s->ecount[s->n] = ecount;
  s->n++;
  s->edges_total += ecount;
  return true;
}

/* Returns the node index of OBJ, numbering it (and its native node) the
 * first time it is seen. */
static uint32_t discover(snap_t *s, void *obj) {
  uintptr_t a = (uintptr_t)obj;
  imap_t *m = &s->map;
  if ((m->len + 1) * 2 > m->cap && !imap_grow(m)) {
    set_err(s, -ENOMEM);
    return 0;
  }
  size_t mask = m->cap - 1, j = imap_hash(a, mask);
  for (; m->s[j].key != 0; j = (j + 1) & mask)
    if (m->s[j].key == a)
      return m->s[j].val;
  if (s->err != 0)
    return 0;
  const gc_type_t *t = gc_object_type(obj);
  size_t ext = t->external_size != NULL ? t->external_size(obj) : 0;
  uint32_t idx = s->n;
  m->s[j].key = a;
  m->s[j].val = idx;
  m->len++;
  if (push_node(s, a, ext > 0 ? 1 : 0) && ext > 0)
    push_node(s, a | NATIVE_TAG, 0);
  return idx;
}

/* Objects are traced in node order, so the targets recorded here are the
 * edges section's to_nodes in order: the edges pass needs no lookups. */
static void visit_discover(gc_visitor_t *v, void **slot, gc_edge_t e) {
  (void)e;
  snap_t *s = (snap_t *)v;
  void *x = *slot;
  if (gc__not_ptr(x))
    return;
  s->ecount[s->cur_node]++;
  s->edges_total++;
  uint32_t to = discover(s, x);
  if (GC_UNLIKELY(s->ntargets == s->targets_cap)) {
    size_t nc = s->targets_cap ? s->targets_cap * 2 : 65536;
    uint32_t *nt = realloc(s->targets, nc * sizeof *nt);
    if (nt == NULL) {
      set_err(s, -ENOMEM);
      return;
    }
    s->targets = nt;
    s->targets_cap = nc;
  }
  s->targets[s->ntargets++] = to;
}

static void discover_all(snap_t *s) {
  s->nsyn = 2 + s->nsubs;
  push_node(s, 0, 1);        /* "" -> "(GC roots)" */
  push_node(s, 0, s->nsubs); /* "(GC roots)" -> each sub-root */
  for (uint32_t i = 0; i < s->nsubs; i++)
    push_node(s, 0, s->subs[i].count);
  for (size_t i = 0; i < s->nroots && s->err == 0; i++)
    s->roots[i].to = discover(s, (void *)s->roots[i].target);
  s->v.visit = visit_discover;
  for (uint32_t i = s->nsyn; i < s->n && s->err == 0; i++) {
    uintptr_t a = s->addr[i];
    if (a & NATIVE_TAG)
      continue;
    const gc_type_t *t = gc_object_type((void *)a);
    if (t->trace != NULL) {
      s->cur_node = i;
      t->trace((void *)a, &s->v);
    }
  }
}

/* --- Step 3: header, nodes, edges ------------------------------------------ */

static void write_header(snap_t *s) {
  out_t *o = &s->out;
  out_str(o,
          "{\"snapshot\":{\"meta\":{\"node_fields\":[\"type\",\"name\",\"id\","
          "\"self_size\",\"edge_count\",\"trace_node_id\",\"detachedness\"],"
          "\"node_types\":[[\"hidden\",\"array\",\"string\",\"object\","
          "\"code\",\"closure\",\"regexp\",\"number\",\"native\","
          "\"synthetic\",\"concatenated string\",\"sliced string\","
          "\"symbol\",\"bigint\",\"object shape\",\"wasm object\"],"
          "\"string\",\"number\",\"number\",\"number\",\"number\","
          "\"number\"],\"edge_fields\":[\"type\",\"name_or_index\","
          "\"to_node\"],\"edge_types\":[[\"context\",\"element\","
          "\"property\",\"internal\",\"hidden\",\"shortcut\",\"weak\"],"
          "\"string_or_number\",\"node\"],\"trace_function_info_fields\":["
          "\"function_id\",\"name\",\"script_name\",\"script_id\",\"line\","
          "\"column\"],\"trace_node_fields\":[\"id\",\"function_info_index\","
          "\"count\",\"size\",\"children\"],\"sample_fields\":["
          "\"timestamp_us\",\"last_assigned_id\"],\"location_fields\":["
          "\"object_index\",\"script_id\",\"line\",\"column\"]},"
          "\"node_count\":");
  out_u64(o, s->n);
  out_str(o, ",\"edge_count\":");
  out_u64(o, s->edges_total);
  out_str(o, ",\"trace_function_count\":0},\n\"nodes\":[");
}

/* One node: type,name,id,self_size,edge_count,0,0 (with a leading "\n,"
 * separator after the first, as V8 writes it). */
static inline void put_node(out_t *o, bool first, uint32_t type, uint32_t name,
                            uint64_t id, uint64_t size, uint32_t ecount) {
  out_room(o, 2 + 5 * 21 + 4);
  if (!first) {
    o->buf[o->len++] = '\n';
    o->buf[o->len++] = ',';
  }
  put_u64(o, type);
  o->buf[o->len++] = ',';
  put_u64(o, name);
  o->buf[o->len++] = ',';
  put_u64(o, id);
  o->buf[o->len++] = ',';
  put_u64(o, size);
  o->buf[o->len++] = ',';
  put_u64(o, ecount);
  memcpy(o->buf + o->len, ",0,0", 4);
  o->len += 4;
}

/* The display name of OBJ: describe() output cut to V8's limit. */
static uint32_t object_name(snap_t *s, const gc_type_t *t, tinfo_t *ti,
                            const void *obj) {
  if (t->describe == NULL || ti->ntype == NT_NUMBER)
    return ti->name;
  s->describe[0] = '\0';
  const char *d = t->describe(obj, s->describe, sizeof s->describe);
  if (d == NULL)
    return ti->name;
  size_t n = d == s->describe ? strnlen(d, sizeof s->describe - 1) : strlen(d);
  n = truncate_chars(d, n);
  uint32_t i = intern_n(&s->str, d, n);
  if (i == UINT32_MAX) {
    set_err(s, -ENOMEM);
    return 0;
  }
  return i;
}

static void write_nodes(snap_t *s) {
  out_t *o = &s->out;
  put_node(o, true, NT_SYNTHETIC, intern_s(s, ""), 1, 0, s->ecount[0]);
  put_node(o, false, NT_SYNTHETIC, intern_s(s, "(GC roots)"), 3, 0,
           s->ecount[1]);
  for (uint32_t i = 0; i < s->nsubs; i++)
    put_node(o, false, NT_SYNTHETIC, s->subs[i].name, 5 + 2 * (uint64_t)i, 0,
             s->ecount[2 + i]);
  uint32_t backing_name = intern_s(s, "system / JSArrayBufferData");
  uint64_t last_id = 0;
  for (uint32_t i = s->nsyn; i < s->n && s->err == 0 && o->err == 0; i++) {
    uintptr_t a = s->addr[i];
    if (a & NATIVE_TAG) {
      void *obj = (void *)(a & ~NATIVE_TAG);
      size_t ext = gc_object_type(obj)->external_size(obj);
      put_node(o, false, NT_NATIVE, backing_name, last_id + 1, ext, 0);
      continue;
    }
    const void *obj = (const void *)a;
    const gc_type_t *t = gc_object_type(obj);
    tinfo_t *ti = type_info(s, t);
    uint32_t name = object_name(s, t, ti, obj);
    last_id = gc_object_id(s->h, obj);
    if (last_id == 0)
      set_err(s, -ENOMEM);
    put_node(o, false, ti->ntype, name, last_id, gc__obj_total(obj, t),
             s->ecount[i]);
  }
  out_str(o, "\n],\n\"edges\":[");
}

static inline void put_edge(snap_t *s, uint32_t type, uint64_t name_or_index,
                            uint32_t to) {
  out_t *o = &s->out;
  out_room(o, 2 + 3 * 21);
  if (s->edges_written++ != 0) {
    o->buf[o->len++] = '\n';
    o->buf[o->len++] = ',';
  }
  put_u64(o, type);
  o->buf[o->len++] = ',';
  put_u64(o, name_or_index);
  o->buf[o->len++] = ',';
  put_u64(o, (uint64_t)to * NODE_FIELDS);
}

static void visit_edge(gc_visitor_t *v, void **slot, gc_edge_t e) {
  snap_t *s = (snap_t *)v;
  void *x = *slot;
  if (gc__not_ptr(x))
    return;
  if (GC_UNLIKELY(s->tpos == s->ntargets)) {
    set_err(s, -EPROTO); /* an impure trace callback */
    return;
  }
  uint32_t to = s->targets[s->tpos++];
  uint32_t type = edge_type(e.kind);
  put_edge(s, type, type == ET_ELEMENT ? e.index : intern_s(s, e.name), to);
}

static void write_edges(snap_t *s) {
  put_edge(s, ET_ELEMENT, 1, 1);
  for (uint32_t i = 0; i < s->nsubs; i++)
    put_edge(s, ET_ELEMENT, i + 1, 2 + i);
  for (size_t i = 0; i < s->nroots; i++)
    put_edge(s, s->roots[i].type, s->roots[i].name_or_index,
             s->roots[i].to);
  uint32_t backing = intern_s(s, "backing_store");
  s->v.visit = visit_edge;
  for (uint32_t i = s->nsyn; i < s->n && s->err == 0 && s->out.err == 0;
       i++) {
    uintptr_t a = s->addr[i];
    if (a & NATIVE_TAG)
      continue;
    const gc_type_t *t = gc_object_type((void *)a);
    uint32_t before = s->edges_written;
    if (t->trace != NULL)
      t->trace((void *)a, &s->v);
    if (i + 1 < s->n && s->addr[i + 1] == (a | NATIVE_TAG))
      put_edge(s, ET_INTERNAL, backing, i + 1);
    if (s->edges_written - before != s->ecount[i])
      set_err(s, -EPROTO);
  }
  out_str(&s->out, "\n],\n\"trace_function_infos\":[],\n\"trace_tree\":[],"
                   "\n\"samples\":[],\n\"locations\":[],\n\"strings\":[");
}

/* --- Step 4: strings ---------------------------------------------------------- */

static void write_strings(snap_t *s) {
  out_t *o = &s->out;
  for (uint32_t i = 0; i < s->str.n && o->err == 0; i++) {
    if (i != 0)
      out_mem(o, ",\n", 2);
    out_json_str(o, s->str.data + s->str.off[i],
                 s->str.off[i + 1] - s->str.off[i]);
  }
  out_str(o, "]}\n");
}

/* --- API ---------------------------------------------------------------------- */

static void snap_free(snap_t *s) {
  strtab_free(&s->str);
  free(s->map.s);
  free(s->addr);
  free(s->ecount);
  free(s->subs);
  free(s->roots);
  free(s->targets);
  free(s->num_names);
  free(s->types);
  free(s->out.buf);
  free(s);
}

int gc_snapshot_write(gc_heap_t *h, FILE *f) {
  if (h == NULL || f == NULL || h->in_gc)
    return -EINVAL;
  snap_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->h = h;
  s->out.f = f;
  s->out.buf = malloc(OUT_CAP);
  s->types_cap = 64;
  while (s->types_cap < h->ntypes * 2)
    s->types_cap *= 2;
  s->types = calloc(s->types_cap, sizeof *s->types);
  if (s->out.buf == NULL || s->types == NULL || !imap_grow(&s->map)) {
    snap_free(s);
    return -ENOMEM;
  }
  intern_s(s, "<dummy>"); /* V8's strings[0] */
  collect_roots(s);
  if (s->err == 0)
    discover_all(s);
  free(s->map.s); /* the edges pass reads targets instead */
  s->map.s = NULL;
  if (s->err == 0) {
    write_header(s);
    write_nodes(s);
  }
  if (s->err == 0 && s->out.err == 0)
    write_edges(s);
  if (s->err == 0 && s->out.err == 0)
    write_strings(s);
  out_flush(&s->out);
  if (s->err == 0 && s->out.err == 0 && fflush(f) != 0)
    s->out.err = -EIO;
  int err = s->err != 0 ? s->err : s->out.err;
  snap_free(s);
  return err;
}

int gc_snapshot_write_path(gc_heap_t *h, const char *path) {
  if (h == NULL || path == NULL || *path == '\0')
    return -EINVAL;
  size_t n = strlen(path);
  char *tmp = malloc(n + 5);
  if (tmp == NULL)
    return -ENOMEM;
  memcpy(tmp, path, n);
  memcpy(tmp + n, ".tmp", 5);
  FILE *f = fopen(tmp, "w");
  if (f == NULL) {
    int err = -errno;
    free(tmp);
    return err;
  }
  int err = gc_snapshot_write(h, f);
  if (fclose(f) != 0 && err == 0)
    err = -EIO;
  if (err == 0 && rename(tmp, path) != 0)
    err = -errno;
  if (err != 0)
    unlink(tmp);
  free(tmp);
  return err;
}

/* --- Signal snapshots ----------------------------------------------------- */

/* Process-wide: a signal's disposition is. */
static volatile sig_atomic_t sig_count; /* signals received */
static _Atomic(gc_heap_t *) sig_owner;
static int sig_installed;          /* the signal our handler is on, or 0 */
static struct sigaction sig_saved; /* its disposition before us */

static void on_signal(int signo) {
  (void)signo;
  sig_count++;
}

int gc__snapshot_signal_start(gc_heap_t *h) {
  int signo = h->opt.heapsnapshot_signal;
  if (signo <= 0)
    return 0;
  if (sig_installed != signo) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(signo, &sa, &old) != 0)
      return -errno;
    if (sig_installed != 0)
      sigaction(sig_installed, &sig_saved, NULL);
    sig_saved = old;
    sig_installed = signo;
  }
  h->snap_seen = sig_count;
  atomic_store(&sig_owner, h);
  return 0;
}

void gc__snapshot_signal_stop(gc_heap_t *h) {
  gc_heap_t *expected = h;
  if (!atomic_compare_exchange_strong(&sig_owner, &expected, NULL))
    return;
  if (sig_installed != 0)
    sigaction(sig_installed, &sig_saved, NULL);
  sig_installed = 0;
}

/* DIR/Heap.YYYYMMDD.HHMMSS.PID.0.SEQ.heapsnapshot, node's name. */
static int signal_path(const gc_heap_t *h, unsigned seq, char *buf,
                       size_t cap) {
  time_t now = time(NULL);
  struct tm tm;
  if (localtime_r(&now, &tm) == NULL)
    memset(&tm, 0, sizeof tm);
  const char *dir = h->opt.diagnostic_dir;
  bool slash = dir[0] != '\0' && dir[strlen(dir) - 1] != '/';
  int n = snprintf(buf, cap,
                   "%s%sHeap.%04d%02d%02d.%02d%02d%02d.%ld.0.%03u.heapsnapshot",
                   dir, slash ? "/" : "", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (long)getpid(), seq);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int gc_snapshot_poll_path(gc_heap_t *h, char *out_path, size_t cap) {
  if (h == NULL)
    return -EINVAL;
  if (h->snap_seen == sig_count || atomic_load(&sig_owner) != h || h->in_gc)
    return 0;
  h->snap_seen = sig_count;
  char path[GC_DIAGNOSTIC_DIR_MAX + 64];
  int err = signal_path(h, ++h->snap_seq, path, sizeof path);
  if (err == 0)
    err = gc_snapshot_write_path(h, path);
  if (err < 0)
    return err;
  if (out_path != NULL && cap > 0)
    snprintf(out_path, cap, "%s", path);
  return 1;
}

int gc_snapshot_poll(gc_heap_t *h) { return gc_snapshot_poll_path(h, NULL, 0); }

static void snapshot_safepoint(gc_heap_t *h) {
  if (GC_UNLIKELY(h->snap_seen != sig_count))
    gc_snapshot_poll(h); /* a --heapsnapshot-signal arrived */
}

const gc__listener_t gc__snapshot_listener = {.name = "snapshot",
                                              .safepoint = snapshot_safepoint};
