/* heapgrow.c -- allocates without bound, as a leaking server would, until
 * the heap limit stops it.  The tenure version of node's
 *   node --max-old-space-size=64 -e 'let a=[];for(;;)a.push(new Array(1000).fill(1))'
 *
 * usage: heapgrow [heap flags] [--null]
 * Every 1 MB of live arrays it prints "live MB: N" on stdout (flushed), so a
 * caller can tell how far it got.  By default the heap-limit failure is the
 * fatal error (exit status 134); with --null the heap returns NULL instead
 * and the program prints "allocation failed at N MB" and exits 3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/gc.h>

typedef struct chunk {
  struct chunk *next;
  size_t len;
  void *items[1000];
} chunk_t;

static void chunk_trace(void *obj, gc_visitor_t *v) {
  chunk_t *c = obj;
  GC_VISIT(v, &c->next, GC_EDGE_PROP("next"));
  for (size_t i = 0; i < c->len; i++)
    GC_VISIT(v, &c->items[i], GC_EDGE_ELEM(i));
}

static const gc_type_t chunk_type = {
    .name = "Array", .size = sizeof(chunk_t), .trace = chunk_trace};

int main(int argc, char **argv) {
  gc_options_t opt;
  gc_options_init(&opt);
  if (gc_options_from_env_and_argv(&opt, &argc, argv) < 0)
    return 2;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--null") == 0)
      opt.null_on_oom = true;
  gc_heap_t *h;
  if (gc_heap_create(&opt, &h) < 0)
    return 1;
  gc_type_register(h, &chunk_type);
  gc_scope_t s;
  gc_scope_open(h, &s);
  chunk_t **list = (chunk_t **)gc_handle(h, NULL);
  size_t bytes = 0, reported = 0;
  for (;;) {
    chunk_t *c = gc_alloc(h, &chunk_type, sizeof(chunk_t));
    if (c == NULL) {
      printf("allocation failed at %zu MB\n", bytes >> 20);
      gc_scope_close(h, &s);
      gc_heap_destroy(h);
      return 3;
    }
    /* Small integers, tagged, as Array(1000).fill(1) holds. */
    c->len = 1000;
    for (size_t i = 0; i < 1000; i++)
      c->items[i] = (void *)(uintptr_t)((1 << 1) | 1);
    gc_write(h, c, &c->next, *list);
    *list = c;
    bytes += sizeof(chunk_t);
    if ((bytes >> 20) > reported) {
      reported = bytes >> 20;
      printf("live MB: %zu\n", reported);
      fflush(stdout);
    }
  }
}
