/* binarytrees.c -- the binary-trees workload on tenure.
 *
 * usage: binarytrees [heap flags] [N]   (default 21)
 * Prints exactly the lines of ../shared/peers/gc/binarytrees_malloc.c.
 * With TENURE_STATS=1 (or --stats) it prints the heap statistics as JSON
 * on stderr at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/gc.h>

typedef struct tree {
  struct tree *left;
  struct tree *right;
} tree_t;

static void tree_trace(void *obj, gc_visitor_t *v) {
  tree_t *t = obj;
  GC_VISIT(v, &t->left, GC_EDGE_PROP("left"));
  GC_VISIT(v, &t->right, GC_EDGE_PROP("right"));
}

static const gc_type_t tree_type = {
    .name = "Tree", .size = sizeof(tree_t), .trace = tree_trace};

/* GC point: returns a new tree (raw pointer, valid until the next GC point). */
static tree_t *bottom_up(gc_heap_t *h, int depth) {
  if (depth <= 0)
    return gc_alloc(h, &tree_type, sizeof(tree_t));
  tree_t *l = NULL, *r = NULL;
  GC_FRAME(h, fr, &l, &r);
  l = bottom_up(h, depth - 1);
  r = bottom_up(h, depth - 1);
  tree_t *t = gc_alloc(h, &tree_type, sizeof(tree_t));
  if (t == NULL) {
    fputs("binarytrees: out of memory\n", stderr);
    exit(1);
  }
  /* t is fresh: no GC point since its allocation */
  GC_INIT_FIELD(h, t, left, l);
  GC_INIT_FIELD(h, t, right, r);
  GC_FRAME_CLOSE(h, fr);
  return t;
}

static long check(const tree_t *t) {
  return t->left == NULL ? 1 : 1 + check(t->left) + check(t->right);
}

int main(int argc, char **argv) {
  gc_options_t opt;
  gc_options_init(&opt);
  if (gc_options_from_env_and_argv(&opt, &argc, argv) < 0)
    return 2;
  bool stats = getenv("TENURE_STATS") != NULL;
  int n = 21;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--stats") == 0)
      stats = true;
    else
      n = atoi(argv[i]);
  }
  gc_heap_t *h;
  if (gc_heap_create(&opt, &h) < 0) {
    fputs("binarytrees: cannot create the heap\n", stderr);
    return 1;
  }
  gc_type_register(h, &tree_type);
  const int min_depth = 4;
  int max_depth = n > min_depth + 2 ? n : min_depth + 2;

  gc_scope_t top;
  gc_scope_open(h, &top);
  tree_t **stretch = GC_HANDLE(h, bottom_up(h, max_depth + 1));
  printf("stretch tree of depth %d\t check: %ld\n", max_depth + 1,
         check(*stretch));
  *stretch = NULL;

  tree_t **long_lived = GC_HANDLE(h, bottom_up(h, max_depth));

  for (int d = min_depth; d <= max_depth; d += 2) {
    long iterations = 1L << (max_depth - d + min_depth);
    long sum = 0;
    for (long k = 0; k < iterations; k++)
      sum += check(bottom_up(h, d));
    printf("%ld\t trees of depth %d\t check: %ld\n", iterations, d, sum);
  }
  printf("long lived tree of depth %d\t check: %ld\n", max_depth,
         check(*long_lived));
  gc_scope_close(h, &top);
  if (stats)
    gc_heap_stats_json(h, stderr);
  gc_heap_destroy(h);
  return 0;
}
