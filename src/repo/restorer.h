/* Restore a tree to a local directory (spec §18).
 *
 * Every file system operation is made relative to directory descriptors
 * opened with O_NOFOLLOW|O_DIRECTORY walking down from the target, so
 * nothing a snapshot contains (names, symlinks, duplicates) and nothing that
 * already sits in the target can redirect a write outside of it.  Names that
 * are not safe (cr_node_name_is_safe) are refused and reported.
 *
 * Content is restored by a small pool of threads, each taking a range of one
 * pack at a time: every needed range is read once, every blob decoded once
 * and written (pwritev, coalesced) to every place that needs it. */
#ifndef CRESTIC_REPO_RESTORER_H
#define CRESTIC_REPO_RESTORER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "repo/repo.h"

typedef enum {
    CR_OVERWRITE_ALWAYS,     /* default: rewrite what differs (content checked chunk by chunk) */
    CR_OVERWRITE_IF_CHANGED, /* like always, but size+mtime equal counts as unchanged */
    CR_OVERWRITE_IF_NEWER,   /* only when the snapshot's mtime is newer than the file's */
    CR_OVERWRITE_NEVER,      /* leave every existing file alone */
} cr_overwrite;

/* "always" | "if-changed" | "if-newer" | "never" -> 0, else CR_E_USAGE. */
int cr_overwrite_parse(const char *s, cr_overwrite *out);

/* As restic's restore progress: "files" count every item (files, dirs,
 * symlinks, ...); bytes are file contents. */
typedef struct {
    uint64_t files_total, bytes_total;
    uint64_t files_restored, bytes_restored;
    uint64_t files_skipped, bytes_skipped;
    uint64_t files_deleted;
    uint64_t errors;
    uint64_t files_verified;         /* --verify */
} cr_restore_stats;

typedef enum {
    CR_RESTORE_PHASE_VERIFY,         /* --verify starts (restore itself is done) */
    CR_RESTORE_PHASE_VERIFY_DONE,
} cr_restore_phase;

/* Called from the restoring thread now and then (progress), and once at the end. */
typedef void (*cr_restore_progress_cb)(void *ud, const cr_restore_stats *st, bool done);
/* Called for each problem that does not stop the restore (bad name, MAC
 * failure, permission error); item is the path inside the snapshot (for
 * --delete problems: the path in the target). */
typedef void (*cr_restore_error_cb)(void *ud, const char *item, const char *message);
/* Called for each item handled, for -v / --json verbose output.  action is
 * "restored", "updated", "unchanged" or "deleted" (restic's words); item is
 * the path inside the snapshot, for "deleted" the path in the target. */
typedef void (*cr_restore_item_cb)(void *ud, const char *item, const char *action, uint64_t size);
typedef void (*cr_restore_phase_cb)(void *ud, cr_restore_phase phase, const cr_restore_stats *st);

typedef struct {
    const char *target;              /* created if missing */
    const char *const *includes;  size_t nincludes;   /* restic patterns */
    const char *const *iincludes; size_t niincludes;  /* case-insensitive */
    const char *const *excludes;  size_t nexcludes;
    const char *const *iexcludes; size_t niexcludes;
    /* extended attributes by name (restic >= 0.17): restore only the
     * included ones, or all but the excluded ones */
    const char *const *xattr_includes; size_t nxattr_includes;
    const char *const *xattr_excludes; size_t nxattr_excludes;
    bool dry_run, verify, delete_extra, sparse;
    cr_overwrite overwrite;
    unsigned workers;                /* 0 = default */
    cr_restore_progress_cb progress;
    cr_restore_error_cb on_error;
    cr_restore_item_cb on_item;
    cr_restore_phase_cb on_phase;    /* may be NULL */
    const volatile int *interrupted; /* polled; non-zero stops with CR_E_INTERRUPTED */
    void *ud;
} cr_restore_opts;

/* Restore the tree `root` (a snapshot's tree or a subfolder's subtree) into
 * opts->target.  Returns 0; CR_E_PARTIAL when some items failed (each was
 * reported through on_error and counted in stats->errors); or a negative
 * code for a failure that stopped the restore.  Needs the index loaded.
 *
 * Callbacks: progress and on_phase come from the calling thread; on_error
 * and on_item may come from worker threads, but never two at a time.
 * Includes and excludes are combined (an item is restored when it is
 * included, or there are no includes, and not excluded); restic's CLI makes
 * them mutually exclusive.  --verify runs only when the restore had no
 * errors (as restic).  Raises the soft RLIMIT_NOFILE to the hard limit. */
int cr_restore(cr_repo *r, const cr_id *root, const cr_restore_opts *opts, cr_restore_stats *stats);

#endif
