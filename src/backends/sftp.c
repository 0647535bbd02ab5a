/* SFTP backend (spec §23.3): restic's local layout on an SFTP server reached
 * through the user's own ssh (`ssh HOST [-p PORT] [-l USER] -s sftp`), so
 * ssh's config, agent, keys and known_hosts apply.  We speak SFTP v3 over
 * ssh's stdin/stdout ourselves (sftp_proto.h).
 *
 * One ssh process per backend.  Any number of threads make requests on it at
 * once: each request has an id and a waiting slot in a table; one reader
 * thread reads every reply and hands it to its slot.  Reads and writes of
 * objects are pipelined (many chunk requests in flight), so throughput does
 * not wait on round trips.  When ssh exits or closes its output, every
 * waiting request fails with ssh's exit status; nothing hangs.
 *
 * Location: sftp:[user@]host:path or sftp://[user@]host[:port]/path (a path
 * of "//abs" is absolute).  Options: sftp.command, sftp.args, sftp.connections. */
#include "backends/backend.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "backends/http.h" /* --limit-upload/--limit-download */
#include "backends/sftp_proto.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/id.h"

extern char **environ;

#define DEFAULT_CONNECTIONS 5
/* Chunk size for READ/WRITE when the server does not tell its limits; every
 * server must accept 32 KiB of data in a message. */
#define SAFE_CHUNK (32u * 1024u)
#define MAX_CHUNK (255u * 1024u)
/* Bytes of READ/WRITE requests in flight per load or save. */
#define WINDOW_BYTES (8u * 1024u * 1024u)
#define MAX_WINDOW 64

/* ---- connection: ssh process, reader thread, request table -------------------- */

typedef struct pending {
    uint32_t id;
    bool done;
    uint8_t *msg; /* the reply (type byte onwards), owned */
    size_t len;
    struct pending *next;
} pending;

typedef struct {
    pid_t pid;
    int to_ssh, from_ssh;
    pthread_t reader;
    bool reader_running;

    pthread_mutex_t mu; /* guards everything below, and the pending list */
    pthread_cond_t cv;
    pending *waiting;
    uint32_t next_id;
    bool dead;          /* no more replies will come */
    char dead_msg[256]; /* why, for every request that fails because of it */
    bool reaped;
    int wstatus;

    pthread_mutex_t write_mu; /* one message at a time on ssh's stdin */
    sftp_version ver;
    uint32_t chunk;
} sftp_conn;

static int read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -errno;
        if (k == 0) return -EPIPE;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void describe_exit(int wstatus, char *out, size_t n)
{
    if (WIFEXITED(wstatus)) snprintf(out, n, "ssh command exited: exit status %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus)) snprintf(out, n, "ssh command exited: killed by signal %d (%s)", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
    else snprintf(out, n, "ssh command exited");
}

/* Reaps ssh if it exits within wait_ms; the caller holds no lock. */
static void reap(sftp_conn *c, int wait_ms)
{
    for (int waited = 0;; waited += 20) {
        int st;
        pid_t r = waitpid(c->pid, &st, WNOHANG);
        if (r == c->pid || (r < 0 && errno == ECHILD)) {
            pthread_mutex_lock(&c->mu);
            c->reaped = true;
            c->wstatus = r == c->pid ? st : 0;
            pthread_mutex_unlock(&c->mu);
            return;
        }
        if (waited >= wait_ms) return;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ssh's output ended or made no sense: fail every waiting and future request. */
static void mark_dead(sftp_conn *c, const char *why)
{
    reap(c, 2000);
    pthread_mutex_lock(&c->mu);
    if (!c->dead) {
        char status[128] = "";
        if (c->reaped) describe_exit(c->wstatus, status, sizeof status);
        if (why && c->reaped) snprintf(c->dead_msg, sizeof c->dead_msg, "%s (%s)", why, status);
        else if (why) snprintf(c->dead_msg, sizeof c->dead_msg, "%s", why);
        else if (c->reaped) snprintf(c->dead_msg, sizeof c->dead_msg, "%s", status);
        else snprintf(c->dead_msg, sizeof c->dead_msg, "ssh closed the connection");
        c->dead = true;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Reads one message; its length is checked against SFTP_MAX_MESSAGE. */
static int read_message(int fd, uint8_t **msg, size_t *len, char *why, size_t why_n)
{
    uint8_t hdr[4];
    int r = read_full(fd, hdr, 4);
    if (r < 0) {
        if (r != -EPIPE) snprintf(why, why_n, "reading from ssh: %s", strerror(-r));
        return r;
    }
    uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (n < 5 || n > SFTP_MAX_MESSAGE) {
        snprintf(why, why_n, "sftp: received a message of %u bytes (starting \"%c%c%c%c\"); does a login script on the server print text?",
                 n, hdr[0] >= 32 && hdr[0] < 127 ? hdr[0] : '.', hdr[1] >= 32 && hdr[1] < 127 ? hdr[1] : '.',
                 hdr[2] >= 32 && hdr[2] < 127 ? hdr[2] : '.', hdr[3] >= 32 && hdr[3] < 127 ? hdr[3] : '.');
        return -EPROTO;
    }
    uint8_t *m = malloc(n);
    if (!m) {
        snprintf(why, why_n, "out of memory");
        return -ENOMEM;
    }
    r = read_full(fd, m, n);
    if (r < 0) {
        free(m);
        snprintf(why, why_n, "reading from ssh: %s", r == -EPIPE ? "message cut short" : strerror(-r));
        return r;
    }
    *msg = m;
    *len = n;
    return 0;
}

static void deliver(sftp_conn *c, uint8_t *msg, size_t len)
{
    uint32_t id = (uint32_t)msg[1] << 24 | (uint32_t)msg[2] << 16 | (uint32_t)msg[3] << 8 | msg[4];
    pthread_mutex_lock(&c->mu);
    pending **pp = &c->waiting;
    while (*pp && (*pp)->id != id) pp = &(*pp)->next;
    pending *p = *pp;
    if (p) { /* else: a request nobody waits for (abandoned, or a CLOSE sent without waiting) */
        *pp = p->next;
        p->msg = msg;
        p->len = len;
        p->done = true;
        msg = NULL;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    free(msg);
}

static void *reader_main(void *arg)
{
    sftp_conn *c = arg;
    char why[200] = "";
    for (;;) {
        uint8_t *msg;
        size_t len;
        if (read_message(c->from_ssh, &msg, &len, why, sizeof why) < 0) break;
        deliver(c, msg, len);
    }
    mark_dead(c, why[0] ? why : NULL);
    return NULL;
}

/* The error for a request that can get no answer. */
static int dead_error(sftp_conn *c)
{
    pthread_mutex_lock(&c->mu);
    char msg[sizeof c->dead_msg];
    memcpy(msg, c->dead_msg, sizeof msg);
    pthread_mutex_unlock(&c->mu);
    return cr_error(-EIO, "%s", msg);
}

/* Writes a whole message (iov) to ssh.  A dead ssh gives EPIPE (SIGPIPE is
 * blocked in this thread for the write, and a pending one is consumed), then
 * the reader thread's verdict with ssh's exit status. */
static int write_message(sftp_conn *c, struct iovec *iov, int n)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int r = 0;
    pthread_mutex_lock(&c->write_mu);
    while (n > 0 && r == 0) {
        ssize_t k = writev(c->to_ssh, iov, n);
        if (k < 0) {
            if (errno != EINTR) r = -errno;
            continue;
        }
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    pthread_mutex_unlock(&c->write_mu);
    if (r == -EPIPE) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r == 0) return 0;
    if (!c->reader_running) return cr_error_sys(r, "writing to ssh");
    /* ssh is gone: its output ends too, wait (bounded) for the reader's verdict */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&c->mu);
    while (!c->dead && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0) {}
    bool dead = c->dead;
    pthread_mutex_unlock(&c->mu);
    if (dead) return dead_error(c);
    return cr_error_sys(r, "writing to ssh");
}

/* Registers p under a fresh id (patched into msg at offset 5) and sends it.
 * extra/extra_len: bytes sent after msg (WRITE data). */
static int send_request(sftp_conn *c, pending *p, cr_buf *msg, const void *extra, size_t extra_len)
{
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        pthread_mutex_unlock(&c->mu);
        return dead_error(c);
    }
    memset(p, 0, sizeof *p);
    p->id = c->next_id++;
    p->next = c->waiting;
    c->waiting = p;
    pthread_mutex_unlock(&c->mu);
    uint8_t *idp = msg->data + 5;
    idp[0] = (uint8_t)(p->id >> 24);
    idp[1] = (uint8_t)(p->id >> 16);
    idp[2] = (uint8_t)(p->id >> 8);
    idp[3] = (uint8_t)p->id;
    struct iovec iov[2] = {{msg->data, msg->len}, {(void *)extra, extra_len}};
    int r = write_message(c, iov, extra_len ? 2 : 1);
    if (r < 0) { /* unregister: nobody will wait for it */
        pthread_mutex_lock(&c->mu);
        for (pending **pp = &c->waiting; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        pthread_mutex_unlock(&c->mu);
        free(p->msg);
        p->msg = NULL;
    }
    return r;
}

/* Waits for p's reply and decodes it into *rep (pointing into p->msg; free
 * with release()). */
static int wait_reply(sftp_conn *c, pending *p, sftp_reply *rep)
{
    pthread_mutex_lock(&c->mu);
    while (!p->done && !c->dead) pthread_cond_wait(&c->cv, &c->mu);
    bool done = p->done;
    if (!done) /* dead: take it off the table */
        for (pending **pp = &c->waiting; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
    pthread_mutex_unlock(&c->mu);
    if (!done) return dead_error(c);
    return sftp_parse_reply(p->msg, p->len, rep);
}

static void release(pending *p)
{
    free(p->msg);
    p->msg = NULL;
}

/* Stops waiting for p: its reply, if it comes, is dropped by the reader. */
static void abandon(sftp_conn *c, pending *p)
{
    pthread_mutex_lock(&c->mu);
    if (!p->done)
        for (pending **pp = &c->waiting; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
    pthread_mutex_unlock(&c->mu);
    release(p);
}

static int status_errno(uint32_t code)
{
    switch (code) {
    case SFTP_FX_NO_SUCH_FILE: return -ENOENT;
    case SFTP_FX_PERMISSION_DENIED: return -EACCES;
    case SFTP_FX_OP_UNSUPPORTED: return -ENOTSUP;
    default: return -EIO;
    }
}

/* A STATUS reply that is not OK, or an unexpected reply type, as an error. */
static int reply_error(const sftp_reply *rep, const char *op, const char *path)
{
    if (rep->type != SFTP_STATUS) return cr_error(CR_E_FORMAT, "%s %s: unexpected reply of type %u", op, path, rep->type);
    int code = status_errno(rep->status);
    if (rep->msg_len)
        return cr_error(code, "%s %s: %.*s (%s)", op, path, (int)rep->msg_len, rep->msg, sftp_status_name(rep->status));
    return cr_error(code, "%s %s: %s", op, path, sftp_status_name(rep->status));
}

/* One request, one reply.  *rep points into p's message: release(p) after use. */
static int roundtrip(sftp_conn *c, pending *p, cr_buf *msg, sftp_reply *rep)
{
    CR_TRY(send_request(c, p, msg, NULL, 0));
    int r = wait_reply(c, p, rep);
    if (r < 0) release(p);
    return r;
}

/* A request answered by STATUS: 0 for OK, else the error. */
static int simple_request(sftp_conn *c, cr_buf *msg, const char *op, const char *path)
{
    pending p;
    sftp_reply rep;
    CR_TRY(roundtrip(c, &p, msg, &rep));
    int r = rep.type == SFTP_STATUS && rep.status == SFTP_FX_OK ? 0 : reply_error(&rep, op, path);
    release(&p);
    return r;
}

/* ---- starting ssh -------------------------------------------------------------- */

/* Pipe ends never 0-2 (dup2 onto themselves would keep O_CLOEXEC), ours close on exec. */
static int make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0) return -errno;
    for (int i = 0; i < 2; i++)
        if (fds[i] < 3) {
            int f = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            if (f < 0) return -errno;
            close(fds[i]);
            fds[i] = f;
        }
    return 0;
}

/* ssh runs in its own process group (a Ctrl-C reaches crestic first, which
 * then stops cleanly), with default signal handling and an empty mask. */
static int spawn_ssh(char **argv, int child_in, int child_out, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, child_in, 0);
    posix_spawn_file_actions_adddup2(&fa, child_out, 1);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTTIN, SIGTTOU, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&defaults, sigs[i]);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &defaults);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int r = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (r != 0) return cr_error(-r, "unable to start the program \"%s\": %s", argv[0], strerror(r));
    return 0;
}

/* While ssh logs in it may ask for a password or passphrase on the terminal:
 * if we own the terminal's foreground, hand it to ssh's process group until
 * the SFTP session is up (as restic does). */
typedef struct {
    int tty;
    pid_t prev;
    struct sigaction ttou, ttin;
} foreground;

static void foreground_give(foreground *fg, pid_t child)
{
    fg->tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fg->tty < 0) return;
    fg->prev = tcgetpgrp(fg->tty);
    if (fg->prev != getpgrp()) {
        close(fg->tty);
        fg->tty = -1;
        return;
    }
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGTTOU, &ign, &fg->ttou); /* tcsetpgrp from the background would stop us */
    sigaction(SIGTTIN, &ign, &fg->ttin);
    if (tcsetpgrp(fg->tty, child) == 0) kill(-child, SIGCONT); /* in case it tried the tty too early */
}

static void foreground_take_back(foreground *fg)
{
    if (fg->tty < 0) return;
    tcsetpgrp(fg->tty, fg->prev);
    sigaction(SIGTTOU, &fg->ttou, NULL);
    sigaction(SIGTTIN, &fg->ttin, NULL);
    close(fg->tty);
    fg->tty = -1;
}

/* INIT / VERSION, before the reader thread runs. */
static int handshake(sftp_conn *c)
{
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_init(&msg));
    struct iovec iov = {msg.data, msg.len};
    int r = write_message(c, &iov, 1);
    if (r < 0 && r != -EPIPE) return r; /* EPIPE: ssh is gone, the read below says why */
    uint8_t *reply = NULL;
    size_t len;
    char why[200] = "";
    r = read_message(c->from_ssh, &reply, &len, why, sizeof why);
    if (r < 0) {
        mark_dead(c, why[0] ? why : NULL);
        return cr_error_ctx(dead_error(c), "unable to start the sftp session");
    }
    r = sftp_parse_version(reply, len, &c->ver);
    free(reply);
    if (r < 0) return cr_error_ctx(r, "unable to start the sftp session");
    if (c->ver.version < SFTP_PROTOCOL_VERSION)
        return cr_error(CR_E_UNSUPPORTED, "sftp: the server speaks protocol version %u, version 3 is needed", c->ver.version);
    return 0;
}

/* Chunk size from limits@openssh.com when offered. */
static int pick_chunk(sftp_conn *c)
{
    c->chunk = SAFE_CHUNK;
    if (!c->ver.limits) return 0;
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_limits(&msg, 0));
    pending p;
    sftp_reply rep;
    CR_TRY(roundtrip(c, &p, &msg, &rep));
    sftp_limits lim;
    if (rep.type == SFTP_EXTENDED_REPLY && sftp_parse_limits(rep.data, rep.data_len, &lim) == 0) {
        uint64_t m = MAX_CHUNK; /* a limit of 0 means none */
        if (lim.max_read && lim.max_read < m) m = lim.max_read;
        if (lim.max_write && lim.max_write < m) m = lim.max_write;
        if (lim.max_packet) m = lim.max_packet <= 1024 ? 0 : lim.max_packet - 1024 < m ? lim.max_packet - 1024 : m;
        if (m > SAFE_CHUNK) c->chunk = (uint32_t)m;
    }
    cr_error_clear();
    release(&p);
    return 0;
}

static void conn_free(sftp_conn *c)
{
    if (!c) return;
    if (c->to_ssh >= 0) close(c->to_ssh); /* ssh sees EOF, ends the session and exits */
    if (c->reader_running) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 3;
        if (pthread_timedjoin_np(c->reader, NULL, &until) != 0) {
            kill(c->pid, SIGTERM);
            pthread_join(c->reader, NULL);
        }
    } else if (c->pid > 0) {
        reap(c, 1000);
        if (!c->reaped) {
            kill(c->pid, SIGTERM);
            reap(c, 2000);
        }
    }
    if (c->pid > 0 && !c->reaped) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    if (c->from_ssh >= 0) close(c->from_ssh);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->write_mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static int conn_start(char **argv, sftp_conn **out)
{
    sftp_conn *c = calloc(1, sizeof *c);
    if (!c) return cr_error(-ENOMEM, "out of memory");
    c->to_ssh = c->from_ssh = -1;
    c->next_id = 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->write_mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    int in[2] = {-1, -1}, outp[2] = {-1, -1};
    int r = make_pipe(in);
    if (r == 0) r = make_pipe(outp);
    if (r < 0) r = cr_error_sys(r, "pipe");
    foreground fg = {.tty = -1};
    if (r == 0) r = spawn_ssh(argv, in[0], outp[1], &c->pid);
    if (in[0] >= 0) close(in[0]);
    if (outp[1] >= 0) close(outp[1]);
    c->to_ssh = in[1];
    c->from_ssh = outp[0];
    if (r == 0) {
        foreground_give(&fg, c->pid);
        r = handshake(c);
        foreground_take_back(&fg);
    }
    if (r == 0) {
        r = pthread_create(&c->reader, NULL, reader_main, c);
        if (r != 0) r = cr_error(-r, "cannot start a thread: %s", strerror(r));
        else c->reader_running = true;
    }
    if (r == 0) r = pick_chunk(c);
    if (r < 0) {
        conn_free(c);
        return r;
    }
    *out = c;
    return 0;
}

/* ---- the backend ------------------------------------------------------------------ */

typedef struct {
    cr_backend base;
    sftp_conn *conn;
    char *root; /* repository folder on the server, no trailing '/' */
    uint32_t file_mode, dir_mode;
} sftp_backend;

static sftp_backend *as_sftp(cr_backend *b)
{
    return (sftp_backend *)b;
}

static int check_name(cr_filetype t, const char *name)
{
    if (t == CR_FILE_CONFIG) return 0;
    if (!name || !name[0] || name[0] == '.' || strchr(name, '/'))
        return cr_error(-EINVAL, "invalid object name \"%s\"", name ? name : "");
    return 0;
}

/* root/config, root/data/XX/name, root/<type>/name. */
static int object_path(sftp_backend *sb, cr_filetype t, const char *name, char **out)
{
    CR_TRY(check_name(t, name));
    int n;
    if (t == CR_FILE_CONFIG) n = asprintf(out, "%s/config", sb->root);
    else if (t == CR_FILE_PACK) n = asprintf(out, "%s/data/%.2s/%s", sb->root, name, name);
    else n = asprintf(out, "%s/%s/%s", sb->root, cr_filetype_dir(t), name);
    if (n < 0) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static int do_stat(sftp_conn *c, uint8_t type, const char *path, sftp_attrs *a)
{
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_path_op(&msg, type, 0, SFTP_STR(path)));
    pending p;
    sftp_reply rep;
    CR_TRY(roundtrip(c, &p, &msg, &rep));
    int r = 0;
    if (rep.type == SFTP_ATTRS) *a = rep.attrs;
    else if (rep.type == SFTP_STATUS && rep.status == SFTP_FX_NO_SUCH_FILE) r = -ENOENT;
    else r = reply_error(&rep, "stat", path);
    release(&p);
    return r;
}

static int sftp_stat(cr_backend *b, cr_filetype t, const char *name, uint64_t *size)
{
    sftp_backend *sb = as_sftp(b);
    _cleanup_free_ char *path = NULL;
    CR_TRY(object_path(sb, t, name, &path));
    sftp_attrs a;
    CR_TRY(do_stat(sb->conn, SFTP_LSTAT, path, &a));
    if (!(a.flags & SFTP_ATTR_SIZE)) return cr_error(-EIO, "stat %s: the server sent no size", path);
    *size = a.size;
    return 0;
}

/* OPEN or OPENDIR; the handle is copied to h. */
static int open_handle(sftp_conn *c, cr_buf *msg, const char *op, const char *path, uint8_t h[SFTP_MAX_HANDLE], size_t *hlen)
{
    pending p;
    sftp_reply rep;
    CR_TRY(roundtrip(c, &p, msg, &rep));
    int r = 0;
    if (rep.type == SFTP_HANDLE) {
        memcpy(h, rep.data, rep.data_len);
        *hlen = rep.data_len;
    } else {
        r = reply_error(&rep, op, path);
    }
    release(&p);
    return r;
}

/* CLOSE; with wait=false the reply is not awaited (the reader drops it). */
static int close_handle(sftp_conn *c, const uint8_t *h, size_t hlen, bool wait, const char *path)
{
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_handle_op(&msg, SFTP_CLOSE, 0, (sftp_str){h, hlen}));
    if (wait) return simple_request(c, &msg, "close", path);
    pending p;
    int r = send_request(c, &p, &msg, NULL, 0);
    if (r == 0) abandon(c, &p);
    return r;
}

/* ---- pipelined transfers -------------------------------------------------------- */

typedef struct {
    pending p;
    bool busy;
    uint64_t off;
    uint32_t len;
} slot;

typedef struct {
    sftp_conn *c;
    const uint8_t *h;
    size_t hlen;
    const char *path;
    uint64_t next, end; /* next offset to request, end of the range */
    slot slots[MAX_WINDOW];
    unsigned nslots;
    cr_buf msg;
} transfer;

static unsigned window_slots(uint32_t chunk)
{
    unsigned n = WINDOW_BYTES / chunk;
    return n < 4 ? 4 : n > MAX_WINDOW ? MAX_WINDOW : n;
}

static void transfer_abandon(transfer *t)
{
    for (unsigned i = 0; i < t->nslots; i++)
        if (t->slots[i].busy) {
            abandon(t->c, &t->slots[i].p);
            t->slots[i].busy = false;
        }
    cr_buf_free(&t->msg);
}

static int send_read(transfer *t, slot *s, uint64_t off, uint32_t len)
{
    cr_buf_reset(&t->msg);
    CR_TRY(sftp_encode_read(&t->msg, 0, (sftp_str){t->h, t->hlen}, off, len));
    s->off = off;
    s->len = len;
    CR_TRY(send_request(t->c, &s->p, &t->msg, NULL, 0));
    s->busy = true;
    return 0;
}

static uint32_t next_len(transfer *t)
{
    uint64_t left = t->end - t->next;
    return left < t->c->chunk ? (uint32_t)left : t->c->chunk;
}

/* Handles one READ reply: data lands at dst[s->off - base]; a short answer
 * asks again for the rest. */
static int read_done(transfer *t, slot *s, uint8_t *dst, uint64_t base)
{
    sftp_reply rep;
    s->busy = false;
    int r = wait_reply(t->c, &s->p, &rep);
    if (r < 0) {
        release(&s->p);
        return cr_error_ctx(r, "read %s", t->path);
    }
    if (rep.type == SFTP_STATUS && rep.status == SFTP_FX_EOF)
        r = cr_error(-EIO, "read %s: unexpected end of file at offset %llu (wanted %llu bytes from offset %llu)", t->path,
                     (unsigned long long)s->off, (unsigned long long)(t->end - base), (unsigned long long)base);
    else if (rep.type != SFTP_DATA) r = reply_error(&rep, "read", t->path);
    else if (rep.data_len > s->len) r = cr_error(-EIO, "read %s: server sent %zu bytes for %u", t->path, rep.data_len, s->len);
    else if (rep.data_len == 0) r = cr_error(-EIO, "read %s: server sent no data", t->path);
    size_t got = r == 0 ? rep.data_len : 0;
    if (r == 0) memcpy(dst + (s->off - base), rep.data, got);
    release(&s->p);
    if (r == 0 && !cr_http_limit_wait(false, got)) r = cr_error(CR_E_INTERRUPTED, "interrupted");
    if (r < 0) return r;
    if (got < s->len) return send_read(t, s, s->off + got, s->len - (uint32_t)got);
    if (t->next < t->end) {
        uint32_t n = next_len(t);
        CR_TRY(send_read(t, s, t->next, n));
        t->next += n;
    }
    return 0;
}

static int read_range(transfer *t, uint8_t *dst)
{
    uint64_t base = t->next;
    for (unsigned i = 0; i < t->nslots && t->next < t->end; i++) {
        uint32_t n = next_len(t);
        CR_TRY(send_read(t, &t->slots[i], t->next, n));
        t->next += n;
    }
    for (bool any = true; any;) { /* round-robin: replies come roughly in order */
        any = false;
        for (unsigned i = 0; i < t->nslots; i++) {
            if (!t->slots[i].busy) continue;
            any = true;
            CR_TRY(read_done(t, &t->slots[i], dst, base));
        }
    }
    return 0;
}

static int file_size(sftp_conn *c, const uint8_t *h, size_t hlen, const char *path, uint64_t *size)
{
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_handle_op(&msg, SFTP_FSTAT, 0, (sftp_str){h, hlen}));
    pending p;
    sftp_reply rep;
    CR_TRY(roundtrip(c, &p, &msg, &rep));
    int r = 0;
    if (rep.type != SFTP_ATTRS) r = reply_error(&rep, "stat", path);
    else if (!(rep.attrs.flags & SFTP_ATTR_SIZE)) r = cr_error(-EIO, "stat %s: the server sent no size", path);
    else *size = rep.attrs.size;
    release(&p);
    return r;
}

static int load_open(sftp_backend *sb, const char *path, uint8_t h[SFTP_MAX_HANDLE], size_t *hlen)
{
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_open(&msg, 0, SFTP_STR(path), SFTP_READ_FLAG, -1));
    return open_handle(sb->conn, &msg, "open", path, h, hlen);
}

static int sftp_load(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out)
{
    sftp_backend *sb = as_sftp(b);
    _cleanup_free_ char *path = NULL;
    CR_TRY(object_path(sb, t, name, &path));
    uint8_t h[SFTP_MAX_HANDLE];
    size_t hlen;
    CR_TRY(load_open(sb, path, h, &hlen));
    int r = 0;
    if (len == 0) {
        uint64_t size = 0;
        r = file_size(sb->conn, h, hlen, path, &size);
        if (r == 0 && size < off) r = cr_error(-EIO, "read %s: offset %llu beyond end of file (%llu bytes)", path, (unsigned long long)off, (unsigned long long)size);
        if (r == 0) len = size - off;
    }
    if (r == 0 && len > SIZE_MAX / 2) r = cr_error(-EFBIG, "%s: object too large", path);
    if (r == 0) {
        cr_buf_reset(out);
        r = cr_buf_resize(out, (size_t)len);
    }
    if (r == 0 && len > 0) {
        transfer tr = {.c = sb->conn, .h = h, .hlen = hlen, .path = path, .next = off, .end = off + len,
                       .nslots = window_slots(sb->conn->chunk)};
        r = read_range(&tr, out->data);
        transfer_abandon(&tr);
    }
    int rc = close_handle(sb->conn, h, hlen, false, path);
    return r < 0 ? r : rc;
}

/* ---- save ----------------------------------------------------------------------------- */

static int write_done(transfer *t, slot *s, const uint8_t *src, uint64_t base);

static int send_write(transfer *t, slot *s, const uint8_t *src, uint64_t base, uint64_t off, uint32_t len)
{
    cr_buf_reset(&t->msg);
    CR_TRY(sftp_encode_write_header(&t->msg, 0, (sftp_str){t->h, t->hlen}, off, len));
    s->off = off;
    s->len = len;
    if (!cr_http_limit_wait(true, len)) return cr_error(CR_E_INTERRUPTED, "interrupted");
    CR_TRY(send_request(t->c, &s->p, &t->msg, src + (off - base), len));
    s->busy = true;
    return 0;
}

static int write_done(transfer *t, slot *s, const uint8_t *src, uint64_t base)
{
    sftp_reply rep;
    s->busy = false;
    int r = wait_reply(t->c, &s->p, &rep);
    if (r < 0) {
        release(&s->p);
        return cr_error_ctx(r, "write %s", t->path);
    }
    r = rep.type == SFTP_STATUS && rep.status == SFTP_FX_OK ? 0 : reply_error(&rep, "write", t->path);
    release(&s->p);
    if (r < 0 || t->next >= t->end) return r;
    uint32_t n = next_len(t);
    CR_TRY(send_write(t, s, src, base, t->next, n));
    t->next += n;
    return 0;
}

static int write_all(transfer *t, const uint8_t *src)
{
    uint64_t base = t->next;
    for (unsigned i = 0; i < t->nslots && t->next < t->end; i++) {
        uint32_t n = next_len(t);
        CR_TRY(send_write(t, &t->slots[i], src, base, t->next, n));
        t->next += n;
    }
    for (bool any = true; any;) {
        any = false;
        for (unsigned i = 0; i < t->nslots; i++) {
            if (!t->slots[i].busy) continue;
            any = true;
            CR_TRY(write_done(t, &t->slots[i], src, base));
        }
    }
    return 0;
}

/* After MKDIR failed with err: 0 when path is a folder anyway, else err
 * with its message. */
static int exists_as_dir(sftp_conn *c, const char *path, int err)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cr_error_message());
    sftp_attrs a;
    if (do_stat(c, SFTP_STAT, path, &a) == 0 && (a.flags & SFTP_ATTR_PERMISSIONS) && S_ISDIR(a.permissions)) {
        cr_error_clear();
        return 0;
    }
    return cr_error(err, "%s", msg);
}

/* MKDIR of each missing folder from the top down (as mkdir -p). */
static int mkdir_all(sftp_backend *sb, const char *dir)
{
    sftp_attrs a;
    int r = do_stat(sb->conn, SFTP_STAT, dir, &a);
    if (r == 0) {
        if ((a.flags & SFTP_ATTR_PERMISSIONS) && !S_ISDIR(a.permissions)) return cr_error(-ENOTDIR, "mkdir %s: not a directory", dir);
        return 0;
    }
    if (r != -ENOENT) return r;
    const char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        _cleanup_free_ char *parent = strndup(dir, (size_t)(slash - dir));
        if (!parent) return cr_error(-ENOMEM, "out of memory");
        CR_TRY(mkdir_all(sb, parent));
    }
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_with_perm(&msg, SFTP_MKDIR, 0, SFTP_STR(dir), sb->dir_mode));
    r = simple_request(sb->conn, &msg, "mkdir", dir);
    return r < 0 ? exists_as_dir(sb->conn, dir, r) : 0; /* made by someone else meanwhile? */
}

static int random_suffix(char out[33])
{
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return cr_error_sys(-errno, "getrandom");
    cr_hex_encode(rnd, sizeof rnd, out);
    return 0;
}

/* Creates "<path>-restic-temp-<random>" (as restic names them), making the
 * folder when it is missing. */
static int create_temp(sftp_backend *sb, const char *path, char **tmp, uint8_t h[SFTP_MAX_HANDLE], size_t *hlen)
{
    char sfx[33];
    CR_TRY(random_suffix(sfx));
    if (asprintf(tmp, "%s-restic-temp-%s", path, sfx) < 0) {
        *tmp = NULL;
        return cr_error(-ENOMEM, "out of memory");
    }
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_open(&msg, 0, SFTP_STR(*tmp), SFTP_WRITE_FLAG | SFTP_CREAT | SFTP_EXCL, (int)sb->file_mode));
    int r = open_handle(sb->conn, &msg, "create", *tmp, h, hlen);
    if (r != -ENOENT) return r;
    _cleanup_free_ char *dir = strndup(path, (size_t)(strrchr(path, '/') - path));
    if (!dir) return cr_error(-ENOMEM, "out of memory");
    cr_error_clear();
    CR_TRY(mkdir_all(sb, dir));
    return open_handle(sb->conn, &msg, "create", *tmp, h, hlen);
}

/* Read-only like restic's saved files (0400, 0440 in group-readable repos);
 * a server that cannot change modes is fine. */
static int send_chmod(sftp_backend *sb, const uint8_t *h, size_t hlen, pending *p)
{
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_with_perm(&msg, SFTP_FSETSTAT, 0, (sftp_str){h, hlen}, sb->file_mode & ~0222u));
    return send_request(sb->conn, p, &msg, NULL, 0);
}

static int chmod_done(sftp_conn *c, pending *p, const char *path)
{
    sftp_reply rep;
    CR_TRY(wait_reply(c, p, &rep));
    int r = 0;
    if (!(rep.type == SFTP_STATUS && (rep.status == SFTP_FX_OK || rep.status == SFTP_FX_OP_UNSUPPORTED)))
        r = reply_error(&rep, "chmod", path);
    release(p);
    return r;
}

static int write_temp(sftp_backend *sb, const uint8_t *h, size_t hlen, const char *tmp, const void *data, size_t n)
{
    pending chmod;
    CR_TRY(send_chmod(sb, h, hlen, &chmod));
    transfer tr = {.c = sb->conn, .h = h, .hlen = hlen, .path = tmp, .next = 0, .end = n, .nslots = window_slots(sb->conn->chunk)};
    int r = write_all(&tr, data);
    transfer_abandon(&tr);
    if (r < 0) {
        abandon(sb->conn, &chmod);
        return r;
    }
    return chmod_done(sb->conn, &chmod, tmp);
}

static int rename_temp(sftp_backend *sb, const char *tmp, const char *path)
{
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_rename(&msg, 0, SFTP_STR(tmp), SFTP_STR(path), sb->conn->ver.posix_rename));
    return simple_request(sb->conn, &msg, "rename", tmp);
}

static void remove_quietly(sftp_conn *c, const char *path)
{
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    if (sftp_encode_path_op(&msg, SFTP_REMOVE, 0, SFTP_STR(path)) < 0) return;
    pending p;
    sftp_reply rep;
    if (roundtrip(c, &p, &msg, &rep) == 0) release(&p);
}

/* Write a temporary file, close it (the server reports write errors by
 * then), rename it to the final name: nobody sees a partial object. */
static int sftp_save(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n)
{
    sftp_backend *sb = as_sftp(b);
    _cleanup_free_ char *path = NULL, *tmp = NULL;
    CR_TRY(object_path(sb, t, name, &path));
    uint8_t h[SFTP_MAX_HANDLE];
    size_t hlen;
    CR_TRY(create_temp(sb, path, &tmp, h, &hlen));
    int r = write_temp(sb, h, hlen, tmp, data, n);
    int rc = close_handle(sb->conn, h, hlen, true, tmp);
    if (r == 0) r = rc;
    if (r == 0) r = rename_temp(sb, tmp, path);
    if (r < 0) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", cr_error_message());
        remove_quietly(sb->conn, tmp);
        cr_error(r, "%s", saved);
    }
    return r;
}

static int sftp_remove(cr_backend *b, cr_filetype t, const char *name)
{
    sftp_backend *sb = as_sftp(b);
    _cleanup_free_ char *path = NULL;
    CR_TRY(object_path(sb, t, name, &path));
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    CR_TRY(sftp_encode_path_op(&msg, SFTP_REMOVE, 0, SFTP_STR(path)));
    int r = simple_request(sb->conn, &msg, "remove", path);
    if (r == -ENOENT) {
        cr_error_clear();
        return 0;
    }
    return r;
}

/* ---- list ----------------------------------------------------------------------------- */

typedef int (*entry_fn)(void *ud, const sftp_name_entry *e, const char *name);

/* fn for each entry of a NAME reply; a non-zero return of fn stops. */
static int each_entry(const sftp_reply *rep, entry_fn fn, void *ud)
{
    sftp_name_iter it;
    sftp_name_iter_init(&it, rep);
    sftp_name_entry e;
    int k;
    while ((k = sftp_name_next(&it, &e)) == 1) {
        char name[256];
        if (e.name_len >= sizeof name || memchr(e.name, 0, e.name_len)) continue; /* never one of ours */
        memcpy(name, e.name, e.name_len);
        name[e.name_len] = 0;
        int r = fn(ud, &e, name);
        if (r != 0) return r;
    }
    return k;
}

/* Listing several folders at once: up to DIR_WINDOW of them have a request
 * in flight (OPENDIR, then READDIR until EOF), so a listing of data/00..ff
 * costs a few round trips, not hundreds. */
#define DIR_WINDOW 16

typedef struct {
    const char *path;
    pending p;
    bool busy; /* a request in flight */
    bool open; /* h is a handle of the server */
    uint8_t h[SFTP_MAX_HANDLE];
    size_t hlen;
} dir_slot;

static int dir_send(sftp_conn *c, dir_slot *d, cr_buf *msg)
{
    cr_buf_reset(msg);
    CR_TRY(d->open ? sftp_encode_handle_op(msg, SFTP_READDIR, 0, (sftp_str){d->h, d->hlen})
                   : sftp_encode_path_op(msg, SFTP_OPENDIR, 0, SFTP_STR(d->path)));
    CR_TRY(send_request(c, &d->p, msg, NULL, 0));
    d->busy = true;
    return 0;
}

/* Takes d's reply: entries go to fn (whose non-zero return is passed on);
 * *finished when the folder is done (or missing: empty), else the next
 * request is out. */
static int dir_step(sftp_conn *c, dir_slot *d, cr_buf *msg, entry_fn fn, void *ud, bool *finished)
{
    sftp_reply rep;
    d->busy = false;
    *finished = false;
    int r = wait_reply(c, &d->p, &rep);
    if (r < 0) {
        release(&d->p);
        return r;
    }
    if (!d->open && rep.type == SFTP_HANDLE) {
        memcpy(d->h, rep.data, rep.data_len);
        d->hlen = rep.data_len;
        d->open = true;
    } else if (!d->open && rep.type == SFTP_STATUS && rep.status == SFTP_FX_NO_SUCH_FILE) {
        *finished = true;
    } else if (d->open && rep.type == SFTP_NAME) {
        r = each_entry(&rep, fn, ud);
    } else if (d->open && rep.type == SFTP_STATUS && rep.status == SFTP_FX_EOF) {
        *finished = true;
    } else {
        r = reply_error(&rep, d->open ? "read directory" : "open directory", d->path);
    }
    release(&d->p);
    if (r != 0 || *finished) return r;
    return dir_send(c, d, msg);
}

/* Ends d: waits for its request in flight (a handle that comes back is
 * closed too), closes its handle without waiting. */
static void dir_end(sftp_conn *c, dir_slot *d)
{
    if (d->busy) {
        sftp_reply rep;
        d->busy = false;
        if (wait_reply(c, &d->p, &rep) == 0 && !d->open && rep.type == SFTP_HANDLE) {
            memcpy(d->h, rep.data, rep.data_len);
            d->hlen = rep.data_len;
            d->open = true;
        }
        release(&d->p);
    }
    if (d->open) close_handle(c, d->h, d->hlen, false, d->path);
    d->open = false;
}

/* fn for every entry of every folder in dirs (in no particular order); a
 * missing folder is empty; a non-zero return of fn stops and is returned. */
static int read_dirs(sftp_conn *c, char *const *dirs, size_t n, entry_fn fn, void *ud)
{
    dir_slot slots[DIR_WINDOW];
    memset(slots, 0, sizeof slots);
    cr_buf msg = CR_BUF_INIT;
    size_t next = 0;
    int r = 0;
    for (unsigned i = 0; i < DIR_WINDOW && next < n && r == 0; i++) {
        slots[i].path = dirs[next++];
        r = dir_send(c, &slots[i], &msg);
    }
    for (bool any = true; any && r == 0;) {
        any = false;
        for (unsigned i = 0; i < DIR_WINDOW && r == 0; i++) {
            dir_slot *d = &slots[i];
            if (!d->busy) continue;
            any = true;
            bool finished;
            r = dir_step(c, d, &msg, fn, ud, &finished);
            if (r != 0 || !finished) continue;
            dir_end(c, d);
            if (next < n) {
                d->path = dirs[next++];
                r = dir_send(c, d, &msg);
            }
        }
    }
    char saved[1024]; /* the cleanup below must not replace the message */
    snprintf(saved, sizeof saved, "%s", cr_error_message());
    for (unsigned i = 0; i < DIR_WINDOW; i++) dir_end(c, &slots[i]);
    cr_buf_free(&msg);
    if (r < 0) return cr_error(r, "%s", saved);
    cr_error_clear();
    return r;
}

typedef struct {
    cr_list_cb cb;
    void *ud;
} list_ctx;

static int on_object(void *ud, const sftp_name_entry *e, const char *name)
{
    list_ctx *l = ud;
    if (!cr_is_hex_name(name, strlen(name))) return 0; /* temporary files, junk */
    if ((e->attrs.flags & SFTP_ATTR_PERMISSIONS) && !S_ISREG(e->attrs.permissions)) return 0;
    if (!(e->attrs.flags & SFTP_ATTR_SIZE)) return cr_error(-EIO, "list: the server sent no size for %s", name);
    return l->cb(l->ud, name, e->attrs.size);
}

typedef struct {
    char **names;
    size_t n;
} subdirs;

static int on_data_dir(void *ud, const sftp_name_entry *e, const char *name)
{
    subdirs *s = ud;
    if (strlen(name) != 2 || !strchr("0123456789abcdef", name[0]) || !strchr("0123456789abcdef", name[1])) return 0;
    char **v = realloc(s->names, (s->n + 1) * sizeof *v);
    if (!v) return cr_error(-ENOMEM, "out of memory");
    s->names = v;
    if (!(v[s->n] = strdup(name))) return cr_error(-ENOMEM, "out of memory");
    s->n++;
    return 0;
}

static int sftp_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud)
{
    sftp_backend *sb = as_sftp(b);
    if (t == CR_FILE_CONFIG) return 0;
    _cleanup_free_ char *dir = NULL;
    if (asprintf(&dir, "%s/%s", sb->root, cr_filetype_dir(t)) < 0) return cr_error(-ENOMEM, "out of memory");
    list_ctx l = {cb, ud};
    if (t != CR_FILE_PACK) return read_dirs(sb->conn, &dir, 1, on_object, &l);
    /* data/XX/: the folder names first, then the folders */
    subdirs s = {0};
    int r = read_dirs(sb->conn, &dir, 1, on_data_dir, &s);
    for (size_t i = 0; r == 0 && i < s.n; i++) {
        char *sub = NULL;
        if (asprintf(&sub, "%s/%s", dir, s.names[i]) < 0) r = cr_error(-ENOMEM, "out of memory");
        else {
            free(s.names[i]);
            s.names[i] = sub;
        }
    }
    if (r == 0) r = read_dirs(sb->conn, s.names, s.n, on_object, &l);
    for (size_t i = 0; i < s.n; i++) free(s.names[i]);
    free(s.names);
    return r;
}

/* ---- open / create / close ------------------------------------------------------------ */

static void sftp_close(cr_backend *b)
{
    sftp_backend *sb = as_sftp(b);
    conn_free(sb->conn);
    free(sb->root);
    free(b->location);
    free(sb);
}

static int start(const char *loc, sftp_backend **out)
{
    sftp_location l;
    CR_TRY(sftp_parse_location(loc, &l));
    char **argv = NULL;
    int r = sftp_ssh_argv(&l, cr_backend_option("sftp", "command"), cr_backend_option("sftp", "args"), &argv);
    sftp_backend *sb = r == 0 ? calloc(1, sizeof *sb) : NULL;
    if (r == 0 && !sb) r = cr_error(-ENOMEM, "out of memory");
    if (r == 0) r = cr_backend_option_uint("sftp", "connections", DEFAULT_CONNECTIONS, 1, 128, &sb->base.connections);
    if (r == 0) {
        sb->root = CR_TAKE_PTR(l.path);
        size_t n = strlen(sb->root);
        if (n > 1 && sb->root[n - 1] == '/') sb->root[n - 1] = 0;
        sb->file_mode = 0600;
        sb->dir_mode = 0700;
        r = conn_start(argv, &sb->conn);
    }
    sftp_argv_free(argv);
    sftp_location_free(&l);
    if (r < 0) {
        if (sb) sftp_close(&sb->base);
        return r;
    }
    *out = sb;
    return 0;
}

/* New files and folders are group-readable when config is (restic). */
static void derive_modes(sftp_backend *sb)
{
    _cleanup_free_ char *path = NULL;
    sftp_attrs a;
    if (object_path(sb, CR_FILE_CONFIG, NULL, &path) < 0 || do_stat(sb->conn, SFTP_LSTAT, path, &a) < 0) {
        cr_error_clear();
        return;
    }
    if ((a.flags & SFTP_ATTR_PERMISSIONS) && (a.permissions & 0040)) {
        sb->file_mode |= 0060;
        sb->dir_mode |= 0070;
    }
}

static int sftp_open(const char *loc, cr_backend **out)
{
    sftp_backend *sb;
    CR_TRY(start(loc, &sb));
    derive_modes(sb);
    *out = &sb->base;
    return 0;
}

/* MKDIR of the 5 type folders and data/00..ff, pipelined. */
static int make_layout(sftp_backend *sb)
{
    static const char *const top[] = {"data", "index", "keys", "locks", "snapshots"};
    enum { N = 5 + 256 };
    char **paths = calloc(N, sizeof *paths);
    pending *p = calloc(N, sizeof *p);
    bool *sent = calloc(N, sizeof *sent);
    _cleanup_buf_ cr_buf msg = CR_BUF_INIT;
    int r = paths && p && sent ? 0 : cr_error(-ENOMEM, "out of memory");
    for (int i = 0; r == 0 && i < N; i++) {
        int k = i < 5 ? asprintf(&paths[i], "%s/%s", sb->root, top[i]) : asprintf(&paths[i], "%s/data/%02x", sb->root, i - 5);
        if (k < 0) {
            paths[i] = NULL;
            r = cr_error(-ENOMEM, "out of memory");
        }
    }
    /* the five first (data/XX need data/), then the rest */
    for (int phase = 0; r == 0 && phase < 2; phase++) {
        int from = phase ? 5 : 0, to = phase ? N : 5;
        for (int i = from; r == 0 && i < to; i++) {
            cr_buf_reset(&msg);
            r = sftp_encode_with_perm(&msg, SFTP_MKDIR, 0, SFTP_STR(paths[i]), sb->dir_mode);
            if (r == 0) r = send_request(sb->conn, &p[i], &msg, NULL, 0);
            sent[i] = r == 0;
        }
        for (int i = from; i < to; i++) {
            if (!sent[i]) continue;
            sent[i] = false;
            sftp_reply rep;
            if (r < 0) {
                abandon(sb->conn, &p[i]);
                continue;
            }
            r = wait_reply(sb->conn, &p[i], &rep);
            int err = r == 0 && !(rep.type == SFTP_STATUS && rep.status == SFTP_FX_OK) ? reply_error(&rep, "mkdir", paths[i]) : 0;
            release(&p[i]);
            if (err < 0) r = exists_as_dir(sb->conn, paths[i], err);
        }
    }
    for (int i = 0; paths && i < N; i++) free(paths[i]);
    free(paths);
    free(p);
    free(sent);
    return r;
}

static int sftp_create(const char *loc, cr_backend **out)
{
    sftp_backend *sb;
    CR_TRY(start(loc, &sb));
    _cleanup_free_ char *config = NULL;
    sftp_attrs a;
    int r = object_path(sb, CR_FILE_CONFIG, NULL, &config);
    if (r == 0) {
        r = do_stat(sb->conn, SFTP_LSTAT, config, &a);
        if (r == 0) r = cr_error(-EEXIST, "config file already exists");
        else if (r == -ENOENT) r = 0;
    }
    if (r == 0) r = mkdir_all(sb, sb->root);
    if (r == 0) r = make_layout(sb);
    if (r < 0) {
        sftp_close(&sb->base);
        return r;
    }
    *out = &sb->base;
    return 0;
}

const cr_backend_ops cr_backend_sftp = {
    .scheme = "sftp",
    .open = sftp_open,
    .create = sftp_create,
    .close = sftp_close,
    .stat = sftp_stat,
    .load = sftp_load,
    .save = sftp_save,
    .remove = sftp_remove,
    .list = sftp_list,
    .options = (const char *const[]){"command", "args", "connections", NULL},
};
