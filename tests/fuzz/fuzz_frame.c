/* Fuzz target: the incremental serial frame decoder (protocol/src/frame.c,
 * docs/serial-framing.md §2). Any byte string, fed in pseudo-random chunk sizes, must give the
 * same frames and counters as when fed whole; every frame delivered must re-encode to wire
 * bytes that decode to the same frame; nothing may be read or written out of bounds. */
#include "provline/protocol/frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEN 4096

struct seen {
    size_t n;
    uint32_t digest[MAX_SEEN]; /* CRC of header fields + payload of each frame */
};

static void on_frame(void *user, const struct pl_frame_hdr *h, const uint8_t *payload)
{
    struct seen *s = user;
    if (h->len > PL_FRAME_MAX_PAYLOAD || (h->len && !payload))
        abort();
    uint8_t hb[11] = {h->type,
                      h->flags,
                      h->seq,
                      (uint8_t)(h->src >> 24),
                      (uint8_t)(h->src >> 16),
                      (uint8_t)(h->src >> 8),
                      (uint8_t)h->src,
                      (uint8_t)(h->dst >> 24),
                      (uint8_t)(h->dst >> 16),
                      (uint8_t)(h->dst >> 8),
                      (uint8_t)h->dst};
    uint32_t d = pl_crc32_update(pl_crc32(hb, sizeof(hb)), payload, h->len);
    if (s->n < MAX_SEEN)
        s->digest[s->n] = d;
    s->n++;

    /* round trip: re-encode, decode again, same frame */
    static uint8_t wire[PL_FRAME_ENC_MAX];
    size_t wn = 0;
    if (pl_frame_encode(h, payload, wire, sizeof(wire), &wn) != PL_OK)
        abort();
    static struct pl_frame_rx rx2;
    pl_frame_rx_init(&rx2);
    if (pl_frame_rx_feed(&rx2, wire, wn, NULL, NULL) != 1 || pl_frame_rx_errors(&rx2) != 0)
        abort();
}

static uint64_t step(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy so ASan sees the exact bounds. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    static struct pl_frame_rx whole, chunked;
    static struct seen s1, s2;
    s1.n = 0;
    s2.n = 0;

    pl_frame_rx_init(&whole);
    size_t d1 = pl_frame_rx_feed(&whole, buf, size, on_frame, &s1);

    uint64_t x = 0x9E3779B97F4A7C15ull ^ size ^ (size ? (uint64_t)buf[0] << 32 : 0);
    pl_frame_rx_init(&chunked);
    size_t d2 = 0;
    for (size_t off = 0; off < size;) {
        size_t n = (size_t)(step(&x) % 64u) + 1u;
        if (step(&x) % 8u == 0)
            n = (size_t)(step(&x) % 5000u) + 1u;
        if (n > size - off)
            n = size - off;
        /* each chunk in its own allocation, so a read past it is caught */
        uint8_t *c = malloc(n);
        if (!c)
            abort();
        memcpy(c, buf + off, n);
        d2 += pl_frame_rx_feed(&chunked, c, n, on_frame, &s2);
        free(c);
        off += n;
    }
    (void)pl_frame_rx_feed(&chunked, NULL, 0, on_frame, &s2);

    if (d1 != d2 || s1.n != s2.n || d1 != s1.n)
        abort();
    size_t cmp = s1.n < MAX_SEEN ? s1.n : MAX_SEEN;
    if (memcmp(s1.digest, s2.digest, cmp * sizeof(uint32_t)) != 0)
        abort();
    if (memcmp(&whole.stats, &chunked.stats, sizeof(whole.stats)) != 0)
        abort();
    if (whole.len > sizeof(whole.buf))
        abort();

    /* the one-shot helpers on the same bytes */
    static uint8_t out[PL_FRAME_RAW_MAX];
    size_t on = 0;
    if (pl_frame_cobs_decode(buf, size, out, sizeof(out), &on) == PL_OK) {
        struct pl_frame_hdr h;
        const uint8_t *p = NULL;
        if (pl_frame_parse(out, on, &h, &p) == PL_OK && h.len > PL_FRAME_MAX_PAYLOAD)
            abort();
    }
    free(buf);
    return 0;
}
