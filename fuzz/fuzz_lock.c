/* libFuzzer target for lock files (spec §14).
 *  - cr_lock_parse accepts or fails with CR_E_FORMAT, leaving the struct
 *    cleared;
 *  - a parsed lock always encodes; the encoding parses to the same lock
 *    (host and user names compared as Go's writer sees C strings), and
 *    encoding is idempotent from the second round on;
 *  - cr_lock_is_stale runs on it (as another host, and as the lock's own
 *    host: kill(pid, 0) only probes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/lock.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/goquote.h"

static void lossy(cr_buf *out, const char *s)
{
    cr_buf_reset(out);
    if (!s) s = "";
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t rune;
        int k = cr_utf8_decode((const uint8_t *)s + i, n - i, &rune);
        if (k <= 0) {
            if (cr_buf_append(out, "\xef\xbf\xbd", 3) < 0) abort();
            i++;
        } else {
            if (cr_buf_append(out, s + i, (size_t)k) < 0) abort();
            i += (size_t)k;
        }
    }
}

static void same_str(const char *a, const char *b)
{
    cr_buf x = CR_BUF_INIT, y = CR_BUF_INIT;
    lossy(&x, a);
    lossy(&y, b);
    if (x.len != y.len || (x.len && memcmp(x.data, y.data, x.len) != 0)) abort();
    cr_buf_free(&x);
    cr_buf_free(&y);
}

static void same_lock(const cr_lock_info *a, const cr_lock_info *b)
{
    if (a->time.sec != b->time.sec || a->time.nsec != b->time.nsec || a->time.offset != b->time.offset) abort();
    if (a->exclusive != b->exclusive || a->pid != b->pid || a->uid != b->uid || a->gid != b->gid) abort();
    same_str(a->hostname, b->hostname);
    same_str(a->username, b->username);
}

static void round(const cr_lock_info *l, cr_buf *out, cr_lock_info *back)
{
    cr_buf_reset(out);
    if (cr_lock_encode(l, out) != 0) abort();
    if (cr_lock_parse((const char *)out->data, out->len, back) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_lock_info l;
    memset(&l, 0x5a, sizeof l);
    int r = cr_lock_parse((const char *)data, size, &l);
    if (r < 0) {
        if (r != CR_E_FORMAT || l.hostname || l.username) abort();
        cr_error_clear();
        return 0;
    }
    if (!l.hostname || !l.username) abort();
    (void)cr_lock_is_stale(&l, "fuzz-host-that-does-not-exist");
    (void)cr_lock_is_stale(&l, NULL);
    (void)cr_lock_is_stale(&l, l.hostname);
    cr_buf e1 = CR_BUF_INIT, e2 = CR_BUF_INIT, e3 = CR_BUF_INIT;
    cr_lock_info l1, l2, l3;
    round(&l, &e1, &l1);
    same_lock(&l, &l1);
    round(&l1, &e2, &l2);
    same_lock(&l1, &l2);
    round(&l2, &e3, &l3);
    if (e2.len != e3.len || memcmp(e2.data, e3.data, e2.len) != 0) abort();
    cr_lock_clear(&l);
    cr_lock_clear(&l1);
    cr_lock_clear(&l2);
    cr_lock_clear(&l3);
    cr_buf_free(&e1);
    cr_buf_free(&e2);
    cr_buf_free(&e3);
    return 0;
}
