#include "util/json.h"
#include "util/error.h"
#include "util/goquote.h"

#include <stdlib.h>
#include <string.h>

/* ======================================================================
 * Reader
 * ====================================================================== */

typedef struct node_chunk node_chunk;
struct node_chunk {
    node_chunk *next;
    size_t cap, used;
    cr_json nodes[];
};

struct cr_json_doc {
    cr_json root;
    node_chunk *chunks;
    char strings[]; /* every decoded string and number text, NUL-terminated */
};

typedef struct {
    const uint8_t *start, *p, *end;
    char *out; /* next free byte in doc->strings */
    cr_json_doc *doc;
    cr_json *stack; /* children of the containers being parsed */
    size_t stack_len, stack_cap;
    size_t chunk_nodes; /* size of the next node chunk */
    int depth;
} parser;

#define MAX_CHUNK_NODES ((size_t)1 << 20)

static int fail(const parser *P, const char *what)
{
    return cr_error(CR_E_FORMAT, "JSON: %s at offset %zu", what, (size_t)(P->p - P->start));
}

static void skip_ws(parser *P)
{
    while (P->p < P->end && (*P->p == ' ' || *P->p == '\n' || *P->p == '\r' || *P->p == '\t')) P->p++;
}

/* ---- node storage ---------------------------------------------------- */

static node_chunk *new_chunk(size_t cap)
{
    node_chunk *c = malloc(sizeof *c + cap * sizeof(cr_json));
    if (!c) return NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

/* Room for `count` contiguous nodes that live as long as the document. */
static cr_json *alloc_nodes(parser *P, size_t count)
{
    node_chunk *head = P->doc->chunks;
    if (head && head->cap - head->used >= count) {
        cr_json *r = head->nodes + head->used;
        head->used += count;
        return r;
    }
    if (head && count > P->chunk_nodes / 2) {
        /* A big array gets its own chunk behind the head, which keeps its
         * free room for the small ones that follow. */
        node_chunk *c = new_chunk(count);
        if (!c) return NULL;
        c->used = count;
        c->next = head->next;
        head->next = c;
        return c->nodes;
    }
    size_t cap = count > P->chunk_nodes ? count : P->chunk_nodes;
    node_chunk *c = new_chunk(cap);
    if (!c) return NULL;
    c->next = head;
    P->doc->chunks = c;
    if (P->chunk_nodes < MAX_CHUNK_NODES) P->chunk_nodes *= 2;
    c->used = count;
    return c->nodes;
}

static int push(parser *P, const cr_json *v)
{
    if (P->stack_len == P->stack_cap) {
        size_t cap = P->stack_cap ? P->stack_cap * 2 : 64;
        cr_json *s = realloc(P->stack, cap * sizeof *s);
        if (!s) return cr_error(-ENOMEM, "out of memory parsing JSON");
        P->stack = s;
        P->stack_cap = cap;
    }
    P->stack[P->stack_len++] = *v;
    return 0;
}

/* Move the children pushed since `base` into the document. */
static int finish_container(parser *P, cr_json *v, size_t base)
{
    size_t count = P->stack_len - base;
    v->len = (uint32_t)count; /* count < input size < 4 GiB */
    if (count == 0) return 0;
    cr_json *kids = alloc_nodes(P, count);
    if (!kids) return cr_error(-ENOMEM, "out of memory parsing JSON");
    memcpy(kids, P->stack + base, count * sizeof *kids);
    v->kids = kids;
    P->stack_len = base;
    return 0;
}

/* ---- strings ---------------------------------------------------------- */

/* Bytes that end a plain run inside a string: '"', '\\' and controls. */
static const uint8_t string_stop[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1,
};

static int hex4(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
    if (end - p < 4) return -1;
    uint32_t acc = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        int h = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) return -1;
        acc = acc << 4 | (uint32_t)h;
    }
    *v = acc;
    return 0;
}

/* P->p at 'u' of "\u": decode one escape (or a surrogate pair) to d. */
static int decode_u_escape(parser *P, char **d)
{
    uint32_t r, low;
    if (hex4(P->p + 1, P->end, &r) < 0) return fail(P, "invalid \\u escape");
    P->p += 5;
    if (r >= 0xd800 && r <= 0xdfff) {
        /* Go joins a high+low pair; anything else is one U+FFFD and the
         * following escape (if any) is decoded on its own. */
        bool paired = r <= 0xdbff && P->end - P->p >= 6 && P->p[0] == '\\' && P->p[1] == 'u' &&
                      hex4(P->p + 2, P->end, &low) == 0 && low >= 0xdc00 && low <= 0xdfff;
        if (paired) {
            r = 0x10000 + ((r - 0xd800) << 10) + (low - 0xdc00);
            P->p += 6;
        } else {
            r = 0xfffd;
        }
    }
    *d += cr_utf8_encode(r, (uint8_t *)*d);
    return 0;
}

static int decode_escape(parser *P, char **d)
{
    P->p++; /* the backslash */
    if (P->p == P->end) return fail(P, "unterminated string");
    char c;
    switch (*P->p) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': return decode_u_escape(P, d);
    default: return fail(P, "invalid escape in string");
    }
    *(*d)++ = c;
    P->p++;
    return 0;
}

/* P->p at the opening quote.  Decoded bytes go to the string area, which
 * cannot overflow: a string never decodes to more bytes than its source
 * (quotes included) occupies. */
static int parse_string(parser *P, const char **str, uint32_t *len)
{
    const uint8_t *p = P->p + 1, *end = P->end;
    char *d = P->out;
    *str = d;
    for (;;) {
        /* Copy the plain run; 8 bytes at a time while none is special. */
        while (end - p >= 8 && !(string_stop[p[0]] | string_stop[p[1]] | string_stop[p[2]] |
                                 string_stop[p[3]] | string_stop[p[4]] | string_stop[p[5]] |
                                 string_stop[p[6]] | string_stop[p[7]])) {
            memcpy(d, p, 8);
            d += 8, p += 8;
        }
        while (p < end && !string_stop[*p]) *d++ = (char)*p++;
        P->p = p;
        if (p == end) return fail(P, "unterminated string");
        if (*p == '"') break;
        if (*p < 0x20) return fail(P, "control character in string");
        CR_TRY(decode_escape(P, &d));
        p = P->p;
    }
    P->p = p + 1;
    *len = (uint32_t)(d - *str);
    *d++ = 0;
    P->out = d;
    return 0;
}

/* ---- scalars ------------------------------------------------------------ */

static bool is_digit(const parser *P, const uint8_t *p)
{
    return p < P->end && *p >= '0' && *p <= '9';
}

static const uint8_t *skip_digits(const parser *P, const uint8_t *p)
{
    while (is_digit(P, p)) p++;
    return p;
}

static int number_fail(parser *P, const uint8_t *at)
{
    P->p = at;
    return fail(P, "invalid number");
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ; a leading zero ends the
 * number, so "01" fails on the '1' that follows. */
static int parse_number(parser *P, cr_json *v)
{
    const uint8_t *p = P->p;
    if (*p == '-') p++;
    if (!is_digit(P, p)) return number_fail(P, p);
    p = *p == '0' ? p + 1 : skip_digits(P, p);
    if (p < P->end && *p == '.') {
        if (!is_digit(P, ++p)) return number_fail(P, p);
        p = skip_digits(P, p);
    }
    if (p < P->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < P->end && (*p == '+' || *p == '-')) p++;
        if (!is_digit(P, p)) return number_fail(P, p);
        p = skip_digits(P, p);
    }
    size_t len = (size_t)(p - P->p);
    v->type = CR_JSON_NUMBER;
    v->str = P->out;
    v->len = (uint32_t)len;
    memcpy(P->out, P->p, len);
    P->out[len] = 0;
    P->out += len + 1;
    P->p = p;
    return 0;
}

static int parse_literal(parser *P, cr_json *v, const char *word, cr_json_type type)
{
    size_t len = strlen(word);
    if ((size_t)(P->end - P->p) < len || memcmp(P->p, word, len) != 0) return fail(P, "invalid literal");
    P->p += len;
    v->type = type;
    return 0;
}

/* ---- containers --------------------------------------------------------- */

static int parse_value(parser *P, cr_json *v);

static int enter(parser *P)
{
    if (++P->depth > CR_JSON_MAX_DEPTH) return fail(P, "nesting too deep");
    P->p++; /* '[' or '{' */
    skip_ws(P);
    return 0;
}

/* After a member or element: ',' (more follow) returns 1, `close` returns 0. */
static int next_or_close(parser *P, uint8_t close)
{
    skip_ws(P);
    if (P->p < P->end && *P->p == ',') {
        P->p++;
        return 1;
    }
    if (P->p < P->end && *P->p == close) {
        P->p++;
        return 0;
    }
    return fail(P, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
}

static int parse_array(parser *P, cr_json *v)
{
    CR_TRY(enter(P));
    v->type = CR_JSON_ARRAY;
    size_t base = P->stack_len;
    if (P->p < P->end && *P->p == ']') {
        P->p++;
    } else {
        int more;
        do {
            cr_json kid;
            CR_TRY(parse_value(P, &kid));
            CR_TRY(push(P, &kid));
            CR_TRY(more = next_or_close(P, ']'));
        } while (more);
    }
    P->depth--;
    return finish_container(P, v, base);
}

static int parse_member(parser *P)
{
    skip_ws(P);
    if (P->p == P->end || *P->p != '"') return fail(P, "expected member name");
    const char *key;
    uint32_t keylen;
    CR_TRY(parse_string(P, &key, &keylen));
    skip_ws(P);
    if (P->p == P->end || *P->p != ':') return fail(P, "expected ':'");
    P->p++;
    cr_json kid;
    CR_TRY(parse_value(P, &kid));
    kid.key = key;
    kid.keylen = keylen;
    return push(P, &kid);
}

static int parse_object(parser *P, cr_json *v)
{
    CR_TRY(enter(P));
    v->type = CR_JSON_OBJECT;
    size_t base = P->stack_len;
    if (P->p < P->end && *P->p == '}') {
        P->p++;
    } else {
        int more;
        do {
            CR_TRY(parse_member(P));
            CR_TRY(more = next_or_close(P, '}'));
        } while (more);
    }
    P->depth--;
    return finish_container(P, v, base);
}

static int parse_value(parser *P, cr_json *v)
{
    *v = (cr_json){0};
    skip_ws(P);
    if (P->p == P->end) return fail(P, "unexpected end of input");
    switch (*P->p) {
    case '{': return parse_object(P, v);
    case '[': return parse_array(P, v);
    case '"':
        v->type = CR_JSON_STRING;
        return parse_string(P, &v->str, &v->len);
    case 't': return parse_literal(P, v, "true", CR_JSON_TRUE);
    case 'f': return parse_literal(P, v, "false", CR_JSON_FALSE);
    case 'n': return parse_literal(P, v, "null", CR_JSON_NULL);
    case '-':
    case '0' ... '9': return parse_number(P, v);
    default: return fail(P, "unexpected character");
    }
}

/* ---- document ------------------------------------------------------------ */

void cr_json_free(cr_json_doc *doc)
{
    if (!doc) return;
    for (node_chunk *c = doc->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(doc);
}

int cr_json_parse(const char *text, size_t n, cr_json_doc **out)
{
    *out = NULL;
    if (!text) text = ""; /* n must be 0; avoids arithmetic on NULL */
    if (n >= UINT32_MAX) return cr_error(CR_E_FORMAT, "JSON: document too large (%zu bytes)", n);
    /* The string area needs at most n + 1 bytes: every string decodes to
     * fewer bytes than its quoted source, and every number is followed by a
     * byte outside any token, or by the end of the input. */
    cr_json_doc *doc = malloc(sizeof *doc + n + 1);
    if (!doc) return cr_error(-ENOMEM, "out of memory parsing JSON (%zu bytes)", n);
    doc->chunks = NULL;
    parser P = {
        .start = (const uint8_t *)text,
        .p = (const uint8_t *)text,
        .end = (const uint8_t *)text + n,
        .out = doc->strings,
        .doc = doc,
        /* Roughly one node per 20-40 input bytes; later chunks double. */
        .chunk_nodes = n / 32 + 16 < MAX_CHUNK_NODES ? n / 32 + 16 : MAX_CHUNK_NODES,
    };
    int r = parse_value(&P, &doc->root);
    if (r >= 0) {
        skip_ws(&P);
        if (P.p != P.end) r = fail(&P, "unexpected data after the top-level value");
    }
    free(P.stack);
    if (r < 0) {
        cr_json_free(doc);
        return r;
    }
    *out = doc;
    return 0;
}

const cr_json *cr_json_root(const cr_json_doc *doc)
{
    return &doc->root;
}

/* ---- lookup ------------------------------------------------------------- */

static uint8_t ascii_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool ascii_fold_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((uint8_t)a[i]) != ascii_lower((uint8_t)b[i])) return false;
    return true;
}

/* Go's case folding of a member key against an (ASCII) field name, for keys
 * of a different length: only U+212A (for k) and U+017F (for s) can make
 * them equal. */
static bool key_folds_to(const char *key, size_t klen, const char *name, size_t nlen)
{
    static const char kelvin[] = "\xe2\x84\xaa", long_s[] = "\xc5\xbf";
    size_t i = 0, j = 0;
    while (i < klen && j < nlen) {
        uint8_t k = (uint8_t)key[i], c = ascii_lower((uint8_t)name[j]);
        if (ascii_lower(k) == c) {
            i++, j++;
        } else if (c == 'k' && klen - i >= 3 && memcmp(key + i, kelvin, 3) == 0) {
            i += 3, j++;
        } else if (c == 's' && klen - i >= 2 && memcmp(key + i, long_s, 2) == 0) {
            i += 2, j++;
        } else {
            return false;
        }
    }
    return i == klen && j == nlen;
}

const cr_json *cr_json_get(const cr_json *obj, const char *name)
{
    if (!obj || obj->type != CR_JSON_OBJECT) return NULL;
    size_t nlen = strlen(name);
    uint8_t first = ascii_lower((uint8_t)name[0]);
    /* Lead byte of U+212A / U+017F, which fold onto k / s. */
    uint8_t first_alt = first == 'k' ? 0xe2 : first == 's' ? 0xc5 : 0;
    /* Backwards: the last matching member is the one Go keeps. */
    for (uint32_t i = obj->len; i-- > 0;) {
        const cr_json *m = &obj->kids[i];
        uint8_t k0 = m->keylen ? (uint8_t)m->key[0] : 0;
        if (ascii_lower(k0) != first && !(first_alt && k0 == first_alt)) continue;
        bool match = m->keylen == nlen ? ascii_fold_eq(m->key, name, nlen)
                                       : key_folds_to(m->key, m->keylen, name, nlen);
        if (match) return m;
    }
    return NULL;
}

/* ---- integers ------------------------------------------------------------ */

static int not_integer(const cr_json *v, const char *type)
{
    if (!v) return cr_error(CR_E_FORMAT, "JSON: missing %s value", type);
    if (v->type != CR_JSON_NUMBER) return cr_error(CR_E_FORMAT, "JSON: expected a number (%s)", type);
    return cr_error(CR_E_FORMAT, "JSON: cannot use number %.*s as %s", (int)(v->len > 40 ? 40 : v->len),
                    v->str, type);
}

/* The magnitude of an integer-valued number; *neg tells the sign. */
static int magnitude(const cr_json *v, const char *type, bool *neg, uint64_t *mag)
{
    if (!v || v->type != CR_JSON_NUMBER) return not_integer(v, type);
    const char *s = v->str, *end = v->str + v->len;
    *neg = *s == '-';
    if (*neg) s++;
    uint64_t acc = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9') return not_integer(v, type); /* '.', 'e', 'E' */
        unsigned d = (unsigned)(*s - '0');
        if (acc > (UINT64_MAX - d) / 10) return not_integer(v, type);
        acc = acc * 10 + d;
    }
    *mag = acc;
    return 0;
}

int cr_json_u64(const cr_json *v, uint64_t *out)
{
    bool neg;
    uint64_t mag;
    CR_TRY(magnitude(v, "uint64", &neg, &mag));
    if (neg) return not_integer(v, "uint64");
    *out = mag;
    return 0;
}

int cr_json_u32(const cr_json *v, uint32_t *out)
{
    bool neg;
    uint64_t mag;
    CR_TRY(magnitude(v, "uint32", &neg, &mag));
    if (neg || mag > UINT32_MAX) return not_integer(v, "uint32");
    *out = (uint32_t)mag;
    return 0;
}

int cr_json_i64(const cr_json *v, int64_t *out)
{
    bool neg;
    uint64_t mag;
    CR_TRY(magnitude(v, "int64", &neg, &mag));
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return not_integer(v, "int64");
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > INT64_MAX) return not_integer(v, "int64");
        *out = (int64_t)mag;
    }
    return 0;
}

/* ======================================================================
 * Writer
 * ====================================================================== */

static const char hexdigits[] = "0123456789abcdef";

/* ASCII bytes Go's HTML-safe encoder writes unchanged. */
static const uint8_t json_plain[128] = {
    [' ' ... '!'] = 1, ['#' ... '%'] = 1, ['\'' ... ';'] = 1, ['='] = 1,
    ['?' ... '['] = 1, [']' ... 0x7f] = 1, /* not: " & < > \ */
};

static int put_ascii_escape(cr_buf *b, uint8_t c)
{
    switch (c) {
    case '"': return cr_buf_append(b, "\\\"", 2);
    case '\\': return cr_buf_append(b, "\\\\", 2);
    case '\n': return cr_buf_append(b, "\\n", 2);
    case '\r': return cr_buf_append(b, "\\r", 2);
    case '\t': return cr_buf_append(b, "\\t", 2);
    default: { /* other controls (Go 1.19: \b and \f too) and < > & */
        char e[6] = {'\\', 'u', '0', '0', hexdigits[c >> 4], hexdigits[c & 15]};
        return cr_buf_append(b, e, 6);
    }
    }
}

int cr_json_put_string(cr_buf *b, const void *s, size_t n)
{
    const uint8_t *p = n ? s : (const uint8_t *)""; /* s may be NULL when n == 0 */
    size_t i = 0, plain = 0; /* p[plain..i) is pending verbatim output */
    CR_TRY(cr_buf_reserve(b, n + 2));
    b->data[b->len++] = '"';
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80 && json_plain[c]) {
            i++;
            continue;
        }
        uint32_t r = 0;
        int len = c < 0x80 ? 1 : cr_utf8_decode(p + i, n - i, &r);
        if (len > 1 && r != 0x2028 && r != 0x2029) {
            i += (size_t)len;
            continue;
        }
        CR_TRY(cr_buf_append(b, p + plain, i - plain));
        if (c < 0x80) {
            CR_TRY(put_ascii_escape(b, c));
            i++;
        } else if (len == 0) {
            CR_TRY(cr_buf_append(b, "\\ufffd", 6));
            i++;
        } else {
            CR_TRY(cr_buf_append(b, r == 0x2028 ? "\\u2028" : "\\u2029", 6));
            i += 3;
        }
        plain = i;
    }
    CR_TRY(cr_buf_append(b, p + plain, n - plain));
    return cr_buf_putc(b, '"');
}

int cr_json_put_cstr(cr_buf *b, const char *s)
{
    return cr_json_put_string(b, s, strlen(s));
}

int cr_json_put_u64(cr_buf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return cr_buf_append(b, tmp + i, sizeof tmp - i);
}

int cr_json_put_i64(cr_buf *b, int64_t v)
{
    if (v >= 0) return cr_json_put_u64(b, (uint64_t)v);
    CR_TRY(cr_buf_putc(b, '-'));
    return cr_json_put_u64(b, (uint64_t)0 - (uint64_t)v); /* also right for INT64_MIN */
}

/* ---- base64 --------------------------------------------------------------- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int cr_base64_encode(cr_buf *b, const void *data, size_t n)
{
    const uint8_t *p = data;
    CR_TRY(cr_buf_reserve(b, (n + 2) / 3 * 4));
    char *o = (char *)b->data + b->len;
    size_t i = 0;
    for (; n - i >= 3; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64_alphabet[w >> 18];
        *o++ = b64_alphabet[w >> 12 & 63];
        *o++ = b64_alphabet[w >> 6 & 63];
        *o++ = b64_alphabet[w & 63];
    }
    if (n - i) {
        uint32_t w = (uint32_t)p[i] << 16 | (n - i == 2 ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = b64_alphabet[w >> 18];
        *o++ = b64_alphabet[w >> 12 & 63];
        *o++ = n - i == 2 ? b64_alphabet[w >> 6 & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - (char *)b->data);
    return 0;
}

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Next significant character at or after *i (Go skips CR and LF). */
static int b64_next(const char *s, size_t n, size_t *i)
{
    while (*i < n && (s[*i] == '\r' || s[*i] == '\n')) (*i)++;
    return *i < n ? (uint8_t)s[*i] : -1;
}

static int b64_bad(size_t at)
{
    return cr_error(CR_E_FORMAT, "invalid base64 data at input byte %zu", at);
}

int cr_base64_decode(cr_buf *out, const char *s, size_t n)
{
    cr_buf_reset(out);
    CR_TRY(cr_buf_reserve(out, n / 4 * 3 + 3));
    size_t i = 0;
    for (;;) {
        uint32_t w = 0;
        int got = 0; /* sextets in this quantum */
        while (got < 4) {
            int c = b64_next(s, n, &i);
            if (c < 0) {
                if (got == 0) return 0; /* clean end */
                return b64_bad(n);      /* padding is required */
            }
            if (c == '=') break;
            int v = b64_value((uint8_t)c);
            if (v < 0) return b64_bad(i);
            w = w << 6 | (uint32_t)v;
            got++, i++;
        }
        if (got == 4) {
            uint8_t t[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
            CR_TRY(cr_buf_append(out, t, 3));
            continue;
        }
        /* Padding: "xx==" or "xxx=", then nothing but line breaks. */
        if (got < 2) return b64_bad(i);
        i++; /* the first '=' */
        if (got == 2) {
            if (b64_next(s, n, &i) != '=') return b64_bad(i);
            i++;
        }
        if (b64_next(s, n, &i) >= 0) return b64_bad(i);
        w <<= 6 * (4 - got);
        uint8_t t[2] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8)};
        return cr_buf_append(out, t, (size_t)got - 1);
    }
}
