/* SFTP version 3 wire format (draft-ietf-secsh-filexfer-02, as OpenSSH
 * speaks it): encoding of requests and decoding of the server's messages.
 * Pure functions over memory, no I/O, so every decoder can be fuzzed
 * (fuzz/fuzz_sftp.c).
 *
 * A message on the wire is uint32 length, then that many bytes: a type byte
 * and the fields (uint32/uint64 big-endian, strings as uint32 length + bytes).
 * The decoders take the bytes after the length field. */
#ifndef CRESTIC_BACKENDS_SFTP_PROTO_H
#define CRESTIC_BACKENDS_SFTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/buf.h"

enum {
    SFTP_INIT = 1, SFTP_VERSION = 2, SFTP_OPEN = 3, SFTP_CLOSE = 4, SFTP_READ = 5, SFTP_WRITE = 6,
    SFTP_LSTAT = 7, SFTP_FSTAT = 8, SFTP_SETSTAT = 9, SFTP_FSETSTAT = 10, SFTP_OPENDIR = 11,
    SFTP_READDIR = 12, SFTP_REMOVE = 13, SFTP_MKDIR = 14, SFTP_RMDIR = 15, SFTP_REALPATH = 16,
    SFTP_STAT = 17, SFTP_RENAME = 18,
    SFTP_STATUS = 101, SFTP_HANDLE = 102, SFTP_DATA = 103, SFTP_NAME = 104, SFTP_ATTRS = 105,
    SFTP_EXTENDED = 200, SFTP_EXTENDED_REPLY = 201,
};

enum {
    SFTP_FX_OK = 0, SFTP_FX_EOF = 1, SFTP_FX_NO_SUCH_FILE = 2, SFTP_FX_PERMISSION_DENIED = 3,
    SFTP_FX_FAILURE = 4, SFTP_FX_BAD_MESSAGE = 5, SFTP_FX_NO_CONNECTION = 6,
    SFTP_FX_CONNECTION_LOST = 7, SFTP_FX_OP_UNSUPPORTED = 8,
};

enum { SFTP_READ_FLAG = 1, SFTP_WRITE_FLAG = 2, SFTP_CREAT = 8, SFTP_TRUNC = 0x10, SFTP_EXCL = 0x20 };

enum {
    SFTP_ATTR_SIZE = 1, SFTP_ATTR_UIDGID = 2, SFTP_ATTR_PERMISSIONS = 4, SFTP_ATTR_ACMODTIME = 8,
    SFTP_ATTR_EXTENDED = 0x80000000u,
};

#define SFTP_PROTOCOL_VERSION 3
/* Largest message we accept from a server.  OpenSSH's limit is 256 KiB; a
 * much larger length is nearly always text printed by a login script,
 * read as a length. */
#define SFTP_MAX_MESSAGE (1024u * 1024u)
#define SFTP_MAX_HANDLE 256

typedef struct {
    uint32_t flags;
    uint64_t size;
    uint32_t uid, gid, permissions, atime, mtime;
} sftp_attrs;

typedef struct {
    uint32_t version;
    bool posix_rename; /* posix-rename@openssh.com */
    bool limits;       /* limits@openssh.com */
} sftp_version;

/* One decoded reply.  Pointers point into the message given to the decoder. */
typedef struct {
    uint8_t type;
    uint32_t id;
    uint32_t status;             /* STATUS */
    const char *msg; size_t msg_len; /* STATUS: the server's text (may be empty) */
    const uint8_t *data; size_t data_len; /* HANDLE, DATA; EXTENDED_REPLY: the rest */
    uint32_t count;              /* NAME: entries, read them with sftp_name_next */
    const uint8_t *names; size_t names_len;
    sftp_attrs attrs;            /* ATTRS */
} sftp_reply;

typedef struct {
    const char *name; size_t name_len;
    sftp_attrs attrs;
} sftp_name_entry;

typedef struct {
    uint64_t max_packet, max_read, max_write, max_open_handles;
} sftp_limits;

/* Decoders: 0, or CR_E_FORMAT (with a message) for a malformed message. */
int sftp_parse_version(const uint8_t *msg, size_t n, sftp_version *out);
int sftp_parse_reply(const uint8_t *msg, size_t n, sftp_reply *out);
/* The entries of a NAME reply, one by one: sftp_name_next gives 1 when an
 * entry was read, 0 after the last one (r->count entries), CR_E_FORMAT when
 * malformed. */
typedef struct {
    const uint8_t *p;
    size_t n;
    uint32_t left;
} sftp_name_iter;

void sftp_name_iter_init(sftp_name_iter *it, const sftp_reply *r);
int sftp_name_next(sftp_name_iter *it, sftp_name_entry *e);
int sftp_parse_limits(const uint8_t *data, size_t n, sftp_limits *out);
/* "SSH_FX_NO_SUCH_FILE" etc. */
const char *sftp_status_name(uint32_t code);

/* Encoders append one whole message (length included) to out.  Paths and
 * handles are byte strings. */
typedef struct {
    const void *p;
    size_t n;
} sftp_str;

#define SFTP_STR(s) ((sftp_str){(s), strlen(s)})

int sftp_encode_init(cr_buf *out);
/* OPEN, with permissions when attrs_perm >= 0. */
int sftp_encode_open(cr_buf *out, uint32_t id, sftp_str path, uint32_t pflags, int attrs_perm);
/* CLOSE, FSTAT, READDIR: one handle. */
int sftp_encode_handle_op(cr_buf *out, uint8_t type, uint32_t id, sftp_str handle);
/* LSTAT, STAT, OPENDIR, REMOVE, REALPATH, RMDIR: one path. */
int sftp_encode_path_op(cr_buf *out, uint8_t type, uint32_t id, sftp_str path);
/* MKDIR and SETSTAT (a path) and FSETSTAT (a handle) with permissions. */
int sftp_encode_with_perm(cr_buf *out, uint8_t type, uint32_t id, sftp_str path_or_handle, uint32_t perm);
int sftp_encode_read(cr_buf *out, uint32_t id, sftp_str handle, uint64_t off, uint32_t len);
/* WRITE header only: the data_len bytes of data follow on the wire. */
int sftp_encode_write_header(cr_buf *out, uint32_t id, sftp_str handle, uint64_t off, uint32_t data_len);
int sftp_encode_rename(cr_buf *out, uint32_t id, sftp_str from, sftp_str to, bool posix);
int sftp_encode_limits(cr_buf *out, uint32_t id);

#endif

/* ---- location and ssh command line (restic's rules) ------------------------ */

typedef struct {
    char *user, *host, *port; /* NULL when not given */
    char *path;               /* cleaned like Go's path.Clean; relative = from the login folder */
} sftp_location;

/* loc is the repository string after "sftp:": "user@host:path",
 * "host:/abs", or the URL form "//user@host:port/relative" / "//host//abs".
 * CR_E_USAGE with a message when malformed. */
int sftp_parse_location(const char *loc, sftp_location *out);
void sftp_location_free(sftp_location *l);

/* Splits a command string into words like restic's -o sftp.command: words
 * end at blanks; '...' and "..." quote blanks (the quotes are dropped and
 * also end a word); a backslash outside quotes ends a word.  NULL-terminated
 * array in *argv (free with sftp_argv_free). */
int sftp_split_command(const char *s, char ***argv);
void sftp_argv_free(char **argv);

/* The program to run: command (split) when given, else
 * "ssh HOST [-p PORT] [-l USER] [ARGS...] -s sftp". */
int sftp_ssh_argv(const sftp_location *l, const char *command, const char *args, char ***argv);
