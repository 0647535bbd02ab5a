/* Fuzz util/goquote: Quote then Unquote gives the input back; anything
 * Unquote accepts is stable under another Quote/Unquote round. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/goquote.h"

static void round_trip(const uint8_t *s, size_t n)
{
    cr_buf q = CR_BUF_INIT, u = CR_BUF_INIT;
    if (cr_goquote(&q, s, n) < 0) abort();
    for (size_t i = 0; i < q.len; i++) /* a valid Go string body */
        if (q.data[i] == '\n' || (q.data[i] == '"' && (i == 0 || q.data[i - 1] != '\\'))) abort();
    if (cr_gounquote(&u, (const char *)q.data, q.len) < 0) abort();
    if (u.len != n || (n && memcmp(u.data, s, n) != 0)) abort();
    cr_buf_free(&q);
    cr_buf_free(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    round_trip(data, size);
    cr_buf u = CR_BUF_INIT;
    if (cr_gounquote(&u, (const char *)data, size) == 0) round_trip(u.data, u.len);
    else if (u.len != 0) abort(); /* failure leaves the buffer as it was */
    cr_buf_free(&u);
    uint32_t r;
    int len = cr_utf8_decode(data, size, &r);
    if (len) {
        uint8_t enc[4];
        if (cr_utf8_encode(r, enc) != len || memcmp(enc, data, (size_t)len) != 0) abort();
        (void)cr_go_isprint(r);
    }
    return 0;
}
