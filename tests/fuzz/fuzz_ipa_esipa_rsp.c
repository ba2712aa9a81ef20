/* Fuzz target: arbitrary eIM answers to the IPA (ipa/include/provline/ipa/ipa.h). The input
 * is one flags byte followed by a GetEimPackageResponse body (GSMA SGP.32 v1.2 §6.3.2.6),
 * which goes to pl_ipa_handle_get_eim_package_response() exactly as if the eIM had sent it;
 * whatever the IPA then does runs against a small fake eUICC (ES10 over STORE DATA with the
 * card-side helpers of apdu.h, canned answers) and a fake eIM transport whose answer to
 * ProvideEimPackageResult (§6.3.2.7) the flags choose.
 *
 * flags bit 0-1: ProvideEimPackageResult answer: emptyResponse, acknowledgements 1..3,
 *                provideEimPackageResultError, transport timeout
 *       bit 2:   the eUICC loses its answer to LoadEuiccPackage ('6985')
 *       bit 3:   the stored-result query finds one (an unsigned error result)
 *       bit 4:   every ES10 command after the first five fails at the transport
 * The IPA must never crash, leak or read out of bounds, and must leave a consistent status. */
#include "provline/ipa/ipa.h"
#include "provline/protocol/apdu.h"
#include "provline/protocol/der.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t EID[16] = {0x89, 0x04, 0x90, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x63};

struct card {
    struct pl_es10_rx rx;
    struct pl_es10_tx tx;
    uint8_t out[4096];
    uint8_t flags;
    unsigned commands;
};

static int put(struct pl_wr *w, const uint8_t *p, size_t n, struct card *c)
{
    if (n > sizeof(c->out))
        return PL_ERR_OVERFLOW;
    memcpy(c->out, p, n);
    return pl_es10_tx_start(&c->tx, c->out, n, w);
}

static int answer(struct card *c, const uint8_t *req, size_t len, struct pl_wr *w)
{
    struct pl_der d;
    uint32_t tag = 0;
    uint8_t b[1024];
    struct pl_wr t;

    pl_wr_init_fixed(&t, b, sizeof(b));
    pl_der_init(&d, req, len);
    if (pl_der_peek_tag(&d, &tag) != PL_OK)
        return pl_rapdu_encode(NULL, 0, PL_SW_WRONG_DATA, w);
    switch (tag) {
    case 0xBF3Eu: { /* GetEID */
        size_t m = pl_der_begin(&t, 0xBF3Eu);
        pl_der_put_tlv(&t, 0x5Au, EID, sizeof(EID));
        pl_der_end(&t, m);
        break;
    }
    case 0xBF55u: { /* GetEimConfigurationData */
        static struct pl_sgp32_get_eim_config_response r;
        memset(&r, 0, sizeof(r));
        r.n_eims = 1;
        r.eims[0].eim_id = pl_sgp32_str("eim.fuzz");
        r.eims[0].eim_fqdn = pl_sgp32_str("eim.fuzz.example");
        r.eims[0].has_association_token = true;
        r.eims[0].association_token = 1;
        if (pl_sgp32_get_eim_config_response_encode(&r, &t) != PL_OK)
            return PL_ERR_INTERNAL;
        break;
    }
    case 0xBF2Du: /* ListProfileInfo: none */
        pl_wr_bytes(&t, "\xBF\x2D\x02\xA0\x00", 5);
        break;
    case 0xBF51u: { /* LoadEuiccPackage */
        static struct pl_sgp32_euicc_package_result r;
        if (c->flags & 0x04u)
            return pl_rapdu_encode(NULL, 0, PL_SW_CONDITIONS, w);
        memset(&r, 0, sizeof(r));
        r.kind = PL_SGP32_EPR_ERROR_UNSIGNED;
        r.eim_id = pl_sgp32_str("eim.fuzz");
        if (pl_sgp32_euicc_package_result_encode(&r, NULL, 0, &t) != PL_OK)
            return PL_ERR_INTERNAL;
        break;
    }
    case 0xBF2Bu: /* RetrieveNotificationsList: the stored-result form or the plain one */
        if (len == 7 && req[3] == 0xA0 && req[5] == 0x82) {
            static struct pl_sgp32_euicc_package_result r;
            size_t m = pl_der_begin(&t, 0xBF2Bu), ml = pl_der_begin(&t, 0xA2u);
            if (c->flags & 0x08u) {
                memset(&r, 0, sizeof(r));
                r.kind = PL_SGP32_EPR_ERROR_UNSIGNED;
                r.eim_id = pl_sgp32_str("eim.fuzz");
                r.eim_txid = pl_sgp32_str("T");
                if (pl_sgp32_euicc_package_result_encode(&r, NULL, 0, &t) != PL_OK)
                    return PL_ERR_INTERNAL;
            }
            pl_der_end(&t, ml);
            pl_der_end(&t, m);
        } else {
            pl_wr_bytes(&t, "\xBF\x2B\x02\xA0\x00", 5);
        }
        break;
    case 0xBF30u: /* NotificationSent */
        pl_wr_bytes(&t, "\xBF\x30\x03\x80\x01\x00", 6);
        break;
    case 0xBF20u:
        pl_wr_bytes(&t, "\xBF\x20\x03\x82\x01\x02", 6);
        break;
    case 0xBF22u:
        pl_wr_bytes(&t, "\xBF\x22\x03\x82\x01\x02", 6);
        break;
    case 0xBF56u: /* GetCerts: invalidCiPKId */
        pl_wr_bytes(&t, "\xBF\x56\x03\x81\x01\x01", 6);
        break;
    case 0xBF3Cu:
        pl_wr_bytes(&t, "\xBF\x3C\x03\x81\x01\x41", 6);
        break;
    default:
        return pl_rapdu_encode(NULL, 0, 0x6A88u, w);
    }
    if (pl_wr_status(&t) != PL_OK)
        return PL_ERR_INTERNAL;
    return put(w, t.buf, t.len, c);
}

static int card_transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu, size_t rcap,
                         size_t *rlen)
{
    struct card *c = user;
    struct pl_wr w;
    bool complete = false;
    int rc = PL_OK;

    pl_wr_init_fixed(&w, rapdu, rcap);
    if (clen < 4)
        return PL_ERR_INVAL;
    switch (capdu[1]) {
    case PL_INS_MANAGE_CHANNEL:
        if (capdu[2] == 0x00) {
            static const uint8_t one = 1;
            rc = pl_rapdu_encode(&one, 1, PL_SW_OK, &w);
        } else {
            rc = pl_rapdu_encode(NULL, 0, PL_SW_OK, &w);
        }
        break;
    case PL_INS_SELECT:
        rc = pl_rapdu_encode(NULL, 0, PL_SW_OK, &w);
        break;
    case PL_INS_GET_RESPONSE: {
        unsigned ch;
        size_t le;
        if (pl_es10_get_response_parse(capdu, clen, &ch, &le) != PL_OK
            || !pl_es10_tx_pending(&c->tx))
            rc = pl_rapdu_encode(NULL, 0, PL_SW_CONDITIONS, &w);
        else
            rc = pl_es10_tx_next(&c->tx, le, &w);
        break;
    }
    case PL_INS_STORE_DATA: {
        const uint8_t *req;
        size_t len;
        int frc = pl_es10_rx_feed(&c->rx, capdu, clen, &complete);
        if (frc != PL_OK) {
            rc = pl_rapdu_encode(NULL, 0, pl_es10_rx_sw(frc), &w);
            break;
        }
        if (!complete) {
            rc = pl_rapdu_encode(NULL, 0, PL_SW_OK, &w);
            break;
        }
        if (++c->commands > 5 && (c->flags & 0x10u))
            return PL_ERR_IO;
        if (pl_es10_rx_data(&c->rx, &req, &len) != PL_OK)
            return PL_ERR_INTERNAL;
        rc = answer(c, req, len, &w);
        break;
    }
    default:
        rc = pl_rapdu_encode(NULL, 0, PL_SW_INS_UNSUPPORTED, &w);
        break;
    }
    if (rc != PL_OK)
        return rc;
    *rlen = w.len;
    return PL_OK;
}

struct eim {
    uint8_t flags;
};

static int eim_post(void *user, const uint8_t *req, size_t len, struct pl_wr *rsp, int timeout_ms)
{
    const struct eim *e = user;
    (void)req;
    (void)len;
    (void)timeout_ms;
    switch (e->flags & 0x03u) {
    case 0:
        pl_wr_bytes(rsp, "\xBF\x50\x02\x30\x00", 5);
        break;
    case 1:
        pl_wr_bytes(rsp, "\xBF\x50\x0B\xBF\x53\x09\x80\x01\x01\x80\x01\x02\x80\x01\x03", 14);
        break;
    case 2:
        pl_wr_bytes(rsp, "\xBF\x50\x03\x02\x01\x7F", 6);
        break;
    default:
        return PL_ERR_TIMEOUT;
    }
    return pl_wr_status(rsp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct card c;
    struct eim e;
    struct pl_ipa_config cfg;
    struct pl_ipa *ipa = NULL;
    struct pl_ipa_status st;

    if (size < 1)
        return 0;
    memset(&c, 0, sizeof(c));
    pl_es10_rx_init(&c.rx, 0);
    c.flags = data[0];
    e.flags = data[0];
    pl_ipa_config_init(&cfg);
    cfg.apdu.transmit = card_transmit;
    cfg.apdu.user = &c;
    cfg.transport.post = eim_post;
    cfg.transport.user = &e;
    cfg.max_delivery_attempts = 1;
    if (pl_ipa_new(&cfg, &ipa) != PL_OK)
        abort();
    int rc = pl_ipa_handle_get_eim_package_response(ipa, data + 1, size - 1);
    pl_ipa_get_status(ipa, &st);
    /* Invariants: a result is owed, in flight, or delivered, never two at once; a poll
     * status is one of the enum values. */
    if (st.package_in_flight && st.result_pending)
        abort();
    if (rc > PL_IPA_POLL_EIM_ERROR)
        abort();
    if (st.awaiting_ack > PL_IPA_MAX_AWAITING_ACK)
        abort();
    /* a second round with the same IPA must work too (state carried over) */
    if (pl_ipa_poll(ipa) > PL_IPA_POLL_EIM_ERROR)
        abort();
    pl_ipa_free(ipa);
    pl_es10_rx_free(&c.rx);
    return 0;
}
