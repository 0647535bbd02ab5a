/* Shell-like word splitting and Go durations for option values. */
#include "backends/optparse.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/error.h"

int cr_strlist_push(cr_strlist *l, const char *s)
{
    if (l->n + 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return cr_error(-ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return cr_error(-ENOMEM, "out of memory");
    l->v[++l->n] = NULL;
    return 0;
}

void cr_strlist_free(cr_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    *l = (cr_strlist){0};
}

/* One word starting at *p (not a blank); *p ends after it. */
static int next_word(const char **p, cr_buf *word)
{
    const char *s = *p;
    char quote = 0;
    cr_buf_reset(word);
    for (; *s && (quote || !isspace((unsigned char)*s)); s++) {
        if (quote && *s == quote) {
            quote = 0;
        } else if (!quote && (*s == '\'' || *s == '"')) {
            quote = *s;
        } else if (*s == '\\' && quote != '\'' && s[1]) {
            CR_TRY(cr_buf_append(word, ++s, 1));
        } else {
            CR_TRY(cr_buf_append(word, s, 1));
        }
    }
    if (quote) return cr_error(CR_E_USAGE, "unbalanced quotes in \"%s\"", *p);
    *p = s;
    return cr_buf_nul(word);
}

int cr_shell_split(const char *s, cr_strlist *out)
{
    _cleanup_buf_ cr_buf word = CR_BUF_INIT;
    for (;;) {
        while (isspace((unsigned char)*s)) s++;
        if (!*s) return 0;
        CR_TRY(next_word(&s, &word));
        CR_TRY(cr_strlist_push(out, (const char *)word.data));
    }
}

static double unit_seconds(const char *u, size_t n)
{
    static const struct {
        const char *name;
        double seconds;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"\xce\xbcs", 1e-6}, {"ms", 1e-3},
                 {"s", 1}, {"m", 60}, {"h", 3600}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == n && !memcmp(units[i].name, u, n)) return units[i].seconds;
    return -1;
}

#define GO_DURATION_MAX_SECONDS 9223372036.854775807

int cr_parse_go_duration(const char *s, double *seconds)
{
    const char *p = s;
    double total = 0;
    if (*p == '+') p++;
    if (!strcmp(p, "0")) {
        *seconds = 0;
        return 0;
    }
    if (!*p) goto bad;
    while (*p) {
        const char *num = p;
        while (isdigit((unsigned char)*p) || *p == '.') p++;
        if (p == num || (p - num == 1 && *num == '.')) goto bad;
        char *end;
        double v = strtod(num, &end);
        if (end != p) goto bad;
        const char *unit = p;
        while (*p && !isdigit((unsigned char)*p) && *p != '.') p++;
        double mult = unit_seconds(unit, (size_t)(p - unit));
        if (mult < 0) goto bad;
        total += v * mult;
        /* Go refuses what overflows its int64 nanoseconds (~292 years);
         * so do we, before the sum can become infinite */
        if (!(total <= GO_DURATION_MAX_SECONDS)) goto bad;
    }
    *seconds = total;
    return 0;
bad:
    return cr_error(CR_E_USAGE, "invalid duration \"%s\"", s);
}
