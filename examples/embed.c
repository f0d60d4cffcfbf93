/* embed.c -- the smallest complete program that embeds tenure.
 *
 * It registers a type (a binary tree node with a finalizer), allocates in a
 * handle scope, keeps one tree alive through a persistent handle, and lets
 * the collector reclaim the rest.  Heap flags come from argv and
 * TENURE_OPTIONS:  ./embed --trace-gc --max-old-space-size=64
 */
#include <stdio.h>

#include <tenure/gc.h>

struct node {
  struct node *left;
  struct node *right;
  long value;
};

static long finalized;

static void node_trace(void *obj, gc_visitor_t *v) {
  struct node *n = obj;
  GC_VISIT(v, &n->left, GC_EDGE_PROP("left"));
  GC_VISIT(v, &n->right, GC_EDGE_PROP("right"));
}

static void node_finalize(gc_heap_t *h, void *obj) {
  (void)h;
  (void)obj;
  finalized++;
}

static const gc_type_t node_type = {
    .name = "Node",
    .size = sizeof(struct node),
    .trace = node_trace,
    .finalize = node_finalize,
};

/* GC point: builds a tree of the given depth and returns it (a raw
 * pointer, valid until the caller's next GC point). */
static struct node *make_tree(gc_heap_t *h, int depth) {
  gc_scope_t scope;
  gc_scope_open(h, &scope);
  struct node **n =
      (struct node **)gc_handle(h, gc_alloc(h, &node_type, sizeof(struct node)));
  (*n)->value = depth;
  if (depth > 0) {
    struct node *l = make_tree(h, depth - 1);
    GC_WRITE(h, *n, left, l);
    struct node *r = make_tree(h, depth - 1);
    GC_WRITE(h, *n, right, r);
  }
  struct node *result = *n;
  gc_scope_close(h, &scope);
  return result;
}

static long count(const struct node *n) {
  return n == NULL ? 0 : 1 + count(n->left) + count(n->right);
}

int main(int argc, char **argv) {
  gc_options_t opt;
  gc_options_init(&opt);
  if (gc_options_from_env_and_argv(&opt, &argc, argv) < 0)
    return 2;
  gc_heap_t *h;
  int err = gc_heap_create(&opt, &h);
  if (err < 0) {
    fprintf(stderr, "embed: %s\n", gc_strerror(err));
    return 1;
  }
  gc_type_register(h, &node_type);

  gc_persistent_t *keep = gc_persistent_new(h, make_tree(h, 10));
  for (int i = 0; i < 200; i++)
    make_tree(h, 10); /* garbage as soon as it is built */
  gc_collect(h, GC_COLLECT_FULL);

  gc_heap_stats_t st;
  gc_heap_stats(h, &st, sizeof st);
  printf("kept tree: %ld nodes; finalized %ld nodes; %llu scavenges, "
         "%llu full GCs; used %.1f MB\n",
         count(gc_persistent_get(keep)), finalized,
         (unsigned long long)st.scavenges, (unsigned long long)st.full_gcs,
         (double)st.used_heap_size / (1024.0 * 1024.0));
  gc_persistent_free(h, keep);
  gc_heap_destroy(h);
  return 0;
}
