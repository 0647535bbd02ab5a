/* libFuzzer target for cr_open/cr_verify: arbitrary bytes must be refused
 * cleanly (CR_E_FORMAT or CR_E_AUTH) without touching the output buffer.
 * As a second property, the input sealed under its own first 16 bytes as IV
 * must open again, and any single flipped bit must then fail the MAC. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "util/error.h"

static const cr_key fuzz_key = {
    .enc = {0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
            0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4},
    .mac_k = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c},
    .mac_r = {0x85, 0xd6, 0xbe, 0x78, 0x57, 0x55, 0x6d, 0x33, 0x7f, 0x44, 0x52, 0xfe, 0x42, 0xd5, 0x06, 0xa8},
};

static void open_garbage(const uint8_t *data, size_t size)
{
    uint8_t *out = malloc(size + 1);
    if (!out) return;
    memset(out, 0xa5, size + 1);
    int r = cr_open(&fuzz_key, data, size, out);
    /* A forged tag for a fixed key would be a real finding. */
    if (r != CR_E_FORMAT && r != CR_E_AUTH) abort();
    if (cr_verify(&fuzz_key, data, size) != r) abort();
    for (size_t i = 0; i <= size; i++)
        if (out[i] != 0xa5) abort();
    free(out);
}

static void seal_and_tamper(const uint8_t *data, size_t size)
{
    if (size < CR_IV_SIZE) return;
    const uint8_t *iv = data, *pt = data + CR_IV_SIZE;
    size_t n = size - CR_IV_SIZE;
    uint8_t *sealed = malloc(n + CR_CRYPTO_OVERHEAD), *back = malloc(n + 1);
    if (!sealed || !back) abort();
    int r = cr_seal_iv(&fuzz_key, iv, pt, n, sealed);
    bool zero_iv = true;
    for (int i = 0; i < CR_IV_SIZE; i++) zero_iv &= iv[i] == 0;
    if (zero_iv ? r != CR_E_FORMAT : r != 0) abort();
    if (r == 0) {
        if (cr_open(&fuzz_key, sealed, n + CR_CRYPTO_OVERHEAD, back) != 0 || memcmp(back, pt, n) != 0) abort();
        /* Flip one bit chosen by the data itself. */
        size_t bit = 0;
        for (size_t i = 0; i < size && i < 8; i++) bit = bit * 251 + data[i];
        bit %= (n + CR_CRYPTO_OVERHEAD) * 8;
        sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        r = cr_open(&fuzz_key, sealed, n + CR_CRYPTO_OVERHEAD, back);
        if (r != CR_E_AUTH && r != CR_E_FORMAT) abort(); /* FORMAT: the flip zeroed the IV */
    }
    free(sealed);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    open_garbage(data, size);
    seal_and_tamper(data, size);
    return 0;
}
