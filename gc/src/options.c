/* options.c -- heap options and the Node-style heap flags.
 *
 * Flags come from TENURE_OPTIONS and the command line, in that order, so
 * the command line wins.  A recognised flag is removed from argv; anything
 * else, including flags we do not know, is left for the host program.
 * Parsing is all-or-nothing: on a bad value the options are unchanged.
 */
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "gc_internal.h"

void gc_options_init(gc_options_t *o) {
  memset(o, 0, sizeof *o);
  o->promotion_age = -1;
}

typedef enum { F_MB, F_KB_NEW, F_MB_SEMI, F_MB_MIN_SEMI, F_COUNT, F_AGE,
               F_BOOL, F_SIGNAL, F_DIR } kind_t;

typedef struct flag_s {
  const char *name; /* with dashes, without the leading "--" */
  kind_t kind;
  const char *unit; /* for messages */
} flag_t;

static const flag_t flags[] = {
    {"max-old-space-size", F_MB, "megabytes"},
    {"max-semi-space-size", F_MB_SEMI, "megabytes"},
    {"max-new-space-size", F_KB_NEW, "kilobytes"},
    {"min-semi-space-size", F_MB_MIN_SEMI, "megabytes"},
    {"promotion-age", F_AGE, "scavenges, 0 to 7"},
    {"gc-interval", F_COUNT, "allocations"},
    {"trace-gc", F_BOOL, NULL},
    {"stress-gc", F_BOOL, NULL},
    {"verify-heap", F_BOOL, NULL},
    {"heapsnapshot-signal", F_SIGNAL, NULL},
    {"diagnostic-dir", F_DIR, NULL},
};

/* Signals --heapsnapshot-signal accepts by name (node takes any name; these
 * are the ones a program can sensibly give up to snapshots). */
static const struct {
  const char *name;
  int signo;
} signals[] = {
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGHUP", SIGHUP},
    {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT}, {"SIGTERM", SIGTERM},
    {"SIGALRM", SIGALRM}, {"SIGWINCH", SIGWINCH}, {"SIGPROF", SIGPROF},
};

/* "SIGUSR2", "USR2" or a signal number other than SIGKILL and SIGSTOP. */
static int parse_signal(const char *v) {
  if (v == NULL || *v == '\0')
    return -EINVAL;
  if (isdigit((unsigned char)*v)) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || x <= 0 || x >= 65 || x == SIGKILL ||
        x == SIGSTOP)
      return -EINVAL;
    return (int)x;
  }
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (strcmp(v, signals[i].name) == 0 || strcmp(v, signals[i].name + 3) == 0)
      return signals[i].signo;
  return -EINVAL;
}

/* Compares a user's flag name (dashes or underscores) with ours. */
static bool name_is(const char *user, size_t n, const char *ours) {
  if (strlen(ours) != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = user[i] == '_' ? '-' : user[i];
    if (c != ours[i])
      return false;
  }
  return true;
}

static const flag_t *lookup(const char *arg, size_t n, bool *negated) {
  *negated = false;
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    if (name_is(arg, n, flags[i].name))
      return &flags[i];
  if (n > 3 && strncmp(arg, "no", 2) == 0 && (arg[2] == '-' || arg[2] == '_'))
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
      if (flags[i].kind == F_BOOL && name_is(arg + 3, n - 3, flags[i].name)) {
        *negated = true;
        return &flags[i];
      }
  return NULL;
}

static int parse_count(const char *v, unsigned long long max,
                       unsigned long long *out) {
  if (v == NULL || *v == '\0' || !isdigit((unsigned char)*v))
    return -EINVAL;
  errno = 0;
  char *end;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno != 0 || *end != '\0' || x > max)
    return -EINVAL;
  *out = x;
  return 0;
}

static int bad(char *err, size_t errlen, const char *flag, const char *v,
               const char *why) {
  if (err != NULL && errlen > 0)
    snprintf(err, errlen, "invalid value for --%s: '%s' (%s)", flag,
             v != NULL ? v : "", why);
  return -EINVAL;
}

/* Applies one flag with value V (NULL for booleans). */
static int apply(gc_options_t *o, const flag_t *f, bool negated, const char *v,
                 char *err, size_t errlen) {
  unsigned long long x = 0;
  const unsigned long long max_mb = 1ULL << 30; /* 1 PB */
  switch (f->kind) {
  case F_BOOL:
    if (v != NULL && strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
      return bad(err, errlen, f->name, v, "expected no value, true or false");
    {
      bool on = !negated && !(v != NULL && strcmp(v, "false") == 0);
      if (strcmp(f->name, "trace-gc") == 0)
        o->trace_gc = on;
      else if (strcmp(f->name, "stress-gc") == 0)
        o->stress_gc = on;
      else
        o->verify_heap = on;
    }
    return 0;
  case F_MB:
    if (parse_count(v, max_mb, &x) < 0 || x == 0)
      return bad(err, errlen, f->name, v, "expected a positive number of megabytes");
    o->max_old_space_size = (size_t)x * GC__MB;
    return 0;
  case F_MB_SEMI:
    if (parse_count(v, 1024, &x) < 0 || x == 0)
      return bad(err, errlen, f->name, v,
                 "expected megabytes, from 1 to 1024");
    o->max_semi_space_size = (size_t)x * GC__MB;
    return 0;
  case F_MB_MIN_SEMI:
    if (parse_count(v, 1024, &x) < 0 || x == 0)
      return bad(err, errlen, f->name, v,
                 "expected megabytes, from 1 to 1024");
    o->min_semi_space_size = (size_t)x * GC__MB;
    return 0;
  case F_KB_NEW:
    if (parse_count(v, 2ULL * 1024 * 1024, &x) < 0 || x < 128)
      return bad(err, errlen, f->name, v,
                 "expected kilobytes for the whole new space, at least 128");
    o->max_semi_space_size = (size_t)x * 1024 / 2;
    return 0;
  case F_AGE:
    if (parse_count(v, X__MAX_AGE, &x) < 0)
      return bad(err, errlen, f->name, v, "expected a number from 0 to 7");
    o->promotion_age = (int)x;
    return 0;
  case F_COUNT:
    if (parse_count(v, 1ULL << 31, &x) < 0)
      return bad(err, errlen, f->name, v,
                 "expected a count of allocations (0 = off)");
    o->gc_interval = (unsigned)x;
    return 0;
  case F_SIGNAL: {
    int signo = parse_signal(v);
    if (signo < 0)
      return bad(err, errlen, f->name, v,
                 "expected a signal such as SIGUSR2, USR2 or 12");
    o->heapsnapshot_signal = signo;
    return 0;
  }
  case F_DIR:
    if (v == NULL || *v == '\0')
      return bad(err, errlen, f->name, v, "expected a directory");
    if (strlen(v) >= sizeof o->diagnostic_dir)
      return bad(err, errlen, f->name, v, "path too long");
    memcpy(o->diagnostic_dir, v, strlen(v) + 1);
    return 0;
  }
  return -EINVAL;
}

/* Tries ARGS[I] as a flag.  Returns how many args it used (0: not ours),
 * or -EINVAL. */
static int try_flag(gc_options_t *o, char **args, int i, int n, char *err,
                    size_t errlen) {
  const char *a = args[i];
  if (strncmp(a, "--", 2) != 0)
    return 0;
  a += 2;
  const char *eq = strchr(a, '=');
  size_t len = eq != NULL ? (size_t)(eq - a) : strlen(a);
  bool negated;
  const flag_t *f = lookup(a, len, &negated);
  if (f == NULL)
    return 0;
  if (eq != NULL) {
    int r = apply(o, f, negated, eq + 1, err, errlen);
    return r < 0 ? r : 1;
  }
  if (f->kind == F_BOOL) {
    int r = apply(o, f, negated, NULL, err, errlen);
    return r < 0 ? r : 1;
  }
  if (i + 1 >= n)
    return bad(err, errlen, f->name, "", "missing value");
  int r = apply(o, f, negated, args[i + 1], err, errlen);
  return r < 0 ? r : 2;
}

int gc_options_parse_argv(gc_options_t *o, int *argc, char **argv, char *err,
                          size_t errlen) {
  if (o == NULL || argc == NULL || argv == NULL)
    return -EINVAL;
  gc_options_t tmp = *o;
  int n = *argc, out = n > 0 ? 1 : 0;
  /* First pass validates into TMP; then compact argv. */
  for (int i = 1; i < n;) {
    if (strcmp(argv[i], "--") == 0)
      break; /* the host's arguments follow */
    int used = try_flag(&tmp, argv, i, n, err, errlen);
    if (used < 0)
      return used;
    i += used > 0 ? used : 1;
  }
  int i = 1;
  for (; i < n;) {
    if (strcmp(argv[i], "--") == 0)
      break;
    gc_options_t scratch = tmp;
    int used = try_flag(&scratch, argv, i, n, NULL, 0);
    if (used > 0) {
      i += used;
      continue;
    }
    argv[out++] = argv[i++];
  }
  while (i < n)
    argv[out++] = argv[i++];
  argv[out] = NULL;
  *argc = out;
  *o = tmp;
  return 0;
}

int gc_options_parse_string(gc_options_t *o, const char *s, char *err,
                            size_t errlen) {
  if (o == NULL)
    return -EINVAL;
  if (s == NULL)
    return 0;
  size_t len = strlen(s);
  char *buf = malloc(len + 1);
  char **args = malloc((len / 2 + 2) * sizeof *args);
  if (buf == NULL || args == NULL) {
    free(buf);
    free(args);
    return -ENOMEM;
  }
  memcpy(buf, s, len + 1);
  int n = 0;
  args[n++] = "";
  for (char *p = buf; *p;) {
    while (isspace((unsigned char)*p))
      p++;
    if (*p == '\0')
      break;
    args[n++] = p;
    while (*p && !isspace((unsigned char)*p))
      p++;
    if (*p)
      *p++ = '\0';
  }
  args[n] = NULL;
  gc_options_t tmp = *o;
  int r = 0;
  for (int i = 1; i < n;) {
    int used = try_flag(&tmp, args, i, n, err, errlen);
    if (used < 0) {
      r = used;
      break;
    }
    if (used == 0) {
      if (err != NULL && errlen > 0)
        snprintf(err, errlen, "unknown flag in TENURE_OPTIONS: '%s'", args[i]);
      r = -EINVAL;
      break;
    }
    i += used;
  }
  if (r == 0)
    *o = tmp;
  free(buf);
  free(args);
  return r;
}

int gc_options_from_env_and_argv(gc_options_t *o, int *argc, char **argv) {
  char err[256];
  const char *prog = (argc != NULL && *argc > 0 && argv[0]) ? argv[0] : "tenure";
  int r = gc_options_parse_string(o, getenv("TENURE_OPTIONS"), err, sizeof err);
  if (r < 0) {
    fprintf(stderr, "%s: %s\n", prog, err);
    return r;
  }
  r = gc_options_parse_argv(o, argc, argv, err, sizeof err);
  if (r < 0)
    fprintf(stderr, "%s: %s\n", prog, err);
  return r;
}

const char *gc_options_help(void) {
  return "Heap flags (also read from TENURE_OPTIONS):\n"
         "  --max-old-space-size=MB    limit of old + large-object space "
         "(default 4096)\n"
         "  --max-semi-space-size=MB   maximum capacity of new space "
         "(default: old limit / 16, 1..16)\n"
         "  --max-new-space-size=KB    maximum size of the whole new space\n"
         "  --min-semi-space-size=MB   starting capacity of new space "
         "(default 1)\n"
         "  --promotion-age=N          scavenges survived before promotion "
         "(default: adaptive, from 1)\n"
         "  --trace-gc                 print one line per GC on stderr\n"
         "  --gc-interval=N            collect every N allocations (0 = off)\n"
         "  --stress-gc                collect at every allocation\n"
         "  --verify-heap              verify the heap after every GC\n"
         "  --heapsnapshot-signal=SIG  write a heap snapshot on signal SIG "
         "(e.g. SIGUSR2)\n"
         "  --diagnostic-dir=DIR       where signal heap snapshots go "
         "(default: the current directory)\n";
}
