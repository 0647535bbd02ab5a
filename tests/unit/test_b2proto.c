/* backends/b2proto: B2 answers in the shapes Backblaze documents (v2 and v3
 * b2_authorize_account, listings with paging members, errors), exact 64-bit
 * sizes, refusal of malformed answers, and file-name encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "backends/b2proto.h"
#include "util/error.h"

#define S(x) x, strlen(x)

static void test_auth_v3(void **state)
{
    (void)state;
    const char *j = "{\"accountId\":\"acc\",\"authorizationToken\":\"4_tok\",\"apiInfo\":{\"storageApi\":{"
                    "\"absoluteMinimumPartSize\":5000000,\"recommendedPartSize\":100000000,"
                    "\"apiUrl\":\"https://api005.example.com\",\"downloadUrl\":\"https://f005.example.com/\","
                    "\"allowed\":{\"buckets\":[{\"id\":\"bid\",\"name\":\"bucket-one\"}],\"capabilities\":[],\"namePrefix\":null},"
                    "\"infoType\":\"storageApi\"}}}";
    cr_b2_auth a;
    assert_int_equal(cr_b2_parse_auth(S(j), &a), 0);
    assert_string_equal(a.account_id, "acc");
    assert_string_equal(a.token, "4_tok");
    assert_string_equal(a.api_url, "https://api005.example.com");
    assert_string_equal(a.download_url, "https://f005.example.com"); /* trailing '/' dropped */
    assert_true(a.min_part_size == 5000000 && a.recommended_part_size == 100000000);
    assert_string_equal(a.allowed_bucket_id, "bid");
    assert_string_equal(a.allowed_bucket_name, "bucket-one");
    cr_b2_auth_free(&a);
}

static void test_auth_v2(void **state)
{
    (void)state;
    const char *j = "{\"absoluteMinimumPartSize\":5000000,\"accountId\":\"acc\",\"allowed\":{\"bucketId\":null,"
                    "\"bucketName\":null,\"capabilities\":[\"readFiles\"],\"namePrefix\":null},"
                    "\"apiUrl\":\"http://127.0.0.1:9\",\"authorizationToken\":\"t\",\"downloadUrl\":\"http://127.0.0.1:9\","
                    "\"recommendedPartSize\":100000000}";
    cr_b2_auth a;
    assert_int_equal(cr_b2_parse_auth(S(j), &a), 0);
    assert_string_equal(a.api_url, "http://127.0.0.1:9");
    assert_null(a.allowed_bucket_id);
    assert_null(a.allowed_bucket_name);
    cr_b2_auth_free(&a);
}

static void test_auth_refused(void **state)
{
    (void)state;
    cr_b2_auth a;
    const char *no_token = "{\"accountId\":\"a\",\"apiUrl\":\"https://x\",\"downloadUrl\":\"https://x\","
                           "\"recommendedPartSize\":1,\"absoluteMinimumPartSize\":1}";
    const char *bad_url = "{\"accountId\":\"a\",\"authorizationToken\":\"t\",\"apiUrl\":\"ftp://x\",\"downloadUrl\":\"https://x\","
                          "\"recommendedPartSize\":1,\"absoluteMinimumPartSize\":1}";
    const char *neg = "{\"accountId\":\"a\",\"authorizationToken\":\"t\",\"apiUrl\":\"https://x\",\"downloadUrl\":\"https://x\","
                      "\"recommendedPartSize\":-1,\"absoluteMinimumPartSize\":1}";
    assert_int_equal(cr_b2_parse_auth(S(no_token), &a), CR_E_FORMAT);
    assert_null(a.account_id);
    assert_int_equal(cr_b2_parse_auth(S(bad_url), &a), CR_E_FORMAT);
    assert_int_equal(cr_b2_parse_auth(S(neg), &a), CR_E_FORMAT);
    assert_int_equal(cr_b2_parse_auth(S("[]"), &a), CR_E_FORMAT);
    assert_int_equal(cr_b2_parse_auth(S("{\"accountId\":"), &a), CR_E_FORMAT);
}

typedef struct {
    int n;
    char names[4][64];
    uint64_t sizes[4];
} seen;

static int collect(void *ud, const cr_b2_file *f)
{
    seen *s = ud;
    if (s->n < 4) {
        strncpy(s->names[s->n], f->name, 63);
        s->sizes[s->n] = f->size;
    }
    s->n++;
    return 0;
}

static void test_file_list(void **state)
{
    (void)state;
    const char *j = "{\"files\":[{\"action\":\"upload\",\"fileId\":\"4_z1\",\"fileName\":\"p/data/ab/ab1\","
                    "\"contentLength\":18446744073709551615},"
                    "{\"action\":\"upload\",\"fileId\":\"4_z2\",\"fileName\":\"p/data/ab/ab2\",\"contentLength\":9007199254740993},"
                    "{\"action\":\"folder\",\"fileId\":null,\"fileName\":\"p/x/\",\"contentLength\":0}],"
                    "\"nextFileName\":\"p/data/ac/ac\",\"nextFileId\":\"4_z3\"}";
    seen s = {0};
    char *next = NULL, *next_id = NULL;
    assert_int_equal(cr_b2_parse_file_list(S(j), collect, &s, &next, &next_id), 0);
    assert_int_equal(s.n, 3);
    assert_true(s.sizes[0] == UINT64_MAX);
    assert_true(s.sizes[1] == 9007199254740993ULL); /* 2^53 + 1: exact, never through a double */
    assert_string_equal(s.names[2], "p/x/");
    assert_string_equal(next, "p/data/ac/ac");
    assert_string_equal(next_id, "4_z3");
    free(next);
    free(next_id);

    const char *last = "{\"files\":[],\"nextFileName\":null}";
    assert_int_equal(cr_b2_parse_file_list(S(last), collect, &s, &next, NULL), 0);
    assert_null(next);

    const char *no_size = "{\"files\":[{\"action\":\"upload\",\"fileId\":\"x\",\"fileName\":\"a\"}],\"nextFileName\":null}";
    const char *frac = "{\"files\":[{\"action\":\"upload\",\"fileId\":\"x\",\"fileName\":\"a\",\"contentLength\":1.5}]}";
    const char *nul = "{\"files\":[{\"action\":\"upload\",\"fileId\":\"x\",\"fileName\":\"a\\u0000b\",\"contentLength\":1}]}";
    assert_int_equal(cr_b2_parse_file_list(S(no_size), collect, &s, &next, NULL), CR_E_FORMAT);
    assert_int_equal(cr_b2_parse_file_list(S(frac), collect, &s, &next, NULL), CR_E_FORMAT);
    assert_int_equal(cr_b2_parse_file_list(S(nul), collect, &s, &next, NULL), CR_E_FORMAT);
    assert_int_equal(cr_b2_parse_file_list(S("{\"files\":{}}"), collect, &s, &next, NULL), CR_E_FORMAT);
    assert_null(next);
}

static void test_error_and_small_answers(void **state)
{
    (void)state;
    char code[32], msg[16];
    cr_b2_parse_error(S("{\"status\":401,\"code\":\"expired_auth_token\",\"message\":\"token\\nexpired long ago\"}"),
                      code, sizeof code, msg, sizeof msg);
    assert_string_equal(code, "expired_auth_token");
    assert_string_equal(msg, "token?expired l"); /* control characters replaced, truncated */
    cr_b2_parse_error(S("<html>"), code, sizeof code, msg, sizeof msg);
    assert_string_equal(code, "");

    char *url, *tok;
    assert_int_equal(cr_b2_parse_upload_url(S("{\"uploadUrl\":\"https://pod/b2api/v3/b2_upload_file/b/c\",\"authorizationToken\":\"u\"}"),
                                            &url, &tok), 0);
    assert_string_equal(url, "https://pod/b2api/v3/b2_upload_file/b/c");
    assert_string_equal(tok, "u");
    free(url);
    free(tok);
    assert_int_equal(cr_b2_parse_upload_url(S("{\"uploadUrl\":\"https://p q\",\"authorizationToken\":\"u\"}"), &url, &tok), CR_E_FORMAT);
    assert_null(url);

    char *id;
    const char *buckets = "{\"buckets\":[{\"bucketId\":\"b9\",\"bucketName\":\"other-bucket\"},{\"bucketId\":\"b1\",\"bucketName\":\"bucket-one\"}]}";
    assert_int_equal(cr_b2_parse_bucket_id(S(buckets), "bucket-one", &id), 0);
    assert_string_equal(id, "b1");
    free(id);
    assert_int_equal(cr_b2_parse_bucket_id(S(buckets), "bucket-two", &id), 0);
    assert_null(id);
    assert_int_equal(cr_b2_parse_bucket_id(S("{\"bucketId\":\"b5\",\"bucketName\":\"new-bucket\"}"), "new-bucket", &id), 0);
    assert_string_equal(id, "b5");
    free(id);
}

static void test_encode_name(void **state)
{
    (void)state;
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_b2_encode_name(&b, "some path/data/ab/ab12"), 0);
    assert_string_equal((char *)b.data, "some%20path/data/ab/ab12");
    assert_int_equal(cr_b2_encode_name(&b, "a+b%c?d#e&\xc3\xa9~_.-"), 0);
    assert_string_equal((char *)b.data, "a%2Bb%25c%3Fd%23e%26%C3%A9~_.-");
    cr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_v3),
        cmocka_unit_test(test_auth_v2),
        cmocka_unit_test(test_auth_refused),
        cmocka_unit_test(test_file_list),
        cmocka_unit_test(test_error_and_small_answers),
        cmocka_unit_test(test_encode_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
