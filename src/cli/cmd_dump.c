/* crestic dump: a file's content, or a directory as tar/zip, as `restic dump`
 * (snapshotID[:subfolder], "/" for the whole snapshot, --archive, --target). */
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/tar.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/goquote.h"

extern const cr_command cr_cmd_dump;

/* ---- paths as Go's path package ------------------------------------------- */

/* path.Clean */
static int path_clean(const char *p, cr_buf *out)
{
    cr_buf_reset(out);
    bool rooted = p[0] == '/';
    if (rooted) CR_TRY(cr_buf_putc(out, '/'));
    size_t floor = out->len; /* ".." cannot remove what lies before this */
    for (const char *s = p; *s;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        const char *elem = s;
        s += len + (slash ? 1 : 0);
        if (len == 0 || (len == 1 && elem[0] == '.')) continue;
        if (len == 2 && elem[0] == '.' && elem[1] == '.') {
            if (out->len > floor) { /* drop the last element and its slash */
                size_t k = out->len;
                while (k > floor && out->data[k - 1] != '/') k--;
                out->len = k > floor ? k - 1 : k;
            } else if (!rooted) {
                if (out->len) CR_TRY(cr_buf_putc(out, '/'));
                CR_TRY(cr_buf_puts(out, ".."));
                floor = out->len;
            }
            continue;
        }
        if (out->len > (rooted ? 1u : 0u)) CR_TRY(cr_buf_putc(out, '/'));
        CR_TRY(cr_buf_append(out, elem, len));
    }
    if (out->len == 0) CR_TRY(cr_buf_putc(out, '.'));
    return cr_buf_nul(out);
}

typedef struct {
    char **v;
    size_t n;
} path_parts;

static void path_parts_free(path_parts *p)
{
    for (size_t i = 0; i < p->n; i++) free(p->v[i]);
    free(p->v);
}

/* restic's splitPath(path.Clean(p)): "/a/b" -> [a b], "/" -> [""] (all). */
static int split_path(const char *p, path_parts *parts)
{
    _cleanup_buf_ cr_buf clean = CR_BUF_INIT, joined = CR_BUF_INIT;
    CR_TRY(path_clean(p, &clean));
    const char *s = (const char *)clean.data;
    const char *slash = strrchr(s, '/');
    size_t dirlen = slash ? (size_t)(slash - s) + 1 : 0;
    if (dirlen > 1) { /* the parent: splitPath(path.Join("/", dir)) */
        CR_TRY(cr_buf_putc(&joined, '/'));
        CR_TRY(cr_buf_append(&joined, s, dirlen));
        CR_TRY(cr_buf_nul(&joined));
        CR_TRY(split_path((const char *)joined.data, parts));
    }
    char **nv = realloc(parts->v, (parts->n + 1) * sizeof *nv);
    if (!nv) return cr_error(-ENOMEM, "out of memory");
    parts->v = nv;
    if (!(parts->v[parts->n] = strdup(s + dirlen))) return cr_error(-ENOMEM, "out of memory");
    parts->n++;
    return 0;
}

/* Go's %q of a string. */
static int quote(cr_buf *b, const char *s, size_t n)
{
    CR_TRY(cr_buf_putc(b, '"'));
    CR_TRY(cr_goquote(b, s, n));
    return cr_buf_putc(b, '"');
}

/* ---- writing ----------------------------------------------------------------- */

#define BLOB_CACHE_SLOTS 16

typedef enum { OUT_RAW, OUT_TAR, OUT_ZIP } out_kind;

typedef struct {
    cr_repo *r;
    FILE *out;
    bool out_is_tty;
    out_kind archive; /* tar or zip, for directories */
    out_kind kind;    /* what is being written now (raw for a single file) */
    cr_tar_writer tar;
    cr_zip_writer *zip;
    /* recently loaded data blobs: files repeat chunks (zeros) often */
    struct {
        cr_id id;
        cr_buf data;
        bool used;
    } cache[BLOB_CACHE_SLOTS];
    size_t next_slot;
} dumper;

static void dumper_free(dumper *d)
{
    for (size_t i = 0; i < BLOB_CACHE_SLOTS; i++) cr_buf_free(&d->cache[i].data);
    cr_zip_free(d->zip);
}

static int load_data_blob(dumper *d, const cr_id *id, const cr_buf **out)
{
    for (size_t i = 0; i < BLOB_CACHE_SLOTS; i++)
        if (d->cache[i].used && cr_id_eq(&d->cache[i].id, id)) {
            *out = &d->cache[i].data;
            return 0;
        }
    size_t slot = d->next_slot++ % BLOB_CACHE_SLOTS;
    d->cache[slot].used = false;
    CR_TRY(cr_repo_load_blob(d->r, CR_BLOB_DATA, id, &d->cache[slot].data));
    d->cache[slot].id = *id;
    d->cache[slot].used = true;
    *out = &d->cache[slot].data;
    return 0;
}

static int dumper_write(dumper *d, const void *p, size_t n)
{
    switch (d->kind) {
    case OUT_TAR: return cr_tar_write(&d->tar, p, n);
    case OUT_ZIP: return cr_zip_write(d->zip, p, n);
    default: return cr_write_all(d->out, p, n);
    }
}

/* A file's content, blob by blob. */
static int write_content(dumper *d, const cr_node *node)
{
    for (size_t i = 0; i < node->ncontent; i++) {
        if (cr_interrupted) return cr_error(CR_E_INTERRUPTED, "interrupted");
        const cr_buf *blob;
        CR_TRY(load_data_blob(d, &node->content[i], &blob));
        CR_TRY(dumper_write(d, blob->data, blob->len));
    }
    return 0;
}

/* Linux POSIX ACL xattr (binary, version 2) as the long text form used in
 * the SCHILY.acl.* records; ids in decimal. */
static int format_linux_acl(const uint8_t *acl, size_t n, cr_buf *text)
{
    if (n < 4 || (n - 4) % 8 != 0) return CR_E_FORMAT;
    uint32_t version = (uint32_t)acl[0] | (uint32_t)acl[1] << 8 | (uint32_t)acl[2] << 16 | (uint32_t)acl[3] << 24;
    if (version != 2) return CR_E_FORMAT;
    for (size_t o = 4; o + 8 <= n; o += 8) {
        unsigned tag = acl[o] | acl[o + 1] << 8, perm = acl[o + 2] | acl[o + 3] << 8;
        uint32_t id = (uint32_t)acl[o + 4] | (uint32_t)acl[o + 5] << 8 | (uint32_t)acl[o + 6] << 16 | (uint32_t)acl[o + 7] << 24;
        switch (tag) {
        case 0x01: CR_TRY(cr_buf_puts(text, "user:")); break;
        case 0x02: CR_TRY(cr_buf_printf(text, "user:%u", id)); break;
        case 0x04: CR_TRY(cr_buf_puts(text, "group:")); break;
        case 0x08: CR_TRY(cr_buf_printf(text, "group:%u", id)); break;
        case 0x10: CR_TRY(cr_buf_puts(text, "mask:")); break;
        case 0x20: CR_TRY(cr_buf_puts(text, "other:")); break;
        default: return CR_E_FORMAT;
        }
        CR_TRY(cr_buf_printf(text, ":%c%c%c\n", perm & 4 ? 'r' : '-', perm & 2 ? 'w' : '-', perm & 1 ? 'x' : '-'));
    }
    return 0;
}

/* PAX records for a node's xattrs; ACLs that cannot be parsed are dropped. */
typedef struct {
    cr_tar_record *v;
    size_t n;
    char **keys;
    cr_buf *acl_text; /* one per record */
} xattr_records;

static void xattr_records_free(xattr_records *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->keys[i]);
        cr_buf_free(&x->acl_text[i]);
    }
    free(x->v);
    free(x->keys);
    free(x->acl_text);
}

static int xattr_records_build(const cr_node *node, xattr_records *x)
{
    memset(x, 0, sizeof *x);
    size_t cap = node->nxattrs ? node->nxattrs : 1;
    x->v = calloc(cap, sizeof *x->v);
    x->keys = calloc(cap, sizeof *x->keys);
    x->acl_text = calloc(cap, sizeof *x->acl_text);
    if (!x->v || !x->keys || !x->acl_text) return cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; i < node->nxattrs; i++) {
        const cr_xattr *a = &node->xattrs[i];
        const char *acl_key = !strcmp(a->name, "system.posix_acl_access") ? "SCHILY.acl.access"
                            : !strcmp(a->name, "system.posix_acl_default") ? "SCHILY.acl.default" : NULL;
        size_t k = x->n;
        if (acl_key) {
            if (format_linux_acl(a->value, a->value ? a->value_len : 0, &x->acl_text[k]) < 0) {
                cr_buf_free(&x->acl_text[k]);
                continue;
            }
            x->keys[k] = strdup(acl_key);
            x->v[k].value = x->acl_text[k].data ? (const void *)x->acl_text[k].data : "";
            x->v[k].value_len = x->acl_text[k].len;
        } else {
            if (asprintf(&x->keys[k], "SCHILY.xattr.%s", a->name) < 0) x->keys[k] = NULL;
            x->v[k].value = a->value ? (const void *)a->value : "";
            x->v[k].value_len = a->value ? a->value_len : 0;
        }
        if (!x->keys[k]) return cr_error(-ENOMEM, "out of memory");
        x->v[k].key = x->keys[k];
        x->n++;
    }
    return 0;
}

static uint32_t tar_mode(uint32_t gomode)
{
    uint32_t m = gomode & CR_MODE_PERM;
    if (gomode & CR_MODE_SETUID) m |= 04000;
    if (gomode & CR_MODE_SETGID) m |= 02000;
    if (gomode & CR_MODE_STICKY) m |= 01000;
    return m;
}

/* One archive member; path is the node's path in the snapshot ("/src/a"). */
static int dump_member(dumper *d, const cr_node *node, const char *path, size_t pathlen)
{
    _cleanup_buf_ cr_buf name = CR_BUF_INIT;
    while (pathlen && *path == '/') path++, pathlen--; /* filepath.Rel("/", path) */
    CR_TRY(cr_buf_append(&name, path, pathlen));
    if (node->type == CR_NODE_DIR) CR_TRY(cr_buf_putc(&name, '/'));
    CR_TRY(cr_buf_nul(&name));
    if (d->kind == OUT_ZIP) {
        cr_zip_header zh = {.name = (const char *)name.data, .name_len = name.len, .gomode = node->mode,
                            .mtime = node->mtime};
        CR_TRY(cr_zip_write_header(d->zip, &zh));
        if (node->type == CR_NODE_SYMLINK) return cr_zip_write(d->zip, node->linktarget ? node->linktarget : "", node->linktarget_len);
        return write_content(d, node);
    }
    xattr_records xr;
    int e = xattr_records_build(node, &xr);
    cr_tar_header th = {
        .name = (const char *)name.data, .name_len = name.len,
        .typeflag = node->type == CR_NODE_FILE ? '0' : node->type == CR_NODE_DIR ? '5' : node->type == CR_NODE_SYMLINK ? '2' : '0',
        .mode = tar_mode(node->mode), .uid = node->uid, .gid = node->gid, .uname = node->user, .gname = node->group,
        .size = node->size, .mtime = node->mtime,
        .linkname = node->type == CR_NODE_SYMLINK ? node->linktarget : NULL,
        .linkname_len = node->type == CR_NODE_SYMLINK ? node->linktarget_len : 0,
        .records = xr.v, .nrecords = xr.n,
    };
    if (e >= 0) e = cr_tar_write_header(&d->tar, &th);
    xattr_records_free(&xr);
    if (e < 0) {
        _cleanup_buf_ cr_buf q = CR_BUF_INIT;
        quote(&q, path - 1, pathlen + 1);
        cr_buf_nul(&q);
        return cr_error_ctx(e, "writing header for %s", q.data ? (const char *)q.data : "");
    }
    return write_content(d, node);
}

/* Below a dumped directory only files, directories and symlinks go in. */
static int visit_below(void *ud, const cr_node *node, const char *path, size_t len)
{
    if (node->type != CR_NODE_FILE && node->type != CR_NODE_DIR && node->type != CR_NODE_SYMLINK) return 0;
    return dump_member(ud, node, path, len);
}

/* restic's DumpTree: every node of the tree (whatever its type), each
 * directory with its contents; paths below root ("/" or "/src"). */
static int dump_tree(dumper *d, const cr_tree *tree, const char *root)
{
    d->kind = d->archive;
    if (d->kind == OUT_TAR) cr_tar_init(&d->tar, d->out);
    else CR_TRY(cr_zip_new(d->out, &d->zip));
    _cleanup_buf_ cr_buf path = CR_BUF_INIT;
    for (size_t i = 0; i < tree->n; i++) {
        const cr_node *node = &tree->nodes[i];
        cr_buf_reset(&path);
        CR_TRY(cr_buf_puts(&path, root));
        if (!path.len || path.data[path.len - 1] != '/') CR_TRY(cr_buf_putc(&path, '/'));
        CR_TRY(cr_buf_append(&path, node->name, node->name_len));
        CR_TRY(cr_buf_nul(&path));
        CR_TRY(dump_member(d, node, (const char *)path.data, path.len));
        if (node->type == CR_NODE_DIR && node->has_subtree)
            CR_TRY(cr_walk_tree(d->r, &node->subtree, (const char *)path.data, visit_below, NULL, d, NULL));
    }
    if (d->kind == OUT_TAR) return cr_tar_close(&d->tar);
    cr_zip_writer *z = d->zip;
    d->zip = NULL;
    return cr_zip_close(z);
}

static int archive_allowed(const dumper *d)
{
    if (d->out_is_tty) return cr_error(CR_E_USAGE, "stdout is the terminal, please redirect output");
    return 0;
}

static const char *type_name(const cr_node *n)
{
    return n->type_name && *n->type_name ? n->type_name : cr_node_type_name(n->type);
}

/* restic's printFromTree: follow the path components from the tree. */
static int print_from_tree(dumper *d, const cr_tree *tree, const char *prefix, char *const *parts, size_t nparts)
{
    if (!parts[0][0]) {
        CR_TRY(archive_allowed(d));
        return dump_tree(d, tree, "/");
    }
    _cleanup_buf_ cr_buf joined = CR_BUF_INIT, item = CR_BUF_INIT, q = CR_BUF_INIT, qt = CR_BUF_INIT;
    CR_TRY(cr_buf_printf(&joined, "%s/%s", prefix, parts[0]));
    CR_TRY(path_clean((const char *)joined.data, &item));
    CR_TRY(quote(&q, (const char *)item.data, item.len));
    CR_TRY(cr_buf_nul(&q));
    const char *qitem = (const char *)q.data;
    for (size_t i = 0; i < tree->n; i++) {
        const cr_node *node = &tree->nodes[i];
        if (node->name_len != strlen(parts[0]) || memcmp(node->name, parts[0], node->name_len)) continue;
        bool is_dir = node->type == CR_NODE_DIR;
        if (nparts == 1 && node->type == CR_NODE_FILE) return write_content(d, node);
        if (is_dir) {
            if (nparts == 1) CR_TRY(archive_allowed(d));
            cr_tree *sub = NULL;
            int e = node->has_subtree ? cr_load_tree(d->r, &node->subtree, &sub)
                                      : cr_error(CR_E_FORMAT, "directory without subtree");
            if (e < 0 && nparts > 1) return cr_error_ctx(e, "cannot load subtree for %s", qitem);
            CR_TRY(e);
            e = nparts > 1 ? print_from_tree(d, sub, (const char *)item.data, parts + 1, nparts - 1)
                           : dump_tree(d, sub, (const char *)item.data);
            cr_tree_free(sub);
            return e;
        }
        CR_TRY(quote(&qt, type_name(node), strlen(type_name(node))));
        CR_TRY(cr_buf_nul(&qt));
        return cr_error(CR_E_NOTFOUND, "%s should be a %s, but is a %s", qitem, nparts > 1 ? "dir" : "file",
                        (const char *)qt.data);
    }
    return cr_error(CR_E_NOTFOUND, "path %s not found in snapshot", qitem);
}

/* ---- command ----------------------------------------------------------------- */

typedef struct {
    cr_filter_flags filter;
    const char *archive, *target;
} dump_opts;

static int dump_path(cr_repo *r, const dump_opts *o, const cr_tree *tree, const char *file)
{
    path_parts parts = {0};
    dumper d = {.r = r, .out = stdout, .out_is_tty = cr_stdout_is_tty(), .kind = OUT_RAW};
    d.archive = !strcmp(o->archive, "zip") ? OUT_ZIP : OUT_TAR;
    int e = split_path(file, &parts);
    if (e >= 0 && o->target) {
        d.out = fopen(o->target, "w");
        d.out_is_tty = false;
        if (!d.out) e = cr_error_sys(-errno, "cannot dump to file: open %s", o->target);
    }
    if (e >= 0) {
        e = print_from_tree(&d, tree, "/", parts.v, parts.n);
        if (e < 0 && e != CR_E_INTERRUPTED && e != -ENOMEM) e = cr_error_ctx(e, "cannot dump file");
    }
    if (e >= 0 && fflush(d.out) != 0) e = cr_error_sys(-errno, "write error");
    if (d.out && d.out != stdout && fclose(d.out) != 0 && e >= 0) e = cr_error_sys(-errno, "close %s", o->target);
    dumper_free(&d);
    path_parts_free(&parts);
    return e;
}

static int dump(cr_repo *r, const dump_opts *o, const char *ref, const char *file)
{
    cr_snapshot_filter f = cr_filter_from_flags(&o->filter);
    cr_snapshot sn;
    int e = cr_cli_find_snapshot(r, ref, &f, &sn, NULL);
    if (e < 0) return cr_error_ctx(e, "failed to find snapshot");
    const char *colon = strchr(ref, ':');
    cr_id tree_id;
    e = cr_find_tree_dir(r, &sn.tree, colon ? colon + 1 : "", &tree_id);
    cr_snapshot_clear(&sn);
    CR_TRY(e);
    cr_tree *tree = NULL;
    e = cr_load_tree(r, &tree_id, &tree);
    if (e < 0) return cr_error_ctx(e, "loading tree for snapshot \"%s\" failed", ref);
    e = dump_path(r, o, tree, file);
    cr_tree_free(tree);
    return e;
}

static int run_dump(cr_global *g, int argc, char **argv)
{
    dump_opts o = {.archive = "tar"};
    const cr_flag flags[] = {
        CR_FILTER_FLAGS(o.filter),
        {"archive", 'a', CR_FLAG_STRING, &o.archive, "set archive format as \"tar\" or \"zip\"", "format"},
        {"target", 't', CR_FLAG_STRING, &o.target, "write the output to target path", "path"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int npos = 0, rc;
    int e = cr_parse_flags(g, &cr_cmd_dump, flags, argc, argv, &npos);
    if (e == 0 && npos != 2) e = cr_error(CR_E_USAGE, "no file and no snapshot ID specified");
    if (e == 0 && strcmp(o.archive, "tar") && strcmp(o.archive, "zip"))
        e = cr_error(CR_E_USAGE, "unknown archive format \"%s\"", o.archive);
    if (e != 0) {
        rc = e > 0 ? CR_EXIT_OK : cr_cli_fail(g, e);
        goto out;
    }
    cr_repo *r = NULL;
    if ((rc = cr_cli_open_repo(g, &r)) != 0) goto out;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, r, false, &lock)) == 0) {
        e = dump(r, &o, argv[0], argv[1]);
        fflush(stdout);
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

const cr_command cr_cmd_dump = {
    "dump",
    "Print backed-up files or folders to stdout",
    "crestic dump [flags] snapshotID file",
    run_dump,
};
