/* SFTP v3 messages: decoding of server replies, encoding of requests. */
#include "backends/sftp_proto.h"

#include <string.h>

#include "util/error.h"

/* ---- decoding --------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n;
    bool bad; /* read past the end: every later read yields zero */
} reader;

static bool take(reader *r, size_t k, const uint8_t **out)
{
    if (r->bad || r->n < k) {
        r->bad = true;
        return false;
    }
    *out = r->p;
    r->p += k;
    r->n -= k;
    return true;
}

static uint8_t get_u8(reader *r)
{
    const uint8_t *b;
    return take(r, 1, &b) ? b[0] : 0;
}

static uint32_t get_u32(reader *r)
{
    const uint8_t *b;
    if (!take(r, 4, &b)) return 0;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t get_u64(reader *r)
{
    uint64_t hi = get_u32(r);
    return hi << 32 | get_u32(r);
}

static bool get_str(reader *r, const uint8_t **s, size_t *len)
{
    uint32_t n = get_u32(r);
    *len = 0;
    *s = NULL;
    if (!take(r, n, s)) return false;
    *len = n;
    return true;
}

static void get_attrs(reader *r, sftp_attrs *a)
{
    memset(a, 0, sizeof *a);
    a->flags = get_u32(r);
    if (a->flags & SFTP_ATTR_SIZE) a->size = get_u64(r);
    if (a->flags & SFTP_ATTR_UIDGID) {
        a->uid = get_u32(r);
        a->gid = get_u32(r);
    }
    if (a->flags & SFTP_ATTR_PERMISSIONS) a->permissions = get_u32(r);
    if (a->flags & SFTP_ATTR_ACMODTIME) {
        a->atime = get_u32(r);
        a->mtime = get_u32(r);
    }
    if (a->flags & SFTP_ATTR_EXTENDED) {
        uint32_t count = get_u32(r);
        const uint8_t *s;
        size_t l;
        /* each pair needs at least 8 bytes: a huge count ends at the first failed read */
        for (uint32_t i = 0; i < count && !r->bad; i++) {
            get_str(r, &s, &l);
            get_str(r, &s, &l);
        }
    }
}

int sftp_parse_version(const uint8_t *msg, size_t n, sftp_version *out)
{
    reader r = {msg, n, false};
    memset(out, 0, sizeof *out);
    uint8_t type = get_u8(&r);
    out->version = get_u32(&r);
    if (r.bad || type != SFTP_VERSION)
        return cr_error(CR_E_FORMAT, "sftp: expected a VERSION message, got type %u (%zu bytes)", type, n);
    while (r.n > 0) {
        const uint8_t *name, *data;
        size_t nl, dl;
        get_str(&r, &name, &nl);
        get_str(&r, &data, &dl);
        if (r.bad) return cr_error(CR_E_FORMAT, "sftp: malformed extension list in the VERSION message");
        if (nl == 24 && !memcmp(name, "posix-rename@openssh.com", 24)) out->posix_rename = true;
        if (nl == 18 && !memcmp(name, "limits@openssh.com", 18)) out->limits = true;
    }
    return 0;
}

static int parse_body(reader *r, sftp_reply *out)
{
    const uint8_t *s;
    size_t l;
    switch (out->type) {
    case SFTP_STATUS:
        out->status = get_u32(r);
        /* the text and language tag are missing in some old servers' replies */
        if (r->n > 0 && get_str(r, &s, &l)) {
            out->msg = (const char *)s;
            out->msg_len = l;
        }
        return 0;
    case SFTP_HANDLE:
        get_str(r, &out->data, &out->data_len);
        if (!r->bad && (out->data_len == 0 || out->data_len > SFTP_MAX_HANDLE))
            return cr_error(CR_E_FORMAT, "sftp: handle of %zu bytes", out->data_len);
        return 0;
    case SFTP_DATA:
        get_str(r, &out->data, &out->data_len);
        return 0;
    case SFTP_NAME:
        out->count = get_u32(r);
        out->names = r->p;
        out->names_len = r->n;
        return 0;
    case SFTP_ATTRS:
        get_attrs(r, &out->attrs);
        return 0;
    case SFTP_EXTENDED_REPLY:
        out->data = r->p;
        out->data_len = r->n;
        return 0;
    default:
        return cr_error(CR_E_FORMAT, "sftp: unexpected message type %u", out->type);
    }
}

int sftp_parse_reply(const uint8_t *msg, size_t n, sftp_reply *out)
{
    reader r = {msg, n, false};
    memset(out, 0, sizeof *out);
    out->type = get_u8(&r);
    out->id = get_u32(&r);
    if (r.bad) return cr_error(CR_E_FORMAT, "sftp: message of %zu bytes is too short", n);
    CR_TRY(parse_body(&r, out));
    if (r.bad) return cr_error(CR_E_FORMAT, "sftp: truncated message of type %u (%zu bytes)", out->type, n);
    if (out->msg && memchr(out->msg, 0, out->msg_len)) out->msg_len = strnlen(out->msg, out->msg_len);
    return 0;
}

void sftp_name_iter_init(sftp_name_iter *it, const sftp_reply *r)
{
    it->p = r->names;
    it->n = r->names_len;
    it->left = r->type == SFTP_NAME ? r->count : 0;
}

int sftp_name_next(sftp_name_iter *it, sftp_name_entry *e)
{
    if (it->left == 0) return 0;
    reader r = {it->p, it->n, false};
    const uint8_t *name, *longname;
    size_t nl, ll;
    get_str(&r, &name, &nl);
    get_str(&r, &longname, &ll);
    get_attrs(&r, &e->attrs);
    if (r.bad) return cr_error(CR_E_FORMAT, "sftp: truncated directory entry");
    e->name = (const char *)name;
    e->name_len = nl;
    it->p = r.p;
    it->n = r.n;
    it->left--;
    return 1;
}

int sftp_parse_limits(const uint8_t *data, size_t n, sftp_limits *out)
{
    reader r = {data, n, false};
    out->max_packet = get_u64(&r);
    out->max_read = get_u64(&r);
    out->max_write = get_u64(&r);
    out->max_open_handles = get_u64(&r);
    if (r.bad) return cr_error(CR_E_FORMAT, "sftp: truncated limits@openssh.com reply (%zu bytes)", n);
    return 0;
}

const char *sftp_status_name(uint32_t code)
{
    static const char *const names[] = {
        "SSH_FX_OK", "SSH_FX_EOF", "SSH_FX_NO_SUCH_FILE", "SSH_FX_PERMISSION_DENIED", "SSH_FX_FAILURE",
        "SSH_FX_BAD_MESSAGE", "SSH_FX_NO_CONNECTION", "SSH_FX_CONNECTION_LOST", "SSH_FX_OP_UNSUPPORTED",
    };
    return code < sizeof names / sizeof names[0] ? names[code] : "unknown SSH_FX status";
}

/* ---- encoding --------------------------------------------------------------- */

static int put_u32(cr_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return cr_buf_append(b, x, 4);
}

static int put_u64(cr_buf *b, uint64_t v)
{
    CR_TRY(put_u32(b, (uint32_t)(v >> 32)));
    return put_u32(b, (uint32_t)v);
}

static int put_str(cr_buf *b, sftp_str s)
{
    if (s.n > UINT32_MAX) return cr_error(-EINVAL, "sftp: string too long");
    CR_TRY(put_u32(b, (uint32_t)s.n));
    return cr_buf_append(b, s.p, s.n);
}

/* Starts a message: placeholder length, type, id (none for INIT). */
static int begin(cr_buf *b, uint8_t type, const uint32_t *id, size_t *start)
{
    *start = b->len;
    CR_TRY(put_u32(b, 0));
    CR_TRY(cr_buf_putc(b, (char)type));
    return id ? put_u32(b, *id) : 0;
}

/* Patches the length; extra counts bytes that follow outside the buffer. */
static int end(cr_buf *b, size_t start, size_t extra)
{
    size_t len = b->len - start - 4 + extra;
    if (len > UINT32_MAX) return cr_error(-EINVAL, "sftp: message too long");
    uint8_t *p = b->data + start;
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    return 0;
}

int sftp_encode_init(cr_buf *out)
{
    size_t st;
    CR_TRY(begin(out, SFTP_INIT, NULL, &st));
    CR_TRY(put_u32(out, SFTP_PROTOCOL_VERSION));
    return end(out, st, 0);
}

static int put_perm_attrs(cr_buf *b, uint32_t perm)
{
    CR_TRY(put_u32(b, SFTP_ATTR_PERMISSIONS));
    return put_u32(b, perm);
}

int sftp_encode_open(cr_buf *out, uint32_t id, sftp_str path, uint32_t pflags, int attrs_perm)
{
    size_t st;
    CR_TRY(begin(out, SFTP_OPEN, &id, &st));
    CR_TRY(put_str(out, path));
    CR_TRY(put_u32(out, pflags));
    CR_TRY(attrs_perm >= 0 ? put_perm_attrs(out, (uint32_t)attrs_perm) : put_u32(out, 0));
    return end(out, st, 0);
}

int sftp_encode_handle_op(cr_buf *out, uint8_t type, uint32_t id, sftp_str handle)
{
    size_t st;
    CR_TRY(begin(out, type, &id, &st));
    CR_TRY(put_str(out, handle));
    return end(out, st, 0);
}

int sftp_encode_path_op(cr_buf *out, uint8_t type, uint32_t id, sftp_str path)
{
    return sftp_encode_handle_op(out, type, id, path);
}

int sftp_encode_with_perm(cr_buf *out, uint8_t type, uint32_t id, sftp_str path_or_handle, uint32_t perm)
{
    size_t st;
    CR_TRY(begin(out, type, &id, &st));
    CR_TRY(put_str(out, path_or_handle));
    CR_TRY(put_perm_attrs(out, perm));
    return end(out, st, 0);
}

int sftp_encode_read(cr_buf *out, uint32_t id, sftp_str handle, uint64_t off, uint32_t len)
{
    size_t st;
    CR_TRY(begin(out, SFTP_READ, &id, &st));
    CR_TRY(put_str(out, handle));
    CR_TRY(put_u64(out, off));
    CR_TRY(put_u32(out, len));
    return end(out, st, 0);
}

int sftp_encode_write_header(cr_buf *out, uint32_t id, sftp_str handle, uint64_t off, uint32_t data_len)
{
    size_t st;
    CR_TRY(begin(out, SFTP_WRITE, &id, &st));
    CR_TRY(put_str(out, handle));
    CR_TRY(put_u64(out, off));
    CR_TRY(put_u32(out, data_len));
    return end(out, st, data_len);
}

int sftp_encode_rename(cr_buf *out, uint32_t id, sftp_str from, sftp_str to, bool posix)
{
    size_t st;
    CR_TRY(begin(out, posix ? SFTP_EXTENDED : SFTP_RENAME, &id, &st));
    if (posix) CR_TRY(put_str(out, SFTP_STR("posix-rename@openssh.com")));
    CR_TRY(put_str(out, from));
    CR_TRY(put_str(out, to));
    return end(out, st, 0);
}

int sftp_encode_limits(cr_buf *out, uint32_t id)
{
    size_t st;
    CR_TRY(begin(out, SFTP_EXTENDED, &id, &st));
    CR_TRY(put_str(out, SFTP_STR("limits@openssh.com")));
    return end(out, st, 0);
}

/* ---- location and ssh command line ------------------------------------------ */

#include <ctype.h>
#include <stdlib.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decoding as Go's url package does for user names and paths. */
static int unescape(const char *s, size_t n, char **out)
{
    char *o = malloc(n + 1);
    if (!o) return cr_error(-ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            o[k++] = s[i];
            continue;
        }
        if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
            free(o);
            return cr_error(CR_E_USAGE, "sftp: invalid URL escape in \"%.*s\"", (int)n, s);
        }
        o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
        i += 2;
    }
    o[k] = 0;
    if (memchr(o, 0, k)) {
        free(o);
        return cr_error(CR_E_USAGE, "sftp: NUL byte in the location");
    }
    *out = o;
    return 0;
}

static int dup_range(const char *s, size_t n, char **out)
{
    *out = strndup(s, n);
    return *out ? 0 : cr_error(-ENOMEM, "out of memory");
}

/* Go's path.Clean: no empty or "." elements, ".." resolved lexically. */
static int clean_path(const char *p, char **out)
{
    size_t n = strlen(p);
    char *o = malloc(n + 2);
    if (!o) return cr_error(-ENOMEM, "out of memory");
    bool rooted = p[0] == '/';
    size_t k = rooted ? 1 : 0, floor = k; /* ".." never goes above floor */
    if (rooted) o[0] = '/';
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j] != '/') j++;
        size_t len = j - i;
        if (len == 0 || (len == 1 && p[i] == '.')) {
        } else if (len == 2 && p[i] == '.' && p[i + 1] == '.') {
            if (k > floor) { /* drop the last element */
                while (k > floor && o[k - 1] != '/') k--;
                if (k > floor) k--;
            } else if (!rooted) {
                if (k > 0) o[k++] = '/';
                o[k++] = '.';
                o[k++] = '.';
                floor = k;
            }
        } else {
            if (k > (rooted ? 1u : 0u)) o[k++] = '/';
            memcpy(o + k, p + i, len);
            k += len;
        }
        i = j + 1;
    }
    if (k == 0) o[k++] = '.';
    o[k] = 0;
    *out = o;
    return 0;
}

void sftp_location_free(sftp_location *l)
{
    free(l->user);
    free(l->host);
    free(l->port);
    free(l->path);
    memset(l, 0, sizeof *l);
}

/* "//[user[:pass]@]host[:port]/path" (Go's url.Parse, as restic uses it). */
static int parse_url_form(const char *s, sftp_location *l, char **dir)
{
    const char *auth = s + 2, *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@') at = p;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        CR_TRY(unescape(auth, colon ? (size_t)(colon - auth) : (size_t)(at - auth), &l->user));
    }
    const char *host = at ? at + 1 : auth, *hend = auth + alen, *port = NULL;
    if (host < hend && *host == '[') {
        const char *rb = memchr(host, ']', (size_t)(hend - host));
        if (!rb) return cr_error(CR_E_USAGE, "sftp: missing ']' in host");
        if (rb + 1 < hend && rb[1] != ':') return cr_error(CR_E_USAGE, "sftp: invalid port in \"%.*s\"", (int)alen, auth);
        if (rb + 1 < hend) port = rb + 2;
        CR_TRY(dup_range(host + 1, (size_t)(rb - host - 1), &l->host));
    } else {
        const char *colon = NULL;
        for (const char *p = host; p < hend; p++)
            if (*p == ':') colon = p;
        if (colon) port = colon + 1;
        CR_TRY(unescape(host, (size_t)((colon ? colon : hend) - host), &l->host));
    }
    if (port) {
        for (const char *p = port; p < hend; p++)
            if (!isdigit((unsigned char)*p)) return cr_error(CR_E_USAGE, "sftp: invalid port \"%.*s\"", (int)(hend - port), port);
        if (port < hend) CR_TRY(dup_range(port, (size_t)(hend - port), &l->port));
    }
    if (!slash) return cr_error(CR_E_USAGE, "invalid backend \"sftp:%s\", no directory specified", s);
    return unescape(slash + 1, strlen(slash + 1), dir);
}

/* "[user@[domain@]]host:path". */
static int parse_colon_form(const char *s, sftp_location *l, char **dir)
{
    const char *colon = strchr(s, ':');
    if (!colon) return cr_error(CR_E_USAGE, "sftp: invalid format, hostname or path not found");
    const char *at1 = memchr(s, '@', (size_t)(colon - s));
    const char *at2 = at1 ? memchr(at1 + 1, '@', (size_t)(colon - at1 - 1)) : NULL;
    const char *user_end = at2 ? at2 : at1;
    if (user_end) CR_TRY(dup_range(s, (size_t)(user_end - s), &l->user));
    const char *host = user_end ? user_end + 1 : s;
    CR_TRY(dup_range(host, (size_t)(colon - host), &l->host));
    return dup_range(colon + 1, strlen(colon + 1), dir);
}

int sftp_parse_location(const char *loc, sftp_location *out)
{
    memset(out, 0, sizeof *out);
    char *dir = NULL;
    int r = !strncmp(loc, "//", 2) ? parse_url_form(loc, out, &dir) : parse_colon_form(loc, out, &dir);
    if (r == 0) r = clean_path(dir, &out->path);
    free(dir);
    if (r == 0 && out->path[0] == '~')
        r = cr_error(CR_E_USAGE, "sftp path starts with the tilde (~) character, that fails for most sftp servers.\n"
                                 "Use a relative directory, most servers interpret this as relative to the user's home directory");
    if (r < 0) sftp_location_free(out);
    return r;
}

void sftp_argv_free(char **argv)
{
    if (!argv) return;
    for (char **a = argv; *a; a++) free(*a);
    free(argv);
}

static int argv_push(char ***argv, size_t *n, const char *s, size_t len)
{
    char **v = realloc(*argv, (*n + 2) * sizeof *v);
    if (!v) return cr_error(-ENOMEM, "out of memory");
    *argv = v;
    v[*n] = strndup(s, len);
    if (!v[*n]) return cr_error(-ENOMEM, "out of memory");
    v[++*n] = NULL;
    return 0;
}

/* Does c end the current word?  Updates the quoting state (restic's rules:
 * a quote right after a backslash is literal). */
static bool splits(char c, char *quote, char *last)
{
    if (*last != '\\') {
        if (*quote && c == *quote) {
            *quote = 0;
            return true;
        }
        if (!*quote && (c == '"' || c == '\'')) {
            *quote = c;
            return true;
        }
    }
    *last = c;
    if (*quote) return false;
    return c == '\\' || c == ' ' || (c >= '\t' && c <= '\r');
}

int sftp_split_command(const char *s, char ***argv)
{
    char **v = NULL, quote = 0, last = 0;
    size_t n = 0;
    const char *start = NULL;
    int r = 0;
    for (const char *p = s; r == 0 && *p; p++) {
        if (splits(*p, &quote, &last)) {
            if (start) r = argv_push(&v, &n, start, (size_t)(p - start));
            start = NULL;
        } else if (!start) {
            start = p;
        }
    }
    if (r == 0 && start) r = argv_push(&v, &n, start, strlen(start));
    if (r == 0 && quote) r = cr_error(CR_E_USAGE, "%s-quoted string not terminated", quote == '"' ? "double" : "single");
    if (r == 0 && n == 0) r = cr_error(CR_E_USAGE, "command string is empty");
    if (r < 0) {
        sftp_argv_free(v);
        return r;
    }
    *argv = v;
    return 0;
}

int sftp_ssh_argv(const sftp_location *l, const char *command, const char *args, char ***argv)
{
    if (command && *command) {
        if (args && *args) return cr_error(CR_E_USAGE, "cannot specify both sftp.command and sftp.args options");
        return sftp_split_command(command, argv);
    }
    char **v = NULL, **extra = NULL;
    size_t n = 0;
    int r = argv_push(&v, &n, "ssh", 3);
    if (r == 0) r = argv_push(&v, &n, l->host, strlen(l->host));
    if (r == 0 && l->port) r = argv_push(&v, &n, "-p", 2);
    if (r == 0 && l->port) r = argv_push(&v, &n, l->port, strlen(l->port));
    if (r == 0 && l->user) r = argv_push(&v, &n, "-l", 2);
    if (r == 0 && l->user) r = argv_push(&v, &n, l->user, strlen(l->user));
    if (r == 0 && args && *args) r = sftp_split_command(args, &extra);
    for (char **a = extra; r == 0 && a && *a; a++) r = argv_push(&v, &n, *a, strlen(*a));
    if (r == 0) r = argv_push(&v, &n, "-s", 2);
    if (r == 0) r = argv_push(&v, &n, "sftp", 4);
    sftp_argv_free(extra);
    if (r < 0) {
        sftp_argv_free(v);
        return r;
    }
    *argv = v;
    return 0;
}
