/* Flag parsing with pflag/cobra conventions, so restic command lines work
 * unchanged: flags and positionals may be interleaved, global flags are
 * accepted after the command name. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int cr_strv_push(cr_strv *s, const char *v)
{
    const char **nv = realloc(s->v, (s->n + 2) * sizeof *nv);
    if (!nv) return cr_error(-ENOMEM, "out of memory");
    s->v = nv;
    s->v[s->n++] = v;
    s->v[s->n] = NULL;
    return 0;
}

void cr_strv_free(cr_strv *s)
{
    free(s->v);
    s->v = NULL;
    s->n = 0;
}


/* The global flags, bound to a cr_global. */
static size_t global_flags(cr_global *g, cr_flag *f)
{
    const cr_flag table[] = {
        {"repo", 'r', CR_FLAG_STRING, &g->repo, "repository to backup to or restore from (default: $RESTIC_REPOSITORY)", "repository"},
        {"repository-file", 0, CR_FLAG_STRING, &g->repo_file, "file to read the repository location from (default: $RESTIC_REPOSITORY_FILE)", "file"},
        {"password-file", 'p', CR_FLAG_STRING, &g->password_file, "file to read the repository password from (default: $RESTIC_PASSWORD_FILE)", "file"},
        {"password-command", 0, CR_FLAG_STRING, &g->password_command, "shell command to obtain the repository password from (default: $RESTIC_PASSWORD_COMMAND)", "command"},
        {"key-hint", 0, CR_FLAG_STRING, &g->key_hint, "key ID of key to try decrypting first (default: $RESTIC_KEY_HINT)", "key"},
        {"json", 0, CR_FLAG_BOOL, &g->json, "set output mode to JSON for commands that support it", NULL},
        {"quiet", 'q', CR_FLAG_BOOL, &g->quiet, "do not output comprehensive progress report", NULL},
        {"verbose", 'v', CR_FLAG_COUNT, &g->verbose, "be verbose (specify multiple times or a level using --verbose=n, max level/times is 2)", NULL},
        {"no-lock", 0, CR_FLAG_BOOL, &g->no_lock, "do not lock the repository, this allows some operations on read-only repositories", NULL},
        {"retry-lock", 0, CR_FLAG_STRING, &g->retry_lock, "retry to lock the repository if it is already locked, takes a value like 5m or 2h (default: no retries)", "duration"},
        {"cache-dir", 0, CR_FLAG_STRING, &g->cache_dir, "set the cache directory (default: use system default cache directory)", "directory"},
        {"no-cache", 0, CR_FLAG_BOOL, &g->no_cache, "do not use a local cache", NULL},
        {"cleanup-cache", 0, CR_FLAG_BOOL, &g->cleanup_cache, "auto remove old cache directories", NULL},
        {"option", 'o', CR_FLAG_STRINGS, &g->options, "set extended option (key=value, can be specified multiple times)", "key=value"},
        {"limit-upload", 0, CR_FLAG_INT, &g->limit_upload, "limits uploads to a maximum rate in KiB/s. (default: unlimited)", "int"},
        {"limit-download", 0, CR_FLAG_INT, &g->limit_download, "limits downloads to a maximum rate in KiB/s. (default: unlimited)", "int"},
        {"cacert", 0, CR_FLAG_STRING, &g->cacert, "file to load root certificates from (default: use system certificates)", "file"},
        {"tls-client-cert", 0, CR_FLAG_STRING, &g->tls_client_cert, "path to a file containing PEM encoded TLS client certificate and private key", "file"},
        {"insecure-tls", 0, CR_FLAG_BOOL, &g->insecure_tls, "skip TLS certificate verification when connecting to the repository (insecure)", NULL},
        {"pack-size", 0, CR_FLAG_INT, &g->pack_size, "set target pack size in MiB, created pack files may be larger (default: $RESTIC_PACK_SIZE)", "size"},
        {"compression", 0, CR_FLAG_STRING, &g->compression, "compression mode (only available for repository format version 2), one of (auto|off|max|fastest|better) (default: $RESTIC_COMPRESSION)", "mode"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    size_t n = sizeof table / sizeof table[0];
    memcpy(f, table, sizeof table);
    return n - 1;
}

static const cr_flag *find_long(const cr_flag *cmd, const cr_flag *glob, const char *name, size_t len)
{
    for (const cr_flag *tab = cmd; tab; tab = (tab == cmd ? glob : NULL))
        for (const cr_flag *f = tab; f && f->name; f++)
            if (strlen(f->name) == len && memcmp(f->name, name, len) == 0) return f;
    return NULL;
}

static const cr_flag *find_short(const cr_flag *cmd, const cr_flag *glob, char c)
{
    for (const cr_flag *tab = cmd; tab; tab = (tab == cmd ? glob : NULL))
        for (const cr_flag *f = tab; f && f->name; f++)
            if (f->shortname == c) return f;
    return NULL;
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "t") || !strcmp(v, "T") || !strcmp(v, "TRUE") || !strcmp(v, "True")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "f") || !strcmp(v, "F") || !strcmp(v, "FALSE") || !strcmp(v, "False")) {
        *out = false;
        return 0;
    }
    return CR_E_USAGE;
}

static int set_value(const cr_flag *f, const char *shown, const char *v)
{
    switch (f->kind) {
    case CR_FLAG_BOOL:
        if (parse_bool(v, f->ptr) < 0)
            return cr_error(CR_E_USAGE, "invalid argument \"%s\" for \"%s\" flag: strconv.ParseBool: parsing \"%s\": invalid syntax", v, shown, v);
        return 0;
    case CR_FLAG_STRING:
        *(const char **)f->ptr = v;
        return 0;
    case CR_FLAG_STRINGS:
        return cr_strv_push(f->ptr, v);
    case CR_FLAG_INT:
    case CR_FLAG_COUNT: {
        char *end;
        errno = 0;
        long x = strtol(v, &end, 0);
        if (errno || !*v || *end)
            return cr_error(CR_E_USAGE, "invalid argument \"%s\" for \"%s\" flag: strconv.ParseInt: parsing \"%s\": invalid syntax", v, shown, v);
        if (f->kind == CR_FLAG_INT) *(long *)f->ptr = x;
        else *(int *)f->ptr = (int)x;
        return 0;
    }
    }
    return CR_E_USAGE;
}

static bool takes_value(const cr_flag *f)
{
    return f->kind == CR_FLAG_STRING || f->kind == CR_FLAG_STRINGS || f->kind == CR_FLAG_INT;
}

/* "--name[=value]" at argv[*i]. */
static int parse_long(const cr_flag *flags, const cr_flag *glob, int argc, char **argv, int *i)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const cr_flag *f = find_long(flags, glob, arg, len);
    if (!f) return cr_error(CR_E_USAGE, "unknown flag: --%.*s", (int)len, arg);
    char shown[128];
    snprintf(shown, sizeof shown, "--%s", f->name);
    if (eq) return set_value(f, shown, eq + 1);
    if (f->kind == CR_FLAG_BOOL) return *(bool *)f->ptr = true, 0;
    if (f->kind == CR_FLAG_COUNT) return (*(int *)f->ptr)++, 0;
    if (*i + 1 >= argc) return cr_error(CR_E_USAGE, "flag needs an argument: --%s", f->name);
    return set_value(f, shown, argv[++*i]);
}

/* "-abc", "-rvalue", "-r value", "-r=value". */
static int parse_short(const cr_flag *flags, const cr_flag *glob, int argc, char **argv, int *i)
{
    const char *arg = argv[*i] + 1;
    for (size_t k = 0; arg[k]; k++) {
        const cr_flag *f = find_short(flags, glob, arg[k]);
        if (!f) return cr_error(CR_E_USAGE, "unknown shorthand flag: '%c' in -%s", arg[k], arg);
        char shown[128];
        snprintf(shown, sizeof shown, "-%c, --%s", f->shortname, f->name);
        if (takes_value(f)) {
            const char *rest = arg + k + 1;
            if (*rest == '=') rest++;
            if (*rest) return set_value(f, shown, rest);
            if (*i + 1 >= argc) return cr_error(CR_E_USAGE, "flag needs an argument: '%c' in -%s", arg[k], arg);
            return set_value(f, shown, argv[++*i]);
        }
        if (arg[k + 1] == '=') return set_value(f, shown, arg + k + 2);
        if (f->kind == CR_FLAG_BOOL) *(bool *)f->ptr = true;
        else (*(int *)f->ptr)++;
    }
    return 0;
}

int cr_parse_flags(cr_global *g, const cr_command *cmd, const cr_flag *flags, int argc, char **argv, int *npos)
{
    cr_flag glob[64];
    global_flags(g, glob);
    int pos = 0;
    bool help = false;
    cr_flag helpflag[] = {{"help", 'h', CR_FLAG_BOOL, &help, "help for this command", NULL}, {NULL, 0, 0, NULL, NULL, NULL}};
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++) argv[pos++] = argv[i];
            break;
        }
        int r = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) help = true;
        else if (a[0] == '-' && a[1] == '-' && a[2]) r = parse_long(flags, glob, argc, argv, &i);
        else if (a[0] == '-' && a[1]) r = parse_short(flags, glob, argc, argv, &i);
        else argv[pos++] = a;
        if (r < 0) return r;
    }
    (void)helpflag;
    *npos = pos;
    if (help && cmd) {
        cr_print_usage(stdout, cmd, flags);
        return 1;
    }
    return 0;
}

static void print_flag_table(FILE *f, const cr_flag *flags)
{
    for (const cr_flag *fl = flags; fl && fl->name; fl++) {
        char left[96];
        const char *arg = takes_value(fl) ? (fl->argname ? fl->argname : "string") : NULL;
        if (fl->shortname)
            snprintf(left, sizeof left, "  -%c, --%s%s%s", fl->shortname, fl->name, arg ? " " : "", arg ? arg : "");
        else
            snprintf(left, sizeof left, "      --%s%s%s", fl->name, arg ? " " : "", arg ? arg : "");
        fprintf(f, "%-40s %s\n", left, fl->help ? fl->help : "");
    }
}

void cr_print_usage(FILE *f, const cr_command *cmd, const cr_flag *flags)
{
    cr_global dummy = {0};
    cr_flag glob[64];
    global_flags(&dummy, glob);
    fprintf(f, "%s\n\nUsage:\n  %s\n\nFlags:\n", cmd->summary, cmd->usage);
    print_flag_table(f, flags);
    fprintf(f, "  -h, --help                               help for %s\n\nGlobal Flags:\n", cmd->name);
    print_flag_table(f, glob);
}
