/* timings.c -- per-stage wall time and memory, for finding where a run
 * goes.
 *
 * Owns one process-wide switch: after hs_timings(stream), every stage of
 * the reader and of the analyses ends with hs_timing(), which writes one
 * line to the stream:
 *
 *   tenure-heap: timing: STAGE  +S.SSS s  (T.TTT s)  rss R MB  peak P MB
 *
 * +S is the stage's own wall time (since the previous line), T the time
 * since hs_timings(), R the resident set now (/proc/self/statm) and P the
 * peak so far (getrusage).  Off by default, and then hs_timing() is one
 * load and a branch.  Not thread-safe: stages are marked from the thread
 * that runs them, one at a time.
 */
#include "heapsnap.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static FILE *tm_out;
static double tm_start, tm_last;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set in MB now; 0 where /proc is absent. */
static double rss_mb(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long long size = 0, res = 0;
  if (!f)
    return 0;
  if (fscanf(f, "%llu %llu", &size, &res) != 2)
    res = 0;
  fclose(f);
  return (double)res * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

void hs_timings(FILE *out)
{
  tm_out = out;
  tm_start = tm_last = now();
}

int hs_timings_on(void)
{
  return tm_out != NULL;
}

void hs_timing(const char *fmt, ...)
{
  if (!tm_out)
    return;
  double t = now();
  char stage[96];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(stage, sizeof stage, fmt, ap);
  va_end(ap);
  struct rusage ru;
  double peak = getrusage(RUSAGE_SELF, &ru) == 0
                    ? (double)ru.ru_maxrss / 1024 : 0;
  fprintf(tm_out, "tenure-heap: timing: %-28s %+7.3f s  (%7.3f s)  rss %5.0f "
          "MB  peak %5.0f MB\n", stage, t - tm_last, t - tm_start, rss_mb(),
          peak);
  fflush(tm_out);
  tm_last = t;
}
