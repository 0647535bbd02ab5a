/* scrypt (RFC 7914) through libsodium, with restic's parameter rules and a
 * memory cap.
 *
 * Why a cap: N, r and p come from key files inside the repository, so a
 * tampered key file could otherwise make us allocate without bound.  restic
 * calibrates new keys to at most 60 MiB (N=2^15..2^16 with r=8 is 32..64
 * MiB), so CR_SCRYPT_MAX_MEMORY (1 GiB, 16x the largest real key) refuses
 * nothing restic writes while keeping a hostile key survivable.
 */
#include "crypto/crypto.h"
#include "util/error.h"

#include <pthread.h>
#include <sodium.h>

#define CR_SCRYPT_MAX_MEMORY ((uint64_t)1 << 30)

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status;

static void init_sodium(void)
{
    /* Selects the SIMD implementation at run time; 1 = already initialised. */
    sodium_status = sodium_init();
}

static int check_params(uint64_t N, uint32_t r, uint32_t p)
{
    if (N <= 1 || (N & (N - 1)) != 0)
        return cr_error(CR_E_FORMAT, "invalid scrypt parameter N=%llu: must be a power of two > 1",
                        (unsigned long long)N);
    if (r < 1 || p < 1) return cr_error(CR_E_FORMAT, "invalid scrypt parameters r=%u p=%u: must be >= 1", r, p);
    if ((uint64_t)r * p >= (uint64_t)1 << 30)
        return cr_error(CR_E_FORMAT, "invalid scrypt parameters r=%u p=%u: r*p must be < 2^30", r, p);
    return 0;
}

/* Working memory of scrypt: V = 128*r*N, B = 128*r*p, plus XY = 256*r + 64.
 * r*p < 2^30 keeps B and XY far from overflow; V is checked by division. */
static int check_memory(uint64_t N, uint32_t r, uint32_t p)
{
    uint64_t small = 128 * (uint64_t)r * p + 256 * (uint64_t)r + 64;
    if (small > CR_SCRYPT_MAX_MEMORY || N > (CR_SCRYPT_MAX_MEMORY - small) / (128 * (uint64_t)r))
        return cr_error(-ENOMEM, "scrypt parameters N=%llu r=%u p=%u need more than the %llu MiB allowed",
                        (unsigned long long)N, r, p, (unsigned long long)(CR_SCRYPT_MAX_MEMORY >> 20));
    return 0;
}

int cr_scrypt(const uint8_t *pw, size_t pwlen, const uint8_t *salt, size_t saltlen, uint64_t N, uint32_t r,
              uint32_t p, uint8_t *out, size_t outlen)
{
    CR_TRY(check_params(N, r, p));
    CR_TRY(check_memory(N, r, p));
    if (outlen > crypto_pwhash_scryptsalsa208sha256_BYTES_MAX)
        return cr_error(CR_E_FORMAT, "scrypt output length %zu too large", outlen);
    pthread_once(&sodium_once, init_sodium);
    if (sodium_status < 0) return cr_error(-EIO, "libsodium initialisation failed");
    static const uint8_t empty[1];
    errno = 0;
    if (crypto_pwhash_scryptsalsa208sha256_ll(pw ? pw : empty, pwlen, salt ? salt : empty, saltlen, N, r, p, out,
                                              outlen) != 0) {
        /* Parameters were checked above, so this is an allocation failure. */
        int e = errno ? errno : ENOMEM;
        return cr_error_sys(-e, "scrypt");
    }
    return 0;
}
