/* Local directory backend (spec §23.2): restic's default layout, atomic
 * writes through a temporary name, read-only files after writing. */
#include "backends/backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/id.h"

typedef struct {
    cr_backend base;
    char *root;
} local_backend;

static const cr_backend_stream_ops local_stream_ops;

static local_backend *as_local(cr_backend *b)
{
    return (local_backend *)b;
}

/* data/<first two hex>/<name>, <type dir>/<name>, or config. */
static int object_path(local_backend *lb, cr_filetype t, const char *name, char *out, size_t n)
{
    int len;
    if (t == CR_FILE_CONFIG) len = snprintf(out, n, "%s/config", lb->root);
    else if (t == CR_FILE_PACK) len = snprintf(out, n, "%s/data/%.2s/%s", lb->root, name, name);
    else len = snprintf(out, n, "%s/%s/%s", lb->root, cr_filetype_dir(t), name);
    if (len < 0 || (size_t)len >= n) return cr_error(-ENAMETOOLONG, "path too long");
    if (t != CR_FILE_CONFIG && (strchr(name, '/') || !name[0] || name[0] == '.'))
        return cr_error(-EINVAL, "invalid object name \"%s\"", name);
    return 0;
}

static int local_new(const char *path, local_backend **out)
{
    if (!path[0]) return cr_error(CR_E_USAGE, "empty repository path");
    local_backend *lb = calloc(1, sizeof *lb);
    if (!lb) return cr_error(-ENOMEM, "out of memory");
    lb->root = strdup(path);
    if (!lb->root) {
        free(lb);
        return cr_error(-ENOMEM, "out of memory");
    }
    size_t n = strlen(lb->root); /* "repo/" and "repo" are the same place */
    while (n > 1 && lb->root[n - 1] == '/') lb->root[--n] = 0;
    lb->base.connections = 2;
    /* Tests compare the whole-pack (in-memory) path of remote backends with
     * the same path here: CRESTIC_LOCAL_NO_STREAM turns streaming off. */
    if (!getenv("CRESTIC_LOCAL_NO_STREAM")) lb->base.stream = &local_stream_ops;
    *out = lb;
    return 0;
}

/* Filesystems whose directory listings show a new name to every process as
 * soon as it is linked: the disk filesystems of one machine.  Network and
 * FUSE filesystems (NFS, SMB, bucket mounts) may cache listings, so they
 * keep restic's delay. */
static bool lists_at_once(const char *root)
{
    static const unsigned long local_fs[] = {
        0xEF53,     /* ext2/3/4 */
        0x58465342, /* xfs */
        0x9123683E, /* btrfs */
        0x01021994, /* tmpfs */
        0x794C7630, /* overlayfs (containers) */
        0xF2F52010, /* f2fs */
        0x2FC12FC1, /* zfs */
    };
    struct statfs st;
    if (statfs(root, &st) < 0) return false;
    for (size_t i = 0; i < sizeof local_fs / sizeof local_fs[0]; i++)
        if ((unsigned long)st.f_type == local_fs[i]) return true;
    return false;
}

static int local_open(const char *path, cr_backend **out)
{
    local_backend *lb;
    CR_TRY(local_new(path, &lb));
    lb->base.lists_at_once = lists_at_once(lb->root);
    *out = &lb->base;
    return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return cr_error(-ENAMETOOLONG, "path too long: %s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(tmp, mode) < 0 && errno != EEXIST) return cr_error_sys(-errno, "mkdir %s", tmp);
            *p = c;
            if (!c) break;
        }
    }
    return 0;
}

static int local_create(const char *path, cr_backend **out)
{
    local_backend *lb;
    CR_TRY(local_new(path, &lb));
    struct stat st;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/config", lb->root);
    int r = 0;
    if (stat(p, &st) == 0) r = cr_error(-EEXIST, "config file already exists");
    static const char *const dirs[] = {"data", "index", "keys", "locks", "snapshots"};
    for (size_t i = 0; r == 0 && i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", lb->root, dirs[i]);
        r = mkdir_p(p, 0700);
    }
    for (int i = 0; r == 0 && i < 256; i++) {
        snprintf(p, sizeof p, "%s/data/%02x", lb->root, i);
        r = mkdir_p(p, 0700);
    }
    if (r < 0) {
        free(lb->root);
        free(lb);
        return r;
    }
    lb->base.lists_at_once = lists_at_once(lb->root);
    *out = &lb->base;
    return 0;
}

static void local_close(cr_backend *b)
{
    local_backend *lb = as_local(b);
    free(lb->root);
    free(b->location);
    free(lb);
}

static int local_stat(cr_backend *b, cr_filetype t, const char *name, uint64_t *size)
{
    char p[PATH_MAX];
    CR_TRY(object_path(as_local(b), t, name, p, sizeof p));
    struct stat st;
    if (stat(p, &st) < 0) return errno == ENOENT ? -ENOENT : cr_error_sys(-errno, "stat %s", p);
    *size = (uint64_t)st.st_size;
    return 0;
}

static int read_fully(int fd, uint8_t *dst, size_t n, uint64_t off, const char *p)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(fd, dst + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return cr_error_sys(-errno, "read %s", p);
        if (k == 0) return cr_error(-EIO, "read %s: unexpected end of file (wanted %zu bytes at offset %llu)", p, n, (unsigned long long)off);
        done += (size_t)k;
    }
    return 0;
}

static int local_load(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out)
{
    char p[PATH_MAX];
    CR_TRY(object_path(as_local(b), t, name, p, sizeof p));
    _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? cr_error(-ENOENT, "open %s: no such file or directory", p) : cr_error_sys(-errno, "open %s", p);
    if (len == 0) {
        struct stat st;
        if (fstat(fd, &st) < 0) return cr_error_sys(-errno, "stat %s", p);
        if ((uint64_t)st.st_size < off) return cr_error(-EIO, "read %s: offset %llu beyond end of file", p, (unsigned long long)off);
        len = (uint64_t)st.st_size - off;
    }
    if (len > SIZE_MAX / 2) return cr_error(-EFBIG, "%s: object too large", p);
    cr_buf_reset(out);
    CR_TRY(cr_buf_resize(out, (size_t)len));
    return read_fully(fd, out->data, (size_t)len, off, p);
}

static int write_fully(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -errno;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int fsync_dir(const char *file_path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file_path);
    char *slash = strrchr(dir, '/');
    if (!slash) return 0;
    *slash = 0;
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return 0;
    /* Some filesystems refuse fsync on directories; the rename is still atomic. */
    (void)fsync(fd);
    return 0;
}

/* Write to "<name>-tmp-<random>" in the same folder, fsync, rename. */
static int local_save(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n)
{
    char p[PATH_MAX], tmp[PATH_MAX + 32];
    CR_TRY(object_path(as_local(b), t, name, p, sizeof p));
    char *slash = strrchr(p, '/');
    *slash = 0;
    CR_TRY(mkdir_p(p, 0700));
    *slash = '/';
    snprintf(tmp, sizeof tmp, "%s-tmp-XXXXXX", p);
    _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) return cr_error_sys(-errno, "create %s", tmp);
    int r = write_fully(fd, data, n);
    if (r == 0 && fsync(fd) < 0) r = -errno;
    if (r == 0 && fchmod(fd, 0400) < 0) r = -errno;
    if (r == 0 && t != CR_FILE_CONFIG && link(tmp, p) < 0) r = -errno; /* never replace an existing object */
    if (r == 0 && t == CR_FILE_CONFIG && rename(tmp, p) < 0) r = -errno;
    if (r < 0 || t != CR_FILE_CONFIG) unlink(tmp);
    if (r == -EEXIST) return cr_error(-EEXIST, "%s already exists", p);
    if (r < 0) return cr_error_sys(r, "write %s", p);
    return fsync_dir(p);
}

/* ---- streamed saves ------------------------------------------------------
 * An unnamed file (O_TMPFILE) in the type's folder, so that a crash leaves
 * nothing behind; it gets its name by a hard link through /proc at commit.
 * Where either is missing, a temporary name in that folder (not 64 hex, so
 * every lister skips it) is linked instead, as local_save does. */

typedef struct {
    int fd;
    char dir[PATH_MAX];      /* for messages */
    char tmp[PATH_MAX + 32]; /* "" for an unnamed file */
} local_stream;

/* Tests force the named-temporary-file way with CRESTIC_LOCAL_NO_TMPFILE. */
static bool tmpfile_usable(void)
{
    return !getenv("CRESTIC_LOCAL_NO_TMPFILE") && access("/proc/self/fd", X_OK) == 0;
}

static int local_stream_open(cr_backend *b, cr_filetype t, void **h)
{
    local_backend *lb = as_local(b);
    local_stream *s = calloc(1, sizeof *s);
    if (!s) return cr_error(-ENOMEM, "out of memory");
    char *dir = s->dir;
    snprintf(dir, sizeof s->dir, "%s/%s", lb->root, cr_filetype_dir(t));
    int r = mkdir_p(dir, 0700);
    s->fd = -1;
    if (r == 0 && tmpfile_usable()) s->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (r == 0 && s->fd < 0) {
        snprintf(s->tmp, sizeof s->tmp, "%s/tmp-XXXXXX", dir);
        s->fd = mkostemp(s->tmp, O_CLOEXEC);
        if (s->fd < 0) r = cr_error_sys(-errno, "create %s", s->tmp);
    }
    if (r < 0) {
        free(s);
        return r;
    }
    *h = s;
    return 0;
}

static int local_stream_write(cr_backend *b, void *h, const void *data, size_t n)
{
    (void)b;
    local_stream *s = h;
    int r = write_fully(s->fd, data, n);
    return r < 0 ? s->tmp[0] ? cr_error_sys(r, "write %s", s->tmp) : cr_error_sys(r, "write a new file in %s", s->dir) : 0;
}

static void local_stream_abort(cr_backend *b, void *h)
{
    (void)b;
    local_stream *s = h;
    if (s->fd >= 0) close(s->fd);
    if (s->tmp[0]) unlink(s->tmp);
    free(s);
}

/* Durable, read-only, then visible under its name (never replacing one). */
static int local_stream_commit(cr_backend *b, void *h, cr_filetype t, const char *name)
{
    local_stream *s = h;
    char p[PATH_MAX];
    int r = object_path(as_local(b), t, name, p, sizeof p);
    if (r == 0) {
        char *slash = strrchr(p, '/');
        *slash = 0;
        r = mkdir_p(p, 0700);
        *slash = '/';
    }
    if (r == 0 && fsync(s->fd) < 0) r = cr_error_sys(-errno, "write %s", p);
    /* Durable now, and not read again soon: free its page cache for the next
     * pack rather than push the user's files out. */
    if (r == 0) (void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);
    if (r == 0 && fchmod(s->fd, 0400) < 0) r = cr_error_sys(-errno, "write %s", p);
    if (r == 0) {
        char src[64];
        snprintf(src, sizeof src, "/proc/self/fd/%d", s->fd);
        int k = s->tmp[0] ? link(s->tmp, p) : linkat(AT_FDCWD, src, AT_FDCWD, p, AT_SYMLINK_FOLLOW);
        if (k < 0 && errno == EEXIST) r = cr_error(-EEXIST, "%s already exists", p);
        else if (k < 0) r = cr_error_sys(-errno, "write %s", p);
    }
    local_stream_abort(b, s); /* closes, and drops the temporary name */
    return r < 0 ? r : fsync_dir(p);
}

static const cr_backend_stream_ops local_stream_ops = {
    .open = local_stream_open,
    .write = local_stream_write,
    .commit = local_stream_commit,
    .abort = local_stream_abort,
};

static int local_remove(cr_backend *b, cr_filetype t, const char *name)
{
    char p[PATH_MAX];
    CR_TRY(object_path(as_local(b), t, name, p, sizeof p));
    if (unlink(p) < 0 && errno != ENOENT) {
        /* Read-only files in a folder we own can still be unlinked; EACCES means the folder. */
        return cr_error_sys(-errno, "remove %s", p);
    }
    return 0;
}

static int list_dir(const char *dir, cr_list_cb cb, void *ud)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT || errno == ENOTDIR ? 0 : cr_error_sys(-errno, "open %s", dir);
    int r = 0;
    struct dirent *e;
    while (r == 0 && (errno = 0, e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (!cr_is_hex_name(e->d_name, len)) continue; /* temporary files, junk */
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) < 0) {
            if (errno == ENOENT) continue; /* removed while listing */
            r = cr_error_sys(-errno, "stat %s/%s", dir, e->d_name);
            break;
        }
        if (!S_ISREG(st.st_mode)) continue;
        r = cb(ud, e->d_name, (uint64_t)st.st_size);
    }
    if (r == 0 && errno) r = cr_error_sys(-errno, "read directory %s", dir);
    closedir(d);
    return r;
}

static int local_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud)
{
    local_backend *lb = as_local(b);
    char dir[PATH_MAX];
    if (t == CR_FILE_CONFIG) return 0;
    if (t != CR_FILE_PACK) {
        snprintf(dir, sizeof dir, "%s/%s", lb->root, cr_filetype_dir(t));
        return list_dir(dir, cb, ud);
    }
    /* data/XX/: list whatever two-hex-digit folders exist. */
    snprintf(dir, sizeof dir, "%s/data", lb->root);
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : cr_error_sys(-errno, "open %s", dir);
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d))) {
        const char *n = e->d_name;
        if (strlen(n) != 2 || !strchr("0123456789abcdef", n[0]) || !strchr("0123456789abcdef", n[1])) continue;
        char sub[PATH_MAX + 4];
        snprintf(sub, sizeof sub, "%s/%s", dir, n);
        r = list_dir(sub, cb, ud);
    }
    closedir(d);
    return r;
}

const cr_backend_ops cr_backend_local = {
    .scheme = "local",
    .open = local_open,
    .create = local_create,
    .close = local_close,
    .stat = local_stat,
    .load = local_load,
    .save = local_save,
    .remove = local_remove,
    .list = local_list,
};
