/* An open repository: backend + master key + config (+ index when loaded). */
#ifndef CRESTIC_REPO_REPO_H
#define CRESTIC_REPO_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "crypto/crypto.h"
#include "util/buf.h"
#include "util/id.h"

typedef struct cr_index cr_index;
typedef struct cr_treecache cr_treecache;
typedef struct cr_lock cr_lock;

typedef struct {
    unsigned version;    /* 1 or 2 */
    cr_id id;            /* repository ID */
    uint64_t chunker_pol;
} cr_config;

typedef struct {
    cr_backend *be;      /* owned */
    cr_key master;
    cr_config cfg;
    cr_id key_id;        /* key file that opened the repository */
    cr_index *index;     /* NULL until cr_repo_load_index() */
    cr_treecache *trees; /* tree prefetch (remote backends), made on first use */
    bool trees_tried;
    cr_lock *unconfirmed; /* our lock, until its second look is done (lock.h) */
} cr_repo;

typedef enum { CR_BLOB_DATA = 0, CR_BLOB_TREE = 1 } cr_blob_type;
const char *cr_blob_type_name(cr_blob_type t); /* "data" / "tree" */

/* Parsed key file (spec §5). Strings are malloc'd; free with cr_keyfile_clear(). */
typedef struct {
    char *created, *username, *hostname, *kdf;
    uint64_t N;
    uint32_t r, p;
    cr_buf salt;
    cr_buf data;
} cr_keyfile;
int cr_keyfile_parse(const char *json, size_t n, cr_keyfile *kf);
void cr_keyfile_clear(cr_keyfile *kf);
/* Derive the user key from the password and decrypt the master key.
 * CR_E_AUTH when the password does not fit this key. */
int cr_keyfile_unlock(const cr_keyfile *kf, const char *pw, size_t pwlen, cr_key *master);
/* Master key JSON {"mac":{"k":..,"r":..},"encrypt":..} <-> key. */
int cr_masterkey_parse(const char *json, size_t n, cr_key *k);
int cr_masterkey_encode(const cr_key *k, cr_buf *out);

/* scrypt parameters for new key files. */
typedef struct {
    uint64_t N;
    uint32_t r, p;
} cr_kdf_params;
/* Parameters at least as strong as restic's (N = 2^15, r = 8), with p
 * calibrated so one derivation takes about half a second here. */
int cr_kdf_calibrate(cr_kdf_params *out);
/* A new key file (JSON, as restic writes it) holding master, encrypted with a
 * key derived from pw; random salt. */
int cr_keyfile_create(const cr_key *master, const char *pw, size_t pwlen, const cr_kdf_params *kdf,
                      const char *username, const char *hostname, cr_buf *json);

int cr_config_parse(const char *json, size_t n, cr_config *cfg);
int cr_config_encode(const cr_config *cfg, cr_buf *out);

/* Open: config must exist (else CR_E_NOREPO), try key files (hint first, at
 * most 20) until one opens (else CR_E_PASSWORD), then decrypt and check the
 * config.  Takes ownership of be in every case. */
int cr_repo_open(cr_backend *be, const char *pw, size_t pwlen, const char *key_hint, cr_repo **out);
void cr_repo_close(cr_repo *r);

/* Create a repository on an empty location: random master key, a key file
 * for pw, config (version 1 or 2; pol 0 = a new random polynomial).  The
 * returned repository is open.  Takes ownership of be. */
int cr_repo_init(cr_backend *be, const char *pw, size_t pwlen, unsigned version, uint64_t pol, cr_repo **out);
/* Rewrite config as version 2 (spec §6: migrate upgrade_repo_v2).  The
 * backend's config save replaces the file atomically. */
int cr_repo_upgrade_v2(cr_repo *r);
/* Add a key file for pw (same master key); its ID in id_out. */
int cr_repo_add_key(cr_repo *r, const char *pw, size_t pwlen, const char *username, const char *hostname,
                    cr_id *id_out);

/* Load a whole file, check SHA-256(file) == name for content-addressed types. */
int cr_repo_load_raw(cr_repo *r, cr_filetype t, const cr_id *id, cr_buf *out);
/* Load, authenticate, decrypt and (v2) decompress an index/snapshot/lock file: JSON in out. */
int cr_repo_load_unpacked(cr_repo *r, cr_filetype t, const cr_id *id, cr_buf *out);
/* Encrypt (and in v2 compress) JSON and save it under its hash; returns the ID. */
int cr_repo_save_unpacked(cr_repo *r, cr_filetype t, const void *json, size_t n, cr_id *id_out);

/* Resolve a unique hex prefix of a file of type t (CR_E_NOTFOUND, CR_E_AMBIGUOUS). */
int cr_repo_find_id(cr_repo *r, cr_filetype t, const char *prefix, cr_id *out);
/* List the IDs of every file of a type (names that are not IDs are skipped). */
int cr_repo_list_ids(cr_repo *r, cr_filetype t, cr_id **ids, uint64_t **sizes, size_t *n);

/* Load every index file into one union (spec §10).  Errors name the file. */
int cr_repo_load_index(cr_repo *r);

/* Load one blob through the index: tries every location, verifies MAC and
 * SHA-256, decompresses.  Plaintext in out.  CR_E_NOTFOUND if not indexed. */
int cr_repo_load_blob(cr_repo *r, cr_blob_type t, const cr_id *id, cr_buf *out);

#endif
