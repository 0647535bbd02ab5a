/* Private pieces of the archiver (archiver.c, archive_*.c, excluder.c). */
#ifndef CRESTIC_REPO_ARCHIVE_INTERNAL_H
#define CRESTIC_REPO_ARCHIVE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "repo/tree.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/gotime.h"

/* ---- paths, with Go's filepath semantics (archive_path.c) ---- */
int cr_path_clean(const char *p, cr_buf *out);
int cr_path_abs(const char *p, cr_buf *out);
int cr_path_dir(const char *p, cr_buf *out);
const char *cr_path_base(const char *p);
/* dir + "/" + name ("." as dir gives just name, "/" gives "/name"). */
int cr_path_join(cr_buf *out, const char *dir, const char *name, size_t namelen);

/* ---- nodes from the file system (archive_node.c) ---- */
/* The instant in the local zone, as Go's time.Local would show it; cached
 * per hour, so it costs no tzset()/localtime per call.  Call
 * cr_arch_time_init() once per run (it re-reads TZ). */
void cr_arch_time_init(void);
cr_time cr_arch_time(int64_t sec, int32_t nsec);

/* Fill a node from an lstat result as restic 0.14 does on Linux: type,
 * mode, times (atime := mtime unless with_atime), ids and names, inode,
 * device_id, size, links, link target, device, xattrs (not for symlinks).
 * Strings are allocated from arena (not thread-safe: one arena per
 * thread at a time).  The name is left to the caller.  Returns 0; a
 * problem with the metadata that restic reports but does not skip the item
 * for (xattrs) is returned as message in *warn (empty if none); a negative
 * code (readlink failed) means the item cannot be stored. */
int cr_arch_node_from_stat(cr_node *n, const char *path, const struct stat *st, bool with_atime, cr_arena *arena,
                           cr_buf *warn);
/* Only the parts that come from stat (type, mode, times, ids, names,
 * inode, device_id, size, links, device): for a file re-examined with
 * fstat() after opening. */
void cr_arch_node_apply_stat(cr_node *n, const struct stat *st, bool with_atime);
/* restic's Node.Equals: every stored member (xattrs in any order). */
bool cr_arch_node_equal(const cr_node *a, const cr_node *b);
/* Name of uid/gid ("" if unknown); cached, thread-safe, lives forever. */
const char *cr_arch_user_name(uint32_t uid);
const char *cr_arch_group_name(uint32_t gid);

/* ---- targets -> root tree layout (archive_targets.c) ---- */
typedef struct cr_tnode cr_tnode;
struct cr_tnode {
    char *name;           /* name inside the parent */
    char *path;           /* leaf: the file/dir to store here */
    char *info_path;      /* inner node: the directory whose metadata it gets */
    char *root;           /* top level only: "/", ".", "..", ... */
    bool explicit_target; /* leaf named by the user: excludes do not apply to it
                           * (today's restic; not for entries of "." or of an
                           * unrolled target) */
    cr_tnode *kids;       /* sorted by name (raw bytes) after cr_tnode_build() */
    size_t nkids, cap;
};
/* restic's NewTree(): resolve "." style targets into their entries, clean
 * and de-duplicate the targets, place them, unroll leaves that got
 * children.  CR_E_USAGE for conflicts restic refuses. */
int cr_tnode_build(const char *const *targets, size_t n, cr_tnode *root);
void cr_tnode_free(cr_tnode *t);

#endif
