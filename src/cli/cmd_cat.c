/* crestic cat: print a repository object, as `restic cat`.
 *
 * JSON objects are re-encoded and indented as restic does (config,
 * masterkey, key, snapshot, lock), the index is printed as stored, and
 * pack, blob and tree print their raw bytes.  Beyond restic, every ID may
 * be a unique prefix and "latest" names the newest snapshot. */
#include "cli/cli.h"
#include "cli/output.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "repo/index.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

extern const cr_command cr_cmd_cat;

static const char *const cat_types[] = {"config", "index", "snapshot", "key", "masterkey", "lock", "pack", "blob", "tree", NULL};

static int check_args(int npos, char **pos)
{
    if (npos < 1) return cr_error(CR_E_USAGE, "type not specified");
    bool known = false;
    for (const char *const *t = cat_types; *t && !known; t++) known = !strcmp(*t, pos[0]);
    if (!known)
        return cr_error(CR_E_USAGE, "invalid type \"%s\", must be one of [config|index|snapshot|key|masterkey|lock|pack|blob|tree]", pos[0]);
    bool needs_id = strcmp(pos[0], "masterkey") && strcmp(pos[0], "config");
    if (needs_id && npos != 2) return cr_error(CR_E_USAGE, "ID not specified");
    return 0;
}

/* Print compact JSON the way restic's MarshalIndent + Print do. */
static int print_indented(const cr_buf *json)
{
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    CR_TRY(cr_json_indent(&out, (const char *)json->data, json->len, "  "));
    CR_TRY(cr_buf_putc(&out, '\n'));
    return cr_write_stdout(out.data, out.len);
}

/* Like restic's terminal output: exactly one line break at the end. */
static bool is_hex_prefix(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");
    return n == strlen(s) && n > 0 && n <= CR_ID_HEX;
}

static int parse_id_arg(cr_repo *r, cr_filetype t, const char *arg, cr_id *id)
{
    if (!is_hex_prefix(arg)) return cr_error(CR_E_USAGE, "unable to parse ID: invalid ID \"%s\"", arg);
    _cleanup_free_ char *lower = strdup(arg);
    if (!lower) return cr_error(-ENOMEM, "out of memory");
    for (char *p = lower; *p; p++) *p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    return cr_repo_find_id(r, t, lower, id);
}

static int cat_config(cr_repo *r)
{
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_config_encode(&r->cfg, &json));
    return print_indented(&json);
}

static int cat_masterkey(cr_repo *r)
{
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_masterkey_encode(&r->master, &json));
    return print_indented(&json);
}

static int cat_index(cr_repo *r, const char *arg)
{
    cr_id id;
    CR_TRY(parse_id_arg(r, CR_FILE_INDEX, arg, &id));
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_repo_load_unpacked(r, CR_FILE_INDEX, &id, &json));
    /* restic prints the document (which ends in a newline) with Println: two. */
    CR_TRY(cr_write_stdout(json.data, json.len));
    return cr_write_stdout("\n", 1);
}

static int cat_snapshot(cr_repo *r, const char *arg)
{
    cr_snapshot sn;
    int e = cr_cli_find_snapshot(r, arg, NULL, &sn, NULL);
    if (e < 0) return cr_error_ctx(e, "could not find snapshot");
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    e = cr_snapshot_encode(&sn, &json);
    cr_snapshot_clear(&sn);
    CR_TRY(e);
    return print_indented(&json);
}

/* restic re-encodes the parsed key file (Go struct order, time normalized). */
static int encode_keyfile(const cr_keyfile *kf, cr_buf *b)
{
    cr_time created;
    CR_TRY(cr_buf_puts(b, "{\"created\":"));
    if (kf->created && cr_time_parse(kf->created, strlen(kf->created), &created) == 0) {
        CR_TRY(cr_buf_putc(b, '"'));
        CR_TRY(cr_time_format(b, &created));
        CR_TRY(cr_buf_putc(b, '"'));
    } else {
        CR_TRY(cr_buf_puts(b, "\"0001-01-01T00:00:00Z\""));
    }
    CR_TRY(cr_buf_puts(b, ",\"username\":"));
    CR_TRY(cr_json_put_cstr(b, kf->username ? kf->username : ""));
    CR_TRY(cr_buf_puts(b, ",\"hostname\":"));
    CR_TRY(cr_json_put_cstr(b, kf->hostname ? kf->hostname : ""));
    CR_TRY(cr_buf_puts(b, ",\"kdf\":"));
    CR_TRY(cr_json_put_cstr(b, kf->kdf ? kf->kdf : ""));
    CR_TRY(cr_buf_printf(b, ",\"N\":%llu,\"r\":%u,\"p\":%u,\"salt\":\"", (unsigned long long)kf->N, kf->r, kf->p));
    CR_TRY(cr_base64_encode(b, kf->salt.data, kf->salt.len));
    CR_TRY(cr_buf_puts(b, "\",\"data\":\""));
    CR_TRY(cr_base64_encode(b, kf->data.data, kf->data.len));
    return cr_buf_puts(b, "\"}");
}

static int cat_key(cr_repo *r, const char *arg)
{
    cr_id id;
    CR_TRY(parse_id_arg(r, CR_FILE_KEY, arg, &id));
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT, json = CR_BUF_INIT;
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&id, hex);
    CR_TRY(cr_be_load(r->be, CR_FILE_KEY, hex, 0, 0, &raw));
    cr_keyfile kf;
    CR_TRY(cr_keyfile_parse((const char *)raw.data, raw.len, &kf));
    int e = encode_keyfile(&kf, &json);
    cr_keyfile_clear(&kf);
    CR_TRY(e);
    return print_indented(&json);
}

static int cat_lock(cr_repo *r, const char *arg)
{
    cr_id id;
    CR_TRY(parse_id_arg(r, CR_FILE_LOCK, arg, &id));
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT, json = CR_BUF_INIT;
    CR_TRY(cr_repo_load_unpacked(r, CR_FILE_LOCK, &id, &raw));
    cr_lock_info info;
    CR_TRY(cr_lock_parse((const char *)raw.data, raw.len, &info));
    int e = cr_lock_encode(&info, &json);
    cr_lock_clear(&info);
    CR_TRY(e);
    return print_indented(&json);
}

/* The raw pack, also when damaged (restic warns about a wrong hash). */
static int cat_pack(cr_repo *r, const char *arg)
{
    cr_id id, got;
    CR_TRY(parse_id_arg(r, CR_FILE_PACK, arg, &id));
    char hex[CR_ID_HEX + 1], got_hex[CR_ID_HEX + 1];
    cr_id_to_hex(&id, hex);
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT;
    CR_TRY(cr_be_load(r->be, CR_FILE_PACK, hex, 0, 0, &raw));
    cr_sha256(raw.data, raw.len, got.b);
    if (!cr_id_eq(&got, &id)) {
        cr_id_to_hex(&got, got_hex);
        fprintf(stderr, "Warning: hash of data does not match ID, want\n  %s\ngot:\n  %s\n", hex, got_hex);
    }
    return cr_write_stdout(raw.data, raw.len);
}

/* A blob ID or unique prefix, looked up in the index (data blobs first). */
static int find_blob(cr_repo *r, const char *arg, cr_blob_type *type, cr_id *id)
{
    if (!is_hex_prefix(arg)) return cr_error(CR_E_USAGE, "unable to parse ID: invalid ID \"%s\"", arg);
    size_t plen = strlen(arg), hits = 0;
    const cr_index *idx = r->index;
    for (size_t i = 0; i < idx->nblobs; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&idx->blobs[i].id, hex);
        if (strncasecmp(hex, arg, plen)) continue;
        if (hits && cr_id_eq(id, &idx->blobs[i].id)) { /* same blob, other type or pack */
            if (idx->blobs[i].type == CR_BLOB_DATA) *type = CR_BLOB_DATA;
            continue;
        }
        hits++;
        *id = idx->blobs[i].id;
        *type = idx->blobs[i].type;
    }
    if (hits == 0) return cr_error(CR_E_NOTFOUND, "blob not found");
    if (hits > 1) return cr_error(CR_E_AMBIGUOUS, "multiple IDs with prefix \"%s\" found", arg);
    return 0;
}

static int cat_blob(cr_repo *r, const char *arg)
{
    CR_TRY(cr_repo_load_index(r));
    cr_blob_type type = CR_BLOB_DATA;
    cr_id id;
    CR_TRY(find_blob(r, arg, &type, &id));
    _cleanup_buf_ cr_buf plain = CR_BUF_INIT;
    CR_TRY(cr_repo_load_blob(r, type, &id, &plain));
    return cr_write_stdout(plain.data, plain.len);
}

static int cat_tree(cr_repo *r, const char *arg)
{
    CR_TRY(cr_repo_load_index(r));
    cr_snapshot sn;
    cr_id tree;
    int e = cr_cli_find_snapshot(r, arg, NULL, &sn, NULL);
    if (e < 0) return cr_error_ctx(e, "could not find snapshot");
    const char *colon = strchr(arg, ':');
    e = cr_find_tree_dir(r, &sn.tree, colon ? colon + 1 : "", &tree);
    cr_snapshot_clear(&sn);
    CR_TRY(e);
    _cleanup_buf_ cr_buf plain = CR_BUF_INIT;
    CR_TRY(cr_repo_load_blob(r, CR_BLOB_TREE, &tree, &plain));
    return cr_write_stdout(plain.data, plain.len);
}

static int cat(cr_repo *r, const char *type, const char *arg)
{
    if (!strcmp(type, "config")) return cat_config(r);
    if (!strcmp(type, "masterkey")) return cat_masterkey(r);
    if (!strcmp(type, "index")) return cat_index(r, arg);
    if (!strcmp(type, "snapshot")) return cat_snapshot(r, arg);
    if (!strcmp(type, "key")) return cat_key(r, arg);
    if (!strcmp(type, "lock")) return cat_lock(r, arg);
    if (!strcmp(type, "pack")) return cat_pack(r, arg);
    if (!strcmp(type, "blob")) return cat_blob(r, arg);
    return cat_tree(r, arg);
}

static int run_cat(cr_global *g, int argc, char **argv)
{
    const cr_flag flags[] = {{NULL, 0, 0, NULL, NULL, NULL}};
    int npos = 0;
    int e = cr_parse_flags(g, &cr_cmd_cat, flags, argc, argv, &npos);
    if (e == 0) e = check_args(npos, argv);
    if (e != 0) return e > 0 ? CR_EXIT_OK : cr_cli_fail(g, e);
    cr_repo *r = NULL;
    int rc = cr_cli_open_repo(g, &r);
    if (rc != 0) return rc;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, r, false, &lock)) == 0) {
        e = cat(r, argv[0], npos > 1 ? argv[1] : NULL);
        fflush(stdout);
        rc = e < 0 ? cr_cli_fail(g, e) : CR_EXIT_OK;
        cr_lock_release(lock);
    }
    cr_repo_close(r);
    return rc;
}

const cr_command cr_cmd_cat = {
    "cat",
    "Print internal objects to stdout",
    "crestic cat [flags] [masterkey|config|pack ID|blob ID|snapshot ID|index ID|key ID|lock ID|tree snapshot:subfolder]",
    run_cat,
};
