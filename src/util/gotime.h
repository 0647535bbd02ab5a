/* Go time.Time in JSON: RFC 3339 with nanoseconds (spec §12.5).
 *
 * Civil dates use the proleptic Gregorian calendar with our own day
 * arithmetic, so any year 0000..9999 works regardless of time_t/timegm
 * limits.  The offset is kept as written: "+05:30" stays +05:30 on output,
 * "+00:00" and "-00:00" come back as "Z" (Go does the same).
 */
#ifndef CRESTIC_UTIL_GOTIME_H
#define CRESTIC_UTIL_GOTIME_H

#include <stdint.h>
#include <time.h>

#include "util/buf.h"

typedef struct {
    int64_t sec;    /* seconds since the Unix epoch (UTC instant)  */
    int32_t nsec;   /* 0..999999999                                 */
    int32_t offset; /* zone offset in seconds east of UTC, as written */
} cr_time;

/* Parse "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)"; CR_E_FORMAT otherwise.
 * Years 0000..9999, dates before 1970 allowed.  As Go: upper-case T and Z
 * only, day checked against the month (leap years included), hour 0..23,
 * minute and second 0..59 (no leap second).  Offsets must be 00..23:00..59.
 * Go 1.19's layout parser is laxer in ways no writer uses (one-digit hour,
 * ',' before the fraction, more than 9 fraction digits, offsets like
 * +99:99); those are refused here. */
int cr_time_parse(const char *s, size_t n, cr_time *t);
/* Append Go's RFC3339Nano form (trailing fraction zeros dropped, Z for
 * offset 0).  An offset with a seconds part (old LMT zones) is written as Go
 * does: wall clock with the full offset, zone truncated to minutes.
 * CR_E_FORMAT if the wall-clock year is outside 0..9999 (Go's MarshalJSON
 * refuses those too; restic clamps before encoding) or nsec is out of range. */
int cr_time_format(cr_buf *b, const cr_time *t);
/* Wall-clock fields in the time's own offset (tm_gmtoff = offset, tm_zone
 * NULL, tm_isdst 0, tm_wday/tm_yday filled). */
void cr_time_civil(const cr_time *t, struct tm *tm);
/* Now, in the local zone (TZ respected). */
cr_time cr_time_now(void);
/* The instant sec/nsec expressed in the local zone (TZ respected, re-read on
 * every call via tzset()).  nsec outside 0..999999999 is normalised. */
cr_time cr_time_local(int64_t sec, int32_t nsec);
/* Compare instants (the offset does not matter): <0, 0, >0. */
int cr_time_cmp(const cr_time *a, const cr_time *b);

#endif
