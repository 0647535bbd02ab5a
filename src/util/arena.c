#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct cr_arena_block {
    cr_arena_block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

static cr_arena_block *new_block(size_t size)
{
    cr_arena_block *b = malloc(sizeof *b + size);
    if (!b) return NULL;
    b->next = NULL;
    b->used = 0;
    b->size = size;
    return b;
}

void *cr_arena_alloc(cr_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n) return NULL;
    cr_arena_block *b = a->head;
    if (!b || b->size - b->used < need) {
        /* Grow geometrically so big trees do not make thousands of blocks. */
        size_t size = a->block_size ? a->block_size * 2 : 4096;
        if (size > (1u << 24)) size = 1u << 24;
        a->block_size = size;
        if (size < need) size = need;
        cr_arena_block *nb = new_block(size);
        if (!nb) return NULL;
        nb->next = a->head;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    memset(p, 0, n);
    return p;
}

void *cr_arena_memdup(cr_arena *a, const void *p, size_t n)
{
    void *q = cr_arena_alloc(a, n ? n : 1);
    if (q && n) memcpy(q, p, n);
    return q;
}

char *cr_arena_strndup(cr_arena *a, const char *s, size_t n)
{
    char *q = cr_arena_alloc(a, n + 1);
    if (!q) return NULL;
    memcpy(q, s, n);
    q[n] = 0;
    return q;
}

void cr_arena_free(cr_arena *a)
{
    cr_arena_block *b = a->head;
    while (b) {
        cr_arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->block_size = 0;
}
