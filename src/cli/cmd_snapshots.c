/* crestic snapshots: list snapshots as a table or JSON, optionally grouped
 * by host/paths/tags and thinned to the latest N, as `restic snapshots`. */
#include "cli/cli.h"
#include "cli/output.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

extern const cr_command cr_cmd_snapshots;

typedef struct {
    bool host, paths, tags;
} group_by;

typedef struct {
    char *key;           /* group key JSON, e.g. {"hostname":"h","paths":null,"tags":null} */
    cr_snapshot **list;  /* oldest first */
    size_t n;
} snapshot_group;

typedef struct {
    snapshot_group *v;
    size_t n;
    bool grouped;
} group_set;

static int parse_group_by(const char *s, group_by *g)
{
    memset(g, 0, sizeof *g);
    for (const char *p = s; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
#define IS(word) (len == strlen(word) && !memcmp(p, word, len))
        if (IS("host") || IS("hosts")) g->host = true;
        else if (IS("path") || IS("paths")) g->paths = true;
        else if (IS("tag") || IS("tags")) g->tags = true;
        else if (len) return cr_error(CR_E_USAGE, "invalid argument \"%s\" for \"-g, --group-by\" flag: unknown grouping option: \"%.*s\"", s, (int)len, p);
#undef IS
        p = comma ? comma + 1 : p + len;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int put_string_list(cr_buf *b, char **v, size_t n)
{
    if (!n) return cr_buf_puts(b, "null");
    CR_TRY(cr_buf_putc(b, '['));
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_putc(b, ','));
        CR_TRY(cr_json_put_cstr(b, v[i]));
    }
    return cr_buf_putc(b, ']');
}

/* restic sorts each snapshot's paths (always) and its tags (when grouping by
 * tags) in place, which also shows in the output; then keys the group by
 * the JSON of {hostname, paths, tags}. */
static int group_key(cr_snapshot *sn, const group_by *g, cr_buf *key)
{
    if (sn->npaths > 1) qsort(sn->paths, sn->npaths, sizeof *sn->paths, cmp_str);
    if (g->tags && sn->ntags > 1) qsort(sn->tags, sn->ntags, sizeof *sn->tags, cmp_str);
    cr_buf_reset(key);
    CR_TRY(cr_buf_puts(key, "{\"hostname\":"));
    CR_TRY(cr_json_put_cstr(key, g->host && sn->hostname ? sn->hostname : ""));
    CR_TRY(cr_buf_puts(key, ",\"paths\":"));
    CR_TRY(put_string_list(key, sn->paths, g->paths ? sn->npaths : 0));
    CR_TRY(cr_buf_puts(key, ",\"tags\":"));
    CR_TRY(put_string_list(key, sn->tags, g->tags ? sn->ntags : 0));
    CR_TRY(cr_buf_putc(key, '}'));
    return cr_buf_nul(key);
}

static void groups_free(group_set *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        free(gs->v[i].key);
        free(gs->v[i].list);
    }
    free(gs->v);
}

static int group_find_or_add(group_set *gs, const char *key, snapshot_group **out)
{
    for (size_t i = 0; i < gs->n; i++)
        if (!strcmp(gs->v[i].key, key)) {
            if (out) *out = &gs->v[i];
            return 0;
        }
    snapshot_group *nv = realloc(gs->v, (gs->n + 1) * sizeof *nv);
    if (!nv) return cr_error(-ENOMEM, "out of memory");
    gs->v = nv;
    snapshot_group *g = &gs->v[gs->n];
    memset(g, 0, sizeof *g);
    if (!(g->key = strdup(key))) return cr_error(-ENOMEM, "out of memory");
    gs->n++;
    if (out) *out = g;
    return 0;
}

/* restic keeps groups in a Go map, whose iteration order for a handful of
 * groups is nearly always insertion order: the order in which snapshots were
 * found (listing order, or the order of the arguments).  Create the groups
 * in that order, then fill each oldest first. */
static int group_snapshots(cr_snapshot *all, size_t n, const size_t *found_order, const group_by *g, group_set *gs)
{
    _cleanup_buf_ cr_buf key = CR_BUF_INIT;
    gs->grouped = g->host || g->paths || g->tags;
    for (size_t i = 0; i < n; i++) {
        CR_TRY(group_key(&all[found_order[i]], g, &key));
        CR_TRY(group_find_or_add(gs, (const char *)key.data, NULL));
    }
    for (size_t i = 0; i < n; i++) {
        snapshot_group *grp = NULL;
        CR_TRY(group_key(&all[i], g, &key));
        CR_TRY(group_find_or_add(gs, (const char *)key.data, &grp));
        cr_snapshot **nl = realloc(grp->list, (grp->n + 1) * sizeof *nl);
        if (!nl) return cr_error(-ENOMEM, "out of memory");
        grp->list = nl;
        grp->list[grp->n++] = &all[i];
    }
    return 0;
}

static bool same_paths(const cr_snapshot *a, const cr_snapshot *b)
{
    if (a->npaths != b->npaths) return false;
    for (size_t i = 0; i < a->npaths; i++)
        if (strcmp(a->paths[i], b->paths[i])) return false;
    return true;
}

/* --latest N: ungrouped, the newest N per host and path set; in a group,
 * simply the group's newest N.  The list stays oldest first. */
static void keep_latest(snapshot_group *g, long latest, bool grouped)
{
    size_t kept = 0;
    bool *keep = calloc(g->n ? g->n : 1, sizeof *keep);
    if (!keep) return;
    for (size_t i = g->n; i-- > 0;) {
        long seen = 0;
        for (size_t j = i + 1; j < g->n; j++)
            if (keep[j] && (grouped || (!strcmp(g->list[i]->hostname, g->list[j]->hostname) && same_paths(g->list[i], g->list[j]))))
                seen++;
        keep[i] = seen < latest;
    }
    for (size_t i = 0; i < g->n; i++)
        if (keep[i]) g->list[kept++] = g->list[i];
    g->n = kept;
    free(keep);
}

/* ---- JSON --------------------------------------------------------------- */

static int put_snapshot_array(cr_buf *b, cr_snapshot *const *list, size_t n)
{
    CR_TRY(cr_buf_putc(b, '['));
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_putc(b, ','));
        CR_TRY(cr_snapshot_json_with_id(b, list[i], NULL));
    }
    return cr_buf_putc(b, ']');
}

static int print_json(const group_set *gs)
{
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    CR_TRY(cr_buf_putc(&b, '['));
    bool first = true;
    for (size_t i = 0; i < gs->n; i++) {
        const snapshot_group *g = &gs->v[i];
        if (!gs->grouped) {
            for (size_t k = 0; k < g->n; k++, first = false) {
                if (!first) CR_TRY(cr_buf_putc(&b, ','));
                CR_TRY(cr_snapshot_json_with_id(&b, g->list[k], NULL));
            }
            continue;
        }
        if (!first) CR_TRY(cr_buf_putc(&b, ','));
        first = false;
        CR_TRY(cr_buf_printf(&b, "{\"group_key\":%s,\"snapshots\":", g->key));
        /* a group is never empty before --latest, and --latest keeps >= 1 */
        CR_TRY(g->n ? put_snapshot_array(&b, g->list, g->n) : cr_buf_puts(&b, "null"));
        CR_TRY(cr_buf_putc(&b, '}'));
    }
    CR_TRY(cr_buf_puts(&b, "]\n"));
    return cr_write_stdout(b.data, b.len);
}

/* ---- text --------------------------------------------------------------- */

static int print_group_header(const snapshot_group *g)
{
    cr_json_doc *doc = NULL;
    CR_TRY(cr_json_parse(g->key, strlen(g->key), &doc));
    const cr_json *root = cr_json_root(doc);
    const cr_json *host = cr_json_get(root, "hostname"), *paths = cr_json_get(root, "paths"),
                  *tags = cr_json_get(root, "tags");
    bool has_host = host && host->len, has_paths = cr_json_is(paths, CR_JSON_ARRAY),
         has_tags = cr_json_is(tags, CR_JSON_ARRAY);
    int e = 0;
    if (has_host || has_paths || has_tags) {
        _cleanup_buf_ cr_buf b = CR_BUF_INIT;
        const char *sep = "";
        e = cr_buf_puts(&b, "snapshots for (");
        if (e >= 0 && has_host) e = cr_buf_printf(&b, "host [%s]", host->str), sep = ", ";
        const cr_json *lists[2] = {tags, paths};
        const char *names[2] = {"tags", "paths"};
        for (int l = 0; l < 2 && e >= 0; l++) {
            if (!cr_json_is(lists[l], CR_JSON_ARRAY)) continue;
            e = cr_buf_printf(&b, "%s%s [", sep, names[l]);
            for (uint32_t i = 0; i < lists[l]->len && e >= 0; i++)
                e = cr_buf_printf(&b, "%s%s", i ? ", " : "", lists[l]->kids[i].str);
            if (e >= 0) e = cr_buf_putc(&b, ']');
            sep = ", ";
        }
        if (e >= 0) e = cr_buf_puts(&b, "):\n");
        if (e >= 0) e = cr_write_stdout(b.data, b.len);
    }
    cr_json_free(doc);
    return e;
}

static int join(cr_buf *b, char **v, size_t n, const char *sep)
{
    cr_buf_reset(b);
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_puts(b, sep));
        CR_TRY(cr_buf_puts(b, v[i]));
    }
    return cr_buf_nul(b);
}

static int add_snapshot_row(cr_table *t, const cr_snapshot *sn, bool compact, bool has_size)
{
    char id[9], when[64], size[64] = "";
    cr_id_short(&sn->id, id);
    cr_format_local_time(&sn->time, when);
    if (sn->has_summary) cr_go_format_bytes(sn->summary.total_bytes_processed, size);
    _cleanup_buf_ cr_buf tags = CR_BUF_INIT, paths = CR_BUF_INIT;
    CR_TRY(join(&tags, sn->tags, sn->ntags, compact ? "\n" : ","));
    CR_TRY(join(&paths, sn->paths, sn->npaths, "\n"));
    const char *cells[6];
    size_t k = 0;
    cells[k++] = id;
    cells[k++] = when;
    cells[k++] = sn->hostname ? sn->hostname : "";
    cells[k++] = (const char *)tags.data;
    if (!compact) cells[k++] = (const char *)paths.data;
    if (has_size) cells[k++] = size;
    return cr_table_add_row(t, cells);
}

static int print_table(cr_snapshot *const *list, size_t n, bool compact)
{
    bool has_size = false, multiline = false;
    for (size_t i = 0; i < n; i++) {
        has_size |= list[i]->has_summary;
        multiline |= list[i]->npaths > 1 && !compact;
    }
    cr_table *t = NULL;
    CR_TRY(cr_table_new(&t));
    /* Padded headers give the Host and Tags columns restic's minimum width. */
    int e = cr_table_add_column(t, "ID");
    if (e >= 0) e = cr_table_add_column(t, "Time");
    if (e >= 0) e = cr_table_add_column(t, compact ? "Host" : "Host      ");
    if (e >= 0) e = cr_table_add_column(t, compact ? "Tags  " : "Tags      ");
    if (e >= 0 && !compact) e = cr_table_add_column(t, "Paths");
    if (e >= 0 && has_size) e = cr_table_add_column(t, "Size");
    for (size_t i = 0; i < n && e >= 0; i++) e = add_snapshot_row(t, list[i], compact, has_size);
    char footer[64];
    snprintf(footer, sizeof footer, "%zu snapshots", n);
    if (e >= 0) e = cr_table_add_footer(t, footer);
    cr_table_blank_line_between_rows(t, multiline);
    if (e >= 0) e = cr_table_write(t, stdout);
    cr_table_free(t);
    return e;
}

static int print_text(const group_set *gs, bool compact)
{
    for (size_t i = 0; i < gs->n; i++) {
        if (gs->grouped) CR_TRY(print_group_header(&gs->v[i]));
        CR_TRY(print_table(gs->v[i].list, gs->v[i].n, compact));
    }
    return 0;
}

/* ---- selecting snapshots -------------------------------------------------- */

typedef struct {
    cr_snapshot *v;     /* sorted oldest first */
    size_t n;
    size_t *found;      /* indices into v in the order restic found them */
} snapshot_list;

static void list_free(snapshot_list *l)
{
    cr_snapshots_free(l->v, l->n);
    free(l->found);
}

static bool list_has(const snapshot_list *l, const cr_id *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (cr_id_eq(&l->v[i].id, id)) return true;
    return false;
}

static int snapshot_time_cmp(const void *a, const void *b)
{
    const cr_snapshot *x = a, *y = b;
    int c = cr_time_cmp(&x->time, &y->time);
    return c ? c : cr_id_cmp(&x->id, &y->id);
}

/* Sort by time and record where each snapshot of the given found order
 * (IDs) ended up. */
static int sort_keeping_found_order(snapshot_list *l, const cr_id *found_ids, size_t nfound)
{
    if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, snapshot_time_cmp);
    if (!(l->found = calloc(l->n + 1, sizeof *l->found))) return cr_error(-ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < nfound; i++)
        for (size_t j = 0; j < l->n; j++)
            if (cr_id_eq(&found_ids[i], &l->v[j].id)) l->found[k++] = j;
    for (size_t j = 0; k < l->n && j < l->n; j++) { /* any not seen (should not happen) */
        bool seen = false;
        for (size_t i = 0; i < k && !seen; i++) seen = l->found[i] == j;
        if (!seen) l->found[k++] = j;
    }
    return 0;
}

/* restic warns about an argument it cannot use and goes on (exit 0). */
static void ignoring(const char *arg, const char *why)
{
    fprintf(stderr, "Ignoring \"%s\": %s\n", arg, why);
}

static int add_snapshot(snapshot_list *l, cr_snapshot *sn)
{
    if (list_has(l, &sn->id)) {
        cr_snapshot_clear(sn);
        return 0;
    }
    cr_snapshot *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv) {
        cr_snapshot_clear(sn);
        return cr_error(-ENOMEM, "out of memory");
    }
    l->v = nv;
    l->v[l->n++] = *sn;
    return 0;
}

/* One argument: an ID, a prefix or "latest" (with the filter).  Like
 * restic, an argument that selects nothing is reported and skipped. */
static int find_one(cr_repo *r, const char *arg, const cr_snapshot_filter *f, snapshot_list *out)
{
    static const char no_subfolder[] = "<snapshot>:<subfolder> syntax not allowed";
    if (!strncmp(arg, "latest:", 7)) return ignoring(arg, no_subfolder), 0;
    bool latest = !strcmp(arg, "latest");
    cr_snapshot sn;
    int e = latest ? cr_repo_find_snapshot(r, "latest", f, &sn) : cr_cli_find_snapshot(r, arg, NULL, &sn, NULL);
    if (e == CR_E_NOTFOUND && latest) {
        _cleanup_buf_ cr_buf b = CR_BUF_INIT;
        CR_TRY(cr_buf_puts(&b, "no snapshot matched given filter ("));
        CR_TRY(cr_format_filter(&b, f));
        CR_TRY(cr_buf_puts(&b, ")"));
        CR_TRY(cr_buf_nul(&b));
        return ignoring(arg, (const char *)b.data), 0;
    }
    if (e == -ENOMEM || e == CR_E_INTERRUPTED) return e;
    if (e < 0) return ignoring(arg, cr_error_message()), 0;
    if (!latest && strchr(arg, ':')) {
        cr_snapshot_clear(&sn);
        return ignoring(arg, no_subfolder), 0;
    }
    return add_snapshot(out, &sn);
}

/* Explicit arguments, in order; "latest" counts once. */
static int find_listed(cr_repo *r, char **args, int nargs, const cr_snapshot_filter *f, bool filter_set, snapshot_list *out)
{
    bool used_filter = false;
    for (int i = 0; i < nargs; i++) {
        if (!strcmp(args[i], "latest")) {
            if (used_filter) continue;
            used_filter = true;
        }
        CR_TRY(find_one(r, args[i], f, out));
    }
    /* Give the user some indication that the filters were not used. */
    if (!used_filter && filter_set) ignoring("filters", "explicit snapshot ids are given");
    _cleanup_free_ cr_id *ids = calloc(out->n + 1, sizeof *ids);
    if (!ids) return cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; i < out->n; i++) ids[i] = out->v[i].id;
    return sort_keeping_found_order(out, ids, out->n);
}

static int find_matching(cr_repo *r, const cr_snapshot_filter *f, snapshot_list *out)
{
    CR_TRY(cr_repo_load_snapshots(r, &out->v, &out->n));
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (cr_snapshot_matches(&out->v[i], f)) out->v[k++] = out->v[i];
        else cr_snapshot_clear(&out->v[i]);
    }
    out->n = k;
    cr_id *ids = NULL;
    size_t nids = 0;
    CR_TRY(cr_repo_list_ids(r, CR_FILE_SNAPSHOT, &ids, NULL, &nids));
    int e = sort_keeping_found_order(out, ids, nids);
    free(ids);
    return e;
}

typedef struct {
    cr_filter_flags filter;
    bool compact, last;
    long latest;
    const char *group_by;
} snapshots_opts;

static int list_snapshots(cr_global *g, cr_repo *r, const snapshots_opts *o, char **args, int nargs)
{
    group_by gb;
    CR_TRY(parse_group_by(o->group_by, &gb));
    cr_snapshot_filter f = cr_filter_from_flags(&o->filter);
    bool filter_set = f.nhosts || f.ntag_lists || f.npaths;
    snapshot_list all = {0};
    group_set gs = {0};
    int e = nargs ? find_listed(r, args, nargs, &f, filter_set, &all) : find_matching(r, &f, &all);
    if (e >= 0) e = group_snapshots(all.v, all.n, all.found, &gb, &gs);
    for (size_t i = 0; e >= 0 && o->latest > 0 && i < gs.n; i++) keep_latest(&gs.v[i], o->latest, gs.grouped);
    if (e >= 0) e = g->json ? print_json(&gs) : print_text(&gs, o->compact);
    groups_free(&gs);
    list_free(&all);
    return e;
}

static int run_snapshots(cr_global *g, int argc, char **argv)
{
    snapshots_opts o = {0};
    const cr_flag flags[] = {
        CR_FILTER_FLAGS(o.filter),
        {"compact", 'c', CR_FLAG_BOOL, &o.compact, "use compact output format", NULL},
        {"last", 0, CR_FLAG_BOOL, &o.last, "only show the last snapshot for each host and path (deprecated: use --latest 1)", NULL},
        {"latest", 0, CR_FLAG_INT, &o.latest, "only show the last n snapshots for each host and path", "n"},
        {"group-by", 'g', CR_FLAG_STRING, &o.group_by, "group snapshots by host, paths and/or tags, separated by comma", "group"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int npos = 0, rc;
    int e = cr_parse_flags(g, &cr_cmd_snapshots, flags, argc, argv, &npos);
    if (e == 0 && o.group_by) e = parse_group_by(o.group_by, &(group_by){0});
    if (e != 0) {
        rc = e > 0 ? CR_EXIT_OK : cr_cli_fail(g, e);
        goto out;
    }
    if (o.last) {
        fprintf(stderr, "Flag --last has been deprecated, use --latest 1\n");
        if (o.latest == 0) o.latest = 1;
    }
    cr_repo *r = NULL;
    if ((rc = cr_cli_open_repo(g, &r)) != 0) goto out;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, r, false, &lock)) == 0) {
        e = list_snapshots(g, r, &o, argv, npos);
        rc = e < 0 ? cr_cli_fail(g, e) : CR_EXIT_OK;
        cr_lock_release(lock);
    }
    cr_repo_close(r);
out:
    cr_strv_free(&o.filter.hosts);
    cr_strv_free(&o.filter.tags);
    cr_strv_free(&o.filter.paths);
    return rc;
}

const cr_command cr_cmd_snapshots = {
    "snapshots",
    "List all snapshots",
    "crestic snapshots [flags] [snapshotID ...]",
    run_snapshots,
};
