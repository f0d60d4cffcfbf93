/* fuzz_json.c -- libFuzzer harness for the runtime's JSON parser and
 * serializer.
 *
 * For each input: parse it (must return 0 or a clean error with an offset
 * inside the input); if it parsed, serialize it, parse the text again and
 * serialize again: the two texts must be equal (the serializer's output is
 * a fixed point), and the first must be valid UTF-8.  A small new space
 * makes GCs happen inside the parser; every 256 inputs a full GC with heap
 * verification checks the values left behind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/rt.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static rt_runtime_t *rt;
static gc_heap_t *heap;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  gc_options_t o;
  gc_options_init(&o);
  o.max_semi_space_size = 256 * 1024;
  o.min_semi_space_size = 64 * 1024;
  o.max_old_space_size = (size_t)512 << 20;
  if (gc_heap_create(&o, &heap) < 0 || rt_runtime_create(heap, &rt) < 0)
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned long runs;
  gc_scope_t s;
  gc_scope_open(heap, &s);
  rt_value_t *v = rt_handle(heap, RT_UNDEFINED);
  rt_json_error_t err = {0, NULL};
  rt_json_options_t opt = {.max_depth = 200};
  int rc = rt_json_parse(rt, (const char *)data, size, &opt, v, &err);
  if (rc < 0) {
    if (rc != -EINVAL && rc != -E2BIG)
      abort();
    if (err.offset > size || err.expected == NULL)
      abort();
  } else {
    rt_strbuf_t a, b;
    rt_strbuf_init(&a);
    rt_strbuf_init(&b);
    if (rt_json_stringify(rt, *v, &opt, &a) < 0)
      abort();
    if (rt_utf8_valid_prefix(a.data, a.len) != a.len)
      abort();
    rt_value_t *w = rt_handle(heap, RT_UNDEFINED);
    if (rt_json_parse(rt, a.data, a.len, &opt, w, &err) < 0)
      abort();
    if (rt_json_stringify(rt, *w, &opt, &b) < 0)
      abort();
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
      abort();
    rt_strbuf_free(&a);
    rt_strbuf_free(&b);
  }
  gc_scope_close(heap, &s);
  if (++runs % 256 == 0) {
    gc_collect(heap, GC_COLLECT_FULL);
    if (gc_verify(heap) < 0)
      abort();
  }
  return 0;
}
