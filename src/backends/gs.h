/* Parsers of Google Cloud Storage JSON API answers, used by gs.c (and the
 * fuzz targets).  Sizes are uint64 values written as JSON strings ("1234");
 * they are converted exactly, never through a double. */
#ifndef CRESTIC_BACKENDS_GS_H
#define CRESTIC_BACKENDS_GS_H

#include <stddef.h>
#include <stdint.h>

/* "size" of an object resource.  CR_E_FORMAT when absent or malformed. */
int cr_gs_parse_object(const char *text, size_t n, uint64_t *size);

/* One item of a listing; name is NUL-terminated (no NUL bytes inside).
 * A non-zero return stops the walk and is returned. */
typedef int (*cr_gs_item_cb)(void *ud, const char *name, uint64_t size);

/* A page of objects.list: {"items": [{"name", "size", ...}], "nextPageToken"}.
 * No "items" is an empty page.  *next_page_token is malloc'ed, NULL on the
 * last page. */
int cr_gs_parse_list(const char *text, size_t n, cr_gs_item_cb cb, void *ud, char **next_page_token);

/* The value of a resumable upload's "Range" answer header, "bytes=0-LAST":
 * *persisted = LAST + 1.  CR_E_FORMAT for any other form or LAST >= total. */
int cr_gs_parse_range(const char *value, uint64_t total, uint64_t *persisted);

/* The message of a JSON error answer {"error": {"code", "message"}},
 * printable and cut to fit out[n]; "" when there is none. */
void cr_gs_error_message(const char *text, size_t n, char *out, size_t outn);

#endif
