/* Copying snapshots from one repository into another (restic copy, spec
 * §22).  Blobs are loaded from the source and stored through a cr_writer in
 * the destination, so they are re-encrypted with its key and deduplicated
 * against its index.  Tree blobs keep their exact bytes, so tree IDs (and
 * with them the snapshots' trees) stay the same in both repositories. */
#ifndef CRESTIC_REPO_COPIER_H
#define CRESTIC_REPO_COPIER_H

#include <stdbool.h>
#include <stdint.h>

#include "repo/repo.h"
#include "repo/snapshot.h"
#include "repo/writer.h"

typedef struct cr_copier cr_copier;

/* Both repositories need their index loaded. */
int cr_copier_new(cr_repo *src, cr_repo *dst, const cr_writer_opts *opts, cr_copier **out);
/* Free; blobs not flushed are lost (unreferenced packs are legal). */
void cr_copier_free(cr_copier *c);

/* Store every blob reachable from a tree that the destination lacks.  Trees
 * already walked by this copier are not walked again.  *packs receives how
 * many source packs held blobs that had to be copied (restic's progress). */
int cr_copier_copy_tree(cr_copier *c, const cr_id *tree, uint64_t *packs);
/* Make everything copied so far durable and indexed; call before saving a
 * snapshot that references it. */
int cr_copier_flush(cr_copier *c);

/* restic's rule for "this destination snapshot is a copy of that one":
 * equal time, tree, host, user, uid, gid, excludes (in order) and the same
 * paths and tags (as sets of the same size).  Parent and original differ. */
bool cr_snapshots_similar(const cr_snapshot *a, const cr_snapshot *b);
/* The persistent identity of a snapshot across copies and rewrites. */
const cr_id *cr_snapshot_origin(const cr_snapshot *s);

/* Save a copy of a source snapshot in dst: no parent (meaningless there),
 * original = the source ID unless it already had one. */
int cr_copier_save_snapshot(cr_repo *dst, const cr_snapshot *src_sn, cr_id *new_id);

/* The snapshots a command works on, as restic's FindFilteredSnapshots:
 * with IDs ("latest", prefixes) those in argument order, each unusable one
 * reported on stderr as "Ignoring ..." and skipped; without IDs every
 * snapshot matching the filter, in storage order (by ID). */
int cr_select_snapshots(cr_repo *r, const char *const *ids, size_t nids, const cr_snapshot_filter *f,
                        cr_snapshot **out, size_t *n);

#endif
