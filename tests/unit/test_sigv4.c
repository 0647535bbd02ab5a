/* backends/sigv4: known answers from AWS's published Signature Version 4
 * examples (the S3 "Examples: Signature Calculations" for GET Object, PUT
 * Object, GET Bucket Lifecycle and GET Bucket (list objects), and the
 * general IAM ListUsers example), plus encoding and canonicalisation rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "backends/sigv4.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const cr_sigv4_key s3_example_key = {
    .access_key = "AKIAIOSFODNN7EXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    .region = "us-east-1",
    .service = "s3",
};

static void expect_signature(const cr_sigv4_key *key, const cr_sigv4_request *req, const char *want_sig,
                             const char *want_auth)
{
    cr_buf auth = CR_BUF_INIT;
    char sig[65];
    assert_int_equal(cr_sigv4_authorization(key, req, &auth, sig), 0);
    assert_string_equal(sig, want_sig);
    if (want_auth) assert_string_equal((const char *)auth.data, want_auth);
    cr_buf_free(&auth);
}

static void test_get_object(void **state)
{
    (void)state;
    const cr_sigv4_header h[] = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"Range", "bytes=0-9"},
        {"x-amz-content-sha256", CR_SIGV4_EMPTY_SHA256},
        {"x-amz-date", "20130524T000000Z"},
    };
    cr_sigv4_request req = {.method = "GET", .path = "/test.txt", .headers = h, .n_headers = LEN(h),
                            .payload_sha256 = CR_SIGV4_EMPTY_SHA256, .amz_date = "20130524T000000Z"};
    cr_buf creq = CR_BUF_INIT;
    assert_int_equal(cr_sigv4_canonical_request(&req, &creq), 0);
    assert_string_equal((const char *)creq.data,
                        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                        "x-amz-content-sha256:" CR_SIGV4_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
                        "host;range;x-amz-content-sha256;x-amz-date\n" CR_SIGV4_EMPTY_SHA256);
    char h65[65];
    cr_sigv4_sha256_hex(creq.data, creq.len, h65);
    assert_string_equal(h65, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    cr_buf_free(&creq);
    expect_signature(&s3_example_key, &req, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_put_object(void **state)
{
    (void)state;
    const char *body = "Welcome to Amazon S3.";
    char body_hash[65];
    cr_sigv4_sha256_hex(body, strlen(body), body_hash);
    assert_string_equal(body_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    cr_buf path = CR_BUF_INIT;
    assert_int_equal(cr_buf_putc(&path, '/'), 0);
    assert_int_equal(cr_sigv4_uri_encode(&path, "test$file.text", 14, 1), 0);
    assert_string_equal((const char *)path.data, "/test%24file.text");
    /* headers given in a different order than signed: the signer sorts them */
    const cr_sigv4_header h[] = {
        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"x-amz-date", "20130524T000000Z"},
        {"x-amz-content-sha256", body_hash},
    };
    cr_sigv4_request req = {.method = "PUT", .path = (const char *)path.data, .headers = h, .n_headers = LEN(h),
                            .payload_sha256 = body_hash, .amz_date = "20130524T000000Z"};
    expect_signature(&s3_example_key, &req, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
                     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                     "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
                     "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    cr_buf_free(&path);
}

static void test_get_lifecycle(void **state)
{
    (void)state;
    const cr_sigv4_header h[] = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"x-amz-date", "20130524T000000Z"},
        {"x-amz-content-sha256", CR_SIGV4_EMPTY_SHA256},
    };
    /* a parameter without a value is signed as "lifecycle=" */
    cr_sigv4_request req = {.method = "GET", .path = "/", .query = "lifecycle", .headers = h, .n_headers = LEN(h),
                            .payload_sha256 = CR_SIGV4_EMPTY_SHA256, .amz_date = "20130524T000000Z"};
    expect_signature(&s3_example_key, &req, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543", NULL);
}

static void test_list_objects(void **state)
{
    (void)state;
    const cr_sigv4_header h[] = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"x-amz-date", "20130524T000000Z"},
        {"x-amz-content-sha256", CR_SIGV4_EMPTY_SHA256},
    };
    /* parameters out of order: the canonical query sorts them */
    cr_sigv4_request req = {.method = "GET", .path = "/", .query = "prefix=J&max-keys=2", .headers = h,
                            .n_headers = LEN(h), .payload_sha256 = CR_SIGV4_EMPTY_SHA256,
                            .amz_date = "20130524T000000Z"};
    cr_buf creq = CR_BUF_INIT;
    assert_int_equal(cr_sigv4_canonical_request(&req, &creq), 0);
    assert_non_null(strstr((const char *)creq.data, "GET\n/\nmax-keys=2&prefix=J\nhost:"));
    cr_buf_free(&creq);
    expect_signature(&s3_example_key, &req, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7", NULL);
}

/* The general SigV4 example (IAM ListUsers): another service, a header
 * value with inner blanks, no x-amz-content-sha256. */
static void test_iam_list_users(void **state)
{
    (void)state;
    const cr_sigv4_key key = {.access_key = "AKIDEXAMPLE", .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                              .region = "us-east-1", .service = "iam"};
    const cr_sigv4_header h[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
        {"Host", "iam.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
    };
    cr_sigv4_request req = {.method = "GET", .path = "/", .query = "Action=ListUsers&Version=2010-05-08",
                            .headers = h, .n_headers = LEN(h), .payload_sha256 = CR_SIGV4_EMPTY_SHA256,
                            .amz_date = "20150830T123600Z"};
    expect_signature(&key, &req, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", NULL);
}

static void test_uri_encode(void **state)
{
    (void)state;
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_sigv4_uri_encode(&b, "a b/c~d_e.f-g+h=i&j%", 20, 1), 0);
    assert_string_equal((const char *)b.data, "a%20b/c~d_e.f-g%2Bh%3Di%26j%25");
    cr_buf_reset(&b);
    assert_int_equal(cr_sigv4_uri_encode(&b, "data/ab", 7, 0), 0);
    assert_string_equal((const char *)b.data, "data%2Fab");
    cr_buf_reset(&b);
    assert_int_equal(cr_sigv4_uri_encode(&b, "\xc3\xa9", 2, 0), 0); /* UTF-8 bytes each encoded */
    assert_string_equal((const char *)b.data, "%C3%A9");
    cr_buf_free(&b);
}

static void test_header_values_trimmed(void **state)
{
    (void)state;
    const cr_sigv4_header h[] = {{"X-Test", "  a   b  c  "}, {"host", "h"}, {"x-amz-date", "20200101T000000Z"}};
    cr_sigv4_request req = {.method = "GET", .path = "/", .headers = h, .n_headers = LEN(h),
                            .payload_sha256 = "UNSIGNED-PAYLOAD", .amz_date = "20200101T000000Z"};
    cr_buf creq = CR_BUF_INIT;
    assert_int_equal(cr_sigv4_canonical_request(&req, &creq), 0);
    assert_string_equal((const char *)creq.data,
                        "GET\n/\n\nhost:h\nx-amz-date:20200101T000000Z\nx-test:a b c\n\nhost;x-amz-date;x-test\nUNSIGNED-PAYLOAD");
    cr_buf_free(&creq);
}

static void test_amz_date(void **state)
{
    (void)state;
    char d[17];
    cr_sigv4_amz_date(1369353600, d); /* 2013-05-24 00:00:00 UTC */
    assert_string_equal(d, "20130524T000000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_object),      cmocka_unit_test(test_put_object),
        cmocka_unit_test(test_get_lifecycle),   cmocka_unit_test(test_list_objects),
        cmocka_unit_test(test_iam_list_users),  cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_header_values_trimmed), cmocka_unit_test(test_amz_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
