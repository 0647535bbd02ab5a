/* backends/optparse: shell-like splitting of rclone.program / rclone.args
 * and Go durations for rclone.timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "backends/optparse.h"
#include "util/error.h"

static void expect_words(const char *s, const char *const *want, size_t n)
{
    cr_strlist l = {0};
    assert_int_equal(cr_shell_split(s, &l), 0);
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n; i++) assert_string_equal(l.v[i], want[i]);
    if (n) assert_null(l.v[n]);
    cr_strlist_free(&l);
}

static void test_split(void **state)
{
    (void)state;
    expect_words("serve restic --stdio --b2-hard-delete",
                 (const char *const[]){"serve", "restic", "--stdio", "--b2-hard-delete"}, 4);
    expect_words("  a\t b \n", (const char *const[]){"a", "b"}, 2);
    expect_words("sh -c 'sleep 1; echo \"x\"'", (const char *const[]){"sh", "-c", "sleep 1; echo \"x\""}, 3);
    expect_words("\"a b\"c 'd'\"e\"", (const char *const[]){"a bc", "de"}, 2);
    expect_words("a\\ b \"q\\\"\" 'x\\y'", (const char *const[]){"a b", "q\"", "x\\y"}, 3);
    expect_words("", NULL, 0);
    expect_words("   ", NULL, 0);
    expect_words("''", (const char *const[]){""}, 1);
}

static void test_split_refused(void **state)
{
    (void)state;
    cr_strlist l = {0};
    assert_int_equal(cr_shell_split("serve 'restic", &l), CR_E_USAGE);
    assert_non_null(strstr(cr_error_message(), "unbalanced quotes"));
    cr_strlist_free(&l);
    assert_int_equal(cr_shell_split("a \"b", &l), CR_E_USAGE);
    cr_strlist_free(&l);
}

static void test_duration(void **state)
{
    (void)state;
    double s = -1;
    assert_int_equal(cr_parse_go_duration("1m", &s), 0);
    assert_true(s == 60);
    assert_int_equal(cr_parse_go_duration("1h30m", &s), 0);
    assert_true(s == 5400);
    assert_int_equal(cr_parse_go_duration("1.5s", &s), 0);
    assert_true(s == 1.5);
    assert_int_equal(cr_parse_go_duration("250ms", &s), 0);
    assert_true(s > 0.2499 && s < 0.2501);
    assert_int_equal(cr_parse_go_duration("0", &s), 0);
    assert_true(s == 0);
    assert_int_equal(cr_parse_go_duration("+2m3s", &s), 0);
    assert_true(s == 123);
    assert_int_equal(cr_parse_go_duration("10us", &s), 0);
    assert_int_equal(cr_parse_go_duration("10\xc2\xb5s", &s), 0);
    assert_int_equal(cr_parse_go_duration("2562047h", &s), 0); /* Go's largest whole hours */
    assert_true(s == 2562047.0 * 3600);
    const char *bad[] = {"", "1", "m", "-1s", "1x", "1e3s", "0x10s", ".s", "1m ", " 1m", "1..2s", "soon", "inf", "nan",
                         "2562048h", "9999999999999999999999us",
                         /* found by fuzz_optparse: 497 digits of microseconds were infinite seconds */
                         "66666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666660\xc2\xb5s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cr_parse_go_duration(bad[i], &s), CR_E_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_refused),
        cmocka_unit_test(test_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
