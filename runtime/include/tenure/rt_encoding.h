/* rt_encoding.h -- Buffer encodings, as node's Buffer, and any charset
 * glibc's iconv knows; the streaming decoder (node's string_decoder).
 *
 * As in node, "encode" turns a string into bytes (Buffer.from(string,
 * encoding)) and "decode" turns bytes into a string (buf.toString(encoding)):
 * so encoding base64 *reads* base64 text and decoding base64 *writes* it.
 * Strings are UTF-8 (a string's UTF-16 code units, where node's semantics
 * speak of them, are those of its code points; strings hold no lone
 * surrogates).  Text given to the encoders as raw bytes is read as UTF-8
 * with invalid sequences as U+FFFD.
 *
 * Node's encodings, exactly as node 20 (tests/runtime/test_encoding.c
 * compares against vectors node wrote):
 *
 *   utf8      encode: the text; decode: invalid UTF-8 becomes U+FFFD, one
 *             per maximal ill-formed subpart
 *   utf16le   encode: each UTF-16 code unit, little-endian; decode: an odd
 *             trailing byte is dropped, a lone surrogate becomes U+FFFD
 *   latin1    encode: the low byte of each code unit (U+20AC gives 0xAC);
 *             decode: byte b is U+00bb
 *   ascii     encode: as latin1; decode: as latin1 of b & 0x7f
 *   base64    encode: reads both alphabets (+/ and -_), skips every other
 *             character, stops at the first '='; a final lone sextet is
 *             dropped; decode: the standard alphabet with '=' padding
 *   base64url encode: as base64; decode: the URL alphabet, no padding
 *   hex       encode: pairs of hex digits (either case) up to the first pair
 *             that is not one, an odd last digit dropped; decode: lowercase
 *
 * (base64 and hex read the low byte of each code unit as node does, so a
 * character such as U+013D reads as '='.)
 *
 * An iconv charset (gbk, gb18030, big5, shift_jis, euc-jp, iso-2022-jp,
 * windows-1252, ...) decodes with U+FFFD for each byte that starts no valid
 * character (decoding resumes at the next byte), and encodes each character
 * the charset lacks as its '?' (as node's iconv-lite; nothing when the
 * charset has no '?').  Code points iconv passes through that UTF-8 cannot
 * hold (beyond U+10FFFF) become U+FFFD.
 */
#ifndef TENURE_RT_ENCODING_H
#define TENURE_RT_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tenure/rt.h>
#include <tenure/rt_string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rt_encoding_kind_e {
  RT_ENC_UTF8 = 0,
  RT_ENC_UTF16LE,
  RT_ENC_LATIN1,
  RT_ENC_ASCII,
  RT_ENC_BASE64,
  RT_ENC_BASE64URL,
  RT_ENC_HEX,
  RT_ENC_ICONV /* a charset of glibc's iconv, by name */
} rt_encoding_kind_t;

/* The longest name rt_encoding_lookup accepts. */
#define RT_ENCODING_NAME_MAX 47

/* An encoding: a plain value, copied freely, holding no resources (iconv
 * descriptors are opened by each conversion or decoder).  Read-only. */
typedef struct rt_encoding_s {
  rt_encoding_kind_t kind;
  /* NUL-terminated: node's canonical name ("utf8", "utf16le", "latin1",
   * "ascii", "base64", "base64url", "hex"), or the iconv charset's name as
   * given. */
  char name[RT_ENCODING_NAME_MAX + 1];
} rt_encoding_t;

/* The encoding named NAME[0..LEN) (untrusted input: a Content-Type charset,
 * say).  Node's names and aliases case-insensitively: utf8 utf-8, ucs2
 * ucs-2 utf16le utf-16le, latin1 binary, ascii, base64, base64url, hex.  Any
 * other name of at most RT_ENCODING_NAME_MAX letters, digits and "-_.:()"
 * is a charset if iconv_open can decode it (so no "//TRANSLIT" suffixes).
 * Returns 0, or -EINVAL (unknown; *OUT untouched), or -ENOMEM / -EMFILE
 * from iconv_open. */
RT_EXTERN int rt_encoding_lookup(const char *name, size_t len,
                                 rt_encoding_t *out);
/* The encoding of a built-in KIND (not RT_ENC_ICONV).  Returns 0 or
 * -EINVAL. */
RT_EXTERN int rt_encoding_builtin(rt_encoding_kind_t kind, rt_encoding_t *out);
/* The charset parameter of a Content-Type value VALUE[0..LEN)
 * ("text/plain; charset=gbk", a quoted value too), looked up.  Returns 0;
 * -ENOENT when there is no charset parameter (HTTP's default is the
 * caller's); -EINVAL when it names no encoding (body-parser answers 415). */
RT_EXTERN int rt_encoding_from_content_type(const char *value, size_t len,
                                            rt_encoding_t *out);

/* --- One-shot conversions ----------------------------------------------- */

/* Not GC points.  Append to OUT the bytes of TEXT[0..LEN) (UTF-8) in ENC
 * (encode), or the UTF-8 text of the bytes P[0..N) in ENC (decode).  Return
 * 0, -ENOMEM, or -EINVAL when iconv cannot convert to or from the charset,
 * or the error of iconv_open. */
RT_EXTERN int rt_encode(const rt_encoding_t *enc, const void *text, size_t len,
                        rt_strbuf_t *out);
RT_EXTERN int rt_decode(const rt_encoding_t *enc, const void *p, size_t n,
                        rt_strbuf_t *out);

/* GC point.  Node's Buffer.from(*STR, enc).  RT_NONE when *STR is not a
 * string, out of memory, or rt_encode fails. */
RT_EXTERN rt_value_t rt_buffer_from_string_enc(rt_runtime_t *rt,
                                               const rt_value_t *str,
                                               const rt_encoding_t *enc);
/* GC point.  The string of the bytes P[0..LEN) in ENC (P must not move:
 * off the heap, or a buffer's bytes).  RT_NONE when out of memory or
 * rt_decode fails. */
RT_EXTERN rt_value_t rt_string_from_bytes_enc(rt_runtime_t *rt, const void *p,
                                              size_t len,
                                              const rt_encoding_t *enc);
/* GC point.  Node's buf.toString(enc) of buffer *BUF. */
RT_EXTERN rt_value_t rt_buffer_to_string_enc(rt_runtime_t *rt,
                                             const rt_value_t *buf,
                                             const rt_encoding_t *enc);

/* --- Streaming decoder ---------------------------------------------------- */

/* Decodes bytes that arrive in chunks as rt_decode decodes them in one
 * piece, wherever the chunks are cut (node's string_decoder): it keeps what
 * a cut leaves incomplete -- a UTF-8 sequence, the odd byte of a UTF-16
 * code unit and a high surrogate, the last 1-2 bytes of a base64 quantum,
 * a multi-byte character of an iconv charset -- until the next chunk.
 * One exception, glibc's: where UTF-7 resumes after an invalid base64 run
 * depends on whether the run's '+' came in the same chunk, so the U+FFFDs
 * of invalid UTF-7 may differ with the cuts (the text is still valid
 * UTF-8; valid UTF-7 decodes the same wherever it is cut).
 * Caller-allocated; fields private. */
#define RT_DECODER_HOLD 8

typedef struct rt_decoder_s {
  rt_encoding_kind_t kind;
  void *cd; /* iconv_t of an iconv charset, else NULL */
  rt_utf8_decoder_t utf8;
  uint16_t high; /* utf16le: a high surrogate awaiting its pair, or 0 */
  uint8_t npending;
  uint8_t pending[RT_DECODER_HOLD];
} rt_decoder_t;

/* Returns 0, -EINVAL (an iconv charset iconv cannot decode), or the error
 * of iconv_open (-ENOMEM, -EMFILE).  On failure nothing needs freeing. */
RT_EXTERN int rt_decoder_init(rt_decoder_t *d, const rt_encoding_t *enc);
/* Not a GC point.  Appends the text of P[0..N) to OUT (valid UTF-8, whole
 * characters).  With FINAL the input ends: what is kept becomes U+FFFD
 * (utf16le drops an odd byte; base64 writes its last quantum) and the
 * decoder starts afresh.  Returns 0 or -ENOMEM. */
RT_EXTERN int rt_decoder_write(rt_decoder_t *d, const void *p, size_t n,
                               bool final, rt_strbuf_t *out);
RT_EXTERN void rt_decoder_free(rt_decoder_t *d);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_ENCODING_H */
