/* test_cookie.c -- the Cookie header, Set-Cookie values, signed cookies. */
#include <string.h>

#include "rt_test.h"

#include <tenure/rt_cookie.h>

typedef struct pairs {
  char out[1024];
} pairs_t;

static int collect(void *data, const char *n, size_t nl, const char *v,
                   size_t vl) {
  pairs_t *p = data;
  size_t k = strlen(p->out);
  snprintf(p->out + k, sizeof p->out - k, "[%.*s=%.*s]", (int)nl, n, (int)vl,
           v);
  return 0;
}

static void check(const char *hdr, const char *want) {
  pairs_t p = {{0}};
  assert_int_equal(rt_cookie_each(hdr, strlen(hdr), collect, &p), 0);
  assert_string_equal(p.out, want);
}

static void test_cookie_parse_rules(void **state) {
  (void)state;
  check("a=1; b=2", "[a=1][b=2]");
  check("  a = 1 ;b=2;;", "[a=1][b=2]");
  check("q=\"quoted value\"; e=", "[q=quoted value][e=]");
  check("p=a%20b%3Bc; u=%E2%82%AC", "[p=a b;c][u=\xE2\x82\xAC]");
  /* Malformed escapes: kept as written; escapes decode to bytes. */
  check("m=100%; x=%zz; y=%FF", "[m=100%][x=%zz][y=\xFF]");
  /* Pairs without '=' or with an empty name are skipped; '=' in a value
   * is part of it. */
  check("novalue; =x; k=v=w; ;", "[k=v=w]");
  check("", "");
}

static void test_cookie_parse_map(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  const char *hdr = "sid=abc; theme=dark; sid=second; long=%41%42";
  rt_value_t *m = rt_handle(h, rt_cookie_parse(rt, hdr, strlen(hdr)));
  assert_true(rt_is_map(*m));
  assert_int_equal(rt_map_size(*m), 3);
  gc_collect(h, GC_COLLECT_FULL);
  assert_true(rt_string_equal_cstr(rt_map_get_cstr(*m, "sid"), "abc"));
  assert_true(rt_string_equal_cstr(rt_map_get_cstr(*m, "theme"), "dark"));
  assert_true(rt_string_equal_cstr(rt_map_get_cstr(*m, "long"), "AB"));
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

static void test_cookie_serialize(void **state) {
  (void)state;
  char buf[512];
  rt_cookie_opts_t o;
  rt_cookie_opts_init(&o);
  assert_int_equal(rt_cookie_serialize(buf, sizeof buf, "a", "b", 1, &o), 3);
  assert_string_equal(buf, "a=b");
  o.path = "/";
  o.domain = "example.com";
  o.max_age = 600;
  o.expires = 1700000000; /* 2023-11-14T22:13:20Z */
  o.http_only = true;
  o.same_site = RT_SAME_SITE_LAX;
  const char *v = "x y;\"\\,\xe2\x82\xac%";
  assert_true(rt_cookie_serialize(buf, sizeof buf, "sid", v, strlen(v), &o) > 0);
  assert_string_equal(buf, "sid=x%20y%3B%22%5C%2C%E2%82%AC%25; Max-Age=600; "
                           "Domain=example.com; Path=/; Expires=Tue, 14 Nov "
                           "2023 22:13:20 GMT; HttpOnly; SameSite=Lax");
  /* What it writes, the parser reads back. */
  pairs_t p = {{0}};
  rt_cookie_each(buf, strcspn(buf, ";"), collect, &p);
  assert_string_equal(p.out, "[sid=x y;\"\\,\xe2\x82\xac%]");
  /* SameSite=None forces Secure. */
  rt_cookie_opts_init(&o);
  o.same_site = RT_SAME_SITE_NONE;
  assert_true(rt_cookie_serialize(buf, sizeof buf, "a", "b", 1, &o) > 0);
  assert_string_equal(buf, "a=b; Secure; SameSite=None");
  /* Refused: a name that is no token, header injection through attributes;
   * too small a buffer. */
  rt_cookie_opts_init(&o);
  assert_int_equal(rt_cookie_serialize(buf, sizeof buf, "a b", "v", 1, &o),
                   -EINVAL);
  assert_int_equal(rt_cookie_serialize(buf, sizeof buf, "a\r\nX", "v", 1, &o),
                   -EINVAL);
  assert_int_equal(rt_cookie_serialize(buf, sizeof buf, "", "v", 1, &o),
                   -EINVAL);
  o.path = "/\r\nSet-Cookie: evil=1";
  assert_int_equal(rt_cookie_serialize(buf, sizeof buf, "a", "v", 1, &o),
                   -EINVAL);
  o.path = "/; Domain=evil";
  assert_int_equal(rt_cookie_serialize(buf, sizeof buf, "a", "v", 1, &o),
                   -EINVAL);
  rt_cookie_opts_init(&o);
  assert_int_equal(rt_cookie_serialize(buf, 4, "abc", "v", 1, &o), -ENOSPC);
}

static void test_cookie_sign_and_rotate(void **state) {
  (void)state;
  char buf[256];
  /* express's cookie-signature: sign('hello', 'tobiiscool') */
  int n = rt_cookie_sign(buf, sizeof buf, "hello", 5, "tobiiscool");
  assert_int_equal(n, 5 + 1 + 43);
  assert_string_equal(buf, "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI");
  const char *one[] = {"tobiiscool"};
  assert_int_equal(rt_cookie_unsign(buf, (size_t)n, one, 1), 5);
  /* Rotation: signed with an old secret, accepted while it is listed. */
  const char *rotated[] = {"new-secret", "tobiiscool"};
  assert_int_equal(rt_cookie_unsign(buf, (size_t)n, rotated, 2), 5);
  const char *dropped[] = {"new-secret"};
  assert_int_equal(rt_cookie_unsign(buf, (size_t)n, dropped, 1), -EACCES);
  /* Tampering with the value or the signature, or no signature at all. */
  char bad[256];
  memcpy(bad, buf, (size_t)n + 1);
  bad[0] = 'j';
  assert_int_equal(rt_cookie_unsign(bad, (size_t)n, one, 1), -EACCES);
  memcpy(bad, buf, (size_t)n + 1);
  bad[n - 1] ^= 1;
  assert_int_equal(rt_cookie_unsign(bad, (size_t)n, one, 1), -EACCES);
  assert_int_equal(rt_cookie_unsign(buf, (size_t)n - 1, one, 1), -EACCES);
  assert_int_equal(rt_cookie_unsign("hello", 5, one, 1), -EACCES);
  /* A value with dots is signed after its last one. */
  n = rt_cookie_sign(buf, sizeof buf, "a.b.c", 5, "k");
  assert_int_equal(rt_cookie_unsign(buf, (size_t)n, (const char *[]){"k"}, 1),
                   5);
  assert_int_equal(rt_cookie_sign(buf, 10, "hello", 5, "k"), -ENOSPC);
  assert_int_equal(rt_cookie_sign(buf, sizeof buf, "hello", 5, ""), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cookie_parse_rules),
      cmocka_unit_test(test_cookie_parse_map),
      cmocka_unit_test(test_cookie_serialize),
      cmocka_unit_test(test_cookie_sign_and_rotate),
  };
  return cmocka_run_group_tests_name("runtime.cookie", tests, NULL, NULL);
}
