/* 32-byte object IDs (SHA-256) and hex helpers. */
#ifndef CRESTIC_UTIL_ID_H
#define CRESTIC_UTIL_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CR_ID_SIZE 32
#define CR_ID_HEX 64

typedef struct {
    uint8_t b[CR_ID_SIZE];
} cr_id;

/* out must hold 65 bytes; lower-case, NUL-terminated. */
void cr_id_to_hex(const cr_id *id, char out[CR_ID_HEX + 1]);
/* Exactly 64 hex chars (either case) -> 0, else CR_E_FORMAT (no message). */
int cr_id_from_hex(cr_id *id, const char *hex, size_t len);
/* Short form used in listings: first 8 hex chars. out must hold 9 bytes. */
void cr_id_short(const cr_id *id, char out[9]);
bool cr_is_hex_name(const char *s, size_t len); /* 64 hex chars, lower case */

static inline int cr_id_cmp(const cr_id *a, const cr_id *b) { return memcmp(a->b, b->b, CR_ID_SIZE); }
static inline bool cr_id_eq(const cr_id *a, const cr_id *b) { return memcmp(a->b, b->b, CR_ID_SIZE) == 0; }
static inline bool cr_id_is_zero(const cr_id *a)
{
    uint8_t acc = 0;
    for (int i = 0; i < CR_ID_SIZE; i++) acc |= a->b[i];
    return acc == 0;
}

/* Generic hex, for tests and keys. */
void cr_hex_encode(const uint8_t *in, size_t n, char *out); /* out: 2n+1 */
/* Decodes exactly 2*n hex chars into n bytes; 0 or CR_E_FORMAT. */
int cr_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n);

#endif
