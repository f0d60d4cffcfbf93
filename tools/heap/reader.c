/* reader.c -- streaming parser for V8 .heapsnapshot JSON.
 *
 * Owns the translation from the file format to hs_snapshot_t.  The file is
 * read through one large buffer (no mmap, no DOM); numbers and strings are
 * scanned by hand.  Field order is never assumed: snapshot.meta gives the
 * node and edge fields and the names of the node and edge types, and the
 * reader looks them up by name ("type", "name", "id", "self_size",
 * "edge_count"; "type", "name_or_index", "to_node").  Sections other than
 * snapshot, nodes, edges and strings (trace_function_infos, trace_tree,
 * samples, locations, anything newer) are skipped.
 *
 * INV(buffer): buf[len] == '\0', so scanners may stop on the sentinel
 * without a bounds check; a NUL inside the data is not special because
 * every scanner re-checks pos < len when it stops on one.
 * INV(offsets): base + pos is the byte offset of buf[pos] in the input,
 * used in every error message.
 *
 * Every failure returns -EPROTO (or -ENOMEM / -errno for I/O) with a
 * message naming the byte offset; nothing is leaked on failure.
 */
#include "heapsnap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RD_BUFSIZE (4u << 20)
#define RD_MAX_FIELDS 64
#define RD_MAX_TYPES 256

typedef struct {
  char **v;
  int n;
} strlist_t;

typedef struct {
  /* input */
  int fd;
  const char *mem;
  size_t mem_len, mem_pos;
  uint64_t total;           /* input size, 0 if unknown */
  /* buffer */
  char *buf;
  size_t cap, len, pos;
  uint64_t base;
  int eof;
  int err;                  /* sticky error */
  char *errmsg;
  /* progress */
  int progress;
  int skip_edge_names;
  const char *label;
  int last_pct;
  /* meta */
  int have_meta;
  strlist_t node_fields, edge_fields, node_types, edge_types;
  int nf, ef;
  int f_type, f_name, f_id, f_self, f_ecount;
  int e_type, e_name, e_to;
  uint32_t meta_node_count, meta_edge_count;
  int have_nodes, have_edges, have_strings;
  uint64_t nodes_at, edges_at;
  uint32_t edges_expected;
  hs_snapshot_t *s;
  size_t node_cap;
  size_t str_cap, pool_cap, pool_len;
} rd_t;

/* --- Errors --- */

static int fail(rd_t *r, uint64_t at, const char *fmt, ...)
{
  if (r->err)
    return r->err;
  va_list ap;
  int k = snprintf(r->errmsg, HS_ERRMSG_MAX, "byte %llu: ",
                   (unsigned long long)at);
  va_start(ap, fmt);
  if (k > 0 && k < HS_ERRMSG_MAX)
    vsnprintf(r->errmsg + k, HS_ERRMSG_MAX - (size_t)k, fmt, ap);
  va_end(ap);
  r->err = -EPROTO;
  return r->err;
}

static int fail_here(rd_t *r, const char *what)
{
  if (r->pos >= r->len && r->eof)
    return fail(r, r->base + r->pos,
                "unexpected end of file, expected %s (truncated snapshot?)",
                what);
  unsigned char c = (unsigned char)r->buf[r->pos];
  if (c >= 32 && c < 127)
    return fail(r, r->base + r->pos, "expected %s, found '%c'", what, c);
  return fail(r, r->base + r->pos, "expected %s, found byte 0x%02x", what, c);
}

static int oom(rd_t *r)
{
  if (!r->err) {
    snprintf(r->errmsg, HS_ERRMSG_MAX, "byte %llu: out of memory",
             (unsigned long long)(r->base + r->pos));
    r->err = -ENOMEM;
  }
  return r->err;
}

/* --- Buffer --- */

static void progress(rd_t *r)
{
  if (!r->progress || !r->total)
    return;
  int pct = (int)((r->base + r->len) * 100 / r->total);
  if (pct == r->last_pct)
    return;
  r->last_pct = pct;
  char bar[41];
  int fill = pct * 40 / 100;
  for (int i = 0; i < 40; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[40] = '\0';
  fprintf(stderr, "\r%s [%s] %3d%%", r->label ? r->label : "reading", bar,
          pct);
  fflush(stderr);
}

/* Makes at least `need` bytes available at buf[pos] unless at EOF. */
static int refill(rd_t *r, size_t need)
{
  if (r->len - r->pos >= need || r->eof)
    return 0;
  if (r->pos > 0) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->base += r->pos;
    r->len -= r->pos;
    r->pos = 0;
  }
  while (r->len < need && !r->eof) {
    size_t room = r->cap - 1 - r->len;
    if (r->mem) {
      size_t k = r->mem_len - r->mem_pos;
      if (k > room)
        k = room;
      memcpy(r->buf + r->len, r->mem + r->mem_pos, k);
      r->mem_pos += k;
      r->len += k;
      if (r->mem_pos == r->mem_len)
        r->eof = 1;
    } else {
      ssize_t k = read(r->fd, r->buf + r->len, room);
      if (k < 0) {
        if (errno == EINTR)
          continue;
        int e = errno;
        snprintf(r->errmsg, HS_ERRMSG_MAX, "byte %llu: read error: %s",
                 (unsigned long long)(r->base + r->len), strerror(e));
        r->err = -e;
        r->buf[r->len] = '\0';
        return r->err;
      }
      if (k == 0)
        r->eof = 1;
      r->len += (size_t)k;
    }
  }
  r->buf[r->len] = '\0';
  progress(r);
  return 0;
}

/* --- Word-at-a-time scanning ---
 *
 * Nearly all of a snapshot's bytes are the "nodes" and "edges" arrays of
 * unsigned integers, which V8 writes as "d,d,d\n,d,d,d\n,...", and the
 * strings.  Both are scanned 8 bytes per load (SWAR) where the input is
 * little-endian-loadable; the byte loops below remain the definition.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RD_FAST 1
#else
#define RD_FAST 0
#endif
#define ONES 0x0101010101010101ull

static inline uint64_t load8(const char *p)
{
  uint64_t w;
  memcpy(&w, p, 8);
  return w;
}

/* The first '"' or '\\' in [p, end), or end.  A byte of w ^ c is zero
 * iff it was c, and the lowest set bit of (v - ONES) & ~v & 0x80..80 is
 * the lowest zero byte of v exactly (only bits above it can be false), so
 * the lowest bit of the two masks or'ed is the first match. */
static inline const char *scan_plain(const char *p, const char *end)
{
#if RD_FAST
  while (end - p >= 8) {
    uint64_t w = load8(p);
    uint64_t a = w ^ (0x22 * ONES), b = w ^ (0x5C * ONES);
    uint64_t t = (((a - ONES) & ~a) | ((b - ONES) & ~b)) & (0x80 * ONES);
    if (t)
      return p + (__builtin_ctzll(t) >> 3);
    p += 8;
  }
#endif
  while (p < end && *p != '"' && *p != '\\')
    p++;
  return p;
}

static inline int peekc(rd_t *r)
{
  if (r->pos >= r->len) {
    if (refill(r, 1) < 0 || r->pos >= r->len)
      return -1;
  }
  return (unsigned char)r->buf[r->pos];
}

static inline int skip_ws(rd_t *r)
{
  for (;;) {
    int c = peekc(r);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
      r->pos++;
    else
      return c;
  }
}

static int expect(rd_t *r, char ch, const char *what)
{
  if (skip_ws(r) != (unsigned char)ch)
    return fail_here(r, what);
  r->pos++;
  return 0;
}

/* After an element: ',' (returns 1) or the closer (returns 0). */
static int next_or_close(rd_t *r, char closer, const char *what)
{
  int c = skip_ws(r);
  if (c == ',') {
    r->pos++;
    return 1;
  }
  if (c == (unsigned char)closer) {
    r->pos++;
    return 0;
  }
  return fail_here(r, what);
}

/* --- Scalars --- */

/* Unsigned integer, at most 20 digits. */
static int read_uint(rd_t *r, uint64_t *out)
{
  skip_ws(r);
  if (refill(r, 24) < 0)
    return r->err;
  const char *p = r->buf + r->pos;
  if (*p < '0' || *p > '9' || r->pos >= r->len)
    return fail_here(r, "an unsigned integer");
  uint64_t v = 0;
  int nd = 0;
  while (*p >= '0' && *p <= '9' && nd < 20) {
    uint64_t nv = v * 10 + (uint64_t)(*p - '0');
    if (nv < v)
      return fail(r, r->base + r->pos, "integer overflow");
    v = nv;
    p++;
    nd++;
  }
  if (*p >= '0' && *p <= '9')
    return fail(r, r->base + r->pos, "integer too long");
  if (*p == '.' || *p == 'e' || *p == 'E')
    return fail(r, r->base + r->pos, "expected an integer, found a fraction");
  r->pos = (size_t)(p - r->buf);
  *out = v;
  return 0;
}

static int put_utf8(char *dst, uint32_t cp)
{
  if (cp < 0x80) {
    dst[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    dst[0] = (char)(0xC0 | (cp >> 6));
    dst[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    dst[0] = (char)(0xE0 | (cp >> 12));
    dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  dst[0] = (char)(0xF0 | (cp >> 18));
  dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  dst[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

static int hex4(rd_t *r, uint32_t *out)
{
  if (refill(r, 4) < 0)
    return r->err;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    if (r->pos >= r->len)
      return fail_here(r, "four hex digits");
    int c = (unsigned char)r->buf[r->pos];
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return fail_here(r, "a hex digit");
    v = v * 16 + (uint32_t)d;
    r->pos++;
  }
  *out = v;
  return 0;
}

/* Growable byte sink for decoded strings. */
typedef struct {
  char **buf;
  size_t *len, *cap;
  size_t limit;   /* stop storing past this length (keys); 0 = no limit */
} sink_t;

static int sink_reserve(rd_t *r, sink_t *k, size_t extra)
{
  if (*k->len + extra + 1 <= *k->cap)
    return 0;
  size_t nc = *k->cap ? *k->cap : 256;
  while (nc < *k->len + extra + 1)
    nc *= 2;
  char *nb = realloc(*k->buf, nc);
  if (!nb)
    return oom(r);
  *k->buf = nb;
  *k->cap = nc;
  return 0;
}

/* Reads a JSON string; appends its decoded bytes and a NUL to the sink
 * (or only skips it when sink is NULL). */
static int read_string(rd_t *r, sink_t *k)
{
  if (skip_ws(r) != '"')
    return fail_here(r, "a string");
  r->pos++;
  for (;;) {
    if (r->pos >= r->len && (refill(r, 1) < 0 || r->pos >= r->len))
      return fail_here(r, "the end of a string");
    const char *p = r->buf + r->pos;
    const char *end = r->buf + r->len;
    const char *q = scan_plain(p, end);
    size_t run = (size_t)(q - p);
    if (k && run) {
      size_t take = run;
      if (k->limit && *k->len + take > k->limit)
        take = *k->len < k->limit ? k->limit - *k->len : 0;
      if (take) {
        if (sink_reserve(r, k, take) < 0)
          return r->err;
        memcpy(*k->buf + *k->len, p, take);
        *k->len += take;
      }
    }
    r->pos += run;
    if (q == end)
      continue;
    if (*q == '"') {
      r->pos++;
      break;
    }
    /* backslash */
    r->pos++;
    if (refill(r, 1) < 0 || r->pos >= r->len)
      return fail_here(r, "an escape character");
    char c = r->buf[r->pos++];
    char tmp[8];
    int tn = 1;
    switch (c) {
    case '"': tmp[0] = '"'; break;
    case '\\': tmp[0] = '\\'; break;
    case '/': tmp[0] = '/'; break;
    case 'b': tmp[0] = '\b'; break;
    case 'f': tmp[0] = '\f'; break;
    case 'n': tmp[0] = '\n'; break;
    case 'r': tmp[0] = '\r'; break;
    case 't': tmp[0] = '\t'; break;
    case 'u': {
      uint32_t cp;
      if (hex4(r, &cp) < 0)
        return r->err;
      if (cp >= 0xD800 && cp < 0xDC00) {
        /* A high surrogate; pair it if a low one follows. */
        if (refill(r, 6) < 0)
          return r->err;
        if (r->len - r->pos >= 6 && r->buf[r->pos] == '\\' &&
            r->buf[r->pos + 1] == 'u') {
          size_t save = r->pos;
          uint32_t lo;
          r->pos += 2;
          if (hex4(r, &lo) < 0)
            return r->err;
          if (lo >= 0xDC00 && lo < 0xE000)
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          else {
            r->pos = save;
            cp = 0xFFFD;
          }
        } else {
          cp = 0xFFFD;
        }
      } else if (cp >= 0xDC00 && cp < 0xE000) {
        cp = 0xFFFD;
      }
      tn = put_utf8(tmp, cp);
      break;
    }
    default:
      r->pos--;
      return fail_here(r, "a valid escape character");
    }
    if (k && (!k->limit || *k->len + (size_t)tn <= k->limit)) {
      if (sink_reserve(r, k, (size_t)tn) < 0)
        return r->err;
      memcpy(*k->buf + *k->len, tmp, (size_t)tn);
      *k->len += (size_t)tn;
    }
  }
  if (k) {
    if (sink_reserve(r, k, 0) < 0)
      return r->err;
    (*k->buf)[*k->len] = '\0';
    *k->len += 1;
  }
  return 0;
}

/* Reads a short string (object key) into a fixed buffer, truncating. */
static int read_key(rd_t *r, char *key, size_t keysize)
{
  char *tmp = NULL;
  size_t len = 0, cap = 0;
  sink_t k = {&tmp, &len, &cap, keysize - 1};
  if (read_string(r, &k) < 0) {
    free(tmp);
    return r->err;
  }
  snprintf(key, keysize, "%s", tmp ? tmp : "");
  free(tmp);
  return 0;
}

/* Skips any JSON value without building it. Nesting is tracked with a
 * counter, not recursion, so deep input cannot overflow the stack. */
static int skip_value(rd_t *r)
{
  int c = skip_ws(r);
  if (c == '"')
    return read_string(r, NULL);
  if (c == '[' || c == '{') {
    uint64_t depth = 0;
    for (;;) {
      c = peekc(r);
      if (c < 0)
        return fail_here(r, "the end of an array or object");
      if (c == '"') {
        if (read_string(r, NULL) < 0)
          return r->err;
        continue;
      }
      r->pos++;
      if (c == '[' || c == '{')
        depth++;
      else if (c == ']' || c == '}') {
        if (--depth == 0)
          return 0;
      }
    }
  }
  size_t n = 0;
  for (;;) {
    c = peekc(r);
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' ||
        c == '+' || c == '.' || c == 'E') {
      r->pos++;
      n++;
    } else {
      break;
    }
  }
  if (!n)
    return fail_here(r, "a JSON value");
  return 0;
}

/* --- Meta --- */

static void strlist_free(strlist_t *l)
{
  for (int i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static int strlist_push(rd_t *r, strlist_t *l, char *s, int max)
{
  if (l->n >= max) {
    free(s);
    return fail(r, r->base + r->pos, "too many entries in a meta list");
  }
  char **nv = realloc(l->v, sizeof(char *) * (size_t)(l->n + 1));
  if (!nv) {
    free(s);
    return oom(r);
  }
  l->v = nv;
  l->v[l->n++] = s;
  return 0;
}

static int read_owned_string(rd_t *r, char **out)
{
  char *tmp = NULL;
  size_t len = 0, cap = 0;
  sink_t k = {&tmp, &len, &cap, 4096};
  if (read_string(r, &k) < 0) {
    free(tmp);
    return r->err;
  }
  *out = tmp;
  return 0;
}

static int read_string_array(rd_t *r, strlist_t *l, int max)
{
  if (expect(r, '[', "'['") < 0)
    return r->err;
  if (skip_ws(r) == ']') {
    r->pos++;
    return 0;
  }
  for (;;) {
    char *s = NULL;
    if (read_owned_string(r, &s) < 0 || strlist_push(r, l, s, max) < 0)
      return r->err;
    int more = next_or_close(r, ']', "',' or ']'");
    if (more <= 0)
      return more;
  }
}

/* node_types / edge_types: [[enum names...], "string", "number", ...].
 * Only the enum list of the "type" field matters; it is found later by
 * field position, so each entry is kept: an enum list becomes its names
 * joined by '\n' prefixed with '\n'. */
static int read_types(rd_t *r, strlist_t *l)
{
  if (expect(r, '[', "'['") < 0)
    return r->err;
  if (skip_ws(r) == ']') {
    r->pos++;
    return 0;
  }
  for (;;) {
    int c = skip_ws(r);
    char *s = NULL;
    if (c == '[') {
      strlist_t names = {0};
      if (read_string_array(r, &names, RD_MAX_TYPES) < 0) {
        strlist_free(&names);
        return r->err;
      }
      size_t total = 1;
      for (int i = 0; i < names.n; i++)
        total += strlen(names.v[i]) + 1;
      s = malloc(total);
      if (!s) {
        strlist_free(&names);
        return oom(r);
      }
      size_t o = 0;
      for (int i = 0; i < names.n; i++) {
        size_t k = strlen(names.v[i]);
        s[o++] = '\n';
        memcpy(s + o, names.v[i], k);
        o += k;
      }
      s[o] = '\0';
      strlist_free(&names);
    } else if (c == '"') {
      if (read_owned_string(r, &s) < 0)
        return r->err;
    } else {
      if (skip_value(r) < 0)
        return r->err;
      s = strdup("");
      if (!s)
        return oom(r);
    }
    if (strlist_push(r, l, s, RD_MAX_FIELDS) < 0)
      return r->err;
    int more = next_or_close(r, ']', "',' or ']'");
    if (more <= 0)
      return more;
  }
}

static int read_meta(rd_t *r)
{
  if (expect(r, '{', "'{' to open snapshot.meta") < 0)
    return r->err;
  if (skip_ws(r) == '}') {
    r->pos++;
    return 0;
  }
  for (;;) {
    char key[64];
    if (read_key(r, key, sizeof key) < 0 || expect(r, ':', "':'") < 0)
      return r->err;
    strlist_t *dst = NULL;
    int types = 0;
    if (!strcmp(key, "node_fields"))
      dst = &r->node_fields;
    else if (!strcmp(key, "edge_fields"))
      dst = &r->edge_fields;
    else if (!strcmp(key, "node_types"))
      dst = &r->node_types, types = 1;
    else if (!strcmp(key, "edge_types"))
      dst = &r->edge_types, types = 1;
    if (dst) {
      strlist_free(dst);
      if ((types ? read_types(r, dst)
                 : read_string_array(r, dst, RD_MAX_FIELDS)) < 0)
        return r->err;
    } else if (skip_value(r) < 0) {
      return r->err;
    }
    int more = next_or_close(r, '}', "',' or '}' in snapshot.meta");
    if (more <= 0)
      return more;
  }
}

static int field_index(const strlist_t *l, const char *name)
{
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->v[i], name))
      return i;
  return -1;
}

static int read_snapshot_obj(rd_t *r)
{
  if (expect(r, '{', "'{' to open \"snapshot\"") < 0)
    return r->err;
  if (skip_ws(r) == '}') {
    r->pos++;
    return 0;
  }
  for (;;) {
    char key[64];
    if (read_key(r, key, sizeof key) < 0 || expect(r, ':', "':'") < 0)
      return r->err;
    uint64_t v;
    if (!strcmp(key, "meta")) {
      if (read_meta(r) < 0)
        return r->err;
      r->have_meta = 1;
    } else if (!strcmp(key, "node_count")) {
      if (read_uint(r, &v) < 0)
        return r->err;
      r->meta_node_count = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    } else if (!strcmp(key, "edge_count")) {
      if (read_uint(r, &v) < 0)
        return r->err;
      r->meta_edge_count = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    } else if (skip_value(r) < 0) {
      return r->err;
    }
    int more = next_or_close(r, '}', "',' or '}' in \"snapshot\"");
    if (more <= 0)
      return more;
  }
}

static uint8_t node_kind_of(const char *name)
{
  static const char *const names[] = {
    "hidden", "array", "string", "object", "code", "closure", "regexp",
    "number", "native", "synthetic", "concatenated string", "sliced string",
    "symbol", "bigint", "object shape"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i]))
      return (uint8_t)i;
  return HS_NODE_OTHER;
}

static uint8_t edge_kind_of(const char *name)
{
  static const char *const names[] = {"context", "element", "property",
                                      "internal", "hidden", "shortcut",
                                      "weak"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i]))
      return (uint8_t)i;
  return HS_EDGE_OTHER;
}

/* Splits an enum entry ("\nname\nname...") into a kind table. */
static int enum_table(const char *entry, uint8_t *table, int *count,
                      uint8_t (*kind_of)(const char *))
{
  int n = 0;
  if (!entry || entry[0] != '\n')
    return -1;
  const char *p = entry;
  while (*p == '\n' && n < RD_MAX_TYPES) {
    p++;
    const char *q = strchr(p, '\n');
    size_t k = q ? (size_t)(q - p) : strlen(p);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(k < 63 ? k : 63), p);
    table[n++] = kind_of(name);
    p += k;
  }
  *count = n;
  return 0;
}

typedef struct {
  uint8_t node_kinds[RD_MAX_TYPES];
  uint8_t edge_kinds[RD_MAX_TYPES];
  int n_node_kinds, n_edge_kinds;
} kinds_t;

static int resolve_meta(rd_t *r, kinds_t *kt)
{
  uint64_t at = r->base + r->pos;
  if (!r->have_meta)
    return fail(r, at, "\"nodes\" before \"snapshot\".meta: not a V8 heap "
                "snapshot");
  r->nf = r->node_fields.n;
  r->ef = r->edge_fields.n;
  r->f_type = field_index(&r->node_fields, "type");
  r->f_name = field_index(&r->node_fields, "name");
  r->f_id = field_index(&r->node_fields, "id");
  r->f_self = field_index(&r->node_fields, "self_size");
  r->f_ecount = field_index(&r->node_fields, "edge_count");
  r->e_type = field_index(&r->edge_fields, "type");
  r->e_name = field_index(&r->edge_fields, "name_or_index");
  r->e_to = field_index(&r->edge_fields, "to_node");
  if (r->f_type < 0 || r->f_name < 0 || r->f_id < 0 || r->f_self < 0 ||
      r->f_ecount < 0)
    return fail(r, at, "snapshot.meta.node_fields lacks one of type, name, "
                "id, self_size, edge_count");
  if (r->e_type < 0 || r->e_name < 0 || r->e_to < 0)
    return fail(r, at, "snapshot.meta.edge_fields lacks one of type, "
                "name_or_index, to_node");
  if (r->f_type >= r->node_types.n ||
      enum_table(r->node_types.v[r->f_type], kt->node_kinds,
                 &kt->n_node_kinds, node_kind_of) < 0)
    return fail(r, at, "snapshot.meta.node_types has no list of type names");
  if (r->e_type >= r->edge_types.n ||
      enum_table(r->edge_types.v[r->e_type], kt->edge_kinds,
                 &kt->n_edge_kinds, edge_kind_of) < 0)
    return fail(r, at, "snapshot.meta.edge_types has no list of type names");
  return 0;
}

/* --- Sections --- */

static int grow(rd_t *r, void **p, size_t elem, size_t *cap, size_t need)
{
  if (need <= *cap)
    return 0;
  size_t nc = *cap ? *cap : 1024;
  while (nc < need)
    nc += nc / 2 + 1024;
  void *np = realloc(*p, nc * elem);
  if (!np)
    return oom(r);
  *p = np;
  *cap = nc;
  return 0;
}

static int grow_nodes(rd_t *r, size_t need)
{
  hs_snapshot_t *s = r->s;
  if (need <= r->node_cap)
    return 0;
  size_t nc = r->node_cap ? r->node_cap : 1024;
  while (nc < need)
    nc += nc / 2 + 1024;
  void *p;
  if (!(p = realloc(s->node_kind, nc))) return oom(r);
  s->node_kind = p;
  if (!(p = realloc(s->node_name, nc * 4))) return oom(r);
  s->node_name = p;
  if (!(p = realloc(s->node_id, nc * 4))) return oom(r);
  s->node_id = p;
  if (!(p = realloc(s->node_self, nc * 4))) return oom(r);
  s->node_self = p;
  if (!(p = realloc(s->first_edge, (nc + 1) * 4))) return oom(r);
  s->first_edge = p;
  r->node_cap = nc;
  return 0;
}

static size_t remaining_hint(rd_t *r)
{
  uint64_t left = r->total > r->base + r->pos ? r->total - r->base - r->pos
                                              : 0;
  return (size_t)left;
}

/* --- Fast path for "nodes" and "edges" ---
 *
 * One whole record (nf or ef values) at a time, 8 bytes per load: the
 * count of leading digits comes from a mask of the bytes that are not
 * digits, their value from three multiplies (Lemire's SWAR conversion,
 * as in fast_float), with no branch on the length up to 8 digits.
 *
 * INV(fast): the fast path accepts only what the general scanner accepts
 * with the same result (1..16 digits, then ',' or "\n,") and commits only
 * whole records that pass the same checks.  On anything else it stops at
 * the start of the record and the general scanner parses that record, so
 * every error is still reported by the general scanner, at the same byte.
 * It runs only with FAST_MARGIN bytes ahead and needs no bounds check: a
 * value and its separator take at most 18 bytes, and the loads of one
 * value read at most 16 bytes from its start.
 */
#define FAST_MARGIN(nf) (18 * (size_t)(nf) + 16)

/* x: 8 input bytes, each xor '0'.  The number of leading bytes that were
 * digits (0..8): a digit is 0..9 here, so both it and it + 6 keep the
 * high nibble clear, and any other byte sets it in one of the two.  A
 * carry out of a byte only reaches later bytes, past the first
 * non-digit, so the lowest flagged byte is the first non-digit. */
static inline unsigned lead_digits(uint64_t x)
{
  uint64_t m = (x | (x + 6 * ONES)) & (0xF0 * ONES);
  return m ? (unsigned)__builtin_ctzll(m) >> 3 : 8;
}

/* The value of the first n (1..8) bytes of x, digits 0..9 each, the
 * first the most significant. */
static inline uint64_t digits_value(uint64_t x, unsigned n)
{
  x <<= 8 * (8 - n); /* drops the bytes after them; zeros lead */
  x = x * 10 + (x >> 8);
  x = (((x & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
       (((x >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
      32;
  return (uint32_t)x;
}

/* One value of 1..16 digits at p: stores it and returns the byte after
 * it, or NULL (not a digit, or 17 digits or more). */
static inline const char *fast_uint(const char *p, uint64_t *out)
{
  static const uint32_t pow10[8] = {1, 10, 100, 1000, 10000, 100000,
                                    1000000, 10000000};
  uint64_t x = load8(p) ^ (0x30 * ONES);
  unsigned n = lead_digits(x);
  if (n < 8) {
    *out = n ? digits_value(x, n) : 0;
    return n ? p + n : NULL;
  }
  uint64_t y = load8(p + 8) ^ (0x30 * ONES);
  unsigned m = lead_digits(y);
  if (m == 8)
    return NULL;
  uint64_t v = digits_value(x, 8);
  *out = m ? v * pow10[m] + digits_value(y, m) : v;
  return p + 8 + m;
}

/* The separator V8 writes between values: ',' or "\n,"; else NULL. */
static inline const char *fast_sep(const char *p)
{
  if (p[0] == ',')
    return p + 1;
  if (p[0] == '\n' && p[1] == ',')
    return p + 2;
  return NULL;
}

/* Parses nf values at p into v[]; the byte after the last separator, or
 * NULL. */
static inline const char *fast_record(const char *p, int nf, uint64_t *v)
{
  for (int j = 0; j < nf; j++) {
    if (!(p = fast_uint(p, &v[j])) || !(p = fast_sep(p)))
      return NULL;
  }
  return p;
}

/* Makes FAST_MARGIN(nf) bytes available at pos; 0 when there are not
 * (near the end of the input, or after an error). */
static int fast_room(rd_t *r, size_t margin)
{
  if (r->len - r->pos >= margin)
    return 1;
  if (refill(r, margin) < 0)
    return 0;
  return r->len - r->pos >= margin;
}

/* Whole node records from pos on, with read_nodes' checks; stops before
 * the first record it does not take (INV(fast)).  n and edges as in
 * read_nodes.  Returns 0 or a negative errno. */
static int fast_nodes(rd_t *r, const kinds_t *kt, uint32_t *np,
                      uint64_t *edgesp)
{
  hs_snapshot_t *s = r->s;
  const int nf = r->nf;
  const size_t margin = FAST_MARGIN(nf);
  const int ft = r->f_type, fn = r->f_name, fi = r->f_id, fs = r->f_self,
            fe = r->f_ecount;
  uint32_t n = *np;
  uint64_t edges = *edgesp;
  uint64_t v[RD_MAX_FIELDS];
  int more = 1;
  while (more && fast_room(r, margin)) {
    const char *p = r->buf + r->pos;
    const char *end = r->buf + r->len - margin;
    while (p <= end) {
      const char *q = fast_record(p, nf, v);
      if (!q || v[ft] >= (uint64_t)kt->n_node_kinds || v[fn] > UINT32_MAX ||
          v[fi] > UINT32_MAX || v[fe] > UINT32_MAX || n == UINT32_MAX - 1 ||
          edges + v[fe] > UINT32_MAX - 1) {
        more = 0;
        break;
      }
      if (n >= r->node_cap && grow_nodes(r, (size_t)n + 1) < 0)
        return r->err;
      s->node_kind[n] = kt->node_kinds[v[ft]];
      s->node_name[n] = (uint32_t)v[fn];
      s->node_id[n] = (uint32_t)v[fi];
      uint32_t self = v[fs] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[fs];
      s->node_self[n] = self;
      s->first_edge[n] = (uint32_t)edges;
      s->total_self += self;
      edges += v[fe];
      n++;
      p = q;
    }
    r->pos = (size_t)(p - r->buf);
  }
  *np = n;
  *edgesp = edges;
  return r->err;
}

/* Whole edge records from pos on, with read_edges' checks (INV(fast)).
 * The to_node offset is divided by nf with Lemire's direct method (c =
 * 2^64 / nf rounded up; exact for 32-bit dividends; nf >= 5, the five
 * node fields resolve_meta requires), not a division per edge.  Returns 0 or a negative errno. */
static int fast_edges(rd_t *r, const kinds_t *kt, size_t *ep, size_t m,
                      uint64_t limit)
{
#ifdef __SIZEOF_INT128__
  hs_snapshot_t *s = r->s;
  const int ef = r->ef;
  const size_t margin = FAST_MARGIN(ef);
  const int et = r->e_type, en = r->e_name, eto = r->e_to;
  const uint64_t nf = (uint64_t)r->nf;
  const uint64_t c = UINT64_MAX / nf + 1;
  uint32_t *names = s->edge_name;
  size_t e = *ep;
  uint64_t v[RD_MAX_FIELDS];
  int more = 1;
  while (more && fast_room(r, margin)) {
    const char *p = r->buf + r->pos;
    const char *end = r->buf + r->len - margin;
    while (p <= end) {
      const char *q = fast_record(p, ef, v);
      uint64_t to = q ? v[eto] : 0;
      uint64_t node = (uint64_t)(((unsigned __int128)c * to) >> 64);
      if (!q || v[et] >= (uint64_t)kt->n_edge_kinds || to >= limit ||
          to > UINT32_MAX || node * nf != to || v[en] > UINT32_MAX ||
          e >= m) {
        more = 0;
        break;
      }
      s->edge_kind[e] = kt->edge_kinds[v[et]];
      if (names)
        names[e] = (uint32_t)v[en];
      s->edge_to[e] = (uint32_t)node;
      e++;
      p = q;
    }
    r->pos = (size_t)(p - r->buf);
  }
  *ep = e;
  return r->err;
#else
  (void)kt;
  (void)ep;
  (void)m;
  (void)limit;
  return r->err;
#endif
}

static int read_nodes(rd_t *r, kinds_t *kt)
{
  hs_snapshot_t *s = r->s;
  if (r->have_nodes)
    return fail(r, r->base + r->pos, "second \"nodes\" section");
  if (resolve_meta(r, kt) < 0)
    return r->err;
  r->nodes_at = r->base + r->pos;
  /* Preallocate from node_count, but never beyond what the rest of the
   * input could hold (two bytes per field at least). */
  size_t hint = r->meta_node_count;
  size_t most = remaining_hint(r) / (2 * (size_t)r->nf) + 1;
  if (hint > most)
    hint = most;
  if (grow_nodes(r, hint + 1) < 0)
    return r->err;
  if (expect(r, '[', "'[' to open \"nodes\"") < 0)
    return r->err;
  uint32_t n = 0;
  int k = 0;
  uint64_t edges = 0;
  uint32_t vals[RD_MAX_FIELDS];
  if (skip_ws(r) == ']') {
    r->pos++;
  } else {
    for (;;) {
      if (RD_FAST && k == 0 && fast_nodes(r, kt, &n, &edges) < 0)
        return r->err;
      uint64_t v;
      uint64_t at = r->base + r->pos;
      if (read_uint(r, &v) < 0)
        return r->err;
      if (k == r->f_type && v >= (uint64_t)kt->n_node_kinds)
        return fail(r, at, "node type %llu out of range",
                    (unsigned long long)v);
      if (k == r->f_self && v > UINT32_MAX)
        v = UINT32_MAX;
      if (v > UINT32_MAX && (k == r->f_name || k == r->f_id ||
                             k == r->f_ecount))
        return fail(r, at, "node field value %llu out of range",
                    (unsigned long long)v);
      vals[k] = (uint32_t)v;
      if (++k == r->nf) {
        k = 0;
        if (n == UINT32_MAX - 1)
          return fail(r, at, "too many nodes");
        if (n >= r->node_cap && grow_nodes(r, (size_t)n + 1) < 0)
          return r->err;
        s->node_kind[n] = kt->node_kinds[vals[r->f_type]];
        s->node_name[n] = vals[r->f_name];
        s->node_id[n] = vals[r->f_id];
        s->node_self[n] = vals[r->f_self];
        s->first_edge[n] = (uint32_t)edges;
        s->total_self += vals[r->f_self];
        edges += vals[r->f_ecount];
        if (edges > UINT32_MAX - 1)
          return fail(r, at, "too many edges");
        n++;
      }
      int more = next_or_close(r, ']', "',' or ']' in \"nodes\"");
      if (more < 0)
        return r->err;
      if (!more)
        break;
    }
  }
  if (k != 0)
    return fail(r, r->base + r->pos, "\"nodes\" has %u values after the "
                "last whole node (node_fields has %d)", k, r->nf);
  if (n == 0)
    return fail(r, r->base + r->pos, "snapshot has no nodes");
  s->node_count = n;
  s->first_edge[n] = (uint32_t)edges;
  r->edges_expected = (uint32_t)edges;
  r->have_nodes = 1;
  return 0;
}

static int read_edges(rd_t *r, const kinds_t *kt)
{
  hs_snapshot_t *s = r->s;
  if (!r->have_nodes)
    return fail(r, r->base + r->pos, "\"edges\" before \"nodes\"");
  if (r->have_edges)
    return fail(r, r->base + r->pos, "second \"edges\" section");
  r->edges_at = r->base + r->pos;
  size_t m = r->edges_expected;
  size_t most = remaining_hint(r) / (2 * (size_t)r->ef) + 1;
  if (r->total && m > most)
    return fail(r, r->base + r->pos, "nodes declare %zu edges but the file "
                "is too short for them (truncated?)", m);
  s->edge_kind = malloc(m ? m : 1);
  if (!r->skip_edge_names)
    s->edge_name = malloc((m ? m : 1) * 4);
  s->edge_to = malloc((m ? m : 1) * 4);
  if (!s->edge_kind || (!s->edge_name && !r->skip_edge_names) || !s->edge_to)
    return oom(r);
  if (expect(r, '[', "'[' to open \"edges\"") < 0)
    return r->err;
  size_t e = 0;
  int k = 0;
  uint64_t vals[RD_MAX_FIELDS];
  uint64_t limit = (uint64_t)s->node_count * (uint64_t)r->nf;
  if (skip_ws(r) == ']') {
    r->pos++;
  } else {
    for (;;) {
      if (RD_FAST && k == 0 && fast_edges(r, kt, &e, m, limit) < 0)
        return r->err;
      uint64_t v;
      uint64_t at = r->base + r->pos;
      if (read_uint(r, &v) < 0)
        return r->err;
      if (k == r->e_type && v >= (uint64_t)kt->n_edge_kinds)
        return fail(r, at, "edge type %llu out of range",
                    (unsigned long long)v);
      if (k == r->e_to && (v >= limit || v % (uint64_t)r->nf))
        return fail(r, at, "edge to_node %llu is not a node offset",
                    (unsigned long long)v);
      if (k == r->e_name && v > UINT32_MAX)
        return fail(r, at, "edge name_or_index %llu out of range",
                    (unsigned long long)v);
      vals[k] = v;
      if (++k == r->ef) {
        k = 0;
        if (e >= m)
          return fail(r, at, "\"edges\" is longer than the sum of the "
                      "nodes' edge_count (%zu)", m);
        s->edge_kind[e] = kt->edge_kinds[vals[r->e_type]];
        if (s->edge_name)
          s->edge_name[e] = (uint32_t)vals[r->e_name];
        s->edge_to[e] = (uint32_t)(vals[r->e_to] / (uint64_t)r->nf);
        e++;
      }
      int more = next_or_close(r, ']', "',' or ']' in \"edges\"");
      if (more < 0)
        return r->err;
      if (!more)
        break;
    }
  }
  if (k != 0)
    return fail(r, r->base + r->pos, "\"edges\" ends inside an edge");
  if (e != m)
    return fail(r, r->base + r->pos, "\"edges\" has %zu edges, the nodes' "
                "edge_count sum to %zu", e, m);
  s->edge_count = (uint32_t)e;
  r->have_edges = 1;
  return 0;
}

static int read_strings(rd_t *r)
{
  hs_snapshot_t *s = r->s;
  if (r->have_strings)
    return fail(r, r->base + r->pos, "second \"strings\" section");
  if (expect(r, '[', "'[' to open \"strings\"") < 0)
    return r->err;
  sink_t k = {&s->str_pool, &r->pool_len, &r->pool_cap, 0};
  uint32_t n = 0;
  if (skip_ws(r) == ']') {
    r->pos++;
  } else {
    for (;;) {
      if (n == UINT32_MAX - 1)
        return fail(r, r->base + r->pos, "too many strings");
      if (grow(r, (void **)&s->str_off, 4, &r->str_cap, (size_t)n + 1) < 0)
        return r->err;
      if (r->pool_len > UINT32_MAX - 1)
        return fail(r, r->base + r->pos, "strings exceed 4 GiB");
      s->str_off[n++] = (uint32_t)r->pool_len;
      if (read_string(r, &k) < 0)
        return r->err;
      int more = next_or_close(r, ']', "',' or ']' in \"strings\"");
      if (more < 0)
        return r->err;
      if (!more)
        break;
    }
  }
  s->string_count = n;
  r->have_strings = 1;
  return 0;
}

static int validate(rd_t *r)
{
  hs_snapshot_t *s = r->s;
  const char *miss = !r->have_meta ? "\"snapshot\".meta"
                   : !r->have_nodes ? "\"nodes\""
                   : !r->have_edges ? "\"edges\""
                   : !r->have_strings ? "\"strings\"" : NULL;
  if (miss)
    return fail(r, r->base + r->pos, "no %s section: not a complete V8 heap "
                "snapshot", miss);
  for (uint32_t i = 0; i < s->node_count; i++)
    if (s->node_name[i] >= s->string_count)
      return fail(r, r->nodes_at, "node %u: name index %u out of range (%u "
                  "strings)", i, s->node_name[i], s->string_count);
  for (uint32_t e = 0; s->edge_name && e < s->edge_count; e++) {
    uint8_t k = s->edge_kind[e];
    if (k != HS_EDGE_ELEMENT && k != HS_EDGE_HIDDEN &&
        s->edge_name[e] >= s->string_count)
      return fail(r, r->edges_at, "edge %u: name index %u out of range (%u "
                  "strings)", e, s->edge_name[e], s->string_count);
  }
  if (!s->str_pool) {
    s->str_pool = calloc(1, 1);
    if (!s->str_pool)
      return oom(r);
  }
  return 0;
}

/* --- Driver --- */

static int parse(rd_t *r)
{
  kinds_t kt;
  memset(&kt, 0, sizeof kt);
  int c = skip_ws(r);
  if (c == 0xEF) /* UTF-8 BOM */
    r->pos += 3;
  if (expect(r, '{', "'{': not a JSON heap snapshot") < 0)
    return r->err;
  if (skip_ws(r) == '}') {
    r->pos++;
  } else {
    for (;;) {
      char key[64];
      uint64_t at = r->base + r->pos;
      if (read_key(r, key, sizeof key) < 0 || expect(r, ':', "':'") < 0)
        return r->err;
      int rc;
      if (!strcmp(key, "snapshot"))
        rc = read_snapshot_obj(r);
      else if (!strcmp(key, "nodes"))
        rc = read_nodes(r, &kt);
      else if (!strcmp(key, "edges"))
        rc = read_edges(r, &kt);
      else if (!strcmp(key, "strings"))
        rc = read_strings(r);
      else
        rc = skip_value(r);
      (void)at;
      if (rc < 0)
        return r->err;
      hs_timing("read %s", key);
      int more = next_or_close(r, '}', "',' or '}' at the top level");
      if (more < 0)
        return r->err;
      if (!more)
        break;
    }
  }
  if (skip_ws(r) >= 0)
    return fail_here(r, "the end of the file after the top-level object");
  int rc = validate(r);
  hs_timing("read: validate");
  return rc;
}

static int run(rd_t *r, hs_snapshot_t **out)
{
  int rc;
  r->cap = RD_BUFSIZE;
  if (r->mem && r->mem_len + 1 < r->cap)
    r->cap = r->mem_len + 1 < 64 ? 64 : r->mem_len + 1;
  r->buf = malloc(r->cap);
  r->s = calloc(1, sizeof *r->s);
  if (!r->buf || !r->s) {
    free(r->buf);
    free(r->s);
    snprintf(r->errmsg, HS_ERRMSG_MAX, "out of memory");
    return -ENOMEM;
  }
  r->buf[0] = '\0';
  r->s->file_size = r->total;
  rc = parse(r);
  if (r->progress && r->last_pct >= 0) {
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
  }
  strlist_free(&r->node_fields);
  strlist_free(&r->edge_fields);
  strlist_free(&r->node_types);
  strlist_free(&r->edge_types);
  free(r->buf);
  if (rc < 0) {
    hs_snapshot_destroy(r->s);
    return rc;
  }
  if (!r->total)
    r->s->file_size = r->base + r->len;
  *out = r->s;
  return 0;
}

int hs_snapshot_read(const char *path, const hs_read_options_t *opts,
                     hs_snapshot_t **out, char errmsg[HS_ERRMSG_MAX])
{
  rd_t r;
  memset(&r, 0, sizeof r);
  r.errmsg = errmsg;
  r.last_pct = -1;
  errmsg[0] = '\0';
  if (!path || !out)
    return -EINVAL;
  r.fd = open(path, O_RDONLY);
  if (r.fd < 0) {
    int e = errno;
    snprintf(errmsg, HS_ERRMSG_MAX, "cannot open: %s", strerror(e));
    return -e;
  }
  struct stat st;
  if (fstat(r.fd, &st) == 0 && S_ISREG(st.st_mode))
    r.total = (uint64_t)st.st_size;
  if (opts) {
    r.progress = opts->progress;
    r.label = opts->label;
    r.skip_edge_names = opts->skip_edge_names;
  }
  int rc = run(&r, out);
  close(r.fd);
  return rc;
}

int hs_snapshot_read_mem(const char *data, size_t len, hs_snapshot_t **out,
                         char errmsg[HS_ERRMSG_MAX])
{
  rd_t r;
  memset(&r, 0, sizeof r);
  r.errmsg = errmsg;
  r.last_pct = -1;
  errmsg[0] = '\0';
  if (!out || (!data && len))
    return -EINVAL;
  r.fd = -1;
  r.mem = data ? data : "";
  r.mem_len = len;
  r.total = len;
  if (len == 0)
    r.eof = 1;
  return run(&r, out);
}

void hs_snapshot_destroy(hs_snapshot_t *s)
{
  if (!s)
    return;
  free(s->node_kind);
  free(s->node_name);
  free(s->node_id);
  free(s->node_self);
  free(s->first_edge);
  free(s->edge_kind);
  free(s->edge_name);
  free(s->edge_to);
  free(s->str_pool);
  free(s->str_off);
  free(s->idom);
  free(s->retained);
  free(s->by_id);
  free(s->shape);
  free(s);
}
