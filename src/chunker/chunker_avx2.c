/* AVX2 kernel of the chunker: 32 lanes hashed at once, byte-sliced.
 *
 * Each of the 32 byte positions of a 256-bit register is one lane, an
 * independent stretch of the input.  A lane's 53-bit digest d is kept
 * left-aligned as D = d << 3 in seven "planes" P0..P6 (Pi = byte i of D, one
 * register each).  One rolling step, d' = (d << 8 | in) ^ out2[gone] ^
 * mod[d >> 45], then becomes:
 *
 *   - shifting by 8 is renaming the planes (P6, the top byte, drops out);
 *   - mod[top] and out2[gone] are linear in their index, so each is the XOR
 *     of a lookup by the low and by the high nibble; a 16-entry table of one
 *     plane is one VPSHUFB.  Per step: 2 indices x 2 nibbles x 7 planes;
 *   - the incoming byte lands in bits 3..10 of D (planes 0 and 1).
 *
 * The test (d & 0xFFFFF) == 0 reads P0, P1 and the low 7 bits of P2.
 *
 * The input is transposed 16 steps at a time (16x16 byte transposes in each
 * 128-bit half) into per-step vectors, a batch of 224 steps at a time; the
 * bytes leaving the window are the vectors of 64 steps earlier.  Every lane is primed from the 64
 * bytes before it (by rolling them in over a zero window), so lanes are
 * independent and the kernel needs no state from the scalar code.
 */
#include "chunker/internal.h"

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))
#define LANES 32
#define PRIME 64   /* steps that only fill the window                    */
#define BATCH 224  /* steps per batch: a multiple of 7 (plane rotation) and 16 (transpose) */
#define PREFETCH 192 /* bytes ahead in each lane */
#define MAX_BATCHES 9 /* lane length 9*224-64 = 1952: a 61 KiB block    */

void cr_chunker_nibble_tables(const uint64_t mod[256], const uint64_t out2[256], int deg,
                              uint8_t t[4][7][32])
{
    uint64_t low = (1ull << deg) - 1;
    for (int n = 0; n < 16; n++) {
        /* mod[] without the b << deg part, which the plane shift drops. */
        const uint64_t v[4] = {(mod[n] & low) << 3, (mod[n << 4] & low) << 3, out2[n] << 3, out2[n << 4] << 3};
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < 7; i++) t[k][i][n] = t[k][i][n + 16] = (uint8_t)(v[k] >> (8 * i));
    }
}

bool cr_chunker_avx2_available(void)
{
    return __builtin_cpu_supports("avx2");
}

/* 16 steps from s0 of all lanes (lane r and r+16 share a register) into
 * out[0..16). */
AVX2 static void transpose16(const uint8_t *base, size_t stride, size_t s0, __m256i *out)
{
    __m256i x[16], a[2][8], b[2][2][4], c[2][2][2][2];
    for (int r = 0; r < 16; r++) {
        const uint8_t *lo = base + (size_t)r * stride + s0, *hi = lo + 16 * stride;
        /* 32 interleaved streams are more than the hardware prefetchers
         * follow: ask for each lane's next lines ahead of time. */
        if (s0 % 64 == 0) {
            _mm_prefetch((const char *)lo + PREFETCH, _MM_HINT_T0);
            _mm_prefetch((const char *)hi + PREFETCH, _MM_HINT_T0);
        }
        x[r] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)lo)),
                                       _mm_loadu_si128((const __m128i *)hi), 1);
    }
    /* After each stage a unit (byte, word, dword, qword) holds consecutive
     * lanes of one step; the steps end up in order 8h + 4q + 2r + u. */
    for (int g = 0; g < 8; g++) {
        a[0][g] = _mm256_unpacklo_epi8(x[2 * g], x[2 * g + 1]);
        a[1][g] = _mm256_unpackhi_epi8(x[2 * g], x[2 * g + 1]);
    }
    for (int h = 0; h < 2; h++)
        for (int g = 0; g < 4; g++) {
            b[h][0][g] = _mm256_unpacklo_epi16(a[h][2 * g], a[h][2 * g + 1]);
            b[h][1][g] = _mm256_unpackhi_epi16(a[h][2 * g], a[h][2 * g + 1]);
        }
    for (int h = 0; h < 2; h++)
        for (int q = 0; q < 2; q++)
            for (int g = 0; g < 2; g++) {
                c[h][q][0][g] = _mm256_unpacklo_epi32(b[h][q][2 * g], b[h][q][2 * g + 1]);
                c[h][q][1][g] = _mm256_unpackhi_epi32(b[h][q][2 * g], b[h][q][2 * g + 1]);
            }
    for (int h = 0; h < 2; h++)
        for (int q = 0; q < 2; q++)
            for (int r = 0; r < 2; r++) {
                int s = 8 * h + 4 * q + 2 * r;
                _mm256_store_si256(&out[s], _mm256_unpacklo_epi64(c[h][q][r][0], c[h][q][r][1]));
                _mm256_store_si256(&out[s + 1], _mm256_unpackhi_epi64(c[h][q][r][0], c[h][q][r][1]));
            }
}

#define SHUF(k, i, idx) _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)T[k][i]), idx)
#define LOOK(i) _mm256_xor_si256(_mm256_xor_si256(SHUF(0, i, tlo), SHUF(1, i, thi)), \
                                 _mm256_xor_si256(SHUF(2, i, glo), SHUF(3, i, ghi)))

/* One rolling step for step k of the batch (global step s0 + k).  Q0..Q6 name the planes in their current
 * roles; Q6 (the top byte) is consumed and its register becomes the new P0,
 * so the next step is STEP(Q6, Q0, Q1, Q2, Q3, Q4, Q5). */
#define STEP(Q0, Q1, Q2, Q3, Q4, Q5, Q6, k)                                                        \
    do {                                                                                           \
        const __m256i in = _mm256_load_si256(&cur[k]);                                             \
        const __m256i gone = _mm256_load_si256(&cur[(k) - PRIME]);                                 \
        const __m256i tlo = _mm256_and_si256(Q6, m0f);                                             \
        const __m256i thi = _mm256_and_si256(_mm256_srli_epi16(Q6, 4), m0f);                       \
        const __m256i glo = _mm256_and_si256(gone, m0f);                                           \
        const __m256i ghi = _mm256_and_si256(_mm256_srli_epi16(gone, 4), m0f);                     \
        Q6 = _mm256_xor_si256(LOOK(0), _mm256_and_si256(_mm256_slli_epi16(in, 3), mf8));           \
        Q5 = _mm256_xor_si256(Q5, LOOK(6));                                                        \
        Q4 = _mm256_xor_si256(Q4, LOOK(5));                                                        \
        Q3 = _mm256_xor_si256(Q3, LOOK(4));                                                        \
        Q2 = _mm256_xor_si256(Q2, LOOK(3));                                                        \
        Q1 = _mm256_xor_si256(Q1, LOOK(2));                                                        \
        Q0 = _mm256_xor_si256(Q0, _mm256_xor_si256(LOOK(1), _mm256_and_si256(_mm256_srli_epi16(in, 5), m07))); \
        const __m256i z = _mm256_or_si256(_mm256_or_si256(Q6, Q0), _mm256_and_si256(Q1, m7f));   \
        uint32_t hits = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(z, zero)) & active;      \
        if (__builtin_expect(hits != 0, 0) && s0 + (k) >= PRIME) {                                 \
            /* lanes from the first hit on cannot hold an earlier cut */                           \
            int j = __builtin_ctz(hits);                                                           \
            hit_lane = j;                                                                          \
            hit_step = s0 + (k);                                                                   \
            active = (1u << j) - 1;                                                                \
            if (!active) goto done;                                                                \
        }                                                                                          \
    } while (0)

/* One block: LANES lanes of len bytes from p (p[-64..-1] readable).
 * Returns the offset of the first hit in the block, or SIZE_MAX. */
AVX2 static size_t block(const uint8_t T[4][7][32], const uint8_t *p, size_t len, size_t batches)
{
    /* Transposed input: [0, 64) the 64 steps before the batch (whose bytes
     * leave the window during it), [64, 64 + BATCH) the batch. */
    __m256i steps[PRIME + BATCH];
    const __m256i *cur = steps + PRIME;
    const __m256i m0f = _mm256_set1_epi8(0x0f), mf8 = _mm256_set1_epi8((char)0xf8);
    const __m256i m07 = _mm256_set1_epi8(0x07), m7f = _mm256_set1_epi8(0x7f);
    const __m256i zero = _mm256_setzero_si256();
    __m256i P0 = zero, P1 = zero, P2 = zero, P3 = zero, P4 = zero, P5 = zero, P6 = zero;
    uint32_t active = 0xffffffffu;
    int hit_lane = -1;
    size_t hit_step = 0;
    const uint8_t *base = p - PRIME;

    /* The priming steps see a zero window leaving. */
    for (int k = 0; k < PRIME; k++) steps[k] = zero;
    for (size_t s0 = 0; s0 < batches * BATCH; s0 += BATCH) {
        for (int g = 0; g < BATCH; g += 16) transpose16(base, len, s0 + (size_t)g, &steps[PRIME + g]);
        for (int k = 0; k < BATCH; k += 7) {
            STEP(P0, P1, P2, P3, P4, P5, P6, k);
            STEP(P6, P0, P1, P2, P3, P4, P5, k + 1);
            STEP(P5, P6, P0, P1, P2, P3, P4, k + 2);
            STEP(P4, P5, P6, P0, P1, P2, P3, k + 3);
            STEP(P3, P4, P5, P6, P0, P1, P2, k + 4);
            STEP(P2, P3, P4, P5, P6, P0, P1, k + 5);
            STEP(P1, P2, P3, P4, P5, P6, P0, k + 6);
        }
        /* (an explicit loop: memcpy here becomes a slow `rep movsq`) */
        for (int k = 0; k < PRIME; k++) _mm256_store_si256(&steps[k], _mm256_load_si256(&steps[BATCH + k]));
    }
done:
    if (hit_lane < 0) return SIZE_MAX;
    return (size_t)hit_lane * len + hit_step - PRIME;
}

AVX2 size_t cr_chunker_find_avx2(const uint8_t T[4][7][32], const uint8_t *p, size_t m, bool *hit)
{
    size_t done = 0;
    *hit = false;
    for (;;) {
        size_t batches = ((m - done) / LANES + PRIME) / BATCH;
        if (batches > MAX_BATCHES) batches = MAX_BATCHES;
        if (batches < 1) return done;
        size_t len = batches * BATCH - PRIME;
        size_t at = block(T, p + done, len, batches);
        if (at != SIZE_MAX) {
            *hit = true;
            return done + at;
        }
        done += LANES * len;
    }
}
