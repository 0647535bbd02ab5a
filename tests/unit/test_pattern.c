/* Include/exclude patterns: Go filepath.Match glob behaviour per component,
 * restic's path rules (cleaning, anchoring, "**", parents), include child
 * matching, negation, case folding and pattern validation.  Expected
 * results were confirmed against restic 0.14's restore --include/--exclude. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util/error.h"
#include "util/pattern.h"

enum { NO = 0, YES = 1, BAD = 2 };

static int match1(const char *pat, bool fold, const char *path)
{
    const char *pats[] = {pat};
    cr_patterns *p = NULL;
    int r = cr_patterns_new(pats, 1, fold, &p);
    if (r < 0) {
        assert_int_equal(r, CR_E_USAGE);
        return BAD;
    }
    bool m = cr_patterns_match(p, path);
    cr_patterns_free(p);
    return m ? YES : NO;
}

/* One component: a relative single-component pattern against "/name" is
 * exactly Go's filepath.Match(pattern, name). */
static void test_glob_component(void **state)
{
    (void)state;
    static const struct {
        const char *pat, *name;
        int want;
    } cases[] = {
        {"abc", "abc", YES}, {"*", "abc", YES}, {"*c", "abc", YES}, {"a*", "a", YES}, {"a*", "abc", YES},
        {"a*b*c*d*e*", "axbxcxdxe", YES}, {"a*b*c*d*e*", "axbxcxdxexxx", YES},
        {"a*b?c*x", "abxbbxdbxebxczzx", YES}, {"a*b?c*x", "abxbbxdbxebxczzy", NO},
        {"ab[c]", "abc", YES}, {"ab[b-d]", "abc", YES}, {"ab[e-g]", "abc", NO},
        {"ab[^c]", "abc", NO}, {"ab[^b-d]", "abc", NO}, {"ab[^e-g]", "abc", YES},
        {"a\\*b", "a*b", YES}, {"a\\*b", "ab", NO},
        {"a?b", "a\xe2\x98\xba" "b", YES}, {"a[^a]b", "a\xe2\x98\xba" "b", YES},
        {"a???b", "a\xe2\x98\xba" "b", NO}, {"a[^a][^a][^a]b", "a\xe2\x98\xba" "b", NO},
        {"[a-\xce\xb6]*", "\xce\xb1", YES}, {"*[a-\xce\xb6]", "A", NO},
        {"[\\]a]", "]", YES}, {"[\\-]", "-", YES}, {"[x\\-]", "x", YES}, {"[x\\-]", "-", YES},
        {"[x\\-]", "z", NO}, {"[\\-x]", "x", YES}, {"[\\-x]", "-", YES}, {"[\\-x]", "a", NO},
        {"[]a]", "]", BAD}, {"[-]", "-", BAD}, {"[x-]", "x", BAD}, {"[-x]", "x", BAD},
        {"\\", "a", BAD}, {"[a-b-c]", "a", BAD}, {"[", "a", BAD}, {"[^", "a", BAD},
        {"[^bc", "a", BAD}, {"a[", "a", BAD}, {"a[", "ab", BAD}, {"*x", "xxx", YES},
        {"[!a]", "a", YES},          /* Go negates with '^' only: '!' is a member */
        {"[!a]", "b", NO},
        {"[*]", "*", YES}, {"[[]", "[", YES}, {"x[*]y*", "x*yz", YES},
        {"?", "\xff", YES},           /* an invalid byte is one rune */
        {"??", "\xc3\xa9", NO},        /* a valid two-byte rune is one */
        {"a\\", "a", BAD}, {"*\\", "x", BAD}, {"[a", "a", BAD},
        {"h.*", "h.TXT", YES}, {"*.txt", "h.TXT", NO}, {"q.?", "q.c", YES},
        {"*a*b", "xaxbxb", YES}, {"*ab", "aab", YES}, {"a*a", "a", NO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "/%s", cases[i].name);
        int got = match1(cases[i].pat, false, path);
        if (got != cases[i].want) fail_msg("pattern %s vs %s: got %d want %d", cases[i].pat, cases[i].name, got, cases[i].want);
    }
}

static void test_paths(void **state)
{
    (void)state;
    static const struct {
        const char *pat, *path;
        int want;
    } cases[] = {
        {"*.go", "/foo/bar/test.go", YES}, {"*.c", "/foo/bar/test.go", NO}, {"*", "/foo/bar/test.go", YES},
        {"foo*", "/foo/bar/test.go", YES}, {"bar", "/foo/bar/test.go", YES}, {"/bar", "/foo/bar/test.go", NO},
        {"bar/*.go", "/foo/bar/test.go", YES}, {"baz/*.go", "/foo/bar/test.go", NO},
        {"/foo/bar/test.go", "/foo/bar/test.go", YES}, {"/foo/bar/test.go", "/foo/bar/test.go/x", YES},
        {"/foo/bar/test.go/x", "/foo/bar/test.go", NO},
        {"/foo/*/test.go", "/foo/bar/test.go", YES}, {"/foo/*/test.go", "/foo/bar/baz/test.go", NO},
        {"/foo/**", "/foo/bar/test.go", YES}, {"/foo/**", "/foo", YES}, {"/foo/**", "/foox", NO},
        {"**/test.go", "/foo/bar/test.go", YES}, {"**/test.go", "/test.go", YES},
        {"/foo/**/test.go", "/foo/a/b/c/test.go", YES}, {"/foo/**/test.go", "/foo/test.go", YES},
        {"/foo/**/test.go", "/bar/a/test.go", NO}, {"/foo/**/x", "/foo/a/x/y", YES},
        {"foo/**/test.go", "/a/foo/test.go", YES}, {"foo/**/**/test.go", "/a/foo/b/test.go", YES},
        {"**", "/a", YES}, {"**/**", "/a", YES}, {"/**", "/a/b", YES},
        {"/", "/anything/at/all", YES}, {".", "/a/b", NO}, {"a/..", "/a/b", NO},
        {"/src/./a/../d", "/src/d/x", YES}, {"/src/./a/../d", "/src/a", NO},
        {"a/", "/src/a/f", YES}, {"//src//a", "/src/a/b", YES}, {"/../src", "/src/a", YES},
        {"../src", "/src", NO}, {"src/a", "/src/a/b/c", YES}, {"a/b", "/src/a/b/c", YES},
        {"/a", "/src/a", NO}, {"/src/*/b", "/src/a/b/g", YES}, {"[a-c]", "/src/a", YES},
        {"x/\\[br\\]", "/src/x/[br]", YES}, {"x/star\\*", "/src/x/star*", YES}, {"x/star\\*", "/src/x/starx", NO},
        {"**/c", "/src/a/b/c/h", YES}, {"b/**/h.TXT", "/src/a/b/c/h.TXT", YES},
        {"src/**/g.txt", "/src/a/b/g.txt", YES}, {"src/a/**/c/**", "/src/a/b/c/h.TXT", YES},
        {"src/a/**/c/**", "/src/a/b/g.txt", NO}, {"/src/a/b/c/h.TXT/more", "/src/a/b/c/h.TXT", NO},
        {"*/b", "/a/b", YES}, {"*", "/", YES},
        /* restic counts every not yet expanded "**" as one component, so
         * with two of them a path can be "too short" for the pattern */
        {"/src/**/b/**", "/src/a/b", NO}, {"/src/**/b/**", "/src/a/b/g", YES}, {"/src/**/b", "/src/a/b", YES},
        {"**/**/**/|*", "/|*", NO}, {"**/**/**/|*", "/a/b/|*", YES}, {"a/**/**/b", "/a/b", YES},
        {"a/**/**/b", "/a/b/c", YES}, {"a/**/**/b", "/x/a/b", YES},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = match1(cases[i].pat, false, cases[i].path);
        if (got != cases[i].want) fail_msg("pattern %s vs %s: got %d want %d", cases[i].pat, cases[i].path, got, cases[i].want);
    }
}

static void include_check(const char *const *pats, size_t n, const char *path, bool want_m, bool want_c)
{
    cr_patterns *p = NULL;
    assert_int_equal(cr_patterns_new(pats, n, false, &p), 0);
    bool m = !want_m, c = !want_c;
    cr_patterns_match_include(p, path, &m, &c);
    if (m != want_m || c != want_c)
        fail_msg("%s (first of %zu) vs %s: matched %d child %d, want %d %d", pats[0], n, path, m, c, want_m, want_c);
    cr_patterns_free(p);
}

static void test_include_children(void **state)
{
    (void)state;
    const char *abs[] = {"/foo/bar"};
    include_check(abs, 1, "/foo", false, true);
    include_check(abs, 1, "/foo/bar", true, true);
    include_check(abs, 1, "/foo/bar/baz", true, true);
    include_check(abs, 1, "/baz", false, false);
    include_check(abs, 1, "/foo/baz", false, false);
    const char *glob[] = {"/foo/b*"};
    include_check(glob, 1, "/foo", false, true);
    include_check(glob, 1, "/fox", false, false);
    const char *dstar[] = {"/foo/**/x"};
    include_check(dstar, 1, "/foo/a/b", false, true);
    include_check(dstar, 1, "/foo/a/x", true, true);
    include_check(dstar, 1, "/bar/a", false, false);
    const char *rel[] = {"x"};
    include_check(rel, 1, "/any/where", false, true);
    include_check(rel, 1, "/any/x", true, true);
    const char *none[] = {""};
    include_check(none, 1, "/a", false, false); /* an empty pattern is ignored */
}

static void test_negation(void **state)
{
    (void)state;
    const char *pats[] = {"src/a/*", "!src/a/f.txt"};
    cr_patterns *p = NULL;
    assert_int_equal(cr_patterns_new(pats, 2, false, &p), 0);
    assert_true(cr_patterns_match(p, "/src/a/b"));
    assert_false(cr_patterns_match(p, "/src/a/f.txt"));
    assert_false(cr_patterns_match(p, "/src/d"));
    cr_patterns_free(p);

    /* A negation only removes what came before it. */
    const char *order[] = {"!*.txt", "*"};
    assert_int_equal(cr_patterns_new(order, 2, false, &p), 0);
    assert_true(cr_patterns_match(p, "/a.txt"));
    cr_patterns_free(p);

    const char *inc[] = {"/src", "!/src/secret"};
    include_check(inc, 2, "/src/secret", false, false);
    include_check(inc, 2, "/src/public", true, true);
}

static void test_case_folding(void **state)
{
    (void)state;
    assert_int_equal(match1("*.TXT", true, "/a/B.txt"), YES);
    assert_int_equal(match1("*.txt", true, "/a/B.TXT"), YES);
    assert_int_equal(match1("*.txt", false, "/a/B.TXT"), NO);
    assert_int_equal(match1("/SRC/A", true, "/src/a/x"), YES);
    assert_int_equal(match1("\xc3\x84\xc3\x96", true, "/\xc3\xa4\xc3\xb6"), YES);             /* ÄÖ ~ äö */
    assert_int_equal(match1("\xce\xa3*", true, "/\xcf\x83\xce\xbf"), YES);                      /* Σ* ~ σο */
    assert_int_equal(match1("[A-C]", true, "/b"), YES);
    /* Invalid bytes fold to U+FFFD on both sides, as Go's ToLower does. */
    assert_int_equal(match1("x\xff", true, "/X\xfe"), YES);
    assert_int_equal(match1("x\xff", false, "/x\xfe"), NO);
}

static void test_invalid(void **state)
{
    (void)state;
    const char *pats[] = {"ok", "[", "a\\", "fine/*", "![]a]"};
    cr_patterns *p = NULL;
    assert_int_equal(cr_patterns_new(pats, 5, false, &p), CR_E_USAGE);
    assert_null(p);
    assert_string_equal(cr_error_message(), "invalid pattern(s) provided:\n[\na\\\n![]a]");
    /* Checked on the pattern as given, also for case-insensitive lists. */
    const char *ci[] = {"[Z-a]", "[\xff]"};
    assert_int_equal(cr_patterns_new(ci, 1, true, &p), 0);
    cr_patterns_free(p);
    assert_int_equal(cr_patterns_new(ci + 1, 1, true, &p), CR_E_USAGE);
    assert_int_equal(cr_patterns_new(NULL, 0, false, &p), 0);
    assert_int_equal(cr_patterns_count(p), 0);
    assert_false(cr_patterns_match(p, "/a"));
    cr_patterns_free(p);
}

static void test_counts_and_empty_path(void **state)
{
    (void)state;
    const char *pats[] = {"", "a", "", "!b"};
    cr_patterns *p = NULL;
    assert_int_equal(cr_patterns_new(pats, 4, false, &p), 0);
    assert_int_equal(cr_patterns_count(p), 2);
    assert_false(cr_patterns_match(p, ""));
    cr_patterns_free(p);
}

/* Deep paths and many "**" must not explode (the naive expansion is
 * exponential in the number of "**"). */
static void test_deep_paths_are_fast(void **state)
{
    (void)state;
    char *path = malloc(3 * 5000 + 1);
    char *q = path;
    for (int i = 0; i < 400; i++) q += sprintf(q, "/%c", 'a' + i % 3);
    const char *pats[] = {"**/a/**/b/**/c/**/a/**/b/**/c/**/x", "/**/a/**/b/**/c/**/z", "a/*/c/*/b/*/q"};
    cr_patterns *p = NULL;
    assert_int_equal(cr_patterns_new(pats, 3, false, &p), 0);
    clock_t t0 = clock();
    for (int i = 0; i < 20; i++) assert_false(cr_patterns_match(p, path));
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 5.0);
    cr_patterns_free(p);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob_component),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_include_children),
        cmocka_unit_test(test_negation),
        cmocka_unit_test(test_case_folding),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_counts_and_empty_path),
        cmocka_unit_test(test_deep_paths_are_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
