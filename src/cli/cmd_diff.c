/* crestic diff: what changed between two snapshots (restic's modifiers and
 * blob statistics). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"
#include "repo/index.h"
#include "util/error.h"
#include "util/idset.h"
#include "util/json.h"

typedef struct {
    uint64_t files, dirs, others, data_blobs, tree_blobs, bytes;
} diff_stat;

/* Blob handles (type, id) folded into one ID set: tree IDs are stored with
 * their first byte flipped so a data blob and a tree blob never collide. */
typedef struct {
    cr_idset data, tree;
} blob_set;

typedef struct {
    cr_global *g;
    cr_repo *repo;
    bool metadata;
    uint64_t changed_files;
    diff_stat added, removed;
    blob_set before, after, common;
} differ;

static int blobs_add_node(blob_set *s, const cr_node *n)
{
    if (!n) return 0;
    if (n->type == CR_NODE_FILE)
        for (size_t i = 0; i < n->ncontent; i++) CR_TRY(cr_idset_add(&s->data, &n->content[i]));
    if (n->type == CR_NODE_DIR && n->has_subtree) CR_TRY(cr_idset_add(&s->tree, &n->subtree));
    return 0;
}

static void stat_add(diff_stat *st, const cr_node *n)
{
    if (n->type == CR_NODE_FILE) st->files++;
    else if (n->type == CR_NODE_DIR) st->dirs++;
    else st->others++;
}

static void print_change(differ *d, const char *path, const char *mod)
{
    if (d->g->json) {
        cr_buf b = CR_BUF_INIT;
        cr_buf_puts(&b, "{\"message_type\":\"change\",\"path\":");
        cr_json_put_cstr(&b, path);
        cr_buf_puts(&b, ",\"modifier\":");
        cr_json_put_cstr(&b, mod);
        cr_buf_puts(&b, "}\n");
        cr_write_stdout(b.data, b.len);
        cr_buf_free(&b);
    } else if (!d->g->quiet) {
        printf("%-5s%s\n", mod, path);
    }
}

/* Go path.Join(prefix, name), plus "/" for directories. */
static char *join(const char *prefix, const cr_node *n)
{
    char *p = NULL;
    size_t len = strlen(prefix);
    bool slash = len && prefix[len - 1] == '/';
    if (asprintf(&p, "%s%s%s%s", prefix, slash ? "" : "/", n->name, n->type == CR_NODE_DIR ? "/" : "") < 0) return NULL;
    return p;
}

static int load_tree(differ *d, const cr_id *id, cr_tree **t)
{
    return cr_load_tree(d->repo, id, t);
}

/* Everything below a subtree that only one side has. */
static int print_dir(differ *d, const char *mode, diff_stat *st, blob_set *blobs, const char *prefix, const cr_id *id)
{
    cr_tree *t = NULL;
    CR_TRY(load_tree(d, id, &t));
    int e = 0;
    for (size_t i = 0; e == 0 && i < t->n; i++) {
        const cr_node *n = &t->nodes[i];
        char *name = join(prefix, n);
        if (!name) { e = cr_error(-ENOMEM, "out of memory"); break; }
        print_change(d, name, mode);
        stat_add(st, n);
        e = blobs_add_node(blobs, n);
        if (e == 0 && n->type == CR_NODE_DIR && n->has_subtree) {
            int de = print_dir(d, mode, st, blobs, name, &n->subtree);
            if (de == -ENOMEM) e = de;
            else if (de < 0) fprintf(stderr, "error: %s\n", cr_error_message());
        }
        free(name);
    }
    cr_tree_free(t);
    return e;
}

static int collect_dir(differ *d, blob_set *blobs, const cr_id *id)
{
    cr_tree *t = NULL;
    CR_TRY(load_tree(d, id, &t));
    int e = 0;
    for (size_t i = 0; e == 0 && i < t->n; i++) {
        e = blobs_add_node(blobs, &t->nodes[i]);
        if (e == 0 && t->nodes[i].type == CR_NODE_DIR && t->nodes[i].has_subtree) e = collect_dir(d, blobs, &t->nodes[i].subtree);
    }
    cr_tree_free(t);
    return e;
}

static bool same_str(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

static bool same_time(const cr_time *a, const cr_time *b)
{
    return a->sec == b->sec && a->nsec == b->nsec;
}

static bool same_xattrs(const cr_node *a, const cr_node *b)
{
    if (a->nxattrs != b->nxattrs) return false;
    for (size_t i = 0; i < a->nxattrs; i++) {
        bool found = false;
        for (size_t k = 0; k < b->nxattrs && !found; k++)
            found = !strcmp(a->xattrs[i].name, b->xattrs[k].name) && a->xattrs[i].value_len == b->xattrs[k].value_len &&
                    (!a->xattrs[i].value_len || !memcmp(a->xattrs[i].value, b->xattrs[k].value, a->xattrs[i].value_len));
        if (!found) return false;
    }
    return true;
}

static bool same_content(const cr_node *a, const cr_node *b)
{
    return a->ncontent == b->ncontent && a->content_null == b->content_null &&
           (!a->ncontent || !memcmp(a->content, b->content, a->ncontent * sizeof *a->content));
}

/* restic's Node.Equals: every recorded field. */
static bool same_metadata(const cr_node *a, const cr_node *b)
{
    return a->type == b->type && a->mode == b->mode && same_time(&a->mtime, &b->mtime) && same_time(&a->atime, &b->atime) &&
           same_time(&a->ctime, &b->ctime) && a->uid == b->uid && a->gid == b->gid && same_str(a->user, b->user) &&
           same_str(a->group, b->group) && a->inode == b->inode && a->device_id == b->device_id && a->size == b->size &&
           a->links == b->links && a->linktarget_len == b->linktarget_len &&
           (!a->linktarget_len || !memcmp(a->linktarget, b->linktarget, a->linktarget_len)) && a->device == b->device &&
           same_content(a, b) && a->has_subtree == b->has_subtree && (!a->has_subtree || cr_id_eq(&a->subtree, &b->subtree)) &&
           same_str(a->error, b->error) && same_xattrs(a, b);
}

static int cmp_nodes(const void *x, const void *y)
{
    const cr_node *a = *(const cr_node *const *)x, *b = *(const cr_node *const *)y;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    return c ? c : (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

static const cr_node **sorted_nodes(const cr_tree *t)
{
    const cr_node **v = calloc(t->n + 1, sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < t->n; i++) v[i] = &t->nodes[i];
    qsort(v, t->n, sizeof *v, cmp_nodes);
    return v;
}

static int diff_tree(differ *d, const char *prefix, const cr_id *id1, const cr_id *id2);

static int diff_pair(differ *d, const char *prefix, const cr_node *n1, const cr_node *n2)
{
    CR_TRY(blobs_add_node(&d->before, n1));
    CR_TRY(blobs_add_node(&d->after, n2));
    const cr_node *n = n2 ? n2 : n1;
    char *name = join(prefix, n);
    if (!name) return cr_error(-ENOMEM, "out of memory");
    int e = 0;
    if (n1 && n2) {
        char mod[4] = "";
        if (n1->type != n2->type) strcat(mod, "T");
        if (n1->type == CR_NODE_FILE && n2->type == CR_NODE_FILE && !same_content(n1, n2)) {
            strcat(mod, "M");
            d->changed_files++;
        } else if (d->metadata && !same_metadata(n1, n2)) {
            strcat(mod, "U");
        }
        if (*mod) print_change(d, name, mod);
        if (n1->type == CR_NODE_DIR && n2->type == CR_NODE_DIR && n1->has_subtree && n2->has_subtree) {
            e = cr_id_eq(&n1->subtree, &n2->subtree) ? collect_dir(d, &d->common, &n1->subtree)
                                                     : diff_tree(d, name, &n1->subtree, &n2->subtree);
        }
    } else {
        const char *mod = n1 ? "-" : "+";
        diff_stat *st = n1 ? &d->removed : &d->added;
        print_change(d, name, mod);
        stat_add(st, n);
        if (n->type == CR_NODE_DIR && n->has_subtree) e = print_dir(d, mod, st, n1 ? &d->before : &d->after, name, &n->subtree);
    }
    if (e < 0 && e != -ENOMEM) {
        fprintf(stderr, "error: %s\n", cr_error_message());
        e = 0;
    }
    free(name);
    return e;
}

static int diff_tree(differ *d, const char *prefix, const cr_id *id1, const cr_id *id2)
{
    cr_tree *t1 = NULL, *t2 = NULL;
    const cr_node **a = NULL, **b = NULL;
    int e = load_tree(d, id1, &t1);
    if (e == 0) e = load_tree(d, id2, &t2);
    if (e == 0 && (!(a = sorted_nodes(t1)) || !(b = sorted_nodes(t2)))) e = cr_error(-ENOMEM, "out of memory");
    size_t i = 0, k = 0;
    while (e == 0 && (i < t1->n || k < t2->n)) {
        int c = i == t1->n ? 1 : k == t2->n ? -1 : cmp_nodes(&a[i], &b[k]);
        e = diff_pair(d, prefix, c <= 0 ? a[i] : NULL, c >= 0 ? b[k] : NULL);
        if (c <= 0) i++;
        if (c >= 0) k++;
    }
    free(a);
    free(b);
    cr_tree_free(t1);
    cr_tree_free(t2);
    return e;
}

/* Blobs only on one side (and not below identical subtrees) count as added/removed. */
static void count_blobs(differ *d, const cr_idset *side, const cr_idset *other, const cr_idset *common, cr_blob_type t, diff_stat *st)
{
    for (size_t i = 0; i < side->cap; i++) {
        if (!side->used[i] || cr_idset_has(other, &side->slots[i]) || cr_idset_has(common, &side->slots[i])) continue;
        if (t == CR_BLOB_DATA) st->data_blobs++;
        else st->tree_blobs++;
        size_t count;
        const cr_index_entry *e = cr_index_lookup(d->repo->index, t, &side->slots[i], &count);
        if (e) st->bytes += cr_index_entry_plain_len(e);
        else {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&side->slots[i], hex);
            fprintf(stderr, "unable to find blob size for <%s/%.8s>\n", cr_blob_type_name(t), hex);
        }
    }
}

static void print_stat_json(cr_buf *b, const diff_stat *s)
{
    cr_buf_printf(b, "{\"files\":%llu,\"dirs\":%llu,\"others\":%llu,\"data_blobs\":%llu,\"tree_blobs\":%llu,\"bytes\":%llu}",
                  (unsigned long long)s->files, (unsigned long long)s->dirs, (unsigned long long)s->others,
                  (unsigned long long)s->data_blobs, (unsigned long long)s->tree_blobs, (unsigned long long)s->bytes);
}

static void print_summary(differ *d, const char *src, const char *dst)
{
    if (d->g->json) {
        cr_buf b = CR_BUF_INIT;
        cr_buf_puts(&b, "{\"message_type\":\"statistics\",\"source_snapshot\":");
        cr_json_put_cstr(&b, src);
        cr_buf_puts(&b, ",\"target_snapshot\":");
        cr_json_put_cstr(&b, dst);
        cr_buf_printf(&b, ",\"changed_files\":%llu,\"added\":", (unsigned long long)d->changed_files);
        print_stat_json(&b, &d->added);
        cr_buf_puts(&b, ",\"removed\":");
        print_stat_json(&b, &d->removed);
        cr_buf_puts(&b, "}\n");
        cr_write_stdout(b.data, b.len);
        cr_buf_free(&b);
        return;
    }
    if (d->g->quiet) return;
    char add[64], rem[64];
    cr_go_format_bytes(d->added.bytes, add);
    cr_go_format_bytes(d->removed.bytes, rem);
    printf("\nFiles:       %5llu new, %5llu removed, %5llu changed\n", (unsigned long long)d->added.files,
           (unsigned long long)d->removed.files, (unsigned long long)d->changed_files);
    printf("Dirs:        %5llu new, %5llu removed\n", (unsigned long long)d->added.dirs, (unsigned long long)d->removed.dirs);
    printf("Others:      %5llu new, %5llu removed\n", (unsigned long long)d->added.others, (unsigned long long)d->removed.others);
    printf("Data Blobs:  %5llu new, %5llu removed\n", (unsigned long long)d->added.data_blobs, (unsigned long long)d->removed.data_blobs);
    printf("Tree Blobs:  %5llu new, %5llu removed\n", (unsigned long long)d->added.tree_blobs, (unsigned long long)d->removed.tree_blobs);
    printf("  Added:   %-5s\n  Removed: %-5s\n", add, rem);
}

static void differ_free(differ *d)
{
    blob_set *sets[] = {&d->before, &d->after, &d->common};
    for (size_t i = 0; i < 3; i++) cr_idset_free(&sets[i]->data), cr_idset_free(&sets[i]->tree);
}

static int run_diff(cr_global *g, int argc, char **argv)
{
    differ d = {.g = g};
    const cr_flag flags[] = {
        {"metadata", 0, CR_FLAG_BOOL, &d.metadata, "print changes in metadata", NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"diff", "Show differences between two snapshots", "crestic diff [flags] snapshotID snapshotID", NULL};
    int npos = 0, r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    if (npos != 2) return cr_cli_fail(g, cr_error(CR_E_USAGE, "specify two snapshot IDs"));
    int rc = cr_cli_open_repo(g, &d.repo);
    if (rc) return rc;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, d.repo, false, &lock))) return cr_repo_close(d.repo), rc;
    cr_snapshot s1 = {0}, s2 = {0};
    cr_id t1, t2;
    r = cr_repo_load_index(d.repo);
    if (r == 0) r = cr_cli_find_snapshot(d.repo, argv[0], NULL, &s1, &t1);
    if (r == 0) r = cr_cli_find_snapshot(d.repo, argv[1], NULL, &s2, &t2);
    if (r == 0) {
        char a[CR_ID_HEX + 1], b[CR_ID_HEX + 1];
        cr_id_to_hex(&s1.id, a);
        cr_id_to_hex(&s2.id, b);
        if (!g->json && !g->quiet) printf("comparing snapshot %.8s to %.8s:\n\n", a, b);
        r = cr_idset_add(&d.before.tree, &t1);
        if (r >= 0) r = cr_idset_add(&d.after.tree, &t2);
        if (r >= 0) r = diff_tree(&d, "/", &t1, &t2);
    }
    if (r >= 0) {
        count_blobs(&d, &d.before.data, &d.after.data, &d.common.data, CR_BLOB_DATA, &d.removed);
        count_blobs(&d, &d.before.tree, &d.after.tree, &d.common.tree, CR_BLOB_TREE, &d.removed);
        count_blobs(&d, &d.after.data, &d.before.data, &d.common.data, CR_BLOB_DATA, &d.added);
        count_blobs(&d, &d.after.tree, &d.before.tree, &d.common.tree, CR_BLOB_TREE, &d.added);
        print_summary(&d, argv[0], argv[1]);
    }
    cr_snapshot_clear(&s1);
    cr_snapshot_clear(&s2);
    differ_free(&d);
    cr_lock_release(lock);
    cr_repo_close(d.repo);
    return r < 0 ? cr_cli_fail(g, r) : CR_EXIT_OK;
}

const cr_command cr_cmd_diff = {"diff", "Show differences between two snapshots", "crestic diff [flags] snapshotID snapshotID", run_diff};
