/* Backblaze B2 native API: the pieces of the protocol that need no network,
 * kept apart so they can be unit-tested and fuzzed (fuzz/fuzz_b2.c).
 *
 * Every parser takes the raw answer body (JSON, not NUL-terminated), never
 * trusts it (missing members, wrong types, huge numbers are CR_E_FORMAT with
 * a message), and returns strings it allocated (caller frees). */
#ifndef CRESTIC_BACKENDS_B2PROTO_H
#define CRESTIC_BACKENDS_B2PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* b2_authorize_account: v3 (apiInfo.storageApi) and v2 (flat) shapes. */
typedef struct {
    char *account_id, *token, *api_url, *download_url;
    uint64_t recommended_part_size, min_part_size;
    char *allowed_bucket_id, *allowed_bucket_name; /* a key restricted to one bucket, else NULL */
} cr_b2_auth;

int cr_b2_parse_auth(const char *text, size_t n, cr_b2_auth *out);
void cr_b2_auth_free(cr_b2_auth *a);

/* A B2 error body {"status", "code", "message"}: code and message copied
 * (truncated, control characters replaced) into the given arrays; both
 * empty when the body is not such an object. */
void cr_b2_parse_error(const char *text, size_t n, char *code, size_t code_len, char *msg, size_t msg_len);

/* b2_get_upload_url / b2_get_upload_part_url: uploadUrl and authorizationToken. */
int cr_b2_parse_upload_url(const char *text, size_t n, char **url, char **token);

/* b2_list_buckets: the bucketId of the bucket called `name`, or NULL when
 * the list does not have it.  b2_create_bucket's answer (one bucket object)
 * is accepted as well. */
int cr_b2_parse_bucket_id(const char *text, size_t n, const char *name, char **id);

/* A file object (b2_start_large_file, b2_upload_file, ...): its fileId. */
int cr_b2_parse_file_id(const char *text, size_t n, char **id);

/* b2_list_file_names / b2_list_file_versions: each entry in order, then the
 * paging members (NULL when the listing is complete; next_id only for
 * versions).  A callback's non-zero return stops and is returned. */
typedef struct {
    const char *name, *id, *action; /* action: "upload", "hide", "start", "folder" */
    uint64_t size;                  /* contentLength, exact */
} cr_b2_file;
typedef int (*cr_b2_file_cb)(void *ud, const cr_b2_file *f);
int cr_b2_parse_file_list(const char *text, size_t n, cr_b2_file_cb cb, void *ud, char **next_name, char **next_id);

/* A file name for X-Bz-File-Name and download URLs: UTF-8 bytes
 * percent-encoded except unreserved characters and '/'. */
int cr_b2_encode_name(cr_buf *out, const char *name);

#endif
