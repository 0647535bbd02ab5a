/* Backup exclude rules (see excluder.h). */
#include "repo/excluder.h"

#include <ctype.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo/archive_internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/goquote.h"
#include "util/pattern.h"

#define CACHEDIR_TAG_SPEC "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55"

/* One --exclude-if-present rule and the verdicts per directory so far. */
typedef struct {
    char *file, *header;
    size_t header_len;
    char **dirs;        /* open addressing, verdict in parallel array */
    bool *verdict;
    size_t n, cap;
} tag_rule;

typedef struct {
    char *path;
    dev_t dev;
} allowed_dev;

struct cr_excluder {
    cr_patterns *pats, *ipats;
    tag_rule *tags;
    size_t ntags;
    int64_t larger_than;
    allowed_dev *devs;
    size_t ndevs;
    cr_exclude_warn_fn warn;
    void *ud;
    pthread_mutex_t mu; /* tag verdict caches */
};

/* ---- reading text files ------------------------------------------------ */

static int read_all(int fd, const char *name, cr_buf *out)
{
    for (;;) {
        CR_TRY(cr_buf_reserve(out, 65536));
        ssize_t n = read(fd, out->data + out->len, 65536);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return cr_error_sys(-errno, "read %s", name);
        if (n == 0) return 0;
        out->len += (size_t)n;
    }
}

static int utf16_to_utf8(const uint8_t *p, size_t n, bool le, cr_buf *out)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint32_t u = le ? (uint32_t)(p[i] | p[i + 1] << 8) : (uint32_t)(p[i] << 8 | p[i + 1]);
        if (u >= 0xd800 && u < 0xdc00 && i + 3 < n) {
            uint32_t lo = le ? (uint32_t)(p[i + 2] | p[i + 3] << 8) : (uint32_t)(p[i + 2] << 8 | p[i + 3]);
            if (lo >= 0xdc00 && lo < 0xe000) {
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                i += 2;
            } else u = 0xfffd;
        } else if (u >= 0xd800 && u < 0xe000) u = 0xfffd;
        uint8_t enc[4];
        CR_TRY(cr_buf_append(out, enc, (size_t)cr_utf8_encode(u, enc)));
    }
    return 0;
}

/* textfile.Read: drop a UTF-8 BOM, decode UTF-16 with a BOM. */
static int decode_text(cr_buf *raw, cr_buf *text)
{
    const uint8_t *p = raw->data;
    size_t n = raw->len;
    if (n >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) return cr_buf_append(text, p + 3, n - 3);
    if (n >= 2 && ((p[0] == 0xff && p[1] == 0xfe) || (p[0] == 0xfe && p[1] == 0xff)))
        return utf16_to_utf8(p + 2, n - 2, p[0] == 0xff, text);
    return n ? cr_buf_append(text, p, n) : 0;
}

int cr_read_text_lines(const char *path, cr_buf *store, char ***lines, size_t *n)
{
    *lines = NULL;
    *n = 0;
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT;
    if (!strcmp(path, "-")) CR_TRY(read_all(0, "stdin", &raw));
    else {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return cr_error_sys(-errno, "open %s", path);
        CR_TRY(read_all(fd, path, &raw));
    }
    cr_buf_reset(store);
    CR_TRY(decode_text(&raw, store));
    CR_TRY(cr_buf_putc(store, '\n')); /* room for a NUL after the last line */
    size_t count = 0;
    for (size_t i = 0; i + 1 < store->len; i++) count += store->data[i] == '\n';
    count++;
    char **v = calloc(count + 1, sizeof *v);
    if (!v) return cr_error(-ENOMEM, "out of memory");
    size_t k = 0, start = 0, end = store->len - 1; /* the added '\n' is not content */
    for (size_t i = 0; i <= end; i++) {
        if (i < end && store->data[i] != '\n') continue;
        size_t e = i;
        if (e > start && store->data[e - 1] == '\r') e--;
        store->data[e] = 0;
        if (i == end && start == end) break; /* no empty line after a final '\n' */
        v[k++] = (char *)store->data + start;
        start = i + 1;
    }
    *lines = v;
    *n = k;
    return 0;
}

/* ---- patterns ----------------------------------------------------------- */

static bool is_shell_special(char c)
{
    return strchr("*#$@!?-", c) || (c >= '0' && c <= '9');
}

static bool is_alnum_(char c)
{
    return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Go's os.Expand with restic's mapping: $$ is a literal '$', other names
 * come from the environment. */
static int expand_env(const char *s, cr_buf *out)
{
    cr_buf_reset(out);
    size_t n = strlen(s);
    for (size_t j = 0; j < n; j++) {
        if (s[j] != '$' || j + 1 >= n) {
            CR_TRY(cr_buf_putc(out, s[j]));
            continue;
        }
        const char *r = s + j + 1;
        size_t rl = n - j - 1, w = 0;
        const char *name = NULL;
        size_t name_len = 0;
        if (r[0] == '{') {
            if (rl > 2 && is_shell_special(r[1]) && r[2] == '}') name = r + 1, name_len = 1, w = 3;
            else {
                size_t i = 1;
                while (i < rl && r[i] != '}') i++;
                if (i == rl) w = 1;              /* "${" without '}': eaten */
                else if (i == 1) w = 2;          /* "${}": eaten */
                else name = r + 1, name_len = i - 1, w = i + 1;
            }
        } else if (is_shell_special(r[0])) name = r, name_len = 1, w = 1;
        else {
            while (w < rl && is_alnum_(r[w])) w++;
            if (w) name = r, name_len = w;
        }
        if (name) {
            if (name_len == 1 && name[0] == '$') CR_TRY(cr_buf_putc(out, '$'));
            else {
                char key[256];
                snprintf(key, sizeof key, "%.*s", (int)name_len, name);
                const char *v = getenv(key);
                if (v) CR_TRY(cr_buf_puts(out, v));
            }
        } else if (!w) CR_TRY(cr_buf_putc(out, '$')); /* '$' not followed by a name stays */
        j += w;
    }
    return cr_buf_nul(out);
}

static char *trim_space(char *s)
{
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

/* Append the patterns of the files (comments and blank lines dropped,
 * environment expanded) to a list of malloc'd strings. */
static int read_pattern_files(const char *const *files, size_t nfiles, char ***list, size_t *n)
{
    cr_buf store = CR_BUF_INIT, exp = CR_BUF_INIT;
    int r = 0;
    for (size_t f = 0; r == 0 && f < nfiles; f++) {
        char **lines = NULL;
        size_t nl = 0;
        r = cr_read_text_lines(files[f], &store, &lines, &nl);
        if (r < 0) {
            r = cr_error_ctx(r, "failed to read patterns from file \"%s\"", files[f]);
            break;
        }
        for (size_t i = 0; r == 0 && i < nl; i++) {
            char *line = trim_space(lines[i]);
            if (!*line || *line == '#') continue;
            r = expand_env(line, &exp);
            char **nv = r == 0 ? realloc(*list, (*n + 1) * sizeof *nv) : NULL;
            char *dup = nv ? strdup((const char *)exp.data) : NULL;
            if (r == 0 && (!nv || !dup)) r = cr_error(-ENOMEM, "out of memory");
            if (nv) *list = nv;
            if (dup) (*list)[(*n)++] = dup;
        }
        free(lines);
    }
    cr_buf_free(&store);
    cr_buf_free(&exp);
    return r;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Compile flag patterns plus file patterns into one list. */
static int compile(const char *const *flag_pats, size_t nflag, const char *const *files, size_t nfiles,
                   bool fold, const char *flag, const char *file_flag, cr_patterns **out)
{
    char **from_files = NULL;
    size_t nff = 0;
    int r = read_pattern_files(files, nfiles, &from_files, &nff);
    if (r == 0 && nff) {
        cr_patterns *check = NULL;
        r = cr_patterns_new((const char *const *)from_files, nff, fold, &check);
        if (r < 0) r = cr_error_ctx(r, "%s", file_flag);
        cr_patterns_free(check);
    }
    size_t total = nflag + nff;
    const char **all = r == 0 && total ? calloc(total, sizeof *all) : NULL;
    if (r == 0 && total && !all) r = cr_error(-ENOMEM, "out of memory");
    if (r == 0 && total) {
        for (size_t i = 0; i < nflag; i++) all[i] = flag_pats[i];
        for (size_t i = 0; i < nff; i++) all[nflag + i] = from_files[i];
        r = cr_patterns_new(all, total, fold, out);
        if (r < 0) r = cr_error_ctx(r, "%s", nflag ? flag : file_flag);
    }
    free(all);
    free_list(from_files, nff);
    return r;
}

/* ---- tag files ----------------------------------------------------------- */

static int add_tag_rule(cr_excluder *e, const char *spec)
{
    if (!*spec) return cr_error(CR_E_USAGE, "name for exclusion tagfile is empty");
    const char *colon = strchr(spec, ':');
    if (colon == spec) return cr_error(CR_E_USAGE, "no name for exclusion tagfile provided");
    tag_rule *v = realloc(e->tags, (e->ntags + 1) * sizeof *v);
    if (!v) return cr_error(-ENOMEM, "out of memory");
    e->tags = v;
    tag_rule *t = &e->tags[e->ntags];
    memset(t, 0, sizeof *t);
    t->file = colon ? strndup(spec, (size_t)(colon - spec)) : strdup(spec);
    t->header = strdup(colon ? colon + 1 : "");
    if (!t->file || !t->header) {
        free(t->file);
        free(t->header);
        return cr_error(-ENOMEM, "out of memory");
    }
    t->header_len = strlen(t->header);
    e->ntags++;
    return 0;
}

static void warnf(cr_excluder *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(cr_excluder *e, const char *fmt, ...)
{
    if (!e->warn) return;
    char msg[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e->warn(e->ud, msg);
}

/* Does dir hold the tag file with the right header? */
static bool dir_has_tag(cr_excluder *e, const tag_rule *t, const char *dir)
{
    cr_buf tf = CR_BUF_INIT;
    if (cr_path_join(&tf, dir, t->file, strlen(t->file)) < 0) return false;
    const char *path = (const char *)tf.data;
    struct stat st;
    bool hit = false;
    if (lstat(path, &st) < 0) {
        if (errno != ENOENT && errno != ENOTDIR) warnf(e, "could not access exclusion tagfile: lstat %s: %s", path, strerror(errno));
    } else if (!t->header_len) {
        hit = true;
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) warnf(e, "could not open exclusion tagfile: open %s: %s", path, strerror(errno));
        else {
            char *buf = malloc(t->header_len);
            size_t got = 0;
            ssize_t n = 1;
            while (buf && got < t->header_len && (n = read(fd, buf + got, t->header_len - got)) > 0) got += (size_t)n;
            if (!buf) ;
            else if (n < 0) warnf(e, "could not read signature from exclusion tagfile \"%s\": %s\n", path, strerror(errno));
            else if (got == 0) warnf(e, "invalid (too short) signature in exclusion tagfile \"%s\"\n", path);
            else if (got < t->header_len) warnf(e, "could not read signature from exclusion tagfile \"%s\": unexpected EOF\n", path);
            else if (memcmp(buf, t->header, t->header_len)) warnf(e, "invalid signature in exclusion tagfile \"%s\"\n", path);
            else hit = true;
            free(buf);
            close(fd);
        }
    }
    cr_buf_free(&tf);
    return hit;
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Cached verdict for a directory; -1 if not known yet. */
static int cache_get(const tag_rule *t, const char *dir)
{
    if (!t->cap) return -1;
    for (size_t s = str_hash(dir) & (t->cap - 1); t->dirs[s]; s = (s + 1) & (t->cap - 1))
        if (!strcmp(t->dirs[s], dir)) return t->verdict[s];
    return -1;
}

static void cache_put(tag_rule *t, const char *dir, bool v)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        char **dirs = calloc(cap, sizeof *dirs);
        bool *ver = calloc(cap, sizeof *ver);
        if (!dirs || !ver) {
            free(dirs);
            free(ver);
            return; /* no caching; still correct */
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->dirs[i]) continue;
            size_t s = str_hash(t->dirs[i]) & (cap - 1);
            while (dirs[s]) s = (s + 1) & (cap - 1);
            dirs[s] = t->dirs[i];
            ver[s] = t->verdict[i];
        }
        free(t->dirs);
        free(t->verdict);
        t->dirs = dirs, t->verdict = ver, t->cap = cap;
    }
    char *d = strdup(dir);
    if (!d) return;
    size_t s = str_hash(dir) & (t->cap - 1);
    while (t->dirs[s]) s = (s + 1) & (t->cap - 1);
    t->dirs[s] = d;
    t->verdict[s] = v;
    t->n++;
}

/* Excluded because its directory holds the tag (the tag file itself stays). */
static bool reject_by_tag(cr_excluder *e, tag_rule *t, const char *abspath)
{
    if (!strcmp(cr_path_base(abspath), t->file)) return false;
    cr_buf dir = CR_BUF_INIT;
    if (cr_path_dir(abspath, &dir) < 0) return false;
    const char *d = (const char *)dir.data;
    pthread_mutex_lock(&e->mu);
    int v = cache_get(t, d);
    if (v < 0) {
        v = dir_has_tag(e, t, d);
        cache_put(t, d, v);
    }
    pthread_mutex_unlock(&e->mu);
    cr_buf_free(&dir);
    return v;
}

/* ---- devices (--one-file-system) ------------------------------------------ */

static int build_device_map(cr_excluder *e, const char *const *targets, size_t n)
{
    e->devs = calloc(n ? n : 1, sizeof *e->devs);
    if (!e->devs) return cr_error(-ENOMEM, "out of memory");
    cr_buf abs = CR_BUF_INIT;
    int r = 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = cr_path_abs(targets[i], &abs);
        struct stat st;
        if (r == 0 && lstat((const char *)abs.data, &st) < 0) r = cr_error_sys(-errno, "lstat %s", (const char *)abs.data);
        if (r == 0 && !(e->devs[e->ndevs].path = strdup((const char *)abs.data))) r = cr_error(-ENOMEM, "out of memory");
        if (r == 0) e->devs[e->ndevs++].dev = st.st_dev;
    }
    cr_buf_free(&abs);
    if (r == 0 && !e->ndevs) r = cr_error(CR_E_USAGE, "zero allowed devices");
    return r;
}

/* The device of the nearest target at or above path; false if none. */
static bool allowed_device_for(const cr_excluder *e, const char *path, dev_t *dev)
{
    size_t pl = strlen(path);
    const allowed_dev *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < e->ndevs; i++) {
        const char *t = e->devs[i].path;
        size_t tl = strlen(t);
        bool above = tl <= pl && !memcmp(t, path, tl) && (tl == pl || path[tl] == '/' || (tl == 1 && t[0] == '/'));
        if (above && (!best || tl > best_len)) best = &e->devs[i], best_len = tl;
    }
    if (best) *dev = best->dev;
    return best != NULL;
}

static bool reject_by_device(const cr_excluder *e, const char *abspath, const struct stat *st)
{
    dev_t allowed;
    if (!allowed_device_for(e, abspath, &allowed) || allowed == st->st_dev) return false;
    if (!S_ISDIR(st->st_mode)) return true;
    /* Keep mount points: directories whose parent is on an allowed device. */
    cr_buf dir = CR_BUF_INIT;
    bool reject = true;
    struct stat pst;
    if (cr_path_dir(abspath, &dir) == 0 && lstat((const char *)dir.data, &pst) == 0 &&
        allowed_device_for(e, (const char *)dir.data, &allowed) && allowed == pst.st_dev)
        reject = false;
    cr_buf_free(&dir);
    return reject;
}

/* ---- public --------------------------------------------------------------- */

int cr_excluder_new(const cr_exclude_opts *o, cr_excluder **out)
{
    cr_excluder *e = calloc(1, sizeof *e);
    if (!e) return cr_error(-ENOMEM, "out of memory");
    pthread_mutex_init(&e->mu, NULL);
    e->warn = o->warn;
    e->ud = o->ud;
    e->larger_than = o->larger_than;
    int r = compile(o->iexcludes, o->niexcludes, o->iexclude_files, o->niexclude_files, true, "--iexclude",
                    "--iexclude-file", &e->ipats);
    if (r == 0)
        r = compile(o->excludes, o->nexcludes, o->exclude_files, o->nexclude_files, false, "--exclude",
                    "--exclude-file", &e->pats);
    if (r == 0 && o->one_file_system) r = build_device_map(e, o->targets, o->ntargets);
    for (size_t i = 0; r == 0 && i < o->nif_present; i++) r = add_tag_rule(e, o->if_present[i]);
    if (r == 0 && o->exclude_caches) r = add_tag_rule(e, CACHEDIR_TAG_SPEC);
    if (r < 0) {
        cr_excluder_free(e);
        return r;
    }
    *out = e;
    return 0;
}

void cr_excluder_free(cr_excluder *e)
{
    if (!e) return;
    cr_patterns_free(e->pats);
    cr_patterns_free(e->ipats);
    for (size_t i = 0; i < e->ntags; i++) {
        tag_rule *t = &e->tags[i];
        for (size_t k = 0; k < t->cap; k++) free(t->dirs[k]);
        free(t->dirs);
        free(t->verdict);
        free(t->file);
        free(t->header);
    }
    free(e->tags);
    for (size_t i = 0; i < e->ndevs; i++) free(e->devs[i].path);
    free(e->devs);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

bool cr_excluder_reject_path(cr_excluder *e, const char *abspath)
{
    if (!e) return false;
    if (e->ipats && cr_patterns_match(e->ipats, abspath)) return true;
    return e->pats && cr_patterns_match(e->pats, abspath);
}

bool cr_excluder_reject_stat(cr_excluder *e, const char *abspath, const struct stat *st)
{
    if (!e) return false;
    if (e->ndevs && reject_by_device(e, abspath, st)) return true;
    if (e->larger_than >= 0 && !S_ISDIR(st->st_mode) && st->st_size > e->larger_than) return true;
    for (size_t i = 0; i < e->ntags; i++)
        if (reject_by_tag(e, &e->tags[i], abspath)) return true;
    return false;
}

int cr_parse_size(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    int64_t mult = 1;
    if (n) {
        switch (s[n - 1]) {
        case 'k': case 'K': mult = 1ll << 10; n--; break;
        case 'm': case 'M': mult = 1ll << 20; n--; break;
        case 'g': case 'G': mult = 1ll << 30; n--; break;
        case 't': case 'T': mult = 1ll << 40; n--; break;
        default: break;
        }
    }
    char num[32];
    if (!n || n >= sizeof num) return cr_error(CR_E_USAGE, "invalid size \"%s\"", s);
    memcpy(num, s, n);
    num[n] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(num, &end, 10);
    if (errno || *end || v < 0 || v > INT64_MAX / mult)
        return cr_error(CR_E_USAGE, "strconv.ParseInt: parsing \"%s\": invalid syntax", num);
    *out = v * mult;
    return 0;
}
