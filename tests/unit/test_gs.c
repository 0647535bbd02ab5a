/* GCS backend pieces: the JSON API answer parsers (exact uint64 sizes in
 * strings, list pages, error messages), the service-account key file and
 * token answer parsers, and the RS256 JWT assertion checked with OpenSSL
 * against the key's public half. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/gauth.h"
#include "backends/gs.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

static int parse_size(const char *json, uint64_t *size)
{
    return cr_gs_parse_object(json, strlen(json), size);
}

static void test_object_size_exact(void **state)
{
    (void)state;
    uint64_t n = 0;
    assert_int_equal(parse_size("{\"name\":\"x\",\"size\":\"18446744073709551615\"}", &n), 0);
    assert_true(n == UINT64_MAX);
    assert_int_equal(parse_size("{\"size\":\"9007199254740993\"}", &n), 0); /* 2^53 + 1: not through a double */
    assert_true(n == 9007199254740993ull);
    assert_int_equal(parse_size("{\"size\":42}", &n), 0);
    assert_true(n == 42);
    assert_int_equal(parse_size("{\"size\":\"0\"}", &n), 0);
    assert_true(n == 0);
    const char *bad[] = {"{\"size\":\"18446744073709551616\"}", "{\"size\":\"-1\"}", "{\"size\":\"\"}",
                         "{\"size\":\"1.0\"}", "{\"size\":\"+1\"}", "{\"size\":\" 1\"}", "{\"size\":\"1e3\"}",
                         "{\"size\":-1}", "{\"size\":null}", "{\"name\":\"x\"}", "[]", "{\"size\":\"1\"", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(parse_size(bad[i], &n), CR_E_FORMAT);
}

typedef struct {
    char names[4][80];
    uint64_t sizes[4];
    int n, stop_after;
} items;

static int collect(void *ud, const char *name, uint64_t size)
{
    items *it = ud;
    if (it->n == 4) return -1;
    snprintf(it->names[it->n], sizeof it->names[0], "%s", name);
    it->sizes[it->n++] = size;
    return it->n == it->stop_after ? 7 : 0;
}

static void test_list_page(void **state)
{
    (void)state;
    const char *page = "{\"kind\":\"storage#objects\",\"nextPageToken\":\"abc=\","
                       "\"items\":[{\"name\":\"r/keys/a\",\"size\":\"10\"},{\"name\":\"r/data/00/b\",\"size\":\"4294967296\"}]}";
    items it = {0};
    char *token = NULL;
    assert_int_equal(cr_gs_parse_list(page, strlen(page), collect, &it, &token), 0);
    assert_int_equal(it.n, 2);
    assert_string_equal(it.names[1], "r/data/00/b");
    assert_true(it.sizes[1] == 4294967296ull);
    assert_string_equal(token, "abc=");
    free(token);

    /* the last page: no token; no items: empty */
    memset(&it, 0, sizeof it);
    assert_int_equal(cr_gs_parse_list("{\"kind\":\"storage#objects\"}", 26, collect, &it, &token), 0);
    assert_int_equal(it.n, 0);
    assert_null(token);

    /* the callback's stop value comes back, without a token */
    memset(&it, 0, sizeof it);
    it.stop_after = 1;
    assert_int_equal(cr_gs_parse_list(page, strlen(page), collect, &it, &token), 7);
    assert_int_equal(it.n, 1);
    assert_null(token);

    const char *bad[] = {"{\"items\":{}}", "{\"items\":[{\"name\":1,\"size\":\"1\"}]}", "{\"items\":[{\"name\":\"a\"}]}",
                         "{\"items\":[{\"name\":\"a\\u0000b\",\"size\":\"1\"}]}", "{\"nextPageToken\":5}", "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&it, 0, sizeof it);
        assert_int_equal(cr_gs_parse_list(bad[i], strlen(bad[i]), collect, &it, &token), CR_E_FORMAT);
        assert_null(token);
    }
}

static void test_range_header(void **state)
{
    (void)state;
    uint64_t held = 0;
    assert_int_equal(cr_gs_parse_range("bytes=0-262143", 1000000, &held), 0);
    assert_true(held == 262144);
    assert_int_equal(cr_gs_parse_range("bytes=0-0", 1, &held), 0);
    assert_true(held == 1);
    const char *bad[] = {"bytes=0-1000000", "bytes=1-5", "bytes=0-", "bytes=0--1", "bytes=0-1x", "bytes 0-1",
                         "bytes=0-99999999999999999999", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(cr_gs_parse_range(bad[i], 1000000, &held), CR_E_FORMAT);
}

static void test_error_message(void **state)
{
    (void)state;
    char msg[32];
    const char *e = "{\"error\":{\"code\":403,\"message\":\"no\\naccess\\u0007 to bucket b, and more text than fits\"}}";
    cr_gs_error_message(e, strlen(e), msg, sizeof msg);
    assert_string_equal(msg, "no access  to bucket b, and mor");
    cr_gs_error_message("<html>", 6, msg, sizeof msg);
    assert_string_equal(msg, "");
    cr_gs_error_message("{\"error\":\"invalid_grant\"}", 25, msg, sizeof msg);
    assert_string_equal(msg, "");
}

static void test_token_answer(void **state)
{
    (void)state;
    char *tok = NULL;
    uint64_t exp = 1;
    const char *ok = "{\"access_token\":\"ya29.a0-_~+/=\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
    assert_int_equal(cr_gauth_parse_token_answer(ok, strlen(ok), &tok, &exp), 0);
    assert_string_equal(tok, "ya29.a0-_~+/=");
    assert_true(exp == 3599);
    free(tok);
    assert_int_equal(cr_gauth_parse_token_answer("{\"access_token\":\"t\"}", 20, &tok, &exp), 0);
    assert_true(exp == 0);
    free(tok);
    const char *bad[] = {"{\"access_token\":\"a b\"}", "{\"access_token\":\"a\\r\\nX-Evil: 1\"}", "{\"access_token\":\"\"}",
                         "{\"expires_in\":5}", "{\"access_token\":\"t\",\"expires_in\":-5}",
                         "{\"access_token\":\"t\",\"expires_in\":\"5\"}", "{\"access_token\":7}", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cr_gauth_parse_token_answer(bad[i], strlen(bad[i]), &tok, &exp), CR_E_FORMAT);
        assert_null(tok);
    }
}

static void test_key_file(void **state)
{
    (void)state;
    cr_gsa sa;
    const char *ok = "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":\"PEM\",\"private_key_id\":\"k\"}";
    assert_int_equal(cr_gsa_parse(ok, strlen(ok), &sa), 0);
    assert_string_equal(sa.client_email, "a@b");
    assert_string_equal(sa.private_key_id, "k");
    assert_string_equal(sa.token_uri, CR_GAUTH_DEFAULT_TOKEN_URI);
    cr_gsa_free(&sa);
    const char *bad[] = {
        "{\"type\":\"authorized_user\",\"client_email\":\"a@b\",\"private_key\":\"PEM\"}",
        "{\"type\":\"service_account\",\"private_key\":\"PEM\"}",
        "{\"type\":\"service_account\",\"client_email\":\"a@b\"}",
        "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":\"PEM\",\"token_uri\":\"file:///etc/passwd\"}",
        "{\"type\":\"service_account\",\"client_email\":[],\"private_key\":\"PEM\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(cr_gsa_parse(bad[i], strlen(bad[i]), &sa), CR_E_FORMAT);
}

/* ---- JWT ------------------------------------------------------------------- */

static void b64url_decode(const char *s, size_t n, cr_buf *out)
{
    cr_buf std = CR_BUF_INIT;
    for (size_t i = 0; i < n; i++) assert_int_equal(cr_buf_putc(&std, s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i]), 0);
    while (std.len % 4) assert_int_equal(cr_buf_putc(&std, '='), 0);
    assert_int_equal(cr_base64_decode(out, (const char *)std.data, std.len), 0);
    cr_buf_free(&std);
}

static cr_json_doc *json_part(const char *s, size_t n)
{
    cr_buf raw = CR_BUF_INIT;
    b64url_decode(s, n, &raw);
    cr_json_doc *doc = NULL;
    assert_int_equal(cr_json_parse((const char *)raw.data, raw.len, &doc), 0);
    cr_buf_free(&raw);
    return doc;
}

static void write_key_file(EVP_PKEY *key, char *path)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    char *pem = NULL;
    long len = BIO_get_mem_data(bio, &pem);
    cr_buf doc = CR_BUF_INIT;
    assert_int_equal(cr_buf_puts(&doc, "{\"type\":\"service_account\",\"client_email\":\"sa@p.iam.gserviceaccount.com\","
                                       "\"private_key_id\":\"kid1\",\"token_uri\":\"http://127.0.0.1:1/token\",\"private_key\":"), 0);
    assert_int_equal(cr_json_put_string(&doc, pem, (size_t)len), 0);
    assert_int_equal(cr_buf_puts(&doc, "}"), 0);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, doc.data, doc.len), (ssize_t)doc.len);
    close(fd);
    cr_buf_free(&doc);
    BIO_free(bio);
}

static const char *str_of(const cr_json *obj, const char *name)
{
    const cr_json *v = cr_json_get(obj, name);
    assert_true(cr_json_is(v, CR_JSON_STRING));
    return v->str;
}

static void test_jwt(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    assert_non_null(key);
    char path[] = "/tmp/crestic-test-gs-XXXXXX";
    write_key_file(key, path);
    cr_gauth *a = NULL;
    assert_int_equal(cr_gauth_new_service_account(path, CR_GAUTH_SCOPE_RW, &a), 0);
    unlink(path);
    char *jwt = NULL;
    assert_int_equal(cr_gauth_make_jwt(a, 1700000000, &jwt), 0);
    cr_gauth_free(a);

    char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));
    assert_null(strpbrk(jwt, "+/= "));

    cr_json_doc *h = json_part(jwt, (size_t)(dot1 - jwt)), *c = json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    assert_string_equal(str_of(cr_json_root(h), "alg"), "RS256");
    assert_string_equal(str_of(cr_json_root(h), "typ"), "JWT");
    assert_string_equal(str_of(cr_json_root(h), "kid"), "kid1");
    const cr_json *claims = cr_json_root(c);
    assert_string_equal(str_of(claims, "iss"), "sa@p.iam.gserviceaccount.com");
    assert_string_equal(str_of(claims, "aud"), "http://127.0.0.1:1/token");
    assert_string_equal(str_of(claims, "scope"), CR_GAUTH_SCOPE_RW);
    int64_t iat = 0, exp = 0;
    assert_int_equal(cr_json_i64(cr_json_get(claims, "iat"), &iat), 0);
    assert_int_equal(cr_json_i64(cr_json_get(claims, "exp"), &exp), 0);
    assert_true(iat == 1700000000 && exp == iat + 3600);
    cr_json_free(h);
    cr_json_free(c);

    cr_buf sig = CR_BUF_INIT;
    b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig);
    assert_int_equal((int)sig.len, 256);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestVerify(ctx, sig.data, sig.len, (const unsigned char *)jwt, (size_t)(dot2 - jwt)), 1);
    /* one flipped bit in the signed part: refused */
    jwt[3] ^= 1;
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_not_equal(EVP_DigestVerify(ctx, sig.data, sig.len, (const unsigned char *)jwt, (size_t)(dot2 - jwt)), 1);
    EVP_MD_CTX_free(ctx);
    cr_buf_free(&sig);
    free(jwt);
    EVP_PKEY_free(key);
}

static void test_key_file_refused(void **state)
{
    (void)state;
    char path[] = "/tmp/crestic-test-gs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    cr_gauth *a = NULL;
    assert_int_equal(cr_gauth_new_service_account(path, CR_GAUTH_SCOPE_RW, &a), CR_E_FORMAT);
    assert_non_null(strstr(cr_error_message(), "not a PEM private key"));
    assert_null(strstr(cr_error_message(), "AAAA"));
    unlink(path);
    assert_int_equal(cr_gauth_new_static("tok en", &a), CR_E_USAGE);
    assert_int_equal(cr_gauth_new_static("tok", &a), 0);
    char *h = NULL;
    assert_int_equal(cr_gauth_header(a, &h), 0);
    assert_string_equal(h, "Authorization: Bearer tok");
    assert_false(cr_gauth_invalidate(a, h));
    cr_gauth_header_free(h);
    cr_gauth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_size_exact), cmocka_unit_test(test_list_page), cmocka_unit_test(test_range_header),
        cmocka_unit_test(test_error_message),
        cmocka_unit_test(test_token_answer),      cmocka_unit_test(test_key_file),  cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_key_file_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
