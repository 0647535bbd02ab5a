/* crestic entry point: argv[0] personality, global flags, command dispatch. */
#include "cli/cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "repo/lock.h"
#include "util/error.h"

#define DECLARE_COMMAND(id) extern const cr_command cr_cmd_##id __attribute__((weak));
CR_COMMANDS(DECLARE_COMMAND)
#undef DECLARE_COMMAND

#define LIST_COMMAND(id) &cr_cmd_##id,
static const cr_command *const commands[] = {CR_COMMANDS(LIST_COMMAND)};
#undef LIST_COMMAND

volatile int cr_interrupted;
volatile int cr_soft_signals, cr_soft_stop_requested;

/* Seconds a command gets after SIGINT/SIGTERM to stop by itself (it polls
 * cr_interrupted and cleans up); after that, or at a second signal, the
 * signal thread removes our lock files and exits 130.  A command blocked in
 * a system call (a write to a pipe nobody reads) is stopped this way. */
#define CR_INTERRUPT_GRACE_SECONDS 3

static void *signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig;
    if (sigwait(set, &sig) != 0) return NULL;
    if (cr_soft_signals) {
        /* a workspace backup finishes its snapshot; a second signal stops it */
        cr_soft_stop_requested = 1;
        if (sigwait(set, &sig) != 0) return NULL;
    }
    cr_interrupted = 1;
    struct timespec grace = {CR_INTERRUPT_GRACE_SECONDS, 0};
    siginfo_t info;
    while (sigtimedwait(set, &info, &grace) < 0 && errno == EINTR) {}
    cr_cli_restore_terminal();
    cr_lock_remove_all_held();
    fflush(stdout);
    _exit(CR_EXIT_INTERRUPTED);
}

/* Block the signals in every thread and let one thread wait for them. */
static void install_signal_handlers(void)
{
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, signal_thread, &set) == 0) pthread_detach(t);
    signal(SIGPIPE, SIG_IGN);
}

static const cr_command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const cr_command *c = commands[i];
        if (c && !strcmp(c->name, name)) return c;
    }
    return NULL;
}

static void print_main_usage(FILE *f)
{
    fprintf(f, "crestic is a fast, native client for restic repositories.\n\n"
               "Usage:\n  crestic [command]\n\nAvailable Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i]) fprintf(f, "  %-14s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "  %-14s %s\n", "help", "Help about any command");
    fprintf(f, "\nUse \"crestic [command] --help\" for more information about a command.\n");
}

/* Global flags may precede the command: find the first positional word,
 * skipping values of global flags that take one. */
static int locate_command(int argc, char **argv)
{
    static const char *const with_value[] = {"-r", "--repo", "--repository-file", "-p", "--password-file",
        "--password-command", "--key-hint", "--retry-lock", "--cache-dir", "-o", "--option", "--limit-upload",
        "--limit-download", "--cacert", "--tls-client-cert", "--pack-size", "--compression", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') return i;
        if (!strcmp(a, "--")) return i + 1 < argc ? i + 1 : -1;
        for (const char *const *w = with_value; *w; w++)
            if (!strcmp(a, *w)) {
                i++;
                break;
            }
    }
    return -1;
}

static int run_personality(const char *prog, int argc, char **argv)
{
    const cr_command *c = NULL;
    if (!strcmp(prog, "restic-backup")) c = find_command("workspace-backup");
    else if (!strcmp(prog, "restic-restore")) c = find_command("workspace-restore");
    if (!c) {
        fprintf(stderr, "%s: not available in this build yet\n", prog);
        return CR_EXIT_FAILURE;
    }
    cr_global g = {.progname = prog};
    int rc = c->run(&g, argc - 1, argv + 1);
    cr_strv_free(&g.options);
    return rc;
}

int main(int argc, char **argv)
{
    install_signal_handlers();
    const char *prog = strrchr(argv[0], '/');
    prog = prog ? prog + 1 : argv[0];
    if (!strcmp(prog, "restic-backup") || !strcmp(prog, "restic-restore"))
        return run_personality(prog, argc, argv);

    int ci = locate_command(argc, argv);
    if (ci < 0) {
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--version")) return find_command("version")->run(&(cr_global){0}, 0, argv);
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                print_main_usage(stdout);
                return CR_EXIT_OK;
            }
        }
        print_main_usage(argc > 1 ? stderr : stdout);
        return argc > 1 ? CR_EXIT_FAILURE : CR_EXIT_OK;
    }
    const char *name = argv[ci];
    if (!strcmp(name, "help")) {
        const cr_command *c = ci + 1 < argc ? find_command(argv[ci + 1]) : NULL;
        if (c) {
            char *h[] = {"--help", NULL};
            cr_global g = {.progname = "crestic"};
            return c->run(&g, 1, h);
        }
        print_main_usage(stdout);
        return CR_EXIT_OK;
    }
    const cr_command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "Error: unknown command \"%s\" for \"crestic\"\nRun 'crestic --help' for usage.\n", name);
        return CR_EXIT_FAILURE;
    }
    /* Hand the command everything but argv[0] and its own name, global flags included. */
    char **args = calloc((size_t)argc, sizeof *args);
    if (!args) return CR_EXIT_FAILURE;
    int n = 0;
    for (int i = 1; i < argc; i++)
        if (i != ci) args[n++] = argv[i];
    cr_global g = {.progname = "crestic"};
    int rc = c->run(&g, n, args);
    cr_strv_free(&g.options); /* -o values point into argv; the vector is ours */
    free(args);
    fflush(stdout);
    if (ferror(stdout)) return CR_EXIT_FAILURE;
    return rc;
}
