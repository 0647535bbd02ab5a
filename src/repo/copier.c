/* restic copy: walk the source trees, store what the destination lacks. */
#include "repo/copier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/index.h"
#include "repo/tree.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/idset.h"

struct cr_copier {
    cr_repo *src, *dst;
    cr_writer *w;
    cr_idset walked_trees;
    cr_idset packs_seen; /* source packs counted for the current tree */
    cr_buf blob;         /* scratch: one blob's plaintext */
};

int cr_copier_new(cr_repo *src, cr_repo *dst, const cr_writer_opts *opts, cr_copier **out)
{
    cr_copier *c = calloc(1, sizeof *c);
    if (!c) return cr_error(-ENOMEM, "out of memory");
    c->src = src;
    c->dst = dst;
    int r = cr_writer_new(dst, opts, &c->w);
    if (r < 0) return free(c), r;
    *out = c;
    return 0;
}

void cr_copier_free(cr_copier *c)
{
    if (!c) return;
    cr_writer_free(c->w);
    cr_idset_free(&c->walked_trees);
    cr_idset_free(&c->packs_seen);
    cr_buf_free(&c->blob);
    free(c);
}

/* Count the source packs holding a blob that is copied, as restic reports
 * "N / N packs copied". */
static int count_packs(cr_copier *c, cr_blob_type t, const cr_id *id, uint64_t *packs)
{
    size_t n = 0;
    const cr_index_entry *e = cr_index_lookup(c->src->index, t, id, &n);
    for (size_t i = 0; i < n; i++) {
        int r = cr_idset_add(&c->packs_seen, &c->src->index->packs[e[i].pack]);
        if (r < 0) return r;
        if (r == 0) (*packs)++;
    }
    return 0;
}

/* One blob the destination may lack: load it from the source (which checks
 * its hash), store it unchanged. */
static int copy_blob(cr_copier *c, cr_blob_type t, const cr_id *id, const cr_buf *known, uint64_t *packs)
{
    if (cr_writer_has_blob(c->w, t, id)) return 0;
    const cr_buf *data = known;
    if (!data) {
        int r = cr_repo_load_blob(c->src, t, id, &c->blob);
        if (r < 0) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(id, hex);
            return cr_error_ctx(r, "loading %s blob %s from the source repository", cr_blob_type_name(t), hex);
        }
        data = &c->blob;
    }
    CR_TRY(count_packs(c, t, id, packs));
    bool added;
    cr_id stored;
    return cr_writer_save_blob(c->w, t, data->data, data->len, id, &stored, &added);
}

static int copy_tree_rec(cr_copier *c, const cr_id *id, uint64_t *packs)
{
    int seen = cr_idset_add(&c->walked_trees, id);
    if (seen) return seen < 0 ? seen : 0;
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT;
    int r = cr_repo_load_blob(c->src, CR_BLOB_TREE, id, &raw);
    if (r < 0) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(id, hex);
        return cr_error_ctx(r, "LoadTree(%.8s) returned error", hex);
    }
    cr_tree *tree = NULL;
    CR_TRY(cr_tree_parse((const char *)raw.data, raw.len, &tree));
    /* The raw bytes, never a re-encoding: the tree ID must not change. */
    r = copy_blob(c, CR_BLOB_TREE, id, &raw, packs);
    for (size_t i = 0; r >= 0 && i < tree->n; i++) {
        const cr_node *n = &tree->nodes[i];
        for (size_t k = 0; r >= 0 && k < n->ncontent; k++) r = copy_blob(c, CR_BLOB_DATA, &n->content[k], NULL, packs);
        /* Subtrees are walked even when the destination has them: it costs
         * a read and repairs a destination that lost blobs below them. */
        if (r >= 0 && n->has_subtree) r = copy_tree_rec(c, &n->subtree, packs);
    }
    cr_tree_free(tree);
    return r < 0 ? r : 0;
}

int cr_copier_copy_tree(cr_copier *c, const cr_id *tree, uint64_t *packs)
{
    *packs = 0;
    cr_idset_free(&c->packs_seen);
    return copy_tree_rec(c, tree, packs);
}

int cr_copier_flush(cr_copier *c)
{
    return cr_writer_flush(c->w);
}

/* Same number of elements and every element of b found in a. */
static bool same_set(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < nb; i++) {
        bool found = false;
        for (size_t k = 0; k < na && !found; k++) found = !strcmp(a[k], b[i]);
        if (!found) return false;
    }
    return true;
}

bool cr_snapshots_similar(const cr_snapshot *a, const cr_snapshot *b)
{
    if (cr_time_cmp(&a->time, &b->time) != 0) return false;
    if (a->has_tree != b->has_tree || (a->has_tree && !cr_id_eq(&a->tree, &b->tree))) return false;
    if (strcmp(a->hostname, b->hostname) || strcmp(a->username, b->username)) return false;
    if (a->uid != b->uid || a->gid != b->gid) return false;
    if (a->nexcludes != b->nexcludes) return false;
    for (size_t i = 0; i < a->nexcludes; i++)
        if (strcmp(a->excludes[i], b->excludes[i])) return false;
    return same_set(a->paths, a->npaths, b->paths, b->npaths) && same_set(a->tags, a->ntags, b->tags, b->ntags);
}

const cr_id *cr_snapshot_origin(const cr_snapshot *s)
{
    return s->has_original ? &s->original : &s->id;
}

int cr_copier_save_snapshot(cr_repo *dst, const cr_snapshot *src_sn, cr_id *new_id)
{
    cr_snapshot copy = *src_sn; /* shallow: only read by the encoder */
    copy.has_parent = false;
    copy.original = *cr_snapshot_origin(src_sn);
    copy.has_original = true;
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_snapshot_encode(&copy, &json));
    return cr_repo_save_unpacked(dst, CR_FILE_SNAPSHOT, json.data, json.len, new_id);
}

static int by_id(const void *a, const void *b)
{
    return cr_id_cmp(&((const cr_snapshot *)a)->id, &((const cr_snapshot *)b)->id);
}

static int select_all(cr_repo *r, const cr_snapshot_filter *f, cr_snapshot **out, size_t *n)
{
    cr_snapshot *all = NULL;
    size_t nall = 0, k = 0;
    CR_TRY(cr_repo_load_snapshots(r, &all, &nall));
    for (size_t i = 0; i < nall; i++) {
        if (cr_snapshot_matches(&all[i], f)) all[k++] = all[i];
        else cr_snapshot_clear(&all[i]);
    }
    if (k) qsort(all, k, sizeof *all, by_id);
    *out = all;
    *n = k;
    return 0;
}

int cr_select_snapshots(cr_repo *r, const char *const *ids, size_t nids, const cr_snapshot_filter *f,
                        cr_snapshot **out, size_t *n)
{
    if (nids == 0) return select_all(r, f, out, n);
    cr_snapshot *sel = calloc(nids, sizeof *sel);
    if (!sel) return cr_error(-ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < nids; i++) {
        if (cr_repo_find_snapshot(r, ids[i], f, &sel[k]) < 0) fprintf(stderr, "Ignoring \"%s\": %s\n", ids[i], cr_error_message());
        else k++;
    }
    *out = sel;
    *n = k;
    return 0;
}
