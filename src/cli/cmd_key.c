/* crestic key: manage the repository's keys (passwords).  `key list` as
 * restic's (table, or --json with the full key IDs as today's restic);
 * add, remove and passwd write and delete key files (the master key never
 * changes, spec §5), with today's restic messages. */
#include "cli/cli.h"
#include "cli/output.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

extern const cr_command cr_cmd_key;

typedef struct {
    bool current;
    char id[CR_ID_HEX + 1];
    char *username, *hostname;
    char created[64];
} key_info;

static void key_infos_free(key_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].username);
        free(v[i].hostname);
    }
    free(v);
}

static int load_key_info(cr_repo *r, const cr_id *id, key_info *k)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT;
    CR_TRY(cr_be_load(r->be, CR_FILE_KEY, hex, 0, 0, &raw));
    cr_keyfile kf;
    CR_TRY(cr_keyfile_parse((const char *)raw.data, raw.len, &kf));
    memset(k, 0, sizeof *k);
    k->current = cr_id_eq(id, &r->key_id);
    memcpy(k->id, hex, sizeof hex);
    k->username = strdup(kf.username ? kf.username : "");
    k->hostname = strdup(kf.hostname ? kf.hostname : "");
    cr_time created = {.sec = -62135596800LL}; /* Go's zero time when absent */
    if (kf.created) cr_time_parse(kf.created, strlen(kf.created), &created);
    cr_format_local_time(&created, k->created);
    cr_keyfile_clear(&kf);
    if (!k->username || !k->hostname) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

/* Every key file in listing order; unreadable ones are reported and skipped. */
static int load_key_infos(cr_repo *r, key_info **out, size_t *n)
{
    cr_id *ids = NULL;
    size_t nids = 0;
    CR_TRY(cr_repo_list_ids(r, CR_FILE_KEY, &ids, NULL, &nids));
    key_info *v = calloc(nids + 1, sizeof *v);
    if (!v) {
        free(ids);
        return cr_error(-ENOMEM, "out of memory");
    }
    size_t k = 0;
    int e = 0;
    for (size_t i = 0; i < nids && e >= 0; i++) {
        e = load_key_info(r, &ids[i], &v[k]);
        if (e >= 0) k++;
        else if (e != -ENOMEM) {
            fprintf(stderr, "LoadKey() failed: %s\n", cr_error_message());
            free(v[k].username);
            free(v[k].hostname);
            e = 0;
        }
    }
    free(ids);
    if (e < 0) {
        key_infos_free(v, k);
        return e;
    }
    *out = v;
    *n = k;
    return 0;
}

static int print_keys_json(const key_info *v, size_t n)
{
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    CR_TRY(cr_buf_puts(&b, n ? "[" : "null"));
    for (size_t i = 0; i < n; i++) {
        CR_TRY(cr_buf_printf(&b, "%s{\"current\":%s,\"id\":\"%s\",\"userName\":", i ? "," : "",
                             v[i].current ? "true" : "false", v[i].id));
        CR_TRY(cr_json_put_cstr(&b, v[i].username));
        CR_TRY(cr_buf_puts(&b, ",\"hostName\":"));
        CR_TRY(cr_json_put_cstr(&b, v[i].hostname));
        CR_TRY(cr_buf_puts(&b, ",\"created\":"));
        CR_TRY(cr_json_put_cstr(&b, v[i].created));
        CR_TRY(cr_buf_putc(&b, '}'));
    }
    CR_TRY(cr_buf_puts(&b, n ? "]\n" : "\n"));
    return cr_write_stdout(b.data, b.len);
}

static int print_keys_table(const key_info *v, size_t n)
{
    cr_table *t = NULL;
    CR_TRY(cr_table_new(&t));
    int e = 0;
    const char *headers[] = {" ID", "User", "Host", "Created"};
    for (size_t i = 0; i < 4 && e >= 0; i++) e = cr_table_add_column(t, headers[i]);
    for (size_t i = 0; i < n && e >= 0; i++) {
        char id[16];
        snprintf(id, sizeof id, "%c%.8s", v[i].current ? '*' : ' ', v[i].id);
        const char *cells[] = {id, v[i].username, v[i].hostname, v[i].created};
        e = cr_table_add_row(t, cells);
    }
    if (e >= 0) e = cr_table_write(t, stdout);
    cr_table_free(t);
    return e;
}

static int key_list(cr_global *g, cr_repo *r)
{
    key_info *v = NULL;
    size_t n = 0;
    CR_TRY(load_key_infos(r, &v, &n));
    int e = g->json ? print_keys_json(v, n) : print_keys_table(v, n);
    key_infos_free(v, n);
    return e;
}

static int run_key_list(cr_global *g, int npos)
{
    if (npos > 0)
        return cr_cli_fail(g, cr_error(CR_E_USAGE, "the key list command expects no arguments, only options - please "
                                                    "see `crestic help key list` for usage and flags"));
    cr_repo *r = NULL;
    int rc = cr_cli_open_repo(g, &r);
    if (rc != 0) return rc;
    cr_lock *lock = NULL;
    if ((rc = cr_cli_lock(g, r, false, &lock)) == 0) {
        int e = key_list(g, r);
        fflush(stdout);
        rc = e < 0 ? cr_cli_fail(g, e) : CR_EXIT_OK;
        cr_lock_release(lock);
    }
    cr_repo_close(r);
    return rc;
}

/* The new key's password: --new-password-file or a prompt (asked twice);
 * never $RESTIC_PASSWORD, which opened the repository. */
static int read_new_password(cr_global *g, const char *file, cr_buf *pw)
{
    cr_global np = {.progname = g->progname, .password_file = file, .env_prefix = "CRESTIC_NEW_KEY_UNUSED_"};
    return cr_cli_read_password(&np, "enter new password: ", true, pw);
}

static int add_key(cr_global *g, cr_repo *r, const char *file, const char *user, const char *host, cr_id *id)
{
    _cleanup_buf_ cr_buf pw = CR_BUF_INIT;
    CR_TRY(read_new_password(g, file, &pw));
    int e = cr_repo_add_key(r, (const char *)pw.data, pw.len, user, host, id);
    explicit_bzero(pw.data, pw.len);
    if (e < 0) return cr_error_ctx(e, "creating new key failed");
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    if (!g->quiet) printf("saved new key with ID %s\n", hex);
    return 0;
}

static int remove_key(cr_global *g, cr_repo *r, const cr_id *id)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    CR_TRY(cr_be_remove(r->be, CR_FILE_KEY, hex));
    if (!g->quiet) printf("removed key %s\n", hex);
    return 0;
}

static int key_change(cr_global *g, const char *sub, int npos, char **pos, const char *file, const char *user, const char *host)
{
    bool is_remove = !strcmp(sub, "remove");
    if (is_remove ? npos != 1 : npos != 0) return cr_cli_fail(g, cr_error(CR_E_USAGE, "wrong number of arguments"));
    cr_repo *r = NULL;
    int rc = cr_cli_open_repo(g, &r);
    if (rc) return rc;
    cr_lock *lock = NULL;
    /* add only adds a file; remove and passwd delete one: exclusive, as restic */
    if ((rc = cr_cli_lock(g, r, strcmp(sub, "add") != 0, &lock))) return cr_repo_close(r), rc;
    cr_id id;
    int e = 0;
    if (!strcmp(sub, "add")) {
        e = add_key(g, r, file, user, host, &id);
    } else if (!strcmp(sub, "passwd")) {
        /* the new key first, then the old one goes: never a moment without a key */
        cr_id old = r->key_id;
        e = add_key(g, r, file, user, host, &id);
        if (e == 0) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&old, hex);
            e = cr_be_remove(r->be, CR_FILE_KEY, hex);
        }
    } else {
        e = cr_repo_find_id(r, CR_FILE_KEY, pos[0], &id);
        if (e == 0 && cr_id_eq(&id, &r->key_id)) e = cr_error(CR_E_USAGE, "refusing to remove key currently used to access repository");
        if (e == 0) e = remove_key(g, r, &id);
    }
    cr_lock_release(lock);
    cr_repo_close(r);
    return e < 0 ? cr_cli_fail(g, e) : CR_EXIT_OK;
}

static int run_key_change(cr_global *g, int argc, char **argv)
{
    const char *file = NULL, *user = NULL, *host = NULL;
    const cr_flag flags[] = {
        {"new-password-file", 0, CR_FLAG_STRING, &file, "file from which to read the new password", "file"},
        {"user", 0, CR_FLAG_STRING, &user, "the username for new key", "string"},
        {"host", 0, CR_FLAG_STRING, &host, "the hostname for new key", "string"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"key", "Manage keys (passwords)", "crestic key [add|remove|passwd] [flags] [ID]", NULL};
    int npos = 0, e = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (e == 1) return CR_EXIT_OK;
    if (e < 0) return cr_cli_fail(g, e);
    return key_change(g, argv[0], npos - 1, argv + 1, file, user, host);
}

static void print_key_usage(FILE *f)
{
    fprintf(f, "Manage keys (passwords)\n\nUsage:\n  crestic key [command]\n\nAvailable Commands:\n"
               "  add         Add a new key (password) to the repository; returns the new key ID\n"
               "  list        List keys (passwords)\n"
               "  passwd      Change key (password); creates a new key ID and removes the old key ID, returns new key ID\n"
               "  remove      Remove key ID (password) from the repository.\n\n"
               "Use \"crestic key [command] --help\" for more information about a command.\n");
}

static int run_key(cr_global *g, int argc, char **argv)
{
    /* add, remove and passwd have flags of their own: parse with those. */
    for (int i = 0; i < argc; i++)
        if (argv[i][0] != '-' && (!strcmp(argv[i], "add") || !strcmp(argv[i], "remove") || !strcmp(argv[i], "passwd"))) return run_key_change(g, argc, argv);
    const cr_flag flags[] = {{NULL, 0, 0, NULL, NULL, NULL}};
    bool help = false; /* looked at first: parsing reorders argv */
    for (int i = 0; i < argc && strcmp(argv[i], "--"); i++) help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    int npos = 0;
    int e = cr_parse_flags(g, NULL, flags, argc, argv, &npos);
    if (e < 0) return cr_cli_fail(g, e);
    if (npos == 0) { /* a command group: its help, like cobra */
        print_key_usage(stdout);
        return CR_EXIT_OK;
    }
    const char *sub = argv[0];
    if (!strcmp(sub, "list")) {
        if (help) {
            printf("List keys (passwords)\n\nUsage:\n  crestic key list [flags]\n");
            return CR_EXIT_OK;
        }
        return run_key_list(g, npos - 1);
    }
    fprintf(stderr, "Error: unknown command \"%s\" for \"crestic key\"\nRun 'crestic key --help' for usage.\n", sub);
    return CR_EXIT_FAILURE;
}

const cr_command cr_cmd_key = {
    "key",
    "Manage keys (passwords)",
    "crestic key [command]",
    run_key,
};
