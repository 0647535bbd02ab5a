/* Union of all index files (spec §10): one array of entries sorted by
 * (id, type) for binary search, pack IDs stored once. */
#include "repo/index.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/json.h"

cr_index *cr_index_new(void)
{
    return calloc(1, sizeof(cr_index));
}

void cr_index_free(cr_index *idx)
{
    if (!idx) return;
    free(idx->packs);
    free(idx->blobs);
    free(idx->pack_slots);
    free(idx);
}

static uint64_t id_hash(const cr_id *id)
{
    uint64_t h;
    memcpy(&h, id->b, sizeof h); /* SHA-256 output is already uniform */
    return h;
}

static int grow_pack_slots(cr_index *idx)
{
    size_t cap = idx->pack_slots_cap ? idx->pack_slots_cap * 2 : 1024;
    uint32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) return cr_error(-ENOMEM, "out of memory");
    memset(slots, 0xff, cap * sizeof *slots);
    for (size_t i = 0; i < idx->npacks; i++) {
        size_t s = id_hash(&idx->packs[i]) & (cap - 1);
        while (slots[s] != UINT32_MAX) s = (s + 1) & (cap - 1);
        slots[s] = (uint32_t)i;
    }
    free(idx->pack_slots);
    idx->pack_slots = slots;
    idx->pack_slots_cap = cap;
    return 0;
}

int cr_index_pack_pos(cr_index *idx, const cr_id *pack, uint32_t *pos)
{
    if ((idx->npacks + 1) * 2 > idx->pack_slots_cap) CR_TRY(grow_pack_slots(idx));
    size_t mask = idx->pack_slots_cap - 1, s = id_hash(pack) & mask;
    for (; idx->pack_slots[s] != UINT32_MAX; s = (s + 1) & mask)
        if (cr_id_eq(&idx->packs[idx->pack_slots[s]], pack)) {
            *pos = idx->pack_slots[s];
            return 0;
        }
    if (idx->npacks == idx->packs_cap) {
        size_t cap = idx->packs_cap ? idx->packs_cap * 2 : 256;
        cr_id *p = realloc(idx->packs, cap * sizeof *p);
        if (!p) return cr_error(-ENOMEM, "out of memory");
        idx->packs = p;
        idx->packs_cap = cap;
    }
    if (idx->npacks >= UINT32_MAX - 1) return cr_error(-ENOMEM, "too many packs");
    idx->packs[idx->npacks] = *pack;
    idx->pack_slots[s] = (uint32_t)idx->npacks;
    *pos = (uint32_t)idx->npacks++;
    return 0;
}

bool cr_index_find_pack(const cr_index *idx, const cr_id *pack, uint32_t *pos)
{
    if (!idx->pack_slots_cap) return false;
    size_t mask = idx->pack_slots_cap - 1, s = id_hash(pack) & mask;
    for (; idx->pack_slots[s] != UINT32_MAX; s = (s + 1) & mask)
        if (cr_id_eq(&idx->packs[idx->pack_slots[s]], pack)) {
            *pos = idx->pack_slots[s];
            return true;
        }
    return false;
}

int cr_index_add(cr_index *idx, const cr_id *pack, const cr_index_entry *e)
{
    uint32_t pos;
    CR_TRY(cr_index_pack_pos(idx, pack, &pos));
    if (idx->nblobs == idx->blobs_cap) {
        size_t cap = idx->blobs_cap ? idx->blobs_cap * 2 : 4096;
        cr_index_entry *b = realloc(idx->blobs, cap * sizeof *b);
        if (!b) return cr_error(-ENOMEM, "out of memory");
        idx->blobs = b;
        idx->blobs_cap = cap;
    }
    idx->blobs[idx->nblobs] = *e;
    idx->blobs[idx->nblobs].pack = pos;
    idx->nblobs++;
    idx->sorted = false;
    return 0;
}

static int get_id(const cr_json *obj, const char *name, cr_id *out)
{
    const cr_json *v = cr_json_get(obj, name);
    if (!cr_json_is(v, CR_JSON_STRING) || cr_id_from_hex(out, v->str, v->len) < 0)
        return cr_error(CR_E_FORMAT, "invalid or missing \"%s\"", name);
    return 0;
}

static int get_u32(const cr_json *obj, const char *name, uint32_t *out, bool optional)
{
    const cr_json *v = cr_json_get(obj, name);
    if (optional && cr_json_is_nullish(v)) {
        *out = 0;
        return 0;
    }
    if (cr_json_u32(v, out) < 0) return cr_error(CR_E_FORMAT, "invalid or missing \"%s\"", name);
    return 0;
}

static int add_blob(cr_index *idx, const cr_id *pack, const cr_json *b, unsigned version)
{
    cr_index_entry e;
    memset(&e, 0, sizeof e);
    const cr_json *type = cr_json_get(b, "type");
    CR_TRY(get_id(b, "id", &e.id));
    if (cr_json_is(type, CR_JSON_STRING) && type->len == 4 && !memcmp(type->str, "data", 4)) e.type = CR_BLOB_DATA;
    else if (cr_json_is(type, CR_JSON_STRING) && type->len == 4 && !memcmp(type->str, "tree", 4)) e.type = CR_BLOB_TREE;
    else return cr_error(CR_E_FORMAT, "invalid blob type");
    CR_TRY(get_u32(b, "offset", &e.offset, false));
    CR_TRY(get_u32(b, "length", &e.length, false));
    CR_TRY(get_u32(b, "uncompressed_length", &e.ulen, true));
    if (e.length < 32) return cr_error(CR_E_FORMAT, "blob length %u too small", e.length);
    if (e.ulen && version < 2) return cr_error(CR_E_FORMAT, "compressed blob in a version 1 repository");
    return cr_index_add(idx, pack, &e);
}

static int add_pack(cr_index *idx, const cr_json *p, unsigned version)
{
    cr_id pack;
    CR_TRY(get_id(p, "id", &pack));
    const cr_json *blobs = cr_json_get(p, "blobs");
    if (cr_json_is_nullish(blobs)) return 0;
    if (blobs->type != CR_JSON_ARRAY) return cr_error(CR_E_FORMAT, "\"blobs\" is not an array");
    for (uint32_t i = 0; i < blobs->len; i++) CR_TRY(add_blob(idx, &pack, &blobs->kids[i], version));
    return 0;
}

int cr_index_add_json(cr_index *idx, const char *json, size_t n, unsigned repo_version)
{
    cr_json_doc *doc = NULL;
    CR_TRY(cr_json_parse(json, n, &doc));
    const cr_json *root = cr_json_root(doc);
    /* Legacy (restic < 0.2) index files are a bare array of packs. */
    const cr_json *packs = root->type == CR_JSON_ARRAY ? root : cr_json_get(root, "packs");
    int r = 0;
    if (root->type != CR_JSON_OBJECT && root->type != CR_JSON_ARRAY) r = cr_error(CR_E_FORMAT, "index is not a JSON object");
    else if (!cr_json_is_nullish(packs) && packs->type != CR_JSON_ARRAY) r = cr_error(CR_E_FORMAT, "\"packs\" is not an array");
    for (uint32_t i = 0; r == 0 && packs && packs->type == CR_JSON_ARRAY && i < packs->len; i++)
        r = add_pack(idx, &packs->kids[i], repo_version);
    cr_json_free(doc);
    return r;
}

static int entry_cmp(const void *a, const void *b)
{
    const cr_index_entry *x = a, *y = b;
    int c = memcmp(x->id.b, y->id.b, CR_ID_SIZE);
    if (c) return c;
    if (x->type != y->type) return x->type < y->type ? -1 : 1;
    if (x->pack != y->pack) return x->pack < y->pack ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void cr_index_finish(cr_index *idx)
{
    if (idx->sorted) return;
    if (idx->nblobs > 1) /* qsort(NULL, 0, ...) is undefined: an empty index has no array yet */
        qsort(idx->blobs, idx->nblobs, sizeof *idx->blobs, entry_cmp);
    size_t w = 0;
    for (size_t i = 0; i < idx->nblobs; i++) {
        if (w && entry_cmp(&idx->blobs[w - 1], &idx->blobs[i]) == 0) continue; /* same pack listed twice */
        idx->blobs[w++] = idx->blobs[i];
    }
    idx->nblobs = w;
    idx->sorted = true;
}

const cr_index_entry *cr_index_lookup(const cr_index *idx, cr_blob_type t, const cr_id *id, size_t *count)
{
    *count = 0;
    if (!idx || !idx->sorted) return NULL;
    size_t lo = 0, hi = idx->nblobs;
    while (lo < hi) { /* first entry >= (id, t) */
        size_t mid = lo + (hi - lo) / 2;
        const cr_index_entry *e = &idx->blobs[mid];
        int c = memcmp(e->id.b, id->b, CR_ID_SIZE);
        if (c < 0 || (c == 0 && e->type < (uint8_t)t)) lo = mid + 1;
        else hi = mid;
    }
    size_t end = lo;
    while (end < idx->nblobs && cr_id_eq(&idx->blobs[end].id, id) && idx->blobs[end].type == (uint8_t)t) end++;
    *count = end - lo;
    return *count ? &idx->blobs[lo] : NULL;
}
