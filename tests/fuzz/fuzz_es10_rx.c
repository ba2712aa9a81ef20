/* Fuzz target: the ES10 transport (protocol/src/apdu.c). The input is a sequence of records
 * [len][len bytes]. The records are fed as C-APDUs to the card-side STORE DATA reassembler
 * (small cap, so the overflow path is reachable) and parsed as C-/R-APDUs; then they are
 * played back as the card's R-APDUs to the host-side pl_es10_transceive(); finally the
 * card-side 61xx emitter drains the input with the record lengths as Le values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/apdu.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/wr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RX_CAP 2048u

struct card {
    struct pl_rd rd; /* the R-APDU records still to play */
};

static int play(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu, size_t rcap,
                size_t *rlen)
{
    struct card *c = user;
    uint8_t n;
    (void)capdu;
    (void)clen;
    if (pl_rd_u8(&c->rd, &n) != PL_OK)
        return PL_ERR_IO; /* the card went silent */
    size_t take = n < pl_rd_left(&c->rd) ? n : pl_rd_left(&c->rd);
    if (take > rcap)
        take = rcap;
    if (pl_rd_copy(&c->rd, rapdu, take) != PL_OK)
        return PL_ERR_IO;
    *rlen = take;
    return PL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    struct pl_es10_rx rx;
    struct pl_rd rd;
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);

    /* 1. card side: reassembly. */
    pl_es10_rx_init(&rx, RX_CAP);
    pl_rd_init(&rd, buf, size);
    for (;;) {
        uint8_t n;
        const uint8_t *rec;
        bool complete = false;
        if (pl_rd_u8(&rd, &n) != PL_OK || pl_rd_bytes(&rd, n, &rec) != PL_OK)
            break;
        int rc = pl_es10_rx_feed(&rx, rec, n, &complete);
        (void)pl_es10_rx_sw(rc);
        const uint8_t *p;
        size_t len;
        if (complete) {
            if (rc != PL_OK || pl_es10_rx_data(&rx, &p, &len) != PL_OK || len == 0 || len > RX_CAP)
                abort();
        }
        struct pl_capdu c;
        struct pl_rapdu r;
        unsigned ch;
        size_t le;
        uint8_t base;
        if (pl_apdu_parse(rec, n, &c) == PL_OK) {
            if (c.lc > PL_APDU_MAX_LC || c.le > PL_APDU_MAX_LE)
                abort();
            if (pl_apdu_cla_parse(c.cla, &ch, &base) == PL_OK && ch > PL_APDU_MAX_CHANNEL)
                abort();
        }
        if (pl_rapdu_parse(rec, n, &r) == PL_OK && r.len + 2 != n)
            abort();
        if (pl_es10_get_response_parse(rec, n, &ch, &le) == PL_OK && (le == 0 || le > 256))
            abort();
    }
    pl_es10_rx_free(&rx);

    /* 2. host side: the records are the card's answers. */
    struct card card;
    struct pl_apdu_ops ops = {play, &card};
    struct pl_wr rsp;
    static const uint8_t req[300] = {0xBF, 0x2B, 0x00};
    uint16_t sw;
    pl_rd_init(&card.rd, buf, size);
    pl_wr_init_dyn(&rsp, 4096);
    int rc = pl_es10_transceive(&ops, 1, req, sizeof(req), 100, &rsp, &sw);
    if (rc == PL_OK && sw != PL_SW_OK && (sw >> 8) != 0x91)
        abort();
    if (rc == PL_ERR_CARD_SW && (sw == PL_SW_OK || (sw >> 8) == 0x91 || (sw >> 8) == 0x61))
        abort();
    pl_wr_free(&rsp);

    /* 3. card side: 61xx chunks of the whole input. */
    struct pl_es10_tx tx;
    uint8_t rbuf[PL_APDU_RAPDU_MAX];
    struct pl_wr w;
    size_t total = 0;
    pl_wr_init_fixed(&w, rbuf, sizeof(rbuf));
    if (pl_es10_tx_start(&tx, buf, size, &w) != PL_OK)
        abort();
    for (size_t i = 0; pl_es10_tx_pending(&tx); i++) {
        size_t le = size ? buf[i % size] : 0;
        pl_wr_init_fixed(&w, rbuf, sizeof(rbuf));
        if (pl_es10_tx_next(&tx, le, &w) != PL_OK || w.len < 2)
            abort();
        total += w.len - 2;
    }
    if (total != size)
        abort();
    free(buf);
    return 0;
}
