/* Go strconv.Quote / strconv.Unquote, used for tree node names (spec §12.4).
 *
 * Behaviour is that of Go 1.19 (restic 0.14):
 *  - Quote: printable runes (unicode.IsPrint, Unicode 13.0 as in Go 1.19) are
 *    copied; `"` and `\` are backslashed; \a \b \f \n \r \t \v; other bytes
 *    below 0x20 and 0x7f as \xHH; every byte that is not part of valid UTF-8
 *    as \xHH (lower-case hex); other non-printable runes as \uHHHH or
 *    \UHHHHHHHH.
 *  - Unquote accepts exactly what Go accepts between double quotes: raw
 *    bytes except `"` and newline, and the escapes \a \b \f \n \r \t \v \\
 *    \" \xHH \NNN (octal, <= 0377) \uHHHH \UHHHHHHHH (no surrogates, no
 *    value above U+10FFFF).  \' is refused (Go only allows it in rune
 *    literals).  Like Go, a raw byte that is not valid UTF-8 is accepted
 *    but comes out as U+FFFD (EF BF BD): only \xHH escapes yield arbitrary
 *    bytes.  Restic never writes raw invalid bytes (Quote escapes them), so
 *    this only matters for foreign writers.
 */
#ifndef CRESTIC_UTIL_GOQUOTE_H
#define CRESTIC_UTIL_GOQUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Append strconv.Quote(s) without the surrounding quotes to out. */
int cr_goquote(cr_buf *out, const void *s, size_t n);
/* Append the bytes of strconv.Unquote("\"" + s + "\"") to out; CR_E_FORMAT
 * if Go would refuse it (bad escape, raw '"' or newline, ...).  On failure
 * out->len is restored. */
int cr_gounquote(cr_buf *out, const char *s, size_t n);
/* Go's unicode.IsPrint for one code point (Unicode 13.0, as Go 1.19). */
bool cr_go_isprint(uint32_t rune);
/* Decode one UTF-8 rune from s[0..n): returns its byte length (1..4) and the
 * rune, or 0 for an invalid/truncated sequence (Go's utf8.DecodeRune rules:
 * no surrogates, no overlongs, max U+10FFFF).  n == 0 also returns 0. */
int cr_utf8_decode(const uint8_t *s, size_t n, uint32_t *rune);
/* Encode a rune (caller guarantees <= U+10FFFF) as UTF-8; returns 1..4.
 * Surrogates are encoded as-is (3 bytes): callers exclude them. */
int cr_utf8_encode(uint32_t rune, uint8_t out[4]);

#endif
