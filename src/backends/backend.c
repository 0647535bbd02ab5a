/* Backend selection by repository string, and error-context wrappers. */
#include "backends/backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/error.h"
#include "util/id.h"

static const char *const type_dirs[CR_FILE_NTYPES] = {
    [CR_FILE_CONFIG] = "", [CR_FILE_KEY] = "keys", [CR_FILE_PACK] = "data",
    [CR_FILE_INDEX] = "index", [CR_FILE_SNAPSHOT] = "snapshots", [CR_FILE_LOCK] = "locks",
};

const char *cr_filetype_dir(cr_filetype t)
{
    return (unsigned)t < CR_FILE_NTYPES ? type_dirs[t] : "?";
}


/* Known schemes; a string without one is a local path (spec §23.1).
 * Entries whose (weak) table is not linked in are NULL. */
static const cr_backend_ops *const backends[] = {
    &cr_backend_local, &cr_backend_rest, &cr_backend_s3,  &cr_backend_azure,
    &cr_backend_rclone, &cr_backend_sftp, &cr_backend_b2, &cr_backend_gs,
};

static const char *const remote_schemes[] = {"sftp", "s3", "b2", "azure", "gs", "swift", "rclone"};

/* -o options: "ns.key=value" strings, in the order given. */
static char **options;
static size_t n_options;

int cr_backend_set_options(const char *const *kv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(kv[i], '=') || kv[i][0] == '=')
            return cr_error(CR_E_USAGE, "invalid option \"%s\": expected key=value", kv[i]);
    for (size_t i = 0; i < n_options; i++) free(options[i]);
    free(options);
    options = NULL;
    n_options = 0;
    if (!n) return 0;
    options = calloc(n, sizeof *options);
    if (!options) return cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        options[i] = strdup(kv[i]);
        if (!options[i]) return cr_error(-ENOMEM, "out of memory");
        n_options++;
    }
    return 0;
}

/* Does "ns.key=..." have namespace ns?  On success *key points after "ns.". */
static bool in_namespace(const char *opt, const char *ns, const char **key)
{
    size_t l = strlen(ns);
    if (strncmp(opt, ns, l) || opt[l] != '.') return false;
    *key = opt + l + 1;
    return true;
}

const char *cr_backend_option(const char *ns, const char *key)
{
    const char *found = NULL, *k;
    size_t kl = strlen(key);
    for (size_t i = 0; i < n_options; i++)
        if (in_namespace(options[i], ns, &k) && !strncmp(k, key, kl) && k[kl] == '=') found = k + kl + 1;
    return found;
}

int cr_backend_option_uint(const char *ns, const char *key, unsigned def, unsigned min, unsigned max, unsigned *out)
{
    const char *v = cr_backend_option(ns, key);
    *out = def;
    if (!v) return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || *v == '-' || n < min || n > max)
        return cr_error(CR_E_USAGE, "invalid value \"%s\" for option %s.%s: expected a number from %u to %u", v, ns, key, min, max);
    *out = (unsigned)n;
    return 0;
}

/* Options of this backend's namespace must be ones it knows (as restic). */
static int check_options(const cr_backend_ops *ops)
{
    const char *k;
    for (size_t i = 0; i < n_options; i++) {
        if (!in_namespace(options[i], ops->scheme, &k)) continue;
        size_t kl = (size_t)(strchr(k, '=') - k);
        bool known = false;
        for (const char *const *o = ops->options; o && *o && !known; o++)
            known = strlen(*o) == kl && !strncmp(*o, k, kl);
        if (!known)
            return cr_error(CR_E_USAGE, "invalid backend option \"%.*s\": %s has no such option", (int)(strchr(options[i], '=') - options[i]),
                            options[i], ops->scheme);
    }
    return 0;
}

static int pick(const char *location, const cr_backend_ops **ops, const char **rest)
{
    const char *colon = strchr(location, ':');
    if (colon) {
        size_t len = (size_t)(colon - location);
        for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
            if (backends[i] && strlen(backends[i]->scheme) == len && !memcmp(backends[i]->scheme, location, len)) {
                *ops = backends[i];
                *rest = colon + 1;
                return 0;
            }
        for (size_t i = 0; i < sizeof remote_schemes / sizeof remote_schemes[0]; i++)
            if (strlen(remote_schemes[i]) == len && !memcmp(remote_schemes[i], location, len))
                return cr_error(CR_E_UNSUPPORTED, "backend \"%s\" is not supported by this build of crestic yet", remote_schemes[i]);
    }
    *ops = &cr_backend_local;
    *rest = location;
    return 0;
}

static int open_or_create(const char *location, bool create, cr_backend **out)
{
    const cr_backend_ops *ops = NULL;
    const char *rest = NULL;
    CR_TRY(pick(location, &ops, &rest));
    CR_TRY(check_options(ops));
    int r = create ? ops->create(rest, out) : ops->open(rest, out);
    if (r < 0) return r;
    (*out)->ops = ops;
    if (!(*out)->location) {
        (*out)->location = strdup(location);
        if (!(*out)->location) {
            ops->close(*out);
            return cr_error(-ENOMEM, "out of memory");
        }
    }
    return 0;
}

int cr_backend_open(const char *location, cr_backend **out)
{
    return open_or_create(location, false, out);
}

int cr_backend_create(const char *location, cr_backend **out)
{
    return open_or_create(location, true, out);
}

void cr_backend_close(cr_backend *b)
{
    if (b) b->ops->close(b);
}

static void describe(char *out, size_t n, cr_filetype t, const char *name)
{
    if (t == CR_FILE_CONFIG) snprintf(out, n, "config");
    else snprintf(out, n, "%s/%s", cr_filetype_dir(t), name);
}

int cr_be_stat(cr_backend *b, cr_filetype t, const char *name, uint64_t *size)
{
    int r = b->ops->stat(b, t, name, size);
    if (r < 0 && r != -ENOENT) {
        char what[128];
        describe(what, sizeof what, t, name);
        return cr_error_ctx(r, "stat %s", what);
    }
    return r;
}

int cr_be_load(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out)
{
    int r = b->ops->load(b, t, name, off, len, out);
    if (r < 0) {
        char what[128];
        describe(what, sizeof what, t, name);
        return cr_error_ctx(r, "load %s", what);
    }
    return r;
}

/* Every object but the config is named by the SHA-256 of its content: a
 * save that breaks this (a bug, or memory gone bad) is refused before it
 * can reach storage, whatever the backend. */
static int check_content_name(cr_filetype t, const char *name, const void *data, size_t n)
{
    if (t == CR_FILE_CONFIG) return 0;
    uint8_t sum[32];
    char hex[65];
    unsigned len = 0;
    if (!EVP_Digest(data, n, sum, &len, EVP_sha256(), NULL)) return cr_error(-EIO, "SHA-256 failed");
    cr_hex_encode(sum, sizeof sum, hex);
    if (strcmp(hex, name))
        return cr_error(CR_E_AUTH, "refusing to save: the content's SHA-256 is %.10s..., not the object's name", hex);
    return 0;
}

int cr_be_save(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n)
{
    int r = check_content_name(t, name, data, n);
    if (r == 0) r = b->ops->save(b, t, name, data, n);
    if (r < 0) {
        char what[128];
        describe(what, sizeof what, t, name);
        return cr_error_ctx(r, "save %s", what);
    }
    return r;
}

int cr_be_remove(cr_backend *b, cr_filetype t, const char *name)
{
    int r = b->ops->remove(b, t, name);
    if (r < 0) {
        char what[128];
        describe(what, sizeof what, t, name);
        return cr_error_ctx(r, "remove %s", what);
    }
    return r;
}

int cr_be_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud)
{
    int r = b->ops->list(b, t, cb, ud);
    if (r < 0) return cr_error_ctx(r, "list %s", cr_filetype_dir(t));
    return r;
}

/* ---- streamed saves ------------------------------------------------------ */

struct cr_be_stream {
    cr_backend *b;
    cr_filetype t;
    void *h;
    EVP_MD_CTX *md;
    uint64_t size;
};

bool cr_be_can_stream(const cr_backend *b)
{
    return b->stream != NULL;
}

int cr_be_stream_open(cr_backend *b, cr_filetype t, cr_be_stream **out)
{
    if (!cr_be_can_stream(b) || t == CR_FILE_CONFIG) return cr_error(CR_E_UNSUPPORTED, "streamed save not supported");
    cr_be_stream *s = calloc(1, sizeof *s);
    if (!s || !(s->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL)) {
        if (s) EVP_MD_CTX_free(s->md);
        free(s);
        return cr_error(-ENOMEM, "out of memory");
    }
    s->b = b;
    s->t = t;
    int r = b->stream->open(b, t, &s->h);
    if (r < 0) {
        EVP_MD_CTX_free(s->md);
        free(s);
        return cr_error_ctx(r, "save %s", cr_filetype_dir(t));
    }
    *out = s;
    return 0;
}

int cr_be_stream_write(cr_be_stream *s, const void *data, size_t n)
{
    if (!n) return 0;
    /* Hash first: these are the bytes the backend gets. */
    if (!EVP_DigestUpdate(s->md, data, n)) return cr_error(-EIO, "SHA-256 failed");
    int r = s->b->stream->write(s->b, s->h, data, n);
    if (r < 0) return cr_error_ctx(r, "save %s", cr_filetype_dir(s->t));
    s->size += n;
    return 0;
}

uint64_t cr_be_stream_size(const cr_be_stream *s)
{
    return s->size;
}

static void stream_free(cr_be_stream *s)
{
    EVP_MD_CTX_free(s->md);
    free(s);
}

int cr_be_stream_commit(cr_be_stream *s, uint8_t sum[32])
{
    unsigned len = 0;
    if (!EVP_DigestFinal_ex(s->md, sum, &len)) {
        cr_be_stream_abort(s);
        return cr_error(-EIO, "SHA-256 failed");
    }
    char hex[65], what[128];
    cr_hex_encode(sum, 32, hex);
    int r = s->b->stream->commit(s->b, s->h, s->t, hex);
    describe(what, sizeof what, s->t, hex);
    stream_free(s);
    if (r < 0) return cr_error_ctx(r, "save %s", what);
    return 0;
}

void cr_be_stream_abort(cr_be_stream *s)
{
    if (!s) return;
    s->b->stream->abort(s->b, s->h);
    stream_free(s);
}
