/* test_analysis.c -- dominators, retained sizes, summary, diff, paths and
 * container entry counts on small hand-written graphs with known answers,
 * plus dominators on random graphs checked against the definition.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heapsnap.h"
#include "snapbuild.h"

static hs_snapshot_t *build(const sb_node_t *nodes, int n,
                            const sb_edge_t *edges, int m)
{
  char *t = sb_build(nodes, n, edges, m, 0);
  hs_snapshot_t *s = NULL;
  char err[HS_ERRMSG_MAX];
  int rc = hs_snapshot_read_mem(t, strlen(t), &s, err);
  if (rc)
    print_error("%s\n", err);
  assert_int_equal(rc, 0);
  free(t);
  assert_int_equal(hs_dominators(s), 0);
  return s;
}

#define OBJ(name, id, self) {"object", name, id, self}
#define P(from, name, to) {from, "property", name, 0, to}

/* root -> 1; 1 -> 2, 3; 2 -> 4; 3 -> 4; 4 -> 5 (a diamond). */
static void test_dominators_diamond(void **state)
{
  (void)state;
  sb_node_t nodes[] = {{"synthetic", "", 1, 0}, OBJ("A", 3, 10),
                       OBJ("B", 5, 20), OBJ("C", 7, 30), OBJ("D", 9, 40),
                       OBJ("E", 11, 50)};
  sb_edge_t edges[] = {P(0, "a", 1), P(1, "b", 2), P(1, "c", 3),
                       P(2, "d", 4), P(3, "d", 4), P(4, "e", 5)};
  hs_snapshot_t *s = build(nodes, 6, edges, 6);
  uint32_t want_idom[] = {0, 0, 1, 1, 1, 4};
  uint64_t want_ret[] = {150, 150, 20, 30, 90, 50};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(s->idom[i], want_idom[i]);
    assert_int_equal(s->retained[i], want_ret[i]);
  }
  assert_int_equal(s->reachable, 6);
  hs_snapshot_destroy(s);
}

/* Weak edges are ignored; a shortcut counts only from the root; a node
 * with no retainers is unreachable and retains only itself. */
static void test_dominators_weak_shortcut_unreachable(void **state)
{
  (void)state;
  sb_node_t nodes[] = {{"synthetic", "", 1, 0}, OBJ("A", 3, 10),
                       OBJ("B", 5, 20), OBJ("C", 7, 30), OBJ("G", 9, 5),
                       OBJ("H", 11, 7), OBJ("Lost", 13, 1000)};
  sb_edge_t edges[] = {
    P(0, "a", 1),
    {1, "weak", "w", 0, 2},          /* A -weak-> B: ignored */
    P(0, "c", 3), P(3, "b", 2),      /* B only via C */
    {0, "shortcut", "g", 0, 4},      /* root shortcut: counts */
    {1, "shortcut", "h", 0, 5},      /* A -shortcut-> H: ignored */
    P(4, "h", 5),                    /* so H is G's */
    {5, "weak", "lost", 0, 6},       /* Lost only weakly held */
  };
  hs_snapshot_t *s = build(nodes, 7, edges, 8);
  assert_int_equal(s->idom[2], 3);
  assert_int_equal(s->retained[1], 10);
  assert_int_equal(s->retained[3], 50);
  assert_int_equal(s->idom[5], 4);
  assert_int_equal(s->retained[4], 12);
  assert_int_equal(s->reachable, 6);
  assert_int_equal(s->idom[6], 0);
  assert_int_equal(s->retained[6], 1000);
  assert_int_equal(s->retained[0], 10 + 20 + 30 + 5 + 7);
  hs_snapshot_destroy(s);
}

/* A cycle: 1 -> 2 -> 3 -> 1, 2 -> 4, plus root -> 3 (two entries). */
static void test_dominators_cycle(void **state)
{
  (void)state;
  sb_node_t nodes[] = {{"synthetic", "", 1, 0}, OBJ("A", 3, 1),
                       OBJ("B", 5, 2), OBJ("C", 7, 4), OBJ("D", 9, 8)};
  sb_edge_t edges[] = {P(0, "a", 1), P(1, "b", 2), P(2, "c", 3),
                       P(3, "a", 1), P(2, "d", 4), P(0, "c", 3)};
  hs_snapshot_t *s = build(nodes, 5, edges, 6);
  /* A and C both reachable from the root directly or through each other:
   * A's only in-edges are root and C, C's are root and B. */
  assert_int_equal(s->idom[1], 0);
  assert_int_equal(s->idom[3], 0);
  assert_int_equal(s->idom[2], 1);
  assert_int_equal(s->idom[4], 2);
  assert_int_equal(s->retained[1], 1 + 2 + 8);
  assert_int_equal(s->retained[2], 10);
  hs_snapshot_destroy(s);
}

/* Random graphs: d dominates v iff v is unreachable from the root once d
 * is removed.  Compare with the idom tree's ancestor relation. */
static int reach_without(const hs_snapshot_t *s, uint32_t skip, uint32_t v,
                         uint8_t *seen, uint32_t *stack)
{
  memset(seen, 0, s->node_count);
  uint32_t top = 0;
  if (skip == 0)
    return 0;
  stack[top++] = 0;
  seen[0] = 1;
  while (top) {
    uint32_t u = stack[--top];
    if (u == v)
      return 1;
    for (uint32_t e = s->first_edge[u]; e < s->first_edge[u + 1]; e++) {
      uint32_t w = s->edge_to[e];
      if (w == skip || seen[w] || !hs_edge_essential(s, u, e))
        continue;
      seen[w] = 1;
      stack[top++] = w;
    }
  }
  return 0;
}

static void test_dominators_random_vs_definition(void **state)
{
  (void)state;
  unsigned seed = 7;
  int rounds = getenv("TENURE_TEST_VALGRIND") ? 5 : 40;
  for (int round = 0; round < rounds; round++) {
    enum { N = 40 };
    sb_node_t nodes[N];
    sb_edge_t edges[160];
    int m = 0;
    nodes[0] = (sb_node_t){"synthetic", "", 1, 0};
    for (int i = 1; i < N; i++)
      nodes[i] = (sb_node_t){"object", "X", 2u * i + 1, 1u + (unsigned)i};
    int ne = 60 + round * 2;
    for (int k = 0; k < ne; k++) {
      seed = seed * 1103515245u + 12345u;
      unsigned from = (seed >> 8) % N;
      seed = seed * 1103515245u + 12345u;
      unsigned to = 1 + (seed >> 8) % (N - 1);
      const char *type = (seed >> 20) % 9 == 0 ? "weak" : "property";
      edges[m++] = (sb_edge_t){from, type, "p", 0, to};
    }
    hs_snapshot_t *s = build(nodes, N, edges, m);
    uint8_t seen[N];
    uint32_t stack[N * 8];
    for (uint32_t v = 1; v < N; v++) {
      int reachable = reach_without(s, UINT32_MAX, v, seen, stack);
      if (!reachable) {
        assert_int_equal(s->idom[v], 0);
        assert_int_equal(s->retained[v], s->node_self[v]);
        continue;
      }
      for (uint32_t d = 1; d < N; d++) {
        if (d == v)
          continue;
        int dominates = !reach_without(s, d, v, seen, stack);
        int ancestor = 0;
        for (uint32_t a = s->idom[v]; a != 0; a = s->idom[a])
          if (a == d)
            ancestor = 1;
        if (dominates != ancestor) {
          print_error("round %d: %u dom %u: def %d tree %d\n", round, d, v,
                      dominates, ancestor);
          fail();
        }
      }
    }
    /* Retained sizes: each reachable node's size counts at every
     * dominator-tree ancestor. */
    uint64_t want[N] = {0};
    for (uint32_t v = 1; v < N; v++) {
      if (!reach_without(s, UINT32_MAX, v, seen, stack)) {
        want[v] += s->node_self[v];
        continue;
      }
      for (uint32_t a = v;; a = s->idom[a]) {
        want[a] += s->node_self[v];
        if (a == 0)
          break;
      }
    }
    for (uint32_t v = 0; v < N; v++)
      assert_int_equal(s->retained[v], want[v]);
    hs_snapshot_destroy(s);
  }
}

/* Summary rows: class retained sizes do not count nested same-class
 * objects twice. */
static void test_summary_classes(void **state)
{
  (void)state;
  sb_node_t nodes[] = {{"synthetic", "", 1, 0}, OBJ("Tree", 3, 10),
                       OBJ("Tree", 5, 10), OBJ("Leaf", 7, 5),
                       {"string", "s", 9, 100}};
  sb_edge_t edges[] = {P(0, "t", 1), P(1, "left", 2), P(2, "leaf", 3),
                       P(1, "name", 4)};
  hs_snapshot_t *s = build(nodes, 5, edges, 4);
  hs_class_row_t *rows;
  int n = hs_class_rows(s, &rows);
  assert_int_equal(n, 4);
  /* Sorted by retained: Tree 125, (string) 100, Leaf 5, (synthetic). */
  assert_string_equal(rows[0].name, "Tree");
  assert_int_equal(rows[0].count, 2);
  assert_int_equal(rows[0].self, 20);
  assert_int_equal(rows[0].retained, 125);
  assert_string_equal(rows[1].name, "(string)");
  assert_int_equal(rows[1].retained, 100);
  assert_string_equal(rows[2].name, "Leaf");
  assert_int_equal(rows[2].retained, 5);
  hs_class_rows_free(rows, n);
  uint32_t top[3];
  assert_int_equal(hs_top_retained(s, top, 3), 3);
  assert_int_equal(top[0], 1);
  assert_int_equal(top[1], 4);
  assert_int_equal(top[2], 2);
  hs_snapshot_destroy(s);
}

static void test_diff_by_id(void **state)
{
  (void)state;
  sb_node_t a_nodes[] = {{"synthetic", "", 1, 0}, OBJ("Keep", 3, 10),
                         OBJ("Gone", 5, 20), OBJ("Gone", 7, 20)};
  sb_edge_t a_edges[] = {P(0, "k", 1), P(0, "g", 2), P(0, "h", 3)};
  sb_node_t b_nodes[] = {{"synthetic", "", 1, 0}, OBJ("Keep", 3, 10),
                         OBJ("New", 9, 30), OBJ("New", 11, 30),
                         OBJ("Keep", 13, 10), OBJ("Gone", 7, 20)};
  sb_edge_t b_edges[] = {P(0, "k", 1), P(0, "n", 2), P(0, "m", 3),
                         P(0, "j", 4), P(0, "h", 5)};
  hs_snapshot_t *a = build(a_nodes, 4, a_edges, 3);
  hs_snapshot_t *b = build(b_nodes, 6, b_edges, 5);
  hs_diff_row_t *rows;
  int n = hs_diff(a, b, &rows);
  assert_int_equal(n, 3);
  assert_string_equal(rows[0].name, "New");
  assert_int_equal(rows[0].added_count, 2);
  assert_int_equal(rows[0].added_self, 60);
  assert_string_equal(rows[1].name, "Keep");
  assert_int_equal(rows[1].added_count, 1);
  assert_int_equal(rows[1].removed_count, 0);
  assert_string_equal(rows[2].name, "Gone");
  assert_int_equal(rows[2].added_count, 0);
  assert_int_equal(rows[2].removed_count, 1);
  assert_int_equal(rows[2].removed_self, 20);
  hs_diff_rows_free(rows, n);
  hs_snapshot_destroy(a);
  hs_snapshot_destroy(b);
}

/* The V8 shape: root -shortcut-> global, root -> (GC roots) -> (Stack
 * roots); global.cache is a Map whose table holds a string key at [67]. */
static const sb_node_t v8_nodes[] = {
  {"synthetic", "", 1, 0},
  {"synthetic", "(GC roots)", 3, 0},
  {"synthetic", "(Global handles)", 5, 0},
  {"object", "global", 7, 40},
  {"object", "Map", 9, 32},
  {"array", "", 11, 200},
  {"string", "k0", 13, 24},
  {"object", "Session", 15, 40},
  {"object", "Array", 17, 32},
  {"object", "Job", 19, 16},
  {"object", "Object", 21, 24},
};
static const sb_edge_t v8_edges[] = {
  {0, "element", NULL, 1, 1},
  {0, "shortcut", "global", 0, 3},
  {1, "element", NULL, 13, 2},
  {2, "hidden", NULL, 0, 8},
  {3, "property", "cache", 0, 4},
  {3, "property", "sessions", 0, 10},
  {3, "weak", "weakref", 0, 9},
  {4, "internal", "table", 0, 5},
  {5, "internal", "67", 0, 6},
  {5, "internal", "68", 0, 7},
  {8, "element", NULL, 3, 9},
  {10, "property", "s1", 0, 7},
};

static void test_paths_named_like_the_program(void **state)
{
  (void)state;
  hs_snapshot_t *s = build(v8_nodes, 11, v8_edges, 12);
  hs_bfs_t b;
  assert_int_equal(hs_bfs(s, &b), 0);
  char *p;
  assert_int_equal(hs_path_string(s, &b, 6, &p), 0);
  assert_string_equal(p, "(GC roots) -> global -> cache (Map) -> table -> 67");
  free(p);
  /* Job is held weakly by global and strongly by an array under the
   * global handles: the path skips the weak edge. */
  assert_int_equal(hs_path_string(s, &b, 9, &p), 0);
  assert_string_equal(p, "(GC roots) -> (Global handles) -> <0> (Array) -> "
                      "[3] (Job)");
  free(p);
  /* Two retainers of the Session: two paths, shortest first. */
  char *paths[4];
  int n = hs_paths_to(s, &b, 7, paths, 4);
  assert_int_equal(n, 2);
  assert_string_equal(paths[0], "(GC roots) -> global -> sessions (Object) "
                      "-> s1 (Session)");
  assert_string_equal(paths[1], "(GC roots) -> global -> cache (Map) -> "
                      "table -> 68 (Session)");
  free(paths[0]);
  free(paths[1]);
  hs_bfs_free(&b);
  hs_snapshot_destroy(s);
}

static void test_container_entries(void **state)
{
  (void)state;
  /* Map table in V8 layout: entries at slots 7+3k (key, value, chain);
   * entry 0 has a string key and object value, entry 1 a Smi key (value
   * only), entry 2 a key only.  Set table: stride 2. Plus "map". */
  sb_node_t nodes[] = {
    {"synthetic", "", 1, 0}, OBJ("Map", 3, 32), {"array", "", 5, 300},
    {"string", "a", 7, 16}, OBJ("V", 9, 16), OBJ("V", 11, 16),
    {"string", "c", 13, 16}, OBJ("Set", 15, 32), {"array", "", 17, 200},
    OBJ("Array", 19, 32), OBJ("Object", 21, 24), OBJ("Queue", 23, 24),
    OBJ("Node", 25, 24), OBJ("Node", 27, 24), OBJ("Node", 29, 24),
    {"hidden", "system / Map", 31, 40}, OBJ("global", 33, 40),
  };
  sb_edge_t edges[] = {
    {0, "shortcut", "global", 0, 16},
    P(16, "m", 1), P(16, "s", 7), P(16, "a", 9), P(16, "o", 10),
    P(16, "q", 11),
    {1, "internal", "table", 0, 2},
    {2, "internal", "map", 0, 15},
    {2, "internal", "7", 0, 3}, {2, "internal", "8", 0, 4},
    {2, "internal", "11", 0, 5}, {2, "internal", "13", 0, 6},
    {7, "internal", "table", 0, 8},
    {8, "internal", "5", 0, 3}, {8, "internal", "7", 0, 6},
    {8, "internal", "9", 0, 4},
    {9, "element", NULL, 0, 4}, {9, "element", NULL, 1, 5},
    {9, "property", "__proto__", 0, 10},
    P(10, "x", 4), P(10, "y", 5), P(10, "__proto__", 1),
    P(11, "head", 12), P(11, "tail", 14),
    P(12, "next", 13), P(13, "next", 14), P(12, "value", 4),
  };
  hs_snapshot_t *s = build(nodes, 17, edges,
                           (int)(sizeof edges / sizeof edges[0]));
  assert_int_equal(hs_container_entries(s, 1, HS_CONT_MAP), 3);
  assert_int_equal(hs_container_entries(s, 7, HS_CONT_MAP), 3);
  assert_int_equal(hs_container_entries(s, 9, HS_CONT_ARRAY), 2);
  assert_int_equal(hs_container_entries(s, 10, HS_CONT_DICT), 2);
  assert_int_equal(hs_container_entries(s, 11, HS_CONT_CHAIN), 3);
  /* The Map is not an Array; a list node is not a list holder. */
  assert_int_equal(hs_container_entries(s, 1, HS_CONT_ARRAY), 0);
  assert_int_equal(hs_container_entries(s, 12, HS_CONT_CHAIN), 0);
  hs_container_t *c;
  int n = hs_containers(s, 3, &c);
  assert_true(n >= 3);
  int saw_chain = 0, saw_map = 0;
  for (int i = 0; i < n; i++) {
    if (c[i].kind == HS_CONT_CHAIN && c[i].node == 11)
      saw_chain = 1;
    if (c[i].kind == HS_CONT_MAP && c[i].node == 1 && c[i].entries == 3)
      saw_map = 1;
    assert_true(c[i].entries >= 3);
  }
  assert_true(saw_chain && saw_map);
  free(c);
  hs_snapshot_destroy(s);
}

/* Lists with cycles: a circular list, and a list whose tail links to
 * itself.  Each node counts once and the walk ends. */
static void test_container_cyclic_lists(void **state)
{
  (void)state;
  sb_node_t nodes[] = {
    {"synthetic", "", 1, 0}, OBJ("global", 3, 40),
    OBJ("Ring", 5, 24), OBJ("Node", 7, 24), OBJ("Node", 9, 24),
    OBJ("Node", 11, 24), OBJ("Posix", 13, 24), OBJ("Path", 15, 24),
    OBJ("Path", 17, 24),
  };
  sb_edge_t edges[] = {
    {0, "shortcut", "global", 0, 1},
    P(1, "ring", 2), P(1, "posix", 6),
    P(2, "head", 3),
    P(3, "next", 4), P(4, "next", 5), P(5, "next", 3),
    P(6, "win32", 7),
    P(7, "posix", 8), P(8, "posix", 8),
  };
  hs_snapshot_t *s = build(nodes, 9, edges, 10);
  assert_int_equal(hs_container_entries(s, 2, HS_CONT_CHAIN), 3);
  assert_int_equal(hs_container_entries(s, 6, HS_CONT_CHAIN), 2);
  hs_snapshot_destroy(s);
}

/* A Map subclass ("Cache") and a Set subclass ("Bag"): the entry stride
 * comes from the table's size (3 + 7B slots for maps, 3 + 5B for sets,
 * 8-byte slots after a 16-byte header), not from the class name. */
static void test_container_subclass_tables(void **state)
{
  (void)state;
  sb_node_t nodes[] = {
    {"synthetic", "", 1, 0}, OBJ("global", 3, 40),
    OBJ("Cache", 5, 32), {"array", "", 7, 16 + 8 * (3 + 7 * 2)},
    OBJ("Bag", 9, 32), {"array", "", 11, 16 + 8 * (3 + 5 * 2)},
    OBJ("V", 13, 16), OBJ("V", 15, 16), OBJ("V", 17, 16), OBJ("V", 19, 16),
  };
  sb_edge_t edges[] = {
    {0, "shortcut", "global", 0, 1},
    P(1, "c", 2), P(1, "b", 4),
    {2, "internal", "table", 0, 3},
    {3, "internal", "5", 0, 6}, {3, "internal", "6", 0, 7},
    {3, "internal", "8", 0, 8}, {3, "internal", "9", 0, 9},
    {4, "internal", "table", 0, 5},
    {5, "internal", "5", 0, 6}, {5, "internal", "7", 0, 7},
    {5, "internal", "9", 0, 8},
  };
  hs_snapshot_t *s = build(nodes, 10, edges, 12);
  assert_int_equal(hs_container_entries(s, 2, HS_CONT_MAP), 2);
  assert_int_equal(hs_container_entries(s, 4, HS_CONT_MAP), 3);
  hs_snapshot_destroy(s);
}

/* Tenure's writer: a Map's "(map table)" holds an internal "key" edge and
 * a property edge named by the key per entry; an Array's elements live in
 * an "(array elements)" store. */
static void test_container_tenure_layout(void **state)
{
  (void)state;
  sb_node_t nodes[] = {
    {"synthetic", "", 1, 0}, {"synthetic", "(GC roots)", 3, 0},
    {"synthetic", "(Handle scope)", 5, 0}, OBJ("Map", 10001, 16),
    {"array", "(map table)", 10003, 200}, {"string", "a", 10005, 24},
    {"string", "b", 10007, 24}, OBJ("Array", 10009, 16),
    {"array", "(array elements)", 10011, 64}, {"string", "v", 10013, 24},
    /* A V8 array of unboxed numbers: only the store's "map" edge. */
    OBJ("Array", 10015, 32), {"array", "(object elements)", 10017, 96},
    {"hidden", "system / Map", 10019, 72},
  };
  sb_edge_t edges[] = {
    {0, "element", NULL, 1, 1}, {1, "element", NULL, 1, 2},
    {2, "internal", "1", 0, 3}, {2, "internal", "2", 0, 7},
    {3, "internal", "table", 0, 4},
    {4, "internal", "key", 0, 5}, {4, "property", "a", 0, 9},
    {4, "internal", "key", 0, 6}, {4, "property", "b", 0, 9},
    {7, "internal", "elements", 0, 8},
    {8, "element", NULL, 0, 9}, {8, "element", NULL, 1, 9},
    {8, "element", NULL, 2, 9},
    {2, "internal", "3", 0, 10}, {10, "internal", "elements", 0, 11},
    {11, "internal", "map", 0, 12},
  };
  hs_snapshot_t *s = build(nodes, 13, edges, 16);
  /* Capacity from the store's size: (96 - 16) / 8. */
  assert_int_equal(hs_container_entries(s, 10, HS_CONT_ARRAY), 10);
  assert_int_equal(hs_container_entries(s, 3, HS_CONT_MAP), 2);
  assert_int_equal(hs_container_entries(s, 7, HS_CONT_ARRAY), 3);
  hs_bfs_t b;
  assert_int_equal(hs_bfs(s, &b), 0);
  char *p;
  assert_int_equal(hs_path_string(s, &b, 9, &p), 0);
  assert_string_equal(p, "(GC roots) -> (Handle scope) -> 1 (Map) -> table "
                      "-> a");
  free(p);
  hs_bfs_free(&b);
  hs_snapshot_destroy(s);
}

/* A series of hand-made snapshots: a Map cache that keeps its entries
 * (flagged), a Map whose entries are all replaced while it grows (not),
 * and an array that grows then stays flat (not). */
static hs_snapshot_t *series_snapshot(int k)
{
  enum { MAXN = 400 };
  static sb_node_t nodes[MAXN];
  static sb_edge_t edges[MAXN * 2];
  int n = 0, m = 0;
  nodes[n++] = (sb_node_t){"synthetic", "", 1, 0};
  nodes[n++] = (sb_node_t){"object", "global", 3, 40};
  edges[m++] = (sb_edge_t){0, "shortcut", "global", 0, 1};
  /* cache: Map 5 -> table 7 with 10 + 10k entries, ids stable. */
  int cache = n;
  nodes[n++] = (sb_node_t){"object", "Map", 5, 32};
  edges[m++] = (sb_edge_t){1, "property", "cache", 0, (unsigned)cache};
  int table = n;
  nodes[n++] = (sb_node_t){"array", "", 7, 101u + 64u * k};
  edges[m++] = (sb_edge_t){(unsigned)cache, "internal", "table", 0,
                           (unsigned)table};
  static char names[5][60][8];
  static char keys[2][60][16];
  for (int i = 0; i < 10 + 10 * k; i++) {
    snprintf(names[0][i], 8, "%d", 7 + 3 * i + 1);
    edges[m++] = (sb_edge_t){(unsigned)table, "internal", names[0][i], 0,
                             (unsigned)n};
    nodes[n++] = (sb_node_t){"object", "Entry", 1001u + 2u * i, 64};
  }
  /* churn: Map 9 -> table 11 with 10 + 10k entries, new ids each time. */
  int churn = n;
  nodes[n++] = (sb_node_t){"object", "Map", 9, 32};
  edges[m++] = (sb_edge_t){1, "property", "churn", 0, (unsigned)churn};
  int t2 = n;
  nodes[n++] = (sb_node_t){"array", "", 11, 101u + 64u * k};
  edges[m++] = (sb_edge_t){(unsigned)churn, "internal", "table", 0,
                           (unsigned)t2};
  for (int i = 0; i < 10 + 10 * k; i++) {
    snprintf(names[1][i], 8, "%d", 7 + 3 * i + 1);
    edges[m++] = (sb_edge_t){(unsigned)t2, "internal", names[1][i], 0,
                             (unsigned)n};
    nodes[n++] = (sb_node_t){"object", "Entry",
                             (unsigned)(5001 + 200 * k + 2 * i), 64};
  }
  /* flat: Array 13 with 20 then 30, 30 elements. */
  int arr = n;
  nodes[n++] = (sb_node_t){"object", "Array", 13, 32};
  edges[m++] = (sb_edge_t){1, "property", "flat", 0, (unsigned)arr};
  int len = k == 0 ? 20 : 30;
  for (int i = 0; i < len; i++) {
    edges[m++] = (sb_edge_t){(unsigned)arr, "element", NULL, (unsigned)i,
                             (unsigned)n};
    nodes[n++] = (sb_node_t){"object", "Item", 9001u + 2u * i, 64};
  }
  /* refresh: Map 15 whose keys are rebuilt strings (new ids, same text)
   * and whose values are replaced every time: it still keeps its keys. */
  int refresh = n;
  nodes[n++] = (sb_node_t){"object", "Map", 15, 32};
  edges[m++] = (sb_edge_t){1, "property", "refresh", 0, (unsigned)refresh};
  int t3 = n;
  nodes[n++] = (sb_node_t){"array", "", 17, 101u + 64u * k};
  edges[m++] = (sb_edge_t){(unsigned)refresh, "internal", "table", 0,
                           (unsigned)t3};
  for (int i = 0; i < 10 + 10 * k; i++) {
    snprintf(names[2][2 * i], 8, "%d", 7 + 3 * i);
    snprintf(names[2][2 * i + 1], 8, "%d", 7 + 3 * i + 1);
    snprintf(keys[0][i], 16, "user:%d", i);
    edges[m++] = (sb_edge_t){(unsigned)t3, "internal", names[2][2 * i], 0,
                             (unsigned)n};
    nodes[n++] = (sb_node_t){"string", keys[0][i],
                             (unsigned)(20001 + 1000 * k + 4 * i), 32};
    edges[m++] = (sb_edge_t){(unsigned)t3, "internal", names[2][2 * i + 1],
                             0, (unsigned)n};
    nodes[n++] = (sb_node_t){"object", "Entry",
                             (unsigned)(20003 + 1000 * k + 4 * i), 64};
  }
  /* turnover: Map 19 that grows while every key is new each time. */
  int turn = n;
  nodes[n++] = (sb_node_t){"object", "Map", 19, 32};
  edges[m++] = (sb_edge_t){1, "property", "turnover", 0, (unsigned)turn};
  int t4 = n;
  nodes[n++] = (sb_node_t){"array", "", 21, 101u + 64u * k};
  edges[m++] = (sb_edge_t){(unsigned)turn, "internal", "table", 0,
                           (unsigned)t4};
  for (int i = 0; i < 10 + 10 * k; i++) {
    snprintf(names[3][i], 8, "%d", 7 + 3 * i);
    snprintf(keys[1][i], 16, "t%d_%d", k, i);
    edges[m++] = (sb_edge_t){(unsigned)t4, "internal", names[3][i], 0,
                             (unsigned)n};
    nodes[n++] = (sb_node_t){"string", keys[1][i],
                             (unsigned)(40001 + 1000 * k + 2 * i), 64};
  }
  /* In the last snapshot a global handle also holds the cache, on a path
   * as short as global's, and the root lists it first: the finding must
   * still be named by the property that holds it. */
  if (k == 2) {
    int handles = n;
    nodes[n++] = (sb_node_t){"synthetic", "(Global handles)", 99, 0};
    memmove(&edges[1], &edges[0], sizeof edges[0] * (size_t)m);
    m++;
    edges[0] = (sb_edge_t){0, "element", NULL, 1, (unsigned)handles};
    edges[m++] = (sb_edge_t){(unsigned)handles, "element", NULL, 106,
                             (unsigned)cache};
  }
  return build(nodes, n, edges, m);
}

static void test_leaks_series(void **state)
{
  (void)state;
  hs_snapshot_t *s[3];
  for (int k = 0; k < 3; k++)
    s[k] = series_snapshot(k);
  hs_leak_options_t o;
  hs_leak_options_default(&o);
  o.min_growth_bytes = 100;
  hs_leak_t *l;
  int n = hs_leaks(s, 3, &o, &l);
  /* cache and refresh leak; churn and turnover replace their entries;
   * flat stops growing.  Ranked by growth: refresh grows more. */
  assert_int_equal(n, 2);
  assert_string_equal(l[0].name, "refresh");
  assert_true(l[0].retention > 0.99);
  l++;
  assert_int_equal(l[0].kind, HS_LEAK_CACHE);
  assert_int_equal(l[0].id, 5);
  assert_string_equal(l[0].name, "cache");
  assert_string_equal(l[0].ctor, "Map");
  assert_string_equal(l[0].path, "(GC roots) -> global -> cache (Map)");
  assert_int_equal(l[0].entries[0], 10);
  assert_int_equal(l[0].entries[2], 30);
  assert_true(l[0].retained[2] > l[0].retained[1]);
  l--;
  hs_leaks_free(l, n, 3);
  /* Without the retention rule the growing turnover and churn maps would
   * be flagged too: that rule is what rejects them. */
  o.min_retention = 0;
  n = hs_leaks(s, 3, &o, &l);
  assert_int_equal(n, 4);
  hs_leaks_free(l, n, 3);
  /* Too few snapshots is a usage error. */
  assert_int_equal(hs_leaks(s, 2, &o, &l), -EINVAL);
  for (int k = 0; k < 3; k++)
    hs_snapshot_destroy(s[k]);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_dominators_diamond),
    cmocka_unit_test(test_dominators_weak_shortcut_unreachable),
    cmocka_unit_test(test_dominators_cycle),
    cmocka_unit_test(test_dominators_random_vs_definition),
    cmocka_unit_test(test_summary_classes),
    cmocka_unit_test(test_diff_by_id),
    cmocka_unit_test(test_paths_named_like_the_program),
    cmocka_unit_test(test_container_entries),
    cmocka_unit_test(test_container_cyclic_lists),
    cmocka_unit_test(test_container_subclass_tables),
    cmocka_unit_test(test_container_tenure_layout),
    cmocka_unit_test(test_leaks_series),
  };
  return cmocka_run_group_tests_name("tools.analysis", tests, NULL, NULL);
}
