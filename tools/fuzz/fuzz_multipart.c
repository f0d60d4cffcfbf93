/* fuzz_multipart.c -- libFuzzer harness for the multipart/form-data parser.
 *
 * Input: byte 0 picks the limits (bit 0: tiny ones, so that each limit is
 * reached), bytes 1-2 a split point, the rest is a body for the boundary
 * "XyZ".  The body is parsed whole, split in two at the chosen point, and
 * byte by byte when short: the recorded callbacks (part descriptions, data
 * concatenated, ends, finish) and the verdict (status and message) must be
 * the same.  Every data piece must be non-empty and lie within the chunk
 * being fed or be a proper prefix of the delimiter; errors must be 400 or 413.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/rt_multipart.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CT "multipart/form-data; boundary=XyZ"
static const char delim[] = "\r\n--XyZ";

typedef struct rec {
  char *s;
  size_t len, cap;
  const char *chunk; /* the chunk being fed */
  size_t chunk_len;
  int in_part;
} rec_t;

static void put(rec_t *r, const void *p, size_t n) {
  if (r->len + n > r->cap) {
    r->cap = (r->len + n) * 2 + 64;
    r->s = realloc(r->s, r->cap);
    if (r->s == NULL)
      abort();
  }
  memcpy(r->s + r->len, p, n);
  r->len += n;
}

static void put_field(rec_t *r, const char *s, size_t n) {
  char len[32];
  int k = snprintf(len, sizeof len, "%zu:", s == NULL ? (size_t)-1 : n);
  put(r, len, (size_t)k);
  if (s != NULL)
    put(r, s, n);
}

static int on_begin(void *data, const rt_multipart_part_t *p) {
  rec_t *r = data;
  if (r->in_part)
    abort();
  r->in_part = 1;
  put(r, "B", 1);
  if (p->name == NULL || p->is_file != (p->filename != NULL))
    abort();
  put_field(r, p->name, p->name_len);
  put_field(r, p->filename, p->filename_len);
  put_field(r, p->content_type, p->content_type_len);
  put_field(r, p->charset, p->charset_len);
  put(r, "D", 1);
  return 0;
}

static int on_data(void *data, const char *at, size_t n) {
  rec_t *r = data;
  bool in_chunk = at >= r->chunk && at + n <= r->chunk + r->chunk_len;
  bool in_delim = n < sizeof delim - 1 && memcmp(at, delim, n) == 0;
  if (!r->in_part || n == 0 || (!in_chunk && !in_delim))
    abort();
  put(r, at, n);
  return 0;
}

static int on_end(void *data) {
  rec_t *r = data;
  if (!r->in_part)
    abort();
  r->in_part = 0;
  put(r, "E", 1);
  return 0;
}

static int on_finish(void *data) {
  put(data, "F", 1);
  return 0;
}

static const rt_multipart_cb_t cb = {on_begin, on_data, on_end, on_finish};

/* Parses BODY in chunks of at most STEP bytes, except that the first chunk
 * ends at CUT; returns the recording. */
static rec_t run(const rt_multipart_limits_t *lim, const char *body,
                 size_t len, size_t cut, size_t step) {
  rec_t r = {0};
  rt_multipart_t *p;
  if (rt_multipart_create(CT, lim, &cb, &r, &p, NULL) != 0)
    abort();
  int err = 0;
  size_t at = 0;
  while (at < len && err == 0) {
    size_t n = at == 0 && cut > 0 ? cut : len - at < step ? len - at : step;
    r.chunk = body + at;
    r.chunk_len = n;
    err = rt_multipart_write(p, body + at, n);
    at += n;
  }
  if (err == 0)
    err = rt_multipart_end(p);
  const char *msg;
  int status = rt_multipart_error(p, &msg);
  if ((err == 0) != (status == 0) ||
      (err != 0 && !(status == 400 && err == -EPROTO) &&
       !(status == 413 && err == -E2BIG)) ||
      (err != 0 && rt_multipart_write(p, "x", 1) != err))
    abort();
  char v[256];
  int k = snprintf(v, sizeof v, "|%d %s", status, msg);
  put(&r, v, (size_t)k);
  rt_multipart_destroy(p);
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return 0;
  rt_multipart_limits_t lim;
  rt_multipart_limits_init(&lim);
  if (data[0] & 1) {
    lim.max_header_bytes = 20 + (data[0] >> 1) % 64;
    lim.max_fields = (data[0] >> 1) % 4;
    lim.max_files = (data[0] >> 3) % 3;
    lim.max_field_bytes = (data[0] >> 2) % 16;
    lim.max_file_bytes = (data[0] >> 4) % 16;
    lim.max_total_bytes = 64 + (data[0] >> 1) * 8;
  }
  const char *body = (const char *)data + 3;
  size_t len = size - 3;
  size_t cut = len > 0 ? ((size_t)data[1] << 8 | data[2]) % (len + 1) : 0;
  rec_t whole = run(&lim, body, len, 0, len > 0 ? len : 1);
  rec_t split = run(&lim, body, len, cut, len > 0 ? len : 1);
  if (whole.len != split.len || memcmp(whole.s, split.s, whole.len) != 0)
    abort();
  if (len <= 512) {
    rec_t bytes = run(&lim, body, len, 0, 1);
    if (whole.len != bytes.len || memcmp(whole.s, bytes.s, whole.len) != 0)
      abort();
    free(bytes.s);
  }
  free(whole.s);
  free(split.s);
  return 0;
}
