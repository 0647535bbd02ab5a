/* Growable byte buffer, the one currency for variable-sized data. */
#ifndef CRESTIC_UTIL_BUF_H
#define CRESTIC_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} cr_buf;

#define CR_BUF_INIT {NULL, 0, 0}

/* All return 0 or -ENOMEM (with a message set). */
int cr_buf_reserve(cr_buf *b, size_t extra);         /* room for len+extra    */
int cr_buf_resize(cr_buf *b, size_t len);            /* set len, grow if needed */
int cr_buf_append(cr_buf *b, const void *p, size_t n);
int cr_buf_putc(cr_buf *b, char c);
int cr_buf_puts(cr_buf *b, const char *s);
int cr_buf_printf(cr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keep data NUL-terminated past len (does not count in len). */
int cr_buf_nul(cr_buf *b);
void cr_buf_reset(cr_buf *b);                         /* len = 0, keep memory  */
void cr_buf_free(cr_buf *b);
/* Move the memory out; the buffer is left empty. Caller frees. */
uint8_t *cr_buf_steal(cr_buf *b, size_t *len);

static inline void cr_buf_freep(cr_buf *b) { cr_buf_free(b); }
#define _cleanup_buf_ __attribute__((cleanup(cr_buf_freep)))

#endif
