/* backends/sftp_proto: repository strings and ssh command lines as restic
 * parses them, and the decoding of server messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "backends/sftp_proto.h"
#include "util/error.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static void assert_str_or_null(const char *want, const char *got)
{
    if (!want) assert_null(got);
    else {
        assert_non_null(got);
        assert_string_equal(want, got);
    }
}

static void test_locations(void **state)
{
    (void)state;
    /* after "sftp:"; expected user, host, port, path (restic's config tests) */
    static const struct {
        const char *loc, *user, *host, *port, *path;
    } cases[] = {
        {"//user@host/dir/subdir", "user", "host", NULL, "dir/subdir"},
        {"//host/dir/subdir", NULL, "host", NULL, "dir/subdir"},
        {"//host//dir/subdir", NULL, "host", NULL, "/dir/subdir"},
        {"//host:10022//dir/subdir", NULL, "host", "10022", "/dir/subdir"},
        {"//user@host:10022//dir/subdir", "user", "host", "10022", "/dir/subdir"},
        {"//user@host/dir/subdir/../other", "user", "host", NULL, "dir/other"},
        {"//user@host/dir///subdir", "user", "host", NULL, "dir/subdir"},
        {"//user@[::1]/dir", "user", "::1", NULL, "dir"},
        {"//user@[::1]:22/dir", "user", "::1", "22", "dir"},
        {"//us%40er:secret@host/d%20ir", "us@er", "host", NULL, "d ir"},
        {"//host/", NULL, "host", NULL, "."},
        {"user@host:/dir/subdir", "user", "host", NULL, "/dir/subdir"},
        {"user@domain@host:/dir/subdir", "user@domain", "host", NULL, "/dir/subdir"},
        {"host:../dir/subdir", NULL, "host", NULL, "../dir/subdir"},
        {"host:../../a/../b", NULL, "host", NULL, "../../b"},
        {"user@host:dir/subdir:suffix", "user", "host", NULL, "dir/subdir:suffix"},
        {"user@host:dir/subdir/../other", "user", "host", NULL, "dir/other"},
        {"user@host:dir///subdir", "user", "host", NULL, "dir/subdir"},
        {"host:/a/b/../../..", NULL, "host", NULL, "/"},
        {"host:", NULL, "host", NULL, "."},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        sftp_location l;
        int r = sftp_parse_location(cases[i].loc, &l);
        if (r != 0) fail_msg("%s: %s", cases[i].loc, cr_error_message());
        assert_str_or_null(cases[i].user, l.user);
        assert_str_or_null(cases[i].host, l.host);
        assert_str_or_null(cases[i].port, l.port);
        assert_str_or_null(cases[i].path, l.path);
        sftp_location_free(&l);
    }
    static const char *const bad[] = {"//host:dir", "//host", "hostonly", "host:~/repo", "//host/~x", "//ho%zzst/x"};
    for (size_t i = 0; i < LEN(bad); i++) {
        sftp_location l;
        assert_int_equal(sftp_parse_location(bad[i], &l), CR_E_USAGE);
    }
}

static void assert_argv(char **argv, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_non_null(argv[i]);
        assert_string_equal(want[i], argv[i]);
    }
    assert_null(argv[n]);
}

static void test_split(void **state)
{
    (void)state;
    char **v;
    assert_int_equal(sftp_split_command("  ssh -F \"/my config\"   host -s 'sftp' ", &v), 0);
    assert_argv(v, (const char *const[]){"ssh", "-F", "/my config", "host", "-s", "sftp"}, 6);
    sftp_argv_free(v);
    /* a quote ends a word, as does a backslash outside quotes (restic) */
    assert_int_equal(sftp_split_command("a\"b c\"d e\\f", &v), 0);
    assert_argv(v, (const char *const[]){"a", "b c", "d", "e", "f"}, 5);
    sftp_argv_free(v);
    assert_int_equal(sftp_split_command("\"it's\"", &v), 0);
    assert_argv(v, (const char *const[]){"it's"}, 1);
    sftp_argv_free(v);
    assert_int_equal(sftp_split_command("ssh 'host", &v), CR_E_USAGE);
    assert_int_equal(sftp_split_command("ssh \"host", &v), CR_E_USAGE);
    assert_int_equal(sftp_split_command("   ", &v), CR_E_USAGE);
    assert_int_equal(sftp_split_command("", &v), CR_E_USAGE);
}

static void test_ssh_argv(void **state)
{
    (void)state;
    sftp_location l;
    char **v;
    assert_int_equal(sftp_parse_location("//user@host:2222//srv/repo", &l), 0);
    assert_int_equal(sftp_ssh_argv(&l, NULL, NULL, &v), 0);
    assert_argv(v, (const char *const[]){"ssh", "host", "-p", "2222", "-l", "user", "-s", "sftp"}, 8);
    sftp_argv_free(v);
    assert_int_equal(sftp_ssh_argv(&l, NULL, "-F cfg -i 'my key'", &v), 0);
    assert_argv(v, (const char *const[]){"ssh", "host", "-p", "2222", "-l", "user", "-F", "cfg", "-i", "my key", "-s", "sftp"}, 12);
    sftp_argv_free(v);
    assert_int_equal(sftp_ssh_argv(&l, "plink -batch x", NULL, &v), 0);
    assert_argv(v, (const char *const[]){"plink", "-batch", "x"}, 3);
    sftp_argv_free(v);
    assert_int_equal(sftp_ssh_argv(&l, "ssh x", "-v", &v), CR_E_USAGE);
    sftp_location_free(&l);
    assert_int_equal(sftp_parse_location("host:repo", &l), 0);
    assert_int_equal(sftp_ssh_argv(&l, NULL, NULL, &v), 0);
    assert_argv(v, (const char *const[]){"ssh", "host", "-s", "sftp"}, 4);
    sftp_argv_free(v);
    sftp_location_free(&l);
}

static void test_messages(void **state)
{
    (void)state;
    /* VERSION 3 with two extensions */
    static const uint8_t version[] = {2, 0, 0, 0, 3, 0, 0, 0, 24, 'p', 'o', 's', 'i', 'x', '-', 'r', 'e', 'n', 'a', 'm', 'e', '@',
                                      'o', 'p', 'e', 'n', 's', 's', 'h', '.', 'c', 'o', 'm', 0, 0, 0, 1, '1'};
    sftp_version v;
    assert_int_equal(sftp_parse_version(version, sizeof version, &v), 0);
    assert_int_equal(v.version, 3);
    assert_true(v.posix_rename);
    assert_false(v.limits);
    assert_int_equal(sftp_parse_version(version, sizeof version - 1, &v), CR_E_FORMAT);
    /* STATUS with and without its text */
    static const uint8_t status[] = {101, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 4, 'g', 'o', 'n', 'e', 0, 0, 0, 0};
    sftp_reply r;
    assert_int_equal(sftp_parse_reply(status, sizeof status, &r), 0);
    assert_int_equal(r.id, 9);
    assert_int_equal(r.status, SFTP_FX_NO_SUCH_FILE);
    assert_int_equal(r.msg_len, 4);
    assert_memory_equal(r.msg, "gone", 4);
    assert_int_equal(sftp_parse_reply(status, 9, &r), 0);
    assert_int_equal(r.msg_len, 0);
    assert_int_equal(sftp_parse_reply(status, 7, &r), CR_E_FORMAT);
    /* NAME with one entry: name, long name, attrs (size, permissions) */
    static const uint8_t name[] = {104, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2, 'a', 'b', 0, 0, 0, 0, 0, 0, 0, 5,
                                   0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x81, 0x00};
    assert_int_equal(sftp_parse_reply(name, sizeof name, &r), 0);
    sftp_name_iter it;
    sftp_name_entry e;
    sftp_name_iter_init(&it, &r);
    assert_int_equal(sftp_name_next(&it, &e), 1);
    assert_int_equal(e.name_len, 2);
    assert_int_equal(e.attrs.size, 256);
    assert_int_equal(e.attrs.permissions, 0100400);
    assert_int_equal(sftp_name_next(&it, &e), 0);
    assert_int_equal(sftp_parse_reply(name, sizeof name - 1, &r), 0); /* the entries are read lazily */
    sftp_name_iter_init(&it, &r);
    assert_int_equal(sftp_name_next(&it, &e), CR_E_FORMAT);
    /* a HANDLE must be 1..256 bytes */
    static const uint8_t empty_handle[] = {102, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(sftp_parse_reply(empty_handle, sizeof empty_handle, &r), CR_E_FORMAT);
    cr_error_clear();
}

static void test_encoding(void **state)
{
    (void)state;
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(sftp_encode_read(&b, 7, (sftp_str){"h1", 2}, 0x100000002ull, 32768), 0);
    static const uint8_t want[] = {0, 0, 0, 23, 5, 0, 0, 0, 7, 0, 0, 0, 2, 'h', '1', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0x80, 0};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    cr_buf_reset(&b);
    /* WRITE: the length counts the data that follows outside the buffer */
    assert_int_equal(sftp_encode_write_header(&b, 1, (sftp_str){"h", 1}, 0, 1000), 0);
    assert_int_equal(b.len, 4 + 1 + 4 + 5 + 8 + 4);
    assert_int_equal(b.data[2] * 256 + b.data[3], b.len - 4 + 1000);
    cr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locations), cmocka_unit_test(test_split), cmocka_unit_test(test_ssh_argv),
        cmocka_unit_test(test_messages), cmocka_unit_test(test_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
