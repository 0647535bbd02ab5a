/* Chunker throughput, one thread.
 *
 *   bench_chunker [--mib N] [--reps N] [--scalar-too]
 *
 * Rates are input bytes per CPU second of the benchmarking thread (so other
 * load on the machine does not count; MB = 10^6 B), including the unhashed
 * MinSize-64 prefix of every chunk; "hashed" is the rate over the bytes the
 * rolling hash actually saw.  For comparison the same input goes through a
 * byte-at-a-time loop written like the reference algorithm (spec §15.5). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "chunker/chunker.h"
#include "chunker/internal.h"

#define POL 0x3da3358b4dc173ull

static bool simd = true;

typedef struct {
    size_t chunks, hashed;
} result;

static result run(cr_chunker *c, const uint8_t *data, size_t n, size_t piece)
{
    result r = {0, 0};
    size_t chunk_len = 0;
    cr_chunker_reset(c);
    for (size_t pos = 0; pos < n;) {
        size_t len = n - pos < piece ? n - pos : piece;
        size_t at = 0;
        while (at < len) {
            bool cut;
            size_t used = cr_chunker_scan(c, data + pos + at, len - at, &cut);
            at += used;
            chunk_len += used;
            if (cut) {
                r.chunks++;
                r.hashed += chunk_len - (CR_CHUNK_MIN - CR_CHUNK_WINDOW);
                chunk_len = 0;
            }
        }
        pos += len;
    }
    if (chunk_len) {
        r.chunks++;
        if (chunk_len > CR_CHUNK_MIN - CR_CHUNK_WINDOW) r.hashed += chunk_len - (CR_CHUNK_MIN - CR_CHUNK_WINDOW);
    }
    return r;
}

/* Byte-at-a-time reference loop (ring window, modulo, one branch per byte). */
static size_t run_reference(const uint64_t out[256], const uint64_t mod[256], int k, const uint8_t *data, size_t n)
{
    uint8_t window[64];
    unsigned wpos = 0;
    uint64_t digest = 0;
    size_t count = 0, chunks = 0;
#define SLIDE(b)                                                   \
    do {                                                           \
        uint8_t o_ = window[wpos];                                 \
        window[wpos] = (b);                                        \
        wpos = (wpos + 1) % 64;                                    \
        digest ^= out[o_];                                         \
        digest = ((digest << 8) | (b)) ^ mod[digest >> (k - 8)];   \
    } while (0)
#define RESET()                \
    do {                       \
        memset(window, 0, 64); \
        wpos = 0;              \
        digest = 0;            \
        SLIDE(1);              \
        count = 0;             \
    } while (0)
    RESET();
    for (size_t i = 0; i < n; i++) {
        count++;
        if (count <= CR_CHUNK_MIN - 64) continue;
        SLIDE(data[i]);
        if (count >= CR_CHUNK_MIN && ((digest & 0xFFFFF) == 0 || count >= CR_CHUNK_MAX)) {
            chunks++;
            RESET();
        }
    }
    return chunks + (count > 0);
}

static void report(const char *data_name, const char *mode, size_t n, double secs, result r)
{
    printf("chunker %-7s %-14s %8.0f MB/s   hashed %7.0f MB/s   %5zu chunks, mean %6.0f KiB\n", data_name, mode,
           (double)n / secs / 1e6, (double)r.hashed / secs / 1e6, r.chunks, (double)n / (double)r.chunks / 1024);
}

static void bench_data(cr_chunker *c, const char *name, const uint8_t *data, size_t n, int reps, bool reference)
{
    char label[64];
    static const struct {
        const char *label;
        size_t piece;
    } modes[] = {{"whole", SIZE_MAX}, {"1 MiB reads", 1 << 20}, {"64 KiB reads", 64 << 10}, {"4 KiB reads", 4 << 10}};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        double best = 1e30;
        result r = {0, 0};
        for (int i = 0; i < reps; i++) {
            double t0 = bench_cpu();
            r = run(c, data, n, modes[m].piece);
            double t = bench_cpu() - t0;
            if (t < best) best = t;
        }
        snprintf(label, sizeof label, "%s%s", modes[m].label, simd ? "" : " (scalar)");
        report(name, label, n, best, r);
    }
    if (reference) {
        uint64_t out[256], mod[256];
        cr_chunker_tables(POL, out, mod);
        double t0 = bench_cpu();
        size_t chunks = run_reference(out, mod, 53, data, n);
        double t = bench_cpu() - t0;
        printf("chunker %-7s %-14s %8.0f MB/s   (%zu chunks; byte-at-a-time reference loop)\n", name, "reference", (double)n / t / 1e6,
               chunks);
    }
}

int main(int argc, char **argv)
{
    size_t mib = 512;
    int reps = 3;
    bool both = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--scalar-too")) both = true;
        else {
            fprintf(stderr, "usage: %s [--mib N] [--reps N] [--scalar-too]\n", argv[0]);
            return 2;
        }
    }
    size_t n = mib << 20;
    uint8_t *data = bench_alloc(n);
    cr_chunker *c;
    if (cr_chunker_new(POL, &c) < 0) return 1;

    double t0 = bench_now();
    for (int i = 0; i < 100; i++) {
        cr_chunker *tmp;
        cr_chunker_new(POL, &tmp);
        cr_chunker_free(tmp);
    }
    printf("chunker new+free (cached tables): %.2f us\n", (bench_now() - t0) / 100 * 1e6);

    for (int pass = 0; pass < (both ? 2 : 1); pass++) {
        simd = pass == 0;
        cr_chunker_set_simd(c, simd);
        bench_fill_random(data, n, 1);
        bench_data(c, "random", data, n, reps, pass == 0);
        bench_fill_text(data, n, 2);
        bench_data(c, "text", data, n, reps, false);
        memset(data, 0, n);
        bench_data(c, "zeros", data, n, reps, false);
    }
    cr_chunker_free(c);
    free(data);
    return 0;
}
