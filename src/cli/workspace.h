/* Workspace backups: restic-backup / restic-restore (crestic workspace-backup
 * / workspace-restore), the commands behind the workspace module (module/).
 *
 * The settings come from $CODER_SCRIPT_DATA_DIR/restic-backup.conf (shell
 * style KEY='value' lines, as Coder's restic module writes them), the
 * workspace identity from RESTIC_WORKSPACE_ID / _OWNER / _NAME. */
#ifndef CRESTIC_CLI_WORKSPACE_H
#define CRESTIC_CLI_WORKSPACE_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/cli.h"
#include "repo/archiver.h"

/* ---- the backup command's hooks (cmd_backup.c) ---- */
typedef struct {
    const char *parent_tag;    /* parent: newest snapshot with this tag, whatever host and paths */
    const char *parent_prefer; /* a snapshot ID tried first (the one just restored), or NULL */
    volatile int *soft_stop;   /* see cr_archive_opts.soft_stop */
    const char *partial_tag;   /* added to the snapshot when files were deferred */
    bool (*trust_unchanged)(void *ud, const char *abspath, const struct stat *st, const cr_node *prev);
    void *trust_ud;
    /* Called after the snapshot is saved, with the repository still open
     * and the (shared) lock held; returns an exit code. */
    int (*after)(void *ud, cr_global *g, cr_repo *r, cr_lock **lock, const cr_id *snapshot, bool partial);
    void *after_ud;
    /* results */
    bool saved, have_parent;
    cr_id snapshot, parent;
    cr_archive_summary sum;
} cr_backup_hooks;

/* `crestic backup ARGS` with the hooks. */
int cr_backup_run_hooked(cr_global *g, int argc, char **argv, cr_backup_hooks *h);

/* ---- the configuration (workspace_conf.c) ---- */
typedef struct {
    cr_strv paths, excludes, tags;   /* owned strings */
    char *directory;                 /* "~" expanded */
    char *snapshot_id, *restore_target; /* restic-restore: SNAPSHOT_ID, RESTORE_TARGET */
    long keep_last, keep_daily, keep_weekly, keep_monthly;
    bool auto_forget, auto_prune;
    char *data_dir;                  /* $CODER_SCRIPT_DATA_DIR */
    const char *workspace_id, *owner, *name;
} cr_ws_conf;

/* Read the config file and the environment.  Prints nothing; a negative
 * code with a message on failure. */
int cr_ws_conf_load(cr_ws_conf *c);
void cr_ws_conf_free(cr_ws_conf *c);
/* "<data dir>/<name>" into out. */
int cr_ws_data_path(const cr_ws_conf *c, const char *name, cr_buf *out);

/* Exit codes of restic-backup / restic-restore beyond restic's (0 ok, 1
 * error, 3 partial, 10 no repository, 11 locked, 12 wrong password, 130). */
enum {
    CR_WS_EXIT_UNREACHABLE = 13, /* the storage did not answer */
    CR_WS_EXIT_NOT_FOUND = 14,   /* the configured snapshot does not exist */
    CR_WS_EXIT_BLOCKED = 15,     /* restic-backup: the last restore failed */
};

/* Open the repository for a workspace command: prints one "Error: ..."
 * line and returns the exit code on failure (10, 11?, 12, 13, 1). */
int cr_ws_open_repo(cr_global *g, cr_repo **out);
/* The exit code for an error from opening/reading the repository. */
int cr_ws_exit_code(int err);

#endif
