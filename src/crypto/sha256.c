/* SHA-256 through OpenSSL (SHA-NI where the CPU has it).  Blob IDs are
 * hashed once per blob, so the one-shot form reuses a per-thread context
 * instead of allocating one each time. */
#include "crypto/crypto.h"
#include "util/error.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct cr_sha256_ctx {
    EVP_MD_CTX *md;
};

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static pthread_key_t oneshot_key;
static bool oneshot_key_ok;
static _Thread_local EVP_MD_CTX *oneshot_ctx;

/* The void functions below have no error path; SHA-256 cannot fail short of
 * a broken OpenSSL or memory exhaustion, and a wrong hash would be silently
 * stored as an ID, so stop instead. */
static _Noreturn void sha256_fatal(const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    fprintf(stderr, "crestic: fatal: SHA-256 %s: %s\n", what, reason ? reason : "unknown OpenSSL error");
    abort();
}

static void free_oneshot(void *p)
{
    EVP_MD_CTX_free(p);
    if (oneshot_ctx == p) oneshot_ctx = NULL;
}

static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    ERR_clear_error();
    oneshot_key_ok = pthread_key_create(&oneshot_key, free_oneshot) == 0;
}

static const EVP_MD *get_sha256(void)
{
    pthread_once(&sha256_once, fetch_sha256);
    if (!sha256) sha256_fatal("fetch");
    return sha256;
}

static EVP_MD_CTX *get_oneshot_ctx(void)
{
    if (oneshot_ctx) return oneshot_ctx;
    get_sha256();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !oneshot_key_ok || pthread_setspecific(oneshot_key, ctx) != 0) sha256_fatal("context");
    return oneshot_ctx = ctx;
}

void cr_sha256(const void *p, size_t n, uint8_t out[32])
{
    EVP_MD_CTX *ctx = get_oneshot_ctx();
    if (EVP_DigestInit_ex2(ctx, sha256, NULL) != 1 || EVP_DigestUpdate(ctx, p, n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, NULL) != 1)
        sha256_fatal("digest");
}

int cr_sha256_new(cr_sha256_ctx **out)
{
    cr_sha256_ctx *c = calloc(1, sizeof *c);
    if (!c) return cr_error_sys(-ENOMEM, "SHA-256 context");
    c->md = EVP_MD_CTX_new();
    if (!c->md || EVP_DigestInit_ex2(c->md, get_sha256(), NULL) != 1) {
        ERR_clear_error();
        cr_sha256_free(c);
        return cr_error_sys(-ENOMEM, "SHA-256 context");
    }
    *out = c;
    return 0;
}

void cr_sha256_update(cr_sha256_ctx *ctx, const void *p, size_t n)
{
    if (EVP_DigestUpdate(ctx->md, p, n) != 1) sha256_fatal("update");
}

void cr_sha256_final(cr_sha256_ctx *ctx, uint8_t out[32])
{
    if (EVP_DigestFinal_ex(ctx->md, out, NULL) != 1 || EVP_DigestInit_ex2(ctx->md, sha256, NULL) != 1)
        sha256_fatal("final");
}

void cr_sha256_free(cr_sha256_ctx *ctx)
{
    if (!ctx) return;
    EVP_MD_CTX_free(ctx->md);
    free(ctx);
}
