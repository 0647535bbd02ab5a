/* Azure Blob Storage backend: restic's azure:CONTAINER:/PREFIX repositories
 * on block blobs, over the REST API with Shared Key signing or a SAS token.
 *
 * Objects lie in restic's default layout below PREFIX (config, keys/ID,
 * data/XX/ID, ...).  Small objects go up in one Put Blob; objects larger
 * than the block size in Put Block pieces committed by Put Block List, so a
 * failed piece is retried alone.  Every upload carries Content-MD5, which
 * the service checks.
 *
 * Endpoint: https://ACCOUNT.blob.SUFFIX/ (AZURE_ENDPOINT_SUFFIX, default
 * core.windows.net), or -o azure.endpoint=URL for an emulator (path style:
 * the account is part of the URL's path), or the local emulator
 * http://127.0.0.1:10000/devstoreaccount1 when the account is
 * devstoreaccount1 (as restic 0.14's SDK did). */
#include "backends/azure.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/http.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/id.h"
#include "util/xml.h"

#define API_VERSION "2021-12-02"
#define DEFAULT_CONNECTIONS 5
#define DEFAULT_BLOCK_MIB 32
#define MAX_BLOCK_MIB 4000   /* the service's largest block */
#define MAX_BLOCKS 50000     /* the service's limit per blob */
#define DEFAULT_PAGE_SIZE 5000
#define EMULATOR_ACCOUNT "devstoreaccount1"
#define EMULATOR_ENDPOINT "http://127.0.0.1:10000/" EMULATOR_ACCOUNT
/* The emulator's published well-known key (not a secret). */
#define EMULATOR_KEY "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define STALE_SIGNATURE_SECONDS 600
#define MAX_PARAMS 5
#define MAX_XMS 6

typedef struct {
    cr_backend base;
    cr_http *http;
    char *account;
    char *container_url; /* endpoint/container, no trailing '/' */
    char *resource;      /* "/account" + path of container_url: start of the signed resource */
    char *prefix;        /* object key prefix: "" or "some/path/" */
    uint8_t key[128];    /* decoded account key (Shared Key) */
    size_t key_len;      /* 0: SAS (or nothing) */
    char *sas;           /* SAS query string without '?', or NULL */
    const char *tier;    /* x-ms-access-tier for uploads, or NULL */
    size_t block_size;
    unsigned page_size;
} azure_backend;

static azure_backend *as_azure(cr_backend *b)
{
    return (azure_backend *)b;
}

/* ---- small encodings -------------------------------------------------------- */

/* out must hold 4*ceil(n/3)+1 bytes. */
static void b64_encode(const void *data, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, data, (int)n);
}

static int b64_decode(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(s);
    if (n == 0 || n % 4 || n / 4 * 3 > cap) return -1;
    int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (r < 0) return -1;
    size_t pad = (s[n - 1] == '=') + (s[n - 2] == '=');
    *len = (size_t)r - pad;
    return 0;
}

/* Base64 of the MD5 of data: Content-MD5. */
static void md5_b64(const void *data, size_t n, char out[25])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, n, md, &mdlen, EVP_md5(), NULL);
    b64_encode(md, mdlen, out);
}

/* RFC 3986 unreserved characters stay, '/' too when keep_slash. */
static int pct_encode(cr_buf *out, const char *s, bool keep_slash)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     strchr("-._~", *p) || (keep_slash && *p == '/');
        CR_TRY(plain ? cr_buf_putc(out, (char)*p) : cr_buf_printf(out, "%%%02X", *p));
    }
    return 0;
}

/* RFC 1123 date in English whatever the locale: "Tue, 24 Nov 2026 17:49:54 GMT". */
static void http_date(char out[32])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- requests --------------------------------------------------------------- */

typedef struct {
    const char *name, *value; /* value unencoded */
} az_param;

/* One REST call.  Shared Key signs the method, the headers named here, all
 * x-ms-* headers and the resource with its query parameters. */
typedef struct {
    const char *method;
    const char *key;                /* blob key below the container; NULL: the container */
    az_param query[MAX_PARAMS];     /* name NULL ends the list */
    const char *content_type, *content_md5;
    const char *xms[MAX_XMS];       /* "x-ms-name:value", lower-case names; NULL ends */
    const void *body;
    size_t body_len;
    bool range;                     /* x-ms-range: bytes=range_off-[range_off+range_len-1] */
    uint64_t range_off, range_len;
} az_call;

typedef struct {
    cr_buf url, shown;              /* shown: the URL without the SAS token, for messages */
    char *headers[MAX_XMS + 8];
    size_t nheaders;
    cr_http_req req;
} az_prepared;

static void prepared_free(az_prepared *p)
{
    cr_buf_free(&p->url);
    cr_buf_free(&p->shown);
    for (size_t i = 0; i < p->nheaders; i++) {
        if (!strncmp(p->headers[i], "Authorization:", 14)) explicit_bzero(p->headers[i], strlen(p->headers[i]));
        free(p->headers[i]);
    }
}

static int cmp_param(const void *a, const void *b)
{
    return strcmp(((const az_param *)a)->name, ((const az_param *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t count_params(const az_call *c)
{
    size_t n = 0;
    while (n < MAX_PARAMS && c->query[n].name) n++;
    return n;
}

/* Encoded path of the call below the container: "" or "/key". */
static int call_path(const az_call *c, cr_buf *out)
{
    if (!c->key) return 0;
    CR_TRY(cr_buf_putc(out, '/'));
    return pct_encode(out, c->key, true);
}

static int build_url(azure_backend *ab, const az_call *c, const az_param *params, size_t np, az_prepared *p)
{
    CR_TRY(cr_buf_puts(&p->shown, ab->container_url));
    CR_TRY(call_path(c, &p->shown));
    for (size_t i = 0; i < np; i++) {
        CR_TRY(cr_buf_printf(&p->shown, "%c%s=", i ? '&' : '?', params[i].name));
        CR_TRY(pct_encode(&p->shown, params[i].value, false));
    }
    CR_TRY(cr_buf_nul(&p->shown));
    CR_TRY(cr_buf_append(&p->url, p->shown.data, p->shown.len));
    if (ab->sas) CR_TRY(cr_buf_printf(&p->url, "%c%s", np ? '&' : '?', ab->sas));
    return cr_buf_nul(&p->url);
}

static int add_header(az_prepared *p, const char *fmt, const char *a, const char *b)
{
    if (p->nheaders >= sizeof p->headers / sizeof p->headers[0] - 1) return cr_error(-EINVAL, "azure: too many headers");
    if (asprintf(&p->headers[p->nheaders], fmt, a, b) < 0) return cr_error(-ENOMEM, "out of memory");
    p->nheaders++;
    return 0;
}

/* The Shared Key string to sign (service version 2015-02-21 and later). */
static int string_to_sign(azure_backend *ab, const az_call *c, const char **xms, size_t nx, const az_param *params,
                          size_t np, cr_buf *s)
{
    char length[24] = "";
    if (c->body_len) snprintf(length, sizeof length, "%zu", c->body_len);
    /* verb, Content-Encoding, -Language, -Length, -MD5, -Type, Date, If-Modified-Since,
     * If-Match, If-None-Match, If-Unmodified-Since, Range */
    CR_TRY(cr_buf_printf(s, "%s\n\n\n%s\n%s\n%s\n\n\n\n\n\n\n", c->method, length, c->content_md5 ? c->content_md5 : "",
                         c->content_type ? c->content_type : ""));
    for (size_t i = 0; i < nx; i++) CR_TRY(cr_buf_printf(s, "%s\n", xms[i]));
    CR_TRY(cr_buf_puts(s, ab->resource));
    CR_TRY(call_path(c, s));
    for (size_t i = 0; i < np; i++) CR_TRY(cr_buf_printf(s, "\n%s:%s", params[i].name, params[i].value));
    return 0;
}

static int sign(azure_backend *ab, const cr_buf *sts, az_prepared *p)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), ab->key, (int)ab->key_len, sts->data, sts->len, mac, &maclen))
        return cr_error(-EIO, "azure: HMAC-SHA256 failed");
    char sig[64];
    b64_encode(mac, maclen, sig);
    return add_header(p, "Authorization: SharedKey %s:%s", ab->account, sig);
}

/* "x-ms-name:value" -> header line "x-ms-name: value". */
static int add_xms_header(az_prepared *p, const char *xms)
{
    const char *colon = strchr(xms, ':');
    if (!colon) return cr_error(-EINVAL, "azure: malformed header %s", xms);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(colon - xms), xms);
    return add_header(p, "%s: %s", name, colon + 1);
}

/* "x-ms-range:bytes=FIRST-[LAST]" */
static void range_header(const az_call *c, char *out, size_t n)
{
    if (c->range_len) snprintf(out, n, "x-ms-range:bytes=%llu-%llu", (unsigned long long)c->range_off,
                               (unsigned long long)(c->range_off + c->range_len - 1));
    else snprintf(out, n, "x-ms-range:bytes=%llu-", (unsigned long long)c->range_off);
}

/* URL, headers and (with a key) the Shared Key signature of a call. */
static int prepare(azure_backend *ab, const az_call *c, az_prepared *p)
{
    az_param params[MAX_PARAMS];
    size_t np = count_params(c);
    memcpy(params, c->query, np * sizeof *params);
    qsort(params, np, sizeof *params, cmp_param);
    char date[32], xdate[48], range[80];
    http_date(date);
    snprintf(xdate, sizeof xdate, "x-ms-date:%s", date);
    const char *xms[MAX_XMS + 3];
    size_t nx = 0;
    for (size_t i = 0; i < MAX_XMS && c->xms[i]; i++) xms[nx++] = c->xms[i];
    xms[nx++] = xdate;
    xms[nx++] = "x-ms-version:" API_VERSION;
    if (c->range) {
        range_header(c, range, sizeof range);
        xms[nx++] = range;
    }
    qsort(xms, nx, sizeof *xms, cmp_str);

    CR_TRY(build_url(ab, c, params, np, p));
    for (size_t i = 0; i < nx; i++) CR_TRY(add_xms_header(p, xms[i]));
    if (c->content_type) CR_TRY(add_header(p, "Content-Type: %s%s", c->content_type, ""));
    if (c->content_md5) CR_TRY(add_header(p, "Content-MD5: %s%s", c->content_md5, ""));
    if (ab->key_len) {
        _cleanup_buf_ cr_buf sts = CR_BUF_INIT;
        CR_TRY(string_to_sign(ab, c, xms, nx, params, np, &sts));
        CR_TRY(sign(ab, &sts, p));
    }
    p->headers[p->nheaders] = NULL;
    p->req = (cr_http_req){.method = c->method, .url = (const char *)p->url.data, .display_url = (const char *)p->shown.data,
                           .headers = (const char *const *)p->headers, .body = c->body, .body_len = c->body_len};
    return 0;
}

/* Server text goes to a terminal: control characters become '?'. */
static void make_printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

/* The service's error code: the x-ms-error-code header, else <Code> of the body. */
static void error_code(const cr_http_resp *resp, char *out, size_t n)
{
    out[0] = 0;
    if (!cr_http_resp_header(resp, "x-ms-error-code", out, n)) {
        _cleanup_buf_ cr_buf code = CR_BUF_INIT;
        cr_xml doc = cr_xml_of(resp->body.data, resp->body.len);
        if (cr_xml_text(&doc, "Code", &code) == 1) snprintf(out, n, "%s", (const char *)code.data);
    }
    make_printable(out);
}

/* The first line of the body's <Message>, shortened. */
static void error_text(const cr_http_resp *resp, char *out, size_t n)
{
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    cr_xml doc = cr_xml_of(resp->body.data, resp->body.len);
    out[0] = 0;
    if (cr_xml_text(&doc, "Message", &msg) != 1) return;
    snprintf(out, n, "%.*s", (int)strcspn((const char *)msg.data, "\r\n"), (const char *)msg.data);
    make_printable(out);
}

static bool is_auth_failure(const cr_http_resp *resp)
{
    return resp->status == 403 || resp->status == 401;
}

/* A message with the service's error code and the first line of its text;
 * refused credentials get a hint and never the key or the token. */
static int status_error(azure_backend *ab, const az_prepared *p, const cr_http_resp *resp)
{
    char code[96], text[200];
    error_code(resp, code, sizeof code);
    error_text(resp, text, sizeof text);
    int err = resp->status == 404 ? -ENOENT : is_auth_failure(resp) ? -EACCES : resp->status == 416 ? -ERANGE : -EIO;
    if (is_auth_failure(resp))
        return cr_error(err, "%s %s: %ld %s: access denied: wrong credentials, or not allowed: storage account \"%s\" "
                             "refused the %s (check AZURE_ACCOUNT_NAME and %s)", p->req.method, p->shown.data, resp->status,
                        code[0] ? code : "Forbidden", ab->account, ab->key_len ? "account key" : "SAS token",
                        ab->key_len ? "AZURE_ACCOUNT_KEY" : "AZURE_ACCOUNT_SAS");
    return cr_error(err, "%s %s: %ld%s%s%s%s", p->req.method, p->shown.data, resp->status, code[0] ? " " : "", code,
                    text[0] ? ": " : "", text);
}

/* Perform a call; the caller looks at resp->status and may call status_error().
 * The HTTP layer retries with the same headers, but the service refuses an
 * x-ms-date older than 15 minutes: a 403 after long retries is tried once
 * more, freshly signed. */
static int az_send(azure_backend *ab, const az_call *c, az_prepared *p, cr_http_resp *resp)
{
    CR_TRY(prepare(ab, c, p));
    time_t start = time(NULL);
    CR_TRY(cr_http_request(ab->http, &p->req, resp));
    if (resp->status != 403 || time(NULL) - start < STALE_SIGNATURE_SECONDS) return 0;
    prepared_free(p);
    *p = (az_prepared){0};
    CR_TRY(prepare(ab, c, p));
    return cr_http_request(ab->http, &p->req, resp);
}

/* ---- objects ---------------------------------------------------------------- */

static int check_name(cr_filetype t, const char *name)
{
    if (t == CR_FILE_CONFIG) return 0;
    if (!name || !name[0] || name[0] == '.' || strpbrk(name, "/?#%\\ ") || (t == CR_FILE_PACK && strlen(name) < 2))
        return cr_error(-EINVAL, "invalid object name \"%s\"", name ? name : "");
    return 0;
}

/* restic's default layout: PREFIX/config, PREFIX/data/XX/ID, PREFIX/keys/ID, ... */
static int object_key(azure_backend *ab, cr_filetype t, const char *name, char **out)
{
    CR_TRY(check_name(t, name));
    int n = t == CR_FILE_CONFIG ? asprintf(out, "%sconfig", ab->prefix)
            : t == CR_FILE_PACK ? asprintf(out, "%sdata/%.2s/%s", ab->prefix, name, name)
                                : asprintf(out, "%s%s/%s", ab->prefix, cr_filetype_dir(t), name);
    if (n < 0) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static int azure_stat(cr_backend *b, cr_filetype t, const char *name, uint64_t *size)
{
    azure_backend *ab = as_azure(b);
    _cleanup_free_ char *key = NULL;
    CR_TRY(object_key(ab, t, name, &key));
    az_call c = {.method = "HEAD", .key = key};
    _cleanup_(prepared_free) az_prepared p = {0};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(az_send(ab, &c, &p, &resp));
    if (resp.status == 404) return -ENOENT; /* no such blob, or no such container */
    if (resp.status != 200) return status_error(ab, &p, &resp);
    if (resp.content_length < 0) return cr_error(-EIO, "HEAD %s: no Content-Length in the answer", p.shown.data);
    *size = (uint64_t)resp.content_length;
    return 0;
}

/* 206 carries the range; 200 the whole object. */
static int take_range(const az_prepared *p, const az_call *c, cr_http_resp *resp, cr_buf *out)
{
    size_t have = resp->body.len;
    if (resp->status == 200 && c->range && c->range_off > 0)
        return cr_error(-EIO, "GET %s: the server ignored the range and sent the whole object", p->shown.data);
    if (c->range_len && have != c->range_len)
        return cr_error(-EIO, "GET %s: short read: wanted %llu bytes at offset %llu, got %zu", p->shown.data,
                        (unsigned long long)c->range_len, (unsigned long long)c->range_off, have);
    if (resp->content_length >= 0 && (uint64_t)resp->content_length != have)
        return cr_error(-EIO, "GET %s: got %zu bytes of %lld announced", p->shown.data, have, (long long)resp->content_length);
    cr_buf tmp = *out;
    *out = resp->body;
    resp->body = tmp;
    cr_buf_reset(&resp->body);
    return 0;
}

static int azure_load(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out)
{
    azure_backend *ab = as_azure(b);
    _cleanup_free_ char *key = NULL;
    CR_TRY(object_key(ab, t, name, &key));
    if (len > SIZE_MAX / 2 || off > UINT64_MAX / 2) return cr_error(-EFBIG, "%s: range too large", key);
    az_call c = {.method = "GET", .key = key, .range = off > 0 || len > 0, .range_off = off, .range_len = len};
    _cleanup_(prepared_free) az_prepared p = {0};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(az_send(ab, &c, &p, &resp));
    if (resp.status == 416)
        return cr_error(-EIO, "GET %s: range from offset %llu is beyond the end of the object", p.shown.data,
                        (unsigned long long)off);
    if (resp.status != 200 && !(resp.status == 206 && c.range)) return status_error(ab, &p, &resp);
    return take_range(&p, &c, &resp, out);
}

static int expect_created(azure_backend *ab, const az_prepared *p, const cr_http_resp *resp)
{
    return resp->status == 201 ? 0 : status_error(ab, p, resp);
}

static int put_blob(azure_backend *ab, const char *key, const void *data, size_t n)
{
    char md5[25], tier[48];
    md5_b64(data, n, md5);
    az_call c = {.method = "PUT", .key = key, .content_type = "application/octet-stream", .content_md5 = md5,
                 .xms = {"x-ms-blob-type:BlockBlob"}, .body = data, .body_len = n};
    if (ab->tier) {
        snprintf(tier, sizeof tier, "x-ms-access-tier:%s", ab->tier);
        c.xms[1] = tier;
    }
    _cleanup_(prepared_free) az_prepared p = {0};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(az_send(ab, &c, &p, &resp));
    return expect_created(ab, &p, &resp);
}

/* Block IDs must all have the same length within a blob. */
static void block_id(size_t i, char out[32])
{
    char raw[32];
    snprintf(raw, sizeof raw, "crestic-blk-%06u", (unsigned)(i % 1000000)); /* i < MAX_BLOCKS */
    b64_encode(raw, 18, out);
}

static int put_block(azure_backend *ab, const char *key, size_t i, const uint8_t *data, size_t n)
{
    char id[32], md5[25];
    block_id(i, id);
    md5_b64(data, n, md5);
    az_call c = {.method = "PUT", .key = key, .query = {{"comp", "block"}, {"blockid", id}},
                 .content_type = "application/octet-stream", .content_md5 = md5, .body = data, .body_len = n};
    _cleanup_(prepared_free) az_prepared p = {0};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(az_send(ab, &c, &p, &resp));
    return expect_created(ab, &p, &resp);
}

static int put_block_list(azure_backend *ab, const char *key, size_t nblocks, const void *data, size_t n)
{
    _cleanup_buf_ cr_buf xml = CR_BUF_INIT;
    CR_TRY(cr_buf_puts(&xml, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>"));
    for (size_t i = 0; i < nblocks; i++) {
        char id[32];
        block_id(i, id);
        CR_TRY(cr_buf_printf(&xml, "<Latest>%s</Latest>", id));
    }
    CR_TRY(cr_buf_puts(&xml, "</BlockList>"));
    char md5[25], whole[25], blob_md5[64], tier[48];
    md5_b64(xml.data, xml.len, md5);
    md5_b64(data, n, whole);
    snprintf(blob_md5, sizeof blob_md5, "x-ms-blob-content-md5:%s", whole);
    az_call c = {.method = "PUT", .key = key, .query = {{"comp", "blocklist"}}, .content_type = "application/xml",
                 .content_md5 = md5, .xms = {blob_md5}, .body = xml.data, .body_len = xml.len};
    if (ab->tier) {
        snprintf(tier, sizeof tier, "x-ms-access-tier:%s", ab->tier);
        c.xms[1] = tier;
    }
    _cleanup_(prepared_free) az_prepared p = {0};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(az_send(ab, &c, &p, &resp));
    return expect_created(ab, &p, &resp);
}

/* Put Block for each piece, then Put Block List: the blob appears whole, at once. */
static int put_blocks(azure_backend *ab, const char *key, const uint8_t *data, size_t n)
{
    size_t nblocks = (n + ab->block_size - 1) / ab->block_size;
    if (nblocks > MAX_BLOCKS) return cr_error(-EFBIG, "%s: %zu bytes need more than %d blocks: raise azure.block-size", key, n, MAX_BLOCKS);
    for (size_t i = 0; i < nblocks; i++) {
        size_t off = i * ab->block_size, len = n - off < ab->block_size ? n - off : ab->block_size;
        CR_TRY(put_block(ab, key, i, data + off, len));
    }
    return put_block_list(ab, key, nblocks, data, n);
}

static int azure_save(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n)
{
    azure_backend *ab = as_azure(b);
    _cleanup_free_ char *key = NULL;
    CR_TRY(object_key(ab, t, name, &key));
    return n > ab->block_size ? put_blocks(ab, key, data, n) : put_blob(ab, key, data, n);
}

static int azure_remove(cr_backend *b, cr_filetype t, const char *name)
{
    azure_backend *ab = as_azure(b);
    _cleanup_free_ char *key = NULL;
    CR_TRY(object_key(ab, t, name, &key));
    az_call c = {.method = "DELETE", .key = key};
    _cleanup_(prepared_free) az_prepared p = {0};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(az_send(ab, &c, &p, &resp));
    if (resp.status == 202 || resp.status == 200 || resp.status == 204 || resp.status == 404) return 0;
    return status_error(ab, &p, &resp);
}

/* ---- list ------------------------------------------------------------------- */

/* One <Blob> of a listing: its name's last part and Content-Length. */
static int list_entry(const cr_xml *item, cr_list_cb cb, void *ud)
{
    _cleanup_buf_ cr_buf name = CR_BUF_INIT;
    uint64_t size;
    if (cr_xml_text(item, "Name", &name) != 1 || cr_xml_u64(item, "Content-Length", &size) != 1)
        return cr_error(CR_E_FORMAT, "malformed <Blob> entry in the listing");
    const char *base = strrchr((const char *)name.data, '/');
    base = base ? base + 1 : (const char *)name.data;
    if (!cr_is_hex_name(base, strlen(base))) return 0; /* not one of ours */
    return cb(ud, base, size);
}

int cr_azure_parse_listing(const void *body, size_t len, cr_list_cb cb, void *ud, cr_buf *next)
{
    cr_buf_reset(next);
    cr_xml doc = cr_xml_of(body, len), all, blobs, item;
    int r = cr_xml_next(&doc, "EnumerationResults", &all);
    if (r != 1) return r < 0 ? r : cr_error(CR_E_FORMAT, "the answer is not a blob listing");
    if ((r = cr_xml_next(&all, "Blobs", &blobs)) < 0) return r;
    while (r == 1 && (r = cr_xml_next(&blobs, "Blob", &item)) == 1) CR_TRY(list_entry(&item, cb, ud));
    if (r < 0) return r;
    /* NextMarker follows </Blobs>: looked for there, so a blob's content cannot fake one. */
    if ((r = cr_xml_text(&all, "NextMarker", next)) < 0) return r;
    if (r == 0) cr_buf_reset(next);
    CR_TRY(cr_buf_nul(next));
    if (next->len && memchr(next->data, 0, next->len)) return cr_error(CR_E_FORMAT, "NUL character in <NextMarker>");
    return 0;
}

/* One page: its entries, and the marker of the next page ("" at the end). */
static int list_page(azure_backend *ab, const char *prefix, const char *marker, cr_list_cb cb, void *ud, cr_buf *next)
{
    char maxresults[16];
    snprintf(maxresults, sizeof maxresults, "%u", ab->page_size);
    az_call c = {.method = "GET", .query = {{"restype", "container"}, {"comp", "list"}, {"prefix", prefix},
                                           {"maxresults", maxresults}, {marker[0] ? "marker" : NULL, marker}}};
    _cleanup_(prepared_free) az_prepared p = {0};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(az_send(ab, &c, &p, &resp));
    cr_buf_reset(next);
    CR_TRY(cr_buf_nul(next));
    if (resp.status == 404) return 0; /* no container: nothing stored yet */
    if (resp.status != 200) return status_error(ab, &p, &resp);
    CR_TRY_CTX(cr_azure_parse_listing(resp.body.data, resp.body.len, cb, ud, next), "GET %s", (const char *)p.shown.data);
    return 0;
}

static int azure_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud)
{
    azure_backend *ab = as_azure(b);
    if (t == CR_FILE_CONFIG) return 0;
    _cleanup_free_ char *prefix = NULL;
    if (asprintf(&prefix, "%s%s/", ab->prefix, cr_filetype_dir(t)) < 0) return cr_error(-ENOMEM, "out of memory");
    _cleanup_buf_ cr_buf marker = CR_BUF_INIT, next = CR_BUF_INIT;
    CR_TRY(cr_buf_nul(&marker));
    for (;;) {
        CR_TRY(list_page(ab, prefix, (const char *)marker.data, cb, ud, &next));
        if (!next.len) return 0;
        if (next.len == marker.len && !memcmp(next.data, marker.data, next.len))
            return cr_error(CR_E_FORMAT, "azure: listing %s: the server repeats the page marker", prefix);
        cr_buf tmp = marker;
        marker = next;
        next = tmp;
    }
}

/* ---- configuration ---------------------------------------------------------- */

/* path.Clean-like: no empty, "." or ".." parts; "" or "a/b/" (with the slash). */
static int clean_prefix(const char *s, char **out)
{
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    while (*s) {
        size_t n = strcspn(s, "/");
        if (n == 2 && !strncmp(s, "..", 2)) {
            while (b.len > 0 && b.data[b.len - 1] == '/') b.len--; /* drop the last part */
            while (b.len > 0 && b.data[b.len - 1] != '/') b.len--;
        } else if (n > 0 && !(n == 1 && s[0] == '.')) {
            CR_TRY(cr_buf_append(&b, s, n));
            CR_TRY(cr_buf_putc(&b, '/'));
        }
        s += n;
        while (*s == '/') s++;
    }
    CR_TRY(cr_buf_nul(&b));
    size_t len;
    *out = (char *)cr_buf_steal(&b, &len);
    return *out ? 0 : cr_error(-ENOMEM, "out of memory");
}

static bool valid_container(const char *s, size_t n)
{
    if (n < 3 || n > 63) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || (s[i] == '$' && i == 0)))
            return false;
    return true;
}

/* "CONTAINER:/PREFIX" (after "azure:"). */
static int parse_location(const char *loc, char **container, char **prefix)
{
    const char *colon = strchr(loc, ':');
    if (!colon) return cr_error(CR_E_USAGE, "azure: invalid format: container name or path not found (azure:CONTAINER:/PATH)");
    size_t n = (size_t)(colon - loc);
    if (!valid_container(loc, n))
        return cr_error(CR_E_USAGE, "azure: invalid container name \"%.*s\": 3 to 63 lower-case letters, digits and hyphens", (int)n, loc);
    *container = strndup(loc, n);
    if (!*container) return cr_error(-ENOMEM, "out of memory");
    return clean_prefix(colon + 1, prefix);
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Endpoint URL without a trailing '/': -o azure.endpoint, the emulator for
 * devstoreaccount1, or https://ACCOUNT.blob.SUFFIX. */
static int endpoint(const char *account, char **out)
{
    const char *opt = cr_backend_option("azure", "endpoint");
    int n;
    if (opt) {
        if (strncmp(opt, "http://", 7) && strncmp(opt, "https://", 8))
            return cr_error(CR_E_USAGE, "azure.endpoint must start with http:// or https://");
        if (strpbrk(opt, "?#@")) return cr_error(CR_E_USAGE, "azure.endpoint: no query, fragment or credentials allowed");
        size_t len = strlen(opt);
        while (len > 0 && opt[len - 1] == '/') len--;
        n = asprintf(out, "%.*s", (int)len, opt);
    } else if (!strcmp(account, EMULATOR_ACCOUNT)) {
        n = asprintf(out, "%s", EMULATOR_ENDPOINT);
    } else {
        const char *suffix = env_nonempty("AZURE_ENDPOINT_SUFFIX");
        n = asprintf(out, "https://%s.blob.%s", account, suffix ? suffix : "core.windows.net");
    }
    if (n < 0) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static int urls(azure_backend *ab, const char *container)
{
    _cleanup_free_ char *ep = NULL;
    CR_TRY(endpoint(ab->account, &ep));
    const char *host = strstr(ep, "://") + 3, *path = host + strcspn(host, "/");
    _cleanup_buf_ cr_buf enc = CR_BUF_INIT;
    CR_TRY(pct_encode(&enc, container, false));
    CR_TRY(cr_buf_nul(&enc));
    if (asprintf(&ab->container_url, "%s/%s", ep, (const char *)enc.data) < 0 ||
        asprintf(&ab->resource, "/%s%s/%s", ab->account, path, (const char *)enc.data) < 0)
        return cr_error(-ENOMEM, "out of memory");
    return 0;
}

/* AZURE_ACCOUNT_KEY first, then AZURE_ACCOUNT_SAS, as restic. */
static int credentials(azure_backend *ab)
{
    const char *key = env_nonempty("AZURE_ACCOUNT_KEY"), *sas = env_nonempty("AZURE_ACCOUNT_SAS");
    if (!key && !sas && !strcmp(ab->account, EMULATOR_ACCOUNT) && !cr_backend_option("azure", "endpoint")) key = EMULATOR_KEY;
    if (key) {
        if (b64_decode(key, ab->key, sizeof ab->key, &ab->key_len) < 0 || ab->key_len == 0)
            return cr_error(CR_E_USAGE, "azure: AZURE_ACCOUNT_KEY is not a base64 account key");
        return 0;
    }
    if (sas) {
        if (*sas == '?') sas++;
        if (!*sas || strpbrk(sas, "#\r\n ")) return cr_error(CR_E_USAGE, "azure: AZURE_ACCOUNT_SAS is not a SAS query string");
        ab->sas = strdup(sas);
        return ab->sas ? 0 : cr_error(-ENOMEM, "out of memory");
    }
    return cr_error(CR_E_USAGE, "azure: no credentials: set AZURE_ACCOUNT_KEY or AZURE_ACCOUNT_SAS "
                                "(Azure AD / CLI credentials are not supported by crestic)");
}

/* -o azure.access-tier: Hot, Cool or Cold (any case). */
static int access_tier(azure_backend *ab)
{
    static const char *const tiers[] = {"Hot", "Cool", "Cold"};
    const char *v = cr_backend_option("azure", "access-tier");
    if (!v || !*v) return 0;
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++)
        if (!strcasecmp(v, tiers[i])) {
            ab->tier = tiers[i];
            return 0;
        }
    if (!strcasecmp(v, "archive"))
        return cr_error(CR_E_USAGE, "azure.access-tier=archive is not supported: packs in the archive tier cannot be read back");
    return cr_error(CR_E_USAGE, "invalid value \"%s\" for option azure.access-tier: expected Hot, Cool or Cold", v);
}

static int settings(azure_backend *ab)
{
    unsigned block_mib;
    CR_TRY(cr_backend_option_uint("azure", "connections", DEFAULT_CONNECTIONS, 1, 128, &ab->base.connections));
    CR_TRY(cr_backend_option_uint("azure", "block-size", DEFAULT_BLOCK_MIB, 1, MAX_BLOCK_MIB, &block_mib));
    ab->block_size = (size_t)block_mib << 20;
    const char *page = getenv("CRESTIC_LIST_PAGE_SIZE");
    char *end;
    unsigned long v = page && *page ? strtoul(page, &end, 10) : 0;
    ab->page_size = page && *page && !*end && v >= 1 && v <= DEFAULT_PAGE_SIZE ? (unsigned)v : DEFAULT_PAGE_SIZE;
    return access_tier(ab);
}

/* ---- open / create / close -------------------------------------------------- */

static void azure_close(cr_backend *b)
{
    azure_backend *ab = as_azure(b);
    cr_http_free(ab->http);
    explicit_bzero(ab->key, sizeof ab->key);
    if (ab->sas) explicit_bzero(ab->sas, strlen(ab->sas));
    free(ab->sas);
    free(ab->account);
    free(ab->container_url);
    free(ab->resource);
    free(ab->prefix);
    free(b->location);
    free(ab);
}

static int setup(azure_backend *ab, const char *loc)
{
    _cleanup_free_ char *container = NULL;
    CR_TRY(parse_location(loc, &container, &ab->prefix));
    const char *account = env_nonempty("AZURE_ACCOUNT_NAME");
    if (!account) return cr_error(CR_E_USAGE, "unable to open Azure backend: account name ($AZURE_ACCOUNT_NAME) is empty");
    if (strpbrk(account, "/?#@:% ")) return cr_error(CR_E_USAGE, "azure: invalid AZURE_ACCOUNT_NAME");
    if (!(ab->account = strdup(account))) return cr_error(-ENOMEM, "out of memory");
    CR_TRY(urls(ab, container));
    CR_TRY(credentials(ab));
    CR_TRY(settings(ab));
    cr_http_config cfg = {0};
    return cr_http_new(&cfg, &ab->http);
}

static int azure_open(const char *loc, cr_backend **out)
{
    azure_backend *ab = calloc(1, sizeof *ab);
    if (!ab) return cr_error(-ENOMEM, "out of memory");
    int r = setup(ab, loc);
    if (r < 0) {
        azure_close(&ab->base);
        return r;
    }
    *out = &ab->base;
    return 0;
}

/* Create the container; one that exists already is fine, and so is a SAS
 * token that may not create containers (restic ignores that too). */
static int create_container(azure_backend *ab)
{
    az_call c = {.method = "PUT", .query = {{"restype", "container"}}, .content_type = "application/octet-stream"};
    _cleanup_(prepared_free) az_prepared p = {0};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(az_send(ab, &c, &p, &resp));
    if (resp.status == 201 || resp.status == 409) return 0;
    char code[96];
    error_code(&resp, code, sizeof code);
    if (resp.status == 403 && ab->sas && strcmp(code, "AuthenticationFailed")) return 0;
    return status_error(ab, &p, &resp);
}

static int azure_create(const char *loc, cr_backend **out)
{
    cr_backend *b;
    CR_TRY(azure_open(loc, &b));
    azure_backend *ab = as_azure(b);
    int r = create_container(ab);
    uint64_t size;
    if (r == 0) r = azure_stat(b, CR_FILE_CONFIG, NULL, &size);
    if (r == 0) r = cr_error(-EEXIST, "config file already exists");
    else if (r == -ENOENT) r = 0;
    if (r < 0) {
        azure_close(b);
        return r;
    }
    *out = b;
    return 0;
}

const cr_backend_ops cr_backend_azure = {
    .scheme = "azure",
    .open = azure_open,
    .create = azure_create,
    .close = azure_close,
    .stat = azure_stat,
    .load = azure_load,
    .save = azure_save,
    .remove = azure_remove,
    .list = azure_list,
    .options = (const char *const[]){"connections", "endpoint", "access-tier", "block-size", NULL},
};
