/* Nodes from lstat(), exactly as restic 0.14 records them on Linux (spec
 * §12.2), plus the lookups that make that cheap: local-zone offsets and
 * user/group names are cached. */
#include "repo/archive_internal.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

/* ---- local time ---------------------------------------------------------- */

/* Zone offsets only change at transitions, which real zones place at most
 * once per hour: an hour whose first and last second have the same offset
 * has it throughout.  Each thread keeps a small direct-mapped cache. */
#define TZ_CACHE 256

typedef struct {
    int64_t hour;
    int32_t offset;
    unsigned gen;
} tz_entry;

static atomic_uint tz_generation = 1;
static _Thread_local tz_entry tz_cache[TZ_CACHE];

void cr_arch_time_init(void)
{
    tzset();
    atomic_fetch_add(&tz_generation, 1);
}

static bool offset_at(int64_t sec, int32_t *off)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if ((int64_t)t != sec || !localtime_r(&t, &tm)) return false;
    *off = (int32_t)tm.tm_gmtoff;
    return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

cr_time cr_arch_time(int64_t sec, int32_t nsec)
{
    cr_time t = {.sec = sec, .nsec = nsec, .offset = 0};
    int64_t hour = floor_div(sec, 3600);
    unsigned gen = atomic_load_explicit(&tz_generation, memory_order_relaxed);
    tz_entry *e = &tz_cache[(uint64_t)hour % TZ_CACHE];
    if (e->gen == gen && e->hour == hour) {
        t.offset = e->offset;
        return t;
    }
    int32_t a = 0, b = 0;
    if (!offset_at(hour * 3600, &a) || !offset_at(hour * 3600 + 3599, &b) || a != b) {
        int32_t o = 0;
        if (offset_at(sec, &o)) t.offset = o;
        return t;
    }
    *e = (tz_entry){hour, a, gen};
    t.offset = a;
    return t;
}

/* ---- user and group names ------------------------------------------------- */

typedef struct name_entry {
    uint32_t id;
    char *name;
    struct name_entry *next;
} name_entry;

static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER;
static name_entry *users[64], *groups[64];

static char *lookup_user(uint32_t uid)
{
    char buf[16384];
    struct passwd pw, *res = NULL;
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || !res) return strdup("");
    return strdup(res->pw_name);
}

static char *lookup_group(uint32_t gid)
{
    char buf[65536];
    struct group gr, *res = NULL;
    if (getgrgid_r(gid, &gr, buf, sizeof buf, &res) != 0 || !res) return strdup("");
    return strdup(res->gr_name);
}

static const char *cached_name(name_entry **table, uint32_t id, char *(*lookup)(uint32_t))
{
    pthread_mutex_lock(&names_mu);
    name_entry **slot = &table[id % 64];
    for (name_entry *e = *slot; e; e = e->next)
        if (e->id == id) {
            pthread_mutex_unlock(&names_mu);
            return e->name;
        }
    name_entry *e = calloc(1, sizeof *e);
    char *name = lookup(id);
    if (!e || !name) {
        free(e);
        free(name);
        pthread_mutex_unlock(&names_mu);
        return "";
    }
    e->id = id;
    e->name = name;
    e->next = *slot;
    *slot = e;
    pthread_mutex_unlock(&names_mu);
    return name;
}

const char *cr_arch_user_name(uint32_t uid) { return cached_name(users, uid, lookup_user); }
const char *cr_arch_group_name(uint32_t gid) { return cached_name(groups, gid, lookup_group); }

/* ---- nodes ---------------------------------------------------------------- */

static cr_node_type type_of(mode_t m)
{
    switch (m & S_IFMT) {
    case S_IFREG: return CR_NODE_FILE;
    case S_IFDIR: return CR_NODE_DIR;
    case S_IFLNK: return CR_NODE_SYMLINK;
    case S_IFBLK: return CR_NODE_DEV;
    case S_IFCHR: return CR_NODE_CHARDEV;
    case S_IFIFO: return CR_NODE_FIFO;
    case S_IFSOCK: return CR_NODE_SOCKET;
    default: return CR_NODE_IRREGULAR;
    }
}

void cr_arch_node_apply_stat(cr_node *n, const struct stat *st, bool with_atime)
{
    n->type = type_of(st->st_mode);
    n->type_name = NULL;
    n->mode = cr_mode_from_posix(st->st_mode);
    n->mtime = cr_arch_time(st->st_mtim.tv_sec, (int32_t)st->st_mtim.tv_nsec);
    n->atime = with_atime ? cr_arch_time(st->st_atim.tv_sec, (int32_t)st->st_atim.tv_nsec) : n->mtime;
    n->ctime = cr_arch_time(st->st_ctim.tv_sec, (int32_t)st->st_ctim.tv_nsec);
    n->uid = st->st_uid;
    n->gid = st->st_gid;
    const char *u = cr_arch_user_name(st->st_uid), *g = cr_arch_group_name(st->st_gid);
    n->user = *u ? u : NULL;
    n->group = *g ? g : NULL;
    n->inode = st->st_ino;
    n->device_id = st->st_dev;
    n->size = n->type == CR_NODE_FILE ? (uint64_t)st->st_size : 0;
    bool counts_links = n->type == CR_NODE_FILE || n->type == CR_NODE_SYMLINK || n->type == CR_NODE_DEV ||
                        n->type == CR_NODE_CHARDEV;
    n->links = counts_links ? st->st_nlink : 0;
    n->device = n->type == CR_NODE_DEV || n->type == CR_NODE_CHARDEV ? st->st_rdev : 0;
    n->content_null = n->type != CR_NODE_FILE;
}

static int read_link(cr_node *n, const char *path, const struct stat *st, cr_arena *arena)
{
    size_t cap = st->st_size > 0 ? (size_t)st->st_size + 1 : 256;
    for (;;) {
        char *buf = malloc(cap);
        if (!buf) return cr_error(-ENOMEM, "out of memory");
        ssize_t len = readlink(path, buf, cap);
        if (len < 0) {
            int e = errno;
            free(buf);
            return cr_error_sys(-e, "Readlink: readlink %s", path);
        }
        if ((size_t)len < cap) {
            n->linktarget = cr_arena_strndup(arena, buf, (size_t)len);
            n->linktarget_len = (size_t)len;
            free(buf);
            return n->linktarget ? 0 : cr_error(-ENOMEM, "out of memory");
        }
        free(buf);
        cap *= 2;
    }
}

/* llistxattr with a buffer that grows when the list grows meanwhile. */
static ssize_t list_xattrs(const char *path, char **out)
{
    *out = NULL;
    for (int tries = 0; tries < 8; tries++) {
        ssize_t size = llistxattr(path, NULL, 0);
        if (size <= 0) return size;
        char *buf = malloc((size_t)size);
        if (!buf) return errno = ENOMEM, -1;
        ssize_t got = llistxattr(path, buf, (size_t)size);
        if (got >= 0) return *out = buf, got;
        free(buf);
        if (errno != ERANGE) return -1;
    }
    return errno = ERANGE, -1;
}

static const uint8_t empty_value[1];

/* One value; 0 and *skip when it vanished meanwhile. */
static int get_xattr(const char *path, const char *name, cr_arena *arena, cr_xattr *x, bool *skip)
{
    *skip = false;
    for (int tries = 0; tries < 8; tries++) {
        ssize_t size = lgetxattr(path, name, NULL, 0);
        if (size < 0) break;
        uint8_t *buf = size ? cr_arena_alloc(arena, (size_t)size) : NULL;
        if (size && !buf) return -ENOMEM;
        ssize_t got = size ? lgetxattr(path, name, buf, (size_t)size) : 0;
        if (got < 0 && errno == ERANGE) continue;
        if (got < 0) break;
        x->value = got ? buf : empty_value;
        x->value_len = (size_t)got;
        return 0;
    }
    if (errno == ENODATA) return *skip = true, 0;
    return -errno;
}

/* Extended attributes in listing order (restic keeps that order). */
static int read_xattrs(cr_node *n, const char *path, cr_arena *arena, cr_buf *warn)
{
    char *list = NULL;
    ssize_t len = list_xattrs(path, &list);
    if (len < 0) {
        int e = errno;
        if (e == ENOTSUP || e == ENODATA) return 0;
        cr_buf_printf(warn, "listxattr %s: %s", path, strerror(e));
        return 0;
    }
    size_t count = 0;
    for (ssize_t i = 0; i < len; i++) count += list[i] == 0;
    if (!count) return free(list), 0;
    n->xattrs = cr_arena_alloc(arena, count * sizeof *n->xattrs);
    if (!n->xattrs) return free(list), cr_error(-ENOMEM, "out of memory");
    size_t k = 0;
    for (const char *p = list; p < list + len; p += strlen(p) + 1) {
        if (!*p) continue;
        cr_xattr *x = &n->xattrs[k];
        bool skip;
        int r = get_xattr(path, p, arena, x, &skip);
        if (r == -ENOMEM) return free(list), cr_error(-ENOMEM, "out of memory");
        if (r < 0) {
            if (warn->len) cr_buf_puts(warn, "; ");
            cr_buf_printf(warn, "can not obtain extended attribute %s for %s: %s", p, path, strerror(-r));
            continue;
        }
        if (skip) continue;
        if (!(x->name = cr_arena_strndup(arena, p, strlen(p)))) return free(list), cr_error(-ENOMEM, "out of memory");
        k++;
    }
    n->nxattrs = k;
    free(list);
    return 0;
}

int cr_arch_node_from_stat(cr_node *n, const char *path, const struct stat *st, bool with_atime, cr_arena *arena,
                           cr_buf *warn)
{
    const char *name = n->name;
    size_t name_len = n->name_len;
    memset(n, 0, sizeof *n);
    n->name = name;
    n->name_len = name_len;
    cr_buf_reset(warn);
    cr_arch_node_apply_stat(n, st, with_atime);
    if (n->type == CR_NODE_SYMLINK) return read_link(n, path, st, arena); /* 0.14: no xattrs on symlinks */
    return read_xattrs(n, path, arena, warn);
}

/* ---- equality ---------------------------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

static bool same_xattrs(const cr_node *a, const cr_node *b)
{
    if (a->nxattrs != b->nxattrs) return false;
    for (size_t i = 0; i < a->nxattrs; i++) {
        const cr_xattr *x = &a->xattrs[i];
        bool found = false;
        for (size_t k = 0; k < b->nxattrs && !found; k++) {
            const cr_xattr *y = &b->xattrs[k];
            found = !strcmp(x->name, y->name) && x->value_len == y->value_len &&
                    (!x->value_len || !memcmp(x->value, y->value, x->value_len));
        }
        if (!found) return false;
    }
    return true;
}

static bool same_time(const cr_time *a, const cr_time *b)
{
    return cr_time_cmp(a, b) == 0;
}

bool cr_arch_node_equal(const cr_node *a, const cr_node *b)
{
    if (a->name_len != b->name_len || memcmp(a->name, b->name, a->name_len)) return false;
    if (a->type != b->type || a->mode != b->mode) return false;
    if (!same_time(&a->mtime, &b->mtime) || !same_time(&a->atime, &b->atime) || !same_time(&a->ctime, &b->ctime))
        return false;
    if (a->uid != b->uid || a->gid != b->gid || !same_str(a->user, b->user) || !same_str(a->group, b->group))
        return false;
    if (a->inode != b->inode || a->device_id != b->device_id || a->size != b->size || a->links != b->links)
        return false;
    if (a->linktarget_len != b->linktarget_len ||
        (a->linktarget_len && memcmp(a->linktarget, b->linktarget, a->linktarget_len)))
        return false;
    if (a->device != b->device) return false;
    bool a_nil = a->content_null && !a->ncontent, b_nil = b->content_null && !b->ncontent;
    if (a_nil != b_nil || a->ncontent != b->ncontent) return false;
    for (size_t i = 0; i < a->ncontent; i++)
        if (!cr_id_eq(&a->content[i], &b->content[i])) return false;
    if (!same_xattrs(a, b)) return false;
    if (a->has_subtree != b->has_subtree || (a->has_subtree && !cr_id_eq(&a->subtree, &b->subtree))) return false;
    return same_str(a->error, b->error);
}
