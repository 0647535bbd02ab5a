/* crestic repair: today's restic groups its repair commands here.  `index`
 * is implemented in cmd_rebuild_index.c; `snapshots` and `packs` run when a
 * file defines them (weak symbols, like the command table in main.c). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "util/error.h"

int cr_run_repair_index(cr_global *g, const cr_command *self, int argc, char **argv);
extern const cr_command cr_cmd_repair_snapshots __attribute__((weak));
extern const cr_command cr_cmd_repair_packs __attribute__((weak));

static int run_repair_index(cr_global *g, int argc, char **argv)
{
    static const cr_command self = {"index", "Build a new index", "crestic repair index [flags]", NULL};
    return cr_run_repair_index(g, &self, argc, argv);
}

static const cr_command repair_index = {"index", "Build a new index", "crestic repair index [flags]", run_repair_index};

static void usage(FILE *f)
{
    fprintf(f, "Repair the repository\n\nUsage:\n  crestic repair [command]\n\nAvailable Commands:\n");
    fprintf(f, "  %-10s %s\n", repair_index.name, repair_index.summary);
    if (&cr_cmd_repair_packs) fprintf(f, "  %-10s %s\n", "packs", cr_cmd_repair_packs.summary);
    if (&cr_cmd_repair_snapshots) fprintf(f, "  %-10s %s\n", "snapshots", cr_cmd_repair_snapshots.summary);
}

/* The subcommand is the first word that is not a flag; everything else is
 * handed on (global flags may come before it). */
static int find_subcommand(int argc, char **argv)
{
    static const char *const with_value[] = {"-r", "--repo", "--repository-file", "-p", "--password-file",
        "--password-command", "--key-hint", "--retry-lock", "--cache-dir", "-o", "--option", "--limit-upload",
        "--limit-download", "--cacert", "--tls-client-cert", "--pack-size", "--compression", NULL};
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] != '-') return i;
        if (!strcmp(argv[i], "--")) return i + 1 < argc ? i + 1 : -1;
        for (const char *const *w = with_value; *w; w++)
            if (!strcmp(argv[i], *w)) {
                i++;
                break;
            }
    }
    return -1;
}

static int run_repair(cr_global *g, int argc, char **argv)
{
    int sub = find_subcommand(argc, argv);
    if (sub < 0) {
        usage(stdout);
        return CR_EXIT_OK;
    }
    const char *name = argv[sub];
    const cr_command *c = NULL;
    if (!strcmp(name, "index")) c = &repair_index;
    else if (!strcmp(name, "packs") && &cr_cmd_repair_packs) c = &cr_cmd_repair_packs;
    else if (!strcmp(name, "snapshots") && &cr_cmd_repair_snapshots) c = &cr_cmd_repair_snapshots;
    if (!c) {
        fprintf(stderr, "Error: unknown command \"%s\" for \"crestic repair\"\n", name);
        usage(stderr);
        return CR_EXIT_FAILURE;
    }
    memmove(argv + sub, argv + sub + 1, (size_t)(argc - sub - 1) * sizeof *argv);
    return c->run(g, argc - 1, argv);
}

const cr_command cr_cmd_repair = {"repair", "Repair the repository", "crestic repair [command]", run_repair};
