/* Repository locks (spec §14). */
#include "repo/lock.h"

#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

#define STALE_AFTER_SECONDS (30 * 60)
#define REFRESH_SECONDS (5 * 60)
#define CHECK_DELAY_NS (200 * 1000 * 1000)

/* How long after writing our lock file the second look waits.  restic
 * waits 200 ms, so that a lock written at the same time by another process
 * has become visible in listings.  Where the backend lists a saved file at
 * once, no wait is needed: of two processes that both missed the other on
 * their first look, the one that wrote its lock later looks again after
 * the other's lock is listed, so at least one of them sees the conflict
 * (an exclusive lock refuses any other lock, so that is enough).
 * CRESTIC_LOCK_CHECK_DELAY_MS sets the wait (tests: a backend that lists
 * late). */
static long check_delay_ns(const cr_repo *r)
{
    const char *env = getenv("CRESTIC_LOCK_CHECK_DELAY_MS");
    if (env && *env) {
        long ms = strtol(env, NULL, 10);
        return ms < 0 ? 0 : ms > 10000 ? 10000L * 1000 * 1000 : ms * 1000 * 1000;
    }
    return r->be->lists_at_once ? 0 : CHECK_DELAY_NS;
}

static void sleep_ns(long ns)
{
    struct timespec delay = {ns / 1000000000L, ns % 1000000000L};
    if (ns > 0) nanosleep(&delay, NULL);
}

int cr_lock_parse(const char *json, size_t n, cr_lock_info *l)
{
    memset(l, 0, sizeof *l);
    cr_json_doc *doc = NULL;
    CR_TRY_CTX(cr_json_parse(json, n, &doc), "lock");
    const cr_json *root = cr_json_root(doc);
    const cr_json *t = cr_json_get(root, "time"), *ex = cr_json_get(root, "exclusive");
    const cr_json *host = cr_json_get(root, "hostname"), *user = cr_json_get(root, "username");
    int r = 0;
    if (!cr_json_is(root, CR_JSON_OBJECT)) r = cr_error(CR_E_FORMAT, "lock: not a JSON object");
    else if (!cr_json_is(t, CR_JSON_STRING) || cr_time_parse(t->str, t->len, &l->time) < 0)
        r = cr_error(CR_E_FORMAT, "lock: invalid time");
    l->exclusive = cr_json_is(ex, CR_JSON_TRUE);
    if (r == 0) {
        l->hostname = cr_json_is(host, CR_JSON_STRING) ? strndup(host->str, host->len) : strdup("");
        l->username = cr_json_is(user, CR_JSON_STRING) ? strndup(user->str, user->len) : strdup("");
        if (!l->hostname || !l->username) r = cr_error(-ENOMEM, "out of memory");
    }
    const cr_json *pid = cr_json_get(root, "pid"), *uid = cr_json_get(root, "uid"), *gid = cr_json_get(root, "gid");
    if (r == 0 && !cr_json_is_nullish(pid) && cr_json_i64(pid, &l->pid) < 0) r = cr_error(CR_E_FORMAT, "lock: invalid pid");
    if (r == 0 && !cr_json_is_nullish(uid) && cr_json_u32(uid, &l->uid) < 0) r = cr_error(CR_E_FORMAT, "lock: invalid uid");
    if (r == 0 && !cr_json_is_nullish(gid) && cr_json_u32(gid, &l->gid) < 0) r = cr_error(CR_E_FORMAT, "lock: invalid gid");
    cr_json_free(doc);
    if (r < 0) cr_lock_clear(l);
    return r;
}

int cr_lock_encode(const cr_lock_info *l, cr_buf *b)
{
    CR_TRY(cr_buf_puts(b, "{\"time\":\""));
    CR_TRY(cr_time_format(b, &l->time));
    CR_TRY(cr_buf_printf(b, "\",\"exclusive\":%s,\"hostname\":", l->exclusive ? "true" : "false"));
    CR_TRY(cr_json_put_cstr(b, l->hostname ? l->hostname : ""));
    CR_TRY(cr_buf_puts(b, ",\"username\":"));
    CR_TRY(cr_json_put_cstr(b, l->username ? l->username : ""));
    CR_TRY(cr_buf_printf(b, ",\"pid\":%lld", (long long)l->pid));
    if (l->uid) CR_TRY(cr_buf_printf(b, ",\"uid\":%u", l->uid));
    if (l->gid) CR_TRY(cr_buf_printf(b, ",\"gid\":%u", l->gid));
    return cr_buf_putc(b, '}');
}

void cr_lock_clear(cr_lock_info *l)
{
    free(l->hostname);
    free(l->username);
    memset(l, 0, sizeof *l);
}

bool cr_lock_is_stale(const cr_lock_info *l, const char *this_host)
{
    time_t now = time(NULL);
    if (now - l->time.sec > STALE_AFTER_SECONDS) return true;
    if (this_host && l->hostname && !strcmp(l->hostname, this_host)) {
        /* Same host: the holder is gone if its PID is.  A PID that no process
         * can have (not positive, or beyond pid_t, which a cast would wrap
         * onto some other process) means it is gone too. */
        if (l->pid <= 0 || l->pid > INT_MAX) return true;
        if (kill((pid_t)l->pid, 0) < 0 && errno == ESRCH) return true;
    }
    return false;
}

/* ---- acquiring -------------------------------------------------------- */

struct cr_lock {
    struct cr_lock *next_held; /* the process-wide list of held locks */
    cr_repo *repo;
    cr_lock_info info;
    cr_id id;
    pthread_t refresher;
    bool refresher_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    bool exclusive;
    bool unconfirmed;  /* the second look is still to come (refresher) */
    int confirmed;     /* its outcome: 0 or CR_E_LOCKED */
    char conflict[512]; /* the message that goes with CR_E_LOCKED */
};

/* Every lock this process holds, so a signal can remove them all. */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static cr_lock *held;

static void hold(cr_lock *l)
{
    pthread_mutex_lock(&held_mu);
    l->next_held = held;
    held = l;
    pthread_mutex_unlock(&held_mu);
}

static void unhold(cr_lock *l)
{
    pthread_mutex_lock(&held_mu);
    for (cr_lock **p = &held; *p; p = &(*p)->next_held)
        if (*p == l) {
            *p = l->next_held;
            break;
        }
    pthread_mutex_unlock(&held_mu);
}

void cr_lock_remove_all_held(void)
{
    /* No unlock: the process exits right after; a stuck holder must not block us. */
    if (pthread_mutex_trylock(&held_mu) != 0) return;
    for (cr_lock *l = held; l; l = l->next_held) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&l->id, hex);
        cr_be_remove(l->repo->be, CR_FILE_LOCK, hex);
    }
}

static void fill_own_info(cr_lock_info *l, bool exclusive)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    struct passwd *pw = getpwuid(getuid());
    l->time = cr_time_now();
    l->exclusive = exclusive;
    l->hostname = strdup(host);
    l->username = strdup(pw ? pw->pw_name : "");
    l->pid = getpid();
    l->uid = getuid();
    l->gid = getgid();
}

static int describe_conflict(const cr_lock_info *other, const cr_id *id)
{
    char hex[CR_ID_HEX + 1], when[64];
    cr_id_to_hex(id, hex);
    time_t t = (time_t)other->time.sec;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    long age = (long)(time(NULL) - t);
    return cr_error(CR_E_LOCKED,
                    "unable to create lock in backend: repository is already locked %sby PID %lld on %s by %s (UID %u, GID %u)\n"
                    "lock was created at %s (%ldm%lds ago)\nstorage ID %.8s\n"
                    "the `unlock` command can be used to remove stale locks",
                    other->exclusive ? "exclusively " : "", (long long)other->pid, other->hostname, other->username,
                    other->uid, other->gid, when, age / 60, age % 60, hex);
}

/* Any lock other than ours that conflicts with the one we want?  Unreadable
 * and empty lock files are ignored, as restic 0.14 does. */
static int check_others(cr_repo *r, bool exclusive, const cr_id *own)
{
    cr_id *ids = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0;
    CR_TRY(cr_repo_list_ids(r, CR_FILE_LOCK, &ids, &sizes, &n));
    int e = 0;
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    for (size_t i = 0; e == 0 && i < n; i++) {
        if ((own && cr_id_eq(&ids[i], own)) || sizes[i] == 0) continue;
        cr_lock_info other;
        if (cr_repo_load_unpacked(r, CR_FILE_LOCK, &ids[i], &json) < 0 ||
            cr_lock_parse((const char *)json.data, json.len, &other) < 0)
            continue;
        if (exclusive || other.exclusive) e = describe_conflict(&other, &ids[i]);
        cr_lock_clear(&other);
    }
    free(ids);
    free(sizes);
    return e;
}

static int write_lock(cr_lock *l)
{
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_lock_encode(&l->info, &json));
    return cr_repo_save_unpacked(l->repo, CR_FILE_LOCK, json.data, json.len, &l->id);
}

static void remove_lock_file(cr_repo *r, const cr_id *id)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    cr_be_remove(r->be, CR_FILE_LOCK, hex);
}

static struct timespec deadline_after(long seconds, long ns)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += seconds;
    t.tv_nsec += ns;
    if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
    return t;
}

/* The deferred second look (lock.h), run by the refresher under l->mu:
 * skipped when the lock is released first (there is nothing left to guard). */
static void second_look(cr_lock *l)
{
    long delay = check_delay_ns(l->repo);
    struct timespec until = deadline_after(delay / 1000000000L, delay % 1000000000L);
    while (delay > 0 && !l->stopping && pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT) {}
    if (!l->stopping) {
        pthread_mutex_unlock(&l->mu);
        int e = check_others(l->repo, l->exclusive, &l->id);
        char msg[sizeof l->conflict];
        snprintf(msg, sizeof msg, "%s", e < 0 ? cr_error_message() : "");
        pthread_mutex_lock(&l->mu);
        l->confirmed = e;
        memcpy(l->conflict, msg, sizeof msg);
    }
    l->unconfirmed = false;
    pthread_cond_broadcast(&l->cv);
}

/* Every five minutes: write a fresh lock file, then delete the old one. */
static void *refresh_loop(void *arg)
{
    cr_lock *l = arg;
    pthread_mutex_lock(&l->mu);
    if (l->unconfirmed) second_look(l);
    while (!l->stopping) {
        struct timespec until = deadline_after(REFRESH_SECONDS, 0);
        while (!l->stopping && pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT) {}
        if (l->stopping) break;
        cr_id old = l->id;
        l->info.time = cr_time_now();
        if (write_lock(l) == 0) remove_lock_file(l->repo, &old);
        else fprintf(stderr, "warning: refreshing the repository lock failed: %s\n", cr_error_message());
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static int try_acquire_once(cr_repo *r, bool exclusive, cr_lock *l, bool defer)
{
    CR_TRY(check_others(r, exclusive, NULL));
    CR_TRY(write_lock(l));
    if (defer) return 0;
    /* Another process may have locked between our check and our write. */
    sleep_ns(check_delay_ns(r));
    int e = check_others(r, exclusive, &l->id);
    if (e < 0) remove_lock_file(r, &l->id);
    return e;
}

int cr_lock_acquire(cr_repo *r, bool exclusive, double retry_seconds, cr_lock **out)
{
    cr_lock *l = calloc(1, sizeof *l);
    if (!l) return cr_error(-ENOMEM, "out of memory");
    l->repo = r;
    fill_own_info(&l->info, exclusive);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->exclusive = exclusive;
    bool defer = !exclusive && retry_seconds <= 0;
    double waited = 0, backoff = 5;
    int e;
    while ((e = try_acquire_once(r, exclusive, l, defer)) == CR_E_LOCKED && waited < retry_seconds) {
        double step = backoff < retry_seconds - waited ? backoff : retry_seconds - waited;
        struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
        nanosleep(&ts, NULL);
        waited += step;
        backoff = backoff * 2 > 60 ? 60 : backoff * 2;
    }
    l->unconfirmed = e == 0 && defer;
    if (e == 0 && pthread_create(&l->refresher, NULL, refresh_loop, l) == 0) l->refresher_running = true;
    if (e == 0 && defer && !l->refresher_running) {
        l->unconfirmed = false; /* no thread for it: look now */
        sleep_ns(check_delay_ns(r));
        if ((e = check_others(r, exclusive, &l->id)) < 0) remove_lock_file(r, &l->id);
    }
    if (e == 0) hold(l);
    if (e == 0 && l->unconfirmed) r->unconfirmed = l;
    if (e < 0) {
        cr_lock_clear(&l->info);
        free(l);
        return e;
    }
    *out = l;
    return 0;
}

int cr_lock_confirm(cr_lock *l)
{
    if (!l) return 0;
    pthread_mutex_lock(&l->mu);
    while (l->unconfirmed) pthread_cond_wait(&l->cv, &l->mu);
    int e = l->confirmed;
    pthread_mutex_unlock(&l->mu);
    return e < 0 ? cr_error(e, "%s", l->conflict) : 0;
}

void cr_lock_release(cr_lock *l)
{
    if (!l) return;
    unhold(l);
    if (l->repo->unconfirmed == l) l->repo->unconfirmed = NULL;
    if (l->refresher_running) {
        pthread_mutex_lock(&l->mu);
        l->stopping = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->refresher, NULL);
    }
    remove_lock_file(l->repo, &l->id);
    cr_lock_clear(&l->info);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

int cr_lock_remove_stale(cr_repo *r, bool remove_all, size_t *removed)
{
    cr_id *ids = NULL;
    size_t n = 0;
    *removed = 0;
    CR_TRY(cr_repo_list_ids(r, CR_FILE_LOCK, &ids, NULL, &n));
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    int e = 0;
    for (size_t i = 0; e == 0 && i < n; i++) {
        cr_lock_info info;
        bool stale = remove_all;
        if (!stale) {
            /* An unreadable lock cannot be judged; restic leaves it too. */
            if (cr_repo_load_unpacked(r, CR_FILE_LOCK, &ids[i], &json) < 0 ||
                cr_lock_parse((const char *)json.data, json.len, &info) < 0)
                continue;
            stale = cr_lock_is_stale(&info, host);
            cr_lock_clear(&info);
        }
        if (!stale) continue;
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        e = cr_be_remove(r->be, CR_FILE_LOCK, hex);
        if (e == 0) (*removed)++;
    }
    free(ids);
    return e;
}
