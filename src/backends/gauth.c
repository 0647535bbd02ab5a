/* Google OAuth 2.0 access tokens: static, or from a service-account key via a
 * signed JWT (RFC 7523).  See gauth.h. */
#include "backends/gauth.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/http.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

#define JWT_LIFETIME 3600
#define MAX_TOKEN_LEN 8192
/* A token whose lifetime is unknown is kept this long. */
#define DEFAULT_EXPIRES_IN 300
/* Replace a token this long before it expires (at most a quarter of its
 * lifetime, so short-lived tokens are still used for a while). */
#define REFRESH_MARGIN 225.0

struct cr_gauth {
    bool is_static;
    char *header;            /* "Authorization: Bearer ..." currently in use, or NULL */
    double refresh_at;       /* monotonic seconds */
    cr_gsa sa;
    EVP_PKEY *key;
    char *scope;
    cr_http *http;
    pthread_mutex_t lock;    /* guards header and refresh_at; held while fetching */
};

static void wipe_free(char *s)
{
    if (s) explicit_bzero(s, strlen(s));
    free(s);
}

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- parsers ---------------------------------------------------------------- */

static void json_freep(cr_json_doc **d)
{
    cr_json_free(*d);
}

/* A copy of a string member without NUL bytes; NULL (no error) when absent. */
static int string_member(const cr_json *obj, const char *name, char **out)
{
    const cr_json *v = cr_json_get(obj, name);
    *out = NULL;
    if (cr_json_is_nullish(v)) return 0;
    if (!cr_json_is(v, CR_JSON_STRING) || strlen(v->str) != v->len)
        return cr_error(CR_E_FORMAT, "member \"%s\" is not a string", name);
    if (!(*out = strdup(v->str))) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static int parse_sa_members(const cr_json *root, cr_gsa *out)
{
    _cleanup_free_ char *type = NULL;
    if (!cr_json_is(root, CR_JSON_OBJECT)) return cr_error(CR_E_FORMAT, "not a JSON object");
    CR_TRY(string_member(root, "type", &type));
    if (!type || strcmp(type, "service_account"))
        return cr_error(CR_E_FORMAT, "not a service-account key file (\"type\" is not \"service_account\")");
    CR_TRY(string_member(root, "client_email", &out->client_email));
    CR_TRY(string_member(root, "private_key", &out->private_key));
    CR_TRY(string_member(root, "private_key_id", &out->private_key_id));
    CR_TRY(string_member(root, "token_uri", &out->token_uri));
    if (!out->client_email || !*out->client_email) return cr_error(CR_E_FORMAT, "no client_email");
    if (!out->private_key || !*out->private_key) return cr_error(CR_E_FORMAT, "no private_key");
    if ((!out->token_uri || !*out->token_uri)) {
        free(out->token_uri);
        if (!(out->token_uri = strdup(CR_GAUTH_DEFAULT_TOKEN_URI))) return cr_error(-ENOMEM, "out of memory");
    }
    if (strncmp(out->token_uri, "https://", 8) && strncmp(out->token_uri, "http://", 7))
        return cr_error(CR_E_FORMAT, "token_uri is not an http(s) URL");
    return 0;
}

int cr_gsa_parse(const char *text, size_t n, cr_gsa *out)
{
    memset(out, 0, sizeof *out);
    _cleanup_(json_freep) cr_json_doc *doc = NULL;
    int r = cr_json_parse(text, n, &doc);
    if (r == 0) r = parse_sa_members(cr_json_root(doc), out);
    if (r < 0) cr_gsa_free(out);
    return r;
}

void cr_gsa_free(cr_gsa *sa)
{
    free(sa->client_email);
    wipe_free(sa->private_key);
    free(sa->private_key_id);
    free(sa->token_uri);
    memset(sa, 0, sizeof *sa);
}

/* Tokens go into a header line: printable ASCII without blanks only. */
static bool token_is_sane(const char *s, size_t n)
{
    if (n == 0 || n > MAX_TOKEN_LEN) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f) return false;
    return true;
}

int cr_gauth_parse_token_answer(const char *text, size_t n, char **token, uint64_t *expires_in)
{
    *token = NULL;
    *expires_in = 0;
    _cleanup_(json_freep) cr_json_doc *doc = NULL;
    CR_TRY(cr_json_parse(text, n, &doc));
    const cr_json *root = cr_json_root(doc);
    if (!cr_json_is(root, CR_JSON_OBJECT)) return cr_error(CR_E_FORMAT, "token answer is not a JSON object");
    const cr_json *tok = cr_json_get(root, "access_token"), *exp = cr_json_get(root, "expires_in");
    if (!cr_json_is(tok, CR_JSON_STRING) || !token_is_sane(tok->str, tok->len))
        return cr_error(CR_E_FORMAT, "token answer without a usable access_token");
    if (!cr_json_is_nullish(exp) && cr_json_u64(exp, expires_in) < 0)
        return cr_error(CR_E_FORMAT, "token answer: expires_in is not a non-negative integer");
    if (!(*token = strdup(tok->str))) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

/* ---- construction ----------------------------------------------------------- */

static int bearer_header(const char *token, char **out)
{
    if (asprintf(out, "Authorization: Bearer %s", token) < 0) {
        *out = NULL;
        return cr_error(-ENOMEM, "out of memory");
    }
    return 0;
}

int cr_gauth_new_static(const char *token, cr_gauth **out)
{
    if (!token_is_sane(token, strlen(token)))
        return cr_error(CR_E_USAGE, "GOOGLE_ACCESS_TOKEN is not a usable token (empty, too long, or with blanks or control characters)");
    cr_gauth *a = calloc(1, sizeof *a);
    if (!a) return cr_error(-ENOMEM, "out of memory");
    pthread_mutex_init(&a->lock, NULL);
    a->is_static = true;
    int r = bearer_header(token, &a->header);
    if (r < 0) {
        cr_gauth_free(a);
        return r;
    }
    *out = a;
    return 0;
}

static int read_small_file(const char *path, cr_buf *out)
{
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (!f) return cr_error_sys(-errno, "open %s", path);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        int r = cr_buf_append(out, chunk, n);
        explicit_bzero(chunk, sizeof chunk);
        if (r < 0) return r;
        if (out->len > (1u << 20)) return cr_error(CR_E_FORMAT, "%s: larger than 1 MiB, not a key file", path);
    }
    if (ferror(f)) return cr_error_sys(-EIO, "read %s", path);
    return 0;
}

static int load_key(cr_gauth *a)
{
    BIO *bio = BIO_new_mem_buf(a->sa.private_key, -1);
    if (!bio) return cr_error(-ENOMEM, "out of memory");
    a->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
    BIO_free(bio);
    if (!a->key) return cr_error(CR_E_FORMAT, "private_key is not a PEM private key");
    if (!EVP_PKEY_is_a(a->key, "RSA")) return cr_error(CR_E_FORMAT, "private_key is not an RSA key (RS256 needs one)");
    return 0;
}

static int setup_service_account(cr_gauth *a, const char *path, const char *scope)
{
    cr_buf text = CR_BUF_INIT;
    int r = read_small_file(path, &text);
    if (r == 0) r = cr_gsa_parse((const char *)text.data, text.len, &a->sa);
    if (text.data) explicit_bzero(text.data, text.cap);
    cr_buf_free(&text);
    if (r == 0) r = load_key(a);
    if (r < 0) return cr_error_ctx(r, "GOOGLE_APPLICATION_CREDENTIALS %s", path);
    explicit_bzero(a->sa.private_key, strlen(a->sa.private_key)); /* the EVP_PKEY holds it now */
    if (!(a->scope = strdup(scope))) return cr_error(-ENOMEM, "out of memory");
    cr_http_config cfg = {0};
    return cr_http_new(&cfg, &a->http);
}

int cr_gauth_new_service_account(const char *path, const char *scope, cr_gauth **out)
{
    cr_gauth *a = calloc(1, sizeof *a);
    if (!a) return cr_error(-ENOMEM, "out of memory");
    pthread_mutex_init(&a->lock, NULL);
    int r = setup_service_account(a, path, scope);
    if (r < 0) {
        cr_gauth_free(a);
        return r;
    }
    *out = a;
    return 0;
}

void cr_gauth_free(cr_gauth *a)
{
    if (!a) return;
    wipe_free(a->header);
    cr_gsa_free(&a->sa);
    EVP_PKEY_free(a->key);
    free(a->scope);
    cr_http_free(a->http);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ---- JWT -------------------------------------------------------------------- */

/* Base64url without padding (RFC 7515 §2). */
static int put_b64url(cr_buf *b, const void *p, size_t n)
{
    size_t start = b->len;
    CR_TRY(cr_base64_encode(b, p, n));
    while (b->len > start && b->data[b->len - 1] == '=') b->len--;
    for (size_t i = start; i < b->len; i++) {
        if (b->data[i] == '+') b->data[i] = '-';
        else if (b->data[i] == '/') b->data[i] = '_';
    }
    return 0;
}

static int jwt_header(cr_gauth *a, cr_buf *out)
{
    CR_TRY(cr_buf_puts(out, "{\"alg\":\"RS256\",\"typ\":\"JWT\""));
    if (a->sa.private_key_id) {
        CR_TRY(cr_buf_puts(out, ",\"kid\":"));
        CR_TRY(cr_json_put_cstr(out, a->sa.private_key_id));
    }
    return cr_buf_puts(out, "}");
}

static int jwt_claims(cr_gauth *a, int64_t now, cr_buf *out)
{
    CR_TRY(cr_buf_puts(out, "{\"iss\":"));
    CR_TRY(cr_json_put_cstr(out, a->sa.client_email));
    CR_TRY(cr_buf_puts(out, ",\"scope\":"));
    CR_TRY(cr_json_put_cstr(out, a->scope));
    CR_TRY(cr_buf_puts(out, ",\"aud\":"));
    CR_TRY(cr_json_put_cstr(out, a->sa.token_uri));
    return cr_buf_printf(out, ",\"iat\":%lld,\"exp\":%lld}", (long long)now, (long long)(now + JWT_LIFETIME));
}

static int rs256_sign(EVP_PKEY *key, const void *msg, size_t n, cr_buf *sig)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 0;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(ctx, NULL, &len, msg, n) == 1 && cr_buf_resize(sig, len) == 0 &&
             EVP_DigestSign(ctx, sig->data, &len, msg, n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) return cr_error(-EIO, "RS256 signature of the token request failed (OpenSSL)");
    sig->len = len;
    return 0;
}

int cr_gauth_make_jwt(cr_gauth *a, int64_t now, char **out)
{
    if (!a->key) return cr_error(-EINVAL, "no service-account key");
    _cleanup_buf_ cr_buf part = CR_BUF_INIT, jwt = CR_BUF_INIT, sig = CR_BUF_INIT;
    CR_TRY(jwt_header(a, &part));
    CR_TRY(put_b64url(&jwt, part.data, part.len));
    CR_TRY(cr_buf_putc(&jwt, '.'));
    cr_buf_reset(&part);
    CR_TRY(jwt_claims(a, now, &part));
    CR_TRY(put_b64url(&jwt, part.data, part.len));
    CR_TRY(rs256_sign(a->key, jwt.data, jwt.len, &sig));
    CR_TRY(cr_buf_putc(&jwt, '.'));
    CR_TRY(put_b64url(&jwt, sig.data, sig.len));
    CR_TRY(cr_buf_nul(&jwt));
    *out = (char *)cr_buf_steal(&jwt, NULL);
    return 0;
}

/* ---- token exchange --------------------------------------------------------- */

/* "error: error_description" of an OAuth error answer, printable and short. */
static void oauth_error_text(const cr_buf *body, char *out, size_t n)
{
    out[0] = 0;
    _cleanup_(json_freep) cr_json_doc *doc = NULL;
    if (cr_json_parse((const char *)body->data, body->len, &doc) < 0) return;
    const cr_json *root = cr_json_root(doc), *e = cr_json_get(root, "error"), *d = cr_json_get(root, "error_description");
    if (cr_json_is(e, CR_JSON_OBJECT)) { /* Google API style {"error": {"message": ...}} */
        d = cr_json_get(e, "message");
        e = NULL;
    }
    snprintf(out, n, "%s%s%s", cr_json_is(e, CR_JSON_STRING) ? e->str : "",
             cr_json_is(e, CR_JSON_STRING) && cr_json_is(d, CR_JSON_STRING) ? ": " : "",
             cr_json_is(d, CR_JSON_STRING) ? d->str : "");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
}

static int exchange(cr_gauth *a, const char *jwt, char **token, uint64_t *expires_in)
{
    _cleanup_buf_ cr_buf body = CR_BUF_INIT;
    CR_TRY(cr_buf_printf(&body, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", jwt));
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
    cr_http_req req = {.method = "POST", .url = a->sa.token_uri, .headers = headers, .body = body.data, .body_len = body.len};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    int r = cr_http_request(a->http, &req, &resp);
    explicit_bzero(body.data, body.len);
    CR_TRY_CTX(r, "gs: service-account login");
    if (resp.status != 200) {
        char text[256];
        oauth_error_text(&resp.body, text, sizeof text);
        return cr_error(resp.status == 400 || resp.status == 401 || resp.status == 403 ? -EACCES : -EIO,
                        "gs: service-account login as %s at %s refused: %ld%s%s", a->sa.client_email, a->sa.token_uri,
                        resp.status, text[0] ? ": " : "", text);
    }
    r = cr_gauth_parse_token_answer((const char *)resp.body.data, resp.body.len, token, expires_in);
    explicit_bzero(resp.body.data, resp.body.len);
    if (r < 0) return cr_error_ctx(r, "gs: service-account login at %s", a->sa.token_uri);
    return 0;
}

/* With the lock held. */
static int refresh(cr_gauth *a)
{
    _cleanup_free_ char *jwt = NULL;
    char *token = NULL;
    uint64_t expires_in;
    double start = monotonic_now();
    CR_TRY(cr_gauth_make_jwt(a, (int64_t)time(NULL), &jwt));
    CR_TRY(exchange(a, jwt, &token, &expires_in));
    char *header = NULL;
    int r = bearer_header(token, &header);
    wipe_free(token);
    CR_TRY(r);
    wipe_free(a->header);
    a->header = header;
    double life = expires_in ? (double)expires_in : DEFAULT_EXPIRES_IN;
    double margin = life / 4 < REFRESH_MARGIN ? life / 4 : REFRESH_MARGIN;
    a->refresh_at = start + life - margin;
    return 0;
}

int cr_gauth_header(cr_gauth *a, char **out)
{
    pthread_mutex_lock(&a->lock);
    int r = 0;
    if (!a->is_static && (!a->header || monotonic_now() >= a->refresh_at)) r = refresh(a);
    if (r == 0 && !(*out = strdup(a->header))) r = cr_error(-ENOMEM, "out of memory");
    pthread_mutex_unlock(&a->lock);
    return r;
}

void cr_gauth_header_free(char *h)
{
    wipe_free(h);
}

bool cr_gauth_invalidate(cr_gauth *a, const char *header)
{
    if (a->is_static) return false;
    pthread_mutex_lock(&a->lock);
    if (a->header && !strcmp(a->header, header)) a->refresh_at = 0;
    pthread_mutex_unlock(&a->lock);
    return true;
}
