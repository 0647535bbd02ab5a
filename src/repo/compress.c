/* zstd glue (spec §7, §9). */
#include "repo/compress.h"

#include <pthread.h>
#include <string.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_stableInBuffer */
#include <zstd.h>

#include "util/error.h"

int cr_compression_parse(const char *s, cr_compression *out)
{
    static const struct { const char *name; cr_compression mode; } modes[] = {
        {"off", CR_COMPRESS_OFF}, {"auto", CR_COMPRESS_AUTO}, {"max", CR_COMPRESS_MAX},
        {"fastest", CR_COMPRESS_FASTEST}, {"better", CR_COMPRESS_BETTER},
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(s, modes[i].name)) {
            *out = modes[i].mode;
            return 0;
        }
    return cr_error(CR_E_USAGE, "invalid compression mode \"%s\" (expected auto, off, max, fastest or better)", s);
}

int cr_compression_level(cr_compression c)
{
    switch (c) {
    case CR_COMPRESS_FASTEST: return 1;
    case CR_COMPRESS_BETTER: return 7;
    case CR_COMPRESS_MAX: return 19;
    default: return 3;
    }
}

/* One context per thread, made on first use and freed when the thread ends:
 * (de)compression runs once per blob on hot paths. */
static pthread_key_t dctx_key, cctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void free_dctx(void *p) { ZSTD_freeDCtx(p); }
static void free_cctx(void *p) { ZSTD_freeCCtx(p); }

static void make_keys(void)
{
    pthread_key_create(&dctx_key, free_dctx);
    pthread_key_create(&cctx_key, free_cctx);
}

static ZSTD_DCtx *dctx(void)
{
    pthread_once(&keys_once, make_keys);
    ZSTD_DCtx *d = pthread_getspecific(dctx_key);
    if (d) ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
    else if ((d = ZSTD_createDCtx()) && pthread_setspecific(dctx_key, d) != 0) {
        ZSTD_freeDCtx(d);
        d = NULL;
    }
    return d;
}

static ZSTD_CCtx *cctx(void)
{
    pthread_once(&keys_once, make_keys);
    ZSTD_CCtx *c = pthread_getspecific(cctx_key);
    if (!c && (c = ZSTD_createCCtx()) && pthread_setspecific(cctx_key, c) != 0) {
        ZSTD_freeCCtx(c);
        c = NULL;
    }
    return c;
}

int cr_zstd_decompress_stream(const uint8_t *in, size_t n, size_t max_out, cr_buf *out)
{
    ZSTD_DCtx *d = dctx();
    if (!d) return cr_error(-ENOMEM, "zstd: cannot create context");
    /* restic never writes windows above 8 MiB for these; refuse absurd ones (decoder default 128 MiB). */
    ZSTD_inBuffer ib = {in, n, 0};
    size_t ret = 1;
    while (ib.pos < ib.size) {
        size_t chunk = ZSTD_DStreamOutSize();
        CR_TRY(cr_buf_reserve(out, chunk));
        ZSTD_outBuffer ob = {out->data + out->len, chunk, 0};
        ret = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(ret)) return cr_error(CR_E_FORMAT, "zstd: %s", ZSTD_getErrorName(ret));
        out->len += ob.pos;
        if (out->len > max_out) return cr_error(CR_E_FORMAT, "zstd: decompressed data exceeds %zu bytes", max_out);
        if (ob.pos == 0 && ret != 0 && ib.pos == ib.size) break;
    }
    /* Drain whatever the decoder still holds. */
    while (ret != 0) {
        size_t chunk = ZSTD_DStreamOutSize();
        CR_TRY(cr_buf_reserve(out, chunk));
        ZSTD_outBuffer ob = {out->data + out->len, chunk, 0};
        ret = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(ret)) return cr_error(CR_E_FORMAT, "zstd: %s", ZSTD_getErrorName(ret));
        out->len += ob.pos;
        if (out->len > max_out) return cr_error(CR_E_FORMAT, "zstd: decompressed data exceeds %zu bytes", max_out);
        if (ob.pos == 0) return cr_error(CR_E_FORMAT, "zstd: truncated frame");
    }
    return 0;
}

int cr_zstd_decompress_exact(const uint8_t *in, size_t n, uint8_t *dst, size_t expect)
{
    ZSTD_DCtx *d = dctx();
    if (!d) return cr_error(-ENOMEM, "zstd: cannot create context");
    ZSTD_inBuffer ib = {in, n, 0};
    ZSTD_outBuffer ob = {dst, expect, 0};
    size_t ret;
    do {
        ret = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(ret)) return cr_error(CR_E_FORMAT, "zstd: %s", ZSTD_getErrorName(ret));
    } while (ret != 0 && ib.pos < ib.size && ob.pos < ob.size);
    if (ret != 0) {
        /* Either more output than expected or a truncated frame. */
        uint8_t probe;
        ZSTD_outBuffer pb = {&probe, 1, 0};
        size_t r2 = ZSTD_decompressStream(d, &pb, &ib);
        if (!ZSTD_isError(r2) && pb.pos) return cr_error(CR_E_FORMAT, "zstd: decompressed size exceeds the expected %zu bytes", expect);
        return cr_error(CR_E_FORMAT, "zstd: truncated frame");
    }
    if (ob.pos != expect)
        return cr_error(CR_E_FORMAT, "zstd: decompressed %zu bytes, expected %zu", ob.pos, expect);
    if (ib.pos != ib.size) return cr_error(CR_E_FORMAT, "zstd: trailing data after frame");
    return 0;
}

/* This thread's compression context, set up for one frame at `level`. */
static ZSTD_CCtx *cctx_for(int level)
{
    ZSTD_CCtx *c = cctx();
    if (!c) return NULL;
    ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    /* Keep windows small for constrained readers (spec §9): at most 8 MiB. */
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 23);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
    return c;
}

/* Samples of the incompressibility guess: a sample that shrinks by more than
 * 1/32 means the blob is worth compressing. */
#define PROBE_LEN (8u * 1024)
#define PROBE_MIN_BLOB (64u * 1024)

bool cr_zstd_looks_incompressible(const uint8_t *in, size_t n)
{
    if (n < PROBE_MIN_BLOB) return false;
    ZSTD_CCtx *c = cctx_for(1);
    if (!c) return false;
    uint8_t out[PROBE_LEN + 512]; /* > ZSTD_compressBound(PROBE_LEN) */
    const size_t at[] = {n / 2 - PROBE_LEN / 2, 0, n - PROBE_LEN};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        size_t r = ZSTD_compress2(c, out, sizeof out, in + at[i], PROBE_LEN);
        if (ZSTD_isError(r) || r < PROBE_LEN - PROBE_LEN / 32) return false;
    }
    return true;
}

int cr_zstd_compress_append(const uint8_t *in, size_t n, int level, cr_buf *out)
{
    ZSTD_CCtx *c = cctx_for(level);
    if (!c) return cr_error(-ENOMEM, "zstd: cannot create context");
    size_t bound = ZSTD_compressBound(n);
    CR_TRY(cr_buf_reserve(out, bound));
    size_t r = ZSTD_compress2(c, out->data + out->len, bound, in, n);
    if (ZSTD_isError(r)) return cr_error(-EIO, "zstd: %s", ZSTD_getErrorName(r));
    out->len += r;
    return 0;
}

int cr_zstd_compress_pieces(const uint8_t *in, size_t n, int level, uint8_t *piece, size_t cap, cr_zstd_sink sink, void *ud)
{
    ZSTD_CCtx *c = cctx_for(level);
    if (!c) return cr_error(-ENOMEM, "zstd: cannot create context");
    /* The input stays in place until the frame ends: no window copy inside zstd. */
    ZSTD_CCtx_setParameter(c, ZSTD_c_stableInBuffer, 1);
    ZSTD_CCtx_setPledgedSrcSize(c, n);
    ZSTD_inBuffer ib = {in, n, 0};
    size_t left;
    do {
        ZSTD_outBuffer ob = {piece, cap, 0};
        left = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
        if (ZSTD_isError(left)) return cr_error(-EIO, "zstd: %s", ZSTD_getErrorName(left));
        if (ob.pos) CR_TRY(sink(ud, piece, ob.pos));
    } while (left != 0);
    return 0;
}

int cr_zstd_compress(const uint8_t *in, size_t n, int level, cr_buf *out)
{
    cr_buf_reset(out);
    return cr_zstd_compress_append(in, n, level, out);
}

int cr_unpacked_decode(unsigned repo_version, const uint8_t *plain, size_t n, cr_buf *out)
{
    cr_buf_reset(out);
    if (n == 0 || repo_version < 2 || plain[0] == '{' || plain[0] == '[')
        return cr_buf_append(out, plain, n) < 0 ? -ENOMEM : cr_buf_nul(out);
    if (plain[0] != 2) return cr_error(CR_E_FORMAT, "unsupported encoding type %u", plain[0]);
    CR_TRY(cr_zstd_decompress_stream(plain + 1, n - 1, CR_UNPACKED_MAX, out));
    return cr_buf_nul(out);
}
