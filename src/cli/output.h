/* Output helpers shared by the read-only commands (snapshots, ls, cat, list,
 * dump, key list): restic's text table, Go's JSON indentation, FileMode
 * strings and time formats, and the snapshot/tree lookups these commands
 * have in common ("ID:subfolder", walking a tree). */
#ifndef CRESTIC_CLI_OUTPUT_H
#define CRESTIC_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "repo/repo.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "util/buf.h"
#include "util/gotime.h"

/* ---- text tables, laid out as restic's internal/ui/table ----
 * Columns are as wide as their widest line (terminal cells: East Asian wide
 * characters count 2), separated by two spaces, trailing blanks trimmed; a
 * dashed line under the header and after the rows, then the footer lines. */
typedef struct cr_table cr_table;
int cr_table_new(cr_table **out);
void cr_table_free(cr_table *t);
int cr_table_add_column(cr_table *t, const char *header);
/* One cell per column; a cell may span several lines ('\n'). Copied. */
int cr_table_add_row(cr_table *t, const char *const *cells);
int cr_table_add_footer(cr_table *t, const char *line);
/* restic separates rows by an empty line when any row spans several lines. */
void cr_table_blank_line_between_rows(cr_table *t, bool on);
int cr_table_write(const cr_table *t, FILE *f);
/* Terminal cells needed for s[0..n) (invalid UTF-8 bytes count 1). */
size_t cr_display_width(const char *s, size_t n);

/* ---- JSON ---- */
/* Go's json.Indent(prefix "", indent): one member/element per line, "{}" and
 * "[]" kept short, ": " after names.  The input must be valid compact JSON
 * (our own encoders' output). */
int cr_json_indent(cr_buf *out, const char *json, size_t n, const char *indent);
/* A snapshot as restic's commands print it: the stored members, then "id"
 * and "short_id" (and extra, when not NULL, as further raw members such as
 * "\"message_type\":\"snapshot\""). */
int cr_snapshot_json_with_id(cr_buf *out, const cr_snapshot *sn, const char *extra);
/* Write all of a buffer to stdout / a stream (after flushing what stdio
 * holds); CR_E_INTERRUPTED as soon as SIGINT/SIGTERM arrived, -errno with a
 * message on failure. */
int cr_write_stdout(const void *p, size_t n);
int cr_write_all(FILE *f, const void *p, size_t n);

/* ---- formatting ---- */
/* Go os.FileMode.String(): "drwxr-xr-x", "dgrwxr-xr-x", "Lrwxrwxrwx", ... */
void cr_filemode_string(uint32_t mode, char out[33]);
/* "2006-01-02 15:04:05" of the instant in the local zone (TZ respected). */
void cr_format_local_time(const cr_time *t, char out[64]);
/* Go's Time.String() for a time read from JSON: "2023-01-03 11:30:00 +0530 IST"
 * when the offset is the local zone's, "+0530 +0530" otherwise, "+0000 UTC"
 * for UTC; fraction digits when not zero. */
int cr_format_go_time(cr_buf *out, const cr_time *t);
/* restic's ui.FormatBytes: "12 B", "1.500 KiB", ... up to TiB. */
void cr_go_format_bytes(uint64_t bytes, char out[64]);
/* Go's fmt %v of a []string: "[a b c]". */
int cr_format_go_strings(cr_buf *out, const char *const *v, size_t n);

/* ---- snapshots and trees ---- */
/* A filter as restic prints it: "Paths:[/a] Tags:[[a, b] [c]] Hosts:[h]". */
int cr_format_filter(cr_buf *b, const cr_snapshot_filter *f);
/* "ID[:subfolder]" as restic's snapshot arguments: resolve the snapshot
 * ("latest" honoring the filter, full IDs, unique prefixes) and the root
 * tree of the subfolder (the snapshot's tree when there is none). */
int cr_cli_find_snapshot(cr_repo *r, const char *ref, const cr_snapshot_filter *f, cr_snapshot *sn, cr_id *tree);
/* The tree of a directory below root ("a/b", "/a/b/", "" = root), with
 * restic's messages ("path a/b: not found", "path a: not a directory"). */
int cr_find_tree_dir(cr_repo *r, const cr_id *root, const char *dir, cr_id *out);
/* Load and parse one tree blob (the index must be loaded). */
int cr_load_tree(cr_repo *r, const cr_id *id, cr_tree **out);

/* Depth-first walk in stored order, as restic's walker: visit(node, path) is
 * called for every node ("/src", "/src/a", ...); a directory's children
 * follow it unless visit returns CR_WALK_SKIP.  A negative return stops. */
#define CR_WALK_SKIP 1
typedef int (*cr_walk_fn)(void *ud, const cr_node *node, const char *path, size_t pathlen);
/* Called after a directory's children (path of the directory). */
typedef int (*cr_walk_leave_fn)(void *ud, const char *path, size_t pathlen);
/* keep: when not NULL, the loaded trees are handed over to it instead of
 * being freed after their directory, so node pointers stay valid. */
typedef struct {
    cr_tree **v;
    size_t n;
} cr_tree_list;
void cr_tree_list_free(cr_tree_list *l);
int cr_walk_tree(cr_repo *r, const cr_id *tree, const char *prefix, cr_walk_fn visit, cr_walk_leave_fn leave,
                 void *ud, cr_tree_list *keep);

#endif
