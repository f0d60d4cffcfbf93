/* test_snapshot.c -- heap snapshots: a known heap written, reloaded by node
 * (tests/gc/snapshot_check.js checks the graph, ids across two snapshots,
 * and loads the file with memlab when TENURE_MEMLAB_DIR points at an
 * install) and by tenure-heap; I/O errors; the --heapsnapshot-signal path
 * and its flags.
 *
 * Arguments (from snapshot.cmake): NODE CHECK_JS [TENURE_HEAP]; NODE may be
 * "-" when node is missing (the node checks then print SKIP).
 */
#include <dirent.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

static const char *node_exe = "-";
static const char *check_js = NULL;
static const char *tenure_heap_exe = NULL;

/* --- Extra types: a string, a buffer with external bytes, elements --------- */

/* Named "string": a string node whose name is its content. */
static const char *str_describe(const void *obj, char *buf, size_t cap) {
  const blob_t *b = obj;
  size_t n = b->len < cap - 1 ? b->len : cap - 1;
  memcpy(buf, b->bytes, n);
  buf[n] = '\0';
  return buf;
}

static const gc_type_t str_type = {
    .name = "string", .size_of = blob_size, .describe = str_describe};

/* A buffer: a heap object owning EXT off-heap bytes. */
typedef struct buffer {
  size_t ext;
} buffer_t;

static size_t buffer_external(const void *obj) {
  return ((const buffer_t *)obj)->ext;
}

static const gc_type_t buffer_type = {.name = "Buffer",
                                      .size = sizeof(buffer_t),
                                      .external_size = buffer_external};

/* V8's internal arrays are named "(...)": an array node. */
static const gc_type_t elems_type = {
    .name = "(object elements)", .size_of = vec_size, .trace = vec_trace};

static void register_all(gc_heap_t *h) {
  test_register_zoo(h);
  assert_int_equal(gc_type_register(h, &str_type), 0);
  assert_int_equal(gc_type_register(h, &buffer_type), 0);
  assert_int_equal(gc_type_register(h, &elems_type), 0);
}

static void *make_str(gc_heap_t *h, const char *s) {
  size_t n = strlen(s);
  blob_t *b = gc_alloc(h, &str_type, sizeof(blob_t) + n);
  assert_non_null(b);
  b->len = n;
  memcpy(b->bytes, s, n);
  return b;
}

/* --- Helpers ------------------------------------------------------------------ */

static char tmpdir[256];

static void make_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/tenure-snap-XXXXXX",
           base != NULL && *base ? base : "/tmp");
  assert_non_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  if (d == NULL)
    return;
  struct dirent *e;
  char p[512];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(tmpdir);
}

static bool node_available(void) {
  return strcmp(node_exe, "-") != 0 && check_js != NULL &&
         !test_under_valgrind();
}

/* Runs CMD through the shell; returns its exit status. */
static int run(const char *cmd) {
  fflush(stdout);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* --- The known heap ----------------------------------------------------------- */

static void *app_root;      /* embedder root "app sessions" */
static void *conn_slot;     /* reported by the "conn table" tracer */
static gc_persistent_t *persistent;
static gc_persistent_t *weak;

static void conn_tracer(gc_visitor_t *v, void *data) {
  (void)data;
  GC_VISIT(v, &conn_slot, GC_EDGE_PROP("conn"));
}

/* app_root -> Vector[4]: [0] a, [1] NULL, [2] an immediate, [3] elements.
 * a = Pair(car: blob, cdr: b); b = Pair(car: buffer, cdr: str).
 * elements = (object elements)[2]: [0] a, [1] str.
 * persistent -> Pair p(car: str, cdr: w); weak -> w; tracer -> Pair conn.
 * A handle-scope handle holds a Blob. */
typedef struct known {
  uint64_t vec, a, b, blob, buf, str, elems, p, w, conn;
} known_t;

static void build(gc_heap_t *h) {
  gc_scope_t s;
  gc_scope_open(h, &s);
  void **str = gc_handle(h, make_str(h, "hello \"world\"\n\xc3\xa9\xf0\x9f\x98\x80"
                                        " \x01 \xff end"));
  buffer_t *bufp = gc_alloc(h, &buffer_type, sizeof(buffer_t));
  bufp->ext = 12345;
  void **buf = gc_handle(h, bufp);
  void **b = gc_handle(h, test_pair(h, *buf, *str, 2));
  void **blob = gc_handle(h, test_blob(h, 100, 7));
  void **a = gc_handle(h, test_pair(h, *blob, *b, 1));
  vec_t *e = gc_alloc(h, &elems_type, sizeof(vec_t) + 2 * sizeof(void *));
  e->len = 2;
  gc_write(h, e, &e->items[0], *a);
  gc_write(h, e, &e->items[1], *str);
  void **elems = gc_handle(h, e);
  vec_t *v = test_vec(h, 4);
  gc_write(h, v, &v->items[0], *a);
  v->items[2] = (void *)(uintptr_t)0x11; /* an immediate: no edge */
  gc_write(h, v, &v->items[3], *elems);
  app_root = v;
  assert_int_equal(gc_root_add(h, &app_root, "app sessions"), 0);
  void **w = gc_handle(h, test_pair(h, NULL, NULL, 4));
  persistent = gc_persistent_new(h, test_pair(h, *str, *w, 3));
  weak = gc_weak_new(h, *w, NULL, NULL);
  conn_slot = test_pair(h, NULL, NULL, 5);
  assert_int_equal(gc_root_tracer_add(h, conn_tracer, NULL, "conn table"), 0);
  gc_scope_close(h, &s);
}

/* The ids of the known objects, read from the heap as it is now. */
static known_t known_ids(gc_heap_t *h) {
  known_t k;
  vec_t *v = app_root;
  pair_t *a = v->items[0];
  pair_t *b = a->cdr;
  k.vec = gc_object_id(h, v);
  k.a = gc_object_id(h, a);
  k.b = gc_object_id(h, b);
  k.blob = gc_object_id(h, a->car);
  k.buf = gc_object_id(h, b->car);
  k.str = gc_object_id(h, b->cdr);
  k.elems = gc_object_id(h, v->items[3]);
  k.p = gc_object_id(h, gc_persistent_get(persistent));
  k.w = gc_object_id(h, gc_persistent_get(weak));
  k.conn = gc_object_id(h, conn_slot);
  return k;
}

static void write_expect(const char *path, const known_t *k) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "{\"vec\":%llu,\"a\":%llu,\"b\":%llu,\"blob\":%llu,\"buf\":%llu,"
          "\"str\":%llu,\"elems\":%llu,\"p\":%llu,\"w\":%llu,\"conn\":%llu}\n",
          (unsigned long long)k->vec, (unsigned long long)k->a,
          (unsigned long long)k->b, (unsigned long long)k->blob,
          (unsigned long long)k->buf, (unsigned long long)k->str,
          (unsigned long long)k->elems, (unsigned long long)k->p,
          (unsigned long long)k->w, (unsigned long long)k->conn);
  fclose(f);
}

static void drop_known(gc_heap_t *h) {
  gc_root_remove(h, &app_root);
  gc_root_tracer_remove(h, conn_tracer, NULL);
  gc_persistent_free(h, persistent);
  gc_persistent_free(h, weak);
  app_root = conn_slot = NULL;
}

/* Garbage and survivors so that the second snapshot sees moved objects. */
static void churn(gc_heap_t *h, long n) {
  for (long i = 0; i < n; i++)
    test_pair(h, NULL, NULL, i);
}

static void test_snapshot_known_heap(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  register_all(h);
  make_tmpdir();
  build(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  gc_handle(h, test_blob(h, 20000, 1)); /* a "(Handle scope)" root, large */
  char *longs = malloc(3001);
  assert_non_null(longs);
  memset(longs, 'x', 3000);
  longs[3000] = '\0';
  gc_handle(h, make_str(h, longs)); /* named by its first 1024 characters */
  free(longs);

  char s1[512], s2[512], ex[512];
  snprintf(s1, sizeof s1, "%s/one.heapsnapshot", tmpdir);
  snprintf(s2, sizeof s2, "%s/two.heapsnapshot", tmpdir);
  snprintf(ex, sizeof ex, "%s/expect.json", tmpdir);

  /* The ids are asked for before the first snapshot, while the objects are
   * young; GCs then move them (scavenge copies, promotion, full GC). */
  known_t k1 = known_ids(h);
  assert_true(k1.a >= GC_SNAPSHOT_FIRST_OBJECT_ID && (k1.a & 1));
  assert_int_equal(gc_snapshot_write_path(h, s1), 0);
  assert_true(file_exists(s1));
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", s1);
  assert_false(file_exists(tmp));

  churn(h, test_scale(20000, 500));
  gc_collect(h, GC_COLLECT_MINOR);
  gc_collect(h, GC_COLLECT_MINOR);
  gc_collect(h, GC_COLLECT_FULL);
  churn(h, test_scale(5000, 200));
  known_t k2 = known_ids(h);
  assert_memory_equal(&k1, &k2, sizeof k1);
  assert_int_equal(gc_snapshot_write_path(h, s2), 0);
  write_expect(ex, &k1);

  /* The same heap to a FILE* gives the same bytes. */
  char s3[512];
  snprintf(s3, sizeof s3, "%s/three.heapsnapshot", tmpdir);
  FILE *f = fopen(s3, "w");
  assert_non_null(f);
  assert_int_equal(gc_snapshot_write(h, f), 0);
  fclose(f);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", s2, s3);
  assert_int_equal(run(cmd), 0);

  if (node_available()) {
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' '%s'", node_exe, check_js,
             s1, s2, ex);
    assert_int_equal(run(cmd), 0);
  } else {
    printf("SKIP: node checks (no node, or under valgrind)\n");
  }
  if (tenure_heap_exe != NULL && !test_under_valgrind()) {
    snprintf(cmd, sizeof cmd, "'%s' summary '%s' > /dev/null", tenure_heap_exe,
             s1);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "'%s' path '%s' %llu | grep -q 'app sessions'", tenure_heap_exe,
             s1, (unsigned long long)k1.a);
    assert_int_equal(run(cmd), 0);
  }
  gc_scope_close(h, &s);
  drop_known(h);
  gc_heap_destroy(h);
  remove_tmpdir();
}

/* A bigger heap: a list of pairs each holding a string.  Prints the time. */
static void test_snapshot_many_objects(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  register_all(h);
  make_tmpdir();
  long n = test_scale(200000, 2000);
  gc_scope_t s;
  gc_scope_open(h, &s);
  void **list = gc_handle(h, NULL);
  for (long i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "item %ld", i % 1000);
    gc_scope_t inner;
    gc_scope_open(h, &inner);
    void **str = gc_handle(h, make_str(h, name));
    *list = test_pair(h, *str, *list, i);
    gc_scope_close(h, &inner);
  }
  char path[512];
  snprintf(path, sizeof path, "%s/many.heapsnapshot", tmpdir);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(gc_snapshot_write_path(h, path), 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
              (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("snapshot of %ld objects: %.1f ms\n", 2 * n, ms);
  if (node_available()) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --structure '%s' %ld", node_exe,
             check_js, path, 2 * n);
    assert_int_equal(run(cmd), 0);
  }
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
  remove_tmpdir();
}

/* --- Errors ------------------------------------------------------------------- */

static void test_snapshot_write_errors(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  register_all(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  gc_handle(h, test_pair(h, NULL, NULL, 1));
  assert_int_equal(gc_snapshot_write_path(h, "/nonexistent-dir/x.heapsnapshot"),
                   -ENOENT);
  assert_int_equal(gc_snapshot_write_path(h, ""), -EINVAL);
  assert_int_equal(gc_snapshot_write_path(NULL, "/tmp/x"), -EINVAL);
  assert_int_equal(gc_snapshot_write(h, NULL), -EINVAL);
  FILE *full = fopen("/dev/full", "w");
  if (full != NULL) {
    assert_int_equal(gc_snapshot_write(h, full), -EIO);
    fclose(full);
  }
  gc_scope_close(h, &s);
  gc_heap_destroy(h);
}

/* --- Signal snapshots ------------------------------------------------------- */

static bool name_matches(const char *path) {
  regex_t re;
  assert_int_equal(regcomp(&re,
                           "/Heap\\.[0-9]{8}\\.[0-9]{6}\\.[0-9]+\\.0\\.[0-9]{3}"
                           "\\.heapsnapshot$",
                           REG_EXTENDED | REG_NOSUB),
                   0);
  bool ok = regexec(&re, path, 0, NULL, 0) == 0;
  regfree(&re);
  return ok;
}

static void test_snapshot_signal(void **state) {
  (void)state;
  make_tmpdir();
  gc_options_t o;
  test_options(&o);
  char flags[600];
  snprintf(flags, sizeof flags, "--heapsnapshot-signal=SIGUSR2 "
                                "--diagnostic-dir=%s", tmpdir);
  assert_int_equal(gc_options_parse_string(&o, flags, NULL, 0), 0);
  struct sigaction before;
  sigaction(SIGUSR2, NULL, &before);
  gc_heap_t *h = test_heap_with(&o);
  register_all(h);
  gc_scope_t s;
  gc_scope_open(h, &s);
  void **keep = gc_handle(h, test_pair(h, NULL, NULL, 1));

  char path[1200];
  assert_int_equal(gc_snapshot_poll_path(h, path, sizeof path), 0);
  raise(SIGUSR2);
  assert_int_equal(gc_snapshot_poll_path(h, path, sizeof path), 1);
  assert_true(strncmp(path, tmpdir, strlen(tmpdir)) == 0);
  assert_true(name_matches(path));
  assert_non_null(strstr(path, ".001.heapsnapshot"));
  assert_true(file_exists(path));
  assert_int_equal(gc_snapshot_poll(h), 0); /* handled once */

  /* The allocation slow path writes it too: allocate past a full new
   * space (256 KB semispaces; every allocation under --stress-gc). */
  raise(SIGUSR2);
  for (int j = 0; j < 20000; j++)
    test_pair(h, *keep, NULL, j);
  assert_int_equal(gc_snapshot_poll(h), 0); /* already written */
  /* The date part may differ: look for any file with sequence 002. */
  DIR *d = opendir(tmpdir);
  assert_non_null(d);
  int found = 0, total = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    total++;
    if (strstr(e->d_name, ".002.heapsnapshot") != NULL)
      found++;
  }
  closedir(d);
  assert_int_equal(found, 1);
  assert_int_equal(total, 2);

  gc_scope_close(h, &s);
  gc_heap_destroy(h);
  /* Destroying the owner restored the previous disposition. */
  struct sigaction after;
  sigaction(SIGUSR2, NULL, &after);
  assert_true(after.sa_handler == before.sa_handler);
  remove_tmpdir();
}

/* A heap without the flag never writes, even when the signal was counted
 * for another heap. */
static void test_snapshot_poll_without_flag(void **state) {
  (void)state;
  gc_heap_t *h = test_heap();
  assert_int_equal(gc_snapshot_poll(h), 0);
  assert_int_equal(gc_snapshot_poll(NULL), -EINVAL);
  gc_heap_destroy(h);
}

/* --- Flags ---------------------------------------------------------------------- */

static void test_snapshot_flags(void **state) {
  (void)state;
  gc_options_t o;
  gc_options_init(&o);
  assert_int_equal(o.heapsnapshot_signal, 0);
  assert_string_equal(o.diagnostic_dir, "");
  char *argv[] = {"prog", "--heapsnapshot-signal=SIGUSR2", "x",
                  "--diagnostic_dir", "/var/tmp/d", NULL};
  int argc = 5;
  char err[256];
  assert_int_equal(gc_options_parse_argv(&o, &argc, argv, err, sizeof err), 0);
  assert_int_equal(argc, 2);
  assert_string_equal(argv[1], "x");
  assert_int_equal(o.heapsnapshot_signal, SIGUSR2);
  assert_string_equal(o.diagnostic_dir, "/var/tmp/d");
  assert_int_equal(gc_options_parse_string(&o, "--heapsnapshot-signal=USR1",
                                           err, sizeof err), 0);
  assert_int_equal(o.heapsnapshot_signal, SIGUSR1);
  assert_int_equal(gc_options_parse_string(&o, "--heapsnapshot-signal 12",
                                           err, sizeof err), 0);
  assert_int_equal(o.heapsnapshot_signal, 12);

  const char *bad[] = {"--heapsnapshot-signal=SIGFOO",
                       "--heapsnapshot-signal=9", "--heapsnapshot-signal=",
                       "--heapsnapshot-signal=0", "--heapsnapshot-signal",
                       "--diagnostic-dir=", "--diagnostic-dir"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gc_options_t b;
    gc_options_init(&b);
    b.heapsnapshot_signal = 3;
    char *av[] = {"prog", (char *)bad[i], NULL};
    int ac = 2;
    err[0] = '\0';
    assert_int_equal(gc_options_parse_argv(&b, &ac, av, err, sizeof err),
                     -EINVAL);
    const char *name = bad[i] + 2;
    char flag[64];
    snprintf(flag, sizeof flag, "%.*s", (int)strcspn(name, "="), name);
    assert_non_null(strstr(err, flag));
    assert_int_equal(b.heapsnapshot_signal, 3);
    assert_string_equal(b.diagnostic_dir, "");
  }
  /* Too long a directory. */
  char *longdir = malloc(GC_DIAGNOSTIC_DIR_MAX + 32);
  assert_non_null(longdir);
  strcpy(longdir, "--diagnostic-dir=");
  memset(longdir + 17, 'd', GC_DIAGNOSTIC_DIR_MAX);
  longdir[17 + GC_DIAGNOSTIC_DIR_MAX] = '\0';
  assert_int_equal(gc_options_parse_string(&o, longdir, err, sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, "diagnostic-dir"));
  free(longdir);
  assert_non_null(strstr(gc_options_help(), "--heapsnapshot-signal"));
}

int main(int argc, char **argv) {
  if (argc > 1)
    node_exe = argv[1];
  if (argc > 2)
    check_js = argv[2];
  if (argc > 3 && strcmp(argv[3], "-") != 0)
    tenure_heap_exe = argv[3];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_snapshot_known_heap),
      cmocka_unit_test(test_snapshot_many_objects),
      cmocka_unit_test(test_snapshot_write_errors),
      cmocka_unit_test(test_snapshot_signal),
      cmocka_unit_test(test_snapshot_poll_without_flag),
      cmocka_unit_test(test_snapshot_flags),
  };
  return cmocka_run_group_tests_name("gc.snapshot", tests, NULL, NULL);
}
