/* Path helpers with Go's path/filepath semantics (Clean, Abs, Dir, Base),
 * so snapshot paths, target trees and exclude checks see the same strings
 * restic does. */
#include "repo/archive_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"

/* Lexical cleaning as filepath.Clean: one slash between elements, no "."
 * elements, ".." resolved against the previous element (and dropped at the
 * root), "" -> ".". */
int cr_path_clean(const char *p, cr_buf *out)
{
    cr_buf_reset(out);
    bool rooted = p[0] == '/';
    size_t n = strlen(p);
    CR_TRY(cr_buf_reserve(out, n + 2));
    char *o = (char *)out->data;
    size_t w = 0, floor = 0; /* floor: where ".." may no longer back up */
    if (rooted) o[w++] = '/', floor = 1;
    for (size_t r = 0; r < n;) {
        if (p[r] == '/') { r++; continue; }
        size_t e = r;
        while (e < n && p[e] != '/') e++;
        size_t len = e - r;
        if (len == 1 && p[r] == '.') {
            /* skip */
        } else if (len == 2 && p[r] == '.' && p[r + 1] == '.') {
            if (w > floor) {
                while (w > floor && o[w - 1] != '/') w--;
                if (w > floor) w--; /* the separator before the dropped element */
            } else if (!rooted) {
                if (w > 0) o[w++] = '/';
                o[w++] = '.', o[w++] = '.';
                floor = w;
            }
        } else {
            if (w > 0 && o[w - 1] != '/') o[w++] = '/';
            memcpy(o + w, p + r, len);
            w += len;
        }
        r = e;
    }
    if (w == 0) o[w++] = '.';
    out->len = w;
    return cr_buf_nul(out);
}

int cr_path_abs(const char *p, cr_buf *out)
{
    if (p[0] == '/') return cr_path_clean(p, out);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return cr_error_sys(-errno, "getwd");
    cr_buf joined = CR_BUF_INIT;
    int r = cr_buf_printf(&joined, "%s/%s", cwd, p);
    if (r == 0) r = cr_path_clean((const char *)joined.data, out);
    cr_buf_free(&joined);
    return r;
}

/* filepath.Dir of a cleaned path: everything before the last slash, "/" for
 * "/x", "." for "x".  Writes into out. */
int cr_path_dir(const char *p, cr_buf *out)
{
    const char *slash = strrchr(p, '/');
    cr_buf_reset(out);
    if (!slash) return cr_buf_puts(out, ".") < 0 ? -ENOMEM : cr_buf_nul(out);
    if (slash == p) return cr_buf_puts(out, "/") < 0 ? -ENOMEM : cr_buf_nul(out);
    CR_TRY(cr_buf_append(out, p, (size_t)(slash - p)));
    return cr_buf_nul(out);
}

/* filepath.Base of a cleaned path ("/" for "/"). */
const char *cr_path_base(const char *p)
{
    size_t n = strlen(p);
    if (n == 1 && p[0] == '/') return p;
    const char *slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

/* "a" + "/" + "b", without doubling the slash after "/". */
int cr_path_join(cr_buf *out, const char *dir, const char *name, size_t namelen)
{
    cr_buf_reset(out);
    size_t dl = strlen(dir);
    if (dl == 1 && dir[0] == '.') dl = 0, dir = "";
    CR_TRY(cr_buf_reserve(out, dl + namelen + 2));
    CR_TRY(cr_buf_append(out, dir, dl));
    if (dl && dir[dl - 1] != '/') CR_TRY(cr_buf_putc(out, '/'));
    CR_TRY(cr_buf_append(out, name, namelen));
    return cr_buf_nul(out);
}
