/* restic's path patterns (filter.Match): used by restore --include/--exclude
 * and backup --exclude.  '*', '?', '[...]' within one path component, '**'
 * across components; a pattern without a leading '/' may match at any depth;
 * a pattern matches a path if it matches the path or any of its parents. */
#ifndef CRESTIC_UTIL_PATTERN_H
#define CRESTIC_UTIL_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cr_patterns cr_patterns;

/* Compile a list; case_insensitive folds ASCII and UTF-8 case.  Returns
 * CR_E_USAGE for a malformed pattern (e.g. unterminated '['). */
int cr_patterns_new(const char *const *pats, size_t n, bool case_insensitive, cr_patterns **out);
void cr_patterns_free(cr_patterns *p);
size_t cr_patterns_count(const cr_patterns *p);

/* Exclude semantics: true if any pattern matches path (absolute, '/'-separated). */
bool cr_patterns_match(const cr_patterns *p, const char *path);
/* Include semantics: *matched = some pattern matches the path (or a parent);
 * *child_may_match = some pattern could match something below the path, so
 * a directory must be descended into. */
void cr_patterns_match_include(const cr_patterns *p, const char *path, bool *matched, bool *child_may_match);

#endif
