/* main.c -- the tenure-heap command line.
 *
 * Owns argument parsing, loading, and the human-readable and --json
 * renderings of summary, diff, path and leaks.  All analysis lives in the
 * tenure_heapsnap library.  Exit status: 0 success and nothing flagged,
 * 1 leaks flagged, 2 bad input or usage.
 */
#include "heapsnap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_FLAGGED 1
#define EXIT_BAD 2

static const char usage_text[] =
  "usage: tenure-heap summary FILE [--top N] [--json]\n"
  "       tenure-heap diff A B [--top N] [--json]\n"
  "       tenure-heap path FILE ID [--max N] [--json]\n"
  "       tenure-heap leaks S1 S2 S3 [S4 ...] [--min-entries N]\n"
  "                   [--min-growth BYTES] [--min-retention R] [--json]\n"
  "exit status: 0 ok / nothing flagged, 1 leaks flagged, 2 bad input\n";

typedef struct {
  int json;
  long top;
  long max_paths;
  hs_leak_options_t leak;
  const char *files[256];
  int nfiles;
} args_t;

static int usage(const char *msg)
{
  if (msg)
    fprintf(stderr, "tenure-heap: %s\n", msg);
  fputs(usage_text, stderr);
  return EXIT_BAD;
}

static int parse_num(const char *s, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < 0)
    return -1;
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, args_t *a)
{
  memset(a, 0, sizeof *a);
  a->top = 20;
  a->max_paths = 5;
  hs_leak_options_default(&a->leak);
  a->leak.suspects = 1;
  for (int i = 2; i < argc; i++) {
    const char *p = argv[i];
    double v;
    if (!strcmp(p, "--json")) {
      a->json = 1;
    } else if (!strcmp(p, "--top") || !strcmp(p, "--max") ||
               !strcmp(p, "--min-entries") || !strcmp(p, "--min-growth") ||
               !strcmp(p, "--min-retention")) {
      if (i + 1 >= argc || parse_num(argv[i + 1], &v) < 0)
        return -1;
      i++;
      if (!strcmp(p, "--top"))
        a->top = (long)v;
      else if (!strcmp(p, "--max"))
        a->max_paths = (long)v;
      else if (!strcmp(p, "--min-entries"))
        a->leak.min_entries = (uint32_t)v;
      else if (!strcmp(p, "--min-growth"))
        a->leak.min_growth_bytes = (uint64_t)v;
      else
        a->leak.min_retention = v;
    } else if (p[0] == '-' && p[1] == '-') {
      return -1;
    } else {
      if (a->nfiles == (int)(sizeof a->files / sizeof a->files[0]))
        return -1;
      a->files[a->nfiles++] = p;
    }
  }
  if (a->top > 100000)
    a->top = 100000;
  if (a->max_paths > 100)
    a->max_paths = 100;
  return 0;
}

static hs_snapshot_t *load_opts(const char *path, int skip_edge_names)
{
  hs_read_options_t ro = {isatty(STDERR_FILENO), path, skip_edge_names};
  hs_snapshot_t *s = NULL;
  char err[HS_ERRMSG_MAX];
  int rc = hs_snapshot_read(path, &ro, &s, err);
  if (rc < 0) {
    fprintf(stderr, "tenure-heap: %s: %s\n", path, err[0] ? err
                                                          : strerror(-rc));
    return NULL;
  }
  return s;
}

static hs_snapshot_t *load(const char *path)
{
  return load_opts(path, 0);
}

static int oom(void)
{
  fprintf(stderr, "tenure-heap: out of memory\n");
  return EXIT_BAD;
}

/* --- summary --- */

static int cmd_summary(args_t *a)
{
  if (a->nfiles != 1)
    return usage("summary takes one FILE");
  /* Summary never prints edge names: don't keep them. */
  hs_snapshot_t *s = load_opts(a->files[0], 1);
  if (!s)
    return EXIT_BAD;
  hs_class_row_t *rows = NULL;
  int nrows;
  if (hs_dominators(s) < 0 || (nrows = hs_class_rows(s, &rows)) < 0) {
    hs_snapshot_destroy(s);
    return oom();
  }
  int k = (int)a->top;
  uint32_t *top = malloc(sizeof(uint32_t) * (size_t)(k > 0 ? k : 1));
  int ntop = top ? hs_top_retained(s, top, k) : 0;
  hs_timing("top objects");
  int shown = nrows < k ? nrows : k;
  char buf[64];
  if (a->json) {
    printf("{\"file\": ");
    hs_json_str(stdout, a->files[0]);
    printf(", \"nodes\": %u, \"edges\": %u, \"strings\": %u, "
           "\"self_size\": %" PRIu64 ", \"reachable_nodes\": %u, "
           "\"root_retained_size\": %" PRIu64 ",\n \"classes\": [",
           s->node_count, s->edge_count, s->string_count, s->total_self,
           s->reachable, s->retained[0]);
    for (int i = 0; i < shown; i++) {
      printf("%s\n  {\"name\": ", i ? "," : "");
      hs_json_str(stdout, rows[i].name);
      printf(", \"count\": %" PRIu64 ", \"self_size\": %" PRIu64
             ", \"retained_size\": %" PRIu64 "}",
             rows[i].count, rows[i].self, rows[i].retained);
    }
    printf("],\n \"top\": [");
    for (int i = 0; i < ntop; i++) {
      uint32_t n = top[i];
      printf("%s\n  {\"id\": %u, \"name\": ", i ? "," : "", s->node_id[n]);
      hs_json_str(stdout, hs_node_name(s, n));
      printf(", \"class\": ");
      hs_json_str(stdout, hs_node_class(s, n, buf, sizeof buf));
      printf(", \"type\": \"%s\", \"self_size\": %u, \"retained_size\": %"
             PRIu64 "}", hs_node_kind_name((hs_node_kind_t)s->node_kind[n]),
             s->node_self[n], s->retained[n]);
    }
    printf("]}\n");
  } else {
    printf("%s: %u nodes, %u edges, %u strings, self size %" PRIu64
           " bytes (%u nodes reachable, retaining %" PRIu64 " bytes)\n\n",
           a->files[0], s->node_count, s->edge_count, s->string_count,
           s->total_self, s->reachable, s->retained[0]);
    printf("%-40s %10s %14s %14s\n", "class", "count", "shallow", "retained");
    for (int i = 0; i < shown; i++)
      printf("%-40.40s %10" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n",
             rows[i].name, rows[i].count, rows[i].self, rows[i].retained);
    printf("\ntop objects by retained size\n%-12s %-40s %14s %14s\n", "id",
           "class", "shallow", "retained");
    for (int i = 0; i < ntop; i++) {
      uint32_t n = top[i];
      printf("@%-11u %-40.40s %14u %14" PRIu64 "\n", s->node_id[n],
             hs_node_class(s, n, buf, sizeof buf), s->node_self[n],
             s->retained[n]);
    }
  }
  fflush(stdout);
  hs_timing("report");
  free(top);
  hs_class_rows_free(rows, nrows);
  hs_snapshot_destroy(s);
  hs_timing("free");
  return 0;
}

/* --- diff --- */

static int cmd_diff(args_t *a)
{
  if (a->nfiles != 2)
    return usage("diff takes two files, A and B");
  hs_snapshot_t *sa = load_opts(a->files[0], 1);
  if (!sa)
    return EXIT_BAD;
  hs_snapshot_t *sb = load_opts(a->files[1], 1);
  if (!sb) {
    hs_snapshot_destroy(sa);
    return EXIT_BAD;
  }
  hs_diff_row_t *rows = NULL;
  int n = hs_diff(sa, sb, &rows);
  if (n < 0) {
    hs_snapshot_destroy(sa);
    hs_snapshot_destroy(sb);
    return oom();
  }
  uint64_t ac = 0, as = 0, rc = 0, rs = 0;
  for (int i = 0; i < n; i++) {
    ac += rows[i].added_count;
    as += rows[i].added_self;
    rc += rows[i].removed_count;
    rs += rows[i].removed_self;
  }
  int shown = n < a->top ? n : (int)a->top;
  if (a->json) {
    printf("{\"a\": ");
    hs_json_str(stdout, a->files[0]);
    printf(", \"b\": ");
    hs_json_str(stdout, a->files[1]);
    printf(", \"added\": {\"count\": %" PRIu64 ", \"self_size\": %" PRIu64
           "}, \"removed\": {\"count\": %" PRIu64 ", \"self_size\": %" PRIu64
           "},\n \"classes\": [", ac, as, rc, rs);
    for (int i = 0; i < shown; i++) {
      hs_diff_row_t *r = &rows[i];
      printf("%s\n  {\"name\": ", i ? "," : "");
      hs_json_str(stdout, r->name);
      printf(", \"added_count\": %" PRIu64 ", \"added_size\": %" PRIu64
             ", \"removed_count\": %" PRIu64 ", \"removed_size\": %" PRIu64
             ", \"delta_count\": %" PRId64 ", \"delta_size\": %" PRId64 "}",
             r->added_count, r->added_self, r->removed_count, r->removed_self,
             (int64_t)(r->added_count - r->removed_count),
             (int64_t)(r->added_self - r->removed_self));
    }
    printf("]}\n");
  } else {
    printf("objects in %s not in %s: %" PRIu64 " (%" PRIu64 " bytes); "
           "freed: %" PRIu64 " (%" PRIu64 " bytes)\n\n", a->files[1],
           a->files[0], ac, as, rc, rs);
    printf("%-40s %9s %12s %9s %12s %12s\n", "class", "#new", "new bytes",
           "#freed", "freed bytes", "delta bytes");
    for (int i = 0; i < shown; i++) {
      hs_diff_row_t *r = &rows[i];
      printf("%-40.40s %9" PRIu64 " %12" PRIu64 " %9" PRIu64 " %12" PRIu64
             " %12" PRId64 "\n", r->name, r->added_count, r->added_self,
             r->removed_count, r->removed_self,
             (int64_t)(r->added_self - r->removed_self));
    }
  }
  hs_diff_rows_free(rows, n);
  hs_snapshot_destroy(sa);
  hs_snapshot_destroy(sb);
  return 0;
}

/* --- path --- */

static int cmd_path(args_t *a)
{
  if (a->nfiles != 2)
    return usage("path takes FILE and ID");
  const char *idarg = a->files[1];
  if (idarg[0] == '@')
    idarg++;
  char *end;
  errno = 0;
  unsigned long long id = strtoull(idarg, &end, 10);
  if (errno || end == idarg || *end || id > UINT32_MAX)
    return usage("ID must be a node id (a number, optionally after '@')");
  hs_snapshot_t *s = load(a->files[0]);
  if (!s)
    return EXIT_BAD;
  uint32_t n = UINT32_MAX;
  for (uint32_t i = 0; i < s->node_count; i++)
    if (s->node_id[i] == id) {
      n = i;
      break;
    }
  if (n == UINT32_MAX) {
    fprintf(stderr, "tenure-heap: %s: no node with id %llu\n", a->files[0],
            id);
    hs_snapshot_destroy(s);
    return EXIT_BAD;
  }
  hs_bfs_t b;
  char **paths = calloc((size_t)a->max_paths + 1, sizeof *paths);
  if (!paths || hs_bfs(s, &b) < 0 || hs_dominators(s) < 0) {
    free(paths);
    hs_snapshot_destroy(s);
    return oom();
  }
  int np = hs_paths_to(s, &b, n, paths, (int)a->max_paths);
  if (np < 0) {
    np = 0;
  }
  char buf[64];
  if (a->json) {
    printf("{\"file\": ");
    hs_json_str(stdout, a->files[0]);
    printf(", \"id\": %u, \"name\": ", s->node_id[n]);
    hs_json_str(stdout, hs_node_name(s, n));
    printf(", \"class\": ");
    hs_json_str(stdout, hs_node_class(s, n, buf, sizeof buf));
    printf(", \"type\": \"%s\", \"self_size\": %u, \"retained_size\": %"
           PRIu64 ", \"distance\": %d, \"paths\": [",
           hs_node_kind_name((hs_node_kind_t)s->node_kind[n]),
           s->node_self[n], s->retained[n],
           b.dist[n] == UINT32_MAX ? -1 : (int)b.dist[n]);
    for (int i = 0; i < np; i++) {
      printf("%s\n  ", i ? "," : "");
      hs_json_str(stdout, paths[i]);
    }
    printf("]}\n");
  } else {
    printf("@%u %s (%s), self %u bytes, retained %" PRIu64 " bytes\n",
           s->node_id[n], hs_node_class(s, n, buf, sizeof buf),
           hs_node_kind_name((hs_node_kind_t)s->node_kind[n]),
           s->node_self[n], s->retained[n]);
    if (np == 0)
      printf("  unreachable from the GC roots (only weak retainers, or "
             "garbage)\n");
    for (int i = 0; i < np; i++)
      printf("  %s\n", paths[i]);
  }
  for (int i = 0; i < np; i++)
    free(paths[i]);
  free(paths);
  hs_bfs_free(&b);
  hs_snapshot_destroy(s);
  return 0;
}

/* --- leaks --- */

static void human_bytes(uint64_t v, char *buf, size_t n)
{
  if (v >= 10u << 20)
    snprintf(buf, n, "%.1f MB", (double)v / (1 << 20));
  else if (v >= 10u << 10)
    snprintf(buf, n, "%.1f kB", (double)v / (1 << 10));
  else
    snprintf(buf, n, "%" PRIu64 " B", v);
}

/* One finding of `leaks --json` (f: its rank in its list). */
static void leak_json(const hs_leak_t *l, int f, int n)
{
  printf("%s\n  {\"kind\": \"%s\", \"container\": {\"id\": %u, "
         "\"name\": ", f ? "," : "", hs_leak_kind_name(l->kind), l->id);
  hs_json_str(stdout, l->ctor);
  printf(", \"type\": ");
  hs_json_str(stdout, l->type);
  printf("}, \"name\": ");
  hs_json_str(stdout, l->name);
  printf(", \"path\": ");
  hs_json_str(stdout, l->path);
  printf(", \"entries\": [");
  for (int i = 0; i < n; i++)
    printf("%s%u", i ? ", " : "", l->entries[i]);
  printf("], \"retained_bytes\": [");
  for (int i = 0; i < n; i++)
    printf("%s%" PRIu64, i ? ", " : "", l->retained[i]);
  printf("], \"growth_bytes\": [");
  for (int i = 1; i < n; i++)
    printf("%s%" PRId64, i > 1 ? ", " : "",
           (int64_t)(l->retained[i] - l->retained[i - 1]));
  printf("], \"growth_entries\": [");
  for (int i = 1; i < n; i++)
    printf("%s%" PRId64, i > 1 ? ", " : "",
           (int64_t)l->entries[i] - (int64_t)l->entries[i - 1]);
  printf("], \"total_growth_bytes\": %" PRId64, l->growth_bytes);
  if (l->retention >= 0)
    printf(", \"kept_entries_share\": %.3f", l->retention);
  if (l->estimated)
    printf(", \"entries_estimated\": true");
  if (l->group_entries) {
    printf(", \"group\": {\"members\": [");
    for (int i = 0; i < n; i++)
      printf("%s%u", i ? ", " : "", l->group_members[i]);
    printf("], \"entries\": [");
    for (int i = 0; i < n; i++)
      printf("%s%" PRIu64, i ? ", " : "", l->group_entries[i]);
    printf("]%s}", l->whole_group ? ", \"whole_group\": true" : "");
  }
  printf(", \"remedy\": ");
  hs_json_str(stdout, hs_leak_remedy(l->kind));
  printf("}");
}

/* One finding of `leaks`, readable (f: its rank in its list). */
static void leak_text(const hs_leak_t *l, int f, int n)
{
  char b1[32];
  human_bytes((uint64_t)l->growth_bytes, b1, sizeof b1);
  printf("\n#%d %s: %s (%s @%u), grew %s over %d intervals\n", f + 1,
         hs_leak_kind_name(l->kind), l->name, l->ctor, l->id, b1, n - 1);
  printf("   path:     %s\n", l->path);
  printf("   entries: ");
  for (int i = 0; i < n; i++)
    printf(" %u", l->entries[i]);
  if (l->estimated)
    printf("  (at least: only Smis, counted from the table's capacity)");
  printf("\n   retained:");
  for (int i = 0; i < n; i++) {
    human_bytes(l->retained[i], b1, sizeof b1);
    printf(" %s%s", b1, i + 1 < n ? " ->" : "");
  }
  printf("\n   growth/interval:");
  for (int i = 1; i < n; i++)
    printf(" +%u entries/+%" PRIu64 " B%s",
           l->entries[i] - l->entries[i - 1],
           l->retained[i] - l->retained[i - 1], i + 1 < n ? "," : "");
  if (l->group_entries) {
    printf("\n   group:    %s %u like containers (the same edge of "
           "objects of one shape); members and their entries:",
           l->whole_group ? "the whole group of" : "one of",
           l->siblings + 1);
    for (int i = 0; i < n; i++)
      printf(" %u/%" PRIu64, l->group_members[i], l->group_entries[i]);
  }
  printf("\n   remedy:   %s\n", hs_leak_remedy(l->kind));
}

static int cmd_leaks(args_t *a)
{
  int n = a->nfiles;
  if (n < 3)
    return usage("leaks needs at least three snapshots of one process, in "
                 "time order");
  hs_snapshot_t **snaps = calloc((size_t)n, sizeof *snaps);
  if (!snaps)
    return oom();
  int rc = EXIT_BAD;
  hs_leak_t *found = NULL;
  int nf = 0;
  for (int i = 0; i < n; i++) {
    snaps[i] = load(a->files[i]);
    if (!snaps[i])
      goto done;
    if (hs_dominators(snaps[i]) < 0 || hs_id_index(snaps[i]) < 0) {
      oom();
      goto done;
    }
  }
  nf = hs_leaks(snaps, n, &a->leak, &found);
  if (nf < 0) {
    nf = 0;
    oom();
    goto done;
  }
  int flagged = 0;
  while (flagged < nf && !found[flagged].suspect)
    flagged++;
  if (a->json) {
    printf("{\"snapshots\": [");
    for (int i = 0; i < n; i++) {
      printf("%s", i ? ", " : "");
      hs_json_str(stdout, a->files[i]);
    }
    printf("],\n \"findings\": [");
    for (int f = 0; f < flagged; f++)
      leak_json(&found[f], f, n);
    printf("],\n \"suspects\": [");
    for (int f = flagged; f < nf; f++)
      leak_json(&found[f], f - flagged, n);
    printf("]}\n");
  } else {
    if (flagged == 0)
      printf("no unbounded collections found in %d snapshots\n", n);
    else
      printf("%d unbounded collection%s (ranked by growth in bytes)\n",
             flagged, flagged == 1 ? "" : "s");
    for (int f = 0; f < flagged; f++)
      leak_text(&found[f], f, n);
    if (nf > flagged)
      printf("\n%d suspect%s: grew, but with too little evidence to tell "
             "from a collection that fluctuates (not counted in the exit "
             "status; take more snapshots)\n", nf - flagged,
             nf - flagged == 1 ? "" : "s");
    for (int f = flagged; f < nf; f++)
      leak_text(&found[f], f - flagged, n);
  }
  rc = flagged > 0 ? EXIT_FLAGGED : 0;
done:
  hs_leaks_free(found, nf, n);
  for (int i = 0; i < n; i++)
    hs_snapshot_destroy(snaps[i]);
  free(snaps);
  return rc;
}

int main(int argc, char **argv)
{
  if (argc < 2)
    return usage(NULL);
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    fputs(usage_text, stdout);
    return 0;
  }
  /* TENURE_HEAP_TIMINGS=1: per-stage wall time and RSS on stderr. */
  const char *tm = getenv("TENURE_HEAP_TIMINGS");
  if (tm && *tm && strcmp(tm, "0"))
    hs_timings(stderr);
  args_t a;
  if (parse_args(argc, argv, &a) < 0)
    return usage("bad option");
  if (!strcmp(cmd, "summary"))
    return cmd_summary(&a);
  if (!strcmp(cmd, "diff"))
    return cmd_diff(&a);
  if (!strcmp(cmd, "path"))
    return cmd_path(&a);
  if (!strcmp(cmd, "leaks"))
    return cmd_leaks(&a);
  return usage("unknown command");
}
