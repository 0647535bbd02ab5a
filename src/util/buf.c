#include "util/buf.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cr_buf_reserve(cr_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return cr_error(-ENOMEM, "buffer size overflow");
    size_t need = b->len + extra + 1; /* +1 keeps room for a NUL */
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return cr_error(-ENOMEM, "out of memory (%zu bytes)", cap);
    b->data = p;
    b->cap = cap;
    return 0;
}

int cr_buf_resize(cr_buf *b, size_t len)
{
    if (len > b->len) CR_TRY(cr_buf_reserve(b, len - b->len));
    b->len = len;
    return 0;
}

int cr_buf_append(cr_buf *b, const void *p, size_t n)
{
    if (!n) return 0;
    CR_TRY(cr_buf_reserve(b, n));
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int cr_buf_putc(cr_buf *b, char c)
{
    CR_TRY(cr_buf_reserve(b, 1));
    b->data[b->len++] = (uint8_t)c;
    return 0;
}

int cr_buf_puts(cr_buf *b, const char *s)
{
    return cr_buf_append(b, s, strlen(s));
}

int cr_buf_printf(cr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return cr_error(-EINVAL, "format error");
    CR_TRY(cr_buf_reserve(b, (size_t)n));
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int cr_buf_nul(cr_buf *b)
{
    CR_TRY(cr_buf_reserve(b, 0));
    b->data[b->len] = 0;
    return 0;
}

void cr_buf_reset(cr_buf *b)
{
    b->len = 0;
}

void cr_buf_free(cr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint8_t *cr_buf_steal(cr_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
