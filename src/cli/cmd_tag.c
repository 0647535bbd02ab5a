/* crestic tag: add, remove or set snapshot tags (rewrites snapshot files). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"

typedef struct {
    cr_strv set, add, remove;
    cr_filter_flags filter;
} tag_opts;

/* "a,b" "c" -> a b c; empty entries dropped (restic: --set "" clears). */
static int flatten(const cr_strv *lists, cr_strv *out, char **store)
{
    size_t total = 0;
    for (size_t i = 0; i < lists->n; i++) total += strlen(lists->v[i]) + 1;
    char *buf = malloc(total + 1), *p = buf;
    if (!buf) return cr_error(-ENOMEM, "out of memory");
    for (size_t i = 0; i < lists->n; i++) {
        strcpy(p, lists->v[i]);
        for (char *save = NULL, *t = strtok_r(p, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (*t) CR_TRY(cr_strv_push(out, t));
        p += strlen(lists->v[i]) + 1;
    }
    *store = buf;
    return 0;
}

static bool add_tag(cr_snapshot *s, const char *tag)
{
    if (cr_snapshot_has_tag(s, tag)) return false;
    char **t = realloc(s->tags, (s->ntags + 1) * sizeof *t);
    if (!t) return false;
    s->tags = t;
    s->tags[s->ntags++] = strdup(tag);
    return true;
}

/* Same order as restic: the last tag takes the removed one's place. */
static bool remove_tag(cr_snapshot *s, const char *tag)
{
    for (size_t i = 0; i < s->ntags; i++)
        if (!strcmp(s->tags[i], tag)) {
            free(s->tags[i]);
            s->tags[i] = s->tags[--s->ntags];
            return true;
        }
    return false;
}

static bool change_tags(cr_snapshot *s, const cr_strv *set, bool have_set, const cr_strv *add, const cr_strv *rm)
{
    if (have_set) {
        for (size_t i = 0; i < s->ntags; i++) free(s->tags[i]);
        s->ntags = 0;
        for (size_t i = 0; i < set->n; i++) add_tag(s, set->v[i]);
        return true;
    }
    bool changed = false;
    for (size_t i = 0; i < add->n; i++) changed |= add_tag(s, add->v[i]);
    for (size_t i = 0; i < rm->n; i++) changed |= remove_tag(s, rm->v[i]);
    return changed;
}

/* Write the changed snapshot, then remove the old file (spec §11). */
static int rewrite_snapshot(cr_repo *r, cr_snapshot *s)
{
    if (!s->has_original) {
        s->original = s->id;
        s->has_original = true;
    }
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_snapshot_encode(s, &json));
    cr_id new_id;
    CR_TRY(cr_repo_save_unpacked(r, CR_FILE_SNAPSHOT, json.data, json.len, &new_id));
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&s->id, hex);
    return cr_be_remove(r->be, CR_FILE_SNAPSHOT, hex);
}

static int select_snapshots(cr_repo *r, int npos, char **ids, const cr_snapshot_filter *f, cr_snapshot **out, size_t *n)
{
    cr_snapshot *all = NULL;
    size_t nall = 0, k = 0;
    CR_TRY(cr_repo_load_snapshots(r, &all, &nall));
    if (npos == 0) {
        for (size_t i = 0; i < nall; i++) {
            if (cr_snapshot_matches(&all[i], f)) all[k++] = all[i];
            else cr_snapshot_clear(&all[i]);
        }
        *out = all;
        *n = k;
        return 0;
    }
    cr_snapshots_free(all, nall);
    cr_snapshot *sel = calloc((size_t)npos, sizeof *sel);
    if (!sel) return cr_error(-ENOMEM, "out of memory");
    for (int i = 0; i < npos; i++) {
        if (cr_repo_find_snapshot(r, ids[i], f, &sel[k]) < 0) fprintf(stderr, "Ignoring \"%s\": %s\n", ids[i], cr_error_message());
        else k++;
    }
    *out = sel;
    *n = k;
    return 0;
}

static void tag_opts_free(tag_opts *o)
{
    cr_strv_free(&o->set), cr_strv_free(&o->add), cr_strv_free(&o->remove);
    cr_strv_free(&o->filter.hosts), cr_strv_free(&o->filter.tags), cr_strv_free(&o->filter.paths);
}

static void tag_opts_freep(tag_opts *o) { tag_opts_free(o); }

static int run_tag(cr_global *g, int argc, char **argv)
{
    __attribute__((cleanup(tag_opts_freep))) tag_opts o = {0};
    const cr_flag flags[] = {
        {"set", 0, CR_FLAG_STRINGS, &o.set, "tags which will replace the existing tags in the format `tag[,tag,...]` (can be given multiple times)", "tags"},
        {"add", 0, CR_FLAG_STRINGS, &o.add, "tags which will be added to the existing tags in the format `tag[,tag,...]` (can be given multiple times)", "tags"},
        {"remove", 0, CR_FLAG_STRINGS, &o.remove, "tags which will be removed from the existing tags in the format `tag[,tag,...]` (can be given multiple times)", "tags"},
        CR_FILTER_FLAGS(o.filter),
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"tag", "Modify tags on snapshots", "crestic tag [flags] [snapshotID ...]", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    if (!o.set.n && !o.add.n && !o.remove.n) return cr_cli_fail(g, cr_error(CR_E_USAGE, "nothing to do!"));
    if (o.set.n && (o.add.n || o.remove.n))
        return cr_cli_fail(g, cr_error(CR_E_USAGE, "--set and --add/--remove cannot be given at the same time"));
    cr_strv set = {0}, add = {0}, rm = {0};
    _cleanup_free_ char *s1 = NULL, *s2 = NULL, *s3 = NULL;
    if ((r = flatten(&o.set, &set, &s1)) < 0 || (r = flatten(&o.add, &add, &s2)) < 0 || (r = flatten(&o.remove, &rm, &s3)) < 0)
        return cr_cli_fail(g, r);

    cr_repo *repo = NULL;
    int rc = cr_cli_open_repo(g, &repo);
    if (rc) return rc;
    if (!g->no_lock && !g->quiet && !g->json) printf("create exclusive lock for repository\n");
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, repo, true, &lock))) return cr_repo_close(repo), rc;
    cr_snapshot_filter f = cr_filter_from_flags(&o.filter);
    cr_snapshot *snaps = NULL;
    size_t n = 0, changed = 0;
    r = select_snapshots(repo, npos, argv, &f, &snaps, &n);
    for (size_t i = 0; r == 0 && i < n; i++)
        if (change_tags(&snaps[i], &set, set.n > 0, &add, &rm)) { /* restic 0.14: --set "" alone changes nothing */
            r = rewrite_snapshot(repo, &snaps[i]);
            if (r == 0) changed++;
        }
    cr_snapshots_free(snaps, n);
    cr_lock_release(lock);
    cr_repo_close(repo);
    cr_strv_free(&set), cr_strv_free(&add), cr_strv_free(&rm);
    if (r < 0) return cr_cli_fail(g, r);
    if (!g->quiet) {
        if (changed) printf("modified tags on %zu snapshots\n", changed);
        else printf("no snapshots were modified\n");
    }
    return CR_EXIT_OK;
}

const cr_command cr_cmd_tag = {"tag", "Modify tags on snapshots", "crestic tag [flags] [snapshotID ...]", run_tag};
