/* Restore a tree to a local directory (spec §18). */
#ifndef CRESTIC_REPO_RESTORER_H
#define CRESTIC_REPO_RESTORER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "repo/repo.h"

typedef enum {
    CR_OVERWRITE_ALWAYS,
    CR_OVERWRITE_IF_CHANGED,
    CR_OVERWRITE_IF_NEWER,
    CR_OVERWRITE_NEVER,
} cr_overwrite;

typedef struct {
    uint64_t files_total, bytes_total;
    uint64_t files_restored, bytes_restored;
    uint64_t files_skipped, bytes_skipped;
    uint64_t files_deleted;
    uint64_t errors;
} cr_restore_stats;

/* Called from the restoring thread now and then (progress), and once at the end. */
typedef void (*cr_restore_progress_cb)(void *ud, const cr_restore_stats *st, bool done);
/* Called for each problem that does not stop the restore (bad name, MAC
 * failure, permission error); item is the path inside the snapshot. */
typedef void (*cr_restore_error_cb)(void *ud, const char *item, const char *message);
/* Called for each item handled, for -v / --json verbose output. */
typedef void (*cr_restore_item_cb)(void *ud, const char *item, const char *action, uint64_t size);

typedef struct {
    const char *target;              /* created if missing */
    const char *const *includes;  size_t nincludes;   /* restic patterns */
    const char *const *iincludes; size_t niincludes;  /* case-insensitive */
    const char *const *excludes;  size_t nexcludes;
    const char *const *iexcludes; size_t niexcludes;
    bool dry_run, verify, delete_extra, sparse;
    cr_overwrite overwrite;
    unsigned workers;                /* 0 = default */
    cr_restore_progress_cb progress;
    cr_restore_error_cb on_error;
    cr_restore_item_cb on_item;
    void *ud;
} cr_restore_opts;

/* Restore the tree `root` (a snapshot's tree or a subfolder's subtree) into
 * opts->target.  Returns 0; CR_E_PARTIAL when some items failed (each was
 * reported through on_error and counted in stats->errors); or a negative
 * code for a failure that stopped the restore.  Needs the index loaded. */
int cr_restore(cr_repo *r, const cr_id *root, const cr_restore_opts *opts, cr_restore_stats *stats);

#endif
