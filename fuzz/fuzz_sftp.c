/* libFuzzer target for the SFTP wire format and location strings
 * (src/backends/sftp_proto.c).  The first byte picks what the rest is:
 *  - a server message: VERSION, any reply (NAME entries walked to the end,
 *    EXTENDED_REPLY read as limits@openssh.com); a decoded reply's pointers
 *    stay inside the input, handles are 1..256 bytes;
 *  - a repository string after "sftp:" and an sftp.command string: parsed
 *    or refused with CR_E_USAGE, never a crash; a parsed location gives an
 *    ssh command line ending in "-s sftp". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sftp_proto.h"
#include "util/error.h"

static void check_inside(const uint8_t *base, size_t n, const void *p, size_t len)
{
    if (!len) return;
    const uint8_t *q = p;
    if (q < base || q + len > base + n) abort();
}

static void fuzz_reply(const uint8_t *d, size_t n)
{
    sftp_reply r;
    if (sftp_parse_reply(d, n, &r) < 0) return;
    check_inside(d, n, r.msg, r.msg_len);
    check_inside(d, n, r.data, r.data_len);
    if (r.type == SFTP_HANDLE && (r.data_len == 0 || r.data_len > SFTP_MAX_HANDLE)) abort();
    if (r.type == SFTP_NAME) {
        sftp_name_iter it;
        sftp_name_iter_init(&it, &r);
        sftp_name_entry e;
        uint32_t seen = 0;
        int k;
        while ((k = sftp_name_next(&it, &e)) == 1) {
            check_inside(d, n, e.name, e.name_len);
            seen++;
        }
        if (k == 0 && seen != r.count) abort();
    }
    if (r.type == SFTP_EXTENDED_REPLY) {
        sftp_limits l;
        sftp_parse_limits(r.data, r.data_len, &l);
    }
    (void)sftp_status_name(r.status);
}

static void fuzz_strings(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return;
    memcpy(s, d, n);
    s[n] = 0;
    sftp_location l;
    if (sftp_parse_location(s, &l) == 0) {
        char **argv = NULL;
        if (sftp_ssh_argv(&l, NULL, NULL, &argv) == 0) {
            size_t k = 0;
            while (argv[k]) k++;
            if (k < 4 || strcmp(argv[0], "ssh") || strcmp(argv[k - 2], "-s") || strcmp(argv[k - 1], "sftp")) abort();
            sftp_argv_free(argv);
        }
        if (!l.path || !l.path[0]) abort();
        sftp_location_free(&l);
    }
    char **argv = NULL;
    if (sftp_split_command(s, &argv) == 0) {
        if (!argv[0] || !argv[0][0]) abort();
        sftp_argv_free(argv);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        sftp_version v;
        sftp_parse_version(d, n, &v);
        break;
    }
    case 1: fuzz_reply(d, n); break;
    default: fuzz_strings(d, n); break;
    }
    cr_error_clear();
    return 0;
}
