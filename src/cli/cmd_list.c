/* crestic list: the IDs of one kind of repository file, one per line, as
 * `restic list`.  "blobs" prints "data <id>" / "tree <id>" for every entry
 * of every index file (duplicates included, as restic does); "packs ID"
 * lists the packs a snapshot needs (today's restic). */
#include "cli/cli.h"
#include "cli/output.h"

#include <stdlib.h>
#include <string.h>

#include "repo/index.h"
#include "util/cleanup.h"
#include "util/error.h"

extern const cr_command cr_cmd_list;

static const struct {
    const char *name;
    cr_filetype type;
} list_types[] = {
    {"packs", CR_FILE_PACK}, {"index", CR_FILE_INDEX}, {"snapshots", CR_FILE_SNAPSHOT},
    {"keys", CR_FILE_KEY},   {"locks", CR_FILE_LOCK},
};

/* Lines are collected and written in large pieces. */
static int write_out(cr_buf *b)
{
    int e = cr_write_stdout(b->data, b->len);
    cr_buf_reset(b);
    return e;
}

static int print_line(cr_buf *b)
{
    CR_TRY(cr_buf_putc(b, '\n'));
    return b->len >= 65536 ? write_out(b) : 0;
}

static int list_files(cr_repo *r, cr_filetype t)
{
    cr_id *ids = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_list_ids(r, t, &ids, NULL, &n));
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    int e = 0;
    for (size_t i = 0; i < n && e >= 0; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        e = cr_buf_puts(&b, hex);
        if (e >= 0) e = print_line(&b);
    }
    free(ids);
    int w = write_out(&b);
    return e < 0 ? e : w;
}

/* Every entry of one index file, in its own order. */
static int list_index_blobs(cr_repo *r, const cr_id *id, cr_buf *b)
{
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    CR_TRY_CTX(cr_repo_load_unpacked(r, CR_FILE_INDEX, id, &json), "index %s", hex);
    cr_index *idx = cr_index_new();
    if (!idx) return cr_error(-ENOMEM, "out of memory");
    int e = cr_index_add_json(idx, (const char *)json.data, json.len, r->cfg.version);
    if (e < 0) cr_error_ctx(e, "index %s", hex);
    for (size_t i = 0; e >= 0 && i < idx->nblobs; i++) {
        cr_id_to_hex(&idx->blobs[i].id, hex);
        e = cr_buf_printf(b, "%s %s", cr_blob_type_name(idx->blobs[i].type), hex);
        if (e >= 0) e = print_line(b);
    }
    cr_index_free(idx);
    return e;
}

static int list_blobs(cr_repo *r)
{
    cr_id *ids = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_list_ids(r, CR_FILE_INDEX, &ids, NULL, &n));
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    int e = 0;
    for (size_t i = 0; i < n && e >= 0; i++) e = list_index_blobs(r, &ids[i], &b);
    free(ids);
    int w = write_out(&b);
    return e < 0 ? e : w;
}

/* ---- list packs SNAPSHOT ---------------------------------------------------- */

typedef struct {
    cr_repo *r;
    uint8_t *pack_used; /* per position in the index's pack table */
} pack_walk;

static void mark_blob_packs(pack_walk *w, cr_blob_type t, const cr_id *id)
{
    size_t count = 0;
    const cr_index_entry *e = cr_index_lookup(w->r->index, t, id, &count);
    for (size_t i = 0; e && i < count; i++) w->pack_used[e[i].pack] = 1;
}

static int mark_node(void *ud, const cr_node *node, const char *path, size_t len)
{
    (void)path;
    (void)len;
    pack_walk *w = ud;
    for (size_t i = 0; i < node->ncontent; i++) mark_blob_packs(w, CR_BLOB_DATA, &node->content[i]);
    if (node->type == CR_NODE_DIR && node->has_subtree) mark_blob_packs(w, CR_BLOB_TREE, &node->subtree);
    return 0;
}

static int id_cmp(const void *a, const void *b)
{
    return cr_id_cmp(a, b);
}

static int list_snapshot_packs(cr_repo *r, const char *ref)
{
    cr_snapshot sn;
    int e = cr_cli_find_snapshot(r, ref, NULL, &sn, NULL);
    if (e < 0) return cr_error_ctx(e, "failed to find snapshot");
    cr_id root = sn.tree;
    cr_snapshot_clear(&sn);
    CR_TRY(cr_repo_load_index(r));
    pack_walk w = {.r = r, .pack_used = calloc(r->index->npacks + 1, 1)};
    if (!w.pack_used) return cr_error(-ENOMEM, "out of memory");
    mark_blob_packs(&w, CR_BLOB_TREE, &root);
    e = cr_walk_tree(r, &root, "/", mark_node, NULL, &w, NULL);
    _cleanup_free_ cr_id *packs = calloc(r->index->npacks + 1, sizeof *packs);
    size_t n = 0;
    if (e >= 0 && !packs) e = cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; e >= 0 && i < r->index->npacks; i++)
        if (w.pack_used[i]) packs[n++] = r->index->packs[i];
    free(w.pack_used);
    CR_TRY(e);
    if (n > 1) qsort(packs, n, sizeof *packs, id_cmp);
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&packs[i], hex);
        CR_TRY(cr_buf_puts(&b, hex));
        CR_TRY(print_line(&b));
    }
    return write_out(&b);
}

/* ---- command ----------------------------------------------------------------- */

static int check_args(int npos, char **pos)
{
    if (npos == 0 || (!strcmp(pos[0], "packs") && npos > 2) || (strcmp(pos[0], "packs") && npos != 1))
        return cr_error(CR_E_USAGE, "too many parameters or type not specified. Must be one of "
                                    "[blobs|packs|index|snapshots|keys|locks] or 'packs snapshotID'");
    if (!strcmp(pos[0], "blobs")) return 0;
    for (size_t i = 0; i < sizeof list_types / sizeof list_types[0]; i++)
        if (!strcmp(pos[0], list_types[i].name)) return 0;
    return cr_error(CR_E_USAGE, "invalid type");
}

static int list(cr_repo *r, int npos, char **pos)
{
    if (!strcmp(pos[0], "blobs")) return list_blobs(r);
    if (npos == 2) return list_snapshot_packs(r, pos[1]);
    for (size_t i = 0; i < sizeof list_types / sizeof list_types[0]; i++)
        if (!strcmp(pos[0], list_types[i].name)) return list_files(r, list_types[i].type);
    return cr_error(CR_E_USAGE, "invalid type");
}

static int run_list(cr_global *g, int argc, char **argv)
{
    const cr_flag flags[] = {{NULL, 0, 0, NULL, NULL, NULL}};
    int npos = 0;
    int e = cr_parse_flags(g, &cr_cmd_list, flags, argc, argv, &npos);
    if (e == 0) e = check_args(npos, argv);
    if (e != 0) return e > 0 ? CR_EXIT_OK : cr_cli_fail(g, e);
    cr_repo *r = NULL;
    int rc = cr_cli_open_repo(g, &r);
    if (rc != 0) return rc;
    /* listing locks takes none, so it never shows its own */
    bool locks = !strcmp(argv[0], "locks");
    bool saved = g->no_lock;
    g->no_lock |= locks;
    cr_lock *lock = NULL;
    rc = cr_cli_lock(g, r, false, &lock);
    g->no_lock = saved;
    if (rc == 0) {
        e = list(r, npos, argv);
        fflush(stdout);
        rc = e < 0 ? cr_cli_fail(g, e) : CR_EXIT_OK;
        cr_lock_release(lock);
    }
    cr_repo_close(r);
    return rc;
}

const cr_command cr_cmd_list = {
    "list",
    "List objects in the repository",
    "crestic list [flags] [blobs|packs|index|snapshots|keys|locks|packs snapshotID]",
    run_list,
};
