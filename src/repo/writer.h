/* Writing blobs into a repository (spec §8.5, §9, §10, §16, §17):
 * dedup against the index and this session, compress (v2), encrypt, fill
 * packs of one blob type, upload finished packs, then write index files
 * that reference only uploaded packs.  Crash-safe by construction: nothing
 * references a pack before it is stored, and the caller writes the snapshot
 * only after cr_writer_flush() returned.
 *
 * Thread-safe: any number of threads may call cr_writer_save_blob() at once;
 * hashing, compression and encryption run in the calling thread, so workers
 * scale across cores, and a thread that fills a pack uploads it. */
#ifndef CRESTIC_REPO_WRITER_H
#define CRESTIC_REPO_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/compress.h"
#include "repo/repo.h"

#define CR_PACK_SIZE_DEFAULT (16u * 1024 * 1024)
#define CR_PACK_SIZE_MIN (4u * 1024 * 1024)
#define CR_PACK_SIZE_MAX (128u * 1024 * 1024)
#define CR_INDEX_FLUSH_BLOBS 50000

typedef struct {
    cr_compression compression; /* data blobs; trees are always compressed in v2 */
    size_t pack_size;           /* target in bytes; 0 = 16 MiB */
} cr_writer_opts;

typedef struct {
    uint64_t data_blobs, tree_blobs;  /* new blobs stored */
    uint64_t data_added;              /* plaintext bytes of new blobs   */
    uint64_t data_added_packed;       /* bytes stored, with overhead    */
    uint64_t packs_written, index_files_written;
} cr_writer_stats;

typedef struct cr_writer cr_writer;

/* Needs the repository index loaded (it is the dedup reference). */
int cr_writer_new(cr_repo *r, const cr_writer_opts *opts, cr_writer **out);
/* Store a blob unless the repository or this session already has it.
 * id_out receives SHA-256(data) (pass known_id to skip hashing when the
 * caller already computed it).  *added tells whether it was new. */
int cr_writer_save_blob(cr_writer *w, cr_blob_type t, const void *data, size_t n, const cr_id *known_id,
                        cr_id *id_out, bool *added);
/* Is this blob known (repository index or saved in this session)? */
bool cr_writer_has_blob(cr_writer *w, cr_blob_type t, const cr_id *id);
/* Upload partly filled packs and write index files for everything stored.
 * After it returns 0, every blob saved so far is durable and indexed. */
int cr_writer_flush(cr_writer *w);
void cr_writer_get_stats(cr_writer *w, cr_writer_stats *st);
/* Frees; blobs not flushed are lost (their packs may remain unreferenced,
 * which is legal: prune removes them). */
void cr_writer_free(cr_writer *w);


#endif
