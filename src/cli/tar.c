/* Archive writers for `dump`; see tar.h for the formats. */
#include "cli/tar.h"

#include "cli/output.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/cleanup.h"
#include "util/error.h"

/* ==== tar ================================================================= */

#define TAR_BLOCK 512

/* Field offsets and sizes of a USTAR header block. */
enum {
    F_NAME = 0, S_NAME = 100,
    F_MODE = 100, S_MODE = 8,
    F_UID = 108, S_UID = 8,
    F_GID = 116, S_GID = 8,
    F_SIZE = 124, S_SIZE = 12,
    F_MTIME = 136, S_MTIME = 12,
    F_CHKSUM = 148, S_CHKSUM = 8,
    F_TYPE = 156,
    F_LINK = 157, S_LINK = 100,
    F_MAGIC = 257,
    F_UNAME = 265, S_UNAME = 32,
    F_GNAME = 297, S_GNAME = 32,
    F_DEVMAJOR = 329, S_DEVMAJOR = 8,
    F_DEVMINOR = 337, S_DEVMINOR = 8,
    F_PREFIX = 345, S_PREFIX = 155,
};

/* Go's time.Time zero value (January 1, year 1): "no time" for archive/tar. */
#define GO_ZERO_TIME_SEC (-62135596800LL)

static int write_all(FILE *f, const void *p, size_t n)
{
    return cr_write_all(f, p, n);
}

static int write_zeros(FILE *f, uint64_t n)
{
    static const uint8_t zeros[TAR_BLOCK];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        CR_TRY(write_all(f, zeros, k));
        n -= k;
    }
    return 0;
}

/* Go's isASCII: only bytes 0x01..0x7f. */
static bool is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] >= 0x80 || s[i] == 0) return false;
    return true;
}

static bool has_nul(const char *s, size_t n)
{
    return memchr(s, 0, n) != NULL;
}

/* Go's toASCII: drop every byte that is not 0x01..0x7f. */
static size_t to_ascii(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] < 0x80 && s[i] != 0) out[k++] = s[i];
    return k;
}

/* formatString: copy, NUL-terminate when shorter; when truncated, a slash
 * at the field's end (which would make a file look like a directory) is cut
 * together with the slashes before it. */
static void format_string(uint8_t *field, size_t size, const char *s, size_t n)
{
    memcpy(field, s, n < size ? n : size);
    if (n < size) field[n] = 0;
    if (n > size && field[size - 1] == '/') {
        size_t k = size - 1;
        while (k > 0 && s[k - 1] == '/') k--;
        field[k] = 0;
    }
}

static bool fits_octal(size_t size, int64_t x)
{
    return x >= 0 && (size >= 22 || x < (int64_t)1 << ((size - 1) * 3));
}

/* Zero-padded octal leaving room for a NUL; 0 when it does not fit (the
 * real value then travels in a PAX record). */
static void format_octal(uint8_t *field, size_t size, int64_t x)
{
    if (!fits_octal(size, x)) x = 0;
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%0*llo", (int)(size - 1), (unsigned long long)x);
    format_string(field, size, digits, (size_t)len);
}

static void set_magic_and_checksum(uint8_t *blk)
{
    memcpy(blk + F_MAGIC, "ustar\0" "00", 8);
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++) sum += i >= F_CHKSUM && i < F_CHKSUM + S_CHKSUM ? ' ' : blk[i];
    format_octal(blk + F_CHKSUM, S_CHKSUM - 1, sum);
    blk[F_CHKSUM + S_CHKSUM - 1] = ' ';
}

/* splitUSTARPath: a long ASCII name split at a '/' into prefix and name. */
static bool split_ustar_path(const char *name, size_t n, size_t *split)
{
    if (n <= S_NAME || !is_ascii(name, n)) return false;
    size_t length = n;
    if (length > S_PREFIX + 1) length = S_PREFIX + 1;
    else if (name[length - 1] == '/') length--;
    ssize_t i = -1;
    for (size_t k = length; k-- > 0;)
        if (name[k] == '/') {
            i = (ssize_t)k;
            break;
        }
    if (i <= 0) return false;
    size_t nlen = n - (size_t)i - 1, plen = (size_t)i;
    if (nlen > S_NAME || nlen == 0 || plen > S_PREFIX) return false;
    *split = plen;
    return true;
}

/* Mtime as archive/tar writes it when no format was asked for: rounded to
 * whole seconds (halves up). */
static int64_t rounded_seconds(const cr_time *t)
{
    return t->sec + (t->nsec >= 500000000 ? 1 : 0);
}

static bool is_go_zero_time(const cr_time *t)
{
    return t->sec == GO_ZERO_TIME_SEC && t->nsec == 0;
}

/* ---- PAX records ---- */

typedef struct {
    char key[256];
    const char *value; /* NULL: the number in num (the array may move) */
    size_t value_len;
    char num[24];
} pax_record;

typedef struct {
    pax_record *v;
    size_t n;
} pax_records;

static int pax_add(pax_records *r, const char *key, const void *value, size_t len, pax_record **out)
{
    if (strlen(key) >= sizeof r->v[0].key) return cr_error(CR_E_FORMAT, "archive/tar: invalid tar header");
    pax_record *p = NULL;
    for (size_t i = 0; i < r->n && !p; i++) /* a map in Go: the later value wins */
        if (!strcmp(r->v[i].key, key)) p = &r->v[i];
    if (!p) {
        pax_record *nv = realloc(r->v, (r->n + 1) * sizeof *nv);
        if (!nv) return cr_error(-ENOMEM, "out of memory");
        r->v = nv;
        p = &r->v[r->n++];
        memset(p, 0, sizeof *p);
        snprintf(p->key, sizeof p->key, "%s", key);
    }
    p->value = value;
    p->value_len = len;
    if (out) *out = p;
    return 0;
}

static int pax_add_number(pax_records *r, const char *key, long long v)
{
    pax_record *p;
    CR_TRY(pax_add(r, key, NULL, 0, &p));
    p->value_len = (size_t)snprintf(p->num, sizeof p->num, "%lld", v);
    p->value = NULL;
    return 0;
}

static int pax_cmp(const void *a, const void *b)
{
    return strcmp(((const pax_record *)a)->key, ((const pax_record *)b)->key);
}

static size_t decimal_digits(size_t v)
{
    size_t n = 1;
    for (; v >= 10; v /= 10) n++;
    return n;
}

/* "<len> key=value\n" where len counts the whole record, itself included. */
static int format_pax_record(cr_buf *out, const pax_record *p)
{
    const char *value = p->value ? p->value : p->num;
    bool path_like = !strcmp(p->key, "path") || !strcmp(p->key, "linkpath") || !strcmp(p->key, "uname") || !strcmp(p->key, "gname");
    if (!p->key[0] || strchr(p->key, '=') || (path_like && has_nul(value, p->value_len)))
        return cr_error(CR_E_FORMAT, "archive/tar: invalid tar header");
    size_t base = strlen(p->key) + p->value_len + 3; /* ' ', '=', '\n' */
    size_t size = base + decimal_digits(base);
    if (decimal_digits(size) + base != size) size = decimal_digits(size) + base;
    CR_TRY(cr_buf_printf(out, "%zu %s=", size, p->key));
    CR_TRY(cr_buf_append(out, value, p->value_len));
    return cr_buf_putc(out, '\n');
}

/* The member name of the extended header: path.Join(dir, "PaxHeaders.0", file). */
static int pax_header_name(const cr_tar_header *h, cr_buf *out)
{
    size_t slash = h->name_len;
    while (slash > 0 && h->name[slash - 1] != '/') slash--;
    size_t dirlen = slash;
    while (dirlen > 0 && h->name[dirlen - 1] == '/') dirlen--;
    if (dirlen) {
        CR_TRY(cr_buf_append(out, h->name, dirlen));
        CR_TRY(cr_buf_putc(out, '/'));
    }
    CR_TRY(cr_buf_puts(out, "PaxHeaders.0"));
    if (slash < h->name_len) {
        CR_TRY(cr_buf_putc(out, '/'));
        CR_TRY(cr_buf_append(out, h->name + slash, h->name_len - slash));
    }
    return 0;
}

/* ---- headers ---- */

/* The header block fields common to USTAR and PAX (templateV7Plus). */
static int fill_block(uint8_t *blk, const cr_tar_header *h, const char *name, size_t name_len, bool ascii_only)
{
    _cleanup_free_ char *tmp = malloc(h->name_len + h->linkname_len + 64 + 1);
    if (!tmp) return cr_error(-ENOMEM, "out of memory");
    const char *uname = h->uname ? h->uname : "", *gname = h->gname ? h->gname : "";
    size_t n;
    blk[F_TYPE] = (uint8_t)h->typeflag;
#define STR(field, size, s, len)                                   \
    do {                                                           \
        if (ascii_only) {                                          \
            n = to_ascii(s, len, tmp);                             \
            format_string(blk + field, size, tmp, n);              \
        } else {                                                   \
            format_string(blk + field, size, s, len);              \
        }                                                          \
    } while (0)
    STR(F_NAME, S_NAME, name, name_len);
    STR(F_LINK, S_LINK, h->linkname ? h->linkname : "", h->linkname_len);
    STR(F_UNAME, S_UNAME, uname, strlen(uname));
    STR(F_GNAME, S_GNAME, gname, strlen(gname));
#undef STR
    format_octal(blk + F_MODE, S_MODE, h->mode);
    format_octal(blk + F_UID, S_UID, (int64_t)h->uid);
    format_octal(blk + F_GID, S_GID, (int64_t)h->gid);
    format_octal(blk + F_SIZE, S_SIZE, (int64_t)h->size);
    format_octal(blk + F_MTIME, S_MTIME, is_go_zero_time(&h->mtime) ? 0 : rounded_seconds(&h->mtime));
    format_octal(blk + F_DEVMAJOR, S_DEVMAJOR, 0);
    format_octal(blk + F_DEVMINOR, S_DEVMINOR, 0);
    return 0;
}

/* Which fields USTAR cannot hold, as PAX records; returns whether USTAR works. */
static int collect_pax(const cr_tar_header *h, pax_records *r, bool *ustar_ok)
{
    const char *uname = h->uname ? h->uname : "", *gname = h->gname ? h->gname : "";
    size_t split;
    *ustar_ok = true;
    if (!is_ascii(h->name, h->name_len) || h->name_len > S_NAME) {
        if (!split_ustar_path(h->name, h->name_len, &split)) *ustar_ok = false;
        CR_TRY(pax_add(r, "path", h->name, h->name_len, NULL));
    }
    const char *link = h->linkname ? h->linkname : "";
    if (!is_ascii(link, h->linkname_len) || h->linkname_len > S_LINK) {
        *ustar_ok = false;
        CR_TRY(pax_add(r, "linkpath", link, h->linkname_len, NULL));
    }
    if (!is_ascii(uname, strlen(uname)) || strlen(uname) > S_UNAME) {
        *ustar_ok = false;
        CR_TRY(pax_add(r, "uname", uname, strlen(uname), NULL));
    }
    if (!is_ascii(gname, strlen(gname)) || strlen(gname) > S_GNAME) {
        *ustar_ok = false;
        CR_TRY(pax_add(r, "gname", gname, strlen(gname), NULL));
    }
    const struct {
        const char *key;
        int64_t v;
        size_t size;
    } nums[] = {{"uid", (int64_t)h->uid, S_UID}, {"gid", (int64_t)h->gid, S_GID}, {"size", (int64_t)h->size, S_SIZE}};
    for (size_t i = 0; i < 3; i++)
        if (!fits_octal(nums[i].size, nums[i].v)) {
            *ustar_ok = false;
            CR_TRY(pax_add_number(r, nums[i].key, nums[i].v));
        }
    int64_t mtime = rounded_seconds(&h->mtime);
    if (!is_go_zero_time(&h->mtime) && !fits_octal(S_MTIME, mtime)) {
        *ustar_ok = false;
        CR_TRY(pax_add_number(r, "mtime", mtime));
    }
    for (size_t i = 0; i < h->nrecords; i++) {
        bool exists = false;
        for (size_t k = 0; k < r->n && !exists; k++) exists = !strcmp(r->v[k].key, h->records[i].key);
        if (!exists) CR_TRY(pax_add(r, h->records[i].key, h->records[i].value, h->records[i].value_len, NULL));
    }
    if (h->nrecords) *ustar_ok = false;
    return 0;
}

static int write_ustar(cr_tar_writer *w, const cr_tar_header *h)
{
    uint8_t blk[TAR_BLOCK] = {0};
    size_t split = 0;
    bool has_prefix = split_ustar_path(h->name, h->name_len, &split);
    const char *name = has_prefix ? h->name + split + 1 : h->name;
    size_t name_len = has_prefix ? h->name_len - split - 1 : h->name_len;
    CR_TRY(fill_block(blk, h, name, name_len, false));
    if (has_prefix) format_string(blk + F_PREFIX, S_PREFIX, h->name, split);
    set_magic_and_checksum(blk);
    return write_all(w->out, blk, sizeof blk);
}

static int write_pax(cr_tar_writer *w, const cr_tar_header *h, pax_records *r)
{
    _cleanup_buf_ cr_buf data = CR_BUF_INIT, xname = CR_BUF_INIT;
    if (r->n > 1) qsort(r->v, r->n, sizeof *r->v, pax_cmp);
    for (size_t i = 0; i < r->n; i++) CR_TRY(format_pax_record(&data, &r->v[i]));
    CR_TRY(pax_header_name(h, &xname));
    /* the extended header: a pseudo-file named after the member */
    uint8_t blk[TAR_BLOCK] = {0};
    size_t n = to_ascii((const char *)xname.data, xname.len, (char *)xname.data);
    if (n > S_NAME) n = S_NAME;
    while (n > 0 && xname.data[n - 1] == '/') n--;
    blk[F_TYPE] = 'x';
    format_string(blk + F_NAME, S_NAME, (const char *)xname.data, n);
    format_octal(blk + F_MODE, S_MODE, 0);
    format_octal(blk + F_UID, S_UID, 0);
    format_octal(blk + F_GID, S_GID, 0);
    format_octal(blk + F_SIZE, S_SIZE, (int64_t)data.len);
    format_octal(blk + F_MTIME, S_MTIME, 0);
    set_magic_and_checksum(blk);
    CR_TRY(write_all(w->out, blk, sizeof blk));
    CR_TRY(write_all(w->out, data.data, data.len));
    CR_TRY(write_zeros(w->out, (TAR_BLOCK - data.len % TAR_BLOCK) % TAR_BLOCK));
    /* then the member's own header, with what fits */
    memset(blk, 0, sizeof blk);
    CR_TRY(fill_block(blk, h, h->name, h->name_len, true));
    set_magic_and_checksum(blk);
    return write_all(w->out, blk, sizeof blk);
}

void cr_tar_init(cr_tar_writer *w, FILE *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

static int finish_member(cr_tar_writer *w)
{
    if (!w->in_member) return 0;
    if (w->remaining) return cr_error(CR_E_FORMAT, "archive/tar: missed writing %llu bytes", (unsigned long long)w->remaining);
    CR_TRY(write_zeros(w->out, w->pad));
    w->in_member = false;
    return 0;
}

int cr_tar_write_header(cr_tar_writer *w, const cr_tar_header *h)
{
    CR_TRY(finish_member(w));
    pax_records r = {0};
    bool ustar_ok;
    int e = collect_pax(h, &r, &ustar_ok);
    if (e >= 0) e = ustar_ok ? write_ustar(w, h) : write_pax(w, h, &r);
    free(r.v);
    CR_TRY(e);
    w->in_member = true;
    w->remaining = h->size;
    w->pad = (TAR_BLOCK - h->size % TAR_BLOCK) % TAR_BLOCK;
    return 0;
}

int cr_tar_write(cr_tar_writer *w, const void *p, size_t n)
{
    if (!w->in_member || n > w->remaining) return cr_error(CR_E_FORMAT, "archive/tar: write too long");
    CR_TRY(write_all(w->out, p, n));
    w->remaining -= n;
    return 0;
}

int cr_tar_close(cr_tar_writer *w)
{
    CR_TRY(finish_member(w));
    return write_zeros(w->out, 2 * TAR_BLOCK);
}

/* ==== zip ================================================================= */

#define ZIP_UINT32MAX 0xffffffffull
#define ZIP_UINT16MAX 0xffffu
#define ZIP_VERSION20 20
#define ZIP_VERSION45 45
#define ZIP_CREATOR_UNIX 3

typedef struct {
    char *name;
    size_t name_len;
    uint16_t creator, reader, flags, method, mtime, mdate;
    uint32_t crc, external;
    uint64_t csize, usize, offset;
    uint8_t extra[9];
    size_t extra_len;
} zip_entry;

struct cr_zip_writer {
    FILE *out;
    uint64_t count; /* bytes written so far */
    zip_entry *v;
    size_t n, cap;
    bool open;      /* an entry with content (not a directory) is open */
};

static uint32_t crc_table[256];

static void crc_init(void)
{
    if (crc_table[1]) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static int zip_out(cr_zip_writer *w, const void *p, size_t n)
{
    CR_TRY(write_all(w->out, p, n));
    w->count += n;
    return 0;
}

static void put16(uint8_t *b, size_t *o, uint16_t v)
{
    b[(*o)++] = (uint8_t)v;
    b[(*o)++] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *b, size_t *o, uint32_t v)
{
    put16(b, o, (uint16_t)v);
    put16(b, o, (uint16_t)(v >> 16));
}

static void put64(uint8_t *b, size_t *o, uint64_t v)
{
    put32(b, o, (uint32_t)v);
    put32(b, o, (uint32_t)(v >> 32));
}

int cr_zip_new(FILE *out, cr_zip_writer **w)
{
    crc_init();
    *w = calloc(1, sizeof **w);
    if (!*w) return cr_error(-ENOMEM, "out of memory");
    (*w)->out = out;
    return 0;
}

void cr_zip_free(cr_zip_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->v[i].name);
    free(w->v);
    free(w);
}

/* Go's fileModeToUnixMode plus the MS-DOS bits SetMode adds. */
static uint32_t external_attrs(uint32_t m)
{
    uint32_t unix_mode;
    switch (m & (0x80000000u | 0x08000000u | 0x02000000u | 0x01000000u | 0x04000000u | 0x00200000u | 0x00080000u)) {
    case 0x80000000u: unix_mode = 0040000; break;
    case 0x08000000u: unix_mode = 0120000; break;
    case 0x02000000u: unix_mode = 0010000; break;
    case 0x01000000u: unix_mode = 0140000; break;
    case 0x04000000u: unix_mode = 0060000; break;
    case 0x04000000u | 0x00200000u: unix_mode = 0020000; break;
    default: unix_mode = 0100000; break;
    }
    if (m & 0x00800000u) unix_mode |= 04000;
    if (m & 0x00400000u) unix_mode |= 02000;
    if (m & 0x00100000u) unix_mode |= 01000;
    uint32_t attrs = (unix_mode | (m & 0777)) << 16;
    if (m & 0x80000000u) attrs |= 0x10; /* MS-DOS directory */
    if (!(m & 0200)) attrs |= 0x01;     /* MS-DOS read-only */
    return attrs;
}

/* Go's detectUTF8: does the name need the UTF-8 flag (and is it valid)? */
static bool name_needs_utf8_flag(const char *s, size_t n)
{
    bool require = false;
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        uint32_t r = c < 0x80 ? c : 0;
        bool valid = len > 0 && i + len <= n;
        for (size_t k = 1; valid && k < len; k++) valid = ((uint8_t)s[i + k] & 0xc0) == 0x80;
        if (valid && len > 1) {
            r = c & (0xff >> (len + 1));
            for (size_t k = 1; k < len; k++) r = r << 6 | ((uint8_t)s[i + k] & 0x3f);
            static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
            valid = r >= min_for_len[len] && r <= 0x10ffff && !(r >= 0xd800 && r <= 0xdfff);
        }
        if (!valid) return false; /* not UTF-8: no flag */
        if (r < 0x20 || r > 0x7d || r == 0x5c) require = true;
        i += len;
    }
    return require;
}

static void msdos_time(const cr_time *t, uint16_t *date, uint16_t *tm_out)
{
    struct tm tm;
    cr_time_civil(t, &tm);
    int year = tm.tm_year + 1900;
    *date = (uint16_t)(tm.tm_mday + ((tm.tm_mon + 1) << 5) + ((year - 1980) << 9));
    *tm_out = (uint16_t)(tm.tm_sec / 2 + (tm.tm_min << 5) + (tm.tm_hour << 11));
}

static int write_local_header(cr_zip_writer *w, const zip_entry *e)
{
    uint8_t b[30];
    size_t o = 0;
    put32(b, &o, 0x04034b50);
    put16(b, &o, e->reader);
    put16(b, &o, e->flags);
    put16(b, &o, e->method);
    put16(b, &o, e->mtime);
    put16(b, &o, e->mdate);
    put32(b, &o, 0); /* crc and sizes follow in the data descriptor */
    put32(b, &o, 0);
    put32(b, &o, 0);
    put16(b, &o, (uint16_t)e->name_len);
    put16(b, &o, (uint16_t)e->extra_len);
    CR_TRY(zip_out(w, b, o));
    CR_TRY(zip_out(w, e->name, e->name_len));
    return zip_out(w, e->extra, e->extra_len);
}

static int finish_entry(cr_zip_writer *w)
{
    if (!w->open) return 0;
    w->open = false;
    zip_entry *e = &w->v[w->n - 1];
    bool zip64 = e->csize >= ZIP_UINT32MAX || e->usize >= ZIP_UINT32MAX;
    if (zip64) e->reader = ZIP_VERSION45;
    uint8_t b[24];
    size_t o = 0;
    put32(b, &o, 0x08074b50);
    put32(b, &o, e->crc);
    if (zip64) {
        put64(b, &o, e->csize);
        put64(b, &o, e->usize);
    } else {
        put32(b, &o, (uint32_t)e->csize);
        put32(b, &o, (uint32_t)e->usize);
    }
    return zip_out(w, b, o);
}

int cr_zip_write_header(cr_zip_writer *w, const cr_zip_header *h)
{
    CR_TRY(finish_entry(w));
    if (h->name_len > ZIP_UINT16MAX) return cr_error(CR_E_FORMAT, "zip: FileHeader.Name too long");
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        zip_entry *nv = realloc(w->v, cap * sizeof *nv);
        if (!nv) return cr_error(-ENOMEM, "out of memory");
        w->v = nv;
        w->cap = cap;
    }
    zip_entry *e = &w->v[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = malloc(h->name_len + 1))) return cr_error(-ENOMEM, "out of memory");
    memcpy(e->name, h->name, h->name_len);
    e->name_len = h->name_len;
    w->n++;
    e->offset = w->count;
    e->creator = ZIP_CREATOR_UNIX << 8 | ZIP_VERSION20;
    e->reader = ZIP_VERSION20;
    e->external = external_attrs(h->gomode);
    if (name_needs_utf8_flag(h->name, h->name_len)) e->flags |= 0x800;
    if (!is_go_zero_time(&h->mtime)) {
        msdos_time(&h->mtime, &e->mdate, &e->mtime);
        size_t o = 0;
        put16(e->extra, &o, 0x5455); /* extended timestamp: mtime only */
        put16(e->extra, &o, 5);
        e->extra[o++] = 1;
        put32(e->extra, &o, (uint32_t)h->mtime.sec);
        e->extra_len = o;
    }
    bool dir = h->name_len && h->name[h->name_len - 1] == '/';
    if (dir) {
        e->method = 0; /* no data descriptor, sizes zero */
    } else {
        e->method = 0; /* stored, followed by a data descriptor */
        e->flags |= 0x8;
    }
    CR_TRY(write_local_header(w, e));
    w->open = !dir;
    return 0;
}

int cr_zip_write(cr_zip_writer *w, const void *p, size_t n)
{
    if (!w->open) return n ? cr_error(CR_E_FORMAT, "zip: write to directory") : 0;
    zip_entry *e = &w->v[w->n - 1];
    e->crc = crc_update(e->crc, p, n);
    e->usize += n;
    e->csize += n;
    return zip_out(w, p, n);
}

static int write_central_entry(cr_zip_writer *w, const zip_entry *e)
{
    uint8_t b[46], z64[28];
    size_t o = 0, zo = 0;
    bool zip64 = e->csize >= ZIP_UINT32MAX || e->usize >= ZIP_UINT32MAX || e->offset >= ZIP_UINT32MAX;
    put32(b, &o, 0x02014b50);
    put16(b, &o, e->creator);
    put16(b, &o, e->reader);
    put16(b, &o, e->flags);
    put16(b, &o, e->method);
    put16(b, &o, e->mtime);
    put16(b, &o, e->mdate);
    put32(b, &o, e->crc);
    if (zip64) {
        put32(b, &o, (uint32_t)ZIP_UINT32MAX);
        put32(b, &o, (uint32_t)ZIP_UINT32MAX);
        put16(z64, &zo, 0x0001);
        put16(z64, &zo, 24);
        put64(z64, &zo, e->usize);
        put64(z64, &zo, e->csize);
        put64(z64, &zo, e->offset);
    } else {
        put32(b, &o, (uint32_t)e->csize);
        put32(b, &o, (uint32_t)e->usize);
    }
    put16(b, &o, (uint16_t)e->name_len);
    put16(b, &o, (uint16_t)(e->extra_len + zo));
    put16(b, &o, 0); /* comment */
    put16(b, &o, 0); /* disk number */
    put16(b, &o, 0); /* internal attributes */
    put32(b, &o, e->external);
    put32(b, &o, e->offset > ZIP_UINT32MAX ? (uint32_t)ZIP_UINT32MAX : (uint32_t)e->offset);
    CR_TRY(zip_out(w, b, o));
    CR_TRY(zip_out(w, e->name, e->name_len));
    CR_TRY(zip_out(w, e->extra, e->extra_len));
    return zip_out(w, z64, zo);
}

static int write_end_records(cr_zip_writer *w, uint64_t start)
{
    uint64_t end = w->count, records = w->n, size = end - start, offset = start;
    uint8_t b[76];
    size_t o = 0;
    if (records >= ZIP_UINT16MAX || size >= ZIP_UINT32MAX || offset >= ZIP_UINT32MAX) {
        put32(b, &o, 0x06064b50); /* zip64 end of central directory */
        put64(b, &o, 56 - 12);
        put16(b, &o, ZIP_VERSION45);
        put16(b, &o, ZIP_VERSION45);
        put32(b, &o, 0);
        put32(b, &o, 0);
        put64(b, &o, records);
        put64(b, &o, records);
        put64(b, &o, size);
        put64(b, &o, offset);
        put32(b, &o, 0x07064b50); /* and its locator */
        put32(b, &o, 0);
        put64(b, &o, end);
        put32(b, &o, 1);
        CR_TRY(zip_out(w, b, o));
        o = 0;
        records = ZIP_UINT16MAX;
        size = offset = ZIP_UINT32MAX;
    }
    put32(b, &o, 0x06054b50);
    put16(b, &o, 0);
    put16(b, &o, 0);
    put16(b, &o, (uint16_t)records);
    put16(b, &o, (uint16_t)records);
    put32(b, &o, (uint32_t)size);
    put32(b, &o, (uint32_t)offset);
    put16(b, &o, 0);
    return zip_out(w, b, o);
}

int cr_zip_close(cr_zip_writer *w)
{
    int e = finish_entry(w);
    uint64_t start = w->count;
    for (size_t i = 0; e >= 0 && i < w->n; i++) e = write_central_entry(w, &w->v[i]);
    if (e >= 0) e = write_end_records(w, start);
    cr_zip_free(w);
    return e;
}
