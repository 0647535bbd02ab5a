/* Repository integrity check (spec §21), with restic's categories of error. */
#ifndef CRESTIC_REPO_CHECKER_H
#define CRESTIC_REPO_CHECKER_H

#include <stdbool.h>
#include <stdint.h>

#include "repo/repo.h"

typedef enum {
    CR_READ_NONE,
    CR_READ_ALL,
    CR_READ_GROUP,   /* n/t: packs whose first ID byte % t == n-1 */
    CR_READ_PERCENT, /* random x% of the packs */
    CR_READ_BYTES,   /* random packs up to a total size */
} cr_read_mode;

typedef enum {
    CR_CHECK_PROGRESS, /* a phase starts ("load indexes", ...) */
    CR_CHECK_HINT,     /* non-critical finding                 */
    CR_CHECK_ERROR,    /* the repository has an error          */
} cr_check_level;

typedef void (*cr_check_report_cb)(void *ud, cr_check_level level, const char *text);

typedef struct {
    cr_read_mode read;
    unsigned group_n, group_t;
    double percent;
    uint64_t bytes;
    bool check_unused;
    cr_check_report_cb report;
    void *ud;
} cr_check_opts;

typedef struct {
    uint64_t errors, hints;
    uint64_t snapshots, trees, packs_read;
} cr_check_result;

/* Runs every phase; returns 0 when it could run (look at result->errors),
 * negative only when checking itself was impossible. */
int cr_check(cr_repo *r, const cr_check_opts *opts, cr_check_result *result);

/* Parse --read-data-subset: "n/t", "x%", or a size ("50M", "1G"). */
int cr_parse_read_subset(const char *s, cr_check_opts *opts);

#endif
