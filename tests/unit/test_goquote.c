/* util/goquote: Go strconv.Quote / Unquote, unicode.IsPrint, UTF-8 rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/goquote.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- UTF-8 ---------------------------------------------------------------- */

static void test_utf8_decode(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
        int len;
        uint32_t rune;
    } cases[] = {
        {"\x00", 1, 1, 0},           {"\x7f", 1, 1, 0x7f},
        {"\xc2\x80", 2, 2, 0x80},    {"\xdf\xbf", 2, 2, 0x7ff},
        {"\xe0\xa0\x80", 3, 3, 0x800}, {"\xed\x9f\xbf", 3, 3, 0xd7ff},
        {"\xee\x80\x80", 3, 3, 0xe000}, {"\xef\xbf\xbf", 3, 3, 0xffff},
        {"\xf0\x90\x80\x80", 4, 4, 0x10000}, {"\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff},
        {"\xc3\xa9xyz", 4, 2, 0xe9},
        /* invalid */
        {"", 0, 0, 0},               {"\x80", 1, 0, 0},          {"\xbf", 1, 0, 0},
        {"\xc0\x80", 2, 0, 0},       {"\xc1\xbf", 2, 0, 0},      {"\xc2", 1, 0, 0},
        {"\xc2\x41", 2, 0, 0},       {"\xc2\xc0", 2, 0, 0},      {"\xe0\x9f\xbf", 3, 0, 0},
        {"\xe2\x82", 2, 0, 0},       {"\xed\xa0\x80", 3, 0, 0},  {"\xed\xbf\xbf", 3, 0, 0},
        {"\xe2\x82\x41", 3, 0, 0},   {"\xf0\x8f\xbf\xbf", 4, 0, 0}, {"\xf4\x90\x80\x80", 4, 0, 0},
        {"\xf5\x80\x80\x80", 4, 0, 0}, {"\xff", 1, 0, 0},        {"\xf0\x9f\x98", 3, 0, 0},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        uint32_t r = 0xdeadbeef;
        int len = cr_utf8_decode((const uint8_t *)cases[i].s, cases[i].n, &r);
        if (len != cases[i].len) fail_msg("case %zu: length %d, want %d", i, len, cases[i].len);
        if (len) assert_int_equal(r, cases[i].rune);
    }
    /* Every scalar value encodes and decodes back. */
    for (uint32_t r = 0; r <= 0x10ffff; r++) {
        if (r >= 0xd800 && r <= 0xdfff) continue;
        uint8_t buf[4];
        uint32_t back;
        int n = cr_utf8_encode(r, buf);
        assert_int_equal(n, r < 0x80 ? 1 : r < 0x800 ? 2 : r < 0x10000 ? 3 : 4);
        assert_int_equal(cr_utf8_decode(buf, (size_t)n, &back), n);
        assert_int_equal(back, r);
        assert_int_equal(cr_utf8_decode(buf, (size_t)n - 1, &back), 0); /* truncated */
    }
}

/* ---- IsPrint -------------------------------------------------------------- */

static void test_isprint(void **state)
{
    (void)state;
    static const uint32_t printable[] = {
        ' ', '!', 'a', '~', 0xa1, 0xac, 0xae, 0xe9, 0xff, 0x300 /* combining grave, Mn */,
        0x377, 0x20ac, 0x2603, 0x4e00, 0xac00, 0xfffd, 0x10000, 0x1f600, 0x20000, 0xe0100 /* Mn */,
        0x1fad6 /* U+1FAD6, Unicode 13.0 */, 0x0e3f, 0x2c2e,
    };
    static const uint32_t not_printable[] = {
        0, 0x1f, 0x7f, 0x80, 0x9f, 0xa0 /* NBSP, Zs */, 0xad /* soft hyphen, Cf */, 0x378 /* Cn */,
        0x1680 /* Ogham space, Zs */, 0x2000, 0x200b, 0x200d, 0x2028, 0x2029, 0x202f, 0x3000,
        0xd800, 0xdfff, 0xe000 /* Co */, 0xf8ff, 0xfeff, 0xfffe, 0xffff, 0xe0001, 0xf0000,
        0x10fffd, 0x10ffff, 0x110000, 0xffffffff,
        /* first assigned in Unicode 14.0: Go 1.19 (Unicode 13) does not know them */
        0x061d, 0x0870, 0x1fae0, 0x2c2f, 0x1e290,
    };
    for (size_t i = 0; i < LEN(printable); i++)
        if (!cr_go_isprint(printable[i])) fail_msg("U+%04X should be printable", printable[i]);
    for (size_t i = 0; i < LEN(not_printable); i++)
        if (cr_go_isprint(not_printable[i])) fail_msg("U+%04X should not be printable", not_printable[i]);
    /* Latin-1 as Go's fast path states it. */
    for (uint32_t r = 0; r < 0x100; r++)
        assert_int_equal(cr_go_isprint(r), (r >= 0x20 && r <= 0x7e) || (r >= 0xa1 && r != 0xad));
    size_t count = 0;
    for (uint32_t r = 0; r <= 0x10ffff; r++) count += cr_go_isprint(r);
    print_message("      %zu printable code points\n", count);
    assert_true(count > 130000 && count < 150000);
}

/* ---- Quote ---------------------------------------------------------------- */

typedef struct {
    const char *raw;
    size_t rawlen;
    const char *quoted;
} qcase;

#define Q(raw, quoted) {raw, sizeof(raw) - 1, quoted}

static const qcase quote_cases[] = {
    Q("", ""),
    Q("plain name.txt", "plain name.txt"),
    Q("a\"b", "a\\\"b"),
    Q("a\\b", "a\\\\b"),
    Q("'", "'"),
    Q("`", "`"),
    Q("\a\b\f\n\r\t\v", "\\a\\b\\f\\n\\r\\t\\v"),
    Q("\x00", "\\x00"),
    Q("\x01\x1f\x1b", "\\x01\\x1f\\x1b"),
    Q("\x7f", "\\x7f"),
    Q("ctl\x01tab\there", "ctl\\x01tab\\there"),
    Q("latin1-\xe9\xff.bin", "latin1-\\xe9\\xff.bin"),
    Q("\x80", "\\x80"),
    Q("\xe2\x82", "\\xe2\\x82"),
    Q("\xed\xa0\x80", "\\xed\\xa0\\x80"),
    Q("\xc0\xaf", "\\xc0\\xaf"),
    Q("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"),
    Q("\xc2\x80", "\\u0080"),
    Q("\xc2\x9f", "\\u009f"),
    Q("\xc2\xa0", "\\u00a0"),
    Q("\xc2\xad", "\\u00ad"),
    Q("\xe2\x80\x8d", "\\u200d"),
    Q("\xe2\x80\xa8", "\\u2028"),
    Q("\xe3\x80\x80", "\\u3000"),
    Q("\xef\xbb\xbf", "\\ufeff"),
    Q("\xef\xbf\xbf", "\\uffff"),
    Q("\xee\x80\x80", "\\ue000"),
    Q("\xef\xbf\xbd", "\xef\xbf\xbd"),
    Q("\xf3\xa0\x80\x81", "\\U000e0001"),
    Q("\xf4\x8f\xbf\xbf", "\\U0010ffff"),
    Q("\xf0\x9f\xab\xa0", "\\U0001fae0"), /* Unicode 14.0: Go 1.19 escapes it */
    Q("\xc3\xbc\xe2\x82\xac\xe2\x98\x83\xf0\x9f\x98\x80", "\xc3\xbc\xe2\x82\xac\xe2\x98\x83\xf0\x9f\x98\x80"),
    Q("name with spaces & \"quotes\" \\ backslash <tag> \xc3\xbc\xe2\x82\xac\xe2\x98\x83.txt",
      "name with spaces & \\\"quotes\\\" \\\\ backslash <tag> \xc3\xbc\xe2\x82\xac\xe2\x98\x83.txt"),
    Q("e\xcc\x81", "e\xcc\x81"), /* combining mark stays */
};

static void expect_unquote(const char *quoted, size_t n, const void *raw, size_t rawlen)
{
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_buf_puts(&b, "pre"), 0);
    if (cr_gounquote(&b, quoted, n) != 0) fail_msg("unquote refused '%.*s': %s", (int)n, quoted, cr_error_message());
    assert_int_equal(b.len, rawlen + 3);
    assert_memory_equal(b.data, "pre", 3);
    if (rawlen) assert_memory_equal(b.data + 3, raw, rawlen);
    cr_buf_free(&b);
}

static void test_quote(void **state)
{
    (void)state;
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_goquote(&b, NULL, 0), 0);
    assert_int_equal(cr_gounquote(&b, NULL, 0), 0);
    assert_int_equal(b.len, 0);
    for (size_t i = 0; i < LEN(quote_cases); i++) {
        const qcase *c = &quote_cases[i];
        cr_buf_reset(&b);
        assert_int_equal(cr_buf_puts(&b, ">"), 0);
        assert_int_equal(cr_goquote(&b, c->raw, c->rawlen), 0);
        if (b.len != strlen(c->quoted) + 1 || memcmp(b.data + 1, c->quoted, b.len - 1) != 0)
            fail_msg("quote case %zu: got '%.*s' want '%s'", i, (int)b.len - 1, (char *)b.data + 1, c->quoted);
        expect_unquote(c->quoted, strlen(c->quoted), c->raw, c->rawlen);
    }
    cr_buf_free(&b);
}

/* ---- Unquote -------------------------------------------------------------- */

#define U(quoted, raw) expect_unquote(quoted, sizeof(quoted) - 1, raw, sizeof(raw) - 1)

static void test_unquote_accepts(void **state)
{
    (void)state;
    U("", "");
    U("\\x41\\x4a\\x4A", "AJJ");
    U("\\xff\\x00", "\xff\x00");
    U("\\101\\000\\377\\177", "A\0\xff\x7f");
    U("\\u0041\\u00e9\\u00E9", "A\xc3\xa9\xc3\xa9");
    U("\\uD7FF\\uE000\\uffff", "\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf");
    U("\\U0001F600\\U0010FFFF\\U00000041", "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf" "A");
    U("\\a\\b\\f\\n\\r\\t\\v\\\\\\\"", "\a\b\f\n\r\t\v\\\"");
    U("raw\x01\r\t\x7f", "raw\x01\r\t\x7f"); /* raw controls other than newline */
    U("'single'", "'single'");
    U("\xc3\xbc\xe2\x82\xac", "\xc3\xbc\xe2\x82\xac");
    /* Raw invalid UTF-8: Go substitutes U+FFFD per byte, with or without escapes. */
    U("\xff", "\xef\xbf\xbd");
    U("a\xe9z", "a\xef\xbf\xbdz");
    U("\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd");
    U("\xff\\n", "\xef\xbf\xbd\n");
    U("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

static void expect_unquote_bad(const char *s, size_t n)
{
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_buf_puts(&b, "keep"), 0);
    int r = cr_gounquote(&b, s, n);
    if (r != CR_E_FORMAT) fail_msg("unquote accepted '%.*s'", (int)n, s);
    assert_int_equal(b.len, 4); /* restored */
    cr_buf_free(&b);
}

static void test_unquote_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "\"", "a\"b", "abc\"", "\n", "a\nb", "\\", "abc\\", "\\q", "\\'", "\\e", "\\ ", "\\N", "\\8",
        "\\x", "\\x4", "\\x4g", "\\xg4", "\\u", "\\u12", "\\u123", "\\u123g", "\\ud800", "\\uDBFF",
        "\\udc00", "\\udfff", "\\ud83d\\ude00", "\\U0000D800", "\\U00110000", "\\UFFFFFFFF",
        "\\U0001F60", "\\0", "\\00", "\\09", "\\400", "\\777", "\\38", "\\\n", "\\\"\"", "ok\\x41\\",
    };
    for (size_t i = 0; i < LEN(bad); i++) expect_unquote_bad(bad[i], strlen(bad[i]));
}

/* ---- round trips ---------------------------------------------------------- */

static void round_trip(const uint8_t *s, size_t n, cr_buf *q, cr_buf *u)
{
    cr_buf_reset(q);
    cr_buf_reset(u);
    assert_int_equal(cr_goquote(q, s, n), 0);
    for (size_t i = 0; i < q->len; i++) { /* output is a valid Go string body */
        assert_true(q->data[i] != '\n');
        if (q->data[i] == '"') assert_true(i > 0 && q->data[i - 1] == '\\');
    }
    if (cr_gounquote(u, (char *)q->data, q->len) != 0) fail_msg("re-unquote failed: %s", cr_error_message());
    assert_int_equal(u->len, n);
    if (n) assert_memory_equal(u->data, s, n);
}

static void test_every_rune(void **state)
{
    (void)state;
    cr_buf q = CR_BUF_INIT, u = CR_BUF_INIT;
    for (uint32_t r = 0; r <= 0x10ffff; r++) {
        if (r >= 0xd800 && r <= 0xdfff) continue;
        uint8_t s[4];
        int n = cr_utf8_encode(r, s);
        round_trip(s, (size_t)n, &q, &u);
        /* The form matches the class of the rune. */
        if (r == '"' || r == '\\') assert_int_equal(q.len, 2);
        else if (cr_go_isprint(r)) assert_int_equal(q.len, (size_t)n);
        else if (r < 0x80) assert_true(q.len == 2 || q.len == 4);
        else assert_int_equal(q.len, r < 0x10000 ? 6 : 10);
    }
    for (unsigned c = 0; c < 256; c++) {
        uint8_t s = (uint8_t)c;
        round_trip(&s, 1, &q, &u);
        if (c >= 0x80) {
            char want[5] = {'\\', 'x', "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15], 0};
            assert_int_equal(q.len, 4);
            assert_memory_equal(q.data, want, 4);
        }
    }
    cr_buf_free(&q);
    cr_buf_free(&u);
}

static void test_random_round_trip(void **state)
{
    (void)state;
    cr_buf q = CR_BUF_INIT, u = CR_BUF_INIT;
    srand(12345);
    uint8_t s[48];
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = (size_t)(rand() % (int)sizeof s);
        for (size_t i = 0; i < n; i++) {
            int kind = rand() % 4;
            s[i] = kind == 0 ? (uint8_t)rand() : kind == 1 ? (uint8_t)(0x80 | rand() % 64)
                 : kind == 2 ? (uint8_t)(0xc2 + rand() % 51) : (uint8_t)(' ' + rand() % 95);
        }
        round_trip(s, n, &q, &u);
    }
    cr_buf_free(&q);
    cr_buf_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_decode),
        cmocka_unit_test(test_isprint),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_unquote_accepts),
        cmocka_unit_test(test_unquote_rejects),
        cmocka_unit_test(test_every_rune),
        cmocka_unit_test(test_random_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
