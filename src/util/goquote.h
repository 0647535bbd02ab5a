/* Go strconv.Quote / strconv.Unquote, used for tree node names (spec §12.4). */
#ifndef CRESTIC_UTIL_GOQUOTE_H
#define CRESTIC_UTIL_GOQUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Append strconv.Quote(s) without the surrounding quotes to out. */
int cr_goquote(cr_buf *out, const void *s, size_t n);
/* Append the bytes of strconv.Unquote("\"" + s + "\"") to out; CR_E_FORMAT
 * if Go would refuse it (bad escape, raw '"' or newline, ...). */
int cr_gounquote(cr_buf *out, const char *s, size_t n);
/* Go's unicode.IsPrint for one code point. */
bool cr_go_isprint(uint32_t rune);
/* Decode one UTF-8 rune from s[0..n): returns its byte length (1..4) and the
 * rune, or 0 for an invalid/truncated sequence (Go's utf8.DecodeRune rules:
 * no surrogates, no overlongs, max U+10FFFF). */
int cr_utf8_decode(const uint8_t *s, size_t n, uint32_t *rune);

#endif
