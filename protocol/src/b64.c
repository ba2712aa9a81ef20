/* Strict base64, RFC 4648 §4 (see b64.h). */
#include "provline/protocol/b64.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t pl_b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

int pl_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    if ((in == NULL && n > 0) || out == NULL || n > (SIZE_MAX / 4) - 4
        || cap < pl_b64_len(n) + 1)
        return PL_ERR_INVAL;
    for (size_t i = 0; i < n; i += 3) {
        size_t rem = n - i;
        uint32_t v = (uint32_t)in[i] << 16;
        if (rem > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (rem > 2)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63u];
        out[o++] = alphabet[(v >> 12) & 63u];
        out[o++] = rem > 1 ? alphabet[(v >> 6) & 63u] : '=';
        out[o++] = rem > 2 ? alphabet[v & 63u] : '=';
    }
    out[o] = '\0';
    return PL_OK;
}

static int val(char c)
{
    const char *p = NULL;
    if (c == '\0')
        return -1;
    p = strchr(alphabet, c);
    return p ? (int)(p - alphabet) : -1;
}

int pl_b64_decode(const char *in, size_t n, size_t max, uint8_t **out, size_t *len)
{
    uint8_t *buf = NULL;
    size_t o = 0, pad = 0;

    if (in == NULL || out == NULL || len == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    *len = 0;
    if (n == 0 || n % 4 != 0)
        return PL_ERR_MALFORMED;
    if (in[n - 1] == '=')
        pad++;
    if (in[n - 2] == '=')
        pad++;
    if (n / 4 * 3 - pad > max)
        return PL_ERR_OVERFLOW;
    buf = malloc(n / 4 * 3);
    if (buf == NULL)
        return PL_ERR_NOMEM;
    for (size_t i = 0; i < n; i += 4) {
        int a = val(in[i]), b = val(in[i + 1]), c, d;
        bool last = i + 4 == n;
        uint32_t v;
        c = (last && pad >= 2) ? 0 : val(in[i + 2]);
        d = (last && pad >= 1) ? 0 : val(in[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0)
            goto bad;
        v = ((uint32_t)a << 18) | ((uint32_t)b << 12) | ((uint32_t)c << 6) | (uint32_t)d;
        buf[o++] = (uint8_t)(v >> 16);
        if (!(last && pad >= 2))
            buf[o++] = (uint8_t)(v >> 8);
        else if ((v & 0xFFFFu) != 0)
            goto bad; /* non-zero unused bits */
        if (!(last && pad >= 1))
            buf[o++] = (uint8_t)v;
        else if ((v & 0xFFu) != 0)
            goto bad;
    }
    *out = buf;
    *len = o;
    return PL_OK;
bad:
    free(buf);
    return PL_ERR_MALFORMED;
}
