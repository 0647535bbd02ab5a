/* crestic backup: create a snapshot of files and directories, with restic's
 * flags, messages, JSON output and exit codes (0; 1 fatal; 3 when some
 * source data could not be read; 10/11/12; 130 when interrupted). */
#include "cli/cli.h"
#include "cli/workspace.h"

#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "repo/archive_internal.h"
#include "repo/archiver.h"
#include "repo/excluder.h"
#include "repo/writer.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/goquote.h"
#include "util/json.h"

extern const cr_command cr_cmd_backup;

typedef struct {
    const char *parent, *group_by, *host, *hostname, *time, *stdin_filename, *larger_than;
    bool force, one_fs, exclude_caches, use_stdin, stdin_command, with_atime, ignore_inode, ignore_ctime;
    bool dry_run, no_scan, skip_if_unchanged;
    long read_concurrency;
    cr_strv excludes, iexcludes, exclude_files, iexclude_files, if_present, tags;
    cr_strv files_from, files_from_verbatim, files_from_raw;
} backup_opts;

/* ---- output ---------------------------------------------------------------- */

typedef struct {
    cr_global *g;
    int verbosity;          /* 0 quiet, 1 default, 2 -v, 3 -vv (restic's levels) */
    bool json, tty;
    pthread_mutex_t mu;     /* everything printed, and the fields below */
    int status_lines;       /* status lines currently on the terminal */
    double start;           /* monotonic */
    cr_archiver *arch;
    bool scan_started, scan_done;
    cr_scan_stats totals;
    double scan_start;
    double interval;        /* seconds between status updates; 0 = none */
    volatile int stop;
    pthread_t thread;
    bool thread_running;
    volatile int scan_cancel;
} ui;

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Remove the status lines before printing something else. */
static void clear_status(ui *u)
{
    if (!u->status_lines) return;
    printf("\r\x1b[%dA\x1b[J", u->status_lines);
    u->status_lines = 0;
}

static void vprint(ui *u, FILE *f, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&u->mu);
    clear_status(u);
    vfprintf(f, fmt, ap);
    fflush(f);
    pthread_mutex_unlock(&u->mu);
}

#define UI_PRINTER(fn, level, stream)                                           \
    static void fn(ui *u, const char *fmt, ...) __attribute__((format(printf, 2, 3))); \
    static void fn(ui *u, const char *fmt, ...)                                  \
    {                                                                            \
        if (u->verbosity < (level)) return;                                      \
        va_list ap;                                                              \
        va_start(ap, fmt);                                                       \
        vprint(u, stream, fmt, ap);                                              \
        va_end(ap);                                                              \
    }
UI_PRINTER(ui_p, 1, stdout)
UI_PRINTER(ui_v, 2, stdout)
UI_PRINTER(ui_vv, 3, stdout)
UI_PRINTER(ui_e, 0, stderr)

static void print_json_line(ui *u, FILE *f, cr_buf *b)
{
    cr_buf_putc(b, '\n');
    pthread_mutex_lock(&u->mu);
    fwrite(b->data, 1, b->len, f);
    fflush(f);
    pthread_mutex_unlock(&u->mu);
}

/* A float64 as Go's encoding/json writes it: shortest round-trip digits,
 * exponent form only below 1e-6 or from 1e21 on ("1e-7", not "1e-07"). */
static void put_go_float(cr_buf *b, double v)
{
    if (v == 0 || !isfinite(v)) {
        cr_buf_puts(b, "0");
        return;
    }
    char s[40];
    double a = fabs(v);
    bool exp = a < 1e-6 || a >= 1e21;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof s, exp ? "%.*e" : "%.*g", exp ? prec - 1 : prec, v);
        if (strtod(s, NULL) == v) break;
    }
    if (!exp && strchr(s, 'e')) { /* %g chose an exponent: write it out */
        for (int prec = 0; prec <= 20; prec++) {
            snprintf(s, sizeof s, "%.*f", prec, v);
            if (strtod(s, NULL) == v) break;
        }
    }
    char *e = strchr(s, 'e');
    if (e) { /* mantissa without trailing zeros, exponent without padding */
        char mant[40];
        snprintf(mant, sizeof mant, "%.*s", (int)(e - s), s);
        if (strchr(mant, '.')) {
            size_t n = strlen(mant);
            while (mant[n - 1] == '0') mant[--n] = 0;
            if (mant[n - 1] == '.') mant[--n] = 0;
        }
        int ex = atoi(e + 1);
        cr_buf_printf(b, "%se%s%d", mant, ex < 0 ? "-" : "+", abs(ex));
        return;
    }
    cr_buf_puts(b, s);
}

/* restic's ui.Quote: quoted only when something would mess up the terminal. */
static void put_display_path(cr_buf *b, const char *s)
{
    size_t n = strlen(s);
    bool quote = false;
    for (size_t i = 0; i < n && !quote;) {
        uint32_t r;
        int k = cr_utf8_decode((const uint8_t *)s + i, n - i, &r);
        if (!k || r == 0xfffd || !cr_go_isprint(r)) quote = true;
        i += k ? (size_t)k : 1;
    }
    if (!quote) {
        cr_buf_puts(b, s);
        return;
    }
    cr_buf_putc(b, '"');
    cr_goquote(b, s, n);
    cr_buf_putc(b, '"');
}

/* restic's ui.FormatDuration / FormatSeconds. */
static void format_seconds(char *out, size_t n, uint64_t sec)
{
    uint64_t h = sec / 3600, m = sec / 60 % 60, s = sec % 60;
    if (h) snprintf(out, n, "%llu:%02llu:%02llu", (unsigned long long)h, (unsigned long long)m, (unsigned long long)s);
    else snprintf(out, n, "%llu:%02llu", (unsigned long long)m, (unsigned long long)s);
}

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

static void status_text(ui *u, const cr_archive_progress *p, const cr_buf *current, double elapsed)
{
    char dur[32], done[32], total[32];
    format_seconds(dur, sizeof dur, (uint64_t)elapsed);
    cr_format_bytes(done, sizeof done, p->bytes_done);
    cr_buf out = CR_BUF_INIT;
    clear_status(u);
    if (!u->scan_started || (!u->totals.files && !u->totals.dirs)) {
        cr_buf_printf(&out, "[%s] %llu files, %s, %llu errors", dur, (unsigned long long)p->files_done, done,
                      (unsigned long long)p->errors);
    } else {
        char eta[48] = "", pct[32] = "";
        double rate = elapsed > 0 ? (double)p->bytes_done / elapsed : 0;
        if (u->scan_done && rate > 1024 && p->bytes_done < u->totals.bytes) {
            char secs[32];
            format_seconds(secs, sizeof secs, (uint64_t)((double)(u->totals.bytes - p->bytes_done) / rate));
            snprintf(eta, sizeof eta, " ETA %s", secs);
            snprintf(pct, sizeof pct, "%3.2f%%  ", u->totals.bytes ? 100.0 * (double)p->bytes_done / (double)u->totals.bytes : 0);
        }
        cr_format_bytes(total, sizeof total, u->totals.bytes);
        cr_buf_printf(&out, "[%s] %s%llu files %s, total %llu files %s, %llu errors%s", dur, pct,
                      (unsigned long long)p->files_done, done, (unsigned long long)u->totals.files, total,
                      (unsigned long long)p->errors, eta);
    }
    int width = terminal_width();
    int lines = 0;
    const char *line = (const char *)out.data;
    size_t len = out.len;
    for (size_t off = 0;;) {
        printf("%.*s\x1b[K\n", (int)(len < (size_t)width - 1 ? len : (size_t)width - 1), line);
        lines++;
        if (!current || off >= current->len) break;
        line = (const char *)current->data + off;
        len = strlen(line);
        off += len + 1;
    }
    fflush(stdout);
    u->status_lines = lines;
    cr_buf_free(&out);
}

static void status_json(ui *u, const cr_archive_progress *p, const cr_buf *current, double elapsed)
{
    cr_buf b = CR_BUF_INIT;
    cr_buf_puts(&b, "{\"message_type\":\"status\"");
    if ((uint64_t)elapsed) cr_buf_printf(&b, ",\"seconds_elapsed\":%llu", (unsigned long long)elapsed);
    double rate = elapsed > 0 ? (double)p->bytes_done / elapsed : 0;
    if (u->scan_done && rate > 1024 && p->bytes_done < u->totals.bytes) {
        uint64_t rem = (uint64_t)((double)(u->totals.bytes - p->bytes_done) / rate);
        if (rem) cr_buf_printf(&b, ",\"seconds_remaining\":%llu", (unsigned long long)rem);
    }
    cr_buf_puts(&b, ",\"percent_done\":");
    put_go_float(&b, u->totals.bytes ? (double)p->bytes_done / (double)u->totals.bytes : 0);
    if (u->totals.files) cr_buf_printf(&b, ",\"total_files\":%llu", (unsigned long long)u->totals.files);
    if (p->files_done) cr_buf_printf(&b, ",\"files_done\":%llu", (unsigned long long)p->files_done);
    if (u->totals.bytes) cr_buf_printf(&b, ",\"total_bytes\":%llu", (unsigned long long)u->totals.bytes);
    if (p->bytes_done) cr_buf_printf(&b, ",\"bytes_done\":%llu", (unsigned long long)p->bytes_done);
    if (p->errors) cr_buf_printf(&b, ",\"error_count\":%llu", (unsigned long long)p->errors);
    if (current && current->len) {
        cr_buf_puts(&b, ",\"current_files\":[");
        for (size_t off = 0, i = 0; off < current->len; i++) {
            const char *s = (const char *)current->data + off;
            if (i) cr_buf_putc(&b, ',');
            cr_json_put_cstr(&b, s);
            off += strlen(s) + 1;
        }
        cr_buf_putc(&b, ']');
    }
    cr_buf_putc(&b, '}');
    cr_buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, stdout);
    fflush(stdout);
    cr_buf_free(&b);
}

static void *status_main(void *arg)
{
    ui *u = arg;
    cr_buf current = CR_BUF_INIT;
    while (!u->stop) {
        struct timespec ts = {(time_t)u->interval, (long)((u->interval - floor(u->interval)) * 1e9)};
        nanosleep(&ts, NULL);
        if (u->stop) break;
        /* Ask the archiver first: its callbacks print under u->mu, so
         * holding u->mu while asking would invert the lock order. */
        cr_archive_progress p;
        cr_archiver_progress(u->arch, &p, &current);
        double elapsed = now_mono() - u->start;
        pthread_mutex_lock(&u->mu);
        if (u->json) status_json(u, &p, &current, elapsed);
        else status_text(u, &p, &current, elapsed);
        pthread_mutex_unlock(&u->mu);
    }
    cr_buf_free(&current);
    return NULL;
}

static void ui_start_status(ui *u)
{
    if (u->interval <= 0) return;
    u->thread_running = pthread_create(&u->thread, NULL, status_main, u) == 0;
}

static void ui_stop_status(ui *u)
{
    u->stop = 1;
    if (u->thread_running) pthread_join(u->thread, NULL);
    u->thread_running = false;
    pthread_mutex_lock(&u->mu);
    clear_status(u);
    fflush(stdout);
    pthread_mutex_unlock(&u->mu);
}

/* restic's progress interval: 10 updates/s on a terminal or with --json,
 * none otherwise or with -q; RESTIC_PROGRESS_FPS (at most 60) overrides. */
static double progress_interval(const ui *u)
{
    const char *fps = getenv("RESTIC_PROGRESS_FPS");
    double f = fps ? strtod(fps, NULL) : 0;
    if (f > 0) return 1.0 / (f > 60 ? 60 : f);
    if ((!u->json && !u->tty) || u->verbosity == 0) return 0;
    return 1.0 / 10;
}

/* ---- archiver callbacks ----------------------------------------------------- */

static void on_error(void *ud, const char *item, const char *message)
{
    ui *u = ud;
    if (u->json) {
        cr_buf b = CR_BUF_INIT;
        cr_buf_puts(&b, "{\"message_type\":\"error\",\"error\":{\"message\":");
        cr_json_put_cstr(&b, message);
        cr_buf_puts(&b, "},\"during\":\"archival\",\"item\":");
        cr_json_put_cstr(&b, item);
        cr_buf_putc(&b, '}');
        print_json_line(u, stderr, &b);
        cr_buf_free(&b);
        return;
    }
    ui_e(u, "error: %s\n", message);
}

static void on_scan_error(void *ud, const char *item, const char *message)
{
    ui *u = ud;
    if (u->json) {
        cr_buf b = CR_BUF_INIT;
        cr_buf_puts(&b, "{\"message_type\":\"error\",\"error\":{\"message\":");
        cr_json_put_cstr(&b, message);
        cr_buf_puts(&b, "},\"during\":\"scan\",\"item\":");
        cr_json_put_cstr(&b, item);
        cr_buf_putc(&b, '}');
        print_json_line(u, stderr, &b);
        cr_buf_free(&b);
    } else if (u->verbosity >= 3) {
        ui_e(u, "scan: %s\n", message);
    }
}

static void on_item(void *ud, const char *item, bool is_dir, cr_item_action act, const cr_item_stats *st, double secs)
{
    ui *u = ud;
    static const char *const names[] = {"new", "unchanged", "modified"};
    if (u->json) {
        if (u->verbosity < 2) return;
        cr_buf b = CR_BUF_INIT;
        cr_buf_printf(&b, "{\"message_type\":\"verbose_status\",\"action\":\"%s\",\"item\":", names[act]);
        cr_json_put_cstr(&b, item);
        bool stats = act != CR_ITEM_UNCHANGED;
        cr_buf_puts(&b, ",\"duration\":");
        put_go_float(&b, stats ? secs : 0);
        cr_buf_printf(&b, ",\"data_size\":%llu,\"data_size_in_repo\":%llu,\"metadata_size\":%llu,"
                          "\"metadata_size_in_repo\":%llu,\"total_files\":0}",
                      (unsigned long long)(stats ? st->data_size : 0), (unsigned long long)(stats ? st->data_size_in_repo : 0),
                      (unsigned long long)(stats && is_dir ? st->tree_size : 0),
                      (unsigned long long)(stats && is_dir ? st->tree_size_in_repo : 0));
        print_json_line(u, stdout, &b);
        cr_buf_free(&b);
        return;
    }
    if (u->verbosity < 3) return;
    cr_buf p = CR_BUF_INIT;
    put_display_path(&p, item);
    cr_buf_nul(&p);
    char added[32], stored[32], meta[32];
    cr_format_bytes(added, sizeof added, st->data_size);
    cr_format_bytes(stored, sizeof stored, st->data_size_in_repo);
    cr_format_bytes(meta, sizeof meta, st->tree_size_in_repo);
    const char *ps = (const char *)p.data;
    if (act == CR_ITEM_UNCHANGED) ui_vv(u, "unchanged %s\n", ps);
    else if (is_dir)
        ui_vv(u, "%-9s %s, saved in %.3fs (%s added, %s stored, %s metadata)\n", names[act], ps, secs, added, stored, meta);
    else ui_vv(u, "%-9s %s, saved in %.3fs (%s added, %s stored)\n", names[act], ps, secs, added, stored);
    cr_buf_free(&p);
}

static void on_excluded(void *ud, const char *path)
{
    ui *u = ud;
    if (u->json) {
        if (u->verbosity < 2) return;
        cr_buf b = CR_BUF_INIT;
        cr_buf_puts(&b, "{\"message_type\":\"excluded_item\",\"item\":");
        cr_json_put_cstr(&b, path);
        cr_buf_putc(&b, '}');
        print_json_line(u, stdout, &b);
        cr_buf_free(&b);
        return;
    }
    ui_vv(u, "excluded %s\n", path);
}

static void on_warn(void *ud, const char *message)
{
    ui *u = ud;
    size_t n = strlen(message);
    ui_e(u, "%s%s", message, n && message[n - 1] == '\n' ? "" : "\n");
}

static void on_scan_result(void *ud, const cr_scan_stats *s, bool done)
{
    ui *u = ud;
    pthread_mutex_lock(&u->mu);
    u->totals = *s;
    u->scan_started = true;
    u->scan_done = done;
    pthread_mutex_unlock(&u->mu);
    if (!done) return;
    double secs = now_mono() - u->scan_start;
    if (u->json) {
        if (u->verbosity < 2) return;
        cr_buf b = CR_BUF_INIT;
        cr_buf_puts(&b, "{\"message_type\":\"verbose_status\",\"action\":\"scan_finished\",\"item\":\"\",\"duration\":");
        put_go_float(&b, secs);
        cr_buf_printf(&b, ",\"data_size\":%llu,\"data_size_in_repo\":0,\"metadata_size\":0,\"metadata_size_in_repo\":0,"
                          "\"total_files\":%llu}",
                      (unsigned long long)s->bytes, (unsigned long long)s->files);
        print_json_line(u, stdout, &b);
        cr_buf_free(&b);
        return;
    }
    char bytes[32];
    cr_format_bytes(bytes, sizeof bytes, s->bytes);
    ui_v(u, "scan finished in %.3fs: %llu files, %s\n", secs, (unsigned long long)s->files, bytes);
}

/* ---- targets ------------------------------------------------------------------ */

typedef struct {
    cr_strv v;           /* pointers into argv or into `owned` */
    char **owned;
    size_t nowned;
} target_list;

static int own_string(target_list *t, const char *s, size_t n)
{
    char *d = strndup(s, n);
    char **o = d ? realloc(t->owned, (t->nowned + 1) * sizeof *o) : NULL;
    if (!o) return free(d), cr_error(-ENOMEM, "out of memory");
    t->owned = o;
    t->owned[t->nowned++] = d;
    return cr_strv_push(&t->v, d);
}

static void target_list_free(target_list *t)
{
    for (size_t i = 0; i < t->nowned; i++) free(t->owned[i]);
    free(t->owned);
    cr_strv_free(&t->v);
}

static bool has_glob_meta(const char *s)
{
    return strpbrk(s, "*?[\\") != NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || (s[n - 1] >= '\t' && s[n - 1] <= '\r'))) s[--n] = 0;
    return s;
}

/* --files-from: patterns, one per line, expanded like Go's filepath.Glob. */
static int targets_from_patterns(ui *u, target_list *t, const char *file)
{
    cr_buf store = CR_BUF_INIT;
    char **lines = NULL;
    size_t n = 0;
    int r = cr_read_text_lines(file, &store, &lines, &n);
    for (size_t i = 0; r == 0 && i < n; i++) {
        char *line = trim(lines[i]);
        if (!*line || *line == '#') continue;
        struct stat st;
        if (!has_glob_meta(line)) {
            if (lstat(line, &st) == 0) r = own_string(t, line, strlen(line));
            else ui_e(u, "pattern \"%s\" does not match any files, skipping\n", line);
            continue;
        }
        glob_t gl;
        int gr = glob(line, GLOB_PERIOD, NULL, &gl);
        if (gr == GLOB_NOMATCH || (gr == 0 && !gl.gl_pathc)) ui_e(u, "pattern \"%s\" does not match any files, skipping\n", line);
        else if (gr != 0) r = cr_error(CR_E_USAGE, "pattern: %s: syntax error in pattern", line);
        for (size_t k = 0; gr == 0 && r == 0 && k < gl.gl_pathc; k++) r = own_string(t, gl.gl_pathv[k], strlen(gl.gl_pathv[k]));
        if (gr == 0 || gr == GLOB_NOMATCH) globfree(&gl);
    }
    free(lines);
    cr_buf_free(&store);
    return r;
}

static int targets_verbatim(target_list *t, const char *file)
{
    cr_buf store = CR_BUF_INIT;
    char **lines = NULL;
    size_t n = 0;
    int r = cr_read_text_lines(file, &store, &lines, &n);
    for (size_t i = 0; r == 0 && i < n; i++)
        if (*lines[i]) r = own_string(t, lines[i], strlen(lines[i]));
    free(lines);
    cr_buf_free(&store);
    return r;
}

static int targets_raw(target_list *t, const char *file)
{
    _cleanup_close_ int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : dup(0);
    if (fd < 0) return cr_error_sys(-errno, "open %s", file);
    cr_buf data = CR_BUF_INIT;
    int r = 0;
    for (;;) {
        if ((r = cr_buf_reserve(&data, 65536)) < 0) break;
        ssize_t n = read(fd, data.data + data.len, 65536);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { r = cr_error_sys(-errno, "read %s", file); break; }
        if (!n) break;
        data.len += (size_t)n;
    }
    for (size_t start = 0; r == 0 && start < data.len;) {
        const uint8_t *z = memchr(data.data + start, 0, data.len - start);
        if (!z) r = cr_error(CR_E_USAGE, "--files-from-raw: trailing zero byte missing");
        else if (z == data.data + start) r = cr_error(CR_E_USAGE, "--files-from-raw: empty filename in listing");
        else {
            r = own_string(t, (const char *)data.data + start, (size_t)(z - data.data - start));
            start = (size_t)(z - data.data) + 1;
        }
    }
    cr_buf_free(&data);
    return r;
}

/* restic's collectTargets + filterExisting: *partial when some were missing. */
static int collect_targets(ui *u, const backup_opts *o, int npos, char **pos, target_list *t, bool *partial)
{
    for (size_t i = 0; i < o->files_from.n; i++) CR_TRY(targets_from_patterns(u, t, o->files_from.v[i]));
    for (size_t i = 0; i < o->files_from_verbatim.n; i++) CR_TRY(targets_verbatim(t, o->files_from_verbatim.v[i]));
    for (size_t i = 0; i < o->files_from_raw.n; i++) CR_TRY(targets_raw(t, o->files_from_raw.v[i]));
    for (int i = 0; i < npos; i++) CR_TRY(cr_strv_push(&t->v, pos[i]));
    if (!t->v.n) return cr_error(CR_E_USAGE, "nothing to backup, please specify source files/dirs");
    size_t kept = 0;
    for (size_t i = 0; i < t->v.n; i++) {
        struct stat st;
        if (lstat(t->v.v[i], &st) < 0) {
            if (errno == ENOENT) ui_e(u, "%s does not exist, skipping\n", t->v.v[i]);
            else ui_e(u, "%s cannot be accessed, skipping\n", t->v.v[i]);
            continue;
        }
        t->v.v[kept++] = t->v.v[i];
    }
    *partial = kept < t->v.n;
    t->v.n = kept;
    if (!kept) return cr_error(CR_E_USAGE, "all source directories/files do not exist");
    return 0;
}

/* ---- options -------------------------------------------------------------------- */

typedef struct {
    bool host, paths, tags;
} group_by;

static int parse_group_by(const char *s, group_by *gb)
{
    *gb = (group_by){0};
    char *copy = strdup(s), *save = NULL;
    if (!copy) return cr_error(-ENOMEM, "out of memory");
    int r = 0;
    bool first = true;
    for (char *tok = strtok_r(copy, ",", &save); tok || first; tok = strtok_r(NULL, ",", &save)) {
        first = false;
        if (!tok) break;
        if (!strcmp(tok, "host") || !strcmp(tok, "hosts")) gb->host = true;
        else if (!strcmp(tok, "path") || !strcmp(tok, "paths")) gb->paths = true;
        else if (!strcmp(tok, "tag") || !strcmp(tok, "tags")) gb->tags = true;
        else if (*tok) { r = cr_error(CR_E_USAGE, "unknown grouping option: \"%s\"", tok); break; }
    }
    free(copy);
    return r;
}

static bool env_bool(const char *name)
{
    const char *v = getenv(name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "t") || !strcasecmp(v, "true"));
}

static bool password_given(const cr_global *g)
{
    return g->password_file || g->password_command || getenv("RESTIC_PASSWORD") ||
           getenv("RESTIC_PASSWORD_FILE") || getenv("RESTIC_PASSWORD_COMMAND");
}

static bool strv_has(const cr_strv *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->v[i], s)) return true;
    return false;
}

static int check_opts(const cr_global *g, const backup_opts *o, int npos)
{
    bool from_stdin = strv_has(&o->files_from, "-") || strv_has(&o->files_from_verbatim, "-") ||
                      strv_has(&o->files_from_raw, "-");
    if (!password_given(g)) {
        if (o->use_stdin) return cr_error(CR_E_USAGE, "cannot read both password and data from stdin");
        if (from_stdin)
            return cr_error(CR_E_USAGE, "unable to read password from stdin when data is to be read from stdin, use --password-file or $RESTIC_PASSWORD");
    }
    if (o->use_stdin || o->stdin_command) {
        if (o->files_from.n) return cr_error(CR_E_USAGE, "--stdin and --files-from cannot be used together");
        if (o->files_from_verbatim.n) return cr_error(CR_E_USAGE, "--stdin and --files-from-verbatim cannot be used together");
        if (o->files_from_raw.n) return cr_error(CR_E_USAGE, "--stdin and --files-from-raw cannot be used together");
        if (npos && !o->stdin_command) return cr_error(CR_E_USAGE, "--stdin was specified and files/dirs were listed as arguments");
    }
    if (g->quiet && g->verbose) return cr_error(CR_E_USAGE, "--quiet and --verbose cannot be specified at the same time");
    return 0;
}

/* --time "2006-01-02 15:04:05" in the local zone. */
static int parse_time_flag(const char *s, cr_time *out)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!end || *end || strlen(s) != 19)
        return cr_error(CR_E_USAGE, "error in time option: parsing time \"%s\" as \"2006-01-02 15:04:05\": cannot parse \"%s\" as \"2006\"", s, s);
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    *out = cr_time_local((int64_t)t, 0);
    return 0;
}

static void split_tags(const cr_strv *in, cr_strv *out, char **store)
{
    size_t total = 0;
    for (size_t i = 0; i < in->n; i++) total += strlen(in->v[i]) + 1;
    char *buf = malloc(total + 1), *w = buf;
    *store = buf;
    if (!buf) return;
    for (size_t i = 0; i < in->n; i++) {
        strcpy(w, in->v[i]);
        char *copy = w;
        w += strlen(in->v[i]) + 1;
        for (char *p = copy;;) {
            char *comma = strchr(p, ',');
            if (comma) *comma = 0;
            char *tag = trim(p);
            if (*tag) cr_strv_push(out, tag);
            if (!comma) break;
            p = comma + 1;
        }
    }
}

/* ---- parent ----------------------------------------------------------------------- */

static int find_parent(cr_repo *r, const backup_opts *o, const group_by *gb, const char *host, const cr_strv *targets,
                       const cr_strv *tags, const cr_time *limit, cr_snapshot *out, bool *found)
{
    *found = false;
    if (o->force) return 0;
    if (o->parent && strcmp(o->parent, "latest")) {
        CR_TRY(cr_repo_find_snapshot(r, o->parent, NULL, out));
        *found = true;
        return 0;
    }
    cr_strv abs = {0};
    cr_buf p = CR_BUF_INIT;
    _cleanup_free_ char *joined = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && gb->paths && i < targets->n; i++) {
        rc = cr_path_abs(targets->v[i], &p);
        if (rc == 0) rc = cr_strv_push(&abs, (const char *)cr_buf_steal(&p, NULL));
    }
    if (rc == 0 && gb->tags && tags->n) {
        cr_buf j = CR_BUF_INIT;
        for (size_t i = 0; i < tags->n; i++) cr_buf_printf(&j, "%s%s", i ? "," : "", tags->v[i]);
        cr_buf_nul(&j);
        joined = (char *)cr_buf_steal(&j, NULL);
    }
    const char *hosts[1] = {host};
    const char *tag_lists[1] = {joined};
    cr_snapshot_filter f = {.hosts = gb->host ? hosts : NULL, .nhosts = gb->host ? 1 : 0,
                            .tag_lists = joined ? tag_lists : NULL, .ntag_lists = joined ? 1 : 0,
                            .paths = abs.v, .npaths = abs.n};
    cr_snapshot *all = NULL;
    size_t n = 0;
    if (rc == 0) rc = cr_repo_load_snapshots(r, &all, &n);
    ssize_t best = -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (cr_time_cmp(&all[i].time, limit) > 0 || !cr_snapshot_matches(&all[i], &f)) continue;
        if (best < 0 || cr_time_cmp(&all[i].time, &all[best].time) > 0) best = (ssize_t)i;
    }
    if (best >= 0) {
        *out = all[best];
        memset(&all[best], 0, sizeof all[best]);
        *found = true;
    }
    cr_snapshots_free(all, n);
    for (size_t i = 0; i < abs.n; i++) free((void *)abs.v[i]);
    cr_strv_free(&abs);
    cr_buf_free(&p);
    return rc;
}

/* A workspace's parent: the snapshot just restored when it still exists,
 * else the newest snapshot carrying the workspace's tag, whatever its host
 * and paths (a workspace's host name changes from one start to the next). */
static int workspace_parent(cr_repo *r, const cr_backup_hooks *h, const cr_time *limit, cr_snapshot *out, bool *found)
{
    *found = false;
    if (h->parent_prefer) {
        int rc = cr_repo_find_snapshot(r, h->parent_prefer, NULL, out);
        if (rc == 0) return *found = true, 0;
        if (rc != CR_E_NOTFOUND) return rc;
        cr_error_clear();
    }
    const char *tag_lists[1] = {h->parent_tag};
    cr_snapshot_filter f = {.tag_lists = tag_lists, .ntag_lists = 1};
    cr_snapshot *all = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_load_snapshots(r, &all, &n));
    ssize_t best = -1;
    for (size_t i = 0; i < n; i++) {
        if (cr_time_cmp(&all[i].time, limit) > 0 || !cr_snapshot_matches(&all[i], &f)) continue;
        if (best < 0 || cr_time_cmp(&all[i].time, &all[best].time) > 0) best = (ssize_t)i;
    }
    if (best >= 0) {
        *out = all[best];
        memset(&all[best], 0, sizeof all[best]);
        *found = true;
    }
    cr_snapshots_free(all, n);
    return 0;
}

/* ---- dry run: a backend that keeps nothing --------------------------------------------- */

typedef struct {
    cr_backend base;
    cr_backend *inner;
} dry_backend;

static int dry_stat(cr_backend *b, cr_filetype t, const char *n, uint64_t *s) { return cr_be_stat(((dry_backend *)b)->inner, t, n, s); }
static int dry_load(cr_backend *b, cr_filetype t, const char *n, uint64_t off, uint64_t len, cr_buf *out)
{
    return ((dry_backend *)b)->inner->ops->load(((dry_backend *)b)->inner, t, n, off, len, out);
}
static int dry_save(cr_backend *b, cr_filetype t, const char *n, const void *d, size_t len) { return 0; }
static int dry_remove(cr_backend *b, cr_filetype t, const char *n) { return 0; }
static int dry_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud)
{
    return ((dry_backend *)b)->inner->ops->list(((dry_backend *)b)->inner, t, cb, ud);
}
static void dry_close(cr_backend *b)
{
    cr_backend_close(((dry_backend *)b)->inner);
    free(b);
}
static const cr_backend_ops dry_ops = {"dry-run", NULL, NULL, dry_close, dry_stat, dry_load, dry_save, dry_remove, dry_list, NULL};

static int make_dry(cr_repo *r)
{
    dry_backend *d = calloc(1, sizeof *d);
    if (!d) return cr_error(-ENOMEM, "out of memory");
    d->inner = r->be;
    d->base.ops = &dry_ops;
    d->base.location = r->be->location;
    d->base.connections = r->be->connections;
    r->be = &d->base;
    return 0;
}

/* ---- --stdin-from-command ------------------------------------------------------------------ */

static int start_command(char **argv, int argc, pid_t *pid, int *fd)
{
    if (!argc) return cr_error(CR_E_USAGE, "--stdin-from-command needs a command to run");
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return cr_error_sys(-errno, "pipe");
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) return close(p[0]), close(p[1]), cr_error(-ENOMEM, "out of memory");
    memcpy(args, argv, (size_t)argc * sizeof *args);
    *pid = fork();
    if (*pid == 0) {
        dup2(p[1], 1);
        execvp(args[0], args);
        fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    free(args);
    close(p[1]);
    if (*pid < 0) return close(p[0]), cr_error_sys(-errno, "fork");
    *fd = p[0];
    return 0;
}

static int wait_command(pid_t pid, const char *name)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return cr_error_sys(-errno, "waitpid");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    return cr_error(CR_E_USAGE, "%s: exit status %d", name, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* ---- the snapshot ------------------------------------------------------------------------------- */

typedef struct {
    cr_time time, backup_start, backup_end;
    const char *host;
    const cr_strv *paths, *tags, *excludes;
    const cr_snapshot *parent;
    cr_id tree;
    const cr_archive_summary *sum;
    const cr_writer_stats *ws;
} snapshot_parts;

static int save_snapshot(cr_repo *r, const snapshot_parts *p, cr_id *id)
{
    cr_snapshot sn = {0};
    sn.time = p->time;
    if (p->parent) sn.has_parent = true, sn.parent = p->parent->id;
    sn.has_tree = true;
    sn.tree = p->tree;
    sn.paths = (char **)p->paths->v;
    sn.npaths = p->paths->n;
    sn.hostname = (char *)p->host;
    sn.username = (char *)cr_arch_user_name(getuid());
    sn.uid = getuid();
    sn.gid = getgid();
    sn.excludes = (char **)p->excludes->v;
    sn.nexcludes = p->excludes->n;
    sn.tags = (char **)p->tags->v;
    sn.ntags = p->tags->n;
    sn.program_version = "crestic " CRESTIC_VERSION;
    sn.has_summary = true;
    cr_snapshot_summary *s = &sn.summary;
    s->backup_start = p->backup_start;
    s->backup_end = p->backup_end;
    s->files_new = p->sum->files_new;
    s->files_changed = p->sum->files_changed;
    s->files_unmodified = p->sum->files_unmodified;
    s->dirs_new = p->sum->dirs_new;
    s->dirs_changed = p->sum->dirs_changed;
    s->dirs_unmodified = p->sum->dirs_unmodified;
    s->data_blobs = p->ws->data_blobs;
    s->tree_blobs = p->ws->tree_blobs;
    s->data_added = p->ws->data_added;
    s->data_added_packed = p->ws->data_added_packed;
    s->total_files_processed = p->sum->files_new + p->sum->files_changed + p->sum->files_unmodified;
    s->total_bytes_processed = p->sum->processed_bytes;
    cr_buf json = CR_BUF_INIT;
    int rc = cr_snapshot_encode(&sn, &json);
    if (rc == 0) rc = cr_repo_save_unpacked(r, CR_FILE_SNAPSHOT, json.data, json.len, id);
    cr_buf_free(&json);
    return rc;
}

static void print_summary(ui *u, const cr_archive_summary *s, const cr_writer_stats *ws, const cr_time *start,
                          const cr_time *end, double secs, const cr_id *id, bool dry_run)
{
    uint64_t total_files = s->files_new + s->files_changed + s->files_unmodified;
    if (u->json) {
        cr_buf b = CR_BUF_INIT;
        cr_buf_printf(&b, "{\"message_type\":\"summary\",\"files_new\":%llu,\"files_changed\":%llu,\"files_unmodified\":%llu,"
                          "\"dirs_new\":%llu,\"dirs_changed\":%llu,\"dirs_unmodified\":%llu,\"data_blobs\":%llu,"
                          "\"tree_blobs\":%llu,\"data_added\":%llu,\"data_added_packed\":%llu,"
                          "\"total_files_processed\":%llu,\"total_bytes_processed\":%llu,\"total_duration\":",
                      (unsigned long long)s->files_new, (unsigned long long)s->files_changed,
                      (unsigned long long)s->files_unmodified, (unsigned long long)s->dirs_new,
                      (unsigned long long)s->dirs_changed, (unsigned long long)s->dirs_unmodified,
                      (unsigned long long)ws->data_blobs, (unsigned long long)ws->tree_blobs,
                      (unsigned long long)ws->data_added, (unsigned long long)ws->data_added_packed,
                      (unsigned long long)total_files, (unsigned long long)s->processed_bytes);
        put_go_float(&b, secs);
        cr_buf_puts(&b, ",\"backup_start\":\"");
        cr_time_format(&b, start);
        cr_buf_puts(&b, "\",\"backup_end\":\"");
        cr_time_format(&b, end);
        cr_buf_putc(&b, '"');
        if (id) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(id, hex);
            cr_buf_printf(&b, ",\"snapshot_id\":\"%s\"", hex);
        }
        if (dry_run) cr_buf_puts(&b, ",\"dry_run\":true");
        cr_buf_putc(&b, '}');
        print_json_line(u, stdout, &b);
        cr_buf_free(&b);
        return;
    }
    char added[32], stored[32], processed[32], dur[32];
    cr_format_bytes(added, sizeof added, ws->data_added);
    cr_format_bytes(stored, sizeof stored, ws->data_added_packed);
    cr_format_bytes(processed, sizeof processed, s->processed_bytes);
    format_seconds(dur, sizeof dur, (uint64_t)secs);
    ui_p(u, "\nFiles:       %5llu new, %5llu changed, %5llu unmodified\n", (unsigned long long)s->files_new,
         (unsigned long long)s->files_changed, (unsigned long long)s->files_unmodified);
    ui_p(u, "Dirs:        %5llu new, %5llu changed, %5llu unmodified\n", (unsigned long long)s->dirs_new,
         (unsigned long long)s->dirs_changed, (unsigned long long)s->dirs_unmodified);
    ui_v(u, "Data Blobs:  %5llu new\n", (unsigned long long)ws->data_blobs);
    ui_v(u, "Tree Blobs:  %5llu new\n", (unsigned long long)ws->tree_blobs);
    ui_p(u, "%s to the repository: %-5s (%-5s stored)\n\n", dry_run ? "Would add" : "Added", added, stored);
    ui_p(u, "processed %llu files, %s in %s\n", (unsigned long long)total_files, processed, dur);
    if (dry_run) return;
    if (!id) ui_p(u, "skipped creating snapshot\n");
    else {
        char sid[9];
        cr_id_short(id, sid);
        ui_p(u, "snapshot %s saved\n", sid);
    }
}

/* ---- the command --------------------------------------------------------------------------------- */

typedef struct {
    cr_global *g;
    backup_opts *o;
    ui u;
    cr_repo *repo;
    cr_lock *lock;
    cr_writer *w;
    cr_excluder *ex;
    cr_archiver *arch;
    target_list targets;
    cr_strv tags, excludes_rec;
    char *tag_store;
    cr_snapshot parent;
    bool have_parent, partial;
    pthread_t scan_thread;
    bool scanning;
    int stdin_fd;
    pid_t cmd_pid;
    char host[256];
    cr_backup_hooks *h;  /* workspace backups; NULL for `backup` */
} backup_run;

static void *scan_main(void *arg)
{
    backup_run *b = arg;
    b->u.scan_start = now_mono();
    cr_archive_scan(b->targets.v.v, b->targets.v.n, b->ex, &b->u.scan_cancel, on_scan_result, on_scan_error, &b->u);
    return NULL;
}

static int writer_opts(cr_global *g, cr_writer_opts *wo)
{
    *wo = (cr_writer_opts){.compression = CR_COMPRESS_AUTO};
    const char *c = g->compression ? g->compression : getenv("RESTIC_COMPRESSION");
    if (c && *c) CR_TRY(cr_compression_parse(c, &wo->compression));
    long mib = g->pack_size;
    const char *env = getenv("RESTIC_PACK_SIZE");
    if (!mib && env && *env) mib = strtol(env, NULL, 10);
    if (mib) {
        if (mib < 4 || mib > 128) return cr_error(CR_E_USAGE, "pack size larger than limit of 128 MiB or smaller than 4 MiB");
        wo->pack_size = (size_t)mib << 20;
    }
    return 0;
}

static int build_excluder(backup_run *b)
{
    backup_opts *o = b->o;
    int64_t larger = -1;
    if (o->larger_than && *o->larger_than && !(o->use_stdin || o->stdin_command)) CR_TRY(cr_parse_size(o->larger_than, &larger));
    bool from_stdin = o->use_stdin || o->stdin_command;
    cr_exclude_opts eo = {
        .excludes = o->excludes.v, .nexcludes = o->excludes.n,
        .iexcludes = o->iexcludes.v, .niexcludes = o->iexcludes.n,
        .exclude_files = o->exclude_files.v, .nexclude_files = o->exclude_files.n,
        .iexclude_files = o->iexclude_files.v, .niexclude_files = o->iexclude_files.n,
        .if_present = o->if_present.v, .nif_present = o->if_present.n,
        .exclude_caches = o->exclude_caches,
        .larger_than = larger,
        .one_file_system = o->one_fs && !from_stdin,
        .targets = b->targets.v.v, .ntargets = b->targets.v.n,
        .warn = on_warn, .ud = &b->u,
    };
    return cr_excluder_new(&eo, &b->ex);
}

static void print_go_list(ui *u, const cr_strv *v, bool scanning)
{
    cr_buf b = CR_BUF_INIT;
    cr_buf_putc(&b, '[');
    for (size_t i = 0; i < v->n; i++) cr_buf_printf(&b, "%s%s", i ? " " : "", v->v[i]);
    cr_buf_putc(&b, ']');
    cr_buf_nul(&b);
    if (scanning) ui_v(u, "start scan on %s\n", (const char *)b.data);
    ui_v(u, "start backup on %s\n", (const char *)b.data);
    cr_buf_free(&b);
}

/* Archive, flush, save the snapshot.  Returns an exit code. */
static int archive_and_save(backup_run *b, const cr_time *timestamp, const cr_time *backup_start)
{
    cr_global *g = b->g;
    backup_opts *o = b->o;
    bool from_stdin = o->use_stdin || o->stdin_command;
    cr_writer_opts wo;
    int r = writer_opts(g, &wo);
    if (r == 0) r = cr_writer_new(b->repo, &wo, &b->w);
    if (r < 0) return cr_cli_fail(g, r);
    cr_archive_opts ao = {
        .targets = b->targets.v.v, .ntargets = b->targets.v.n,
        .excluder = b->ex,
        .parent = b->have_parent ? &b->parent : NULL,
        .with_atime = o->with_atime, .ignore_ctime = o->ignore_ctime, .ignore_inode = o->ignore_inode,
        .read_concurrency = o->read_concurrency > 0 ? (unsigned)o->read_concurrency : 0,
        .stdin_fd = from_stdin ? b->stdin_fd : -1,
        .stdin_name = o->stdin_filename,
        .stdin_time = *timestamp,
        .cancel = &cr_interrupted,
        .soft_stop = b->h ? b->h->soft_stop : NULL,
        .trust_unchanged = b->h ? b->h->trust_unchanged : NULL,
        .trust_ud = b->h ? b->h->trust_ud : NULL,
        .on_error = on_error, .on_item = on_item, .on_excluded = on_excluded, .ud = &b->u,
    };
    if ((r = cr_archiver_new(b->repo, b->w, &ao, &b->arch)) < 0) return cr_cli_fail(g, r);
    /* The totals only feed the status display and "scan finished" (-v). */
    bool want_scan = b->u.interval > 0 || b->u.verbosity >= 2;
    if (!o->no_scan && !from_stdin && want_scan) b->scanning = pthread_create(&b->scan_thread, NULL, scan_main, b) == 0;
    if (!g->json) print_go_list(&b->u, &b->targets.v, b->scanning);
    b->u.arch = b->arch;
    ui_start_status(&b->u);
    cr_id root;
    r = cr_archiver_run(b->arch, &root);
    ui_stop_status(&b->u);
    b->u.scan_cancel = 1;
    if (b->scanning) pthread_join(b->scan_thread, NULL);
    b->scanning = false;
    if (r == 0 && o->stdin_command) r = wait_command(b->cmd_pid, o->stdin_filename);
    if (r < 0) {
        /* Keep what was uploaded usable by the next backup; no snapshot. */
        int saved = r;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cr_error_message());
        if (!b->o->dry_run) cr_writer_flush(b->w);
        if (saved == CR_E_INTERRUPTED) {
            ui_e(&b->u, "signal interrupt received, cleaning up\n");
            return CR_EXIT_INTERRUPTED;
        }
        cr_error(saved, "unable to save snapshot: %s", msg);
        return cr_cli_fail(g, saved);
    }
    if ((r = cr_writer_flush(b->w)) < 0) return cr_cli_fail(g, cr_error_ctx(r, "unable to save snapshot"));
    cr_archive_summary sum;
    cr_archiver_summary(b->arch, &sum);
    cr_writer_stats ws;
    cr_writer_get_stats(b->w, &ws);
    cr_time end = cr_time_now();
    double secs = now_mono() - b->u.start;
    cr_id id;
    bool deferred = sum.files_deferred > 0;
    if (deferred && b->h && b->h->partial_tag) cr_strv_push(&b->tags, b->h->partial_tag);
    bool skipped = o->skip_if_unchanged && b->have_parent && b->parent.has_tree && cr_id_eq(&b->parent.tree, &root);
    if (!o->dry_run && !skipped) {
        /* restic records the targets made absolute, in the given order */
        cr_strv paths = b->targets.v, abs = {0};
        cr_buf p = CR_BUF_INIT;
        for (size_t i = 0; i < paths.n; i++)
            if (cr_path_abs(paths.v[i], &p) == 0) cr_strv_push(&abs, (const char *)cr_buf_steal(&p, NULL));
        cr_buf_free(&p);
        snapshot_parts sp = {*timestamp, *backup_start, end, b->host, &abs, &b->tags, &b->excludes_rec,
                             b->have_parent ? &b->parent : NULL, root, &sum, &ws};
        r = save_snapshot(b->repo, &sp, &id);
        for (size_t i = 0; i < abs.n; i++) free((void *)abs.v[i]);
        cr_strv_free(&abs);
        if (r < 0) return cr_cli_fail(g, cr_error_ctx(r, "unable to save snapshot"));
    }
    print_summary(&b->u, &sum, &ws, backup_start, &end, secs, o->dry_run || skipped ? NULL : &id, o->dry_run);
    if (b->h) {
        b->h->sum = sum;
        b->h->saved = !o->dry_run && !skipped;
        if (b->h->saved) b->h->snapshot = id;
        if (b->h->saved && b->h->after) {
            int rc = b->h->after(b->h->after_ud, g, b->repo, &b->lock, &id, deferred);
            if (rc) return rc;
        }
    }
    if (sum.errors || b->partial) {
        if (g->json) {
            cr_buf j = CR_BUF_INIT;
            cr_buf_puts(&j, "{\"message_type\":\"exit_error\",\"code\":3,\"message\":\"Warning: at least one source file could not be read\"}");
            print_json_line(&b->u, stderr, &j);
            cr_buf_free(&j);
        } else {
            ui_e(&b->u, "Warning: at least one source file could not be read\n");
        }
        return CR_EXIT_PARTIAL;
    }
    return CR_EXIT_OK;
}

static int prepare_and_run(backup_run *b, int npos, char **pos)
{
    cr_global *g = b->g;
    backup_opts *o = b->o;
    int r;
    if ((r = check_opts(g, o, npos)) < 0) return cr_cli_fail(g, r);
    group_by gb;
    if ((r = parse_group_by(o->group_by ? o->group_by : "host,paths", &gb)) < 0) return cr_cli_fail(g, r);
    bool from_stdin = o->use_stdin || o->stdin_command;
    if (!from_stdin && (r = collect_targets(&b->u, o, npos, pos, &b->targets, &b->partial)) < 0) return cr_cli_fail(g, r);
    cr_time backup_start = cr_time_now(), timestamp = backup_start;
    if (o->time && (r = parse_time_flag(o->time, &timestamp)) < 0) return cr_cli_fail(g, r);
    split_tags(&o->tags, &b->tags, &b->tag_store);
    b->excludes_rec = o->excludes;
    const char *host = o->host ? o->host : o->hostname ? o->hostname : getenv("RESTIC_HOST");
    if (host && *host) snprintf(b->host, sizeof b->host, "%s", host);
    else if (gethostname(b->host, sizeof b->host) < 0) b->host[0] = 0;

    if (b->u.verbosity >= 2 && !g->json) ui_p(&b->u, "open repository\n");
    int rc = cr_cli_open_repo(g, &b->repo);
    if (rc) return rc;
    if (o->dry_run && (r = make_dry(b->repo)) < 0) return cr_cli_fail(g, r);
    if (!g->json) ui_v(&b->u, "lock repository\n");
    if (!o->dry_run && (rc = cr_cli_lock(g, b->repo, false, &b->lock))) return rc;
    if ((r = build_excluder(b)) < 0) return cr_cli_fail(g, r);
    if (!from_stdin) {
        if (b->h && b->h->parent_tag && !o->force) r = workspace_parent(b->repo, b->h, &timestamp, &b->parent, &b->have_parent);
        else r = find_parent(b->repo, o, &gb, b->host, &b->targets.v, &b->tags, &timestamp, &b->parent, &b->have_parent);
        if (r < 0) return cr_cli_fail(g, r);
        if (b->h && (b->h->have_parent = b->have_parent)) b->h->parent = b->parent.id;
        if (!g->json) {
            if (b->have_parent) {
                char sid[9];
                cr_id_short(&b->parent.id, sid);
                ui_p(&b->u, "using parent snapshot %s\n", sid);
            } else {
                ui_p(&b->u, "no parent snapshot found, will read all files\n");
            }
        }
    }
    if (!g->json) ui_v(&b->u, "load index files\n");
    if ((r = cr_repo_load_index(b->repo)) < 0) return cr_cli_fail(g, r);
    if (o->use_stdin) {
        b->stdin_fd = 0;
        if (!g->json) ui_v(&b->u, "read data from stdin\n");
    }
    if (o->stdin_command && (r = start_command(pos, npos, &b->cmd_pid, &b->stdin_fd)) < 0) return cr_cli_fail(g, r);
    if (from_stdin) {
        /* the single target is the made-up file */
        cr_buf p = CR_BUF_INIT, c = CR_BUF_INIT;
        cr_buf_printf(&p, "/%s", o->stdin_filename);
        cr_buf_nul(&p);
        cr_path_clean((const char *)p.data, &c);
        own_string(&b->targets, (const char *)c.data, c.len);
        cr_buf_free(&p);
        cr_buf_free(&c);
    }
    return archive_and_save(b, &timestamp, &backup_start);
}

static void backup_run_free(backup_run *b)
{
    cr_archiver_free(b->arch);
    cr_writer_free(b->w);
    cr_excluder_free(b->ex);
    cr_lock_release(b->lock);
    if (b->have_parent) cr_snapshot_clear(&b->parent);
    if (b->repo) cr_repo_close(b->repo);
    if (b->stdin_fd > 0) close(b->stdin_fd);
    target_list_free(&b->targets);
    cr_strv_free(&b->tags);
    free(b->tag_store);
    pthread_mutex_destroy(&b->u.mu);
}

static void free_opts(backup_opts *o)
{
    cr_strv *lists[] = {&o->excludes, &o->iexcludes, &o->exclude_files, &o->iexclude_files, &o->if_present,
                        &o->tags, &o->files_from, &o->files_from_verbatim, &o->files_from_raw};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) cr_strv_free(lists[i]);
}

static int backup_main(cr_global *g, int argc, char **argv, cr_backup_hooks *h)
{
    backup_opts o = {.stdin_filename = "stdin", .read_concurrency = -1};
    const cr_flag flags[] = {
        {"parent", 0, CR_FLAG_STRING, &o.parent, "use this parent snapshot (default: latest snapshot in the group determined by --group-by and not newer than the timestamp determined by --time)", "snapshot"},
        {"group-by", 'g', CR_FLAG_STRING, &o.group_by, "group snapshots by host, paths and/or tags, separated by comma (disable grouping with '') (default host,paths)", "group"},
        {"force", 'f', CR_FLAG_BOOL, &o.force, "force re-reading the source files/directories (overrides the \"parent\" flag)", NULL},
        {"exclude", 'e', CR_FLAG_STRINGS, &o.excludes, "exclude a pattern (can be specified multiple times)", "pattern"},
        {"iexclude", 0, CR_FLAG_STRINGS, &o.iexcludes, "same as --exclude pattern but ignores the casing of filenames", "pattern"},
        {"exclude-file", 0, CR_FLAG_STRINGS, &o.exclude_files, "read exclude patterns from a file (can be specified multiple times)", "file"},
        {"iexclude-file", 0, CR_FLAG_STRINGS, &o.iexclude_files, "same as --exclude-file but ignores casing of filenames in patterns", "file"},
        {"one-file-system", 'x', CR_FLAG_BOOL, &o.one_fs, "exclude other file systems, don't cross filesystem boundaries and subvolumes", NULL},
        {"exclude-if-present", 0, CR_FLAG_STRINGS, &o.if_present, "takes filename[:header], exclude contents of directories containing filename (except filename itself) if header of that file is as provided (can be specified multiple times)", "filename[:header]"},
        {"exclude-caches", 0, CR_FLAG_BOOL, &o.exclude_caches, "excludes cache directories that are marked with a CACHEDIR.TAG file. See https://bford.info/cachedir/ for the Cache Directory Tagging Standard", NULL},
        {"exclude-larger-than", 0, CR_FLAG_STRING, &o.larger_than, "max size of the files to be backed up (allowed suffixes: k/K, m/M, g/G, t/T)", "size"},
        {"stdin", 0, CR_FLAG_BOOL, &o.use_stdin, "read backup from stdin", NULL},
        {"stdin-filename", 0, CR_FLAG_STRING, &o.stdin_filename, "filename to use when reading from stdin (default \"stdin\")", "filename"},
        {"stdin-from-command", 0, CR_FLAG_BOOL, &o.stdin_command, "interpret arguments as command to execute and store its stdout", NULL},
        {"tag", 0, CR_FLAG_STRINGS, &o.tags, "add tags for the new snapshot in the format `tag[,tag,...]` (can be specified multiple times)", "tags"},
        {"read-concurrency", 0, CR_FLAG_INT, &o.read_concurrency, "read n files concurrently (default: $RESTIC_READ_CONCURRENCY or 2)", "n"},
        {"host", 'H', CR_FLAG_STRING, &o.host, "set the hostname for the snapshot manually (default: $RESTIC_HOST). To prevent an expensive rescan use the \"parent\" flag", "hostname"},
        {"hostname", 0, CR_FLAG_STRING, &o.hostname, "set the hostname for the snapshot manually (deprecated: use --host)", "hostname"},
        {"files-from", 0, CR_FLAG_STRINGS, &o.files_from, "read the files to backup from file (can be combined with file args; can be specified multiple times)", "file"},
        {"files-from-verbatim", 0, CR_FLAG_STRINGS, &o.files_from_verbatim, "read the files to backup from file (can be combined with file args; can be specified multiple times)", "file"},
        {"files-from-raw", 0, CR_FLAG_STRINGS, &o.files_from_raw, "read the files to backup from file (can be combined with file args; can be specified multiple times)", "file"},
        {"time", 0, CR_FLAG_STRING, &o.time, "time of the backup (ex. '2012-11-01 22:08:41') (default: now)", "time"},
        {"with-atime", 0, CR_FLAG_BOOL, &o.with_atime, "store the atime for all files and directories", NULL},
        {"ignore-inode", 0, CR_FLAG_BOOL, &o.ignore_inode, "ignore inode number and ctime changes when checking for modified files (default: $RESTIC_IGNORE_INODE or false)", NULL},
        {"ignore-ctime", 0, CR_FLAG_BOOL, &o.ignore_ctime, "ignore ctime changes when checking for modified files (default: $RESTIC_IGNORE_CTIME or false)", NULL},
        {"dry-run", 'n', CR_FLAG_BOOL, &o.dry_run, "do not upload or write any data, just show what would be done", NULL},
        {"no-scan", 0, CR_FLAG_BOOL, &o.no_scan, "do not run scanner to estimate size of backup", NULL},
        {"skip-if-unchanged", 0, CR_FLAG_BOOL, &o.skip_if_unchanged, "skip snapshot creation if identical to parent snapshot", NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    o.ignore_inode = env_bool("RESTIC_IGNORE_INODE");
    o.ignore_ctime = env_bool("RESTIC_IGNORE_CTIME");
    int npos = 0;
    int r = cr_parse_flags(g, &cr_cmd_backup, flags, argc, argv, &npos);
    if (r == 1) return free_opts(&o), CR_EXIT_OK;
    if (r < 0) return free_opts(&o), cr_cli_fail(g, r);
    if (o.read_concurrency < 0) {
        const char *env = getenv("RESTIC_READ_CONCURRENCY");
        o.read_concurrency = env && *env ? strtol(env, NULL, 10) : 0;
    }
    if (o.ignore_inode) o.ignore_ctime = true;

    backup_run b = {.g = g, .o = &o, .stdin_fd = -1, .h = h};
    b.u.g = g;
    b.u.json = g->json;
    b.u.verbosity = g->quiet ? 0 : g->verbose >= 2 ? 3 : g->verbose == 1 ? 2 : 1;
    b.u.tty = cr_stdout_is_tty();
    b.u.start = now_mono();
    b.u.interval = progress_interval(&b.u);
    pthread_mutex_init(&b.u.mu, NULL);
    int rc = prepare_and_run(&b, npos, argv);
    if (b.cmd_pid > 0 && rc != CR_EXIT_OK) {
        kill(b.cmd_pid, SIGTERM);
        waitpid(b.cmd_pid, NULL, 0);
    }
    backup_run_free(&b);
    free_opts(&o);
    return rc;
}

static int run_backup(cr_global *g, int argc, char **argv)
{
    return backup_main(g, argc, argv, NULL);
}

int cr_backup_run_hooked(cr_global *g, int argc, char **argv, cr_backup_hooks *h)
{
    return backup_main(g, argc, argv, h);
}

const cr_command cr_cmd_backup = {"backup", "Create a new backup of files and/or directories",
                                  "crestic backup [flags] [FILE/DIR] ...", run_backup};
