/* crestic stats: sizes and counts in restic's four modes. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"
#include "repo/index.h"
#include "util/error.h"
#include "util/idset.h"
#include "util/json.h"

typedef enum { MODE_RESTORE_SIZE, MODE_FILES_BY_CONTENTS, MODE_BLOBS_PER_FILE, MODE_RAW_DATA } stats_mode;

static const char *const mode_names[] = {"restore-size", "files-by-contents", "blobs-per-file", "raw-data"};

typedef struct {
    cr_repo *repo;
    stats_mode mode;
    uint64_t total_size, file_count, blob_count;
    cr_idset unique_files;   /* files-by-contents: hash of the content list  */
    cr_idset file_paths;     /* blobs-per-file: hash of the path            */
    cr_idset path_blobs;     /* blobs-per-file: hash of (path, blob)         */
    cr_idset inodes;         /* restore-size: (inode, device) per snapshot   */
    cr_idset data_blobs, tree_blobs; /* raw-data                              */
} stats;

static void hash_content(const cr_node *n, cr_id *out)
{
    cr_sha256(n->content, n->ncontent * sizeof *n->content, out->b);
}

/* restic counts each (path, blob) once; its path joins the node name twice
 * (a quirk that does not change the totals). */
static int count_blobs_per_file(stats *s, const cr_node *n, const char *path, size_t plen)
{
    for (size_t i = 0; i < n->ncontent; i++) {
        cr_id pid, pair;
        cr_sha256(path, plen, pid.b);
        int seen = cr_idset_add(&s->file_paths, &pid);
        if (seen < 0) return seen;
        if (!seen) s->file_count++;
        uint8_t both[64];
        memcpy(both, pid.b, 32);
        memcpy(both + 32, n->content[i].b, 32);
        cr_sha256(both, sizeof both, pair.b);
        if ((seen = cr_idset_add(&s->path_blobs, &pair)) < 0) return seen;
        if (seen) continue;
        size_t count;
        const cr_index_entry *e = cr_index_lookup(s->repo->index, CR_BLOB_DATA, &n->content[i], &count);
        if (!e) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&n->content[i], hex);
            return cr_error(CR_E_NOTFOUND, "blob %s not found for file %s", hex, path);
        }
        s->total_size += cr_index_entry_plain_len(e);
        s->blob_count++;
    }
    return 0;
}

static int visit(void *ud, const cr_node *n, const char *path, size_t plen)
{
    stats *s = ud;
    int seen;
    switch (s->mode) {
    case MODE_RESTORE_SIZE: {
        s->file_count++;
        /* hard links restore once: count each (inode, device) once */
        cr_id key = {{0}};
        memcpy(key.b, &n->inode, 8);
        memcpy(key.b + 8, &n->device_id, 8);
        if (n->inode == 0 || (seen = cr_idset_add(&s->inodes, &key)) == 0) s->total_size += n->size;
        else if (seen < 0) return seen;
        return 0;
    }
    case MODE_FILES_BY_CONTENTS: {
        cr_id fid;
        hash_content(n, &fid);
        if ((seen = cr_idset_add(&s->unique_files, &fid)) < 0) return seen;
        if (!seen) s->total_size += n->size, s->file_count++;
        return 0;
    }
    case MODE_BLOBS_PER_FILE: {
        cr_id fid;
        hash_content(n, &fid);
        if ((seen = cr_idset_add(&s->unique_files, &fid)) < 0) return seen;
        return seen ? 0 : count_blobs_per_file(s, n, path, plen);
    }
    case MODE_RAW_DATA:
        for (size_t i = 0; i < n->ncontent; i++)
            if ((seen = cr_idset_add(&s->data_blobs, &n->content[i])) < 0) return seen;
        if (n->has_subtree) {
            if ((seen = cr_idset_add(&s->tree_blobs, &n->subtree)) < 0) return seen;
            if (seen) return CR_WALK_SKIP; /* known subtree: its blobs are counted */
        }
        return 0;
    }
    return 0;
}

static int sum_raw(stats *s, const cr_idset *set, cr_blob_type t)
{
    for (size_t i = 0; i < set->cap; i++) {
        if (!set->used[i]) continue;
        size_t count;
        const cr_index_entry *e = cr_index_lookup(s->repo->index, t, &set->slots[i], &count);
        if (!e) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&set->slots[i], hex);
            return cr_error(CR_E_NOTFOUND, "%s blob %s not found", cr_blob_type_name(t), hex);
        }
        s->total_size += e->length;
        s->blob_count++;
    }
    return 0;
}

static int stats_snapshot(stats *s, const cr_snapshot *sn)
{
    cr_idset_free(&s->inodes); /* hard links are per snapshot */
    if (s->mode == MODE_RAW_DATA && cr_idset_add(&s->tree_blobs, &sn->tree) == 1) return 0;
    return cr_walk_tree(s->repo, &sn->tree, "", visit, NULL, s, NULL);
}

static void print_result(cr_global *g, const stats *s, size_t nsnap)
{
    if (g->json) {
        printf("{\"total_size\":%llu,\"total_file_count\":%llu,", (unsigned long long)s->total_size, (unsigned long long)s->file_count);
        if (s->blob_count) printf("\"total_blob_count\":%llu,", (unsigned long long)s->blob_count);
        printf("\"snapshots_count\":%zu}\n", nsnap);
        return;
    }
    char size[64];
    cr_go_format_bytes(s->total_size, size);
    printf("Stats in %s mode:\n", mode_names[s->mode]);
    printf("Snapshots processed:   %zu\n", nsnap);
    if (s->mode == MODE_RAW_DATA || s->mode == MODE_BLOBS_PER_FILE) printf("   Total Blob Count:   %llu\n", (unsigned long long)s->blob_count);
    if (s->mode != MODE_RAW_DATA) printf("   Total File Count:   %llu\n", (unsigned long long)s->file_count);
    printf("         Total Size:   %s\n", size);
}

static int select_snapshots(cr_global *g, cr_repo *r, int npos, char **ids, const cr_snapshot_filter *f, cr_snapshot **out, size_t *n)
{
    cr_snapshot *all = NULL;
    size_t nall = 0, k = 0;
    if (npos) {
        if ((f->nhosts || f->ntag_lists || f->npaths) && !g->quiet) fprintf(stderr, "Ignoring filters as there are explicit snapshot ids given\n");
        cr_snapshot *sel = calloc((size_t)npos, sizeof *sel);
        if (!sel) return cr_error(-ENOMEM, "out of memory");
        for (int i = 0; i < npos; i++) {
            int e = cr_repo_find_snapshot(r, ids[i], NULL, &sel[k]);
            if (e < 0) {
                cr_snapshots_free(sel, k);
                return cr_error_ctx(e, "could not load snapshot %s", ids[i]);
            }
            k++;
        }
        *out = sel, *n = k;
        return 0;
    }
    CR_TRY(cr_repo_load_snapshots(r, &all, &nall));
    for (size_t i = 0; i < nall; i++) {
        if (cr_snapshot_matches(&all[i], f)) all[k++] = all[i];
        else cr_snapshot_clear(&all[i]);
    }
    *out = all, *n = k;
    return 0;
}

static int run_stats(cr_global *g, int argc, char **argv)
{
    const char *mode = "restore-size";
    cr_filter_flags ff = {0};
    const cr_flag flags[] = {
        {"mode", 0, CR_FLAG_STRING, &mode, "counting mode: restore-size (default), files-by-contents, blobs-per-file or raw-data", "string"},
        CR_FILTER_FLAGS(ff),
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"stats", "Scan the repository and show basic statistics", "crestic stats [flags] [snapshot ID] [...]", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    stats s = {0};
    s.mode = (stats_mode)4;
    for (int m = 0; m < 4; m++)
        if (!strcmp(mode, mode_names[m])) s.mode = (stats_mode)m;
    if (s.mode == (stats_mode)4) return cr_cli_fail(g, cr_error(CR_E_USAGE, "unknown counting mode: %s (use the -h flag to get a list of supported modes)", mode));

    int rc = cr_cli_open_repo(g, &s.repo);
    if (rc) return rc;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, s.repo, false, &lock))) return cr_repo_close(s.repo), rc;
    if (!g->quiet && !g->json) printf("scanning...\n");
    cr_snapshot_filter f = cr_filter_from_flags(&ff);
    cr_snapshot *snaps = NULL;
    size_t n = 0;
    r = cr_repo_load_index(s.repo);
    if (r == 0) r = select_snapshots(g, s.repo, npos, argv, &f, &snaps, &n);
    for (size_t i = 0; r == 0 && i < n; i++) r = stats_snapshot(&s, &snaps[i]);
    if (r == 0 && s.mode == MODE_RAW_DATA) r = sum_raw(&s, &s.data_blobs, CR_BLOB_DATA);
    if (r == 0 && s.mode == MODE_RAW_DATA) r = sum_raw(&s, &s.tree_blobs, CR_BLOB_TREE);
    if (r == 0) print_result(g, &s, n);
    cr_snapshots_free(snaps, n);
    cr_idset_free(&s.unique_files), cr_idset_free(&s.file_paths), cr_idset_free(&s.path_blobs);
    cr_idset_free(&s.inodes), cr_idset_free(&s.data_blobs), cr_idset_free(&s.tree_blobs);
    cr_lock_release(lock);
    cr_repo_close(s.repo);
    cr_strv_free(&ff.hosts), cr_strv_free(&ff.tags), cr_strv_free(&ff.paths);
    return r < 0 ? cr_cli_fail(g, r) : CR_EXIT_OK;
}

const cr_command cr_cmd_stats = {"stats", "Scan the repository and show basic statistics", "crestic stats [flags] [snapshot ID] [...]", run_stats};
