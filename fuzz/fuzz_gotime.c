/* Fuzz util/gotime: a parsed time formats and parses back to the same
 * instant and offset, and formatting is then a fixed point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/gotime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_time t, back;
    if (cr_time_parse((const char *)data, size, &t) != 0) return 0;
    if (t.nsec < 0 || t.nsec > 999999999) abort();
    cr_buf a = CR_BUF_INIT, b = CR_BUF_INIT;
    if (cr_time_format(&a, &t) != 0) abort(); /* any parsed wall year is 0..9999 */
    if (cr_time_parse((const char *)a.data, a.len, &back) != 0) abort();
    if (back.sec != t.sec || back.nsec != t.nsec || back.offset != t.offset) abort();
    if (cr_time_format(&b, &back) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
    struct tm tm;
    cr_time_civil(&t, &tm);
    if (tm.tm_gmtoff != t.offset || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) abort();
    cr_buf_free(&a);
    cr_buf_free(&b);
    return 0;
}
