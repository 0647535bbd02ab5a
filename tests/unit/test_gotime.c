/* util/gotime: RFC 3339 as Go's time.Time JSON, civil arithmetic, local zone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"
#include "util/gotime.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static cr_time parse_ok(const char *s)
{
    cr_time t;
    if (cr_time_parse(s, strlen(s), &t) != 0) fail_msg("refused '%s': %s", s, cr_error_message());
    return t;
}

static void expect_format(const cr_time *t, const char *want)
{
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_buf_puts(&b, "<"), 0);
    assert_int_equal(cr_time_format(&b, t), 0);
    if (b.len != strlen(want) + 1 || memcmp(b.data + 1, want, b.len - 1) != 0)
        fail_msg("formatted '%.*s', want '%s'", (int)b.len - 1, (char *)b.data + 1, want);
    cr_buf_free(&b);
}

/* Strings Go writes: each parses and formats back to itself. */
static void test_round_trip(void **state)
{
    (void)state;
    static const char *cases[] = {
        "2023-01-01T10:00:00Z",
        "2022-01-01T05:30:00.12+05:30",
        "2022-01-01T05:30:00.123456789+05:30",
        "2020-02-29T23:59:59.000000001Z",
        "2022-04-04T04:04:04.4Z",
        "2023-01-03T11:30:00-08:00",
        "1969-12-31T23:59:59.999999999-08:00",
        "1960-06-15T12:00:00.5+01:00",
        "1900-03-01T00:00:00+14:00",
        "1600-02-29T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0000-02-29T12:00:00+05:30",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z",
        "9999-12-31T23:59:59-12:00",
        "2000-02-29T12:00:00-00:30",
        "2024-06-30T23:59:59.5+23:59",
        "2038-01-19T03:14:08Z",
        "2262-04-11T23:47:16.854775807Z",
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        cr_time t = parse_ok(cases[i]);
        expect_format(&t, cases[i]);
    }
}

static void test_instants(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t sec;
        int32_t nsec, offset;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0, 0, 0},
        {"2023-01-01T10:00:00Z", 1672567200, 0, 0},
        {"2023-01-01T15:30:00+05:30", 1672567200, 0, 19800},
        {"2023-01-01T02:00:00-08:00", 1672567200, 0, -28800},
        {"1969-12-31T16:00:00-08:00", 0, 0, -28800},
        {"1969-12-31T23:59:59.999999999Z", -1, 999999999, 0},
        {"0001-01-01T00:00:00Z", -62135596800LL, 0, 0},
        {"0000-01-01T00:00:00Z", -62167219200LL, 0, 0},
        {"0000-01-01T00:00:00+01:00", -62167222800LL, 0, 3600},
        {"9999-12-31T23:59:59Z", 253402300799LL, 0, 0},
        {"2020-02-29T23:59:59.000000001Z", 1583020799, 1, 0},
        {"2022-01-01T05:30:00.12+05:30", 1640995200, 120000000, 19800},
        {"2023-01-01T10:00:00.5-00:00", 1672567200, 500000000, 0},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        cr_time t = parse_ok(cases[i].s);
        if (t.sec != cases[i].sec) fail_msg("%s: sec %lld want %lld", cases[i].s, (long long)t.sec, (long long)cases[i].sec);
        assert_int_equal(t.nsec, cases[i].nsec);
        assert_int_equal(t.offset, cases[i].offset);
    }
}

static void test_normalised_output(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"2023-01-01T10:00:00+00:00", "2023-01-01T10:00:00Z"},
        {"2023-01-01T10:00:00-00:00", "2023-01-01T10:00:00Z"},
        {"2023-01-01T10:00:00.500+00:00", "2023-01-01T10:00:00.5Z"},
        {"2023-01-01T10:00:00.100000000Z", "2023-01-01T10:00:00.1Z"},
        {"2023-01-01T10:00:00.000000000Z", "2023-01-01T10:00:00Z"},
        {"2023-01-01T10:00:00.0Z", "2023-01-01T10:00:00Z"},
        {"2023-01-01T10:00:00.000000010+01:00", "2023-01-01T10:00:00.00000001+01:00"},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        cr_time t = parse_ok(cases[i].in);
        expect_format(&t, cases[i].out);
    }
    /* Same instant, different zones: the zone is kept as written. */
    cr_time a = parse_ok("2023-01-01T10:00:00Z"), b = parse_ok("2023-01-01T15:30:00+05:30");
    assert_int_equal(cr_time_cmp(&a, &b), 0);
    expect_format(&b, "2023-01-01T15:30:00+05:30");
    b.offset = -3600;
    expect_format(&b, "2023-01-01T09:00:00-01:00");
}

static void test_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", "Z", "2023-01-01", "2023-01-01T10:00:00", "2023-01-01T10:00Z",
        "2023-01-01t10:00:00Z", "2023-01-01T10:00:00z", "2023-01-01 10:00:00Z", "2023-01-01_10:00:00Z",
        "2023-01-01T10:00:00.Z", "2023-01-01T10:00:00.1234567890Z", "2023-01-01T10:00:00,5Z",
        "2023-01-01T10:00:00.5", "2023-01-01T10:00:00.+01:00",
        "2023-1-01T10:00:00Z", "2023-01-1T10:00:00Z", "2023-01-01T1:00:00Z", "2023-01-01T10:0:00Z",
        "2023-01-01T10:00:0Z", "23-01-01T10:00:00Z", "20230-01-01T10:00:00Z", "-2023-01-01T10:00:00Z",
        "+2023-01-01T10:00:00Z", "2023/01/01T10:00:00Z", "2023-01-01T10.00.00Z",
        "2023-00-01T10:00:00Z", "2023-13-01T10:00:00Z", "2023-01-00T10:00:00Z", "2023-01-32T10:00:00Z",
        "2023-02-29T10:00:00Z", "1900-02-29T10:00:00Z", "2100-02-29T10:00:00Z", "2023-04-31T10:00:00Z",
        "2023-06-31T10:00:00Z", "2023-09-31T10:00:00Z", "2023-11-31T10:00:00Z",
        "2023-01-01T24:00:00Z", "2023-01-01T10:60:00Z", "2023-01-01T10:00:60Z", "2023-01-01T99:00:00Z",
        "2023-01-01T10:00:00+24:00", "2023-01-01T10:00:00+05:60", "2023-01-01T10:00:00+0530",
        "2023-01-01T10:00:00+05:3", "2023-01-01T10:00:00+05", "2023-01-01T10:00:00+05:30:00",
        "2023-01-01T10:00:00 +05:30", "2023-01-01T10:00:00+05:30 ", "2023-01-01T10:00:00Z ",
        " 2023-01-01T10:00:00Z", "2023-01-01T10:00:00ZZ", "2023-01-01T10:00:00+05:30Z",
        "2023-01-01T10:00:00UTC", "2023-01-01T10:00:00\xe2\x88\x92" "05:00", "2023-01-01T10:00:00*05:00",
        "2023-01-01T10:00:00+a5:00", "2023-01-01T10:00:00-05:-0", "2023-01-01T10:00:00.1a2Z",
        "\"2023-01-01T10:00:00Z\"", "2023-01-01T10:00:00.-1Z", "２023-01-01T10:00:00Z",
    };
    for (size_t i = 0; i < LEN(bad); i++) {
        cr_time t;
        if (cr_time_parse(bad[i], strlen(bad[i]), &t) != CR_E_FORMAT) fail_msg("accepted '%s'", bad[i]);
    }
    /* A NUL inside is not a terminator. */
    cr_time t;
    assert_int_equal(cr_time_parse("2023-01-01T10:00:00Z\0", 21, &t), CR_E_FORMAT);
    assert_int_equal(cr_time_parse("2023-01-01T10:00:00\0Z", 21, &t), CR_E_FORMAT);
}

static void test_format_limits(void **state)
{
    (void)state;
    cr_buf b = CR_BUF_INIT;
    cr_time t = {.sec = 253402300800LL}; /* 10000-01-01 */
    assert_int_equal(cr_time_format(&b, &t), CR_E_FORMAT);
    t = parse_ok("9999-12-31T23:00:00Z");
    t.offset = 7200; /* wall clock in year 10000 */
    assert_int_equal(cr_time_format(&b, &t), CR_E_FORMAT);
    t = (cr_time){.sec = -62167219201LL}; /* -0001-12-31T23:59:59Z */
    assert_int_equal(cr_time_format(&b, &t), CR_E_FORMAT);
    t = (cr_time){.sec = 0, .nsec = 1000000000};
    assert_int_equal(cr_time_format(&b, &t), CR_E_FORMAT);
    t.nsec = -1;
    assert_int_equal(cr_time_format(&b, &t), CR_E_FORMAT);
    t = (cr_time){.sec = INT64_MAX, .offset = 3600};
    assert_int_equal(cr_time_format(&b, &t), CR_E_FORMAT);
    assert_int_equal(b.len, 0);
    /* Offsets with seconds (LMT zones): wall clock uses them, the zone is
     * written in truncated minutes, as Go does. */
    t = (cr_time){.sec = 0, .offset = 5 * 3600 + 53 * 60 + 28};
    expect_format(&t, "1970-01-01T05:53:28+05:53");
    t.offset = -(0 * 3600 + 17 * 60 + 30);
    expect_format(&t, "1969-12-31T23:42:30-00:17");
    t.offset = -30;
    expect_format(&t, "1969-12-31T23:59:30+00:00");
    t.offset = 30;
    expect_format(&t, "1970-01-01T00:00:30+00:00");
    cr_buf_free(&b);
}

static void test_civil(void **state)
{
    (void)state;
    struct tm tm;
    cr_time t = parse_ok("2020-02-29T23:59:59.5+05:30");
    cr_time_civil(&t, &tm);
    assert_int_equal(tm.tm_year, 120);
    assert_int_equal(tm.tm_mon, 1);
    assert_int_equal(tm.tm_mday, 29);
    assert_int_equal(tm.tm_hour, 23);
    assert_int_equal(tm.tm_min, 59);
    assert_int_equal(tm.tm_sec, 59);
    assert_int_equal(tm.tm_yday, 59);
    assert_int_equal(tm.tm_wday, 6); /* Saturday */
    assert_int_equal(tm.tm_gmtoff, 19800);
    t = parse_ok("0000-12-31T00:00:00-01:00");
    cr_time_civil(&t, &tm);
    assert_int_equal(tm.tm_year, -1900);
    assert_int_equal(tm.tm_yday, 365); /* year 0 is a leap year */
    assert_int_equal(tm.tm_gmtoff, -3600);

    /* Every day of 0000..9999 against glibc's gmtime_r (64-bit time_t). */
    int64_t first = -62167219200LL, last = 253402300799LL;
    for (int64_t day = first / 86400; day * 86400 <= last; day++) {
        cr_time u = {.sec = day * 86400 + (day % 86400 + 86400) % 86400, .offset = 0};
        time_t tt = (time_t)u.sec;
        struct tm want;
        assert_non_null(gmtime_r(&tt, &want));
        cr_time_civil(&u, &tm);
        if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday ||
            tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec ||
            tm.tm_wday != want.tm_wday || tm.tm_yday != want.tm_yday)
            fail_msg("civil mismatch at %lld", (long long)u.sec);
        /* Formatting then parsing returns the instant. */
        if (day % 97 == 0) {
            cr_buf b = CR_BUF_INIT;
            cr_time back;
            assert_int_equal(cr_time_format(&b, &u), 0);
            assert_int_equal(cr_time_parse((char *)b.data, b.len, &back), 0);
            assert_int_equal(cr_time_cmp(&back, &u), 0);
            cr_buf_free(&b);
        }
    }
    /* The far edges do not crash. */
    t = (cr_time){.sec = INT64_MIN};
    cr_time_civil(&t, &tm);
    t = (cr_time){.sec = INT64_MAX, .offset = 3600};
    cr_time_civil(&t, &tm);
}

static void set_tz(const char *tz)
{
    if (tz) setenv("TZ", tz, 1);
    else unsetenv("TZ");
}

static void test_local_zone(void **state)
{
    (void)state;
    char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    cr_time winter = parse_ok("2023-01-15T12:00:00Z"), summer = parse_ok("2023-07-15T12:00:00Z");

    set_tz("IST-5:30"); /* POSIX form: no tzdata needed */
    cr_time t = cr_time_local(winter.sec, 5);
    assert_int_equal(t.offset, 19800);
    assert_int_equal(t.nsec, 5);
    expect_format(&t, "2023-01-15T17:30:00.000000005+05:30");

    set_tz("PST8PDT,M3.2.0,M11.1.0");
    assert_int_equal(cr_time_local(winter.sec, 0).offset, -8 * 3600);
    assert_int_equal(cr_time_local(summer.sec, 0).offset, -7 * 3600);
    t = cr_time_local(summer.sec, 0);
    expect_format(&t, "2023-07-15T05:00:00-07:00");

    set_tz("UTC0");
    t = cr_time_local(0, 0);
    expect_format(&t, "1970-01-01T00:00:00Z");

    set_tz("Asia/Kolkata"); /* with tzdata, if installed */
    t = cr_time_local(winter.sec, 0);
    if (t.offset != 0) assert_int_equal(t.offset, 19800);

    /* nsec normalisation */
    t = cr_time_local(10, -1);
    assert_true(t.sec == 9 && t.nsec == 999999999);
    t = cr_time_local(10, 2000000001);
    assert_true(t.sec == 12 && t.nsec == 1);

    set_tz("IST-5:30");
    cr_time now = cr_time_now();
    time_t wall = time(NULL);
    assert_true(now.sec >= wall - 2 && now.sec <= wall + 2);
    assert_true(now.nsec >= 0 && now.nsec < 1000000000);
    assert_int_equal(now.offset, 19800);

    set_tz(saved);
    tzset();
    free(saved);
}

static void test_compare(void **state)
{
    (void)state;
    cr_time a = parse_ok("2023-01-01T10:00:00.5Z");
    cr_time b = parse_ok("2023-01-01T11:00:00.5+01:00");
    cr_time c = parse_ok("2023-01-01T10:00:00.500000001Z");
    cr_time d = parse_ok("1969-01-01T10:00:00Z");
    assert_int_equal(cr_time_cmp(&a, &b), 0);
    assert_true(cr_time_cmp(&a, &c) < 0);
    assert_true(cr_time_cmp(&c, &a) > 0);
    assert_true(cr_time_cmp(&d, &a) < 0);
    assert_true(cr_time_cmp(&a, &d) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_instants),
        cmocka_unit_test(test_normalised_output),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_format_limits),
        cmocka_unit_test(test_civil),
        cmocka_unit_test(test_local_zone),
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
