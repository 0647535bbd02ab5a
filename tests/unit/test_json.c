/* util/json: reader exactness, Go writer bytes, base64, and a byte-for-byte
 * re-encoding of every tree blob in the shared fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"
#include "util/goquote.h"
#include "util/gotime.h"
#include "util/id.h"
#include "util/json.h"

/* ---- helpers ------------------------------------------------------------ */

static cr_json_doc *parse_n(const char *s, size_t n)
{
    cr_json_doc *doc = NULL;
    int r = cr_json_parse(s, n, &doc);
    if (r < 0) fail_msg("parse failed: %s\ninput: %.*s", cr_error_message(), (int)(n > 200 ? 200 : n), s);
    return doc;
}

static cr_json_doc *parse_ok(const char *s)
{
    return parse_n(s, strlen(s));
}

static void expect_bad_n(const char *s, size_t n)
{
    cr_json_doc *doc = NULL;
    int r = cr_json_parse(s, n, &doc);
    if (r != CR_E_FORMAT) fail_msg("accepted bad JSON (r=%d): %.*s", r, (int)(n > 200 ? 200 : n), s);
    assert_null(doc);
    assert_non_null(strstr(cr_error_message(), "offset"));
}

static void expect_bad(const char *s)
{
    expect_bad_n(s, strlen(s));
}

/* The single string the document `[<s>]` or `<s>` decodes to. */
static void check_string(const char *json, const void *want, size_t wantlen)
{
    cr_json_doc *doc = parse_ok(json);
    const cr_json *v = cr_json_root(doc);
    assert_int_equal(v->type, CR_JSON_STRING);
    assert_int_equal(v->len, wantlen);
    assert_memory_equal(v->str, want, wantlen);
    assert_int_equal(v->str[v->len], 0);
    cr_json_free(doc);
}

static int read_whole(const char *path, cr_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -errno;
    char tmp[65536];
    size_t got;
    while ((got = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (cr_buf_append(out, tmp, got) < 0) {
            fclose(f);
            return -ENOMEM;
        }
    }
    fclose(f);
    return 0;
}

static void expect_written(const void *in, size_t n, const char *want)
{
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_json_put_string(&b, in, n), 0);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("writer: got %.*s want %s", (int)b.len, (char *)b.data, want);
    cr_buf_free(&b);
}

/* ---- reader ------------------------------------------------------------- */

static void test_scalars(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        cr_json_type type;
    } cases[] = {
        {"null", CR_JSON_NULL},   {" true ", CR_JSON_TRUE}, {"\n\t\rfalse\n", CR_JSON_FALSE},
        {"0", CR_JSON_NUMBER},    {"-0", CR_JSON_NUMBER},   {"1.5e-3", CR_JSON_NUMBER},
        {"\"\"", CR_JSON_STRING}, {"[]", CR_JSON_ARRAY},    {"{ }", CR_JSON_OBJECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_json_doc *doc = parse_ok(cases[i].json);
        const cr_json *v = cr_json_root(doc);
        assert_int_equal(v->type, cases[i].type);
        if (v->type != CR_JSON_NUMBER) assert_int_equal(v->len, 0);
        cr_json_free(doc);
    }
    cr_json_free(NULL);
}

static void test_structure(void **state)
{
    (void)state;
    cr_json_doc *doc = parse_ok(" { \"a\" : [ 1 , {\"b\":null} , [] , \"x\" ] , \"c\":{} } ");
    const cr_json *root = cr_json_root(doc);
    assert_int_equal(root->type, CR_JSON_OBJECT);
    assert_int_equal(root->len, 2);
    assert_null(root->key);
    const cr_json *a = cr_json_get(root, "a");
    assert_int_equal(a->type, CR_JSON_ARRAY);
    assert_int_equal(a->len, 4);
    assert_string_equal(a->key, "a");
    assert_int_equal(a->kids[0].type, CR_JSON_NUMBER);
    assert_string_equal(a->kids[0].str, "1");
    assert_null(a->kids[0].key);
    assert_true(cr_json_is_nullish(cr_json_get(&a->kids[1], "b")));
    assert_true(cr_json_is(cr_json_get(&a->kids[1], "b"), CR_JSON_NULL));
    assert_int_equal(a->kids[2].len, 0);
    assert_null(a->kids[2].kids);
    assert_string_equal(a->kids[3].str, "x");
    assert_int_equal(cr_json_get(root, "c")->type, CR_JSON_OBJECT);
    assert_null(cr_json_get(root, "missing"));
    assert_true(cr_json_is_nullish(cr_json_get(root, "missing")));
    assert_null(cr_json_get(a, "a")); /* not an object */
    assert_null(cr_json_get(NULL, "a"));
    cr_json_free(doc);
}

static void test_string_escapes(void **state)
{
    (void)state;
    check_string("\"plain\"", "plain", 5);
    check_string("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    check_string("\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", 6);
    check_string("\"a\\u0000b\"", "a\0b", 3);
    check_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);          /* pair */
    check_string("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4);          /* U+10FFFF */
    check_string("\"\\ud800\"", "\xef\xbf\xbd", 3);                    /* lone high */
    check_string("\"\\udc00x\"", "\xef\xbf\xbdx", 4);                  /* lone low */
    check_string("\"\\ud800\\u0041\"", "\xef\xbf\xbd" "A", 4);          /* high + non-low */
    check_string("\"\\ud800\\ud800\\udc00\"", "\xef\xbf\xbd\xf0\x90\x80\x80", 7);
    check_string("\"\\udc00\\ud800\"", "\xef\xbf\xbd\xef\xbf\xbd", 6);
    check_string("\"\\ud800\\n\"", "\xef\xbf\xbd\n", 4);
    /* Raw bytes: non-ASCII UTF-8, DEL and invalid UTF-8 are kept as is. */
    check_string("\"\xc3\xbc\xe2\x82\xac\x7f\"", "\xc3\xbc\xe2\x82\xac\x7f", 6);
    check_string("\"latin1-\xe9\xff\"", "latin1-\xe9\xff", 9);
    check_string("\"\xed\xa0\x80\"", "\xed\xa0\x80", 3);
    /* Long strings cross the 8-byte fast path at every alignment. */
    for (size_t len = 0; len < 40; len++) {
        char json[64], want[64];
        for (size_t i = 0; i < len; i++) want[i] = (char)('a' + i % 26);
        for (size_t esc = 0; esc <= len; esc++) {
            json[0] = '"';
            memcpy(json + 1, want, esc);
            memcpy(json + 1 + esc, "\\n", 2);
            memcpy(json + 3 + esc, want + esc, len - esc);
            json[3 + len] = '"';
            json[4 + len] = 0;
            char w[64];
            memcpy(w, want, esc);
            w[esc] = '\n';
            memcpy(w + esc + 1, want + esc, len - esc);
            check_string(json, w, len + 1);
        }
    }
}

static void test_bad_strings(void **state)
{
    (void)state;
    expect_bad("\"abc");
    expect_bad("\"abc\\");
    expect_bad("\"abc\\\"");
    expect_bad("\"\\x41\"");
    expect_bad("\"\\'\"");
    expect_bad("\"\\U00000041\"");
    expect_bad("\"\\a\"");
    expect_bad("\"\\u12\"");
    expect_bad("\"\\u12G4\"");
    expect_bad("\"\\ud800\\u12\"");
    expect_bad("\"tab\there\"");
    expect_bad("\"nl\nhere\"");
    expect_bad("\"\x01\"");
    expect_bad("\"\x1f\"");
    expect_bad_n("\"a\0b\"", 5);
    expect_bad("{\"a\x01\":1}");
    expect_bad("'single'");
}

static void test_numbers(void **state)
{
    (void)state;
    static const char *good[] = {"0", "-0", "7", "-7", "10", "1.0", "0.5", "-0.5", "1e5", "1E5",
                                 "1e+5", "1e-5", "1.25E-07", "123456789012345678901234567890"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_json_doc *doc = parse_ok(good[i]);
        assert_string_equal(cr_json_root(doc)->str, good[i]);
        assert_int_equal(cr_json_root(doc)->len, strlen(good[i]));
        cr_json_free(doc);
    }
    static const char *bad[] = {"01", "-01", "00", "1.", ".5", "-", "+1", "1e", "1e+", "1.e5", "0x10",
                                "Infinity", "NaN", "--1", "1.5.5", "[01]", "[1.]", "{\"a\":-}", "- 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_bad(bad[i]);
}

static const cr_json *num(cr_json_doc **doc, const char *text)
{
    *doc = parse_ok(text);
    return cr_json_root(*doc);
}

static void test_integer_conversion(void **state)
{
    (void)state;
    cr_json_doc *doc;
    uint64_t u;
    int64_t i;
    uint32_t u32;

    assert_int_equal(cr_json_u64(num(&doc, "18446744073709551615"), &u), 0);
    assert_true(u == UINT64_MAX);
    cr_json_free(doc);
    assert_int_equal(cr_json_u64(num(&doc, "18446744073709551616"), &u), CR_E_FORMAT);
    assert_int_equal(cr_json_i64(cr_json_root(doc), &i), CR_E_FORMAT);
    cr_json_free(doc);
    assert_int_equal(cr_json_u64(num(&doc, "99999999999999999999"), &u), CR_E_FORMAT);
    cr_json_free(doc);
    assert_int_equal(cr_json_u64(num(&doc, "9007199254740993"), &u), 0); /* 2^53 + 1: not a double */
    assert_true(u == 9007199254740993ULL);
    cr_json_free(doc);
    assert_int_equal(cr_json_u64(num(&doc, "0"), &u), 0);
    assert_true(u == 0);
    cr_json_free(doc);
    assert_int_equal(cr_json_u64(num(&doc, "-1"), &u), CR_E_FORMAT);
    cr_json_free(doc);
    assert_int_equal(cr_json_u64(num(&doc, "-0"), &u), CR_E_FORMAT); /* Go's ParseUint refuses it */
    assert_int_equal(cr_json_i64(cr_json_root(doc), &i), 0);
    assert_true(i == 0);
    cr_json_free(doc);
    static const char *not_int[] = {"1.0", "1e3", "1E0", "0.5", "\"12\"", "null", "true", "[1]"};
    for (size_t k = 0; k < sizeof not_int / sizeof not_int[0]; k++) {
        assert_int_equal(cr_json_u64(num(&doc, not_int[k]), &u), CR_E_FORMAT);
        assert_int_equal(cr_json_i64(cr_json_root(doc), &i), CR_E_FORMAT);
        assert_int_equal(cr_json_u32(cr_json_root(doc), &u32), CR_E_FORMAT);
        cr_json_free(doc);
    }
    assert_int_equal(cr_json_u64(NULL, &u), CR_E_FORMAT);
    assert_int_equal(cr_json_i64(NULL, &i), CR_E_FORMAT);
    assert_int_equal(cr_json_u32(NULL, &u32), CR_E_FORMAT);

    assert_int_equal(cr_json_i64(num(&doc, "9223372036854775807"), &i), 0);
    assert_true(i == INT64_MAX);
    cr_json_free(doc);
    assert_int_equal(cr_json_i64(num(&doc, "-9223372036854775808"), &i), 0);
    assert_true(i == INT64_MIN);
    cr_json_free(doc);
    assert_int_equal(cr_json_i64(num(&doc, "9223372036854775808"), &i), CR_E_FORMAT);
    assert_int_equal(cr_json_u64(cr_json_root(doc), &u), 0);
    cr_json_free(doc);
    assert_int_equal(cr_json_i64(num(&doc, "-9223372036854775809"), &i), CR_E_FORMAT);
    cr_json_free(doc);
    assert_int_equal(cr_json_i64(num(&doc, "-42"), &i), 0);
    assert_true(i == -42);
    cr_json_free(doc);

    assert_int_equal(cr_json_u32(num(&doc, "4294967295"), &u32), 0);
    assert_true(u32 == UINT32_MAX);
    cr_json_free(doc);
    assert_int_equal(cr_json_u32(num(&doc, "4294967296"), &u32), CR_E_FORMAT);
    cr_json_free(doc);
    assert_int_equal(cr_json_u32(num(&doc, "-1"), &u32), CR_E_FORMAT);
    cr_json_free(doc);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", " ", "\n", "[", "]", "{", "}", "[1,]", "[,1]", "[,]", "[1,,2]", "[1 2]", "[1]]", "[[1]",
        "{\"a\":1,}", "{,}", "{\"a\" 1}", "{\"a\":}", "{\"a\"}", "{a:1}", "{1:1}", "{\"a\":1 \"b\":2}",
        "{\"a\":1]", "[1}", "tru", "true1", "nul", "nulll", "falsey", "True", "{}x", "{} {}", "1 2",
        "\xef\xbb\xbf{}", "/* c */{}", "{}//", "\"a\"\"b\"", "[\"a\":1]", "\x00", "[1,\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_bad(bad[i]);
    expect_bad_n("{}\0", 3);
    expect_bad_n(NULL, 0);
    /* A truncated real document fails at every cut. */
    static const char doc[] = "{\"nodes\":[{\"name\":\"a\\u0026b\",\"size\":18446744073709551615,"
                              "\"content\":null,\"x\":[true,false,-1.5e3]}]}";
    for (size_t cut = 0; cut < sizeof doc - 1; cut++) expect_bad_n(doc, cut);
    cr_json_free(parse_n(doc, sizeof doc - 1));
}

static char *nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 1);
    memset(s, open, (size_t)depth);
    memset(s + depth, close, (size_t)depth);
    s[depth * 2] = 0;
    return s;
}

static void test_depth_limit(void **state)
{
    (void)state;
    char *s = nested(CR_JSON_MAX_DEPTH, '[', ']');
    cr_json_free(parse_ok(s));
    free(s);
    s = nested(CR_JSON_MAX_DEPTH + 1, '[', ']');
    expect_bad(s);
    free(s);
    s = nested(100000, '[', ']'); /* no stack exhaustion */
    expect_bad(s);
    free(s);
    /* Objects count too. */
    cr_buf b = CR_BUF_INIT;
    for (int i = 0; i < CR_JSON_MAX_DEPTH; i++) assert_int_equal(cr_buf_puts(&b, i % 2 ? "[" : "{\"k\":"), 0);
    assert_int_equal(cr_buf_puts(&b, "1"), 0);
    for (int i = CR_JSON_MAX_DEPTH - 1; i >= 0; i--) assert_int_equal(cr_buf_puts(&b, i % 2 ? "]" : "}"), 0);
    cr_json_free(parse_n((char *)b.data, b.len));
    cr_buf_reset(&b);
    assert_int_equal(cr_buf_puts(&b, "{\"k\":"), 0);
    for (int i = 0; i < CR_JSON_MAX_DEPTH; i++) assert_int_equal(cr_buf_puts(&b, "["), 0);
    for (int i = 0; i < CR_JSON_MAX_DEPTH; i++) assert_int_equal(cr_buf_puts(&b, "]"), 0);
    assert_int_equal(cr_buf_puts(&b, "}"), 0);
    expect_bad_n((char *)b.data, b.len);
    cr_buf_free(&b);
}

static void test_member_lookup(void **state)
{
    (void)state;
    cr_json_doc *doc;
    uint64_t u;
#define LOOKUP(json, name, want)                                                  \
    do {                                                                          \
        doc = parse_ok(json);                                                     \
        assert_int_equal(cr_json_u64(cr_json_get(cr_json_root(doc), name), &u), 0); \
        assert_true(u == (want));                                                 \
        cr_json_free(doc);                                                        \
    } while (0)
    LOOKUP("{\"name\":1}", "name", 1);
    LOOKUP("{\"NAME\":1}", "name", 1);
    LOOKUP("{\"Name\":1}", "NaMe", 1);
    LOOKUP("{\"name\":1,\"name\":2}", "name", 2);            /* later duplicate wins */
    LOOKUP("{\"name\":1,\"NAME\":2}", "name", 2);            /* ... even if only folded */
    LOOKUP("{\"NAME\":1,\"name\":2}", "name", 2);
    LOOKUP("{\"NAME\":1,\"name\":2,\"Name\":3,\"x\":4}", "name", 3);
    LOOKUP("{\"device_id\":7,\"DEVICE_ID\":8}", "device_id", 8);
    LOOKUP("{\"\\u212aey\":5}", "key", 5);                  /* KELVIN SIGN folds to k */
    LOOKUP("{\"\\u017fize\":6}", "size", 6);                 /* LONG S folds to s */
    LOOKUP("{\"\\u017f\\u017f\":6}", "SS", 6);
    LOOKUP("{\"\\u212a\":9,\"k\":10}", "K", 10);
    LOOKUP("{\"\":11}", "", 11);
#undef LOOKUP
    doc = parse_ok("{\"nam\":1,\"names\":2,\"n_me\":3,\"n\\u00e4me\":4,\"device-id\":5,\"\\u0130d\":6,\"\":7}");
    const cr_json *root = cr_json_get(cr_json_root(doc), "x");
    assert_null(root);
    assert_null(cr_json_get(cr_json_root(doc), "name"));
    assert_null(cr_json_get(cr_json_root(doc), "device_id"));
    assert_null(cr_json_get(cr_json_root(doc), "id")); /* U+0130 does not fold to i */
    cr_json_free(doc);
}

/* ---- writer ------------------------------------------------------------- */

static void test_writer_strings(void **state)
{
    (void)state;
    expect_written("", 0, "\"\"");
    expect_written(NULL, 0, "\"\"");
    expect_written("abc xyz", 7, "\"abc xyz\"");
    expect_written("<>&", 3, "\"\\u003c\\u003e\\u0026\"");
    expect_written("\"\\/", 3, "\"\\\"\\\\/\"");
    expect_written("\n\r\t", 3, "\"\\n\\r\\t\"");
    expect_written("\b\f\x01\x1f\x07\x0b", 6, "\"\\u0008\\u000c\\u0001\\u001f\\u0007\\u000b\"");
    expect_written("a\0b", 3, "\"a\\u0000b\"");
    expect_written("\x7f", 1, "\"\x7f\"");
    expect_written("\xe2\x80\xa8x\xe2\x80\xa9", 7, "\"\\u2028x\\u2029\"");
    expect_written("\xe2\x80\xa7\xe2\x80\xaa", 6, "\"\xe2\x80\xa7\xe2\x80\xaa\""); /* neighbours */
    expect_written("\xff", 1, "\"\\ufffd\"");
    expect_written("a\xe9z", 3, "\"a\\ufffdz\"");
    expect_written("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");                /* truncated */
    expect_written("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");     /* surrogate */
    expect_written("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");                /* overlong */
    expect_written("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    expect_written("\xef\xbf\xbd", 3, "\"\xef\xbf\xbd\"");              /* real U+FFFD */
    expect_written("\xc3\xbc\xe2\x82\xac\xe2\x98\x83\xf0\x9f\x98\x80", 12,
                   "\"\xc3\xbc\xe2\x82\xac\xe2\x98\x83\xf0\x9f\x98\x80\"");
    expect_written("\xc2\xa0\xe2\x80\x8d", 5, "\"\xc2\xa0\xe2\x80\x8d\""); /* JSON keeps non-printables */

    /* spec §12.4: quoted name, then JSON. */
    static const char raw[] = "name with spaces & \"quotes\" \\ backslash <tag> \xc3\xbc\xe2\x82\xac\xe2\x98\x83.txt";
    cr_buf q = CR_BUF_INIT, j = CR_BUF_INIT;
    assert_int_equal(cr_goquote(&q, raw, sizeof raw - 1), 0);
    assert_int_equal(cr_json_put_string(&j, q.data, q.len), 0);
    static const char want[] = "\"name with spaces \\u0026 \\\\\\\"quotes\\\\\\\" \\\\\\\\ backslash "
                               "\\u003ctag\\u003e \xc3\xbc\xe2\x82\xac\xe2\x98\x83.txt\"";
    assert_int_equal(j.len, sizeof want - 1);
    assert_memory_equal(j.data, want, j.len);
    cr_buf_reset(&j);
    assert_int_equal(cr_json_put_cstr(&j, "x<y"), 0);
    assert_int_equal(j.len, 10);
    assert_memory_equal(j.data, "\"x\\u003cy\"", 10);
    cr_buf_free(&q);
    cr_buf_free(&j);
}

/* Writer output parses back to the input for valid UTF-8. */
static void test_writer_round_trip(void **state)
{
    (void)state;
    srand(7);
    cr_buf b = CR_BUF_INIT;
    for (int iter = 0; iter < 2000; iter++) {
        uint8_t s[64];
        size_t n = (size_t)(rand() % 64), len = 0;
        while (len < n) { /* random runes, valid UTF-8 only */
            uint32_t r = (uint32_t)rand() % (rand() % 2 ? 0x80 : 0x110000);
            if (r >= 0xd800 && r <= 0xdfff) continue;
            uint8_t tmp[4];
            int k = cr_utf8_encode(r, tmp);
            if (len + (size_t)k > sizeof s) break;
            memcpy(s + len, tmp, (size_t)k);
            len += (size_t)k;
        }
        cr_buf_reset(&b);
        assert_int_equal(cr_json_put_string(&b, s, len), 0);
        assert_int_equal(cr_buf_nul(&b), 0); /* the output never holds a raw NUL */
        check_string((char *)b.data, s, len);
    }
    cr_buf_free(&b);
}

static void test_writer_integers(void **state)
{
    (void)state;
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_json_put_u64(&b, 0), 0);
    assert_int_equal(cr_buf_putc(&b, ','), 0);
    assert_int_equal(cr_json_put_u64(&b, UINT64_MAX), 0);
    assert_int_equal(cr_buf_putc(&b, ','), 0);
    assert_int_equal(cr_json_put_i64(&b, INT64_MIN), 0);
    assert_int_equal(cr_buf_putc(&b, ','), 0);
    assert_int_equal(cr_json_put_i64(&b, -1), 0);
    assert_int_equal(cr_buf_putc(&b, ','), 0);
    assert_int_equal(cr_json_put_i64(&b, INT64_MAX), 0);
    assert_int_equal(cr_buf_putc(&b, ','), 0);
    assert_int_equal(cr_json_put_u64(&b, 2147484141u), 0);
    static const char want[] = "0,18446744073709551615,-9223372036854775808,-1,9223372036854775807,2147484141";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, b.len);
    cr_buf_free(&b);
}

/* ---- base64 ------------------------------------------------------------- */

static void expect_b64(const void *raw, size_t n, const char *enc)
{
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_base64_encode(&b, raw, n), 0);
    assert_int_equal(b.len, strlen(enc));
    assert_memory_equal(b.data, enc, b.len);
    assert_int_equal(cr_base64_decode(&b, enc, strlen(enc)), 0);
    assert_int_equal(b.len, n);
    if (n) assert_memory_equal(b.data, raw, n);
    cr_buf_free(&b);
}

static void expect_b64_decodes(const char *enc, const char *raw)
{
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_buf_puts(&b, "garbage"), 0);
    if (cr_base64_decode(&b, enc, strlen(enc)) != 0) fail_msg("refused base64 '%s'", enc);
    assert_int_equal(b.len, strlen(raw));
    assert_memory_equal(b.data, raw, b.len);
    cr_buf_free(&b);
}

static void expect_b64_bad(const char *enc)
{
    cr_buf b = CR_BUF_INIT;
    if (cr_base64_decode(&b, enc, strlen(enc)) != CR_E_FORMAT) fail_msg("accepted base64 '%s'", enc);
    cr_buf_free(&b);
}

static void test_base64(void **state)
{
    (void)state;
    expect_b64("", 0, "");
    expect_b64("f", 1, "Zg==");
    expect_b64("fo", 2, "Zm8=");
    expect_b64("foo", 3, "Zm9v");
    expect_b64("foob", 4, "Zm9vYg==");
    expect_b64("fooba", 5, "Zm9vYmE=");
    expect_b64("foobar", 6, "Zm9vYmFy");
    expect_b64("hello\0world\xff", 12, "aGVsbG8Ad29ybGT/");   /* fixture xattr */
    expect_b64("\x00\x01\x02\xfa\xfb\xfc", 6, "AAEC+vv8");      /* spec linktarget_raw */
    /* Go's StdEncoding: line breaks skipped, unused bits ignored. */
    expect_b64_decodes("Zm9v\nYmFy\r\n", "foobar");
    expect_b64_decodes("\r\nZ\ng=\n=\n", "f");
    expect_b64_decodes("Zh==", "f");
    expect_b64_decodes("Zm9=", "fo");
    static const char *bad[] = {"Zg", "Zg=", "Z", "Z===", "====", "=", "Zg==Zg==", "Zg==x", "Zm9=v",
                                "Zm9v!", "-_8=", " Zg==", "Zg== ", "Zg\t==", "Zm9vY", "Zm9vYg=", "Zg=a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_b64_bad(bad[i]);
    /* Round trips of every length around the quantum boundaries. */
    uint8_t raw[300];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 37 + 11);
    cr_buf e = CR_BUF_INIT, d = CR_BUF_INIT;
    for (size_t n = 0; n <= sizeof raw; n++) {
        cr_buf_reset(&e);
        assert_int_equal(cr_base64_encode(&e, raw, n), 0);
        assert_int_equal(e.len, (n + 2) / 3 * 4);
        assert_int_equal(cr_base64_decode(&d, (char *)e.data, e.len), 0);
        assert_int_equal(d.len, n);
        if (n) assert_memory_equal(d.data, raw, n);
    }
    cr_buf_free(&e);
    cr_buf_free(&d);
}

/* ---- fixtures ------------------------------------------------------------- */

typedef struct {
    cr_buf *paths; /* raw listing paths */
    size_t n, cap;
} path_set;

/* Listing paths show non-UTF-8 bytes as the text \xHH. */
static void raw_path(const char *s, size_t n, cr_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t byte;
        if (s[i] == '\\' && n - i >= 4 && s[i + 1] == 'x' && cr_hex_decode(s + i + 2, 2, &byte, 1) == 0) {
            assert_int_equal(cr_buf_putc(out, (char)byte), 0);
            i += 3;
        } else {
            assert_int_equal(cr_buf_putc(out, s[i]), 0);
        }
    }
}

static void path_set_add(path_set *ps, const cr_json *path)
{
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 64;
        ps->paths = realloc(ps->paths, ps->cap * sizeof *ps->paths);
    }
    ps->paths[ps->n] = (cr_buf)CR_BUF_INIT;
    raw_path(path->str, path->len, &ps->paths[ps->n]);
    ps->n++;
}

static bool path_set_has(const path_set *ps, const cr_buf *p)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->paths[i].len == p->len && memcmp(ps->paths[i].data, p->data, p->len) == 0) return true;
    return false;
}

static void path_set_free(path_set *ps)
{
    for (size_t i = 0; i < ps->n; i++) cr_buf_free(&ps->paths[i]);
    free(ps->paths);
}

typedef struct {
    const path_set *listing;
    const char *dir; /* tree path: "/" for the root */
    size_t names, odd_names, times;
} tree_ctx;

static bool is_time_member(const char *key)
{
    return key && (!strcmp(key, "mtime") || !strcmp(key, "atime") || !strcmp(key, "ctime"));
}

static void reencode(tree_ctx *ctx, const cr_json *v, cr_buf *out, bool is_node);

/* A node name: unquote, check against the listing, quote again. */
static void reencode_name(tree_ctx *ctx, const cr_json *v, cr_buf *out)
{
    cr_buf raw = CR_BUF_INIT, quoted = CR_BUF_INIT, full = CR_BUF_INIT;
    assert_int_equal(cr_gounquote(&raw, v->str, v->len), 0);
    if (strcmp(ctx->dir, "/") != 0) {
        assert_int_equal(cr_buf_puts(&full, ctx->dir), 0);
        assert_int_equal(cr_buf_putc(&full, '/'), 0);
    }
    assert_int_equal(cr_buf_append(&full, raw.data, raw.len), 0);
    if (!path_set_has(ctx->listing, &full)) fail_msg("tree name %.*s not in listing", (int)v->len, v->str);
    assert_int_equal(cr_goquote(&quoted, raw.data, raw.len), 0);
    assert_int_equal(quoted.len, v->len);
    assert_memory_equal(quoted.data, v->str, v->len);
    if (raw.len != v->len || memcmp(raw.data, v->str, raw.len) != 0) ctx->odd_names++;
    ctx->names++;
    assert_int_equal(cr_json_put_string(out, quoted.data, quoted.len), 0);
    cr_buf_free(&raw);
    cr_buf_free(&quoted);
    cr_buf_free(&full);
}

static void reencode_time(tree_ctx *ctx, const cr_json *v, cr_buf *out)
{
    cr_time t;
    cr_buf s = CR_BUF_INIT;
    assert_int_equal(cr_time_parse(v->str, v->len, &t), 0);
    assert_int_equal(cr_time_format(&s, &t), 0);
    assert_int_equal(cr_json_put_string(out, s.data, s.len), 0);
    ctx->times++;
    cr_buf_free(&s);
}

static void reencode_member(tree_ctx *ctx, const cr_json *m, cr_buf *out, bool in_node)
{
    assert_int_equal(cr_json_put_string(out, m->key, m->keylen), 0);
    assert_int_equal(cr_buf_putc(out, ':'), 0);
    if (in_node && m->type == CR_JSON_STRING && !strcmp(m->key, "name"))
        reencode_name(ctx, m, out);
    else if (in_node && m->type == CR_JSON_STRING && is_time_member(m->key))
        reencode_time(ctx, m, out);
    else
        reencode(ctx, m, out, false);
}

/* Generic compact re-encoding; node names, times and integers go through
 * the modules under test rather than being copied. */
static void reencode(tree_ctx *ctx, const cr_json *v, cr_buf *out, bool is_node)
{
    uint64_t u;
    switch (v->type) {
    case CR_JSON_NULL: assert_int_equal(cr_buf_puts(out, "null"), 0); break;
    case CR_JSON_TRUE: assert_int_equal(cr_buf_puts(out, "true"), 0); break;
    case CR_JSON_FALSE: assert_int_equal(cr_buf_puts(out, "false"), 0); break;
    case CR_JSON_NUMBER:
        assert_int_equal(cr_json_u64(v, &u), 0);
        assert_int_equal(cr_json_put_u64(out, u), 0);
        break;
    case CR_JSON_STRING: assert_int_equal(cr_json_put_string(out, v->str, v->len), 0); break;
    case CR_JSON_ARRAY: {
        bool nodes = v->key && !strcmp(v->key, "nodes");
        assert_int_equal(cr_buf_putc(out, '['), 0);
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) assert_int_equal(cr_buf_putc(out, ','), 0);
            reencode(ctx, &v->kids[i], out, nodes);
        }
        assert_int_equal(cr_buf_putc(out, ']'), 0);
        break;
    }
    case CR_JSON_OBJECT:
        assert_int_equal(cr_buf_putc(out, '{'), 0);
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) assert_int_equal(cr_buf_putc(out, ','), 0);
            reencode_member(ctx, &v->kids[i], out, is_node);
        }
        assert_int_equal(cr_buf_putc(out, '}'), 0);
        break;
    }
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL), 1);
    cr_hex_encode(md, 32, out);
}

static cr_json_doc *load_vectors(cr_buf *text)
{
    int r = read_whole("fixtures/vectors.json", text);
    if (r < 0) fail_msg("cannot read fixtures/vectors.json (cwd must be tests/): %s", cr_error_str(r));
    return parse_n((char *)text->data, text->len);
}

static void collect_listing(const cr_json *repo, path_set *ps)
{
    const cr_json *snaps = cr_json_get(repo, "snapshots");
    assert_true(cr_json_is(snaps, CR_JSON_ARRAY));
    for (uint32_t s = 0; s < snaps->len; s++) {
        const cr_json *listing = cr_json_get(&snaps->kids[s], "listing");
        for (uint32_t e = 0; e < listing->len; e++) path_set_add(ps, cr_json_get(&listing->kids[e], "path"));
    }
}

static void test_fixture_trees(void **state)
{
    (void)state;
    cr_buf text = CR_BUF_INIT, out = CR_BUF_INIT;
    cr_json_doc *vec = load_vectors(&text);
    const cr_json *repos = cr_json_get(cr_json_root(vec), "repos");
    assert_true(cr_json_is(repos, CR_JSON_OBJECT));
    size_t trees = 0, names = 0, odd = 0, times = 0;
    for (uint32_t r = 0; r < repos->len; r++) {
        const cr_json *repo = &repos->kids[r];
        path_set listing = {0};
        collect_listing(repo, &listing);
        const cr_json *tl = cr_json_get(repo, "trees");
        for (uint32_t t = 0; t < tl->len; t++) {
            const cr_json *id = cr_json_get(&tl->kids[t], "id"), *json = cr_json_get(&tl->kids[t], "json");
            char hex[65];
            sha256_hex(json->str, json->len, hex); /* our string decoding is exact */
            assert_int_equal(id->len, 64);
            assert_string_equal(hex, id->str);

            cr_json_doc *tree = parse_n(json->str, json->len);
            tree_ctx ctx = {.listing = &listing, .dir = cr_json_get(&tl->kids[t], "path")->str};
            cr_buf_reset(&out);
            reencode(&ctx, cr_json_root(tree), &out, false);
            assert_int_equal(cr_buf_putc(&out, '\n'), 0);
            if (out.len != json->len || memcmp(out.data, json->str, out.len) != 0)
                fail_msg("tree %s re-encodes differently:\n%.*s\n%s", id->str, (int)out.len, (char *)out.data,
                         json->str);
            trees++, names += ctx.names, odd += ctx.odd_names, times += ctx.times;
            cr_json_free(tree);
        }
        path_set_free(&listing);
    }
    print_message("      %zu trees, %zu names (%zu escaped), %zu times re-encoded byte for byte\n", trees, names,
                  odd, times);
    assert_true(trees >= 20);
    assert_true(odd >= 3 * 4); /* quotes, control chars, latin1 in each repo */
    cr_json_free(vec);
    cr_buf_free(&text);
    cr_buf_free(&out);
}

/* Index and snapshot documents: integers, IDs and times. */
static void test_fixture_index_and_snapshots(void **state)
{
    (void)state;
    cr_buf text = CR_BUF_INIT;
    cr_json_doc *vec = load_vectors(&text);
    const cr_json *repos = cr_json_get(cr_json_root(vec), "repos");
    size_t blobs = 0, snaps = 0;
    for (uint32_t r = 0; r < repos->len; r++) {
        const cr_json *files = cr_json_get(&repos->kids[r], "index_files");
        for (uint32_t f = 0; f < files->len; f++) {
            const cr_json *json = cr_json_get(&files->kids[f], "json");
            cr_json_doc *idx = parse_n(json->str, json->len);
            const cr_json *packs = cr_json_get(cr_json_root(idx), "packs");
            for (uint32_t p = 0; p < packs->len; p++) {
                const cr_json *bl = cr_json_get(&packs->kids[p], "blobs");
                cr_id id;
                const cr_json *pid = cr_json_get(&packs->kids[p], "id");
                assert_int_equal(cr_id_from_hex(&id, pid->str, pid->len), 0);
                for (uint32_t b = 0; b < bl->len; b++) {
                    uint64_t off, len, ulen;
                    assert_int_equal(cr_json_u64(cr_json_get(&bl->kids[b], "offset"), &off), 0);
                    assert_int_equal(cr_json_u64(cr_json_get(&bl->kids[b], "length"), &len), 0);
                    const cr_json *ul = cr_json_get(&bl->kids[b], "uncompressed_length");
                    if (ul) assert_int_equal(cr_json_u64(ul, &ulen), 0);
                    assert_true(len > 32);
                    blobs++;
                }
            }
            cr_json_free(idx);
        }
        const cr_json *sl = cr_json_get(&repos->kids[r], "snapshots");
        for (uint32_t s = 0; s < sl->len; s++) {
            const cr_json *json = cr_json_get(&sl->kids[s], "json");
            cr_json_doc *snap = parse_n(json->str, json->len);
            const cr_json *tv = cr_json_get(cr_json_root(snap), "time");
            cr_time t;
            cr_buf again = CR_BUF_INIT;
            assert_int_equal(cr_time_parse(tv->str, tv->len, &t), 0);
            assert_int_equal(cr_time_format(&again, &t), 0);
            assert_int_equal(again.len, tv->len);
            assert_memory_equal(again.data, tv->str, tv->len);
            cr_buf_free(&again);
            snaps++;
            cr_json_free(snap);
        }
    }
    assert_true(blobs > 20);
    assert_int_equal(snaps, 5);
    cr_json_free(vec);
    cr_buf_free(&text);
}

/* ---- speed ------------------------------------------------------------------ */

static void hex_id(uint64_t seed, char out[65])
{
    for (int i = 0; i < 64; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        out[i] = "0123456789abcdef"[seed >> 60];
    }
    out[64] = 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A synthetic index file of ~5 MB: reports MB/s and checks the values. */
static void test_index_speed(void **state)
{
    (void)state;
    cr_buf b = CR_BUF_INIT;
    char id[65];
    uint64_t expect_sum = 0;
    size_t nblobs = 0;
    assert_int_equal(cr_buf_puts(&b, "{\"packs\":["), 0);
    for (int p = 0; b.len < 5 * 1000 * 1000; p++) {
        hex_id((uint64_t)p, id);
        assert_int_equal(cr_buf_printf(&b, "%s{\"id\":\"%s\",\"blobs\":[", p ? "," : "", id), 0);
        uint64_t off = 0;
        for (int k = 0; k < 100; k++) {
            uint64_t len = 1000 + (uint64_t)((p * 131 + k * 17) % 5000);
            hex_id((uint64_t)p << 32 | (uint64_t)k, id);
            assert_int_equal(cr_buf_printf(&b, "%s{\"id\":\"%s\",\"type\":\"data\",\"offset\":%llu,\"length\":%llu,"
                                           "\"uncompressed_length\":%llu}",
                                           k ? "," : "", id, (unsigned long long)off, (unsigned long long)len,
                                           (unsigned long long)(len * 2)),
                             0);
            expect_sum += off + len;
            off += len;
            nblobs++;
        }
        assert_int_equal(cr_buf_puts(&b, "]}"), 0);
    }
    assert_int_equal(cr_buf_puts(&b, "]}\n"), 0);

    const int rounds = 10;
    double best = 1e9;
    for (int round = 0; round < rounds; round++) {
        double t0 = now_s();
        cr_json_doc *doc = parse_n((char *)b.data, b.len);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
        if (round == 0) {
            uint64_t sum = 0, v;
            size_t seen = 0;
            const cr_json *packs = cr_json_get(cr_json_root(doc), "packs");
            for (uint32_t p = 0; p < packs->len; p++) {
                const cr_json *bl = cr_json_get(&packs->kids[p], "blobs");
                for (uint32_t k = 0; k < bl->len; k++, seen++) {
                    assert_int_equal(cr_json_u64(cr_json_get(&bl->kids[k], "offset"), &v), 0);
                    sum += v;
                    assert_int_equal(cr_json_u64(cr_json_get(&bl->kids[k], "length"), &v), 0);
                    sum += v;
                }
            }
            assert_int_equal(seen, nblobs);
            assert_true(sum == expect_sum);
        }
        cr_json_free(doc);
    }
    print_message("      parse %.1f MB index (%zu blobs): %.1f ms, %.0f MB/s\n", b.len / 1e6, nblobs, best * 1e3,
                  b.len / 1e6 / best);
    cr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_integer_conversion),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_member_lookup),
        cmocka_unit_test(test_writer_strings),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_writer_integers),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_fixture_trees),
        cmocka_unit_test(test_fixture_index_and_snapshots),
        cmocka_unit_test(test_index_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
