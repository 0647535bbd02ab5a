/* Fuzz backends/optparse (rclone.program/args and rclone.timeout values):
 * words that split are split again the same after being quoted back; a
 * duration that parses is finite and not negative. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/optparse.h"
#include "util/buf.h"

/* 'word' with each ' written as '\'' (a shell's own quoting). */
static void quote_back(const cr_strlist *l, cr_buf *out)
{
    for (size_t i = 0; i < l->n; i++) {
        if (cr_buf_puts(out, i ? " '" : "'") < 0) abort();
        for (const char *p = l->v[i]; *p; p++)
            if ((*p == '\'' ? cr_buf_puts(out, "'\\''") : cr_buf_append(out, p, 1)) < 0) abort();
        if (cr_buf_puts(out, "'") < 0) abort();
    }
    if (cr_buf_nul(out) < 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    cr_strlist a = {0}, b = {0};
    if (cr_shell_split(s, &a) == 0) {
        cr_buf q = CR_BUF_INIT;
        quote_back(&a, &q);
        if (cr_shell_split((const char *)q.data, &b) != 0 || b.n != a.n) abort();
        for (size_t i = 0; i < a.n; i++)
            if (strcmp(a.v[i], b.v[i])) abort();
        cr_buf_free(&q);
    }
    cr_strlist_free(&a);
    cr_strlist_free(&b);
    double secs;
    if (cr_parse_go_duration(s, &secs) == 0 && (!isfinite(secs) || secs < 0)) abort();
    free(s);
    return 0;
}
