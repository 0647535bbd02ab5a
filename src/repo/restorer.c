/* Restore (spec §18), in four steps:
 *
 *  1. pass 1 walks the trees: filters, name checks, directories (0700 at
 *     first), and a plan for every regular file (new, update in place,
 *     unchanged, skipped) with the blobs it still needs;
 *  2. content: the needed blobs are grouped by pack and cut into ranges
 *     (gaps over 1 MiB split them); worker threads read each range once,
 *     decode each blob once (decrypted in place in the range, then written
 *     from there or decompressed into a small batch) and pwritev it to
 *     every file that needs it;
 *     the worker that completes a file also sets its metadata through the
 *     open descriptor;
 *  3. pass 2 walks the trees again: symlinks, fifos, devices, hard links,
 *     --delete, and directory metadata after the children;
 *  4. --verify re-reads every restored file and hashes its chunks.
 *
 * Safety: the target is opened once; every directory below it is reached
 * with openat(O_NOFOLLOW|O_DIRECTORY) from its parent's descriptor, files
 * are created with O_EXCL|O_NOFOLLOW, and symlinks are only created in pass
 * 2, after all writes, so neither the snapshot nor what already sits in the
 * target can send a write outside of it.
 *
 * Pass 2 re-reads the trees (memory stays bounded by the tree depth, not
 * its size) and finds its decisions from pass 1 by visiting order: node
 * number k gets the same flags byte both times. */
#include "repo/restorer.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/tree.h"
#include "util/arena.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/goquote.h"
#include "util/pattern.h"

#define MiB (1024u * 1024u)
#define RANGE_GAP_MAX (1 * MiB)     /* read across gaps up to this size    */
#define RANGE_MAX (4 * MiB)         /* one read, unless a blob is larger   */
#define BATCH_PLAIN_MAX (1 * MiB)   /* decompressed bytes held before writing */
#define BIG_BLOB (256 * 1024)       /* written alone, from one buffer      */
#define BLOB_MAX (128u * MiB)       /* larger index entries are refused    */
#define DEPTH_MAX 2048              /* directory nesting we follow         */
#define PREALLOC_MIN (1 * MiB)      /* fallocate files at least this big   */
#define NO_DIR UINT32_MAX
#define FILE_LOCKS 64
#define DIRCACHE 32

/* ---- records --------------------------------------------------------- */

/* Per visited node, in visiting order (identical in both passes). */
enum {
    F_SKIP = 1 << 0,     /* nothing to do in pass 2                   */
    F_DESCEND = 1 << 1,  /* dir: pass 1 went into it                  */
    F_DIR_META = 1 << 2, /* dir: restore metadata when leaving        */
    F_SPECIAL = 1 << 3,  /* symlink/fifo/dev: create in pass 2        */
    F_HARDLINK = 1 << 4, /* file: link to an earlier file in pass 2   */
    F_WALK2 = 1 << 5     /* dir: its listing has work for pass 2      */
};

/* What a subtree walked in pass 1 left for the rest. */
typedef struct {
    bool restored_any; /* something in it was selected */
    bool pass2;        /* pass 2 must read its listing */
} walk_result;

typedef struct {
    uint32_t mode, uid, gid;
    cr_time atime, mtime;
    cr_xattr *xattrs; /* arena copies */
    uint32_t nxattrs;
} rs_meta;

typedef struct {
    uint32_t parent;  /* NO_DIR for the target itself */
    const char *name; /* arena */
    int fd;           /* main thread, while on the walk */
    bool exists;      /* created or found */
    bool fresh;       /* created in this run: nothing else can be inside */
    bool failed;
} rs_dir;

enum { PLAN_NEW, PLAN_UPDATE, PLAN_UNCHANGED, PLAN_SKIPPED };

typedef struct {
    uint32_t dir;
    uint32_t first_blob, nblobs; /* into rs.blobs: the whole content */
    uint64_t size;
    const char *name; /* arena */
    uint8_t plan;
    bool existed;     /* "updated" rather than "restored" */
    atomic_bool failed;
    atomic_uint pending; /* needs not yet written */
    int fd;              /* workers, under the file's stripe lock */
    uint8_t have;        /* HAVE_* of the creation */
    rs_meta meta;
} rs_file;

typedef struct {
    cr_id id;
    uint32_t plain_len;
    bool found;
} rs_blob;

/* One blob write: a blob location and the place it goes. */
typedef struct {
    uint32_t pack, offset, length, ulen;
    uint32_t file, blob;
    uint64_t file_off;
} rs_need;

typedef struct {
    size_t first, count; /* needs[first .. first+count) */
    uint64_t off, len;   /* byte range in the pack */
} rs_unit;

typedef struct {
    uint64_t inode, dev;
    uint32_t file;
    bool used;
} rs_link_slot;

typedef struct rs rs;

struct rs {
    cr_repo *repo;
    const cr_restore_opts *o;
    cr_restore_stats st;
    pthread_mutex_t st_lock, cb_lock;
    cr_patterns *inc, *iinc, *exc, *iexc;
    cr_patterns *xinc, *xexc; /* xattr names */
    bool has_inc, has_exc;
    bool delete_ok; /* cleared when a listing had names we refused */
    bool is_root;
    uid_t euid;
    gid_t egid;
    mode_t umask;
    const char *target;
    int root_fd;
    cr_arena arena;

    rs_dir *dirs;
    size_t ndirs, dirs_cap;
    rs_file *files;
    size_t nfiles, files_cap;
    rs_blob *blobs;
    size_t nblobs, blobs_cap;
    rs_need *needs;
    size_t nneeds, needs_cap;
    rs_unit *units;
    size_t nunits;

    uint8_t *flags;
    uint32_t *next_seq; /* dirs: first node number after their subtree */
    uint32_t *seq_dir;  /* dirs: their record in dirs[] */
    size_t nseq, seq_cap, seq2;

    rs_link_slot *links;
    size_t nlinks, links_cap;

    pthread_mutex_t file_locks[FILE_LOCKS];
    atomic_size_t next_unit;
    atomic_size_t next_verify;
    size_t workers_running;
    pthread_cond_t workers_cond;
    atomic_int stop; /* first fatal error of a worker, or interrupt */
};

/* ---- small helpers ------------------------------------------------------ */

static bool interrupted(const rs *r)
{
    return (r->o->interrupted && *r->o->interrupted) || atomic_load(&r->stop) != 0;
}

/* errno text as Go prints it (lower case first letter). */
static const char *errstr(int e, char buf[128])
{
    snprintf(buf, 128, "%s", strerror(e));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z')) buf[0] = (char)(buf[0] + 32);
    return buf;
}

static void report(rs *r, const char *item, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(rs *r, const char *item, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&r->st_lock);
    r->st.errors++;
    pthread_mutex_unlock(&r->st_lock);
    pthread_mutex_lock(&r->cb_lock);
    if (r->o->on_error) r->o->on_error(r->o->ud, item && item[0] ? item : "/", msg);
    pthread_mutex_unlock(&r->cb_lock);
}

static void item_done(rs *r, const char *item, const char *action, uint64_t size)
{
    if (!r->o->on_item) return;
    pthread_mutex_lock(&r->cb_lock);
    r->o->on_item(r->o->ud, item && item[0] ? item : "/", action, size);
    pthread_mutex_unlock(&r->cb_lock);
}

static void progress(rs *r, bool done)
{
    if (!r->o->progress) return;
    pthread_mutex_lock(&r->st_lock);
    cr_restore_stats snap = r->st;
    pthread_mutex_unlock(&r->st_lock);
    r->o->progress(r->o->ud, &snap, done);
}

#define STAT_ADD(r, field, v)                 \
    do {                                      \
        pthread_mutex_lock(&(r)->st_lock);    \
        (r)->st.field += (v);                 \
        pthread_mutex_unlock(&(r)->st_lock);  \
    } while (0)

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    /* not cleared: every caller fills the records it adds, and capacity
     * nobody touches costs no memory */
    void *q = realloc(*p, n * elem);
    if (!q) return cr_error(-ENOMEM, "out of memory");
    *p = q;
    *cap = n;
    return 0;
}
#define GROW(arr, cap, need) grow((void **)&(arr), &(cap), (need), sizeof *(arr))

/* A name as restic would print it, but with control bytes escaped. */
static void quote_name(const char *name, size_t len, char *out, size_t outsz)
{
    cr_buf b = CR_BUF_INIT;
    if (cr_goquote(&b, name, len) == 0 && cr_buf_nul(&b) == 0) snprintf(out, outsz, "\"%s\"", (char *)b.data);
    else snprintf(out, outsz, "?");
    cr_buf_free(&b);
}

/* Path of a directory inside the snapshot ("" for the root). */
static void dir_location(const rs *r, uint32_t d, cr_buf *out)
{
    cr_buf_reset(out);
    const char *chain[DEPTH_MAX + 2];
    size_t n = 0;
    for (; d != NO_DIR && r->dirs[d].parent != NO_DIR && n < DEPTH_MAX + 2; d = r->dirs[d].parent)
        chain[n++] = r->dirs[d].name;
    while (n--) {
        cr_buf_putc(out, '/');
        cr_buf_puts(out, chain[n]);
    }
    cr_buf_nul(out);
}

static void file_location(const rs *r, const rs_file *f, cr_buf *out)
{
    dir_location(r, f->dir, out);
    cr_buf_putc(out, '/');
    cr_buf_puts(out, f->name);
    cr_buf_nul(out);
}

static struct timespec to_timespec(const cr_time *t)
{
    return (struct timespec){.tv_sec = (time_t)t->sec, .tv_nsec = t->nsec};
}

/* ---- filters --------------------------------------------------------------- */

static int compile_filters(rs *r)
{
    const cr_restore_opts *o = r->o;
    CR_TRY_CTX(cr_patterns_new(o->includes, o->nincludes, false, &r->inc), "--include");
    CR_TRY_CTX(cr_patterns_new(o->iincludes, o->niincludes, true, &r->iinc), "--iinclude");
    CR_TRY_CTX(cr_patterns_new(o->excludes, o->nexcludes, false, &r->exc), "--exclude");
    CR_TRY_CTX(cr_patterns_new(o->iexcludes, o->niexcludes, true, &r->iexc), "--iexclude");
    CR_TRY_CTX(cr_patterns_new(o->xattr_includes, o->nxattr_includes, false, &r->xinc), "--include-xattr");
    CR_TRY_CTX(cr_patterns_new(o->xattr_excludes, o->nxattr_excludes, false, &r->xexc), "--exclude-xattr");
    /* As restic: given patterns decide the mode, even if all were empty. */
    r->has_inc = o->nincludes + o->niincludes > 0;
    r->has_exc = o->nexcludes + o->niexcludes > 0;
    return 0;
}

static bool xattr_selected(const rs *r, const char *name)
{
    if (r->o->nxattr_includes) return cr_patterns_match(r->xinc, name);
    return !cr_patterns_match(r->xexc, name);
}

static void select_item(const rs *r, const char *loc, bool is_dir, bool *selected, bool *descend)
{
    bool sel = true, child = is_dir;
    if (r->has_inc) {
        bool m1, c1, m2, c2;
        cr_patterns_match_include(r->inc, loc, &m1, &c1);
        cr_patterns_match_include(r->iinc, loc, &m2, &c2);
        sel = m1 || m2;
        child = (c1 || c2) && is_dir;
    }
    if (r->has_exc && (cr_patterns_match(r->exc, loc) || cr_patterns_match(r->iexc, loc))) {
        /* an excluded directory is not entered at all */
        sel = false;
        child = false;
    }
    *selected = sel;
    *descend = child;
}

/* ---- directories ------------------------------------------------------------ */

static int add_dir(rs *r, uint32_t parent, const char *name, size_t len, uint32_t *out)
{
    CR_TRY(GROW(r->dirs, r->dirs_cap, r->ndirs + 1));
    rs_dir *d = &r->dirs[r->ndirs];
    memset(d, 0, sizeof *d);
    d->parent = parent;
    d->name = cr_arena_strndup(&r->arena, name, len);
    if (!d->name) return cr_error(-ENOMEM, "out of memory");
    d->fd = -1;
    *out = (uint32_t)r->ndirs++;
    return 0;
}

static int open_dir_at(int pfd, const char *name)
{
    return openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static int remove_tree_at(rs *r, int dfd, const char *name, const char *shown, bool report_items);

/* Make the directory exist below its parent and return its descriptor
 * (main thread).  Creates missing parents first (include mode creates
 * parents lazily).  In a dry run nothing is created: -ENOENT means "not
 * there (yet)", which callers treat as an empty directory. */
static int ensure_dir(rs *r, uint32_t d)
{
    rs_dir *dir = &r->dirs[d];
    if (dir->fd >= 0) return dir->fd;
    if (dir->failed) return -EIO;
    if (r->o->dry_run && dir->fresh) return -ENOENT; /* would be created */
    if (dir->parent == NO_DIR) return r->root_fd >= 0 ? (dir->fd = r->root_fd) : -ENOENT;
    int pfd = ensure_dir(r, dir->parent);
    dir = &r->dirs[d];
    if (pfd == -ENOENT && r->o->dry_run) {
        dir->fresh = true;
        return pfd;
    }
    if (pfd < 0) return pfd;
    bool parent_fresh = r->dirs[dir->parent].fresh;
    int fd = parent_fresh ? -1 : open_dir_at(pfd, dir->name);
    if (fd >= 0) {
        dir->exists = true;
        return dir->fd = fd;
    }
    int e = parent_fresh ? ENOENT : errno;
    if (r->o->dry_run) {
        dir->fresh = true; /* everything below is new */
        return -ENOENT;
    }
    if (e == ENOTDIR || e == ELOOP) {
        /* something else sits there (file, symlink): replace it, never follow it */
        if (unlinkat(pfd, dir->name, 0) < 0 && errno != ENOENT) e = errno;
        else e = ENOENT;
    }
    if (e == ENOENT) {
        if (mkdirat(pfd, dir->name, 0700) < 0 && errno != EEXIST) e = errno;
        else if ((fd = open_dir_at(pfd, dir->name)) >= 0) {
            dir->exists = dir->fresh = true;
            return dir->fd = fd;
        } else {
            e = errno;
        }
    }
    dir->failed = true;
    cr_buf loc = CR_BUF_INIT;
    dir_location(r, d, &loc);
    char eb[128];
    report(r, (char *)loc.data, "mkdir %s%s: %s", r->target, (char *)loc.data, errstr(e, eb));
    cr_buf_free(&loc);
    return -e;
}

static void close_dir(rs *r, uint32_t d)
{
    if (r->dirs[d].fd >= 0 && r->dirs[d].fd != r->root_fd) close(r->dirs[d].fd);
    r->dirs[d].fd = -1;
}

/* ---- metadata ------------------------------------------------------------------- */

static int copy_meta(rs *r, const cr_node *n, rs_meta *m)
{
    m->mode = n->mode;
    m->uid = n->uid;
    m->gid = n->gid;
    m->atime = n->atime;
    m->mtime = n->mtime;
    m->nxattrs = 0;
    m->xattrs = NULL;
    if (!n->nxattrs) return 0;
    m->xattrs = cr_arena_alloc(&r->arena, n->nxattrs * sizeof *m->xattrs);
    if (!m->xattrs) return cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; i < n->nxattrs; i++) {
        m->xattrs[i].name = cr_arena_strndup(&r->arena, n->xattrs[i].name, strlen(n->xattrs[i].name));
        m->xattrs[i].value = n->xattrs[i].value_len ? cr_arena_memdup(&r->arena, n->xattrs[i].value, n->xattrs[i].value_len) : NULL;
        m->xattrs[i].value_len = n->xattrs[i].value_len;
        if (!m->xattrs[i].name || (n->xattrs[i].value_len && !m->xattrs[i].value)) return cr_error(-ENOMEM, "out of memory");
    }
    m->nxattrs = (uint32_t)n->nxattrs;
    return 0;
}

static void meta_from_node(const cr_node *n, rs_meta *m)
{
    *m = (rs_meta){.mode = n->mode, .uid = n->uid, .gid = n->gid, .atime = n->atime, .mtime = n->mtime,
                   .xattrs = n->xattrs, .nxattrs = (uint32_t)n->nxattrs};
}

/* restic, like cp -a and rsync -a, reports a failed chown only as root. */
static bool chown_error_matters(const rs *r, int e)
{
    return r->is_root || (e != EPERM && e != EINVAL);
}

/* Filesystems without xattr support are not an error (as restic). */
static bool xattr_error_matters(int e)
{
    return e != ENOTSUP && e != EOPNOTSUPP;
}

/* What a file we just created already has right (saves syscalls, which
 * dominate restoring many small files). */
enum { HAVE_OWNER = 1, HAVE_MODE = 2 };

/* Metadata through an open descriptor (regular files, directories):
 * owner, xattrs, times, then mode (chown clears setuid, so chmod last). */
static void apply_meta_fd(rs *r, int fd, const rs_meta *m, const char *loc, unsigned have)
{
    char eb[128];
    if (!(have & HAVE_OWNER) && fchown(fd, m->uid, m->gid) < 0 && chown_error_matters(r, errno))
        report(r, loc, "lchown %s%s: %s", r->target, loc, errstr(errno, eb));
    for (uint32_t i = 0; i < m->nxattrs; i++) {
        const cr_xattr *x = &m->xattrs[i];
        if (!xattr_selected(r, x->name)) continue;
        if (fsetxattr(fd, x->name, x->value ? (const void *)x->value : "", x->value_len, 0) < 0 && xattr_error_matters(errno))
            report(r, loc, "setxattr %s%s: %s: %s", r->target, loc, x->name, errstr(errno, eb));
    }
    struct timespec ts[2] = {to_timespec(&m->atime), to_timespec(&m->mtime)};
    if (futimens(fd, ts) < 0) report(r, loc, "UtimesNano %s%s: %s", r->target, loc, errstr(errno, eb));
    if (!(have & HAVE_MODE) && fchmod(fd, cr_mode_to_posix_perm(m->mode)) < 0)
        report(r, loc, "chmod %s%s: %s", r->target, loc, errstr(errno, eb));
}

/* The mode to create a new file with, and what it gets right by itself:
 * plain permission bits survive the umask unchanged, and in a directory we
 * made, a new file belongs to our euid and egid (no setgid parent yet). */
static mode_t creation_mode(const rs *r, const rs_file *f, unsigned *have)
{
    unsigned perm = cr_mode_to_posix_perm(f->meta.mode);
    *have = 0;
    if (f->plan != PLAN_NEW) return 0600;
    if (r->dirs[f->dir].fresh && f->meta.uid == r->euid && f->meta.gid == r->egid) *have |= HAVE_OWNER;
    if (perm <= 0777 && (perm & r->umask) == 0) {
        *have |= HAVE_MODE;
        return perm;
    }
    return 0600;
}

/* Metadata by name below dfd for things we never open (symlinks, fifos,
 * devices).  The entry was created by us in this run, so it is not a
 * symlink unless the node is one (fchmodat would follow it). */
static void apply_meta_at(rs *r, int dfd, const char *name, const rs_meta *m, bool symlink, const char *loc)
{
    char eb[128];
    if (fchownat(dfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0 && chown_error_matters(r, errno))
        report(r, loc, "lchown %s%s: %s", r->target, loc, errstr(errno, eb));
    if (m->nxattrs) {
        /* no *xattrat(): go through our own directory descriptor */
        char path[64 + NAME_MAX];
        snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dfd, name);
        for (uint32_t i = 0; i < m->nxattrs; i++) {
            const cr_xattr *x = &m->xattrs[i];
            if (!xattr_selected(r, x->name)) continue;
            if (lsetxattr(path, x->name, x->value ? (const void *)x->value : "", x->value_len, 0) < 0 && xattr_error_matters(errno))
                report(r, loc, "setxattr %s%s: %s: %s", r->target, loc, x->name, errstr(errno, eb));
        }
    }
    struct timespec ts[2] = {to_timespec(&m->atime), to_timespec(&m->mtime)};
    if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0) report(r, loc, "UtimesNano %s%s: %s", r->target, loc, errstr(errno, eb));
    if (!symlink && fchmodat(dfd, name, cr_mode_to_posix_perm(m->mode), 0) < 0)
        report(r, loc, "chmod %s%s: %s", r->target, loc, errstr(errno, eb));
}

/* ---- hard link index -------------------------------------------------------------- */

static uint64_t link_hash(uint64_t inode, uint64_t dev)
{
    uint64_t h = inode * 0x9e3779b97f4a7c15ull ^ (dev + 0x632be59bd9b4e019ull);
    return h ^ (h >> 29);
}

static rs_link_slot *link_find(rs *r, uint64_t inode, uint64_t dev)
{
    if (!r->links_cap) return NULL;
    for (size_t i = link_hash(inode, dev) & (r->links_cap - 1);; i = (i + 1) & (r->links_cap - 1)) {
        rs_link_slot *s = &r->links[i];
        if (!s->used) return s;
        if (s->inode == inode && s->dev == dev) return s;
    }
}

static int link_add(rs *r, uint64_t inode, uint64_t dev, uint32_t file)
{
    if ((r->nlinks + 1) * 2 > r->links_cap) {
        size_t ncap = r->links_cap ? r->links_cap * 2 : 256;
        rs_link_slot *old = r->links;
        size_t ocap = r->links_cap;
        r->links = calloc(ncap, sizeof *r->links);
        if (!r->links) return r->links = old, cr_error(-ENOMEM, "out of memory");
        r->links_cap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].used) *link_find(r, old[i].inode, old[i].dev) = old[i];
        free(old);
    }
    rs_link_slot *s = link_find(r, inode, dev);
    if (!s->used) r->nlinks++;
    *s = (rs_link_slot){.inode = inode, .dev = dev, .file = file, .used = true};
    return 0;
}

/* ---- pass 1: planning files --------------------------------------------------------- */

/* Compare the existing file with the node, chunk by chunk: matches[i] says
 * whether chunk i is already in place.  Returns false when the file cannot
 * be read (then everything is rewritten). */
static bool existing_chunks(rs *r, int dfd, const char *name, const rs_file *f, bool *matches, bool *all_match)
{
    _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return false;
    _cleanup_buf_ cr_buf buf = CR_BUF_INIT;
    uint64_t off = 0;
    bool all = (uint64_t)st.st_size == f->size;
    for (uint32_t i = 0; i < f->nblobs; i++) {
        const rs_blob *b = &r->blobs[f->first_blob + i];
        matches[i] = false;
        if (!b->found) {
            all = false;
            break;
        }
        if (cr_buf_resize(&buf, b->plain_len) < 0) return false;
        ssize_t got = b->plain_len ? pread(fd, buf.data, b->plain_len, (off_t)off) : 0;
        if (got == (ssize_t)b->plain_len) {
            cr_id h;
            cr_sha256(buf.data, b->plain_len, h.b);
            matches[i] = cr_id_eq(&h, &b->id);
        }
        all &= matches[i];
        off += b->plain_len;
        if (interrupted(r)) return false;
    }
    *all_match = all;
    return true;
}

static int add_need(rs *r, uint32_t file, uint32_t blob, uint64_t off, const cr_index_entry *e)
{
    CR_TRY(GROW(r->needs, r->needs_cap, r->nneeds + 1));
    r->needs[r->nneeds++] = (rs_need){.pack = e->pack, .offset = e->offset, .length = e->length, .ulen = e->ulen,
                                      .file = file, .blob = blob, .file_off = off};
    return 0;
}

/* Look every content blob up; a blob missing from the index ends the plan
 * (later offsets are unknown), the file is then restored partially. */
static int resolve_content(rs *r, const cr_node *n, rs_file *f, const char *loc)
{
    f->first_blob = (uint32_t)r->nblobs;
    f->nblobs = (uint32_t)n->ncontent;
    CR_TRY(GROW(r->blobs, r->blobs_cap, r->nblobs + n->ncontent));
    for (size_t i = 0; i < n->ncontent; i++) {
        rs_blob *b = &r->blobs[r->nblobs++];
        b->id = n->content[i];
        size_t count;
        const cr_index_entry *e = cr_index_lookup(r->repo->index, CR_BLOB_DATA, &b->id, &count);
        b->found = count > 0 && e->length <= BLOB_MAX && e->ulen <= BLOB_MAX;
        b->plain_len = b->found ? cr_index_entry_plain_len(e) : 0;
        if (!b->found && !atomic_load(&f->failed)) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&b->id, hex);
            report(r, loc, count ? "blob %s: index entry too large" : "blob %s not found in index", hex);
            atomic_store(&f->failed, true);
        }
    }
    return 0;
}

static int plan_needs(rs *r, uint32_t fi, const bool *matches)
{
    rs_file *f = &r->files[fi];
    uint64_t off = 0, matched = 0;
    unsigned pending = 0;
    for (uint32_t i = 0; i < f->nblobs; i++) {
        const rs_blob *b = &r->blobs[f->first_blob + i];
        if (!b->found) break;
        if (matches && matches[i]) {
            matched += b->plain_len;
        } else {
            size_t count;
            const cr_index_entry *e = cr_index_lookup(r->repo->index, CR_BLOB_DATA, &b->id, &count);
            CR_TRY(add_need(r, fi, f->first_blob + i, off, e));
            pending++;
        }
        off += b->plain_len;
    }
    atomic_store(&f->pending, pending);
    STAT_ADD(r, bytes_restored, matched);
    return 0;
}

/* Remove whatever sits at name so a new file can be created there. */
static int clear_entry(rs *r, int dfd, const char *name, const struct stat *st, const char *loc)
{
    char eb[128];
    if (!S_ISDIR(st->st_mode)) {
        if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT) return 0;
    } else if (unlinkat(dfd, name, AT_REMOVEDIR) == 0) {
        return 0;
    } else if ((errno == ENOTEMPTY || errno == EEXIST) && r->o->delete_extra) {
        /* --delete allows replacing a non-empty directory */
        cr_buf shown = CR_BUF_INIT;
        cr_buf_printf(&shown, "%s%s", r->target, loc);
        cr_buf_nul(&shown);
        int e = remove_tree_at(r, dfd, name, (char *)shown.data, false);
        cr_buf_free(&shown);
        return e;
    }
    int e = errno;
    report(r, loc, "remove %s%s: %s", r->target, loc, errstr(e, eb));
    return -e;
}

/* Create and close a file that needs no content writes (empty, or all
 * chunks already in place), then set its metadata. */
static void finish_without_content(rs *r, int dfd, rs_file *f, const char *loc)
{
    char eb[128];
    unsigned have;
    mode_t cmode = creation_mode(r, f, &have);
    int flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | (f->plan == PLAN_NEW ? O_CREAT | O_EXCL : 0);
    _cleanup_close_ int fd = openat(dfd, f->name, flags, cmode);
    if (fd < 0) {
        report(r, loc, "open %s%s: %s", r->target, loc, errstr(errno, eb));
        return;
    }
    if ((f->size || f->plan == PLAN_UPDATE) && ftruncate(fd, (off_t)f->size) < 0) {
        report(r, loc, "truncate %s%s: %s", r->target, loc, errstr(errno, eb));
        return;
    }
    if (atomic_load(&f->failed)) return;
    apply_meta_fd(r, fd, &f->meta, loc, have);
    pthread_mutex_lock(&r->st_lock);
    r->st.files_restored++;
    pthread_mutex_unlock(&r->st_lock);
    item_done(r, loc, f->existed ? "updated" : "restored", f->size);
}

/* Decide what to do with an existing entry (restic's overwrite rules). */
static int plan_existing(rs *r, int dfd, uint32_t fi, const struct stat *st, const char *loc, bool **matches)
{
    rs_file *f = &r->files[fi];
    f->existed = S_ISREG(st->st_mode);
    switch (r->o->overwrite) {
    case CR_OVERWRITE_NEVER:
        f->plan = PLAN_SKIPPED;
        return 0;
    case CR_OVERWRITE_IF_NEWER: {
        cr_time mt = {.sec = st->st_mtim.tv_sec, .nsec = (int32_t)st->st_mtim.tv_nsec};
        if (cr_time_cmp(&f->meta.mtime, &mt) <= 0) {
            f->plan = PLAN_SKIPPED;
            return 0;
        }
        break;
    }
    case CR_OVERWRITE_IF_CHANGED:
        if (S_ISREG(st->st_mode) && (uint64_t)st->st_size == f->size && st->st_mtim.tv_sec == f->meta.mtime.sec &&
            st->st_mtim.tv_nsec == f->meta.mtime.nsec) {
            f->plan = PLAN_UNCHANGED;
            return 0;
        }
        break;
    case CR_OVERWRITE_ALWAYS:
        break;
    }
    if (S_ISREG(st->st_mode) && !atomic_load(&f->failed)) {
        *matches = calloc(f->nblobs ? f->nblobs : 1, sizeof **matches);
        if (!*matches) return cr_error(-ENOMEM, "out of memory");
        bool all = false;
        if (existing_chunks(r, dfd, f->name, f, *matches, &all)) {
            if (all) {
                f->plan = PLAN_UNCHANGED;
                return 0;
            }
            if (st->st_nlink == 1) {
                f->plan = PLAN_UPDATE;
                return 0;
            }
        }
        /* unreadable, or hard-linked elsewhere: start from scratch */
        free(*matches);
        *matches = NULL;
    }
    f->plan = PLAN_NEW;
    if (r->o->dry_run) return 0;
    return clear_entry(r, dfd, f->name, st, loc) < 0 ? 1 : 0;
}

static int plan_file(rs *r, const cr_node *n, uint32_t dir, const char *loc, uint8_t *flags)
{
    if (n->links > 1) {
        rs_link_slot *s = link_find(r, n->inode, n->device_id);
        if (s && s->used) {
            *flags |= F_HARDLINK;
            STAT_ADD(r, files_total, 1);
            return 0;
        }
    }
    CR_TRY(GROW(r->files, r->files_cap, r->nfiles + 1));
    uint32_t fi = (uint32_t)r->nfiles++;
    rs_file *f = &r->files[fi];
    memset(f, 0, sizeof *f);
    f->dir = dir;
    f->fd = -1;
    f->size = n->size;
    f->name = cr_arena_strndup(&r->arena, n->name, n->name_len);
    if (!f->name) return cr_error(-ENOMEM, "out of memory");
    CR_TRY(copy_meta(r, n, &f->meta));
    if (n->links > 1) CR_TRY(link_add(r, n->inode, n->device_id, fi));
    CR_TRY(resolve_content(r, n, f, loc));

    int dfd = ensure_dir(r, dir);
    f = &r->files[fi];
    if (dfd < 0 && dfd != -ENOENT) { /* reported by ensure_dir */
        f->plan = PLAN_SKIPPED;
        atomic_store(&f->failed, true);
        return 0;
    }
    _cleanup_free_ bool *matches = NULL;
    f->plan = PLAN_NEW;
    if (dfd >= 0 && !r->dirs[dir].fresh) {
        struct stat st;
        if (fstatat(dfd, f->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            int e = plan_existing(r, dfd, fi, &st, loc, &matches);
            if (e < 0) return e;
            if (e > 0) { /* could not clear the way (reported) */
                f->plan = PLAN_SKIPPED;
                atomic_store(&f->failed, true);
                return 0;
            }
        }
    }
    f = &r->files[fi];
    switch (f->plan) {
    case PLAN_SKIPPED:
    case PLAN_UNCHANGED:
        pthread_mutex_lock(&r->st_lock);
        r->st.files_skipped++;
        r->st.bytes_skipped += f->size;
        pthread_mutex_unlock(&r->st_lock);
        item_done(r, loc, "unchanged", f->size);
        if (f->plan == PLAN_UNCHANGED && !r->o->dry_run) {
            /* "updates the metadata of all files" */
            _cleanup_close_ int fd = openat(dfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) apply_meta_fd(r, fd, &f->meta, loc, 0);
        }
        return 0;
    default:
        break;
    }
    pthread_mutex_lock(&r->st_lock);
    r->st.files_total++;
    r->st.bytes_total += f->size;
    pthread_mutex_unlock(&r->st_lock);
    if (r->o->dry_run) {
        pthread_mutex_lock(&r->st_lock);
        r->st.files_restored++;
        r->st.bytes_restored += f->size;
        pthread_mutex_unlock(&r->st_lock);
        item_done(r, loc, f->existed ? "updated" : "restored", f->size);
        return 0;
    }
    CR_TRY(plan_needs(r, fi, matches));
    f = &r->files[fi];
    if (atomic_load(&f->pending) == 0) finish_without_content(r, dfd, f, loc);
    return 0;
}

/* ---- pass 1: the walk ------------------------------------------------------------ */

static int new_seq(rs *r, uint32_t *seq)
{
    if (r->nseq == r->seq_cap) {
        size_t cap = r->seq_cap ? r->seq_cap * 2 : 1024;
        uint8_t *f = realloc(r->flags, cap);
        if (f) r->flags = f;
        uint32_t *n = f ? realloc(r->next_seq, cap * sizeof *n) : NULL;
        if (n) r->next_seq = n;
        uint32_t *d = n ? realloc(r->seq_dir, cap * sizeof *d) : NULL;
        if (!d) return cr_error(-ENOMEM, "out of memory");
        r->seq_dir = d;
        r->seq_cap = cap;
    }
    r->flags[r->nseq] = 0;
    r->next_seq[r->nseq] = 0;
    r->seq_dir[r->nseq] = NO_DIR;
    *seq = (uint32_t)r->nseq++;
    return 0;
}

static int load_tree(rs *r, const cr_id *id, cr_tree **out)
{
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_repo_load_blob(r->repo, CR_BLOB_TREE, id, &json));
    return cr_tree_parse((const char *)json.data, json.len, out);
}

/* Which nodes repeat an earlier name (hostile trees: "evil" as a symlink
 * and as a directory).  Later duplicates are refused. */
static int cmp_names(const cr_node *x, const cr_node *y)
{
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* by name, then by position: the first of equal names stays first */
static int cmp_node_names(const void *a, const void *b)
{
    const cr_node *x = *(const cr_node *const *)a, *y = *(const cr_node *const *)b;
    int c = cmp_names(x, y);
    return c ? c : (x > y) - (x < y);
}

static int find_duplicates(const cr_tree *t, bool **dup)
{
    *dup = calloc(t->n ? t->n : 1, sizeof **dup);
    _cleanup_free_ const cr_node **v = calloc(t->n ? t->n : 1, sizeof *v);
    if (!*dup || !v) return cr_error(-ENOMEM, "out of memory");
    bool sorted = true;
    for (size_t i = 0; i < t->n; i++) {
        v[i] = &t->nodes[i];
        if (i && cmp_names(v[i - 1], v[i]) >= 0) sorted = false;
    }
    if (sorted) return 0; /* strictly increasing: no duplicates */
    qsort(v, t->n, sizeof *v, cmp_node_names);
    for (size_t i = 1; i < t->n; i++)
        if (v[i]->name_len == v[i - 1]->name_len && !memcmp(v[i]->name, v[i - 1]->name, v[i]->name_len))
            (*dup)[v[i] - t->nodes] = true;
    return 0;
}

/* Checks shared by both passes; false = skip this node. */
static bool node_is_acceptable(rs *r, const cr_node *n, bool dup, const char *parent_loc, bool reporting)
{
    char q[600];
    if (!cr_node_name_is_safe(n->name, n->name_len)) {
        if (reporting) {
            quote_name(n->name, n->name_len, q, sizeof q);
            report(r, parent_loc, "invalid child node name %s", q);
            r->delete_ok = false; /* as restic: the listing can no longer be trusted */
        }
        return false;
    }
    if (dup) {
        if (reporting) {
            quote_name(n->name, n->name_len, q, sizeof q);
            report(r, parent_loc, "duplicate child node name %s, skipped", q);
            r->delete_ok = false;
        }
        return false;
    }
    return n->type != CR_NODE_SOCKET; /* sockets are never restored */
}

static int walk1(rs *r, const cr_id *tree_id, uint32_t dir, cr_buf *loc, unsigned depth, walk_result *res);

static int visit_dir1(rs *r, const cr_node *n, uint32_t dir, cr_buf *loc, unsigned depth, uint32_t seq, bool selected,
                      bool descend, walk_result *res)
{
    uint8_t *flags;
    if (!selected && !descend) {
        r->flags[seq] |= F_SKIP;
        return 0;
    }
    if (!n->has_subtree) {
        report(r, (char *)loc->data, "directory without subtree");
        r->flags[seq] |= F_SKIP;
        return 0;
    }
    uint32_t child;
    CR_TRY(add_dir(r, dir, n->name, n->name_len, &child));
    r->seq_dir[seq] = child;
    if (selected) {
        STAT_ADD(r, files_total, 1);
        int e = ensure_dir(r, child); /* a dry run only looks whether it exists */
        if (e < 0 && !(r->o->dry_run && e == -ENOENT)) {
            r->flags[seq] |= F_SKIP;
            return 0;
        }
    }
    walk_result sub = {false, false};
    if (descend) {
        if (depth >= DEPTH_MAX) {
            report(r, (char *)loc->data, "directories nested too deeply, not descending");
        } else {
            r->flags[seq] |= F_DESCEND;
            CR_TRY(walk1(r, &n->subtree, child, loc, depth + 1, &sub));
        }
    }
    flags = &r->flags[seq];
    r->next_seq[seq] = (uint32_t)r->nseq;
    if (selected || sub.restored_any) {
        *flags |= F_DIR_META;
        res->restored_any = true;
        res->pass2 = true; /* this directory's metadata is set in pass 2 */
        /* a listing of regular files only needs no second reading, unless
         * --delete compares it with the target */
        if ((*flags & F_DESCEND) && (sub.pass2 || r->o->delete_extra)) *flags |= F_WALK2;
        if (!selected) STAT_ADD(r, files_total, 1); /* created as a parent of selected items */
    } else {
        *flags |= F_SKIP;
    }
    close_dir(r, child);
    return 0;
}

static int visit_node1(rs *r, const cr_node *n, uint32_t dir, cr_buf *loc, unsigned depth, walk_result *res)
{
    uint32_t seq = 0;
    CR_TRY(new_seq(r, &seq));
    bool selected, descend;
    select_item(r, (char *)loc->data, n->type == CR_NODE_DIR, &selected, &descend);
    if (n->type == CR_NODE_DIR) return visit_dir1(r, n, dir, loc, depth, seq, selected, descend, res);
    if (!selected) {
        r->flags[seq] |= F_SKIP;
        return 0;
    }
    res->restored_any = true;
    if (!r->o->dry_run && ensure_dir(r, dir) < 0) {
        r->flags[seq] |= F_SKIP;
        return 0;
    }
    if (n->type == CR_NODE_FILE) {
        uint8_t fl = 0;
        CR_TRY(plan_file(r, n, dir, (char *)loc->data, &fl));
        r->flags[seq] |= fl | (fl & F_HARDLINK ? 0 : F_SKIP);
        if (fl & F_HARDLINK) res->pass2 = true;
        return 0;
    }
    STAT_ADD(r, files_total, 1);
    r->flags[seq] |= F_SPECIAL;
    res->pass2 = true;
    return 0;
}

static int walk1(rs *r, const cr_id *tree_id, uint32_t dir, cr_buf *loc, unsigned depth, walk_result *res)
{
    cr_tree *t = NULL;
    int e = load_tree(r, tree_id, &t);
    if (e < 0) {
        if (e == -ENOMEM || e == CR_E_INTERRUPTED) return e;
        report(r, (char *)loc->data, "%s", cr_error_message());
        r->delete_ok = false;
        return 0;
    }
    _cleanup_free_ bool *dup = NULL;
    e = find_duplicates(t, &dup);
    size_t base = loc->len;
    for (size_t i = 0; e == 0 && i < t->n; i++) {
        if (interrupted(r)) {
            e = cr_error(CR_E_INTERRUPTED, "interrupted");
            break;
        }
        const cr_node *n = &t->nodes[i];
        if (!node_is_acceptable(r, n, dup[i], loc->len ? (char *)loc->data : "/", true)) continue;
        loc->len = base;
        cr_buf_putc(loc, '/');
        cr_buf_append(loc, n->name, n->name_len);
        if ((e = cr_buf_nul(loc)) < 0) break;
        e = visit_node1(r, n, dir, loc, depth, res);
        loc->len = base;
        cr_buf_nul(loc);
    }
    cr_tree_free(t);
    return e;
}

/* ---- content: scheduling ----------------------------------------------------------- */

static int cmp_need(const void *a, const void *b)
{
    const rs_need *x = a, *y = b;
    if (x->pack != y->pack) return x->pack < y->pack ? -1 : 1;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return (x->file_off > y->file_off) - (x->file_off < y->file_off);
}

typedef struct {
    size_t first, count;
    uint32_t min_file;
} pack_group;

static int cmp_group(const void *a, const void *b)
{
    const pack_group *x = a, *y = b;
    return (x->min_file > y->min_file) - (x->min_file < y->min_file);
}

/* Cut one pack's needs (sorted by offset) into read ranges. */
static int add_units(rs *r, size_t first, size_t count, size_t *cap)
{
    size_t i = first, end = first + count;
    while (i < end) {
        uint64_t off = r->needs[i].offset, stop = off + r->needs[i].length;
        size_t j = i + 1;
        while (j < end) {
            const rs_need *nd = &r->needs[j];
            uint64_t nstop = nd->offset + (uint64_t)nd->length;
            if (nd->offset > stop + RANGE_GAP_MAX) break;
            if ((nstop > stop ? nstop : stop) - off > RANGE_MAX) break;
            if (nstop > stop) stop = nstop;
            j++;
        }
        CR_TRY(GROW(r->units, *cap, r->nunits + 1));
        r->units[r->nunits++] = (rs_unit){.first = i, .count = j - i, .off = off, .len = stop - off};
        i = j;
    }
    return 0;
}

/* Packs in the order files first need them, so files complete (and close)
 * roughly in tree order and few stay open. */
static int schedule(rs *r)
{
    if (!r->nneeds) return 0;
    qsort(r->needs, r->nneeds, sizeof *r->needs, cmp_need);
    _cleanup_free_ pack_group *g = NULL;
    size_t ng = 0, gcap = 0, ucap = 0;
    for (size_t i = 0; i < r->nneeds;) {
        size_t j = i;
        uint32_t minf = UINT32_MAX;
        while (j < r->nneeds && r->needs[j].pack == r->needs[i].pack) {
            if (r->needs[j].file < minf) minf = r->needs[j].file;
            j++;
        }
        CR_TRY(GROW(g, gcap, ng + 1));
        g[ng++] = (pack_group){.first = i, .count = j - i, .min_file = minf};
        i = j;
    }
    qsort(g, ng, sizeof *g, cmp_group);
    for (size_t k = 0; k < ng; k++) CR_TRY(add_units(r, g[k].first, g[k].count, &ucap));
    return 0;
}

/* ---- content: workers -------------------------------------------------------------- */

/* Where a decoded blob waits to be written. */
enum { SRC_NONE, SRC_BATCH, SRC_RAW };

typedef struct {
    uint8_t src; /* SRC_NONE: nothing to write (zero blob with --sparse, or failed) */
    size_t at;   /* offset in the worker's batch or raw range */
    size_t len;
} rs_place;

typedef struct {
    uint32_t file;
    uint64_t off;
    rs_place from;
} rs_write;

typedef struct {
    uint32_t dir;
    int fd;
    uint64_t used;
} dcache_slot;

/* Blobs decoded, waiting for their hash check and their writes.  Their
 * hashes are computed together (cr_sha256_many: two at a time with SHA-NI).
 * Two lanes are only busy together when no blob is longer than all the
 * others of its group together, so a group closes at GROUP_PLAIN_MAX only
 * once it is balanced that way, and takes in the rest of its range when
 * that rest is small; GROUP_MAX blobs or GROUP_PLAIN_HARD bytes close it
 * in any case (memory). */
#define GROUP_MAX 16
#define GROUP_PLAIN_MAX (4 * MiB)
#define GROUP_PLAIN_HARD (8 * MiB)

typedef struct {
    size_t i, j;   /* the needs served by this decode: [i, j) */
    rs_place got;
    int e;
    bool verified;
    char why[512];
} rs_pending;

typedef struct {
    rs *r;
    /* The range read from the pack; uncompressed blobs are decrypted in
     * place and written from there. */
    cr_buf raw, single;
    /* Decompressed blobs waiting to be written, back to back in one buffer
     * (writes refer to them by offset, so it may move as it grows): about
     * BATCH_PLAIN_MAX, or one big blob alone. */
    cr_buf batch;
    /* compressed plaintext between decryption and decompression, for blobs
     * not decoded in place (other copies, bytes a later need shares) */
    cr_buf zscratch;
    rs_write *writes;
    size_t nwrites, writes_cap;
    struct iovec *iov;
    dcache_slot dc[DIRCACHE];
    uint64_t tick;
    cr_buf loc;
    /* The open group; at the end of a range it may wait for the next one
     * (carried), so that its hashes pair with that range's blobs. */
    rs_pending g[GROUP_MAX];
    size_t ng, gplain, glongest;
    bool gbig, carried;
} worker;

static void dcache_clear(worker *w)
{
    for (int i = 0; i < DIRCACHE; i++) {
        if (w->dc[i].fd >= 0) close(w->dc[i].fd);
        w->dc[i] = (dcache_slot){.dir = NO_DIR, .fd = -1};
    }
}

/* A descriptor for directory d, reached from the target with O_NOFOLLOW at
 * every step (cached per worker). */
static int worker_dir_fd(worker *w, uint32_t d, unsigned depth)
{
    rs *r = w->r;
    if (r->dirs[d].parent == NO_DIR) return r->root_fd;
    for (int i = 0; i < DIRCACHE; i++)
        if (w->dc[i].dir == d && w->dc[i].fd >= 0) {
            w->dc[i].used = ++w->tick;
            return w->dc[i].fd;
        }
    if (depth > DEPTH_MAX + 1) return -ELOOP;
    int pfd = worker_dir_fd(w, r->dirs[d].parent, depth + 1);
    if (pfd < 0) return pfd;
    int fd = open_dir_at(pfd, r->dirs[d].name);
    if (fd < 0) return -errno;
    int victim = 0;
    for (int i = 1; i < DIRCACHE; i++)
        if (w->dc[i].used < w->dc[victim].used) victim = i;
    if (w->dc[victim].fd >= 0) close(w->dc[victim].fd);
    w->dc[victim] = (dcache_slot){.dir = d, .fd = fd, .used = ++w->tick};
    return fd;
}

static void file_report(worker *w, const rs_file *f, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void file_report(worker *w, const rs_file *f, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    file_location(w->r, f, &w->loc);
    report(w->r, (char *)w->loc.data, "%s", msg);
}

/* Open (creating on first use) the file a write goes to.  Caller holds the
 * stripe lock.  -1 when the file cannot be written (reported once). */
static int file_fd_locked(worker *w, rs_file *f)
{
    if (f->fd >= 0) return f->fd;
    if (atomic_load(&f->failed) && f->fd == -2) return -1;
    char eb[128];
    int dfd = worker_dir_fd(w, f->dir, 0);
    int fd = -1;
    if (dfd >= 0) {
        unsigned have;
        mode_t cmode = creation_mode(w->r, f, &have);
        int flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | (f->plan == PLAN_NEW ? O_CREAT | O_EXCL : 0);
        fd = openat(dfd, f->name, flags, cmode);
        f->have = (uint8_t)have;
    } else {
        errno = -dfd;
    }
    if (fd < 0) {
        int e = errno;
        cr_buf loc = CR_BUF_INIT;
        file_location(w->r, f, &loc);
        file_report(w, f, "open %s%s: %s", w->r->target, (char *)loc.data, errstr(e, eb));
        cr_buf_free(&loc);
        atomic_store(&f->failed, true);
        f->fd = -2;
        return -1;
    }
    if (f->plan == PLAN_UPDATE || w->r->o->sparse) {
        /* holes for --sparse; an existing file gets its new length */
        if (ftruncate(fd, (off_t)f->size) < 0) file_report(w, f, "truncate: %s", errstr(errno, eb));
    } else if (f->size >= PREALLOC_MIN) {
        /* fewer fragments; failure is harmless (not posix_fallocate: where
         * the file system cannot, glibc would write zeros instead) */
        (void)fallocate(fd, 0, 0, (off_t)f->size);
    }
    return f->fd = fd;
}

/* Last write of a file: fix its length if needed, set metadata, close. */
static void file_complete(worker *w, uint32_t fi)
{
    rs *r = w->r;
    rs_file *f = &r->files[fi];
    pthread_mutex_t *lk = &r->file_locks[fi % FILE_LOCKS];
    pthread_mutex_lock(lk);
    int fd = file_fd_locked(w, f); /* a file of only zero blobs was never opened */
    bool failed = atomic_load(&f->failed);
    char eb[128];
    if (fd >= 0 && (failed || r->o->sparse) && ftruncate(fd, (off_t)f->size) < 0)
        file_report(w, f, "truncate: %s", errstr(errno, eb));
    file_location(r, f, &w->loc);
    /* A damaged file keeps the restore time as mtime, so a later
     * --overwrite if-changed does not take it for intact. */
    if (fd >= 0 && !failed) apply_meta_fd(r, fd, &f->meta, (char *)w->loc.data, f->have);
    if (fd >= 0) close(fd);
    f->fd = -2;
    pthread_mutex_unlock(lk);
    if (!failed) {
        STAT_ADD(r, files_restored, 1);
        item_done(r, (char *)w->loc.data, f->existed ? "updated" : "restored", f->size);
    }
}

static int cmp_write(const void *a, const void *b)
{
    const rs_write *x = a, *y = b;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

static bool pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t got = pwritev(fd, iov, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            if (got == 0) errno = EIO;
            return false;
        }
        off += (uint64_t)got;
        while (n > 0 && (size_t)got >= iov->iov_len) got -= (ssize_t)iov->iov_len, iov++, n--;
        if (n > 0) iov->iov_base = (char *)iov->iov_base + got, iov->iov_len -= (size_t)got;
    }
    return true;
}

static uint8_t *place_data(worker *w, const rs_place *p)
{
    return (p->src == SRC_RAW ? w->raw.data : w->batch.data) + p->at;
}

/* Write one file's batch: runs of adjacent blobs go out in one pwritev. */
static void flush_file(worker *w, rs_write *v, size_t n)
{
    rs *r = w->r;
    rs_file *f = &r->files[v[0].file];
    pthread_mutex_t *lk = &r->file_locks[v[0].file % FILE_LOCKS];
    bool any = false;
    for (size_t i = 0; i < n; i++) any |= v[i].from.src != SRC_NONE;
    /* The writes hold the file's lock: the kernel serialises writes to one
     * file anyway, and its waiters spin while ours sleep (and leave the core
     * to a worker that decodes). */
    pthread_mutex_lock(lk);
    int fd = any ? file_fd_locked(w, f) : -1;
    for (size_t i = 0; fd >= 0 && i < n;) {
        if (v[i].from.src == SRC_NONE) {
            i++;
            continue;
        }
        int k = 0;
        uint64_t start = v[i].off, end = start;
        while (i < n && v[i].from.src != SRC_NONE && v[i].off == end && k < IOV_MAX) {
            w->iov[k++] = (struct iovec){.iov_base = place_data(w, &v[i].from), .iov_len = v[i].from.len};
            end += v[i].from.len;
            i++;
        }
        if (!pwritev_all(fd, w->iov, k, start)) {
            char eb[128];
            file_report(w, f, "write: %s", errstr(errno, eb));
            atomic_store(&f->failed, true);
            break;
        }
    }
    pthread_mutex_unlock(lk);
    /* count every handled need; the last one completes the file */
    if (atomic_fetch_sub(&f->pending, (unsigned)n) == (unsigned)n) file_complete(w, v[0].file);
}

static void flush(worker *w)
{
    if (!w->nwrites) return;
    qsort(w->writes, w->nwrites, sizeof *w->writes, cmp_write);
    /* progress counts content handled, also when a blob failed: before
     * the writes, so a file completing below is already fully counted */
    uint64_t handled = 0;
    for (size_t i = 0; i < w->nwrites; i++) handled += w->writes[i].from.len;
    STAT_ADD(w->r, bytes_restored, handled);
    for (size_t i = 0; i < w->nwrites;) {
        size_t j = i + 1;
        while (j < w->nwrites && w->writes[j].file == w->writes[i].file) j++;
        flush_file(w, &w->writes[i], j - i);
        i = j;
    }
    w->nwrites = 0;
    if (!w->ng) w->batch.len = 0; /* else the open group's blobs are at its end */
}

static bool all_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Decode one stored copy of a blob to the end of the batch (left as it
 * was on failure). */
static int decode_append(worker *w, const uint8_t *raw, size_t n, uint32_t ulen, const cr_id *id, rs_place *out)
{
    if (n < CR_CRYPTO_OVERHEAD) return cr_error(CR_E_FORMAT, "blob too short (%zu bytes)", n);
    size_t at = w->batch.len, plain = ulen ? ulen : n - CR_CRYPTO_OVERHEAD;
    CR_TRY(cr_buf_resize(&w->batch, at + plain));
    int e = cr_blob_decode_into(&w->r->repo->master, raw, n, ulen, id, w->batch.data + at, &w->zscratch);
    if (e < 0) w->batch.len = at;
    else *out = (rs_place){.src = SRC_BATCH, .at = at, .len = plain};
    return e;
}

/* Decode a blob where it lies in the range: decrypted in place, and if
 * compressed, decompressed to the end of the batch.  No copy, no scratch.
 * Its hash is not checked here: check_group() does that for a group. */
static int decode_in_range(worker *w, size_t rel, const rs_need *nd, rs_place *out)
{
    size_t at = w->batch.len;
    if (nd->ulen) CR_TRY(cr_buf_resize(&w->batch, at + nd->ulen));
    const uint8_t *plain;
    size_t plen;
    int e = cr_blob_open_inplace(&w->r->repo->master, w->raw.data + rel, nd->length, nd->ulen,
                                 nd->ulen ? w->batch.data + at : NULL, &plain, &plen);
    if (e < 0) {
        w->batch.len = at;
        return e;
    }
    if (nd->ulen) *out = (rs_place){.src = SRC_BATCH, .at = at, .len = nd->ulen};
    else *out = (rs_place){.src = SRC_RAW, .at = rel + CR_IV_SIZE, .len = nd->length - CR_CRYPTO_OVERHEAD};
    return 0;
}

/* "blob B in pack P: <the current error>" */
static void describe_failure(worker *w, const rs_need *nd, char *why, size_t whysz)
{
    char bhex[CR_ID_HEX + 1], phex[CR_ID_HEX + 1];
    cr_id_to_hex(&w->r->blobs[nd->blob].id, bhex);
    cr_id_to_hex(&w->r->repo->index->packs[nd->pack], phex);
    snprintf(why, whysz, "blob %s in pack %s: %s", bhex, phex, cr_error_message());
}

/* The first try of a need: its copy in this pack.  In place (the common
 * case) *verified stays false and the caller checks the hash; the other
 * ways check it themselves. */
static int decode_here(worker *w, const rs_unit *u, const rs_need *nd, bool range_ok, bool in_place, rs_place *out,
                       bool *verified)
{
    rs *r = w->r;
    const cr_id *id = &r->blobs[nd->blob].id;
    uint64_t rel = nd->offset - u->off;
    *verified = true;
    if (range_ok && rel + nd->length <= w->raw.len) {
        if (!in_place) return decode_append(w, w->raw.data + rel, nd->length, nd->ulen, id, out);
        *verified = false;
        return decode_in_range(w, (size_t)rel, nd, out);
    }
    if (range_ok) return cr_error(CR_E_FORMAT, "pack is shorter than the index says");
    /* the range failed as a whole (e.g. truncated pack): try this blob alone */
    char phex[CR_ID_HEX + 1];
    cr_id_to_hex(&r->repo->index->packs[nd->pack], phex);
    CR_TRY(cr_be_load(r->repo->be, CR_FILE_PACK, phex, nd->offset, nd->length, &w->single));
    return decode_append(w, w->single.data, w->single.len, nd->ulen, id, out);
}

/* After the first try failed: the other copies the index knows of (restic
 * tries them too). */
static int decode_elsewhere(worker *w, const rs_need *nd, rs_place *out)
{
    rs *r = w->r;
    const cr_id *id = &r->blobs[nd->blob].id;
    size_t count;
    const cr_index_entry *alt = cr_index_lookup(r->repo->index, CR_BLOB_DATA, id, &count);
    for (size_t k = 0; k < count; k++) {
        if (alt[k].pack == nd->pack && alt[k].offset == nd->offset) continue;
        if (alt[k].length > BLOB_MAX || alt[k].ulen > BLOB_MAX) continue;
        char phex[CR_ID_HEX + 1];
        cr_id_to_hex(&r->repo->index->packs[alt[k].pack], phex);
        if (cr_be_load(r->repo->be, CR_FILE_PACK, phex, alt[k].offset, alt[k].length, &w->single) == 0 &&
            decode_append(w, w->single.data, w->single.len, alt[k].ulen, id, out) == 0)
            return 0;
    }
    return -1;
}

static int push_write(worker *w, uint32_t file, uint64_t off, rs_place from)
{
    CR_TRY(GROW(w->writes, w->writes_cap, w->nwrites + 1));
    w->writes[w->nwrites++] = (rs_write){.file = file, .off = off, .from = from};
    return 0;
}

static void check_group(worker *w, rs_pending *g, size_t ng)
{
    const uint8_t *p[GROUP_MAX];
    size_t n[GROUP_MAX], which[GROUP_MAX], k = 0;
    uint8_t h[GROUP_MAX][32];
    for (size_t i = 0; i < ng; i++) {
        if (g[i].e < 0 || g[i].verified) continue;
        p[k] = place_data(w, &g[i].got);
        n[k] = g[i].got.len;
        which[k++] = i;
    }
    if (!k) return;
    cr_sha256_many(p, n, k, h);
    for (size_t m = 0; m < k; m++) {
        rs_pending *pe = &g[which[m]];
        const rs_need *nd = &w->r->needs[pe->i];
        if (memcmp(h[m], w->r->blobs[nd->blob].id.b, 32) == 0) continue;
        if (pe->got.src == SRC_BATCH && pe->got.at + pe->got.len == w->batch.len) w->batch.len = pe->got.at;
        pe->e = cr_error(CR_E_AUTH, "blob hash mismatch (content does not match its ID)");
        describe_failure(w, nd, pe->why, sizeof pe->why);
    }
}

/* Check the group, try other copies of what failed, queue the writes. */
static int finish_group(worker *w, rs_pending *g, size_t ng)
{
    rs *r = w->r;
    check_group(w, g, ng);
    for (size_t gi = 0; gi < ng; gi++) {
        rs_pending *pe = &g[gi];
        const rs_need *nd = &r->needs[pe->i];
        if (pe->e < 0 && decode_elsewhere(w, nd, &pe->got) == 0) pe->e = 0;
        rs_place got = pe->got;
        if (pe->e == 0 && r->o->sparse && all_zero(place_data(w, &got), got.len)) {
            if (got.src == SRC_BATCH && got.at + got.len == w->batch.len) w->batch.len = got.at;
            got.src = SRC_NONE; /* nothing to write: a hole */
        }
        if (pe->e < 0) got = (rs_place){.src = SRC_NONE, .len = r->blobs[nd->blob].plain_len};
        for (size_t k = pe->i; k < pe->j; k++) {
            const rs_need *ndk = &r->needs[k];
            rs_file *f = &r->files[ndk->file];
            if (pe->e < 0) {
                atomic_store(&f->failed, true);
                file_report(w, f, "%s", pe->why);
            }
            CR_TRY(push_write(w, ndk->file, ndk->file_off, got));
        }
    }
    return 0;
}

static bool balanced(size_t gplain, size_t glongest)
{
    return gplain - glongest >= glongest;
}

/* Whether the open group, with rest bytes left in its range, is to be
 * checked and written now. */
static bool group_full(const worker *w, size_t rest)
{
    if (w->ng == GROUP_MAX || w->gplain >= GROUP_PLAIN_HARD) return true;
    if (w->gplain < GROUP_PLAIN_MAX || !balanced(w->gplain, w->glongest)) return false;
    return rest >= GROUP_PLAIN_MAX / 2;
}

/* Check and queue the open group.  Small blobs are gathered (adjacent ones
 * of a file go out in one pwritev); big ones go out with their group, so
 * memory stays at one range, one batch and one group (plus a carried one). */
static int close_group(worker *w)
{
    CR_TRY(finish_group(w, w->g, w->ng));
    bool big = w->gbig;
    w->ng = w->gplain = w->glongest = 0;
    w->gbig = w->carried = false;
    if (big || w->batch.len >= BATCH_PLAIN_MAX) flush(w);
    return 0;
}

/* The open group waits for the next range, which replaces this one: its
 * blobs decrypted in place move to the batch (few bytes: most of the
 * range went out with closed groups). */
static int carry_group(worker *w)
{
    for (size_t i = 0; i < w->ng; i++) {
        rs_place *p = &w->g[i].got;
        if (p->src != SRC_RAW) continue;
        size_t at = w->batch.len;
        CR_TRY(cr_buf_resize(&w->batch, at + p->len));
        memcpy(w->batch.data + at, w->raw.data + p->at, p->len);
        *p = (rs_place){.src = SRC_BATCH, .at = at, .len = p->len};
    }
    w->carried = true;
    return 0;
}

static int run_unit(worker *w, const rs_unit *u)
{
    rs *r = w->r;
    const rs_need *nd0 = &r->needs[u->first];
    char phex[CR_ID_HEX + 1];
    cr_id_to_hex(&r->repo->index->packs[nd0->pack], phex);
    bool range_ok = cr_be_load(r->repo->be, CR_FILE_PACK, phex, u->off, u->len, &w->raw) == 0;
    size_t rest = 0;
    for (size_t i = u->first, end = u->first + u->count; i < end; i++) rest += r->blobs[r->needs[i].blob].plain_len;
    for (size_t i = u->first, end = u->first + u->count; i < end;) {
        /* one decode per blob; an index (hostile) mapping two IDs to one
         * place gets one decode per ID, and the hash check sorts them out */
        size_t j = i + 1;
        while (j < end && r->needs[j].offset == r->needs[i].offset &&
               cr_id_eq(&r->blobs[r->needs[j].blob].id, &r->blobs[r->needs[i].blob].id))
            j++;
        /* In place, unless a later need (hostile index) overlaps these bytes. */
        const rs_need *nd = &r->needs[i];
        bool in_place = j == end || r->needs[j].offset >= (uint64_t)nd->offset + nd->length;
        rs_pending *pe = &w->g[w->ng++];
        pe->i = i, pe->j = j, pe->got = (rs_place){.src = SRC_NONE};
        pe->e = decode_here(w, u, nd, range_ok, in_place, &pe->got, &pe->verified);
        if (pe->e == -ENOMEM) return pe->e;
        if (pe->e < 0) describe_failure(w, nd, pe->why, sizeof pe->why);
        size_t plain = r->blobs[nd->blob].plain_len;
        for (size_t k = i; k < j; k++) rest -= r->blobs[r->needs[k].blob].plain_len;
        w->gplain += plain;
        w->glongest = plain > w->glongest ? plain : w->glongest;
        w->gbig |= plain >= BIG_BLOB;
        i = j;
        if (group_full(w, rest)) CR_TRY(close_group(w));
    }
    /* A group that would be hashed one lane alone waits for the next
     * range, once (so the batch does not grow on). */
    if (w->ng && (w->carried || balanced(w->gplain, w->glongest))) CR_TRY(close_group(w));
    flush(w); /* writes of the closed groups; a carried group's stay */
    if (w->ng) CR_TRY(carry_group(w));
    return 0;
}

static void worker_free(worker *w)
{
    dcache_clear(w);
    cr_buf_free(&w->raw);
    cr_buf_free(&w->single);
    cr_buf_free(&w->batch);
    cr_buf_free(&w->zscratch);
    free(w->writes);
    free(w->iov);
    cr_buf_free(&w->loc);
}

static void worker_finished(rs *r)
{
    pthread_mutex_lock(&r->st_lock);
    r->workers_running--;
    pthread_cond_broadcast(&r->workers_cond);
    pthread_mutex_unlock(&r->st_lock);
}

static void *content_worker(void *arg)
{
    rs *r = arg;
    worker w = {.r = r};
    for (int i = 0; i < DIRCACHE; i++) w.dc[i] = (dcache_slot){.dir = NO_DIR, .fd = -1};
    w.iov = calloc(IOV_MAX, sizeof *w.iov);
    if (!w.iov) atomic_store(&r->stop, -ENOMEM);
    int e = 0;
    while (!interrupted(r)) {
        size_t k = atomic_fetch_add(&r->next_unit, 1);
        if (k >= r->nunits) break;
        if ((e = run_unit(&w, &r->units[k])) < 0) break;
    }
    /* no range left to pair with: the group still carried goes out alone */
    if (e == 0 && w.ng && !interrupted(r) && (e = close_group(&w)) == 0) flush(&w);
    if (e < 0) {
        int zero = 0;
        atomic_compare_exchange_strong(&r->stop, &zero, e);
    }
    worker_free(&w);
    worker_finished(r);
    return NULL;
}

static unsigned worker_count(const rs *r)
{
    if (r->o->workers) return r->o->workers > 64 ? 64 : r->o->workers;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    unsigned n = (unsigned)cpus + 1;
    return n < 2 ? 2 : n > 8 ? 8 : n;
}

/* Run fn on a pool of threads while this thread reports progress. */
static int run_pool(rs *r, void *(*fn)(void *))
{
    unsigned n = worker_count(r);
    pthread_t th[64];
    unsigned started = 0;
    r->workers_running = n;
    for (; started < n; started++)
        if (pthread_create(&th[started], NULL, fn, r) != 0) break;
    pthread_mutex_lock(&r->st_lock);
    r->workers_running -= n - started;
    pthread_mutex_unlock(&r->st_lock);
    if (!started) return cr_error(-EAGAIN, "cannot start worker threads");
    for (;;) {
        pthread_mutex_lock(&r->st_lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        if (r->workers_running) pthread_cond_timedwait(&r->workers_cond, &r->st_lock, &until);
        bool done = r->workers_running == 0;
        pthread_mutex_unlock(&r->st_lock);
        if (done) break;
        progress(r, false);
    }
    for (unsigned i = 0; i < started; i++) pthread_join(th[i], NULL);
    int e = atomic_load(&r->stop);
    if (e) return e == CR_E_INTERRUPTED ? cr_error(e, "interrupted") : cr_error(e, "restore stopped: %s", cr_error_str(e));
    if (r->o->interrupted && *r->o->interrupted) return cr_error(CR_E_INTERRUPTED, "interrupted");
    return 0;
}

/* ---- pass 2 ------------------------------------------------------------------------------ */

/* Remove name below dfd and everything inside it, never following a
 * symlink; reports each removed item (children first) when asked. */
static int remove_tree_at(rs *r, int dfd, const char *name, const char *shown, bool report_items)
{
    char eb[128];
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -errno;
    if (S_ISDIR(st.st_mode)) {
        int fd = open_dir_at(dfd, name);
        if (fd < 0) {
            report(r, shown, "open %s: %s", shown, errstr(errno, eb));
            return -errno;
        }
        DIR *d = fdopendir(fd);
        if (!d) {
            close(fd);
            return -errno;
        }
        cr_buf child = CR_BUF_INIT;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            cr_buf_reset(&child);
            cr_buf_printf(&child, "%s/%s", shown, de->d_name);
            cr_buf_nul(&child);
            remove_tree_at(r, dirfd(d), de->d_name, (char *)child.data, report_items);
        }
        cr_buf_free(&child);
        closedir(d);
        if (!r->o->dry_run && unlinkat(dfd, name, AT_REMOVEDIR) < 0) {
            report(r, shown, "remove %s: %s", shown, errstr(errno, eb));
            return -errno;
        }
    } else if (!r->o->dry_run && unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
        report(r, shown, "remove %s: %s", shown, errstr(errno, eb));
        return -errno;
    }
    if (report_items) {
        STAT_ADD(r, files_deleted, 1);
        item_done(r, shown, "deleted", 0);
    }
    return 0;
}

static int cmp_name_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* --delete: remove entries of a restored directory the snapshot does not
 * have, if the filters select them (restic's rule). */
static void delete_extras(rs *r, int dfd, const cr_tree *t, const char *loc)
{
    if (!r->o->delete_extra || !r->delete_ok || dfd < 0) return;
    _cleanup_free_ const char **names = calloc(t ? t->n + 1 : 1, sizeof *names);
    if (!names) return;
    size_t n = 0;
    for (size_t i = 0; t && i < t->n; i++) names[n++] = t->nodes[i].name;
    qsort(names, n, sizeof *names, cmp_name_ptr);
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    rewinddir(d);
    cr_buf item = CR_BUF_INIT, shown = CR_BUF_INIT;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        const char *key = de->d_name;
        if (bsearch(&key, names, n, sizeof *names, cmp_name_ptr)) continue;
        cr_buf_reset(&item);
        cr_buf_printf(&item, "%s/%s", loc, de->d_name);
        cr_buf_nul(&item);
        bool sel, desc;
        select_item(r, (char *)item.data, false, &sel, &desc);
        if (!sel) continue;
        cr_buf_reset(&shown);
        cr_buf_printf(&shown, "%s%s", r->target, (char *)item.data);
        cr_buf_nul(&shown);
        remove_tree_at(r, dirfd(d), de->d_name, (char *)shown.data, true);
    }
    cr_buf_free(&item);
    cr_buf_free(&shown);
    closedir(d);
}

/* The main thread's descriptor of a directory in pass 2 (reopened from its
 * parent; pass 1 created it). */
static int dir_fd2(rs *r, uint32_t d)
{
    rs_dir *dir = &r->dirs[d];
    if (dir->fd >= 0) return dir->fd;
    if (dir->parent == NO_DIR) return dir->fd = r->root_fd;
    int pfd = dir_fd2(r, dir->parent);
    if (pfd < 0) return pfd;
    int fd = open_dir_at(pfd, r->dirs[d].name);
    if (fd < 0) return -errno;
    return r->dirs[d].fd = fd;
}

/* Make room for a special node per the overwrite rules: 1 = go ahead,
 * 0 = leave the existing entry (skipped), <0 = failed (reported). */
static int special_may_replace(rs *r, int dfd, const cr_node *n, const char *loc, bool parent_fresh)
{
    struct stat st;
    if (parent_fresh || fstatat(dfd, n->name, &st, AT_SYMLINK_NOFOLLOW) < 0) return 1;
    if (r->o->overwrite == CR_OVERWRITE_NEVER) return 0;
    if (r->o->overwrite == CR_OVERWRITE_IF_NEWER) {
        cr_time mt = {.sec = st.st_mtim.tv_sec, .nsec = (int32_t)st.st_mtim.tv_nsec};
        if (cr_time_cmp(&n->mtime, &mt) <= 0) return 0;
    }
    if (r->o->dry_run) return 1;
    return clear_entry(r, dfd, n->name, &st, loc) < 0 ? -1 : 1;
}

static void skipped_item(rs *r, const char *loc, uint64_t size)
{
    pthread_mutex_lock(&r->st_lock);
    r->st.files_skipped++;
    r->st.bytes_skipped += size;
    pthread_mutex_unlock(&r->st_lock);
    item_done(r, loc, "unchanged", size);
}

static void other_restored(rs *r, const char *loc)
{
    STAT_ADD(r, files_restored, 1);
    item_done(r, loc, "restored", 0);
}

static void create_special(rs *r, uint32_t dir, const cr_node *n, const char *loc)
{
    char eb[128];
    int dfd = r->o->dry_run ? -1 : dir_fd2(r, dir);
    if (!r->o->dry_run && dfd < 0) {
        report(r, loc, "open parent directory: %s", errstr(-dfd, eb));
        return;
    }
    if (!r->o->dry_run) {
        int ok = special_may_replace(r, dfd, n, loc, r->dirs[dir].fresh);
        if (ok < 0) return;
        if (ok == 0) {
            skipped_item(r, loc, 0);
            return;
        }
    }
    if (r->o->dry_run) {
        other_restored(r, loc);
        return;
    }
    int rc = 0;
    const char *what = "create";
    switch (n->type) {
    case CR_NODE_SYMLINK:
        what = "symlink";
        if (!n->linktarget || strlen(n->linktarget) != n->linktarget_len) {
            report(r, loc, "symlink %s%s: invalid link target", r->target, loc);
            return;
        }
        rc = symlinkat(n->linktarget, dfd, n->name);
        break;
    case CR_NODE_FIFO:
        what = "mkfifo";
        rc = mkfifoat(dfd, n->name, 0600);
        break;
    case CR_NODE_DEV:
    case CR_NODE_CHARDEV:
        what = "mknod";
        rc = mknodat(dfd, n->name, (n->type == CR_NODE_DEV ? S_IFBLK : S_IFCHR) | 0600, (dev_t)n->device);
        break;
    default:
        report(r, loc, "filetype %s not supported", n->type_name ? n->type_name : "?");
        return;
    }
    if (rc < 0) {
        report(r, loc, "%s %s%s: %s", what, r->target, loc, errstr(errno, eb));
        return;
    }
    rs_meta m;
    meta_from_node(n, &m);
    apply_meta_at(r, dfd, n->name, &m, n->type == CR_NODE_SYMLINK, loc);
    other_restored(r, loc);
}

static void create_hardlink(rs *r, uint32_t dir, const cr_node *n, const char *loc)
{
    char eb[128];
    rs_link_slot *s = link_find(r, n->inode, n->device_id);
    const rs_file *first = &r->files[s->file];
    if (r->o->dry_run) {
        other_restored(r, loc);
        return;
    }
    int dfd = dir_fd2(r, dir);
    int sfd = dfd >= 0 ? dir_fd2(r, first->dir) : dfd;
    if (dfd < 0 || sfd < 0) {
        report(r, loc, "link: open directory: %s", errstr(dfd < 0 ? -dfd : -sfd, eb));
        return;
    }
    int ok = special_may_replace(r, dfd, n, loc, r->dirs[dir].fresh);
    if (ok < 0) return;
    if (ok == 0) {
        skipped_item(r, loc, 0);
        return;
    }
    if (linkat(sfd, first->name, dfd, n->name, 0) < 0) {
        report(r, loc, "link %s%s: %s", r->target, loc, errstr(errno, eb));
        return;
    }
    other_restored(r, loc);
}

static int walk2(rs *r, const cr_id *tree_id, uint32_t dir, cr_buf *loc, unsigned depth, uint32_t seq_end, bool deleting);

/* Leaving a directory: its metadata, now that every child is in place. */
static void dir_metadata(rs *r, uint32_t d, const cr_node *n, const char *loc)
{
    if (!r->o->dry_run) {
        int dfd = dir_fd2(r, d);
        if (dfd < 0) {
            char eb[128];
            report(r, loc, "open %s%s: %s", r->target, loc, errstr(-dfd, eb));
            return;
        }
        rs_meta m;
        meta_from_node(n, &m);
        apply_meta_fd(r, dfd, &m, loc, 0);
    }
    other_restored(r, loc);
}

static int visit_node2(rs *r, const cr_node *n, uint32_t dir, cr_buf *loc, unsigned depth, uint32_t seq)
{
    uint8_t flags = r->flags[seq];
    if (n->type != CR_NODE_DIR) {
        r->seq2 = seq + 1;
        if (flags & F_HARDLINK) create_hardlink(r, dir, n, (char *)loc->data);
        else if (flags & F_SPECIAL) create_special(r, dir, n, (char *)loc->data);
        return 0;
    }
    uint32_t next = r->next_seq[seq] ? r->next_seq[seq] : seq + 1;
    uint32_t child = r->seq_dir[seq];
    r->seq2 = seq + 1;
    if ((flags & F_SKIP) || child == NO_DIR) {
        r->seq2 = next;
        return 0;
    }
    /* restic deletes only in directories it restores (selected, or with
     * restored children) */
    if (flags & F_WALK2) CR_TRY(walk2(r, &n->subtree, child, loc, depth + 1, next, (flags & F_DIR_META) != 0));
    r->seq2 = next;
    if (flags & F_DIR_META) dir_metadata(r, child, n, (char *)loc->data);
    close_dir(r, child);
    return 0;
}

static int walk2(rs *r, const cr_id *tree_id, uint32_t dir, cr_buf *loc, unsigned depth, uint32_t seq_end, bool deleting)
{
    cr_tree *t = NULL;
    int e = load_tree(r, tree_id, &t);
    if (e < 0) { /* reported in pass 1 (or new): skip what pass 1 saw below */
        if (e == -ENOMEM) return e;
        r->seq2 = seq_end;
        return 0;
    }
    _cleanup_free_ bool *dup = NULL;
    e = find_duplicates(t, &dup);
    size_t base = loc->len;
    for (size_t i = 0; e == 0 && i < t->n && r->seq2 < seq_end; i++) {
        if (interrupted(r)) {
            e = cr_error(CR_E_INTERRUPTED, "interrupted");
            break;
        }
        const cr_node *n = &t->nodes[i];
        if (!node_is_acceptable(r, n, dup[i], "", false)) continue;
        loc->len = base;
        cr_buf_putc(loc, '/');
        cr_buf_append(loc, n->name, n->name_len);
        if ((e = cr_buf_nul(loc)) < 0) break;
        e = visit_node2(r, n, dir, loc, depth, (uint32_t)r->seq2);
        loc->len = base;
        cr_buf_nul(loc);
    }
    if (e == 0 && deleting && r->o->delete_extra && r->delete_ok) {
        int dfd = (r->o->dry_run && !r->dirs[dir].exists) ? -1 : dir_fd2(r, dir);
        delete_extras(r, dfd, t, (char *)loc->data);
    }
    cr_tree_free(t);
    return e;
}

/* ---- verify --------------------------------------------------------------------------- */

static void verify_file(worker *w, uint32_t fi)
{
    rs *r = w->r;
    rs_file *f = &r->files[fi];
    cr_buf path = CR_BUF_INIT;
    file_location(r, f, &w->loc);
    cr_buf_printf(&path, "%s%s", r->target, (char *)w->loc.data);
    cr_buf_nul(&path);
    const char *p = (char *)path.data;
    char eb[128];
    int dfd = worker_dir_fd(w, f->dir, 0);
    int fd = dfd >= 0 ? openat(dfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0) {
        report(r, (char *)w->loc.data, "open %s: %s", p, errstr(dfd < 0 ? -dfd : errno, eb));
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        report(r, (char *)w->loc.data, "Expected %s to be a regular file", p);
    } else if ((uint64_t)st.st_size != f->size) {
        report(r, (char *)w->loc.data, "Invalid file size for %s: expected %llu, got %llu", p, (unsigned long long)f->size,
               (unsigned long long)st.st_size);
    } else {
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        uint64_t off = 0;
        for (uint32_t i = 0; i < f->nblobs; i++) {
            const rs_blob *b = &r->blobs[f->first_blob + i];
            char hex[CR_ID_HEX + 1];
            if (!b->found) {
                cr_id_to_hex(&b->id, hex);
                report(r, (char *)w->loc.data, "Unable to fetch blob %s", hex);
                break;
            }
            if (cr_buf_resize(&w->raw, b->plain_len) < 0) break;
            ssize_t got = pread(fd, w->raw.data, b->plain_len, (off_t)off);
            cr_id h;
            if (got == (ssize_t)b->plain_len) cr_sha256(w->raw.data, b->plain_len, h.b);
            if (got != (ssize_t)b->plain_len || !cr_id_eq(&h, &b->id)) {
                report(r, (char *)w->loc.data, "Unexpected content in %s, starting at offset %llu", p, (unsigned long long)off);
                break;
            }
            off += b->plain_len;
        }
        STAT_ADD(r, files_verified, 1);
    }
    if (fd >= 0) close(fd);
    cr_buf_free(&path);
}

static void *verify_worker(void *arg)
{
    rs *r = arg;
    worker w = {.r = r};
    for (int i = 0; i < DIRCACHE; i++) w.dc[i] = (dcache_slot){.dir = NO_DIR, .fd = -1};
    while (!interrupted(r)) {
        size_t k = atomic_fetch_add(&r->next_verify, 1);
        if (k >= r->nfiles) break;
        const rs_file *f = &r->files[k];
        if ((f->plan == PLAN_NEW || f->plan == PLAN_UPDATE) && !atomic_load(&f->failed)) verify_file(&w, (uint32_t)k);
    }
    worker_free(&w);
    worker_finished(r);
    return NULL;
}

/* ---- entry point -------------------------------------------------------------------------- */

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The target: created like mkdir -p (its own path is the user's choice, so
 * symlinks there are followed), then opened once. */
static int open_target(rs *r)
{
    const char *t = r->o->target;
    if (!t || !*t) return cr_error(CR_E_USAGE, "no target directory given");
    if (!r->o->dry_run) {
        _cleanup_free_ char *p = strdup(t);
        if (!p) return cr_error(-ENOMEM, "out of memory");
        for (char *s = p + 1;; s++) {
            if (*s && *s != '/') continue;
            char c = *s;
            *s = 0;
            if (mkdir(p, 0700) < 0 && errno != EEXIST) return cr_error_sys(-errno, "cannot create target directory %s", p);
            *s = c;
            if (!c) break;
        }
    }
    r->root_fd = open(t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->root_fd < 0 && r->o->dry_run && errno == ENOENT) return 0; /* nothing there yet */
    if (r->root_fd < 0) return cr_error_sys(-errno, "cannot open target directory %s", t);
    return 0;
}

static void rs_free(rs *r)
{
    for (size_t i = 0; i < r->ndirs; i++) close_dir(r, (uint32_t)i);
    for (size_t i = 0; i < r->nfiles; i++) /* left open by an interrupted restore */
        if (r->files[i].fd >= 0) close(r->files[i].fd);
    if (r->root_fd >= 0) close(r->root_fd);
    cr_patterns_free(r->inc);
    cr_patterns_free(r->iinc);
    cr_patterns_free(r->exc);
    cr_patterns_free(r->iexc);
    cr_patterns_free(r->xinc);
    cr_patterns_free(r->xexc);
    cr_arena_free(&r->arena);
    free(r->dirs);
    free(r->files);
    free(r->blobs);
    free(r->needs);
    free(r->units);
    free(r->flags);
    free(r->next_seq);
    free(r->seq_dir);
    free(r->links);
    pthread_mutex_destroy(&r->st_lock);
    pthread_mutex_destroy(&r->cb_lock);
    pthread_cond_destroy(&r->workers_cond);
    for (int i = 0; i < FILE_LOCKS; i++) pthread_mutex_destroy(&r->file_locks[i]);
}

static int restore_all(rs *r, const cr_id *root)
{
    CR_TRY(compile_filters(r));
    CR_TRY(open_target(r));
    uint32_t top;
    CR_TRY(add_dir(r, NO_DIR, "", 0, &top));
    r->dirs[top].exists = r->root_fd >= 0;
    r->dirs[top].fresh = r->root_fd < 0; /* dry run into a missing target */

    /* pass 1 */
    cr_buf loc = CR_BUF_INIT;
    walk_result any = {false, false};
    int e = cr_buf_nul(&loc); /* locations are never NULL, the root is "" */
    if (e == 0) e = walk1(r, root, top, &loc, 0, &any);
    if (e < 0) return cr_buf_free(&loc), e;
    progress(r, false);
    /* content */
    if (!r->o->dry_run) {
        e = schedule(r);
        if (e == 0 && r->nunits) e = run_pool(r, content_worker);
        if (e < 0) return cr_buf_free(&loc), e;
    }

    /* pass 2 (dry runs too: they report what would be created or deleted) */
    r->seq2 = 0;
    for (size_t i = 0; i < r->ndirs; i++) close_dir(r, (uint32_t)i);
    e = walk2(r, root, top, &loc, 0, (uint32_t)r->nseq, true);
    cr_buf_free(&loc);
    if (e < 0) return e;
    if (r->o->interrupted && *r->o->interrupted) return cr_error(CR_E_INTERRUPTED, "interrupted");
    progress(r, false);

    if (r->o->verify && !r->o->dry_run && r->st.errors == 0) {
        if (r->o->on_phase) r->o->on_phase(r->o->ud, CR_RESTORE_PHASE_VERIFY, &r->st);
        CR_TRY(run_pool(r, verify_worker));
        if (r->o->on_phase) r->o->on_phase(r->o->ud, CR_RESTORE_PHASE_VERIFY_DONE, &r->st);
    }
    return 0;
}

int cr_restore(cr_repo *repo, const cr_id *root, const cr_restore_opts *opts, cr_restore_stats *stats)
{
    rs r;
    memset(&r, 0, sizeof r);
    r.repo = repo;
    r.o = opts;
    r.root_fd = -1;
    r.target = opts->target ? opts->target : "";
    r.delete_ok = true;
    r.euid = geteuid();
    r.egid = getegid();
    r.is_root = r.euid == 0;
    r.umask = umask(022); /* read it back: there is no getter */
    umask(r.umask);
    pthread_mutex_init(&r.st_lock, NULL);
    pthread_mutex_init(&r.cb_lock, NULL);
    pthread_cond_init(&r.workers_cond, NULL);
    for (int i = 0; i < FILE_LOCKS; i++) pthread_mutex_init(&r.file_locks[i], NULL);
    raise_fd_limit();
    int e = repo->index ? 0 : cr_repo_load_index(repo);
    if (e == 0) e = restore_all(&r, root);
    if (e == 0) progress(&r, true);
    if (stats) *stats = r.st;
    unsigned long long nerr = r.st.errors;
    rs_free(&r);
    if (e < 0) return e;
    return nerr ? cr_error(CR_E_PARTIAL, "There were %llu errors", nerr) : 0;
}

int cr_overwrite_parse(const char *s, cr_overwrite *out)
{
    static const char *const names[] = {"always", "if-changed", "if-newer", "never"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *out = (cr_overwrite)i;
            return 0;
        }
    return cr_error(CR_E_USAGE, "invalid argument \"%s\" for \"--overwrite\" flag: invalid overwrite behavior \"%s\", must be one of (always|if-changed|if-newer|never)", s, s);
}
