/* libFuzzer target for the config JSON (spec §6): whatever parses is version
 * 1 or 2 with an irreducible polynomial, re-encodes to JSON that parses to
 * the same config, and that encoding is a fixed point.  Failures are
 * CR_E_FORMAT or CR_E_UNSUPPORTED only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunker/chunker.h"
#include "repo/repo.h"
#include "util/buf.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_config c;
    memset(&c, 0, sizeof c);
    int r = cr_config_parse((const char *)data, size, &c);
    if (r < 0) {
        if (r != CR_E_FORMAT && r != CR_E_UNSUPPORTED) abort();
        cr_error_clear();
        return 0;
    }
    if (c.version < 1 || c.version > 2) abort();
    if (!cr_pol_irreducible(c.chunker_pol)) abort();
    cr_buf a = CR_BUF_INIT, b = CR_BUF_INIT;
    if (cr_config_encode(&c, &a) < 0) abort();
    cr_config c2;
    memset(&c2, 0, sizeof c2);
    if (cr_config_parse((const char *)a.data, a.len, &c2) != 0) abort();
    if (c2.version != c.version || c2.chunker_pol != c.chunker_pol || !cr_id_eq(&c2.id, &c.id)) abort();
    if (cr_config_encode(&c2, &b) < 0) abort();
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
    cr_buf_free(&a);
    cr_buf_free(&b);
    return 0;
}
