/* S3 backend: restic's layout in an S3 bucket (path or virtual-host style),
 * every request signed with AWS Signature Version 4.
 *
 * Location: s3:host[:port]/bucket[/prefix] (https) or
 * s3:http(s)://host[:port]/bucket[/prefix].  Objects: <prefix>/config,
 * <prefix>/keys/<id>, <prefix>/data/<id[0:2]>/<id>, ... (restic's default
 * layout; no prefix puts them at the bucket root).
 *
 * Credentials as restic (through minio-go) finds them: AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else MINIO_ROOT_USER /
 * MINIO_ROOT_PASSWORD (or MINIO_ACCESS_KEY / MINIO_SECRET_KEY), else the
 * shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
 * profile AWS_PROFILE or "default"), else anonymous (unsigned) requests.
 */
#include "backends/s3.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/http.h"
#include "backends/sigv4.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/id.h"
#include "util/xml.h"

#define DEFAULT_CONNECTIONS 5
#define DEFAULT_REGION "us-east-1"
#define DEFAULT_LIST_PAGE 1000

typedef struct {
    char *access_key, *secret_key, *session_token; /* access_key NULL: anonymous */
} s3_creds;

typedef struct {
    cr_backend base;
    cr_http *http;
    bool https;
    char *endpoint; /* host[:port] as given */
    char *bucket;
    char *prefix; /* "" or "a/b" (no leading or trailing '/') */
    bool vhost;   /* bucket in the host name (dns lookup) instead of the path */
    bool list_v1; /* ListObjects (V1, marker paging) instead of ListObjectsV2 */
    char *region;
    char *storage_class;
    s3_creds creds;
} s3_backend;

static s3_backend *as_s3(cr_backend *b)
{
    return (s3_backend *)b;
}

static void wipe_free(char *s)
{
    if (s) explicit_bzero(s, strlen(s));
    free(s);
}

static void creds_free(s3_creds *c)
{
    free(c->access_key);
    wipe_free(c->secret_key);
    wipe_free(c->session_token);
    memset(c, 0, sizeof *c);
}

/* ---- location --------------------------------------------------------------- */

static char *strndup_or_null(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

/* The prefix path-cleaned as restic does: no empty segments, no leading or
 * trailing '/'. "." segments are dropped. */
static char *clean_prefix(const char *p)
{
    char *out = malloc(strlen(p) + 1), *o = out;
    if (!out) return NULL;
    while (*p) {
        while (*p == '/') p++;
        size_t n = strcspn(p, "/");
        if (n == 0) break;
        if (!(n == 1 && p[0] == '.')) {
            if (o != out) *o++ = '/';
            memcpy(o, p, n);
            o += n;
        }
        p += n;
    }
    *o = 0;
    return out;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* In place; a '%' not followed by two hex digits is kept as is. */
static void percent_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '%' && hex_value(p[1]) >= 0 && hex_value(p[2]) >= 0) {
            *o++ = (char)(hex_value(p[1]) * 16 + hex_value(p[2]));
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

/* The URL forms have a percent-encoded path (restic parses them as URLs);
 * host/bucket/prefix without a scheme is taken literally. */
static int parse_location(s3_backend *sb, const char *loc)
{
    sb->https = true;
    bool url = true;
    if (!strncmp(loc, "https://", 8)) loc += 8;
    else if (!strncmp(loc, "http://", 7)) loc += 7, sb->https = false;
    else if (!strncmp(loc, "//", 2)) loc += 2; /* s3://host/bucket */
    else url = false;
    size_t host_len = strcspn(loc, "/");
    const char *bucket = loc + host_len + (loc[host_len] == '/');
    size_t bucket_len = strcspn(bucket, "/");
    if (host_len == 0 || bucket_len == 0)
        return cr_error(CR_E_USAGE, "s3: invalid format, host/region or bucket name not found (expected s3:host/bucket[/prefix])");
    if (strpbrk(loc, "?#") || memchr(loc, '@', host_len))
        return cr_error(CR_E_USAGE, "s3: a query, fragment or user info has no place in the location");
    _cleanup_free_ char *rest = strdup(bucket + bucket_len);
    sb->endpoint = strndup_or_null(loc, host_len);
    sb->bucket = strndup_or_null(bucket, bucket_len);
    if (!rest || !sb->endpoint || !sb->bucket) return cr_error(-ENOMEM, "out of memory");
    if (url) percent_decode(sb->bucket), percent_decode(rest);
    if (!sb->bucket[0] || strchr(sb->bucket, '/'))
        return cr_error(CR_E_USAGE, "s3: invalid bucket name \"%s\"", sb->bucket);
    if (!(sb->prefix = clean_prefix(rest))) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

/* host without port (IPv6 brackets kept) */
static void host_only(const char *endpoint, char *out, size_t n)
{
    size_t len = endpoint[0] == '[' ? strcspn(endpoint, "]") + 1 : strcspn(endpoint, ":");
    snprintf(out, n, "%.*s", (int)len, endpoint);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

static bool is_amazon_host(const char *host)
{
    return ends_with(host, ".amazonaws.com") || ends_with(host, ".amazonaws.com.cn");
}

/* minio-go's rule for bucket-lookup=auto: virtual-host style only on Amazon
 * and Google endpoints, and never for a dotted bucket over https (the
 * certificate would not match). */
static int pick_lookup(s3_backend *sb)
{
    const char *opt = cr_backend_option("s3", "bucket-lookup");
    char host[256];
    host_only(sb->endpoint, host, sizeof host);
    if (!opt || !*opt || !strcasecmp(opt, "auto")) {
        bool known = is_amazon_host(host) || !strcasecmp(host, "storage.googleapis.com");
        sb->vhost = known && !(sb->https && strchr(sb->bucket, '.'));
    } else if (!strcasecmp(opt, "dns")) {
        sb->vhost = true;
    } else if (!strcasecmp(opt, "path")) {
        sb->vhost = false;
    } else {
        return cr_error(CR_E_USAGE, "bad bucket-lookup style \"%s\": must be \"auto\", \"path\" or \"dns\"", opt);
    }
    return 0;
}

/* ---- credentials ------------------------------------------------------------ */

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int set_creds(s3_creds *c, const char *ak, const char *sk, const char *token)
{
    c->access_key = strdup(ak);
    c->secret_key = strdup(sk);
    c->session_token = token ? strdup(token) : NULL;
    if (!c->access_key || !c->secret_key || (token && !c->session_token)) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

/* One "key = value" line of the wanted profile section. */
static int ini_line(char *line, const char *profile, bool *in_profile, s3_creds *c)
{
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';') return 0;
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (end) *end = 0;
        *in_profile = !strcmp(trim(s + 1), profile);
        return 0;
    }
    char *eq = strchr(s, '=');
    if (!*in_profile || !eq) return 0;
    *eq = 0;
    char *key = trim(s), *value = trim(eq + 1);
    char **slot = !strcasecmp(key, "aws_access_key_id") ? &c->access_key
                : !strcasecmp(key, "aws_secret_access_key") ? &c->secret_key
                : !strcasecmp(key, "aws_session_token") ? &c->session_token : NULL;
    if (!slot) return 0;
    wipe_free(*slot);
    if (!(*slot = strdup(value))) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static int creds_from_file(s3_creds *c)
{
    const char *file = env_nonempty("AWS_SHARED_CREDENTIALS_FILE");
    const char *home = env_nonempty("HOME");
    _cleanup_free_ char *path = NULL;
    if (!file && home && asprintf(&path, "%s/.aws/credentials", home) < 0) return cr_error(-ENOMEM, "out of memory");
    if (!file) file = path;
    if (!file) return 0;
    FILE *f = fopen(file, "r");
    if (!f) return 0; /* no file: try the next source, as minio-go does */
    const char *profile = env_nonempty("AWS_PROFILE");
    if (!profile) profile = "default";
    char *line = NULL;
    size_t cap = 0;
    bool in_profile = false;
    int r = 0;
    while (r == 0 && getline(&line, &cap, f) >= 0) r = ini_line(line, profile, &in_profile, c);
    if (line) explicit_bzero(line, cap);
    free(line);
    fclose(f);
    if (r == 0 && (!c->access_key || !c->secret_key || !*c->access_key)) creds_free(c); /* incomplete: unusable */
    return r;
}

/* The first of two environment variables that is set. */
static const char *env_either(const char *a, const char *b)
{
    const char *v = env_nonempty(a);
    return v ? v : env_nonempty(b);
}

/* minio-go's chain as restic uses it: AWS variables (also the older
 * AWS_ACCESS_KEY / AWS_SECRET_KEY names), MinIO variables, then the shared
 * credentials file.  (~/.mc/config.json and EC2 instance roles are not read.) */
static int find_credentials(s3_creds *c)
{
    const char *ak = env_nonempty("AWS_ACCESS_KEY_ID"), *sk = env_nonempty("AWS_SECRET_ACCESS_KEY");
    if (!ak && sk) return cr_error(CR_E_USAGE, "unable to open S3 backend: Key ID ($AWS_ACCESS_KEY_ID) is empty");
    if (ak && !sk) return cr_error(CR_E_USAGE, "unable to open S3 backend: Secret ($AWS_SECRET_ACCESS_KEY) is empty");
    ak = env_either("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY");
    sk = env_either("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY");
    if (ak && sk) return set_creds(c, ak, sk, env_nonempty("AWS_SESSION_TOKEN"));
    ak = env_either("MINIO_ROOT_USER", "MINIO_ACCESS_KEY");
    sk = env_either("MINIO_ROOT_PASSWORD", "MINIO_SECRET_KEY");
    if (ak && sk) return set_creds(c, ak, sk, NULL);
    return creds_from_file(c); /* nothing found: anonymous requests */
}

/* ---- requests ----------------------------------------------------------------- */

typedef struct {
    const char *method;
    const char *key;   /* object key (not encoded); NULL for the bucket itself */
    const char *query; /* encoded "k=v&k2=v2", or NULL */
    const void *body;
    size_t body_len;
    bool put_object; /* adds Content-MD5, Content-Type and the storage class */
    bool range;
    uint64_t range_off, range_len;
    const char *region; /* signing region; NULL: the backend's */
} s3_call;

static int request_path(const s3_backend *sb, const s3_call *c, cr_buf *path)
{
    CR_TRY(cr_buf_putc(path, '/'));
    if (!sb->vhost) {
        CR_TRY(cr_sigv4_uri_encode(path, sb->bucket, strlen(sb->bucket), 0));
        if (c->key) CR_TRY(cr_buf_putc(path, '/'));
    }
    if (c->key) CR_TRY(cr_sigv4_uri_encode(path, c->key, strlen(c->key), 1));
    return cr_buf_nul(path);
}

static int request_host(const s3_backend *sb, cr_buf *host)
{
    if (sb->vhost) CR_TRY(cr_buf_printf(host, "%s.", sb->bucket));
    CR_TRY(cr_buf_puts(host, sb->endpoint));
    return cr_buf_nul(host);
}

static void content_md5(const void *data, size_t n, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data ? data : (const void *)"", n, md, &len, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)len);
}

/* The lines sent and the subset that is signed; the lines are owned. */
typedef struct {
    cr_sigv4_header sig[8];
    size_t nsig;
    const char *lines[12];
    size_t nlines;
    char *owned[8];
    size_t nowned;
} header_set;

static int add_header(header_set *hs, const char *name, const char *value, bool sign)
{
    char *line;
    if (hs->nowned >= 8 || hs->nsig >= 8) return cr_error(-EINVAL, "s3: too many headers");
    if (asprintf(&line, "%s: %s", name, value) < 0) return cr_error(-ENOMEM, "out of memory");
    hs->owned[hs->nowned++] = line;
    hs->lines[hs->nlines++] = line;
    if (sign) hs->sig[hs->nsig++] = (cr_sigv4_header){name, value};
    return 0;
}

/* Wiped: a session token may be among them. */
static void header_set_free(header_set *hs)
{
    for (size_t i = 0; i < hs->nowned; i++) wipe_free(hs->owned[i]);
    hs->nowned = 0;
}

static int build_headers(s3_backend *sb, const s3_call *c, const char *host, const char *path, header_set *hs,
                         cr_buf *auth)
{
    char payload[65], date[17], md5[32];
    cr_sigv4_sha256_hex(c->body, c->body_len, payload);
    cr_sigv4_amz_date(time(NULL), date);
    CR_TRY(add_header(hs, "Host", host, true));
    CR_TRY(add_header(hs, "x-amz-content-sha256", payload, true));
    CR_TRY(add_header(hs, "x-amz-date", date, true));
    if (sb->creds.session_token) CR_TRY(add_header(hs, "x-amz-security-token", sb->creds.session_token, true));
    if (c->put_object) {
        content_md5(c->body, c->body_len, md5);
        CR_TRY(add_header(hs, "Content-MD5", md5, true));
        CR_TRY(add_header(hs, "Content-Type", "application/octet-stream", false));
        if (sb->storage_class) CR_TRY(add_header(hs, "x-amz-storage-class", sb->storage_class, true));
    } else if (c->body) {
        CR_TRY(add_header(hs, "Content-Type", "application/xml", false));
    }
    if (sb->creds.access_key) {
        cr_sigv4_key key = {sb->creds.access_key, sb->creds.secret_key, c->region ? c->region : sb->region, "s3"};
        cr_sigv4_request sr = {.method = c->method, .path = path, .query = c->query, .headers = hs->sig,
                               .n_headers = hs->nsig, .payload_sha256 = payload, .amz_date = date};
        CR_TRY(cr_sigv4_authorization(&key, &sr, auth, NULL));
        hs->lines[hs->nlines++] = (const char *)auth->data;
    }
    hs->lines[hs->nlines] = NULL;
    return 0;
}

static bool is_clock_skew(const cr_http_resp *resp)
{
    char code[64], msg[8];
    if (resp->status != 403) return false;
    cr_s3_error_fields(resp->body.data, resp->body.len, code, sizeof code, msg, sizeof msg);
    return !strcmp(code, "RequestTimeTooSkewed");
}

/* One signed request, sent as it is (the HTTP layer retries). */
static int s3_do_once(s3_backend *sb, const s3_call *c, cr_http_resp *resp, char **url_out)
{
    _cleanup_buf_ cr_buf path = CR_BUF_INIT, host = CR_BUF_INIT, url = CR_BUF_INIT, auth = CR_BUF_INIT;
    CR_TRY(request_path(sb, c, &path));
    CR_TRY(request_host(sb, &host));
    CR_TRY(cr_buf_printf(&url, "%s://%s%s%s%s", sb->https ? "https" : "http", (const char *)host.data,
                         (const char *)path.data, c->query ? "?" : "", c->query ? c->query : ""));
    *url_out = strdup((const char *)url.data);
    if (!*url_out) return cr_error(-ENOMEM, "out of memory");
    CR_TRY(cr_buf_puts(&auth, "Authorization: "));
    header_set hs = {0};
    int r = build_headers(sb, c, (const char *)host.data, (const char *)path.data, &hs, &auth);
    if (r == 0) {
        cr_http_req req = {.method = c->method, .url = *url_out, .headers = hs.lines, .body = c->body,
                           .body_len = c->body_len, .range = c->range, .range_off = c->range_off,
                           .range_len = c->range_len};
        r = cr_http_request(sb->http, &req, resp);
    }
    header_set_free(&hs);
    if (auth.data) explicit_bzero(auth.data, auth.len);
    return r;
}

/* One signed request; *url_out (for messages) is set even on failure.  The
 * signature holds the time it was made, and the HTTP layer repeats a request
 * unchanged for up to 15 minutes: one that has grown too old for the server
 * is signed afresh and sent once more. */
static int s3_do(s3_backend *sb, const s3_call *c, cr_http_resp *resp, char **url_out)
{
    time_t signed_at = time(NULL);
    CR_TRY(s3_do_once(sb, c, resp, url_out));
    if (!is_clock_skew(resp) || time(NULL) - signed_at < 60) return 0;
    free(*url_out);
    *url_out = NULL;
    cr_buf_reset(&resp->body);
    return s3_do_once(sb, c, resp, url_out);
}

/* ---- error answers -------------------------------------------------------------- */

static void copy_line(char *out, size_t n, const cr_buf *b)
{
    snprintf(out, n, "%s", (const char *)b->data);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' '; /* one printable line */
}

void cr_s3_error_fields(const void *body, size_t len, char *code, size_t ncode, char *msg, size_t nmsg)
{
    code[0] = msg[0] = 0;
    cr_xml doc = cr_xml_of(body, len), err;
    if (!len || cr_xml_next(&doc, "Error", &err) != 1) return;
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    if (cr_xml_text(&err, "Code", &b) == 1) copy_line(code, ncode, &b);
    cr_buf_reset(&b);
    if (cr_xml_text(&err, "Message", &b) == 1) copy_line(msg, nmsg, &b);
}

static void error_fields(const cr_http_resp *resp, char *code, size_t ncode, char *msg, size_t nmsg)
{
    cr_s3_error_fields(resp->body.data, resp->body.len, code, ncode, msg, nmsg);
}

static bool is_credentials_code(const char *code)
{
    return !strcmp(code, "SignatureDoesNotMatch") || !strcmp(code, "InvalidAccessKeyId") ||
           !strcmp(code, "InvalidToken") || !strcmp(code, "ExpiredToken") || !strcmp(code, "InvalidSecurity");
}

static const char *credentials_hint(const s3_backend *sb)
{
    return sb->creds.access_key ? "wrong credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile in the "
                                  "shared credentials file)"
                                : "no credentials were found (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and "
                                  "the server refuses anonymous access";
}

/* A message naming the request, the status and S3's error code. */
static int s3_status_error(const s3_backend *sb, const char *method, const char *url, const cr_http_resp *resp)
{
    char code[64], msg[256];
    error_fields(resp, code, sizeof code, msg, sizeof msg);
    long st = resp->status;
    int err = st == 404 ? -ENOENT : st == 401 || st == 403 ? -EACCES : -EIO;
    bool refused = st == 400 || st == 401 || st == 403 || st == 412;
    if (!strcmp(code, "RequestTimeTooSkewed"))
        return cr_error(-EACCES, "%s %s: %ld %s: this machine's clock and the server's differ by more than 15 minutes", method,
                        url, st, code);
    if (!strcmp(code, "AuthorizationHeaderMalformed"))
        return cr_error(-EACCES, "%s %s: %ld %s: %s (is the region right? -o s3.region or AWS_DEFAULT_REGION; now %s)",
                        method, url, st, code, msg[0] ? msg : "malformed authorization", sb->region ? sb->region : "unset");
    /* anonymous: a refusal, or an answer that is no S3 error at all (Swift
     * hands unsigned requests to its own API, which says "412 Bad URL") */
    if (!sb->creds.access_key && refused && (!code[0] || !strcmp(code, "AccessDenied") || st == 401 || st == 403))
        return cr_error(-EACCES, "%s %s: %ld%s%s: %s", method, url, st, code[0] ? " " : "", code, credentials_hint(sb));
    if (is_credentials_code(code) || ((st == 401 || st == 403) && !code[0] && !strcmp(method, "HEAD")))
        return cr_error(-EACCES, "%s %s: %ld %s: %s", method, url, st, code[0] ? code : "Forbidden", credentials_hint(sb));
    if (code[0])
        return cr_error(err, "%s %s: %ld %s%s%s", method, url, st, code, msg[0] ? ": " : "", msg);
    cr_http_req req = {.method = method, .url = url};
    return cr_http_status_error(&req, resp);
}

/* HEAD answers carry no body: for a clear message, ask again with GET of
 * the first byte, whose error answer explains itself. */
static int head_error(s3_backend *sb, const s3_call *head, const char *url, const cr_http_resp *resp)
{
    if (resp->status != 400 && resp->status != 403) return s3_status_error(sb, "HEAD", url, resp);
    s3_call get = *head;
    get.method = "GET";
    get.range = true;
    get.range_off = 0;
    get.range_len = 1;
    _cleanup_(cr_http_resp_free) cr_http_resp gresp = {0};
    _cleanup_free_ char *gurl = NULL;
    if (s3_do(sb, &get, &gresp, &gurl) == 0 && gresp.status == resp->status)
        return s3_status_error(sb, "HEAD", url, &gresp);
    return s3_status_error(sb, "HEAD", url, resp);
}

/* ---- object names --------------------------------------------------------------- */

static int check_name(cr_filetype t, const char *name)
{
    if (t == CR_FILE_CONFIG) return 0;
    if (!name || !name[0] || name[0] == '.' || strpbrk(name, "/?#%\\ "))
        return cr_error(-EINVAL, "invalid object name \"%s\"", name ? name : "");
    return 0;
}

/* restic's default layout: data files one level deeper, under their first two hex digits. */
static int object_key(const s3_backend *sb, cr_filetype t, const char *name, char **out)
{
    CR_TRY(check_name(t, name));
    const char *sep = sb->prefix[0] ? "/" : "";
    int n;
    if (t == CR_FILE_CONFIG) n = asprintf(out, "%s%sconfig", sb->prefix, sep);
    else if (t == CR_FILE_PACK && strlen(name) >= 2) n = asprintf(out, "%s%sdata/%.2s/%s", sb->prefix, sep, name, name);
    else n = asprintf(out, "%s%s%s/%s", sb->prefix, sep, cr_filetype_dir(t), name);
    if (n < 0) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

/* ---- operations ------------------------------------------------------------------ */

static int s3_stat(cr_backend *b, cr_filetype t, const char *name, uint64_t *size)
{
    s3_backend *sb = as_s3(b);
    _cleanup_free_ char *key = NULL, *url = NULL;
    CR_TRY(object_key(sb, t, name, &key));
    s3_call c = {.method = "HEAD", .key = key};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(s3_do(sb, &c, &resp, &url));
    if (resp.status == 404) return -ENOENT;
    if (resp.status != 200) return head_error(sb, &c, url, &resp);
    if (resp.content_length < 0) return cr_error(-EIO, "HEAD %s: no Content-Length in the answer", url);
    *size = (uint64_t)resp.content_length;
    return 0;
}

/* "bytes a-b/total" -> a, b; false when absent or malformed. */
static bool content_range(const cr_http_resp *resp, uint64_t *a, uint64_t *b)
{
    char v[128];
    unsigned long long x, y;
    if (!cr_http_resp_header(resp, "Content-Range", v, sizeof v)) return false;
    if (sscanf(v, "bytes %llu-%llu/", &x, &y) != 2 || y < x) return false;
    *a = x;
    *b = y;
    return true;
}

/* Where the answer's body starts in the object: 206 says so in
 * Content-Range (s3rver answers "bytes=0-0" with the whole object, and says
 * so there), 200 is the whole object (a server may ignore Range). */
static int body_start(const s3_call *c, const char *url, const cr_http_resp *resp, uint64_t *start)
{
    uint64_t a, b;
    *start = 0;
    if (resp->status != 206) return 0;
    if (!content_range(resp, &a, &b)) {
        *start = c->range_off;
        return 0;
    }
    if (b - a + 1 != resp->body.len || a > c->range_off)
        return cr_error(-EIO, "GET %s: the answer's %zu bytes do not match its Content-Range %llu-%llu for offset %llu",
                        url, resp->body.len, (unsigned long long)a, (unsigned long long)b,
                        (unsigned long long)c->range_off);
    *start = a;
    return 0;
}

static int take_range(const s3_call *c, const char *url, cr_http_resp *resp, cr_buf *out)
{
    uint64_t start;
    CR_TRY(body_start(c, url, resp, &start));
    uint64_t skip = c->range ? c->range_off - start : 0;
    return cr_http_take_part(url, resp, skip, c->range_off, c->range_len, out);
}

static int s3_load(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out)
{
    s3_backend *sb = as_s3(b);
    _cleanup_free_ char *key = NULL, *url = NULL;
    CR_TRY(object_key(sb, t, name, &key));
    if (len > SIZE_MAX / 2) return cr_error(-EFBIG, "%s: range too large", key);
    s3_call c = {.method = "GET", .key = key, .range = off > 0 || len > 0, .range_off = off, .range_len = len};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(s3_do(sb, &c, &resp, &url));
    if (resp.status == 416)
        return cr_error(-EIO, "GET %s: range %llu+%llu lies beyond the end of the object", url, (unsigned long long)off,
                        (unsigned long long)len);
    if (resp.status != 200 && !(resp.status == 206 && c.range)) return s3_status_error(sb, "GET", url, &resp);
    return take_range(&c, url, &resp, out);
}

static int s3_save(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n)
{
    s3_backend *sb = as_s3(b);
    _cleanup_free_ char *key = NULL, *url = NULL;
    CR_TRY(object_key(sb, t, name, &key));
    s3_call c = {.method = "PUT", .key = key, .body = data ? data : "", .body_len = n, .put_object = true};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(s3_do(sb, &c, &resp, &url));
    if (resp.status != 200 && resp.status != 201 && resp.status != 204) return s3_status_error(sb, "PUT", url, &resp);
    return 0;
}

static int s3_remove(cr_backend *b, cr_filetype t, const char *name)
{
    s3_backend *sb = as_s3(b);
    _cleanup_free_ char *key = NULL, *url = NULL;
    CR_TRY(object_key(sb, t, name, &key));
    s3_call c = {.method = "DELETE", .key = key};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(s3_do(sb, &c, &resp, &url));
    if (resp.status == 200 || resp.status == 204) return 0;
    char code[64], msg[8];
    error_fields(&resp, code, sizeof code, msg, sizeof msg);
    if (resp.status == 404 && strcmp(code, "NoSuchBucket")) return 0; /* already gone */
    return s3_status_error(sb, "DELETE", url, &resp);
}

/* ---- list ------------------------------------------------------------------------ */

/* One <Contents> entry: its key's last segment, when it is an object ID. */
static int list_entry(const cr_xml *item, size_t prefix_len, cr_list_cb cb, void *ud, cr_buf *key)
{
    uint64_t size;
    cr_buf_reset(key);
    if (cr_xml_text(item, "Key", key) != 1 || cr_xml_u64(item, "Size", &size) != 1)
        return cr_error(CR_E_FORMAT, "malformed <Contents> entry in the listing");
    const char *k = (const char *)key->data;
    size_t klen = strlen(k); /* an encoded NUL ends the name */
    if (klen < prefix_len) return 0;
    const char *base = strrchr(k + prefix_len, '/');
    base = base ? base + 1 : k + prefix_len;
    if (!cr_is_hex_name(base, strlen(base))) return 0;
    return cb(ud, base, size);
}

/* Where the next page starts: V2's continuation token, or V1's NextMarker
 * (only sent with a delimiter), else the last key of this page. */
static int next_page_token(const void *body, size_t len, bool v1, const cr_buf *last_key, cr_buf *token)
{
    cr_xml all = cr_xml_of(body, len);
    int r = cr_xml_text(&all, v1 ? "NextMarker" : "NextContinuationToken", token);
    if (r < 0) return r;
    if (v1 && (r == 0 || token->len == 0) && last_key->len) {
        cr_buf_reset(token);
        CR_TRY(cr_buf_append(token, last_key->data, last_key->len));
        CR_TRY(cr_buf_nul(token));
    }
    return 0;
}

int cr_s3_parse_list(const void *body, size_t len, size_t prefix_len, bool v1, cr_list_cb cb, void *ud, cr_buf *token)
{
    cr_xml doc = cr_xml_of(body, len), item;
    _cleanup_buf_ cr_buf key = CR_BUF_INIT, last = CR_BUF_INIT, truncated = CR_BUF_INIT;
    int r;
    cr_buf_reset(token);
    CR_TRY(cr_buf_nul(token));
    while ((r = cr_xml_next(&doc, "Contents", &item)) == 1) {
        r = list_entry(&item, prefix_len, cb, ud, &key);
        if (r != 0) return r;
        cr_buf_reset(&last);
        CR_TRY(cr_buf_append(&last, key.data, key.len));
    }
    if (r < 0) return cr_error(CR_E_FORMAT, "malformed listing");
    cr_xml all = cr_xml_of(body, len);
    r = cr_xml_text(&all, "IsTruncated", &truncated);
    if (r < 0) return cr_error(CR_E_FORMAT, "malformed listing");
    if (r == 0 || strcmp((const char *)truncated.data, "true")) return 0;
    r = next_page_token(body, len, v1, &last, token);
    if (r < 0 || token->len == 0 || strlen((const char *)token->data) != token->len) {
        cr_buf_reset(token);
        cr_buf_nul(token);
        return cr_error(CR_E_FORMAT, "truncated listing without a usable continuation token or marker");
    }
    return 0;
}

static unsigned list_page_size(void)
{
    const char *s = getenv("CRESTIC_LIST_PAGE_SIZE");
    char *end;
    unsigned long v = s && *s ? strtoul(s, &end, 10) : 0;
    return s && *s && !*end && v >= 1 && v <= DEFAULT_LIST_PAGE ? (unsigned)v : DEFAULT_LIST_PAGE;
}

static int list_query(const char *prefix, unsigned page, bool v1, const cr_buf *token, cr_buf *q)
{
    cr_buf_reset(q);
    if (token->len) {
        CR_TRY(cr_buf_puts(q, v1 ? "marker=" : "continuation-token="));
        CR_TRY(cr_sigv4_uri_encode(q, (const char *)token->data, token->len, 0));
        CR_TRY(cr_buf_putc(q, '&'));
    }
    CR_TRY(cr_buf_printf(q, "%smax-keys=%u&prefix=", v1 ? "" : "list-type=2&", page));
    return cr_sigv4_uri_encode(q, prefix, strlen(prefix), 0);
}

static bool same_buf(const cr_buf *a, const cr_buf *b)
{
    return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

/* ListObjectsV2 by default, V1 (marker paging) with -o s3.list-objects-v1=true. */
static int s3_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud)
{
    s3_backend *sb = as_s3(b);
    if (t == CR_FILE_CONFIG) return 0;
    _cleanup_free_ char *prefix = NULL;
    if (asprintf(&prefix, "%s%s%s/", sb->prefix, sb->prefix[0] ? "/" : "", cr_filetype_dir(t)) < 0)
        return cr_error(-ENOMEM, "out of memory");
    _cleanup_buf_ cr_buf token = CR_BUF_INIT, previous = CR_BUF_INIT, query = CR_BUF_INIT;
    unsigned page = list_page_size();
    do {
        CR_TRY(list_query(prefix, page, sb->list_v1, &token, &query));
        s3_call c = {.method = "GET", .query = (const char *)query.data};
        _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
        _cleanup_free_ char *url = NULL;
        CR_TRY(s3_do(sb, &c, &resp, &url));
        if (resp.status != 200) return s3_status_error(sb, "GET", url, &resp);
        cr_buf_reset(&previous);
        CR_TRY(cr_buf_append(&previous, token.data, token.len));
        int r = cr_s3_parse_list(resp.body.data, resp.body.len, strlen(prefix), sb->list_v1, cb, ud, &token);
        if (r == CR_E_FORMAT) return cr_error_ctx(r, "GET %s", url);
        if (r != 0) return r; /* an error, or the callback's stop */
        if (token.len && same_buf(&token, &previous))
            return cr_error(CR_E_FORMAT, "GET %s: the listing does not advance (same page token again)", url);
    } while (token.len);
    return 0;
}

/* ---- region ----------------------------------------------------------------------- */

/* s3.REGION.amazonaws.com, s3-REGION.amazonaws.com, s3.dualstack.REGION.amazonaws.com */
static char *region_from_host(const char *host)
{
    if (!is_amazon_host(host) || strncasecmp(host, "s3", 2) || (host[2] != '.' && host[2] != '-')) return NULL;
    const char *p = host + 3;
    if (!strncasecmp(p, "dualstack.", 10)) p += 10;
    size_t n = strcspn(p, ".");
    if (!n || !strncasecmp(p, "amazonaws", n) || !strncasecmp(p, "external-1", n)) return NULL;
    return strndup_or_null(p, n);
}

/* GetBucketLocation, signed for us-east-1 (which any region accepts for
 * this call).  A server that names the right region in its error is
 * believed; a refusal, a missing bucket or a server without this call means
 * the default region.  Refused credentials are reported at once. */
static int discover_region(s3_backend *sb, char **out)
{
    s3_call c = {.method = "GET", .query = "location", .region = DEFAULT_REGION};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    _cleanup_free_ char *url = NULL;
    CR_TRY(s3_do(sb, &c, &resp, &url));
    cr_xml doc = cr_xml_of(resp.body.data, resp.body.len);
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    char code[64], msg[8];
    error_fields(&resp, code, sizeof code, msg, sizeof msg);
    if (resp.status == 200 && cr_xml_text(&doc, "LocationConstraint", &b) == 1 && b.len)
        *out = strdup(!strcmp((const char *)b.data, "EU") ? "eu-west-1" : (const char *)b.data);
    else if (resp.status == 400 && cr_xml_text(&doc, "Region", &b) == 1 && b.len)
        *out = strdup((const char *)b.data);
    else if (is_credentials_code(code))
        return s3_status_error(sb, "GET", url, &resp);
    else if (resp.status < 500)
        *out = strdup(DEFAULT_REGION);
    else
        return s3_status_error(sb, "GET", url, &resp);
    if (!*out) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static int pick_region(s3_backend *sb)
{
    const char *opt = cr_backend_option("s3", "region");
    if (!opt || !*opt) opt = env_nonempty("AWS_DEFAULT_REGION");
    char host[256];
    host_only(sb->endpoint, host, sizeof host);
    if (opt) sb->region = strdup(opt);
    else if (!(sb->region = region_from_host(host))) return discover_region(sb, &sb->region);
    if (!sb->region) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

/* -o s3.NAME=true|false (restic's Go booleans: 1/t/true, 0/f/false, any case) */
static int bool_option(const char *name, bool *out)
{
    const char *v = cr_backend_option("s3", name);
    *out = false;
    if (!v) return 0;
    if (!strcasecmp(v, "true") || !strcasecmp(v, "t") || !strcmp(v, "1")) *out = true;
    else if (strcasecmp(v, "false") && strcasecmp(v, "f") && strcmp(v, "0"))
        return cr_error(CR_E_USAGE, "invalid value \"%s\" for option s3.%s: expected true or false", v, name);
    return 0;
}

/* ---- open / create / close ---------------------------------------------------------- */

static void s3_close(cr_backend *b)
{
    s3_backend *sb = as_s3(b);
    cr_http_free(sb->http);
    free(sb->endpoint);
    free(sb->bucket);
    free(sb->prefix);
    free(sb->region);
    free(sb->storage_class);
    creds_free(&sb->creds);
    free(b->location);
    free(sb);
}

static int s3_setup(s3_backend *sb, const char *loc)
{
    CR_TRY(parse_location(sb, loc));
    CR_TRY(pick_lookup(sb));
    CR_TRY(cr_backend_option_uint("s3", "connections", DEFAULT_CONNECTIONS, 1, 128, &sb->base.connections));
    CR_TRY(bool_option("list-objects-v1", &sb->list_v1));
    const char *sc = cr_backend_option("s3", "storage-class");
    if (sc && *sc && !(sb->storage_class = strdup(sc))) return cr_error(-ENOMEM, "out of memory");
    CR_TRY(find_credentials(&sb->creds));
    cr_http_config cfg = {0};
    CR_TRY(cr_http_new(&cfg, &sb->http));
    return pick_region(sb);
}

static int s3_open(const char *loc, cr_backend **out)
{
    s3_backend *sb = calloc(1, sizeof *sb);
    if (!sb) return cr_error(-ENOMEM, "out of memory");
    int r = s3_setup(sb, loc);
    if (r < 0) {
        s3_close(&sb->base);
        return r;
    }
    *out = &sb->base;
    return 0;
}

/* Bucket creation in the backend's region (us-east-1 takes no body). */
static int make_bucket(s3_backend *sb)
{
    _cleanup_buf_ cr_buf body = CR_BUF_INIT;
    if (strcmp(sb->region, DEFAULT_REGION))
        CR_TRY(cr_buf_printf(&body, "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                                    "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
                             sb->region));
    s3_call c = {.method = "PUT", .body = body.len ? (const void *)body.data : "", .body_len = body.len};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    _cleanup_free_ char *url = NULL;
    CR_TRY(s3_do(sb, &c, &resp, &url));
    if (resp.status == 200 || resp.status == 201 || resp.status == 204) return 0;
    char code[64], msg[8];
    error_fields(&resp, code, sizeof code, msg, sizeof msg);
    if (!strcmp(code, "BucketAlreadyOwnedByYou")) return 0;
    CR_TRY_CTX(s3_status_error(sb, "PUT", url, &resp), "creating bucket %s", sb->bucket);
    return 0;
}

/* Create the bucket unless it exists; an access-denied answer counts as
 * existing (restic: the key may lack the right to look at the bucket), a
 * refused signature does not.  HEAD answers carry no error code, so a 403
 * is asked again as a one-key listing. */
static int ensure_bucket(s3_backend *sb)
{
    s3_call c = {.method = "HEAD"};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    _cleanup_free_ char *url = NULL;
    CR_TRY(s3_do(sb, &c, &resp, &url));
    if (resp.status == 200) return 0;
    if (resp.status == 404) return make_bucket(sb);
    if (resp.status != 403) return head_error(sb, &c, url, &resp);
    s3_call get = {.method = "GET", .query = "list-type=2&max-keys=1"};
    _cleanup_(cr_http_resp_free) cr_http_resp gresp = {0};
    _cleanup_free_ char *gurl = NULL;
    CR_TRY(s3_do(sb, &get, &gresp, &gurl));
    if (gresp.status == 200) return 0;
    char code[64], msg[8];
    error_fields(&gresp, code, sizeof code, msg, sizeof msg);
    if (!strcmp(code, "AccessDenied") && sb->creds.access_key) return 0;
    return s3_status_error(sb, "GET", gurl, &gresp);
}

static int s3_create(const char *loc, cr_backend **out)
{
    cr_backend *b;
    CR_TRY(s3_open(loc, &b));
    s3_backend *sb = as_s3(b);
    int r = ensure_bucket(sb);
    uint64_t size;
    if (r == 0) {
        r = s3_stat(b, CR_FILE_CONFIG, NULL, &size);
        if (r == 0) r = cr_error(-EEXIST, "config file already exists");
        else if (r == -ENOENT) r = 0;
    }
    if (r < 0) {
        s3_close(b);
        return r;
    }
    *out = b;
    return 0;
}

const cr_backend_ops cr_backend_s3 = {
    .scheme = "s3",
    .open = s3_open,
    .create = s3_create,
    .close = s3_close,
    .stat = s3_stat,
    .load = s3_load,
    .save = s3_save,
    .remove = s3_remove,
    .list = s3_list,
    .options = (const char *const[]){"connections", "region", "bucket-lookup", "storage-class", "list-objects-v1", NULL},
};
