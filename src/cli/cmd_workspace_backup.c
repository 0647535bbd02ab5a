/* restic-backup (crestic workspace-backup): back up a workspace as Coder's
 * restic module's helper script does (same config file, tags, progress
 * lines), with what stop-time backups need on top:
 *
 *  - the parent is the workspace's own latest snapshot (by its tag), or the
 *    snapshot just restored, and files the restore wrote are not read again
 *    (restore record, see repo/restore_record.h);
 *  - --deadline SECONDS and SIGTERM stop reading new files in time and still
 *    save a consistent snapshot tagged "partial" (exit 3);
 *  - backups of one workspace never overlap (a local lock file);
 *  - retention is applied per workspace, never because of partial snapshots
 *    to the last complete one;
 *  - no backup after a failed restore (an empty workspace must not become
 *    the latest backup). */
#include "cli/workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "repo/archive_internal.h"
#include "repo/forget.h"
#include "repo/restore_record.h"
#include "util/error.h"

extern const cr_command cr_cmd_workspace_backup;
extern const cr_command cr_cmd_prune __attribute__((weak));

#define PARTIAL_TAG "partial"
#define LINE "--------------------------------"

typedef struct {
    cr_strv extra_tags;
    double deadline;          /* seconds; 0 = none */
    bool help;
} wb_args;

typedef struct {
    cr_ws_conf c;
    wb_args a;
    double start;             /* monotonic */
    cr_restore_record *record;
    volatile int soft_stop;
    volatile int done;
    size_t forgotten;
    char id_tag[512];
    const cr_backup_hooks *hooks;
} wb_run;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: restic-backup [--tag TAG]... [--deadline SECONDS]\n");
}

static int parse_args(int argc, char **argv, wb_args *a)
{
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i], *v = NULL;
        bool tag = !strcmp(s, "--tag"), dl = !strcmp(s, "--deadline");
        if (!strncmp(s, "--tag=", 6)) tag = true, v = s + 6;
        else if (!strncmp(s, "--deadline=", 11)) dl = true, v = s + 11;
        else if (!strcmp(s, "--help") || !strcmp(s, "-h")) return a->help = true, 0;
        if ((tag || dl) && !v) {
            if (i + 1 >= argc) return cr_error(CR_E_USAGE, "%s needs a value", s);
            v = argv[++i];
        }
        if (tag) {
            cr_strv_push(&a->extra_tags, v);
        } else if (dl) {
            char *end;
            a->deadline = strtod(v, &end);
            if (!*v || *end || a->deadline <= 0) return cr_error(CR_E_USAGE, "--deadline: not a number of seconds: %s", v);
        } else {
            return cr_error(CR_E_USAGE, "Unknown argument: %s", s);
        }
    }
    return 0;
}

/* ---- the local lock ---------------------------------------------------------------- */

/* Take the workspace's backup lock (flock on a file in the data dir, which
 * holds the owner's PID).  With a deadline, a backup still holding it is
 * asked to wind down (SIGTERM: it saves a partial snapshot at once). */
static int take_local_lock(wb_run *w, int *fd_out)
{
    cr_buf p = CR_BUF_INIT;
    cr_ws_data_path(&w->c, "restic-backup.lock", &p);
    int fd = open((const char *)p.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int r = cr_error_sys(-errno, "open %s", (const char *)p.data);
        cr_buf_free(&p);
        return r;
    }
    cr_buf_free(&p);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        printf("Waiting for another backup of this workspace to finish...\n");
        fflush(stdout);
        char pidbuf[32] = "";
        ssize_t n = pread(fd, pidbuf, sizeof pidbuf - 1, 0);
        long pid = n > 0 ? strtol(pidbuf, NULL, 10) : 0;
        if (w->a.deadline > 0 && pid > 1 && pid != getpid()) kill((pid_t)pid, SIGTERM);
        while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            if (cr_interrupted || cr_soft_stop_requested ||
                (w->a.deadline > 0 && mono() - w->start > w->a.deadline)) {
                close(fd);
                return cr_error(CR_E_LOCKED, "another backup of this workspace is still running");
            }
            nanosleep(&(struct timespec){0, 50000000}, NULL);
        }
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) < 0) { /* the PID is only a hint */ }
    *fd_out = fd;
    return 0;
}

/* ---- the deadline -------------------------------------------------------------------- */

/* Time kept back for what follows the archiving: the walk over the rest of
 * the tree, the last packs, the index and the snapshot. */
static double reserve_seconds(double deadline)
{
    double r = deadline / 5;
    return r < 0.7 ? (deadline > 1.4 ? 0.7 : deadline / 2) : r > 60 ? 60 : r;
}

static void *deadline_main(void *arg)
{
    wb_run *w = arg;
    double soft_at = w->a.deadline > 0 ? w->start + w->a.deadline - reserve_seconds(w->a.deadline) : 0;
    while (!w->done) {
        if (cr_soft_stop_requested || (soft_at > 0 && mono() >= soft_at)) {
            w->soft_stop = 1;
            break;
        }
        nanosleep(&(struct timespec){0, 20000000}, NULL);
    }
    return NULL;
}

/* ---- retention ------------------------------------------------------------------------- */

static bool is_partial(const cr_snapshot *s)
{
    return cr_snapshot_has_tag(s, PARTIAL_TAG);
}

static int remove_snapshot(cr_repo *r, const cr_snapshot *s)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&s->id, hex);
    int e = cr_be_remove(r->be, CR_FILE_SNAPSHOT, hex);
    if (e < 0) return cr_error_ctx(e, "remove snapshot %.8s", hex);
    printf("removed snapshot %.8s\n", hex);
    return 0;
}

/* The policy on the workspace's complete snapshots, all in one group
 * (whatever their host and paths); partial snapshots older than the newest
 * complete one are superseded by it and go, newer ones stay. */
static int forget_workspace(wb_run *w, cr_repo *r)
{
    cr_snapshot *all = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_load_snapshots(r, &all, &n));
    const cr_snapshot **complete = calloc(n ? n : 1, sizeof *complete);
    size_t nc = 0;
    const cr_snapshot *newest = NULL;
    for (size_t i = 0; complete && i < n; i++) {
        if (!cr_snapshot_has_tag(&all[i], w->id_tag) || is_partial(&all[i])) continue;
        complete[nc++] = &all[i];
        if (!newest || cr_time_cmp(&all[i].time, &newest->time) >= 0) newest = &all[i];
    }
    cr_forget_policy pol = {0};
    pol.count[CR_KEEP_LAST] = w->c.keep_last;
    pol.count[CR_KEEP_DAILY] = w->c.keep_daily;
    pol.count[CR_KEEP_WEEKLY] = w->c.keep_weekly;
    pol.count[CR_KEEP_MONTHLY] = w->c.keep_monthly;
    cr_forget_result res = {0};
    cr_time now = cr_time_now();
    int rc = complete ? cr_forget_apply(complete, nc, &pol, &now, cr_forget_local_zone, &res) : -ENOMEM;
    size_t removed = 0, partial_removed = 0;
    for (size_t i = 0; rc == 0 && i < res.nremove; i++) {
        if (res.remove[i] == newest) continue; /* never, whatever the policy says */
        if ((rc = remove_snapshot(r, res.remove[i])) == 0) removed++;
    }
    for (size_t i = 0; rc == 0 && newest && i < n; i++) {
        if (!cr_snapshot_has_tag(&all[i], w->id_tag) || !is_partial(&all[i])) continue;
        if (cr_time_cmp(&all[i].time, &newest->time) > 0) continue;
        if ((rc = remove_snapshot(r, &all[i])) == 0) partial_removed++;
    }
    if (rc == 0)
        printf("workspace %s: kept %zu snapshots, removed %zu (and %zu superseded partial ones)\n",
               w->c.workspace_id, res.nkeep, removed, partial_removed);
    w->forgotten = removed + partial_removed;
    cr_forget_result_free(&res);
    free(complete);
    cr_snapshots_free(all, n);
    return rc;
}

static int after_backup(void *ud, cr_global *g, cr_repo *r, cr_lock **lock, const cr_id *snapshot, bool partial)
{
    wb_run *w = ud;
    (void)snapshot;
    if (partial) {
        printf("Backup incomplete: %llu files not read in time (deadline or stop signal); snapshot tagged "
               PARTIAL_TAG ", the next backup completes it\n", (unsigned long long)w->hooks->sum.files_deferred);
    } else {
        printf("Backup completed successfully\n");
    }
    fflush(stdout);
    if (!w->c.auto_forget || partial) return 0;
    printf("Applying retention policies...\n");
    if (w->c.auto_prune) printf("Pruning unreferenced data...\n");
    fflush(stdout);
    cr_lock_release(*lock);
    *lock = NULL;
    int e = g->no_lock ? 0 : cr_lock_acquire(r, true, 0, lock);
    if (e == 0) e = forget_workspace(w, r);
    if (e < 0) fprintf(stderr, "Warning: Failed to apply retention policies: %s\n", cr_error_message());
    else if (!w->c.auto_prune) printf("Retention policies applied\n");
    fflush(stdout);
    return 0;
}

static bool trust_restored(void *ud, const char *abspath, const struct stat *st, const cr_node *prev)
{
    return cr_restore_record_vouches(ud, abspath, st, prev);
}

/* ---- the run ---------------------------------------------------------------------------- */

static void push_fmt(cr_strv *v, cr_strv *owned, const char *fmt, const char *a, const char *b)
{
    cr_buf s = CR_BUF_INIT;
    cr_buf_printf(&s, fmt, a, b ? b : "");
    cr_buf_nul(&s);
    char *str = (char *)cr_buf_steal(&s, NULL);
    cr_strv_push(owned, str);
    cr_strv_push(v, str);
}

static void print_joined(const char *label, const cr_strv *v)
{
    printf("%s", label);
    for (size_t i = 0; i < v->n; i++) printf("%s%s", i ? " " : "", v->v[i]);
    printf("\n");
}

/* The arguments of the backup command: paths (made absolute, so a restore
 * to / puts them back), tags, excludes. */
static void backup_argv(wb_run *w, cr_strv *args, cr_strv *owned, cr_strv *tags, cr_strv *excl)
{
    cr_ws_conf *c = &w->c;
    push_fmt(tags, owned, "--tag=workspace-id:%s%s", c->workspace_id, NULL);
    push_fmt(tags, owned, "--tag=workspace-owner:%s%s", c->owner, NULL);
    push_fmt(tags, owned, "--tag=workspace-name:%s%s", c->name, NULL);
    for (size_t i = 0; i < c->tags.n; i++) push_fmt(tags, owned, "--tag=%s%s", c->tags.v[i], NULL);
    for (size_t i = 0; i < w->a.extra_tags.n; i++) push_fmt(tags, owned, "--tag=%s%s", w->a.extra_tags.v[i], NULL);
    for (size_t i = 0; i < c->excludes.n; i++) push_fmt(excl, owned, "--exclude=%s%s", c->excludes.v[i], NULL);
    cr_buf abs = CR_BUF_INIT;
    for (size_t i = 0; i < c->paths.n; i++) {
        if (cr_path_abs(c->paths.v[i], &abs) < 0) continue;
        cr_buf_nul(&abs);
        char *p = (char *)cr_buf_steal(&abs, NULL);
        cr_strv_push(owned, p);
        cr_strv_push(args, p);
    }
    if (!c->paths.n) {
        char *p = getcwd(NULL, 0);
        if (p) cr_strv_push(owned, p), cr_strv_push(args, p);
    }
    cr_buf_free(&abs);
    for (size_t i = 0; i < tags->n; i++) cr_strv_push(args, tags->v[i]);
    for (size_t i = 0; i < excl->n; i++) cr_strv_push(args, excl->v[i]);
    /* Our own data dir (by default ~/.local/share/coder, inside the home)
     * is never backed up: a restore must not bring back an old config,
     * lock or restore record. */
    cr_buf ex = CR_BUF_INIT;
    cr_buf_puts(&ex, "--exclude=");
    for (const char *p = c->data_dir; *p; p++) {
        if (strchr("*?[\\", *p)) cr_buf_putc(&ex, '\\');
        cr_buf_putc(&ex, *p);
    }
    cr_buf_nul(&ex);
    char *e = (char *)cr_buf_steal(&ex, NULL);
    cr_strv_push(owned, e);
    cr_strv_push(args, e);
}

static void write_stats(const cr_backup_hooks *h)
{
    const char *file = getenv("CRESTIC_STATS_FILE");
    if (!file || !*file) return;
    FILE *f = fopen(file, "we");
    if (!f) return;
    fprintf(f, "bytes_read=%llu\nfiles_deferred=%llu\nfiles_new=%llu\nfiles_changed=%llu\nfiles_unmodified=%llu\n",
            (unsigned long long)h->sum.bytes_read, (unsigned long long)h->sum.files_deferred,
            (unsigned long long)h->sum.files_new, (unsigned long long)h->sum.files_changed,
            (unsigned long long)h->sum.files_unmodified);
    fclose(f);
}

static int check_restore_marker(wb_run *w)
{
    cr_buf p = CR_BUF_INIT;
    cr_ws_data_path(&w->c, "restic-restore.failed", &p);
    int rc = 0;
    if (access((const char *)p.data, F_OK) == 0) {
        fprintf(stderr, "Error: the last restore of this workspace failed (see %s); not backing up, so that an "
                        "incomplete workspace does not become its latest backup. Run restic-restore again, or "
                        "remove that file to back up anyway.\n", (const char *)p.data);
        rc = CR_WS_EXIT_BLOCKED;
    }
    cr_buf_free(&p);
    return rc;
}

static void load_record(wb_run *w)
{
    cr_buf p = CR_BUF_INIT;
    cr_ws_data_path(&w->c, "restic-restore.record", &p);
    int r = cr_restore_record_load((const char *)p.data, &w->record);
    if (r < 0 && r != -ENOENT) fprintf(stderr, "Warning: %s (ignored)\n", cr_error_message());
    cr_buf_free(&p);
}

static void drop_record(wb_run *w)
{
    cr_buf p = CR_BUF_INIT;
    cr_ws_data_path(&w->c, "restic-restore.record", &p);
    unlink((const char *)p.data);
    cr_buf_free(&p);
}

static int run_prune(cr_global *g)
{
    if (!&cr_cmd_prune) return CR_EXIT_OK;
    char *none[] = {NULL};
    int rc = cr_cmd_prune.run(g, 0, none);
    if (rc) fprintf(stderr, "Warning: Failed to apply retention policies\n");
    else printf("Retention policies applied\n");
    return CR_EXIT_OK;
}

static int backup_workspace(cr_global *g, wb_run *w)
{
    cr_ws_conf *c = &w->c;
    if (chdir(c->directory) < 0) {
        fprintf(stderr, "Error: Failed to change to directory: %s\n", c->directory);
        return CR_EXIT_FAILURE;
    }
    snprintf(w->id_tag, sizeof w->id_tag, "workspace-id:%s", c->workspace_id);
    cr_strv args = {0}, owned = {0}, tags = {0}, excl = {0};
    backup_argv(w, &args, &owned, &tags, &excl);
    char *cwd = getcwd(NULL, 0);
    printf("Working directory: %s\n", cwd ? cwd : c->directory);
    free(cwd);
    print_joined("Backup paths: ", c->paths.n ? &c->paths : &(cr_strv){(const char *[]){"."}, 1});
    print_joined("Tags: ", &tags);
    if (excl.n) print_joined("Exclusions: ", &excl);
    printf("Starting backup...\n");
    fflush(stdout);
    load_record(w);
    char hex[CR_ID_HEX + 1];
    if (w->record) cr_id_to_hex(cr_restore_record_snapshot(w->record), hex);
    cr_backup_hooks h = {
        .parent_tag = w->id_tag, .parent_prefer = w->record ? hex : NULL,
        .soft_stop = &w->soft_stop, .partial_tag = PARTIAL_TAG,
        .trust_unchanged = w->record ? trust_restored : NULL, .trust_ud = w->record,
        .after = after_backup, .after_ud = w,
    };
    w->hooks = &h;
    pthread_t t;
    bool timer = pthread_create(&t, NULL, deadline_main, w) == 0;
    int rc = cr_backup_run_hooked(g, (int)args.n, (char **)args.v, &h);
    w->done = 1;
    if (timer) pthread_join(t, NULL);
    write_stats(&h);
    bool partial = h.saved && h.sum.files_deferred > 0;
    if (rc == CR_EXIT_OK && partial) rc = CR_EXIT_PARTIAL;
    else if (rc == CR_EXIT_OK && h.saved) drop_record(w); /* the new snapshot knows the restored files now */
    if (!h.saved && rc != CR_EXIT_OK) fprintf(stderr, "Error: Backup failed\n");
    if (h.saved && !partial && c->auto_forget && c->auto_prune && w->forgotten) run_prune(g);
    for (size_t i = 0; i < owned.n; i++) free((void *)owned.v[i]);
    cr_strv_free(&owned), cr_strv_free(&args), cr_strv_free(&tags), cr_strv_free(&excl);
    return rc;
}

static int run_workspace_backup(cr_global *g, int argc, char **argv)
{
    wb_run w = {.start = mono()};
    int r = parse_args(argc, argv, &w.a);
    if (r < 0 || w.a.help) {
        if (r < 0) fprintf(stderr, "%s\n", cr_error_message());
        usage(r < 0 ? stderr : stdout);
        cr_strv_free(&w.a.extra_tags);
        return r < 0 ? CR_EXIT_FAILURE : CR_EXIT_OK;
    }
    cr_soft_signals = 1; /* SIGTERM: finish with a partial snapshot */
    if ((r = cr_ws_conf_load(&w.c)) < 0) {
        fprintf(stderr, "Error: %s\n", cr_error_message());
        cr_ws_conf_free(&w.c);
        cr_strv_free(&w.a.extra_tags);
        return CR_EXIT_FAILURE;
    }
    printf(LINE "\nRestic Backup\n" LINE "\n");
    fflush(stdout);
    int rc = check_restore_marker(&w);
    int lock_fd = -1;
    if (rc == 0 && (r = take_local_lock(&w, &lock_fd)) < 0) {
        fprintf(stderr, "Error: %s\n", cr_error_message());
        rc = r == CR_E_LOCKED ? CR_EXIT_LOCKED : CR_EXIT_FAILURE;
    }
    if (rc == 0) rc = backup_workspace(g, &w);
    if (rc == CR_EXIT_OK || rc == CR_EXIT_PARTIAL) printf("Backup process complete\n");
    if (lock_fd >= 0) close(lock_fd);
    cr_restore_record_free(w.record);
    cr_ws_conf_free(&w.c);
    cr_strv_free(&w.a.extra_tags);
    return rc;
}

const cr_command cr_cmd_workspace_backup = {"workspace-backup", "Back up a workspace (restic-backup)",
                                            "restic-backup [--tag TAG]... [--deadline SECONDS]",
                                            run_workspace_backup};
