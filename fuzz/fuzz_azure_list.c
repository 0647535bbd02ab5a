/* Fuzz the Azure List Blobs answer parser: any input gives 0 or a negative
 * code, every name handed out is a 64-hex ID, and the next-page marker is a
 * NUL-terminated string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/azure.h"
#include "util/id.h"

static int on_entry(void *ud, const char *name, uint64_t size)
{
    (void)size;
    if (!cr_is_hex_name(name, strlen(name))) abort();
    (*(unsigned *)ud)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_buf next = CR_BUF_INIT;
    unsigned n = 0;
    int r = cr_azure_parse_listing(data, size, on_entry, &n, &next);
    if (r > 0) abort();
    if (r == 0 && (!next.data || strlen((const char *)next.data) != next.len)) abort();
    cr_buf_free(&next);
    return 0;
}
