/* The archiver (see archiver.h): the walk, change detection against the
 * parent snapshot, directories and trees.  File contents are handled by
 * archive_file.c. */
#include "repo/archiver.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repo/archive_pipeline.h"
#include "repo/index.h"
#include "util/cleanup.h"
#include "util/error.h"

double arch_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool arch_stopped(cr_archiver *a)
{
    return atomic_load_explicit(&a->fatal, memory_order_relaxed) || (a->o.cancel && *a->o.cancel);
}

bool arch_soft_stopped(cr_archiver *a)
{
    return a->o.soft_stop && *a->o.soft_stop;
}

void arch_set_fatal(cr_archiver *a, int code)
{
    int zero = 0;
    if (atomic_compare_exchange_strong(&a->fatal, &zero, code))
        snprintf(a->fatal_msg, sizeof a->fatal_msg, "%s", cr_error_message());
}

static void lower_first(char *s)
{
    if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z')) s[0] = (char)(s[0] - 'A' + 'a');
}

/* Go's lower-case error text for an errno. */
static const char *errstr(int e, char *buf, size_t n)
{
    snprintf(buf, n, "%s", strerror(e));
    lower_first(buf);
    return buf;
}

void arch_report(cr_archiver *a, const char *item, const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&a->cb_mu);
    a->sum.errors++;
    if (a->o.on_error) a->o.on_error(a->o.ud, item, msg);
    pthread_mutex_unlock(&a->cb_mu);
}

void arch_item_done(cr_archiver *a, const char *snpath, bool is_dir, const cr_node *prev, const cr_node *cur,
                    const cr_item_stats *st, double start)
{
    cr_item_action act = !prev ? CR_ITEM_NEW : cr_arch_node_equal(prev, cur) ? CR_ITEM_UNCHANGED : CR_ITEM_MODIFIED;
    pthread_mutex_lock(&a->cb_mu);
    cr_archive_summary *s = &a->sum;
    s->processed_bytes += cur->size;
    if (is_dir) {
        if (act == CR_ITEM_NEW) s->dirs_new++;
        else if (act == CR_ITEM_UNCHANGED) s->dirs_unmodified++;
        else s->dirs_changed++;
    } else {
        if (act == CR_ITEM_NEW) s->files_new++;
        else if (act == CR_ITEM_UNCHANGED) s->files_unmodified++;
        else s->files_changed++;
    }
    if (a->o.on_item) {
        static const cr_item_stats none;
        a->o.on_item(a->o.ud, snpath, is_dir, act, st ? st : &none, arch_now() - start);
    }
    pthread_mutex_unlock(&a->cb_mu);
}

/* ---- directories ------------------------------------------------------------- */

static int cmp_name(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static bool tree_is_sorted(const cr_tree *t)
{
    for (size_t i = 1; i < t->n; i++)
        if (cmp_name(t->nodes[i - 1].name, t->nodes[i - 1].name_len, t->nodes[i].name, t->nodes[i].name_len) >= 0)
            return false;
    return true;
}

/* Looks names up in a previous tree; names must come in increasing order,
 * as the walk produces them. */
typedef struct {
    const cr_tree *t;
    size_t pos;
    bool sorted;
} prev_finder;

static void finder_init(prev_finder *f, const cr_tree *t)
{
    f->t = t;
    f->pos = 0;
    f->sorted = t && tree_is_sorted(t);
}

static const cr_node *finder_find(prev_finder *f, const char *name, size_t len)
{
    if (!f->t) return NULL;
    if (!f->sorted) return cr_tree_find(f->t, name, len);
    while (f->pos < f->t->n) {
        const cr_node *n = &f->t->nodes[f->pos];
        int c = cmp_name(n->name, n->name_len, name, len);
        if (c == 0) return n;
        if (c > 0) return NULL;
        f->pos++;
    }
    return NULL;
}

static arch_dir *dir_new(arch_dir *parent, size_t slot, const char *snpath, size_t nslots)
{
    arch_dir *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->parent = parent;
    d->slot_in_parent = slot;
    d->node = parent ? &parent->slots[slot].node : NULL;
    d->start = arch_now();
    atomic_init(&d->pending, 1);
    if (!(d->snpath = strdup(snpath)) || (nslots && !(d->slots = calloc(nslots, sizeof *d->slots)))) {
        free(d->snpath);
        free(d);
        return NULL;
    }
    d->nslots = nslots;
    return d;
}

static void dir_free(arch_dir *d)
{
    for (size_t i = 0; i < d->nslots; i++)
        if (d->slots[i].owns_content) free(d->slots[i].node.content);
    free(d->slots);
    cr_tree_free(d->prev);
    cr_arena_free(&d->arena);
    free(d->snpath);
    free(d);
}

/* Encode and store the directory's tree; returns its ID. */
static int save_dir_tree(cr_archiver *a, arch_dir *d, cr_id *id, cr_item_stats *st)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nslots; i++) n += d->slots[i].ok;
    cr_node *nodes = n ? malloc(n * sizeof *nodes) : NULL;
    if (n && !nodes) return cr_error(-ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < d->nslots; i++)
        if (d->slots[i].ok) nodes[k++] = d->slots[i].node;
    cr_buf json = CR_BUF_INIT;
    int r = cr_tree_encode(&json, nodes, n);
    bool added = false;
    if (r == 0) r = arch_save_blob(a, CR_BLOB_TREE, json.data, json.len, id, &added);
    if (r == 0 && added) {
        st->tree_blobs++;
        st->tree_size += json.len;
    }
    if (!d->parent) a->root_empty = n == 0;
    cr_buf_free(&json);
    free(nodes);
    return r;
}

/* Every child is done: write the tree, fill in our node, tell the parent. */
static void dir_finish(cr_archiver *a, arch_dir *d)
{
    arch_dir *parent = d->parent;
    if (!arch_stopped(a) && !d->dropped) {
        cr_id id;
        cr_item_stats st = {0};
        int r = save_dir_tree(a, d, &id, &st);
        if (r < 0) arch_set_fatal(a, r);
        else if (!parent) {
            a->root = id;
            a->root_done = true;
        } else {
            d->node->subtree = id;
            d->node->has_subtree = true;
            d->node->content_null = true;
            parent->slots[d->slot_in_parent].ok = true;
            atomic_fetch_add(&a->dirs_done, 1);
            size_t len = strlen(d->snpath);
            char *item = malloc(len + 2);
            if (item) {
                memcpy(item, d->snpath, len);
                memcpy(item + len, "/", 2);
            }
            arch_item_done(a, item ? item : d->snpath, true, d->prev_node, d->node, &st, d->start);
            free(item);
        }
    }
    dir_free(d);
    if (parent) arch_dir_release(a, parent);
}

void arch_dir_release(cr_archiver *a, arch_dir *d)
{
    if (atomic_fetch_sub(&d->pending, 1) == 1) dir_finish(a, d);
}

/* ---- the walk ----------------------------------------------------------------- */

typedef struct {
    const char *path;    /* as restic opens it (relative targets stay relative) */
    const char *abspath; /* for excludes and error items */
    const char *snpath;  /* inside the snapshot */
} item_paths;

static void report_errno(cr_archiver *a, const item_paths *p, const char *op, int e)
{
    char eb[128];
    arch_report(a, p->abspath, "%s %s: %s", op, p->path, errstr(e, eb, sizeof eb));
}

/* restic's fileChanged(): may the parent's content list be reused? */
static bool file_unchanged(const cr_archiver *a, const char *abspath, const cr_node *prev, const struct stat *st)
{
    if (!prev || prev->type != CR_NODE_FILE || prev->size != (uint64_t)st->st_size) return false;
    cr_time mtime = {.sec = st->st_mtim.tv_sec, .nsec = (int32_t)st->st_mtim.tv_nsec};
    if (cr_time_cmp(&mtime, &prev->mtime) != 0) return false;
    bool check_ctime = !a->o.ignore_ctime && !a->o.ignore_inode;
    cr_time ctime = {.sec = st->st_ctim.tv_sec, .nsec = (int32_t)st->st_ctim.tv_nsec};
    bool same = (!check_ctime || cr_time_cmp(&ctime, &prev->ctime) == 0) &&
                (a->o.ignore_inode || prev->inode == (uint64_t)st->st_ino);
    return same || (a->o.trust_unchanged && a->o.trust_unchanged(a->o.trust_ud, abspath, st, prev));
}

static bool all_blobs_present(cr_archiver *a, const cr_node *prev)
{
    for (size_t i = 0; i < prev->ncontent; i++)
        if (!cr_writer_has_blob(a->w, CR_BLOB_DATA, &prev->content[i])) return false;
    return true;
}

void arch_defer_file(cr_archiver *a, arch_dir *d, size_t idx, const char *snpath, const cr_node *prev)
{
    pthread_mutex_lock(&a->cb_mu);
    a->sum.files_deferred++;
    pthread_mutex_unlock(&a->cb_mu);
    if (!prev || prev->type != CR_NODE_FILE || !all_blobs_present(a, prev)) return;
    arch_slot *s = &d->slots[idx];
    const char *name = s->node.name;
    size_t name_len = s->node.name_len;
    s->node = *prev; /* borrowed, as the content of an unchanged file */
    s->node.name = name;
    s->node.name_len = name_len;
    s->ok = true;
    (void)snpath; /* counted as deferred only: neither new, changed nor unmodified */
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void submit_file(cr_archiver *a, arch_dir *d, size_t idx, const item_paths *p, const cr_node *prev)
{
    arch_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = dup_or_null(p->path)) || !(f->abspath = dup_or_null(p->abspath)) ||
        !(f->snpath = dup_or_null(p->snpath))) {
        if (f) free(f->path), free(f->abspath), free(f->snpath);
        free(f);
        arch_set_fatal(a, cr_error(-ENOMEM, "out of memory"));
        return;
    }
    f->dir = d;
    f->slot = idx;
    f->prev = prev;
    f->fd = -1;
    f->start = arch_now();
    pthread_mutex_init(&f->mu, NULL);
    atomic_init(&f->pending, 1);
    atomic_fetch_add(&d->pending, 1);
    arch_file_submit(a, f);
}

static void regular_file(cr_archiver *a, arch_dir *d, size_t idx, const item_paths *p, const struct stat *st,
                         const cr_node *prev)
{
    arch_slot *s = &d->slots[idx];
    if (prev && file_unchanged(a, p->abspath, prev, st)) {
        if (all_blobs_present(a, prev)) {
            s->node.content = prev->content; /* borrowed: the parent tree outlives this slot */
            s->node.ncontent = prev->ncontent;
            s->node.content_null = false;
            s->ok = true;
            atomic_fetch_add(&a->files_done, 1);
            atomic_fetch_add(&a->bytes_done, prev->size);
            arch_item_done(a, p->snpath, false, prev, prev, NULL, arch_now());
            return;
        }
        arch_report(a, p->abspath, "parts of %s not found in the repository index; storing the file again", p->path);
    }
    if (arch_soft_stopped(a)) return arch_defer_file(a, d, idx, p->snpath, prev);
    if (st->st_size < (off_t)CR_CHUNK_MIN && arch_small_file(a, d, idx, p->path, p->abspath, p->snpath, prev)) return;
    submit_file(a, d, idx, p, prev);
}

static int walk_dir(cr_archiver *a, arch_dir *d, const item_paths *p);
static void push_dir_task(cr_archiver *a, arch_dir *child, const item_paths *p);

/* Load the parent snapshot's tree of a directory; a failure is reported and
 * the directory is then treated as new, as restic does. */
static cr_tree *load_prev_tree(cr_archiver *a, const cr_node *prev, const char *item)
{
    if (!prev || prev->type != CR_NODE_DIR || !prev->has_subtree) return NULL;
    cr_buf blob = CR_BUF_INIT;
    cr_tree *t = NULL;
    int r = cr_repo_load_blob(a->repo, CR_BLOB_TREE, &prev->subtree, &blob);
    if (r == 0) r = cr_tree_parse((const char *)blob.data, blob.len, &t);
    cr_buf_free(&blob);
    if (r < 0) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&prev->subtree, hex);
        size_t count = 0;
        if (cr_index_lookup(a->repo->index, CR_BLOB_TREE, &prev->subtree, &count))
            arch_report(a, item, "tree %s could not be loaded; the repository could be damaged: %s", hex, cr_error_message());
        else
            arch_report(a, item, "tree %s is not known; the repository could be damaged, run `repair index` to try to repair it", hex);
        return NULL;
    }
    return t;
}

/* A directory entry (or a target): exclude, lstat, build the node, and
 * either finish it here or hand it on. */
static void process_entry(cr_archiver *a, arch_dir *d, size_t idx, const item_paths *p, const cr_node *prev,
                          bool explicit_target, cr_buf *warn)
{
    cr_excluder *ex = a->o.excluder;
    if (!explicit_target && cr_excluder_reject_path(ex, p->abspath)) {
        if (a->o.on_excluded) a->o.on_excluded(a->o.ud, p->abspath);
        return;
    }
    struct stat st;
    if (lstat(p->path, &st) < 0) {
        if (errno != ENOENT) report_errno(a, p, "lstat", errno); /* vanished since listed: not an error */
        return;
    }
    if (!explicit_target && cr_excluder_reject_stat(ex, p->abspath, &st)) {
        if (a->o.on_excluded) a->o.on_excluded(a->o.ud, p->abspath);
        return;
    }
    if (S_ISSOCK(st.st_mode)) return; /* restic does not store sockets */
    arch_slot *s = &d->slots[idx];
    int r = cr_arch_node_from_stat(&s->node, p->path, &st, a->o.with_atime, &d->arena, warn);
    if (r == -ENOMEM) return arch_set_fatal(a, r);
    if (r < 0) return arch_report(a, p->abspath, "%s", cr_error_message());
    if (warn->len) arch_report(a, p->abspath, "incomplete metadata for %s: %.*s", p->path, (int)warn->len, (const char *)warn->data);
    if (S_ISREG(st.st_mode)) return regular_file(a, d, idx, p, &st, prev);
    if (!S_ISDIR(st.st_mode)) {
        s->ok = true;
        return;
    }
    arch_dir *child = dir_new(d, idx, p->snpath, 0);
    if (!child) return arch_set_fatal(a, cr_error(-ENOMEM, "out of memory"));
    child->prev_node = prev;
    atomic_fetch_add(&d->pending, 1);
    push_dir_task(a, child, p);
}

/* ---- walking directories on several threads ----------------------------------- */

/* A directory waiting to be listed.  Tasks form a stack, so the walk stays
 * close to depth-first and the number of open directories small. */
typedef struct dir_task {
    arch_dir *dir;
    char *path, *abspath, *snpath;
    struct dir_task *next;
} dir_task;

static void push_dir_task(cr_archiver *a, arch_dir *child, const item_paths *p)
{
    size_t l1 = strlen(p->path) + 1, l2 = strlen(p->abspath) + 1, l3 = strlen(p->snpath) + 1;
    dir_task *t = malloc(sizeof *t + l1 + l2 + l3);
    if (!t) {
        arch_set_fatal(a, cr_error(-ENOMEM, "out of memory"));
        arch_dir_release(a, child);
        return;
    }
    t->dir = child;
    t->path = (char *)(t + 1);
    t->abspath = t->path + l1;
    t->snpath = t->abspath + l2;
    memcpy(t->path, p->path, l1);
    memcpy(t->abspath, p->abspath, l2);
    memcpy(t->snpath, p->snpath, l3);
    pthread_mutex_lock(&a->wq_mu);
    t->next = a->wq_top;
    a->wq_top = t;
    a->wq_outstanding++;
    pthread_cond_signal(&a->wq_cv);
    pthread_mutex_unlock(&a->wq_mu);
}

static void run_dir_task(cr_archiver *a, dir_task *t)
{
    arch_dir *d = t->dir;
    if (!arch_stopped(a)) {
        item_paths p = {t->path, t->abspath, t->snpath};
        d->prev = load_prev_tree(a, d->prev_node, t->abspath);
        if (walk_dir(a, d, &p) == -ENOMEM) arch_set_fatal(a, cr_error(-ENOMEM, "out of memory"));
    }
    arch_dir_release(a, d);
    free(t);
}

/* Take and run directory tasks until none are left and no more can come. */
static void walk_tasks(cr_archiver *a)
{
    pthread_mutex_lock(&a->wq_mu);
    for (;;) {
        dir_task *t = a->wq_top;
        if (!t) {
            if (!a->wq_outstanding && !a->wq_producing) break;
            pthread_cond_wait(&a->wq_cv, &a->wq_mu);
            continue;
        }
        a->wq_top = t->next;
        pthread_mutex_unlock(&a->wq_mu);
        run_dir_task(a, t);
        pthread_mutex_lock(&a->wq_mu);
        if (!--a->wq_outstanding && !a->wq_producing) pthread_cond_broadcast(&a->wq_cv);
    }
    pthread_mutex_unlock(&a->wq_mu);
}

static void *walker_main(void *arg)
{
    walk_tasks(arg);
    arch_small_file_cleanup();
    return NULL;
}

static void walkers_start(cr_archiver *a)
{
    pthread_mutex_init(&a->wq_mu, NULL);
    pthread_cond_init(&a->wq_cv, NULL);
    a->wq_producing = true;
    for (unsigned i = 1; i < a->nwalkers; i++)
        if (pthread_create(&a->walkers[a->walkers_started], NULL, walker_main, a) == 0) a->walkers_started++;
}

/* The targets are placed: help walking, then wait for the other walkers. */
static void walkers_finish(cr_archiver *a)
{
    pthread_mutex_lock(&a->wq_mu);
    a->wq_producing = false;
    pthread_cond_broadcast(&a->wq_cv);
    pthread_mutex_unlock(&a->wq_mu);
    walk_tasks(a);
    arch_small_file_cleanup();
    for (size_t i = 0; i < a->walkers_started; i++) pthread_join(a->walkers[i], NULL);
    pthread_mutex_destroy(&a->wq_mu);
    pthread_cond_destroy(&a->wq_cv);
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The sorted entry names of a directory, copied into the arena. */
static int read_names(cr_archiver *a, arch_dir *d, const item_paths *p, char ***names, size_t *n)
{
    /* O_NOFOLLOW: a directory swapped for a symlink since lstat is not followed */
    int fd = open(p->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        int e = errno;
        if (fd >= 0) close(fd);
        return -e;
    }
    size_t cnt = 0, cap = 0;
    char **v = NULL;
    struct dirent *de;
    int r = 0;
    errno = 0;
    while ((de = readdir(dir))) {
        const char *nm = de->d_name;
        if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2]))) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv) { r = -ENOMEM; break; }
            v = nv;
        }
        if (!(v[cnt++] = cr_arena_strndup(&d->arena, nm, strlen(nm)))) { r = -ENOMEM; break; }
        errno = 0;
    }
    if (r == 0 && errno) r = -errno;
    closedir(dir);
    if (r < 0) return free(v), r;
    if (cnt) qsort(v, cnt, sizeof *v, cmp_names);
    *names = v;
    *n = cnt;
    (void)a;
    return 0;
}

/* List a directory and process its entries in name order. */
static int walk_dir(cr_archiver *a, arch_dir *d, const item_paths *p)
{
    char **names = NULL;
    size_t n = 0;
    int r = read_names(a, d, p, &names, &n);
    if (r == -ENOMEM) return r;
    if (r < 0) {
        /* An unreadable directory is left out, as restic does. */
        char eb[128];
        arch_report(a, p->abspath, "open %s: %s", p->path, errstr(-r, eb, sizeof eb));
        d->dropped = true;
        return 0;
    }
    if (n && !(d->slots = calloc(n, sizeof *d->slots))) return free(names), -ENOMEM;
    d->nslots = n;
    prev_finder pf;
    finder_init(&pf, d->prev);
    cr_buf path = CR_BUF_INIT, abspath = CR_BUF_INIT, snpath = CR_BUF_INIT, warn = CR_BUF_INIT;
    for (size_t i = 0; i < n && !arch_stopped(a); i++) {
        size_t len = strlen(names[i]);
        d->slots[i].node.name = names[i];
        d->slots[i].node.name_len = len;
        if (cr_path_join(&path, p->path, names[i], len) < 0 || cr_path_join(&abspath, p->abspath, names[i], len) < 0 ||
            cr_path_join(&snpath, p->snpath, names[i], len) < 0) {
            r = -ENOMEM;
            break;
        }
        item_paths cp = {(const char *)path.data, (const char *)abspath.data, (const char *)snpath.data};
        process_entry(a, d, i, &cp, finder_find(&pf, names[i], len), false, &warn);
    }
    cr_buf_free(&path);
    cr_buf_free(&abspath);
    cr_buf_free(&snpath);
    cr_buf_free(&warn);
    free(names);
    return r;
}

/* ---- the targets' tree ----------------------------------------------------------- */

static int walk_tnode(cr_archiver *a, arch_dir *d, const cr_tnode *t, const char *snpath);

/* An inner node of the targets' tree: a directory that is not itself a
 * target, with the metadata of the real directory (stat, links followed). */
static void inner_dir(cr_archiver *a, arch_dir *d, size_t idx, const cr_tnode *k, const char *snpath,
                      const cr_node *prev, cr_buf *warn)
{
    cr_buf abs = CR_BUF_INIT;
    if (cr_path_abs(k->info_path, &abs) < 0) return arch_set_fatal(a, -ENOMEM);
    struct stat st;
    int r = 0;
    if (stat(k->info_path, &st) < 0) {
        char eb[128];
        r = cr_error(-errno, "Lstat: stat %s: %s", k->info_path, errstr(errno, eb, sizeof eb));
    } else if (!S_ISDIR(st.st_mode)) {
        r = cr_error(CR_E_USAGE, "path is not a directory: %s", k->info_path);
    }
    if (r < 0) {
        /* restic aborts the snapshot here */
        arch_set_fatal(a, r);
        cr_buf_free(&abs);
        return;
    }
    arch_slot *s = &d->slots[idx];
    r = cr_arch_node_from_stat(&s->node, (const char *)abs.data, &st, a->o.with_atime, &d->arena, warn);
    if (r < 0) arch_set_fatal(a, r);
    else if (warn->len)
        arch_report(a, (const char *)abs.data, "incomplete metadata for %s: %.*s", k->info_path, (int)warn->len,
                    (const char *)warn->data);
    cr_buf_free(&abs);
    if (r < 0) return;
    arch_dir *child = dir_new(d, idx, snpath, k->nkids);
    if (!child) return arch_set_fatal(a, cr_error(-ENOMEM, "out of memory"));
    child->prev_node = prev;
    child->prev = load_prev_tree(a, prev, snpath);
    atomic_fetch_add(&d->pending, 1);
    if (walk_tnode(a, child, k, snpath) < 0) arch_set_fatal(a, -ENOMEM);
    arch_dir_release(a, child);
}

static int walk_tnode(cr_archiver *a, arch_dir *d, const cr_tnode *t, const char *snpath)
{
    prev_finder pf;
    finder_init(&pf, d->prev);
    cr_buf sn = CR_BUF_INIT, abs = CR_BUF_INIT, warn = CR_BUF_INIT;
    int r = 0;
    for (size_t i = 0; i < t->nkids && !arch_stopped(a); i++) {
        const cr_tnode *k = &t->kids[i];
        size_t len = strlen(k->name);
        char *name = cr_arena_strndup(&d->arena, k->name, len);
        if (!name || cr_path_join(&sn, snpath, k->name, len) < 0) {
            r = -ENOMEM;
            break;
        }
        d->slots[i].node.name = name;
        d->slots[i].node.name_len = len;
        const cr_node *prev = finder_find(&pf, k->name, len);
        if (!k->path) {
            inner_dir(a, d, i, k, (const char *)sn.data, prev, &warn);
            continue;
        }
        if ((r = cr_path_abs(k->path, &abs)) < 0) break;
        item_paths p = {k->path, (const char *)abs.data, (const char *)sn.data};
        process_entry(a, d, i, &p, prev, k->explicit_target, &warn);
    }
    cr_buf_free(&sn);
    cr_buf_free(&abs);
    cr_buf_free(&warn);
    return r;
}

/* ---- stdin ------------------------------------------------------------------------- */

/* Nodes made up for --stdin: the file and its directories carry the backup
 * time and our own uid/gid, nothing else (restic's fs.Reader). */
static void synthetic_node(cr_node *n, bool dir, const cr_time *t)
{
    const char *name = n->name;
    size_t len = n->name_len;
    memset(n, 0, sizeof *n);
    n->name = name;
    n->name_len = len;
    n->type = dir ? CR_NODE_DIR : CR_NODE_FILE;
    n->mode = dir ? CR_MODE_DIR | 0755 : 0644;
    n->mtime = n->atime = n->ctime = *t;
    n->uid = getuid();
    n->gid = getgid();
    n->content_null = dir;
}

static int walk_stdin(cr_archiver *a, arch_dir *root)
{
    cr_buf clean = CR_BUF_INIT, joined = CR_BUF_INIT;
    int r = cr_buf_printf(&joined, "/%s", a->o.stdin_name ? a->o.stdin_name : "stdin");
    if (r == 0) r = cr_path_clean((const char *)joined.data, &clean);
    if (r == 0 && !strcmp((const char *)clean.data, "/")) r = cr_error(CR_E_USAGE, "invalid filename specified");
    arch_dir *d = root;
    const char *path = r == 0 ? (const char *)clean.data : "";
    size_t pos = 1;
    while (r == 0) {
        const char *s = path + pos;
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (!(d->slots = calloc(1, sizeof *d->slots))) { r = -ENOMEM; break; }
        d->nslots = 1;
        cr_node *n = &d->slots[0].node;
        if (!(n->name = cr_arena_strndup(&d->arena, s, len))) { r = -ENOMEM; break; }
        n->name_len = len;
        synthetic_node(n, slash != NULL, &a->o.stdin_time);
        cr_buf_reset(&joined);
        if ((r = cr_buf_append(&joined, path, pos + len)) < 0 || (r = cr_buf_nul(&joined)) < 0) break;
        if (!slash) {
            item_paths p = {"stdin", (const char *)joined.data, (const char *)joined.data};
            arch_file *f = calloc(1, sizeof *f);
            if (!f || !(f->path = strdup(p.path)) || !(f->abspath = strdup(p.abspath)) || !(f->snpath = strdup(p.snpath))) {
                if (f) free(f->path), free(f->abspath), free(f->snpath);
                free(f);
                r = -ENOMEM;
                break;
            }
            f->dir = d;
            f->fd = dup(a->o.stdin_fd);
            f->start = arch_now();
            pthread_mutex_init(&f->mu, NULL);
            atomic_init(&f->pending, 1);
            atomic_fetch_add(&d->pending, 1);
            arch_file_submit(a, f);
            break;
        }
        arch_dir *child = dir_new(d, 0, (const char *)joined.data, 0);
        if (!child) { r = -ENOMEM; break; }
        atomic_fetch_add(&d->pending, 1);
        if (d != root) arch_dir_release(a, d);
        d = child;
        pos += len + 1;
    }
    if (d != root) arch_dir_release(a, d);
    cr_buf_free(&clean);
    cr_buf_free(&joined);
    return r;
}

/* ---- running ------------------------------------------------------------------------- */

int cr_archiver_new(cr_repo *r, cr_writer *w, const cr_archive_opts *o, cr_archiver **out)
{
    cr_archiver *a = calloc(1, sizeof *a);
    if (!a) return cr_error(-ENOMEM, "out of memory");
    a->repo = r;
    a->w = w;
    a->o = *o;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    a->nreaders = o->read_concurrency ? o->read_concurrency : 2;
    a->nsavers = o->save_concurrency ? o->save_concurrency : (cpus > 0 ? (unsigned)cpus : 2);
    a->nwalkers = cpus > 1 ? (unsigned)cpus : 1;
    if (a->nwalkers > ARCH_MAX_WALKERS) a->nwalkers = ARCH_MAX_WALKERS;
    if (a->nreaders > ARCH_MAX_READERS) a->nreaders = ARCH_MAX_READERS;
    if (a->nsavers > ARCH_MAX_SAVERS) a->nsavers = ARCH_MAX_SAVERS;
    const char *bps = getenv("CRESTIC_TEST_READ_BPS");
    a->read_bps = bps ? strtod(bps, NULL) : 0;
    pthread_mutex_init(&a->cb_mu, NULL);
    *out = a;
    return 0;
}

void cr_archiver_free(cr_archiver *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->cb_mu);
    free(a);
}

/* The parent snapshot's root tree, or NULL (reported when unreadable). */
static cr_tree *load_parent_root(cr_archiver *a)
{
    const cr_snapshot *sn = a->o.parent;
    if (!sn || !sn->has_tree) return NULL;
    cr_node fake = {.type = CR_NODE_DIR, .has_subtree = true, .subtree = sn->tree};
    return load_prev_tree(a, &fake, "/");
}

static int walk_all(cr_archiver *a, arch_dir *root)
{
    if (a->o.stdin_fd >= 0) return walk_stdin(a, root);
    cr_tnode t;
    int r = cr_tnode_build(a->o.targets, a->o.ntargets, &t);
    if (r < 0) return r;
    if (t.nkids && !(root->slots = calloc(t.nkids, sizeof *root->slots))) r = cr_error(-ENOMEM, "out of memory");
    root->nslots = t.nkids;
    if (r == 0) r = walk_tnode(a, root, &t, "/");
    cr_tnode_free(&t);
    return r;
}

int cr_archiver_run(cr_archiver *a, cr_id *root_id)
{
    cr_arch_time_init();
    arch_dir *root = dir_new(NULL, 0, "/", 0);
    if (!root) return cr_error(-ENOMEM, "out of memory");
    root->prev = load_parent_root(a);
    int r = arch_pipeline_start(a);
    walkers_start(a);
    if (r == 0) r = walk_all(a, root);
    if (r < 0 && r != -ENOMEM) arch_set_fatal(a, r);
    else if (r == -ENOMEM) arch_set_fatal(a, cr_error(-ENOMEM, "out of memory"));
    walkers_finish(a);
    arch_dir_release(a, root);
    arch_pipeline_finish(a);
    arch_pipeline_free(a);
    int fatal = atomic_load(&a->fatal);
    if (fatal) return cr_error(fatal, "%s", a->fatal_msg);
    if (a->o.cancel && *a->o.cancel) return cr_error(CR_E_INTERRUPTED, "interrupted");
    if (!a->root_done) return cr_error(CR_E_INTERRUPTED, "interrupted");
    if (a->root_empty) return cr_error(CR_E_USAGE, "snapshot is empty");
    *root_id = a->root;
    return 0;
}

void cr_archiver_summary(cr_archiver *a, cr_archive_summary *s)
{
    pthread_mutex_lock(&a->cb_mu);
    *s = a->sum;
    pthread_mutex_unlock(&a->cb_mu);
    s->bytes_read = atomic_load(&a->bytes_read);
}

static int cmp_cstr(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

void cr_archiver_progress(cr_archiver *a, cr_archive_progress *p, cr_buf *current)
{
    p->files_done = atomic_load(&a->files_done);
    p->dirs_done = atomic_load(&a->dirs_done);
    p->bytes_done = atomic_load(&a->bytes_done);
    pthread_mutex_lock(&a->cb_mu);
    p->errors = a->sum.errors;
    if (current) {
        const char *v[ARCH_MAX_READERS];
        size_t n = 0;
        for (unsigned i = 0; i < ARCH_MAX_READERS; i++)
            if (a->current[i]) v[n++] = a->current[i];
        if (n) qsort(v, n, sizeof *v, cmp_cstr);
        cr_buf_reset(current);
        for (size_t i = 0; i < n; i++) cr_buf_append(current, v[i], strlen(v[i]) + 1);
    }
    pthread_mutex_unlock(&a->cb_mu);
}
