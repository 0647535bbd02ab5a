/* crestic find: files by pattern, or blobs/trees/packs by ID, across
 * snapshots (newest first), with restic 0.14's output. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/output.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "util/error.h"
#include "util/json.h"
#include "util/pattern.h"

typedef struct {
    cr_global *g;
    cr_repo *repo;
    bool long_format, ignore_case;
    bool has_oldest, has_newest;
    cr_time oldest, newest;
    cr_patterns **pats;     /* one compiled list per pattern, as restic tries them one by one */
    size_t npats;
    /* ID search */
    char **blob_ids, **tree_ids; /* hex, full or 8-char short */
    size_t nblobs, ntrees;
    size_t trees_found;
    /* output state (restic's statefulOutput) */
    const cr_snapshot *cur, *printed;
    size_t hits;
    bool json_open;
    cr_buf out;
} finder;

static uint32_t type_bits(cr_node_type t)
{
    switch (t) {
    case CR_NODE_DIR: return CR_MODE_DIR;
    case CR_NODE_SYMLINK: return CR_MODE_SYMLINK;
    case CR_NODE_DEV: return CR_MODE_DEVICE;
    case CR_NODE_CHARDEV: return CR_MODE_DEVICE | CR_MODE_CHARDEV;
    case CR_NODE_FIFO: return CR_MODE_NAMEDPIPE;
    case CR_NODE_SOCKET: return CR_MODE_SOCKET;
    default: return 0;
    }
}

static int flush(finder *f)
{
    int r = cr_write_stdout(f->out.data, f->out.len);
    cr_buf_reset(&f->out);
    return r;
}

static int put_time_member(cr_buf *b, const char *key, const cr_time *t)
{
    CR_TRY(cr_buf_printf(b, ",\"%s\":\"", key));
    CR_TRY(cr_time_format(b, t));
    return cr_buf_putc(b, '"');
}

static int put_opt_string(cr_buf *b, const char *key, const char *v, size_t n)
{
    if (!v || !n) return 0;
    CR_TRY(cr_buf_printf(b, ",\"%s\":", key));
    return cr_json_put_string(b, v, n);
}

/* A node as find --json prints it: path and permissions first, without
 * name, inode, xattrs, device, content and subtree. */
static int node_json(cr_buf *b, const char *path, const cr_node *n)
{
    char perm[33];
    cr_filemode_string(n->mode, perm);
    CR_TRY(cr_buf_puts(b, "{\"path\":"));
    CR_TRY(cr_json_put_cstr(b, path));
    CR_TRY(cr_buf_puts(b, ",\"permissions\":"));
    CR_TRY(cr_json_put_cstr(b, perm));
    CR_TRY(cr_buf_puts(b, ",\"type\":"));
    CR_TRY(cr_json_put_cstr(b, n->type_name));
    if (n->mode) CR_TRY(cr_buf_printf(b, ",\"mode\":%u", n->mode));
    CR_TRY(put_time_member(b, "mtime", &n->mtime));
    CR_TRY(put_time_member(b, "atime", &n->atime));
    CR_TRY(put_time_member(b, "ctime", &n->ctime));
    CR_TRY(cr_buf_printf(b, ",\"uid\":%u,\"gid\":%u", n->uid, n->gid));
    CR_TRY(put_opt_string(b, "user", n->user, n->user ? strlen(n->user) : 0));
    CR_TRY(put_opt_string(b, "group", n->group, n->group ? strlen(n->group) : 0));
    if (n->device_id) CR_TRY(cr_buf_printf(b, ",\"device_id\":%llu", (unsigned long long)n->device_id));
    if (n->size) CR_TRY(cr_buf_printf(b, ",\"size\":%llu", (unsigned long long)n->size));
    if (n->links) CR_TRY(cr_buf_printf(b, ",\"links\":%llu", (unsigned long long)n->links));
    CR_TRY(put_opt_string(b, "linktarget", n->linktarget, n->linktarget_len));
    CR_TRY(put_opt_string(b, "error", n->error, n->error ? strlen(n->error) : 0));
    return cr_buf_putc(b, '}');
}

static int print_match(finder *f, const char *path, const cr_node *n)
{
    char hex[CR_ID_HEX + 1];
    if (f->g->json) {
        if (f->cur != f->printed) {
            if (f->printed) {
                cr_id_to_hex(&f->printed->id, hex);
                CR_TRY(cr_buf_printf(&f->out, "],\"hits\":%zu,\"snapshot\":\"%s\"},", f->hits, hex));
            } else {
                CR_TRY(cr_buf_putc(&f->out, '['));
            }
            CR_TRY(cr_buf_puts(&f->out, "{\"matches\":["));
            f->printed = f->cur;
            f->hits = 0;
        }
        if (f->hits) CR_TRY(cr_buf_putc(&f->out, ','));
        CR_TRY(node_json(&f->out, path, n));
        f->hits++;
        return flush(f);
    }
    if (f->cur != f->printed) {
        char when[64];
        if (f->printed) CR_TRY(cr_buf_putc(&f->out, '\n'));
        f->printed = f->cur;
        cr_id_to_hex(&f->cur->id, hex);
        cr_format_local_time(&f->cur->time, when);
        if (!f->g->quiet) CR_TRY(cr_buf_printf(&f->out, "Found matching entries in snapshot %.8s from %s\n", hex, when));
    }
    if (f->long_format) {
        char mode[33], when[64];
        cr_filemode_string(type_bits(n->type) | n->mode, mode);
        cr_format_local_time(&n->mtime, when);
        CR_TRY(cr_buf_printf(&f->out, "%s %5u %5u %6llu %s ", mode, n->uid, n->gid, (unsigned long long)n->size, when));
    }
    CR_TRY(cr_buf_puts(&f->out, path));
    if (f->long_format && n->type == CR_NODE_SYMLINK) {
        CR_TRY(cr_buf_puts(&f->out, " -> "));
        CR_TRY(cr_buf_append(&f->out, n->linktarget, n->linktarget_len));
    }
    CR_TRY(cr_buf_putc(&f->out, '\n'));
    return flush(f);
}

static int visit_pattern(void *ud, const cr_node *n, const char *path, size_t plen)
{
    finder *f = ud;
    (void)plen;
    bool found = false, child_may = false;
    for (size_t i = 0; i < f->npats; i++) {
        bool m = false, c = false;
        cr_patterns_match_include(f->pats[i], path, &m, &c);
        found |= m;
        child_may |= c;
    }
    /* A directory no pattern can match below is not descended into. */
    int skip = n->type == CR_NODE_DIR && !child_may && !found ? CR_WALK_SKIP : 0;
    if (!found) return skip;
    if (f->has_oldest && cr_time_cmp(&n->mtime, &f->oldest) < 0) return skip;
    if (f->has_newest && cr_time_cmp(&n->mtime, &f->newest) > 0) return skip;
    CR_TRY(print_match(f, path, n));
    return 0;
}

static int print_object(finder *f, const char *kind, const char *id, const char *path, const char *tree)
{
    char snap[CR_ID_HEX + 1], when[64];
    cr_id_to_hex(&f->cur->id, snap);
    if (f->g->json) {
        CR_TRY(cr_buf_putc(&f->out, f->json_open ? ',' : '['));
        f->json_open = true;
        CR_TRY(cr_buf_printf(&f->out, "{\"object_type\":\"%s\",\"id\":\"%s\",\"path\":", kind, id));
        CR_TRY(cr_json_put_cstr(&f->out, path));
        if (tree && *tree) CR_TRY(cr_buf_printf(&f->out, ",\"parent_tree\":\"%s\"", tree));
        CR_TRY(cr_buf_printf(&f->out, ",\"snapshot\":\"%s\"", snap));
        CR_TRY(put_time_member(&f->out, "time", &f->cur->time));
        CR_TRY(cr_buf_putc(&f->out, '}'));
        return flush(f);
    }
    cr_format_local_time(&f->cur->time, when);
    CR_TRY(cr_buf_printf(&f->out, "Found %s %s\n", kind, id));
    if (!strcmp(kind, "blob")) CR_TRY(cr_buf_printf(&f->out, " ... in file %s\n     (tree %s)\n", path, tree));
    else CR_TRY(cr_buf_printf(&f->out, " ... path %s\n", path));
    CR_TRY(cr_buf_printf(&f->out, " ... in snapshot %.8s (%s)\n", snap, when));
    return flush(f);
}

/* Full or short (8 hex) IDs, as restic compares them; a short one that hit
 * is replaced by the full ID. */
static bool wanted(char **ids, size_t n, const char *hex)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(ids[i], hex)) return true;
        if (strlen(ids[i]) == 8 && !strncmp(ids[i], hex, 8)) {
            char *full = strdup(hex);
            if (full) free(ids[i]), ids[i] = full;
            return true;
        }
    }
    return false;
}

#define FIND_DONE 1 /* every tree sought was found: stop this snapshot */

static int walk_ids(finder *f, const cr_id *tree_id, const char *prefix)
{
    cr_tree *t = NULL;
    char parent[CR_ID_HEX + 1], hex[CR_ID_HEX + 1];
    cr_id_to_hex(tree_id, parent);
    if (cr_load_tree(f->repo, tree_id, &t) < 0) {
            char snap[CR_ID_HEX + 1];
        cr_id_to_hex(&f->cur->id, snap);
        CR_TRY(cr_buf_printf(&f->out, "Unable to load tree %s\n ... which belongs to snapshot %s\n", parent, snap));
        return flush(f);
    }
    int e = 0;
    for (size_t i = 0; e == 0 && i < t->n; i++) {
        const cr_node *n = &t->nodes[i];
        char *path = NULL;
        if (asprintf(&path, "%s%s%s", prefix, strcmp(prefix, "/") ? "/" : "", n->name) < 0) { e = -ENOMEM; break; }
        if (n->type == CR_NODE_DIR && f->ntrees && n->has_subtree) {
            cr_id_to_hex(&n->subtree, hex);
            if (wanted(f->tree_ids, f->ntrees, hex)) {
                e = print_object(f, "tree", hex, path, "");
                if (e == 0 && ++f->trees_found >= f->ntrees && !f->nblobs) e = FIND_DONE;
            }
        }
        if (e == 0 && n->type == CR_NODE_FILE && f->nblobs)
            for (size_t k = 0; e == 0 && k < n->ncontent; k++) {
                cr_id_to_hex(&n->content[k], hex);
                if (wanted(f->blob_ids, f->nblobs, hex)) e = print_object(f, "blob", hex, path, parent);
            }
        if (e == 0 && n->type == CR_NODE_DIR && n->has_subtree) e = walk_ids(f, &n->subtree, path);
        free(path);
    }
    cr_tree_free(t);
    return e;
}

/* --pack: every blob of the named packs (prefixes allowed) is sought. */
static int blobs_of_packs(finder *f, char **packs, int n)
{
    cr_id *ids = NULL;
    uint64_t *sizes = NULL;
    size_t count = 0;
    CR_TRY(cr_repo_list_ids(f->repo, CR_FILE_PACK, &ids, &sizes, &count));
    int e = 0;
    for (int p = 0; e == 0 && p < n; p++) {
        bool found = false;
        for (size_t i = 0; e == 0 && i < count; i++) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&ids[i], hex);
            if (strncmp(hex, packs[p], strlen(packs[p]))) continue;
            found = true;
            cr_pack_blob *blobs = NULL;
            size_t nb = 0;
            if ((e = cr_repo_pack_header(f->repo, &ids[i], sizes[i], &blobs, &nb)) < 0) break;
            for (size_t b = 0; b < nb; b++) {
                char **v = realloc(f->blob_ids, (f->nblobs + 1) * sizeof *v);
                if (!v) { e = cr_error(-ENOMEM, "out of memory"); break; }
                f->blob_ids = v;
                cr_id_to_hex(&blobs[b].id, hex);
                f->blob_ids[f->nblobs++] = strdup(hex);
            }
            free(blobs);
        }
        if (e == 0 && !found) e = cr_error(CR_E_NOTFOUND, "unable to find pack(s): [%s]", packs[p]);
    }
    free(ids);
    free(sizes);
    return e;
}

static int parse_when(const char *s, cr_time *t)
{
    /* restic accepts "2006-01-02", "2006-01-02 15:04", "2006-01-02 15:04:05" in the local zone. */
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!end || *end) { memset(&tm, 0, sizeof tm); end = strptime(s, "%Y-%m-%d %H:%M", &tm); }
    if (!end || *end) { memset(&tm, 0, sizeof tm); end = strptime(s, "%Y-%m-%d", &tm); }
    if (!end || *end) return cr_error(CR_E_USAGE, "invalid time \"%s\"", s);
    tm.tm_isdst = -1;
    *t = cr_time_local(mktime(&tm), 0);
    return 0;
}

static char **dup_args(char **argv, int n, bool lower)
{
    char **v = calloc((size_t)n + 1, sizeof *v);
    for (int i = 0; v && i < n; i++) {
        v[i] = strdup(argv[i]);
        for (char *p = v[i]; lower && p && *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    }
    return v;
}

static int search(finder *f, cr_snapshot *snaps, size_t n)
{
    /* Newest first, as restic lists them. */
    for (size_t k = n; k-- > 0;) {
        f->cur = &snaps[k];
        int e = f->npats ? cr_walk_tree(f->repo, &snaps[k].tree, "", visit_pattern, NULL, f, NULL) : walk_ids(f, &snaps[k].tree, "/");
        if (e == FIND_DONE) e = 0;
        if (e < 0) return e;
    }
    char hex[CR_ID_HEX + 1];
    if (f->g->json && f->npats) {
        if (f->printed) {
            cr_id_to_hex(&f->printed->id, hex);
            CR_TRY(cr_buf_printf(&f->out, "],\"hits\":%zu,\"snapshot\":\"%s\"}]\n", f->hits, hex));
        } else {
            CR_TRY(cr_buf_puts(&f->out, "[]\n"));
        }
    } else if (f->g->json) {
        CR_TRY(cr_buf_puts(&f->out, f->json_open ? "]\n" : "[]\n"));
    }
    return flush(f);
}

static int load_selected(finder *f, cr_strv *ids, const cr_snapshot_filter *flt, cr_snapshot **out, size_t *n)
{
    cr_snapshot *all = NULL;
    size_t nall = 0, k = 0;
    if (ids->n) {
        cr_snapshot *sel = calloc(ids->n, sizeof *sel);
        if (!sel) return cr_error(-ENOMEM, "out of memory");
        for (size_t i = 0; i < ids->n; i++) {
            if (cr_repo_find_snapshot(f->repo, ids->v[i], flt, &sel[k]) < 0) fprintf(stderr, "Ignoring \"%s\": %s\n", ids->v[i], cr_error_message());
            else k++;
        }
        *out = sel, *n = k;
        return 0;
    }
    CR_TRY(cr_repo_load_snapshots(f->repo, &all, &nall));
    for (size_t i = 0; i < nall; i++) {
        if (cr_snapshot_matches(&all[i], flt)) all[k++] = all[i];
        else cr_snapshot_clear(&all[i]);
    }
    *out = all, *n = k;
    return 0;
}

static void finder_free(finder *f)
{
    for (size_t i = 0; i < f->npats; i++) cr_patterns_free(f->pats[i]);
    free(f->pats);
    for (size_t i = 0; i < f->nblobs; i++) free(f->blob_ids[i]);
    for (size_t i = 0; i < f->ntrees; i++) free(f->tree_ids[i]);
    free(f->blob_ids);
    free(f->tree_ids);
    cr_buf_free(&f->out);
}

static int prepare(finder *f, int npos, char **argv, bool blob, bool tree, bool pack, const char *oldest, const char *newest)
{
    if (oldest) {
        CR_TRY(parse_when(oldest, &f->oldest));
        f->has_oldest = true;
    }
    if (newest) {
        CR_TRY(parse_when(newest, &f->newest));
        f->has_newest = true;
    }
    if (blob + tree + pack > 1) return cr_error(CR_E_USAGE, "cannot have several ID types");
    if (blob || tree) {
        char **v = dup_args(argv, npos, false);
        if (!v) return cr_error(-ENOMEM, "out of memory");
        if (blob) f->blob_ids = v, f->nblobs = (size_t)npos;
        else f->tree_ids = v, f->ntrees = (size_t)npos;
        return 0;
    }
    if (pack) return blobs_of_packs(f, argv, npos);
    if (!(f->pats = calloc((size_t)npos, sizeof *f->pats))) return cr_error(-ENOMEM, "out of memory");
    for (int i = 0; i < npos; i++) {
        const char *one[1] = {argv[i]};
        CR_TRY(cr_patterns_new(one, 1, f->ignore_case, &f->pats[i]));
        f->npats++;
    }
    return 0;
}

static int run_find(cr_global *g, int argc, char **argv)
{
    finder f = {.g = g};
    const char *oldest = NULL, *newest = NULL;
    bool blob = false, tree = false, pack = false, show_pack = false;
    cr_strv snapshot_ids = {0};
    cr_filter_flags ff = {0};
    const cr_flag flags[] = {
        {"oldest", 'O', CR_FLAG_STRING, &oldest, "oldest modification date/time", "string"},
        {"newest", 'N', CR_FLAG_STRING, &newest, "newest modification date/time", "string"},
        {"snapshot", 's', CR_FLAG_STRINGS, &snapshot_ids, "snapshot `id` to search in (can be given multiple times)", "id"},
        {"blob", 0, CR_FLAG_BOOL, &blob, "pattern is a blob-ID", NULL},
        {"tree", 0, CR_FLAG_BOOL, &tree, "pattern is a tree-ID", NULL},
        {"pack", 0, CR_FLAG_BOOL, &pack, "pattern is a pack-ID", NULL},
        {"show-pack-id", 0, CR_FLAG_BOOL, &show_pack, "display the pack-ID the blobs belong to (with --blob or --tree)", NULL},
        {"ignore-case", 'i', CR_FLAG_BOOL, &f.ignore_case, "ignore case for pattern", NULL},
        {"long", 'l', CR_FLAG_BOOL, &f.long_format, "use a long listing format showing size and mode", NULL},
        CR_FILTER_FLAGS(ff),
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"find", "Find a file, a directory or restic IDs", "crestic find [flags] PATTERN...", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    if (npos == 0) return cr_cli_fail(g, cr_error(CR_E_USAGE, "wrong number of arguments"));
    if (show_pack) return cr_cli_fail(g, cr_error(CR_E_UNSUPPORTED, "--show-pack-id is not supported by crestic yet"));
    int rc = cr_cli_open_repo(g, &f.repo);
    if (rc) return rc;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, f.repo, false, &lock))) return cr_repo_close(f.repo), rc;
    cr_snapshot_filter flt = cr_filter_from_flags(&ff);
    cr_snapshot *snaps = NULL;
    size_t n = 0;
    r = cr_repo_load_index(f.repo);
    if (r == 0) r = prepare(&f, npos, argv, blob, tree, pack, oldest, newest);
    if (r == 0) r = load_selected(&f, &snapshot_ids, &flt, &snaps, &n);
    if (r == 0) r = search(&f, snaps, n);
    cr_snapshots_free(snaps, n);
    finder_free(&f);
    cr_lock_release(lock);
    cr_repo_close(f.repo);
    cr_strv_free(&snapshot_ids), cr_strv_free(&ff.hosts), cr_strv_free(&ff.tags), cr_strv_free(&ff.paths);
    return r < 0 ? cr_cli_fail(g, r) : CR_EXIT_OK;
}

const cr_command cr_cmd_find = {"find", "Find a file, a directory or restic IDs", "crestic find [flags] PATTERN...", run_find};
