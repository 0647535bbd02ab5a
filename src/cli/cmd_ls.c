/* crestic ls: list the files of a snapshot, as `restic ls` (today's
 * restic: text, --long, --human-readable, --json with message_type/inode,
 * --ncdu, --sort/--reverse, directory filters, --recursive). */
#include "cli/cli.h"
#include "cli/output.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

extern const cr_command cr_cmd_ls;

typedef enum { SORT_NAME, SORT_SIZE, SORT_ATIME, SORT_CTIME, SORT_MTIME, SORT_EXT } sort_mode;

typedef struct {
    cr_filter_flags filter;
    bool long_format, recursive, human, ncdu, reverse;
    const char *sort;
    sort_mode sort_by;
    char **dirs;
    size_t ndirs;
} ls_opts;

/* What restic's lsNodeOutput carries: the node plus its path. */
typedef struct {
    const cr_node *node;
    char *path; /* owned when collected for sorting */
    size_t pathlen;
} ls_entry;

typedef struct ls_printer ls_printer;
struct ls_printer {
    int (*snapshot)(ls_printer *p, const cr_snapshot *sn);
    int (*node)(ls_printer *p, const ls_entry *e, bool is_prefix_dir);
    int (*leave_dir)(ls_printer *p);
    int (*close)(ls_printer *p);
    const ls_opts *opts;
    cr_global *g;
    cr_buf out;
    int depth; /* ncdu nesting */
    /* --sort: nodes are collected here (their trees are kept alive) */
    ls_entry *collected;
    size_t ncollected, collected_cap;
};

/* Output is collected and written in large pieces (one write per line
 * would cost a system call per file). */
static int write_out(ls_printer *p)
{
    int e = cr_write_stdout(p->out.data, p->out.len);
    cr_buf_reset(&p->out);
    return e;
}

static int flush_out(ls_printer *p)
{
    return p->out.len >= 65536 ? write_out(p) : 0;
}

/* restic 0.19 shows, sorts and exports the stored size as it is (only files
 * have one). */
static uint64_t node_size(const cr_node *n)
{
    return n->size;
}

/* ---- text ---------------------------------------------------------------- */

static int text_snapshot(ls_printer *p, const cr_snapshot *sn)
{
    if (p->g->quiet) return 0;
    char id[9];
    cr_id_short(&sn->id, id);
    CR_TRY(cr_buf_printf(&p->out, "snapshot %s of ", id));
    CR_TRY(cr_format_go_strings(&p->out, (const char *const *)sn->paths, sn->npaths));
    CR_TRY(cr_buf_puts(&p->out, " at "));
    CR_TRY(cr_format_go_time(&p->out, &sn->time));
    CR_TRY(cr_buf_printf(&p->out, " by %s@%s filtered by ", sn->username, sn->hostname));
    CR_TRY(cr_format_go_strings(&p->out, (const char *const *)p->opts->dirs, p->opts->ndirs));
    CR_TRY(cr_buf_puts(&p->out, ":\n"));
    return flush_out(p);
}

/* The type bit restic ORs into the stored mode for the long listing. */
static uint32_t type_mode_bits(cr_node_type t)
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

static int text_node(ls_printer *p, const ls_entry *e, bool is_prefix_dir)
{
    if (is_prefix_dir) return 0;
    const cr_node *n = e->node;
    if (p->opts->long_format) {
        char mode[33], size[64], when[64];
        cr_filemode_string(type_mode_bits(n->type) | n->mode, mode);
        if (p->opts->human) cr_go_format_bytes(node_size(n), size);
        else snprintf(size, sizeof size, "%6llu", (unsigned long long)node_size(n));
        cr_format_local_time(&n->mtime, when);
        CR_TRY(cr_buf_printf(&p->out, "%s %5u %5u %s %s ", mode, n->uid, n->gid, size, when));
    }
    CR_TRY(cr_buf_append(&p->out, e->path, e->pathlen));
    if (p->opts->long_format && n->type == CR_NODE_SYMLINK) {
        CR_TRY(cr_buf_puts(&p->out, " -> "));
        if (n->linktarget) CR_TRY(cr_buf_append(&p->out, n->linktarget, n->linktarget_len));
    }
    CR_TRY(cr_buf_putc(&p->out, '\n'));
    return flush_out(p);
}

static int nothing_to_do(ls_printer *p)
{
    (void)p;
    return 0;
}

/* ---- JSON ---------------------------------------------------------------- */

static int json_snapshot(ls_printer *p, const cr_snapshot *sn)
{
    CR_TRY(cr_snapshot_json_with_id(&p->out, sn, "\"message_type\":\"snapshot\",\"struct_type\":\"snapshot\""));
    CR_TRY(cr_buf_putc(&p->out, '\n'));
    return flush_out(p);
}

static int put_time_member(cr_buf *b, const char *name, const cr_time *t)
{
    CR_TRY(cr_buf_printf(b, ",\"%s\":\"", name));
    CR_TRY(cr_time_format(b, t));
    return cr_buf_putc(b, '"');
}

static const char *type_name(const cr_node *n)
{
    return n->type_name && *n->type_name ? n->type_name : cr_node_type_name(n->type);
}

static int json_node(ls_printer *p, const ls_entry *e, bool is_prefix_dir)
{
    if (is_prefix_dir) return 0;
    const cr_node *n = e->node;
    cr_buf *b = &p->out;
    CR_TRY(cr_buf_puts(b, "{\"name\":"));
    CR_TRY(cr_json_put_string(b, n->name, n->name_len));
    CR_TRY(cr_buf_puts(b, ",\"type\":"));
    CR_TRY(cr_json_put_cstr(b, type_name(n)));
    CR_TRY(cr_buf_puts(b, ",\"path\":"));
    CR_TRY(cr_json_put_string(b, e->path, e->pathlen));
    CR_TRY(cr_buf_printf(b, ",\"uid\":%u,\"gid\":%u", n->uid, n->gid));
    /* size: always for files (also 0), never for anything else */
    if (n->type == CR_NODE_FILE) CR_TRY(cr_buf_printf(b, ",\"size\":%llu", (unsigned long long)n->size));
    char perm[33];
    cr_filemode_string(n->mode, perm);
    if (n->mode) CR_TRY(cr_buf_printf(b, ",\"mode\":%u", n->mode));
    CR_TRY(cr_buf_printf(b, ",\"permissions\":\"%s\"", perm));
    CR_TRY(put_time_member(b, "mtime", &n->mtime));
    CR_TRY(put_time_member(b, "atime", &n->atime));
    CR_TRY(put_time_member(b, "ctime", &n->ctime));
    if (n->inode) CR_TRY(cr_buf_printf(b, ",\"inode\":%llu", (unsigned long long)n->inode));
    CR_TRY(cr_buf_puts(b, ",\"message_type\":\"node\",\"struct_type\":\"node\"}\n"));
    return flush_out(p);
}

/* ---- ncdu export (https://dev.yorhel.nl/ncdu/jsonfmt) ---------------------- */

static int indent(cr_buf *b, int depth)
{
    for (int i = 0; i < depth; i++) CR_TRY(cr_buf_puts(b, "  "));
    return 0;
}

static int ncdu_snapshot(ls_printer *p, const cr_snapshot *sn)
{
    CR_TRY(cr_buf_puts(&p->out, "[1, 2, "));
    CR_TRY(cr_snapshot_encode(sn, &p->out));
    CR_TRY(cr_buf_puts(&p->out, ", [{\"name\":\"/\"}"));
    p->depth = 1;
    return flush_out(p);
}

static int ncdu_node_json(cr_buf *b, const cr_node *n)
{
    uint64_t size = node_size(n);
    unsigned mode = n->mode & CR_MODE_PERM;
    if (n->mode & CR_MODE_SETUID) mode |= 04000;
    if (n->mode & CR_MODE_SETGID) mode |= 02000;
    if (n->mode & CR_MODE_STICKY) mode |= 01000;
    int64_t mtime = n->mtime.sec < 0 ? 0 : n->mtime.sec; /* ncdu refuses negative times */
    CR_TRY(cr_buf_puts(b, "{\"name\":"));
    CR_TRY(cr_json_put_string(b, n->name, n->name_len));
    return cr_buf_printf(b,
                         ",\"asize\":%llu,\"dsize\":%llu,\"dev\":%llu,\"ino\":%llu,\"nlink\":%llu,\"notreg\":%s,"
                         "\"uid\":%u,\"gid\":%u,\"mode\":%u,\"mtime\":%lld}",
                         (unsigned long long)size, (unsigned long long)((size + 511) / 512 * 512),
                         (unsigned long long)n->device_id, (unsigned long long)n->inode,
                         (unsigned long long)n->links,
                         n->type != CR_NODE_DIR && n->type != CR_NODE_FILE ? "true" : "false", n->uid, n->gid,
                         mode, (long long)mtime);
}

static int ncdu_node(ls_printer *p, const ls_entry *e, bool is_prefix_dir)
{
    (void)is_prefix_dir; /* ncdu needs the directories leading to the targets */
    CR_TRY(cr_buf_puts(&p->out, ",\n"));
    CR_TRY(indent(&p->out, p->depth));
    if (e->node->type == CR_NODE_DIR) {
        CR_TRY(cr_buf_puts(&p->out, "[\n"));
        CR_TRY(indent(&p->out, p->depth + 1));
        p->depth++;
    }
    CR_TRY(ncdu_node_json(&p->out, e->node));
    return flush_out(p);
}

static int ncdu_leave_dir(ls_printer *p)
{
    p->depth--;
    CR_TRY(cr_buf_putc(&p->out, '\n'));
    CR_TRY(indent(&p->out, p->depth));
    CR_TRY(cr_buf_putc(&p->out, ']'));
    return flush_out(p);
}

static int ncdu_close(ls_printer *p)
{
    CR_TRY(cr_buf_puts(&p->out, "\n]\n]\n"));
    return flush_out(p);
}

/* ---- --sort / --reverse: collect, then print in order ------------------------ */

static int collect_node(ls_printer *p, const ls_entry *e, bool is_prefix_dir)
{
    if (is_prefix_dir) return 0;
    if (p->ncollected == p->collected_cap) {
        size_t cap = p->collected_cap ? 2 * p->collected_cap : 64;
        ls_entry *nv = realloc(p->collected, cap * sizeof *nv);
        if (!nv) return cr_error(-ENOMEM, "out of memory");
        p->collected = nv;
        p->collected_cap = cap;
    }
    ls_entry *c = &p->collected[p->ncollected];
    if (!(c->path = malloc(e->pathlen + 1))) return cr_error(-ENOMEM, "out of memory");
    memcpy(c->path, e->path, e->pathlen + 1);
    c->pathlen = e->pathlen;
    c->node = e->node;
    p->ncollected++;
    return 0;
}

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* filepath.Ext: from the last '.' of the last path element. */
static const char *extension(const ls_entry *e, size_t *len)
{
    for (size_t i = e->pathlen; i-- > 0 && e->path[i] != '/';)
        if (e->path[i] == '.') {
            *len = e->pathlen - i;
            return e->path + i;
        }
    *len = 0;
    return "";
}

static sort_mode current_sort;

static int entry_cmp(const void *pa, const void *pb)
{
    const ls_entry *a = pa, *b = pb;
    int c = 0;
    switch (current_sort) {
    case SORT_SIZE: {
        uint64_t x = node_size(a->node), y = node_size(b->node);
        c = (x > y) - (x < y);
        break;
    }
    case SORT_MTIME: c = cr_time_cmp(&a->node->mtime, &b->node->mtime); break;
    case SORT_ATIME: c = cr_time_cmp(&a->node->atime, &b->node->atime); break;
    case SORT_CTIME: c = cr_time_cmp(&a->node->ctime, &b->node->ctime); break;
    case SORT_EXT: {
        size_t xl, yl;
        const char *x = extension(a, &xl), *y = extension(b, &yl);
        c = cmp_bytes(x, xl, y, yl);
        break;
    }
    case SORT_NAME: return 0;
    }
    return c ? c : cmp_bytes(a->path, a->pathlen, b->path, b->pathlen);
}

/* Paths are unique, so an unstable sort gives the stable order restic gets. */
static int sorted_close(ls_printer *p, ls_printer *inner)
{
    current_sort = p->opts->sort_by;
    if (p->opts->sort_by != SORT_NAME && p->ncollected > 1) qsort(p->collected, p->ncollected, sizeof *p->collected, entry_cmp);
    for (size_t i = 0; i < p->ncollected; i++) {
        size_t k = p->opts->reverse ? p->ncollected - 1 - i : i;
        CR_TRY(inner->node(inner, &p->collected[k], false));
    }
    return 0;
}

/* ---- walking ------------------------------------------------------------- */

/* fs.HasPathPrefix: p is base or lies below it (paths are absolute). */
static bool has_path_prefix(const char *base, size_t blen, const char *p, size_t plen)
{
    while (blen > 1 && base[blen - 1] == '/') blen--;
    while (plen > 1 && p[plen - 1] == '/') plen--;
    if (plen < blen || memcmp(base, p, blen)) return false;
    return plen == blen || p[blen] == '/' || (blen == 1 && base[0] == '/');
}

typedef struct {
    cr_repo *r;
    ls_printer *printer;
    const ls_opts *opts;
} ls_walk;

static bool within_dirs(const ls_opts *o, const char *path, size_t len)
{
    if (!o->ndirs) return true;
    for (size_t i = 0; i < o->ndirs; i++)
        if (has_path_prefix(o->dirs[i], strlen(o->dirs[i]), path, len)) return true;
    return false;
}

static bool approaching_dirs(const ls_opts *o, const char *path, size_t len)
{
    if (!o->ndirs) return true;
    for (size_t i = 0; i < o->ndirs; i++)
        if (has_path_prefix(path, len, o->dirs[i], strlen(o->dirs[i]))) return true;
    return false;
}

static int visit_node(void *ud, const cr_node *node, const char *path, size_t len)
{
    ls_walk *w = ud;
    ls_entry e = {.node = node, .path = (char *)path, .pathlen = len};
    bool printed = false;
    if (within_dirs(w->opts, path, len)) {
        CR_TRY(w->printer->node(w->printer, &e, false));
        printed = true;
        if (w->opts->recursive) return 0;
    }
    if (approaching_dirs(w->opts, path, len)) return printed ? 0 : w->printer->node(w->printer, &e, true);
    if (node->type == CR_NODE_DIR) {
        if (printed) CR_TRY(w->printer->leave_dir(w->printer));
        return CR_WALK_SKIP;
    }
    return 0;
}

static int leave_dir(void *ud, const char *path, size_t len)
{
    (void)path;
    (void)len;
    ls_walk *w = ud;
    return w->printer->leave_dir(w->printer);
}

/* ---- command --------------------------------------------------------------- */

static int parse_sort(ls_opts *o)
{
    static const struct {
        const char *name;
        sort_mode mode;
    } modes[] = {{"name", SORT_NAME}, {"size", SORT_SIZE}, {"atime", SORT_ATIME}, {"ctime", SORT_CTIME},
                 {"mtime", SORT_MTIME}, {"time", SORT_MTIME}, {"extension", SORT_EXT}};
    o->sort_by = SORT_NAME;
    if (!o->sort) return 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(o->sort, modes[i].name)) {
            o->sort_by = modes[i].mode;
            return 0;
        }
    return cr_error(CR_E_USAGE,
                    "invalid argument \"%s\" for \"-s, --sort\" flag: invalid sort mode \"%s\", must be one of "
                    "(name|size|time=mtime|atime|ctime|extension)",
                    o->sort, o->sort);
}

static int check_args(cr_global *g, ls_opts *o, int npos, char **pos)
{
    if (npos == 0) return cr_error(CR_E_USAGE, "no snapshot ID specified, specify snapshot ID or use special ID 'latest'");
    CR_TRY(parse_sort(o));
    if (o->ncdu && g->json) return cr_error(CR_E_USAGE, "only either '--json' or '--ncdu' can be specified");
    if (o->sort_by != SORT_NAME && o->ncdu) return cr_error(CR_E_USAGE, "--sort and --ncdu are mutually exclusive");
    if (o->reverse && o->ncdu) return cr_error(CR_E_USAGE, "--reverse and --ncdu are mutually exclusive");
    o->dirs = pos + 1;
    o->ndirs = (size_t)npos - 1;
    for (size_t i = 0; i < o->ndirs; i++)
        if (o->dirs[i][0] != '/') return cr_error(CR_E_USAGE, "All path filters must be absolute, starting with a forward slash '/'");
    return 0;
}

static void choose_printer(cr_global *g, const ls_opts *o, ls_printer *p)
{
    memset(p, 0, sizeof *p);
    p->opts = o;
    p->g = g;
    p->leave_dir = nothing_to_do;
    p->close = nothing_to_do;
    if (g->json) {
        p->snapshot = json_snapshot;
        p->node = json_node;
    } else if (o->ncdu) {
        p->snapshot = ncdu_snapshot;
        p->node = ncdu_node;
        p->leave_dir = ncdu_leave_dir;
        p->close = ncdu_close;
    } else {
        p->snapshot = text_snapshot;
        p->node = text_node;
    }
}

static int list_snapshot(cr_global *g, cr_repo *r, const ls_opts *o, const char *ref)
{
    cr_snapshot_filter f = cr_filter_from_flags(&o->filter);
    CR_TRY(cr_repo_load_index(r));
    cr_snapshot sn;
    cr_id tree;
    CR_TRY(cr_cli_find_snapshot(r, ref, &f, &sn, &tree));
    sn.tree = tree; /* restic prints the subfolder's tree as the snapshot's */
    ls_printer out, sorter = {0};
    choose_printer(g, o, &out);
    bool sorting = o->sort_by != SORT_NAME || o->reverse;
    if (sorting) {
        sorter = out;
        sorter.node = collect_node;
        sorter.leave_dir = nothing_to_do;
        sorter.out = (cr_buf)CR_BUF_INIT;
    }
    ls_printer *p = sorting ? &sorter : &out;
    ls_walk w = {.r = r, .printer = p, .opts = o};
    cr_tree_list kept = {0}; /* sorting prints nodes after the walk */
    int e = out.snapshot(&out, &sn);
    if (e >= 0) e = cr_walk_tree(r, &tree, "/", visit_node, leave_dir, &w, sorting ? &kept : NULL);
    if (e >= 0) e = sorting ? sorted_close(&sorter, &out) : out.close(&out);
    int written = write_out(&out); /* also what came before an error */
    if (e >= 0) e = written;
    if (sorting) {
        for (size_t i = 0; i < sorter.ncollected; i++) free(sorter.collected[i].path);
        free(sorter.collected);
    }
    cr_tree_list_free(&kept);
    cr_buf_free(&out.out);
    cr_buf_free(&sorter.out);
    cr_snapshot_clear(&sn);
    return e;
}

static int run_ls(cr_global *g, int argc, char **argv)
{
    ls_opts o = {0};
    const cr_flag flags[] = {
        CR_FILTER_FLAGS(o.filter),
        {"long", 'l', CR_FLAG_BOOL, &o.long_format, "use a long listing format showing size and mode", NULL},
        {"recursive", 0, CR_FLAG_BOOL, &o.recursive, "include files in subfolders of the listed directories", NULL},
        {"human-readable", 0, CR_FLAG_BOOL, &o.human, "print sizes in human readable format", NULL},
        {"ncdu", 0, CR_FLAG_BOOL, &o.ncdu, "output NCDU export format (pipe into 'ncdu -f -')", NULL},
        {"sort", 's', CR_FLAG_STRING, &o.sort, "sort output by (name|size|time=mtime|atime|ctime|extension)", "mode"},
        {"reverse", 0, CR_FLAG_BOOL, &o.reverse, "reverse sorted output", NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int npos = 0, rc;
    int e = cr_parse_flags(g, &cr_cmd_ls, flags, argc, argv, &npos);
    if (e == 0) e = check_args(g, &o, npos, argv);
    if (e != 0) {
        rc = e > 0 ? CR_EXIT_OK : cr_cli_fail(g, e);
        goto out;
    }
    cr_repo *r = NULL;
    if ((rc = cr_cli_open_repo(g, &r)) != 0) goto out;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, r, false, &lock)) == 0) {
        e = list_snapshot(g, r, &o, argv[0]);
        rc = e < 0 ? cr_cli_fail(g, e) : CR_EXIT_OK;
        cr_lock_release(lock);
    }
    cr_repo_close(r);
out:
    cr_strv_free(&o.filter.hosts);
    cr_strv_free(&o.filter.tags);
    cr_strv_free(&o.filter.paths);
    return rc;
}

const cr_command cr_cmd_ls = {
    "ls",
    "List files in a snapshot",
    "crestic ls [flags] snapshotID [dir...]",
    run_ls,
};
