/* crestic restore: extract a snapshot (or "ID:subfolder") into a directory,
 * as `restic restore`.  The "restoring <Snapshot ...> to DIR" line is restic
 * 0.14's; flags, progress, summary and --json shapes are today's restic's
 * (--dry-run, --verify, --overwrite, --delete, --sparse, pattern files). */
#include "cli/cli.h"
#include "cli/output.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repo/restorer.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/pattern.h"

extern const cr_command cr_cmd_restore;

typedef struct {
    const char *target, *overwrite;
    cr_strv includes, iincludes, excludes, iexcludes;
    cr_strv include_files, iinclude_files, exclude_files, iexclude_files;
    cr_strv xattr_includes, xattr_excludes;
    bool dry_run, verify, delete_extra, sparse;
    cr_filter_flags filter;
} restore_opts;

typedef struct {
    cr_global *g;
    struct timespec start;
    double last_status;
    bool status_shown; /* a terminal status line is on screen */
    bool tty;
    bool dry_run;
    bool summary_done; /* restic prints it before verifying */
    double verify_start;
    const char *target;
} ui_state;

/* ---- pattern files (today's restic: --include-file and friends) ---- */

/* Lines are trimmed, empty lines and '#' comments skipped, $VAR and ${VAR}
 * expanded from the environment, "$$" is a literal '$'. */
static int expand_env(const char *line, cr_buf *out)
{
    cr_buf_reset(out);
    for (const char *p = line; *p; p++) {
        if (*p != '$') {
            CR_TRY(cr_buf_putc(out, *p));
            continue;
        }
        if (p[1] == '$') {
            CR_TRY(cr_buf_putc(out, '$'));
            p++;
            continue;
        }
        const char *s = p + 1, *e;
        bool braced = *s == '{';
        if (braced) {
            e = strchr(++s, '}');
            if (!e) {
                CR_TRY(cr_buf_puts(out, p));
                break;
            }
        } else {
            for (e = s; *e == '_' || (*e >= '0' && *e <= '9') || (*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z'); e++) {}
            if (e == s) {
                CR_TRY(cr_buf_putc(out, '$'));
                continue;
            }
        }
        _cleanup_free_ char *name = strndup(s, (size_t)(e - s));
        const char *v = name ? getenv(name) : NULL;
        if (v) CR_TRY(cr_buf_puts(out, v));
        p = braced ? e : e - 1;
    }
    return cr_buf_nul(out);
}

static int read_pattern_files(const cr_strv *files, cr_strv *into, cr_strv *owned)
{
    for (size_t i = 0; i < files->n; i++) {
        _cleanup_fclose_ FILE *f = fopen(files->v[i], "r");
        if (!f) return cr_error_sys(-errno, "failed to read patterns from %s", files->v[i]);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        cr_buf exp = CR_BUF_INIT;
        while ((n = getline(&line, &cap, f)) >= 0) {
            char *s = line, *e = line + n;
            while (s < e && strchr(" \t\r\n\v\f", *s)) s++;
            while (e > s && strchr(" \t\r\n\v\f", e[-1])) e--;
            *e = 0;
            if (!*s || *s == '#') continue;
            int r = expand_env(s, &exp);
            char *copy = r == 0 ? strdup((char *)exp.data) : NULL;
            if (!copy || cr_strv_push(owned, copy) < 0 || cr_strv_push(into, copy) < 0) {
                free(copy);
                free(line);
                cr_buf_free(&exp);
                return cr_error(-ENOMEM, "out of memory");
            }
        }
        free(line);
        cr_buf_free(&exp);
    }
    return 0;
}

static int check_patterns(const cr_strv *v, bool fold, const char *flag)
{
    cr_patterns *p = NULL;
    int e = cr_patterns_new(v->v, v->n, fold, &p);
    cr_patterns_free(p);
    return e < 0 ? cr_error_ctx(e, "%s", flag) : 0;
}

/* ---- output ---- */

static double elapsed(const ui_state *u)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - u->start.tv_sec) + (double)(now.tv_nsec - u->start.tv_nsec) / 1e9;
}

/* restic's ui.FormatDuration: M:SS, or H:MM:SS from an hour on. */
static void format_duration(double secs, char out[32])
{
    unsigned long long s = (unsigned long long)secs, h = s / 3600, m = s % 3600 / 60;
    if (h) snprintf(out, 32, "%llu:%02llu:%02llu", h, m, s % 60);
    else snprintf(out, 32, "%llu:%02llu", m, s % 60);
}

/* Item paths come from the repository: show control bytes escaped, so a
 * hostile name cannot drive the terminal. */
static void put_item(cr_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) cr_buf_printf(b, "\\x%02x", *p);
        else cr_buf_putc(b, (char)*p);
    }
}

static void clear_status(ui_state *u)
{
    if (u->status_shown) {
        fputs("\r\033[2K", stdout);
        fflush(stdout);
        u->status_shown = false;
    }
}

static void text_status(ui_state *u, const cr_restore_stats *st, double secs)
{
    char dur[32], done[64], total[64], pct[32] = "";
    format_duration(secs, dur);
    cr_go_format_bytes(st->bytes_restored, done);
    cr_go_format_bytes(st->bytes_total, total);
    if (st->bytes_total) {
        double p = 100.0 * (double)st->bytes_restored / (double)st->bytes_total;
        snprintf(pct, sizeof pct, "%3.2f%%", p > 100 ? 100 : p);
    }
    printf("\r\033[2K[%s] %s  %llu files/dirs %s, total %llu files/dirs %s", dur, pct,
           (unsigned long long)st->files_restored, done, (unsigned long long)st->files_total, total);
    if (st->files_skipped) {
        char sk[64];
        cr_go_format_bytes(st->bytes_skipped, sk);
        printf(", skipped %llu files/dirs %s", (unsigned long long)st->files_skipped, sk);
    }
    if (st->files_deleted) printf(", deleted %llu files/dirs", (unsigned long long)st->files_deleted);
    fflush(stdout);
    u->status_shown = true;
}

static void json_counts(cr_buf *b, const cr_restore_stats *st)
{
    /* Go omitempty: zero members are left out */
    static const char *const names[] = {"total_files", "files_restored", "files_skipped", "files_deleted",
                                        "total_bytes", "bytes_restored", "bytes_skipped"};
    const uint64_t v[] = {st->files_total, st->files_restored, st->files_skipped, st->files_deleted,
                          st->bytes_total, st->bytes_restored, st->bytes_skipped};
    for (size_t i = 0; i < 7; i++)
        if (v[i]) cr_buf_printf(b, ",\"%s\":%llu", names[i], (unsigned long long)v[i]);
}

static void json_line(const char *type, const cr_restore_stats *st, double secs, bool with_percent)
{
    cr_buf b = CR_BUF_INIT;
    cr_buf_printf(&b, "{\"message_type\":\"%s\"", type);
    if ((unsigned long long)secs) cr_buf_printf(&b, ",\"seconds_elapsed\":%llu", (unsigned long long)secs);
    if (with_percent) {
        double p = st->bytes_total ? (double)st->bytes_restored / (double)st->bytes_total : 0;
        /* Go's float encoding: shortest form, integers without a dot */
        if (p == 0 || p == 1) cr_buf_printf(&b, ",\"percent_done\":%d", (int)p);
        else cr_buf_printf(&b, ",\"percent_done\":%.17g", p);
    }
    json_counts(&b, st);
    cr_buf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    fflush(stdout);
    cr_buf_free(&b);
}

static void summary_text(const cr_restore_stats *st, double secs, bool dry_run)
{
    char dur[32], total[64];
    format_duration(secs, dur);
    cr_go_format_bytes(st->bytes_total, total);
    const char *verb = "Restored"; /* restic says so in dry runs too */
    (void)dry_run;
    if (st->files_restored == st->files_total && st->bytes_restored == st->bytes_total) {
        printf("Summary: %s %llu files/dirs (%s) in %s", verb, (unsigned long long)st->files_total, total, dur);
    } else {
        char done[64];
        cr_go_format_bytes(st->bytes_restored, done);
        printf("Summary: %s %llu / %llu files/dirs (%s / %s) in %s", verb, (unsigned long long)st->files_restored,
               (unsigned long long)st->files_total, done, total, dur);
    }
    if (st->files_skipped) {
        char sk[64];
        cr_go_format_bytes(st->bytes_skipped, sk);
        printf(", skipped %llu files/dirs %s", (unsigned long long)st->files_skipped, sk);
    }
    if (st->files_deleted) printf(", deleted %llu files/dirs", (unsigned long long)st->files_deleted);
    printf("\n");
}

static void on_progress(void *ud, const cr_restore_stats *st, bool done)
{
    ui_state *u = ud;
    if (done) return; /* the summary is printed by the command */
    double now = elapsed(u);
    if (u->g->quiet || now - u->last_status < 0.1) return;
    if (u->g->json) {
        u->last_status = now;
        json_line("status", st, now, true);
    } else if (u->tty) {
        u->last_status = now;
        text_status(u, st, now);
    }
}

static void on_error(void *ud, const char *item, const char *msg)
{
    ui_state *u = ud;
    cr_buf b = CR_BUF_INIT;
    if (u->g->json) {
        cr_buf_puts(&b, "{\"message_type\":\"error\",\"error\":{\"message\":");
        cr_json_put_cstr(&b, msg);
        cr_buf_puts(&b, "},\"during\":\"restore\",\"item\":");
        cr_json_put_cstr(&b, item);
        cr_buf_puts(&b, "}\n");
    } else {
        clear_status(u);
        cr_buf_puts(&b, "ignoring error for ");
        put_item(&b, item);
        cr_buf_puts(&b, ": ");
        put_item(&b, msg);
        cr_buf_putc(&b, '\n');
    }
    fwrite(b.data, 1, b.len, stderr);
    cr_buf_free(&b);
}

static void on_item(void *ud, const char *item, const char *action, uint64_t size)
{
    ui_state *u = ud;
    if (u->g->quiet || u->g->verbose < 2) return; /* restic: -vv */
    cr_buf b = CR_BUF_INIT;
    if (u->g->json) {
        cr_buf_puts(&b, "{\"message_type\":\"verbose_status\",\"action\":");
        cr_json_put_cstr(&b, action);
        cr_buf_puts(&b, ",\"item\":");
        cr_json_put_cstr(&b, item);
        cr_buf_printf(&b, ",\"size\":%llu}\n", (unsigned long long)size);
    } else {
        clear_status(u);
        cr_buf_printf(&b, "%-9s ", action);
        put_item(&b, item);
        /* files carry a size; directories, links and deletions do not */
        if (strcmp(action, "deleted") && (size || strcmp(action, "restored"))) {
            char sz[64];
            cr_go_format_bytes(size, sz);
            cr_buf_printf(&b, " with size %s", sz);
        }
        cr_buf_putc(&b, '\n');
    }
    fwrite(b.data, 1, b.len, stdout);
    cr_buf_free(&b);
}

/* Go's time.Duration.String() of a duration rounded to milliseconds:
 * "0s", "12ms", "1.5s", "2m3.004s", "1h0m0.5s". */
static void go_duration_ms(double secs, char out[48])
{
    unsigned long long ms = (unsigned long long)(secs * 1000 + 0.5);
    if (ms == 0) {
        snprintf(out, 48, "0s");
        return;
    }
    if (ms < 1000) {
        snprintf(out, 48, "%llums", ms);
        return;
    }
    char frac[8] = "";
    if (ms % 1000) {
        snprintf(frac, sizeof frac, ".%03llu", ms % 1000);
        for (size_t n = strlen(frac); frac[n - 1] == '0'; n--) frac[n - 1] = 0;
    }
    unsigned long long s = ms / 1000, h = s / 3600, m = s % 3600 / 60;
    if (h) snprintf(out, 48, "%lluh%llum%llu%ss", h, m, s % 60, frac);
    else if (m) snprintf(out, 48, "%llum%llu%ss", m, s % 60, frac);
    else snprintf(out, 48, "%llu%ss", s, frac);
}

static void print_summary(ui_state *u, const cr_restore_stats *st)
{
    double secs = elapsed(u);
    clear_status(u);
    if (u->g->json) json_line("summary", st, secs, false);
    else if (!u->g->quiet) summary_text(st, secs, u->dry_run);
    fflush(stdout);
    u->summary_done = true;
}

static void on_phase(void *ud, cr_restore_phase phase, const cr_restore_stats *st)
{
    ui_state *u = ud;
    if (phase == CR_RESTORE_PHASE_VERIFY) print_summary(u, st);
    if (u->g->json || u->g->quiet) return;
    if (phase == CR_RESTORE_PHASE_VERIFY) {
        printf("verifying files in %s\n", u->target);
        u->verify_start = elapsed(u);
    } else {
        char took[48];
        go_duration_ms(elapsed(u) - u->verify_start, took);
        printf("finished verifying %llu files in %s (took %s)\n", (unsigned long long)st->files_verified, u->target, took);
    }
    fflush(stdout);
}

static int print_restoring(const cr_snapshot *sn, const char *target)
{
    cr_buf b = CR_BUF_INIT;
    char id[9];
    cr_id_short(&sn->id, id);
    cr_buf_printf(&b, "restoring <Snapshot %s of ", id);
    cr_format_go_strings(&b, (const char *const *)sn->paths, sn->npaths);
    cr_buf_puts(&b, " at ");
    cr_format_go_time(&b, &sn->time);
    cr_buf_printf(&b, " by %s@%s> to %s\n", sn->username, sn->hostname, target);
    int e = cr_write_stdout(b.data, b.len);
    cr_buf_free(&b);
    return e;
}

/* ---- command ---- */

static int validate(cr_global *g, restore_opts *o, int npos, char **argv)
{
    if (npos == 0) return cr_error(CR_E_USAGE, "no snapshot ID specified");
    if (npos > 1) {
        cr_buf b = CR_BUF_INIT;
        cr_format_go_strings(&b, (const char *const *)argv, (size_t)npos);
        cr_buf_nul(&b);
        int e = cr_error(CR_E_USAGE, "more than one snapshot ID specified: %s", (char *)b.data);
        cr_buf_free(&b);
        return e;
    }
    if (!o->target || !*o->target) return cr_error(CR_E_USAGE, "please specify a directory to restore to (--target)");
    bool inc = o->includes.n || o->iincludes.n, exc = o->excludes.n || o->iexcludes.n;
    if (inc && exc) return cr_error(CR_E_USAGE, "exclude and include patterns are mutually exclusive");
    if (o->dry_run && o->verify) return cr_error(CR_E_USAGE, "--dry-run and --verify are mutually exclusive");
    if (o->delete_extra && !inc && !exc) {
        char *real = realpath(o->target, NULL);
        bool root = !strcmp(o->target, "/") || (real && !strcmp(real, "/"));
        free(real);
        if (root) return cr_error(CR_E_USAGE, "'--target / --delete' must be combined with an include or exclude filter");
    }
    CR_TRY(check_patterns(&o->excludes, false, "--exclude"));
    CR_TRY(check_patterns(&o->iexcludes, true, "--iexclude"));
    CR_TRY(check_patterns(&o->includes, false, "--include"));
    CR_TRY(check_patterns(&o->iincludes, true, "--iinclude"));
    if (o->xattr_includes.n && o->xattr_excludes.n) return cr_error(CR_E_USAGE, "exclude and include xattr patterns are mutually exclusive");
    CR_TRY(check_patterns(&o->xattr_excludes, false, "--exclude-xattr"));
    CR_TRY(check_patterns(&o->xattr_includes, false, "--include-xattr"));
    (void)g;
    return 0;
}

static int do_restore(cr_global *g, restore_opts *o, const char *ref, cr_overwrite ow)
{
    cr_repo *repo = NULL;
    int rc = cr_cli_open_repo(g, &repo);
    if (rc) return rc;
    cr_lock *lock = NULL;
    rc = cr_cli_lock(g, repo, false, &lock);
    if (rc) {
        cr_repo_close(repo);
        return rc;
    }
    cr_snapshot sn;
    memset(&sn, 0, sizeof sn);
    cr_id tree;
    cr_snapshot_filter filter = cr_filter_from_flags(&o->filter);
    int e = cr_repo_load_index(repo);
    if (e == 0) {
        e = cr_cli_find_snapshot(repo, ref, &filter, &sn, &tree);
        if (e == CR_E_NOTFOUND || e == CR_E_AMBIGUOUS) e = cr_error_ctx(e, "failed to find snapshot");
    }
    if (e < 0) {
        rc = cr_cli_fail(g, e);
        goto out;
    }
    if (!g->json && !g->quiet) print_restoring(&sn, o->target);
    fflush(stdout);

    ui_state u = {.g = g, .tty = cr_stdout_is_tty(), .target = o->target, .last_status = -1, .dry_run = o->dry_run};
    clock_gettime(CLOCK_MONOTONIC, &u.start);
    cr_restore_opts ro = {
        .target = o->target,
        .includes = o->includes.v, .nincludes = o->includes.n,
        .iincludes = o->iincludes.v, .niincludes = o->iincludes.n,
        .excludes = o->excludes.v, .nexcludes = o->excludes.n,
        .iexcludes = o->iexcludes.v, .niexcludes = o->iexcludes.n,
        .xattr_includes = o->xattr_includes.v, .nxattr_includes = o->xattr_includes.n,
        .xattr_excludes = o->xattr_excludes.v, .nxattr_excludes = o->xattr_excludes.n,
        .dry_run = o->dry_run, .verify = o->verify, .delete_extra = o->delete_extra, .sparse = o->sparse,
        .overwrite = ow,
        .progress = on_progress, .on_error = on_error, .on_item = on_item, .on_phase = on_phase,
        .interrupted = &cr_interrupted,
        .ud = &u,
    };
    cr_restore_stats st;
    memset(&st, 0, sizeof st);
    e = cr_restore(repo, &tree, &ro, &st);
    clear_status(&u);
    if ((e == 0 || e == CR_E_PARTIAL) && !u.summary_done) print_summary(&u, &st);
    if (e == CR_E_PARTIAL) e = cr_error(CR_E_PARTIAL, "There were %llu errors", (unsigned long long)st.errors);
    if (e < 0) rc = cr_cli_fail(g, e);
out:
    cr_snapshot_clear(&sn);
    cr_lock_release(lock);
    cr_repo_close(repo);
    return rc;
}

static int run(cr_global *g, int argc, char **argv)
{
    restore_opts o = {0};
    const cr_flag flags[] = {
        {"target", 't', CR_FLAG_STRING, &o.target, "directory to extract data to", "string"},
        {"exclude", 'e', CR_FLAG_STRINGS, &o.excludes, "exclude a pattern (can be specified multiple times)", "pattern"},
        {"iexclude", 0, CR_FLAG_STRINGS, &o.iexcludes, "same as --exclude pattern but ignores the casing of filenames", "pattern"},
        {"exclude-file", 0, CR_FLAG_STRINGS, &o.exclude_files, "read exclude patterns from a file (can be specified multiple times)", "file"},
        {"iexclude-file", 0, CR_FLAG_STRINGS, &o.iexclude_files, "same as --exclude-file but ignores casing of filenames in patterns", "file"},
        {"include", 'i', CR_FLAG_STRINGS, &o.includes, "include a pattern (can be specified multiple times)", "pattern"},
        {"iinclude", 0, CR_FLAG_STRINGS, &o.iincludes, "same as --include pattern but ignores the casing of filenames", "pattern"},
        {"include-file", 0, CR_FLAG_STRINGS, &o.include_files, "read include patterns from a file (can be specified multiple times)", "file"},
        {"iinclude-file", 0, CR_FLAG_STRINGS, &o.iinclude_files, "same as --include-file but ignores casing of filenames in patterns", "file"},
        {"exclude-xattr", 0, CR_FLAG_STRINGS, &o.xattr_excludes, "exclude xattr by pattern (can be specified multiple times)", "pattern"},
        {"include-xattr", 0, CR_FLAG_STRINGS, &o.xattr_includes, "include xattr by pattern (can be specified multiple times)", "pattern"},
        CR_FILTER_FLAGS(o.filter),
        {"dry-run", 0, CR_FLAG_BOOL, &o.dry_run, "do not write any data, just show what would be done", NULL},
        {"sparse", 0, CR_FLAG_BOOL, &o.sparse, "restore files as sparse", NULL},
        {"verify", 0, CR_FLAG_BOOL, &o.verify, "verify restored files content", NULL},
        {"overwrite", 0, CR_FLAG_STRING, &o.overwrite, "overwrite behavior, one of (always|if-changed|if-newer|never) (default: always)", "behavior"},
        {"delete", 0, CR_FLAG_BOOL, &o.delete_extra, "delete files from target directory if they do not exist in snapshot. Use '--dry-run -vv' to check what would be deleted", NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    cr_strv owned = {0};
    int npos = 0, rc;
    int e = cr_parse_flags(g, &cr_cmd_restore, flags, argc, argv, &npos);
    if (e == 1) {
        rc = CR_EXIT_OK;
        goto out;
    }
    cr_overwrite ow = CR_OVERWRITE_ALWAYS;
    if (e == 0 && o.overwrite) e = cr_overwrite_parse(o.overwrite, &ow);
    if (e == 0) e = read_pattern_files(&o.exclude_files, &o.excludes, &owned);
    if (e == 0) e = read_pattern_files(&o.iexclude_files, &o.iexcludes, &owned);
    if (e == 0) e = read_pattern_files(&o.include_files, &o.includes, &owned);
    if (e == 0) e = read_pattern_files(&o.iinclude_files, &o.iincludes, &owned);
    if (e == 0) e = validate(g, &o, npos, argv);
    rc = e < 0 ? cr_cli_fail(g, e) : do_restore(g, &o, argv[0], ow);
out:
    for (size_t i = 0; i < owned.n; i++) free((char *)owned.v[i]);
    cr_strv_free(&owned);
    cr_strv_free(&o.includes);
    cr_strv_free(&o.iincludes);
    cr_strv_free(&o.excludes);
    cr_strv_free(&o.iexcludes);
    cr_strv_free(&o.include_files);
    cr_strv_free(&o.iinclude_files);
    cr_strv_free(&o.exclude_files);
    cr_strv_free(&o.iexclude_files);
    cr_strv_free(&o.xattr_includes);
    cr_strv_free(&o.xattr_excludes);
    cr_strv_free(&o.filter.hosts);
    cr_strv_free(&o.filter.tags);
    cr_strv_free(&o.filter.paths);
    return rc;
}

const cr_command cr_cmd_restore = {
    .name = "restore",
    .summary = "Extract the data from a snapshot",
    .usage = "crestic restore [flags] snapshotID",
    .run = run,
};
