/* The IPA's ES10 path to the ISD-R: MANAGE CHANNEL + SELECT ISD-R (or SELECT on the basic
 * channel), then each ES10 request as STORE DATA blocks with GET RESPONSE for long answers.
 * Sources: GSMA SGP.22 v2.5 §5.7 (ES10 over STORE DATA, GlobalPlatform Card Spec §11.11),
 * §2.2.3 (ISD-R AID); ISO/IEC 7816-4 §7.1.1 SELECT, §7.1.2 MANAGE CHANNEL; reference/IFPP.md
 * §5.7 (as lpac does it). SGP.32 v1.2 §5.9: the ES10b functions of the IPA go the same way. */
#include "ipa_internal.h"

#include <string.h>

#define SW_REF_NOT_FOUND 0x6A88u

bool pl_ipa_sw_unsupported(uint16_t sw)
{
    return sw == SW_REF_NOT_FOUND || sw == PL_SW_INS_UNSUPPORTED;
}

void pl_ipa_es10_drop(struct pl_ipa *ipa)
{
    uint16_t sw = 0;

    if (ipa->open && !ipa->cfg.basic_channel && ipa->channel != 0) {
        /* Best effort: a card that was reset has closed it already. */
        if (pl_apdu_close_channel(&ipa->cfg.apdu, ipa->channel, &sw) != PL_OK)
            pl_ipa_log(ipa, PL_IPA_LOG_DEBUG, "close channel %u: SW %04X", ipa->channel,
                       (unsigned)sw);
    }
    ipa->open = false;
    ipa->channel = 0;
}

int pl_ipa_card_reset(struct pl_ipa *ipa)
{
    int rc;

    if (ipa->cfg.card_reset == NULL)
        return PL_ERR_UNSUPPORTED;
    /* The reset closes every logical channel: nothing to close. */
    ipa->open = false;
    ipa->channel = 0;
    rc = ipa->cfg.card_reset(ipa->cfg.card_reset_user);
    pl_ipa_log(ipa, rc == PL_OK ? PL_IPA_LOG_INFO : PL_IPA_LOG_WARN, "eUICC reset: %s",
               pl_strerror(rc));
    return rc;
}

static int open_path(struct pl_ipa *ipa)
{
    unsigned ch = 0;
    uint16_t sw = 0;
    int rc;

    if (ipa->open)
        return PL_OK;
    if (!ipa->cfg.basic_channel) {
        if ((rc = pl_apdu_open_channel(&ipa->cfg.apdu, &ch, &sw)) != PL_OK) {
            pl_ipa_log(ipa, PL_IPA_LOG_ERROR, "MANAGE CHANNEL failed: %s (SW %04X)",
                       pl_strerror(rc), (unsigned)sw);
            return rc;
        }
    }
    rc = pl_apdu_select_aid(&ipa->cfg.apdu, ch, pl_apdu_isdr_aid, PL_ISDR_AID_LEN, NULL, &sw);
    if (rc != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_ERROR, "SELECT ISD-R failed: %s (SW %04X)", pl_strerror(rc),
                   (unsigned)sw);
        if (ch != 0 && pl_apdu_close_channel(&ipa->cfg.apdu, ch, &sw) != PL_OK)
            pl_ipa_log(ipa, PL_IPA_LOG_DEBUG, "close channel %u: SW %04X", ch, (unsigned)sw);
        return rc;
    }
    ipa->open = true;
    ipa->channel = ch;
    return PL_OK;
}

static bool path_lost(int rc, uint16_t sw)
{
    if (rc == PL_OK || rc == PL_ERR_OVERFLOW)
        return false;
    /* An error SW is an answer on this path, except '6881' (logical channel not supported,
     * i.e. closed under us). */
    return rc != PL_ERR_CARD_SW || sw == 0x6881u;
}

int pl_ipa_es10(struct pl_ipa *ipa, const uint8_t *req, size_t len, struct pl_wr *rsp, uint16_t *sw,
                bool retry)
{
    size_t start = rsp->len;
    bool was_open = ipa->open;
    uint16_t s = 0;
    int rc;

    if (sw != NULL)
        *sw = 0;
    if ((rc = open_path(ipa)) != PL_OK)
        return rc;
    rc = pl_es10_transceive(&ipa->cfg.apdu, ipa->channel, req, len, ipa->cfg.mss, rsp, &s);
    if (path_lost(rc, s)) {
        /* The path is gone (card reset, link lost): close what may be left of it. */
        pl_ipa_es10_drop(ipa);
        if (retry && was_open) {
            rsp->len = start;
            if ((rc = open_path(ipa)) != PL_OK)
                return rc;
            s = 0;
            rc = pl_es10_transceive(&ipa->cfg.apdu, ipa->channel, req, len, ipa->cfg.mss, rsp, &s);
            if (path_lost(rc, s))
                pl_ipa_es10_drop(ipa);
        }
    }
    if (sw != NULL)
        *sw = s;
    return rc;
}
