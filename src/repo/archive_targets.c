/* Arranging backup targets into the snapshot's root tree, as restic does
 * (spec §11 "Root tree structure"): every target is placed by its path
 * components; a top-level name used by targets from different roots (".",
 * "..", "/") gets "-1", "-2", ... appended; a target below another target
 * turns the outer one into an inner node whose other entries are listed. */
#include "repo/archive_internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static void tnode_clear(cr_tnode *t)
{
    for (size_t i = 0; i < t->nkids; i++) tnode_clear(&t->kids[i]);
    free(t->kids);
    free(t->name);
    free(t->path);
    free(t->info_path);
    free(t->root);
    memset(t, 0, sizeof *t);
}

void cr_tnode_free(cr_tnode *t)
{
    if (t) tnode_clear(t);
}

static cr_tnode *find_kid(cr_tnode *t, const char *name)
{
    for (size_t i = 0; i < t->nkids; i++)
        if (!strcmp(t->kids[i].name, name)) return &t->kids[i];
    return NULL;
}

static cr_tnode *add_kid(cr_tnode *t, const char *name)
{
    if (t->nkids == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        cr_tnode *k = realloc(t->kids, cap * sizeof *k);
        if (!k) return NULL;
        t->kids = k;
        t->cap = cap;
    }
    cr_tnode *k = &t->kids[t->nkids];
    memset(k, 0, sizeof *k);
    if (!(k->name = strdup(name))) return NULL;
    t->nkids++;
    return k;
}

static int set_str(char **dst, const char *s)
{
    char *d = strdup(s);
    if (!d) return cr_error(-ENOMEM, "out of memory");
    free(*dst);
    *dst = d;
    return 0;
}

/* Path components of a cleaned path; relative paths count from "/" unless
 * keep_relative (then ".." stays a component).  Returned in one buffer:
 * components NUL-separated, *n of them. */
static int components(const char *p, bool keep_relative, cr_buf *store, size_t *n)
{
    cr_buf tmp = CR_BUF_INIT;
    int r = 0;
    if (p[0] != '/' && !keep_relative) {
        r = cr_buf_printf(&tmp, "/%s", p);
        cr_buf c = CR_BUF_INIT;
        if (r == 0) r = cr_path_clean((const char *)tmp.data, &c);
        cr_buf_free(&tmp);
        tmp = c;
    } else {
        r = cr_path_clean(p, &tmp);
    }
    cr_buf_reset(store);
    *n = 0;
    const char *s = (const char *)tmp.data;
    for (size_t i = 0; r == 0 && s[i];) {
        if (s[i] == '/') { i++; continue; }
        size_t e = i;
        while (s[e] && s[e] != '/') e++;
        if (!(e - i == 1 && s[i] == '.')) {
            r = cr_buf_append(store, s + i, e - i);
            if (r == 0) r = cr_buf_putc(store, 0);
            (*n)++;
        }
        i = e;
    }
    cr_buf_free(&tmp);
    return r;
}

static const char *nth(const cr_buf *store, size_t i)
{
    const char *s = (const char *)store->data;
    while (i--) s += strlen(s) + 1;
    return s;
}

/* "/" for absolute targets, else "." followed by one ".." per leading "..". */
static int root_dir(const char *target, cr_buf *out)
{
    cr_buf_reset(out);
    if (target[0] == '/') return cr_buf_puts(out, "/") < 0 ? -ENOMEM : cr_buf_nul(out);
    cr_buf pc = CR_BUF_INIT;
    size_t n;
    int r = components(target, true, &pc, &n);
    cr_buf rel = CR_BUF_INIT;
    if (r == 0) r = cr_buf_puts(&rel, ".");
    for (size_t i = 0; r == 0 && i < n; i++)
        if (!strcmp(nth(&pc, i), "..")) r = cr_buf_puts(&rel, "/..");
    if (r == 0) r = cr_buf_nul(&rel);
    if (r == 0) r = cr_path_clean((const char *)rel.data, out);
    cr_buf_free(&pc);
    cr_buf_free(&rel);
    return r;
}

/* restic's tree.add: place target below t along components pc[from..n). */
static int add_below(cr_tnode *t, const char *target, bool explicit_target, const char *root, const cr_buf *pc,
                     size_t from, size_t n)
{
    const char *name = nth(pc, from);
    cr_tnode *k = find_kid(t, name);
    if (from + 1 == n) {
        if (!k && !(k = add_kid(t, name))) return cr_error(-ENOMEM, "out of memory");
        else if (k->path) return cr_error(CR_E_USAGE, "path is already set for target %s", target);
        k->explicit_target = explicit_target;
        return set_str(&k->path, target);
    }
    if (!k && !(k = add_kid(t, name))) return cr_error(-ENOMEM, "out of memory");
    cr_buf sub = CR_BUF_INIT;
    int r = cr_path_join(&sub, root, name, strlen(name));
    if (r == 0) r = set_str(&k->info_path, (const char *)sub.data);
    if (r == 0) r = add_below(k, target, explicit_target, (const char *)sub.data, pc, from + 1, n);
    cr_buf_free(&sub);
    return r;
}

/* restic's Tree.Add for one cleaned target at the top level. */
static int add_target(cr_tnode *top, const char *target, bool explicit_target)
{
    cr_buf pc = CR_BUF_INIT, root = CR_BUF_INIT, name = CR_BUF_INIT, sub = CR_BUF_INIT;
    size_t n;
    int r = components(target, false, &pc, &n);
    if (r == 0 && !n) r = cr_error(CR_E_USAGE, "invalid path (no path components)");
    if (r == 0) r = root_dir(target, &root);
    const char *orig = r == 0 ? nth(&pc, 0) : "";
    if (r == 0) r = cr_buf_puts(&name, orig) < 0 ? -ENOMEM : cr_buf_nul(&name);
    cr_tnode *k = NULL;
    for (unsigned i = 1; r == 0; i++) {
        cr_tnode *other = find_kid(top, (const char *)name.data);
        if (!other) break;
        if (other->root && !strcmp(other->root, (const char *)root.data)) {
            k = other;
            break;
        }
        cr_buf_reset(&name);
        r = cr_buf_printf(&name, "%s-%u", orig, i);
    }
    if (r == 0 && !k) {
        if (!(k = add_kid(top, (const char *)name.data))) r = cr_error(-ENOMEM, "out of memory");
        else r = set_str(&k->root, (const char *)root.data);
    }
    if (r == 0 && n > 1) {
        r = cr_path_join(&sub, (const char *)root.data, orig, strlen(orig));
        if (r == 0) r = add_below(k, target, explicit_target, (const char *)sub.data, &pc, 1, n);
        if (r == 0) r = set_str(&k->info_path, (const char *)sub.data);
    } else if (r == 0) {
        k->explicit_target = explicit_target;
        r = set_str(&k->path, target);
    }
    cr_buf_free(&pc);
    cr_buf_free(&root);
    cr_buf_free(&name);
    cr_buf_free(&sub);
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entry names of a directory, sorted (malloc'd array of malloc'd names). */
static int list_dir(const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) return cr_error_sys(-errno, "open %s", dir);
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while (r == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 32;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv) { r = cr_error(-ENOMEM, "out of memory"); break; }
            v = nv;
        }
        if (!(v[cnt] = strdup(de->d_name))) r = cr_error(-ENOMEM, "out of memory");
        else cnt++;
    }
    closedir(d);
    if (r == 0 && cnt) qsort(v, cnt, sizeof *v, cmp_str);
    *names = v;
    *n = cnt;
    return r;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* restic's unrollTree: a leaf that got children becomes an inner node
 * listing the rest of its directory. */
static int unroll(cr_tnode *t)
{
    if (t->path && t->nkids) {
        char **names = NULL;
        size_t n = 0;
        int r = list_dir(t->path, &names, &n);
        cr_buf p = CR_BUF_INIT;
        for (size_t i = 0; r == 0 && i < n; i++) {
            r = cr_path_join(&p, t->path, names[i], strlen(names[i]));
            if (r < 0) break;
            cr_tnode *k = find_kid(t, names[i]);
            if (k && !k->path) r = set_str(&k->path, (const char *)p.data);
            else if (k && strcmp(k->path, (const char *)p.data))
                r = cr_error(CR_E_USAGE, "tree unrollTree: collision on path %s", (const char *)p.data);
            else if (!k) {
                if (!(k = add_kid(t, names[i]))) r = cr_error(-ENOMEM, "out of memory");
                else r = set_str(&k->path, (const char *)p.data);
            }
        }
        cr_buf_free(&p);
        free_names(names, n);
        CR_TRY(r);
        if (!t->info_path) {
            t->info_path = t->path;
            t->path = NULL;
        } else {
            free(t->path);
            t->path = NULL;
        }
        t->explicit_target = false;
    }
    for (size_t i = 0; i < t->nkids; i++) CR_TRY(unroll(&t->kids[i]));
    return 0;
}

static int cmp_tnode(const void *a, const void *b)
{
    return strcmp(((const cr_tnode *)a)->name, ((const cr_tnode *)b)->name);
}

static void sort_tree(cr_tnode *t)
{
    if (t->nkids) qsort(t->kids, t->nkids, sizeof *t->kids, cmp_tnode);
    for (size_t i = 0; i < t->nkids; i++) sort_tree(&t->kids[i]);
}

/* restic's resolveRelativeTargets: "." or ".." alone stand for their entries
 * (which, unlike the targets themselves, excludes still apply to). */
static int resolve_targets(const char *const *targets, size_t n, char ***out, bool **explicit_out, size_t *nout)
{
    char **v = NULL;
    bool *ex = NULL;
    size_t cnt = 0;
    cr_buf clean = CR_BUF_INIT, pc = CR_BUF_INIT, p = CR_BUF_INIT;
    int r = 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = cr_path_clean(targets[i], &clean);
        size_t ncomp = 0;
        if (r == 0) r = components((const char *)clean.data, false, &pc, &ncomp);
        char **names = NULL;
        size_t nn = 0;
        if (r == 0 && !ncomp) r = list_dir((const char *)clean.data, &names, &nn);
        else if (r == 0) nn = 1;
        char **nv = r == 0 ? realloc(v, (cnt + nn + 1) * sizeof *nv) : NULL;
        if (nv) v = nv;
        bool *ne = nv ? realloc(ex, (cnt + nn + 1) * sizeof *ne) : NULL;
        if (ne) ex = ne;
        if (r == 0 && (!nv || !ne)) r = cr_error(-ENOMEM, "out of memory");
        for (size_t k = 0; r == 0 && k < nn; k++) {
            if (names) r = cr_path_join(&p, (const char *)clean.data, names[k], strlen(names[k]));
            const char *s = names ? (const char *)p.data : (const char *)clean.data;
            if (r == 0 && !(v[cnt] = strdup(s))) r = cr_error(-ENOMEM, "out of memory");
            if (r == 0) ex[cnt++] = names == NULL;
        }
        free_names(names, names ? nn : 0);
    }
    cr_buf_free(&clean);
    cr_buf_free(&pc);
    cr_buf_free(&p);
    *out = v;
    *explicit_out = ex;
    *nout = cnt;
    return r;
}

int cr_tnode_build(const char *const *targets, size_t n, cr_tnode *root)
{
    memset(root, 0, sizeof *root);
    char **clean = NULL;
    bool *explicit_target = NULL;
    size_t nclean = 0;
    int r = resolve_targets(targets, n, &clean, &explicit_target, &nclean);
    for (size_t i = 0; r == 0 && i < nclean; i++) {
        bool dup = false;
        for (size_t k = 0; k < i && !dup; k++) dup = !strcmp(clean[k], clean[i]);
        if (!dup) r = add_target(root, clean[i], explicit_target[i]);
    }
    free_names(clean, nclean);
    free(explicit_target);
    if (r == 0) r = unroll(root);
    if (r == 0) sort_tree(root);
    if (r < 0) tnode_clear(root);
    return r;
}
