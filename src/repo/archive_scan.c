/* The scanner: totals for the progress display (restic's archiver.Scanner).
 * It walks the same root tree with the same excludes, but only counts. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "repo/archive_internal.h"
#include "repo/archiver.h"
#include "util/error.h"

typedef struct {
    cr_excluder *ex;
    volatile int *cancel;
    cr_scan_result_fn result;
    cr_archive_error_fn on_error;
    void *ud;
    cr_scan_stats st;
    unsigned since_report;
} scanner;

static bool cancelled(const scanner *s)
{
    return s->cancel && *s->cancel;
}

static void scan_error(scanner *s, const char *path, const char *op, int e)
{
    if (!s->on_error) return;
    char es[128], msg[4400];
    snprintf(es, sizeof es, "%s", strerror(e));
    if (es[0] >= 'A' && es[0] <= 'Z' && !(es[1] >= 'A' && es[1] <= 'Z')) es[0] = (char)(es[0] - 'A' + 'a');
    snprintf(msg, sizeof msg, "%s %s: %s", op, path, es);
    s->on_error(s->ud, path, msg);
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void scan_path(scanner *s, const char *path, bool explicit_target);

static void scan_dir(scanner *s, const char *path)
{
    DIR *d = opendir(path);
    if (!d) return scan_error(s, path, "open", errno);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2]))) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) break;
            names = nv;
        }
        if (!(names[n] = strdup(nm))) break;
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_names);
    cr_buf child = CR_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (!cancelled(s) && cr_path_join(&child, path, names[i], strlen(names[i])) == 0)
            scan_path(s, (const char *)child.data, false);
        free(names[i]);
    }
    free(names);
    cr_buf_free(&child);
}

static void scan_path(scanner *s, const char *path, bool explicit_target)
{
    if (cancelled(s)) return;
    cr_buf abs = CR_BUF_INIT;
    if (cr_path_abs(path, &abs) < 0) return;
    const char *ap = (const char *)abs.data;
    struct stat st;
    if (!explicit_target && cr_excluder_reject_path(s->ex, ap)) goto out;
    if (lstat(path, &st) < 0) {
        scan_error(s, path, "lstat", errno);
        goto out;
    }
    if (!explicit_target && cr_excluder_reject_stat(s->ex, ap, &st)) goto out;
    if (S_ISREG(st.st_mode)) {
        s->st.files++;
        s->st.bytes += (uint64_t)st.st_size;
    } else if (S_ISDIR(st.st_mode)) {
        scan_dir(s, path);
        s->st.dirs++;
    } else {
        s->st.others++;
    }
    if (s->result && ++s->since_report >= 256) {
        s->since_report = 0;
        s->result(s->ud, &s->st, false);
    }
out:
    cr_buf_free(&abs);
}

static void scan_tnode(scanner *s, const cr_tnode *t)
{
    for (size_t i = 0; i < t->nkids && !cancelled(s); i++) {
        if (t->kids[i].path) scan_path(s, t->kids[i].path, t->kids[i].explicit_target);
        else scan_tnode(s, &t->kids[i]);
    }
}

int cr_archive_scan(const char *const *targets, size_t ntargets, cr_excluder *ex, volatile int *cancel,
                    cr_scan_result_fn result, cr_archive_error_fn on_error, void *ud)
{
    scanner s = {.ex = ex, .cancel = cancel, .result = result, .on_error = on_error, .ud = ud};
    cr_tnode t;
    CR_TRY(cr_tnode_build(targets, ntargets, &t));
    scan_tnode(&s, &t);
    cr_tnode_free(&t);
    if (result && !cancelled(&s)) result(ud, &s.st, true);
    return 0;
}
