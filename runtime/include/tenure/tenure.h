/* tenure.h -- the umbrella header: the collector (gc.h, with its types,
 * options, statistics and snapshots), the runtime's values (rt.h, with
 * strings, arrays, maps, buffers, encodings, WeakMap and JSON), the event
 * loop (rt_loop.h) and the HTTP server (rt_http.h, with its request parser,
 * cookies, urlencoded and multipart bodies).
 *
 * Everything tenure installs lives under <tenure/...>, so it never shadows
 * another library's header: Boehm GC's <gc.h> and <gc/gc.h> can be
 * included in the same file (tests/install checks that).
 */
#ifndef TENURE_TENURE_H
#define TENURE_TENURE_H

#include <tenure/gc.h>
#include <tenure/rt.h>
#include <tenure/rt_loop.h>
#include <tenure/rt_http.h>
#include <tenure/rt_cookie.h>
#include <tenure/rt_urlencoded.h>
#include <tenure/rt_multipart.h>

#endif /* TENURE_TENURE_H */
