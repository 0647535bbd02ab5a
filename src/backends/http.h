/* Shared HTTP layer for the remote backends (REST now; S3, Azure, ... later),
 * on libcurl.
 *
 * One cr_http context per backend.  It keeps a small pool of curl easy
 * handles, each with its own connection cache, so keep-alive connections are
 * reused; any number of threads may call cr_http_request() at once (a thread
 * borrows a handle for the duration of one request).
 *
 * Retries follow restic's model (spec §23.1): transient failures (5xx, 429,
 * 408, dropped or refused connections, timeouts, stalled transfers) are
 * retried with exponential back-off and jitter until a total time cap
 * (default 900 s; env CRESTIC_HTTP_RETRY_MAX_SECONDS overrides it, for tests).
 * A transfer that moves less than 1 byte/s for the stall time (default 120 s;
 * env CRESTIC_HTTP_STALL_SECONDS) is aborted and retried.  Every other HTTP
 * status is handed back to the caller at once.
 *
 * Credentials never appear in messages: URLs given to this layer must not
 * contain userinfo (pass them as username/password instead).
 */
#ifndef CRESTIC_BACKENDS_HTTP_H
#define CRESTIC_BACKENDS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef struct cr_http cr_http;

/* TLS settings shared by all HTTP backends of the process; the CLI sets them
 * from --cacert, --tls-client-cert and --insecure-tls before opening a
 * backend.  Strings are copied; NULL means "not set". */
typedef struct {
    const char *cacert;      /* PEM file of trusted roots (default: system store) */
    const char *client_cert; /* PEM file holding client certificate and key */
    bool insecure;           /* skip certificate verification */
} cr_http_tls;

int cr_http_set_tls(const cr_http_tls *tls);

/* A flag polled during transfers and back-off waits (the CLI's SIGINT flag):
 * non-zero ends the request with CR_E_INTERRUPTED. */
void cr_http_set_cancel(const volatile int *flag);

/* Overall rate limits for all HTTP transfers of the process together, in
 * KiB/s (0: unlimited); the CLI sets them from --limit-upload and
 * --limit-download.  Only request and answer bodies count. */
void cr_http_set_limits(uint64_t upload_kib, uint64_t download_kib);
/* The same limits for a backend that moves bytes without libcurl (sftp):
 * accounts n bytes of an upload (or download) and waits until they are
 * allowed.  false when cancelled meanwhile. */
bool cr_http_limit_wait(bool upload, size_t n);

/* One connection for every request of a context: libcurl connects once to
 * the abstract unix socket `abstract_socket` (a name without the leading NUL,
 * e.g. one whose accepted end became the stdin/stdout of `rclone serve
 * restic --stdio`), and all requests go over it as HTTP/2 with prior
 * knowledge, multiplexed by a thread of the context.  It is never reopened:
 * once it is closed, requests fail at once (no retries) with the message set
 * by closed(ud), which returns the error code (e.g. naming the exit status
 * of the process behind it). */
typedef struct {
    const char *abstract_socket;
    int (*closed)(void *ud);
    void *ud;
} cr_http_stream;

typedef struct {
    const char *username, *password; /* HTTP Basic when username is set */
    const char *user_agent;          /* default "crestic/<version>" */
    const cr_http_stream *stream;    /* NULL: libcurl connects by the URL */
} cr_http_config;

int cr_http_new(const cr_http_config *cfg, cr_http **out);
void cr_http_free(cr_http *h);

typedef struct {
    const char *method;         /* GET, HEAD, POST, PUT, DELETE */
    const char *url;            /* without credentials; used in messages */
    const char *display_url;    /* shown in messages instead of url when set (url carries a token) */
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;           /* request body (POST/PUT), from memory */
    size_t body_len;
    bool range;                 /* send Range: bytes=range_off-(range_off+range_len-1) */
    uint64_t range_off, range_len; /* range_len 0: to the end */
    bool no_retry;              /* one attempt: transient statuses (5xx, 429, 408) are handed back
                                 * and transport failures fail at once (the caller recovers itself) */
    unsigned timeout_seconds;   /* time limit of the request, retries included (0: the retry cap) */
} cr_http_req;

typedef struct {
    long status;
    int64_t content_length; /* -1 when the server sent none */
    char content_type[128];
    cr_buf body;            /* GET/POST answer body (also for error statuses) */
    cr_buf headers;         /* the final answer's header lines, raw (see cr_http_resp_header) */
} cr_http_resp;

/* Perform a request with retries.  0 when the server answered with a status
 * that is not retried (any 1xx-4xx except 408/429, or 5xx once the retry
 * time is used up is an error instead); the caller interprets resp->status.
 * Negative with a message naming the URL when no answer came (connection,
 * TLS, timeout) or when retries ran out. */
int cr_http_request(cr_http *h, const cr_http_req *req, cr_http_resp *resp);
void cr_http_resp_free(cr_http_resp *resp);

/* The bytes a ranged GET asked for, into out: a 206 carries the range, a 200
 * the whole object (a server may ignore Range), from which the range is cut.
 * A short answer, or a 206 of the wrong length, is -EIO naming req->url.
 * When the answer is exactly the range, its memory is handed over. */
int cr_http_take_range(const cr_http_req *req, cr_http_resp *resp, cr_buf *out);
/* The range_len bytes (0: all the rest) at `skip` in an answer's body, into
 * out (range_off only for messages): for backends that locate the range in
 * the body themselves.  -EIO naming url when the body is too short. */
int cr_http_take_part(const char *url, cr_http_resp *resp, uint64_t skip, uint64_t range_off, uint64_t range_len,
                      cr_buf *out);
/* The value of the answer's header `name` (case-insensitive; the last one
 * wins), without surrounding blanks, into out[n]; false when absent or
 * longer than n-1 bytes. */
bool cr_http_resp_header(const cr_http_resp *resp, const char *name, char *out, size_t n);

/* A message "<METHOD> <url>: <status> <reason>[: <server text>]" and a code
 * for an unexpected status: -ENOENT for 404, -EACCES for 401/403, -EIO for
 * anything else. */
int cr_http_status_error(const cr_http_req *req, const cr_http_resp *resp);

/* "scheme://user:***@host/..." for display: the password in a URL's userinfo
 * replaced by "***" (also inside "rest:..." style locations). */
int cr_http_redact_url(const char *url, cr_buf *out);

#endif
