/* libFuzzer target for snapshots (spec §11).
 *  - cr_snapshot_parse accepts or fails with CR_E_FORMAT, leaving the struct
 *    cleared (no leak);
 *  - a parsed snapshot always encodes; the encoding parses to the same
 *    snapshot (strings compared as Go's JSON writer sees C strings: bytes
 *    that are not UTF-8 become U+FFFD), and encoding is idempotent from the
 *    second round on;
 *  - filters: the snapshot matches its own host, each of its own tags (when
 *    a tag is a single trimmed, comma-free word), all its tags as one list,
 *    and each of its own paths (without a trailing slash); "" matches it only
 *    when it has no tags. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/snapshot.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/goquote.h"

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

static void same_list(char **a, size_t an, char **b, size_t bn)
{
    if (an != bn) abort();
    for (size_t i = 0; i < an; i++) same_str(a[i], b[i]);
}

static void same_time(const cr_time *a, const cr_time *b)
{
    if (a->sec != b->sec || a->nsec != b->nsec || a->offset != b->offset) abort();
}

static void same_snapshot(const cr_snapshot *a, const cr_snapshot *b)
{
    same_time(&a->time, &b->time);
    if (a->has_parent != b->has_parent || (a->has_parent && !cr_id_eq(&a->parent, &b->parent))) abort();
    if (a->has_tree != b->has_tree || (a->has_tree && !cr_id_eq(&a->tree, &b->tree))) abort();
    if ((a->paths == NULL) != (b->paths == NULL)) abort();
    same_list(a->paths, a->npaths, b->paths, b->npaths);
    same_str(a->hostname, b->hostname);
    same_str(a->username, b->username);
    if (a->uid != b->uid || a->gid != b->gid) abort();
    same_list(a->excludes, a->nexcludes, b->excludes, b->nexcludes);
    same_list(a->tags, a->ntags, b->tags, b->ntags);
    if (a->has_original != b->has_original || (a->has_original && !cr_id_eq(&a->original, &b->original))) abort();
    same_str(a->program_version, b->program_version);
    if (a->has_summary != b->has_summary) abort();
    if (a->has_summary) {
        const cr_snapshot_summary *x = &a->summary, *y = &b->summary;
        same_time(&x->backup_start, &y->backup_start);
        same_time(&x->backup_end, &y->backup_end);
        if (x->files_new != y->files_new || x->files_changed != y->files_changed ||
            x->files_unmodified != y->files_unmodified || x->dirs_new != y->dirs_new ||
            x->dirs_changed != y->dirs_changed || x->dirs_unmodified != y->dirs_unmodified ||
            x->data_blobs != y->data_blobs || x->tree_blobs != y->tree_blobs || x->data_added != y->data_added ||
            x->data_added_packed != y->data_added_packed || x->total_files_processed != y->total_files_processed ||
            x->total_bytes_processed != y->total_bytes_processed)
            abort();
    }
}

static void must_parse(const cr_buf *b, cr_snapshot *s)
{
    memset(s, 0, sizeof *s);
    if (cr_snapshot_parse((const char *)b->data, b->len, s) != 0) abort();
}

static void encode(const cr_snapshot *s, cr_buf *out)
{
    cr_buf_reset(out);
    if (cr_snapshot_encode(s, out) != 0) abort();
}

static bool plain_tag(const char *t)
{
    size_t n = strlen(t);
    if (!n || strchr(t, ',')) return false;
    const char *ws = " \t\n\v\f\r";
    return !strchr(ws, t[0]) && !strchr(ws, t[n - 1]);
}

static void check_filters(const cr_snapshot *s)
{
    const char *host = s->hostname;
    cr_snapshot_filter f = {.hosts = &host, .nhosts = 1};
    if (!cr_snapshot_matches(s, &f)) abort();
    for (size_t i = 0; i < s->ntags; i++) {
        if (!plain_tag(s->tags[i])) continue;
        const char *one = s->tags[i];
        cr_snapshot_filter ft = {.tag_lists = &one, .ntag_lists = 1};
        if (!cr_snapshot_matches(s, &ft)) abort();
        if (!cr_snapshot_has_tag(s, one)) abort();
    }
    /* All plain tags joined into one list. */
    cr_buf all = CR_BUF_INIT;
    for (size_t i = 0; i < s->ntags; i++) {
        if (!plain_tag(s->tags[i])) continue;
        if (all.len && cr_buf_putc(&all, ',') < 0) abort();
        if (cr_buf_puts(&all, s->tags[i]) < 0) abort();
    }
    if (all.len) {
        if (cr_buf_nul(&all) < 0) abort();
        const char *l = (const char *)all.data;
        cr_snapshot_filter ft = {.tag_lists = &l, .ntag_lists = 1};
        if (!cr_snapshot_matches(s, &ft)) abort();
    }
    cr_buf_free(&all);
    const char *empty = "";
    cr_snapshot_filter fe = {.tag_lists = &empty, .ntag_lists = 1};
    bool has_empty_tag = false;
    for (size_t i = 0; i < s->ntags; i++) has_empty_tag |= s->tags[i][0] == 0;
    if (cr_snapshot_matches(s, &fe) != (s->ntags == 0 || has_empty_tag)) abort();
    for (size_t i = 0; i < s->npaths; i++) {
        size_t n = strlen(s->paths[i]);
        if (!n || s->paths[i][n - 1] == '/') continue;
        const char *p = s->paths[i];
        cr_snapshot_filter fp = {.paths = &p, .npaths = 1};
        if (!cr_snapshot_matches(s, &fp)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_snapshot s;
    memset(&s, 0x5a, sizeof s);
    int r = cr_snapshot_parse((const char *)data, size, &s);
    if (r < 0) {
        if (r != CR_E_FORMAT) abort();
        if (s.paths || s.tags || s.excludes || s.hostname || s.username || s.program_version) abort();
        cr_error_clear();
        return 0;
    }
    check_filters(&s);
    cr_buf e1 = CR_BUF_INIT, e2 = CR_BUF_INIT, e3 = CR_BUF_INIT;
    cr_snapshot s1, s2;
    encode(&s, &e1);
    must_parse(&e1, &s1);
    same_snapshot(&s, &s1);
    encode(&s1, &e2);
    must_parse(&e2, &s2);
    same_snapshot(&s1, &s2);
    encode(&s2, &e3);
    if (e2.len != e3.len || memcmp(e2.data, e3.data, e2.len) != 0) abort();
    cr_snapshot_clear(&s);
    cr_snapshot_clear(&s1);
    cr_snapshot_clear(&s2);
    cr_buf_free(&e1);
    cr_buf_free(&e2);
    cr_buf_free(&e3);
    return 0;
}
