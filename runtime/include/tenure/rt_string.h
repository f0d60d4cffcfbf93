/* rt_string.h -- immutable UTF-8 strings, the weak intern table, the string
 * builder and the streaming UTF-8 decoder.
 *
 * A string is one heap object (type name "string"): its length in bytes, a
 * hash cached on first use, and the bytes followed by a NUL (so C code can
 * read it as a C string when it holds no NUL itself).  Strings hold UTF-8:
 * the constructors that take raw bytes either trust the caller
 * (rt_string_new) or decode with replacement (rt_string_from_bytes).
 *
 * Interned strings are unique by content while alive; the intern table
 * holds them weakly, so an interned string nobody references dies.
 */
#ifndef TENURE_RT_STRING_H
#define TENURE_RT_STRING_H

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest string, in bytes. */
#define RT_STRING_MAX ((size_t)UINT32_MAX - 64)

/* GC point.  A string holding a copy of the LEN bytes at S, which must be
 * UTF-8 (not checked; see rt_string_from_bytes).  RT_NONE when out of
 * memory (null_on_oom) or LEN > RT_STRING_MAX. */
RT_EXTERN rt_value_t rt_string_new(rt_runtime_t *rt, const char *s,
                                   size_t len);
/* GC point.  rt_string_new of a C string. */
RT_EXTERN rt_value_t rt_string_cstr(rt_runtime_t *rt, const char *s);
/* GC point.  A string decoded from arbitrary bytes: invalid UTF-8 becomes
 * U+FFFD (as Node's buf.toString()). */
RT_EXTERN rt_value_t rt_string_from_bytes(rt_runtime_t *rt, const void *p,
                                          size_t len);
/* GC point.  The interned string with this content: the same value for the
 * same bytes as long as it is referenced from somewhere. */
RT_EXTERN rt_value_t rt_string_intern(rt_runtime_t *rt, const char *s,
                                      size_t len);
/* GC point.  A new string A + B (handles). */
RT_EXTERN rt_value_t rt_string_concat(rt_runtime_t *rt, const rt_value_t *a,
                                      const rt_value_t *b);

RT_EXTERN bool rt_is_string(rt_value_t v);
/* The bytes of string V (NUL-terminated); valid until the next GC point. */
RT_EXTERN const char *rt_string_data(rt_value_t v);
RT_EXTERN size_t rt_string_length(rt_value_t v);
/* The content hash (computed once, then cached in the string). */
RT_EXTERN uint32_t rt_string_hash(rt_value_t v);
RT_EXTERN bool rt_string_is_interned(rt_value_t v);
/* Content equality. */
RT_EXTERN bool rt_string_equal(rt_value_t a, rt_value_t b);
RT_EXTERN bool rt_string_equal_cstr(rt_value_t a, const char *s);

/* The number of live entries of the intern table (after the last GC that
 * cleared dead ones), for tests and statistics. */
RT_EXTERN size_t rt_intern_count(rt_runtime_t *rt);

/* --- String builder ----------------------------------------------------- */

/* Bytes accumulated off the heap (malloc), so building a string by
 * appending is linear; rt_strbuf_finish makes the string.  Caller-allocated;
 * all fields read-only. */
typedef struct rt_strbuf_s {
  char *data;
  size_t len;
  size_t cap;
  int error; /* the first error (-ENOMEM), sticky */
} rt_strbuf_t;

RT_EXTERN void rt_strbuf_init(rt_strbuf_t *b);
RT_EXTERN void rt_strbuf_free(rt_strbuf_t *b);
/* Make room for N more bytes.  Returns 0 or -ENOMEM (then sticky). */
RT_EXTERN int rt_strbuf_reserve(rt_strbuf_t *b, size_t n);
/* Not GC points.  Return 0 or -ENOMEM. */
RT_EXTERN int rt_strbuf_append(rt_strbuf_t *b, const void *p, size_t n);
RT_EXTERN int rt_strbuf_append_cstr(rt_strbuf_t *b, const char *s);
RT_EXTERN int rt_strbuf_append_string(rt_strbuf_t *b, rt_value_t str);
/* GC point.  The string of the bytes so far (the buffer is kept: free it
 * with rt_strbuf_free).  RT_NONE on a sticky error or out of memory. */
RT_EXTERN rt_value_t rt_strbuf_finish(rt_runtime_t *rt, rt_strbuf_t *b);

/* --- Streaming UTF-8 decoder ---------------------------------------------- */

/* Decodes bytes that arrive in chunks into valid UTF-8, keeping the first
 * bytes of a character split across two chunks until the rest arrives.
 * Invalid sequences become U+FFFD, one per maximal invalid subpart (the
 * WHATWG / Unicode rule Node's TextDecoder follows). */
typedef struct rt_utf8_decoder_s {
  uint8_t pending[4]; /* private */
  uint8_t npending;
} rt_utf8_decoder_t;

RT_EXTERN void rt_utf8_decoder_init(rt_utf8_decoder_t *d);
/* Appends the decoded text of P[0..N) to OUT; with FINAL, an incomplete
 * character at the end becomes U+FFFD and the decoder is reset.  Returns 0
 * or -ENOMEM. */
RT_EXTERN int rt_utf8_decode(rt_utf8_decoder_t *d, const void *p, size_t n,
                             bool final, rt_strbuf_t *out);
/* The length of the longest valid UTF-8 prefix of P[0..N) (N if valid). */
RT_EXTERN size_t rt_utf8_valid_prefix(const void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_STRING_H */
