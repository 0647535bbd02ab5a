/* crestic repair snapshots (today's restic): new snapshots without the
 * damaged parts; dispatched from cmd_repair.c through a weak symbol. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "repo/copier.h"
#include "repo/repair_snapshots.h"
#include "repo/writer.h"
#include "util/cleanup.h"
#include "util/error.h"

/* Shared with rewrite (defined in cmd_rewrite.c). */
void cr_cli_print_snapshot_line(const cr_snapshot *sn);
int cr_cli_replace_snapshot(cr_global *g, cr_repo *r, cr_snapshot *sn, const cr_id *tree, bool is_null,
                            bool dry_run, bool forget, const char *tag, bool *changed);
void cr_cli_print_modified(const cr_global *g, size_t changed, bool dry_run);

typedef struct {
    bool forget, dry_run;
    cr_filter_flags filter;
} repair_opts;

static void print_line(void *ud, const char *line)
{
    const cr_global *g = ud;
    if (!g->quiet && !g->json) printf("%s\n", line);
}

static int repair_one(cr_global *g, cr_repo *r, cr_writer *w, cr_snapshot_repairer *sr, const repair_opts *o,
                      cr_snapshot *sn, bool *changed)
{
    if (!g->quiet && !g->json) cr_cli_print_snapshot_line(sn);
    cr_id tree = {0};
    bool is_null = !sn->has_tree;
    if (sn->has_tree) CR_TRY(cr_snapshot_repair_tree(sr, &sn->tree, &tree, &is_null));
    CR_TRY(cr_writer_flush(w));
    return cr_cli_replace_snapshot(g, r, sn, &tree, is_null, o->dry_run, o->forget, "repaired", changed);
}

static int repair_selected(cr_global *g, cr_repo *r, const repair_opts *o, int npos, char **argv)
{
    cr_snapshot_filter f = cr_filter_from_flags(&o->filter);
    cr_snapshot *sel = NULL;
    size_t n = 0, changed = 0;
    CR_TRY(cr_select_snapshots(r, (const char *const *)argv, (size_t)npos, &f, &sel, &n));
    cr_writer_opts wo = {.compression = CR_COMPRESS_AUTO};
    cr_writer *w = NULL;
    cr_snapshot_repairer *sr = NULL;
    int rc = cr_repo_load_index(r);
    if (rc >= 0) rc = cr_writer_new(r, &wo, &w);
    if (rc >= 0) rc = cr_snapshot_repairer_new(r, w, o->dry_run, print_line, g, &sr);
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        bool ch = false;
        if (cr_interrupted) rc = cr_error(CR_E_INTERRUPTED, "interrupted");
        else rc = repair_one(g, r, w, sr, o, &sel[i], &ch);
        if (rc < 0) {
            char id[9];
            cr_id_short(&sel[i].id, id);
            rc = cr_error_ctx(rc, "unable to rewrite snapshot ID \"%s\"", id);
        }
        changed += ch;
    }
    cr_snapshot_repairer_free(sr);
    cr_writer_free(w);
    cr_snapshots_free(sel, n);
    if (rc >= 0) cr_cli_print_modified(g, changed, o->dry_run);
    return rc;
}

static void repair_opts_free(repair_opts *o)
{
    cr_strv_free(&o->filter.hosts), cr_strv_free(&o->filter.tags), cr_strv_free(&o->filter.paths);
}

int cr_cli_repair_snapshots(cr_global *g, int argc, char **argv)
{
    _cleanup_(repair_opts_free) repair_opts o = {0};
    const cr_flag flags[] = {
        {"forget", 0, CR_FLAG_BOOL, &o.forget, "remove original snapshots after creating new ones", NULL},
        {"dry-run", 'n', CR_FLAG_BOOL, &o.dry_run, "do not do anything, just print what would be done", NULL},
        CR_FILTER_FLAGS(o.filter),
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"snapshots", "Repair snapshots", "crestic repair snapshots [flags] [snapshot ID] [...]", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    cr_repo *repo = NULL;
    int rc = cr_cli_open_repo(g, &repo);
    if (rc) return rc;
    cr_lock *lock = NULL;
    if (!o.dry_run) rc = cr_cli_lock(g, repo, true, &lock);
    if (rc == 0 && (r = repair_selected(g, repo, &o, npos, argv)) < 0) rc = cr_cli_fail(g, r);
    cr_lock_release(lock);
    cr_repo_close(repo);
    return rc;
}

const cr_command cr_cmd_repair_snapshots = {"snapshots", "Repair snapshots", "crestic repair snapshots [flags] [snapshot ID] [...]", cr_cli_repair_snapshots};
