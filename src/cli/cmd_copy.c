/* crestic copy: copy snapshots from another repository (restic 0.14). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/output.h"
#include "repo/copier.h"
#include "repo/writer.h"
#include "util/cleanup.h"
#include "util/error.h"

typedef struct {
    cr_global from;
    cr_filter_flags filter;
} copy_opts;

typedef struct {
    cr_global *g;
    cr_repo *src, *dst;
    cr_copier *copier;
    cr_snapshot *dst_snaps;
    size_t ndst;
} copy_run;

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

static bool verbose(const copy_run *c)
{
    return !c->g->quiet && !c->g->json;
}

/* The destination snapshot this one was already copied to, if any. */
static const cr_snapshot *find_copy(const copy_run *c, const cr_snapshot *sn)
{
    const cr_id *origin = cr_snapshot_origin(sn);
    for (size_t i = 0; i < c->ndst; i++) {
        const cr_snapshot *d = &c->dst_snaps[i];
        if (cr_id_eq(cr_snapshot_origin(d), origin) && cr_snapshots_similar(d, sn)) return d;
    }
    return NULL;
}

static void print_header(const copy_run *c, const cr_snapshot *sn)
{
    if (!verbose(c)) return;
    char id[9];
    cr_id_short(&sn->id, id);
    _cleanup_buf_ cr_buf paths = CR_BUF_INIT, when = CR_BUF_INIT;
    cr_format_go_strings(&paths, (const char *const *)sn->paths, sn->npaths);
    cr_format_go_time(&when, &sn->time);
    printf("\nsnapshot %s of %.*s at %.*s)\n", id, (int)paths.len, (const char *)paths.data, (int)when.len,
           (const char *)when.data);
}

/* restic's final progress line: "[0:00] 100.00%  2 / 2 packs copied". */
static void print_progress(const copy_run *c, uint64_t packs, double seconds)
{
    if (!verbose(c)) return;
    unsigned long s = (unsigned long)seconds, h = s / 3600, m = s / 60 % 60;
    char dur[32];
    if (h) snprintf(dur, sizeof dur, "%lu:%02lu:%02lu", h, m, s % 60);
    else snprintf(dur, sizeof dur, "%lu:%02lu", m, s % 60);
    if (packs == 0) printf("[%s]          0 packs copied\n\n", dur);
    else printf("[%s] 100.00%%  %llu / %llu packs copied\n\n", dur, (unsigned long long)packs, (unsigned long long)packs);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int copy_one(copy_run *c, const cr_snapshot *sn)
{
    print_header(c, sn);
    const cr_snapshot *done = find_copy(c, sn);
    if (done) {
        char a[9], b[9];
        cr_id_short(&sn->id, a);
        cr_id_short(&done->id, b);
        if (verbose(c)) printf("skipping source snapshot %s, was already copied to snapshot %s\n", a, b);
        return 0;
    }
    if (!sn->has_tree) return cr_error(CR_E_FORMAT, "snapshot has no tree");
    if (verbose(c)) printf("  copy started, this may take a while...\n");
    fflush(stdout);
    double start = now_seconds();
    uint64_t packs = 0;
    CR_TRY(cr_copier_copy_tree(c->copier, &sn->tree, &packs));
    CR_TRY(cr_copier_flush(c->copier));
    print_progress(c, packs, now_seconds() - start);
    cr_id new_id;
    CR_TRY(cr_copier_save_snapshot(c->dst, sn, &new_id));
    char id[9];
    cr_id_short(&new_id, id);
    if (verbose(c)) printf("snapshot %s saved\n", id);
    fflush(stdout);
    return 0;
}

static int copy_selected(copy_run *c, const copy_opts *o, int npos, char **argv)
{
    CR_TRY(cr_repo_load_snapshots(c->dst, &c->dst_snaps, &c->ndst));
    cr_snapshot_filter f = cr_filter_from_flags(&o->filter);
    cr_snapshot *sel = NULL;
    size_t n = 0;
    CR_TRY(cr_select_snapshots(c->src, (const char *const *)argv, (size_t)npos, &f, &sel, &n));
    int r = cr_repo_load_index(c->dst);
    if (r >= 0) r = cr_repo_load_index(c->src);
    cr_writer_opts wo;
    if (r >= 0) r = writer_opts(c->g, &wo);
    if (r >= 0) r = cr_copier_new(c->src, c->dst, &wo, &c->copier);
    for (size_t i = 0; r >= 0 && i < n; i++) {
        if (cr_interrupted) r = cr_error(CR_E_INTERRUPTED, "interrupted");
        else r = copy_one(c, &sel[i]);
    }
    cr_snapshots_free(sel, n);
    return r;
}

static void copy_opts_free(copy_opts *o)
{
    cr_strv_free(&o->filter.hosts), cr_strv_free(&o->filter.tags), cr_strv_free(&o->filter.paths);
}

static int run_copy(cr_global *g, int argc, char **argv)
{
    _cleanup_(copy_opts_free) copy_opts o = {.from = {.progname = g->progname, .env_prefix = "RESTIC_FROM_"}};
    const cr_flag flags[] = {
        {"from-repo", 0, CR_FLAG_STRING, &o.from.repo, "source repository to copy snapshots from (default: $RESTIC_FROM_REPOSITORY)", "repository"},
        {"from-repository-file", 0, CR_FLAG_STRING, &o.from.repo_file, "file from which to read the source repository location to copy snapshots from (default: $RESTIC_FROM_REPOSITORY_FILE)", "file"},
        {"from-password-file", 0, CR_FLAG_STRING, &o.from.password_file, "file to read the source repository password from (default: $RESTIC_FROM_PASSWORD_FILE)", "file"},
        {"from-password-command", 0, CR_FLAG_STRING, &o.from.password_command, "shell command to obtain the source repository password from (default: $RESTIC_FROM_PASSWORD_COMMAND)", "command"},
        {"from-key-hint", 0, CR_FLAG_STRING, &o.from.key_hint, "key ID of key to try decrypting the source repository first (default: $RESTIC_FROM_KEY_HINT)", "string"},
        CR_FILTER_FLAGS(o.filter),
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"copy", "Copy snapshots from one repository to another", "crestic copy [flags] [snapshotID ...]", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    _cleanup_buf_ cr_buf loc = CR_BUF_INIT;
    if (cr_cli_location(&o.from, &loc) < 0)
        return cr_cli_fail(g, cr_error(CR_E_USAGE, "Please specify a source repository location (--from-repo or --from-repository-file)"));
    o.from.quiet = g->quiet;
    o.from.json = g->json;
    o.from.no_lock = g->no_lock;

    copy_run c = {.g = g};
    int rc = cr_cli_open_repo(&o.from, &c.src);
    if (rc) return rc;
    if ((rc = cr_cli_open_repo(g, &c.dst))) return cr_repo_close(c.src), rc;
    cr_lock *src_lock = NULL, *dst_lock = NULL;
    if ((rc = cr_cli_lock(g, c.src, false, &src_lock)) == 0) rc = cr_cli_lock(g, c.dst, false, &dst_lock);
    if (rc == 0) {
        r = copy_selected(&c, &o, npos, argv);
        if (r < 0) rc = cr_cli_fail(g, r);
    }
    cr_copier_free(c.copier);
    cr_snapshots_free(c.dst_snaps, c.ndst);
    cr_lock_release(dst_lock);
    cr_lock_release(src_lock);
    cr_repo_close(c.dst);
    cr_repo_close(c.src);
    return rc;
}

const cr_command cr_cmd_copy = {"copy", "Copy snapshots from one repository to another", "crestic copy [flags] [snapshotID ...]", run_copy};
