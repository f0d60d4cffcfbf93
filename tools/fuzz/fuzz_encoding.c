/* fuzz_encoding.c -- libFuzzer harness for Buffer encodings and charsets.
 *
 * Input: one byte choosing the encoding (node's seven and a dozen iconv
 * charsets, stateful ones too), one seeding the chunk sizes, then the
 * bytes.  Decoding must give valid UTF-8 and the same text in one piece as
 * in chunks of 0-17 bytes; what decodes from latin1, hex and base64 must
 * encode back to the bytes, and UTF-8 text must encode to itself.  Every
 * input is also tried as an encoding name and as a Content-Type.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tenure/rt.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
    "utf8",      "utf16le",    "latin1",      "ascii",   "base64",
    "base64url", "hex",        "GBK",         "GB18030", "BIG5",
    "SHIFT_JIS", "EUC-JP",     "ISO-2022-JP", "UTF-16",  "UTF-7",
    "UCS-4",     "TCVN5712-1", "BIG5-HKSCS",  "EUC-KR",  "CP1252"};

static void decode_chunks(const rt_encoding_t *e, const uint8_t *p, size_t n,
                          uint32_t seed, rt_strbuf_t *out) {
  rt_decoder_t d;
  if (rt_decoder_init(&d, e) != 0)
    abort();
  size_t at = 0;
  do {
    seed = seed * 1103515245u + 12345u;
    size_t k = (seed >> 16) % 18;
    k = k < n - at ? k : n - at;
    size_t before = out->len;
    if (rt_decoder_write(&d, p + at, k, at + k == n, out) != 0)
      abort();
    if (out->len > before &&
        rt_utf8_valid_prefix(out->data + before, out->len - before) !=
            out->len - before)
      abort(); /* each write appends whole valid characters */
    at += k;
  } while (at < n);
  rt_decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt_encoding_t e;
  if (rt_encoding_lookup((const char *)data, size, &e) == 0 &&
      memchr(e.name, '\0', sizeof e.name) == NULL)
    abort();
  rt_encoding_from_content_type((const char *)data, size, &e);
  if (size < 2)
    return 0;
  const char *name = names[data[0] % (sizeof names / sizeof names[0])];
  if (rt_encoding_lookup(name, strlen(name), &e) != 0)
    abort();
  uint32_t seed = data[1];
  const uint8_t *p = data + 2;
  size_t n = size - 2;

  rt_strbuf_t whole, cut, back;
  rt_strbuf_init(&whole);
  rt_strbuf_init(&cut);
  rt_strbuf_init(&back);
  if (rt_decode(&e, p, n, &whole) != 0)
    abort();
  if (rt_utf8_valid_prefix(whole.data, whole.len) != whole.len)
    abort();
  decode_chunks(&e, p, n, seed, &cut);
  /* Where glibc's iconv resumes after an invalid UTF-7 base64 run depends
   * on whether the run's '+' came in the same call (rt_encoding.h says
   * so): there only input that decodes without U+FFFD must cut cleanly. */
  bool utf7 = strcmp(name, "UTF-7") == 0;
  bool replaced =
      whole.len >= 3 && memmem(whole.data, whole.len, "\xef\xbf\xbd", 3);
  if ((!utf7 || !replaced) &&
      (cut.len != whole.len ||
       (whole.len > 0 && memcmp(cut.data, whole.data, whole.len) != 0)))
    abort(); /* the cuts changed the text */

  /* Encoding: never fails on a charset that decodes (all of these encode
   * too); lossless encodings give the bytes back. */
  if (rt_encode(&e, whole.data, whole.len, &back) != 0)
    abort();
  bool lossless = e.kind == RT_ENC_LATIN1 || e.kind == RT_ENC_HEX ||
                  e.kind == RT_ENC_BASE64 || e.kind == RT_ENC_BASE64URL;
  if (lossless && (back.len != n || (n > 0 && memcmp(back.data, p, n) != 0)))
    abort();
  if (e.kind == RT_ENC_UTF8 &&
      (back.len != whole.len ||
       (whole.len > 0 && memcmp(back.data, whole.data, whole.len) != 0)))
    abort();
  /* The raw bytes as text (invalid UTF-8 read as U+FFFD): no crash. */
  rt_strbuf_free(&back);
  rt_strbuf_init(&back);
  if (rt_encode(&e, p, n, &back) != 0)
    abort();
  rt_strbuf_free(&whole);
  rt_strbuf_free(&cut);
  rt_strbuf_free(&back);
  return 0;
}
