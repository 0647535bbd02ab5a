/* The archiver's moving parts, shared by archiver.c (walking, trees) and
 * archive_file.c (reading, chunking, sealing). */
#ifndef CRESTIC_REPO_ARCHIVE_PIPELINE_H
#define CRESTIC_REPO_ARCHIVE_PIPELINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunker/chunker.h"
#include "repo/archive_internal.h"
#include "repo/archiver.h"

#define ARCH_MAX_READERS 16
#define ARCH_MAX_SAVERS 16
#define ARCH_MAX_WALKERS 8

/* One entry of a directory being built; `ok` once the node is final. */
typedef struct {
    cr_node node;
    bool ok;
    bool owns_content; /* content was malloc'd here (not borrowed from the parent tree) */
} arch_slot;

/* A directory in progress.  Its slots fill in from any thread; whoever
 * drops `pending` to zero writes the tree and hands the node up. */
typedef struct arch_dir arch_dir;
struct arch_dir {
    arch_dir *parent;
    size_t slot_in_parent;
    cr_node *node;             /* this directory's node, inside the parent's slots (NULL: root) */
    const cr_node *prev_node;  /* the same directory in the parent snapshot */
    cr_tree *prev;             /* its tree in the parent snapshot (NULL if none) */
    char *snpath;              /* "/src/d"; "/" for the root */
    arch_slot *slots;
    size_t nslots;
    atomic_size_t pending;     /* the walker's reference + unfinished children */
    cr_arena arena;            /* names and metadata of the children */
    double start;
    bool dropped;              /* could not be listed: left out of the parent */
};

typedef struct arch_file arch_file;
struct arch_file {
    arch_dir *dir;
    size_t slot;
    char *path, *abspath, *snpath;
    const cr_node *prev;
    int fd;                    /* >= 0: already open (stdin), metadata given */
    double start;
    pthread_mutex_t mu;        /* content, stats, failed */
    cr_id *content;
    size_t ncontent, cap;
    uint64_t size;
    cr_item_stats st;
    bool failed;
    bool deferred;             /* soft stop: not (fully) read, see arch_defer_file() */
    atomic_size_t pending;     /* the reader's reference + chunks being sealed */
    arch_file *next;
};

typedef struct slab {
    uint8_t *data;
    atomic_int refs;
    struct slab *next;
} slab;

typedef struct {
    arch_file *file;
    size_t idx;
    slab *s;
    const uint8_t *data;
    size_t len;
} blob_job;

struct cr_archiver {
    cr_repo *repo;
    cr_writer *w;
    cr_archive_opts o;
    unsigned nreaders, nsavers, nwalkers;
    double read_bps;            /* test hook: $CRESTIC_TEST_READ_BPS slows each reader down (0: off) */

    pthread_mutex_t cb_mu;      /* callbacks, summary */
    cr_archive_summary sum;
    atomic_uint_fast64_t files_done, dirs_done, bytes_done, bytes_read;
    atomic_int fatal;           /* first fatal error code */
    char fatal_msg[512];

    /* files waiting for a reader */
    pthread_mutex_t fq_mu;
    pthread_cond_t fq_nonempty, fq_nonfull;
    arch_file *fq_head, *fq_tail;
    size_t fq_len;
    bool fq_closed;

    /* chunks waiting for a saver */
    pthread_mutex_t bq_mu;
    pthread_cond_t bq_nonempty, bq_nonfull;
    blob_job *bq;
    size_t bq_cap, bq_head, bq_len;
    bool bq_closed;

    /* read buffers */
    pthread_mutex_t slab_mu;
    pthread_cond_t slab_free_cv;
    slab *slab_free;
    size_t slabs, slabs_max;

    /* directories waiting to be listed (archiver.c) */
    pthread_mutex_t wq_mu;
    pthread_cond_t wq_cv;
    struct dir_task *wq_top;
    size_t wq_outstanding;      /* queued or being walked */
    bool wq_producing;          /* the targets are still being placed */
    pthread_t walkers[ARCH_MAX_WALKERS];
    size_t walkers_started;

    /* threads inside the writer at once (each holds a pack buffer) */
    pthread_mutex_t seal_mu;
    pthread_cond_t seal_cv;
    unsigned seal_free;
    pthread_mutex_t tree_seal_mu;  /* trees: one sealer at a time */

    const char *current[ARCH_MAX_READERS]; /* snapshot paths being read (cb_mu) */
    pthread_t readers[ARCH_MAX_READERS], savers[ARCH_MAX_SAVERS];
    size_t readers_started, savers_started;

    bool root_done;
    cr_id root;
    bool root_empty;
};

/* archiver.c */
bool arch_stopped(cr_archiver *a);
void arch_set_fatal(cr_archiver *a, int code);
void arch_report(cr_archiver *a, const char *item, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void arch_item_done(cr_archiver *a, const char *snpath, bool is_dir, const cr_node *prev, const cr_node *cur,
                    const cr_item_stats *st, double start);
void arch_dir_release(cr_archiver *a, arch_dir *d);
double arch_now(void);
/* soft_stop is set: read no more file content. */
bool arch_soft_stopped(cr_archiver *a);
/* A file that will not be read: keep the parent's node in its slot (when
 * the parent has a usable one), else leave it out. */
void arch_defer_file(cr_archiver *a, arch_dir *d, size_t idx, const char *snpath, const cr_node *prev);

/* archive_file.c */
/* Store a blob unless known (see there for the locking). */
int arch_save_blob(cr_archiver *a, cr_blob_type t, const void *data, size_t n, cr_id *id, bool *added);
int arch_pipeline_start(cr_archiver *a);
/* Queue a file; blocks while the queue is full. */
void arch_file_submit(cr_archiver *a, arch_file *f);
/* A file below the chunker's minimum size is one blob at most: read and
 * seal it right here, without a hand-over.  Returns false when it has to
 * go through the queue after all (it grew meanwhile). */
bool arch_small_file(cr_archiver *a, arch_dir *d, size_t idx, const char *path, const char *abspath,
                     const char *snpath, const cr_node *prev);
/* Free this thread's buffer for small files. */
void arch_small_file_cleanup(void);
/* Close the queues and wait for every reader and saver. */
void arch_pipeline_finish(cr_archiver *a);
void arch_pipeline_free(cr_archiver *a);

#endif
