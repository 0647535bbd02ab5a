/* Go time.Time in JSON: RFC 3339 with nanoseconds (spec §12.5). */
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
 * Years 0000..9999, dates before 1970 allowed. */
int cr_time_parse(const char *s, size_t n, cr_time *t);
/* Append Go's RFC3339Nano form (trailing fraction zeros dropped, Z for offset 0). */
int cr_time_format(cr_buf *b, const cr_time *t);
/* Wall-clock fields in the time's own offset. */
void cr_time_civil(const cr_time *t, struct tm *tm);
/* Now, in the local zone (TZ respected). */
cr_time cr_time_now(void);
/* The instant sec/nsec expressed in the local zone (TZ respected). */
cr_time cr_time_local(int64_t sec, int32_t nsec);
/* Compare instants: <0, 0, >0. */
int cr_time_cmp(const cr_time *a, const cr_time *b);

#endif
