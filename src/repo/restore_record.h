/* The restore record: what a workspace restore wrote, so that the first
 * backup after it does not have to read every restored file again.
 *
 * A restore gives every file new inode numbers and ctimes, which the
 * archiver's change detection (size, mtime, ctime, inode against the parent
 * snapshot) takes as "changed".  Right after the restore the record notes,
 * for every regular file that sits at its place with the snapshot's size and
 * mtime: its path on disk, inode, ctime, mtime, size and a digest of the
 * snapshot's content list.  A later backup may then reuse a parent node's
 * content for a file whose lstat still shows exactly those values and whose
 * parent node has that same content list: the file has not been touched
 * since the restore wrote that content into it.
 *
 * File format (mode 0600, written to a temporary name and renamed):
 *   "crestic-restore-record 1 <snapshot id hex>\n", then per file
 *   "<ino> <ctime s> <ctime ns> <mtime s> <mtime ns> <size> <digest hex> <path length>\n<path>\n". */
#ifndef CRESTIC_REPO_RESTORE_RECORD_H
#define CRESTIC_REPO_RESTORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "repo/repo.h"
#include "repo/tree.h"
#include "util/id.h"

typedef struct cr_restore_record cr_restore_record;

/* Walk the tree `root` of snapshot `snapshot` as restored below `target`
 * and write the record to `file`.  *nfiles (optional) gets the number of
 * files recorded.  Needs the index loaded. */
int cr_restore_record_write(cr_repo *r, const cr_id *snapshot, const cr_id *root, const char *target,
                            const char *file, size_t *nfiles);
/* -ENOENT when there is no record; CR_E_FORMAT for a damaged one. */
int cr_restore_record_load(const char *file, cr_restore_record **out);
/* The same from the file's bytes (CR_E_FORMAT, -ENOMEM). */
int cr_restore_record_parse(const char *data, size_t len, cr_restore_record **out);
const cr_id *cr_restore_record_snapshot(const cr_restore_record *rec);
size_t cr_restore_record_count(const cr_restore_record *rec);
/* Does the record vouch that the file at abspath (lstat result st) still
 * holds the content of prev?  Thread-safe (read only). */
bool cr_restore_record_vouches(const cr_restore_record *rec, const char *abspath, const struct stat *st,
                               const cr_node *prev);
void cr_restore_record_free(cr_restore_record *rec);

#endif
