/* test_buffer.c -- off-heap buffers, slices, external memory accounting
 * and the streaming UTF-8 decoder (runtime.buffer). */
#include <string.h>

#include "rt_test.h"

static long frees;
static size_t freed_bytes;

static void count_free(void *data, size_t size) {
  frees++;
  freed_bytes += size;
}

static void test_buffer_finalizer_runs_once(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  rt_buffer_set_free_hook(rt, count_free);
  frees = 0;
  freed_bytes = 0;
  long n = test_scale(1000, 100);
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *keep = rt_handle(h, rt_buffer_from(rt, "keep me", 7));
  for (long i = 0; i < n; i++)
    assert_true(rt_buffer_new(rt, 1000) != RT_NONE);
  rt_memory_usage_t mu;
  rt_memory_usage(rt, &mu);
  assert_true(mu.array_buffers <= 7 + 1000 * (size_t)n);
  gc_collect(h, GC_COLLECT_FULL);
  gc_collect(h, GC_COLLECT_FULL);
  assert_int_equal(frees, n);
  assert_int_equal(freed_bytes, 1000 * (size_t)n);
  rt_memory_usage(rt, &mu);
  assert_int_equal(mu.array_buffers, 7);
  assert_int_equal(mu.external, 7);
  assert_memory_equal(rt_buffer_data(*keep), "keep me", 7);
  gc_heap_stats_t st = test_stats(h);
  assert_int_equal(st.external_memory, 7);
  gc_scope_close(h, &s);
  /* The last one is freed exactly once, by the heap's destruction. */
  rt_runtime_destroy(rt);
  assert_int_equal(frees, n + 1);
}

static void test_slice_keeps_bytes_alive(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  rt_buffer_set_free_hook(rt, count_free);
  frees = 0;
  gc_scope_t s;
  gc_scope_open(h, &s);
  rt_value_t *slice;
  {
    gc_scope_t in;
    gc_scope_open(h, &in);
    rt_value_t *b = rt_handle(h, rt_buffer_from(rt, "0123456789", 10));
    rt_value_t *s1 = rt_handle(h, rt_buffer_slice(rt, b, 2, 8));
    rt_value_t sl = rt_buffer_slice(rt, s1, 1, 100); /* clamped: "34567" */
    slice = (rt_value_t *)gc_scope_close_escape(h, &in, (void *)sl);
  }
  for (int i = 0; i < 3; i++)
    gc_collect(h, i == 1 ? GC_COLLECT_MINOR : GC_COLLECT_FULL);
  assert_int_equal(frees, 0);
  assert_int_equal(rt_buffer_length(*slice), 5);
  assert_memory_equal(rt_buffer_data(*slice), "34567", 5);
  /* Writes through a slice are seen by the others. */
  rt_buffer_data(*slice)[0] = 'X';
  rt_value_t *str = rt_handle(h, rt_buffer_to_string(rt, slice));
  assert_string_equal(rt_string_data(*str), "X4567");
  *slice = RT_UNDEFINED;
  gc_collect(h, GC_COLLECT_FULL);
  gc_collect(h, GC_COLLECT_FULL);
  assert_int_equal(frees, 1);
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
  assert_int_equal(frees, 1);
}

static void test_string_buffer_round_trip(void **state) {
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t s;
  gc_scope_open(h, &s);
  const char *text = "Grüße, 世界! 😀";
  rt_value_t *str = rt_handle(h, rt_string_cstr(rt, text));
  rt_value_t *buf = rt_handle(h, rt_buffer_from_string(rt, str));
  assert_int_equal(rt_buffer_length(*buf), strlen(text));
  rt_value_t *back = rt_handle(h, rt_buffer_to_string(rt, buf));
  assert_string_equal(rt_string_data(*back), text);
  /* A slice that cuts a character: the cut bytes become U+FFFD. */
  rt_value_t *cut = rt_handle(h, rt_buffer_slice(rt, buf, 0, 3));
  rt_value_t *cs = rt_handle(h, rt_buffer_to_string(rt, cut));
  assert_string_equal(rt_string_data(*cs), "Gr\xef\xbf\xbd");
  gc_scope_close(h, &s);
  rt_runtime_destroy(rt);
}

/* Decodes P[0..N) in chunks split at the positions in CUTS. */
static char *decode_split(const char *p, size_t n, const size_t *cuts,
                          int ncuts, size_t *outlen) {
  rt_utf8_decoder_t d;
  rt_strbuf_t b;
  rt_utf8_decoder_init(&d);
  rt_strbuf_init(&b);
  size_t at = 0;
  for (int i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : n;
    assert_int_equal(rt_utf8_decode(&d, p + at, end - at, i == ncuts, &b), 0);
    at = end;
  }
  rt_strbuf_append(&b, "", 1);
  *outlen = b.len - 1;
  return b.data;
}

static void test_utf8_split_at_every_position(void **state) {
  /* 1-, 2-, 3- and 4-byte characters back to back. */
  const char *text = "aé€😀b日本ß🚀€z";
  size_t n = strlen(text), len;
  for (size_t i = 0; i <= n; i++) {
    char *out = decode_split(text, n, &i, 1, &len);
    assert_int_equal(len, n);
    assert_string_equal(out, text);
    free(out);
    /* And every second cut after the first: three chunks. */
    for (size_t j = i; j <= n; j++) {
      size_t cuts[2] = {i, j};
      out = decode_split(text, n, cuts, 2, &len);
      assert_string_equal(out, text);
      free(out);
    }
  }
  /* One byte at a time. */
  size_t cuts[64];
  for (size_t i = 0; i < n; i++)
    cuts[i] = i;
  char *out = decode_split(text, n, cuts, (int)n, &len);
  assert_string_equal(out, text);
  free(out);
}

static void test_utf8_invalid_is_replaced_the_same_in_chunks(void **state) {
  /* Ill-formed input: a lone continuation byte, a truncated 3-byte
   * sequence, an overlong form, a surrogate, a 4-byte sequence cut by
   * ASCII, and a truncated sequence at the end. */
  const char bad[] = "A\x80" "B\xe2\x82" "C\xc0\xaf" "D\xed\xa0\x80"
                     "E\xf0\x9f\x98" "F\xe2\x82\xac\xf0\x9f";
  size_t n = sizeof bad - 1, len0, len;
  char *whole = decode_split(bad, n, NULL, 0, &len0);
  /* The expected replacement, one U+FFFD per maximal subpart. */
  const char *R = "\xef\xbf\xbd";
  char expect[128];
  snprintf(expect, sizeof expect, "A%sB%sC%s%sD%s%s%sE%sF\xe2\x82\xac%s", R,
           R, R, R, R, R, R, R, R);
  assert_string_equal(whole, expect);
  for (size_t i = 0; i <= n; i++) {
    for (size_t j = i; j <= n; j++) {
      size_t cuts[2] = {i, j};
      char *out = decode_split(bad, n, cuts, 2, &len);
      assert_int_equal(len, len0);
      assert_string_equal(out, whole);
      free(out);
    }
  }
  free(whole);
  assert_int_equal(rt_utf8_valid_prefix(bad, n), 1);
  assert_int_equal(rt_utf8_valid_prefix("héllo", 6), 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buffer_finalizer_runs_once),
      cmocka_unit_test(test_slice_keeps_bytes_alive),
      cmocka_unit_test(test_string_buffer_round_trip),
      cmocka_unit_test(test_utf8_split_at_every_position),
      cmocka_unit_test(test_utf8_invalid_is_replaced_the_same_in_chunks),
  };
  return cmocka_run_group_tests_name("runtime.buffer", tests, NULL, NULL);
}
