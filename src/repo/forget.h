/* The forget retention policy (spec §19): which snapshots of a group are
 * kept, which are removed, and why.  Pure: snapshots, a policy and "now" in,
 * decisions out; nothing is loaded or deleted here.
 *
 * The decisions are restic 0.14's, ties included:
 *
 *  - A group is sorted newest first with a *stable* sort (0.14's ApplyPolicy
 *    calls sort.Stable), so snapshots with identical times keep the order in
 *    which they were handed in.  restic 0.14 hands them in the order its
 *    loader delivered them: the backend's listing order (readdir order for
 *    a local repository), as long as its two parallel loaders do not
 *    overtake each other.  Callers pass the group in listing order.
 *  - Bucket rules (hourly ... yearly) use the wall clock in each snapshot's
 *    own stored offset; weeks are ISO 8601 weeks (Monday first, the week
 *    belongs to the year of its Thursday).
 *  - --keep-within* measure from the newest snapshot that is not in the
 *    future ("latest"): cut-off = latest.AddDate(-y, -m, -d) - h hours, with
 *    Go's normalisation (2024-03-31 minus one month is "2024-02-31", i.e.
 *    2024-03-02), computed in latest's zone; a snapshot is inside when it is
 *    strictly after the cut-off.  Go reads a stored offset that equals the
 *    local zone's offset at that instant as the local zone (DST rules and
 *    all), which moves the cut-off by the DST difference when the date
 *    arithmetic crosses a transition: pass a cr_forget_zone to reproduce
 *    that, NULL for fixed offsets.
 *
 * Differences from newer restic, on purpose (0.14 is the reference):
 *  - 0.16+ keeps the group's oldest snapshot for a bucket rule that still has
 *    count left at the end ("oldest ... snapshot"); 0.14 does not, nor here.
 *  - 0.16+ takes -1 (`unlimited`) as "no limit"; 0.14 rejects the word and
 *    takes any count <= 0 as "rule off" while the policy still counts as set
 *    (so `--keep-last -1` alone removes everything).  Here counts <= 0 behave
 *    as in 0.14, and `unlimited` is accepted as a separate flag (count shown
 *    as -1 in the counters, as 0.16+ shows it).
 *  - 0.17+ refuses an empty policy and a policy that would remove a whole
 *    group; 0.14 keeps everything for an empty policy and removes whatever
 *    the rules say, as here.
 */
#ifndef CRESTIC_REPO_FORGET_H
#define CRESTIC_REPO_FORGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/snapshot.h"
#include "util/gotime.h"

/* restic's Duration for --keep-within*: "1y2m3d4h" (any subset, any order,
 * signed numbers; a repeated unit overrides the earlier one). */
typedef struct {
    int64_t years, months, days, hours;
} cr_forget_duration;

/* Parse as restic 0.14's ParseDuration (surrounding white space trimmed,
 * "" is the zero duration).  CR_E_USAGE with restic's message ("no number
 * found", "no unit found after number 5", "invalid unit 'x' found after
 * number 5"). */
int cr_forget_parse_duration(const char *s, cr_forget_duration *d);
bool cr_forget_duration_zero(const cr_forget_duration *d);
/* restic's Duration.String(): "1y2m", zero parts left out ("" for zero). */
void cr_forget_format_duration(const cr_forget_duration *d, char *out, size_t n);

/* The counted rules, in restic's order. */
typedef enum {
    CR_KEEP_LAST,
    CR_KEEP_HOURLY,
    CR_KEEP_DAILY,
    CR_KEEP_WEEKLY,
    CR_KEEP_MONTHLY,
    CR_KEEP_YEARLY,
    CR_KEEP_NCOUNTED,
} cr_keep_rule;

/* The --keep-within-<bucket> rules, in restic's order. */
typedef enum {
    CR_WITHIN_HOURLY,
    CR_WITHIN_DAILY,
    CR_WITHIN_WEEKLY,
    CR_WITHIN_MONTHLY,
    CR_WITHIN_YEARLY,
    CR_WITHIN_NBUCKETS,
} cr_within_rule;

/* One --keep-tag value, split at commas and trimmed as restic's TagList. */
typedef struct {
    char **tags;
    size_t n;
} cr_tag_list;

typedef struct {
    int64_t count[CR_KEEP_NCOUNTED];   /* <= 0: rule off (0.14), see above */
    bool unlimited[CR_KEEP_NCOUNTED];  /* `unlimited`: one per bucket, no limit */
    cr_forget_duration within;
    cr_forget_duration within_bucket[CR_WITHIN_NBUCKETS];
    cr_tag_list *keep_tags;
    size_t nkeep_tags;
} cr_forget_policy;

/* Split "a, b" into {"a","b"} and append it to the policy's keep-tag lists. */
int cr_forget_policy_add_keep_tag(cr_forget_policy *p, const char *list);
void cr_forget_policy_clear(cr_forget_policy *p);
/* No rule given at all (restic's ExpirePolicy.Empty): everything is kept. */
bool cr_forget_policy_empty(const cr_forget_policy *p);
/* restic's ExpirePolicy.String(): "keep 2 latest snapshots, 3 daily
 * snapshots and all snapshots within 1d of the newest".  Into out. */
int cr_forget_policy_describe(const cr_forget_policy *p, cr_buf *out);

/* The local zone as Go sees it (see the header comment): its offset in
 * seconds east of UTC at a Unix instant. */
typedef int32_t (*cr_forget_zone)(int64_t unix_sec);
/* The local zone from the C library (TZ respected). */
int32_t cr_forget_local_zone(int64_t unix_sec);

/* Why a snapshot is kept, as restic's KeepReason. */
typedef struct {
    const cr_snapshot *sn;
    char **matches;      /* "last snapshot", "daily within 1y", "has tags [a, b]", ... */
    size_t nmatches;
    int64_t counters[CR_KEEP_NCOUNTED]; /* counts left after this snapshot (-1: unlimited) */
} cr_forget_reason;

typedef struct {
    const cr_snapshot **keep;   /* newest first, as restic lists them */
    size_t nkeep;
    const cr_snapshot **remove; /* newest first */
    size_t nremove;
    cr_forget_reason *reasons;  /* one per kept snapshot, same order */
} cr_forget_result;

/* Apply the policy to one group, given in listing order (see above).  An
 * empty policy keeps everything with the reason "policy is empty".  `now`
 * decides which snapshots are in the future; zone may be NULL. */
int cr_forget_apply(const cr_snapshot *const *group, size_t n, const cr_forget_policy *p, const cr_time *now,
                    cr_forget_zone zone, cr_forget_result *out);
void cr_forget_result_free(cr_forget_result *r);

/* ---- building blocks, exposed for the tests ---- */

/* Bucket values as restic computes them, on the wall clock in t's offset:
 * YYYYMMDDHH, YYYYMMDD, ISO year*100 + ISO week, YYYYMM, YYYY. */
int64_t cr_forget_bucket_hour(const cr_time *t);
int64_t cr_forget_bucket_day(const cr_time *t);
int64_t cr_forget_bucket_week(const cr_time *t);
int64_t cr_forget_bucket_month(const cr_time *t);
int64_t cr_forget_bucket_year(const cr_time *t);
/* ISO 8601 week of a civil date (Go's Time.ISOWeek). */
void cr_forget_iso_week(int64_t year, int month, int day, int64_t *iso_year, int *week);
/* Go's t.AddDate(years, months, days): the result keeps t's offset (or is
 * re-resolved in the local zone when zone is given and t is in it). */
cr_time cr_forget_add_date(const cr_time *t, int64_t years, int64_t months, int64_t days, cr_forget_zone zone);
/* latest.AddDate(-y, -m, -d).Add(-h hours), with Go's int64 nanosecond
 * wrap-around for absurd hour counts. */
cr_time cr_forget_within_cutoff(const cr_time *latest, const cr_forget_duration *d, cr_forget_zone zone);
/* Stable sort, newest first (ties keep their order). */
void cr_forget_sort_newest_first(const cr_snapshot **v, size_t n);

#endif
