/* Key files and the master key (spec §5). */
#include "repo/repo.h"

#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

static int dup_string(const cr_json *v, char **out)
{
    *out = NULL;
    if (cr_json_is_nullish(v)) return 0;
    if (v->type != CR_JSON_STRING) return cr_error(CR_E_FORMAT, "expected a string");
    *out = strndup(v->str, v->len);
    return *out ? 0 : cr_error(-ENOMEM, "out of memory");
}

static int get_base64(const cr_json *obj, const char *name, cr_buf *out)
{
    const cr_json *v = cr_json_get(obj, name);
    if (!cr_json_is(v, CR_JSON_STRING)) return cr_error(CR_E_FORMAT, "key file: missing or invalid \"%s\"", name);
    int r = cr_base64_decode(out, v->str, v->len);
    return r < 0 ? cr_error(CR_E_FORMAT, "key file: \"%s\" is not valid base64", name) : 0;
}

static int keyfile_fill(const cr_json *root, cr_keyfile *kf)
{
    if (!cr_json_is(root, CR_JSON_OBJECT)) return cr_error(CR_E_FORMAT, "key file: not a JSON object");
    CR_TRY(dup_string(cr_json_get(root, "created"), &kf->created));
    CR_TRY(dup_string(cr_json_get(root, "username"), &kf->username));
    CR_TRY(dup_string(cr_json_get(root, "hostname"), &kf->hostname));
    CR_TRY(dup_string(cr_json_get(root, "kdf"), &kf->kdf));
    if (cr_json_u64(cr_json_get(root, "N"), &kf->N) < 0 || cr_json_u32(cr_json_get(root, "r"), &kf->r) < 0 ||
        cr_json_u32(cr_json_get(root, "p"), &kf->p) < 0)
        return cr_error(CR_E_FORMAT, "key file: invalid scrypt parameters");
    CR_TRY(get_base64(root, "salt", &kf->salt));
    CR_TRY(get_base64(root, "data", &kf->data));
    return 0;
}

int cr_keyfile_parse(const char *json, size_t n, cr_keyfile *kf)
{
    memset(kf, 0, sizeof *kf);
    cr_json_doc *doc = NULL;
    int r = cr_json_parse(json, n, &doc);
    if (r < 0) return cr_error_ctx(r, "key file");
    r = keyfile_fill(cr_json_root(doc), kf);
    cr_json_free(doc);
    if (r < 0) cr_keyfile_clear(kf);
    return r;
}

void cr_keyfile_clear(cr_keyfile *kf)
{
    free(kf->created);
    free(kf->username);
    free(kf->hostname);
    free(kf->kdf);
    cr_buf_free(&kf->salt);
    cr_buf_free(&kf->data);
    memset(kf, 0, sizeof *kf);
}

int cr_keyfile_unlock(const cr_keyfile *kf, const char *pw, size_t pwlen, cr_key *master)
{
    if (!kf->kdf || strcmp(kf->kdf, "scrypt"))
        return cr_error(CR_E_UNSUPPORTED, "key file: unsupported KDF \"%s\"", kf->kdf ? kf->kdf : "");
    if (kf->salt.len != 64) return cr_error(CR_E_FORMAT, "key file: salt must be 64 bytes, got %zu", kf->salt.len);
    uint8_t material[CR_KDF_OUTPUT];
    CR_TRY_CTX(cr_scrypt((const uint8_t *)pw, pwlen, kf->salt.data, kf->salt.len, kf->N, kf->r, kf->p, material,
                         sizeof material), "key file");
    cr_key user;
    cr_key_from_kdf(&user, material);
    explicit_bzero(material, sizeof material);
    if (kf->data.len < CR_CRYPTO_OVERHEAD) return cr_error(CR_E_FORMAT, "key file: data too short");
    size_t plen = kf->data.len - CR_CRYPTO_OVERHEAD;
    _cleanup_free_ char *plain = malloc(plen + 1);
    if (!plain) return cr_error(-ENOMEM, "out of memory");
    int r = cr_open(&user, kf->data.data, kf->data.len, (uint8_t *)plain);
    cr_key_wipe(&user);
    if (r < 0) return r == CR_E_AUTH ? CR_E_AUTH : r;
    r = cr_masterkey_parse(plain, plen, master);
    explicit_bzero(plain, plen);
    return r;
}

static int get_key_bytes(const cr_json *obj, const char *name, uint8_t *dst, size_t n)
{
    const cr_json *v = cr_json_get(obj, name);
    if (!cr_json_is(v, CR_JSON_STRING)) return cr_error(CR_E_FORMAT, "master key: missing \"%s\"", name);
    cr_buf b = CR_BUF_INIT;
    int r = cr_base64_decode(&b, v->str, v->len);
    if (r == 0 && b.len != n) r = CR_E_FORMAT;
    if (r == 0) memcpy(dst, b.data, n);
    if (b.data) explicit_bzero(b.data, b.len);
    cr_buf_free(&b);
    return r < 0 ? cr_error(CR_E_FORMAT, "master key: invalid \"%s\"", name) : 0;
}

int cr_masterkey_parse(const char *json, size_t n, cr_key *k)
{
    cr_json_doc *doc = NULL;
    int r = cr_json_parse(json, n, &doc);
    if (r < 0) return cr_error_ctx(r, "master key");
    const cr_json *root = cr_json_root(doc);
    const cr_json *mac = cr_json_get(root, "mac");
    r = get_key_bytes(root, "encrypt", k->enc, sizeof k->enc);
    if (r == 0) r = get_key_bytes(mac, "k", k->mac_k, sizeof k->mac_k);
    if (r == 0) r = get_key_bytes(mac, "r", k->mac_r, sizeof k->mac_r);
    cr_json_free(doc);
    if (r == 0 && !cr_key_is_valid(k)) r = cr_error(CR_E_FORMAT, "master key: invalid (zero) key");
    return r;
}

int cr_masterkey_encode(const cr_key *k, cr_buf *out)
{
    CR_TRY(cr_buf_puts(out, "{\"mac\":{\"k\":\""));
    CR_TRY(cr_base64_encode(out, k->mac_k, sizeof k->mac_k));
    CR_TRY(cr_buf_puts(out, "\",\"r\":\""));
    CR_TRY(cr_base64_encode(out, k->mac_r, sizeof k->mac_r));
    CR_TRY(cr_buf_puts(out, "\"},\"encrypt\":\""));
    CR_TRY(cr_base64_encode(out, k->enc, sizeof k->enc));
    return cr_buf_puts(out, "\"}");
}

/* ---- creating key files ----------------------------------------------- */

#include <time.h>

#include "util/gotime.h"

int cr_kdf_calibrate(cr_kdf_params *out)
{
    static const uint8_t salt[64];
    uint8_t material[CR_KDF_OUTPUT];
    struct timespec a, b;
    out->N = 1u << 15;
    out->r = 8;
    out->p = 1;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CR_TRY(cr_scrypt((const uint8_t *)"calibrate", 9, salt, sizeof salt, out->N, out->r, 1, material, sizeof material));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    /* p scales time linearly without more memory: aim for ~0.5 s like restic. */
    double p = t > 0 ? 0.5 / t : 1;
    out->p = p < 1 ? 1 : p > 16 ? 16 : (uint32_t)p;
    return 0;
}

int cr_keyfile_create(const cr_key *master, const char *pw, size_t pwlen, const cr_kdf_params *kdf,
                      const char *username, const char *hostname, cr_buf *json)
{
    uint8_t salt[64], material[CR_KDF_OUTPUT];
    CR_TRY(cr_random(salt, sizeof salt));
    CR_TRY(cr_scrypt((const uint8_t *)pw, pwlen, salt, sizeof salt, kdf->N, kdf->r, kdf->p, material, sizeof material));
    cr_key user;
    cr_key_from_kdf(&user, material);
    explicit_bzero(material, sizeof material);
    _cleanup_buf_ cr_buf mk = CR_BUF_INIT, sealed = CR_BUF_INIT;
    int r = cr_masterkey_encode(master, &mk);
    if (r == 0) r = cr_buf_resize(&sealed, mk.len + CR_CRYPTO_OVERHEAD);
    if (r == 0) r = cr_seal(&user, mk.data, mk.len, sealed.data);
    cr_key_wipe(&user);
    if (mk.data) explicit_bzero(mk.data, mk.len);
    CR_TRY(r);
    cr_time now = cr_time_now();
    CR_TRY(cr_buf_puts(json, "{\"created\":\""));
    CR_TRY(cr_time_format(json, &now));
    CR_TRY(cr_buf_puts(json, "\",\"username\":"));
    CR_TRY(cr_json_put_cstr(json, username ? username : ""));
    CR_TRY(cr_buf_puts(json, ",\"hostname\":"));
    CR_TRY(cr_json_put_cstr(json, hostname ? hostname : ""));
    CR_TRY(cr_buf_printf(json, ",\"kdf\":\"scrypt\",\"N\":%llu,\"r\":%u,\"p\":%u,\"salt\":\"", (unsigned long long)kdf->N, kdf->r, kdf->p));
    CR_TRY(cr_base64_encode(json, salt, sizeof salt));
    CR_TRY(cr_buf_puts(json, "\",\"data\":\""));
    CR_TRY(cr_base64_encode(json, sealed.data, sealed.len));
    return cr_buf_puts(json, "\"}");
}
