/* rt_multipart.h -- multipart/form-data bodies (RFC 7578 on RFC 2046's
 * multipart syntax): a streaming parser, and on it the "form" that the
 * server's body-parser middleware drives, storing files in a directory as
 * they arrive and making the fields and file descriptions values at the
 * end.
 *
 * The parser takes bytes in chunks of any size, split anywhere (the
 * boundary too, at any byte), and calls back: a part begins (its
 * Content-Disposition name and filename, filename* of RFC 5987 too, and
 * Content-Type), pieces of its data, its end, and the end of the body.
 * Nothing is buffered but one part's header block (bounded): data pieces
 * point into the chunk being fed, or at the bytes of the delimiter that a
 * chunk boundary left half-matched and that turned out to be data.
 *
 * What it accepts:
 *   - a preamble before the first boundary and an epilogue after the
 *     closing one are ignored (RFC 2046); the first boundary may be the
 *     first bytes of the body ("--B") or follow a CRLF;
 *   - after a boundary, optional spaces/tabs (transport padding), then CRLF
 *     (a part follows) or "--" (the end);
 *   - part headers: lines "Name: value" ending in CRLF (a bare CR or LF, a
 *     folded line or a line without ':' is malformed), then an empty line;
 *     Content-Disposition must be present, of type form-data, with a name
 *     parameter (any parameter given twice is malformed); parameter values
 *     are tokens or quoted strings, where a backslash escapes only '"' and
 *     '\' (so a Windows path "C:\a\b.txt" keeps its backslashes);
 *     filename*=charset'lang'%XX (UTF-8 or ISO-8859-1) wins over filename;
 *     a part with a filename (even "") is a file, any other a field;
 *   - the body ends with the closing boundary: EOF before it is malformed.
 * A boundary delimiter that is followed by anything but padding, CRLF or
 * "--" is malformed (the boundary may not occur in the data).
 *
 * Errors are sticky: after one, every call returns it.  Each has an HTTP
 * status and a message (rt_multipart_error): 400 for malformed input, 413
 * for a limit (the message names it, e.g. "file too large (max_file_bytes
 * 1048576)"), 500 when a callback failed.  A limit stops the parse at the
 * byte that exceeds it: nothing beyond it is delivered, so the outcome of a
 * body does not depend on how it was split into chunks.
 */
#ifndef TENURE_RT_MULTIPART_H
#define TENURE_RT_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tenure/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every limit is exact: a value of N allows N and refuses N + 1 (use
 * SIZE_MAX / UINT64_MAX for none). */
typedef struct rt_multipart_limits_s {
  size_t max_header_bytes; /* one part's header block, CRLFs included: 16 KB */
  size_t max_fields;       /* parts without a filename: 1000 */
  size_t max_files;        /* parts with a filename: 100 */
  size_t max_field_bytes;  /* one field's value: 1 MB (busboy's fieldSize) */
  uint64_t max_file_bytes; /* one file: 200 MB (formidable's maxFileSize) */
  uint64_t max_total_bytes; /* the whole body as fed: 256 MB */
} rt_multipart_limits_t;

RT_EXTERN void rt_multipart_limits_init(rt_multipart_limits_t *lim);

/* One part's description, valid during on_part_begin only.  Strings are
 * the bytes as sent (filename* already percent-decoded, ISO-8859-1 turned
 * into UTF-8), not NUL-terminated, not necessarily UTF-8. */
typedef struct rt_multipart_part_s {
  const char *name;
  size_t name_len;
  const char *filename; /* NULL for a field */
  size_t filename_len;
  const char *content_type; /* the header value; NULL when absent */
  size_t content_type_len;
  const char *charset; /* its charset parameter; NULL when absent */
  size_t charset_len;
  bool is_file;
} rt_multipart_part_t;

/* Callbacks return 0, or a negative errno to stop the parse (status 500). */
typedef struct rt_multipart_cb_s {
  int (*on_part_begin)(void *data, const rt_multipart_part_t *part);
  int (*on_part_data)(void *data, const char *at, size_t len);
  int (*on_part_end)(void *data);
  int (*on_finish)(void *data); /* the closing boundary was read, at EOF */
} rt_multipart_cb_t;

typedef struct rt_multipart_s rt_multipart_t;

/* The boundary of a Content-Type value CT[0..LEN): multipart/form-data
 * (case-insensitive) with a boundary parameter, quoted or not, of 1 to 70
 * characters of RFC 2046's bchars (letters, digits, '()+_,-./:=? and
 * space, not last).  Copies it to BUF (71 bytes, NUL-terminated) and
 * returns its length, or -EINVAL with *WHY (if not NULL) a static
 * message. */
RT_EXTERN int rt_multipart_boundary(const char *ct, size_t len, char *buf,
                                    const char **why);

/* A parser for a body of Content-Type CT (NUL-terminated).  LIM may be NULL
 * for the defaults; CB and DATA are kept.  Returns 0, -EINVAL (not
 * multipart/form-data, or a missing or invalid boundary; *WHY says which)
 * or -ENOMEM; *OUT is set only on success. */
RT_EXTERN int rt_multipart_create(const char *ct,
                                  const rt_multipart_limits_t *lim,
                                  const rt_multipart_cb_t *cb, void *data,
                                  rt_multipart_t **out, const char **why);
RT_EXTERN void rt_multipart_destroy(rt_multipart_t *p);

/* Parses LEN more bytes.  Returns 0, -EPROTO (malformed, 400), -E2BIG (a
 * limit, 413) or a callback's error (500).  Not a GC point unless a
 * callback is one. */
RT_EXTERN int rt_multipart_write(rt_multipart_t *p, const char *data,
                                 size_t len);
/* The body ended.  Returns 0 after on_finish when the closing boundary was
 * read, else -EPROTO (or the sticky error). */
RT_EXTERN int rt_multipart_end(rt_multipart_t *p);

/* The HTTP status of the error (0 when none) and its message (valid while
 * P lives). */
RT_EXTERN int rt_multipart_error(const rt_multipart_t *p, const char **msg);

/* --- Forms: the middleware's interface ------------------------------------------ */

/* A form stores each file part in UPLOAD_DIR as it arrives (write(2) per
 * piece, never whole in memory), in a new file opened O_EXCL with mode
 * 0600, named "upload-" + 32 random hex digits (from the kernel's CSPRNG)
 * + the original name's extension when it is 1-16 letters and digits: no
 * name is predictable, collides or leaves the directory, whatever the
 * client sent.  It hashes each file with SHA-256 on the way.  Field values
 * are kept off the heap (each at most max_field_bytes) until
 * rt_form_finish makes them values: nothing on the heap is held while the
 * body streams in.
 *
 * Charsets: a field is decoded with its part's Content-Type charset, else
 * with the value of a "_charset_" field (RFC 7578 4.6), else as UTF-8.
 * UTF-8, US-ASCII and ISO-8859-1/latin1 are decoded as such (invalid UTF-8
 * becomes U+FFFD); any other charset is decoded as UTF-8.  Names and
 * filenames are decoded as UTF-8. */
typedef struct rt_form_s rt_form_t;

/* A form for a body of Content-Type CONTENT_TYPE, storing files in
 * UPLOAD_DIR (which must exist).  LIMITS may be NULL for the defaults.
 * Returns 0; -EINVAL for a Content-Type that is not multipart/form-data
 * with a valid boundary: then *OUT is still set, to a form that has failed
 * (rt_form_error gives 400 and why; destroy it); -ENOMEM, or the error of
 * opening UPLOAD_DIR (*OUT NULL). */
RT_EXTERN int rt_form_create(rt_runtime_t *rt, const char *content_type,
                             const char *upload_dir,
                             const rt_multipart_limits_t *limits,
                             rt_form_t **out);

/* Feeds LEN more bytes of the body.  Returns 0 or a negative error (the
 * parser's, or the errno of creating or writing a file); after an error
 * the form's files are already deleted.  Not a GC point. */
RT_EXTERN int rt_form_write(rt_form_t *form, const char *data, size_t len);

/* The HTTP status to answer (400, 413, 500; 0 when no error) and a message
 * (valid while the form lives). */
RT_EXTERN int rt_form_error(const rt_form_t *form, const char **msg);

/* GC point.  The body ended: checks the closing boundary and stores in
 * *FIELDS_OUT a Map from field names to values (strings; a name repeated
 * gives an Array of its values in order) and in *FILES_OUT an Array of one
 * Map per file, in order: {field, originalName (the filename as sent),
 * path (UPLOAD_DIR/the stored name), size, type (the part's Content-Type,
 * "application/octet-stream" when absent), sha256 (64 hex digits)}.  Both
 * are handles (or other roots), set only on success.  Returns 0 (the files
 * now belong to the caller) or a negative error (see rt_form_write). */
RT_EXTERN int rt_form_finish(rt_form_t *form, rt_value_t *fields_out,
                             rt_value_t *files_out);

/* Frees the form.  Unless rt_form_finish succeeded, deletes every file it
 * stored: a request that fails half-way leaves nothing behind. */
RT_EXTERN void rt_form_destroy(rt_form_t *form);

#ifdef __cplusplus
}
#endif
#endif /* TENURE_RT_MULTIPART_H */
