/* libFuzzer target for pack header plaintexts (spec §8.2).  Input:
 *   byte 0      bit 0: repository version 1 or 2;
 *               bit 1: blob area from bytes 1..8 (else the sum the reference
 *                      parser below computes, so valid headers are reached)
 *   bytes 1..8  LE64 blob area
 *   bytes 9..   the header plaintext
 * cr_pack_header_parse is compared with a straightforward reference parser:
 * both must agree on success, and on success on every entry (type, offset,
 * length, uncompressed length, ID). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/pack.h"
#include "util/error.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct {
    uint8_t type_byte;
    uint64_t offset;
    uint32_t length, ulen;
    const uint8_t *id;
} ref_entry;

/* Returns the number of entries, or -1 if the header is invalid. */
static long ref_parse(const uint8_t *h, size_t n, unsigned version, ref_entry *out, uint64_t *area)
{
    size_t pos = 0;
    long k = 0;
    uint64_t off = 0;
    while (pos < n) {
        uint8_t t = h[pos];
        if (t > 3) return -1;
        if (t >= 2 && version < 2) return -1;
        size_t es = t >= 2 ? 41 : 37;
        if (n - pos < es) return -1;
        ref_entry *e = &out[k++];
        e->type_byte = t;
        e->length = le32(h + pos + 1);
        e->ulen = t >= 2 ? le32(h + pos + 5) : 0;
        e->id = h + pos + es - 32;
        e->offset = off;
        if (e->length < 32) return -1;
        if (off > UINT32_MAX) return -1; /* an offset must fit the index's 32 bits */
        off += e->length;
        pos += es;
    }
    *area = off;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9) return 0;
    unsigned version = (data[0] & 1) + 1;
    uint64_t given = 0;
    for (int i = 8; i >= 1; i--) given = given << 8 | data[i];
    const uint8_t *h = data + 9;
    size_t n = size - 9;

    ref_entry *ref = malloc((n / 37 + 1) * sizeof *ref);
    if (!ref) abort();
    uint64_t sum = 0;
    long k = ref_parse(h, n, version, ref, &sum);
    uint64_t area = (data[0] & 2) ? given : sum;

    /* A copy with no slack after it, so reading past the end is caught. */
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, h, n);
    cr_pack_blob *blobs = NULL;
    size_t count = 0;
    int r = cr_pack_header_parse(copy, n, version, area, &blobs, &count);
    bool want_ok = k >= 0 && sum == area;
    if (r < 0) {
        if (r != CR_E_FORMAT) abort();
        if (want_ok) abort();
        if (blobs) abort();
    } else {
        if (!want_ok) abort();
        if (count != (size_t)k) abort();
        for (size_t i = 0; i < count; i++) {
            const cr_pack_blob *b = &blobs[i];
            const ref_entry *e = &ref[i];
            if (b->type != ((e->type_byte & 1) ? CR_BLOB_TREE : CR_BLOB_DATA)) abort();
            if (b->offset != e->offset || b->length != e->length || b->ulen != e->ulen) abort();
            if (memcmp(b->id.b, e->id, 32) != 0) abort();
        }
        free(blobs);
    }
    free(copy);
    free(ref);
    cr_error_clear();
    return 0;
}
