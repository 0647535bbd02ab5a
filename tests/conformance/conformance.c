/* The backend conformance suite: one program every backend's e2e test runs
 * against its real server.
 *
 *   crestic-conformance [--cacert FILE] [--insecure-tls] [--tls-client-cert FILE]
 *                       [-o key=value]... [--big BYTES] [--threads N] [--many N] LOCATION
 *
 * Credentials come from the backend's usual environment variables.  LOCATION
 * must not hold a repository yet (the suite creates it and leaves it empty).
 * Listings are paged small (CRESTIC_LIST_PAGE_SIZE, default here 7) so paging
 * is exercised with few objects.  Prints one "ok"/"FAIL" line per check and
 * "N passed, N failed"; exit 0 only when everything passed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "backends/backend.h"
#include "backends/http.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/id.h"

static int n_pass, n_fail;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf(ok ? "ok   " : "FAIL ");
    vprintf(fmt, ap);
    va_end(ap);
    if (!ok && *cr_error_message()) printf("  [%s]", cr_error_message());
    printf("\n");
    fflush(stdout);
    cr_error_clear();
    ok ? n_pass++ : n_fail++;
}

/* An object: random bytes of a size, named by their SHA-256. */
typedef struct {
    cr_buf data;
    char name[65];
} object;

static void object_make(object *o, size_t size)
{
    uint8_t sum[32];
    o->data = (cr_buf)CR_BUF_INIT;
    if (cr_buf_resize(&o->data, size) < 0 || (size && RAND_bytes(o->data.data, (int)size) != 1)) abort();
    EVP_Digest(o->data.data, size, sum, NULL, EVP_sha256(), NULL);
    cr_hex_encode(sum, sizeof sum, o->name);
}

static bool same(const cr_buf *b, const void *p, size_t n)
{
    return b->len == n && (n == 0 || !memcmp(b->data, p, n));
}

/* ---- listing ---------------------------------------------------------------- */

typedef struct {
    char (*names)[65];
    uint64_t *sizes;
    size_t n, cap;
    bool bad_name;
} listing;

static int collect(void *ud, const char *name, uint64_t size)
{
    listing *l = ud;
    if (strlen(name) != 64) l->bad_name = true;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        void *nn = realloc(l->names, cap * sizeof *l->names), *ns = realloc(l->sizes, cap * sizeof *l->sizes);
        if (!nn || !ns) abort();
        l->names = nn;
        l->sizes = ns;
        l->cap = cap;
    }
    snprintf(l->names[l->n], 65, "%s", name);
    l->sizes[l->n++] = size;
    return 0;
}

static void listing_free(listing *l)
{
    free(l->names);
    free(l->sizes);
    memset(l, 0, sizeof *l);
}

static int list_type(cr_backend *b, cr_filetype t, listing *l)
{
    listing_free(l);
    return cr_be_list(b, t, collect, l);
}

/* Count of entries in l named name with size size. */
static size_t count_of(const listing *l, const char *name, uint64_t size)
{
    size_t c = 0;
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], name) && l->sizes[i] == size) c++;
    return c;
}

/* ---- the checks --------------------------------------------------------------- */

static void check_empty(cr_backend *b)
{
    listing l = {0};
    for (int t = CR_FILE_KEY; t < CR_FILE_NTYPES; t++) {
        int r = list_type(b, (cr_filetype)t, &l);
        check(r == 0 && l.n == 0, "list %s of a new repository: empty (got %zu, rc %d)", cr_filetype_dir((cr_filetype)t), l.n, r);
    }
    uint64_t size;
    cr_buf out = CR_BUF_INIT;
    check(cr_be_stat(b, CR_FILE_CONFIG, "config", &size) == -ENOENT, "stat of an absent config: ENOENT");
    check(cr_be_load(b, CR_FILE_CONFIG, "config", 0, 0, &out) == -ENOENT, "load of an absent config: ENOENT");
    check(cr_be_stat(b, CR_FILE_PACK, "00000000000000000000000000000000000000000000000000000000000000ff", &size) == -ENOENT,
          "stat of an absent pack: ENOENT");
    cr_buf_free(&out);
    listing_free(&l);
}

static void check_config(cr_backend *b, const char *location)
{
    static const char config[] = "not really a config, but bytes all the same\n";
    uint64_t size = 0;
    cr_buf out = CR_BUF_INIT;
    check(cr_be_save(b, CR_FILE_CONFIG, "config", config, sizeof config) == 0, "save config");
    check(cr_be_stat(b, CR_FILE_CONFIG, "config", &size) == 0 && size == sizeof config, "stat config: its size");
    check(cr_be_load(b, CR_FILE_CONFIG, "config", 0, 0, &out) == 0 && same(&out, config, sizeof config), "load config: same bytes");

    cr_backend *again = NULL;
    int r = cr_backend_open(location, &again);
    check(r == 0, "open the location a second time");
    if (r == 0) {
        check(cr_be_load(again, CR_FILE_CONFIG, "config", 0, 0, &out) == 0 && same(&out, config, sizeof config),
              "second handle reads the config");
        cr_backend_close(again);
    }
    cr_buf_free(&out);
}

static void check_ranges(cr_backend *b, size_t big)
{
    object o;
    object_make(&o, big);
    const uint8_t *d = o.data.data;
    uint64_t size = 0;
    cr_buf out = CR_BUF_INIT;
    check(cr_be_save(b, CR_FILE_PACK, o.name, d, big) == 0, "save a %zu-byte pack", big);
    check(cr_be_stat(b, CR_FILE_PACK, o.name, &size) == 0 && size == big, "stat pack: its size");
    check(cr_be_load(b, CR_FILE_PACK, o.name, 0, 0, &out) == 0 && same(&out, d, big), "load pack whole");
    check(cr_be_load(b, CR_FILE_PACK, o.name, 1000, 5000, &out) == 0 && same(&out, d + 1000, 5000), "load offset 1000 length 5000");
    check(cr_be_load(b, CR_FILE_PACK, o.name, 0, 1, &out) == 0 && same(&out, d, 1), "load the first byte");
    check(cr_be_load(b, CR_FILE_PACK, o.name, big - 10, 10, &out) == 0 && same(&out, d + big - 10, 10), "load the last 10 bytes");
    check(cr_be_load(b, CR_FILE_PACK, o.name, 100, 0, &out) == 0 && same(&out, d + 100, big - 100),
          "load from offset 100 to the end (length 0)");
    check(cr_be_load(b, CR_FILE_PACK, o.name, big - 10, 20, &out) < 0, "load past the end: an error");
    check(cr_be_load(b, CR_FILE_PACK, o.name, big + 100, 10, &out) < 0, "load starting past the end: an error");

    object other;
    object_make(&other, 4096);
    check(cr_be_load(b, CR_FILE_PACK, other.name, 0, 10, &out) == -ENOENT, "load of an absent pack: ENOENT");
    check(cr_be_save(b, CR_FILE_PACK, other.name, d, 4096) < 0, "a save whose content does not match its name: refused");
    check(cr_be_stat(b, CR_FILE_PACK, other.name, &size) == -ENOENT, "... and nothing stored under that name");

    check(cr_be_remove(b, CR_FILE_PACK, o.name) == 0, "remove pack");
    check(cr_be_stat(b, CR_FILE_PACK, o.name, &size) == -ENOENT, "removed pack: stat ENOENT");
    check(cr_be_load(b, CR_FILE_PACK, o.name, 0, 0, &out) == -ENOENT, "removed pack: load ENOENT");
    check(cr_be_remove(b, CR_FILE_PACK, o.name) == 0, "removing an absent pack: success");
    cr_buf_free(&out);
    cr_buf_free(&o.data);
    cr_buf_free(&other.data);
}

static void check_empty_object(cr_backend *b)
{
    object o;
    object_make(&o, 0);
    uint64_t size = 1;
    cr_buf out = CR_BUF_INIT;
    check(cr_be_save(b, CR_FILE_SNAPSHOT, o.name, "", 0) == 0, "save an empty object");
    check(cr_be_stat(b, CR_FILE_SNAPSHOT, o.name, &size) == 0 && size == 0, "stat empty object: size 0");
    check(cr_be_load(b, CR_FILE_SNAPSHOT, o.name, 0, 0, &out) == 0 && out.len == 0, "load empty object");
    check(cr_be_remove(b, CR_FILE_SNAPSHOT, o.name) == 0, "remove empty object");
    cr_buf_free(&out);
    cr_buf_free(&o.data);
}

/* Streamed saves (backends that offer them): the object appears only at
 * commit, under the SHA-256 of what was written; an abort leaves nothing. */
static int stream_object(cr_backend *b, const object *o, size_t pieces, bool commit, uint8_t sum[32])
{
    cr_be_stream *s = NULL;
    int r = cr_be_stream_open(b, CR_FILE_PACK, &s);
    size_t step = o->data.len / pieces + 1;
    for (size_t off = 0; r == 0 && off < o->data.len; off += step) {
        size_t n = o->data.len - off < step ? o->data.len - off : step;
        r = cr_be_stream_write(s, o->data.data + off, n);
    }
    if (r == 0 && commit) return cr_be_stream_commit(s, sum);
    cr_be_stream_abort(s);
    return r;
}

static void check_streams(cr_backend *b, size_t big)
{
    if (!cr_be_can_stream(b)) {
        printf("skip streamed saves: not offered by this backend\n");
        return;
    }
    object o;
    object_make(&o, big);
    uint8_t sum[32];
    char hex[65] = "";
    listing l = {0};
    uint64_t size = 0;
    cr_buf out = CR_BUF_INIT;
    cr_be_stream *s = NULL;
    int r = cr_be_stream_open(b, CR_FILE_PACK, &s);
    if (r == 0) r = cr_be_stream_write(s, o.data.data, big / 2);
    check(r == 0 && list_type(b, CR_FILE_PACK, &l) == 0 && l.n == 0, "a stream being written: not listed");
    if (r == 0) r = cr_be_stream_write(s, o.data.data + big / 2, big - big / 2);
    check(r == 0 && cr_be_stream_size(s) == big, "stream: size of what was written");
    r = s ? cr_be_stream_commit(s, sum) : r;
    cr_hex_encode(sum, sizeof sum, hex);
    check(r == 0 && !strcmp(hex, o.name), "stream commit: named by the SHA-256 of the content");
    check(cr_be_load(b, CR_FILE_PACK, o.name, 0, 0, &out) == 0 && same(&out, o.data.data, big), "streamed pack loads whole");
    check(list_type(b, CR_FILE_PACK, &l) == 0 && l.n == 1 && count_of(&l, o.name, big) == 1, "streamed pack listed once, with its size");
    check(stream_object(b, &o, 7, true, sum) == -EEXIST, "streaming the same content again: EEXIST");
    check(cr_be_stat(b, CR_FILE_PACK, o.name, &size) == 0 && size == big, "... the stored object unchanged");
    object other;
    object_make(&other, 5000);
    check(stream_object(b, &other, 3, false, sum) == 0, "stream aborted");
    check(cr_be_stat(b, CR_FILE_PACK, other.name, &size) == -ENOENT && list_type(b, CR_FILE_PACK, &l) == 0 && l.n == 1,
          "... nothing stored");
    check(cr_be_remove(b, CR_FILE_PACK, o.name) == 0, "remove streamed pack");
    listing_free(&l);
    cr_buf_free(&out);
    cr_buf_free(&o.data);
    cr_buf_free(&other.data);
}

/* Concurrent saves: threads save disjoint slices of one object array. */
typedef struct {
    cr_backend *b;
    cr_filetype t;
    object *objs;
    size_t from, to;
    int failures;
} saver;

static void *save_slice(void *arg)
{
    saver *s = arg;
    for (size_t i = s->from; i < s->to; i++)
        if (cr_be_save(s->b, s->t, s->objs[i].name, s->objs[i].data.data, s->objs[i].data.len) < 0) s->failures++;
    return NULL;
}

static void check_many(cr_backend *b, cr_filetype t, size_t n, unsigned threads)
{
    object *objs = calloc(n, sizeof *objs);
    saver *savers = calloc(threads, sizeof *savers);
    pthread_t *tids = calloc(threads, sizeof *tids);
    if (!objs || !savers || !tids) abort();
    for (size_t i = 0; i < n; i++) object_make(&objs[i], 100 + i * 37 % 3000);

    int failures = 0;
    for (unsigned k = 0; k < threads; k++) {
        savers[k] = (saver){b, t, objs, n * k / threads, n * (k + 1) / threads, 0};
        if (pthread_create(&tids[k], NULL, save_slice, &savers[k])) abort();
    }
    for (unsigned k = 0; k < threads; k++) {
        pthread_join(tids[k], NULL);
        failures += savers[k].failures;
    }
    check(failures == 0, "%zu concurrent saves to %s from %u threads (%d failed)", n, cr_filetype_dir(t), threads, failures);

    listing l = {0};
    int r = list_type(b, t, &l);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) found += count_of(&l, objs[i].name, objs[i].data.len) == 1;
    check(r == 0 && l.n == n && found == n && !l.bad_name, "list %s: each of the %zu objects once, with its size (listed %zu, matched %zu)",
          cr_filetype_dir(t), n, l.n, found);

    int removed = 0;
    for (size_t i = 0; i < n; i++) removed += cr_be_remove(b, t, objs[i].name) == 0;
    check((size_t)removed == n, "remove all %zu", n);
    r = list_type(b, t, &l);
    check(r == 0 && l.n == 0, "list %s after removing all: empty (got %zu)", cr_filetype_dir(t), l.n);

    listing_free(&l);
    for (size_t i = 0; i < n; i++) cr_buf_free(&objs[i].data);
    free(objs);
    free(savers);
    free(tids);
}

static void check_types(cr_backend *b)
{
    static const cr_filetype types[] = {CR_FILE_KEY, CR_FILE_PACK, CR_FILE_INDEX, CR_FILE_SNAPSHOT, CR_FILE_LOCK};
    object o[5];
    listing l = {0};
    for (size_t i = 0; i < 5; i++) {
        object_make(&o[i], 64 + i);
        check(cr_be_save(b, types[i], o[i].name, o[i].data.data, o[i].data.len) == 0, "save one %s object", cr_filetype_dir(types[i]));
    }
    for (size_t i = 0; i < 5; i++) {
        int r = list_type(b, types[i], &l);
        check(r == 0 && l.n == 1 && count_of(&l, o[i].name, o[i].data.len) == 1, "list %s: only its own object",
              cr_filetype_dir(types[i]));
    }
    for (size_t i = 0; i < 5; i++) {
        check(cr_be_remove(b, types[i], o[i].name) == 0, "remove the %s object", cr_filetype_dir(types[i]));
        cr_buf_free(&o[i].data);
    }
    listing_free(&l);
}

static void usage(void)
{
    fprintf(stderr, "usage: crestic-conformance [--cacert FILE] [--insecure-tls] [--tls-client-cert FILE] [-o key=value]...\n"
                    "                           [--big BYTES] [--threads N] [--many N] LOCATION\n");
    exit(2);
}

int main(int argc, char **argv)
{
    cr_http_tls tls = {0};
    const char *opts[64];
    size_t n_opts = 0, big = 9u << 20, many = 60;
    unsigned threads = 8;
    const char *location = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_arg = i + 1 < argc;
        if (!strcmp(a, "--cacert") && has_arg) tls.cacert = argv[++i];
        else if (!strcmp(a, "--tls-client-cert") && has_arg) tls.client_cert = argv[++i];
        else if (!strcmp(a, "--insecure-tls")) tls.insecure = true;
        else if (!strcmp(a, "-o") && has_arg && n_opts < 64) opts[n_opts++] = argv[++i];
        else if (!strcmp(a, "--big") && has_arg) big = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--many") && has_arg) many = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--threads") && has_arg) threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (a[0] != '-' && !location) location = a;
        else usage();
    }
    if (!location || big < 100 || !threads || !many) usage();
    setenv("CRESTIC_LIST_PAGE_SIZE", "7", 0);

    if (cr_http_set_tls(&tls) < 0 || cr_backend_set_options(opts, n_opts) < 0) {
        fprintf(stderr, "crestic-conformance: %s\n", cr_error_message());
        return 2;
    }
    cr_backend *b = NULL;
    int r = cr_backend_create(location, &b);
    check(r == 0, "create the backend");
    if (r == 0) {
        check_empty(b);
        check_config(b, location);
        check_ranges(b, big);
        check_empty_object(b);
        check_streams(b, big);
        check_types(b);
        check_many(b, CR_FILE_INDEX, many, threads);
        check_many(b, CR_FILE_PACK, many / 3 + 1, threads);
        check(cr_be_remove(b, CR_FILE_CONFIG, "config") == 0, "remove config");
        cr_backend_close(b);
    }
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
