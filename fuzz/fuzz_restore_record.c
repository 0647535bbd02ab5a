/* libFuzzer target for the restore record (repo/restore_record.h), which a
 * backup reads back from the workspace's data dir:
 *  - cr_restore_record_parse accepts or fails with CR_E_FORMAT;
 *  - a parsed record holds at most one entry per input byte and answers
 *    look-ups of any path (here: every line of the input) without reading
 *    outside what it holds (ASan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "repo/restore_record.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_restore_record *rec = NULL;
    int r = cr_restore_record_parse((const char *)data, size, &rec);
    if (r < 0) {
        if (r != CR_E_FORMAT || rec) abort();
        cr_error_clear();
        return 0;
    }
    if (cr_restore_record_count(rec) > size) abort();
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = 1;
    cr_id content = {{0}};
    cr_node prev = {.type = CR_NODE_FILE, .content = &content, .ncontent = 1};
    char path[512];
    for (size_t off = 0; off < size;) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (data + off)) : size - off;
        size_t k = n < sizeof path - 1 ? n : sizeof path - 1;
        memcpy(path, data + off, k);
        path[k] = 0;
        (void)cr_restore_record_vouches(rec, path, &st, &prev);
        off += n + 1;
    }
    cr_restore_record_free(rec);
    return 0;
}
