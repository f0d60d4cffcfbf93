/* test_urlencoded.c -- form bodies and query strings: node's querystring
 * rules, the key limit, nested keys, serializing and reading back. */
#include <string.h>

#include "rt_test.h"

#include <tenure/rt_json.h>
#include <tenure/rt_urlencoded.h>

/* --- The byte layer ----------------------------------------------------------- */

typedef struct pairs {
  char out[1024];
} pairs_t;

static int collect(void *data, const char *k, size_t kl, const char *v,
                   size_t vl) {
  pairs_t *p = data;
  size_t n = strlen(p->out);
  snprintf(p->out + n, sizeof p->out - n, "[%.*s=%.*s]", (int)kl, k, (int)vl,
           v);
  return 0;
}

static void check_each(const char *s, const char *want) {
  pairs_t p = {{0}};
  assert_int_equal(rt_urlencoded_each(s, strlen(s), collect, &p), 0);
  assert_string_equal(p.out, want);
}

static void test_each_rules(void **state) {
  (void)state;
  check_each("a=1&b=2", "[a=1][b=2]");
  /* '+' is a space; %2B a plus; escapes in keys too. */
  check_each("a+b=c+d%2Be&%41%62=%7e", "[a b=c d+e][Ab=~]");
  /* Malformed escapes stay as written, at the end too. */
  check_each("x=%zz&y=100%&z=%4&w=%%41", "[x=%zz][y=100%][z=%4][w=%A]");
  /* Empty pairs are skipped; no '=' means an empty value; an empty key is
   * kept; '=' in a value is part of it; ';' separates nothing. */
  check_each("&&a&=b&=&c==d&;x=1;y&", "[a=][=b][=][c==d][;x=1;y]");
  check_each("", "");
  check_each("&", "");
  /* Bytes, not yet UTF-8. */
  check_each("k=%FF%00", "[k=\xff]"); /* %00: a NUL byte (printf stops) */
}

static int stop_at_two(void *data, const char *k, size_t kl, const char *v,
                       size_t vl) {
  int *n = data;
  return ++*n == 2 ? 42 : 0;
}

static void test_each_stops(void **state) {
  (void)state;
  int n = 0;
  assert_int_equal(rt_urlencoded_each("a&b&c", 5, stop_at_two, &n), 42);
  assert_int_equal(n, 2);
}

/* --- Parsing into Maps ------------------------------------------------------------ */

/* Parses S with O and compares the JSON text of the Map with WANT (or the
 * error with WANT_ERR). */
static void check_parse_opts(rt_runtime_t *rt, const char *s,
                             const rt_urlencoded_opts_t *o, int want_err,
                             const char *want) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *out = rt_handle(h, RT_UNDEFINED);
  const char *why = NULL;
  int err = rt_urlencoded_parse(rt, s, strlen(s), o, out, &why);
  if (err != want_err)
    fail_msg("%s: got %d (%s), want %d", s, err, why ? why : "-", want_err);
  if (err == 0) {
    assert_null(why);
    assert_true(rt_is_map(*out));
    rt_strbuf_t b;
    rt_strbuf_init(&b);
    assert_int_equal(rt_json_stringify(rt, *out, NULL, &b), 0);
    rt_strbuf_append(&b, "", 1);
    if (strcmp(b.data, want) != 0)
      fail_msg("%s: got %s, want %s", s, b.data, want);
    rt_strbuf_free(&b);
  } else {
    assert_int_equal(*out, RT_UNDEFINED); /* untouched */
    assert_non_null(why);
    if (want != NULL && strstr(why, want) == NULL)
      fail_msg("%s: message '%s' does not name '%s'", s, why, want);
  }
  gc_scope_close(h, &sc);
}

static void check_parse(rt_runtime_t *rt, const char *s, const char *want) {
  check_parse_opts(rt, s, NULL, 0, want);
}

static void test_parse_flat(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  check_parse(rt, "a=1&b=two+words", "{\"a\":\"1\",\"b\":\"two words\"}");
  /* Repeated keys: a string, then an Array of the values in order. */
  check_parse(rt, "a=1&b=x&a=2&a=3",
              "{\"a\":[\"1\",\"2\",\"3\"],\"b\":\"x\"}");
  check_parse(rt, "a&a=&a", "{\"a\":[\"\",\"\",\"\"]}");
  /* Empty keys as node's querystring: kept. */
  check_parse(rt, "=x&&=y&b", "{\"\":[\"x\",\"y\"],\"b\":\"\"}");
  check_parse(rt, "", "{}");
  /* Brackets are literal in flat mode. */
  check_parse(rt, "a[b]=1&a[]=2", "{\"a[b]\":\"1\",\"a[]\":\"2\"}");
  rt_runtime_destroy(rt);
}

static void test_parse_utf8(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  check_parse(rt, "eur=%E2%82%AC&raw=\xE2\x82\xAC", /* escaped and raw */
              "{\"eur\":\"\xE2\x82\xAC\",\"raw\":\"\xE2\x82\xAC\"}");
  /* Not UTF-8: U+FFFD per maximal invalid subpart, in keys too. */
  check_parse(rt, "a=%FF&b=%E2%82&%C3=x&c=\xFF",
              "{\"a\":\"\xEF\xBF\xBD\",\"b\":\"\xEF\xBF\xBD\","
              "\"\xEF\xBF\xBD\":\"x\",\"c\":\"\xEF\xBF\xBD\"}");
  /* A malformed escape next to a valid one. */
  check_parse(rt, "a=%%C3%A9%", "{\"a\":\"%\xC3\xA9%\"}");
  rt_runtime_destroy(rt);
}

/* "k0=0&k1=1&..." with N pairs, with EMPTY, two empty pairs before each. */
static char *many(size_t n, bool empty) {
  char *s = malloc(n * 24 + 1);
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    len += (size_t)sprintf(s + len, "%s%sk%zu=%zu", i ? "&" : "",
                           empty ? "&&" : "", i, i);
  return s;
}

static void test_parse_key_limit(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *out = rt_handle(h, RT_UNDEFINED);
  const char *why = NULL;
  /* Exactly the default limit (1000) passes, empty pairs not counted. */
  char *s = many(1000, true);
  assert_int_equal(rt_urlencoded_parse(rt, s, strlen(s), NULL, out, &why), 0);
  assert_int_equal(rt_map_size(*out), 1000);
  assert_true(rt_string_equal_cstr(rt_map_get_cstr(*out, "k999"), "999"));
  free(s);
  /* One more is an error naming the limit, not a truncated Map. */
  *out = RT_UNDEFINED;
  s = many(1001, false);
  assert_int_equal(rt_urlencoded_parse(rt, s, strlen(s), NULL, out, &why),
                   -E2BIG);
  assert_non_null(strstr(why, "max_keys"));
  assert_int_equal(*out, RT_UNDEFINED);
  free(s);
  /* Repeats of one key count too: it is pairs that are limited. */
  rt_urlencoded_opts_t o;
  rt_urlencoded_opts_init(&o);
  o.max_keys = 3;
  check_parse_opts(rt, "a=1&a=2&a=3", &o, 0, "{\"a\":[\"1\",\"2\",\"3\"]}");
  check_parse_opts(rt, "a=1&a=2&a=3&a=4", &o, -E2BIG, "max_keys");
  o.max_keys = 0;
  check_parse_opts(rt, "", &o, 0, "{}");
  check_parse_opts(rt, "&&", &o, 0, "{}");
  check_parse_opts(rt, "a", &o, -E2BIG, "max_keys");
  gc_scope_close(h, &sc);
  rt_runtime_destroy(rt);
}

static void test_parse_nested(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  rt_urlencoded_opts_t o;
  rt_urlencoded_opts_init(&o);
  o.nested = true;
  check_parse_opts(rt, "a[b]=1&a[c]=2&d=3", &o, 0,
                   "{\"a\":{\"b\":\"1\",\"c\":\"2\"},\"d\":\"3\"}");
  check_parse_opts(rt, "u[name][first]=Ann&u[name][last]=Lee&u[age]=3", &o,
                   0,
                   "{\"u\":{\"name\":{\"first\":\"Ann\",\"last\":\"Lee\"},"
                   "\"age\":\"3\"}}");
  /* "[]" appends (even once); repeats of a nested key make an Array. */
  check_parse_opts(rt, "a[]=1&a[]=2&b[]=x&c[d]=1&c[d]=2", &o, 0,
                   "{\"a\":[\"1\",\"2\"],\"b\":[\"x\"],\"c\":{\"d\":[\"1\","
                   "\"2\"]}}");
  check_parse_opts(rt, "a=1&a[]=2", &o, 0, "{\"a\":[\"1\",\"2\"]}");
  /* Indexes are keys; an empty root takes the first segment. */
  check_parse_opts(rt, "a[1]=x&a[0]=y&[r]=1&[s][t]=2", &o, 0,
                   "{\"a\":{\"1\":\"x\",\"0\":\"y\"},\"r\":\"1\","
                   "\"s\":{\"t\":\"2\"}}");
  /* Not of the shape: literal keys, nothing dropped. */
  check_parse_opts(rt, "a[b=1&a[b]c=2&a]b[c]=3&[]=4&a[b[c]]=5", &o, 0,
                   "{\"a[b\":\"1\",\"a[b]c\":\"2\",\"a]b[c]\":\"3\","
                   "\"[]\":\"4\",\"a[b[c]]\":\"5\"}");
  /* Escaped brackets are characters of a segment, '+' and escapes decode
   * in each segment. */
  check_parse_opts(rt, "a%5Bb%5D=1&x[y%5Dz]=2&p+q[r+s]=%41", &o, 0,
                   "{\"a[b]\":\"1\",\"x\":{\"y]z\":\"2\"},"
                   "\"p q\":{\"r s\":\"A\"}}");
  /* Depth: five groups pass, six are refused (qs's depth 5, strict). */
  check_parse_opts(rt, "a[1][2][3][4][5]=x", &o, 0,
                   "{\"a\":{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":\"x\"}}}}}}");
  check_parse_opts(rt, "a[1][2][3][4][5][6]=x", &o, -E2BIG, "max_depth");
  check_parse_opts(rt, "a[1][2][3][4][5][]=x", &o, -E2BIG, "max_depth");
  o.max_depth = 0;
  check_parse_opts(rt, "a[b]=1", &o, -E2BIG, "max_depth");
  check_parse_opts(rt, "[b]=1&c=2", &o, 0, "{\"b\":\"1\",\"c\":\"2\"}");
  o.max_depth = 40; /* beyond the segments kept on the stack */
  check_parse_opts(rt,
                   "a[1][2][3][4][5][6][7][8][9][10]=x&a[1][2][3][4][5][6]"
                   "[7][8][9][11]=y",
                   &o, 0,
                   "{\"a\":{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":{\"6\":{\"7\":{"
                   "\"8\":{\"9\":{\"10\":\"x\",\"11\":\"y\"}}}}}}}}}}}");
  o.max_depth = 5;
  /* Conflicts: a value and a map at one key, either order. */
  check_parse_opts(rt, "a=1&a[b]=2", &o, -EINVAL, "nested map");
  check_parse_opts(rt, "a[b]=2&a=1", &o, -EINVAL, "nested map");
  check_parse_opts(rt, "a[b]=2&a[]=1", &o, -EINVAL, "nested map");
  check_parse_opts(rt, "a[]=1&a[b]=2", &o, -EINVAL, "nested map");
  check_parse_opts(rt, "a[][b]=1", &o, -EINVAL, "'[]'");
  check_parse_opts(rt, "x[][]=1", &o, -EINVAL, "'[]'"); /* found by fuzzing */
  rt_runtime_destroy(rt);
}

/* Many pairs under GCs: every value stays where it was put. */
static void test_parse_under_gc(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_urlencoded_opts_t o;
  rt_urlencoded_opts_init(&o);
  o.nested = true;
  size_t n = (size_t)test_scale(5000, 800);
  o.max_keys = 2 * n - 1;
  char *s = malloc(n * 40 + 1);
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    len += (size_t)sprintf(s + len, "%sk%zu[v]=%zu&r=%zu", i ? "&" : "",
                           i % 7, i, i);
  rt_value_t *out = rt_handle(h, RT_NONE);
  assert_int_equal(rt_urlencoded_parse(rt, s, len, &o, out, NULL), -E2BIG);
  o.max_keys = 2 * n;
  assert_int_equal(rt_urlencoded_parse(rt, s, len, &o, out, NULL), 0);
  gc_collect(h, GC_COLLECT_FULL);
  rt_value_t r = rt_map_get_cstr(*out, "r");
  assert_int_equal(rt_array_length(r), n);
  for (size_t i = 0; i < n; i++) {
    char want[32];
    snprintf(want, sizeof want, "%zu", i);
    assert_true(rt_string_equal_cstr(rt_array_get(r, i), want));
  }
  rt_value_t k3 = rt_map_get_cstr(rt_map_get_cstr(*out, "k3"), "v");
  assert_true(rt_string_equal_cstr(rt_array_get(k3, 0), "3"));
  assert_true(rt_string_equal_cstr(rt_array_get(k3, 1), "10"));
  free(s);
  gc_scope_close(h, &sc);
  rt_runtime_destroy(rt);
}

/* --- Serializing -------------------------------------------------------------- */

static void check_serialize(rt_runtime_t *rt, rt_value_t map, bool nested,
                            int want_err, const char *want) {
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  assert_int_equal(rt_urlencoded_serialize(map, nested, &b), want_err);
  if (want_err == 0) {
    rt_strbuf_append(&b, "", 1);
    assert_string_equal(b.data, want);
  }
  rt_strbuf_free(&b);
}

/* Parse S, serialize, check the text is WANT and parses back to the same
 * Map (compared as JSON). */
static void round_trip(rt_runtime_t *rt, const char *s, bool nested,
                       const char *want) {
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_urlencoded_opts_t o;
  rt_urlencoded_opts_init(&o);
  o.nested = nested;
  rt_value_t *a = rt_handle(h, RT_NONE), *b = rt_handle(h, RT_NONE);
  assert_int_equal(rt_urlencoded_parse(rt, s, strlen(s), &o, a, NULL), 0);
  rt_strbuf_t q, ja, jb;
  rt_strbuf_init(&q);
  rt_strbuf_init(&ja);
  rt_strbuf_init(&jb);
  assert_int_equal(rt_urlencoded_serialize(*a, nested, &q), 0);
  rt_strbuf_append(&q, "", 1);
  if (want != NULL)
    assert_string_equal(q.data, want);
  assert_int_equal(rt_urlencoded_parse(rt, q.data, q.len - 1, &o, b, NULL),
                   0);
  assert_int_equal(rt_json_stringify(rt, *a, NULL, &ja), 0);
  assert_int_equal(rt_json_stringify(rt, *b, NULL, &jb), 0);
  assert_int_equal(ja.len, jb.len);
  assert_memory_equal(ja.data, jb.data, ja.len);
  rt_strbuf_free(&q);
  rt_strbuf_free(&ja);
  rt_strbuf_free(&jb);
  gc_scope_close(h, &sc);
}

static void test_serialize(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  /* encodeURIComponent's set: only A-Za-z0-9-_.!~*'() stay. */
  round_trip(rt, "a=%20%2B%26%3D%25%2F%3F%23%5B%5D%3B%2C%40%24%3A%22%3C%3E",
             false, "a=%20%2B%26%3D%25%2F%3F%23%5B%5D%3B%2C%40%24%3A%22%3C%3E");
  round_trip(rt, "x=-_.!~*'()Az09", false, "x=-_.!~*'()Az09");
  round_trip(rt, "e=%E2%82%AC+1&e=2&=v&k", false, "e=%E2%82%AC%201&e=2&=v&k=");
  round_trip(rt, "bad=%FF", false, "bad=%EF%BF%BD");
  round_trip(rt, "a[b]=1", false, "a%5Bb%5D=1");
  /* Nested: maps as brackets, Arrays repeated, one element as "[]". */
  round_trip(rt, "a[b]=1&a[c][]=2&a[d]=3&a[d]=4&e[]=5&f[x%5By]=6", true,
             "a[b]=1&a[c][]=2&a[d]=3&a[d]=4&e[]=5&f[x%5By]=6");
  round_trip(rt, "a%5Bb=1&=2&=3", true, "a%5Bb=1&=2&=3");
  /* Scalars other than strings; errors. */
  rt_value_t *m = rt_handle(h, rt_map_new(rt, 0));
  rt_value_t *k = rt_handle(h, rt_string_cstr(rt, "n"));
  rt_value_t *v = rt_handle(h, rt_int(-42));
  rt_map_set(rt, m, k, v);
  *k = rt_int(7);
  *v = rt_number(rt, 1.5);
  rt_map_set(rt, m, k, v);
  *k = rt_string_cstr(rt, "t");
  *v = RT_TRUE;
  rt_map_set(rt, m, k, v);
  *k = rt_string_cstr(rt, "z");
  *v = RT_NULL;
  rt_map_set(rt, m, k, v);
  *k = rt_string_cstr(rt, "arr");
  *v = rt_array_new(rt, 0);
  rt_map_set(rt, m, k, v);
  check_serialize(rt, *m, false, 0, "n=-42&7=1.5&t=true&z=");
  check_serialize(rt, *m, true, 0, "n=-42&7=1.5&t=true&z=");
  rt_value_t *inner = rt_handle(h, rt_map_new(rt, 0));
  *k = rt_string_cstr(rt, "q");
  rt_map_set(rt, inner, k, rt_handle(h, rt_int(1)));
  rt_map_set(rt, m, k, inner);
  check_serialize(rt, *m, false, -EINVAL, NULL); /* a Map, flat */
  check_serialize(rt, *m, true, 0, "n=-42&7=1.5&t=true&z=&q[q]=1");
  /* An Array inside an Array; an empty key with a Map; not a map. */
  rt_value_t *m2 = rt_handle(h, rt_map_new(rt, 0));
  rt_value_t *arr = rt_handle(h, rt_array_new(rt, 0));
  rt_array_push(rt, arr, arr);
  rt_map_set(rt, m2, k, arr);
  check_serialize(rt, *m2, true, -EINVAL, NULL);
  *m2 = rt_map_new(rt, 0);
  *k = rt_string_cstr(rt, "");
  rt_map_set(rt, m2, k, inner);
  check_serialize(rt, *m2, true, -EINVAL, NULL);
  check_serialize(rt, *k, false, -EINVAL, NULL);
  /* A Map holding itself is refused, not followed forever. */
  *k = rt_string_cstr(rt, "self");
  rt_map_set(rt, inner, k, inner);
  check_serialize(rt, *inner, true, -EINVAL, NULL);
  gc_scope_close(h, &sc);
  rt_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_rules),
      cmocka_unit_test(test_each_stops),
      cmocka_unit_test(test_parse_flat),
      cmocka_unit_test(test_parse_utf8),
      cmocka_unit_test(test_parse_key_limit),
      cmocka_unit_test(test_parse_nested),
      cmocka_unit_test(test_parse_under_gc),
      cmocka_unit_test(test_serialize),
  };
  return cmocka_run_group_tests_name("runtime.urlencoded", tests, NULL, NULL);
}
