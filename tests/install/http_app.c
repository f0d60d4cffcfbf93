/* http_app.c -- an express-style application built out of tree against an
 * installed tenure (tests/install/test_install.sh): one middleware, one GET
 * route with a :param, a port the kernel picks; SIGTERM stops it (exit 0).
 *   app.use((req, res, next) => { res.set('X-App', 'http_app'); next(); });
 *   app.get('/hi/:name', (req, res) => res.send(`hi ${req.params.name}\n`));
 */
#include <stdio.h>
#include <tenure/rt_http.h>
#include <tenure/tenure.h>

static void tag(rt_value_t *req, void *data) {
  rt_res_set_header(req, "X-App", (const char *)data);
  rt_next(req, 0);
}

static void hi(rt_value_t *req, void *data) {
  (void)data;
  rt_value_t name = rt_map_get_cstr(rt_req_get(req, RT_REQ_PARAMS), "name");
  char out[256];
  int n = snprintf(out, sizeof out, "hi %.*s\n", (int)rt_string_length(name),
                   rt_string_data(name));
  rt_res_send(req, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
}

int main(int argc, char **argv) {
  gc_options_t go;
  gc_options_init(&go);
  gc_heap_t *h;
  rt_runtime_t *rt;
  rt_loop_t *loop;
  rt_app_t *app;
  rt_server_t *srv;
  if (gc_options_from_env_and_argv(&go, &argc, argv) < 0 ||
      gc_heap_create(&go, &h) < 0 || rt_runtime_create(h, &rt) < 0 ||
      rt_loop_create(rt, &loop) < 0 || rt_app_create(rt, &app) < 0)
    return 1;
  rt_app_use(app, NULL, tag, "http_app");
  rt_app_get(app, "/hi/:name", hi, NULL);
  if (rt_server_create(loop, app, NULL, &srv) < 0 ||
      rt_server_listen(srv, "127.0.0.1", 0) < 0)
    return 1;
  rt_server_handle_signals(srv);
  printf("http_app listening on http://127.0.0.1:%d/\n", rt_server_port(srv));
  fflush(stdout);
  rt_loop_run(loop);
  rt_server_destroy(srv);
  rt_loop_destroy(loop);
  rt_app_destroy(app);
  rt_runtime_destroy(rt);
  return 0;
}
