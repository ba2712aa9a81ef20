/* Fuzz target: the reliable link's state machine (protocol/src/link.c,
 * docs/serial-framing.md §3) driven by a script decoded from the input: valid frames with
 * fuzzed header fields (so they pass the CRC and reach the link), raw line bytes, clock steps
 * and sends. Nothing may crash, leak or deliver more than max_msg bytes.
 *
 * Script, one op per step: 0 = frame {type, flags, seq, src#, dst#, len, payload[len]},
 * 1 = raw {len, bytes[len]}, 2 = tick {ms}, 3 = send {len/16}, 4 = restart. */
#include "provline/protocol/frame.h"
#include "provline/protocol/link.h"
#include "provline/protocol/rd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSG 3000u

static const uint32_t sessions[4] = {0, 0xA, 0xB, 0xC};

static int w_write(void *user, const uint8_t *buf, size_t len)
{
    (void)user;
    /* what the link writes must itself be well-formed frames */
    static struct pl_frame_rx rx;
    pl_frame_rx_init(&rx);
    size_t n = pl_frame_rx_feed(&rx, buf, len, NULL, NULL);
    if (n != 1 || pl_frame_rx_errors(&rx) != 0)
        abort();
    return 0;
}

static void w_deliver(void *user, const uint8_t *msg, size_t len)
{
    (void)user;
    if (!msg || len > MAX_MSG)
        abort();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < len; i++)
        sink ^= msg[i];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pl_link_config cfg;
    pl_link_config_default(&cfg);
    cfg.session = 0xA;
    cfg.mtu = 64;
    cfg.rto_ms = 10;
    cfg.reset_ms = 10;
    cfg.max_retries = 3;
    cfg.max_msg = MAX_MSG;
    cfg.max_queue = 4 * MAX_MSG;
    struct pl_link_ops ops = {.write = w_write, .deliver = w_deliver};
    struct pl_link *l = NULL;
    uint64_t now = 0;
    if (pl_link_new(&cfg, &ops, now, &l) != PL_OK)
        abort();
    static uint8_t msg[MAX_MSG];
    memset(msg, 0x42, sizeof(msg));
    uint32_t next_session = 0x100;

    struct pl_rd r;
    pl_rd_init(&r, data, size);
    uint8_t op;
    while (pl_rd_u8(&r, &op) == PL_OK) {
        int rc = PL_OK;
        switch (op % 5) {
        case 0: {
            uint8_t t, fl, seq, s, d, len;
            const uint8_t *p = NULL;
            if (pl_rd_u8(&r, &t) || pl_rd_u8(&r, &fl) || pl_rd_u8(&r, &seq) || pl_rd_u8(&r, &s)
                || pl_rd_u8(&r, &d) || pl_rd_u8(&r, &len) || pl_rd_bytes(&r, len, &p))
                goto out;
            struct pl_frame_hdr h = {.type = (uint8_t)(t % 5 + 1),
                                     .flags = fl & PL_FRAME_F_MORE,
                                     .seq = seq,
                                     .src = sessions[s % 4],
                                     .dst = sessions[d % 4],
                                     .len = len};
            uint8_t wire[PL_FRAME_ENC_MAX];
            size_t wn = 0;
            if (pl_frame_encode(&h, p, wire, sizeof(wire), &wn) != PL_OK)
                abort();
            rc = pl_link_input(l, wire, wn, now);
            break;
        }
        case 1: {
            uint8_t len;
            const uint8_t *p = NULL;
            if (pl_rd_u8(&r, &len) || pl_rd_bytes(&r, len, &p))
                goto out;
            rc = pl_link_input(l, p, len, now);
            break;
        }
        case 2: {
            uint8_t ms;
            if (pl_rd_u8(&r, &ms))
                goto out;
            now += ms;
            rc = pl_link_tick(l, now);
            break;
        }
        case 3: {
            uint8_t n16;
            if (pl_rd_u8(&r, &n16))
                goto out;
            rc = pl_link_send(l, msg, (size_t)n16 * 16u, now);
            if (rc == PL_ERR_OVERFLOW || rc == PL_ERR_INVAL)
                rc = PL_OK;
            break;
        }
        default:
            rc = pl_link_restart(l, next_session++, now);
            break;
        }
        if (rc != PL_OK && rc != PL_ERR_TIMEOUT)
            abort();
        if (pl_link_pending(l) > 4 * MAX_MSG)
            abort();
    }
out:
    pl_link_free(l);
    return 0;
}
