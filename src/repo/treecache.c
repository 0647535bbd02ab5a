/* Tree prefetch for remote backends: see treecache.h. */
#include "repo/treecache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "repo/pack.h"
#include "util/error.h"

/* One request fetches at most this much around the wanted tree; the cache
 * holds at most CACHE_BYTES of encrypted trees and is emptied when full
 * (a walk rarely comes back to a tree it has left). */
#define SPAN_BEFORE (8u << 20)
#define SPAN_MAX (16u << 20)
#define CACHE_BYTES (64u << 20)
#define CACHE_SLOTS (1u << 17)

typedef struct {
    cr_id pack, blob;
    uint32_t offset, length, ulen;
} tree_loc;

typedef struct {
    cr_id id;
    uint8_t *raw; /* NULL: empty slot */
    uint32_t len, ulen;
} slot;

struct cr_treecache {
    pthread_mutex_t lock;
    tree_loc *locs; /* every tree blob of the index, by (pack, offset) */
    size_t nlocs;
    const cr_index *built_for;
    size_t built_nblobs;
    slot *slots;
    size_t used, bytes;
};

static bool prefetch_wanted(const cr_repo *r)
{
    const char *env = getenv("CRESTIC_TREE_PREFETCH");
    if (env && *env) return strcmp(env, "0") != 0;
    return r->be->ops != &cr_backend_local;
}

int cr_treecache_new(const cr_repo *r, cr_treecache **out)
{
    *out = NULL;
    if (!prefetch_wanted(r)) return 0;
    cr_treecache *c = calloc(1, sizeof *c);
    if (c) c->slots = calloc(CACHE_SLOTS, sizeof *c->slots);
    if (!c || !c->slots) {
        free(c);
        return cr_error(-ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

static void cache_clear(cr_treecache *c)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++) free(c->slots[i].raw);
    memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
    c->used = c->bytes = 0;
}

void cr_treecache_free(cr_treecache *c)
{
    if (!c) return;
    cache_clear(c);
    free(c->slots);
    free(c->locs);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---- the cache: open addressing on the blob ID ------------------------------ */

static size_t slot_of(const cr_treecache *c, const cr_id *id)
{
    uint64_t h;
    memcpy(&h, id->b, sizeof h);
    size_t i = (size_t)h & (CACHE_SLOTS - 1);
    while (c->slots[i].raw && memcmp(c->slots[i].id.b, id->b, sizeof id->b)) i = (i + 1) & (CACHE_SLOTS - 1);
    return i;
}

static int cache_put(cr_treecache *c, const tree_loc *l, const uint8_t *raw)
{
    if (c->used >= CACHE_SLOTS / 2 || c->bytes + l->length > CACHE_BYTES) cache_clear(c);
    slot *s = &c->slots[slot_of(c, &l->blob)];
    if (s->raw) return 0;
    if (!(s->raw = malloc(l->length ? l->length : 1))) return cr_error(-ENOMEM, "out of memory");
    memcpy(s->raw, raw, l->length);
    s->id = l->blob;
    s->len = l->length;
    s->ulen = l->ulen;
    c->used++;
    c->bytes += l->length;
    return 0;
}

/* ---- where the trees are --------------------------------------------------- */

static int loc_cmp(const void *a, const void *b)
{
    const tree_loc *x = a, *y = b;
    int d = memcmp(x->pack.b, y->pack.b, sizeof x->pack.b);
    if (d) return d;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int build_locs(cr_treecache *c, const cr_index *idx)
{
    size_t n = 0;
    for (size_t i = 0; i < idx->nblobs; i++) n += idx->blobs[i].type == CR_BLOB_TREE;
    tree_loc *locs = malloc((n ? n : 1) * sizeof *locs);
    if (!locs) return cr_error(-ENOMEM, "out of memory");
    n = 0;
    for (size_t i = 0; i < idx->nblobs; i++) {
        const cr_index_entry *e = &idx->blobs[i];
        if (e->type != CR_BLOB_TREE) continue;
        locs[n++] = (tree_loc){idx->packs[e->pack], e->id, e->offset, e->length, e->ulen};
    }
    qsort(locs, n, sizeof *locs, loc_cmp);
    free(c->locs);
    c->locs = locs;
    c->nlocs = n;
    c->built_for = idx;
    c->built_nblobs = idx->nblobs;
    return 0;
}

/* Position of the tree at (pack, offset) in locs, or -1. */
static long find_loc(const cr_treecache *c, const cr_id *pack, uint32_t offset)
{
    tree_loc key = {.pack = *pack, .offset = offset};
    const tree_loc *l = bsearch(&key, c->locs, c->nlocs, sizeof key, loc_cmp);
    return l ? (long)(l - c->locs) : -1;
}

/* The trees [*from, *to) of the same pack around position i that one read
 * of at most SPAN_MAX bytes covers. */
static void choose_span(const cr_treecache *c, size_t i, size_t *from, size_t *to)
{
    const tree_loc *L = c->locs;
    size_t a = i, b = i + 1;
    uint32_t end = L[i].offset + L[i].length;
    while (a > 0 && !memcmp(L[a - 1].pack.b, L[i].pack.b, sizeof L[i].pack.b) && end - L[a - 1].offset <= SPAN_BEFORE) a--;
    while (b < c->nlocs && !memcmp(L[b].pack.b, L[i].pack.b, sizeof L[i].pack.b) &&
           (uint64_t)L[b].offset + L[b].length - L[a].offset <= SPAN_MAX)
        b++;
    *from = a;
    *to = b;
}

/* Fetch the trees around position i in one read and cache them. */
static int prefetch(cr_treecache *c, cr_repo *r, size_t i)
{
    size_t from, to;
    choose_span(c, i, &from, &to);
    uint32_t start = c->locs[from].offset, end = 0;
    for (size_t k = from; k < to; k++)
        if (c->locs[k].offset + c->locs[k].length > end) end = c->locs[k].offset + c->locs[k].length;
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&c->locs[i].pack, hex);
    _cleanup_buf_ cr_buf span = CR_BUF_INIT;
    int e = cr_be_load(r->be, CR_FILE_PACK, hex, start, end - start, &span);
    if (e < 0) return e;
    if (span.len != end - start) return cr_error(-EIO, "short read");
    for (size_t k = from; k < to; k++) CR_TRY(cache_put(c, &c->locs[k], span.data + (c->locs[k].offset - start)));
    return 0;
}

static int serve(cr_treecache *c, cr_repo *r, const cr_id *id, cr_buf *out)
{
    slot *s = &c->slots[slot_of(c, id)];
    if (!s->raw) return 0;
    return cr_blob_decode(&r->master, s->raw, s->len, s->ulen, id, out) == 0 ? 1 : 0;
}

static int load_locked(cr_treecache *c, cr_repo *r, const cr_id *id, const cr_index_entry *e, cr_buf *out)
{
    if (serve(c, r, id, out) == 1) return 1;
    const cr_id *pack = &r->index->packs[e->pack];
    long i = c->built_for == r->index && c->built_nblobs == r->index->nblobs ? find_loc(c, pack, e->offset) : -1;
    if (i < 0) {
        CR_TRY(build_locs(c, r->index));
        i = find_loc(c, pack, e->offset);
        if (i < 0) return 0;
    }
    CR_TRY(prefetch(c, r, (size_t)i));
    return serve(c, r, id, out);
}

int cr_treecache_load(cr_treecache *c, cr_repo *r, const cr_id *id, const cr_index_entry *e, cr_buf *out)
{
    pthread_mutex_lock(&c->lock);
    int ret = load_locked(c, r, id, e, out);
    pthread_mutex_unlock(&c->lock);
    if (ret == 1) return 1;
    /* Anything that went wrong here the usual, blob-by-blob path reports
     * better (or succeeds, from another copy); only these end the load. */
    if (ret == -ENOMEM || ret == CR_E_INTERRUPTED) return ret;
    cr_error_clear();
    return 0;
}
