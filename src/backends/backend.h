/* One interface for every storage backend (spec §23.1), curl-style table of
 * operations.  Object names are the 64-hex IDs (or "config"); each backend
 * maps (type, name) to its own layout. */
#ifndef CRESTIC_BACKENDS_BACKEND_H
#define CRESTIC_BACKENDS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef enum {
    CR_FILE_CONFIG,
    CR_FILE_KEY,
    CR_FILE_PACK,
    CR_FILE_INDEX,
    CR_FILE_SNAPSHOT,
    CR_FILE_LOCK,
    CR_FILE_NTYPES
} cr_filetype;

/* Directory name of a type in restic's layout: "keys", "data", ... ("" for config). */
const char *cr_filetype_dir(cr_filetype t);

typedef struct cr_backend cr_backend;

/* Called once per object by list(); a non-zero return stops the listing and
 * is returned by list(). */
typedef int (*cr_list_cb)(void *ud, const char *name, uint64_t size);

typedef struct {
    const char *scheme; /* "local", "sftp", "rest", ... */
    /* Open an existing location (does not check that a repository exists). */
    int (*open)(const char *location, cr_backend **out);
    /* Create the layout for a new repository. */
    int (*create)(const char *location, cr_backend **out);
    void (*close)(cr_backend *b);

    /* Size of an object; -ENOENT if absent. */
    int (*stat)(cr_backend *b, cr_filetype t, const char *name, uint64_t *size);
    /* Read [off, off+len) into out (replacing its contents); len == 0 means to
     * the end.  A short object is an error (-EIO with a message); absent is -ENOENT. */
    int (*load)(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out);
    /* Atomic create: nobody ever sees a partial object under its final name. */
    int (*save)(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n);
    /* Delete; absent counts as success. */
    int (*remove)(cr_backend *b, cr_filetype t, const char *name);
    /* Every object of a type, with its size.  Missing folders list as empty;
     * names that are not 64 lower-case hex (temporary files) are skipped. */
    int (*list)(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud);
    /* Extended options this backend knows, without its "<scheme>." prefix
     * (NULL-terminated; NULL for none).  -o options of this backend's
     * namespace that are not listed are refused at open. */
    const char *const *options;

} cr_backend_ops;

/* Optional, per backend object (NULL when not offered): write a new object
 * piece by piece while its name, the SHA-256 of its content, is not known
 * yet, so that a pack need not be kept in memory whole.  Nothing is visible
 * until commit, which publishes the object atomically under `name` (never
 * replacing one: -EEXIST) and releases h; abort discards it.  Use through the
 * cr_be_stream_* wrappers, which compute the name. */
typedef struct {
    int (*open)(cr_backend *b, cr_filetype t, void **h);
    int (*write)(cr_backend *b, void *h, const void *data, size_t n);
    int (*commit)(cr_backend *b, void *h, cr_filetype t, const char *name);
    void (*abort)(cr_backend *b, void *h);
} cr_backend_stream_ops;

struct cr_backend {
    const cr_backend_ops *ops;
    const cr_backend_stream_ops *stream; /* NULL: saves take whole objects */
    char *location; /* as given, for messages */
    unsigned connections; /* parallel requests worth making */
    /* A file saved is listed at once, to every client (a local disk
     * filesystem): a lock's second look for competing locks needs no
     * delay (lock.c). */
    bool lists_at_once;
};

/* Extended options (-o key=value, e.g. "s3.region=eu-west-1"), set once by
 * the CLI before a backend is opened; the strings are copied.  A string
 * without '=' is CR_E_USAGE. */
int cr_backend_set_options(const char *const *kv, size_t n);
/* The value of option "<ns>.<key>" (e.g. cr_backend_option("s3", "region")),
 * or NULL when not given.  The last one given wins. */
const char *cr_backend_option(const char *ns, const char *key);
/* A numeric option in [min, max], def when absent; a malformed or
 * out-of-range value is CR_E_USAGE naming the option. */
int cr_backend_option_uint(const char *ns, const char *key, unsigned def, unsigned min, unsigned max, unsigned *out);

/* Pick the backend for a repository string ("/path", "local:path", "rest:...",
 * ...) and open or create it.  Unknown schemes: CR_E_USAGE. */
int cr_backend_open(const char *location, cr_backend **out);
int cr_backend_create(const char *location, cr_backend **out);
void cr_backend_close(cr_backend *b);

/* Convenience wrappers that add "<type>/<name>" context to errors. */
int cr_be_stat(cr_backend *b, cr_filetype t, const char *name, uint64_t *size);
int cr_be_load(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out);
int cr_be_save(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n);
int cr_be_remove(cr_backend *b, cr_filetype t, const char *name);
int cr_be_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud);

/* Streamed saves of content-named objects (not the config), for backends
 * that offer them; see cr_backend_stream_ops.  The SHA-256 is computed over
 * exactly the bytes handed to the backend, so the object cannot end up
 * under a name that does not match its content. */
typedef struct cr_be_stream cr_be_stream;
bool cr_be_can_stream(const cr_backend *b);
int cr_be_stream_open(cr_backend *b, cr_filetype t, cr_be_stream **out);
int cr_be_stream_write(cr_be_stream *s, const void *data, size_t n);
uint64_t cr_be_stream_size(const cr_be_stream *s);
/* Publish under the SHA-256 of everything written (returned in sum) and
 * free s, whatever the outcome.  -EEXIST: an object of that name (so with
 * these very bytes) is already stored. */
int cr_be_stream_commit(cr_be_stream *s, uint8_t sum[32]);
/* Discard (s may be NULL). */
void cr_be_stream_abort(cr_be_stream *s);

extern const cr_backend_ops cr_backend_local;
extern const cr_backend_ops cr_backend_rest;
/* Each remote backend lives in its own file; the table in backend.c refers
 * to them weakly, so a scheme whose file is absent reports "not supported". */
extern const cr_backend_ops cr_backend_s3 __attribute__((weak));
extern const cr_backend_ops cr_backend_azure __attribute__((weak));
extern const cr_backend_ops cr_backend_rclone __attribute__((weak));
extern const cr_backend_ops cr_backend_sftp __attribute__((weak));
extern const cr_backend_ops cr_backend_b2 __attribute__((weak));
extern const cr_backend_ops cr_backend_gs __attribute__((weak));

#endif
