/* crestic unlock: remove stale (or all) locks. */
#include "cli/cli.h"

#include <stdio.h>

#include "util/error.h"

static int run_unlock(cr_global *g, int argc, char **argv)
{
    bool remove_all = false;
    const cr_flag flags[] = {
        {"remove-all", 0, CR_FLAG_BOOL, &remove_all, "remove all locks, even non-stale ones", NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"unlock", "Remove locks other processes created", "crestic unlock [flags]", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    cr_repo *repo = NULL;
    int rc = cr_cli_open_repo(g, &repo);
    if (rc) return rc;
    size_t removed = 0;
    r = cr_lock_remove_stale(repo, remove_all, &removed);
    cr_repo_close(repo);
    if (r < 0) return cr_cli_fail(g, r);
    /* restic prints the same line whether or not anything was removed. */
    if (!g->quiet) printf("successfully removed locks\n");
    (void)removed;
    return CR_EXIT_OK;
}

const cr_command cr_cmd_unlock = {"unlock", "Remove locks other processes created", "crestic unlock [flags]", run_unlock};
