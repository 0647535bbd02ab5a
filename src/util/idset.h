/* A set of 32-byte IDs (open addressing; SHA-256 IDs are already uniform). */
#ifndef CRESTIC_UTIL_IDSET_H
#define CRESTIC_UTIL_IDSET_H

#include <stddef.h>
#include <stdint.h>

#include "util/id.h"

typedef struct {
    cr_id *slots;
    uint8_t *used;
    size_t n, cap;
} cr_idset;

#define CR_IDSET_INIT {NULL, NULL, 0, 0}

/* 1 if id was already there, 0 if added now, -ENOMEM. */
int cr_idset_add(cr_idset *s, const cr_id *id);
int cr_idset_has(const cr_idset *s, const cr_id *id);
void cr_idset_free(cr_idset *s);

#endif
