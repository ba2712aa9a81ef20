/* Hex helpers. */
#include "provline/protocol/hex.h"

#include <stdbool.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pl_hex_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    if (!out || cap == 0 || len > (cap - 1) / 2)
        return PL_ERR_OVERFLOW;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
    return PL_OK;
}

static int decode(const char *hex, uint8_t *out, size_t cap, size_t *out_len, bool loose)
{
    size_t n = 0;
    int hi = -1;
    *out_len = 0;
    if (!hex)
        return PL_ERR_INVAL;
    for (const char *s = hex; *s; s++) {
        if (loose && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == ':')) {
            if (hi >= 0)
                return PL_ERR_MALFORMED; /* separator inside a pair */
            continue;
        }
        int v = hexval(*s);
        if (v < 0)
            return PL_ERR_MALFORMED;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap)
            return PL_ERR_OVERFLOW;
        out[n++] = (uint8_t)((hi << 4) | v);
        hi = -1;
    }
    if (hi >= 0)
        return PL_ERR_MALFORMED; /* odd number of digits */
    *out_len = n;
    return PL_OK;
}

int pl_hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *out_len)
{
    return decode(hex, out, cap, out_len, false);
}

int pl_hex_decode_loose(const char *hex, uint8_t *out, size_t cap, size_t *out_len)
{
    return decode(hex, out, cap, out_len, true);
}
