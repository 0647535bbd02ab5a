/* Blob writer: dedup, compress, seal, pack, upload, index (see writer.h). */
#include "repo/writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/index.h"
#include "repo/pack.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

/* A pack being filled, in one of two ways:
 * - in memory (backends that cannot stream): blobs are sealed straight into
 *   `data`, reserved up front for the target plus one maximal blob, and the
 *   whole pack is saved at the end;
 * - streamed (`out` set): blobs are compressed and sealed piece by piece in
 *   `zbuf`, gathered in `data` and written to the backend as they come, so
 *   a pack costs under 1 MiB of memory instead of its full size. */
typedef struct packer {
    cr_blob_type type;
    cr_buf data;         /* the pack, or (streamed) sealed blobs not yet written */
    size_t flushed;      /* streamed: bytes already written to `out` */
    cr_be_stream *out;
    cr_pack_blob *blobs;
    size_t n, cap;
    cr_buf zbuf;         /* compression output (streamed: one piece), before sealing */
    struct packer *next; /* free list */
} packer;

/* Streamed packs: sealed bytes gather in memory up to this before a write
 * (one write per 4 KiB file would cost a system call each); blobs are
 * compressed and sealed in pieces of PIECE_MAX. */
#define STAGE_MAX (512u * 1024)
#define PIECE_MAX (128u * 1024)

/* A streamed pack written to its end, waiting for its commit: the hash
 * names it, then fsync and link (cr_be_stream_commit).  That waits for the
 * disk, so a committer thread does it while the savers fill the next packs
 * (16 MiB of incompressible data is sealed in about the time its fsync
 * takes).  At most COMMIT_QUEUE_MAX wait, so a slow disk throttles the
 * savers and the page cache holds a bounded amount of unsynced packs. */
typedef struct commit_job {
    cr_be_stream *out;
    cr_pack_blob *blobs;
    size_t n;
    struct commit_job *next;
} commit_job;

#define COMMIT_QUEUE_MAX 4

/* An uploaded pack whose entries still wait for an index file. */
typedef struct {
    cr_id id;
    cr_pack_blob *blobs;
    size_t n;
} stored_pack;

struct cr_writer {
    cr_repo *repo;
    cr_writer_opts opts;
    bool stream;            /* the backend takes packs piece by piece */
    pthread_mutex_t mu;     /* everything below */
    /* blobs saved in this session: open addressing on (id, type) */
    cr_id *seen;
    uint8_t *seen_type;     /* 0 = empty slot, else type + 1 */
    size_t seen_n, seen_cap;
    packer *idle[2];        /* packers not in use by a thread, per type */
    packer **everyone;
    size_t neveryone;
    stored_pack *pending;   /* uploaded, not yet in an index file */
    size_t npending, pending_cap, pending_blobs;
    cr_index *added;        /* everything stored, merged into repo->index at flush */
    cr_writer_stats stats;
    int sticky_error;
    char sticky_msg[256];     /* its message: it may come from another thread */
    size_t index_flush;       /* blobs per intermediate index file */
    pthread_mutex_t index_mu; /* serialises index file writes */
    /* streamed packs waiting for the committer */
    pthread_mutex_t cq_mu;
    pthread_cond_t cq_work, cq_room; /* a job was queued / a job is done */
    commit_job *cq_head, **cq_tailp;
    size_t cq_busy;                  /* queued or being committed */
    bool cq_started, cq_stopping;
    pthread_t committer;
};

static uint64_t id_hash(const cr_id *id)
{
    uint64_t h;
    memcpy(&h, id->b + 8, sizeof h);
    return h;
}

static int seen_grow(cr_writer *w)
{
    size_t cap = w->seen_cap ? w->seen_cap * 2 : 1 << 14;
    cr_id *ids = calloc(cap, sizeof *ids);
    uint8_t *types = calloc(cap, 1);
    if (!ids || !types) {
        free(ids);
        free(types);
        return cr_error(-ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < w->seen_cap; i++) {
        if (!w->seen_type[i]) continue;
        size_t s = (id_hash(&w->seen[i]) ^ w->seen_type[i]) & (cap - 1);
        while (types[s]) s = (s + 1) & (cap - 1);
        ids[s] = w->seen[i];
        types[s] = w->seen_type[i];
    }
    free(w->seen);
    free(w->seen_type);
    w->seen = ids;
    w->seen_type = types;
    w->seen_cap = cap;
    return 0;
}

/* Returns 1 if (t, id) was already there, 0 if inserted now. */
static int seen_insert(cr_writer *w, cr_blob_type t, const cr_id *id, bool insert)
{
    if (insert && (w->seen_n + 1) * 2 > w->seen_cap) CR_TRY(seen_grow(w));
    if (!w->seen_cap) return 0;
    uint8_t tag = (uint8_t)(t + 1);
    size_t mask = w->seen_cap - 1, s = (id_hash(id) ^ tag) & mask;
    for (; w->seen_type[s]; s = (s + 1) & mask)
        if (w->seen_type[s] == tag && cr_id_eq(&w->seen[s], id)) return 1;
    if (insert) {
        w->seen[s] = *id;
        w->seen_type[s] = tag;
        w->seen_n++;
    }
    return 0;
}

/* Blobs per intermediate index file.  CRESTIC_INDEX_FLUSH_BLOBS lowers it
 * for crash tests, which need an index written long before a backup ends. */
static size_t index_flush_blobs(void)
{
    const char *env = getenv("CRESTIC_INDEX_FLUSH_BLOBS");
    long v = env ? strtol(env, NULL, 10) : 0;
    return v > 0 && v < CR_INDEX_FLUSH_BLOBS ? (size_t)v : CR_INDEX_FLUSH_BLOBS;
}

int cr_writer_new(cr_repo *r, const cr_writer_opts *opts, cr_writer **out)
{
    CR_TRY(cr_repo_load_index(r));
    cr_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->added = cr_index_new())) {
        free(w);
        return cr_error(-ENOMEM, "out of memory");
    }
    w->repo = r;
    w->opts = *opts;
    if (!w->opts.pack_size) w->opts.pack_size = CR_PACK_SIZE_DEFAULT;
    if (r->cfg.version < 2) w->opts.compression = CR_COMPRESS_OFF;
    w->index_flush = index_flush_blobs();
    w->stream = cr_be_can_stream(r->be);
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->index_mu, NULL);
    pthread_mutex_init(&w->cq_mu, NULL);
    pthread_cond_init(&w->cq_work, NULL);
    pthread_cond_init(&w->cq_room, NULL);
    w->cq_tailp = &w->cq_head;
    *out = w;
    return 0;
}

bool cr_writer_has_blob(cr_writer *w, cr_blob_type t, const cr_id *id)
{
    size_t count;
    if (cr_index_lookup(w->repo->index, t, id, &count)) return true;
    pthread_mutex_lock(&w->mu);
    bool seen = seen_insert(w, t, id, false) == 1;
    pthread_mutex_unlock(&w->mu);
    return seen;
}

/* ---- packers ---------------------------------------------------------- */

static packer *take_packer(cr_writer *w, cr_blob_type t)
{
    pthread_mutex_lock(&w->mu);
    packer *p = w->idle[t];
    if (p) w->idle[t] = p->next;
    else if ((p = calloc(1, sizeof *p))) {
        packer **all = realloc(w->everyone, (w->neveryone + 1) * sizeof *all);
        if (!all) {
            free(p);
            p = NULL;
        } else {
            w->everyone = all;
            w->everyone[w->neveryone++] = p;
            p->type = t;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return p;
}

static void give_back(cr_writer *w, packer *p)
{
    pthread_mutex_lock(&w->mu);
    p->next = w->idle[p->type];
    w->idle[p->type] = p;
    pthread_mutex_unlock(&w->mu);
}

static size_t header_entry_size(const cr_pack_blob *b)
{
    return b->ulen ? CR_PACK_ENTRY_COMPRESSED : CR_PACK_ENTRY_PLAIN;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* Header plaintext (spec §8.2): type byte, LE32 length, [LE32 ulen], ID. */
static int build_header(const packer *p, cr_buf *h)
{
    for (size_t i = 0; i < p->n; i++) {
        const cr_pack_blob *b = &p->blobs[i];
        uint8_t e[CR_PACK_ENTRY_COMPRESSED];
        size_t k = header_entry_size(b);
        e[0] = (uint8_t)((b->ulen ? 2 : 0) | (b->type == CR_BLOB_TREE ? 1 : 0));
        put_le32(e + 1, b->length);
        if (b->ulen) put_le32(e + 5, b->ulen);
        memcpy(e + k - CR_ID_SIZE, b->id.b, CR_ID_SIZE);
        CR_TRY(cr_buf_append(h, e, k));
    }
    return 0;
}

/* Record a stored pack for the next index file; takes `blobs` in all cases. */
static int remember_stored(cr_writer *w, const cr_id *pack_id, cr_pack_blob *blobs, size_t n)
{
    pthread_mutex_lock(&w->mu);
    int r = 0;
    if (w->npending == w->pending_cap) {
        size_t cap = w->pending_cap ? w->pending_cap * 2 : 64;
        stored_pack *sp = realloc(w->pending, cap * sizeof *sp);
        if (!sp) r = cr_error(-ENOMEM, "out of memory");
        else w->pending = sp, w->pending_cap = cap;
    }
    if (r < 0) free(blobs);
    if (r == 0) {
        w->pending[w->npending++] = (stored_pack){*pack_id, blobs, n};
        w->pending_blobs += n;
        for (size_t i = 0; r == 0 && i < n; i++) {
            cr_index_entry e = {.id = blobs[i].id, .offset = blobs[i].offset, .length = blobs[i].length,
                                .ulen = blobs[i].ulen, .type = (uint8_t)blobs[i].type};
            r = cr_index_add(w->added, pack_id, &e);
        }
        w->stats.packs_written++;
    }
    pthread_mutex_unlock(&w->mu);
    return r;
}

static size_t pack_len(const packer *p)
{
    return p->flushed + p->data.len;
}

/* Streamed: write the gathered small blobs. */
static int stage_flush(packer *p)
{
    if (!p->data.len) return 0;
    CR_TRY(cr_be_stream_write(p->out, p->data.data, p->data.len));
    p->flushed += p->data.len;
    p->data.len = 0;
    return 0;
}

/* The end of a pack's save, with the save's result r: recorded for the next
 * index file unless it failed.  Takes `blobs` in all cases. */
static int pack_saved(cr_writer *w, int r, const cr_id *id, cr_pack_blob *blobs, size_t n)
{
    if (r == -EEXIST) r = 0; /* identical bytes are already stored */
    if (r < 0) {
        free(blobs);
        return r;
    }
    return remember_stored(w, id, blobs, n);
}

/* The packer's blob list, handed over; the packer starts a new one. */
static cr_pack_blob *take_blobs(packer *p, size_t *n)
{
    cr_pack_blob *blobs = p->blobs;
    *n = p->n;
    p->blobs = NULL;
    p->n = p->cap = 0;
    return blobs;
}

/* Streamed: the backend names the pack by the hash of what it was given. */
static int commit_pack(cr_writer *w, commit_job *j)
{
    cr_id id;
    int r = pack_saved(w, cr_be_stream_commit(j->out, id.b), &id, j->blobs, j->n);
    free(j);
    return r;
}

static int fail_sticky(cr_writer *w, int r);

static void *committer_main(void *arg)
{
    cr_writer *w = arg;
    pthread_mutex_lock(&w->cq_mu);
    for (;;) {
        while (!w->cq_head && !w->cq_stopping) pthread_cond_wait(&w->cq_work, &w->cq_mu);
        commit_job *j = w->cq_head;
        if (!j) break;
        w->cq_head = j->next;
        if (!w->cq_head) w->cq_tailp = &w->cq_head;
        bool stopping = w->cq_stopping;
        pthread_mutex_unlock(&w->cq_mu);
        if (stopping) { /* the writer is freed unflushed: nothing will index these */
            cr_be_stream_abort(j->out);
            free(j->blobs);
            free(j);
        } else {
            int r = commit_pack(w, j);
            if (r < 0) fail_sticky(w, r);
        }
        pthread_mutex_lock(&w->cq_mu);
        w->cq_busy--;
        pthread_cond_broadcast(&w->cq_room);
    }
    pthread_mutex_unlock(&w->cq_mu);
    return NULL;
}

/* Hand a streamed pack, written to its end, to the committer (started on
 * first use; without it the pack is committed right here). */
static int commit_later(cr_writer *w, packer *p)
{
    CR_TRY(stage_flush(p));
    commit_job *j = malloc(sizeof *j);
    if (!j) return cr_error(-ENOMEM, "out of memory");
    *j = (commit_job){.out = p->out};
    j->blobs = take_blobs(p, &j->n);
    p->out = NULL;
    p->flushed = 0;
    pthread_mutex_lock(&w->cq_mu);
    if (!w->cq_started) w->cq_started = pthread_create(&w->committer, NULL, committer_main, w) == 0;
    bool queued = w->cq_started;
    if (queued) {
        while (w->cq_busy >= COMMIT_QUEUE_MAX) pthread_cond_wait(&w->cq_room, &w->cq_mu);
        *w->cq_tailp = j;
        w->cq_tailp = &j->next;
        w->cq_busy++;
        pthread_cond_signal(&w->cq_work);
    }
    pthread_mutex_unlock(&w->cq_mu);
    return queued ? 0 : commit_pack(w, j);
}

/* Until every queued pack is committed (or has failed). */
static void wait_commits(cr_writer *w)
{
    pthread_mutex_lock(&w->cq_mu);
    while (w->cq_busy) pthread_cond_wait(&w->cq_room, &w->cq_mu);
    pthread_mutex_unlock(&w->cq_mu);
}

static int store_in_memory(cr_writer *w, packer *p)
{
    cr_id id;
    cr_sha256(p->data.data, p->data.len, id.b);
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&id, hex);
    int r = cr_be_save(w->repo->be, CR_FILE_PACK, hex, p->data.data, p->data.len);
    cr_buf_reset(&p->data);
    size_t n;
    cr_pack_blob *blobs = take_blobs(p, &n);
    return pack_saved(w, r, &id, blobs, n);
}

/* Seal the header, append its length; the pack is then named by its hash
 * and stored (streamed: by the committer). */
static int finish_pack(cr_writer *w, packer *p)
{
    _cleanup_buf_ cr_buf header = CR_BUF_INIT;
    CR_TRY(build_header(p, &header));
    size_t hlen = header.len + CR_CRYPTO_OVERHEAD;
    CR_TRY(cr_buf_reserve(&p->data, hlen + 4));
    CR_TRY(cr_seal(&w->repo->master, header.data, header.len, p->data.data + p->data.len));
    p->data.len += hlen;
    put_le32(p->data.data + p->data.len, (uint32_t)hlen);
    p->data.len += 4;
    return p->out ? commit_later(w, p) : store_in_memory(w, p);
}

/* ---- index files ------------------------------------------------------ */

static int encode_index(const stored_pack *packs, size_t n, cr_buf *out)
{
    CR_TRY(cr_buf_puts(out, "{\"packs\":["));
    for (size_t i = 0; i < n; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&packs[i].id, hex);
        CR_TRY(cr_buf_printf(out, "%s{\"id\":\"%s\",\"blobs\":[", i ? "," : "", hex));
        for (size_t k = 0; k < packs[i].n; k++) {
            const cr_pack_blob *b = &packs[i].blobs[k];
            cr_id_to_hex(&b->id, hex);
            CR_TRY(cr_buf_printf(out, "%s{\"id\":\"%s\",\"type\":\"%s\",\"offset\":%u,\"length\":%u", k ? "," : "",
                                 hex, cr_blob_type_name(b->type), b->offset, b->length));
            if (b->ulen) CR_TRY(cr_buf_printf(out, ",\"uncompressed_length\":%u", b->ulen));
            CR_TRY(cr_buf_putc(out, '}'));
        }
        CR_TRY(cr_buf_puts(out, "]}"));
    }
    return cr_buf_puts(out, "]}\n");
}

static void free_stored(stored_pack *packs, size_t n)
{
    for (size_t i = 0; i < n; i++) free(packs[i].blobs);
    free(packs);
}

/* Write index files for uploaded packs; with `all` false only once enough
 * entries have piled up. */
static int write_pending_index(cr_writer *w, bool all)
{
    pthread_mutex_lock(&w->index_mu);
    pthread_mutex_lock(&w->mu);
    stored_pack *packs = NULL;
    size_t n = 0;
    if (w->npending && (all || w->pending_blobs >= w->index_flush)) {
        packs = w->pending;
        n = w->npending;
        w->pending = NULL;
        w->npending = w->pending_cap = w->pending_blobs = 0;
    }
    pthread_mutex_unlock(&w->mu);
    int r = 0;
    if (n) {
        cr_buf json = CR_BUF_INIT;
        r = encode_index(packs, n, &json);
        free_stored(packs, n); /* before the JSON is compressed: the peak of a backup */
        if (r == 0) r = cr_repo_save_unpacked(w->repo, CR_FILE_INDEX, json.data, json.len, NULL);
        cr_buf_free(&json);
        if (r == 0) {
            pthread_mutex_lock(&w->mu);
            w->stats.index_files_written++;
            pthread_mutex_unlock(&w->mu);
        }
    }
    pthread_mutex_unlock(&w->index_mu);
    return r;
}

/* ---- saving blobs ----------------------------------------------------- */

/* "auto" stores data that zstd could not shrink as it is (valid in v2: an
 * index entry without uncompressed_length), saving the compressor's pass on
 * media and archives when writing and zstd's copy when reading. */
static bool wants_compression(const cr_writer *w, cr_blob_type t, const void *data, size_t n)
{
    if (w->repo->cfg.version < 2 || n == 0) return false;
    if (t == CR_BLOB_TREE) return true;
    if (w->opts.compression == CR_COMPRESS_OFF) return false;
    return w->opts.compression != CR_COMPRESS_AUTO || !cr_zstd_looks_incompressible(data, n);
}

static int compression_level(const cr_writer *w, cr_blob_type t)
{
    return t == CR_BLOB_TREE && w->opts.compression == CR_COMPRESS_OFF ? 3 : cr_compression_level(w->opts.compression);
}

/* In memory: compress into zbuf, seal into the pack buffer. */
static int seal_in_memory(cr_writer *w, packer *p, cr_blob_type t, bool z, const void *data, size_t n, size_t *slen)
{
    const uint8_t *src = data;
    *slen = n;
    if (z) {
        CR_TRY(cr_zstd_compress(data, n, compression_level(w, t), &p->zbuf));
        src = p->zbuf.data;
        *slen = p->zbuf.len;
    }
    if (!p->data.cap) CR_TRY(cr_buf_reserve(&p->data, w->opts.pack_size + *slen + 4096));
    CR_TRY(cr_buf_reserve(&p->data, *slen + CR_CRYPTO_OVERHEAD));
    CR_TRY(cr_seal(&w->repo->master, src, *slen, p->data.data + p->data.len));
    p->data.len += *slen + CR_CRYPTO_OVERHEAD;
    return 0;
}

/* Streamed: sealed bytes gather in data and are written whenever it fills. */
static int stage_put(packer *p, const void *bytes, size_t n)
{
    CR_TRY(cr_buf_append(&p->data, bytes, n));
    return p->data.len >= STAGE_MAX ? stage_flush(p) : 0;
}

typedef struct {
    packer *p;
    size_t len; /* ciphertext so far */
} seal_sink;

/* Encrypt a piece of compressed output in place and stage it. */
static int seal_piece(void *ud, uint8_t *piece, size_t n)
{
    seal_sink *s = ud;
    CR_TRY(cr_seal_update(piece, n, piece));
    s->len += n;
    return stage_put(s->p, piece, n);
}

/* Streamed: compress, seal and stage one piece at a time, so that a blob
 * costs PIECE_MAX bytes of memory whatever its size. */
static int seal_streamed(cr_writer *w, packer *p, cr_blob_type t, bool z, const void *data, size_t n, size_t *slen)
{
    if (!p->out) CR_TRY(cr_be_stream_open(w->repo->be, CR_FILE_PACK, &p->out));
    if (p->zbuf.cap < PIECE_MAX) CR_TRY(cr_buf_reserve(&p->zbuf, PIECE_MAX));
    uint8_t iv[CR_IV_SIZE], tag[CR_MAC_SIZE];
    CR_TRY(cr_seal_begin(&w->repo->master, iv));
    CR_TRY(stage_put(p, iv, sizeof iv));
    seal_sink sink = {p, 0};
    if (z) {
        CR_TRY(cr_zstd_compress_pieces(data, n, compression_level(w, t), p->zbuf.data, PIECE_MAX, seal_piece, &sink));
    } else {
        for (size_t off = 0; off < n; off += PIECE_MAX) {
            size_t len = n - off < PIECE_MAX ? n - off : PIECE_MAX;
            CR_TRY(cr_seal_update((const uint8_t *)data + off, len, p->zbuf.data));
            sink.len += len;
            CR_TRY(stage_put(p, p->zbuf.data, len));
        }
    }
    CR_TRY(cr_seal_final(tag));
    *slen = sink.len;
    return stage_put(p, tag, sizeof tag);
}

/* Compress (when due) and seal one blob into the packer. */
static int append_blob(cr_writer *w, packer *p, cr_blob_type t, const void *data, size_t n, const cr_id *id)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        cr_pack_blob *b = realloc(p->blobs, cap * sizeof *b);
        if (!b) return cr_error(-ENOMEM, "out of memory");
        p->blobs = b;
        p->cap = cap;
    }
    size_t offset = pack_len(p), slen;
    bool z = wants_compression(w, t, data, n);
    if (w->stream) CR_TRY(seal_streamed(w, p, t, z, data, n, &slen));
    else CR_TRY(seal_in_memory(w, p, t, z, data, n, &slen));
    cr_pack_blob *b = &p->blobs[p->n++];
    b->type = t;
    b->offset = (uint32_t)offset;
    b->length = (uint32_t)(slen + CR_CRYPTO_OVERHEAD);
    b->ulen = z ? (uint32_t)n : 0;
    b->id = *id;
    pthread_mutex_lock(&w->mu);
    if (t == CR_BLOB_TREE) w->stats.tree_blobs++;
    else w->stats.data_blobs++;
    w->stats.data_added += n;
    w->stats.data_added_packed += b->length;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* After a failure: a streamed pack may hold part of a blob, so it must never
 * be finished; its blobs are lost, which the sticky error reports. */
static void discard_pack(packer *p)
{
    cr_be_stream_abort(p->out);
    p->out = NULL;
    p->flushed = 0;
    p->n = 0;
    cr_buf_reset(&p->data);
}

static bool pack_is_full(const cr_writer *w, const packer *p)
{
    /* Header entries are bounded too: 16 MiB of header is ~400,000 blobs. */
    return pack_len(p) >= w->opts.pack_size || p->n * CR_PACK_ENTRY_COMPRESSED >= CR_PACK_HEADER_MAX - 4096;
}

static int fail_sticky(cr_writer *w, int r)
{
    pthread_mutex_lock(&w->mu);
    if (!w->sticky_error) {
        w->sticky_error = r;
        snprintf(w->sticky_msg, sizeof w->sticky_msg, "%s", cr_error_message());
    }
    pthread_mutex_unlock(&w->mu);
    return r;
}

/* The first failure of any thread, as this thread's error. */
static int sticky(cr_writer *w)
{
    pthread_mutex_lock(&w->mu);
    int r = w->sticky_error;
    char msg[sizeof w->sticky_msg];
    memcpy(msg, w->sticky_msg, sizeof msg);
    pthread_mutex_unlock(&w->mu);
    if (!r) return 0;
    return msg[0] ? cr_error(r, "an earlier upload failed: %s", msg) : cr_error(r, "an earlier upload failed");
}

int cr_writer_save_blob(cr_writer *w, cr_blob_type t, const void *data, size_t n, const cr_id *known_id,
                        cr_id *id_out, bool *added)
{
    cr_id id;
    if (known_id) id = *known_id;
    else cr_sha256(data, n, id.b);
    if (id_out) *id_out = id;
    if (added) *added = false;
    if (n > UINT32_MAX - 4096) return cr_error(-EFBIG, "blob of %zu bytes is too large", n);
    size_t count;
    if (cr_index_lookup(w->repo->index, t, &id, &count)) return 0;
    pthread_mutex_lock(&w->mu);
    int r = w->sticky_error;
    int dup = r ? 1 : seen_insert(w, t, &id, true);
    pthread_mutex_unlock(&w->mu);
    if (r < 0) return sticky(w);
    if (dup) return dup < 0 ? dup : 0;
    packer *p = take_packer(w, t);
    if (!p) return fail_sticky(w, cr_error(-ENOMEM, "out of memory"));
    r = append_blob(w, p, t, data, n, &id);
    if (r == 0 && pack_is_full(w, p)) r = finish_pack(w, p);
    if (r < 0) discard_pack(p);
    give_back(w, p);
    if (r == 0) r = write_pending_index(w, false);
    if (r < 0) return fail_sticky(w, r);
    if (added) *added = true;
    return 0;
}

int cr_writer_flush(cr_writer *w)
{
    CR_TRY(sticky(w));
    for (size_t i = 0; i < w->neveryone; i++) {
        packer *p = w->everyone[i];
        if (p->n) {
            int r = finish_pack(w, p);
            if (r < 0) return fail_sticky(w, r);
        }
        /* Idle now: give its buffers back before the index is encoded
         * (made again if the writer goes on). */
        if (!p->out) {
            cr_buf_free(&p->data);
            cr_buf_free(&p->zbuf);
        }
    }
    wait_commits(w);
    CR_TRY(sticky(w));
    int r = write_pending_index(w, true);
    if (r < 0) return fail_sticky(w, r);
    /* Make the new blobs visible to later lookups through the repository index. */
    pthread_mutex_lock(&w->mu);
    cr_index *idx = w->repo->index;
    for (size_t i = 0; r == 0 && i < w->added->nblobs; i++)
        r = cr_index_add(idx, &w->added->packs[w->added->blobs[i].pack], &w->added->blobs[i]);
    cr_index_finish(idx);
    w->added->nblobs = 0;
    pthread_mutex_unlock(&w->mu);
    return r;
}

void cr_writer_get_stats(cr_writer *w, cr_writer_stats *st)
{
    pthread_mutex_lock(&w->mu);
    *st = w->stats;
    pthread_mutex_unlock(&w->mu);
}

void cr_writer_free(cr_writer *w)
{
    if (!w) return;
    if (w->cq_started) {
        pthread_mutex_lock(&w->cq_mu);
        w->cq_stopping = true;
        pthread_cond_signal(&w->cq_work);
        pthread_mutex_unlock(&w->cq_mu);
        pthread_join(w->committer, NULL);
    }
    for (size_t i = 0; i < w->neveryone; i++) {
        cr_be_stream_abort(w->everyone[i]->out); /* a pack never finished */
        cr_buf_free(&w->everyone[i]->data);
        cr_buf_free(&w->everyone[i]->zbuf);
        free(w->everyone[i]->blobs);
        free(w->everyone[i]);
    }
    free(w->everyone);
    free_stored(w->pending, w->npending);
    free(w->seen);
    free(w->seen_type);
    cr_index_free(w->added);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->index_mu);
    pthread_mutex_destroy(&w->cq_mu);
    pthread_cond_destroy(&w->cq_work);
    pthread_cond_destroy(&w->cq_room);
    free(w);
}
