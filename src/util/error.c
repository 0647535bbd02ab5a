#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CR_ERRMSG_MAX 2048

static _Thread_local char errmsg[CR_ERRMSG_MAX];

static void vset(const char *fmt, va_list ap)
{
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
}

int cr_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(fmt, ap);
    va_end(ap);
    return code;
}

int cr_error_sys(int neg_errno, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(fmt, ap);
    va_end(ap);
    size_t n = strlen(errmsg);
    snprintf(errmsg + n, sizeof errmsg - n, ": %s", strerror(-neg_errno));
    return neg_errno;
}

int cr_error_ctx(int code, const char *fmt, ...)
{
    char msg[CR_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
    const char *old = errmsg[0] ? errmsg : cr_error_str(code);
    /* "context: old message", truncated to the buffer. */
    for (const char *p = ": "; *p && len < sizeof msg - 1; p++) msg[len++] = *p;
    size_t olen = strlen(old);
    if (olen > sizeof msg - 1 - len) olen = sizeof msg - 1 - len;
    memcpy(msg + len, old, olen);
    len += olen;
    msg[len] = 0;
    memcpy(errmsg, msg, len + 1);
    return code;
}

const char *cr_error_message(void)
{
    return errmsg;
}

void cr_error_clear(void)
{
    errmsg[0] = 0;
}

const char *cr_error_str(int code)
{
    switch (code) {
    case CR_E_FORMAT: return "malformed data";
    case CR_E_AUTH: return "ciphertext verification failed";
    case CR_E_PASSWORD: return "wrong password or no key found";
    case CR_E_NOREPO: return "repository does not exist";
    case CR_E_LOCKED: return "repository is already locked";
    case CR_E_USAGE: return "invalid usage";
    case CR_E_UNSUPPORTED: return "unsupported";
    case CR_E_INTERRUPTED: return "interrupted";
    case CR_E_NOTFOUND: return "not found";
    case CR_E_AMBIGUOUS: return "ambiguous";
    case CR_E_PARTIAL: return "some items failed";
    default:
        if (code < 0 && code > -4096) return strerror(-code);
        return "unknown error";
    }
}
