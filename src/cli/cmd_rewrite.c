/* crestic rewrite: remove files from existing snapshots (today's restic;
 * 0.14 has no such command, so the results are checked by its readers). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"
#include "repo/copier.h"
#include "repo/excluder.h"
#include "repo/rewriter.h"
#include "util/cleanup.h"
#include "util/error.h"

typedef struct {
    cr_strv excludes, iexcludes, exclude_files, iexclude_files;
    bool forget, dry_run;
    cr_filter_flags filter;
} rewrite_opts;

typedef struct {
    cr_global *g;
    cr_excluder *ex;
} exclude_ctx;

static bool verbose(const cr_global *g)
{
    return !g->quiet && !g->json;
}

static int exclude_node(void *ud, cr_node *node, const char *path)
{
    exclude_ctx *c = ud;
    if (!cr_excluder_reject_path(c->ex, path)) return CR_REWRITE_KEEP;
    if (verbose(c->g)) printf("excluding %s\n", path);
    return CR_REWRITE_DROP;
}

/* Today's restic's Snapshot.String(). */
void cr_cli_print_snapshot_line(const cr_snapshot *sn);
void cr_cli_print_snapshot_line(const cr_snapshot *sn)
{
    char id[9];
    cr_id_short(&sn->id, id);
    _cleanup_buf_ cr_buf paths = CR_BUF_INIT, when = CR_BUF_INIT;
    cr_format_go_strings(&paths, (const char *const *)sn->paths, sn->npaths);
    cr_format_go_time(&when, &sn->time);
    printf("\nsnapshot %s of %.*s at %.*s by %s@%s\n", id, (int)paths.len, (const char *)paths.data, (int)when.len,
           (const char *)when.data, sn->username, sn->hostname);
}

/* Save the rewritten snapshot unless nothing changed; true if it did. */
int cr_cli_replace_snapshot(cr_global *g, cr_repo *r, cr_snapshot *sn, const cr_id *tree, bool is_null,
                            bool dry_run, bool forget, const char *tag, bool *changed);
int cr_cli_replace_snapshot(cr_global *g, cr_repo *r, cr_snapshot *sn, const cr_id *tree, bool is_null,
                            bool dry_run, bool forget, const char *tag, bool *changed)
{
    char old[9], new_short[9];
    cr_id_short(&sn->id, old);
    *changed = true;
    if (is_null) {
        if (dry_run) {
            if (verbose(g)) printf("would delete empty snapshot\n");
            return 0;
        }
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&sn->id, hex);
        CR_TRY(cr_be_remove(r->be, CR_FILE_SNAPSHOT, hex));
        if (verbose(g)) printf("removed empty snapshot %s\n", old);
        return 0;
    }
    if (sn->has_tree && cr_id_eq(tree, &sn->tree)) {
        *changed = false;
        return 0;
    }
    if (dry_run) {
        if (verbose(g)) printf("would save new snapshot\n%s", forget ? "would remove old snapshot\n" : "");
        return 0;
    }
    cr_id new_id;
    CR_TRY(cr_replace_snapshot(r, sn, tree, tag, forget, &new_id));
    cr_id_short(&new_id, new_short);
    if (verbose(g)) printf("saved new snapshot %s\n%s%s%s", new_short, forget ? "removed old snapshot " : "", forget ? old : "", forget ? "\n" : "");
    return 0;
}

void cr_cli_print_modified(const cr_global *g, size_t changed, bool dry_run);
void cr_cli_print_modified(const cr_global *g, size_t changed, bool dry_run)
{
    if (!verbose(g)) return;
    printf("\n");
    if (!changed) printf(dry_run ? "no snapshots would be modified\n" : "no snapshots were modified\n");
    else if (dry_run) printf("would modify %zu snapshots\n", changed);
    else printf("modified %zu snapshots\n", changed);
}

static int writer_opts(const cr_global *g, cr_writer_opts *wo)
{
    *wo = (cr_writer_opts){.compression = CR_COMPRESS_AUTO};
    const char *c = g->compression ? g->compression : getenv("RESTIC_COMPRESSION");
    if (c && *c) CR_TRY(cr_compression_parse(c, &wo->compression));
    if (g->pack_size) {
        if (g->pack_size < 4 || g->pack_size > 128) return cr_error(CR_E_USAGE, "pack size larger than limit of 128 MiB or smaller than 4 MiB");
        wo->pack_size = (size_t)g->pack_size << 20;
    }
    return 0;
}

/* One snapshot: new trees, flushed before the snapshot refers to them. */
static int rewrite_one(cr_global *g, cr_repo *r, cr_writer *w, cr_rewriter *rw, const rewrite_opts *o,
                       cr_snapshot *sn, bool *changed)
{
    if (verbose(g)) cr_cli_print_snapshot_line(sn);
    if (!sn->has_tree) return cr_error(CR_E_FORMAT, "snapshot has no tree");
    cr_id tree;
    bool is_null;
    CR_TRY(cr_rewrite_tree(rw, &sn->tree, &tree, &is_null));
    CR_TRY(cr_writer_flush(w));
    return cr_cli_replace_snapshot(g, r, sn, &tree, is_null, o->dry_run, o->forget, "rewrite", changed);
}

static int rewrite_selected(cr_global *g, cr_repo *r, const rewrite_opts *o, cr_excluder *ex, int npos, char **argv)
{
    cr_snapshot_filter f = cr_filter_from_flags(&o->filter);
    cr_snapshot *sel = NULL;
    size_t n = 0, changed = 0;
    CR_TRY(cr_select_snapshots(r, (const char *const *)argv, (size_t)npos, &f, &sel, &n));
    cr_writer_opts wo;
    cr_writer *w = NULL;
    cr_rewriter *rw = NULL;
    exclude_ctx ctx = {g, ex};
    cr_rewrite_opts ro = {.rewrite_node = exclude_node, .ud = &ctx, .dry_run = o->dry_run};
    int rc = cr_repo_load_index(r);
    if (rc >= 0) rc = writer_opts(g, &wo);
    if (rc >= 0) rc = cr_writer_new(r, &wo, &w);
    if (rc >= 0) rc = cr_rewriter_new(r, w, &ro, &rw);
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        bool ch = false;
        if (cr_interrupted) rc = cr_error(CR_E_INTERRUPTED, "interrupted");
        else rc = rewrite_one(g, r, w, rw, o, &sel[i], &ch);
        if (rc < 0) {
            char id[9];
            cr_id_short(&sel[i].id, id);
            rc = cr_error_ctx(rc, "unable to rewrite snapshot ID \"%s\"", id);
        }
        changed += ch;
    }
    cr_rewriter_free(rw);
    cr_writer_free(w);
    cr_snapshots_free(sel, n);
    if (rc >= 0) cr_cli_print_modified(g, changed, o->dry_run);
    return rc;
}

static int build_excluder(const rewrite_opts *o, cr_excluder **ex)
{
    cr_exclude_opts eo = {
        .excludes = o->excludes.v, .nexcludes = o->excludes.n,
        .iexcludes = o->iexcludes.v, .niexcludes = o->iexcludes.n,
        .exclude_files = o->exclude_files.v, .nexclude_files = o->exclude_files.n,
        .iexclude_files = o->iexclude_files.v, .niexclude_files = o->iexclude_files.n,
        .larger_than = -1,
    };
    return cr_excluder_new(&eo, ex);
}

static void rewrite_opts_free(rewrite_opts *o)
{
    cr_strv_free(&o->excludes), cr_strv_free(&o->iexcludes);
    cr_strv_free(&o->exclude_files), cr_strv_free(&o->iexclude_files);
    cr_strv_free(&o->filter.hosts), cr_strv_free(&o->filter.tags), cr_strv_free(&o->filter.paths);
}

static int run_rewrite(cr_global *g, int argc, char **argv)
{
    _cleanup_(rewrite_opts_free) rewrite_opts o = {0};
    const cr_flag flags[] = {
        {"exclude", 'e', CR_FLAG_STRINGS, &o.excludes, "exclude a pattern (can be specified multiple times)", "pattern"},
        {"exclude-file", 0, CR_FLAG_STRINGS, &o.exclude_files, "read exclude patterns from a file (can be specified multiple times)", "file"},
        {"iexclude", 0, CR_FLAG_STRINGS, &o.iexcludes, "same as --exclude pattern but ignores the casing of filenames", "pattern"},
        {"iexclude-file", 0, CR_FLAG_STRINGS, &o.iexclude_files, "same as --exclude-file but ignores casing of filenames in patterns", "file"},
        {"forget", 0, CR_FLAG_BOOL, &o.forget, "remove original snapshots after creating new ones", NULL},
        {"dry-run", 'n', CR_FLAG_BOOL, &o.dry_run, "do not do anything, just print what would be done", NULL},
        CR_FILTER_FLAGS(o.filter),
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"rewrite", "Rewrite snapshots to exclude unwanted files", "crestic rewrite [flags] [snapshotID ...]", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    if (!o.excludes.n && !o.iexcludes.n && !o.exclude_files.n && !o.iexclude_files.n)
        return cr_cli_fail(g, cr_error(CR_E_USAGE, "Nothing to do: no excludes provided"));
    cr_excluder *ex = NULL;
    if ((r = build_excluder(&o, &ex)) < 0) return cr_cli_fail(g, r);

    cr_repo *repo = NULL;
    int rc = cr_cli_open_repo(g, &repo);
    if (rc) return cr_excluder_free(ex), rc;
    cr_lock *lock = NULL;
    if (!o.dry_run) rc = cr_cli_lock(g, repo, o.forget, &lock);
    if (rc == 0 && (r = rewrite_selected(g, repo, &o, ex, npos, argv)) < 0) rc = cr_cli_fail(g, r);
    cr_lock_release(lock);
    cr_repo_close(repo);
    cr_excluder_free(ex);
    return rc;
}

const cr_command cr_cmd_rewrite = {"rewrite", "Rewrite snapshots to exclude unwanted files", "crestic rewrite [flags] [snapshotID ...]", run_rewrite};
