/* Output helpers shared by the read-only commands; see output.h. */
#include "cli/output.h"

#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repo/index.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/goquote.h"
#include "util/json.h"

/* ---- display width ------------------------------------------------------ */

/* East Asian Wide and Fullwidth code points (assigned ones, Unicode 14):
 * the characters a terminal draws two cells wide, as restic's
 * ui.DisplayWidth counts them. */
static const uint32_t wide_ranges[][2] = {
    {0x1100, 0x115f}, {0x231a, 0x231b}, {0x2329, 0x232a}, {0x23e9, 0x23ec}, {0x23f0, 0x23f0},
    {0x23f3, 0x23f3}, {0x25fd, 0x25fe}, {0x2614, 0x2615}, {0x2648, 0x2653}, {0x267f, 0x267f},
    {0x2693, 0x2693}, {0x26a1, 0x26a1}, {0x26aa, 0x26ab}, {0x26bd, 0x26be}, {0x26c4, 0x26c5},
    {0x26ce, 0x26ce}, {0x26d4, 0x26d4}, {0x26ea, 0x26ea}, {0x26f2, 0x26f3}, {0x26f5, 0x26f5},
    {0x26fa, 0x26fa}, {0x26fd, 0x26fd}, {0x2705, 0x2705}, {0x270a, 0x270b}, {0x2728, 0x2728},
    {0x274c, 0x274c}, {0x274e, 0x274e}, {0x2753, 0x2755}, {0x2757, 0x2757}, {0x2795, 0x2797},
    {0x27b0, 0x27b0}, {0x27bf, 0x27bf}, {0x2b1b, 0x2b1c}, {0x2b50, 0x2b50}, {0x2b55, 0x2b55},
    {0x2e80, 0x2e99}, {0x2e9b, 0x2ef3}, {0x2f00, 0x2fd5}, {0x2ff0, 0x2ffb}, {0x3000, 0x303e},
    {0x3041, 0x3096}, {0x3099, 0x30ff}, {0x3105, 0x312f}, {0x3131, 0x318e}, {0x3190, 0x31e3},
    {0x31f0, 0x321e}, {0x3220, 0x3247}, {0x3250, 0x4dbf}, {0x4e00, 0xa48c}, {0xa490, 0xa4c6},
    {0xa960, 0xa97c}, {0xac00, 0xd7a3}, {0xf900, 0xfa6d}, {0xfa70, 0xfad9}, {0xfe10, 0xfe19},
    {0xfe30, 0xfe52}, {0xfe54, 0xfe66}, {0xfe68, 0xfe6b}, {0xff01, 0xff60}, {0xffe0, 0xffe6},
    {0x16fe0, 0x16fe4}, {0x16ff0, 0x16ff1}, {0x17000, 0x187f7}, {0x18800, 0x18cd5}, {0x18d00, 0x18d08},
    {0x1aff0, 0x1aff3}, {0x1aff5, 0x1affb}, {0x1affd, 0x1affe}, {0x1b000, 0x1b122}, {0x1b150, 0x1b152},
    {0x1b164, 0x1b167}, {0x1b170, 0x1b2fb}, {0x1f004, 0x1f004}, {0x1f0cf, 0x1f0cf}, {0x1f18e, 0x1f18e},
    {0x1f191, 0x1f19a}, {0x1f200, 0x1f202}, {0x1f210, 0x1f23b}, {0x1f240, 0x1f248}, {0x1f250, 0x1f251},
    {0x1f260, 0x1f265}, {0x1f300, 0x1f320}, {0x1f32d, 0x1f335}, {0x1f337, 0x1f37c}, {0x1f37e, 0x1f393},
    {0x1f3a0, 0x1f3ca}, {0x1f3cf, 0x1f3d3}, {0x1f3e0, 0x1f3f0}, {0x1f3f4, 0x1f3f4}, {0x1f3f8, 0x1f43e},
    {0x1f440, 0x1f440}, {0x1f442, 0x1f4fc}, {0x1f4ff, 0x1f53d}, {0x1f54b, 0x1f54e}, {0x1f550, 0x1f567},
    {0x1f57a, 0x1f57a}, {0x1f595, 0x1f596}, {0x1f5a4, 0x1f5a4}, {0x1f5fb, 0x1f64f}, {0x1f680, 0x1f6c5},
    {0x1f6cc, 0x1f6cc}, {0x1f6d0, 0x1f6d2}, {0x1f6d5, 0x1f6d7}, {0x1f6dd, 0x1f6df}, {0x1f6eb, 0x1f6ec},
    {0x1f6f4, 0x1f6fc}, {0x1f7e0, 0x1f7eb}, {0x1f7f0, 0x1f7f0}, {0x1f90c, 0x1f93a}, {0x1f93c, 0x1f945},
    {0x1f947, 0x1f9ff}, {0x1fa70, 0x1fa74}, {0x1fa78, 0x1fa7c}, {0x1fa80, 0x1fa86}, {0x1fa90, 0x1faac},
    {0x1fab0, 0x1faba}, {0x1fac0, 0x1fac5}, {0x1fad0, 0x1fad9}, {0x1fae0, 0x1fae7}, {0x1faf0, 0x1faf6},
    {0x20000, 0x2a6df}, {0x2a700, 0x2b738}, {0x2b740, 0x2b81d}, {0x2b820, 0x2cea1}, {0x2ceb0, 0x2ebe0},
    {0x2f800, 0x2fa1d}, {0x30000, 0x3134a},
};

static bool rune_is_wide(uint32_t r)
{
    size_t lo = 0, hi = sizeof wide_ranges / sizeof wide_ranges[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r < wide_ranges[mid][0]) hi = mid;
        else if (r > wide_ranges[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

size_t cr_display_width(const char *s, size_t n)
{
    size_t width = 0;
    for (size_t i = 0; i < n;) {
        uint32_t r;
        int len = cr_utf8_decode((const uint8_t *)s + i, n - i, &r);
        if (len <= 0) { /* an invalid byte is U+FFFD for Go: one cell */
            width++;
            i++;
            continue;
        }
        width += rune_is_wide(r) ? 2 : 1;
        i += (size_t)len;
    }
    return width;
}

/* ---- tables ------------------------------------------------------------- */

struct cr_table {
    char **headers;
    size_t ncols;
    char **cells; /* nrows * ncols */
    size_t nrows, rows_cap;
    char **footer;
    size_t nfooter;
    bool blank_between_rows;
};

int cr_table_new(cr_table **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : cr_error(-ENOMEM, "out of memory");
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

void cr_table_free(cr_table *t)
{
    if (!t) return;
    free_strings(t->headers, t->ncols);
    free_strings(t->cells, t->nrows * t->ncols);
    free_strings(t->footer, t->nfooter);
    free(t);
}

static int push_string(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) return cr_error(-ENOMEM, "out of memory");
    *v = nv;
    if (!(nv[*n] = strdup(s ? s : ""))) return cr_error(-ENOMEM, "out of memory");
    (*n)++;
    return 0;
}

int cr_table_add_column(cr_table *t, const char *header)
{
    if (t->nrows) return cr_error(CR_E_USAGE, "table: columns must be added before rows");
    return push_string(&t->headers, &t->ncols, header);
}

int cr_table_add_row(cr_table *t, const char *const *cells)
{
    size_t n = t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) CR_TRY(push_string(&t->cells, &n, cells[i]));
    t->nrows++;
    return 0;
}

int cr_table_add_footer(cr_table *t, const char *line)
{
    return push_string(&t->footer, &t->nfooter, line);
}

void cr_table_blank_line_between_rows(cr_table *t, bool on)
{
    t->blank_between_rows = on;
}

/* Widest line of a cell. */
static size_t cell_width(const char *cell)
{
    size_t w = 0;
    for (const char *line = cell;;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        size_t lw = cr_display_width(line, len);
        if (lw > w) w = lw;
        if (!nl) return w;
        line = nl + 1;
    }
}

static size_t count_lines(const char *cell)
{
    size_t n = 1;
    for (; *cell; cell++) n += *cell == '\n';
    return n;
}

/* Line `k` of a cell ("" past its end). */
static const char *cell_line(const char *cell, size_t k, size_t *len)
{
    for (; k > 0; k--) {
        const char *nl = strchr(cell, '\n');
        if (!nl) {
            *len = 0;
            return "";
        }
        cell = nl + 1;
    }
    const char *nl = strchr(cell, '\n');
    *len = nl ? (size_t)(nl - cell) : strlen(cell);
    return cell;
}

/* One logical row (maybe several physical lines), padded, right-trimmed. */
static int write_row(FILE *f, char *const *cells, size_t ncols, const size_t *widths)
{
    size_t lines = 1;
    for (size_t c = 0; c < ncols; c++) {
        size_t n = count_lines(cells[c]);
        if (n > lines) lines = n;
    }
    _cleanup_buf_ cr_buf line = CR_BUF_INIT;
    for (size_t k = 0; k < lines; k++) {
        cr_buf_reset(&line);
        for (size_t c = 0; c < ncols; c++) {
            size_t len;
            const char *s = cell_line(cells[c], k, &len);
            if (c > 0) CR_TRY(cr_buf_puts(&line, "  "));
            CR_TRY(cr_buf_append(&line, s, len));
            for (size_t w = cr_display_width(s, len); w < widths[c]; w++) CR_TRY(cr_buf_putc(&line, ' '));
        }
        while (line.len && line.data[line.len - 1] == ' ') line.len--;
        CR_TRY(cr_buf_putc(&line, '\n'));
        if (fwrite(line.data, 1, line.len, f) != line.len) return cr_error(-EIO, "write error");
    }
    return 0;
}

static int write_dashes(FILE *f, size_t n)
{
    for (size_t i = 0; i < n; i++) fputc('-', f);
    return fputc('\n', f) == EOF ? cr_error(-EIO, "write error") : 0;
}

int cr_table_write(const cr_table *t, FILE *f)
{
    if (!t->ncols) return 0;
    _cleanup_free_ size_t *widths = calloc(t->ncols, sizeof *widths);
    if (!widths) return cr_error(-ENOMEM, "out of memory");
    size_t total = 2 * (t->ncols - 1);
    for (size_t c = 0; c < t->ncols; c++) {
        widths[c] = cell_width(t->headers[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = cell_width(t->cells[r * t->ncols + c]);
            if (w > widths[c]) widths[c] = w;
        }
        total += widths[c];
    }
    CR_TRY(write_row(f, t->headers, t->ncols, widths));
    CR_TRY(write_dashes(f, total));
    for (size_t r = 0; r < t->nrows; r++) {
        if (t->blank_between_rows && r > 0) fputc('\n', f);
        CR_TRY(write_row(f, t->cells + r * t->ncols, t->ncols, widths));
    }
    CR_TRY(write_dashes(f, total));
    for (size_t i = 0; i < t->nfooter; i++) fprintf(f, "%s\n", t->footer[i]);
    return ferror(f) ? cr_error(-EIO, "write error") : 0;
}

/* ---- JSON --------------------------------------------------------------- */

static int newline_indent(cr_buf *out, const char *indent, int depth)
{
    CR_TRY(cr_buf_putc(out, '\n'));
    for (int i = 0; i < depth; i++) CR_TRY(cr_buf_puts(out, indent));
    return 0;
}

/* Copy a string token starting at json[*i] == '"'. */
static int copy_string_token(cr_buf *out, const char *json, size_t n, size_t *i)
{
    size_t start = (*i)++;
    while (*i < n && json[*i] != '"') *i += json[*i] == '\\' ? 2 : 1;
    if (*i >= n) return cr_error(CR_E_FORMAT, "unterminated JSON string");
    (*i)++;
    return cr_buf_append(out, json + start, *i - start);
}

int cr_json_indent(cr_buf *out, const char *json, size_t n, const char *indent)
{
    int depth = 0;
    bool pending_open = false; /* after '{' or '[': indent unless it closes at once */
    for (size_t i = 0; i < n;) {
        char c = json[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
            continue;
        }
        bool closing = c == '}' || c == ']';
        if (pending_open) {
            pending_open = false;
            if (closing) { /* "{}" and "[]" stay as they are */
                depth--;
                CR_TRY(cr_buf_putc(out, c));
                i++;
                continue;
            }
            CR_TRY(newline_indent(out, indent, depth));
        }
        if (c == '"') {
            CR_TRY(copy_string_token(out, json, n, &i));
            continue;
        }
        i++;
        if (c == '{' || c == '[') {
            CR_TRY(cr_buf_putc(out, c));
            depth++;
            pending_open = true;
        } else if (closing) {
            depth--;
            CR_TRY(newline_indent(out, indent, depth));
            CR_TRY(cr_buf_putc(out, c));
        } else if (c == ',') {
            CR_TRY(cr_buf_putc(out, c));
            CR_TRY(newline_indent(out, indent, depth));
        } else if (c == ':') {
            CR_TRY(cr_buf_puts(out, ": "));
        } else {
            CR_TRY(cr_buf_putc(out, c));
        }
    }
    return 0;
}

int cr_snapshot_json_with_id(cr_buf *out, const cr_snapshot *sn, const char *extra)
{
    size_t start = out->len;
    CR_TRY(cr_snapshot_encode(sn, out));
    /* Drop the closing brace and continue the object, as Go does for a
     * struct embedding the snapshot with further members. */
    while (out->len > start && out->data[out->len - 1] != '}') out->len--;
    if (out->len == start) return cr_error(CR_E_FORMAT, "snapshot encoding is not an object");
    out->len--;
    char hex[CR_ID_HEX + 1], short_id[9];
    cr_id_to_hex(&sn->id, hex);
    cr_id_short(&sn->id, short_id);
    bool empty = out->len > start && out->data[out->len - 1] == '{';
    return cr_buf_printf(out, "%s\"id\":\"%s\",\"short_id\":\"%s\"%s%s}", empty ? "" : ",", hex, short_id,
                         extra ? "," : "", extra ? extra : "");
}

int cr_write_all(FILE *f, const void *p, size_t n)
{
    /* Our own write loop rather than stdio's: stdio retries a write that a
     * signal cut short, so a reader that stalls would keep us from ever
     * noticing SIGINT. */
    if (fflush(f) != 0) return cr_error_sys(-errno, "write error");
    const uint8_t *s = p;
    int fd = fileno(f);
    while (n > 0) {
        if (cr_interrupted) return cr_error(CR_E_INTERRUPTED, "interrupted");
        ssize_t k = write(fd, s, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return cr_error_sys(-errno, "write error");
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

int cr_write_stdout(const void *p, size_t n)
{
    return cr_write_all(stdout, p, n);
}

/* ---- formatting --------------------------------------------------------- */

void cr_filemode_string(uint32_t mode, char out[33])
{
    static const char type_letters[] = "dalTLDpSugct?";
    size_t w = 0;
    for (int i = 0; type_letters[i]; i++)
        if (mode & (1u << (31 - i))) out[w++] = type_letters[i];
    if (w == 0) out[w++] = '-';
    static const char rwx[] = "rwxrwxrwx";
    for (int i = 0; i < 9; i++) out[w++] = mode & (1u << (8 - i)) ? rwx[i] : '-';
    out[w] = 0;
}

static void format_wall_clock(const cr_time *t, char out[64])
{
    struct tm tm;
    cr_time_civil(t, &tm);
    snprintf(out, 64, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

void cr_format_local_time(const cr_time *t, char out[64])
{
    cr_time local = cr_time_local(t->sec, t->nsec);
    format_wall_clock(&local, out);
}

/* The local zone's abbreviation at an instant, when its offset is `offset`. */
static bool local_zone_name(int64_t sec, int32_t offset, char name[16])
{
    tzset();
    time_t tt = (time_t)sec;
    struct tm tm;
    if (!localtime_r(&tt, &tm) || tm.tm_gmtoff != offset || !tm.tm_zone) return false;
    snprintf(name, 16, "%s", tm.tm_zone);
    return true;
}

int cr_format_go_time(cr_buf *out, const cr_time *t)
{
    char wall[64];
    format_wall_clock(t, wall);
    CR_TRY(cr_buf_puts(out, wall));
    if (t->nsec) {
        char frac[16];
        int len = snprintf(frac, sizeof frac, ".%09d", (int)t->nsec);
        while (frac[len - 1] == '0') len--;
        CR_TRY(cr_buf_append(out, frac, (size_t)len));
    }
    int32_t minutes = t->offset / 60;
    char sign = minutes < 0 ? '-' : '+';
    if (minutes < 0) minutes = -minutes;
    CR_TRY(cr_buf_printf(out, " %c%02d%02d ", sign, (int)(minutes / 60), (int)(minutes % 60)));
    /* Go keeps "Z" times in UTC, an offset that is the local zone's in Local
     * (named by its abbreviation), any other in an unnamed fixed zone that
     * prints as its offset again. */
    char name[16];
    if (t->offset == 0) return cr_buf_puts(out, "UTC");
    if (local_zone_name(t->sec, t->offset, name)) return cr_buf_puts(out, name);
    return cr_buf_printf(out, "%c%02d%02d", sign, (int)(minutes / 60), (int)(minutes % 60));
}

void cr_go_format_bytes(uint64_t bytes, char out[64])
{
    static const struct {
        unsigned shift;
        const char *unit;
    } units[] = {{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (bytes >= (uint64_t)1 << units[i].shift) {
            snprintf(out, 64, "%.3f %s", (double)bytes / (double)((uint64_t)1 << units[i].shift), units[i].unit);
            return;
        }
    snprintf(out, 64, "%llu B", (unsigned long long)bytes);
}

int cr_format_go_strings(cr_buf *out, const char *const *v, size_t n)
{
    CR_TRY(cr_buf_putc(out, '['));
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_putc(out, ' '));
        CR_TRY(cr_buf_puts(out, v[i]));
    }
    return cr_buf_putc(out, ']');
}

/* ---- snapshots and trees ------------------------------------------------ */

int cr_load_tree(cr_repo *r, const cr_id *id, cr_tree **out)
{
    if (!r->index) CR_TRY(cr_repo_load_index(r));
    _cleanup_buf_ cr_buf plain = CR_BUF_INIT;
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    CR_TRY_CTX(cr_repo_load_blob(r, CR_BLOB_TREE, id, &plain), "loading tree %.8s", hex);
    CR_TRY_CTX(cr_tree_parse((const char *)plain.data, plain.len, out), "tree %.8s", hex);
    return 0;
}

int cr_find_tree_dir(cr_repo *r, const cr_id *root, const char *dir, cr_id *out)
{
    cr_id cur = *root;
    _cleanup_buf_ cr_buf walked = CR_BUF_INIT; /* "a/b" so far, for messages */
    CR_TRY(cr_buf_nul(&walked));
    for (const char *p = dir; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        const char *name = p;
        p += len + (slash ? 1 : 0);
        if (len == 0 || (len == 1 && name[0] == '.')) continue;
        if (walked.len) CR_TRY(cr_buf_putc(&walked, '/'));
        CR_TRY(cr_buf_append(&walked, name, len));
        CR_TRY(cr_buf_nul(&walked));
        cr_tree *tree = NULL;
        int e = cr_load_tree(r, &cur, &tree);
        if (e < 0) return cr_error_ctx(e, "path %s", (const char *)walked.data);
        const cr_node *node = cr_tree_find(tree, name, len);
        if (!node) e = cr_error(CR_E_NOTFOUND, "path %s: not found", (const char *)walked.data);
        else if (node->type != CR_NODE_DIR || !node->has_subtree)
            e = cr_error(CR_E_NOTFOUND, "path %s: not a directory", (const char *)walked.data);
        else cur = node->subtree;
        cr_tree_free(tree);
        CR_TRY(e);
    }
    *out = cur;
    return 0;
}

int cr_format_filter(cr_buf *b, const cr_snapshot_filter *f)
{
    CR_TRY(cr_buf_puts(b, "Paths:"));
    CR_TRY(cr_format_go_strings(b, f ? f->paths : NULL, f ? f->npaths : 0));
    CR_TRY(cr_buf_puts(b, " Tags:["));
    for (size_t i = 0; f && i < f->ntag_lists; i++) {
        /* each --tag value is a TagList, printed "[a, b]" */
        CR_TRY(cr_buf_puts(b, i ? " [" : "["));
        for (const char *s = f->tag_lists[i]; *s; s++) CR_TRY(*s == ',' ? cr_buf_puts(b, ", ") : cr_buf_putc(b, *s));
        CR_TRY(cr_buf_putc(b, ']'));
    }
    CR_TRY(cr_buf_puts(b, "] Hosts:"));
    return cr_format_go_strings(b, f ? f->hosts : NULL, f ? f->nhosts : 0);
}

/* restic's message when "latest" finds nothing. */
static int no_latest_error(const cr_snapshot_filter *f)
{
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    CR_TRY(cr_format_filter(&b, f));
    CR_TRY(cr_buf_nul(&b));
    return cr_error(CR_E_NOTFOUND, "snapshot filter (%s): no snapshot found", (const char *)b.data);
}

int cr_cli_find_snapshot(cr_repo *r, const char *ref, const cr_snapshot_filter *f, cr_snapshot *sn, cr_id *tree)
{
    const char *colon = strchr(ref, ':');
    _cleanup_free_ char *id = strndup(ref, colon ? (size_t)(colon - ref) : strlen(ref));
    if (!id) return cr_error(-ENOMEM, "out of memory");
    int e = cr_repo_find_snapshot(r, id, f, sn);
    if (e == CR_E_NOTFOUND && !strcmp(id, "latest")) return no_latest_error(f);
    CR_TRY(e);
    if (!sn->has_tree) {
        cr_snapshot_clear(sn);
        return cr_error(CR_E_FORMAT, "snapshot %s has no tree", id);
    }
    if (!tree) return 0;
    e = cr_find_tree_dir(r, &sn->tree, colon ? colon + 1 : "", tree);
    if (e < 0) cr_snapshot_clear(sn);
    return e;
}

typedef struct {
    cr_repo *r;
    cr_walk_fn visit;
    cr_walk_leave_fn leave;
    void *ud;
    cr_buf path;
    cr_tree_list *keep;
} walker;

void cr_tree_list_free(cr_tree_list *l)
{
    for (size_t i = 0; i < l->n; i++) cr_tree_free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Free a tree after its directory, or hand it to the keep list. */
static int done_with_tree(walker *w, cr_tree *tree)
{
    if (!w->keep) {
        cr_tree_free(tree);
        return 0;
    }
    cr_tree **nv = realloc(w->keep->v, (w->keep->n + 1) * sizeof *nv);
    if (!nv) {
        cr_tree_free(tree);
        return cr_error(-ENOMEM, "out of memory");
    }
    w->keep->v = nv;
    w->keep->v[w->keep->n++] = tree;
    return 0;
}

static int walk_dir(walker *w, const cr_id *id)
{
    cr_tree *tree = NULL;
    CR_TRY(cr_load_tree(w->r, id, &tree));
    size_t base = w->path.len;
    int e = 0;
    for (size_t i = 0; i < tree->n && e >= 0; i++) {
        const cr_node *node = &tree->nodes[i];
        w->path.len = base;
        if (base == 0 || w->path.data[base - 1] != '/') e = cr_buf_putc(&w->path, '/');
        if (e >= 0) e = cr_buf_append(&w->path, node->name, node->name_len);
        if (e >= 0) e = cr_buf_nul(&w->path);
        if (e < 0) break;
        e = w->visit(w->ud, node, (const char *)w->path.data, w->path.len);
        if (e < 0 || e == CR_WALK_SKIP || node->type != CR_NODE_DIR) {
            e = e < 0 ? e : 0;
            continue;
        }
        if (!node->has_subtree) {
            e = cr_error(CR_E_FORMAT, "%s: directory without subtree", (const char *)w->path.data);
            break;
        }
        size_t dirlen = w->path.len;
        e = walk_dir(w, &node->subtree);
        w->path.len = dirlen;
        if (e >= 0 && w->leave) {
            cr_buf_nul(&w->path);
            e = w->leave(w->ud, (const char *)w->path.data, w->path.len);
        }
    }
    w->path.len = base;
    int kept = done_with_tree(w, tree);
    if (e >= 0) e = kept;
    if (cr_interrupted && e >= 0) e = cr_error(CR_E_INTERRUPTED, "interrupted");
    return e;
}

int cr_walk_tree(cr_repo *r, const cr_id *tree, const char *prefix, cr_walk_fn visit, cr_walk_leave_fn leave,
                 void *ud, cr_tree_list *keep)
{
    walker w = {.r = r, .visit = visit, .leave = leave, .ud = ud, .path = CR_BUF_INIT, .keep = keep};
    int e = cr_buf_puts(&w.path, prefix);
    if (e >= 0) e = walk_dir(&w, tree);
    cr_buf_free(&w.path);
    return e;
}
