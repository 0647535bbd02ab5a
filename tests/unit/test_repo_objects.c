/* Unit tests for trees, snapshots and locks (spec §11, §12, §14): every
 * fixture tree and snapshot parses and re-encodes to restic's exact bytes,
 * node names decode to the raw names, hostile input is refused cleanly,
 * snapshot filters follow restic 0.14, lock staleness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "crypto/crypto.h"
#include "repo/compress.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/gotime.h"
#include "util/id.h"
#include "util/json.h"

static cJSON *vectors;
static const char *const repo_names[] = {"v1", "v2", "v2-two-snapshots", "v2-pruned"};
#define NREPOS (sizeof repo_names / sizeof repo_names[0])

/* ---- helpers ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

static int load_vectors(void **state)
{
    char *text = read_file("fixtures/vectors.json", NULL);
    vectors = cJSON_Parse(text);
    free(text);
    return vectors ? 0 : -1;
}

static int free_vectors(void **state)
{
    cJSON_Delete(vectors);
    return 0;
}

static const cJSON *member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) fail_msg("missing member %s", name);
    return v;
}

static const char *str_member(const cJSON *obj, const char *name)
{
    const cJSON *v = member(obj, name);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static double num_member(const cJSON *obj, const char *name)
{
    const cJSON *v = member(obj, name);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const cJSON *repo_vec(const char *name)
{
    return member(member(vectors, "repos"), name);
}

static uint8_t *hex_alloc(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    assert_int_equal(len % 2, 0);
    uint8_t *out = malloc(len / 2 + 1);
    assert_non_null(out);
    assert_int_equal(cr_hex_decode(hex, len, out, len / 2), 0);
    *n = len / 2;
    return out;
}

static cr_id id_hex(const char *hex)
{
    cr_id id;
    assert_int_equal(cr_id_from_hex(&id, hex, strlen(hex)), 0);
    return id;
}

static void assert_bytes(const void *got, size_t gn, const void *want, size_t wn)
{
    if (gn != wn || memcmp(got, want, gn) != 0)
        fail_msg("got  (%zu) %.*s\nwant (%zu) %.*s", gn, (int)gn, (const char *)got, wn, (int)wn, (const char *)want);
}

static void assert_buf_str(const cr_buf *b, const char *s)
{
    assert_bytes(b->data, b->len, s, strlen(s));
}

static char *time_str(const cr_time *t)
{
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_time_format(&b, t), 0);
    assert_int_equal(cr_buf_nul(&b), 0);
    return (char *)b.data;
}

/* ---- trees ---------------------------------------------------------------- */

static cr_tree *parse_tree_str(const char *json)
{
    cr_tree *t = NULL;
    int r = cr_tree_parse(json, strlen(json), &t);
    if (r < 0) fail_msg("tree did not parse (%d: %s): %s", r, cr_error_message(), json);
    return t;
}

static void assert_tree_reencodes(const cr_tree *t, const char *json, size_t n)
{
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_tree_encode(&out, t->nodes, t->n), 0);
    assert_bytes(out.data, out.len, json, n);
}

static void test_tree_vectors(void **state)
{
    size_t total = 0;
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *tv;
        cJSON_ArrayForEach(tv, member(repo_vec(repo_names[i]), "trees")) {
            const char *json = str_member(tv, "json");
            size_t n = strlen(json);
            cr_id want = id_hex(str_member(tv, "id")), got;
            cr_sha256(json, n, got.b);
            assert_true(cr_id_eq(&want, &got));
            cr_tree *t = parse_tree_str(json);
            /* Byte-identical re-encoding, so the tree ID is reproduced. */
            assert_tree_reencodes(t, json, n);
            /* Node order is the sorted raw-name order, and every name is safe. */
            for (size_t k = 0; k < t->n; k++) {
                assert_true(cr_node_name_is_safe(t->nodes[k].name, t->nodes[k].name_len));
                assert_ptr_equal(cr_tree_find(t, t->nodes[k].name, t->nodes[k].name_len), &t->nodes[k]);
                if (k) {
                    const cr_node *a = &t->nodes[k - 1], *b = &t->nodes[k];
                    size_t m = a->name_len < b->name_len ? a->name_len : b->name_len;
                    int c = memcmp(a->name, b->name, m);
                    assert_true(c < 0 || (c == 0 && a->name_len < b->name_len));
                }
            }
            cr_tree_free(t);
            total++;
        }
    }
    assert_int_equal(total, 23);
    cr_tree_free(NULL);
}

/* Listing paths show non-UTF-8 name bytes as \xHH. */
static size_t decode_listing_name(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b;
        if (s[i] == '\\' && i + 3 < n + 0 && s[i + 1] == 'x' && cr_hex_decode(s + i + 2, 2, &b, 1) == 0) {
            out[k++] = (char)b;
            i += 3;
        } else {
            out[k++] = s[i];
        }
    }
    return k;
}

typedef struct {
    cr_id id;
    cr_tree *tree;
} tree_entry;

static const cr_tree *find_tree(tree_entry *trees, size_t n, const cr_id *id)
{
    for (size_t i = 0; i < n; i++)
        if (cr_id_eq(&trees[i].id, id)) return trees[i].tree;
    fail_msg("tree not in vectors");
    return NULL;
}

/* Resolve every listing path from the snapshot's root tree and compare. */
static void test_tree_listing(void **state)
{
    size_t checked = 0;
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *rv = repo_vec(repo_names[i]);
        tree_entry trees[16];
        size_t ntrees = 0;
        const cJSON *tv;
        cJSON_ArrayForEach(tv, member(rv, "trees")) {
            assert_true(ntrees < 16);
            trees[ntrees].id = id_hex(str_member(tv, "id"));
            trees[ntrees++].tree = parse_tree_str(str_member(tv, "json"));
        }
        const cJSON *sv, *lv;
        cJSON_ArrayForEach(sv, member(rv, "snapshots")) {
            cJSON *snap = cJSON_Parse(str_member(sv, "json"));
            cr_id root = id_hex(str_member(snap, "tree"));
            cJSON_Delete(snap);
            cJSON_ArrayForEach(lv, member(sv, "listing")) {
                const char *path = str_member(lv, "path");
                const cr_tree *t = find_tree(trees, ntrees, &root);
                const cr_node *node = NULL;
                for (const char *p = path;;) {
                    const char *slash = strchr(p, '/');
                    size_t len = slash ? (size_t)(slash - p) : strlen(p);
                    char name[512];
                    size_t nl = decode_listing_name(p, len, name);
                    node = cr_tree_find(t, name, nl);
                    if (!node) fail_msg("%s: %s not found", repo_names[i], path);
                    if (!slash) break;
                    assert_true(node->has_subtree);
                    t = find_tree(trees, ntrees, &node->subtree);
                    p = slash + 1;
                }
                assert_string_equal(node->type_name, str_member(lv, "type"));
                assert_string_equal(cr_node_type_name(node->type), str_member(lv, "type"));
                assert_int_equal(node->mode, (uint32_t)num_member(lv, "mode"));
                _cleanup_free_ char *mt = time_str(&node->mtime);
                assert_string_equal(mt, str_member(lv, "mtime"));
                const cJSON *x;
                if ((x = cJSON_GetObjectItemCaseSensitive(lv, "size"))) assert_int_equal(node->size, (uint64_t)x->valuedouble);
                if ((x = cJSON_GetObjectItemCaseSensitive(lv, "content_blobs"))) {
                    assert_int_equal(node->ncontent, (size_t)x->valuedouble);
                    assert_false(node->content_null); /* files: [] even when empty */
                    assert_int_equal(node->type, CR_NODE_FILE);
                } else {
                    assert_true(node->content_null);
                }
                if ((x = cJSON_GetObjectItemCaseSensitive(lv, "linktarget"))) {
                    assert_int_equal(node->type, CR_NODE_SYMLINK);
                    assert_bytes(node->linktarget, node->linktarget_len, x->valuestring, strlen(x->valuestring));
                }
                if ((x = cJSON_GetObjectItemCaseSensitive(lv, "subtree"))) {
                    cr_id sub = id_hex(x->valuestring);
                    assert_true(node->has_subtree);
                    assert_true(cr_id_eq(&node->subtree, &sub));
                    assert_int_equal(node->type, CR_NODE_DIR);
                } else {
                    assert_false(node->has_subtree);
                }
                checked++;
            }
        }
        for (size_t k = 0; k < ntrees; k++) cr_tree_free(trees[k].tree);
    }
    assert_true(checked >= 90);
}

/* The special names of the fixture source tree, and the other members. */
static void test_tree_fixture_details(void **state)
{
    const cJSON *tv = NULL, *x;
    cJSON_ArrayForEach(x, member(repo_vec("v1"), "trees")) if (!strcmp(str_member(x, "path"), "src")) tv = x;
    assert_non_null(tv);
    cr_tree *t = parse_tree_str(str_member(tv, "json"));

    const cr_node *n = cr_tree_find(t, "ctl\x01tab\there", 12);
    assert_non_null(n);
    n = cr_tree_find(t, "latin1-\xe9\xff.bin", 13);
    assert_non_null(n);
    const char *q = "name with spaces & \"quotes\" \\ backslash <tag> \xc3\xbc\xe2\x82\xac\xe2\x98\x83.txt";
    n = cr_tree_find(t, q, strlen(q));
    assert_non_null(n);
    assert_null(cr_tree_find(t, "latin1-\\xe9\\xff.bin", 19)); /* the quoted form is not the name */
    assert_null(cr_tree_find(t, "ctl", 3));

    n = cr_tree_find(t, "small.txt", 9);
    assert_non_null(n);
    assert_int_equal(n->type, CR_NODE_FILE);
    assert_int_equal(n->mtime.nsec, 123456789);
    assert_int_equal(n->nxattrs, 1);
    assert_string_equal(n->xattrs[0].name, "user.fixture");
    assert_bytes(n->xattrs[0].value, n->xattrs[0].value_len, "hello\0world\xff", 12);
    assert_int_equal(n->ncontent, 1);
    assert_non_null(n->user);
    assert_true(n->links >= 1);
    assert_true(n->inode != 0);

    n = cr_tree_find(t, "fifo", 4);
    assert_int_equal(n->type, CR_NODE_FIFO);
    assert_int_equal(n->mode, CR_MODE_NAMEDPIPE | 0640);
    assert_int_equal(cr_mode_to_posix_perm(n->mode), 0640);
    n = cr_tree_find(t, "suid-tool", 9);
    assert_int_equal(n->mode, 8389101);
    assert_int_equal(cr_mode_to_posix_perm(n->mode), 04755);
    n = cr_tree_find(t, "sticky-dir", 10);
    assert_int_equal(n->type, CR_NODE_DIR);
    assert_int_equal(cr_mode_to_posix_perm(n->mode), 01777);
    n = cr_tree_find(t, "sub", 3);
    assert_int_equal(cr_mode_to_posix_perm(n->mode), 02755);
    assert_int_equal(cr_mode_from_posix(040000 | 02755), n->mode);
    n = cr_tree_find(t, "big.bin", 7);
    assert_int_equal(n->ncontent, 7);
    /* the repeated 512 KiB zero chunk */
    cr_id zeros = id_hex("07854d2fef297a06ba81685e660c332de36d5d18d546927d30daad6d7fda1541");
    assert_true(cr_id_eq(&n->content[2], &zeros));
    assert_true(cr_id_eq(&n->content[3], &zeros));
    n = cr_tree_find(t, "empty", 5);
    assert_int_equal(n->ncontent, 0);
    assert_false(n->content_null);
    assert_int_equal(n->size, 0);
    n = cr_tree_find(t, "link-to-small", 13);
    assert_int_equal(n->type, CR_NODE_SYMLINK);
    assert_bytes(n->linktarget, n->linktarget_len, "small.txt", 9);
    assert_int_equal(cr_mode_from_posix(0120777), n->mode);
    cr_tree_free(t);

    /* The empty tree and its well-known ID. */
    const char *empty = "{\"nodes\":[]}\n";
    t = parse_tree_str(empty);
    assert_int_equal(t->n, 0);
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_tree_encode(&out, t->nodes, t->n), 0);
    assert_buf_str(&out, empty);
    cr_id id, want = id_hex("ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8");
    cr_sha256(out.data, out.len, id.b);
    assert_true(cr_id_eq(&id, &want));
    cr_tree_free(t);
}

static void test_node_name_is_safe(void **state)
{
    assert_true(cr_node_name_is_safe("a", 1));
    assert_true(cr_node_name_is_safe("...", 3));
    assert_true(cr_node_name_is_safe(".a", 2));
    assert_true(cr_node_name_is_safe("..a", 3));
    assert_true(cr_node_name_is_safe("a..", 3));
    assert_true(cr_node_name_is_safe("\\", 1));
    assert_true(cr_node_name_is_safe("\xff\xfe", 2));
    assert_true(cr_node_name_is_safe(" ", 1));
    assert_false(cr_node_name_is_safe("", 0));
    assert_false(cr_node_name_is_safe(".", 1));
    assert_false(cr_node_name_is_safe("..", 2));
    assert_false(cr_node_name_is_safe("/", 1));
    assert_false(cr_node_name_is_safe("a/b", 3));
    assert_false(cr_node_name_is_safe("../x", 4));
    assert_false(cr_node_name_is_safe("x/", 2));
    assert_false(cr_node_name_is_safe("a\0b", 3));
    assert_false(cr_node_name_is_safe("\0", 1));
    /* Only len bytes count. */
    assert_true(cr_node_name_is_safe("ab/c", 2));
    assert_false(cr_node_name_is_safe("../", 2));
}

/* Names as stored (inside the JSON string), and what they decode to. */
static void test_tree_names(void **state)
{
    static const struct {
        const char *stored; /* JSON string content */
        const char *raw;
        size_t rawlen;
        bool safe;
    } ok[] = {
        {"plain", "plain", 5, true},
        {"..", "..", 2, false},
        {".", ".", 1, false},
        {"", "", 0, false},
        {"a/b", "a/b", 3, false},
        {"/", "/", 1, false},
        {"\\\\x2e\\\\x2e", "..", 2, false},          /* \x2e\x2e */
        {"\\\\056\\\\056", "..", 2, false},          /* octal */
        {"\\\\u002e.", "..", 2, false},
        {"\\\\x2f", "/", 1, false},
        {"\\\\x00", "\0", 1, false},
        {"a\\\\000b", "a\0b", 3, false},
        {"\\\\a\\\\b\\\\f\\\\n\\\\r\\\\t\\\\v", "\a\b\f\n\r\t\v", 7, true},
        {"\\\\\\\\", "\\", 1, true},                 /* \\ */
        {"\\\\\\\"", "\"", 1, true},                 /* \" */
        {"\\\\xff\\\\xfe", "\xff\xfe", 2, true},
        {"\\\\U0001F600", "\xf0\x9f\x98\x80", 4, true},
        {"\\\\u00e9", "\xc3\xa9", 2, true},
        {"\xc3\xa9", "\xc3\xa9", 2, true},
        {"\\u00e9", "\xc3\xa9", 2, true},            /* JSON escape, then raw rune */
        {"\xff", "\xef\xbf\xbd", 3, true},           /* raw invalid UTF-8 -> U+FFFD as Go */
        {"\\u003c\\u0026\\u003e", "<&>", 3, true},
        {"'", "'", 1, true},
        {"\\t", "\t", 1, true},                      /* raw tab: Go's Unquote takes it */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"nodes\":[{\"name\":\"%s\",\"type\":\"file\",\"content\":[]}]}", ok[i].stored);
        cr_tree *t = NULL;
        int r = cr_tree_parse(json, strlen(json), &t);
        if (r != 0) fail_msg("case %zu: %d (%s) for %s", i, r, cr_error_message(), json);
        assert_int_equal(t->n, 1);
        assert_bytes(t->nodes[0].name, t->nodes[0].name_len, ok[i].raw, ok[i].rawlen);
        assert_int_equal(t->nodes[0].name[t->nodes[0].name_len], 0);
        assert_int_equal(cr_node_name_is_safe(t->nodes[0].name, t->nodes[0].name_len), ok[i].safe);
        /* Re-encoding and parsing again gives the same raw name. */
        _cleanup_buf_ cr_buf out = CR_BUF_INIT;
        assert_int_equal(cr_tree_encode(&out, t->nodes, t->n), 0);
        cr_tree *t2 = NULL;
        assert_int_equal(cr_tree_parse((const char *)out.data, out.len, &t2), 0);
        assert_bytes(t2->nodes[0].name, t2->nodes[0].name_len, ok[i].raw, ok[i].rawlen);
        cr_tree_free(t2);
        cr_tree_free(t);
    }

    static const char *const bad[] = {
        "\\\\q",          /* unknown escape */
        "\\\\",           /* lone backslash */
        "a\\\\",
        "\\\\x4",
        "\\\\x4g",
        "\\\\u12",
        "\\\\ud800",      /* surrogate */
        "\\\\U00110000",  /* beyond U+10FFFF */
        "\\\\400",        /* octal above 0377 */
        "\\\\08",
        "\\\\'",          /* only valid in rune literals */
        "\\\"",           /* a raw quote after JSON decoding */
        "a\\nb",          /* a raw newline */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"nodes\":[{\"name\":\"ok\",\"type\":\"dir\"},{\"name\":\"%s\",\"type\":\"file\"}]}", bad[i]);
        cr_tree *t = (cr_tree *)0x1;
        int r = cr_tree_parse(json, strlen(json), &t);
        if (r != CR_E_FORMAT) fail_msg("case %zu: %d for %s", i, r, json);
        assert_ptr_equal(t, (cr_tree *)0x1); /* untouched on failure */
    }

    /* A long name: 20000 escaped bytes, and one with 100000 raw bytes. */
    cr_buf j = CR_BUF_INIT;
    assert_int_equal(cr_buf_puts(&j, "{\"nodes\":[{\"name\":\""), 0);
    for (int i = 0; i < 20000; i++) assert_int_equal(cr_buf_puts(&j, "\\\\x01"), 0);
    assert_int_equal(cr_buf_puts(&j, "\"},{\"name\":\""), 0);
    for (int i = 0; i < 100000; i++) assert_int_equal(cr_buf_putc(&j, (char)('a' + i % 26)), 0);
    assert_int_equal(cr_buf_puts(&j, "\"}]}"), 0);
    cr_tree *t = NULL;
    assert_int_equal(cr_tree_parse((const char *)j.data, j.len, &t), 0);
    assert_int_equal(t->nodes[0].name_len, 20000);
    assert_int_equal(t->nodes[1].name_len, 100000);
    assert_int_equal((uint8_t)t->nodes[0].name[19999], 1);
    assert_true(cr_node_name_is_safe(t->nodes[1].name, t->nodes[1].name_len));
    cr_tree_free(t);
    cr_buf_free(&j);
}

static void test_tree_members(void **state)
{
    /* Members in odd order and case, times with "+00:00" and trailing zeros:
     * the encoder writes restic's canonical form. */
    const char *in =
        "{\"extra\":1,\"nodes\":[{\"Type\":\"file\",\"name\":\"b\",\"content\":[],\"mtime\":\"2020-01-01T00:00:00.100Z\","
        "\"atime\":\"2020-01-01T05:30:00.100+05:30\",\"ctime\":\"2020-01-01T00:00:00+00:00\",\"UID\":1,\"gid\":2,"
        "\"mode\":420,\"size\":0,\"unknown\":{\"x\":[1]}}],\"more\":null}";
    const char *canon = "{\"nodes\":[{\"name\":\"b\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2020-01-01T00:00:00.1Z\","
                        "\"atime\":\"2020-01-01T05:30:00.1+05:30\",\"ctime\":\"2020-01-01T00:00:00Z\",\"uid\":1,\"gid\":2,"
                        "\"content\":[]}]}\n";
    cr_tree *t = parse_tree_str(in);
    assert_tree_reencodes(t, canon, strlen(canon));
    cr_tree_free(t);

    /* Everything restic 0.14 writes, plus linktarget_raw (0.16+). */
    const char *full =
        "{\"nodes\":[{\"name\":\"dev\",\"type\":\"chardev\",\"mode\":69206454,\"mtime\":\"1969-12-31T23:59:59.999999999Z\","
        "\"atime\":\"0001-01-01T00:00:00Z\",\"ctime\":\"9999-12-31T23:59:59-23:59\",\"uid\":4294967295,\"gid\":0,"
        "\"user\":\"r\\u003co\\u003et\",\"group\":\"g \\u0026 h\",\"inode\":18446744073709551615,\"device_id\":9007199254740993,"
        "\"links\":1,\"extended_attributes\":[{\"name\":\"user.a\",\"value\":\"\"},{\"name\":\"user.b\",\"value\":null},"
        "{\"name\":\"security.c\",\"value\":\"AAE=\"}],\"device\":259,\"content\":null,\"error\":\"partial: \\u2028\"},"
        "{\"name\":\"l\",\"type\":\"symlink\",\"mode\":134218239,\"mtime\":\"2022-02-02T02:02:02Z\",\"atime\":\"2022-02-02T02:02:02Z\","
        "\"ctime\":\"2022-02-02T02:02:02Z\",\"uid\":0,\"gid\":0,\"links\":1,"
        "\"linktarget\":\"\\u0000\\u0001\\u0002\\ufffd\\ufffd\\ufffd\",\"linktarget_raw\":\"AAEC+vv8\",\"content\":null},"
        "{\"name\":\"s\",\"type\":\"dir\",\"mtime\":\"2022-02-02T02:02:02Z\",\"atime\":\"2022-02-02T02:02:02Z\","
        "\"ctime\":\"2022-02-02T02:02:02Z\",\"uid\":0,\"gid\":0,\"content\":null,"
        "\"subtree\":\"ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8\"},"
        "{\"name\":\"w\",\"type\":\"whatever\",\"mtime\":\"2022-02-02T02:02:02Z\",\"atime\":\"2022-02-02T02:02:02Z\","
        "\"ctime\":\"2022-02-02T02:02:02Z\",\"uid\":0,\"gid\":0,\"content\":null}]}\n";
    t = parse_tree_str(full);
    assert_int_equal(t->n, 4);
    const cr_node *n = &t->nodes[0];
    assert_int_equal(n->type, CR_NODE_CHARDEV);
    assert_int_equal(n->uid, 4294967295u);
    assert_int_equal(n->inode, UINT64_MAX);
    assert_int_equal(n->device_id, 9007199254740993ull); /* 2^53 + 1: exact */
    assert_int_equal(n->device, 259);
    assert_string_equal(n->user, "r<o>t");
    assert_string_equal(n->group, "g & h");
    assert_string_equal(n->error, "partial: \xe2\x80\xa8");
    assert_int_equal(n->nxattrs, 3);
    assert_non_null(n->xattrs[0].value);
    assert_int_equal(n->xattrs[0].value_len, 0);
    assert_null(n->xattrs[1].value);
    assert_bytes(n->xattrs[2].value, n->xattrs[2].value_len, "\0\1", 2);
    assert_int_equal(n->mtime.sec, -1);
    assert_int_equal(n->mtime.nsec, 999999999);
    assert_int_equal(n->ctime.offset, -(23 * 3600 + 59 * 60));
    n = &t->nodes[1];
    assert_int_equal(n->type, CR_NODE_SYMLINK);
    assert_bytes(n->linktarget, n->linktarget_len, "\0\1\2\xfa\xfb\xfc", 6); /* linktarget_raw wins */
    n = &t->nodes[2];
    assert_true(n->has_subtree);
    assert_int_equal(n->mode, 0);
    n = &t->nodes[3];
    assert_int_equal(n->type, CR_NODE_UNKNOWN);
    assert_string_equal(n->type_name, "whatever");
    assert_tree_reencodes(t, full, strlen(full));
    cr_tree_free(t);

    /* A node without optional members: zero times are Go's zero time. */
    t = parse_tree_str("{\"nodes\":[{\"name\":\"x\"}]}");
    n = &t->nodes[0];
    assert_int_equal(n->type, CR_NODE_UNKNOWN);
    assert_string_equal(n->type_name, "");
    assert_true(n->content_null);
    assert_null(n->user);
    assert_null(n->linktarget);
    assert_false(n->has_subtree);
    const char *zero = "{\"nodes\":[{\"name\":\"x\",\"type\":\"\",\"mtime\":\"0001-01-01T00:00:00Z\",\"atime\":\"0001-01-01T00:00:00Z\","
                       "\"ctime\":\"0001-01-01T00:00:00Z\",\"uid\":0,\"gid\":0,\"content\":null}]}\n";
    assert_tree_reencodes(t, zero, strlen(zero));
    cr_tree_free(t);

    /* A type with a NUL: classified by the C string it is written back as,
     * so re-encoding cannot change the node's type (found by fuzz_tree). */
    t = parse_tree_str("{\"nodes\":[{\"name\":\"a\",\"type\":\"file\\u0000x\"},{\"name\":\"b\",\"type\":\"\\u0000dir\"}]}");
    assert_int_equal(t->nodes[0].type, CR_NODE_FILE);
    assert_int_equal(t->nodes[1].type, CR_NODE_UNKNOWN);
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_tree_encode(&out, t->nodes, t->n), 0);
    cr_tree *t2 = NULL;
    assert_int_equal(cr_tree_parse((const char *)out.data, out.len, &t2), 0);
    assert_int_equal(t2->nodes[0].type, CR_NODE_FILE);
    assert_int_equal(t2->nodes[1].type, CR_NODE_UNKNOWN);
    cr_tree_free(t2);
    cr_tree_free(t);

    /* Accepted documents without nodes. */
    static const char *const empty[] = {"{}", "{\"nodes\":null}", " {\"nodes\" : [ ] } ", "{\"NODES\":[]}"};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        t = parse_tree_str(empty[i]);
        assert_int_equal(t->n, 0);
        cr_tree_free(t);
    }
}

static void test_tree_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "null",
        "{\"nodes\":{}}",
        "{\"nodes\":\"x\"}",
        "{\"nodes\":[1]}",
        "{\"nodes\":[null]}",
        "{\"nodes\":[[]]}",
        "{\"nodes\":[{}]}",
        "{\"nodes\":[{\"name\":null}]}",
        "{\"nodes\":[{\"name\":5}]}",
        "{\"nodes\":[{\"name\":\"a\",\"type\":5}]}",
        "{\"nodes\":[{\"name\":\"a\",\"mode\":-1}]}",
        "{\"nodes\":[{\"name\":\"a\",\"mode\":4294967296}]}",
        "{\"nodes\":[{\"name\":\"a\",\"mode\":\"420\"}]}",
        "{\"nodes\":[{\"name\":\"a\",\"uid\":1.5}]}",
        "{\"nodes\":[{\"name\":\"a\",\"gid\":-0}]}",
        "{\"nodes\":[{\"name\":\"a\",\"inode\":18446744073709551616}]}",
        "{\"nodes\":[{\"name\":\"a\",\"size\":1e3}]}",
        "{\"nodes\":[{\"name\":\"a\",\"mtime\":\"yesterday\"}]}",
        "{\"nodes\":[{\"name\":\"a\",\"mtime\":5}]}",
        "{\"nodes\":[{\"name\":\"a\",\"atime\":\"2022-02-30T00:00:00Z\"}]}",
        "{\"nodes\":[{\"name\":\"a\",\"ctime\":\"2022-02-02 02:02:02Z\"}]}",
        "{\"nodes\":[{\"name\":\"a\",\"user\":5}]}",
        "{\"nodes\":[{\"name\":\"a\",\"content\":\"x\"}]}",
        "{\"nodes\":[{\"name\":\"a\",\"content\":{}}]}",
        "{\"nodes\":[{\"name\":\"a\",\"content\":[1]}]}",
        "{\"nodes\":[{\"name\":\"a\",\"content\":[\"abc\"]}]}",
        "{\"nodes\":[{\"name\":\"a\",\"content\":[null]}]}",
        "{\"nodes\":[{\"name\":\"a\",\"subtree\":\"zz\"}]}",
        "{\"nodes\":[{\"name\":\"a\",\"subtree\":1}]}",
        "{\"nodes\":[{\"name\":\"a\",\"linktarget\":[]}]}",
        "{\"nodes\":[{\"name\":\"a\",\"linktarget_raw\":\"AA\"}]}",
        "{\"nodes\":[{\"name\":\"a\",\"linktarget_raw\":5}]}",
        "{\"nodes\":[{\"name\":\"a\",\"extended_attributes\":{}}]}",
        "{\"nodes\":[{\"name\":\"a\",\"extended_attributes\":[{}]}]}",
        "{\"nodes\":[{\"name\":\"a\",\"extended_attributes\":[5]}]}",
        "{\"nodes\":[{\"name\":\"a\",\"extended_attributes\":[{\"name\":\"x\",\"value\":\"!\"}]}]}",
        "{\"nodes\":[{\"name\":\"a\",\"extended_attributes\":[{\"name\":\"x\",\"value\":5}]}]}",
        "{\"nodes\":[{\"name\":\"a\",\"error\":false}]}",
        "{\"nodes\":[{\"name\":\"a\"}]} {}",
        "{\"nodes\":[{\"name\":\"a\"},]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_tree *t = NULL;
        int r = cr_tree_parse(bad[i], strlen(bad[i]), &t);
        if (r != CR_E_FORMAT) fail_msg("case %zu: %d for %s", i, r, bad[i]);
        assert_null(t);
    }
    /* Deep nesting inside an unknown member is refused by the JSON reader, not a stack overflow. */
    cr_buf j = CR_BUF_INIT;
    assert_int_equal(cr_buf_puts(&j, "{\"x\":"), 0);
    for (int i = 0; i < 100000; i++) assert_int_equal(cr_buf_putc(&j, '['), 0);
    cr_tree *t = NULL;
    assert_int_equal(cr_tree_parse((const char *)j.data, j.len, &t), CR_E_FORMAT);
    cr_buf_free(&j);
}

/* ---- snapshots ------------------------------------------------------------ */

static void test_snapshot_vectors(void **state)
{
    size_t count = 0;
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *sv;
        cJSON_ArrayForEach(sv, member(repo_vec(repo_names[i]), "snapshots")) {
            const char *json = str_member(sv, "json");
            cJSON *doc = cJSON_Parse(json);
            cr_snapshot s;
            s.id = id_hex(str_member(sv, "id"));
            assert_int_equal(cr_snapshot_parse(json, strlen(json), &s), 0);
            cr_id sid = id_hex(str_member(sv, "id"));
            assert_true(cr_id_eq(&s.id, &sid)); /* the storage ID is kept */
            _cleanup_free_ char *t = time_str(&s.time);
            assert_string_equal(t, str_member(doc, "time"));
            cr_id tree = id_hex(str_member(doc, "tree"));
            assert_true(s.has_tree);
            assert_true(cr_id_eq(&s.tree, &tree));
            assert_string_equal(s.hostname, str_member(doc, "hostname"));
            assert_string_equal(s.username, str_member(doc, "username"));
            const cJSON *arr = member(doc, "paths"), *x;
            assert_int_equal(s.npaths, (size_t)cJSON_GetArraySize(arr));
            assert_false(s.paths_null);
            size_t k = 0;
            cJSON_ArrayForEach(x, arr) assert_string_equal(s.paths[k++], x->valuestring);
            arr = member(doc, "tags");
            assert_int_equal(s.ntags, (size_t)cJSON_GetArraySize(arr));
            k = 0;
            cJSON_ArrayForEach(x, arr) {
                assert_string_equal(s.tags[k++], x->valuestring);
                assert_true(cr_snapshot_has_tag(&s, x->valuestring));
            }
            assert_false(cr_snapshot_has_tag(&s, "no-such-tag"));
            assert_int_equal(s.has_parent, cJSON_HasObjectItem(doc, "parent"));
            if (s.has_parent) {
                cr_id p = id_hex(str_member(doc, "parent"));
                assert_true(cr_id_eq(&s.parent, &p));
            }
            assert_int_equal(s.has_original, cJSON_HasObjectItem(doc, "original"));
            if (s.has_original) {
                cr_id o = id_hex(str_member(doc, "original"));
                assert_true(cr_id_eq(&s.original, &o));
            }
            assert_false(s.has_summary);
            assert_string_equal(s.program_version, "");
            /* restic's exact bytes */
            _cleanup_buf_ cr_buf out = CR_BUF_INIT;
            assert_int_equal(cr_snapshot_encode(&s, &out), 0);
            assert_buf_str(&out, json);
            cr_snapshot_clear(&s);
            assert_null(s.paths);
            assert_true(cr_id_eq(&s.id, &sid));
            cJSON_Delete(doc);
            count++;
        }
    }
    assert_int_equal(count, 5);
}

static void snapshot_round_trip(const char *json)
{
    cr_snapshot s;
    memset(&s, 0, sizeof s);
    int r = cr_snapshot_parse(json, strlen(json), &s);
    if (r) fail_msg("%d (%s) for %s", r, cr_error_message(), json);
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_snapshot_encode(&s, &out), 0);
    assert_buf_str(&out, json);
    cr_snapshot_clear(&s);
}

static void test_snapshot_shapes(void **state)
{
    /* The shape of restic 0.17+ with every member. */
    snapshot_round_trip(
        "{\"time\":\"2024-05-06T07:08:09.123456789+02:00\","
        "\"parent\":\"595d1c1a515677f39ee8044fdc48cff7ccf900f7ad358d8bf477be3d7f338fe0\","
        "\"tree\":\"bde5066e0cbac5110ce19f3fcad0feda9d39eeecdec3be1d5a1333bf7444b9e8\","
        "\"paths\":[\"/home/u/a b\",\"/srv/\\u003cx\\u003e\"],\"hostname\":\"h\\u0026h\",\"username\":\"\\\"u\\\"\","
        "\"uid\":1000,\"gid\":4294967295,\"excludes\":[\"*.tmp\",\"/x/**\"],\"tags\":[\"a\",\"b,c\",\"\"],"
        "\"original\":\"e3fd641bcf1ca207703c6103ef253679014e0c026aeaedce716dd4e22fb41008\","
        "\"program_version\":\"restic 0.17.3\","
        "\"summary\":{\"backup_start\":\"2024-05-06T07:08:00+02:00\",\"backup_end\":\"2024-05-06T07:08:09.5+02:00\","
        "\"files_new\":1,\"files_changed\":2,\"files_unmodified\":3,\"dirs_new\":4,\"dirs_changed\":5,"
        "\"dirs_unmodified\":6,\"data_blobs\":7,\"tree_blobs\":8,\"data_added\":18446744073709551615,"
        "\"data_added_packed\":10,\"total_files_processed\":11,\"total_bytes_processed\":12}}");
    /* Minimal: tree and paths null are written as null. */
    snapshot_round_trip("{\"time\":\"2023-01-01T10:00:00Z\",\"tree\":null,\"paths\":null}");
    snapshot_round_trip("{\"time\":\"2023-01-01T10:00:00Z\",\"tree\":null,\"paths\":[]}");
    snapshot_round_trip("{\"time\":\"0001-01-01T00:00:00Z\",\"tree\":null,\"paths\":[\"\"],\"summary\":"
                        "{\"backup_start\":\"0001-01-01T00:00:00Z\",\"backup_end\":\"0001-01-01T00:00:00Z\","
                        "\"files_new\":0,\"files_changed\":0,\"files_unmodified\":0,\"dirs_new\":0,\"dirs_changed\":0,"
                        "\"dirs_unmodified\":0,\"data_blobs\":0,\"tree_blobs\":0,\"data_added\":0,"
                        "\"data_added_packed\":0,\"total_files_processed\":0,\"total_bytes_processed\":0}}");

    /* Members that are zero/empty are omitted; unknown members ignored; member
     * names matched case-insensitively. */
    const char *in = "{\"TIME\":\"2023-01-01T10:00:00.000Z\",\"tree\":\"bde5066e0cbac5110ce19f3fcad0feda9d39eeecdec3be1d5a1333bf7444b9e8\","
                     "\"paths\":[\"/a\"],\"hostname\":\"\",\"username\":null,\"uid\":0,\"gid\":0,\"excludes\":[],\"tags\":null,"
                     "\"parent\":null,\"original\":null,\"program_version\":\"\",\"summary\":null,\"label\":\"future\","
                     "\"nested\":{\"a\":[1,2,{\"b\":null}]}}";
    const char *canon = "{\"time\":\"2023-01-01T10:00:00Z\",\"tree\":\"bde5066e0cbac5110ce19f3fcad0feda9d39eeecdec3be1d5a1333bf7444b9e8\","
                        "\"paths\":[\"/a\"]}";
    cr_snapshot s;
    memset(&s, 0, sizeof s);
    assert_int_equal(cr_snapshot_parse(in, strlen(in), &s), 0);
    assert_string_equal(s.hostname, "");
    assert_string_equal(s.username, "");
    assert_false(s.has_parent);
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_snapshot_encode(&s, &out), 0);
    assert_buf_str(&out, canon);
    cr_snapshot_clear(&s);
    cr_snapshot_clear(&s); /* twice is fine */
}

static void test_snapshot_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "null",
        "[]",
        "{}",
        "{\"tree\":null,\"paths\":null}",
        "{\"time\":null}",
        "{\"time\":\"2023-01-01\"}",
        "{\"time\":\"2023-01-01T10:00:00\"}",
        "{\"time\":1672567200}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"tree\":\"abc\"}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"tree\":5}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"parent\":\"\"}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"original\":[]}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"paths\":\"/a\"}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"paths\":[1]}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"paths\":[\"/a\",null]}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"tags\":{}}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"tags\":[\"a\",[]]}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"excludes\":[true]}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"hostname\":5}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"username\":[]}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"program_version\":1}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"uid\":-1}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"uid\":4294967296}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"gid\":1.5}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"summary\":[]}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"summary\":{\"backup_start\":\"x\"}}",
        "{\"time\":\"2023-01-01T10:00:00Z\",\"summary\":{\"backup_start\":\"2023-01-01T10:00:00Z\","
        "\"backup_end\":\"2023-01-01T10:00:00Z\",\"files_new\":-1}}",
        "{\"time\":\"2023-01-01T10:00:00Z\"}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_snapshot s;
        memset(&s, 0xa5, sizeof s);
        int r = cr_snapshot_parse(bad[i], strlen(bad[i]), &s);
        if (r != CR_E_FORMAT) fail_msg("case %zu: %d for %s", i, r, bad[i]);
        /* Cleared on failure: nothing leaks, nothing dangles. */
        assert_null(s.paths);
        assert_null(s.tags);
        assert_null(s.hostname);
    }
}

static void make_snapshot(cr_snapshot *s, const char *host, const char *const *tags, size_t ntags,
                          const char *const *paths, size_t npaths)
{
    memset(s, 0, sizeof *s);
    s->hostname = strdup(host);
    s->tags = calloc(ntags + 1, sizeof *s->tags);
    for (size_t i = 0; i < ntags; i++) s->tags[i] = strdup(tags[i]);
    s->ntags = ntags;
    s->paths = calloc(npaths + 1, sizeof *s->paths);
    for (size_t i = 0; i < npaths; i++) s->paths[i] = strdup(paths[i]);
    s->npaths = npaths;
}

static bool match_tags(const cr_snapshot *s, const char *const *lists, size_t n)
{
    cr_snapshot_filter f = {.tag_lists = (const char **)lists, .ntag_lists = n};
    return cr_snapshot_matches(s, &f);
}

static void test_snapshot_filter(void **state)
{
    static const char *const ab[] = {"a", "b"}, *const a[] = {"a"}, *const c[] = {"c"};
    static const char *const paths1[] = {"/home/u", "/etc"}, *const paths2[] = {"/srv"};
    cr_snapshot s_ab, s_a, s_c, s_none;
    make_snapshot(&s_ab, "host1", ab, 2, paths1, 2);
    make_snapshot(&s_a, "host2", a, 1, paths1, 1);
    make_snapshot(&s_c, "host1", c, 1, paths2, 1);
    make_snapshot(&s_none, "", NULL, 0, paths2, 1);

    /* No filter / empty filter: everything. */
    cr_snapshot_filter empty = {0};
    assert_true(cr_snapshot_matches(&s_ab, NULL));
    assert_true(cr_snapshot_matches(&s_none, &empty));

    /* --tag a,b: all of them. */
    static const char *const l_ab[] = {"a,b"};
    assert_true(match_tags(&s_ab, l_ab, 1));
    assert_false(match_tags(&s_a, l_ab, 1));
    assert_false(match_tags(&s_c, l_ab, 1));
    assert_false(match_tags(&s_none, l_ab, 1));
    static const char *const l_ba[] = {"b,a"};
    assert_true(match_tags(&s_ab, l_ba, 1));
    /* --tag a --tag c: either. */
    static const char *const l_a_c[] = {"a", "c"};
    assert_true(match_tags(&s_ab, l_a_c, 2));
    assert_true(match_tags(&s_a, l_a_c, 2));
    assert_true(match_tags(&s_c, l_a_c, 2));
    assert_false(match_tags(&s_none, l_a_c, 2));
    static const char *const l_ab_c[] = {"a,b", "c"};
    assert_true(match_tags(&s_ab, l_ab_c, 2));
    assert_false(match_tags(&s_a, l_ab_c, 2));
    assert_true(match_tags(&s_c, l_ab_c, 2));
    /* --tag "": only snapshots without tags. */
    static const char *const l_empty[] = {""};
    assert_true(match_tags(&s_none, l_empty, 1));
    assert_false(match_tags(&s_a, l_empty, 1));
    assert_false(match_tags(&s_ab, l_empty, 1));
    static const char *const l_empty_c[] = {"", "c"};
    assert_true(match_tags(&s_none, l_empty_c, 2));
    assert_true(match_tags(&s_c, l_empty_c, 2));
    assert_false(match_tags(&s_a, l_empty_c, 2));
    /* restic 0.14 (Snapshot.HasTags): an empty entry in a list matches an
     * untagged snapshot, and is otherwise a tag like any other. */
    static const char *const l_a_comma[] = {"a,"};
    assert_false(match_tags(&s_a, l_a_comma, 1));
    assert_false(match_tags(&s_ab, l_a_comma, 1));
    assert_false(match_tags(&s_none, l_a_comma, 1)); /* "a" is checked first and missing */
    static const char *const l_comma_a[] = {",a"};
    assert_true(match_tags(&s_none, l_comma_a, 1));
    assert_false(match_tags(&s_a, l_comma_a, 1));
    /* restic trims spaces around each tag of a list. */
    static const char *const l_spaced[] = {" a , b "};
    assert_true(match_tags(&s_ab, l_spaced, 1));
    assert_false(match_tags(&s_a, l_spaced, 1));
    /* Tags are case-sensitive and matched whole. */
    static const char *const l_upper[] = {"A"}, *const l_prefix[] = {"a,b,"};
    assert_false(match_tags(&s_a, l_upper, 1));
    assert_false(match_tags(&s_ab, l_prefix, 1));
    /* A long tag works. */
    char longtag[3000];
    memset(longtag, 'x', sizeof longtag - 1);
    longtag[sizeof longtag - 1] = 0;
    cr_snapshot s_long;
    const char *lt[] = {longtag};
    make_snapshot(&s_long, "h", lt, 1, NULL, 0);
    assert_true(match_tags(&s_long, lt, 1));
    assert_false(match_tags(&s_a, lt, 1));

    /* --host: any of them. */
    static const char *const h1[] = {"host1"}, *const h12[] = {"host2", "host1"}, *const h0[] = {""};
    cr_snapshot_filter fh = {.hosts = (const char **)h1, .nhosts = 1};
    assert_true(cr_snapshot_matches(&s_ab, &fh));
    assert_false(cr_snapshot_matches(&s_a, &fh));
    assert_true(cr_snapshot_matches(&s_c, &fh));
    fh.hosts = (const char **)h12;
    fh.nhosts = 2;
    assert_true(cr_snapshot_matches(&s_a, &fh));
    assert_false(cr_snapshot_matches(&s_none, &fh));
    fh.hosts = (const char **)h0;
    fh.nhosts = 1;
    assert_true(cr_snapshot_matches(&s_none, &fh));
    assert_false(cr_snapshot_matches(&s_a, &fh));

    /* --path: all of them must be among the snapshot's paths. */
    static const char *const p1[] = {"/home/u"}, *const p12[] = {"/etc", "/home/u"}, *const p3[] = {"/home"},
                             *const pslash[] = {"/home/u/"};
    cr_snapshot_filter fp = {.paths = (const char **)p1, .npaths = 1};
    assert_true(cr_snapshot_matches(&s_ab, &fp));
    assert_true(cr_snapshot_matches(&s_a, &fp));
    assert_false(cr_snapshot_matches(&s_c, &fp));
    fp.paths = (const char **)p12;
    fp.npaths = 2;
    assert_true(cr_snapshot_matches(&s_ab, &fp));
    assert_false(cr_snapshot_matches(&s_a, &fp));
    fp.paths = (const char **)p3;
    fp.npaths = 1;
    assert_false(cr_snapshot_matches(&s_ab, &fp)); /* no prefix matching */
    fp.paths = (const char **)pslash;
    assert_true(cr_snapshot_matches(&s_ab, &fp)); /* cleaned like filepath.Clean */

    /* Combined: every kind of filter must match. */
    cr_snapshot_filter all = {.hosts = (const char **)h1, .nhosts = 1, .tag_lists = (const char **)l_a_c, .ntag_lists = 2,
                              .paths = (const char **)p1, .npaths = 1};
    assert_true(cr_snapshot_matches(&s_ab, &all));
    assert_false(cr_snapshot_matches(&s_a, &all));  /* host */
    assert_false(cr_snapshot_matches(&s_c, &all));  /* path */

    cr_snapshot_clear(&s_ab);
    cr_snapshot_clear(&s_a);
    cr_snapshot_clear(&s_c);
    cr_snapshot_clear(&s_none);
    cr_snapshot_clear(&s_long);
}

/* ---- locks ------------------------------------------------------------------ */

static void test_lock_sample(void **state)
{
    const cJSON *sv = NULL, *x;
    cJSON_ArrayForEach(x, member(vectors, "samples")) sv = x;
    assert_non_null(sv);
    char path[256];
    snprintf(path, sizeof path, "fixtures/samples/%s", sv->string);
    size_t n;
    _cleanup_free_ char *file = read_file(path, &n);
    /* The name is the SHA-256 of the file. */
    cr_id want = id_hex(strchr(sv->string, '-') + 1), got;
    cr_sha256(file, n, got.b);
    assert_true(cr_id_eq(&want, &got));
    /* Encrypted with v2's master key, 0x02 || zstd inside. */
    cr_key mk;
    const cJSON *m = member(repo_vec("v2"), "master_key");
    assert_int_equal(cr_hex_decode(str_member(m, "encrypt"), 64, mk.enc, 32), 0);
    assert_int_equal(cr_hex_decode(str_member(m, "mac_k"), 32, mk.mac_k, 16), 0);
    assert_int_equal(cr_hex_decode(str_member(m, "mac_r"), 32, mk.mac_r, 16), 0);
    _cleanup_free_ uint8_t *plain = malloc(n);
    assert_int_equal(cr_open(&mk, (const uint8_t *)file, n, plain), 0);
    size_t pn;
    _cleanup_free_ uint8_t *want_plain = hex_alloc(str_member(sv, "decrypted_hex"), &pn);
    assert_int_equal(pn, n - CR_CRYPTO_OVERHEAD);
    assert_memory_equal(plain, want_plain, pn);
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    assert_int_equal(cr_unpacked_decode(2, plain, pn, &json), 0);
    const char *wj = str_member(sv, "json");
    assert_buf_str(&json, wj);

    cr_lock_info l;
    assert_int_equal(cr_lock_parse((const char *)json.data, json.len, &l), 0);
    assert_false(l.exclusive);
    assert_string_equal(l.hostname, "vm");
    assert_string_equal(l.username, "root");
    assert_int_equal(l.pid, 29071);
    assert_int_equal(l.uid, 0);
    assert_int_equal(l.gid, 0);
    _cleanup_free_ char *t = time_str(&l.time);
    assert_string_equal(t, "2026-11-24T12:34:58.857152875Z");
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_lock_encode(&l, &out), 0);
    assert_buf_str(&out, wj);
    cr_lock_clear(&l);
    assert_null(l.hostname);
}

static void lock_round_trip(const char *json)
{
    cr_lock_info l;
    int r = cr_lock_parse(json, strlen(json), &l);
    if (r) fail_msg("%d (%s) for %s", r, cr_error_message(), json);
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_lock_encode(&l, &out), 0);
    assert_buf_str(&out, json);
    cr_lock_clear(&l);
}

static void test_lock_parse(void **state)
{
    lock_round_trip("{\"time\":\"2023-01-02T03:04:05.5+05:30\",\"exclusive\":true,\"hostname\":\"h\\u003c1\\u003e\","
                    "\"username\":\"\xc3\xbc\",\"pid\":4194304,\"uid\":1000,\"gid\":100}");
    lock_round_trip("{\"time\":\"2023-01-02T03:04:05Z\",\"exclusive\":false,\"hostname\":\"\",\"username\":\"\",\"pid\":0}");
    lock_round_trip("{\"time\":\"2023-01-02T03:04:05Z\",\"exclusive\":false,\"hostname\":\"x\",\"username\":\"y\","
                    "\"pid\":-9223372036854775808,\"gid\":4294967295}");

    /* Missing optional members; case-insensitive names. */
    const char *in = "{\"Time\":\"2023-01-02T03:04:05Z\",\"EXCLUSIVE\":true,\"pid\":null,\"extra\":[]}";
    cr_lock_info l;
    assert_int_equal(cr_lock_parse(in, strlen(in), &l), 0);
    assert_true(l.exclusive);
    assert_string_equal(l.hostname, "");
    assert_string_equal(l.username, "");
    assert_int_equal(l.pid, 0);
    cr_lock_clear(&l);

    static const char *const bad[] = {
        "",
        "[]",
        "null",
        "{}",
        "{\"exclusive\":true}",
        "{\"time\":\"now\"}",
        "{\"time\":123}",
        "{\"time\":\"2023-01-02T03:04:05Z\",\"pid\":\"1\"}",
        "{\"time\":\"2023-01-02T03:04:05Z\",\"pid\":1.5}",
        "{\"time\":\"2023-01-02T03:04:05Z\",\"pid\":9223372036854775808}",
        "{\"time\":\"2023-01-02T03:04:05Z\",\"uid\":-1}",
        "{\"time\":\"2023-01-02T03:04:05Z\",\"gid\":4294967296}",
        "{\"time\":\"2023-01-02T03:04:05Z\"} 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&l, 0xa5, sizeof l);
        int r = cr_lock_parse(bad[i], strlen(bad[i]), &l);
        if (r != CR_E_FORMAT) fail_msg("case %zu: %d for %s", i, r, bad[i]);
        assert_null(l.hostname);
        assert_null(l.username);
    }
}

static pid_t dead_pid(void)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) _exit(0);
    int st;
    assert_int_equal(waitpid(p, &st, 0), p);
    return p; /* reaped: no such process (until the PID is reused) */
}

static void test_lock_stale(void **state)
{
    cr_lock_info l;
    memset(&l, 0, sizeof l);
    l.hostname = strdup("this-host");
    l.username = strdup("me");
    l.time = cr_time_now();
    l.pid = getpid();

    /* Fresh, our own live process. */
    assert_false(cr_lock_is_stale(&l, "this-host"));
    assert_false(cr_lock_is_stale(&l, NULL));
    /* Old: stale wherever it comes from. */
    cr_lock_info old = l;
    old.time.sec -= 31 * 60;
    assert_true(cr_lock_is_stale(&old, "other-host"));
    assert_true(cr_lock_is_stale(&old, NULL));
    old.time.sec = l.time.sec - 29 * 60;
    assert_false(cr_lock_is_stale(&old, "other-host"));
    /* A time far in the past (year 1) or the future. */
    old.time.sec = -62135596800LL;
    assert_true(cr_lock_is_stale(&old, "x"));
    old.time.sec = l.time.sec + 3600;
    assert_false(cr_lock_is_stale(&old, "x"));

    /* This host, dead PID: stale.  Another host: cannot tell, not stale. */
    cr_lock_info dead = l;
    dead.pid = dead_pid();
    assert_true(cr_lock_is_stale(&dead, "this-host"));
    assert_false(cr_lock_is_stale(&dead, "other-host"));
    assert_false(cr_lock_is_stale(&dead, NULL));
    /* The parent process (alive) and PID 1 (alive, maybe not ours to signal). */
    cr_lock_info live = l;
    live.pid = getppid();
    assert_false(cr_lock_is_stale(&live, "this-host"));
    live.pid = 1;
    assert_false(cr_lock_is_stale(&live, "this-host"));
    /* PIDs no process can have on this host: outside pid_t, or not
     * positive.  Truncating 2^32 + our PID to pid_t would find ourselves. */
    live.pid = ((int64_t)1 << 32) + getpid();
    assert_true(cr_lock_is_stale(&live, "this-host"));
    live.pid = INT64_MAX;
    assert_true(cr_lock_is_stale(&live, "this-host"));
    live.pid = 0;
    assert_true(cr_lock_is_stale(&live, "this-host"));
    live.pid = -1;
    assert_true(cr_lock_is_stale(&live, "this-host"));
    assert_false(cr_lock_is_stale(&live, "other-host"));
    cr_lock_clear(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_vectors),
        cmocka_unit_test(test_tree_listing),
        cmocka_unit_test(test_tree_fixture_details),
        cmocka_unit_test(test_node_name_is_safe),
        cmocka_unit_test(test_tree_names),
        cmocka_unit_test(test_tree_members),
        cmocka_unit_test(test_tree_errors),
        cmocka_unit_test(test_snapshot_vectors),
        cmocka_unit_test(test_snapshot_shapes),
        cmocka_unit_test(test_snapshot_errors),
        cmocka_unit_test(test_snapshot_filter),
        cmocka_unit_test(test_lock_sample),
        cmocka_unit_test(test_lock_parse),
        cmocka_unit_test(test_lock_stale),
    };
    return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
