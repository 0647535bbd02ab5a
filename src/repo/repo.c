/* Opening a repository and reading its files (spec §5–§8). */
#include "repo/repo.h"

#include "repo/lock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "chunker/chunker.h"
#include "repo/compress.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/treecache.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

#define CR_MAX_KEYS_TRIED 20

const char *cr_blob_type_name(cr_blob_type t)
{
    return t == CR_BLOB_TREE ? "tree" : "data";
}

int cr_config_parse(const char *json, size_t n, cr_config *cfg)
{
    cr_json_doc *doc = NULL;
    int r = cr_json_parse(json, n, &doc);
    if (r < 0) return cr_error_ctx(r, "config");
    const cr_json *root = cr_json_root(doc);
    uint32_t version = 0;
    const cr_json *id = cr_json_get(root, "id"), *pol = cr_json_get(root, "chunker_polynomial");
    r = cr_json_u32(cr_json_get(root, "version"), &version);
    if (r == 0 && (version < 1 || version > 2))
        r = cr_error(CR_E_UNSUPPORTED, "unsupported repository version %u", version);
    else if (r < 0) r = cr_error(CR_E_FORMAT, "config: invalid version");
    if (r == 0 && (!cr_json_is(id, CR_JSON_STRING) || cr_id_from_hex(&cfg->id, id->str, id->len) < 0))
        r = cr_error(CR_E_FORMAT, "config: invalid repository id");
    if (r == 0) {
        /* The polynomial is hex without 0x; a missing one reads as 0 and is refused below.
         * Only hex digits, as Go's strconv.ParseUint(s, 16, 64): strtoull alone would
         * also take a sign, leading spaces and a 0x prefix. */
        char *end = NULL;
        errno = 0;
        bool hex = cr_json_is(pol, CR_JSON_STRING) && pol->len && strspn(pol->str, "0123456789abcdefABCDEF") == pol->len;
        cfg->chunker_pol = hex ? strtoull(pol->str, &end, 16) : 0;
        if (!hex || errno || *end)
            r = cr_error(CR_E_FORMAT, "config: invalid chunker polynomial");
        else if (!cr_pol_irreducible(cfg->chunker_pol))
            r = cr_error(CR_E_FORMAT, "config: chunker polynomial %llx is not irreducible",
                         (unsigned long long)cfg->chunker_pol);
    }
    cfg->version = version;
    cr_json_free(doc);
    return r;
}

int cr_config_encode(const cr_config *cfg, cr_buf *out)
{
    char id[CR_ID_HEX + 1];
    cr_id_to_hex(&cfg->id, id);
    return cr_buf_printf(out, "{\"version\":%u,\"id\":\"%s\",\"chunker_polynomial\":\"%llx\"}", cfg->version, id,
                         (unsigned long long)cfg->chunker_pol);
}

/* ---- listing ---------------------------------------------------------- */

typedef struct {
    cr_id *ids;
    uint64_t *sizes;
    size_t n, cap;
} id_list;

static int collect_id(void *ud, const char *name, uint64_t size)
{
    id_list *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        cr_id *ids = realloc(l->ids, cap * sizeof *ids);
        if (!ids) return cr_error(-ENOMEM, "out of memory");
        l->ids = ids;
        uint64_t *sizes = realloc(l->sizes, cap * sizeof *sizes);
        if (!sizes) return cr_error(-ENOMEM, "out of memory");
        l->sizes = sizes;
        l->cap = cap;
    }
    if (cr_id_from_hex(&l->ids[l->n], name, strlen(name)) < 0) return 0;
    l->sizes[l->n++] = size;
    return 0;
}

static int list_ids_be(cr_backend *be, cr_filetype t, cr_id **ids, uint64_t **sizes, size_t *n)
{
    id_list l = {0};
    int r = cr_be_list(be, t, collect_id, &l);
    if (r < 0) {
        free(l.ids);
        free(l.sizes);
        return r;
    }
    *ids = l.ids;
    if (sizes) *sizes = l.sizes;
    else free(l.sizes);
    *n = l.n;
    return 0;
}

int cr_repo_list_ids(cr_repo *r, cr_filetype t, cr_id **ids, uint64_t **sizes, size_t *n)
{
    return list_ids_be(r->be, t, ids, sizes, n);
}

static const char *type_noun(cr_filetype t)
{
    switch (t) {
    case CR_FILE_KEY: return "key";
    case CR_FILE_PACK: return "pack";
    case CR_FILE_INDEX: return "index";
    case CR_FILE_SNAPSHOT: return "snapshot";
    case CR_FILE_LOCK: return "lock";
    default: return "file";
    }
}

int cr_repo_find_id(cr_repo *r, cr_filetype t, const char *prefix, cr_id *out)
{
    size_t plen = strlen(prefix);
    if (plen == CR_ID_HEX && cr_id_from_hex(out, prefix, plen) == 0) return 0;
    cr_id *ids = NULL;
    size_t n = 0, hits = 0;
    CR_TRY(list_ids_be(r->be, t, &ids, NULL, &n));
    for (size_t i = 0; i < n; i++) {
        char hex[CR_ID_HEX + 1];
        cr_id_to_hex(&ids[i], hex);
        if (plen <= CR_ID_HEX && !strncmp(hex, prefix, plen)) {
            if (hits++ == 0) *out = ids[i];
        }
    }
    free(ids);
    if (hits == 0) return cr_error(CR_E_NOTFOUND, "no matching ID found for prefix \"%s\"", prefix);
    if (hits > 1) return cr_error(CR_E_AMBIGUOUS, "multiple IDs with prefix \"%s\" found", prefix);
    return 0;
}

/* ---- reading files ---------------------------------------------------- */

int cr_repo_load_raw(cr_repo *r, cr_filetype t, const cr_id *id, cr_buf *out)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    CR_TRY(cr_be_load(r->be, t, hex, 0, 0, out));
    if (t != CR_FILE_CONFIG) {
        cr_id got;
        cr_sha256(out->data, out->len, got.b);
        if (!cr_id_eq(&got, id))
            return cr_error(CR_E_AUTH, "%s %s: content does not match its name (corrupted file)", type_noun(t), hex);
    }
    return 0;
}

static int open_unpacked(const cr_key *k, unsigned version, const cr_buf *raw, cr_buf *json)
{
    if (raw->len < CR_CRYPTO_OVERHEAD) return cr_error(CR_E_FORMAT, "file too short (%zu bytes)", raw->len);
    size_t plen = raw->len - CR_CRYPTO_OVERHEAD;
    _cleanup_free_ uint8_t *plain = malloc(plen ? plen : 1);
    if (!plain) return cr_error(-ENOMEM, "out of memory");
    CR_TRY(cr_open(k, raw->data, raw->len, plain));
    return cr_unpacked_decode(version, plain, plen, json);
}

int cr_repo_load_unpacked(cr_repo *r, cr_filetype t, const cr_id *id, cr_buf *out)
{
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT;
    CR_TRY(cr_repo_load_raw(r, t, id, &raw));
    int e = open_unpacked(&r->master, r->cfg.version, &raw, out);
    if (e < 0) return cr_error_ctx(e, "%s %s", type_noun(t), hex);
    return 0;
}

int cr_repo_save_unpacked(cr_repo *r, cr_filetype t, const void *json, size_t n, cr_id *id_out)
{
    if (r->unconfirmed && t != CR_FILE_LOCK) CR_TRY(cr_lock_confirm(r->unconfirmed));
    /* One buffer, IV room first: compressed (or copied) behind it, then
     * sealed in place, so the document is not held three more times. */
    _cleanup_buf_ cr_buf buf = CR_BUF_INIT;
    CR_TRY(cr_buf_resize(&buf, CR_IV_SIZE));
    if (r->cfg.version >= 2) {
        CR_TRY(cr_buf_putc(&buf, 2));
        CR_TRY(cr_zstd_compress_append(json, n, 3, &buf));
    } else {
        CR_TRY(cr_buf_append(&buf, json, n));
    }
    size_t plen = buf.len - CR_IV_SIZE;
    CR_TRY(cr_buf_reserve(&buf, CR_MAC_SIZE));
    CR_TRY(cr_seal(&r->master, buf.data + CR_IV_SIZE, plen, buf.data));
    cr_id id;
    cr_sha256(buf.data, plen + CR_CRYPTO_OVERHEAD, id.b);
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&id, hex);
    CR_TRY(cr_be_save(r->be, t, hex, buf.data, plen + CR_CRYPTO_OVERHEAD));
    if (id_out) *id_out = id;
    return 0;
}

/* ---- opening ---------------------------------------------------------- */

static int try_key(cr_repo *r, const cr_id *key_id, const char *pw, size_t pwlen)
{
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT;
    CR_TRY(cr_repo_load_raw(r, CR_FILE_KEY, key_id, &raw));
    cr_keyfile kf;
    CR_TRY(cr_keyfile_parse((const char *)raw.data, raw.len, &kf));
    int e = cr_keyfile_unlock(&kf, pw, pwlen, &r->master);
    cr_keyfile_clear(&kf);
    if (e == 0) r->key_id = *key_id;
    return e;
}

/* Hint first, then the others; a damaged key file is skipped, not fatal. */
static int find_key(cr_repo *r, const char *pw, size_t pwlen, const char *hint)
{
    cr_id *ids = NULL;
    size_t n = 0;
    CR_TRY(list_ids_be(r->be, CR_FILE_KEY, &ids, NULL, &n));
    cr_id hint_id;
    bool have_hint = hint && *hint && cr_repo_find_id(r, CR_FILE_KEY, hint, &hint_id) == 0;
    int e = CR_E_PASSWORD;
    if (have_hint && (e = try_key(r, &hint_id, pw, pwlen)) == 0) goto done;
    for (size_t i = 0, tried = 0; i < n && tried < CR_MAX_KEYS_TRIED; i++) {
        if (have_hint && cr_id_eq(&ids[i], &hint_id)) continue;
        tried++;
        e = try_key(r, &ids[i], pw, pwlen);
        if (e == 0 || e == -ENOMEM || e == CR_E_INTERRUPTED) goto done;
    }
    e = cr_error(CR_E_PASSWORD, "wrong password or no key found");
done:
    free(ids);
    return e;
}

static int load_config(cr_repo *r)
{
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT, json = CR_BUF_INIT;
    CR_TRY(cr_be_load(r->be, CR_FILE_CONFIG, "config", 0, 0, &raw));
    if (raw.len < CR_CRYPTO_OVERHEAD) return cr_error(CR_E_FORMAT, "config: file too short");
    CR_TRY(cr_buf_resize(&json, raw.len - CR_CRYPTO_OVERHEAD));
    int e = cr_open(&r->master, raw.data, raw.len, json.data);
    if (e == CR_E_AUTH) return cr_error(CR_E_AUTH, "config: ciphertext verification failed (damaged config, or a key of another repository)");
    CR_TRY_CTX(e, "config");
    return cr_config_parse((const char *)json.data, json.len, &r->cfg);
}

int cr_repo_open(cr_backend *be, const char *pw, size_t pwlen, const char *key_hint, cr_repo **out)
{
    cr_repo *r = calloc(1, sizeof *r);
    if (!r) {
        cr_backend_close(be);
        return cr_error(-ENOMEM, "out of memory");
    }
    r->be = be;
    uint64_t size;
    int e = cr_be_stat(be, CR_FILE_CONFIG, "config", &size);
    if (e == -ENOENT) e = cr_error(CR_E_NOREPO, "repository does not exist: unable to open config file");
    if (e == 0) e = find_key(r, pw, pwlen, key_hint);
    if (e == 0) e = load_config(r);
    if (e < 0) {
        cr_repo_close(r);
        return e;
    }
    *out = r;
    return 0;
}

void cr_repo_close(cr_repo *r)
{
    if (!r) return;
    cr_key_wipe(&r->master);
    cr_treecache_free(r->trees);
    cr_index_free(r->index);
    cr_backend_close(r->be);
    free(r);
}

/* ---- index and blobs -------------------------------------------------- */

int cr_repo_load_index(cr_repo *r)
{
    if (r->index) return 0;
    cr_index *idx = cr_index_new();
    if (!idx) return cr_error(-ENOMEM, "out of memory");
    cr_id *ids = NULL;
    size_t n = 0;
    int e = list_ids_be(r->be, CR_FILE_INDEX, &ids, NULL, &n);
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    for (size_t i = 0; e == 0 && i < n; i++) {
        e = cr_repo_load_unpacked(r, CR_FILE_INDEX, &ids[i], &json);
        if (e == 0) e = cr_index_add_json(idx, (const char *)json.data, json.len, r->cfg.version);
        if (e < 0) {
            char hex[CR_ID_HEX + 1];
            cr_id_to_hex(&ids[i], hex);
            e = cr_error_ctx(e, "index %.8s", hex);
        }
    }
    free(ids);
    if (e < 0) {
        cr_index_free(idx);
        return e;
    }
    cr_index_finish(idx);
    r->index = idx;
    return 0;
}

/* The repository's tree cache, made on first use (by whichever thread). */
static int tree_cache(cr_repo *r, cr_treecache **out)
{
    static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
    int e = 0;
    pthread_mutex_lock(&once);
    if (!r->trees_tried) {
        e = cr_treecache_new(r, &r->trees);
        r->trees_tried = e == 0;
    }
    *out = r->trees;
    pthread_mutex_unlock(&once);
    return e;
}

int cr_repo_load_blob(cr_repo *r, cr_blob_type t, const cr_id *id, cr_buf *out)
{
    CR_TRY(cr_repo_load_index(r));
    size_t count = 0;
    const cr_index_entry *e = cr_index_lookup(r->index, t, id, &count);
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(id, hex);
    if (!count) return cr_error(CR_E_NOTFOUND, "%s blob %s not found in index", cr_blob_type_name(t), hex);
    if (t == CR_BLOB_TREE) {
        cr_treecache *trees;
        CR_TRY(tree_cache(r, &trees));
        int served = trees ? cr_treecache_load(trees, r, id, &e[0], out) : 0;
        if (served) return served < 0 ? served : 0;
    }
    _cleanup_buf_ cr_buf raw = CR_BUF_INIT;
    int err = 0;
    /* Any copy that loads and verifies will do (spec §8.4). */
    for (size_t i = 0; i < count; i++) {
        char pack[CR_ID_HEX + 1];
        cr_id_to_hex(&r->index->packs[e[i].pack], pack);
        err = cr_be_load(r->be, CR_FILE_PACK, pack, e[i].offset, e[i].length, &raw);
        if (err == 0) err = cr_blob_decode(&r->master, raw.data, raw.len, e[i].ulen, id, out);
        if (err == 0) return 0;
        err = cr_error_ctx(err, "%s blob %.8s in pack %.8s", cr_blob_type_name(t), hex, pack);
        if (err == -ENOMEM || err == CR_E_INTERRUPTED) break;
    }
    return err;
}

/* ---- creating --------------------------------------------------------- */

#include <pwd.h>
#include <unistd.h>

static void default_user_host(char *user, size_t ulen, char *host, size_t hlen)
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(user, ulen, "%s", pw ? pw->pw_name : "");
    host[0] = 0;
    gethostname(host, hlen - 1);
    host[hlen - 1] = 0;
}

int cr_repo_add_key(cr_repo *r, const char *pw, size_t pwlen, const char *username, const char *hostname,
                    cr_id *id_out)
{
    char user[256], host[256];
    default_user_host(user, sizeof user, host, sizeof host);
    cr_kdf_params kdf;
    CR_TRY(cr_kdf_calibrate(&kdf));
    _cleanup_buf_ cr_buf json = CR_BUF_INIT;
    CR_TRY(cr_keyfile_create(&r->master, pw, pwlen, &kdf, username ? username : user, hostname ? hostname : host, &json));
    cr_id id;
    cr_sha256(json.data, json.len, id.b);
    char hex[CR_ID_HEX + 1];
    cr_id_to_hex(&id, hex);
    CR_TRY(cr_be_save(r->be, CR_FILE_KEY, hex, json.data, json.len));
    if (id_out) *id_out = id;
    return 0;
}

int cr_repo_init(cr_backend *be, const char *pw, size_t pwlen, unsigned version, uint64_t pol, cr_repo **out)
{
    cr_repo *r = calloc(1, sizeof *r);
    if (!r) {
        cr_backend_close(be);
        return cr_error(-ENOMEM, "out of memory");
    }
    r->be = be;
    uint64_t size;
    int e = cr_be_stat(be, CR_FILE_CONFIG, "config", &size);
    if (e == 0) e = cr_error(-EEXIST, "config file already exists");
    else if (e == -ENOENT) e = 0;
    if (e == 0 && (version < 1 || version > 2)) e = cr_error(CR_E_USAGE, "unsupported repository version %u", version);
    if (e == 0) do e = cr_random(&r->master, sizeof r->master); while (e == 0 && !cr_key_is_valid(&r->master));
    if (e == 0) e = cr_random(r->cfg.id.b, CR_ID_SIZE);
    if (e == 0 && !pol) e = cr_pol_random(&pol);
    if (e == 0 && !cr_pol_irreducible(pol)) e = cr_error(CR_E_USAGE, "chunker polynomial %llx is not irreducible", (unsigned long long)pol);
    r->cfg.version = version;
    r->cfg.chunker_pol = pol;
    /* Key first, config last: a location without config is no repository yet. */
    if (e == 0) e = cr_repo_add_key(r, pw, pwlen, NULL, NULL, &r->key_id);
    if (e == 0) {
        _cleanup_buf_ cr_buf json = CR_BUF_INIT, sealed = CR_BUF_INIT;
        e = cr_config_encode(&r->cfg, &json);
        if (e == 0) e = cr_buf_resize(&sealed, json.len + CR_CRYPTO_OVERHEAD);
        if (e == 0) e = cr_seal(&r->master, json.data, json.len, sealed.data);
        if (e == 0) e = cr_be_save(be, CR_FILE_CONFIG, "config", sealed.data, sealed.len);
    }
    if (e < 0) {
        cr_repo_close(r);
        return e;
    }
    *out = r;
    return 0;
}

int cr_repo_upgrade_v2(cr_repo *r)
{
    if (r->cfg.version != 1) return cr_error(CR_E_USAGE, "repository is already at version %u", r->cfg.version);
    cr_config cfg = r->cfg;
    cfg.version = 2;
    _cleanup_buf_ cr_buf json = CR_BUF_INIT, sealed = CR_BUF_INIT;
    CR_TRY(cr_config_encode(&cfg, &json));
    CR_TRY(cr_buf_resize(&sealed, json.len + CR_CRYPTO_OVERHEAD));
    CR_TRY(cr_seal(&r->master, json.data, json.len, sealed.data));
    CR_TRY(cr_be_save(r->be, CR_FILE_CONFIG, "config", sealed.data, sealed.len));
    r->cfg = cfg;
    return 0;
}
