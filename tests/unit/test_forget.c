/* repo/forget: bucket functions, ISO weeks, Go's AddDate, durations, ties
 * and the policy rules (spec §19, restic 0.14's decisions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo/forget.h"
#include "util/error.h"
#include "util/gotime.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static cr_time T(const char *s)
{
    cr_time t;
    if (cr_time_parse(s, strlen(s), &t) != 0) fail_msg("refused '%s': %s", s, cr_error_message());
    return t;
}

static void expect_time(const cr_time *got, const char *want)
{
    cr_time w = T(want);
    if (got->sec != w.sec || got->nsec != w.nsec || got->offset != w.offset) {
        cr_buf b = CR_BUF_INIT;
        cr_time_format(&b, got);
        cr_buf_nul(&b);
        fail_msg("got %s, want %s", (char *)b.data, want);
    }
}

/* ---- buckets ---------------------------------------------------------------- */

static void test_buckets_use_stored_offset(void **state)
{
    (void)state;
    /* 04:30 UTC on Jan 1st 2024, but still 2023 on the snapshot's wall clock */
    cr_time t = T("2023-12-31T23:30:00-05:00");
    assert_int_equal(cr_forget_bucket_hour(&t), 2023123123);
    assert_int_equal(cr_forget_bucket_day(&t), 20231231);
    assert_int_equal(cr_forget_bucket_week(&t), 202352);
    assert_int_equal(cr_forget_bucket_month(&t), 202312);
    assert_int_equal(cr_forget_bucket_year(&t), 2023);
    cr_time u = T("2024-01-01T04:30:00Z");
    assert_int_equal(cr_forget_bucket_hour(&u), 2024010104);
    assert_int_equal(cr_forget_bucket_day(&u), 20240101);
    assert_int_equal(cr_forget_bucket_week(&u), 202401);
    assert_int_equal(cr_forget_bucket_year(&u), 2024);
    cr_time v = T("2024-01-01T10:00:00.999999999+14:00");
    assert_int_equal(cr_forget_bucket_hour(&v), 2024010110);
    cr_time w = T("0001-01-01T00:00:00Z");
    assert_int_equal(cr_forget_bucket_hour(&w), 1010100);
    cr_time x = T("9999-12-31T23:59:59+05:30");
    assert_int_equal(cr_forget_bucket_hour(&x), 9999123123LL);
    assert_int_equal(cr_forget_bucket_week(&x), 999952);
}

/* ---- ISO weeks -------------------------------------------------------------- */

static void test_iso_week_year_ends(void **state)
{
    (void)state;
    static const struct {
        int y, m, d;
        int64_t iy;
        int w;
    } cases[] = {
        {2020, 12, 31, 2020, 53}, {2021, 1, 1, 2020, 53}, {2021, 1, 3, 2020, 53}, {2021, 1, 4, 2021, 1},
        {2018, 12, 31, 2019, 1},  {2024, 12, 29, 2024, 52}, {2024, 12, 30, 2025, 1}, {2015, 12, 31, 2015, 53},
        {2016, 1, 3, 2015, 53},   {2008, 12, 29, 2009, 1},  {2010, 1, 3, 2009, 53},  {2000, 1, 1, 1999, 52},
        {2026, 1, 1, 2026, 1},    {2027, 1, 1, 2026, 53},   {2004, 12, 31, 2004, 53}, {1970, 1, 1, 1970, 1},
        {1969, 12, 29, 1970, 1},  {1600, 1, 1, 1599, 52},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        int64_t iy;
        int w;
        cr_forget_iso_week(cases[i].y, cases[i].m, cases[i].d, &iy, &w);
        if (iy != cases[i].iy || w != cases[i].w)
            fail_msg("%04d-%02d-%02d: got %lld-W%02d, want %lld-W%02d", cases[i].y, cases[i].m, cases[i].d, (long long)iy, w,
                     (long long)cases[i].iy, cases[i].w);
    }
}

/* Every day of 1900..2100 against the C library's %G/%V. */
static void test_iso_week_against_libc(void **state)
{
    (void)state;
    for (time_t t = -2208988800LL; t < 4133980800LL; t += 86400) {
        struct tm tm;
        gmtime_r(&t, &tm);
        char g[16], v[8];
        strftime(g, sizeof g, "%G", &tm);
        strftime(v, sizeof v, "%V", &tm);
        int64_t iy;
        int w;
        cr_forget_iso_week(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, &iy, &w);
        if (iy != atoll(g) || w != atoi(v))
            fail_msg("%04d-%02d-%02d: got %lld-W%02d, libc %s-W%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     (long long)iy, w, g, v);
    }
}

/* ---- AddDate ----------------------------------------------------------------- */

static void test_add_date_normalisation(void **state)
{
    (void)state;
    static const struct {
        const char *from;
        int64_t y, m, d;
        const char *want;
    } cases[] = {
        {"2024-03-31T12:00:00Z", 0, -1, 0, "2024-03-02T12:00:00Z"},       /* Feb 31 of a leap year */
        {"2023-03-31T12:00:00Z", 0, -1, 0, "2023-03-03T12:00:00Z"},
        {"2023-01-31T08:15:00+05:30", 0, 1, 0, "2023-03-03T08:15:00+05:30"},
        {"2024-02-29T00:00:00Z", -1, 0, 0, "2023-03-01T00:00:00Z"},
        {"2024-01-15T10:00:00-07:00", 0, -13, 0, "2022-12-15T10:00:00-07:00"},
        {"2024-01-01T00:00:00Z", 0, 0, -1, "2023-12-31T00:00:00Z"},
        {"2024-03-01T23:59:59.5Z", 0, 0, -366, "2023-03-01T23:59:59.5Z"},
        {"2024-05-31T06:00:00+02:00", -1, -2, -3, "2023-03-28T06:00:00+02:00"},
        {"2024-01-31T00:00:00Z", 0, -25, 0, "2021-12-31T00:00:00Z"},
        {"2020-12-31T22:00:00-03:00", 0, 0, 1, "2021-01-01T22:00:00-03:00"},
        {"2024-06-15T12:00:00Z", 0, 18, 0, "2025-12-15T12:00:00Z"},
        {"0001-01-01T00:00:00Z", -1, 0, 0, "0000-01-01T00:00:00Z"},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        cr_time from = T(cases[i].from);
        cr_time got = cr_forget_add_date(&from, cases[i].y, cases[i].m, cases[i].d, NULL);
        expect_time(&got, cases[i].want);
    }
}

/* Random dates against timegm(), which normalises month then day overflow
 * the same way as Go's time.Date. */
static void test_add_date_against_timegm(void **state)
{
    (void)state;
    srand(5);
    for (int i = 0; i < 20000; i++) {
        int64_t sec = (int64_t)(rand() % 4000000) * 1000 - 1000000000LL;
        int32_t off = (rand() % 97 - 48) * 900;
        cr_time t = {.sec = sec, .nsec = rand() % 1000, .offset = off};
        int64_t y = rand() % 21 - 10, m = rand() % 41 - 20, d = rand() % 801 - 400;
        cr_time got = cr_forget_add_date(&t, y, m, d, NULL);
        time_t wall = (time_t)(sec + off);
        struct tm tm;
        gmtime_r(&wall, &tm);
        tm.tm_year += (int)y, tm.tm_mon += (int)m, tm.tm_mday += (int)d;
        int64_t want = (int64_t)timegm(&tm) - off;
        if (got.sec != want || got.nsec != t.nsec || got.offset != off)
            fail_msg("case %d: %lld%+d %+lldy%+lldm%+lldd: got %lld, want %lld", i, (long long)sec, off, (long long)y,
                     (long long)m, (long long)d, (long long)got.sec, (long long)want);
    }
}

/* A zone like Europe/Berlin in 2024: +01:00, +02:00 from 2024-03-31T01:00Z. */
static int32_t berlin_2024(int64_t unix_sec)
{
    return unix_sec >= 1711846800LL ? 7200 : 3600;
}

static void test_add_date_local_zone(void **state)
{
    (void)state;
    /* +02:00 is the local offset at that instant: Go computes in the zone,
     * and March 1st 00:30 local is +01:00 */
    cr_time latest = T("2024-04-01T00:30:00+02:00");
    cr_time got = cr_forget_add_date(&latest, 0, -1, 0, berlin_2024);
    expect_time(&got, "2024-03-01T00:30:00+01:00");
    /* without the zone: the fixed offset */
    got = cr_forget_add_date(&latest, 0, -1, 0, NULL);
    expect_time(&got, "2024-03-01T00:30:00+02:00");
    /* an offset that is not the local one then stays fixed */
    cr_time other = T("2024-04-01T00:30:00+01:00");
    got = cr_forget_add_date(&other, 0, -1, 0, berlin_2024);
    expect_time(&got, "2024-03-01T00:30:00+01:00");
    /* "Z" is UTC for Go, never the local zone */
    cr_time utc = T("2024-04-01T00:30:00Z");
    got = cr_forget_add_date(&utc, 0, -1, 0, berlin_2024);
    expect_time(&got, "2024-03-01T00:30:00Z");
    /* landing in the spring-forward gap (02:30 does not exist): Go moves on to 03:30 +02:00 */
    cr_time after = T("2024-04-01T02:30:00+02:00");
    got = cr_forget_add_date(&after, 0, 0, -1, berlin_2024);
    expect_time(&got, "2024-03-31T03:30:00+02:00");
}

static void test_within_cutoff(void **state)
{
    (void)state;
    cr_time latest = T("2024-03-31T12:00:00.25+05:30");
    cr_forget_duration d = {.months = 1, .hours = 25};
    cr_time got = cr_forget_within_cutoff(&latest, &d, NULL);
    expect_time(&got, "2024-03-01T11:00:00.25+05:30");
    cr_forget_duration neg = {.days = -1, .hours = -2};
    got = cr_forget_within_cutoff(&latest, &neg, NULL);
    expect_time(&got, "2024-04-01T14:00:00.25+05:30");
    /* hours beyond int64 nanoseconds wrap in Go: 2562048h is 9223372800e9 ns,
     * which wraps to a negative duration, i.e. the cut-off moves forward */
    cr_forget_duration huge = {.hours = 2562048};
    got = cr_forget_within_cutoff(&latest, &huge, NULL);
    assert_true(cr_time_cmp(&got, &latest) > 0);
}

/* ---- durations ----------------------------------------------------------------- */

static void test_parse_duration(void **state)
{
    (void)state;
    cr_forget_duration d;
    assert_int_equal(cr_forget_parse_duration("1y2m3d4h", &d), 0);
    assert_true(d.years == 1 && d.months == 2 && d.days == 3 && d.hours == 4);
    assert_int_equal(cr_forget_parse_duration(" 4h1y\t", &d), 0);
    assert_true(d.years == 1 && d.months == 0 && d.days == 0 && d.hours == 4);
    assert_int_equal(cr_forget_parse_duration("2d1d", &d), 0);
    assert_int_equal(d.days, 1);
    assert_int_equal(cr_forget_parse_duration("-1d0h", &d), 0);
    assert_int_equal(d.days, -1);
    assert_true(!cr_forget_duration_zero(&d));
    assert_int_equal(cr_forget_parse_duration("", &d), 0);
    assert_true(cr_forget_duration_zero(&d));
    assert_int_equal(cr_forget_parse_duration("0y0d", &d), 0);
    assert_true(cr_forget_duration_zero(&d));

    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"d", "no number found"},
        {"5", "no unit found after number 5"},
        {"5x", "invalid unit 'x' found after number 5"},
        {"1d 2h", "no number found"},
        {"-", "no number found"},
        {"--5d", "no number found"},
        {"3w", "invalid unit 'w' found after number 3"},
        {"3'", "invalid unit '\\'' found after number 3"},
        {"3\001", "invalid unit '\\x01' found after number 3"},
        {"99999999999999999999d", "number 99999999999999999999 out of range"},
    };
    for (size_t i = 0; i < LEN(bad); i++) {
        assert_int_equal(cr_forget_parse_duration(bad[i].in, &d), CR_E_USAGE);
        if (strcmp(cr_error_message(), bad[i].msg)) fail_msg("'%s': got '%s', want '%s'", bad[i].in, cr_error_message(), bad[i].msg);
    }
}

static void test_format_duration(void **state)
{
    (void)state;
    char s[64];
    cr_forget_format_duration(&(cr_forget_duration){.years = 1, .months = 2}, s, sizeof s);
    assert_string_equal(s, "1y2m");
    cr_forget_format_duration(&(cr_forget_duration){.days = -3, .hours = 12}, s, sizeof s);
    assert_string_equal(s, "-3d12h");
    cr_forget_format_duration(&(cr_forget_duration){0}, s, sizeof s);
    assert_string_equal(s, "");
}

/* ---- applying policies ------------------------------------------------------------- */

typedef struct {
    cr_snapshot v[64];
    const cr_snapshot *p[64];
    size_t n;
} group;

static void add(group *g, const char *time, const char *tags)
{
    cr_snapshot *s = &g->v[g->n];
    memset(s, 0, sizeof *s);
    s->time = T(time);
    s->id.b[0] = (uint8_t)g->n; /* the ID is the position in listing order */
    if (tags && *tags) {
        s->tags = calloc(8, sizeof *s->tags);
        for (const char *p = tags; *p;) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            s->tags[s->ntags++] = strndup(p, len);
            p += len + (c != NULL);
        }
    }
    g->p[g->n] = s;
    g->n++;
}

static void group_free(group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        for (size_t k = 0; k < g->v[i].ntags; k++) free(g->v[i].tags[k]);
        free(g->v[i].tags);
    }
}

static const cr_time NOW = {.sec = 1900000000, .nsec = 0, .offset = 0}; /* 2030-03-17 */

/* The listing positions of the kept snapshots, newest first: "3 1 0". */
static void expect_keep(group *g, const cr_forget_policy *p, const char *want)
{
    cr_forget_result r;
    assert_int_equal(cr_forget_apply(g->p, g->n, p, &NOW, NULL, &r), 0);
    char got[512] = "";
    size_t k = 0;
    for (size_t i = 0; i < r.nkeep; i++) k += (size_t)snprintf(got + k, sizeof got - k, "%s%d", i ? " " : "", r.keep[i]->id.b[0]);
    assert_int_equal(r.nkeep + r.nremove, g->n);
    cr_forget_result_free(&r);
    if (strcmp(got, want)) fail_msg("kept '%s', want '%s'", got, want);
}

static void test_ties_keep_listing_order(void **state)
{
    (void)state;
    group g = {.n = 0};
    for (int i = 0; i < 20; i++) add(&g, "2024-01-01T10:00:00Z", NULL);
    add(&g, "2024-01-01T11:00:00Z", NULL);
    for (int i = 0; i < 5; i++) add(&g, "2023-01-01T10:00:00Z", NULL);
    cr_forget_policy p = {0};
    p.count[CR_KEEP_LAST] = 4;
    expect_keep(&g, &p, "20 0 1 2");
    p.count[CR_KEEP_LAST] = 0;
    p.count[CR_KEEP_HOURLY] = 10;
    expect_keep(&g, &p, "20 0 21");
    p.count[CR_KEEP_HOURLY] = 0;
    p.count[CR_KEEP_YEARLY] = 10;
    expect_keep(&g, &p, "20 21");
    group_free(&g);
}

/* The same instant in different offsets sorts as a tie, but the wall
 * clocks fall into different days. */
static void test_same_instant_other_offsets(void **state)
{
    (void)state;
    group g = {.n = 0};
    add(&g, "2024-03-03T23:30:00Z", NULL);
    add(&g, "2024-03-04T00:30:00+01:00", NULL);
    add(&g, "2024-03-03T18:30:00-05:00", NULL);
    add(&g, "2024-03-04T05:00:00+05:30", NULL);
    cr_forget_policy p = {0};
    p.count[CR_KEEP_DAILY] = 10;
    expect_keep(&g, &p, "0 1 2 3");
    p.count[CR_KEEP_DAILY] = 0;
    p.count[CR_KEEP_MONTHLY] = 10;
    expect_keep(&g, &p, "0");
    group_free(&g);
}

static void test_rules(void **state)
{
    (void)state;
    group g = {.n = 0};
    add(&g, "2024-05-01T10:00:00Z", "a");         /* 0 */
    add(&g, "2024-05-01T09:00:00Z", "a,b");       /* 1 */
    add(&g, "2024-04-30T10:00:00Z", NULL);        /* 2 */
    add(&g, "2024-04-01T10:00:00Z", "b");         /* 3 */
    add(&g, "2023-12-31T10:00:00Z", NULL);        /* 4 */
    add(&g, "2031-01-01T00:00:00Z", NULL);        /* 5: in the future */
    cr_forget_policy p = {0};
    /* 0.14: a count <= 0 is off, but the policy is not empty: all removed */
    p.count[CR_KEEP_LAST] = -1;
    expect_keep(&g, &p, "");
    /* unlimited: one per bucket */
    p.count[CR_KEEP_LAST] = 0;
    p.unlimited[CR_KEEP_MONTHLY] = true;
    expect_keep(&g, &p, "5 0 2 4");
    p.unlimited[CR_KEEP_MONTHLY] = false;
    /* keep-within measures from the newest snapshot not in the future */
    p.within.days = 1;
    expect_keep(&g, &p, "5 0 1"); /* 2024-04-30T10:00 is not after the cut-off */
    p.within.days = 0;
    p.within.months = 1;
    expect_keep(&g, &p, "5 0 1 2");
    p.within.months = 0;
    /* keep-tag: all of a list, any list; "" matches untagged snapshots */
    assert_int_equal(cr_forget_policy_add_keep_tag(&p, "b, a"), 0);
    expect_keep(&g, &p, "1");
    assert_int_equal(cr_forget_policy_add_keep_tag(&p, ""), 0);
    expect_keep(&g, &p, "5 1 2 4");
    cr_forget_policy_clear(&p);
    /* the within-bucket rules */
    assert_int_equal(cr_forget_parse_duration("1m", &p.within_bucket[CR_WITHIN_DAILY]), 0);
    expect_keep(&g, &p, "5 0 2");
    cr_forget_policy_clear(&p);
    /* empty policy: everything, with "policy is empty" */
    cr_forget_result r;
    assert_int_equal(cr_forget_apply(g.p, g.n, &p, &NOW, NULL, &r), 0);
    assert_int_equal(r.nkeep, g.n);
    assert_string_equal(r.reasons[0].matches[0], "policy is empty");
    cr_forget_result_free(&r);
    group_free(&g);
}

/* All snapshots in the future: "latest" stays Go's zero time, every
 * snapshot is within any duration. */
static void test_all_in_future(void **state)
{
    (void)state;
    group g = {.n = 0};
    add(&g, "2040-01-01T00:00:00Z", NULL);
    add(&g, "2041-01-01T00:00:00Z", NULL);
    cr_forget_policy p = {0};
    p.within.hours = 1;
    expect_keep(&g, &p, "1 0");
    group_free(&g);
}

static void test_reasons_and_counters(void **state)
{
    (void)state;
    group g = {.n = 0};
    add(&g, "2024-05-01T10:00:00Z", "x");
    add(&g, "2024-05-01T09:00:00Z", NULL);
    add(&g, "2024-04-01T09:00:00Z", NULL);
    cr_forget_policy p = {0};
    p.count[CR_KEEP_LAST] = 1;
    p.count[CR_KEEP_DAILY] = 3;
    p.unlimited[CR_KEEP_YEARLY] = true;
    p.within.days = 2;
    assert_int_equal(cr_forget_parse_duration("1y", &p.within_bucket[CR_WITHIN_MONTHLY]), 0);
    assert_int_equal(cr_forget_policy_add_keep_tag(&p, "x"), 0);
    cr_forget_result r;
    assert_int_equal(cr_forget_apply(g.p, g.n, &p, &NOW, NULL, &r), 0);
    assert_int_equal(r.nkeep, 3);
    const char *want0[] = {"has tags [x]", "within 2d", "last snapshot", "daily snapshot", "yearly snapshot", "monthly within 1y"};
    assert_int_equal(r.reasons[0].nmatches, LEN(want0));
    for (size_t i = 0; i < LEN(want0); i++) assert_string_equal(r.reasons[0].matches[i], want0[i]);
    assert_int_equal(r.reasons[0].counters[CR_KEEP_LAST], 0);
    assert_int_equal(r.reasons[0].counters[CR_KEEP_DAILY], 2);
    assert_int_equal(r.reasons[0].counters[CR_KEEP_YEARLY], -1);
    assert_int_equal(r.reasons[1].nmatches, 1);
    assert_string_equal(r.reasons[1].matches[0], "within 2d");
    assert_int_equal(r.reasons[2].nmatches, 2);
    assert_string_equal(r.reasons[2].matches[0], "daily snapshot");
    assert_string_equal(r.reasons[2].matches[1], "monthly within 1y");
    assert_int_equal(r.reasons[2].counters[CR_KEEP_DAILY], 1);
    cr_forget_result_free(&r);

    cr_buf d = CR_BUF_INIT;
    assert_int_equal(cr_forget_policy_describe(&p, &d), 0);
    assert_string_equal((char *)d.data, "keep 1 latest, 3 daily, all yearly snapshots, monthly snapshots within 1y and "
                                        "all snapshots with tags [[x]] and all snapshots within 2d of the newest");
    cr_forget_policy_clear(&p);
    assert_int_equal(cr_forget_policy_add_keep_tag(&p, "a,b"), 0);
    assert_int_equal(cr_forget_policy_add_keep_tag(&p, "c"), 0);
    assert_int_equal(cr_forget_policy_describe(&p, &d), 0);
    assert_string_equal((char *)d.data, "keep all snapshots with tags [[a, b] [c]]");
    cr_buf_free(&d);
    cr_forget_policy_clear(&p);
    group_free(&g);
}

static void test_stable_sort(void **state)
{
    (void)state;
    /* interleaved ties, more than a small-array sort handles in one piece */
    group g = {.n = 0};
    static const char *times[] = {"2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"};
    for (int i = 0; i < 40; i++) add(&g, times[(i * 7) % 3], NULL);
    const cr_snapshot *v[64];
    memcpy(v, g.p, g.n * sizeof *v);
    cr_forget_sort_newest_first(v, g.n);
    for (size_t i = 1; i < g.n; i++) {
        int c = cr_time_cmp(&v[i - 1]->time, &v[i]->time);
        assert_true(c >= 0);
        if (c == 0) assert_true(v[i - 1]->id.b[0] < v[i]->id.b[0]);
    }
    group_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_use_stored_offset),
        cmocka_unit_test(test_iso_week_year_ends),
        cmocka_unit_test(test_iso_week_against_libc),
        cmocka_unit_test(test_add_date_normalisation),
        cmocka_unit_test(test_add_date_against_timegm),
        cmocka_unit_test(test_add_date_local_zone),
        cmocka_unit_test(test_within_cutoff),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_ties_keep_listing_order),
        cmocka_unit_test(test_same_instant_other_offsets),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_all_in_future),
        cmocka_unit_test(test_reasons_and_counters),
        cmocka_unit_test(test_stable_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
