/* crestic recover: a snapshot of every tree no snapshot or tree refers to
 * (restic 0.14), so data whose snapshot file was lost can be restored. */
#include "cli/cli.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/output.h"
#include "repo/index.h"
#include "repo/writer.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/idset.h"

typedef struct {
    cr_global *g;
    cr_repo *repo;
    cr_id *trees; /* every tree blob in the index, once */
    size_t ntrees;
    cr_idset referenced;
} recover_run;

static bool verbose(const recover_run *rr)
{
    return !rr->g->quiet && !rr->g->json;
}

static int collect_trees(recover_run *rr)
{
    const cr_index *idx = rr->repo->index;
    _cleanup_(cr_idset_free) cr_idset seen = CR_IDSET_INIT;
    rr->trees = calloc(idx->nblobs ? idx->nblobs : 1, sizeof *rr->trees);
    if (!rr->trees) return cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; i < idx->nblobs; i++) {
        if (idx->blobs[i].type != CR_BLOB_TREE) continue;
        int r = cr_idset_add(&seen, &idx->blobs[i].id);
        if (r < 0) return r;
        if (r == 0) rr->trees[rr->ntrees++] = idx->blobs[i].id;
    }
    return 0;
}

/* Mark the subtrees every tree refers to; unreadable trees are warned about
 * and skipped, as restic does. */
static int mark_subtrees(recover_run *rr)
{
    if (verbose(rr)) printf("load %zu trees\n", rr->ntrees);
    for (size_t i = 0; i < rr->ntrees; i++) {
        if (cr_interrupted) return cr_error(CR_E_INTERRUPTED, "interrupted");
        cr_tree *t = NULL;
        if (cr_load_tree(rr->repo, &rr->trees[i], &t) < 0) {
            char id[9];
            cr_id_short(&rr->trees[i], id);
            fprintf(stderr, "unable to load tree %s: %s\n", id, cr_error_message());
            continue;
        }
        int r = 0;
        for (size_t k = 0; r >= 0 && k < t->n; k++)
            if (t->nodes[k].type == CR_NODE_DIR && t->nodes[k].has_subtree) r = cr_idset_add(&rr->referenced, &t->nodes[k].subtree);
        cr_tree_free(t);
        if (r < 0) return r;
    }
    if (verbose(rr)) printf("[0:00] 100.00%%  %zu / %zu trees loaded\n\n", rr->ntrees, rr->ntrees);
    return 0;
}

static int mark_snapshot_trees(recover_run *rr)
{
    if (verbose(rr)) printf("load snapshots\n");
    cr_snapshot *snaps = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_load_snapshots(rr->repo, &snaps, &n));
    int r = 0;
    for (size_t i = 0; r >= 0 && i < n; i++)
        if (snaps[i].has_tree) r = cr_idset_add(&rr->referenced, &snaps[i].tree);
    cr_snapshots_free(snaps, n);
    if (verbose(rr)) printf("done\n");
    return r < 0 ? r : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const cr_node *)a)->name, ((const cr_node *)b)->name);
}

/* One directory per root, named by its short ID, as restic 0.14 builds it
 * (mode 0755 without the directory bit, times "now"). */
static int build_root_nodes(recover_run *rr, cr_node *nodes, char (*names)[9], size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < rr->ntrees; i++) {
        if (cr_idset_has(&rr->referenced, &rr->trees[i])) continue;
        cr_node *nd = &nodes[*n];
        cr_id_short(&rr->trees[i], names[*n]);
        nd->name = names[*n];
        nd->name_len = 8;
        nd->type = CR_NODE_DIR;
        nd->mode = 0755;
        nd->mtime = cr_time_now();
        nd->atime = cr_time_now();
        nd->ctime = cr_time_now();
        nd->content_null = true;
        nd->has_subtree = true;
        nd->subtree = rr->trees[i];
        (*n)++;
    }
    if (*n) qsort(nodes, *n, sizeof *nodes, by_name);
    return 0;
}

static int save_recovered(recover_run *rr, const cr_node *nodes, size_t n)
{
    cr_writer_opts wo = {.compression = CR_COMPRESS_AUTO};
    cr_writer *w = NULL;
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_tree_encode(&json, nodes, n));
    CR_TRY(cr_writer_new(rr->repo, &wo, &w));
    cr_id tree;
    bool added;
    int r = cr_writer_save_blob(w, CR_BLOB_TREE, json.data, json.len, NULL, &tree, &added);
    if (r >= 0) r = cr_writer_flush(w);
    cr_writer_free(w);
    CR_TRY(r);

    char host[256] = "", *paths[] = {"/recover"}, *tags[] = {"recovered"};
    if (gethostname(host, sizeof host) < 0) host[0] = 0;
    host[sizeof host - 1] = 0;
    struct passwd *pw = getpwuid(getuid());
    cr_snapshot sn = {.time = cr_time_now(), .has_tree = true, .tree = tree, .paths = paths, .npaths = 1,
                      .hostname = host, .username = pw ? pw->pw_name : "", .uid = getuid(), .gid = getgid(),
                      .tags = tags, .ntags = 1, .program_version = ""};
    cr_buf_reset(&json);
    CR_TRY(cr_snapshot_encode(&sn, &json));
    cr_id id;
    CR_TRY(cr_repo_save_unpacked(rr->repo, CR_FILE_SNAPSHOT, json.data, json.len, &id));
    char short_id[9];
    cr_id_short(&id, short_id);
    if (!rr->g->json) printf("saved new snapshot %s\n", short_id);
    return 0;
}

static int recover(recover_run *rr)
{
    if (verbose(rr)) printf("load index files\n");
    CR_TRY(cr_repo_load_index(rr->repo));
    CR_TRY(collect_trees(rr));
    CR_TRY(mark_subtrees(rr));
    CR_TRY(mark_snapshot_trees(rr));
    cr_node *nodes = calloc(rr->ntrees ? rr->ntrees : 1, sizeof *nodes);
    char (*names)[9] = calloc(rr->ntrees ? rr->ntrees : 1, sizeof *names);
    size_t n = 0;
    int r = nodes && names ? build_root_nodes(rr, nodes, names, &n) : cr_error(-ENOMEM, "out of memory");
    if (r >= 0 && !rr->g->json) printf("\nfound %zu unreferenced roots\n", n);
    if (r >= 0 && n == 0 && verbose(rr)) printf("no snapshot to write.\n");
    if (r >= 0 && n) r = save_recovered(rr, nodes, n);
    free(nodes);
    free(names);
    return r;
}

static int run_recover(cr_global *g, int argc, char **argv)
{
    const cr_flag flags[] = {{NULL, 0, 0, NULL, NULL, NULL}};
    static const cr_command self = {"recover", "Recover data from the repository not referenced by snapshots", "crestic recover [flags]", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    recover_run rr = {.g = g};
    int rc = cr_cli_open_repo(g, &rr.repo);
    if (rc) return rc;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, rr.repo, false, &lock)) == 0 && (r = recover(&rr)) < 0) rc = cr_cli_fail(g, r);
    cr_lock_release(lock);
    cr_repo_close(rr.repo);
    free(rr.trees);
    cr_idset_free(&rr.referenced);
    return rc;
}

const cr_command cr_cmd_recover = {"recover", "Recover data from the repository not referenced by snapshots", "crestic recover [flags]", run_recover};
