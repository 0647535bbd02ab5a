/* libFuzzer target for the Google credential parsers (backends/gauth.h):
 * service-account key files and token endpoint answers.  Accepted or refused
 * with CR_E_FORMAT (or -ENOMEM) without leaks; an accepted key file has a
 * non-empty client_email and private_key and an http(s) token_uri; an
 * accepted token is printable ASCII without blanks (it goes into a header). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/gauth.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    cr_gsa sa;
    int r = cr_gsa_parse(text, size, &sa);
    if (r == 0) {
        if (!sa.client_email[0] || !sa.private_key[0] || !sa.token_uri) abort();
        if (strncmp(sa.token_uri, "http://", 7) && strncmp(sa.token_uri, "https://", 8)) abort();
        cr_gsa_free(&sa);
    } else if (r != CR_E_FORMAT && r != -ENOMEM) {
        abort();
    }

    char *token = NULL;
    uint64_t expires_in;
    r = cr_gauth_parse_token_answer(text, size, &token, &expires_in);
    if (r == 0) {
        if (!token[0]) abort();
        for (const char *p = token; *p; p++)
            if (*p <= 0x20 || *p >= 0x7f) abort();
        free(token);
    } else if (r != CR_E_FORMAT && r != -ENOMEM) {
        abort();
    } else if (token) {
        abort();
    }
    return 0;
}
