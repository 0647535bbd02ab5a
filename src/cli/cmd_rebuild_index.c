/* crestic rebuild-index (restic 0.14's name) and the shared implementation
 * of `repair index` (today's restic): a new index from the pack files. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "repo/repair.h"
#include "util/error.h"

/* Used by cmd_repair.c for `repair index`. */
int cr_run_repair_index(cr_global *g, const cr_command *self, int argc, char **argv);

static void report(void *ud, cr_repair_level level, const char *text)
{
    const cr_global *g = ud;
    if (level == CR_REPAIR_WARN) {
        fflush(stdout);
        fprintf(stderr, "%s\n", text);
        return;
    }
    if (!g->quiet && (level == CR_REPAIR_INFO || g->verbose > 0)) printf("%s\n", text);
    fflush(stdout);
}

int cr_run_repair_index(cr_global *g, const cr_command *self, int argc, char **argv)
{
    bool read_all = false;
    const cr_flag flags[] = {
        {"read-all-packs", 0, CR_FLAG_BOOL, &read_all, "read all pack files to generate new index from scratch", NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int npos = 0, r = cr_parse_flags(g, self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    cr_repo *repo = NULL;
    int rc = cr_cli_open_repo(g, &repo);
    if (rc) return rc;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, repo, true, &lock))) {
        cr_repo_close(repo);
        return rc;
    }
    cr_repair_opts o = {.read_all_packs = read_all, .cancel = &cr_interrupted, .report = report, .ud = g};
    cr_repair_result res;
    r = cr_repair_index(repo, &o, &res);
    cr_lock_release(lock);
    cr_repo_close(repo);
    if (r < 0) return cr_cli_fail(g, r);
    if (!g->quiet) printf("done\n");
    return CR_EXIT_OK;
}

static int run_rebuild_index(cr_global *g, int argc, char **argv)
{
    extern const cr_command cr_cmd_rebuild_index;
    return cr_run_repair_index(g, &cr_cmd_rebuild_index, argc, argv);
}

const cr_command cr_cmd_rebuild_index = {"rebuild-index", "Build a new index", "crestic rebuild-index [flags]",
                                         run_rebuild_index};
