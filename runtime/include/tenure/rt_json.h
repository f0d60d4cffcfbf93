/* rt_json.h -- JSON text <-> runtime values.
 *
 * Parsing (RFC 8259): objects become Maps (duplicate keys: the last value
 * wins, at the first key's position, as JSON.parse), arrays Arrays, strings
 * strings (object keys interned), integers that fit small integers (-0 is a
 * double), other numbers doubles (correctly rounded; overflow gives
 * +-Infinity as JSON.parse does).  Strings must be valid UTF-8: invalid
 * bytes are an error (at their offset).  A \u escape of a lone surrogate
 * becomes U+FFFD (UTF-8 cannot hold it).  Nesting deeper than max_depth is
 * an error, and the parser uses an explicit stack: no document can exhaust
 * the C stack.
 *
 * Serializing: as JSON.stringify without replacer or indentation, except
 * that the non-ASCII text is written as UTF-8 (as JSON.stringify) and
 * doubles are written in a short round-trip form (see runtime/DESIGN.md).
 * NaN and Infinity are written as null, undefined array elements as null,
 * and map entries whose value is undefined are left out.  A Buffer becomes
 * {"type":"Buffer","data":[...]} (as Node).  Cycles are caught by the depth
 * limit (-ELOOP).
 */
#ifndef TENURE_RT_JSON_H
#define TENURE_RT_JSON_H

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RT_JSON_DEFAULT_DEPTH 1000

typedef struct rt_json_options_s {
  unsigned max_depth; /* 0: RT_JSON_DEFAULT_DEPTH */
} rt_json_options_t;

/* Where and why a parse failed. */
typedef struct rt_json_error_s {
  size_t offset;        /* byte offset of the first byte not accepted */
  const char *expected; /* static text: what would have been accepted */
} rt_json_error_t;

/* GC point.  Parses TEXT[0..LEN) (need not be NUL-terminated) and stores
 * the value in *OUT (a raw value: pass a handle slot to keep it rooted).
 * Returns 0; -EINVAL for malformed text or -E2BIG for nesting deeper than
 * the limit, with *ERR filled (if not NULL); -ENOMEM. */
RT_EXTERN int rt_json_parse(rt_runtime_t *rt, const char *text, size_t len,
                            const rt_json_options_t *o, rt_value_t *out,
                            rt_json_error_t *err);

/* Appends the JSON text of V to OUT.  Not a GC point.  Returns 0,
 * -EINVAL (a value with no JSON form at the top: undefined, RT_NONE),
 * -ELOOP (deeper than max_depth: a cycle) or -ENOMEM. */
RT_EXTERN int rt_json_stringify(rt_runtime_t *rt, rt_value_t v,
                                const rt_json_options_t *o, rt_strbuf_t *out);

/* Writes the shortest-form text of D (finite) to BUF (at least 32 bytes),
 * as the serializer does; returns its length. */
RT_EXTERN size_t rt_json_format_double(double d, char *buf);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_JSON_H */
