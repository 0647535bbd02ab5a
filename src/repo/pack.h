/* Pack files (spec §8): header parsing and single-blob decoding. */
#ifndef CRESTIC_REPO_PACK_H
#define CRESTIC_REPO_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "repo/repo.h"
#include "util/id.h"

#define CR_PACK_HEADER_MAX (16u * 1024 * 1024)
#define CR_PACK_ENTRY_PLAIN 37
#define CR_PACK_ENTRY_COMPRESSED 41

typedef struct {
    cr_blob_type type;
    uint32_t offset;
    uint32_t length; /* stored */
    uint32_t ulen;   /* 0 = not compressed */
    cr_id id;
} cr_pack_blob;

/* Parse a decrypted header plaintext into entries with computed offsets.
 * The entries must add up to blob_area bytes (size - 4 - header length). */
int cr_pack_header_parse(const uint8_t *plain, size_t n, unsigned repo_version, uint64_t blob_area,
                         cr_pack_blob **out, size_t *count);
/* Read and parse the header of a stored pack of the given size. */
int cr_repo_pack_header(cr_repo *r, const cr_id *pack, uint64_t size, cr_pack_blob **out, size_t *count);
/* Decode one stored blob: verify MAC, decrypt, decompress when ulen > 0,
 * check SHA-256 == id.  Plaintext in out (replaced). */
int cr_blob_decode(const cr_key *k, const uint8_t *raw, size_t n, uint32_t ulen, const cr_id *id, cr_buf *out);
/* The same into out, which has room for the plaintext (ulen bytes, or
 * n - 32 when not compressed); scratch holds the compressed plaintext
 * between decryption and decompression (reused, so no allocation per blob). */
int cr_blob_decode_into(const cr_key *k, const uint8_t *raw, size_t n, uint32_t ulen, const cr_id *id, uint8_t *out,
                        cr_buf *scratch);
/* Open a blob in the buffer it was read into: MAC verified and decrypted in
 * place (raw is changed), then decompressed into out when ulen > 0 (room for
 * ulen bytes); *plain, *plen: the plaintext, raw + 16 or out.  Its SHA-256
 * is NOT checked: the caller checks it, for several blobs at once
 * (cr_sha256_many); until then it is authenticated by its MAC only. */
int cr_blob_open_inplace(const cr_key *k, uint8_t *raw, size_t n, uint32_t ulen, uint8_t *out, const uint8_t **plain,
                         size_t *plen);

#endif
