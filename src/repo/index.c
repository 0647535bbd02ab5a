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

/* Hash every known pack into slots[cap] (cap a power of two, emptied here). */
static void fill_pack_slots(const cr_index *idx, uint32_t *slots, size_t cap)
{
    memset(slots, 0xff, cap * sizeof *slots);
    for (size_t i = 0; i < idx->npacks; i++) {
        size_t s = id_hash(&idx->packs[i]) & (cap - 1);
        while (slots[s] != UINT32_MAX) s = (s + 1) & (cap - 1);
        slots[s] = (uint32_t)i;
    }
}

static int grow_pack_slots(cr_index *idx)
{
    size_t cap = idx->pack_slots_cap ? idx->pack_slots_cap * 2 : 1024;
    uint32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) return cr_error(-ENOMEM, "out of memory");
    fill_pack_slots(idx, slots, cap);
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

/* ---- fast path ---------------------------------------------------------
 *
 * Index files are large (a repository of 100,000 small files has one of
 * 16 MB) and a whole-document tree of them takes about 30 times their entry
 * count in bytes.  Files as restic writes them are read here in one pass
 * straight into the entries.  It accepts only a strict subset of JSON (the
 * keys restic writes, exactly spelled and each once, plain integers, hex IDs)
 * that the tree reader interprets the same way; anything else, including
 * every error, goes back to the tree reader, which decides. */

typedef struct {
    const char *p, *end;
} scan;

static void sc_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static bool sc_char(scan *s, char c)
{
    sc_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* A string without escapes or control bytes (its bytes in str, len). */
static bool sc_string(scan *s, const char **str, size_t *len)
{
    if (!sc_char(s, '"')) return false;
    const char *q = s->p;
    while (q < s->end && *q != '"') {
        if ((unsigned char)*q < 0x20 || *q == '\\') return false;
        q++;
    }
    if (q >= s->end) return false;
    *str = s->p;
    *len = (size_t)(q - s->p);
    s->p = q + 1;
    return true;
}

/* "key": (the colon included) */
static bool sc_key(scan *s, const char **key, size_t *len)
{
    return sc_string(s, key, len) && sc_char(s, ':');
}

static bool sc_id(scan *s, cr_id *id)
{
    const char *str;
    size_t len;
    return sc_string(s, &str, &len) && len == CR_ID_HEX && cr_id_from_hex(id, str, len) == 0;
}

/* A plain non-negative integer that fits in 32 bits. */
static bool sc_u32(scan *s, uint32_t *out)
{
    sc_ws(s);
    const char *q = s->p;
    uint64_t v = 0;
    while (q < s->end && *q >= '0' && *q <= '9' && v <= UINT32_MAX) v = v * 10 + (uint64_t)(*q++ - '0');
    size_t digits = (size_t)(q - s->p);
    if (!digits || v > UINT32_MAX || (digits > 1 && *s->p == '0')) return false;
    if (q < s->end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))) return false;
    *out = (uint32_t)v;
    s->p = q;
    return true;
}

static bool key_is(const char *k, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(k, name, n) == 0;
}

/* {"id":..,"type":..,"offset":..,"length":..[,"uncompressed_length":..]} */
static int fast_blob(scan *s, cr_index *idx, const void *pack, unsigned version)
{
    enum { ID = 1, TYPE = 2, OFFSET = 4, LENGTH = 8, ULEN = 16 };
    cr_index_entry e;
    memset(&e, 0, sizeof e);
    unsigned seen = 0;
    if (!sc_char(s, '{')) return 1;
    do {
        const char *k;
        size_t n;
        unsigned bit;
        if (!sc_key(s, &k, &n)) return 1;
        bool ok;
        if (key_is(k, n, "id")) bit = ID, ok = sc_id(s, &e.id);
        else if (key_is(k, n, "offset")) bit = OFFSET, ok = sc_u32(s, &e.offset);
        else if (key_is(k, n, "length")) bit = LENGTH, ok = sc_u32(s, &e.length);
        else if (key_is(k, n, "uncompressed_length")) bit = ULEN, ok = sc_u32(s, &e.ulen);
        else if (key_is(k, n, "type")) {
            const char *t;
            size_t tn;
            bit = TYPE;
            ok = sc_string(s, &t, &tn) && (key_is(t, tn, "data") || key_is(t, tn, "tree"));
            if (ok) e.type = t[0] == 'd' ? CR_BLOB_DATA : CR_BLOB_TREE;
        } else {
            return 1;
        }
        if (!ok || (seen & bit)) return 1;
        seen |= bit;
    } while (sc_char(s, ','));
    if (!sc_char(s, '}') || (seen | ULEN) != (ID | TYPE | OFFSET | LENGTH | ULEN)) return 1;
    if (e.length < 32 || (e.ulen && version < 2)) return 1; /* errors: the tree reader words them */
    return cr_index_add(idx, pack, &e);
}

/* [item, ...] with fn reading one item; 0, 1 (not for the fast path) or an error. */
static int fast_array(scan *s, int (*fn)(scan *, cr_index *, const void *, unsigned), cr_index *idx, const void *arg,
                      unsigned version)
{
    if (!sc_char(s, '[')) return 1;
    if (sc_char(s, ']')) return 0;
    do {
        int e = fn(s, idx, arg, version);
        if (e) return e;
    } while (sc_char(s, ','));
    return sc_char(s, ']') ? 0 : 1;
}

/* {"id":..,"blobs":[...]}: "id" first, as restic writes it. */
static int fast_pack(scan *s, cr_index *idx, const void *unused, unsigned version)
{
    (void)unused;
    const char *k;
    size_t n;
    cr_id pack;
    if (!sc_char(s, '{') || !sc_key(s, &k, &n) || !key_is(k, n, "id") || !sc_id(s, &pack)) return 1;
    if (!sc_char(s, ',') || !sc_key(s, &k, &n) || !key_is(k, n, "blobs")) return 1;
    int e = fast_array(s, fast_blob, idx, &pack, version);
    if (e) return e;
    return sc_char(s, '}') ? 0 : 1;
}

static int fast_supersedes_item(scan *s, cr_index *idx, const void *unused, unsigned version)
{
    (void)idx, (void)unused, (void)version;
    const char *str;
    size_t len;
    return sc_string(s, &str, &len) ? 0 : 1;
}

/* {["supersedes":[...],]"packs":[...]} (either order, each once) */
static int fast_index(scan *s, cr_index *idx, unsigned version)
{
    bool packs = false, supersedes = false;
    if (!sc_char(s, '{')) return 1;
    do {
        const char *k;
        size_t n;
        int e;
        if (!sc_key(s, &k, &n)) return 1;
        if (key_is(k, n, "packs") && !packs) {
            packs = true;
            e = fast_array(s, fast_pack, idx, NULL, version);
        } else if (key_is(k, n, "supersedes") && !supersedes) {
            supersedes = true;
            e = fast_array(s, fast_supersedes_item, idx, NULL, version);
        } else {
            return 1;
        }
        if (e) return e;
    } while (sc_char(s, ','));
    if (!sc_char(s, '}')) return 1;
    sc_ws(s);
    return s->p == s->end ? 0 : 1;
}

/* Undo what a failed fast pass added (entries and new packs). */
static void rollback(cr_index *idx, size_t nblobs, size_t npacks, bool sorted)
{
    idx->nblobs = nblobs;
    idx->sorted = sorted;
    if (idx->npacks == npacks) return;
    idx->npacks = npacks;
    fill_pack_slots(idx, idx->pack_slots, idx->pack_slots_cap);
}

static int add_json_tree(cr_index *idx, const char *json, size_t n, unsigned repo_version);

int cr_index_add_json(cr_index *idx, const char *json, size_t n, unsigned repo_version)
{
    size_t nblobs = idx->nblobs, npacks = idx->npacks;
    bool sorted = idx->sorted;
    scan s = {json, json + n};
    int e = fast_index(&s, idx, repo_version);
    if (e == 0) return 0;
    rollback(idx, nblobs, npacks, sorted);
    if (e == -ENOMEM) return e;
    return add_json_tree(idx, json, n, repo_version);
}

static int add_json_tree(cr_index *idx, const char *json, size_t n, unsigned repo_version)
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
