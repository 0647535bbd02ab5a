/* prune: plan (mark used blobs, judge every pack) and execution in the
 * crash-safe order (see pruner.h). */
#include "repo/pruner.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/excluder.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/repair.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "util/cleanup.h"
#include "util/error.h"

enum { ACT_NONE, ACT_KEEP, ACT_REPACK, ACT_REMOVE, ACT_FORGET };
enum { T_DATA = 1, T_TREE = 2, T_MIXED = 3 };

/* What prune knows about one pack of the index (restic's packInfo). */
typedef struct {
    uint64_t expected;    /* file size according to the index */
    uint64_t stored;      /* file size in the backend         */
    uint64_t used_size;   /* kept blobs + header              */
    uint64_t unused_size; /* blobs to drop                    */
    uint64_t dead_size;   /* blobs no snapshot uses at all    */
    uint32_t used_blobs, unused_blobs;
    uint32_t unique_used; /* kept blobs (used to pick among duplicate copies) */
    uint8_t types;        /* T_DATA | T_TREE */
    uint8_t action;
    bool present, uncompressed, must_compress, small;
} pack_info;

struct cr_prune_plan {
    cr_repo *repo;
    cr_prune_opts o;
    cr_index *idx;        /* the union of all index files */
    bool own_idx;         /* idx no longer is repo->index: free it */
    cr_pack_groups groups;
    uint8_t *used;        /* per index entry, on the first of its (id, type) group */
    uint8_t *keep;        /* per index entry: the one copy that stays */
    pack_info *packs;
    cr_id *listed;        /* packs in the backend */
    uint64_t *listed_size;
    size_t nlisted;
    cr_id *unref;
    size_t nunref;
    size_t nrepack, nremove, nforget;
    cr_prune_stats st;
    bool executed;
};

static void say(cr_prune_plan *p, cr_prune_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(cr_prune_plan *p, cr_prune_level level, const char *fmt, ...)
{
    if (!p->o.report) return;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n >= 0) p->o.report(p->o.ud, level, msg);
    free(msg);
}

static int check_cancel(const cr_prune_plan *p)
{
    if (p->o.cancel && *p->o.cancel) return cr_error(CR_E_INTERRUPTED, "interrupted");
    return 0;
}

/* ---- options ------------------------------------------------------------ */

int cr_prune_parse_max_unused(const char *s, cr_prune_opts *o)
{
    size_t n = strlen(s);
    if (!strcmp(s, "unlimited")) {
        o->unused_limit = CR_UNUSED_UNLIMITED;
        return 0;
    }
    if (n && s[n - 1] == '%') {
        char num[64], *end;
        if (n - 1 >= sizeof num) return cr_error(CR_E_USAGE, "invalid percentage \"%s\" passed for --max-unused", s);
        memcpy(num, s, n - 1);
        num[n - 1] = 0;
        double v = strtod(num, &end);
        if (!num[0] || *end || isnan(v))
            return cr_error(CR_E_USAGE, "invalid percentage \"%s\" passed for --max-unused: strconv.ParseFloat: parsing \"%s\": invalid syntax", s, num);
        if (v < 0) return cr_error(CR_E_USAGE, "percentage for --max-unused must be positive");
        if (v >= 100) return cr_error(CR_E_USAGE, "percentage for --max-unused must be below 100%%");
        o->unused_limit = CR_UNUSED_PERCENT;
        o->max_unused_percent = v;
        return 0;
    }
    int64_t bytes;
    int e = cr_parse_size(s, &bytes);
    if (e < 0) return cr_error_ctx(e, "invalid number of bytes \"%s\" for --max-unused", s);
    o->unused_limit = CR_UNUSED_BYTES;
    o->max_unused_bytes = (uint64_t)bytes;
    return 0;
}

static uint64_t max_unused_after(const cr_prune_opts *o, uint64_t used)
{
    switch (o->unused_limit) {
    case CR_UNUSED_BYTES: return o->max_unused_bytes;
    case CR_UNUSED_UNLIMITED: return UINT64_MAX;
    default: return (uint64_t)(o->max_unused_percent / (100 - o->max_unused_percent) * (double)used);
    }
}

/* ---- marking used blobs ------------------------------------------------- */

typedef struct {
    cr_blob_type type;
    cr_id id;
} handle;

typedef struct {
    handle *v;
    size_t n, cap;
} handle_vec;

typedef struct {
    cr_id *v;
    size_t n, cap;
} id_stack;

static int push_id(id_stack *s, const cr_id *id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        cr_id *v = realloc(s->v, cap * sizeof *v);
        if (!v) return cr_error(-ENOMEM, "out of memory");
        s->v = v, s->cap = cap;
    }
    s->v[s->n++] = *id;
    return 0;
}

static int push_handle(handle_vec *h, cr_blob_type t, const cr_id *id)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        handle *v = realloc(h->v, cap * sizeof *v);
        if (!v) return cr_error(-ENOMEM, "out of memory");
        h->v = v, h->cap = cap;
    }
    h->v[h->n++] = (handle){t, *id};
    return 0;
}

/* Mark (t, id) used.  Returns 1 when it was marked before, 0 when marked
 * now, and records it in `missing` when the index lacks it. */
static int mark(cr_prune_plan *p, cr_blob_type t, const cr_id *id, handle_vec *missing)
{
    size_t count;
    const cr_index_entry *e = cr_index_lookup(p->idx, t, id, &count);
    if (!e) {
        CR_TRY(push_handle(missing, t, id));
        return 1; /* nothing to descend into */
    }
    size_t pos = (size_t)(e - p->idx->blobs);
    if (p->used[pos]) return 1;
    p->used[pos] = 1;
    return 0;
}

static int visit_node(cr_prune_plan *p, const cr_node *n, id_stack *todo, handle_vec *missing)
{
    if (n->type == CR_NODE_FILE)
        for (size_t i = 0; i < n->ncontent; i++) CR_TRY(mark(p, CR_BLOB_DATA, &n->content[i], missing));
    else if (n->type == CR_NODE_DIR && n->has_subtree)
        CR_TRY(push_id(todo, &n->subtree));
    return 0;
}

static int visit_tree(cr_prune_plan *p, const cr_id *id, id_stack *todo, handle_vec *missing, cr_buf *buf)
{
    cr_tree *t = NULL;
    int e = cr_repo_load_blob(p->repo, CR_BLOB_TREE, id, buf);
    if (e == 0) e = cr_tree_parse((const char *)buf->data, buf->len, &t);
    for (size_t i = 0; e == 0 && i < t->n; i++) e = visit_node(p, &t->nodes[i], todo, missing);
    cr_tree_free(t);
    if (e < 0) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(id, hex);
        return cr_error_ctx(e, "tree %s", hex);
    }
    return 0;
}

static int walk_trees(cr_prune_plan *p, id_stack *todo, handle_vec *missing)
{
    _cleanup_buf_ cr_buf buf = CR_BUF_INIT;
    while (todo->n) {
        CR_TRY(check_cancel(p));
        cr_id id = todo->v[--todo->n];
        int seen = mark(p, CR_BLOB_TREE, &id, missing);
        CR_TRY(seen);
        if (!seen) CR_TRY(visit_tree(p, &id, todo, missing, &buf));
    }
    return 0;
}

/* Every snapshot counts: one that cannot be read stops prune, since the
 * data it references would otherwise be deleted. */
static int push_snapshot_trees(cr_prune_plan *p, id_stack *todo, size_t *count)
{
    say(p, CR_PRUNE_INFO, "loading all snapshots...");
    cr_id *ids = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_list_ids(p->repo, CR_FILE_SNAPSHOT, &ids, NULL, &n));
    int e = 0;
    for (size_t i = 0; e == 0 && i < n; i++) {
        cr_snapshot s;
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        e = cr_repo_load_snapshot(p->repo, &ids[i], &s);
        if (e < 0) {
            e = cr_error_ctx(e, "snapshot %s", hex);
            break;
        }
        if (!s.has_tree || cr_id_is_zero(&s.tree)) e = cr_error(CR_E_FORMAT, "snapshot %s has no tree", hex);
        else e = push_id(todo, &s.tree);
        cr_snapshot_clear(&s);
    }
    free(ids);
    *count = n;
    return e;
}

static int cmp_handle(const void *a, const void *b)
{
    const handle *x = a, *y = b;
    int c = cr_id_cmp(&x->id, &y->id);
    return c ? c : (int)x->type - (int)y->type;
}

static int report_missing(cr_prune_plan *p, handle_vec *m)
{
    qsort(m->v, m->n, sizeof *m->v, cmp_handle);
    _cleanup_buf_ cr_buf list = CR_BUF_INIT;
    CR_TRY(cr_buf_putc(&list, '{'));
    for (size_t i = 0; i < m->n; i++) {
        if (i && cmp_handle(&m->v[i - 1], &m->v[i]) == 0) continue;
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&m->v[i].id, hex);
        CR_TRY(cr_buf_printf(&list, "%s<%s/%.8s>", i ? " " : "", cr_blob_type_name(m->v[i].type), hex));
    }
    CR_TRY(cr_buf_puts(&list, "}"));
    CR_TRY(cr_buf_nul(&list));
    say(p, CR_PRUNE_WARN,
        "%s not found in the index\n\n"
        "Integrity check failed: snapshots reference data that the index does not list.\n"
        "Prune stops here and deletes nothing, so that no (further) data is lost.\n"
        "Run 'check' to see what is damaged; if the packs are still there, 'repair index' restores the index.",
        (const char *)list.data);
    return cr_error(CR_E_NOTFOUND, "index is not complete");
}

static int mark_used_blobs(cr_prune_plan *p)
{
    id_stack todo = {0};
    handle_vec missing = {0};
    size_t nsnap = 0;
    int e = push_snapshot_trees(p, &todo, &nsnap);
    if (e == 0) say(p, CR_PRUNE_INFO, "finding data that is still in use for %zu snapshots", nsnap);
    if (e == 0) e = walk_trees(p, &todo, &missing);
    if (e == 0) say(p, CR_PRUNE_INFO, "searching used packs...");
    if (e == 0 && missing.n) e = report_missing(p, &missing);
    free(todo.v);
    free(missing.v);
    return e;
}

/* ---- packs in the backend ----------------------------------------------- */

static int list_packs(cr_prune_plan *p)
{
    CR_TRY(cr_repo_list_ids(p->repo, CR_FILE_PACK, &p->listed, &p->listed_size, &p->nlisted));
    for (uint32_t pos = 0; pos < p->idx->npacks; pos++)
        p->packs[pos].expected = cr_pack_size_from_index(p->idx, &p->groups, pos);
    for (size_t i = 0; i < p->nlisted; i++) {
        uint32_t pos;
        if (!cr_index_find_pack(p->idx, &p->listed[i], &pos)) continue;
        p->packs[pos].present = true;
        p->packs[pos].stored = p->listed_size[i];
    }
    return 0;
}

/* ---- choosing one copy of each used blob ---------------------------------- */

static size_t group_end(const cr_index *idx, size_t i)
{
    size_t j = i + 1;
    while (j < idx->nblobs && idx->blobs[j].type == idx->blobs[i].type && cr_id_eq(&idx->blobs[j].id, &idx->blobs[i].id)) j++;
    return j;
}

static bool pack_is_sound(const pack_info *pi)
{
    return pi->present && pi->stored == pi->expected;
}

/* Is copy a a better one to keep than copy b?  A copy in a pack that
 * exists with the right size first, then one in a pack that is kept for
 * other blobs anyway, then one in a pack with less dead data, then the
 * lower pack ID (so the choice does not depend on the order of files). */
static bool better_copy(const cr_prune_plan *p, const cr_index_entry *a, const cr_index_entry *b)
{
    const pack_info *pa = &p->packs[a->pack], *pb = &p->packs[b->pack];
    if (pack_is_sound(pa) != pack_is_sound(pb)) return pack_is_sound(pa);
    if (pa->unique_used != pb->unique_used) return pa->unique_used > pb->unique_used;
    if (pa->dead_size != pb->dead_size) return pa->dead_size < pb->dead_size;
    return cr_id_cmp(&p->idx->packs[a->pack], &p->idx->packs[b->pack]) < 0;
}

static void count_group(cr_prune_plan *p, size_t i, size_t j, size_t kept)
{
    const cr_index_entry *b = p->idx->blobs;
    for (size_t k = i; k < j; k++) {
        if (!p->used[i]) p->st.blobs.unused++, p->st.size.unused += b[k].length;
        else if (k == kept) p->st.blobs.used++, p->st.size.used += b[k].length;
        else p->st.blobs.duplicate++, p->st.size.duplicate += b[k].length;
    }
}

static void choose_copies(cr_prune_plan *p)
{
    const cr_index *idx = p->idx;
    /* First the blobs with one copy: they tell which packs stay anyway. */
    for (size_t i = 0, j; i < idx->nblobs; i = j) {
        j = group_end(idx, i);
        if (!p->used[i])
            for (size_t k = i; k < j; k++) p->packs[idx->blobs[k].pack].dead_size += idx->blobs[k].length;
        else if (j - i == 1) {
            p->keep[i] = 1;
            p->packs[idx->blobs[i].pack].unique_used++;
        }
    }
    for (size_t i = 0, j; i < idx->nblobs; i = j) {
        j = group_end(idx, i);
        size_t best = i;
        if (p->used[i] && j - i > 1) {
            for (size_t k = i + 1; k < j; k++)
                if (better_copy(p, &idx->blobs[k], &idx->blobs[best])) best = k;
            p->keep[best] = 1;
            /* Later duplicates gather in the same pack instead of spreading. */
            p->packs[idx->blobs[best].pack].unique_used++;
        }
        count_group(p, i, j, best);
    }
}

static void summarise_packs(cr_prune_plan *p)
{
    const cr_index *idx = p->idx;
    for (size_t i = 0; i < idx->nblobs; i++) {
        const cr_index_entry *e = &idx->blobs[i];
        pack_info *pi = &p->packs[e->pack];
        pi->types |= e->type == CR_BLOB_TREE ? T_TREE : T_DATA;
        /* An empty blob is never compressed: it must not count as work to do. */
        if (!e->ulen && e->length > CR_CRYPTO_OVERHEAD) pi->uncompressed = true;
        if (p->keep[i]) pi->used_blobs++, pi->used_size += e->length;
        else pi->unused_blobs++, pi->unused_size += e->length;
    }
    for (uint32_t pos = 0; pos < idx->npacks; pos++) {
        pack_info *pi = &p->packs[pos];
        pi->used_size += pi->expected - pi->used_size - pi->unused_size; /* the header */
    }
}

/* ---- deciding per pack ---------------------------------------------------- */

static int check_sizes(cr_prune_plan *p)
{
    bool bad = false;
    for (uint32_t pos = 0; pos < p->idx->npacks; pos++) {
        const pack_info *pi = &p->packs[pos];
        if (!pi->present || pi->stored == pi->expected || pi->used_blobs == 0) continue;
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&p->idx->packs[pos], hex);
        say(p, CR_PRUNE_WARN, "pack %.8s: calculated size %llu does not match real size %llu\nRun 'crestic repair index'.",
            hex, (unsigned long long)pi->expected, (unsigned long long)pi->stored);
        bad = true;
    }
    return bad ? cr_error(CR_E_FORMAT, "pack size does not match calculated size from index") : 0;
}

static void note_unreferenced(cr_prune_plan *p)
{
    for (size_t i = 0; i < p->nlisted; i++) {
        uint32_t pos;
        if (cr_index_find_pack(p->idx, &p->listed[i], &pos)) continue;
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&p->listed[i], hex);
        say(p, CR_PRUNE_VERBOSE, "will remove pack %.8s as it is unused and not indexed", hex);
        p->unref[p->nunref++] = p->listed[i];
        p->st.size.unref += p->listed_size[i];
        p->st.packs.unref++;
    }
}

/* Packs below this size are "small": by default only very small ones
 * (1/25 of the pack size), with --repack-small those below 80% of it. */
static uint64_t target_pack_size(const cr_prune_plan *p)
{
    uint64_t size = p->o.writer.pack_size ? p->o.writer.pack_size : CR_PACK_SIZE_DEFAULT;
    return p->o.repack_small ? size / 5 * 4 : size / 25;
}

static void set_remove(cr_prune_plan *p, pack_info *pi, uint8_t action)
{
    pi->action = action;
    p->st.blobs.remove += pi->unused_blobs;
    p->st.size.remove += pi->unused_size;
    if (action == ACT_REMOVE) p->nremove++, p->st.packs.remove++;
    else p->nforget++;
}

/* Keep, remove, or put on the candidate list (small packs separately). */
static void judge_pack(cr_prune_plan *p, uint32_t pos, uint32_t *cand, size_t *ncand, uint32_t *small, size_t *nsmall)
{
    pack_info *pi = &p->packs[pos];
    if (pi->used_blobs == 0) p->st.packs.unused++;
    else if (pi->unused_blobs == 0) p->st.packs.used++;
    else p->st.packs.partly_used++;
    pi->must_compress = p->repo->cfg.version >= 2 && pi->uncompressed &&
                        (pi->types == T_TREE || p->o.repack_uncompressed);
    uint64_t target = target_pack_size(p);
    if (pi->used_blobs == 0) {
        set_remove(p, pi, ACT_REMOVE);
    } else if (p->o.repack_cacheable_only && pi->types == T_DATA) {
        pi->action = ACT_KEEP;
    } else if (pi->unused_blobs == 0 && pi->types != T_MIXED && !pi->must_compress) {
        if (pi->stored >= target) pi->action = ACT_KEEP;
        else small[(*nsmall)++] = pos;
    } else {
        pi->small = pi->used_size + pi->unused_size < target;
        cand[(*ncand)++] = pos;
    }
}

static int judge_missing(cr_prune_plan *p)
{
    _cleanup_buf_ cr_buf needed = CR_BUF_INIT;
    size_t nneeded = 0, nforget = 0;
    for (uint32_t pos = 0; pos < p->idx->npacks; pos++) {
        pack_info *pi = &p->packs[pos];
        if (pi->present) continue;
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&p->idx->packs[pos], hex);
        if (pi->used_blobs == 0) {
            set_remove(p, pi, ACT_FORGET);
            nforget++;
        } else {
            CR_TRY(cr_buf_printf(&needed, "\n  %s", hex));
            nneeded++;
        }
    }
    if (nneeded) {
        CR_TRY(cr_buf_nul(&needed));
        say(p, CR_PRUNE_WARN, "The index references %zu needed pack files which are missing from the repository:%s",
            nneeded, (const char *)needed.data);
        return cr_error(CR_E_NOTFOUND, "packs from index missing in repo");
    }
    if (nforget) {
        say(p, CR_PRUNE_WARN, "Missing but unneeded pack files are referenced in the index, will be repaired");
        for (uint32_t pos = 0; pos < p->idx->npacks; pos++)
            if (p->packs[pos].action == ACT_FORGET) {
                char hex[CR_ID_HEX + 1];
                cr_id_to_hex(&p->idx->packs[pos], hex);
                say(p, CR_PRUNE_WARN, "will forget missing pack file %s", hex);
            }
    }
    return 0;
}

/* Tree (and mixed) packs first, then small packs, then the highest share
 * of unused data; ties by pack ID for a stable choice. */
static int cmp_candidates(const void *a, const void *b, void *ctx)
{
    const cr_prune_plan *p = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const pack_info *px = &p->packs[x], *py = &p->packs[y];
    bool tx = px->types != T_DATA, ty = py->types != T_DATA;
    if (tx != ty) return tx ? -1 : 1;
    if (px->small != py->small) return px->small ? -1 : 1;
    unsigned __int128 lx = (unsigned __int128)px->unused_size * py->used_size;
    unsigned __int128 ly = (unsigned __int128)py->unused_size * px->used_size;
    if (lx != ly) return lx > ly ? -1 : 1;
    return cr_id_cmp(&p->idx->packs[x], &p->idx->packs[y]);
}

static void set_repack(cr_prune_plan *p, pack_info *pi)
{
    pi->action = ACT_REPACK;
    p->nrepack++;
    p->st.packs.repack++;
    p->st.blobs.repack += pi->used_blobs + pi->unused_blobs;
    p->st.size.repack += pi->used_size + pi->unused_size;
    p->st.blobs.repackrm += pi->unused_blobs;
    p->st.size.repackrm += pi->unused_size;
}

static void select_repacks(cr_prune_plan *p, uint32_t *cand, size_t ncand)
{
    qsort_r(cand, ncand, sizeof *cand, cmp_candidates, p);
    uint64_t limit = max_unused_after(&p->o, p->st.size.used);
    uint64_t unused_now = p->st.size.unused + p->st.size.duplicate;
    for (size_t i = 0; i < ncand; i++) {
        pack_info *pi = &p->packs[cand[i]];
        uint64_t gone = p->st.size.remove + p->st.size.repackrm;
        bool unused_reached = (unused_now > gone ? unused_now - gone : 0) < limit;
        bool repack_full = p->o.max_repack_bytes != UINT64_MAX &&
                           p->st.size.repack + pi->used_size + pi->unused_size > p->o.max_repack_bytes;
        if (repack_full) pi->action = ACT_KEEP;
        else if (pi->types != T_DATA || pi->must_compress) set_repack(p, pi); /* only the size limit applies */
        else if (unused_reached && !pi->small) pi->action = ACT_KEEP;
        else set_repack(p, pi);
        if (pi->action == ACT_KEEP) p->st.packs.keep++;
    }
}

static int decide(cr_prune_plan *p)
{
    say(p, CR_PRUNE_INFO, "collecting packs for deletion and repacking");
    note_unreferenced(p);
    CR_TRY(check_sizes(p));
    size_t n = p->idx->npacks, ncand = 0, nsmall = 0;
    _cleanup_free_ uint32_t *cand = malloc((n + 1) * sizeof *cand);
    _cleanup_free_ uint32_t *small = malloc((n + 1) * sizeof *small);
    if (!cand || !small) return cr_error(-ENOMEM, "out of memory");
    for (uint32_t pos = 0; pos < n; pos++) {
        if (!p->packs[pos].present) continue;
        judge_pack(p, pos, cand, &ncand, small, &nsmall);
        if (p->packs[pos].action == ACT_KEEP) p->st.packs.keep++;
    }
    CR_TRY(judge_missing(p));
    /* A few small packs are not worth the work (and one would be repacked forever). */
    for (size_t i = 0; i < nsmall; i++) {
        p->packs[small[i]].small = true;
        if (nsmall < 10) {
            p->packs[small[i]].action = ACT_KEEP;
            p->st.packs.keep++;
        } else {
            cand[ncand++] = small[i];
        }
    }
    select_repacks(p, cand, ncand);
    return 0;
}

/* ---- plan ------------------------------------------------------------------ */

static int alloc_plan(cr_prune_plan *p)
{
    size_t nb = p->idx->nblobs + 1, np = p->idx->npacks + 1;
    p->used = calloc(nb, 1);
    p->keep = calloc(nb, 1);
    p->packs = calloc(np, sizeof *p->packs);
    if (!p->used || !p->keep || !p->packs) return cr_error(-ENOMEM, "out of memory");
    return cr_pack_groups_build(p->idx, &p->groups);
}

int cr_prune_plan_new(cr_repo *r, const cr_prune_opts *o, cr_prune_plan **out)
{
    cr_prune_plan *p = calloc(1, sizeof *p);
    if (!p) return cr_error(-ENOMEM, "out of memory");
    p->repo = r;
    p->o = *o;
    say(p, CR_PRUNE_INFO, "loading indexes...");
    int e = cr_repo_load_index(r);
    if (e == 0) {
        p->idx = r->index;
        e = alloc_plan(p);
    }
    if (e == 0) e = mark_used_blobs(p);
    if (e == 0) e = list_packs(p);
    if (e == 0 && !(p->unref = malloc((p->nlisted + 1) * sizeof *p->unref))) e = cr_error(-ENOMEM, "out of memory");
    if (e == 0) {
        choose_copies(p);
        summarise_packs(p);
        e = decide(p);
    }
    if (e < 0) {
        cr_prune_plan_free(p);
        return e;
    }
    *out = p;
    return 0;
}

const cr_prune_stats *cr_prune_plan_stats(const cr_prune_plan *p)
{
    return &p->st;
}

int cr_prune_plan_list(const cr_prune_plan *p, cr_prune_list which, cr_id **ids, size_t *n)
{
    size_t cap = (which == CR_PRUNE_UNREFERENCED ? p->nunref : p->idx->npacks) + 1, k = 0;
    cr_id *v = malloc(cap * sizeof *v);
    if (!v) return cr_error(-ENOMEM, "out of memory");
    if (which == CR_PRUNE_UNREFERENCED) {
        memcpy(v, p->unref, p->nunref * sizeof *v);
        k = p->nunref;
    } else {
        uint8_t act = which == CR_PRUNE_REPACK ? ACT_REPACK : which == CR_PRUNE_REMOVE ? ACT_REMOVE : ACT_FORGET;
        for (uint32_t pos = 0; pos < p->idx->npacks; pos++)
            if (p->packs[pos].action == act) v[k++] = p->idx->packs[pos];
    }
    qsort(v, k, sizeof *v, (int (*)(const void *, const void *))cr_id_cmp);
    *ids = v;
    *n = k;
    return 0;
}

void cr_prune_plan_free(cr_prune_plan *p)
{
    if (!p) return;
    if (p->own_idx) cr_index_free(p->idx);
    cr_pack_groups_free(&p->groups);
    free(p->used);
    free(p->keep);
    free(p->packs);
    free(p->listed);
    free(p->listed_size);
    free(p->unref);
    free(p);
}

/* ---- execution ------------------------------------------------------------ */

static void remove_packs_quietly(cr_prune_plan *p, const cr_id *ids, size_t n, const char *step)
{
    for (size_t i = 0; i < n; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        /* A pack that stays behind is unreferenced: harmless, the next prune removes it. */
        if (cr_be_remove(p->repo->be, CR_FILE_PACK, hex) < 0) say(p, CR_PRUNE_WARN, "%s", cr_error_message());
        if (i == 0) cr_test_abort_point(step);
    }
}

/* The index of what stays: every entry of the kept packs.  It becomes the
 * repository's index, so the blob writer dedups only against blobs that
 * survive, and the new packs join it when the writer flushes. */
static int switch_to_kept_index(cr_prune_plan *p)
{
    cr_index *kept = cr_index_new();
    if (!kept) return cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; i < p->idx->nblobs; i++) {
        const cr_index_entry *e = &p->idx->blobs[i];
        if (p->packs[e->pack].action != ACT_KEEP) continue;
        int r = cr_index_add(kept, &p->idx->packs[e->pack], e);
        if (r < 0) {
            cr_index_free(kept);
            return r;
        }
    }
    cr_index_finish(kept);
    p->repo->index = kept;
    p->own_idx = true;
    return 0;
}

/* Decode a kept blob: from the pack already in memory, or else from any
 * other copy the old index knows. */
static int load_for_repack(cr_prune_plan *p, size_t pos, const cr_buf *pack, cr_buf *out)
{
    const cr_index_entry *e = &p->idx->blobs[pos];
    int r = CR_E_FORMAT;
    if ((uint64_t)e->offset + e->length <= pack->len)
        r = cr_blob_decode(&p->repo->master, pack->data + e->offset, e->length, e->ulen, &e->id, out);
    else cr_error(CR_E_FORMAT, "blob beyond the end of the pack");
    if (r == 0 || r == -ENOMEM) return r;
    size_t first = pos;
    while (first > 0 && p->idx->blobs[first - 1].type == e->type && cr_id_eq(&p->idx->blobs[first - 1].id, &e->id)) first--;
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT;
    for (size_t k = first; k < group_end(p->idx, first); k++) {
        const cr_index_entry *c = &p->idx->blobs[k];
        if (k == pos || !p->packs[c->pack].present) continue;
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&p->idx->packs[c->pack], hex);
        if (cr_be_load(p->repo->be, CR_FILE_PACK, hex, c->offset, c->length, &raw) == 0 &&
            cr_blob_decode(&p->repo->master, raw.data, raw.len, c->ulen, &c->id, out) == 0) {
            char bhex[CR_ID_HEX + 1];
            cr_id_to_hex(&e->id, bhex);
            say(p, CR_PRUNE_WARN, "%s blob %s is damaged in the pack being repacked, the copy in pack %.8s is used",
                cr_blob_type_name((cr_blob_type)e->type), bhex, hex);
            return 0;
        }
    }
    return r;
}

static int repack_one(cr_prune_plan *p, cr_writer *w, uint32_t pack, cr_buf *data, cr_buf *plain)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&p->idx->packs[pack], hex);
    CR_TRY(cr_be_load(p->repo->be, CR_FILE_PACK, hex, 0, 0, data));
    for (size_t k = p->groups.start[pack]; k < p->groups.start[pack + 1]; k++) {
        size_t pos = p->groups.order[k];
        if (!p->keep[pos]) continue;
        const cr_index_entry *e = &p->idx->blobs[pos];
        char bhex[CR_ID_HEX + 1];
        cr_id_to_hex(&e->id, bhex);
        int r = load_for_repack(p, pos, data, plain);
        if (r < 0) return cr_error_ctx(r, "repacking pack %.8s: %s blob %s", hex, cr_blob_type_name((cr_blob_type)e->type), bhex);
        CR_TRY(cr_writer_save_blob(w, (cr_blob_type)e->type, plain->data, plain->len, &e->id, NULL, NULL));
    }
    return 0;
}

static int repack(cr_prune_plan *p)
{
    say(p, CR_PRUNE_INFO, "repacking packs");
    cr_writer *w = NULL;
    CR_TRY(cr_writer_new(p->repo, &p->o.writer, &w));
    _cleanup_buf_ cr_buf data = CR_BUF_INIT, plain = CR_BUF_INIT;
    int e = 0;
    size_t done = 0;
    for (uint32_t pos = 0; e == 0 && pos < p->idx->npacks; pos++) {
        if (p->packs[pos].action != ACT_REPACK) continue;
        e = check_cancel(p);
        if (e == 0) e = repack_one(p, w, pos, &data, &plain);
        if (e == 0 && ++done == 1) cr_test_abort_point("prune:repacked-1");
    }
    if (e == 0) e = cr_writer_flush(w);
    cr_writer_free(w);
    if (e == 0) cr_test_abort_point("prune:repacked");
    return e;
}

static int list_obsolete(cr_prune_plan *p, cr_id **ids, size_t *n)
{
    return cr_repo_list_ids(p->repo, CR_FILE_INDEX, ids, NULL, n);
}

static int remove_obsolete_packs(cr_prune_plan *p)
{
    size_t n = 0;
    _cleanup_free_ cr_id *ids = malloc((p->idx->npacks + 1) * sizeof *ids);
    if (!ids) return cr_error(-ENOMEM, "out of memory");
    for (uint32_t pos = 0; pos < p->idx->npacks; pos++)
        if (p->packs[pos].action == ACT_REMOVE || p->packs[pos].action == ACT_REPACK) ids[n++] = p->idx->packs[pos];
    if (!n) return 0;
    say(p, CR_PRUNE_INFO, "removing %zu old packs", n);
    remove_packs_quietly(p, ids, n, "prune:pack-removed-1");
    return 0;
}

/* The safe order: the complete new index is stored before any old index
 * file goes, and the old files are all gone before any pack goes. */
static int replace_index(cr_prune_plan *p)
{
    _cleanup_free_ cr_id *old = NULL;
    size_t nold = 0;
    CR_TRY(list_obsolete(p, &old, &nold));
    say(p, CR_PRUNE_INFO, "rebuilding index");
    CR_TRY(cr_index_save_packs(p->repo, p->repo->index, NULL, NULL));
    cr_test_abort_point("prune:index-written");
    say(p, CR_PRUNE_INFO, "deleting obsolete index files");
    CR_TRY(cr_index_files_remove(p->repo, old, nold));
    cr_test_abort_point("prune:index-removed");
    return remove_obsolete_packs(p);
}

/* --unsafe-recover-no-free-space: old index files go first, so space is
 * freed before anything is written.  Until the new index is stored the
 * repository has no index at all. */
static int replace_index_unsafely(cr_prune_plan *p)
{
    _cleanup_free_ cr_id *old = NULL;
    size_t nold = 0;
    CR_TRY(list_obsolete(p, &old, &nold));
    say(p, CR_PRUNE_INFO, "deleting index files");
    CR_TRY(cr_index_files_remove(p->repo, old, nold));
    CR_TRY(remove_obsolete_packs(p));
    say(p, CR_PRUNE_INFO, "rebuilding index");
    return cr_index_save_packs(p->repo, p->repo->index, NULL, NULL);
}

int cr_prune_execute(cr_prune_plan *p)
{
    if (p->executed) return cr_error(CR_E_USAGE, "prune plan already executed");
    p->executed = true;
    if (p->nunref) {
        say(p, CR_PRUNE_INFO, "deleting unreferenced packs");
        remove_packs_quietly(p, p->unref, p->nunref, "prune:unreferenced-removed-1");
    }
    if (!p->nrepack && !p->nremove && !p->nforget) return 0;
    CR_TRY(check_cancel(p));
    CR_TRY(switch_to_kept_index(p));
    if (p->nrepack) CR_TRY(repack(p));
    CR_TRY(check_cancel(p));
    return p->o.unsafe_recovery ? replace_index_unsafely(p) : replace_index(p);
}
