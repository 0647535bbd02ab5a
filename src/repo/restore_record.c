/* The restore record (see restore_record.h). */
#include "repo/restore_record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "util/buf.h"
#include "util/error.h"

#define RECORD_MAGIC "crestic-restore-record 1 "

typedef struct {
    uint64_t ino, size;
    int64_t ctime_s, mtime_s;
    int32_t ctime_ns, mtime_ns;
    uint8_t digest[32];
    size_t path_off, path_len;
} record_entry;

struct cr_restore_record {
    cr_id snapshot;
    record_entry *v;
    size_t n, cap;
    char *paths;          /* all paths, NUL-separated */
    size_t *slots;        /* hash table of entry index + 1 (0: empty) */
    size_t nslots;        /* a power of two */
};

static void content_digest(const cr_node *n, uint8_t out[32])
{
    cr_sha256(n->content, n->ncontent * sizeof *n->content, out);
}

/* ---- writing ------------------------------------------------------------------ */

typedef struct {
    cr_repo *r;
    FILE *f;
    cr_buf path;
    size_t count;
} writer_state;

static int record_node(writer_state *w, const cr_node *n)
{
    const char *path = (const char *)w->path.data;
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) return 0; /* not restored: nothing to vouch for */
    if ((uint64_t)st.st_size != n->size || st.st_mtim.tv_sec != n->mtime.sec || st.st_mtim.tv_nsec != n->mtime.nsec)
        return 0;
    uint8_t d[32];
    content_digest(n, d);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    fprintf(w->f, "%" PRIu64 " %lld %ld %lld %ld %" PRIu64 " %s %zu\n", (uint64_t)st.st_ino,
            (long long)st.st_ctim.tv_sec, (long)st.st_ctim.tv_nsec, (long long)st.st_mtim.tv_sec,
            (long)st.st_mtim.tv_nsec, (uint64_t)st.st_size, hex, w->path.len);
    fwrite(w->path.data, 1, w->path.len, w->f);
    fputc('\n', w->f);
    w->count++;
    return ferror(w->f) ? cr_error(-EIO, "writing the restore record failed") : 0;
}

static bool name_is_plain(const cr_node *n)
{
    if (!n->name_len || memchr(n->name, '/', n->name_len) || memchr(n->name, 0, n->name_len)) return false;
    return !(n->name_len == 1 && n->name[0] == '.') && !(n->name_len == 2 && !memcmp(n->name, "..", 2));
}

static int walk_tree(writer_state *w, const cr_id *tree_id)
{
    cr_buf blob = CR_BUF_INIT;
    cr_tree *t = NULL;
    int r = cr_repo_load_blob(w->r, CR_BLOB_TREE, tree_id, &blob);
    if (r == 0) r = cr_tree_parse((const char *)blob.data, blob.len, &t);
    cr_buf_free(&blob);
    if (r < 0) return r;
    size_t base = w->path.len;
    for (size_t i = 0; r == 0 && i < t->n; i++) {
        const cr_node *n = &t->nodes[i];
        if (!name_is_plain(n)) continue;
        w->path.len = base;
        if (base == 0 || w->path.data[base - 1] != '/') r = cr_buf_putc(&w->path, '/');
        if (r == 0) r = cr_buf_append(&w->path, n->name, n->name_len);
        if (r == 0) r = cr_buf_nul(&w->path);
        if (r < 0) break;
        if (n->type == CR_NODE_DIR && n->has_subtree) r = walk_tree(w, &n->subtree);
        else if (n->type == CR_NODE_FILE) r = record_node(w, n);
    }
    w->path.len = base;
    cr_tree_free(t);
    return r;
}

int cr_restore_record_write(cr_repo *r, const cr_id *snapshot, const cr_id *root, const char *target,
                            const char *file, size_t *nfiles)
{
    cr_buf tmp = CR_BUF_INIT;
    int rc = cr_buf_printf(&tmp, "%s.tmp", file);
    if (rc < 0) return rc;
    int fd = open((const char *)tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = cr_error_sys(-errno, "create %s", (const char *)tmp.data);
        cr_buf_free(&tmp);
        return rc;
    }
    writer_state w = {.r = r, .f = fdopen(fd, "w"), .path = CR_BUF_INIT};
    if (!w.f) {
        close(fd);
        cr_buf_free(&tmp);
        return cr_error(-ENOMEM, "out of memory");
    }
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(snapshot, hex);
    fprintf(w.f, RECORD_MAGIC "%s\n", hex);
    /* the target without trailing slashes ("/" becomes "") */
    size_t tl = strlen(target);
    while (tl > 0 && target[tl - 1] == '/') tl--;
    rc = cr_buf_append(&w.path, target, tl);
    if (rc == 0) rc = walk_tree(&w, root);
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) rc = rc ? rc : cr_error(-EIO, "writing the restore record failed");
    fclose(w.f);
    if (rc == 0 && rename((const char *)tmp.data, file) < 0) rc = cr_error_sys(-errno, "rename %s", file);
    if (rc < 0) unlink((const char *)tmp.data);
    if (rc == 0 && nfiles) *nfiles = w.count;
    cr_buf_free(&w.path);
    cr_buf_free(&tmp);
    return rc;
}

/* ---- reading ------------------------------------------------------------------ */

static uint64_t hash_path(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    return h;
}

static int build_table(cr_restore_record *rec)
{
    size_t want = 16;
    while (want < rec->n * 2) want *= 2;
    if (!(rec->slots = calloc(want, sizeof *rec->slots))) return cr_error(-ENOMEM, "out of memory");
    rec->nslots = want;
    for (size_t i = 0; i < rec->n; i++) {
        const record_entry *e = &rec->v[i];
        size_t s = hash_path(rec->paths + e->path_off, e->path_len) & (want - 1);
        while (rec->slots[s]) s = (s + 1) & (want - 1);
        rec->slots[s] = i + 1;
    }
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A decimal number (optionally negative) ending at a blank or at end; no
 * sscanf: a record has a line per file, 100,000 and more. */
static bool field_num(const char **p, const char *end, bool neg_ok, int64_t *out)
{
    const char *s = *p;
    bool neg = s < end && *s == '-' && neg_ok;
    if (neg) s++;
    uint64_t v = 0;
    const char *digits = s;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10) return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (s == digits || (s < end && *s != ' ') || v > (uint64_t)INT64_MAX) return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    *p = s < end ? s + 1 : s;
    return true;
}

/* One entry at *pos of the file's bytes; paths are copied into paths.
 * 0, -1 malformed, -2 out of memory. */
static int parse_entry(const char *data, size_t len, size_t *pos, record_entry *e, cr_buf *paths)
{
    const char *line = data + *pos;
    const char *nl = memchr(line, '\n', len - *pos);
    if (!nl) return -1;
    int64_t ino, cs, cn, ms, mn, size, plen;
    const char *p = line;
    if (!field_num(&p, nl, false, &ino) || !field_num(&p, nl, true, &cs) || !field_num(&p, nl, false, &cn) ||
        !field_num(&p, nl, true, &ms) || !field_num(&p, nl, false, &mn) || !field_num(&p, nl, false, &size))
        return -1;
    if (nl - p < 65 || p[64] != ' ') return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        e->digest[i] = (uint8_t)(hi << 4 | lo);
    }
    p += 65;
    if (!field_num(&p, nl, false, &plen) || p != nl || cn > 999999999 || mn > 999999999) return -1;
    size_t start = (size_t)(nl + 1 - data);
    if ((uint64_t)plen >= len - start || data[start + (size_t)plen] != '\n') return -1;
    e->ino = (uint64_t)ino, e->size = (uint64_t)size;
    e->ctime_s = cs, e->ctime_ns = (int32_t)cn, e->mtime_s = ms, e->mtime_ns = (int32_t)mn;
    e->path_off = paths->len;
    e->path_len = (size_t)plen;
    if (cr_buf_append(paths, data + start, (size_t)plen) < 0 || cr_buf_putc(paths, 0) < 0) return -2;
    *pos = start + (size_t)plen + 1;
    return 0;
}

static int read_all(const char *file, cr_buf *out)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char chunk[65536];
    ssize_t n;
    int r = 0;
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { r = -errno; break; }
        if ((r = cr_buf_append(out, chunk, (size_t)n)) < 0) break;
    }
    close(fd);
    return r;
}

int cr_restore_record_parse(const char *d, size_t len, cr_restore_record **out)
{
    cr_buf paths = CR_BUF_INIT;
    cr_restore_record *rec = calloc(1, sizeof *rec);
    if (!rec) return cr_error(-ENOMEM, "out of memory");
    size_t ml = strlen(RECORD_MAGIC), pos = ml + CR_ID_HEX + 1;
    int r = CR_E_FORMAT;
    if (len >= pos && !memcmp(d, RECORD_MAGIC, ml) && d[pos - 1] == '\n')
        r = cr_id_from_hex(&rec->snapshot, d + ml, CR_ID_HEX) < 0 ? CR_E_FORMAT : 0;
    while (r == 0 && pos < len) {
        if (rec->n == rec->cap) {
            size_t cap = rec->cap ? rec->cap * 2 : 1024;
            record_entry *v = realloc(rec->v, cap * sizeof *v);
            if (!v) { r = -ENOMEM; break; }
            rec->v = v, rec->cap = cap;
        }
        int pr = parse_entry(d, len, &pos, &rec->v[rec->n], &paths);
        if (pr == -2) r = -ENOMEM;
        else if (pr < 0) r = CR_E_FORMAT;
        else rec->n++;
    }
    rec->paths = (char *)cr_buf_steal(&paths, NULL);
    if (r == 0) r = build_table(rec);
    if (r < 0) {
        cr_restore_record_free(rec);
        return r == -ENOMEM ? cr_error(r, "out of memory") : cr_error(CR_E_FORMAT, "damaged restore record");
    }
    *out = rec;
    return 0;
}

int cr_restore_record_load(const char *file, cr_restore_record **out)
{
    cr_buf data = CR_BUF_INIT;
    int r = read_all(file, &data);
    if (r == -ENOENT) return cr_buf_free(&data), r;
    if (r < 0) return cr_buf_free(&data), cr_error_sys(r, "read %s", file);
    r = cr_restore_record_parse((const char *)data.data, data.len, out);
    cr_buf_free(&data);
    return r < 0 ? cr_error_ctx(r, "%s", file) : 0;
}

const cr_id *cr_restore_record_snapshot(const cr_restore_record *rec)
{
    return &rec->snapshot;
}

size_t cr_restore_record_count(const cr_restore_record *rec)
{
    return rec->n;
}

static const record_entry *find(const cr_restore_record *rec, const char *path)
{
    if (!rec->nslots) return NULL;
    size_t n = strlen(path);
    for (size_t s = hash_path(path, n) & (rec->nslots - 1); rec->slots[s]; s = (s + 1) & (rec->nslots - 1)) {
        const record_entry *e = &rec->v[rec->slots[s] - 1];
        if (e->path_len == n && !memcmp(rec->paths + e->path_off, path, n)) return e;
    }
    return NULL;
}

bool cr_restore_record_vouches(const cr_restore_record *rec, const char *abspath, const struct stat *st,
                               const cr_node *prev)
{
    const record_entry *e = rec ? find(rec, abspath) : NULL;
    if (!e || prev->type != CR_NODE_FILE) return false;
    if (e->ino != (uint64_t)st->st_ino || e->size != (uint64_t)st->st_size || e->size != prev->size) return false;
    if (e->ctime_s != st->st_ctim.tv_sec || e->ctime_ns != st->st_ctim.tv_nsec) return false;
    if (e->mtime_s != st->st_mtim.tv_sec || e->mtime_ns != st->st_mtim.tv_nsec) return false;
    uint8_t d[32];
    content_digest(prev, d);
    return !memcmp(d, e->digest, sizeof d);
}

void cr_restore_record_free(cr_restore_record *rec)
{
    if (!rec) return;
    free(rec->v);
    free(rec->paths);
    free(rec->slots);
    free(rec);
}
