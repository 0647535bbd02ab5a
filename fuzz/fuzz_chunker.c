/* Fuzz the chunker's streaming: the same stream fed whole, fed in pieces the
 * fuzzer chooses, and through the scalar code must give the cut points (and
 * cut fingerprints) of a byte-at-a-time oracle written from spec §15.5.
 *
 * Input: [0..8) piece-size seed, [8] polynomial choice, rest = payload.
 * Cuts need more than MinSize bytes, so the payload is embedded in a fixed
 * pseudo-random stream: A (MinSize - 100 bytes) | payload | B (700 KiB) |
 * payload.  The payload thus sits where cuts can happen (a run of 64 equal
 * bytes, for instance, is a cut candidate), in two different window
 * contexts, and the chunker has to get through B as well. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunker/chunker.h"
#include "chunker/internal.h"

static const uint64_t pols[] = {
    0x3da3358b4dc173ull, /* degree 53: AVX2 kernel where available */
    0x25b468838dcb75ull, /* degree 53 */
    0x3ebad66b3ca597ull, /* degree 53 (fixture repo v1) */
};

#define A_LEN (CR_CHUNK_MIN - 100)
#define B_LEN (700u * 1024u)
#define MAX_PAYLOAD 8192

typedef struct {
    size_t end;
    uint64_t fp;
} cut;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(splitmix(&seed) >> 56);
}

/* Byte-at-a-time reference (ring window, restic's reset with a leading 1). */
static size_t oracle(uint64_t pol, const uint8_t *d, size_t n, cut *cuts)
{
    static uint64_t out[256], mod[256], tables_for;
    if (tables_for != pol) {
        cr_chunker_tables(pol, out, mod);
        tables_for = pol;
    }
    int k = 63 - __builtin_clzll(pol);
    uint8_t win[64];
    unsigned wpos = 0;
    uint64_t dig = 0;
    size_t count = 0, nc = 0;
#define SLIDE(b)                                              \
    do {                                                      \
        uint8_t o_ = win[wpos];                               \
        win[wpos] = (b);                                      \
        wpos = (wpos + 1) % 64;                               \
        dig ^= out[o_];                                       \
        dig = ((dig << 8) | (b)) ^ mod[dig >> (k - 8)];       \
    } while (0)
#define RESET()                \
    do {                       \
        memset(win, 0, 64);    \
        wpos = 0;              \
        dig = 0;               \
        SLIDE(1);              \
        count = 0;             \
    } while (0)
    RESET();
    for (size_t i = 0; i < n; i++) {
        if (++count <= CR_CHUNK_MIN - 64) continue;
        SLIDE(d[i]);
        if (count >= CR_CHUNK_MIN && ((dig & 0xFFFFF) == 0 || count >= CR_CHUNK_MAX)) {
            cuts[nc++] = (cut){i + 1, dig};
            RESET();
        }
    }
    return nc;
}

static size_t run(cr_chunker *c, const uint8_t *d, size_t n, uint64_t seed, cut *cuts)
{
    size_t nc = 0, pos = 0;
    cr_chunker_reset(c);
    while (pos < n) {
        size_t piece = n - pos;
        if (seed) {
            uint64_t r = splitmix(&seed);
            /* mostly small pieces (the history path), sometimes large ones */
            piece = (r & 1) ? 1 + (r >> 8) % 200 : 1 + (r >> 8) % (256 * 1024);
            if (piece > n - pos) piece = n - pos;
        }
        /* a private copy: the chunker must not read before its pointer */
        uint8_t *copy = malloc(piece);
        if (!copy) abort();
        memcpy(copy, d + pos, piece);
        size_t at = 0;
        while (at < piece) {
            bool is_cut;
            size_t used = cr_chunker_scan(c, copy + at, piece - at, &is_cut);
            if (used > piece - at || (!is_cut && used != piece - at)) abort();
            at += used;
            if (is_cut) cuts[nc++] = (cut){pos + at, cr_chunker_last_fingerprint(c)};
        }
        free(copy);
        pos += piece;
    }
    return nc;
}

static void same(const cut *a, size_t na, const cut *b, size_t nb)
{
    if (na != nb) abort();
    for (size_t i = 0; i < na; i++)
        if (a[i].end != b[i].end || a[i].fp != b[i].fp) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *stream, *b;
    static cr_chunker *ch[sizeof pols / sizeof pols[0]];
    if (!stream) {
        stream = malloc(A_LEN + B_LEN + 2 * MAX_PAYLOAD);
        b = malloc(B_LEN);
        if (!stream || !b) abort();
        fill(stream, A_LEN, 1);
        fill(b, B_LEN, 2);
        for (size_t i = 0; i < sizeof pols / sizeof pols[0]; i++)
            if (cr_chunker_new(pols[i], &ch[i]) < 0) abort();
    }
    if (size < 9) return 0;
    uint64_t seed;
    memcpy(&seed, data, 8);
    seed |= 1; /* 0 means "whole" in run() */
    size_t which = data[8] % (sizeof pols / sizeof pols[0]);
    const uint8_t *payload = data + 9;
    size_t plen = size - 9 < MAX_PAYLOAD ? size - 9 : MAX_PAYLOAD;

    size_t n = 0;
    n += A_LEN; /* A is already in place */
    memcpy(stream + n, payload, plen);
    n += plen;
    memcpy(stream + n, b, B_LEN);
    n += B_LEN;
    memcpy(stream + n, payload, plen);
    n += plen;

    /* at most one cut per MinSize bytes */
    enum { MAX_CUTS = (A_LEN + B_LEN + 2 * MAX_PAYLOAD) / CR_CHUNK_MIN + 2 };
    cut want[MAX_CUTS], got[MAX_CUTS];
    size_t nw = oracle(pols[which], stream, n, want);
    cr_chunker *c = ch[which];
    for (int simd = 1; simd >= 0; simd--) {
        cr_chunker_set_simd(c, simd);
        same(want, nw, got, run(c, stream, n, 0, got));
        same(want, nw, got, run(c, stream, n, seed, got));
    }
    return 0;
}
