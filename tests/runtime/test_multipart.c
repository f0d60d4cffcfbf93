/* test_multipart.c -- the streaming multipart/form-data parser (every split
 * point, near-boundaries, CRLF rules, each limit and malformed case) and
 * the form on it (fields, stored files with their SHA-256, charsets, and
 * no file left behind by a form that failed). */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_test.h"

#include <tenure/rt_json.h>
#include <tenure/rt_multipart.h>

#define CT "multipart/form-data; boundary=XyZ"

/* --- A recording of the parser's callbacks ---------------------------------- */

/* Every event as text: "[name|filename|type|charset]" for a part (with
 * "-" for what is absent), its data bytes as they are, "<end>" and "<fin>";
 * an error appends "!status msg".  Data pieces are concatenated, so any
 * split of the body must give the same text. */
typedef struct rec {
  char *s;
  size_t len, cap;
  size_t pieces;
} rec_t;

static void put(rec_t *r, const void *p, size_t n) {
  if (r->len + n + 1 > r->cap) {
    r->cap = (r->len + n + 1) * 2;
    r->s = realloc(r->s, r->cap);
    assert_non_null(r->s);
  }
  memcpy(r->s + r->len, p, n);
  r->len += n;
  r->s[r->len] = '\0';
}

static void puts_(rec_t *r, const char *s) { put(r, s, strlen(s)); }

static void put_opt(rec_t *r, const char *s, size_t n) {
  if (s == NULL)
    puts_(r, "-");
  else
    put(r, s, n);
}

static int rec_begin(void *data, const rt_multipart_part_t *p) {
  rec_t *r = data;
  puts_(r, "[");
  put(r, p->name, p->name_len);
  puts_(r, "|");
  put_opt(r, p->filename, p->filename_len);
  puts_(r, "|");
  put_opt(r, p->content_type, p->content_type_len);
  puts_(r, "|");
  put_opt(r, p->charset, p->charset_len);
  puts_(r, p->is_file ? "|file]" : "]");
  return 0;
}

static int rec_data(void *data, const char *at, size_t n) {
  rec_t *r = data;
  assert_true(n > 0);
  r->pieces++;
  put(r, at, n);
  return 0;
}

static int rec_end(void *data) {
  puts_((rec_t *)data, "<end>");
  return 0;
}

static int rec_fin(void *data) {
  puts_((rec_t *)data, "<fin>");
  return 0;
}

static const rt_multipart_cb_t rec_cb = {rec_begin, rec_data, rec_end,
                                         rec_fin};

/* Parses BODY[0..LEN) fed in chunks ending at CUTS[0..NCUTS) (increasing),
 * then ends it; returns the recording (free it).  Checks that an error is
 * sticky and reported the same by write and end. */
static char *parse_cuts(const char *ct, const rt_multipart_limits_t *lim,
                        const char *body, size_t len, const size_t *cuts,
                        size_t ncuts) {
  rec_t r = {0};
  puts_(&r, "");
  rt_multipart_t *p = NULL;
  assert_int_equal(rt_multipart_create(ct, lim, &rec_cb, &r, &p, NULL), 0);
  size_t at = 0;
  int err = 0;
  for (size_t i = 0; i <= ncuts && err == 0; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    err = rt_multipart_write(p, body + at, end - at);
    at = end;
  }
  if (err == 0)
    err = rt_multipart_end(p);
  const char *msg;
  int status = rt_multipart_error(p, &msg);
  if (err != 0) {
    assert_true(status == 400 || status == 413 || status == 500);
    assert_int_equal(err, status == 400 ? -EPROTO : -E2BIG);
    /* Sticky. */
    assert_int_equal(rt_multipart_write(p, "x", 1), err);
    assert_int_equal(rt_multipart_end(p), err);
    char e[256];
    snprintf(e, sizeof e, "!%d %s", status, msg);
    puts_(&r, e);
  } else {
    assert_int_equal(status, 0);
  }
  rt_multipart_destroy(p);
  return r.s;
}

static char *parse_whole(const char *ct, const rt_multipart_limits_t *lim,
                         const char *body, size_t len) {
  return parse_cuts(ct, lim, body, len, NULL, 0);
}

/* Byte by byte. */
static char *parse_bytes(const char *ct, const rt_multipart_limits_t *lim,
                         const char *body, size_t len) {
  size_t *cuts = malloc((len + 1) * sizeof *cuts);
  for (size_t i = 0; i < len; i++)
    cuts[i] = i;
  char *s = parse_cuts(ct, lim, body, len, cuts, len);
  free(cuts);
  return s;
}

/* BODY parses to WANT whole, byte by byte, and split at every position
 * (and at every pair of positions when it is short). */
static void check_lim(const rt_multipart_limits_t *lim, const char *body,
                      size_t len, const char *want) {
  char *s = parse_whole(CT, lim, body, len);
  if (strcmp(s, want) != 0)
    fail_msg("whole: got\n%s\nwant\n%s", s, want);
  free(s);
  s = parse_bytes(CT, lim, body, len);
  assert_string_equal(s, want);
  free(s);
  for (size_t i = 0; i <= len; i++) {
    s = parse_cuts(CT, lim, body, len, &i, 1);
    if (strcmp(s, want) != 0)
      fail_msg("split at %zu: got\n%s\nwant\n%s", i, s, want);
    free(s);
    if (len <= 200)
      for (size_t j = i; j <= len; j++) {
        size_t c[2] = {i, j};
        s = parse_cuts(CT, lim, body, len, c, 2);
        if (strcmp(s, want) != 0)
          fail_msg("split at %zu, %zu: got\n%s\nwant\n%s", i, j, s, want);
        free(s);
      }
  }
}

static void check(const char *body, const char *want) {
  check_lim(NULL, body, strlen(body), want);
}

#define CD "Content-Disposition: form-data; "

/* --- The boundary ----------------------------------------------------------- */

static void test_boundary_from_content_type(void **state) {
  (void)state;
  char b[71];
  const char *why = NULL;
#define B(ct) rt_multipart_boundary(ct, strlen(ct), b, &why)
  assert_int_equal(B("multipart/form-data; boundary=abc"), 3);
  assert_string_equal(b, "abc");
  assert_int_equal(B("Multipart/Form-Data;BOUNDARY=\"a b:c\" ; x=y"), 5);
  assert_string_equal(b, "a b:c");
  assert_int_equal(B("multipart/form-data; charset=utf-8; boundary="
                     "----WebKitFormBoundary7MA4YWxkTrZu0gW"),
                   37);
  assert_int_equal(B("multipart/form-data; boundary=\"'()+_,-./:=?\""), 12);
  char seventy[128];
  snprintf(seventy, sizeof seventy, "multipart/form-data; boundary=%070d", 7);
  assert_int_equal(B(seventy), 70);
  /* Refused, each with its reason. */
  snprintf(seventy, sizeof seventy, "multipart/form-data; boundary=%071d", 7);
  assert_int_equal(B(seventy), -EINVAL);
  assert_non_null(strstr(why, "1 to 70"));
  assert_int_equal(B("multipart/form-data; boundary=\"\""), -EINVAL);
  assert_non_null(strstr(why, "1 to 70"));
  assert_int_equal(B("multipart/form-data"), -EINVAL);
  assert_non_null(strstr(why, "no boundary"));
  assert_int_equal(B("multipart/form-data; boundary="), -EINVAL);
  assert_int_equal(B("multipart/mixed; boundary=abc"), -EINVAL);
  assert_non_null(strstr(why, "not multipart/form-data"));
  assert_int_equal(B("application/x-www-form-urlencoded"), -EINVAL);
  assert_int_equal(B("multipart/form-data; boundary=a; boundary=b"), -EINVAL);
  assert_non_null(strstr(why, "twice"));
  assert_int_equal(B("multipart/form-data; boundary=\"a\rb\""), -EINVAL);
  assert_non_null(strstr(why, "invalid character"));
  assert_int_equal(B("multipart/form-data; boundary=\"ab \""), -EINVAL);
  assert_int_equal(B("multipart/form-data; boundary=\"abc"), -EINVAL);
  assert_non_null(strstr(why, "malformed"));
  assert_int_equal(B("multipart/form-data; boundary=a\"b"), -EINVAL);
#undef B
  rt_multipart_t *p = (rt_multipart_t *)1;
  assert_int_equal(rt_multipart_create("text/plain", NULL, &rec_cb, NULL, &p,
                                       &why),
                   -EINVAL);
  assert_ptr_equal(p, (rt_multipart_t *)1); /* untouched */
  assert_int_equal(rt_multipart_create(NULL, NULL, &rec_cb, NULL, &p, NULL),
                   -EINVAL);
}

/* --- Parsing ----------------------------------------------------------------- */

static void test_parse_fields_and_file(void **state) {
  (void)state;
  check("--XyZ\r\n" CD "name=\"title\"\r\n\r\nHello\r\n"
        "--XyZ\r\n" CD "name=\"up\"; filename=\"a.txt\"\r\n"
        "Content-Type: text/plain; charset=\"UTF-8\"\r\n\r\n"
        "line one\r\nline two\r\n\r\n"
        "--XyZ\r\ncontent-disposition: FORM-DATA; name=tok; x-other=\"q;\"\r\n"
        "X-Ignored: yes\r\n\r\nv\r\n--XyZ--\r\n",
        "[title|-|-|-]Hello<end>"
        "[up|a.txt|text/plain; charset=\"UTF-8\"|UTF-8|file]"
        "line one\r\nline two\r\n<end>"
        "[tok|-|-|-]v<end><fin>");
}

static void test_parse_near_boundaries(void **state) {
  (void)state;
  /* Almost the delimiter, in many ways, inside the data: all data. */
  check("--XyZ\r\n" CD "name=a\r\n\r\n"
        "\r\n--Xy!\r\n--X\r\r\n--XyY\n--XyZ--XyZ\r\n-\r\n\r\r\r\n--"
        "\r\n--Xy"
        "\r\n--XyZ--\r\n",
        "[a|-|-|-]\r\n--Xy!\r\n--X\r\r\n--XyY\n--XyZ--XyZ\r\n-\r\n\r\r\r\n--"
        "\r\n--Xy<end><fin>");
  /* Data that ends in CR, LF, "\r\n" or "--" right before the delimiter. */
  check("--XyZ\r\n" CD "name=a\r\n\r\nx\r\r\n--XyZ\r\n" CD
        "name=b\r\n\r\n\n\r\n--XyZ\r\n" CD "name=c\r\n\r\n\r\n\r\n--XyZ\r\n" CD
        "name=d\r\n\r\n--\r\n--XyZ--",
        "[a|-|-|-]x\r<end>[b|-|-|-]\n<end>[c|-|-|-]\r\n<end>"
        "[d|-|-|-]--<end><fin>");
  /* The boundary itself, then something that is not padding, CRLF or "--":
   * the boundary occurred in the data, which is malformed. */
  check("--XyZ\r\n" CD "name=a\r\n\r\nab\r\n--XyZx\r\n--XyZ--",
        "[a|-|-|-]ab<end>!400 malformed multipart body: a boundary is "
        "followed by something other than CRLF or \"--\"");
  check("--XyZ\r\n" CD "name=a\r\n\r\nab\r\n--XyZ-x",
        "[a|-|-|-]ab<end>!400 malformed multipart body: a boundary is "
        "followed by something other than CRLF or \"--\"");
}

static void test_parse_crlf_and_framing(void **state) {
  (void)state;
  /* A preamble (even one that looks like a boundary) and an epilogue are
   * ignored; transport padding after a boundary. */
  check("preamble --XyZ\r\nmore\r\n--XyZ  \t\r\n" CD "name=a\r\n\r\n1\r\n"
        "--XyZ \r\n" CD "name=b\r\n\r\n2\r\n--XyZ--epilogue\r\n--XyZ\r\n",
        "[a|-|-|-]1<end>[b|-|-|-]2<end><fin>");
  /* The first boundary after a CRLF. */
  check("\r\n--XyZ\r\n" CD "name=a\r\n\r\n1\r\n--XyZ--",
        "[a|-|-|-]1<end><fin>");
  /* Line ends: a bare LF after a boundary, in headers, a bare CR. */
  check("--XyZ\n" CD "name=a\r\n\r\n1\r\n--XyZ--",
        "!400 malformed multipart body: a boundary is followed by something "
        "other than CRLF or \"--\"");
  check("--XyZ\r\n" CD "name=a\n\r\n1\r\n--XyZ--",
        "!400 malformed multipart body: a bare LF in part headers");
  check("--XyZ\r\n" CD "name=a\r\nX: a\rb\r\n\r\n1\r\n--XyZ--",
        "!400 malformed multipart body: a bare CR in part headers");
  /* Empty parts: an empty value, an empty file, no parts at all. */
  check("--XyZ\r\n" CD "name=e\r\n\r\n\r\n--XyZ\r\n" CD
        "name=f; filename=\"\"\r\n\r\n\r\n--XyZ--",
        "[e|-|-|-]<end>[f||-|-|file]<end><fin>");
  check("--XyZ--", "<fin>");
  check("--XyZ--\r\n", "<fin>");
}

static void test_parse_disposition(void **state) {
  (void)state;
  /* Quoted strings: '\' escapes only '"' and '\'; a Windows path keeps its
   * backslashes; ';' inside quotes; other parameters ignored. */
  check("--XyZ\r\n" CD "name=\"a\\\"b;c\"; filename=\"C:\\dir\\f \\\\.txt\""
        "\r\n\r\n\r\n--XyZ--",
        "[a\"b;c|C:\\dir\\f \\.txt|-|-|file]<end><fin>");
  /* filename* (RFC 5987) wins over filename, in UTF-8 or ISO-8859-1. */
  check("--XyZ\r\n" CD "name=u; filename=\"plain.txt\"; "
        "filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\n\r\n"
        "--XyZ\r\n" CD "filename*=iso-8859-1'en'caf%E9.txt; name=l\r\n\r\n"
        "\r\n--XyZ--",
        "[u|\xE2\x82\xAC rates.txt|-|-|file]<end>"
        "[l|caf\xC3\xA9.txt|-|-|file]<end><fin>");
  static const struct {
    const char *cd, *why;
  } bad[] = {
      {CD "filename=x", "a part has no name"},
      {"Content-Disposition: attachment; name=a", "is not form-data"},
      {CD "name=a; name=b", "given twice"},
      {CD "name=a; filename=x; filename=y", "given twice"},
      {CD "name=\"a", "bad Content-Disposition parameters"},
      {CD "name", "bad Content-Disposition parameters"},
      {CD "name=a b\"", "bad Content-Disposition parameters"},
      {CD "name=a; filename*=utf-8%E2", "charset'language'value"},
      {CD "name=a; filename*=koi8-r''%E2", "other than UTF-8"},
      {CD "name=a; filename*=utf-8''%E", "bad %-escape"},
      {"X-Other: 1", "no Content-Disposition"},
      {CD "name=a\r\n" CD "name=b", "two Content-Disposition"},
      {CD "name=a\r\nContent-Type: a\r\nContent-Type: b", "two Content-Type"},
      {CD "name=a\r\nContent-Type: text/plain; charset", "Content-Type"},
      {CD "name=a\r\n folded", "folded"},
      {CD "name=a\r\nNo colon", "not \"Name: value\""},
      {CD "name=a\r\n: empty name", "not \"Name: value\""},
      {"", "no Content-Disposition"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char body[512], want[256];
    snprintf(body, sizeof body, "--XyZ\r\n%s%s\r\n1\r\n--XyZ--", bad[i].cd,
             bad[i].cd[0] ? "\r\n" : "");
    char *s = parse_whole(CT, NULL, body, strlen(body));
    snprintf(want, sizeof want, "!400 malformed multipart body: ");
    if (strncmp(s, want, strlen(want)) != 0 || strstr(s, bad[i].why) == NULL)
      fail_msg("%s: got '%s', want '%s'", bad[i].cd, s, bad[i].why);
    free(s);
  }
}

static void test_parse_truncated(void **state) {
  (void)state;
  static const struct {
    const char *body, *why;
  } cut[] = {
      {"", "before the first boundary"},
      {"garbage without any boundary", "before the first boundary"},
      {"--XyZ", "after a boundary"},
      {"--XyZ-", "after a boundary"},
      {"--XyZ\r\n" CD "name=a\r\n", "in part headers"},
      {"--XyZ\r\n" CD "name=a\r\n\r\ndata", "in a part"},
      {"--XyZ\r\n" CD "name=a\r\n\r\ndata\r\n--Xy", "in a part"},
      {"--XyZ\r\n" CD "name=a\r\n\r\ndata\r\n--XyZ\r\n", "in part headers"},
  };
  for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
    char *s = parse_bytes(CT, NULL, cut[i].body, strlen(cut[i].body));
    if (strstr(s, "!400 malformed multipart body: the body ended ") == NULL ||
        strstr(s, cut[i].why) == NULL)
      fail_msg("%s: got '%s'", cut[i].body, s);
    assert_null(strstr(s, "<fin>"));
    free(s);
  }
}

/* A body of N fields "f<i>" of value "v<i>" and M files. */
static char *body_of(size_t nfields, size_t nfiles, size_t vlen) {
  rec_t r = {0};
  puts_(&r, "");
  for (size_t i = 0; i < nfields + nfiles; i++) {
    char h[128];
    snprintf(h, sizeof h, "--XyZ\r\n" CD "name=\"f%zu\"%s\r\n\r\n", i,
             i >= nfields ? "; filename=\"x.bin\"" : "");
    puts_(&r, h);
    for (size_t k = 0; k < vlen; k++)
      put(&r, "v", 1);
    puts_(&r, "\r\n");
  }
  puts_(&r, "--XyZ--");
  return r.s;
}

/* The limit: N passes; N + 1 fails with 413 naming it (in every split). */
static void check_limit(rt_multipart_limits_t *lim, const char *body_ok,
                        const char *body_over, const char *name) {
  char *s = parse_whole(CT, lim, body_ok, strlen(body_ok));
  if (strstr(s, "<fin>") == NULL)
    fail_msg("%s: within the limit: %s", name, s);
  free(s);
  s = parse_whole(CT, lim, body_over, strlen(body_over));
  char *msg = strstr(s, "!413 ");
  if (msg == NULL || strstr(msg, name) == NULL)
    fail_msg("%s: over the limit: %s", name, s);
  size_t len = strlen(body_over);
  char *b = parse_bytes(CT, lim, body_over, len);
  assert_string_equal(s, b);
  free(b);
  for (size_t i = 0; i <= len; i += 7) {
    b = parse_cuts(CT, lim, body_over, len, &i, 1);
    assert_string_equal(s, b);
    free(b);
  }
  free(s);
}

static void test_parse_limits(void **state) {
  (void)state;
  rt_multipart_limits_t lim;
  rt_multipart_limits_init(&lim);
  assert_int_equal(lim.max_fields, 1000);
  assert_int_equal(lim.max_field_bytes, 1024 * 1024);
  char *ok, *over;
  /* Fields and files, counted apart. */
  rt_multipart_limits_init(&lim);
  lim.max_fields = 3;
  ok = body_of(3, 5, 1);
  over = body_of(4, 0, 1);
  check_limit(&lim, ok, over, "too many fields (max_fields 3)");
  free(ok);
  free(over);
  rt_multipart_limits_init(&lim);
  lim.max_files = 2;
  ok = body_of(5, 2, 1);
  over = body_of(0, 3, 1);
  check_limit(&lim, ok, over, "too many files (max_files 2)");
  free(ok);
  free(over);
  /* Sizes: a field's value, a file, the headers of a part, the body. */
  rt_multipart_limits_init(&lim);
  lim.max_field_bytes = 10;
  ok = body_of(2, 1, 10);
  over = body_of(2, 0, 11);
  check_limit(&lim, ok, over, "field value too large (max_field_bytes 10)");
  free(ok);
  free(over);
  rt_multipart_limits_init(&lim);
  lim.max_file_bytes = 10;
  ok = body_of(1, 2, 10);
  over = body_of(0, 2, 11);
  check_limit(&lim, ok, over, "file too large (max_file_bytes 10)");
  free(ok);
  free(over);
  ok = body_of(1, 0, 1);
  /* "Content-Disposition: form-data; name="f0"\r\n\r\n" */
  size_t hl = strlen(CD "name=\"f0\"\r\n\r\n");
  rt_multipart_limits_init(&lim);
  lim.max_header_bytes = hl;
  over = body_of(0, 1, 1); /* the filename parameter makes it longer */
  check_limit(&lim, ok, over, "part headers too large (max_header_bytes");
  free(over);
  rt_multipart_limits_init(&lim);
  lim.max_total_bytes = strlen(ok);
  over = malloc(strlen(ok) + 3);
  sprintf(over, "%s\r\n", ok); /* an epilogue: still counts */
  check_limit(&lim, ok, over, "body too large (max_total_bytes");
  free(over);
  free(ok);
  /* What is over a limit is never delivered. */
  rt_multipart_limits_init(&lim);
  lim.max_field_bytes = 4;
  const char *b = "--XyZ\r\n" CD "name=a\r\n\r\n1234567\r\n--XyZ--";
  char *s = parse_bytes(CT, &lim, b, strlen(b));
  assert_string_equal(s, "[a|-|-|-]1234!413 field value too large "
                         "(max_field_bytes 4)");
  free(s);
}

/* Callbacks that fail stop the parse with 500. */
static int fail_data(void *data, const char *at, size_t n) { return -EIO; }

static void test_parse_callback_error(void **state) {
  (void)state;
  rt_multipart_cb_t cb = rec_cb;
  cb.on_part_data = fail_data;
  rec_t r = {0};
  rt_multipart_t *p;
  assert_int_equal(rt_multipart_create(CT, NULL, &cb, &r, &p, NULL), 0);
  const char *b = "--XyZ\r\n" CD "name=a\r\n\r\n1\r\n--XyZ--";
  assert_int_equal(rt_multipart_write(p, b, strlen(b)), -EIO);
  const char *msg;
  assert_int_equal(rt_multipart_error(p, &msg), 500);
  assert_non_null(strstr(msg, "callback failed"));
  rt_multipart_destroy(p);
  free(r.s);
}

/* Big data in chunks of every size from 1 to 97: delivered in pieces that
 * point into the chunks (never copied whole). */
static void test_parse_big_chunks(void **state) {
  (void)state;
  size_t n = 300000;
  char *body = malloc(n + 200);
  size_t len = (size_t)sprintf(body, "--XyZ\r\n" CD "name=a\r\n\r\n");
  for (size_t i = 0; i < n; i++)
    body[len + i] = "\r\n--XyZ"[i % 7 == 6 ? 0 : i % 6]; /* never all of it */
  len += n;
  len += (size_t)sprintf(body + len, "\r\n--XyZ--");
  char *want = parse_whole(CT, NULL, body, len);
  static size_t cuts[40000];
  size_t nc = 0;
  for (size_t at = 0, step = 1; nc < 40000; step = step % 97 + 1) {
    at += step;
    if (at >= len)
      break;
    cuts[nc++] = at;
  }
  char *got = parse_cuts(CT, NULL, body, len, cuts, nc);
  assert_string_equal(got, want);
  assert_non_null(strstr(want, "<end><fin>"));
  assert_int_equal(strlen(want), strlen("[a|-|-|-]") + n + 10);
  free(got);
  free(want);
  free(body);
}

/* --- Forms ---------------------------------------------------------------- */

static void make_dir(char *dir) {
  strcpy(dir, "/tmp/tenure-mp-XXXXXX");
  assert_non_null(mkdtemp(dir));
}

static size_t dir_count(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

/* Removes the files left in DIR and DIR. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') {
      char p[512];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
  closedir(d);
  assert_int_equal(rmdir(dir), 0);
}

static char *json(rt_runtime_t *rt, rt_value_t v) {
  rt_strbuf_t b;
  rt_strbuf_init(&b);
  assert_int_equal(rt_json_stringify(rt, v, NULL, &b), 0);
  rt_strbuf_append(&b, "", 1);
  return b.data;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return s;
}

static const char *str(rt_value_t m, const char *k) {
  rt_value_t v = rt_map_get_cstr(m, k);
  assert_true(rt_is_string(v));
  return rt_string_data(v);
}

static void test_form_fields_and_files(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  char dir[64];
  make_dir(dir);
  const char *body =
      "--XyZ\r\n" CD "name=\"tag\"\r\n\r\none\r\n"
      "--XyZ\r\n" CD "name=\"doc\"; filename=\"../../etc/passwd.TXT\"\r\n"
      "Content-Type: text/plain\r\n\r\nhello file\r\n\r\n"
      "--XyZ\r\n" CD "name=\"tag\"\r\n\r\ntwo\r\n"
      "--XyZ\r\n" CD "name=\"title\"\r\n\r\n\xE2\x82\xAC \xFF\r\n"
      "--XyZ\r\n" CD "name=\"doc\"; filename=\"noext\"\r\n\r\n\r\n"
      "--XyZ\r\n" CD "name=\"tag\"\r\n\r\nthree\r\n--XyZ--\r\n";
  rt_form_t *f = NULL;
  assert_int_equal(rt_form_create(rt, CT, dir, NULL, &f), 0);
  size_t len = strlen(body);
  for (size_t i = 0; i < len; i += 5)
    assert_int_equal(rt_form_write(f, body + i, len - i < 5 ? len - i : 5), 0);
  rt_value_t *fields = rt_handle(h, RT_NONE), *files = rt_handle(h, RT_NONE);
  assert_int_equal(rt_form_finish(f, fields, files), 0);
  const char *msg;
  assert_int_equal(rt_form_error(f, &msg), 0);
  rt_form_destroy(f);
  gc_collect(h, GC_COLLECT_FULL);
  char *j = json(rt, *fields);
  assert_string_equal(j, "{\"tag\":[\"one\",\"two\",\"three\"],"
                         "\"title\":\"\xE2\x82\xAC \xEF\xBF\xBD\"}");
  free(j);
  assert_int_equal(rt_array_length(*files), 2);
  rt_value_t a = rt_array_get(*files, 0);
  assert_string_equal(str(a, "field"), "doc");
  assert_string_equal(str(a, "originalName"), "../../etc/passwd.TXT");
  assert_string_equal(str(a, "type"), "text/plain");
  assert_int_equal(rt_int_value(rt_map_get_cstr(a, "size")), 12);
  assert_string_equal(str(a, "sha256"), "3be98573a2f76fb079684faf242277908f"
                                        "1550a7a0c238b01d9da798ccaa8a1d");
  /* Stored inside the directory under a generated name, mode 0600. */
  const char *path = str(a, "path");
  assert_int_equal(strncmp(path, dir, strlen(dir)), 0);
  const char *base = path + strlen(dir);
  assert_int_equal(strncmp(base, "/upload-", 8), 0);
  assert_int_equal(strlen(base), 8 + 32 + 4);
  assert_string_equal(base + 40, ".TXT");
  assert_null(strchr(base + 1, '/'));
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  size_t n;
  char *content = read_file(path, &n);
  assert_int_equal(n, 12);
  assert_memory_equal(content, "hello file\r\n", 12);
  free(content);
  rt_value_t b = rt_array_get(*files, 1);
  assert_string_equal(str(b, "originalName"), "noext");
  assert_string_equal(str(b, "type"), "application/octet-stream");
  assert_int_equal(rt_int_value(rt_map_get_cstr(b, "size")), 0);
  assert_string_equal(str(b, "sha256"), "e3b0c44298fc1c149afbf4c8996fb924"
                                        "27ae41e4649b934ca495991b7852b855");
  assert_int_equal(strlen(str(b, "path")), strlen(dir) + 8 + 32);
  assert_string_not_equal(str(a, "path"), str(b, "path"));
  /* The files of a finished form stay. */
  assert_int_equal(dir_count(dir), 2);
  remove_dir(dir);
  gc_scope_close(h, &sc);
  rt_runtime_destroy(rt);
}

static void test_form_charsets(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  char dir[64];
  make_dir(dir);
  rt_value_t *fields = rt_handle(h, RT_NONE), *files = rt_handle(h, RT_NONE);
  rt_form_t *f;
  /* A part's charset; _charset_ for the others. */
  const char *body =
      "--XyZ\r\n" CD "name=a\r\nContent-Type: text/plain; charset=UTF-8\r\n"
      "\r\ncaf\xC3\xA9\r\n"
      "--XyZ\r\n" CD "name=b\r\n\r\ncaf\xE9\r\n"
      "--XyZ\r\n" CD "name=_charset_\r\n\r\nISO-8859-1\r\n--XyZ--";
  assert_int_equal(rt_form_create(rt, CT, dir, NULL, &f), 0);
  assert_int_equal(rt_form_write(f, body, strlen(body)), 0);
  assert_int_equal(rt_form_finish(f, fields, files), 0);
  rt_form_destroy(f);
  char *j = json(rt, *fields);
  assert_string_equal(j, "{\"a\":\"caf\xC3\xA9\",\"b\":\"caf\xC3\xA9\","
                         "\"_charset_\":\"ISO-8859-1\"}");
  free(j);
  /* Without: UTF-8, with U+FFFD. */
  body = "--XyZ\r\n" CD "name=b\r\n\r\ncaf\xE9\r\n--XyZ\r\n" CD
         "name=c\r\nContent-Type: text/plain; charset=latin1\r\n\r\n\xE9\r\n"
         "--XyZ--";
  assert_int_equal(rt_form_create(rt, CT, dir, NULL, &f), 0);
  assert_int_equal(rt_form_write(f, body, strlen(body)), 0);
  assert_int_equal(rt_form_finish(f, fields, files), 0);
  rt_form_destroy(f);
  j = json(rt, *fields);
  assert_string_equal(j, "{\"b\":\"caf\xEF\xBF\xBD\",\"c\":\"\xC3\xA9\"}");
  free(j);
  assert_int_equal(rt_array_length(*files), 0);
  assert_int_equal(dir_count(dir), 0);
  remove_dir(dir);
  gc_scope_close(h, &sc);
  rt_runtime_destroy(rt);
}

/* Byte I of the big file: the start of the delimiter now and then. */
static unsigned char big_byte(size_t i) {
  static const char pat[] = "\r\n--XyZbounD";
  size_t r = i % 1000;
  return r < 12 ? (unsigned char)pat[r]
                : (unsigned char)(((uint32_t)i * 2654435761u) >> 13);
}

static void test_form_big_file(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  char dir[64];
  make_dir(dir);
  const size_t n = 4 * 1024 * 1024;
  const char *ct = "multipart/form-data; boundary=\"XyZbounDary\"";
  const char *head = "--XyZbounDary\r\n" CD "name=\"big\"; filename=\"b.bin\""
                     "\r\nContent-Type: application/octet-stream\r\n\r\n";
  const char *tail = "\r\n--XyZbounDary--\r\n";
  rt_form_t *f;
  assert_int_equal(rt_form_create(rt, ct, dir, NULL, &f), 0);
  assert_int_equal(rt_form_write(f, head, strlen(head)), 0);
  unsigned char chunk[4096];
  size_t step = 1, done = 0;
  while (done < n) {
    size_t k = step < n - done ? step : n - done;
    for (size_t i = 0; i < k; i++)
      chunk[i] = big_byte(done + i);
    assert_int_equal(rt_form_write(f, (const char *)chunk, k), 0);
    done += k;
    step = step * 3 % 4093 + 1; /* 1 to 4093 bytes, all over the place */
  }
  assert_int_equal(rt_form_write(f, tail, strlen(tail)), 0);
  rt_value_t *fields = rt_handle(h, RT_NONE), *files = rt_handle(h, RT_NONE);
  assert_int_equal(rt_form_finish(f, fields, files), 0);
  rt_form_destroy(f);
  rt_value_t a = rt_array_get(*files, 0);
  assert_int_equal(rt_int_value(rt_map_get_cstr(a, "size")), (int64_t)n);
  assert_string_equal(str(a, "sha256"), "41a9ba1621d8907246e1fd702114d1a070"
                                        "1fb91b39dfa6238d8aee7060f7013b");
  size_t len;
  char *content = read_file(str(a, "path"), &len);
  assert_int_equal(len, n);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)content[i] != big_byte(i))
      fail_msg("byte %zu differs", i);
  free(content);
  remove_dir(dir);
  gc_scope_close(h, &sc);
  rt_runtime_destroy(rt);
}

/* Feeds BODY to a form in 3-byte chunks and finishes it (when the writes
 * pass); returns the status, checks the directory is empty after destroy
 * and that the message holds WHY. */
static void check_form_fails(rt_runtime_t *rt, const rt_multipart_limits_t *lim,
                             const char *body, size_t len, int want_status,
                             const char *why) {
  char dir[64];
  make_dir(dir);
  rt_form_t *f;
  assert_int_equal(rt_form_create(rt, CT, dir, lim, &f), 0);
  int err = 0;
  for (size_t i = 0; i < len && err == 0; i += 3)
    err = rt_form_write(f, body + i, len - i < 3 ? len - i : 3);
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  rt_value_t *fields = rt_handle(h, RT_UNDEFINED);
  rt_value_t *files = rt_handle(h, RT_UNDEFINED);
  if (err == 0)
    err = rt_form_finish(f, fields, files);
  assert_true(err < 0);
  assert_int_equal(*fields, RT_UNDEFINED);
  assert_int_equal(*files, RT_UNDEFINED);
  /* Failed forms stay failed. */
  assert_int_equal(rt_form_write(f, "x", 1), err);
  assert_int_equal(rt_form_finish(f, fields, files), err);
  const char *msg;
  assert_int_equal(rt_form_error(f, &msg), want_status);
  if (strstr(msg, why) == NULL)
    fail_msg("message '%s' lacks '%s'", msg, why);
  assert_int_equal(dir_count(dir), 0); /* deleted at the error */
  rt_form_destroy(f);
  assert_int_equal(dir_count(dir), 0);
  gc_scope_close(h, &sc);
  remove_dir(dir);
}

static void test_form_failures_leave_no_file(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  const char *file1 = "--XyZ\r\n" CD "name=a; filename=a.bin\r\n\r\n"
                      "0123456789\r\n";
  char body[1024];
  rt_multipart_limits_t lim;
  /* A file over its limit, after a complete one. */
  rt_multipart_limits_init(&lim);
  lim.max_file_bytes = 10;
  snprintf(body, sizeof body, "%s%s", file1,
           "--XyZ\r\n" CD "name=b; filename=b.bin\r\n\r\n01234567890\r\n"
           "--XyZ--");
  check_form_fails(rt, &lim, body, strlen(body), 413,
                   "file too large (max_file_bytes 10)");
  /* The body is cut: at finish. */
  snprintf(body, sizeof body, "%s%s", file1,
           "--XyZ\r\n" CD "name=b; filename=b.bin\r\n\r\n0123");
  check_form_fails(rt, NULL, body, strlen(body), 400, "no closing boundary");
  /* Malformed after files. */
  snprintf(body, sizeof body, "%s%s", file1,
           "--XyZ\r\n" CD "name=b; filename=b.bin\r\n\r\n01\r\n--XyZ!");
  check_form_fails(rt, NULL, body, strlen(body), 400, "boundary is followed");
  /* Too many files; the total. */
  rt_multipart_limits_init(&lim);
  lim.max_files = 1;
  snprintf(body, sizeof body, "%s%s--XyZ--", file1, file1);
  check_form_fails(rt, &lim, body, strlen(body), 413, "max_files 1");
  rt_multipart_limits_init(&lim);
  lim.max_total_bytes = strlen(file1) + 4;
  check_form_fails(rt, &lim, body, strlen(body), 413, "max_total_bytes");
  /* A form dropped half-way (the client went away) without an error. */
  char dir[64];
  make_dir(dir);
  rt_form_t *f;
  assert_int_equal(rt_form_create(rt, CT, dir, NULL, &f), 0);
  assert_int_equal(rt_form_write(f, file1, strlen(file1)), 0);
  assert_int_equal(dir_count(dir), 1);
  rt_form_destroy(f);
  assert_int_equal(dir_count(dir), 0);
  /* A bad Content-Type: a failed form that says why. */
  assert_int_equal(rt_form_create(rt, "multipart/form-data", dir, NULL, &f),
                   -EINVAL);
  assert_non_null(f);
  const char *msg;
  assert_int_equal(rt_form_error(f, &msg), 400);
  assert_non_null(strstr(msg, "boundary"));
  assert_int_equal(rt_form_write(f, "x", 1), -EINVAL);
  rt_form_destroy(f);
  /* An upload directory that does not exist. */
  char missing[80];
  snprintf(missing, sizeof missing, "%s/none", dir);
  f = (rt_form_t *)1;
  assert_int_equal(rt_form_create(rt, CT, missing, NULL, &f), -ENOENT);
  assert_null(f);
  remove_dir(dir);
  rt_runtime_destroy(rt);
}

/* Many fields made values under GC pressure. */
static void test_form_many_fields(void **state) {
  (void)state;
  rt_runtime_t *rt = rt_test_runtime();
  gc_heap_t *h = rt_heap(rt);
  gc_scope_t sc;
  gc_scope_open(h, &sc);
  char dir[64];
  make_dir(dir);
  size_t n = (size_t)test_scale(1000, 300);
  rec_t r = {0};
  puts_(&r, "");
  for (size_t i = 0; i < n; i++) {
    char part[128];
    snprintf(part, sizeof part, "--XyZ\r\n" CD "name=\"k%zu\"\r\n\r\nv%zu\r\n",
             i % 10, i);
    puts_(&r, part);
  }
  puts_(&r, "--XyZ--");
  rt_form_t *f;
  assert_int_equal(rt_form_create(rt, CT, dir, NULL, &f), 0);
  assert_int_equal(rt_form_write(f, r.s, r.len), 0);
  rt_value_t *fields = rt_handle(h, RT_NONE), *files = rt_handle(h, RT_NONE);
  assert_int_equal(rt_form_finish(f, fields, files), 0);
  rt_form_destroy(f);
  gc_collect(h, GC_COLLECT_FULL);
  assert_int_equal(rt_map_size(*fields), 10);
  for (size_t i = 0; i < n; i++) {
    char k[16], v[16];
    snprintf(k, sizeof k, "k%zu", i % 10);
    snprintf(v, sizeof v, "v%zu", i);
    rt_value_t a = rt_map_get_cstr(*fields, k);
    assert_true(rt_string_equal_cstr(rt_array_get(a, i / 10), v));
  }
  free(r.s);
  remove_dir(dir);
  gc_scope_close(h, &sc);
  rt_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_boundary_from_content_type),
      cmocka_unit_test(test_parse_fields_and_file),
      cmocka_unit_test(test_parse_near_boundaries),
      cmocka_unit_test(test_parse_crlf_and_framing),
      cmocka_unit_test(test_parse_disposition),
      cmocka_unit_test(test_parse_truncated),
      cmocka_unit_test(test_parse_limits),
      cmocka_unit_test(test_parse_callback_error),
      cmocka_unit_test(test_parse_big_chunks),
      cmocka_unit_test(test_form_fields_and_files),
      cmocka_unit_test(test_form_charsets),
      cmocka_unit_test(test_form_big_file),
      cmocka_unit_test(test_form_failures_leave_no_file),
      cmocka_unit_test(test_form_many_fields),
  };
  return cmocka_run_group_tests_name("runtime.multipart", tests, NULL, NULL);
}
