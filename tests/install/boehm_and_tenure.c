/* boehm_and_tenure.c -- Boehm GC's <gc.h> and tenure's headers in one file.
 *
 * tenure once installed include/gc/gc.h, the path of Boehm's own header, so
 * with tenure's include directory on the path `#include <gc.h>` (which
 * includes <gc/gc.h>) picked up tenure's.  Everything tenure installs now
 * lives under <tenure/...>; this program is built against the installed
 * prefix (its include directory first on the path) and must see both
 * libraries, each allocating and collecting its own objects.
 *
 * The build is -Werror, so a macro both define (Boehm's names are GC_*, as
 * are tenure's macros: GC_WRITE, GC_VISIT, GC_HANDLE, GC_INIT_FIELD, ...)
 * fails it as a redefinition, whichever header comes first.  tenure once
 * named its initialising store GC_INIT, which is Boehm's start-up macro.
 */
#include <gc.h>
#include <stdio.h>
#include <tenure/tenure.h>

typedef struct cell_s {
  struct cell_s *next;
} cell_t;

static void trace_cell(void *obj, gc_visitor_t *v) {
  GC_VISIT(v, &((cell_t *)obj)->next, GC_EDGE_PROP("next"));
}

static const gc_type_t cell_type = {.name = "Cell", .size = sizeof(cell_t),
                                    .trace = trace_cell};

int main(void) {
  GC_INIT();
  /* Boehm: a list kept in a static root, collected around. */
  void **boehm = GC_MALLOC(100 * sizeof(void *));
  for (int i = 0; i < 100; i++)
    boehm[i] = GC_MALLOC(64);
  GC_gcollect();

  gc_heap_t *h;
  if (gc_heap_create(NULL, &h) != 0 || gc_type_register(h, &cell_type) != 0)
    return 1;
  gc_scope_t s;
  gc_scope_open(h, &s);
  cell_t **head = GC_HANDLE(h, (cell_t *)NULL);
  for (int i = 0; i < 100000; i++) {
    cell_t *c = gc_alloc(h, &cell_type, sizeof(cell_t));
    GC_INIT_FIELD(h, c, next, *head);
    *head = c;
  }
  gc_collect(h, GC_COLLECT_FULL);
  size_t n = 0;
  for (cell_t *c = *head; c != NULL; c = c->next)
    n++;
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
  int ok = n == 100000 && boehm[99] != NULL && GC_get_gc_no() > 0;
  printf("boehm and tenure: %zu tenure cells, Boehm GC %u collections: %s\n",
         n, (unsigned)GC_get_gc_no(), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
