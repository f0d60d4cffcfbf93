/* fuzz_cookie.c -- libFuzzer harness for cookies.
 *
 * Each input is a Cookie header.  Every pair the parser reports must lie
 * within bounds, and serializing it (when its name is a token) then parsing
 * the result must give back exactly that name and value: what the server
 * writes in Set-Cookie, it reads back unchanged.  The value is also signed
 * and must unsign under the same secret and not under another.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/rt_cookie.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first pair, copied: what a callback is given is valid only during
 * the call. */
typedef struct one {
  char name[4097];
  size_t name_len;
  char value[4097];
  size_t value_len;
  int count;
} one_t;

static int first(void *data, const char *n, size_t nl, const char *v,
                 size_t vl) {
  one_t *o = data;
  if (o->count++ == 0) {
    if (nl > 4096 || vl > 4096)
      abort();
    memcpy(o->name, n, nl);
    o->name_len = nl;
    memcpy(o->value, v, vl);
    o->value_len = vl;
  }
  return 0;
}

static int check_pair(void *data, const char *n, size_t nl, const char *v,
                      size_t vl) {
  (void)data;
  if (nl == 0 || nl > 4096 || vl > 4096)
    abort();
  char name[4097];
  memcpy(name, n, nl);
  name[nl] = '\0';
  if (memchr(n, '\0', nl) != NULL)
    return 0; /* not a C-string name: serialize would see less */
  static char buf[16384];
  rt_cookie_opts_t o;
  rt_cookie_opts_init(&o);
  int len = rt_cookie_serialize(buf, sizeof buf, name, v, vl, &o);
  if (len == -EINVAL)
    return 0; /* not a token: refused, as it should be */
  if (len < 0)
    abort();
  static one_t back;
  back.count = 0;
  rt_cookie_each(buf, (size_t)len, first, &back);
  if (back.count != 1 || back.name_len != nl || memcmp(back.name, n, nl) ||
      back.value_len != vl || memcmp(back.value, v, vl))
    abort(); /* what we write does not read back */
  static char sig[16384];
  int sl = rt_cookie_sign(sig, sizeof sig, v, vl, "secret");
  if (sl < 0)
    abort();
  const char *k1[] = {"secret"}, *k2[] = {"other"};
  if (rt_cookie_unsign(sig, (size_t)sl, k1, 1) != (int)vl ||
      rt_cookie_unsign(sig, (size_t)sl, k2, 1) != -EACCES)
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt_cookie_each((const char *)data, size, check_pair, NULL);
  return 0;
}
