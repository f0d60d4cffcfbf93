/* fuzz_reader.c -- libFuzzer harness for the snapshot reader.
 *
 * Feeds arbitrary bytes to hs_snapshot_read_mem; when they parse, runs
 * the analyses over the result (dominators, summary rows, containers,
 * leaks, BFS and a path) so graph code sees hostile shapes too.  Errors must come
 * back as -EPROTO with a byte offset; anything else is a finding.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heapsnap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  hs_snapshot_t *s = NULL;
  char err[HS_ERRMSG_MAX];
  int rc = hs_snapshot_read_mem((const char *)data, size, &s, err);
  if (rc < 0) {
    if (rc == -EPROTO && !strstr(err, "byte "))
      abort();
    return 0;
  }
  if (hs_dominators(s) == 0) {
    hs_class_row_t *rows;
    int n = hs_class_rows(s, &rows);
    if (n >= 0)
      hs_class_rows_free(rows, n);
    hs_container_t *c;
    n = hs_containers(s, 1, &c);
    if (n >= 0)
      free(c);
    /* The same snapshot three times: nothing grows, but every leak code
     * path (matching, entry counting, retention) runs on hostile graphs. */
    hs_snapshot_t *three[3] = {s, s, s};
    hs_leak_t *l;
    hs_leak_options_t o;
    hs_leak_options_default(&o);
    o.min_entries = 1;
    n = hs_leaks(three, 3, &o, &l);
    if (n > 0)
      abort(); /* equal snapshots cannot grow */
    if (n == 0)
      hs_leaks_free(l, 0, 3);
    hs_bfs_t b;
    if (hs_bfs(s, &b) == 0) {
      char *p = NULL;
      if (hs_path_string(s, &b, s->node_count - 1, &p) == 0)
        free(p);
      hs_bfs_free(&b);
    }
  }
  hs_snapshot_destroy(s);
  return 0;
}
