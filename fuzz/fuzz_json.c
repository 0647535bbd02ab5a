/* Fuzz util/json: parse anything; whatever parses must re-serialise, and
 * valid UTF-8 strings must survive writer -> reader unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/goquote.h"
#include "util/json.h"

static int valid_utf8(const char *s, size_t n)
{
    uint32_t r;
    for (size_t i = 0; i < n;) {
        int len = cr_utf8_decode((const uint8_t *)s + i, n - i, &r);
        if (!len) return 0;
        i += (size_t)len;
    }
    return 1;
}

static void check_string(const char *s, size_t n)
{
    cr_buf b = CR_BUF_INIT;
    if (cr_json_put_string(&b, s, n) < 0) abort();
    cr_json_doc *doc = NULL;
    if (cr_json_parse((const char *)b.data, b.len, &doc) < 0) abort(); /* writer output is valid JSON */
    const cr_json *v = cr_json_root(doc);
    if (v->type != CR_JSON_STRING) abort();
    if (valid_utf8(s, n) && (v->len != n || memcmp(v->str, s, n) != 0)) abort();
    cr_json_free(doc);
    cr_buf_free(&b);
}

static void walk(const cr_json *v, int depth)
{
    if (depth > CR_JSON_MAX_DEPTH) abort();
    if (v->key) check_string(v->key, v->keylen);
    uint64_t u;
    int64_t i;
    uint32_t u32;
    switch (v->type) {
    case CR_JSON_STRING:
        if (v->str[v->len] != 0) abort();
        check_string(v->str, v->len);
        break;
    case CR_JSON_NUMBER:
        if (v->str[v->len] != 0) abort();
        if (cr_json_u64(v, &u) == 0 && cr_json_u32(v, &u32) == 0 && u != u32) abort();
        if (cr_json_i64(v, &i) == 0 && i >= 0 && cr_json_u64(v, &u) == 0 && (uint64_t)i != u) abort();
        break;
    case CR_JSON_ARRAY:
    case CR_JSON_OBJECT:
        for (uint32_t k = 0; k < v->len; k++) walk(&v->kids[k], depth + 1);
        if (v->type == CR_JSON_OBJECT) {
            (void)cr_json_get(v, "name");
            (void)cr_json_get(v, "size");
            if (v->len && v->kids[v->len - 1].keylen == strlen(v->kids[v->len - 1].key) &&
                cr_json_get(v, v->kids[v->len - 1].key) != &v->kids[v->len - 1])
                abort(); /* the last member with a name always wins */
        }
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_json_doc *doc = NULL;
    if (cr_json_parse((const char *)data, size, &doc) == 0) {
        walk(cr_json_root(doc), 0);
        cr_json_free(doc);
    }
    /* base64: decoding anything is safe; encoding round-trips. */
    cr_buf b = CR_BUF_INIT, d = CR_BUF_INIT;
    (void)cr_base64_decode(&d, (const char *)data, size);
    if (cr_base64_encode(&b, data, size) < 0) abort();
    if (cr_base64_decode(&d, (const char *)b.data, b.len) < 0) abort();
    if (d.len != size || (size && memcmp(d.data, data, size) != 0)) abort();
    cr_buf_free(&b);
    cr_buf_free(&d);
    return 0;
}
