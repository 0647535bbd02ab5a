/* crestic init: create a new repository. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

typedef struct {
    const char *version;
    bool copy_chunker_params;
    cr_global from;
} init_opts;

static int parse_version(const char *s, unsigned *out)
{
    if (!s || !strcmp(s, "stable") || !strcmp(s, "latest") || !strcmp(s, "2")) *out = 2;
    else if (!strcmp(s, "1")) *out = 1;
    else return cr_error(CR_E_USAGE, "invalid repository version \"%s\", must be one of 1, 2, latest, stable", s);
    return 0;
}

/* The polynomial of the repository named by --from-repo. */
static int source_polynomial(cr_global *from, uint64_t *pol)
{
    cr_repo *src = NULL;
    int rc = cr_cli_open_repo(from, &src);
    if (rc) return rc;
    *pol = src->cfg.chunker_pol;
    cr_repo_close(src);
    return 0;
}

static void print_created(cr_global *g, const cr_repo *r, const char *loc)
{
    char id[CR_ID_HEX + 1];
    cr_id_to_hex(&r->cfg.id, id);
    if (g->json) {
        cr_buf b = CR_BUF_INIT;
        cr_buf_printf(&b, "{\"message_type\":\"initialized\",\"id\":\"%s\",\"repository\":", id);
        cr_json_put_cstr(&b, loc);
        cr_buf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stdout);
        cr_buf_free(&b);
        return;
    }
    if (g->quiet) return;
    printf("created restic repository %.10s at %s\n\n"
           "Please note that knowledge of your password is required to access\n"
           "the repository. Losing your password means that your data is\n"
           "irrecoverably lost.\n", id, loc);
}

static int run_init(cr_global *g, int argc, char **argv)
{
    init_opts o = {.from = {.progname = g->progname, .env_prefix = "RESTIC_FROM_"}};
    const cr_flag flags[] = {
        {"repository-version", 0, CR_FLAG_STRING, &o.version, "repository format version to use, allowed values are a format version, 'latest' and 'stable'", "string"},
        {"copy-chunker-params", 0, CR_FLAG_BOOL, &o.copy_chunker_params, "copy chunker parameters from the secondary repository (useful with the copy command)", NULL},
        {"from-repo", 0, CR_FLAG_STRING, &o.from.repo, "source repository to copy chunker parameters from (default: $RESTIC_FROM_REPOSITORY)", "repository"},
        {"from-repository-file", 0, CR_FLAG_STRING, &o.from.repo_file, "file from which to read the source repository location to copy chunker parameters from (default: $RESTIC_FROM_REPOSITORY_FILE)", "file"},
        {"from-password-file", 0, CR_FLAG_STRING, &o.from.password_file, "file to read the source repository password from (default: $RESTIC_FROM_PASSWORD_FILE)", "file"},
        {"from-password-command", 0, CR_FLAG_STRING, &o.from.password_command, "shell command to obtain the source repository password from (default: $RESTIC_FROM_PASSWORD_COMMAND)", "command"},
        {"from-key-hint", 0, CR_FLAG_STRING, &o.from.key_hint, "key ID of key to try decrypting the source repository first (default: $RESTIC_FROM_KEY_HINT)", "string"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    static const cr_command self = {"init", "Initialize a new repository", "crestic init [flags]", NULL};
    int npos = 0;
    int r = cr_parse_flags(g, &self, flags, argc, argv, &npos);
    if (r == 1) return CR_EXIT_OK;
    if (r < 0) return cr_cli_fail(g, r);
    if (npos) return cr_cli_fail(g, cr_error(CR_E_USAGE, "the init command expects no arguments, only options - please see `restic help init` for usage and flags"));
    unsigned version = 2;
    if ((r = parse_version(o.version, &version)) < 0) return cr_cli_fail(g, r);

    uint64_t pol = 0;
    if (o.copy_chunker_params) {
        int rc = source_polynomial(&o.from, &pol);
        if (rc) return rc;
    }
    _cleanup_buf_ cr_buf loc = CR_BUF_INIT, pw = CR_BUF_INIT;
    if ((r = cr_cli_location(g, &loc)) < 0) return cr_cli_fail(g, r);
    if ((r = cr_cli_read_password(g, "enter password for new repository: ", true, &pw)) < 0) return cr_cli_fail(g, r);
    cr_backend *be = NULL;
    cr_repo *repo = NULL;
    _cleanup_buf_ cr_buf shown = CR_BUF_INIT;
    cr_cli_display_location((const char *)loc.data, &shown);
    r = cr_cli_backend(g, (const char *)loc.data, true, &be);
    if (r == 0) r = cr_repo_init(be, (const char *)pw.data, pw.len, version, pol, &repo);
    explicit_bzero(pw.data, pw.len);
    if (r < 0) return cr_cli_fail(g, cr_error_ctx(r, "create repository at %s failed", (const char *)shown.data));
    print_created(g, repo, (const char *)shown.data);
    cr_repo_close(repo);
    return CR_EXIT_OK;
}

const cr_command cr_cmd_init = {"init", "Initialize a new repository", "crestic init [flags]", run_init};
