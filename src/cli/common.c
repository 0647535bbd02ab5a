/* Shared CLI plumbing: repository location, password, opening, locking,
 * error reporting and exit codes. */
#include "cli/cli.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "backends/http.h"
#include "backends/optparse.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

int cr_exit_code_for(int err)
{
    switch (err) {
    case CR_E_NOREPO: return CR_EXIT_NOREPO;
    case CR_E_LOCKED: return CR_EXIT_LOCKED;
    case CR_E_PASSWORD: return CR_EXIT_PASSWORD;
    case CR_E_INTERRUPTED: return CR_EXIT_INTERRUPTED;
    default: return CR_EXIT_FAILURE;
    }
}

int cr_cli_fail(cr_global *g, int err)
{
    const char *msg = cr_error_message();
    if (!msg[0]) msg = cr_error_str(err);
    if (g && g->json) {
        cr_buf b = CR_BUF_INIT;
        cr_buf_puts(&b, "{\"message_type\":\"exit_error\",\"code\":");
        cr_json_put_i64(&b, cr_exit_code_for(err));
        cr_buf_puts(&b, ",\"message\":");
        cr_json_put_cstr(&b, msg);
        cr_buf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stderr);
        cr_buf_free(&b);
    } else if (err == CR_E_USAGE) {
        fprintf(stderr, "Fatal: %s\n", msg);
    } else {
        fprintf(stderr, "Fatal: %s\n", msg);
    }
    return cr_exit_code_for(err);
}

/* Read a whole small file (password or repository file). */
static int read_small_file(const char *path, cr_buf *out)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cr_error_sys(-errno, "open %s", path);
    for (;;) {
        CR_TRY(cr_buf_reserve(out, 4096));
        ssize_t n = read(fd, out->data + out->len, 4096);
        if (n < 0) return cr_error_sys(-errno, "read %s", path);
        if (n == 0) break;
        out->len += (size_t)n;
        if (out->len > (1u << 20)) return cr_error(CR_E_USAGE, "%s: file too large", path);
    }
    return cr_buf_nul(out);
}

static void trim_space(cr_buf *b)
{
    size_t s = 0, e = b->len;
    while (s < e && strchr(" \t\r\n\v\f", b->data[s])) s++;
    while (e > s && strchr(" \t\r\n\v\f", b->data[e - 1])) e--;
    memmove(b->data, b->data + s, e - s);
    b->len = e - s;
    b->data[b->len] = 0;
}

/* UTF-8 BOM stripped; UTF-16 (with BOM) converted to UTF-8, as restic's textfile reader. */
static int normalize_text(cr_buf *b)
{
    if (b->len >= 3 && !memcmp(b->data, "\xef\xbb\xbf", 3)) {
        memmove(b->data, b->data + 3, b->len - 3);
        b->len -= 3;
        return cr_buf_nul(b);
    }
    if (b->len < 2) return 0;
    bool le = b->data[0] == 0xff && b->data[1] == 0xfe, be = b->data[0] == 0xfe && b->data[1] == 0xff;
    if (!le && !be) return 0;
    cr_buf out = CR_BUF_INIT;
    for (size_t i = 2; i + 1 < b->len; i += 2) {
        uint32_t u = le ? (uint32_t)(b->data[i] | b->data[i + 1] << 8) : (uint32_t)(b->data[i] << 8 | b->data[i + 1]);
        if (u >= 0xd800 && u < 0xdc00 && i + 3 < b->len) {
            uint32_t lo = le ? (uint32_t)(b->data[i + 2] | b->data[i + 3] << 8) : (uint32_t)(b->data[i + 2] << 8 | b->data[i + 3]);
            if (lo >= 0xdc00 && lo < 0xe000) {
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                i += 2;
            }
        }
        uint8_t enc[4];
        size_t k;
        if (u < 0x80) enc[0] = (uint8_t)u, k = 1;
        else if (u < 0x800) enc[0] = (uint8_t)(0xc0 | u >> 6), enc[1] = (uint8_t)(0x80 | (u & 63)), k = 2;
        else if (u < 0x10000) enc[0] = (uint8_t)(0xe0 | u >> 12), enc[1] = (uint8_t)(0x80 | (u >> 6 & 63)), enc[2] = (uint8_t)(0x80 | (u & 63)), k = 3;
        else enc[0] = (uint8_t)(0xf0 | u >> 18), enc[1] = (uint8_t)(0x80 | (u >> 12 & 63)), enc[2] = (uint8_t)(0x80 | (u >> 6 & 63)), enc[3] = (uint8_t)(0x80 | (u & 63)), k = 4;
        if (cr_buf_append(&out, enc, k) < 0) {
            cr_buf_free(&out);
            return -ENOMEM;
        }
    }
    cr_buf_free(b);
    *b = out;
    return cr_buf_nul(b);
}

/* Split a command line the way restic does for --password-command:
 * whitespace separates, single and double quotes group, backslash escapes. */
static int split_shell_words(const char *s, char ***out, cr_buf *store)
{
    size_t cap = 8, n = 0;
    char **argv = calloc(cap, sizeof *argv);
    size_t *offs = calloc(cap, sizeof *offs);
    if (!argv || !offs) return free(argv), free(offs), cr_error(-ENOMEM, "out of memory");
    cr_buf_reset(store);
    char quote = 0;
    bool in_word = false;
    for (const char *p = s;; p++) {
        char c = *p;
        bool end = !c || (!quote && (c == ' ' || c == '\t' || c == '\n'));
        if (end) {
            if (in_word) {
                cr_buf_putc(store, 0);
                in_word = false;
            }
            if (!c) break;
            continue;
        }
        if (!in_word) {
            if (n + 1 >= cap) {
                cap *= 2;
                argv = realloc(argv, cap * sizeof *argv);
                offs = realloc(offs, cap * sizeof *offs);
                if (!argv || !offs) return cr_error(-ENOMEM, "out of memory");
            }
            offs[n++] = store->len;
            in_word = true;
        }
        if (quote) {
            if (c == quote) quote = 0;
            else if (c == '\\' && quote == '"' && p[1]) cr_buf_putc(store, *++p);
            else cr_buf_putc(store, c);
        } else if (c == '"' || c == '\'') quote = c;
        else if (c == '\\' && p[1]) cr_buf_putc(store, *++p);
        else cr_buf_putc(store, c);
    }
    if (quote) return free(argv), free(offs), cr_error(CR_E_USAGE, "unterminated quote in command");
    for (size_t i = 0; i < n; i++) argv[i] = (char *)store->data + offs[i];
    argv[n] = NULL;
    free(offs);
    if (!n) return free(argv), cr_error(CR_E_USAGE, "empty command");
    *out = argv;
    return 0;
}

static int run_password_command(const char *cmd, cr_buf *out)
{
    cr_buf store = CR_BUF_INIT;
    char **argv = NULL;
    int r = split_shell_words(cmd, &argv, &store);
    if (r < 0) return cr_buf_free(&store), r;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) return free(argv), cr_buf_free(&store), cr_error_sys(-errno, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    int rc = 0;
    for (;;) {
        if (cr_buf_reserve(out, 4096) < 0) break;
        ssize_t n = read(pfd[0], out->data + out->len, 4096);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out->len += (size_t)n;
    }
    close(pfd[0]);
    int status = 0;
    if (pid < 0) rc = cr_error_sys(-errno, "fork");
    else if (waitpid(pid, &status, 0) < 0) rc = cr_error_sys(-errno, "waitpid");
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = cr_error(CR_E_USAGE, "password command failed: %s: exit status %d", cmd, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    free(argv);
    cr_buf_free(&store);
    if (rc == 0) rc = cr_buf_nul(out);
    return rc;
}

/* The terminal state while a prompt has echo switched off. */
static struct termios saved_termios;
static volatile int termios_saved;

void cr_cli_restore_terminal(void)
{
    if (termios_saved) tcsetattr(0, TCSAFLUSH, &saved_termios);
}

static int prompt_password(const char *prompt, cr_buf *out)
{
    bool tty = isatty(0);
    struct termios old, noecho;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
        tcgetattr(0, &old);
        saved_termios = old;
        termios_saved = 1;
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSAFLUSH, &noecho);
    }
    int rc = 0;
    for (;;) {
        char c;
        ssize_t n = read(0, &c, 1);
        if (n < 0 && errno == EINTR && !cr_interrupted) continue;
        if (n <= 0 || c == '\n') break;
        if ((rc = cr_buf_putc(out, c)) < 0) break;
    }
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &old);
        termios_saved = 0;
        fprintf(stderr, "\n");
    }
    if (out->len && out->data[out->len - 1] == '\r') out->len--;
    if (cr_interrupted) return cr_error(CR_E_INTERRUPTED, "interrupted");
    return rc < 0 ? rc : cr_buf_nul(out);
}

/* $RESTIC_<name> (or $RESTIC_FROM_<name> for a source repository) unless v is set. */
static const char *env_or(cr_global *g, const char *v, const char *name)
{
    if (v) return v;
    char env[128];
    snprintf(env, sizeof env, "%s%s", g->env_prefix ? g->env_prefix : "RESTIC_", name);
    const char *e = getenv(env);
    return e && *e ? e : NULL;
}

/* restic's order: --password-command, --password-file, $RESTIC_PASSWORD, prompt. */
static int resolve_password(cr_global *g, const char *prompt, bool confirm, cr_buf *pw)
{
    const char *file = env_or(g, g->password_file, "PASSWORD_FILE");
    const char *cmd = env_or(g, g->password_command, "PASSWORD_COMMAND");
    if (file && cmd) return cr_error(CR_E_USAGE, "Password file and command are mutually exclusive options");
    if (cmd) {
        CR_TRY(run_password_command(cmd, pw));
        trim_space(pw);
    } else if (file) {
        int r = read_small_file(file, pw);
        if (r < 0) return cr_error_ctx(r, "Readfile");
        CR_TRY(normalize_text(pw));
        trim_space(pw);
    } else {
        const char *env = env_or(g, NULL, "PASSWORD");
        if (env) CR_TRY(cr_buf_puts(pw, env));
        else {
            CR_TRY(prompt_password(prompt, pw));
            if (confirm && isatty(0)) {
                _cleanup_buf_ cr_buf again = CR_BUF_INIT;
                CR_TRY(prompt_password("enter password again: ", &again));
                if (again.len != pw->len || memcmp(again.data, pw->data, pw->len))
                    return cr_error(CR_E_USAGE, "passwords do not match");
            }
        }
        CR_TRY(cr_buf_nul(pw));
    }
    if (pw->len == 0)
        return cr_error(CR_E_USAGE, "an empty password is not allowed by default. Pass the flag `--insecure-no-password` to restic to disable this check");
    return 0;
}

int cr_cli_read_password(cr_global *g, const char *prompt, bool confirm, cr_buf *pw)
{
    return resolve_password(g, prompt, confirm, pw);
}

int cr_cli_location(cr_global *g, cr_buf *loc)
{
    const char *repo = env_or(g, g->repo, "REPOSITORY");
    const char *file = env_or(g, g->repo_file, "REPOSITORY_FILE");
    if (repo && file) return cr_error(CR_E_USAGE, "Options -r and --repository-file are mutually exclusive, please specify only one");
    if (file) {
        int r = read_small_file(file, loc);
        if (r < 0) return cr_error_ctx(r, "unable to read repository file");
        trim_space(loc);
    } else if (repo) {
        CR_TRY(cr_buf_puts(loc, repo));
        CR_TRY(cr_buf_nul(loc));
    }
    if (loc->len == 0) return cr_error(CR_E_USAGE, "Please specify repository location (-r or --repository-file)");
    return 0;
}

void cr_cli_display_location(const char *location, cr_buf *out)
{
    if (cr_http_redact_url(location, out) < 0) {
        cr_buf_reset(out);
        cr_buf_puts(out, "(location)");
        cr_buf_nul(out);
    }
}

int cr_cli_backend(cr_global *g, const char *location, bool create, cr_backend **out)
{
    cr_http_tls tls = {.cacert = env_or(g, g->cacert, "CACERT"), .client_cert = env_or(g, g->tls_client_cert, "TLS_CLIENT_CERT"),
                       .insecure = g->insecure_tls};
    CR_TRY(cr_http_set_tls(&tls));
    cr_http_set_limits(g->limit_upload > 0 ? (uint64_t)g->limit_upload : 0, g->limit_download > 0 ? (uint64_t)g->limit_download : 0);
    CR_TRY(cr_backend_set_options((const char *const *)g->options.v, g->options.n));
    cr_http_set_cancel(&cr_interrupted);
    return create ? cr_backend_create(location, out) : cr_backend_open(location, out);
}

int cr_cli_open_repo(cr_global *g, cr_repo **out)
{
    _cleanup_buf_ cr_buf loc = CR_BUF_INIT;
    int r = cr_cli_location(g, &loc);
    if (r < 0) return cr_cli_fail(g, r);
    cr_backend *be = NULL;
    r = cr_cli_backend(g, (const char *)loc.data, false, &be);
    if (r < 0) return cr_cli_fail(g, r);
    uint64_t size;
    r = cr_be_stat(be, CR_FILE_CONFIG, "config", &size);
    if (r == -ENOENT) {
        cr_error(CR_E_NOREPO, "unable to open config file: stat %s/config: no such file or directory\n"
                              "Is there a repository at the following location?\n%s",
                 be->location, be->location);
        cr_backend_close(be);
        return cr_cli_fail(g, CR_E_NOREPO);
    }
    if (r < 0) {
        cr_backend_close(be);
        return cr_cli_fail(g, r);
    }
    cr_buf pw = CR_BUF_INIT;
    r = resolve_password(g, "enter password for repository: ", false, &pw);
    if (r < 0) {
        cr_backend_close(be);
        cr_buf_free(&pw);
        return cr_cli_fail(g, r);
    }
    r = cr_repo_open(be, (const char *)pw.data, pw.len, env_or(g, g->key_hint, "KEY_HINT"), out);
    explicit_bzero(pw.data, pw.len);
    cr_buf_free(&pw);
    if (r < 0) return cr_cli_fail(g, r);
    /* restic says this on a terminal only (its default verbosity is 1). */
    if (!g->json && !g->quiet && cr_stdout_is_tty()) {
        char id[CR_ID_HEX + 1];
        cr_id_to_hex(&(*out)->cfg.id, id);
        printf("repository %.8s opened (repository version %u) successfully, password is correct\n", id, (*out)->cfg.version);
    }
    return 0;
}

/* --retry-lock takes a Go duration (time.ParseDuration); a negative one
 * means no retries, as in restic. */
static int parse_retry_lock(const char *s, double *out)
{
    bool negative = *s == '-';
    int e = cr_parse_go_duration(s + negative, out);
    if (e < 0) return cr_error_ctx(e, "invalid argument \"%s\" for \"--retry-lock\" flag", s);
    if (negative) *out = 0;
    return 0;
}

int cr_cli_lock(cr_global *g, cr_repo *r, bool exclusive, cr_lock **out)
{
    *out = NULL;
    if (g->no_lock) return 0;
    double retry = 0;
    if (g->retry_lock) {
        int e = parse_retry_lock(g->retry_lock, &retry);
        if (e < 0) return cr_cli_fail(g, e);
    }
    int e = cr_lock_acquire(r, exclusive, retry, out);
    if (e < 0) return cr_cli_fail(g, e);
    return 0;
}

cr_snapshot_filter cr_filter_from_flags(const cr_filter_flags *ff)
{
    cr_snapshot_filter f = {
        .hosts = ff->hosts.v, .nhosts = ff->hosts.n,
        .tag_lists = ff->tags.v, .ntag_lists = ff->tags.n,
        .paths = ff->paths.v, .npaths = ff->paths.n,
    };
    return f;
}

void cr_format_bytes(char *out, size_t n, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(out, n, "%llu B", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes / 1024;
    int u = 0;
    while (v >= 1024 && u < 5) v /= 1024, u++;
    snprintf(out, n, "%.3f %s", v, units[u]);
}

bool cr_stdout_is_tty(void)
{
    return isatty(1);
}
