/* errors.c -- messages for the collector's negative error codes. */
#include "gc_internal.h"

const char *gc_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
  case -EINVAL:
    return "invalid argument";
  case -ENOMEM:
    return "out of memory";
  case -ENOENT:
    return "no such entry";
  case -EPROTO:
    return "heap verification failed";
  case -EBUSY:
    return "resource busy";
  default:
    return "unknown error";
  }
}
