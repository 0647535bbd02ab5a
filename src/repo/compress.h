/* zstd for repository v2 (spec §7, §9). */
#ifndef CRESTIC_REPO_COMPRESS_H
#define CRESTIC_REPO_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Upper bound for a decompressed unpacked file (index/snapshot/lock). */
#define CR_UNPACKED_MAX ((size_t)1 << 32)

typedef enum {
    CR_COMPRESS_OFF,
    CR_COMPRESS_AUTO,
    CR_COMPRESS_MAX,
    CR_COMPRESS_FASTEST,
    CR_COMPRESS_BETTER,
} cr_compression;

/* Parse "off|auto|max|fastest|better"; CR_E_USAGE otherwise. */
int cr_compression_parse(const char *s, cr_compression *out);
/* zstd level for a mode (not OFF). */
int cr_compression_level(cr_compression c);

/* Decompress one frame (or several concatenated) whose content size may be
 * unknown; appends to out.  Output above max_out is refused (CR_E_FORMAT). */
int cr_zstd_decompress_stream(const uint8_t *in, size_t n, size_t max_out, cr_buf *out);
/* Decompress into exactly `expect` bytes at dst; any other size is CR_E_FORMAT. */
int cr_zstd_decompress_exact(const uint8_t *in, size_t n, uint8_t *dst, size_t expect);
/* Compress at level into out (replacing it). */
int cr_zstd_compress(const uint8_t *in, size_t n, int level, cr_buf *out);
/* One frame handed on in pieces of at most cap bytes as they are produced,
 * so the whole output is never held: sink may change the piece in place;
 * its failure stops the compression and is returned. */
typedef int (*cr_zstd_sink)(void *ud, uint8_t *piece, size_t n);
int cr_zstd_compress_pieces(const uint8_t *in, size_t n, int level, uint8_t *piece, size_t cap, cr_zstd_sink sink, void *ud);
/* A cheap guess before compressing a data blob: true when samples from its
 * start, middle and end do not shrink at zstd's fastest level (media,
 * archives, encrypted files).  Blobs under 64 KiB are never judged. */
bool cr_zstd_looks_incompressible(const uint8_t *in, size_t n);
/* Same as cr_zstd_compress, appended after what out already holds. */
int cr_zstd_compress_append(const uint8_t *in, size_t n, int level, cr_buf *out);

/* Unpacked-file plaintext (spec §7): for v2, 0x02||zstd -> JSON, '{'/'[' raw.
 * Writes the JSON into out. */
int cr_unpacked_decode(unsigned repo_version, const uint8_t *plain, size_t n, cr_buf *out);

#endif
