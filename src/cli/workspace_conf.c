/* Workspace commands: the configuration file and opening the repository
 * with one distinct exit code per kind of failure (see workspace.h). */
#include "cli/workspace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

/* ---- shell-style values --------------------------------------------------------- */

/* One shell word: 'single quoted', "double quoted" (\ escapes $ ` " \ and
 * newline), backslash escapes and plain characters, concatenated, up to
 * the first unquoted blank.  No expansion: the file is data, not a script. */
static int shell_word(const char *s, cr_buf *out)
{
    cr_buf_reset(out);
    while (*s && *s != ' ' && *s != '\t' && *s != '#') {
        if (*s == '\'') {
            const char *end = strchr(s + 1, '\'');
            if (!end) return cr_error(CR_E_FORMAT, "unterminated single quote");
            cr_buf_append(out, s + 1, (size_t)(end - s - 1));
            s = end + 1;
        } else if (*s == '"') {
            for (s++; *s && *s != '"'; s++) {
                if (*s == '\\' && s[1] && strchr("$`\"\\\n", s[1])) s++;
                cr_buf_putc(out, *s);
            }
            if (*s != '"') return cr_error(CR_E_FORMAT, "unterminated double quote");
            s++;
        } else {
            if (*s == '\\' && s[1]) s++;
            cr_buf_putc(out, *s++);
        }
    }
    return cr_buf_nul(out);
}

/* A JSON array of strings into v (appended). */
static int json_strings(const char *key, const char *text, cr_strv *v)
{
    cr_json_doc *doc = NULL;
    int r = cr_json_parse(text, strlen(text), &doc);
    const cr_json *root = r == 0 ? cr_json_root(doc) : NULL;
    if (r == 0 && !cr_json_is(root, CR_JSON_ARRAY)) r = CR_E_FORMAT;
    for (uint32_t i = 0; r == 0 && i < root->len; i++) {
        const cr_json *e = &root->kids[i];
        if (e->type != CR_JSON_STRING || memchr(e->str, 0, e->len)) r = CR_E_FORMAT;
        else {
            char *copy = strdup(e->str);
            if (!copy || cr_strv_push(v, copy) < 0) {
                free(copy);
                r = -ENOMEM;
            }
        }
    }
    cr_json_free(doc);
    if (r < 0) return cr_error(r == -ENOMEM ? r : CR_E_FORMAT, "%s: not a JSON array of strings: %s", key, text);
    return 0;
}

static int parse_count(const char *key, const char *v, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < 0) return cr_error(CR_E_FORMAT, "%s: not a count: '%s'", key, v);
    *out = n;
    return 0;
}

static bool is_true(const char *v)
{
    return !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes");
}

static char *expand_home(const char *dir)
{
    const char *home = getenv("HOME");
    if (dir[0] == '~' && (dir[1] == 0 || dir[1] == '/') && home) {
        cr_buf b = CR_BUF_INIT;
        cr_buf_printf(&b, "%s%s", home, dir + 1);
        return (char *)cr_buf_steal(&b, NULL);
    }
    return strdup(dir);
}

static int apply_setting(cr_ws_conf *c, const char *key, const char *v)
{
    static const struct {
        const char *key;
        size_t off;
    } counts[] = {
        {"RETENTION_LAST", offsetof(cr_ws_conf, keep_last)},
        {"RETENTION_DAILY", offsetof(cr_ws_conf, keep_daily)},
        {"RETENTION_WEEKLY", offsetof(cr_ws_conf, keep_weekly)},
        {"RETENTION_MONTHLY", offsetof(cr_ws_conf, keep_monthly)},
    };
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
        if (!strcmp(key, counts[i].key)) return parse_count(key, v, (long *)((char *)c + counts[i].off));
    if (!strcmp(key, "BACKUP_PATHS")) return json_strings(key, v, &c->paths);
    if (!strcmp(key, "EXCLUDE_PATTERNS")) return json_strings(key, v, &c->excludes);
    if (!strcmp(key, "BACKUP_TAGS")) return json_strings(key, v, &c->tags);
    if (!strcmp(key, "AUTO_FORGET")) return c->auto_forget = is_true(v), 0;
    if (!strcmp(key, "AUTO_PRUNE")) return c->auto_prune = is_true(v), 0;
    char **str = !strcmp(key, "DIRECTORY") ? &c->directory
                 : !strcmp(key, "SNAPSHOT_ID") ? &c->snapshot_id
                 : !strcmp(key, "RESTORE_TARGET") ? &c->restore_target
                 : NULL;
    if (!str) return 0; /* unknown keys are left alone */
    free(*str);
    *str = !strcmp(key, "DIRECTORY") ? expand_home(v) : strdup(v);
    return *str ? 0 : cr_error(-ENOMEM, "out of memory");
}

static int parse_line(cr_ws_conf *c, char *line, cr_buf *word)
{
    while (*line == ' ' || *line == '\t') line++;
    if (!*line || *line == '#') return 0;
    if (!strncmp(line, "export ", 7)) line += 7;
    char *eq = strchr(line, '=');
    if (!eq || eq == line) return cr_error(CR_E_FORMAT, "not KEY=value: %s", line);
    *eq = 0;
    CR_TRY(shell_word(eq + 1, word));
    return apply_setting(c, line, (const char *)word->data);
}

static int parse_file(cr_ws_conf *c, const char *file)
{
    FILE *f = fopen(file, "re");
    if (!f) {
        if (errno == ENOENT) return cr_error(-ENOENT, "Configuration file not found: %s", file);
        return cr_error_sys(-errno, "open %s", file);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int r = 0, lineno = 0;
    cr_buf word = CR_BUF_INIT;
    while (r == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (n && line[n - 1] == '\n') line[--n] = 0;
        r = parse_line(c, line, &word);
        if (r < 0) r = cr_error_ctx(r, "%s line %d", file, lineno);
    }
    free(line);
    fclose(f);
    cr_buf_free(&word);
    return r;
}

int cr_ws_data_path(const cr_ws_conf *c, const char *name, cr_buf *out)
{
    cr_buf_reset(out);
    CR_TRY(cr_buf_printf(out, "%s/%s", c->data_dir, name));
    return cr_buf_nul(out);
}

int cr_ws_conf_load(cr_ws_conf *c)
{
    memset(c, 0, sizeof *c);
    c->keep_last = 10, c->keep_daily = 14, c->keep_weekly = 8, c->keep_monthly = 6; /* the module's defaults */
    const char *dd = getenv("CODER_SCRIPT_DATA_DIR");
    cr_buf b = CR_BUF_INIT;
    if (dd && *dd) cr_buf_puts(&b, dd);
    else cr_buf_printf(&b, "%s/.local/share/coder", getenv("HOME") ? getenv("HOME") : "");
    cr_buf_nul(&b);
    c->data_dir = (char *)cr_buf_steal(&b, NULL);
    c->workspace_id = getenv("RESTIC_WORKSPACE_ID");
    c->owner = getenv("RESTIC_WORKSPACE_OWNER");
    c->name = getenv("RESTIC_WORKSPACE_NAME");
    if (!c->data_dir) return cr_error(-ENOMEM, "out of memory");
    CR_TRY(cr_ws_data_path(c, "restic-backup.conf", &b));
    int r = parse_file(c, (const char *)b.data);
    cr_buf_free(&b);
    if (r < 0) return r;
    if (!c->directory && !(c->directory = expand_home("~"))) return cr_error(-ENOMEM, "out of memory");
    if (!c->workspace_id || !*c->workspace_id) return cr_error(CR_E_USAGE, "RESTIC_WORKSPACE_ID is not set");
    if (!c->owner) c->owner = "";
    if (!c->name) c->name = "";
    return 0;
}

static void strv_free_all(cr_strv *v)
{
    for (size_t i = 0; i < v->n; i++) free((void *)v->v[i]);
    cr_strv_free(v);
}

void cr_ws_conf_free(cr_ws_conf *c)
{
    strv_free_all(&c->paths);
    strv_free_all(&c->excludes);
    strv_free_all(&c->tags);
    free(c->directory);
    free(c->snapshot_id);
    free(c->restore_target);
    free(c->data_dir);
}

/* ---- opening the repository --------------------------------------------------------- */

int cr_ws_exit_code(int err)
{
    switch (err) {
    case CR_E_NOREPO: return CR_EXIT_NOREPO;
    case CR_E_LOCKED: return CR_EXIT_LOCKED;
    case CR_E_PASSWORD: return CR_EXIT_PASSWORD;
    case CR_E_INTERRUPTED: return CR_EXIT_INTERRUPTED;
    case CR_E_NOTFOUND: return CR_WS_EXIT_NOT_FOUND;
    case -EIO: case -ECONNREFUSED: case -ECONNRESET: case -EHOSTUNREACH: case -ENETUNREACH: case -ETIMEDOUT:
        return CR_WS_EXIT_UNREACHABLE;
    default: return CR_EXIT_FAILURE;
    }
}

static const char *what_failed(int code)
{
    switch (code) {
    case CR_EXIT_NOREPO: return "no repository at this location";
    case CR_EXIT_PASSWORD: return "wrong password for the repository";
    case CR_EXIT_LOCKED: return "the repository is locked";
    case CR_WS_EXIT_UNREACHABLE: return "the repository storage cannot be reached";
    default: return "the repository cannot be opened";
    }
}

/* One line per failure, saying which failure it is, then the detail. */
static int open_fail(int err)
{
    int code = cr_ws_exit_code(err);
    const char *msg = cr_error_message();
    fprintf(stderr, "Error: %s (%s)\n", what_failed(code), msg[0] ? msg : cr_error_str(err));
    return code;
}

int cr_ws_open_repo(cr_global *g, cr_repo **out)
{
    cr_buf loc = CR_BUF_INIT, pw = CR_BUF_INIT;
    cr_backend *be = NULL;
    int r = cr_cli_location(g, &loc);
    if (r == 0) r = cr_cli_backend(g, (const char *)loc.data, false, &be);
    uint64_t size;
    if (r == 0 && (r = cr_be_stat(be, CR_FILE_CONFIG, "config", &size)) == -ENOENT)
        r = cr_error(CR_E_NOREPO, "no config file at %s", be->location);
    if (r == 0) r = cr_cli_read_password(g, "enter password for repository: ", false, &pw);
    if (r == 0) {
        r = cr_repo_open(be, (const char *)pw.data, pw.len, getenv("RESTIC_KEY_HINT"), out);
        be = NULL; /* owned by the repository now, or closed */
    }
    if (pw.data) explicit_bzero(pw.data, pw.len);
    cr_buf_free(&pw);
    cr_buf_free(&loc);
    if (be) cr_backend_close(be);
    return r < 0 ? open_fail(r) : 0;
}
