/* Chunker internals shared with the unit tests (not part of the module contract). */
#ifndef CRESTIC_CHUNKER_POL_H
#define CRESTIC_CHUNKER_POL_H

#include <stdint.h>

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

#endif
