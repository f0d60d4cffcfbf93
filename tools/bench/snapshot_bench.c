/* snapshot_bench.c -- times gc_snapshot_write_path on a heap of N objects.
 *
 * The heap is a realistic mix, every object reachable: records (pairs) in a
 * vector of 1000-slot chunks, each record holding a string and a small
 * vector of two more records' strings.  Prints one line:
 *   objects=N bytes=.. write_ms=.. again_ms=..
 * (again: a second snapshot of the same heap, whose ids already exist).
 * Built and run by snapshot_bench.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <tenure/gc.h>

typedef struct pair {
  void *car;
  void *cdr;
} pair_t;

typedef struct vec {
  size_t len;
  void *items[];
} vec_t;

typedef struct str {
  size_t len;
  char bytes[];
} str_t;

static void pair_trace(void *obj, gc_visitor_t *v) {
  pair_t *p = obj;
  GC_VISIT(v, &p->car, GC_EDGE_PROP("name"));
  GC_VISIT(v, &p->cdr, GC_EDGE_PROP("tags"));
}
static size_t vec_size(const void *obj) {
  return sizeof(vec_t) + ((const vec_t *)obj)->len * sizeof(void *);
}
static void vec_trace(void *obj, gc_visitor_t *v) {
  vec_t *x = obj;
  for (size_t i = 0; i < x->len; i++)
    GC_VISIT(v, &x->items[i], GC_EDGE_ELEM(i));
}
static size_t str_size(const void *obj) {
  return sizeof(str_t) + ((const str_t *)obj)->len;
}
static const char *str_describe(const void *obj, char *buf, size_t cap) {
  const str_t *s = obj;
  size_t n = s->len < cap - 1 ? s->len : cap - 1;
  memcpy(buf, s->bytes, n);
  buf[n] = '\0';
  return buf;
}

static const gc_type_t record_type = {
    .name = "Record", .size = sizeof(pair_t), .trace = pair_trace};
static const gc_type_t vec_type = {
    .name = "Array", .size_of = vec_size, .trace = vec_trace};
static const gc_type_t str_type = {
    .name = "string", .size_of = str_size, .describe = str_describe};

static void *make_str(gc_heap_t *h, long i) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "user-%ld", i % 50000);
  str_t *s = gc_alloc(h, &str_type, sizeof(str_t) + (size_t)n);
  s->len = (size_t)n;
  memcpy(s->bytes, buf, (size_t)n);
  return s;
}

static void *make_vec(gc_heap_t *h, size_t len) {
  vec_t *v = gc_alloc(h, &vec_type, sizeof(vec_t) + len * sizeof(void *));
  v->len = len;
  return v;
}

int main(int argc, char **argv) {
  gc_options_t o;
  gc_options_init(&o);
  if (gc_options_from_env_and_argv(&o, &argc, argv) < 0)
    return 2;
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  const char *path = argc > 2 ? argv[2] : "/tmp/tenure-bench.heapsnapshot";
  gc_heap_t *h;
  if (gc_heap_create(&o, &h) != 0)
    return 1;
  gc_type_register(h, &record_type);
  gc_type_register(h, &vec_type);
  gc_type_register(h, &str_type);
  gc_scope_t s;
  gc_scope_open(h, &s);
  /* Each record is 4 objects: record, string, tag vector, tag string. */
  long records = n / 4, chunks = (records + 999) / 1000;
  void **top = gc_handle(h, make_vec(h, (size_t)chunks));
  long made = 1;
  for (long c = 0; c < chunks; c++) {
    void **chunk = gc_handle(h, make_vec(h, 1000));
    gc_write(h, *top, &((vec_t *)*top)->items[c], *chunk);
    made++;
    for (long i = 0; i < 1000 && c * 1000 + i < records; i++) {
      gc_scope_t in;
      gc_scope_open(h, &in);
      void **name = gc_handle(h, make_str(h, c * 1000 + i));
      void **tag = gc_handle(h, make_str(h, c * 7 + i));
      void **tags = gc_handle(h, make_vec(h, 1));
      gc_write(h, *tags, &((vec_t *)*tags)->items[0], *tag);
      pair_t *r = gc_alloc(h, &record_type, sizeof(pair_t));
      gc_write(h, r, &r->car, *name);
      gc_write(h, r, &r->cdr, *tags);
      gc_write(h, *chunk, &((vec_t *)*chunk)->items[i], r);
      gc_scope_close(h, &in);
      made += 4;
    }
    gc_scope_close(h, &s);
    gc_scope_open(h, &s);
    top = gc_handle(h, *top);
  }
  /* The first snapshot also assigns every object its id; the second
   * finds them. */
  double ms[2];
  for (int k = 0; k < 2; k++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int err = gc_snapshot_write_path(h, path);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (err != 0) {
      fprintf(stderr, "snapshot: %s\n", gc_strerror(err));
      return 1;
    }
    ms[k] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
            (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  }
  struct stat st;
  stat(path, &st);
  printf("objects=%ld bytes=%lld write_ms=%.1f again_ms=%.1f\n", made,
         (long long)st.st_size, ms[0], ms[1]);
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
  return 0;
}
