/* repair snapshots (today's restic): the tree rewrite that makes damaged
 * snapshots usable again.  Files lose the content blobs the index does not
 * know (the file is truncated to what is left, its size corrected), nodes
 * of an invalid type are removed, a directory whose tree cannot be loaded
 * becomes an empty directory, and a snapshot whose root tree cannot be
 * loaded has no tree left (the caller removes it).  The index must be right
 * first: run `repair index`, as restic says. */
#ifndef CRESTIC_REPO_REPAIR_SNAPSHOTS_H
#define CRESTIC_REPO_REPAIR_SNAPSHOTS_H

#include <stdbool.h>

#include "repo/repo.h"
#include "repo/rewriter.h"
#include "repo/writer.h"

/* Each change as restic reports it ("  file \"/a\": removed missing content"). */
typedef void (*cr_repair_report_fn)(void *ud, const char *line);

typedef struct cr_snapshot_repairer cr_snapshot_repairer;

int cr_snapshot_repairer_new(cr_repo *r, cr_writer *w, bool dry_run, cr_repair_report_fn report, void *ud,
                             cr_snapshot_repairer **out);
void cr_snapshot_repairer_free(cr_snapshot_repairer *sr);
/* The repaired root tree; *is_null when the root itself is unreadable. */
int cr_snapshot_repair_tree(cr_snapshot_repairer *sr, const cr_id *root, cr_id *out, bool *is_null);

#endif
