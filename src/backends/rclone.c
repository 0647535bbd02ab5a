/* rclone backend: as restic does, start `rclone serve restic --stdio REMOTE`
 * and speak restic's REST protocol to it over HTTP/2 on its stdin/stdout.
 * Its stdin and stdout are the accepted end of libcurl's one connection to
 * an abstract unix socket (see cr_http_stream).  Location: rclone:REMOTE
 * (e.g. rclone:b2:bucket/path or rclone:/local/dir).  Options: rclone.program,
 * rclone.args, rclone.connections, rclone.timeout (restic's names and
 * defaults). */
#include "backends/backend.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/http.h"
#include "backends/optparse.h"
#include "backends/rest_proto.h"
#include "util/cleanup.h"
#include "util/error.h"

extern char **environ;

#define DEFAULT_PROGRAM "rclone"
#define DEFAULT_ARGS "serve restic --stdio --b2-hard-delete"
#define DEFAULT_CONNECTIONS 5
#define DEFAULT_TIMEOUT_SECONDS 60
/* For URLs and messages only: requests go over the one stdio connection. */
#define BASE_URL "http://rclone"
/* At close: time for rclone to exit after its stdin closed, then after SIGTERM. */
#define EXIT_WAIT_SECONDS 5.0
#define TERM_WAIT_SECONDS 2.0
/* After the connection closed: time for rclone to finish exiting, for its status. */
#define CLOSED_WAIT_SECONDS 2.0
/* rclone's stderr: longest line passed on whole; time to wait for the rest at close. */
#define RELAY_LINE_MAX 4096
#define RELAY_DRAIN_SECONDS 1.0

typedef struct {
    cr_rest_backend rest; /* first: the REST protocol code works on it */
    cr_http_stream stream;
    char socket_name[64];  /* abstract unix socket libcurl connects to */
    int listen_fd;
    cr_strlist argv;       /* program, args, remote */
    unsigned timeout;      /* seconds for rclone to answer at all (0: no limit) */
    pthread_t starter;
    bool starter_running;
    pthread_mutex_t lock;  /* guards the fields below */
    bool stop_starter;
    int start_error;       /* the starter's failure: code and message */
    char start_message[512];
    pid_t pid;             /* 0 until started */
    bool reaped;
    int status;            /* waitpid() status once reaped */
    bool answered;         /* rclone answered the first request */
    struct stderr_relay_s *relay; /* set by the starter thread, read after it ended */
    pthread_t relay_thread;
} rclone_backend;

static rclone_backend *as_rclone(cr_backend *b)
{
    return (rclone_backend *)b;
}

/* ---- the child ------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reap the child, waiting up to `seconds`; true once it is reaped.  Caller holds lock. */
static bool reap_within(rclone_backend *rb, double seconds)
{
    double end = now_seconds() + seconds;
    while (!rb->reaped) {
        pid_t p = waitpid(rb->pid, &rb->status, WNOHANG);
        if (p == rb->pid || (p < 0 && errno != EINTR)) {
            rb->reaped = true;
            if (p < 0) rb->status = 0;
            break;
        }
        if (now_seconds() >= end) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return rb->reaped;
}

static void describe_exit(int status, char *out, size_t n)
{
    if (WIFEXITED(status)) snprintf(out, n, "rclone exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(out, n, "rclone was killed by signal %d", WTERMSIG(status));
    else snprintf(out, n, "rclone ended");
}

/* cr_http_stream.closed: the connection is gone, say why. */
static int connection_closed(void *ud)
{
    rclone_backend *rb = ud;
    pthread_mutex_lock(&rb->lock);
    if (rb->pid <= 0) {
        pthread_mutex_unlock(&rb->lock);
        return cr_error(-EPIPE, "connection to rclone lost: rclone did not start");
    }
    bool ended = reap_within(rb, CLOSED_WAIT_SECONDS);
    char why[96];
    if (ended) describe_exit(rb->status, why, sizeof why);
    pthread_mutex_unlock(&rb->lock);
    if (ended) return cr_error(-EPIPE, "connection to rclone lost: %s", why);
    return cr_error(-EPIPE, "connection to rclone lost (rclone is still running)");
}

/* An fd that dup2() onto 0, 1 or 2 cannot clobber (crestic may have been
 * started with a standard stream closed); -1 on failure. */
static int above_stdio(int fd)
{
    if (fd < 0 || fd > STDERR_FILENO) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    close(fd);
    return moved;
}

/* The child's stdin and stdout are `sock`, its stderr `err`; its own process
 * group keeps a terminal's Ctrl-C for crestic, which then ends it in order. */
static int spawn_child(char *const *argv, int sock, int err, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGHUP);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, sock, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, sock, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err, STDERR_FILENO);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int e = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (e) return cr_error_sys(-e, "cannot run %s", argv[0]);
    return 0;
}

/* rclone sees EOF once libcurl's connection is closed and should exit within
 * `grace` seconds; else its process group gets TERM, then KILL.  Always reaped. */
static void end_child(rclone_backend *rb, double grace)
{
    pthread_mutex_lock(&rb->lock);
    if (rb->pid > 0 && !reap_within(rb, grace)) {
        kill(-rb->pid, SIGTERM);
        if (!reap_within(rb, TERM_WAIT_SECONDS)) {
            kill(-rb->pid, SIGKILL);
            reap_within(rb, 1e9);
        }
    }
    pthread_mutex_unlock(&rb->lock);
}

/* ---- starting rclone on libcurl's connection ------------------------------- */

/* A listening abstract unix socket with a random name. */
static int make_listener(rclone_backend *rb)
{
    unsigned char rnd[12];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return cr_error_sys(-errno, "getrandom");
    int n = snprintf(rb->socket_name, sizeof rb->socket_name, "crestic-rclone-%ld-", (long)getpid());
    for (size_t i = 0; i < sizeof rnd; i++) n += snprintf(rb->socket_name + n, sizeof rb->socket_name - (size_t)n, "%02x", rnd[i]);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path + 1, rb->socket_name, (size_t)n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    rb->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rb->listen_fd < 0) return cr_error_sys(-errno, "socket");
    if (bind(rb->listen_fd, (struct sockaddr *)&sa, len) < 0 || listen(rb->listen_fd, 4) < 0)
        return cr_error_sys(-errno, "cannot listen on a unix socket for rclone");
    return 0;
}

/* ---- rclone's stderr, passed on line by line with a "rclone: " prefix ------
 * (as restic does).  The relay thread owns its state with the backend: a
 * descendant of rclone that keeps the pipe open must not hold up close(),
 * which then leaves the thread to finish alone. */

typedef struct stderr_relay_s {
    int fd;
    atomic_int refs;
    atomic_bool done;
} stderr_relay;

static void relay_unref(stderr_relay *sr)
{
    if (atomic_fetch_sub(&sr->refs, 1) == 1) {
        close(sr->fd);
        free(sr);
    }
}

static void emit_line(const char *p, size_t n)
{
    char out[sizeof "rclone: " + RELAY_LINE_MAX + 1];
    int len = snprintf(out, sizeof out, "rclone: %.*s\n", (int)n, p);
    if (len > 0 && write(STDERR_FILENO, out, (size_t)len) < 0) return; /* nowhere to report it */
}

static void *relay_run(void *arg)
{
    stderr_relay *sr = arg;
    char buf[RELAY_LINE_MAX];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(sr->fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\n') {
                emit_line(buf + start, i - start);
                start = i + 1;
            }
        if (start == 0 && len == sizeof buf) start = len, emit_line(buf, len); /* an overlong line: in parts */
        memmove(buf, buf + start, len - start);
        len -= start;
    }
    if (len) emit_line(buf, len);
    atomic_store(&sr->done, true);
    relay_unref(sr);
    return NULL;
}

static int start_relay(rclone_backend *rb, int fd)
{
    stderr_relay *sr = calloc(1, sizeof *sr);
    if (!sr) {
        close(fd);
        return cr_error(-ENOMEM, "out of memory");
    }
    sr->fd = fd;
    atomic_init(&sr->refs, 2);
    atomic_init(&sr->done, false);
    int e = pthread_create(&rb->relay_thread, NULL, relay_run, sr);
    if (e) {
        free(sr);
        close(fd);
        return cr_error_sys(-e, "cannot start a thread");
    }
    rb->relay = sr;
    return 0;
}

/* After rclone is reaped: the rest of its output, briefly waited for. */
static void stop_relay(rclone_backend *rb)
{
    if (!rb->relay) return;
    double end = now_seconds() + RELAY_DRAIN_SECONDS;
    while (!atomic_load(&rb->relay->done) && now_seconds() < end) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&rb->relay->done)) pthread_join(rb->relay_thread, NULL);
    else pthread_detach(rb->relay_thread);
    relay_unref(rb->relay);
    rb->relay = NULL;
}

/* Anyone on the machine may connect to an abstract socket: only a
 * connection from this very process is libcurl's. */
static bool from_this_process(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == getpid();
}

static bool starter_stopped(rclone_backend *rb)
{
    pthread_mutex_lock(&rb->lock);
    bool stop = rb->stop_starter;
    pthread_mutex_unlock(&rb->lock);
    return stop;
}

/* Wait for libcurl's connection; its accepted end becomes rclone's stdio. */
static int accept_and_spawn(rclone_backend *rb)
{
    for (;;) {
        if (starter_stopped(rb)) return cr_error(-ETIMEDOUT, "no connection to hand to rclone");
        struct pollfd pfd = {.fd = rb->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0) continue;
        int fd = above_stdio(accept4(rb->listen_fd, NULL, NULL, SOCK_CLOEXEC));
        if (fd < 0) continue;
        if (!from_this_process(fd)) {
            close(fd);
            continue;
        }
        pid_t pid = 0;
        int err[2];
        int r = pipe2(err, O_CLOEXEC) < 0 ? cr_error_sys(-errno, "pipe") : 0;
        if (r == 0 && ((err[0] = above_stdio(err[0])) < 0 || (err[1] = above_stdio(err[1])) < 0)) {
            r = cr_error_sys(-errno, "pipe");
            if (err[0] >= 0) close(err[0]);
            if (err[1] >= 0) close(err[1]);
        }
        if (r == 0) {
            r = spawn_child(rb->argv.v, fd, err[1], &pid);
            close(err[1]);
            if (r == 0) r = start_relay(rb, err[0]);
            else close(err[0]);
        }
        close(fd); /* a failed start thus ends libcurl's connection at once */
        pthread_mutex_lock(&rb->lock);
        rb->pid = pid;
        pthread_mutex_unlock(&rb->lock);
        return r;
    }
}

static void *starter(void *arg)
{
    rclone_backend *rb = arg;
    int r = accept_and_spawn(rb);
    if (r < 0) {
        pthread_mutex_lock(&rb->lock);
        rb->start_error = r;
        snprintf(rb->start_message, sizeof rb->start_message, "%s", cr_error_message());
        pthread_mutex_unlock(&rb->lock);
    }
    return NULL;
}

static void stop_starter(rclone_backend *rb)
{
    if (!rb->starter_running) return;
    pthread_mutex_lock(&rb->lock);
    rb->stop_starter = true;
    pthread_mutex_unlock(&rb->lock);
    pthread_join(rb->starter, NULL);
    rb->starter_running = false;
}

/* ---- options ---------------------------------------------------------------- */

/* program words + args words + the remote, NULL-terminated. */
static int build_argv(const char *remote, cr_strlist *argv)
{
    const char *program = cr_backend_option("rclone", "program");
    const char *args = cr_backend_option("rclone", "args");
    CR_TRY_CTX(cr_shell_split(program ? program : DEFAULT_PROGRAM, argv), "option rclone.program");
    if (argv->n == 0) return cr_error(CR_E_USAGE, "option rclone.program: no program given");
    CR_TRY_CTX(cr_shell_split(args ? args : DEFAULT_ARGS, argv), "option rclone.args");
    return cr_strlist_push(argv, remote);
}

static int timeout_setting(unsigned *seconds)
{
    const char *v = cr_backend_option("rclone", "timeout");
    double s = DEFAULT_TIMEOUT_SECONDS;
    if (v && cr_parse_go_duration(v, &s) < 0)
        return cr_error(CR_E_USAGE, "invalid value \"%s\" for option rclone.timeout: expected a duration such as 30s, 1m or 1h30m", v);
    /* 0 means no limit, as for restic's http.Client; otherwise whole seconds, at least one. */
    *seconds = s <= 0 ? 0 : s > 86400.0 * 365 ? 86400u * 365 : (unsigned)(s + 0.999);
    return 0;
}

/* ---- open / create / close ------------------------------------------------ */

static void rclone_close(cr_backend *b)
{
    rclone_backend *rb = as_rclone(b);
    stop_starter(rb);
    if (rb->listen_fd >= 0) close(rb->listen_fd);
    cr_http_free(rb->rest.http); /* closes the connection: rclone sees EOF */
    rb->rest.http = NULL;
    end_child(rb, rb->answered ? EXIT_WAIT_SECONDS : 0);
    stop_relay(rb);
    cr_strlist_free(&rb->argv);
    cr_rest_release(&rb->rest);
    pthread_mutex_destroy(&rb->lock);
    free(rb);
}

/* A request for an object that does not exist: any HTTP answer shows that
 * rclone is up (as restic checks it). */
static int probe(rclone_backend *rb)
{
    char url[96];
    snprintf(url, sizeof url, "%s/file-%lx%lx", BASE_URL, (unsigned long)getpid(), (unsigned long)time(NULL));
    static const char *const accept[] = {"Accept: application/vnd.x.restic.rest.v2", NULL};
    cr_http_req req = {.method = "GET", .url = url, .headers = accept, .timeout_seconds = rb->timeout};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    time_t t0 = time(NULL);
    int r = cr_http_request(rb->rest.http, &req, &resp);
    if (r < 0 && r != CR_E_INTERRUPTED && rb->timeout && time(NULL) - t0 >= (time_t)rb->timeout)
        r = cr_error_ctx(r, "rclone did not answer within %u s (option rclone.timeout)", rb->timeout);
    return cr_error_ctx(r, "error talking HTTP to rclone");
}

/* rclone is started when libcurl first connects, by the probe request. */
static int start(rclone_backend *rb, const char *remote)
{
    CR_TRY(build_argv(remote, &rb->argv));
    CR_TRY(timeout_setting(&rb->timeout));
    CR_TRY(make_listener(rb));
    int e = pthread_create(&rb->starter, NULL, starter, rb);
    if (e) return cr_error_sys(-e, "cannot start a thread");
    rb->starter_running = true;
    rb->stream = (cr_http_stream){.abstract_socket = rb->socket_name, .closed = connection_closed, .ud = rb};
    cr_http_config cfg = {.stream = &rb->stream};
    int r = cr_http_new(&cfg, &rb->rest.http);
    if (r == 0) r = probe(rb);
    stop_starter(rb);
    close(rb->listen_fd); /* nobody connects again */
    rb->listen_fd = -1;
    if (rb->start_error) return cr_error(rb->start_error, "%s", rb->start_message);
    rb->answered = r == 0;
    return r;
}

static int rclone_open(const char *remote, cr_backend **out)
{
    rclone_backend *rb = calloc(1, sizeof *rb);
    if (!rb) return cr_error(-ENOMEM, "out of memory");
    rb->listen_fd = -1;
    pthread_mutex_init(&rb->lock, NULL);
    int r = cr_backend_option_uint("rclone", "connections", DEFAULT_CONNECTIONS, 1, 128, &rb->rest.base.connections);
    if (r == 0 && (!(rb->rest.base_url = strdup(BASE_URL)) || asprintf(&rb->rest.base.location, "rclone:%s", remote) < 0)) {
        rb->rest.base.location = NULL;
        r = cr_error(-ENOMEM, "out of memory");
    }
    if (r == 0) r = start(rb, remote);
    if (r < 0) {
        rclone_close(&rb->rest.base);
        return r;
    }
    *out = &rb->rest.base;
    return 0;
}

static int rclone_create(const char *remote, cr_backend **out)
{
    cr_backend *b;
    CR_TRY(rclone_open(remote, &b));
    int r = cr_rest_create_layout(b);
    if (r < 0) {
        rclone_close(b);
        return r;
    }
    *out = b;
    return 0;
}

const cr_backend_ops cr_backend_rclone = {
    .scheme = "rclone",
    .open = rclone_open,
    .create = rclone_create,
    .close = rclone_close,
    .stat = cr_rest_stat,
    .load = cr_rest_load,
    .save = cr_rest_save,
    .remove = cr_rest_remove,
    .list = cr_rest_list,
    .options = (const char *const[]){"program", "args", "connections", "timeout", NULL},
};
