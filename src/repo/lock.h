/* Lock files (spec §14). */
#ifndef CRESTIC_REPO_LOCK_H
#define CRESTIC_REPO_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "repo/repo.h"
#include "util/gotime.h"

typedef struct {
    cr_time time;
    bool exclusive;
    char *hostname, *username; /* malloc'd */
    int64_t pid;
    uint32_t uid, gid;
} cr_lock_info;

int cr_lock_parse(const char *json, size_t n, cr_lock_info *l);
int cr_lock_encode(const cr_lock_info *l, cr_buf *out);
void cr_lock_clear(cr_lock_info *l);
/* Stale: older than 30 minutes, or on this host with a dead PID. */
bool cr_lock_is_stale(const cr_lock_info *l, const char *this_host);

/* Remove stale locks (all locks with remove_all); returns how many were removed. */
int cr_lock_remove_stale(cr_repo *r, bool remove_all, size_t *removed);

typedef struct cr_lock cr_lock; /* a lock we hold; refreshed in the background */
/* Acquire per spec §14 (CR_E_LOCKED with the holder named on conflict).
 * retry_seconds > 0 retries with back-off for that long.
 *
 * The second look for conflicting locks, 200 ms after ours is written (at
 * once where the backend lists new files at once: lock.c), is deferred for
 * a non-exclusive lock without retries: it runs in the
 * background while the command reads, and the repository confirms it
 * (cr_lock_confirm) before it stores an index or a snapshot, the first
 * writes another process could be hurt by (packs nobody references are
 * harmless).  Exclusive locks confirm before cr_lock_acquire returns,
 * since their holders delete. */
int cr_lock_acquire(cr_repo *r, bool exclusive, double retry_seconds, cr_lock **out);
/* Wait for the second look; CR_E_LOCKED with the holder named when it found
 * a conflict.  0 at once for an exclusive lock. */
int cr_lock_confirm(cr_lock *l);
/* Remove our lock file and stop refreshing; NULL is fine. */
void cr_lock_release(cr_lock *l);
/* Last-resort cleanup when the process must stop now (signal thread):
 * delete the files of every lock still held, without waiting for anyone. */
void cr_lock_remove_all_held(void);

#endif
