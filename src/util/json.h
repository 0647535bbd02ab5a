/* A small exact JSON reader and a Go-compatible writer (spec §13).
 *
 * Reader: parses a whole document (RFC 8259 grammar, as strict as Go's
 * scanner: no trailing commas, no leading zeros, no control characters in
 * strings, no comments, no BOM) into an arena-allocated tree.  The tree does
 * not point into the input text, which may be freed right after parsing.
 *
 * Numbers are kept as their source text (NUL-terminated) and converted on
 * request, so 64-bit integers are exact (never through double).  Strings are
 * decoded to bytes and NUL-terminated, but may contain NUL bytes: use `len`.
 * \uXXXX surrogate pairs are joined; a lone or mismatched surrogate becomes
 * U+FFFD as in Go (the escape after a lone high surrogate is then decoded on
 * its own).  Deliberate difference from Go: raw bytes that are not valid
 * UTF-8 are kept unchanged instead of being replaced by U+FFFD, so callers
 * can still see what was stored (e.g. a foreign writer's raw name bytes;
 * cr_gounquote() then applies Go's own U+FFFD rule to names).
 *
 * Nesting deeper than CR_JSON_MAX_DEPTH (arrays/objects) is refused, and so
 * are documents of 4 GiB or more.  Every syntax error is CR_E_FORMAT with
 * a message naming the byte offset (or -ENOMEM when memory runs out).
 *
 * Memory: one block holds the document header and all string bytes (at most
 * the input size + 1); nodes live in a few large chunks.  No per-node malloc.
 */
#ifndef CRESTIC_UTIL_JSON_H
#define CRESTIC_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define CR_JSON_MAX_DEPTH 256

typedef enum {
    CR_JSON_NULL,
    CR_JSON_FALSE,
    CR_JSON_TRUE,
    CR_JSON_NUMBER,
    CR_JSON_STRING,
    CR_JSON_ARRAY,
    CR_JSON_OBJECT,
} cr_json_type;

typedef struct cr_json cr_json;
struct cr_json {
    cr_json_type type;
    uint32_t len;         /* STRING: bytes; NUMBER: text length; ARRAY/OBJECT: children */
    const char *str;      /* STRING: decoded bytes, NUMBER: source text (both NUL-terminated) */
    cr_json *kids;        /* ARRAY/OBJECT: children, contiguous, in document order (NULL if none) */
    const char *key;      /* when a member of an object: decoded member name, else NULL */
    uint32_t keylen;
};

typedef struct cr_json_doc cr_json_doc;

/* Parse text[0..n).  Whitespace around the value is allowed, anything else
 * after it is an error. */
int cr_json_parse(const char *text, size_t n, cr_json_doc **out);
const cr_json *cr_json_root(const cr_json_doc *doc);
void cr_json_free(cr_json_doc *doc); /* NULL is fine */

/* Object member by name, as Go's encoding/json fills a struct field: a
 * member matches if its key equals `name` exactly or case-insensitively
 * (ASCII letters, plus U+212A KELVIN SIGN for k and U+017F LONG S for s, the
 * two non-ASCII runes Go folds onto ASCII); among several matches the last
 * one wins, as later duplicates overwrite earlier ones in Go.  `name` is
 * expected to be ASCII (struct field names).  NULL if absent or obj is not
 * an object.  For maps (exact keys) walk kids[] instead. */
const cr_json *cr_json_get(const cr_json *obj, const char *name);
static inline bool cr_json_is(const cr_json *v, cr_json_type t) { return v && v->type == t; }
/* Absent or JSON null. */
static inline bool cr_json_is_nullish(const cr_json *v) { return !v || v->type == CR_JSON_NULL; }

/* Exact integer conversions: CR_E_FORMAT if v is NULL, not a number, not an
 * integer (fraction/exponent), negative for unsigned (also "-0", as Go's
 * ParseUint), or out of range. */
int cr_json_u64(const cr_json *v, uint64_t *out);
int cr_json_i64(const cr_json *v, int64_t *out);
int cr_json_u32(const cr_json *v, uint32_t *out);

/* Writer.  A string exactly as Go 1.19's json.Marshal writes it, quotes
 * included: \" and \\; HTML-safe (< > & as \u003c \u003e \u0026); U+2028
 * and U+2029 as \u2028 \u2029; \n \r \t; other bytes < 0x20 as \u00XX
 * (lower-case hex; Go 1.19: also 0x08 and 0x0c, not \b \f); 0x7f and all
 * other valid UTF-8 verbatim; each byte that is not part of valid UTF-8 as
 * \ufffd (lossy: quote or base64 such data first). */
int cr_json_put_string(cr_buf *b, const void *s, size_t n);
int cr_json_put_cstr(cr_buf *b, const char *s);
int cr_json_put_u64(cr_buf *b, uint64_t v);
int cr_json_put_i64(cr_buf *b, int64_t v);

/* Standard base64 with padding (byte arrays in Go JSON). */
int cr_base64_encode(cr_buf *b, const void *p, size_t n);
/* Decode into out (cleared first) as Go's base64.StdEncoding does: padding
 * required, '\r' and '\n' anywhere are skipped, unused trailing bits need
 * not be zero.  CR_E_FORMAT on a bad character, bad/missing padding or data
 * after the padding. */
int cr_base64_decode(cr_buf *out, const char *s, size_t n);

#endif
