/* json_bench.c -- in-process JSON parse and serialize throughput.
 *
 *   json_bench FILE [ITERATIONS] [heap flags]
 *
 * Reads FILE once, then ITERATIONS times (default 10): parses it into a
 * fresh handle scope (the previous result becomes garbage, as in a node loop
 * of JSON.parse) and serializes the result.  Prints one JSON line:
 * {"parse_ms":{"best":..,"median":..},"stringify_ms":{...},"bytes":N,
 * "out_bytes":M}.  The timing of each parse includes the GC work its
 * allocation causes, as node's does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tenure/rt.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  gc_options_t opt;
  gc_options_init(&opt);
  if (gc_options_from_env_and_argv(&opt, &argc, argv) < 0)
    return 2;
  if (argc < 2) {
    fprintf(stderr, "usage: json_bench FILE [ITERATIONS] [heap flags]\n");
    return 2;
  }
  int iters = argc > 2 ? atoi(argv[2]) : 10;
  if (iters < 1)
    iters = 1;
  FILE *f = fopen(argv[1], "rb");
  if (f == NULL) {
    perror(argv[1]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)len + 1);
  if (text == NULL || fread(text, 1, (size_t)len, f) != (size_t)len) {
    fprintf(stderr, "json_bench: cannot read %s\n", argv[1]);
    return 1;
  }
  fclose(f);

  gc_heap_t *h;
  rt_runtime_t *rt;
  if (gc_heap_create(&opt, &h) < 0 || rt_runtime_create(h, &rt) < 0)
    return 1;
  double *tp = calloc((size_t)iters, sizeof *tp);
  double *ts = calloc((size_t)iters, sizeof *ts);
  size_t out_bytes = 0;
  rt_strbuf_t out;
  rt_strbuf_init(&out);
  for (int i = 0; i < iters; i++) {
    gc_scope_t scope;
    gc_scope_open(h, &scope);
    rt_value_t *v = rt_handle(h, RT_UNDEFINED);
    rt_json_error_t err;
    double t0 = now_ms();
    int rc = rt_json_parse(rt, text, (size_t)len, NULL, v, &err);
    double t1 = now_ms();
    if (rc < 0) {
      fprintf(stderr, "json_bench: byte %zu: expected %s\n", err.offset,
              err.expected);
      return 1;
    }
    out.len = 0;
    rc = rt_json_stringify(rt, *v, NULL, &out);
    double t2 = now_ms();
    if (rc < 0) {
      fprintf(stderr, "json_bench: stringify: %s\n", rt_strerror(rc));
      return 1;
    }
    out_bytes = out.len;
    tp[i] = t1 - t0;
    ts[i] = t2 - t1;
    gc_scope_close(h, &scope);
  }
  qsort(tp, (size_t)iters, sizeof *tp, cmp);
  qsort(ts, (size_t)iters, sizeof *ts, cmp);
  printf("{\"parse_ms\":{\"best\":%.2f,\"median\":%.2f},"
         "\"stringify_ms\":{\"best\":%.2f,\"median\":%.2f},"
         "\"bytes\":%ld,\"out_bytes\":%zu}\n",
         tp[0], tp[iters / 2], ts[0], ts[iters / 2], len, out_bytes);
  if (getenv("JSON_BENCH_OUT")) {
    FILE *o = fopen(getenv("JSON_BENCH_OUT"), "wb");
    if (o) {
      fwrite(out.data, 1, out.len, o);
      fclose(o);
    }
  }
  rt_strbuf_free(&out);
  free(tp);
  free(ts);
  free(text);
  rt_runtime_destroy(rt);
  return 0;
}
