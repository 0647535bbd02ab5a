/* libFuzzer target for tree blobs (spec §12).
 *  - cr_tree_parse accepts or fails with CR_E_FORMAT (never crashes, leaks);
 *  - a parsed tree always encodes; the encoding parses again, and to the
 *    same tree (structurally: names and link targets byte-exact; strings
 *    that Go's JSON writer turns lossy -- bytes that are not UTF-8 become
 *    U+FFFD, a C string ends at NUL -- compared after that same mapping);
 *  - encoding is idempotent from the second round on (the first round may
 *    turn raw invalid bytes into \ufffd escapes, as Go's decoder would have
 *    replaced them on reading);
 *  - helpers: cr_tree_find finds each node's name, cr_node_name_is_safe. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/tree.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/goquote.h"

/* Go's view of a C string written by the JSON writer. */
static void lossy(cr_buf *out, const char *s)
{
    cr_buf_reset(out);
    if (!s) s = "";
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t rune;
        int k = cr_utf8_decode((const uint8_t *)s + i, n - i, &rune);
        if (k <= 0) {
            if (cr_buf_append(out, "\xef\xbf\xbd", 3) < 0) abort();
            i++;
        } else {
            if (cr_buf_append(out, s + i, (size_t)k) < 0) abort();
            i += (size_t)k;
        }
    }
}

static void same_str(const char *a, const char *b)
{
    cr_buf x = CR_BUF_INIT, y = CR_BUF_INIT;
    lossy(&x, a);
    lossy(&y, b);
    if (x.len != y.len || (x.len && memcmp(x.data, y.data, x.len) != 0)) abort();
    cr_buf_free(&x);
    cr_buf_free(&y);
}

static void same_bytes(const void *a, size_t an, const void *b, size_t bn)
{
    if (an != bn || (an && memcmp(a, b, an) != 0)) abort();
}

static void same_time(const cr_time *a, const cr_time *b)
{
    if (a->sec != b->sec || a->nsec != b->nsec || a->offset != b->offset) abort();
}

static void same_node(const cr_node *a, const cr_node *b)
{
    same_bytes(a->name, a->name_len, b->name, b->name_len);
    if (a->type != b->type) abort();
    same_str(a->type_name, b->type_name);
    if (a->mode != b->mode || a->uid != b->uid || a->gid != b->gid) abort();
    same_time(&a->mtime, &b->mtime);
    same_time(&a->atime, &b->atime);
    same_time(&a->ctime, &b->ctime);
    same_str(a->user, b->user);
    same_str(a->group, b->group);
    if (a->inode != b->inode || a->device_id != b->device_id || a->size != b->size || a->links != b->links ||
        a->device != b->device)
        abort();
    same_bytes(a->linktarget, a->linktarget ? a->linktarget_len : 0, b->linktarget, b->linktarget ? b->linktarget_len : 0);
    if (a->nxattrs != b->nxattrs) abort();
    for (size_t i = 0; i < a->nxattrs; i++) {
        same_str(a->xattrs[i].name, b->xattrs[i].name);
        if (!a->xattrs[i].value != !b->xattrs[i].value) abort();
        if (a->xattrs[i].value) same_bytes(a->xattrs[i].value, a->xattrs[i].value_len, b->xattrs[i].value, b->xattrs[i].value_len);
    }
    if (a->ncontent != b->ncontent) abort();
    if (a->ncontent && memcmp(a->content, b->content, a->ncontent * sizeof *a->content) != 0) abort();
    if (!a->ncontent && a->content_null != b->content_null) abort();
    if (a->has_subtree != b->has_subtree) abort();
    if (a->has_subtree && !cr_id_eq(&a->subtree, &b->subtree)) abort();
    same_str(a->error, b->error);
}

static cr_tree *must_parse(const cr_buf *b)
{
    cr_tree *t = NULL;
    if (cr_tree_parse((const char *)b->data, b->len, &t) != 0) abort();
    return t;
}

static void encode(const cr_tree *t, cr_buf *out)
{
    cr_buf_reset(out);
    if (cr_tree_encode(out, t->nodes, t->n) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_tree *t = NULL;
    int r = cr_tree_parse((const char *)data, size, &t);
    if (r < 0) {
        if (r != CR_E_FORMAT || t) abort();
        cr_error_clear();
        return 0;
    }
    for (size_t i = 0; i < t->n; i++) {
        const cr_node *n = &t->nodes[i];
        if (n->name[n->name_len] != 0) abort();
        const cr_node *f = cr_tree_find(t, n->name, n->name_len);
        if (!f || f > n || f->name_len != n->name_len || memcmp(f->name, n->name, n->name_len) != 0) abort();
        bool safe = cr_node_name_is_safe(n->name, n->name_len);
        bool dots = (n->name_len == 1 && n->name[0] == '.') || (n->name_len == 2 && !memcmp(n->name, "..", 2));
        if (safe && (n->name_len == 0 || dots || memchr(n->name, '/', n->name_len) || memchr(n->name, 0, n->name_len)))
            abort();
        if (!safe && n->name_len && !dots && !memchr(n->name, '/', n->name_len) && !memchr(n->name, 0, n->name_len))
            abort();
    }
    cr_buf e1 = CR_BUF_INIT, e2 = CR_BUF_INIT, e3 = CR_BUF_INIT;
    encode(t, &e1);
    cr_tree *t1 = must_parse(&e1);
    if (t1->n != t->n) abort();
    for (size_t i = 0; i < t->n; i++) same_node(&t->nodes[i], &t1->nodes[i]);
    encode(t1, &e2);
    cr_tree *t2 = must_parse(&e2);
    if (t2->n != t->n) abort();
    for (size_t i = 0; i < t->n; i++) same_node(&t1->nodes[i], &t2->nodes[i]);
    encode(t2, &e3);
    if (e2.len != e3.len || memcmp(e2.data, e3.data, e2.len) != 0) abort();
    cr_tree_free(t2);
    cr_tree_free(t1);
    cr_tree_free(t);
    cr_buf_free(&e1);
    cr_buf_free(&e2);
    cr_buf_free(&e3);
    return 0;
}
