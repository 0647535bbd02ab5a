/* Rewriting snapshot trees (restic rewrite, repair snapshots): walk a tree,
 * let a callback drop or change nodes, and store new tree blobs for every
 * directory whose listing changed.  Unchanged trees keep their ID and their
 * exact bytes (never re-encoded), so a rewrite that changes nothing yields
 * the same root tree. */
#ifndef CRESTIC_REPO_REWRITER_H
#define CRESTIC_REPO_REWRITER_H

#include <stdbool.h>

#include "repo/repo.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "repo/writer.h"

enum {
    CR_REWRITE_KEEP = 0,    /* node unchanged                         */
    CR_REWRITE_DROP = 1,    /* remove the node (and everything below)  */
    CR_REWRITE_CHANGED = 2, /* the callback changed the node in place  */
};

typedef struct {
    /* Every node, before its subtree is walked; path as restic's walker
     * ("/src/a").  The callback may shrink node->content in place. */
    int (*rewrite_node)(void *ud, cr_node *node, const char *path);
    /* A tree that cannot be loaded or parsed.  Return 0 with *replacement
     * set, 1 for "no tree" (the whole snapshot is unusable), or <0 to fail.
     * NULL: fail. */
    int (*failed_tree)(void *ud, const cr_id *id, const char *path, cr_id *replacement);
    void *ud;
    /* Reuse the result for a tree ID seen before (only when the callbacks do
     * not depend on the path, as in repair). */
    bool cache_by_id;
    /* Compute the new tree IDs without storing anything (--dry-run). */
    bool dry_run;
} cr_rewrite_opts;

typedef struct cr_rewriter cr_rewriter;

/* The repository index must be loaded; new trees go through w. */
int cr_rewriter_new(cr_repo *r, cr_writer *w, const cr_rewrite_opts *o, cr_rewriter **out);
void cr_rewriter_free(cr_rewriter *rw);
/* Rewrite the tree below root.  *is_null: the root itself failed and
 * failed_tree asked for "no tree". */
int cr_rewrite_tree(cr_rewriter *rw, const cr_id *root, cr_id *out, bool *is_null);

/* Store a tree blob through the rewriter (only hashed in a dry run); the
 * empty listing is for directories replaced as empty. */
int cr_rewriter_save_tree(cr_rewriter *rw, const cr_node *nodes, size_t n, cr_id *id);

/* Save sn with a new tree as restic's rewrite does: `original` = the old
 * ID, tag `tag` added unless forgetting (then the old file is removed). */
int cr_replace_snapshot(cr_repo *r, cr_snapshot *sn, const cr_id *tree, const char *tag, bool forget, cr_id *new_id);

#endif
