/* gc_options.h -- heap options and Node-style heap flags.
 *
 * The same flags are read from the command line and from the environment
 * variable TENURE_OPTIONS (as Node reads NODE_OPTIONS); the command line wins.
 *
 *   --max-old-space-size=MB    old + large-object space limit
 *   --max-semi-space-size=MB   new space's maximum capacity (what V8 today
 *                              calls one semispace; here survivors and
 *                              eden's allocation area together)
 *   --max-new-space-size=KB    twice that capacity (old V8: both semispaces)
 *   --min-semi-space-size=MB   new space's starting capacity
 *   --promotion-age=N          scavenges an object survives in new space
 *                              before it is promoted (V8: 1); without it,
 *                              adaptive: from 1, the first age from which
 *                              most survivors live through the next one
 *   --trace-gc                 one line per GC on stderr, in V8's shape
 *   --gc-interval=N            collect every N allocations
 *   --stress-gc                collect at every allocation that can collect
 *   --verify-heap              check the heap after every GC
 *   --heapsnapshot-signal=SIG  write a heap snapshot when SIG arrives
 *                              (SIGUSR2, USR2 or a number; see
 *                              gc_snapshot.h)
 *   --diagnostic-dir=DIR       where signal snapshots go (default: the
 *                              current directory)
 *
 * Dashes and underscores are interchangeable after the leading "--", and
 * "--flag value" works as well as "--flag=value", as in V8.
 */
#ifndef TENURE_GC_OPTIONS_H
#define TENURE_GC_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <tenure/gc_type.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gc_heap_s gc_heap_t;

/* Called when a full GC could not bring the old generation under the limit.
 * Returns the new limit in bytes; returning CURRENT keeps it (V8's
 * NearHeapLimitCallback). */
typedef size_t (*gc_near_heap_limit_fn)(void *data, size_t current_limit,
                                        size_t initial_limit);

/* The longest --diagnostic-dir, NUL included. */
#define GC_DIAGNOSTIC_DIR_MAX 1024

typedef struct gc_options_s {
  size_t max_old_space_size;  /* bytes; 0 = default (4096 MB) */
  size_t max_semi_space_size; /* bytes; 0 = derived from the old limit,
                               * at most 16 MB */
  size_t min_semi_space_size; /* bytes; 0 = 1 MB (capped at the max) */
  int promotion_age;          /* -1 = default (adaptive, from 1) */
  unsigned gc_interval;       /* 0 = off */
  bool stress_gc;
  bool verify_heap;
  bool trace_gc;
  /* What an allocation does when the limit holds after a full GC and the
   * near-heap-limit callback: false (default) prints a fatal error naming
   * the limit and the flag and exits with GC_EXIT_HEAP_LIMIT; true returns
   * NULL from gc_alloc. */
  bool null_on_oom;
  gc_near_heap_limit_fn near_heap_limit;
  void *near_heap_limit_data;
  FILE *trace_file; /* --trace-gc output; NULL = stderr */
  int heapsnapshot_signal; /* signal number; 0 = off */
  char diagnostic_dir[GC_DIAGNOSTIC_DIR_MAX]; /* "" = current directory */
} gc_options_t;

/* The exit status of a process stopped by the heap limit (node: 134). */
#define GC_EXIT_HEAP_LIMIT 134

/* Fills O with defaults (all zero / -1 where that means default). */
GC_EXTERN void gc_options_init(gc_options_t *o);

/* Parses the heap flags out of ARGV, removing those it recognised and
 * leaving the host program's own arguments (and argv[0]) in order; *ARGC is
 * updated and argv[*argc] is NULL.  Returns 0, or -EINVAL with a message
 * naming the flag in ERR (if ERR is not NULL); O is then unchanged. */
GC_EXTERN int gc_options_parse_argv(gc_options_t *o, int *argc, char **argv,
                                    char *err, size_t errlen);

/* Parses the flags in the string S (space-separated, as TENURE_OPTIONS). */
GC_EXTERN int gc_options_parse_string(gc_options_t *o, const char *s,
                                      char *err, size_t errlen);

/* The usual start of a host program: TENURE_OPTIONS first, then ARGV.  On a
 * bad flag prints "PROG: message" to stderr and returns -EINVAL. */
GC_EXTERN int gc_options_from_env_and_argv(gc_options_t *o, int *argc,
                                           char **argv);

/* A help text listing the flags, for a host program's --help. */
GC_EXTERN const char *gc_options_help(void);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_GC_OPTIONS_H */
