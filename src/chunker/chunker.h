/* restic-compatible Rabin content-defined chunker (spec §15), bit-exact. */
#ifndef CRESTIC_CHUNKER_H
#define CRESTIC_CHUNKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_CHUNK_MIN (512u * 1024u)
#define CR_CHUNK_MAX (8u * 1024u * 1024u)
#define CR_CHUNK_WINDOW 64

typedef struct cr_chunker cr_chunker; /* opaque; holds the polynomial's tables */

/* pol must be irreducible with degree <= 53 (restic uses 53); CR_E_FORMAT otherwise. */
int cr_chunker_new(uint64_t pol, cr_chunker **out);
void cr_chunker_free(cr_chunker *c);
/* Start a new stream (a new file). */
void cr_chunker_reset(cr_chunker *c);

/* Streaming scan.  Looks at buf[0..n) as the continuation of the current
 * chunk.  Returns the number of bytes that belong to the current chunk: if a
 * cut is found, *cut = true and the chunk ends after that many bytes (the
 * chunker is then ready for the next chunk); otherwise returns n and
 * *cut = false.  At end of input, any bytes fed since the last cut form the
 * final chunk.  No data is copied. */
size_t cr_chunker_scan(cr_chunker *c, const uint8_t *buf, size_t n, bool *cut);
/* Rolling fingerprint at the last cut (known answers: cut_fingerprint). */
uint64_t cr_chunker_last_fingerprint(const cr_chunker *c);

/* Polynomials over GF(2). */
int cr_pol_deg(uint64_t pol);
bool cr_pol_irreducible(uint64_t pol);
/* A random irreducible polynomial of degree 53, as restic's init draws it. */
int cr_pol_random(uint64_t *pol);

#endif
