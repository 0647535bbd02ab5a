/* Repository check (see checker.h).  Messages follow restic's wording so
 * users (and scripts) recognise them. */
#include "repo/checker.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "repo/index.h"
#include "repo/pack.h"
#include "repo/tree.h"
#include "repo/snapshot.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/idset.h"

typedef struct {
    cr_repo *repo;
    const cr_check_opts *opts;
    cr_check_result *res;
    /* per pack position in the union index */
    uint64_t *pack_size;   /* expected from the index */
    uint8_t *pack_types;   /* bit 0 data, bit 1 tree */
    uint32_t *pack_count;  /* blobs listed by the index */
    char **pack_indexes;   /* short IDs of index files listing the pack */
    size_t npacks;
    bool tree_header_done; /* "error for tree X:" printed for the current tree */
} checker;

/* While a pack is read by a worker thread, its messages are captured here
 * ("<level byte><text>\0" each) and replayed in pack order by the main
 * thread, so the output does not depend on which thread finished first. */
static __thread cr_buf *captured;

static void emit(checker *c, cr_check_level level, const char *msg)
{
    if (level == CR_CHECK_ERROR) c->res->errors++;
    if (level == CR_CHECK_HINT) c->res->hints++;
    if (c->opts->report) c->opts->report(c->opts->ud, level, msg);
}

static void say(checker *c, cr_check_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(checker *c, cr_check_level level, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!captured) {
        emit(c, level, msg);
        return;
    }
    /* out of memory here only loses a message; the pack's result stands */
    if (cr_buf_putc(captured, (char)level) < 0 || cr_buf_append(captured, msg, strlen(msg) + 1) < 0) return;
}

static void replay(checker *c, const cr_buf *b)
{
    for (size_t i = 0; i + 1 < b->len;) {
        const char *msg = (const char *)b->data + i + 1;
        emit(c, (cr_check_level)b->data[i], msg);
        i += 2 + strlen(msg);
    }
}

/* ---- phase 1: index files --------------------------------------------- */

static int note_index_of_packs(checker *c, const cr_index *one, const char *short_id)
{
    for (size_t i = 0; i < one->npacks; i++) {
        uint32_t pos;
        CR_TRY(cr_index_pack_pos(c->repo->index, &one->packs[i], &pos));
        if (pos >= c->npacks) {
            size_t n = (size_t)pos + 1;
            char **pi = realloc(c->pack_indexes, n * sizeof *pi);
            if (!pi) return cr_error(-ENOMEM, "out of memory");
            memset(pi + c->npacks, 0, (n - c->npacks) * sizeof *pi);
            c->pack_indexes = pi;
            c->npacks = n;
        }
        char *old = c->pack_indexes[pos], *s = NULL;
        if (asprintf(&s, "%s%s%s", old ? old : "", old ? " " : "", short_id) < 0) return cr_error(-ENOMEM, "out of memory");
        free(old);
        c->pack_indexes[pos] = s;
    }
    return 0;
}

static int merge_index(checker *c, const cr_index *one)
{
    for (size_t i = 0; i < one->nblobs; i++)
        CR_TRY(cr_index_add(c->repo->index, &one->packs[one->blobs[i].pack], &one->blobs[i]));
    return 0;
}

static int load_indexes(checker *c)
{
    say(c, CR_CHECK_PROGRESS, "load indexes");
    cr_index_free(c->repo->index);
    if (!(c->repo->index = cr_index_new())) return cr_error(-ENOMEM, "out of memory");
    cr_id *ids = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_list_ids(c->repo, CR_FILE_INDEX, &ids, NULL, &n));
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    int e = 0;
    for (size_t i = 0; e == 0 && i < n; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        cr_index *one = cr_index_new();
        if (!one) { e = cr_error(-ENOMEM, "out of memory"); break; }
        int le = cr_repo_load_unpacked(c->repo, CR_FILE_INDEX, &ids[i], &json);
        if (le == 0) le = cr_index_add_json(one, (const char *)json.data, json.len, c->repo->cfg.version);
        if (le < 0) say(c, CR_CHECK_ERROR, "error loading index %s: %s", hex, cr_error_message());
        else {
            hex[8] = 0;
            e = note_index_of_packs(c, one, hex);
            if (e == 0) e = merge_index(c, one);
        }
        cr_index_free(one);
    }
    free(ids);
    cr_index_finish(c->repo->index);
    return e;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "b a c" -> "a b c" (restic lists index IDs sorted). */
static void sort_words(char *list)
{
    char *words[64], copy[64 * 9 + 1];
    size_t n = 0;
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && n < 64; w = strtok_r(NULL, " ", &save)) words[n++] = w;
    qsort(words, n, sizeof *words, cmp_str);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += (size_t)sprintf(list + len, "%s%s", i ? " " : "", words[i]);
}

static void report_index_hints(checker *c)
{
    const cr_index *idx = c->repo->index;
    bool dup = false, mixed = false;
    for (size_t p = 0; p < c->npacks; p++) {
        const char *list = c->pack_indexes[p];
        if (list && strchr(list, ' ')) {
            if (strlen(list) < 64 * 9) sort_words(c->pack_indexes[p]);
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&idx->packs[p], hex);
            say(c, CR_CHECK_HINT, "pack %s contained in several indexes: {%s}", hex, list);
            dup = true;
        }
    }
    if (dup) say(c, CR_CHECK_HINT, "This is non-critical, you can run `restic rebuild-index' to correct this");
    for (size_t p = 0; p < idx->npacks; p++)
        if (c->pack_types[p] == 3) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&idx->packs[p], hex);
            /* v2 forbids mixed packs; v1 tolerates them. */
            say(c, c->repo->cfg.version >= 2 ? CR_CHECK_ERROR : CR_CHECK_HINT, "pack %.8s contains a mix of tree and data blobs", hex);
            mixed = true;
        }
    if (mixed && c->repo->cfg.version < 2)
        say(c, CR_CHECK_HINT, "Mixed packs with tree and data blobs are non-critical, you can run `restic prune` to correct this.");
}

static int summarise_packs(checker *c)
{
    const cr_index *idx = c->repo->index;
    c->pack_size = calloc(idx->npacks + 1, sizeof *c->pack_size);
    c->pack_types = calloc(idx->npacks + 1, 1);
    c->pack_count = calloc(idx->npacks + 1, sizeof *c->pack_count);
    if (!c->pack_size || !c->pack_types || !c->pack_count) return cr_error(-ENOMEM, "out of memory");
    for (size_t p = 0; p < idx->npacks; p++) c->pack_size[p] = 4 + CR_CRYPTO_OVERHEAD;
    for (size_t i = 0; i < idx->nblobs; i++) {
        const cr_index_entry *e = &idx->blobs[i];
        c->pack_size[e->pack] += e->length + (e->ulen ? CR_PACK_ENTRY_COMPRESSED : CR_PACK_ENTRY_PLAIN);
        c->pack_types[e->pack] |= e->type == CR_BLOB_TREE ? 2 : 1;
        c->pack_count[e->pack]++;
    }
    return 0;
}

/* ---- phase 2: packs in the backend vs the index ----------------------- */

static int check_packs(checker *c)
{
    say(c, CR_CHECK_PROGRESS, "check all packs");
    const cr_index *idx = c->repo->index;
    cr_id *ids = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_list_ids(c->repo, CR_FILE_PACK, &ids, &sizes, &n));
    uint8_t *present = calloc(idx->npacks + 1, 1);
    if (!present) {
        free(ids);
        free(sizes);
        return cr_error(-ENOMEM, "out of memory");
    }
    size_t unreferenced = 0;
    for (size_t i = 0; i < n; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        uint32_t pos;
        if (!cr_index_find_pack(idx, &ids[i], &pos)) {
            say(c, CR_CHECK_HINT, "pack %s: not referenced in any index", hex);
            unreferenced++;
            continue;
        }
        present[pos] = 1;
        if (sizes[i] != c->pack_size[pos])
            say(c, CR_CHECK_ERROR, "pack %s: unexpected file size: got %llu, expected %llu", hex,
                (unsigned long long)sizes[i], (unsigned long long)c->pack_size[pos]);
    }
    for (size_t p = 0; p < idx->npacks; p++)
        if (!present[p]) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&idx->packs[p], hex);
            say(c, CR_CHECK_ERROR, "pack %s: does not exist", hex);
        }
    if (unreferenced)
        say(c, CR_CHECK_HINT, "%zu additional files were found in the repo, which likely contain duplicate data.\n"
                              "This is non-critical, you can run `restic prune` to correct this.", unreferenced);
    free(present);
    free(ids);
    free(sizes);
    return 0;
}

/* ---- phase 3: snapshots and trees ------------------------------------- */

typedef struct {
    cr_id *v;
    size_t n, cap;
} id_stack;

static int push(id_stack *st, const cr_id *id)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 256;
        cr_id *v = realloc(st->v, cap * sizeof *v);
        if (!v) return cr_error(-ENOMEM, "out of memory");
        st->v = v;
        st->cap = cap;
    }
    st->v[st->n++] = *id;
    return 0;
}

static bool is_known_type(cr_node_type t)
{
    return t == CR_NODE_FILE || t == CR_NODE_DIR || t == CR_NODE_SYMLINK || t == CR_NODE_SOCKET ||
           t == CR_NODE_CHARDEV || t == CR_NODE_DEV || t == CR_NODE_FIFO || t == CR_NODE_IRREGULAR;
}

/* A finding inside a tree: restic prints a header per tree, then the findings indented. */
static void tree_error(checker *c, const char *tree_hex, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void tree_error(checker *c, const char *tree_hex, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!c->tree_header_done) {
        c->tree_header_done = true;
        say(c, CR_CHECK_ERROR, "error for tree %.8s:\n  tree %s: %s", tree_hex, tree_hex, msg);
    } else {
        say(c, CR_CHECK_ERROR, "  tree %s: %s", tree_hex, msg);
    }
}

static int check_node(checker *c, const char *tree_hex, const cr_node *n, id_stack *todo, cr_idset *blobs)
{
    if (n->type == CR_NODE_FILE) {
        if (n->content_null) tree_error(c, tree_hex, "file \"%s\" has nil blob list", n->name);
        for (size_t b = 0; b < n->ncontent; b++) {
            size_t count;
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&n->content[b], hex);
            if (cr_id_is_zero(&n->content[b])) tree_error(c, tree_hex, "file \"%s\" blob %zu has null ID", n->name, b);
            else if (!cr_index_lookup(c->repo->index, CR_BLOB_DATA, &n->content[b], &count))
                tree_error(c, tree_hex, "file \"%s\" blob %s not found in index", n->name, hex);
            else if (c->opts->check_unused) CR_TRY(cr_idset_add(blobs, &n->content[b]));
        }
    } else if (n->type == CR_NODE_DIR) {
        if (!n->has_subtree) tree_error(c, tree_hex, "dir node \"%s\" has no subtree", n->name);
        else if (cr_id_is_zero(&n->subtree)) tree_error(c, tree_hex, "dir node \"%s\" subtree id is null", n->name);
        else CR_TRY(push(todo, &n->subtree));
    } else if (!is_known_type(n->type)) {
        tree_error(c, tree_hex, "node \"%s\" with invalid type \"%s\"", n->name, n->type_name);
    }
    if (!n->name_len) tree_error(c, tree_hex, "node with empty name");
    return 0;
}

static int check_tree(checker *c, const cr_id *id, id_stack *todo, cr_idset *blobs, cr_buf *buf)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    size_t count;
    if (!cr_index_lookup(c->repo->index, CR_BLOB_TREE, id, &count)) {
        say(c, CR_CHECK_ERROR, "error for tree %.8s:\n  id %s not found in repository", hex, hex);
        return 0;
    }
    cr_tree *t = NULL;
    int e = cr_repo_load_blob(c->repo, CR_BLOB_TREE, id, buf);
    if (e == 0) e = cr_tree_parse((const char *)buf->data, buf->len, &t);
    if (e == -ENOMEM) return e;
    if (e < 0) {
        say(c, CR_CHECK_ERROR, "error for tree %.8s:\n  %s", hex, cr_error_message());
        return 0;
    }
    c->res->trees++;
    c->tree_header_done = false;
    for (size_t i = 0; e == 0 && i < t->n; i++) e = check_node(c, hex, &t->nodes[i], todo, blobs);
    cr_tree_free(t);
    return e;
}

static int check_snapshots(checker *c, cr_idset *blobs)
{
    say(c, CR_CHECK_PROGRESS, "check snapshots, trees and blobs");
    cr_id *ids = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_list_ids(c->repo, CR_FILE_SNAPSHOT, &ids, NULL, &n));
    id_stack todo = {0};
    cr_idset trees = {0};
    _cleanup_buf_ cr_buf buf = CR_BUF_INIT;
    int e = 0;
    for (size_t i = 0; e == 0 && i < n; i++) {
        cr_snapshot s;
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        if (cr_repo_load_snapshot(c->repo, &ids[i], &s) < 0) {
            say(c, CR_CHECK_ERROR, "error loading snapshot %.8s: %s", hex, cr_error_message());
            continue;
        }
        c->res->snapshots++;
        if (!s.has_tree) say(c, CR_CHECK_ERROR, "snapshot %.8s has no tree", hex);
        else e = push(&todo, &s.tree);
        cr_snapshot_clear(&s);
    }
    while (e == 0 && todo.n) {
        cr_id id = todo.v[--todo.n];
        int seen = cr_idset_add(&trees, &id);
        if (seen < 0) e = seen;
        else if (!seen) e = check_tree(c, &id, &todo, blobs, &buf);
    }
    if (e == 0 && c->opts->check_unused) {
        for (size_t i = 0; i < trees.cap; i++)
            if (trees.used[i]) e = cr_idset_add(blobs, &trees.slots[i]) < 0 ? -ENOMEM : 0;
    }
    free(todo.v);
    cr_idset_free(&trees);
    free(ids);
    return e;
}

static void report_unused(checker *c, cr_idset *used)
{
    const cr_index *idx = c->repo->index;
    for (size_t i = 0; i < idx->nblobs; i++) {
        if (cr_idset_add(used, &idx->blobs[i].id) == 0) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&idx->blobs[i].id, hex);
            say(c, CR_CHECK_ERROR, "unused blob %s", hex);
        }
    }
}

/* ---- phase 4: reading pack data --------------------------------------- */

static int compare_header(checker *c, const cr_id *pack, uint32_t pos, const cr_pack_blob *blobs, size_t n)
{
    const cr_index *idx = c->repo->index;
    size_t indexed = c->pack_count[pos];
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(pack, hex);
    if (indexed != n) {
        say(c, CR_CHECK_ERROR, "pack %s: header lists %zu blobs, the index %zu", hex, n, indexed);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        size_t count;
        const cr_index_entry *e = cr_index_lookup(idx, blobs[i].type, &blobs[i].id, &count);
        bool match = false;
        for (size_t k = 0; k < count && !match; k++)
            match = e[k].pack == pos && e[k].offset == blobs[i].offset && e[k].length == blobs[i].length &&
                    e[k].ulen == blobs[i].ulen;
        if (!match) {
            char bhex[CR_ID_HEX + 1];
            cr_id_to_hex(&blobs[i].id, bhex);
            say(c, CR_CHECK_ERROR, "pack %s: blob %s: header and index disagree", hex, bhex);
        }
    }
    return 0;
}

static int read_pack(checker *c, uint32_t pos, cr_buf *data, cr_buf *plain)
{
    const cr_id *pack = &c->repo->index->packs[pos];
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(pack, hex);
    int e = cr_be_load(c->repo->be, CR_FILE_PACK, hex, 0, 0, data);
    if (e == -ENOMEM) return e;
    if (e < 0) {
        say(c, CR_CHECK_ERROR, "pack %s failed to download: %s", hex, cr_error_message());
        return 0;
    }
    __atomic_fetch_add(&c->res->packs_read, 1, __ATOMIC_RELAXED);
    cr_id got;
    cr_sha256(data->data, data->len, got.b);
    if (!cr_id_eq(&got, pack)) {
        char ghex[CR_ID_HEX + 1];
        cr_id_to_hex(&got, ghex);
        say(c, CR_CHECK_ERROR, "pack %s: Pack ID does not match, want %.8s, got %.8s", hex, hex, ghex);
        return 0;
    }
    if (data->len < 4 + CR_CRYPTO_OVERHEAD) {
        say(c, CR_CHECK_ERROR, "pack %s: file too small", hex);
        return 0;
    }
    const uint8_t *end = data->data + data->len;
    uint32_t hlen = (uint32_t)end[-4] | (uint32_t)end[-3] << 8 | (uint32_t)end[-2] << 16 | (uint32_t)end[-1] << 24;
    cr_pack_blob *blobs = NULL;
    size_t n = 0;
    if (hlen < CR_CRYPTO_OVERHEAD || (uint64_t)hlen + 4 > data->len) e = cr_error(CR_E_FORMAT, "invalid header length %u", hlen);
    if (e == 0) e = cr_buf_resize(plain, hlen - CR_CRYPTO_OVERHEAD);
    if (e == 0) e = cr_open(&c->repo->master, end - 4 - hlen, hlen, plain->data);
    if (e == 0) e = cr_pack_header_parse(plain->data, plain->len, c->repo->cfg.version, data->len - 4 - hlen, &blobs, &n);
    if (e < 0) {
        say(c, CR_CHECK_ERROR, "pack %s: %s", hex, cr_error_message());
        return e == -ENOMEM ? e : 0;
    }
    e = compare_header(c, pack, pos, blobs, n);
    for (size_t i = 0; e == 0 && i < n; i++) {
        int be = cr_blob_decode(&c->repo->master, data->data + blobs[i].offset, blobs[i].length, blobs[i].ulen, &blobs[i].id, plain);
        if (be == -ENOMEM) e = be;
        else if (be < 0) {
            char bhex[CR_ID_HEX + 1];
            cr_id_to_hex(&blobs[i].id, bhex);
            say(c, CR_CHECK_ERROR, "pack %s: blob %s: %s", hex, bhex, cr_error_message());
        }
    }
    free(blobs);
    return e;
}

static bool pack_selected(checker *c, uint32_t pos, uint64_t *budget)
{
    const cr_id *pack = &c->repo->index->packs[pos];
    switch (c->opts->read) {
    case CR_READ_ALL: return true;
    case CR_READ_GROUP: return pack->b[0] % c->opts->group_t == c->opts->group_n - 1;
    case CR_READ_PERCENT: {
        uint32_t r;
        cr_random(&r, sizeof r);
        return (double)r / 4294967296.0 * 100.0 < c->opts->percent;
    }
    case CR_READ_BYTES:
        if (*budget < c->pack_size[pos]) return false;
        *budget -= c->pack_size[pos];
        return true;
    default: return false;
    }
}

/* Packs are read by a few threads (as many as the backend wants
 * connections, at least one per CPU, at most 8); results are reported in
 * the order of p->sel. */
typedef struct {
    checker *c;
    uint32_t *sel;
    size_t nsel, next;
    cr_buf *said;  /* per selected pack: captured messages */
    int *rc;
    uint8_t *done;
    bool stop;
    pthread_mutex_t m;
    pthread_cond_t cv;
} reader_pool;

static void *pack_reader(void *arg)
{
    reader_pool *p = arg;
    cr_buf data = CR_BUF_INIT, plain = CR_BUF_INIT;
    for (;;) {
        pthread_mutex_lock(&p->m);
        size_t i = p->next;
        bool quit = p->stop || i >= p->nsel;
        if (!quit) p->next++;
        pthread_mutex_unlock(&p->m);
        if (quit) break;
        captured = &p->said[i];
        int r = read_pack(p->c, p->sel[i], &data, &plain);
        captured = NULL;
        pthread_mutex_lock(&p->m);
        p->rc[i] = r;
        p->done[i] = 1;
        if (r < 0) p->stop = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->m);
    }
    cr_buf_free(&data);
    cr_buf_free(&plain);
    return NULL;
}

static unsigned reader_count(const checker *c, size_t nsel)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = c->repo->be->connections;
    if (cpus > 0 && n < (unsigned)cpus) n = (unsigned)cpus;
    if (n > 8) n = 8;
    if (n > nsel) n = (unsigned)nsel;
    return n ? n : 1;
}

static int read_selected(reader_pool *p)
{
    if (!p->nsel) return 0;
    p->said = calloc(p->nsel, sizeof *p->said);
    p->rc = calloc(p->nsel, sizeof *p->rc);
    p->done = calloc(p->nsel, 1);
    pthread_t tids[8];
    unsigned n = reader_count(p->c, p->nsel), started = 0;
    int e = p->said && p->rc && p->done ? 0 : cr_error(-ENOMEM, "out of memory");
    pthread_mutex_init(&p->m, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (; e == 0 && started < n; started++)
        if (pthread_create(&tids[started], NULL, pack_reader, p)) {
            if (!started) e = cr_error(-EAGAIN, "cannot start a thread");
            break;
        }
    for (size_t i = 0; e == 0 && i < p->nsel; i++) {
        pthread_mutex_lock(&p->m);
        while (!p->done[i] && !(p->stop && i >= p->next)) pthread_cond_wait(&p->cv, &p->m);
        bool done = p->done[i];
        pthread_mutex_unlock(&p->m);
        if (!done) break;
        replay(p->c, &p->said[i]);
        cr_buf_free(&p->said[i]);
        if (p->rc[i] < 0) e = p->rc[i];
    }
    pthread_mutex_lock(&p->m);
    p->stop = true;
    pthread_mutex_unlock(&p->m);
    for (unsigned k = 0; k < started; k++) pthread_join(tids[k], NULL);
    for (size_t i = 0; p->said && i < p->nsel; i++) cr_buf_free(&p->said[i]);
    pthread_mutex_destroy(&p->m);
    pthread_cond_destroy(&p->cv);
    free(p->said);
    free(p->rc);
    free(p->done);
    return e;
}

static int read_data(checker *c)
{
    const cr_index *idx = c->repo->index;
    if (c->opts->read == CR_READ_GROUP)
        say(c, CR_CHECK_PROGRESS, "read group #%u of %u data packs (out of total %zu packs in %u groups)",
            c->opts->group_n, c->opts->group_t, idx->npacks, c->opts->group_t);
    else if (c->opts->read == CR_READ_PERCENT) say(c, CR_CHECK_PROGRESS, "read %g%% of data packs", c->opts->percent);
    else if (c->opts->read == CR_READ_BYTES) say(c, CR_CHECK_PROGRESS, "read %llu bytes of data packs", (unsigned long long)c->opts->bytes);
    else say(c, CR_CHECK_PROGRESS, "read all data");
    uint64_t budget = c->opts->bytes;
    /* Random selection for the size budget: start at a random pack. */
    uint32_t start = 0;
    if (idx->npacks && c->opts->read == CR_READ_BYTES) {
        cr_random(&start, sizeof start);
        start %= (uint32_t)idx->npacks;
    }
    reader_pool p = {.c = c};
    p.sel = malloc((idx->npacks ? idx->npacks : 1) * sizeof *p.sel);
    if (!p.sel) return cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; i < idx->npacks; i++) {
        uint32_t pos = (uint32_t)((start + i) % idx->npacks);
        if (pack_selected(c, pos, &budget)) p.sel[p.nsel++] = pos;
    }
    int e = read_selected(&p);
    free(p.sel);
    return e;
}

int cr_check(cr_repo *r, const cr_check_opts *opts, cr_check_result *result)
{
    memset(result, 0, sizeof *result);
    checker c = {.repo = r, .opts = opts, .res = result};
    cr_idset used = {0};
    int e = load_indexes(&c);
    if (e == 0) e = summarise_packs(&c);
    if (e == 0) report_index_hints(&c);
    if (e == 0) e = check_packs(&c);
    if (e == 0) e = check_snapshots(&c, &used);
    if (e == 0 && opts->check_unused) report_unused(&c, &used);
    if (e == 0 && opts->read != CR_READ_NONE) e = read_data(&c);
    for (size_t i = 0; i < c.npacks; i++) free(c.pack_indexes[i]);
    free(c.pack_indexes);
    free(c.pack_size);
    free(c.pack_types);
    free(c.pack_count);
    cr_idset_free(&used);
    return e;
}

int cr_parse_read_subset(const char *s, cr_check_opts *o)
{
    unsigned n, t;
    char tail;
    size_t len = strlen(s);
    if (sscanf(s, "%u/%u%c", &n, &t, &tail) == 2) {
        if (t == 0 || n == 0 || n > t)
            return cr_error(CR_E_USAGE, "check flag --read-data-subset=n/t values must be positive integers, and n <= t, e.g. --read-data-subset=1/2");
        o->read = CR_READ_GROUP, o->group_n = n, o->group_t = t;
        return 0;
    }
    char *end;
    double v = strtod(s, &end);
    if (end == s) return cr_error(CR_E_USAGE, "invalid --read-data-subset \"%s\"", s);
    if (*end == '%' && end[1] == 0) {
        if (v <= 0 || v > 100) return cr_error(CR_E_USAGE, "check flag --read-data-subset=x%% x must be above 0.0%% and <= 100.0%%");
        o->read = CR_READ_PERCENT, o->percent = v;
        return 0;
    }
    uint64_t mult = 1;
    switch (len ? s[len - 1] : 0) {
    case 'k': case 'K': mult = 1ull << 10; break;
    case 'm': case 'M': mult = 1ull << 20; break;
    case 'g': case 'G': mult = 1ull << 30; break;
    case 't': case 'T': mult = 1ull << 40; break;
    default: if (*end) return cr_error(CR_E_USAGE, "invalid --read-data-subset \"%s\"", s);
    }
    if (v <= 0) return cr_error(CR_E_USAGE, "invalid --read-data-subset \"%s\"", s);
    o->read = CR_READ_BYTES, o->bytes = (uint64_t)(v * (double)mult);
    return 0;
}
