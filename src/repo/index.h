/* The in-memory union of all index files (spec §10), compact and sorted. */
#ifndef CRESTIC_REPO_INDEX_H
#define CRESTIC_REPO_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/repo.h"

typedef struct {
    cr_id id;
    uint32_t pack;    /* position in cr_index.packs */
    uint32_t offset;
    uint32_t length;  /* stored length (includes the 32 crypto bytes) */
    uint32_t ulen;    /* plaintext length if compressed, 0 if not     */
    uint8_t type;     /* cr_blob_type */
} cr_index_entry;

struct cr_index {
    cr_id *packs;
    size_t npacks, packs_cap;
    cr_index_entry *blobs;
    size_t nblobs, blobs_cap;
    bool sorted;
    /* pack id -> position, built while adding (open addressing) */
    uint32_t *pack_slots;
    size_t pack_slots_cap;
};

cr_index *cr_index_new(void);
void cr_index_free(cr_index *idx);
/* Parse one index file's JSON and add its entries.  Compressed entries in a
 * v1 repository are refused (CR_E_FORMAT).  The legacy array form is read. */
int cr_index_add_json(cr_index *idx, const char *json, size_t n, unsigned repo_version);
/* Add one blob location directly (pack headers, backup). */
int cr_index_add(cr_index *idx, const cr_id *pack, const cr_index_entry *e);
/* Position of a pack, adding it if new. */
int cr_index_pack_pos(cr_index *idx, const cr_id *pack, uint32_t *pos);
/* Position of a known pack without adding it; false if the index lacks it. */
bool cr_index_find_pack(const cr_index *idx, const cr_id *pack, uint32_t *pos);
/* Sort by (id, type) and drop exact duplicates; lookups need it. */
void cr_index_finish(cr_index *idx);
/* All locations of a blob: returns the first matching entry and sets *count
 * (0 and NULL if unknown). */
const cr_index_entry *cr_index_lookup(const cr_index *idx, cr_blob_type t, const cr_id *id, size_t *count);
/* Plaintext size of an entry. */
static inline uint32_t cr_index_entry_plain_len(const cr_index_entry *e)
{
    return e->ulen ? e->ulen : e->length - 32;
}

#endif
