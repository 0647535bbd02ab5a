/* libFuzzer target for the B2 answer parsers and name encoding (backends/b2proto.h).
 *  - every parser accepts or fails cleanly (no crash, no leak) on any input;
 *  - a parsed authorization has a non-empty token, http(s) URLs without a
 *    trailing slash and NUL-free strings; a parsed listing hands only
 *    entries with a name and action to the callback;
 *  - error code/message stay within their arrays and are printable;
 *  - cr_b2_encode_name's output uses only unreserved characters, '/' and
 *    %XX escapes, and decodes back to the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/b2proto.h"
#include "util/buf.h"
#include "util/error.h"

static void check_url(const char *u)
{
    if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))) abort();
    size_t n = strlen(u);
    if (n && u[n - 1] == '/') abort();
}

static int count_cb(void *ud, const cr_b2_file *f)
{
    if (!f->name || !f->action) abort();
    if (strcmp(f->action, "folder") && !f->id) abort();
    (*(int *)ud)++;
    return *(int *)ud > 1000 ? 1 : 0; /* a non-zero return must stop the walk */
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_encoding(const char *s)
{
    cr_buf enc = CR_BUF_INIT;
    if (cr_b2_encode_name(&enc, s) < 0) abort();
    size_t j = 0, n = strlen(s);
    for (size_t i = 0; i < enc.len; i++, j++) {
        char c = (char)enc.data[i];
        if (c == '%') {
            if (i + 2 >= enc.len) abort();
            int h = hexval((char)enc.data[i + 1]), l = hexval((char)enc.data[i + 2]);
            if (h < 0 || l < 0 || j >= n || (unsigned char)s[j] != (unsigned)(h * 16 + l)) abort();
            i += 2;
        } else {
            if (!strchr("-._~/", c) && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) abort();
            if (j >= n || s[j] != c) abort();
        }
    }
    if (j != n) abort();
    cr_buf_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;

    cr_b2_auth a;
    if (cr_b2_parse_auth(text, size, &a) == 0) {
        if (!a.token || !a.token[0] || !a.account_id) abort();
        check_url(a.api_url);
        check_url(a.download_url);
        cr_b2_auth_free(&a);
    }

    char code[16], msg[32];
    cr_b2_parse_error(text, size, code, sizeof code, msg, sizeof msg);
    if (strlen(code) >= sizeof code || strlen(msg) >= sizeof msg) abort();
    for (const char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20) abort();

    char *url = NULL, *token = NULL;
    if (cr_b2_parse_upload_url(text, size, &url, &token) == 0) {
        check_url(url);
        if (!token) abort();
    } else if (url || token) {
        abort(); /* nothing is handed out on failure */
    }
    free(url);
    free(token);

    char *id = NULL;
    (void)cr_b2_parse_bucket_id(text, size, "bucket-1", &id);
    free(id);
    id = NULL;
    (void)cr_b2_parse_file_id(text, size, &id);
    free(id);

    int count = 0;
    char *next = NULL, *next_id = NULL;
    (void)cr_b2_parse_file_list(text, size, count_cb, &count, &next, &next_id);
    free(next);
    free(next_id);
    next = NULL;
    (void)cr_b2_parse_file_list(text, size, count_cb, &count, &next, NULL);
    free(next);

    char *copy = malloc(size + 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    copy[size] = 0;
    check_encoding(copy);
    free(copy);
    cr_error_clear();
    return 0;
}
