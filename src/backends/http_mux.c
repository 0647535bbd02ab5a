/* One connection to an abstract unix socket, HTTP/2 multiplexed by a curl
 * multi handle that a thread of its own drives; requesting threads hand in
 * their easy handle and wait until the transfer is done.  (libcurl 7.88
 * cannot take a socket connected by the caller: it connects even when told
 * CURL_SOCKOPT_ALREADY_CONNECTED, hence the socket name.) */
#include "backends/http_mux.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/error.h"

#define POLL_MS 1000
/* The connection must never be dropped for idleness: it cannot be reopened. */
#define NEVER_TOO_OLD_SECONDS 0x7fffffffL

typedef struct job {
    CURL *c;
    CURLcode rc;
    bool done;
    struct job *next;
} job;

struct cr_http_mux {
    cr_http_stream stream;
    char *socket_name;
    CURLM *multi;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t done;
    job *queue; /* handed in, not yet added to the multi handle */
    bool stop;
    bool opened; /* the one connection was made */
    bool closed; /* ... and closed again */
    int fd;      /* its socket while open, else -1 (mux thread only) */
};

/* ---- socket callbacks (run on the mux thread) ------------------------------ */

/* The first connection is the only one: later attempts mean it was lost. */
static curl_socket_t open_stream(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    cr_http_mux *m = ud;
    (void)purpose;
    pthread_mutex_lock(&m->lock);
    bool first = !m->opened;
    m->opened = true;
    if (!first) m->closed = true;
    pthread_mutex_unlock(&m->lock);
    if (!first) return CURL_SOCKET_BAD;
    m->fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    return m->fd;
}

static int close_stream(void *ud, curl_socket_t fd)
{
    cr_http_mux *m = ud;
    pthread_mutex_lock(&m->lock);
    m->closed = true;
    pthread_mutex_unlock(&m->lock);
    if (fd == m->fd) m->fd = -1;
    return close(fd);
}

void cr_http_mux_setup(cr_http_mux *m, CURL *c)
{
    curl_easy_setopt(c, CURLOPT_ABSTRACT_UNIX_SOCKET, m->socket_name);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_stream);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, m);
    curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, close_stream);
    curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, m);
    /* HTTP/2 with prior knowledge makes the connection; requests that reuse it
     * ask for plain HTTP/2, as libcurl before 8.0 would otherwise stack a
     * second HTTP/2 layer on it (curl issue 10634: framing-layer errors). */
    pthread_mutex_lock(&m->lock);
    bool opened = m->opened;
    pthread_mutex_unlock(&m->lock);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, opened ? (long)CURL_HTTP_VERSION_2_0 : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L); /* wait for the one connection, never open another */
    curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, NEVER_TOO_OLD_SECONDS);
}

/* ---- the thread ------------------------------------------------------------- */

static void add_queued(cr_http_mux *m)
{
    pthread_mutex_lock(&m->lock);
    job *q = m->queue;
    m->queue = NULL;
    pthread_mutex_unlock(&m->lock);
    for (job *j = q, *next; j; j = next) {
        next = j->next;
        curl_easy_setopt(j->c, CURLOPT_PRIVATE, j);
        CURLMcode mc = curl_multi_add_handle(m->multi, j->c);
        if (mc != CURLM_OK) {
            pthread_mutex_lock(&m->lock);
            j->rc = CURLE_OUT_OF_MEMORY;
            j->done = true;
            pthread_cond_broadcast(&m->done);
            pthread_mutex_unlock(&m->lock);
        }
    }
}

/* libcurl notices a connection the peer closed only when it next uses it;
 * a failed transfer asks at once, so that the caller does not retry. */
static void check_peer(cr_http_mux *m)
{
    struct pollfd pfd = {.fd = m->fd, .events = POLLRDHUP};
    if (m->fd < 0 || poll(&pfd, 1, 0) != 1 || !(pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) return;
    pthread_mutex_lock(&m->lock);
    m->closed = true;
    pthread_mutex_unlock(&m->lock);
}

static void finish_done(cr_http_mux *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        job *j = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(m->multi, msg->easy_handle);
        if (rc != CURLE_OK) check_peer(m);
        pthread_mutex_lock(&m->lock);
        j->rc = rc;
        j->done = true;
        pthread_cond_broadcast(&m->done);
        pthread_mutex_unlock(&m->lock);
    }
}

static void *run(void *arg)
{
    cr_http_mux *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        bool stop = m->stop;
        pthread_mutex_unlock(&m->lock);
        if (stop) break;
        add_queued(m);
        int running;
        curl_multi_perform(m->multi, &running);
        finish_done(m);
        curl_multi_poll(m->multi, NULL, 0, POLL_MS, NULL);
    }
    return NULL;
}

/* ---- context ---------------------------------------------------------------- */

int cr_http_mux_new(const cr_http_stream *stream, cr_http_mux **out)
{
    cr_http_mux *m = calloc(1, sizeof *m);
    if (!m) return cr_error(-ENOMEM, "out of memory");
    m->stream = *stream;
    m->stream.abstract_socket = NULL;
    m->fd = -1;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->done, NULL);
    m->multi = curl_multi_init();
    m->socket_name = strdup(stream->abstract_socket);
    int r = m->multi && m->socket_name ? 0 : cr_error(-ENOMEM, "out of memory");
    if (r == 0) {
        curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
        curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
        int e = pthread_create(&m->thread, NULL, run, m);
        if (e) r = cr_error_sys(-e, "cannot start the HTTP/2 stream thread");
        else m->thread_started = true;
    }
    if (r < 0) {
        cr_http_mux_free(m);
        return r;
    }
    *out = m;
    return 0;
}

void cr_http_mux_free(cr_http_mux *m)
{
    if (!m) return;
    if (m->thread_started) {
        pthread_mutex_lock(&m->lock);
        m->stop = true;
        pthread_mutex_unlock(&m->lock);
        curl_multi_wakeup(m->multi);
        pthread_join(m->thread, NULL);
    }
    if (m->multi) curl_multi_cleanup(m->multi); /* closes the connection: close_stream() */
    free(m->socket_name);
    pthread_cond_destroy(&m->done);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

CURLcode cr_http_mux_perform(cr_http_mux *m, CURL *c)
{
    job j = {.c = c};
    pthread_mutex_lock(&m->lock);
    j.next = m->queue;
    m->queue = &j;
    pthread_mutex_unlock(&m->lock);
    curl_multi_wakeup(m->multi);
    pthread_mutex_lock(&m->lock);
    while (!j.done) pthread_cond_wait(&m->done, &m->lock);
    pthread_mutex_unlock(&m->lock);
    return j.rc;
}

bool cr_http_mux_closed(cr_http_mux *m)
{
    pthread_mutex_lock(&m->lock);
    bool closed = m->closed;
    pthread_mutex_unlock(&m->lock);
    return closed;
}

int cr_http_mux_closed_error(cr_http_mux *m)
{
    if (m->stream.closed) return m->stream.closed(m->stream.ud);
    return cr_error(-EPIPE, "the connection was closed and cannot be reopened");
}
