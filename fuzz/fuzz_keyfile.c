/* libFuzzer target for key files and the master key JSON (spec §5).
 *  - cr_keyfile_parse must accept or refuse (CR_E_FORMAT) without leaks;
 *  - a parsed key file is unlocked with the password "fuzz" when its scrypt
 *    parameters are tiny (N*r*p capped so an input cannot make a run slow):
 *    success, CR_E_AUTH, CR_E_FORMAT or CR_E_UNSUPPORTED only;
 *  - cr_masterkey_parse on the same bytes: a parsed key re-encodes to JSON
 *    that parses back to the same key, and that encoding is a fixed point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "repo/repo.h"
#include "util/buf.h"
#include "util/error.h"

#define MAX_WORK (1u << 12) /* N * r * p */

static void check_unlock(const cr_keyfile *kf)
{
    if (kf->N > MAX_WORK || kf->r > MAX_WORK || kf->p > MAX_WORK) return;
    if (kf->N * kf->r * kf->p > MAX_WORK) return;
    cr_key k;
    memset(&k, 0, sizeof k);
    int r = cr_keyfile_unlock(kf, "fuzz", 4, &k);
    if (r == 0) {
        if (!cr_key_is_valid(&k)) abort();
        return;
    }
    if (r != CR_E_AUTH && r != CR_E_FORMAT && r != CR_E_UNSUPPORTED) abort();
}

static void check_keyfile(const uint8_t *data, size_t size)
{
    cr_keyfile kf;
    memset(&kf, 0x5a, sizeof kf);
    int r = cr_keyfile_parse((const char *)data, size, &kf);
    if (r < 0) {
        if (r != CR_E_FORMAT) abort();
        /* cleared on failure */
        if (kf.kdf || kf.created || kf.salt.data || kf.data.data) abort();
        return;
    }
    check_unlock(&kf);
    cr_keyfile_clear(&kf);
}

static void check_masterkey(const uint8_t *data, size_t size)
{
    cr_key k;
    int r = cr_masterkey_parse((const char *)data, size, &k);
    if (r < 0) {
        if (r != CR_E_FORMAT) abort();
        return;
    }
    if (!cr_key_is_valid(&k)) abort();
    cr_buf a = CR_BUF_INIT, b = CR_BUF_INIT;
    if (cr_masterkey_encode(&k, &a) < 0) abort();
    cr_key k2;
    if (cr_masterkey_parse((const char *)a.data, a.len, &k2) != 0) abort();
    if (memcmp(&k, &k2, sizeof k) != 0) abort();
    if (cr_masterkey_encode(&k2, &b) < 0) abort();
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
    cr_buf_free(&a);
    cr_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_keyfile(data, size);
    check_masterkey(data, size);
    cr_error_clear();
    return 0;
}
