/* ISO/IEC 7816-4 short APDUs (§5.1, §5.4.1, §7.1.1 SELECT, §7.1.2 MANAGE CHANNEL, §7.6.1
 * GET RESPONSE) and the ES10 STORE DATA transport of GSMA SGP.22 v2.5 §5.7 (GlobalPlatform
 * Card Spec §11.11), host and card sides. provline reference: IFPP.md §5.7. */
#include "provline/protocol/apdu.h"

#include <string.h>

#define SW1_MORE_DATA 0x61u
#define SW1_PROACTIVE 0x91u /* TS 102 221 §10.2.1.1: normal ending + proactive command */

const uint8_t pl_apdu_isdr_aid[PL_ISDR_AID_LEN] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
                                                   0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00};

static int fail(struct pl_wr *w, int rc)
{
    pl_wr_fail(w, rc);
    return pl_wr_status(w);
}

/* ---- APDU codec ---- */

int pl_apdu_encode(const struct pl_capdu *c, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    if (c->lc > PL_APDU_MAX_LC || c->le > PL_APDU_MAX_LE || (c->lc && !c->data))
        return fail(w, PL_ERR_INVAL);
    pl_wr_u8(w, c->cla);
    pl_wr_u8(w, c->ins);
    pl_wr_u8(w, c->p1);
    pl_wr_u8(w, c->p2);
    if (c->lc) {
        pl_wr_u8(w, (uint8_t)c->lc);
        pl_wr_bytes(w, c->data, c->lc);
    }
    if (c->le)
        pl_wr_u8(w, (uint8_t)(c->le & 0xFFu)); /* 256 -> 00 */
    return pl_wr_status(w);
}

int pl_apdu_parse(const uint8_t *p, size_t len, struct pl_capdu *out)
{
    struct pl_rd r;
    uint8_t p3, le;
    int rc;

    memset(out, 0, sizeof(*out));
    pl_rd_init(&r, p, len);
    if (len < 4)
        return PL_ERR_MALFORMED;
    if ((rc = pl_rd_u8(&r, &out->cla)) || (rc = pl_rd_u8(&r, &out->ins))
        || (rc = pl_rd_u8(&r, &out->p1)) || (rc = pl_rd_u8(&r, &out->p2)))
        return PL_ERR_MALFORMED;
    if (pl_rd_done(&r))
        return PL_OK; /* case 1 */
    if ((rc = pl_rd_u8(&r, &p3)))
        return PL_ERR_MALFORMED;
    if (pl_rd_done(&r)) {
        out->le = p3 ? p3 : PL_APDU_MAX_LE; /* case 2 */
        return PL_OK;
    }
    if (p3 == 0) {
        memset(out, 0, sizeof(*out));
        return PL_ERR_UNSUPPORTED; /* extended length */
    }
    out->lc = p3;
    if (pl_rd_bytes(&r, out->lc, &out->data) != PL_OK) {
        memset(out, 0, sizeof(*out));
        return PL_ERR_MALFORMED;
    }
    if (pl_rd_done(&r))
        return PL_OK; /* case 3 */
    if (pl_rd_u8(&r, &le) == PL_OK && pl_rd_done(&r)) {
        out->le = le ? le : PL_APDU_MAX_LE; /* case 4 */
        return PL_OK;
    }
    memset(out, 0, sizeof(*out));
    return PL_ERR_MALFORMED;
}

int pl_rapdu_parse(const uint8_t *p, size_t len, struct pl_rapdu *out)
{
    struct pl_rd r;
    memset(out, 0, sizeof(*out));
    if (len < 2 || len > PL_APDU_RAPDU_MAX)
        return PL_ERR_MALFORMED;
    pl_rd_init(&r, p, len);
    if (pl_rd_bytes(&r, len - 2, &out->data) != PL_OK || pl_rd_u16be(&r, &out->sw) != PL_OK) {
        memset(out, 0, sizeof(*out));
        return PL_ERR_MALFORMED;
    }
    out->len = len - 2;
    return PL_OK;
}

int pl_rapdu_encode(const uint8_t *data, size_t len, uint16_t sw, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    if (len > PL_APDU_MAX_LE || (len && !data))
        return fail(w, PL_ERR_INVAL);
    pl_wr_bytes(w, data, len);
    pl_wr_u16be(w, sw);
    return pl_wr_status(w);
}

int pl_apdu_cla(uint8_t base, unsigned channel, uint8_t *cla)
{
    if (base != 0x00u && base != 0x80u)
        return PL_ERR_INVAL;
    if (channel <= 3u) {
        *cla = (uint8_t)(base | channel);
        return PL_OK;
    }
    if (channel <= PL_APDU_MAX_CHANNEL) {
        *cla = (uint8_t)(base | 0x40u | (channel - 4u));
        return PL_OK;
    }
    return PL_ERR_INVAL;
}

int pl_apdu_cla_parse(uint8_t cla, unsigned *channel, uint8_t *base)
{
    if (cla == 0xFFu)
        return PL_ERR_UNSUPPORTED;
    if (cla & 0x40u) {
        /* further interindustry: b6 secure messaging, b5 chaining */
        if (cla & 0x30u)
            return PL_ERR_UNSUPPORTED;
        *channel = 4u + (cla & 0x0Fu);
    } else {
        /* first interindustry: b6 must be 0 (else reserved), b5 chaining, b4b3 SM */
        if (cla & 0x3Cu)
            return PL_ERR_UNSUPPORTED;
        *channel = cla & 0x03u;
    }
    *base = (uint8_t)(cla & 0x80u);
    return PL_OK;
}

/* ---- host side ---- */

static bool sw_ok(uint16_t sw)
{
    return sw == PL_SW_OK || (sw >> 8) == SW1_PROACTIVE;
}

/* Encodes c, sends it and parses the answer into r (data borrows rbuf). */
static int xmit(const struct pl_apdu_ops *ops, const struct pl_capdu *c,
                uint8_t rbuf[PL_APDU_RAPDU_MAX], struct pl_rapdu *r)
{
    uint8_t cbuf[PL_APDU_CAPDU_MAX];
    struct pl_wr cw;
    size_t rlen = 0;
    int rc;

    pl_wr_init_fixed(&cw, cbuf, sizeof(cbuf));
    if ((rc = pl_apdu_encode(c, &cw)))
        return rc;
    rc = ops->transmit(ops->user, cw.buf, cw.len, rbuf, PL_APDU_RAPDU_MAX, &rlen);
    if (rc)
        return rc < 0 ? rc : PL_ERR_IO;
    if (rlen > PL_APDU_RAPDU_MAX)
        return PL_ERR_IO; /* the transport broke its contract */
    return pl_rapdu_parse(rbuf, rlen, r);
}

int pl_apdu_transceive(const struct pl_apdu_ops *ops, const struct pl_capdu *c, uint8_t gr_cla,
                       struct pl_wr *rsp, uint16_t *sw)
{
    uint8_t rbuf[PL_APDU_RAPDU_MAX];
    struct pl_rapdu r;
    int rc = PL_ERR_INTERNAL;

    if (sw)
        *sw = 0;
    if (!ops || !ops->transmit)
        return PL_ERR_INVAL;
    if ((rc = xmit(ops, c, rbuf, &r)))
        return rc;
    for (unsigned rounds = 0;; rounds++) {
        if (rsp && r.len) {
            pl_wr_bytes(rsp, r.data, r.len);
            if ((rc = pl_wr_status(rsp)))
                return rc;
        }
        if ((r.sw >> 8) != SW1_MORE_DATA)
            break;
        if (rounds == PL_APDU_MAX_GET_RESPONSE)
            return PL_ERR_OVERFLOW;
        /* ISO 7816-4 §7.6.1 GET RESPONSE, Le = SW2 (00 = 256) */
        struct pl_capdu gr = {.cla = gr_cla, .ins = PL_INS_GET_RESPONSE, .p1 = 0, .p2 = 0,
                              .le = (r.sw & 0xFFu) ? (r.sw & 0xFFu) : PL_APDU_MAX_LE};
        if ((rc = xmit(ops, &gr, rbuf, &r)))
            return rc;
    }
    if (sw)
        *sw = r.sw;
    return sw_ok(r.sw) ? PL_OK : PL_ERR_CARD_SW;
}

int pl_apdu_open_channel(const struct pl_apdu_ops *ops, unsigned *channel, uint16_t *sw)
{
    uint8_t b[4];
    struct pl_wr w;
    struct pl_rd r;
    uint8_t ch;
    int rc;

    *channel = 0;
    pl_wr_init_fixed(&w, b, sizeof(b));
    /* 00 70 00 00 01: open, the card assigns the number */
    struct pl_capdu c = {.cla = 0x00, .ins = PL_INS_MANAGE_CHANNEL, .p1 = 0x00, .p2 = 0x00, .le = 1};
    if ((rc = pl_apdu_transceive(ops, &c, 0x00, &w, sw)))
        return rc;
    if (w.len != 1)
        return PL_ERR_MALFORMED;
    pl_rd_init(&r, w.buf, w.len);
    if ((rc = pl_rd_u8(&r, &ch)))
        return rc;
    if (ch < 1u || ch > PL_APDU_MAX_CHANNEL)
        return PL_ERR_MALFORMED;
    *channel = ch;
    return PL_OK;
}

int pl_apdu_close_channel(const struct pl_apdu_ops *ops, unsigned channel, uint16_t *sw)
{
    if (channel < 1u || channel > PL_APDU_MAX_CHANNEL)
        return PL_ERR_INVAL;
    /* 00 70 80 cc on the basic channel */
    struct pl_capdu c = {.cla = 0x00, .ins = PL_INS_MANAGE_CHANNEL, .p1 = 0x80,
                         .p2 = (uint8_t)channel};
    return pl_apdu_transceive(ops, &c, 0x00, NULL, sw);
}

int pl_apdu_select_aid(const struct pl_apdu_ops *ops, unsigned channel, const uint8_t *aid,
                       size_t aid_len, struct pl_wr *fci, uint16_t *sw)
{
    uint8_t cla;
    int rc;
    if (!aid || aid_len < 1u || aid_len > 16u)
        return PL_ERR_INVAL;
    if ((rc = pl_apdu_cla(0x00, channel, &cla)))
        return rc;
    /* SELECT by DF name, first or only occurrence, return FCI */
    struct pl_capdu c = {.cla = cla, .ins = PL_INS_SELECT, .p1 = 0x04, .p2 = 0x00,
                         .data = aid, .lc = aid_len, .le = PL_APDU_MAX_LE};
    return pl_apdu_transceive(ops, &c, cla, fci, sw);
}

int pl_es10_transceive(const struct pl_apdu_ops *ops, unsigned channel, const uint8_t *req,
                       size_t req_len, size_t mss, struct pl_wr *rsp, uint16_t *sw)
{
    struct pl_rd r;
    uint8_t cla;
    int rc = PL_ERR_INTERNAL;

    if (sw)
        *sw = 0;
    if (!ops || !ops->transmit || !req || req_len == 0)
        return PL_ERR_INVAL;
    if (mss == 0)
        mss = PL_ES10_MSS_DEFAULT;
    if (mss > PL_ES10_MSS_MAX)
        return PL_ERR_INVAL;
    if ((rc = pl_apdu_cla(0x80, channel, &cla)))
        return rc;
    size_t blocks = req_len / mss + (req_len % mss ? 1u : 0u);
    if (blocks > PL_ES10_MAX_BLOCKS)
        return PL_ERR_OVERFLOW;
    pl_rd_init(&r, req, req_len);
    for (size_t blk = 0; blk < blocks; blk++) {
        size_t n = pl_rd_left(&r) < mss ? pl_rd_left(&r) : mss;
        const uint8_t *chunk;
        if ((rc = pl_rd_bytes(&r, n, &chunk)))
            return PL_ERR_INTERNAL;
        /* GP STORE DATA: P1 b8 = last block, b5 b4 = BER-TLV; P2 = block number */
        struct pl_capdu c = {.cla = cla, .ins = PL_INS_STORE_DATA,
                             .p1 = pl_rd_done(&r) ? PL_ES10_P1_LAST : PL_ES10_P1_MORE,
                             .p2 = (uint8_t)blk, .data = chunk, .lc = n};
        if ((rc = pl_apdu_transceive(ops, &c, cla, rsp, sw)))
            return rc;
    }
    return PL_OK;
}

/* ---- card side: STORE DATA reassembly ---- */

void pl_es10_rx_init(struct pl_es10_rx *rx, size_t max)
{
    memset(rx, 0, sizeof(*rx));
    rx->max = max ? max : PL_ES10_RX_MAX_DEFAULT;
    pl_wr_init_dyn(&rx->buf, rx->max);
}

void pl_es10_rx_reset(struct pl_es10_rx *rx)
{
    pl_wr_reset(&rx->buf);
    rx->channel = 0;
    rx->next = 0;
    rx->active = false;
    rx->complete = false;
}

void pl_es10_rx_free(struct pl_es10_rx *rx)
{
    pl_wr_free(&rx->buf);
    pl_es10_rx_reset(rx);
}

static int rx_drop(struct pl_es10_rx *rx, int rc)
{
    pl_es10_rx_reset(rx);
    return rc;
}

int pl_es10_rx_feed(struct pl_es10_rx *rx, const uint8_t *capdu, size_t len, bool *complete)
{
    struct pl_capdu c;
    unsigned ch;
    uint8_t base;
    int rc;

    *complete = false;
    if ((rc = pl_apdu_parse(capdu, len, &c)))
        return rx_drop(rx, rc);
    if (pl_apdu_cla_parse(c.cla, &ch, &base) != PL_OK || base != 0x80u)
        return rx_drop(rx, PL_ERR_UNSUPPORTED);
    if (c.ins != PL_INS_STORE_DATA)
        return rx_drop(rx, PL_ERR_UNSUPPORTED);
    if (c.p1 != PL_ES10_P1_MORE && c.p1 != PL_ES10_P1_LAST)
        return rx_drop(rx, PL_ERR_INVAL);
    if (c.lc == 0)
        return rx_drop(rx, PL_ERR_MALFORMED);
    if (c.p2 == 0) {
        pl_es10_rx_reset(rx); /* block 0 starts a new request */
        rx->active = true;
        rx->channel = ch;
    } else if (!rx->active || ch != rx->channel || c.p2 != rx->next) {
        return rx_drop(rx, PL_ERR_STATE);
    }
    if (c.lc > rx->max - rx->buf.len)
        return rx_drop(rx, PL_ERR_OVERFLOW);
    pl_wr_bytes(&rx->buf, c.data, c.lc);
    if ((rc = pl_wr_status(&rx->buf)))
        return rx_drop(rx, rc);
    rx->next = (unsigned)c.p2 + 1u;
    if (c.p1 == PL_ES10_P1_LAST) {
        rx->active = false;
        rx->complete = true;
        *complete = true;
    }
    return PL_OK;
}

int pl_es10_rx_data(const struct pl_es10_rx *rx, const uint8_t **p, size_t *len)
{
    if (!rx->complete)
        return PL_ERR_STATE;
    *p = rx->buf.buf;
    *len = rx->buf.len;
    return PL_OK;
}

uint16_t pl_es10_rx_sw(int err)
{
    switch (err) {
    case PL_OK: return PL_SW_OK;
    case PL_ERR_MALFORMED: return PL_SW_WRONG_LENGTH;
    case PL_ERR_UNSUPPORTED: return PL_SW_INS_UNSUPPORTED;
    case PL_ERR_INVAL: return PL_SW_WRONG_P1P2;
    case PL_ERR_STATE: return PL_SW_CONDITIONS;
    case PL_ERR_OVERFLOW: return PL_SW_MEMORY;
    default: return PL_SW_UNKNOWN;
    }
}

/* ---- card side: long responses ---- */

static uint16_t more_sw(size_t left)
{
    return (uint16_t)((SW1_MORE_DATA << 8) | ((left >= PL_APDU_MAX_LE ? 0u : left) & 0xFFu));
}

int pl_es10_tx_start(struct pl_es10_tx *tx, const uint8_t *rsp, size_t len, struct pl_wr *rapdu)
{
    if (len && !rsp) {
        pl_rd_init(&tx->rd, NULL, 0);
        return fail(rapdu, PL_ERR_INVAL);
    }
    pl_rd_init(&tx->rd, rsp, len);
    return pl_rapdu_encode(NULL, 0, len ? more_sw(len) : PL_SW_OK, rapdu);
}

bool pl_es10_tx_pending(const struct pl_es10_tx *tx)
{
    return pl_rd_left(&tx->rd) > 0;
}

int pl_es10_tx_next(struct pl_es10_tx *tx, size_t le, struct pl_wr *rapdu)
{
    const uint8_t *p;
    int rc;
    if (!pl_es10_tx_pending(tx))
        return PL_ERR_STATE;
    if (le == 0)
        le = PL_APDU_MAX_LE;
    if (le > PL_APDU_MAX_LE)
        return PL_ERR_INVAL;
    size_t n = pl_rd_left(&tx->rd) < le ? pl_rd_left(&tx->rd) : le;
    if ((rc = pl_rd_bytes(&tx->rd, n, &p)))
        return rc;
    size_t left = pl_rd_left(&tx->rd);
    return pl_rapdu_encode(p, n, left ? more_sw(left) : PL_SW_OK, rapdu);
}

int pl_es10_get_response_parse(const uint8_t *capdu, size_t len, unsigned *channel, size_t *le)
{
    struct pl_capdu c;
    uint8_t base;
    int rc;
    if ((rc = pl_apdu_parse(capdu, len, &c)))
        return rc;
    if ((rc = pl_apdu_cla_parse(c.cla, channel, &base)))
        return rc;
    if (c.ins != PL_INS_GET_RESPONSE)
        return PL_ERR_UNSUPPORTED;
    if (c.p1 != 0 || c.p2 != 0)
        return PL_ERR_INVAL;
    if (c.lc != 0 || c.le == 0)
        return PL_ERR_MALFORMED;
    *le = c.le;
    return PL_OK;
}
