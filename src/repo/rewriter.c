/* Tree rewriting shared by rewrite and repair snapshots. */
#include "repo/rewriter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "util/cleanup.h"
#include "util/error.h"

typedef struct {
    cr_id from, to;
} tree_mapping;

struct cr_rewriter {
    cr_repo *repo;
    cr_writer *w;
    cr_rewrite_opts o;
    /* cache_by_id: old tree ID -> new tree ID (open addressing) */
    tree_mapping *map;
    uint8_t *used;
    size_t nmap, capmap;
};

int cr_rewriter_new(cr_repo *r, cr_writer *w, const cr_rewrite_opts *o, cr_rewriter **out)
{
    cr_rewriter *rw = calloc(1, sizeof *rw);
    if (!rw) return cr_error(-ENOMEM, "out of memory");
    rw->repo = r;
    rw->w = w;
    rw->o = *o;
    *out = rw;
    return 0;
}

void cr_rewriter_free(cr_rewriter *rw)
{
    if (!rw) return;
    free(rw->map);
    free(rw->used);
    free(rw);
}

static size_t slot_of(const cr_id *id, size_t cap)
{
    uint64_t h;
    memcpy(&h, id->b, sizeof h);
    return (size_t)h & (cap - 1);
}

static const cr_id *cache_get(const cr_rewriter *rw, const cr_id *id)
{
    if (!rw->capmap) return NULL;
    for (size_t i = slot_of(id, rw->capmap); rw->used[i]; i = (i + 1) & (rw->capmap - 1))
        if (cr_id_eq(&rw->map[i].from, id)) return &rw->map[i].to;
    return NULL;
}

static void cache_insert(tree_mapping *map, uint8_t *used, size_t cap, const tree_mapping *m)
{
    size_t i = slot_of(&m->from, cap);
    while (used[i]) i = (i + 1) & (cap - 1);
    map[i] = *m;
    used[i] = 1;
}

static int cache_put(cr_rewriter *rw, const cr_id *from, const cr_id *to)
{
    if (2 * (rw->nmap + 1) > rw->capmap) {
        size_t cap = rw->capmap ? 2 * rw->capmap : 256;
        tree_mapping *map = calloc(cap, sizeof *map);
        uint8_t *used = calloc(cap, 1);
        if (!map || !used) return free(map), free(used), cr_error(-ENOMEM, "out of memory");
        for (size_t i = 0; i < rw->capmap; i++)
            if (rw->used[i]) cache_insert(map, used, cap, &rw->map[i]);
        free(rw->map);
        free(rw->used);
        rw->map = map, rw->used = used, rw->capmap = cap;
    }
    cache_insert(rw->map, rw->used, rw->capmap, &(tree_mapping){*from, *to});
    rw->nmap++;
    return 0;
}

static int load_tree(cr_rewriter *rw, const cr_id *id, cr_tree **out)
{
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT;
    CR_TRY(cr_repo_load_blob(rw->repo, CR_BLOB_TREE, id, &raw));
    return cr_tree_parse((const char *)raw.data, raw.len, out);
}

static char *child_path(const char *dir, const cr_node *n)
{
    char *p = NULL;
    bool root = !strcmp(dir, "/");
    if (asprintf(&p, "%s%s%s", dir, root ? "" : "/", n->name) < 0) return NULL;
    return p;
}

static int rewrite_rec(cr_rewriter *rw, const cr_id *id, const char *path, cr_id *out, bool *is_null);

/* One node: the callback first, then its subtree.  Returns KEEP, DROP or
 * CHANGED like the callback. */
static int rewrite_node(cr_rewriter *rw, cr_node *n, const char *dir)
{
    _cleanup_free_ char *path = child_path(dir, n);
    if (!path) return cr_error(-ENOMEM, "out of memory");
    int verdict = rw->o.rewrite_node ? rw->o.rewrite_node(rw->o.ud, n, path) : CR_REWRITE_KEEP;
    if (verdict < 0 || verdict == CR_REWRITE_DROP || !n->has_subtree) return verdict;
    cr_id sub;
    bool is_null = false;
    CR_TRY(rewrite_rec(rw, &n->subtree, path, &sub, &is_null));
    if (is_null) return cr_error(CR_E_FORMAT, "%s: subtree replaced by nothing", path);
    if (cr_id_eq(&sub, &n->subtree)) return verdict;
    n->subtree = sub;
    return CR_REWRITE_CHANGED;
}

/* Rewrite the nodes of a loaded tree; store it when anything changed. */
static int rewrite_loaded(cr_rewriter *rw, cr_tree *t, const cr_id *id, const char *path, cr_id *out)
{
    bool changed = false;
    size_t kept = 0;
    for (size_t i = 0; i < t->n; i++) {
        int v = rewrite_node(rw, &t->nodes[i], path);
        if (v < 0) return v;
        if (v == CR_REWRITE_DROP) {
            changed = true;
            continue;
        }
        if (v == CR_REWRITE_CHANGED) changed = true;
        if (kept != i) t->nodes[kept] = t->nodes[i];
        kept++;
    }
    if (!changed) {
        *out = *id;
        return 0;
    }
    return cr_rewriter_save_tree(rw, t->nodes, kept, out);
}

static int rewrite_rec(cr_rewriter *rw, const cr_id *id, const char *path, cr_id *out, bool *is_null)
{
    const cr_id *cached = rw->o.cache_by_id ? cache_get(rw, id) : NULL;
    if (cached) {
        *out = *cached;
        return 0;
    }
    cr_tree *t = NULL;
    int r = load_tree(rw, id, &t);
    if (r < 0) {
        if (!rw->o.failed_tree) return cr_error_ctx(r, "%s", path);
        cr_error_clear();
        r = rw->o.failed_tree(rw->o.ud, id, path, out);
        if (r < 0) return r;
        *is_null = r == 1;
        return 0;
    }
    r = rewrite_loaded(rw, t, id, path, out);
    cr_tree_free(t);
    if (r >= 0 && rw->o.cache_by_id) r = cache_put(rw, id, out);
    return r < 0 ? r : 0;
}

int cr_rewrite_tree(cr_rewriter *rw, const cr_id *root, cr_id *out, bool *is_null)
{
    *is_null = false;
    return rewrite_rec(rw, root, "/", out, is_null);
}

int cr_rewriter_save_tree(cr_rewriter *rw, const cr_node *nodes, size_t n, cr_id *id)
{
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_tree_encode(&json, nodes, n));
    if (rw->o.dry_run) {
        cr_sha256(json.data, json.len, id->b);
        return 0;
    }
    bool added;
    return cr_writer_save_blob(rw->w, CR_BLOB_TREE, json.data, json.len, NULL, id, &added);
}

static int add_tag(cr_snapshot *sn, const char *tag)
{
    if (cr_snapshot_has_tag(sn, tag)) return 0;
    char **tags = realloc(sn->tags, (sn->ntags + 1) * sizeof *tags);
    if (!tags) return cr_error(-ENOMEM, "out of memory");
    sn->tags = tags;
    if (!(tags[sn->ntags] = strdup(tag))) return cr_error(-ENOMEM, "out of memory");
    sn->ntags++;
    return 0;
}

int cr_replace_snapshot(cr_repo *r, cr_snapshot *sn, const cr_id *tree, const char *tag, bool forget, cr_id *new_id)
{
    /* As today's restic: the rewritten snapshot is a new one whose origin
     * is the snapshot it replaces. */
    sn->original = sn->id;
    sn->has_original = true;
    sn->tree = *tree;
    sn->has_tree = true;
    if (!forget && tag) CR_TRY(add_tag(sn, tag));
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_snapshot_encode(sn, &json));
    CR_TRY(cr_repo_save_unpacked(r, CR_FILE_SNAPSHOT, json.data, json.len, new_id));
    if (!forget) return 0;
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&sn->id, hex);
    return cr_be_remove(r->be, CR_FILE_SNAPSHOT, hex);
}
