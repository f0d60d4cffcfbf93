/* json2heap.c -- parse a JSON file into the tenure heap and report it.
 *
 *   json2heap FILE [--snapshot PATH] [heap flags]
 *
 * Parses FILE into runtime values (objects become Maps, arrays Arrays),
 * keeps the result alive, and prints the heap statistics as one JSON object
 * on stdout (v8.getHeapStatistics() field names: used_heap_size, ...).
 * With --snapshot, also writes a V8 heap snapshot of the result to PATH.
 * Heap flags (--max-old-space-size=MB, --trace-gc, ...) come from the
 * command line and TENURE_OPTIONS.  Exit status: 0; 1 for malformed JSON
 * (the byte offset and what was expected go to stderr) or an unreadable
 * file; 2 for bad usage or --snapshot without snapshot support.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tenure/rt.h>
#include <tenure/gc_snapshot.h>

static void usage(void) {
  fprintf(stderr,
          "usage: json2heap FILE [--snapshot PATH] [heap flags]\n%s",
          gc_options_help());
}

/* Maps (or reads) FILE; *LEN is its size. */
static char *load(const char *path, size_t *len, bool *mapped) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return NULL;
  struct stat st;
  char *p = NULL;
  *mapped = false;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE,
             fd, 0);
    if (p != MAP_FAILED) {
      *len = (size_t)st.st_size;
      *mapped = true;
      close(fd);
      return p;
    }
    p = NULL;
  }
  size_t cap = 1 << 16, n = 0;
  p = malloc(cap);
  for (;;) {
    if (p == NULL)
      break;
    if (n == cap) {
      char *q = realloc(p, cap *= 2);
      if (q == NULL) {
        free(p);
        p = NULL;
        break;
      }
      p = q;
    }
    ssize_t r = read(fd, p + n, cap - n);
    if (r < 0) {
      free(p);
      p = NULL;
      break;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  *len = n;
  return p;
}

int main(int argc, char **argv) {
  gc_options_t opt;
  gc_options_init(&opt);
  if (gc_options_from_env_and_argv(&opt, &argc, argv) < 0)
    return 2;
  const char *file = NULL, *snapshot = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--snapshot") == 0 && i + 1 < argc) {
      snapshot = argv[++i];
    } else if (strncmp(argv[i], "--snapshot=", 11) == 0) {
      snapshot = argv[i] + 11;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage();
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1] != 0) {
      fprintf(stderr, "json2heap: unknown option %s\n", argv[i]);
      usage();
      return 2;
    } else if (file == NULL) {
      file = argv[i];
    } else {
      usage();
      return 2;
    }
  }
  if (file == NULL) {
    usage();
    return 2;
  }

  size_t len = 0;
  bool mapped = false;
  char *text = load(file, &len, &mapped);
  if (text == NULL && len == 0 && errno != 0) {
    fprintf(stderr, "json2heap: %s: %s\n", file, strerror(errno));
    return 1;
  }

  gc_heap_t *h;
  int err = gc_heap_create(&opt, &h);
  if (err < 0) {
    fprintf(stderr, "json2heap: %s\n", gc_strerror(err));
    return 1;
  }
  rt_runtime_t *rt;
  if ((err = rt_runtime_create(h, &rt)) < 0) {
    fprintf(stderr, "json2heap: %s\n", rt_strerror(err));
    gc_heap_destroy(h);
    return 1;
  }

  int status = 0;
  gc_scope_t scope;
  gc_scope_open(h, &scope);
  rt_value_t *root = rt_handle(h, RT_UNDEFINED);
  rt_json_error_t jerr;
  err = rt_json_parse(rt, text ? text : "", len, NULL, root, &jerr);
  if (mapped)
    munmap(text, len);
  else
    free(text);
  if (err == -EINVAL || err == -E2BIG) {
    fprintf(stderr, "json2heap: %s: byte %zu: expected %s\n", file,
            jerr.offset, jerr.expected);
    status = 1;
  } else if (err < 0) {
    fprintf(stderr, "json2heap: %s: %s\n", file, rt_strerror(err));
    status = 1;
  } else {
    if (snapshot != NULL && (err = gc_snapshot_write_path(h, snapshot)) < 0) {
      fprintf(stderr, "json2heap: %s: %s\n", snapshot, gc_strerror(err));
      status = 1;
    }
    gc_heap_stats_json(h, stdout); /* one line, newline-terminated */
  }
  gc_scope_close(h, &scope);
  fflush(stdout);
  /* The result lives until exit, as in node; skip tearing the heap down
   * unless a leak checker is watching (TENURE_EXIT_CLEANLY set). */
  if (getenv("TENURE_EXIT_CLEANLY") != NULL)
    rt_runtime_destroy(rt);
  return status;
}
