/* alloc.c -- the collector's own memory: malloc for bookkeeping, mmap for
 * spaces.
 *
 * Bookkeeping (vectors, handle blocks, tables) goes through gc__malloc and
 * friends, which call the process malloc (whichever the embedder linked;
 * the library links none) and count the bytes in
 * h->malloced so statistics report malloced_memory as V8 does.  Callers pass
 * the size back on free, so no size query is needed.
 *
 * Spaces (semispaces, old pages, large objects) are anonymous mappings: they
 * are returned to the system whole and start zeroed.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "gc_internal.h"

static void count(gc_heap_t *h, size_t add, size_t sub) {
  if (h == NULL)
    return;
  h->malloced += add;
  h->malloced -= sub;
  if (h->malloced > h->peak_malloced)
    h->peak_malloced = h->malloced;
}

void *gc__malloc(gc_heap_t *h, size_t n) {
  void *p = malloc(n);
  if (p != NULL)
    count(h, n, 0);
  return p;
}

void *gc__calloc(gc_heap_t *h, size_t n) {
  void *p = calloc(1, n);
  if (p != NULL)
    count(h, n, 0);
  return p;
}

void *gc__realloc(gc_heap_t *h, void *p, size_t old, size_t n) {
  void *q = realloc(p, n);
  if (q != NULL)
    count(h, n, old);
  return q;
}

void gc__free(gc_heap_t *h, void *p, size_t n) {
  if (p == NULL)
    return;
  free(p);
  count(h, 0, n);
}

/* Maps N bytes aligned to ALIGN (a power of two, at least the OS page). */
void *gc__map(size_t n, size_t align) {
  size_t over = n + (align > 4096 ? align : 0);
  char *p = mmap(NULL, over, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  if (align > 4096) {
    uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = a - (uintptr_t)p;
    if (head > 0)
      munmap(p, head);
    size_t tail = over - head - n;
    if (tail > 0)
      munmap((char *)a + n, tail);
    p = (char *)a;
  }
  return p;
}

void gc__unmap(void *p, size_t n) {
  if (p != NULL)
    munmap(p, n);
}

bool gc__vec_push_slow(gc_heap_t *h, gc__vec_t *v, void *x) {
  size_t ncap = v->cap ? v->cap * 2 : 256;
  void **n = gc__realloc(h, v->items, v->cap * sizeof(void *),
                         ncap * sizeof(void *));
  if (n == NULL)
    gc__fatal(h, "out of memory growing a collector work list (%zu entries)",
              ncap);
  v->items = n;
  v->cap = ncap;
  v->items[v->len++] = x;
  return true;
}

void gc__vec_free(gc_heap_t *h, gc__vec_t *v) {
  gc__free(h, v->items, v->cap * sizeof(void *));
  v->items = NULL;
  v->len = v->cap = 0;
}

void gc__fatal(gc_heap_t *h, const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "\n#\n# tenure: fatal error");
  if (h != NULL)
    fprintf(stderr, " in heap %p", (void *)h);
  fprintf(stderr, "\n# ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n#\n");
  fflush(stderr);
  abort();
}

double gc__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
