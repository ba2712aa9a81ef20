/* Fuzz target: BSP segment unwrap (GSMA SGP.22 v2.5 §2.6.4, reference/IFPP.md §5.4)
 * under fixed session keys (those of the IFPP.md §5.4 KAT). The first input byte picks
 * the mode: bit 0 encrypted, bits 1-2 the tag (86/87/88/87), bit 3 the path.
 *  - path A: the rest of the input is a received TLV: pl_bsp_unwrap must return a
 *    negative pl_err or PL_OK; on an error the session state is unchanged and nothing
 *    is written; on success the output is shorter than the input.
 *  - path B: the rest is plaintext: wrapped by one session, it must unwrap on the peer
 *    to the same bytes within 1020 bytes per segment; then a copy with one byte flipped
 *    (position from the input) must be refused with the state unchanged. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/bsp.h"
#include "provline/protocol/wr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct pl_bsp_keys keys = {
    .mcv = {0x3e, 0xae, 0x72, 0x3c, 0x07, 0xd9, 0xca, 0x67, 0xa5, 0x89, 0xea, 0x8f, 0x22, 0xbf,
            0xa7, 0xfc},
    .s_enc = {0x84, 0x13, 0x30, 0xdc, 0x99, 0xb5, 0x3a, 0x2b, 0xca, 0x7b, 0xfa, 0xc5, 0xb7, 0x08,
              0xb6, 0x53},
    .s_mac = {0x8e, 0x4e, 0xc3, 0xed, 0x31, 0xf3, 0x15, 0x5a, 0x24, 0xd4, 0x1b, 0xa5, 0x97, 0xf1,
              0xf4, 0x2a},
};

static void path_a(uint8_t tag, bool enc, const uint8_t *p, size_t n)
{
    struct pl_bsp b, before;
    uint8_t out[2048];
    struct pl_wr w;
    int rc;

    pl_bsp_init(&b, &keys);
    before = b;
    pl_wr_init_fixed(&w, out, sizeof(out));
    rc = pl_bsp_unwrap(&b, tag, enc, p, n, &w);
    if (rc > 0)
        abort();
    if (rc != PL_OK) {
        if (memcmp(&b, &before, sizeof(b)) != 0 || w.len != 0)
            abort();
        return;
    }
    if (w.len >= n || b.counter != 2)
        abort();
}

static void path_b(uint8_t tag, bool enc, const uint8_t *p, size_t n)
{
    struct pl_bsp tx, rx, before;
    uint8_t seg[1100], bad[1100], out[1100];
    struct pl_wr w;
    size_t max = enc ? PL_BSP_MAX_PLAIN_ENC : PL_BSP_MAX_PLAIN_MAC;
    size_t len, flip;
    int rc;

    if (n > max)
        n = max;
    pl_bsp_init(&tx, &keys);
    pl_bsp_init(&rx, &keys);
    pl_wr_init_fixed(&w, seg, sizeof(seg));
    if (pl_bsp_wrap(&tx, tag, enc, p, n, &w) != PL_OK)
        abort();
    len = w.len;
    if (len > PL_BSP_MAX_SEGMENT)
        abort();

    /* one flipped byte: refused, nothing changes */
    flip = n > 0 ? p[0] % len : len / 2;
    memcpy(bad, seg, len);
    bad[flip] ^= (uint8_t)(n > 1 ? (p[1] | 1) : 0x01);
    before = rx;
    pl_wr_init_fixed(&w, out, sizeof(out));
    rc = pl_bsp_unwrap(&rx, tag, enc, bad, len, &w);
    if (rc == PL_OK || memcmp(&rx, &before, sizeof(rx)) != 0 || w.len != 0)
        abort();

    pl_wr_init_fixed(&w, out, sizeof(out));
    if (pl_bsp_unwrap(&rx, tag, enc, seg, len, &w) != PL_OK)
        abort();
    if (w.len != n || (n > 0 && memcmp(out, p, n) != 0))
        abort();
    if (memcmp(&tx, &rx, sizeof(tx)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t tags[4] = {0x86, 0x87, 0x88, 0x87};
    uint8_t mode;
    const uint8_t *rest;

    if (size == 0)
        return 0;
    mode = data[0];
    rest = size > 1 ? data + 1 : NULL;
    if (mode & 0x08)
        path_b(tags[(mode >> 1) & 3u], mode & 1u, rest, size - 1);
    else
        path_a(tags[(mode >> 1) & 3u], mode & 1u, rest, size - 1);
    return 0;
}
