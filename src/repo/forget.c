/* The forget retention policy; see forget.h for the rules and for where
 * this follows restic 0.14 rather than newer versions. */
#include "repo/forget.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"

#define SECS_PER_DAY 86400
#define NSEC_PER_SEC 1000000000LL

/* ---- durations ---------------------------------------------------------- */

/* Go's %q of a single byte taken as a rune (restic prints the unit with it). */
static void quote_unit(unsigned char c, char *out, size_t n)
{
    static const char esc[] = "\a\b\f\n\r\t\v";
    static const char names[] = "abfnrtv";
    const char *e = c ? strchr(esc, c) : NULL;
    if (c == '\'' || c == '\\') snprintf(out, n, "'\\%c'", c);
    else if (e) snprintf(out, n, "'\\%c'", names[e - esc]);
    else if (c >= 0x20 && c < 0x7f) snprintf(out, n, "'%c'", c);
    else if (c < 0x80) snprintf(out, n, "'\\x%02x'", c);
    else if (c < 0xa1 || c == 0xad) snprintf(out, n, "'\\u%04x'", c); /* not printable for Go */
    else snprintf(out, n, "'%c%c'", 0xc0 | (c >> 6), 0x80 | (c & 0x3f)); /* the rune, UTF-8 */
}

/* One signed number at *s; advances past it. */
static int next_number(const char **s, int64_t *num)
{
    const char *p = *s;
    bool negative = *p == '-';
    if (negative) p++;
    const char *digits = p;
    while (*p >= '0' && *p <= '9') p++;
    if (p == digits) return cr_error(CR_E_USAGE, "no number found");
    /* Go's Atoi fails beyond int64 (restic then panics); refuse instead. */
    int64_t v = 0;
    for (const char *q = digits; q < p; q++) {
        if (v > (INT64_MAX - (*q - '0')) / 10) return cr_error(CR_E_USAGE, "number %.*s out of range", (int)(p - digits), digits);
        v = v * 10 + (*q - '0');
    }
    *num = negative ? -v : v;
    *s = p;
    return 0;
}

int cr_forget_parse_duration(const char *s, cr_forget_duration *d)
{
    memset(d, 0, sizeof *d);
    while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || (s[len - 1] >= '\t' && s[len - 1] <= '\r'))) len--;
    const char *end = s + len;
    while (s < end) {
        int64_t num = 0;
        CR_TRY(next_number(&s, &num));
        if (s >= end) return cr_error(CR_E_USAGE, "no unit found after number %lld", (long long)num);
        switch (*s) {
        case 'y': d->years = num; break;
        case 'm': d->months = num; break;
        case 'd': d->days = num; break;
        case 'h': d->hours = num; break;
        default: {
            char q[16];
            quote_unit((unsigned char)*s, q, sizeof q);
            return cr_error(CR_E_USAGE, "invalid unit %s found after number %lld", q, (long long)num);
        }
        }
        s++;
    }
    return 0;
}

bool cr_forget_duration_zero(const cr_forget_duration *d)
{
    return !d->years && !d->months && !d->days && !d->hours;
}

void cr_forget_format_duration(const cr_forget_duration *d, char *out, size_t n)
{
    size_t k = 0;
    out[0] = 0;
    const int64_t parts[4] = {d->years, d->months, d->days, d->hours};
    const char units[4] = {'y', 'm', 'd', 'h'};
    for (int i = 0; i < 4; i++)
        if (parts[i] && k < n) k += (size_t)snprintf(out + k, n - k, "%lld%c", (long long)parts[i], units[i]);
}

/* ---- policy ---------------------------------------------------------------- */

static char *trim_dup(const char *s, size_t n)
{
    while (n && (*s == ' ' || (*s >= '\t' && *s <= '\r'))) s++, n--;
    while (n && (s[n - 1] == ' ' || (s[n - 1] >= '\t' && s[n - 1] <= '\r'))) n--;
    return strndup(s, n);
}

int cr_forget_policy_add_keep_tag(cr_forget_policy *p, const char *list)
{
    cr_tag_list *nv = realloc(p->keep_tags, (p->nkeep_tags + 1) * sizeof *nv);
    if (!nv) return cr_error(-ENOMEM, "out of memory");
    p->keep_tags = nv;
    cr_tag_list *l = &p->keep_tags[p->nkeep_tags++];
    memset(l, 0, sizeof *l);
    /* As Go's strings.Split: "" gives one empty tag, "a," gives "a" and "". */
    for (const char *s = list;; ) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        char **tv = realloc(l->tags, (l->n + 1) * sizeof *tv);
        if (!tv) return cr_error(-ENOMEM, "out of memory");
        l->tags = tv;
        if (!(l->tags[l->n] = trim_dup(s, len))) return cr_error(-ENOMEM, "out of memory");
        l->n++;
        if (!comma) break;
        s = comma + 1;
    }
    return 0;
}

void cr_forget_policy_clear(cr_forget_policy *p)
{
    for (size_t i = 0; i < p->nkeep_tags; i++) {
        for (size_t k = 0; k < p->keep_tags[i].n; k++) free(p->keep_tags[i].tags[k]);
        free(p->keep_tags[i].tags);
    }
    free(p->keep_tags);
    memset(p, 0, sizeof *p);
}

bool cr_forget_policy_empty(const cr_forget_policy *p)
{
    if (p->nkeep_tags || !cr_forget_duration_zero(&p->within)) return false;
    for (int i = 0; i < CR_KEEP_NCOUNTED; i++)
        if (p->count[i] || p->unlimited[i]) return false;
    for (int i = 0; i < CR_WITHIN_NBUCKETS; i++)
        if (!cr_forget_duration_zero(&p->within_bucket[i])) return false;
    return true;
}

static const char *const count_words[CR_KEEP_NCOUNTED] = {"latest", "hourly", "daily", "weekly", "monthly", "yearly"};
static const char *const count_reasons[CR_KEEP_NCOUNTED] = {"last snapshot", "hourly snapshot", "daily snapshot",
                                                            "weekly snapshot", "monthly snapshot", "yearly snapshot"};
static const char *const within_words[CR_WITHIN_NBUCKETS] = {"hourly", "daily", "weekly", "monthly", "yearly"};

/* TagList.String(): "[a, b]". */
static int put_tag_list(cr_buf *b, const cr_tag_list *l)
{
    CR_TRY(cr_buf_putc(b, '['));
    for (size_t i = 0; i < l->n; i++) CR_TRY(cr_buf_printf(b, "%s%s", i ? ", " : "", l->tags[i]));
    return cr_buf_putc(b, ']');
}

static int describe_counts(const cr_forget_policy *p, cr_buf *out)
{
    bool any = false;
    for (int i = 0; i < CR_KEEP_NCOUNTED; i++) {
        if (p->unlimited[i]) CR_TRY(cr_buf_printf(out, "%sall %s", any ? ", " : "", count_words[i]));
        else if (p->count[i] > 0) CR_TRY(cr_buf_printf(out, "%s%lld %s", any ? ", " : "", (long long)p->count[i], count_words[i]));
        else continue;
        any = true;
    }
    if (any) CR_TRY(cr_buf_puts(out, " snapshots"));
    for (int i = 0; i < CR_WITHIN_NBUCKETS; i++) {
        if (cr_forget_duration_zero(&p->within_bucket[i])) continue;
        char d[128];
        cr_forget_format_duration(&p->within_bucket[i], d, sizeof d);
        CR_TRY(cr_buf_printf(out, "%s%s snapshots within %s", out->len ? ", " : "", within_words[i], d));
    }
    return 0;
}

int cr_forget_policy_describe(const cr_forget_policy *p, cr_buf *out)
{
    cr_buf_reset(out);
    CR_TRY(describe_counts(p, out));
    if (p->nkeep_tags) {
        CR_TRY(cr_buf_puts(out, out->len ? " and all snapshots with tags [" : "all snapshots with tags ["));
        for (size_t i = 0; i < p->nkeep_tags; i++) {
            if (i) CR_TRY(cr_buf_putc(out, ' '));
            CR_TRY(put_tag_list(out, &p->keep_tags[i]));
        }
        CR_TRY(cr_buf_putc(out, ']'));
    }
    if (!cr_forget_duration_zero(&p->within)) {
        char d[128];
        cr_forget_format_duration(&p->within, d, sizeof d);
        CR_TRY(cr_buf_printf(out, "%sall snapshots within %s of the newest", out->len ? " and " : "", d));
    }
    /* "keep " goes in front of the whole text */
    CR_TRY(cr_buf_reserve(out, 6));
    memmove(out->data + 5, out->data, out->len);
    memcpy(out->data, "keep ", 5);
    out->len += 5;
    return cr_buf_nul(out);
}

/* ---- calendar ---------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days from 1970-01-01 to year-month-01 (proleptic Gregorian): whole years
 * since year 0 with their leap days, then the months before this one. */
static int64_t days_to_month_start(int64_t year, int month)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t y = year - 1; /* leap days of the years before this one */
    int64_t days = 365 * year + floor_div(y, 4) - floor_div(y, 100) + floor_div(y, 400) + 1;
    bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    days += before[month - 1] + (leap && month > 2);
    return days - 719528; /* 0000-01-01 .. 1970-01-01 */
}

void cr_forget_iso_week(int64_t year, int month, int day, int64_t *iso_year, int *week)
{
    int64_t days = days_to_month_start(year, month) + day - 1;
    int monday_based = (int)((days % 7 + 7 + 3) % 7); /* 1970-01-01 was a Thursday: 3 */
    /* The week belongs to the year of its Thursday. */
    int64_t thursday = days - monday_based + 3;
    int64_t y = year + 1;
    while (days_to_month_start(y, 1) > thursday) y--;
    *iso_year = y;
    *week = (int)((thursday - days_to_month_start(y, 1)) / 7 + 1);
}

static struct tm wall_clock(const cr_time *t)
{
    struct tm tm;
    cr_time_civil(t, &tm);
    return tm;
}

int64_t cr_forget_bucket_hour(const cr_time *t)
{
    struct tm tm = wall_clock(t);
    return ((int64_t)tm.tm_year + 1900) * 1000000 + (tm.tm_mon + 1) * 10000 + tm.tm_mday * 100 + tm.tm_hour;
}

int64_t cr_forget_bucket_day(const cr_time *t)
{
    struct tm tm = wall_clock(t);
    return ((int64_t)tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

int64_t cr_forget_bucket_week(const cr_time *t)
{
    struct tm tm = wall_clock(t);
    int64_t iso_year;
    int week;
    cr_forget_iso_week((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, &iso_year, &week);
    return iso_year * 100 + week;
}

int64_t cr_forget_bucket_month(const cr_time *t)
{
    struct tm tm = wall_clock(t);
    return ((int64_t)tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

int64_t cr_forget_bucket_year(const cr_time *t)
{
    return (int64_t)wall_clock(t).tm_year + 1900;
}

int32_t cr_forget_local_zone(int64_t unix_sec)
{
    time_t tt = (time_t)unix_sec;
    struct tm tm;
    tzset();
    if (!localtime_r(&tt, &tm)) return 0;
    return (int32_t)tm.tm_gmtoff;
}

/* Go keeps a parsed time in the local zone when its offset is the local
 * zone's at that instant ("Z" always stays UTC). */
static bool in_local_zone(const cr_time *t, cr_forget_zone zone)
{
    return zone && t->offset != 0 && zone(t->sec) == t->offset;
}

/* Saturating int64 from a wide value (far beyond any date Go handles). */
static int64_t clamp64(__int128 v)
{
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

static __int128 floor_div128(__int128 a, int64_t b)
{
    __int128 q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

cr_time cr_forget_add_date(const cr_time *t, int64_t years, int64_t months, int64_t days, cr_forget_zone zone)
{
    struct tm tm = wall_clock(t);
    /* Months first, carried into years; days are then plain day counts
     * (Go's Date normalises the same way: Feb 31 is Mar 2 or 3). */
    __int128 month0 = (__int128)tm.tm_mon + months;
    __int128 carry = floor_div128(month0, 12);
    int month = (int)(month0 - carry * 12) + 1;
    __int128 year = (__int128)tm.tm_year + 1900 + years + carry;
    if (year > INT64_MAX / 400) year = INT64_MAX / 400; /* far beyond any date: saturate */
    if (year < INT64_MIN / 400) year = INT64_MIN / 400;
    __int128 day_count = (__int128)days_to_month_start((int64_t)year, month) + tm.tm_mday - 1 + days;
    int64_t wall = clamp64(day_count * SECS_PER_DAY + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
    if (!in_local_zone(t, zone)) return (cr_time){.sec = wall - t->offset, .nsec = t->nsec, .offset = t->offset};
    /* Go's Date in a zone with rules: guess with the offset at the wall
     * clock read as UTC, then take the offset in force at the guess. */
    int32_t offset = zone(wall);
    if (offset != 0) offset = zone(wall - offset);
    int64_t sec = wall - offset;
    return (cr_time){.sec = sec, .nsec = t->nsec, .offset = zone(sec)};
}

cr_time cr_forget_within_cutoff(const cr_time *latest, const cr_forget_duration *d, cr_forget_zone zone)
{
    cr_time t = cr_forget_add_date(latest, -d->years, -d->months, -d->days, zone);
    /* time.Hour * time.Duration(-hours): int64 nanoseconds, wrapping as Go's does */
    int64_t ns = (int64_t)((uint64_t)3600 * (uint64_t)NSEC_PER_SEC * (0 - (uint64_t)d->hours));
    int64_t nsec = t.nsec + ns % NSEC_PER_SEC;
    t.sec += ns / NSEC_PER_SEC + floor_div(nsec, NSEC_PER_SEC);
    t.nsec = (int32_t)(nsec - floor_div(nsec, NSEC_PER_SEC) * NSEC_PER_SEC);
    return t;
}

/* ---- sorting --------------------------------------------------------------- */

/* Merge sort: stable, like the sort.Stable restic 0.14 uses; only the
 * stability matters for the result, not Go's algorithm. */
static void merge_sort(const cr_snapshot **v, const cr_snapshot **tmp, size_t n)
{
    if (n < 2) return;
    size_t half = n / 2;
    merge_sort(v, tmp, half);
    merge_sort(v + half, tmp, n - half);
    size_t i = 0, j = half, k = 0;
    while (i < half && j < n) /* take the right one only when strictly newer */
        tmp[k++] = cr_time_cmp(&v[j]->time, &v[i]->time) > 0 ? v[j++] : v[i++];
    while (i < half) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

void cr_forget_sort_newest_first(const cr_snapshot **v, size_t n)
{
    const cr_snapshot **tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) { /* insertion sort needs no memory and is just as stable */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && cr_time_cmp(&v[j]->time, &v[j - 1]->time) > 0; j--) {
                const cr_snapshot *x = v[j];
                v[j] = v[j - 1];
                v[j - 1] = x;
            }
        return;
    }
    merge_sort(v, tmp, n);
    free(tmp);
}

/* ---- applying the policy ------------------------------------------------------ */

typedef int64_t (*bucket_fn)(const cr_time *t);
static const bucket_fn within_buckets[CR_WITHIN_NBUCKETS] = {cr_forget_bucket_hour, cr_forget_bucket_day,
                                                             cr_forget_bucket_week, cr_forget_bucket_month,
                                                             cr_forget_bucket_year};

typedef struct {
    const cr_forget_policy *p;
    int64_t left[CR_KEEP_NCOUNTED];
    int64_t last[CR_KEEP_NCOUNTED];
    int64_t within_last[CR_WITHIN_NBUCKETS];
    cr_time within_cutoff;                       /* --keep-within */
    cr_time bucket_cutoff[CR_WITHIN_NBUCKETS];   /* --keep-within-<bucket> */
    cr_buf words; /* reasons of the current snapshot, NUL-separated */
    size_t nwords;
} policy_state;

static int add_reason(policy_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_reason(policy_state *st, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    st->nwords++;
    return cr_buf_append(&st->words, line, strlen(line) + 1);
}

/* restic 0.14's HasTags: all tags of the list; an empty tag matches an
 * untagged snapshot right away. */
static bool has_tags(const cr_snapshot *sn, const cr_tag_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!l->tags[i][0] && sn->ntags == 0) return true;
        if (!cr_snapshot_has_tag(sn, l->tags[i])) return false;
    }
    return true;
}

/* The newest snapshot time that is not in the future; Go's zero time
 * (0001-01-01 UTC) when there is none. */
static cr_time find_latest(const cr_snapshot *const *sorted, size_t n, const cr_time *now)
{
    cr_time latest = {.sec = -62135596800LL, .nsec = 0, .offset = 0};
    for (size_t i = 0; i < n; i++)
        if (cr_time_cmp(&sorted[i]->time, &latest) > 0 && cr_time_cmp(&sorted[i]->time, now) < 0) latest = sorted[i]->time;
    return latest;
}

/* The cut-offs are measured from the group's latest snapshot, once. */
static void set_cutoffs(policy_state *st, const cr_snapshot *const *sorted, size_t n, const cr_time *now,
                        cr_forget_zone zone)
{
    cr_time latest = find_latest(sorted, n, now);
    st->within_cutoff = cr_forget_within_cutoff(&latest, &st->p->within, zone);
    for (int i = 0; i < CR_WITHIN_NBUCKETS; i++)
        st->bucket_cutoff[i] = cr_forget_within_cutoff(&latest, &st->p->within_bucket[i], zone);
}

static bool after(const cr_snapshot *sn, const cr_time *cutoff)
{
    return cr_time_cmp(&sn->time, cutoff) > 0;
}

static int64_t counted_bucket(int rule, const cr_time *t, size_t nr)
{
    switch (rule) {
    case CR_KEEP_LAST: return (int64_t)nr; /* every snapshot its own bucket */
    case CR_KEEP_HOURLY: return cr_forget_bucket_hour(t);
    case CR_KEEP_DAILY: return cr_forget_bucket_day(t);
    case CR_KEEP_WEEKLY: return cr_forget_bucket_week(t);
    case CR_KEEP_MONTHLY: return cr_forget_bucket_month(t);
    default: return cr_forget_bucket_year(t);
    }
}

/* Every rule in restic's order; the reasons are collected in st->words. */
static int evaluate(policy_state *st, const cr_snapshot *sn, size_t nr, bool *keep)
{
    const cr_forget_policy *p = st->p;
    char d[128];
    *keep = false;
    for (size_t i = 0; i < p->nkeep_tags; i++) {
        if (!has_tags(sn, &p->keep_tags[i])) continue;
        cr_buf l = CR_BUF_INIT;
        int e = put_tag_list(&l, &p->keep_tags[i]);
        if (e >= 0) e = cr_buf_nul(&l);
        if (e >= 0) e = add_reason(st, "has tags %s", (const char *)l.data);
        cr_buf_free(&l);
        CR_TRY(e);
        *keep = true;
    }
    if (!cr_forget_duration_zero(&p->within) && after(sn, &st->within_cutoff)) {
        cr_forget_format_duration(&p->within, d, sizeof d);
        CR_TRY(add_reason(st, "within %s", d));
        *keep = true;
    }
    for (int i = 0; i < CR_KEEP_NCOUNTED; i++) {
        if (!p->unlimited[i] && st->left[i] <= 0) continue;
        int64_t val = counted_bucket(i, &sn->time, nr);
        if (val == st->last[i]) continue;
        st->last[i] = val;
        if (!p->unlimited[i]) st->left[i]--;
        CR_TRY(add_reason(st, "%s", count_reasons[i]));
        *keep = true;
    }
    for (int i = 0; i < CR_WITHIN_NBUCKETS; i++) {
        const cr_forget_duration *w = &p->within_bucket[i];
        if (cr_forget_duration_zero(w) || !after(sn, &st->bucket_cutoff[i])) continue;
        int64_t val = within_buckets[i](&sn->time);
        if (val == st->within_last[i]) continue;
        st->within_last[i] = val;
        cr_forget_format_duration(w, d, sizeof d);
        CR_TRY(add_reason(st, "%s within %s", within_words[i], d));
        *keep = true;
    }
    return 0;
}

static int take_reason(policy_state *st, const cr_snapshot *sn, cr_forget_reason *r)
{
    memset(r, 0, sizeof *r);
    r->sn = sn;
    if (!(r->matches = calloc(st->nwords + 1, sizeof *r->matches))) return cr_error(-ENOMEM, "out of memory");
    const char *w = (const char *)st->words.data;
    for (size_t i = 0; i < st->nwords; i++, w += strlen(w) + 1) {
        if (!(r->matches[i] = strdup(w))) return cr_error(-ENOMEM, "out of memory");
        r->nmatches++;
    }
    for (int i = 0; i < CR_KEEP_NCOUNTED; i++) r->counters[i] = st->p->unlimited[i] ? -1 : st->left[i];
    return 0;
}

static int alloc_result(size_t n, cr_forget_result *out)
{
    memset(out, 0, sizeof *out);
    out->keep = calloc(n + 1, sizeof *out->keep);
    out->remove = calloc(n + 1, sizeof *out->remove);
    out->reasons = calloc(n + 1, sizeof *out->reasons);
    if (!out->keep || !out->remove || !out->reasons) {
        cr_forget_result_free(out);
        return cr_error(-ENOMEM, "out of memory");
    }
    return 0;
}

static int keep_all(const cr_snapshot **sorted, size_t n, cr_forget_result *out)
{
    for (size_t i = 0; i < n; i++) {
        cr_forget_reason *r = &out->reasons[out->nkeep];
        out->keep[out->nkeep++] = sorted[i];
        r->sn = sorted[i];
        if (!(r->matches = calloc(2, sizeof *r->matches)) || !(r->matches[0] = strdup("policy is empty")))
            return cr_error(-ENOMEM, "out of memory");
        r->nmatches = 1;
    }
    return 0;
}

static int apply_sorted(const cr_snapshot **sorted, size_t n, const cr_forget_policy *p, const cr_time *now,
                        cr_forget_zone zone, cr_forget_result *out)
{
    if (cr_forget_policy_empty(p)) return keep_all(sorted, n, out);
    if (n == 0) return 0;
    policy_state st = {.p = p};
    set_cutoffs(&st, sorted, n, now, zone);
    for (int i = 0; i < CR_KEEP_NCOUNTED; i++) st.left[i] = p->count[i], st.last[i] = -1;
    for (int i = 0; i < CR_WITHIN_NBUCKETS; i++) st.within_last[i] = -1;
    int e = 0;
    for (size_t nr = 0; nr < n && e >= 0; nr++) {
        bool keep;
        cr_buf_reset(&st.words);
        st.nwords = 0;
        e = evaluate(&st, sorted[nr], nr, &keep);
        if (e >= 0 && keep) {
            out->keep[out->nkeep] = sorted[nr];
            e = take_reason(&st, sorted[nr], &out->reasons[out->nkeep++]);
        } else if (e >= 0) {
            out->remove[out->nremove++] = sorted[nr];
        }
    }
    cr_buf_free(&st.words);
    return e;
}

int cr_forget_apply(const cr_snapshot *const *group, size_t n, const cr_forget_policy *p, const cr_time *now,
                    cr_forget_zone zone, cr_forget_result *out)
{
    CR_TRY(alloc_result(n, out));
    const cr_snapshot **sorted = calloc(n + 1, sizeof *sorted);
    if (!sorted) {
        cr_forget_result_free(out);
        return cr_error(-ENOMEM, "out of memory");
    }
    memcpy(sorted, group, n * sizeof *sorted);
    cr_forget_sort_newest_first(sorted, n);
    int e = apply_sorted(sorted, n, p, now, zone, out);
    free(sorted);
    if (e < 0) cr_forget_result_free(out);
    return e;
}

void cr_forget_result_free(cr_forget_result *r)
{
    if (r->reasons)
        for (size_t i = 0; i < r->nkeep; i++) {
            for (size_t k = 0; k < r->reasons[i].nmatches; k++) free(r->reasons[i].matches[k]);
            free(r->reasons[i].matches);
        }
    free(r->keep);
    free(r->remove);
    free(r->reasons);
    memset(r, 0, sizeof *r);
}
