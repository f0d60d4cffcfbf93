/* gcbench.c -- the GCBench workload (after Hans Boehm) on tenure.
 *
 * Stretch tree of depth 18 built and dropped; a long-lived tree of depth 16
 * built top-down and an array of 500000 doubles; then for depths 4..16 step
 * 2, NumIters(d) trees built top-down and as many bottom-up.  stdout is the
 * same as ../shared/peers/gc/gcbench_malloc.c prints; timings go to stderr.
 * usage: gcbench [heap flags] [--stats]   (TENURE_STATS=1 also prints the
 * heap statistics as JSON on stderr)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tenure/gc.h>

#define STRETCH_DEPTH 18
#define LONG_LIVED_DEPTH 16
#define ARRAY_SIZE 500000
#define MIN_DEPTH 4
#define MAX_DEPTH 16

typedef struct node {
  struct node *left;
  struct node *right;
  int i, j;
} node_t;

static void node_trace(void *obj, gc_visitor_t *v) {
  node_t *n = obj;
  GC_VISIT(v, &n->left, GC_EDGE_PROP("left"));
  GC_VISIT(v, &n->right, GC_EDGE_PROP("right"));
}

static const gc_type_t node_type = {
    .name = "Node", .size = sizeof(node_t), .trace = node_trace};

/* An array of doubles holds no references: no trace callback. */
static size_t darray_size(const void *obj) {
  return sizeof(double) * (size_t)((const double *)obj)[0] + sizeof(double);
}
static const gc_type_t darray_type = {.name = "DoubleArray",
                                      .size_of = darray_size};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static node_t *new_node(gc_heap_t *h) {
  node_t *n = gc_alloc(h, &node_type, sizeof(node_t));
  if (n == NULL) {
    fputs("gcbench: out of memory\n", stderr);
    exit(1);
  }
  return n;
}

static long tree_size(int depth) { return (1L << (depth + 1)) - 1; }
static long num_iters(int depth) {
  return 2 * tree_size(STRETCH_DEPTH) / tree_size(depth);
}

static long tree_count(const node_t *n) {
  return n == NULL ? 0 : 1 + tree_count(n->left) + tree_count(n->right);
}

/* GC point.  Top-down: grow children under N.  The recursive builders root
 * their locals through a root frame (gc.h, GC_FRAME: a few stores), the
 * mechanism for hot code, as binarytrees.c does; handle scopes are for the
 * rest. */
static void populate(gc_heap_t *h, int depth, node_t *n) {
  if (depth <= 0)
    return;
  depth--;
  GC_FRAME(h, fr, &n);
  node_t *l = new_node(h);
  GC_WRITE(h, n, left, l);
  node_t *r = new_node(h);
  GC_WRITE(h, n, right, r);
  populate(h, depth, n->left);
  populate(h, depth, n->right);
  GC_FRAME_CLOSE(h, fr);
}

/* GC point.  Bottom-up: children first, then the parent. */
static node_t *make_tree(gc_heap_t *h, int depth) {
  if (depth <= 0)
    return new_node(h);
  node_t *l = NULL, *r = NULL;
  GC_FRAME(h, fr, &l, &r);
  l = make_tree(h, depth - 1);
  r = make_tree(h, depth - 1);
  node_t *n = new_node(h);
  /* n is fresh: no GC point since its allocation */
  GC_INIT_FIELD(h, n, left, l);
  GC_INIT_FIELD(h, n, right, r);
  GC_FRAME_CLOSE(h, fr);
  return n;
}

static void time_construction(gc_heap_t *h, int depth) {
  long iters = num_iters(depth);
  printf("Creating %ld trees of depth %d\n", iters, depth);
  double t0 = now_ms();
  for (long k = 0; k < iters; k++)
    populate(h, depth, new_node(h));
  double t1 = now_ms();
  for (long k = 0; k < iters; k++)
    make_tree(h, depth);
  double t2 = now_ms();
  fprintf(stderr, "depth %2d: top-down %.0f ms, bottom-up %.0f ms\n", depth,
          t1 - t0, t2 - t1);
}

int main(int argc, char **argv) {
  gc_options_t opt;
  gc_options_init(&opt);
  if (gc_options_from_env_and_argv(&opt, &argc, argv) < 0)
    return 2;
  bool stats = getenv("TENURE_STATS") != NULL;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--stats") == 0)
      stats = true;
  gc_heap_t *h;
  if (gc_heap_create(&opt, &h) < 0) {
    fputs("gcbench: cannot create the heap\n", stderr);
    return 1;
  }
  gc_type_register(h, &node_type);
  gc_type_register(h, &darray_type);

  double start = now_ms();
  printf("GCBench: stretch depth %d, long-lived depth %d, array %d doubles, "
         "depths %d..%d\n",
         STRETCH_DEPTH, LONG_LIVED_DEPTH, ARRAY_SIZE, MIN_DEPTH, MAX_DEPTH);

  gc_scope_t top;
  gc_scope_open(h, &top);
  node_t **stretch = GC_HANDLE(h, make_tree(h, STRETCH_DEPTH));
  printf("stretch tree of depth %d: %ld nodes\n", STRETCH_DEPTH,
         tree_count(*stretch));
  *stretch = NULL;

  node_t **long_lived = GC_HANDLE(h, new_node(h));
  populate(h, LONG_LIVED_DEPTH, *long_lived);
  /* Element 0 holds the length; the doubles follow. */
  double **array = (double **)gc_handle(
      h, gc_alloc(h, &darray_type, sizeof(double) * (ARRAY_SIZE + 1)));
  if (*array == NULL) {
    fputs("gcbench: out of memory\n", stderr);
    return 1;
  }
  (*array)[0] = ARRAY_SIZE;
  double *a = *array + 1;
  for (int k = 0; k < ARRAY_SIZE; k++)
    a[k] = k < ARRAY_SIZE / 2 ? 1.0 / k : 0.0;

  for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2)
    time_construction(h, d);

  long n = tree_count(*long_lived);
  a = *array + 1;
  int ok = n == tree_size(LONG_LIVED_DEPTH) && a[1000] == 1.0 / 1000;
  printf("long-lived tree: %ld nodes, array[1000]=%g: %s\n", n, a[1000],
         ok ? "OK" : "FAILED");
  fprintf(stderr, "total %.0f ms\n", now_ms() - start);
  gc_scope_close(h, &top);
  if (stats)
    gc_heap_stats_json(h, stderr);
  gc_heap_destroy(h);
  return ok ? 0 : 1;
}
