/* Bump allocator for objects that live and die together (a parsed tree's
 * names, a snapshot's strings).  Freed all at once. */
#ifndef CRESTIC_UTIL_ARENA_H
#define CRESTIC_UTIL_ARENA_H

#include <stddef.h>

typedef struct cr_arena_block cr_arena_block;
typedef struct {
    cr_arena_block *head;
    size_t block_size;
} cr_arena;

#define CR_ARENA_INIT {NULL, 0}

void *cr_arena_alloc(cr_arena *a, size_t n);           /* 16-byte aligned, zeroed; NULL on ENOMEM */
char *cr_arena_strndup(cr_arena *a, const char *s, size_t n); /* NUL-terminated copy */
void *cr_arena_memdup(cr_arena *a, const void *p, size_t n);
void cr_arena_free(cr_arena *a);

#endif
