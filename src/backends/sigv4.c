/* AWS Signature Version 4, following AWS's published description:
 * canonical request -> string to sign -> HMAC chain of the date, region,
 * service and "aws4_request" -> signature. */
#include "backends/sigv4.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

void cr_sigv4_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data ? data : (const void *)"", n, md);
    hex(md, sizeof md, out);
}

void cr_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int cr_sigv4_uri_encode(cr_buf *out, const char *s, size_t n, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            CR_TRY(cr_buf_putc(out, (char)c));
        } else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
            CR_TRY(cr_buf_append(out, esc, 3));
        }
    }
    return cr_buf_nul(out);
}

/* ---- canonical request ------------------------------------------------------ */

typedef struct {
    const char *p;
    size_t n;
} span;

static int span_cmp(span a, span b)
{
    size_t m = a.n < b.n ? a.n : b.n;
    int c = memcmp(a.p, b.p, m);
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

typedef struct {
    span key, value;
} query_pair;

static int pair_cmp(const void *x, const void *y)
{
    const query_pair *a = x, *b = y;
    int c = span_cmp(a->key, b->key);
    return c ? c : span_cmp(a->value, b->value);
}

/* Parameters sorted by key (then value); a parameter without '=' gets "=". */
static int canonical_query(const char *q, cr_buf *out)
{
    if (!q || !*q) return 0;
    size_t n = 1;
    for (const char *p = q; *p; p++) n += *p == '&';
    _cleanup_free_ query_pair *pairs = calloc(n, sizeof *pairs);
    if (!pairs) return cr_error(-ENOMEM, "out of memory");
    size_t k = 0;
    for (const char *p = q; k < n; k++) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        pairs[k].key = (span){p, eq ? (size_t)(eq - p) : len};
        pairs[k].value = eq ? (span){eq + 1, len - (size_t)(eq - p) - 1} : (span){"", 0};
        p += len + (p[len] == '&');
    }
    qsort(pairs, n, sizeof *pairs, pair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_putc(out, '&'));
        CR_TRY(cr_buf_append(out, pairs[i].key.p, pairs[i].key.n));
        CR_TRY(cr_buf_putc(out, '='));
        CR_TRY(cr_buf_append(out, pairs[i].value.p, pairs[i].value.n));
    }
    return 0;
}

static int header_cmp(const void *x, const void *y)
{
    const cr_sigv4_header *a = x, *b = y;
    return strcasecmp(a->name, b->name);
}

static int put_lower(cr_buf *out, const char *s)
{
    for (; *s; s++) CR_TRY(cr_buf_putc(out, (char)tolower((unsigned char)*s)));
    return 0;
}

/* Value with leading/trailing blanks removed and inner runs of blanks as one space. */
static int put_trimmed(cr_buf *out, const char *v)
{
    while (*v == ' ' || *v == '\t') v++;
    int pending_space = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            pending_space = 1;
            continue;
        }
        if (pending_space) CR_TRY(cr_buf_putc(out, ' '));
        pending_space = 0;
        CR_TRY(cr_buf_putc(out, *v));
    }
    return 0;
}

static int sorted_headers(const cr_sigv4_request *req, cr_sigv4_header **out)
{
    *out = calloc(req->n_headers ? req->n_headers : 1, sizeof **out);
    if (!*out) return cr_error(-ENOMEM, "out of memory");
    memcpy(*out, req->headers, req->n_headers * sizeof **out);
    qsort(*out, req->n_headers, sizeof **out, header_cmp);
    return 0;
}

static int signed_header_list(const cr_sigv4_header *h, size_t n, cr_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_putc(out, ';'));
        CR_TRY(put_lower(out, h[i].name));
    }
    return cr_buf_nul(out);
}

int cr_sigv4_canonical_request(const cr_sigv4_request *req, cr_buf *out)
{
    _cleanup_free_ cr_sigv4_header *h = NULL;
    CR_TRY(sorted_headers(req, &h));
    CR_TRY(cr_buf_printf(out, "%s\n%s\n", req->method, req->path));
    CR_TRY(canonical_query(req->query, out));
    CR_TRY(cr_buf_putc(out, '\n'));
    for (size_t i = 0; i < req->n_headers; i++) {
        CR_TRY(put_lower(out, h[i].name));
        CR_TRY(cr_buf_putc(out, ':'));
        CR_TRY(put_trimmed(out, h[i].value));
        CR_TRY(cr_buf_putc(out, '\n'));
    }
    CR_TRY(cr_buf_putc(out, '\n'));
    CR_TRY(signed_header_list(h, req->n_headers, out));
    CR_TRY(cr_buf_printf(out, "\n%s", req->payload_sha256));
    return cr_buf_nul(out);
}

/* ---- signature ------------------------------------------------------------- */

static int hmac(const void *key, size_t keylen, const char *msg, size_t msglen, unsigned char out[32])
{
    unsigned int len = 32;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, msglen, out, &len))
        return cr_error(-EIO, "HMAC-SHA256 failed");
    return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
static int signing_key(const cr_sigv4_key *key, const char *date8, unsigned char out[32])
{
    cr_buf k0 = CR_BUF_INIT;
    int r = cr_buf_printf(&k0, "AWS4%s", key->secret_key);
    unsigned char a[32], b[32];
    if (r == 0) r = hmac(k0.data, k0.len, date8, strlen(date8), a);
    if (r == 0) r = hmac(a, 32, key->region, strlen(key->region), b);
    if (r == 0) r = hmac(b, 32, key->service, strlen(key->service), a);
    if (r == 0) r = hmac(a, 32, "aws4_request", 12, out);
    if (k0.data) explicit_bzero(k0.data, k0.len);
    cr_buf_free(&k0);
    explicit_bzero(a, sizeof a);
    explicit_bzero(b, sizeof b);
    return r;
}

int cr_sigv4_authorization(const cr_sigv4_key *key, const cr_sigv4_request *req, cr_buf *out, char signature_out[65])
{
    if (!req->amz_date || strlen(req->amz_date) != 16) return cr_error(-EINVAL, "sigv4: malformed x-amz-date");
    char date8[9];
    memcpy(date8, req->amz_date, 8);
    date8[8] = 0;
    _cleanup_buf_ cr_buf creq = CR_BUF_INIT, sts = CR_BUF_INIT, scope = CR_BUF_INIT, signed_list = CR_BUF_INIT;
    CR_TRY(cr_sigv4_canonical_request(req, &creq));
    char creq_hash[65];
    cr_sigv4_sha256_hex(creq.data, creq.len, creq_hash);
    CR_TRY(cr_buf_printf(&scope, "%s/%s/%s/aws4_request", date8, key->region, key->service));
    CR_TRY(cr_buf_printf(&sts, ALGORITHM "\n%s\n%s\n%s", req->amz_date, (const char *)scope.data, creq_hash));
    unsigned char ksig[32], sig[32];
    CR_TRY(signing_key(key, date8, ksig));
    int r = hmac(ksig, 32, (const char *)sts.data, sts.len, sig);
    explicit_bzero(ksig, sizeof ksig);
    CR_TRY(r);
    char sig_hex[65];
    hex(sig, 32, sig_hex);
    if (signature_out) memcpy(signature_out, sig_hex, 65);
    _cleanup_free_ cr_sigv4_header *h = NULL;
    CR_TRY(sorted_headers(req, &h));
    CR_TRY(signed_header_list(h, req->n_headers, &signed_list));
    return cr_buf_printf(out, ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s", key->access_key,
                         (const char *)scope.data, (const char *)signed_list.data, sig_hex);
}
