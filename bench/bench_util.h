/* Shared helpers for the bench programs: clocks, deterministic data. */
#ifndef CRESTIC_BENCH_UTIL_H
#define CRESTIC_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double bench_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t bench_rng(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void *bench_alloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* Incompressible bytes. */
static inline void bench_fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = bench_rng(&seed);
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) p[i] = (uint8_t)bench_rng(&seed);
}

/* Text-like bytes: lines of words from a small vocabulary with numbers,
 * compressing roughly 3-4x with zstd -3 (like source code or logs). */
static inline void bench_fill_text(uint8_t *p, size_t n, uint64_t seed)
{
    static const char *const words[] = {
        "the",    "return", "static", "const",  "int",   "struct", "if",     "else",   "for",
        "while",  "buffer", "size",   "error",  "value", "index",  "length", "result", "data",
        "node",   "tree",   "pack",   "blob",   "chunk", "file",   "path",   "name",   "id",
        "config", "key",    "lock",   "backup", "restore"};
    const size_t nw = sizeof words / sizeof words[0];
    size_t i = 0;
    unsigned line = 0;
    while (i < n) {
        char tmp[256];
        int len = snprintf(tmp, sizeof tmp, "%6u:", line++);
        unsigned cnt = 4 + (unsigned)(bench_rng(&seed) % 10);
        for (unsigned w = 0; w < cnt && len < 200; w++) {
            uint64_t r = bench_rng(&seed);
            if (r % 7 == 0)
                len += snprintf(tmp + len, sizeof tmp - (size_t)len, " %u", (unsigned)(r >> 20) % 100000);
            else
                len += snprintf(tmp + len, sizeof tmp - (size_t)len, " %s", words[(r >> 8) % nw]);
        }
        tmp[len++] = '\n';
        size_t take = (size_t)len < n - i ? (size_t)len : n - i;
        memcpy(p + i, tmp, take);
        i += take;
    }
}

#endif
