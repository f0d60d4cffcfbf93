/* store_cluster.h -- a real Redis Cluster for the store tests: cluster
 * nodes (redis-server --cluster-enabled yes) on free loopback ports with
 * their config in a temporary directory, joined by redis-cli --cluster
 * create, and the redis-cluster:// fixture of store_test.h built on them
 * (three masters, no replicas).  Included by store_test.h, after what it
 * uses (spawn_server, free_port, the fixture type). */
#ifndef TENURE_STORE_CLUSTER_H
#define TENURE_STORE_CLUSTER_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

/* Starts a cluster node on PORT, its cluster bus on BUS, its nodes-PORT.conf
 * in DIR, with NODE_TIMEOUT_MS as cluster-node-timeout; waits until it
 * accepts. */
static inline pid_t start_cluster_node(int port, int bus, const char *dir,
                                       int node_timeout_ms) {
  char p[16], b[16], conf[64], tmo[16];
  snprintf(p, sizeof p, "%d", port);
  snprintf(b, sizeof b, "%d", bus);
  snprintf(conf, sizeof conf, "nodes-%d.conf", port);
  snprintf(tmo, sizeof tmo, "%d", node_timeout_ms);
  char *argv[] = {"redis-server",
                  "--port",
                  p,
                  "--cluster-enabled",
                  "yes",
                  "--cluster-config-file",
                  conf,
                  "--cluster-port",
                  b,
                  "--dir",
                  (char *)dir,
                  "--save",
                  "",
                  "--appendonly",
                  "no",
                  "--cluster-node-timeout",
                  tmo,
                  "--bind",
                  "127.0.0.1",
                  "--daemonize",
                  "no",
                  NULL};
  return spawn_server(argv, port);
}

/* Runs ARGV (argv[0] on PATH) with its output appended to LOG, waits, and
 * returns its exit status (-1 when it did not exit). */
static inline int run_logged(char *const argv[], const char *log) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Joins the N nodes on PORTS into one cluster (redis-cli --cluster create,
 * REPLICAS replicas per master), its output in DIR/create.log.  Returns
 * redis-cli's exit status. */
static inline int create_cluster(const int *ports, int n, int replicas,
                                 const char *dir) {
  char *argv[32];
  char addr[24][32], reps[8], log[128];
  int a = 0;
  assert_true(n <= 24);
  argv[a++] = "redis-cli";
  argv[a++] = "--cluster";
  argv[a++] = "create";
  for (int i = 0; i < n; i++) {
    snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", ports[i]);
    argv[a++] = addr[i];
  }
  snprintf(reps, sizeof reps, "%d", replicas);
  argv[a++] = "--cluster-replicas";
  argv[a++] = reps;
  argv[a++] = "--cluster-yes";
  argv[a] = NULL;
  snprintf(log, sizeof log, "%s/create.log", dir);
  return run_logged(argv, log);
}

/* Whether the node on PORT says cluster_state:ok (asked through
 * redis-cli). */
static inline bool cluster_state_ok_cli(int port) {
  char c[64], line[256];
  snprintf(c, sizeof c, "redis-cli -p %d cluster info 2>/dev/null", port);
  FILE *p = popen(c, "r");
  bool ok = false;
  while (p != NULL && fgets(line, sizeof line, p) != NULL)
    ok |= strncmp(line, "cluster_state:ok", 16) == 0;
  if (p != NULL)
    pclose(p);
  return ok;
}

/* Removes DIR and the files in it. */
static inline void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d != NULL && (de = readdir(d)) != NULL) {
    char f[512];
    if (de->d_name[0] == '.')
      continue;
    snprintf(f, sizeof f, "%s/%s", dir, de->d_name);
    unlink(f);
  }
  if (d != NULL)
    closedir(d);
  rmdir(dir);
}

/* --- The redis-cluster:// fixture ----------------------------------------- */

/* Three masters: port[0..2] are theirs, port[3..5] their cluster buses.
 * The node timeout is long (10 s), so the fixture's pauses (the timeout,
 * under valgrind 4 s) never start a failover: this fixture is the store
 * contract, failovers are test_redis_cluster.c's. */
#define FX_CLUSTER_MASTERS 3
#define FX_CLUSTER_NODE_TIMEOUT_MS 10000

static inline const char *fx_cluster_dir(void) {
  static char dir[64];
  return dir;
}

static inline void fx_cluster_cleanup(void) {
  if (fx_cluster_dir()[0] != '\0')
    remove_dir(fx_cluster_dir());
}

/* After fixture_stop_servers: the same nodes again, which find each other
 * through their nodes-PORT.conf. */
static inline void fx_cluster_restart(store_fixture_t *f) {
  for (int i = 0; i < FX_CLUSTER_MASTERS; i++)
    f->pid[i] =
        start_cluster_node(f->port[i], f->port[FX_CLUSTER_MASTERS + i],
                           fx_cluster_dir(), FX_CLUSTER_NODE_TIMEOUT_MS);
}

static inline void fx_cluster_start(store_fixture_t *f) {
  char *dir = (char *)fx_cluster_dir();
  snprintf(dir, 64, "/tmp/tenure-fx-cluster-XXXXXX");
  assert_non_null(mkdtemp(dir));
  atexit(fx_cluster_cleanup);
  f->n = FX_CLUSTER_MASTERS; /* the pids to stop: the masters' */
  for (int i = 0; i < 2 * FX_CLUSTER_MASTERS; i++) {
    bool again;
    do { /* distinct ports, buses included */
      f->port[i] = free_port();
      again = false;
      for (int j = 0; j < i; j++)
        again |= f->port[j] == f->port[i];
    } while (again);
  }
  fx_cluster_restart(f);
  if (create_cluster(f->port, FX_CLUSTER_MASTERS, 0, dir) != 0)
    fail_msg("redis-cli --cluster create failed (see %s/create.log)", dir);
  for (int i = 0; i < FX_CLUSTER_MASTERS; i++) {
    int tries = 0;
    while (!cluster_state_ok_cli(f->port[i]) && tries++ < 600)
      usleep(50000);
  }
  snprintf(f->url, sizeof f->url,
           "redis-cluster://127.0.0.1:%d,127.0.0.1:%d?timeout-ms=%d",
           f->port[0], f->port[1], test_under_valgrind() ? 4000 : 1000);
}

#endif
