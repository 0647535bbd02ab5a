#include "util/goquote.h"
#include "util/error.h"
#include "util/goprint_table.h"

#include <string.h>

static const char lowerhex[] = "0123456789abcdef";

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- UTF-8 ---------------------------------------------------------- */

static bool is_cont(uint8_t c)
{
    return (c & 0xc0) == 0x80;
}

int cr_utf8_decode(const uint8_t *s, size_t n, uint32_t *rune)
{
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *rune = c;
        return 1;
    }
    /* The allowed range of the second byte excludes overlongs (E0, F0),
     * surrogates (ED) and values above U+10FFFF (F4) in one place. */
    uint8_t lo = 0x80, hi = 0xbf;
    int len;
    uint32_t r;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, r = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, r = c & 0x0f;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, r = c & 0x07;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (n < (size_t)len || s[1] < lo || s[1] > hi) return 0;
    for (int i = 1; i < len; i++) {
        if (!is_cont(s[i])) return 0;
        r = r << 6 | (s[i] & 0x3f);
    }
    *rune = r;
    return len;
}

int cr_utf8_encode(uint32_t r, uint8_t out[4])
{
    if (r < 0x80) {
        out[0] = (uint8_t)r;
        return 1;
    }
    if (r < 0x800) {
        out[0] = (uint8_t)(0xc0 | r >> 6);
        out[1] = (uint8_t)(0x80 | (r & 0x3f));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (uint8_t)(0xe0 | r >> 12);
        out[1] = (uint8_t)(0x80 | (r >> 6 & 0x3f));
        out[2] = (uint8_t)(0x80 | (r & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | r >> 18);
    out[1] = (uint8_t)(0x80 | (r >> 12 & 0x3f));
    out[2] = (uint8_t)(0x80 | (r >> 6 & 0x3f));
    out[3] = (uint8_t)(0x80 | (r & 0x3f));
    return 4;
}

/* ---- IsPrint -------------------------------------------------------- */

bool cr_go_isprint(uint32_t r)
{
    if (r < 0x80) return r >= 0x20 && r < 0x7f;
    size_t lo = 0, hi;
    if (r <= 0xffff) {
        hi = ARRAY_LEN(cr_goprint16);
        while (lo < hi) { /* first range whose end is >= r */
            size_t mid = lo + (hi - lo) / 2;
            if (cr_goprint16[mid][1] < r) lo = mid + 1;
            else hi = mid;
        }
        return lo < ARRAY_LEN(cr_goprint16) && cr_goprint16[lo][0] <= r;
    }
    hi = ARRAY_LEN(cr_goprint32);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cr_goprint32[mid][1] < r) lo = mid + 1;
        else hi = mid;
    }
    return lo < ARRAY_LEN(cr_goprint32) && cr_goprint32[lo][0] <= r;
}

/* ---- Quote ---------------------------------------------------------- */

static int put_hex_escape(cr_buf *out, char kind, uint32_t v, int digits)
{
    char tmp[10];
    tmp[0] = '\\';
    tmp[1] = kind;
    for (int i = 0; i < digits; i++) tmp[2 + i] = lowerhex[v >> (4 * (digits - 1 - i)) & 15];
    return cr_buf_append(out, tmp, (size_t)digits + 2);
}

static char control_escape(uint32_t r)
{
    switch (r) {
    case '\a': return 'a';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    case '\v': return 'v';
    default: return 0;
    }
}

/* One valid rune that is not printable ASCII. */
static int quote_rune(cr_buf *out, const uint8_t *p, int len, uint32_t r)
{
    if (cr_go_isprint(r)) return cr_buf_append(out, p, (size_t)len);
    char c = control_escape(r);
    if (c) return cr_buf_append(out, (char[]){'\\', c}, 2);
    if (r < 0x20 || r == 0x7f) return put_hex_escape(out, 'x', r, 2);
    if (r < 0x10000) return put_hex_escape(out, 'u', r, 4);
    return put_hex_escape(out, 'U', r, 8);
}

int cr_goquote(cr_buf *out, const void *s, size_t n)
{
    const uint8_t *p = n ? s : (const uint8_t *)""; /* s may be NULL when n == 0 */
    size_t i = 0;
    CR_TRY(cr_buf_reserve(out, n));
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\') run++;
        CR_TRY(cr_buf_append(out, p + i, run - i));
        i = run;
        if (i == n) break;
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            CR_TRY(cr_buf_append(out, (char[]){'\\', (char)c}, 2));
            i++;
            continue;
        }
        uint32_t r;
        int len = cr_utf8_decode(p + i, n - i, &r);
        if (len == 0) { /* not UTF-8: one \xHH per byte */
            CR_TRY(put_hex_escape(out, 'x', c, 2));
            i++;
            continue;
        }
        CR_TRY(quote_rune(out, p + i, len, r));
        i += (size_t)len;
    }
    return 0;
}

/* ---- Unquote -------------------------------------------------------- */

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex(const uint8_t *p, size_t avail, int digits, uint32_t *v)
{
    if (avail < (size_t)digits) return false;
    uint32_t acc = 0;
    for (int i = 0; i < digits; i++) {
        int h = hexval(p[i]);
        if (h < 0) return false;
        acc = acc << 4 | (uint32_t)h;
    }
    *v = acc;
    return true;
}

static bool valid_rune(uint32_t r)
{
    return r <= 0x10ffff && !(r >= 0xd800 && r <= 0xdfff);
}

static int put_rune(cr_buf *out, uint32_t r)
{
    uint8_t tmp[4];
    return cr_buf_append(out, tmp, (size_t)cr_utf8_encode(r, tmp));
}

/* Decode the escape at p[0] == '\\'; returns the bytes consumed, or 0 if
 * Go would reject it. */
static size_t unescape_one(cr_buf *out, const uint8_t *p, size_t avail, int *err)
{
    if (avail < 2) return 0;
    uint8_t c = p[1];
    uint32_t v;
    switch (c) {
    case 'a': *err = cr_buf_putc(out, '\a'); return 2;
    case 'b': *err = cr_buf_putc(out, '\b'); return 2;
    case 'f': *err = cr_buf_putc(out, '\f'); return 2;
    case 'n': *err = cr_buf_putc(out, '\n'); return 2;
    case 'r': *err = cr_buf_putc(out, '\r'); return 2;
    case 't': *err = cr_buf_putc(out, '\t'); return 2;
    case 'v': *err = cr_buf_putc(out, '\v'); return 2;
    case '\\': *err = cr_buf_putc(out, '\\'); return 2;
    case '"': *err = cr_buf_putc(out, '"'); return 2;
    case 'x':
        if (!read_hex(p + 2, avail - 2, 2, &v)) return 0;
        *err = cr_buf_putc(out, (char)v); /* a single byte, maybe not UTF-8 */
        return 4;
    case 'u':
    case 'U': {
        int digits = c == 'u' ? 4 : 8;
        if (!read_hex(p + 2, avail - 2, digits, &v) || !valid_rune(v)) return 0;
        *err = put_rune(out, v);
        return 2 + (size_t)digits;
    }
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        if (avail < 4) return 0;
        v = c - '0';
        for (int i = 2; i < 4; i++) {
            if (p[i] < '0' || p[i] > '7') return 0;
            v = v << 3 | (uint32_t)(p[i] - '0');
        }
        if (v > 255) return 0;
        *err = cr_buf_putc(out, (char)v);
        return 4;
    default:
        return 0; /* includes \' : Go only allows it in rune literals */
    }
}

static int unquote_fail(cr_buf *out, size_t old_len, size_t at, const char *what)
{
    out->len = old_len;
    return cr_error(CR_E_FORMAT, "invalid quoted string: %s at byte %zu", what, at);
}

int cr_gounquote(cr_buf *out, const char *s, size_t n)
{
    const uint8_t *p = n ? (const uint8_t *)s : (const uint8_t *)"";
    size_t old_len = out->len, i = 0;
    CR_TRY(cr_buf_reserve(out, n));
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] < 0x80 && p[run] != '\\' && p[run] != '"' && p[run] != '\n') run++;
        CR_TRY(cr_buf_append(out, p + i, run - i));
        i = run;
        if (i == n) break;
        uint8_t c = p[i];
        if (c == '"') return unquote_fail(out, old_len, i, "unescaped '\"'");
        if (c == '\n') return unquote_fail(out, old_len, i, "raw newline");
        if (c == '\\') {
            int err = 0;
            size_t used = unescape_one(out, p + i, n - i, &err);
            if (err < 0) return err;
            if (!used) return unquote_fail(out, old_len, i, "bad escape");
            i += used;
            continue;
        }
        uint32_t r;
        int len = cr_utf8_decode(p + i, n - i, &r);
        if (len == 0) { /* Go decodes a stray byte as U+FFFD */
            CR_TRY(put_rune(out, 0xfffd));
            i++;
        } else {
            CR_TRY(cr_buf_append(out, p + i, (size_t)len));
            i += (size_t)len;
        }
    }
    return 0;
}
