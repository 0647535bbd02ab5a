/* Fuzz util/xml: any input either parses or gives CR_E_FORMAT; every range
 * handed out lies inside the input; decoding never fails on a range the
 * reader accepted except with CR_E_FORMAT. */
#include <stdint.h>
#include <stdlib.h>

#include "util/error.h"
#include "util/xml.h"

static void inside(const cr_xml *r, const uint8_t *data, size_t size)
{
    if (r->p < (const char *)data || r->end > (const char *)data + size || r->p > r->end) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"Contents", "Key", "Size", "Blob", "a", "NextMarker"};
    cr_buf t = CR_BUF_INIT;
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        cr_xml doc = cr_xml_of(data, size), in;
        int r, guard = 0;
        while ((r = cr_xml_next(&doc, names[n], &in)) == 1) {
            inside(&in, data, size);
            inside(&doc, data, size);
            uint64_t v;
            int d = cr_xml_decode(&in, &t);
            if (d < 0 && d != CR_E_FORMAT) abort();
            d = cr_xml_u64(&in, "Size", &v);
            if (d < 0 && d != CR_E_FORMAT) abort();
            if (++guard > (int)size + 1) abort(); /* each hit consumes input */
        }
        if (r != 0 && r != CR_E_FORMAT) abort();
        cr_error_clear();
    }
    cr_buf_free(&t);
    return 0;
}
