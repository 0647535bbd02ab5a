/* restic's REST protocol (v2, with v1 listings understood) over a cr_http
 * context, shared by the rest: backend and the rclone: backend (which speaks
 * the same protocol to `rclone serve restic --stdio`).  Internal to
 * src/backends. */
#ifndef CRESTIC_BACKENDS_REST_PROTO_H
#define CRESTIC_BACKENDS_REST_PROTO_H

#include "backends/backend.h"
#include "backends/http.h"

typedef struct {
    cr_backend base;
    cr_http *http;
    char *base_url; /* scheme://host[:port][/path], no credentials, no trailing '/' */
} cr_rest_backend;

/* The backend operations on a cr_rest_backend (b must point to one, or to a
 * struct that starts with one). */
int cr_rest_stat(cr_backend *b, cr_filetype t, const char *name, uint64_t *size);
int cr_rest_load(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out);
int cr_rest_save(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n);
int cr_rest_remove(cr_backend *b, cr_filetype t, const char *name);
int cr_rest_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud);
/* Create the repository's layout on the server (POST {base}/?create=true);
 * a config that exists already is -EEXIST "config file already exists". */
int cr_rest_create_layout(cr_backend *b);
/* Free http, base_url and base.location (not the struct itself). */
void cr_rest_release(cr_rest_backend *rb);

#endif
