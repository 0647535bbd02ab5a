/* Tiny XML reader: see xml.h. */
#include "util/xml.h"

#include <stdbool.h>
#include <string.h>

#include "util/error.h"

/* Position just after the first occurrence of `needle` in [p, end), or NULL. */
static const char *after(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (; (size_t)(end - p) >= n; p++)
        if (*p == needle[0] && !memcmp(p, needle, n)) return p + n;
    return NULL;
}

/* What a '<' at p starts. */
typedef enum { MARK_START, MARK_END, MARK_OTHER } mark_kind;

typedef struct {
    mark_kind kind;
    const char *name, *name_end; /* tag name (start and end tags) */
    bool self_closing;
    const char *next; /* just past the markup */
} mark;

static bool is_name_end(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '/' || c == '>';
}

/* End of a tag's '>' from p, skipping quoted attribute values. */
static const char *tag_close(const char *p, const char *end)
{
    char quote = 0;
    for (; p < end; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '>') {
            return p;
        }
    }
    return NULL;
}

/* Read the markup starting with '<' at p. */
static int read_mark(const char *p, const char *end, mark *m)
{
    static const struct {
        const char *open, *close;
    } skipped[] = {{"<!--", "-->"}, {"<![CDATA[", "]]>"}, {"<?", "?>"}};
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
        size_t n = strlen(skipped[i].open);
        if ((size_t)(end - p) >= n && !memcmp(p, skipped[i].open, n)) {
            m->kind = MARK_OTHER;
            m->next = after(p + n, end, skipped[i].close);
            return m->next ? 0 : CR_E_FORMAT;
        }
    }
    const char *close = tag_close(p + 1, end);
    if (!close) return CR_E_FORMAT;
    m->next = close + 1;
    if (p + 1 < end && p[1] == '!') { /* <!DOCTYPE ...> and the like */
        m->kind = MARK_OTHER;
        return 0;
    }
    m->kind = p + 1 < end && p[1] == '/' ? MARK_END : MARK_START;
    m->name = p + (m->kind == MARK_END ? 2 : 1);
    m->name_end = m->name;
    while (m->name_end < close && !is_name_end(*m->name_end)) m->name_end++;
    if (m->name_end == m->name) return CR_E_FORMAT;
    m->self_closing = m->kind == MARK_START && close[-1] == '/';
    return 0;
}

static bool local_name_is(const mark *m, const char *name)
{
    const char *n = m->name;
    for (const char *q = m->name; q < m->name_end; q++)
        if (*q == ':') n = q + 1;
    size_t len = strlen(name);
    return (size_t)(m->name_end - n) == len && !memcmp(n, name, len);
}

/* From just inside an element, find its end tag: *content_end at its '<',
 * *next past its '>'.  Nesting is counted, names are not compared. */
static int element_end(const char *p, const char *end, const char **content_end, const char **next)
{
    size_t depth = 1;
    while ((p = memchr(p, '<', (size_t)(end - p)))) {
        mark m;
        CR_TRY(read_mark(p, end, &m));
        if (m.kind == MARK_END && --depth == 0) {
            *content_end = p;
            *next = m.next;
            return 0;
        }
        if (m.kind == MARK_START && !m.self_closing) depth++;
        p = m.next;
    }
    return CR_E_FORMAT;
}

int cr_xml_next(cr_xml *x, const char *name, cr_xml *inner)
{
    const char *p = x->p;
    while (p < x->end && (p = memchr(p, '<', (size_t)(x->end - p)))) {
        mark m;
        int r = read_mark(p, x->end, &m);
        if (r < 0) return cr_error(r, "malformed XML");
        p = m.next;
        if (m.kind != MARK_START || !local_name_is(&m, name)) continue;
        inner->p = inner->end = m.next;
        if (!m.self_closing && element_end(m.next, x->end, &inner->end, &p) < 0)
            return cr_error(CR_E_FORMAT, "malformed XML: element <%s> is not closed", name);
        x->p = p;
        return 1;
    }
    x->p = x->end;
    return 0;
}

/* Append the UTF-8 encoding of code point cp. */
static int put_utf8(cr_buf *out, unsigned long cp)
{
    unsigned char s[4];
    size_t n;
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return CR_E_FORMAT;
    if (cp < 0x80) {
        s[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (unsigned char)(0xC0 | cp >> 6);
        s[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        s[0] = (unsigned char)(0xE0 | cp >> 12);
        s[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        s[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        s[0] = (unsigned char)(0xF0 | cp >> 18);
        s[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        s[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        s[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return cr_buf_append(out, s, n);
}

/* Decode one reference "&...;" at p (p[0] == '&'); *next past the ';'. */
static int put_reference(cr_buf *out, const char *p, const char *end, const char **next)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};
    const char *semi = memchr(p, ';', (size_t)(end - p) < 12 ? (size_t)(end - p) : 12);
    if (!semi) return CR_E_FORMAT;
    *next = semi + 1;
    const char *s = p + 1;
    size_t n = (size_t)(semi - s);
    if (n >= 2 && s[0] == '#') {
        bool hex = s[1] == 'x';
        unsigned long cp = 0;
        const char *d = s + (hex ? 2 : 1);
        if (d == semi) return CR_E_FORMAT;
        for (; d < semi; d++) {
            int v = *d >= '0' && *d <= '9' ? *d - '0'
                    : hex && *d >= 'a' && *d <= 'f' ? *d - 'a' + 10
                    : hex && *d >= 'A' && *d <= 'F' ? *d - 'A' + 10
                                                    : -1;
            if (v < 0 || cp > 0x10FFFF) return CR_E_FORMAT;
            cp = cp * (hex ? 16 : 10) + (unsigned long)v;
        }
        return put_utf8(out, cp);
    }
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (strlen(named[i].name) == n && !memcmp(named[i].name, s, n)) return cr_buf_putc(out, named[i].c);
    return CR_E_FORMAT;
}

int cr_xml_decode(const cr_xml *x, cr_buf *out)
{
    cr_buf_reset(out);
    const char *p = x->p;
    while (p < x->end) {
        if (*p == '&') {
            if (put_reference(out, p, x->end, &p) < 0) return cr_error(CR_E_FORMAT, "malformed XML: bad character reference");
        } else if (*p == '<') {
            static const char cdata[] = "<![CDATA[";
            mark m;
            if (read_mark(p, x->end, &m) < 0) return cr_error(CR_E_FORMAT, "malformed XML");
            if ((size_t)(x->end - p) >= sizeof cdata - 1 && !memcmp(p, cdata, sizeof cdata - 1))
                CR_TRY(cr_buf_append(out, p + sizeof cdata - 1, (size_t)(m.next - 3 - (p + sizeof cdata - 1))));
            p = m.next;
        } else {
            const char *q = p;
            while (q < x->end && *q != '&' && *q != '<') q++;
            CR_TRY(cr_buf_append(out, p, (size_t)(q - p)));
            p = q;
        }
    }
    return cr_buf_nul(out);
}

int cr_xml_text(const cr_xml *x, const char *name, cr_buf *out)
{
    cr_xml scan = *x, inner;
    int r = cr_xml_next(&scan, name, &inner);
    if (r <= 0) return r;
    CR_TRY(cr_xml_decode(&inner, out));
    return 1;
}

int cr_xml_u64(const cr_xml *x, const char *name, uint64_t *out)
{
    _cleanup_buf_ cr_buf text = CR_BUF_INIT;
    int r = cr_xml_text(x, name, &text);
    if (r <= 0) return r;
    const char *s = (const char *)text.data, *e = s + text.len;
    while (s < e && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t')) e--;
    if (s == e) return cr_error(CR_E_FORMAT, "malformed XML: <%s> is not a number", name);
    uint64_t v = 0;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return cr_error(CR_E_FORMAT, "malformed XML: <%s> is not a number", name);
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 1;
}
