/* Rewriting the index (spec §10, §17, §22).
 *
 * Two parts: the "write a complete index" step shared by prune and repair
 * (index files for a chosen set of packs, then removal of the files they
 * replace), and `repair index` / `rebuild-index` itself, which rebuilds
 * the index from the pack files in the backend.
 *
 * Crash safety: new index files are always complete and stored before any
 * old one is removed, so at every moment each existing pack that holds
 * needed blobs is described by at least one index file. */
#ifndef CRESTIC_REPO_REPAIR_H
#define CRESTIC_REPO_REPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/index.h"
#include "repo/repo.h"

/* The entries of an index grouped by pack: for pack position p,
 * order[start[p] .. start[p+1]) are positions in idx->blobs, by offset. */
typedef struct {
    size_t *order;
    size_t *start; /* npacks + 1 values */
    size_t npacks;
} cr_pack_groups;
int cr_pack_groups_build(const cr_index *idx, cr_pack_groups *g);
void cr_pack_groups_free(cr_pack_groups *g);

/* Size of a pack file as its index entries describe it: blobs, header
 * entries, header encryption overhead and the 4-byte header length. */
uint64_t cr_pack_size_from_index(const cr_index *idx, const cr_pack_groups *g, uint32_t pack);

/* Write index files describing every pack of idx whose keep_pack[pos] is
 * true (keep_pack NULL: every pack).  A pack is never split over two files;
 * a file is closed once it holds CR_INDEX_FLUSH_BLOBS blobs.  Nothing is
 * written when no pack is kept.  *written (may be NULL) counts the files. */
int cr_index_save_packs(cr_repo *r, const cr_index *idx, const bool *keep_pack, size_t *written);

/* Remove index files.  Stops at the first failure: an index file that is
 * still there may describe packs the caller wants to delete next. */
int cr_index_files_remove(cr_repo *r, const cr_id *ids, size_t n);

/* Test hook for crash-safety tests: when $CRESTIC_TEST_ABORT_AT equals
 * `step`, the process kills itself with SIGKILL (no cleanup, lock left
 * behind), exactly as a crash at that point would.  No effect otherwise.
 * Steps: prune:unreferenced-removed-1, prune:repacked-1 (first pack
 * repacked), prune:repacked (new packs and their index stored),
 * prune:index-written, index-removed-1 (first old index file removed, prune
 * and repair), prune:index-removed, prune:pack-removed-1,
 * repair:index-written. */
void cr_test_abort_point(const char *step);

typedef enum {
    CR_REPAIR_INFO,    /* a phase starts (restic's default verbosity) */
    CR_REPAIR_VERBOSE, /* details for -v                              */
    CR_REPAIR_WARN,    /* something was left out or is damaged        */
} cr_repair_level;

typedef void (*cr_repair_report_cb)(void *ud, cr_repair_level level, const char *text);

typedef struct {
    bool read_all_packs; /* ignore the old index, read every pack header */
    const volatile int *cancel; /* stop (CR_E_INTERRUPTED) when it becomes non-zero */
    cr_repair_report_cb report;
    void *ud;
} cr_repair_opts;

typedef struct {
    size_t packs;          /* packs in the new index                        */
    size_t packs_read;     /* headers read (not in the index, or wrong size) */
    size_t packs_skipped;  /* headers that could not be read: left out      */
    size_t packs_forgotten;/* in the old index, missing from the backend    */
    size_t index_files_written, index_files_removed;
    size_t bad_index_files;/* old index files that could not be loaded      */
} cr_repair_result;

/* Rebuild the index from the packs in the backend: entries of the old index
 * are reused for packs whose size matches (unless read_all_packs), other
 * packs' headers are read; the new index is written, then every old index
 * file is removed.  The caller holds an exclusive lock.  Index files that
 * cannot be loaded are reported and replaced like the others. */
int cr_repair_index(cr_repo *r, const cr_repair_opts *o, cr_repair_result *res);

#endif
