/* Reading files: reader threads read large blocks into shared slabs and cut
 * them with the Rabin chunker; saver threads hash, compress and seal the
 * chunks through the blob writer.  Small files are sealed by their reader
 * (a hand-over would cost more than the work).  Memory is bounded by the
 * slab count: a reader waits for a free slab, and a slab is free once every
 * chunk cut from it has been sealed. */
#include "repo/archive_pipeline.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "crypto/crypto.h"
#include "util/error.h"

#define READ_MAX (2u << 20)
#define SLAB_SIZE (CR_CHUNK_MAX + READ_MAX) /* an unfinished chunk plus a read always fit */
#define READ_MIN (1u << 20)         /* less room than this: move to a new slab */
#define INLINE_FILE_MAX (1u << 20)  /* smaller files: sealed by the reader */
#define FILE_QUEUE_MAX 256

/* ---- slabs ------------------------------------------------------------------ */

static slab *slab_get(cr_archiver *a)
{
    pthread_mutex_lock(&a->slab_mu);
    slab *s;
    for (;;) {
        if ((s = a->slab_free)) {
            a->slab_free = s->next;
            break;
        }
        if (a->slabs < a->slabs_max) {
            s = calloc(1, sizeof *s);
            if (s && !(s->data = malloc(SLAB_SIZE))) {
                free(s);
                s = NULL;
            }
            if (s) a->slabs++;
            break;
        }
        pthread_cond_wait(&a->slab_free_cv, &a->slab_mu);
    }
    pthread_mutex_unlock(&a->slab_mu);
    if (s) atomic_store(&s->refs, 1);
    return s;
}

static void slab_unref(cr_archiver *a, slab *s)
{
    if (!s) return;
    int old = atomic_fetch_sub(&s->refs, 1);
    if (old > 2) return;
    pthread_mutex_lock(&a->slab_mu);
    if (old == 1) {
        s->next = a->slab_free;
        a->slab_free = s;
    }
    /* also when only the reader's own reference is left: see drop_previous() */
    pthread_cond_broadcast(&a->slab_free_cv);
    pthread_mutex_unlock(&a->slab_mu);
}

/* Wait until the savers are done with a slab we still hold, then let go. */
static void slab_drain(cr_archiver *a, slab *s)
{
    if (!s) return;
    pthread_mutex_lock(&a->slab_mu);
    while (atomic_load(&s->refs) > 1) pthread_cond_wait(&a->slab_free_cv, &a->slab_mu);
    pthread_mutex_unlock(&a->slab_mu);
    slab_unref(a, s);
}

/* ---- files -------------------------------------------------------------------- */

static void file_free(arch_file *f)
{
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(f->abspath);
    free(f->snpath);
    free(f->content);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* All chunks sealed (or the file failed): hand the node to its directory. */
static void file_done(cr_archiver *a, arch_file *f)
{
    arch_dir *d = f->dir;
    arch_slot *s = &d->slots[f->slot];
    if (f->deferred && !arch_stopped(a)) {
        arch_defer_file(a, d, f->slot, f->snpath, f->prev);
    } else if (!f->failed && !arch_stopped(a)) {
        s->node.content = f->content;
        s->node.ncontent = f->ncontent;
        s->node.content_null = false;
        s->node.size = f->size;
        s->owns_content = true;
        s->ok = true;
        f->content = NULL;
        atomic_fetch_add(&a->files_done, 1);
        arch_item_done(a, f->snpath, false, f->prev, &s->node, &f->st, f->start);
    }
    file_free(f);
    arch_dir_release(a, d);
}

static void file_release(cr_archiver *a, arch_file *f)
{
    if (atomic_fetch_sub(&f->pending, 1) == 1) file_done(a, f);
}

static void file_fail(arch_file *f)
{
    pthread_mutex_lock(&f->mu);
    f->failed = true;
    pthread_mutex_unlock(&f->mu);
}

/* A place in the content list for the next chunk. */
static int content_slot(arch_file *f, size_t *idx)
{
    pthread_mutex_lock(&f->mu);
    int r = 0;
    if (f->ncontent == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        cr_id *c = realloc(f->content, cap * sizeof *c);
        if (!c) r = cr_error(-ENOMEM, "out of memory");
        else f->content = c, f->cap = cap;
    }
    if (r == 0) *idx = f->ncontent++;
    pthread_mutex_unlock(&f->mu);
    return r;
}

/* The writer keeps one pack buffer per thread inside it at a time, so the
 * number of threads sealing at once is what bounds its memory. */
static void seal_slot_take(cr_archiver *a)
{
    pthread_mutex_lock(&a->seal_mu);
    while (!a->seal_free) pthread_cond_wait(&a->seal_cv, &a->seal_mu);
    a->seal_free--;
    pthread_mutex_unlock(&a->seal_mu);
}

static void seal_slot_give(cr_archiver *a)
{
    pthread_mutex_lock(&a->seal_mu);
    a->seal_free++;
    pthread_cond_signal(&a->seal_cv);
    pthread_mutex_unlock(&a->seal_mu);
}

/* Hash here, outside any lock; only new blobs queue for the writer, whose
 * pack buffers are one per thread inside it: data chunks, small files
 * included, take a sealing slot (compressing small files one at a time left
 * a core idle: a backup of 100,000 small files took 1.7x as long), trees go
 * one at a time.  save_hashed is the part after the hash, for a blob whose
 * ID (*id) is already computed. */
static int save_hashed(cr_archiver *a, cr_blob_type t, const void *data, size_t n, cr_id *id, bool *added)
{
    *added = false;
    if (cr_writer_has_blob(a->w, t, id)) return 0;
    if (t == CR_BLOB_TREE) pthread_mutex_lock(&a->tree_seal_mu);
    else seal_slot_take(a);
    int r = cr_writer_save_blob(a->w, t, data, n, id, id, added);
    if (t == CR_BLOB_TREE) pthread_mutex_unlock(&a->tree_seal_mu);
    else seal_slot_give(a);
    return r;
}

int arch_save_blob(cr_archiver *a, cr_blob_type t, const void *data, size_t n, cr_id *id, bool *added)
{
    cr_sha256(data, n, id->b);
    return save_hashed(a, t, data, n, id, added);
}

/* Seal one chunk, whose ID is computed, in this thread and record it. */
static int seal_chunk(cr_archiver *a, arch_file *f, size_t idx, const uint8_t *data, size_t len, cr_id id)
{
    bool added = false;
    int r = save_hashed(a, CR_BLOB_DATA, data, len, &id, &added);
    if (r < 0) {
        arch_set_fatal(a, r);
        file_fail(f);
        return r;
    }
    pthread_mutex_lock(&f->mu);
    f->content[idx] = id;
    if (added) {
        f->st.data_blobs++;
        f->st.data_size += len;
    }
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static void blob_push(cr_archiver *a, const blob_job *j)
{
    pthread_mutex_lock(&a->bq_mu);
    while (a->bq_len == a->bq_cap) pthread_cond_wait(&a->bq_nonfull, &a->bq_mu);
    a->bq[(a->bq_head + a->bq_len) % a->bq_cap] = *j;
    a->bq_len++;
    pthread_cond_signal(&a->bq_nonempty);
    pthread_mutex_unlock(&a->bq_mu);
}

/* Wait for a chunk, and take up to SAVER_TAKE - 1 more that are already
 * there: their IDs are hashed together (cr_sha256_many, two lanes that each
 * take the next chunk when theirs ends, so only the last one runs alone).
 * Returns how many (0: closed). */
#define SAVER_TAKE 4
static size_t blob_pop(cr_archiver *a, blob_job j[SAVER_TAKE])
{
    pthread_mutex_lock(&a->bq_mu);
    while (!a->bq_len && !a->bq_closed) pthread_cond_wait(&a->bq_nonempty, &a->bq_mu);
    size_t got = 0;
    while (got < SAVER_TAKE && a->bq_len) {
        j[got++] = a->bq[a->bq_head];
        a->bq_head = (a->bq_head + 1) % a->bq_cap;
        a->bq_len--;
        pthread_cond_signal(&a->bq_nonfull);
    }
    pthread_mutex_unlock(&a->bq_mu);
    return got;
}

static void *saver_main(void *arg)
{
    cr_archiver *a = arg;
    blob_job j[SAVER_TAKE];
    size_t got;
    while ((got = blob_pop(a, j))) {
        const uint8_t *p[SAVER_TAKE];
        size_t n[SAVER_TAKE];
        cr_id id[SAVER_TAKE];
        for (size_t k = 0; k < got; k++) p[k] = j[k].data, n[k] = j[k].len;
        bool stop = arch_stopped(a);
        if (!stop) cr_sha256_many(p, n, got, (uint8_t(*)[32])id);
        for (size_t k = 0; k < got; k++) {
            if (!stop) seal_chunk(a, j[k].file, j[k].idx, j[k].data, j[k].len, id[k]);
            else file_fail(j[k].file);
            slab_unref(a, j[k].s);
            file_release(a, j[k].file);
        }
    }
    return NULL;
}

/* Hand a chunk on: sealed here for small files, else by a saver. */
static int emit_chunk(cr_archiver *a, arch_file *f, slab *s, const uint8_t *data, size_t len, bool inline_seal)
{
    size_t idx = 0;
    CR_TRY(content_slot(f, &idx));
    atomic_fetch_add(&a->bytes_done, len);
    if (inline_seal || !a->nsavers) {
        cr_id id;
        cr_sha256(data, len, id.b);
        return seal_chunk(a, f, idx, data, len, id);
    }
    atomic_fetch_add(&s->refs, 1);
    atomic_fetch_add(&f->pending, 1);
    blob_push(a, &(blob_job){f, idx, s, data, len});
    return 0;
}

static int open_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    return fd;
}

static const char *errstr(int e, char *buf, size_t n)
{
    snprintf(buf, n, "%s", strerror(e));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z')) buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

/* Per-reader state kept across files: the current slab and fill level, and
 * the previous slab while savers still seal chunks cut from it. */
typedef struct {
    cr_archiver *a;
    unsigned idx;
    cr_chunker *ch;
    slab *s, *prev;
    size_t pos;
} reader;

/* Make room for another read, moving the unfinished chunk [start, pos) to
 * the beginning of a fresh slab when the current one is (nearly) full.  A
 * reader keeps at most two slabs: before taking a third it waits until the
 * savers are done with the oldest, so a fast reader cannot run far ahead. */
static int ensure_room(reader *rd, size_t *start, size_t *first)
{
    if (rd->s && SLAB_SIZE - rd->pos >= READ_MIN) return 0;
    slab_drain(rd->a, rd->prev);
    rd->prev = NULL;
    slab *n = slab_get(rd->a);
    if (!n) return cr_error(-ENOMEM, "out of memory");
    size_t keep = rd->s ? rd->pos - *start : 0;
    if (keep) memcpy(n->data, rd->s->data + *start, keep);
    rd->prev = rd->s;
    rd->s = n;
    rd->pos = keep;
    *start = *first = 0;
    return 0;
}

/* Going idle: hold no slab another reader might need. */
static void reader_let_go(reader *rd)
{
    slab_unref(rd->a, rd->prev);
    slab_unref(rd->a, rd->s);
    rd->prev = rd->s = NULL;
    rd->pos = 0;
}

/* Read, chunk and hand on the whole file.  Returns 0, or a negative code
 * with the failure already reported (read error) or fatal (writer). */
static int read_file(reader *rd, arch_file *f, bool inline_seal)
{
    cr_archiver *a = rd->a;
    cr_chunker_reset(rd->ch);
    size_t start = rd->pos; /* of the chunk being cut */
    size_t first = rd->pos; /* of this file's bytes in the current slab */
    uint64_t total = 0;
    for (;;) {
        if (arch_stopped(a)) return CR_E_INTERRUPTED;
        if (arch_soft_stopped(a)) {
            f->deferred = true;
            return CR_E_INTERRUPTED;
        }
        CR_TRY(ensure_room(rd, &start, &first));
        size_t room = SLAB_SIZE - rd->pos;
        if (room > READ_MAX) room = READ_MAX;
        ssize_t n = read(f->fd, rd->s->data + rd->pos, room);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            char eb[128];
            int e = errno;
            arch_report(a, f->path, "failed to save %s: read %s: %s", f->path, f->path, errstr(e, eb, sizeof eb));
            return -e;
        }
        if (n == 0) break;
        size_t scan = rd->pos;
        rd->pos += (size_t)n;
        total += (uint64_t)n;
        atomic_fetch_add(&a->bytes_read, (uint64_t)n);
        if (a->read_bps > 0) { /* tests: a slow disk, so that deadlines bite */
            double s = (double)n / a->read_bps;
            nanosleep(&(struct timespec){(time_t)s, (long)((s - (double)(time_t)s) * 1e9)}, NULL);
        }
        while (scan < rd->pos) {
            bool cut = false;
            scan += cr_chunker_scan(rd->ch, rd->s->data + scan, rd->pos - scan, &cut);
            if (!cut) break;
            CR_TRY(emit_chunk(a, f, rd->s, rd->s->data + start, scan - start, inline_seal));
            start = scan;
        }
    }
    if (rd->pos > start) CR_TRY(emit_chunk(a, f, rd->s, rd->s->data + start, rd->pos - start, inline_seal));
    f->size = total;
    /* Sealed chunks no longer need their bytes: reuse the space (all of
     * it when no saver still reads from this slab). */
    if (inline_seal) rd->pos = atomic_load(&rd->s->refs) == 1 ? 0 : first;
    return 0;
}

static void set_current(cr_archiver *a, unsigned idx, const char *snpath)
{
    pthread_mutex_lock(&a->cb_mu);
    a->current[idx] = snpath;
    pthread_mutex_unlock(&a->cb_mu);
}

static void process_file(reader *rd, arch_file *f)
{
    cr_archiver *a = rd->a;
    char eb[128];
    if (arch_stopped(a)) {
        file_fail(f);
        return;
    }
    if (arch_soft_stopped(a) && f->fd < 0) {
        f->deferred = true;
        return;
    }
    set_current(a, rd->idx, f->snpath);
    bool given = f->fd >= 0;
    if (!given && (f->fd = open_file(f->path)) < 0) {
        int e = errno;
        if (e != ENOENT) arch_report(a, f->abspath, "open %s: %s", f->path, errstr(e, eb, sizeof eb));
        f->failed = true;
    }
    struct stat st;
    if (!f->failed && !given) {
        if (fstat(f->fd, &st) < 0) {
            arch_report(a, f->abspath, "stat %s: %s", f->path, errstr(errno, eb, sizeof eb));
            f->failed = true;
        } else if (!S_ISREG(st.st_mode)) {
            arch_report(a, f->abspath, "file \"%s\" changed type, refusing to archive", f->path);
            f->failed = true;
        } else {
            cr_arch_node_apply_stat(&f->dir->slots[f->slot].node, &st, a->o.with_atime);
            posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        }
    }
    bool small = !given && !f->failed && st.st_size < (off_t)INLINE_FILE_MAX;
    if (!f->failed && read_file(rd, f, small) < 0) file_fail(f);
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    set_current(a, rd->idx, NULL);
}

/* ---- small files, read where they are found ------------------------------------- */

static _Thread_local uint8_t *tl_small;

void arch_small_file_cleanup(void)
{
    free(tl_small);
    tl_small = NULL;
}

/* Read the whole file into buf (room for max bytes); *n the size.  Returns
 * 1 at end of file, 0 when there is more than max, or -errno. */
static int read_whole(int fd, uint8_t *buf, size_t max, size_t *n)
{
    *n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + *n, max - *n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return -errno;
        if (got == 0) return 1;
        *n += (size_t)got;
        if (*n == max) {
            uint8_t probe;
            while ((got = read(fd, &probe, 1)) < 0 && errno == EINTR) {}
            return got == 0 ? 1 : got < 0 ? -errno : 0;
        }
    }
}

bool arch_small_file(cr_archiver *a, arch_dir *d, size_t idx, const char *path, const char *abspath,
                     const char *snpath, const cr_node *prev)
{
    if (!tl_small && !(tl_small = malloc(CR_CHUNK_MIN))) return false;
    double start = arch_now();
    char eb[128];
    _cleanup_close_ int fd = open_file(path);
    if (fd < 0) {
        if (errno != ENOENT) arch_report(a, abspath, "open %s: %s", path, errstr(errno, eb, sizeof eb));
        return true;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        arch_report(a, abspath, "stat %s: %s", path, errstr(errno, eb, sizeof eb));
        return true;
    }
    if (!S_ISREG(st.st_mode)) {
        arch_report(a, abspath, "file \"%s\" changed type, refusing to archive", path);
        return true;
    }
    size_t n;
    int r = read_whole(fd, tl_small, CR_CHUNK_MIN, &n);
    atomic_fetch_add(&a->bytes_read, (uint64_t)n);
    if (r == 0) return false; /* grew past one chunk: the readers chunk it */
    if (r < 0) {
        arch_report(a, path, "failed to save %s: read %s: %s", path, path, errstr(-r, eb, sizeof eb));
        return true;
    }
    arch_slot *s = &d->slots[idx];
    cr_item_stats st_item = {0};
    cr_id *content = NULL;
    if (n) {
        cr_id id;
        bool added = false;
        if (!(content = malloc(sizeof *content))) {
            arch_set_fatal(a, cr_error(-ENOMEM, "out of memory"));
            return true;
        }
        r = arch_save_blob(a, CR_BLOB_DATA, tl_small, n, &id, &added);
        if (r < 0) {
            free(content);
            arch_set_fatal(a, r);
            return true;
        }
        content[0] = id;
        if (added) st_item.data_blobs = 1, st_item.data_size = n;
    }
    cr_arch_node_apply_stat(&s->node, &st, a->o.with_atime);
    s->node.content = content;
    s->node.ncontent = n ? 1 : 0;
    s->node.content_null = false;
    s->node.size = n;
    s->owns_content = true;
    s->ok = true;
    atomic_fetch_add(&a->bytes_done, n);
    atomic_fetch_add(&a->files_done, 1);
    arch_item_done(a, snpath, false, prev, &s->node, &st_item, start);
    return true;
}

static arch_file *file_pop(cr_archiver *a, reader *rd)
{
    pthread_mutex_lock(&a->fq_mu);
    if (!a->fq_head && !a->fq_closed && (rd->s || rd->prev)) {
        pthread_mutex_unlock(&a->fq_mu);
        reader_let_go(rd);
        pthread_mutex_lock(&a->fq_mu);
    }
    while (!a->fq_head && !a->fq_closed) pthread_cond_wait(&a->fq_nonempty, &a->fq_mu);
    arch_file *f = a->fq_head;
    if (f) {
        a->fq_head = f->next;
        if (!a->fq_head) a->fq_tail = NULL;
        a->fq_len--;
        pthread_cond_signal(&a->fq_nonfull);
    }
    pthread_mutex_unlock(&a->fq_mu);
    return f;
}

void arch_file_submit(cr_archiver *a, arch_file *f)
{
    f->next = NULL;
    pthread_mutex_lock(&a->fq_mu);
    while (a->fq_len >= FILE_QUEUE_MAX) pthread_cond_wait(&a->fq_nonfull, &a->fq_mu);
    if (a->fq_tail) a->fq_tail->next = f;
    else a->fq_head = f;
    a->fq_tail = f;
    a->fq_len++;
    pthread_cond_signal(&a->fq_nonempty);
    pthread_mutex_unlock(&a->fq_mu);
}

static void *reader_main(void *arg)
{
    reader *rd = arg;
    cr_archiver *a = rd->a;
    arch_file *f;
    while ((f = file_pop(a, rd))) {
        process_file(rd, f);
        file_release(a, f);
    }
    reader_let_go(rd);
    cr_chunker_free(rd->ch);
    free(rd);
    return NULL;
}

int arch_pipeline_start(cr_archiver *a)
{
    pthread_mutex_init(&a->fq_mu, NULL);
    pthread_cond_init(&a->fq_nonempty, NULL);
    pthread_cond_init(&a->fq_nonfull, NULL);
    pthread_mutex_init(&a->bq_mu, NULL);
    pthread_cond_init(&a->bq_nonempty, NULL);
    pthread_cond_init(&a->bq_nonfull, NULL);
    pthread_mutex_init(&a->slab_mu, NULL);
    pthread_cond_init(&a->slab_free_cv, NULL);
    pthread_mutex_init(&a->seal_mu, NULL);
    pthread_mutex_init(&a->tree_seal_mu, NULL);
    pthread_cond_init(&a->seal_cv, NULL);
    a->seal_free = a->nsavers ? a->nsavers : 1;
    /* Every reader holds one slab; one more lets a reader move on while the
     * savers drain the previous one (10 MiB hold ~10 average chunks). */
    a->slabs_max = a->nreaders + 1;
    a->bq_cap = 64;
    if (!(a->bq = calloc(a->bq_cap, sizeof *a->bq))) return cr_error(-ENOMEM, "out of memory");
    for (unsigned i = 0; i < a->nsavers; i++) {
        if (pthread_create(&a->savers[i], NULL, saver_main, a)) return cr_error(-EAGAIN, "cannot start a thread");
        a->savers_started++;
    }
    for (unsigned i = 0; i < a->nreaders; i++) {
        reader *rd = calloc(1, sizeof *rd);
        if (!rd) return cr_error(-ENOMEM, "out of memory");
        rd->a = a;
        rd->idx = i;
        int r = cr_chunker_new(a->repo->cfg.chunker_pol, &rd->ch);
        if (r < 0) return free(rd), r;
        if (pthread_create(&a->readers[i], NULL, reader_main, rd)) {
            cr_chunker_free(rd->ch);
            free(rd);
            return cr_error(-EAGAIN, "cannot start a thread");
        }
        a->readers_started++;
    }
    return 0;
}

void arch_pipeline_finish(cr_archiver *a)
{
    pthread_mutex_lock(&a->fq_mu);
    a->fq_closed = true;
    pthread_cond_broadcast(&a->fq_nonempty);
    pthread_mutex_unlock(&a->fq_mu);
    for (size_t i = 0; i < a->readers_started; i++) pthread_join(a->readers[i], NULL);
    a->readers_started = 0;
    pthread_mutex_lock(&a->bq_mu);
    a->bq_closed = true;
    pthread_cond_broadcast(&a->bq_nonempty);
    pthread_mutex_unlock(&a->bq_mu);
    for (size_t i = 0; i < a->savers_started; i++) pthread_join(a->savers[i], NULL);
    a->savers_started = 0;
}

void arch_pipeline_free(cr_archiver *a)
{
    for (slab *s = a->slab_free, *next; s; s = next) {
        next = s->next;
        free(s->data);
        free(s);
    }
    a->slab_free = NULL;
    free(a->bq);
    a->bq = NULL;
    pthread_mutex_destroy(&a->fq_mu);
    pthread_cond_destroy(&a->fq_nonempty);
    pthread_cond_destroy(&a->fq_nonfull);
    pthread_mutex_destroy(&a->bq_mu);
    pthread_cond_destroy(&a->bq_nonempty);
    pthread_cond_destroy(&a->bq_nonfull);
    pthread_mutex_destroy(&a->slab_mu);
    pthread_cond_destroy(&a->slab_free_cv);
    pthread_mutex_destroy(&a->seal_mu);
    pthread_mutex_destroy(&a->tree_seal_mu);
    pthread_cond_destroy(&a->seal_cv);
}
