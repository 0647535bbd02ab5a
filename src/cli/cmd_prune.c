/* crestic prune: remove unneeded data, with restic 0.14's options, output
 * and statistics. */
#include "cli/cli.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"
#include "repo/excluder.h"
#include "repo/pruner.h"
#include "util/error.h"

extern const cr_command cr_cmd_prune;

typedef struct {
    const char *max_unused, *max_repack_size, *unsafe_recover;
    bool repack_cacheable_only, repack_small, repack_uncompressed, dry_run;
} prune_flags;

/* restic's levels: 0 with --quiet, 1 by default (phases), 2 with -v. */
static int verbosity(const cr_global *g)
{
    return g->quiet ? 0 : 1 + g->verbose;
}

static void report(void *ud, cr_prune_level level, const char *text)
{
    const cr_global *g = ud;
    if (level == CR_PRUNE_WARN) {
        fflush(stdout);
        fprintf(stderr, "%s\n", text);
        return;
    }
    if (verbosity(g) >= (level == CR_PRUNE_INFO ? 1 : 2)) printf("%s\n", text);
    fflush(stdout);
}

typedef struct {
    char s[64];
} text64;

static text64 size_str(uint64_t n)
{
    text64 t;
    cr_go_format_bytes(n, t.s);
    return t;
}

/* restic's formatPercent: empty when there is nothing to relate to. */
static text64 percent(uint64_t part, uint64_t whole)
{
    text64 t = {""};
    if (whole) snprintf(t.s, sizeof t.s, "%3.2f%%", 100.0 * (double)part / (double)whole);
    return t;
}

static unsigned long long ull(uint64_t v)
{
    return (unsigned long long)v;
}

static void print_totals(const cr_prune_stats *s)
{
    uint64_t blobs = s->blobs.used + s->blobs.duplicate + s->blobs.unused;
    uint64_t size = s->size.used + s->size.duplicate + s->size.unused + s->size.unref;
    printf("\nused:         %10llu blobs / %s\n", ull(s->blobs.used), size_str(s->size.used).s);
    if (s->blobs.duplicate) printf("duplicates:   %10llu blobs / %s\n", ull(s->blobs.duplicate), size_str(s->size.duplicate).s);
    printf("unused:       %10llu blobs / %s\n", ull(s->blobs.unused), size_str(s->size.unused).s);
    if (s->size.unref) printf("unreferenced:                    %s\n", size_str(s->size.unref).s);
    printf("total:        %10llu blobs / %s\n", ull(blobs), size_str(size).s);
    printf("unused size: %s of total size\n", percent(s->size.duplicate + s->size.unused, size).s);
}

static void print_outcome(const cr_prune_stats *s)
{
    uint64_t blobs = s->blobs.used + s->blobs.duplicate + s->blobs.unused;
    uint64_t size = s->size.used + s->size.duplicate + s->size.unused + s->size.unref;
    uint64_t pruned = s->size.remove + s->size.repackrm + s->size.unref;
    uint64_t unused = s->size.duplicate + s->size.unused, gone = s->size.remove + s->size.repackrm;
    uint64_t unused_after = unused > gone ? unused - gone : 0;
    printf("\nto repack:    %10llu blobs / %s\n", ull(s->blobs.repack), size_str(s->size.repack).s);
    printf("this removes: %10llu blobs / %s\n", ull(s->blobs.repackrm), size_str(s->size.repackrm).s);
    printf("to delete:    %10llu blobs / %s\n", ull(s->blobs.remove), size_str(s->size.remove + s->size.unref).s);
    printf("total prune:  %10llu blobs / %s\n", ull(s->blobs.remove + s->blobs.repackrm), size_str(pruned).s);
    printf("remaining:    %10llu blobs / %s\n", ull(blobs - s->blobs.remove - s->blobs.repackrm), size_str(size - pruned).s);
    printf("unused size after prune: %s (%s of remaining size)\n\n", size_str(unused_after).s, percent(unused_after, size - pruned).s);
}

static void print_pack_counts(const cr_prune_stats *s)
{
    printf("totally used packs: %10llu\n", ull(s->packs.used));
    printf("partly used packs:  %10llu\n", ull(s->packs.partly_used));
    printf("unused packs:       %10llu\n\n", ull(s->packs.unused));
    printf("to keep:      %10llu packs\n", ull(s->packs.keep));
    printf("to repack:    %10llu packs\n", ull(s->packs.repack));
    printf("to delete:    %10llu packs\n", ull(s->packs.remove));
    if (s->packs.unref) printf("to delete:    %10llu unreferenced packs\n\n", ull(s->packs.unref));
}

static void print_stats(const cr_global *g, const cr_prune_stats *s)
{
    int v = verbosity(g);
    if (v >= 2) print_totals(s);
    if (v >= 1) print_outcome(s);
    if (v >= 2) print_pack_counts(s);
}

/* "{1a2b3c4d 5e6f7a8b}", as restic prints a set of IDs. */
static int print_pack_list(const cr_prune_plan *plan, cr_prune_list which, const char *title)
{
    cr_id *ids = NULL;
    size_t n = 0;
    CR_TRY(cr_prune_plan_list(plan, which, &ids, &n));
    printf("%s\n{", title);
    for (size_t i = 0; i < n; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        printf("%s%.8s", i ? " " : "", hex);
    }
    printf("}\n\n");
    free(ids);
    return 0;
}

static int print_dry_run(const cr_global *g, const cr_prune_plan *plan)
{
    if (verbosity(g) < 2) return 0;
    if (cr_prune_plan_stats(plan)->packs.unref)
        CR_TRY(print_pack_list(plan, CR_PRUNE_UNREFERENCED, "Would have removed the following unreferenced packs:"));
    CR_TRY(print_pack_list(plan, CR_PRUNE_REPACK, "Would have repacked and removed the following packs:"));
    return print_pack_list(plan, CR_PRUNE_REMOVE, "Would have removed the following no longer used packs:");
}

/* Compression and pack size for the repacked blobs, as backup takes them. */
static int writer_opts(const cr_global *g, cr_writer_opts *wo)
{
    *wo = (cr_writer_opts){.compression = CR_COMPRESS_AUTO};
    const char *c = g->compression ? g->compression : getenv("RESTIC_COMPRESSION");
    if (c && *c) CR_TRY(cr_compression_parse(c, &wo->compression));
    long mib = g->pack_size;
    const char *env = getenv("RESTIC_PACK_SIZE");
    if (!mib && env && *env) mib = strtol(env, NULL, 10);
    if (mib) {
        if (mib < 4 || mib > 128) return cr_error(CR_E_USAGE, "pack size larger than limit of 128 MiB or smaller than 4 MiB");
        wo->pack_size = (size_t)mib << 20;
    }
    return 0;
}

/* Everything that can be checked before the repository is opened. */
static int build_opts(const cr_global *g, const prune_flags *f, cr_prune_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_repack_bytes = UINT64_MAX;
    CR_TRY(cr_prune_parse_max_unused(f->max_unused, o));
    if (f->max_repack_size && *f->max_repack_size) {
        int64_t v;
        CR_TRY(cr_parse_size(f->max_repack_size, &v));
        o->max_repack_bytes = (uint64_t)v;
    }
    o->repack_cacheable_only = f->repack_cacheable_only;
    o->repack_small = f->repack_small;
    o->repack_uncompressed = f->repack_uncompressed;
    CR_TRY(writer_opts(g, &o->writer));
    if (f->repack_uncompressed && o->writer.compression == CR_COMPRESS_OFF)
        return cr_error(CR_E_USAGE, "disabled compression and `--repack-uncompressed` are mutually exclusive");
    if (f->unsafe_recover && *f->unsafe_recover) {
        o->unsafe_recovery = true;
        o->max_repack_bytes = 0; /* no new data when there is no space */
    }
    o->cancel = &cr_interrupted;
    o->report = report;
    o->ud = (void *)g;
    return 0;
}

static int check_repo_opts(const cr_repo *r, const prune_flags *f)
{
    if (r->cfg.version < 2 && f->repack_uncompressed)
        return cr_error(CR_E_USAGE, "compression requires at least repository format version 2");
    if (f->unsafe_recover && *f->unsafe_recover) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&r->cfg.id, hex);
        if (strcmp(f->unsafe_recover, hex) != 0)
            return cr_error(CR_E_USAGE, "must pass id '%s' to --unsafe-recover-no-free-space", hex);
    }
    return 0;
}

static int prune_locked(cr_global *g, cr_repo *r, const prune_flags *f, const cr_prune_opts *o)
{
    cr_prune_plan *plan = NULL;
    CR_TRY(cr_prune_plan_new(r, o, &plan));
    print_stats(g, cr_prune_plan_stats(plan));
    int e = f->dry_run ? print_dry_run(g, plan) : cr_prune_execute(plan);
    cr_prune_plan_free(plan);
    if (e == 0 && !f->dry_run && verbosity(g) >= 1) printf("done\n");
    return e;
}

/* prune's flags from argv; 0, 1 after --help, or a negative error. */
static int parse_prune_flags(cr_global *g, int argc, char **argv, prune_flags *f)
{
    *f = (prune_flags){.max_unused = "5%"};
    const cr_flag flags[] = {
        {"dry-run", 'n', CR_FLAG_BOOL, &f->dry_run, "do not modify the repository, just print what would be done", NULL},
        {"max-repack-size", 0, CR_FLAG_STRING, &f->max_repack_size, "maximum size to repack (allowed suffixes: k/K, m/M, g/G, t/T)", "size"},
        {"max-unused", 0, CR_FLAG_STRING, &f->max_unused, "tolerate given limit of unused data (absolute value in bytes with suffixes k/K, m/M, g/G, t/T, a value in % or the word 'unlimited') (default \"5%\")", "limit"},
        {"repack-cacheable-only", 0, CR_FLAG_BOOL, &f->repack_cacheable_only, "only repack packs which are cacheable", NULL},
        {"repack-small", 0, CR_FLAG_BOOL, &f->repack_small, "repack pack files below 80% of target pack size", NULL},
        {"repack-uncompressed", 0, CR_FLAG_BOOL, &f->repack_uncompressed, "repack all uncompressed data", NULL},
        {"unsafe-recover-no-free-space", 0, CR_FLAG_STRING, &f->unsafe_recover, "UNSAFE, READ THE DOCUMENTATION BEFORE USING! Try to recover a repository stuck with no free space. Do not use without trying out 'prune --max-repack-size 0' first.", "string"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int npos = 0;
    return cr_parse_flags(g, &cr_cmd_prune, flags, argc, argv, &npos);
}

/* The prune itself on r, locked exclusively by the caller (or --no-lock).
 * Returns an exit code. */
static int prune_exit(cr_global *g, cr_repo *r, const prune_flags *f, const cr_prune_opts *o)
{
    int e = prune_locked(g, r, f, o);
    fflush(stdout);
    return e < 0 ? cr_cli_fail(g, e) : CR_EXIT_OK;
}

int cr_cli_prune_repo(cr_global *g, cr_repo *r, int argc, char **argv)
{
    prune_flags f;
    cr_prune_opts o;
    int e = parse_prune_flags(g, argc, argv, &f);
    if (e == 1) return CR_EXIT_OK;
    if (e == 0) e = build_opts(g, &f, &o);
    if (e == 0) e = check_repo_opts(r, &f);
    if (e < 0) return cr_cli_fail(g, e);
    return prune_exit(g, r, &f, &o);
}

static int run_prune(cr_global *g, int argc, char **argv)
{
    prune_flags f;
    cr_prune_opts o;
    int e = parse_prune_flags(g, argc, argv, &f);
    if (e == 1) return CR_EXIT_OK;
    if (e == 0) e = build_opts(g, &f, &o);
    if (e < 0) return cr_cli_fail(g, e);
    cr_repo *repo = NULL;
    int rc = cr_cli_open_repo(g, &repo);
    if (rc) return rc;
    cr_lock *lock = NULL;
    e = check_repo_opts(repo, &f);
    if (e < 0) rc = cr_cli_fail(g, e);
    else if ((rc = cr_cli_lock(g, repo, true, &lock)) == 0) rc = prune_exit(g, repo, &f, &o);
    cr_lock_release(lock);
    cr_repo_close(repo);
    return rc;
}

const cr_command cr_cmd_prune = {"prune", "Remove unneeded data from the repository", "crestic prune [flags]", run_prune};
