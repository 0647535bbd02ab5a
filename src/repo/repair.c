/* Index rewriting for prune and repair index (see repair.h). */
#include "repo/repair.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo/pack.h"
#include "repo/writer.h"
#include "util/cleanup.h"
#include "util/error.h"

void cr_test_abort_point(const char *step)
{
    const char *want = getenv("CRESTIC_TEST_ABORT_AT");
    if (!want || strcmp(want, step) != 0) return;
    fflush(stdout);
    fprintf(stderr, "test hook: killed at %s\n", step);
    raise(SIGKILL);
}

/* ---- entries grouped by pack ------------------------------------------ */

static int cmp_offset(const void *a, const void *b, void *ctx)
{
    const cr_index_entry *blobs = ctx;
    uint32_t x = blobs[*(const size_t *)a].offset, y = blobs[*(const size_t *)b].offset;
    return x < y ? -1 : x > y;
}

int cr_pack_groups_build(const cr_index *idx, cr_pack_groups *g)
{
    memset(g, 0, sizeof *g);
    g->npacks = idx->npacks;
    g->start = calloc(idx->npacks + 2, sizeof *g->start);
    g->order = malloc((idx->nblobs ? idx->nblobs : 1) * sizeof *g->order);
    size_t *cursor = calloc(idx->npacks + 1, sizeof *cursor);
    if (!g->start || !g->order || !cursor) {
        free(cursor);
        cr_pack_groups_free(g);
        return cr_error(-ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < idx->nblobs; i++) g->start[idx->blobs[i].pack + 1]++;
    for (size_t p = 0; p < idx->npacks; p++) g->start[p + 1] += g->start[p];
    memcpy(cursor, g->start, (idx->npacks + 1) * sizeof *cursor);
    for (size_t i = 0; i < idx->nblobs; i++) g->order[cursor[idx->blobs[i].pack]++] = i;
    free(cursor);
    for (size_t p = 0; p < idx->npacks; p++)
        if (g->start[p + 1] - g->start[p] > 1)
            qsort_r(g->order + g->start[p], g->start[p + 1] - g->start[p], sizeof *g->order, cmp_offset, idx->blobs);
    return 0;
}

void cr_pack_groups_free(cr_pack_groups *g)
{
    free(g->order);
    free(g->start);
    memset(g, 0, sizeof *g);
}

uint64_t cr_pack_size_from_index(const cr_index *idx, const cr_pack_groups *g, uint32_t pack)
{
    uint64_t size = 4 + CR_CRYPTO_OVERHEAD;
    for (size_t k = g->start[pack]; k < g->start[pack + 1]; k++) {
        const cr_index_entry *e = &idx->blobs[g->order[k]];
        size += e->length + (e->ulen ? CR_PACK_ENTRY_COMPRESSED : CR_PACK_ENTRY_PLAIN);
    }
    return size;
}

/* ---- writing index files ---------------------------------------------- */

/* One {"id":...,"blobs":[...]} member, the shape the blob writer emits. */
static int encode_pack(cr_buf *out, const cr_index *idx, const cr_pack_groups *g, uint32_t pack, bool first)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&idx->packs[pack], hex);
    CR_TRY(cr_buf_printf(out, "%s{\"id\":\"%s\",\"blobs\":[", first ? "" : ",", hex));
    for (size_t k = g->start[pack]; k < g->start[pack + 1]; k++) {
        const cr_index_entry *e = &idx->blobs[g->order[k]];
        cr_id_to_hex(&e->id, hex);
        CR_TRY(cr_buf_printf(out, "%s{\"id\":\"%s\",\"type\":\"%s\",\"offset\":%u,\"length\":%u",
                             k == g->start[pack] ? "" : ",", hex, cr_blob_type_name((cr_blob_type)e->type),
                             e->offset, e->length));
        if (e->ulen) CR_TRY(cr_buf_printf(out, ",\"uncompressed_length\":%u", e->ulen));
        CR_TRY(cr_buf_putc(out, '}'));
    }
    return cr_buf_puts(out, "]}");
}

static int save_index_file(cr_repo *r, cr_buf *json, size_t *files)
{
    CR_TRY(cr_buf_puts(json, "]}\n"));
    CR_TRY(cr_repo_save_unpacked(r, CR_FILE_INDEX, json->data, json->len, NULL));
    cr_buf_reset(json);
    (*files)++;
    return 0;
}

static int save_groups(cr_repo *r, const cr_index *idx, const cr_pack_groups *g, const bool *keep, size_t *files)
{
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    size_t blobs_in_file = 0, packs_in_file = 0;
    for (uint32_t p = 0; p < idx->npacks; p++) {
        size_t n = g->start[p + 1] - g->start[p];
        if ((keep && !keep[p]) || n == 0) continue;
        if (packs_in_file == 0) CR_TRY(cr_buf_puts(&json, "{\"packs\":["));
        CR_TRY(encode_pack(&json, idx, g, p, packs_in_file == 0));
        packs_in_file++;
        blobs_in_file += n;
        if (blobs_in_file >= CR_INDEX_FLUSH_BLOBS) {
            CR_TRY(save_index_file(r, &json, files));
            blobs_in_file = packs_in_file = 0;
        }
    }
    if (packs_in_file) CR_TRY(save_index_file(r, &json, files));
    return 0;
}

int cr_index_save_packs(cr_repo *r, const cr_index *idx, const bool *keep_pack, size_t *written)
{
    size_t files = 0;
    cr_pack_groups g;
    CR_TRY(cr_pack_groups_build(idx, &g));
    int e = save_groups(r, idx, &g, keep_pack, &files);
    cr_pack_groups_free(&g);
    if (written) *written = files;
    return e < 0 ? cr_error_ctx(e, "writing the new index") : 0;
}

int cr_index_files_remove(cr_repo *r, const cr_id *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        CR_TRY(cr_be_remove(r->be, CR_FILE_INDEX, hex));
        if (i == 0) cr_test_abort_point("index-removed-1");
    }
    return 0;
}

/* ---- repair index ----------------------------------------------------- */

typedef struct {
    cr_repo *repo;
    const cr_repair_opts *o;
    cr_repair_result *res;
    cr_id *index_ids;   /* the old index files, all removed at the end */
    size_t nindex;
    cr_index *old;      /* what the old index files say */
    cr_pack_groups old_groups;
    cr_id *pack_ids;    /* packs in the backend */
    uint64_t *pack_sizes;
    size_t npacks;
    cr_index *fresh;    /* the new index */
} repairer;

static void say(repairer *rp, cr_repair_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(repairer *rp, cr_repair_level level, const char *fmt, ...)
{
    if (!rp->o->report) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rp->o->report(rp->o->ud, level, msg);
}

/* Damage (a format or authentication problem) is worked around; any other
 * failure (I/O, memory, interruption) might be transient and stops the
 * repair before it changes anything. */
static bool is_damage(int e)
{
    return e == CR_E_FORMAT || e == CR_E_AUTH;
}

static int add_index_file(repairer *rp, const cr_id *id, cr_buf *json)
{
    int e = cr_repo_load_unpacked(rp->repo, CR_FILE_INDEX, id, json);
    if (e == 0) {
        /* Parse into a scratch index first: a half-parsed file adds nothing. */
        cr_index *one = cr_index_new();
        if (!one) return cr_error(-ENOMEM, "out of memory");
        e = cr_index_add_json(one, (const char *)json->data, json->len, rp->repo->cfg.version);
        for (size_t i = 0; e == 0 && i < one->nblobs; i++)
            e = cr_index_add(rp->old, &one->packs[one->blobs[i].pack], &one->blobs[i]);
        cr_index_free(one);
    }
    if (e < 0 && is_damage(e)) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(id, hex);
        say(rp, CR_REPAIR_WARN, "index %s cannot be loaded, its packs are read instead: %s", hex, cr_error_message());
        rp->res->bad_index_files++;
        return 0;
    }
    return e;
}

static int load_old_index(repairer *rp)
{
    if (!rp->o->read_all_packs) {
        say(rp, CR_REPAIR_INFO, "loading indexes...");
        _cleanup_buf_ cr_buf json = CR_BUF_INIT;
        for (size_t i = 0; i < rp->nindex; i++) CR_TRY(add_index_file(rp, &rp->index_ids[i], &json));
    }
    cr_index_finish(rp->old);
    return cr_pack_groups_build(rp->old, &rp->old_groups);
}

static int copy_old_entries(repairer *rp, uint32_t pos)
{
    const cr_pack_groups *g = &rp->old_groups;
    for (size_t k = g->start[pos]; k < g->start[pos + 1]; k++)
        CR_TRY(cr_index_add(rp->fresh, &rp->old->packs[pos], &rp->old->blobs[g->order[k]]));
    return 0;
}

static int read_pack_header(repairer *rp, const cr_id *id, uint64_t size)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    cr_pack_blob *blobs = NULL;
    size_t n = 0;
    int e = cr_repo_pack_header(rp->repo, id, size, &blobs, &n);
    if (e < 0 && is_damage(e)) {
        const char *why = cr_error_message();
        /* The message usually names the pack already. */
        if (!strncmp(why, "pack ", 5) && !strncmp(why + 5, hex, CR_ID_HEX) && !strncmp(why + 5 + CR_ID_HEX, ": ", 2))
            why += 5 + CR_ID_HEX + 2;
        say(rp, CR_REPAIR_WARN, "skipped incomplete pack file: %s: %s", hex, why);
        rp->res->packs_skipped++;
        return 0;
    }
    CR_TRY(e);
    say(rp, CR_REPAIR_VERBOSE, "adding pack file to index %s", hex);
    rp->res->packs_read++;
    for (size_t i = 0; e == 0 && i < n; i++) {
        cr_index_entry en = {.id = blobs[i].id, .offset = blobs[i].offset, .length = blobs[i].length,
                             .ulen = blobs[i].ulen, .type = (uint8_t)blobs[i].type};
        e = cr_index_add(rp->fresh, id, &en);
    }
    free(blobs);
    return e;
}

/* Reuse what the old index says about packs of the right size, read the
 * headers of all other packs. */
static int collect_packs(repairer *rp)
{
    say(rp, CR_REPAIR_INFO, "getting pack files to read...");
    CR_TRY(cr_repo_list_ids(rp->repo, CR_FILE_PACK, &rp->pack_ids, &rp->pack_sizes, &rp->npacks));
    _cleanup_free_ bool *listed = calloc(rp->old->npacks + 1, sizeof *listed);
    _cleanup_free_ size_t *to_read = malloc((rp->npacks + 1) * sizeof *to_read);
    if (!listed || !to_read) return cr_error(-ENOMEM, "out of memory");
    size_t nread = 0;
    for (size_t i = 0; i < rp->npacks; i++) {
        uint32_t pos;
        bool known = cr_index_find_pack(rp->old, &rp->pack_ids[i], &pos);
        if (known) listed[pos] = true;
        if (known && cr_pack_size_from_index(rp->old, &rp->old_groups, pos) == rp->pack_sizes[i])
            CR_TRY(copy_old_entries(rp, pos));
        else to_read[nread++] = i;
    }
    for (uint32_t p = 0; p < rp->old->npacks; p++)
        if (!listed[p]) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&rp->old->packs[p], hex);
            say(rp, CR_REPAIR_VERBOSE, "removing missing pack file %s from the index", hex);
            rp->res->packs_forgotten++;
        }
    if (nread) say(rp, CR_REPAIR_INFO, "reading pack files");
    for (size_t k = 0; k < nread; k++) {
        if (rp->o->cancel && *rp->o->cancel) return cr_error(CR_E_INTERRUPTED, "interrupted");
        CR_TRY(read_pack_header(rp, &rp->pack_ids[to_read[k]], rp->pack_sizes[to_read[k]]));
    }
    cr_index_finish(rp->fresh);
    rp->res->packs = rp->fresh->npacks;
    return 0;
}

static int replace_index(repairer *rp)
{
    say(rp, CR_REPAIR_INFO, "rebuilding index");
    CR_TRY(cr_index_save_packs(rp->repo, rp->fresh, NULL, &rp->res->index_files_written));
    cr_test_abort_point("repair:index-written");
    say(rp, CR_REPAIR_INFO, "deleting obsolete index files");
    CR_TRY(cr_index_files_remove(rp->repo, rp->index_ids, rp->nindex));
    rp->res->index_files_removed = rp->nindex;
    return 0;
}

int cr_repair_index(cr_repo *r, const cr_repair_opts *o, cr_repair_result *res)
{
    memset(res, 0, sizeof *res);
    repairer rp = {.repo = r, .o = o, .res = res};
    rp.old = cr_index_new();
    rp.fresh = cr_index_new();
    int e = rp.old && rp.fresh ? 0 : cr_error(-ENOMEM, "out of memory");
    /* Listed first: the files written below must not be removed. */
    if (e == 0) e = cr_repo_list_ids(r, CR_FILE_INDEX, &rp.index_ids, NULL, &rp.nindex);
    if (e == 0) e = load_old_index(&rp);
    if (e == 0) e = collect_packs(&rp);
    if (e == 0) e = replace_index(&rp);
    if (e == 0) {
        /* The repository's in-memory index now follows the new files. */
        cr_index_free(r->index);
        r->index = rp.fresh;
        rp.fresh = NULL;
    }
    cr_pack_groups_free(&rp.old_groups);
    cr_index_free(rp.old);
    cr_index_free(rp.fresh);
    free(rp.index_ids);
    free(rp.pack_ids);
    free(rp.pack_sizes);
    return e;
}
