/* libFuzzer target for util/pattern.  Input: lines; the first byte picks
 * case folding, then "pattern lines" up to an empty line, then paths.
 *
 * Properties:
 *  - compiling never crashes and fails only with CR_E_USAGE;
 *  - cr_patterns_match() agrees with the matched half of match_include();
 *  - for one small non-negated pattern, the result equals a naive oracle
 *    that expands every "**" into 0..n single-component wildcards and tries
 *    every placement (restic's own, exponential, formulation), using the
 *    library only to match single components;
 *  - a path matched by an absolute pattern keeps matching with a child
 *    appended (patterns select whole subtrees). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/pattern.h"

#define MAXC 10

typedef struct {
    char *v[MAXC];
    size_t n;
} comps;

static bool split(const char *s, comps *c, bool clean)
{
    c->n = 0;
    bool rooted = s[0] == '/';
    if (rooted) c->v[c->n++] = strdup("/");
    const char *p = s;
    while (*p) {
        while (*p == '/') p++;
        const char *e = p;
        while (*e && *e != '/') e++;
        if (e > p) {
            if (c->n == MAXC) return false;
            c->v[c->n++] = strndup(p, (size_t)(e - p));
        } else if (!clean && *e == 0 && e > s && e[-1] == '/') {
            if (c->n == MAXC) return false;
            c->v[c->n++] = strdup("");
        }
        p = e;
    }
    return c->n > 0;
}

static void comps_free(comps *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->v[i]);
    c->n = 0;
}

static bool component_matches(const char *pat, const char *name)
{
    if (!strcmp(pat, "/") || !strcmp(name, "/")) return !strcmp(pat, name);
    char path[600];
    if (strlen(name) + 2 > sizeof path) return false;
    path[0] = '/';
    strcpy(path + 1, name);
    /* A leading '!' would negate the one-component pattern: escape it. */
    char esc[600];
    if (strlen(pat) + 2 > sizeof esc) return false;
    snprintf(esc, sizeof esc, "%s%s", pat[0] == '!' ? "\\" : "", pat);
    const char *pats[] = {esc};
    cr_patterns *p = NULL;
    if (cr_patterns_new(pats, 1, false, &p) < 0) return false;
    bool m = cr_patterns_match(p, path);
    cr_patterns_free(p);
    return m;
}

/* Placement of a "**"-free pattern: absolute at 0, relative anywhere
 * after the root marker, the path may continue below. */
static bool place(char **pat, size_t np, char **s, size_t ns)
{
    if (np == 0 || np > ns) return false;
    bool abs = !strcmp(pat[0], "/");
    size_t lo = (!abs && !strcmp(s[0], "/")) ? 1 : 0, hi = abs ? 0 : ns - np;
    for (size_t off = lo; off <= hi; off++) {
        size_t i = 0;
        while (i < np && component_matches(pat[i], s[off + i])) i++;
        if (i == np) return true;
    }
    return false;
}

static bool oracle(char **pat, size_t np, char **s, size_t ns)
{
    for (size_t k = 0; k < np; k++) {
        if (strcmp(pat[k], "**")) continue;
        char *exp[2 * MAXC];
        for (size_t stars = 0; np - 1 + stars <= ns; stars++) {
            size_t m = 0;
            for (size_t i = 0; i < k; i++) exp[m++] = pat[i];
            for (size_t i = 0; i < stars; i++) exp[m++] = "*";
            for (size_t i = k + 1; i < np; i++) exp[m++] = pat[i];
            if (oracle(exp, m, s, ns)) return true;
        }
        return false;
    }
    return place(pat, np, s, ns);
}

/* Only simple shapes go to the oracle: no cleaning needed, no '!'. */
static bool oracle_applies(const char *pat)
{
    if (!pat[0] || pat[0] == '!' || strstr(pat, "//") || pat[strlen(pat) - 1] == '/') return false;
    if (strstr(pat, "/./") || strstr(pat, "/../") || !strncmp(pat, "./", 2) || !strncmp(pat, "../", 3)) return false;
    if (!strcmp(pat, ".") || !strcmp(pat, "..")) return false;
    size_t len = strlen(pat);
    if ((len >= 2 && !strcmp(pat + len - 2, "/.")) || (len >= 3 && !strcmp(pat + len - 3, "/.."))) return false;
    return true;
}

static void check_one(const char *pat, const char *path)
{
    if (!oracle_applies(pat) || path[0] != '/' || strstr(path, "//")) return;
    comps pc, sc;
    if (!split(pat, &pc, true)) return comps_free(&pc);
    if (!split(path, &sc, false)) return comps_free(&pc), comps_free(&sc);
    size_t dstars = 0;
    for (size_t i = 0; i < pc.n; i++) dstars += !strcmp(pc.v[i], "**");
    if (dstars <= 3) {
        const char *pats[] = {pat};
        cr_patterns *p = NULL;
        if (cr_patterns_new(pats, 1, false, &p) == 0) {
            bool got = cr_patterns_match(p, path);
            if (got != oracle(pc.v, pc.n, sc.v, sc.n)) abort();
            cr_patterns_free(p);
        }
    }
    comps_free(&pc);
    comps_free(&sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 512) return 0;
    bool fold = data[0] & 1;
    char *text = strndup((const char *)data + 1, size - 1);
    if (!text) return 0;
    const char *pats[8], *paths[8];
    size_t npats = 0, npaths = 0;
    bool in_paths = false;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strcmp(line, "--")) {
            in_paths = true;
            continue;
        }
        if (!in_paths && npats < 8) pats[npats++] = line;
        else if (in_paths && npaths < 8) paths[npaths++] = line;
    }
    cr_patterns *p = NULL;
    int r = cr_patterns_new(pats, npats, fold, &p);
    if (r < 0 && r != CR_E_USAGE) abort();
    if (r == 0) {
        for (size_t i = 0; i < npaths; i++) {
            bool m = cr_patterns_match(p, paths[i]), mi, child;
            cr_patterns_match_include(p, paths[i], &mi, &child);
            if (m != mi) abort();
        }
        cr_patterns_free(p);
    }
    for (size_t i = 0; !fold && i < npats && i < 2; i++)
        for (size_t j = 0; j < npaths && j < 3; j++) check_one(pats[i], paths[j]);
    /* Parent rule for absolute patterns. */
    for (size_t i = 0; !fold && i < npats; i++) {
        if (pats[i][0] != '/') continue;
        const char *one[] = {pats[i]};
        cr_patterns *q = NULL;
        if (cr_patterns_new(one, 1, false, &q) < 0) continue;
        for (size_t j = 0; j < npaths; j++) {
            if (paths[j][0] != '/' || strlen(paths[j]) > 400 || !cr_patterns_match(q, paths[j])) continue;
            char longer[512];
            strcpy(longer, paths[j]);
            strcat(longer, strcmp(paths[j], "/") ? "/child" : "child");
            if (!cr_patterns_match(q, longer)) abort();
        }
        cr_patterns_free(q);
    }
    free(text);
    return 0;
}
