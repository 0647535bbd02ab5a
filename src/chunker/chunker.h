/* restic-compatible Rabin content-defined chunker (spec §15), bit-exact.
 *
 * Speed: the first MinSize-64 bytes of every chunk are skipped without being
 * looked at; the rest is hashed by a 32-lane AVX2 kernel (chosen at run time,
 * degree-53 polynomials, i.e. every restic repository) or a 4-lane scalar
 * loop.  Both need long buffers to pay off: feed 64 KiB or more per call
 * (4 KiB calls run at about half speed).  bench/bench_chunker measures it.
 *
 * A chunker is used by one thread at a time; separate chunkers may run in
 * parallel.  Creating one is cheap (tables are cached per polynomial). */
#ifndef CRESTIC_CHUNKER_H
#define CRESTIC_CHUNKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_CHUNK_MIN (512u * 1024u)
#define CR_CHUNK_MAX (8u * 1024u * 1024u)
#define CR_CHUNK_WINDOW 64

typedef struct cr_chunker cr_chunker; /* opaque; holds the polynomial's tables */

/* pol must be irreducible with 8 <= degree <= 53 (restic uses 53); CR_E_FORMAT
 * otherwise (also -ENOMEM). */
int cr_chunker_new(uint64_t pol, cr_chunker **out);
void cr_chunker_free(cr_chunker *c);
/* Start a new stream (a new file).  A cut also starts a new chunk by itself. */
void cr_chunker_reset(cr_chunker *c);

/* Streaming scan.  Looks at buf[0..n) as the continuation of the current
 * chunk.  Returns the number of bytes that belong to the current chunk: if a
 * cut is found, *cut = true and the chunk ends after that many bytes (the
 * chunker is then ready for the next chunk); otherwise returns n and
 * *cut = false.  At end of input, any bytes fed since the last cut form the
 * final chunk.  No data is copied; bytes before buf are never read (the
 * chunker keeps the last 64 bytes itself), so buf may be anywhere. */
size_t cr_chunker_scan(cr_chunker *c, const uint8_t *buf, size_t n, bool *cut);
/* Rolling fingerprint at the last cut (known answers: cut_fingerprint):
 * low 20 bits zero, except for a cut forced at MaxSize. */
uint64_t cr_chunker_last_fingerprint(const cr_chunker *c);

/* Polynomials over GF(2), bit i = coefficient of x^i. */
int cr_pol_deg(uint64_t pol); /* -1 for 0 */
/* Ben-Or's test, as restic checks config.chunker_polynomial.  false for
 * constants. */
bool cr_pol_irreducible(uint64_t pol);
/* A random irreducible polynomial of degree 53, drawn as restic's init does
 * (getrandom(2)); 0 or negative. */
int cr_pol_random(uint64_t *pol);

#endif
