#include "util/gotime.h"
#include "util/error.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#define SECS_PER_DAY 86400
#define NSEC_PER_SEC 1000000000

/* ---- Calendar arithmetic --------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to a proleptic Gregorian date.  Years are counted
 * from March so that the leap day is the last day of a counting year, which
 * makes every month offset a fixed linear function; the 400-year cycle
 * (146097 days) repeats exactly, so any year works without timegm(). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    if (m <= 2) y--;
    int64_t cycle = floor_div(y, 400);
    int64_t year_of_cycle = y - cycle * 400;                     /* 0..399 */
    int month_from_march = (m + 9) % 12;                         /* Mar = 0 */
    int64_t day_of_year = (153 * month_from_march + 2) / 5 + d - 1; /* 0..365 */
    int64_t day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    return cycle * 146097 + day_of_cycle - 719468; /* 719468: 0000-03-01 .. 1970-01-01 */
}

typedef struct {
    int64_t year;
    int month, day, yday; /* 1..12, 1..31, 0..365 (from January 1st) */
} civil_date;

/* Inverse of days_from_civil(). */
static civil_date civil_from_days(int64_t days)
{
    int64_t z = days + 719468;
    int64_t cycle = floor_div(z, 146097);
    int64_t day_of_cycle = z - cycle * 146097; /* 0..146096 */
    /* Remove the leap days seen so far to find the counting year. */
    int64_t year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36524 - day_of_cycle / 146096) / 365;
    int64_t day_of_year = day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    int month_from_march = (int)((5 * day_of_year + 2) / 153);
    civil_date c;
    c.day = (int)(day_of_year - (153 * month_from_march + 2) / 5 + 1);
    c.month = month_from_march < 10 ? month_from_march + 3 : month_from_march - 9;
    c.year = year_of_cycle + cycle * 400 + (c.month <= 2);
    /* Day of the calendar year: March-based day minus Jan+Feb, or plus them. */
    int jan_feb = 59 + is_leap(c.year);
    c.yday = (int)(c.month <= 2 ? day_of_year - 306 : day_of_year + jan_feb);
    return c;
}

/* ---- Parsing ----------------------------------------------------------- */

/* Exactly `digits` ASCII digits at s; -1 otherwise. */
static int fixed_num(const char *s, int digits)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int bad_time(const char *s, size_t n, const char *why)
{
    return cr_error(CR_E_FORMAT, "invalid time \"%.*s\": %s", (int)(n > 64 ? 64 : n), s, why);
}

/* Fraction after '.': 1..9 digits; returns the characters consumed or -1. */
static int parse_fraction(const char *s, size_t n, int32_t *nsec)
{
    int digits = 0;
    int32_t v = 0;
    while ((size_t)digits < n && s[digits] >= '0' && s[digits] <= '9') {
        if (digits == 9) return -1;
        v = v * 10 + (s[digits] - '0');
        digits++;
    }
    if (digits == 0) return -1;
    for (int i = digits; i < 9; i++) v *= 10;
    *nsec = v;
    return digits;
}

/* "Z" or "±HH:MM" making up all of s[0..n). */
static int parse_zone(const char *s, size_t n, int32_t *offset)
{
    if (n == 1 && s[0] == 'Z') {
        *offset = 0;
        return 0;
    }
    if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return -1;
    int hh = fixed_num(s + 1, 2), mm = fixed_num(s + 4, 2);
    if (hh < 0 || mm < 0 || hh > 23 || mm > 59) return -1;
    *offset = (s[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return 0;
}

int cr_time_parse(const char *s, size_t n, cr_time *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    const size_t base_len = sizeof shape - 1;
    if (n < base_len + 1) return bad_time(s, n, "too short");
    for (size_t i = 0; i < base_len; i++) {
        bool ok = shape[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == shape[i];
        if (!ok) return bad_time(s, n, "not YYYY-MM-DDTHH:MM:SS");
    }
    int year = fixed_num(s, 4), month = fixed_num(s + 5, 2), day = fixed_num(s + 8, 2);
    int hour = fixed_num(s + 11, 2), min = fixed_num(s + 14, 2), sec = fixed_num(s + 17, 2);
    if (month < 1 || month > 12) return bad_time(s, n, "month out of range");
    if (day < 1 || day > days_in_month(year, month)) return bad_time(s, n, "day out of range");
    if (hour > 23) return bad_time(s, n, "hour out of range");
    if (min > 59) return bad_time(s, n, "minute out of range");
    if (sec > 59) return bad_time(s, n, "second out of range");

    size_t pos = base_len;
    int32_t nsec = 0;
    if (s[pos] == '.') {
        int used = parse_fraction(s + pos + 1, n - pos - 1, &nsec);
        if (used < 0) return bad_time(s, n, "fraction must have 1 to 9 digits");
        pos += 1 + (size_t)used;
    }
    int32_t offset;
    if (parse_zone(s + pos, n - pos, &offset) < 0) return bad_time(s, n, "zone must be Z or +HH:MM / -HH:MM");

    int64_t days = days_from_civil(year, month, day);
    t->sec = days * SECS_PER_DAY + hour * 3600 + min * 60 + sec - offset;
    t->nsec = nsec;
    t->offset = offset;
    return 0;
}

/* ---- Formatting -------------------------------------------------------- */

typedef struct {
    civil_date date;
    int hour, min, sec;
    int64_t days; /* since 1970-01-01, local */
} wall_clock;

static bool wall_clock_of(const cr_time *t, wall_clock *w)
{
    int64_t local;
    if (__builtin_add_overflow(t->sec, (int64_t)t->offset, &local)) return false;
    w->days = floor_div(local, SECS_PER_DAY);
    int64_t of_day = local % SECS_PER_DAY; /* not local - days * 86400: overflows at INT64_MIN */
    if (of_day < 0) of_day += SECS_PER_DAY;
    w->date = civil_from_days(w->days);
    w->hour = (int)(of_day / 3600);
    w->min = (int)(of_day / 60 % 60);
    w->sec = (int)(of_day % 60);
    return true;
}

/* Go writes the zone in whole minutes, truncated toward zero, and "Z" only
 * for an offset of exactly 0. */
static int format_zone(cr_buf *b, int32_t offset)
{
    if (offset == 0) return cr_buf_putc(b, 'Z');
    int32_t minutes = offset / 60;
    char sign = '+';
    if (minutes < 0) {
        sign = '-';
        minutes = -minutes;
    }
    int hours = (int)(minutes / 60), mins = (int)(minutes % 60);
    if (hours > 99) return cr_buf_printf(b, "%c%02d:%02d", sign, hours, mins);
    char z[6] = {sign, (char)('0' + hours / 10), (char)('0' + hours % 10), ':', (char)('0' + mins / 10),
                 (char)('0' + mins % 10)};
    return cr_buf_append(b, z, sizeof z);
}

static int format_fraction(cr_buf *b, int32_t nsec)
{
    if (nsec == 0) return 0;
    char digits[10];
    int len = 9;
    for (int i = 8; i >= 0; i--, nsec /= 10) digits[i] = (char)('0' + nsec % 10);
    while (digits[len - 1] == '0') len--;
    CR_TRY(cr_buf_putc(b, '.'));
    return cr_buf_append(b, digits, (size_t)len);
}

int cr_time_format(cr_buf *b, const cr_time *t)
{
    if (t->nsec < 0 || t->nsec >= NSEC_PER_SEC)
        return cr_error(CR_E_FORMAT, "time has invalid nanoseconds %d", (int)t->nsec);
    wall_clock w;
    if (!wall_clock_of(t, &w) || w.date.year < 0 || w.date.year > 9999)
        return cr_error(CR_E_FORMAT, "time year outside of range [0,9999]");
    /* by hand, not printf: every node of every tree carries three times */
    char d[19];
    int year = (int)w.date.year;
    d[0] = (char)('0' + year / 1000), d[1] = (char)('0' + year / 100 % 10);
    d[2] = (char)('0' + year / 10 % 10), d[3] = (char)('0' + year % 10);
    const int parts[5] = {w.date.month, w.date.day, w.hour, w.min, w.sec};
    const char seps[5] = {'-', '-', 'T', ':', ':'};
    for (int i = 0; i < 5; i++) {
        d[4 + 3 * i] = seps[i];
        d[5 + 3 * i] = (char)('0' + parts[i] / 10);
        d[6 + 3 * i] = (char)('0' + parts[i] % 10);
    }
    CR_TRY(cr_buf_append(b, d, sizeof d));
    CR_TRY(format_fraction(b, t->nsec));
    return format_zone(b, t->offset);
}

void cr_time_civil(const cr_time *t, struct tm *tm)
{
    cr_time shifted = *t;
    wall_clock w;
    if (!wall_clock_of(&shifted, &w)) { /* only at the int64 edge: ignore the offset */
        shifted.offset = 0;
        wall_clock_of(&shifted, &w);
    }
    memset(tm, 0, sizeof *tm);
    int64_t tm_year = w.date.year - 1900;
    tm->tm_year = tm_year > INT_MAX ? INT_MAX : tm_year < INT_MIN ? INT_MIN : (int)tm_year;
    tm->tm_mon = w.date.month - 1;
    tm->tm_mday = w.date.day;
    tm->tm_hour = w.hour;
    tm->tm_min = w.min;
    tm->tm_sec = w.sec;
    tm->tm_yday = w.date.yday;
    int64_t wday = (w.days + 4) % 7; /* 1970-01-01 was a Thursday */
    tm->tm_wday = (int)(wday < 0 ? wday + 7 : wday);
    tm->tm_isdst = 0;
    tm->tm_gmtoff = shifted.offset;
    tm->tm_zone = NULL;
}

/* ---- Local zone, comparison -------------------------------------------- */

cr_time cr_time_local(int64_t sec, int32_t nsec)
{
    if (nsec < 0 || nsec >= NSEC_PER_SEC) {
        int64_t carry = floor_div(nsec, NSEC_PER_SEC);
        sec += carry;
        nsec = (int32_t)(nsec - carry * NSEC_PER_SEC);
    }
    cr_time t = {.sec = sec, .nsec = nsec, .offset = 0};
    /* localtime_r() need not notice a changed TZ; tzset() re-reads it. */
    tzset();
    time_t tt = (time_t)sec;
    struct tm tm;
    if ((int64_t)tt == sec && localtime_r(&tt, &tm)) t.offset = (int32_t)tm.tm_gmtoff;
    return t;
}

cr_time cr_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return cr_time_local(ts.tv_sec, (int32_t)ts.tv_nsec);
}

int cr_time_cmp(const cr_time *a, const cr_time *b)
{
    if (a->sec != b->sec) return a->sec < b->sec ? -1 : 1;
    if (a->nsec != b->nsec) return a->nsec < b->nsec ? -1 : 1;
    return 0;
}
