/* Unit tests for src/crypto: known answers from the fixtures (restic 0.14),
 * D. J. Bernstein's Poly1305-AES examples, RFC 7914 scrypt vectors, error
 * paths, round trips, and a cross-check against independent implementations
 * (one-shot OpenSSL AES-CTR, libsodium's Poly1305). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>

#include "crypto/crypto.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/id.h"

static cJSON *vectors;

/* ---- helpers ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

static int load_vectors(void **state)
{
    char *text = read_file("fixtures/vectors.json", NULL);
    vectors = cJSON_Parse(text);
    free(text);
    return vectors ? 0 : -1;
}

static int free_vectors(void **state)
{
    cJSON_Delete(vectors);
    return 0;
}

static const char *str_member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* Decode a hex string of any length; caller frees.  Never returns NULL. */
static uint8_t *hex_alloc(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    assert_int_equal(len % 2, 0);
    uint8_t *out = malloc(len / 2 + 1);
    assert_non_null(out);
    assert_int_equal(cr_hex_decode(hex, len, out, len / 2), 0);
    *n = len / 2;
    return out;
}

static void hex_fixed(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(cr_hex_decode(hex, strlen(hex), out, n), 0);
}

static uint8_t *b64_alloc(const char *b64, size_t *n)
{
    size_t len = strlen(b64);
    uint8_t *out = malloc(len);
    assert_non_null(out);
    int r = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
    assert_true(r >= 0);
    size_t pad = (len > 0 && b64[len - 1] == '=') + (len > 1 && b64[len - 2] == '=');
    *n = (size_t)r - pad;
    return out;
}

static void key_from_hex(cr_key *k, const char *enc, const char *mac_k, const char *mac_r)
{
    hex_fixed(enc, k->enc, 32);
    hex_fixed(mac_k, k->mac_k, 16);
    hex_fixed(mac_r, k->mac_r, 16);
}

static void clamp_r(uint8_t r[16])
{
    for (int i = 3; i < 16; i += 4) r[i] &= 15;
    for (int i = 4; i < 16; i += 4) r[i] &= 252;
}

/* Deterministic filler for plaintexts. */
static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static const cr_key test_key = {
    .enc = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
            17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32},
    .mac_k = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf},
    .mac_r = {0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7, 0xf6, 0xf5, 0xf4, 0xf3, 0xf2, 0xf1, 0xf0},
};

/* ---- fixture vectors ---------------------------------------------------- */

/* With an empty message Poly1305's accumulator stays 0, so the tag is s. */
static void assert_s(const cr_key *k, const uint8_t *iv, const char *s_hex)
{
    uint8_t s[16], tag[16];
    hex_fixed(s_hex, s, 16);
    cr_poly1305_aes(k, iv, NULL, 0, tag);
    assert_memory_equal(tag, s, 16);
}

/* OpenSSL must clamp r itself: the tag under raw r equals the tag under clamped r. */
static void assert_r_clamped_internally(const cr_key *k, const uint8_t *iv, const uint8_t *msg, size_t n)
{
    cr_key kc = *k;
    clamp_r(kc.mac_r);
    uint8_t t1[16], t2[16];
    cr_poly1305_aes(k, iv, msg, n, t1);
    cr_poly1305_aes(&kc, iv, msg, n, t2);
    assert_memory_equal(t1, t2, 16);
}

static void check_real_config_vector(const cJSON *v)
{
    cr_key k;
    key_from_hex(&k, str_member(v, "encrypt_key_hex"), str_member(v, "mac_k_hex"), str_member(v, "mac_r_hex"));
    size_t n, clen;
    _cleanup_free_ uint8_t *file = hex_alloc(str_member(v, "file_hex"), &n);
    _cleanup_free_ uint8_t *ct = hex_alloc(str_member(v, "ciphertext_hex"), &clen);
    const char *pt = str_member(v, "plaintext");
    assert_int_equal(n, strlen(pt) + CR_CRYPTO_OVERHEAD);
    assert_int_equal(clen, strlen(pt));

    _cleanup_free_ uint8_t *out = malloc(n);
    assert_int_equal(cr_open(&k, file, n, out), 0);
    assert_memory_equal(out, pt, strlen(pt));
    assert_int_equal(cr_verify(&k, file, n), 0);

    uint8_t mac[16], tag[16];
    hex_fixed(str_member(v, "mac_hex"), mac, 16);
    cr_poly1305_aes(&k, file, ct, clen, tag);
    assert_memory_equal(tag, mac, 16);
    assert_s(&k, file, str_member(v, "poly1305_s_hex (AES-128(mac_k, iv))"));

    uint8_t r[16], rc[16];
    hex_fixed(str_member(v, "poly1305_r_clamped_hex"), r, 16);
    memcpy(rc, k.mac_r, 16);
    clamp_r(rc);
    assert_memory_equal(rc, r, 16);
    assert_r_clamped_internally(&k, file, ct, clen);

    /* Re-encrypting with the same IV gives restic's file byte for byte. */
    _cleanup_free_ uint8_t *again = malloc(n);
    assert_int_equal(cr_seal_iv(&k, file, (const uint8_t *)pt, strlen(pt), again), 0);
    assert_memory_equal(again, file, n);
}

static void check_synthetic_vector(const cJSON *v)
{
    cr_key k;
    key_from_hex(&k, str_member(v, "encrypt_key_hex"), str_member(v, "mac_k_hex"), str_member(v, "mac_r_hex"));
    uint8_t iv[16];
    hex_fixed(str_member(v, "iv_hex"), iv, 16);
    size_t n, outn;
    _cleanup_free_ uint8_t *pt = hex_alloc(str_member(v, "plaintext_hex"), &n);
    _cleanup_free_ uint8_t *expect = hex_alloc(str_member(v, "output_hex"), &outn);
    assert_int_equal(outn, n + CR_CRYPTO_OVERHEAD);

    _cleanup_free_ uint8_t *out = malloc(outn);
    assert_int_equal(cr_seal_iv(&k, iv, pt, n, out), 0);
    assert_memory_equal(out, expect, outn);

    _cleanup_free_ uint8_t *back = malloc(n + 1);
    assert_int_equal(cr_open(&k, expect, outn, back), 0);
    assert_memory_equal(back, pt, n);

    assert_s(&k, iv, str_member(v, "poly1305_s_hex"));
    assert_r_clamped_internally(&k, iv, expect + 16, n);
}

static void test_crypto_vectors(void **state)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(vectors, "crypto_vectors");
    assert_true(cJSON_IsArray(list));
    int real = 0, synthetic = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, list) {
        if (cJSON_GetObjectItemCaseSensitive(v, "file_hex")) {
            check_real_config_vector(v);
            real++;
        } else {
            check_synthetic_vector(v);
            synthetic++;
        }
    }
    assert_int_equal(real, 1);
    assert_true(synthetic >= 5);
}

/* IVs whose counter carries past the low 64 bits or wraps at 2^128 must
 * behave like one 128-bit big-endian counter (Go's cipher.NewCTR).  The
 * vectors cover it; this checks the carry explicitly against per-block
 * AES-256-ECB of the expected counter values. */
static void test_ctr_carry(void **state)
{
    static const char *ivs[] = {
        "ffffffffffffffffffffffffffffffff", /* wraps to 0 */
        "0123456789abcdefffffffffffffffff", /* carry into the high 64 bits */
        "000102030405060708090a0bfffffffe", /* carry past the low 32 bits */
    };
    for (size_t t = 0; t < sizeof ivs / sizeof *ivs; t++) {
        uint8_t iv[16], pt[80] = {0}, out[80 + CR_CRYPTO_OVERHEAD];
        hex_fixed(ivs[t], iv, 16);
        assert_int_equal(cr_seal_iv(&test_key, iv, pt, sizeof pt, out), 0);

        uint8_t ctr[16], block[16];
        memcpy(ctr, iv, 16);
        EVP_CIPHER_CTX *ecb = EVP_CIPHER_CTX_new();
        assert_int_equal(EVP_EncryptInit_ex(ecb, EVP_aes_256_ecb(), NULL, test_key.enc, NULL), 1);
        for (int b = 0; b < 5; b++) {
            int outl;
            assert_int_equal(EVP_EncryptUpdate(ecb, block, &outl, ctr, 16), 1);
            assert_memory_equal(out + 16 + 16 * b, block, 16); /* pt is zero: C = keystream */
            for (int i = 15; i >= 0 && ++ctr[i] == 0; i--) {
            }
        }
        EVP_CIPHER_CTX_free(ecb);
    }
}

/* ---- Poly1305-AES: Bernstein, "The Poly1305-AES message-authentication
 * code" (2005), appendix B.  Checked independently with openssl enc and a
 * bignum Poly1305 before being written down here. ----------------------- */

static const struct {
    const char *m, *r, *k, *n, *aes, *tag;
} djb_examples[] = {
    {"f3f6", "851fc40c3467ac0be05cc20404f3f700", "ec074c835580741701425b623235add6",
     "fb447350c4e868c52ac3275cf9d4327e", "580b3b0f9447bb1e69d095b5928b6dbc", "f4c633c3044fc145f84f335cb81953de"},
    {"", "a0f3080000f46400d0c7e9076c834403", "75deaa25c09f208e1dc4ce6b5cad3fbf", "61ee09218d29b0aaed7e154a2c5509cc",
     "dd3fab2251f11ac759f0887129cc2ee7", "dd3fab2251f11ac759f0887129cc2ee7"},
    {"663cea190ffb83d89593f3f476b6bc24d7e679107ea26adb8caf6652d0656136", "48443d0bb0d21109c89a100b5ce2c208",
     "6acb5f61a7176dd320c5c1eb2edcdc74", "ae212a55399729595dea458bc621ff0e", "83149c69b561dd88298a1798b10716ef",
     "0ee1c16bb73f0f4fd19881753c01cdbe"},
    {"ab0812724a7f1e342742cbed374d94d136c6b8795d45b3819830f2c04491faf0990c62e48b8018b2c3e4a0fa3134cb67fa83e158c994d9"
     "61c4cb21095c1bf9",
     "12976a08c4426d0ce8a82407c4f48207", "e1a5668a4d5b66a5f68cc5424ed5982d", "9ae831e743978d3a23527c7128149e3a",
     "80f8c20aa71202d1e29179cbcb555a57", "5154ad0d2cb26e01274fc51148491f1b"},
};

static void test_poly1305_aes_djb(void **state)
{
    for (size_t i = 0; i < sizeof djb_examples / sizeof *djb_examples; i++) {
        cr_key k;
        memset(&k, 0, sizeof k);
        uint8_t iv[16], aes[16], want[16], tag[16];
        hex_fixed(djb_examples[i].k, k.mac_k, 16);
        hex_fixed(djb_examples[i].r, k.mac_r, 16);
        hex_fixed(djb_examples[i].n, iv, 16);
        hex_fixed(djb_examples[i].aes, aes, 16);
        hex_fixed(djb_examples[i].tag, want, 16);
        size_t mlen;
        _cleanup_free_ uint8_t *m = hex_alloc(djb_examples[i].m, &mlen);

        cr_poly1305_aes(&k, iv, m, mlen, tag);
        assert_memory_equal(tag, want, 16);
        cr_poly1305_aes(&k, iv, NULL, 0, tag);
        assert_memory_equal(tag, aes, 16);
    }
}

/* ---- scrypt -------------------------------------------------------------- */

static void test_scrypt_fixture_keys(void **state)
{
    const cJSON *repos = cJSON_GetObjectItemCaseSensitive(vectors, "repos");
    const cJSON *repo;
    int checked = 0;
    char seen[8][65] = {{0}};
    cJSON_ArrayForEach(repo, repos) {
        const cJSON *key;
        cJSON_ArrayForEach(key, cJSON_GetObjectItemCaseSensitive(repo, "keys")) {
            /* Two repositories are copies sharing one key file: derive it once. */
            const char *id = str_member(key, "id");
            bool dup = false;
            for (int i = 0; i < checked; i++) dup |= strcmp(seen[i], id) == 0;
            if (dup) continue;
            assert_true(checked < 8);
            snprintf(seen[checked++], 65, "%s", id);

            const cJSON *sp = cJSON_GetObjectItemCaseSensitive(key, "scrypt");
            uint64_t N = (uint64_t)cJSON_GetObjectItemCaseSensitive(sp, "N")->valuedouble;
            uint32_t r = (uint32_t)cJSON_GetObjectItemCaseSensitive(sp, "r")->valuedouble;
            uint32_t p = (uint32_t)cJSON_GetObjectItemCaseSensitive(sp, "p")->valuedouble;
            size_t saltlen;
            _cleanup_free_ uint8_t *salt = hex_alloc(str_member(sp, "salt_hex"), &saltlen);
            assert_int_equal(saltlen, 64);
            uint8_t want[64], got[64];
            hex_fixed(str_member(key, "scrypt_output_hex"), want, 64);
            const char *pw = str_member(key, "opens_with");
            assert_int_equal(cr_scrypt((const uint8_t *)pw, strlen(pw), salt, saltlen, N, r, p, got, 64), 0);
            assert_memory_equal(got, want, 64);

            /* The whole key-file chain: the user key opens `data` to the master key JSON. */
            cr_key uk;
            cr_key_from_kdf(&uk, got);
            assert_true(cr_key_is_valid(&uk));
            cJSON *kf = cJSON_Parse(str_member(key, "raw_json"));
            assert_non_null(kf);
            size_t dlen;
            _cleanup_free_ uint8_t *data = b64_alloc(str_member(kf, "data"), &dlen);
            cJSON_Delete(kf);
            const char *master = str_member(key, "decrypted_data");
            assert_int_equal(dlen, strlen(master) + CR_CRYPTO_OVERHEAD);
            _cleanup_free_ uint8_t *plain = malloc(dlen);
            assert_int_equal(cr_open(&uk, data, dlen, plain), 0);
            assert_memory_equal(plain, master, strlen(master));
            cr_key_wipe(&uk);
        }
    }
    assert_true(checked >= 4);
}

static void test_scrypt_rfc7914(void **state)
{
    static const struct {
        const char *pw, *salt;
        uint64_t N;
        uint32_t r, p;
        const char *out;
    } rfc[] = {
        {"", "", 16, 1, 1,
         "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3"
         "628cf35e20c38d18906"},
        {"password", "NaCl", 1024, 8, 16,
         "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83e"
         "e6d8360cbdfa2cc0640"},
        {"pleaseletmein", "SodiumChloride", 16384, 8, 1,
         "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651"
         "e40dfcf017b45575887"},
    };
    for (size_t i = 0; i < sizeof rfc / sizeof *rfc; i++) {
        uint8_t want[64], got[64];
        hex_fixed(rfc[i].out, want, 64);
        assert_int_equal(cr_scrypt((const uint8_t *)rfc[i].pw, strlen(rfc[i].pw), (const uint8_t *)rfc[i].salt,
                                   strlen(rfc[i].salt), rfc[i].N, rfc[i].r, rfc[i].p, got, 64),
                         0);
        assert_memory_equal(got, want, 64);
    }
}

static void test_scrypt_invalid_params(void **state)
{
    static const struct {
        uint64_t N;
        uint32_t r, p;
        int code;
    } bad[] = {
        {0, 8, 1, CR_E_FORMAT},
        {1, 8, 1, CR_E_FORMAT},
        {3, 8, 1, CR_E_FORMAT},
        {1000, 8, 1, CR_E_FORMAT},
        {(1ull << 20) + 1, 8, 1, CR_E_FORMAT},
        {1024, 0, 1, CR_E_FORMAT},
        {1024, 8, 0, CR_E_FORMAT},
        {16, 1, 1u << 30, CR_E_FORMAT},           /* r*p == 2^30 */
        {16, 1u << 15, 1u << 15, CR_E_FORMAT},    /* r*p == 2^30 */
        {16, 0xffffffffu, 0xffffffffu, CR_E_FORMAT},
        {1ull << 24, 8, 1, -ENOMEM},              /* 2 GiB > cap */
        {1ull << 63, 8, 1, -ENOMEM},              /* 128*r*N overflows 64 bits */
        {16, 1, (1u << 30) - 1, -ENOMEM},         /* B = 128*r*p = 128 GiB */
    };
    uint8_t out[64];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_error_clear();
        int r = cr_scrypt((const uint8_t *)"pw", 2, (const uint8_t *)"salt", 4, bad[i].N, bad[i].r, bad[i].p, out,
                          sizeof out);
        if (r != bad[i].code) fail_msg("case %zu: got %d, want %d", i, r, bad[i].code);
        assert_true(cr_error_message()[0] != 0);
    }
    /* restic's old defaults (64 MiB) are within the cap. */
    assert_int_equal(cr_scrypt((const uint8_t *)"pw", 2, (const uint8_t *)"salt", 4, 65536, 8, 1, out, 64), 0);
}

/* ---- error paths ------------------------------------------------------- */

static void test_open_wrong_mac(void **state)
{
    uint8_t pt[100], sealed[100 + CR_CRYPTO_OVERHEAD], out[100];
    fill_pattern(pt, sizeof pt, 1);
    assert_int_equal(cr_seal(&test_key, pt, sizeof pt, sealed), 0);

    /* Any flipped bit, in IV, ciphertext or tag, fails verification. */
    size_t positions[] = {0, 15, 16, 50, 115, 116, 131};
    for (size_t i = 0; i < sizeof positions / sizeof *positions; i++) {
        uint8_t bad[sizeof sealed];
        memcpy(bad, sealed, sizeof bad);
        bad[positions[i]] ^= 0x01;
        memset(out, 0xaa, sizeof out);
        cr_error_clear();
        assert_int_equal(cr_open(&test_key, bad, sizeof bad, out), CR_E_AUTH);
        assert_string_equal(cr_error_message(), "ciphertext verification failed");
        for (size_t j = 0; j < sizeof out; j++) assert_int_equal(out[j], 0xaa);
        assert_int_equal(cr_verify(&test_key, bad, sizeof bad), CR_E_AUTH);
        /* in place: refused, and the buffer is left as it was */
        uint8_t copy[sizeof bad];
        memcpy(copy, bad, sizeof copy);
        assert_int_equal(cr_open_inplace(&test_key, bad, sizeof bad), CR_E_AUTH);
        assert_memory_equal(bad, copy, sizeof copy);
    }

    /* Wrong key part: each of the three. */
    for (int part = 0; part < 3; part++) {
        cr_key k = test_key;
        uint8_t *p = part == 0 ? k.enc : part == 1 ? k.mac_k : k.mac_r;
        p[0] ^= 0x40; /* bit 6 of r[0] survives clamping */
        memset(out, 0xaa, sizeof out);
        int r = cr_open(&k, sealed, sizeof sealed, out);
        if (part == 0) {
            /* enc is not authenticated by the MAC: decrypts to garbage. */
            assert_int_equal(r, 0);
            assert_memory_not_equal(out, pt, sizeof pt);
        } else {
            assert_int_equal(r, CR_E_AUTH);
            for (size_t j = 0; j < sizeof out; j++) assert_int_equal(out[j], 0xaa);
        }
    }
    assert_int_equal(cr_open(&test_key, sealed, sizeof sealed, out), 0);
    assert_memory_equal(out, pt, sizeof pt);
}

static void test_open_too_short(void **state)
{
    uint8_t in[CR_CRYPTO_OVERHEAD], out[1] = {0x55};
    memset(in, 0x11, sizeof in);
    for (size_t n = 0; n < CR_CRYPTO_OVERHEAD; n++) {
        assert_int_equal(cr_open(&test_key, in, n, out), CR_E_FORMAT);
        assert_int_equal(cr_verify(&test_key, in, n), CR_E_FORMAT);
    }
    assert_int_equal(cr_open(&test_key, NULL, 0, out), CR_E_FORMAT);
    assert_int_equal(out[0], 0x55);
}

static void test_zero_iv(void **state)
{
    static const uint8_t zero_iv[16];
    uint8_t pt[20], sealed[20 + CR_CRYPTO_OVERHEAD], out[20];
    fill_pattern(pt, sizeof pt, 3);
    assert_int_equal(cr_seal_iv(&test_key, zero_iv, pt, sizeof pt, sealed), CR_E_FORMAT);

    /* A container with a zero IV and a *valid* tag for it: still refused. */
    memset(sealed, 0, 16);
    memset(sealed + 16, 0x33, sizeof pt);
    cr_poly1305_aes(&test_key, zero_iv, sealed + 16, sizeof pt, sealed + 16 + sizeof pt);
    memset(out, 0xaa, sizeof out);
    assert_int_equal(cr_open(&test_key, sealed, sizeof sealed, out), CR_E_FORMAT);
    assert_int_equal(cr_verify(&test_key, sealed, sizeof sealed), CR_E_FORMAT);
    for (size_t j = 0; j < sizeof out; j++) assert_int_equal(out[j], 0xaa);

    /* Empty plaintext, zero IV: 32 bytes, refused as well. */
    assert_int_equal(cr_open(&test_key, sealed, CR_CRYPTO_OVERHEAD, out), CR_E_FORMAT);
}

/* ---- round trips --------------------------------------------------------- */

/* Independent reference: one-shot OpenSSL AES-256-CTR + libsodium Poly1305. */
static void reference_seal(const cr_key *k, const uint8_t iv[16], const uint8_t *pt, size_t n, uint8_t *out)
{
    memcpy(out, iv, 16);
    int outl;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, k->enc, iv), 1);
    if (n) assert_int_equal(EVP_EncryptUpdate(c, out + 16, &outl, pt, (int)n), 1);
    EVP_CIPHER_CTX_free(c);

    uint8_t otk[32];
    memcpy(otk, k->mac_r, 16);
    c = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, k->mac_k, NULL), 1);
    assert_int_equal(EVP_EncryptUpdate(c, otk + 16, &outl, iv, 16), 1);
    EVP_CIPHER_CTX_free(c);
    assert_int_equal(crypto_onetimeauth_poly1305(out + 16 + n, out + 16, n, otk), 0);
}

static void round_trip(const cr_key *k, size_t n)
{
    _cleanup_free_ uint8_t *pt = calloc(1, n + 1);
    _cleanup_free_ uint8_t *sealed = malloc(n + CR_CRYPTO_OVERHEAD);
    _cleanup_free_ uint8_t *ref = malloc(n + CR_CRYPTO_OVERHEAD);
    _cleanup_free_ uint8_t *back = malloc(n + 1);
    fill_pattern(pt, n, (uint32_t)n);
    assert_int_equal(cr_seal(k, pt, n, sealed), 0);

    reference_seal(k, sealed, pt, n, ref);
    if (memcmp(ref, sealed, n + CR_CRYPTO_OVERHEAD) != 0) fail_msg("size %zu differs from reference", n);

    assert_int_equal(cr_verify(k, sealed, n + CR_CRYPTO_OVERHEAD), 0);
    assert_int_equal(cr_open(k, sealed, n + CR_CRYPTO_OVERHEAD, back), 0);
    if (memcmp(back, pt, n) != 0) fail_msg("size %zu: round trip differs", n);
    assert_int_equal(cr_open_inplace(k, sealed, n + CR_CRYPTO_OVERHEAD), 0);
    if (memcmp(sealed + CR_IV_SIZE, pt, n) != 0) fail_msg("size %zu: in-place open differs", n);

    /* in place: the plaintext already sits behind room for the IV */
    _cleanup_free_ uint8_t *inplace = malloc(n + CR_CRYPTO_OVERHEAD);
    if (n) memcpy(inplace + CR_IV_SIZE, pt, n);
    assert_int_equal(cr_seal(k, inplace + CR_IV_SIZE, n, inplace), 0);
    reference_seal(k, inplace, pt, n, ref);
    if (memcmp(ref, inplace, n + CR_CRYPTO_OVERHEAD) != 0) fail_msg("size %zu: sealing in place differs from reference", n);

    /* piece by piece, in uneven pieces, the middle one in place */
    _cleanup_free_ uint8_t *pieces = malloc(n + CR_CRYPTO_OVERHEAD);
    assert_int_equal(cr_seal_begin(k, pieces), 0);
    size_t a = n / 3, b = n / 2;
    assert_int_equal(cr_seal_update(pt, a, pieces + CR_IV_SIZE), 0);
    if (b > a) memcpy(pieces + CR_IV_SIZE + a, pt + a, b - a);
    assert_int_equal(cr_seal_update(pieces + CR_IV_SIZE + a, b - a, pieces + CR_IV_SIZE + a), 0);
    assert_int_equal(cr_seal_update(pt + b, n - b, pieces + CR_IV_SIZE + b), 0);
    assert_int_equal(cr_seal_final(pieces + CR_IV_SIZE + n), 0);
    reference_seal(k, pieces, pt, n, ref);
    if (memcmp(ref, pieces, n + CR_CRYPTO_OVERHEAD) != 0) fail_msg("size %zu: sealing in pieces differs from reference", n);
}

static void test_round_trip_sizes(void **state)
{
    static const size_t fixed[] = {0,     1,     15,    16,    17,    31,    32,    33,    63,     64,
                                   65,    4095,  4096,  4097,  32767, 32768, 32769, 65535, 65536,  65537,
                                   98303, 98304, 98305, 99999, 100000};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) round_trip(&test_key, fixed[i]);
    for (int i = 0; i < 60; i++) {
        uint32_t n;
        assert_int_equal(cr_random(&n, sizeof n), 0);
        round_trip(&test_key, n % 100001);
    }
}

/* The per-thread context caches the expanded key: switching keys (and IVs
 * that leave a partial keystream block behind) must never leak state. */
static void test_key_switching(void **state)
{
    cr_key k2 = test_key;
    k2.enc[31] ^= 1;
    k2.mac_k[0] ^= 1;
    for (int i = 0; i < 20; i++) {
        round_trip(i % 2 ? &k2 : &test_key, 17 + (size_t)i * 7);
        round_trip(i % 3 ? &test_key : &k2, 5);
    }
}

struct thread_arg {
    cr_key key;
    int failures;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    uint8_t pt[3000], sealed[3000 + CR_CRYPTO_OVERHEAD], back[3000];
    for (int i = 0; i < 300; i++) {
        size_t n = (size_t)(i * 37) % sizeof pt;
        fill_pattern(pt, n, (uint32_t)i);
        uint8_t iv[16], ref[sizeof sealed];
        if (cr_seal(&a->key, pt, n, sealed) != 0 || cr_open(&a->key, sealed, n + CR_CRYPTO_OVERHEAD, back) != 0 ||
            memcmp(back, pt, n) != 0)
            a->failures++;
        memcpy(iv, sealed, 16);
        reference_seal(&a->key, iv, pt, n, ref);
        if (memcmp(ref, sealed, n + CR_CRYPTO_OVERHEAD) != 0) a->failures++;
        uint8_t h1[32], h2[32];
        cr_sha256(pt, n, h1);
        if (EVP_Digest(pt, n, h2, NULL, EVP_sha256(), NULL) != 1 || memcmp(h1, h2, 32) != 0) a->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    enum { T = 6 };
    pthread_t th[T];
    struct thread_arg args[T];
    for (int t = 0; t < T; t++) {
        args[t].key = test_key;
        args[t].key.enc[0] = (uint8_t)t;
        args[t].key.mac_r[5] = (uint8_t)(t * 3);
        args[t].failures = 0;
        assert_int_equal(pthread_create(&th[t], NULL, thread_main, &args[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(args[t].failures, 0);
    }
}

static void test_seal_fresh_iv(void **state)
{
    uint8_t a[CR_CRYPTO_OVERHEAD], b[CR_CRYPTO_OVERHEAD];
    static const uint8_t zero[16];
    assert_int_equal(cr_seal(&test_key, NULL, 0, a), 0);
    assert_int_equal(cr_seal(&test_key, NULL, 0, b), 0);
    assert_memory_not_equal(a, b, 16);
    assert_memory_not_equal(a, zero, 16);
    assert_int_equal(cr_open(&test_key, a, sizeof a, NULL), 0); /* empty plaintext */
}

/* ---- keys, random, compare ----------------------------------------------- */

static void test_keys(void **state)
{
    uint8_t m[64];
    for (int i = 0; i < 64; i++) m[i] = (uint8_t)i;
    cr_key k;
    cr_key_from_kdf(&k, m);
    assert_memory_equal(k.enc, m, 32);
    assert_memory_equal(k.mac_k, m + 32, 16);
    assert_memory_equal(k.mac_r, m + 48, 16);
    assert_true(cr_key_is_valid(&k)); /* enc starts with 0 but is not all zero */

    for (int part = 0; part < 3; part++) {
        cr_key z = k;
        if (part == 0) memset(z.enc, 0, 32);
        if (part == 1) memset(z.mac_k, 0, 16);
        if (part == 2) memset(z.mac_r, 0, 16);
        assert_false(cr_key_is_valid(&z));
    }
    cr_key_wipe(&k);
    static const cr_key zero;
    assert_memory_equal(&k, &zero, sizeof k);
    assert_false(cr_key_is_valid(&k));
}

static void test_random_and_ct_equal(void **state)
{
    assert_int_equal(cr_random(NULL, 0), 0);
    size_t n = 1 << 20;
    _cleanup_free_ uint8_t *a = calloc(1, n);
    assert_int_equal(cr_random(a, n), 0);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += a[i] == 0;
    assert_true(zeros > n / 256 / 2 && zeros < n / 256 * 2);

    uint8_t x[33], y[33];
    memset(x, 7, sizeof x);
    memset(y, 7, sizeof y);
    assert_true(cr_ct_equal(x, y, sizeof x));
    assert_true(cr_ct_equal(x, y, 0));
    y[32] = 8;
    assert_false(cr_ct_equal(x, y, sizeof x));
    assert_true(cr_ct_equal(x, y, 32));
    y[0] = 0;
    assert_false(cr_ct_equal(x, y, 1));
}

/* ---- SHA-256 ------------------------------------------------------------- */

static void assert_sha(const uint8_t got[32], const char *hex)
{
    uint8_t want[32];
    hex_fixed(hex, want, 32);
    assert_memory_equal(got, want, 32);
}

static void test_sha256(void **state)
{
    uint8_t h[32];
    cr_sha256("", 0, h);
    assert_sha(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cr_sha256("abc", 3, h);
    assert_sha(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    cr_sha256(two, strlen(two), h);
    assert_sha(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* One million 'a' fed in uneven pieces; final() re-initialises. */
    cr_sha256_ctx *ctx;
    assert_int_equal(cr_sha256_new(&ctx), 0);
    char a[1000];
    memset(a, 'a', sizeof a);
    for (int round = 0; round < 2; round++) {
        size_t left = 1000000, step = 1;
        while (left) {
            size_t len = step < left ? step : left;
            len = len < sizeof a ? len : sizeof a;
            cr_sha256_update(ctx, a, len);
            left -= len;
            step = step * 3 % 997 + 1;
        }
        cr_sha256_final(ctx, h);
        assert_sha(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    cr_sha256_final(ctx, h); /* nothing fed since the re-init */
    assert_sha(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cr_sha256_free(ctx);
    cr_sha256_free(NULL);
}

/* cr_sha256_many against the known answers and against OpenSSL one message
 * at a time: batches of every tail length around the padding boundaries
 * (0..200 bytes), of mixed large sizes (so lanes finish at different times
 * and pick up the next message), and of messages that share their bytes. */
static void test_sha256_many(void **state)
{
    (void)state;
    const char *kat[] = {"", "abc", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"};
    const char *want[] = {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"};
    const uint8_t *kp[3];
    size_t kn[3];
    uint8_t kd[3][32];
    for (int i = 0; i < 3; i++) kp[i] = (const uint8_t *)kat[i], kn[i] = strlen(kat[i]);
    cr_sha256_many(kp, kn, 3, kd);
    for (int i = 0; i < 3; i++) assert_sha(kd[i], want[i]);

    size_t big = 3 << 20;
    _cleanup_free_ uint8_t *buf = malloc(big);
    assert_non_null(buf);
    fill_pattern(buf, big, 7);
    uint64_t x = 0x9e3779b97f4a7c15ull; /* draws the batches below */
    enum { N = 201 };
    const uint8_t *p[N];
    size_t n[N];
    uint8_t got[N][32], ref[32];
    for (size_t i = 0; i < N; i++) p[i] = buf + i * 7, n[i] = i; /* every tail length 0..200 */
    cr_sha256_many(p, n, N, got);
    for (size_t i = 0; i < N; i++) {
        cr_sha256(p[i], n[i], ref);
        assert_memory_equal(got[i], ref, 32);
    }
    for (int round = 0; round < 20; round++) {
        size_t count = 1 + (size_t)(x % 9);
        for (size_t i = 0; i < count; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            n[i] = (size_t)(x % (big / 2));
            p[i] = buf + (size_t)((x >> 21) % (big - n[i])); /* overlapping messages too */
        }
        cr_sha256_many(p, n, count, got);
        for (size_t i = 0; i < count; i++) {
            cr_sha256(p[i], n[i], ref);
            assert_memory_equal(got[i], ref, 32);
        }
    }
    cr_sha256_many(p, n, 0, got); /* nothing to do */
}

/* The IDs of fixture files are the SHA-256 of their bytes (spec §3). */
static void test_sha256_fixture_file(void **state)
{
    const char *id = "98a3bf98fc0ec10dc7fe5ba672a09bc8ef1c8b239b8a959bfcaa39854d06787c";
    char path[256];
    snprintf(path, sizeof path, "fixtures/repos/v1/keys/%s", id);
    size_t n;
    _cleanup_free_ char *data = read_file(path, &n);
    uint8_t h[32];
    cr_sha256(data, n, h);
    assert_sha(h, id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_vectors),
        cmocka_unit_test(test_ctr_carry),
        cmocka_unit_test(test_poly1305_aes_djb),
        cmocka_unit_test(test_scrypt_fixture_keys),
        cmocka_unit_test(test_scrypt_rfc7914),
        cmocka_unit_test(test_scrypt_invalid_params),
        cmocka_unit_test(test_open_wrong_mac),
        cmocka_unit_test(test_open_too_short),
        cmocka_unit_test(test_zero_iv),
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_key_switching),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_seal_fresh_iv),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_random_and_ct_equal),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_sha256_many),
        cmocka_unit_test(test_sha256_fixture_file),
    };
    return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
