/* libFuzzer target for index files (spec §10).  First input byte: repository
 * version (bit 0: 1 or 2) and whether to add the document twice (bit 1); the
 * rest is the index JSON.
 *  - cr_index_add_json accepts or fails with CR_E_FORMAT;
 *  - a v1 index never holds compressed entries; stored lengths >= 32;
 *  - after cr_index_finish: sorted by (id, type), no exact duplicates, pack
 *    positions valid, and every entry is found by cr_index_lookup among the
 *    locations of its blob;
 *  - adding the same document twice changes nothing after finishing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/index.h"
#include "util/error.h"

static int cmp_key(const cr_index_entry *a, const cr_index_entry *b)
{
    int c = memcmp(a->id.b, b->id.b, CR_ID_SIZE);
    if (c) return c;
    return (int)a->type - (int)b->type;
}

static void check_index(const cr_index *idx, unsigned version)
{
    for (size_t i = 0; i < idx->nblobs; i++) {
        const cr_index_entry *e = &idx->blobs[i];
        if (e->pack >= idx->npacks) abort();
        if (e->type > 1) abort();
        if (e->length < 32) abort();
        if (version < 2 && e->ulen) abort();
        if (i) {
            const cr_index_entry *p = &idx->blobs[i - 1];
            int c = cmp_key(p, e);
            if (c > 0) abort();
            if (c == 0 && p->pack == e->pack && p->offset == e->offset) abort(); /* exact duplicate kept */
        }
        size_t count = 0;
        const cr_index_entry *hit = cr_index_lookup(idx, (cr_blob_type)e->type, &e->id, &count);
        if (!hit || count == 0 || e < hit || e >= hit + count) abort();
        for (size_t k = 0; k < count; k++)
            if (!cr_id_eq(&hit[k].id, &e->id) || hit[k].type != e->type) abort();
        if (hit > idx->blobs && cmp_key(hit - 1, e) == 0) abort(); /* not the first location */
        if (hit + count < idx->blobs + idx->nblobs && cmp_key(hit + count, e) == 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned version = (data[0] & 1) + 1;
    bool twice = data[0] & 2;
    const char *json = (const char *)data + 1;
    size_t n = size - 1;

    cr_index *idx = cr_index_new();
    if (!idx) abort();
    int r = cr_index_add_json(idx, json, n, version);
    if (r < 0) {
        if (r != CR_E_FORMAT) abort();
        cr_index_free(idx);
        cr_error_clear();
        return 0;
    }
    size_t before = idx->nblobs;
    cr_index_finish(idx);
    if (idx->nblobs > before) abort();
    check_index(idx, version);

    if (twice) {
        size_t nblobs = idx->nblobs, npacks = idx->npacks;
        if (cr_index_add_json(idx, json, n, version) != 0) abort();
        cr_index_finish(idx);
        if (idx->nblobs != nblobs || idx->npacks != npacks) abort();
        check_index(idx, version);
    }
    /* A lookup for an ID made of input bytes. */
    cr_id probe;
    memset(&probe, 0, sizeof probe);
    memcpy(probe.b, data, size < CR_ID_SIZE ? size : CR_ID_SIZE);
    size_t count = 0;
    const cr_index_entry *hit = cr_index_lookup(idx, CR_BLOB_DATA, &probe, &count);
    if ((hit == NULL) != (count == 0)) abort();
    cr_index_free(idx);
    return 0;
}
