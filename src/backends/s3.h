/* S3 backend (cr_backend_s3, in backend.h) and its answer parsers, exposed
 * for the fuzz target fuzz/fuzz_s3_xml.c. */
#ifndef CRESTIC_BACKENDS_S3_H
#define CRESTIC_BACKENDS_S3_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/backend.h"
#include "util/buf.h"

/* One ListObjectsV2 (or, v1, ListObjects) page: cb(ud, name, size) for each
 * <Contents> whose key, after its first prefix_len bytes, ends in a 64-hex
 * object name (the part after the last '/').  token: where the next page
 * starts when IsTruncated is "true" (V2: NextContinuationToken; V1:
 * NextMarker, else the page's last key), else empty (always NUL-terminated).
 * 0, the callback's non-zero return, or CR_E_FORMAT (malformed XML or
 * entry, or a truncated page without a token). */
int cr_s3_parse_list(const void *body, size_t len, size_t prefix_len, bool v1, cr_list_cb cb, void *ud, cr_buf *token);

/* <Error><Code>/<Message> of an error answer, each as one printable line
 * (empty when absent or when the body is no S3 error document). */
void cr_s3_error_fields(const void *body, size_t len, char *code, size_t ncode, char *msg, size_t nmsg);

#endif
