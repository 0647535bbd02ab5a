/* repair snapshots: node and tree fixes on top of the tree rewriter. */
#include "repo/repair_snapshots.h"

#include <stdlib.h>
#include <string.h>

#include "repo/index.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/goquote.h"

struct cr_snapshot_repairer {
    cr_repo *repo;
    cr_rewriter *rw;
    cr_repair_report_fn report;
    void *ud;
};

/* "  <what> \"<path>\": <how>" with the path quoted as Go's %q. */
static void report(cr_snapshot_repairer *sr, const char *what, const char *path, const char *how)
{
    if (!sr->report) return;
    _cleanup_buf_ cr_buf line = CR_BUF_INIT;
    cr_buf_printf(&line, "  %s \"", what);
    cr_goquote(&line, path, strlen(path));
    cr_buf_printf(&line, "\": %s", how);
    if (cr_buf_nul(&line) == 0) sr->report(sr->ud, (const char *)line.data);
}

/* Keep the content blobs the index knows; the size becomes their sum. */
static int repair_file(cr_snapshot_repairer *sr, cr_node *n, const char *path)
{
    size_t kept = 0;
    uint64_t size = 0;
    for (size_t i = 0; i < n->ncontent; i++) {
        size_t count = 0;
        const cr_index_entry *e = cr_index_lookup(sr->repo->index, CR_BLOB_DATA, &n->content[i], &count);
        if (!count) continue;
        size += cr_index_entry_plain_len(e);
        n->content[kept++] = n->content[i];
    }
    bool missing = kept != n->ncontent;
    if (missing) report(sr, "file", path, "removed missing content");
    else if (size != n->size) report(sr, "file", path, "fixed incorrect size");
    else return CR_REWRITE_KEEP;
    n->ncontent = kept;
    n->size = size;
    /* restic writes an empty list, never null, for a repaired file */
    n->content_null = false;
    return CR_REWRITE_CHANGED;
}

static int repair_node(void *ud, cr_node *n, const char *path)
{
    cr_snapshot_repairer *sr = ud;
    if (n->type == CR_NODE_IRREGULAR || (n->type == CR_NODE_UNKNOWN && !*n->type_name)) {
        _cleanup_buf_ cr_buf how = CR_BUF_INIT;
        cr_buf_puts(&how, "removed node with invalid type \"");
        cr_goquote(&how, n->type_name, strlen(n->type_name));
        cr_buf_puts(&how, "\"");
        if (cr_buf_nul(&how) == 0) report(sr, "file", path, (const char *)how.data);
        return CR_REWRITE_DROP;
    }
    if (n->type != CR_NODE_FILE) return CR_REWRITE_KEEP;
    return repair_file(sr, n, path);
}

/* An unreadable root leaves the snapshot without a tree; any other
 * unreadable directory becomes empty. */
static int repair_failed_tree(void *ud, const cr_id *id, const char *path, cr_id *replacement)
{
    cr_snapshot_repairer *sr = ud;
    if (!strcmp(path, "/")) {
        report(sr, "dir", path, "not readable");
        return 1;
    }
    report(sr, "dir", path, "replaced with empty directory");
    return cr_rewriter_save_tree(sr->rw, NULL, 0, replacement);
}

int cr_snapshot_repairer_new(cr_repo *r, cr_writer *w, bool dry_run, cr_repair_report_fn rep, void *ud,
                             cr_snapshot_repairer **out)
{
    cr_snapshot_repairer *sr = calloc(1, sizeof *sr);
    if (!sr) return cr_error(-ENOMEM, "out of memory");
    *sr = (cr_snapshot_repairer){.repo = r, .report = rep, .ud = ud};
    /* The fixes depend on the tree only, so a tree repaired once is reused
     * (and reported once), as restic does. */
    cr_rewrite_opts o = {.rewrite_node = repair_node, .failed_tree = repair_failed_tree, .ud = sr,
                         .cache_by_id = true, .dry_run = dry_run};
    int rc = cr_rewriter_new(r, w, &o, &sr->rw);
    if (rc < 0) return free(sr), rc;
    *out = sr;
    return 0;
}

void cr_snapshot_repairer_free(cr_snapshot_repairer *sr)
{
    if (!sr) return;
    cr_rewriter_free(sr->rw);
    free(sr);
}

int cr_snapshot_repair_tree(cr_snapshot_repairer *sr, const cr_id *root, cr_id *out, bool *is_null)
{
    return cr_rewrite_tree(sr->rw, root, out, is_null);
}
