/* The archiver: turns local files into trees and data blobs (spec §12, §16,
 * §17), as restic's backup does.
 *
 * The targets are arranged into a root tree exactly as restic arranges them
 * (relative `src` -> root/src; absolute `/home/u/work` -> root/home/u/work
 * with the real metadata of /home and /home/u; equal top-level names from
 * different roots become name, name-1, ...).  Directories are walked in
 * raw-byte name order on one thread; regular files are read by a pool of
 * reader threads (large sequential reads, Rabin chunking) while a pool of
 * saver threads hashes, compresses and seals the chunks through the blob
 * writer.  Memory stays bounded: reads go into a fixed set of slabs.
 *
 * With a parent snapshot, a file whose size, mtime, ctime and inode match the
 * node at the same path in the parent (and whose blobs are all indexed) is
 * not read: its content list is reused.  Metadata always comes from lstat.
 *
 * No output of its own: errors, finished items and progress go through the
 * callbacks below (called from several threads, but never concurrently with
 * each other), or can be polled with cr_archiver_progress(). */
#ifndef CRESTIC_REPO_ARCHIVER_H
#define CRESTIC_REPO_ARCHIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "repo/excluder.h"
#include "repo/repo.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "repo/writer.h"
#include "util/buf.h"
#include "util/gotime.h"

typedef enum { CR_ITEM_NEW, CR_ITEM_UNCHANGED, CR_ITEM_MODIFIED } cr_item_action;

/* What one item added to the repository (restic's ItemStats).  The stored
 * ("in repo") sizes are not known per blob and stay 0. */
typedef struct {
    uint64_t data_blobs, data_size, data_size_in_repo;
    uint64_t tree_blobs, tree_size, tree_size_in_repo;
} cr_item_stats;

typedef struct {
    uint64_t files_new, files_changed, files_unmodified;
    uint64_t dirs_new, dirs_changed, dirs_unmodified;
    uint64_t processed_bytes;  /* sizes of the files in the snapshot */
    uint64_t errors;           /* items reported through on_error */
    uint64_t files_deferred;   /* not read because of soft_stop (parent's version kept, or left out) */
    uint64_t bytes_read;       /* bytes read from source files */
} cr_archive_summary;

typedef struct {
    uint64_t files_done, dirs_done, bytes_done, errors;
} cr_archive_progress;

/* item: the path inside the snapshot ("/src/a"; directories end in '/').
 * message: full text as restic prints it after "error: ". */
typedef void (*cr_archive_error_fn)(void *ud, const char *item, const char *message);
typedef void (*cr_archive_item_fn)(void *ud, const char *item, bool is_dir, cr_item_action action,
                                   const cr_item_stats *st, double seconds);
typedef void (*cr_archive_excluded_fn)(void *ud, const char *abspath);

typedef struct {
    const char *const *targets;  /* as given (relative or absolute), existing */
    size_t ntargets;
    cr_excluder *excluder;       /* NULL: nothing excluded */
    const cr_snapshot *parent;   /* NULL: every file is read */
    bool with_atime;             /* else atime := mtime (restic's default) */
    bool ignore_ctime, ignore_inode; /* ignore_inode implies ignore_ctime */
    unsigned read_concurrency;   /* files read at once; 0 = 2 */
    unsigned save_concurrency;   /* blob sealing threads; 0 = CPUs */
    /* --stdin: the data of stdin_fd becomes the file stdin_name (a path
     * below "/"), with mode 0644 and mtime = stdin_time. targets ignored. */
    int stdin_fd;                /* -1 when not used */
    const char *stdin_name;
    cr_time stdin_time;
    volatile int *cancel;        /* polled; non-zero stops with CR_E_INTERRUPTED */
    /* Polled; once non-zero, no more file content is read: a file not yet
     * read (or being read) keeps its node from the parent snapshot when the
     * parent has it (so the next backup sees it as changed and reads it),
     * else it is left out.  The walk and the trees still complete, so the
     * snapshot is consistent.  Counted in files_deferred. */
    volatile int *soft_stop;
    /* Optional: may a file whose size and mtime equal the parent's node but
     * whose ctime or inode differ reuse the parent's content?  (A restore
     * record vouching that the file was written from that content.) */
    bool (*trust_unchanged)(void *ud, const char *abspath, const struct stat *st, const cr_node *prev);
    void *trust_ud;
    cr_archive_error_fn on_error;
    cr_archive_item_fn on_item;
    cr_archive_excluded_fn on_excluded;
    void *ud;
} cr_archive_opts;

typedef struct cr_archiver cr_archiver;

int cr_archiver_new(cr_repo *r, cr_writer *w, const cr_archive_opts *o, cr_archiver **out);
/* Archive everything and save the root tree.  Returns 0 with *root set (the
 * writer is not flushed: the caller flushes, then writes the snapshot);
 * CR_E_INTERRUPTED when cancelled; another negative code for a fatal error
 * (writer failure, empty snapshot, unreadable parent tree).  Items that
 * could not be read are reported, left out and counted in errors. */
int cr_archiver_run(cr_archiver *a, cr_id *root);
void cr_archiver_summary(cr_archiver *a, cr_archive_summary *s);
/* Safe from any thread while run() is going.  current (optional) receives
 * the snapshot paths of the files being read, NUL-separated, sorted. */
void cr_archiver_progress(cr_archiver *a, cr_archive_progress *p, cr_buf *current);
void cr_archiver_free(cr_archiver *a);

/* The scanner behind restic's progress totals: walks the same targets with
 * the same excludes, counting regular files, directories and bytes, and
 * calls result() now and then and once at the end (done = true). */
typedef struct {
    uint64_t files, dirs, others, bytes;
} cr_scan_stats;
typedef void (*cr_scan_result_fn)(void *ud, const cr_scan_stats *s, bool done);
int cr_archive_scan(const char *const *targets, size_t ntargets, cr_excluder *ex, volatile int *cancel,
                    cr_scan_result_fn result, cr_archive_error_fn on_error, void *ud);

#endif
