/* Chunker internals shared with the unit tests (not part of the module contract). */
#ifndef CRESTIC_CHUNKER_INTERNAL_H
#define CRESTIC_CHUNKER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cr_chunker cr_chunker;

/* a mod p (p != 0). */
uint64_t cr_pol_mod(uint64_t a, uint64_t p);
/* a * b mod p, for a and b already reduced mod p. */
uint64_t cr_pol_mulmod(uint64_t a, uint64_t b, uint64_t p);
uint64_t cr_pol_gcd(uint64_t a, uint64_t b);

/* restic's lookup tables for pol (spec §15.5):
 *   out[b] = (b * x^(8*63)) mod pol
 *   mod[b] = ((b * x^deg) mod pol) | (b << deg)
 * pol must have 8 <= degree <= 53. */
void cr_chunker_tables(uint64_t pol, uint64_t out[256], uint64_t mod[256]);

/* The AVX2 kernel (chunker_avx2.c), for degree-53 polynomials.
 * Tables: [mod by low nibble, mod by high nibble, out2 by low, out2 by high]
 * [plane 0..6][16 entries, twice]; out2[b] = (b * x^512) mod pol. */
void cr_chunker_nibble_tables(const uint64_t mod[256], const uint64_t out2[256], int deg, uint8_t t[4][7][32]);
bool cr_chunker_avx2_available(void);
/* Scans p[0..m) (p[-64..-1] readable) in whole blocks of 32 lanes.  With
 * *hit: returns the first position whose fingerprint has the low 20 bits
 * clear.  Otherwise returns how many positions were scanned without a hit
 * (the rest, less than a block, is left to the caller). */
size_t cr_chunker_find_avx2(const uint8_t t[4][7][32], const uint8_t *p, size_t m, bool *hit);

/* Tests and benchmarks: turn the SIMD kernel off (or back on where usable). */
void cr_chunker_set_simd(cr_chunker *c, bool on);

#endif
