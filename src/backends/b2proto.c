/* B2 native API answers and file-name encoding (see b2proto.h). */
#include "backends/b2proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

static void doc_freep(cr_json_doc **d)
{
    cr_json_free(*d);
}

static int parse_object(const char *text, size_t n, const char *what, cr_json_doc **doc, const cr_json **root)
{
    CR_TRY_CTX(cr_json_parse(text, n, doc), "%s", what);
    *root = cr_json_root(*doc);
    if (!cr_json_is(*root, CR_JSON_OBJECT)) return cr_error(CR_E_FORMAT, "%s: answer is not a JSON object", what);
    return 0;
}

/* A string member without NUL bytes, copied; absent or null leaves *out NULL
 * unless required. */
static int get_string(const cr_json *obj, const char *key, bool required, const char *what, char **out)
{
    const cr_json *v = cr_json_get(obj, key);
    *out = NULL;
    if (cr_json_is_nullish(v) && !required) return 0;
    if (!cr_json_is(v, CR_JSON_STRING) || memchr(v->str, 0, v->len))
        return cr_error(CR_E_FORMAT, "%s: member \"%s\" missing or not a string", what, key);
    if (!(*out = strdup(v->str))) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static int get_u64(const cr_json *obj, const char *key, const char *what, uint64_t *out)
{
    if (cr_json_u64(cr_json_get(obj, key), out) < 0)
        return cr_error(CR_E_FORMAT, "%s: member \"%s\" missing or not a non-negative integer", what, key);
    return 0;
}

/* URLs handed out by the service: http(s), printable, no trailing '/'. */
static int check_url(char *url, const char *what)
{
    if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7))
        return cr_error(CR_E_FORMAT, "%s: URL does not start with http:// or https://", what);
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return cr_error(CR_E_FORMAT, "%s: URL with blanks or control characters", what);
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/') url[--len] = 0;
    return 0;
}

/* ---- b2_authorize_account ------------------------------------------------------ */

void cr_b2_auth_free(cr_b2_auth *a)
{
    if (a->token) explicit_bzero(a->token, strlen(a->token));
    free(a->account_id);
    free(a->token);
    free(a->api_url);
    free(a->download_url);
    free(a->allowed_bucket_id);
    free(a->allowed_bucket_name);
    memset(a, 0, sizeof *a);
}

/* v2: allowed.bucketId/bucketName; v3: allowed.buckets[] of {id, name}
 * (only a key restricted to exactly one bucket is remembered). */
static int parse_allowed(const cr_json *allowed, cr_b2_auth *out)
{
    const char *what = "b2_authorize_account";
    if (!cr_json_is(allowed, CR_JSON_OBJECT)) return 0;
    const cr_json *buckets = cr_json_get(allowed, "buckets");
    if (cr_json_is(buckets, CR_JSON_ARRAY)) {
        if (buckets->len != 1 || !cr_json_is(&buckets->kids[0], CR_JSON_OBJECT)) return 0;
        CR_TRY(get_string(&buckets->kids[0], "id", false, what, &out->allowed_bucket_id));
        return get_string(&buckets->kids[0], "name", false, what, &out->allowed_bucket_name);
    }
    CR_TRY(get_string(allowed, "bucketId", false, what, &out->allowed_bucket_id));
    return get_string(allowed, "bucketName", false, what, &out->allowed_bucket_name);
}

static int parse_auth_members(const cr_json *root, cr_b2_auth *out)
{
    const char *what = "b2_authorize_account";
    const cr_json *api = cr_json_get(cr_json_get(root, "apiInfo"), "storageApi");
    const cr_json *src = cr_json_is(api, CR_JSON_OBJECT) ? api : root; /* v3 or v2 */
    CR_TRY(get_string(root, "accountId", true, what, &out->account_id));
    CR_TRY(get_string(root, "authorizationToken", true, what, &out->token));
    CR_TRY(get_string(src, "apiUrl", true, what, &out->api_url));
    CR_TRY(get_string(src, "downloadUrl", true, what, &out->download_url));
    CR_TRY(check_url(out->api_url, what));
    CR_TRY(check_url(out->download_url, what));
    CR_TRY(get_u64(src, "recommendedPartSize", what, &out->recommended_part_size));
    CR_TRY(get_u64(src, "absoluteMinimumPartSize", what, &out->min_part_size));
    if (!out->token[0]) return cr_error(CR_E_FORMAT, "%s: empty authorizationToken", what);
    return parse_allowed(cr_json_get(src, "allowed"), out);
}

int cr_b2_parse_auth(const char *text, size_t n, cr_b2_auth *out)
{
    memset(out, 0, sizeof *out);
    _cleanup_(doc_freep) cr_json_doc *doc = NULL;
    const cr_json *root;
    int r = parse_object(text, n, "b2_authorize_account", &doc, &root);
    if (r == 0) r = parse_auth_members(root, out);
    if (r < 0) cr_b2_auth_free(out);
    return r;
}

/* ---- errors ------------------------------------------------------------------- */

static void copy_printable(char *dst, size_t cap, const cr_json *v)
{
    size_t j = 0;
    if (!cap) return;
    for (uint32_t i = 0; cr_json_is(v, CR_JSON_STRING) && i < v->len && j + 1 < cap; i++) {
        unsigned char c = (unsigned char)v->str[i];
        dst[j++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    dst[j] = 0;
}

void cr_b2_parse_error(const char *text, size_t n, char *code, size_t code_len, char *msg, size_t msg_len)
{
    if (code_len) code[0] = 0;
    if (msg_len) msg[0] = 0;
    _cleanup_(doc_freep) cr_json_doc *doc = NULL;
    if (cr_json_parse(text, n, &doc) < 0) {
        cr_error_clear();
        return;
    }
    const cr_json *root = cr_json_root(doc);
    if (!cr_json_is(root, CR_JSON_OBJECT)) return;
    copy_printable(code, code_len, cr_json_get(root, "code"));
    copy_printable(msg, msg_len, cr_json_get(root, "message"));
}

/* ---- small answers --------------------------------------------------------------- */

int cr_b2_parse_upload_url(const char *text, size_t n, char **url, char **token)
{
    const char *what = "b2_get_upload_url";
    *url = *token = NULL;
    _cleanup_(doc_freep) cr_json_doc *doc = NULL;
    const cr_json *root;
    CR_TRY(parse_object(text, n, what, &doc, &root));
    int r = get_string(root, "uploadUrl", true, what, url);
    if (r == 0) r = check_url(*url, what);
    if (r == 0) r = get_string(root, "authorizationToken", true, what, token);
    if (r < 0) {
        free(*url);
        free(*token);
        *url = *token = NULL;
    }
    return r;
}

static bool bucket_named(const cr_json *b, const char *name)
{
    const cr_json *v = cr_json_get(b, "bucketName");
    return cr_json_is(v, CR_JSON_STRING) && v->len == strlen(name) && !memcmp(v->str, name, v->len);
}

int cr_b2_parse_bucket_id(const char *text, size_t n, const char *name, char **id)
{
    const char *what = "b2_list_buckets";
    *id = NULL;
    _cleanup_(doc_freep) cr_json_doc *doc = NULL;
    const cr_json *root;
    CR_TRY(parse_object(text, n, what, &doc, &root));
    const cr_json *list = cr_json_get(root, "buckets");
    if (!list) return bucket_named(root, name) ? get_string(root, "bucketId", true, what, id) : 0;
    if (!cr_json_is(list, CR_JSON_ARRAY)) return cr_error(CR_E_FORMAT, "%s: \"buckets\" is not an array", what);
    for (uint32_t i = 0; i < list->len; i++)
        if (cr_json_is(&list->kids[i], CR_JSON_OBJECT) && bucket_named(&list->kids[i], name))
            return get_string(&list->kids[i], "bucketId", true, what, id);
    return 0;
}

int cr_b2_parse_file_id(const char *text, size_t n, char **id)
{
    _cleanup_(doc_freep) cr_json_doc *doc = NULL;
    const cr_json *root;
    *id = NULL;
    CR_TRY(parse_object(text, n, "file answer", &doc, &root));
    return get_string(root, "fileId", true, "file answer", id);
}

/* ---- listings ---------------------------------------------------------------- */

static int list_entry(const cr_json *e, uint32_t i, cr_b2_file_cb cb, void *ud)
{
    const cr_json *name = cr_json_get(e, "fileName"), *action = cr_json_get(e, "action"), *id = cr_json_get(e, "fileId");
    cr_b2_file f = {0};
    if (!cr_json_is(e, CR_JSON_OBJECT) || !cr_json_is(name, CR_JSON_STRING) || !cr_json_is(action, CR_JSON_STRING) ||
        memchr(name->str, 0, name->len))
        return cr_error(CR_E_FORMAT, "file list: malformed entry %u", i);
    f.name = name->str;
    f.action = action->str;
    f.id = cr_json_is(id, CR_JSON_STRING) ? id->str : NULL;
    if (strcmp(f.action, "folder") && (!f.id || get_u64(e, "contentLength", "file list", &f.size) < 0))
        return cr_error(CR_E_FORMAT, "file list: entry %u has no fileId or contentLength", i);
    return cb(ud, &f);
}

int cr_b2_parse_file_list(const char *text, size_t n, cr_b2_file_cb cb, void *ud, char **next_name, char **next_id)
{
    const char *what = "file list";
    *next_name = NULL;
    if (next_id) *next_id = NULL;
    _cleanup_(doc_freep) cr_json_doc *doc = NULL;
    const cr_json *root;
    CR_TRY(parse_object(text, n, what, &doc, &root));
    const cr_json *files = cr_json_get(root, "files");
    if (!cr_json_is(files, CR_JSON_ARRAY)) return cr_error(CR_E_FORMAT, "%s: \"files\" missing or not an array", what);
    for (uint32_t i = 0; i < files->len; i++) {
        int r = list_entry(&files->kids[i], i, cb, ud);
        if (r) return r;
    }
    CR_TRY(get_string(root, "nextFileName", false, what, next_name));
    if (!next_id) return 0;
    int r = get_string(root, "nextFileId", false, what, next_id);
    if (r < 0) {
        free(*next_name);
        *next_name = NULL;
    }
    return r;
}

/* ---- names ------------------------------------------------------------------- */

int cr_b2_encode_name(cr_buf *out, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    cr_buf_reset(out);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        unsigned char c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~/", c);
        if (keep) CR_TRY(cr_buf_putc(out, (char)c));
        else CR_TRY(cr_buf_append(out, (char[]){'%', hex[c >> 4], hex[c & 15]}, 3));
    }
    return cr_buf_nul(out);
}
