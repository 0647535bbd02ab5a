/* A small exact JSON reader and a Go-compatible writer (spec §13).
 *
 * Reader: parses a whole document into an arena-allocated tree.  Numbers are
 * kept as their source text and converted on request, so 64-bit integers are
 * exact (never through double).  Strings are decoded to UTF-8 bytes
 * (\uXXXX surrogate pairs joined; lone surrogates become U+FFFD as Go does)
 * and NUL-terminated, but may contain NUL bytes: use `len`.
 * Nesting deeper than CR_JSON_MAX_DEPTH is refused.  Every failure is
 * CR_E_FORMAT with a message naming the byte offset.
 *
 * Member lookup follows Go's encoding/json: exact name first, otherwise a
 * case-insensitive match; the last matching member wins.
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
    const char *str;      /* STRING: decoded bytes, NUMBER: source text                  */
    cr_json *kids;        /* ARRAY/OBJECT: children, contiguous                          */
    const char *key;      /* when a member of an object: decoded member name             */
    uint32_t keylen;
};

typedef struct cr_json_doc cr_json_doc;

/* Parse text[0..n).  Trailing whitespace is allowed, anything else is an error. */
int cr_json_parse(const char *text, size_t n, cr_json_doc **out);
const cr_json *cr_json_root(const cr_json_doc *doc);
void cr_json_free(cr_json_doc *doc);

/* Object member by name (Go rules above); NULL if absent or v is not an object. */
const cr_json *cr_json_get(const cr_json *obj, const char *name);
static inline bool cr_json_is(const cr_json *v, cr_json_type t) { return v && v->type == t; }
/* Absent or JSON null. */
static inline bool cr_json_is_nullish(const cr_json *v) { return !v || v->type == CR_JSON_NULL; }

/* Exact integer conversions: CR_E_FORMAT if not a number, not an integer
 * (fraction/exponent), negative for unsigned, or out of range. */
int cr_json_u64(const cr_json *v, uint64_t *out);
int cr_json_i64(const cr_json *v, int64_t *out);
int cr_json_u32(const cr_json *v, uint32_t *out);

/* Writer.  A string exactly as Go's json.Marshal writes it, quotes included:
 * HTML-safe (< > & as \u003c ...), U+2028/2029 escaped, \n \r \t, other
 * controls as \u00XX (Go 1.19: also 0x08, 0x0c), invalid UTF-8 bytes as
 * \ufffd. */
int cr_json_put_string(cr_buf *b, const void *s, size_t n);
int cr_json_put_cstr(cr_buf *b, const char *s);
int cr_json_put_u64(cr_buf *b, uint64_t v);
int cr_json_put_i64(cr_buf *b, int64_t v);

/* Standard base64 with padding (byte arrays in Go JSON). */
int cr_base64_encode(cr_buf *b, const void *p, size_t n);
/* Decode into out (cleared first). CR_E_FORMAT on bad input. */
int cr_base64_decode(cr_buf *out, const char *s, size_t n);

#endif
