/* A tiny XML reader for the answers of cloud storage APIs (S3's
 * ListBucketResult and Error, Azure's EnumerationResults, ...).
 *
 * It finds elements by local name (a namespace prefix such as "s3:" is
 * ignored) anywhere below a range of text and decodes their character data.
 * No DOM, no allocation except for decoded text, no recursion: hostile input
 * costs linear time and gives CR_E_FORMAT, never a crash.  Attributes,
 * namespaces and DTDs are not interpreted (DOCTYPE, comments, processing
 * instructions and CDATA sections are skipped or read as text).
 *
 *     cr_xml doc = cr_xml_of(body, len), item;
 *     while ((r = cr_xml_next(&doc, "Contents", &item)) == 1) {
 *         cr_xml_text(&item, "Key", &key);
 *         cr_xml_u64(&item, "Size", &size);
 *     }
 */
#ifndef CRESTIC_UTIL_XML_H
#define CRESTIC_UTIL_XML_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* A range of XML text: a whole document or the content of one element. */
typedef struct {
    const char *p, *end;
} cr_xml;

static inline cr_xml cr_xml_of(const void *data, size_t len)
{
    cr_xml x = {(const char *)data, (const char *)data + len};
    return x;
}

/* The next element named `name` at any depth from x->p on.  1: *inner is
 * its content (empty for <name/>) and x->p moves past its end tag, so the
 * next call finds the following one.  0: none left.  CR_E_FORMAT: the text
 * is not well-formed where it was read (an unclosed tag or element). */
int cr_xml_next(cr_xml *x, const char *name, cr_xml *inner);

/* The character data of the first element `name` inside x (x itself is not
 * moved), entities and character references decoded, CDATA taken as is,
 * child tags left out; out is NUL-terminated.  1 found, 0 absent,
 * CR_E_FORMAT malformed. */
int cr_xml_text(const cr_xml *x, const char *name, cr_buf *out);

/* cr_xml_text of a decimal unsigned 64-bit number (surrounding blanks
 * allowed).  1 found, 0 absent, CR_E_FORMAT malformed or out of range. */
int cr_xml_u64(const cr_xml *x, const char *name, uint64_t *out);

/* Decode the character data of a range (as cr_xml_text does for one element). */
int cr_xml_decode(const cr_xml *x, cr_buf *out);

#endif
