/* prune (spec §20): remove data no snapshot needs, repack partly used packs.
 *
 * Two steps, so that a dry run is the first step alone:
 *   cr_prune_plan_new()  loads the index and every snapshot, marks the used
 *                        blobs, and decides for each pack: keep, repack,
 *                        remove (plus unreferenced packs and missing ones);
 *   cr_prune_execute()   carries the plan out in the crash-safe order of
 *                        spec §17: delete unreferenced packs; store the used
 *                        blobs of repacked packs again (new packs, then their
 *                        index files); write a complete new index; remove the
 *                        old index files; only then delete obsolete packs.
 * Killed at any moment, the repository stays valid (at worst it holds
 * unreferenced packs or duplicate index entries, which the next prune
 * cleans up).  The caller holds an exclusive lock. */
#ifndef CRESTIC_REPO_PRUNER_H
#define CRESTIC_REPO_PRUNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/repo.h"
#include "repo/writer.h"

typedef enum {
    CR_PRUNE_INFO,    /* restic's default verbosity: phases          */
    CR_PRUNE_VERBOSE, /* -v: details ("will remove pack ...")        */
    CR_PRUNE_WARN,    /* problems, printed on stderr                 */
} cr_prune_level;

typedef void (*cr_prune_report_cb)(void *ud, cr_prune_level level, const char *text);

typedef enum {
    CR_UNUSED_PERCENT,   /* max_unused_percent of the used size (of the remaining total) */
    CR_UNUSED_BYTES,
    CR_UNUSED_UNLIMITED,
} cr_unused_limit;

typedef struct {
    cr_unused_limit unused_limit;
    double max_unused_percent; /* 0 <= p < 100 */
    uint64_t max_unused_bytes;
    uint64_t max_repack_bytes; /* UINT64_MAX: no limit */
    bool repack_cacheable_only; /* repack tree packs only */
    bool repack_small;          /* small packs: below 80% of the pack size, not 1/25 */
    bool repack_uncompressed;   /* v2: repack packs with uncompressed data blobs */
    bool unsafe_recovery;       /* remove the old index before the packs (no free space) */
    cr_writer_opts writer;      /* compression and pack size for repacked blobs */
    const volatile int *cancel; /* stop (CR_E_INTERRUPTED) when it becomes non-zero */
    cr_prune_report_cb report;
    void *ud;
} cr_prune_opts;

/* Parse --max-unused: "5%", "1.5%", "100M", "0", "unlimited" (restic's
 * messages for bad values, CR_E_USAGE). */
int cr_prune_parse_max_unused(const char *s, cr_prune_opts *o);

/* restic's statistics (sizes are stored bytes; a pack's used size includes
 * its header). */
typedef struct {
    struct {
        uint64_t used, duplicate, unused, remove, repack, repackrm;
    } blobs;
    struct {
        uint64_t used, duplicate, unused, remove, repack, repackrm, unref;
    } size;
    struct {
        uint64_t used, partly_used, unused, unref, keep, repack, remove;
    } packs;
} cr_prune_stats;

typedef enum {
    CR_PRUNE_UNREFERENCED, /* packs no index lists: deleted first           */
    CR_PRUNE_REPACK,       /* used blobs stored again, then the pack deleted */
    CR_PRUNE_REMOVE,       /* nothing used: deleted                          */
    CR_PRUNE_FORGET,       /* missing from the backend, not needed: dropped from the index */
} cr_prune_list;

typedef struct cr_prune_plan cr_prune_plan;

/* Everything up to the decision; changes nothing.  Errors (nothing was
 * deleted): a used blob missing from the index (CR_E_NOTFOUND, message
 * "index is not complete"), needed packs missing from the backend, needed
 * packs whose size does not match the index, unreadable snapshots/trees. */
int cr_prune_plan_new(cr_repo *r, const cr_prune_opts *o, cr_prune_plan **out);
const cr_prune_stats *cr_prune_plan_stats(const cr_prune_plan *p);
/* The packs of one kind, sorted by ID (for the dry-run listing). */
int cr_prune_plan_list(const cr_prune_plan *p, cr_prune_list which, cr_id **ids, size_t *n);
/* Carry the plan out (see above).  Call at most once. */
int cr_prune_execute(cr_prune_plan *p);
/* Also restores the repository's own index when execute did not run. */
void cr_prune_plan_free(cr_prune_plan *p);

#endif
