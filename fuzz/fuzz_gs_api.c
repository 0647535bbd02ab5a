/* libFuzzer target for the GCS JSON API answers (backends/gs.h): object
 * metadata, object list pages, error documents and the Range header of a
 * resumable upload.  Anything is accepted or
 * refused with CR_E_FORMAT (or -ENOMEM), never a crash or leak; every listed
 * name is a NUL-terminated string without inner NULs; a page token, when
 * returned, is a non-empty string; error messages are printable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/gs.h"
#include "util/error.h"

static int on_item(void *ud, const char *name, uint64_t size)
{
    size_t *count = ud;
    (void)size;
    if (!name) abort();
    (void)strlen(name);
    return ++*count > 100000 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    uint64_t n;
    int r = cr_gs_parse_object(text, size, &n);
    if (r != 0 && r != CR_E_FORMAT && r != -ENOMEM) abort();

    size_t count = 0;
    char *token = NULL;
    r = cr_gs_parse_list(text, size, on_item, &count, &token);
    if (r != 0 && r != 1 && r != CR_E_FORMAT && r != -ENOMEM) abort();
    if (token && (r != 0 || !token[0])) abort();
    free(token);

    /* the first bytes as a resumable upload's Range header value */
    char range[64];
    size_t rn = size < sizeof range - 1 ? size : sizeof range - 1;
    memcpy(range, data, rn);
    range[rn] = 0;
    uint64_t held = 0;
    r = cr_gs_parse_range(range, 1u << 30, &held);
    if (r != 0 && r != CR_E_FORMAT) abort();
    if (r == 0 && (held == 0 || held > (1u << 30))) abort();

    char msg[64];
    cr_gs_error_message(text, size, msg, sizeof msg);
    for (const char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) abort();
    return 0;
}
