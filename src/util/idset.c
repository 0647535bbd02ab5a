#include "util/idset.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static size_t slot_of(const cr_id *id, size_t cap)
{
    size_t k;
    memcpy(&k, id->b, sizeof k);
    return k & (cap - 1);
}

static int grow(cr_idset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    cr_id *slots = calloc(cap, sizeof *slots);
    uint8_t *used = calloc(cap, 1);
    if (!slots || !used) {
        free(slots);
        free(used);
        return cr_error(-ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->used[i]) continue;
        size_t k = slot_of(&s->slots[i], cap);
        while (used[k]) k = (k + 1) & (cap - 1);
        slots[k] = s->slots[i];
        used[k] = 1;
    }
    free(s->slots);
    free(s->used);
    s->slots = slots;
    s->used = used;
    s->cap = cap;
    return 0;
}

int cr_idset_has(const cr_idset *s, const cr_id *id)
{
    if (!s->cap) return 0;
    for (size_t k = slot_of(id, s->cap); s->used[k]; k = (k + 1) & (s->cap - 1))
        if (cr_id_eq(&s->slots[k], id)) return 1;
    return 0;
}

int cr_idset_add(cr_idset *s, const cr_id *id)
{
    if ((s->n + 1) * 2 > s->cap) CR_TRY(grow(s));
    size_t k = slot_of(id, s->cap);
    for (; s->used[k]; k = (k + 1) & (s->cap - 1))
        if (cr_id_eq(&s->slots[k], id)) return 1;
    s->slots[k] = *id;
    s->used[k] = 1;
    s->n++;
    return 0;
}

void cr_idset_free(cr_idset *s)
{
    free(s->slots);
    free(s->used);
    s->slots = NULL;
    s->used = NULL;
    s->n = s->cap = 0;
}
