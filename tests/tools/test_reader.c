/* test_reader.c -- the streaming .heapsnapshot reader.
 *
 * Valid input in V8's field order and reversed, skipped sections, string
 * escapes, a file larger than the read buffer, and bad input: every
 * truncation of a valid snapshot, corrupt fields, non-snapshot files.
 * Bad input must give -EPROTO and a message naming a byte offset, never a
 * crash (the sanitize and valgrind variants check the "never").
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapsnap.h"
#include "snapbuild.h"

static const sb_node_t small_nodes[] = {
  {"synthetic", "", 1, 0},
  {"object", "global", 3, 40},
  {"object", "Map", 5, 32},
  {"array", "", 7, 100},
  {"string", "k\"ey\n", 9, 24},
  {"closure", "handler", 11, 64},
};
static const sb_edge_t small_edges[] = {
  {0, "shortcut", "global", 0, 1},
  {1, "property", "cache", 0, 2},
  {1, "property", "onData", 0, 5},
  {2, "internal", "table", 0, 3},
  {3, "element", NULL, 4, 4},
  {3, "weak", "w", 0, 5},
};
#define N_SMALL 6
#define M_SMALL 6

static hs_snapshot_t *read_ok(const char *text)
{
  hs_snapshot_t *s = NULL;
  char err[HS_ERRMSG_MAX];
  int rc = hs_snapshot_read_mem(text, strlen(text), &s, err);
  if (rc != 0)
    print_error("unexpected error: %s\n", err);
  assert_int_equal(rc, 0);
  assert_non_null(s);
  return s;
}

static void check_small(const hs_snapshot_t *s)
{
  assert_int_equal(s->node_count, N_SMALL);
  assert_int_equal(s->edge_count, M_SMALL);
  assert_int_equal(s->node_kind[0], HS_NODE_SYNTHETIC);
  assert_int_equal(s->node_kind[2], HS_NODE_OBJECT);
  assert_int_equal(s->node_kind[3], HS_NODE_ARRAY);
  assert_int_equal(s->node_kind[5], HS_NODE_CLOSURE);
  assert_string_equal(hs_node_name(s, 2), "Map");
  assert_string_equal(hs_node_name(s, 4), "k\"ey\n");
  assert_int_equal(s->node_id[4], 9);
  assert_int_equal(s->node_self[3], 100);
  assert_int_equal(s->total_self, 260);
  /* CSR: node 1 has two edges, node 3 two, node 4 none. */
  assert_int_equal(s->first_edge[1], 1);
  assert_int_equal(s->first_edge[2], 3);
  assert_int_equal(s->first_edge[4], 6);
  assert_int_equal(s->first_edge[6], 6);
  assert_int_equal(s->edge_kind[0], HS_EDGE_SHORTCUT);
  assert_int_equal(s->edge_to[1], 2);
  assert_string_equal(hs_str(s, s->edge_name[1]), "cache");
  assert_int_equal(s->edge_kind[4], HS_EDGE_ELEMENT);
  assert_int_equal(s->edge_name[4], 4);
  assert_int_equal(s->edge_kind[5], HS_EDGE_WEAK);
  char buf[32];
  assert_string_equal(hs_edge_label(s, 4, buf, sizeof buf), "[4]");
  assert_string_equal(hs_node_class(s, 3, buf, sizeof buf), "(array)");
  assert_string_equal(hs_node_class(s, 2, buf, sizeof buf), "Map");
}

static void test_reader_v8_order(void **state)
{
  (void)state;
  char *t = sb_build(small_nodes, N_SMALL, small_edges, M_SMALL, 0);
  hs_snapshot_t *s = read_ok(t);
  check_small(s);
  hs_snapshot_destroy(s);
  free(t);
}

static void test_reader_reversed_fields_and_extras(void **state)
{
  (void)state;
  char *t = sb_build(small_nodes, N_SMALL, small_edges, M_SMALL,
                     SB_REVERSED | SB_EXTRAS);
  assert_non_null(strstr(t, "\"samples\""));
  hs_snapshot_t *s = read_ok(t);
  check_small(s);
  hs_snapshot_destroy(s);
  free(t);
}

static void test_reader_string_escapes(void **state)
{
  (void)state;
  const char *t =
    "{\"snapshot\":{\"meta\":{\"node_fields\":[\"type\",\"name\",\"id\","
    "\"self_size\",\"edge_count\"],\"node_types\":[[\"synthetic\","
    "\"object\"],\"string\",\"number\",\"number\",\"number\"],"
    "\"edge_fields\":[\"type\",\"name_or_index\",\"to_node\"],"
    "\"edge_types\":[[\"property\"],\"string_or_number\",\"node\"]},"
    "\"node_count\":2,\"edge_count\":1},"
    "\"nodes\":[0,0,1,0,1, 1,1,3,8,0],\"edges\":[0,2,5],"
    "\"strings\":[\"\",\"caf\\u00e9 \\ud83d\\ude00\\t\\/\",\"x\\\\y\"]}";
  hs_snapshot_t *s = read_ok(t);
  assert_string_equal(hs_node_name(s, 1), "caf\xc3\xa9 \xf0\x9f\x98\x80\t/");
  assert_string_equal(hs_str(s, s->edge_name[0]), "x\\y");
  /* Unknown type names map to OTHER, known ones by name not position. */
  assert_int_equal(s->node_kind[0], HS_NODE_SYNTHETIC);
  assert_int_equal(s->node_kind[1], HS_NODE_OBJECT);
  assert_int_equal(s->edge_kind[0], HS_EDGE_PROPERTY);
  hs_snapshot_destroy(s);
}

static void expect_error(const char *text, size_t len, const char *needle)
{
  hs_snapshot_t *s = (hs_snapshot_t *)0x1;
  char err[HS_ERRMSG_MAX];
  int rc = hs_snapshot_read_mem(text, len, &s, err);
  assert_int_equal(rc, -EPROTO);
  assert_ptr_equal(s, (hs_snapshot_t *)0x1); /* untouched */
  assert_non_null(strstr(err, "byte "));
  if (needle && !strstr(err, needle)) {
    print_error("message \"%s\" lacks \"%s\"\n", err, needle);
    fail();
  }
}

static void test_reader_every_truncation_fails(void **state)
{
  (void)state;
  char *t = sb_build(small_nodes, N_SMALL, small_edges, M_SMALL, SB_EXTRAS);
  size_t len = strlen(t);
  /* Every proper prefix is an error naming a byte offset; the offset of a
   * truncation is the end of the input. */
  for (size_t k = 0; k + 1 < len; k++) {
    hs_snapshot_t *s = NULL;
    char err[HS_ERRMSG_MAX];
    int rc = hs_snapshot_read_mem(t, k, &s, err);
    if (rc != -EPROTO) {
      print_error("prefix %zu: rc %d\n", k, rc);
      fail();
    }
    assert_null(s);
    assert_non_null(strstr(err, "byte "));
  }
  hs_snapshot_t *s = read_ok(t); /* the whole text (with '\n') is fine */
  hs_snapshot_destroy(s);
  char msg[64];
  snprintf(msg, sizeof msg, "byte %zu", len / 2);
  expect_error(t, len / 2, msg);
  free(t);
}

static void test_reader_corrupt(void **state)
{
  (void)state;
  expect_error("", 0, "not a JSON heap snapshot");
  expect_error("[]", 2, "byte 0");
  expect_error("hello", 5, "byte 0");
  expect_error("{\"a\":1}", 7, "snapshot");
  expect_error("{\"nodes\":[1,2]}", 15, "before");
  char *t = sb_build(small_nodes, N_SMALL, small_edges, M_SMALL, 0);
  char *p;
  /* A to_node that is not a multiple of the node field count. */
  char *bad = strdup(t);
  p = strstr(bad, "\"edges\":[");
  p = strchr(p, '[') + 1;           /* first edge: "5,<name>,7" */
  p = strchr(p, ',') + 1;
  p = strchr(p, ',') + 1;
  *p = '8';
  expect_error(bad, strlen(bad), "to_node");
  free(bad);
  /* A fraction where an integer must be. */
  bad = strdup(t);
  p = strstr(bad, "\"nodes\":[") + 9;
  p[1] = '.';
  expect_error(bad, strlen(bad), "fraction");
  free(bad);
  /* A name index past the strings. */
  bad = strdup(t);
  p = strstr(bad, "\"nodes\":[") + 9;
  p[2] = '9';
  expect_error(bad, strlen(bad), "out of range");
  free(bad);
  /* Fewer edges than the nodes' edge_count say. */
  bad = strdup(t);
  p = strstr(bad, "\"edges\":[") + 9;
  memmove(p, strchr(p, '\n') + 2, strlen(strchr(p, '\n') + 2) + 1);
  expect_error(bad, strlen(bad), "edge");
  free(bad);
  /* Garbage after the top-level object. */
  size_t len = strlen(t);
  bad = malloc(len + 8);
  memcpy(bad, t, len);
  memcpy(bad + len, "xyz", 4);
  expect_error(bad, len + 3, "end of the file");
  free(bad);
  /* Byte flips anywhere: any result but a crash; errors name offsets. */
  for (size_t i = 0; i < len; i += 3) {
    bad = strdup(t);
    bad[i] ^= 0x15;
    hs_snapshot_t *s = NULL;
    char err[HS_ERRMSG_MAX];
    int rc = hs_snapshot_read_mem(bad, len, &s, err);
    if (rc == 0)
      hs_snapshot_destroy(s);
    else
      assert_non_null(strstr(err, "byte "));
    free(bad);
  }
  free(t);
}

static void test_reader_file_and_big_input(void **state)
{
  (void)state;
  /* A chain root -> 1 -> 2 -> ... large enough to cross the 4 MiB read
   * buffer several times (smaller under valgrind). */
  int valgrind = getenv("TENURE_TEST_VALGRIND") != NULL;
  unsigned n = valgrind ? 60000 : 400000;
  char path[] = "/tmp/tenure-heap-reader-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fprintf(f, "{\"snapshot\":{\"meta\":{\"node_fields\":[\"type\",\"name\","
          "\"id\",\"self_size\",\"edge_count\",\"trace_node_id\","
          "\"detachedness\"],\"node_types\":[[\"hidden\",\"array\","
          "\"string\",\"object\",\"code\",\"closure\",\"regexp\","
          "\"number\",\"native\",\"synthetic\"],\"string\",\"number\","
          "\"number\",\"number\",\"number\",\"number\"],\"edge_fields\":"
          "[\"type\",\"name_or_index\",\"to_node\"],\"edge_types\":[["
          "\"context\",\"element\",\"property\",\"internal\",\"hidden\","
          "\"shortcut\",\"weak\"],\"string_or_number\",\"node\"]},"
          "\"node_count\":%u,\"edge_count\":%u},\n\"nodes\":[", n, n - 1);
  for (unsigned i = 0; i < n; i++)
    fprintf(f, "%s%u,1,%u,%u,%u,0,0", i ? "\n," : "", i ? 3u : 9u,
            2 * i + 1, i ? 16u : 0u, i + 1 < n ? 1u : 0u);
  fprintf(f, "],\n\"edges\":[");
  for (unsigned i = 0; i + 1 < n; i++)
    fprintf(f, "%s2,2,%u", i ? "\n," : "", 7 * (i + 1));
  fprintf(f, "],\n\"strings\":[\"\",\"Link\",\"next\"]}\n");
  fclose(f);
  hs_snapshot_t *s = NULL;
  char err[HS_ERRMSG_MAX];
  hs_read_options_t ro = {0, NULL, 0};
  int rc = hs_snapshot_read(path, &ro, &s, err);
  if (rc)
    print_error("%s\n", err);
  assert_int_equal(rc, 0);
  assert_int_equal(s->node_count, n);
  assert_int_equal(s->edge_count, n - 1);
  assert_int_equal(s->edge_to[n - 2], n - 1);
  assert_int_equal(s->node_id[n - 1], 2 * (n - 1) + 1);
  assert_true(s->file_size > (valgrind ? 1000000u : 4u << 20));
  assert_int_equal(hs_dominators(s), 0);
  assert_int_equal(s->retained[1], 16ull * (n - 1));
  assert_int_equal(s->retained[n / 2], 16ull * (n - n / 2));
  assert_int_equal(s->idom[n - 1], n - 2);
  hs_snapshot_destroy(s);
  /* Truncate the file mid-way: error names the end offset. */
  assert_int_equal(truncate(path, 1000003), 0);
  s = NULL;
  rc = hs_snapshot_read(path, &ro, &s, err);
  assert_int_equal(rc, -EPROTO);
  assert_null(s);
  assert_non_null(strstr(err, "byte 1000003"));
  unlink(path);
  rc = hs_snapshot_read(path, &ro, &s, err);
  assert_int_equal(rc, -ENOENT);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reader_v8_order),
    cmocka_unit_test(test_reader_reversed_fields_and_extras),
    cmocka_unit_test(test_reader_string_escapes),
    cmocka_unit_test(test_reader_every_truncation_fails),
    cmocka_unit_test(test_reader_corrupt),
    cmocka_unit_test(test_reader_file_and_big_input),
  };
  return cmocka_run_group_tests_name("tools.reader", tests, NULL, NULL);
}
