/* fuzz_urlencoded.c -- libFuzzer harness for form bodies and query strings.
 *
 * The first byte chooses the options (bit 0: nested keys; bits 1-3: the
 * depth limit), the rest is the body.  Every pair the byte layer reports
 * must lie within the input's size; a body that parses must serialize, and
 * the serialized text must parse back to the same Map (compared as JSON
 * text, which is exact for strings).  The read back allows one level more:
 * a one-element Array at the deepest level is written "k[]=v".
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/rt.h>
#include <tenure/rt_json.h>
#include <tenure/rt_urlencoded.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rt_runtime_t *rt;

static int bounds(void *data, const char *k, size_t kl, const char *v,
                  size_t vl) {
  size_t size = *(size_t *)data;
  if (kl + vl > size)
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (rt == NULL) {
    gc_options_t o;
    gc_options_init(&o);
    gc_heap_t *h = NULL;
    if (gc_heap_create(&o, &h) != 0 || rt_runtime_create(h, &rt) != 0)
      abort();
  }
  if (size == 0)
    return 0;
  rt_urlencoded_opts_t o;
  rt_urlencoded_opts_init(&o);
  o.nested = data[0] & 1;
  o.max_depth = (data[0] >> 1) & 7;
  o.max_keys = 100000;
  const char *s = (const char *)data + 1;
  size_t n = size - 1;
  if (rt_urlencoded_each(s, n, bounds, &n) != 0)
    abort();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *a = rt_handle(h, RT_NONE), *b = rt_handle(h, RT_NONE);
  const char *why = NULL;
  int err = rt_urlencoded_parse(rt, s, n, &o, a, &why);
  if (err != 0) {
    /* Only the nested rules refuse input. */
    if (!o.nested || why == NULL || (err != -E2BIG && err != -EINVAL))
      abort();
  } else {
    rt_strbuf_t q, ja, jb;
    rt_strbuf_init(&q);
    rt_strbuf_init(&ja);
    rt_strbuf_init(&jb);
    if (rt_urlencoded_serialize(*a, o.nested, &q) != 0)
      abort(); /* everything the parser makes can be written */
    o.max_depth++;
    if (rt_urlencoded_parse(rt, q.data, q.len, &o, b, &why) != 0)
      abort();
    if (rt_json_stringify(rt, *a, NULL, &ja) != 0 ||
        rt_json_stringify(rt, *b, NULL, &jb) != 0)
      abort();
    if (ja.len != jb.len || memcmp(ja.data, jb.data, ja.len) != 0)
      abort(); /* what we write does not read back */
    rt_strbuf_free(&q);
    rt_strbuf_free(&ja);
    rt_strbuf_free(&jb);
  }
  gc_scope_close(h, &sc);
  return 0;
}
