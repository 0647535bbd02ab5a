/* The restorer on the fixture repositories: every entry of the snapshot
 * listing in vectors.json (type, mode, mtime, size, SHA-256, link target),
 * hard links and xattrs, then the options: overwrite modes, --delete (with
 * and without filters), --dry-run, --sparse, --verify, include/exclude,
 * symlinks already in the target, interruption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "crypto/crypto.h"
#include "repo/repo.h"
#include "repo/restorer.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "util/error.h"
#include "util/gotime.h"

#define PASSWORD "fixture-password"

static cJSON *vectors;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *p = malloc(cap + 1);
    while (p && (got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) p = realloc(p, (cap *= 2) + 1);
    }
    fclose(f);
    if (p) p[n] = 0;
    if (len) *len = n;
    return p;
}

typedef struct {
    cr_repo *repo;
    cr_snapshot sn;
    char dir[64];    /* scratch directory */
    char target[96]; /* dir/t */
} fixture;

static int setup_repo(void **state, const char *name)
{
    fixture *fx = calloc(1, sizeof *fx);
    char loc[256];
    snprintf(loc, sizeof loc, "fixtures/repos/%s", name);
    cr_backend *be = NULL;
    if (cr_backend_open(loc, &be) < 0) return -1;
    if (cr_repo_open(be, PASSWORD, strlen(PASSWORD), NULL, &fx->repo) < 0) return -1;
    if (cr_repo_load_index(fx->repo) < 0) return -1;
    if (cr_repo_find_snapshot(fx->repo, "latest", NULL, &fx->sn) < 0) return -1;
    strcpy(fx->dir, "/tmp/crestic-test-restorer.XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(fx->target, sizeof fx->target, "%s/t", fx->dir);
    *state = fx;
    return 0;
}

static int setup_v2(void **state) { return setup_repo(state, "v2"); }

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwX %s 2>/dev/null; rm -rf %s", fx->dir, fx->dir);
    if (system(cmd) != 0) return -1;
    cr_snapshot_clear(&fx->sn);
    cr_repo_close(fx->repo);
    free(fx);
    return 0;
}

/* ---- callbacks: count what was reported ---- */

typedef struct {
    int errors, restored, updated, unchanged, deleted;
    char last_error[512];
} seen;

static void on_error(void *ud, const char *item, const char *msg)
{
    seen *s = ud;
    s->errors++;
    snprintf(s->last_error, sizeof s->last_error, "%s: %s", item, msg);
}

static void on_item(void *ud, const char *item, const char *action, uint64_t size)
{
    (void)item, (void)size;
    seen *s = ud;
    if (!strcmp(action, "restored")) s->restored++;
    else if (!strcmp(action, "updated")) s->updated++;
    else if (!strcmp(action, "unchanged")) s->unchanged++;
    else if (!strcmp(action, "deleted")) s->deleted++;
}

static cr_restore_opts base_opts(fixture *fx, seen *s)
{
    memset(s, 0, sizeof *s);
    cr_restore_opts o = {.target = fx->target, .on_error = on_error, .on_item = on_item, .ud = s};
    return o;
}

static int do_restore(fixture *fx, cr_restore_opts *o, cr_restore_stats *st)
{
    cr_restore_stats tmp;
    return cr_restore(fx->repo, &fx->sn.tree, o, st ? st : &tmp);
}

/* ---- checking against vectors.json ---- */

/* Listing paths show non-UTF-8 bytes as the text \xHH. */
static void decode_path(const char *in, char *out)
{
    while (*in) {
        unsigned v;
        if (in[0] == '\\' && in[1] == 'x' && sscanf(in + 2, "%2x", &v) == 1) {
            *out++ = (char)v;
            in += 4;
        } else {
            *out++ = *in++;
        }
    }
    *out = 0;
}

static void file_sha256_hex(const char *path, char hex[65])
{
    size_t n;
    char *p = slurp(path, &n);
    assert_non_null(p);
    uint8_t d[32];
    cr_sha256(p, n, d);
    free(p);
    cr_hex_encode(d, 32, hex);
}

static void check_listing(fixture *fx, const char *repo)
{
    cJSON *snaps = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(vectors, "repos"), repo), "snapshots");
    cJSON *snap = NULL, *it;
    char id[65];
    cr_id_to_hex(&fx->sn.id, id);
    cJSON_ArrayForEach(it, snaps) if (!strcmp(cJSON_GetObjectItem(it, "id")->valuestring, id)) snap = it;
    assert_non_null(snap);
    int checked = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(snap, "listing"))
    {
        char rel[512], path[1024];
        decode_path(cJSON_GetObjectItem(it, "path")->valuestring, rel);
        snprintf(path, sizeof path, "%s/%s", fx->target, rel);
        struct stat st;
        if (lstat(path, &st) != 0) fail_msg("%s: missing", rel);
        const char *type = cJSON_GetObjectItem(it, "type")->valuestring;
        uint32_t mode = (uint32_t)cJSON_GetObjectItem(it, "mode")->valuedouble;
        const char *mt = cJSON_GetObjectItem(it, "mtime")->valuestring;
        cr_time t;
        assert_int_equal(cr_time_parse(mt, strlen(mt), &t), 0);
        if (!strcmp(type, "symlink")) {
            char buf[512];
            ssize_t n = readlink(path, buf, sizeof buf - 1);
            assert_true(n > 0);
            buf[n] = 0;
            assert_string_equal(buf, cJSON_GetObjectItem(it, "linktarget")->valuestring);
        } else {
            if ((st.st_mode & 07777) != cr_mode_to_posix_perm(mode)) fail_msg("%s: mode %o", rel, st.st_mode & 07777);
            if (st.st_mtim.tv_sec != t.sec || st.st_mtim.tv_nsec != t.nsec) fail_msg("%s: mtime", rel);
        }
        if (!strcmp(type, "file")) {
            assert_true(S_ISREG(st.st_mode));
            assert_int_equal(st.st_size, (int64_t)cJSON_GetObjectItem(it, "size")->valuedouble);
            char hex[65];
            file_sha256_hex(path, hex);
            if (strcmp(hex, cJSON_GetObjectItem(it, "sha256")->valuestring)) fail_msg("%s: content", rel);
        } else if (!strcmp(type, "dir")) {
            assert_true(S_ISDIR(st.st_mode));
        } else if (!strcmp(type, "fifo")) {
            assert_true(S_ISFIFO(st.st_mode));
        }
        checked++;
    }
    assert_true(checked >= 19);
}

static void path_of(fixture *fx, const char *rel, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", fx->target, rel);
}

/* ---- tests ---- */

static void test_full_restore_matches_listing(void **state)
{
    fixture *fx = *state;
    seen s;
    cr_restore_opts o = base_opts(fx, &s);
    cr_restore_stats st;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(s.errors, 0);
    /* atime restored too (fixture: atime == mtime); before anything reads the file */
    char a[512], b[512];
    path_of(fx, "src/medium.bin", a, sizeof a);
    struct stat sa, sb;
    assert_int_equal(stat(a, &sa), 0);
    assert_int_equal(sa.st_atim.tv_sec, sa.st_mtim.tv_sec);
    assert_int_equal(sa.st_atim.tv_nsec, sa.st_mtim.tv_nsec);
    check_listing(fx, "v2");
    assert_int_equal(st.files_total, 19);
    assert_int_equal(st.files_restored, 19);
    assert_int_equal(st.bytes_restored, st.bytes_total);
    assert_int_equal(st.errors, 0);
    /* hard link: one inode */
    path_of(fx, "src/sub/hardlink.bin", b, sizeof b);
    assert_int_equal(stat(b, &sb), 0);
    assert_int_equal(sa.st_ino, sb.st_ino);
    assert_int_equal(sa.st_nlink, 2);
    /* xattr with a NUL and a 0xff byte */
    char v[64];
    path_of(fx, "src/small.txt", a, sizeof a);
    ssize_t n = lgetxattr(a, "user.fixture", v, sizeof v);
    if (n >= 0) { /* the file system may not support user xattrs */
        assert_int_equal(n, 12);
        assert_memory_equal(v, "hello\0world\xff", 12);
    }
}

static void modify_keep_mtime(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    fputs("XXXX", f);
    fclose(f);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_overwrite_modes(void **state)
{
    fixture *fx = *state;
    seen s;
    cr_restore_opts o = base_opts(fx, &s);
    cr_restore_stats st;
    assert_int_equal(do_restore(fx, &o, NULL), 0);
    char small[512], big[512];
    path_of(fx, "src/small.txt", small, sizeof small);
    path_of(fx, "src/big.bin", big, sizeof big);

    /* if-changed trusts size+mtime: the change goes unnoticed */
    modify_keep_mtime(small);
    o = base_opts(fx, &s);
    o.overwrite = CR_OVERWRITE_IF_CHANGED;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(st.files_skipped, 11); /* every file; the hard link is linked again */
    assert_int_equal(s.unchanged, 11);
    char hex[65], head[5] = {0};
    FILE *f = fopen(small, "r");
    assert_non_null(f);
    assert_int_equal(fread(head, 1, 4, f), 4);
    fclose(f);
    assert_string_equal(head, "XXXX");

    /* always checks content: the file is rewritten ("updated"), the rest unchanged */
    o = base_opts(fx, &s);
    o.overwrite = CR_OVERWRITE_ALWAYS;
    modify_keep_mtime(big); /* first chunk of a 7-chunk file */
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(s.updated, 2);
    check_listing(fx, "v2");

    /* never leaves existing files alone */
    modify_keep_mtime(small);
    o = base_opts(fx, &s);
    o.overwrite = CR_OVERWRITE_NEVER;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(s.updated, 0);
    file_sha256_hex(small, hex);
    char before[65];
    strcpy(before, hex);

    /* if-newer: an existing file with a newer mtime stays, an older one is replaced */
    o = base_opts(fx, &s);
    o.overwrite = CR_OVERWRITE_IF_NEWER;
    assert_int_equal(utimensat(AT_FDCWD, small, NULL, 0), 0); /* now: newer than the snapshot */
    assert_int_equal(do_restore(fx, &o, &st), 0);
    file_sha256_hex(small, hex);
    assert_string_equal(hex, before);
    struct timespec old[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
    assert_int_equal(utimensat(AT_FDCWD, small, old, 0), 0);
    o = base_opts(fx, &s);
    o.overwrite = CR_OVERWRITE_IF_NEWER;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(s.updated, 1);
    check_listing(fx, "v2");
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("extra\n", f);
    fclose(f);
}

static void test_delete(void **state)
{
    fixture *fx = *state;
    seen s;
    cr_restore_opts o = base_opts(fx, &s);
    assert_int_equal(do_restore(fx, &o, NULL), 0);
    char p[512], q[512];
    path_of(fx, "src/extra.txt", p, sizeof p);
    touch(p);
    path_of(fx, "src/sub/extra-dir", q, sizeof q);
    assert_int_equal(mkdir(q, 0755), 0);
    strcat(q, "/inner");
    touch(q);
    path_of(fx, "top-extra", q, sizeof q);
    touch(q);

    /* with an include: only within /src/sub */
    o = base_opts(fx, &s);
    const char *inc[] = {"/src/sub"};
    o.includes = inc;
    o.nincludes = 1;
    o.delete_extra = true;
    cr_restore_stats st;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(access(p, F_OK), 0);
    path_of(fx, "src/sub/extra-dir", q, sizeof q);
    assert_int_equal(access(q, F_OK), -1);
    assert_int_equal(st.files_deleted, 2);

    /* dry run: reported, not removed */
    o = base_opts(fx, &s);
    o.delete_extra = true;
    o.dry_run = true;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(st.files_deleted, 2);
    assert_int_equal(access(p, F_OK), 0);

    /* everything */
    o = base_opts(fx, &s);
    o.delete_extra = true;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(access(p, F_OK), -1);
    path_of(fx, "top-extra", q, sizeof q);
    assert_int_equal(access(q, F_OK), -1);
    assert_int_equal(s.deleted, 2);
    check_listing(fx, "v2");
}

static void test_dry_run_writes_nothing(void **state)
{
    fixture *fx = *state;
    seen s;
    cr_restore_opts o = base_opts(fx, &s);
    o.dry_run = true;
    cr_restore_stats st;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(access(fx->target, F_OK), -1);
    assert_int_equal(st.files_total, 19);
    assert_int_equal(s.restored, 19);
    assert_int_equal(s.errors, 0);
}

static void test_sparse_and_verify(void **state)
{
    fixture *fx = *state;
    seen s;
    cr_restore_opts o = base_opts(fx, &s);
    o.sparse = true;
    o.verify = true;
    cr_restore_stats st;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(st.files_verified, 11); /* regular files restored (the hard link once) */
    check_listing(fx, "v2");
    char big[512];
    path_of(fx, "src/big.bin", big, sizeof big);
    struct stat sb;
    assert_int_equal(stat(big, &sb), 0);
    /* the all-zero 512 KiB chunks (two of them) became holes */
    assert_true((uint64_t)sb.st_blocks * 512 < (uint64_t)sb.st_size - 900 * 1024);
}

static void test_filters(void **state)
{
    fixture *fx = *state;
    seen s;
    cr_restore_opts o = base_opts(fx, &s);
    const char *exc[] = {"*.bin", "/src/sub"};
    o.excludes = exc;
    o.nexcludes = 2;
    cr_restore_stats st;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    char p[512];
    path_of(fx, "src/big.bin", p, sizeof p);
    assert_int_equal(access(p, F_OK), -1);
    path_of(fx, "src/sub", p, sizeof p);
    assert_int_equal(access(p, F_OK), -1);
    path_of(fx, "src/small.txt", p, sizeof p);
    assert_int_equal(access(p, F_OK), 0);

    const char *iinc[] = {"/SRC/SUB/NESTED.TXT"};
    o = base_opts(fx, &s);
    snprintf(fx->target, sizeof fx->target, "%s/t2", fx->dir);
    o.target = fx->target;
    o.iincludes = iinc;
    o.niincludes = 1;
    assert_int_equal(do_restore(fx, &o, &st), 0);
    assert_int_equal(st.files_total, 3); /* src, src/sub (as parents) and the file */
    path_of(fx, "src/sub/nested.txt", p, sizeof p);
    assert_int_equal(access(p, F_OK), 0);
    path_of(fx, "src/small.txt", p, sizeof p);
    assert_int_equal(access(p, F_OK), -1);
    /* the parent directories got their metadata */
    path_of(fx, "src/sub", p, sizeof p);
    struct stat sd;
    assert_int_equal(stat(p, &sd), 0);
    assert_int_equal(sd.st_mode & 07777, 02755);

    const char *bad[] = {"["};
    o.includes = bad;
    o.nincludes = 1;
    assert_int_equal(do_restore(fx, &o, &st), CR_E_USAGE);
}

static void test_existing_symlinks_are_replaced_not_followed(void **state)
{
    fixture *fx = *state;
    char outside[128], p[512];
    snprintf(outside, sizeof outside, "%s/outside", fx->dir);
    assert_int_equal(mkdir(outside, 0755), 0);
    assert_int_equal(mkdir(fx->target, 0700), 0);
    path_of(fx, "src", p, sizeof p);
    assert_int_equal(symlink(outside, p), 0); /* the whole tree would land outside */
    seen s;
    cr_restore_opts o = base_opts(fx, &s);
    assert_int_equal(do_restore(fx, &o, NULL), 0);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    char cmd[320];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", outside);
    assert_int_equal(system(cmd), 0);

    /* a symlink where a file goes */
    path_of(fx, "src/small.txt", p, sizeof p);
    unlink(p);
    char victim[160];
    snprintf(victim, sizeof victim, "%s/victim", outside);
    assert_int_equal(symlink(victim, p), 0);
    o = base_opts(fx, &s);
    assert_int_equal(do_restore(fx, &o, NULL), 0);
    assert_int_equal(access(victim, F_OK), -1);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    check_listing(fx, "v2");
}

static volatile int stop_now = 1;

static void test_interrupt(void **state)
{
    fixture *fx = *state;
    seen s;
    cr_restore_opts o = base_opts(fx, &s);
    o.interrupted = &stop_now;
    assert_int_equal(do_restore(fx, &o, NULL), CR_E_INTERRUPTED);
}

static void test_workers_one_and_many(void **state)
{
    fixture *fx = *state;
    unsigned counts[] = {1, 7};
    for (int i = 0; i < 2; i++) {
        seen s;
        cr_restore_opts o = base_opts(fx, &s);
        snprintf(fx->target, sizeof fx->target, "%s/w%u", fx->dir, counts[i]);
        o.target = fx->target;
        o.workers = counts[i];
        assert_int_equal(do_restore(fx, &o, NULL), 0);
        check_listing(fx, "v2");
    }
}

static void test_overwrite_parse(void **state)
{
    (void)state;
    cr_overwrite ow;
    assert_int_equal(cr_overwrite_parse("if-newer", &ow), 0);
    assert_int_equal(ow, CR_OVERWRITE_IF_NEWER);
    assert_int_equal(cr_overwrite_parse("sometimes", &ow), CR_E_USAGE);
}

int main(void)
{
    size_t n;
    char *json = slurp("fixtures/vectors.json", &n);
    if (!json) {
        fprintf(stderr, "run from tests/: fixtures/vectors.json missing\n");
        return 1;
    }
    vectors = cJSON_ParseWithLength(json, n);
    free(json);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_restore_matches_listing, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_modes, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_writes_nothing, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_and_verify, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_existing_symlinks_are_replaced_not_followed, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_workers_one_and_many, setup_v2, teardown),
        cmocka_unit_test(test_overwrite_parse),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cJSON_Delete(vectors);
    return rc;
}
