/* Tree blobs: directory listings (spec §12). */
#ifndef CRESTIC_REPO_TREE_H
#define CRESTIC_REPO_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/gotime.h"
#include "util/id.h"

typedef enum {
    CR_NODE_FILE,
    CR_NODE_DIR,
    CR_NODE_SYMLINK,
    CR_NODE_DEV,     /* block device */
    CR_NODE_CHARDEV,
    CR_NODE_FIFO,
    CR_NODE_SOCKET,
    CR_NODE_IRREGULAR,
    CR_NODE_UNKNOWN, /* type string kept in type_name */
} cr_node_type;

/* Go os.FileMode bits (spec §12.3). */
#define CR_MODE_DIR       0x80000000u
#define CR_MODE_SYMLINK   0x08000000u
#define CR_MODE_DEVICE    0x04000000u
#define CR_MODE_NAMEDPIPE 0x02000000u
#define CR_MODE_SOCKET    0x01000000u
#define CR_MODE_SETUID    0x00800000u
#define CR_MODE_SETGID    0x00400000u
#define CR_MODE_CHARDEV   0x00200000u
#define CR_MODE_STICKY    0x00100000u
#define CR_MODE_IRREGULAR 0x00080000u
#define CR_MODE_PERM      0777u

typedef struct {
    const char *name;
    const uint8_t *value; /* NULL when JSON null */
    size_t value_len;
} cr_xattr;

typedef struct {
    const char *name;      /* raw bytes after Go unquoting, NUL-terminated */
    size_t name_len;
    cr_node_type type;
    const char *type_name; /* as stored */
    uint32_t mode;         /* Go FileMode */
    cr_time mtime, atime, ctime;
    uint32_t uid, gid;
    const char *user, *group; /* NULL when absent */
    uint64_t inode, device_id, size, links, device;
    const char *linktarget;   /* raw bytes (linktarget_raw wins), NULL if absent */
    size_t linktarget_len;
    cr_xattr *xattrs;
    size_t nxattrs;
    cr_id *content;           /* data blob IDs */
    size_t ncontent;
    bool content_null;        /* "content": null (or absent) */
    bool has_subtree;
    cr_id subtree;
    const char *error;        /* NULL when absent */
    const char *generic_attributes_json; /* raw JSON object text, NULL when absent */
} cr_node;

typedef struct {
    cr_node *nodes;
    size_t n;
    cr_arena arena; /* owns every string above */
} cr_tree;

/* Parse a tree blob.  Names are Go-unquoted; a name Go cannot unquote is
 * CR_E_FORMAT for the whole tree (as restic). */
int cr_tree_parse(const char *json, size_t n, cr_tree **out);
void cr_tree_free(cr_tree *t);
/* Find a child by raw name (trees are sorted, but unsorted input is tolerated). */
const cr_node *cr_tree_find(const cr_tree *t, const char *name, size_t len);

/* A name that is safe to create inside a directory: not empty, not "." or
 * "..", no '/' and no NUL. */
bool cr_node_name_is_safe(const char *name, size_t len);

/* Encode one node / a whole tree exactly as restic (Go encoding/json). */
int cr_node_encode(cr_buf *out, const cr_node *node);
int cr_tree_encode(cr_buf *out, const cr_node *nodes, size_t n);

/* Go FileMode -> POSIX st_mode permission+special bits (07777) and back. */
unsigned cr_mode_to_posix_perm(uint32_t gomode);
uint32_t cr_mode_from_posix(unsigned st_mode);
const char *cr_node_type_name(cr_node_type t);

#endif
