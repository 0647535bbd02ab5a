/* Pack headers and blob decoding (spec §8). */
#include "repo/pack.h"

#include <stdlib.h>
#include <string.h>

#include "repo/compress.h"
#include "util/cleanup.h"
#include "util/error.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int cr_pack_header_parse(const uint8_t *plain, size_t n, unsigned repo_version, uint64_t blob_area,
                         cr_pack_blob **out, size_t *count)
{
    size_t cap = n / CR_PACK_ENTRY_PLAIN + 1, k = 0;
    cr_pack_blob *blobs = calloc(cap, sizeof *blobs);
    if (!blobs) return cr_error(-ENOMEM, "out of memory");
    uint64_t offset = 0;
    int r = 0;
    for (size_t pos = 0; pos < n;) {
        uint8_t type = plain[pos];
        size_t size = type <= 1 ? CR_PACK_ENTRY_PLAIN : type <= 3 ? CR_PACK_ENTRY_COMPRESSED : 0;
        if (!size) { r = cr_error(CR_E_FORMAT, "pack header: invalid blob type %u at byte %zu", type, pos); break; }
        if (type >= 2 && repo_version < 2) { r = cr_error(CR_E_FORMAT, "pack header: compressed blob in a version 1 repository"); break; }
        if (n - pos < size) { r = cr_error(CR_E_FORMAT, "pack header: truncated entry at byte %zu", pos); break; }
        cr_pack_blob *b = &blobs[k++];
        b->type = (type & 1) ? CR_BLOB_TREE : CR_BLOB_DATA;
        b->length = le32(plain + pos + 1);
        b->ulen = size == CR_PACK_ENTRY_COMPRESSED ? le32(plain + pos + 5) : 0;
        memcpy(b->id.b, plain + pos + size - CR_ID_SIZE, CR_ID_SIZE);
        if (b->length < CR_CRYPTO_OVERHEAD) { r = cr_error(CR_E_FORMAT, "pack header: blob length %u too small", b->length); break; }
        if (offset > UINT32_MAX) { r = cr_error(CR_E_FORMAT, "pack header: offsets exceed 4 GiB"); break; }
        b->offset = (uint32_t)offset;
        offset += b->length;
        pos += size;
    }
    if (r == 0 && offset != blob_area)
        r = cr_error(CR_E_FORMAT, "pack header: blobs cover %llu bytes, but the pack has %llu bytes of blobs",
                     (unsigned long long)offset, (unsigned long long)blob_area);
    if (r < 0) {
        free(blobs);
        return r;
    }
    *out = blobs;
    *count = k;
    return 0;
}

int cr_repo_pack_header(cr_repo *r, const cr_id *pack, uint64_t size, cr_pack_blob **out, size_t *count)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(pack, hex);
    if (size < 4 + CR_CRYPTO_OVERHEAD) return cr_error(CR_E_FORMAT, "pack %s: file too small (%llu bytes)", hex, (unsigned long long)size);
    /* One read usually gets the whole header: restic-sized headers of up to 15 entries fit. */
    uint64_t guess = 15 * CR_PACK_ENTRY_COMPRESSED + CR_CRYPTO_OVERHEAD + 4;
    if (guess > size) guess = size;
    _cleanup_buf_ cr_buf tail = CR_BUF_INIT;
    CR_TRY(cr_be_load(r->be, CR_FILE_PACK, hex, size - guess, guess, &tail));
    uint32_t hlen = le32(tail.data + tail.len - 4);
    if (hlen < CR_CRYPTO_OVERHEAD || (uint64_t)hlen + 4 > size || hlen > CR_PACK_HEADER_MAX)
        return cr_error(CR_E_FORMAT, "pack %s: invalid header length %u", hex, hlen);
    if ((uint64_t)hlen + 4 > guess) CR_TRY(cr_be_load(r->be, CR_FILE_PACK, hex, size - 4 - hlen, hlen + 4, &tail));
    const uint8_t *enc = tail.data + tail.len - 4 - hlen;
    _cleanup_free_ uint8_t *plain = malloc(hlen - CR_CRYPTO_OVERHEAD + 1);
    if (!plain) return cr_error(-ENOMEM, "out of memory");
    int e = cr_open(&r->master, enc, hlen, plain);
    if (e == 0) e = cr_pack_header_parse(plain, hlen - CR_CRYPTO_OVERHEAD, r->cfg.version, size - 4 - hlen, out, count);
    if (e < 0) return cr_error_ctx(e, "pack %s", hex);
    return 0;
}

int cr_blob_decode_into(const cr_key *k, const uint8_t *raw, size_t n, uint32_t ulen, const cr_id *id, uint8_t *out,
                        cr_buf *scratch)
{
    if (n < CR_CRYPTO_OVERHEAD) return cr_error(CR_E_FORMAT, "blob too short (%zu bytes)", n);
    size_t plen = n - CR_CRYPTO_OVERHEAD;
    if (ulen == 0) {
        CR_TRY(cr_open(k, raw, n, out));
    } else {
        cr_buf_reset(scratch);
        CR_TRY(cr_buf_resize(scratch, plen));
        CR_TRY(cr_open(k, raw, n, scratch->data));
        CR_TRY(cr_zstd_decompress_exact(scratch->data, plen, out, ulen));
    }
    cr_id got;
    cr_sha256(out, ulen ? ulen : plen, got.b);
    if (!cr_id_eq(&got, id)) return cr_error(CR_E_AUTH, "blob hash mismatch (content does not match its ID)");
    return 0;
}

int cr_blob_open_inplace(const cr_key *k, uint8_t *raw, size_t n, uint32_t ulen, uint8_t *out, const uint8_t **plain,
                         size_t *plen)
{
    if (n < CR_CRYPTO_OVERHEAD) return cr_error(CR_E_FORMAT, "blob too short (%zu bytes)", n);
    CR_TRY(cr_open_inplace(k, raw, n));
    *plain = raw + CR_IV_SIZE;
    *plen = n - CR_CRYPTO_OVERHEAD;
    if (ulen) {
        CR_TRY(cr_zstd_decompress_exact(*plain, *plen, out, ulen));
        *plain = out;
        *plen = ulen;
    }
    return 0;
}

int cr_blob_decode(const cr_key *k, const uint8_t *raw, size_t n, uint32_t ulen, const cr_id *id, cr_buf *out)
{
    if (n < CR_CRYPTO_OVERHEAD) return cr_error(CR_E_FORMAT, "blob too short (%zu bytes)", n);
    cr_buf_reset(out);
    CR_TRY(cr_buf_resize(out, ulen ? ulen : n - CR_CRYPTO_OVERHEAD));
    _cleanup_buf_ cr_buf scratch = CR_BUF_INIT;
    return cr_blob_decode_into(k, raw, n, ulen, id, out->data, &scratch);
}
