/* Unit tests for the whole read path over real repositories: open (keys,
 * config), pack headers from pack files, every blob, unpacked files, tree
 * walks with file contents checked against vectors.json, damage detection
 * on a copy, and restic's own upstream test repositories (password geheim),
 * including the ones with missing data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "backends/backend.h"
#include "crypto/crypto.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/repo.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/goquote.h"
#include "util/gotime.h"
#include "util/id.h"

static cJSON *vectors;
static char tmpdir[64];
static const char *const repo_names[] = {"v1", "v2", "v2-two-snapshots", "v2-pruned"};
#define NREPOS (sizeof repo_names / sizeof repo_names[0])
#define PW "fixture-password"

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

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int setup(void **state)
{
    char *text = read_file("fixtures/vectors.json", NULL);
    vectors = cJSON_Parse(text);
    free(text);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/crestic-repotest-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    return vectors ? 0 : -1;
}

/* Opening costs a full-strength scrypt (about a second here): the fixture
 * repositories are opened once and shared by the read-only tests. */
static cr_repo *shared[NREPOS];

static int teardown(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) cr_repo_close(shared[i]);
    cJSON_Delete(vectors);
    if (tmpdir[0]) run("rm -rf '%s'", tmpdir);
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

static cr_id id_hex(const char *hex)
{
    cr_id id;
    assert_int_equal(cr_id_from_hex(&id, hex, strlen(hex)), 0);
    return id;
}

static cr_blob_type blob_type_of(const char *s)
{
    return strcmp(s, "tree") == 0 ? CR_BLOB_TREE : CR_BLOB_DATA;
}

static int try_open(const char *path, const char *pw, const char *hint, cr_repo **out)
{
    cr_backend *be = NULL;
    int r = cr_backend_open(path, &be);
    if (r < 0) return r;
    return cr_repo_open(be, pw, strlen(pw), hint, out);
}

static cr_repo *open_fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "fixtures/repos/%s", name);
    cr_repo *r = NULL;
    int e = try_open(path, PW, NULL, &r);
    if (e) fail_msg("open %s: %d %s", path, e, cr_error_message());
    return r;
}

static cr_repo *get_repo(size_t i)
{
    if (!shared[i]) shared[i] = open_fixture(repo_names[i]);
    return shared[i];
}

static size_t repo_index(const char *name)
{
    for (size_t i = 0; i < NREPOS; i++)
        if (!strcmp(repo_names[i], name)) return i;
    fail_msg("unknown repo %s", name);
    return 0;
}

/* ---- opening ---------------------------------------------------------------- */

static void test_open_fixtures(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *rv = repo_vec(repo_names[i]), *cv = member(rv, "config");
        cr_repo *r = get_repo(i);
        assert_int_equal(r->cfg.version, (unsigned)num_member(cv, "version"));
        cr_id rid = id_hex(str_member(cv, "id"));
        assert_true(cr_id_eq(&r->cfg.id, &rid));
        assert_int_equal(r->cfg.chunker_pol, strtoull(str_member(cv, "chunker_polynomial"), NULL, 16));
        /* The master key and the key file that opened it. */
        const cJSON *mk = member(rv, "master_key");
        cr_key want;
        assert_int_equal(cr_hex_decode(str_member(mk, "encrypt"), 64, want.enc, 32), 0);
        assert_int_equal(cr_hex_decode(str_member(mk, "mac_k"), 32, want.mac_k, 16), 0);
        assert_int_equal(cr_hex_decode(str_member(mk, "mac_r"), 32, want.mac_r, 16), 0);
        assert_memory_equal(&r->master, &want, sizeof want);
        bool known = false;
        const cJSON *k;
        cJSON_ArrayForEach(k, member(rv, "keys")) {
            cr_id kid = id_hex(str_member(k, "id"));
            if (cr_id_eq(&kid, &r->key_id)) {
                known = true;
                assert_string_equal(str_member(k, "opens_with"), PW);
            }
        }
        assert_true(known);
    }
    cr_repo_close(NULL);
}

static void test_open_errors(void **state)
{
    cr_repo *r = NULL;
    /* Wrong password: every key tried, none opens. */
    assert_int_equal(try_open("fixtures/repos/v1", "not-the-password", NULL, &r), CR_E_PASSWORD);
    assert_null(r);
    /* No repository there. */
    char path[256];
    snprintf(path, sizeof path, "%s/nothing-here", tmpdir);
    int e = try_open(path, PW, NULL, &r);
    assert_true(e == CR_E_NOREPO || e == -ENOENT);
    assert_int_equal(try_open("fixtures", PW, NULL, &r), CR_E_NOREPO);

    /* The second key of v2, with and without a hint. */
    const cJSON *keys = member(repo_vec("v2"), "keys");
    const cJSON *second = NULL, *k;
    cJSON_ArrayForEach(k, keys) if (strcmp(str_member(k, "opens_with"), PW)) second = k;
    assert_non_null(second);
    const char *pw2 = str_member(second, "opens_with");
    cr_id kid = id_hex(str_member(second, "id"));
    char hint[9];
    cr_id_short(&kid, hint);
    assert_int_equal(try_open("fixtures/repos/v2", pw2, hint, &r), 0);
    assert_true(cr_id_eq(&r->key_id, &kid));
    cr_repo_close(r);
    /* A hint naming the other key still finds the right one. */
    assert_int_equal(try_open("fixtures/repos/v2", PW, hint, &r), 0);
    assert_false(cr_id_eq(&r->key_id, &kid));
    cr_repo_close(r);
    /* A hint that matches nothing is ignored. */
    assert_int_equal(try_open("fixtures/repos/v2", pw2, "ffffffffffff", &r), 0);
    assert_true(cr_id_eq(&r->key_id, &kid));
    cr_repo_close(r);
}

static void test_find_and_list(void **state)
{
    cr_repo *r = get_repo(repo_index("v2-two-snapshots"));
    const cJSON *rv = repo_vec("v2-two-snapshots");
    /* Packs with their sizes. */
    cr_id *ids = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0;
    assert_int_equal(cr_repo_list_ids(r, CR_FILE_PACK, &ids, &sizes, &n), 0);
    assert_int_equal(n, (size_t)cJSON_GetArraySize(member(rv, "packs")));
    const cJSON *p;
    cJSON_ArrayForEach(p, member(rv, "packs")) {
        cr_id pid = id_hex(str_member(p, "id"));
        bool found = false;
        for (size_t i = 0; i < n; i++)
            if (cr_id_eq(&ids[i], &pid)) {
                found = true;
                assert_int_equal(sizes[i], (uint64_t)num_member(p, "size"));
            }
        assert_true(found);
    }
    free(ids);
    free(sizes);
    /* Locks: whatever is there (other tests may hold one right now) lists. */
    assert_int_equal(cr_repo_list_ids(r, CR_FILE_LOCK, &ids, NULL, &n), 0);
    free(ids);

    /* Prefix resolution. */
    const char *sid = str_member(cJSON_GetArrayItem(member(rv, "snapshots"), 0), "id");
    cr_id want = id_hex(sid), got;
    char prefix[9];
    memcpy(prefix, sid, 8);
    prefix[8] = 0;
    assert_int_equal(cr_repo_find_id(r, CR_FILE_SNAPSHOT, prefix, &got), 0);
    assert_true(cr_id_eq(&got, &want));
    assert_int_equal(cr_repo_find_id(r, CR_FILE_SNAPSHOT, sid, &got), 0);
    assert_true(cr_id_eq(&got, &want));
    assert_int_equal(cr_repo_find_id(r, CR_FILE_SNAPSHOT, "", &got), CR_E_AMBIGUOUS);
    assert_int_equal(cr_repo_find_id(r, CR_FILE_SNAPSHOT, "zz", &got), CR_E_NOTFOUND);
    assert_int_equal(cr_repo_find_id(r, CR_FILE_INDEX, prefix, &got), CR_E_NOTFOUND);
}

/* ---- packs and blobs --------------------------------------------------------- */

static void test_pack_headers(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        cr_repo *r = get_repo(i);
        const cJSON *p;
        cJSON_ArrayForEach(p, member(repo_vec(repo_names[i]), "packs")) {
            cr_id pid = id_hex(str_member(p, "id"));
            uint64_t size = (uint64_t)num_member(p, "size");
            cr_pack_blob *blobs = NULL;
            size_t count = 0;
            int e = cr_repo_pack_header(r, &pid, size, &blobs, &count);
            if (e) fail_msg("%s: %d %s", str_member(p, "id"), e, cr_error_message());
            const cJSON *entries = member(p, "entries");
            assert_int_equal(count, (size_t)cJSON_GetArraySize(entries));
            for (size_t k = 0; k < count; k++) {
                const cJSON *en = cJSON_GetArrayItem(entries, (int)k);
                cr_id bid = id_hex(str_member(en, "id"));
                assert_true(cr_id_eq(&blobs[k].id, &bid));
                assert_int_equal(blobs[k].offset, (uint32_t)num_member(en, "offset"));
                assert_int_equal(blobs[k].length, (uint32_t)num_member(en, "length"));
                assert_int_equal(blobs[k].type, blob_type_of(str_member(en, "type")));
                const cJSON *ul = member(en, "uncompressed_length");
                assert_int_equal(blobs[k].ulen, cJSON_IsNumber(ul) ? (uint32_t)ul->valuedouble : 0);
            }
            free(blobs);
            /* A wrong size moves the header: the MAC or the length check fails. */
            blobs = NULL;
            e = cr_repo_pack_header(r, &pid, size - 1, &blobs, &count);
            assert_true(e == CR_E_AUTH || e == CR_E_FORMAT);
            e = cr_repo_pack_header(r, &pid, 20, &blobs, &count);
            assert_int_equal(e, CR_E_FORMAT);
            assert_null(blobs);
        }
    }
}

static void check_tree_blob(const cr_buf *plain)
{
    cr_tree *t = NULL;
    int e = cr_tree_parse((const char *)plain->data, plain->len, &t);
    if (e) fail_msg("tree: %d %s", e, cr_error_message());
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_tree_encode(&out, t->nodes, t->n), 0);
    assert_int_equal(out.len, plain->len);
    assert_memory_equal(out.data, plain->data, out.len);
    cr_tree_free(t);
}

/* Every indexed blob loads, with the right length; trees re-encode exactly. */
static void test_load_all_blobs(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        cr_repo *r = get_repo(i);
        assert_int_equal(cr_repo_load_index(r), 0);
        assert_int_equal(cr_repo_load_index(r), 0); /* second call: no-op */
        _cleanup_buf_ cr_buf out = CR_BUF_INIT;
        size_t trees = 0;
        for (size_t k = 0; k < r->index->nblobs; k++) {
            const cr_index_entry *e = &r->index->blobs[k];
            int err = cr_repo_load_blob(r, (cr_blob_type)e->type, &e->id, &out);
            if (err) fail_msg("%s blob %zu: %d %s", repo_names[i], k, err, cr_error_message());
            assert_int_equal(out.len, cr_index_entry_plain_len(e));
            if (e->type == CR_BLOB_TREE) {
                check_tree_blob(&out);
                trees++;
            }
        }
        assert_int_equal(trees, (size_t)cJSON_GetArraySize(member(repo_vec(repo_names[i]), "trees")));
        /* Unknown blob, and a known blob asked for with the other type. */
        cr_id zero;
        memset(&zero, 0, sizeof zero);
        assert_int_equal(cr_repo_load_blob(r, CR_BLOB_DATA, &zero, &out), CR_E_NOTFOUND);
        const cr_index_entry *e0 = &r->index->blobs[0];
        assert_int_equal(cr_repo_load_blob(r, e0->type == CR_BLOB_DATA ? CR_BLOB_TREE : CR_BLOB_DATA, &e0->id, &out),
                         CR_E_NOTFOUND);
    }
}

/* Reassemble every file from its chunks: the SHA-256 of the result is known. */
static void test_files_from_chunks(void **state)
{
    size_t files = 0;
    for (size_t i = 0; i < NREPOS; i++) {
        cr_repo *r = get_repo(i);
        const cJSON *f, *content, *chunk;
        _cleanup_buf_ cr_buf blob = CR_BUF_INIT;
        cr_sha256_ctx *ctx = NULL;
        assert_int_equal(cr_sha256_new(&ctx), 0);
        cJSON_ArrayForEach(f, member(repo_vec(repo_names[i]), "files")) {
            cJSON_ArrayForEach(content, f) {
                uint64_t size = 0;
                cJSON_ArrayForEach(chunk, member(content, "chunks")) {
                    cr_id id = id_hex(str_member(chunk, "id"));
                    assert_int_equal(cr_repo_load_blob(r, CR_BLOB_DATA, &id, &blob), 0);
                    assert_int_equal(blob.len, (size_t)num_member(chunk, "length"));
                    assert_int_equal(size, (uint64_t)num_member(chunk, "offset"));
                    cr_sha256_update(ctx, blob.data, blob.len);
                    size += blob.len;
                }
                assert_int_equal(size, (uint64_t)num_member(content, "size"));
                cr_id got, want = id_hex(str_member(content, "sha256"));
                cr_sha256_final(ctx, got.b);
                assert_true(cr_id_eq(&got, &want));
                files++;
            }
        }
        cr_sha256_free(ctx);
    }
    assert_true(files >= 48);
}

/* ---- unpacked files and snapshots ------------------------------------------- */

static void test_unpacked_and_snapshots(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *rv = repo_vec(repo_names[i]);
        cr_repo *r = get_repo(i);
        _cleanup_buf_ cr_buf json = CR_BUF_INIT;
        const cJSON *f;
        cJSON_ArrayForEach(f, member(rv, "index_files")) {
            cr_id id = id_hex(str_member(f, "id"));
            assert_int_equal(cr_repo_load_unpacked(r, CR_FILE_INDEX, &id, &json), 0);
            const char *want = str_member(f, "json");
            assert_int_equal(json.len, strlen(want));
            assert_memory_equal(json.data, want, json.len);
        }
        cJSON_ArrayForEach(f, member(rv, "snapshots")) {
            cr_id id = id_hex(str_member(f, "id"));
            assert_int_equal(cr_repo_load_unpacked(r, CR_FILE_SNAPSHOT, &id, &json), 0);
            const char *want = str_member(f, "json");
            assert_int_equal(json.len, strlen(want));
            assert_memory_equal(json.data, want, json.len);
            cr_snapshot s;
            assert_int_equal(cr_repo_load_snapshot(r, &id, &s), 0);
            assert_true(cr_id_eq(&s.id, &id));
            _cleanup_buf_ cr_buf enc = CR_BUF_INIT;
            assert_int_equal(cr_snapshot_encode(&s, &enc), 0);
            assert_int_equal(enc.len, strlen(want));
            assert_memory_equal(enc.data, want, enc.len);
            cr_snapshot_clear(&s);
        }
        /* A file that does not exist. */
        cr_id zero;
        memset(&zero, 0, sizeof zero);
        assert_int_equal(cr_repo_load_unpacked(r, CR_FILE_SNAPSHOT, &zero, &json), -ENOENT);

        cr_snapshot *all = NULL;
        size_t n = 0;
        assert_int_equal(cr_repo_load_snapshots(r, &all, &n), 0);
        assert_int_equal(n, (size_t)cJSON_GetArraySize(member(rv, "snapshots")));
        for (size_t k = 1; k < n; k++) assert_true(cr_time_cmp(&all[k - 1].time, &all[k].time) <= 0);
        cr_snapshots_free(all, n);
    }

    /* Finding snapshots in the repository with two. */
    cr_repo *r = get_repo(repo_index("v2-two-snapshots"));
    const cJSON *snaps = member(repo_vec("v2-two-snapshots"), "snapshots");
    cr_id first = id_hex(str_member(cJSON_GetArrayItem(snaps, 0), "id"));
    cr_id second = id_hex(str_member(cJSON_GetArrayItem(snaps, 1), "id"));
    cr_snapshot s;
    assert_int_equal(cr_repo_find_snapshot(r, "latest", NULL, &s), 0);
    assert_true(cr_id_eq(&s.id, &second));
    assert_true(s.has_parent);
    cr_snapshot_clear(&s);
    static const char *const tag_first[] = {"first"}, *const tag_both[] = {"fixture"}, *const tag_none[] = {"nope"},
                             *const tag_and[] = {"base,fixture"};
    cr_snapshot_filter f = {.tag_lists = (const char **)tag_first, .ntag_lists = 1};
    assert_int_equal(cr_repo_find_snapshot(r, "latest", &f, &s), 0);
    assert_true(cr_id_eq(&s.id, &first));
    cr_snapshot_clear(&s);
    f.tag_lists = (const char **)tag_both;
    assert_int_equal(cr_repo_find_snapshot(r, "latest", &f, &s), 0);
    assert_true(cr_id_eq(&s.id, &second));
    cr_snapshot_clear(&s);
    f.tag_lists = (const char **)tag_and;
    assert_int_equal(cr_repo_find_snapshot(r, "latest", &f, &s), 0);
    assert_true(cr_id_eq(&s.id, &first));
    cr_snapshot_clear(&s);
    f.tag_lists = (const char **)tag_none;
    assert_int_equal(cr_repo_find_snapshot(r, "latest", &f, &s), CR_E_NOTFOUND);
    static const char *const host[] = {"fixture-host"}, *const other[] = {"elsewhere"};
    cr_snapshot_filter fh = {.hosts = (const char **)host, .nhosts = 1};
    assert_int_equal(cr_repo_find_snapshot(r, "latest", &fh, &s), 0);
    cr_snapshot_clear(&s);
    fh.hosts = (const char **)other;
    assert_int_equal(cr_repo_find_snapshot(r, "latest", &fh, &s), CR_E_NOTFOUND);
    char prefix[9];
    cr_id_short(&first, prefix);
    assert_int_equal(cr_repo_find_snapshot(r, prefix, NULL, &s), 0);
    assert_true(cr_id_eq(&s.id, &first));
    cr_snapshot_clear(&s);
    assert_int_equal(cr_repo_find_snapshot(r, "00000000", NULL, &s), CR_E_NOTFOUND);
}

/* ---- tree walks ------------------------------------------------------------- */

typedef struct {
    cr_repo *repo;
    cr_id *seen;
    size_t nseen, cap;
    size_t trees, files, blobs, reencoded_differently;
    int errors[8];      /* distinct error codes met */
    size_t nerrors, error_count;
    bool check_reencode; /* fail if a tree does not re-encode byte-identically */
    const cJSON *listing;
} walk_ctx;

static void note_error(walk_ctx *w, int e)
{
    w->error_count++;
    for (size_t i = 0; i < w->nerrors; i++)
        if (w->errors[i] == e) return;
    if (w->nerrors < 8) w->errors[w->nerrors++] = e;
}

static bool seen_before(walk_ctx *w, const cr_id *id)
{
    for (size_t i = 0; i < w->nseen; i++)
        if (cr_id_eq(&w->seen[i], id)) return true;
    if (w->nseen == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->seen = realloc(w->seen, w->cap * sizeof *w->seen);
        assert_non_null(w->seen);
    }
    w->seen[w->nseen++] = *id;
    return false;
}

static const cJSON *listing_entry(const cJSON *listing, const char *path)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, listing) if (!strcmp(str_member(e, "path"), path)) return e;
    return NULL;
}

/* Listing paths show bytes that are not UTF-8 as \xHH. */
static void append_listing_name(char *path, size_t cap, const char *name, size_t n)
{
    size_t k = strlen(path);
    if (k) path[k++] = '/';
    for (size_t i = 0; i < n && k + 5 < cap; i++) {
        uint32_t rune;
        int l = cr_utf8_decode((const uint8_t *)name + i, n - i, &rune);
        if (l <= 0) {
            k += (size_t)snprintf(path + k, cap - k, "\\x%02x", (uint8_t)name[i]);
        } else {
            memcpy(path + k, name + i, (size_t)l);
            k += (size_t)l;
            i += (size_t)l - 1;
        }
    }
    path[k] = 0;
}

static void walk_tree(walk_ctx *w, const cr_id *id, const char *prefix)
{
    _cleanup_buf_ cr_buf plain = CR_BUF_INIT;
    int e = cr_repo_load_blob(w->repo, CR_BLOB_TREE, id, &plain);
    if (e < 0) {
        note_error(w, e);
        return;
    }
    w->trees++;
    cr_tree *t = NULL;
    e = cr_tree_parse((const char *)plain.data, plain.len, &t);
    if (e) fail_msg("tree does not parse: %d %s", e, cr_error_message());
    /* Re-encoding: byte-identical for restic 0.14's trees; for older
     * writers at least stable (encode(parse(encode(x))) == encode(x)). */
    _cleanup_buf_ cr_buf enc = CR_BUF_INIT, enc2 = CR_BUF_INIT;
    assert_int_equal(cr_tree_encode(&enc, t->nodes, t->n), 0);
    if (enc.len != plain.len || memcmp(enc.data, plain.data, enc.len)) {
        if (w->check_reencode) fail_msg("tree re-encodes differently:\n%.*s\n%.*s", (int)plain.len, plain.data, (int)enc.len, enc.data);
        w->reencoded_differently++;
    }
    cr_tree *t2 = NULL;
    assert_int_equal(cr_tree_parse((const char *)enc.data, enc.len, &t2), 0);
    assert_int_equal(cr_tree_encode(&enc2, t2->nodes, t2->n), 0);
    assert_int_equal(enc2.len, enc.len);
    assert_memory_equal(enc2.data, enc.data, enc.len);
    cr_tree_free(t2);

    _cleanup_buf_ cr_buf blob = CR_BUF_INIT;
    for (size_t i = 0; i < t->n; i++) {
        const cr_node *n = &t->nodes[i];
        char path[4096];
        snprintf(path, sizeof path, "%s", prefix);
        append_listing_name(path, sizeof path, n->name, n->name_len);
        const cJSON *le = w->listing ? listing_entry(w->listing, path) : NULL;
        if (w->listing && !le) fail_msg("%s not in the listing", path);
        if (n->type == CR_NODE_FILE) {
            w->files++;
            cr_sha256_ctx *ctx = NULL;
            assert_int_equal(cr_sha256_new(&ctx), 0);
            uint64_t size = 0;
            bool complete = true;
            for (size_t k = 0; k < n->ncontent; k++) {
                e = cr_repo_load_blob(w->repo, CR_BLOB_DATA, &n->content[k], &blob);
                if (e < 0) {
                    note_error(w, e);
                    complete = false;
                    continue;
                }
                w->blobs++;
                cr_sha256_update(ctx, blob.data, blob.len);
                size += blob.len;
            }
            cr_id sum;
            cr_sha256_final(ctx, sum.b);
            cr_sha256_free(ctx);
            if (complete) assert_int_equal(size, n->size);
            if (le && complete) {
                cr_id want = id_hex(str_member(le, "sha256"));
                assert_true(cr_id_eq(&sum, &want));
            }
        }
        if (n->type == CR_NODE_DIR) {
            assert_true(n->has_subtree);
            if (!seen_before(w, &n->subtree)) walk_tree(w, &n->subtree, path);
        }
    }
    cr_tree_free(t);
}

static void test_walk_fixtures(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        cr_repo *r = get_repo(i);
        const cJSON *sv;
        cJSON_ArrayForEach(sv, member(repo_vec(repo_names[i]), "snapshots")) {
            walk_ctx w = {.repo = r, .check_reencode = true, .listing = member(sv, "listing")};
            cr_snapshot s;
            cr_id sid = id_hex(str_member(sv, "id"));
            assert_int_equal(cr_repo_load_snapshot(r, &sid, &s), 0);
            walk_tree(&w, &s.tree, "");
            cr_snapshot_clear(&s);
            assert_int_equal(w.error_count, 0);
            assert_true(w.files >= 12);
            free(w.seen);
        }
    }
}

/* ---- damage ------------------------------------------------------------------ */

static void flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, off, off < 0 ? SEEK_END : SEEK_SET), 0);
    int c = fgetc(f);
    assert_true(c != EOF);
    assert_int_equal(fseek(f, -1, SEEK_CUR), 0);
    fputc(c ^ 0x20, f);
    fclose(f);
}

static void pack_path(char *out, size_t cap, const char *repo, const char *hex)
{
    snprintf(out, cap, "%s/data/%.2s/%s", repo, hex, hex);
}

static void test_damaged_copy(void **state)
{
    char repo[256];
    snprintf(repo, sizeof repo, "%s/damaged", tmpdir);
    assert_int_equal(run("cp -a fixtures/repos/v2-two-snapshots '%s' && chmod -R u+w '%s'", repo, repo), 0);
    const cJSON *rv = repo_vec("v2-two-snapshots");
    /* The largest data pack: flip one byte inside its second blob. */
    const cJSON *pack = NULL, *p;
    cJSON_ArrayForEach(p, member(rv, "packs")) if (!pack || num_member(p, "size") > num_member(pack, "size")) pack = p;
    const cJSON *victim = cJSON_GetArrayItem(member(pack, "entries"), 1);
    const cJSON *intact = cJSON_GetArrayItem(member(pack, "entries"), 0);
    char path[512];
    pack_path(path, sizeof path, repo, str_member(pack, "id"));
    flip_byte(path, (long)num_member(victim, "offset") + (long)num_member(victim, "length") / 2);

    cr_repo *r = NULL;
    int e = try_open(repo, PW, NULL, &r);
    assert_int_equal(e, 0);
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    cr_id vid = id_hex(str_member(victim, "id")), iid = id_hex(str_member(intact, "id"));
    assert_int_equal(cr_repo_load_blob(r, CR_BLOB_DATA, &vid, &out), CR_E_AUTH);
    assert_int_equal(cr_repo_load_blob(r, CR_BLOB_DATA, &iid, &out), 0);
    /* Also the first and last byte of the blob (IV and MAC). */
    flip_byte(path, (long)num_member(victim, "offset") + (long)num_member(victim, "length") / 2);
    assert_int_equal(cr_repo_load_blob(r, CR_BLOB_DATA, &vid, &out), 0);
    flip_byte(path, (long)num_member(victim, "offset"));
    assert_int_equal(cr_repo_load_blob(r, CR_BLOB_DATA, &vid, &out), CR_E_AUTH);
    flip_byte(path, (long)num_member(victim, "offset"));
    flip_byte(path, (long)num_member(victim, "offset") + (long)num_member(victim, "length") - 1);
    assert_int_equal(cr_repo_load_blob(r, CR_BLOB_DATA, &vid, &out), CR_E_AUTH);

    /* A second location that is intact rescues the blob: add the index entry
     * of an undamaged copy (the intact blob's bytes, under the victim's ID,
     * would fail the hash; so point the victim's ID at its own place in a
     * copy of the pack). */
    char copyhex[CR_ID_HEX + 1];
    snprintf(copyhex, sizeof copyhex, "%s", str_member(pack, "id"));
    copyhex[0] = copyhex[0] == 'f' ? 'e' : 'f';
    char copypath[512];
    pack_path(copypath, sizeof copypath, repo, copyhex);
    assert_int_equal(run("mkdir -p \"$(dirname '%s')\" && cp 'fixtures/repos/v2-two-snapshots/data/%.2s/%s' '%s'", copypath,
                         str_member(pack, "id"), str_member(pack, "id"), copypath), 0);
    size_t count;
    const cr_index_entry *x = cr_index_lookup(r->index, CR_BLOB_DATA, &vid, &count);
    assert_int_equal(count, 1);
    cr_index_entry copy = *x;
    cr_id copyid = id_hex(copyhex);
    assert_int_equal(cr_index_add(r->index, &copyid, &copy), 0);
    cr_index_finish(r->index);
    assert_non_null(cr_index_lookup(r->index, CR_BLOB_DATA, &vid, &count));
    assert_int_equal(count, 2);
    assert_int_equal(cr_repo_load_blob(r, CR_BLOB_DATA, &vid, &out), 0);
    /* And a second location in a missing pack does not hurt either. */
    copyid.b[5] ^= 0xff;
    assert_int_equal(cr_index_add(r->index, &copyid, &copy), 0);
    cr_index_finish(r->index);
    assert_int_equal(cr_repo_load_blob(r, CR_BLOB_DATA, &vid, &out), 0);

    /* The pack header: the MAC fails. */
    cr_id pid = id_hex(str_member(pack, "id"));
    flip_byte(path, -10);
    cr_pack_blob *blobs = NULL;
    size_t nb = 0;
    assert_int_equal(cr_repo_pack_header(r, &pid, (uint64_t)num_member(pack, "size"), &blobs, &nb), CR_E_AUTH);
    assert_null(blobs);
    /* The header length field. */
    flip_byte(path, -10);
    flip_byte(path, -2);
    e = cr_repo_pack_header(r, &pid, (uint64_t)num_member(pack, "size"), &blobs, &nb);
    assert_true(e == CR_E_FORMAT || e == CR_E_AUTH);
    flip_byte(path, -2);
    assert_int_equal(cr_repo_pack_header(r, &pid, (uint64_t)num_member(pack, "size"), &blobs, &nb), 0);
    free(blobs);
    /* A truncated pack: blobs beyond the end cannot be read. */
    assert_int_equal(truncate(path, (off_t)num_member(victim, "offset") + 10), 0);
    const cJSON *last = cJSON_GetArrayItem(member(pack, "entries"), cJSON_GetArraySize(member(pack, "entries")) - 1);
    cr_id lid = id_hex(str_member(last, "id"));
    e = cr_repo_load_blob(r, CR_BLOB_DATA, &lid, &out);
    assert_true(e == -EIO || e == CR_E_FORMAT);

    /* A damaged snapshot file no longer matches its name. */
    const char *sid = str_member(cJSON_GetArrayItem(member(rv, "snapshots"), 0), "id");
    snprintf(path, sizeof path, "%s/snapshots/%s", repo, sid);
    flip_byte(path, 40);
    cr_snapshot s;
    cr_id snap = id_hex(sid);
    assert_int_equal(cr_repo_load_snapshot(r, &snap, &s), CR_E_AUTH);
    /* Listing all snapshots skips it, as restic does. */
    cr_snapshot *all = NULL;
    size_t n = 0;
    assert_int_equal(cr_repo_load_snapshots(r, &all, &n), 0);
    assert_int_equal(n, 1);
    cr_snapshots_free(all, n);

    /* A damaged index file: loading the index fails and names it. */
    snprintf(path, sizeof path, "%s/index/%s", repo, str_member(cJSON_GetArrayItem(member(rv, "index_files"), 0), "id"));
    flip_byte(path, 50);
    cr_index_free(r->index);
    r->index = NULL;
    assert_int_equal(cr_repo_load_index(r), CR_E_AUTH);
    assert_null(r->index);
    assert_non_null(strstr(cr_error_message(), "index"));
    cr_repo_close(r);

    /* A damaged config: the MAC fails on open. */
    snprintf(path, sizeof path, "%s/config", repo);
    flip_byte(path, 40);
    r = NULL;
    assert_int_equal(try_open(repo, PW, NULL, &r), CR_E_AUTH);
    assert_null(r);
    flip_byte(path, 40);
    /* A damaged key file is skipped: no other key, so the password fails. */
    const char *kid = str_member(cJSON_GetArrayItem(member(rv, "keys"), 0), "id");
    snprintf(path, sizeof path, "%s/keys/%s", repo, kid);
    flip_byte(path, 30);
    assert_int_equal(try_open(repo, PW, NULL, &r), CR_E_PASSWORD);
    flip_byte(path, 30);
    /* No config at all. */
    snprintf(path, sizeof path, "%s/config", repo);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(try_open(repo, PW, NULL, &r), CR_E_NOREPO);
}

/* ---- restic's upstream test repositories ----------------------------------- */

typedef struct {
    const char *name;
    int walk_error;   /* 0: the walk must succeed; else every error has this code */
    int blob_errors[2]; /* allowed codes when loading every indexed blob */
    bool has_snapshots;
} upstream_case;

static const upstream_case upstream[] = {
    {"small-repo", 0, {0, 0}, true},
    {"repo-mixed", 0, {0, 0}, true},
    {"repo-duplicates", 0, {0, 0}, true},
    {"repo-obsolete-index", 0, {0, 0}, true},
    {"repo-layout-default", 0, {0, 0}, true},
    {"repo-restore-permissions-test", 0, {0, 0}, true},
    {"repo-same-timestamps", 0, {0, 0}, true},
    {"repo-unreferenced-data", 0, {0, 0}, true},
    {"copy-unstable-json", 0, {0, 0}, true},
    {"duplicate-packs-in-index-test-repo", 0, {0, 0}, false},
    /* a pack listed in the index is gone */
    {"repo-data-missing", -ENOENT, {-ENOENT, 0}, true},
    /* unused packs are gone or empty: the snapshots are complete */
    {"repo-unused-data-missing", 0, {-ENOENT, -EIO}, true},
    /* a tree / a data blob that no index lists */
    {"repo-index-missing", CR_E_NOTFOUND, {0, 0}, true},
    {"repo-index-missing-blob", CR_E_NOTFOUND, {0, 0}, true},
};

static void test_upstream(void **state)
{
    size_t total_trees = 0, total_blobs = 0, differently = 0;
    for (size_t i = 0; i < sizeof upstream / sizeof upstream[0]; i++) {
        const upstream_case *u = &upstream[i];
        char dir[512], repo[600];
        snprintf(dir, sizeof dir, "%s/up-%s", tmpdir, u->name);
        assert_int_equal(run("mkdir -p '%s' && tar -xzf 'fixtures/upstream/%s.tar.gz' -C '%s'", dir, u->name, dir), 0);
        snprintf(repo, sizeof repo, "%s/repo", dir);
        cr_repo *r = NULL;
        if (i == 0) assert_int_equal(try_open(repo, "Geheim", NULL, &r), CR_E_PASSWORD);
        int e = try_open(repo, "geheim", NULL, &r);
        if (e) fail_msg("%s: open: %d %s", u->name, e, cr_error_message());
        e = cr_repo_load_index(r);
        if (e) fail_msg("%s: index: %d %s", u->name, e, cr_error_message());

        cr_snapshot *snaps = NULL;
        size_t n = 0;
        assert_int_equal(cr_repo_load_snapshots(r, &snaps, &n), 0);
        if (u->has_snapshots) assert_true(n >= 1);
        else assert_int_equal(n, 0);
        for (size_t k = 1; k < n; k++) assert_true(cr_time_cmp(&snaps[k - 1].time, &snaps[k].time) <= 0);

        walk_ctx w = {.repo = r};
        for (size_t k = 0; k < n; k++) {
            assert_true(snaps[k].has_tree);
            _cleanup_buf_ cr_buf enc = CR_BUF_INIT;
            assert_int_equal(cr_snapshot_encode(&snaps[k], &enc), 0);
            walk_tree(&w, &snaps[k].tree, "");
        }
        cr_snapshots_free(snaps, n);
        if (u->walk_error == 0) {
            if (w.error_count) fail_msg("%s: walk failed with %d: %s", u->name, w.errors[0], cr_error_message());
        } else {
            assert_true(w.error_count >= 1);
            assert_int_equal(w.nerrors, 1);
            assert_int_equal(w.errors[0], u->walk_error);
        }
        total_trees += w.trees;
        total_blobs += w.blobs;
        differently += w.reencoded_differently;
        free(w.seen);

        /* Every blob the index lists. */
        _cleanup_buf_ cr_buf out = CR_BUF_INIT;
        size_t failed = 0;
        for (size_t k = 0; k < r->index->nblobs; k++) {
            const cr_index_entry *x = &r->index->blobs[k];
            if (k && cr_id_eq(&r->index->blobs[k - 1].id, &x->id) && r->index->blobs[k - 1].type == x->type) continue;
            e = cr_repo_load_blob(r, (cr_blob_type)x->type, &x->id, &out);
            if (e == 0) {
                assert_int_equal(out.len, cr_index_entry_plain_len(x));
                continue;
            }
            failed++;
            if (e != u->blob_errors[0] && e != u->blob_errors[1])
                fail_msg("%s: blob %zu: %d %s", u->name, k, e, cr_error_message());
        }
        if (u->blob_errors[0]) assert_true(failed >= 1);
        cr_repo_close(r);
        run("rm -rf '%s'", dir);
    }
    print_message("upstream: %zu trees, %zu data blobs walked, %zu trees re-encode differently\n", total_trees, total_blobs,
                  differently);
    assert_true(total_trees >= 30);
    assert_true(total_blobs >= 15);
    /* copy-unstable-json holds trees restic no longer writes that way. */
    assert_true(differently >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_fixtures),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_find_and_list),
        cmocka_unit_test(test_pack_headers),
        cmocka_unit_test(test_load_all_blobs),
        cmocka_unit_test(test_files_from_chunks),
        cmocka_unit_test(test_unpacked_and_snapshots),
        cmocka_unit_test(test_walk_fixtures),
        cmocka_unit_test(test_damaged_copy),
        cmocka_unit_test(test_upstream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
