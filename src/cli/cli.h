/* The command-line front end: global options, flag parsing, the command
 * table (git builtin style: one file per command, cmd_<name>.c). */
#ifndef CRESTIC_CLI_H
#define CRESTIC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "repo/repo.h"
#include "repo/lock.h"
#include "repo/snapshot.h"

/* restic's exit codes (today's restic). */
enum {
    CR_EXIT_OK = 0,
    CR_EXIT_FAILURE = 1,      /* any fatal error                      */
    CR_EXIT_PARTIAL = 3,      /* backup: some source files unreadable */
    CR_EXIT_NOREPO = 10,      /* repository does not exist            */
    CR_EXIT_LOCKED = 11,      /* could not lock                       */
    CR_EXIT_PASSWORD = 12,    /* wrong password                       */
    CR_EXIT_INTERRUPTED = 130,
};

typedef enum { CR_FLAG_BOOL, CR_FLAG_STRING, CR_FLAG_STRINGS, CR_FLAG_INT, CR_FLAG_COUNT } cr_flag_kind;

typedef struct {
    const char *name;     /* long name without "--" */
    char shortname;       /* 0 if none */
    cr_flag_kind kind;
    void *ptr;            /* bool*, const char**, cr_strv*, long*, int* */
    const char *help;
    const char *argname;  /* shown in help, e.g. "string" */
} cr_flag;

typedef struct {
    const char **v;
    size_t n;
} cr_strv;
int cr_strv_push(cr_strv *s, const char *v);
void cr_strv_free(cr_strv *s);

typedef struct {
    /* repository and password */
    const char *repo, *repo_file;
    const char *password_file, *password_command, *key_hint;
    /* output */
    bool json, quiet, no_lock;
    int verbose;
    const char *cache_dir;
    bool no_cache, cleanup_cache;
    const char *retry_lock;
    cr_strv options;      /* -o key=value */
    long limit_upload, limit_download;
    const char *cacert, *tls_client_cert;
    bool insecure_tls;
    long pack_size;
    const char *compression;
    const char *progname; /* "crestic", "restic-backup", ... */
    const char *env_prefix; /* NULL = "RESTIC_"; "RESTIC_FROM_" for a source repository */
} cr_global;

typedef struct {
    const char *name;
    const char *summary;
    const char *usage;   /* e.g. "crestic snapshots [flags] [snapshotID ...]" */
    int (*run)(cr_global *g, int argc, char **argv); /* returns an exit code */
} cr_command;

/* Parse argv (after the command name) against the command's flags and the
 * global flags; positional args are compacted into argv[0..*npos).
 * Supports --name value, --name=value, -x value, -xvalue, bundled bool
 * shorts (-qv), "--" to end flags, repeated flags.  Returns 0, 1 for
 * --help (usage printed), or CR_E_USAGE with a message. */
int cr_parse_flags(cr_global *g, const cr_command *cmd, const cr_flag *flags, int argc, char **argv, int *npos);
void cr_print_usage(FILE *f, const cr_command *cmd, const cr_flag *flags);

/* Resolve the repository location and password from options and the
 * environment, open the repository, print the failure and return its exit
 * code (10, 12, 1) or 0 with *out set. */
int cr_cli_open_repo(cr_global *g, cr_repo **out);
/* Open (or, with create, make) the backend for a location, with the TLS
 * options and the interrupt flag handed to the HTTP layer first. */
int cr_cli_backend(cr_global *g, const char *location, bool create, cr_backend **out);
/* A location fit for messages: any password in it replaced by "***". */
void cr_cli_display_location(const char *location, cr_buf *out);

/* The repository location from -r/--repository-file/the environment. */
int cr_cli_location(cr_global *g, cr_buf *loc);
/* The password from --password-command/--password-file/$RESTIC_PASSWORD or
 * a prompt.  With confirm (new repository, new key), a prompt on a terminal
 * asks twice and the answers must match. */
int cr_cli_read_password(cr_global *g, const char *prompt, bool confirm, cr_buf *pw);

/* Take a lock unless --no-lock; prints and returns an exit code on failure. */
int cr_cli_lock(cr_global *g, cr_repo *r, bool exclusive, cr_lock **out);

/* prune with prune's flags (argv without the command name) on a repository
 * the caller opened and locked exclusively: forget --prune, one key
 * derivation and one lock for both.  Prints as prune does; returns prune's
 * exit code. */
int cr_cli_prune_repo(cr_global *g, cr_repo *r, int argc, char **argv);

/* Print "Fatal: <message>" (or a JSON error with --json) for a negative code
 * and map it to the exit code. */
int cr_cli_fail(cr_global *g, int err);
int cr_exit_code_for(int err);

/* Snapshot filter flags shared by several commands. */
typedef struct {
    cr_strv hosts, tags, paths;
} cr_filter_flags;
/* Appends --host/-H? (restic: --host), --tag, --path flag entries to a flag table. */
#define CR_FILTER_FLAGS(ff)                                                                          \
    {"host", 'H', CR_FLAG_STRINGS, &(ff).hosts, "only consider snapshots for this host (can be specified multiple times)", "host"}, \
    {"tag", 0, CR_FLAG_STRINGS, &(ff).tags, "only consider snapshots including tag[,tag,...] (can be specified multiple times)", "tag"}, \
    {"path", 0, CR_FLAG_STRINGS, &(ff).paths, "only consider snapshots including this (absolute) path (can be specified multiple times)", "path"}
cr_snapshot_filter cr_filter_from_flags(const cr_filter_flags *ff);

/* Human-readable sizes as restic prints them ("1.234 MiB"). */
void cr_format_bytes(char *out, size_t n, uint64_t bytes);
/* Whether stdout is a terminal (progress lines). */
bool cr_stdout_is_tty(void);
/* Put the terminal back (echo on) if a password prompt is showing. */
void cr_cli_restore_terminal(void);
/* Set by SIGINT/SIGTERM handlers; long operations poll it. */
extern volatile int cr_interrupted;
/* With cr_soft_signals set, the first SIGINT/SIGTERM only sets
 * cr_soft_stop_requested (the command winds down by itself); the second
 * interrupts as usual. */
extern volatile int cr_soft_signals, cr_soft_stop_requested;

/* Every command restic has.  Each is `const cr_command cr_cmd_<id>` defined
 * in cmd_<id>.c; main.c declares them weak, so a command exists exactly when
 * its file does and nobody edits a central table to add one. */
#define CR_COMMANDS(X)                                                                              \
    X(backup) X(cat) X(check) X(copy) X(diff) X(dump) X(find) X(forget) X(generate) X(init) X(key) \
    X(list) X(ls) X(migrate) X(prune) X(rebuild_index) X(recover) X(repair) X(restore) X(rewrite)   \
    X(snapshots) X(stats) X(tag) X(unlock) X(version) X(workspace_backup) X(workspace_restore)

#endif
