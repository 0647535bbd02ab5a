/* Tree prefetch for remote backends.
 *
 * Walking a snapshot loads one tree blob after another, each a small ranged
 * read.  On a local disk that is cheap; over S3 or a WAN link every read is a
 * round trip (hundreds of them for one restore).  restic hides this behind
 * its local cache of tree packs.  Here, the first tree wanted from a pack
 * fetches the neighbouring tree blobs of that pack in the same request, and
 * keeps them (still encrypted, verified when served) in a bounded in-memory
 * cache, so the walk that follows is served without further requests.
 *
 * On by default for every backend but the local one; the environment
 * variable CRESTIC_TREE_PREFETCH=0 or =1 turns it off or on everywhere. */
#ifndef CRESTIC_REPO_TREECACHE_H
#define CRESTIC_REPO_TREECACHE_H

#include "repo/index.h"
#include "repo/repo.h"

typedef struct cr_treecache cr_treecache;

/* A cache for this repository (NULL, without error, when prefetch is off). */
int cr_treecache_new(const cr_repo *r, cr_treecache **out);
void cr_treecache_free(cr_treecache *c);

/* Serve tree blob `id`, whose index location is e, into out (plaintext).
 * 1 served; 0 not served (the caller loads it the usual way); negative only
 * for errors that the usual way would meet too (out of memory, interrupted). */
int cr_treecache_load(cr_treecache *c, cr_repo *r, const cr_id *id, const cr_index_entry *e, cr_buf *out);

#endif
