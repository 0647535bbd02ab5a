/* crestic migrate: apply repository migrations (upgrade_repo_v2). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "repo/checker.h"
#include "util/error.h"

static void quiet_report(void *ud, cr_check_level level, const char *text)
{
    cr_global *g = ud;
    if (level == CR_CHECK_PROGRESS) {
        if (!g->quiet) printf("%s\n", text);
    } else {
        fprintf(stderr, "%s\n", text);
    }
}

/* restic checks the repository before upgrading and refuses on errors. */
static int upgrade_repo_v2(cr_global *g, cr_repo *repo, bool force)
{
    if (repo->cfg.version != 1 && !force) {
        fprintf(stderr, "migration upgrade_repo_v2 cannot be applied: check failed\n"
                        "If you want to apply this migration anyway, re-run with option --force\n");
        return CR_EXIT_OK;
    }
    if (!g->quiet) printf("checking repository integrity...\n");
    cr_check_opts o = {.report = quiet_report, .ud = g};
    cr_check_result res;
    int r = cr_check(repo, &o, &res);
    if (r < 0) return cr_cli_fail(g, r);
    if (res.errors) return cr_cli_fail(g, cr_error(-EIO, "repository contains errors"));
    if (!g->quiet) printf("\nno errors were found\napplying migration upgrade_repo_v2...\n");
    if (repo->cfg.version == 1 && (r = cr_repo_upgrade_v2(repo)) < 0)
        return cr_cli_fail(g, cr_error_ctx(r, "migration upgrade_repo_v2 failed"));
    if (!g->quiet) printf("migration upgrade_repo_v2: success\n");
    return CR_EXIT_OK;
}

static int run_migrate(cr_global *g, int argc, char **argv)
{
    bool force = false;
    const cr_flag flags[] = {
        {"force", 'f', CR_FLAG_BOOL, &force, "apply a migration a second time", NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"migrate", "Apply migrations", "crestic migrate [flags] [migration name] [...]", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    cr_repo *repo = NULL;
    int rc = cr_cli_open_repo(g, &repo);
    if (rc) return rc;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, repo, true, &lock))) return cr_repo_close(repo), rc;
    if (npos == 0) {
        printf("available migrations:\n");
        if (repo->cfg.version == 1) printf("  upgrade_repo_v2\tupgrade a repository to version 2\n");
        else printf("no migrations found");
    }
    /* Unknown names are skipped silently, as restic does. */
    for (int i = 0; i < npos && rc == 0; i++)
        if (!strcmp(argv[i], "upgrade_repo_v2")) rc = upgrade_repo_v2(g, repo, force);
    cr_lock_release(lock);
    cr_repo_close(repo);
    return rc;
}

const cr_command cr_cmd_migrate = {"migrate", "Apply migrations", "crestic migrate [flags] [migration name] [...]", run_migrate};
