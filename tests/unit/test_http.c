/* backends/http: URL redaction, status messages, giving up on a dead server.
 * (Requests against a real server are covered by tests/e2e/test_backend_rest.sh.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backends/http.h"
#include "util/error.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_redact_url(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"http://u:p@h:1/x", "http://u:***@h:1/x"},
        {"rest:https://user:pw@host/repo/", "rest:https://user:***@host/repo/"},
        {"http://u:p@ss@h/", "http://u:***@h/"},     /* the last '@' ends the userinfo */
        {"http://user@h/", "http://user@h/"},        /* no password: nothing to hide */
        {"http://h:8000/repo", "http://h:8000/repo"},
        {"http://h/a@b:c", "http://h/a@b:c"},        /* '@' in the path is not userinfo */
        {"/local/path", "/local/path"},
    };
    cr_buf b = CR_BUF_INIT;
    for (size_t i = 0; i < LEN(cases); i++) {
        assert_int_equal(cr_http_redact_url(cases[i].in, &b), 0);
        assert_string_equal((const char *)b.data, cases[i].out);
    }
    cr_buf_free(&b);
}

static void check_status(long status, const char *body, int want_code, const char *want_msg)
{
    cr_http_req req = {.method = "GET", .url = "http://127.0.0.1:1/repo/config"};
    cr_http_resp resp = {.status = status};
    if (body) assert_int_equal(cr_buf_puts(&resp.body, body), 0);
    assert_int_equal(cr_http_status_error(&req, &resp), want_code);
    assert_string_equal(cr_error_message(), want_msg);
    cr_http_resp_free(&resp);
}

static void test_status_error(void **state)
{
    (void)state;
    check_status(401, "Unauthorized\n", -EACCES, "GET http://127.0.0.1:1/repo/config: 401 Unauthorized: Unauthorized");
    check_status(403, NULL, -EACCES, "GET http://127.0.0.1:1/repo/config: 403 Forbidden");
    check_status(404, "not found", -ENOENT, "GET http://127.0.0.1:1/repo/config: 404 Not Found: not found");
    check_status(500, "\x01\x02 binary", -EIO, "GET http://127.0.0.1:1/repo/config: 500 Internal Server Error");
    check_status(418, "", -EIO, "GET http://127.0.0.1:1/repo/config: 418");
}

/* A loopback port that nobody listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_gives_up_within_cap(void **state)
{
    (void)state;
    setenv("CRESTIC_HTTP_RETRY_MAX_SECONDS", "1", 1);
    cr_http *h = NULL;
    cr_http_config cfg = {.username = "user", .password = "secret-password"};
    assert_int_equal(cr_http_new(&cfg, &h), 0);
    unsetenv("CRESTIC_HTTP_RETRY_MAX_SECONDS");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/repo/config", closed_port());
    cr_http_req req = {.method = "HEAD", .url = url};
    cr_http_resp resp = {0};
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w"); /* the retry notes */
    time_t t0 = time(NULL);
    int r = cr_http_request(h, &req, &resp);
    time_t t1 = time(NULL);
    fclose(stderr);
    stderr = saved;
    assert_int_equal(r, -EIO);
    assert_true(t1 - t0 <= 3);
    const char *msg = cr_error_message();
    assert_non_null(strstr(msg, "giving up after"));
    assert_non_null(strstr(msg, url));
    assert_null(strstr(msg, "secret-password"));
    cr_http_resp_free(&resp);
    cr_http_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_status_error),
        cmocka_unit_test(test_gives_up_within_cap),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
