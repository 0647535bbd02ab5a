/* Unit tests for the repository file parsers (spec §5–§10): key files and
 * the master key, config, unpacked files, index files and pack headers.
 * Known answers come from tests/fixtures/vectors.json (restic 0.14); the
 * error cases are hand-made.  Trees, snapshots and locks are in
 * test_repo_objects.c, whole repositories in test_repo_read.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <zstd.h>

#include "crypto/crypto.h"
#include "repo/compress.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/repo.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/id.h"
#include "util/json.h"

static cJSON *vectors;
static const char *const repo_names[] = {"v1", "v2", "v2-two-snapshots", "v2-pruned"};
#define NREPOS (sizeof repo_names / sizeof repo_names[0])

/* ---- helpers ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

static int load_vectors(void **state)
{
    char *text = read_file("fixtures/vectors.json", NULL);
    vectors = cJSON_Parse(text);
    free(text);
    return vectors ? 0 : -1;
}

static int free_vectors(void **state)
{
    cJSON_Delete(vectors);
    return 0;
}

static const cJSON *member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    assert_non_null(v);
    return v;
}

static const char *str_member(const cJSON *obj, const char *name)
{
    const cJSON *v = member(obj, name);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static double num_member(const cJSON *obj, const char *name)
{
    const cJSON *v = member(obj, name);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const cJSON *repo_vec(const char *name)
{
    return member(member(vectors, "repos"), name);
}

static uint8_t *hex_alloc(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    assert_int_equal(len % 2, 0);
    uint8_t *out = malloc(len / 2 + 1);
    assert_non_null(out);
    assert_int_equal(cr_hex_decode(hex, len, out, len / 2), 0);
    *n = len / 2;
    return out;
}

static cr_id id_hex(const char *hex)
{
    cr_id id;
    assert_int_equal(cr_id_from_hex(&id, hex, strlen(hex)), 0);
    return id;
}

static void key_from_vec(const cJSON *mk, cr_key *k)
{
    assert_int_equal(cr_hex_decode(str_member(mk, "encrypt"), 64, k->enc, 32), 0);
    assert_int_equal(cr_hex_decode(str_member(mk, "mac_k"), 32, k->mac_k, 16), 0);
    assert_int_equal(cr_hex_decode(str_member(mk, "mac_r"), 32, k->mac_r, 16), 0);
}

static void master_of(const char *repo, cr_key *k)
{
    key_from_vec(member(repo_vec(repo), "master_key"), k);
}

static void assert_buf_str(const cr_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len != n || memcmp(b->data, s, n) != 0)
        fail_msg("got  %.*s\nwant %s", (int)b->len, (const char *)b->data, s);
}

/* ---- key files ------------------------------------------------------------ */

static void test_keyfile_parse_vectors(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *keys = member(repo_vec(repo_names[i]), "keys");
        const cJSON *k;
        cJSON_ArrayForEach(k, keys) {
            const char *raw = str_member(k, "raw_json");
            /* The raw JSON is the key file, whose name is its SHA-256. */
            cr_id want = id_hex(str_member(k, "id")), got;
            cr_sha256(raw, strlen(raw), got.b);
            assert_true(cr_id_eq(&want, &got));

            cr_keyfile kf;
            assert_int_equal(cr_keyfile_parse(raw, strlen(raw), &kf), 0);
            cJSON *doc = cJSON_Parse(raw);
            assert_non_null(doc);
            assert_string_equal(kf.kdf, "scrypt");
            assert_string_equal(kf.created, str_member(doc, "created"));
            assert_string_equal(kf.username, str_member(doc, "username"));
            assert_string_equal(kf.hostname, str_member(doc, "hostname"));
            const cJSON *sc = member(k, "scrypt");
            assert_int_equal(kf.N, (uint64_t)num_member(sc, "N"));
            assert_int_equal(kf.r, (uint32_t)num_member(sc, "r"));
            assert_int_equal(kf.p, (uint32_t)num_member(sc, "p"));
            size_t saltn;
            _cleanup_free_ uint8_t *salt = hex_alloc(str_member(sc, "salt_hex"), &saltn);
            assert_int_equal(kf.salt.len, 64);
            assert_int_equal(saltn, 64);
            assert_memory_equal(kf.salt.data, salt, 64);
            /* data = IV || encrypted master key JSON || MAC */
            assert_int_equal(kf.data.len, strlen(str_member(k, "decrypted_data")) + CR_CRYPTO_OVERHEAD);
            cJSON_Delete(doc);
            cr_keyfile_clear(&kf);
            assert_null(kf.kdf);
            assert_null(kf.salt.data);
        }
    }
}

static void test_keyfile_unlock_vectors(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *rv = repo_vec(repo_names[i]);
        cr_key want;
        master_of(repo_names[i], &want);
        const cJSON *k;
        cJSON_ArrayForEach(k, member(rv, "keys")) {
            const char *raw = str_member(k, "raw_json"), *pw = str_member(k, "opens_with");
            cr_keyfile kf;
            assert_int_equal(cr_keyfile_parse(raw, strlen(raw), &kf), 0);
            cr_key got;
            memset(&got, 0, sizeof got);
            assert_int_equal(cr_keyfile_unlock(&kf, pw, strlen(pw), &got), 0);
            assert_memory_equal(&got, &want, sizeof want);
            /* Wrong password: the MAC of data fails. */
            cr_key other;
            memset(&other, 0x5a, sizeof other);
            assert_int_equal(cr_keyfile_unlock(&kf, "wrong-password", 14, &other), CR_E_AUTH);
            /* A password that only differs by its last byte, or is a prefix. */
            assert_int_equal(cr_keyfile_unlock(&kf, pw, strlen(pw) - 1, &other), CR_E_AUTH);
            cr_keyfile_clear(&kf);
        }
    }
}

static void test_masterkey_vectors(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *rv = repo_vec(repo_names[i]);
        cr_key want;
        master_of(repo_names[i], &want);
        const cJSON *k;
        cJSON_ArrayForEach(k, member(rv, "keys")) {
            const char *mj = str_member(k, "decrypted_data");
            cr_key got;
            assert_int_equal(cr_masterkey_parse(mj, strlen(mj), &got), 0);
            assert_memory_equal(&got, &want, sizeof want);
            /* Byte-exact round trip. */
            _cleanup_buf_ cr_buf out = CR_BUF_INIT;
            assert_int_equal(cr_masterkey_encode(&got, &out), 0);
            assert_buf_str(&out, mj);
        }
        /* The stored base64 form matches too. */
        const cJSON *b64 = member(rv, "master_key_b64");
        _cleanup_buf_ cr_buf enc = CR_BUF_INIT;
        assert_int_equal(cr_base64_encode(&enc, want.enc, 32), 0);
        assert_int_equal(enc.len, strlen(str_member(b64, "encrypt")));
        assert_memory_equal(enc.data, str_member(b64, "encrypt"), enc.len);
    }
}

static void test_masterkey_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "null",
        "[]",
        "{}",
        "{\"mac\":{\"k\":\"VBj/9RqsxBI3KJmyopS0Xw==\",\"r\":\"/1UFDNQvVwgQTHcEoOpxDg==\"}}",
        "{\"mac\":{\"k\":\"VBj/9RqsxBI3KJmyopS0Xw==\"},\"encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xY=\"}",
        "{\"encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xY=\"}",
        "{\"mac\":\"x\",\"encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xY=\"}",
        /* k is 15 bytes */
        "{\"mac\":{\"k\":\"VBj/9RqsxBI3KJmyopS0\",\"r\":\"/1UFDNQvVwgQTHcEoOpxDg==\"},\"encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xY=\"}",
        /* encrypt is 33 bytes */
        "{\"mac\":{\"k\":\"VBj/9RqsxBI3KJmyopS0Xw==\",\"r\":\"/1UFDNQvVwgQTHcEoOpxDg==\"},\"encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xYA\"}",
        /* not base64 */
        "{\"mac\":{\"k\":\"VBj/9RqsxBI3KJmyopS0X!==\",\"r\":\"/1UFDNQvVwgQTHcEoOpxDg==\"},\"encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xY=\"}",
        /* r is a number */
        "{\"mac\":{\"k\":\"VBj/9RqsxBI3KJmyopS0Xw==\",\"r\":12},\"encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xY=\"}",
        /* all-zero r: invalid key */
        "{\"mac\":{\"k\":\"VBj/9RqsxBI3KJmyopS0Xw==\",\"r\":\"AAAAAAAAAAAAAAAAAAAAAA==\"},\"encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xY=\"}",
        /* all-zero encrypt */
        "{\"mac\":{\"k\":\"VBj/9RqsxBI3KJmyopS0Xw==\",\"r\":\"/1UFDNQvVwgQTHcEoOpxDg==\"},\"encrypt\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_key k;
        int r = cr_masterkey_parse(bad[i], strlen(bad[i]), &k);
        if (r != CR_E_FORMAT) fail_msg("case %zu: got %d for %s", i, r, bad[i]);
    }
    /* Go matches member names case-insensitively; extra members are ignored. */
    const char *ok = "{\"MAC\":{\"K\":\"VBj/9RqsxBI3KJmyopS0Xw==\",\"r\":\"/1UFDNQvVwgQTHcEoOpxDg==\"},\"x\":1,"
                     "\"Encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xY=\"}";
    cr_key k, want;
    master_of("v1", &want);
    assert_int_equal(cr_masterkey_parse(ok, strlen(ok), &k), 0);
    assert_memory_equal(&k, &want, sizeof k);
}

/* A key file with tiny scrypt parameters, so error paths test quickly. */
static char *make_keyfile(const char *pw, const char *kdf, uint64_t N, uint32_t r, uint32_t p, size_t saltlen,
                          const char *master_json)
{
    uint8_t salt[128], material[64];
    for (size_t i = 0; i < saltlen; i++) salt[i] = (uint8_t)(i * 37 + 11);
    assert_int_equal(cr_scrypt((const uint8_t *)pw, strlen(pw), salt, saltlen, N, r, p, material, 64), 0);
    cr_key user;
    cr_key_from_kdf(&user, material);
    size_t n = strlen(master_json);
    _cleanup_free_ uint8_t *sealed = malloc(n + CR_CRYPTO_OVERHEAD);
    assert_int_equal(cr_seal(&user, (const uint8_t *)master_json, n, sealed), 0);
    cr_buf b = CR_BUF_INIT;
    assert_int_equal(cr_buf_printf(&b, "{\"created\":\"2023-01-01T00:00:00Z\",\"username\":\"u\",\"hostname\":\"h\","
                                       "\"kdf\":\"%s\",\"N\":%llu,\"r\":%u,\"p\":%u,\"salt\":\"",
                                   kdf, (unsigned long long)N, r, p), 0);
    assert_int_equal(cr_base64_encode(&b, salt, saltlen), 0);
    assert_int_equal(cr_buf_puts(&b, "\",\"data\":\""), 0);
    assert_int_equal(cr_base64_encode(&b, sealed, n + CR_CRYPTO_OVERHEAD), 0);
    assert_int_equal(cr_buf_puts(&b, "\"}"), 0);
    assert_int_equal(cr_buf_nul(&b), 0);
    return (char *)b.data;
}

static const char *v1_master_json(void)
{
    return str_member(cJSON_GetArrayItem(member(repo_vec("v1"), "keys"), 0), "decrypted_data");
}

static int unlock_json(const char *json, const char *pw, cr_key *out)
{
    cr_keyfile kf;
    int r = cr_keyfile_parse(json, strlen(json), &kf);
    if (r < 0) return r;
    r = cr_keyfile_unlock(&kf, pw, strlen(pw), out);
    cr_keyfile_clear(&kf);
    return r;
}

static void test_keyfile_tiny(void **state)
{
    cr_key want, got;
    master_of("v1", &want);
    _cleanup_free_ char *good = make_keyfile("pw", "scrypt", 16, 1, 1, 64, v1_master_json());
    assert_int_equal(unlock_json(good, "pw", &got), 0);
    assert_memory_equal(&got, &want, sizeof got);
    assert_int_equal(unlock_json(good, "pW", &got), CR_E_AUTH);
    assert_int_equal(unlock_json(good, "", &got), CR_E_AUTH);

    /* salt must be exactly 64 bytes */
    _cleanup_free_ char *salt63 = make_keyfile("pw", "scrypt", 16, 1, 1, 63, v1_master_json());
    assert_int_equal(unlock_json(salt63, "pw", &got), CR_E_FORMAT);
    _cleanup_free_ char *salt65 = make_keyfile("pw", "scrypt", 16, 1, 1, 65, v1_master_json());
    assert_int_equal(unlock_json(salt65, "pw", &got), CR_E_FORMAT);
    _cleanup_free_ char *salt0 = make_keyfile("pw", "scrypt", 16, 1, 1, 0, v1_master_json());
    assert_int_equal(unlock_json(salt0, "pw", &got), CR_E_FORMAT);

    /* another KDF: unusable */
    _cleanup_free_ char *argon = make_keyfile("pw", "argon2id", 16, 1, 1, 64, v1_master_json());
    int r = unlock_json(argon, "pw", &got);
    assert_true(r == CR_E_UNSUPPORTED || r == CR_E_FORMAT);
    _cleanup_free_ char *upper = make_keyfile("pw", "SCRYPT", 16, 1, 1, 64, v1_master_json());
    r = unlock_json(upper, "pw", &got);
    assert_true(r == CR_E_UNSUPPORTED || r == CR_E_FORMAT);

    /* the decrypted data is not a master key */
    _cleanup_free_ char *notkey = make_keyfile("pw", "scrypt", 16, 1, 1, 64, "{\"mac\":{}}");
    assert_int_equal(unlock_json(notkey, "pw", &got), CR_E_FORMAT);
    _cleanup_free_ char *zero = make_keyfile(
        "pw", "scrypt", 16, 1, 1, 64,
        "{\"mac\":{\"k\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"r\":\"/1UFDNQvVwgQTHcEoOpxDg==\"},"
        "\"encrypt\":\"1kStisa83fjwOY31CHO3r0CBtALh011ZkCPlX86c3xY=\"}");
    assert_int_equal(unlock_json(zero, "pw", &got), CR_E_FORMAT);
}

static void test_keyfile_errors(void **state)
{
    /* Parse errors. */
    static const char *const bad_parse[] = {
        "",
        "{",
        "null",
        "[]",
        "\"x\"",
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\"AAAA\"}",                 /* no data */
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"data\":\"AAAA\"}",                 /* no salt */
        "{\"kdf\":\"scrypt\",\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",        /* no N */
        "{\"kdf\":\"scrypt\",\"N\":16,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",       /* no r */
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",       /* no p */
        "{\"kdf\":\"scrypt\",\"N\":\"16\",\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",
        "{\"kdf\":\"scrypt\",\"N\":16.5,\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":-1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":4294967296,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",
        "{\"kdf\":\"scrypt\",\"N\":18446744073709551616,\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\"AAA\",\"data\":\"AAAA\"}",  /* bad padding */
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\"AA*A\",\"data\":\"AAAA\"}",
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA=\"}",
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":42}",
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":[],\"data\":\"AAAA\"}",
        "{\"kdf\":7,\"N\":16,\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",
        "{\"created\":1,\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"}",
        "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\"} x",
    };
    for (size_t i = 0; i < sizeof bad_parse / sizeof bad_parse[0]; i++) {
        cr_keyfile kf;
        int r = cr_keyfile_parse(bad_parse[i], strlen(bad_parse[i]), &kf);
        if (r >= 0) {
            cr_keyfile_clear(&kf);
            fail_msg("case %zu parsed: %s", i, bad_parse[i]);
        }
        assert_int_equal(r, CR_E_FORMAT);
        assert_null(kf.kdf); /* cleared on failure */
    }

    /* Parses, but cannot be unlocked. */
    cr_key k;
    _cleanup_free_ char *good = make_keyfile("pw", "scrypt", 16, 1, 1, 64, v1_master_json());
    cr_keyfile kf;
    assert_int_equal(cr_keyfile_parse(good, strlen(good), &kf), 0);
    cr_keyfile t = kf;
    t.N = 15; /* not a power of two */
    assert_int_equal(cr_keyfile_unlock(&t, "pw", 2, &k), CR_E_FORMAT);
    t.N = 1;
    assert_int_equal(cr_keyfile_unlock(&t, "pw", 2, &k), CR_E_FORMAT);
    t.N = 16, t.r = 0;
    assert_int_equal(cr_keyfile_unlock(&t, "pw", 2, &k), CR_E_FORMAT);
    t.r = 1, t.p = 0;
    assert_int_equal(cr_keyfile_unlock(&t, "pw", 2, &k), CR_E_FORMAT);
    t.p = 1;
    t.data.len = 31; /* shorter than IV + MAC */
    assert_int_equal(cr_keyfile_unlock(&t, "pw", 2, &k), CR_E_FORMAT);
    t.data.len = kf.data.len;
    t.data.data[20] ^= 1;
    assert_int_equal(cr_keyfile_unlock(&t, "pw", 2, &k), CR_E_AUTH);
    t.data.data[20] ^= 1;
    t.kdf = NULL; /* missing kdf */
    int r = cr_keyfile_unlock(&t, "pw", 2, &k);
    assert_true(r == CR_E_UNSUPPORTED || r == CR_E_FORMAT);
    cr_keyfile_clear(&kf);

    /* Absent informational members are fine; JSON null as well. */
    const char *minimal = "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\"AAAA\",\"data\":\"AAAA\",\"created\":null}";
    assert_int_equal(cr_keyfile_parse(minimal, strlen(minimal), &kf), 0);
    assert_null(kf.created);
    assert_null(kf.username);
    assert_int_equal(kf.salt.len, 3);
    cr_keyfile_clear(&kf);
}

/* ---- config --------------------------------------------------------------- */

static void test_config_vectors(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *cv = member(repo_vec(repo_names[i]), "config");
        cr_key mk;
        master_of(repo_names[i], &mk);
        size_t n;
        _cleanup_free_ uint8_t *file = hex_alloc(str_member(cv, "file_hex"), &n);
        /* The file in the repository is the same. */
        char path[256];
        snprintf(path, sizeof path, "fixtures/repos/%s/config", repo_names[i]);
        size_t fn;
        _cleanup_free_ char *disk = read_file(path, &fn);
        assert_int_equal(fn, n);
        assert_memory_equal(disk, file, n);

        assert_true(n > CR_CRYPTO_OVERHEAD);
        _cleanup_free_ char *plain = malloc(n - CR_CRYPTO_OVERHEAD + 1);
        assert_int_equal(cr_open(&mk, file, n, (uint8_t *)plain), 0);
        const char *want = str_member(cv, "plaintext");
        assert_int_equal(n - CR_CRYPTO_OVERHEAD, strlen(want));
        assert_memory_equal(plain, want, strlen(want));

        cr_config cfg;
        assert_int_equal(cr_config_parse(plain, n - CR_CRYPTO_OVERHEAD, &cfg), 0);
        assert_int_equal(cfg.version, (unsigned)num_member(cv, "version"));
        cr_id id = id_hex(str_member(cv, "id"));
        assert_true(cr_id_eq(&cfg.id, &id));
        assert_int_equal(cfg.chunker_pol, strtoull(str_member(cv, "chunker_polynomial"), NULL, 16));

        _cleanup_buf_ cr_buf out = CR_BUF_INIT;
        assert_int_equal(cr_config_encode(&cfg, &out), 0);
        assert_buf_str(&out, want);

        /* Another repository's master key cannot open it (v2-pruned is a
         * copy of v2-two-snapshots and shares its key). */
        for (size_t j = 0; j < NREPOS; j++) {
            cr_key other;
            master_of(repo_names[j], &other);
            if (memcmp(&other, &mk, sizeof mk) == 0) continue;
            assert_int_equal(cr_open(&other, file, n, (uint8_t *)plain), CR_E_AUTH);
        }
    }
}

static int parse_cfg(const char *json, cr_config *cfg)
{
    return cr_config_parse(json, strlen(json), cfg);
}

#define CFG_ID "\"id\":\"21ee2ad0542ffa75f6370af5430fe3e067e5b4dff8abdc8bf64239ae26b916f5\""

static void test_config_errors(void **state)
{
    cr_config cfg;
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "null",
        "{}",
        "{\"version\":1," CFG_ID "}",                                                  /* no polynomial */
        "{\"version\":1,\"chunker_polynomial\":\"3ebad66b3ca597\"}",                   /* no id */
        "{" CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597\"}",                      /* no version */
        "{\"version\":\"1\"," CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597\"}",
        "{\"version\":1.0," CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597\"}",
        "{\"version\":-1," CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597\"}",
        "{\"version\":1,\"id\":\"21ee\",\"chunker_polynomial\":\"3ebad66b3ca597\"}",
        "{\"version\":1,\"id\":\"21ee2ad0542ffa75f6370af5430fe3e067e5b4dff8abdc8bf64239ae26b916fg\","
        "\"chunker_polynomial\":\"3ebad66b3ca597\"}",
        "{\"version\":1,\"id\":null,\"chunker_polynomial\":\"3ebad66b3ca597\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"xyz\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":3ebad66b3ca597}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":17632583346890135}",
        /* Go's strconv.ParseUint(s, 16, 64) refuses a prefix, a sign and spaces */
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"0x3ebad66b3ca597\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"+3ebad66b3ca597\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"-3ebad66b3ca597\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\" 3ebad66b3ca597\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597 \"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"3ebad66b\\u00003ca597\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"3eba_d66b3ca597\"}",
        /* overflow */
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"13ebad66b3ca5970000\"}",
        /* reducible: x * (x^53 + ...), x^2, 0, 1 */
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"7d75acd6794b2e\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"4\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"0\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"1\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597\"} {}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = parse_cfg(bad[i], &cfg);
        if (r != CR_E_FORMAT) fail_msg("case %zu: got %d for %s", i, r, bad[i]);
    }
    /* Versions other than 1 and 2 are refused as unsupported. */
    static const char *const unsupported[] = {
        "{\"version\":3," CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597\"}",
        "{\"version\":0," CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597\"}",
        "{\"version\":4294967295," CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597\"}",
    };
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        int r = parse_cfg(unsupported[i], &cfg);
        if (r != CR_E_UNSUPPORTED) fail_msg("case %zu: got %d for %s", i, r, unsupported[i]);
    }

    /* Irreducibility answers from the chunker vectors. */
    const cJSON *irr = member(member(vectors, "chunker_vectors"), "irreducible"), *p;
    cJSON_ArrayForEach(p, irr) {
        char json[256];
        snprintf(json, sizeof json, "{\"version\":2," CFG_ID ",\"chunker_polynomial\":\"%s\"}", p->string);
        int r = parse_cfg(json, &cfg);
        if (cJSON_IsTrue(p)) {
            assert_int_equal(r, 0);
            assert_int_equal(cfg.chunker_pol, strtoull(p->string, NULL, 16));
        } else {
            assert_int_equal(r, CR_E_FORMAT);
        }
    }

    /* Accepted variations: upper-case hex, leading zeros (ParseUint allows
     * both), case-insensitive member names, unknown members. */
    static const char *const good[] = {
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"3EBAD66B3CA597\"}",
        "{\"version\":1," CFG_ID ",\"chunker_polynomial\":\"00000000003ebad66b3ca597\"}",
        "{\"Version\":1,\"ID\":\"21EE2AD0542FFA75F6370AF5430FE3E067E5B4DFF8ABDC8BF64239AE26B916F5\","
        "\"Chunker_Polynomial\":\"3ebad66b3ca597\",\"future\":[1,2]}",
        " {\"version\":1," CFG_ID ",\"chunker_polynomial\":\"3ebad66b3ca597\"}\n",
    };
    cr_id want = id_hex("21ee2ad0542ffa75f6370af5430fe3e067e5b4dff8abdc8bf64239ae26b916f5");
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        memset(&cfg, 0, sizeof cfg);
        int r = parse_cfg(good[i], &cfg);
        if (r != 0) fail_msg("case %zu: got %d (%s) for %s", i, r, cr_error_message(), good[i]);
        assert_int_equal(cfg.version, 1);
        assert_int_equal(cfg.chunker_pol, 0x3ebad66b3ca597ull);
        assert_true(cr_id_eq(&cfg.id, &want));
    }

    /* Encoding: lower-case hex polynomial without 0x, exact member order. */
    cfg.version = 2;
    cfg.chunker_pol = 0x31a66d7821ee0dull;
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_config_encode(&cfg, &out), 0);
    assert_buf_str(&out, "{\"version\":2,\"id\":\"21ee2ad0542ffa75f6370af5430fe3e067e5b4dff8abdc8bf64239ae26b916f5\","
                         "\"chunker_polynomial\":\"31a66d7821ee0d\"}");
}

/* ---- unpacked files --------------------------------------------------- */

static size_t frames_without_size;

static void check_unpacked(unsigned version, const char *plain_hex, const char *json)
{
    size_t n;
    _cleanup_free_ uint8_t *plain = hex_alloc(plain_hex, &n);
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    assert_int_equal(cr_unpacked_decode(version, plain, n, &out), 0);
    assert_buf_str(&out, json);
    assert_int_equal(out.data[out.len], 0); /* NUL-terminated for the JSON reader */

    if (version >= 2 && n > 1 && plain[0] == 2) {
        if (ZSTD_getFrameContentSize(plain + 1, n - 1) == ZSTD_CONTENTSIZE_UNKNOWN) frames_without_size++;
        /* Every truncation is an error, never a crash or a silent success. */
        for (size_t k = 0; k < n; k++) {
            cr_buf t = CR_BUF_INIT;
            int r = cr_unpacked_decode(version, plain, k, &t);
            if (k == 0) assert_int_equal(r, 0); /* empty: passed through */
            else if (r != CR_E_FORMAT) fail_msg("truncation to %zu bytes: %d", k, r);
            cr_buf_free(&t);
        }
        /* Garbage appended after the frame. */
        _cleanup_free_ uint8_t *more = malloc(n + 3);
        memcpy(more, plain, n);
        memcpy(more + n, "abc", 3);
        assert_int_equal(cr_unpacked_decode(version, more, n + 3, &out), CR_E_FORMAT);
        /* One damaged byte in the frame: refused or decoded, never a crash. */
        for (size_t k = 1; k < n; k += 7) {
            more[k] ^= 0x41;
            cr_buf t = CR_BUF_INIT;
            int r = cr_unpacked_decode(version, more, n, &t);
            assert_true(r == 0 || r == CR_E_FORMAT);
            cr_buf_free(&t);
            more[k] ^= 0x41;
        }
        /* Type byte 0x03 (or anything but 0x02, '{', '['): unsupported. */
        static const uint8_t types[] = {0x00, 0x01, 0x03, 0x7a, 0xff};
        for (size_t i = 0; i < sizeof types; i++) {
            more[0] = types[i];
            assert_int_equal(cr_unpacked_decode(version, more, n, &out), CR_E_FORMAT);
        }
    }
}

static void test_unpacked_vectors(void **state)
{
    size_t count = 0;
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *rv = repo_vec(repo_names[i]);
        unsigned version = (unsigned)num_member(member(rv, "config"), "version");
        const cJSON *f;
        cJSON_ArrayForEach(f, member(rv, "index_files")) {
            const cJSON *dh = member(f, "decrypted_hex");
            const char *json = str_member(f, "json");
            if (cJSON_IsString(dh)) {
                assert_string_equal(str_member(f, "encoding"), "zstd");
                check_unpacked(version, dh->valuestring, json);
            } else {
                /* v1: the plaintext is the JSON itself */
                assert_int_equal(version, 1);
                _cleanup_buf_ cr_buf out = CR_BUF_INIT;
                assert_int_equal(cr_unpacked_decode(version, (const uint8_t *)json, strlen(json), &out), 0);
                assert_buf_str(&out, json);
            }
            count++;
        }
        cJSON_ArrayForEach(f, member(rv, "snapshots")) {
            check_unpacked(version, str_member(f, "decrypted_hex"), str_member(f, "json"));
            /* And the stored file decrypts to that plaintext with the master key. */
            cr_key mk;
            master_of(repo_names[i], &mk);
            size_t fn, pn;
            _cleanup_free_ uint8_t *file = hex_alloc(str_member(f, "file_hex"), &fn);
            _cleanup_free_ uint8_t *plain = hex_alloc(str_member(f, "decrypted_hex"), &pn);
            cr_id id = id_hex(str_member(f, "id")), got;
            cr_sha256(file, fn, got.b);
            assert_true(cr_id_eq(&id, &got));
            _cleanup_free_ uint8_t *dec = malloc(fn);
            assert_int_equal(cr_open(&mk, file, fn, dec), 0);
            assert_int_equal(fn - CR_CRYPTO_OVERHEAD, pn);
            assert_memory_equal(dec, plain, pn);
            count++;
        }
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, member(vectors, "samples")) {
        check_unpacked(2, str_member(s, "decrypted_hex"), str_member(s, "json"));
        count++;
    }
    assert_int_equal(count, 11); /* 5 index files, 5 snapshots, 1 lock */
    /* Some of restic's frames (a snapshot, the lock) carry no content size. */
    assert_int_equal(frames_without_size, 2);
}

/* A cr_zstd_sink that collects the pieces; a piece never exceeds its room. */
static int collect_piece(void *ud, uint8_t *piece, size_t n)
{
    assert_true(n > 0 && n <= 1000);
    return cr_buf_append(ud, piece, n);
}

static void test_unpacked_edge(void **state)
{
    _cleanup_buf_ cr_buf out = CR_BUF_INIT;
    /* v2 accepts raw JSON written by v1-era code. */
    const char *obj = "{\"packs\":[]}\n", *arr = "[]";
    assert_int_equal(cr_unpacked_decode(2, (const uint8_t *)obj, strlen(obj), &out), 0);
    assert_buf_str(&out, obj);
    assert_int_equal(cr_unpacked_decode(2, (const uint8_t *)arr, strlen(arr), &out), 0);
    assert_buf_str(&out, arr);
    /* Empty plaintext: passed through as empty. */
    assert_int_equal(cr_unpacked_decode(2, (const uint8_t *)"", 0, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(cr_unpacked_decode(1, (const uint8_t *)"", 0, &out), 0);
    assert_int_equal(out.len, 0);
    /* v1 never decompresses. */
    const uint8_t v1odd[] = {0x02, 0x28, 0xb5};
    assert_int_equal(cr_unpacked_decode(1, v1odd, sizeof v1odd, &out), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, v1odd, 3);
    /* Bare 0x02 and 0x02 + junk. */
    const uint8_t only2[] = {0x02};
    assert_int_equal(cr_unpacked_decode(2, only2, 1, &out), CR_E_FORMAT);
    const uint8_t junk[] = {0x02, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0, 0, 0};
    assert_int_equal(cr_unpacked_decode(2, junk, sizeof junk, &out), CR_E_FORMAT);
    /* Whitespace before '{' is not JSON-first in restic's sense. */
    const uint8_t sp[] = {' ', '{', '}'};
    assert_int_equal(cr_unpacked_decode(2, sp, sizeof sp, &out), CR_E_FORMAT);

    /* A frame written by libzstd with a checksum and a content size, and
     * two concatenated frames: both decode. */
    const char *text = "{\"time\":\"2023-01-01T10:00:00Z\",\"tree\":null,\"paths\":null}";
    size_t tl = strlen(text);
    uint8_t buf[512];
    buf[0] = 2;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    size_t zn = ZSTD_compress2(cc, buf + 1, sizeof buf - 1, text, tl);
    assert_false(ZSTD_isError(zn));
    assert_int_equal(cr_unpacked_decode(2, buf, zn + 1, &out), 0);
    assert_buf_str(&out, text);
    size_t zn2 = ZSTD_compress2(cc, buf + 1 + zn, sizeof buf - 1 - zn, "!", 1);
    assert_false(ZSTD_isError(zn2));
    assert_int_equal(cr_unpacked_decode(2, buf, 1 + zn + zn2, &out), 0);
    assert_int_equal(out.len, tl + 1);
    /* A damaged checksum is refused. */
    buf[zn] ^= 1;
    assert_int_equal(cr_unpacked_decode(2, buf, zn + 1, &out), CR_E_FORMAT);
    ZSTD_freeCCtx(cc);

    /* A highly compressible document (1 MiB of spaces inside JSON) decodes in full. */
    size_t big = 1 << 20;
    _cleanup_free_ char *doc = malloc(big);
    memset(doc, ' ', big);
    doc[0] = '[';
    doc[big - 1] = ']';
    _cleanup_buf_ cr_buf z = CR_BUF_INIT;
    assert_int_equal(cr_zstd_compress((const uint8_t *)doc, big, 3, &z), 0);
    _cleanup_buf_ cr_buf framed = CR_BUF_INIT;
    assert_int_equal(cr_buf_putc(&framed, 2), 0);
    assert_int_equal(cr_buf_append(&framed, z.data, z.len), 0);
    assert_int_equal(cr_unpacked_decode(2, framed.data, framed.len, &out), 0);
    assert_int_equal(out.len, big);
    assert_memory_equal(out.data, doc, big);

    /* The same frame handed on in small pieces decodes to the same bytes. */
    uint32_t x = 1;
    for (size_t i = 0; i < big; i++) doc[i] = (char)("{}[]\"abc,:0123 "[((x = x * 1103515245u + 12345u) >> 16) % 16]);
    _cleanup_free_ uint8_t *piece = malloc(1000);
    cr_buf_reset(&framed);
    assert_int_equal(cr_buf_putc(&framed, 2), 0);
    assert_int_equal(cr_zstd_compress_pieces((const uint8_t *)doc, big, 3, piece, 1000, collect_piece, &framed), 0);
    assert_true(framed.len > 1000);
    assert_int_equal(cr_unpacked_decode(2, framed.data, framed.len, &out), 0);
    assert_int_equal(out.len, big);
    assert_memory_equal(out.data, doc, big);
}

/* The guess that lets "auto" store media and archives as they are: random
 * bytes are judged incompressible; anything with a compressible sample at
 * the start, middle or end, and anything under 64 KiB, is compressed. */
static void test_incompressible_guess(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    _cleanup_free_ uint8_t *b = malloc(n);
    assert_non_null(b);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (uint8_t)(x >> 24);
    }
    assert_true(cr_zstd_looks_incompressible(b, n));
    assert_false(cr_zstd_looks_incompressible(b, 64 * 1024 - 1));
    assert_true(cr_zstd_looks_incompressible(b, 64 * 1024));
    /* one compressible sample is enough: text at the end, zeros at the start, a repeat in the middle */
    const size_t where[] = {n - 6000, 0, n / 2 - 3000};
    for (size_t k = 0; k < 3; k++) {
        _cleanup_free_ uint8_t *c = malloc(n);
        memcpy(c, b, n);
        if (k == 0)
            for (size_t i = 0; i < 6000; i++) c[where[k] + i] = (uint8_t)"the quick brown fox "[i % 20];
        else if (k == 1) memset(c, 0, 6000);
        else memcpy(c + where[k] + 3000, c + where[k], 3000);
        assert_false(cr_zstd_looks_incompressible(c, n));
    }
    /* Base64 of random bytes (6 bits a byte) is still worth compressing. */
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[b[i] & 63];
    assert_false(cr_zstd_looks_incompressible(b, n));
}

/* ---- index files ---------------------------------------------------------- */

static cr_blob_type blob_type_of(const char *s)
{
    if (!strcmp(s, "data")) return CR_BLOB_DATA;
    assert_string_equal(s, "tree");
    return CR_BLOB_TREE;
}

/* Check that every blob of the JSON (read independently with cJSON) is
 * found in idx at exactly that location. */
static size_t check_index_json_entries(const cr_index *idx, const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    assert_non_null(doc);
    size_t n = 0;
    const cJSON *p, *b;
    cJSON_ArrayForEach(p, member(doc, "packs")) {
        cr_id pack = id_hex(str_member(p, "id"));
        cJSON_ArrayForEach(b, member(p, "blobs")) {
            cr_id id = id_hex(str_member(b, "id"));
            size_t count = 0;
            const cr_index_entry *e = cr_index_lookup(idx, blob_type_of(str_member(b, "type")), &id, &count);
            assert_non_null(e);
            assert_true(count >= 1);
            bool found = false;
            for (size_t i = 0; i < count; i++) {
                assert_true(cr_id_eq(&e[i].id, &id));
                if (!cr_id_eq(&idx->packs[e[i].pack], &pack)) continue;
                if (e[i].offset != (uint32_t)num_member(b, "offset")) continue;
                assert_int_equal(e[i].length, (uint32_t)num_member(b, "length"));
                const cJSON *ul = cJSON_GetObjectItemCaseSensitive(b, "uncompressed_length");
                assert_int_equal(e[i].ulen, ul ? (uint32_t)ul->valuedouble : 0);
                assert_int_equal(cr_index_entry_plain_len(&e[i]),
                                 ul ? (uint32_t)ul->valuedouble : (uint32_t)num_member(b, "length") - 32);
                found = true;
            }
            assert_true(found);
            n++;
        }
    }
    cJSON_Delete(doc);
    return n;
}

static void test_index_vectors(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *rv = repo_vec(repo_names[i]);
        unsigned version = (unsigned)num_member(member(rv, "config"), "version");
        cr_index *idx = cr_index_new();
        assert_non_null(idx);
        const cJSON *f;
        size_t listed = 0;
        cJSON_ArrayForEach(f, member(rv, "index_files")) {
            const char *json = str_member(f, "json");
            assert_int_equal(cr_index_add_json(idx, json, strlen(json), version), 0);
        }
        /* Before finishing, lookups find nothing. */
        cr_id probe = id_hex(str_member(cJSON_GetArrayItem(member(cJSON_GetArrayItem(member(rv, "packs"), 0), "entries"), 0), "id"));
        size_t count = 99;
        assert_null(cr_index_lookup(idx, CR_BLOB_DATA, &probe, &count));
        assert_int_equal(count, 0);
        cr_index_finish(idx);
        cJSON_ArrayForEach(f, member(rv, "index_files")) listed += check_index_json_entries(idx, str_member(f, "json"));
        assert_int_equal(idx->nblobs, listed);

        /* Every pack entry from the vectors (headers) is in the index. */
        const cJSON *p, *e;
        size_t entries = 0;
        cJSON_ArrayForEach(p, member(rv, "packs")) {
            cr_id pack = id_hex(str_member(p, "id"));
            cJSON_ArrayForEach(e, member(p, "entries")) {
                cr_id id = id_hex(str_member(e, "id"));
                const cr_index_entry *x = cr_index_lookup(idx, blob_type_of(str_member(e, "type")), &id, &count);
                assert_int_equal(count, 1);
                assert_true(cr_id_eq(&idx->packs[x->pack], &pack));
                assert_int_equal(x->offset, (uint32_t)num_member(e, "offset"));
                assert_int_equal(x->length, (uint32_t)num_member(e, "length"));
                const cJSON *ul = member(e, "uncompressed_length");
                assert_int_equal(x->ulen, cJSON_IsNumber(ul) ? (uint32_t)ul->valuedouble : 0);
                assert_int_equal(cr_index_entry_plain_len(x), (uint32_t)num_member(e, "plaintext_length"));
                /* The same ID as the other type is unknown. */
                cr_blob_type other = x->type == CR_BLOB_DATA ? CR_BLOB_TREE : CR_BLOB_DATA;
                assert_null(cr_index_lookup(idx, other, &id, &count));
                assert_int_equal(count, 0);
                entries++;
            }
        }
        assert_int_equal(entries, idx->nblobs);

        /* Every chunk location from the file vectors. */
        const cJSON *file, *content, *chunk;
        cJSON_ArrayForEach(file, member(rv, "files")) {
            cJSON_ArrayForEach(content, file) {
                cJSON_ArrayForEach(chunk, member(content, "chunks")) {
                    cr_id id = id_hex(str_member(chunk, "id")), pack = id_hex(str_member(chunk, "pack"));
                    const cr_index_entry *x = cr_index_lookup(idx, CR_BLOB_DATA, &id, &count);
                    assert_int_equal(count, 1);
                    assert_true(cr_id_eq(&idx->packs[x->pack], &pack));
                    assert_int_equal(x->offset, (uint32_t)num_member(chunk, "pack_offset"));
                    assert_int_equal(x->length, (uint32_t)num_member(chunk, "stored_length"));
                    assert_int_equal(cr_index_entry_plain_len(x), (uint32_t)num_member(chunk, "length"));
                }
            }
        }

        /* An unknown ID. */
        cr_id zero;
        memset(&zero, 0, sizeof zero);
        assert_null(cr_index_lookup(idx, CR_BLOB_DATA, &zero, &count));
        assert_int_equal(count, 0);
        memset(&zero, 0xff, sizeof zero);
        assert_null(cr_index_lookup(idx, CR_BLOB_TREE, &zero, &count));
        cr_index_free(idx);
    }
    cr_index_free(NULL);
}

static void test_index_duplicates(void **state)
{
    const cJSON *rv = repo_vec("v2");
    const char *json = str_member(cJSON_GetArrayItem(member(rv, "index_files"), 0), "json");
    cr_index *idx = cr_index_new();
    /* The same file twice: exact duplicates collapse. */
    assert_int_equal(cr_index_add_json(idx, json, strlen(json), 2), 0);
    size_t once = idx->nblobs;
    assert_int_equal(cr_index_add_json(idx, json, strlen(json), 2), 0);
    assert_int_equal(idx->nblobs, 2 * once);
    cr_index_finish(idx);
    assert_int_equal(idx->nblobs, once);
    assert_int_equal(idx->npacks, (size_t)cJSON_GetArraySize(member(rv, "packs")));

    /* The same blobs in another pack (a copy of the first pack under a new
     * name): both locations are kept. */
    const cJSON *pack0 = cJSON_GetArrayItem(member(rv, "packs"), 0);
    const char *pid = str_member(pack0, "id");
    _cleanup_free_ char *copy = strdup(json);
    char *at = strstr(copy, pid);
    assert_non_null(at);
    at[0] = at[0] == '0' ? '1' : '0';
    cr_id newpack, oldpack = id_hex(pid);
    assert_int_equal(cr_id_from_hex(&newpack, at, 64), 0);
    assert_false(cr_id_eq(&newpack, &oldpack));
    assert_int_equal(cr_index_add_json(idx, copy, strlen(copy), 2), 0);
    cr_index_finish(idx);
    const cJSON *e;
    cJSON_ArrayForEach(e, member(pack0, "entries")) {
        cr_id id = id_hex(str_member(e, "id"));
        size_t count;
        const cr_index_entry *x = cr_index_lookup(idx, blob_type_of(str_member(e, "type")), &id, &count);
        assert_int_equal(count, 2);
        bool seen_old = false, seen_new = false;
        for (size_t i = 0; i < count; i++) {
            assert_int_equal(x[i].offset, (uint32_t)num_member(e, "offset"));
            seen_old |= cr_id_eq(&idx->packs[x[i].pack], &oldpack);
            seen_new |= cr_id_eq(&idx->packs[x[i].pack], &newpack);
        }
        assert_true(seen_old && seen_new);
    }

    /* cr_index_add: a third location at another offset of the same pack. */
    const cJSON *e0 = cJSON_GetArrayItem(member(pack0, "entries"), 0);
    cr_id id = id_hex(str_member(e0, "id"));
    cr_blob_type t0 = blob_type_of(str_member(e0, "type"));
    cr_index_entry ne = {.id = id, .offset = 12345, .length = 100, .ulen = 0, .type = (uint8_t)t0};
    assert_int_equal(cr_index_add(idx, &oldpack, &ne), 0);
    size_t count;
    assert_null(cr_index_lookup(idx, t0, &id, &count)); /* not sorted yet */
    cr_index_finish(idx);
    assert_non_null(cr_index_lookup(idx, t0, &id, &count));
    assert_int_equal(count, 3);
    uint32_t pos;
    assert_int_equal(cr_index_pack_pos(idx, &oldpack, &pos), 0);
    assert_true(cr_id_eq(&idx->packs[pos], &oldpack));
    size_t np = idx->npacks;
    cr_id fresh;
    memset(&fresh, 0x77, sizeof fresh);
    assert_int_equal(cr_index_pack_pos(idx, &fresh, &pos), 0);
    assert_int_equal(pos, np);
    assert_int_equal(idx->npacks, np + 1);
    cr_index_free(idx);
}

static void test_index_many_packs(void **state)
{
    /* Enough packs to grow the pack hash table several times. */
    cr_index *idx = cr_index_new();
    const size_t npacks = 5000;
    for (size_t i = 0; i < npacks; i++) {
        cr_id pack, blob;
        uint8_t seed[8];
        memcpy(seed, &i, sizeof i < 8 ? sizeof i : 8);
        cr_sha256(seed, sizeof seed, pack.b);
        cr_sha256(pack.b, sizeof pack.b, blob.b);
        cr_index_entry e = {.id = blob, .offset = (uint32_t)i, .length = 32 + (uint32_t)i, .type = CR_BLOB_TREE};
        assert_int_equal(cr_index_add(idx, &pack, &e), 0);
        assert_int_equal(cr_index_add(idx, &pack, &e), 0);
    }
    assert_int_equal(idx->npacks, npacks);
    cr_index_finish(idx);
    assert_int_equal(idx->nblobs, npacks);
    for (size_t i = 0; i < npacks; i++) {
        cr_id pack, blob;
        uint8_t seed[8];
        memcpy(seed, &i, sizeof i < 8 ? sizeof i : 8);
        cr_sha256(seed, sizeof seed, pack.b);
        cr_sha256(pack.b, sizeof pack.b, blob.b);
        size_t count;
        const cr_index_entry *x = cr_index_lookup(idx, CR_BLOB_TREE, &blob, &count);
        assert_int_equal(count, 1);
        assert_true(cr_id_eq(&idx->packs[x->pack], &pack));
        assert_int_equal(x->offset, i);
        uint32_t pos;
        assert_int_equal(cr_index_pack_pos(idx, &pack, &pos), 0);
        assert_int_equal(pos, x->pack);
    }
    assert_int_equal(idx->npacks, npacks);
    cr_index_free(idx);
}

/* Index files as restic writes them take a one-pass reader; anything else
 * the tree reader.  Both must give the same index: the vectors read as
 * they are and with an unknown member in front (which only the tree reader
 * accepts, and ignores). */
static void test_index_fast_path_same(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *rv = repo_vec(repo_names[i]);
        unsigned version = (unsigned)num_member(member(rv, "config"), "version");
        cr_index *fast = cr_index_new(), *tree = cr_index_new();
        const cJSON *f;
        cJSON_ArrayForEach(f, member(rv, "index_files")) {
            const char *json = str_member(f, "json");
            assert_int_equal(cr_index_add_json(fast, json, strlen(json), version), 0);
            const char *brace = strchr(json, '{');
            assert_non_null(brace);
            cr_buf other = CR_BUF_INIT;
            assert_int_equal(cr_buf_printf(&other, "{\"zz\":0,%s", brace + 1), 0);
            assert_int_equal(cr_index_add_json(tree, (const char *)other.data, other.len, version), 0);
            cr_buf_free(&other);
        }
        assert_int_equal(fast->nblobs, tree->nblobs);
        assert_int_equal(fast->npacks, tree->npacks);
        assert_memory_equal(fast->packs, tree->packs, fast->npacks * sizeof *fast->packs);
        for (size_t k = 0; k < fast->nblobs; k++) {
            const cr_index_entry *x = &fast->blobs[k], *y = &tree->blobs[k];
            assert_true(cr_id_eq(&x->id, &y->id));
            assert_int_equal(x->pack, y->pack);
            assert_int_equal(x->offset, y->offset);
            assert_int_equal(x->length, y->length);
            assert_int_equal(x->ulen, y->ulen);
            assert_int_equal(x->type, y->type);
        }
        cr_index_free(fast);
        cr_index_free(tree);
    }
}

/* A document the one-pass reader gives up on late (a second "packs", which
 * replaces the first as in Go): what it had added is taken back, packs too. */
#define P64B "3b359a389f1b2c5f8ddde77b704378a25401bc6bbfc6bc9fa691316a5648c226"
#define B64B "2a8276bfe9a5f3225965717a95325ac06c6e5f377143bd7029d7b28f609cacd3"
static void test_index_fast_path_rollback(void **state)
{
    cr_index *idx = cr_index_new();
    const char *json = "{\"packs\":[{\"id\":\"" P64B "\",\"blobs\":[{\"id\":\"" B64B
                       "\",\"type\":\"data\",\"offset\":0,\"length\":60}]}],\"packs\":[]}";
    assert_int_equal(cr_index_add_json(idx, json, strlen(json), 2), 0);
    assert_int_equal(idx->nblobs, 0);
    assert_int_equal(idx->npacks, 0);
    uint32_t pos;
    cr_id pack;
    assert_int_equal(cr_id_from_hex(&pack, P64B, 64), 0);
    assert_false(cr_index_find_pack(idx, &pack, &pos));
    /* the same pack in a good document afterwards gets position 0 */
    const char *good = "{\"packs\":[{\"id\":\"" P64B "\",\"blobs\":[{\"id\":\"" B64B
                       "\",\"type\":\"data\",\"offset\":0,\"length\":60}]}]}";
    assert_int_equal(cr_index_add_json(idx, good, strlen(good), 2), 0);
    assert_int_equal(idx->nblobs, 1);
    assert_true(cr_index_find_pack(idx, &pack, &pos));
    assert_int_equal(pos, 0);
    cr_index_free(idx);
}

#define P64 "3b359a389f1b2c5f8ddde77b704378a25401bc6bbfc6bc9fa691316a5648c226"
#define B64 "2a8276bfe9a5f3225965717a95325ac06c6e5f377143bd7029d7b28f609cacd3"

static int add_index(const char *json, unsigned version, size_t *nblobs)
{
    cr_index *idx = cr_index_new();
    int r = cr_index_add_json(idx, json, strlen(json), version);
    if (nblobs) {
        cr_index_finish(idx);
        *nblobs = idx->nblobs;
    }
    cr_index_free(idx);
    return r;
}

static void test_index_errors(void **state)
{
    /* Compressed entries in a v1 repository are refused; in v2 fine. */
    const char *v2json = str_member(cJSON_GetArrayItem(member(repo_vec("v2"), "index_files"), 0), "json");
    assert_int_equal(add_index(v2json, 1, NULL), CR_E_FORMAT);
    assert_int_equal(add_index(v2json, 2, NULL), 0);
    /* And the v1 index (no compression) is fine in both. */
    const char *v1json = str_member(cJSON_GetArrayItem(member(repo_vec("v1"), "index_files"), 0), "json");
    assert_int_equal(add_index(v1json, 1, NULL), 0);
    assert_int_equal(add_index(v1json, 2, NULL), 0);

    static const char *const bad[] = {
        "",
        "{",
        "null",
        "42",
        "\"packs\"",
        "{\"packs\":{}}",
        "{\"packs\":[1]}",
        "{\"packs\":[{}]}",
        "{\"packs\":[{\"id\":\"3b35\",\"blobs\":[]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":{}}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[null]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"type\":\"data\",\"offset\":0,\"length\":60}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"offset\":0,\"length\":60}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"blob\",\"offset\":0,\"length\":60}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"Data\",\"offset\":0,\"length\":60}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":0,\"offset\":0,\"length\":60}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"length\":60}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":0}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":-1,\"length\":60}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":4294967296,\"length\":60}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":0,\"length\":60.5}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":0,\"length\":31}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":0,\"length\":\"60\"}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":0,\"length\":60,"
        "\"uncompressed_length\":\"7\"}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":0,\"length\":60,"
        "\"uncompressed_length\":-7}]}]}",
        "{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":0,\"length\":60}]}]} x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = add_index(bad[i], 2, NULL);
        if (r != CR_E_FORMAT) fail_msg("case %zu: got %d for %s", i, r, bad[i]);
    }

    /* Accepted shapes. */
    size_t n;
    assert_int_equal(add_index("{}", 2, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(add_index("{\"packs\":null}", 2, &n), 0);
    assert_int_equal(add_index("{\"packs\":[]}\n", 2, &n), 0);
    assert_int_equal(add_index("{\"supersedes\":[\"" P64 "\"],\"packs\":[{\"id\":\"" P64 "\",\"blobs\":null}]}", 2, &n), 0);
    assert_int_equal(n, 0);
    /* Legacy (restic < 0.2) form: a bare array of packs. */
    assert_int_equal(add_index("[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"data\",\"offset\":0,\"length\":60}]}]",
                               1, &n), 0);
    assert_int_equal(n, 1);
    /* uncompressed_length null or absent: uncompressed (also in v1). */
    assert_int_equal(add_index("{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"tree\",\"offset\":0,"
                               "\"length\":60,\"uncompressed_length\":null}]}]}", 1, &n), 0);
    assert_int_equal(add_index("{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"tree\",\"offset\":0,"
                               "\"length\":60,\"uncompressed_length\":0}]}]}", 1, &n), 0);
    assert_int_equal(add_index("{\"packs\":[{\"id\":\"" P64 "\",\"blobs\":[{\"id\":\"" B64 "\",\"type\":\"tree\",\"offset\":0,"
                               "\"length\":60,\"uncompressed_length\":5}]}]}", 1, &n), CR_E_FORMAT);
    /* Case-insensitive member names as Go decodes them. */
    assert_int_equal(add_index("{\"Packs\":[{\"ID\":\"" P64 "\",\"Blobs\":[{\"Id\":\"" B64 "\",\"Type\":\"data\",\"Offset\":4294967295,"
                               "\"Length\":4294967295,\"Uncompressed_Length\":4294967295}]}]}", 2, &n), 0);
    assert_int_equal(n, 1);
}

/* ---- pack headers ---------------------------------------------------------- */

static void test_pack_header_vectors(void **state)
{
    for (size_t i = 0; i < NREPOS; i++) {
        const cJSON *rv = repo_vec(repo_names[i]);
        unsigned version = (unsigned)num_member(member(rv, "config"), "version");
        const cJSON *p;
        cJSON_ArrayForEach(p, member(rv, "packs")) {
            size_t n;
            _cleanup_free_ uint8_t *plain = hex_alloc(str_member(p, "header_plaintext_hex"), &n);
            uint64_t size = (uint64_t)num_member(p, "size"), hlen = (uint64_t)num_member(p, "header_length");
            assert_int_equal(hlen, n + CR_CRYPTO_OVERHEAD);
            uint64_t area = size - 4 - hlen;
            cr_pack_blob *blobs = NULL;
            size_t count = 0;
            assert_int_equal(cr_pack_header_parse(plain, n, version, area, &blobs, &count), 0);
            const cJSON *entries = member(p, "entries");
            assert_int_equal(count, (size_t)cJSON_GetArraySize(entries));
            for (size_t k = 0; k < count; k++) {
                const cJSON *e = cJSON_GetArrayItem(entries, (int)k);
                cr_id id = id_hex(str_member(e, "id"));
                assert_true(cr_id_eq(&blobs[k].id, &id));
                assert_int_equal(blobs[k].type, blob_type_of(str_member(e, "type")));
                assert_int_equal(blobs[k].offset, (uint32_t)num_member(e, "offset"));
                assert_int_equal(blobs[k].length, (uint32_t)num_member(e, "length"));
                const cJSON *ul = member(e, "uncompressed_length");
                assert_int_equal(blobs[k].ulen, cJSON_IsNumber(ul) ? (uint32_t)ul->valuedouble : 0);
                int tb = (int)num_member(e, "type_byte");
                assert_int_equal(tb >= 2, blobs[k].ulen != 0);
            }
            free(blobs);

            /* The blob area must match exactly. */
            blobs = NULL;
            assert_int_equal(cr_pack_header_parse(plain, n, version, area + 1, &blobs, &count), CR_E_FORMAT);
            assert_int_equal(cr_pack_header_parse(plain, n, version, area - 1, &blobs, &count), CR_E_FORMAT);
            assert_int_equal(cr_pack_header_parse(plain, n, version, 0, &blobs, &count), CR_E_FORMAT);
            /* Every truncation fails (the area no longer adds up, or an entry is cut). */
            for (size_t k = 1; k < n; k++)
                assert_int_equal(cr_pack_header_parse(plain, k, version, area, &blobs, &count), CR_E_FORMAT);
            /* A bad type byte in the first entry. */
            uint8_t t0 = plain[0];
            static const uint8_t badtypes[] = {4, 5, 0x10, 0x80, 0xff};
            for (size_t k = 0; k < sizeof badtypes; k++) {
                plain[0] = badtypes[k];
                assert_int_equal(cr_pack_header_parse(plain, n, version, area, &blobs, &count), CR_E_FORMAT);
            }
            plain[0] = t0;
            assert_null(blobs);
            /* Compressed entries in a v1 repository. */
            if (t0 >= 2) assert_int_equal(cr_pack_header_parse(plain, n, 1, area, &blobs, &count), CR_E_FORMAT);
        }
    }
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static void test_pack_header_synthetic(void **state)
{
    uint8_t h[37 + 41 + 37];
    /* data 100 bytes, compressed tree 64 bytes (ulen 1000), tree 32 bytes */
    h[0] = 0;
    put_le32(h + 1, 100);
    memset(h + 5, 0xa1, 32);
    h[37] = 3;
    put_le32(h + 38, 64);
    put_le32(h + 42, 1000);
    memset(h + 46, 0xb2, 32);
    h[78] = 1;
    put_le32(h + 79, 32);
    memset(h + 83, 0xc3, 32);
    cr_pack_blob *b = NULL;
    size_t count = 0;
    assert_int_equal(cr_pack_header_parse(h, sizeof h, 2, 196, &b, &count), 0);
    assert_int_equal(count, 3);
    assert_int_equal(b[0].type, CR_BLOB_DATA);
    assert_int_equal(b[0].offset, 0);
    assert_int_equal(b[0].length, 100);
    assert_int_equal(b[0].ulen, 0);
    assert_int_equal(b[0].id.b[0], 0xa1);
    assert_int_equal(b[1].type, CR_BLOB_TREE);
    assert_int_equal(b[1].offset, 100);
    assert_int_equal(b[1].length, 64);
    assert_int_equal(b[1].ulen, 1000);
    assert_int_equal(b[1].id.b[31], 0xb2);
    assert_int_equal(b[2].type, CR_BLOB_TREE);
    assert_int_equal(b[2].offset, 164);
    assert_int_equal(b[2].id.b[0], 0xc3);
    free(b);
    b = NULL;
    /* v1 refuses the compressed entry. */
    assert_int_equal(cr_pack_header_parse(h, sizeof h, 1, 196, &b, &count), CR_E_FORMAT);
    /* The compressed entry cut inside its ID. */
    assert_int_equal(cr_pack_header_parse(h, 37 + 40, 2, 164, &b, &count), CR_E_FORMAT);
    /* A 41-byte-looking entry declared as type 1 is parsed as 37 bytes: misaligned rest. */
    h[37] = 1;
    assert_int_equal(cr_pack_header_parse(h, sizeof h, 2, 196, &b, &count), CR_E_FORMAT);
    h[37] = 3;
    /* Blob shorter than IV + MAC. */
    put_le32(h + 79, 31);
    assert_int_equal(cr_pack_header_parse(h, sizeof h, 2, 195, &b, &count), CR_E_FORMAT);
    put_le32(h + 79, 32);
    assert_null(b);
    /* Empty header, empty blob area. */
    assert_int_equal(cr_pack_header_parse(h, 0, 2, 0, &b, &count), 0);
    assert_int_equal(count, 0);
    free(b);
    b = NULL;
    /* Offsets beyond 4 GiB. */
    uint8_t big[37 * 3];
    for (int i = 0; i < 3; i++) {
        big[i * 37] = 0;
        put_le32(big + i * 37 + 1, 0xfffffff0u);
        memset(big + i * 37 + 5, i, 32);
    }
    assert_int_equal(cr_pack_header_parse(big, sizeof big, 1, 3ull * 0xfffffff0u, &b, &count), CR_E_FORMAT);
    assert_int_equal(cr_pack_header_parse(big, 37, 1, 0xfffffff0u, &b, &count), 0);
    assert_int_equal(count, 1);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyfile_parse_vectors),
        cmocka_unit_test(test_keyfile_unlock_vectors),
        cmocka_unit_test(test_masterkey_vectors),
        cmocka_unit_test(test_masterkey_errors),
        cmocka_unit_test(test_keyfile_tiny),
        cmocka_unit_test(test_keyfile_errors),
        cmocka_unit_test(test_config_vectors),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_unpacked_vectors),
        cmocka_unit_test(test_unpacked_edge),
        cmocka_unit_test(test_incompressible_guess),
        cmocka_unit_test(test_index_vectors),
        cmocka_unit_test(test_index_duplicates),
        cmocka_unit_test(test_index_many_packs),
        cmocka_unit_test(test_index_errors),
        cmocka_unit_test(test_index_fast_path_same),
        cmocka_unit_test(test_index_fast_path_rollback),
        cmocka_unit_test(test_pack_header_vectors),
        cmocka_unit_test(test_pack_header_synthetic),
    };
    return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
