/* backends/s3: the answer parsers (ListObjects V1/V2 pages, <Error>
 * documents) on hand-written answers in the shapes Swift's s3api, s3rver and
 * AWS send.  (Requests against real servers: tests/e2e/test_backend_s3.sh.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "backends/s3.h"
#include "util/error.h"

#define ID_A "3e7258fc916d96e1535302a3829e39f24c4c57cdc729050e73c7384eabdbb94b"
#define ID_B "a90d1fe308dc82eda014d7533ed9db109fe1e61d5ba7ffdbc05c203b3bb48998"

typedef struct {
    char names[8][65];
    uint64_t sizes[8];
    int n, stop_after;
} seen;

static int collect(void *ud, const char *name, uint64_t size)
{
    seen *s = ud;
    if (s->n >= 8) return -1;
    snprintf(s->names[s->n], 65, "%s", name);
    s->sizes[s->n++] = size;
    return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static int parse(const char *xml, size_t prefix_len, bool v1, seen *s, cr_buf *token)
{
    return cr_s3_parse_list(xml, strlen(xml), prefix_len, v1, collect, s, token);
}

static void test_v2_page(void **state)
{
    (void)state;
    const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
                      "<Prefix>p/data/</Prefix><IsTruncated>true</IsTruncated>"
                      "<NextContinuationToken>1ueG+cx/LP==</NextContinuationToken>"
                      "<Contents><Key>p/data/3e/" ID_A "</Key><Size>1048576</Size></Contents>"
                      "<Contents><Key>p/data/a9/" ID_B ".tmp</Key><Size>1</Size></Contents>" /* not an ID */
                      "<Contents><Size>12</Size><Key>p/data/a9/" ID_B "</Key></Contents>"    /* any order */
                      "</ListBucketResult>";
    seen s = {0};
    cr_buf token = CR_BUF_INIT;
    assert_int_equal(parse(xml, strlen("p/data/"), false, &s, &token), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.names[0], ID_A);
    assert_true(s.sizes[0] == 1048576);
    assert_string_equal(s.names[1], ID_B);
    assert_true(s.sizes[1] == 12);
    assert_string_equal((const char *)token.data, "1ueG+cx/LP==");
    cr_buf_free(&token);
}

static void test_last_page_and_empty(void **state)
{
    (void)state;
    seen s = {0};
    cr_buf token = CR_BUF_INIT;
    const char *last = "<ListBucketResult><IsTruncated>false</IsTruncated><NextContinuationToken>x</NextContinuationToken>"
                       "<Contents><Key>keys/" ID_A "</Key><Size>450</Size></Contents></ListBucketResult>";
    assert_int_equal(parse(last, 5, false, &s, &token), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(token.len, 0); /* not truncated: no next page */
    assert_non_null(token.data);
    const char *empty = "<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>";
    assert_int_equal(parse(empty, 6, false, &s, &token), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(parse("", 0, false, &s, &token), 0); /* no document, no entries */
    cr_buf_free(&token);
}

static void test_v1_marker(void **state)
{
    (void)state;
    seen s = {0};
    cr_buf token = CR_BUF_INIT;
    /* without NextMarker (no delimiter asked): the page's last key */
    const char *page = "<ListBucketResult><IsTruncated>true</IsTruncated>"
                       "<Contents><Key>index/" ID_A "</Key><Size>1</Size></Contents>"
                       "<Contents><Key>index/" ID_B "</Key><Size>2</Size></Contents></ListBucketResult>";
    assert_int_equal(parse(page, 6, true, &s, &token), 0);
    assert_string_equal((const char *)token.data, "index/" ID_B);
    const char *with_marker = "<ListBucketResult><IsTruncated>true</IsTruncated><NextMarker>index/zz</NextMarker>"
                              "<Contents><Key>index/" ID_A "</Key><Size>1</Size></Contents></ListBucketResult>";
    assert_int_equal(parse(with_marker, 6, true, &s, &token), 0);
    assert_string_equal((const char *)token.data, "index/zz");
    cr_buf_free(&token);
}

static void test_malformed(void **state)
{
    (void)state;
    seen s = {0};
    cr_buf token = CR_BUF_INIT;
    /* truncated without a token: the listing could not go on */
    assert_int_equal(parse("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", 0, false, &s, &token),
                     CR_E_FORMAT);
    assert_int_equal(token.len, 0);
    /* an entry without a size, a size that is no number, an unclosed element */
    assert_int_equal(parse("<ListBucketResult><Contents><Key>k/" ID_A "</Key></Contents></ListBucketResult>", 2, false, &s,
                           &token),
                     CR_E_FORMAT);
    assert_int_equal(parse("<ListBucketResult><Contents><Key>k/" ID_A "</Key><Size>-1</Size></Contents>", 2, false, &s,
                           &token),
                     CR_E_FORMAT);
    assert_int_equal(parse("<ListBucketResult><Contents><Key>k/" ID_A, 2, false, &s, &token), CR_E_FORMAT);
    assert_int_equal(s.n, 0);
    cr_buf_free(&token);
    cr_error_clear();
}

static void test_callback_stop(void **state)
{
    (void)state;
    seen s = {.stop_after = 1};
    cr_buf token = CR_BUF_INIT;
    const char *page = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                       "<Contents><Key>" ID_A "</Key><Size>1</Size></Contents>"
                       "<Contents><Key>" ID_B "</Key><Size>2</Size></Contents></ListBucketResult>";
    assert_int_equal(parse(page, 0, false, &s, &token), 7);
    assert_int_equal(s.n, 1);
    cr_buf_free(&token);
}

static void test_error_fields(void **state)
{
    (void)state;
    char code[32], msg[64];
    const char *swift = "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>SignatureDoesNotMatch</Code>"
                        "<Message>The request signature we calculated does not match\nthe signature you provided.</Message>"
                        "<AWSAccessKeyId>test:tester</AWSAccessKeyId></Error>";
    cr_s3_error_fields(swift, strlen(swift), code, sizeof code, msg, sizeof msg);
    assert_string_equal(code, "SignatureDoesNotMatch");
    assert_string_equal(msg, "The request signature we calculated does not match the signatur"); /* one line, cut */
    const char *ent = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region &apos;x&apos; is wrong</Message></Error>";
    cr_s3_error_fields(ent, strlen(ent), code, sizeof code, msg, sizeof msg);
    assert_string_equal(msg, "the region 'x' is wrong");
    cr_s3_error_fields("Bad URL", 7, code, sizeof code, msg, sizeof msg); /* not XML: nothing */
    assert_string_equal(code, "");
    assert_string_equal(msg, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_page),   cmocka_unit_test(test_last_page_and_empty), cmocka_unit_test(test_v1_marker),
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_callback_stop),       cmocka_unit_test(test_error_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
