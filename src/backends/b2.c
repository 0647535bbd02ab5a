/* Backblaze B2 backend on the native API (v3 calls), as Backblaze documents it.
 *
 * Location: b2:bucket[:path] (restic's); credentials B2_ACCOUNT_ID (an
 * account ID or application key ID) and B2_ACCOUNT_KEY.  Objects are named
 * as in restic's default layout: [path/]config, [path/]keys/ID,
 * [path/]data/XX/ID, ...
 *
 * - b2_authorize_account gives the API and download URLs and an account
 *   token; a 401 expired_auth_token / bad_auth_token on any call makes us
 *   authorize again (once per token generation, whoever sees it first) and
 *   repeat the call.
 * - Uploads go to upload URLs from b2_get_upload_url, kept in a pool: one
 *   upload at a time per URL, and after a 5xx, 408, 429, a token error or a
 *   broken connection the URL is dropped and the upload retried on a new one,
 *   as Backblaze requires.  Objects above the part size become large files
 *   (b2_start_large_file, b2_upload_part with per-part SHA-1s,
 *   b2_finish_large_file; b2_cancel_large_file when a part fails).
 * - Remove deletes every version of the name (b2_list_file_versions +
 *   b2_delete_file_version) so a removed file is gone, falling back to
 *   b2_hide_file when the key may not delete (as restic does).
 */
#include "backends/backend.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/b2proto.h"
#include "backends/http.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/id.h"
#include "util/json.h"

#define DEFAULT_ENDPOINT "https://api.backblazeb2.com"
#define API "/b2api/v3/"
#define DEFAULT_CONNECTIONS 5
#define DEFAULT_LIST_PAGE 10000 /* the service's maximum: fewest round trips */
#define UPLOAD_POOL_MAX 32
#define UPLOAD_ATTEMPTS 10
#define MAX_PARTS 10000
#define AUTH_ATTEMPTS 3

typedef struct {
    char *url, *token;
} upload_slot;

typedef struct {
    cr_backend base;
    cr_http *http;
    char *endpoint;     /* where b2_authorize_account is asked */
    char *bucket;       /* bucket name */
    char *prefix;       /* "" or "a/b/" (with the slash) */
    char *basic;        /* "Authorization: Basic ..." (secret) */
    char *key_id;       /* for messages */
    unsigned part_size_opt;
    unsigned list_page;
    double retry_max_seconds;

    pthread_mutex_t lock; /* guards everything below */
    cr_b2_auth auth;
    unsigned auth_gen;
    char *bucket_id;
    uint64_t part_size;
    upload_slot pool[UPLOAD_POOL_MAX];
    int npool;
    bool hide_instead_of_delete;
} b2_backend;

static b2_backend *as_b2(cr_backend *b)
{
    return (b2_backend *)b;
}

static void slot_free(upload_slot *s)
{
    if (s->token) explicit_bzero(s->token, strlen(s->token));
    free(s->url);
    free(s->token);
    s->url = s->token = NULL;
}

/* ---- small helpers ---------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void sha1_hex(const void *data, size_t n, char out[41])
{
    unsigned char md[20];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha1(), NULL);
    for (int i = 0; i < 20; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A JSON object from NULL-terminated key/value pairs; a value NULL is left
 * out, a key starting with '#' takes its value verbatim (numbers, arrays). */
static int json_body(cr_buf *out, const char *const *kv)
{
    bool first = true;
    cr_buf_reset(out);
    CR_TRY(cr_buf_putc(out, '{'));
    for (; kv[0]; kv += 2) {
        if (!kv[1]) continue;
        bool raw = kv[0][0] == '#';
        if (!first) CR_TRY(cr_buf_putc(out, ','));
        first = false;
        CR_TRY(cr_json_put_cstr(out, kv[0] + raw));
        CR_TRY(cr_buf_putc(out, ':'));
        CR_TRY(raw ? cr_buf_puts(out, kv[1]) : cr_json_put_cstr(out, kv[1]));
    }
    CR_TRY(cr_buf_putc(out, '}'));
    return cr_buf_nul(out);
}

/* "<what>: <status> <code>: <message>" from a B2 error answer. */
static int b2_status_error(const char *what, const cr_http_resp *resp)
{
    char code[64], msg[256];
    cr_b2_parse_error((const char *)resp->body.data, resp->body.len, code, sizeof code, msg, sizeof msg);
    int e = resp->status == 404 ? -ENOENT : resp->status == 401 || resp->status == 403 ? -EACCES : -EIO;
    return cr_error(e, "%s: %ld%s%s%s%s", what, resp->status, code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
}

static bool has_code(const cr_http_resp *resp, const char *want)
{
    char code[64], msg[8];
    cr_b2_parse_error((const char *)resp->body.data, resp->body.len, code, sizeof code, msg, sizeof msg);
    return !strcmp(code, want);
}

/* A 401 that a new token cures (as opposed to a key without the capability). */
static bool token_problem(const cr_http_resp *resp)
{
    return resp->status == 401 && (has_code(resp, "expired_auth_token") || has_code(resp, "bad_auth_token"));
}

/* ---- authorization ------------------------------------------------------------ */

static int authorize_locked(b2_backend *b)
{
    _cleanup_free_ char *url = NULL;
    if (asprintf(&url, "%s" API "b2_authorize_account", b->endpoint) < 0) return cr_error(-ENOMEM, "out of memory");
    const char *headers[] = {b->basic, NULL};
    cr_http_req req = {.method = "GET", .url = url, .headers = headers};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    int r = cr_http_request(b->http, &req, &resp);
    if (r == 0 && resp.status != 200) r = b2_status_error("b2_authorize_account", &resp);
    if (r < 0) return cr_error_ctx(r, "b2: authorization with key ID \"%s\" failed", b->key_id);
    cr_b2_auth fresh;
    CR_TRY_CTX(cr_b2_parse_auth((const char *)resp.body.data, resp.body.len, &fresh), "b2 %s", url);
    cr_b2_auth_free(&b->auth);
    b->auth = fresh;
    b->auth_gen++;
    return 0;
}

/* Authorize again unless another thread already did since `seen_gen`. */
static int reauthorize(b2_backend *b, unsigned seen_gen)
{
    pthread_mutex_lock(&b->lock);
    int r = b->auth_gen == seen_gen ? authorize_locked(b) : 0;
    pthread_mutex_unlock(&b->lock);
    return r;
}

/* Copies of what a request needs, taken under the lock. */
typedef struct {
    unsigned gen;
    char *auth_header, *api_url, *download_url;
} auth_view;

static void view_free(auth_view *v)
{
    if (v->auth_header) explicit_bzero(v->auth_header, strlen(v->auth_header));
    free(v->auth_header);
    free(v->api_url);
    free(v->download_url);
    memset(v, 0, sizeof *v);
}

static int view_take(b2_backend *b, auth_view *v)
{
    view_free(v);
    pthread_mutex_lock(&b->lock);
    v->gen = b->auth_gen;
    int n = asprintf(&v->auth_header, "Authorization: %s", b->auth.token);
    v->api_url = strdup(b->auth.api_url);
    v->download_url = strdup(b->auth.download_url);
    pthread_mutex_unlock(&b->lock);
    if (n < 0) v->auth_header = NULL;
    if (n < 0 || !v->api_url || !v->download_url) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

/* POST {apiUrl}/b2api/v3/{call} with a JSON body; token trouble is cured by
 * authorizing again.  0 with the answer in resp (any status). */
static int api_call(b2_backend *b, const char *call, const cr_buf *body, cr_http_resp *resp)
{
    _cleanup_(view_free) auth_view v = {0};
    for (int attempt = 1;; attempt++) {
        CR_TRY(view_take(b, &v));
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s" API "%s", v.api_url, call) < 0) return cr_error(-ENOMEM, "out of memory");
        const char *headers[] = {v.auth_header, "Content-Type: application/json", NULL};
        cr_http_req req = {.method = "POST", .url = url, .headers = headers, .body = body->data, .body_len = body->len};
        CR_TRY(cr_http_request(b->http, &req, resp));
        if (!token_problem(resp) || attempt >= AUTH_ATTEMPTS) return 0;
        CR_TRY(reauthorize(b, v.gen));
    }
}

/* api_call that must answer 200. */
static int api_call_ok(b2_backend *b, const char *call, const char *const *kv, cr_http_resp *resp)
{
    _cleanup_buf_ cr_buf body = CR_BUF_INIT;
    CR_TRY(json_body(&body, kv));
    CR_TRY(api_call(b, call, &body, resp));
    if (resp->status != 200) return b2_status_error(call, resp);
    return 0;
}

/* ---- names -------------------------------------------------------------------- */

static int check_name(cr_filetype t, const char *name)
{
    if (t == CR_FILE_CONFIG) return 0;
    if (!name || !name[0] || name[0] == '.' || strpbrk(name, "/\\") || strlen(name) < 2)
        return cr_error(-EINVAL, "invalid object name \"%s\"", name ? name : "");
    return 0;
}

/* restic's default layout under the prefix. */
static int object_name(b2_backend *b, cr_filetype t, const char *name, char **out)
{
    CR_TRY(check_name(t, name));
    int n = t == CR_FILE_CONFIG ? asprintf(out, "%sconfig", b->prefix)
            : t == CR_FILE_PACK ? asprintf(out, "%sdata/%.2s/%s", b->prefix, name, name)
                                : asprintf(out, "%s%s/%s", b->prefix, cr_filetype_dir(t), name);
    if (n < 0) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static const char *bucket_id(b2_backend *b)
{
    return b->bucket_id; /* set at open, never changed afterwards */
}

/* ---- stat ------------------------------------------------------------------------ */

typedef struct {
    const char *want;
    bool found;
    uint64_t size;
} find_ctx;

static int find_cb(void *ud, const cr_b2_file *f)
{
    find_ctx *c = ud;
    if (!strcmp(f->name, c->want) && !strcmp(f->action, "upload")) {
        c->found = true;
        c->size = f->size;
    }
    return 0;
}

/* b2_list_file_names from the name itself, one entry: the newest version, if any. */
static int find_file(b2_backend *b, const char *full, uint64_t *size)
{
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    const char *kv[] = {"bucketId", bucket_id(b), "startFileName", full, "prefix", full, "#maxFileCount", "1", NULL};
    CR_TRY(api_call_ok(b, "b2_list_file_names", kv, &resp));
    find_ctx c = {.want = full};
    _cleanup_free_ char *next = NULL;
    CR_TRY(cr_b2_parse_file_list((const char *)resp.body.data, resp.body.len, find_cb, &c, &next, NULL));
    if (!c.found) return -ENOENT;
    *size = c.size;
    return 0;
}

static int b2_stat(cr_backend *be, cr_filetype t, const char *name, uint64_t *size)
{
    b2_backend *b = as_b2(be);
    _cleanup_free_ char *full = NULL;
    CR_TRY(object_name(b, t, name, &full));
    return find_file(b, full, size);
}

/* ---- load ------------------------------------------------------------------------- */

static int download_url(b2_backend *b, const auth_view *v, const char *full, char **out)
{
    _cleanup_buf_ cr_buf bucket = CR_BUF_INIT, name = CR_BUF_INIT;
    CR_TRY(cr_b2_encode_name(&bucket, b->bucket));
    CR_TRY(cr_b2_encode_name(&name, full));
    if (asprintf(out, "%s/file/%s/%s", v->download_url, (char *)bucket.data, (char *)name.data) < 0)
        return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static int b2_load(cr_backend *be, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out)
{
    b2_backend *b = as_b2(be);
    _cleanup_free_ char *full = NULL;
    CR_TRY(object_name(b, t, name, &full));
    if (len > SIZE_MAX / 2) return cr_error(-EFBIG, "%s: range too large", full);
    _cleanup_(view_free) auth_view v = {0};
    for (int attempt = 1;; attempt++) {
        CR_TRY(view_take(b, &v));
        _cleanup_free_ char *url = NULL;
        CR_TRY(download_url(b, &v, full, &url));
        const char *headers[] = {v.auth_header, NULL};
        cr_http_req req = {.method = "GET", .url = url, .headers = headers,
                           .range = off > 0 || len > 0, .range_off = off, .range_len = len};
        _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
        CR_TRY(cr_http_request(b->http, &req, &resp));
        if (token_problem(&resp) && attempt < AUTH_ATTEMPTS) {
            CR_TRY(reauthorize(b, v.gen));
            continue;
        }
        if (resp.status == 416)
            return cr_error(-EIO, "GET %s: offset %llu is beyond the end of the object", url, (unsigned long long)off);
        if (resp.status == 200 || (resp.status == 206 && req.range)) return cr_http_take_range(&req, &resp, out);
        return b2_status_error(url, &resp);
    }
}

/* ---- upload URLs and uploads ------------------------------------------------------------ */

static int new_upload_slot(b2_backend *b, const char *large_file_id, upload_slot *s)
{
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    const char *call = large_file_id ? "b2_get_upload_part_url" : "b2_get_upload_url";
    const char *kv[] = {large_file_id ? "fileId" : "bucketId", large_file_id ? large_file_id : bucket_id(b), NULL};
    CR_TRY(api_call_ok(b, call, kv, &resp));
    CR_TRY_CTX(cr_b2_parse_upload_url((const char *)resp.body.data, resp.body.len, &s->url, &s->token), "%s", call);
    return 0;
}

/* An idle upload URL of the bucket from the pool, or a new one. */
static int take_upload_slot(b2_backend *b, upload_slot *s)
{
    pthread_mutex_lock(&b->lock);
    if (b->npool > 0) *s = b->pool[--b->npool];
    pthread_mutex_unlock(&b->lock);
    return s->url ? 0 : new_upload_slot(b, NULL, s);
}

static void return_upload_slot(b2_backend *b, upload_slot *s)
{
    pthread_mutex_lock(&b->lock);
    if (b->npool < UPLOAD_POOL_MAX) {
        b->pool[b->npool++] = *s;
        s->url = s->token = NULL;
    }
    pthread_mutex_unlock(&b->lock);
    slot_free(s);
}

typedef struct {
    const char *large_file_id; /* NULL: b2_upload_file, else b2_upload_part */
    const char *target_header; /* "X-Bz-File-Name: ..." or "X-Bz-Part-Number: N" */
    const void *data;
    size_t n;
    char sha1[41];
} upload_job;

/* Failures Backblaze answers by "get a new upload URL and try again". */
static bool needs_new_url(int r, const cr_http_resp *resp)
{
    if (r < 0) return r != CR_E_INTERRUPTED && r != -ENOMEM; /* no answer: connection broke, timed out */
    long s = resp->status;
    return s == 408 || s == 429 || s >= 500 || token_problem(resp);
}

static int upload_once(b2_backend *b, const upload_job *job, const upload_slot *s, cr_http_resp *resp)
{
    _cleanup_free_ char *auth = NULL, *sha = NULL;
    if (asprintf(&auth, "Authorization: %s", s->token) < 0) auth = NULL;
    if (asprintf(&sha, "X-Bz-Content-Sha1: %s", job->sha1) < 0) sha = NULL;
    if (!auth || !sha) return cr_error(-ENOMEM, "out of memory");
    const char *headers[] = {auth, job->target_header, "Content-Type: application/octet-stream", sha, NULL};
    cr_http_req req = {.method = "POST", .url = s->url, .headers = headers, .body = job->data, .body_len = job->n,
                       .no_retry = true};
    int r = cr_http_request(b->http, &req, resp);
    if (auth) explicit_bzero(auth, strlen(auth));
    return r;
}

/* One upload with its own retries: a new URL after each failure that calls
 * for one, a short growing pause between tries.  s holds the URL to use
 * (empty: get one) and, on success, the URL that worked. */
static int upload(b2_backend *b, const upload_job *job, upload_slot *s, const char *what)
{
    double start = now_seconds(), pause = 0.25;
    for (int attempt = 1;; attempt++) {
        if (!s->url) CR_TRY(job->large_file_id ? new_upload_slot(b, job->large_file_id, s) : take_upload_slot(b, s));
        _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
        int r = upload_once(b, job, s, &resp);
        if (r == 0 && resp.status == 200) return 0;
        if (!needs_new_url(r, &resp)) return r < 0 ? r : b2_status_error(what, &resp);
        if (r == 0) r = b2_status_error(what, &resp);
        slot_free(s);
        if (attempt >= UPLOAD_ATTEMPTS || now_seconds() - start + pause > b->retry_max_seconds)
            return cr_error_ctx(r, "giving up after %d attempts", attempt);
        fprintf(stderr, "%s, retrying with a new upload URL\n", cr_error_message());
        cr_error_clear();
        if (!token_problem(&resp)) sleep_seconds(pause);
        pause = pause * 1.5 > 5.0 ? 5.0 : pause * 1.5;
    }
}

static int save_small(b2_backend *b, const char *full, const void *data, size_t n)
{
    _cleanup_buf_ cr_buf enc = CR_BUF_INIT;
    CR_TRY(cr_b2_encode_name(&enc, full));
    _cleanup_free_ char *name_header = NULL;
    if (asprintf(&name_header, "X-Bz-File-Name: %s", (char *)enc.data) < 0) return cr_error(-ENOMEM, "out of memory");
    upload_job job = {.target_header = name_header, .data = data, .n = n};
    sha1_hex(data, n, job.sha1);
    upload_slot s = {0};
    CR_TRY_CTX(upload(b, &job, &s, "b2_upload_file"), "b2: save %s", full);
    return_upload_slot(b, &s);
    return 0;
}

/* ---- large files -------------------------------------------------------------------- */

static int start_large(b2_backend *b, const char *full, const void *data, size_t n, char **file_id)
{
    char sha[41];
    sha1_hex(data, n, sha);
    _cleanup_free_ char *info = NULL;
    if (asprintf(&info, "{\"large_file_sha1\":\"%s\"}", sha) < 0) return cr_error(-ENOMEM, "out of memory");
    const char *kv[] = {"bucketId", bucket_id(b), "fileName", full, "contentType", "application/octet-stream", "#fileInfo", info, NULL};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(api_call_ok(b, "b2_start_large_file", kv, &resp));
    return cr_b2_parse_file_id((const char *)resp.body.data, resp.body.len, file_id);
}

/* Each part in turn on one part URL (replaced after failures); the SHA-1s
 * collected as a JSON array for b2_finish_large_file. */
static int upload_parts(b2_backend *b, const char *file_id, const uint8_t *data, size_t n, size_t part, cr_buf *sha1s)
{
    upload_slot s = {0};
    int r = cr_buf_putc(sha1s, '[');
    for (size_t off = 0, no = 1; r == 0 && off < n; off += part, no++) {
        char header[64];
        snprintf(header, sizeof header, "X-Bz-Part-Number: %zu", no);
        upload_job job = {.large_file_id = file_id, .target_header = header, .data = data + off, .n = n - off < part ? n - off : part};
        sha1_hex(job.data, job.n, job.sha1);
        r = upload(b, &job, &s, "b2_upload_part");
        if (r == 0) r = cr_buf_printf(sha1s, "%s\"%s\"", no > 1 ? "," : "", job.sha1);
    }
    slot_free(&s);
    if (r == 0) r = cr_buf_putc(sha1s, ']');
    if (r == 0) r = cr_buf_nul(sha1s);
    return r;
}

static void cancel_large(b2_backend *b, const char *file_id)
{
    char *saved = strdup(cr_error_message()); /* keep the reason of the failure */
    const char *kv[] = {"fileId", file_id, NULL};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    if (api_call_ok(b, "b2_cancel_large_file", kv, &resp) < 0)
        fprintf(stderr, "b2: could not cancel the unfinished large file %s: %s\n", file_id, cr_error_message());
    if (saved) cr_error(-EIO, "%s", saved);
    free(saved);
}

/* A finish repeated after a lost answer meets "no active upload": the file
 * is then already there. */
static int finish_large(b2_backend *b, const char *full, const char *file_id, const cr_buf *sha1s, size_t n)
{
    const char *kv[] = {"fileId", file_id, "#partSha1Array", (const char *)sha1s->data, NULL};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    int r = api_call_ok(b, "b2_finish_large_file", kv, &resp);
    uint64_t size;
    if (r < 0 && resp.status == 400 && find_file(b, full, &size) == 0 && size == n) {
        cr_error_clear();
        return 0;
    }
    return r;
}

static int save_large(b2_backend *b, const char *full, const void *data, size_t n, size_t part)
{
    if (n / part >= MAX_PARTS) part = n / (MAX_PARTS - 1) + 1;
    _cleanup_free_ char *file_id = NULL;
    CR_TRY_CTX(start_large(b, full, data, n, &file_id), "b2: save %s", full);
    _cleanup_buf_ cr_buf sha1s = CR_BUF_INIT;
    int r = upload_parts(b, file_id, data, n, part, &sha1s);
    if (r == 0) r = finish_large(b, full, file_id, &sha1s, n);
    if (r < 0 && r != CR_E_INTERRUPTED) cancel_large(b, file_id);
    if (r < 0) return cr_error_ctx(r, "b2: save %s (large file)", full);
    return 0;
}

static int b2_save(cr_backend *be, cr_filetype t, const char *name, const void *data, size_t n)
{
    b2_backend *b = as_b2(be);
    _cleanup_free_ char *full = NULL;
    CR_TRY(object_name(b, t, name, &full));
    pthread_mutex_lock(&b->lock);
    uint64_t part = b->part_size;
    pthread_mutex_unlock(&b->lock);
    if ((uint64_t)n > part) return save_large(b, full, data, n, (size_t)part);
    return save_small(b, full, data, n);
}

/* ---- remove ---------------------------------------------------------------------------- */

typedef struct {
    const char *want;
    char *ids[100];
    bool unfinished[100];
    int n;
    bool complete; /* the answer held every version of the name */
} versions_ctx;

static int versions_cb(void *ud, const cr_b2_file *f)
{
    versions_ctx *c = ud;
    if (strcmp(f->name, c->want) || !f->id || c->n >= 100) return 0;
    if (!(c->ids[c->n] = strdup(f->id))) return cr_error(-ENOMEM, "out of memory");
    c->unfinished[c->n++] = !strcmp(f->action, "start");
    return 0;
}

static void versions_free(versions_ctx *c)
{
    for (int i = 0; i < c->n; i++) free(c->ids[i]);
    c->n = 0;
}

static int list_versions(b2_backend *b, const char *full, versions_ctx *c)
{
    const char *kv[] = {"bucketId", bucket_id(b), "startFileName", full, "prefix", full, "#maxFileCount", "100", NULL};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(api_call_ok(b, "b2_list_file_versions", kv, &resp));
    _cleanup_free_ char *next = NULL, *next_id = NULL;
    CR_TRY(cr_b2_parse_file_list((const char *)resp.body.data, resp.body.len, versions_cb, c, &next, &next_id));
    c->complete = c->n < 100 && (!next || strcmp(next, full));
    return 0;
}

static int hide(b2_backend *b, const char *full)
{
    const char *kv[] = {"bucketId", bucket_id(b), "fileName", full, NULL};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    int r = api_call_ok(b, "b2_hide_file", kv, &resp);
    if (r < 0 && (resp.status == 404 || has_code(&resp, "already_hidden"))) { cr_error_clear(); return 0; }
    return r;
}

/* Delete one version; file_not_present (someone else was quicker) is fine.
 * 1 when the key may not delete. */
static int delete_version(b2_backend *b, const char *full, const char *id, bool unfinished)
{
    const char *kv[] = {"fileName", unfinished ? NULL : full, "fileId", id, NULL};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    int r = api_call_ok(b, unfinished ? "b2_cancel_large_file" : "b2_delete_file_version", kv, &resp);
    if (r == 0) return 0;
    if (resp.status == 400 && (has_code(&resp, "file_not_present") || unfinished)) { cr_error_clear(); return 0; }
    if (resp.status == 401 && has_code(&resp, "unauthorized")) { cr_error_clear(); return 1; }
    return r;
}

static int remove_versions(b2_backend *b, const char *full)
{
    for (int round = 0; round < 10; round++) {
        _cleanup_(versions_free) versions_ctx c = {.want = full};
        CR_TRY(list_versions(b, full, &c));
        if (c.n == 0) return 0;
        for (int i = 0; i < c.n; i++) {
            int r = delete_version(b, full, c.ids[i], c.unfinished[i]);
            if (r < 0) return r;
            if (r == 1) {
                pthread_mutex_lock(&b->lock);
                b->hide_instead_of_delete = true;
                pthread_mutex_unlock(&b->lock);
                return hide(b, full);
            }
        }
        if (c.complete) return 0;
    }
    return cr_error(-EIO, "b2: %s: versions keep appearing while removing them", full);
}

static int b2_remove(cr_backend *be, cr_filetype t, const char *name)
{
    b2_backend *b = as_b2(be);
    _cleanup_free_ char *full = NULL;
    CR_TRY(object_name(b, t, name, &full));
    pthread_mutex_lock(&b->lock);
    bool hide_only = b->hide_instead_of_delete;
    pthread_mutex_unlock(&b->lock);
    return hide_only ? hide(b, full) : remove_versions(b, full);
}

/* ---- list ------------------------------------------------------------------------------- */

typedef struct {
    size_t prefix_len;
    cr_list_cb cb;
    void *ud;
} list_ctx;

static int list_cb(void *ud, const cr_b2_file *f)
{
    list_ctx *c = ud;
    if (strcmp(f->action, "upload") || strlen(f->name) < c->prefix_len) return 0;
    const char *base = strrchr(f->name + c->prefix_len, '/');
    base = base ? base + 1 : f->name + c->prefix_len;
    if (!cr_is_hex_name(base, strlen(base))) return 0;
    return c->cb(c->ud, base, f->size);
}

static int b2_list(cr_backend *be, cr_filetype t, cr_list_cb cb, void *ud)
{
    b2_backend *b = as_b2(be);
    if (t == CR_FILE_CONFIG) return 0;
    _cleanup_free_ char *prefix = NULL, *start = NULL;
    if (asprintf(&prefix, "%s%s/", b->prefix, cr_filetype_dir(t)) < 0) return cr_error(-ENOMEM, "out of memory");
    char count[16];
    snprintf(count, sizeof count, "%u", b->list_page);
    list_ctx c = {.prefix_len = strlen(prefix), .cb = cb, .ud = ud};
    do {
        const char *kv[] = {"bucketId", bucket_id(b), "prefix", prefix, "startFileName", start, "#maxFileCount", count, NULL};
        _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
        CR_TRY(api_call_ok(b, "b2_list_file_names", kv, &resp));
        char *next = NULL;
        int r = cr_b2_parse_file_list((const char *)resp.body.data, resp.body.len, list_cb, &c, &next, NULL);
        if (next && start && strcmp(next, start) <= 0) r = cr_error(CR_E_FORMAT, "b2_list_file_names: nextFileName does not advance");
        free(start);
        start = next;
        if (r) return r;
    } while (start);
    return 0;
}

/* ---- open / create / close ------------------------------------------------------------- */

/* Go's path.Clean for the repository path, without leading or trailing
 * slashes; "" for none. */
static int clean_prefix(const char *p, char **out)
{
    size_t n = strlen(p);
    char *res = malloc(n + 2), *o = res;
    if (!res) return cr_error(-ENOMEM, "out of memory");
    while (*p) {
        size_t len = strcspn(p, "/");
        if (len == 2 && !strncmp(p, "..", 2)) {
            while (o > res && o[-1] == '/') o--;
            while (o > res && o[-1] != '/') o--;
        } else if (len && !(len == 1 && *p == '.')) {
            memcpy(o, p, len);
            o += len;
            *o++ = '/';
        }
        p += len + (p[len] == '/');
    }
    *o = 0;
    *out = res;
    return 0;
}

static int parse_location(b2_backend *b, const char *loc)
{
    size_t blen = strcspn(loc, ":");
    if (blen < 6 || blen > 63)
        return cr_error(CR_E_USAGE, "b2: invalid bucket name in \"b2:%s\": 6 to 63 letters, digits and dashes (b2:bucket[:path])", loc);
    for (size_t i = 0; i < blen; i++)
        if (!(loc[i] == '-' || (loc[i] >= '0' && loc[i] <= '9') || ((loc[i] | 0x20) >= 'a' && (loc[i] | 0x20) <= 'z')))
            return cr_error(CR_E_USAGE, "b2: invalid bucket name in \"b2:%s\": only letters, digits and dashes", loc);
    if (!(b->bucket = strndup(loc, blen))) return cr_error(-ENOMEM, "out of memory");
    return clean_prefix(loc[blen] ? loc + blen + 1 : "", &b->prefix);
}

static int credentials(b2_backend *b)
{
    const char *id = getenv("B2_ACCOUNT_ID"), *key = getenv("B2_ACCOUNT_KEY");
    if (!id || !*id) return cr_error(CR_E_USAGE, "unable to open B2 backend: Account ID ($B2_ACCOUNT_ID) is empty");
    if (!key || !*key) return cr_error(CR_E_USAGE, "unable to open B2 backend: Key ($B2_ACCOUNT_KEY) is empty");
    if (!(b->key_id = strdup(id))) return cr_error(-ENOMEM, "out of memory");
    _cleanup_buf_ cr_buf plain = CR_BUF_INIT, enc = CR_BUF_INIT;
    int r = cr_buf_printf(&plain, "%s:%s", id, key);
    if (r == 0) r = cr_buf_puts(&enc, "Authorization: Basic ");
    if (r == 0) r = cr_base64_encode(&enc, plain.data, plain.len);
    if (r == 0) r = cr_buf_nul(&enc);
    if (r == 0 && !(b->basic = strdup((char *)enc.data))) r = cr_error(-ENOMEM, "out of memory");
    if (plain.data) explicit_bzero(plain.data, plain.len);
    if (enc.data) explicit_bzero(enc.data, enc.len);
    return r;
}

static int list_page_size(unsigned *out)
{
    const char *s = getenv("CRESTIC_LIST_PAGE_SIZE");
    char *end;
    unsigned long v = s && *s ? strtoul(s, &end, 10) : 0;
    *out = s && *s && !*end && v >= 1 && v <= DEFAULT_LIST_PAGE ? (unsigned)v : DEFAULT_LIST_PAGE;
    return 0;
}

static int settings(b2_backend *b)
{
    const char *ep = cr_backend_option("b2", "endpoint");
    if (!(b->endpoint = strdup(ep ? ep : DEFAULT_ENDPOINT))) return cr_error(-ENOMEM, "out of memory");
    size_t len = strlen(b->endpoint);
    while (len > 0 && b->endpoint[len - 1] == '/') b->endpoint[--len] = 0;
    if (strncmp(b->endpoint, "http://", 7) && strncmp(b->endpoint, "https://", 8))
        return cr_error(CR_E_USAGE, "invalid value \"%s\" for option b2.endpoint: expected an http:// or https:// URL", ep);
    CR_TRY(cr_backend_option_uint("b2", "connections", DEFAULT_CONNECTIONS, 1, 128, &b->base.connections));
    CR_TRY(cr_backend_option_uint("b2", "part-size", 0, 1, 0xffffffffu, &b->part_size_opt));
    const char *rm = getenv("CRESTIC_HTTP_RETRY_MAX_SECONDS");
    b->retry_max_seconds = rm && *rm ? strtod(rm, NULL) : 900.0;
    return list_page_size(&b->list_page);
}

static int choose_part_size(b2_backend *b)
{
    uint64_t min = b->auth.min_part_size, want = b->part_size_opt ? b->part_size_opt : b->auth.recommended_part_size;
    if (b->part_size_opt && b->part_size_opt < min)
        return cr_error(CR_E_USAGE, "b2.part-size %u is below the service's minimum part size %llu", b->part_size_opt,
                        (unsigned long long)min);
    if (want < min) want = min;
    if (want == 0 || want > SIZE_MAX / 2) return cr_error(CR_E_FORMAT, "b2_authorize_account: unusable part sizes");
    b->part_size = want;
    return 0;
}

/* The bucket's ID: from a key restricted to it, else b2_list_buckets by name.
 * NULL (no error) when the account has no such bucket. */
static int lookup_bucket(b2_backend *b)
{
    if (b->auth.allowed_bucket_name && !strcmp(b->auth.allowed_bucket_name, b->bucket) && b->auth.allowed_bucket_id)
        return (b->bucket_id = strdup(b->auth.allowed_bucket_id)) ? 0 : cr_error(-ENOMEM, "out of memory");
    const char *kv[] = {"accountId", b->auth.account_id, "bucketName", b->bucket, NULL};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(api_call_ok(b, "b2_list_buckets", kv, &resp));
    return cr_b2_parse_bucket_id((const char *)resp.body.data, resp.body.len, b->bucket, &b->bucket_id);
}

static int create_bucket(b2_backend *b)
{
    const char *kv[] = {"accountId", b->auth.account_id, "bucketName", b->bucket, "bucketType", "allPrivate", NULL};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    int r = api_call_ok(b, "b2_create_bucket", kv, &resp);
    if (r < 0 && has_code(&resp, "duplicate_bucket_name")) { /* created meanwhile, or someone else's */
        cr_error_clear();
        CR_TRY(lookup_bucket(b));
        if (!b->bucket_id) return cr_error(-EEXIST, "b2: bucket name \"%s\" is already taken by another account", b->bucket);
        return 0;
    }
    CR_TRY_CTX(r, "b2: create bucket \"%s\"", b->bucket);
    return cr_b2_parse_bucket_id((const char *)resp.body.data, resp.body.len, b->bucket, &b->bucket_id);
}

static void b2_close(cr_backend *be)
{
    b2_backend *b = as_b2(be);
    cr_http_free(b->http);
    for (int i = 0; i < b->npool; i++) slot_free(&b->pool[i]);
    cr_b2_auth_free(&b->auth);
    if (b->basic) explicit_bzero(b->basic, strlen(b->basic));
    free(b->basic);
    free(b->key_id);
    free(b->endpoint);
    free(b->bucket);
    free(b->prefix);
    free(b->bucket_id);
    free(be->location);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static int connect_and_find(b2_backend *b, const char *loc, bool create)
{
    CR_TRY(parse_location(b, loc));
    CR_TRY(credentials(b));
    CR_TRY(settings(b));
    cr_http_config cfg = {0};
    CR_TRY(cr_http_new(&cfg, &b->http));
    pthread_mutex_lock(&b->lock);
    int r = authorize_locked(b);
    pthread_mutex_unlock(&b->lock);
    CR_TRY(r);
    CR_TRY(choose_part_size(b));
    CR_TRY(lookup_bucket(b));
    if (!b->bucket_id && create) CR_TRY(create_bucket(b));
    if (!b->bucket_id) return cr_error(CR_E_NOREPO, "b2: bucket \"%s\" does not exist", b->bucket);
    return 0;
}

static int open_or_create(const char *loc, bool create, cr_backend **out)
{
    b2_backend *b = calloc(1, sizeof *b);
    if (!b) return cr_error(-ENOMEM, "out of memory");
    pthread_mutex_init(&b->lock, NULL);
    int r = connect_and_find(b, loc, create);
    if (r < 0) {
        b2_close(&b->base);
        return r;
    }
    *out = &b->base;
    return 0;
}

static int b2_open(const char *loc, cr_backend **out)
{
    return open_or_create(loc, false, out);
}

static int b2_create(const char *loc, cr_backend **out)
{
    cr_backend *be;
    CR_TRY(open_or_create(loc, true, &be));
    uint64_t size;
    int r = b2_stat(be, CR_FILE_CONFIG, NULL, &size);
    if (r == 0) r = cr_error(-EEXIST, "config file already exists");
    else if (r == -ENOENT) r = 0;
    if (r < 0) {
        b2_close(be);
        return r;
    }
    *out = be;
    return 0;
}

const cr_backend_ops cr_backend_b2 = {
    .scheme = "b2",
    .open = b2_open,
    .create = b2_create,
    .close = b2_close,
    .stat = b2_stat,
    .load = b2_load,
    .save = b2_save,
    .remove = b2_remove,
    .list = b2_list,
    .options = (const char *const[]){"connections", "endpoint", "part-size", NULL},
};
