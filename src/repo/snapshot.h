/* Snapshots (spec §11). */
#ifndef CRESTIC_REPO_SNAPSHOT_H
#define CRESTIC_REPO_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/repo.h"
#include "util/gotime.h"
#include "util/id.h"

typedef struct {
    cr_time backup_start, backup_end;
    uint64_t files_new, files_changed, files_unmodified;
    uint64_t dirs_new, dirs_changed, dirs_unmodified;
    uint64_t data_blobs, tree_blobs;
    uint64_t data_added, data_added_packed;
    uint64_t total_files_processed, total_bytes_processed;
} cr_snapshot_summary;

typedef struct {
    cr_id id;                /* storage ID (not part of the JSON) */
    cr_time time;
    bool has_parent;
    cr_id parent;
    bool has_tree;
    cr_id tree;
    char **paths;            /* malloc'd strings */
    size_t npaths;
    bool paths_null;         /* "paths": null */
    char *hostname, *username; /* malloc'd, "" when absent */
    uint32_t uid, gid;
    char **excludes;
    size_t nexcludes;
    char **tags;
    size_t ntags;
    bool has_original;
    cr_id original;
    char *program_version;   /* "" when absent */
    bool has_summary;
    cr_snapshot_summary summary;
} cr_snapshot;

int cr_snapshot_parse(const char *json, size_t n, cr_snapshot *s);
void cr_snapshot_clear(cr_snapshot *s);
/* Exactly as restic writes it (json.Marshal member order, omitempty). */
int cr_snapshot_encode(const cr_snapshot *s, cr_buf *out);

/* Load every snapshot, sorted by time (oldest first, ties by ID).  A file
 * that cannot be loaded is reported on stderr and skipped, as restic does. */
int cr_repo_load_snapshots(cr_repo *r, cr_snapshot **out, size_t *n);
void cr_snapshots_free(cr_snapshot *s, size_t n);
int cr_repo_load_snapshot(cr_repo *r, const cr_id *id, cr_snapshot *s);

/* Filters as restic's --host/--tag/--path (tags: each entry "a,b" means all of
 * a and b; entries are OR-ed; "" matches snapshots without tags). */
typedef struct {
    const char **hosts;
    size_t nhosts;
    const char **tag_lists;
    size_t ntag_lists;
    const char **paths;
    size_t npaths;
} cr_snapshot_filter;
bool cr_snapshot_matches(const cr_snapshot *s, const cr_snapshot_filter *f);

/* Resolve "latest", a full ID or a unique prefix, honoring the filter for
 * "latest".  CR_E_NOTFOUND / CR_E_AMBIGUOUS with a message. */
int cr_repo_find_snapshot(cr_repo *r, const char *ref, const cr_snapshot_filter *f, cr_snapshot *out);

bool cr_snapshot_has_tag(const cr_snapshot *s, const char *tag);

#endif
