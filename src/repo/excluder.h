/* Backup exclude rules, as restic's backup applies them:
 *
 *  - by path only (before lstat): --exclude / --iexclude patterns and the
 *    patterns read from --exclude-file / --iexclude-file;
 *  - by path and lstat: --one-file-system (-x), --exclude-larger-than,
 *    --exclude-if-present FILE[:HEADER] and --exclude-caches (which is
 *    CACHEDIR.TAG with the standard signature).
 *
 * Paths are absolute and cleaned.  Thread-safe once built: the archiver and
 * the scanner ask from different threads. */
#ifndef CRESTIC_REPO_EXCLUDER_H
#define CRESTIC_REPO_EXCLUDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "util/buf.h"

/* Warnings that do not stop the backup (unreadable tag file, bad signature). */
typedef void (*cr_exclude_warn_fn)(void *ud, const char *message);

typedef struct {
    const char *const *excludes;       size_t nexcludes;
    const char *const *iexcludes;      size_t niexcludes;
    const char *const *exclude_files;  size_t nexclude_files;
    const char *const *iexclude_files; size_t niexclude_files;
    const char *const *if_present;     size_t nif_present; /* "name[:header]" */
    bool exclude_caches;
    int64_t larger_than;               /* bytes; < 0: no limit */
    bool one_file_system;
    const char *const *targets;        size_t ntargets;    /* for -x: allowed devices */
    cr_exclude_warn_fn warn;
    void *ud;
} cr_exclude_opts;

typedef struct cr_excluder cr_excluder;

/* Reads the pattern files and checks every pattern.  Errors name the flag
 * ("--exclude: ...", "failed to read patterns from file ...") and are
 * CR_E_USAGE, or -errno for unreadable files. */
int cr_excluder_new(const cr_exclude_opts *o, cr_excluder **out);
void cr_excluder_free(cr_excluder *e);

/* Rejected by name (patterns)? */
bool cr_excluder_reject_path(cr_excluder *e, const char *abspath);
/* Rejected by the remaining rules, given the item's lstat? */
bool cr_excluder_reject_stat(cr_excluder *e, const char *abspath, const struct stat *st);

/* Parse restic's size syntax: a number with an optional k/K, m/M, g/G, t/T
 * suffix (powers of 1024); CR_E_USAGE otherwise. */
int cr_parse_size(const char *s, int64_t *out);

/* Read a text file as restic's textfile.Read does (UTF-8 BOM dropped, UTF-16
 * with BOM converted) and split it into lines (\n, a trailing \r dropped).
 * "-" reads standard input.  Lines are NUL-terminated in *store; *lines
 * points into it (free both). */
int cr_read_text_lines(const char *path, cr_buf *store, char ***lines, size_t *n);

#endif
