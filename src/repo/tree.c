/* Tree blobs (spec §12): parsing with Go-unquoted names, and byte-exact
 * encoding as restic's Go encoding/json writes them. */
#include "repo/tree.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"
#include "util/goquote.h"
#include "util/json.h"

static const char *const type_names[] = {
    [CR_NODE_FILE] = "file", [CR_NODE_DIR] = "dir", [CR_NODE_SYMLINK] = "symlink", [CR_NODE_DEV] = "dev",
    [CR_NODE_CHARDEV] = "chardev", [CR_NODE_FIFO] = "fifo", [CR_NODE_SOCKET] = "socket",
    [CR_NODE_IRREGULAR] = "irregular", [CR_NODE_UNKNOWN] = "",
};

const char *cr_node_type_name(cr_node_type t)
{
    return (unsigned)t <= CR_NODE_UNKNOWN ? type_names[t] : "";
}

static cr_node_type node_type_from(const char *s, size_t n)
{
    for (int t = CR_NODE_FILE; t < CR_NODE_UNKNOWN; t++)
        if (strlen(type_names[t]) == n && !memcmp(type_names[t], s, n)) return (cr_node_type)t;
    return CR_NODE_UNKNOWN;
}

bool cr_node_name_is_safe(const char *name, size_t len)
{
    if (len == 0) return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) return false;
    return memchr(name, '/', len) == NULL && memchr(name, 0, len) == NULL;
}

unsigned cr_mode_to_posix_perm(uint32_t m)
{
    unsigned p = m & CR_MODE_PERM;
    if (m & CR_MODE_SETUID) p |= S_ISUID;
    if (m & CR_MODE_SETGID) p |= S_ISGID;
    if (m & CR_MODE_STICKY) p |= S_ISVTX;
    return p;
}

uint32_t cr_mode_from_posix(unsigned st_mode)
{
    uint32_t m = st_mode & CR_MODE_PERM;
    switch (st_mode & S_IFMT) {
    case S_IFDIR: m |= CR_MODE_DIR; break;
    case S_IFLNK: m |= CR_MODE_SYMLINK; break;
    case S_IFBLK: m |= CR_MODE_DEVICE; break;
    case S_IFCHR: m |= CR_MODE_DEVICE | CR_MODE_CHARDEV; break;
    case S_IFIFO: m |= CR_MODE_NAMEDPIPE; break;
    case S_IFSOCK: m |= CR_MODE_SOCKET; break;
    default: break;
    }
    if (st_mode & S_ISUID) m |= CR_MODE_SETUID;
    if (st_mode & S_ISGID) m |= CR_MODE_SETGID;
    if (st_mode & S_ISVTX) m |= CR_MODE_STICKY;
    return m;
}

/* ---- parsing ---------------------------------------------------------- */

typedef struct {
    cr_arena *arena;
    cr_buf scratch;
} parse_ctx;

static int opt_string(parse_ctx *c, const cr_json *obj, const char *name, const char **out, size_t *len)
{
    const cr_json *v = cr_json_get(obj, name);
    *out = NULL;
    if (len) *len = 0;
    if (cr_json_is_nullish(v)) return 0;
    if (v->type != CR_JSON_STRING) return cr_error(CR_E_FORMAT, "\"%s\" is not a string", name);
    if (!(*out = cr_arena_strndup(c->arena, v->str, v->len))) return cr_error(-ENOMEM, "out of memory");
    if (len) *len = v->len;
    return 0;
}

static int opt_u64(const cr_json *obj, const char *name, uint64_t *out)
{
    const cr_json *v = cr_json_get(obj, name);
    *out = 0;
    if (cr_json_is_nullish(v)) return 0;
    return cr_json_u64(v, out) < 0 ? cr_error(CR_E_FORMAT, "invalid \"%s\"", name) : 0;
}

static int opt_u32(const cr_json *obj, const char *name, uint32_t *out)
{
    const cr_json *v = cr_json_get(obj, name);
    *out = 0;
    if (cr_json_is_nullish(v)) return 0;
    return cr_json_u32(v, out) < 0 ? cr_error(CR_E_FORMAT, "invalid \"%s\"", name) : 0;
}

static int opt_time(const cr_json *obj, const char *name, cr_time *out)
{
    const cr_json *v = cr_json_get(obj, name);
    memset(out, 0, sizeof *out);
    out->sec = -62135596800LL; /* Go's zero time, 0001-01-01T00:00:00Z */
    if (cr_json_is_nullish(v)) return 0;
    if (v->type != CR_JSON_STRING || cr_time_parse(v->str, v->len, out) < 0)
        return cr_error(CR_E_FORMAT, "invalid time in \"%s\"", name);
    return 0;
}

static int parse_name(parse_ctx *c, const cr_json *obj, cr_node *n)
{
    const cr_json *v = cr_json_get(obj, "name");
    if (!cr_json_is(v, CR_JSON_STRING)) return cr_error(CR_E_FORMAT, "node without a name");
    cr_buf_reset(&c->scratch);
    if (cr_gounquote(&c->scratch, v->str, v->len) < 0)
        return cr_error(CR_E_FORMAT, "node name \"%.*s\" cannot be unquoted", (int)(v->len > 200 ? 200 : v->len), v->str);
    n->name_len = c->scratch.len;
    n->name = cr_arena_strndup(c->arena, (const char *)c->scratch.data, c->scratch.len);
    return n->name ? 0 : cr_error(-ENOMEM, "out of memory");
}

static int parse_linktarget(parse_ctx *c, const cr_json *obj, cr_node *n)
{
    CR_TRY(opt_string(c, obj, "linktarget", &n->linktarget, &n->linktarget_len));
    const cr_json *raw = cr_json_get(obj, "linktarget_raw");
    if (cr_json_is_nullish(raw)) return 0;
    if (raw->type != CR_JSON_STRING) return cr_error(CR_E_FORMAT, "invalid \"linktarget_raw\"");
    cr_buf_reset(&c->scratch);
    if (cr_base64_decode(&c->scratch, raw->str, raw->len) < 0) return cr_error(CR_E_FORMAT, "invalid \"linktarget_raw\"");
    n->linktarget_len = c->scratch.len;
    n->linktarget = cr_arena_strndup(c->arena, (const char *)c->scratch.data, c->scratch.len);
    return n->linktarget ? 0 : cr_error(-ENOMEM, "out of memory");
}

static int parse_xattrs(parse_ctx *c, const cr_json *obj, cr_node *n)
{
    const cr_json *v = cr_json_get(obj, "extended_attributes");
    if (cr_json_is_nullish(v)) return 0;
    if (v->type != CR_JSON_ARRAY) return cr_error(CR_E_FORMAT, "\"extended_attributes\" is not a list");
    if (!(n->xattrs = cr_arena_alloc(c->arena, (v->len + 1) * sizeof *n->xattrs))) return cr_error(-ENOMEM, "out of memory");
    for (uint32_t i = 0; i < v->len; i++) {
        const cr_json *x = &v->kids[i];
        cr_xattr *xa = &n->xattrs[n->nxattrs++];
        CR_TRY(opt_string(c, x, "name", &xa->name, NULL));
        if (!xa->name) return cr_error(CR_E_FORMAT, "extended attribute without a name");
        const cr_json *val = cr_json_get(x, "value");
        if (cr_json_is_nullish(val)) continue;
        cr_buf_reset(&c->scratch);
        if (val->type != CR_JSON_STRING || cr_base64_decode(&c->scratch, val->str, val->len) < 0)
            return cr_error(CR_E_FORMAT, "invalid value of extended attribute %s", xa->name);
        xa->value_len = c->scratch.len;
        if (!(xa->value = cr_arena_memdup(c->arena, c->scratch.data, c->scratch.len))) return cr_error(-ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_content(parse_ctx *c, const cr_json *obj, cr_node *n)
{
    const cr_json *v = cr_json_get(obj, "content");
    if (cr_json_is_nullish(v)) {
        n->content_null = true;
        return 0;
    }
    if (v->type != CR_JSON_ARRAY) return cr_error(CR_E_FORMAT, "\"content\" is not a list");
    if (!(n->content = cr_arena_alloc(c->arena, (v->len + 1) * sizeof *n->content))) return cr_error(-ENOMEM, "out of memory");
    for (uint32_t i = 0; i < v->len; i++) {
        const cr_json *id = &v->kids[i];
        if (id->type != CR_JSON_STRING || cr_id_from_hex(&n->content[i], id->str, id->len) < 0)
            return cr_error(CR_E_FORMAT, "invalid blob ID in \"content\"");
    }
    n->ncontent = v->len;
    return 0;
}

static int parse_node(parse_ctx *c, const cr_json *obj, cr_node *n)
{
    if (!cr_json_is(obj, CR_JSON_OBJECT)) return cr_error(CR_E_FORMAT, "node is not an object");
    CR_TRY(parse_name(c, obj, n));
    CR_TRY(opt_string(c, obj, "type", &n->type_name, NULL));
    /* type_name is a C string (and written back as one): classify what it
     * holds up to a NUL, so "file\u0000" does not change type on re-encoding. */
    n->type = n->type_name ? node_type_from(n->type_name, strlen(n->type_name)) : CR_NODE_UNKNOWN;
    if (!n->type_name) n->type_name = "";
    CR_TRY(opt_u32(obj, "mode", &n->mode));
    CR_TRY(opt_time(obj, "mtime", &n->mtime));
    CR_TRY(opt_time(obj, "atime", &n->atime));
    CR_TRY(opt_time(obj, "ctime", &n->ctime));
    CR_TRY(opt_u32(obj, "uid", &n->uid));
    CR_TRY(opt_u32(obj, "gid", &n->gid));
    CR_TRY(opt_string(c, obj, "user", &n->user, NULL));
    CR_TRY(opt_string(c, obj, "group", &n->group, NULL));
    CR_TRY(opt_u64(obj, "inode", &n->inode));
    CR_TRY(opt_u64(obj, "device_id", &n->device_id));
    CR_TRY(opt_u64(obj, "size", &n->size));
    CR_TRY(opt_u64(obj, "links", &n->links));
    CR_TRY(parse_linktarget(c, obj, n));
    CR_TRY(parse_xattrs(c, obj, n));
    CR_TRY(opt_u64(obj, "device", &n->device));
    CR_TRY(parse_content(c, obj, n));
    const cr_json *sub = cr_json_get(obj, "subtree");
    if (!cr_json_is_nullish(sub)) {
        if (sub->type != CR_JSON_STRING || cr_id_from_hex(&n->subtree, sub->str, sub->len) < 0)
            return cr_error(CR_E_FORMAT, "invalid \"subtree\"");
        n->has_subtree = true;
    }
    return opt_string(c, obj, "error", &n->error, NULL);
}

int cr_tree_parse(const char *json, size_t n, cr_tree **out)
{
    cr_json_doc *doc = NULL;
    CR_TRY_CTX(cr_json_parse(json, n, &doc), "tree");
    cr_tree *t = calloc(1, sizeof *t);
    parse_ctx c = {NULL, CR_BUF_INIT};
    int r = t ? 0 : cr_error(-ENOMEM, "out of memory");
    const cr_json *root = cr_json_root(doc), *nodes = cr_json_get(root, "nodes");
    if (r == 0 && !cr_json_is(root, CR_JSON_OBJECT)) r = cr_error(CR_E_FORMAT, "tree: not a JSON object");
    if (r == 0 && !cr_json_is_nullish(nodes) && nodes->type != CR_JSON_ARRAY) r = cr_error(CR_E_FORMAT, "tree: \"nodes\" is not a list");
    if (r == 0 && cr_json_is(nodes, CR_JSON_ARRAY)) {
        c.arena = &t->arena;
        t->nodes = cr_arena_alloc(&t->arena, (nodes->len + 1) * sizeof *t->nodes);
        if (!t->nodes) r = cr_error(-ENOMEM, "out of memory");
        for (uint32_t i = 0; r == 0 && i < nodes->len; i++, t->n++) {
            r = parse_node(&c, &nodes->kids[i], &t->nodes[i]);
            if (r < 0) r = cr_error_ctx(r, "tree: node %u", i);
        }
    }
    cr_buf_free(&c.scratch);
    cr_json_free(doc);
    if (r < 0) {
        cr_tree_free(t);
        return r;
    }
    *out = t;
    return 0;
}

void cr_tree_free(cr_tree *t)
{
    if (!t) return;
    cr_arena_free(&t->arena);
    free(t);
}

const cr_node *cr_tree_find(const cr_tree *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->nodes[i].name_len == len && !memcmp(t->nodes[i].name, name, len)) return &t->nodes[i];
    return NULL;
}

/* ---- encoding (Go struct order, omitempty) ---------------------------- */

static int put_key(cr_buf *b, const char *key)
{
    CR_TRY(cr_buf_append(b, ",\"", 2));
    CR_TRY(cr_buf_puts(b, key));
    return cr_buf_append(b, "\":", 2);
}

static int put_time(cr_buf *b, const char *key, const cr_time *t)
{
    CR_TRY(put_key(b, key));
    CR_TRY(cr_buf_putc(b, '"'));
    CR_TRY(cr_time_format(b, t));
    return cr_buf_putc(b, '"');
}

static int put_u64_omit(cr_buf *b, const char *key, uint64_t v)
{
    if (!v) return 0;
    CR_TRY(put_key(b, key));
    return cr_json_put_u64(b, v);
}

static int put_str_omit(cr_buf *b, const char *key, const char *s, size_t n)
{
    if (!s || !n) return 0;
    CR_TRY(put_key(b, key));
    return cr_json_put_string(b, s, n);
}

static bool is_valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t rune;
        int k = cr_utf8_decode((const uint8_t *)s + i, n - i, &rune);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

static int put_linktarget(cr_buf *b, const cr_node *n)
{
    CR_TRY(put_str_omit(b, "linktarget", n->linktarget, n->linktarget_len));
    /* Newer restic keeps non-UTF-8 targets exactly in linktarget_raw. */
    if (!n->linktarget || !n->linktarget_len || is_valid_utf8(n->linktarget, n->linktarget_len)) return 0;
    CR_TRY(put_key(b, "linktarget_raw"));
    CR_TRY(cr_buf_putc(b, '"'));
    CR_TRY(cr_base64_encode(b, n->linktarget, n->linktarget_len));
    return cr_buf_putc(b, '"');
}

static int put_xattrs(cr_buf *b, const cr_node *n)
{
    if (!n->nxattrs) return 0;
    CR_TRY(cr_buf_puts(b, ",\"extended_attributes\":["));
    for (size_t i = 0; i < n->nxattrs; i++) {
        CR_TRY(cr_buf_puts(b, i ? ",{\"name\":" : "{\"name\":"));
        CR_TRY(cr_json_put_cstr(b, n->xattrs[i].name));
        CR_TRY(cr_buf_puts(b, ",\"value\":"));
        if (!n->xattrs[i].value) CR_TRY(cr_buf_puts(b, "null"));
        else {
            CR_TRY(cr_buf_putc(b, '"'));
            CR_TRY(cr_base64_encode(b, n->xattrs[i].value, n->xattrs[i].value_len));
            CR_TRY(cr_buf_putc(b, '"'));
        }
        CR_TRY(cr_buf_putc(b, '}'));
    }
    return cr_buf_putc(b, ']');
}

static int put_content(cr_buf *b, const cr_node *n)
{
    CR_TRY(cr_buf_puts(b, ",\"content\":"));
    if (n->content_null && !n->ncontent) return cr_buf_puts(b, "null");
    CR_TRY(cr_buf_putc(b, '['));
    for (size_t i = 0; i < n->ncontent; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&n->content[i], hex);
        CR_TRY(cr_buf_printf(b, i ? ",\"%s\"" : "\"%s\"", hex));
    }
    return cr_buf_putc(b, ']');
}

int cr_node_encode(cr_buf *b, const cr_node *n)
{
    CR_TRY(cr_buf_puts(b, "{\"name\":"));
    cr_buf quoted = CR_BUF_INIT;
    int r = cr_goquote(&quoted, n->name, n->name_len);
    if (r == 0) r = cr_json_put_string(b, quoted.data, quoted.len);
    cr_buf_free(&quoted);
    CR_TRY(r);
    CR_TRY(put_key(b, "type"));
    CR_TRY(cr_json_put_cstr(b, n->type_name && *n->type_name ? n->type_name : cr_node_type_name(n->type)));
    CR_TRY(put_u64_omit(b, "mode", n->mode));
    CR_TRY(put_time(b, "mtime", &n->mtime));
    CR_TRY(put_time(b, "atime", &n->atime));
    CR_TRY(put_time(b, "ctime", &n->ctime));
    CR_TRY(put_key(b, "uid"));
    CR_TRY(cr_json_put_u64(b, n->uid));
    CR_TRY(put_key(b, "gid"));
    CR_TRY(cr_json_put_u64(b, n->gid));
    CR_TRY(put_str_omit(b, "user", n->user, n->user ? strlen(n->user) : 0));
    CR_TRY(put_str_omit(b, "group", n->group, n->group ? strlen(n->group) : 0));
    CR_TRY(put_u64_omit(b, "inode", n->inode));
    CR_TRY(put_u64_omit(b, "device_id", n->device_id));
    CR_TRY(put_u64_omit(b, "size", n->size));
    CR_TRY(put_u64_omit(b, "links", n->links));
    CR_TRY(put_linktarget(b, n));
    CR_TRY(put_xattrs(b, n));
    CR_TRY(put_u64_omit(b, "device", n->device));
    CR_TRY(put_content(b, n));
    if (n->has_subtree) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&n->subtree, hex);
        CR_TRY(cr_buf_printf(b, ",\"subtree\":\"%s\"", hex));
    }
    CR_TRY(put_str_omit(b, "error", n->error, n->error ? strlen(n->error) : 0));
    return cr_buf_putc(b, '}');
}

int cr_tree_encode(cr_buf *b, const cr_node *nodes, size_t n)
{
    CR_TRY(cr_buf_puts(b, "{\"nodes\":["));
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_putc(b, ','));
        CR_TRY(cr_node_encode(b, &nodes[i]));
    }
    return cr_buf_puts(b, "]}\n");
}
