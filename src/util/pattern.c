/* restic's include/exclude patterns, behaviour-compatible with its filter
 * package (restic 0.14 and today's restic agree on all of this):
 *
 *  - a pattern is cleaned like Go's filepath.Clean ("a//b/./c/" -> "a/b/c",
 *    "/x/../y" -> "/y") and split at '/'; an absolute pattern's first
 *    component is "/" itself, and "/" alone means "/" + "**";
 *  - each component is a Go filepath.Match glob ('*', '?', '[...]' with
 *    '^' negation and ranges, '\' escapes), "**" stands for any number of
 *    whole components (also none);
 *  - an absolute pattern must match starting at the root, a relative one
 *    anywhere below it, and in both cases the path may go on below the
 *    matched part (so a directory pattern matches everything inside);
 *  - a leading '!' negates: a later negated pattern un-matches what earlier
 *    patterns matched;
 *  - case-insensitive lists fold pattern and path like Go's strings.ToLower
 *    (invalid UTF-8 bytes become U+FFFD there, so they do here).
 *
 * Matching walks the components with a small reachability set instead of
 * expanding "**" recursively, so deep paths and many "**" stay linear-ish. */
#include "util/pattern.h"

#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/error.h"

typedef struct {
    const char *s; /* NUL-terminated; "" for "**" */
    size_t len;
    bool simple;   /* no glob metacharacters: plain comparison */
    bool dstar;
} pat_part;

typedef struct {
    pat_part *parts;
    size_t nparts;
    bool absolute; /* parts[0] is "/" */
    bool negated;
    bool only_dstar;
    size_t first_dstar; /* nparts when none */
} pattern;

struct cr_patterns {
    pattern *v;
    size_t n;
    bool fold;
    bool has_negated;
    cr_arena arena;
};

/* ---- UTF-8 as Go decodes it ------------------------------------------ */

#define RUNE_ERROR 0xFFFDu

/* Decode one rune; invalid or truncated sequences give (RUNE_ERROR, 1),
 * exactly like Go's utf8.DecodeRune (no overlongs, surrogates, > U+10FFFF). */
static uint32_t decode_rune(const uint8_t *s, size_t n, size_t *width)
{
    *width = 1;
    if (n == 0) {
        *width = 0;
        return RUNE_ERROR;
    }
    uint8_t c = s[0];
    if (c < 0x80) return c;
    size_t need;
    uint32_t r, min;
    if (c >= 0xc2 && c <= 0xdf) need = 1, r = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) need = 2, r = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) need = 3, r = c & 0x07, min = 0x10000;
    else return RUNE_ERROR;
    if (n < need + 1) return RUNE_ERROR;
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xc0) != 0x80) return RUNE_ERROR;
        r = r << 6 | (s[i] & 0x3f);
    }
    if (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) return RUNE_ERROR;
    *width = need + 1;
    return r;
}

static size_t encode_rune(uint32_t r, uint8_t out[4])
{
    if (r < 0x80) return out[0] = (uint8_t)r, 1;
    if (r < 0x800) {
        out[0] = (uint8_t)(0xc0 | r >> 6);
        out[1] = (uint8_t)(0x80 | (r & 0x3f));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (uint8_t)(0xe0 | r >> 12);
        out[1] = (uint8_t)(0x80 | (r >> 6 & 0x3f));
        out[2] = (uint8_t)(0x80 | (r & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | r >> 18);
    out[1] = (uint8_t)(0x80 | (r >> 12 & 0x3f));
    out[2] = (uint8_t)(0x80 | (r >> 6 & 0x3f));
    out[3] = (uint8_t)(0x80 | (r & 0x3f));
    return 4;
}

/* ---- case folding ------------------------------------------------------ */

static locale_t utf8_locale;
static pthread_once_t utf8_locale_once = PTHREAD_ONCE_INIT;

static void init_utf8_locale(void)
{
    /* glibc's C.UTF-8 carries the Unicode simple case mappings Go uses;
     * without it we fold ASCII only. */
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static uint32_t lower_rune(uint32_t r)
{
    if (r < 0x80) return (r >= 'A' && r <= 'Z') ? r + 32 : r;
    pthread_once(&utf8_locale_once, init_utf8_locale);
    if (!utf8_locale) return r;
    wint_t l = towlower_l((wint_t)r, utf8_locale);
    return l > 0x10ffff ? r : (uint32_t)l;
}

/* strings.ToLower: ASCII-only strings fold in place; anything else goes
 * rune by rune, invalid bytes turning into U+FFFD. */
static int fold_case(const char *s, size_t n, cr_buf *out)
{
    cr_buf_reset(out);
    CR_TRY(cr_buf_reserve(out, n + 1));
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        size_t w;
        uint32_t r = decode_rune(p + i, n - i, &w);
        uint8_t enc[4];
        size_t k = encode_rune(lower_rune(r), enc);
        CR_TRY(cr_buf_append(out, enc, k));
        i += w;
    }
    return cr_buf_nul(out);
}

/* ---- Go filepath.Match on one component --------------------------------- */

/* Read one class member (possibly escaped) at *p < end.  Go refuses a
 * member that starts with '-' or ']', an invalid UTF-8 member, a dangling
 * escape, and a member that ends the pattern (the class is unterminated). */
static bool class_member(const char **p, const char *end, uint32_t *r)
{
    const char *q = *p;
    if (q >= end || *q == '-' || *q == ']') return false;
    if (*q == '\\') {
        q++;
        if (q >= end) return false;
    }
    size_t w;
    *r = decode_rune((const uint8_t *)q, (size_t)(end - q), &w);
    if (*r == RUNE_ERROR && w == 1) return false;
    q += w;
    if (q >= end) return false;
    *p = q;
    return true;
}

/* Parse a character class starting after '['.  Sets *hit when rune r (if
 * have_rune) is selected.  Returns the position after ']' or NULL when the
 * class is malformed. */
static const char *parse_class(const char *p, const char *end, bool have_rune, uint32_t r, bool *hit)
{
    bool negated = false, match = false;
    if (p < end && *p == '^') negated = true, p++;
    for (int nrange = 0;; nrange++) {
        if (p < end && *p == ']' && nrange > 0) {
            p++;
            break;
        }
        uint32_t lo, hi;
        if (!class_member(&p, end, &lo)) return NULL;
        hi = lo;
        if (*p == '-') {
            p++;
            if (!class_member(&p, end, &hi)) return NULL;
        }
        if (have_rune && lo <= r && r <= hi) match = true;
    }
    *hit = match != negated;
    return p;
}

/* Scan the chunk that starts at p (after any stars): up to the next '*'
 * outside brackets.  A '\' always takes the next byte with it. */
static const char *chunk_end(const char *p, const char *end)
{
    bool inrange = false;
    for (; p < end; p++) {
        if (*p == '\\') {
            if (p + 1 < end) p++;
        } else if (*p == '[') {
            inrange = true;
        } else if (*p == ']') {
            inrange = false;
        } else if (*p == '*' && !inrange) {
            break;
        }
    }
    return p;
}

/* Match a star-free chunk against the start of s; on success return the
 * rest of s in *rest.  The pattern is known to be well formed. */
static bool match_chunk(const char *c, const char *cend, const char *s, const char *send, const char **rest)
{
    while (c < cend) {
        if (s >= send) return false;
        size_t w;
        switch (*c) {
        case '[': {
            uint32_t r = decode_rune((const uint8_t *)s, (size_t)(send - s), &w);
            bool hit = false;
            c = parse_class(c + 1, cend, true, r, &hit);
            if (!c || !hit) return false;
            s += w;
            break;
        }
        case '?':
            if (*s == '/') return false;
            decode_rune((const uint8_t *)s, (size_t)(send - s), &w);
            s += w;
            c++;
            break;
        case '\\':
            c++;
            /* fallthrough */
        default:
            if (*c != *s) return false;
            c++, s++;
        }
    }
    *rest = s;
    return true;
}

/* Whether a chunk is well formed (what Go reports as ErrBadPattern). */
static bool chunk_is_valid(const char *c, const char *cend)
{
    while (c < cend) {
        if (*c == '[') {
            bool hit;
            c = parse_class(c + 1, cend, false, 0, &hit);
            if (!c) return false;
        } else if (*c == '\\') {
            if (c + 1 >= cend) return false;
            c += 2;
        } else {
            c++;
        }
    }
    return true;
}

static bool glob_is_valid(const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end) {
        while (p < end && *p == '*') p++;
        const char *ce = chunk_end(p, end);
        if (!chunk_is_valid(p, ce)) return false;
        p = ce;
    }
    return true;
}

/* Go's algorithm: each chunk after a star is placed at the leftmost
 * position that works (stars never cross '/'); only the last chunk must
 * also end exactly at the end of the name. */
static bool glob_match(const char *p, size_t pn, const char *s, size_t sn)
{
    const char *pend = p + pn, *send = s + sn;
    while (p < pend) {
        bool star = false;
        while (p < pend && *p == '*') p++, star = true;
        const char *ce = chunk_end(p, pend);
        bool last = ce == pend;
        if (star && p == ce) return memchr(s, '/', (size_t)(send - s)) == NULL;
        const char *rest;
        if (match_chunk(p, ce, s, send, &rest) && (rest == send || !last)) {
            s = rest, p = ce;
            continue;
        }
        if (!star) return false;
        bool found = false;
        for (const char *t = s; t < send && *t != '/'; t++) {
            if (!match_chunk(p, ce, t + 1, send, &rest)) continue;
            if (last && rest != send) continue;
            found = true;
            break;
        }
        if (!found) return false;
        s = rest, p = ce;
    }
    return s == send;
}

/* ---- compiling ----------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t len;
} span;

static bool span_is(span c, const char *lit)
{
    return c.len == strlen(lit) && memcmp(c.s, lit, c.len) == 0;
}

/* filepath.Clean + split, as components (the root is the component "/").
 * comps must hold strlen(s)/2 + 2 entries. */
static size_t clean_split(const char *s, span *comps)
{
    bool rooted = s[0] == '/';
    size_t n = 0;
    if (rooted) comps[n++] = (span){"/", 1};
    size_t floor = n; /* ".." may not pop below this */
    for (const char *p = s; *p;) {
        while (*p == '/') p++;
        const char *e = p;
        while (*e && *e != '/') e++;
        span c = {p, (size_t)(e - p)};
        p = e;
        if (c.len == 0 || span_is(c, ".")) continue;
        if (span_is(c, "..")) {
            if (n > floor && !span_is(comps[n - 1], "..")) n--;
            else if (!rooted) comps[n++] = c, floor = n;
            continue;
        }
        comps[n++] = c;
    }
    if (n == 0) comps[n++] = (span){".", 1};      /* Clean("") == "." */
    else if (rooted && n == 1) comps[n++] = (span){"", 0}; /* "/" splits into "/" and "" */
    return n;
}

static int compile_one(cr_patterns *ps, const char *src, pattern *out)
{
    memset(out, 0, sizeof *out);
    if (*src == '!') out->negated = true, src++;
    size_t cap = strlen(src) / 2 + 2;
    _cleanup_free_ span *comps = calloc(cap, sizeof *comps);
    if (!comps) return cr_error(-ENOMEM, "out of memory");
    size_t n = clean_split(src, comps);
    out->parts = cr_arena_alloc(&ps->arena, n * sizeof *out->parts);
    if (!out->parts) return cr_error(-ENOMEM, "out of memory");
    out->nparts = n;
    out->first_dstar = n;
    out->only_dstar = true;
    for (size_t i = 0; i < n; i++) {
        pat_part *pp = &out->parts[i];
        pp->dstar = span_is(comps[i], "**") || comps[i].len == 0;
        pp->s = pp->dstar ? "" : cr_arena_strndup(&ps->arena, comps[i].s, comps[i].len);
        if (!pp->s) return cr_error(-ENOMEM, "out of memory");
        pp->len = pp->dstar ? 0 : comps[i].len;
        pp->simple = !pp->dstar && !memchr(pp->s, '\\', pp->len) && !memchr(pp->s, '[', pp->len) &&
                     !memchr(pp->s, ']', pp->len) && !memchr(pp->s, '*', pp->len) && !memchr(pp->s, '?', pp->len);
        if (pp->dstar && out->first_dstar == n) out->first_dstar = i;
        if (!pp->dstar) out->only_dstar = false;
    }
    out->absolute = n > 0 && comps[0].s[0] == '/';
    return 0;
}

static bool pattern_is_valid(const pattern *p)
{
    for (size_t i = 0; i < p->nparts; i++)
        if (!p->parts[i].simple && !p->parts[i].dstar && !glob_is_valid(p->parts[i].s, p->parts[i].len)) return false;
    return true;
}

int cr_patterns_new(const char *const *pats, size_t n, bool case_insensitive, cr_patterns **out)
{
    *out = NULL;
    cr_patterns *ps = calloc(1, sizeof *ps);
    if (!ps) return cr_error(-ENOMEM, "out of memory");
    ps->fold = case_insensitive;
    ps->v = calloc(n ? n : 1, sizeof *ps->v);
    _cleanup_buf_ cr_buf folded = CR_BUF_INIT, bad = CR_BUF_INIT;
    int r = ps->v ? 0 : cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; r == 0 && i < n; i++) {
        if (!pats[i][0]) continue; /* restic ignores empty patterns */
        /* Validity is judged on the pattern as given (restic validates
         * before lower-casing). */
        r = compile_one(ps, pats[i], &ps->v[ps->n]);
        if (r < 0) break;
        if (!pattern_is_valid(&ps->v[ps->n])) {
            r = cr_buf_printf(&bad, "\n%s", pats[i]);
            continue;
        }
        if (case_insensitive) {
            r = fold_case(pats[i], strlen(pats[i]), &folded);
            if (r == 0) r = compile_one(ps, (const char *)folded.data, &ps->v[ps->n]);
            if (r < 0) break;
        }
        ps->has_negated |= ps->v[ps->n].negated;
        ps->n++;
    }
    if (r == 0 && bad.len) {
        cr_buf_nul(&bad);
        r = cr_error(CR_E_USAGE, "invalid pattern(s) provided:%s", (const char *)bad.data);
    }
    if (r < 0) {
        cr_patterns_free(ps);
        return r;
    }
    *out = ps;
    return 0;
}

void cr_patterns_free(cr_patterns *p)
{
    if (!p) return;
    cr_arena_free(&p->arena);
    free(p->v);
    free(p);
}

size_t cr_patterns_count(const cr_patterns *p)
{
    return p ? p->n : 0;
}

/* ---- matching ------------------------------------------------------------ */

typedef struct {
    span *c;
    size_t n;
    span small[64];
    cr_buf folded;
} split_path;

/* Split like restic's splitPath: "/a/b" -> "/", "a", "b"; "/" -> "/", "". */
static int split_init(split_path *sp, const cr_patterns *ps, const char *path)
{
    memset(sp, 0, sizeof *sp);
    if (ps->fold) {
        CR_TRY(fold_case(path, strlen(path), &sp->folded));
        path = (const char *)sp->folded.data;
    }
    size_t count = 1;
    for (const char *p = path; *p; p++) count += *p == '/';
    sp->c = count <= 64 ? sp->small : calloc(count, sizeof *sp->c);
    if (!sp->c) return cr_error(-ENOMEM, "out of memory");
    const char *start = path;
    for (const char *p = path;; p++) {
        if (*p && *p != '/') continue;
        sp->c[sp->n++] = (span){start, (size_t)(p - start)};
        if (!*p) break;
        start = p + 1;
    }
    if (sp->c[0].len == 0) sp->c[0] = (span){"/", 1};
    return 0;
}

static void split_free(split_path *sp)
{
    if (sp->c != sp->small) free(sp->c);
    cr_buf_free(&sp->folded);
}

static bool part_matches(const pat_part *pp, span c)
{
    if (pp->simple) return pp->len == c.len && memcmp(pp->s, c.s, c.len) == 0;
    return glob_match(pp->s, pp->len, c.s, c.len);
}

/* "*" (what a "**" expands to, one per component) never matches a
 * component containing '/', i.e. the root marker. */
static bool star_matches(span c)
{
    return memchr(c.s, '/', c.len) == NULL;
}

/* One placement attempt.  reach[k] = "some placement of the parts so far
 * ends right before component k".  start < 0 means every start allowed for
 * a relative pattern at once (only valid without the "**" length quirk).
 *
 * restic expands the first "**" into 0..n wildcards while every later "**"
 * still counts as one component, then recurses; so the number of
 * components the "**"s have taken up to the j-th one (S_j) obeys
 * S_j <= (ns - nparts) + j + 1.  With several "**" this rejects some short
 * paths (a pattern "/a", "**", "b", "**" does not match the path "/a/x/b"
 * itself, only what lies below it); we keep that behaviour. */
static bool placement_matches(const pattern *pt, const split_path *sp, ptrdiff_t start, size_t min_start,
                              uint8_t *cur, uint8_t *next)
{
    size_t n = sp->n;
    ptrdiff_t budget = (ptrdiff_t)n - (ptrdiff_t)pt->nparts;
    memset(cur, 0, n + 1);
    if (start >= 0) cur[start] = 1;
    else memset(cur + min_start, 1, n + 1 - min_start);
    size_t nonstar = 0, dstars = 0;
    bool any = true;
    for (size_t j = 0; j < pt->nparts && any; j++) {
        const pat_part *pp = &pt->parts[j];
        any = false;
        if (pp->dstar) {
            /* positions beyond the cap violate the quirk (only with a fixed start) */
            ptrdiff_t cap = start >= 0 ? start + (ptrdiff_t)nonstar + budget + (ptrdiff_t)dstars + 1 : (ptrdiff_t)n;
            bool run = false;
            for (size_t k = 0; k <= n; k++) {
                run = cur[k] || (run && star_matches(sp->c[k - 1]));
                next[k] = run && (ptrdiff_t)k <= cap;
                any |= next[k];
            }
            dstars++;
        } else {
            next[0] = 0;
            for (size_t k = 0; k < n; k++) {
                next[k + 1] = cur[k] && part_matches(pp, sp->c[k]);
                any |= next[k + 1];
            }
            nonstar++;
        }
        memcpy(cur, next, n + 1);
    }
    if (!any) return false;
    /* A pattern made of "**" only must still cover one component. */
    size_t from = start >= 0 ? (size_t)start + 1 : min_start + 1;
    if (!pt->only_dstar) from = 0;
    for (size_t k = from; k <= n; k++)
        if (cur[k]) return true;
    return false;
}

/* Does the pattern match a run of components (at the root for absolute
 * patterns, anywhere for relative ones; the path may go on below)? */
static bool pattern_matches(const pattern *pt, const split_path *sp)
{
    size_t n = sp->n;
    size_t min_start = (!pt->absolute && span_is(sp->c[0], "/")) ? 1 : 0;
    size_t ndstar = 0;
    for (size_t j = 0; j < pt->nparts; j++) ndstar += pt->parts[j].dstar;
    if (pt->nparts > n + ndstar) return false;
    uint8_t small[2][66];
    uint8_t *cur = small[0], *next = small[1], *heap = NULL;
    if (n + 1 > sizeof small[0]) {
        heap = calloc(2, n + 1);
        if (!heap) return false;
        cur = heap, next = heap + n + 1;
    }
    bool m = false;
    if (pt->absolute) {
        m = placement_matches(pt, sp, 0, 0, cur, next);
    } else if (ndstar <= 1 && !pt->only_dstar) {
        /* the cap is implied by the path length: all starts at once */
        m = placement_matches(pt, sp, -1, min_start, cur, next);
    } else {
        for (size_t w = min_start; w < n && !m; w++) m = placement_matches(pt, sp, (ptrdiff_t)w, min_start, cur, next);
    }
    free(heap);
    return m;
}

/* restic's childMatch: could something below this path match?  Always for
 * relative patterns; for absolute ones, the path must agree with the
 * pattern up to the first "**" (or the pattern's end). */
static bool pattern_child_may_match(const pattern *pt, const split_path *sp)
{
    if (!pt->absolute) return true;
    size_t cut = sp->n;
    if (pt->first_dstar < pt->nparts && cut >= pt->first_dstar) cut = pt->first_dstar;
    size_t l = cut < pt->nparts ? cut : pt->nparts;
    for (size_t i = 0; i < l; i++)
        if (!part_matches(&pt->parts[i], sp->c[i])) return false;
    return true;
}

static void list_match(const cr_patterns *p, const char *path, bool want_child, bool *matched, bool *child)
{
    *matched = false;
    if (child) *child = false;
    if (!p || !p->n || !path || !*path) return;
    split_path sp;
    if (split_init(&sp, p, path) < 0) {
        split_free(&sp);
        return;
    }
    bool m_all = false, c_all = false;
    for (size_t i = 0; i < p->n; i++) {
        const pattern *pt = &p->v[i];
        bool m = pattern_matches(pt, &sp);
        bool c = want_child ? pattern_child_may_match(pt, &sp) : true;
        if (pt->negated) {
            m_all = m_all && !m;
            c_all = c_all && !m;
        } else {
            m_all |= m;
            c_all |= c;
            if (m_all && c_all && !p->has_negated) break;
        }
    }
    split_free(&sp);
    *matched = m_all;
    if (child) *child = c_all;
}

bool cr_patterns_match(const cr_patterns *p, const char *path)
{
    bool m;
    list_match(p, path, false, &m, NULL);
    return m;
}

void cr_patterns_match_include(const cr_patterns *p, const char *path, bool *matched, bool *child_may_match)
{
    list_match(p, path, true, matched, child_may_match);
}
