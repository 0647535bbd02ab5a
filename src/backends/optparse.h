/* Parsers for backend option values given by the user (-o key=value). */
#ifndef CRESTIC_BACKENDS_OPTPARSE_H
#define CRESTIC_BACKENDS_OPTPARSE_H

#include <stddef.h>

/* A growable NULL-terminated list of strings (an argv). */
typedef struct {
    char **v; /* v[n] == NULL when n > 0 */
    size_t n, cap;
} cr_strlist;

int cr_strlist_push(cr_strlist *l, const char *s);
void cr_strlist_free(cr_strlist *l);

/* Split s into words as a shell would, without expansions: blanks separate
 * words, '...' and "..." group (adjacent parts join), a backslash outside
 * single quotes takes the next character literally.  The words are appended
 * to out.  Unbalanced quotes are CR_E_USAGE. */
int cr_shell_split(const char *s, cr_strlist *out);

/* A Go time.Duration string ("90s", "1m30s", "1.5h", "250ms", "0") in
 * seconds.  Negative or malformed: CR_E_USAGE. */
int cr_parse_go_duration(const char *s, double *seconds);

#endif
