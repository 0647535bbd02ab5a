/* Content-defined chunker, bit-exact with restic/chunker (spec §15).
 *
 * Two facts make it fast (chunker_avx2.c builds on the same two, 32 lanes
 * at a time; the code here is the portable path and the glue):
 *
 *  1. The fingerprint at a position depends only on the 64 bytes ending
 *     there (closed form, §15.4).  So the rolling state can start anywhere
 *     from a fresh 64-byte window, and restic's MinSize-64 unhashed prefix is
 *     simply skipped.  It also means a long run can be cut into several lanes
 *     that are hashed independently, each primed from the 64 bytes before it.
 *
 *  2. One rolling step is `d' = (d << 8 | in) ^ out2[gone] ^ mod[d >> shift]`.
 *     Only the mod[] lookup depends on d, so one lane is bound by the latency
 *     shift -> load -> xor (about 7 cycles per byte).  Interleaving four lanes
 *     turns that latency-bound loop into a throughput-bound one (more lanes
 *     run out of registers: 6 are no faster, 8 slower on x86-64).
 *
 * The outgoing byte is read straight from the caller's buffer (64 bytes
 * back); only the first 64 positions of a buffer need the 64-byte history
 * kept from the previous call.  Nothing else is copied.
 */
#include "chunker/chunker.h"
#include "chunker/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define SPLIT_MASK ((uint64_t)(1u << 20) - 1)
#define MIN_DEGREE 8 /* the top byte of the digest indexes mod[] */
#define MAX_DEGREE 53
/* The degree restic always uses gets its own copy of the loops with a
 * constant shift. */
#define COMMON_SHIFT (53 - 8)

/* Multi-lane scan: lane lengths in bytes.  Each lane but the first pays a
 * 64-byte priming; after a cut, the lanes behind it were wasted work. */
#define LANES 4
#define LANE_MIN 512
#define LANE_MAX 8192

struct cr_chunker {
    uint64_t mod[256];  /* restic's mod table                                */
    uint64_t out2[256]; /* (b * x^(8*64)) mod pol: restic's out[b] times x^8 */
    uint8_t nib[4][7][32] __attribute__((aligned(32))); /* AVX2 kernel's     */
    uint64_t pol;
    unsigned shift;     /* deg(pol) - 8                                      */
    bool simd;          /* use the AVX2 kernel                               */
    size_t count;       /* bytes of the current chunk seen                   */
    uint64_t digest;    /* fingerprint of the 64 bytes before the next one   */
    uint64_t last_fp;
    uint8_t hist[CR_CHUNK_WINDOW]; /* last 64 bytes of the current chunk     */
};

/* ---- tables ------------------------------------------------------------ */

/* Both tables are linear in b, so only the 8 single-bit entries need the
 * polynomial arithmetic; the rest are XORs of those. */
static void fill_linear(uint64_t t[256])
{
    for (unsigned b = 3; b < 256; b++)
        if (b & (b - 1)) t[b] = t[b & (b - 1)] ^ t[b & -b];
}

void cr_chunker_tables(uint64_t pol, uint64_t out[256], uint64_t mod[256])
{
    int k = cr_pol_deg(pol);
    out[0] = mod[0] = 0;
    for (int bit = 0; bit < 8; bit++) {
        uint64_t h = cr_pol_mod(1ull << bit, pol);
        for (int i = 0; i < CR_CHUNK_WINDOW - 1; i++) h = cr_pol_mod(h << 8, pol);
        out[1u << bit] = h;
        mod[1u << bit] = cr_pol_mod(1ull << (k + bit), pol);
    }
    fill_linear(out);
    fill_linear(mod);
    for (unsigned b = 0; b < 256; b++) mod[b] |= (uint64_t)b << k;
}

/* Tables are a pure function of the polynomial, and a repository has one
 * polynomial, so a handful of cached entries serve every chunker. */
#define CACHE_SLOTS 8

struct tables {
    uint64_t pol;
    uint64_t mod[256];
    uint64_t out2[256];
    uint8_t nib[4][7][32];
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tables *cache[CACHE_SLOTS];
static unsigned cache_next;

static int tables_compute(uint64_t pol, struct tables *t)
{
    int k = cr_pol_deg(pol);
    if (k < MIN_DEGREE || k > MAX_DEGREE)
        return cr_error(CR_E_FORMAT, "chunker polynomial %llx has degree %d, need %d..%d",
                        (unsigned long long)pol, k, MIN_DEGREE, MAX_DEGREE);
    if (!cr_pol_irreducible(pol))
        return cr_error(CR_E_FORMAT, "chunker polynomial %llx is not irreducible", (unsigned long long)pol);
    uint64_t out[256];
    t->pol = pol;
    cr_chunker_tables(pol, out, t->mod);
    for (unsigned b = 0; b < 256; b++) t->out2[b] = cr_pol_mod(out[b] << 8, pol);
    cr_chunker_nibble_tables(t->mod, t->out2, k, t->nib);
    return 0;
}

static bool cache_get(uint64_t pol, struct tables *t)
{
    bool found = false;
    pthread_mutex_lock(&cache_lock);
    for (unsigned i = 0; i < CACHE_SLOTS && !found; i++) {
        if (cache[i] && cache[i]->pol == pol) {
            *t = *cache[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

static void cache_put(const struct tables *t)
{
    struct tables *copy = malloc(sizeof *copy);
    if (!copy) return; /* only a cache */
    *copy = *t;
    pthread_mutex_lock(&cache_lock);
    struct tables *evicted = cache[cache_next];
    cache[cache_next] = copy;
    cache_next = (cache_next + 1) % CACHE_SLOTS;
    pthread_mutex_unlock(&cache_lock);
    free(evicted);
}

int cr_chunker_new(uint64_t pol, cr_chunker **out)
{
    struct tables t;
    if (!cache_get(pol, &t)) {
        CR_TRY(tables_compute(pol, &t));
        cache_put(&t);
    }
    cr_chunker *c = aligned_alloc(64, (sizeof *c + 63) & ~(size_t)63);
    if (!c) return cr_error(-ENOMEM, "out of memory");
    memcpy(c->mod, t.mod, sizeof c->mod);
    memcpy(c->out2, t.out2, sizeof c->out2);
    memcpy(c->nib, t.nib, sizeof c->nib);
    c->pol = pol;
    c->shift = (unsigned)cr_pol_deg(pol) - 8;
    cr_chunker_set_simd(c, true);
    c->last_fp = 0;
    cr_chunker_reset(c);
    *out = c;
    return 0;
}

void cr_chunker_set_simd(cr_chunker *c, bool on)
{
    /* The kernel's plane layout is made for degree 53, the only one restic
     * generates; other degrees take the scalar code. */
    c->simd = on && c->shift == COMMON_SHIFT && cr_chunker_avx2_available();
}

void cr_chunker_free(cr_chunker *c)
{
    free(c);
}

void cr_chunker_reset(cr_chunker *c)
{
    c->count = 0;
    c->digest = 0;
}

uint64_t cr_chunker_last_fingerprint(const cr_chunker *c)
{
    return c->last_fp;
}

/* ---- rolling hash kernels ----------------------------------------------
 * All take `shift` as a parameter and are forced inline so that the copy
 * for the common degree is compiled with a constant. */

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE uint64_t roll(const cr_chunker *c, unsigned shift, uint64_t d, uint8_t gone, uint8_t in)
{
    /* The d-independent terms first: the chain through d is then just
     * shift -> load -> xor. */
    uint64_t x = ((d << 8) | in) ^ c->out2[gone];
    return x ^ c->mod[d >> shift];
}

/* Fingerprint of the 64 bytes at w, from scratch. */
ALWAYS_INLINE uint64_t window_fp(const cr_chunker *c, unsigned shift, const uint8_t *w)
{
    uint64_t d = 0;
    for (int i = 0; i < CR_CHUNK_WINDOW; i++) d = ((d << 8) | w[i]) ^ c->mod[d >> shift];
    return d;
}

/* One lane over p[0..m), p[-64..-1] readable and *dp = their fingerprint.
 * Returns the index of the first position whose fingerprint has the low 20
 * bits clear (with *dp = that fingerprint), or m (*dp = the last one). */
ALWAYS_INLINE size_t find_1(const cr_chunker *c, unsigned shift, const uint8_t *p, size_t m, uint64_t *dp)
{
    const uint8_t *gone = p - CR_CHUNK_WINDOW;
    uint64_t d = *dp;
    size_t i;
    for (i = 0; i < m; i++) {
        d = roll(c, shift, d, gone[i], p[i]);
        if (__builtin_expect((d & SPLIT_MASK) == 0, 0)) break;
    }
    *dp = d;
    return i;
}

/* NL lanes of length len starting at q + j*len, advanced together from
 * offset *tp.  Stops at the first offset where some lane hits and returns
 * the lowest such lane (*tp = that offset), or -1 when all reached len. */
ALWAYS_INLINE int lockstep(const cr_chunker *c, unsigned shift, const uint8_t *q, size_t len, uint64_t *d,
                           const int NL, size_t *tp)
{
    const uint8_t *in[LANES], *gone[LANES];
#pragma GCC unroll 8
    for (int j = 0; j < NL; j++) {
        in[j] = q + (size_t)j * len;
        gone[j] = in[j] - CR_CHUNK_WINDOW;
    }
    for (size_t t = *tp; t < len; t++) {
#pragma GCC unroll 8
        for (int j = 0; j < NL; j++) d[j] = roll(c, shift, d[j], gone[j][t], in[j][t]);
#pragma GCC unroll 8
        for (int j = 0; j < NL; j++) {
            if (__builtin_expect((d[j] & SPLIT_MASK) == 0, 0)) {
                *tp = t;
                return j;
            }
        }
    }
    *tp = len;
    return -1;
}

/* Like find_1, over LANES lanes at a time. */
ALWAYS_INLINE size_t find_lanes(const cr_chunker *c, unsigned shift, const uint8_t *p, size_t m, uint64_t *dp)
{
    size_t done = 0;
    while (m - done >= LANES * LANE_MIN) {
        size_t len = (m - done) / LANES;
        if (len > LANE_MAX) len = LANE_MAX;
        const uint8_t *q = p + done;
        uint64_t d[LANES];
        d[0] = *dp;
#pragma GCC unroll 8
        for (int j = 1; j < LANES; j++) d[j] = 0;
        /* Prime lanes 1.. from their preceding 64 bytes, interleaved. */
        for (int i = 0; i < CR_CHUNK_WINDOW; i++) {
#pragma GCC unroll 8
            for (int j = 1; j < LANES; j++) {
                uint8_t b = q[(size_t)j * len - CR_CHUNK_WINDOW + i];
                d[j] = ((d[j] << 8) | b) ^ c->mod[d[j] >> shift];
            }
        }
        /* After a hit in lane j, only the lanes before it can still hold an
         * earlier cut: carry on with those. */
        int nl = LANES, hit = -1;
        size_t t = 0, hit_t = 0;
        uint64_t hit_d = 0;
        for (;;) {
            int j;
            switch (nl) {
            case 4: j = lockstep(c, shift, q, len, d, 4, &t); break;
            case 3: j = lockstep(c, shift, q, len, d, 3, &t); break;
            case 2: j = lockstep(c, shift, q, len, d, 2, &t); break;
            default: j = lockstep(c, shift, q, len, d, 1, &t); break;
            }
            if (j < 0) break;
            hit = j;
            hit_t = t;
            hit_d = d[j];
            if (j == 0) break;
            nl = j;
            t++;
        }
        if (hit >= 0) {
            *dp = hit_d;
            return done + (size_t)hit * len + hit_t;
        }
        *dp = d[LANES - 1];
        done += LANES * len;
    }
    return done + find_1(c, shift, p + done, m - done, dp);
}

static size_t find_common(const cr_chunker *c, const uint8_t *p, size_t m, uint64_t *dp)
{
    return find_lanes(c, COMMON_SHIFT, p, m, dp);
}

static size_t find_any(const cr_chunker *c, const uint8_t *p, size_t m, uint64_t *dp)
{
    return find_lanes(c, c->shift, p, m, dp);
}

static size_t find_small(const cr_chunker *c, const uint8_t *p, size_t m, uint64_t *dp)
{
    return find_1(c, c->shift, p, m, dp);
}

static uint64_t fp_of(const cr_chunker *c, const uint8_t *w)
{
    return window_fp(c, c->shift, w);
}

/* ---- streaming --------------------------------------------------------- */

/* Keep the last 64 bytes of the chunk for the next call. */
static void remember_tail(cr_chunker *c, const uint8_t *buf, size_t n)
{
    if (n >= CR_CHUNK_WINDOW) {
        memcpy(c->hist, buf + n - CR_CHUNK_WINDOW, CR_CHUNK_WINDOW);
    } else {
        memmove(c->hist, c->hist + n, CR_CHUNK_WINDOW - n);
        memcpy(c->hist + CR_CHUNK_WINDOW - n, buf, n);
    }
}

/* The 64 bytes before buf[pos] joined with the history, for pos < 64. */
static const uint8_t *joined(const cr_chunker *c, const uint8_t *buf, size_t upto, uint8_t scratch[2 * CR_CHUNK_WINDOW])
{
    memcpy(scratch, c->hist, CR_CHUNK_WINDOW);
    memcpy(scratch + CR_CHUNK_WINDOW, buf, upto);
    return scratch + CR_CHUNK_WINDOW;
}

/* First cut position in buf[pos..limit) (or limit), updating c->digest.
 * The window of a position below 64 reaches back into the history. */
static size_t find_cut(cr_chunker *c, const uint8_t *buf, size_t pos, size_t limit)
{
    if (pos < CR_CHUNK_WINDOW) {
        uint8_t scratch[2 * CR_CHUNK_WINDOW];
        size_t end = limit < CR_CHUNK_WINDOW ? limit : CR_CHUNK_WINDOW;
        const uint8_t *p = joined(c, buf, end, scratch);
        size_t i = pos + find_small(c, p + pos, end - pos, &c->digest);
        if (i < end) return i;
        pos = end;
    }
    if (c->simd) {
        bool hit;
        size_t i = pos + cr_chunker_find_avx2(c->nib, buf + pos, limit - pos, &hit);
        if (hit) {
            c->digest = fp_of(c, buf + i + 1 - CR_CHUNK_WINDOW); /* the window ending at i */
            return i;
        }
        if (i > pos) c->digest = fp_of(c, buf + i - CR_CHUNK_WINDOW); /* the one before i */
        pos = i;
    }
    size_t m = limit - pos;
    return pos + (c->shift == COMMON_SHIFT ? find_common : find_any)(c, buf + pos, m, &c->digest);
}

size_t cr_chunker_scan(cr_chunker *c, const uint8_t *buf, size_t n, bool *cut)
{
    *cut = false;
    if (n == 0) return 0;
    size_t pos = 0;
    if (c->count < CR_CHUNK_MIN) {
        /* Nothing to decide before MinSize: skip ahead to the first byte
         * that can end a chunk and prime the digest from the 64 bytes
         * before it (restic hashes only the last 63 of those plus a
         * leading 1 that has left the window by then: same value). */
        size_t need = CR_CHUNK_MIN - c->count;
        if (n < need) {
            c->count += n;
            remember_tail(c, buf, n);
            return n;
        }
        pos = need - 1;
        if (pos >= CR_CHUNK_WINDOW) {
            c->digest = fp_of(c, buf + pos - CR_CHUNK_WINDOW);
        } else {
            uint8_t scratch[2 * CR_CHUNK_WINDOW];
            c->digest = fp_of(c, joined(c, buf, pos, scratch) + pos - CR_CHUNK_WINDOW);
        }
        c->count = CR_CHUNK_MIN - 1;
    }
    size_t room = CR_CHUNK_MAX - c->count; /* up to and including MaxSize */
    size_t limit = n - pos < room ? n : pos + room;
    size_t i = find_cut(c, buf, pos, limit);
    if (i < limit || limit - pos == room) {
        size_t end = i < limit ? i + 1 : limit;
        c->last_fp = c->digest;
        cr_chunker_reset(c);
        *cut = true;
        return end;
    }
    c->count += limit - pos;
    remember_tail(c, buf, n);
    return n;
}
