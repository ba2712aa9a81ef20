/* Software eUICC APDU front end: ISO/IEC 7816-4 §7.1.2 MANAGE CHANNEL, §7.1.1 SELECT
 * (ISD-R, SGP.22 v2.5 §2.2.3), §7.6.1 GET RESPONSE after '61xx', and GlobalPlatform Card
 * Spec §11.11 STORE DATA carrying ES10 requests (SGP.22 v2.5 §5.7: P1 '11'/'91', P2 =
 * block number). provline reference: IFPP.md §5.7; docs/software-euicc.md §5. */
#include "euicc_internal.h"
#include "provline/protocol/secret.h"

#include <stdlib.h>
#include <string.h>

#define SW_CHANNEL_NOT_SUPPORTED 0x6881u
#define SW_NO_MORE_CHANNELS      0x6A81u
#define SW_INTERNAL              0x6F00u

static int put_sw(struct pl_wr *w, uint16_t sw)
{
    pl_wr_u16be(w, sw);
    return pl_wr_status(w);
}

static void drop_response(struct pl_euicc *e)
{
    if (e->rsp) {
        pl_memzero(e->rsp, e->rsp_len);
        free(e->rsp);
    }
    e->rsp = NULL;
    e->rsp_len = 0;
    memset(&e->tx, 0, sizeof(e->tx));
}

/* A load is bound to its logical channel: closing that channel interrupts it. */
static int channel_closed(struct pl_euicc *e, unsigned ch)
{
    e->isdr_selected[ch] = false;
    if (e->rx.active && e->rx.channel == ch)
        pl_es10_rx_reset(&e->rx);
    if (e->load.phase != PL_LOAD_IDLE && e->load.channel == ch)
        return pl_euicc_load_interrupt(e);
    return PL_OK;
}

static int manage_channel(struct pl_euicc *e, const struct pl_capdu *c, unsigned ch,
                          struct pl_wr *r)
{
    int rc;
    if (c->p1 == 0x00u) {
        /* open: P2 = 00 lets the card choose (the only form lpac uses) */
        if (c->p2 != 0 || c->lc != 0)
            return put_sw(r, PL_SW_WRONG_P1P2);
        for (unsigned n = 1; n < PL_EUICC_CHANNELS; n++) {
            if (!e->chan_open[n]) {
                e->chan_open[n] = true;
                e->isdr_selected[n] = false;
                pl_wr_u8(r, (uint8_t)n);
                return put_sw(r, PL_SW_OK);
            }
        }
        return put_sw(r, SW_NO_MORE_CHANNELS);
    }
    if (c->p1 == 0x80u) {
        unsigned target = c->p2 ? c->p2 : ch;
        if (target == 0 || target >= PL_EUICC_CHANNELS || !e->chan_open[target])
            return put_sw(r, SW_CHANNEL_NOT_SUPPORTED);
        e->chan_open[target] = false;
        if ((rc = channel_closed(e, target)))
            return rc;
        return put_sw(r, PL_SW_OK);
    }
    return put_sw(r, PL_SW_WRONG_P1P2);
}

static int select_aid(struct pl_euicc *e, const struct pl_capdu *c, unsigned ch, struct pl_wr *r)
{
    if (c->p1 != 0x04u || (c->p2 != 0x00u && c->p2 != 0x0Cu))
        return put_sw(r, PL_SW_WRONG_P1P2);
    if (c->lc == PL_ISDR_AID_LEN && memcmp(c->data, pl_apdu_isdr_aid, PL_ISDR_AID_LEN) == 0) {
        e->isdr_selected[ch] = true;
        if (e->rx.active && e->rx.channel == ch)
            pl_es10_rx_reset(&e->rx);
        return put_sw(r, PL_SW_OK);
    }
    e->isdr_selected[ch] = false;
    return put_sw(r, PL_SW_NOT_FOUND);
}

static int store_data(struct pl_euicc *e, const uint8_t *capdu, size_t clen, unsigned ch,
                      struct pl_wr *r)
{
    int rc = PL_ERR_INTERNAL;
    bool complete = false;
    const uint8_t *req;
    size_t req_len;
    struct pl_wr rsp;

    pl_wr_init_dyn(&rsp, PL_EUICC_STATE_MAX);
    if (!e->isdr_selected[ch]) {
        rc = put_sw(r, PL_SW_CONDITIONS);
        goto out;
    }
    rc = pl_es10_rx_feed(&e->rx, capdu, clen, &complete);
    if (rc) {
        rc = put_sw(r, pl_es10_rx_sw(rc));
        goto out;
    }
    if (!complete) {
        rc = put_sw(r, PL_SW_OK);
        goto out;
    }
    if ((rc = pl_es10_rx_data(&e->rx, &req, &req_len)))
        goto out;
    rc = pl_euicc_es10_dispatch(e, req, req_len, ch, &rsp);
    pl_es10_rx_reset(&e->rx);
    if (e->dead) {
        rc = PL_ERR_STATE; /* the power went during this command: no answer at all */
        goto out;
    }
    if (rc > 0) {
        rc = put_sw(r, (uint16_t)rc);
        goto out;
    }
    if (rc < 0) {
        rc = put_sw(r, SW_INTERNAL);
        goto out;
    }
    if (rsp.len == 0) {
        rc = put_sw(r, PL_SW_OK);
        goto out;
    }
    e->rsp = pl_wr_take(&rsp, &e->rsp_len);
    if (!e->rsp) {
        rc = put_sw(r, SW_INTERNAL);
        goto out;
    }
    e->rsp_chan = ch;
    rc = pl_es10_tx_start(&e->tx, e->rsp, e->rsp_len, r);
out:
    pl_wr_free(&rsp);
    return rc;
}

static int get_response(struct pl_euicc *e, const uint8_t *capdu, size_t clen, struct pl_wr *r)
{
    unsigned ch;
    size_t le;
    if (pl_es10_get_response_parse(capdu, clen, &ch, &le) != PL_OK)
        return put_sw(r, PL_SW_WRONG_P1P2);
    if (!e->rsp || ch != e->rsp_chan || !pl_es10_tx_pending(&e->tx))
        return put_sw(r, PL_SW_CONDITIONS);
    int rc = pl_es10_tx_next(&e->tx, le, r);
    if (rc == PL_OK && !pl_es10_tx_pending(&e->tx))
        drop_response(e);
    return rc;
}

int pl_euicc_apdu(struct pl_euicc *e, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                  size_t rcap, size_t *rlen)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_capdu c;
    struct pl_wr r;
    unsigned ch;
    uint8_t base;

    if (!e || !capdu || !rapdu || !rlen || rcap < PL_EUICC_RAPDU_MIN)
        return PL_ERR_INVAL;
    *rlen = 0;
    if (e->dead)
        return PL_ERR_STATE;
    pl_wr_init_fixed(&r, rapdu, rcap);

    if (pl_apdu_parse(capdu, clen, &c) != PL_OK) {
        drop_response(e);
        rc = put_sw(&r, PL_SW_WRONG_LENGTH);
        goto out;
    }
    if (pl_apdu_cla_parse(c.cla, &ch, &base) != PL_OK) {
        drop_response(e);
        rc = put_sw(&r, PL_SW_CLA_UNSUPPORTED);
        goto out;
    }
    if (ch >= PL_EUICC_CHANNELS || (ch != 0 && !e->chan_open[ch])) {
        rc = put_sw(&r, SW_CHANNEL_NOT_SUPPORTED);
        goto out;
    }
    if (c.ins == PL_INS_GET_RESPONSE) {
        rc = get_response(e, capdu, clen, &r);
        goto out;
    }
    /* Any other command ends a pending response (ISO/IEC 7816-4 §7.6.1). */
    drop_response(e);
    switch (c.ins) {
    case PL_INS_MANAGE_CHANNEL:
        rc = base == 0x00u ? manage_channel(e, &c, ch, &r) : put_sw(&r, PL_SW_CLA_UNSUPPORTED);
        break;
    case PL_INS_SELECT:
        rc = base == 0x00u ? select_aid(e, &c, ch, &r) : put_sw(&r, PL_SW_CLA_UNSUPPORTED);
        break;
    case PL_INS_STORE_DATA:
        rc = base == 0x80u ? store_data(e, capdu, clen, ch, &r) : put_sw(&r, PL_SW_CLA_UNSUPPORTED);
        break;
    default:
        rc = put_sw(&r, PL_SW_INS_UNSUPPORTED);
        break;
    }
out:
    if (e->dead)
        return PL_ERR_STATE;
    if (rc == PL_OK)
        *rlen = r.len;
    return rc;
}

int pl_euicc_reset(struct pl_euicc *e)
{
    int rc = PL_OK;
    if (!e)
        return PL_ERR_INVAL;
    if (e->dead)
        return PL_ERR_STATE;
    drop_response(e);
    /* The basic channel stays open (ISO/IEC 7816-4 §5.1.1) but nothing is selected. */
    for (unsigned ch = 0; ch < PL_EUICC_CHANNELS && rc == PL_OK; ch++) {
        if (ch == 0 || e->chan_open[ch]) {
            e->chan_open[ch] = ch == 0;
            rc = channel_closed(e, ch);
        }
    }
    pl_es10_rx_reset(&e->rx);
    e->await_reset = false;
    return e->dead ? PL_ERR_STATE : rc;
}

int pl_euicc_card_reset(void *user)
{
    return pl_euicc_reset(user);
}

int pl_euicc_transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu, size_t rcap,
                      size_t *rlen)
{
    return pl_euicc_apdu(user, capdu, clen, rapdu, rcap, rlen);
}
