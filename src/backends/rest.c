/* REST backend (spec §23.4): restic's HTTP protocol, as served by rest-server
 * and `rclone serve restic`.  Location: rest:http(s)://[user:pass@]host[:port]/[path/]. */
#include "backends/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/http.h"
#include "backends/rest_proto.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/id.h"
#include "util/json.h"

#define REST_V2 "application/vnd.x.restic.rest.v2"
#define DEFAULT_CONNECTIONS 5

typedef cr_rest_backend rest_backend;

static rest_backend *as_rest(cr_backend *b)
{
    return (rest_backend *)b;
}

static const char *const accept_only[] = {"Accept: " REST_V2, NULL};
static const char *const save_headers[] = {"Accept: " REST_V2, "Content-Type: application/octet-stream", NULL};

/* ---- location --------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* URL userinfo parts are percent-encoded. */
static char *percent_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            *o++ = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

typedef struct {
    char *base_url, *username, *password;
} rest_location;

static void location_free(rest_location *l)
{
    free(l->base_url);
    if (l->password) explicit_bzero(l->password, strlen(l->password));
    free(l->username);
    free(l->password);
}

static int split_userinfo(const char *info, size_t n, rest_location *l)
{
    const char *colon = memchr(info, ':', n);
    size_t ulen = colon ? (size_t)(colon - info) : n;
    l->username = percent_decode(info, ulen);
    if (colon) l->password = percent_decode(colon + 1, n - ulen - 1);
    if (!l->username || (colon && !l->password)) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

/* Without userinfo in the URL, RESTIC_REST_USERNAME / RESTIC_REST_PASSWORD. */
static int credentials_from_env(rest_location *l)
{
    const char *u = getenv("RESTIC_REST_USERNAME"), *p = getenv("RESTIC_REST_PASSWORD");
    if (u && *u && !(l->username = strdup(u))) return cr_error(-ENOMEM, "out of memory");
    if (p && *p && !(l->password = strdup(p))) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

static int parse_location(const char *loc, rest_location *l)
{
    size_t scheme_len = !strncmp(loc, "http://", 7) ? 7 : !strncmp(loc, "https://", 8) ? 8 : 0;
    if (!scheme_len) return cr_error(CR_E_USAGE, "rest: location must start with http:// or https://");
    const char *auth = loc + scheme_len;
    const char *auth_end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth_end; p++)
        if (*p == '@') at = p;
    const char *host = at ? at + 1 : auth;
    if (host == auth_end) return cr_error(CR_E_USAGE, "rest: no host in the location");
    if (*auth_end == '?' || *auth_end == '#') return cr_error(CR_E_USAGE, "rest: query or fragment in the location");
    CR_TRY(at ? split_userinfo(auth, (size_t)(at - auth), l) : credentials_from_env(l));
    size_t path_len = strlen(auth_end);
    while (path_len > 0 && auth_end[path_len - 1] == '/') path_len--;
    if (memchr(auth_end, '?', path_len) || memchr(auth_end, '#', path_len))
        return cr_error(CR_E_USAGE, "rest: query or fragment in the location");
    if (asprintf(&l->base_url, "%.*s%.*s%.*s", (int)scheme_len, loc, (int)(auth_end - host), host, (int)path_len, auth_end) < 0) {
        l->base_url = NULL;
        return cr_error(-ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- open / create / close ------------------------------------------------ */

/* -o rest.connections=N; the environment variable stays for older test scripts. */
static int connections_setting(unsigned *out)
{
    const char *s = getenv("CRESTIC_REST_CONNECTIONS");
    char *end;
    unsigned long v = s && *s ? strtoul(s, &end, 10) : 0;
    unsigned def = s && *s && !*end && v >= 1 && v <= 128 ? (unsigned)v : DEFAULT_CONNECTIONS;
    return cr_backend_option_uint("rest", "connections", def, 1, 128, out);
}

static int display_location(const char *loc, char **out)
{
    _cleanup_buf_ cr_buf redacted = CR_BUF_INIT;
    CR_TRY(cr_http_redact_url(loc, &redacted));
    if (asprintf(out, "rest:%s", (const char *)redacted.data) < 0) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

void cr_rest_release(cr_rest_backend *rb)
{
    cr_http_free(rb->http);
    free(rb->base_url);
    free(rb->base.location);
    rb->http = NULL;
    rb->base_url = rb->base.location = NULL;
}

static void rest_close(cr_backend *b)
{
    cr_rest_release(as_rest(b));
    free(b);
}

static int rest_open(const char *loc, cr_backend **out)
{
    rest_location l = {0};
    int r = parse_location(loc, &l);
    rest_backend *rb = r == 0 ? calloc(1, sizeof *rb) : NULL;
    if (r == 0 && !rb) r = cr_error(-ENOMEM, "out of memory");
    if (r == 0) {
        cr_http_config cfg = {.username = l.username, .password = l.password};
        r = cr_http_new(&cfg, &rb->http);
    }
    if (r == 0) r = display_location(loc, &rb->base.location);
    if (r == 0) r = connections_setting(&rb->base.connections);
    if (r < 0) {
        if (rb) rest_close(&rb->base);
        location_free(&l);
        return r;
    }
    rb->base_url = CR_TAKE_PTR(l.base_url);
    location_free(&l);
    *out = &rb->base;
    return 0;
}

/* ---- requests --------------------------------------------------------------- */

static int check_name(cr_filetype t, const char *name)
{
    if (t == CR_FILE_CONFIG) return 0;
    if (!name[0] || name[0] == '.' || strpbrk(name, "/?#%\\ "))
        return cr_error(-EINVAL, "invalid object name \"%s\"", name);
    return 0;
}

/* {base}/config or {base}/{type}/{name}; packs have no data/XX/ level here. */
static int object_url(rest_backend *rb, cr_filetype t, const char *name, char **out)
{
    CR_TRY(check_name(t, name));
    int n = t == CR_FILE_CONFIG ? asprintf(out, "%s/config", rb->base_url)
                                : asprintf(out, "%s/%s/%s", rb->base_url, cr_filetype_dir(t), name);
    if (n < 0) return cr_error(-ENOMEM, "out of memory");
    return 0;
}

int cr_rest_stat(cr_backend *b, cr_filetype t, const char *name, uint64_t *size)
{
    rest_backend *rb = as_rest(b);
    _cleanup_free_ char *url = NULL;
    CR_TRY(object_url(rb, t, name, &url));
    cr_http_req req = {.method = "HEAD", .url = url, .headers = accept_only};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(cr_http_request(rb->http, &req, &resp));
    if (resp.status == 404) return -ENOENT;
    if (resp.status != 200) return cr_http_status_error(&req, &resp);
    if (resp.content_length < 0) return cr_error(-EIO, "HEAD %s: no Content-Length in the answer", url);
    *size = (uint64_t)resp.content_length;
    return 0;
}

int cr_rest_load(cr_backend *b, cr_filetype t, const char *name, uint64_t off, uint64_t len, cr_buf *out)
{
    rest_backend *rb = as_rest(b);
    _cleanup_free_ char *url = NULL;
    CR_TRY(object_url(rb, t, name, &url));
    if (len > SIZE_MAX / 2) return cr_error(-EFBIG, "%s: range too large", url);
    cr_http_req req = {.method = "GET", .url = url, .headers = accept_only,
                       .range = off > 0 || len > 0, .range_off = off, .range_len = len};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(cr_http_request(rb->http, &req, &resp));
    if (resp.status == 404) return cr_http_status_error(&req, &resp);
    if (resp.status != 200 && !(resp.status == 206 && req.range)) return cr_http_status_error(&req, &resp);
    return cr_http_take_range(&req, &resp, out);
}

int cr_rest_save(cr_backend *b, cr_filetype t, const char *name, const void *data, size_t n)
{
    rest_backend *rb = as_rest(b);
    _cleanup_free_ char *url = NULL;
    CR_TRY(object_url(rb, t, name, &url));
    cr_http_req req = {.method = "POST", .url = url, .headers = save_headers, .body = data, .body_len = n};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(cr_http_request(rb->http, &req, &resp));
    if (resp.status != 200 && resp.status != 201 && resp.status != 204) return cr_http_status_error(&req, &resp);
    return 0;
}

int cr_rest_remove(cr_backend *b, cr_filetype t, const char *name)
{
    rest_backend *rb = as_rest(b);
    _cleanup_free_ char *url = NULL;
    CR_TRY(object_url(rb, t, name, &url));
    cr_http_req req = {.method = "DELETE", .url = url, .headers = accept_only};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(cr_http_request(rb->http, &req, &resp));
    if (resp.status == 404 || resp.status == 200 || resp.status == 204) return 0;
    return cr_http_status_error(&req, &resp);
}

/* ---- list ------------------------------------------------------------------- */

static bool is_v2(const cr_http_resp *resp)
{
    return !strncmp(resp->content_type, REST_V2, strlen(REST_V2));
}

static int list_v2(const cr_json *root, const char *url, cr_list_cb cb, void *ud)
{
    for (uint32_t i = 0; i < root->len; i++) {
        const cr_json *e = &root->kids[i], *name = cr_json_get(e, "name");
        uint64_t size;
        if (!cr_json_is(name, CR_JSON_STRING) || cr_json_u64(cr_json_get(e, "size"), &size) < 0)
            return cr_error(CR_E_FORMAT, "GET %s: malformed list entry %u", url, i);
        if (!cr_is_hex_name(name->str, name->len)) continue;
        CR_TRY(cb(ud, name->str, size));
    }
    return 0;
}

/* v1 lists names only: ask for each size. */
static int list_v1(cr_backend *b, cr_filetype t, const cr_json *root, const char *url, cr_list_cb cb, void *ud)
{
    for (uint32_t i = 0; i < root->len; i++) {
        const cr_json *e = &root->kids[i];
        if (!cr_json_is(e, CR_JSON_STRING)) return cr_error(CR_E_FORMAT, "GET %s: malformed list entry %u", url, i);
        if (!cr_is_hex_name(e->str, e->len)) continue;
        uint64_t size;
        int r = cr_rest_stat(b, t, e->str, &size);
        if (r == -ENOENT) continue; /* removed while listing */
        CR_TRY(r);
        CR_TRY(cb(ud, e->str, size));
    }
    return 0;
}

static void json_freep(cr_json_doc **d)
{
    cr_json_free(*d);
}

int cr_rest_list(cr_backend *b, cr_filetype t, cr_list_cb cb, void *ud)
{
    rest_backend *rb = as_rest(b);
    if (t == CR_FILE_CONFIG) return 0;
    _cleanup_free_ char *url = NULL;
    if (asprintf(&url, "%s/%s/", rb->base_url, cr_filetype_dir(t)) < 0) return cr_error(-ENOMEM, "out of memory");
    cr_http_req req = {.method = "GET", .url = url, .headers = accept_only};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(cr_http_request(rb->http, &req, &resp));
    if (resp.status == 404) return 0; /* folder missing: empty */
    if (resp.status != 200) return cr_http_status_error(&req, &resp);
    _cleanup_(json_freep) cr_json_doc *doc = NULL;
    CR_TRY_CTX(cr_json_parse((const char *)resp.body.data, resp.body.len, &doc), "GET %s", url);
    const cr_json *root = cr_json_root(doc);
    if (cr_json_is(root, CR_JSON_NULL)) return 0;
    if (!cr_json_is(root, CR_JSON_ARRAY)) return cr_error(CR_E_FORMAT, "GET %s: list is not a JSON array", url);
    return is_v2(&resp) ? list_v2(root, url, cb, ud) : list_v1(b, t, root, url, cb, ud);
}

/* ---- create ----------------------------------------------------------------- */

int cr_rest_create_layout(cr_backend *b)
{
    rest_backend *rb = as_rest(b);
    uint64_t size;
    int r = cr_rest_stat(b, CR_FILE_CONFIG, NULL, &size);
    if (r == 0) return cr_error(-EEXIST, "config file already exists");
    if (r != -ENOENT) return r;
    _cleanup_free_ char *url = NULL;
    if (asprintf(&url, "%s/?create=true", rb->base_url) < 0) return cr_error(-ENOMEM, "out of memory");
    cr_http_req req = {.method = "POST", .url = url, .headers = accept_only};
    _cleanup_(cr_http_resp_free) cr_http_resp resp = {0};
    CR_TRY(cr_http_request(rb->http, &req, &resp));
    if (resp.status != 200 && resp.status != 201) return cr_http_status_error(&req, &resp);
    return 0;
}

static int rest_create(const char *loc, cr_backend **out)
{
    cr_backend *b;
    CR_TRY(rest_open(loc, &b));
    int r = cr_rest_create_layout(b);
    if (r < 0) {
        rest_close(b);
        return r;
    }
    *out = b;
    return 0;
}

const cr_backend_ops cr_backend_rest = {
    .scheme = "rest",
    .open = rest_open,
    .create = rest_create,
    .close = rest_close,
    .stat = cr_rest_stat,
    .load = cr_rest_load,
    .save = cr_rest_save,
    .remove = cr_rest_remove,
    .list = cr_rest_list,
    .options = (const char *const[]){"connections", NULL},
};
