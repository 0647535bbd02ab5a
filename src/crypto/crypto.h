/* restic's cryptographic primitives (spec §4): AES-256-CTR + Poly1305-AES,
 * SHA-256, scrypt, CSPRNG.  OpenSSL does AES, SHA-256 (SHA-NI) and Poly1305
 * (EVP_MAC); libsodium does scrypt.
 *
 * Everything here is thread-safe.  Each thread lazily gets its own cached
 * OpenSSL contexts (freed when the thread exits), so the hot calls (seal,
 * open, sha256) do not allocate.  The functions returning void have no error
 * path: they abort() on an internal OpenSSL failure, which only happens when
 * memory runs out or OpenSSL is broken (a wrong hash or tag would be worse). */
#ifndef CRESTIC_CRYPTO_H
#define CRESTIC_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_IV_SIZE 16
#define CR_MAC_SIZE 16
#define CR_CRYPTO_OVERHEAD (CR_IV_SIZE + CR_MAC_SIZE) /* 32 */
#define CR_KDF_OUTPUT 64

typedef struct {
    uint8_t enc[32];   /* AES-256 key                         */
    uint8_t mac_k[16]; /* AES-128 key that encrypts the nonce */
    uint8_t mac_r[16]; /* Poly1305 r, stored unclamped        */
} cr_key;

/* False if any of the three parts is all zero (restic rejects such keys). */
bool cr_key_is_valid(const cr_key *k);
void cr_key_wipe(cr_key *k);
/* Split 64 bytes of scrypt output: enc = [0,32), mac_k = [32,48), mac_r = [48,64). */
void cr_key_from_kdf(cr_key *k, const uint8_t material[CR_KDF_OUTPUT]);

/* Encrypt n bytes of plaintext into out = IV || C || T (n + 32 bytes) with a
 * fresh random IV.  out must not overlap pt, except that pt may be exactly
 * out + CR_IV_SIZE: sealing in place, behind room left for the IV.
 * Returns 0 or negative. */
int cr_seal(const cr_key *k, const uint8_t *pt, size_t n, uint8_t *out);
/* Same with a given IV (tests and known answers only).  An all-zero IV is
 * refused with CR_E_FORMAT (cr_open would refuse the result). */
int cr_seal_iv(const cr_key *k, const uint8_t iv[CR_IV_SIZE], const uint8_t *pt, size_t n, uint8_t *out);

/* Sealing piece by piece, for output that is never held whole: begin picks
 * a fresh IV (to be stored first), each update encrypts and authenticates
 * the next n bytes (out may be pt itself), final gives the tag (stored
 * last).  The same bytes as cr_seal.  These use the calling thread's
 * contexts: no other seal, open or verify may run on the thread between
 * begin and final. */
int cr_seal_begin(const cr_key *k, uint8_t iv[CR_IV_SIZE]);
int cr_seal_update(const uint8_t *pt, size_t n, uint8_t *out);
int cr_seal_final(uint8_t tag[CR_MAC_SIZE]);

/* Verify (constant time) then decrypt n bytes IV || C || T into out (n - 32
 * bytes).  Nothing is written to out unless the MAC verifies.  out must not
 * overlap in.  Errors: CR_E_FORMAT when
 * n < 32 or the IV is all zero, CR_E_AUTH when the MAC does not match
 * (message "ciphertext verification failed"). */
int cr_open(const cr_key *k, const uint8_t *in, size_t n, uint8_t *out);
/* cr_open in place: buf holds IV || C || T (n bytes); after the MAC check the
 * plaintext (n - 32 bytes) replaces C at buf + 16.  Nothing is changed unless
 * the MAC verifies. */
int cr_open_inplace(const cr_key *k, uint8_t *buf, size_t n);
/* Only the MAC check of cr_open (for check --read-data style verification). */
int cr_verify(const cr_key *k, const uint8_t *in, size_t n);

/* Poly1305-AES tag of msg under (mac_k, mac_r) and nonce iv (spec §4.2);
 * r is clamped here.  With n == 0 the tag is s = AES-128(mac_k, iv). */
void cr_poly1305_aes(const cr_key *k, const uint8_t iv[CR_IV_SIZE], const uint8_t *msg, size_t n,
                     uint8_t tag[CR_MAC_SIZE]);

/* SHA-256. */
void cr_sha256(const void *p, size_t n, uint8_t out[32]);
/* SHA-256 of count messages (p[i], n[i]) into out[i]: with SHA-NI two at a
 * time side by side, nearly twice the rate of one stream (sha256_many.c). */
void cr_sha256_many(const uint8_t *const *p, const size_t *n, size_t count, uint8_t (*out)[32]);
typedef struct cr_sha256_ctx cr_sha256_ctx; /* opaque, OpenSSL EVP_MD_CTX inside */
int cr_sha256_new(cr_sha256_ctx **ctx);
void cr_sha256_update(cr_sha256_ctx *ctx, const void *p, size_t n);
void cr_sha256_final(cr_sha256_ctx *ctx, uint8_t out[32]); /* also re-initialises ctx */
void cr_sha256_free(cr_sha256_ctx *ctx);

/* Cryptographically secure random bytes (getrandom(2), OpenSSL RAND as a
 * fallback where the system call is blocked); 0 or negative. */
int cr_random(void *buf, size_t n);

/* scrypt (RFC 7914) with restic's validity rules: N > 1 and a power of two,
 * r >= 1, p >= 1, r*p < 2^30.  CR_E_FORMAT for invalid parameters,
 * -ENOMEM when the parameters need more memory than can be had: more than
 * 1 GiB of working memory (128*r*(N+p) bytes) is always refused, since the
 * parameters come from key files an attacker may have written (restic's own
 * keys need at most 64 MiB). */
int cr_scrypt(const uint8_t *pw, size_t pwlen, const uint8_t *salt, size_t saltlen, uint64_t N, uint32_t r,
              uint32_t p, uint8_t *out, size_t outlen);

/* Constant-time comparison; true when equal. */
bool cr_ct_equal(const void *a, const void *b, size_t n);

#endif
