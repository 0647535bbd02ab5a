/* Azure Blob backend internals shared with its fuzz target. */
#ifndef CRESTIC_BACKENDS_AZURE_H
#define CRESTIC_BACKENDS_AZURE_H

#include <stddef.h>

#include "backends/backend.h"
#include "util/buf.h"

/* Parse one List Blobs answer (<EnumerationResults>): cb for each blob whose
 * last name part is a 64-hex ID, with its Content-Length; next gets the
 * <NextMarker> ("" on the last page, NUL-terminated).  CR_E_FORMAT on a
 * malformed answer, or cb's non-zero return. */
int cr_azure_parse_listing(const void *body, size_t len, cr_list_cb cb, void *ud, cr_buf *next);

#endif
