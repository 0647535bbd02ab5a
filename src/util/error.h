/* Error flow for the whole project.
 *
 * Every fallible function returns an int: 0 (or a non-negative count) on
 * success, a negative code on failure.  System errors are -errno; domain
 * errors use the CR_E_* codes below.  The human-readable message travels
 * separately in a thread-local buffer: the innermost failure sets it with
 * cr_error(), each caller on the way up may prefix context with
 * cr_error_ctx(), and the CLI prints the result once ("Fatal: ...").
 */
#ifndef CRESTIC_UTIL_ERROR_H
#define CRESTIC_UTIL_ERROR_H

#include <errno.h>

enum {
    CR_E_FORMAT      = -10001, /* malformed data: JSON, header, zstd frame, ... */
    CR_E_AUTH        = -10002, /* MAC or content hash mismatch                 */
    CR_E_PASSWORD    = -10003, /* no key file opens with the password          */
    CR_E_NOREPO      = -10004, /* repository (config) does not exist           */
    CR_E_LOCKED      = -10005, /* a lock could not be acquired                 */
    CR_E_USAGE       = -10006, /* bad command line / argument                  */
    CR_E_UNSUPPORTED = -10007, /* valid but not supported (e.g. version 3)     */
    CR_E_INTERRUPTED = -10008, /* SIGINT / SIGTERM                             */
    CR_E_NOTFOUND    = -10009, /* a named object (snapshot, blob, path) absent */
    CR_E_AMBIGUOUS   = -10010, /* an ID prefix matches several objects         */
    CR_E_PARTIAL     = -10011, /* finished, but some items failed (exit 1 / 3) */
};

/* Set the message (printf-style) and return code, for `return cr_error(...)`. */
int cr_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like cr_error() for a system error: code is -errno, ": strerror" appended. */
int cr_error_sys(int neg_errno, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "context: " and return code unchanged. */
int cr_error_ctx(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The current message ("" when none was set). */
const char *cr_error_message(void);
void cr_error_clear(void);
/* A generic description of a code, used when no message was set. */
const char *cr_error_str(int code);

/* Forward a failure unchanged. */
#define CR_TRY(expr)                                                    \
    do {                                                                \
        int cr_try_r_ = (expr);                                         \
        if (cr_try_r_ < 0) return cr_try_r_;                            \
    } while (0)

/* Forward a failure with added context. */
#define CR_TRY_CTX(expr, ...)                                           \
    do {                                                                \
        int cr_try_r_ = (expr);                                         \
        if (cr_try_r_ < 0) return cr_error_ctx(cr_try_r_, __VA_ARGS__); \
    } while (0)

#endif
