/* libFuzzer target for unpacked-file plaintexts (spec §7): the input is the
 * decrypted plaintext of an index/snapshot/lock file, decoded as a v1 and as
 * a v2 repository would.
 *  - v1 and JSON-first v2 plaintexts pass through unchanged;
 *  - v2 0x02||zstd either decodes or fails with CR_E_FORMAT;
 *  - the output is NUL-terminated;
 *  - differential check: when the stream decoder succeeds, the exact-size
 *    decoder used for blobs gives the same bytes or refuses (several or
 *    skippable frames; never a single frame), and refuses one byte more or
 *    less. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "repo/compress.h"
#include "util/buf.h"
#include "util/error.h"

#define EXACT_CHECK_MAX (4u << 20)

static void check_exact(const uint8_t *z, size_t n, const cr_buf *want)
{
    if (want->len == 0 || want->len > EXACT_CHECK_MAX) return;
    uint8_t *dst = malloc(want->len + 1);
    if (!dst) abort();
    int r = cr_zstd_decompress_exact(z, n, dst, want->len);
    if (r == 0 && memcmp(dst, want->data, want->len) != 0) abort();
    if (r != 0 && r != CR_E_FORMAT) abort();
    /* Exactly one (non-skippable) frame that decodes: the exact decoder must take it too. */
    bool zstd_magic = n >= 4 && z[0] == 0x28 && z[1] == 0xb5 && z[2] == 0x2f && z[3] == 0xfd;
    if (r != 0 && zstd_magic && ZSTD_findFrameCompressedSize(z, n) == n) abort();
    if (cr_zstd_decompress_exact(z, n, dst, want->len + 1) != CR_E_FORMAT) abort();
    if (cr_zstd_decompress_exact(z, n, dst, want->len - 1) != CR_E_FORMAT) abort();
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_buf out = CR_BUF_INIT;
    /* v1: always the JSON itself. */
    if (cr_unpacked_decode(1, data, size, &out) != 0) abort();
    if (out.len != size || (size && memcmp(out.data, data, size) != 0)) abort();
    if (out.data && out.data[out.len] != 0) abort();

    int r = cr_unpacked_decode(2, data, size, &out);
    if (size == 0 || data[0] == '{' || data[0] == '[') {
        if (r != 0 || out.len != size || (size && memcmp(out.data, data, size) != 0)) abort();
    } else if (data[0] != 2) {
        if (r != CR_E_FORMAT) abort();
    } else if (r == 0) {
        if (out.data && out.data[out.len] != 0) abort();
        check_exact(data + 1, size - 1, &out);
    } else if (r != CR_E_FORMAT) {
        abort();
    }
    cr_buf_free(&out);
    cr_error_clear();
    return 0;
}
