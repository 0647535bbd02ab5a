/* crestic check: verify the repository's structure and, optionally, its data. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "repo/checker.h"
#include "util/error.h"

typedef struct {
    cr_global *g;
} check_ui;

static void report(void *ud, cr_check_level level, const char *text)
{
    check_ui *ui = ud;
    if (level == CR_CHECK_PROGRESS) {
        if (!ui->g->quiet && !ui->g->json) printf("%s\n", text);
    } else {
        /* restic prints findings on stderr, phases on stdout. */
        fprintf(stderr, "%s\n", text);
    }
    fflush(stdout);
}

static int run_check(cr_global *g, int argc, char **argv)
{
    bool read_data = false, check_unused = false, with_cache = false;
    const char *subset = NULL;
    const cr_flag flags[] = {
        {"read-data", 0, CR_FLAG_BOOL, &read_data, "read all data blobs", NULL},
        {"read-data-subset", 0, CR_FLAG_STRING, &subset, "read a subset of data packs, specified as 'n/t' for specific part, or either 'x%' or 'x.y%' or a size in bytes with suffixes k/K, m/M, g/G, t/T for a random subset", "subset"},
        {"check-unused", 0, CR_FLAG_BOOL, &check_unused, "find unused blobs", NULL},
        {"with-cache", 0, CR_FLAG_BOOL, &with_cache, "use existing cache, only read uncached data from repository", NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"check", "Check the repository for errors", "crestic check [flags]", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    if (npos) return cr_cli_fail(g, cr_error(CR_E_USAGE, "the check command expects no arguments, only options - please see `restic help check` for usage and flags"));
    check_ui ui = {g};
    cr_check_opts o = {.check_unused = check_unused, .report = report, .ud = &ui};
    if (read_data && subset) return cr_cli_fail(g, cr_error(CR_E_USAGE, "check flags --read-data and --read-data-subset cannot be used together"));
    if (read_data) o.read = CR_READ_ALL;
    if (subset && (r = cr_parse_read_subset(subset, &o)) < 0) return cr_cli_fail(g, r);

    cr_repo *repo = NULL;
    int rc = cr_cli_open_repo(g, &repo);
    if (rc) return rc;
    if (!g->no_lock && !g->quiet && !g->json) printf("create exclusive lock for repository\n");
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, repo, true, &lock))) {
        cr_repo_close(repo);
        return rc;
    }
    cr_check_result res;
    r = cr_check(repo, &o, &res);
    cr_lock_release(lock);
    cr_repo_close(repo);
    if (r < 0) return cr_cli_fail(g, r);
    if (res.errors) {
        if (!g->quiet) fprintf(stderr, "\n");
        return cr_cli_fail(g, cr_error(-EIO, "repository contains errors"));
    }
    if (!g->quiet && !g->json) printf("no errors were found\n");
    return CR_EXIT_OK;
}

const cr_command cr_cmd_check = {"check", "Check the repository for errors", "crestic check [flags]", run_check};
