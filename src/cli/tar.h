/* Archive writers for `dump`: tar and zip streams laid out exactly as Go's
 * archive/tar and archive/zip write them for restic (so a crestic dump
 * matches restic's member for member, header field for header field).
 *
 * tar: USTAR headers when every field fits, otherwise a PAX extended header
 * ("<dir>/PaxHeaders.0/<name>") with the records that do not fit plus the
 * caller's extra records (xattrs); mtime in whole seconds (rounded), no
 * atime/ctime; no padding beyond the two closing zero blocks.
 *
 * zip: one local header per member with a data descriptor, Unix mode in the
 * external attributes, MS-DOS time from the wall clock of the member's
 * mtime plus an extended-timestamp extra field, ZIP64 records when sizes or
 * offsets need them.  Every member is stored (method 0), byte for byte what
 * restic 0.14 writes; today's restic deflates file members instead, which
 * would need a deflate encoder (zlib is not linked). */
#ifndef CRESTIC_CLI_TAR_H
#define CRESTIC_CLI_TAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/buf.h"
#include "util/gotime.h"

typedef struct {
    const char *key;      /* e.g. "SCHILY.xattr.user.x" */
    const void *value;
    size_t value_len;
} cr_tar_record;

typedef struct {
    const char *name;     /* member name, raw bytes; directories end in '/' */
    size_t name_len;
    char typeflag;        /* '0' file, '5' directory, '2' symlink */
    uint32_t mode;        /* permission bits + 04000/02000/01000 */
    uint64_t uid, gid;
    const char *uname, *gname; /* NULL or "" when unknown */
    uint64_t size;        /* bytes of content that will follow */
    cr_time mtime;
    const char *linkname; /* symlink target, raw bytes */
    size_t linkname_len;
    const cr_tar_record *records; /* extra PAX records, any order */
    size_t nrecords;
} cr_tar_header;

typedef struct {
    FILE *out;
    uint64_t remaining;   /* content bytes still owed for the current member */
    uint64_t pad;         /* zero bytes to pad the current member to 512 */
    bool in_member;
} cr_tar_writer;

void cr_tar_init(cr_tar_writer *w, FILE *out);
int cr_tar_write_header(cr_tar_writer *w, const cr_tar_header *h);
int cr_tar_write(cr_tar_writer *w, const void *p, size_t n);
/* Finish the last member and write the two zero blocks. */
int cr_tar_close(cr_tar_writer *w);

/* ---- zip ---- */
typedef struct cr_zip_writer cr_zip_writer;

typedef struct {
    const char *name;     /* directories end in '/' */
    size_t name_len;
    uint32_t gomode;      /* Go os.FileMode (type bits + permissions) */
    cr_time mtime;
} cr_zip_header;

int cr_zip_new(FILE *out, cr_zip_writer **w);
int cr_zip_write_header(cr_zip_writer *w, const cr_zip_header *h);
int cr_zip_write(cr_zip_writer *w, const void *p, size_t n);
/* Finish the last member, write the central directory; frees w. */
int cr_zip_close(cr_zip_writer *w);
void cr_zip_free(cr_zip_writer *w);

#endif
