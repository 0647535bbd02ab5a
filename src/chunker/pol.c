/* Polynomials over GF(2) in a uint64 (bit i = coefficient of x^i), spec §15.1-2. */
#include "chunker/chunker.h"
#include "chunker/internal.h"

#include <endian.h>
#include <sys/random.h>

#include "util/error.h"

int cr_pol_deg(uint64_t pol)
{
    return pol ? 63 - __builtin_clzll(pol) : -1;
}

uint64_t cr_pol_mod(uint64_t a, uint64_t p)
{
    int dp = cr_pol_deg(p);
    for (int da = cr_pol_deg(a); da >= dp; da = cr_pol_deg(a))
        a ^= p << (da - dp);
    return a;
}

/* a * b mod p for a, b already reduced.  Shift-and-add from b's top bit down,
 * reducing after every doubling, so nothing ever exceeds deg(p) + 1 bits. */
uint64_t cr_pol_mulmod(uint64_t a, uint64_t b, uint64_t p)
{
    int dp = cr_pol_deg(p);
    uint64_t top = 1ull << dp, r = 0;
    for (int i = cr_pol_deg(b); i >= 0; i--) {
        r <<= 1;
        if (r & top) r ^= p;
        if ((b >> i) & 1) r ^= a;
    }
    return r;
}

uint64_t cr_pol_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t r = cr_pol_mod(a, b);
        a = b;
        b = r;
    }
    return a;
}

/* Ben-Or: f of degree d is irreducible iff gcd(f, x^(2^i) - x) = 1 for every
 * i <= d/2 (a factor of degree i would divide x^(2^i) - x). */
bool cr_pol_irreducible(uint64_t pol)
{
    int d = cr_pol_deg(pol);
    if (d < 1 || d > 63) return false;
    if (d == 1) return true;
    uint64_t g = cr_pol_mod(2, pol); /* x^(2^0) */
    for (int i = 1; i <= d / 2; i++) {
        g = cr_pol_mulmod(g, g, pol);
        if (cr_pol_gcd(pol, g ^ 2) != 1) return false;
    }
    return true;
}

/* getrandom(2) directly: the chunker must not depend on the crypto module. */
static int random_u64(uint64_t *v)
{
    uint8_t *p = (uint8_t *)v;
    size_t got = 0;
    while (got < sizeof *v) {
        ssize_t r = getrandom(p + got, sizeof *v - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return cr_error_sys(-errno, "getrandom");
        }
        got += (size_t)r;
    }
    return 0;
}

int cr_pol_random(uint64_t *pol)
{
    /* ~7.5 % of the candidates are irreducible; restic gives up after 10^6. */
    for (int tries = 0; tries < 1000000; tries++) {
        uint64_t raw;
        CR_TRY(random_u64(&raw));
        /* restic reads the 8 bytes little-endian; so does x86-64, and the
         * bytes are uniformly random anyway. */
        uint64_t f = le64toh(raw);
        f &= (1ull << 54) - 1;
        f |= (1ull << 53) | 1;
        if (cr_pol_irreducible(f)) {
            *pol = f;
            return 0;
        }
    }
    return cr_error(CR_E_FORMAT, "no irreducible polynomial found in 1000000 tries");
}
