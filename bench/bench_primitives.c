/* Per-core throughput of every primitive on the backup/restore hot path, and
 * of the per-blob pipelines built from them.
 *
 *   bench_primitives [--mib N] [--secs S]
 *
 * For each primitive two figures are printed side by side:
 *   crestic  the project's call (cr_sha256, cr_seal, cr_zstd_compress, ...)
 *            on 1 MiB blobs, the size of a typical chunk;
 *   raw      the library primitive called directly, `openssl speed -evp`
 *            style: a reused context, 16 KiB blocks, in this same program
 *            (zstd: the same on 1 MiB blocks, as zstd -b does).
 * Rates are bytes of input per CPU second of this thread (MB = 10^6 B), best
 * of three runs, so other load on the machine does not count.
 *
 * Pipelines (what a saver / restorer thread does per blob):
 *   backup v1   chunk -> sha256 -> seal
 *   backup v2   chunk -> sha256 -> zstd -3 -> seal
 *   restore v1  open -> sha256 (verify)
 *   restore v2  open -> zstd -d -> sha256 (verify)
 * each next to its limit 1 / sum(1 / rate_i) from the single-primitive
 * rates (stages that see compressed bytes weighted by the compression ratio). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zstd.h>

#include "bench_util.h"
#include "chunker/chunker.h"
#include "crypto/crypto.h"
#include "repo/compress.h"
#include "util/buf.h"

#define BLOB (1u << 20)
#define RAW_BLOCK (16u << 10)
#define POL 0x3da3358b4dc173ull

static double min_secs = 0.4;
static size_t data_len;
static uint8_t *rnd, *txt; /* the two inputs       */
static uint8_t *out;       /* room for any output  */
static uint8_t *out_base;
static cr_key key;

/* ---- timing -------------------------------------------------------------- */

typedef void (*body_fn)(const uint8_t *data, size_t n, void *arg);

/* MB/s of one run of body over data[0..n), repeated for min_secs of CPU time. */
static double rate1(body_fn body, const uint8_t *data, size_t n, void *arg)
{
    size_t bytes = 0;
    double t0 = bench_cpu(), t;
    do {
        body(data, n, arg);
        bytes += n;
        t = bench_cpu() - t0;
    } while (t < min_secs);
    return (double)bytes / t / 1e6;
}

static double rate(body_fn body, const uint8_t *data, size_t n, void *arg)
{
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double r = rate1(body, data, n, arg);
        if (r > best) best = r;
    }
    return best;
}

/* Two bodies measured alternately (best of 3 each): the machine's state
 * (clock, other load) then affects both alike. */
static void rate2(body_fn a, void *aa, body_fn b, void *ba, const uint8_t *data, size_t n, double *ra, double *rb)
{
    *ra = *rb = 0;
    for (int rep = 0; rep < 3; rep++) {
        double x = rate1(a, data, n, aa), y = rate1(b, data, n, ba);
        if (x > *ra) *ra = x;
        if (y > *rb) *rb = y;
    }
}

static void row(const char *name, const char *data, double ours, double raw, const char *note)
{
    printf("%-22s %-7s %9.0f", name, data, ours);
    if (raw > 0) printf(" %9.0f  %5.2f", raw, ours / raw);
    else printf(" %9s  %5s", "-", "-");
    printf("  %s\n", note ? note : "");
}

/* ---- crestic calls --------------------------------------------------------- */

static void do_chunk(const uint8_t *d, size_t n, void *arg)
{
    cr_chunker *c = arg;
    cr_chunker_reset(c);
    for (size_t pos = 0; pos < n;) {
        bool cut;
        pos += cr_chunker_scan(c, d + pos, n - pos, &cut);
    }
}

static void do_sha(const uint8_t *d, size_t n, void *arg)
{
    uint8_t h[32];
    for (size_t i = 0; i < n; i += BLOB) cr_sha256(d + i, BLOB, h);
}

/* Blob hashes as restore and backup compute them: several at a time. */
static void do_sha_many(const uint8_t *d, size_t n, void *arg)
{
    enum { GROUP = 8 };
    const uint8_t *p[GROUP];
    size_t len[GROUP];
    uint8_t h[GROUP][32];
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < GROUP && i < n; k++, i += BLOB) p[k] = d + i, len[k] = BLOB;
        cr_sha256_many(p, len, k, h);
    }
}

static void do_seal(const uint8_t *d, size_t n, void *arg)
{
    for (size_t i = 0; i < n; i += BLOB)
        if (cr_seal(&key, d + i, BLOB, out) < 0) abort();
}

static void do_open(const uint8_t *d, size_t n, void *arg)
{
    const uint8_t *sealed = arg; /* BLOB-sized blobs sealed back to back */
    for (size_t i = 0; i < n; i += BLOB)
        if (cr_open(&key, sealed + i / BLOB * (BLOB + CR_CRYPTO_OVERHEAD), BLOB + CR_CRYPTO_OVERHEAD, out) < 0) abort();
}

static void do_poly(const uint8_t *d, size_t n, void *arg)
{
    static const uint8_t iv[16] = {1};
    uint8_t tag[16];
    for (size_t i = 0; i < n; i += BLOB) cr_poly1305_aes(&key, iv, d + i, BLOB, tag);
}

static void do_zstd(const uint8_t *d, size_t n, void *arg)
{
    cr_buf *z = arg;
    for (size_t i = 0; i < n; i += BLOB)
        if (cr_zstd_compress(d + i, BLOB, 3, z) < 0) abort();
}

typedef struct {
    cr_buf *frames; /* one per BLOB */
} zframes;

static void do_unzstd(const uint8_t *d, size_t n, void *arg)
{
    zframes *zf = arg;
    for (size_t i = 0; i < n; i += BLOB) {
        cr_buf *f = &zf->frames[i / BLOB];
        if (cr_zstd_decompress_exact(f->data, f->len, out, BLOB) < 0) abort();
    }
}

/* ---- raw library calls ----------------------------------------------------- */

typedef struct {
    EVP_MD_CTX *md;
    const EVP_MD *sha;
    EVP_CIPHER_CTX *cipher;
    EVP_MAC_CTX *mac;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    size_t block;
} raw_ctx;

static void raw_sha(const uint8_t *d, size_t n, void *arg)
{
    raw_ctx *r = arg;
    uint8_t h[32];
    for (size_t i = 0; i < n; i += r->block) {
        EVP_DigestInit_ex(r->md, r->sha, NULL);
        EVP_DigestUpdate(r->md, d + i, r->block);
        EVP_DigestFinal_ex(r->md, h, NULL);
    }
}

static void raw_ctr(const uint8_t *d, size_t n, void *arg)
{
    raw_ctx *r = arg;
    int len;
    for (size_t i = 0; i < n; i += r->block) EVP_EncryptUpdate(r->cipher, out, &len, d + i, (int)r->block);
}

static void raw_poly(const uint8_t *d, size_t n, void *arg)
{
    raw_ctx *r = arg;
    static const uint8_t k[32] = {7, 7, 7};
    uint8_t tag[16];
    size_t tl;
    for (size_t i = 0; i < n; i += r->block) {
        EVP_MAC_init(r->mac, k, sizeof k, NULL);
        EVP_MAC_update(r->mac, d + i, r->block);
        EVP_MAC_final(r->mac, tag, &tl, sizeof tag);
    }
}

static void raw_zstd(const uint8_t *d, size_t n, void *arg)
{
    raw_ctx *r = arg;
    size_t cap = ZSTD_compressBound(BLOB);
    for (size_t i = 0; i < n; i += BLOB)
        if (ZSTD_isError(ZSTD_compressCCtx(r->cctx, out, cap, d + i, BLOB, 3))) abort();
}

static void raw_unzstd(const uint8_t *d, size_t n, void *arg)
{
    struct {
        raw_ctx *r;
        zframes *zf;
    } *a = arg;
    for (size_t i = 0; i < n; i += BLOB) {
        cr_buf *f = &a->zf->frames[i / BLOB];
        if (ZSTD_isError(ZSTD_decompressDCtx(a->r->dctx, out, BLOB, f->data, f->len))) abort();
    }
}

/* ---- pipelines --------------------------------------------------------------- */

typedef struct {
    cr_chunker *ch;
    bool compress;
    cr_buf z;
} pipe_ctx;

static void blob_backup(pipe_ctx *p, const uint8_t *b, size_t n)
{
    uint8_t id[32];
    cr_sha256(b, n, id);
    if (p->compress) {
        if (cr_zstd_compress(b, n, 3, &p->z) < 0) abort();
        b = p->z.data;
        n = p->z.len;
    }
    if (cr_seal(&key, b, n, out) < 0) abort();
}

static void do_backup(const uint8_t *d, size_t n, void *arg)
{
    pipe_ctx *p = arg;
    cr_chunker_reset(p->ch);
    size_t start = 0;
    for (size_t pos = 0; pos < n;) {
        bool cut;
        pos += cr_chunker_scan(p->ch, d + pos, n - pos, &cut);
        if (cut) {
            blob_backup(p, d + start, pos - start);
            start = pos;
        }
    }
    if (start < n) blob_backup(p, d + start, n - start);
}

typedef struct {
    uint8_t **sealed; /* per BLOB: sealed (compressed or plain) blob */
    size_t *len;
    bool compressed;
} restore_ctx;

static void do_restore(const uint8_t *d, size_t n, void *arg)
{
    restore_ctx *rc = arg;
    static uint8_t *plain;
    if (!plain) plain = bench_alloc(BLOB + 64);
    uint8_t id[32];
    for (size_t i = 0; i < n / BLOB; i++) {
        if (cr_open(&key, rc->sealed[i], rc->len[i], plain) < 0) abort();
        const uint8_t *p = plain;
        if (rc->compressed) {
            if (cr_zstd_decompress_exact(plain, rc->len[i] - CR_CRYPTO_OVERHEAD, out, BLOB) < 0) abort();
            p = out;
        }
        cr_sha256(p, BLOB, id);
    }
}

static void prepare_restore(restore_ctx *rc, const uint8_t *d, size_t n, bool compressed)
{
    size_t nb = n / BLOB;
    rc->sealed = calloc(nb, sizeof *rc->sealed);
    rc->len = calloc(nb, sizeof *rc->len);
    rc->compressed = compressed;
    cr_buf z = CR_BUF_INIT;
    for (size_t i = 0; i < nb; i++) {
        const uint8_t *src = d + i * BLOB;
        size_t len = BLOB;
        if (compressed) {
            if (cr_zstd_compress(src, BLOB, 3, &z) < 0) abort();
            src = z.data;
            len = z.len;
        }
        rc->sealed[i] = bench_alloc(len + CR_CRYPTO_OVERHEAD);
        rc->len[i] = len + CR_CRYPTO_OVERHEAD;
        if (cr_seal(&key, src, len, rc->sealed[i]) < 0) abort();
    }
    cr_buf_free(&z);
}

static void free_restore(restore_ctx *rc, size_t n)
{
    for (size_t i = 0; i < n / BLOB; i++) free(rc->sealed[i]);
    free(rc->sealed);
    free(rc->len);
}

static double limit(const double *rates, const double *weights, int k)
{
    double t = 0;
    for (int i = 0; i < k; i++) t += weights[i] / rates[i];
    return 1 / t;
}

/* ---- main -------------------------------------------------------------------- */

typedef struct {
    double chunk, sha, seal, open, zstd, unzstd, ratio; /* ratio = compressed / input */
} rates;

static rates bench_data(const char *name, const uint8_t *d, raw_ctx *raw, cr_chunker *ch, double *raw_seal_out)
{
    rates r;
    size_t n = data_len;
    cr_buf z = CR_BUF_INIT;

    r.chunk = rate(do_chunk, d, n, ch);
    row("chunker", name, r.chunk, 0, "(no library equivalent; see bench_chunker)");

    double x, y;
    raw->block = RAW_BLOCK;
    rate2(do_sha, NULL, raw_sha, raw, d, n, &r.sha, &y);
    row("sha256", name, r.sha, y, NULL);
    row("sha256 x8 (many)", name, rate(do_sha_many, d, n, NULL), y, "cr_sha256_many: two lanes through SHA-NI");

    double ctr = rate(raw_ctr, d, n, raw), poly;
    row("aes-256-ctr", name, 0, ctr, "raw only (inside cr_seal/cr_open)");
    rate2(do_poly, NULL, raw_poly, raw, d, n, &x, &poly);
    row("poly1305", name, x, poly, "crestic: Poly1305-AES incl. the AES nonce step");
    r.seal = rate(do_seal, d, n, NULL);
    double raw_seal = 1 / (1 / ctr + 1 / poly);
    row("seal (ctr+poly1305)", name, r.seal, raw_seal, "raw = 1/(1/ctr + 1/poly1305)");
    *raw_seal_out = raw_seal;

    restore_ctx rc;
    prepare_restore(&rc, d, n, false);
    uint8_t *sealed = bench_alloc(n / BLOB * (BLOB + CR_CRYPTO_OVERHEAD));
    for (size_t i = 0; i < n / BLOB; i++)
        memcpy(sealed + i * (BLOB + CR_CRYPTO_OVERHEAD), rc.sealed[i], BLOB + CR_CRYPTO_OVERHEAD);
    free_restore(&rc, n);
    r.open = rate(do_open, d, n, sealed);
    row("open (verify+ctr)", name, r.open, raw_seal, "raw = 1/(1/ctr + 1/poly1305)");
    free(sealed);

    rate2(do_zstd, &z, raw_zstd, raw, d, n, &r.zstd, &y);
    row("zstd -3 compress", name, r.zstd, y, "raw: ZSTD_compressCCtx, 1 MiB blocks");

    zframes zf = {calloc(n / BLOB, sizeof(cr_buf))};
    size_t zbytes = 0;
    for (size_t i = 0; i < n / BLOB; i++) {
        if (cr_zstd_compress(d + i * BLOB, BLOB, 3, &zf.frames[i]) < 0) abort();
        zbytes += zf.frames[i].len;
    }
    r.ratio = (double)zbytes / (double)n;
    struct {
        raw_ctx *r;
        zframes *zf;
    } ua = {raw, &zf};
    rate2(do_unzstd, &zf, raw_unzstd, &ua, d, n, &r.unzstd, &y);
    char note[96];
    snprintf(note, sizeof note, "rate in uncompressed bytes; ratio %.3f", r.ratio);
    row("zstd -d", name, r.unzstd, y, note);
    for (size_t i = 0; i < n / BLOB; i++) cr_buf_free(&zf.frames[i]);
    free(zf.frames);
    cr_buf_free(&z);
    return r;
}

static void pipelines(const char *name, const uint8_t *d, const rates *r, cr_chunker *ch)
{
    size_t n = data_len;
    pipe_ctx p = {ch, false, CR_BUF_INIT};
    double got, lim;

    got = rate(do_backup, d, n, &p);
    lim = limit((double[]){r->chunk, r->sha, r->seal}, (double[]){1, 1, 1}, 3);
    printf("%-22s %-7s %9.0f %9.0f  %5.2f  limit = 1/(1/chunk + 1/sha + 1/seal)\n", "backup v1 pipeline", name, got, lim,
           got / lim);

    p.compress = true;
    got = rate(do_backup, d, n, &p);
    lim = limit((double[]){r->chunk, r->sha, r->zstd, r->seal}, (double[]){1, 1, 1, r->ratio}, 4);
    printf("%-22s %-7s %9.0f %9.0f  %5.2f  limit = 1/(1/chunk + 1/sha + 1/zstd + ratio/seal)\n", "backup v2 pipeline", name,
           got, lim, got / lim);
    cr_buf_free(&p.z);

    restore_ctx rc;
    prepare_restore(&rc, d, n, false);
    got = rate(do_restore, d, n, &rc);
    lim = limit((double[]){r->open, r->sha}, (double[]){1, 1}, 2);
    printf("%-22s %-7s %9.0f %9.0f  %5.2f  limit = 1/(1/open + 1/sha)\n", "restore v1 pipeline", name, got, lim, got / lim);
    free_restore(&rc, n);

    prepare_restore(&rc, d, n, true);
    got = rate(do_restore, d, n, &rc);
    lim = limit((double[]){r->open, r->unzstd, r->sha}, (double[]){r->ratio, 1, 1}, 3);
    printf("%-22s %-7s %9.0f %9.0f  %5.2f  limit = 1/(ratio/open + 1/unzstd + 1/sha)\n", "restore v2 pipeline", name, got,
           lim, got / lim);
    free_restore(&rc, n);
}

static void cpu_info(void)
{
    char line[8192], model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    bool sha = false, aes = false, avx2 = false;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) && model[0] == '?') {
            char *c = strchr(line, ':');
            if (c) snprintf(model, sizeof model, "%s", c + 2);
            model[strcspn(model, "\n")] = 0;
        }
        if (!strncmp(line, "flags", 5)) {
            sha = strstr(line, " sha_ni") != NULL;
            aes = strstr(line, " aes") != NULL;
            avx2 = strstr(line, " avx2") != NULL;
        }
    }
    if (f) fclose(f);
    printf("# cpu: %s (sha_ni %s, aes-ni %s, avx2 %s); %s; zstd %s\n", model, sha ? "yes" : "no", aes ? "yes" : "no",
           avx2 ? "yes" : "no", OpenSSL_version(OPENSSL_VERSION), ZSTD_versionString());
}

int main(int argc, char **argv)
{
    size_t mib = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--secs") && i + 1 < argc) min_secs = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--mib N] [--secs S]\n", argv[0]);
            return 2;
        }
    }
    if (mib < 1) mib = 1;
    data_len = mib << 20;
    rnd = bench_alloc(data_len);
    txt = bench_alloc(data_len);
    /* Output at another offset within a page than the inputs: same-offset
     * source and destination (4K aliasing) halve the speed of copy-like
     * work such as zstd's raw blocks. */
    out_base = bench_alloc(ZSTD_compressBound(BLOB) + data_len + 8192);
    out = out_base + 1088;
    bench_fill_random(rnd, data_len, 11);
    bench_fill_text(txt, data_len, 12);
    for (int i = 0; i < 32; i++) key.enc[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 16; i++) key.mac_k[i] = (uint8_t)(i + 33), key.mac_r[i] = (uint8_t)(i + 49);

    raw_ctx raw = {0};
    raw.md = EVP_MD_CTX_new();
    EVP_MD *sha = EVP_MD_fetch(NULL, "SHA256", NULL);
    raw.sha = sha;
    raw.cipher = EVP_CIPHER_CTX_new();
    EVP_CIPHER *ctr = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
    static const uint8_t iv[16] = {9};
    EVP_EncryptInit_ex(raw.cipher, ctr, NULL, key.enc, iv);
    EVP_MAC *poly = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    raw.mac = EVP_MAC_CTX_new(poly);
    raw.cctx = ZSTD_createCCtx();
    raw.dctx = ZSTD_createDCtx();
    if (!raw.md || !raw.sha || !ctr || !raw.mac || !raw.cctx || !raw.dctx) {
        fprintf(stderr, "cannot set up OpenSSL/zstd\n");
        return 1;
    }
    cr_chunker *ch;
    if (cr_chunker_new(POL, &ch) < 0) return 1;

    cpu_info();
    printf("# MB/s per core (10^6 B per CPU second), %zu MiB per input, 1 MiB blobs\n", mib);
    printf("%-22s %-7s %9s %9s  %5s\n", "primitive", "data", "crestic", "raw", "ratio");
    double raw_seal;
    rates rr = bench_data("random", rnd, &raw, ch, &raw_seal);
    rates rt = bench_data("text", txt, &raw, ch, &raw_seal);
    printf("\n%-22s %-7s %9s %9s  %5s\n", "pipeline", "data", "measured", "limit", "ratio");
    pipelines("random", rnd, &rr, ch);
    pipelines("text", txt, &rt, ch);

    cr_chunker_free(ch);
    EVP_MD_CTX_free(raw.md);
    EVP_MD_free(sha);
    EVP_CIPHER_CTX_free(raw.cipher);
    EVP_CIPHER_free(ctr);
    EVP_MAC_CTX_free(raw.mac);
    EVP_MAC_free(poly);
    ZSTD_freeCCtx(raw.cctx);
    ZSTD_freeDCtx(raw.dctx);
    free(rnd);
    free(txt);
    free(out_base);
    return 0;
}
