#include "util/id.h"
#include "util/error.h"

static const char hexdigits[] = "0123456789abcdef";

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void cr_hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[in[i] >> 4];
        out[2 * i + 1] = hexdigits[in[i] & 15];
    }
    out[2 * n] = 0;
}

int cr_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n)
{
    if (hexlen != 2 * n) return CR_E_FORMAT;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return CR_E_FORMAT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void cr_id_to_hex(const cr_id *id, char out[CR_ID_HEX + 1])
{
    cr_hex_encode(id->b, CR_ID_SIZE, out);
}

int cr_id_from_hex(cr_id *id, const char *hex, size_t len)
{
    return cr_hex_decode(hex, len, id->b, CR_ID_SIZE);
}

void cr_id_short(const cr_id *id, char out[9])
{
    cr_hex_encode(id->b, 4, out);
}

bool cr_is_hex_name(const char *s, size_t len)
{
    if (len != CR_ID_HEX) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}
