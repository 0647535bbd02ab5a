/* Archiver building blocks: Go filepath semantics for paths, restic's root
 * tree layout for targets (including name clashes and targets inside other
 * targets), nodes from lstat, exclude rules (pattern files with comments and
 * environment expansion, sizes, tag files).  Expected layouts were
 * confirmed with restic 0.14 (`restic ls` after `restic backup`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "repo/archive_internal.h"
#include "repo/excluder.h"
#include "util/error.h"

static char tmpdir[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/crestic-test-archiver.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *rel, const char *content)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void mkdir_rel(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

/* ---- paths ---------------------------------------------------------------------- */

static void check_clean(const char *in, const char *want)
{
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_path_clean(in, &b), 0);
    if (strcmp((const char *)b.data, want)) fail_msg("Clean(%s) = %s, want %s", in, (const char *)b.data, want);
    cr_buf_free(&b);
}

static void test_path_clean(void **state)
{
    /* Go's filepath.Clean table */
    check_clean("", ".");
    check_clean("abc", "abc");
    check_clean("abc/def", "abc/def");
    check_clean("a/b/c", "a/b/c");
    check_clean(".", ".");
    check_clean("..", "..");
    check_clean("../..", "../..");
    check_clean("../../abc", "../../abc");
    check_clean("/abc", "/abc");
    check_clean("/", "/");
    check_clean("abc/", "abc");
    check_clean("abc/def/", "abc/def");
    check_clean("/abc/", "/abc");
    check_clean("abc//def//ghi", "abc/def/ghi");
    check_clean("//abc", "/abc");
    check_clean("///abc", "/abc");
    check_clean("abc/./def", "abc/def");
    check_clean("/./abc/def", "/abc/def");
    check_clean("abc/.", "abc");
    check_clean("abc/def/ghi/../jkl", "abc/def/jkl");
    check_clean("abc/def/../ghi/../jkl", "abc/jkl");
    check_clean("abc/def/..", "abc");
    check_clean("abc/def/../..", ".");
    check_clean("/abc/def/../..", "/");
    check_clean("abc/def/../../..", "..");
    check_clean("/abc/def/../../..", "/");
    check_clean("abc/def/../../../ghi/jkl/../../../mno", "../../mno");
    check_clean("/../abc", "/abc");
    check_clean("abc/./../def", "def");
    check_clean("abc//./../def", "def");
    check_clean("abc/../../././../def", "../../def");
}

static void test_path_helpers(void **state)
{
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_path_join(&b, "/", "a", 1), 0);
    assert_string_equal((const char *)b.data, "/a");
    assert_int_equal(cr_path_join(&b, ".", "a", 1), 0);
    assert_string_equal((const char *)b.data, "a");
    assert_int_equal(cr_path_join(&b, "src/d", "x y", 3), 0);
    assert_string_equal((const char *)b.data, "src/d/x y");
    assert_int_equal(cr_path_dir("/a/b", &b), 0);
    assert_string_equal((const char *)b.data, "/a");
    assert_int_equal(cr_path_dir("/a", &b), 0);
    assert_string_equal((const char *)b.data, "/");
    assert_int_equal(cr_path_dir("a", &b), 0);
    assert_string_equal((const char *)b.data, ".");
    assert_string_equal(cr_path_base("/a/b"), "b");
    assert_string_equal(cr_path_base("/"), "/");
    cr_buf_free(&b);
}

/* ---- target layout ----------------------------------------------------------------- */

/* "name=path" (a target named by the user), "name~path" (an entry added
 * for "." or an unrolled target), "name@info{kids}" for comparison */
static void describe(const cr_tnode *t, cr_buf *out)
{
    for (size_t i = 0; i < t->nkids; i++) {
        const cr_tnode *k = &t->kids[i];
        cr_buf_printf(out, "%s%s", i ? " " : "", k->name);
        if (k->path) cr_buf_printf(out, "%s%s", k->explicit_target ? "=" : "~", k->path);
        if (k->info_path) cr_buf_printf(out, "@%s", k->info_path);
        if (k->nkids) {
            cr_buf_puts(out, "{");
            describe(k, out);
            cr_buf_puts(out, "}");
        }
    }
}

static void check_layout(const char *const *targets, size_t n, const char *want)
{
    cr_tnode t;
    assert_int_equal(cr_tnode_build(targets, n, &t), 0);
    cr_buf b = CR_BUF_INIT;
    describe(&t, &b);
    cr_buf_nul(&b);
    if (strcmp((const char *)b.data, want)) fail_msg("layout %s, want %s", (const char *)b.data, want);
    cr_buf_free(&b);
    cr_tnode_free(&t);
}

static void test_layout(void **state)
{
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    mkdir_rel("w");
    mkdir_rel("w/x");
    mkdir_rel("x");
    mkdir_rel("top");
    mkdir_rel("top/in");
    write_file("top/f", "f");
    write_file("top/in/g", "g");
    assert_int_equal(chdir("w"), 0);

    const char *rel[] = {"x"};
    check_layout(rel, 1, "x=x");
    const char *nested[] = {"x/../x/./"};
    check_layout(nested, 1, "x=x");
    const char *abs[] = {"/a/b/c"};
    check_layout(abs, 1, "a@/a{b@/a/b{c=/a/b/c}}");
    const char *clash[] = {"x", "../x"}; /* roots "." and "..": x, x-1 */
    check_layout(clash, 2, "x=x x-1=../x");
    const char *dup[] = {"x", "./x", "x/"};
    check_layout(dup, 3, "x=x");
    const char *two_abs[] = {"/p/q", "/p/r", "/s"};
    check_layout(two_abs, 3, "p@/p{q=/p/q r=/p/r} s=/s");
    /* a target inside another target: the outer one lists its other entries */
    const char *inner[] = {"../top", "../top/in"};
    check_layout(inner, 2, "top@../top{f~../top/f in=../top/in}");
    /* "." stands for its entries */
    assert_int_equal(chdir(tmpdir), 0);
    const char *dot[] = {"."};
    check_layout(dot, 1, "top~top w~w x~x");
    assert_int_equal(chdir(cwd), 0);
}

/* ---- nodes ------------------------------------------------------------------------- */

static void test_node_from_stat(void **state)
{
    write_file("node", "12345");
    char p[512];
    snprintf(p, sizeof p, "%s/node", tmpdir);
    bool have_xattr = setxattr(p, "user.b", "2", 1, 0) == 0 && setxattr(p, "user.a", "", 0, 0) == 0;
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    cr_arena arena = CR_ARENA_INIT;
    cr_buf warn = CR_BUF_INIT;
    cr_node n = {.name = "node", .name_len = 4};
    cr_arch_time_init();
    assert_int_equal(cr_arch_node_from_stat(&n, p, &st, false, &arena, &warn), 0);
    assert_int_equal(warn.len, 0);
    assert_string_equal(n.name, "node");
    assert_int_equal(n.type, CR_NODE_FILE);
    assert_int_equal(n.mode, st.st_mode & 0777);
    assert_int_equal(n.size, 5);
    assert_int_equal(n.links, 1);
    assert_int_equal(n.inode, st.st_ino);
    assert_int_equal(n.device_id, st.st_dev);
    assert_int_equal(cr_time_cmp(&n.atime, &n.mtime), 0); /* atime := mtime */
    assert_false(n.content_null);
    if (have_xattr) {
        assert_int_equal(n.nxattrs, 2);
        for (size_t i = 0; i < 2; i++) {
            if (!strcmp(n.xattrs[i].name, "user.a")) {
                assert_non_null(n.xattrs[i].value); /* empty value: "" not null */
                assert_int_equal(n.xattrs[i].value_len, 0);
            }
        }
    }
    cr_node m = n;
    assert_true(cr_arch_node_equal(&n, &m));
    m.size = 6;
    assert_false(cr_arch_node_equal(&n, &m));

    /* a symlink: target, links, no xattrs (restic 0.14) */
    char l[512];
    snprintf(l, sizeof l, "%s/link", tmpdir);
    assert_int_equal(symlink("no/such\\target", l), 0);
    assert_int_equal(lstat(l, &st), 0);
    cr_node s = {.name = "link", .name_len = 4};
    assert_int_equal(cr_arch_node_from_stat(&s, l, &st, false, &arena, &warn), 0);
    assert_int_equal(s.type, CR_NODE_SYMLINK);
    assert_int_equal(s.mode, CR_MODE_SYMLINK | 0777);
    assert_int_equal(s.linktarget_len, 14);
    assert_memory_equal(s.linktarget, "no/such\\target", 14);
    assert_true(s.content_null);
    assert_int_equal(s.size, 0);
    cr_arena_free(&arena);
    cr_buf_free(&warn);
}

/* ---- excludes ------------------------------------------------------------------------- */

static void test_parse_size(void **state)
{
    int64_t v;
    assert_int_equal(cr_parse_size("123", &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(cr_parse_size("2k", &v), 0);
    assert_int_equal(v, 2048);
    assert_int_equal(cr_parse_size("3M", &v), 0);
    assert_int_equal(v, 3 << 20);
    assert_int_equal(cr_parse_size("1g", &v), 0);
    assert_int_equal(v, 1 << 30);
    assert_int_equal(cr_parse_size("1T", &v), 0);
    assert_int_equal(v, 1ll << 40);
    assert_int_equal(cr_parse_size("12x", &v), CR_E_USAGE);
    assert_int_equal(cr_parse_size("", &v), CR_E_USAGE);
    assert_int_equal(cr_parse_size("-1", &v), CR_E_USAGE);
}

static void test_exclude_file(void **state)
{
    setenv("CRESTIC_TEST_DIR", "envdir", 1);
    write_file("ex", "\xef\xbb\xbf# comment\n\n  *.tmp  \r\n/x/$CRESTIC_TEST_DIR/*\n/y/${CRESTIC_TEST_DIR}\n/cost$$\n");
    char ex[512];
    snprintf(ex, sizeof ex, "%s/ex", tmpdir);
    const char *files[] = {ex};
    cr_exclude_opts o = {.exclude_files = files, .nexclude_files = 1, .larger_than = 10};
    cr_excluder *e = NULL;
    assert_int_equal(cr_excluder_new(&o, &e), 0);
    assert_true(cr_excluder_reject_path(e, "/a/b.tmp"));
    assert_true(cr_excluder_reject_path(e, "/x/envdir/f"));
    assert_true(cr_excluder_reject_path(e, "/y/envdir"));
    assert_true(cr_excluder_reject_path(e, "/cost$"));
    assert_false(cr_excluder_reject_path(e, "/x/other/f"));
    assert_false(cr_excluder_reject_path(e, "/a/b.tmpx"));
    struct stat st = {.st_mode = S_IFREG | 0644, .st_size = 11};
    assert_true(cr_excluder_reject_stat(e, "/big", &st));
    st.st_size = 10;
    assert_false(cr_excluder_reject_stat(e, "/big", &st));
    st.st_mode = S_IFDIR | 0755, st.st_size = 4096; /* directories are never too large */
    assert_false(cr_excluder_reject_stat(e, "/dir", &st));
    cr_excluder_free(e);

    const char *bad[] = {"["};
    cr_exclude_opts ob = {.excludes = bad, .nexcludes = 1, .larger_than = -1};
    assert_int_equal(cr_excluder_new(&ob, &e), CR_E_USAGE);
    const char *missing[] = {"/nonexistent/crestic/excludes"};
    cr_exclude_opts om = {.exclude_files = missing, .nexclude_files = 1, .larger_than = -1};
    assert_true(cr_excluder_new(&om, &e) < 0);
}

static void test_tag_files(void **state)
{
    mkdir_rel("cache");
    mkdir_rel("plain");
    mkdir_rel("marked");
    write_file("cache/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n# more");
    write_file("plain/CACHEDIR.TAG", "no signature");
    write_file("marked/.nobackup", "");
    const char *present[] = {".nobackup"};
    cr_exclude_opts o = {.if_present = present, .nif_present = 1, .exclude_caches = true, .larger_than = -1};
    cr_excluder *e = NULL;
    assert_int_equal(cr_excluder_new(&o, &e), 0);
    struct stat st = {.st_mode = S_IFREG | 0644};
    char p[512];
    snprintf(p, sizeof p, "%s/cache/data", tmpdir);
    assert_true(cr_excluder_reject_stat(e, p, &st));
    snprintf(p, sizeof p, "%s/cache/CACHEDIR.TAG", tmpdir); /* the tag itself stays */
    assert_false(cr_excluder_reject_stat(e, p, &st));
    snprintf(p, sizeof p, "%s/plain/data", tmpdir);
    assert_false(cr_excluder_reject_stat(e, p, &st));
    snprintf(p, sizeof p, "%s/marked/data", tmpdir);
    assert_true(cr_excluder_reject_stat(e, p, &st));
    snprintf(p, sizeof p, "%s/marked/.nobackup", tmpdir);
    assert_false(cr_excluder_reject_stat(e, p, &st));
    cr_excluder_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_clean),
        cmocka_unit_test(test_path_helpers),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_node_from_stat),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_exclude_file),
        cmocka_unit_test(test_tag_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
