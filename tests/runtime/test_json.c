/* test_json.c -- the JSON parser and serializer (runtime.json): a corpus of
 * valid documents with their canonical serialization, invalid ones with the
 * exact error offset, deep nesting, huge numbers, and round trips. */
#include <math.h>
#include <string.h>

#include "rt_test.h"

static rt_runtime_t *rt;

static int setup(void **state) {
  rt = rt_test_runtime();
  return 0;
}

static int teardown(void **state) {
  rt_runtime_destroy(rt);
  return 0;
}

/* Parses TEXT and returns its serialization (malloc'd), or NULL. */
static char *reserialize(const char *text, size_t len) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *v = rt_handle(h, RT_UNDEFINED);
  rt_json_error_t err;
  int rc = rt_json_parse(rt, text, len, NULL, v, &err);
  if (rc != 0) {
    print_error("parse failed at %zu: expected %s\n", err.offset,
                err.expected);
    gc_scope_close(h, &s);
    return NULL;
  }
  /* Collect between parsing and writing: everything must be rooted. */
  gc_collect(h, GC_COLLECT_MINOR);
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  assert_int_equal(rt_json_stringify(rt, *v, NULL, &b), 0);
  rt_strbuf_append(&b, "", 1);
  gc_scope_close(h, &s);
  return b.data;
}

static const struct {
  const char *in, *out;
} valid[] = {
    {"[]", "[]"},
    {"{}", "{}"},
    {" \t\r\n[ 1 , 2 ]\n", "[1,2]"},
    {"0", "0"},
    {"-12", "-12"},
    {"\"\"", "\"\""},
    {"[true,false,null]", "[true,false,null]"},
    {"{\"a\":1,\"b\":[true,{}],\"a\":2}", "{\"a\":2,\"b\":[true,{}]}"},
    {"{\"k\":{\"k\":{\"k\":[[[]]]}}}", "{\"k\":{\"k\":{\"k\":[[[]]]}}}"},
    {"\"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\\b\\f\\r\\t\"",
     "\"\xc3\xa9\xf0\x9f\x98\x80\\n\\\"\\\\/\\b\\f\\r\\t\""},
    {"\"\\u0001\\u001f\\u007f\"", "\"\\u0001\\u001f\x7f\""},
    {"\"\\ud800x\"", "\"\xef\xbf\xbdx\""},       /* lone high surrogate */
    {"\"\\udc00\\ud800\"", "\"\xef\xbf\xbd\xef\xbf\xbd\""},
    {"\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80\"",
     "\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80\""},
    {"-0", "0"},
    {"[1.0,1E2,1e-2,0.1,-0.5,2.5e+3]", "[1,100,0.01,0.1,-0.5,2500]"},
    {"[1e400,-1e400]", "[null,null]"},
    {"4611686018427387903", "4611686018427387903"},
    {"-4611686018427387903", "-4611686018427387903"},
    {"123456789012345678901234567890", "1.2345678901234568e+29"},
    {"0.30000000000000004", "0.30000000000000004"},
    {"[1e-7,5e-324,1.7976931348623157e308]",
     "[1e-7,5e-324,1.7976931348623157e+308]"},
    {"{\"1\":1,\"x\":[],\"\":\"\"}", "{\"1\":1,\"x\":[],\"\":\"\"}"},
    {"12.345678", "12.345678"},
    {"9007199254740993", "9007199254740993"},
    {"0.000000000000000000000000000000000000000001", "1e-42"},
};

static void test_json_valid_corpus(void **state) {
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
    char *out = reserialize(valid[i].in, strlen(valid[i].in));
    assert_non_null(out);
    if (strcmp(out, valid[i].out) != 0)
      print_error("case %zu: %s -> %s (expected %s)\n", i, valid[i].in, out,
                  valid[i].out);
    assert_string_equal(out, valid[i].out);
    free(out);
  }
}

static const struct {
  const char *in;
  size_t offset;
  int rc;
} invalid[] = {
    {"", 0, -EINVAL},
    {"   ", 3, -EINVAL},
    {"[1,2", 4, -EINVAL},
    {"[1,]", 3, -EINVAL},
    {"[1 2]", 3, -EINVAL},
    {"{\"a\":1,}", 7, -EINVAL},
    {"{\"a\" 1}", 5, -EINVAL},
    {"{\"a\":}", 5, -EINVAL},
    {"{1:2}", 1, -EINVAL},
    {"{\"a\":1", 6, -EINVAL},
    {"[01]", 2, -EINVAL},
    {"tru", 3, -EINVAL},
    {"trux", 3, -EINVAL},
    {"nul", 3, -EINVAL},
    {"True", 0, -EINVAL},
    {"\"abc", 4, -EINVAL},
    {"\"a\\x\"", 3, -EINVAL},
    {"\"\\u12G4\"", 5, -EINVAL},
    {"\"\\u12", 5, -EINVAL},
    {"\"\\", 2, -EINVAL},
    {"\"a\x01" "b\"", 2, -EINVAL},
    {"\"a\nb\"", 2, -EINVAL},
    {"\"\xff\"", 1, -EINVAL},
    {"\"ab\xc3\"", 3, -EINVAL},
    {"\"\xed\xa0\x80\"", 1, -EINVAL}, /* an encoded surrogate */
    {"\"\xc0\xaf\"", 1, -EINVAL},     /* overlong */
    {"-", 1, -EINVAL},
    {"-x", 1, -EINVAL},
    {"1.", 2, -EINVAL},
    {"1.e3", 2, -EINVAL},
    {"1e", 2, -EINVAL},
    {"1e+", 3, -EINVAL},
    {"[1] x", 4, -EINVAL},
    {".5", 0, -EINVAL},
    {"+1", 0, -EINVAL},
    {"NaN", 0, -EINVAL},
    {"Infinity", 0, -EINVAL},
    {"[\"a\"\"b\"]", 4, -EINVAL},
    {"{\"a\":1}}", 7, -EINVAL},
    {"[1]]", 3, -EINVAL},
    {"\xef\xbb\xbf[]", 0, -EINVAL}, /* a BOM is not JSON (JSON.parse agrees) */
};

static void test_json_invalid_corpus_offsets(void **state) {
  gc_heap_t *h = rt_heap(rt);
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    gc_scope_t s;
    gc_scope_open(h, &s);
    rt_value_t *v = rt_handle(h, RT_UNDEFINED);
    rt_json_error_t err = {0, NULL};
    int rc = rt_json_parse(rt, invalid[i].in, strlen(invalid[i].in), NULL, v,
                           &err);
    if (rc != invalid[i].rc || err.offset != invalid[i].offset)
      print_error("case %zu (%s): rc %d offset %zu expected %s\n", i,
                  invalid[i].in, rc, err.offset, err.expected);
    assert_int_equal(rc, invalid[i].rc);
    assert_int_equal(err.offset, invalid[i].offset);
    assert_non_null(err.expected);
    gc_scope_close(h, &s);
  }
  /* Input that is not NUL-terminated: the parser stops at LEN. */
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *v = rt_handle(h, RT_UNDEFINED);
  rt_json_error_t err;
  assert_int_equal(rt_json_parse(rt, "[12345]", 3, NULL, v, &err), -EINVAL);
  assert_int_equal(err.offset, 3);
  assert_int_equal(rt_json_parse(rt, "12345", 3, NULL, v, &err), 0);
  assert_int_equal(rt_int_value(*v), 123);
  gc_scope_close(h, &s);
}

static void test_json_deep_nesting_is_an_error(void **state) {
  gc_heap_t *h = rt_heap(rt);
  size_t depth = 100000;
  char *doc = malloc(2 * depth + 1);
  memset(doc, '[', depth);
  memset(doc + depth, ']', depth);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *v = rt_handle(h, RT_UNDEFINED);
  rt_json_error_t err;
  assert_int_equal(rt_json_parse(rt, doc, 2 * depth, NULL, v, &err), -E2BIG);
  assert_int_equal(err.offset, RT_JSON_DEFAULT_DEPTH);
  /* The same with objects, and with a configured limit. */
  char *obj = malloc(5 * depth);
  for (size_t i = 0; i < depth; i++)
    memcpy(obj + 5 * i, "{\"a\":", 5);
  assert_int_equal(rt_json_parse(rt, obj, 5 * depth, NULL, v, &err), -E2BIG);
  assert_int_equal(err.offset, 5 * RT_JSON_DEFAULT_DEPTH);
  free(obj);
  rt_json_options_t o = {.max_depth = 5};
  assert_int_equal(rt_json_parse(rt, "[[[[[1]]]]]", 11, &o, v, &err), 0);
  assert_int_equal(rt_json_parse(rt, "[[[[[[1]]]]]]", 13, &o, v, &err),
                   -E2BIG);
  assert_int_equal(err.offset, 5);
  /* Exactly the default limit parses and serializes; a hundred thousand
   * levels of nesting (unclosed) are rejected without recursion. */
  size_t d = RT_JSON_DEFAULT_DEPTH;
  memset(doc, '[', d);
  memset(doc + d, ']', d);
  assert_int_equal(rt_json_parse(rt, doc, 2 * d, NULL, v, &err), 0);
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  assert_int_equal(rt_json_stringify(rt, *v, NULL, &b), 0);
  assert_int_equal(b.len, 2 * d);
  assert_memory_equal(b.data, doc, 2 * d);
  rt_strbuf_free(&b);
  memset(doc, '[', depth);
  assert_int_equal(rt_json_parse(rt, doc, depth, NULL, v, &err), -E2BIG);
  gc_scope_close(h, &s);
  free(doc);
}

static void test_json_stringify_cycle_and_misc(void **state) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *a = rt_handle(h, rt_array_new(rt, 0));
  assert_int_equal(rt_array_push(rt, a, a), 0);
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  assert_int_equal(rt_json_stringify(rt, *a, NULL, &b), -ELOOP);
  assert_int_equal(rt_json_stringify(rt, RT_UNDEFINED, NULL, &b), -EINVAL);
  /* undefined: null in arrays, left out of maps; buffers as Node. */
  rt_value_t *arr = rt_handle(h, rt_array_new(rt, 0));
  rt_value_t u = RT_UNDEFINED;
  assert_int_equal(rt_array_push(rt, arr, &u), 0);
  rt_value_t *m = rt_handle(h, rt_map_new(rt, 0));
  rt_value_t *k1 = rt_handle(h, rt_string_cstr(rt, "gone"));
  rt_value_t *k2 = rt_handle(h, rt_string_cstr(rt, "buf"));
  rt_value_t *buf = rt_handle(h, rt_buffer_from(rt, "\x01\xff", 2));
  assert_int_equal(rt_map_set(rt, m, k1, &u), 0);
  assert_int_equal(rt_map_set(rt, m, k2, buf), 0);
  rt_value_t k3 = rt_int(42);
  assert_int_equal(rt_map_set(rt, m, &k3, arr), 0);
  b.len = 0;
  assert_int_equal(rt_json_stringify(rt, *m, NULL, &b), 0);
  rt_strbuf_append(&b, "", 1);
  assert_string_equal(b.data,
                      "{\"buf\":{\"type\":\"Buffer\",\"data\":[1,255]},"
                      "\"42\":[null]}");
  rt_strbuf_free(&b);
  gc_scope_close(h, &s);
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Every finite double is written in a form that reads back exactly. */
static void test_json_doubles_round_trip(void **state) {
  long n = test_scale(300000, 20000);
  char buf[40];
  for (long i = 0; i < n; i++) {
    double d;
    uint64_t bits = next_rand();
    switch (i % 4) {
    case 0:
      memcpy(&d, &bits, 8);
      break;
    case 1:
      d = (double)(bits % 100000000) / 1000000.0;
      break;
    case 2:
      d = (double)(bits >> 11) / 9007199254740992.0;
      break;
    default:
      d = ((double)(bits % 2000000) - 1e6) / 100.0;
    }
    if (!isfinite(d))
      continue;
    size_t len = rt_json_format_double(d, buf);
    assert_int_equal(strlen(buf), len);
    double back = strtod(buf, NULL);
    if (back != d && !(d == 0 && back == 0)) {
      print_error("%.17g -> %s\n", d, buf);
      fail();
    }
    if ((i % 4 == 1 || i % 4 == 3) && len > 12) {
      print_error("%.17g -> %s: not short\n", d, buf);
      fail();
    }
  }
  assert_int_equal(rt_json_format_double(0.1, buf), 3);
  assert_string_equal(buf, "0.1");
  rt_json_format_double(-1234.5, buf);
  assert_string_equal(buf, "-1234.5");
  rt_json_format_double(1e21, buf);
  assert_true(strtod(buf, NULL) == 1e21);
}

/* A generated document: parse, serialize, parse again, serialize again;
 * the two texts are equal (and the first equals the input, which is
 * written in canonical form). */
static void test_json_round_trip_document(void **state) {
  rt_strbuf_t doc;
  rt_strbuf_init(&doc);
  long n = test_scale(3000, 200);
  rt_strbuf_append_cstr(&doc, "[");
  for (long i = 0; i < n; i++) {
    char rec[512];
    snprintf(rec, sizeof rec,
             "%s{\"id\":%ld,\"name\":\"user \\\"%ld\\\" \xc3\xa9\xe6\x97\xa5"
             "\xf0\x9f\x98\x80\",\"score\":%ld.%02ld,\"tags\":[\"a\",\"b\\n\","
             "%ld],\"geo\":{\"lat\":-%ld.125,\"ok\":%s,\"none\":null},"
             "\"big\":%ld%s}",
             i ? "," : "", i, i, i % 1000, i % 100, -i, i % 90,
             i % 3 ? "true" : "false", (i + 1) * 1000003, "000000000000000000000");
    rt_strbuf_append_cstr(&doc, rec);
  }
  rt_strbuf_append_cstr(&doc, "]");
  char *once = reserialize(doc.data, doc.len);
  assert_non_null(once);
  char *twice = reserialize(once, strlen(once));
  assert_non_null(twice);
  assert_string_equal(once, twice);
  free(once);
  free(twice);
  rt_strbuf_free(&doc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_valid_corpus),
      cmocka_unit_test(test_json_invalid_corpus_offsets),
      cmocka_unit_test(test_json_deep_nesting_is_an_error),
      cmocka_unit_test(test_json_stringify_cycle_and_misc),
      cmocka_unit_test(test_json_doubles_round_trip),
      cmocka_unit_test(test_json_round_trip_document),
  };
  return cmocka_run_group_tests_name("runtime.json", tests, setup, teardown);
}
