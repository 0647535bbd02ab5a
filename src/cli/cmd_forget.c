/* crestic forget: remove snapshots by a retention policy (or by ID), as
 * restic 0.14's forget; the decisions come from repo/forget.h.
 *
 * Order matters for ties (forget.h): snapshots are loaded in listing order
 * and grouped in that order, which is the order restic 0.14 feeds into its
 * stable sort.  Groups are printed in the order of their first snapshot in
 * that listing (restic prints them in Go map order, i.e. at random). */
#include "cli/cli.h"
#include "cli/output.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo/excluder.h"
#include "repo/forget.h"
#include "repo/pruner.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

extern const cr_command cr_cmd_forget;

/* ---- options -------------------------------------------------------------- */

enum { WITHIN_ANY = CR_WITHIN_NBUCKETS, NDURATIONS };

typedef struct {
    cr_strv counts[CR_KEEP_NCOUNTED]; /* every value given, checked in order; the last wins */
    cr_strv durations[NDURATIONS];    /* --keep-within-hourly.. , then --keep-within */
    cr_strv keep_tags;
    cr_strv hosts, hostnames, tags, paths;
    bool compact, dry_run, prune;
    const char *group_by;
    /* prune's options, handed on to prune */
    const char *max_unused, *max_repack_size;
    bool repack_cacheable_only, repack_small, repack_uncompressed;
} forget_opts;

static const char *const count_flags[CR_KEEP_NCOUNTED] = {"-l, --keep-last", "-H, --keep-hourly", "-d, --keep-daily",
                                                          "-w, --keep-weekly", "-m, --keep-monthly", "-y, --keep-yearly"};
static const char *const duration_flags[NDURATIONS] = {"--keep-within-hourly", "--keep-within-daily",
                                                       "--keep-within-weekly", "--keep-within-monthly",
                                                       "--keep-within-yearly", "--keep-within"};

static void opts_free(forget_opts *o)
{
    for (int i = 0; i < CR_KEEP_NCOUNTED; i++) cr_strv_free(&o->counts[i]);
    for (int i = 0; i < NDURATIONS; i++) cr_strv_free(&o->durations[i]);
    cr_strv_free(&o->keep_tags);
    cr_strv_free(&o->hosts), cr_strv_free(&o->hostnames), cr_strv_free(&o->tags), cr_strv_free(&o->paths);
}

/* Go's strconv.ParseInt(s, 0, 64), which pflag uses for int flags: sign,
 * 0x/0o/0b prefixes, a leading 0 for octal, '_' between digits. */
static bool go_underscores_ok(const char *s)
{
    char saw = '^';
    if (*s == '+' || *s == '-') s++;
    bool hex = false;
    if (s[0] == '0' && s[1] && strchr("bBoOxX", s[1])) {
        hex = s[1] == 'x' || s[1] == 'X';
        s += 2;
        saw = '0';
    }
    for (; *s; s++) {
        if ((*s >= '0' && *s <= '9') || (hex && strchr("abcdefABCDEF", *s))) saw = '0';
        else if (*s == '_') {
            if (saw != '0') return false;
            saw = '_';
        } else {
            if (saw == '_') return false;
            saw = '!';
        }
    }
    return saw != '_';
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    return 99;
}

/* 0, or 1 for a syntax error, 2 when out of range. */
static int go_parse_int(const char *s0, int64_t *out)
{
    const char *s = s0;
    bool neg = *s == '-';
    if (*s == '+' || *s == '-') s++;
    if (!*s) return 1;
    int base = 10;
    if (s[0] == '0') {
        size_t len = strlen(s);
        char c = len >= 3 ? s[1] | 0x20 : 0;
        base = c == 'b' ? 2 : c == 'o' ? 8 : c == 'x' ? 16 : 8;
        s += (c == 'b' || c == 'o' || c == 'x') ? 2 : 1;
    }
    uint64_t v = 0;
    bool underscores = false, overflow = false;
    for (; *s; s++) {
        if (*s == '_') {
            underscores = true;
            continue;
        }
        int d = digit_value(*s);
        if (d >= base) return 1;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) overflow = true;
        else v = v * (uint64_t)base + (uint64_t)d;
    }
    if (underscores && !go_underscores_ok(s0)) return 1;
    if (overflow || (!neg && v > (uint64_t)INT64_MAX) || (neg && v > (uint64_t)INT64_MAX + 1)) return 2;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* restic checks prune's options first, even without --prune. */
static int check_prune_options(const forget_opts *o)
{
    cr_prune_opts po;
    memset(&po, 0, sizeof po);
    CR_TRY(cr_prune_parse_max_unused(o->max_unused ? o->max_unused : "5%", &po));
    int64_t size;
    if (o->max_repack_size && *o->max_repack_size) CR_TRY(cr_parse_size(o->max_repack_size, &size));
    return 0;
}

/* A count, or `unlimited` (restic 0.16+; 0.14 refuses the word). */
static int parse_count(const char *flag, const char *v, int64_t *count, bool *unlimited)
{
    *unlimited = !strcmp(v, "unlimited");
    *count = 0;
    if (*unlimited) return 0;
    int r = go_parse_int(v, count);
    if (r == 0) return 0;
    return cr_error(CR_E_USAGE, "invalid argument \"%s\" for \"%s\" flag: strconv.ParseInt: parsing \"%s\": %s", v, flag, v,
                    r == 1 ? "invalid syntax" : "value out of range");
}

static int build_policy(const forget_opts *o, cr_forget_policy *p)
{
    for (int i = 0; i < CR_KEEP_NCOUNTED; i++)
        for (size_t k = 0; k < o->counts[i].n; k++)
            CR_TRY(parse_count(count_flags[i], o->counts[i].v[k], &p->count[i], &p->unlimited[i]));
    for (int i = 0; i < NDURATIONS; i++)
        for (size_t k = 0; k < o->durations[i].n; k++) {
            cr_forget_duration *d = i == WITHIN_ANY ? &p->within : &p->within_bucket[i];
            int e = cr_forget_parse_duration(o->durations[i].v[k], d);
            if (e < 0) {
                char why[256]; /* copied: the message buffer is about to be rewritten */
                snprintf(why, sizeof why, "%s", cr_error_message());
                return cr_error(e, "invalid argument \"%s\" for \"%s\" flag: %s", o->durations[i].v[k], duration_flags[i], why);
            }
        }
    for (size_t k = 0; k < o->keep_tags.n; k++) CR_TRY(cr_forget_policy_add_keep_tag(p, o->keep_tags.v[k]));
    return 0;
}

typedef struct {
    bool host, paths, tags;
} group_by;

/* As restic's GroupSnapshots: exact words between commas, "" allowed. */
static int parse_group_by(const char *s, group_by *g)
{
    memset(g, 0, sizeof *g);
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
#define IS(word) (len == strlen(word) && !memcmp(p, word, len))
        if (IS("host") || IS("hosts")) g->host = true;
        else if (IS("path") || IS("paths")) g->paths = true;
        else if (IS("tag") || IS("tags")) g->tags = true;
        else if (len) return cr_error(CR_E_USAGE, "unknown grouping option: '%.*s'", (int)len, p);
#undef IS
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* ---- loading ---------------------------------------------------------------- */

typedef struct {
    cr_snapshot *v; /* in listing order */
    size_t n;
} snapshot_vec;

static void vec_free(snapshot_vec *s)
{
    cr_snapshots_free(s->v, s->n);
    s->v = NULL;
    s->n = 0;
}

static int vec_push(snapshot_vec *s, cr_snapshot *sn)
{
    cr_snapshot *nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!nv) {
        cr_snapshot_clear(sn);
        return cr_error(-ENOMEM, "out of memory");
    }
    s->v = nv;
    s->v[s->n++] = *sn;
    return 0;
}

/* Every snapshot matching the filter, in the order the backend lists them. */
static int load_matching(cr_repo *r, const cr_snapshot_filter *f, snapshot_vec *out)
{
    _cleanup_free_ cr_id *ids = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_list_ids(r, CR_FILE_SNAPSHOT, &ids, NULL, &n));
    for (size_t i = 0; i < n; i++) {
        cr_snapshot sn;
        int e = cr_repo_load_snapshot(r, &ids[i], &sn);
        if (e == -ENOMEM) return e;
        if (e < 0) {
            char short_id[9];
            cr_id_short(&ids[i], short_id);
            fprintf(stderr, "could not load snapshot %s: %s\n", short_id, cr_error_message());
            continue;
        }
        if (!cr_snapshot_matches(&sn, f)) {
            cr_snapshot_clear(&sn);
            continue;
        }
        CR_TRY(vec_push(out, &sn));
    }
    return 0;
}

static bool vec_has(const snapshot_vec *s, const cr_id *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (cr_id_eq(&s->v[i].id, id)) return true;
    return false;
}

/* Go's %v of a []string: "[a b]". */
static void print_go_list(FILE *f, const char *const *v, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s%s", i ? " " : "", v[i]);
    fputc(']', f);
}

/* %v of restic's TagLists: "[[a, b] [c]]". */
static void print_tag_lists(FILE *f, const char *const *lists, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s[", i ? " " : "");
        const char *p = lists[i];
        for (bool first = true;; first = false) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            while (len && (*p == ' ' || *p == '\t')) p++, len--;
            while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
            fprintf(f, "%s%.*s", first ? "" : ", ", (int)len, p);
            if (!comma) break;
            p = comma + 1;
        }
        fputc(']', f);
    }
    fputc(']', f);
}

static void warn_latest_not_found(const cr_snapshot_filter *f)
{
    fprintf(stderr, "Ignoring \"latest\", no snapshot matched given filter (Paths:");
    print_go_list(stderr, f->paths, f->npaths);
    fprintf(stderr, " Tags:");
    print_tag_lists(stderr, f->tag_lists, f->ntag_lists);
    fprintf(stderr, " Hosts:");
    print_go_list(stderr, f->hosts, f->nhosts);
    fprintf(stderr, ")\n");
}

/* Snapshots named on the command line, each once; the ones that cannot be
 * found are skipped with restic's warnings. */
static int load_listed(cr_repo *r, char **args, int nargs, const cr_snapshot_filter *f, snapshot_vec *out)
{
    bool used_filter = false;
    for (int i = 0; i < nargs; i++) {
        cr_snapshot sn;
        bool latest = !strcmp(args[i], "latest");
        used_filter |= latest;
        int e = cr_repo_find_snapshot(r, args[i], latest ? f : &(cr_snapshot_filter){0}, &sn);
        if (e == -ENOMEM) return e;
        if (e < 0) {
            if (latest) warn_latest_not_found(f);
            else fprintf(stderr, "Ignoring \"%s\": %s\n", args[i], cr_error_message());
            continue;
        }
        if (vec_has(out, &sn.id)) cr_snapshot_clear(&sn);
        else CR_TRY(vec_push(out, &sn));
    }
    if (!used_filter && (f->nhosts || f->ntag_lists || f->npaths))
        fprintf(stderr, "Ignoring filters as there are explicit snapshot ids given\n");
    return 0;
}

/* ---- groups ----------------------------------------------------------------- */

typedef struct {
    char *key;              /* {"hostname":..,"paths":..,"tags":..} as restic's group key */
    const char *host;       /* "" when not grouped by host */
    char **paths, **tags;   /* the key's lists (NULL when not part of the key) */
    size_t npaths, ntags;
    const cr_snapshot **list; /* listing order */
    size_t n;
} snapshot_group;

typedef struct {
    snapshot_group *v;
    size_t n;
} group_set;

static void groups_free(group_set *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        free(gs->v[i].key);
        free(gs->v[i].list);
    }
    free(gs->v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int put_string_list(cr_buf *b, char *const *v, size_t n, bool present)
{
    if (!present) return cr_buf_puts(b, "null");
    CR_TRY(cr_buf_putc(b, '['));
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_putc(b, ','));
        CR_TRY(cr_json_put_cstr(b, v[i]));
    }
    return cr_buf_putc(b, ']');
}

/* restic sorts each snapshot's paths (always) and tags (when grouping by
 * tags) in place, which the output shows too. */
static int group_key(cr_snapshot *sn, const group_by *g, cr_buf *key)
{
    if (sn->npaths) qsort(sn->paths, sn->npaths, sizeof *sn->paths, cmp_str);
    if (g->tags && sn->ntags) qsort(sn->tags, sn->ntags, sizeof *sn->tags, cmp_str);
    cr_buf_reset(key);
    CR_TRY(cr_buf_puts(key, "{\"hostname\":"));
    CR_TRY(cr_json_put_cstr(key, g->host ? sn->hostname : ""));
    CR_TRY(cr_buf_puts(key, ",\"paths\":"));
    CR_TRY(put_string_list(key, sn->paths, sn->npaths, g->paths && sn->paths));
    CR_TRY(cr_buf_puts(key, ",\"tags\":"));
    CR_TRY(put_string_list(key, sn->tags, sn->ntags, g->tags && sn->tags));
    CR_TRY(cr_buf_putc(key, '}'));
    return cr_buf_nul(key);
}

static int group_add(group_set *gs, const char *key, cr_snapshot *sn, const group_by *g)
{
    snapshot_group *grp = NULL;
    for (size_t i = 0; i < gs->n && !grp; i++)
        if (!strcmp(gs->v[i].key, key)) grp = &gs->v[i];
    if (!grp) {
        snapshot_group *nv = realloc(gs->v, (gs->n + 1) * sizeof *nv);
        if (!nv) return cr_error(-ENOMEM, "out of memory");
        gs->v = nv;
        grp = &gs->v[gs->n++];
        memset(grp, 0, sizeof *grp);
        if (!(grp->key = strdup(key))) return cr_error(-ENOMEM, "out of memory");
        grp->host = g->host ? sn->hostname : "";
        /* a list that is present (even empty) in the key, as Go's nil vs [] */
        if (g->paths && sn->paths) grp->paths = sn->paths, grp->npaths = sn->npaths;
        if (g->tags && sn->tags) grp->tags = sn->tags, grp->ntags = sn->ntags;
    }
    const cr_snapshot **nl = realloc(grp->list, (grp->n + 1) * sizeof *nl);
    if (!nl) return cr_error(-ENOMEM, "out of memory");
    grp->list = nl;
    grp->list[grp->n++] = sn;
    return 0;
}

static int group_snapshots(snapshot_vec *all, const group_by *g, group_set *gs)
{
    _cleanup_buf_ cr_buf key = CR_BUF_INIT;
    for (size_t i = 0; i < all->n; i++) {
        CR_TRY(group_key(&all->v[i], g, &key));
        CR_TRY(group_add(gs, (const char *)key.data, &all->v[i], g));
    }
    return 0;
}

/* ---- text output -------------------------------------------------------------- */

static void print_group_header(const snapshot_group *g)
{
    if (!g->host[0] && !g->tags && !g->paths) return;
    printf("snapshots for (");
    const char *sep = "";
    if (g->host[0]) printf("host [%s]", g->host), sep = ", ";
    if (g->tags) {
        printf("%stags [", sep);
        for (size_t i = 0; i < g->ntags; i++) printf("%s%s", i ? ", " : "", g->tags[i]);
        printf("]");
        sep = ", ";
    }
    if (g->paths) {
        printf("%spaths [", sep);
        for (size_t i = 0; i < g->npaths; i++) printf("%s%s", i ? ", " : "", g->paths[i]);
        printf("]");
    }
    printf("):\n");
}

static int join(cr_buf *b, char *const *v, size_t n, const char *sep)
{
    cr_buf_reset(b);
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_puts(b, sep));
        CR_TRY(cr_buf_puts(b, v[i]));
    }
    return cr_buf_nul(b);
}

typedef struct {
    const cr_snapshot *sn;
    const cr_forget_reason *reason; /* NULL in the remove table */
} table_row;

static int add_row(cr_table *t, const table_row *row, bool compact, bool reasons, bool has_size)
{
    const cr_snapshot *sn = row->sn;
    char id[9], when[64], size[32] = "";
    cr_id_short(&sn->id, id);
    cr_format_local_time(&sn->time, when);
    if (sn->has_summary) cr_format_bytes(size, sizeof size, sn->summary.total_bytes_processed);
    _cleanup_buf_ cr_buf tags = CR_BUF_INIT, why = CR_BUF_INIT, paths = CR_BUF_INIT;
    CR_TRY(join(&tags, sn->tags, sn->ntags, compact ? "\n" : ","));
    CR_TRY(join(&why, row->reason ? row->reason->matches : NULL, row->reason ? row->reason->nmatches : 0, "\n"));
    CR_TRY(join(&paths, sn->paths, sn->npaths, "\n"));
    const char *cells[7];
    size_t k = 0;
    cells[k++] = id;
    cells[k++] = when;
    cells[k++] = sn->hostname;
    cells[k++] = (const char *)tags.data;
    if (!compact && reasons) cells[k++] = (const char *)why.data;
    if (!compact) cells[k++] = (const char *)paths.data;
    if (has_size) cells[k++] = size;
    return cr_table_add_row(t, cells);
}

static int add_columns(cr_table *t, bool compact, bool reasons, bool has_size)
{
    /* Padded headers give the Host and Tags columns restic's minimum width. */
    CR_TRY(cr_table_add_column(t, "ID"));
    CR_TRY(cr_table_add_column(t, "Time"));
    CR_TRY(cr_table_add_column(t, compact ? "Host" : "Host      "));
    CR_TRY(cr_table_add_column(t, compact ? "Tags  " : "Tags      "));
    if (!compact && reasons) CR_TRY(cr_table_add_column(t, "Reasons"));
    if (!compact) CR_TRY(cr_table_add_column(t, "Paths"));
    if (has_size) CR_TRY(cr_table_add_column(t, "Size"));
    return 0;
}

/* restic lists the rows oldest first (a stable sort of the newest-first list,
 * so equal times stay newest-first order). */
static void sort_rows_oldest_first(table_row *rows, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && cr_time_cmp(&rows[j].sn->time, &rows[j - 1].sn->time) < 0; j--) {
            table_row x = rows[j];
            rows[j] = rows[j - 1];
            rows[j - 1] = x;
        }
}

static int print_table(table_row *rows, size_t n, bool compact, bool reasons)
{
    bool has_size = false, multiline = false;
    for (size_t i = 0; i < n; i++) {
        has_size |= rows[i].sn->has_summary;
        multiline |= rows[i].sn->npaths > 1 && !compact;
    }
    sort_rows_oldest_first(rows, n);
    cr_table *t = NULL;
    CR_TRY(cr_table_new(&t));
    int e = add_columns(t, compact, reasons, has_size);
    for (size_t i = 0; i < n && e >= 0; i++) e = add_row(t, &rows[i], compact, reasons, has_size);
    char footer[64];
    snprintf(footer, sizeof footer, "%zu snapshots", n);
    if (e >= 0) e = cr_table_add_footer(t, footer);
    cr_table_blank_line_between_rows(t, multiline);
    if (e >= 0) e = cr_table_write(t, stdout);
    cr_table_free(t);
    return e;
}

static int print_decisions(const cr_forget_result *res, bool compact)
{
    size_t n = res->nkeep > res->nremove ? res->nkeep : res->nremove;
    _cleanup_free_ table_row *rows = calloc(n + 1, sizeof *rows);
    if (!rows) return cr_error(-ENOMEM, "out of memory");
    if (res->nkeep) {
        for (size_t i = 0; i < res->nkeep; i++) rows[i] = (table_row){res->keep[i], &res->reasons[i]};
        printf("keep %zu snapshots:\n", res->nkeep);
        CR_TRY(print_table(rows, res->nkeep, compact, true));
        printf("\n");
    }
    if (res->nremove) {
        for (size_t i = 0; i < res->nremove; i++) rows[i] = (table_row){res->remove[i], NULL};
        printf("remove %zu snapshots:\n", res->nremove);
        CR_TRY(print_table(rows, res->nremove, compact, false));
        printf("\n");
    }
    return 0;
}

/* ---- JSON output --------------------------------------------------------------- */

static int put_snapshots(cr_buf *b, const cr_snapshot *const *v, size_t n)
{
    if (!n) return cr_buf_puts(b, "null");
    CR_TRY(cr_buf_putc(b, '['));
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_putc(b, ','));
        CR_TRY(cr_snapshot_json_with_id(b, v[i], NULL));
    }
    return cr_buf_putc(b, ']');
}

static int put_reason(cr_buf *b, const cr_forget_reason *r)
{
    static const char *const names[CR_KEEP_NCOUNTED] = {"last", "hourly", "daily", "weekly", "monthly", "yearly"};
    CR_TRY(cr_buf_puts(b, "{\"snapshot\":"));
    CR_TRY(cr_snapshot_encode(r->sn, b));
    CR_TRY(cr_buf_puts(b, ",\"matches\":"));
    CR_TRY(put_string_list(b, r->matches, r->nmatches, r->nmatches > 0));
    CR_TRY(cr_buf_puts(b, ",\"counters\":{"));
    bool first = true;
    for (int i = 0; i < CR_KEEP_NCOUNTED; i++) {
        if (!r->counters[i]) continue; /* omitempty */
        CR_TRY(cr_buf_printf(b, "%s\"%s\":%lld", first ? "" : ",", names[i], (long long)r->counters[i]));
        first = false;
    }
    return cr_buf_puts(b, "}}");
}

/* One element of restic's JSON list: {"tags","host","paths","keep","remove","reasons"}. */
static int put_group(cr_buf *b, const snapshot_group *g, const cr_forget_result *res)
{
    CR_TRY(cr_buf_puts(b, "{\"tags\":"));
    CR_TRY(put_string_list(b, g->tags, g->ntags, g->tags != NULL));
    CR_TRY(cr_buf_puts(b, ",\"host\":"));
    CR_TRY(cr_json_put_cstr(b, g->host));
    CR_TRY(cr_buf_puts(b, ",\"paths\":"));
    CR_TRY(put_string_list(b, g->paths, g->npaths, g->paths != NULL));
    CR_TRY(cr_buf_puts(b, ",\"keep\":"));
    CR_TRY(put_snapshots(b, res->keep, res->nkeep));
    CR_TRY(cr_buf_puts(b, ",\"remove\":"));
    CR_TRY(put_snapshots(b, res->remove, res->nremove));
    CR_TRY(cr_buf_puts(b, ",\"reasons\":"));
    if (!res->nkeep) return cr_buf_puts(b, "null}");
    for (size_t i = 0; i < res->nkeep; i++) {
        CR_TRY(cr_buf_putc(b, i ? ',' : '['));
        CR_TRY(put_reason(b, &res->reasons[i]));
    }
    return cr_buf_puts(b, "]}");
}

/* ---- removing ------------------------------------------------------------------ */

typedef struct {
    cr_id *v;
    size_t n;
} id_set;

static int cmp_id(const void *a, const void *b)
{
    return cr_id_cmp(a, b);
}

static int id_set_add(id_set *s, const cr_id *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (cr_id_eq(&s->v[i], id)) return 0;
    cr_id *nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!nv) return cr_error(-ENOMEM, "out of memory");
    s->v = nv;
    s->v[s->n++] = *id;
    return 0;
}

/* "Would have removed the following snapshots:\n{id id}" with sorted short IDs. */
static void print_would_remove(id_set *s)
{
    qsort(s->v, s->n, sizeof *s->v, cmp_id);
    printf("Would have removed the following snapshots:\n{");
    for (size_t i = 0; i < s->n; i++) {
        char short_id[9];
        cr_id_short(&s->v[i], short_id);
        printf("%s%s", i ? " " : "", short_id);
    }
    printf("}\n\n");
}

static void print_progress(size_t done, size_t total, const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t sec = (uint64_t)(now.tv_sec - start->tv_sec) - (now.tv_nsec < start->tv_nsec);
    char when[32];
    if (sec >= 3600) snprintf(when, sizeof when, "%llu:%02llu:%02llu", (unsigned long long)(sec / 3600),
                              (unsigned long long)(sec / 60 % 60), (unsigned long long)(sec % 60));
    else snprintf(when, sizeof when, "%llu:%02llu", (unsigned long long)(sec / 60), (unsigned long long)(sec % 60));
    double pct = total ? 100.0 * (double)done / (double)total : 0;
    printf("[%s] %.2f%%  %zu / %zu files deleted\n\n", when, pct > 100 ? 100 : pct, done, total);
}

/* Delete the snapshot files; the first failure stops (restic's
 * DeleteFilesChecked).  The progress line is restic's final one. */
static int delete_snapshots(cr_global *g, cr_repo *r, const id_set *s)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int e = 0;
    size_t done = 0;
    for (size_t i = 0; i < s->n && e >= 0; i++) {
        if (cr_interrupted) {
            e = cr_error(CR_E_INTERRUPTED, "interrupted");
            break;
        }
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&s->v[i], hex);
        e = cr_be_remove(r->be, CR_FILE_SNAPSHOT, hex);
        if (e < 0 && !g->json) fprintf(stderr, "unable to remove <snapshot/%.10s> from the repository\n", hex);
        if (e >= 0 && !g->json && g->verbose >= 2) printf("removed <snapshot/%.10s>\n", hex);
        if (e >= 0) done++;
    }
    if (!g->json && !g->quiet) print_progress(done, s->n, &start);
    return e;
}

/* ---- the command ---------------------------------------------------------------- */

typedef struct {
    cr_global *g;
    const forget_opts *o;
    const cr_forget_policy *policy;
    id_set remove;
    cr_buf json;
    size_t json_groups;
} forget_run;

static int forget_group(forget_run *fr, const snapshot_group *grp)
{
    cr_global *g = fr->g;
    if (g->verbose >= 1 && !g->json) print_group_header(grp);
    cr_time now = cr_time_now();
    cr_forget_result res;
    CR_TRY(cr_forget_apply(grp->list, grp->n, fr->policy, &now, cr_forget_local_zone, &res));
    int e = 0;
    if (!g->quiet && !g->json) e = print_decisions(&res, fr->o->compact);
    if (e >= 0 && fr->json_groups++) e = cr_buf_putc(&fr->json, ',');
    if (e >= 0) e = put_group(&fr->json, grp, &res);
    for (size_t i = 0; i < res.nremove && e >= 0; i++) e = id_set_add(&fr->remove, &res.remove[i]->id);
    cr_forget_result_free(&res);
    return e;
}

static int apply_policy(forget_run *fr, snapshot_vec *all)
{
    cr_global *g = fr->g;
    group_by gb;
    CR_TRY(parse_group_by(fr->o->group_by, &gb));
    group_set gs = {0};
    int e = group_snapshots(all, &gb, &gs);
    bool empty = cr_forget_policy_empty(fr->policy);
    if (e >= 0 && empty && !g->json && !g->quiet) printf("no policy was specified, no snapshots will be removed\n");
    if (e >= 0 && !empty && !g->json && !g->quiet) {
        _cleanup_buf_ cr_buf d = CR_BUF_INIT;
        e = cr_forget_policy_describe(fr->policy, &d);
        if (e >= 0) printf("Applying Policy: %s\n", (const char *)d.data);
    }
    for (size_t i = 0; e >= 0 && !empty && i < gs.n; i++) e = forget_group(fr, &gs.v[i]);
    groups_free(&gs);
    return e;
}

/* restic runs prune right after, on the same open repository and under the
 * same exclusive lock.  Returns prune's exit code. */
static int run_prune(forget_run *fr, cr_repo *r)
{
    cr_global *g = fr->g;
    const forget_opts *o = fr->o;
    if (!g->json && !g->quiet) printf("%zu snapshots have been removed, running prune\n", fr->remove.n);
    char *argv[16];
    int argc = 0;
    if (o->max_unused) argv[argc++] = "--max-unused", argv[argc++] = (char *)o->max_unused;
    if (o->max_repack_size) argv[argc++] = "--max-repack-size", argv[argc++] = (char *)o->max_repack_size;
    if (o->repack_cacheable_only) argv[argc++] = "--repack-cacheable-only";
    if (o->repack_small) argv[argc++] = "--repack-small";
    if (o->repack_uncompressed) argv[argc++] = "--repack-uncompressed";
    if (o->dry_run) argv[argc++] = "--dry-run";
    argv[argc] = NULL;
    fflush(stdout);
    return cr_cli_prune_repo(g, r, argc, argv);
}

static int forget_locked(forget_run *fr, cr_repo *r, char **args, int nargs)
{
    cr_global *g = fr->g;
    const forget_opts *o = fr->o;
    cr_filter_flags ff = {o->hosts, o->tags, o->paths};
    cr_snapshot_filter f = cr_filter_from_flags(&ff);
    snapshot_vec all = {0};
    int e = nargs ? load_listed(r, args, nargs, &f, &all) : load_matching(r, &f, &all);
    for (size_t i = 0; e >= 0 && nargs && i < all.n; i++) e = id_set_add(&fr->remove, &all.v[i].id);
    if (e >= 0 && !nargs) e = apply_policy(fr, &all);
    if (e >= 0 && fr->remove.n) {
        if (!o->dry_run) e = delete_snapshots(g, r, &fr->remove);
        else if (!g->json) print_would_remove(&fr->remove);
    }
    if (e >= 0 && g->json && fr->json_groups) {
        e = cr_buf_puts(&fr->json, "]\n");
        if (e >= 0) e = cr_write_stdout(fr->json.data, fr->json.len);
    }
    vec_free(&all);
    return e;
}

static int forget(cr_global *g, const forget_opts *o, const cr_forget_policy *policy, char **args, int nargs)
{
    cr_repo *r = NULL;
    int rc = cr_cli_open_repo(g, &r);
    if (rc) return rc;
    if (g->no_lock && !o->dry_run) {
        cr_repo_close(r);
        return cr_cli_fail(g, cr_error(CR_E_USAGE, "--no-lock is only applicable in combination with --dry-run for forget command"));
    }
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, r, true, &lock))) {
        cr_repo_close(r);
        return rc;
    }
    forget_run fr = {.g = g, .o = o, .policy = policy};
    int e = cr_buf_putc(&fr.json, '[');
    if (e >= 0) e = forget_locked(&fr, r, args, nargs);
    if (e >= 0 && o->prune && fr.remove.n) rc = run_prune(&fr, r);
    cr_lock_release(lock);
    cr_repo_close(r);
    cr_buf_free(&fr.json);
    free(fr.remove.v);
    return e < 0 ? cr_cli_fail(g, e) : rc;
}

static int run_forget(cr_global *g, int argc, char **argv)
{
    forget_opts o = {.group_by = "host,paths"};
    const cr_flag flags[] = {
        {"keep-last", 'l', CR_FLAG_STRINGS, &o.counts[CR_KEEP_LAST], "keep the last n snapshots (or 'unlimited')", "n"},
        {"keep-hourly", 'H', CR_FLAG_STRINGS, &o.counts[CR_KEEP_HOURLY], "keep the last n hourly snapshots (or 'unlimited')", "n"},
        {"keep-daily", 'd', CR_FLAG_STRINGS, &o.counts[CR_KEEP_DAILY], "keep the last n daily snapshots (or 'unlimited')", "n"},
        {"keep-weekly", 'w', CR_FLAG_STRINGS, &o.counts[CR_KEEP_WEEKLY], "keep the last n weekly snapshots (or 'unlimited')", "n"},
        {"keep-monthly", 'm', CR_FLAG_STRINGS, &o.counts[CR_KEEP_MONTHLY], "keep the last n monthly snapshots (or 'unlimited')", "n"},
        {"keep-yearly", 'y', CR_FLAG_STRINGS, &o.counts[CR_KEEP_YEARLY], "keep the last n yearly snapshots (or 'unlimited')", "n"},
        {"keep-within", 0, CR_FLAG_STRINGS, &o.durations[WITHIN_ANY], "keep snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot", "duration"},
        {"keep-within-hourly", 0, CR_FLAG_STRINGS, &o.durations[CR_WITHIN_HOURLY], "keep hourly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot", "duration"},
        {"keep-within-daily", 0, CR_FLAG_STRINGS, &o.durations[CR_WITHIN_DAILY], "keep daily snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot", "duration"},
        {"keep-within-weekly", 0, CR_FLAG_STRINGS, &o.durations[CR_WITHIN_WEEKLY], "keep weekly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot", "duration"},
        {"keep-within-monthly", 0, CR_FLAG_STRINGS, &o.durations[CR_WITHIN_MONTHLY], "keep monthly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot", "duration"},
        {"keep-within-yearly", 0, CR_FLAG_STRINGS, &o.durations[CR_WITHIN_YEARLY], "keep yearly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot", "duration"},
        {"keep-tag", 0, CR_FLAG_STRINGS, &o.keep_tags, "keep snapshots with this taglist (can be specified multiple times)", "taglist"},
        {"host", 0, CR_FLAG_STRINGS, &o.hosts, "only consider snapshots with the given host (can be specified multiple times)", "host"},
        {"hostname", 0, CR_FLAG_STRINGS, &o.hostnames, "only consider snapshots with the given hostname (deprecated: use --host)", "hostname"},
        {"tag", 0, CR_FLAG_STRINGS, &o.tags, "only consider snapshots which include this taglist in the format tag[,tag,...] (can be specified multiple times)", "taglist"},
        {"path", 0, CR_FLAG_STRINGS, &o.paths, "only consider snapshots which include this (absolute) path (can be specified multiple times)", "path"},
        {"compact", 'c', CR_FLAG_BOOL, &o.compact, "use compact output format", NULL},
        {"group-by", 'g', CR_FLAG_STRING, &o.group_by, "group snapshots by host, paths and/or tags, separated by comma (disable grouping with '')", "group"},
        {"dry-run", 'n', CR_FLAG_BOOL, &o.dry_run, "do not delete anything, just print what would be done", NULL},
        {"prune", 0, CR_FLAG_BOOL, &o.prune, "automatically run the 'prune' command if snapshots have been removed", NULL},
        {"max-unused", 0, CR_FLAG_STRING, &o.max_unused, "tolerate given limit of unused data (absolute value in bytes with suffixes k/K, m/M, g/G, t/T, a value in % or the word 'unlimited') (default \"5%\")", "limit"},
        {"max-repack-size", 0, CR_FLAG_STRING, &o.max_repack_size, "maximum size to repack (allowed suffixes: k/K, m/M, g/G, t/T)", "size"},
        {"repack-cacheable-only", 0, CR_FLAG_BOOL, &o.repack_cacheable_only, "only repack packs which are cacheable", NULL},
        {"repack-small", 0, CR_FLAG_BOOL, &o.repack_small, "repack pack files below 80% of target pack size", NULL},
        {"repack-uncompressed", 0, CR_FLAG_BOOL, &o.repack_uncompressed, "repack all uncompressed data", NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int npos = 0, rc;
    cr_forget_policy policy = {0};
    int e = cr_parse_flags(g, &cr_cmd_forget, flags, argc, argv, &npos);
    if (e == 0) e = build_policy(&o, &policy);
    if (e == 0) e = check_prune_options(&o);
    for (size_t i = 0; e == 0 && i < o.hostnames.n; i++) e = cr_strv_push(&o.hosts, o.hostnames.v[i]);
    if (e != 0) {
        rc = e > 0 ? CR_EXIT_OK : cr_cli_fail(g, e);
    } else {
        if (o.hostnames.n) fprintf(stderr, "Flag --hostname has been deprecated, use --host\n");
        rc = forget(g, &o, &policy, argv, npos);
    }
    cr_forget_policy_clear(&policy);
    opts_free(&o);
    return rc;
}

const cr_command cr_cmd_forget = {
    "forget",
    "Remove snapshots from the repository",
    "crestic forget [flags] [snapshot ID] [...]",
    run_forget,
};
