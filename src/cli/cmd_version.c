/* crestic version: which build this is.
 *
 * Text: "crestic 0.1.0 (restic-compatible) compiled with gcc 12.2.0 on
 * linux/amd64", the shape of restic's "restic 0.14.0 compiled with go1.19.8
 * on linux/amd64".  --json keeps the member names of today's restic so that
 * its consumers parse it unchanged; "go_version" carries the C compiler:
 * {"message_type":"version","version":"0.1.0","go_version":"gcc 12.2.0",
 *  "go_os":"linux","go_arch":"amd64"} */
#include "cli/cli.h"
#include "cli/output.h"

#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

#ifndef CRESTIC_VERSION
#define CRESTIC_VERSION "0.0.0-dev"
#endif

extern const cr_command cr_cmd_version;

static const char *compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "an unknown C compiler";
#endif
}

/* GOOS-style names: the build target, not the machine we run on. */
static const char *target_os(void)
{
#if defined(__linux__)
    return "linux";
#elif defined(__FreeBSD__)
    return "freebsd";
#elif defined(__APPLE__)
    return "darwin";
#else
    return "unknown";
#endif
}

static const char *target_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__i386__)
    return "386";
#elif defined(__arm__)
    return "arm";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
    return "ppc64le";
#elif defined(__s390x__)
    return "s390x";
#else
    return "unknown";
#endif
}

static int print_version(bool json)
{
    _cleanup_buf_ cr_buf b = CR_BUF_INIT;
    if (json) {
        CR_TRY(cr_buf_puts(&b, "{\"message_type\":\"version\",\"version\":"));
        CR_TRY(cr_json_put_cstr(&b, CRESTIC_VERSION));
        CR_TRY(cr_buf_puts(&b, ",\"go_version\":"));
        CR_TRY(cr_json_put_cstr(&b, compiler()));
        CR_TRY(cr_buf_printf(&b, ",\"go_os\":\"%s\",\"go_arch\":\"%s\"}\n", target_os(), target_arch()));
    } else {
        CR_TRY(cr_buf_printf(&b, "crestic %s (restic-compatible) compiled with %s on %s/%s\n", CRESTIC_VERSION,
                             compiler(), target_os(), target_arch()));
    }
    return cr_write_stdout(b.data, b.len);
}

static int run_version(cr_global *g, int argc, char **argv)
{
    const cr_flag flags[] = {{NULL, 0, 0, NULL, NULL, NULL}};
    int npos = 0;
    /* main.c runs us for a bare "--version" with argc 0 */
    int e = argc > 0 ? cr_parse_flags(g, &cr_cmd_version, flags, argc, argv, &npos) : 0;
    if (e > 0) return CR_EXIT_OK;
    if (e < 0) return cr_cli_fail(g, e);
    e = print_version(g->json);
    return e < 0 ? cr_cli_fail(g, e) : CR_EXIT_OK;
}

const cr_command cr_cmd_version = {
    "version",
    "Print version information",
    "crestic version [flags]",
    run_version,
};
