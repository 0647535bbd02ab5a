/* HTTP requests on libcurl with a handle pool and restic-style retries. */
#include "backends/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backends/http_mux.h"
#include "util/cleanup.h"
#include "util/error.h"

#define POOL_MAX 16
#define DEFAULT_USER_AGENT "crestic/" CRESTIC_VERSION
#define DEFAULT_RETRY_MAX_SECONDS 900.0
#define DEFAULT_STALL_SECONDS 120L
#define CONNECT_TIMEOUT_SECONDS 30L
/* restic's back-off: first wait 0.5 s, x1.5 each time, +-50% jitter, at most 60 s. */
#define BACKOFF_FIRST 0.5
#define BACKOFF_FACTOR 1.5
#define BACKOFF_JITTER 0.5
#define BACKOFF_MAX 60.0

struct cr_http {
    char *username, *password, *user_agent;
    char *cacert, *client_cert;
    bool insecure;
    double retry_max_seconds;
    long stall_seconds;
    pthread_mutex_t lock; /* guards pool */
    CURL *pool[POOL_MAX];
    int npool;
    cr_http_mux *mux; /* every request on one connection (cr_http_config.stream), or NULL */
};

/* ---- process-wide state ----------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_init_result;
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static char *tls_cacert, *tls_client_cert;
static bool tls_insecure;
static const volatile int *cancel_flag;

static void global_init(void)
{
    global_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int replace_string(char **slot, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = strdup(value))) return cr_error(-ENOMEM, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

int cr_http_set_tls(const cr_http_tls *tls)
{
    pthread_mutex_lock(&tls_lock);
    int r = replace_string(&tls_cacert, tls->cacert);
    if (r == 0) r = replace_string(&tls_client_cert, tls->client_cert);
    tls_insecure = tls->insecure;
    pthread_mutex_unlock(&tls_lock);
    return r;
}

void cr_http_set_cancel(const volatile int *flag)
{
    cancel_flag = flag;
}

static bool cancelled(void)
{
    return cancel_flag && *cancel_flag;
}

/* ---- rate limits (--limit-upload, --limit-download) ------------------------ */

/* A bucket for all transfers in one direction: each body chunk moves the
 * time at which the bucket is empty again; a transfer whose chunk lies in the
 * future waits.  A quarter second's worth may go at once (burst). */
#define LIMIT_BURST_SECONDS 0.25

typedef struct {
    double rate; /* bytes/s, 0: unlimited */
    double empty_at;
} rate_bucket;

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static rate_bucket upload_bucket, download_bucket;

static double now_seconds(void);
static bool backoff_sleep(double seconds);

void cr_http_set_limits(uint64_t upload_kib, uint64_t download_kib)
{
    pthread_mutex_lock(&limit_lock);
    upload_bucket = (rate_bucket){.rate = (double)upload_kib * 1024.0};
    download_bucket = (rate_bucket){.rate = (double)download_kib * 1024.0};
    pthread_mutex_unlock(&limit_lock);
}

static bool limited(const rate_bucket *b)
{
    pthread_mutex_lock(&limit_lock);
    bool on = b->rate > 0;
    pthread_mutex_unlock(&limit_lock);
    return on;
}

/* The most a chunk may carry, so that one chunk never exceeds the burst. */
static size_t limit_chunk(rate_bucket *b, size_t want)
{
    pthread_mutex_lock(&limit_lock);
    double burst = b->rate * LIMIT_BURST_SECONDS;
    pthread_mutex_unlock(&limit_lock);
    size_t most = burst < 1024 ? 1024 : (size_t)burst;
    return want < most ? want : most;
}

/* Account n bytes and wait until they are allowed.  false if cancelled. */
static bool limit_take(rate_bucket *b, size_t n)
{
    pthread_mutex_lock(&limit_lock);
    double now = now_seconds(), wait = 0;
    if (b->rate > 0) {
        if (b->empty_at < now - LIMIT_BURST_SECONDS) b->empty_at = now - LIMIT_BURST_SECONDS;
        b->empty_at += (double)n / b->rate;
        wait = b->empty_at - LIMIT_BURST_SECONDS - now;
    }
    pthread_mutex_unlock(&limit_lock);
    return wait <= 0 || backoff_sleep(wait);
}

bool cr_http_limit_wait(bool upload, size_t n)
{
    rate_bucket *b = upload ? &upload_bucket : &download_bucket;
    return !limited(b) || limit_take(b, n);
}

/* A request body read by curl in chunks (only when uploads are limited;
 * otherwise curl sends straight from the caller's memory). */
typedef struct {
    const char *data;
    size_t len, pos;
} body_reader;

static size_t read_body_limited(char *p, size_t size, size_t n, void *ud)
{
    body_reader *br = ud;
    size_t want = limit_chunk(&upload_bucket, size * n);
    if (want > br->len - br->pos) want = br->len - br->pos;
    if (want && !limit_take(&upload_bucket, want)) return CURL_READFUNC_ABORT;
    memcpy(p, br->data + br->pos, want);
    br->pos += want;
    return want;
}

static int seek_body(void *ud, curl_off_t off, int origin)
{
    body_reader *br = ud;
    if (origin != SEEK_SET || off < 0 || (size_t)off > br->len) return CURL_SEEKFUNC_FAIL;
    br->pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* ---- context ---------------------------------------------------------------- */

static double env_seconds(const char *name, double dflt)
{
    const char *s = getenv(name);
    if (!s || !*s) return dflt;
    char *end;
    double v = strtod(s, &end);
    return *end || v < 0 ? dflt : v;
}

static int copy_config(cr_http *h, const cr_http_config *cfg)
{
    int r = replace_string(&h->username, cfg->username);
    if (r == 0) r = replace_string(&h->password, cfg->password);
    if (r == 0) r = replace_string(&h->user_agent, cfg->user_agent ? cfg->user_agent : DEFAULT_USER_AGENT);
    pthread_mutex_lock(&tls_lock);
    if (r == 0) r = replace_string(&h->cacert, tls_cacert);
    if (r == 0) r = replace_string(&h->client_cert, tls_client_cert);
    h->insecure = tls_insecure;
    pthread_mutex_unlock(&tls_lock);
    return r;
}

int cr_http_new(const cr_http_config *cfg, cr_http **out)
{
    pthread_once(&global_once, global_init);
    if (global_init_result != CURLE_OK)
        return cr_error(-EIO, "libcurl initialisation failed: %s", curl_easy_strerror(global_init_result));
    cr_http *h = calloc(1, sizeof *h);
    if (!h) return cr_error(-ENOMEM, "out of memory");
    pthread_mutex_init(&h->lock, NULL);
    h->retry_max_seconds = env_seconds("CRESTIC_HTTP_RETRY_MAX_SECONDS", DEFAULT_RETRY_MAX_SECONDS);
    h->stall_seconds = (long)env_seconds("CRESTIC_HTTP_STALL_SECONDS", DEFAULT_STALL_SECONDS);
    if (h->stall_seconds < 1) h->stall_seconds = 1;
    int r = copy_config(h, cfg);
    if (r == 0 && cfg->stream) r = cr_http_mux_new(cfg->stream, &h->mux);
    if (r < 0) {
        cr_http_free(h);
        return r;
    }
    *out = h;
    return 0;
}

static void wipe_free(char *s)
{
    if (s) explicit_bzero(s, strlen(s));
    free(s);
}

void cr_http_free(cr_http *h)
{
    if (!h) return;
    cr_http_mux_free(h->mux);
    for (int i = 0; i < h->npool; i++) curl_easy_cleanup(h->pool[i]);
    pthread_mutex_destroy(&h->lock);
    wipe_free(h->username);
    wipe_free(h->password);
    free(h->user_agent);
    free(h->cacert);
    free(h->client_cert);
    free(h);
}

/* An idle handle keeps its open connections, so borrowing one reuses them. */
static CURL *borrow_handle(cr_http *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->lock);
    if (h->npool > 0) c = h->pool[--h->npool];
    pthread_mutex_unlock(&h->lock);
    return c ? c : curl_easy_init();
}

static void return_handle(cr_http *h, CURL *c)
{
    pthread_mutex_lock(&h->lock);
    if (h->npool < POOL_MAX) {
        h->pool[h->npool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    if (c) curl_easy_cleanup(c);
}

/* ---- one attempt ------------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    cr_buf *b = ud;
    if (cr_buf_append(b, p, size * n) < 0) return 0; /* aborts with CURLE_WRITE_ERROR */
    return size * n;
}

/* Header lines of every answer arrive here (interim 1xx ones too): a status
 * line starts the set afresh, so the final answer's lines remain. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    cr_buf *b = ud;
    size_t len = size * n;
    if (len >= 5 && !memcmp(p, "HTTP/", 5)) cr_buf_reset(b);
    if (cr_buf_append(b, p, len) < 0) return 0;
    return len;
}

static size_t on_body_limited(char *p, size_t size, size_t n, void *ud)
{
    if (!limit_take(&download_bucket, size * n)) return 0; /* cancelled */
    return on_body(p, size, n, ud);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    return cancelled() ? 1 : 0;
}

static void set_method(CURL *c, const cr_http_req *req, body_reader *br)
{
    const char *m = req->method;
    if (!strcmp(m, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(m, "GET")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (!req->body && strcmp(m, "POST") && strcmp(m, "PUT")) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m); /* DELETE: no body, no Content-Type */
    } else {
        /* POST, PUT: the body (possibly empty) is sent from memory. */
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        if (limited(&upload_bucket)) {
            *br = (body_reader){.data = req->body, .len = req->body ? req->body_len : 0};
            curl_easy_setopt(c, CURLOPT_READFUNCTION, read_body_limited);
            curl_easy_setopt(c, CURLOPT_READDATA, br);
            curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_body);
            curl_easy_setopt(c, CURLOPT_SEEKDATA, br);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        }
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(m, "POST")) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
    }
}

static void set_tls(cr_http *h, CURL *c)
{
    if (h->cacert) curl_easy_setopt(c, CURLOPT_CAINFO, h->cacert);
    if (h->client_cert) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, h->client_cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, h->client_cert);
    }
    if (h->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

static int build_headers(const cr_http_req *req, struct curl_slist **out)
{
    struct curl_slist *list = NULL, *next;
    /* No "Expect: 100-continue" round trip before bodies. */
    if (!(next = curl_slist_append(list, "Expect:"))) goto oom;
    list = next;
    for (const char *const *hd = req->headers; hd && *hd; hd++) {
        if (!(next = curl_slist_append(list, *hd))) goto oom;
        list = next;
    }
    *out = list;
    return 0;
oom:
    curl_slist_free_all(list);
    return cr_error(-ENOMEM, "out of memory");
}

/* Per attempt: the body position and the time left for the request. */
typedef struct {
    body_reader body;
    long timeout_ms; /* 0: none */
} attempt_state;

static void setup(cr_http *h, CURL *c, const cr_http_req *req, struct curl_slist *headers, char *range,
                  cr_http_resp *resp, char *errbuf, attempt_state *st)
{
    curl_easy_reset(c); /* keeps the connection cache */
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_SECONDS);
    /* A stuck transfer is aborted (CURLE_OPERATION_TIMEDOUT) and then retried. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->stall_seconds);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, limited(&download_bucket) ? on_body_limited : on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp->headers);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (h->username) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, h->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, h->password ? h->password : "");
    }
    set_tls(h, c);
    set_method(c, req, &st->body);
    if (range) curl_easy_setopt(c, CURLOPT_RANGE, range);
    if (st->timeout_ms > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, st->timeout_ms);
    if (h->mux) cr_http_mux_setup(h->mux, c);
}

static void read_answer(CURL *c, cr_http_resp *resp)
{
    curl_off_t cl = -1;
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK) cl = -1;
    resp->content_length = cl;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(resp->content_type, sizeof resp->content_type, "%s", ct ? ct : "");
}

static CURLcode attempt(cr_http *h, const cr_http_req *req, struct curl_slist *headers, char *range,
                        cr_http_resp *resp, char *errbuf, long timeout_ms)
{
    CURL *c = h->mux ? curl_easy_init() : borrow_handle(h);
    if (!c) return CURLE_OUT_OF_MEMORY;
    cr_buf_reset(&resp->body);
    cr_buf_reset(&resp->headers);
    resp->status = 0;
    resp->content_length = -1;
    resp->content_type[0] = 0;
    errbuf[0] = 0;
    attempt_state st = {.timeout_ms = timeout_ms};
    setup(h, c, req, headers, range, resp, errbuf, &st);
    CURLcode rc = h->mux ? cr_http_mux_perform(h->mux, c) : curl_easy_perform(c);
    if (rc == CURLE_OK) read_answer(c, resp);
    if (h->mux) curl_easy_cleanup(c);
    else return_handle(h, c);
    return rc;
}

/* ---- retries ---------------------------------------------------------------- */

/* Errors that another try cannot fix: the request or the TLS setup is wrong. */
static bool transport_error_is_permanent(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_WRITE_ERROR:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        return true;
    default:
        return false;
    }
}

/* A TLS alert from the server (e.g. "alert bad certificate" when it refuses
 * our client certificate) arrives as a receive error, but is a refusal that
 * another try cannot change. */
static bool tls_alert(CURLcode rc, const char *errbuf)
{
    return (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_SSL_CONNECT_ERROR) &&
           strstr(errbuf, "SSL") && strstr(errbuf, " alert ");
}

static bool status_is_transient(long status)
{
    return status >= 500 || status == 429 || status == 408;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double jittered(double interval)
{
    unsigned seed = (unsigned)(now_seconds() * 1e6) ^ (unsigned)(uintptr_t)&interval;
    double unit = (double)rand_r(&seed) / RAND_MAX; /* [0, 1] */
    return interval * (1.0 - BACKOFF_JITTER + 2.0 * BACKOFF_JITTER * unit);
}

/* Sleep in small steps so an interrupt is noticed. false if cancelled. */
static bool backoff_sleep(double seconds)
{
    double end = now_seconds() + seconds;
    for (;;) {
        if (cancelled()) return false;
        double left = end - now_seconds();
        if (left <= 0) return true;
        if (left > 0.1) left = 0.1;
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static const char *shown_url(const cr_http_req *req)
{
    return req->display_url ? req->display_url : req->url;
}

static int transport_error(const cr_http_req *req, CURLcode rc, const char *errbuf)
{
    if (rc == CURLE_ABORTED_BY_CALLBACK && cancelled()) return cr_error(CR_E_INTERRUPTED, "interrupted");
    if (rc == CURLE_OUT_OF_MEMORY || rc == CURLE_WRITE_ERROR) return cr_error(-ENOMEM, "%s %s: out of memory", req->method, shown_url(req));
    return cr_error(-EIO, "%s %s: %s", req->method, shown_url(req), errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

static void describe_failure(char *out, size_t n, CURLcode rc, const char *errbuf, const cr_http_resp *resp)
{
    if (rc != CURLE_OK) snprintf(out, n, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else snprintf(out, n, "status %ld", resp->status);
}

static char *range_string(const cr_http_req *req, char *out, size_t n)
{
    if (!req->range) return NULL;
    if (req->range_len) snprintf(out, n, "%llu-%llu", (unsigned long long)req->range_off, (unsigned long long)(req->range_off + req->range_len - 1));
    else snprintf(out, n, "%llu-", (unsigned long long)req->range_off);
    return out;
}

int cr_http_request(cr_http *h, const cr_http_req *req, cr_http_resp *resp)
{
    struct curl_slist *headers = NULL;
    CR_TRY(build_headers(req, &headers));
    char range_buf[64], errbuf[CURL_ERROR_SIZE];
    char *range = range_string(req, range_buf, sizeof range_buf);
    double start = now_seconds(), interval = BACKOFF_FIRST;
    double cap = req->timeout_seconds && req->timeout_seconds < h->retry_max_seconds ? req->timeout_seconds : h->retry_max_seconds;
    int r;
    for (;;) {
        double left_ms = (cap - (now_seconds() - start)) * 1000;
        long timeout_ms = !req->timeout_seconds ? 0 : left_ms < 1 ? 1 : (long)left_ms;
        CURLcode rc = attempt(h, req, headers, range, resp, errbuf, timeout_ms);
        if (rc == CURLE_OK && (!status_is_transient(resp->status) || req->no_retry)) { r = 0; break; }
        if (rc != CURLE_OK && h->mux && cr_http_mux_closed(h->mux)) {
            r = cr_error_ctx(cr_http_mux_closed_error(h->mux), "%s %s", req->method, shown_url(req));
            break;
        }
        if (rc != CURLE_OK && (transport_error_is_permanent(rc) || tls_alert(rc, errbuf) || req->no_retry)) {
            r = transport_error(req, rc, errbuf);
            if (tls_alert(rc, errbuf) && strstr(errbuf, "certificate"))
                r = cr_error_ctx(r, "the server refused the TLS connection (a client certificate may be required or not accepted: --tls-client-cert)");
            break;
        }
        double wait = jittered(interval);
        if (now_seconds() - start + wait > cap) {
            r = rc != CURLE_OK ? transport_error(req, rc, errbuf) : cr_http_status_error(req, resp);
            r = cr_error_ctx(r, "giving up after %.0f s of retries", now_seconds() - start);
            break;
        }
        char what[CURL_ERROR_SIZE + 32];
        describe_failure(what, sizeof what, rc, errbuf, resp);
        fprintf(stderr, "%s %s: %s, retrying in %.1f s\n", req->method, shown_url(req), what, wait);
        if (!backoff_sleep(wait)) { r = cr_error(CR_E_INTERRUPTED, "interrupted"); break; }
        interval = interval * BACKOFF_FACTOR > BACKOFF_MAX ? BACKOFF_MAX : interval * BACKOFF_FACTOR;
    }
    curl_slist_free_all(headers);
    return r;
}

void cr_http_resp_free(cr_http_resp *resp)
{
    cr_buf_free(&resp->body);
    cr_buf_free(&resp->headers);
}

bool cr_http_resp_header(const cr_http_resp *resp, const char *name, char *out, size_t n)
{
    const char *p = (const char *)resp->headers.data, *end = p + resp->headers.len;
    size_t nl = strlen(name);
    bool found = false;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *v = p + nl + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            found = (size_t)(ve - v) < n;
            if (found) {
                memcpy(out, v, (size_t)(ve - v));
                out[ve - v] = 0;
            }
        }
        p = eol ? eol + 1 : end;
    }
    return found;
}

/* ---- messages --------------------------------------------------------------- */

static const char *reason_phrase(long status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return "";
    }
}

/* The first line of a short textual error body, for context. */
static void server_text(const cr_buf *body, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    while (len < body->len && len + 1 < n && body->data[len] != '\n' && body->data[len] != '\r') {
        unsigned char ch = body->data[len];
        if (ch < 0x20 || ch == 0x7f) return; /* binary: leave it out */
        out[len++] = (char)ch;
    }
    out[len] = 0;
}

int cr_http_status_error(const cr_http_req *req, const cr_http_resp *resp)
{
    int code = resp->status == 404 ? -ENOENT : resp->status == 401 || resp->status == 403 ? -EACCES : -EIO;
    char text[160];
    server_text(&resp->body, text, sizeof text);
    const char *reason = reason_phrase(resp->status);
    return cr_error(code, "%s %s: %ld%s%s%s%s", req->method, shown_url(req), resp->status, *reason ? " " : "", reason,
                    text[0] ? ": " : "", text);
}

int cr_http_redact_url(const char *url, cr_buf *out)
{
    cr_buf_reset(out);
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : NULL;
    const char *end = host ? host + strcspn(host, "/") : NULL;
    const char *at = NULL;
    for (const char *p = host; p && p < end; p++)
        if (*p == '@') at = p;
    const char *colon = at ? memchr(host, ':', (size_t)(at - host)) : NULL;
    if (!colon) {
        CR_TRY(cr_buf_puts(out, url));
    } else {
        CR_TRY(cr_buf_append(out, url, (size_t)(colon + 1 - url)));
        CR_TRY(cr_buf_puts(out, "***"));
        CR_TRY(cr_buf_puts(out, at));
    }
    return cr_buf_nul(out);
}

int cr_http_take_part(const char *url, cr_http_resp *resp, uint64_t skip, uint64_t range_off, uint64_t range_len,
                      cr_buf *out)
{
    if (skip > resp->body.len)
        return cr_error(-EIO, "GET %s: offset %llu beyond the end of the object (%zu bytes)", url,
                        (unsigned long long)range_off, resp->body.len);
    size_t avail = resp->body.len - (size_t)skip;
    size_t want = range_len ? (size_t)range_len : avail;
    if (avail < want)
        return cr_error(-EIO, "GET %s: short read: wanted %zu bytes at offset %llu, got %zu", url, want,
                        (unsigned long long)range_off, avail);
    if (skip == 0 && want == resp->body.len) { /* the common case: hand the memory over */
        cr_buf tmp = *out;
        *out = resp->body;
        resp->body = tmp;
        return 0;
    }
    cr_buf_reset(out);
    return cr_buf_append(out, resp->body.data + skip, want);
}

int cr_http_take_range(const cr_http_req *req, cr_http_resp *resp, cr_buf *out)
{
    /* a 200 is the whole object, a 206 must be the range exactly (a shorter
     * one is a short read, reported by cr_http_take_part) */
    uint64_t skip = resp->status == 200 && req->range ? req->range_off : 0;
    if (resp->status == 206 && req->range_len && resp->body.len > req->range_len)
        return cr_error(-EIO, "GET %s: server sent %zu bytes for a %zu byte range", req->url, resp->body.len,
                        (size_t)req->range_len);
    return cr_http_take_part(req->url, resp, skip, req->range_off, req->range_len, out);
}
