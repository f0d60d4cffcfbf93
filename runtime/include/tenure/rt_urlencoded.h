/* rt_urlencoded.h -- application/x-www-form-urlencoded bodies and URL query
 * strings: parsing into a Map, and serializing a Map back.
 *
 * Parsing follows node's querystring.parse (what body-parser's urlencoded
 * middleware uses with extended: false):
 *   - pairs are split on '&'; empty pairs ("a=1&&b=2") are skipped;
 *   - the key ends at the first '='; a pair without '=' has the value "";
 *     an empty key is kept ("=x" gives { "": "x" });
 *   - '+' is a space, then %XX escapes are decoded to bytes; a malformed
 *     escape ("%zz", "100%") is kept as written; decoded bytes that are not
 *     UTF-8 become U+FFFD (one per maximal invalid subpart);
 *   - a repeated key makes an Array of its values in order: the first
 *     value is a string, the second turns it into ["first", "second"].
 * Unlike node (which silently stops at maxKeys), more than max_keys pairs
 * is an error, -E2BIG, as body-parser's parameterLimit (413).
 *
 * The whole input is parsed at once: the body-parser middleware collects
 * the body up to its size limit, then parses (as body-parser does).  A query
 * string is passed without its '?' (and without any '#fragment').
 *
 * Nested keys (opts.nested, qs's "extended" syntax, off by default): a key
 * "a[b][c]" sets map a -> map b -> key c, and "a[]" appends to an Array.
 * Only brackets written as such are structure: "%5B" and "%5D" decode to
 * literal bracket characters inside a segment (qs decodes first, then
 * splits; splitting first is what lets every Map serialize and parse back).
 * The rules:
 *   - KEY = ROOT ("[" SEG "]")*, SEG without '[' or ']'; a key that does not
 *     have exactly this shape ("a[b", "a[b]c", "a]") is one literal key,
 *     as in flat mode (nothing is dropped);
 *   - an empty ROOT takes the first segment as root ("[a]=1" is a=1);
 *   - more than max_depth bracket groups is an error, -E2BIG (qs's depth,
 *     default 5, with strictDepth: refused rather than kept as a literal);
 *   - "[]" appends and may only be the last segment; "[0]" is a key "0"
 *     like any other (qs would make arrays of small indexes: we never make
 *     sparse arrays);
 *   - a key that is used both as a value and as a map ("a=1&a[b]=2") is an
 *     error, -EINVAL (qs merges them into a mixed array).
 */
#ifndef TENURE_RT_URLENCODED_H
#define TENURE_RT_URLENCODED_H

#include <stdbool.h>
#include <stddef.h>

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_urlencoded_opts_s {
  size_t max_keys;  /* pairs; more is -E2BIG (parameterLimit: 1000) */
  bool nested;      /* a[b]=1 nests Maps (default false: literal keys) */
  size_t max_depth; /* nested: bracket groups per key, more is -E2BIG (5) */
} rt_urlencoded_opts_t;

/* The defaults: 1000 keys, flat, depth 5. */
RT_EXTERN void rt_urlencoded_opts_init(rt_urlencoded_opts_t *o);

/* Calls FN for each non-empty pair of S (LEN bytes) in order, with the
 * decoded key and value (bytes, not necessarily UTF-8; valid during the
 * call, not NUL-terminated).  Stops when FN returns non-zero and returns
 * that; returns 0 at the end, or -ENOMEM.  No limits, no nesting: the
 * byte-level layer.  Not a GC point unless FN is. */
typedef int (*rt_urlencoded_fn)(void *data, const char *key, size_t key_len,
                                const char *value, size_t value_len);
RT_EXTERN int rt_urlencoded_each(const char *s, size_t len,
                                 rt_urlencoded_fn fn, void *data);

/* GC point.  Parses S (LEN bytes) into a new Map stored in *OUT (a handle
 * or other root; set only on success).  O may be NULL for the defaults.
 * Returns 0, -E2BIG (too many keys, too deep), -EINVAL (a nesting
 * conflict, see above) or -ENOMEM; on an error *WHY (when WHY is not NULL)
 * is set to a static message naming the rule or limit. */
RT_EXTERN int rt_urlencoded_parse(rt_runtime_t *rt, const char *s, size_t len,
                                  const rt_urlencoded_opts_t *o,
                                  rt_value_t *out, const char **why);

/* Appends the query string of MAP to OUT ("k=v&k2=v2", no '?'), keys and
 * values percent-encoded as encodeURIComponent does (everything but
 * A-Z a-z 0-9 - _ . ! ~ * ' ( ), as UTF-8 bytes).  Values: strings,
 * numbers (as JavaScript prints them), booleans, null and undefined (as "",
 * as querystring.stringify); an Array becomes the key repeated, once per
 * element ("k=1&k=2"; an empty Array writes nothing).  With NESTED, a Map
 * value becomes "k[sub]=v" and Arrays "k[]=v" (so even one element reads
 * back as an Array); without it a Map value is -EINVAL.  Also -EINVAL: MAP
 * not a Map, an Array element that is an Array or Map, and, with NESTED,
 * an empty key whose value is a Map or that is inside a nested Map (it
 * would read back differently).  Returns 0, -EINVAL or -ENOMEM (OUT's
 * sticky error).  Not a GC point. */
RT_EXTERN int rt_urlencoded_serialize(rt_value_t map, bool nested,
                                      rt_strbuf_t *out);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_URLENCODED_H */
