/* libFuzzer target for the S3 answers the backend parses (backends/s3.h):
 * ListObjectsV2 pages and <Error> documents.  Anything is accepted or
 * refused with CR_E_FORMAT (or -ENOMEM), never a crash or leak; every listed
 * name is 64 lower-case hex; a continuation token, when returned, is a
 * non-empty string without inner NULs; error fields are printable lines. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/s3.h"
#include "util/error.h"

static int on_item(void *ud, const char *name, uint64_t size)
{
    size_t *count = ud;
    (void)size;
    if (!name || strlen(name) != 64 || strspn(name, "0123456789abcdef") != 64) abort();
    return ++*count > 100000 ? 1 : 0;
}

static void printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t count = 0;
    cr_buf token = CR_BUF_INIT;
    size_t prefix_len = size ? data[0] % 16 : 0;
    bool v1 = size > 1 && data[1] & 1;
    int r = cr_s3_parse_list(data, size, prefix_len, v1, on_item, &count, &token);
    if (r != 0 && r != 1 && r != CR_E_FORMAT && r != -ENOMEM) abort();
    if (!token.data) abort(); /* always NUL-terminated */
    if (token.len && (r != 0 || strlen((const char *)token.data) != token.len)) abort();
    cr_buf_free(&token);

    char code[32], msg[64];
    cr_s3_error_fields(data, size, code, sizeof code, msg, sizeof msg);
    printable(code);
    printable(msg);
    cr_error_clear();
    return 0;
}
