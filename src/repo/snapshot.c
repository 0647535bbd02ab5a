/* Snapshots (spec §11): parse, encode exactly as restic, load, filter, find. */
#include "repo/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

static int dup_str(const cr_json *v, const char *name, char **out)
{
    if (cr_json_is_nullish(v)) v = NULL;
    else if (v->type != CR_JSON_STRING) return cr_error(CR_E_FORMAT, "snapshot: \"%s\" is not a string", name);
    *out = v ? strndup(v->str, v->len) : strdup("");
    return *out ? 0 : cr_error(-ENOMEM, "out of memory");
}

static int dup_list(const cr_json *v, const char *name, char ***out, size_t *n, bool *was_null)
{
    *out = NULL;
    *n = 0;
    if (was_null) *was_null = cr_json_is_nullish(v);
    if (cr_json_is_nullish(v)) return 0;
    if (v->type != CR_JSON_ARRAY) return cr_error(CR_E_FORMAT, "snapshot: \"%s\" is not a list", name);
    if (!(*out = calloc(v->len + 1, sizeof **out))) return cr_error(-ENOMEM, "out of memory");
    for (uint32_t i = 0; i < v->len; i++) {
        const cr_json *s = &v->kids[i];
        if (s->type != CR_JSON_STRING) return cr_error(CR_E_FORMAT, "snapshot: \"%s\" holds a non-string", name);
        if (!((*out)[i] = strndup(s->str, s->len))) return cr_error(-ENOMEM, "out of memory");
        (*n)++;
    }
    return 0;
}

static int opt_id(const cr_json *obj, const char *name, cr_id *id, bool *has)
{
    const cr_json *v = cr_json_get(obj, name);
    *has = false;
    if (cr_json_is_nullish(v)) return 0;
    if (v->type != CR_JSON_STRING || cr_id_from_hex(id, v->str, v->len) < 0)
        return cr_error(CR_E_FORMAT, "snapshot: invalid \"%s\"", name);
    *has = true;
    return 0;
}

static int get_time(const cr_json *obj, const char *name, cr_time *t)
{
    const cr_json *v = cr_json_get(obj, name);
    if (!cr_json_is(v, CR_JSON_STRING) || cr_time_parse(v->str, v->len, t) < 0)
        return cr_error(CR_E_FORMAT, "snapshot: invalid \"%s\"", name);
    return 0;
}

static int get_u64(const cr_json *obj, const char *name, uint64_t *out)
{
    const cr_json *v = cr_json_get(obj, name);
    *out = 0;
    if (cr_json_is_nullish(v)) return 0;
    return cr_json_u64(v, out) < 0 ? cr_error(CR_E_FORMAT, "snapshot: invalid \"%s\"", name) : 0;
}

static int parse_summary(const cr_json *v, cr_snapshot *s)
{
    if (cr_json_is_nullish(v)) return 0;
    if (v->type != CR_JSON_OBJECT) return cr_error(CR_E_FORMAT, "snapshot: \"summary\" is not an object");
    cr_snapshot_summary *m = &s->summary;
    s->has_summary = true;
    CR_TRY(get_time(v, "backup_start", &m->backup_start));
    CR_TRY(get_time(v, "backup_end", &m->backup_end));
    const struct { const char *name; uint64_t *p; } f[] = {
        {"files_new", &m->files_new}, {"files_changed", &m->files_changed}, {"files_unmodified", &m->files_unmodified},
        {"dirs_new", &m->dirs_new}, {"dirs_changed", &m->dirs_changed}, {"dirs_unmodified", &m->dirs_unmodified},
        {"data_blobs", &m->data_blobs}, {"tree_blobs", &m->tree_blobs}, {"data_added", &m->data_added},
        {"data_added_packed", &m->data_added_packed}, {"total_files_processed", &m->total_files_processed},
        {"total_bytes_processed", &m->total_bytes_processed},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) CR_TRY(get_u64(v, f[i].name, f[i].p));
    return 0;
}

static int fill(const cr_json *root, cr_snapshot *s)
{
    if (!cr_json_is(root, CR_JSON_OBJECT)) return cr_error(CR_E_FORMAT, "snapshot: not a JSON object");
    CR_TRY(get_time(root, "time", &s->time));
    CR_TRY(opt_id(root, "parent", &s->parent, &s->has_parent));
    CR_TRY(opt_id(root, "tree", &s->tree, &s->has_tree));
    CR_TRY(dup_list(cr_json_get(root, "paths"), "paths", &s->paths, &s->npaths, &s->paths_null));
    CR_TRY(dup_str(cr_json_get(root, "hostname"), "hostname", &s->hostname));
    CR_TRY(dup_str(cr_json_get(root, "username"), "username", &s->username));
    uint64_t uid, gid;
    CR_TRY(get_u64(root, "uid", &uid));
    CR_TRY(get_u64(root, "gid", &gid));
    if (uid > UINT32_MAX || gid > UINT32_MAX) return cr_error(CR_E_FORMAT, "snapshot: uid/gid out of range");
    s->uid = (uint32_t)uid;
    s->gid = (uint32_t)gid;
    CR_TRY(dup_list(cr_json_get(root, "excludes"), "excludes", &s->excludes, &s->nexcludes, NULL));
    CR_TRY(dup_list(cr_json_get(root, "tags"), "tags", &s->tags, &s->ntags, NULL));
    CR_TRY(opt_id(root, "original", &s->original, &s->has_original));
    CR_TRY(dup_str(cr_json_get(root, "program_version"), "program_version", &s->program_version));
    return parse_summary(cr_json_get(root, "summary"), s);
}

int cr_snapshot_parse(const char *json, size_t n, cr_snapshot *s)
{
    cr_id keep = s->id;
    memset(s, 0, sizeof *s);
    s->id = keep;
    cr_json_doc *doc = NULL;
    CR_TRY_CTX(cr_json_parse(json, n, &doc), "snapshot");
    int r = fill(cr_json_root(doc), s);
    cr_json_free(doc);
    if (r < 0) cr_snapshot_clear(s);
    return r;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++) free(l[i]);
    free(l);
}

void cr_snapshot_clear(cr_snapshot *s)
{
    free_list(s->paths, s->npaths);
    free_list(s->excludes, s->nexcludes);
    free_list(s->tags, s->ntags);
    free(s->hostname);
    free(s->username);
    free(s->program_version);
    cr_id keep = s->id;
    memset(s, 0, sizeof *s);
    s->id = keep;
}

/* ---- encoding --------------------------------------------------------- */

static int put_time(cr_buf *b, const char *key, const cr_time *t)
{
    CR_TRY(cr_buf_printf(b, "\"%s\":\"", key));
    CR_TRY(cr_time_format(b, t));
    return cr_buf_putc(b, '"');
}

static int put_id(cr_buf *b, const char *key, const cr_id *id)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    return cr_buf_printf(b, ",\"%s\":\"%s\"", key, hex);
}

static int put_list(cr_buf *b, const char *key, char **l, size_t n, bool null_when_empty)
{
    CR_TRY(cr_buf_printf(b, ",\"%s\":", key));
    if (!l && null_when_empty) return cr_buf_puts(b, "null");
    CR_TRY(cr_buf_putc(b, '['));
    for (size_t i = 0; i < n; i++) {
        if (i) CR_TRY(cr_buf_putc(b, ','));
        CR_TRY(cr_json_put_cstr(b, l[i]));
    }
    return cr_buf_putc(b, ']');
}

static int put_summary(cr_buf *b, const cr_snapshot_summary *m)
{
    CR_TRY(cr_buf_puts(b, ",\"summary\":{"));
    CR_TRY(put_time(b, "backup_start", &m->backup_start));
    CR_TRY(cr_buf_putc(b, ','));
    CR_TRY(put_time(b, "backup_end", &m->backup_end));
    return cr_buf_printf(b,
        ",\"files_new\":%llu,\"files_changed\":%llu,\"files_unmodified\":%llu,\"dirs_new\":%llu,"
        "\"dirs_changed\":%llu,\"dirs_unmodified\":%llu,\"data_blobs\":%llu,\"tree_blobs\":%llu,"
        "\"data_added\":%llu,\"data_added_packed\":%llu,\"total_files_processed\":%llu,\"total_bytes_processed\":%llu}",
        (unsigned long long)m->files_new, (unsigned long long)m->files_changed, (unsigned long long)m->files_unmodified,
        (unsigned long long)m->dirs_new, (unsigned long long)m->dirs_changed, (unsigned long long)m->dirs_unmodified,
        (unsigned long long)m->data_blobs, (unsigned long long)m->tree_blobs, (unsigned long long)m->data_added,
        (unsigned long long)m->data_added_packed, (unsigned long long)m->total_files_processed,
        (unsigned long long)m->total_bytes_processed);
}

int cr_snapshot_encode(const cr_snapshot *s, cr_buf *b)
{
    CR_TRY(cr_buf_putc(b, '{'));
    CR_TRY(put_time(b, "time", &s->time));
    if (s->has_parent) CR_TRY(put_id(b, "parent", &s->parent));
    if (s->has_tree) CR_TRY(put_id(b, "tree", &s->tree));
    else CR_TRY(cr_buf_puts(b, ",\"tree\":null"));
    CR_TRY(put_list(b, "paths", s->paths, s->npaths, true));
    if (s->hostname && *s->hostname) {
        CR_TRY(cr_buf_puts(b, ",\"hostname\":"));
        CR_TRY(cr_json_put_cstr(b, s->hostname));
    }
    if (s->username && *s->username) {
        CR_TRY(cr_buf_puts(b, ",\"username\":"));
        CR_TRY(cr_json_put_cstr(b, s->username));
    }
    if (s->uid) CR_TRY(cr_buf_printf(b, ",\"uid\":%u", s->uid));
    if (s->gid) CR_TRY(cr_buf_printf(b, ",\"gid\":%u", s->gid));
    if (s->nexcludes) CR_TRY(put_list(b, "excludes", s->excludes, s->nexcludes, false));
    if (s->ntags) CR_TRY(put_list(b, "tags", s->tags, s->ntags, false));
    if (s->has_original) CR_TRY(put_id(b, "original", &s->original));
    if (s->program_version && *s->program_version) {
        CR_TRY(cr_buf_puts(b, ",\"program_version\":"));
        CR_TRY(cr_json_put_cstr(b, s->program_version));
    }
    if (s->has_summary) CR_TRY(put_summary(b, &s->summary));
    return cr_buf_putc(b, '}');
}

/* ---- loading ---------------------------------------------------------- */

int cr_repo_load_snapshot(cr_repo *r, const cr_id *id, cr_snapshot *s)
{
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    memset(s, 0, sizeof *s);
    s->id = *id;
    CR_TRY(cr_repo_load_unpacked(r, CR_FILE_SNAPSHOT, id, &json));
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    CR_TRY_CTX(cr_snapshot_parse((const char *)json.data, json.len, s), "snapshot %.8s", hex);
    return 0;
}

static int snapshot_cmp(const void *a, const void *b)
{
    const cr_snapshot *x = a, *y = b;
    int c = cr_time_cmp(&x->time, &y->time);
    return c ? c : cr_id_cmp(&x->id, &y->id);
}

int cr_repo_load_snapshots(cr_repo *r, cr_snapshot **out, size_t *n)
{
    cr_id *ids = NULL;
    size_t nids = 0, k = 0;
    CR_TRY(cr_repo_list_ids(r, CR_FILE_SNAPSHOT, &ids, NULL, &nids));
    cr_snapshot *list = calloc(nids + 1, sizeof *list);
    if (!list) {
        free(ids);
        return cr_error(-ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nids; i++) {
        int e = cr_repo_load_snapshot(r, &ids[i], &list[k]);
        if (e == -ENOMEM) {
            free(ids);
            cr_snapshots_free(list, k);
            return e;
        }
        /* restic skips unreadable snapshots with a warning and goes on. */
        if (e < 0) fprintf(stderr, "could not load snapshot: %s\n", cr_error_message());
        else k++;
    }
    free(ids);
    qsort(list, k, sizeof *list, snapshot_cmp);
    *out = list;
    *n = k;
    return 0;
}

void cr_snapshots_free(cr_snapshot *s, size_t n)
{
    if (!s) return;
    for (size_t i = 0; i < n; i++) cr_snapshot_clear(&s[i]);
    free(s);
}

/* ---- filtering -------------------------------------------------------- */

bool cr_snapshot_has_tag(const cr_snapshot *s, const char *tag)
{
    for (size_t i = 0; i < s->ntags; i++)
        if (!strcmp(s->tags[i], tag)) return true;
    return false;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* One --tag value "a,b": all listed tags present, as restic 0.14's HasTags:
 * tags are split at commas and trimmed of white space; an empty tag matches
 * a snapshot without tags (and then decides), otherwise it is looked up like
 * any other tag. */
static bool has_tag_list(const cr_snapshot *s, const char *list)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && is_space(*p)) p++;
        while (end > p && is_space(end[-1])) end--;
        size_t len = (size_t)(end - p);
        if (len == 0 && s->ntags == 0) return true;
        bool found = false;
        for (size_t i = 0; i < s->ntags && !found; i++)
            found = strlen(s->tags[i]) == len && !memcmp(s->tags[i], p, len);
        if (!found) return false;
        if (!comma) return true;
        p = comma + 1;
    }
}

static bool has_path(const cr_snapshot *s, const char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--; /* "--path /a/" names /a */
    for (size_t i = 0; i < s->npaths; i++)
        if (strlen(s->paths[i]) == len && !memcmp(s->paths[i], path, len)) return true;
    return false;
}

bool cr_snapshot_matches(const cr_snapshot *s, const cr_snapshot_filter *f)
{
    if (!f) return true;
    if (f->nhosts) {
        bool ok = false;
        for (size_t i = 0; i < f->nhosts && !ok; i++) ok = !strcmp(s->hostname ? s->hostname : "", f->hosts[i]);
        if (!ok) return false;
    }
    if (f->ntag_lists) {
        bool ok = false;
        for (size_t i = 0; i < f->ntag_lists && !ok; i++) ok = has_tag_list(s, f->tag_lists[i]);
        if (!ok) return false;
    }
    for (size_t i = 0; i < f->npaths; i++)
        if (!has_path(s, f->paths[i])) return false;
    return true;
}

static int find_latest(cr_repo *r, const cr_snapshot_filter *f, cr_snapshot *out)
{
    cr_snapshot *all = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_load_snapshots(r, &all, &n));
    ssize_t best = -1;
    for (size_t i = 0; i < n; i++) /* sorted oldest first: the last match wins */
        if (cr_snapshot_matches(&all[i], f)) best = (ssize_t)i;
    if (best < 0) {
        cr_snapshots_free(all, n);
        return cr_error(CR_E_NOTFOUND, "no snapshot found");
    }
    *out = all[best];
    memset(&all[best], 0, sizeof all[best]);
    cr_snapshots_free(all, n);
    return 0;
}

int cr_repo_find_snapshot(cr_repo *r, const char *ref, const cr_snapshot_filter *f, cr_snapshot *out)
{
    if (!strcmp(ref, "latest")) return find_latest(r, f, out);
    cr_id id;
    int e = cr_repo_find_id(r, CR_FILE_SNAPSHOT, ref, &id);
    if (e == CR_E_NOTFOUND) return cr_error(CR_E_NOTFOUND, "no matching ID found for prefix \"%s\"", ref);
    CR_TRY(e);
    return cr_repo_load_snapshot(r, &id, out);
}
