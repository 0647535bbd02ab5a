/* restic-restore (crestic workspace-restore): restore a workspace at start,
 * as Coder's restic module's start script does (the configured snapshot,
 * else the newest one tagged workspace-id:<id>; target / by default), but
 * as a command of its own whose outcomes cannot be confused:
 *
 *   0   restored, or "No previous backup found" (a fresh workspace)
 *   10  no repository          11  repository locked
 *   12  wrong password         13  storage unreachable
 *   14  configured snapshot not found
 *
 * A configured SNAPSHOT_ID (cloning another workspace) is restored only
 * while the workspace has no backup of its own.
 *   1   any other failure (also a restore that failed part way)
 *
 * Every failure leaves a marker file (restic-restore.failed in the data
 * dir) that keeps restic-backup from saving the unrestored workspace as the
 * latest backup; a success or "no backup yet" removes it.  After a restore
 * the restore record (repo/restore_record.h) lets the next backup skip the
 * files just written. */
#include "cli/workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repo/restore_record.h"
#include "repo/restorer.h"
#include "util/error.h"

extern const cr_command cr_cmd_workspace_restore;

#define LINE "--------------------------------"

typedef struct {
    const char *snapshot, *target;
    bool dry_run, help;
} wr_args;

static int parse_args(int argc, char **argv, wr_args *a)
{
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i], *v = NULL;
        const char **dst = NULL;
        if (!strcmp(s, "--snapshot") || !strncmp(s, "--snapshot=", 11)) dst = &a->snapshot;
        else if (!strcmp(s, "--target") || !strncmp(s, "--target=", 9)) dst = &a->target;
        else if (!strcmp(s, "--dry-run")) { a->dry_run = true; continue; }
        else if (!strcmp(s, "--help") || !strcmp(s, "-h")) return a->help = true, 0;
        else return cr_error(CR_E_USAGE, "Unknown argument: %s", s);
        v = strchr(s, '=');
        if (v) v++;
        else if (i + 1 < argc) v = argv[++i];
        else return cr_error(CR_E_USAGE, "%s needs a value", s);
        *dst = v;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: restic-restore [--snapshot ID] [--target DIR] [--dry-run]\n");
}

/* ---- the failure marker ----------------------------------------------------------------- */

static void set_marker(const cr_ws_conf *c, int code, const char *why)
{
    cr_buf p = CR_BUF_INIT;
    cr_ws_data_path(c, "restic-restore.failed", &p);
    int fd = open((const char *)p.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dprintf(fd, "exit %d: %s\n", code, why);
        close(fd);
    }
    cr_buf_free(&p);
}

static void clear_marker(const cr_ws_conf *c)
{
    cr_buf p = CR_BUF_INIT;
    cr_ws_data_path(c, "restic-restore.failed", &p);
    unlink((const char *)p.data);
    cr_buf_free(&p);
}

/* Print the failure, leave the marker, return the exit code. */
static int fail(const cr_ws_conf *c, int code, const char *what)
{
    const char *msg = cr_error_message();
    fprintf(stderr, "Error: %s%s%s\n", what, msg[0] ? ": " : "", msg);
    fprintf(stderr, "The workspace was not restored; backups stay blocked until a restore succeeds.\n");
    set_marker(c, code, what);
    return code;
}

/* ---- finding the snapshot ----------------------------------------------------------------- */

/* The newest snapshot tagged workspace-id:<id>; *found false when none. */
static int latest_of_workspace(cr_repo *r, const char *id, cr_snapshot *out, bool *found)
{
    char tag[512];
    snprintf(tag, sizeof tag, "workspace-id:%s", id);
    cr_snapshot *all = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_load_snapshots(r, &all, &n));
    ssize_t best = -1;
    for (size_t i = 0; i < n; i++)
        if (cr_snapshot_has_tag(&all[i], tag) && (best < 0 || cr_time_cmp(&all[i].time, &all[best].time) >= 0))
            best = (ssize_t)i;
    *found = best >= 0;
    if (*found) {
        *out = all[best];
        memset(&all[best], 0, sizeof all[best]);
    }
    cr_snapshots_free(all, n);
    return 0;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_error(void *ud, const char *item, const char *message)
{
    (void)ud;
    fprintf(stderr, "ignoring error for %s: %s\n", item, message);
}

/* Restore sn into target and write the restore record.  An exit code. */
static int restore_snapshot(const cr_ws_conf *c, cr_repo *r, const cr_snapshot *sn, const char *target)
{
    double t0 = mono();
    cr_restore_opts ro = {.target = target, .on_error = on_error, .interrupted = &cr_interrupted};
    cr_restore_stats st = {0};
    int e = cr_restore(r, &sn->tree, &ro, &st);
    if (e == CR_E_PARTIAL) {
        cr_error(e, "%llu items could not be restored", (unsigned long long)st.errors);
        return fail(c, CR_EXIT_FAILURE, "Restore failed");
    }
    if (e < 0) return fail(c, cr_ws_exit_code(e), "Restore failed");
    char size[32];
    cr_format_bytes(size, sizeof size, st.bytes_restored);
    printf("Restored %llu files/dirs (%s) in %.1f s\n", (unsigned long long)st.files_restored, size, mono() - t0);
    cr_buf p = CR_BUF_INIT;
    cr_ws_data_path(c, "restic-restore.record", &p);
    size_t nrec = 0;
    e = cr_restore_record_write(r, &sn->id, &sn->tree, target, (const char *)p.data, &nrec);
    if (e < 0) fprintf(stderr, "Warning: no restore record, the next backup reads every file: %s\n", cr_error_message());
    cr_buf_free(&p);
    printf("Restore completed successfully\n");
    return CR_EXIT_OK;
}

/* Which snapshot: --snapshot; else SNAPSHOT_ID (a clone's source) until
 * the workspace has backups of its own (restoring it at every start would
 * throw those away); else the workspace's latest.  *found false: none yet.
 * An exit code. */
static int choose_snapshot(const cr_ws_conf *c, const wr_args *a, cr_repo *r, cr_snapshot *sn, bool *found)
{
    const char *snap = a->snapshot ? a->snapshot : c->snapshot_id && *c->snapshot_id ? c->snapshot_id : NULL;
    int e;
    if (!a->snapshot) {
        if ((e = latest_of_workspace(r, c->workspace_id, sn, found)) < 0)
            return fail(c, cr_ws_exit_code(e), "listing snapshots failed");
        if (*found) {
            char sid[9];
            cr_id_short(&sn->id, sid);
            if (snap) printf("This workspace has backups of its own: restoring its latest, not %s\n", snap);
            printf("Found snapshot: %s\n", sid);
            return 0;
        }
        if (!snap) return 0;
    }
    if ((e = cr_repo_find_snapshot(r, snap, NULL, sn)) < 0)
        return fail(c, cr_ws_exit_code(e), e == CR_E_NOTFOUND ? "snapshot not found" : "listing snapshots failed");
    *found = true;
    return 0;
}

static int find_and_restore(cr_global *g, const cr_ws_conf *c, const wr_args *a)
{
    const char *snap = a->snapshot ? a->snapshot : c->snapshot_id && *c->snapshot_id ? c->snapshot_id : NULL;
    const char *target = a->target ? a->target : c->restore_target && *c->restore_target ? c->restore_target : "/";
    if (snap) printf("Restoring specific snapshot: %s\n", snap);
    else printf("Finding latest backup for this workspace...\n");
    fflush(stdout);
    cr_repo *r = NULL;
    int rc = cr_ws_open_repo(g, &r);
    if (rc) {
        set_marker(c, rc, "the repository could not be opened");
        fprintf(stderr, "The workspace was not restored; backups stay blocked until a restore succeeds.\n");
        return rc;
    }
    cr_lock *lock = NULL;
    cr_snapshot sn = {0};
    bool found = false;
    int e = g->no_lock ? 0 : cr_lock_acquire(r, false, 0, &lock);
    if (e < 0) rc = fail(c, cr_ws_exit_code(e), "the repository is locked");
    else rc = choose_snapshot(c, a, r, &sn, &found);
    if (rc == 0 && !found) {
        printf("No previous backup found\nStarting with fresh workspace\n");
        clear_marker(c);
    } else if (rc == 0) {
        char sid[9];
        cr_id_short(&sn.id, sid);
        printf("Restoring to %s...\n", target);
        fflush(stdout);
        if (a->dry_run) printf("Dry run: snapshot %s would be restored to %s\n", sid, target);
        else if ((e = cr_repo_load_index(r)) < 0) rc = fail(c, cr_ws_exit_code(e), "loading the index failed");
        else rc = restore_snapshot(c, r, &sn, target);
        if (rc == 0 && !a->dry_run) clear_marker(c);
    }
    cr_snapshot_clear(&sn);
    cr_lock_release(lock);
    cr_repo_close(r);
    return rc;
}

static int run_workspace_restore(cr_global *g, int argc, char **argv)
{
    wr_args a = {0};
    int r = parse_args(argc, argv, &a);
    if (r < 0 || a.help) {
        if (r < 0) fprintf(stderr, "%s\n", cr_error_message());
        usage(r < 0 ? stderr : stdout);
        return r < 0 ? CR_EXIT_FAILURE : CR_EXIT_OK;
    }
    cr_ws_conf c;
    if (cr_ws_conf_load(&c) < 0) {
        fprintf(stderr, "Error: %s\n", cr_error_message());
        cr_ws_conf_free(&c);
        return CR_EXIT_FAILURE;
    }
    printf(LINE "\nRestore Configuration\n" LINE "\n");
    fflush(stdout);
    int rc = find_and_restore(g, &c, &a);
    cr_ws_conf_free(&c);
    return rc;
}

const cr_command cr_cmd_workspace_restore = {"workspace-restore", "Restore a workspace (restic-restore)",
                                             "restic-restore [--snapshot ID] [--target DIR] [--dry-run]",
                                             run_workspace_restore};
