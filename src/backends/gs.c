/* Google Cloud Storage backend on the JSON API (storage/v1).
 *
 * Location (restic's): gs:BUCKET:/PATH.  Objects are named PATH/config,
 * PATH/keys/ID, PATH/data/XX/ID, ... (restic's default layout).
 * Credentials: GOOGLE_ACCESS_TOKEN (a bearer token, wins) or
 * GOOGLE_APPLICATION_CREDENTIALS (service-account key file, gauth.h);
 * GOOGLE_PROJECT_ID names the project a new bucket is created in.
 * Options: gs.connections, gs.region (location of a new bucket),
 * gs.endpoint (another server than https://storage.googleapis.com).
 *
 * Saves up to the resumable threshold go in one multipart request carrying
 * the MD5 (the server refuses a mismatch); larger ones use a resumable upload
 * session, sent in chunks and resumed where the server says it stands after
 * a failure.  Test knobs: CRESTIC_GS_RESUMABLE_THRESHOLD, CRESTIC_GS_CHUNK_SIZE
 * (bytes), CRESTIC_LIST_PAGE_SIZE. */
#include "backends/gs.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/gauth.h"
#include "backends/http.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/id.h"
#include "util/json.h"

#define DEFAULT_ENDPOINT "https://storage.googleapis.com"
#define DEFAULT_CONNECTIONS 5
#define DEFAULT_REGION "us"
#define DEFAULT_PAGE_SIZE 1000
#define CHUNK_GRANULE (256u * 1024) /* resumable chunks are multiples of this */
#define DEFAULT_RESUMABLE_THRESHOLD (8u << 20)
#define DEFAULT_CHUNK_SIZE (8u << 20)
#define MAX_UPLOAD_FAILURES 10 /* in a row, without progress */
#define MAX_SESSION_RESTARTS 3

typedef struct {
    cr_backend base;
    cr_http *http;
    cr_gauth *auth;
    char *endpoint; /* scheme://host[:port], no trailing '/' */
    char *bucket;
    char *prefix; /* "" or "path/" */
    size_t resumable_threshold, chunk_size;
    unsigned page_size;
} gs_backend;

static gs_backend *as_gs(cr_backend *b)
{
    return (gs_backend *)b;
}

static void json_freep(cr_json_doc **d)
{
    cr_json_free(*d);
}

/* ---- answer parsers (gs.h) -------------------------------------------------- */

/* GCS writes uint64 fields as JSON strings; a plain number is taken too. */
static int size_value(const cr_json *v, uint64_t *out)
{
    if (cr_json_is(v, CR_JSON_NUMBER)) return cr_json_u64(v, out);
    if (!cr_json_is(v, CR_JSON_STRING) || v->len == 0 || v->len > 20) return CR_E_FORMAT;
    uint64_t n = 0;
    for (uint32_t i = 0; i < v->len; i++) {
        unsigned d = (unsigned char)v->str[i] - '0';
        if (d > 9 || n > (UINT64_MAX - d) / 10) return CR_E_FORMAT;
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

int cr_gs_parse_object(const char *text, size_t n, uint64_t *size)
{
    _cleanup_(json_freep) cr_json_doc *doc = NULL;
    CR_TRY(cr_json_parse(text, n, &doc));
    const cr_json *root = cr_json_root(doc);
    if (!cr_json_is(root, CR_JSON_OBJECT) || size_value(cr_json_get(root, "size"), size) < 0)
        return cr_error(CR_E_FORMAT, "object metadata without a valid \"size\"");
    return 0;
}

static int walk_items(const cr_json *items, cr_gs_item_cb cb, void *ud)
{
    if (cr_json_is_nullish(items)) return 0;
    if (!cr_json_is(items, CR_JSON_ARRAY)) return cr_error(CR_E_FORMAT, "\"items\" is not an array");
    for (uint32_t i = 0; i < items->len; i++) {
        const cr_json *name = cr_json_get(&items->kids[i], "name");
        uint64_t size;
        if (!cr_json_is(name, CR_JSON_STRING) || strlen(name->str) != name->len ||
            size_value(cr_json_get(&items->kids[i], "size"), &size) < 0)
            return cr_error(CR_E_FORMAT, "malformed list item %u", i);
        int r = cb(ud, name->str, size);
        if (r) return r;
    }
    return 0;
}

int cr_gs_parse_list(const char *text, size_t n, cr_gs_item_cb cb, void *ud, char **next_page_token)
{
    *next_page_token = NULL;
    _cleanup_(json_freep) cr_json_doc *doc = NULL;
    CR_TRY(cr_json_parse(text, n, &doc));
    const cr_json *root = cr_json_root(doc);
    if (!cr_json_is(root, CR_JSON_OBJECT)) return cr_error(CR_E_FORMAT, "object list is not a JSON object");
    const cr_json *next = cr_json_get(root, "nextPageToken");
    if (!cr_json_is_nullish(next) && (!cr_json_is(next, CR_JSON_STRING) || strlen(next->str) != next->len))
        return cr_error(CR_E_FORMAT, "\"nextPageToken\" is not a string");
    int r = walk_items(cr_json_get(root, "items"), cb, ud);
    if (r) return r; /* an error, or the callback's request to stop */
    if (cr_json_is(next, CR_JSON_STRING) && next->len && !(*next_page_token = strdup(next->str)))
        return cr_error(-ENOMEM, "out of memory");
    return 0;
}

void cr_gs_error_message(const char *text, size_t n, char *out, size_t outn)
{
    out[0] = 0;
    _cleanup_(json_freep) cr_json_doc *doc = NULL;
    if (cr_json_parse(text, n, &doc) < 0) return;
    const cr_json *msg = cr_json_get(cr_json_get(cr_json_root(doc), "error"), "message");
    if (!cr_json_is(msg, CR_JSON_STRING)) return;
    snprintf(out, outn, "%s", msg->str);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
}

/* ---- names and URLs --------------------------------------------------------- */

/* Percent-encode all but RFC 3986 unreserved characters ('/' too: object
 * names are one path segment in the JSON API). */
static int put_encoded(cr_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
            CR_TRY(cr_buf_putc(b, (char)*p));
        } else {
            CR_TRY(cr_buf_putc(b, '%'));
            CR_TRY(cr_buf_putc(b, hex[*p >> 4]));
            CR_TRY(cr_buf_putc(b, hex[*p & 15]));
        }
    }
    return cr_buf_nul(b);
}

static int check_name(cr_filetype t, const char *name)
{
    if (t == CR_FILE_CONFIG) return 0;
    if (!name || !name[0] || name[0] == '.' || strpbrk(name, "/?#%\\ "))
        return cr_error(-EINVAL, "invalid object name \"%s\"", name ? name : "");
    return 0;
}

/* PATH/config, PATH/data/XX/ID, PATH/keys/ID, ... */
static int object_name(gs_backend *gb, cr_filetype t, const char *name, cr_buf *out)
{
    CR_TRY(check_name(t, name));
    cr_buf_reset(out);
    if (t == CR_FILE_CONFIG) CR_TRY(cr_buf_printf(out, "%sconfig", gb->prefix));
    else if (t == CR_FILE_PACK && strlen(name) >= 2) CR_TRY(cr_buf_printf(out, "%sdata/%.2s/%s", gb->prefix, name, name));
    else CR_TRY(cr_buf_printf(out, "%s%s/%s", gb->prefix, cr_filetype_dir(t), name));
    return cr_buf_nul(out);
}

/* {endpoint}/storage/v1/b/{bucket}/o/{name}{suffix} */
static int object_url(gs_backend *gb, const char *object, const char *suffix, cr_buf *out)
{
    cr_buf_reset(out);
    CR_TRY(cr_buf_printf(out, "%s/storage/v1/b/%s/o/", gb->endpoint, gb->bucket));
    CR_TRY(put_encoded(out, object));
    CR_TRY(cr_buf_puts(out, suffix));
    return cr_buf_nul(out);
}

/* ---- requests --------------------------------------------------------------- */

/* One API call with the bearer token; a 401 with a token that can be renewed
 * is tried once more with a fresh one. */
static int gs_call(gs_backend *gb, cr_http_req *req, const char *const *extra, cr_http_resp *resp)
{
    for (int attempt = 0;; attempt++) {
        char *auth = NULL;
        CR_TRY(cr_gauth_header(gb->auth, &auth));
        const char *headers[8];
        size_t k = 0;
        headers[k++] = auth;
        for (size_t i = 0; extra && extra[i] && k < 7; i++) headers[k++] = extra[i];
        headers[k] = NULL;
        req->headers = headers;
        int r = cr_http_request(gb->http, req, resp);
        bool again = r == 0 && resp->status == 401 && attempt == 0 && cr_gauth_invalidate(gb->auth, auth);
        cr_gauth_header_free(auth);
        req->headers = NULL;
        if (!again) return r;
    }
}

static int gs_status_error(const cr_http_req *req, const cr_http_resp *resp)
{
    char msg[240];
    cr_gs_error_message((const char *)resp->body.data, resp->body.len, msg, sizeof msg);
    if (!msg[0] && resp->status != 401 && resp->status != 403) return cr_http_status_error(req, resp);
    int code = resp->status == 404 ? -ENOENT : resp->status == 401 || resp->status == 403 ? -EACCES : -EIO;
    const char *hint = resp->status == 401 ? " (check GOOGLE_ACCESS_TOKEN or GOOGLE_APPLICATION_CREDENTIALS)" : "";
    return cr_error(code, "%s %s: %ld%s%s%s", req->method, req->url, resp->status, msg[0] ? ": " : "", msg, hint);
}

/* ---- stat / load / remove --------------------------------------------------- */

static int gs_stat(cr_backend *b, cr_filetype t, const char *name, uint64_t *size)
{
    gs_backend *gb = as_gs(b);
    _cleanup_buf_ cr_buf obj = CR_BUF_INIT, url = CR_BUF_INIT;
    CR_TRY(object_name(gb, t, name, &obj));
    CR_TRY(object_url(gb, (const char *)obj.data, "", &url));
    cr_http_req req = {.method = "GET", .url = (const char *)url.data};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(gs_call(gb, &req, NULL, &resp));
    if (resp.status == 404) return -ENOENT;
    if (resp.status != 200) return gs_status_error(&req, &resp);
    CR_TRY_CTX(cr_gs_parse_object((const char *)resp.body.data, resp.body.len, size), "GET %s", req.url);
    return 0;
}

static int gs_load(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out)
{
    gs_backend *gb = as_gs(b);
    _cleanup_buf_ cr_buf obj = CR_BUF_INIT, url = CR_BUF_INIT;
    CR_TRY(object_name(gb, t, name, &obj));
    CR_TRY(object_url(gb, (const char *)obj.data, "?alt=media", &url));
    if (len > SIZE_MAX / 2) return cr_error(-EFBIG, "%s: range too large", (const char *)url.data);
    cr_http_req req = {.method = "GET", .url = (const char *)url.data, .range = off > 0 || len > 0,
                       .range_off = off, .range_len = len};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(gs_call(gb, &req, NULL, &resp));
    if (resp.status == 416)
        return cr_error(-EIO, "GET %s: range %llu+%llu is beyond the end of the object", req.url,
                        (unsigned long long)off, (unsigned long long)len);
    if (resp.status != 200 && !(resp.status == 206 && req.range)) return gs_status_error(&req, &resp);
    return cr_http_take_range(&req, &resp, out);
}

static int gs_remove(cr_backend *b, cr_filetype t, const char *name)
{
    gs_backend *gb = as_gs(b);
    _cleanup_buf_ cr_buf obj = CR_BUF_INIT, url = CR_BUF_INIT;
    CR_TRY(object_name(gb, t, name, &obj));
    CR_TRY(object_url(gb, (const char *)obj.data, "", &url));
    cr_http_req req = {.method = "DELETE", .url = (const char *)url.data};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(gs_call(gb, &req, NULL, &resp));
    if (resp.status == 204 || resp.status == 200 || resp.status == 404) return 0;
    return gs_status_error(&req, &resp);
}

/* ---- save ------------------------------------------------------------------- */

static int md5_base64(const void *data, size_t n, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(data, n, md, &mdlen, EVP_md5(), NULL) != 1) return cr_error(-EIO, "MD5 failed (OpenSSL)");
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    CR_TRY(cr_base64_encode(&b, md, mdlen));
    snprintf(out, 32, "%.*s", (int)b.len, (const char *)b.data);
    return 0;
}

/* {"name":"...","md5Hash":"..."} */
static int metadata_json(const char *object, const char *md5, cr_buf *out)
{
    CR_TRY(cr_buf_puts(out, "{\"name\":"));
    CR_TRY(cr_json_put_cstr(out, object));
    CR_TRY(cr_buf_printf(out, ",\"md5Hash\":\"%s\",\"contentType\":\"application/octet-stream\"}", md5));
    return 0;
}

/* A boundary string that does not occur in the data. */
static int pick_boundary(const void *data, size_t n, char out[48])
{
    for (int tries = 0; tries < 8; tries++) {
        unsigned char rnd[16];
        if (RAND_bytes(rnd, sizeof rnd) != 1) return cr_error(-EIO, "no random bytes (OpenSSL)");
        int k = snprintf(out, 48, "crestic-");
        for (size_t i = 0; i < sizeof rnd; i++) k += snprintf(out + k, (size_t)(48 - k), "%02x", rnd[i]);
        if (!memmem(data, n, out, strlen(out))) return 0;
    }
    return cr_error(-EIO, "no multipart boundary found that is absent from the data");
}

static int multipart_body(const char *meta, const void *data, size_t n, const char *boundary, cr_buf *out)
{
    CR_TRY(cr_buf_reserve(out, n + strlen(meta) + 256));
    CR_TRY(cr_buf_printf(out, "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n%s\r\n", boundary, meta));
    CR_TRY(cr_buf_printf(out, "--%s\r\nContent-Type: application/octet-stream\r\n\r\n", boundary));
    CR_TRY(cr_buf_append(out, data, n));
    return cr_buf_printf(out, "\r\n--%s--\r\n", boundary);
}

/* The object resource of a finished upload must have the size sent. */
static int check_uploaded(const cr_http_req *req, const cr_http_resp *resp, size_t n)
{
    uint64_t size;
    const char *url = req->display_url ? req->display_url : req->url;
    CR_TRY_CTX(cr_gs_parse_object((const char *)resp->body.data, resp->body.len, &size), "%s %s", req->method, url);
    if (size != n)
        return cr_error(-EIO, "%s %s: the server stored %llu bytes instead of %zu", req->method, url,
                        (unsigned long long)size, n);
    return 0;
}

static int save_multipart(gs_backend *gb, const char *meta, const void *data, size_t n)
{
    char boundary[48], ctype[96];
    CR_TRY(pick_boundary(data, n, boundary));
    snprintf(ctype, sizeof ctype, "Content-Type: multipart/related; boundary=%s", boundary);
    _cleanup_buf_ cr_buf body = CR_BUF_INIT, url = CR_BUF_INIT;
    CR_TRY(multipart_body(meta, data, n, boundary, &body));
    CR_TRY(cr_buf_printf(&url, "%s/upload/storage/v1/b/%s/o?uploadType=multipart", gb->endpoint, gb->bucket));
    const char *const extra[] = {ctype, NULL};
    cr_http_req req = {.method = "POST", .url = (const char *)url.data, .body = body.data, .body_len = body.len};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(gs_call(gb, &req, extra, &resp));
    if (resp.status != 200 && resp.status != 201) return gs_status_error(&req, &resp);
    return check_uploaded(&req, &resp, n);
}

/* -- resumable uploads -- */

/* Outcomes of one step of a resumable upload (negative: a definite error). */
enum { STEP_OK = 0, STEP_RETRY = 1 /* no progress: ask the session and go on */, STEP_SESSION_GONE = 2 };

typedef struct {
    gs_backend *gb;
    const char *object, *meta;
    const uint8_t *data;
    size_t n;
    char *session; /* the session URI (a capability: kept out of messages) */
    char *display; /* what messages show instead */
    size_t persisted;
    bool done;
} upload;

static int session_start(upload *u)
{
    _cleanup_buf_ cr_buf url = CR_BUF_INIT;
    CR_TRY(cr_buf_printf(&url, "%s/upload/storage/v1/b/%s/o?uploadType=resumable", u->gb->endpoint, u->gb->bucket));
    char length[64];
    snprintf(length, sizeof length, "X-Upload-Content-Length: %zu", u->n);
    const char *const extra[] = {"Content-Type: application/json; charset=UTF-8",
                                 "X-Upload-Content-Type: application/octet-stream", length, NULL};
    cr_http_req req = {.method = "POST", .url = (const char *)url.data, .body = u->meta, .body_len = strlen(u->meta)};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(gs_call(u->gb, &req, extra, &resp));
    if (resp.status != 200 && resp.status != 201) return gs_status_error(&req, &resp);
    char location[4096];
    if (!cr_http_resp_header(&resp, "Location", location, sizeof location) ||
        (strncmp(location, "https://", 8) && strncmp(location, "http://", 7)))
        return cr_error(-EIO, "POST %s: no usable Location for the upload session in the answer", req.url);
    free(u->session);
    free(u->display);
    u->display = NULL;
    if (!(u->session = strdup(location)) || asprintf(&u->display, "%s (upload session)", req.url) < 0) {
        u->display = NULL;
        return cr_error(-ENOMEM, "out of memory");
    }
    u->persisted = 0;
    return 0;
}

int cr_gs_parse_range(const char *value, uint64_t total, uint64_t *persisted)
{
    uint64_t last = 0;
    const char *p = value + 8;
    if (strncmp(value, "bytes=0-", 8) || !*p) return CR_E_FORMAT;
    for (; *p; p++) {
        unsigned d = (unsigned char)*p - '0';
        if (d > 9 || last > (UINT64_MAX - d) / 10) return CR_E_FORMAT;
        last = last * 10 + d;
    }
    if (last >= total) return CR_E_FORMAT;
    *persisted = last + 1;
    return 0;
}

/* The Range of a 308: what the server holds (nothing without it). */
static int persisted_from(const cr_http_resp *resp, size_t n, size_t *out)
{
    char range[64];
    uint64_t held = 0;
    if (cr_http_resp_header(resp, "Range", range, sizeof range) && cr_gs_parse_range(range, n, &held) < 0) return -EIO;
    *out = (size_t)held;
    return 0;
}

/* Interpret the answer to a chunk or status query: STEP_OK with u updated,
 * STEP_SESSION_GONE, or a definite error. */
static int session_answer(upload *u, const cr_http_req *req, const cr_http_resp *resp)
{
    if (resp->status == 200 || resp->status == 201) {
        CR_TRY(check_uploaded(req, resp, u->n));
        u->done = true;
        return STEP_OK;
    }
    if (resp->status == 308) {
        if (persisted_from(resp, u->n, &u->persisted) < 0)
            return cr_error(-EIO, "upload of %s: malformed Range in the server's answer", u->object);
        return STEP_OK;
    }
    if (resp->status == 404 || resp->status == 410) return STEP_SESSION_GONE;
    char msg[200];
    cr_gs_error_message((const char *)resp->body.data, resp->body.len, msg, sizeof msg);
    return cr_error(resp->status == 401 || resp->status == 403 ? -EACCES : -EIO, "upload of %s: %s %ld%s%s", u->object,
                    req->method, resp->status, msg[0] ? ": " : "", msg);
}

static bool transient(long status)
{
    return status >= 500 || status == 429 || status == 408;
}

/* Ask the server how much it holds ("Content-Range: bytes * / N"). */
static int session_query(upload *u)
{
    char range[64];
    snprintf(range, sizeof range, "Content-Range: bytes */%zu", u->n);
    const char *const headers[] = {range, NULL};
    cr_http_req req = {.method = "PUT", .url = u->session, .display_url = u->display, .headers = headers, .body = "", .body_len = 0};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    int r = cr_http_request(u->gb->http, &req, &resp);
    if (r < 0) return cr_error_ctx(r, "upload of %s: asking the upload session how far it got", u->object);
    return session_answer(u, &req, &resp);
}

/* Send the next chunk once. */
static int send_chunk(upload *u, size_t chunk)
{
    char range[96];
    size_t len = u->n - u->persisted < chunk ? u->n - u->persisted : chunk;
    snprintf(range, sizeof range, "Content-Range: bytes %zu-%zu/%zu", u->persisted, u->persisted + len - 1, u->n);
    const char *const headers[] = {range, "Content-Type: application/octet-stream", NULL};
    cr_http_req req = {.method = "PUT", .url = u->session, .display_url = u->display, .headers = headers, .body = u->data + u->persisted,
                       .body_len = len, .no_retry = true};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    int r = cr_http_request(u->gb->http, &req, &resp);
    if (r == CR_E_INTERRUPTED || r == -ENOMEM) return r;
    if (r < 0 || transient(resp.status)) {
        fprintf(stderr, "gs: upload of %s interrupted at byte %zu (%s), resuming\n", u->object, u->persisted,
                r < 0 ? "connection failed" : resp.status >= 500 ? "server error" : "server busy");
        cr_error_clear();
        return STEP_RETRY;
    }
    size_t before = u->persisted;
    r = session_answer(u, &req, &resp);
    if (r != STEP_OK) return r;
    return u->done || u->persisted > before ? STEP_OK : STEP_RETRY;
}

static void backoff(int failures)
{
    double s = 0.25;
    for (int i = 1; i < failures && s < 4; i++) s *= 1.5;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int resumable_run(upload *u)
{
    int failures = 0, restarts = 0;
    CR_TRY(session_start(u));
    while (!u->done) {
        bool all_sent = u->persisted == u->n;
        int r = all_sent ? session_query(u) : send_chunk(u, u->gb->chunk_size);
        if (r < 0) return r;
        if (r == STEP_OK && all_sent && !u->done) r = STEP_RETRY; /* holds every byte, yet unfinished */
        if (r == STEP_OK) {
            failures = 0;
            continue;
        }
        if (r == STEP_RETRY) {
            if (++failures > MAX_UPLOAD_FAILURES)
                return cr_error(-EIO, "upload of %s: no progress after %d attempts", u->object, MAX_UPLOAD_FAILURES);
            backoff(failures);
            r = session_query(u);
            if (r < 0) return r;
        }
        if (r == STEP_SESSION_GONE) { /* expired or lost: start over */
            if (++restarts > MAX_SESSION_RESTARTS)
                return cr_error(-EIO, "upload of %s: the upload session was lost %d times", u->object, restarts);
            fprintf(stderr, "gs: the upload session of %s was lost, starting over\n", u->object);
            CR_TRY(session_start(u));
        }
    }
    return 0;
}

static int save_resumable(gs_backend *gb, const char *object, const char *meta, const void *data, size_t n)
{
    upload u = {.gb = gb, .object = object, .meta = meta, .data = data, .n = n};
    int r = resumable_run(&u);
    free(u.session);
    free(u.display);
    return r;
}

static int gs_save(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n)
{
    gs_backend *gb = as_gs(b);
    _cleanup_buf_ cr_buf obj = CR_BUF_INIT, meta = CR_BUF_INIT;
    char md5[32];
    CR_TRY(object_name(gb, t, name, &obj));
    CR_TRY(md5_base64(data, n, md5));
    CR_TRY(metadata_json((const char *)obj.data, md5, &meta));
    CR_TRY(cr_buf_nul(&meta));
    if (n <= gb->resumable_threshold || n == 0) return save_multipart(gb, (const char *)meta.data, data, n);
    return save_resumable(gb, (const char *)obj.data, (const char *)meta.data, data, n);
}

/* ---- list ------------------------------------------------------------------- */

typedef struct {
    size_t prefix_len;
    cr_list_cb cb;
    void *ud;
} list_ctx;

static int list_item(void *ud, const char *name, uint64_t size)
{
    list_ctx *lc = ud;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (strlen(name) < lc->prefix_len || !cr_is_hex_name(base, strlen(base))) return 0;
    return lc->cb(lc->ud, base, size);
}

static int list_page(gs_backend *gb, const char *prefix, list_ctx *lc, char **token)
{
    _cleanup_buf_ cr_buf url = CR_BUF_INIT;
    CR_TRY(cr_buf_printf(&url, "%s/storage/v1/b/%s/o?prefix=", gb->endpoint, gb->bucket));
    CR_TRY(put_encoded(&url, prefix));
    CR_TRY(cr_buf_printf(&url, "&maxResults=%u", gb->page_size));
    if (*token) {
        CR_TRY(cr_buf_puts(&url, "&pageToken="));
        CR_TRY(put_encoded(&url, *token));
    }
    free(*token);
    *token = NULL;
    cr_http_req req = {.method = "GET", .url = (const char *)url.data};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(gs_call(gb, &req, NULL, &resp));
    if (resp.status != 200) return gs_status_error(&req, &resp);
    int r = cr_gs_parse_list((const char *)resp.body.data, resp.body.len, list_item, lc, token);
    if (r == CR_E_FORMAT) return cr_error_ctx(r, "GET %s", req.url);
    return r;
}

static int gs_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud)
{
    gs_backend *gb = as_gs(b);
    if (t == CR_FILE_CONFIG) return 0;
    _cleanup_buf_ cr_buf prefix = CR_BUF_INIT;
    CR_TRY(cr_buf_printf(&prefix, "%s%s/", gb->prefix, cr_filetype_dir(t)));
    list_ctx lc = {.prefix_len = prefix.len, .cb = cb, .ud = ud};
    char *token = NULL;
    int r;
    do {
        r = list_page(gb, (const char *)prefix.data, &lc, &token);
    } while (r == 0 && token);
    free(token);
    return r;
}

/* ---- location and settings -------------------------------------------------- */

/* Go's path.Clean without the leading '/', "" for the bucket's root. */
static int clean_prefix(const char *p, char **out)
{
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (len == 2 && !strncmp(p, "..", 2)) {
            while (b.len > 0 && b.data[b.len - 1] != '/') b.len--;
            if (b.len > 0) b.len--;
        } else if (len > 0 && !(len == 1 && *p == '.')) {
            if (b.len) CR_TRY(cr_buf_putc(&b, '/'));
            CR_TRY(cr_buf_append(&b, p, len));
        }
        p += len;
        while (*p == '/') p++;
    }
    if (b.len) CR_TRY(cr_buf_putc(&b, '/'));
    CR_TRY(cr_buf_nul(&b));
    *out = b.len ? (char *)cr_buf_steal(&b, NULL) : strdup("");
    if (!*out) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

/* BUCKET:/PATH (what follows "gs:"). */
static int parse_location(gs_backend *gb, const char *loc)
{
    const char *colon = strchr(loc, ':');
    if (!colon) return cr_error(CR_E_USAGE, "gs: invalid location \"gs:%s\": expected gs:BUCKET:/PATH", loc);
    size_t blen = (size_t)(colon - loc);
    if (blen == 0 || blen > 222 || strspn(loc, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") < blen)
        return cr_error(CR_E_USAGE, "gs: invalid bucket name \"%.*s\"", (int)blen, loc);
    if (!(gb->bucket = strndup(loc, blen))) return cr_error(-ENOMEM, "out of memory");
    return clean_prefix(colon + 1, &gb->prefix);
}

static int endpoint_setting(gs_backend *gb)
{
    const char *e = cr_backend_option("gs", "endpoint");
    if (!e) e = DEFAULT_ENDPOINT;
    size_t n = strlen(e);
    while (n > 0 && e[n - 1] == '/') n--;
    const char *host = !strncmp(e, "https://", 8) ? e + 8 : !strncmp(e, "http://", 7) ? e + 7 : NULL;
    size_t host_len = host ? strcspn(host, "/") : 0;
    if (host && host + host_len > e + n) host_len = (size_t)(e + n - host);
    if (!host || host_len == 0 || host[host_len - 1] == ':' || memchr(e, '@', n) || memchr(e, '?', n) || memchr(e, '#', n))
        return cr_error(CR_E_USAGE, "invalid value for option gs.endpoint: expected http(s)://host[:port][/path]");
    if (!(gb->endpoint = strndup(e, n))) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static size_t env_size(const char *name, size_t def, size_t min)
{
    const char *s = getenv(name);
    char *end;
    unsigned long long v = s && *s ? strtoull(s, &end, 10) : 0;
    return s && *s && !*end && v >= min && v <= SIZE_MAX / 2 ? (size_t)v : def;
}

static int settings(gs_backend *gb)
{
    CR_TRY(cr_backend_option_uint("gs", "connections", DEFAULT_CONNECTIONS, 1, 128, &gb->base.connections));
    CR_TRY(endpoint_setting(gb));
    gb->resumable_threshold = env_size("CRESTIC_GS_RESUMABLE_THRESHOLD", DEFAULT_RESUMABLE_THRESHOLD, 0);
    size_t chunk = env_size("CRESTIC_GS_CHUNK_SIZE", DEFAULT_CHUNK_SIZE, 1);
    gb->chunk_size = (chunk + CHUNK_GRANULE - 1) / CHUNK_GRANULE * CHUNK_GRANULE;
    gb->page_size = (unsigned)env_size("CRESTIC_LIST_PAGE_SIZE", DEFAULT_PAGE_SIZE, 1);
    if (gb->page_size > DEFAULT_PAGE_SIZE) gb->page_size = DEFAULT_PAGE_SIZE;
    return 0;
}

/* GOOGLE_ACCESS_TOKEN wins over GOOGLE_APPLICATION_CREDENTIALS (as restic). */
static int credentials(gs_backend *gb)
{
    const char *token = getenv("GOOGLE_ACCESS_TOKEN"), *file = getenv("GOOGLE_APPLICATION_CREDENTIALS");
    if (token && *token) return cr_gauth_new_static(token, &gb->auth);
    if (file && *file) return cr_gauth_new_service_account(file, CR_GAUTH_SCOPE_RW, &gb->auth);
    return cr_error(CR_E_USAGE, "gs: no credentials: set GOOGLE_APPLICATION_CREDENTIALS (a service-account key file) "
                                "or GOOGLE_ACCESS_TOKEN");
}

static void gs_close(cr_backend *b)
{
    gs_backend *gb = as_gs(b);
    cr_http_free(gb->http);
    cr_gauth_free(gb->auth);
    free(gb->endpoint);
    free(gb->bucket);
    free(gb->prefix);
    free(b->location);
    free(gb);
}

/* GET the bucket: 0 exists, -ENOENT missing.  A 403 (a key allowed to use
 * objects but not to read bucket metadata) counts as existing. */
static int bucket_exists(gs_backend *gb)
{
    _cleanup_buf_ cr_buf url = CR_BUF_INIT;
    CR_TRY(cr_buf_printf(&url, "%s/storage/v1/b/%s", gb->endpoint, gb->bucket));
    CR_TRY(cr_buf_nul(&url));
    cr_http_req req = {.method = "GET", .url = (const char *)url.data};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(gs_call(gb, &req, NULL, &resp));
    if (resp.status == 200 || resp.status == 403) return 0;
    if (resp.status == 404) return -ENOENT;
    return gs_status_error(&req, &resp);
}

static int setup(gs_backend *gb, const char *loc)
{
    CR_TRY(parse_location(gb, loc));
    CR_TRY(settings(gb));
    if (asprintf(&gb->base.location, "gs:%s:/%s", gb->bucket, gb->prefix) < 0) {
        gb->base.location = NULL;
        return cr_error(-ENOMEM, "out of memory");
    }
    size_t l = strlen(gb->base.location);
    if (l > 4 && gb->base.location[l - 1] == '/' && gb->prefix[0]) gb->base.location[l - 1] = 0;
    cr_http_config cfg = {0};
    CR_TRY(cr_http_new(&cfg, &gb->http));
    return credentials(gb);
}

static int gs_new(const char *loc, gs_backend **out)
{
    gs_backend *gb = calloc(1, sizeof *gb);
    if (!gb) return cr_error(-ENOMEM, "out of memory");
    int r = setup(gb, loc);
    if (r < 0) {
        gs_close(&gb->base);
        return r;
    }
    *out = gb;
    return 0;
}

static int gs_open(const char *loc, cr_backend **out)
{
    gs_backend *gb;
    CR_TRY(gs_new(loc, &gb));
    int r = bucket_exists(gb);
    if (r == -ENOENT) r = cr_error(CR_E_NOREPO, "gs: bucket \"%s\" does not exist", gb->bucket);
    if (r < 0) {
        gs_close(&gb->base);
        return r;
    }
    *out = &gb->base;
    return 0;
}

static int create_bucket(gs_backend *gb)
{
    const char *project = getenv("GOOGLE_PROJECT_ID");
    const char *region = cr_backend_option("gs", "region");
    if (!project || !*project)
        return cr_error(CR_E_USAGE, "gs: bucket \"%s\" does not exist; set GOOGLE_PROJECT_ID to create it", gb->bucket);
    _cleanup_buf_ cr_buf url = CR_BUF_INIT, body = CR_BUF_INIT;
    CR_TRY(cr_buf_printf(&url, "%s/storage/v1/b?project=", gb->endpoint));
    CR_TRY(put_encoded(&url, project));
    CR_TRY(cr_buf_printf(&body, "{\"name\":\"%s\",\"location\":", gb->bucket));
    CR_TRY(cr_json_put_cstr(&body, region && *region ? region : DEFAULT_REGION));
    CR_TRY(cr_buf_puts(&body, "}"));
    const char *const extra[] = {"Content-Type: application/json; charset=UTF-8", NULL};
    cr_http_req req = {.method = "POST", .url = (const char *)url.data, .body = body.data, .body_len = body.len};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(gs_call(gb, &req, extra, &resp));
    if (resp.status == 200 || resp.status == 201 || resp.status == 409) return 0; /* 409: created meanwhile */
    return cr_error_ctx(gs_status_error(&req, &resp), "gs: create bucket \"%s\"", gb->bucket);
}

static int gs_create(const char *loc, cr_backend **out)
{
    gs_backend *gb;
    CR_TRY(gs_new(loc, &gb));
    uint64_t size;
    int r = bucket_exists(gb);
    if (r == -ENOENT) r = create_bucket(gb);
    if (r == 0) {
        r = gs_stat(&gb->base, CR_FILE_CONFIG, NULL, &size);
        if (r == 0) r = cr_error(-EEXIST, "config file already exists");
        else if (r == -ENOENT) r = 0;
    }
    if (r < 0) {
        gs_close(&gb->base);
        return r;
    }
    *out = &gb->base;
    return 0;
}

const cr_backend_ops cr_backend_gs = {
    .scheme = "gs",
    .open = gs_open,
    .create = gs_create,
    .close = gs_close,
    .stat = gs_stat,
    .load = gs_load,
    .save = gs_save,
    .remove = gs_remove,
    .list = gs_list,
    .options = (const char *const[]){"connections", "region", "endpoint", NULL},
};
