/* Google OAuth 2.0 access tokens for the GCS backend.
 *
 * Two sources, as restic's (GOOGLE_ACCESS_TOKEN since restic 0.10.0, and it
 * wins over the credentials file):
 *   - a static bearer token (GOOGLE_ACCESS_TOKEN): used as is, never refreshed;
 *   - a service-account key file (GOOGLE_APPLICATION_CREDENTIALS, the JSON
 *     file Google hands out): an RS256-signed JWT assertion is exchanged at the
 *     file's token_uri (RFC 7523 jwt-bearer grant) for an access token, which
 *     is cached and replaced shortly before it expires.
 *
 * A cr_gauth may be used by any number of threads at once.  Secrets (private
 * key, tokens) never appear in messages; their memory is wiped when freed.
 */
#ifndef CRESTIC_BACKENDS_GAUTH_H
#define CRESTIC_BACKENDS_GAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_GAUTH_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define CR_GAUTH_SCOPE_RW "https://www.googleapis.com/auth/devstorage.read_write"

/* The members of a service-account key file that the JWT flow needs. */
typedef struct {
    char *client_email;
    char *private_key;    /* PEM (PKCS#8) */
    char *private_key_id; /* NULL when absent (then no "kid" in the JWT) */
    char *token_uri;      /* CR_GAUTH_DEFAULT_TOKEN_URI when absent */
} cr_gsa;

/* Parse a key file's text.  CR_E_FORMAT (with a message that never quotes
 * the key) when it is not JSON, not "type": "service_account", or lacks
 * client_email / private_key. */
int cr_gsa_parse(const char *text, size_t n, cr_gsa *out);
void cr_gsa_free(cr_gsa *sa);

/* A token endpoint's answer: {"access_token": "...", "expires_in": N, ...}.
 * *token is malloc'ed; *expires_in is 0 when the answer has none.
 * CR_E_FORMAT when the token is missing, empty or not printable ASCII. */
int cr_gauth_parse_token_answer(const char *text, size_t n, char **token, uint64_t *expires_in);

typedef struct cr_gauth cr_gauth;

int cr_gauth_new_static(const char *token, cr_gauth **out);
/* Read and check the key file at path (the key must load as RSA). */
int cr_gauth_new_service_account(const char *path, const char *scope, cr_gauth **out);
void cr_gauth_free(cr_gauth *a);

/* "Authorization: Bearer <token>" (malloc'ed; free with cr_gauth_header_free),
 * fetching a new token first when none is cached or it is about to expire. */
int cr_gauth_header(cr_gauth *a, char **out);
void cr_gauth_header_free(char *h);
/* After a 401: drop the cached token if it is still the one in header, so the
 * next cr_gauth_header() fetches a new one.  false when the source cannot
 * produce another (static token): the 401 stands. */
bool cr_gauth_invalidate(cr_gauth *a, const char *header);

/* The signed JWT assertion (exposed for tests): header.claims.signature,
 * base64url without padding, claims iss/scope/aud/iat/exp (exp = iat + 3600). */
int cr_gauth_make_jwt(cr_gauth *a, int64_t now, char **out);

#endif
