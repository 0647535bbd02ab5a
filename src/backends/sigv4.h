/* AWS Signature Version 4 (header form) for S3 requests.
 *
 * The caller builds the request (method, encoded path, query, the headers it
 * wants signed and the payload's SHA-256) and gets back the value of the
 * Authorization header.  Nothing here does I/O, so the known-answer tests
 * (tests/unit/test_sigv4.c) can check it against AWS's published examples.
 */
#ifndef CRESTIC_BACKENDS_SIGV4_H
#define CRESTIC_BACKENDS_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/buf.h"

/* SHA-256 of the empty payload (GET, HEAD, DELETE), lower-case hex. */
#define CR_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
    const char *access_key, *secret_key;
    const char *region;  /* e.g. "us-east-1" */
    const char *service; /* "s3" */
} cr_sigv4_key;

typedef struct {
    const char *name;  /* any case; signed lower-cased */
    const char *value; /* signed with surrounding blanks trimmed, inner runs squeezed */
} cr_sigv4_header;

typedef struct {
    const char *method;
    const char *path;  /* already URI-encoded, starting with '/' */
    const char *query; /* "a=1&b=x" with encoded keys/values, any order; "" or NULL for none */
    const cr_sigv4_header *headers; /* must include host and x-amz-date */
    size_t n_headers;
    const char *payload_sha256; /* lower-case hex, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;       /* "YYYYMMDDTHHMMSSZ", the x-amz-date value */
} cr_sigv4_request;

/* Append s to out percent-encoded as SigV4 wants: everything except
 * A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case hex); '/' stays when keep_slash. */
int cr_sigv4_uri_encode(cr_buf *out, const char *s, size_t n, int keep_slash);

/* "YYYYMMDDTHHMMSSZ" of t (UTC) into out[17]. */
void cr_sigv4_amz_date(time_t t, char out[17]);

/* Lower-case hex SHA-256 of data into out[65]. */
void cr_sigv4_sha256_hex(const void *data, size_t n, char out[65]);

/* The canonical request (for tests and debugging). */
int cr_sigv4_canonical_request(const cr_sigv4_request *req, cr_buf *out);

/* The full Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 *  SignedHeaders=a;b, Signature=hex".  The signature alone (64 hex) is also
 * written to signature_out when not NULL. */
int cr_sigv4_authorization(const cr_sigv4_key *key, const cr_sigv4_request *req, cr_buf *out, char signature_out[65]);

#endif
